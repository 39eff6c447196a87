#include "resync/block_hasher.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace hrl {
namespace {

Hash128 xxh3(std::span<const std::byte> bytes) {
  XXH128_hash_t h = XXH3_128bits(bytes.data(), bytes.size());
  return {h.low64, h.high64};
}

bool all_zero(std::span<const std::byte> bytes) {
  // Compare the buffer with itself shifted by one word after checking the first word.
  if (bytes.size() < 8) return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == std::byte{0}; });
  uint64_t first;
  std::memcpy(&first, bytes.data(), 8);
  return first == 0 && std::memcmp(bytes.data(), bytes.data() + 8, bytes.size() - 8) == 0;
}

}  // namespace

BlockHasher::BlockHasher(const File& dev, IoBackend& io, HashOptions opt) : dev_(dev), io_(io), opt_(opt) {
  if (!opt_.block_bytes || opt_.chunk_bytes % opt_.block_bytes || opt_.block_bytes % 512)
    throw std::invalid_argument("hash: chunks must be whole blocks of whole sectors");
  opt_.queue_depth = std::min(opt_.queue_depth, io_.queue_depth());
}

void BlockHasher::read_pieces(uint64_t offset, uint64_t len, uint32_t piece,
                              const std::function<void(uint64_t, std::span<const std::byte>)>& fn) {
  const uint64_t count = (len + piece - 1) / piece;
  std::vector<AlignedBuffer> bufs;
  for (unsigned i = 0; i < opt_.queue_depth; i++) bufs.emplace_back(piece);
  std::vector<uint64_t> slot_piece(opt_.queue_depth);
  std::vector<unsigned> free_slots;
  for (unsigned i = 0; i < opt_.queue_depth; i++) free_slots.push_back(i);
  uint64_t next = 0, done = 0;
  IoCompletion comps[64];
  while (done < count) {
    while (next < count && !free_slots.empty()) {
      unsigned s = free_slots.back();
      free_slots.pop_back();
      uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(piece, len - next * piece));
      slot_piece[s] = next;
      io_.queue({IoOp::Read, dev_.fd(), bufs[s].data(), n, offset + next * piece, s});
      next++;
    }
    io_.submit();
    size_t got = io_.wait(comps, 1);
    for (size_t k = 0; k < got; k++) {
      unsigned s = static_cast<unsigned>(comps[k].tag);
      uint64_t idx = slot_piece[s];
      uint64_t want = std::min<uint64_t>(piece, len - idx * piece);
      if (comps[k].result < 0) throw_errno(static_cast<int>(-comps[k].result), "read " + dev_.path());
      if (static_cast<uint64_t>(comps[k].result) != want)
        throw std::runtime_error(dev_.path() + ": short read at " + std::to_string(offset + idx * piece));
      fn(idx, std::span<const std::byte>(bufs[s].data(), want));
      bytes_read_ += want;
      free_slots.push_back(s);
      done++;
    }
  }
}

std::vector<Hash128> BlockHasher::hash_chunks(uint64_t offset, uint64_t len) {
  std::vector<Hash128> out((len + opt_.chunk_bytes - 1) / opt_.chunk_bytes);
  read_pieces(offset, len, opt_.chunk_bytes, [&](uint64_t i, std::span<const std::byte> b) { out[i] = xxh3(b); });
  return out;
}

std::vector<BlockHash> BlockHasher::hash_blocks(uint64_t offset, uint64_t len) {
  std::vector<BlockHash> out((len + opt_.block_bytes - 1) / opt_.block_bytes);
  const uint32_t per_read = opt_.chunk_bytes;  // read whole chunks, hash their blocks
  read_pieces(offset, len, per_read, [&](uint64_t i, std::span<const std::byte> b) {
    for (size_t off = 0; off < b.size(); off += opt_.block_bytes) {
      auto block = b.subspan(off, std::min<size_t>(opt_.block_bytes, b.size() - off));
      out[(i * per_read + off) / opt_.block_bytes] = {xxh3(block), all_zero(block)};
    }
  });
  return out;
}

std::vector<ByteRange> differing_ranges(const File& a, const File& b, IoBackend& io, HashOptions opt,
                                        uint64_t* bytes_read) {
  uint64_t size = a.size();
  if (b.size() != size)
    throw std::runtime_error("compare: " + a.path() + " is " + std::to_string(size) + " bytes, " + b.path() + " " +
                             std::to_string(b.size()));
  BlockHasher ha(a, io, opt), hb(b, io, opt);
  auto ca = ha.hash_chunks(0, size), cb = hb.hash_chunks(0, size);
  std::vector<ByteRange> out;
  for (size_t c = 0; c < ca.size(); c++) {
    if (ca[c] == cb[c]) continue;
    uint64_t off = c * opt.chunk_bytes, len = std::min<uint64_t>(opt.chunk_bytes, size - off);
    auto ba = ha.hash_blocks(off, len), bb = hb.hash_blocks(off, len);
    for (size_t k = 0; k < ba.size(); k++) {
      if (ba[k].hash == bb[k].hash) continue;
      uint64_t boff = off + k * opt.block_bytes, blen = std::min<uint64_t>(opt.block_bytes, size - boff);
      if (!out.empty() && out.back().offset + out.back().length == boff)
        out.back().length += blen;
      else
        out.push_back({boff, blen});
    }
  }
  if (bytes_read) *bytes_read = ha.bytes_read() + hb.bytes_read();
  return out;
}

}  // namespace hrl
