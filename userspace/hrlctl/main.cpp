// hrlctl: the operator's command line for hrl.
//
//   hrlctl status [--json]            volumes of the local hrld: role, state, RPO, throughput
//   hrlctl pause VOLUME | resume VOLUME   stop or restart shipping (tracking never stops)
//   hrlctl resync VOLUME [--full] [--json]   compare by checksum and send what differs (--full: copy all)
//   hrlctl verify VOLUME [--json]     compare and report the ranges that differ; change nothing
//   hrlctl points VOLUME [--json]     the recovery points its secondary keeps
//   hrlctl point create VOLUME --name N [--freeze MOUNTPOINT] [--timeout S]   (primary) a named or app-consistent point
//   hrlctl failover VOLUME --test [--point ID] [--image PATH] | --cleanup     (secondary) a test failover
//   hrlctl failover VOLUME [--point ID]   (secondary) unplanned: promote the replica at a point (default: latest)
//   hrlctl commit VOLUME              (secondary) make the failover final; its history is discarded
//   hrlctl failover VOLUME --planned  (primary, writes stopped) drain, verify, the secondary takes over
//   hrlctl reprotect VOLUME           after an unplanned failover, on both sites: reverse the pair
//   hrlctl failback VOLUME            a planned failover back to the volume's home site
//   hrlctl volume create NAME --data DEV --log DEV [--ring-size SIZE] [--assume-in-sync] [--force]
//   hrlctl volume remove NAME         /dev/mapper/hrl-NAME, through dm-hrl
//   hrlctl cert init --dir DIR --site NAME    a site CA
//   hrlctl cert issue --dir DIR NODE          a node certificate signed by it
//
// --socket (or HRL_CONTROL_SOCKET) names hrld's control socket.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>

#include "control_client.h"
#include "recovery_command.h"
#include "resync_command.h"
#include "dm/dm_control.h"
#include "io/file.h"
#include "log/format_log.h"
#include "net/certs.h"
#include "net/tls.h"

namespace hrl {
namespace {

using json = nlohmann::json;

int cmd_status(const std::string& sock, bool as_json) {
  json st = request(sock, {{"cmd", "status"}});
  if (as_json) {
    std::cout << st.dump(2) << "\n";
    return 0;
  }
  printf("node %s\n", st.value("node", "?").c_str());
  printf("%-12s %-10s %-12s %12s %9s %12s %7s  %s\n", "VOLUME", "ROLE", "STATE", "DURABLE SEQ", "RPO", "SHIPPED",
         "RATIO", "LAST ERROR");
  for (const json& v : st["volumes"]) {
    char rpo[32];
    snprintf(rpo, sizeof rpo, "%.1f s", v.value("rpo_seconds", 0.0));
    printf("%-12s %-10s %-12s %12llu %9s %12s %6.2fx  %s\n", v.value("name", "").c_str(), v.value("role", "").c_str(),
           v.value("state", "").c_str(), static_cast<unsigned long long>(v.value("durable_seq", 0ULL)), rpo,
           human_bytes(v.value("bytes_shipped", 0.0)).c_str(), v.value("compression_ratio", 1.0),
           v.value("last_error", "").c_str());
    const json& r = v.contains("resync") ? v["resync"] : json::object();
    if (r.value("active", false)) {
      double total = r.value("total_bytes", 0.0), done = r.value("done_bytes", 0.0);
      printf("  %s (%s): %.0f%% of %s, %s/s, ETA %.0f s%s\n", r.value("mode", "").c_str(), r.value("reason", "").c_str(),
             total > 0 ? 100 * done / total : 0.0, human_bytes(total).c_str(),
             human_bytes(r.value("rate_bytes_per_second", 0.0)).c_str(), r.value("eta_seconds", 0.0),
             r.value("waiting_for_window", false) ? ", waiting for its window" : "");
    }
  }
  return 0;
}

int cmd_points(const std::string& sock, const std::string& volume, bool as_json) {
  json r = request(sock, {{"cmd", "points"}, {"volume", volume}});
  if (!r.value("ok", false)) {
    fprintf(stderr, "hrlctl points: %s\n", r.value("error", "failed").c_str());
    return 1;
  }
  if (as_json) {
    std::cout << r["points"].dump(2) << "\n";
    return 0;
  }
  printf("%-6s %-12s %-17s %-20s %s\n", "ID", "SEQ", "KIND", "TAKEN", "NAME");
  for (const json& p : r["points"]) {
    time_t t = static_cast<time_t>(p.value("created_ns", 0ULL) / 1000000000ULL);
    tm lt;
    localtime_r(&t, &lt);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &lt);
    printf("%-6lld %-12llu %-17s %-20s %s\n", static_cast<long long>(p.value("id", 0LL)),
           static_cast<unsigned long long>(p.value("seq", 0ULL)), p.value("kind", "").c_str(), when,
           p.value("name", "").c_str());
  }
  return 0;
}

// Formats the log for the data device and maps /dev/mapper/hrl-<name>.
int cmd_volume_create(const std::string& name, const std::string& data_path, const std::string& log_path,
                      const FormatOptions& fopt, bool force) {
  File data = File::open(data_path, O_RDONLY);
  File log = File::open(log_path, O_RDWR);
  if (auto old = existing_log(log); old && !force) {
    fprintf(stderr, "hrlctl: %s already holds the log of volume %s; --force formats it again (its records are lost)\n",
            log_path.c_str(), uuid_string(old->uuid).c_str());
    return 1;
  }
  uint64_t sectors = data.size() / HRL_SECTOR_SIZE;
  Superblock sb = format_log(log, sectors, fopt);
  log.close();
  dm_create("hrl-" + name, sectors, "hrl", data_path + " " + log_path);
  printf("volume %s: /dev/mapper/hrl-%s over %s, log %s (volume %s, ring %llu MiB)%s\n", name.c_str(), name.c_str(),
         data_path.c_str(), log_path.c_str(), uuid_string(sb.uuid).c_str(),
         static_cast<unsigned long long>(sb.ring_bytes >> 20),
         fopt.assume_in_sync ? "" : "; the first resync copies the whole device");
  return 0;
}

int cmd_simple(const std::string& sock, const std::string& cmd, const std::string& volume) {
  json r = request(sock, {{"cmd", cmd}, {"volume", volume}});
  if (!r.value("ok", false)) {
    fprintf(stderr, "hrlctl %s: %s\n", cmd.c_str(), r.value("error", "failed").c_str());
    return 1;
  }
  printf("%s %sd\n", volume.c_str(), cmd.c_str());
  return 0;
}

}  // namespace
}  // namespace hrl

