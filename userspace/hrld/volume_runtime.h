// What hrld knows about a volume while it runs: its state, its last error,
// the session's counters, and whether an operator paused it. Read by the
// control socket (hrlctl status) from another thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "config.h"
#include "history/history.h"
#include "history/point_image.h"
#include "repl/session.h"

namespace hrl {

class VolumeRuntime {
 public:
  explicit VolumeRuntime(const VolumeConfig& cfg);
  const VolumeConfig config;  // as started: name, devices, addresses, the role it started in
  using Role = VolumeConfig::Role;
  // The role now: config.role until a failover or reprotect changed it
  // (kept in <state_dir>/<name>.role, durable before it takes effect).
  Role role() const { return role_; }
  void set_role(Role r);
  bool is_primary() const { return role_ == Role::Primary; }
  SessionStats stats;
  // A secondary's before-images and recovery points (history = true).
  std::unique_ptr<History> history;
  OperatorControl operator_control;  // operator requests (primary)
  // A secondary's sessions end, and none starts, while a failover moves the replica.
  std::atomic<bool> hold_sessions{false};
  std::atomic<bool> in_session{false};
  // The test failover of a secondary: its image is built by `worker`.
  struct TestFailover {
    mutable std::mutex mu;  // guards the strings and numbers; progress is atomic
    std::string state = "none";  // none, building, ready, failed
    int64_t point_id = 0;
    uint64_t seq = 0;
    std::string image, error;
    ImageProgress progress;
    std::atomic<bool> cancel{false};  // the daemon stops: the build ends early
    std::thread worker;
  } test_failover;
  ~VolumeRuntime();
  std::string state_path() const { return config.state_dir + "/" + config.name + ".state"; }
  // The mark of a planned failover in flight (repl/handover_marker.h); empty without a state_dir.
  std::string handover_marker_path() const {
    return config.state_dir.empty() ? std::string() : config.state_dir + "/" + config.name + ".handover";
  }
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
  std::string role_path() const { return config.state_dir + "/" + config.name + ".role"; }
  std::atomic<Role> role_;
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
