// io_uring implementation of IoBackend.
#include <liburing.h>

#include "io/file.h"
#include "io/io_backend.h"

namespace hrl {
namespace {

class UringBackend final : public IoBackend {
 public:
  explicit UringBackend(unsigned depth) : IoBackend(depth) {
    // Completion work runs when we enter the kernel instead of interrupting
    // us (as fio sets it); kernels before 5.19 refuse the flag: plain ring.
    io_uring_params p{};
    p.flags = IORING_SETUP_COOP_TASKRUN;
    int rc = io_uring_queue_init_params(depth, &ring_, &p);
    if (rc == -EINVAL) rc = io_uring_queue_init(depth, &ring_, 0);
    if (rc < 0) throw_errno(-rc, "io_uring_queue_init");
  }
  ~UringBackend() override { io_uring_queue_exit(&ring_); }
  UringBackend(const UringBackend&) = delete;
  UringBackend& operator=(const UringBackend&) = delete;

  std::string_view name() const override { return "io_uring"; }

  void submit() override {
    while (queued_ > 0) {
      int rc = io_uring_submit(&ring_);
      if (rc == -EINTR || rc == -EAGAIN) continue;
      if (rc < 0) throw_errno(-rc, "io_uring_submit");
      queued_ -= static_cast<unsigned>(rc);
    }
  }

 protected:
  void do_queue(const IoRequest& req) override {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) {  // the SQ holds only submitted-but-unconsumed entries: flush them
      submit();
      sqe = io_uring_get_sqe(&ring_);
    }
    if (req.op == IoOp::Read)
      io_uring_prep_read(sqe, req.fd, req.buf, req.len, req.offset);
    else
      io_uring_prep_write(sqe, req.fd, req.buf, req.len, req.offset);
    io_uring_sqe_set_data64(sqe, req.tag);
    ++queued_;
  }

  size_t do_wait(std::span<IoCompletion> out, size_t min) override {
    for (;;) {
      int rc = io_uring_submit_and_wait(&ring_, static_cast<unsigned>(min));
      if (rc >= 0) {
        queued_ = 0;
        break;
      }
      if (rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) throw_errno(-rc, "io_uring_submit_and_wait");
    }
    size_t n = 0;
    io_uring_cqe* cqe;
    unsigned head;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      if (n == out.size()) break;
      out[n++] = IoCompletion{io_uring_cqe_get_data64(cqe), cqe->res};
    }
    io_uring_cq_advance(&ring_, static_cast<unsigned>(n));
    return n;
  }

 private:
  io_uring ring_{};
  unsigned queued_ = 0;
};

}  // namespace

std::unique_ptr<IoBackend> make_uring_backend(unsigned queue_depth) {
  return std::make_unique<UringBackend>(queue_depth);
}

}  // namespace hrl
