// The primary and secondary sessions over real TLS on loopback, in threads:
// a workload through LogWriter replicates byte for byte; the log's tail
// moves only on DURABLE; another volume and a damaged batch are refused.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "history/history.h"
#include "history/point_image.h"
#include "log/log_reader.h"
#include "log/log_writer.h"
#include "net/certs.h"
#include "repl/replica_state.h"
#include "repl/session.h"
#include "fault_env.h"
#include "test_support.h"

namespace hrl {
namespace {

using namespace std::chrono_literals;

// A WRITE of `block` at `sector`, as the volume's log would hold it.
RecordHeader write_record(const Superblock& sb, uint64_t seq, uint64_t sector, std::span<const std::byte> block) {
  RecordHeader h;
  h.seq = seq;
  h.generation = sb.generation;
  h.sector = sector;
  h.nr_sectors = static_cast<uint32_t>(block.size() / 512);
  h.payload_bytes = static_cast<uint32_t>(block.size());
  h.payload_csum = payload_checksum(block, sb.csum_seed());
  return h;
}

class Replication : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::string data, log, replica, state;
  TlsConfig primary_tls, secondary_tls;
  std::atomic<bool> stop{false};
  SessionStats pstats, sstats;
  History* history = nullptr;  // the secondary's, if the test keeps one
  uint32_t batch_bytes = 4u << 20;  // the primary's

  void SetUp() override {
    data = test::make_file(dir.file("data.img"), 64 << 20);
    replica = test::make_file(dir.file("replica.img"), 64 << 20);
    log = test::make_file(dir.file("log.img"), 24 << 20);
    state = dir.file("replica.state");
    FormatOptions fo;
    fo.ring_bytes = 16 << 20;  // smaller than the workload: acknowledgements must flow
    fo.assume_in_sync = true;  // both images start as zeros
    format_log(File::open(log, O_RDWR), (64 << 20) / 512, fo);
    CertPaths ca{dir.file("ca.pem"), dir.file("ca.key")};
    make_ca("site", ca);
    for (auto [name, cfg] : {std::pair{"primary", &primary_tls}, std::pair{"secondary", &secondary_tls}}) {
      CertPaths out{dir.file(std::string(name) + ".pem"), dir.file(std::string(name) + ".key")};
      issue_cert(ca, name, out);
      *cfg = {out.cert, out.key, ca.cert};
    }
  }

  // Runs a secondary for one session; returns its error, or "".
  std::future<std::string> secondary(Listener& l) {
    return std::async(std::launch::async, [this, &l] {
      try {
        TlsContext ctx(TlsContext::Role::Server, secondary_tls);
        Socket s;
        for (int i = 0; i < 100 && s.fd() < 0; i++) s = l.accept(100ms);  // the primary connects even if stop comes first
        TlsStream t(ctx, std::move(s));
        run_secondary_session(t, {replica, state, history, 300, "secondary", IoBackendKind::Auto, {}, {}}, stop, sstats);
        return std::string();
      } catch (const std::exception& e) {
        fprintf(stderr, "secondary: %s\n", e.what());
        return std::string(e.what());
      }
    });
  }

  // Sends one RECORDS frame to a new secondary as a primary at seq 1 would;
  // returns the REFUSE it answers and the error the secondary ends with.
  std::pair<proto::Refuse, std::string> refusal_of(std::span<const std::byte> payload) {
    Listener l("127.0.0.1:0");
    auto s = secondary(l);
    TlsContext ctx(TlsContext::Role::Client, primary_tls);
    TlsStream t(ctx, connect_tcp("127.0.0.1:" + std::to_string(l.port()), 5s), "secondary");
    Superblock sb = read_superblock(File::open(log, O_RDONLY));
    t.send(proto::FrameType::Hello, proto::encode(proto::Hello{sb.uuid, sb.generation, sb.data_sectors, 1, true, "p"}));
    EXPECT_EQ(t.receive().header.type, proto::FrameType::Welcome);
    t.send(proto::FrameType::Records, payload);
    auto f = t.receive();
    EXPECT_EQ(f.header.type, proto::FrameType::Refuse);
    proto::Refuse r{};
    if (f.header.type == proto::FrameType::Refuse) r = proto::decode_refuse(f.payload);
    return {r, s.get()};
  }

