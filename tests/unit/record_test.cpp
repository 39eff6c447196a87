#include <gtest/gtest.h>

#include <cstring>

#include "log/record.h"
#include "log/superblock.h"

namespace hrl {
namespace {

constexpr uint64_t kSeed = 0x1234;

RecordHeader write_header(uint64_t seq, uint32_t nr) {
  RecordHeader h;
  h.type = HRL_REC_WRITE;
  h.seq = seq;
  h.generation = 1;
  h.sector = 64;
  h.nr_sectors = nr;
  h.payload_bytes = nr * 512;
  h.payload_csum = 99;
  return h;
}

RecordVerdict roundtrip(const RecordHeader& h, RecordHeader& out) {
  std::byte unit[HRL_SECTOR_SIZE];
  encode_record_header(h, kSeed, unit);
  return decode_record_header(unit, kSeed, out);
}

TEST(Record, HeaderRoundTrip) {
  RecordHeader h = write_header(5, 8), got;
  h.flags = HRL_REC_FUA;
  h.timestamp_ns = 123456789;
  ASSERT_EQ(roundtrip(h, got), RecordVerdict::Valid);
  EXPECT_EQ(got.seq, 5u);
  EXPECT_EQ(got.sector, 64u);
  EXPECT_EQ(got.nr_sectors, 8u);
  EXPECT_EQ(got.flags, HRL_REC_FUA);
  EXPECT_EQ(got.timestamp_ns, 123456789u);
  EXPECT_EQ(got.span(), 512u + 4096u);
}

TEST(Record, EveryByteOfTheHeaderIsCovered) {
  std::byte unit[HRL_SECTOR_SIZE];
  encode_record_header(write_header(5, 8), kSeed, unit);
  RecordHeader got;
  for (size_t i = 4; i < HRL_RECORD_HEADER_SIZE; i++) {
    std::byte copy[HRL_SECTOR_SIZE];
    std::memcpy(copy, unit, sizeof copy);
    copy[i] ^= std::byte{0x10};
    EXPECT_EQ(decode_record_header(copy, kSeed, got), RecordVerdict::Torn) << "byte " << i;
  }
  // Another volume's seed: its records never validate here.
  EXPECT_EQ(decode_record_header(unit, kSeed + 1, got), RecordVerdict::Torn);
  std::byte zeros[HRL_SECTOR_SIZE] = {};
  EXPECT_EQ(decode_record_header(zeros, kSeed, got), RecordVerdict::NoRecord);
}

TEST(Record, ImpossibleFieldsAreMalformed) {
  RecordHeader got;
  RecordHeader h = write_header(1, 8);
  h.payload_bytes = 4000;
  EXPECT_EQ(roundtrip(h, got), RecordVerdict::Malformed);
  h = write_header(1, 0);
  h.payload_csum = 0;
  EXPECT_EQ(roundtrip(h, got), RecordVerdict::Malformed);  // empty write without FLUSH
  h.flags = HRL_REC_FLUSH;
  EXPECT_EQ(roundtrip(h, got), RecordVerdict::Valid);  // an empty flush
  h = write_header(1, 8);
  h.type = 9;
  EXPECT_EQ(roundtrip(h, got), RecordVerdict::Malformed);
  h = write_header(1, 8);
  h.flags = 0x80;
  EXPECT_EQ(roundtrip(h, got), RecordVerdict::Malformed);
  h = write_header(1, 8);
  h.type = HRL_REC_DISCARD;
  EXPECT_EQ(roundtrip(h, got), RecordVerdict::Malformed);  // discard with payload
  h.payload_bytes = 0;
  EXPECT_EQ(roundtrip(h, got), RecordVerdict::Malformed);  // no payload, yet a payload checksum
  h.payload_csum = 0;
  EXPECT_EQ(roundtrip(h, got), RecordVerdict::Valid);
  h = RecordHeader{};
  h.type = HRL_REC_MARK;
  h.payload_bytes = 300;
  EXPECT_EQ(roundtrip(h, got), RecordVerdict::Malformed);  // name too long
}

TEST(Record, CheckedAgainstItsLog) {
  Superblock sb = make_layout(8192, 4 << 20, 1 << 20, 4096, 64 << 10);
  sb.generation = 3;
  RecordHeader h = write_header(10, 8);
  h.generation = 3;
  std::string why;
  EXPECT_EQ(check_record_in_log(h, sb, 0, 10, &why), RecordVerdict::Valid) << why;
  EXPECT_EQ(check_record_in_log(h, sb, 0, 11, &why), RecordVerdict::Stale);
  EXPECT_NE(why.find("expected seq 11"), std::string::npos) << why;
  h.generation = 2;
  EXPECT_EQ(check_record_in_log(h, sb, 0, 10), RecordVerdict::Stale);
  h.generation = 3;
  EXPECT_EQ(check_record_in_log(h, sb, sb.ring_bytes - 512, 10), RecordVerdict::Malformed);  // crosses the end
  h.sector = 8190;
  EXPECT_EQ(check_record_in_log(h, sb, 0, 10), RecordVerdict::Malformed);  // beyond the data device
  RecordHeader pad;
  pad.type = HRL_REC_PAD;
  pad.seq = 10;
  pad.generation = 3;
  pad.payload_bytes = 1024;
  EXPECT_EQ(check_record_in_log(pad, sb, sb.ring_bytes - 1536, 10), RecordVerdict::Valid);
  EXPECT_EQ(check_record_in_log(pad, sb, 0, 10), RecordVerdict::Malformed);  // must end at the ring's end
}

}  // namespace
}  // namespace hrl
