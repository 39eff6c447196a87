#include "config.h"

#include <cstdio>

#include <toml++/toml.h>

#include <stdexcept>

namespace hrl {
namespace {

// "10M", "512K", "1G" (bytes, binary multiples) or a plain number.
uint64_t parse_size(const toml::node_view<const toml::node>& v, const std::string& where, const char* key) {
  if (auto n = v.value<int64_t>()) return static_cast<uint64_t>(*n);
  auto s = v.value<std::string>();
  if (!s || s->empty()) return 0;
  size_t used = 0;
  double x = -1;
  try {
    x = std::stod(*s, &used);
  } catch (const std::exception&) {  // not a number at all: the message below says so
  }
  std::string unit = s->substr(used);
  double mul = unit.empty() ? 1 : unit == "K" ? 1 << 10 : unit == "M" ? 1 << 20 : unit == "G" ? 1 << 30 : -1;
  if (mul < 0 || x < 0) throw std::runtime_error(where + ": " + key + " '" + *s + "' is not a number with K, M or G");
  return static_cast<uint64_t>(x * mul);
}

std::string need(const toml::table& t, const std::string& key, const std::string& where) {
  auto v = t[key].value<std::string>();
  if (!v || v->empty()) throw std::runtime_error(where + ": '" + key + "' is missing");
  return *v;
}

}  // namespace

std::string missing_for_primary(const VolumeConfig& v) {
  for (auto [key, value] : {std::pair{"log", &v.log}, {"peer", &v.peer}, {"peer_name", &v.peer_name}})
    if (value->empty()) return std::string("'") + key + "' is missing (a primary ships its log to its peer)";
  if (v.data.empty()) return "'data' (the volume's data device) is required without 'device'";
  return {};
}

std::string missing_for_secondary(const VolumeConfig& v) {
  for (auto [key, value] : {std::pair{"listen", &v.listen}, {"replica", &v.replica}, {"state_dir", &v.state_dir}})
    if (value->empty()) return std::string("'") + key + "' is missing (a secondary keeps a replica)";
  return {};
}

bool in_window(const std::string& window, int minutes) {
  int h1, m1, h2, m2;
  char tail;
  if (std::sscanf(window.c_str(), "%d:%d-%d:%d%c", &h1, &m1, &h2, &m2, &tail) != 4 || h1 < 0 || h1 > 23 || h2 < 0 ||
      h2 > 23 || m1 < 0 || m1 > 59 || m2 < 0 || m2 > 59)
    throw std::runtime_error("'" + window + "' is not HH:MM-HH:MM");
  int from = h1 * 60 + m1, to = h2 * 60 + m2;
  if (from == to) return true;  // the whole day
  return from < to ? minutes >= from && minutes < to : minutes >= from || minutes < to;
}

Config load_config(const std::string& path) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw std::runtime_error(path + ": " + std::string(e.description()) + " at line " +
                             std::to_string(e.source().begin.line));
  }
  Config c;
  const toml::table* node = root["node"].as_table();
  if (!node) throw std::runtime_error(path + ": no [node] section");
  c.node = need(*node, "name", path + " [node]");
  c.tls = {need(*node, "cert", path + " [node]"), need(*node, "key", path + " [node]"),
           need(*node, "ca", path + " [node]")};
  if (auto* retry = (*node)["retry_seconds"].as_array()) {
    c.retry_seconds.clear();
    for (auto& v : *retry) c.retry_seconds.push_back(v.value<double>().value_or(1));
  }
  c.retry_every = (*node)["retry_every"].value<double>().value_or(c.retry_every);
  c.io_timeout = (*node)["io_timeout"].value<double>().value_or(c.io_timeout);
  if (c.io_timeout < 0.1) throw std::runtime_error(path + " [node]: io_timeout must be at least 0.1 s");
  c.control_socket = (*node)["control_socket"].value<std::string>().value_or(c.control_socket);
  c.metrics = (*node)["metrics"].value<std::string>().value_or(c.metrics);

  const toml::array* vols = root["volume"].as_array();
  if (!vols || vols->empty()) throw std::runtime_error(path + ": no [[volume]]");
  for (auto& item : *vols) {
    const toml::table* t = item.as_table();
    if (!t) throw std::runtime_error(path + ": [[volume]] is not a table");
    VolumeConfig v;
    v.name = need(*t, "name", path + " [[volume]]");
    std::string where = path + " volume " + v.name;
    std::string role = need(*t, "role", where);
    if (role != "primary" && role != "secondary")
      throw std::runtime_error(where + ": role is 'primary' or 'secondary', not '" + role + "'");
    v.role = role == "primary" ? VolumeConfig::Role::Primary : VolumeConfig::Role::Secondary;
    // What a primary needs: required on the site that starts as one; on the
    // other site, what it needs to take over (planned failover, reprotect).
    auto text = [&](const char* key) { return (*t)[key].value<std::string>().value_or(""); };
    v.log = text("log");
    v.peer = text("peer");
    v.peer_name = text("peer_name");
    v.device = text("device");
    v.compression = static_cast<int>((*t)["compression"].value<int64_t>().value_or(1));
    if (v.compression < 0 || v.compression > 19) throw std::runtime_error(where + ": compression is 0 to 19");
    v.bandwidth = parse_size(toml::node_view<const toml::node>((*t)["bandwidth"].node()), where, "bandwidth");
    v.resync_bandwidth =
        parse_size(toml::node_view<const toml::node>((*t)["resync_bandwidth"].node()), where, "resync_bandwidth");
    v.resync_window = text("resync_window");
    if (!v.resync_window.empty()) {
      try {
        in_window(v.resync_window, 0);
      } catch (const std::exception& e) {
        throw std::runtime_error(where + ": resync_window: " + e.what());
      }
    }
    // What a secondary needs, likewise.
    v.listen = text("listen");
    v.replica = text("replica");
    v.state_dir = text("state_dir");
    v.data = (*t)["data"].value<std::string>().value_or(!v.device.empty() ? "/dev/mapper/" + v.device : v.replica);
    v.history = (*t)["history"].value<bool>().value_or(v.history);
    v.point_interval = (*t)["point_interval"].value<double>().value_or(v.point_interval);
    if (v.point_interval < 0.1) throw std::runtime_error(where + ": point_interval must be at least 0.1 s");
    v.retention_hours = (*t)["retention_hours"].value<double>().value_or(v.retention_hours);
    if (v.retention_hours < 0) throw std::runtime_error(where + ": retention_hours is 0 (no limit by age) or more");
    v.retention_bytes = parse_size(toml::node_view<const toml::node>((*t)["retention_size"].node()), where, "retention_size");
    if ((*t)["history_segment"])
      v.history_segment = parse_size(toml::node_view<const toml::node>((*t)["history_segment"].node()), where, "history_segment");
    if (v.history_segment < (1 << 20)) throw std::runtime_error(where + ": history_segment is at least 1M");
    if (auto r = (*t)["history_reserve"].value<std::string>(); r && !r->empty() && r->back() == '%') {
      double pct = -1;
      try {
        pct = std::stod(r->substr(0, r->size() - 1));
      } catch (const std::exception&) {  // the message below says so
      }
      if (!(pct >= 0 && pct <= 90)) throw std::runtime_error(where + ": history_reserve '" + *r + "' is not a percentage from 0% to 90%");
      v.history_reserve_fraction = pct / 100;
    } else if ((*t)["history_reserve"]) {
      v.history_reserve_bytes =
          parse_size(toml::node_view<const toml::node>((*t)["history_reserve"].node()), where, "history_reserve");
      v.history_reserve_fraction = 0;
    }
    if (v.retention_bytes && v.retention_bytes < 4 * v.history_segment)
      throw std::runtime_error(where + ": retention_size must hold at least 4 history segments (history_segment is " +
                               std::to_string(v.history_segment >> 20) + "M)");
    if (v.role == VolumeConfig::Role::Primary) {
      if (std::string why = missing_for_primary(v); !why.empty()) throw std::runtime_error(where + ": " + why);
    } else if (std::string why = missing_for_secondary(v); !why.empty()) {
      throw std::runtime_error(where + ": " + why);
    }
    c.volumes.push_back(std::move(v));
  }
  return c;
}

}  // namespace hrl
