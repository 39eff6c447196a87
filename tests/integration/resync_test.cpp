// Checksum resync between two real hrld processes over real TLS on loopback:
// images that differ in a fraction of their blocks end identical with about
// the differing bytes on the wire; a resync converges while a LogWriter
// workload writes; either daemon killed mid-resync resumes from its
// checkpoint; hrlctl verify reports exactly the ranges that differ.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "daemon.h"
#include "log/log_writer.h"
#include "net/tls.h"
#include "repl/replica_state.h"
#include "resync/compare.h"
#include "resync/hash_tree.h"
#include "test_support.h"

namespace hrl {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using test::Daemon;
using test::run_hrlctl;
using test::slurp;

constexpr uint64_t kSize = 256ull << 20;

class Resync : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::string data = dir.file("data.img"), replica = dir.file("replica.img"), log = dir.file("log.img");
  std::string state = dir.file("db0.state");
  std::string primary_conf = dir.file("primary.toml"), secondary_conf = dir.file("secondary.toml");
  std::string psock = dir.file("site-a.sock");

  // data: random bytes with 30% zero regions; replica: data with `fraction`
  // of its 4 KiB blocks replaced by other random bytes (some by zeros, some
  // zero blocks by data). Returns the blocks that differ.
  std::set<uint64_t> make_images(double fraction, uint64_t seed) {
    std::mt19937_64 rng(seed);
    auto img = test::random_bytes(rng, kSize);
    for (uint64_t off = 0; off < kSize; off += 1 << 20) std::memset(img.data() + off, 0, 300 << 10);
    File(File::open(data, O_RDWR | O_CREAT | O_TRUNC)).write_at(img, 0);
    std::set<uint64_t> changed;
    std::uniform_real_distribution<double> coin(0, 1);
    for (uint64_t blk = 0; blk < kSize / kBlockBytes; blk++) {
      if (coin(rng) >= fraction) continue;
      auto block = std::span(img).subspan(blk * kBlockBytes, kBlockBytes);
      if (rng() % 10 == 0 && !all_zero(block))
        std::fill(block.begin(), block.end(), std::byte{0});
      else
        for (auto& b : block) b = static_cast<std::byte>(rng());
      changed.insert(blk);
    }
    File(File::open(replica, O_RDWR | O_CREAT | O_TRUNC)).write_at(img, 0);
    return changed;
  }

  // A log that is not known to be in sync: a new replica gets a whole-device resync.
  void make_config(const std::string& primary_extra = "", bool in_sync = false) {
    test::make_file(log, 80 << 20);
    FormatOptions fo;
    fo.ring_bytes = 64 << 20;
    fo.assume_in_sync = in_sync;
    format_log(File::open(log, O_RDWR), kSize / 512, fo);
    auto c = test::write_pair_configs(dir.path(), log, data, replica, primary_extra);
    primary_conf = c.primary;
    secondary_conf = c.secondary;
  }

  json primary_resync() {
    int st = 0;
    std::string out = run_hrlctl("status --json --socket " + psock, &st);
    if (st != 0) return json{};
    try {
      return json::parse(out)["volumes"][0]["resync"];
    } catch (const std::exception&) {
      return json{};
    }
  }

  std::optional<ReplicaState> replica_state() {
    try {
      return ReplicaState::load(state);
    } catch (const std::exception&) {
      return std::nullopt;  // being replaced
    }
  }

  // Waits until the replica's state says no resync is pending or running.
  void wait_resynced(std::chrono::seconds limit) {
    auto until = std::chrono::steady_clock::now() + limit;
    for (;;) {
      auto s = replica_state();
      if (s && !s->resync) return;
      ASSERT_LT(std::chrono::steady_clock::now(), until)
          << "no end of resync\nprimary:\n" << slurp(dir.file("primary.log")) << "secondary:\n"
          << slurp(dir.file("secondary.log"));
      std::this_thread::sleep_for(20ms);
    }
  }

  std::vector<ByteRange> differences() {
    File a = File::open(data, O_RDONLY), b = File::open(replica, O_RDONLY);
    return differing_ranges(a, b);
  }

  static std::vector<ByteRange> as_ranges(const std::set<uint64_t>& blocks) {
    std::vector<ByteRange> out;
    for (uint64_t blk : blocks) add_range(out, blk * kBlockBytes, kBlockBytes);
    return out;
  }
};

