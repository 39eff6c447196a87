#include "net/frame.h"

#include <endian.h>
#include <xxhash.h>
#include <zstd.h>

#include <cstring>

namespace hrl::proto {

const char* frame_type_name(FrameType t) {
  switch (t) {
    case FrameType::Hello: return "HELLO";
    case FrameType::Welcome: return "WELCOME";
    case FrameType::Refuse: return "REFUSE";
    case FrameType::Records: return "RECORDS";
    case FrameType::Durable: return "DURABLE";
    case FrameType::ResyncBegin: return "RESYNC_BEGIN";
    case FrameType::ResyncChunks: return "RESYNC_CHUNKS";
    case FrameType::ResyncHashes: return "RESYNC_HASHES";
    case FrameType::ResyncData: return "RESYNC_DATA";
    case FrameType::ResyncEnd: return "RESYNC_END";
    case FrameType::ResyncDone: return "RESYNC_DONE";
    case FrameType::Promote: return "PROMOTE";
    case FrameType::Promoted: return "PROMOTED";
  }
  return "?";
}

void encode_header(const FrameHeader& h, std::span<std::byte> out) {
  Writer w;
  w.u32(kMagic);
  w.u16(kVersion);
  w.u16(static_cast<uint16_t>(h.type));
  w.u32(h.flags);
  w.u32(h.wire_len);
  w.u32(h.raw_len);
  w.u32(0);
  w.u64(h.csum);
  std::memcpy(out.data(), w.buffer().data(), kHeaderSize);
}

FrameHeader decode_header(std::span<const std::byte> in) {
  Reader r(in.first(kHeaderSize));
  if (r.u32() != kMagic) throw ProtocolError("not an hrl frame (bad magic): is the peer an hrld?");
  if (uint16_t v = r.u16(); v != kVersion)
    throw ProtocolError("protocol version " + std::to_string(v) + " (this hrld speaks " + std::to_string(kVersion) + ")");
  FrameHeader h;
  uint16_t type = r.u16();
  if (type < 1 || type > kLastFrameType) throw ProtocolError("unknown frame type " + std::to_string(type));
  h.type = static_cast<FrameType>(type);
  h.flags = r.u32();
  h.wire_len = r.u32();
  h.raw_len = r.u32();
  if (r.u32() != 0) throw ProtocolError("reserved header field is not zero");
  h.csum = r.u64();
  if (h.flags & ~kFlagZstd) throw ProtocolError("unknown frame flags " + std::to_string(h.flags));
  if (h.wire_len > kMaxPayload || h.raw_len > kMaxPayload)
    throw ProtocolError("frame of " + std::to_string(std::max(h.wire_len, h.raw_len)) + " bytes exceeds the limit of " +
                        std::to_string(kMaxPayload));
  if (!(h.flags & kFlagZstd) && h.wire_len != h.raw_len)
    throw ProtocolError("uncompressed frame with different wire and raw lengths");
  return h;
}

std::vector<std::byte> make_frame(FrameType type, std::span<const std::byte> payload, int zstd_level) {
  if (payload.size() > kMaxPayload) throw std::length_error("frame payload too large");
  FrameHeader h;
  h.type = type;
  h.raw_len = static_cast<uint32_t>(payload.size());
  h.csum = XXH64(payload.data(), payload.size(), 0);
  std::vector<std::byte> frame(kHeaderSize);
  if (zstd_level > 0 && payload.size() >= 512) {
    static thread_local ZSTD_CCtx* cctx = ZSTD_createCCtx();
    frame.resize(kHeaderSize + ZSTD_compressBound(payload.size()));
    size_t n = ZSTD_compressCCtx(cctx, frame.data() + kHeaderSize, frame.size() - kHeaderSize, payload.data(),
                                 payload.size(), zstd_level);
    if (!ZSTD_isError(n) && n < payload.size() - payload.size() / 32) {
      h.flags = kFlagZstd;
      h.wire_len = static_cast<uint32_t>(n);
      frame.resize(kHeaderSize + n);
    }
  }
  if (!(h.flags & kFlagZstd)) {  // incompressible: as it is
    h.wire_len = h.raw_len;
    frame.resize(kHeaderSize + payload.size());
    if (!payload.empty()) std::memcpy(frame.data() + kHeaderSize, payload.data(), payload.size());
  }
  encode_header(h, frame);
  return frame;
}

std::vector<std::byte> open_payload(const FrameHeader& h, std::span<const std::byte> wire) {
  if (wire.size() != h.wire_len) throw ProtocolError("frame payload length mismatch");
  std::vector<std::byte> raw(h.raw_len);
  if (h.flags & kFlagZstd) {
    static thread_local ZSTD_DCtx* dctx = ZSTD_createDCtx();
    size_t n = ZSTD_decompressDCtx(dctx, raw.data(), raw.size(), wire.data(), wire.size());
    if (ZSTD_isError(n) || n != h.raw_len)
      throw ProtocolError(std::string("compressed payload does not decompress to its length: ") +
                          (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short"));
  } else if (!wire.empty()) {  // memcpy from an empty span's null pointer is undefined
    std::memcpy(raw.data(), wire.data(), wire.size());
  }
  if (XXH64(raw.data(), raw.size(), 0) != h.csum)
    throw ProtocolError(std::string(frame_type_name(h.type)) + " frame fails its checksum");
  return raw;
}

void Writer::put(const void* p, size_t n) {
  const auto* b = static_cast<const std::byte*>(p);
  buf_.insert(buf_.end(), b, b + n);
}

void Writer::str(const std::string& s) {
  if (s.size() > UINT16_MAX) throw std::length_error("string too long for a message");
  u16(static_cast<uint16_t>(s.size()));
  put(s.data(), s.size());
}

void Reader::get(void* p, size_t n) {
  if (left() < n) throw ProtocolError("message ends early (" + std::to_string(left()) + " bytes left, " +
                                      std::to_string(n) + " needed)");
  std::memcpy(p, in_.data() + pos_, n);
  pos_ += n;
}

uint16_t Reader::u16() { uint16_t v; get(&v, 2); return le16toh(v); }
uint32_t Reader::u32() { uint32_t v; get(&v, 4); return le32toh(v); }
uint64_t Reader::u64() { uint64_t v; get(&v, 8); return le64toh(v); }

std::span<const std::byte> Reader::bytes(size_t n) {
  if (left() < n) throw ProtocolError("message ends early");
  auto s = in_.subspan(pos_, n);
  pos_ += n;
  return s;
}

std::string Reader::str() {
  uint16_t n = u16();
  auto b = bytes(n);
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

void Reader::expect_end() const {
  if (left()) throw ProtocolError(std::to_string(left()) + " unexpected bytes after the message");
}

}  // namespace hrl::proto
