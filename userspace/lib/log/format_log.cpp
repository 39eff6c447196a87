#include "log/format_log.h"

#include <xxhash.h>

#include <stdexcept>

#include "io/file.h"
#include "log/activity_log.h"

namespace hrl {

Superblock format_log(const File& log, uint64_t data_sectors, const FormatOptions& opt) {
  if (opt.bitmap_block < HRL_SECTOR_SIZE || (opt.bitmap_block & (opt.bitmap_block - 1)))
    throw std::invalid_argument("bitmap block must be a power of two of at least 512 bytes");
  Superblock sb = make_layout(data_sectors, log.size(), opt.ring_bytes, opt.bitmap_block, opt.max_payload,
                              opt.al_extents, opt.al_extent_shift);
  if (opt.uuid) sb.uuid = *opt.uuid;
  if (opt.generation) sb.generation = opt.generation;
  sb.flags = HRL_SB_CLEAN | (opt.assume_in_sync ? 0 : HRL_SB_RESYNC_REQUIRED);
  sb.resync_reason = opt.assume_in_sync ? HRL_REASON_NONE : HRL_REASON_NEW_VOLUME;
  AlignedBuffer zeros(sb.bitmap_bytes);
  log.write_at(zeros.span(), sb.bitmap_offset);
  log.write_at(zeros.span(), sb.resync_offset);
  sb.bitmap_csum = sb.resync_csum = XXH64(zeros.data(), zeros.size(), sb.csum_seed());
  // Records of an earlier format fail their checksums (another UUID seeds
  // them); zeroing the first block only keeps a dump of a new log tidy.
  AlignedBuffer first(HRL_LOG_BLOCK);
  log.write_at(first.span(), sb.ring_offset);
  if (sb.al_offset) write_activity_log_all(log, sb);  // nothing listed can be trusted to be all
  log.datasync();
  for (unsigned i = 0; i < HRL_SB_SLOTS; i++) write_superblock(log, sb);  // both slots valid
  return sb;
}

std::optional<Superblock> existing_log(const File& log) {
  try {
    return read_superblock(log);
  } catch (const std::runtime_error&) {  // not a log (or no valid slot): nothing to lose
    return std::nullopt;
  }
}

}  // namespace hrl
