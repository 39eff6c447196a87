#include "history/point_image.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace hrl {
namespace {

constexpr uint64_t kCopyChunk = 1 << 20;

bool all_zero(const std::byte* p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != std::byte{0}) return false;
  return true;
}

// The image to write: an existing block device as it is, else a file made
// anew at the replica's size, whose zero blocks can stay holes.
File open_image(const std::string& path, uint64_t size, bool& holes_read_zero) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode)) {
    File dev = File::open_direct(path, O_RDWR);
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

void build_point_image(History& history, const std::string& replica_path, uint64_t seq, const std::string& image_path,
                       ImageProgress* progress, const std::atomic<bool>* cancel) {
  History::Pin pin(history, seq);  // the history back to seq stays while the copy runs
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
    if (!(holes_read_zero && all_zero(part.data(), n))) image.write_at(part, off);
    if (progress) progress->copied_bytes += n;
  }
  // Taken after the copy: it covers every record the copy may have seen.
  undo(pin.plan(), image, progress);
}

void roll_back_replica(History& history, const std::string& replica_path, uint64_t seq, ImageProgress* progress) {
  History::Pin pin(history, seq);
  File replica = File::open_direct(replica_path, O_RDWR);
  if (progress) progress->total_bytes = 0;
  undo(pin.plan(), replica, progress);
}

}  // namespace hrl
