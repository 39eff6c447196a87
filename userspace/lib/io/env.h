// The file-system calls whose outcome decides what a crash or a fault
// leaves behind, as LevelDB's Env: every File, directory sync, rename,
// unlink and truncate of hrl goes through the process's Env, so a test can
// fail any one of them (EIO, ENOSPC) or drop the writes no sync covered.
// The default is the system's own calls. Asynchronous disk I/O has its own
// interface (io_backend.h); the recovery-point catalog is SQLite, which does
// its own file I/O.
#pragma once

#include <fcntl.h>
#include <sys/types.h>

#include <string>

namespace hrl {

class Env {
 public:
  virtual ~Env() = default;
  // Each is the system call of its name: its result, or -1 with errno set.
  virtual int open(const std::string& path, int flags, mode_t mode);
  virtual int close(int fd);
  virtual ssize_t pread(int fd, void* buf, size_t n, off_t offset);
  virtual ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset);
  virtual int fdatasync(int fd);
  virtual int fsync(int fd);
  virtual int ftruncate(int fd, off_t length);
  virtual int fallocate(int fd, int mode, off_t offset, off_t length);
  virtual int rename(const std::string& from, const std::string& to, unsigned flags);  // renameat2(2)
  virtual int unlink(const std::string& path);
};

// The Env in use: the system's unless a test installed another.
Env& env();
// Installs `e` (nullptr: the system's) for every file opened from now on;
// returns the one it replaces. For tests.
Env* set_env(Env* e);

}  // namespace hrl
