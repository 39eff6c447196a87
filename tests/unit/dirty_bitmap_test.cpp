#include <gtest/gtest.h>

#include <cstring>

#include "log/dirty_bitmap.h"

namespace hrl {
namespace {

TEST(DirtyBitmap, SetsEveryBlockARangeTouches) {
  DirtyBitmap bm(100 * 8 + 3, 4096);  // 100 blocks and a partial one
  EXPECT_EQ(bm.bits(), 101u);
  bm.set_sectors(7, 2);  // sectors 7..8 straddle blocks 0 and 1
  EXPECT_TRUE(bm.test(0));
  EXPECT_TRUE(bm.test(1));
  EXPECT_FALSE(bm.test(2));
  EXPECT_EQ(bm.count(), 2u);
  EXPECT_TRUE(bm.covers_sectors(0, 16));
  EXPECT_FALSE(bm.covers_sectors(0, 17));
  bm.set_sectors(800, 3);  // the partial last block
  EXPECT_TRUE(bm.test(100));
  EXPECT_THROW(bm.set_sectors(800, 9), std::out_of_range);  // sector 808 has no bit
}

TEST(DirtyBitmap, OnDiskBitOrderIsTheKernelsLittleEndianLayout) {
  DirtyBitmap bm(64 * 8, 4096);
  bm.set(9);
  bm.set(63);
  EXPECT_EQ(bm.bytes()[1], std::byte{0x02});
  EXPECT_EQ(bm.bytes()[7], std::byte{0x80});
}

TEST(DirtyBitmap, SetAllLeavesThePaddingClear) {
  DirtyBitmap bm(11 * 8, 4096);
  bm.set_all();
  EXPECT_EQ(bm.count(), 11u);
  EXPECT_EQ(bm.bytes()[1], std::byte{0x07});
  DirtyBitmap other(11 * 8, 4096);
  other.set(3);
  bm.clear();
  bm.merge(other);
  EXPECT_EQ(bm.count(), 1u);
  EXPECT_TRUE(bm.test(3));
}

}  // namespace
}  // namespace hrl
