// LogReader throughput: generates a log of a given size through LogWriter,
// then reads it back with LogReader and prints the rate, for fio to be run
// on the same bytes beside it (bench/log-reader.sh does both).
//
//   hrl-bench-log-reader generate LOG DATA RING_BYTES          (a mildly varied buffer)
//   hrl-bench-log-reader generate-corpus LOG DATA RING_BYTES   (half text-like, half random)
//   hrl-bench-log-reader read LOG io_uring|libaio [chunk_bytes depth]
#include <chrono>
#include <cinttypes>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "io/file.h"
#include "log/format_log.h"
#include "log/log_reader.h"
#include "log/log_writer.h"

using namespace hrl;

// Text-like data: words drawn at random, compressible as logs and documents are.
static void fill_text(std::mt19937_64& rng, std::span<std::byte> out) {
  static const char* words[] = {"replication", "volume",  "block", "journal", "secondary", "primary", "the",
                                "of",          "write",   "data",  "record",  "sequence",  "resync",  "site",
                                "failover",    "latency", "disk",  "commit",  "table",     "index",   "row"};
  size_t i = 0;
  while (i < out.size()) {
    const char* w = words[rng() % (sizeof words / sizeof *words)];
    for (const char* c = w; *c && i < out.size(); c++) out[i++] = static_cast<std::byte>(*c);
    if (i < out.size()) out[i++] = static_cast<std::byte>(rng() % 8 ? ' ' : '\n');
  }
}

static int generate(const std::string& log_path, const std::string& data_path, uint64_t ring_bytes,
                    bool corpus = false) {
  {
    File log = File::open(log_path, O_RDWR | O_CREAT | O_TRUNC);
    File data = File::open(data_path, O_RDWR | O_CREAT | O_TRUNC);
    if (ftruncate(data.fd(), 1LL << 30) < 0 || ftruncate(log.fd(), static_cast<off_t>(ring_bytes + (4 << 20))) < 0)
      throw_errno(errno, "ftruncate");
    FormatOptions fo;
    fo.ring_bytes = ring_bytes;
    fo.assume_in_sync = true;  // data and replica both start zeroed: no initial resync in the benches
    format_log(log, (1ULL << 30) / 512, fo);
  }
  LogWriter w(log_path, data_path);
  std::mt19937_64 rng(1);
  std::vector<std::byte> buf(1 << 20);
  for (auto& b : buf) b = static_cast<std::byte>(rng());
  // A mix like a database's: mostly 4-64 KiB, some 1 MiB.
  const uint64_t sizes[] = {4096, 4096, 8192, 16384, 65536, 131072, 1 << 20};
  while (w.status().ring_used + (2 << 20) < ring_bytes) {
    uint64_t n = sizes[rng() % 7];
    uint64_t sector = (rng() % ((1ULL << 30) - n)) / 4096 * 8;
    if (corpus) {  // half text-like, half random: a mixed, partly compressible journal
      auto piece = std::span(buf).first(n);
      if (rng() % 2)
        fill_text(rng, piece);
      else
        for (size_t i = 0; i < n; i += 8) {
          uint64_t r = rng();
          std::memcpy(piece.data() + i, &r, std::min<size_t>(8, n - i));
        }
    } else {
      buf[rng() % n] = static_cast<std::byte>(rng());
    }
    w.write(sector, std::span(buf).first(n));
  }
  WriterStatus st = w.status();
  w.close();
  printf("generated %s: %" PRIu64 " records, %" PRIu64 " ring bytes\n", log_path.c_str(), st.head_seq - 1, st.ring_used);
  return 0;
}

static int read_log(const std::string& log_path, const std::string& backend, uint32_t chunk, unsigned depth) {
  LogReaderOptions opt;
  opt.backend = parse_io_backend_kind(backend);
  opt.chunk_bytes = chunk;
  opt.queue_depth = depth;
  LogReader r(log_path, opt);
  LogRecord rec;
  uint64_t records = 0, bytes = 0;
  auto t0 = std::chrono::steady_clock::now();
  ReadResult res;
  while ((res = r.next(rec)).status == ReadStatus::Record) {
    records++;
    bytes += rec.header.span();
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (res.status != ReadStatus::End) {
    fprintf(stderr, "%s\n", res.describe().c_str());
    return 1;
  }
  // One line a script can parse: backend, records, bytes, seconds, MiB/s.
  printf("reader %s records=%" PRIu64 " bytes=%" PRIu64 " seconds=%.3f mib_s=%.1f\n", r.backend_name().data(), records,
         bytes, secs, static_cast<double>(bytes) / secs / (1 << 20));
  return 0;
}

int main(int argc, char** argv) {
  try {
    std::string cmd = argc > 1 ? argv[1] : "";
    if (cmd == "generate" && argc == 5) return generate(argv[2], argv[3], std::strtoull(argv[4], nullptr, 0));
    if (cmd == "generate-corpus" && argc == 5)
      return generate(argv[2], argv[3], std::strtoull(argv[4], nullptr, 0), true);
    if (cmd == "read" && (argc == 4 || argc == 6))
      return read_log(argv[2], argv[3], argc == 6 ? static_cast<uint32_t>(std::strtoul(argv[4], nullptr, 0)) : 1u << 20,
                      argc == 6 ? static_cast<unsigned>(std::strtoul(argv[5], nullptr, 0)) : 16);
  } catch (const std::exception& e) {
    fprintf(stderr, "hrl-bench-log-reader: %s\n", e.what());
    return 1;
  }
  fprintf(stderr, "usage: %s generate LOG DATA RING_BYTES | read LOG BACKEND [CHUNK DEPTH]\n", argv[0]);
  return 2;
}
