// Helpers shared by the unit and integration tests: scratch files, random
// workloads written through LogWriter, byte-for-byte comparison.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "log/format_log.h"
#include "log/log_writer.h"

namespace hrl::test {

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
std::vector<std::byte> random_bytes(std::mt19937_64& rng, size_t n);
uint64_t file_checksum(const std::string& path);

// A data image and a formatted log beside it.
struct LogPair {
  TempDir dir;
  std::string data, log;
  LogPair(uint64_t data_bytes, uint64_t log_bytes, FormatOptions opt = {});
};

struct WorkloadOptions {
  unsigned ops = 500;
  uint32_t max_write = 256 * 1024;  // bytes
  double discard_ratio = 0.05;
  double mark_ratio = 0.02;
  double flush_ratio = 0.03;
  double hot_ratio = 0.3;     // share of I/O inside a small hot region (overlaps)
  bool ack_as_you_go = false; // ack everything written every few ops
};

struct WorkloadResult {
  uint64_t last_seq = 0;
  unsigned writes = 0, discards = 0, marks = 0;
  std::vector<std::string> mark_names;
};

// Runs a random mix of writes (mixed sizes, overlaps), discards, marks and
// flushes through the writer.
WorkloadResult run_workload(LogWriter& w, std::mt19937_64& rng, const WorkloadOptions& opt);

}  // namespace hrl::test
