// TLS 1.3 with mutual authentication against the site CA, over TCP, and the
// protocol's frames over it. Blocking I/O with timeouts: one thread per
// connection keeps the daemons simple, and a stalled peer fails in time.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <span>
#include <string>
#include <vector>

#include "net/frame.h"

namespace hrl {

// The peer ended the connection cleanly (TLS close_notify).
class PeerClosed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct TlsConfig {
  std::string cert, key, ca;  // PEM files: this node's certificate and key, the site CA
};

class TlsContext {
 public:
  enum class Role { Server, Client };
  TlsContext(Role role, const TlsConfig& cfg);
  SSL_CTX* get() const { return ctx_.get(); }
  Role role() const { return role_; }

 private:
  struct Free {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
  };
  Role role_;
  std::unique_ptr<SSL_CTX, Free> ctx_;
};

// A TCP socket that owns its fd.
class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  Socket(Socket&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Socket& operator=(Socket&& o) noexcept;
  ~Socket();
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

// host:port listener on loopback or any address the operator gives.
class Listener {
 public:
  explicit Listener(const std::string& address);  // "127.0.0.1:7789"
  uint16_t port() const { return port_; }
  // Waits up to timeout for a connection; an empty Socket when none came.
  Socket accept(std::chrono::milliseconds timeout);

 private:
  Socket sock_;
  uint16_t port_ = 0;
};

Socket connect_tcp(const std::string& address, std::chrono::milliseconds timeout);

// An authenticated TLS 1.3 connection carrying frames.
class TlsStream {
 public:
  // Handshakes as the context's role; a client checks that the peer's
  // certificate names peer_name. Throws with OpenSSL's reason on failure.
  TlsStream(const TlsContext& ctx, Socket sock, const std::string& peer_name = {},
            std::chrono::milliseconds io_timeout = std::chrono::seconds(30));
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // The peer certificate's common name (verified against the CA).
  const std::string& peer() const { return peer_; }
  void send(proto::FrameType type, std::span<const std::byte> payload, int zstd_level = 0);
  void send_frame(std::span<const std::byte> frame);
  struct Frame {
    proto::FrameHeader header;
    std::vector<std::byte> payload;  // raw: decompressed and checked
  };
  Frame receive();
  // Whether a frame can be read without blocking (data buffered or on the socket).
  bool readable(std::chrono::milliseconds wait);

 private:
  bool wait_for(int ssl_error, std::chrono::steady_clock::time_point deadline);
  bool retry_or_throw(int rc, const char* doing, const char* did, std::chrono::steady_clock::time_point deadline);
  void read_exact(std::byte* p, size_t n);
  void write_all(const std::byte* p, size_t n);
  struct Free {
    void operator()(SSL* s) const { SSL_free(s); }
  };
  Socket sock_;
  std::unique_ptr<SSL, Free> ssl_;
  std::string peer_;
  std::chrono::milliseconds io_timeout_;
};

}  // namespace hrl