TEST_F(Resync, ANewReplicaGetsOnlyTheBlocksThatDiffer) {
  make_config();
  for (double fraction : {0.0, 0.001, 0.01, 0.30}) {
    SCOPED_TRACE("fraction " + std::to_string(fraction));
    ::unlink(state.c_str());  // a replica new to the volume
    auto changed = make_images(fraction, static_cast<uint64_t>(fraction * 1000) + 3);
    ASSERT_EQ(differences(), as_ranges(changed));
    uint64_t data_blocks = 0;  // differing blocks the primary holds data in (the others are zero: markers)
    {
      auto img = test::read_file(data);
      for (uint64_t blk : changed) data_blocks += !all_zero(std::span(img).subspan(blk * kBlockBytes, kBlockBytes));
    }
    Daemon secondary(secondary_conf, dir.file("secondary.log"), "io_uring");
    Daemon primary(primary_conf, dir.file("primary.log"), "io_uring");
    wait_resynced(120s);
    json r;
    for (auto until = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < until;) {
      r = primary_resync();  // the pass ends on the secondary a moment before the primary
      if (!r.is_null() && !r["active"].get<bool>() && r["passes"].get<uint64_t>() == 1) break;
      std::this_thread::sleep_for(20ms);
    }
    ASSERT_EQ(r["passes"], 1) << r.dump();
    EXPECT_EQ(primary.stop(SIGTERM), 0);
    EXPECT_EQ(secondary.stop(SIGTERM), 0);
    EXPECT_EQ(differences(), std::vector<ByteRange>{});
    const uint64_t differing = changed.size() * kBlockBytes;
    EXPECT_EQ(r["differing_bytes"].get<uint64_t>(), differing);
    EXPECT_EQ(r["read_bytes"].get<uint64_t>(), kSize) << "the primary reads its device once";
    // What travels: the differing blocks that hold data (random, so
    // incompressible; zero blocks go as markers) plus the walk down the hash
    // trees, both directions counted.
    uint64_t wire = r["wire_bytes"];
    EXPECT_LE(wire, data_blocks * kBlockBytes * 11 / 10 + (64 << 10)) << "differing " << differing;
    EXPECT_GE(wire, data_blocks * kBlockBytes) << "random blocks cannot travel in fewer bytes";
    ReplicaState s = *ReplicaState::load(state);
    EXPECT_TRUE(s.consistent());
  }
}

