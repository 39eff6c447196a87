#include "log/activity_log.h"

#include <endian.h>
#include <xxhash.h>

#include <cstring>
#include <stdexcept>

#include "io/file.h"

namespace hrl {

void encode_activity_log(const ActivityLog& al, uint64_t csum_seed, std::span<std::byte> block) {
  if (block.size() < HRL_LOG_BLOCK || al.extents.size() > HRL_AL_MAX_EXTENTS)
    throw std::logic_error("activity log block: too small, or too many extents");
  hrl_al_block raw{};
  raw.magic = htole64(HRL_AL_MAGIC);
  raw.seq = htole64(al.seq);
  raw.count = htole32(al.all ? HRL_AL_ALL : static_cast<uint32_t>(al.extents.size()));
  if (!al.all)
    for (size_t i = 0; i < al.extents.size(); i++) raw.extents[i] = htole32(al.extents[i]);
  raw.csum = htole64(XXH64(&raw, HRL_AL_CSUM_BYTES, csum_seed));
  std::memcpy(block.data(), &raw, sizeof raw);
}

bool decode_activity_log(std::span<const std::byte> block, uint64_t csum_seed, uint32_t max_extents,
                         ActivityLog& out, std::string* why) {
  auto fail = [&](const char* msg) {
    if (why) *why = msg;
    return false;
  };
  if (block.size() < HRL_LOG_BLOCK) return fail("short block");
  hrl_al_block raw;
  std::memcpy(&raw, block.data(), sizeof raw);
  if (le64toh(raw.magic) != HRL_AL_MAGIC) return fail("no activity log block (bad magic)");
  if (le64toh(raw.csum) != XXH64(&raw, HRL_AL_CSUM_BYTES, csum_seed)) return fail("activity log checksum mismatch");
  uint32_t count = le32toh(raw.count);
  out = ActivityLog{};
  out.seq = le64toh(raw.seq);
  if (count == HRL_AL_ALL) return true;
  if (count > max_extents) return fail("more extents than the activity log holds");
  out.all = false;
  for (uint32_t i = 0; i < count; i++) out.extents.push_back(le32toh(raw.extents[i]));
  return true;
}

ActivityLog read_activity_log(const File& log, const Superblock& sb) {
  ActivityLog best;
  if (!sb.al_offset) return best;
  AlignedBuffer buf(HRL_AL_SLOTS * HRL_LOG_BLOCK);
  log.read_at(buf.span(), sb.al_offset);
  bool found = false;
  for (unsigned i = 0; i < HRL_AL_SLOTS; i++) {
    ActivityLog al;
    if (decode_activity_log(buf.span().subspan(i * HRL_LOG_BLOCK, HRL_LOG_BLOCK), sb.csum_seed(), sb.al_extents, al,
                            nullptr) &&
        (!found || al.seq > best.seq)) {
      best = al;
      found = true;
    }
  }
  return best;
}

void write_activity_log_all(const File& log, const Superblock& sb) {
  if (!sb.al_offset) return;
  ActivityLog now = read_activity_log(log, sb);
  AlignedBuffer buf(HRL_AL_SLOTS * HRL_LOG_BLOCK);
  for (unsigned i = 0; i < HRL_AL_SLOTS; i++) {
    ActivityLog all;
    all.seq = now.seq + 1 + i;
    encode_activity_log(all, sb.csum_seed(), buf.span().subspan((all.seq % HRL_AL_SLOTS) * HRL_LOG_BLOCK, HRL_LOG_BLOCK));
  }
  log.write_at(buf.span(), sb.al_offset);
  log.datasync();
}

}  // namespace hrl
