// Frames of the hrld wire protocol (docs/protocol.md): a 32-byte header,
// then a payload, zstd-compressed when that saves space, whose XXH64 is in
// the header. Decoding checks every field before a byte is trusted.
#pragma once

#include <endian.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace hrl::proto {

inline constexpr uint32_t kMagic = 0x504c5248;  // bytes "HRLP"
inline constexpr uint16_t kVersion = 2;
inline constexpr size_t kHeaderSize = 32;
inline constexpr uint32_t kMaxPayload = 64u << 20;
inline constexpr uint32_t kFlagZstd = 1u << 0;

enum class FrameType : uint16_t {
  Hello = 1,    // primary -> secondary: who I am, what I hold
  Welcome = 2,  // secondary -> primary: accepted, resume after this seq
  Refuse = 3,   // either way: why not, then the connection closes
  Records = 4,  // primary -> secondary: a batch of log records
  Durable = 5,  // secondary -> primary: every record up to seq is durable
  // A checksum resync (resync_messages.h):
  ResyncBegin = 6,   // primary -> secondary: what is compared, from where
  ResyncChunks = 7,  // primary -> secondary: chunks to read and hash next
  ResyncHashes = 8,  // either way: one level of the chunks' hash trees
  ResyncData = 9,    // primary -> secondary: the blocks that differ
  ResyncEnd = 10,    // primary -> secondary: the pass is over
  ResyncDone = 11,   // secondary -> primary: what the pass wrote is durable

  Promote = 12,   // primary -> secondary: a planned failover; take over at the next generation
  Promoted = 13,  // secondary -> primary: done, it is the primary now
};
inline constexpr uint16_t kLastFrameType = 13;
const char* frame_type_name(FrameType t);

// A malformed frame or message: the peer is broken or hostile; the
// connection is dropped and nothing of the frame is applied.
class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct FrameHeader {
  FrameType type = FrameType::Hello;
  uint32_t flags = 0;
  uint32_t wire_len = 0;  // payload bytes on the wire
  uint32_t raw_len = 0;   // payload bytes after decompression
  uint64_t csum = 0;      // XXH64 of the raw payload, seed 0
};

void encode_header(const FrameHeader& h, std::span<std::byte> out);
FrameHeader decode_header(std::span<const std::byte> in);

// A whole frame (header and payload); compressed at zstd_level (0: never)
// when compression saves at least 3%.
std::vector<std::byte> make_frame(FrameType type, std::span<const std::byte> payload, int zstd_level);
// The raw payload of a received frame: decompressed and checked.
std::vector<std::byte> open_payload(const FrameHeader& h, std::span<const std::byte> wire);

// Bounds-checked little-endian field codec for message payloads.
class Writer {
 public:
  void u16(uint16_t v) { v = htole16(v); put(&v, 2); }
  void u32(uint32_t v) { v = htole32(v); put(&v, 4); }
  void u64(uint64_t v) { v = htole64(v); put(&v, 8); }
  void bytes(std::span<const std::byte> b) { put(b.data(), b.size()); }
  void str(const std::string& s);  // u16 length, then the bytes
  std::vector<std::byte>& buffer() { return buf_; }
  size_t size() const { return buf_.size(); }

 private:
  void put(const void* p, size_t n);
  std::vector<std::byte> buf_;
};

class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) : in_(in) {}
  uint16_t u16();
  uint32_t u32();
  uint64_t u64();
  std::span<const std::byte> bytes(size_t n);
  std::string str();
  size_t left() const { return in_.size() - pos_; }
  void expect_end() const;

 private:
  void get(void* p, size_t n);
  std::span<const std::byte> in_;
  size_t pos_ = 0;
};

}  // namespace hrl::proto
