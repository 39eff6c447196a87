#include "log/log_reader.h"

#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace hrl {

// A chunk of the window. The stream is the sequence of ring bytes in the
// order a reader walks them: it runs to the end of the ring, then on from
// ring offset 0. A record never crosses the end of the ring (a PAD fills it),
// so a record's bytes are contiguous in the stream.
struct LogReader::Slot {
  enum State { Free, Reading, Ready } state = Free;
  uint64_t stream = 0;  // stream offset of the first byte
  uint32_t len = 0;
};

std::string ReadResult::describe() const {
  std::string what = status == ReadStatus::Corrupt ? "corrupt record" : "end of valid data";
  return what + " at seq " + std::to_string(at.seq) + ", ring offset " + std::to_string(at.ring_pos) + " (" +
         verdict_name(verdict) + (detail.empty() ? "" : ": " + detail) + ")";
}

LogReader::LogReader(const std::string& log_path, LogReaderOptions options)
    : log_(File::open_direct(log_path, O_RDONLY)), sb_(read_superblock(log_)), opt_(options) {
  if (log_.size() < sb_.log_bytes_needed())
    throw std::runtime_error(log_path + ": log device is " + std::to_string(log_.size()) +
                             " bytes, its superblock needs " + std::to_string(sb_.log_bytes_needed()));
  opt_.chunk_bytes = std::max<uint32_t>(HRL_LOG_BLOCK, opt_.chunk_bytes / HRL_LOG_BLOCK * HRL_LOG_BLOCK);
  opt_.chunk_bytes = static_cast<uint32_t>(std::min<uint64_t>(opt_.chunk_bytes, sb_.ring_bytes));
  opt_.queue_depth = std::max(2u, opt_.queue_depth);
  opt_.window_chunks = std::max(opt_.queue_depth, opt_.window_chunks);
  io_ = make_io_backend(opt_.backend, opt_.queue_depth);
  window_ = AlignedBuffer(static_cast<size_t>(opt_.chunk_bytes) * opt_.window_chunks);
  bounce_ = AlignedBuffer(hrl_record_span(sb_.max_payload));
  slots_.resize(opt_.window_chunks);
  pos_ = {sb_.tail_seq, sb_.tail_offset};
}

LogReader::~LogReader() {
  try {
    while (io_ && io_->in_flight()) reap(true);  // the kernel must not write into freed memory
  } catch (...) {
  }
}

LogPosition LogReader::position() const {
  if (!pending_span_) return pos_;
  return {pos_.seq + 1, (pos_.ring_pos + pending_span_) % sb_.ring_bytes};
}

void LogReader::seek(LogPosition pos) {
  if (pos.ring_pos >= sb_.ring_bytes || pos.ring_pos % HRL_SECTOR_SIZE)
    throw std::invalid_argument("seek: ring offset " + std::to_string(pos.ring_pos) + " is not a record boundary");
  pos_ = pos;
  pending_span_ = 0;
  need_reset_ = true;
}

void LogReader::refresh() {
  Superblock fresh = read_superblock(log_);
  if (fresh.uuid != sb_.uuid || fresh.ring_bytes != sb_.ring_bytes || fresh.ring_offset != sb_.ring_offset)
    throw std::runtime_error(log_.path() + ": the log was formatted again while being read");
  sb_ = fresh;
}

void LogReader::reset_window() {
  while (io_->in_flight()) reap(true);
  for (auto& s : slots_) s.state = Slot::Free;
  first_ = used_ = 0;
  uint64_t aligned = pos_.ring_pos / HRL_LOG_BLOCK * HRL_LOG_BLOCK;
  read_ring_ = aligned;
  read_stream_ = 0;
  pos_stream_ = pos_.ring_pos - aligned;
  need_reset_ = false;
}

void LogReader::fill_window() {
  while (used_ < slots_.size() && io_->in_flight() < io_->queue_depth()) {
    unsigned i = (first_ + used_) % static_cast<unsigned>(slots_.size());
    Slot& s = slots_[i];
    s.len = static_cast<uint32_t>(std::min<uint64_t>(opt_.chunk_bytes, sb_.ring_bytes - read_ring_));
    s.stream = read_stream_;
    s.state = Slot::Reading;
    io_->queue({IoOp::Read, log_.fd(), window_.data() + static_cast<size_t>(i) * opt_.chunk_bytes, s.len,
                sb_.ring_offset + read_ring_, i});
    read_stream_ += s.len;
    read_ring_ += s.len;
    if (read_ring_ == sb_.ring_bytes) read_ring_ = 0;
    used_++;
  }
  io_->submit();
}

void LogReader::reap(bool block) {
  IoCompletion done[64];
  size_t n = io_->wait(done, block ? 1 : 0);
  for (size_t k = 0; k < n; k++) {
    Slot& s = slots_[done[k].tag];
    if (done[k].result < 0) throw_errno(static_cast<int>(-done[k].result), "read " + log_.path());
    if (done[k].result != s.len)
      throw std::runtime_error(log_.path() + ": short read in the ring at stream offset " + std::to_string(s.stream));
    s.state = Slot::Ready;
  }
}

