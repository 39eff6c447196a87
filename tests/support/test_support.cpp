#include "test_support.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <stdexcept>

#include "io/file.h"

namespace fs = std::filesystem;

namespace hrl::test {

TempDir::TempDir() {
  fs::path base = fs::current_path() / "tmp";
  fs::create_directories(base);
  std::string tmpl = (base / "hrl-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string make_file(const std::string& path, uint64_t bytes) {
  File f = File::open(path, O_RDWR | O_CREAT | O_TRUNC);
  if (ftruncate(f.fd(), static_cast<off_t>(bytes)) < 0) throw_errno(errno, "ftruncate " + path);
  return path;
}

std::vector<std::byte> read_file(const std::string& path) {
  File f = File::open(path, O_RDONLY);
  std::vector<std::byte> buf(f.size());
  f.read_at(buf, 0);
  return buf;
}

void copy_file(const std::string& from, const std::string& to) {
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
}

std::string compare_files(const std::string& a, const std::string& b) {
  auto x = read_file(a), y = read_file(b);
  if (x.size() != y.size())
    return "sizes differ: " + std::to_string(x.size()) + " vs " + std::to_string(y.size());
  for (size_t i = 0; i < x.size(); i++)
    if (x[i] != y[i]) return "first difference at byte " + std::to_string(i) + " (sector " + std::to_string(i / 512) + ")";
  return {};
}

uint64_t file_checksum(const std::string& path) {  // streamed: images can be gibibytes
  File f = File::open(path, O_RDONLY);
  std::unique_ptr<XXH64_state_t, decltype(&XXH64_freeState)> st(XXH64_createState(), XXH64_freeState);
  XXH64_reset(st.get(), 0);
  std::vector<std::byte> buf(4 << 20);
  for (uint64_t off = 0, size = f.size(); off < size;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - off));
    f.read_at(std::span(buf.data(), n), off);
    XXH64_update(st.get(), buf.data(), n);
    off += n;
  }
  return XXH64_digest(st.get());
}

namespace {

std::string run_out(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw std::runtime_error("cannot run " + cmd);
  char buf[256];
  while (fgets(buf, sizeof buf, p)) out += buf;
  if (pclose(p) != 0) throw std::runtime_error(cmd + " failed: " + out);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

LoopDevice::LoopDevice(const std::string& image) : dev_(run_out("losetup --find --show " + image + " 2>&1")) {}

LoopDevice::~LoopDevice() {
  try {
    unmount();
  } catch (const std::exception&) {
  }
  if (system(("losetup -d " + dev_ + " 2>/dev/null").c_str()) != 0) fprintf(stderr, "losetup -d %s failed\n", dev_.c_str());
}

void LoopDevice::mount(const std::string& where) {
  run_out("mkfs.ext4 -q -F " + dev_ + " 2>&1");
  fs::create_directories(where);
  run_out("mount " + dev_ + " " + where + " 2>&1");
  mounted_ = where;
}

void LoopDevice::unmount() {
  if (mounted_.empty()) return;
  run_out("umount " + mounted_ + " 2>&1");
  mounted_.clear();
}

LogPair::LogPair(uint64_t data_bytes, uint64_t log_bytes, FormatOptions opt) {
  data = make_file(dir.file("data.img"), data_bytes);
  log = make_file(dir.file("log.img"), log_bytes);
  File f = File::open(log, O_RDWR);
  format_log(f, data_bytes / 512, opt);
}

}  // namespace hrl::test
