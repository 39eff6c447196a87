// The operator's recovery commands, as the control socket runs them
// (docs/operations.md, "History and recovery points" and "Failover"):
//   point-create   primary:   a named point, app-consistent with a freeze
//   failover-test  secondary: a writable image of a point, built while replication goes on
//   failover-test-cleanup, failover (unplanned, at a point), commit
// Each returns the JSON answer: {"ok":true,...} or {"ok":false,"error":...}.
#pragma once

#include <nlohmann/json.hpp>

#include "volume_runtime.h"

namespace hrl {

nlohmann::json create_point(VolumeRuntime& v, const nlohmann::json& req);
nlohmann::json start_test_failover(VolumeRuntime& v, const nlohmann::json& req);
nlohmann::json cleanup_test_failover(VolumeRuntime& v);
nlohmann::json test_failover_status(const VolumeRuntime& v);
nlohmann::json fail_over(VolumeRuntime& v, const nlohmann::json& req);
nlohmann::json commit_failover(VolumeRuntime& v);

// At start: finishes an unplanned failover that a crash interrupted while it
// moved the replica back (the state file says where it was going).
void finish_interrupted_failover(VolumeRuntime& v);

}  // namespace hrl
