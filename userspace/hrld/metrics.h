// The Prometheus text endpoint (GET /metrics), on loopback by default
// (127.0.0.1:9477): the figures of hrlctl status, for scraping.
#pragma once

#include <functional>
#include <memory>
#include <string>

struct MHD_Daemon;

namespace hrl {

class MetricsServer {
 public:
  // address "127.0.0.1:9477"; render returns the exposition text.
  MetricsServer(const std::string& address, std::function<std::string()> render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  const std::function<std::string()>& render() const { return render_; }

 private:
  std::function<std::string()> render_;
  MHD_Daemon* daemon_ = nullptr;
};

}  // namespace hrl
