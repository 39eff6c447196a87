#include "history/undo_journal.h"

#include <endian.h>
#include <stdio.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <stdexcept>

#include <hrl/log_format.h>

#include "io/env.h"
#include "io/zero_bytes.h"
#include "log/superblock.h"

namespace hrl {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kFileMagic = 0x32444e554c524855ull;  // bytes "UHRLUND2"
constexpr uint32_t kEntryMagic = 0x45444e55;             // bytes "UNDE"
constexpr uint64_t kHeaderBytes = 4096;
constexpr uint64_t kEntryHeader = 512;  // one sector: the image after it stays sector-aligned

struct RawSegmentHeader {  // little-endian on disk
  uint64_t magic;
  uint8_t uuid[16];
  uint64_t from_seq;
  uint64_t created_ns;
  uint64_t csum;  // of the 40 bytes before it
};
static_assert(sizeof(RawSegmentHeader) == 48);

// A record's before-image is captured in pieces of at most kPieceBytes, and
// a batch's pieces are read and appended kGroupBytes at a time: a discard of
// a whole volume costs bounded memory.
constexpr uint64_t kPieceBytes = 4 << 20;
constexpr uint64_t kGroupBytes = 16 << 20;
constexpr uint32_t kEntryContinued = 1;  // more pieces of this record follow
constexpr uint32_t kEntryZero = 2;       // the before-image is zeros: no bytes follow the header

struct RawEntry {  // little-endian on disk
  uint32_t magic;
  uint32_t sectors;
  uint64_t seq;
  uint64_t sector;
  uint64_t image_csum;
  uint32_t flags;  // kEntry*
  uint8_t pad[20];
  uint64_t header_csum;  // of the 56 bytes before it
};
static_assert(sizeof(RawEntry) == 64);

uint64_t image_bytes(const RawEntry& e) {
  return le32toh(e.flags) & kEntryZero ? 0 : uint64_t{le32toh(e.sectors)} * HRL_SECTOR_SIZE;
}

std::string segment_name(uint64_t from_seq) {
  char name[32];
  snprintf(name, sizeof name, "%020llu.undo", static_cast<unsigned long long>(from_seq));
  return name;
}

}  // namespace

UndoJournal::UndoJournal(const std::string& dir, const std::array<uint8_t, 16>& uuid, uint64_t start_seq,
                         uint64_t segment_bytes)
    : dir_(dir), uuid_(uuid), segment_bytes_(segment_bytes) {
  // What a reset interrupted by a crash left: the old history (.old, after
  // the swap) or the one it was preparing (.new, before it).
  fs::remove_all(dir_ + ".old");
  fs::remove_all(dir_ + ".new");
  fs::create_directories(dir_);
  load();
  if (segments_.empty()) begin_segment(start_seq);
}

void UndoJournal::load() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir_))
    if (e.path().extension() == ".undo") names.push_back(e.path().string());
  std::sort(names.begin(), names.end());  // by from_seq: the names are zero-padded
  for (size_t i = 0; i < names.size(); i++) load_segment(names[i], i + 1 == names.size());
}

