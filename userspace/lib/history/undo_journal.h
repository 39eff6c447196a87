// The secondary's history (design.md, "Recovery points and failover"): before
// an applied record overwrites the replica, the bytes it replaces (its
// before-image) go to an undo journal, durable before the replica changes.
// Applying the before-images newest first returns an image of the replica
// to any record boundary the journal covers.
//
// File: a 4 KiB header (magic, the volume's uuid), then entries appended in
// sequence order: a 64-byte header (magic, seq, sector, sectors, XXH64 of the
// bytes, XXH64 of the header) and the before-image, padded to 512 bytes. A
// torn entry at the end (a crash while appending) is cut off at open.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "io/file.h"
#include "log/log_reader.h"

namespace hrl {

class UndoJournal {
 public:
  // Opens the journal of a volume, creating it empty if it does not exist.
  // Throws if the file belongs to another volume.
  UndoJournal(const std::string& path, const std::array<uint8_t, 16>& uuid);

  // The records it can undo: (first_seq - 1) is the oldest boundary it can
  // return to, last_seq the newest record captured. Empty: both 0.
  uint64_t first_seq() const { return entries_.empty() ? 0 : entries_.front().seq; }
  uint64_t last_seq() const { return entries_.empty() ? 0 : entries_.back().seq; }
  size_t size_bytes() const { return end_; }

  // Appends the before-images of the WRITE and DISCARD records of a batch,
  // read from `replica` as it is before the batch is applied (a record's
  // before-image includes what earlier records of the batch write). Records
  // already captured (seq <= last_seq(), after a crash between capture and
  // apply) are skipped. Durable on return.
  void capture(const File& replica, std::span<const LogRecord> batch);

  // Returns `image`, a copy of the replica holding every record up to `at`,
  // to the boundary after record `target` (first_seq() - 1 <= target <= at;
  // records after last_seq() must be ones without data).
  void roll_back(const File& image, uint64_t at, uint64_t target) const;

  // Forgets everything: the replica changed without before-images (a resync).
  void reset();

 private:
  struct Entry {
    uint64_t seq, sector;
    uint32_t sectors;
    uint64_t offset;  // of the before-image in the file
  };
  void load();
  File file_;
  std::array<uint8_t, 16> uuid_;
  std::vector<Entry> entries_;
  uint64_t end_ = 0;  // where the next entry goes
};

}  // namespace hrl
