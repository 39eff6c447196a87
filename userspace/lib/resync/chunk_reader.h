// Reads chunks of a device in the background, at queue depth through an
// IoBackend, and hands out their hash trees (and, when asked, their bytes)
// in the order they were requested. Both sites of a resync run one, so the
// two devices are read in parallel while the session thread talks.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "io/file.h"
#include "io/io_backend.h"
#include "resync/hash_tree.h"

namespace hrl {

struct HashedChunk {
  ChunkTree tree;
  AlignedBuffer data;  // the chunk's bytes when keep_data, else empty
};

class ChunkReader {
 public:
  // dev_bytes: the extent compared (the volume's size, which the replica may exceed).
  ChunkReader(const File& dev, uint64_t dev_bytes, IoBackendKind backend, unsigned queue_depth, bool keep_data);
  ~ChunkReader();  // stops the reader; chunks not taken are dropped
  ChunkReader(const ChunkReader&) = delete;
  ChunkReader& operator=(const ChunkReader&) = delete;

  uint64_t chunk_count() const { return (dev_bytes_ + kChunkBytes - 1) / kChunkBytes; }
  // Queues chunks to read, after those queued before.
  void request(std::span<const uint64_t> chunks);
  // The next chunk in request order; waits for it. Rethrows a read error.
  HashedChunk take();
  // As take(), but gives up after `wait`.
  std::optional<HashedChunk> try_take(std::chrono::milliseconds wait);
  // Gives a taken chunk's buffer back for reuse.
  void recycle(AlignedBuffer buf);
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  struct Slot {
    uint64_t chunk = 0;
    AlignedBuffer buf;
    bool busy = false, done = false;
    std::exception_ptr error;
  };
  void run();
  AlignedBuffer get_buffer();

  const File& dev_;
  uint64_t dev_bytes_;
  unsigned depth_;
  bool keep_data_;
  std::unique_ptr<IoBackend> io_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<uint64_t> todo_;       // requested, not yet read
  std::deque<HashedChunk> ready_;   // read and hashed, not yet taken
  std::vector<AlignedBuffer> pool_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::atomic<uint64_t> bytes_read_{0};
  std::thread thread_;
};

}  // namespace hrl
