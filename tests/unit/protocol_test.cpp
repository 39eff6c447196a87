#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "log/log_reader.h"
#include "log/log_writer.h"
#include "net/frame.h"
#include "net/messages.h"
#include "net/resync_messages.h"
#include "test_support.h"

namespace hrl::proto {
namespace {

std::vector<std::byte> text_bytes(size_t n) {
  std::string s;
  while (s.size() < n) s += "the quick brown fox jumps over the lazy dog; ";
  s.resize(n);
  return std::vector<std::byte>(reinterpret_cast<const std::byte*>(s.data()),
                                reinterpret_cast<const std::byte*>(s.data()) + n);
}

std::vector<std::byte> roundtrip(const std::vector<std::byte>& frame) {
  FrameHeader h = decode_header(std::span(frame).first(kHeaderSize));
  return open_payload(h, std::span(frame).subspan(kHeaderSize));
}

template <class Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const ProtocolError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Frame, CompressesWhatCompressesAndSendsTheRestRaw) {
  auto text = text_bytes(64 << 10);
  auto frame = make_frame(FrameType::Records, text, 1);
  EXPECT_LT(frame.size(), text.size() / 4);
  EXPECT_EQ(decode_header(std::span(frame).first(kHeaderSize)).flags, kFlagZstd);
  EXPECT_EQ(roundtrip(frame), text);

  std::mt19937_64 rng(1);
  auto noise = random_bytes(rng, 64 << 10);
  frame = make_frame(FrameType::Records, noise, 1);
  EXPECT_EQ(frame.size(), kHeaderSize + noise.size());
  EXPECT_EQ(decode_header(std::span(frame).first(kHeaderSize)).flags, 0u);
  EXPECT_EQ(roundtrip(frame), noise);
}

TEST(Frame, BadHeadersAreRejectedWithAReason) {
  auto frame = make_frame(FrameType::Durable, encode(Durable{42}), 0);
  auto with = [&](size_t off, uint8_t v) {
    auto f = frame;
    f[off] = std::byte{v};
    return error_of([&] { roundtrip(f); });
  };
  EXPECT_NE(with(0, 'X').find("bad magic"), std::string::npos);
  EXPECT_NE(with(4, 9).find("protocol version 9"), std::string::npos);
  EXPECT_NE(with(6, 77).find("unknown frame type 77"), std::string::npos);
  EXPECT_NE(with(15, 0x7f).find("exceeds the limit"), std::string::npos);  // wire_len
  EXPECT_NE(with(8, 4).find("unknown frame flags"), std::string::npos);
  EXPECT_NE(with(kHeaderSize, 0xff).find("fails its checksum"), std::string::npos);
  EXPECT_EQ(decode_durable(roundtrip(frame)).seq, 42u);
}

TEST(Frame, ACorruptCompressedPayloadIsRejected) {
  auto frame = make_frame(FrameType::Records, text_bytes(8192), 3);
  ASSERT_EQ(decode_header(std::span(frame).first(kHeaderSize)).flags, kFlagZstd);
  frame[kHeaderSize + 20] ^= std::byte{0x40};
  EXPECT_NE(error_of([&] { roundtrip(frame); }), "no error");
}

TEST(Messages, RoundTripAndTruncation) {
  Hello h;
  h.uuid[3] = 7;
  h.generation = 2;
  h.data_sectors = 1 << 20;
  h.first_seq = 99;
  h.node = "site-a";
  Hello g = decode_hello(encode(h));
  EXPECT_EQ(g.uuid, h.uuid);
  EXPECT_EQ(g.first_seq, 99u);
  EXPECT_EQ(g.node, "site-a");
  auto bytes = encode(h);
  EXPECT_NE(error_of([&] { decode_hello(std::span(bytes).first(bytes.size() - 1)); }).find("ends early"),
            std::string::npos);
  bytes.push_back(std::byte{0});
  EXPECT_NE(error_of([&] { decode_hello(bytes); }).find("unexpected bytes"), std::string::npos);
  Refuse r = decode_refuse(encode(Refuse{RefuseCode::Generation, "diverged"}));
  EXPECT_EQ(r.code, RefuseCode::Generation);
  EXPECT_EQ(r.message, "diverged");
  Promote p = decode_promote(encode(Promote{3, 1234}));
  EXPECT_EQ(p.generation, 3u);
  EXPECT_EQ(p.last_seq, 1234u);
  EXPECT_NE(error_of([&] { decode_promote(encode(Promote{0, 5})); }).find("generation 0"), std::string::npos);
}

class Batch : public ::testing::Test {
 protected:
  test::LogPair p{4 << 20, 8 << 20};
  uint64_t seed = 0;
  std::vector<std::byte> payload;

