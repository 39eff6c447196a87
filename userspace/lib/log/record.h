// Ring records: a native view of struct hrl_record_header, its codec, and the
// rules that tell a valid record from a torn, stale or malformed one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include <hrl/log_format.h>

namespace hrl {

struct Superblock;

struct RecordHeader {
  uint16_t type = HRL_REC_WRITE;
  uint16_t flags = 0;
  uint64_t seq = 0;
  uint64_t generation = 0;
  uint64_t sector = 0;
  uint32_t nr_sectors = 0;
  uint32_t payload_bytes = 0;
  uint64_t timestamp_ns = 0;
  uint64_t payload_csum = 0;

  uint64_t span() const { return hrl_record_span(payload_bytes); }
  bool has_payload_data() const { return type == HRL_REC_WRITE || type == HRL_REC_MARK; }
};

// Why a record position does not hold the record a reader expects.
enum class RecordVerdict {
  Valid,
  NoRecord,   // no record magic: never written, zeros, or foreign data
  Torn,       // header or payload checksum mismatch: a write cut short, or damage
  Stale,      // a valid record of an earlier lap or generation
  Malformed,  // checksums hold but the fields are impossible
};
const char* verdict_name(RecordVerdict v);

uint64_t payload_checksum(std::span<const std::byte> payload, uint64_t seed);

// Encodes a header unit (HRL_SECTOR_SIZE bytes: header then zeros) with its checksum.
void encode_record_header(const RecordHeader& h, uint64_t seed, std::span<std::byte> unit);

// The header checksum the record carries in the log: what identifies this
// record among any other that had its sequence number.
uint64_t header_checksum(const RecordHeader& h, uint64_t seed);

// Decodes a header unit and checks magic, checksum and field consistency on its own.
RecordVerdict decode_record_header(std::span<const std::byte> unit, uint64_t seed, RecordHeader& out,
                                   std::string* why = nullptr);

// Checks a decoded header against the log it sits in: the expected sequence
// number and generation, the size limits, the end of the ring, the data device.
RecordVerdict check_record_in_log(const RecordHeader& h, const Superblock& sb, uint64_t ring_pos,
                                  uint64_t expected_seq, std::string* why = nullptr);

const char* record_type_name(uint16_t type);

}  // namespace hrl
