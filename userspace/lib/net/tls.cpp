#include "net/tls.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cerrno>
#include <mutex>
#include <cstring>
#include <stdexcept>

#include "io/file.h"

namespace hrl {
namespace {

std::string ssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += out.empty() ? buf : std::string("; ") + buf;
  }
  return out.empty() ? "no detail from OpenSSL" : out;
}

std::pair<std::string, std::string> split_address(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("address '" + address + "' is not host:port");
  return {address.substr(0, colon), address.substr(colon + 1)};
}

void set_timeouts(int fd, std::chrono::milliseconds t) {
  timeval tv{static_cast<time_t>(t.count() / 1000), static_cast<suseconds_t>(t.count() % 1000 * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

}  // namespace

TlsContext::TlsContext(Role role, const TlsConfig& cfg)
    : role_(role), ctx_(SSL_CTX_new(role == Role::Server ? TLS_server_method() : TLS_client_method())) {
  // A peer that goes away must be an error on the write (EPIPE), not the
  // end of the process: OpenSSL writes to the socket with write(2).
  static std::once_flag ignore_sigpipe;
  std::call_once(ignore_sigpipe, [] { ::signal(SIGPIPE, SIG_IGN); });
  SSL_CTX* c = ctx_.get();
  if (!c) throw std::runtime_error("TLS context: " + ssl_errors());
  SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);  // TLS 1.3 and nothing older
  SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION);
  if (SSL_CTX_use_certificate_chain_file(c, cfg.cert.c_str()) != 1)
    throw std::runtime_error("certificate " + cfg.cert + ": " + ssl_errors());
  if (SSL_CTX_use_PrivateKey_file(c, cfg.key.c_str(), SSL_FILETYPE_PEM) != 1)
    throw std::runtime_error("key " + cfg.key + ": " + ssl_errors());
  if (SSL_CTX_check_private_key(c) != 1)
    throw std::runtime_error("key " + cfg.key + " does not match certificate " + cfg.cert);
  if (SSL_CTX_load_verify_locations(c, cfg.ca.c_str(), nullptr) != 1)
    throw std::runtime_error("site CA " + cfg.ca + ": " + ssl_errors());
  // Both sides prove themselves with a certificate of the site CA.
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
}

Socket& Socket::operator=(Socket&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

Socket::~Socket() {
  if (fd_ >= 0) ::close(fd_);
}

Listener::Listener(const std::string& address) {
  auto [host, port] = split_address(address);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::stoi(port)));
  if (inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1)
    throw std::invalid_argument("listen address '" + address + "' is not an IPv4 address:port");
  sock_ = Socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (sock_.fd() < 0) throw_errno(errno, "socket");
  int one = 1;
  setsockopt(sock_.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(sock_.fd(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) throw_errno(errno, "bind " + address);
  if (::listen(sock_.fd(), 8) < 0) throw_errno(errno, "listen " + address);
  socklen_t len = sizeof sa;
  getsockname(sock_.fd(), reinterpret_cast<sockaddr*>(&sa), &len);
  port_ = ntohs(sa.sin_port);
}

Socket Listener::accept(std::chrono::milliseconds timeout) {
  pollfd p{sock_.fd(), POLLIN, 0};
  int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (n < 0 && errno != EINTR) throw_errno(errno, "poll");
  if (n <= 0) return Socket();
  int fd = ::accept4(sock_.fd(), nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) {
    if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN) return Socket();
    throw_errno(errno, "accept");
  }
  return Socket(fd);
}

