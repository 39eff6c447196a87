// The secondary's undo journal: before-images captured batch by batch as a
// workload's records are applied return a copy of the replica to any record
// boundary, byte for byte the primary's data as it was then; a crash between
// capture and apply, and a torn entry, lose nothing that was made durable.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <thread>
#include <random>

#include "history/history.h"
#include "history/point_image.h"
#include "history/undo_journal.h"
#include "io/io_backend.h"
#include "log/log_reader.h"
#include "log/record_applier.h"
#include "test_support.h"

namespace hrl {
namespace {

constexpr uint64_t kData = 32 << 20;

struct OwnedRecord {
  RecordHeader header;
  std::vector<std::byte> payload;
  LogRecord view() const { return LogRecord{header, 0, payload}; }
};

class Undo : public ::testing::Test {
 protected:
  void SetUp() override {
    FormatOptions fo;
    fo.ring_bytes = 40 << 20;
    fo.assume_in_sync = true;
    pair = std::make_unique<test::LogPair>(kData, 48 << 20, fo);
    std::mt19937_64 rng(13);
    {
      LogWriter w(pair->log, pair->data);
      WorkloadOptions o;
      o.ops = 500;
      o.max_write = 64 << 10;
      o.discard_ratio = 0.08;  // overlapping writes and discards, in the hot region too
      run_workload(w, rng, o);
      w.close();
    }
    LogReader reader(pair->log);
    LogRecord rec;
    while (reader.next(rec).status == ReadStatus::Record)
      records.push_back({rec.header, {rec.payload.begin(), rec.payload.end()}});
    ASSERT_GT(records.size(), 400u);
    uuid = reader.superblock().uuid;
  }

  // The primary's data as it was after record `seq`: the records up to it on a zeroed image.
  uint64_t reference(uint64_t seq) {
    std::string img = test::make_file(pair->dir.file("ref.img"), kData);
    File f = File::open(img, O_RDWR);
    auto io = make_io_backend(IoBackendKind::Auto, 16);
    RecordApplier a(f, kData / 512, *io);
    for (const auto& r : records)
      if (r.header.seq <= seq) a.apply(r.view());
    a.finish();
    return test::file_checksum(img);
  }

  // Applies records [from, to) to `replica` in batches of random size,
  // capturing first; after_batch sees each batch's last seq.
  void replicate(const std::string& replica, const std::function<void(const File&, std::span<const LogRecord>)>& capture,
                 std::mt19937_64& rng, size_t from = 0, size_t to = SIZE_MAX,
                 const std::function<void(uint64_t)>& after_batch = {}) {
    File f = File::open(replica, O_RDWR);
    auto io = make_io_backend(IoBackendKind::Auto, 16);
    to = std::min(to, records.size());
    for (size_t i = from; i < to;) {
      size_t n = std::min<size_t>(to - i, 1 + rng() % 40);
      std::vector<LogRecord> batch;
      for (size_t k = i; k < i + n; k++) batch.push_back(records[k].view());
      capture(f, batch);
      RecordApplier a(f, kData / 512, *io);
      for (const auto& r : batch) a.apply(r);
      a.finish();
      i += n;
      if (after_batch) after_batch(records[i - 1].header.seq);
    }
  }
  void replicate(const std::string& replica, UndoJournal& undo, std::mt19937_64& rng) {
    replicate(replica, [&](const File& f, std::span<const LogRecord> b) { undo.capture(f, b); }, rng);
  }
  void replicate(const std::string& replica, History& h, std::mt19937_64& rng, size_t from = 0, size_t to = SIZE_MAX,
                 const std::function<void(uint64_t)>& after_batch = {}) {
    replicate(replica, [&](const File& f, std::span<const LogRecord> b) { h.capture(f, b); }, rng, from, to, after_batch);
  }

  // The checksum of an image of `replica` (holding every record) rebuilt at seq.
  uint64_t image_of(const std::string& replica, History& h, uint64_t seq) {
    std::string img = pair->dir.file("point.img");
    build_point_image(h, replica, seq, img);
    return test::file_checksum(img);
  }

  uint64_t image_at(const std::string& replica, const UndoJournal& undo, uint64_t seq) {
    std::string img = pair->dir.file("point.img");
    test::copy_file(replica, img);
    undo.roll_back(File::open(img, O_RDWR), records.back().header.seq, seq);
    return test::file_checksum(img);
  }

  static std::string only_segment(const std::string& dir) {
    std::vector<std::string> found;
    for (const auto& e : std::filesystem::directory_iterator(dir)) found.push_back(e.path().string());
    EXPECT_EQ(found.size(), 1u);
    return found.at(0);
  }

