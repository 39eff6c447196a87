// One pass of a checksum resync over a session's TlsStream (docs/protocol.md,
// "Resync"). Both sites read the chunks in parallel (ChunkReader); the
// secondary sends its roots, then the two walk down the trees of the chunks
// that differ, a level per message, alternating; the primary sends the
// blocks whose leaves differ. Batches of chunks are pipelined, so hashes
// travel while both disks read.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "io/file.h"
#include "io/io_backend.h"
#include "log/dirty_bitmap.h"
#include "net/resync_messages.h"
#include "net/tls.h"
#include "repl/replica_state.h"
#include "resync/compare.h"

namespace hrl {

// Progress of the pass a site is running, read by status from other threads.
struct ResyncStats {
  std::atomic<bool> active{false};
  std::atomic<bool> waiting{false};  // outside the resync window
  std::atomic<uint32_t> mode{0}, reason{0};
  std::atomic<uint64_t> total_bytes{0};      // to compare in this pass
  std::atomic<uint64_t> done_bytes{0};       // compared (and sent) so far
  std::atomic<uint64_t> read_bytes{0};       // read from this site's device
  std::atomic<uint64_t> differing_bytes{0};  // found different (primary)
  std::atomic<uint64_t> written_bytes{0};    // written to the replica (secondary)
  std::atomic<uint64_t> wire_bytes{0};       // frames of the pass, both ways
  std::atomic<uint64_t> started_ns{0};
  std::atomic<uint64_t> passes{0};           // passes completed since start
};

// The chunks a pass compares: the whole device, or those a resync bitmap marks.
class ChunkPlan {
 public:
  static ChunkPlan device(uint64_t data_bytes);
  static ChunkPlan bitmap(uint64_t data_bytes, const DirtyBitmap& bits);
  // The first chunk at or after `from` to compare.
  std::optional<uint64_t> next(uint64_t from) const;
  uint64_t count_from(uint64_t from) const;
  uint64_t bytes_from(uint64_t from) const;

 private:
  uint64_t data_bytes_ = 0;
  std::vector<bool> marked_;  // empty: every chunk
};

struct PrimaryPass {
  proto::ResyncBegin begin;
  ChunkPlan plan;
  const File* data = nullptr;
  uint64_t data_bytes = 0;
  IoBackendKind backend = IoBackendKind::Auto;
  int zstd_level = 1;
  uint64_t bandwidth = 0;  // resync bytes per second on the wire, 0: unlimited
  // False outside the resync window: no new batch starts until it is true.
  std::function<bool()> may_run = [] { return true; };
  // Asked once every block is sent (see ResyncEnd); unset: 0 goes (a verify).
  std::function<uint64_t()> consistent_seq;
};

struct PassResult {
  bool completed = false;              // false: stopped between batches
  std::vector<ByteRange> differing;   // sorted, merged
  proto::ResyncDone done;
};

// Runs a pass from begin.cursor to the end of the plan.
PassResult run_resync_primary(TlsStream& peer, const PrimaryPass& pass, const std::atomic<bool>& stop,
                              ResyncStats& stats);

// Serves a pass the primary began; returns after RESYNC_END with the
// replica durable and the state saved (the checkpoint gone), or throws.
// Progress is checkpointed in `state` (saved at state_path) as it goes.
void run_resync_secondary(TlsStream& peer, const proto::ResyncBegin& begin, const File& replica, ReplicaState& state,
                          const std::string& state_path, IoBackendKind backend, const std::atomic<bool>& stop,
                          ResyncStats& stats);

}  // namespace hrl
