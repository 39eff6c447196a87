#include "fault_env.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace hrl::test {

const char* fs_op_name(FsOp op) {
  switch (op) {
    case FsOp::Open: return "open";
    case FsOp::Read: return "read";
    case FsOp::Write: return "write";
    case FsOp::Datasync: return "fdatasync";
    case FsOp::Fsync: return "fsync";
    case FsOp::Truncate: return "ftruncate";
    case FsOp::Fallocate: return "fallocate";
    case FsOp::Rename: return "rename";
    case FsOp::Unlink: return "unlink";
  }
  return "?";
}

FaultEnv::~FaultEnv() {
  for (const auto& [dir, ops] : dir_ops_)
    for (const DirOp& op : ops)
      if (!op.replaced.empty()) ::unlink(op.replaced.c_str());
}

void FaultEnv::fail_at(FsOp op, uint64_t nth, int err) {
  std::lock_guard lock(mu_);
  rules_[op] = {calls_[op] + nth, err};
}

void FaultEnv::fail_always(FsOp op, int err) {
  std::lock_guard lock(mu_);
  rules_[op] = {0, err};
}

void FaultEnv::clear() {
  std::lock_guard lock(mu_);
  rules_.clear();
  calls_.clear();
  crash_at_ = crash_calls_ = 0;
}

void FaultEnv::sync_all() {
  std::lock_guard lock(mu_);
  unsynced_.clear();
  for (const auto& [dir, ops] : dir_ops_)
    for (const DirOp& op : ops)
      if (!op.replaced.empty()) ::unlink(op.replaced.c_str());
  dir_ops_.clear();
}

void FaultEnv::crash_at(uint64_t nth) {
  std::lock_guard lock(mu_);
  crash_at_ = nth;
  crash_calls_ = 0;
}

bool FaultEnv::crashed() const {
  std::lock_guard lock(mu_);
  return crash_at_ && crash_calls_ >= crash_at_;
}

uint64_t FaultEnv::calls(FsOp op) const {
  std::lock_guard lock(mu_);
  auto it = calls_.find(op);
  return it == calls_.end() ? 0 : it->second;
}

uint64_t FaultEnv::injected() const {
  std::lock_guard lock(mu_);
  return injected_;
}

bool FaultEnv::fails(FsOp op, const std::string& path) {
  if (path.find(scope_) == std::string::npos) return false;
  if (crash_at_ && ++crash_calls_ >= crash_at_) {
    errno = EIO;
    return true;
  }
  const uint64_t n = ++calls_[op];
  auto it = rules_.find(op);
  if (it == rules_.end() || (it->second.nth && it->second.nth != n)) return false;
  errno = it->second.err;
  injected_++;
  return true;
}

std::string FaultEnv::path_of(int fd) {
  auto it = paths_.find(fd);
  return it == paths_.end() ? std::string() : it->second;
}

void FaultEnv::keep_old_bytes(const std::string& path, off_t offset, size_t n, const void* now) {
  struct stat st;
  auto [it, fresh] = unsynced_.try_emplace(path);
  if (fresh) it->second.size_at_sync = ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  Write w{static_cast<uint64_t>(offset), std::vector<std::byte>(n), std::vector<std::byte>(n)};
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);  // through the page cache: any alignment
  ssize_t got = fd < 0 ? 0 : ::pread(fd, w.old.data(), n, offset);
  if (fd >= 0) ::close(fd);
  w.old.resize(got > 0 ? static_cast<size_t>(got) : 0);  // past the end: the size at the sync restores it
  if (now) std::memcpy(w.now.data(), now, n);
  it->second.writes.push_back(std::move(w));
}

void FaultEnv::forget_unsynced(const std::string& path) { unsynced_.erase(path); }

void FaultEnv::drop_unsynced(const std::string& path) {
  lose_one(path, [](uint64_t) { return uint64_t{1}; });
}

