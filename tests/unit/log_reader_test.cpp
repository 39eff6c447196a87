#include <gtest/gtest.h>

#include <cstring>
#include <xxhash.h>

#include <map>
#include <random>

#include "io/file.h"
#include "log/log_reader.h"
#include "log/log_writer.h"
#include "test_support.h"

namespace hrl {
namespace {

struct Seen {
  uint64_t seq;
  uint16_t type;
  uint64_t sector;
  uint32_t nr;
  uint64_t ring_pos;
  uint64_t payload_hash;
  bool operator==(const Seen&) const = default;
};

std::vector<Seen> read_all(const std::string& log, LogReaderOptions opt = {}, ReadResult* end = nullptr) {
  LogReader r(log, opt);
  std::vector<Seen> out;
  LogRecord rec;
  ReadResult res;
  while ((res = r.next(rec)).status == ReadStatus::Record)
    out.push_back({rec.header.seq, rec.header.type, rec.header.sector, rec.header.nr_sectors, rec.ring_pos,
                   XXH64(rec.payload.data(), rec.payload.size(), 0)});
  if (end) *end = res;
  return out;
}

// Byte offset in the log file of the record with this sequence number.
uint64_t record_offset(const std::string& log, uint64_t seq) {
  for (const Seen& s : read_all(log))
    if (s.seq == seq) return LogReader(log).superblock().ring_offset + s.ring_pos;
  throw std::runtime_error("no record " + std::to_string(seq));
}

void flip_byte(const std::string& path, uint64_t offset) {
  File f = File::open(path, O_RDWR);
  std::byte b[1];
  f.read_at(b, offset);
  b[0] ^= std::byte{0x5a};
  f.write_at(b, offset);
}

TEST(LogReader, ReadsEveryRecordInOrderWithItsData) {
  test::LogPair p(16 << 20, 32 << 20);
  std::mt19937_64 rng(7);
  std::map<uint64_t, uint64_t> payload_hash;  // seq -> hash of the data written
  {
    LogWriter w(p.log, p.data);
    for (int i = 0; i < 200; i++) {
      auto data = test::random_bytes(rng, 512 * (1 + rng() % 64));
      uint64_t seq = w.write(rng() % 30000, data);
      payload_hash[seq] = XXH64(data.data(), data.size(), 0);
    }
    payload_hash[w.mark("done")] = XXH64("done", 4, 0);
    w.close();
  }
  ReadResult end;
  auto seen = read_all(p.log, {}, &end);
  ASSERT_EQ(seen.size(), 201u);
  for (size_t i = 0; i < seen.size(); i++) {
    EXPECT_EQ(seen[i].seq, i + 1);
    EXPECT_EQ(seen[i].payload_hash, payload_hash[i + 1]) << "seq " << i + 1;
  }
  EXPECT_EQ(seen.back().type, HRL_REC_MARK);
  EXPECT_EQ(end.status, ReadStatus::End);
  EXPECT_EQ(end.at.seq, 202u);
  EXPECT_EQ(end.verdict, RecordVerdict::NoRecord);
}

// Small chunks and a short window force records across chunk boundaries and
// across the end of the window (the bounce copy): same records either way.
TEST(LogReader, WindowGeometryDoesNotChangeWhatIsRead) {
  test::LogPair p(16 << 20, 64 << 20);
  std::mt19937_64 rng(11);
  {
    LogWriter w(p.log, p.data);
    test::WorkloadOptions opt;
    opt.ops = 300;
    test::run_workload(w, rng, opt);
    w.close();
  }
  auto reference = read_all(p.log);
  ASSERT_GT(reference.size(), 290u);
  struct Geometry {
    uint32_t chunk;
    unsigned depth, window;
  };
  // The window must hold the largest record (256 KiB here) plus a chunk.
  for (Geometry g : {Geometry{4096, 2, 66}, Geometry{4096, 66, 66}, Geometry{8192, 3, 40}, Geometry{65536, 5, 5},
                     Geometry{65536, 2, 7}}) {
    LogReaderOptions opt;
    opt.chunk_bytes = g.chunk;
    opt.queue_depth = g.depth;
    opt.window_chunks = g.window;
    EXPECT_EQ(read_all(p.log, opt), reference) << "chunk " << g.chunk << " depth " << g.depth << " window " << g.window;
  }
}

TEST(LogReader, BothBackendsReadTheSameRecords) {
  test::LogPair p(16 << 20, 64 << 20);
  std::mt19937_64 rng(3);
  {
    LogWriter w(p.log, p.data);
    test::run_workload(w, rng, {});
    w.close();
  }
  LogReaderOptions uring, aio;
  uring.backend = IoBackendKind::Uring;
  aio.backend = IoBackendKind::Aio;
  EXPECT_EQ(LogReader(p.log, uring).backend_name(), "io_uring");
  EXPECT_EQ(LogReader(p.log, aio).backend_name(), "libaio");
  auto a = read_all(p.log, uring), b = read_all(p.log, aio);
  EXPECT_GT(a.size(), 400u);
  EXPECT_EQ(a, b);
}

// A 64 KiB ring lapped many times, read both live (following the writer) and
// afterwards from the tail: sequence numbers stay dense across the wrap and
// PAD records fill the end of the ring.
TEST(LogReader, RingWrapAcrossTheEnd) {
  FormatOptions fo;
  fo.ring_bytes = 64 << 10;
  test::LogPair p(4 << 20, 1 << 20, fo);
  std::mt19937_64 rng(5);
  LogWriter w(p.log, p.data);
  LogReader live(p.log);
  LogRecord rec;
  uint64_t expect = 1, pads = 0, wraps = 0, last_pos = 0;
  std::map<uint64_t, uint64_t> written;
  for (int i = 0; i < 120; i++) {
    auto data = test::random_bytes(rng, 512 * (1 + rng() % 12));  // odd sizes: PADs of many lengths
    uint64_t seq = w.write(8 * (rng() % 1000), data);
    ASSERT_NE(seq, 0u) << "ring overflowed at write " << i;
    written[seq] = XXH64(data.data(), data.size(), 0);
    ReadResult r;
    while ((r = live.next(rec)).status == ReadStatus::Record) {
      ASSERT_EQ(rec.header.seq, expect++);
      if (rec.header.type == HRL_REC_PAD) {
        pads++;
        continue;
      }
      EXPECT_EQ(XXH64(rec.payload.data(), rec.payload.size(), 0), written[rec.header.seq]);
      if (rec.ring_pos < last_pos) wraps++;
      last_pos = rec.ring_pos;
    }
    ASSERT_EQ(r.status, ReadStatus::End) << r.describe();
    w.ack(expect - 1);  // the live reader consumed everything
  }
  EXPECT_GE(wraps, 3u);
  EXPECT_GE(pads, 1u);
  EXPECT_EQ(expect, w.status().head_seq);
}

TEST(LogReader, TornLastRecordEndsTheLogCleanly) {
  test::LogPair p(4 << 20, 4 << 20);
  std::mt19937_64 rng(9);
  {
    LogWriter w(p.log, p.data);
    for (int i = 0; i < 10; i++) w.write(8 * i, test::random_bytes(rng, 4096));
    w.flush();                                     // the superblock's head: seq 11
    w.write(800, test::random_bytes(rng, 8192));   // seq 11, not yet flushed
    // destroyed without close(): as a crash
  }
  flip_byte(p.log, record_offset(p.log, 11) + 512 + 5000);  // a payload byte of seq 11
  ReadResult end;
  auto seen = read_all(p.log, {}, &end);
  EXPECT_EQ(seen.size(), 10u);
  EXPECT_EQ(end.status, ReadStatus::End) << end.describe();
  EXPECT_EQ(end.verdict, RecordVerdict::Torn);
  EXPECT_EQ(end.at.seq, 11u);
}

TEST(LogReader, CorruptPayloadBelowThePersistedHeadIsReported) {
  test::LogPair p(4 << 20, 4 << 20);
  std::mt19937_64 rng(9);
  {
    LogWriter w(p.log, p.data);
    for (int i = 0; i < 10; i++) w.write(8 * i, test::random_bytes(rng, 4096));
    w.close();
  }
  uint64_t off = record_offset(p.log, 6);
  flip_byte(p.log, off + 512 + 100);
  ReadResult end;
  auto seen = read_all(p.log, {}, &end);
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(end.status, ReadStatus::Corrupt);
  EXPECT_EQ(end.at.seq, 6u);
  EXPECT_EQ(end.at.ring_pos + LogReader(p.log).superblock().ring_offset, off);
  EXPECT_NE(end.describe().find("corrupt record at seq 6, ring offset"), std::string::npos) << end.describe();
  EXPECT_NE(end.describe().find("payload checksum mismatch"), std::string::npos) << end.describe();
}

TEST(LogReader, CorruptHeaderIsReported) {
  test::LogPair p(4 << 20, 4 << 20);
  std::mt19937_64 rng(9);
  {
    LogWriter w(p.log, p.data);
    for (int i = 0; i < 10; i++) w.write(8 * i, test::random_bytes(rng, 4096));
    w.close();
  }
  flip_byte(p.log, record_offset(p.log, 3) + 26);  // the sector field
  ReadResult end;
  EXPECT_EQ(read_all(p.log, {}, &end).size(), 2u);
  EXPECT_EQ(end.status, ReadStatus::Corrupt);
  EXPECT_EQ(end.verdict, RecordVerdict::Torn);
  EXPECT_EQ(end.at.seq, 3u);
  EXPECT_NE(end.detail.find("header checksum"), std::string::npos);
}

TEST(LogReader, StaleRecordsFromAnEarlierLapAreRejected) {
  FormatOptions fo;
  fo.ring_bytes = 64 << 10;
  test::LogPair p(4 << 20, 1 << 20, fo);
  std::mt19937_64 rng(1);
  LogWriter w(p.log, p.data);
  for (int i = 0; i < 12; i++) w.write(8 * i, test::random_bytes(rng, 4096));  // lap 1 covers 54 KiB
  w.ack(w.status().head_seq - 1);
  while (w.superblock().head_offset >= 16 << 10)  // wrap, and stop early in lap 2
    w.write(0, test::random_bytes(rng, 4096));
  uint64_t head = w.status().head_seq;
  w.flush();
  ReadResult end;
  auto seen = read_all(p.log, {}, &end);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().seq, head - 1);
  EXPECT_EQ(end.status, ReadStatus::End);
  EXPECT_EQ(end.verdict, RecordVerdict::Stale) << end.describe();  // a valid record of lap 1 sits there
  EXPECT_EQ(end.at.seq, head);
}

TEST(LogReader, FollowsALiveLogAndSeeks) {
  test::LogPair p(4 << 20, 4 << 20);
  std::mt19937_64 rng(2);
  LogWriter w(p.log, p.data);
  LogReader r(p.log);
  LogRecord rec;
  EXPECT_EQ(r.next(rec).status, ReadStatus::End);
  w.write(0, test::random_bytes(rng, 4096));
  w.write(8, test::random_bytes(rng, 4096));
  ASSERT_EQ(r.next(rec).status, ReadStatus::Record);
  EXPECT_EQ(rec.header.seq, 1u);
  LogPosition second = r.position();
  ASSERT_EQ(r.next(rec).status, ReadStatus::Record);
  EXPECT_EQ(r.next(rec).status, ReadStatus::End);
  w.mark("m");
  ASSERT_EQ(r.next(rec).status, ReadStatus::Record);
  EXPECT_EQ(rec.header.type, HRL_REC_MARK);
  r.seek(second);
  ASSERT_EQ(r.next(rec).status, ReadStatus::Record);
  EXPECT_EQ(rec.header.seq, 2u);
  EXPECT_THROW(r.seek({5, 100}), std::invalid_argument);
}

}  // namespace
}  // namespace hrl
