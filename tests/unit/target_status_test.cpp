// dm-hrl's status line as hrld reads it: the lines docs/dm-hrl.md shows, a
// target from before the completed and durable fields, and lines it refuses.
#include "dm/target_status.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "log/superblock.h"

namespace hrl {
namespace {

TEST(TargetStatus, ReadsEveryFieldOfTheDocumentedLines) {
  TargetStatus j = parse_target_status("journal 1234 1200 524288 67108864 0 0 0 none - 1233 1230");
  EXPECT_EQ(j.mode, TrackingMode::Journal);
  EXPECT_EQ(j.head, 1234u);
  EXPECT_EQ(j.tail, 1200u);
  EXPECT_EQ(j.ring_used, 524288u);
  EXPECT_EQ(j.ring_bytes, 67108864u);
  EXPECT_EQ(j.reason, uint32_t{HRL_REASON_NONE});
  EXPECT_EQ(j.flags, 0u);
  EXPECT_EQ(j.completed, 1233u);
  EXPECT_EQ(j.durable, 1230u);
  EXPECT_FALSE(j.needs_take());
  EXPECT_FALSE(j.urgent());

  TargetStatus b = parse_target_status("bitmap 228 1 1046016 1048576 373 0 0 ring-overflow bitmap-mode 228 228");
  EXPECT_EQ(b.mode, TrackingMode::Bitmap);
  EXPECT_EQ(b.dirty, 373u);
  EXPECT_EQ(b.reason, uint32_t{HRL_REASON_RING_OVERFLOW});
  EXPECT_TRUE(b.has(kFlagBitmapMode));
  EXPECT_FALSE(b.resync_pending());
  EXPECT_TRUE(b.needs_take());
  EXPECT_FALSE(b.urgent()) << "an overflow waits for the resync window";

  TargetStatus r = parse_target_status(
      "resync-required 3 1 9216 16711680 0 4096 3 log-io-error bitmap-mode,resync-pending,resync-required 3 2");
  EXPECT_EQ(r.mode, TrackingMode::ResyncRequired);
  EXPECT_EQ(r.resync_blocks, 4096u);
  EXPECT_EQ(r.take_seq, 3u);
  EXPECT_EQ(r.flags, uint32_t{kFlagBitmapMode | kFlagResyncPending | kFlagResyncRequired});
  EXPECT_TRUE(r.resync_required());
  EXPECT_TRUE(r.urgent());
}

TEST(TargetStatus, AnOlderTargetHasEverythingBelowItsHeadCompletedAndDurable) {
  TargetStatus t = parse_target_status("journal 50 40 4096 1048576 0 0 0 unclean-shutdown resync-pending");
  EXPECT_EQ(t.completed, 50u);
  EXPECT_EQ(t.durable, 50u);
  EXPECT_TRUE(t.urgent());
  EXPECT_TRUE(t.needs_take());
}

TEST(TargetStatus, ALineItCannotReadIsAnErrorThatSaysWhy) {
  auto error_of = [](const char* line) -> std::string {
    try {
      parse_target_status(line);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error_of("").find("ten fields"), std::string::npos);
  EXPECT_NE(error_of("journal 1 1 0 1048576 0 0 0 none").find("ten fields"), std::string::npos);
  EXPECT_NE(error_of("journal x 1 0 1048576 0 0 0 none -").find("ten fields"), std::string::npos);
  EXPECT_NE(error_of("mirrored 1 1 0 1048576 0 0 0 none -").find("unknown mode \"mirrored\""), std::string::npos);
  EXPECT_NE(error_of("journal 1 1 0 1048576 0 0 0 sunspots -").find("unknown reason \"sunspots\""), std::string::npos);
  EXPECT_NE(error_of("journal 1 1 0 1048576 0 0 0 none - 1").find("no durable_seq"), std::string::npos);
}

}  // namespace
}  // namespace hrl
