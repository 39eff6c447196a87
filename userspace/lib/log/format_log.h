// Writing a new, empty log: the superblock slots, zeroed bitmaps, a clean ring.
#pragma once

#include <cstdint>
#include <optional>

#include "log/superblock.h"

namespace hrl {

struct FormatOptions {
  uint64_t ring_bytes = 0;  // 0: all the space after the bitmaps
  uint32_t bitmap_block = HRL_DEFAULT_BITMAP_BLOCK;
  uint32_t max_payload = HRL_DEFAULT_MAX_PAYLOAD;
  // The activity log: a crash resyncs only these many extents (0: no
  // activity log, a crash resyncs the whole device).
  uint32_t al_extents = HRL_DEFAULT_AL_EXTENTS;
  uint32_t al_extent_shift = HRL_DEFAULT_AL_EXTENT_SHIFT;
  // The replica is known to equal the data device (both new and zeroed, or
  // copied while nothing wrote): skip the initial full resync (DRBD's
  // --clear-bitmap). Wrong use leaves the replica silently different.
  bool assume_in_sync = false;
  // A volume that changes sites keeps its identity: reprotect and planned
  // failover format the new primary's log with the volume's uuid and its
  // next generation (records of an older one fail the reader's checks).
  std::optional<std::array<uint8_t, 16>> uuid;
  uint64_t generation = 0;  // 0: a new volume's
};

// Formats log for a data device of data_sectors. The new volume is marked
// clean and resync-required (new-volume): its replica starts empty, unless
// opt.assume_in_sync.
Superblock format_log(const File& log, uint64_t data_sectors, const FormatOptions& opt);

// The log a device already holds, if any: formatting over it loses its
// unshipped records, so the tools ask for --force first.
std::optional<Superblock> existing_log(const File& log);

}  // namespace hrl