int main(int argc, char** argv) {
  using namespace hrl;
  CLI::App app{"hrlctl: operate hrl replication"};
  app.require_subcommand(1);
  app.fallthrough();  // --socket after the subcommand, as operators type it
  const char* env = std::getenv("HRL_CONTROL_SOCKET");
  std::string sock = env ? env : "/run/hrl/hrld.sock";
  app.add_option("--socket", sock, "hrld's control socket");

  bool as_json = false;
  auto* status = app.add_subcommand("status", "volumes of the local hrld: role, state, RPO, throughput");
  status->add_flag("--json", as_json, "machine-readable output");
  std::string volume;
  auto* pause = app.add_subcommand("pause", "stop shipping a primary volume (writes are still tracked)");
  pause->add_option("volume", volume, "volume name")->required();
  auto* resume = app.add_subcommand("resume", "ship a paused volume again");
  resume->add_option("volume", volume, "volume name")->required();

  bool full = false, detach = false;
  auto* resync = app.add_subcommand("resync", "compare the sites by checksum and send the blocks that differ");
  resync->add_option("volume", volume, "volume name")->required();
  resync->add_flag("--full", full, "copy every block without comparing (a replica that cannot be trusted)");
  resync->add_flag("--json", as_json, "progress as JSON lines");
  resync->add_flag("--no-wait", detach, "start it and return");
  auto* verify = app.add_subcommand("verify", "compare the sites by checksum and report the ranges that differ");
  verify->add_option("volume", volume, "volume name")->required();
  verify->add_flag("--json", as_json, "progress as JSON lines, then the result");

  auto* points = app.add_subcommand("points", "the recovery points a secondary keeps for a volume");
  points->add_option("volume", volume, "volume name")->required();
  points->add_flag("--json", as_json, "machine-readable output");

  auto* point = app.add_subcommand("point", "take a recovery point on a primary");
  point->require_subcommand(1);
  std::string point_name, freeze;
  double freeze_timeout = 10;
  auto* pcreate = point->add_subcommand("create", "put a named point into the volume's log (dm-hrl)");
  pcreate->add_option("volume", volume, "volume name")->required();
  pcreate->add_option("--name", point_name, "the point's name (no spaces)")->required();
  pcreate->add_option("--freeze", freeze, "freeze the file system mounted here around it: an app-consistent point");
  pcreate->add_option("--timeout", freeze_timeout, "seconds the freeze may hold the application (default 10)");
  pcreate->add_flag("--json", as_json, "machine-readable output");

  FailoverRequest fo;
  auto* failover = app.add_subcommand("failover", "test failover, or unplanned failover of a secondary at a point");
  failover->add_option("volume", volume, "volume name")->required();
  auto* fo_test = failover->add_flag("--test", fo.test, "build a writable image of the point; replication goes on");
  auto* fo_cleanup = failover->add_flag("--cleanup", fo.cleanup, "remove the test failover's image")->excludes(fo_test);
  failover->add_flag("--planned", fo.planned, "on the primary, writes stopped: drain, verify, hand over")
      ->excludes(fo_test)
      ->excludes(fo_cleanup);
  failover->add_option("--point", fo.point, "the point's id (hrlctl points); default: the newest (--test), "
                                            "the latest write (unplanned)");
  failover->add_option("--image", fo.image, "--test: where the image goes (a new file, or a device)")->needs(fo_test);
  failover->add_flag("--json", fo.as_json, "machine-readable output");
  auto* commit = app.add_subcommand("commit", "make an unplanned failover final (its history is discarded)");
  commit->add_option("volume", volume, "volume name")->required();
  auto* reprotect = app.add_subcommand("reprotect", "after an unplanned failover: reverse the pair (run on both sites)");
  reprotect->add_option("volume", volume, "volume name")->required();
  auto* failback = app.add_subcommand("failback", "a planned failover back to the volume's home site");
  failback->add_option("volume", volume, "volume name")->required();
  failback->add_flag("--json", fo.as_json, "machine-readable output");

  auto* vol = app.add_subcommand("volume", "create or remove a protected volume (dm-hrl)");
  vol->require_subcommand(1);
  std::string vname, vdata, vlog;
  FormatOptions fopt;
  bool force = false;
  auto* vcreate = vol->add_subcommand("create", "format the log and map /dev/mapper/hrl-NAME");
  vcreate->add_option("name", vname, "volume name")->required();
  vcreate->add_option("--data", vdata, "the data device")->required();
  vcreate->add_option("--log", vlog, "the log device (formatted)")->required();
  vcreate->add_option("--ring-size", fopt.ring_bytes, "ring bytes")->transform(CLI::AsSizeValue(false));
  vcreate->add_flag("--assume-in-sync", fopt.assume_in_sync, "the replica already equals the data: no initial resync");
  vcreate->add_flag("--force", force, "format over an existing log");
  auto* vremove = vol->add_subcommand("remove", "unmap /dev/mapper/hrl-NAME (its log keeps its state)");
  vremove->add_option("name", vname, "volume name")->required();

  auto* cert = app.add_subcommand("cert", "site CA and node certificates");
  cert->require_subcommand(1);
  std::string dir = ".", site, node;
  auto* init = cert->add_subcommand("init", "create the site CA: DIR/ca.pem and DIR/ca.key");
  init->add_option("--dir", dir, "where the files go");
  init->add_option("--site", site, "the site's name")->required();
  auto* issue = cert->add_subcommand("issue", "a node certificate signed by DIR/ca.pem: DIR/NODE.pem, DIR/NODE.key");
  issue->add_option("--dir", dir, "where the CA is and the files go");
  issue->add_option("node", node, "the node's name (its hrld [node] name)")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (*status) return cmd_status(sock, as_json);
    if (*pause) return cmd_simple(sock, "pause", volume);
    if (*vcreate) return cmd_volume_create(vname, vdata, vlog, fopt, force);
    if (*vremove) {
      dm_remove("hrl-" + vname);
      printf("volume %s removed; its log on disk is clean and keeps its state\n", vname.c_str());
      return 0;
    }
    if (*resume) return cmd_simple(sock, "resume", volume);
    if (*resync) return cmd_resync(sock, volume, full ? "copy" : "checksum", as_json, !detach);
    if (*verify) return cmd_resync(sock, volume, "verify", as_json, true);
    if (*points) return cmd_points(sock, volume, as_json);
    if (*pcreate) return cmd_point_create(sock, volume, point_name, freeze, freeze_timeout, as_json);
    if (*failover) return cmd_failover(sock, volume, fo);
    if (*commit) return cmd_commit(sock, volume);
    if (*reprotect) return cmd_reprotect(sock, volume);
    if (*failback) {
      fo.failback = true;
      return cmd_failover(sock, volume, fo);
    }
    if (*init) {
      make_ca(site, {dir + "/ca.pem", dir + "/ca.key"});
      printf("site CA %s: %s/ca.pem (key %s/ca.key, mode 0600)\n", site.c_str(), dir.c_str(), dir.c_str());
      return 0;
    }
    if (*issue) {
      issue_cert({dir + "/ca.pem", dir + "/ca.key"}, node, {dir + "/" + node + ".pem", dir + "/" + node + ".key"});
      printf("certificate of %s: %s/%s.pem (key %s/%s.key, mode 0600)\n", node.c_str(), dir.c_str(), node.c_str(),
             dir.c_str(), node.c_str());
      return 0;
    }
  } catch (const std::exception& e) {
    fprintf(stderr, "hrlctl: %s\n", e.what());
    return 1;
  }
  return 2;
}
