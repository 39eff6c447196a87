#include "resync/compare.h"

#include <numeric>
#include <stdexcept>

#include "resync/chunk_reader.h"

namespace hrl {

void add_range(std::vector<ByteRange>& ranges, uint64_t offset, uint64_t length) {
  if (!ranges.empty() && ranges.back().offset + ranges.back().length == offset)
    ranges.back().length += length;
  else
    ranges.push_back({offset, length});
}

std::vector<ByteRange> differing_ranges(const File& a, const File& b, IoBackendKind backend, uint64_t bytes,
                                        uint64_t* bytes_read) {
  if (!bytes) {
    bytes = a.size();
    if (b.size() != bytes)
      throw std::runtime_error("compare: " + a.path() + " is " + std::to_string(bytes) + " bytes, " + b.path() + " " +
                               std::to_string(b.size()));
  }
  ChunkReader ra(a, bytes, backend, 8, false), rb(b, bytes, backend, 8, false);
  std::vector<uint64_t> chunks(ra.chunk_count());
  std::iota(chunks.begin(), chunks.end(), 0);
  ra.request(chunks);
  rb.request(chunks);
  std::vector<ByteRange> out;
  for (uint64_t c = 0; c < chunks.size(); c++) {
    HashedChunk ha = ra.take(), hb = rb.take();
    if (ha.tree.root() == hb.tree.root()) continue;
    for (unsigned k = 0; k < ha.tree.blocks(); k++) {
      if (ha.tree.node(kLeafLevel, k) == hb.tree.node(kLeafLevel, k)) continue;
      uint64_t off = c * kChunkBytes + uint64_t{k} * kBlockBytes;
      add_range(out, off, std::min<uint64_t>(kBlockBytes, bytes - off));
    }
  }
  if (bytes_read) *bytes_read = ra.bytes_read() + rb.bytes_read();
  return out;
}

}  // namespace hrl
