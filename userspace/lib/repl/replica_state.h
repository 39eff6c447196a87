// What a secondary knows durably about its replica: which volume and lineage
// it follows and the last record it holds. Written atomically (temporary
// file, fsync, rename, fsync of the directory) after the replica's data is
// durable, and only then acknowledged to the primary.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace hrl {

// A resync in progress: what it compares and how far it got. Every chunk
// before `cursor` is done and durable on the replica.
struct ResyncCheckpoint {
  uint32_t mode = 0;     // proto::ResyncMode
  uint32_t regions = 0;  // proto::ResyncRegions
  uint32_t reason = 0;   // HRL_REASON_*
  uint64_t take_seq = 0;
  uint64_t cursor = 0;
  uint64_t started_ns = 0;
  bool operator==(const ResyncCheckpoint&) const = default;
};

// An unplanned failover made the replica a volume of its own: it went back
// to the image after record seq and took the next generation, so the old
// primary's records are refused. Committed: final, its history is gone.
struct Promotion {
  uint64_t seq = 0;
  uint64_t at_ns = 0;
  bool complete = false;  // the replica is back at seq (before: redo the roll back)
  bool committed = false;
  bool operator==(const Promotion&) const = default;
};

// This site is becoming the volume's primary (a planned failover's PROMOTE,
// or a reprotect of the promoted site). Saved before the log is formatted and
// the device mapped: a crash in between leaves it, and hrld finishes the
// takeover at its next start instead of keeping a device mapped over a
// replica it would still write as a secondary.
struct Takeover {
  bool in_sync = false;  // the new log starts in sync with the other site
  bool operator==(const Takeover&) const = default;
};

struct ReplicaState {
  std::array<uint8_t, 16> uuid{};
  uint64_t generation = 0;
  uint64_t data_sectors = 0;
  uint64_t durable_seq = 0;  // every record up to it is applied and durable
  uint64_t durable_csum = 0;  // the header checksum of that record; 0: not known (after a resync)
  // While a resync runs the replica mixes old and new blocks; after it, it is
  // crash-consistent again once records up to consistent_seq are applied.
  std::optional<ResyncCheckpoint> resync;
  uint64_t consistent_seq = 0;
  std::optional<Promotion> promoted;
  std::optional<Takeover> takeover;
  // Reprotect after an unplanned failover: this site's old data waits for
  // the promoted side, which has the volume's next generation. The first
  // primary of this volume with a newer generation is taken, then no other.
  bool adopt_newer_generation = false;
  // The undo journal holds a before-image of every record applied since it
  // began. False once a session without history applied records (and in a
  // state written before this was kept): the next session with history
  // starts it over rather than rebuild images from a history with a gap.
  bool history_complete = false;
  bool consistent() const { return !resync && durable_seq >= consistent_seq; }

  // Empty when the file does not exist (a replica that follows no volume yet).
  static std::optional<ReplicaState> load(const std::string& path);
  void save(const std::string& path) const;
};

}  // namespace hrl
