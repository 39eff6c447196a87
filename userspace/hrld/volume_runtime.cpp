#include "volume_runtime.h"

#include "dm/target_status.h"
#include "io/file.h"
#include "log/superblock.h"
#include "recovery.h"
#include "repl/handover_marker.h"
#include "repl/replica_state.h"

#include <stdio.h>

#include <fstream>

namespace hrl {

VolumeRuntime::VolumeRuntime(const VolumeConfig& cfg) : config(cfg), role_(cfg.role), live_(cfg) {
  if (!cfg.state_dir.empty()) {
    std::ifstream in(role_path());
    std::string saved;
    if (in >> saved) {
      if (saved != "primary" && saved != "secondary") throw std::runtime_error(role_path() + ": not a role: " + saved);
      role_ = saved == "primary" ? Role::Primary : Role::Secondary;
    }
  }
  if (!cfg.state_dir.empty() && cfg.history) {
    history = std::make_unique<History>(cfg.state_dir + "/" + cfg.name + ".undo", cfg.state_dir + "/" + cfg.name + ".points",
                                        Retention{cfg.retention_hours * 3600, cfg.retention_bytes, cfg.history_segment,
                                                  cfg.history_reserve_bytes, cfg.history_reserve_fraction});
  }
}

void VolumeRuntime::set_role(Role r) {
  if (config.state_dir.empty())
    throw std::runtime_error("volume " + config.name + " has no state_dir here: it cannot change roles");
  replace_file(role_path(), r == Role::Primary ? "primary\n" : "secondary\n");
  role_ = r;
}

VolumeRuntime::~VolumeRuntime() {
  test_failover.cancel = true;
  if (test_failover.worker.joinable()) test_failover.worker.join();
}

void VolumeRuntime::set_state(const std::string& state, const std::string& error) {
  std::lock_guard lock(mu_);
  state_ = state;
  if (!error.empty()) last_error_ = error;
  if (state == "replicating") last_error_.clear();  // a session runs: what failed before is over
}

VolumeConfig VolumeRuntime::live() const {
  std::lock_guard lock(mu_);
  return live_;
}

void VolumeRuntime::reload(const VolumeConfig& fresh) {
  std::lock_guard lock(mu_);
  live_.bandwidth = fresh.bandwidth;
  live_.compression = fresh.compression;
  live_.resync_bandwidth = fresh.resync_bandwidth;
}

// The log's tracking mode and fill: from the target's status line with the
// module, from the superblock for a LogWriter's log (its head as persisted).
void VolumeRuntime::log_state(nlohmann::json& out) const {
  try {
    if (!config.device.empty()) {
      const TargetStatus t = target_status(config.device);
      out["mode"] = mode_name(t.mode);
      out["log_fill"] = t.ring_bytes ? static_cast<double>(t.ring_used) / static_cast<double>(t.ring_bytes) : 0.0;
      out["dirty_blocks"] = t.dirty;
      return;
    }
    Superblock sb = read_superblock(File::open(config.log, O_RDONLY));
    out["mode"] = sb.has(HRL_SB_RESYNC_REQUIRED) ? "resync-required" : sb.has(HRL_SB_BITMAP_MODE) ? "bitmap" : "journal";
    uint64_t used = sb.head_seq == sb.tail_seq ? 0 : (sb.head_offset + sb.ring_bytes - sb.tail_offset) % sb.ring_bytes;
    if (sb.head_seq != sb.tail_seq && used == 0) used = sb.ring_bytes;
    out["log_fill"] = static_cast<double>(used) / static_cast<double>(sb.ring_bytes);
    out["dirty_blocks"] = sb.dirty_bits;
  } catch (const std::exception& e) {
    out["mode"] = "unknown";
    out["log_fill"] = 0.0;
  }
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
  {
    std::lock_guard lock(mu_);
    if (sample_ns_ && now > sample_ns_ + 100000000ULL) {  // at least 0.1 s apart
      rate_ = static_cast<double>(raw - sample_bytes_) / (static_cast<double>(now - sample_ns_) / 1e9);
      sample_ns_ = now;
      sample_bytes_ = raw;
    } else if (!sample_ns_) {
      sample_ns_ = now;
      sample_bytes_ = raw;
    }
  }
  nlohmann::json out{
      {"name", config.name},
      {"role", is_primary() ? "primary" : "secondary"},
      {"state", state},
      {"durable_seq", stats.durable_seq.load()},
      {"rpo_seconds", rpo},
      {"bytes_shipped", raw},
      {"bytes_on_wire", wire},
      {"compression_ratio", wire ? static_cast<double>(raw) / static_cast<double>(wire) : 1.0},
      {"throughput_bytes_per_second", rate_},
      {"last_error", error},
  };
  if (is_primary()) {
    log_state(out);
    try {
      if (auto m = load_handover_marker(handover_marker_path())) {
        out["state"] = "handover-in-doubt";
        out["warning"] = "a planned failover was in flight when hrld stopped (the other site asked to take over at "
                         "generation " + std::to_string(m->generation) + ", seq " + std::to_string(m->seq) +
                         "): if the other site is the primary now, run hrlctl reprotect " + config.name +
                         " here; if it is still the secondary, the next session finds that and this site stays the primary";
      }
    } catch (const std::exception& e) {
      out["last_error"] = e.what();
    }
  }
  out["resync"] = resync_status();
  if (stats.resync.active && state != "paused") {
    auto mode = static_cast<proto::ResyncMode>(stats.resync.mode.load());
    out["state"] = mode == proto::ResyncMode::Verify               ? "verifying"
                   : stats.resync.reason == HRL_REASON_NEW_VOLUME ? "initial-sync"
                                                                  : "resyncing";
  }
  if (!is_primary()) {
    out["consistent"] = !stats.inconsistent;
    try {
      if (auto st = ReplicaState::load(state_path()); st && st->promoted) {
        out["state"] = st->promoted->committed ? "promoted" : "failed-over";
        out["failover"] = {{"seq", st->promoted->seq},
                           {"generation", st->generation},
                           {"complete", st->promoted->complete},
                           {"committed", st->promoted->committed}};
      }
    } catch (const std::exception& e) {
      out["last_error"] = e.what();
    }
    out["test_failover"] = test_failover_status(*this);
    if (history) {
      const HistorySpace space = history->space();
      out["history"] = {{"oldest_seq", history->oldest_boundary()},
                        {"bytes", history->size_bytes()},
                        {"suspended", space.suspended},
                        {"suspensions", space.suspensions},
                        {"dropped_for_space", {{"segments", space.dropped_segments}, {"points", space.dropped_points}}}};
      if (space.suspended)
        out["warning"] = "history is suspended: its file system has no room (replication goes on; points resume when "
                         "there is room)";
    }
  }
  return out;
}

// Progress of the pass running, with its rate over the last status calls and
// the time left at that rate.
nlohmann::json VolumeRuntime::resync_status() const {
  const ResyncStats& r = stats.resync;
  uint64_t now = now_realtime_ns();
  uint64_t done = r.done_bytes, total = r.total_bytes;
  {
    std::lock_guard lock(mu_);
    if (!r.active) {
      resync_sample_ns_ = 0;
      resync_rate_ = 0;
    } else if (!resync_sample_ns_ || done < resync_sample_bytes_) {
      resync_sample_ns_ = r.started_ns;
      resync_sample_bytes_ = 0;
    }
    if (r.active && now > resync_sample_ns_ + 200000000ULL) {
      double rate = static_cast<double>(done - resync_sample_bytes_) / (static_cast<double>(now - resync_sample_ns_) / 1e9);
      resync_rate_ = resync_rate_ ? 0.5 * resync_rate_ + 0.5 * rate : rate;
      resync_sample_ns_ = now;
      resync_sample_bytes_ = done;
    }
  }
  nlohmann::json out{
      {"active", r.active.load()},
      {"waiting_for_window", r.waiting.load()},
      {"mode", proto::resync_mode_name(static_cast<proto::ResyncMode>(r.mode ? r.mode.load() : 1))},
      {"reason", reason_name(r.reason)},
      {"total_bytes", total},
      {"done_bytes", done},
      {"read_bytes", r.read_bytes.load()},
      {"differing_bytes", r.differing_bytes.load()},
      {"written_bytes", r.written_bytes.load()},
      {"wire_bytes", r.wire_bytes.load()},
      {"passes", r.passes.load()},
      {"rate_bytes_per_second", resync_rate_},
      {"eta_seconds", resync_rate_ > 0 && total > done ? static_cast<double>(total - done) / resync_rate_ : 0.0},
  };
  {  // the operator's last request: a resync or verify on a primary, or a handover
    std::lock_guard lock(operator_control.mu);
    out["request_id"] = operator_control.request_id.load();
    out["finished_id"] = operator_control.finished_id;
    out["outcome"] = operator_control.outcome;
  }
  return out;
}

nlohmann::json VolumeRuntime::resync_result() {
  std::lock_guard lock(operator_control.mu);
  nlohmann::json ranges = nlohmann::json::array();
  for (const ByteRange& r : operator_control.verify_ranges) ranges.push_back({r.offset, r.length});
  return {{"ok", true},
          {"finished_id", operator_control.finished_id},
          {"outcome", operator_control.outcome},
          {"ranges", ranges},
          {"written_during_verify_bytes", operator_control.verify_written_bytes}};
}

}  // namespace hrl
