#include "history/history.h"

#include <stdexcept>

#include "log/superblock.h"

namespace hrl {

History::History(std::string undo_dir, std::string catalog_path, Retention retention)
    : undo_dir_(std::move(undo_dir)), retention_(retention), catalog_(catalog_path) {}

size_t History::open(const std::array<uint8_t, 16>& uuid, uint64_t durable_seq, bool gap) {
  std::lock_guard lock(mu_);
  if (!journal_) journal_.emplace(undo_dir_, uuid, durable_seq, retention_.segment_bytes);
  catalog_.drop_after(durable_seq);
  size_t dropped = 0;
  if (gap) {
    dropped = catalog_.list().size();
    restart_locked(durable_seq);
    catalog_.drop_before(UINT64_MAX);
  }
  catalog_.drop_before(journal_->from_seq());
  return dropped;
}

UndoJournal& History::journal() {
  if (!journal_) throw std::runtime_error("the history is not open: the replica follows no volume yet");
  return *journal_;
}

void History::capture(const File& replica, std::span<const LogRecord> batch, IoBackend* io) {
  std::lock_guard lock(mu_);
  journal().capture(replica, batch, io);
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
    bool over_size = retention_.max_bytes && journal_->size_bytes() > retention_.max_bytes;
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
    throw std::runtime_error("a resync changed the replica while the image was being built; the history it needed is gone");
  return h_.journal().plan_back_to(seq_);
}

}  // namespace hrl
