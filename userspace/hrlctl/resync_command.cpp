#include "resync_command.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "control_client.h"

namespace hrl {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

std::string duration(double s) {
  char b[32];
  auto t = static_cast<long>(s + 0.5);
  if (t >= 3600)
    snprintf(b, sizeof b, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    snprintf(b, sizeof b, "%ld:%02ld", t / 60, t % 60);
  return b;
}

// "[########............]  43%  1.2 GiB / 2.8 GiB  250.0 MiB/s  ETA 0:06"
std::string progress_line(const json& r, bool bar) {
  double total = r.value("total_bytes", 0.0), done = r.value("done_bytes", 0.0);
  double frac = total > 0 ? done / total : 0;
  std::string out;
  if (bar) {
    constexpr int kWidth = 30;
    int fill = static_cast<int>(frac * kWidth);
    out = "[" + std::string(fill, '#') + std::string(kWidth - fill, '.') + "] ";
  }
  char b[160];
  snprintf(b, sizeof b, "%3.0f%%  %s / %s  %s/s  ETA %s  differing %s", frac * 100, human_bytes(done).c_str(),
           human_bytes(total).c_str(), human_bytes(r.value("rate_bytes_per_second", 0.0)).c_str(),
           duration(r.value("eta_seconds", 0.0)).c_str(), human_bytes(r.value("differing_bytes", 0.0)).c_str());
  return out + b;
}

}  // namespace

int cmd_resync(const std::string& sock, const std::string& volume, const std::string& mode, bool as_json, bool wait) {
  const char* what = mode == "verify" ? "verify" : "resync";
  json r = request(sock, {{"cmd", "resync"}, {"volume", volume}, {"mode", mode}});
  if (!r.value("ok", false)) {
    fprintf(stderr, "hrlctl %s: %s\n", what, r.value("error", "failed").c_str());
    return 1;
  }
  uint64_t id = r.value("id", 0ULL);
  if (!wait) {
    printf("%s of %s requested (id %llu); hrlctl status shows its progress\n", what, volume.c_str(),
           static_cast<unsigned long long>(id));
    return 0;
  }
  const bool tty = !as_json && isatty(STDOUT_FILENO);
  auto last_line = std::chrono::steady_clock::now() - 1h;
  json v;
  for (;;) {
    v = volume_status(sock, volume);
    const json& rs = v["resync"];
    if (rs.value("finished_id", 0ULL) >= id) break;
    auto now = std::chrono::steady_clock::now();
    bool active = rs.value("active", false);
    if (as_json) {
      if (now - last_line >= 1s) {
        json line = rs;
        line["volume"] = volume;
        line["state"] = v.value("state", "");
        std::cout << line.dump() << std::endl;
        last_line = now;
      }
    } else if (tty) {
      std::string text = active ? progress_line(rs, true) : "waiting to start (" + v.value("state", "") + ")";
      printf("\r%s %s: %-90s", what, volume.c_str(), text.c_str());
      fflush(stdout);
    } else if (now - last_line >= 2s) {
      std::string text = active ? progress_line(rs, false) : "waiting to start (" + v.value("state", "") + ")";
      printf("%s %s: %s\n", what, volume.c_str(), text.c_str());
      fflush(stdout);
      last_line = now;
    }
    std::this_thread::sleep_for(tty ? 250ms : 200ms);
  }
  if (tty) printf("\n");
  json res = request(sock, {{"cmd", "resync-result"}, {"volume", volume}});
  const json& rs = v["resync"];
  std::string outcome = res.value("outcome", "");
  if (outcome != "completed") {
    if (as_json)
      std::cout << json{{"volume", volume}, {"done", false}, {"outcome", outcome}}.dump() << std::endl;
    fprintf(stderr, "hrlctl %s: %s: %s\n", what, volume.c_str(), outcome.c_str());
    return 1;
  }
  const json& ranges = res["ranges"];
  if (as_json) {
    json out{{"volume", volume},
             {"done", true},
             {"mode", mode},
             {"compared_bytes", rs.value("done_bytes", 0ULL)},
             {"read_bytes", rs.value("read_bytes", 0ULL)},
             {"differing_bytes", rs.value("differing_bytes", 0ULL)},
             {"wire_bytes", rs.value("wire_bytes", 0ULL)}};
    if (mode == "verify") {
      out["ranges"] = ranges;
      out["written_during_verify_bytes"] = res.value("written_during_verify_bytes", 0ULL);
    }
    std::cout << out.dump() << std::endl;
  } else {
    printf("%s of %s completed: compared %s, %s differed, %s on the wire\n", what, volume.c_str(),
           human_bytes(rs.value("done_bytes", 0.0)).c_str(), human_bytes(rs.value("differing_bytes", 0.0)).c_str(),
           human_bytes(rs.value("wire_bytes", 0.0)).c_str());
    if (mode == "verify") {
      uint64_t total = 0;
      for (const json& rg : ranges) total += rg[1].get<uint64_t>();
      printf("%zu range(s), %s, differ between the sites%s\n", ranges.size(), human_bytes(static_cast<double>(total)).c_str(),
             ranges.empty() ? "" : " (offset and length in bytes):");
      for (const json& rg : ranges)
        printf("  %llu %llu\n", static_cast<unsigned long long>(rg[0].get<uint64_t>()),
               static_cast<unsigned long long>(rg[1].get<uint64_t>()));
      if (res.value("written_during_verify_bytes", 0ULL))
        printf("%s more differed where the volume was written during the verify (not divergence)\n",
               human_bytes(res.value("written_during_verify_bytes", 0.0)).c_str());
    }
  }
  return mode == "verify" && !ranges.empty() ? 3 : 0;
}

}  // namespace hrl
