// The two ends of a replication session over an authenticated TlsStream
// (docs/protocol.md). Each runs until the connection ends, stop is set, or an
// error: SessionError says whether retrying can help.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "io/io_backend.h"
#include "net/messages.h"
#include "net/tls.h"
#include "repl/resync_session.h"

namespace hrl {

class History;
struct ReplicaState;

// A takeover (PROMOTE) that failed and could not be undone: the site's
// state still records it, and its next start finishes it. The primary gets
// no answer, not a refusal, and stays in doubt.
class TakeoverUnsettled : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class SessionError : public std::runtime_error {
 public:
  SessionError(const std::string& what, bool recoverable) : std::runtime_error(what), recoverable_(recoverable) {}
  // False for what only an operator can fix: another volume, a diverged
  // lineage, records gone, a replica too small: the volume goes critical.
  bool recoverable() const { return recoverable_; }

 private:
  bool recoverable_;
};

struct SessionStats {
  std::atomic<uint64_t> durable_seq{0};
  std::atomic<uint64_t> raw_bytes{0};   // record bytes shipped
  std::atomic<uint64_t> wire_bytes{0};  // after compression
  // CLOCK_REALTIME stamp of the oldest record shipped but not durable yet,
  // 0 when everything read is durable: the RPO is now minus this.
  std::atomic<uint64_t> pending_since_ns{0};
  // The secondary's replica mixes old and new blocks (a resync runs or has
  // not caught up): no recovery point may be taken from it.
  std::atomic<bool> inconsistent{false};
  ResyncStats resync;
  // What the secondary confirmed (primary): each DURABLE, each pass done, and
  // each WELCOME whose durable seq or resync checkpoint is past the one known
  // before. The reconnect schedule starts over when this moves (or a session
  // held for retry_every), never at a bare connect.
  std::atomic<uint64_t> progress{0};
  // The resync checkpoint the last WELCOME showed (the session's thread alone).
  uint64_t checkpoint_take_seq = 0, checkpoint_cursor = 0;
};

// An operator's resync, verify or planned failover, handed to the primary's
// session, and what came of it (hrlctl waits for finished_id to reach its id).
struct OperatorControl {
  static constexpr uint32_t kHandover = 100;  // a planned failover: drain, verify, PROMOTE
  std::atomic<uint32_t> requested{0};  // proto::ResyncMode or kHandover; 0: none
  // The secondary took over (PROMOTED): this site becomes its secondary.
  std::atomic<bool> handed_over{false};
  std::atomic<uint64_t> request_id{0};
  mutable std::mutex mu;                // guards what follows
  uint64_t finished_id = 0;
  std::string outcome;                  // "completed" or why not
  std::vector<ByteRange> verify_ranges; // the last verify's differing ranges
  uint64_t verify_written_bytes = 0;    // differing, but written during the verify: not divergence
};

struct PrimaryOptions {
  std::string log_path;
  // The dm-hrl device whose log this is; empty for a LogWriter's log. With
  // the module, the kernel owns the superblock: acknowledge with "ack <seq>".
  std::string dm_device;
  // The volume's data as the resync reads it: the dm device's node, or the
  // data device a LogWriter writes.
  std::string data_path;
  // The data device under the dm target (its table: "<this> <log_path>"):
  // a planned failover removes the device and, if the takeover fails, maps
  // it again.
  std::string dm_table_data;
  // Where a planned failover marks, before PROMOTE, that it is in flight
  // (repl/handover_marker.h); empty: no mark is kept.
  std::string handover_marker;
  std::string node;              // this node's name, sent in HELLO
  int zstd_level = 1;
  uint32_t batch_bytes = 4u << 20;
  unsigned window = 4;           // batches in flight before waiting for DURABLE
  uint64_t bandwidth = 0;        // bytes per second on the wire, 0: unlimited
  IoBackendKind backend = IoBackendKind::Auto;
  uint64_t resync_bandwidth = 0;  // bytes per second of resync traffic, 0: unlimited
  // Whether an automatic resync may run now (the resync window); operator
  // requests and a new replica's initial copy do not wait for it.
  std::function<bool()> resync_window;
  OperatorControl* control = nullptr;
  std::function<void(const std::string&)> log;  // a line for the operator's log
};

// Ships the log from the secondary's durable point on; moves the log's tail
// (acknowledge_log) only when the secondary says a batch is durable. Runs a
// checksum resync when the secondary needs one (a new replica, a resync to
// resume), when the dm target tracks blocks in its bitmap (ring overflow,
// unclean shutdown), and when an operator asks: records before the pass's
// take_seq are made durable first, the pass runs, records from take_seq on
// follow.
void run_primary_session(TlsStream& peer, const PrimaryOptions& opt, const std::atomic<bool>& stop,
                         SessionStats& stats);

struct SecondaryOptions {
  std::string replica_path;
  std::string state_path;
  // The replica's before-images and recovery points; null: no history.
  History* history = nullptr;
  double point_interval = 300;  // seconds between crash-consistent points
  std::string node;
  IoBackendKind backend = IoBackendKind::Auto;
  // A planned failover's PROMOTE: make this site the primary at generation
  // (the replica's state, its log, its role), durably, before PROMOTED is
  // sent; throws to refuse. Empty: the site refuses to take over.
  std::function<void(const ReplicaState&, uint64_t generation)> take_over;
  std::function<void(const std::string&)> log;  // a line for the operator's log
};

// Checks the primary's HELLO against the replica's state, then applies
// batches, each made durable before it is acknowledged.
void run_secondary_session(TlsStream& peer, const SecondaryOptions& opt, const std::atomic<bool>& stop,
                           SessionStats& stats);

}  // namespace hrl
