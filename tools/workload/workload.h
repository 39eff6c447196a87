// A random block workload written through LogWriter: mixed sizes from one
// sector to max_write, overlaps in a hot region, discards, marks, FLUSH/FUA.
// Used by the tests, the demo and the benchmarks.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "log/log_writer.h"

namespace hrl {

struct WorkloadOptions {
  unsigned ops = 500;
  uint32_t max_write = 256 * 1024;  // bytes
  double discard_ratio = 0.05;
  double mark_ratio = 0.02;
  double flush_ratio = 0.03;
  double hot_ratio = 0.3;     // share of I/O inside a small hot region (overlaps)
  bool ack_as_you_go = false; // ack everything written every few ops
};

struct WorkloadResult {
  uint64_t last_seq = 0;
  unsigned writes = 0, discards = 0, marks = 0;
  std::vector<std::string> mark_names;
};

// Runs a random mix of writes (mixed sizes, overlaps), discards, marks and
// flushes through the writer.
WorkloadResult run_workload(LogWriter& w, std::mt19937_64& rng, const WorkloadOptions& opt);

// Runs `ops` operations of `one` kind (its ops field is ignored) one at a
// time, waiting while the ring is more than half full until a shipper in
// another process acknowledges records: the ring never overflows into
// bitmap mode. Returns the last sequence number written; throws when no
// acknowledgement comes for 120 s.
uint64_t run_paced(LogWriter& w, std::mt19937_64& rng, unsigned ops, WorkloadOptions one);

std::vector<std::byte> random_bytes(std::mt19937_64& rng, size_t n);

}  // namespace hrl
