#include "io/env.h"

#include <stdio.h>
#include <unistd.h>

#include <atomic>

namespace hrl {

int Env::open(const std::string& path, int flags, mode_t mode) { return ::open(path.c_str(), flags, mode); }
int Env::close(int fd) { return ::close(fd); }
ssize_t Env::pread(int fd, void* buf, size_t n, off_t offset) { return ::pread(fd, buf, n, offset); }
ssize_t Env::pwrite(int fd, const void* buf, size_t n, off_t offset) { return ::pwrite(fd, buf, n, offset); }
int Env::fdatasync(int fd) { return ::fdatasync(fd); }
int Env::fsync(int fd) { return ::fsync(fd); }
int Env::ftruncate(int fd, off_t length) { return ::ftruncate(fd, length); }
int Env::fallocate(int fd, int mode, off_t offset, off_t length) { return ::fallocate(fd, mode, offset, length); }
int Env::rename(const std::string& from, const std::string& to, unsigned flags) {
  return ::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags);
}
int Env::unlink(const std::string& path) { return ::unlink(path.c_str()); }

namespace {
Env system_env;
std::atomic<Env*> current{&system_env};
}  // namespace

Env& env() { return *current.load(); }

Env* set_env(Env* e) {
  Env* old = current.exchange(e ? e : &system_env);
  return old == &system_env ? nullptr : old;
}

}  // namespace hrl
