// The secondary's history (design.md, "Recovery points and failover"): before
// an applied record overwrites the replica, the bytes it replaces (its
// before-image) go to an undo journal, durable before the replica changes.
// Applying the before-images newest first returns an image of the replica
// to any record boundary the journal covers.
//
// A directory of segment files, so retention drops history a whole file at a
// time. A segment: a 4 KiB header (magic, the volume's uuid, from_seq: every
// record after it is in this segment or a later one, the time it was begun,
// a checksum), then entries appended in sequence order: a 512-byte header
// (magic, seq, sector, sectors, XXH64 of the bytes, flags, XXH64 of the
// header) and the before-image. A record's before-image is one entry or
// several (pieces of at most 4 MiB, all but the last flagged "continued"), so
// a whole-volume discard costs bounded memory; a piece of zeros stores no
// bytes. A torn entry, or a record whose last piece is missing, at the end of
// the newest segment (a crash while appending) is cut off at open.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "io/file.h"
#include "io/io_backend.h"
#include "log/log_reader.h"

namespace hrl {

class UndoJournal {
 public:
  // Opens the journal in `dir`, creating it if missing with history that
  // starts at boundary start_seq (the replica holds records up to it). A
  // segment is closed once it holds segment_bytes. Throws if the journal
  // belongs to another volume.
  UndoJournal(const std::string& dir, const std::array<uint8_t, 16>& uuid, uint64_t start_seq,
              uint64_t segment_bytes = 64ull << 20);

  // The oldest boundary it can return an image to, and the newest record
  // captured (from_seq() when none has been since).
  uint64_t from_seq() const { return segments_.front().from_seq; }
  uint64_t last_seq() const { return entries_.empty() ? from_seq() : entries_.back().seq; }
  uint64_t size_bytes() const;

  struct SegmentInfo {
    uint64_t from_seq, created_ns, bytes;
  };
  std::vector<SegmentInfo> segments() const;
  // Retention: forgets the oldest segment (never the only one); from_seq()
  // becomes the next one's.
  void drop_oldest_segment();

  // Appends the before-images of the WRITE and DISCARD records of a batch,
  // read from `replica` as it is before the batch is applied (a record's
  // before-image includes what earlier records of the batch write). Records
  // already captured (seq <= last_seq(), after a crash between capture and
  // apply) are skipped. Durable on return. With `io`, the before-images are
  // read together, at its queue depth.
  void capture(const File& replica, std::span<const LogRecord> batch, IoBackend* io = nullptr);

  // What returns an image to the boundary after record `target`: the
  // before-images of the records after it, newest first. The plan keeps its
  // segments open, so retention or a reset may run while it is applied.
  struct Undo {
    std::shared_ptr<const File> segment;
    uint64_t offset;  // of the before-image in the segment
    uint64_t seq, sector;
    uint32_t sectors;
    bool zero;  // the before-image is zeros, not stored
  };
  std::vector<Undo> plan_back_to(uint64_t target) const;
  // Writes a plan into `image`, which must hold every record the plan's
  // entries were captured for (or any mix of them with older content of
  // those blocks), and nothing newer in the other blocks. Each byte is
  // written once, from the oldest entry that covers it; returns the bytes
  // written.
  static uint64_t apply(const std::vector<Undo>& plan, const File& image);

  // Returns `image`, a copy of the replica holding every record up to `at`,
  // to the boundary after record `target` (from_seq() <= target <= at).
  void roll_back(const File& image, uint64_t at, uint64_t target) const;

  // Forgets everything: the replica changed without before-images (a
  // resync); history starts again at boundary start_seq.
  void reset(uint64_t start_seq);

 private:
  struct Segment {
    std::shared_ptr<File> file;
    uint64_t from_seq, created_ns;
    uint64_t end;  // where the next entry goes
  };
  struct Entry {
    uint64_t seq, sector;
    uint32_t sectors;
    uint64_t offset;
    size_t segment;  // index among all segments ever opened: segment - dropped_
    bool zero;
  };
  void load();
  void load_segment(const std::string& path, bool newest);
  Segment write_segment(const std::string& dir, uint64_t from_seq) const;  // a new, empty segment file, durable
  void begin_segment(uint64_t from_seq);
  uint64_t last_seq_or(uint64_t none) const;  // last_seq(), or `none` before any segment is loaded
  std::string dir_;
  std::array<uint8_t, 16> uuid_;
  uint64_t segment_bytes_;
  std::deque<Segment> segments_;
  std::deque<Entry> entries_;
  size_t dropped_ = 0;  // segments dropped since open
};

}  // namespace hrl
