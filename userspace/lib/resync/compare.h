// Comparing two devices that are both local, chunk by chunk through their
// hash trees: what a resync or a verify finds, without a network between.
// Used by tests and tools to check the result of a resync.
#pragma once

#include <cstdint>
#include <vector>

#include "io/file.h"
#include "io/io_backend.h"

namespace hrl {

struct ByteRange {
  uint64_t offset = 0, length = 0;
  bool operator==(const ByteRange&) const = default;
};

// Appends [offset, offset + length), merged with the last range when adjacent.
void add_range(std::vector<ByteRange>& ranges, uint64_t offset, uint64_t length);

// The byte ranges where a and b differ over their first `bytes` (both sizes
// when 0, which must then be equal), at block granularity, adjacent blocks
// merged. Reads each device once, both in parallel.
std::vector<ByteRange> differing_ranges(const File& a, const File& b, IoBackendKind backend = IoBackendKind::Auto,
                                        uint64_t bytes = 0, uint64_t* bytes_read = nullptr);

}  // namespace hrl