// Reads a segment's header and entry headers. Only the newest can end in a
// torn entry (a crash while appending): it is cut off there, and its images
// are checked; older segments were complete and durable when closed.
void UndoJournal::load_segment(const std::string& path, bool newest) {
  auto file = std::make_shared<File>(File::open(path, O_RDWR));
  AlignedBuffer h(kHeaderBytes);
  uint64_t size = file->size();
  RawSegmentHeader sh{};
  if (size >= kHeaderBytes) {
    file->read_at(h.span(), 0);
    std::memcpy(&sh, h.data(), sizeof sh);
  }
  if (size < kHeaderBytes || le64toh(sh.magic) != kFileMagic || XXH64(&sh, 40, 0) != le64toh(sh.csum)) {
    if (newest && size <= kHeaderBytes) {  // begun, not finished, when the daemon died: it held nothing
      remove_file(path);
      return;
    }
    throw std::runtime_error(path + ": not an hrl undo journal segment");
  }
  if (std::memcmp(sh.uuid, uuid_.data(), 16) != 0) throw std::runtime_error(path + ": the undo journal of another volume");
  Segment seg{file, le64toh(sh.from_seq), le64toh(sh.created_ns), kHeaderBytes};
  if (seg.from_seq != last_seq_or(seg.from_seq))
    throw std::runtime_error(path + ": begins after seq " + std::to_string(seg.from_seq) + " but the segment before it ends at " +
                             std::to_string(last_seq()) + ": the undo journal has a gap");
  const size_t index = dropped_ + segments_.size();
  // A record's pieces are kept only once its last piece is there: `whole`
  // is where the last whole record ends.
  uint64_t off = kHeaderBytes, whole = off, last = seg.from_seq;
  size_t whole_entries = entries_.size();
  bool continued = false;
  AlignedBuffer hdr(kEntryHeader);
  std::vector<std::byte> image;
  while (off + kEntryHeader <= size) {
    file->read_at(hdr.span(), off);
    RawEntry e;
    std::memcpy(&e, hdr.data(), sizeof e);
    if (le32toh(e.magic) != kEntryMagic || XXH64(&e, 56, 0) != le64toh(e.header_csum)) break;
    const uint64_t bytes = image_bytes(e);
    if (off + kEntryHeader + bytes > size) break;
    if (newest) {
      image.resize(bytes);
      file->read_at(image, off + kEntryHeader);
      if (XXH64(image.data(), bytes, 0) != le64toh(e.image_csum)) break;  // torn by a crash
    }
    const uint64_t seq = le64toh(e.seq);
    if (continued ? seq != last : seq <= last) break;
    const uint32_t flags = le32toh(e.flags);
    entries_.push_back({seq, le64toh(e.sector), le32toh(e.sectors), off + kEntryHeader, index, (flags & kEntryZero) != 0});
    last = seq;
    off += kEntryHeader + bytes;
    continued = flags & kEntryContinued;
    if (!continued) {
      whole = off;
      whole_entries = entries_.size();
    }
  }
  entries_.resize(whole_entries);  // the pieces of a record a crash cut short
  if (whole < size) {
    if (!newest) throw std::runtime_error(path + ": a damaged entry at offset " + std::to_string(whole));
    truncate_file(*file, whole);
  }
  off = whole;
  seg.end = off;
  segments_.push_back(std::move(seg));
}

uint64_t UndoJournal::last_seq_or(uint64_t none) const {
  return segments_.empty() ? none : last_seq();
}

// Starts the segment that takes the records after from_seq, durable before
// any entry goes in.
UndoJournal::Segment UndoJournal::write_segment(const std::string& dir, uint64_t from_seq) const {
  const std::string path = dir + "/" + segment_name(from_seq);
  auto file = std::make_shared<File>(File::open(path, O_RDWR | O_CREAT | O_TRUNC));
  AlignedBuffer h(kHeaderBytes);
  RawSegmentHeader sh{};
  sh.magic = htole64(kFileMagic);
  std::memcpy(sh.uuid, uuid_.data(), 16);
  sh.from_seq = htole64(from_seq);
  const uint64_t now = now_realtime_ns();
  sh.created_ns = htole64(now);
  sh.csum = htole64(XXH64(&sh, 40, 0));
  std::memcpy(h.data(), &sh, sizeof sh);
  file->write_at(h.span(), 0);
  file->datasync();
  sync_directory(dir);
  return {file, from_seq, now, kHeaderBytes};
}

void UndoJournal::begin_segment(uint64_t from_seq) { segments_.push_back(write_segment(dir_, from_seq)); }

uint64_t UndoJournal::size_bytes() const {
  uint64_t n = 0;
  for (const Segment& s : segments_) n += s.end;
  return n;
}