  // A primary and a secondary session, until the secondary holds every
  // record up to `last` or either ends; returns their errors ("" for none).
  std::pair<std::string, std::string> replicate_until(uint64_t last) {
    return replicate_until([last](const ReplicaState& st) { return st.durable_seq >= last; });
  }
  std::pair<std::string, std::string> replicate_until(const std::function<bool(const ReplicaState&)>& done) {
    stop = false;
    Listener l("127.0.0.1:0");
    auto s = secondary(l);
    auto p = primary(l.port());
    for (int i = 0; i < 3000; i++) {
      std::optional<ReplicaState> st;
      try {
        st = ReplicaState::load(state);
      } catch (const std::exception&) {  // being replaced
      }
      if (st && done(*st)) break;
      if (s.wait_for(10ms) == std::future_status::ready || p.wait_for(0ms) == std::future_status::ready) break;
    }
    stop = true;
    return {p.get(), s.get()};
  }

  // Random blocks at random places of the primary's first 8 MiB, through its log.
  static uint64_t write_blocks(LogWriter& w, std::mt19937_64& rng, int n) {
    uint64_t seq = 0;
    std::vector<std::byte> block(8192);
    for (int i = 0; i < n; i++) {
      for (auto& b : block) b = std::byte(rng());
      seq = w.write(rng() % ((8 << 20) / 512 - 16), block);
    }
    return seq;
  }

