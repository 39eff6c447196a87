// Replay equivalence: a random workload written through LogWriter onto an
// image, replayed from the log onto a copy of the image as it was at format
// time, gives the same bytes (invariant 2: the log is a valid serialization).
#include <gtest/gtest.h>

#include <cstring>

#include <unistd.h>

#include <random>

#include "io/file.h"
#include "log/log_reader.h"
#include "log/log_writer.h"
#include "log/record_applier.h"
#include "test_support.h"

namespace hrl {
namespace {

class Replay : public ::testing::TestWithParam<IoBackendKind> {};

// Applies every valid record of the log onto the target through io; returns
// where the log ended and the applier's counts.
std::pair<ReadResult, ApplyStats> replay_all(const std::string& log, const std::string& target_path, IoBackend& io,
                                             IoBackendKind reader_backend = IoBackendKind::Auto) {
  LogReaderOptions ro;
  ro.backend = reader_backend;
  LogReader reader(log, ro);
  File target = File::open(target_path, O_RDWR);
  RecordApplier applier(target, reader.superblock().data_sectors, io);
  LogRecord rec;
  ReadResult r;
  while ((r = reader.next(rec)).status == ReadStatus::Record) applier.apply(rec);
  applier.finish();
  return {r, applier.stats()};
}

TEST_P(Replay, ReplayingTheLogReproducesTheImage) {
  test::LogPair p(64 << 20, 320 << 20);
  std::mt19937_64 rng(21);
  {  // an image with content, not zeros, so discards and overwrites show
    File d = File::open(p.data, O_RDWR);
    d.write_at(test::random_bytes(rng, 64 << 20), 0);
  }
  std::string replica = p.dir.file("replica.img");
  test::copy_file(p.data, replica);
  test::WorkloadOptions opt;
  opt.ops = 800;
  opt.max_write = 1 << 20;
  test::WorkloadResult wl;
  {
    LogWriter w(p.log, p.data);
    wl = test::run_workload(w, rng, opt);
    w.close();
  }
  ASSERT_GT(wl.discards, 20u);
  ASSERT_FALSE(LogReader(p.log).superblock().has(HRL_SB_BITMAP_MODE)) << "the workload must fit the ring";
  ASSERT_NE(test::compare_files(p.data, replica), "");

  auto io = make_io_backend(GetParam(), 16);
  auto [r, stats] = replay_all(p.log, replica, *io, GetParam());
  EXPECT_EQ(r.status, ReadStatus::End) << r.describe();
  EXPECT_EQ(stats.discards, wl.discards);
  EXPECT_EQ(test::compare_files(p.data, replica), "");
}

INSTANTIATE_TEST_SUITE_P(Backends, Replay, ::testing::Values(IoBackendKind::Uring, IoBackendKind::Aio),
                         [](const auto& info) { return std::string(info.param == IoBackendKind::Uring ? "io_uring" : "libaio"); });

// Overlapping writes in flight must land in log order: the same 4 KiB block
// written many times in a row, at queue depth, ends with the last version.
TEST(Replay, OverlappingWritesKeepLogOrder) {
  test::LogPair p(1 << 20, 8 << 20);
  std::mt19937_64 rng(22);
  std::string replica = p.dir.file("replica.img");
  test::copy_file(p.data, replica);
  {
    LogWriter w(p.log, p.data);
    for (int i = 0; i < 300; i++) w.write(8 * (rng() % 3), test::random_bytes(rng, 4096 * (1 + rng() % 2)));
    w.close();
  }
  auto io = make_io_backend(IoBackendKind::Auto, 32);
  replay_all(p.log, replica, *io);
  EXPECT_EQ(test::compare_files(p.data, replica), "");
}

// A stand-in for a device, and the one place these tests use one: a real
// disk may complete the requests in flight in any order, but it does not do
// so on demand. This backend holds every queued request until a wait() and
// then performs the whole batch in reverse order, the worst order allowed.
class ReversingBackend final : public IoBackend {
 public:
  explicit ReversingBackend(unsigned depth) : IoBackend(depth) {}
  std::string_view name() const override { return "reversing"; }
  void submit() override {}

 protected:
  void do_queue(const IoRequest& r) override { held_.push_back(r); }
  size_t do_wait(std::span<IoCompletion> out, size_t) override {
    size_t n = 0;
    while (!held_.empty() && n < out.size()) {
      IoRequest r = held_.back();
      held_.pop_back();
      ssize_t rc = r.op == IoOp::Write ? pwrite(r.fd, r.buf, r.len, static_cast<off_t>(r.offset))
                                       : pread(r.fd, r.buf, r.len, static_cast<off_t>(r.offset));
      out[n++] = {r.tag, rc < 0 ? -errno : rc};
    }
    return n;
  }

 private:
  std::vector<IoRequest> held_;
};

TEST(Replay, OverlapsKeepLogOrderWhenTheDeviceReorders) {
  test::LogPair p(1 << 20, 8 << 20);
  std::mt19937_64 rng(23);
  std::string replica = p.dir.file("replica.img");
  test::copy_file(p.data, replica);
  {
    LogWriter w(p.log, p.data);
    for (int i = 0; i < 300; i++) w.write(8 * (rng() % 64), test::random_bytes(rng, 4096 * (1 + rng() % 4)));
    w.close();
  }
  ReversingBackend io(16);
  replay_all(p.log, replica, io);
  EXPECT_EQ(test::compare_files(p.data, replica), "");
}

}  // namespace
}  // namespace hrl
