#include "history/undo_journal.h"

#include <endian.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <hrl/log_format.h>


namespace hrl {
namespace {

constexpr uint64_t kFileMagic = 0x31444e554c524855ull;  // bytes "UHRLUND1"
constexpr uint32_t kEntryMagic = 0x45444e55;             // bytes "UNDE"
constexpr uint64_t kHeaderBytes = 4096;
constexpr uint64_t kEntryHeader = 512;  // one sector: the image after it stays sector-aligned

struct RawEntry {  // little-endian on disk
  uint32_t magic;
  uint32_t sectors;
  uint64_t seq;
  uint64_t sector;
  uint64_t image_csum;
  uint8_t pad[24];
  uint64_t header_csum;  // of the 56 bytes before it
};
static_assert(sizeof(RawEntry) == 64);

}  // namespace

UndoJournal::UndoJournal(const std::string& path, const std::array<uint8_t, 16>& uuid)
    : file_(File::open(path, O_RDWR | O_CREAT)), uuid_(uuid) {
  if (file_.size() == 0) {
    AlignedBuffer h(kHeaderBytes);
    uint64_t magic = htole64(kFileMagic);
    std::memcpy(h.data(), &magic, 8);
    std::memcpy(h.data() + 8, uuid.data(), 16);
    file_.write_at(h.span(), 0);
    file_.datasync();
  }
  load();
}

void UndoJournal::load() {
  AlignedBuffer h(kHeaderBytes);
  file_.read_at(h.span(), 0);
  uint64_t magic;
  std::memcpy(&magic, h.data(), 8);
  if (le64toh(magic) != kFileMagic) throw std::runtime_error(file_.path() + ": not an hrl undo journal");
  if (std::memcmp(h.data() + 8, uuid_.data(), 16) != 0)
    throw std::runtime_error(file_.path() + ": the undo journal of another volume");
  entries_.clear();
  uint64_t off = kHeaderBytes, size = file_.size();
  AlignedBuffer hdr(kEntryHeader);
  std::vector<std::byte> image;
  while (off + kEntryHeader <= size) {
    file_.read_at(hdr.span(), off);
    RawEntry e;
    std::memcpy(&e, hdr.data(), sizeof e);
    if (le32toh(e.magic) != kEntryMagic || XXH64(&e, 56, 0) != le64toh(e.header_csum)) break;
    uint64_t bytes = uint64_t{le32toh(e.sectors)} * HRL_SECTOR_SIZE;
    if (off + kEntryHeader + bytes > size) break;
    image.resize(bytes);
    file_.read_at(image, off + kEntryHeader);
    if (XXH64(image.data(), bytes, 0) != le64toh(e.image_csum)) break;  // torn by a crash
    uint64_t seq = le64toh(e.seq);
    if (!entries_.empty() && seq <= entries_.back().seq) break;
    entries_.push_back({seq, le64toh(e.sector), le32toh(e.sectors), off + kEntryHeader});
    off += kEntryHeader + bytes;
  }
  end_ = off;
  if (size > end_ && ::ftruncate(file_.fd(), static_cast<off_t>(end_)) < 0) throw_errno(errno, "truncate " + file_.path());
}

void UndoJournal::capture(const File& replica, std::span<const LogRecord> batch) {
  std::vector<std::byte> out;
  std::vector<Entry> added;
  uint64_t at = end_;
  for (size_t i = 0; i < batch.size(); i++) {
    const RecordHeader& h = batch[i].header;
    if ((h.type != HRL_REC_WRITE && h.type != HRL_REC_DISCARD) || h.seq <= last_seq()) continue;
    const uint64_t bytes = uint64_t{h.nr_sectors} * HRL_SECTOR_SIZE, start = h.sector * HRL_SECTOR_SIZE;
    AlignedBuffer before(bytes);
    replica.read_at(before.span(), start);
    // What the earlier records of this batch write there comes first.
    for (size_t j = 0; j < i; j++) {
      const RecordHeader& e = batch[j].header;
      if (e.type != HRL_REC_WRITE && e.type != HRL_REC_DISCARD) continue;
      uint64_t es = e.sector * HRL_SECTOR_SIZE, ee = es + uint64_t{e.nr_sectors} * HRL_SECTOR_SIZE;
      uint64_t lo = std::max(start, es), hi = std::min(start + bytes, ee);
      if (lo >= hi) continue;
      if (e.type == HRL_REC_WRITE)
        std::memcpy(before.data() + (lo - start), batch[j].payload.data() + (lo - es), hi - lo);
      else
        std::memset(before.data() + (lo - start), 0, hi - lo);
    }
    RawEntry e{};
    e.magic = htole32(kEntryMagic);
    e.sectors = htole32(h.nr_sectors);
    e.seq = htole64(h.seq);
    e.sector = htole64(h.sector);
    e.image_csum = htole64(XXH64(before.data(), bytes, 0));
    e.header_csum = htole64(XXH64(&e, 56, 0));
    size_t base = out.size();
    out.resize(base + kEntryHeader + bytes);
    std::memcpy(out.data() + base, &e, sizeof e);
    std::memcpy(out.data() + base + kEntryHeader, before.data(), bytes);
    added.push_back({h.seq, h.sector, h.nr_sectors, at + kEntryHeader});
    at += kEntryHeader + bytes;
  }
  if (added.empty()) return;
  file_.write_at(out, end_);
  file_.datasync();  // before the replica changes
  end_ = at;
  entries_.insert(entries_.end(), added.begin(), added.end());
}

void UndoJournal::roll_back(const File& image, uint64_t at, uint64_t target) const {
  // Records after last_seq() that the image holds carried no data (MARK, PAD, flushes).
  if (target > at || (!entries_.empty() && target + 1 < first_seq()))
    throw std::runtime_error("undo: cannot go from seq " + std::to_string(at) + " back to " + std::to_string(target) +
                             "; the journal covers " + std::to_string(first_seq()) + ".." + std::to_string(last_seq()));
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    if (it->seq > at) continue;
    if (it->seq <= target) break;
    AlignedBuffer bytes(uint64_t{it->sectors} * HRL_SECTOR_SIZE);  // the image may be O_DIRECT
    file_.read_at(bytes.span(), it->offset);
    image.write_at(bytes.span(), it->sector * HRL_SECTOR_SIZE);
  }
  image.datasync();
}

void UndoJournal::reset() {
  if (::ftruncate(file_.fd(), static_cast<off_t>(kHeaderBytes)) < 0) throw_errno(errno, "truncate " + file_.path());
  file_.datasync();
  entries_.clear();
  end_ = kHeaderBytes;
}

}  // namespace hrl
