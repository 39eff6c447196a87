// Whether a buffer holds only zero bytes: zero blocks travel and are stored
// as markers (resync, undo journal) and stay holes in images.
#pragma once

#include <cstddef>
#include <span>

namespace hrl {

bool all_zero(std::span<const std::byte> bytes);

}  // namespace hrl
