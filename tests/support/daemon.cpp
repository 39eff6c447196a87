#include "daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <thread>

#include "net/tls.h"

namespace hrl::test {

std::string run_hrlctl(const std::string& args, int* status) {
  std::string cmd = std::string(HRLCTL_BIN) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

PairConfigs write_pair_configs(const std::string& dir, const std::string& log, const std::string& data,
                               const std::string& replica, const std::string& primary_extra,
                               const std::string& secondary_extra, uint16_t metrics_port) {
  int st = 0;
  std::string out = run_hrlctl("cert init --dir " + dir + " --site site", &st);
  for (std::string n : {"site-a", "site-b"})
    if (st == 0) out = run_hrlctl("cert issue --dir " + dir + " " + n, &st);
  if (st != 0) throw std::runtime_error("hrlctl cert: " + out);
  PairConfigs c{dir + "/primary.toml", dir + "/secondary.toml", 0};
  {
    Listener probe("127.0.0.1:0");  // a free port for the secondary
    c.port = probe.port();
  }
  auto node = [&](const std::string& n) {
    return "[node]\nname = \"" + n + "\"\ncert = \"" + dir + "/" + n + ".pem\"\nkey = \"" + dir + "/" + n +
           ".key\"\nca = \"" + dir + "/ca.pem\"\n" + kFastRetrySchedule + "\n" +
           "control_socket = \"" + dir + "/" + n + ".sock\"\nmetrics = \"" +
           (n == "site-a" && metrics_port ? "127.0.0.1:" + std::to_string(metrics_port) : "") + "\"\n";
  };
  std::ofstream(c.primary) << node("site-a") << "[[volume]]\nname = \"db0\"\nrole = \"primary\"\nlog = \"" << log
                           << "\"\ndata = \"" << data << "\"\npeer = \"127.0.0.1:" << c.port
                           << "\"\npeer_name = \"site-b\"\n" << primary_extra;
  std::ofstream(c.secondary) << node("site-b") << "[[volume]]\nname = \"db0\"\nrole = \"secondary\"\nlisten = \"127.0.0.1:"
                             << c.port << "\"\nreplica = \"" << replica << "\"\nstate_dir = \"" << dir << "\"\n"
                             << secondary_extra;
  return c;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

size_t count_of(const std::string& text, const std::string& what, size_t from) {
  size_t n = 0;
  for (size_t at = from; (at = text.find(what, at)) != std::string::npos; at += what.size()) n++;
  return n;
}

void set_retry_schedule(const std::string& config, const std::string& schedule) {
  std::string text = slurp(config);
  auto at = text.find(kFastRetrySchedule);
  if (at == std::string::npos) throw std::runtime_error(config + " has no retry schedule to replace");
  text.replace(at, std::string(kFastRetrySchedule).size(), schedule);
  std::ofstream(config) << text;
}

Daemon::Daemon(std::string config, std::string log_path, std::string backend, std::string netns,
               std::string notify_socket)
    : config_(std::move(config)), log_(std::move(log_path)), backend_(std::move(backend)), netns_(std::move(netns)),
      notify_(std::move(notify_socket)) {
  start();
}

void Daemon::start() {
  pid_ = fork();
  if (pid_ == 0) {
    int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 2);
    setenv("HRL_IO_BACKEND", backend_.c_str(), 1);
    if (!notify_.empty()) {  // as systemd runs a Type=notify service with WatchdogSec=
      setenv("NOTIFY_SOCKET", notify_.c_str(), 1);
      setenv("WATCHDOG_USEC", "200000", 1);
      setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
    }
    if (!netns_.empty())  // ip netns exec enters the namespace and execs hrld in this process
      execlp("ip", "ip", "netns", "exec", netns_.c_str(), HRLD_BIN, "--config", config_.c_str(), nullptr);
    execl(HRLD_BIN, "hrld", "--config", config_.c_str(), nullptr);
    _exit(127);
  }
}

int Daemon::stop(int sig) {
  if (pid_ <= 0) return 0;
  kill(pid_, sig);
  // hrld stops within a second of SIGTERM; one that does not is a failure
  // the test reports, not a test that hangs until CI gives up.
  int st = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (waitpid(pid_, &st, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      fprintf(stderr, "hrld %d did not stop within 20 s of signal %d: killed (its log: %s)\n", pid_, sig,
              log_.c_str());
      kill(pid_, SIGABRT);  // a core and a backtrace where the system keeps them
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      kill(pid_, SIGKILL);
      waitpid(pid_, &st, 0);
      pid_ = -1;
      return kDidNotStop;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

}  // namespace hrl::test
