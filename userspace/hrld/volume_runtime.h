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
  explicit VolumeRuntime(const VolumeConfig& cfg) : config(cfg), live_(cfg) {}
  const VolumeConfig config;  // as started: name, role, devices, addresses
  SessionStats stats;
  ResyncControl resync_control;  // operator requests (primary)
  std::atomic<bool> paused{false};
  std::atomic<bool> restart{false};  // end the session to take new settings

  // What SIGHUP may change while running: bandwidth, compression.
  VolumeConfig live() const;
  void reload(const VolumeConfig& fresh);

  void set_state(const std::string& state, const std::string& error = {});
  nlohmann::json status() const;
  // The outcome of the last operator resync or verify, with a verify's ranges.
  nlohmann::json resync_result();

 private:
  void log_state(nlohmann::json& out) const;
  nlohmann::json resync_status() const;
  mutable std::mutex mu_;
  VolumeConfig live_;
  std::string state_ = "starting";
  std::string last_error_;
  mutable uint64_t sample_ns_ = 0, sample_bytes_ = 0;  // for the throughput between two status calls
  mutable double rate_ = 0;
  mutable uint64_t resync_sample_ns_ = 0, resync_sample_bytes_ = 0;  // for the resync's rate
  mutable double resync_rate_ = 0;
};

}  // namespace hrl
