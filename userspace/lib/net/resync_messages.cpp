#include "net/resync_messages.h"

#include <algorithm>
#include <string>

#include <hrl/log_format.h>

namespace hrl::proto {
namespace {

constexpr uint32_t kMaxBatchChunks = 1024;

void put_hash(Writer& w, const Hash128& h) {
  w.u64(h.lo);
  w.u64(h.hi);
}

Hash128 get_hash(Reader& r) {
  Hash128 h;
  h.lo = r.u64();
  h.hi = r.u64();
  return h;
}

}  // namespace

const char* resync_mode_name(ResyncMode m) {
  switch (m) {
    case ResyncMode::Checksum: return "checksum";
    case ResyncMode::Copy: return "copy";
    case ResyncMode::Verify: return "verify";
  }
  return "?";
}

std::vector<std::byte> encode(const ResyncBegin& m) {
  Writer w;
  w.u32(static_cast<uint32_t>(m.mode));
  w.u32(static_cast<uint32_t>(m.regions));
  w.u32(m.reason);
  w.u64(m.take_seq);
  w.u64(m.cursor);
  w.u64(m.chunks);
  w.u32(m.supersedes ? 1 : 0);
  return std::move(w.buffer());
}

ResyncBegin decode_resync_begin(std::span<const std::byte> in) {
  Reader r(in);
  ResyncBegin m;
  uint32_t mode = r.u32(), regions = r.u32();
  if (mode < 1 || mode > 3) throw ProtocolError("RESYNC_BEGIN with unknown mode " + std::to_string(mode));
  if (regions < 1 || regions > 2) throw ProtocolError("RESYNC_BEGIN with unknown regions " + std::to_string(regions));
  m.mode = static_cast<ResyncMode>(mode);
  m.regions = static_cast<ResyncRegions>(regions);
  m.reason = r.u32();
  m.take_seq = r.u64();
  m.cursor = r.u64();
  m.chunks = r.u64();
  uint32_t flags = r.u32();
  if (flags > 1) throw ProtocolError("RESYNC_BEGIN with unknown flags " + std::to_string(flags));
  m.supersedes = flags & 1;
  r.expect_end();
  if (!m.take_seq) throw ProtocolError("RESYNC_BEGIN without a take sequence number");
  if (m.supersedes && (m.mode == ResyncMode::Verify || m.regions != ResyncRegions::Device || m.cursor))
    throw ProtocolError("RESYNC_BEGIN supersedes records but is not a whole-device pass from its start");
  return m;
}

// Chunks travel as runs (first, count): a whole-device batch is one run.
std::vector<std::byte> encode(const ResyncChunks& m) {
  Writer w;
  w.u64(m.batch);
  std::vector<std::pair<uint64_t, uint32_t>> runs;
  for (uint64_t c : m.chunks) {
    if (!runs.empty() && runs.back().first + runs.back().second == c)
      runs.back().second++;
    else
      runs.emplace_back(c, 1);
  }
  w.u32(static_cast<uint32_t>(runs.size()));
  for (auto& [first, count] : runs) {
    w.u64(first);
    w.u32(count);
  }
  return std::move(w.buffer());
}

ResyncChunks decode_resync_chunks(std::span<const std::byte> in) {
  Reader r(in);
  ResyncChunks m;
  m.batch = r.u64();
  uint32_t runs = r.u32();
  for (uint32_t i = 0; i < runs; i++) {
    uint64_t first = r.u64();
    uint32_t count = r.u32();
    if (!count || count > kMaxBatchChunks - m.chunks.size())
      throw ProtocolError("RESYNC_CHUNKS with more than " + std::to_string(kMaxBatchChunks) + " chunks or an empty run");
    if (!m.chunks.empty() && first <= m.chunks.back()) throw ProtocolError("RESYNC_CHUNKS not in increasing order");
    if (first > UINT64_MAX / kChunkBytes - count) throw ProtocolError("RESYNC_CHUNKS past any device");
    for (uint32_t k = 0; k < count; k++) m.chunks.push_back(first + k);
  }
  r.expect_end();
  if (m.chunks.empty()) throw ProtocolError("RESYNC_CHUNKS without chunks");
  return m;
}

std::vector<std::byte> encode(const ResyncHashes& m) {
  Writer w;
  w.u64(m.batch);
  w.u32(m.level);
  w.u32(static_cast<uint32_t>(m.chunks.size()));
  for (const ChunkLevel& c : m.chunks) {
    if (m.level > 0) {
      w.u16(static_cast<uint16_t>(c.differ.size()));
      std::vector<std::byte> bits((c.differ.size() + 7) / 8);
      for (size_t i = 0; i < c.differ.size(); i++)
        if (c.differ[i]) bits[i / 8] |= std::byte{static_cast<uint8_t>(1u << (i % 8))};
      w.bytes(bits);
    }
    w.u16(static_cast<uint16_t>(c.hashes.size()));
    for (const Hash128& h : c.hashes) put_hash(w, h);
  }
  return std::move(w.buffer());
}

ResyncHashes decode_resync_hashes(std::span<const std::byte> in) {
  Reader r(in);
  ResyncHashes m;
  m.batch = r.u64();
  m.level = r.u32();
  if (m.level > kLeafLevel) throw ProtocolError("RESYNC_HASHES at level " + std::to_string(m.level));
  uint32_t count = r.u32();
  if (count > kMaxBatchChunks) throw ProtocolError("RESYNC_HASHES for " + std::to_string(count) + " chunks");
  m.chunks.resize(count);
  for (ChunkLevel& c : m.chunks) {
    size_t expect = 1;
    if (m.level > 0) {
      uint16_t flags = r.u16();
      if (flags > level_width(m.level - 1)) throw ProtocolError("RESYNC_HASHES with too many flags");
      auto bits = r.bytes((flags + 7u) / 8);
      c.differ.resize(flags);
      for (size_t i = 0; i < flags; i++) c.differ[i] = (std::to_integer<uint8_t>(bits[i / 8]) >> (i % 8)) & 1;
      expect = kFanout * static_cast<size_t>(std::count(c.differ.begin(), c.differ.end(), true));
    }
    uint16_t n = r.u16();
    if (n != expect)
      throw ProtocolError("RESYNC_HASHES with " + std::to_string(n) + " hashes where its flags call for " +
                          std::to_string(expect));
    c.hashes.reserve(n);
    for (uint16_t i = 0; i < n; i++) c.hashes.push_back(get_hash(r));
  }
  r.expect_end();
  return m;
}

std::vector<std::byte> encode(const ResyncData& m) {
  Writer w;
  w.u64(m.batch);
  w.u64(m.cursor);
  w.u32(static_cast<uint32_t>(m.extents.size()));
  for (const DataExtent& e : m.extents) {
    w.u64(e.offset);
    w.u32(e.length);
    w.u16(e.zero ? 1 : 0);
    if (!e.zero) w.bytes(e.bytes.first(e.length));
  }
  return std::move(w.buffer());
}

ResyncData decode_resync_data(std::span<const std::byte> in) {
  Reader r(in);
  ResyncData m;
  m.batch = r.u64();
  m.cursor = r.u64();
  uint32_t count = r.u32();
  if (count > in.size() / 14) throw ProtocolError("RESYNC_DATA with a bad extent count");
  for (uint32_t i = 0; i < count; i++) {
    DataExtent e;
    e.offset = r.u64();
    e.length = r.u32();
    uint16_t kind = r.u16();
    if (kind > 1) throw ProtocolError("RESYNC_DATA extent of unknown kind " + std::to_string(kind));
    if (!e.length || e.length % HRL_SECTOR_SIZE || e.offset % HRL_SECTOR_SIZE || e.length > kMaxBatchChunks * kChunkBytes ||
        e.offset > UINT64_MAX - e.length)
      throw ProtocolError("RESYNC_DATA extent at " + std::to_string(e.offset) + " of " + std::to_string(e.length) +
                          " bytes is not whole sectors");
    if (!m.extents.empty() && e.offset < m.extents.back().offset + m.extents.back().length)
      throw ProtocolError("RESYNC_DATA extents overlap or go backwards");
    e.zero = kind == 1;
    if (!e.zero) e.bytes = r.bytes(e.length);
    m.extents.push_back(e);
  }
  r.expect_end();
  return m;
}

std::vector<std::byte> encode(const ResyncEnd& m) {
  Writer w;
  w.u64(m.consistent_seq);
  return std::move(w.buffer());
}

ResyncEnd decode_resync_end(std::span<const std::byte> in) {
  Reader r(in);
  ResyncEnd m{r.u64()};
  r.expect_end();
  return m;
}

std::vector<std::byte> encode(const ResyncDone& m) {
  Writer w;
  w.u64(m.written_bytes);
  w.u64(m.zeroed_bytes);
  return std::move(w.buffer());
}

ResyncDone decode_resync_done(std::span<const std::byte> in) {
  Reader r(in);
  ResyncDone m;
  m.written_bytes = r.u64();
  m.zeroed_bytes = r.u64();
  r.expect_end();
  return m;
}

}  // namespace hrl::proto
