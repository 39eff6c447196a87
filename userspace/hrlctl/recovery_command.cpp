#include "recovery_command.h"

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

// Sends a request; prints its error and returns false when refused.
bool ask(const std::string& sock, const char* what, const json& req, json& reply) {
  reply = request(sock, req);
  if (reply.value("ok", false)) return true;
  fprintf(stderr, "hrlctl %s: %s\n", what, reply.value("error", "failed").c_str());
  return false;
}

// Follows a test failover's build until its image is ready or failed.
int wait_for_test_image(const std::string& sock, const std::string& volume, bool as_json) {
  const bool tty = !as_json && isatty(STDOUT_FILENO);
  for (;;) {
    json tf = volume_status(sock, volume).value("test_failover", json::object());
    std::string state = tf.value("state", "none");
    if (state != "building") {
      if (as_json) std::cout << tf.dump() << "\n";
      if (state == "ready") return 0;
      fprintf(stderr, "hrlctl failover --test: %s\n", tf.value("error", "the build stopped").c_str());
      return 1;
    }
    if (tty) {
      double total = tf.value("total_bytes", 0.0), copied = tf.value("copied_bytes", 0.0);
      printf("\rcopying %s / %s, then undoing the records after the point", human_bytes(copied).c_str(),
             human_bytes(total).c_str());
      fflush(stdout);
    }
    std::this_thread::sleep_for(200ms);
  }
}

}  // namespace

int cmd_point_create(const std::string& sock, const std::string& volume, const std::string& name,
                     const std::string& freeze, double timeout_seconds, bool as_json) {
  json r;
  if (!ask(sock, "point create",
           {{"cmd", "point-create"}, {"volume", volume}, {"name", name}, {"freeze", freeze},
            {"timeout_ms", static_cast<int64_t>(timeout_seconds * 1000)}},
           r))
    return 1;
  const uint64_t seq = r.value("seq", uint64_t{0});
  // Listed on the secondary once the records up to the mark are durable there.
  uint64_t durable = 0;
  for (auto until = std::chrono::steady_clock::now() + 30s; std::chrono::steady_clock::now() < until;) {
    durable = volume_status(sock, volume).value("durable_seq", uint64_t{0});
    if (durable >= seq) break;
    std::this_thread::sleep_for(100ms);
  }
  if (as_json) {
    std::cout << json{{"seq", seq}, {"kind", r["kind"]}, {"name", name}, {"durable", durable >= seq}}.dump() << "\n";
    return 0;
  }
  printf("point '%s' (%s) at seq %llu on %s%s\n", name.c_str(), r.value("kind", "").c_str(),
         static_cast<unsigned long long>(seq), volume.c_str(),
         durable >= seq ? ": durable on the secondary" : ": not yet durable on the secondary; listed there once it is");
  return 0;
}

// A planned failover or failback: the primary drains, verifies, hands over.
int hand_over(const std::string& sock, const std::string& volume, const FailoverRequest& f) {
  const char* what = f.failback ? "failback" : "failover --planned";
  json r;
  if (!ask(sock, what, {{"cmd", "handover"}, {"volume", volume}, {"failback", f.failback}}, r)) return 1;
  const uint64_t id = r.value("id", uint64_t{0});
  const bool tty = !f.as_json && isatty(STDOUT_FILENO);
  for (;;) {
    json res = volume_status(sock, volume)["resync"];
    if (res.value("finished_id", uint64_t{0}) >= id) {
      std::string outcome = res.value("outcome", "");
      if (f.as_json) std::cout << json{{"outcome", outcome}}.dump() << "\n";
      if (outcome != "completed") {
        fprintf(stderr, "%shrlctl %s: %s\n", tty ? "\n" : "", what, outcome.c_str());
        return 1;
      }
      if (!f.as_json)
        printf("%s%s handed over: the other site is its primary now, this one its secondary\n", tty ? "\n" : "",
               volume.c_str());
      return 0;
    }
    if (tty) {
      printf("\rdraining the log and verifying: %s of %s compared", human_bytes(res.value("done_bytes", 0.0)).c_str(),
             human_bytes(res.value("total_bytes", 0.0)).c_str());
      fflush(stdout);
    }
    std::this_thread::sleep_for(200ms);
  }
}

int cmd_failover(const std::string& sock, const std::string& volume, const FailoverRequest& f) {
  if (f.planned || f.failback) return hand_over(sock, volume, f);
  json r;
  if (f.cleanup) {
    if (!ask(sock, "failover --cleanup", {{"cmd", "failover-test-cleanup"}, {"volume", volume}}, r)) return 1;
    if (f.as_json)
      std::cout << r.dump() << "\n";
    else
      printf("test failover of %s cleaned up (%s %s)\n", volume.c_str(), r.value("image", "").c_str(),
             r.value("removed", false) ? "removed" : "left as it is: not a file hrld made");
    return 0;
  }
  if (f.test) {
    json req{{"cmd", "failover-test"}, {"volume", volume}, {"point", f.point}};
    if (!f.image.empty()) req["image"] = f.image;
    if (!ask(sock, "failover --test", req, r)) return 1;
    int rc = wait_for_test_image(sock, volume, f.as_json);
    if (rc == 0 && !f.as_json)
      printf("\rtest failover of %s: point #%lld (seq %llu) in %s\nreplication goes on; hrlctl failover %s --cleanup "
             "removes it\n",
             volume.c_str(), static_cast<long long>(r.value("point", 0LL)),
             static_cast<unsigned long long>(r.value("seq", 0ULL)), r.value("image", "").c_str(), volume.c_str());
    return rc;
  }
  if (!ask(sock, "failover", {{"cmd", "failover"}, {"volume", volume}, {"point", f.point}}, r)) return 1;
  if (f.as_json) {
    std::cout << r.dump() << "\n";
    return 0;
  }
  printf("%s failed over at seq %llu (generation %llu): the replica is the volume now; the old primary is refused\n"
         "check it, then hrlctl commit %s (before that, hrlctl failover %s --point P can still go further back)\n",
         volume.c_str(), static_cast<unsigned long long>(r.value("seq", 0ULL)),
         static_cast<unsigned long long>(r.value("generation", 0ULL)), volume.c_str(), volume.c_str());
  return 0;
}

int cmd_commit(const std::string& sock, const std::string& volume) {
  json r;
  if (!ask(sock, "commit", {{"cmd", "commit"}, {"volume", volume}}, r)) return 1;
  printf("the failover of %s at seq %llu is committed; its history before it is discarded\n", volume.c_str(),
         static_cast<unsigned long long>(r.value("seq", 0ULL)));
  return 0;
}

int cmd_reprotect(const std::string& sock, const std::string& volume) {
  json r;
  if (!ask(sock, "reprotect", {{"cmd", "reprotect"}, {"volume", volume}}, r)) return 1;
  if (r.value("role", "") == "primary")
    printf("%s is the primary here now (generation %llu): it connects to the other site, which a checksum resync "
           "brings in line\n",
           volume.c_str(), static_cast<unsigned long long>(r.value("generation", 0ULL)));
  else
    printf("%s is the secondary here now: it waits for the promoted site, then a checksum resync overwrites what "
           "differs\n",
           volume.c_str());
  return 0;
}

}  // namespace hrl
