// Real hrld processes on loopback with real TLS: a workload written through
// LogWriter replicates byte for byte with both I/O backends; kill -9 of
// either daemon at random instants loses nothing the log had acknowledged;
// a replica of another volume makes the volume critical and is not touched.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <cstring>
#include <fstream>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "history/undo_journal.h"
#include "log/log_writer.h"
#include "net/tls.h"
#include "repl/replica_state.h"
#include "daemon.h"
#include "test_support.h"

namespace hrl {
namespace {

using namespace std::chrono_literals;
using test::Daemon;
using test::run_hrlctl;
using test::slurp;
using json = nlohmann::json;

// A plain HTTP GET on loopback, the way Prometheus scrapes.
std::string http_get(uint16_t port, const std::string& path) {
  Socket s = connect_tcp("127.0.0.1:" + std::to_string(port), std::chrono::seconds(5));
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  if (::write(s.fd(), req.data(), req.size()) < 0) return "write failed";
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(s.fd(), buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

class Hrld : public ::testing::TestWithParam<std::string> {
 protected:
  test::TempDir dir;
  std::string data, log, replica, state;
  std::string primary_conf, secondary_conf;
  uint16_t port = 0, metrics_port = 0;

  void SetUp() override {
    data = test::make_file(dir.file("data.img"), 64 << 20);
    replica = test::make_file(dir.file("replica.img"), 64 << 20);
    log = test::make_file(dir.file("log.img"), 24 << 20);
    state = dir.file("db0.state");
    FormatOptions fo;
    fo.ring_bytes = 16 << 20;
    fo.assume_in_sync = true;
    format_log(File::open(log, O_RDWR), (64 << 20) / 512, fo);
    { Listener probe("127.0.0.1:0"); metrics_port = probe.port(); }
    // The certificates as an operator makes them (hrlctl cert), and both configs.
    auto c = test::write_pair_configs(dir.path(), log, data, replica, "", "", metrics_port);
    primary_conf = c.primary;
    secondary_conf = c.secondary;
    port = c.port;
    for (std::string n : {"site-a", "site-b"}) {
      struct stat sb;
      ASSERT_EQ(::stat(dir.file(n + ".key").c_str(), &sb), 0);
      EXPECT_EQ(sb.st_mode & 0777, 0600u) << "a private key readable by others";
    }
  }

  uint64_t durable() {
    auto s = ReplicaState::load(state);
    return s ? s->durable_seq : 0;
  }
  // The durability chain: the log never releases a record the replica lacks.
  void check_chain() {
    uint64_t released = read_superblock(File::open(log, O_RDONLY)).tail_seq - 1;
    ASSERT_LE(released, durable()) << "the log released records the replica does not hold durably";
  }
  void wait_for(uint64_t seq, std::chrono::seconds limit) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (durable() < seq && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(20ms);
    ASSERT_EQ(durable(), seq) << "primary log:\n" << slurp(dir.file("primary.log")) << "secondary log:\n"
                              << slurp(dir.file("secondary.log"));
  }
  // Writes n operations, never letting the ring overflow while the shipper is away.
  uint64_t write_some(LogWriter& w, std::mt19937_64& rng, unsigned n) {
    WorkloadOptions one;
    one.max_write = 128 << 10;
    return run_paced(w, rng, n, one);
  }
};

TEST_P(Hrld, ReplicatesAWorkloadByteForByte) {
  Daemon secondary(secondary_conf, dir.file("secondary.log"), GetParam());
  Daemon primary(primary_conf, dir.file("primary.log"), GetParam());
  std::mt19937_64 rng(7);
  uint64_t last;
  {
    LogWriter w(log, data);
    last = write_some(w, rng, 600);
    ASSERT_EQ(w.status().mode, TrackingMode::Journal);
    w.close();
  }
  wait_for(last, 60s);
  check_chain();
  EXPECT_EQ(primary.stop(SIGTERM), 0);
  EXPECT_EQ(secondary.stop(SIGTERM), 0);
  EXPECT_EQ(test::compare_files(data, replica), "");
  std::string plog = slurp(dir.file("primary.log"));
  EXPECT_NE(plog.find("connected to site-b"), std::string::npos) << plog;
  EXPECT_NE(plog.find("stopping on Terminated"), std::string::npos) << plog;
}

// With history on, the secondary keeps before-images of what it applies: a
// copy of the replica rolled back to an earlier record boundary equals the
// primary's data as it was then.
TEST_P(Hrld, TheSecondaryKeepsHistoryToRebuildEarlierImages) {
  std::ofstream(secondary_conf, std::ios::app) << "history = true\npoint_interval = 0.2\n";
  Daemon secondary(secondary_conf, dir.file("secondary.log"), GetParam());
  Daemon primary(primary_conf, dir.file("primary.log"), GetParam());
  std::mt19937_64 rng(23);
  std::vector<std::pair<uint64_t, uint64_t>> points;  // (seq, checksum of the data then)
  uint64_t last = 0;
  {
    LogWriter w(log, data);
    for (int step = 0; step < 5; step++) {
      write_some(w, rng, 60);
      last = w.mark(step % 2 ? "app:step-" + std::to_string(step) : "step-" + std::to_string(step));
      points.push_back({last, test::file_checksum(data)});
      std::this_thread::sleep_for(300ms);  // room for a crash-consistent point in between
    }
    w.close();
  }
  wait_for(last, 60s);
  // The catalog: each MARK as a named or app-consistent point at its seq, and crash-consistent ones.
  int st = 0;
  std::string out = run_hrlctl("points db0 --json --socket " + dir.file("site-b.sock"), &st);
  ASSERT_EQ(st, 0) << out;
  auto listed = nlohmann::json::parse(out);
  std::map<std::string, uint64_t> named;
  unsigned crash = 0;
  for (const auto& p : listed) {
    if (p["kind"] == "crash-consistent")
      crash++;
    else
      named[std::string(p["kind"]) + " " + std::string(p["name"])] = p["seq"];
  }
  EXPECT_GE(crash, 2u) << out;
  for (int step = 0; step < 5; step++) {
    std::string key = (step % 2 ? "app-consistent step-" : "named step-") + std::to_string(step);
    EXPECT_EQ(named[key], points[step].first) << key << "\n" << out;
  }
  out = run_hrlctl("points db0 --socket " + dir.file("site-a.sock"), &st);
  EXPECT_EQ(st, 1);
  EXPECT_NE(out.find("they live on its secondary"), std::string::npos) << out;
  EXPECT_EQ(secondary.stop(SIGTERM), 0);
  EXPECT_EQ(primary.stop(SIGTERM), 0);
  Superblock sb = read_superblock(File::open(log, O_RDONLY));
  UndoJournal undo(dir.file("db0.undo"), sb.uuid, 0);
  EXPECT_EQ(undo.last_seq(), last - 1) << "the last record is a MARK: no before-image";
  for (auto [seq, sum] : points) {
    std::string img = dir.file("point.img");
    test::copy_file(replica, img);
    undo.roll_back(File::open(img, O_RDWR), last, seq);
    EXPECT_EQ(test::file_checksum(img), sum) << "the image of seq " << seq;
  }
}

// GiB of mixed writes (4 KiB to 1 MiB, overlaps, discards, flushes) through
// a 256 MiB ring, wrapping it four times or more: the replica equals the
// primary byte for byte. Two GiB through io_uring, one through libaio.
TEST_P(Hrld, ReplicatesGibibytes) {
  std::string big_data = test::make_file(dir.file("big-data.img"), 1ull << 30);
  std::string big_replica = test::make_file(dir.file("big-replica.img"), 1ull << 30);
  std::string big_log = test::make_file(dir.file("big-log.img"), 260 << 20);
  FormatOptions fo;
  fo.ring_bytes = 256 << 20;
  fo.assume_in_sync = true;
  format_log(File::open(big_log, O_RDWR), (1ull << 30) / 512, fo);
  for (const std::string& conf : {primary_conf, secondary_conf}) {
    std::string text = slurp(conf);
    for (auto [from, to] : {std::pair{log, big_log}, std::pair{replica, big_replica}, std::pair{data, big_data}})
      if (auto at = text.find("\"" + from + "\""); at != std::string::npos) text.replace(at + 1, from.size(), to);
    std::ofstream(conf) << text;
  }
  Daemon secondary(secondary_conf, dir.file("secondary.log"), GetParam());
  Daemon primary(primary_conf, dir.file("primary.log"), GetParam());
  std::mt19937_64 rng(17);
  uint64_t bytes = 0;
  {
    LogWriter w(big_log, big_data);
    WorkloadOptions one;
    one.ops = 1;
    one.max_write = 1 << 20;
    const uint64_t total = GetParam() == "io_uring" ? 2ull << 30 : 1ull << 30;
    while (bytes < total) {
      while (w.status().ring_used > w.status().ring_bytes / 2 && !w.refresh_acknowledged())
        std::this_thread::sleep_for(2ms);
      uint64_t before = w.status().ring_used;
      run_workload(w, rng, one);
      bytes += w.status().ring_used > before ? w.status().ring_used - before : 0;
    }
    ASSERT_EQ(w.status().mode, TrackingMode::Journal);
    w.close();
    auto until = std::chrono::steady_clock::now() + 120s;
    uint64_t last = w.status().head_seq - 1;
    while (durable() < last && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(50ms);
    ASSERT_EQ(durable(), last) << slurp(dir.file("primary.log"));
  }
  EXPECT_EQ(primary.stop(SIGTERM), 0);
  EXPECT_EQ(secondary.stop(SIGTERM), 0);
  EXPECT_EQ(test::compare_files(big_data, big_replica), "");
}

TEST_P(Hrld, KillingEitherDaemonLosesNothingAcknowledged) {
  Daemon secondary(secondary_conf, dir.file("secondary.log"), GetParam());
  Daemon primary(primary_conf, dir.file("primary.log"), GetParam());
  std::mt19937_64 rng(11);
  uint64_t last = 0;
  LogWriter w(log, data);
  for (int round = 0; round < 40; round++) {  // 20 kills of each daemon
    last = write_some(w, rng, 15);
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 60));
    Daemon& victim = round % 2 ? secondary : primary;
    victim.stop(SIGKILL);
    check_chain();
    victim.start();
  }
  w.close();
  last = w.status().head_seq - 1;
  wait_for(last, 60s);
  check_chain();
  EXPECT_EQ(test::compare_files(data, replica), "");
}

TEST_P(Hrld, AReplicaOfAnotherVolumeMakesTheVolumeCritical) {
  ReplicaState{random_uuid(), 1, (64 << 20) / 512, 3, 0, std::nullopt, 0, std::nullopt, std::nullopt}.save(state);
  Daemon secondary(secondary_conf, dir.file("secondary.log"), GetParam());
  Daemon primary(primary_conf, dir.file("primary.log"), GetParam());
  {
    LogWriter w(log, data);
    std::mt19937_64 rng(3);
    w.write(0, random_bytes(rng, 4096));
    w.close();
  }
  std::string plog;
  for (int i = 0; i < 200 && plog.find("CRITICAL") == std::string::npos; i++) {
    std::this_thread::sleep_for(20ms);
    plog = slurp(dir.file("primary.log"));
  }
  EXPECT_NE(plog.find("CRITICAL: the secondary refused: wrong-volume"), std::string::npos) << plog;
  EXPECT_EQ(primary.stop(SIGTERM), 0);  // the daemon itself runs on
  EXPECT_EQ(ReplicaState::load(state)->durable_seq, 3u);
  EXPECT_EQ(test::file_checksum(replica), test::file_checksum(test::make_file(dir.file("zero.img"), 64 << 20)));
}

TEST_P(Hrld, StatusShowsTheVolumesAndPauseStopsShipping) {
  Daemon secondary(secondary_conf, dir.file("secondary.log"), GetParam());
  Daemon primary(primary_conf, dir.file("primary.log"), GetParam());
  std::mt19937_64 rng(5);
  LogWriter w(log, data);
  uint64_t last = write_some(w, rng, 50);
  wait_for(last, 30s);
  std::string psock = "--socket " + dir.file("site-a.sock"), ssock = "--socket " + dir.file("site-b.sock");
  int st = 0;
  auto j = nlohmann::json::parse(run_hrlctl("status --json " + psock, &st));
  ASSERT_EQ(st, 0);
  EXPECT_EQ(j["node"], "site-a");
  EXPECT_EQ(j["volumes"][0]["name"], "db0");
  EXPECT_EQ(j["volumes"][0]["role"], "primary");
  EXPECT_EQ(j["volumes"][0]["state"], "replicating");
  EXPECT_EQ(j["volumes"][0]["durable_seq"], last);
  EXPECT_GT(j["volumes"][0]["bytes_shipped"].get<uint64_t>(), 0u);
  EXPECT_EQ(j["volumes"][0]["rpo_seconds"], 0.0);  // caught up
  EXPECT_EQ(j["volumes"][0]["mode"], "journal");
  EXPECT_LT(j["volumes"][0]["log_fill"].get<double>(), 0.5);
  EXPECT_TRUE(j["volumes"][0].contains("throughput_bytes_per_second"));
  auto s = nlohmann::json::parse(run_hrlctl("status --json " + ssock));
  EXPECT_EQ(s["volumes"][0]["role"], "secondary");
  EXPECT_EQ(s["volumes"][0]["durable_seq"], last);
  std::string metrics = http_get(metrics_port, "/metrics");
  EXPECT_NE(metrics.find("HTTP/1.1 200"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("hrl_durable_seq{volume=\"db0\",role=\"primary\"} " + std::to_string(last)), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("hrl_volume_state{volume=\"db0\",state=\"replicating\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("# TYPE hrl_rpo_seconds gauge"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("hrl_resync_remaining_bytes{volume=\"db0\",role=\"primary\"} 0"), std::string::npos)
      << metrics;
  EXPECT_EQ(s["volumes"][0]["consistent"], true);
  EXPECT_EQ(s["volumes"][0]["resync"]["active"], false);
  std::string table = run_hrlctl("status " + psock);
  EXPECT_NE(table.find("db0"), std::string::npos) << table;
  EXPECT_NE(table.find("replicating"), std::string::npos) << table;

  std::string out = run_hrlctl("pause db0 " + psock, &st);
  ASSERT_EQ(st, 0) << out;
  std::this_thread::sleep_for(300ms);
  uint64_t paused_at = durable();
  uint64_t more = write_some(w, rng, 30);  // still tracked in the log
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(durable(), paused_at) << "a paused volume shipped";
  j = nlohmann::json::parse(run_hrlctl("status --json " + psock));
  EXPECT_EQ(j["volumes"][0]["state"], "paused");
  EXPECT_EQ(run_hrlctl("pause nosuch " + psock, &st).find("no volume named 'nosuch'") != std::string::npos, true);
  EXPECT_EQ(st, 1);
  out = run_hrlctl("resume db0 " + psock, &st);
  ASSERT_EQ(st, 0) << out;
  wait_for(more, 30s);
  w.close();
  EXPECT_EQ(run_hrlctl("status --socket " + dir.file("nobody.sock"), &st).find("is hrld running?") != std::string::npos,
            true);
  EXPECT_EQ(st, 1);
}

// Under systemd: READY, the watchdog at half its interval, STOPPING; and
// SIGHUP takes new bandwidth and compression without stopping replication.
// systemd's side of Type=notify: a datagram socket the test binds, read by
// a thread of its own for as long as the test runs (an unread socket fills
// after ten messages: see StopsOnSigtermWhileSystemdReadsNothing).
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : sock_(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    bound_ = ::bind(sock_.fd(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    timeval tv{0, 100000};
    setsockopt(sock_.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~NotifySocket() {
    done_ = true;
    if (reader_.joinable()) reader_.join();
  }
  bool bound() const { return bound_; }
  void start_reading() {
    reader_ = std::thread([this] {
      char buf[512];
      while (!done_) {
        ssize_t n = ::recv(sock_.fd(), buf, sizeof buf, 0);
        std::lock_guard lock(mu_);
        if (n > 0) got_ += std::string(buf, static_cast<size_t>(n)) + "\n";
      }
    });
  }
  // Everything received so far, and forgets it.
  std::string take() {
    std::lock_guard lock(mu_);
    return std::exchange(got_, {});
  }

 private:
  Socket sock_;
  bool bound_ = false;
  std::atomic<bool> done_{false};
  std::mutex mu_;
  std::string got_;
  std::thread reader_;
};

TEST_P(Hrld, NotifiesSystemdAndReloadsOnSighup) {
  std::string path = dir.file("notify.sock");
  NotifySocket ns(path);
  ASSERT_TRUE(ns.bound());
  ns.start_reading();
  Daemon secondary(secondary_conf, dir.file("secondary.log"), GetParam());
  Daemon primary(primary_conf, dir.file("primary.log"), GetParam(), {}, path);
  std::this_thread::sleep_for(1500ms);
  std::string got = ns.take();
  EXPECT_NE(got.find("READY=1"), std::string::npos) << got;
  size_t beats = 0;
  for (size_t at = 0; (at = got.find("WATCHDOG=1", at)) != std::string::npos; at++) beats++;
  EXPECT_GE(beats, 5u) << "a 200 ms watchdog wants a beat every 100 ms: " << got;

  std::string conf = slurp(primary_conf);
  std::ofstream(primary_conf) << conf << "bandwidth = \"64M\"\n";  // appended to the [[volume]]
  std::mt19937_64 rng(19);
  LogWriter w(log, data);
  uint64_t before = write_some(w, rng, 20);
  wait_for(before, 30s);
  ASSERT_EQ(kill(primary.pid(), SIGHUP), 0);
  uint64_t after = write_some(w, rng, 20);
  wait_for(after, 30s);  // replication goes on across the reload
  std::string plog = slurp(dir.file("primary.log"));
  EXPECT_NE(plog.find("reloaded bandwidth and compression"), std::string::npos) << plog;
  std::ofstream(primary_conf) << "this is not toml [";
  ASSERT_EQ(kill(primary.pid(), SIGHUP), 0);
  std::this_thread::sleep_for(300ms);
  EXPECT_NE(slurp(dir.file("primary.log")).find("reload refused, running on"), std::string::npos);
  EXPECT_EQ(primary.stop(SIGTERM), 0);
  std::this_thread::sleep_for(300ms);
  EXPECT_NE(ns.take().find("STOPPING=1"), std::string::npos);
  w.close();
}

// A systemd that reads nothing (its queue full after ten messages) never
// keeps hrld from stopping: the beats and STOPPING=1 are dropped, not waited on.
TEST_P(Hrld, StopsOnSigtermWhileSystemdReadsNothing) {
  NotifySocket ns(dir.file("notify.sock"));
  ASSERT_TRUE(ns.bound());
  Daemon primary(primary_conf, dir.file("primary.log"), GetParam(), {}, dir.file("notify.sock"));
  std::this_thread::sleep_for(2500ms);  // 25 beats due: the queue is full
  EXPECT_EQ(primary.stop(SIGTERM), 0) << slurp(dir.file("primary.log"));
  EXPECT_NE(slurp(dir.file("primary.log")).find("stopped"), std::string::npos);
}

// Two network namespaces made by the test, joined by a veth pair: the
// primary's link goes down under a running replication, the primary backs
// off on its schedule, and catches up when the link comes back.
class HrldCutLink : public Hrld {
 protected:
  std::string ns_a = "hrlA" + std::to_string(getpid()), ns_b = "hrlB" + std::to_string(getpid());
  bool made = false;

  static int sh(const std::string& cmd) { return system((cmd + " >/dev/null 2>&1").c_str()); }

  void SetUp() override {
    Hrld::SetUp();
    // make check runs as root (CI does); without it the test cannot make its network.
    ASSERT_EQ(geteuid(), 0u) << "network namespaces need root: run make check as root";
    made = true;
    ASSERT_EQ(sh("ip netns add " + ns_a), 0);
    ASSERT_EQ(sh("ip netns add " + ns_b), 0);
    ASSERT_EQ(sh("ip link add hrlvA type veth peer name hrlvB"), 0);
    ASSERT_EQ(sh("ip link set hrlvA netns " + ns_a), 0);
    ASSERT_EQ(sh("ip link set hrlvB netns " + ns_b), 0);
    for (auto [ns, dev, addr] : {std::tuple{ns_a, "hrlvA", "10.211.77.1/24"}, std::tuple{ns_b, "hrlvB", "10.211.77.2/24"}}) {
      ASSERT_EQ(sh("ip -n " + ns + " addr add " + addr + " dev " + dev), 0);
      ASSERT_EQ(sh("ip -n " + ns + " link set " + dev + " up"), 0);
      ASSERT_EQ(sh("ip -n " + ns + " link set lo up"), 0);
    }
    // The sites now talk over the veth pair, with a short timeout and schedule.
    for (const std::string& conf : {primary_conf, secondary_conf}) {
      std::string text = slurp(conf);
      text.replace(text.find("127.0.0.1:" + std::to_string(port)), 10 + std::to_string(port).size(),
                   "10.211.77.2:" + std::to_string(port));
      std::ofstream(conf) << text;
      test::set_retry_schedule(conf, "retry_seconds = [0.5, 1, 2]\nretry_every = 2.0\nio_timeout = 1");
    }
  }
  void TearDown() override {
    if (!made) return;
    sh("ip netns del " + ns_a);  // the veth pair goes with them
    sh("ip netns del " + ns_b);
  }
};

TEST_P(HrldCutLink, BacksOffOnTheScheduleThenCatchesUp) {
  Daemon secondary(secondary_conf, dir.file("secondary.log"), GetParam(), ns_b);
  Daemon primary(primary_conf, dir.file("primary.log"), GetParam(), ns_a);
  std::mt19937_64 rng(13);
  LogWriter w(log, data);
  uint64_t first = write_some(w, rng, 60);
  wait_for(first, 30s);

  ASSERT_EQ(sh("ip -n " + ns_a + " link set hrlvA down"), 0);  // the link goes
  uint64_t last = write_some(w, rng, 60);                     // the primary keeps tracking
  std::string plog;
  for (int i = 0; i < 300 && plog.find("(attempt 4)") == std::string::npos; i++) {
    std::this_thread::sleep_for(50ms);
    plog = slurp(dir.file("primary.log"));
  }
  EXPECT_EQ(durable(), first) << "shipped over a link that is down";
  // The schedule: 0.5, 1, 2 s, then every 2 s, each within 10%.
  const double expect[] = {0.5, 1, 2, 2};
  for (int attempt = 1; attempt <= 4; attempt++) {
    std::string key = "(attempt " + std::to_string(attempt) + ")";
    auto at = plog.find(key);
    ASSERT_NE(at, std::string::npos) << plog;
    auto line = plog.rfind("next try in ", at);
    double d = std::stod(plog.substr(line + 12));
    EXPECT_NEAR(d, expect[attempt - 1], expect[attempt - 1] * 0.1 + 0.05) << plog.substr(line, 60);  // 10% jitter, printed to 0.1 s
  }

  ASSERT_EQ(sh("ip -n " + ns_a + " link set hrlvA up"), 0);  // the link comes back
  wait_for(last, 30s);
  w.close();
  wait_for(w.status().head_seq - 1, 30s);
  check_chain();
  EXPECT_EQ(test::compare_files(data, replica), "");
}

// A secondary that hangs up right after every TLS handshake (openssl
// s_server with nothing to say: it closes once the handshake is done) is
// retried on the schedule, not at its first step after every connect; once
// a real secondary made the replica durable, the schedule starts over.
TEST_P(Hrld, ASecondaryThatHangsUpAfterTheHandshakeIsRetriedOnTheSchedule) {
  // retry_every also bounds a session that counts as progress by lasting: none of these does
  test::set_retry_schedule(primary_conf, "retry_seconds = [0.3, 0.6, 1.2, 1.2, 1.2]\nretry_every = 60");
  // Each s_server takes one connection; the loop stamps the instant it ended
  // (the primary's connect). Bounded, and killed with the test if it dies.
  const std::string stamps = dir.file("hangups"), stop = dir.file("stop-hanging-up");
  const std::string loop =
      "for i in $(seq 40); do [ -e " + stop + " ] && break; openssl s_server -quiet -accept 127.0.0.1:" + std::to_string(port) +
      " -cert " + dir.file("site-b.pem") + " -key " + dir.file("site-b.key") + " -CAfile " + dir.file("ca.pem") +
      " -Verify 1 -naccept 1 </dev/null >>" + dir.file("s_server.log") + " 2>&1; date +%s.%N >> " + stamps + "; done";
  pid_t fake = fork();
  if (fake == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execl("/bin/sh", "sh", "-c", loop.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(fake, 0);
  struct Reap {
    pid_t pid;
    ~Reap() {
      ::kill(-pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  } reap{fake};
  std::this_thread::sleep_for(300ms);  // the first s_server listens
  auto primary = std::make_unique<Daemon>(primary_conf, dir.file("primary.log"), GetParam());
  std::string plog;
  for (int i = 0; i < 400 && plog.find("(attempt 5)") == std::string::npos; i++) {
    std::this_thread::sleep_for(50ms);
    plog = slurp(dir.file("primary.log"));
  }
  const double expect[] = {0.3, 0.6, 1.2, 1.2, 1.2};
  for (int attempt = 1; attempt <= 5; attempt++) {
    auto at = plog.find("(attempt " + std::to_string(attempt) + ")");
    ASSERT_NE(at, std::string::npos) << "the retries started over at every connect:\n" << plog;
    auto line = plog.rfind("next try in ", at);
    double d = std::stod(plog.substr(line + 12));
    EXPECT_NEAR(d, expect[attempt - 1], expect[attempt - 1] * 0.1 + 0.05) << plog.substr(line, 60);  // 10% jitter, printed to 0.1 s
  }
  // What the fake secondary saw: a connect, then the next one a step of the schedule later.
  std::ifstream in(stamps);
  std::vector<double> at;
  for (double t; in >> t;) at.push_back(t);
  ASSERT_GE(at.size(), 4u) << slurp(dir.file("s_server.log")) << plog;
  for (size_t i = 1; i < 4; i++)
    EXPECT_GE(at[i] - at[i - 1], expect[i - 1] * 0.9 - 0.05)
        << "connect " << i + 1 << " came too soon after the one before";
  EXPECT_GE(test::count_of(plog, "connected to site-b"), 5u) << "the handshakes failed: nothing was tested\n" << plog << slurp(dir.file("s_server.log"));

  // A real secondary: the replica becomes durable, and the next failure starts the schedule over.
  std::ofstream(stop).flush();
  ::kill(-fake, SIGKILL);
  std::this_thread::sleep_for(200ms);
  size_t seen = 0;
  {
    Daemon secondary(secondary_conf, dir.file("secondary.log"), GetParam());
    std::mt19937_64 rng(17);
    LogWriter w(log, data);
    uint64_t last = write_some(w, rng, 20);
    wait_for(last, 30s);
    w.close();
    seen = slurp(dir.file("primary.log")).size();
  }  // killed
  for (int i = 0; i < 200; i++) {
    std::this_thread::sleep_for(50ms);
    plog = slurp(dir.file("primary.log"));
    if (plog.find("next try in ", seen) != std::string::npos) break;
  }
  auto line = plog.find("next try in ", seen);
  ASSERT_NE(line, std::string::npos) << plog.substr(seen);
  EXPECT_NE(plog.find("(attempt 1)", line), std::string::npos)
      << "the schedule did not start over after the replica became durable: " << plog.substr(line, 60);
}

// A secondary whose state directory is a 24 MiB file system (a tmpfs the
// test mounts), with history on, takes many times that: history never stops
// replication. Phase one: the oldest segments go, with the points they
// stood for, each drop logged and counted. Phase two: the file system is
// filled by another file; even dropping every segment cannot keep the
// reserve, so history is suspended (a warning, all points dropped) and
// replication goes on. Phase three: the room comes back and so does history.
class HrldSmallStateDir : public Hrld {
 protected:
  std::string small = dir.file("small");
  bool mounted = false;

  void SetUp() override {
    Hrld::SetUp();
    ASSERT_EQ(geteuid(), 0u) << "mounting a tmpfs needs root: run make check as root";
    std::filesystem::create_directory(small);
    ASSERT_EQ(::mount("hrl-test", small.c_str(), "tmpfs", 0, "size=24m"), 0) << strerror(errno);
    mounted = true;
    std::string text = slurp(secondary_conf);
    const std::string from = "state_dir = \"" + dir.path() + "\"";
    ASSERT_NE(text.find(from), std::string::npos);
    text.replace(text.find(from), from.size(), "state_dir = \"" + small + "\"");
    std::ofstream(secondary_conf) << text << "history_segment = \"1M\"\nhistory_reserve = \"4M\"\npoint_interval = 0.2\n";
    state = small + "/db0.state";
  }
  void TearDown() override {
    if (mounted) ::umount2(small.c_str(), MNT_DETACH);
  }
  json history_status() {
    int st = 0;
    std::string out = run_hrlctl("status --json --socket " + dir.file("site-b.sock"), &st);
    if (st != 0) return json{};
    return json::parse(out)["volumes"][0];
  }
  std::set<std::string> named_points() {
    std::set<std::string> names;
    int st = 0;
    std::string out = run_hrlctl("points db0 --json --socket " + dir.file("site-b.sock"), &st);
    if (st == 0)
      for (const auto& p : json::parse(out))
        if (p["kind"] != "crash-consistent") names.insert(p["name"]);
    return names;
  }
  // About `mib` MiB of writes, then a named point.
  uint64_t write_then_mark(std::mt19937_64& rng, unsigned mib, const std::string& name) {
    LogWriter w(log, data);
    write_some(w, rng, mib * 16);  // 128 KiB at most a write: about 64 KiB each
    uint64_t seq = w.mark(name);
    w.close();
    return seq;
  }
};

TEST_P(HrldSmallStateDir, HistoryGivesWayAndNeverStopsReplication) {
  Daemon secondary(secondary_conf, dir.file("secondary.log"), GetParam());
  Daemon primary(primary_conf, dir.file("primary.log"), GetParam());
  std::mt19937_64 rng(61);
  uint64_t last = 0;
  for (int round = 0; round < 8; round++) last = write_then_mark(rng, 24, "round-" + std::to_string(round));
  wait_for(last, 120s);
  json v = history_status();
  printf("after about 190 MiB through a 24 MiB state directory: history %s\n", v["history"].dump().c_str());
  EXPECT_GT(v["history"]["dropped_for_space"]["segments"], 0) << v.dump();
  EXPECT_FALSE(v["history"]["suspended"]) << v.dump();
  EXPECT_LT(v["history"]["bytes"], 20u << 20);
  EXPECT_NE(slurp(dir.file("secondary.log")).find("the oldest segment goes"), std::string::npos);
  EXPECT_EQ(named_points().count("round-7"), 1u) << "the newest point went for space";
  EXPECT_EQ(named_points().count("round-0"), 0u) << "the oldest point outlived the history it needed";
  check_chain();

  // Another file takes the room, and again whatever history gives back,
  // until history cannot keep the reserve at all.
  const std::string ballast = small + "/ballast";
  auto fill = [&] {
    File b = File::open(ballast, O_WRONLY | O_CREAT);
    std::vector<std::byte> mib(1 << 20, std::byte{1});
    uint64_t off = b.size();
    try {
      for (;; off += mib.size()) b.write_at(mib, off);
    } catch (const std::system_error&) {  // full
    }
    ASSERT_EQ(::ftruncate(b.fd(), static_cast<off_t>(off > (3 << 20) ? off - (3 << 20) : 0)), 0);  // the state file's room
  };
  for (int i = 0; i < 30 && !v["history"]["suspended"].get<bool>(); i++) {
    fill();
    last = write_then_mark(rng, 1, "while-full-" + std::to_string(i));
    wait_for(last, 60s);
    v = history_status();
  }
  EXPECT_TRUE(v["history"]["suspended"]) << v.dump();
  EXPECT_NE(v.value("warning", "").find("history is suspended"), std::string::npos) << v.dump();
  { auto listed = named_points(); EXPECT_TRUE(listed.empty()) << "points listed while history has a gap: " << *listed.begin(); }
  EXPECT_NE(slurp(dir.file("secondary.log")).find("history suspended"), std::string::npos);
  last = write_then_mark(rng, 1, "still-full");
  wait_for(last, 60s);  // replication goes on

  // The room comes back: so does history, from the end of the next batch
  // on. The primary is stopped while the writes and their MARK go into its
  // log, so the next batch holds both: the MARK, its last record, is where
  // history starts over, and its point is the first.
  EXPECT_EQ(primary.stop(SIGTERM), 0);
  std::filesystem::remove(ballast);
  last = write_then_mark(rng, 1, "after");
  primary.start();
  wait_for(last, 60s);
  v = history_status();
  EXPECT_FALSE(v["history"]["suspended"]) << v.dump();
  auto names = named_points();
  EXPECT_EQ(names.count("after"), 1u) << "history did not start again";
  for (const std::string& n : names) EXPECT_EQ(n.rfind("while-full", 0), std::string::npos) << n << " outlived the gap";
  EXPECT_EQ(secondary.stop(SIGTERM), 0);
  EXPECT_EQ(primary.stop(SIGTERM), 0);
  EXPECT_EQ(test::compare_files(data, replica), "");
}

INSTANTIATE_TEST_SUITE_P(Backends, HrldSmallStateDir, ::testing::Values("io_uring"), [](const auto& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(Backends, HrldCutLink, ::testing::Values("io_uring"), [](const auto& info) { return info.param; });

INSTANTIATE_TEST_SUITE_P(Backends, Hrld, ::testing::Values("io_uring", "libaio"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace hrl
