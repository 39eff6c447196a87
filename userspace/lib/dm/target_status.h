// dm-hrl's status line (docs/dm-hrl.md, "Status"), read in one place for
// hrld's sessions and its status report.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "log/log_writer.h"  // TrackingMode

namespace hrl {

// The flags field: comma-separated names, or "-".
enum TargetFlag : uint32_t {
  kFlagBitmapMode = 1u << 0,
  kFlagResyncPending = 1u << 1,
  kFlagResyncRequired = 1u << 2,
};

struct TargetStatus {
  TrackingMode mode = TrackingMode::Journal;
  uint64_t head = 0, tail = 0;
  uint64_t ring_used = 0, ring_bytes = 0;
  uint64_t dirty = 0;          // blocks in the dirty bitmap
  uint64_t resync_blocks = 0;  // blocks in the taken resync bitmap
  uint64_t take_seq = 0;       // 0: no bitmap taken
  uint32_t reason = 0;         // HRL_REASON_*
  uint32_t flags = 0;          // TargetFlag bits
  uint64_t completed = 0;      // every record below it has reached both devices
  uint64_t durable = 0;        // every record below it is on the log's stable media

  bool has(TargetFlag f) const { return (flags & f) != 0; }
  bool resync_pending() const { return has(kFlagResyncPending); }
  bool resync_required() const { return has(kFlagResyncRequired); }
  // Blocks only a resync can bring to the replica.
  bool needs_take() const { return mode != TrackingMode::Journal || dirty > 0 || resync_pending(); }
  // A power loss or a failing log: the replica is compared now, whatever the resync window says.
  bool urgent() const;
};

// Parses a status line (after "<start> <len> hrl "). A target older than the
// completed and durable fields reads as both at the head. Throws
// std::invalid_argument naming what it could not read.
TargetStatus parse_target_status(std::string_view line);

// The status of a dm-hrl device; the error names the device.
TargetStatus target_status(const std::string& device);

}  // namespace hrl
