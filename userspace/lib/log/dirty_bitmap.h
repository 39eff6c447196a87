// A bitmap of data blocks (bitmap_block bytes each) that may differ from the
// replica. Its bytes are the on-disk form: bit n is bit (n % 8) of byte n / 8,
// the kernel's bitmap layout on a little-endian machine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace hrl {

class DirtyBitmap {
 public:
  DirtyBitmap() = default;
  DirtyBitmap(uint64_t data_sectors, uint32_t bitmap_block);

  uint64_t bits() const { return bits_; }
  uint32_t block_bytes() const { return block_bytes_; }
  uint64_t block_sectors() const { return block_bytes_ >> 9; }

  // Marks every block touched by [sector, sector + nr_sectors).
  void set_sectors(uint64_t sector, uint64_t nr_sectors);
  void set(uint64_t bit) { bytes_[bit >> 3] |= static_cast<std::byte>(1u << (bit & 7)); }
  void set_all();
  bool test(uint64_t bit) const { return (bytes_[bit >> 3] & static_cast<std::byte>(1u << (bit & 7))) != std::byte{0}; }
  bool covers_sectors(uint64_t sector, uint64_t nr_sectors) const;
  void merge(const DirtyBitmap& other);
  void clear();
  uint64_t count() const;
  bool empty() const { return count() == 0; }

  // On-disk bytes, ceil(bits / 8) of them (the area on disk is zero-padded).
  std::span<const std::byte> bytes() const { return bytes_; }
  std::span<std::byte> bytes() { return bytes_; }

 private:
  uint64_t bits_ = 0;
  uint32_t block_bytes_ = 4096;
  std::vector<std::byte> bytes_;
};

class File;

// A bitmap area of the log (area_bytes on disk, XXH64 with the volume's seed
// in the superblock): load returns false when the area fails its checksum.
bool load_bitmap_area(const File& log, uint64_t offset, uint64_t area_bytes, uint64_t csum, uint64_t seed,
                      DirtyBitmap& into);
uint64_t store_bitmap_area(const File& log, uint64_t offset, uint64_t area_bytes, uint64_t seed,
                           const DirtyBitmap& from);

}  // namespace hrl
