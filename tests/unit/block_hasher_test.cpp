#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <set>

#include "io/file.h"
#include "resync/block_hasher.h"
#include "test_support.h"

namespace hrl {
namespace {

constexpr uint64_t kSize = 64 << 20;
constexpr uint32_t kBlock = 4096;

class BlockHasherTest : public ::testing::TestWithParam<IoBackendKind> {
 protected:
  test::TempDir dir;
  std::string a = dir.file("a.img"), b = dir.file("b.img");

  // a: random data with 30% of it in zero regions; b: a with `fraction` of its
  // blocks changed. Returns the changed blocks.
  std::set<uint64_t> make_pair(double fraction, uint64_t seed) {
    std::mt19937_64 rng(seed);
    auto img = random_bytes(rng, kSize);
    for (uint64_t off = 0; off < kSize; off += 1 << 20)  // 30% zero: the first 300 KiB of every MiB
      std::memset(img.data() + off, 0, 300 << 10);
    File fa = File::open(a, O_RDWR | O_CREAT | O_TRUNC);
    fa.write_at(img, 0);
    std::set<uint64_t> changed;
    std::uniform_real_distribution<double> coin(0, 1);
    for (uint64_t blk = 0; blk < kSize / kBlock; blk++) {
      if (coin(rng) >= fraction) continue;
      img[blk * kBlock + rng() % kBlock] ^= std::byte{static_cast<uint8_t>(1 + rng() % 255)};  // surely different
      changed.insert(blk);
    }
    File fb = File::open(b, O_RDWR | O_CREAT | O_TRUNC);
    fb.write_at(img, 0);
    return changed;
  }

  static std::vector<ByteRange> as_ranges(const std::set<uint64_t>& blocks) {
    std::vector<ByteRange> out;
    for (uint64_t blk : blocks) {
      if (!out.empty() && out.back().offset + out.back().length == blk * kBlock)
        out.back().length += kBlock;
      else
        out.push_back({blk * kBlock, kBlock});
    }
    return out;
  }
};

TEST_P(BlockHasherTest, FindsExactlyTheBlocksThatDiffer) {
  auto io = make_io_backend(GetParam(), 16);
  for (double fraction : {0.0, 0.001, 0.01, 0.30}) {
    auto changed = make_pair(fraction, static_cast<uint64_t>(fraction * 1000) + 1);
    File fa = File::open_direct(a, O_RDONLY), fb = File::open_direct(b, O_RDONLY);
    uint64_t read = 0;
    auto ranges = differing_ranges(fa, fb, *io, {}, &read);
    EXPECT_EQ(ranges, as_ranges(changed)) << "fraction " << fraction << ": " << changed.size() << " blocks changed";
    if (fraction == 0.0) {
      EXPECT_EQ(read, 2 * kSize) << "identical devices need only the coarse pass";
    }
  }
}

TEST_P(BlockHasherTest, TellsZeroBlocks) {
  make_pair(0, 7);
  auto io = make_io_backend(GetParam(), 8);
  File fa = File::open_direct(a, O_RDONLY);
  BlockHasher h(fa, *io);
  auto blocks = h.hash_blocks(0, 1 << 20);
  ASSERT_EQ(blocks.size(), 256u);
  for (size_t i = 0; i < blocks.size(); i++)
    EXPECT_EQ(blocks[i].zero, i < (300 << 10) / kBlock) << "block " << i;
  EXPECT_EQ(blocks[0].hash, blocks[1].hash);   // zero blocks hash alike
  EXPECT_NE(blocks[100].hash, blocks[101].hash);
}

INSTANTIATE_TEST_SUITE_P(Backends, BlockHasherTest, ::testing::Values(IoBackendKind::Uring, IoBackendKind::Aio),
                         [](const auto& info) { return std::string(info.param == IoBackendKind::Uring ? "io_uring" : "libaio"); });

}  // namespace
}  // namespace hrl
