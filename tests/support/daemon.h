// Real hrld processes for the integration tests: started with fork/exec,
// killed with any signal; and hrlctl run as an operator types it.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <string>

namespace hrl::test {

// hrlctl with these arguments (stderr folded into the output); *status gets its exit status.
std::string run_hrlctl(const std::string& args, int* status = nullptr);
std::string slurp(const std::string& path);
// How many times `what` occurs in text from `from` on.
size_t count_of(const std::string& text, const std::string& what, size_t from = 0);

// The retry schedule write_pair_configs gives both sites, and a way to give
// a config another one (a TOML fragment: retry_seconds, retry_every, ...).
inline const char kFastRetrySchedule[] = "retry_seconds = [0.05, 0.1]\nretry_every = 0.2";
void set_retry_schedule(const std::string& config, const std::string& schedule);

// The certificates (made with hrlctl cert) and the two hrld configs of a
// pair on loopback: site-a is the primary of volume db0 (log, data),
// site-b its secondary (replica, state in the same directory). Each
// config's control socket is <dir>/<site>.sock. The extras are appended to
// each volume's table; with metrics_port, site-a serves its metrics there.
struct PairConfigs {
  std::string primary, secondary;
  uint16_t port = 0;
};
PairConfigs write_pair_configs(const std::string& dir, const std::string& log, const std::string& data,
                               const std::string& replica, const std::string& primary_extra = "",
                               const std::string& secondary_extra = "", uint16_t metrics_port = 0);

class Daemon {
 public:
  // hrld --config config, its stderr appended to log_path, HRL_IO_BACKEND=backend;
  // inside network namespace netns when given; with systemd's notify socket when given.
  Daemon(std::string config, std::string log_path, std::string backend, std::string netns = {},
         std::string notify_socket = {});
  ~Daemon() { stop(SIGKILL); }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  pid_t pid() const { return pid_; }
  void start();
  // Sends sig and reaps: the exit status, or -sig when it died of a signal,
  // or kDidNotStop when it was still running 20 s later (then it is killed).
  static constexpr int kDidNotStop = -1000;
  int stop(int sig);

 private:
  std::string config_, log_, backend_, netns_, notify_;
  pid_t pid_ = -1;
};

}  // namespace hrl::test
