#include "control.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

#include "history/point_catalog.h"
#include "io/file.h"
#include "net/tls.h"
#include "recovery.h"

namespace hrl {
namespace {

nlohmann::json answer(const nlohmann::json& req, const std::string& node,
                      std::vector<std::unique_ptr<VolumeRuntime>>& volumes) {
  std::string cmd = req.value("cmd", "");
  if (cmd == "status") {
    nlohmann::json out{{"node", node}, {"volumes", nlohmann::json::array()}};
    for (auto& v : volumes) out["volumes"].push_back(v->status());
    return out;
  }
  if (cmd == "pause" || cmd == "resume") {
    std::string name = req.value("volume", "");
    for (auto& v : volumes) {
      if (v->config.name != name) continue;
      if (!v->is_primary())
        return {{"ok", false}, {"error", "volume " + name + " is a secondary here: pause it on its primary"}};
      v->paused = cmd == "pause";
      return {{"ok", true}};
    }
    return {{"ok", false}, {"error", "no volume named '" + name + "'"}};
  }
  if (cmd == "resync" || cmd == "resync-result") {
    std::string name = req.value("volume", "");
    for (auto& v : volumes) {
      if (v->config.name != name) continue;
      if (!v->is_primary())
        return {{"ok", false},
                {"error", "volume " + name + " is a secondary here: a resync or verify is run on its primary"}};
      if (cmd == "resync-result") return v->resync_result();
      std::string mode = req.value("mode", "checksum");
      proto::ResyncMode m = mode == "checksum" ? proto::ResyncMode::Checksum
                            : mode == "copy"   ? proto::ResyncMode::Copy
                            : mode == "verify" ? proto::ResyncMode::Verify
                                               : proto::ResyncMode{};
      if (m == proto::ResyncMode{}) return {{"ok", false}, {"error", "mode is checksum, copy or verify, not " + mode}};
      if (v->operator_control.requested)
        return {{"ok", false}, {"error", "volume " + name + " already has a resync or verify waiting to start"}};
      uint64_t id = ++v->operator_control.request_id;
      v->operator_control.requested = static_cast<uint32_t>(m);
      return {{"ok", true}, {"id", id}};
    }
    return {{"ok", false}, {"error", "no volume named '" + name + "'"}};
  }
  if (cmd == "points") {
    std::string name = req.value("volume", "");
    for (auto& v : volumes) {
      if (v->config.name != name) continue;
      if (!v->history)
        return {{"ok", false},
                {"error", "volume " + name + " keeps no recovery points here: they live on its secondary, with history = true"}};
      nlohmann::json list = nlohmann::json::array();
      for (const RecoveryPoint& p : v->history->points())
        list.push_back({{"id", p.id}, {"seq", p.seq}, {"kind", point_kind_name(p.kind)}, {"name", p.name},
                        {"created_ns", p.created_ns}});
      return {{"ok", true}, {"points", list}};
    }
    return {{"ok", false}, {"error", "no volume named '" + name + "'"}};
  }
  using Handler = nlohmann::json (*)(VolumeRuntime&, const nlohmann::json&);
  static const std::pair<const char*, Handler> kRecovery[] = {
      {"point-create", create_point},
      {"failover-test", start_test_failover},
      {"failover-test-cleanup", [](VolumeRuntime& v, const nlohmann::json&) { return cleanup_test_failover(v); }},
      {"failover", fail_over},
      {"commit", [](VolumeRuntime& v, const nlohmann::json&) { return commit_failover(v); }},
      {"handover", request_handover},
      {"reprotect", [](VolumeRuntime& v, const nlohmann::json&) { return reprotect(v); }},
  };
  for (auto [name, handler] : kRecovery) {
    if (cmd != name) continue;
    std::string volume = req.value("volume", "");
    for (auto& v : volumes)
      if (v->config.name == volume) return handler(*v, req);
    return {{"ok", false}, {"error", "no volume named '" + volume + "'"}};
  }
  return {{"ok", false}, {"error", "unknown command '" + cmd + "'"}};
}

}  // namespace

void serve_control(const std::string& path, const std::string& node,
                   std::vector<std::unique_ptr<VolumeRuntime>>& volumes, const std::atomic<bool>& stop) {
  Socket sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) throw std::runtime_error("control socket path too long: " + path);
  std::strcpy(sa.sun_path, path.c_str());
  ::unlink(path.c_str());
  mode_t old = ::umask(0177);  // 0600 from the start: no window where others could connect
  int rc = ::bind(sock.fd(), reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  ::umask(old);
  if (rc < 0) throw_errno(errno, "bind the control socket " + path);
  if (::listen(sock.fd(), 8) < 0) throw_errno(errno, "listen on " + path);
  while (!stop) {
    pollfd p{sock.fd(), POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    Socket c(::accept4(sock.fd(), nullptr, nullptr, SOCK_CLOEXEC));
    if (c.fd() < 0) continue;
    timeval tv{2, 0};
    setsockopt(c.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string req;
    char buf[4096];
    ssize_t n;
    while (req.find('\n') == std::string::npos && req.size() < 65536 && (n = ::read(c.fd(), buf, sizeof buf)) > 0)
      req.append(buf, static_cast<size_t>(n));
    nlohmann::json reply;
    try {
      reply = answer(nlohmann::json::parse(req), node, volumes);
    } catch (const std::exception& e) {
      reply = {{"ok", false}, {"error", std::string("bad request: ") + e.what()}};
    }
    std::string out = reply.dump() + "\n";
    (void)!::write(c.fd(), out.data(), out.size());
  }
  ::unlink(path.c_str());
}

}  // namespace hrl
