// A userspace producer of the .hrl log with the dm-hrl target's semantics, for
// hosts without the module and for tests: each write goes to the data device
// and, with its data, into the ring; acknowledgements free ring space; a full
// ring switches to bitmap mode; the superblock's clean flag and resync reason
// say what a crash may have cost. Single-threaded: calls are serialized, so
// log order is the order the data reached the device (invariant 2).
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>

#include "io/file.h"
#include "log/dirty_bitmap.h"
#include "log/superblock.h"

namespace hrl {

enum class TrackingMode { Journal, Bitmap, ResyncRequired };
const char* mode_name(TrackingMode m);

struct WriterStatus {
  TrackingMode mode;
  uint64_t head_seq, tail_seq;
  uint64_t ring_used, ring_bytes;
  uint64_t dirty_blocks;   // in the live dirty bitmap
  uint64_t resync_blocks;  // in the taken resync bitmap
  uint32_t reason;
};

class LogWriter {
 public:
  // Opens a formatted log and its data device. A log not closed cleanly is
  // flagged resync-required (unclean-shutdown) before anything is written.
  LogWriter(const std::string& log_path, const std::string& data_path);
  // Without close(), the log stays marked as not cleanly shut down, as after a crash.
  ~LogWriter() = default;
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  // Writes data at sector (a whole number of sectors) and journals it.
  // flags: HRL_REC_FLUSH (earlier writes durable first), HRL_REC_FUA
  // (durable on return). Returns the last sequence number used, or 0 when
  // the write was tracked in the bitmap.
  uint64_t write(uint64_t sector, std::span<const std::byte> data, uint16_t flags = 0);
  // An empty flush: every earlier write durable on both devices.
  uint64_t flush_barrier();
  uint64_t discard(uint64_t sector, uint32_t nr_sectors);
  // A named consistency point; refused in bitmap mode (nothing to mark).
  uint64_t mark(std::string_view name);

  // Makes data, ring, bitmap and head durable (the target's flush/suspend).
  void flush();
  // The secondary made records up to seq durable: free their ring space.
  void ack(uint64_t seq);
  // Takes the acknowledgements another process wrote into the superblock
  // (acknowledge_log); returns whether ring space was freed. The writer also
  // does this on its own when the ring is full and at every superblock write.
  bool refresh_acknowledged();
  // Hands the dirty bitmap (and any whole-device requirement) over to a
  // resync; records before resync_take_seq apply first, the resync next,
  // records from it after. Returns the bitmap to resync.
  DirtyBitmap take_bitmap();
  // The resync of the taken bitmap finished.
  void end_resync();
  // Clean shutdown: flush and set the clean flag.
  void close();

  WriterStatus status() const;
  const Superblock& superblock() const { return sb_; }
  const DirtyBitmap& dirty_bitmap() const { return dirty_; }

 private:
  struct InRing {
    uint64_t seq;
    uint64_t span;
  };
  void recover_ring(bool unclean);
  void release_through(uint64_t seq);
  bool adopt_acknowledged(const Superblock& disk);
  bool append(uint16_t type, uint16_t flags, uint64_t sector, uint32_t nr_sectors, std::span<const std::byte> payload,
              uint64_t& seq_out);
  void write_record(uint64_t pos, uint16_t type, uint16_t flags, uint64_t sector, uint32_t nr_sectors,
                    std::span<const std::byte> payload);
  void enter_bitmap_mode();
  void maybe_leave_bitmap_mode();
  void persist_bitmaps();
  void persist_superblock();
  void check_range(uint64_t sector, uint64_t nr_sectors) const;
  void set_resync_required(uint32_t reason);
  bool has_room() const;

  File log_;
  File data_;
  Superblock sb_;
  DirtyBitmap dirty_;
  DirtyBitmap resync_;
  std::deque<InRing> ring_;  // records between tail and head, oldest first
  // Whether a bitmap changed since it was last written: flush() writes only
  // those (an area is 32 MiB per TiB of data).
  bool dirty_changed_ = true, resync_changed_ = true;
  uint64_t used_ = 0;        // ring bytes between tail and head
  uint64_t unsynced_bytes_ = 0;  // ring bytes appended since the log's last sync
  bool closed_ = false;
};

}  // namespace hrl
