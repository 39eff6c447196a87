// A secondary's history as one thing the session, the retention and the
// operator share across threads: the undo journal, the catalog of points,
// and the rules that keep them in step (design.md, "Recovery points and
// failover"). Every point listed can be rebuilt: whatever drops history
// drops the points it stood for in the same call.
#pragma once

#include <sys/statvfs.h>

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "history/point_catalog.h"
#include "history/undo_journal.h"

namespace hrl {

struct Retention {
  double max_age_seconds = 24 * 3600.0;  // points older than this go, and the history only they needed
  uint64_t max_bytes = 0;                // the journal's size limit; 0: none
  uint64_t segment_bytes = 64ull << 20;  // history is dropped a segment at a time
  // The free space history leaves on its file system: the larger of the
  // two. History gives way, oldest segments first, before it takes this.
  uint64_t reserve_bytes = 0;
  double reserve_fraction = 0;
};

// What history gave up for space, for the operator (hrlctl status).
struct HistorySpace {
  uint64_t dropped_segments = 0, dropped_points = 0;
  uint64_t suspensions = 0;
  bool suspended = false;
};

class History {
 public:
  History(std::string undo_dir, std::string catalog_path, Retention retention);

  // Opens the volume's journal once its identity is known (a new history
  // begins at boundary durable_seq; throws if it is another volume's), and
  // drops the points it no longer reaches. Changes nothing else: operators
  // call it from their threads while a session runs.
  void open(const std::array<uint8_t, 16>& uuid, uint64_t durable_seq);
  // A session begins, with the replica's state as saved: the points after
  // durable_seq go (their batch never became durable: it comes again, and
  // adds them again), and after a gap (records applied without
  // before-images) every point goes. Returns the points a gap dropped. The
  // session's thread only.
  size_t begin_session(uint64_t durable_seq, bool gap);

  // The session's side: before-images ahead of every batch, points after.
  // History never stops replication: when its file system would keep less
  // than the reserve free, the oldest segments go, with the points that
  // needed them. When even that cannot make room, history is suspended
  // (every point dropped, the journal emptied) and capture returns false,
  // as it does while suspended: the caller records the gap, applies the
  // batch without before-images, then calls start_over.
  bool capture(const File& replica, std::span<const LogRecord> batch, IoBackend* io = nullptr);
  // After a batch applied without before-images (a gap, or suspended
  // history): history begins anew at seq, the batch's last record, if there
  // is room; false if not (still suspended). Not at the record before the
  // batch: after a crash between apply and save the replica may already
  // hold some of it, and a before-image read then would be an after-image.
  bool start_over(uint64_t seq);
  // Routes the lines history logs (drops for space, suspension) to the operator.
  void set_log(std::function<void(const std::string&)> log);
  HistorySpace space() const;
  void add_point(uint64_t seq, PointKind kind, const std::string& name);
  // The replica changed without before-images (a resync): nothing before
  // start_seq can be rebuilt.
  void restart(uint64_t start_seq);
  // Retention: drops points older than the age limit, then the oldest
  // segments no kept point needs, or that the size limit cannot keep
  // (dropping the points they stood for). Pinned history stays.
  void prune(uint64_t now_ns);

  // The operator's side.
  std::vector<RecoveryPoint> points() const;
  std::optional<RecoveryPoint> point(int64_t id) const;
  uint64_t oldest_boundary() const;  // the oldest seq an image can be rebuilt at
  uint64_t size_bytes() const;

  // Keeps the history back to `seq` while an image is being built: prune
  // leaves it, and a restart makes plan() refuse.
  class Pin {
   public:
    Pin(History& h, uint64_t seq);  // throws if seq is outside the history kept
    ~Pin();
    Pin(const Pin&) = delete;
    Pin& operator=(const Pin&) = delete;
    // The before-images that take an image holding every record applied so
    // far back to seq; throws if a resync restarted the history meanwhile.
    std::vector<UndoJournal::Undo> plan() const;

   private:
    History& h_;
    uint64_t seq_, epoch_;
  };

  // An unplanned failover went back to seq: the points after it are gone.
  void forget_after(uint64_t seq);
  // A committed failover: the replica is written without before-images now.
  void clear(uint64_t start_seq);

 private:
  UndoJournal& journal();  // throws before open()
  void restart_locked(uint64_t start_seq);
  struct statvfs file_system() const;  // the journal's
  uint64_t reserve() const;
  // The journal's file system keeps the reserve free with `needed` more bytes taken.
  bool has_room(uint64_t needed) const;
  // Drops the oldest segment for space if one may go; false if none can.
  bool drop_for_space();
  void suspend(uint64_t boundary, const std::string& why);
  void say(const std::string& line) const;
  const std::string undo_dir_;
  const Retention retention_;
  mutable std::mutex mu_;  // guards everything below; the session and the operator call in from their threads
  PointCatalog catalog_;
  std::optional<UndoJournal> journal_;
  std::multiset<uint64_t> pins_;
  uint64_t epoch_ = 0;  // restarts so far
  HistorySpace space_;
  std::function<void(const std::string&)> log_;
};

}  // namespace hrl
