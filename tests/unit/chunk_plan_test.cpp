// The chunks a resync pass compares: every chunk of the device, or those a
// dirty bitmap marks, whatever the bitmap's block size.
#include <gtest/gtest.h>

#include "repl/resync_session.h"

namespace hrl {
namespace {

std::vector<uint64_t> chunks_of(const ChunkPlan& p, uint64_t from = 0) {
  std::vector<uint64_t> out;
  for (auto c = p.next(from); c; c = p.next(*c + 1)) out.push_back(*c);
  return out;
}

TEST(ChunkPlan, TheWholeDeviceWithAShortLastChunk) {
  auto p = ChunkPlan::device((5ull << 20) + 4096);
  EXPECT_EQ(chunks_of(p), (std::vector<uint64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(p.bytes_from(0), (5ull << 20) + 4096);
  EXPECT_EQ(p.count_from(4), 2u);
  EXPECT_EQ(p.bytes_from(5), 4096u);
}

TEST(ChunkPlan, OnlyTheChunksABitmapMarks) {
  const uint64_t bytes = 64ull << 20;
  DirtyBitmap fine(bytes / 512, 4096);   // a bit per 4 KiB
  fine.set_sectors((3ull << 20) / 512 + 8, 1);       // inside chunk 3
  fine.set_sectors((10ull << 20) / 512 - 8, 16);     // across chunks 9 and 10
  EXPECT_EQ(chunks_of(ChunkPlan::bitmap(bytes, fine)), (std::vector<uint64_t>{3, 9, 10}));
  DirtyBitmap coarse(bytes / 512, 4u << 20);  // a bit per 4 MiB covers four chunks
  coarse.set_sectors((20ull << 20) / 512, 1);
  auto p = ChunkPlan::bitmap(bytes, coarse);
  EXPECT_EQ(chunks_of(p), (std::vector<uint64_t>{20, 21, 22, 23}));
  EXPECT_EQ(chunks_of(p, 22), (std::vector<uint64_t>{22, 23})) << "a pass resumed at its cursor";
  EXPECT_EQ(p.bytes_from(0), 4ull << 20);
  EXPECT_FALSE(ChunkPlan::bitmap(bytes, DirtyBitmap(bytes / 512, 4096)).next(0)) << "nothing marked, nothing to do";
}

}  // namespace
}  // namespace hrl
