// What hrld knows about a volume while it runs: its state, its last error,
// the session's counters, and whether an operator paused it. Read by the
// control socket (hrlctl status) from another thread.
#pragma once

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "config.h"
#include "repl/session.h"

namespace hrl {

class VolumeRuntime {
 public:
  explicit VolumeRuntime(const VolumeConfig& cfg) : config(cfg) {}
  const VolumeConfig config;
  SessionStats stats;
  std::atomic<bool> paused{false};

  void set_state(const std::string& state, const std::string& error = {});
  nlohmann::json status() const;

 private:
  mutable std::mutex mu_;
  std::string state_ = "starting";
  std::string last_error_;
};

}  // namespace hrl
