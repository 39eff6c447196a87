// hrld: the replicator daemon. Per volume, a primary ships its log to the
// secondary site over TLS 1.3; a secondary applies it to its replica.
//
//   hrld --config /etc/hrl/hrld.toml [--io-backend auto|io_uring|libaio]
//
// Runs in the foreground and logs to stderr. SIGTERM or SIGINT stops it
// cleanly: sessions end at a batch boundary, nothing acknowledged is lost.
#include <pthread.h>
#include <systemd/sd-daemon.h>  // sd_watchdog_enabled
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "config.h"
#include "control.h"
#include "metrics.h"
#include "recovery.h"
#include "repl/replica_state.h"
#include "systemd_notify.h"
#include "volume_runtime.h"
#include "io/io_backend.h"
#include "log/superblock.h"
#include "net/tls.h"
#include "repl/session.h"

namespace hrl {
namespace {

using namespace std::chrono_literals;

std::atomic<bool> g_stop{false};
std::mutex g_log_mutex;

void log_line(const std::string& volume, const std::string& msg) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  localtime_r(&ts.tv_sec, &t);
  char when[32];
  strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &t);
  std::lock_guard lock(g_log_mutex);
  fprintf(stderr, "%s.%03ld hrld[%s]: %s\n", when, ts.tv_nsec / 1000000, volume.c_str(), msg.c_str());
}

