// hrl-workload: writes a random block workload through LogWriter, the
// userspace producer of the .hrl log, as an application would through
// /dev/mapper/hrl-<name>. For the demo, tests and benchmarks.
//
//   hrl-workload --log LOG --data DATA [--ops N] [--max-write SIZE] [--seed S]
//                [--mark NAME] [--ack] [--crash]
#include <CLI/CLI.hpp>
#include <cinttypes>
#include <cstdio>

#include "log/log_writer.h"
#include "workload.h"

int main(int argc, char** argv) {
  using namespace hrl;
  CLI::App app{"hrl-workload: a random block workload written through LogWriter"};
  std::string log, data, mark;
  WorkloadOptions opt;
  uint64_t seed = 1;
  bool crash = false;
  app.add_option("--log", log, "the .hrl log")->required();
  app.add_option("--data", data, "the data device or image")->required();
  app.add_option("--ops", opt.ops, "operations to run");
  app.add_option("--max-write", opt.max_write, "largest write")->transform(CLI::AsSizeValue(false));
  app.add_option("--seed", seed, "random seed");
  app.add_option("--mark", mark, "put a MARK with this name at the end");
  app.add_flag("--ack", opt.ack_as_you_go, "acknowledge records as they are written (no secondary)");
  app.add_flag("--crash", crash, "exit without a clean close, as a crash would");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    LogWriter w(log, data);
    std::mt19937_64 rng(seed);
    WorkloadResult r = run_workload(w, rng, opt);
    if (!mark.empty()) w.mark(mark);
    WriterStatus st = w.status();
    printf("workload: %u writes, %u discards, %u marks; log seq %" PRIu64 "..%" PRIu64 ", ring %" PRIu64 "/%" PRIu64
           " bytes, mode %s\n",
           r.writes, r.discards, r.marks + !mark.empty(), st.tail_seq, st.head_seq - 1, st.ring_used, st.ring_bytes,
           mode_name(st.mode));
    if (!crash) w.close();
  } catch (const std::exception& e) {
    fprintf(stderr, "hrl-workload: %s\n", e.what());
    return 1;
  }
  return 0;
}
