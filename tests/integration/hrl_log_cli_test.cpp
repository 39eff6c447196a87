// The hrl-log tool, run as a user runs it.
#include <gtest/gtest.h>

#include <cstring>
#include <sys/wait.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "io/file.h"
#include "log/log_reader.h"
#include "log/log_writer.h"
#include "test_support.h"

namespace hrl {
namespace {

struct CliRun {
  int status;
  std::string out;
};

CliRun run(const std::string& args) {
  std::string cmd = std::string(HRL_LOG_BIN) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  CliRun r{-1, {}};
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

class HrlLogCli : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::string data = test::make_file(dir.file("data.img"), 16 << 20);
  std::string log = test::make_file(dir.file("log.img"), 32 << 20);
  std::mt19937_64 rng{31};

  void format() {
    CliRun r = run("format " + log + " --data " + data + " --ring-size 8M");
    ASSERT_EQ(r.status, 0) << r.out;
  }
};

TEST_F(HrlLogCli, FormatDumpVerify) {
  format();
  {
    LogWriter w(log, data);
    w.write(8, test::random_bytes(rng, 4096), HRL_REC_FUA);
    w.discard(64, 16);
    w.mark("before-upgrade");
    w.close();
  }
  CliRun dump = run("dump " + log);
  EXPECT_EQ(dump.status, 0) << dump.out;
  EXPECT_NE(dump.out.find("WRITE    FUA"), std::string::npos) << dump.out;
  EXPECT_NE(dump.out.find("\"before-upgrade\""), std::string::npos) << dump.out;
  EXPECT_NE(dump.out.find("end of valid data at seq 4"), std::string::npos) << dump.out;

  CliRun js = run("dump --json " + log);
  ASSERT_EQ(js.status, 0) << js.out;
  auto j = nlohmann::json::parse(js.out);
  ASSERT_EQ(j["records"].size(), 3u);
  EXPECT_EQ(j["records"][0]["sector"], 8);
  EXPECT_EQ(j["records"][1]["type"], "DISCARD");
  EXPECT_EQ(j["records"][2]["name"], "before-upgrade");
  EXPECT_EQ(j["superblock"]["data_sectors"], 32768);
  EXPECT_EQ(j["end"]["status"], "end");

  CliRun v = run("verify " + log);
  EXPECT_EQ(v.status, 0) << v.out;
  EXPECT_NE(v.out.find("3 valid records"), std::string::npos) << v.out;
}

TEST_F(HrlLogCli, VerifyReportsCorruptionWithItsPosition) {
  format();
  {
    LogWriter w(log, data);
    for (int i = 0; i < 5; i++) w.write(8 * i, test::random_bytes(rng, 4096));
    w.close();
  }
  Superblock sb = LogReader(log).superblock();
  File f = File::open(log, O_RDWR);
  std::byte junk[8] = {std::byte{1}};
  f.write_at(junk, sb.ring_offset + 2 * (512 + 4096) + 512 + 7);  // payload of seq 3
  CliRun v = run("verify " + log);
  EXPECT_EQ(v.status, 1);
  EXPECT_NE(v.out.find("corrupt record at seq 3, ring offset 9216"), std::string::npos) << v.out;
  CliRun js = run("verify --json " + log);
  EXPECT_EQ(js.status, 1);
  auto j = nlohmann::json::parse(js.out);
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["end"]["seq"], 3);
  EXPECT_EQ(j["records"], 2);
}

TEST_F(HrlLogCli, ReplayToAMarkGivesTheImageAtThatMark) {
  format();
  std::string base = dir.file("base.img"), at_mark = dir.file("at-mark.img");
  uint64_t mark_seq = 0;
  test::copy_file(data, base);
  {
    LogWriter w(log, data);
    test::WorkloadOptions opt;
    opt.mark_ratio = 0;
    opt.max_write = 64 << 10;
    opt.ops = 200;
    test::run_workload(w, rng, opt);
    mark_seq = w.mark("checkpoint");
    w.flush();
    test::copy_file(data, at_mark);  // the primary as it was at the mark
    test::run_workload(w, rng, opt);
    w.close();
  }
  std::string replica = dir.file("replica.img");
  test::copy_file(base, replica);
  CliRun r = run("replay " + log + " " + replica + " --to-mark checkpoint");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(test::compare_files(replica, at_mark), "");
  // and the rest of the log brings it to the final image
  r = run("replay " + log + " " + replica + " --from-seq " + std::to_string(mark_seq + 1));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(test::compare_files(replica, data), "");
}

TEST_F(HrlLogCli, ReplayRefusesWhatTheLogCannotGiveAndChangesNothing) {
  format();
  {
    LogWriter w(log, data);
    for (int i = 0; i < 5; i++) w.write(8 * i, test::random_bytes(rng, 4096));
    w.close();
  }
  std::string replica = test::make_file(dir.file("replica.img"), 16 << 20);
  CliRun r = run("replay " + log + " " + replica + " --to-seq 9");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("the log ends at seq 5, before the requested seq 9; nothing was applied"), std::string::npos)
      << r.out;
  r = run("replay " + log + " " + replica + " --to-mark nowhere");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("no mark named 'nowhere'"), std::string::npos) << r.out;
  EXPECT_EQ(test::file_checksum(replica), test::file_checksum(test::make_file(dir.file("zeros.img"), 16 << 20)));
  std::string tiny = test::make_file(dir.file("tiny.img"), 1 << 20);
  r = run("replay " + log + " " + tiny);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("smaller than the volume"), std::string::npos) << r.out;
}

TEST_F(HrlLogCli, FormatProtectsAnExistingLog) {
  format();
  CliRun r = run("format " + log + " --data " + data);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("already holds the log of volume"), std::string::npos) << r.out;
  r = run("format " + log + " --data " + data + " --force");
  EXPECT_EQ(r.status, 0) << r.out;
  std::string tiny = test::make_file(dir.file("tiny-log.img"), 64 << 10);
  r = run("format " + tiny + " --data " + data);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("log device too small"), std::string::npos) << r.out;
}

TEST_F(HrlLogCli, BadInputGetsAClearError) {
  CliRun r = run("dump " + data);  // not a log
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("not an hrl log"), std::string::npos) << r.out;
  r = run("dump " + dir.file("missing"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("No such file"), std::string::npos) << r.out;
  r = run("frobnicate");
  EXPECT_EQ(r.status, 2) << r.out;
  r = run("--backend nope dump " + log);
  EXPECT_EQ(r.status, 2) << r.out;
}

}  // namespace
}  // namespace hrl

namespace hrl {
namespace {

TEST(HrlLogCliFormat, AssumeInSyncSkipsTheInitialResync) {
  test::TempDir dir;
  std::string data = test::make_file(dir.file("data.img"), 16 << 20);
  std::string log = test::make_file(dir.file("log.img"), 32 << 20);
  std::string cmd = std::string(HRL_LOG_BIN) + " format " + log + " --data " + data + " --assume-in-sync >/dev/null";
  ASSERT_EQ(system(cmd.c_str()), 0);
  Superblock sb = read_superblock(File::open(log, O_RDONLY));
  EXPECT_EQ(sb.flags, HRL_SB_CLEAN);
  EXPECT_EQ(sb.resync_reason, HRL_REASON_NONE);
  LogWriter w(log, data);
  EXPECT_EQ(w.status().mode, TrackingMode::Journal);
}

}  // namespace
}  // namespace hrl