// Sleeps up to d, waking early when the daemon stops.
void pause_for(std::chrono::duration<double> d) {
  auto until = std::chrono::steady_clock::now() + d;
  while (!g_stop && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(50ms);
}

// The retry schedule: the configured steps, then every retry_every seconds,
// each jittered by up to 10% so sites do not retry in lockstep.
double retry_delay(const Config& c, unsigned attempt, std::mt19937& rng) {
  double base = attempt < c.retry_seconds.size() ? c.retry_seconds[attempt] : c.retry_every;
  return base * std::uniform_real_distribution<double>(0.9, 1.1)(rng);
}

// The Prometheus exposition of every volume's status.
std::string render_metrics(const std::vector<std::unique_ptr<VolumeRuntime>>& volumes) {
  struct Metric {
    const char *name, *type, *help, *key;
  };
  static const Metric kMetrics[] = {
      {"hrl_rpo_seconds", "gauge", "Age of the oldest record shipped and not yet durable on the secondary.",
       "rpo_seconds"},
      {"hrl_durable_seq", "gauge", "Last record durable on the secondary.", "durable_seq"},
      {"hrl_bytes_shipped_total", "counter", "Log bytes shipped, before compression.", "bytes_shipped"},
      {"hrl_bytes_on_wire_total", "counter", "Bytes sent or received on the wire.", "bytes_on_wire"},
      {"hrl_compression_ratio", "gauge", "Log bytes per byte on the wire.", "compression_ratio"},
  };
  std::vector<nlohmann::json> st;
  for (auto& v : volumes) st.push_back(v->status());
  auto labels = [](const nlohmann::json& s, const char* second, const std::string& value) {
    return "{volume=\"" + s["name"].get<std::string>() + "\"," + second + "=\"" + value + "\"}";
  };
  std::string out;
  for (const Metric& m : kMetrics) {
    out += std::string("# HELP ") + m.name + " " + m.help + "\n# TYPE " + m.name + " " + m.type + "\n";
    for (auto& s : st) out += m.name + labels(s, "role", s["role"].get<std::string>()) + " " + s[m.key].dump() + "\n";
  }
  out += "# HELP hrl_resync_remaining_bytes Bytes the running resync pass has still to compare (0: none runs).\n"
         "# TYPE hrl_resync_remaining_bytes gauge\n";
  for (auto& s : st) {
    const auto& r = s["resync"];
    uint64_t left = r["active"].get<bool>() ? r["total_bytes"].get<uint64_t>() - std::min(r["total_bytes"].get<uint64_t>(),
                                                                                        r["done_bytes"].get<uint64_t>())
                                            : 0;
    out += "hrl_resync_remaining_bytes" + labels(s, "role", s["role"].get<std::string>()) + " " + std::to_string(left) + "\n";
  }
  out += "# HELP hrl_replica_consistent 1 when the replica may be recovered from, 0 while a resync leaves it mixed.\n"
         "# TYPE hrl_replica_consistent gauge\n";
  for (auto& s : st)
    if (s.contains("consistent"))
      out += "hrl_replica_consistent" + labels(s, "role", "secondary") + " " + (s["consistent"].get<bool>() ? "1" : "0") + "\n";
  out += "# HELP hrl_volume_state The volume's state (1 for the current one).\n# TYPE hrl_volume_state gauge\n";
  for (auto& s : st) out += "hrl_volume_state" + labels(s, "state", s["state"].get<std::string>()) + " 1\n";
  return out;
}

// The flag a session polls to end early: set within 50 ms of the daemon
// stopping or of `end` turning true.
class SessionStop {
 public:
  explicit SessionStop(std::function<bool()> end) : end_(std::move(end)), watch_([this] { watch(); }) {}
  ~SessionStop() {
    done_ = true;
    watch_.join();
  }
  SessionStop(const SessionStop&) = delete;
  SessionStop& operator=(const SessionStop&) = delete;
  operator const std::atomic<bool>&() const { return flag_; }
  // Before a new session. Under the watcher's lock: a value the watcher read
  // before the caller cleared its reason must not land after this.
  void rearm() {
    std::lock_guard lock(mu_);
    flag_ = g_stop || end_();
  }

 private:
  void watch() {
    while (!g_stop && !done_) {
      {
        std::lock_guard lock(mu_);
        flag_ = g_stop || end_();
      }
      std::this_thread::sleep_for(50ms);
    }
    flag_ = true;
  }
  std::function<bool()> end_;
  std::mutex mu_;
  std::atomic<bool> flag_{false}, done_{false};
  std::thread watch_;  // last: it starts once the rest exists
};

void run_primary(const Config& c, VolumeRuntime& rt, IoBackendKind backend) {
  const VolumeConfig& v = rt.config;
  TlsContext tls(TlsContext::Role::Client, c.tls);
  PrimaryOptions opt;
  opt.log_path = v.log;
  opt.dm_device = v.device;
  opt.data_path = v.data;
  opt.dm_table_data = v.replica;
  opt.handover_marker = rt.handover_marker_path();
  opt.control = &rt.operator_control;
  opt.log = [&v](const std::string& line) { log_line(v.name, line); };
  if (!v.resync_window.empty())
    opt.resync_window = [w = v.resync_window] {
      time_t now = time(nullptr);
      tm t;
      localtime_r(&now, &t);
      return in_window(w, t.tm_hour * 60 + t.tm_min);
    };
  opt.node = c.node;
  opt.backend = backend;
  std::mt19937 rng(std::random_device{}());
  unsigned attempt = 0;
  // The schedule starts over only after progress: what the secondary
  // confirmed (SessionStats::progress), or a session that held for
  // retry_every seconds. A connect and a handshake are not: a secondary that
  // fails every session right after the handshake is retried on the schedule.
  uint64_t progress_seen = rt.stats.progress;
  auto after_progress = [&] {
    if (rt.stats.progress == progress_seen) return;
    progress_seen = rt.stats.progress;
    attempt = 0;
  };
  // A session ends when the daemon stops, the operator pauses the volume, or it changes roles.
  SessionStop session_stop([&rt] { return rt.paused || rt.restart || !rt.is_primary(); });
  while (!g_stop && rt.is_primary()) {
    after_progress();  // of a session a SIGHUP, a pause or a role change ended
    if (rt.paused) {
      rt.set_state("paused");
      pause_for(200ms);
      continue;
    }
    VolumeConfig live = rt.live();  // settings SIGHUP may have changed
    opt.zstd_level = live.compression;
    opt.bandwidth = live.bandwidth;
    opt.resync_bandwidth = live.resync_bandwidth;
    rt.restart = false;
    session_stop.rearm();
    std::optional<std::chrono::steady_clock::time_point> connected;
    try {
      rt.set_state("connecting");
      auto io_timeout = std::chrono::milliseconds(static_cast<int64_t>(c.io_timeout * 1000));
      TlsStream peer(tls, connect_tcp(v.peer, std::min<std::chrono::milliseconds>(io_timeout, 10s)), v.peer_name,
                     io_timeout);
      log_line(v.name, "connected to " + peer.peer() + " at " + v.peer);
      connected = std::chrono::steady_clock::now();
      rt.set_state("replicating");
      run_primary_session(peer, opt, session_stop, rt.stats);
      if (rt.operator_control.handed_over) {
        become_secondary_after_handover(rt);
        log_line(v.name, "this site is the secondary now, at generation " + std::to_string(ReplicaState::load(rt.state_path())->generation));
        return;
      }
      if (g_stop || rt.paused || rt.restart || !rt.is_primary()) continue;
    } catch (const SessionError& e) {
      if (!e.recoverable()) {
        log_line(v.name, "CRITICAL: " + std::string(e.what()) + "; replication of this volume stops until an operator acts");
        rt.set_state("critical", e.what());
        return;  // until a reprotect changes its role
      }
      log_line(v.name, e.what());
      rt.set_state("retrying", e.what());
    } catch (const std::exception& e) {
      log_line(v.name, e.what());
      rt.set_state("retrying", e.what());
    }
    if (g_stop) break;
    after_progress();
    if (connected && std::chrono::steady_clock::now() - *connected >= std::chrono::duration<double>(c.retry_every))
      attempt = 0;  // the link held, idle or not
    double d = retry_delay(c, attempt++, rng);
    char msg[96];
    snprintf(msg, sizeof msg, "next try in %.1f s (attempt %u)", d, attempt);
    log_line(v.name, msg);
    pause_for(std::chrono::duration<double>(d));
  }
}

void run_secondary(const Config& c, VolumeRuntime& rt, IoBackendKind backend) {
  const VolumeConfig& v = rt.config;
  TlsContext tls(TlsContext::Role::Server, c.tls);
  Listener listener(v.listen);
  log_line(v.name, "listening on " + v.listen);
  rt.set_state("listening");
  if (rt.history) rt.history->set_log([&v](const std::string& line) { log_line(v.name, line); });
  SecondaryOptions opt{v.replica, rt.state_path(), rt.history.get(), v.point_interval, c.node, backend,
                       [&rt](const ReplicaState& st, uint64_t generation) { become_primary(rt, st, generation, true); },
                       [&v](const std::string& line) { log_line(v.name, line); }};
  // A session ends when the daemon stops, a failover needs the replica, or the site takes over.
  SessionStop session_stop([&rt] { return rt.hold_sessions || rt.is_primary(); });
  auto last_prune = std::chrono::steady_clock::now();
  while (!g_stop && !rt.is_primary()) {
    Socket s = listener.accept(200ms);
    // in_session before hold_sessions is looked at: a failover either sees
    // the session and waits for it, or the session sees the failover.
    rt.in_session = s.fd() >= 0;
    struct InSession {
      VolumeRuntime& rt;
      ~InSession() { rt.in_session = false; }
    } in_session{rt};
    if (s.fd() >= 0 && rt.hold_sessions) continue;  // dropped: the primary retries after the failover
    if (s.fd() < 0) {
      if (rt.history && std::chrono::steady_clock::now() - last_prune >= 1s) {  // retention goes on between sessions
        last_prune = std::chrono::steady_clock::now();
        try {
          auto st = ReplicaState::load(rt.state_path());
          if (!st || !st->promoted) rt.history->prune(now_realtime_ns());  // a failed-over replica keeps its history
        } catch (const std::exception& e) {
          log_line(v.name, std::string("retention: ") + e.what());
        }
      }
      continue;
    }
    try {
      TlsStream peer(tls, std::move(s), {}, std::chrono::milliseconds(static_cast<int64_t>(c.io_timeout * 1000)));
      log_line(v.name, "primary " + peer.peer() + " connected");
      rt.set_state("replicating");
      session_stop.rearm();
      run_secondary_session(peer, opt, session_stop, rt.stats);
      log_line(v.name, "session ended at durable seq " + std::to_string(rt.stats.durable_seq.load()));
      rt.set_state("listening");
    } catch (const std::exception& e) {
      log_line(v.name, std::string("session ended: ") + e.what());
      rt.set_state("listening", e.what());
    }
  }
}

}  // namespace
}  // namespace hrl