  std::future<std::string> primary(uint16_t port) {
    return std::async(std::launch::async, [this, port] {
      try {
        TlsContext ctx(TlsContext::Role::Client, primary_tls);
        TlsStream t(ctx, connect_tcp("127.0.0.1:" + std::to_string(port), 5s), "secondary");
        PrimaryOptions o;
        o.log_path = log;
        o.data_path = data;  // what a resync reads
        o.batch_bytes = batch_bytes;
        o.node = "primary";
        run_primary_session(t, o, stop, pstats);
        return std::string();
      } catch (const std::exception& e) {
        fprintf(stderr, "primary: %s\n", e.what());
        return std::string(e.what());
      }
    });
  }
};

TEST_F(Replication, TheReplicaEqualsThePrimary) {
  Listener l("127.0.0.1:0");
  auto s = secondary(l);
  auto p = primary(l.port());
  struct StopOnExit {
    std::atomic<bool>& stop;
    ~StopOnExit() { stop = true; }
  } stopper{stop};
  std::mt19937_64 rng(42);
  uint64_t last = 0;
  {
    LogWriter w(log, data);
    WorkloadOptions wo;
    wo.ops = 400;  // about 50 MiB through a 16 MiB ring
    for (int round = 0; round < 4; round++) {
      for (unsigned i = 0; i < wo.ops / 4; i++) {
        for (int wait = 0; w.status().ring_used > w.status().ring_bytes * 3 / 4 && !w.refresh_acknowledged(); wait++) {
          ASSERT_LT(wait, 20000) << "no acknowledgement for 20 s; primary at " << pstats.durable_seq.load();
          std::this_thread::sleep_for(1ms);  // give the shipper time rather than overflow
        }
        WorkloadOptions one = wo;
        one.ops = 1;
        if (uint64_t seq = run_workload(w, rng, one).last_seq) last = seq;
      }
    }
    EXPECT_EQ(w.status().mode, TrackingMode::Journal) << "the workload overflowed the ring";
    last = w.status().head_seq - 1;
    w.close();
  }
  for (int i = 0; i < 3000 && pstats.durable_seq < last; i++) std::this_thread::sleep_for(10ms);
  stop = true;
  EXPECT_EQ(p.get(), "");
  EXPECT_EQ(s.get(), "");
  EXPECT_EQ(pstats.durable_seq.load(), last);
  EXPECT_EQ(ReplicaState::load(state)->durable_seq, last);
  EXPECT_EQ(read_superblock(File::open(log, O_RDONLY)).tail_seq, last + 1);  // everything acknowledged
  EXPECT_GT(pstats.raw_bytes.load(), 16u << 20);
  EXPECT_EQ(test::compare_files(data, replica), "");
}

TEST_F(Replication, AReplicaOfAnotherVolumeRefusesThePrimary) {
  ReplicaState other{random_uuid(), 1, (64 << 20) / 512, 10, 0, std::nullopt, 0, std::nullopt, std::nullopt};
  other.save(state);
  {
    LogWriter w(log, data);
    std::mt19937_64 rng(1);
    w.write(0, random_bytes(rng, 4096));
    w.close();
  }
  Listener l("127.0.0.1:0");
  auto s = secondary(l);
  auto p = primary(l.port());
  std::string perr = p.get();
  EXPECT_NE(perr.find("refused: wrong-volume: this replica follows volume"), std::string::npos) << perr;
  EXPECT_NE(s.get().find("wrong-volume"), std::string::npos);
  EXPECT_EQ(ReplicaState::load(state)->durable_seq, 10u);
  EXPECT_EQ(test::file_checksum(replica), test::file_checksum(test::make_file(dir.file("zero.img"), 64 << 20)));
}

TEST_F(Replication, ADamagedBatchIsRefusedAndNothingApplied) {
  Superblock sb = read_superblock(File::open(log, O_RDONLY));
  proto::BatchBuilder b(sb.csum_seed());
  std::vector<std::byte> block(4096, std::byte{0x77});
  for (uint64_t seq = 1; seq <= 3; seq++) b.add(write_record(sb, seq, 8 * seq, block), block);
  auto payload = b.take();
  payload[8 + 2 * (64 + 4096) + 64 + 10] ^= std::byte{1};  // the data of seq 3
  auto [r, secondary_error] = refusal_of(payload);
  EXPECT_EQ(r.code, proto::RefuseCode::BadRecord);
  EXPECT_NE(r.message.find("seq 3 fails its payload checksum; nothing of the batch was applied"), std::string::npos)
      << r.message;
  EXPECT_NE(secondary_error.find("bad-record"), std::string::npos);
  EXPECT_EQ(ReplicaState::load(state)->durable_seq, 0u);  // seq 1 and 2 were valid, and not applied either
  EXPECT_EQ(test::file_checksum(replica), test::file_checksum(test::make_file(dir.file("zero.img"), 64 << 20)));
}

// A named point is in the catalog before the state says its MARK is
// durable. Here the catalog refuses to take the point (a trigger fails every
// insert, as a full disk would) after the batch is applied: the session
// ends, the batch comes again, and the point is listed once, at the MARK's
// seq. (When the state went first, the MARK counted as durable with no
// point: lost for good.) A point whose batch did not become durable is
// dropped when the next session begins, so it is not listed twice.
TEST_F(Replication, ANamedPointOutlivesACatalogThatFailsAfterItsBatch) {
  History h(dir.file("undo"), dir.file("points"), Retention{});
  history = &h;
  std::mt19937_64 rng(51);
  uint64_t mark = 0, last = 0;
  {
    LogWriter w(log, data);
    write_blocks(w, rng, 20);
    mark = w.mark("before-upgrade");
    last = write_blocks(w, rng, 20);
    w.close();
  }
  auto sql = [&](const char* text) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(dir.file("points").c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, text, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  };
  sql("CREATE TRIGGER no_room BEFORE INSERT ON points BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END");
  auto [perr, serr] = replicate_until(last);
  EXPECT_NE(serr.find("disk is full"), std::string::npos) << "the catalog did not fail: " << serr;
  EXPECT_LT(ReplicaState::load(state)->durable_seq, mark) << "the MARK counted as durable while its point was refused";
  sql("DROP TRIGGER no_room");
  // Now the point goes in and the state cannot be saved (its temporary file
  // is in the way): the point waits after the durable seq, and the next
  // session drops it before the batch adds it again.
  std::filesystem::create_directory(state + ".tmp");
  std::tie(perr, serr) = replicate_until(last);
  EXPECT_NE(serr.find(".tmp"), std::string::npos) << "the state was saved: " << serr;
  EXPECT_EQ(h.points().size(), 1u);
  std::filesystem::remove(state + ".tmp");
  std::tie(perr, serr) = replicate_until(last);
  ASSERT_EQ(ReplicaState::load(state)->durable_seq, last) << perr << " / " << serr;
  auto points = h.points();
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(points[0].seq, mark);
  EXPECT_EQ(points[0].name, "before-upgrade");
}

// History turned off and on again: the records applied meanwhile have no
// before-images, so the points from before the gap are dropped (and said
// so), history starts over after the first batch (one sent again after a
// crash may be on the replica already), and every point listed builds
// exactly the primary's image at its seq. (Reopened across the gap, the history built the old point from
// before-images that miss the gap's records: silently wrong.)
TEST_F(Replication, HistoryTurnedOffAndOnStartsOverAndEveryPointBuildsItsImage) {
  History h(dir.file("undo"), dir.file("points"), Retention{});
  std::mt19937_64 rng(53);
  std::map<std::string, std::string> image_of;  // point name -> the primary's data when it was taken
  auto round = [&](const std::string& point) {
    LogWriter w(log, data);
    write_blocks(w, rng, 30);
    w.mark(point);
    image_of[point] = dir.file(point + ".img");
    test::copy_file(data, image_of[point]);
    uint64_t last = write_blocks(w, rng, 30);
    w.close();
    return last;
  };
  history = &h;
  uint64_t last = round("first");
  ASSERT_EQ(replicate_until(last), std::pair(std::string(), std::string()));
  ASSERT_EQ(h.points().size(), 1u);
  history = nullptr;  // hrld restarted with history = false
  last = round("in-the-gap");
  ASSERT_EQ(replicate_until(last), std::pair(std::string(), std::string()));
  history = &h;  // and with history again: it starts over after the first batch
  last = round("second");
  ASSERT_EQ(replicate_until(last), std::pair(std::string(), std::string()));
  last = round("third");
  ASSERT_EQ(replicate_until(last), std::pair(std::string(), std::string()));
  auto points = h.points();
  ASSERT_FALSE(points.empty());
  for (const RecoveryPoint& p : points) {
    SCOPED_TRACE("point " + p.name + " at seq " + std::to_string(p.seq));
    const std::string img = dir.file("built.img");
    build_point_image(h, replica, p.seq, img);
    EXPECT_EQ(test::file_checksum(img), test::file_checksum(image_of.at(p.name)));
  }
  EXPECT_EQ(points.size(), 1u) << "a point from before the gap (or from the batch that began history anew) is listed";
  EXPECT_EQ(points.back().name, "third");
}

// fsync errors are final. The replica's first fdatasync in a whole-device
// resync fails, and the blocks it covered are lost (as after a failed
// writeback). The secondary must not sync again and take that success for
// the lost blocks: its checkpoint stays where the last good sync left it,
// and the next session copies them again. (Retried, the sync succeeded and
// the checkpoint moved past blocks that were never on disk.)
TEST_F(Replication, AFailedSyncInAResyncIsNeverTrustedAgain) {
  FormatOptions fo;
  fo.ring_bytes = 16 << 20;
  fo.assume_in_sync = false;  // a new replica: a whole-device resync
  format_log(File::open(log, O_RDWR), (64 << 20) / 512, fo);
  std::mt19937_64 rng(57);
  File::open(data, O_RDWR).write_at(test::random_bytes(rng, 64 << 20), 0);
  test::FaultEnv faults(replica);
  test::ScopedEnv in_use(faults);
  faults.fail_at(test::FsOp::Datasync, 1, EIO);
  auto resynced = [](const ReplicaState& st) { return !st.resync; };
  auto [perr, serr] = replicate_until(resynced);
  EXPECT_NE(serr.find("fdatasync"), std::string::npos) << "the sync did not fail: " << serr;
  ASSERT_EQ(faults.injected(), 1u);
  faults.clear();
  std::tie(perr, serr) = replicate_until(resynced);
  ASSERT_FALSE(ReplicaState::load(state)->resync) << perr << " / " << serr;
  EXPECT_EQ(test::compare_files(data, replica), "") << "blocks a failed sync lost were counted as copied";
}

// The secondary's files (replica, state file, undo journal) in a directory
// of their own, behind a FaultEnv; a workload with three named points,
// applied from scratch as often as a test needs.
class SecondaryFaults : public Replication {
 protected:
  void SetUp() override {
    Replication::SetUp();
    const char* replay = getenv("HRL_TEST_SEED");
    seed = replay ? std::strtoull(replay, nullptr, 10) : std::random_device{}();
    printf("seed %llu (replay with HRL_TEST_SEED=%llu)\n", static_cast<unsigned long long>(seed),
           static_cast<unsigned long long>(seed));
    rng.seed(seed);
    {
      LogWriter w(log, data);
      for (std::string name : {"one", "two", "three"}) {
        write_blocks(w, rng, 15);
        w.mark(name);
        image_of[name] = test::file_checksum(data);
      }
      last = write_blocks(w, rng, 15);
      w.close();
    }
    test::copy_file(log, log0);
    data_sum = test::file_checksum(data);
    replica = dir.file("secondary/replica.img");
    state = dir.file("secondary/replica.state");
    batch_bytes = 20 << 10;  // two or three records a batch: many batches, many calls
    in_use.emplace(faults);
  }
  void TearDown() override {
    h.reset();
    history = nullptr;
    in_use.reset();
  }

