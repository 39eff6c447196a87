// The secondary's history at scale: a replica of VOLUME bytes takes SECONDS
// of a RATE bytes/s write workload the way hrld's secondary applies it
// (each batch's before-images captured into the undo journal, durable, then
// the records written), and then a test failover image of the point at the
// start is built, as hrlctl failover --test does. Prints one JSON line.
//
//   hrl-bench-point-image DIR VOLUME SECONDS RATE
//
// The workload: writes of 4 KiB to 256 KiB, 30% of them in a hot tenth of
// the volume, random bytes. The page cache is dropped before the build.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "history/history.h"
#include "history/point_image.h"
#include "io/file.h"

using namespace hrl;
using Clock = std::chrono::steady_clock;

namespace {

// Incompressible bytes, cheaply: xorshift64 words.
void fill_random(uint64_t& state, std::byte* out, size_t n) {
  for (size_t i = 0; i + 8 <= n; i += 8) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    std::memcpy(out + i, &state, 8);
  }
}

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void drop_caches() {
  ::sync();
  if (FILE* f = fopen("/proc/sys/vm/drop_caches", "w")) {
    fputs("3\n", f);
    fclose(f);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s DIR VOLUME_BYTES SECONDS RATE_BYTES\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const uint64_t volume = std::strtoull(argv[2], nullptr, 0) & ~uint64_t{(1 << 20) - 1};
  const double seconds = std::strtod(argv[3], nullptr);
  const uint64_t rate = std::strtoull(argv[4], nullptr, 0);
  try {
    std::filesystem::create_directories(dir);
    const std::string replica = dir + "/replica.img", image = dir + "/point.img";
    std::filesystem::remove_all(dir + "/history.undo");
    std::filesystem::remove(dir + "/history.points");
    uint64_t rng_state = 0x9e3779b97f4a7c15ull;
    File r = File::open(replica, O_RDWR | O_CREAT | O_TRUNC);
    {
      std::vector<std::byte> chunk(1 << 20);
      for (uint64_t off = 0; off < volume; off += chunk.size()) {
        fill_random(rng_state, chunk.data(), chunk.size());
        r.write_at(chunk, off);
      }
      r.datasync();
    }
    std::array<uint8_t, 16> uuid{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    History h(dir + "/history.undo", dir + "/history.points", Retention{0, 0, 256ull << 20});
    h.open(uuid, 0);  // the point: the replica before the first record

    const uint64_t total = static_cast<uint64_t>(seconds * static_cast<double>(rate));
    const uint64_t blocks = volume / 4096, hot = blocks / 10;
    std::mt19937_64 rng(7);
    uint64_t seq = 0, written = 0, records = 0;
    auto t0 = Clock::now();
    std::vector<std::vector<std::byte>> payloads;
    std::vector<LogRecord> batch;
    while (written < total) {  // batches of about 4 MiB, as the primary ships them
      payloads.clear();
      batch.clear();
      uint64_t bytes = 0;
      while (bytes < (4u << 20) && written + bytes < total) {
        uint64_t len = 4096ull << (rng() % 7);  // 4 KiB .. 256 KiB
        uint64_t blk = rng() % 10 < 3 ? rng() % hot : rng() % blocks;
        blk = std::min(blk, blocks - len / 4096);
        payloads.emplace_back(len);
        fill_random(rng_state, payloads.back().data(), len);
        RecordHeader hd{};
        hd.type = HRL_REC_WRITE;
        hd.seq = ++seq;
        hd.sector = blk * 8;
        hd.nr_sectors = static_cast<uint32_t>(len / 512);
        hd.payload_bytes = static_cast<uint32_t>(len);
        batch.push_back(LogRecord{hd, 0, payloads.back()});
        bytes += len;
      }
      h.capture(r, batch);  // durable before the replica changes
      for (const auto& rec : batch) r.write_at(rec.payload, rec.header.sector * 512);
      r.datasync();
      written += bytes;
      records += batch.size();
    }
    const double apply_s = since(t0);
    drop_caches();
    ImageProgress progress;
    t0 = Clock::now();
    build_point_image(h, replica, 0, image, &progress);
    const double build_s = since(t0);
    printf("{\"volume_bytes\": %llu, \"workload_bytes\": %llu, \"records\": %llu, \"history_bytes\": %llu, "
           "\"apply_seconds\": %.2f, \"build_seconds\": %.2f, \"copied_bytes\": %llu, \"undone_bytes\": %llu}\n",
           static_cast<unsigned long long>(volume), static_cast<unsigned long long>(written),
           static_cast<unsigned long long>(records), static_cast<unsigned long long>(h.size_bytes()), apply_s, build_s,
           static_cast<unsigned long long>(progress.copied_bytes.load()),
           static_cast<unsigned long long>(progress.undone_bytes.load()));
    std::filesystem::remove_all(dir + "/history.undo");  // tens of GiB: not kept between runs
  } catch (const std::exception& e) {
    fprintf(stderr, "hrl-bench-point-image: %s\n", e.what());
    return 1;
  }
  return 0;
}