Socket connect_tcp(const std::string& address, std::chrono::milliseconds timeout) {
  auto [host, port] = split_address(address);
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0)
    throw std::runtime_error("resolve " + address + ": " + gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
  Socket s(::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (s.fd() < 0) throw_errno(errno, "socket");
  set_timeouts(s.fd(), timeout);  // bounds connect() too
  if (::connect(s.fd(), res->ai_addr, res->ai_addrlen) < 0) throw_errno(errno, "connect " + address);
  return s;
}

TlsStream::TlsStream(const TlsContext& ctx, Socket sock, const std::string& peer_name,
                     std::chrono::milliseconds io_timeout)
    : sock_(std::move(sock)), ssl_(SSL_new(ctx.get())), io_timeout_(io_timeout) {
  if (!ssl_) throw std::runtime_error("SSL_new: " + ssl_errors());
  set_timeouts(sock_.fd(), io_timeout);
  int one = 1;
  setsockopt(sock_.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // A peer behind a cut link must be noticed even by an idle session (a
  // secondary waiting for records): keepalive probes and a bound on unacked
  // data, scaled to the I/O timeout.
  int secs = std::max(1, static_cast<int>(io_timeout.count() / 1000));
  int intvl = std::max(1, secs / 3), cnt = 3;
  unsigned user_timeout = static_cast<unsigned>(io_timeout.count());
  setsockopt(sock_.fd(), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  setsockopt(sock_.fd(), IPPROTO_TCP, TCP_KEEPIDLE, &secs, sizeof secs);
  setsockopt(sock_.fd(), IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  setsockopt(sock_.fd(), IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
  setsockopt(sock_.fd(), IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
  SSL_set_fd(ssl_.get(), sock_.fd());
  ERR_clear_error();
  int rc;
  if (ctx.role() == TlsContext::Role::Client) {
    if (!peer_name.empty()) {
      SSL_set1_host(ssl_.get(), peer_name.c_str());  // the peer must be the node we meant
      SSL_set_tlsext_host_name(ssl_.get(), peer_name.c_str());
    }
    rc = SSL_connect(ssl_.get());
  } else {
    rc = SSL_accept(ssl_.get());
  }
  if (rc != 1) {
    long verify = SSL_get_verify_result(ssl_.get());
    std::string why = ssl_errors();
    if (verify != X509_V_OK) why += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
    if (why == "no detail from OpenSSL" && errno) why = std::strerror(errno);
    throw std::runtime_error("TLS handshake with " + std::string(peer_name.empty() ? "peer" : peer_name) +
                             " failed: " + why);
  }
  X509* cert = SSL_get1_peer_certificate(ssl_.get());
  if (cert) {
    char cn[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    peer_ = cn;
    X509_free(cert);
  }
}

TlsStream::~TlsStream() {
  if (ssl_) SSL_shutdown(ssl_.get());  // best effort: tells the peer we are done
}

// OpenSSL may want to read or write again (a record that was not
// application data, an interrupted call, the socket's own timeout): wait for
// the socket and retry until io_timeout_ has passed without progress.
bool TlsStream::wait_for(int ssl_error, std::chrono::steady_clock::time_point deadline) {
  short events = ssl_error == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{sock_.fd(), events, 0};
  return ::poll(&p, 1, static_cast<int>(left.count())) >= 0;
}

// After SSL_read or SSL_write returned rc <= 0: true when the call should
// be made again (after waiting for the socket); otherwise throws the reason.
bool TlsStream::retry_or_throw(int rc, const char* doing, const char* did,
                               std::chrono::steady_clock::time_point deadline) {
  int saved = errno;
  int err = SSL_get_error(ssl_.get(), rc);
  std::string who = peer_.empty() ? std::string("peer") : peer_;
  if (err == SSL_ERROR_ZERO_RETURN) throw PeerClosed("connection closed by " + who);
  bool again = err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ||
               (err == SSL_ERROR_SYSCALL && (saved == EAGAIN || saved == EWOULDBLOCK || saved == EINTR));
  if (again) {
    if (wait_for(err, deadline)) return true;
    throw std::runtime_error(std::string("timed out ") + doing + " " + who);
  }
  std::string why = err == SSL_ERROR_SYSCALL ? (saved ? std::strerror(saved) : "connection closed")
                                             : ssl_errors() + " (SSL error " + std::to_string(err) + ")";
  throw std::runtime_error(std::string(did) + " " + who + ": " + why);
}

void TlsStream::read_exact(std::byte* p, size_t n) {
  auto deadline = std::chrono::steady_clock::now() + io_timeout_;
  while (n > 0) {
    int rc = SSL_read(ssl_.get(), p, static_cast<int>(std::min<size_t>(n, 1 << 30)));
    if (rc <= 0) {
      retry_or_throw(rc, "reading from", "read from", deadline);
      continue;
    }
    p += rc;
    n -= static_cast<size_t>(rc);
    deadline = std::chrono::steady_clock::now() + io_timeout_;  // progress: a new deadline
  }
}

void TlsStream::write_all(const std::byte* p, size_t n) {
  auto deadline = std::chrono::steady_clock::now() + io_timeout_;
  while (n > 0) {
    int rc = SSL_write(ssl_.get(), p, static_cast<int>(std::min<size_t>(n, 1 << 30)));
    if (rc <= 0) {
      retry_or_throw(rc, "writing to", "write to", deadline);
      continue;
    }
    p += rc;
    n -= static_cast<size_t>(rc);
    deadline = std::chrono::steady_clock::now() + io_timeout_;
  }
}

void TlsStream::send_frame(std::span<const std::byte> frame) { write_all(frame.data(), frame.size()); }

void TlsStream::send(proto::FrameType type, std::span<const std::byte> payload, int zstd_level) {
  send_frame(proto::make_frame(type, payload, zstd_level));
}

TlsStream::Frame TlsStream::receive() {
  std::byte header[proto::kHeaderSize];
  read_exact(header, sizeof header);
  Frame f;
  f.header = proto::decode_header(header);
  std::vector<std::byte> wire(f.header.wire_len);
  read_exact(wire.data(), wire.size());
  f.payload = proto::open_payload(f.header, wire);
  return f;
}

bool TlsStream::readable(std::chrono::milliseconds wait) {
  // Bytes OpenSSL already took off the socket, decrypted or not, are not
  // visible to poll(): SSL_pending() alone would miss the undecrypted ones.
  if (SSL_has_pending(ssl_.get())) return true;
  pollfd p{sock_.fd(), POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(wait.count())) > 0;
}

}  // namespace hrl
