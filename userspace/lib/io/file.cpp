#include "io/file.h"

#include "io/env.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <new>

namespace hrl {

void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

File::File(File&& other) noexcept : fd_(other.fd_), path_(std::move(other.path_)), env_(other.env_) { other.fd_ = -1; }

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = other.fd_;
    path_ = std::move(other.path_);
    env_ = other.env_;
    other.fd_ = -1;
  }
  return *this;
}

File::~File() { close(); }

void File::close() {
  if (fd_ >= 0) env_->close(fd_);
  fd_ = -1;
}

File File::open(const std::string& path, int flags, mode_t mode) {
  Env& e = env();
  int fd = e.open(path, flags | O_CLOEXEC, mode);
  if (fd < 0) throw_errno(errno, "open " + path);
  return File(fd, path, e);
}

File File::open_direct(const std::string& path, int flags) {
  Env& e = env();
  int fd = e.open(path, flags | O_DIRECT | O_CLOEXEC, 0);
  if (fd < 0 && errno == EINVAL) fd = e.open(path, flags | O_CLOEXEC, 0);
  if (fd < 0) throw_errno(errno, "open " + path);
  return File(fd, path, e);
}

bool File::direct() const { return (fcntl(fd_, F_GETFL) & O_DIRECT) != 0; }

uint64_t File::size() const {
  struct stat st;
  if (fstat(fd_, &st) < 0) throw_errno(errno, "stat " + path_);
  if (S_ISBLK(st.st_mode)) {
    uint64_t bytes = 0;
    if (ioctl(fd_, BLKGETSIZE64, &bytes) < 0) throw_errno(errno, "BLKGETSIZE64 " + path_);
    return bytes;
  }
  return static_cast<uint64_t>(st.st_size);
}

uint32_t File::logical_sector_size() const {
  if (!is_block_device()) return 512;
  int bytes = 512;
  if (ioctl(fd_, BLKSSZGET, &bytes) < 0) throw_errno(errno, "BLKSSZGET " + path_);
  return static_cast<uint32_t>(bytes);
}

bool File::is_block_device() const {
  struct stat st;
  if (fstat(fd_, &st) < 0) throw_errno(errno, "stat " + path_);
  return S_ISBLK(st.st_mode);
}

void File::read_at(std::span<std::byte> buf, uint64_t offset) const {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = env_->pread(fd_, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno(errno, "read " + path_ + " at " + std::to_string(offset + done));
    if (n == 0) throw_errno(EIO, "read " + path_ + ": end of file at " + std::to_string(offset + done));
    done += static_cast<size_t>(n);
  }
}

void File::write_at(std::span<const std::byte> buf, uint64_t offset) const {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = env_->pwrite(fd_, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno(errno, "write " + path_ + " at " + std::to_string(offset + done));
    done += static_cast<size_t>(n);
  }
}

void File::datasync() const {
  if (env_->fdatasync(fd_) < 0) throw_errno(errno, "fdatasync " + path_);
}

void File::zero_range(uint64_t offset, uint64_t len) const {
  if (env_->fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset), static_cast<off_t>(len)) == 0)
    return;
  int err = errno;
  if ((err == EOPNOTSUPP || err == EINVAL) && is_block_device()) {
    uint64_t range[2] = {offset, len};
    if (ioctl(fd_, BLKZEROOUT, range) == 0) return;
    err = errno;
  }
  throw_errno(err, "zero " + std::to_string(len) + " bytes at " + std::to_string(offset) + " of " + path_);
}

AlignedBuffer::AlignedBuffer(size_t bytes) : size_(bytes) {
  size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, rounded ? rounded : kAlign);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, rounded ? rounded : kAlign);
  mem_.reset(static_cast<std::byte*>(p));
}

void sync_directory(const std::string& dir) {
  File d = File::open(dir.empty() ? "." : dir, O_RDONLY | O_DIRECTORY);
  if (d.env_->fsync(d.fd()) < 0) throw_errno(errno, "fsync " + d.path());
}

void replace_file(const std::string& path, std::string_view text) {
  const std::string tmp = path + ".tmp";
  {
    File f = File::open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    f.write_at(std::as_bytes(std::span(text.data(), text.size())), 0);
    f.datasync();
  }
  rename_file(tmp, path);
  sync_directory(std::filesystem::path(path).parent_path().string());
}

void rename_file(const std::string& from, const std::string& to) {
  if (env().rename(from, to, 0) < 0) throw_errno(errno, "rename " + from + " to " + to);
}

void truncate_file(const File& f, uint64_t length) {
  if (f.env_->ftruncate(f.fd(), static_cast<off_t>(length)) < 0)
    throw_errno(errno, "truncate " + f.path() + " to " + std::to_string(length));
}

void remove_file(const std::string& path) {
  if (env().unlink(path) < 0 && errno != ENOENT) throw_errno(errno, "remove " + path);
}

}  // namespace hrl
