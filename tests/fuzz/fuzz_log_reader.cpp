// Fuzzes the superblock decoder and the LogReader, the code that meets bytes
// from a log device: whatever the ring holds, the reader returns records that
// obey the format's rules, or stops with End or Corrupt; it never crashes,
// reads outside its buffers, or loops.
//
// Input: one control byte, then bytes for the ring (and the superblock).
//   bit 0: repair header checksums, so mutations reach the field checks
//   bit 1: repair payload checksums too
//   bit 2: take the tail and persisted head from the input
//   bit 3: a tiny read window (4 KiB chunks), so records cross the window's end
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "io/file.h"
#include "log/log_reader.h"
#include "log/record.h"
#include "log/superblock.h"

using namespace hrl;

namespace {

#define CHECK(c)                                                   \
  do {                                                             \
    if (!(c)) {                                                    \
      fprintf(stderr, "fuzz invariant failed: %s\n", #c);          \
      abort();                                                     \
    }                                                              \
  } while (0)

const Superblock& base_superblock() {
  static const Superblock sb = [] {
    Superblock s = make_layout(2048, 1 << 20, 64 << 10, 4096, 16 << 10);
    s.uuid = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    return s;
  }();
  return sb;
}

void repair(std::vector<std::byte>& ring, uint64_t seed, bool payloads) {
  for (size_t pos = 0; pos + HRL_SECTOR_SIZE <= ring.size(); pos += HRL_SECTOR_SIZE) {
    hrl_record_header raw;
    std::memcpy(&raw, ring.data() + pos, sizeof raw);
    if (raw.magic != HRL_RECORD_MAGIC) continue;
    uint64_t avail = ring.size() - pos - HRL_SECTOR_SIZE;
    if (payloads && raw.payload_bytes && raw.payload_bytes <= avail && raw.type != HRL_REC_PAD)
      raw.payload_csum = XXH64(ring.data() + pos + HRL_SECTOR_SIZE, raw.payload_bytes, seed);
    raw.header_csum = XXH64(&raw, HRL_RECORD_CSUM_BYTES, seed);
    std::memcpy(ring.data() + pos, &raw, sizeof raw);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t ctl = data[0];
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data + 1), size - 1);

  // The superblock decoder on raw bytes, then with its checksum repaired.
  std::vector<std::byte> slot(HRL_LOG_BLOCK);
  std::memcpy(slot.data(), in.data(), std::min(in.size(), slot.size()));
  std::string why;
  (void)decode_superblock(slot, &why);
  hrl_superblock raw;
  std::memcpy(&raw, slot.data(), sizeof raw);
  raw.magic = HRL_SB_MAGIC;
  raw.csum = XXH64(&raw, HRL_SB_CSUM_BYTES, hrl_csum_seed(raw.uuid));
  std::memcpy(slot.data(), &raw, sizeof raw);
  if (auto sb = decode_superblock(slot, &why)) CHECK(check_geometry(*sb).empty());

  // A log image with a fixed geometry and the input as its ring.
  Superblock sb = base_superblock();
  if ((ctl & 4) && in.size() >= 4) {
    sb.tail_offset = (static_cast<uint64_t>(in[0]) % (sb.ring_bytes / HRL_SECTOR_SIZE)) * HRL_SECTOR_SIZE;
    sb.tail_seq = 1 + static_cast<uint64_t>(in[1]);
    sb.head_seq = sb.tail_seq + static_cast<uint64_t>(in[2]);
    sb.head_offset = sb.head_seq == sb.tail_seq ? sb.tail_offset : 0;
  }
  std::vector<std::byte> ring(sb.ring_bytes);
  std::memcpy(ring.data(), in.data(), std::min(in.size(), ring.size()));
  if (ctl & 1) repair(ring, sb.csum_seed(), ctl & 2);

  static int fd = memfd_create("hrl-fuzz-log", 0);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  std::vector<std::byte> image(sb.log_bytes_needed());
  encode_superblock(sb, std::span(image).first(HRL_LOG_BLOCK));
  std::memcpy(image.data() + sb.ring_offset, ring.data(), ring.size());
  CHECK(ftruncate(fd, 0) == 0 && pwrite(fd, image.data(), image.size(), 0) == static_cast<ssize_t>(image.size()));

  LogReaderOptions opt;
  opt.backend = IoBackendKind::Uring;
  if (ctl & 8) {
    opt.chunk_bytes = 4096;
    opt.queue_depth = 8;
  }
  LogReader reader(path, opt);
  LogRecord rec;
  uint64_t expect = sb.tail_seq, touched = 0;
  for (int i = 0; i < 512; i++) {
    ReadResult r = reader.next(rec);
    if (r.status != ReadStatus::Record) {
      CHECK(r.at.seq == expect);
      CHECK(!r.describe().empty());
      break;
    }
    const RecordHeader& h = rec.header;
    CHECK(h.seq == expect++);
    CHECK(rec.ring_pos + h.span() <= sb.ring_bytes);
    CHECK(h.type == HRL_REC_PAD || h.payload_bytes <= sb.max_payload);
    if (h.type == HRL_REC_WRITE || h.type == HRL_REC_MARK) CHECK(rec.payload.size() == h.payload_bytes);
    if (h.type == HRL_REC_WRITE) CHECK(h.sector + h.nr_sectors <= sb.data_sectors);
    for (std::byte b : rec.payload) touched += static_cast<uint8_t>(b);
  }
  return static_cast<int>(touched & 0);
}
