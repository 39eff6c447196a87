// The two ends of a replication session over an authenticated TlsStream
// (docs/protocol.md). Each runs until the connection ends, stop is set, or an
// error: SessionError says whether retrying can help.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "io/io_backend.h"
#include "net/messages.h"
#include "net/tls.h"

namespace hrl {

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
};

struct PrimaryOptions {
  std::string log_path;
  // The dm-hrl device whose log this is; empty for a LogWriter's log. With
  // the module, the kernel owns the superblock: acknowledge with "ack <seq>".
  std::string dm_device;
  std::string node;              // this node's name, sent in HELLO
  int zstd_level = 1;
  uint32_t batch_bytes = 4u << 20;
  unsigned window = 4;           // batches in flight before waiting for DURABLE
  uint64_t bandwidth = 0;        // bytes per second on the wire, 0: unlimited
  IoBackendKind backend = IoBackendKind::Auto;
};

// Ships the log from the secondary's durable point on; moves the log's tail
// (acknowledge_log) only when the secondary says a batch is durable.
void run_primary_session(TlsStream& peer, const PrimaryOptions& opt, const std::atomic<bool>& stop,
                         SessionStats& stats);

struct SecondaryOptions {
  std::string replica_path;
  std::string state_path;
  std::string node;
  IoBackendKind backend = IoBackendKind::Auto;
};

// Checks the primary's HELLO against the replica's state, then applies
// batches, each made durable before it is acknowledged.
void run_secondary_session(TlsStream& peer, const SecondaryOptions& opt, const std::atomic<bool>& stop,
                           SessionStats& stats);

}  // namespace hrl
