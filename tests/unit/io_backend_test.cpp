#include <gtest/gtest.h>

#include <cstring>
#include <seccomp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <random>

#include "io/file.h"
#include "io/io_backend.h"
#include "test_support.h"

namespace hrl {
namespace {

class IoBackendTest : public ::testing::TestWithParam<IoBackendKind> {};

// Many writes then many reads at queue depth through the real backend, O_DIRECT.
TEST_P(IoBackendTest, WritesAndReadsAtQueueDepth) {
  test::TempDir dir;
  auto path = test::make_file(dir.file("f"), 8 << 20);
  File f = File::open_direct(path, O_RDWR);
  auto io = make_io_backend(GetParam(), 8);
  EXPECT_EQ(io->name(), to_string(GetParam()));
  std::mt19937_64 rng(1);
  auto pattern = test::random_bytes(rng, 8 << 20);
  AlignedBuffer src(8 << 20), dst(8 << 20);
  std::memcpy(src.data(), pattern.data(), pattern.size());
  constexpr uint32_t kChunk = 256 << 10;
  IoCompletion done[8];
  for (int op = 0; op < 2; op++) {
    AlignedBuffer& buf = op == 0 ? src : dst;
    uint64_t next = 0, completed = 0;
    while (completed < 32) {
      while (next < 32 && io->in_flight() < io->queue_depth()) {
        io->queue({op == 0 ? IoOp::Write : IoOp::Read, f.fd(), buf.data() + next * kChunk, kChunk, next * kChunk, next});
        next++;
      }
      io->submit();
      size_t n = io->wait(done, 1);
      for (size_t i = 0; i < n; i++) ASSERT_EQ(done[i].result, kChunk) << "tag " << done[i].tag;
      completed += n;
    }
  }
  EXPECT_EQ(std::memcmp(src.data(), dst.data(), 8 << 20), 0);
}

TEST_P(IoBackendTest, ReportsErrorsAsNegativeErrno) {
  auto io = make_io_backend(GetParam(), 4);
  AlignedBuffer buf(4096);
  io->queue({IoOp::Read, 12345, buf.data(), 4096, 0, 7});  // not an open fd
  IoCompletion c[1];
  ASSERT_EQ(io->wait(c, 1), 1u);
  EXPECT_EQ(c[0].tag, 7u);
  EXPECT_EQ(c[0].result, -EBADF);
}

INSTANTIATE_TEST_SUITE_P(Backends, IoBackendTest, ::testing::Values(IoBackendKind::Uring, IoBackendKind::Aio),
                         [](const auto& info) { return std::string(info.param == IoBackendKind::Uring ? "io_uring" : "libaio"); });

TEST(IoBackendSelection, EnvironmentForcesABackend) {
  setenv(kIoBackendEnv, "libaio", 1);
  EXPECT_EQ(make_io_backend(IoBackendKind::Auto, 4)->name(), "libaio");
  // An explicit choice beats the environment.
  EXPECT_EQ(make_io_backend(IoBackendKind::Uring, 4)->name(), "io_uring");
  setenv(kIoBackendEnv, "nonsense", 1);
  EXPECT_THROW(make_io_backend(IoBackendKind::Auto, 4), std::invalid_argument);
  unsetenv(kIoBackendEnv);
  EXPECT_EQ(make_io_backend(IoBackendKind::Auto, 4)->name(), "io_uring");
}

// Runs fn in a child whose io_uring_setup fails with ENOSYS (as under a
// container's seccomp profile); returns the child's exit status.
int in_child_without_io_uring(int (*fn)()) {
  pid_t pid = fork();
  if (pid == 0) {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx || seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(io_uring_setup), 0) < 0 ||
        seccomp_load(ctx) < 0)
      _exit(90);
    _exit(fn());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

TEST(IoBackendSelection, AutoFallsBackToLibaioWhenIoUringIsBlocked) {
  int rc = in_child_without_io_uring([] {
    unsetenv(kIoBackendEnv);
    auto io = make_io_backend(IoBackendKind::Auto, 4);
    if (io->name() != "libaio") return 1;
    // and the fallback really performs I/O
    AlignedBuffer buf(4096);
    File f = File::open("/proc/self/exe", O_RDONLY);
    io->queue({IoOp::Read, f.fd(), buf.data(), 4096, 0, 1});
    IoCompletion c[1];
    if (io->wait(c, 1) != 1 || c[0].result != 4096) return 2;
    return std::memcmp(buf.data(), "\x7f" "ELF", 4) == 0 ? 0 : 3;
  });
  EXPECT_EQ(rc, 0);
}

TEST(IoBackendSelection, ForcedIoUringThatCannotStartIsAnError) {
  int rc = in_child_without_io_uring([] {
    try {
      make_io_backend(IoBackendKind::Uring, 4);
    } catch (const std::system_error& e) {
      return std::string(e.what()).find("io_uring_queue_init") != std::string::npos && e.code().value() == ENOSYS ? 0 : 1;
    }
    return 2;
  });
  EXPECT_EQ(rc, 0);
}

}  // namespace
}  // namespace hrl
