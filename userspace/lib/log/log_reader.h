// Reads the records of a log, oldest first, with O_DIRECT reads kept in
// flight at queue depth through an IoBackend, and validates every one.
//
// The reader stops cleanly at the end of the valid data (a record position
// holding no record, a torn write, or a record of an earlier lap), and
// reports corruption when the bad record lies below the head the superblock
// says was written, or when a record's checksums hold but its fields are
// impossible. docs/log-format.md gives the rules.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "io/file.h"
#include "io/io_backend.h"
#include "log/record.h"
#include "log/superblock.h"

namespace hrl {

struct LogPosition {
  uint64_t seq = 0;
  uint64_t ring_pos = 0;  // byte offset inside the ring
};

struct LogRecord {
  RecordHeader header;
  uint64_t ring_pos = 0;
  std::span<const std::byte> payload;  // valid until the next call to next()
};

enum class ReadStatus { Record, End, Corrupt };

struct ReadResult {
  ReadStatus status = ReadStatus::End;
  // For End and Corrupt: what was found where the valid data stops.
  RecordVerdict verdict = RecordVerdict::Valid;
  LogPosition at;
  std::string detail;

  std::string describe() const;  // "corrupt record at seq N, ring offset X: ..."
};

struct LogReaderOptions {
  uint32_t chunk_bytes = 1u << 20;  // one read
  unsigned queue_depth = 16;        // reads in flight
  // Chunks of memory in the read window. More than queue_depth, so one slow
  // read at the front does not stop the reads behind it (head-of-line).
  unsigned window_chunks = 48;
  IoBackendKind backend = IoBackendKind::Auto;
};

class LogReader {
 public:
  explicit LogReader(const std::string& log_path, LogReaderOptions options = {});
  ~LogReader();
  LogReader(const LogReader&) = delete;
  LogReader& operator=(const LogReader&) = delete;

  const Superblock& superblock() const { return sb_; }
  std::string_view backend_name() const { return io_->name(); }
  const File& file() const { return log_; }

  // Where the next record is expected.
  LogPosition position() const;
  // Continues from a known record boundary (as returned by position()).
  void seek(LogPosition pos);
  // Reads the superblock again (the persisted head moves as the writer runs).
  void refresh();

  // Whether a valid record header sits at the position now: one small read,
  // for following a live log without re-reading the window while idle.
  bool peek();

  // Returns the next valid record, or where and why the valid data ends.
  // After End, a later call reads the same position again (follow a live log).
  ReadResult next(LogRecord& rec);

 private:
  struct Slot;
  void reset_window();
  void fill_window();
  void reap(bool block);
  unsigned release_consumed();
  std::span<const std::byte> bytes_at(uint64_t stream_pos, uint64_t len);
  ReadResult stop(RecordVerdict v, std::string detail);

  File log_;
  Superblock sb_;
  LogReaderOptions opt_;
  std::unique_ptr<IoBackend> io_;

  AlignedBuffer window_;  // nslots_ chunks
  AlignedBuffer bounce_;  // a record crossing the end of the window
  std::vector<Slot> slots_;
  unsigned first_ = 0;    // oldest slot in stream order
  unsigned used_ = 0;     // slots reading or read (in flight: io_->in_flight())
  uint64_t read_ring_ = 0;    // ring offset of the next read
  uint64_t read_stream_ = 0;  // stream offset of the next read

  LogPosition pos_;            // next record
  uint64_t pos_stream_ = 0;    // pos_.ring_pos in stream offsets
  uint64_t pending_span_ = 0;  // span of the record last returned, consumed lazily
  bool need_reset_ = true;
};

}  // namespace hrl
