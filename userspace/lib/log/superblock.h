// The log superblock: a native view of struct hrl_superblock, its codec, its
// validation, and reading/writing the two slots on a log device.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include <hrl/log_format.h>

namespace hrl {

class File;

struct Superblock {
  uint32_t version = HRL_FORMAT_VERSION;
  uint32_t flags = 0;
  std::array<uint8_t, 16> uuid{};
  uint64_t generation = 1;
  uint64_t update_seq = 0;
  uint64_t data_sectors = 0;
  uint32_t bitmap_block = HRL_DEFAULT_BITMAP_BLOCK;
  uint32_t max_payload = HRL_DEFAULT_MAX_PAYLOAD;
  uint64_t bitmap_offset = 0;
  uint64_t resync_offset = 0;
  uint64_t bitmap_bytes = 0;
  uint64_t ring_offset = 0;
  uint64_t ring_bytes = 0;
  uint64_t tail_seq = 1;
  uint64_t tail_offset = 0;
  uint64_t head_seq = 1;
  uint64_t head_offset = 0;
  uint32_t resync_reason = HRL_REASON_NONE;
  uint64_t resync_take_seq = 0;
  uint64_t dirty_bits = 0;
  uint64_t resync_bits = 0;
  uint64_t bitmap_csum = 0;
  uint64_t resync_csum = 0;
  uint64_t created_ns = 0;
  uint64_t updated_ns = 0;
  uint64_t al_offset = 0;        // 0: no activity log (an unclean load resyncs the whole device)
  uint32_t al_extent_shift = 0;  // an extent covers 1 << al_extent_shift bytes of data
  uint32_t al_extents = 0;       // extents the activity log lists at most

  bool has(uint32_t flag) const { return (flags & flag) != 0; }
  uint64_t csum_seed() const { return hrl_csum_seed(uuid.data()); }
  uint64_t bitmap_bits() const { return hrl_bitmap_bits(data_sectors, bitmap_block); }
  uint64_t log_bytes_needed() const { return ring_offset + ring_bytes; }
};

// Encodes into a superblock slot (HRL_LOG_BLOCK bytes, rest zeroed), checksum included.
void encode_superblock(const Superblock& sb, std::span<std::byte> slot);

// Decodes and validates one slot. On failure returns nullopt and says why.
std::optional<Superblock> decode_superblock(std::span<const std::byte> slot, std::string* why);

// Checks the geometry against itself; empty string when consistent.
std::string check_geometry(const Superblock& sb);

// Lays out a log of log_bytes for a data device of data_sectors.
// ring_bytes == 0 uses all the space after the bitmaps and the activity log
// (al_extents == 0: none). Throws on a log too small.
Superblock make_layout(uint64_t data_sectors, uint64_t log_bytes, uint64_t ring_bytes,
                       uint32_t bitmap_block, uint32_t max_payload, uint32_t al_extents = HRL_DEFAULT_AL_EXTENTS,
                       uint32_t al_extent_shift = HRL_DEFAULT_AL_EXTENT_SHIFT);

// Reads both slots and returns the valid one with the higher update_seq;
// throws a clear error naming the device when neither is valid.
Superblock read_superblock(const File& log);

// Writes the next slot (update_seq + 1, slot update_seq % 2) and makes it
// durable before returning. Updates sb.update_seq and sb.updated_ns.
void write_superblock(const File& log, Superblock& sb);

// Serializes read-modify-write updates of the superblock between processes
// (a LogWriter, and the hrld that acknowledges its log): an OFD write lock on
// the two slots, held while the object lives.
class SuperblockLock {
 public:
  explicit SuperblockLock(const File& log);
  ~SuperblockLock();
  SuperblockLock(const SuperblockLock&) = delete;
  SuperblockLock& operator=(const SuperblockLock&) = delete;

 private:
  int fd_;
};

// The secondary made every record before tail_seq durable: moves the
// superblock's tail forward to (tail_seq, tail_offset), never back, under the
// lock. For consumers of a LogWriter log; with the kernel target the `ack`
// message does this. The writer frees the space when it next looks.
void acknowledge_log(const File& log, uint64_t tail_seq, uint64_t tail_offset);

const char* reason_name(uint32_t reason);
std::string flags_string(uint32_t flags);
std::string uuid_string(const std::array<uint8_t, 16>& uuid);
std::array<uint8_t, 16> random_uuid();
uint64_t now_realtime_ns();

}  // namespace hrl
