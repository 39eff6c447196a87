// The secondary's undo journal: before-images captured batch by batch as a
// workload's records are applied return a copy of the replica to any record
// boundary, byte for byte the primary's data as it was then; a crash between
// capture and apply, and a torn entry, lose nothing that was made durable.
#include <gtest/gtest.h>
#include <unistd.h>

#include <random>

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

  // Applies every record to `replica` in batches of random size, capturing first.
  void replicate(const std::string& replica, UndoJournal& undo, std::mt19937_64& rng) {
    File f = File::open(replica, O_RDWR);
    auto io = make_io_backend(IoBackendKind::Auto, 16);
    for (size_t i = 0; i < records.size();) {
      size_t n = std::min<size_t>(records.size() - i, 1 + rng() % 40);
      std::vector<LogRecord> batch;
      for (size_t k = i; k < i + n; k++) batch.push_back(records[k].view());
      undo.capture(f, batch);
      RecordApplier a(f, kData / 512, *io);
      for (const auto& r : batch) a.apply(r);
      a.finish();
      i += n;
    }
  }

  uint64_t image_at(const std::string& replica, const UndoJournal& undo, uint64_t seq) {
    std::string img = pair->dir.file("point.img");
    test::copy_file(replica, img);
    undo.roll_back(File::open(img, O_RDWR), records.back().header.seq, seq);
    return test::file_checksum(img);
  }

  std::unique_ptr<test::LogPair> pair;
  std::vector<OwnedRecord> records;
  std::array<uint8_t, 16> uuid{};
};

TEST_F(Undo, ReturnsACopyOfTheReplicaToAnyRecordBoundary) {
  std::string replica = test::make_file(pair->dir.file("replica.img"), kData);
  UndoJournal undo(pair->dir.file("db0.undo"), uuid);
  std::mt19937_64 rng(5);
  replicate(replica, undo, rng);
  const uint64_t first = records.front().header.seq, last = records.back().header.seq;
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
    UndoJournal undo(path, uuid);
    File f = File::open(replica, O_RDWR);
    std::vector<LogRecord> batch;
    for (size_t k = 0; k < half; k++) batch.push_back(records[k].view());
    undo.capture(f, batch);  // captured, durable; the daemon dies before applying
  }
  {
    File j = File::open(path, O_RDWR);
    std::vector<std::byte> junk(700, std::byte{0x5a});
    j.write_at(junk, j.size());  // and a torn entry after it
  }
  UndoJournal undo(path, uuid);  // reopened: the torn entry is cut off
  EXPECT_EQ(undo.last_seq(), records[half - 1].header.seq);
  std::mt19937_64 rng(9);
  replicate(replica, undo, rng);  // the batch arrives again: captured once, applied now
  const uint64_t mid = records[half / 2].header.seq, first = records.front().header.seq;
  EXPECT_EQ(image_at(replica, undo, mid), reference(mid));
  EXPECT_EQ(image_at(replica, undo, first - 1), reference(first - 1));
  std::array<uint8_t, 16> other = uuid;
  other[0] ^= 1;
  EXPECT_THROW(UndoJournal(path, other), std::runtime_error) << "another volume's journal";
  undo.reset();
  EXPECT_EQ(undo.last_seq(), 0u);
}

}  // namespace
}  // namespace hrl
