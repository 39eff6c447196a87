// systemd's notify protocol (READY=1, WATCHDOG=1, STOPPING=1) sent without
// ever blocking: sd_notify() blocks when the notify socket's queue is full,
// and a daemon that blocks there no longer stops on SIGTERM.
#pragma once

#include <string_view>

namespace hrl {

// Sends state to $NOTIFY_SOCKET when it is set; a full queue drops the
// message (a watchdog beat is sent again, a READY or STOPPING is advisory).
// Returns false when nothing was sent.
bool notify_systemd(std::string_view state);

}  // namespace hrl
