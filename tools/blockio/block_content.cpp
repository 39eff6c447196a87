#include "block_content.h"

#include <cstring>

namespace hrl::blockio {

void stamp_blocks(std::span<std::byte> out, uint64_t seed, uint64_t id, uint64_t first) {
  for (size_t blk = 0; blk < out.size() / kBlock; blk++)
    for (uint64_t i = 0; i < kBlock / 32; i++) {
      const uint64_t words[4] = {kMagic, seed, id, ((first + blk) << 8) | i};
      std::memcpy(out.data() + blk * kBlock + i * 32, words, sizeof words);  // little-endian hosts only
    }
}

}  // namespace hrl::blockio
