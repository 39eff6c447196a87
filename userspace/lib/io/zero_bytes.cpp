#include "io/zero_bytes.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace hrl {

bool all_zero(std::span<const std::byte> bytes) {
  // The first word is zero and the buffer equals itself shifted by a word.
  if (bytes.size() < 8) return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == std::byte{0}; });
  uint64_t first;
  std::memcpy(&first, bytes.data(), 8);
  return first == 0 && std::memcmp(bytes.data(), bytes.data() + 8, bytes.size() - 8) == 0;
}

}  // namespace hrl
