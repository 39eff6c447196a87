#include "net/messages.h"

#include <cstring>

namespace hrl::proto {
namespace {

void put_uuid(Writer& w, const Uuid& u) { w.bytes(std::as_bytes(std::span(u))); }
Uuid get_uuid(Reader& r) {
  Uuid u;
  std::memcpy(u.data(), r.bytes(16).data(), 16);
  return u;
}

}  // namespace

const char* refuse_code_name(RefuseCode c) {
  switch (c) {
    case RefuseCode::WrongVolume: return "wrong-volume";
    case RefuseCode::Generation: return "generation-mismatch";
    case RefuseCode::Size: return "replica-too-small";
    case RefuseCode::Gap: return "records-missing";
    case RefuseCode::Busy: return "busy";
    case RefuseCode::BadRecord: return "bad-record";
    case RefuseCode::Internal: return "internal-error";
  }
  return "unknown";
}

std::vector<std::byte> encode(const Hello& m) {
  Writer w;
  put_uuid(w, m.uuid);
  w.u64(m.generation);
  w.u64(m.data_sectors);
  w.u64(m.first_seq);
  w.u32(m.in_sync_from_start ? 1 : 0);
  w.str(m.node);
  return std::move(w.buffer());
}

Hello decode_hello(std::span<const std::byte> in) {
  Reader r(in);
  Hello m;
  m.uuid = get_uuid(r);
  m.generation = r.u64();
  m.data_sectors = r.u64();
  m.first_seq = r.u64();
  uint32_t flags = r.u32();
  if (flags > 1) throw ProtocolError("HELLO with unknown flags " + std::to_string(flags));
  m.in_sync_from_start = flags & 1;
  m.node = r.str();
  r.expect_end();
  return m;
}

std::vector<std::byte> encode(const Welcome& m) {
  Writer w;
  put_uuid(w, m.uuid);
  w.u64(m.generation);
  w.u64(m.durable_seq);
  w.u64(m.durable_csum);
  w.u32(m.resync_mode);
  w.u32(m.resync_regions);
  w.u32(m.resync_reason);
  w.u64(m.resync_take_seq);
  w.u64(m.resync_cursor);
  w.str(m.node);
  return std::move(w.buffer());
}

Welcome decode_welcome(std::span<const std::byte> in) {
  Reader r(in);
  Welcome m;
  m.uuid = get_uuid(r);
  m.generation = r.u64();
  m.durable_seq = r.u64();
  m.durable_csum = r.u64();
  m.resync_mode = r.u32();
  m.resync_regions = r.u32();
  m.resync_reason = r.u32();
  m.resync_take_seq = r.u64();
  m.resync_cursor = r.u64();
  if (m.resync_mode > 3 || m.resync_regions > 2) throw ProtocolError("WELCOME with an unknown resync");
  m.node = r.str();
  r.expect_end();
  return m;
}

std::vector<std::byte> encode(const Refuse& m) {
  Writer w;
  w.u32(static_cast<uint32_t>(m.code));
  w.str(m.message);
  return std::move(w.buffer());
}

Refuse decode_refuse(std::span<const std::byte> in) {
  Reader r(in);
  Refuse m;
  uint32_t code = r.u32();
  m.code = code >= 1 && code <= 7 ? static_cast<RefuseCode>(code) : RefuseCode::Internal;
  m.message = r.str();
  r.expect_end();
  return m;
}

std::vector<std::byte> encode(const Durable& m) {
  Writer w;
  w.u64(m.seq);
  return std::move(w.buffer());
}

Durable decode_durable(std::span<const std::byte> in) {
  Reader r(in);
  Durable m{r.u64()};
  r.expect_end();
  return m;
}

std::vector<std::byte> encode(const Promote& m) {
  Writer w;
  w.u64(m.generation);
  w.u64(m.last_seq);
  return std::move(w.buffer());
}

Promote decode_promote(std::span<const std::byte> in) {
  Reader r(in);
  Promote m;
  m.generation = r.u64();
  m.last_seq = r.u64();
  r.expect_end();
  if (m.generation == 0) throw ProtocolError("PROMOTE to generation 0");
  return m;
}

void BatchBuilder::add(const RecordHeader& h, std::span<const std::byte> payload) {
  std::byte unit[HRL_SECTOR_SIZE];
  encode_record_header(h, seed_, unit);  // the bytes of the log, checksums included
  if (count_ == 0) {
    first_ = h.seq;
    w_.u64(0);  // room for the count: patched in take()
  }
  w_.bytes(std::span(unit, HRL_RECORD_HEADER_SIZE));
  if (h.type != HRL_REC_PAD) w_.bytes(payload);
  last_ = h.seq;
  count_++;
}

std::vector<std::byte> BatchBuilder::take() {
  std::vector<std::byte> out = std::move(w_.buffer());
  if (count_) {
    uint64_t n = htole64(count_);
    std::memcpy(out.data(), &n, 8);
  }
  w_ = Writer();
  count_ = 0;
  return out;
}

std::vector<BatchRecord> decode_batch(std::span<const std::byte> in, uint64_t seed, uint64_t expected_first) {
  Reader r(in);
  uint64_t count = r.u64();
  if (count == 0 || count > in.size() / HRL_RECORD_HEADER_SIZE) throw ProtocolError("RECORDS with a bad count");
  std::vector<BatchRecord> out;
  out.reserve(count);
  uint64_t expect = expected_first;
  for (uint64_t i = 0; i < count; i++, expect++) {
    auto unit = r.bytes(HRL_RECORD_HEADER_SIZE);
    BatchRecord rec;
    std::string why;
    if (decode_record_header(unit, seed, rec.header, &why) != RecordVerdict::Valid)
      throw ProtocolError("record " + std::to_string(i) + " of the batch (seq " + std::to_string(expect) + "): " + why);
    if (rec.header.seq != expect)
      throw ProtocolError("record seq " + std::to_string(rec.header.seq) + " where " + std::to_string(expect) +
                          " was due: records are missing or repeated");
    if (rec.header.type != HRL_REC_PAD) {
      rec.payload = r.bytes(rec.header.payload_bytes);
      if (payload_checksum(rec.payload, seed) != rec.header.payload_csum)
        throw ProtocolError("record seq " + std::to_string(expect) + " fails its payload checksum");
    }
    out.push_back(rec);
  }
  r.expect_end();
  return out;
}

}  // namespace hrl::proto
