// Failovers interrupted at each of their file operations, then hrld started
// again. First a takeover (a planned failover's PROMOTE, a reprotect of the
// promoted site) interrupted at each of its file operations, then hrld started again
// (a new VolumeRuntime and finish_interrupted_failover, as hrld's main does).
// The site must end as one of two things: the primary at the new generation,
// its log formatted for it, its state without the takeover; or, when the
// crash came before the state recorded the takeover, the secondary it was,
// its state unchanged. Never a secondary whose state says it was promoted.
// A process crash (the page cache keeps every write) and a power loss (the
// states FaultEnv builds) at each call. The device-mapper step is not taken
// here (no dm on the host): the VM tier's failover scenario maps it.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>

#include "fault_env.h"
#include "log/format_log.h"
#include "log/superblock.h"
#include "history/history.h"
#include "log/log_reader.h"
#include "recovery.h"
#include "repl/replica_state.h"
#include "test_support.h"
#include "volume_runtime.h"

namespace hrl {
namespace {

constexpr uint64_t kOldGeneration = 4;

bool same_state(const ReplicaState& a, const ReplicaState& b) {
  return a.uuid == b.uuid && a.generation == b.generation && a.durable_seq == b.durable_seq &&
         a.promoted == b.promoted && a.takeover == b.takeover && a.history_complete == b.history_complete;
}

class Takeover : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::string state_dir = dir.file("state");
  VolumeConfig cfg;
  ReplicaState before;

  void SetUp() override {
    std::filesystem::create_directory(state_dir);
    cfg.name = "db0";
    cfg.role = VolumeConfig::Role::Secondary;
    cfg.log = test::make_file(dir.file("log.img"), 2 << 20);
    cfg.replica = test::make_file(dir.file("replica.img"), 4 << 20);
    cfg.data = cfg.replica;
    cfg.peer = "127.0.0.1:1";
    cfg.peer_name = "site-a";
    cfg.listen = "127.0.0.1:1";
    cfg.state_dir = state_dir;
    cfg.history_reserve_fraction = 0;
    before.uuid = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    before.generation = kOldGeneration;
    before.data_sectors = (4 << 20) / 512;
    before.durable_seq = 41;
    before.history_complete = true;
  }

  // A fresh secondary: its state, a log that holds an older generation.
  void fresh_secondary() {
    std::filesystem::remove_all(state_dir);
    std::filesystem::create_directory(state_dir);
    FormatOptions fo;
    fo.uuid = before.uuid;
    fo.generation = kOldGeneration - 1;
    format_log(File::open(cfg.log, O_RDWR), before.data_sectors, fo);
    before.save(VolumeRuntime(cfg).state_path());
  }

