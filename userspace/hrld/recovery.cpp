#include "recovery.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <thread>

#include "dm/dm_control.h"
#include "history/point_image.h"
#include "io/fs_freeze.h"
#include "log/format_log.h"
#include "log/superblock.h"
#include "net/resync_messages.h"
#include "repl/handover_marker.h"
#include "repl/replica_state.h"

namespace hrl {
namespace {

using namespace std::chrono_literals;

nlohmann::json fail(const std::string& why) { return {{"ok", false}, {"error", why}}; }

bool is_secondary(const VolumeRuntime& v) { return !v.is_primary(); }

std::string default_test_image(const VolumeRuntime& v) {
  return v.config.state_dir + "/" + v.config.name + "-test-failover.img";
}

// A point by id, or the newest; an error naming what retention keeps.
std::optional<RecoveryPoint> find_point(History& h, int64_t id, std::string& why) {
  auto points = h.points();
  if (points.empty()) {
    why = "no recovery point has been taken yet";
    return std::nullopt;
  }
  if (!id) return points.back();
  if (auto p = h.point(id)) return p;
  why = "no point #" + std::to_string(id) + ": it is outside the retention window or never existed (the oldest kept is #" +
        std::to_string(points.front().id) + ", see hrlctl points)";
  return std::nullopt;
}

// The replica mixes old and new blocks during a resync: no image from it.
std::string resyncing(const VolumeRuntime& v, const ReplicaState& st) {
  if (!st.resync && st.consistent() && !v.stats.inconsistent) return {};
  return "volume " + v.config.name + " is resyncing: its replica mixes old and new blocks until the pass and the records "
         "after it are applied; no failover until then";
}

}  // namespace

nlohmann::json create_point(VolumeRuntime& v, const nlohmann::json& req) {
  const std::string& name = v.config.name;
  if (is_secondary(v)) return fail("volume " + name + " is a secondary here: points are taken on its primary");
  if (v.config.device.empty())
    return fail("volume " + name + "'s log is written by a user-space LogWriter, not dm-hrl: its writer puts its marks in the log");
  std::string point = req.value("name", "");
  std::string freeze = req.value("freeze", "");
  auto timeout = std::chrono::milliseconds(req.value("timeout_ms", 10000));
  std::string full = (freeze.empty() ? "" : kAppPointPrefix) + point;
  if (point.empty() || full.size() > HRL_MARK_NAME_MAX ||
      std::any_of(point.begin(), point.end(), [](unsigned char c) { return std::isspace(c) || !std::isprint(c); }))
    return fail("a point's name is 1 to 250 printable characters without spaces, not '" + point + "'");
  if (point.rfind(kAppPointPrefix, 0) == 0)
    return fail(std::string("'") + kAppPointPrefix + "' starts the names of app-consistent points: use --freeze");
  try {
    auto mark = [device = v.config.device, full] { return dm_message(device, "mark " + full); };
    std::string seq;
    if (freeze.empty()) {
      seq = mark();
    } else {
      check_mounted_on(freeze, v.config.data);
      seq = while_frozen(freeze, timeout, mark);
    }
    return {{"ok", true}, {"seq", std::stoull(seq)}, {"kind", freeze.empty() ? "named" : "app-consistent"}};
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

// Why no point can be rebuilt: records went without before-images.
static std::string history_gap(const VolumeRuntime& v) {
  return "volume " + v.config.name + "'s replica took records without before-images (history was off or suspended): "
         "no point can be rebuilt until history starts over with the next batch";
}

nlohmann::json start_test_failover(VolumeRuntime& v, const nlohmann::json& req) {
  const std::string& name = v.config.name;
  if (!is_secondary(v)) return fail("volume " + name + " is the primary here: a test failover is run on its secondary");
  if (!v.history) return fail("volume " + name + " keeps no history here (history = false): there are no points to test");
  auto& tf = v.test_failover;
  std::lock_guard lock(tf.mu);
  if (tf.state == "building") return fail("the test failover image of " + name + " is being built");
  if (tf.state == "ready")
    return fail("a test failover image of " + name + " exists (" + tf.image + "): hrlctl failover " + name +
                " --cleanup removes it first");
  auto st = ReplicaState::load(v.state_path());
  if (!st) return fail("volume " + name + "'s replica follows no primary yet");
  if (st->promoted) return fail("volume " + name + " was failed over to this site: test the volume itself");
  if (auto why = resyncing(v, *st); !why.empty()) return fail(why);
  v.history->open(st->uuid, st->durable_seq);
  if (!st->history_complete) return fail(history_gap(v));
  std::string why;
  auto point = find_point(*v.history, req.value("point", int64_t{0}), why);
  if (!point) return fail(why);
  const std::string image = req.value("image", default_test_image(v));
  try {  // never the replica, nor a device in use: refused before anything changes
    check_image_target(v.config.replica, image);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  if (tf.worker.joinable()) tf.worker.join();
  tf.state = "building";
  tf.point_id = point->id;
  tf.seq = point->seq;
  tf.image = image;
  tf.error.clear();
  tf.progress.total_bytes = tf.progress.copied_bytes = tf.progress.undone_bytes = 0;
  tf.cancel = false;
  tf.worker = std::thread([&v, seq = point->seq, image = tf.image] {
    std::string error;
    try {
      build_point_image(*v.history, v.config.replica, seq, image, &v.test_failover.progress, &v.test_failover.cancel);
    } catch (const std::exception& e) {
      error = e.what();
    }
    std::lock_guard done(v.test_failover.mu);
    v.test_failover.state = error.empty() ? "ready" : "failed";
    v.test_failover.error = error;
  });
  return {{"ok", true}, {"point", point->id}, {"seq", point->seq}, {"image", tf.image}};
}

nlohmann::json cleanup_test_failover(VolumeRuntime& v) {
  const std::string& name = v.config.name;
  if (!is_secondary(v)) return fail("volume " + name + " is the primary here: a test failover lives on its secondary");
  auto& tf = v.test_failover;
  std::lock_guard lock(tf.mu);
  if (tf.state == "building") return fail("the test failover image of " + name + " is still being built");
  std::string image = tf.state == "none" ? default_test_image(v) : tf.image;
  struct stat sb;
  bool exists = ::stat(image.c_str(), &sb) == 0;
  if (tf.state == "none" && !exists) return fail("volume " + name + " has no test failover to clean up");
  // A file made for the test goes; a device the operator named stays, as it is.
  if (exists && S_ISREG(sb.st_mode) && ::unlink(image.c_str()) < 0)
    return fail("remove " + image + ": " + std::system_category().message(errno));
  tf.state = "none";
  tf.error.clear();
  return {{"ok", true}, {"image", image}, {"removed", exists && S_ISREG(sb.st_mode)}};
}

nlohmann::json test_failover_status(const VolumeRuntime& v) {
  auto& tf = v.test_failover;
  std::lock_guard lock(tf.mu);
  return {{"state", tf.state},
          {"point", tf.point_id},
          {"seq", tf.seq},
          {"image", tf.image},
          {"error", tf.error},
          {"total_bytes", tf.progress.total_bytes.load()},
          {"copied_bytes", tf.progress.copied_bytes.load()},
          {"undone_bytes", tf.progress.undone_bytes.load()}};
}

// Rolls the replica back to the promotion's seq and records it done. The
// state says where it goes before the replica changes: after a crash the
// roll back runs again, and writing the same before-images again over a
// partly rolled-back replica ends at the same image.
static void complete_promotion(VolumeRuntime& v, ReplicaState& st) {
  if (v.history) {
    v.history->open(st.uuid, st.durable_seq);
    roll_back_replica(*v.history, v.config.replica, st.promoted->seq);
    v.history->forget_after(st.promoted->seq);
  }
  st.durable_seq = st.promoted->seq;
  st.consistent_seq = std::min(st.consistent_seq, st.durable_seq);
  st.promoted->complete = true;
  st.save(v.state_path());
}

nlohmann::json fail_over(VolumeRuntime& v, const nlohmann::json& req) {
  const std::string& name = v.config.name;
  if (!is_secondary(v))
    return fail("volume " + name + " is the primary here: an unplanned failover promotes its secondary, on that site");
  {
    std::lock_guard lock(v.test_failover.mu);
    if (v.test_failover.state == "building") return fail("the test failover image of " + name + " is being built");
  }
  auto st = ReplicaState::load(v.state_path());
  if (!st) return fail("volume " + name + "'s replica follows no primary yet: there is nothing to fail over to");
  if (st->promoted && st->promoted->committed)
    return fail("volume " + name + " was failed over at seq " + std::to_string(st->promoted->seq) + " and committed");
  if (auto why = resyncing(v, *st); !why.empty()) return fail(why);
  const int64_t id = req.value("point", int64_t{0});
  std::optional<RecoveryPoint> point;
  if (id) {
    if (!v.history) return fail("volume " + name + " keeps no history here (history = false): only the latest image");
    v.history->open(st->uuid, st->durable_seq);
    if (!st->history_complete) return fail(history_gap(v));
    std::string why;
    if (!(point = find_point(*v.history, id, why))) return fail(why);
    if (st->promoted && point->seq > st->promoted->seq)
      return fail("volume " + name + " went back to seq " + std::to_string(st->promoted->seq) +
                  " when it failed over; it cannot go forward to point #" + std::to_string(id) + " at seq " +
                  std::to_string(point->seq));
  }
  // End the session with the primary; none starts until the state says promoted.
  v.hold_sessions = true;
  struct Release {
    VolumeRuntime& v;
    ~Release() { v.hold_sessions = false; }
  } release{v};
  for (auto until = std::chrono::steady_clock::now() + 15s; v.in_session;) {
    if (std::chrono::steady_clock::now() > until) return fail("the session with the primary did not end within 15 s");
    std::this_thread::sleep_for(20ms);
  }
  try {
    st = ReplicaState::load(v.state_path());  // the session may have applied more, or begun a resync
    if (auto why = resyncing(v, *st); !why.empty()) return fail(why);
    const uint64_t seq = point ? point->seq : st->promoted ? st->promoted->seq : st->durable_seq;
    // The history back to seq stays until the replica is there; if it is
    // gone already, nothing is recorded and nothing changes.
    std::optional<History::Pin> pin;
    if (v.history) {
      try {
        v.history->open(st->uuid, st->durable_seq);
        pin.emplace(*v.history, seq);
      } catch (const std::exception& e) {
        return fail(e.what());  // pruned meanwhile: nothing changed
      }
    }
    if (!st->promoted) {
      st->generation++;  // the old primary's records are another lineage now
      st->promoted = Promotion{seq, now_realtime_ns(), false, false};
    } else {
      st->promoted->seq = seq;
      st->promoted->complete = false;
    }
    st->save(v.state_path());
    complete_promotion(v, *st);
    return {{"ok", true}, {"seq", seq}, {"generation", st->generation}};
  } catch (const std::exception& e) {
    return fail(std::string("the failover did not finish: ") + e.what() + "; hrlctl failover " + name + " retries it");
  }
}

nlohmann::json commit_failover(VolumeRuntime& v) {
  const std::string& name = v.config.name;
  if (!is_secondary(v)) return fail("volume " + name + " is the primary here: a failover is committed on the site it went to");
  auto st = ReplicaState::load(v.state_path());
  if (!st || !st->promoted) return fail("volume " + name + " has not been failed over: there is nothing to commit");
  if (!st->promoted->complete) return fail("the failover of " + name + " did not finish: run hrlctl failover " + name + " again");
  if (st->promoted->committed) return fail("the failover of " + name + " is already committed");
  try {
    if (v.history) {
      v.history->open(st->uuid, st->durable_seq);
      v.history->clear(st->promoted->seq);  // the volume is written without before-images from now on
    }
    st->promoted->committed = true;
    st->save(v.state_path());
    return {{"ok", true}, {"seq", st->promoted->seq}};
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

namespace {

// Whether the log already holds this takeover's superblock: the volume's
// uuid at the new generation, which no earlier format of this log can have
// (generations only grow). Only a log that is not an hrl log at all reads
// as unformatted; an I/O error is an error, never a reason to format.
bool formatted_for(const std::string& log, const ReplicaState& st) {
  Superblock sb;
  try {
    sb = read_superblock(File::open_direct(log, O_RDONLY));
  } catch (const std::system_error&) {
    throw;
  } catch (const std::runtime_error&) {  // no valid superblock slot: not formatted yet
    return false;
  }
  return sb.uuid == st.uuid && sb.generation == st.generation;
}

// The steps of a takeover the state records, each skipped when a crash came
// after it: the log formatted (never again once the device may have written
// records into it), the device mapped over the replica, history cleared, the
// role saved, and last the state without its takeover.
void finish_takeover(VolumeRuntime& v, ReplicaState& st) {
  const bool mapped = !v.config.device.empty() && dm_open_count(v.config.device).has_value();
  if (!mapped && !formatted_for(v.config.log, st)) {  // a mapped device may have written records: never again
    FormatOptions fo;
    fo.uuid = st.uuid;
    fo.generation = st.generation;
    fo.assume_in_sync = st.takeover->in_sync;
    format_log(File::open(v.config.log, O_RDWR), st.data_sectors, fo);
  }
  // With dm-hrl, the application writes through the target from now on: map it over the replica.
  if (!v.config.device.empty() && !mapped)
    dm_create(v.config.device, st.data_sectors, "hrl", v.config.replica + " " + v.config.log);
  if (v.history) {
    v.history->open(st.uuid, st.durable_seq);
    v.history->clear(st.durable_seq);  // the replica is the volume now: written without before-images
  }
  v.set_role(VolumeConfig::Role::Primary);
  remove_handover_marker(v.handover_marker_path());  // one this site left as a primary before is stale now
  st.takeover.reset();
  st.save(v.state_path());
}

// A takeover that failed (not a crash): back to the secondary it was, so
// that refusing PROMOTE is the truth. When even that fails, the outcome is
// unsettled: the state still records the takeover, which the next start
// finishes, and the primary must get no answer at all.
void undo_takeover(VolumeRuntime& v, const ReplicaState& before, bool device_was_mapped) {
  try {
    if (!v.config.device.empty() && !device_was_mapped && dm_open_count(v.config.device)) dm_remove(v.config.device);
    v.set_role(VolumeConfig::Role::Secondary);  // always: a failed save may have renamed the file before failing
    before.save(v.state_path());
  } catch (const std::exception& e) {
    throw TakeoverUnsettled(std::string("the takeover failed and could not be undone (") + e.what() +
                            "): it is finished when hrld starts again");
  }
}

}  // namespace

void become_primary(VolumeRuntime& v, const ReplicaState& st, uint64_t generation, bool in_sync) {
  const std::string& name = v.config.name;
  if (st.takeover) {  // one that could not be undone (a reprotect run again): finish it
    ReplicaState pending = st;
    finish_takeover(v, pending);
    return;
  }
  if (auto why = missing_for_primary(v.config); !why.empty())
    throw std::runtime_error("volume " + name + " cannot be primary on this site: " + why);
  if (!v.config.device.empty() && dm_open_count(v.config.device))
    throw std::runtime_error("/dev/mapper/" + v.config.device + " already exists on this site");
  ReplicaState next = st;
  next.generation = generation;
  next.promoted = Promotion{st.durable_seq, now_realtime_ns(), true, true};
  next.takeover = Takeover{in_sync};
  try {
    next.save(v.state_path());  // first: from here on a crash is finished at the next start
    finish_takeover(v, next);
  } catch (const std::exception&) {
    undo_takeover(v, st, false);
    throw;
  }
}

// This site's data becomes the replica of the volume's other site: a new
// state (the log's identity, no records yet), no history, the role.
static void become_secondary(VolumeRuntime& v, const Superblock& sb, uint64_t generation,
                             std::optional<ResyncCheckpoint> resync) {
  ReplicaState st;
  st.uuid = sb.uuid;
  st.generation = generation;
  st.data_sectors = sb.data_sectors;
  st.durable_seq = 0;  // the other site's log starts at seq 1
  st.adopt_newer_generation = resync.has_value();
  st.resync = resync;
  if (v.history) {  // a new history first: the state then says it is whole
    v.history->open(st.uuid, 0);
    v.history->clear(0);
    st.history_complete = true;
  }
  st.save(v.state_path());
  v.set_role(VolumeConfig::Role::Secondary);
}

void become_secondary_after_handover(VolumeRuntime& v) {
  // The new primary's log starts over data equal to this site's, at the next generation.
  Superblock sb = read_superblock(File::open_direct(v.config.log, O_RDONLY));  // the kernel may have written it
  become_secondary(v, sb, sb.generation + 1, std::nullopt);
  v.operator_control.handed_over = false;
  remove_handover_marker(v.handover_marker_path());  // the outcome is known: this site is the secondary
}

nlohmann::json request_handover(VolumeRuntime& v, const nlohmann::json& req) {
  const std::string& name = v.config.name;
  const bool failback = req.value("failback", false);
  if (!v.is_primary())
    return fail("volume " + name + " is a secondary here: a planned " + (failback ? "failback" : "failover") +
                " runs on its primary");
  if (failback && v.config.role == VolumeConfig::Role::Primary)
    return fail("volume " + name + "'s home is this site: failback runs on the site it failed over to");
  if (auto why = missing_for_secondary(v.config); !why.empty())
    return fail("this site cannot become volume " + name + "'s secondary: " + why);
  if (v.paused) return fail("volume " + name + " is paused: hrlctl resume it first");
  if (v.operator_control.requested)
    return fail("volume " + name + " already has a resync, verify or failover waiting to start");
  uint64_t id = ++v.operator_control.request_id;
  v.operator_control.requested = OperatorControl::kHandover;
  return {{"ok", true}, {"id", id}};
}

nlohmann::json reprotect(VolumeRuntime& v) {
  const std::string& name = v.config.name;
  try {
    if (v.is_primary()) {
      // The old primary: its data becomes the promoted site's replica.
      if (auto why = missing_for_secondary(v.config); !why.empty())
        return fail("this site cannot become volume " + name + "'s secondary: " + why);
      if (!v.config.device.empty() && ::access(("/dev/mapper/" + v.config.device).c_str(), F_OK) == 0)
        return fail("/dev/mapper/" + v.config.device + " still exists: stop the application and remove it first "
                    "(hrlctl volume remove); the replica is written under it");
      Superblock sb = read_superblock(File::open_direct(v.config.log, O_RDONLY));
      if (v.config.device.empty() && !sb.has(HRL_SB_CLEAN))
        return fail("volume " + name + "'s log is open for writing: stop the application first; the resync "
                    "will overwrite its data");
      // It waits for the promoted site's newer generation, then a whole-device checksum resync.
      become_secondary(v, sb, sb.generation,
                       ResyncCheckpoint{static_cast<uint32_t>(proto::ResyncMode::Checksum),
                                        static_cast<uint32_t>(proto::ResyncRegions::Device), HRL_REASON_OPERATOR, 0, 0,
                                        now_realtime_ns()});
      remove_handover_marker(v.handover_marker_path());  // a handover in doubt: settled
      return {{"ok", true}, {"role", "secondary"}, {"generation", sb.generation}};
    }
    auto st = ReplicaState::load(v.state_path());
    if (!st || !st->promoted)
      return fail("volume " + name + " was not failed over to this site: reprotect runs on the promoted site "
                  "and on the old primary");
    if (!st->promoted->complete) return fail("the failover of " + name + " did not finish: run hrlctl failover " + name + " again");
    if (!st->promoted->committed) return fail("commit the failover first: hrlctl commit " + name);
    become_primary(v, *st, st->generation, false);  // the old primary's data differs: a checksum resync
    return {{"ok", true}, {"role", "primary"}, {"generation", st->generation}};
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

std::string finish_interrupted_failover(VolumeRuntime& v) {
  auto st = ReplicaState::load(v.state_path());
  if (!st) return {};
  if (st->takeover) {
    finish_takeover(v, *st);
    return "finished the takeover a crash interrupted: this site is the primary at generation " +
           std::to_string(st->generation);
  }
  if (!v.is_primary() && st->promoted && !st->promoted->complete) {
    complete_promotion(v, *st);
    return "finished the failover a crash interrupted: the replica is back at seq " + std::to_string(st->promoted->seq);
  }
  return {};
}

}  // namespace hrl
