#include "log/log_writer.h"

#include "log/activity_log.h"

#include <fcntl.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "log/log_reader.h"
#include "log/record.h"

namespace hrl {

const char* mode_name(TrackingMode m) {
  switch (m) {
    case TrackingMode::Journal: return "journal";
    case TrackingMode::Bitmap: return "bitmap";
    case TrackingMode::ResyncRequired: return "resync-required";
  }
  return "?";
}


LogWriter::LogWriter(const std::string& log_path, const std::string& data_path)
    : log_(File::open(log_path, O_RDWR)), data_(File::open(data_path, O_RDWR)), sb_(read_superblock(log_)) {
  if (log_.size() < sb_.log_bytes_needed())
    throw std::runtime_error(log_path + ": log device is " + std::to_string(log_.size()) +
                             " bytes, its superblock needs " + std::to_string(sb_.log_bytes_needed()));
  if (data_.size() < sb_.data_sectors * HRL_SECTOR_SIZE)
    throw std::runtime_error(data_path + ": data device is " + std::to_string(data_.size()) + " bytes, the log (volume " +
                             uuid_string(sb_.uuid) + ") tracks " + std::to_string(sb_.data_sectors * HRL_SECTOR_SIZE));
  const bool unclean = !sb_.has(HRL_SB_CLEAN);
  dirty_ = DirtyBitmap(sb_.data_sectors, sb_.bitmap_block);
  resync_ = DirtyBitmap(sb_.data_sectors, sb_.bitmap_block);
  bool bitmaps_ok = load_bitmap_area(log_, sb_.bitmap_offset, sb_.bitmap_bytes, sb_.bitmap_csum, sb_.csum_seed(), dirty_) &&
                    load_bitmap_area(log_, sb_.resync_offset, sb_.bitmap_bytes, sb_.resync_csum, sb_.csum_seed(), resync_);
  if (unclean) set_resync_required(HRL_REASON_UNCLEAN_SHUTDOWN);
  if (!bitmaps_ok) {
    dirty_.clear();
    resync_.clear();
    set_resync_required(HRL_REASON_BITMAP_LOST);
  }
  recover_ring(unclean);
  sb_.flags &= ~HRL_SB_CLEAN;
  // This writer keeps no activity log: should it crash, dm-hrl loading the
  // log must not trust a list an earlier run of the target left.
  write_activity_log_all(log_, sb_);
  persist_bitmaps();
  persist_superblock();
}

// Finds the head by reading the ring from the tail, and rebuilds the list of
// records that ack() releases. After a crash, zeroes the ring past the head so
// that no record of the crashed run can follow the new ones (HRL_MAX_INFLIGHT_BYTES).
void LogWriter::recover_ring(bool unclean) {
  LogReader reader(log_.path());
  LogRecord rec;
  ReadResult r;
  while ((r = reader.next(rec)).status == ReadStatus::Record) {
    ring_.push_back({rec.header.seq, rec.header.span()});
    used_ += rec.header.span();
  }
  if (r.status == ReadStatus::Corrupt) {
    unclean = true;
    set_resync_required(HRL_REASON_LOG_CORRUPT);
  }
  sb_.head_seq = r.at.seq;
  sb_.head_offset = r.at.ring_pos;
  if (!unclean) return;
  uint64_t left = std::min<uint64_t>(HRL_MAX_INFLIGHT_BYTES, sb_.ring_bytes - used_);
  std::vector<std::byte> zeros(std::min<uint64_t>(left, 1u << 20));
  for (uint64_t pos = sb_.head_offset; left > 0;) {
    uint64_t n = std::min<uint64_t>({left, zeros.size(), sb_.ring_bytes - pos});
    log_.write_at({zeros.data(), n}, sb_.ring_offset + pos);
    left -= n;
    pos = (pos + n) % sb_.ring_bytes;
  }
}

void LogWriter::check_range(uint64_t sector, uint64_t nr_sectors) const {
  if (sector > sb_.data_sectors || nr_sectors > sb_.data_sectors - sector)
    throw std::out_of_range("I/O at sector " + std::to_string(sector) + " +" + std::to_string(nr_sectors) +
                            " is beyond the data device (" + std::to_string(sb_.data_sectors) + " sectors)");
}

void LogWriter::set_resync_required(uint32_t reason) {
  if (!sb_.has(HRL_SB_RESYNC_REQUIRED)) sb_.resync_reason = reason;
  sb_.flags |= HRL_SB_RESYNC_REQUIRED;
}

void LogWriter::write_record(uint64_t pos, uint16_t type, uint16_t flags, uint64_t sector, uint32_t nr_sectors,
                             std::span<const std::byte> payload) {
  RecordHeader h;
  h.type = type;
  h.flags = flags;
  h.seq = sb_.head_seq;
  h.generation = sb_.generation;
  h.sector = sector;
  h.nr_sectors = nr_sectors;
  h.timestamp_ns = now_realtime_ns();
  if (type == HRL_REC_PAD) {
    h.payload_bytes = static_cast<uint32_t>(sb_.ring_bytes - pos - HRL_SECTOR_SIZE);
    std::byte unit[HRL_SECTOR_SIZE];
    encode_record_header(h, sb_.csum_seed(), unit);
    log_.write_at(unit, sb_.ring_offset + pos);  // a PAD's payload is never read
    return;
  }
  h.payload_bytes = static_cast<uint32_t>(payload.size());
  h.payload_csum = payload_checksum(payload, sb_.csum_seed());
  // One contiguous write: header unit, payload, zeros to the sector boundary.
  std::vector<std::byte> buf(h.span(), std::byte{0});
  encode_record_header(h, sb_.csum_seed(), buf);
  std::memcpy(buf.data() + HRL_SECTOR_SIZE, payload.data(), payload.size());
  log_.write_at(buf, sb_.ring_offset + pos);
}

// Appends a record at the head, after a PAD when it would cross the end of
// the ring. Returns false, writing nothing, when the ring has no room.
bool LogWriter::append(uint16_t type, uint16_t flags, uint64_t sector, uint32_t nr_sectors,
                       std::span<const std::byte> payload, uint64_t& seq_out) {
  const uint64_t span = hrl_record_span(static_cast<uint32_t>(payload.size()));
  const uint64_t pad = sb_.head_offset + span > sb_.ring_bytes ? sb_.ring_bytes - sb_.head_offset : 0;
  if (used_ + pad + span > sb_.ring_bytes && !(refresh_acknowledged() && used_ + pad + span <= sb_.ring_bytes))
    return false;
  // Never more than HRL_MAX_INFLIGHT_BYTES of records past what a sync made
  // durable: after a power loss the load's zeroing covers all of them.
  if (unsynced_bytes_ + pad + span > HRL_MAX_INFLIGHT_BYTES) {
    log_.datasync();
    unsynced_bytes_ = 0;
  }
  unsynced_bytes_ += pad + span;
  if (pad) {
    write_record(sb_.head_offset, HRL_REC_PAD, 0, 0, 0, {});
    ring_.push_back({sb_.head_seq++, pad});
    used_ += pad;
    sb_.head_offset = 0;
  }
  write_record(sb_.head_offset, type, flags, sector, nr_sectors, payload);
  ring_.push_back({sb_.head_seq, span});
  used_ += span;
  seq_out = sb_.head_seq++;
  sb_.head_offset = (sb_.head_offset + span) % sb_.ring_bytes;
  return true;
}

void LogWriter::enter_bitmap_mode() {
  sb_.flags |= HRL_SB_BITMAP_MODE;
  if (!sb_.has(HRL_SB_RESYNC_REQUIRED)) sb_.resync_reason = HRL_REASON_RING_OVERFLOW;
  persist_superblock();
}

bool LogWriter::has_room() const { return sb_.ring_bytes - used_ >= sb_.ring_bytes / 4; }

void LogWriter::maybe_leave_bitmap_mode() {
  if (!sb_.has(HRL_SB_BITMAP_MODE) || !dirty_.empty() || !has_room()) return;
  sb_.flags &= ~HRL_SB_BITMAP_MODE;
  if (!sb_.has(HRL_SB_RESYNC_REQUIRED)) sb_.resync_reason = HRL_REASON_NONE;
}

uint64_t LogWriter::write(uint64_t sector, std::span<const std::byte> data, uint16_t flags) {
  if (data.size() % HRL_SECTOR_SIZE) throw std::invalid_argument("write length is not a whole number of sectors");
  if (data.empty()) throw std::invalid_argument("empty write (use flush_barrier for an empty flush)");
  check_range(sector, data.size() / HRL_SECTOR_SIZE);
  if (flags & HRL_REC_FLUSH) {  // REQ_PREFLUSH: everything before is durable first
    data_.datasync();
    log_.datasync();
  }
  uint64_t last = 0;
  // The copy taken here is what reaches both devices (invariant 3).
  std::vector<std::byte> copy;
  for (size_t done = 0; done < data.size();) {
    size_t n = std::min<size_t>(data.size() - done, sb_.max_payload);
    copy.assign(data.begin() + static_cast<ptrdiff_t>(done), data.begin() + static_cast<ptrdiff_t>(done + n));
    uint64_t at = sector + done / HRL_SECTOR_SIZE;
    uint32_t nr = static_cast<uint32_t>(n / HRL_SECTOR_SIZE);
    data_.write_at(copy, at * HRL_SECTOR_SIZE);
    uint16_t piece_flags = static_cast<uint16_t>((done == 0 ? flags & HRL_REC_FLUSH : 0) |
                                                 (done + n == data.size() ? flags & HRL_REC_FUA : 0));
    uint64_t seq = 0;
    if (sb_.has(HRL_SB_BITMAP_MODE) || !append(HRL_REC_WRITE, piece_flags, at, nr, copy, seq)) {
      if (!sb_.has(HRL_SB_BITMAP_MODE)) enter_bitmap_mode();
      dirty_.set_sectors(at, nr);
      dirty_changed_ = true;
      seq = 0;
    }
    last = seq;
    done += n;
  }
  if (flags & HRL_REC_FUA) {
    data_.datasync();
    log_.datasync();
  }
  return last;
}

uint64_t LogWriter::flush_barrier() {
  data_.datasync();
  log_.datasync();
  uint64_t seq = 0;
  if (!sb_.has(HRL_SB_BITMAP_MODE) && !append(HRL_REC_WRITE, HRL_REC_FLUSH, 0, 0, {}, seq)) enter_bitmap_mode();
  return seq;
}

uint64_t LogWriter::discard(uint64_t sector, uint32_t nr_sectors) {
  if (nr_sectors == 0) throw std::invalid_argument("empty discard");
  check_range(sector, nr_sectors);
  // The range reads back as zeros afterwards, which is what a replica
  // applies for a DISCARD.
  data_.zero_range(sector * HRL_SECTOR_SIZE, uint64_t{nr_sectors} * HRL_SECTOR_SIZE);
  uint64_t seq = 0;
  if (sb_.has(HRL_SB_BITMAP_MODE) || !append(HRL_REC_DISCARD, 0, sector, nr_sectors, {}, seq)) {
    if (!sb_.has(HRL_SB_BITMAP_MODE)) enter_bitmap_mode();
    dirty_.set_sectors(sector, nr_sectors);
    dirty_changed_ = true;
    seq = 0;
  }
  return seq;
}

uint64_t LogWriter::mark(std::string_view name) {
  if (name.empty() || name.size() > HRL_MARK_NAME_MAX)
    throw std::invalid_argument("mark name must be 1 to " + std::to_string(HRL_MARK_NAME_MAX) + " bytes");
  if (sb_.has(HRL_SB_BITMAP_MODE))
    throw std::runtime_error("cannot mark '" + std::string(name) + "': the log is in bitmap mode");
  uint64_t seq = 0;
  if (!append(HRL_REC_MARK, 0, 0, 0, std::as_bytes(std::span(name.data(), name.size())), seq))
    throw std::runtime_error("cannot mark '" + std::string(name) + "': the ring is full");
  return seq;
}

void LogWriter::ack(uint64_t seq) {
  if (seq >= sb_.head_seq)
    throw std::invalid_argument("ack " + std::to_string(seq) + " is beyond the head (next seq " +
                                std::to_string(sb_.head_seq) + ")");
  if (seq < sb_.tail_seq) return;  // already released
  release_through(seq);
  maybe_leave_bitmap_mode();
  persist_superblock();
}

void LogWriter::release_through(uint64_t seq) {
  while (!ring_.empty() && ring_.front().seq <= seq) {
    used_ -= ring_.front().span;
    sb_.tail_offset = (sb_.tail_offset + ring_.front().span) % sb_.ring_bytes;
    sb_.tail_seq = ring_.front().seq + 1;
    ring_.pop_front();
  }
}

// Takes a tail that a consumer moved on disk. Caller holds the SuperblockLock.
bool LogWriter::adopt_acknowledged(const Superblock& disk) {
  if (disk.tail_seq <= sb_.tail_seq) return false;
  if (disk.tail_seq > sb_.head_seq)
    throw std::runtime_error(log_.path() + ": acknowledged seq " + std::to_string(disk.tail_seq - 1) +
                             " was never written (next seq " + std::to_string(sb_.head_seq) + ")");
  release_through(disk.tail_seq - 1);
  if (sb_.tail_offset != disk.tail_offset)
    throw std::runtime_error(log_.path() + ": acknowledged tail at ring offset " + std::to_string(disk.tail_offset) +
                             " is not where record " + std::to_string(disk.tail_seq) + " starts (" +
                             std::to_string(sb_.tail_offset) + ")");
  maybe_leave_bitmap_mode();
  return true;
}

bool LogWriter::refresh_acknowledged() {
  SuperblockLock lock(log_);
  return adopt_acknowledged(read_superblock(log_));
}

DirtyBitmap LogWriter::take_bitmap() {
  if (!sb_.has(HRL_SB_RESYNC_PENDING)) resync_.clear();
  resync_.merge(dirty_);
  if (sb_.has(HRL_SB_RESYNC_REQUIRED)) {
    resync_.set_all();
    sb_.flags &= ~HRL_SB_RESYNC_REQUIRED;
    sb_.resync_reason = sb_.has(HRL_SB_BITMAP_MODE) ? HRL_REASON_RING_OVERFLOW : HRL_REASON_NONE;
  }
  dirty_.clear();
  sb_.flags |= HRL_SB_RESYNC_PENDING;
  sb_.resync_take_seq = sb_.head_seq;
  maybe_leave_bitmap_mode();
  dirty_changed_ = resync_changed_ = true;
  persist_bitmaps();
  persist_superblock();
  return resync_;
}

void LogWriter::end_resync() {
  if (!sb_.has(HRL_SB_RESYNC_PENDING)) throw std::logic_error("end_resync: no resync was taken");
  resync_.clear();
  sb_.flags &= ~HRL_SB_RESYNC_PENDING;
  sb_.resync_take_seq = 0;
  resync_changed_ = true;
  persist_bitmaps();
  persist_superblock();
}

void LogWriter::persist_bitmaps() {
  if (dirty_changed_) {
    sb_.bitmap_csum = store_bitmap_area(log_, sb_.bitmap_offset, sb_.bitmap_bytes, sb_.csum_seed(), dirty_);
    sb_.dirty_bits = dirty_.count();
    dirty_changed_ = false;
  }
  if (resync_changed_) {
    sb_.resync_csum = store_bitmap_area(log_, sb_.resync_offset, sb_.bitmap_bytes, sb_.csum_seed(), resync_);
    sb_.resync_bits = resync_.count();
    resync_changed_ = false;
  }
}

// The ring and bitmaps become durable before a superblock that describes
// them. A consumer may have moved the tail on disk meanwhile: keep its acks.
void LogWriter::persist_superblock() {
  log_.datasync();
  SuperblockLock lock(log_);
  Superblock disk = read_superblock(log_);
  adopt_acknowledged(disk);
  sb_.update_seq = std::max(sb_.update_seq, disk.update_seq);
  write_superblock(log_, sb_);
}

void LogWriter::flush() {
  data_.datasync();
  persist_bitmaps();
  persist_superblock();
}

void LogWriter::close() {
  if (closed_) return;
  flush();
  sb_.flags |= HRL_SB_CLEAN;
  persist_superblock();
  log_.close();
  data_.close();
  closed_ = true;
}

WriterStatus LogWriter::status() const {
  TrackingMode mode = sb_.has(HRL_SB_RESYNC_REQUIRED) ? TrackingMode::ResyncRequired
                      : sb_.has(HRL_SB_BITMAP_MODE)   ? TrackingMode::Bitmap
                                                      : TrackingMode::Journal;
  return {mode, sb_.head_seq, sb_.tail_seq, used_, sb_.ring_bytes, dirty_.count(), resync_.count(), sb_.resync_reason};
}

}  // namespace hrl