std::vector<UndoJournal::SegmentInfo> UndoJournal::segments() const {
  std::vector<SegmentInfo> out;
  for (const Segment& s : segments_) out.push_back({s.from_seq, s.created_ns, s.end});
  return out;
}

void UndoJournal::drop_oldest_segment() {
  if (segments_.size() < 2) return;
  remove_file(segments_.front().file->path());
  sync_directory(dir_);
  while (!entries_.empty() && entries_.front().segment == dropped_) entries_.pop_front();
  segments_.pop_front();
  dropped_++;
}

namespace {

// Reads each request's bytes from `file`: at the backend's queue depth when
// there is one, one after the other otherwise.
void read_all(const File& file, const std::vector<std::span<std::byte>>& bufs, const std::vector<uint64_t>& offsets,
              IoBackend* io) {
  if (!io) {
    for (size_t i = 0; i < bufs.size(); i++) file.read_at(bufs[i], offsets[i]);
    return;
  }
  IoCompletion done[32];
  size_t next = 0, finished = 0;
  while (finished < bufs.size()) {
    while (next < bufs.size() && io->in_flight() < io->queue_depth()) {
      io->queue({IoOp::Read, file.fd(), bufs[next].data(), static_cast<uint32_t>(bufs[next].size()), offsets[next], next});
      next++;
    }
    size_t n = io->wait(done, 1);
    for (size_t k = 0; k < n; k++) {
      const size_t i = done[k].tag;
      if (done[k].result < 0) throw_errno(static_cast<int>(-done[k].result), "read " + file.path());
      if (static_cast<uint64_t>(done[k].result) != bufs[i].size())  // a short read: the rest, in place
        file.read_at(bufs[i].subspan(static_cast<size_t>(done[k].result)), offsets[i] + done[k].result);
      finished++;
    }
  }
}

}  // namespace

namespace {

// One piece of a record's before-image: bytes [start, start + bytes) of the
// replica under record `record` of the batch.
struct Piece {
  size_t record;
  uint64_t start, bytes;
  bool last;  // of its record
};

// The pieces of the batch's records not captured yet (seq > captured).
std::vector<Piece> pieces_of(std::span<const LogRecord> batch, uint64_t captured) {
  std::vector<Piece> out;
  for (size_t i = 0; i < batch.size(); i++) {
    const RecordHeader& h = batch[i].header;
    if ((h.type != HRL_REC_WRITE && h.type != HRL_REC_DISCARD) || h.seq <= captured || h.nr_sectors == 0) continue;
    const uint64_t start = h.sector * HRL_SECTOR_SIZE, end = start + uint64_t{h.nr_sectors} * HRL_SECTOR_SIZE;
    for (uint64_t at = start; at < end; at += kPieceBytes) {
      const uint64_t n = std::min(kPieceBytes, end - at);
      out.push_back({i, at, n, at + n == end});
    }
  }
  return out;
}

// What the records of the batch before `record` write in [start, start +
// bytes) goes over the replica's bytes there: the before-image of a record is
// the replica as the batch leaves it just before that record.
void overlay_earlier(std::span<const LogRecord> batch, size_t record, uint64_t start, std::span<std::byte> before) {
  for (size_t j = 0; j < record; j++) {
    const RecordHeader& e = batch[j].header;
    if (e.type != HRL_REC_WRITE && e.type != HRL_REC_DISCARD) continue;
    const uint64_t es = e.sector * HRL_SECTOR_SIZE, ee = es + uint64_t{e.nr_sectors} * HRL_SECTOR_SIZE;
    const uint64_t lo = std::max(start, es), hi = std::min(start + before.size(), ee);
    if (lo >= hi) continue;
    if (e.type == HRL_REC_WRITE)
      std::memcpy(before.data() + (lo - start), batch[j].payload.data() + (lo - es), hi - lo);
    else
      std::memset(before.data() + (lo - start), 0, hi - lo);
  }
}

}  // namespace

