// Talking to device-mapper through libdevmapper, as dmsetup does: target
// messages and status lines of a dm-hrl device.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace hrl {

// Sends "message" to sector 0 of the device; returns the target's answer.
// Throws with the device name and the message when dm refuses it.
std::string dm_message(const std::string& device, const std::string& message);

// The target's status line (after "<start> <len> <type> "), as dmsetup status.
std::string dm_status(const std::string& device);

// Creates and resumes a device with one target line ("hrl <data> <log>" over
// sectors), as dmsetup create; its node appears at /dev/mapper/<device>.
void dm_create(const std::string& device, uint64_t sectors, const std::string& target, const std::string& params);
// Removes a device (it is suspended first, so the target writes its state).
// Fails while something holds it open.
void dm_remove(const std::string& device);

// How many holders have the device open (a mounted file system, an
// application); empty when there is no such device.
std::optional<int> dm_open_count(const std::string& device);

}  // namespace hrl
