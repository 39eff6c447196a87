#include "log/record.h"

#include <endian.h>
#include <xxhash.h>

#include <cstring>
#include <stdexcept>

#include "log/superblock.h"

namespace hrl {
namespace {

RecordVerdict verdict(RecordVerdict v, std::string* why, std::string msg) {
  if (why) *why = std::move(msg);
  return v;
}

}  // namespace

const char* verdict_name(RecordVerdict v) {
  switch (v) {
    case RecordVerdict::Valid: return "valid";
    case RecordVerdict::NoRecord: return "no record";
    case RecordVerdict::Torn: return "torn";
    case RecordVerdict::Stale: return "stale";
    case RecordVerdict::Malformed: return "malformed";
  }
  return "?";
}

const char* record_type_name(uint16_t type) {
  switch (type) {
    case HRL_REC_WRITE: return "WRITE";
    case HRL_REC_DISCARD: return "DISCARD";
    case HRL_REC_MARK: return "MARK";
    case HRL_REC_PAD: return "PAD";
  }
  return "UNKNOWN";
}

uint64_t payload_checksum(std::span<const std::byte> payload, uint64_t seed) {
  return payload.empty() ? 0 : XXH64(payload.data(), payload.size(), seed);
}

void encode_record_header(const RecordHeader& h, uint64_t seed, std::span<std::byte> unit) {
  if (unit.size() < HRL_SECTOR_SIZE) throw std::logic_error("record header unit too small");
  hrl_record_header raw{};
  raw.magic = htole32(HRL_RECORD_MAGIC);
  raw.type = htole16(h.type);
  raw.flags = htole16(h.flags);
  raw.seq = htole64(h.seq);
  raw.generation = htole64(h.generation);
  raw.sector = htole64(h.sector);
  raw.nr_sectors = htole32(h.nr_sectors);
  raw.payload_bytes = htole32(h.payload_bytes);
  raw.timestamp_ns = htole64(h.timestamp_ns);
  raw.payload_csum = htole64(h.payload_csum);
  raw.header_csum = htole64(XXH64(&raw, HRL_RECORD_CSUM_BYTES, seed));
  std::memset(unit.data(), 0, HRL_SECTOR_SIZE);
  std::memcpy(unit.data(), &raw, sizeof raw);
}

uint64_t header_checksum(const RecordHeader& h, uint64_t seed) {
  std::byte unit[HRL_SECTOR_SIZE];
  encode_record_header(h, seed, unit);
  hrl_record_header raw;
  std::memcpy(&raw, unit, sizeof raw);
  return le64toh(raw.header_csum);
}

RecordVerdict decode_record_header(std::span<const std::byte> unit, uint64_t seed, RecordHeader& h,
                                   std::string* why) {
  if (unit.size() < HRL_RECORD_HEADER_SIZE) return verdict(RecordVerdict::NoRecord, why, "short header");
  hrl_record_header raw;
  std::memcpy(&raw, unit.data(), sizeof raw);
  if (le32toh(raw.magic) != HRL_RECORD_MAGIC) return verdict(RecordVerdict::NoRecord, why, "no record magic");
  if (le64toh(raw.header_csum) != XXH64(&raw, HRL_RECORD_CSUM_BYTES, seed))
    return verdict(RecordVerdict::Torn, why, "header checksum mismatch");
  h.type = le16toh(raw.type);
  h.flags = le16toh(raw.flags);
  h.seq = le64toh(raw.seq);
  h.generation = le64toh(raw.generation);
  h.sector = le64toh(raw.sector);
  h.nr_sectors = le32toh(raw.nr_sectors);
  h.payload_bytes = le32toh(raw.payload_bytes);
  h.timestamp_ns = le64toh(raw.timestamp_ns);
  h.payload_csum = le64toh(raw.payload_csum);

  if (h.flags & ~HRL_REC_KNOWN_FLAGS) return verdict(RecordVerdict::Malformed, why, "unknown record flags");
  if (h.payload_bytes == 0 && h.payload_csum != 0)
    return verdict(RecordVerdict::Malformed, why, "payload checksum without a payload");
  switch (h.type) {
    case HRL_REC_WRITE:
      if (static_cast<uint64_t>(h.nr_sectors) << HRL_SECTOR_SHIFT != h.payload_bytes)
        return verdict(RecordVerdict::Malformed, why, "WRITE payload does not match its length");
      if (h.nr_sectors == 0 && !(h.flags & HRL_REC_FLUSH))
        return verdict(RecordVerdict::Malformed, why, "empty WRITE without FLUSH");
      break;
    case HRL_REC_DISCARD:
      if (h.payload_bytes != 0 || h.nr_sectors == 0 || h.flags)
        return verdict(RecordVerdict::Malformed, why, "DISCARD with payload, flags or no length");
      break;
    case HRL_REC_MARK:
      if (h.nr_sectors != 0 || h.sector != 0 || h.payload_bytes == 0 || h.payload_bytes > HRL_MARK_NAME_MAX || h.flags)
        return verdict(RecordVerdict::Malformed, why, "MARK with a bad name length or a sector range");
      break;
    case HRL_REC_PAD:
      if (h.nr_sectors != 0 || h.sector != 0 || h.payload_bytes % HRL_SECTOR_SIZE || h.payload_csum || h.flags)
        return verdict(RecordVerdict::Malformed, why, "PAD with data fields");
      break;
    default:
      return verdict(RecordVerdict::Malformed, why, "unknown record type " + std::to_string(h.type));
  }
  return RecordVerdict::Valid;
}

RecordVerdict check_record_in_log(const RecordHeader& h, const Superblock& sb, uint64_t ring_pos,
                                  uint64_t expected_seq, std::string* why) {
  if (h.seq != expected_seq || h.generation != sb.generation)
    return verdict(RecordVerdict::Stale, why,
                   "found seq " + std::to_string(h.seq) + " generation " + std::to_string(h.generation) +
                       ", expected seq " + std::to_string(expected_seq) + " generation " +
                       std::to_string(sb.generation));
  if (h.type == HRL_REC_PAD) {
    if (ring_pos + h.span() != sb.ring_bytes)
      return verdict(RecordVerdict::Malformed, why, "PAD does not end at the end of the ring");
    return RecordVerdict::Valid;
  }
  if (h.payload_bytes > sb.max_payload)
    return verdict(RecordVerdict::Malformed, why, "payload larger than the log's maximum");
  if (ring_pos + h.span() > sb.ring_bytes)
    return verdict(RecordVerdict::Malformed, why, "record crosses the end of the ring");
  if (h.type == HRL_REC_WRITE || h.type == HRL_REC_DISCARD) {
    if (h.sector > sb.data_sectors || h.nr_sectors > sb.data_sectors - h.sector)
      return verdict(RecordVerdict::Malformed, why, "range beyond the data device");
  }
  return RecordVerdict::Valid;
}

}  // namespace hrl
