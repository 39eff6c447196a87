// Images of recovery points, built from the replica and its history.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "history/history.h"

namespace hrl {

struct ImageProgress {
  std::atomic<uint64_t> total_bytes{0};
  std::atomic<uint64_t> copied_bytes{0};
  std::atomic<uint64_t> undone_bytes{0};  // before-images written back
};

// Opens a block device for writing, exclusively (O_EXCL): refused with a
// clear error while it is mounted or another holds it so. `what` names the
// writer in the error. O_DIRECT unless told otherwise.
File open_exclusive(const std::string& device, const std::string& what, bool direct = true);
// Refuses an image path that is the replica itself, or a block device that
// is mounted or held open.
void check_image_target(const std::string& replica_path, const std::string& image_path);

// Writes to image_path (a new file, or a block device at least as large) a
// copy of the replica as it was after record seq, while replication goes on
// changing the replica: the copy mixes records applied during it, and the
// before-images of every record after seq, captured before it was applied,
// take all of them out. A test failover's image.
// Throws when `cancel` turns true (the image is then incomplete).
void build_point_image(History& history, const std::string& replica_path, uint64_t seq, const std::string& image_path,
                       ImageProgress* progress = nullptr, const std::atomic<bool>* cancel = nullptr);

// Returns the replica itself to the image after record seq (an unplanned
// failover). Nothing may apply records to it meanwhile.
void roll_back_replica(History& history, const std::string& replica_path, uint64_t seq,
                       ImageProgress* progress = nullptr);

}  // namespace hrl