void UndoJournal::capture(const File& replica, std::span<const LogRecord> batch, IoBackend* io) {
  const std::vector<Piece> pieces = pieces_of(batch, last_seq());
  if (pieces.empty()) return;
  for (const Piece& p : pieces)
    if (p.start + p.bytes > replica.size())
      throw std::out_of_range("record " + std::to_string(batch[p.record].header.seq) + " is beyond " + replica.path());
  if (segments_.back().end >= segment_bytes_ && last_seq() > segments_.back().from_seq) begin_segment(last_seq());
  Segment& seg = segments_.back();
  const size_t index = dropped_ + segments_.size() - 1;
  std::vector<Entry> added;
  uint64_t at = seg.end;
  // A group of pieces at a time: read together into one buffer, appended in
  // one write. The entries count only once all are durable; a crash before
  // leaves a tail that load() cuts back to the last whole record.
  AlignedBuffer group_buf;
  std::vector<std::byte> out;
  // What a failed capture wrote past the end goes again (best effort): a full
  // file system gets its room back, and no stale tail stays in a segment.
  struct CutBack {
    const Segment& seg;
    bool done = false;
    ~CutBack() {
      if (done) return;
      try {
        truncate_file(*seg.file, seg.end);
      } catch (const std::exception&) {  // load() cuts a stale tail of the newest segment anyway
      }
    }
  } cut_back{seg};
  for (size_t first = 0; first < pieces.size();) {
    size_t end = first;
    uint64_t group = 0;
    while (end < pieces.size() && (end == first || group + pieces[end].bytes <= kGroupBytes)) group += pieces[end++].bytes;
    if (group_buf.size() < group) group_buf = AlignedBuffer(group);
    std::vector<std::span<std::byte>> images;
    std::vector<uint64_t> offsets;
    for (size_t k = first, pos = 0; k < end; pos += pieces[k++].bytes) {
      images.push_back(group_buf.span().subspan(pos, pieces[k].bytes));
      offsets.push_back(pieces[k].start);
    }
    read_all(replica, images, offsets, io);
    out.clear();
    for (size_t k = first; k < end; k++) {
      const Piece& p = pieces[k];
      const RecordHeader& h = batch[p.record].header;
      std::span<std::byte> before = images[k - first];
      overlay_earlier(batch, p.record, p.start, before);
      const bool zero = all_zero(before);
      const uint64_t stored = zero ? 0 : p.bytes;
      RawEntry e{};
      e.magic = htole32(kEntryMagic);
      e.sectors = htole32(static_cast<uint32_t>(p.bytes / HRL_SECTOR_SIZE));
      e.seq = htole64(h.seq);
      e.sector = htole64(p.start / HRL_SECTOR_SIZE);
      e.image_csum = htole64(XXH64(before.data(), stored, 0));
      e.flags = htole32((p.last ? 0 : kEntryContinued) | (zero ? kEntryZero : 0));
      e.header_csum = htole64(XXH64(&e, 56, 0));
      const size_t base = out.size();
      out.resize(base + kEntryHeader + stored);
      std::memcpy(out.data() + base, &e, sizeof e);
      std::memcpy(out.data() + base + kEntryHeader, before.data(), stored);
      added.push_back({h.seq, p.start / HRL_SECTOR_SIZE, static_cast<uint32_t>(p.bytes / HRL_SECTOR_SIZE),
                       at + kEntryHeader, index, zero});
      at += kEntryHeader + stored;
    }
    seg.file->write_at(out, at - out.size());
    first = end;
  }
  seg.file->datasync();  // before the replica changes
  cut_back.done = true;
  seg.end = at;
  entries_.insert(entries_.end(), added.begin(), added.end());
}

