#include "daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>

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

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
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
  int st = 0;
  waitpid(pid_, &st, 0);
  pid_ = -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

}  // namespace hrl::test
