// Writes the seed corpus of fuzz_log_reader: rings made by LogWriter with the
// fuzz target's geometry (2048 data sectors, 64 KiB ring, 16 KiB payloads),
// each behind the control bytes that repair checksums.
//   hrl-fuzz-corpus DIR
#include <unistd.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "io/file.h"
#include "log/format_log.h"
#include "log/log_writer.h"

using namespace hrl;

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  std::string dir = argv[1];
  std::string log = dir + "/.log.tmp", data = dir + "/.data.tmp";
  for (int variant = 0; variant < 4; variant++) {
    {
      File l = File::open(log, O_RDWR | O_CREAT | O_TRUNC), d = File::open(data, O_RDWR | O_CREAT | O_TRUNC);
      if (ftruncate(l.fd(), 1 << 20) < 0 || ftruncate(d.fd(), 2048 * 512) < 0) return 1;
      FormatOptions fo;
      fo.ring_bytes = 64 << 10;
      fo.max_payload = 16 << 10;
      format_log(l, 2048, fo);
    }
    std::mt19937_64 rng(variant);
    Superblock sb;
    {
      LogWriter w(log, data);
      for (int i = 0; i < 10 + variant * 8; i++) {
        std::vector<std::byte> buf(512 * (1 + rng() % (variant == 3 ? 32 : 8)));
        for (auto& b : buf) b = static_cast<std::byte>(rng());
        uint64_t sector = rng() % (2048 - buf.size() / 512);
        if (i % 5 == 4) w.discard(sector, 8);
        else if (i % 7 == 6) w.mark("point-" + std::to_string(i));
        else w.write(sector, buf, i % 3 == 0 ? HRL_REC_FUA : 0);
        if (variant >= 2 && i % 4 == 3) w.ack(w.status().head_seq - 1);  // wrap the ring
      }
      sb = w.superblock();
      w.close();
    }
    std::vector<std::byte> ring(sb.ring_bytes);
    File::open(log, O_RDONLY).read_at(ring, sb.ring_offset);
    for (uint8_t ctl : {uint8_t{0x03}, uint8_t{0x0b}}) {
      std::string seed = dir + "/seed-" + std::to_string(variant) + "-" + std::to_string(ctl);
      File f = File::open(seed, O_WRONLY | O_CREAT | O_TRUNC);
      std::byte c{ctl};
      f.write_at({&c, 1}, 0);
      f.write_at(ring, 1);
    }
  }
  unlink(log.c_str());
  unlink(data.c_str());
  return 0;
}
