// hrld's configuration file (TOML), checked as a whole when it is read.
#pragma once

#include <string>
#include <vector>

#include "net/tls.h"

namespace hrl {

// A volume's settings on this site. `role` is the one it starts in; a site
// that may change roles (planned failover, reprotect) has the other role's
// settings too, and keeps its current role in <state_dir>/<name>.role.
struct VolumeConfig {
  std::string name;
  enum class Role { Primary, Secondary } role = Role::Primary;
  // primary
  std::string log;        // the .hrl log (the dm-hrl log device, or a LogWriter's)
  std::string device;     // the dm-hrl device (e.g. "hrl-db0") when the module writes the log
  std::string peer;       // host:port of the secondary
  std::string peer_name;  // the secondary's certificate name
  int compression = 1;    // zstd level, 0 = none
  uint64_t bandwidth = 0; // bytes per second on the wire, 0 = unlimited
  std::string data;       // the data the resync reads: /dev/mapper/<device>, or a LogWriter's data device
  uint64_t resync_bandwidth = 0;  // resync bytes per second on the wire, 0 = unlimited
  // Automatic resyncs start and run only inside this local-time window
  // ("22:00-06:00"); empty: any time. Operator requests ignore it.
  std::string resync_window;
  // secondary
  std::string listen;     // host:port
  std::string replica;    // the replica device or image
  std::string state_dir;  // where the replica's state file lives
  bool history = true;    // keep before-images (<state_dir>/<name>.undo/) to rebuild earlier images
  double point_interval = 300;  // seconds between crash-consistent points (with history)
  double retention_hours = 24;  // points older than this go, with the history only they needed
  uint64_t retention_bytes = 0; // the undo journal's size limit, 0 = none
  uint64_t history_segment = 64ull << 20;  // history is dropped a segment (file) at a time
  // The free space history leaves on state_dir's file system ("10%" of it,
  // or a size): the oldest history goes first, then history is suspended.
  uint64_t history_reserve_bytes = 0;
  double history_reserve_fraction = 0.10;
};

struct Config {
  std::string node;
  std::string control_socket = "/run/hrl/hrld.sock";
  std::string metrics = "127.0.0.1:9477";  // Prometheus text endpoint; "" turns it off
  TlsConfig tls;
  std::vector<double> retry_seconds = {1, 2, 4, 8, 10};  // then retry_every
  double retry_every = 30;
  double io_timeout = 30;  // seconds without progress before a session is given up
  std::vector<VolumeConfig> volumes;
};

// Whether the local time of day `minutes` (0..1439) is inside a "HH:MM-HH:MM"
// window (which may wrap past midnight); throws on a malformed window.
bool in_window(const std::string& window, int minutes);

// What a volume's settings lack for a role ("" when nothing): a site needs
// both sets to change roles (planned failover, reprotect, failback).
std::string missing_for_primary(const VolumeConfig& v);
std::string missing_for_secondary(const VolumeConfig& v);

// Throws std::runtime_error naming the file and the key at fault.
Config load_config(const std::string& path);

}  // namespace hrl
