// RAII owners for file descriptors and aligned memory, and the synchronous
// positional I/O that everything else builds on, through the Env (env.h).
#pragma once

#include <fcntl.h>  // the O_* flags File::open takes

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace hrl {

// Throws std::system_error naming the operation and the file.
[[noreturn]] void throw_errno(int err, const std::string& what);

class Env;

class File {
 public:
  File() = default;
  File(int fd, std::string path, Env& env) : fd_(fd), path_(std::move(path)), env_(&env) {}
  File(File&& other) noexcept;
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  // open(2) with the given flags; throws with the path on failure.
  static File open(const std::string& path, int flags, mode_t mode = 0644);
  // Opens with O_DIRECT, or without it where the filesystem refuses it
  // (EINVAL), so tests on any filesystem still read the same bytes.
  static File open_direct(const std::string& path, int flags);

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  bool is_open() const { return fd_ >= 0; }
  bool direct() const;

  // Size in bytes of a regular file or a block device.
  uint64_t size() const;
  bool is_block_device() const;
  // The device's logical sector size; 512 for a regular file.
  uint32_t logical_sector_size() const;

  // Whole-buffer positional I/O: loops over short transfers and EINTR.
  void read_at(std::span<std::byte> buf, uint64_t offset) const;
  void write_at(std::span<const std::byte> buf, uint64_t offset) const;
  void datasync() const;
  // Makes [offset, offset + len) read as zeros: a hole in a file, discard or
  // write-zeroes on a block device, written zeros where neither is offered.
  void zero_range(uint64_t offset, uint64_t len) const;
  void close();

 private:
  friend void truncate_file(const File& f, uint64_t length);
  friend void sync_directory(const std::string& dir);
  int fd_ = -1;
  std::string path_;
  Env* env_ = nullptr;  // the Env it was opened through
};

// rename(2) through the Env: `from` replaces `to`.
void rename_file(const std::string& from, const std::string& to);
// Truncates (or extends) the open file to `length`.
void truncate_file(const File& f, uint64_t length);
// unlink(2) through the Env; a file already gone is not an error.
void remove_file(const std::string& path);

// fsync(2) of a directory: a file created, renamed or unlinked in it stays so.
void sync_directory(const std::string& dir);

// Replaces the file at `path` with `text` so that a crash leaves the old
// contents or the new, never a mix: `path`.tmp written and synced, renamed
// over it, the directory synced. Durable on return.
void replace_file(const std::string& path, std::string_view text);

// Memory aligned for O_DIRECT (4 KiB covers 512e and 4Kn devices).
class AlignedBuffer {
 public:
  static constexpr size_t kAlign = 4096;
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t bytes);  // zero-filled

  std::byte* data() { return mem_.get(); }
  const std::byte* data() const { return mem_.get(); }
  size_t size() const { return size_; }
  std::span<std::byte> span() { return {mem_.get(), size_}; }
  std::span<const std::byte> span() const { return {mem_.get(), size_}; }

 private:
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  std::unique_ptr<std::byte, Free> mem_;
  size_t size_ = 0;
};

}  // namespace hrl