int main(int argc, char** argv) {
  using namespace hrl;
  CLI::App app{"hrld: replicates hrl volumes between sites"};
  std::string config_path, backend = "auto";
  app.add_option("--config", config_path, "the TOML configuration")->required();
  app.add_option("--io-backend", backend, "auto, io_uring or libaio (also HRL_IO_BACKEND)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  Config cfg;
  IoBackendKind kind;
  try {
    cfg = load_config(config_path);
    kind = parse_io_backend_kind(backend);
    TlsContext check(TlsContext::Role::Client, cfg.tls);  // bad certificates fail now, not later
  } catch (const std::exception& e) {
    fprintf(stderr, "hrld: %s\n", e.what());
    return 1;
  }
  // Signals go to a thread of their own; the others never see them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::vector<std::unique_ptr<VolumeRuntime>> volumes;
  try {
    for (const VolumeConfig& v : cfg.volumes) volumes.push_back(std::make_unique<VolumeRuntime>(v));
  } catch (const std::exception& e) {
    fprintf(stderr, "hrld: %s\n", e.what());
    return 1;
  }
  // A failover a crash interrupted is finished first, before any operator
  // command or session can touch the replica.
  for (auto& rt : volumes) {
    try {
      if (std::string done = finish_interrupted_failover(*rt); !done.empty()) log_line(rt->config.name, done);
    } catch (const std::exception& e) {
      log_line(rt->config.name, std::string("CRITICAL: the interrupted failover cannot finish: ") + e.what());
      rt->set_state("critical", e.what());
      rt->hold_sessions = true;
    }
  }
  std::vector<std::thread> workers;
  for (auto& rt : volumes) {
    workers.emplace_back([&cfg, &rt, kind] {
      // A volume runs in its role until a failover, reprotect or failback changes it.
      while (!g_stop) {
        const VolumeConfig::Role role = rt->role();
        try {
          if (role == VolumeConfig::Role::Primary)
            run_primary(cfg, *rt, kind);
          else
            run_secondary(cfg, *rt, kind);
        } catch (const std::exception& e) {
          log_line(rt->config.name, std::string("CRITICAL: ") + e.what());
          rt->set_state("critical", e.what());
        }
        while (!g_stop && rt->role() == role) pause_for(200ms);  // critical: an operator acts
        if (!g_stop) log_line(rt->config.name, std::string("now the ") + (rt->is_primary() ? "primary" : "secondary"));
      }
    });
  }
  std::unique_ptr<MetricsServer> metrics;
  if (!cfg.metrics.empty()) {
    try {
      metrics = std::make_unique<MetricsServer>(cfg.metrics, [&volumes] { return render_metrics(volumes); });
      log_line("-", "metrics on http://" + cfg.metrics + "/metrics");
    } catch (const std::exception& e) {
      log_line("-", std::string("no metrics endpoint: ") + e.what());
    }
  }
  workers.emplace_back([&cfg, &volumes] {
    try {
      serve_control(cfg.control_socket, cfg.node, volumes, g_stop);
    } catch (const std::exception& e) {
      log_line("-", std::string("control socket: ") + e.what());
    }
  });
  std::thread signals([&set, &volumes, &config_path] {
    while (!g_stop) {
      int sig = 0;
      sigwait(&set, &sig);
      if (sig != SIGHUP) {
        log_line("-", std::string("stopping on ") + strsignal(sig));
        g_stop = true;
        notify_systemd("STOPPING=1");
        break;
      }
      // SIGHUP: what can change while running does; the rest needs a restart.
      try {
        Config fresh = load_config(config_path);
        for (auto& rt : volumes)
          for (const VolumeConfig& v : fresh.volumes)
            if (v.name == rt->config.name && v.role == rt->config.role) {
              rt->reload(v);
              rt->restart = true;
            }
        log_line("-", "reloaded bandwidth and compression from " + config_path +
                          " (other changes take a restart)");
      } catch (const std::exception& e) {
        log_line("-", std::string("reload refused, running on: ") + e.what());
      }
    }
  });
  // Under systemd (Type=notify): ready now, and a watchdog at half its interval.
  notify_systemd("READY=1");
  uint64_t watchdog_usec = 0;
  std::thread watchdog;
  if (sd_watchdog_enabled(0, &watchdog_usec) > 0) {
    watchdog = std::thread([watchdog_usec] {
      while (!g_stop) {
        notify_systemd("WATCHDOG=1");
        pause_for(std::chrono::microseconds(watchdog_usec / 2));
      }
    });
  }
  log_line("-", "node " + cfg.node + " running " + std::to_string(cfg.volumes.size()) + " volume(s)");
  for (auto& t : workers) t.join();
  signals.join();
  if (watchdog.joinable()) watchdog.join();
  log_line("-", "stopped");
  return 0;
}
