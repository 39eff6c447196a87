#include <gtest/gtest.h>

#include <cstring>
#include <stdexcept>
#include <utility>

#include "io/file.h"
#include "log/format_log.h"
#include "log/superblock.h"
#include "test_support.h"

namespace hrl {
namespace {

Superblock sample() {
  Superblock sb = make_layout(2048 * 1024, 64 << 20, 0, 4096, 1 << 20);
  sb.flags = HRL_SB_BITMAP_MODE | HRL_SB_RESYNC_PENDING;
  sb.generation = 7;
  sb.tail_seq = 100;
  sb.tail_offset = 4096;
  sb.head_seq = 250;
  sb.head_offset = 8192;
  sb.resync_reason = HRL_REASON_RING_OVERFLOW;
  sb.resync_take_seq = 200;
  sb.dirty_bits = 12;
  return sb;
}

TEST(Superblock, EncodeDecodeRoundTrip) {
  Superblock sb = sample();
  std::vector<std::byte> slot(HRL_LOG_BLOCK);
  encode_superblock(sb, slot);
  std::string why;
  auto got = decode_superblock(slot, &why);
  ASSERT_TRUE(got) << why;
  EXPECT_EQ(got->uuid, sb.uuid);
  EXPECT_EQ(got->flags, sb.flags);
  EXPECT_EQ(got->generation, 7u);
  EXPECT_EQ(got->tail_seq, 100u);
  EXPECT_EQ(got->head_offset, 8192u);
  EXPECT_EQ(got->ring_bytes, sb.ring_bytes);
  EXPECT_EQ(got->resync_take_seq, 200u);
  EXPECT_EQ(got->dirty_bits, 12u);
  // The bytes on disk are little-endian at the documented offsets.
  EXPECT_EQ(std::memcmp(slot.data(), "HRL-LOG1", 8), 0);
  EXPECT_EQ(static_cast<uint8_t>(slot[104]), 100);  // tail_seq
}

TEST(Superblock, DetectsDamage) {
  Superblock sb = sample();
  std::vector<std::byte> slot(HRL_LOG_BLOCK);
  encode_superblock(sb, slot);
  std::string why;
  auto bad = slot;
  bad[130] ^= std::byte{1};
  EXPECT_FALSE(decode_superblock(bad, &why));
  EXPECT_EQ(why, "superblock checksum mismatch");
  bad = slot;
  bad[0] = std::byte{0};
  EXPECT_FALSE(decode_superblock(bad, &why));
  EXPECT_NE(why.find("bad magic"), std::string::npos);
}

TEST(Superblock, RejectsImpossibleGeometryEvenWithAGoodChecksum) {
  std::vector<std::byte> slot(HRL_LOG_BLOCK);
  std::string why;
  auto expect_rejected = [&](Superblock sb, const char* what) {
    encode_superblock(sb, slot);
    EXPECT_FALSE(decode_superblock(slot, &why)) << what;
    EXPECT_NE(why.find(what), std::string::npos) << why;
  };
  Superblock sb = sample();
  sb.ring_bytes += 512;
  expect_rejected(sb, "bad ring size");
  sb = sample();
  sb.tail_seq = sb.head_seq + 1;
  expect_rejected(sb, "tail beyond head");
  sb = sample();
  sb.head_offset = sb.ring_bytes;
  expect_rejected(sb, "bad head offset");
  sb = sample();
  sb.bitmap_bytes = 4096;
  expect_rejected(sb, "bad bitmap size");
  sb = sample();
  sb.flags |= 1u << 20;
  expect_rejected(sb, "unknown flags");
  sb = sample();
  sb.version = 2;
  expect_rejected(sb, "unsupported log format version 2");
  // the activity log: its count, extent size and place
  const std::pair<void (*)(Superblock&), const char*> al_cases[] = {
      {[](Superblock& s) { s.al_extents = HRL_AL_MAX_EXTENTS + 1; }, "bad activity log extent count"},
      {[](Superblock& s) { s.al_extent_shift = 12; }, "bad activity log extent size"},
      {[](Superblock& s) { s.al_offset = s.ring_offset; }, "bad ring offset"},
      {[](Superblock& s) { s.al_offset = 0; }, "activity log fields without an activity log"},
  };
  for (auto [change, what] : al_cases) {
    sb = sample();
    change(sb);
    expect_rejected(sb, what);
  }
}

TEST(Superblock, ActivityLogExtentNumbersFitIn32Bits) {
  try {  // 512 TiB in 64 KiB extents
    make_layout(1ull << 40, 1ull << 40, 1 << 20, 1 << 20, 1 << 16, 16, 16);
    ADD_FAILURE() << "a layout whose extent numbers overflow was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("too small for the data device"), std::string::npos) << e.what();
  }
}

TEST(Superblock, FormatRoundTrip) {
  test::TempDir dir;
  auto log_path = test::make_file(dir.file("log"), 32 << 20);
  File log = File::open(log_path, O_RDWR);
  FormatOptions opt;
  opt.ring_bytes = 8 << 20;
  Superblock made = format_log(log, 1 << 20, opt);
  Superblock sb = read_superblock(log);
  EXPECT_EQ(sb.uuid, made.uuid);
  EXPECT_EQ(sb.data_sectors, 1u << 20);
  EXPECT_EQ(sb.ring_bytes, 8u << 20);
  EXPECT_EQ(sb.flags, HRL_SB_CLEAN | HRL_SB_RESYNC_REQUIRED);
  EXPECT_EQ(sb.resync_reason, HRL_REASON_NEW_VOLUME);
  EXPECT_EQ(sb.tail_seq, 1u);
  EXPECT_EQ(sb.head_seq, 1u);
  EXPECT_EQ(sb.bitmap_bytes, 16384u);  // 131072 blocks of 4 KiB -> 16 KiB of bits
  EXPECT_EQ(sb.ring_offset % HRL_RING_ALIGN, 0u);
}

TEST(Superblock, TornSlotFallsBackToThePreviousState) {
  test::TempDir dir;
  auto log_path = test::make_file(dir.file("log"), 16 << 20);
  File log = File::open(log_path, O_RDWR);
  Superblock sb = format_log(log, 8192, {});
  sb.tail_seq = sb.head_seq = 42;
  write_superblock(log, sb);  // the newest slot
  EXPECT_EQ(read_superblock(log).tail_seq, 42u);
  // Tear the newest slot: the reader must fall back to the older, valid one.
  std::byte junk[512] = {};
  log.write_at(junk, (sb.update_seq % 2) * HRL_LOG_BLOCK + 1024 - 512);
  log.write_at(std::span(junk, 64), (sb.update_seq % 2) * HRL_LOG_BLOCK + 96);
  Superblock got = read_superblock(log);
  EXPECT_EQ(got.update_seq, sb.update_seq - 1);
  EXPECT_EQ(got.tail_seq, 1u);
}

TEST(Superblock, NoValidSlotIsAClearError) {
  test::TempDir dir;
  auto log_path = test::make_file(dir.file("log"), 1 << 20);
  File log = File::open(log_path, O_RDWR);
  try {
    read_superblock(log);
    FAIL() << "read a superblock from zeros";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not an hrl log"), std::string::npos) << e.what();
  }
}

TEST(Superblock, LayoutRefusesALogTooSmall) {
  EXPECT_THROW(make_layout(1ull << 31, 256 << 10, 0, 4096, 1 << 20), std::invalid_argument);
  // The payload limit shrinks to fit a small ring.
  Superblock sb = make_layout(8192, 1 << 20, 64 << 10, 4096, 1 << 20);
  EXPECT_LE(hrl_record_span(sb.max_payload), sb.ring_bytes / 2);
}

}  // namespace
}  // namespace hrl
