#include "io/fs_freeze.h"

#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "io/env.h"
#include "io/file.h"

namespace hrl {
namespace {

// What the freezing thread and the caller share; the thread may outlive the
// call when the freeze is slower than the timeout.
struct FreezeJob {
  std::mutex mu;
  std::condition_variable cv;
  bool frozen = false, done = false, abandoned = false;
  std::string result, error;
};

}  // namespace

void check_mounted_on(const std::string& mountpoint, const std::string& device) {
  struct stat m, d;
  if (::stat(mountpoint.c_str(), &m) < 0) throw_errno(errno, "stat " + mountpoint);
  if (::stat(device.c_str(), &d) < 0) throw_errno(errno, "stat " + device);
  if (!S_ISBLK(d.st_mode)) throw std::runtime_error(device + " is not a block device");
  if (m.st_dev != d.st_rdev) throw std::runtime_error(mountpoint + " is not a file system on " + device);
}

std::string while_frozen(const std::string& mountpoint, std::chrono::milliseconds timeout,
                         std::function<std::string()> fn) {
  File dir = File::open(mountpoint, O_RDONLY | O_DIRECTORY);
  auto job = std::make_shared<FreezeJob>();
  std::thread([job, fd = ::dup(dir.fd()), mountpoint, fn = std::move(fn)] {
    File owned(fd, mountpoint, env());
    std::string result, error;
    if (::ioctl(owned.fd(), FIFREEZE, 0) < 0) {
      error = "freeze " + mountpoint + ": " + std::system_category().message(errno);
    } else {
      bool abandoned;
      {
        std::lock_guard lock(job->mu);
        abandoned = job->abandoned;
        job->frozen = !abandoned;
        job->cv.notify_all();
      }
      if (!abandoned) {
        try {
          result = fn();
        } catch (const std::exception& e) {
          error = e.what();
        }
      }
      if (::ioctl(owned.fd(), FITHAW, 0) < 0 && error.empty())
        error = "thaw " + mountpoint + ": " + std::system_category().message(errno);
    }
    std::lock_guard lock(job->mu);
    job->result = result;
    job->error = error;
    job->done = true;
    job->cv.notify_all();
  }).detach();
  std::unique_lock lock(job->mu);
  // The timeout is the freeze's: once frozen, fn runs to its end and the
  // thaw follows at once, so what fn did is what the caller hears.
  if (!job->cv.wait_for(lock, timeout, [&] { return job->frozen || job->done; })) {
    job->abandoned = true;
    throw std::runtime_error("freezing " + mountpoint + " for a point took more than " + std::to_string(timeout.count()) +
                             " ms: no point was taken; it is thawed as soon as the freeze completes");
  }
  job->cv.wait(lock, [&] { return job->done; });
  if (!job->error.empty()) throw std::runtime_error(job->error);
  return job->result;
}

}  // namespace hrl
