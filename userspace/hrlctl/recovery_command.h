// hrlctl's recovery commands: point create, failover (--test, --cleanup,
// unplanned) and commit. Each returns the process's exit status.
#pragma once

#include <cstdint>
#include <string>

namespace hrl {

int cmd_point_create(const std::string& sock, const std::string& volume, const std::string& name,
                     const std::string& freeze, double timeout_seconds, bool as_json);

struct FailoverRequest {
  bool test = false, cleanup = false;
  bool planned = false;  // on the primary: drain, verify, hand over (also failback)
  bool failback = false;
  int64_t point = 0;   // 0: the newest point (--test) or the latest write (unplanned)
  std::string image;   // --test: where the image goes; empty: hrld's default
  bool as_json = false;
};
int cmd_failover(const std::string& sock, const std::string& volume, const FailoverRequest& req);

int cmd_commit(const std::string& sock, const std::string& volume);
int cmd_reprotect(const std::string& sock, const std::string& volume);

}  // namespace hrl
