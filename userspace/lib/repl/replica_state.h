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

struct ReplicaState {
  std::array<uint8_t, 16> uuid{};
  uint64_t generation = 0;
  uint64_t data_sectors = 0;
  uint64_t durable_seq = 0;  // every record up to it is applied and durable

  // Empty when the file does not exist (a replica that follows no volume yet).
  static std::optional<ReplicaState> load(const std::string& path);
  void save(const std::string& path) const;
};

}  // namespace hrl
