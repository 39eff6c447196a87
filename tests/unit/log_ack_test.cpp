// A consumer in another process acknowledges a LogWriter's log through the
// superblock (acknowledge_log), as hrld does on hosts without the module.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <cstring>
#include <random>

#include "io/file.h"
#include "log/log_reader.h"
#include "log/log_writer.h"
#include "test_support.h"

namespace hrl {
namespace {

FormatOptions small_ring() {
  FormatOptions fo;
  fo.ring_bytes = 64 << 10;
  fo.assume_in_sync = true;
  return fo;
}

std::vector<std::byte> block_for(uint64_t n) {  // the data of the n-th write, known to both sides
  std::mt19937_64 rng(n);
  return test::random_bytes(rng, 4096);
}

TEST(LogAck, AConsumerFreesTheRingThroughTheSuperblock) {
  test::LogPair p(4 << 20, 1 << 20, small_ring());
  LogWriter w(p.log, p.data);
  LogReader reader(p.log);
  File consumer = File::open(p.log, O_RDWR);  // another open file description: the lock applies
  LogRecord rec;
  uint64_t writes = 0, read = 0;
  for (int lap = 0; lap < 40; lap++) {
    for (int i = 0; i < 6; i++, writes++) ASSERT_NE(w.write(8 * (writes % 64), block_for(writes)), 0u) << "overflow";
    ReadResult r;
    while ((r = reader.next(rec)).status == ReadStatus::Record) {
      if (rec.header.type != HRL_REC_WRITE) continue;
      auto expect = block_for(read++);
      ASSERT_EQ(std::memcmp(rec.payload.data(), expect.data(), 4096), 0) << "record " << rec.header.seq;
    }
    ASSERT_EQ(r.status, ReadStatus::End) << r.describe();
    LogPosition next = reader.position();
    acknowledge_log(consumer, next.seq, next.ring_pos);
  }
  EXPECT_EQ(read, writes);
  EXPECT_EQ(w.status().mode, TrackingMode::Journal);  // 240 writes through a ring of 14
  EXPECT_TRUE(w.refresh_acknowledged() || w.status().ring_used == 0);
  // An acknowledgement never moves the tail back, nor past what was written.
  acknowledge_log(consumer, 2, 512);
  EXPECT_EQ(read_superblock(consumer).tail_seq, reader.position().seq);
  w.close();
  EXPECT_EQ(read_superblock(consumer).tail_seq, reader.position().seq);  // the writer kept the ack
}

TEST(LogAck, WriterAndConsumerInTwoProcesses) {
  test::LogPair p(4 << 20, 1 << 20, small_ring());
  constexpr uint64_t kWrites = 2000;  // about 140 laps of the ring
  pid_t child = fork();
  if (child == 0) {
    int rc = 0;
    try {
      LogWriter w(p.log, p.data);
      for (uint64_t n = 0; n < kWrites; n++) {
        while (w.status().ring_used + 2 * (512 + 4096) > w.status().ring_bytes && !w.refresh_acknowledged())
          usleep(200);  // a writer with nowhere to go would enter bitmap mode: wait for the consumer instead
        if (w.write(8 * (n % 512), block_for(n)) == 0) rc = 3;
      }
      w.close();
    } catch (const std::exception& e) {
      fprintf(stderr, "writer: %s\n", e.what());
      rc = 2;
    }
    _exit(rc);
  }
  LogReader reader(p.log);
  File consumer = File::open(p.log, O_RDWR);
  LogRecord rec;
  uint64_t read = 0;
  for (int spins = 0; read < kWrites && spins < 200000; spins++) {
    ReadResult r;
    while ((r = reader.next(rec)).status == ReadStatus::Record) {
      if (rec.header.type != HRL_REC_WRITE) continue;
      auto expect = block_for(read);
      ASSERT_EQ(rec.header.sector, 8 * (read % 512));
      ASSERT_EQ(std::memcmp(rec.payload.data(), expect.data(), 4096), 0) << "record " << rec.header.seq;
      read++;
    }
    ASSERT_NE(r.status, ReadStatus::Corrupt) << r.describe();
    acknowledge_log(consumer, reader.position().seq, reader.position().ring_pos);
    if (read < kWrites) usleep(100);
  }
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "writer exit " << WEXITSTATUS(status);
  EXPECT_EQ(read, kWrites);
  Superblock sb = read_superblock(consumer);
  EXPECT_TRUE(sb.has(HRL_SB_CLEAN));
  EXPECT_FALSE(sb.has(HRL_SB_BITMAP_MODE));
  EXPECT_EQ(sb.tail_seq, reader.position().seq);
}

}  // namespace
}  // namespace hrl
