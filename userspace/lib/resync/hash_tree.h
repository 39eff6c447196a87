// The hash tree of one chunk of a device, the unit a checksum resync compares
// (design.md, "Resync by checksum"). A chunk of 1 MiB is 256 blocks of 4 KiB;
// each block's leaf is its XXH3-128, each inner node the XXH3-128 of its four
// children's hashes, so the root stands for the whole chunk. Two sites
// compare roots first (the coarse pass) and walk down only where they differ:
// finding one changed block costs four hashes per level instead of the 256
// leaves of its chunk. (Inner nodes hash the children in memory order:
// sites of different endianness see every chunk differ, which is slow, not wrong.)
#pragma once

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <span>

#include "io/zero_bytes.h"

namespace hrl {

inline constexpr uint32_t kChunkBytes = 1u << 20;
inline constexpr uint32_t kBlockBytes = 4096;
inline constexpr unsigned kFanout = 4;
inline constexpr unsigned kLeafLevel = 4;  // levels 0 (root) to 4 (blocks)
inline constexpr unsigned kLeaves = kChunkBytes / kBlockBytes;
static_assert(kLeaves == 256, "4^kLeafLevel leaves");

struct Hash128 {
  uint64_t lo = 0, hi = 0;
  bool operator==(const Hash128&) const = default;
};

Hash128 xxh3_128(std::span<const std::byte> bytes);

// Nodes at a level, and where that level starts in ChunkTree::nodes.
constexpr unsigned level_width(unsigned level) { return 1u << (2 * level); }
constexpr unsigned level_start(unsigned level) { return (level_width(level) - 1) / 3; }
inline constexpr unsigned kTreeNodes = level_start(kLeafLevel + 1);

struct ChunkTree {
  uint64_t chunk = 0;   // index: the chunk covers [chunk * kChunkBytes, + bytes)
  uint32_t bytes = 0;   // kChunkBytes except for a device's last chunk
  std::array<Hash128, kTreeNodes> nodes{};
  std::bitset<kLeaves> zero;  // blocks whose bytes are all zero

  const Hash128& node(unsigned level, unsigned i) const { return nodes[level_start(level) + i]; }
  const Hash128& root() const { return nodes[0]; }
  unsigned blocks() const { return (bytes + kBlockBytes - 1) / kBlockBytes; }
};

// Builds the tree of a chunk from its bytes (a whole number of sectors, at
// most kChunkBytes). Leaves past the end of a short chunk are all-zero hashes
// on both sites, so they never differ.
void build_tree(uint64_t chunk, std::span<const std::byte> data, ChunkTree& out);

}  // namespace hrl
