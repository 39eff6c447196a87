// Talking to hrld's control socket: one JSON request, one JSON answer.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace hrl {

nlohmann::json request(const std::string& socket_path, const nlohmann::json& req);
// One volume's entry in hrld's status.
nlohmann::json volume_status(const std::string& socket_path, const std::string& volume);
std::string human_bytes(double bytes);

}  // namespace hrl
