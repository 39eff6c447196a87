// Helpers shared by the unit and integration tests: scratch files, random
// workloads written through LogWriter, byte-for-byte comparison.
#pragma once

#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "log/format_log.h"
#include "log/log_writer.h"
#include "resync/compare.h"
#include "workload.h"

namespace hrl {
// gtest prints ranges as "[offset +length]".
inline void PrintTo(const ByteRange& r, std::ostream* os) { *os << "[" << r.offset << " +" << r.length << "]"; }
}  // namespace hrl

namespace hrl::test {

using hrl::WorkloadOptions;
using hrl::WorkloadResult;
using hrl::run_workload;
using hrl::random_bytes;


// A scratch directory under the build tree's tmp/ (a real filesystem, so
// O_DIRECT, fallocate and io_uring behave as on a device), removed at the end.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Creates (or truncates) a sparse file of the given size.
std::string make_file(const std::string& path, uint64_t bytes);
std::vector<std::byte> read_file(const std::string& path);
void copy_file(const std::string& from, const std::string& to);
// Empty when equal; otherwise where the first difference is.
std::string compare_files(const std::string& a, const std::string& b);
uint64_t file_checksum(const std::string& path);

// A loop device over an image file (losetup), detached at the end; with
// mount(), an ext4 made on it and mounted, unmounted at the end. Tests that
// need a real block device: O_EXCL, a mounted file system.
class LoopDevice {
 public:
  explicit LoopDevice(const std::string& image);
  ~LoopDevice();
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;
  const std::string& path() const { return dev_; }
  void mount(const std::string& where);  // mkfs.ext4, then mount
  void unmount();

 private:
  std::string dev_, mounted_;
};

// A data image and a formatted log beside it.
struct LogPair {
  TempDir dir;
  std::string data, log;
  LogPair(uint64_t data_bytes, uint64_t log_bytes, FormatOptions opt = {});
};

}  // namespace hrl::test
