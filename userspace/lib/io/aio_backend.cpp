// Linux AIO (libaio) implementation of IoBackend: asynchronous only for
// O_DIRECT files, which is how the log is read.
#include <libaio.h>

#include <algorithm>
#include <vector>

#include "io/file.h"
#include "io/io_backend.h"

namespace hrl {
namespace {

class AioBackend final : public IoBackend {
 public:
  explicit AioBackend(unsigned depth) : IoBackend(depth), iocbs_(depth), events_(depth) {
    int rc = io_setup(static_cast<int>(depth), &ctx_);
    if (rc < 0) throw_errno(-rc, "io_setup");
    free_.reserve(depth);
    for (auto& cb : iocbs_) free_.push_back(&cb);
    pending_.reserve(depth);
  }
  ~AioBackend() override { io_destroy(ctx_); }
  AioBackend(const AioBackend&) = delete;
  AioBackend& operator=(const AioBackend&) = delete;

  std::string_view name() const override { return "libaio"; }

  void submit() override {
    size_t done = 0;
    while (done < pending_.size()) {
      int rc = io_submit(ctx_, static_cast<long>(pending_.size() - done), pending_.data() + done);
      if (rc == -EINTR || rc == -EAGAIN) continue;
      if (rc < 0) {
        // AIO refuses a bad request at submission (io_uring completes it
        // with the error): report it as that request's completion.
        iocb* cb = pending_[done++];
        refused_.push_back({static_cast<uint64_t>(reinterpret_cast<uintptr_t>(cb->data)), rc});
        free_.push_back(cb);
        continue;
      }
      done += static_cast<size_t>(rc);
    }
    pending_.clear();
  }

 protected:
  void do_queue(const IoRequest& req) override {
    iocb* cb = free_.back();
    free_.pop_back();
    if (req.op == IoOp::Read)
      io_prep_pread(cb, req.fd, req.buf, req.len, static_cast<long long>(req.offset));
    else
      io_prep_pwrite(cb, req.fd, req.buf, req.len, static_cast<long long>(req.offset));
    cb->data = reinterpret_cast<void*>(static_cast<uintptr_t>(req.tag));
    pending_.push_back(cb);
  }

  size_t do_wait(std::span<IoCompletion> out, size_t min) override {
    submit();
    if (!refused_.empty()) {
      size_t n = std::min(out.size(), refused_.size());
      std::copy_n(refused_.begin(), n, out.begin());
      refused_.erase(refused_.begin(), refused_.begin() + static_cast<ptrdiff_t>(n));
      return n;
    }
    long max = static_cast<long>(std::min(out.size(), events_.size()));
    int rc;
    do {
      rc = io_getevents(ctx_, static_cast<long>(min), max, events_.data(), nullptr);
    } while (rc == -EINTR);
    if (rc < 0) throw_errno(-rc, "io_getevents");
    for (int i = 0; i < rc; i++) {
      const io_event& ev = events_[static_cast<size_t>(i)];
      out[static_cast<size_t>(i)] = IoCompletion{
          static_cast<uint64_t>(reinterpret_cast<uintptr_t>(ev.data)), static_cast<int64_t>(static_cast<long>(ev.res))};
      free_.push_back(ev.obj);
    }
    return static_cast<size_t>(rc);
  }

 private:
  io_context_t ctx_{};
  std::vector<iocb> iocbs_;
  std::vector<iocb*> free_;
  std::vector<iocb*> pending_;
  std::vector<io_event> events_;
  std::vector<IoCompletion> refused_;
};

}  // namespace

std::unique_ptr<IoBackend> make_aio_backend(unsigned queue_depth) {
  return std::make_unique<AioBackend>(queue_depth);
}

}  // namespace hrl
