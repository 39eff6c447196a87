// The operator's recovery commands, as the control socket runs them
// (docs/operations.md, "History and recovery points" and "Failover"):
//   point-create   primary:   a named point, app-consistent with a freeze
//   failover-test  secondary: a writable image of a point, built while replication goes on
//   failover-test-cleanup, failover (unplanned, at a point), commit
// Each returns the JSON answer: {"ok":true,...} or {"ok":false,"error":...}.
#pragma once

#include <nlohmann/json.hpp>

#include "repl/replica_state.h"
#include "volume_runtime.h"

namespace hrl {

nlohmann::json create_point(VolumeRuntime& v, const nlohmann::json& req);
nlohmann::json start_test_failover(VolumeRuntime& v, const nlohmann::json& req);
nlohmann::json cleanup_test_failover(VolumeRuntime& v);
nlohmann::json test_failover_status(const VolumeRuntime& v);
nlohmann::json fail_over(VolumeRuntime& v, const nlohmann::json& req);
nlohmann::json commit_failover(VolumeRuntime& v);

// A planned failover (hrlctl failover --planned) or failback: asks the
// primary's session to drain, verify and hand over; {"ok":true,"id":N}.
nlohmann::json request_handover(VolumeRuntime& v, const nlohmann::json& req);
// Reprotect after an unplanned failover: on the promoted site, it becomes the
// primary of the reversed pair; on the old primary, its secondary, waiting
// for the promoted site's generation and a whole-device checksum resync.
nlohmann::json reprotect(VolumeRuntime& v);

// This site takes the volume over as its primary at `generation`: its log
// is formatted with the volume's uuid (in_sync: the other site holds the
// same data, as after a planned failover's verify), its state says
// promoted, and its role changes. Throws when the site has no primary
// settings for the volume.
void become_primary(VolumeRuntime& v, const ReplicaState& st, uint64_t generation, bool in_sync);
// After PROMOTED: this site's data equals the new primary's at the start of
// its log; it becomes its secondary, in sync, at the next generation.
void become_secondary_after_handover(VolumeRuntime& v);

// At start: finishes what a crash interrupted, as the state file records it:
// an unplanned failover moving the replica back, or a takeover (planned
// failover, reprotect) between its state and its role. Says what it did.
std::string finish_interrupted_failover(VolumeRuntime& v);

}  // namespace hrl
