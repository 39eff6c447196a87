// Recovery from the secondary's history with real hrld processes over TLS:
// a test failover builds the image of a point while replication goes on;
// an unplanned failover promotes the replica at a point, refuses the old
// primary, can still go further back, and commit makes it final. Each
// image equals the primary's data as it was at its point; each refusal
// names its reason and changes nothing.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "log/format_log.h"
#include "log/log_writer.h"
#include "repl/replica_state.h"
#include "daemon.h"
#include "test_support.h"
#include "workload.h"

namespace hrl {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using test::Daemon;
using test::run_hrlctl;
using test::slurp;

constexpr uint64_t kSize = 64ull << 20;

class Failover : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::string data = test::make_file(dir.file("data.img"), kSize);
  std::string replica = test::make_file(dir.file("replica.img"), kSize);
  std::string log = test::make_file(dir.file("log.img"), 24 << 20);
  std::string state = dir.file("db0.state");
  std::string asock = "--socket " + dir.file("site-a.sock"), bsock = "--socket " + dir.file("site-b.sock");
  test::PairConfigs conf;

  void SetUp() override {
    FormatOptions fo;
    fo.ring_bytes = 16 << 20;
    fo.assume_in_sync = true;
    format_log(File::open(log, O_RDWR), kSize / 512, fo);
    conf = test::write_pair_configs(dir.path(), log, data, replica, "", "point_interval = 0.2\n");
  }