// Leaves the file with its synced bytes and the unsynced writes `below(2)`
// keeps (0: kept), applied in order.
void FaultEnv::lose_one(const std::string& path, const std::function<uint64_t(uint64_t)>& below) {
  auto it = unsynced_.find(path);
  if (it == unsynced_.end()) return;
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    // The file as its last sync left it: each write's old bytes back, newest first, and its size then.
    const auto& writes = it->second.writes;
    for (auto w = writes.rbegin(); w != writes.rend(); ++w)
      if (::pwrite(fd, w->old.data(), w->old.size(), static_cast<off_t>(w->offset)) < 0) break;
    struct stat st;
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > it->second.size_at_sync)
      (void)!::ftruncate(fd, static_cast<off_t>(it->second.size_at_sync));
    for (const Write& w : writes)  // then the writes the power loss kept, in order
      if (below(2) == 0 && ::pwrite(fd, w.now.data(), w.now.size(), static_cast<off_t>(w.offset)) < 0) break;
    ::fdatasync(fd);
    ::close(fd);
  }
  unsynced_.erase(it);
}

void FaultEnv::note_dir_op(DirOp op) {
  const std::string dir = std::filesystem::path(op.kind == DirOp::Create || op.kind == DirOp::Unlink ? op.a : op.b)
                              .parent_path()
                              .string();
  dir_ops_[dir].push_back(std::move(op));
}

// A hard link to what `path` names now, to put it back if the operation that
// replaces or removes it is undone; empty if nothing is there.
static std::string keep_link(const std::string& path, uint64_t& saved) {
  const std::string kept = path + ".fault-kept-" + std::to_string(++saved);
  return ::link(path.c_str(), kept.c_str()) == 0 ? kept : std::string();
}

void FaultEnv::undo(const DirOp& op) {
  switch (op.kind) {
    case DirOp::Create:
      ::unlink(op.a.c_str());
      break;
    case DirOp::Rename:
      ::rename(op.b.c_str(), op.a.c_str());
      if (!op.replaced.empty()) ::rename(op.replaced.c_str(), op.b.c_str());
      break;
    case DirOp::Exchange:
      ::renameat2(AT_FDCWD, op.a.c_str(), AT_FDCWD, op.b.c_str(), RENAME_EXCHANGE);
      break;
    case DirOp::Unlink:
      if (!op.replaced.empty()) ::rename(op.replaced.c_str(), op.a.c_str());
      break;
  }
}

void FaultEnv::lose_unsynced(const std::function<uint64_t(uint64_t)>& below) {
  std::lock_guard lock(mu_);
  std::vector<std::string> paths;
  for (const auto& [path, u] : unsynced_) paths.push_back(path);
  for (const std::string& path : paths) lose_one(path, below);
  for (auto& [dir, ops] : dir_ops_) {
    const size_t kept = below(ops.size() + 1);  // a prefix survives: a journaling file system keeps their order
    for (size_t i = ops.size(); i-- > kept;) undo(ops[i]);
    for (const DirOp& op : ops)
      if (!op.replaced.empty()) ::unlink(op.replaced.c_str());  // left only where the operation stayed
  }
  dir_ops_.clear();
  rules_.clear();
  calls_.clear();
  crash_at_ = crash_calls_ = 0;
}

int FaultEnv::open(const std::string& path, int flags, mode_t mode) {
  {
    std::lock_guard lock(mu_);
    if (fails(FsOp::Open, path)) return -1;
  }
  const bool in_scope = path.find(scope_) != std::string::npos;
  const bool creates = in_scope && (flags & O_CREAT) && ::access(path.c_str(), F_OK) != 0;
  int fd = Env::open(path, flags, mode);
  if (fd >= 0 && in_scope) {
    std::lock_guard lock(mu_);
    paths_[fd] = path;
    if (creates) note_dir_op({DirOp::Create, path, "", ""});
  }
  return fd;
}

int FaultEnv::close(int fd) {
  {
    std::lock_guard lock(mu_);
    paths_.erase(fd);
  }
  return Env::close(fd);
}