TEST_F(Resync, ConvergesWhileAWorkloadWritesThroughLogWriter) {
  make_config("resync_bandwidth = \"24M\"\n");  // the pass lasts a few seconds
  make_images(0.30, 11);
  Daemon secondary(secondary_conf, dir.file("secondary.log"), "libaio");
  Daemon primary(primary_conf, dir.file("primary.log"), "libaio");
  std::mt19937_64 rng(5);
  uint64_t during = 0, last = 0;
  {
    LogWriter w(log, data);
    WorkloadOptions one;
    one.ops = 1;
    one.max_write = 64 << 10;
    auto until = std::chrono::steady_clock::now() + 60s;
    for (;;) {  // writes from before the pass starts until after it ends
      auto s = replica_state();
      bool running = s && s->resync && s->resync->take_seq;
      if (running) during++;
      run_workload(w, rng, one);
      if (during > 20 && s && !s->resync) break;
      ASSERT_LT(std::chrono::steady_clock::now(), until) << slurp(dir.file("primary.log"));
      ASSERT_LT(w.status().ring_used, w.status().ring_bytes / 2) << "the test must not overflow the ring";
      std::this_thread::sleep_for(5ms);
    }
    for (int i = 0; i < 20; i++) run_workload(w, rng, one);  // and after it
    ASSERT_EQ(w.status().mode, TrackingMode::ResyncRequired) << "the writer keeps its new-volume flag";
    last = w.status().head_seq - 1;
    w.close();
  }
  EXPECT_GT(during, 20u) << "writes landed while the pass ran";
  auto until = std::chrono::steady_clock::now() + 60s;
  while ((!replica_state() || replica_state()->durable_seq < last) && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(20ms);
  ASSERT_EQ(replica_state()->durable_seq, last) << slurp(dir.file("primary.log"));
  EXPECT_TRUE(replica_state()->consistent());
  EXPECT_EQ(primary.stop(SIGTERM), 0);
  EXPECT_EQ(secondary.stop(SIGTERM), 0);
  EXPECT_EQ(test::compare_files(data, replica), "");
}

class ResyncKill : public Resync, public ::testing::WithParamInterface<std::string> {};

TEST_P(ResyncKill, ResumesFromItsCheckpoint) {
  // About 5 s: a checkpoint each second, a fifth of the pass each. The kill
  // comes at the first checkpoint past a quarter; a slow sync may stretch
  // the gaps, so the window is wide (a quarter to nine tenths).
  make_config("resync_bandwidth = \"12M\"\n");
  auto changed = make_images(0.30, 21);
  const uint64_t chunks = kSize / kChunkBytes;
  auto secondary = std::make_unique<Daemon>(secondary_conf, dir.file("secondary.log"), "io_uring");
  auto primary = std::make_unique<Daemon>(primary_conf, dir.file("primary.log"), "io_uring");
  uint64_t cursor = 0;
  for (auto until = std::chrono::steady_clock::now() + 60s; cursor < chunks / 4;) {
    auto s = replica_state();
    if (s && s->resync) cursor = s->resync->cursor;
    ASSERT_LT(std::chrono::steady_clock::now(), until) << slurp(dir.file("primary.log"));
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_LT(cursor, chunks * 9 / 10) << "the kill must come mid-pass";
  auto& victim = GetParam() == "primary" ? primary : secondary;
  EXPECT_EQ(victim->stop(SIGKILL), -SIGKILL);
  cursor = replica_state()->resync->cursor;  // the last checkpoint that counts
  victim->start();
  wait_resynced(120s);
  json r;
  for (auto until = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < until;) {
    r = primary_resync();
    if (!r.is_null() && !r["active"].get<bool>() && r["passes"].get<uint64_t>() >= 1) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(primary->stop(SIGTERM), 0);
  EXPECT_EQ(secondary->stop(SIGTERM), 0);
  EXPECT_EQ(test::compare_files(data, replica), "");
  // The resumed pass reads from the checkpoint on (the secondary may have
  // saved a later one as the session broke), not the whole device.
  EXPECT_LE(r["read_bytes"].get<uint64_t>(), kSize - cursor * kChunkBytes) << r.dump();
  EXPECT_NE(slurp(dir.file("primary.log")).find("resum"), std::string::npos);
}

// A secondary killed (and started again at once) every time it checkpointed
// more of a pass: no session finishes the pass or sends a DURABLE, yet each
// made progress the next WELCOME shows, so the reconnect schedule starts over
// each time instead of backing off; the pass then completes.
TEST_F(Resync, ACheckpointedPassStartsTheRetryScheduleOver) {
  make_config("resync_bandwidth = \"4M\"\n");  // about 20 s for the pass
  // Steps the restarted secondary is listening again within; sessions shorter than retry_every
  test::set_retry_schedule(primary_conf, "retry_seconds = [1, 2, 4]\nretry_every = 60");
  make_images(0.30, 23);
  const uint64_t chunks = kSize / kChunkBytes;
  auto secondary = std::make_unique<Daemon>(secondary_conf, dir.file("secondary.log"), "io_uring");
  for (int i = 0; i < 200 && slurp(dir.file("secondary.log")).find("listening on") == std::string::npos; i++)
    std::this_thread::sleep_for(20ms);  // the first connect is not refused
  Daemon primary(primary_conf, dir.file("primary.log"), "io_uring");
  uint64_t cursor = 0;
  for (int kill = 1; kill <= 3; kill++) {  // each time the new session checkpointed a tenth of the device more
    const uint64_t target = cursor + chunks / 10;
    for (auto until = std::chrono::steady_clock::now() + 60s; cursor < target;) {
      auto s = replica_state();
      if (s && s->resync) cursor = s->resync->cursor;
      ASSERT_LT(std::chrono::steady_clock::now(), until) << slurp(dir.file("primary.log"));
      std::this_thread::sleep_for(10ms);
    }
    ASSERT_EQ(secondary->stop(SIGKILL), -SIGKILL);
    secondary->start();
  }
  wait_resynced(120s);
  EXPECT_EQ(primary.stop(SIGTERM), 0);
  EXPECT_EQ(secondary->stop(SIGTERM), 0);
  EXPECT_EQ(test::compare_files(data, replica), "");
  // The first session's checkpoint shows only at the second WELCOME: from then on every kill is retried first.
  std::string plog = slurp(dir.file("primary.log"));
  EXPECT_GE(test::count_of(plog, "(attempt 1)", plog.find("starting checksum")), 2u) << plog;
  EXPECT_EQ(plog.find("(attempt 3)"), std::string::npos) << "the checkpoints did not count as progress:\n" << plog;
}

INSTANTIATE_TEST_SUITE_P(Either, ResyncKill, ::testing::Values("primary", "secondary"),
                         [](const auto& info) { return info.param; });

TEST_F(Resync, VerifyReportsExactlyTheRangesThatDifferAndResyncRepairsThem) {
  make_config("", true);
  make_images(0, 31);  // equal images, a log formatted as in sync: no initial resync
  Daemon secondary(secondary_conf, dir.file("secondary.log"), "io_uring");
  Daemon primary(primary_conf, dir.file("primary.log"), "io_uring");
  // Damage the replica behind hrld's back: silent corruption an online verify finds.
  std::mt19937_64 rng(41);
  std::set<uint64_t> damaged;
  {
    File r = File::open(replica, O_RDWR);
    while (damaged.size() < 40) {
      uint64_t blk = rng() % (kSize / kBlockBytes);
      std::byte junk[512];
      for (auto& b : junk) b = static_cast<std::byte>(rng() | 1);
      r.write_at(junk, blk * kBlockBytes + 512 * (rng() % 8));
      damaged.insert(blk);
    }
    for (uint64_t blk = 1000; blk < 1004; blk++) {  // a run of four: one range
      std::byte junk[4096];
      std::memset(junk, 0x77, sizeof junk);
      r.write_at(junk, blk * kBlockBytes);
      damaged.insert(blk);
    }
    r.datasync();
  }
  auto expect = as_ranges(damaged);
  ASSERT_EQ(differences(), expect);
  std::string before = slurp(replica);

  int st = 0;
  std::string out = run_hrlctl("verify db0 --json --socket " + psock, &st);
  EXPECT_EQ(st, 3) << out << slurp(dir.file("primary.log"));
  json result = json::parse(out.substr(out.rfind("\n{") == std::string::npos ? 0 : out.rfind("\n{") + 1));
  std::vector<ByteRange> reported;
  for (const auto& rg : result["ranges"]) reported.push_back({rg[0], rg[1]});
  EXPECT_EQ(reported, expect) << out;
  EXPECT_TRUE(slurp(replica) == before) << "a verify changed the replica";

  out = run_hrlctl("resync db0 --socket " + psock, &st);  // not a terminal: plain lines
  EXPECT_EQ(st, 0) << out;
  EXPECT_NE(out.find("resync of db0 completed"), std::string::npos) << out;
  EXPECT_EQ(differences(), std::vector<ByteRange>{});

  out = run_hrlctl("verify db0 --socket " + psock, &st);
  EXPECT_EQ(st, 0) << out;
  EXPECT_NE(out.find("0 range(s)"), std::string::npos) << out;

  // --full copies every block, zero ones as markers: the wire carries the 70% that is data.
  {
    File r = File::open(replica, O_RDWR);
    std::byte junk[4096];
    std::memset(junk, 0x42, sizeof junk);
    r.write_at(junk, 4096 * 77);
  }
  out = run_hrlctl("resync db0 --full --json --socket " + psock, &st);
  EXPECT_EQ(st, 0) << out;
  EXPECT_EQ(differences(), std::vector<ByteRange>{});
  json full = json::parse(out.substr(out.rfind("\n{") + 1));
  EXPECT_GT(full["wire_bytes"].get<uint64_t>(), kSize * 6 / 10) << out;
  EXPECT_LT(full["wire_bytes"].get<uint64_t>(), kSize * 8 / 10) << out;

  out = run_hrlctl("verify nosuch --socket " + psock, &st);
  EXPECT_EQ(st, 1);
  EXPECT_NE(out.find("no volume named 'nosuch'"), std::string::npos) << out;
  EXPECT_EQ(primary.stop(SIGTERM), 0);
  EXPECT_EQ(secondary.stop(SIGTERM), 0);
}

}  // namespace
}  // namespace hrl
