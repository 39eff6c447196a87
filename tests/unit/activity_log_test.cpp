// The activity log's on-disk blocks (log_format.h): what format and LogWriter
// leave, the codec, and the geometry a superblock may claim.
#include <gtest/gtest.h>

#include <fcntl.h>

#include "io/file.h"
#include "log/activity_log.h"
#include "log/format_log.h"
#include "log/log_writer.h"
#include "log/superblock.h"
#include "test_support.h"

namespace hrl {
namespace {

TEST(ActivityLog, FormatLaysItOutAndListsEveryExtent) {
  test::TempDir dir;
  File log = File::open(test::make_file(dir.file("log"), 32 << 20), O_RDWR);
  FormatOptions opt;
  opt.al_extents = 64;
  opt.al_extent_shift = 20;
  Superblock sb = format_log(log, 1 << 20, opt);
  Superblock back = read_superblock(log);
  EXPECT_EQ(back.al_offset, back.resync_offset + back.bitmap_bytes);
  EXPECT_EQ(back.al_extents, 64u);
  EXPECT_EQ(back.al_extent_shift, 20u);
  EXPECT_GE(back.ring_offset, back.al_offset + HRL_AL_SLOTS * HRL_LOG_BLOCK);
  // a new log is clean, but a load must never trust a list nobody wrote
  EXPECT_TRUE(read_activity_log(log, sb).all);
}

TEST(ActivityLog, NoneWhenFormattedWithout) {
  test::TempDir dir;
  File log = File::open(test::make_file(dir.file("log"), 32 << 20), O_RDWR);
  FormatOptions opt;
  opt.al_extents = 0;
  format_log(log, 1 << 20, opt);
  Superblock sb = read_superblock(log);
  EXPECT_EQ(sb.al_offset, 0u);
  EXPECT_EQ(sb.al_extents, 0u);
}

TEST(ActivityLog, TheNewestValidBlockWins) {
  test::TempDir dir;
  File log = File::open(test::make_file(dir.file("log"), 32 << 20), O_RDWR);
  Superblock sb = format_log(log, 1 << 20, FormatOptions{});
  AlignedBuffer block(HRL_LOG_BLOCK);
  ActivityLog listed;
  listed.seq = 9;
  listed.all = false;
  listed.extents = {3, 17, 250};
  encode_activity_log(listed, sb.csum_seed(), block.span());
  log.write_at(block.span(), sb.al_offset + (9 % HRL_AL_SLOTS) * HRL_LOG_BLOCK);
  ActivityLog got = read_activity_log(log, sb);
  EXPECT_FALSE(got.all);
  EXPECT_EQ(got.seq, 9u);
  EXPECT_EQ(got.extents, listed.extents);
  // a torn newer block leaves the older one
  ActivityLog newer = listed;
  newer.seq = 10;
  newer.extents = {4};
  encode_activity_log(newer, sb.csum_seed(), block.span());
  block.span()[100] ^= std::byte{1};
  log.write_at(block.span(), sb.al_offset + (10 % HRL_AL_SLOTS) * HRL_LOG_BLOCK);
  EXPECT_EQ(read_activity_log(log, sb).extents, listed.extents);
  // another volume's block (another checksum seed) is not valid here
  std::string why;
  ActivityLog out;
  encode_activity_log(listed, sb.csum_seed() ^ 1, block.span());
  EXPECT_FALSE(decode_activity_log(block.span(), sb.csum_seed(), sb.al_extents, out, &why));
  EXPECT_NE(why.find("checksum"), std::string::npos) << why;
}

TEST(ActivityLog, ALogWriterLeavesEveryExtentListed) {
  test::TempDir dir;
  auto log_path = test::make_file(dir.file("log"), 32 << 20);
  auto data_path = test::make_file(dir.file("data"), 8 << 20);
  {
    File log = File::open(log_path, O_RDWR);
    FormatOptions opt;
    opt.assume_in_sync = true;
    Superblock sb = format_log(log, (8 << 20) / HRL_SECTOR_SIZE, opt);
    AlignedBuffer block(HRL_LOG_BLOCK);
    ActivityLog listed;
    listed.seq = 5;
    listed.all = false;
    listed.extents = {1};
    encode_activity_log(listed, sb.csum_seed(), block.span());
    log.write_at(block.span(), sb.al_offset + (5 % HRL_AL_SLOTS) * HRL_LOG_BLOCK);
  }
  LogWriter w(log_path, data_path);
  File log = File::open(log_path, O_RDONLY);
  EXPECT_TRUE(read_activity_log(log, read_superblock(log)).all);
  w.close();
}

}  // namespace
}  // namespace hrl