  void SetUp() override {
    std::mt19937_64 rng(5);
    {
      LogWriter w(p.log, p.data);
      for (int i = 0; i < 20; i++) w.write(8 * i, random_bytes(rng, 4096 * (1 + i % 3)));
      w.discard(0, 8);
      w.mark("m");
      w.close();
    }
    LogReader reader(p.log);
    seed = reader.superblock().csum_seed();
    BatchBuilder b(seed);
    LogRecord rec;
    while (reader.next(rec).status == ReadStatus::Record) b.add(rec.header, rec.payload);
    payload = b.take();
  }
};

TEST_F(Batch, RecordsTravelWithTheirChecksums) {
  auto recs = decode_batch(payload, seed, 1);
  ASSERT_EQ(recs.size(), 22u);
  EXPECT_EQ(recs[20].header.type, HRL_REC_DISCARD);
  EXPECT_EQ(recs[21].header.type, HRL_REC_MARK);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(recs[21].payload.data()), 1), "m");
}

TEST_F(Batch, ADamagedOrMisplacedBatchIsRefusedWhole) {
  auto bad = payload;
  bad[8 + 64 + 100] ^= std::byte{1};  // the payload of seq 1
  EXPECT_NE(error_of([&] { decode_batch(bad, seed, 1); }).find("seq 1 fails its payload checksum"), std::string::npos);
  EXPECT_NE(error_of([&] { decode_batch(payload, seed, 2); }).find("where 2 was due"), std::string::npos);
  EXPECT_NE(error_of([&] { decode_batch(payload, seed + 1, 1); }).find("header checksum"), std::string::npos);
  EXPECT_NE(error_of([&] { decode_batch(std::span(payload).first(payload.size() - 1), seed, 1); }), "no error");
}

TEST(ResyncMessages, RoundTripAndKeepTheirShape) {
  ResyncChunks c{3, {4, 5, 6, 9, 10}};
  auto cc = decode_resync_chunks(encode(c));
  EXPECT_EQ(cc.batch, 3u);
  EXPECT_EQ(cc.chunks, c.chunks);
  EXPECT_EQ(encode(ResyncChunks{0, {0, 1, 2, 3, 4, 5, 6, 7}}).size(), 8u + 4 + 12) << "a run travels as one";

  ResyncHashes h{2, 3, {{{true, false, true}, {}}, {{false}, {}}}};
  for (int i = 0; i < 8; i++) h.chunks[0].hashes.push_back({uint64_t(i), uint64_t(i) << 32});
  auto hh = decode_resync_hashes(encode(h));
  EXPECT_EQ(hh.level, 3u);
  EXPECT_EQ(hh.chunks[0].differ, h.chunks[0].differ);
  EXPECT_EQ(hh.chunks[0].hashes, h.chunks[0].hashes);
  EXPECT_TRUE(hh.chunks[1].hashes.empty());

  std::vector<std::byte> block(8192, std::byte{7});
  ResyncData d{1, 12, {{0, 8192, false, block}, {1 << 20, 4096, true, {}}}};
  auto enc = encode(d);
  auto dd = decode_resync_data(enc);
  ASSERT_EQ(dd.extents.size(), 2u);
  EXPECT_TRUE(std::equal(dd.extents[0].bytes.begin(), dd.extents[0].bytes.end(), block.begin()));
  EXPECT_TRUE(dd.extents[1].zero);
  EXPECT_EQ(dd.cursor, 12u);
}

TEST(ResyncMessages, MalformedOnesAreRefused) {
  ResyncHashes h{0, 1, {{{true}, {{1, 1}, {2, 2}, {3, 3}}}}};  // a flagged node owes four children
  EXPECT_NE(error_of([&] { decode_resync_hashes(encode(h)); }).find("its flags call for 4"), std::string::npos);
  h.level = 5;
  EXPECT_NE(error_of([&] { decode_resync_hashes(encode(h)); }).find("level 5"), std::string::npos);
  ResyncChunks c{0, {5, 3}};
  EXPECT_NE(error_of([&] { decode_resync_chunks(encode(c)); }).find("increasing"), std::string::npos);
  std::vector<std::byte> block(512, std::byte{1});
  ResyncData d{0, 0, {{100, 512, false, block}}};
  EXPECT_NE(error_of([&] { decode_resync_data(encode(d)); }).find("not whole sectors"), std::string::npos);
  ResyncData overlap{0, 0, {{0, 4096, true, {}}, {512, 512, true, {}}}};
  EXPECT_NE(error_of([&] { decode_resync_data(encode(overlap)); }).find("overlap"), std::string::npos);
  auto begin = encode(ResyncBegin{ResyncMode::Checksum, ResyncRegions::Device, 0, 0, 0, 1});
  EXPECT_NE(error_of([&] { decode_resync_begin(begin); }).find("take sequence"), std::string::npos);
  auto short_enc = encode(ResyncData{0, 0, {{0, 512, false, block}}});
  short_enc.pop_back();
  EXPECT_NE(error_of([&] { decode_resync_data(short_enc); }), "no error");
}

}  // namespace
}  // namespace hrl::proto