  // The secondary as it is before the primary first connects.
  void start_over() {
    h.reset();
    std::filesystem::remove_all(dir.file("secondary"));
    std::filesystem::create_directory(dir.file("secondary"));
    test::make_file(replica, 64 << 20);
    test::copy_file(log0, log);
    pstats.durable_seq = 0;
    reopen_history();
    faults.sync_all();
  }
  // The secondary's history as its files hold it (after hrld restarts).
  void reopen_history() {
    h.reset();
    h = std::make_unique<History>(dir.file("secondary/undo"), dir.file("secondary/points"), Retention{});
    history = h.get();
  }

  // A clean session brings the replica to the primary's data, with every
  // named point listed and each listed point building its image.
  void expect_converges() {
    faults.clear();
    auto [perr, serr] = replicate_until(last);
    ASSERT_EQ(ReplicaState::load(state).value_or(ReplicaState{}).durable_seq, last)
        << "no convergence: " << perr << " / " << serr;
    EXPECT_EQ(test::file_checksum(replica), data_sum) << "the replica differs from the primary";
    std::set<std::string> names;
    for (const RecoveryPoint& p : h->points()) {
      names.insert(p.name);
      const std::string img = dir.file("built.img");
      build_point_image(*h, replica, p.seq, img);
      EXPECT_EQ(test::file_checksum(img), image_of.at(p.name)) << "point " << p.name << " at seq " << p.seq;
    }
    // A full disk (ENOSPC at a history file) suspends history and drops
    // its points; nothing else may.
    if (h->space().suspensions == 0) {
      EXPECT_EQ(names, (std::set<std::string>{"one", "two", "three"}));
    }
  }

