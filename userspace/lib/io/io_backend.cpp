#include "io/io_backend.h"

#include <cstdlib>
#include <stdexcept>
#include <system_error>

namespace hrl {

void IoBackend::queue(const IoRequest& req) {
  if (in_flight_ >= depth_) throw std::logic_error("IoBackend: queue depth exceeded");
  do_queue(req);
  ++in_flight_;
}

size_t IoBackend::wait(std::span<IoCompletion> out, size_t min) {
  if (min > in_flight_) min = in_flight_;
  if (out.empty() || in_flight_ == 0) return 0;
  size_t n = do_wait(out, min);
  in_flight_ -= static_cast<unsigned>(n);
  return n;
}

IoBackendKind parse_io_backend_kind(std::string_view text) {
  if (text == "auto" || text.empty()) return IoBackendKind::Auto;
  if (text == "io_uring" || text == "uring") return IoBackendKind::Uring;
  if (text == "libaio" || text == "aio") return IoBackendKind::Aio;
  throw std::invalid_argument("unknown I/O backend '" + std::string(text) +
                              "' (expected auto, io_uring or libaio)");
}

std::string_view to_string(IoBackendKind kind) {
  switch (kind) {
    case IoBackendKind::Auto: return "auto";
    case IoBackendKind::Uring: return "io_uring";
    case IoBackendKind::Aio: return "libaio";
  }
  return "?";
}

std::unique_ptr<IoBackend> make_io_backend(IoBackendKind kind, unsigned queue_depth) {
  if (kind == IoBackendKind::Auto) {
    if (const char* env = std::getenv(kIoBackendEnv)) kind = parse_io_backend_kind(env);
  }
  switch (kind) {
    case IoBackendKind::Uring: return make_uring_backend(queue_depth);
    case IoBackendKind::Aio: return make_aio_backend(queue_depth);
    case IoBackendKind::Auto: break;
  }
  try {
    return make_uring_backend(queue_depth);
  } catch (const std::system_error&) {
    // io_uring is absent, disabled by sysctl, or filtered by seccomp.
    return make_aio_backend(queue_depth);
  }
}

}  // namespace hrl
