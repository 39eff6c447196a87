#include "dm/target_status.h"

#include <sstream>
#include <stdexcept>

#include "dm/dm_control.h"
#include "log/superblock.h"  // reason_name

namespace hrl {

namespace {

TrackingMode mode_of(const std::string& name) {
  for (TrackingMode m : {TrackingMode::Journal, TrackingMode::Bitmap, TrackingMode::ResyncRequired})
    if (name == mode_name(m)) return m;
  throw std::invalid_argument("unknown mode \"" + name + "\"");
}

uint32_t reason_of(const std::string& name) {
  for (uint32_t r = 0; r <= HRL_REASON_MAX; r++)
    if (name == reason_name(r)) return r;
  throw std::invalid_argument("unknown reason \"" + name + "\"");
}

uint32_t flags_of(const std::string& list) {
  if (list == "-") return 0;
  uint32_t flags = 0;
  std::istringstream in(list);
  for (std::string name; std::getline(in, name, ',');) {
    if (name == "bitmap-mode") flags |= kFlagBitmapMode;
    else if (name == "resync-pending") flags |= kFlagResyncPending;
    else if (name == "resync-required") flags |= kFlagResyncRequired;
    // A flag of a newer target: ignored, as the fields after ours are.
  }
  return flags;
}

}  // namespace

bool TargetStatus::urgent() const {
  return reason == HRL_REASON_UNCLEAN_SHUTDOWN || reason == HRL_REASON_LOG_CORRUPT ||
         reason == HRL_REASON_IO_ERROR || reason == HRL_REASON_BITMAP_LOST;
}

TargetStatus parse_target_status(std::string_view line) {
  std::istringstream in{std::string(line)};
  TargetStatus t;
  std::string mode, reason, flags;
  if (!(in >> mode >> t.head >> t.tail >> t.ring_used >> t.ring_bytes >> t.dirty >> t.resync_blocks >> t.take_seq >>
        reason >> flags))
    throw std::invalid_argument("a dm-hrl status line has ten fields or more: \"" + std::string(line) + "\"");
  t.mode = mode_of(mode);
  t.reason = reason_of(reason);
  t.flags = flags_of(flags);
  if (!(in >> t.completed)) {
    t.completed = t.durable = t.head;  // a target before both points
  } else if (!(in >> t.durable)) {
    throw std::invalid_argument("a dm-hrl status line with completed_seq and no durable_seq: \"" + std::string(line) + "\"");
  }
  return t;
}

TargetStatus target_status(const std::string& device) {
  try {
    return parse_target_status(dm_status(device));
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(device + ": " + e.what());
  }
}

}  // namespace hrl
