#include "log/superblock.h"

#include <endian.h>
#include <fcntl.h>
#include <sys/random.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "io/file.h"

namespace hrl {
namespace {

bool is_pow2(uint64_t v) { return v && !(v & (v - 1)); }
uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

}  // namespace

void encode_superblock(const Superblock& sb, std::span<std::byte> slot) {
  if (slot.size() < HRL_SB_STRUCT_SIZE) throw std::logic_error("superblock slot too small");
  hrl_superblock raw{};
  raw.magic = htole64(HRL_SB_MAGIC);
  raw.version = htole32(sb.version);
  raw.flags = htole32(sb.flags);
  std::memcpy(raw.uuid, sb.uuid.data(), sizeof raw.uuid);
  raw.generation = htole64(sb.generation);
  raw.update_seq = htole64(sb.update_seq);
  raw.data_sectors = htole64(sb.data_sectors);
  raw.bitmap_block = htole32(sb.bitmap_block);
  raw.max_payload = htole32(sb.max_payload);
  raw.bitmap_offset = htole64(sb.bitmap_offset);
  raw.resync_offset = htole64(sb.resync_offset);
  raw.bitmap_bytes = htole64(sb.bitmap_bytes);
  raw.ring_offset = htole64(sb.ring_offset);
  raw.ring_bytes = htole64(sb.ring_bytes);
  raw.tail_seq = htole64(sb.tail_seq);
  raw.tail_offset = htole64(sb.tail_offset);
  raw.head_seq = htole64(sb.head_seq);
  raw.head_offset = htole64(sb.head_offset);
  raw.resync_reason = htole32(sb.resync_reason);
  raw.resync_take_seq = htole64(sb.resync_take_seq);
  raw.dirty_bits = htole64(sb.dirty_bits);
  raw.resync_bits = htole64(sb.resync_bits);
  raw.bitmap_csum = htole64(sb.bitmap_csum);
  raw.resync_csum = htole64(sb.resync_csum);
  raw.created_ns = htole64(sb.created_ns);
  raw.updated_ns = htole64(sb.updated_ns);
  raw.al_offset = htole64(sb.al_offset);
  raw.al_extent_shift = htole32(sb.al_extent_shift);
  raw.al_extents = htole32(sb.al_extents);
  raw.csum = htole64(XXH64(&raw, HRL_SB_CSUM_BYTES, sb.csum_seed()));
  std::memset(slot.data(), 0, slot.size());
  std::memcpy(slot.data(), &raw, sizeof raw);
}

std::optional<Superblock> decode_superblock(std::span<const std::byte> slot, std::string* why) {
  auto fail = [&](std::string msg) -> std::optional<Superblock> {
    if (why) *why = std::move(msg);
    return std::nullopt;
  };
  if (slot.size() < HRL_SB_STRUCT_SIZE) return fail("short superblock");
  hrl_superblock raw;
  std::memcpy(&raw, slot.data(), sizeof raw);
  if (le64toh(raw.magic) != HRL_SB_MAGIC) return fail("no hrl superblock (bad magic)");
  if (le64toh(raw.csum) != XXH64(&raw, HRL_SB_CSUM_BYTES, hrl_csum_seed(raw.uuid)))
    return fail("superblock checksum mismatch");
  Superblock sb;
  sb.version = le32toh(raw.version);
  if (sb.version != HRL_FORMAT_VERSION)
    return fail("unsupported log format version " + std::to_string(sb.version));
  sb.flags = le32toh(raw.flags);
  std::memcpy(sb.uuid.data(), raw.uuid, sb.uuid.size());
  sb.generation = le64toh(raw.generation);
  sb.update_seq = le64toh(raw.update_seq);
  sb.data_sectors = le64toh(raw.data_sectors);
  sb.bitmap_block = le32toh(raw.bitmap_block);
  sb.max_payload = le32toh(raw.max_payload);
  sb.bitmap_offset = le64toh(raw.bitmap_offset);
  sb.resync_offset = le64toh(raw.resync_offset);
  sb.bitmap_bytes = le64toh(raw.bitmap_bytes);
  sb.ring_offset = le64toh(raw.ring_offset);
  sb.ring_bytes = le64toh(raw.ring_bytes);
  sb.tail_seq = le64toh(raw.tail_seq);
  sb.tail_offset = le64toh(raw.tail_offset);
  sb.head_seq = le64toh(raw.head_seq);
  sb.head_offset = le64toh(raw.head_offset);
  sb.resync_reason = le32toh(raw.resync_reason);
  sb.resync_take_seq = le64toh(raw.resync_take_seq);
  sb.dirty_bits = le64toh(raw.dirty_bits);
  sb.resync_bits = le64toh(raw.resync_bits);
  sb.bitmap_csum = le64toh(raw.bitmap_csum);
  sb.resync_csum = le64toh(raw.resync_csum);
  sb.created_ns = le64toh(raw.created_ns);
  sb.updated_ns = le64toh(raw.updated_ns);
  sb.al_offset = le64toh(raw.al_offset);
  sb.al_extent_shift = le32toh(raw.al_extent_shift);
  sb.al_extents = le32toh(raw.al_extents);
  if (std::string bad = check_geometry(sb); !bad.empty()) return fail("superblock: " + bad);
  return sb;
}

std::string check_geometry(const Superblock& sb) {
  constexpr uint64_t kMaxBytes = 1ULL << 56;  // keeps every sum below from overflowing
  if (sb.flags & ~HRL_SB_KNOWN_FLAGS) return "unknown flags " + std::to_string(sb.flags);
  if (sb.resync_reason > HRL_REASON_MAX) return "unknown resync reason " + std::to_string(sb.resync_reason);
  if (sb.data_sectors == 0 || sb.data_sectors > (kMaxBytes >> HRL_SECTOR_SHIFT)) return "bad data device size";
  if (!is_pow2(sb.bitmap_block) || sb.bitmap_block < HRL_SECTOR_SIZE) return "bad bitmap block size";
  if (sb.bitmap_offset != HRL_SB_SLOTS * HRL_LOG_BLOCK) return "bad bitmap offset";
  if (sb.bitmap_bytes != hrl_bitmap_area_bytes(sb.data_sectors, sb.bitmap_block)) return "bad bitmap size";
  if (sb.resync_offset != sb.bitmap_offset + sb.bitmap_bytes) return "bad resync bitmap offset";
  if (sb.al_offset) {
    if (sb.al_offset < sb.resync_offset + sb.bitmap_bytes || sb.al_offset % HRL_LOG_BLOCK || sb.al_offset > kMaxBytes)
      return "bad activity log offset";
    if (sb.al_extent_shift < HRL_AL_MIN_EXTENT_SHIFT || sb.al_extent_shift > HRL_AL_MAX_EXTENT_SHIFT)
      return "bad activity log extent size";
    if (sb.al_extents == 0 || sb.al_extents > HRL_AL_MAX_EXTENTS) return "bad activity log extent count";
    if (((sb.data_sectors << HRL_SECTOR_SHIFT) - 1) >> sb.al_extent_shift > UINT32_MAX)
      return "activity log extents too small for the data device";
  } else if (sb.al_extent_shift || sb.al_extents) {
    return "activity log fields without an activity log";
  }
  const uint64_t before_ring = sb.al_offset ? sb.al_offset + HRL_AL_SLOTS * HRL_LOG_BLOCK : sb.resync_offset + sb.bitmap_bytes;
  if (sb.ring_offset < before_ring || sb.ring_offset % HRL_LOG_BLOCK || sb.ring_offset > kMaxBytes)
    return "bad ring offset";
  if (sb.ring_bytes < HRL_MIN_RING_BYTES || sb.ring_bytes % HRL_LOG_BLOCK || sb.ring_bytes > kMaxBytes)
    return "bad ring size";
  if (sb.max_payload == 0 || sb.max_payload % HRL_SECTOR_SIZE ||
      hrl_record_span(sb.max_payload) > sb.ring_bytes / 2)
    return "bad maximum payload";
  if (sb.tail_offset >= sb.ring_bytes || sb.tail_offset % HRL_SECTOR_SIZE) return "bad tail offset";
  if (sb.head_offset >= sb.ring_bytes || sb.head_offset % HRL_SECTOR_SIZE) return "bad head offset";
  if (sb.tail_seq == 0 || sb.tail_seq > sb.head_seq) return "tail beyond head";
  if (sb.tail_seq == sb.head_seq && sb.tail_offset != sb.head_offset) return "empty ring with tail != head";
  return {};
}

Superblock make_layout(uint64_t data_sectors, uint64_t log_bytes, uint64_t ring_bytes,
                       uint32_t bitmap_block, uint32_t max_payload, uint32_t al_extents, uint32_t al_extent_shift) {
  Superblock sb;
  sb.data_sectors = data_sectors;
  sb.bitmap_block = bitmap_block;
  sb.bitmap_offset = HRL_SB_SLOTS * HRL_LOG_BLOCK;
  sb.bitmap_bytes = hrl_bitmap_area_bytes(data_sectors, bitmap_block);
  sb.resync_offset = sb.bitmap_offset + sb.bitmap_bytes;
  uint64_t end = sb.resync_offset + sb.bitmap_bytes;
  if (al_extents) {
    sb.al_offset = end;
    sb.al_extents = al_extents;
    sb.al_extent_shift = al_extent_shift;
    end += HRL_AL_SLOTS * HRL_LOG_BLOCK;
  }
  sb.ring_offset = round_up(end, HRL_RING_ALIGN);
  if (log_bytes < sb.ring_offset + HRL_MIN_RING_BYTES)
    throw std::invalid_argument("log device too small: " + std::to_string(log_bytes) + " bytes, need at least " +
                                std::to_string(sb.ring_offset + HRL_MIN_RING_BYTES));
  uint64_t room = (log_bytes - sb.ring_offset) / HRL_LOG_BLOCK * HRL_LOG_BLOCK;
  if (ring_bytes == 0) ring_bytes = room;
  if (ring_bytes > room)
    throw std::invalid_argument("ring of " + std::to_string(ring_bytes) + " bytes does not fit the log device (" +
                                std::to_string(room) + " bytes after the bitmaps)");
  sb.ring_bytes = ring_bytes;
  // A payload may use at most half the ring, so a record always fits after a PAD.
  uint64_t cap = (ring_bytes / 2 - HRL_SECTOR_SIZE) / HRL_LOG_BLOCK * HRL_LOG_BLOCK;
  sb.max_payload = static_cast<uint32_t>(std::min<uint64_t>(max_payload, cap));
  sb.uuid = random_uuid();
  sb.created_ns = now_realtime_ns();
  if (std::string bad = check_geometry(sb); !bad.empty()) throw std::invalid_argument("layout: " + bad);
  return sb;
}

Superblock read_superblock(const File& log) {
  AlignedBuffer buf(HRL_SB_SLOTS * HRL_LOG_BLOCK);
  log.read_at(buf.span(), 0);
  std::optional<Superblock> best;
  std::string why[HRL_SB_SLOTS];
  for (unsigned i = 0; i < HRL_SB_SLOTS; i++) {
    auto sb = decode_superblock(buf.span().subspan(i * HRL_LOG_BLOCK, HRL_LOG_BLOCK), &why[i]);
    if (sb && (!best || sb->update_seq > best->update_seq)) best = sb;
  }
  if (!best) throw std::runtime_error(log.path() + ": not an hrl log: " + why[0] + "; slot 1: " + why[1]);
  return *best;
}

void write_superblock(const File& log, Superblock& sb) {
  sb.update_seq++;
  sb.updated_ns = now_realtime_ns();
  AlignedBuffer slot(HRL_LOG_BLOCK);
  encode_superblock(sb, slot.span());
  log.write_at(slot.span(), (sb.update_seq % HRL_SB_SLOTS) * HRL_LOG_BLOCK);
  log.datasync();
}

SuperblockLock::SuperblockLock(const File& log) : fd_(log.fd()) {
  struct flock fl{};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_len = HRL_SB_SLOTS * HRL_LOG_BLOCK;
  while (fcntl(fd_, F_OFD_SETLKW, &fl) < 0)
    if (errno != EINTR) throw_errno(errno, "lock the superblock of " + log.path());
}

SuperblockLock::~SuperblockLock() {
  struct flock fl{};
  fl.l_type = F_UNLCK;
  fl.l_whence = SEEK_SET;
  fl.l_len = HRL_SB_SLOTS * HRL_LOG_BLOCK;
  fcntl(fd_, F_OFD_SETLK, &fl);
}

void acknowledge_log(const File& log, uint64_t tail_seq, uint64_t tail_offset) {
  SuperblockLock lock(log);
  Superblock sb = read_superblock(log);
  if (tail_seq <= sb.tail_seq) return;  // already acknowledged
  if (sb.head_seq < tail_seq) {
    // The persisted head lags the writer; acknowledged records were read
    // valid and are durable on the secondary, so the tail is a lower bound.
    sb.head_seq = tail_seq;
    sb.head_offset = tail_offset;
  }
  sb.tail_seq = tail_seq;
  sb.tail_offset = tail_offset;
  if (std::string bad = check_geometry(sb); !bad.empty())
    throw std::invalid_argument("acknowledge seq " + std::to_string(tail_seq - 1) + " at ring offset " +
                                std::to_string(tail_offset) + ": " + bad);
  write_superblock(log, sb);
}

const char* reason_name(uint32_t reason) {
  switch (reason) {
    case HRL_REASON_NONE: return "none";
    case HRL_REASON_UNCLEAN_SHUTDOWN: return "unclean-shutdown";
    case HRL_REASON_RING_OVERFLOW: return "ring-overflow";
    case HRL_REASON_LOG_CORRUPT: return "log-corrupt";
    case HRL_REASON_BITMAP_LOST: return "bitmap-lost";
    case HRL_REASON_OPERATOR: return "operator";
    case HRL_REASON_NEW_VOLUME: return "new-volume";
    case HRL_REASON_IO_ERROR: return "log-io-error";
  }
  return "unknown";
}

std::string flags_string(uint32_t flags) {
  static constexpr std::pair<uint32_t, const char*> kNames[] = {
      {HRL_SB_CLEAN, "clean"},
      {HRL_SB_BITMAP_MODE, "bitmap-mode"},
      {HRL_SB_RESYNC_PENDING, "resync-pending"},
      {HRL_SB_RESYNC_REQUIRED, "resync-required"},
  };
  std::string out;
  for (auto [bit, name] : kNames)
    if (flags & bit) out += (out.empty() ? "" : ",") + std::string(name);
  return out.empty() ? "-" : out;
}

std::string uuid_string(const std::array<uint8_t, 16>& uuid) {
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < uuid.size(); i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += hex[uuid[i] >> 4];
    s += hex[uuid[i] & 15];
  }
  return s;
}

std::array<uint8_t, 16> random_uuid() {
  std::array<uint8_t, 16> u{};
  if (getrandom(u.data(), u.size(), 0) != static_cast<ssize_t>(u.size())) throw_errno(errno, "getrandom");
  u[6] = static_cast<uint8_t>((u[6] & 0x0f) | 0x40);  // RFC 4122 version 4
  u[8] = static_cast<uint8_t>((u[8] & 0x3f) | 0x80);
  return u;
}

uint64_t now_realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace hrl
