// The messages of a checksum resync (docs/protocol.md, "Resync") and their
// codecs. The decoders check every length and bound; what a message means
// against the receiver's own trees is checked by the resync session.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "net/frame.h"
#include "resync/hash_tree.h"

namespace hrl::proto {

enum class ResyncMode : uint32_t {
  Checksum = 1,  // compare hash trees, send the blocks that differ
  Copy = 2,      // send every block (zero blocks as markers), compare nothing
  Verify = 3,    // compare and report, change nothing
};
const char* resync_mode_name(ResyncMode m);

enum class ResyncRegions : uint32_t {
  Device = 1,  // every chunk of the volume
  Bitmap = 2,  // the chunks the log's resync bitmap marks
};

struct ResyncBegin {
  ResyncMode mode = ResyncMode::Checksum;
  ResyncRegions regions = ResyncRegions::Device;
  uint32_t reason = 0;     // HRL_REASON_*, or kReasonNewReplica
  uint64_t take_seq = 0;   // records before it were applied first; from it on, after
  uint64_t cursor = 0;     // the first chunk index still to compare
  uint64_t chunks = 0;     // chunks to compare from the cursor on
  // The pass replaces the records between what the replica holds and
  // take_seq (they cannot be read, or the replica holds records the primary's
  // log lost): the replica starts over at take_seq - 1, whatever it held.
  bool supersedes = false;
};

// The chunks of one batch, in increasing order.
struct ResyncChunks {
  uint64_t batch = 0;
  std::vector<uint64_t> chunks;
};

// One level of the trees of a batch's chunks, in the batch's order. Level 0
// carries each chunk's root. Level k > 0 answers the previous message of the
// batch: for each chunk, one flag per node that message carried (set where
// the receiver's node differs), then the four children at level k of each
// flagged node.
struct ChunkLevel {
  std::vector<bool> differ;
  std::vector<Hash128> hashes;
};
struct ResyncHashes {
  uint64_t batch = 0;
  uint32_t level = 0;
  std::vector<ChunkLevel> chunks;
};

struct DataExtent {
  uint64_t offset = 0;  // bytes, a whole number of sectors
  uint32_t length = 0;
  bool zero = false;    // no bytes follow: the range reads as zeros
  std::span<const std::byte> bytes;
};
// The blocks of a batch that differ; one per batch, possibly empty, so the
// secondary knows the batch is done: every chunk before `cursor` is.
struct ResyncData {
  uint64_t batch = 0;
  uint64_t cursor = 0;
  std::vector<DataExtent> extents;
};

struct ResyncEnd {
  // The replica is crash-consistent again once records up to this seq are
  // applied: every write the pass may have read has a lower sequence number.
  uint64_t consistent_seq = 0;
};

struct ResyncDone {
  uint64_t written_bytes = 0;  // data written to the replica by the pass
  uint64_t zeroed_bytes = 0;
};

std::vector<std::byte> encode(const ResyncBegin& m);
std::vector<std::byte> encode(const ResyncChunks& m);
std::vector<std::byte> encode(const ResyncHashes& m);
std::vector<std::byte> encode(const ResyncData& m);
std::vector<std::byte> encode(const ResyncEnd& m);
std::vector<std::byte> encode(const ResyncDone& m);
ResyncBegin decode_resync_begin(std::span<const std::byte> in);
ResyncChunks decode_resync_chunks(std::span<const std::byte> in);
ResyncHashes decode_resync_hashes(std::span<const std::byte> in);
// The extents' bytes point into `in`, which must outlive them.
ResyncData decode_resync_data(std::span<const std::byte> in);
ResyncEnd decode_resync_end(std::span<const std::byte> in);
ResyncDone decode_resync_done(std::span<const std::byte> in);

}  // namespace hrl::proto