std::vector<UndoJournal::Undo> UndoJournal::plan_back_to(uint64_t target) const {
  if (target < from_seq())
    throw std::runtime_error("undo: cannot go back to seq " + std::to_string(target) + "; the history kept begins at seq " +
                             std::to_string(from_seq()));
  std::vector<Undo> plan;
  for (auto it = entries_.rbegin(); it != entries_.rend() && it->seq > target; ++it)
    plan.push_back({segments_[it->segment - dropped_].file, it->offset, it->seq, it->sector, it->sectors, it->zero});
  return plan;
}

namespace {

// Calls gap(a, b) for each part of [start, end) that `done` (disjoint byte
// ranges, start -> end) does not cover, then adds [start, end) to it.
template <typename Gap>
void cover(std::map<uint64_t, uint64_t>& done, uint64_t start, uint64_t end, Gap gap) {
  auto it = done.upper_bound(start);
  if (it != done.begin() && std::prev(it)->second >= start) --it;  // reaches into [start, end)
  uint64_t pos = start, lo = start, hi = end;
  while (it != done.end() && it->first <= end) {
    if (it->first > pos) gap(pos, it->first);
    pos = std::max(pos, it->second);
    lo = std::min(lo, it->first);
    hi = std::max(hi, it->second);
    it = done.erase(it);
  }
  if (pos < end) gap(pos, end);
  done[lo] = hi;
}

}  // namespace

uint64_t UndoJournal::apply(const std::vector<Undo>& plan, const File& image) {
  // A byte's value at the target is the before-image of the oldest record
  // after it that wrote there. Oldest first, a byte already restored is
  // skipped: an hour of rewrites of a hot set costs one pass over what it
  // touched, not one per rewrite.
  std::map<uint64_t, uint64_t> done;
  AlignedBuffer bytes;  // the image may be O_DIRECT
  uint64_t written = 0;
  for (auto u = plan.rbegin(); u != plan.rend(); ++u) {
    const uint64_t start = u->sector * HRL_SECTOR_SIZE;
    cover(done, start, start + uint64_t{u->sectors} * HRL_SECTOR_SIZE, [&](uint64_t a, uint64_t b) {
      for (uint64_t pos = a; pos < b;) {  // a piece at a time: a gap can be a whole volume long
        const uint64_t n = std::min(b - pos, kPieceBytes);
        if (bytes.size() < n) bytes = AlignedBuffer(n);
        std::span<std::byte> part(bytes.data(), n);
        if (u->zero)
          std::memset(part.data(), 0, n);
        else
          u->segment->read_at(part, u->offset + (pos - start));
        image.write_at(part, pos);
        pos += n;
      }
      written += b - a;
    });
  }
  image.datasync();
  return written;
}

void UndoJournal::roll_back(const File& image, uint64_t at, uint64_t target) const {
  // Records after last_seq() that the image holds carried no data (MARK, PAD, flushes).
  if (target > at)
    throw std::runtime_error("undo: cannot go from seq " + std::to_string(at) + " forward to " + std::to_string(target));
  std::vector<Undo> plan = plan_back_to(target);
  std::erase_if(plan, [at](const Undo& u) { return u.seq > at; });
  apply(plan, image);
}

void UndoJournal::reset(uint64_t start_seq) {
  // The new, empty history is made beside the old one, then the two swap in
  // one rename: a crash leaves one or the other, never a mix. Until the
  // rename, a failure leaves this object on the old history.
  const std::string fresh = dir_ + ".new";
  fs::remove_all(fresh);
  fs::create_directories(fresh);
  Segment seg = write_segment(fresh, start_seq);
  if (env().rename(fresh, dir_, RENAME_EXCHANGE) < 0) throw_errno(errno, "swap " + fresh + " with " + dir_);
  // The same file, under its name in the live directory.
  seg.file = std::make_shared<File>(File::open(dir_ + "/" + segment_name(start_seq), O_RDWR));
  segments_.clear();
  entries_.clear();
  dropped_ = 0;
  segments_.push_back(std::move(seg));
  sync_directory(fs::path(dir_).parent_path().string());
  fs::remove_all(fresh);  // the old history now
}

}  // namespace hrl
