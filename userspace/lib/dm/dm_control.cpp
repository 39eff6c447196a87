#include "dm/dm_control.h"

#include <libdevmapper.h>

#include <memory>
#include <stdexcept>

namespace hrl {
namespace {

struct TaskFree {
  void operator()(dm_task* t) const { dm_task_destroy(t); }
};
using Task = std::unique_ptr<dm_task, TaskFree>;

Task make_task(int type, const std::string& device) {
  Task t(dm_task_create(type));
  if (!t || !dm_task_set_name(t.get(), device.c_str()))
    throw std::runtime_error("device-mapper: cannot prepare a request for " + device);
  return t;
}

}  // namespace

std::string dm_message(const std::string& device, const std::string& message) {
  Task t = make_task(DM_DEVICE_TARGET_MSG, device);
  if (!dm_task_set_sector(t.get(), 0) || !dm_task_set_message(t.get(), message.c_str()) || !dm_task_run(t.get()))
    throw std::runtime_error("device-mapper: " + device + " refused message '" + message +
                             "' (see the kernel log)");
  const char* answer = dm_task_get_message_response(t.get());
  return answer ? answer : "";
}

void dm_create(const std::string& device, uint64_t sectors, const std::string& target, const std::string& params) {
  Task t = make_task(DM_DEVICE_CREATE, device);
  uint32_t cookie = 0;
  if (!dm_task_add_target(t.get(), 0, sectors, target.c_str(), params.c_str()) ||
      !dm_task_set_cookie(t.get(), &cookie, 0) || !dm_task_run(t.get())) {
    dm_udev_wait(cookie);
    throw std::runtime_error("device-mapper: cannot create " + device + " (" + target + " " + params +
                             "); is the " + target + " target loaded (modprobe dm-" + target +
                             ")? The kernel log says why.");
  }
  dm_udev_wait(cookie);
}

void dm_remove(const std::string& device) {
  Task t = make_task(DM_DEVICE_REMOVE, device);
  uint32_t cookie = 0;
  if (!dm_task_set_cookie(t.get(), &cookie, 0) || !dm_task_run(t.get())) {
    dm_udev_wait(cookie);
    throw std::runtime_error("device-mapper: cannot remove " + device + " (in use, or no such device)");
  }
  dm_udev_wait(cookie);
}

std::optional<int> dm_open_count(const std::string& device) {
  Task t = make_task(DM_DEVICE_INFO, device);
  dm_info info{};
  if (!dm_task_run(t.get()) || !dm_task_get_info(t.get(), &info))
    throw std::runtime_error("device-mapper: no information on " + device);
  if (!info.exists) return std::nullopt;
  return info.open_count;
}

std::string dm_status(const std::string& device) {
  Task t = make_task(DM_DEVICE_STATUS, device);
  if (!dm_task_run(t.get())) throw std::runtime_error("device-mapper: no status for " + device);
  uint64_t start, length;
  char *type = nullptr, *params = nullptr;
  dm_get_next_target(t.get(), nullptr, &start, &length, &type, &params);
  if (!type) throw std::runtime_error("device-mapper: " + device + " has no target");
  return params ? params : "";
}

}  // namespace hrl
