// Writes the seed corpus of fuzz_log_reader: rings made by LogWriter with the
// fuzz target's geometry (2048 data sectors, 64 KiB ring, 16 KiB payloads),
// each behind the control bytes that repair checksums.
// and of fuzz_protocol: one valid frame of each type.
//   hrl-fuzz-corpus DIR PROTOCOL_DIR
#include <unistd.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "io/file.h"
#include "log/format_log.h"
#include "log/log_writer.h"
#include "net/frame.h"
#include "net/messages.h"
#include "net/resync_messages.h"

using namespace hrl;

static void write_seed(const std::string& path, std::span<const std::byte> bytes) {
  File f = File::open(path, O_WRONLY | O_CREAT | O_TRUNC);
  f.write_at(bytes, 0);
}

// Seeds of the protocol fuzzer; its batches are checked with seed 0x1234.
static void protocol_seeds(const std::string& dir) {
  using namespace hrl::proto;
  Hello h;
  h.uuid[0] = 1;
  h.generation = 1;
  h.data_sectors = 2048;
  h.first_seq = 1;
  h.node = "primary";
  write_seed(dir + "/hello", make_frame(FrameType::Hello, encode(h), 0));
  write_seed(dir + "/welcome", make_frame(FrameType::Welcome, encode(Welcome{h.uuid, 1, 5, 0x1234, 0, 0, 0, 0, 0, "secondary"}), 0));
  write_seed(dir + "/refuse", make_frame(FrameType::Refuse, encode(Refuse{RefuseCode::Gap, "gone"}), 0));
  write_seed(dir + "/durable", make_frame(FrameType::Durable, encode(Durable{7}), 0));
  write_seed(dir + "/promote", make_frame(FrameType::Promote, encode(Promote{3, 1234}), 0));
  BatchBuilder b(0x1234);
  std::vector<std::byte> data(2048, std::byte{0x5a});
  for (uint64_t seq = 1; seq <= 4; seq++) {
    RecordHeader r;
    r.seq = seq;
    r.generation = 1;
    r.sector = seq * 8;
    r.nr_sectors = 4;
    r.payload_bytes = 2048;
    r.payload_csum = payload_checksum(data, 0x1234);
    b.add(r, data);
  }
  RecordHeader pad;
  pad.type = HRL_REC_PAD;
  pad.seq = 5;
  pad.generation = 1;
  pad.payload_bytes = 1024;
  b.add(pad, {});
  auto batch = b.take();
  write_seed(dir + "/records-raw", make_frame(FrameType::Records, batch, 0));
  write_seed(dir + "/records-zstd", make_frame(FrameType::Records, batch, 1));
  write_seed(dir + "/resync-begin", make_frame(FrameType::ResyncBegin,
                                               encode(ResyncBegin{ResyncMode::Checksum, ResyncRegions::Device, 6, 9, 0, 4}), 0));
  write_seed(dir + "/resync-chunks", make_frame(FrameType::ResyncChunks, encode(ResyncChunks{0, {0, 1, 2, 7}}), 0));
  ResyncHashes roots{0, 0, {{{}, {{1, 2}}}, {{}, {{3, 4}}}}};
  write_seed(dir + "/resync-roots", make_frame(FrameType::ResyncHashes, encode(roots), 0));
  ResyncHashes level1{0, 1, {{{true}, {{1, 1}, {2, 2}, {3, 3}, {4, 4}}}, {{false}, {}}}};
  write_seed(dir + "/resync-level1", make_frame(FrameType::ResyncHashes, encode(level1), 0));
  ResyncData rd{0, 3, {{4096, 4096, false, {}}, {16384, 8192, true, {}}}};
  std::vector<std::byte> block(4096, std::byte{0x33});
  rd.extents[0].bytes = block;
  write_seed(dir + "/resync-data", make_frame(FrameType::ResyncData, encode(rd), 1));
  write_seed(dir + "/resync-end", make_frame(FrameType::ResyncEnd, encode(ResyncEnd{42}), 0));
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s DIR PROTOCOL_DIR\n", argv[0]);
    return 2;
  }
  protocol_seeds(argv[2]);
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
