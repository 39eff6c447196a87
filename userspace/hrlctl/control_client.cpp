#include "control_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "io/file.h"
#include "net/tls.h"

namespace hrl {

nlohmann::json request(const std::string& path, const nlohmann::json& req) {
  Socket s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  if (::connect(s.fd(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0)
    throw std::runtime_error("cannot reach hrld at " + path + ": " + std::strerror(errno) + " (is hrld running?)");
  std::string out = req.dump() + "\n";
  if (::write(s.fd(), out.data(), out.size()) != static_cast<ssize_t>(out.size())) throw_errno(errno, "write " + path);
  std::string in;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(s.fd(), buf, sizeof buf)) > 0) in.append(buf, static_cast<size_t>(n));
  return nlohmann::json::parse(in);
}

nlohmann::json volume_status(const std::string& sock, const std::string& volume) {
  nlohmann::json st = request(sock, {{"cmd", "status"}});
  for (const nlohmann::json& v : st["volumes"])
    if (v.value("name", "") == volume) return v;
  throw std::runtime_error("hrld no longer reports volume " + volume);
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, u++;
  char s[32];
  snprintf(s, sizeof s, u ? "%.1f %s" : "%.0f %s", b, units[u]);
  return s;
}

}  // namespace hrl
