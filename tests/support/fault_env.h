// An Env for tests, as LevelDB's fault-injection test Env: it counts the
// file-system calls on paths that contain a given part (the secondary's
// directory, say), fails a chosen one with an errno, and when a sync fails
// it drops that file's writes since its last good sync: what a failed
// writeback leaves on disk. The calls themselves are the system's; only the
// outcome is chosen. Writes through an IoBackend (io_uring, libaio) do not
// pass through an Env and are not dropped.
//
// It also builds the states a power loss allows, as the ALICE study does:
// crash_at(n) makes the nth call and every one after it fail (the machine
// is gone), and power_loss() then leaves on disk any subset of each file's
// writes since its last sync (applied in order), and, per directory, a
// prefix of its creations, renames and unlinks since its last fsync: the
// rest are undone.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "io/env.h"

namespace hrl::test {

enum class FsOp { Open, Read, Write, Datasync, Fsync, Truncate, Fallocate, Rename, Unlink };
inline constexpr FsOp kAllFsOps[] = {FsOp::Open,     FsOp::Read,      FsOp::Write,  FsOp::Datasync, FsOp::Fsync,
                                     FsOp::Truncate, FsOp::Fallocate, FsOp::Rename, FsOp::Unlink};
const char* fs_op_name(FsOp op);

class FaultEnv : public Env {
 public:
  explicit FaultEnv(std::string scope) : scope_(std::move(scope)) {}
  ~FaultEnv() override;

  // The nth (from 1) call of `op` in scope, counted from now, fails with err.
  void fail_at(FsOp op, uint64_t nth, int err);
  // Every call of `op` in scope fails with err until clear().
  void fail_always(FsOp op, int err);
  void clear();  // no more failures, and the counts start over
  // Everything written so far is durable (as after sync(2)): a test's own
  // setup is not part of the crash states.
  void sync_all();
  // The nth call in scope from now on, of any kind, and every call after it
  // fail with EIO: the power is gone at that instant.
  void crash_at(uint64_t nth);
  bool crashed() const;
  // What the disk holds after the power loss: each unsynced write kept or
  // lost as `rng` says, each directory keeping a random prefix of its
  // unsynced operations. Then clear(): the machine boots.
  template <typename Rng>
  void power_loss(Rng& rng) {
    lose_unsynced([&rng](uint64_t n) { return n ? rng() % n : 0; });
  }
  uint64_t calls(FsOp op) const;
  uint64_t injected() const;  // failures injected so far

  int open(const std::string& path, int flags, mode_t mode) override;
  int close(int fd) override;
  ssize_t pread(int fd, void* buf, size_t n, off_t offset) override;
  ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset) override;
  int fdatasync(int fd) override;
  int fsync(int fd) override;
  int ftruncate(int fd, off_t length) override;
  int fallocate(int fd, int mode, off_t offset, off_t length) override;
  int rename(const std::string& from, const std::string& to, unsigned flags) override;
  int unlink(const std::string& path) override;

 private:
  // Counts a call on `path` and says whether it fails (errno set if so).
  bool fails(FsOp op, const std::string& path);
  void lose_unsynced(const std::function<uint64_t(uint64_t)>& below);
  // A directory operation no fsync of `dir` has covered yet.
  struct DirOp {
    enum Kind { Create, Rename, Exchange, Unlink } kind;
    std::string a, b;      // the path (Create, Unlink) or from and to
    std::string replaced;  // a hard link to what a Rename replaced or an Unlink removed; empty: nothing
  };
  void note_dir_op(DirOp op);
  void undo(const DirOp& op);
  std::string path_of(int fd);
  // Keeps what [offset, offset + n) of the file holds before a write of
  // `now` (null: zeros) changes it.
  void keep_old_bytes(const std::string& path, off_t offset, size_t n, const void* now);
  void forget_unsynced(const std::string& path);
  void drop_unsynced(const std::string& path);  // the file as its last good sync left it
  void lose_one(const std::string& path, const std::function<uint64_t(uint64_t)>& below);

  struct Rule {
    uint64_t nth;  // 0: always
    int err;
  };
  struct Write {
    uint64_t offset;
    std::vector<std::byte> old, now;  // what it replaced (up to the end of the file), what it wrote (a hole: zeros)
  };
  struct Unsynced {
    uint64_t size_at_sync = 0;
    std::vector<Write> writes;  // in order
  };
  const std::string scope_;
  mutable std::mutex mu_;  // the secondary's threads call in together
  std::map<FsOp, uint64_t> calls_;
  std::map<FsOp, Rule> rules_;
  uint64_t injected_ = 0;
  std::map<int, std::string> paths_;  // open fds in scope
  std::map<std::string, Unsynced> unsynced_;
  std::map<std::string, std::vector<DirOp>> dir_ops_;  // by directory
  uint64_t crash_at_ = 0, crash_calls_ = 0;              // 0: no crash planned
  uint64_t saved_ = 0;                                   // hard links kept for undoing
};

// Installs an Env for its lifetime.
class ScopedEnv {
 public:
  explicit ScopedEnv(Env& e) : old_(set_env(&e)) {}
  ~ScopedEnv() { set_env(old_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  Env* old_;
};

}  // namespace hrl::test
