#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <set>
#include <unistd.h>

#include "io/file.h"
#include "resync/chunk_reader.h"
#include "resync/compare.h"
#include "resync/hash_tree.h"
#include "test_support.h"

namespace hrl {
namespace {

constexpr uint64_t kSize = 64 << 20;
constexpr uint32_t kBlock = 4096;

class HashTreeTest : public ::testing::TestWithParam<IoBackendKind> {
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

TEST_P(HashTreeTest, FindsExactlyTheBlocksThatDiffer) {
  for (double fraction : {0.0, 0.001, 0.01, 0.30}) {
    auto changed = make_pair(fraction, static_cast<uint64_t>(fraction * 1000) + 1);
    File fa = File::open_direct(a, O_RDONLY), fb = File::open_direct(b, O_RDONLY);
    uint64_t read = 0;
    auto ranges = differing_ranges(fa, fb, GetParam(), 0, &read);
    EXPECT_EQ(ranges, as_ranges(changed)) << "fraction " << fraction << ": " << changed.size() << " blocks changed";
    EXPECT_EQ(read, 2 * kSize) << "each device is read once";
  }
}

TEST_P(HashTreeTest, TellsZeroBlocksAndHashesEachLevelFromTheOneBelow) {
  make_pair(0, 7);
  File fa = File::open_direct(a, O_RDONLY);
  ChunkReader reader(fa, kSize, GetParam(), 8, true);
  std::vector<uint64_t> want{3, 0, 63};  // handed out in request order
  reader.request(want);
  for (uint64_t c : want) {
    HashedChunk hc = reader.take();
    ASSERT_EQ(hc.tree.chunk, c);
    ASSERT_EQ(hc.tree.blocks(), kLeaves);
    auto bytes = test::read_file(a);
    auto chunk = std::span<const std::byte>(bytes).subspan(c * kChunkBytes, kChunkBytes);
    EXPECT_TRUE(std::equal(chunk.begin(), chunk.end(), hc.data.data())) << "chunk " << c << " bytes handed out";
    for (unsigned i = 0; i < kLeaves; i++) {
      EXPECT_EQ(hc.tree.zero[i], i < (300 << 10) / kBlock) << "block " << i;
      EXPECT_EQ(hc.tree.node(kLeafLevel, i), xxh3_128(chunk.subspan(i * kBlock, kBlock)));
    }
    for (unsigned level = 0; level < kLeafLevel; level++)
      for (unsigned i = 0; i < level_width(level); i++)
        EXPECT_EQ(hc.tree.node(level, i),
                  xxh3_128(std::as_bytes(std::span(&hc.tree.node(level + 1, i * kFanout), kFanout))));
    EXPECT_EQ(hc.tree.node(kLeafLevel, 0), hc.tree.node(kLeafLevel, 1));  // zero blocks hash alike
    EXPECT_NE(hc.tree.node(kLeafLevel, 100), hc.tree.node(kLeafLevel, 101));
  }
}

TEST_P(HashTreeTest, AShortLastChunkComparesOnlyItsBytes) {
  make_pair(0, 9);
  const uint64_t size = kSize - kChunkBytes + 5 * 512;  // the last chunk is 5 sectors
  File fa = File::open(a, O_RDWR), fb = File::open(b, O_RDWR);
  ASSERT_EQ(ftruncate(fa.fd(), size), 0);
  ASSERT_EQ(ftruncate(fb.fd(), size), 0);
  std::byte x{0x5a};
  fb.write_at(std::span(&x, 1), size - 1);
  auto ranges = differing_ranges(fa, fb, GetParam());
  ASSERT_EQ(ranges.size(), 1u);
  EXPECT_EQ(ranges[0], (ByteRange{size - 5 * 512, 5 * 512}));
}

TEST_P(HashTreeTest, AReadErrorReachesTheConsumer) {
  make_pair(0, 11);
  File fa = File::open(a, O_RDONLY);
  ChunkReader reader(fa, kSize + kChunkBytes, GetParam(), 4, false);  // claims one chunk past the end
  std::vector<uint64_t> want{0, kSize / kChunkBytes};
  reader.request(want);
  EXPECT_EQ(reader.take().tree.chunk, 0u);
  EXPECT_THROW(reader.take(), std::runtime_error);
}

INSTANTIATE_TEST_SUITE_P(Backends, HashTreeTest, ::testing::Values(IoBackendKind::Uring, IoBackendKind::Aio),
                         [](const auto& info) { return std::string(info.param == IoBackendKind::Uring ? "io_uring" : "libaio"); });

}  // namespace
}  // namespace hrl
