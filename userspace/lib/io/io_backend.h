// The asynchronous disk I/O interface (the Env of this project): queue reads
// and writes, submit them together, reap completions. Two implementations:
// io_uring (liburing), the default, and Linux AIO (libaio), for kernels or
// sandboxes where io_uring is disabled (sysctl kernel.io_uring_disabled, seccomp).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace hrl {

enum class IoOp : uint8_t { Read, Write };

struct IoRequest {
  IoOp op;
  int fd;
  void* buf;
  uint32_t len;
  uint64_t offset;
  uint64_t tag;  // returned in the completion
};

struct IoCompletion {
  uint64_t tag;
  int64_t result;  // bytes transferred, or -errno
};

enum class IoBackendKind { Auto, Uring, Aio };

class IoBackend {
 public:
  virtual ~IoBackend() = default;
  virtual std::string_view name() const = 0;
  unsigned queue_depth() const { return depth_; }
  unsigned in_flight() const { return in_flight_; }

  // Queues a request; it reaches the kernel at the next submit() or wait().
  // At most queue_depth() requests may be queued or in flight at once.
  void queue(const IoRequest& req);
  virtual void submit() = 0;
  // Submits what is queued, waits until at least min(min, in_flight)
  // completions are ready, and stores up to out.size() of them.
  size_t wait(std::span<IoCompletion> out, size_t min);

 protected:
  explicit IoBackend(unsigned depth) : depth_(depth) {}
  virtual void do_queue(const IoRequest& req) = 0;
  virtual size_t do_wait(std::span<IoCompletion> out, size_t min) = 0;

 private:
  unsigned depth_;
  unsigned in_flight_ = 0;
};

// "auto", "io_uring" (or "uring"), "libaio" (or "aio"); throws otherwise.
IoBackendKind parse_io_backend_kind(std::string_view text);
std::string_view to_string(IoBackendKind kind);

// Environment variable that forces a backend when the caller asks for Auto.
inline constexpr const char* kIoBackendEnv = "HRL_IO_BACKEND";

// Creates a backend. Auto means: HRL_IO_BACKEND if set, else io_uring, else
// libaio when io_uring cannot be set up. A forced backend that cannot be set
// up is an error (std::system_error naming it).
std::unique_ptr<IoBackend> make_io_backend(IoBackendKind kind, unsigned queue_depth);

std::unique_ptr<IoBackend> make_uring_backend(unsigned queue_depth);
std::unique_ptr<IoBackend> make_aio_backend(unsigned queue_depth);

}  // namespace hrl
