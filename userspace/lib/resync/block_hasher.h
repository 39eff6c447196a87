// Hashing a device for a checksum resync (design.md, "Resync by checksum"):
// a coarse pass of XXH3-128 over large chunks, then 4 KiB blocks inside the
// chunks that differ. Reads go out at queue depth through an IoBackend.
#pragma once

#include <xxhash.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "io/file.h"
#include "io/io_backend.h"

namespace hrl {

struct Hash128 {
  uint64_t lo = 0, hi = 0;
  bool operator==(const Hash128&) const = default;
};

struct BlockHash {
  Hash128 hash;
  bool zero = false;  // every byte zero: travels as a marker, not as data
};

struct HashOptions {
  uint32_t chunk_bytes = 1u << 20;  // the coarse pass
  uint32_t block_bytes = 4096;      // the fine pass
  unsigned queue_depth = 16;
};

class BlockHasher {
 public:
  BlockHasher(const File& dev, IoBackend& io, HashOptions opt = {});

  // XXH3-128 of each chunk of [offset, offset + len); the last may be short.
  std::vector<Hash128> hash_chunks(uint64_t offset, uint64_t len);
  // The blocks of [offset, offset + len), each with its hash and zero flag.
  std::vector<BlockHash> hash_blocks(uint64_t offset, uint64_t len);
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  // Reads [offset, offset + len) in pieces of `piece` bytes at queue depth,
  // calling fn(index, bytes) for each piece (in any order).
  void read_pieces(uint64_t offset, uint64_t len, uint32_t piece,
                   const std::function<void(uint64_t, std::span<const std::byte>)>& fn);
  const File& dev_;
  IoBackend& io_;
  HashOptions opt_;
  uint64_t bytes_read_ = 0;
};

struct ByteRange {
  uint64_t offset = 0, length = 0;
  bool operator==(const ByteRange&) const = default;
};

// Compares two devices (or a device and its replica, both local): the byte
// ranges that differ, at block granularity, adjacent blocks merged. Reads
// each chunk once, and the blocks of a chunk only when the chunk differs.
std::vector<ByteRange> differing_ranges(const File& a, const File& b, IoBackend& io, HashOptions opt = {},
                                        uint64_t* bytes_read = nullptr);

}  // namespace hrl
