#include "resync/chunk_reader.h"

#include <algorithm>
#include <stdexcept>
#include <system_error>

namespace hrl {
namespace {

// Chunks read ahead of the consumer at most: the session asks only for what
// its window holds, this bounds the memory if it asks for more.
constexpr size_t kMaxAhead = 64;

}  // namespace

ChunkReader::ChunkReader(const File& dev, uint64_t dev_bytes, IoBackendKind backend, unsigned queue_depth,
                         bool keep_data)
    : dev_(dev), dev_bytes_(dev_bytes), depth_(queue_depth), keep_data_(keep_data),
      io_(make_io_backend(backend, queue_depth)) {
  if (dev_bytes_ % 512) throw std::invalid_argument(dev.path() + ": the compared extent is not whole sectors");
  thread_ = std::thread([this] { run(); });
}

ChunkReader::~ChunkReader() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void ChunkReader::request(std::span<const uint64_t> chunks) {
  {
    std::lock_guard lock(mu_);
    for (uint64_t c : chunks) {
      if (c >= chunk_count()) throw std::out_of_range("chunk " + std::to_string(c) + " is past the end of " + dev_.path());
      todo_.push_back(c);
    }
  }
  cv_.notify_all();
}

std::optional<HashedChunk> ChunkReader::try_take(std::chrono::milliseconds wait) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, wait, [&] { return !ready_.empty() || error_; })) return std::nullopt;
  if (ready_.empty()) std::rethrow_exception(error_);
  HashedChunk out = std::move(ready_.front());
  ready_.pop_front();
  lock.unlock();
  cv_.notify_all();  // room to read ahead again
  return out;
}

HashedChunk ChunkReader::take() {
  for (;;)
    if (auto c = try_take(std::chrono::hours(1))) return std::move(*c);
}

void ChunkReader::recycle(AlignedBuffer buf) {
  if (buf.size() != kChunkBytes) return;
  std::lock_guard lock(mu_);
  pool_.push_back(std::move(buf));
}

AlignedBuffer ChunkReader::get_buffer() {
  std::lock_guard lock(mu_);
  if (pool_.empty()) return AlignedBuffer(kChunkBytes);
  AlignedBuffer b = std::move(pool_.back());
  pool_.pop_back();
  return b;
}

// The reader thread: keeps up to depth_ reads in flight and publishes the
// chunks strictly in request order, whatever order the reads complete in.
void ChunkReader::run() {
  std::deque<Slot> inflight;  // request order
  std::vector<IoCompletion> comps(depth_);
  try {
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] {
          return stop_ || !inflight.empty() || (!todo_.empty() && ready_.size() < kMaxAhead);
        });
        if (stop_) break;
      }
      for (;;) {
        uint64_t chunk;
        {
          std::lock_guard lock(mu_);
          if (inflight.size() >= depth_ || todo_.empty() || ready_.size() + inflight.size() >= kMaxAhead) break;
          chunk = todo_.front();
          todo_.pop_front();
        }
        Slot& s = inflight.emplace_back();
        s.chunk = chunk;
        s.buf = get_buffer();
        uint64_t off = chunk * kChunkBytes;
        auto len = static_cast<uint32_t>(std::min<uint64_t>(kChunkBytes, dev_bytes_ - off));
        io_->queue({IoOp::Read, dev_.fd(), s.buf.data(), len, off, chunk});
        s.busy = true;
      }
      if (inflight.empty()) continue;
      size_t got = io_->wait(comps, 1);
      for (size_t k = 0; k < got; k++) {
        auto it = std::find_if(inflight.begin(), inflight.end(),
                               [&](const Slot& s) { return s.busy && s.chunk == comps[k].tag; });
        uint64_t off = it->chunk * kChunkBytes;
        uint64_t want = std::min<uint64_t>(kChunkBytes, dev_bytes_ - off);
        it->busy = false;
        it->done = true;
        // A failure is raised when its chunk's turn comes: chunks before it go out first.
        if (comps[k].result < 0)
          it->error = std::make_exception_ptr(std::system_error(static_cast<int>(-comps[k].result), std::generic_category(),
                                                                "read " + dev_.path() + " at " + std::to_string(off)));
        else if (static_cast<uint64_t>(comps[k].result) != want)
          it->error = std::make_exception_ptr(std::runtime_error(dev_.path() + ": short read at " + std::to_string(off)));
        else
          bytes_read_ += want;
      }
      while (!inflight.empty() && inflight.front().done) {
        if (inflight.front().error) std::rethrow_exception(inflight.front().error);
        Slot s = std::move(inflight.front());
        inflight.pop_front();
        HashedChunk hc;
        uint64_t want = std::min<uint64_t>(kChunkBytes, dev_bytes_ - s.chunk * kChunkBytes);
        build_tree(s.chunk, std::span<const std::byte>(s.buf.data(), want), hc.tree);
        if (keep_data_)
          hc.data = std::move(s.buf);
        else
          recycle(std::move(s.buf));
        {
          std::lock_guard lock(mu_);
          ready_.push_back(std::move(hc));
        }
        cv_.notify_all();
      }
    }
  } catch (...) {
    std::lock_guard lock(mu_);
    error_ = std::current_exception();
    cv_.notify_all();
  }
  // Stopping or failed: reap what is still in flight before the buffers go.
  while (io_->in_flight()) {
    size_t got;
    try {
      got = io_->wait(comps, 1);
    } catch (...) {
      std::abort();  // the kernel may still write into the buffers: never free them under it
    }
    (void)got;
  }
}

}  // namespace hrl
