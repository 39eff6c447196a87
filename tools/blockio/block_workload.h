// A seeded block workload on a block device, as an application would run on
// /dev/mapper/hrl-<name>: O_DIRECT writes at queue depth (some with FUA, by
// an O_DSYNC descriptor), flushes (fdatasync), discards. Writes in flight
// never overlap each other, so the application's own order of writes to a
// block is defined. Each step is appended to a journal as it happens, one
// write(2) a line, so a process stopped at any instant leaves a journal that
// claims nothing it had not done:
//
//   W <id> <block> <blocks> <fua>   a write is about to be submitted
//   C <id>                          it completed (its bytes: block_content.h)
//   F <n> / FD <n>                  flush n starts / returned
//   D <id> <block> <blocks> / DD <id>  a discard starts / returned
//
// The crash-state explorer reads it to know what the application had made
// durable at each instant: every write completed before a flush that returned,
// and every FUA write that completed.
#pragma once

#include <cstdint>
#include <string>

namespace hrl::blockio {

struct WorkloadOptions {
  std::string device;
  std::string journal;       // empty: none
  uint64_t seed = 1;
  uint64_t first_id = 1;     // ids of writes and discards start here
  unsigned ops = 0;          // stop after this many operations (0: no limit; 1000 without seconds)
  double seconds = 0;        // stop after this long (0: no limit)
  unsigned depth = 4;
  uint32_t max_blocks = 16;  // largest write, in 4 KiB blocks
  uint64_t region_blocks = 0;  // 0: the whole device
  double fua_ratio = 0.1, flush_ratio = 0.06, discard_ratio = 0.02, hot_ratio = 0.3;
  double rate = 0;           // operations per second; 0: as fast as the device goes
};

struct WorkloadResult {
  uint64_t writes = 0, fua_writes = 0, flushes = 0, discards = 0;
};

WorkloadResult run_block_workload(const WorkloadOptions& opt);

}  // namespace hrl::blockio
