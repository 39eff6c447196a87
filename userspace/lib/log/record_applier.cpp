#include "log/record_applier.h"

#include <fcntl.h>

#include <cstring>
#include <stdexcept>

namespace hrl {

RecordApplier::RecordApplier(const File& target, uint64_t data_sectors, IoBackend& io)
    : target_(target), data_sectors_(data_sectors), io_(io), inflight_(io.queue_depth()) {
  if (target.size() < data_sectors * HRL_SECTOR_SIZE)
    throw std::runtime_error(target.path() + ": target is " + std::to_string(target.size()) +
                             " bytes, smaller than the volume (" + std::to_string(data_sectors * HRL_SECTOR_SIZE) + ")");
  buffers_.reserve(io.queue_depth());
  for (unsigned i = 0; i < io.queue_depth(); i++) buffers_.emplace_back(0);
}

RecordApplier::~RecordApplier() {
  try {
    while (io_.in_flight()) reap(1);
  } catch (...) {
  }
}

void RecordApplier::reap(size_t min) {
  IoCompletion done[64];
  size_t n = io_.wait(done, min);
  for (size_t k = 0; k < n; k++) {
    Inflight& slot = inflight_[done[k].tag];
    if (done[k].result < 0) throw_errno(static_cast<int>(-done[k].result), "write " + target_.path());
    if (static_cast<uint64_t>(done[k].result) != slot.nr_sectors * HRL_SECTOR_SIZE)
      throw std::runtime_error(target_.path() + ": short write at sector " + std::to_string(slot.sector));
    slot.busy = false;
  }
}

void RecordApplier::drain() {
  while (io_.in_flight()) reap(io_.in_flight());
}

bool RecordApplier::overlaps_inflight(uint64_t sector, uint64_t nr_sectors) const {
  for (const auto& s : inflight_)
    if (s.busy && sector < s.sector + s.nr_sectors && s.sector < sector + nr_sectors) return true;
  return false;
}

unsigned RecordApplier::free_slot() {
  for (;;) {
    for (unsigned i = 0; i < inflight_.size(); i++)
      if (!inflight_[i].busy) return i;
    reap(1);
  }
}

void RecordApplier::apply(const LogRecord& rec) {
  const RecordHeader& h = rec.header;
  stats_.records++;
  if (h.type == HRL_REC_WRITE || h.type == HRL_REC_DISCARD) {
    if (h.sector > data_sectors_ || h.nr_sectors > data_sectors_ - h.sector)
      throw std::out_of_range("record " + std::to_string(h.seq) + " is beyond the target");
  }
  if (h.flags & HRL_REC_FLUSH) {  // everything before it is durable first
    drain();
    target_.datasync();
  }
  switch (h.type) {
    case HRL_REC_WRITE: {
      if (h.nr_sectors == 0) break;  // an empty flush
      while (overlaps_inflight(h.sector, h.nr_sectors)) reap(1);
      unsigned i = free_slot();
      if (buffers_[i].size() < rec.payload.size()) buffers_[i] = AlignedBuffer(rec.payload.size());
      std::memcpy(buffers_[i].data(), rec.payload.data(), rec.payload.size());
      inflight_[i] = {h.sector, h.nr_sectors, true};
      io_.queue({IoOp::Write, target_.fd(), buffers_[i].data(), h.payload_bytes, h.sector * HRL_SECTOR_SIZE, i});
      io_.submit();
      stats_.writes++;
      stats_.bytes += h.payload_bytes;
      break;
    }
    case HRL_REC_DISCARD:
      drain();
      target_.zero_range(h.sector * HRL_SECTOR_SIZE, uint64_t{h.nr_sectors} * HRL_SECTOR_SIZE);
      stats_.discards++;
      break;
    case HRL_REC_MARK:
      stats_.marks++;
      break;
    default:
      break;
  }
  if (h.flags & HRL_REC_FUA) {
    drain();
    target_.datasync();
  }
}

void RecordApplier::finish() {
  drain();
  target_.datasync();
}

}  // namespace hrl