  std::unique_ptr<test::LogPair> pair;
  std::vector<OwnedRecord> records;
  std::array<uint8_t, 16> uuid{};
};

TEST_F(Undo, ReturnsACopyOfTheReplicaToAnyRecordBoundary) {
  std::string replica = test::make_file(pair->dir.file("replica.img"), kData);
  const uint64_t first = records.front().header.seq, last = records.back().header.seq;
  UndoJournal undo(pair->dir.file("db0.undo"), uuid, first - 1);
  std::mt19937_64 rng(5);
  replicate(replica, undo, rng);
  ASSERT_EQ(test::file_checksum(replica), reference(last));
  std::vector<uint64_t> points{first - 1, first, last - 1, last};
  for (int i = 0; i < 8; i++) points.push_back(first + rng() % (last - first));
  for (uint64_t p : points) EXPECT_EQ(image_at(replica, undo, p), reference(p)) << "the image of seq " << p;
  EXPECT_THROW(undo.roll_back(File::open(replica, O_RDONLY), last, first - 2), std::runtime_error)
      << "before the journal's first record";
}

TEST_F(Undo, ACrashBetweenCaptureAndApplyOrInTheMiddleOfAnEntryLosesNothing) {
  std::string replica = test::make_file(pair->dir.file("replica.img"), kData);
  const std::string path = pair->dir.file("db0.undo");
  const size_t half = records.size() / 2;
  {
    UndoJournal undo(path, uuid, records.front().header.seq - 1);
    File f = File::open(replica, O_RDWR);
    std::vector<LogRecord> batch;
    for (size_t k = 0; k < half; k++) batch.push_back(records[k].view());
    undo.capture(f, batch);  // captured, durable; the daemon dies before applying
  }
  {
    File j = File::open(only_segment(path), O_RDWR);
    std::vector<std::byte> junk(700, std::byte{0x5a});
    j.write_at(junk, j.size());  // and a torn entry after it
  }
  UndoJournal undo(path, uuid, 0);  // reopened: the torn entry is cut off
  EXPECT_EQ(undo.last_seq(), records[half - 1].header.seq);
  std::mt19937_64 rng(9);
  replicate(replica, undo, rng);  // the batch arrives again: captured once, applied now
  const uint64_t mid = records[half / 2].header.seq, first = records.front().header.seq;
  EXPECT_EQ(image_at(replica, undo, mid), reference(mid));
  EXPECT_EQ(image_at(replica, undo, first - 1), reference(first - 1));
  std::array<uint8_t, 16> other = uuid;
  other[0] ^= 1;
  EXPECT_THROW(UndoJournal(path, other, 0), std::runtime_error) << "another volume's journal";
  undo.reset(records.back().header.seq);
  EXPECT_EQ(undo.from_seq(), records.back().header.seq);
  EXPECT_EQ(undo.last_seq(), records.back().header.seq);
  EXPECT_THROW(undo.plan_back_to(mid), std::runtime_error) << "history before a reset";
}

namespace {

LogRecord discard_record(uint64_t seq, uint64_t sector, uint32_t sectors) {
  RecordHeader h;
  h.type = HRL_REC_DISCARD;
  h.seq = seq;
  h.sector = sector;
  h.nr_sectors = sectors;
  return LogRecord{h, 0, {}};
}

// Random bytes at `offset` of `path`.
void scribble(const std::string& path, uint64_t offset, uint64_t bytes, std::mt19937_64& rng) {
  std::vector<std::byte> b(bytes);
  for (auto& x : b) x = std::byte(rng());
  File::open(path, O_RDWR).write_at(b, offset);
}

}  // namespace

// mkfs and fstrim discard a whole volume in one request. Its before-image is
// captured in pieces, zeros stored as nothing: memory stays bounded (the
// capture once allocated the whole range), and the image before the discard
// comes back byte for byte.
TEST_F(Undo, AWholeVolumeDiscardIsCapturedInBoundedMemory) {
  constexpr uint64_t kVolume = 1ull << 30;
  const std::string replica = pair->dir.file("big.img");
  { File::open(replica, O_RDWR | O_CREAT).write_at(std::vector<std::byte>(512), kVolume - 512); }  // sparse
  std::mt19937_64 rng(31);
  for (uint64_t at : {uint64_t{0}, uint64_t{700} << 20, kVolume - (3 << 20)}) scribble(replica, at, 3 << 20, rng);
  const uint64_t before = test::file_checksum(replica);
  const std::string dir = pair->dir.file("big.undo");
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // its own peak RSS: the parent's test binary is no measure
    int status = 1;
    try {
      rusage r0{}, r1{};
      getrusage(RUSAGE_SELF, &r0);
      UndoJournal undo(dir, uuid, 9);
      const LogRecord discard = discard_record(10, 0, static_cast<uint32_t>(kVolume / 512));
      undo.capture(File::open(replica, O_RDWR), std::span(&discard, 1));
      getrusage(RUSAGE_SELF, &r1);
      const long grew_kib = r1.ru_maxrss - r0.ru_maxrss;
      status = ::write(fds[1], &grew_kib, sizeof grew_kib) == sizeof grew_kib ? 0 : 1;
    } catch (const std::exception& e) {
      fprintf(stderr, "capture: %s\n", e.what());
    }
    ::_exit(status);
  }
  ::close(fds[1]);
  long grew_kib = -1;
  ASSERT_EQ(::read(fds[0], &grew_kib, sizeof grew_kib), static_cast<ssize_t>(sizeof grew_kib));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  printf("capturing a discard of %llu MiB: peak RSS grew %ld KiB\n", static_cast<unsigned long long>(kVolume >> 20),
         grew_kib);
  EXPECT_LT(grew_kib, 128 << 10) << "the before-image of a whole-volume discard held in memory";
  UndoJournal undo(dir, uuid, 9);
  EXPECT_EQ(undo.last_seq(), 10u);
  EXPECT_LT(undo.size_bytes(), 16u << 20) << "the zeros of the discard were stored";
  File::open(replica, O_RDWR).zero_range(0, kVolume);  // the discard, applied
  ASSERT_NE(test::file_checksum(replica), before);
  undo.roll_back(File::open(replica, O_RDWR), 10, 9);
  EXPECT_EQ(test::file_checksum(replica), before) << "the volume as it was before the discard";
}

// A record captured in several pieces counts only once its last piece is
// in: a crash after some of them leaves the record uncaptured (it arrives
// again and is captured whole), never half a before-image taken for all.
TEST_F(Undo, ACrashInTheMiddleOfARecordsPiecesLosesNone) {
  const std::string replica = test::make_file(pair->dir.file("replica.img"), kData);
  std::mt19937_64 rng(37);
  scribble(replica, 1 << 20, 12 << 20, rng);
  const uint64_t before = test::file_checksum(replica);
  const std::string dir = pair->dir.file("cut.undo");
  const LogRecord discard = discard_record(10, 0, (16 << 20) / 512);  // four pieces, three of them data
  uint64_t whole = 0;
  {
    UndoJournal undo(dir, uuid, 9);
    undo.capture(File::open(replica, O_RDWR), std::span(&discard, 1));
    whole = undo.size_bytes();
  }
  const std::string seg = only_segment(dir);
  const uint64_t piece = 512 + (4 << 20);  // a whole piece of data: its header and image
  for (uint64_t cut : {uint64_t{4096} + piece, uint64_t{4096} + 2 * piece, whole - 512, whole - 100}) {
    SCOPED_TRACE("the segment cut at " + std::to_string(cut) + " of " + std::to_string(whole));
    ASSERT_EQ(::truncate(seg.c_str(), static_cast<off_t>(cut)), 0);
    {
      UndoJournal undo(dir, uuid, 0);
      EXPECT_EQ(undo.last_seq(), 9u) << "a record with pieces missing counted as captured";
      EXPECT_EQ(undo.size_bytes(), 4096u) << "the pieces of a record cut short were left in the journal";
      undo.capture(File::open(replica, O_RDWR), std::span(&discard, 1));  // it arrives again
      EXPECT_EQ(undo.size_bytes(), whole);
    }
    UndoJournal undo(dir, uuid, 0);
    ASSERT_EQ(undo.last_seq(), 10u);
    const std::string img = pair->dir.file("cut.img");
    test::make_file(img, kData);  // the discard applied
    undo.roll_back(File::open(img, O_RDWR), 10, 9);
    EXPECT_EQ(test::file_checksum(img), before);
  }
}

// Retention drops whole segments: every boundary from the next segment's
// start on still rebuilds exactly, the ones before are refused, and a
// reopened journal knows where its history begins.
TEST_F(Undo, DroppingTheOldestSegmentsKeepsEveryLaterBoundary) {
  std::string replica = test::make_file(pair->dir.file("replica.img"), kData);
  const std::string dir = pair->dir.file("db0.undo");
  const uint64_t first = records.front().header.seq, last = records.back().header.seq;
  UndoJournal undo(dir, uuid, first - 1, 256 << 10);
  std::mt19937_64 rng(21);
  replicate(replica, undo, rng);
  auto segs = undo.segments();
  ASSERT_GE(segs.size(), 4u);
  undo.drop_oldest_segment();
  undo.drop_oldest_segment();
  const uint64_t from = segs[2].from_seq;
  ASSERT_EQ(undo.from_seq(), from);
  for (uint64_t p : {from, from + (last - from) / 3, last - 1})
    EXPECT_EQ(image_at(replica, undo, p), reference(p)) << "the image of seq " << p;
  EXPECT_THROW(undo.plan_back_to(from - 1), std::runtime_error) << "a boundary in a dropped segment";
  UndoJournal reopened(dir, uuid, 0, 256 << 10);
  EXPECT_EQ(reopened.from_seq(), from);
  EXPECT_EQ(reopened.last_seq(), undo.last_seq());
  EXPECT_EQ(image_at(replica, reopened, from), reference(from));
}

// Retention by space, bounded from both sides: the journal stays near its
// limit and no further below it than a segment (what retention drops at a
// time); points go with the history they needed, every point the kept
// history covers is still listed, and each listed rebuilds exactly.
TEST_F(Undo, RetentionBySpaceKeepsEveryListedPointRestorable) {
  std::string replica = test::make_file(pair->dir.file("replica.img"), kData);
  const uint64_t first = records.front().header.seq;
  Retention keep{0, 2 << 20, 256 << 10};
  History h(pair->dir.file("db0.undo"), pair->dir.file("db0.points"), keep);
  h.open(uuid, first - 1);
  std::mt19937_64 rng(33);
  std::vector<uint64_t> added;
  replicate(replica, h, rng, 0, SIZE_MAX, [&](uint64_t seq) {
    h.add_point(seq, PointKind::Crash, "");
    added.push_back(seq);
    h.prune(now_realtime_ns());
  });
  EXPECT_LE(h.size_bytes(), keep.max_bytes + keep.segment_bytes + (4 << 20)) << "the limit, give or take a batch";
  // A segment rolls over after the batch that filled it, so it can exceed
  // segment_bytes: the bound is the largest segment on disk.
  uint64_t largest = 0;
  for (const auto& e : std::filesystem::directory_iterator(pair->dir.file("db0.undo")))
    largest = std::max<uint64_t>(largest, e.file_size());
  EXPECT_GE(h.size_bytes() + largest, keep.max_bytes) << "retention dropped more than the limit asks";
  EXPECT_GT(h.oldest_boundary(), first - 1) << "nothing was pruned: the test proves nothing";
  auto points = h.points();
  ASSERT_FALSE(points.empty());
  EXPECT_LT(points.size(), added.size());
  EXPECT_GE(points.front().seq, h.oldest_boundary());
  const auto covered = std::count_if(added.begin(), added.end(), [&](uint64_t s) { return s >= h.oldest_boundary(); });
  EXPECT_EQ(static_cast<long>(points.size()), covered) << "a point the kept history covers was dropped";
  for (size_t i : {size_t{0}, points.size() / 2, points.size() - 1})
    EXPECT_EQ(image_of(replica, h, points[i].seq), reference(points[i].seq)) << "point at seq " << points[i].seq;
}

// Retention by age: points older than the window go; the history the
// window's oldest moment needs stays, even where no point stands.
TEST_F(Undo, RetentionByAgeKeepsTheWindowRestorable) {
  std::string replica = test::make_file(pair->dir.file("replica.img"), kData);
  const uint64_t first = records.front().header.seq;
  const double window = 2.0;
  History h(pair->dir.file("db0.undo"), pair->dir.file("db0.points"), Retention{window, 0, 256 << 10});
  h.open(uuid, first - 1);
  std::mt19937_64 rng(34);
  const size_t half = records.size() / 2;
  auto point_each_batch = [&](uint64_t seq) { h.add_point(seq, PointKind::Crash, ""); };
  replicate(replica, h, rng, 0, half, point_each_batch);
  const uint64_t half_seq = records[half - 1].header.seq;
  std::this_thread::sleep_for(std::chrono::duration<double>(window + 0.5));  // the first half leaves the window
  const uint64_t window_start = now_realtime_ns() - static_cast<uint64_t>(window * 1e9);
  // The window's points spread over more than half of it, so that a window
  // cut short drops some of them.
  const size_t three_quarters = half + (records.size() - half) / 2;
  replicate(replica, h, rng, half, three_quarters, point_each_batch);
  std::this_thread::sleep_for(std::chrono::duration<double>(window * 0.6));
  replicate(replica, h, rng, three_quarters, SIZE_MAX, point_each_batch);
  const auto before = h.points();
  const uint64_t now = now_realtime_ns();
  h.prune(now);
  auto points = h.points();
  ASSERT_FALSE(points.empty());
  for (const auto& p : points) EXPECT_GE(p.created_ns, window_start) << "point at seq " << p.seq << " outlived the window";
  // And from the other side: every point inside the window stays.
  const auto inside = std::count_if(before.begin(), before.end(), [&](const RecoveryPoint& p) {
    return p.created_ns >= now - static_cast<uint64_t>(window * 1e9);
  });
  EXPECT_GT(inside, 0);
  EXPECT_EQ(static_cast<long>(points.size()), inside) << "a point inside the window was dropped";
  EXPECT_GT(h.oldest_boundary(), first - 1) << "nothing was pruned";
  EXPECT_LE(h.oldest_boundary(), half_seq) << "the window's oldest moment (seq " << half_seq << ") can no longer be rebuilt";
  EXPECT_EQ(image_of(replica, h, half_seq), reference(half_seq));
  EXPECT_EQ(image_of(replica, h, points.front().seq), reference(points.front().seq));
}

// An image being built pins the history it needs: pruning under pressure
// stops short of it, and goes on once the pin is gone.
TEST_F(Undo, APinnedBoundarySurvivesPruning) {
  std::string replica = test::make_file(pair->dir.file("replica.img"), kData);
  const uint64_t first = records.front().header.seq;
  History h(pair->dir.file("db0.undo"), pair->dir.file("db0.points"), Retention{0, 1 << 20, 256 << 10});
  h.open(uuid, first - 1);
  std::mt19937_64 rng(35);
  const size_t third = records.size() / 3;
  replicate(replica, h, rng, 0, third);
  const uint64_t pinned = records[third - 1].header.seq;
  {
    History::Pin pin(h, pinned);
    replicate(replica, h, rng, third, SIZE_MAX, [&](uint64_t) { h.prune(now_realtime_ns()); });
    EXPECT_LE(h.oldest_boundary(), pinned);
    std::string img = pair->dir.file("pinned.img");
    test::copy_file(replica, img);
    UndoJournal::apply(pin.plan(), File::open(img, O_RDWR));
    EXPECT_EQ(test::file_checksum(img), reference(pinned));
  }
  h.prune(now_realtime_ns());
  EXPECT_GT(h.oldest_boundary(), pinned) << "the pin outlived its scope";
  EXPECT_THROW(History::Pin(h, pinned), std::runtime_error) << "a boundary outside retention";
}

// A test failover's image is built while records keep being applied to the
// replica: each image equals the primary at its point.
TEST_F(Undo, APointsImageIsExactWhileReplicationGoesOn) {
  std::string replica = test::make_file(pair->dir.file("replica.img"), kData);
  const uint64_t first = records.front().header.seq;
  History h(pair->dir.file("db0.undo"), pair->dir.file("db0.points"), Retention{0, 0, 1 << 20});
  h.open(uuid, first - 1);
  std::mt19937_64 rng(36);
  const size_t half = records.size() / 2;
  std::vector<uint64_t> points;
  replicate(replica, h, rng, 0, half, [&](uint64_t seq) { points.push_back(seq); });
  // The race is forced, not hoped for: the applier starts once a build has,
  // and does not finish before a build has run from start to end beside it.
  std::atomic<bool> done{false}, build_started{false};
  std::atomic<unsigned> during{0};
  std::thread applier([&] {
    while (!build_started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::mt19937_64 rng2(37);
    replicate(replica, h, rng2, half, SIZE_MAX, [&](uint64_t seq) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (seq == records.back().header.seq)
        while (!during) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
    done = true;
  });
  unsigned built = 0;
  while (!done || built < 3) {
    uint64_t p = points[rng() % points.size()];
    bool running = build_started && !done;
    build_started = true;
    uint64_t image = image_of(replica, h, p);
    during += running && !done;  // records were applied for the whole build
    EXPECT_EQ(image, reference(p)) << "the image of seq " << p;
    built++;
  }
  applier.join();
  EXPECT_GE(during, 1u) << "no image was built while records were applied";
  // An unplanned failover: the replica itself goes back.
  roll_back_replica(h, replica, points[points.size() / 2]);
  EXPECT_EQ(test::file_checksum(replica), reference(points[points.size() / 2]));
}

}  // namespace
}  // namespace hrl
