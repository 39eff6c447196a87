// The messages carried in frames (docs/protocol.md) and their codecs.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "log/record.h"
#include "net/frame.h"

namespace hrl::proto {

using Uuid = std::array<uint8_t, 16>;

struct Hello {
  Uuid uuid{};
  uint64_t generation = 0;
  uint64_t data_sectors = 0;
  uint64_t first_seq = 0;  // the oldest record the primary can still send
  // A replica new to this volume may be taken as equal to it: the log was
  // formatted as in sync and has released nothing yet. Otherwise a new
  // replica starts with a whole-device checksum resync.
  bool in_sync_from_start = false;
  std::string node;
};

struct Welcome {
  Uuid uuid{};
  uint64_t generation = 0;
  uint64_t durable_seq = 0;  // the last record the replica holds durably (0: none)
  // That record's header checksum, so the primary can tell it is still the
  // record its log has at durable_seq (0: not known, after a resync).
  uint64_t durable_csum = 0;
  // A resync the replica is in the middle of (mode 0: none); the primary resumes it.
  uint32_t resync_mode = 0, resync_regions = 0, resync_reason = 0;
  uint64_t resync_take_seq = 0, resync_cursor = 0;
  std::string node;
};

enum class RefuseCode : uint32_t {
  WrongVolume = 1,  // the replica belongs to another volume
  Generation = 2,   // the lineages diverged (split brain)
  Size = 3,         // the replica is smaller than the volume
  Gap = 4,          // records the replica needs are gone from the primary's log
  Busy = 5,         // another primary is connected
  BadRecord = 6,    // a record failed its checks: nothing of the batch was applied
  Internal = 7,
};
const char* refuse_code_name(RefuseCode c);

struct Refuse {
  RefuseCode code = RefuseCode::Internal;
  std::string message;
};

struct Durable {
  uint64_t seq = 0;
};

// A planned failover: the primary's writes have stopped, every record up to
// last_seq is durable on the secondary, and a verify found the sites equal.
// The secondary becomes the primary at `generation` (the current one plus
// one); the sender becomes its secondary. PROMOTED carries the same fields.
struct Promote {
  uint64_t generation = 0;
  uint64_t last_seq = 0;
};

std::vector<std::byte> encode(const Hello& m);
std::vector<std::byte> encode(const Welcome& m);
std::vector<std::byte> encode(const Refuse& m);
std::vector<std::byte> encode(const Durable& m);
Hello decode_hello(std::span<const std::byte> in);
Welcome decode_welcome(std::span<const std::byte> in);
Refuse decode_refuse(std::span<const std::byte> in);
Durable decode_durable(std::span<const std::byte> in);
std::vector<std::byte> encode(const Promote& m);
Promote decode_promote(std::span<const std::byte> in);

// A RECORDS payload: the records as in the log (64-byte header, payload),
// PAD records as bare headers, so sequence numbers stay dense.
class BatchBuilder {
 public:
  explicit BatchBuilder(uint64_t seed) : seed_(seed) {}
  void add(const RecordHeader& h, std::span<const std::byte> payload);
  size_t bytes() const { return w_.size(); }
  uint32_t count() const { return count_; }
  uint64_t first_seq() const { return first_; }
  uint64_t last_seq() const { return last_; }
  std::vector<std::byte> take();  // the payload; the builder starts over

 private:
  uint64_t seed_;
  Writer w_;
  uint32_t count_ = 0;
  uint64_t first_ = 0, last_ = 0;
};

struct BatchRecord {
  RecordHeader header;
  std::span<const std::byte> payload;
};

// Decodes a RECORDS payload and checks every record against the volume's
// checksum seed and the sequence it must continue (expected_first):
// dense sequence numbers, valid header and payload checksums, known types.
std::vector<BatchRecord> decode_batch(std::span<const std::byte> in, uint64_t seed, uint64_t expected_first);

}  // namespace hrl::proto
