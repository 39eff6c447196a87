// hrl-blockio: seeded block I/O for the VM tier and the crash-state explorer.
//
//   hrl-blockio fill --seed S --bytes N          N seeded random bytes on stdout
//   hrl-blockio hog --leave N                    holds memory until N MiB are left, until killed
//   hrl-blockio run --device DEV --seed S [--journal FILE] [--ops N] [--seconds T]
//                   [--depth D] [--max-blocks B] [--first-id I] [--rate OPS]
//
// `run` is the explorer's application (block_workload.h); `fill` replaces
// /dev/urandom in the guest scenarios, so a failing run replays from its seed.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <vector>

#include "block_workload.h"

namespace {

int fill(uint64_t seed, uint64_t bytes) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> buf(8192);
  while (bytes) {
    for (auto& w : buf) w = rng();
    size_t n = std::min<uint64_t>(bytes, buf.size() * sizeof(uint64_t));
    if (fwrite(buf.data(), 1, n, stdout) != n) return 1;
    bytes -= n;
  }
  return fflush(stdout) == 0 ? 0 : 1;
}

uint64_t available_mib() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  uint64_t kb = 0;
  while (in >> key >> kb >> unit)  // "MemAvailable:   123456 kB"
    if (key == "MemAvailable:") return kb >> 10;
  throw std::runtime_error("no MemAvailable in /proc/meminfo");
}

// Takes memory 4 MiB at a time until only `leave` MiB are available, touching
// every page, so it is really held: without swap nothing gives it back.
int hog(uint64_t leave) {
  std::vector<std::unique_ptr<char[]>> held;
  uint64_t mib = 0;
  for (int settle = 0; settle < 20; settle++) {
    while (available_mib() > leave + 4) {
      held.emplace_back(new char[4 << 20]);
      for (size_t i = 0; i < (4 << 20); i += 4096) held.back()[i] = 1;
      mib += 4;
    }
    usleep(100000);  // what reclaim frees shows up as available again
  }
  printf("blockio: holding %" PRIu64 " MiB, %" PRIu64 " MiB left\n", mib, available_mib());
  fflush(stdout);
  for (;;) pause();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace hrl::blockio;
  CLI::App app{"hrl-blockio: seeded block I/O for the VM tier and the crash-state explorer"};
  app.require_subcommand(1);
  uint64_t seed = 1, bytes = 0;
  auto* fill_cmd = app.add_subcommand("fill", "seeded random bytes on stdout");
  fill_cmd->add_option("--seed", seed, "random seed")->required();
  fill_cmd->add_option("--bytes", bytes, "how many")->required()->transform(CLI::AsSizeValue(false));
  uint64_t leave_mib = 0;
  auto* hog_cmd = app.add_subcommand("hog", "hold memory until killed (a guest under memory pressure)");
  hog_cmd->add_option("--leave", leave_mib, "MiB to leave available")->required();
  WorkloadOptions opt;
  auto* run_cmd = app.add_subcommand("run", "an application's writes, flushes and discards, journaled");
  run_cmd->add_option("--device", opt.device, "the block device")->required();
  run_cmd->add_option("--seed", opt.seed, "random seed")->required();
  run_cmd->add_option("--journal", opt.journal, "append each step here");
  run_cmd->add_option("--ops", opt.ops, "operations to run");
  run_cmd->add_option("--seconds", opt.seconds, "stop after this long (with --ops: whichever comes first)");
  run_cmd->add_option("--depth", opt.depth, "writes in flight");
  run_cmd->add_option("--max-blocks", opt.max_blocks, "largest write in 4 KiB blocks");
  run_cmd->add_option("--region-blocks", opt.region_blocks, "write only the first N blocks");
  run_cmd->add_option("--first-id", opt.first_id, "the first write id");
  run_cmd->add_option("--rate", opt.rate, "operations per second");
  run_cmd->add_option("--flush-ratio", opt.flush_ratio, "share of operations that are flushes");
  run_cmd->add_option("--fua-ratio", opt.fua_ratio, "share of operations that are FUA writes");
  run_cmd->add_option("--discard-ratio", opt.discard_ratio, "share of operations that are discards");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (*fill_cmd) return fill(seed, bytes);
    if (*hog_cmd) return hog(leave_mib);
    WorkloadResult r = run_block_workload(opt);
    printf("blockio: %" PRIu64 " writes (%" PRIu64 " FUA), %" PRIu64 " flushes, %" PRIu64 " discards\n", r.writes,
           r.fua_writes, r.flushes, r.discards);
  } catch (const std::exception& e) {
    fprintf(stderr, "hrl-blockio: %s\n", e.what());
    return 1;
  }
  return 0;
}
