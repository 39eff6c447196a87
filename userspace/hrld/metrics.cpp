#include "metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>

#include <cstring>
#include <stdexcept>

namespace hrl {
namespace {

MHD_Result handle(void* cls, MHD_Connection* conn, const char* url, const char* method, const char*, const char*,
                  size_t*, void**) {
  auto* self = static_cast<MetricsServer*>(cls);
  bool ok = std::strcmp(method, "GET") == 0 && std::strcmp(url, "/metrics") == 0;
  std::string body = ok ? self->render()() : "not found: try /metrics\n";
  MHD_Response* r = MHD_create_response_from_buffer(body.size(), body.data(), MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
  MHD_Result rc = MHD_queue_response(conn, ok ? MHD_HTTP_OK : MHD_HTTP_NOT_FOUND, r);
  MHD_destroy_response(r);
  return rc;
}

}  // namespace

MetricsServer::MetricsServer(const std::string& address, std::function<std::string()> render)
    : render_(std::move(render)) {
  auto colon = address.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  if (colon == std::string::npos || inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr) != 1)
    throw std::invalid_argument("metrics address '" + address + "' is not IPv4 address:port");
  uint16_t port = static_cast<uint16_t>(std::stoi(address.substr(colon + 1)));
  sa.sin_port = htons(port);
  daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, port, nullptr, nullptr, &handle, this,
                             MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
  if (!daemon_) throw std::runtime_error("cannot serve metrics on " + address);
}

MetricsServer::~MetricsServer() {
  if (daemon_) MHD_stop_daemon(daemon_);
}

}  // namespace hrl
