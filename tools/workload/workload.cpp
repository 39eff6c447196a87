#include "workload.h"

#include <chrono>
#include <stdexcept>
#include <thread>

namespace hrl {

std::vector<std::byte> random_bytes(std::mt19937_64& rng, size_t n) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; i += 8) {
    uint64_t r = rng();
    for (size_t k = 0; k < 8 && i + k < n; k++) v[i + k] = static_cast<std::byte>(r >> (8 * k));
  }
  return v;
}

WorkloadResult run_workload(LogWriter& w, std::mt19937_64& rng, const WorkloadOptions& opt) {
  WorkloadResult res;
  const uint64_t sectors = w.superblock().data_sectors;
  const uint64_t hot = std::min<uint64_t>(sectors, 256);  // a 128 KiB hot region
  std::uniform_real_distribution<double> coin(0, 1);
  auto pick_range = [&](uint64_t max_sectors, uint64_t& sector, uint64_t& nr) {
    nr = 1 + rng() % max_sectors;
    bool in_hot = coin(rng) < opt.hot_ratio;
    uint64_t span = in_hot ? hot : sectors;
    nr = std::min(nr, span);
    sector = rng() % (span - nr + 1);
  };
  for (unsigned i = 0; i < opt.ops; i++) {
    double c = coin(rng);
    uint64_t sector, nr;
    uint64_t seq = 0;
    if (c < opt.discard_ratio) {
      pick_range(opt.max_write / 512, sector, nr);
      seq = w.discard(sector, static_cast<uint32_t>(nr));
      res.discards++;
    } else if (c < opt.discard_ratio + opt.mark_ratio && !w.superblock().has(HRL_SB_BITMAP_MODE)) {
      std::string name = "mark-" + std::to_string(i);
      seq = w.mark(name);
      res.mark_names.push_back(name);
      res.marks++;
    } else {
      // Mixed sizes: mostly 4 KiB multiples, some odd sector counts.
      uint64_t max = opt.max_write / 512;
      pick_range(coin(rng) < 0.5 ? std::min<uint64_t>(max, 8) : max, sector, nr);
      if (coin(rng) < 0.7) {
        sector &= ~uint64_t{7};
        nr = std::max<uint64_t>(8, nr & ~uint64_t{7});
        if (sector + nr > sectors) sector = sectors - nr;
      }
      uint16_t flags = 0;
      if (coin(rng) < opt.flush_ratio) flags |= HRL_REC_FLUSH;
      if (coin(rng) < opt.flush_ratio) flags |= HRL_REC_FUA;
      seq = w.write(sector, random_bytes(rng, nr * 512), flags);
      res.writes++;
    }
    if (seq) res.last_seq = seq;
    if (opt.ack_as_you_go && i % 7 == 6 && w.status().head_seq > 1) w.ack(w.status().head_seq - 1);
  }
  return res;
}

uint64_t run_paced(LogWriter& w, std::mt19937_64& rng, unsigned ops, WorkloadOptions one) {
  one.ops = 1;
  for (unsigned i = 0; i < ops; i++) {
    // A shipper that never acknowledges is a failure to report, not a wait
    // that outlasts the test run.
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (w.status().ring_used > w.status().ring_bytes / 2 && !w.refresh_acknowledged()) {
      if (std::chrono::steady_clock::now() > give_up)
        throw std::runtime_error("run_paced: the ring stayed more than half full for 120 s: no shipper acknowledged");
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    run_workload(w, rng, one);
  }
  return w.status().head_seq - 1;
}

}  // namespace hrl
