#include "block_workload.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <unordered_set>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "block_content.h"
#include "io/file.h"
#include "io/io_backend.h"

namespace hrl::blockio {
namespace {

// The journal: one write(2) per line, so what it says happened did.
class Journal {
 public:
  explicit Journal(const std::string& path)
      : file_(path.empty() ? File() : File::open(path, O_WRONLY | O_CREAT | O_APPEND, 0644)) {}
  void line(const std::string& text) const {
    if (!file_.is_open()) return;
    std::string l = text + "\n";
    if (::write(file_.fd(), l.data(), l.size()) != static_cast<ssize_t>(l.size()))
      throw_errno(errno, "write " + file_.path());
  }

 private:
  File file_;
};

struct InFlight {
  uint64_t id, block, blocks;
  AlignedBuffer buf;
};

class Workload {
 public:
  explicit Workload(const WorkloadOptions& opt)
      : opt_(opt), rng_(opt.seed ^ (opt.first_id * 0x9e3779b97f4a7c15ULL)), journal_(opt.journal),
        dev_(File::open(opt.device, O_RDWR | O_DIRECT)), fua_(File::open(opt.device, O_RDWR | O_DIRECT | O_DSYNC)),
        io_(make_io_backend(IoBackendKind::Auto, opt.depth)), next_id_(opt.first_id) {
    uint64_t blocks = dev_.size() / kBlock;
    region_ = opt.region_blocks ? std::min(opt.region_blocks, blocks) : blocks;
    if (region_ < 2 * opt.max_blocks) throw std::runtime_error(opt.device + " is too small for the workload");
    hot_ = std::max<uint64_t>(region_ / 16, 2 * opt.max_blocks);
  }

  WorkloadResult run() {
    using clock = std::chrono::steady_clock;
    // What others wrote before is made durable first: the FUA rule of pick()
    // knows only this run's writes.
    journal_.line("F 0");
    dev_.datasync();
    journal_.line("FD 0");
    auto start = clock::now();
    for (unsigned n = 0;; n++) {
      unsigned ops = opt_.ops || opt_.seconds > 0 ? opt_.ops : 1000;
      if ((ops && n >= ops) || (opt_.seconds > 0 && clock::now() - start >= std::chrono::duration<double>(opt_.seconds)))
        break;
      step();
      reap(0);
      if (opt_.rate > 0) std::this_thread::sleep_until(start + std::chrono::duration<double>((n + 1) / opt_.rate));
    }
    while (io_->in_flight()) reap(1);
    return result_;
  }

 private:
  void step() {
    double c = std::uniform_real_distribution<double>(0, 1)(rng_);
    if (c < opt_.flush_ratio) {
      uint64_t n = ++result_.flushes;
      journal_.line("F " + std::to_string(n));
      unflushed_.clear();  // what completed is covered; what is in flight stays at risk
      for (auto& [id, f] : inflight_)
        for (uint64_t b = f.block; b < f.block + f.blocks; b++) unflushed_.insert(b);
      dev_.datasync();
      journal_.line("FD " + std::to_string(n));
    } else if (c < opt_.flush_ratio + opt_.discard_ratio) {
      bool fua = false;
      auto [block, blocks] = pick(fua);
      for (uint64_t b = block; b < block + blocks; b++) unflushed_.insert(b);
      uint64_t id = next_id_++;
      journal_.line("D " + std::to_string(id) + " " + std::to_string(block) + " " + std::to_string(blocks));
      uint64_t range[2] = {block * kBlock, blocks * kBlock};
      if (!dev_.is_block_device())
        dev_.zero_range(range[0], range[1]);  // an image file in a host test
      else if (::ioctl(dev_.fd(), BLKDISCARD, range) < 0)
        throw_errno(errno, "discard on " + dev_.path());
      journal_.line("DD " + std::to_string(id));
      result_.discards++;
    } else {
      bool fua = c > 1 - opt_.fua_ratio;
      auto [block, blocks] = pick(fua);
      for (uint64_t b = block; b < block + blocks; b++) unflushed_.insert(b);
      write(block, blocks, fua);
    }
  }

  void write(uint64_t block, uint64_t blocks, bool fua) {
    while (io_->in_flight() >= io_->queue_depth()) reap(1);
    uint64_t id = next_id_++;
    InFlight w{id, block, blocks, AlignedBuffer(blocks * kBlock)};
    stamp_blocks(w.buf.span(), opt_.seed, id, block);
    journal_.line("W " + std::to_string(id) + " " + std::to_string(block) + " " + std::to_string(blocks) + " " +
                  (fua ? "1" : "0"));
    auto& slot = inflight_[id] = std::move(w);
    io_->queue({IoOp::Write, (fua ? fua_ : dev_).fd(), slot.buf.data(), static_cast<uint32_t>(blocks * kBlock),
                block * kBlock, id});
    io_->submit();
    result_.writes++;
    result_.fua_writes += fua;
  }

  // A range that overlaps no write in flight: the application's order of
  // writes to one block is then the order it submitted them. A FUA write also
  // avoids blocks written since the last flush: a recording of block I/O
  // (dm-log-writes) logs a FUA write when it completes but an earlier plain
  // write only at the next flush, so it could not tell which came last.
  std::pair<uint64_t, uint64_t> pick(bool& fua) {
    for (;;) {
      for (int tries = 0; tries < 16; tries++) {
        uint64_t blocks = 1 + rng_() % opt_.max_blocks;
        if (rng_() % 4) blocks = 1 + rng_() % 2;  // mostly small writes
        uint64_t span = std::uniform_real_distribution<double>(0, 1)(rng_) < opt_.hot_ratio ? hot_ : region_;
        uint64_t block = rng_() % (span - blocks + 1);
        bool clash = false;
        for (auto& [id, f] : inflight_) clash |= block < f.block + f.blocks && f.block < block + blocks;
        for (uint64_t b = block; fua && !clash && b < block + blocks; b++) clash = unflushed_.count(b);
        if (!clash) return {block, blocks};
      }
      if (inflight_.empty()) fua = false;  // every place was written since the flush: a plain write then
      reap(1);
    }
  }

  void reap(size_t min) {
    IoCompletion done[16];
    size_t n = io_->wait(done, min);
    for (size_t i = 0; i < n; i++) {
      auto it = inflight_.find(done[i].tag);
      if (done[i].result != static_cast<int64_t>(it->second.blocks * kBlock))
        throw std::runtime_error("write " + std::to_string(done[i].tag) + " at block " +
                                 std::to_string(it->second.block) + " failed: " + std::to_string(done[i].result));
      journal_.line("C " + std::to_string(done[i].tag));
      inflight_.erase(it);
    }
  }

  const WorkloadOptions& opt_;
  std::mt19937_64 rng_;
  Journal journal_;
  File dev_, fua_;
  std::unique_ptr<IoBackend> io_;
  uint64_t next_id_;
  uint64_t region_ = 0, hot_ = 0;
  std::map<uint64_t, InFlight> inflight_;
  std::unordered_set<uint64_t> unflushed_;  // blocks written or discarded since the last flush began
  WorkloadResult result_;
};

}  // namespace

WorkloadResult run_block_workload(const WorkloadOptions& opt) { return Workload(opt).run(); }

}  // namespace hrl::blockio
