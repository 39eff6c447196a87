#include "volume_runtime.h"

#include "log/superblock.h"

namespace hrl {

void VolumeRuntime::set_state(const std::string& state, const std::string& error) {
  std::lock_guard lock(mu_);
  state_ = state;
  if (!error.empty()) last_error_ = error;
}

nlohmann::json VolumeRuntime::status() const {
  std::string state, error;
  {
    std::lock_guard lock(mu_);
    state = paused ? "paused" : state_;
    error = last_error_;
  }
  uint64_t pending = stats.pending_since_ns;
  uint64_t now = now_realtime_ns();
  double rpo = pending && now > pending ? static_cast<double>(now - pending) / 1e9 : 0.0;
  uint64_t raw = stats.raw_bytes, wire = stats.wire_bytes;
  return nlohmann::json{
      {"name", config.name},
      {"role", config.role == VolumeConfig::Role::Primary ? "primary" : "secondary"},
      {"state", state},
      {"durable_seq", stats.durable_seq.load()},
      {"rpo_seconds", rpo},
      {"bytes_shipped", raw},
      {"bytes_on_wire", wire},
      {"compression_ratio", wire ? static_cast<double>(raw) / static_cast<double>(wire) : 1.0},
      {"last_error", error},
  };
}

}  // namespace hrl
