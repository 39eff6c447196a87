// Applies log records to a target device or image in log order: writes go out
// at queue depth, but a write that overlaps one still in flight waits for it,
// a DISCARD zeroes its range, and FLUSH/FUA records become durability barriers.
// Used by `hrl-log replay` and, on the secondary, by hrld.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "io/file.h"
#include "io/io_backend.h"
#include "log/log_reader.h"

namespace hrl {

struct ApplyStats {
  uint64_t records = 0;
  uint64_t writes = 0;
  uint64_t discards = 0;
  uint64_t marks = 0;
  uint64_t bytes = 0;
};

class RecordApplier {
 public:
  RecordApplier(const File& target, uint64_t data_sectors, IoBackend& io);
  ~RecordApplier();
  RecordApplier(const RecordApplier&) = delete;
  RecordApplier& operator=(const RecordApplier&) = delete;

  // Copies what it needs from rec; rec may be released on return.
  void apply(const LogRecord& rec);
  // Waits for every queued write and makes the target durable.
  void finish();
  const ApplyStats& stats() const { return stats_; }

 private:
  struct Inflight {
    uint64_t sector = 0, nr_sectors = 0;
    bool busy = false;
  };
  void drain();
  void reap(size_t min);
  bool overlaps_inflight(uint64_t sector, uint64_t nr_sectors) const;
  unsigned free_slot();

  const File& target_;
  uint64_t data_sectors_;
  IoBackend& io_;
  std::vector<AlignedBuffer> buffers_;
  std::vector<Inflight> inflight_;
  ApplyStats stats_;
};

}  // namespace hrl
