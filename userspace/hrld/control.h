// hrld's control socket: a Unix socket, mode 0600 (root only), one JSON
// request per connection, one JSON answer. hrlctl is its client.
//   {"cmd":"status"}                 -> {"node":..., "volumes":[...]}
//   {"cmd":"pause","volume":"db0"}   -> {"ok":true}
//   {"cmd":"resume","volume":"db0"}  -> {"ok":true}
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "volume_runtime.h"

namespace hrl {

// Serves until stop; throws when the socket cannot be created.
void serve_control(const std::string& path, const std::string& node,
                   std::vector<std::unique_ptr<VolumeRuntime>>& volumes, const std::atomic<bool>& stop);

}  // namespace hrl
