// The bytes hrl-blockio writes, defined so that any 4 KiB block read back
// says which write put it there: the crash-state explorer on the host
// (tests/vm/crash) recomputes them to check what an application made durable.
//
// A block is 128 copies of a 32-byte stamp, four little-endian u64:
//   magic "HRLBLK01", seed, write id, (device block << 8) | copy index
// The data is compressible on purpose: replication ships it quickly under TCG.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace hrl::blockio {

inline constexpr uint32_t kBlock = 4096;
inline constexpr uint64_t kMagic = 0x31304b4c424c5248ULL;  // "HRLBLK01"

// Fills out (whole blocks) with the content of write `id` at device block `first`.
void stamp_blocks(std::span<std::byte> out, uint64_t seed, uint64_t id, uint64_t first);

}  // namespace hrl::blockio
