#include "resync/hash_tree.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace hrl {

Hash128 xxh3_128(std::span<const std::byte> bytes) {
  XXH128_hash_t h = XXH3_128bits(bytes.data(), bytes.size());
  return {h.low64, h.high64};
}

void build_tree(uint64_t chunk, std::span<const std::byte> data, ChunkTree& out) {
  if (data.size() > kChunkBytes || data.size() % 512)
    throw std::invalid_argument("hash tree: a chunk is at most 1 MiB of whole sectors");
  out.chunk = chunk;
  out.bytes = static_cast<uint32_t>(data.size());
  out.zero.reset();
  Hash128* leaves = &out.nodes[level_start(kLeafLevel)];
  for (unsigned b = 0; b < kLeaves; b++) {
    size_t off = size_t{b} * kBlockBytes;
    if (off >= data.size()) {
      leaves[b] = Hash128{};
      continue;
    }
    auto block = data.subspan(off, std::min<size_t>(kBlockBytes, data.size() - off));
    leaves[b] = xxh3_128(block);
    out.zero[b] = all_zero(block);
  }
  for (unsigned level = kLeafLevel; level-- > 0;) {
    const Hash128* children = &out.nodes[level_start(level + 1)];
    Hash128* parents = &out.nodes[level_start(level)];
    for (unsigned i = 0; i < level_width(level); i++)
      parents[i] = xxh3_128(std::as_bytes(std::span(children + i * kFanout, kFanout)));
  }
}

}  // namespace hrl
