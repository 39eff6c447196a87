#include <gtest/gtest.h>

#include <cstring>

#include <random>
#include <set>

#include "io/file.h"
#include "log/log_reader.h"
#include "log/log_writer.h"
#include "test_support.h"

namespace hrl {
namespace {

struct Op {
  uint64_t seq, sector, nr;
};

std::set<uint64_t> seqs_in_log(const std::string& log) {
  LogReader r(log);
  LogRecord rec;
  std::set<uint64_t> out;
  while (r.next(rec).status == ReadStatus::Record) out.insert(rec.header.seq);
  return out;
}

FormatOptions small_ring() {
  FormatOptions fo;
  fo.ring_bytes = 64 << 10;
  return fo;
}

// Invariant 1: every write is in the log or in the bitmap, through overflow,
// the handover of the bitmap, and back to journal mode.
TEST(LogWriter, OverflowToBitmapAndBack) {
  test::LogPair p(8 << 20, 1 << 20, small_ring());
  std::mt19937_64 rng(4);
  LogWriter w(p.log, p.data);
  EXPECT_EQ(w.status().mode, TrackingMode::ResyncRequired);  // a new volume
  w.take_bitmap();  // the initial copy takes the whole device...
  w.end_resync();   // ...and finishes
  EXPECT_EQ(w.status().mode, TrackingMode::Journal);

  std::vector<Op> ops;
  for (int i = 0; i < 40; i++) {
    uint64_t sector = 8 * (rng() % 2000), nr = 8 * (1 + rng() % 2);
    ops.push_back({w.write(sector, test::random_bytes(rng, nr * 512)), sector, nr});
  }
  WriterStatus st = w.status();
  EXPECT_EQ(st.mode, TrackingMode::Bitmap);
  EXPECT_EQ(st.reason, HRL_REASON_RING_OVERFLOW);
  EXPECT_GT(st.dirty_blocks, 0u);
  EXPECT_THROW(w.mark("nope"), std::runtime_error);

  auto in_log = seqs_in_log(p.log);
  const DirtyBitmap& bm = w.dirty_bitmap();
  unsigned journaled = 0, tracked = 0;
  for (const Op& op : ops) {
    if (op.seq) {
      EXPECT_TRUE(in_log.count(op.seq)) << "seq " << op.seq << " missing from the log";
      journaled++;
    } else {
      EXPECT_TRUE(bm.covers_sectors(op.sector, op.nr)) << "write at " << op.sector << " missing from the bitmap";
      tracked++;
    }
  }
  EXPECT_GT(journaled, 5u);
  EXPECT_GT(tracked, 5u);

  // The daemon ships and acknowledges the ring, then takes the bitmap.
  w.ack(w.status().head_seq - 1);
  EXPECT_EQ(w.status().mode, TrackingMode::Bitmap);  // bits not yet taken
  uint64_t take_seq = w.status().head_seq;
  DirtyBitmap taken = w.take_bitmap();
  for (const Op& op : ops)
    if (!op.seq) {
      EXPECT_TRUE(taken.covers_sectors(op.sector, op.nr));
    }
  st = w.status();
  EXPECT_EQ(st.mode, TrackingMode::Journal);
  EXPECT_EQ(st.dirty_blocks, 0u);
  EXPECT_EQ(st.resync_blocks, taken.count());
  EXPECT_TRUE(w.superblock().has(HRL_SB_RESYNC_PENDING));
  EXPECT_EQ(w.superblock().resync_take_seq, take_seq);
  EXPECT_NE(w.write(0, test::random_bytes(rng, 4096)), 0u);  // journaled again
  w.end_resync();
  EXPECT_FALSE(w.superblock().has(HRL_SB_RESYNC_PENDING));
  EXPECT_EQ(w.status().resync_blocks, 0u);
}

TEST(LogWriter, CleanReloadKeepsRingAndBitmap) {
  test::LogPair p(8 << 20, 1 << 20, small_ring());
  std::mt19937_64 rng(6);
  DirtyBitmap before;
  std::set<uint64_t> ring_before;
  {
    LogWriter w(p.log, p.data);
    w.take_bitmap();
    w.end_resync();
    for (int i = 0; i < 30; i++) w.write(8 * (rng() % 2000), test::random_bytes(rng, 4096));
    ASSERT_EQ(w.status().mode, TrackingMode::Bitmap);
    before = w.dirty_bitmap();
    w.close();
    ring_before = seqs_in_log(p.log);
  }
  LogWriter w(p.log, p.data);
  EXPECT_EQ(w.status().mode, TrackingMode::Bitmap);
  EXPECT_EQ(w.status().reason, HRL_REASON_RING_OVERFLOW);
  EXPECT_TRUE(std::equal(before.bytes().begin(), before.bytes().end(), w.dirty_bitmap().bytes().begin()));
  EXPECT_EQ(seqs_in_log(p.log), ring_before);
}

TEST(LogWriter, UncleanShutdownRequiresAResyncOfEverything) {
  test::LogPair p(8 << 20, 4 << 20);
  std::mt19937_64 rng(8);
  {
    LogWriter w(p.log, p.data);
    w.take_bitmap();
    w.end_resync();
    for (int i = 0; i < 5; i++) w.write(8 * i, test::random_bytes(rng, 4096));
  }  // no close(): a crash
  LogWriter w(p.log, p.data);
  WriterStatus st = w.status();
  EXPECT_EQ(st.mode, TrackingMode::ResyncRequired);
  EXPECT_EQ(st.reason, HRL_REASON_UNCLEAN_SHUTDOWN);
  EXPECT_EQ(seqs_in_log(p.log), (std::set<uint64_t>{1, 2, 3, 4, 5}));  // the valid prefix stays shippable
  EXPECT_EQ(w.write(64, test::random_bytes(rng, 4096)), 6u);            // dense across the crash
  DirtyBitmap taken = w.take_bitmap();
  EXPECT_EQ(taken.count(), taken.bits());  // the whole device
  EXPECT_EQ(w.status().mode, TrackingMode::Journal);
}

// A crash can leave a torn record with a valid one after it (the target has
// several writes in flight). The next writer must not let that old record
// reappear after its own.
TEST(LogWriter, UncleanReloadErasesRecordsPastTheHead) {
  test::LogPair p(8 << 20, 4 << 20);
  std::mt19937_64 rng(10);
  uint64_t torn_at = 0;
  {
    LogWriter w(p.log, p.data);
    for (int i = 0; i < 4; i++) w.write(8 * i, test::random_bytes(rng, 4096));
    w.flush();
    torn_at = w.superblock().ring_offset + w.superblock().head_offset;
    w.write(100, test::random_bytes(rng, 4096));  // seq 5: will be torn
    w.write(200, test::random_bytes(rng, 4096));  // seq 6: survives intact
  }
  {
    File f = File::open(p.log, O_RDWR);
    std::byte junk[64] = {};
    f.write_at(junk, torn_at + 512 + 64);
  }
  LogWriter w(p.log, p.data);
  EXPECT_EQ(w.status().head_seq, 5u);
  EXPECT_EQ(w.write(300, test::random_bytes(rng, 4096)), 5u);  // same size: the old seq 6 would line up
  LogReader r(p.log);
  LogRecord rec;
  std::vector<uint64_t> sectors;
  ReadResult res;
  while ((res = r.next(rec)).status == ReadStatus::Record) sectors.push_back(rec.header.sector);
  EXPECT_EQ(sectors, (std::vector<uint64_t>{0, 8, 16, 24, 300}));
  EXPECT_EQ(res.status, ReadStatus::End);
}

TEST(LogWriter, AckFreesSpaceAndSurvivesReload) {
  test::LogPair p(8 << 20, 1 << 20, small_ring());
  std::mt19937_64 rng(12);
  {
    LogWriter w(p.log, p.data);
    for (int i = 0; i < 10; i++) w.write(8 * i, test::random_bytes(rng, 4096));
    uint64_t used = w.status().ring_used;
    w.ack(4);
    EXPECT_EQ(w.status().tail_seq, 5u);
    EXPECT_EQ(w.status().ring_used, used - 4 * (512 + 4096));
    w.ack(2);  // already released: no effect
    EXPECT_EQ(w.status().tail_seq, 5u);
    EXPECT_THROW(w.ack(11), std::invalid_argument);
  }  // even without a clean close, the acknowledged tail is on disk
  EXPECT_EQ(read_superblock(File::open(p.log, O_RDONLY)).tail_seq, 5u);
  EXPECT_EQ(seqs_in_log(p.log), (std::set<uint64_t>{5, 6, 7, 8, 9, 10}));
}

TEST(LogWriter, RefusesBadRequestsWithClearErrors) {
  test::LogPair p(8 << 20, 4 << 20);
  LogWriter w(p.log, p.data);
  std::vector<std::byte> block(4096);
  EXPECT_THROW(w.write(16384 - 4, block), std::out_of_range);  // past the end of the 8 MiB device
  EXPECT_THROW(w.write(0, std::span(block).first(100)), std::invalid_argument);
  EXPECT_THROW(w.discard(0, 0), std::invalid_argument);
  EXPECT_THROW(w.mark(std::string(300, 'x')), std::invalid_argument);
  EXPECT_THROW(w.end_resync(), std::logic_error);
}

TEST(LogWriter, RefusesADataDeviceSmallerThanTheVolume) {
  test::LogPair p(8 << 20, 4 << 20);
  auto small = test::make_file(p.dir.file("small.img"), 4 << 20);
  try {
    LogWriter w(p.log, small);
    FAIL() << "opened a 4 MiB device for an 8 MiB volume";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("data device is 4194304 bytes"), std::string::npos) << e.what();
  }
}

TEST(LogWriter, LargeWritesAreSplitAtTheMaximumPayload) {
  FormatOptions fo;
  fo.max_payload = 64 << 10;
  test::LogPair p(8 << 20, 4 << 20, fo);
  std::mt19937_64 rng(13);
  LogWriter w(p.log, p.data);
  EXPECT_EQ(w.write(0, test::random_bytes(rng, 200 << 10), HRL_REC_FLUSH | HRL_REC_FUA), 4u);
  LogReader r(p.log);
  LogRecord rec;
  std::vector<std::pair<uint64_t, uint16_t>> got;
  while (r.next(rec).status == ReadStatus::Record) got.push_back({rec.header.sector, rec.header.flags});
  // FLUSH on the first piece, FUA on the last.
  EXPECT_EQ(got, (std::vector<std::pair<uint64_t, uint16_t>>{
                     {0, HRL_REC_FLUSH}, {128, 0}, {256, 0}, {384, HRL_REC_FUA}}));
}

}  // namespace
}  // namespace hrl