unsigned LogReader::release_consumed() {
  unsigned released = 0;
  while (used_ > 0) {
    Slot& s = slots_[first_];
    if (s.state != Slot::Ready || s.stream + s.len > pos_stream_) break;
    s.state = Slot::Free;
    first_ = (first_ + 1) % static_cast<unsigned>(slots_.size());
    used_--;
    released++;
  }
  return released;
}

// Returns the stream bytes [stream_pos, stream_pos + len), waiting for their
// reads; copies them to the bounce buffer if they wrap around the window.
std::span<const std::byte> LogReader::bytes_at(uint64_t stream_pos, uint64_t len) {
  const uint64_t chunk = opt_.chunk_bytes;
  const unsigned n = static_cast<unsigned>(slots_.size());
  unsigned k = 0;  // slots from first_
  while (k < used_ && slots_[(first_ + k) % n].stream + slots_[(first_ + k) % n].len <= stream_pos) k++;
  unsigned start = (first_ + k) % n;
  uint64_t end = stream_pos + len;
  for (unsigned j = k;; j++) {
    while (j >= used_) {  // the record's later chunks are not being read yet
      if (used_ == slots_.size()) throw std::logic_error("LogReader: record larger than the read window");
      reap(true);
      fill_window();
    }
    Slot& s = slots_[(first_ + j) % n];
    while (s.state != Slot::Ready) {
      reap(true);
      fill_window();  // keep the queue full while the front read is slow
    }
    if (s.stream + s.len >= end) {
      const std::byte* base = window_.data() + start * chunk + (stream_pos - slots_[start].stream);
      if (start + (j - k) < n) return {base, len};  // contiguous in memory
      // The record wraps from the last slot to the first: gather it.
      uint64_t done = 0;
      for (unsigned m = k; m <= j; m++) {
        const Slot& t = slots_[(first_ + m) % n];
        uint64_t from = std::max(stream_pos, t.stream), to = std::min(end, t.stream + t.len);
        std::memcpy(bounce_.data() + done, window_.data() + ((first_ + m) % n) * chunk + (from - t.stream), to - from);
        done += to - from;
      }
      return {bounce_.data(), len};
    }
  }
}

ReadResult LogReader::stop(RecordVerdict v, std::string detail) {
  ReadResult r;
  // A record the superblock says was written, or one whose checksums hold
  // but whose fields are impossible, cannot be the tail of a crash: corruption.
  bool corrupt = v == RecordVerdict::Malformed || pos_.seq < sb_.head_seq;
  r.status = corrupt ? ReadStatus::Corrupt : ReadStatus::End;
  r.verdict = v;
  r.at = pos_;
  r.detail = std::move(detail);
  need_reset_ = true;  // the next call reads this position afresh
  return r;
}

bool LogReader::peek() {
  LogPosition at = position();
  uint64_t block = at.ring_pos / HRL_LOG_BLOCK * HRL_LOG_BLOCK;
  AlignedBuffer buf(HRL_LOG_BLOCK);
  log_.read_at(buf.span(), sb_.ring_offset + block);
  RecordHeader h;
  auto unit = buf.span().subspan(at.ring_pos - block, HRL_SECTOR_SIZE);
  return decode_record_header(unit, sb_.csum_seed(), h) == RecordVerdict::Valid &&
         check_record_in_log(h, sb_, at.ring_pos, at.seq) == RecordVerdict::Valid;
}

ReadResult LogReader::next(LogRecord& rec) {
  if (pending_span_) {
    pos_.seq++;
    pos_.ring_pos += pending_span_;
    if (pos_.ring_pos == sb_.ring_bytes) pos_.ring_pos = 0;
    pos_stream_ += pending_span_;
    pending_span_ = 0;
  }
  if (need_reset_) reset_window();
  // Once per chunk consumed, collect the reads that finished meanwhile, so
  // their places in the queue go to new reads without waiting for a stall.
  if (release_consumed()) reap(false);
  fill_window();

  std::string why;
  RecordHeader h;
  auto unit = bytes_at(pos_stream_, HRL_SECTOR_SIZE);
  RecordVerdict v = decode_record_header(unit, sb_.csum_seed(), h, &why);
  if (v == RecordVerdict::Valid) v = check_record_in_log(h, sb_, pos_.ring_pos, pos_.seq, &why);
  if (v != RecordVerdict::Valid) return stop(v, why);

  std::span<const std::byte> payload;
  if (h.type != HRL_REC_PAD && h.payload_bytes) {
    payload = bytes_at(pos_stream_ + HRL_SECTOR_SIZE, h.payload_bytes);
    if (payload_checksum(payload, sb_.csum_seed()) != h.payload_csum)
      return stop(RecordVerdict::Torn, "payload checksum mismatch");
  }
  rec.header = h;
  rec.ring_pos = pos_.ring_pos;
  rec.payload = payload;
  pending_span_ = h.span();
  ReadResult r;
  r.status = ReadStatus::Record;
  r.at = pos_;
  return r;
}

}  // namespace hrl