  // What hrld finds when it starts again; false when it is still the secondary.
  bool check_after_restart() {
    VolumeRuntime rt(cfg);
    finish_interrupted_failover(rt);
    auto st = ReplicaState::load(rt.state_path());
    EXPECT_TRUE(st.has_value());
    if (!st) return false;
    if (!rt.is_primary()) {
      EXPECT_TRUE(same_state(*st, before)) << "a secondary whose state changed: generation " << st->generation
                             << (st->promoted ? ", promoted" : "") << (st->takeover ? ", taking over" : "");
      return false;
    }
    EXPECT_EQ(st->generation, kOldGeneration + 1);
    EXPECT_FALSE(st->takeover.has_value());
    EXPECT_TRUE(st->promoted && st->promoted->complete && st->promoted->committed);
    Superblock sb = read_superblock(File::open(cfg.log, O_RDONLY));
    EXPECT_EQ(sb.uuid, before.uuid);
    EXPECT_EQ(sb.generation, kOldGeneration + 1) << "the log was not formatted for the new primary";
    EXPECT_EQ(sb.head_seq, 1u);
    return true;
  }
};

TEST_F(Takeover, ACrashAtEachCallIsFinishedAtTheNextStartOrNeverBegan) {
  const char* replay = getenv("HRL_TEST_SEED");
  const uint64_t seed = replay ? std::strtoull(replay, nullptr, 10) : std::random_device{}();
  printf("seed %llu (replay with HRL_TEST_SEED=%llu)\n", static_cast<unsigned long long>(seed),
         static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  int primary = 0, secondary = 0;
  for (bool power_loss : {false, true}) {
    for (uint64_t n = 1;; n++) {
      SCOPED_TRACE(std::string(power_loss ? "a power loss" : "a crash") + " at call " + std::to_string(n));
      fresh_secondary();
      test::FaultEnv faults(dir.path());
      {
        test::ScopedEnv in_use(faults);
        faults.sync_all();
        VolumeRuntime rt(cfg);
        faults.crash_at(n);
        try {
          become_primary(rt, before, kOldGeneration + 1, true);
        } catch (const std::exception&) {
          ASSERT_TRUE(faults.crashed());
        }
        if (!faults.crashed()) break;  // every call of the takeover had its crash
        if (power_loss)
          faults.power_loss(rng);
        else
          faults.clear();  // a process crash: the page cache keeps what was written
        (check_after_restart() ? primary : secondary)++;
      }
      if (HasFailure()) return;
    }
  }
  printf("%d crash states: %d ended as the primary, %d as the secondary they were\n", primary + secondary, primary,
         secondary);
  EXPECT_GT(primary, 0);
  EXPECT_GT(secondary, 0);
}

// A takeover that fails (ENOSPC or EIO at one call, or at every call of one
// kind: a full or failing state directory), not a crash. Answered with a
// refusal, site-a maps its device again and goes on as the primary, so a
// takeover that throws must have left this site the secondary it was, now
// and after a restart. Only when undoing failed too (TakeoverUnsettled:
// site-a gets no answer and stays in doubt) may the next start finish it.
TEST_F(Takeover, AFailureAtEachCallIsUndoneOrLeftUnsettled) {
  std::map<test::FsOp, uint64_t> calls;
  {
    fresh_secondary();
    test::FaultEnv faults(dir.path());
    test::ScopedEnv in_use(faults);
    faults.sync_all();
    VolumeRuntime rt(cfg);
    faults.clear();
    become_primary(rt, before, kOldGeneration + 1, true);
    for (test::FsOp op : test::kAllFsOps) calls[op] = faults.calls(op);
  }
  int undone = 0, unsettled = 0, done = 0;
  for (test::FsOp op : test::kAllFsOps)
    for (int err : {ENOSPC, EIO})
      for (uint64_t n = 0; n <= calls[op]; n++) {  // 0: every call of op fails
        SCOPED_TRACE(std::string(test::fs_op_name(op)) + (n ? " call " + std::to_string(n) : " every call") + " fails: " +
                     strerror(err));
        fresh_secondary();
        test::FaultEnv faults(dir.path());
        enum { Done, Refused, Unsettled } outcome = Done;
        {
          test::ScopedEnv in_use(faults);
          faults.sync_all();
          VolumeRuntime rt(cfg);
          if (n)
            faults.fail_at(op, n, err);
          else
            faults.fail_always(op, err);
          try {
            become_primary(rt, before, kOldGeneration + 1, true);
          } catch (const TakeoverUnsettled&) {
            outcome = Unsettled;
          } catch (const std::exception&) {
            outcome = Refused;
          }
          faults.clear();
          if (outcome == Refused) {
            EXPECT_FALSE(rt.is_primary()) << "a refused takeover left the role primary";
          }
        }
        const bool primary = check_after_restart();
        if (outcome == Refused) {
          EXPECT_FALSE(primary) << "a refused takeover was finished at the next start";
        } else if (outcome == Done) {
          EXPECT_TRUE(primary);
        }
        (outcome == Refused ? undone : outcome == Unsettled ? unsettled : done)++;
        if (HasFailure()) return;
      }
  printf("%d failures injected: %d undone (refused), %d unsettled (no answer), %d without effect\n",
         undone + unsettled + done, undone, unsettled, done);
  EXPECT_GT(undone, 0);
}

// An unplanned failover to a point, and its commit, interrupted at each
// file operation (a process crash: the page cache keeps what was written),
// then hrld started again. Before the state records the failover nothing
// changed: the replica is the latest image and the state as it was. After
// it, the next start finishes the roll back: the replica is the point's
// image. A commit interrupted is either done or can be run again, and never
// changes the image. (The point catalog is SQLite's, outside the Env: its
// transactions are durable when they return, as after a process crash.)
class UnplannedFailoverCrash : public Takeover {
 protected:
  // What hrlctl would be told: the answer, or the error the control socket reports.
  static nlohmann::json answer_of(const std::function<nlohmann::json()>& request) {
    try {
      return request();
    } catch (const std::exception& e) {
      return {{"ok", false}, {"error", e.what()}};
    }
  }
  static constexpr uint64_t kRecords = 24, kPointSeq = 12;
  uint64_t latest = 0, at_point = 0;
  int64_t point_id = 0;

  // A secondary that applied kRecords writes, its history with a named
  // point at kPointSeq; the checksums of the replica then and at the point.
  void replicated_secondary() {
    std::filesystem::remove_all(state_dir);
    std::filesystem::create_directory(state_dir);
    test::make_file(cfg.replica, 0);
    test::make_file(cfg.replica, 4 << 20);
    cfg.history = true;
    VolumeRuntime rt(cfg);
    rt.history->open(before.uuid, 0);
    ASSERT_TRUE(rt.history->start_over(0));
    File replica = File::open(cfg.replica, O_RDWR);
    std::mt19937_64 rng(kRecords);
    for (uint64_t seq = 1; seq <= kRecords; seq++) {
      std::vector<std::byte> bytes = test::random_bytes(rng, 4096 * (1 + rng() % 8));
      RecordHeader h;
      h.seq = seq;
      h.sector = (rng() % 900) * 8;
      h.nr_sectors = static_cast<uint32_t>(bytes.size() / 512);
      h.payload_bytes = static_cast<uint32_t>(bytes.size());
      LogRecord rec{h, 0, bytes};
      ASSERT_TRUE(rt.history->capture(replica, std::span(&rec, 1)));
      replica.write_at(bytes, h.sector * 512);
      replica.datasync();
      if (seq == kPointSeq) {
        rt.history->add_point(seq, PointKind::Named, "before-the-disaster");
        at_point = test::file_checksum(cfg.replica);
      }
    }
    latest = test::file_checksum(cfg.replica);
    point_id = rt.history->points().front().id;
    ReplicaState st = before;
    st.generation = 1;
    st.durable_seq = kRecords;
    st.save(rt.state_path());
  }
};

TEST_F(UnplannedFailoverCrash, ACrashAtEachCallIsFinishedAtTheNextStartOrChangedNothing) {
  int finished = 0, unchanged = 0;
  for (uint64_t n = 1;; n++) {
    SCOPED_TRACE("a crash at call " + std::to_string(n) + " of the failover");
    replicated_secondary();
    if (HasFatalFailure()) return;
    test::FaultEnv faults(dir.path());
    {
      test::ScopedEnv in_use(faults);
      faults.sync_all();
      VolumeRuntime rt(cfg);
      faults.crash_at(n);
      const nlohmann::json answer = answer_of([&] { return fail_over(rt, {{"point", point_id}}); });
      if (!faults.crashed()) {  // every call of the failover had its crash
        ASSERT_TRUE(answer.value("ok", false)) << answer.dump();
        break;
      }
      faults.clear();
    }
    VolumeRuntime rt(cfg);
    finish_interrupted_failover(rt);
    auto st = ReplicaState::load(rt.state_path());
    ASSERT_TRUE(st);
    if (!st->promoted) {
      EXPECT_EQ(st->durable_seq, kRecords);
      EXPECT_EQ(test::file_checksum(cfg.replica), latest) << "the replica changed, and the state does not say so";
      unchanged++;
    } else {
      EXPECT_TRUE(st->promoted->complete);
      EXPECT_EQ(st->durable_seq, kPointSeq);
      EXPECT_EQ(test::file_checksum(cfg.replica), at_point) << "the replica is not the point's image";
      finished++;
    }
    if (HasFailure()) return;
  }
  printf("%d crashes of the failover: %d finished at the next start, %d changed nothing\n", finished + unchanged,
         finished, unchanged);
  EXPECT_GT(finished, 0);

  // The commit, crashed at each call: done, or done when run again.
  int commits = 0;
  for (uint64_t n = 1;; n++) {
    SCOPED_TRACE("a crash at call " + std::to_string(n) + " of the commit");
    test::FaultEnv faults(dir.path());
    bool crashed = false;
    {
      test::ScopedEnv in_use(faults);
      faults.sync_all();
      VolumeRuntime rt(cfg);
      faults.crash_at(n);
      const nlohmann::json answer = answer_of([&] { return commit_failover(rt); });
      crashed = faults.crashed();
      if (!crashed) {
        ASSERT_TRUE(answer.value("ok", false)) << answer.dump();
      }
      faults.clear();
    }
    VolumeRuntime rt(cfg);
    finish_interrupted_failover(rt);
    EXPECT_EQ(test::file_checksum(cfg.replica), at_point) << "a commit changed the image";
    auto st = ReplicaState::load(rt.state_path());
    ASSERT_TRUE(st && st->promoted);
    if (!crashed) break;
    commits++;
    if (st->promoted->committed) {
      EXPECT_FALSE(commit_failover(rt).value("ok", true)) << "committed twice";
    } else {  // not yet: as before the commit, which runs again below
      EXPECT_TRUE(st->promoted->complete);
    }
    if (HasFailure()) return;
    // The failover is back as it was before this round's commit.
    st->promoted->committed = false;
    st->save(rt.state_path());
  }
  printf("%d crashes of the commit\n", commits);
}

}  // namespace
}  // namespace hrl
