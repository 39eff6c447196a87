// Fuzzes the protocol decoder: frame headers, payload decompression and
// checksum, every message type (resync ones included) and the RECORDS batch. Whatever arrives, the
// decoder returns a checked message or throws ProtocolError; it never
// crashes, reads out of bounds, or allocates past the frame limit.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "net/frame.h"
#include "net/messages.h"
#include "net/resync_messages.h"

using namespace hrl::proto;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  if (in.size() < kHeaderSize) return 0;
  try {
    FrameHeader h = decode_header(in.first(kHeaderSize));
    auto wire = in.subspan(kHeaderSize);
    if (wire.size() > h.wire_len) wire = wire.first(h.wire_len);
    auto raw = open_payload(h, wire);
    if (raw.size() != h.raw_len) abort();
    switch (h.type) {
      case FrameType::Hello: decode_hello(raw); break;
      case FrameType::Welcome: decode_welcome(raw); break;
      case FrameType::Refuse: decode_refuse(raw); break;
      case FrameType::Durable: decode_durable(raw); break;
      case FrameType::Records:
        for (const BatchRecord& r : decode_batch(raw, 0x1234, 1))
          if (r.header.type != HRL_REC_PAD && r.payload.size() != r.header.payload_bytes) abort();
        break;
      case FrameType::ResyncBegin: decode_resync_begin(raw); break;
      case FrameType::ResyncChunks: decode_resync_chunks(raw); break;
      case FrameType::ResyncHashes: {
        auto m = decode_resync_hashes(raw);
        for (const auto& c : m.chunks)
          if (c.hashes.size() > hrl::kLeaves) abort();
        break;
      }
      case FrameType::ResyncData:
        for (const auto& e : decode_resync_data(raw).extents)
          if (!e.zero && e.bytes.size() != e.length) abort();
        break;
      case FrameType::ResyncEnd: decode_resync_end(raw); break;
      case FrameType::ResyncDone: decode_resync_done(raw); break;
      case FrameType::Promote:
      case FrameType::Promoted: decode_promote(raw); break;
    }
  } catch (const ProtocolError&) {
  }
  // Messages decoded straight from the input too, without a valid frame.
  try { decode_batch(in, 0x1234, 1); } catch (const ProtocolError&) {}
  try { decode_hello(in); } catch (const ProtocolError&) {}
  try { decode_resync_hashes(in); } catch (const ProtocolError&) {}
  try { decode_resync_data(in); } catch (const ProtocolError&) {}
  return 0;
}
