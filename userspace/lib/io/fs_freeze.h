// App-consistent points (design.md, "Recovery points and failover"): a
// mounted file system is frozen (FIFREEZE: its dirty data reaches the
// device, new writes wait), something is done, and it is thawed (FITHAW).
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace hrl {

// Freezes the file system mounted at `mountpoint`, runs `while_frozen`, and
// thaws. If the freeze has not finished within `timeout`, nothing runs
// (throws), and the file system is thawed the moment the freeze completes;
// once frozen, the application waits only for while_frozen. Returns what
// while_frozen returned.
std::string while_frozen(const std::string& mountpoint, std::chrono::milliseconds timeout,
                         std::function<std::string()> while_frozen);

// Throws unless the file system mounted at `mountpoint` lives on the block
// device `device` (freezing another one would make a point of nothing).
void check_mounted_on(const std::string& mountpoint, const std::string& device);

}  // namespace hrl
