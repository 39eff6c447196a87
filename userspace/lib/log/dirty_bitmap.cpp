#include "log/dirty_bitmap.h"

#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <stdexcept>

#include "io/file.h"

namespace hrl {

bool load_bitmap_area(const File& log, uint64_t offset, uint64_t area_bytes, uint64_t csum, uint64_t seed,
                      DirtyBitmap& into) {
  AlignedBuffer area(area_bytes);
  log.read_at(area.span(), offset);
  if (XXH64(area.data(), area_bytes, seed) != csum) return false;
  std::memcpy(into.bytes().data(), area.data(), into.bytes().size());
  return true;
}

uint64_t store_bitmap_area(const File& log, uint64_t offset, uint64_t area_bytes, uint64_t seed,
                           const DirtyBitmap& from) {
  AlignedBuffer area(area_bytes);
  std::memcpy(area.data(), from.bytes().data(), from.bytes().size());
  log.write_at(area.span(), offset);
  return XXH64(area.data(), area_bytes, seed);
}


DirtyBitmap::DirtyBitmap(uint64_t data_sectors, uint32_t bitmap_block) : block_bytes_(bitmap_block) {
  uint64_t per_bit = bitmap_block >> 9;
  bits_ = (data_sectors + per_bit - 1) / per_bit;
  bytes_.assign((bits_ + 7) / 8, std::byte{0});
}

void DirtyBitmap::set_sectors(uint64_t sector, uint64_t nr_sectors) {
  if (nr_sectors == 0) return;
  uint64_t first = sector / block_sectors();
  uint64_t last = (sector + nr_sectors - 1) / block_sectors();
  if (last >= bits_) throw std::out_of_range("bitmap: sector range beyond the device");
  for (uint64_t b = first; b <= last; b++) set(b);
}

bool DirtyBitmap::covers_sectors(uint64_t sector, uint64_t nr_sectors) const {
  if (nr_sectors == 0) return true;
  uint64_t last = (sector + nr_sectors - 1) / block_sectors();
  for (uint64_t b = sector / block_sectors(); b <= last; b++)
    if (b >= bits_ || !test(b)) return false;
  return true;
}

void DirtyBitmap::set_all() {
  std::fill(bytes_.begin(), bytes_.end(), std::byte{0xff});
  if (bits_ % 8) bytes_.back() = static_cast<std::byte>((1u << (bits_ % 8)) - 1);
}

void DirtyBitmap::merge(const DirtyBitmap& other) {
  if (other.bits_ != bits_) throw std::invalid_argument("bitmap: merge of different sizes");
  for (size_t i = 0; i < bytes_.size(); i++) bytes_[i] |= other.bytes_[i];
}

void DirtyBitmap::clear() { std::fill(bytes_.begin(), bytes_.end(), std::byte{0}); }

uint64_t DirtyBitmap::count() const {
  uint64_t n = 0;
  size_t i = 0;
  for (; i + 8 <= bytes_.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, bytes_.data() + i, 8);
    n += static_cast<uint64_t>(std::popcount(w));
  }
  for (; i < bytes_.size(); i++) n += static_cast<uint64_t>(std::popcount(static_cast<unsigned>(bytes_[i])));
  return n;
}

}  // namespace hrl
