// The mark a planned failover leaves on the primary's site before PROMOTE
// goes out. Once PROMOTE is sent the other site may take over at any moment;
// if this hrld stops before the answer, it must not start again as if it
// were certainly the primary. The mark says a handover was in flight: the
// next session finds the other site still this generation's replica (the
// handover did not happen: the mark goes), or, the other site having taken
// over, an operator reprotects this site.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace hrl {

struct HandoverMarker {
  uint64_t generation = 0;  // the generation the other site was asked to take
  uint64_t seq = 0;         // the last record it holds
};

// Written durably (a new file, synced, renamed, its directory synced).
void save_handover_marker(const std::string& path, const HandoverMarker& m);
// Empty when there is none; throws when it cannot be read.
std::optional<HandoverMarker> load_handover_marker(const std::string& path);
// Removed durably; nothing when there is none.
void remove_handover_marker(const std::string& path);

}  // namespace hrl
