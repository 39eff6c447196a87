#include "history/point_image.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>

#include "io/env.h"
#include "io/zero_bytes.h"

namespace hrl {
namespace {

constexpr uint64_t kCopyChunk = 1 << 20;

// The image to write: an existing block device as it is, else a file made
// anew at the replica's size, whose zero blocks can stay holes. A device is
// held exclusively while it is written: nobody mounts it meanwhile.
File open_image(const std::string& path, uint64_t size, bool& holes_read_zero) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode)) {
    File dev = open_exclusive(path, "the test failover image");
    if (dev.size() < size)
      throw std::runtime_error(path + " is " + std::to_string(dev.size()) + " bytes, the replica " + std::to_string(size));
    holes_read_zero = false;
    return dev;
  }
  File f = File::open_direct(path, O_RDWR | O_CREAT | O_TRUNC);
  if (::ftruncate(f.fd(), static_cast<off_t>(size)) < 0) throw_errno(errno, "size " + path);
  holes_read_zero = true;
  return f;
}

void undo(const std::vector<UndoJournal::Undo>& plan, const File& image, ImageProgress* progress) {
  uint64_t written = UndoJournal::apply(plan, image);
  if (progress) progress->undone_bytes += written;
}

}  // namespace

File open_exclusive(const std::string& device, const std::string& what, bool direct) {
  Env& e = env();
  int fd = e.open(device, O_RDWR | O_EXCL | (direct ? O_DIRECT : 0) | O_CLOEXEC, 0);
  if (fd < 0 && errno == EINVAL && direct) fd = e.open(device, O_RDWR | O_EXCL | O_CLOEXEC, 0);  // no O_DIRECT there
  if (fd < 0 && errno == EBUSY)
    throw std::runtime_error(device + " is mounted or held open: " + what + " cannot be written under it");
  if (fd < 0) throw_errno(errno, "open " + device);
  return File(fd, device, e);
}

void check_image_target(const std::string& replica_path, const std::string& image_path) {
  struct stat r, i;
  if (::stat(image_path.c_str(), &i) < 0) return;  // a file to be made
  if (::stat(replica_path.c_str(), &r) < 0) throw_errno(errno, "stat " + replica_path);
  const bool same = S_ISBLK(i.st_mode) && S_ISBLK(r.st_mode) ? i.st_rdev == r.st_rdev
                                                              : i.st_dev == r.st_dev && i.st_ino == r.st_ino;
  if (same) throw std::runtime_error(image_path + " is the replica itself: a test failover builds its image elsewhere");
  if (S_ISBLK(i.st_mode)) open_exclusive(image_path, "the test failover image");  // closed again: only a check
}

void build_point_image(History& history, const std::string& replica_path, uint64_t seq, const std::string& image_path,
                       ImageProgress* progress, const std::atomic<bool>* cancel) {
  History::Pin pin(history, seq);  // the history back to seq stays while the copy runs
  check_image_target(replica_path, image_path);
  File replica = File::open_direct(replica_path, O_RDONLY);
  const uint64_t size = replica.size();
  bool holes_read_zero;
  File image = open_image(image_path, size, holes_read_zero);
  if (progress) progress->total_bytes = size;
  AlignedBuffer buf(kCopyChunk);
  for (uint64_t off = 0; off < size; off += kCopyChunk) {
    if (cancel && *cancel) throw std::runtime_error("the image was not finished: hrld stopped");
    auto n = static_cast<size_t>(std::min(kCopyChunk, size - off));
    std::span<std::byte> part(buf.data(), n);
    replica.read_at(part, off);
    if (!(holes_read_zero && all_zero(part))) image.write_at(part, off);
    if (progress) progress->copied_bytes += n;
  }
  // Taken after the copy: it covers every record the copy may have seen.
  undo(pin.plan(), image, progress);
}

void roll_back_replica(History& history, const std::string& replica_path, uint64_t seq, ImageProgress* progress) {
  History::Pin pin(history, seq);
  struct stat st;
  const bool device = ::stat(replica_path.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
  // A device is held exclusively while it goes back: no session, and no
  // mount, writes it meanwhile.
  File replica = device ? open_exclusive(replica_path, "the failover") : File::open_direct(replica_path, O_RDWR);
  if (progress) progress->total_bytes = 0;
  undo(pin.plan(), replica, progress);
}

}  // namespace hrl
