#include "history/history.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <system_error>

#include "log/superblock.h"

namespace hrl {

namespace {
bool no_space(const std::exception& e);
}  // namespace

History::History(std::string undo_dir, std::string catalog_path, Retention retention)
    : undo_dir_(std::move(undo_dir)), retention_(retention), catalog_(catalog_path) {}

void History::open(const std::array<uint8_t, 16>& uuid, uint64_t durable_seq) {
  std::lock_guard lock(mu_);
  if (!journal_) journal_.emplace(undo_dir_, uuid, durable_seq, retention_.segment_bytes);
  catalog_.drop_before(journal_->from_seq());
}

size_t History::begin_session(uint64_t durable_seq, bool gap) {
  std::lock_guard lock(mu_);
  journal();
  catalog_.drop_after(durable_seq);
  if (!gap) return 0;
  const size_t dropped = catalog_.list().size();
  catalog_.drop_before(UINT64_MAX);
  return dropped;
}

UndoJournal& History::journal() {
  if (!journal_) throw std::runtime_error("the history is not open: the replica follows no volume yet");
  return *journal_;
}

namespace {

// What the before-images of the batch's WRITE records take, at most; a
// DISCARD's are mostly zeros, stored as nothing (a full disk while they are
// written is handled as it happens).
uint64_t write_bytes(std::span<const LogRecord> batch) {
  uint64_t n = 0;
  for (const LogRecord& r : batch) {
    n += 512;
    if (r.header.type == HRL_REC_WRITE) n += uint64_t{r.header.nr_sectors} * 512;
  }
  return n;
}

bool no_space(const std::exception& e) {
  auto* se = dynamic_cast<const std::system_error*>(&e);
  return se && (se->code().value() == ENOSPC || se->code().value() == EDQUOT);
}

}  // namespace

namespace {

// The reserve: the larger of a size and a fraction of the file system.
uint64_t reserve_of(const Retention& r, const struct statvfs& fs) {
  const auto fraction = static_cast<uint64_t>(r.reserve_fraction * static_cast<double>(fs.f_blocks * fs.f_frsize));
  return std::max(r.reserve_bytes, fraction);
}

}  // namespace

struct statvfs History::file_system() const {
  struct statvfs fs;
  if (::statvfs(undo_dir_.c_str(), &fs) < 0) throw_errno(errno, "statvfs " + undo_dir_);
  return fs;
}

uint64_t History::reserve() const { return reserve_of(retention_, file_system()); }

bool History::has_room(uint64_t needed) const {
  const struct statvfs fs = file_system();
  return uint64_t{fs.f_bavail} * fs.f_frsize >= reserve_of(retention_, fs) + needed;
}

void History::say(const std::string& line) const {
  if (log_) log_(line);
}

void History::set_log(std::function<void(const std::string&)> log) {
  std::lock_guard lock(mu_);
  log_ = std::move(log);
}

HistorySpace History::space() const {
  std::lock_guard lock(mu_);
  return space_;
}

bool History::drop_for_space() {
  auto segs = journal_->segments();
  if (segs.size() < 2 || (!pins_.empty() && segs[1].from_seq > *pins_.begin())) return false;
  journal_->drop_oldest_segment();
  const size_t points = catalog_.drop_before(journal_->from_seq());
  space_.dropped_segments++;
  space_.dropped_points += points;
  say("history: its file system keeps less than " + std::to_string(reserve() >> 20) +
      " MiB free: the oldest segment goes (history now begins at seq " + std::to_string(journal_->from_seq()) + ", " +
      std::to_string(points) + " points dropped)");
  return true;
}

// Unlike retention, suspension does not wait for pins: replication must go
// on. An image whose plan is taken already completes (the plan holds its
// segments open); one still copying the replica fails with a clear error
// when it asks for its plan, as its point is gone.
void History::suspend(uint64_t boundary, const std::string& why) {
  const size_t points = catalog_.drop_before(UINT64_MAX);
  try {
    restart_locked(boundary);  // frees what the journal held
  } catch (const std::exception&) {  // no room even for that: the old journal stays, unused
    epoch_++;
  }
  space_.suspended = true;
  space_.suspensions++;
  space_.dropped_points += points;
  say("history suspended: " + why + "; replication goes on without before-images (" + std::to_string(points) +
      " points dropped); it starts again once there is room");
}

bool History::capture(const File& replica, std::span<const LogRecord> batch, IoBackend* io) {
  std::lock_guard lock(mu_);
  UndoJournal& j = journal();
  if (space_.suspended) return false;
  const uint64_t needed = write_bytes(batch);
  const uint64_t boundary = j.last_seq();
  while (!has_room(needed))
    if (!drop_for_space()) {
      suspend(boundary, "its file system keeps less than " + std::to_string(reserve() >> 20) + " MiB free");
      return false;
    }
  for (;;) {
    try {
      j.capture(replica, batch, io);
      return true;
    } catch (const std::exception& e) {
      if (!no_space(e)) throw;
      if (!drop_for_space()) {
        suspend(boundary, e.what());
        return false;
      }
    }
  }
}

bool History::start_over(uint64_t seq) {
  std::lock_guard lock(mu_);
  if (space_.suspended && !has_room(2 * retention_.segment_bytes)) return false;
  try {
    restart_locked(seq);
  } catch (const std::exception& e) {
    if (!no_space(e)) throw;
    return false;
  }
  catalog_.drop_before(UINT64_MAX);
  if (space_.suspended) say("history starts again at seq " + std::to_string(seq) + ": its file system has room");
  space_.suspended = false;
  return true;
}

void History::add_point(uint64_t seq, PointKind kind, const std::string& name) {
  std::lock_guard lock(mu_);
  catalog_.add(seq, kind, name, now_realtime_ns());
}

void History::restart_locked(uint64_t start_seq) {
  journal().reset(start_seq);
  epoch_++;
}

void History::restart(uint64_t start_seq) {
  std::lock_guard lock(mu_);
  restart_locked(start_seq);
  catalog_.drop_before(start_seq + 1);  // the image at start_seq was before the pass: gone too
}

void History::clear(uint64_t start_seq) {
  std::lock_guard lock(mu_);
  restart_locked(start_seq);
  catalog_.drop_before(UINT64_MAX);
}

void History::forget_after(uint64_t seq) {
  std::lock_guard lock(mu_);
  // The journal's entries after seq may stay: their before-images, applied
  // to the replica now at seq, write what it already holds.
  catalog_.drop_after(seq);
}

void History::prune(uint64_t now_ns) {
  std::lock_guard lock(mu_);
  const auto age_ns = static_cast<uint64_t>(retention_.max_age_seconds * 1e9);
  if (age_ns && now_ns > age_ns) catalog_.drop_created_before(now_ns - age_ns);
  if (!journal_) return;
  auto kept = catalog_.list();
  const uint64_t oldest_point = kept.empty() ? UINT64_MAX : kept.front().seq;
  const uint64_t oldest_pin = pins_.empty() ? UINT64_MAX : *pins_.begin();
  for (;;) {
    auto segs = journal_->segments();
    if (segs.size() < 2) break;
    const auto& next = segs[1];  // dropping the oldest makes its from_seq the oldest boundary
    if (next.from_seq > oldest_pin) break;
    bool over_size = (retention_.max_bytes && journal_->size_bytes() > retention_.max_bytes) || !has_room(0);
    bool outside_window = age_ns && next.created_ns + age_ns <= now_ns && next.from_seq <= oldest_point;
    if (!over_size && !outside_window) break;
    journal_->drop_oldest_segment();
  }
  catalog_.drop_before(journal_->from_seq());
}

std::vector<RecoveryPoint> History::points() const {
  std::lock_guard lock(mu_);
  return catalog_.list();
}

std::optional<RecoveryPoint> History::point(int64_t id) const {
  std::lock_guard lock(mu_);
  return catalog_.find(id);
}

uint64_t History::oldest_boundary() const {
  std::lock_guard lock(mu_);
  return journal_ ? journal_->from_seq() : 0;
}

uint64_t History::size_bytes() const {
  std::lock_guard lock(mu_);
  return journal_ ? journal_->size_bytes() : 0;
}

History::Pin::Pin(History& h, uint64_t seq) : h_(h), seq_(seq) {
  std::lock_guard lock(h_.mu_);
  uint64_t from = h_.journal().from_seq();
  if (seq < from)
    throw std::runtime_error("seq " + std::to_string(seq) + " is outside the retention window: the history kept begins at seq " +
                             std::to_string(from));
  h_.pins_.insert(seq);
  epoch_ = h_.epoch_;
}

History::Pin::~Pin() {
  std::lock_guard lock(h_.mu_);
  h_.pins_.erase(h_.pins_.find(seq_));
}

std::vector<UndoJournal::Undo> History::Pin::plan() const {
  std::lock_guard lock(h_.mu_);
  if (h_.epoch_ != epoch_)
    throw std::runtime_error(
        "the history the image needed is gone (a resync, or a file system without room, started it over while it was built)");
  return h_.journal().plan_back_to(seq_);
}

}  // namespace hrl