  // The durable seq the replica's state holds is not behind what the primary was told.
  void expect_durable_not_behind(uint64_t told) {
    std::optional<ReplicaState> st;
    try {
      st = ReplicaState::load(state);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "the state cannot be read: " << e.what();
    }
    EXPECT_GE(st ? st->durable_seq : 0, told) << "the durable seq went back past what the primary was told";
  }

  // The secondary's calls of each kind in one run from scratch.
  std::map<test::FsOp, uint64_t> count_calls() {
    start_over();
    faults.clear();
    EXPECT_EQ(replicate_until(last), std::pair(std::string(), std::string()));
    std::map<test::FsOp, uint64_t> calls;
    for (test::FsOp op : test::kAllFsOps) calls[op] = faults.calls(op);
    return calls;
  }

  uint64_t seed = 0;
  std::mt19937_64 rng;
  std::map<std::string, uint64_t> image_of;  // point name -> the checksum of the primary's data at its MARK
  uint64_t last = 0, data_sum = 0;
  const std::string log0 = dir.file("log0.img");
  test::FaultEnv faults{dir.file("secondary")};  // the directory and what is in it
  std::optional<test::ScopedEnv> in_use;
  std::unique_ptr<History> h;
};

// EIO and ENOSPC at each kind of file operation of the secondary, at the
// first, second, middle, last and a random call of a session: the session
// may end, but the durable seq never goes back past what the primary was
// told, and the next session converges with every point right.
TEST_F(SecondaryFaults, EIOAndENOSPCAtEachCallLoseNothing) {
  auto calls = count_calls();
  int runs = 0, ended = 0;
  for (test::FsOp op : test::kAllFsOps) {
    const uint64_t n = calls[op];
    std::set<uint64_t> which;
    for (uint64_t k : {uint64_t{1}, uint64_t{2}, n / 2, n - 1, n, 1 + rng() % std::max<uint64_t>(n, 1)})
      if (k >= 1 && k <= n) which.insert(k);
    for (uint64_t k : which) {
      const int err = runs % 2 ? ENOSPC : EIO;
      SCOPED_TRACE(std::string(test::fs_op_name(op)) + " call " + std::to_string(k) + " of " + std::to_string(n) +
                   " fails with " + strerror(err));
      start_over();
      faults.clear();
      faults.fail_at(op, k, err);
      auto [perr, serr] = replicate_until(last);
      if (faults.injected() == 0) continue;  // this run made fewer calls
      runs++;
      ended += !serr.empty();
      expect_durable_not_behind(pstats.durable_seq);
      expect_converges();
    }
  }
  printf("%d runs with a fault injected, %d of them ended the session\n", runs, ended);
  EXPECT_GT(runs, 20);
}

// A power loss at each call of the secondary: the crash states a POSIX
// file system allows (unsynced writes lost in any subset, directory
// operations no fsync covered undone, a prefix kept), hrld restarted on
// each: the durable seq is not behind what the primary was told, and the
// pair converges with every point right.
TEST_F(SecondaryFaults, APowerLossAtEachCallLosesNothing) {
  auto calls = count_calls();
  uint64_t total = 0;
  for (auto [op, n] : calls) total += n;
  int states = 0;
  for (uint64_t k = 1; k <= total; k += 1 + rng() % 5) {  // about one call in 3, the seed says which
    SCOPED_TRACE("the power goes at call " + std::to_string(k) + " of " + std::to_string(total));
    start_over();
    faults.crash_at(k);
    replicate_until(last);
    if (!faults.crashed()) continue;
    const uint64_t told = pstats.durable_seq;
    faults.power_loss(rng);
    reopen_history();
    states++;
    expect_durable_not_behind(told);
    expect_converges();
    if (HasFailure()) break;
  }
  printf("%d crash states explored\n", states);
  EXPECT_GT(states, 20);
}

// A replica that is a block device is held exclusively while a session
// writes it. Mounted (someone tests a failover on it, or a failed-over
// volume is in use), no session starts: the primary is refused as busy and
// retries later, and not a byte under the file system changes. Unmounted,
// replication goes on.
TEST_F(Replication, AMountedReplicaIsNeverWritten) {
  ASSERT_EQ(geteuid(), 0u) << "loop devices need root: run make check as root";
  test::LoopDevice dev(replica);
  replica = dev.path();
  dev.mount(dir.file("mnt"));
  const uint64_t mounted = test::file_checksum(replica);
  std::mt19937_64 rng(67);
  uint64_t last = 0;
  {
    LogWriter w(log, data);
    last = write_blocks(w, rng, 20);
    w.close();
  }
  auto [perr, serr] = replicate_until(last);
  EXPECT_NE(serr.find("is mounted or held open"), std::string::npos) << serr;
  EXPECT_NE(perr.find("refused: busy"), std::string::npos) << perr;
  EXPECT_EQ(test::file_checksum(replica), mounted) << "a session wrote under a mounted file system";
  dev.unmount();
  File::open(replica, O_RDWR).write_at(std::vector<std::byte>(64 << 20), 0);  // as the primary's data began: zeros
  std::tie(perr, serr) = replicate_until(last);
  ASSERT_EQ(ReplicaState::load(state)->durable_seq, last) << perr << " / " << serr;
  EXPECT_EQ(test::compare_files(data, replica), "");
}

// A record that reaches past the end of the volume (a 1 TiB DISCARD on a
// 64 MiB volume, as a confused primary could send) is refused before any
// before-image is taken: the volume goes critical with the reason, rather
// than a read past the replica that ends the session and retries forever.
TEST_F(Replication, ARecordPastTheVolumeIsRefusedBeforeItsBeforeImage) {
  History h(dir.file("undo"), dir.file("points"), Retention{});
  history = &h;
  Superblock sb = read_superblock(File::open(log, O_RDONLY));
  proto::BatchBuilder b(sb.csum_seed());
  std::vector<std::byte> block(4096, std::byte{0x77});
  b.add(write_record(sb, 1, 8, block), block);
  RecordHeader d;
  d.type = HRL_REC_DISCARD;
  d.seq = 2;
  d.generation = sb.generation;
  d.sector = sb.data_sectors - 8;
  d.nr_sectors = 1u << 31;  // 1 TiB
  d.payload_csum = payload_checksum({}, sb.csum_seed());
  b.add(d, {});
  auto [r, secondary_error] = refusal_of(b.take());
  EXPECT_EQ(r.code, proto::RefuseCode::BadRecord);
  EXPECT_NE(r.message.find("seq 2 reaches past the end of the volume"), std::string::npos) << r.message;
  EXPECT_NE(secondary_error.find("bad-record"), std::string::npos);
  EXPECT_EQ(ReplicaState::load(state)->durable_seq, 0u);
  EXPECT_EQ(h.size_bytes(), 4096u) << "a before-image was taken for a batch that was refused";
  EXPECT_EQ(test::file_checksum(replica), test::file_checksum(test::make_file(dir.file("zero.img"), 64 << 20)));
}

// Frames damaged on the wire: a payload that fails the frame checksum, and a
// header claiming more than the limit. The secondary ends the session with
// the reason, and nothing is applied.
TEST_F(Replication, DamagedFramesEndTheSessionAndNothingIsApplied) {
  Superblock sb = read_superblock(File::open(log, O_RDONLY));
  proto::BatchBuilder b(sb.csum_seed());
  std::vector<std::byte> block(4096, std::byte{0x42});
  b.add(write_record(sb, 1, 8, block), block);
  auto good = proto::make_frame(proto::FrameType::Records, b.take(), 0);
  for (int damage = 0; damage < 2; damage++) {
    Listener l("127.0.0.1:0");
    auto s = secondary(l);
    TlsContext ctx(TlsContext::Role::Client, primary_tls);
    TlsStream t(ctx, connect_tcp("127.0.0.1:" + std::to_string(l.port()), 5s), "secondary");
    t.send(proto::FrameType::Hello, proto::encode(proto::Hello{sb.uuid, sb.generation, sb.data_sectors, 1, true, "p"}));
    ASSERT_EQ(t.receive().header.type, proto::FrameType::Welcome);
    auto frame = good;
    if (damage == 0) {
      frame[proto::kHeaderSize + 100] ^= std::byte{1};  // a byte of the payload, after the checksum was made
    } else {
      uint32_t huge = 512u << 20;
      std::memcpy(frame.data() + 12, &huge, 4);  // wire_len
    }
    t.send_frame(frame);
    std::string why = s.get();
    EXPECT_NE(why.find(damage == 0 ? "fails its checksum" : "exceeds the limit"), std::string::npos) << why;
    EXPECT_EQ(ReplicaState::load(state)->durable_seq, 0u);
    EXPECT_EQ(test::file_checksum(replica), test::file_checksum(test::make_file(dir.file("zero.img"), 64 << 20)));
  }
}

}  // namespace
}  // namespace hrl