  uint64_t durable() {
    auto s = ReplicaState::load(state);
    return s ? s->durable_seq : 0;
  }
  void wait_for(uint64_t seq) {
    auto until = std::chrono::steady_clock::now() + 60s;
    while (durable() < seq && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(20ms);
    ASSERT_GE(durable(), seq) << slurp(dir.file("primary.log")) << slurp(dir.file("secondary.log"));
  }
  uint64_t write_some(LogWriter& w, std::mt19937_64& rng, unsigned n) {
    WorkloadOptions one;
    one.ops = 1;
    one.max_write = 128 << 10;
    one.mark_ratio = 0;
    for (unsigned i = 0; i < n; i++) {
      while (w.status().ring_used > w.status().ring_bytes / 2 && !w.refresh_acknowledged())
        std::this_thread::sleep_for(2ms);
      run_workload(w, rng, one);
    }
    return w.status().head_seq - 1;
  }
  // The secondary's points by name.
  std::map<std::string, json> points() {
    int st = 0;
    std::string out = run_hrlctl("points db0 --json " + bsock, &st);
    EXPECT_EQ(st, 0) << out;
    std::map<std::string, json> by_name;
    for (const json& p : json::parse(out)) by_name[p["name"]] = p;
    return by_name;
  }
  json volume(const std::string& sock) {
    return json::parse(run_hrlctl("status --json " + sock))["volumes"][0];
  }
  // hrlctl is refused with a message containing `why`.
  void expect_refused(const std::string& args, const std::string& why) {
    int st = 0;
    std::string out = run_hrlctl(args, &st);
    EXPECT_EQ(st, 1) << args << ": " << out;
    EXPECT_NE(out.find(why), std::string::npos) << args << ": " << out;
  }
};

TEST_F(Failover, TestAndUnplannedFailoverRebuildThePrimaryAtItsPoints) {
  Daemon secondary(conf.secondary, dir.file("secondary.log"), "io_uring");
  Daemon primary(conf.primary, dir.file("primary.log"), "io_uring");
  std::mt19937_64 rng(41);
  std::map<std::string, uint64_t> checksum;  // of the primary's data at each mark
  LogWriter w(log, data);
  uint64_t last = 0;
  for (int step = 0; step < 4; step++) {
    write_some(w, rng, 80);
    std::string name = "step-" + std::to_string(step);
    last = w.mark(name);
    checksum[name] = test::file_checksum(data);
  }
  wait_for(last);
  auto listed = points();
  ASSERT_EQ(listed.count("step-1"), 1u);

  // A test failover of step-1 while the primary keeps writing.
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    std::mt19937_64 r(42);
    while (writing) {
      write_some(w, r, 5);
      std::this_thread::sleep_for(5ms);
    }
  });
  const uint64_t before = durable();
  int st = 0;
  std::string image = dir.file("test.img");
  std::string out = run_hrlctl("failover db0 --test --point " + listed["step-1"]["id"].dump() + " --image " + image + " " + bsock, &st);
  EXPECT_EQ(st, 0) << out;
  EXPECT_EQ(test::file_checksum(image), checksum["step-1"]) << "the test image is not the primary at step-1";
  expect_refused("failover db0 --test " + bsock, "exists");
  std::this_thread::sleep_for(300ms);
  writing = false;
  writer.join();
  last = w.status().head_seq - 1;
  wait_for(last);
  EXPECT_GT(durable(), before) << "replication stopped during the test failover";
  out = run_hrlctl("failover db0 --cleanup " + bsock, &st);
  EXPECT_EQ(st, 0) << out;
  EXPECT_FALSE(std::filesystem::exists(image)) << out;
  expect_refused("failover db0 --cleanup " + bsock, "no test failover");

  // Refusals that change nothing.
  expect_refused("failover db0 --test " + asock, "is the primary here");
  expect_refused("failover db0 --point 99999 " + bsock, "outside the retention window");
  expect_refused("commit db0 " + bsock, "has not been failed over");
  const uint64_t replica_before = test::file_checksum(replica);

  // Unplanned failover at step-2: the replica is the primary as it was then.
  out = run_hrlctl("failover db0 --point " + listed["step-2"]["id"].dump() + " " + bsock, &st);
  ASSERT_EQ(st, 0) << out << slurp(dir.file("secondary.log"));
  EXPECT_NE(test::file_checksum(replica), replica_before);
  EXPECT_EQ(test::file_checksum(replica), checksum["step-2"]);
  auto s = ReplicaState::load(state);
  ASSERT_TRUE(s && s->promoted);
  EXPECT_EQ(s->durable_seq, listed["step-2"]["seq"].get<uint64_t>());
  EXPECT_EQ(s->generation, 2u);
  EXPECT_EQ(volume(bsock)["state"], "failed-over");
  // The old primary is refused: both sides cannot be primary.
  write_some(w, rng, 10);
  auto until = std::chrono::steady_clock::now() + 20s;
  while (volume(asock)["state"] != "critical" && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(50ms);
  json a = volume(asock);
  EXPECT_EQ(a["state"], "critical") << a.dump();
  EXPECT_NE(a["last_error"].get<std::string>().find("was failed over to this site"), std::string::npos) << a.dump();
  EXPECT_EQ(test::file_checksum(replica), checksum["step-2"]) << "the old primary's records reached the promoted replica";

  // Before commit: not forward (the points after it are gone), but further back.
  expect_refused("failover db0 --point " + listed["step-3"]["id"].dump() + " " + bsock, "no point #");
  out = run_hrlctl("failover db0 --point " + listed["step-0"]["id"].dump() + " " + bsock, &st);
  ASSERT_EQ(st, 0) << out;
  EXPECT_EQ(test::file_checksum(replica), checksum["step-0"]);
  auto left = points();
  EXPECT_EQ(left.count("step-1"), 0u) << "a point after the failover's is still listed";
  EXPECT_EQ(left.count("step-0"), 1u);

  out = run_hrlctl("commit db0 " + bsock, &st);
  EXPECT_EQ(st, 0) << out;
  EXPECT_TRUE(points().empty()) << "history outlived the commit";
  EXPECT_EQ(volume(bsock)["state"], "promoted");
  expect_refused("commit db0 " + bsock, "already committed");
  expect_refused("failover db0 " + bsock, "committed");
  EXPECT_EQ(test::file_checksum(replica), checksum["step-0"]);
  EXPECT_EQ(secondary.stop(SIGTERM), 0);
}

// A replica in the middle of a resync mixes old and new blocks: neither a
// test failover nor an unplanned one may start from it.
TEST_F(Failover, AResyncingReplicaIsRefused) {
  ReplicaState s{};
  s.uuid = read_superblock(File::open(log, O_RDONLY)).uuid;
  s.generation = read_superblock(File::open(log, O_RDONLY)).generation;
  s.data_sectors = kSize / 512;
  s.resync = ResyncCheckpoint{1, 1, HRL_REASON_RING_OVERFLOW, 1, 3, 0};
  s.save(state);
  Daemon secondary(conf.secondary, dir.file("secondary.log"), "io_uring");
  const uint64_t before = test::file_checksum(replica);
  expect_refused("failover db0 " + bsock, "is resyncing");
  expect_refused("failover db0 --test " + bsock, "is resyncing");
  EXPECT_EQ(test::file_checksum(replica), before);
  auto after = ReplicaState::load(state);
  ASSERT_TRUE(after);
  EXPECT_FALSE(after->promoted);
  EXPECT_EQ(after->resync, s.resync);
}

}  // namespace
}  // namespace hrl