ssize_t FaultEnv::pread(int fd, void* buf, size_t n, off_t offset) {
  {
    std::lock_guard lock(mu_);
    if (fails(FsOp::Read, path_of(fd))) return -1;
  }
  return Env::pread(fd, buf, n, offset);
}

ssize_t FaultEnv::pwrite(int fd, const void* buf, size_t n, off_t offset) {
  {
    std::lock_guard lock(mu_);
    const std::string path = path_of(fd);
    if (fails(FsOp::Write, path)) return -1;
    if (!path.empty()) keep_old_bytes(path, offset, n, buf);
  }
  return Env::pwrite(fd, buf, n, offset);
}

int FaultEnv::fdatasync(int fd) {
  std::lock_guard lock(mu_);
  const std::string path = path_of(fd);
  if (fails(FsOp::Datasync, path)) {
    if (!(crash_at_ && crash_calls_ >= crash_at_)) drop_unsynced(path);  // the writeback failed: the disk keeps what it had
    return -1;
  }
  int r = Env::fdatasync(fd);
  if (r == 0) forget_unsynced(path);
  return r;
}

int FaultEnv::fsync(int fd) {
  std::lock_guard lock(mu_);
  const std::string path = path_of(fd);
  if (fails(FsOp::Fsync, path)) {
    if (!(crash_at_ && crash_calls_ >= crash_at_)) drop_unsynced(path);
    return -1;
  }
  int r = Env::fsync(fd);
  if (r == 0) {
    forget_unsynced(path);
    if (auto it = dir_ops_.find(path); it != dir_ops_.end()) {  // a directory: its entries are durable now
      for (const DirOp& op : it->second)
        if (!op.replaced.empty()) ::unlink(op.replaced.c_str());
      dir_ops_.erase(it);
    }
  }
  return r;
}

int FaultEnv::ftruncate(int fd, off_t length) {
  {
    std::lock_guard lock(mu_);
    if (fails(FsOp::Truncate, path_of(fd))) return -1;
  }
  return Env::ftruncate(fd, length);
}

int FaultEnv::fallocate(int fd, int mode, off_t offset, off_t length) {
  {
    std::lock_guard lock(mu_);
    const std::string path = path_of(fd);
    if (fails(FsOp::Fallocate, path)) return -1;
    if (!path.empty()) keep_old_bytes(path, offset, static_cast<size_t>(length), nullptr);
  }
  return Env::fallocate(fd, mode, offset, length);
}

int FaultEnv::rename(const std::string& from, const std::string& to, unsigned flags) {
  std::lock_guard lock(mu_);
  if (fails(FsOp::Rename, to)) return -1;
  if (to.find(scope_) == std::string::npos) return Env::rename(from, to, flags);
  const bool exchange = flags & RENAME_EXCHANGE;
  std::string replaced = exchange ? std::string() : keep_link(to, saved_);
  int r = Env::rename(from, to, flags);
  if (r < 0) {
    if (!replaced.empty()) ::unlink(replaced.c_str());
    return r;
  }
  if (exchange) {
    note_dir_op({DirOp::Exchange, from, to, ""});
    std::swap(unsynced_[from], unsynced_[to]);
  } else {
    note_dir_op({DirOp::Rename, from, to, replaced});
    auto it = unsynced_.find(from);
    if (it != unsynced_.end()) {
      unsynced_[to] = std::move(it->second);
      unsynced_.erase(from);
    } else {
      unsynced_.erase(to);
    }
  }
  return r;
}

int FaultEnv::unlink(const std::string& path) {
  std::lock_guard lock(mu_);
  if (fails(FsOp::Unlink, path)) return -1;
  if (path.find(scope_) == std::string::npos) return Env::unlink(path);
  std::string kept = keep_link(path, saved_);
  int r = Env::unlink(path);
  if (r < 0) {
    if (!kept.empty()) ::unlink(kept.c_str());
    return r;
  }
  note_dir_op({DirOp::Unlink, path, "", kept});
  unsynced_.erase(path);
  return r;
}

}  // namespace hrl::test
