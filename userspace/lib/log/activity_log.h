// The activity log (log_format.h, struct hrl_al_block): the extents of the
// data device that may hold writes not yet durable in the log. dm-hrl keeps
// it; userspace reads it (hrl-log dump, the tests) and invalidates it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "log/superblock.h"

namespace hrl {

class File;

struct ActivityLog {
  uint64_t seq = 0;
  bool all = true;                 // every extent: no valid block, or HRL_AL_ALL
  std::vector<uint32_t> extents;   // when !all
};

// Encodes one block (HRL_LOG_BLOCK bytes), checksum included.
void encode_activity_log(const ActivityLog& al, uint64_t csum_seed, std::span<std::byte> block);

// Decodes and validates one block; false (and why) when it is not valid.
bool decode_activity_log(std::span<const std::byte> block, uint64_t csum_seed, uint32_t max_extents,
                         ActivityLog& out, std::string* why);

// The newest valid block of the log's activity log; `all` when none is valid.
ActivityLog read_activity_log(const File& log, const Superblock& sb);

// Writes "every extent" over both blocks, durably: a writer that does not
// keep the activity log (LogWriter, format) makes an unclean load cover the
// whole device rather than trust a list another writer left.
void write_activity_log_all(const File& log, const Superblock& sb);

}  // namespace hrl
