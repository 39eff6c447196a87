#include "repl/resync_session.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <thread>

#include <hrl/log_format.h>

#include "log/superblock.h"
#include "repl/session.h"
#include "repl/token_bucket.h"
#include "resync/chunk_reader.h"

namespace hrl {

using namespace std::chrono_literals;
using proto::FrameType;
using proto::ResyncMode;

namespace {

constexpr size_t kBatchChunks = 8;   // chunks per batch: one DATA frame of at most 8 MiB
constexpr size_t kWindowBatches = 4;  // batches in flight: 32 MiB, far more than a loopback or WAN round trip needs
constexpr unsigned kQueueDepth = 8;
constexpr auto kCheckpointEvery = 1s;

// Node indices at `level` + 1 under the given nodes at `level`.
std::vector<uint16_t> children_of(const std::vector<uint16_t>& nodes) {
  std::vector<uint16_t> out;
  out.reserve(nodes.size() * kFanout);
  for (uint16_t n : nodes)
    for (unsigned k = 0; k < kFanout; k++) out.push_back(static_cast<uint16_t>(n * kFanout + k));
  return out;
}

// The nodes a peer's level message carries for one chunk: the children of the
// flagged nodes among those the previous message carried. Checks the counts.
std::vector<uint16_t> nodes_carried(const proto::ChunkLevel& in, const std::vector<uint16_t>& previous,
                                    uint32_t level) {
  if (level == 0) return {0};
  if (in.differ.size() != previous.size())
    throw proto::ProtocolError("RESYNC_HASHES level " + std::to_string(level) + " flags " +
                               std::to_string(in.differ.size()) + " nodes where " + std::to_string(previous.size()) +
                               " were sent");
  std::vector<uint16_t> flagged;
  for (size_t i = 0; i < previous.size(); i++)
    if (in.differ[i]) flagged.push_back(previous[i]);
  return children_of(flagged);
}

// Answers a level: flags where `mine` differs from the hashes received for
// `nodes`, and the children of those from `mine` at the next level.
proto::ChunkLevel answer_level(const ChunkTree& mine, const std::vector<uint16_t>& nodes,
                               const std::vector<Hash128>& theirs, uint32_t level, std::vector<uint16_t>& sent) {
  proto::ChunkLevel out;
  std::vector<uint16_t> differing;
  for (size_t i = 0; i < nodes.size(); i++) {
    bool d = !(mine.node(level, nodes[i]) == theirs[i]);
    out.differ.push_back(d);
    if (d) differing.push_back(nodes[i]);
  }
  sent = children_of(differing);
  for (uint16_t c : sent) out.hashes.push_back(mine.node(level + 1, c));
  return out;
}

// Adds a block to a batch's extents: merged with the last one when they are
// contiguous on the device and, for data, in memory (one chunk's buffer).
void append_block(std::vector<proto::DataExtent>& ex, uint64_t at, uint32_t len, bool zero, const std::byte* bytes) {
  if (!ex.empty()) {
    proto::DataExtent& last = ex.back();
    if (last.zero == zero && last.offset + last.length == at && (zero || last.bytes.data() + last.length == bytes)) {
      last.length += len;
      if (!zero) last.bytes = std::span<const std::byte>(last.bytes.data(), last.length);
      return;
    }
  }
  ex.push_back({at, len, zero, zero ? std::span<const std::byte>{} : std::span<const std::byte>(bytes, len)});
}

}  // namespace

// ---- the chunks of a pass -------------------------------------------------

ChunkPlan ChunkPlan::device(uint64_t data_bytes) {
  ChunkPlan p;
  p.data_bytes_ = data_bytes;
  return p;
}

ChunkPlan ChunkPlan::bitmap(uint64_t data_bytes, const DirtyBitmap& bits) {
  ChunkPlan p;
  p.data_bytes_ = data_bytes;
  p.marked_.assign((data_bytes + kChunkBytes - 1) / kChunkBytes, false);
  for (uint64_t b = 0; b < bits.bits(); b++)
    if (bits.test(b)) {
      uint64_t first = b * bits.block_bytes(), last = std::min(first + bits.block_bytes(), data_bytes) - 1;
      for (uint64_t c = first / kChunkBytes; c <= last / kChunkBytes && c < p.marked_.size(); c++) p.marked_[c] = true;
    }
  return p;
}

std::optional<uint64_t> ChunkPlan::next(uint64_t from) const {
  uint64_t chunks = (data_bytes_ + kChunkBytes - 1) / kChunkBytes;
  for (uint64_t c = from; c < chunks; c++)
    if (marked_.empty() || marked_[c]) return c;
  return std::nullopt;
}

uint64_t ChunkPlan::count_from(uint64_t from) const {
  uint64_t n = 0;
  for (auto c = next(from); c; c = next(*c + 1)) n++;
  return n;
}

uint64_t ChunkPlan::bytes_from(uint64_t from) const {
  uint64_t n = 0;
  for (auto c = next(from); c; c = next(*c + 1)) n += std::min<uint64_t>(kChunkBytes, data_bytes_ - *c * kChunkBytes);
  return n;
}

// ---- primary ---------------------------------------------------------------

namespace {

struct PrimaryBatch {
  uint64_t id = 0;
  std::vector<uint64_t> chunks;
  std::vector<HashedChunk> mine;            // taken from the reader when the roots arrive
  std::vector<std::vector<uint16_t>> sent;  // per chunk: nodes carried by the last level this site sent
  uint32_t level = 0;                       // the level expected next from the secondary
  bool done = false;
};

class PrimaryPassRunner {
 public:
  PrimaryPassRunner(TlsStream& peer, const PrimaryPass& pass, const std::atomic<bool>& stop, ResyncStats& stats)
      : peer_(peer), pass_(pass), stop_(stop), stats_(stats), bucket_(pass.bandwidth),
        reader_(*pass.data, pass.data_bytes, pass.backend, kQueueDepth, true) {}

  PassResult run();

 private:
  void send(FrameType type, std::span<const std::byte> payload, int level) {
    auto frame = proto::make_frame(type, payload, level);
    wait_for_tokens(bucket_, frame.size(), stop_);
    peer_.send_frame(frame);
    stats_.wire_bytes += frame.size();
  }
  bool start_batch();
  void on_hashes(const proto::ResyncHashes& m);
  void finish_batch(PrimaryBatch& b, const std::vector<std::vector<uint16_t>>& leaves);
  void send_copy(PrimaryBatch& b);
  PrimaryBatch& batch(uint64_t id);
  uint64_t cursor_after() const;
  void release_chunks(PrimaryBatch& b);

  TlsStream& peer_;
  const PrimaryPass& pass_;
  const std::atomic<bool>& stop_;
  ResyncStats& stats_;
  TokenBucket bucket_;
  ChunkReader reader_;
  std::deque<PrimaryBatch> inflight_;
  uint64_t next_chunk_ = 0, next_batch_ = 0;
  bool more_ = true;
  PassResult result_;
};

bool PrimaryPassRunner::start_batch() {
  PrimaryBatch b;
  b.id = next_batch_++;
  while (b.chunks.size() < kBatchChunks) {
    auto c = pass_.plan.next(next_chunk_);
    if (!c) {
      more_ = false;
      break;
    }
    b.chunks.push_back(*c);
    next_chunk_ = *c + 1;
  }
  if (b.chunks.empty()) return false;
  reader_.request(b.chunks);
  if (pass_.begin.mode != ResyncMode::Copy) send(FrameType::ResyncChunks, proto::encode(proto::ResyncChunks{b.id, b.chunks}), 0);
  inflight_.push_back(std::move(b));
  return true;
}

PrimaryBatch& PrimaryPassRunner::batch(uint64_t id) {
  for (auto& b : inflight_)
    if (b.id == id && !b.done) return b;
  throw proto::ProtocolError("RESYNC_HASHES for batch " + std::to_string(id) + ", which is not in flight");
}

// Every chunk before the first batch not done is; with none left, every chunk up to the last one asked for.
uint64_t PrimaryPassRunner::cursor_after() const {
  for (const auto& b : inflight_)
    if (!b.done) return b.chunks.front();
  return next_chunk_;
}

void PrimaryPassRunner::release_chunks(PrimaryBatch& b) {
  for (auto& hc : b.mine) reader_.recycle(std::move(hc.data));
  b.mine.clear();
  b.done = true;
  uint64_t bytes = 0;
  for (uint64_t c : b.chunks) bytes += std::min<uint64_t>(kChunkBytes, pass_.data_bytes - c * kChunkBytes);
  stats_.done_bytes += bytes;
}

void PrimaryPassRunner::on_hashes(const proto::ResyncHashes& m) {
  PrimaryBatch& b = batch(m.batch);
  if (m.level != b.level || m.level % 2)
    throw proto::ProtocolError("RESYNC_HASHES at level " + std::to_string(m.level) + " where level " +
                               std::to_string(b.level) + " was due");
  if (m.chunks.size() != b.chunks.size())
    throw proto::ProtocolError("RESYNC_HASHES for " + std::to_string(m.chunks.size()) + " chunks of a batch of " +
                               std::to_string(b.chunks.size()));
  if (b.mine.empty()) {  // the reader hands chunks out in the order the batches asked for them
    b.sent.assign(b.chunks.size(), {});
    for (size_t i = 0; i < b.chunks.size(); i++) b.mine.push_back(reader_.take());
  }
  proto::ResyncHashes reply{b.id, m.level + 1, {}};
  std::vector<std::vector<uint16_t>> differing_leaves(b.chunks.size());
  bool any = false;
  for (size_t i = 0; i < b.chunks.size(); i++) {
    std::vector<uint16_t> nodes = nodes_carried(m.chunks[i], b.sent[i], m.level);
    const ChunkTree& mine = b.mine[i].tree;
    if (m.level == kLeafLevel) {
      for (size_t k = 0; k < nodes.size(); k++)
        if (!(mine.node(kLeafLevel, nodes[k]) == m.chunks[i].hashes[k])) differing_leaves[i].push_back(nodes[k]);
      continue;
    }
    reply.chunks.push_back(answer_level(mine, nodes, m.chunks[i].hashes, m.level, b.sent[i]));
    any |= !b.sent[i].empty();
  }
  if (m.level == kLeafLevel || !any) return finish_batch(b, differing_leaves);
  b.level = m.level + 2;
  send(FrameType::ResyncHashes, proto::encode(reply), 0);
}

// Sends the blocks whose leaves differ (or, verifying, notes them) and ends the batch.
void PrimaryPassRunner::finish_batch(PrimaryBatch& b, const std::vector<std::vector<uint16_t>>& leaves) {
  proto::ResyncData data{b.id, 0, {}};
  for (size_t i = 0; i < b.chunks.size(); i++) {
    const HashedChunk& hc = b.mine[i];
    for (uint16_t leaf : leaves[i]) {
      uint32_t off = uint32_t{leaf} * kBlockBytes;
      if (off >= hc.tree.bytes) throw proto::ProtocolError("a leaf past the end of its chunk differs");
      uint32_t len = std::min(kBlockBytes, hc.tree.bytes - off);
      uint64_t at = b.chunks[i] * kChunkBytes + off;
      stats_.differing_bytes += len;
      add_range(result_.differing, at, len);
      append_block(data.extents, at, len, hc.tree.zero[leaf], hc.data.data() + off);
    }
  }
  if (pass_.begin.mode == ResyncMode::Verify) data.extents.clear();  // a verify changes nothing
  b.done = true;
  data.cursor = cursor_after();
  auto payload = proto::encode(data);  // copies the blocks out of the chunks' buffers...
  release_chunks(b);                   // ...which the reader may fill again from here on
  send(FrameType::ResyncData, payload, pass_.zstd_level);
}

// Copy mode: every block, zero runs as markers, no hashes exchanged.
void PrimaryPassRunner::send_copy(PrimaryBatch& b) {
  proto::ResyncData data{b.id, 0, {}};
  for (uint64_t c : b.chunks) {
    b.mine.push_back(reader_.take());
    const HashedChunk& hc = b.mine.back();
    for (unsigned leaf = 0; leaf < hc.tree.blocks(); leaf++) {
      uint32_t off = leaf * kBlockBytes, len = std::min(kBlockBytes, hc.tree.bytes - off);
      append_block(data.extents, c * kChunkBytes + off, len, hc.tree.zero[leaf], hc.data.data() + off);
    }
  }
  b.done = true;
  data.cursor = cursor_after();
  auto payload = proto::encode(data);  // copies the blocks out of the chunks' buffers...
  release_chunks(b);                   // ...which the reader may fill again from here on
  send(FrameType::ResyncData, payload, pass_.zstd_level);
}

PassResult PrimaryPassRunner::run() {
  const auto& begin = pass_.begin;
  next_chunk_ = begin.cursor;
  stats_.total_bytes = pass_.plan.bytes_from(begin.cursor);
  send(FrameType::ResyncBegin, proto::encode(begin), 0);
  for (;;) {
    while (!stop_ && more_ && inflight_.size() < kWindowBatches) {
      if (!pass_.may_run()) {
        stats_.waiting = true;
        if (!inflight_.empty()) break;  // finish what is in flight, then wait
        std::this_thread::sleep_for(200ms);
        continue;
      }
      stats_.waiting = false;
      if (!start_batch()) break;
    }
    while (!inflight_.empty() && inflight_.front().done) inflight_.pop_front();
    if (inflight_.empty()) {
      if (stop_ && more_) return result_;  // the checkpoint on the secondary keeps the progress
      if (!more_) break;
      continue;
    }
    stats_.read_bytes = reader_.bytes_read();
    if (begin.mode == ResyncMode::Copy) {
      send_copy(inflight_.front());
      continue;
    }
    auto f = peer_.receive();
    stats_.wire_bytes += f.header.wire_len + proto::kHeaderSize;
    if (f.header.type == FrameType::Refuse) {
      auto r = proto::decode_refuse(f.payload);
      throw SessionError("the secondary refused the resync: " + std::string(proto::refuse_code_name(r.code)) + ": " +
                             r.message,
                         false);
    }
    if (f.header.type != FrameType::ResyncHashes)
      throw proto::ProtocolError(std::string("unexpected ") + proto::frame_type_name(f.header.type) + " during a resync");
    on_hashes(proto::decode_resync_hashes(f.payload));
  }
  stats_.read_bytes = reader_.bytes_read();
  send(FrameType::ResyncEnd, proto::encode(proto::ResyncEnd{pass_.consistent_seq ? pass_.consistent_seq() : 0}), 0);
  auto f = peer_.receive();
  stats_.wire_bytes += f.header.wire_len + proto::kHeaderSize;
  if (f.header.type != FrameType::ResyncDone)
    throw proto::ProtocolError(std::string("expected RESYNC_DONE, got ") + proto::frame_type_name(f.header.type));
  result_.done = proto::decode_resync_done(f.payload);
  result_.completed = true;
  std::sort(result_.differing.begin(), result_.differing.end(),
            [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });
  std::vector<ByteRange> merged;
  for (const auto& r : result_.differing) add_range(merged, r.offset, r.length);
  result_.differing = std::move(merged);
  return result_;
}

}  // namespace

PassResult run_resync_primary(TlsStream& peer, const PrimaryPass& pass, const std::atomic<bool>& stop,
                              ResyncStats& stats) {
  stats.mode = static_cast<uint32_t>(pass.begin.mode);
  stats.reason = pass.begin.reason;
  stats.done_bytes = stats.read_bytes = stats.differing_bytes = stats.wire_bytes = 0;
  stats.started_ns = now_realtime_ns();
  stats.active = true;
  struct Inactive {
    ResyncStats& s;
    ~Inactive() {
      s.active = false;
      s.waiting = false;
    }
  } inactive{stats};
  PrimaryPassRunner runner(peer, pass, stop, stats);
  PassResult r = runner.run();
  if (r.completed) stats.passes++;
  return r;
}

// ---- secondary -------------------------------------------------------------

namespace {

struct SecondaryBatch {
  std::vector<uint64_t> chunks;
  std::vector<ChunkTree> mine;
  std::vector<std::vector<uint16_t>> sent;
  bool roots_sent = false;
  uint32_t level = 1;  // the level expected next from the primary
};

class SecondaryPassRunner {
 public:
  SecondaryPassRunner(TlsStream& peer, const proto::ResyncBegin& begin, const File& replica, ReplicaState& state,
                      const std::string& state_path, IoBackendKind backend, ResyncStats& stats)
      : peer_(peer), begin_(begin), state_(state), state_path_(state_path), stats_(stats),
        data_bytes_(state.data_sectors * HRL_SECTOR_SIZE),
        // The pass writes scattered blocks: through the page cache, flushed at
        // each checkpoint, rather than one synchronous O_DIRECT write each.
        writer_(File::open(replica.path(), O_RDWR)) {
    if (begin.mode != ResyncMode::Copy)
      reader_.emplace(replica, data_bytes_, backend, kQueueDepth, false);
  }

  void run(const std::atomic<bool>& stop);
  // Checkpoints the progress so far, if a pass is recorded; never throws.
  // Not after a failed sync: the blocks it covered may be lost, and a sync
  // retried now would succeed without them. The last checkpoint stands, and
  // the pass resumes there, copying them again.
  void keep_progress() noexcept {
    try {
      if (begin_.mode != ResyncMode::Verify && state_.resync && !sync_failed_) checkpoint(state_.resync->cursor);
    } catch (const std::exception&) {  // the last saved checkpoint stands
    }
  }

 private:
  void send(FrameType type, std::span<const std::byte> payload) {
    auto frame = proto::make_frame(type, payload, 0);
    peer_.send_frame(frame);
    stats_.wire_bytes += frame.size();
  }
  void send_ready_roots(std::chrono::milliseconds wait);
  void on_hashes(const proto::ResyncHashes& m);
  void on_data(const proto::ResyncData& m);
  void checkpoint(uint64_t cursor);
  void sync_replica();

  TlsStream& peer_;
  const proto::ResyncBegin& begin_;
  ReplicaState& state_;
  const std::string& state_path_;
  ResyncStats& stats_;
  uint64_t data_bytes_;
  File writer_;
  std::optional<ChunkReader> reader_;
  std::map<uint64_t, SecondaryBatch> batches_;
  std::chrono::steady_clock::time_point last_checkpoint_ = std::chrono::steady_clock::now();
  bool sync_failed_ = false;  // an fdatasync of the replica failed: nothing written since the last checkpoint counts
};

// Sends the roots of the oldest batch not yet answered once its chunks are hashed.
void SecondaryPassRunner::send_ready_roots(std::chrono::milliseconds wait) {
  for (auto& [id, b] : batches_) {
    if (b.roots_sent) continue;
    while (b.mine.size() < b.chunks.size()) {
      auto hc = reader_->try_take(wait);
      if (!hc) return;
      b.mine.push_back(hc->tree);
    }
    proto::ResyncHashes roots{id, 0, {}};
    for (const ChunkTree& t : b.mine) roots.chunks.push_back({{}, {t.root()}});
    b.sent.assign(b.chunks.size(), {0});
    b.roots_sent = true;
    send(FrameType::ResyncHashes, proto::encode(roots));
    stats_.read_bytes = reader_->bytes_read();
    return;
  }
}

void SecondaryPassRunner::on_hashes(const proto::ResyncHashes& m) {
  auto it = batches_.find(m.batch);
  if (it == batches_.end() || !it->second.roots_sent)
    throw proto::ProtocolError("RESYNC_HASHES for batch " + std::to_string(m.batch) + ", whose roots were not sent");
  SecondaryBatch& b = it->second;
  if (m.level != b.level || m.level % 2 == 0 || m.level >= kLeafLevel)
    throw proto::ProtocolError("RESYNC_HASHES at level " + std::to_string(m.level) + " where level " +
                               std::to_string(b.level) + " was due");
  if (m.chunks.size() != b.chunks.size()) throw proto::ProtocolError("RESYNC_HASHES for the wrong number of chunks");
  proto::ResyncHashes reply{m.batch, m.level + 1, {}};
  for (size_t i = 0; i < b.chunks.size(); i++) {
    std::vector<uint16_t> nodes = nodes_carried(m.chunks[i], b.sent[i], m.level);
    reply.chunks.push_back(answer_level(b.mine[i], nodes, m.chunks[i].hashes, m.level, b.sent[i]));
  }
  b.level = m.level + 2;
  send(FrameType::ResyncHashes, proto::encode(reply));
}

void SecondaryPassRunner::on_data(const proto::ResyncData& m) {
  if (begin_.mode != ResyncMode::Copy) {
    auto it = batches_.find(m.batch);
    if (it == batches_.end() || !it->second.roots_sent)
      throw proto::ProtocolError("RESYNC_DATA for batch " + std::to_string(m.batch) + ", which is not in flight");
    batches_.erase(it);
  }
  for (const auto& e : m.extents) {
    if (e.offset + e.length > data_bytes_)
      throw proto::ProtocolError("RESYNC_DATA past the end of the volume at " + std::to_string(e.offset));
    if (begin_.mode == ResyncMode::Verify) throw proto::ProtocolError("RESYNC_DATA with blocks during a verify");
  }
  for (const auto& e : m.extents) {
    if (e.zero) {
      writer_.zero_range(e.offset, e.length);
    } else {
      writer_.write_at(e.bytes, e.offset);
    }
    stats_.written_bytes += e.length;
  }
  if (begin_.mode != ResyncMode::Verify) {
    if (m.cursor < state_.resync->cursor) throw proto::ProtocolError("RESYNC_DATA moves the cursor back");
    state_.resync->cursor = m.cursor;
    if (std::chrono::steady_clock::now() - last_checkpoint_ >= kCheckpointEvery) checkpoint(m.cursor);
  }
}

// fsync errors are final: once one failed, no later success covers the
// blocks it lost, so this pass syncs no more.
void SecondaryPassRunner::sync_replica() {
  if (sync_failed_) throw std::runtime_error("an earlier fdatasync of " + writer_.path() + " failed in this pass");
  try {
    writer_.datasync();
  } catch (...) {
    sync_failed_ = true;
    throw;
  }
}

// The blocks written so far are durable, then the cursor says so.
void SecondaryPassRunner::checkpoint(uint64_t cursor) {
  sync_replica();
  state_.resync->cursor = cursor;
  state_.save(state_path_);
  last_checkpoint_ = std::chrono::steady_clock::now();
}

void SecondaryPassRunner::run(const std::atomic<bool>& stop) {
  proto::ResyncDone done;
  while (!stop) {
    bool waiting_roots = false;
    for (auto& [id, b] : batches_) waiting_roots |= !b.roots_sent;
    if (waiting_roots && !peer_.readable(0ms)) {
      send_ready_roots(5ms);
      continue;
    }
    if (!waiting_roots && !peer_.readable(200ms)) continue;
    auto f = peer_.receive();
    stats_.wire_bytes += f.header.wire_len + proto::kHeaderSize;
    switch (f.header.type) {
      case FrameType::ResyncChunks: {
        auto m = proto::decode_resync_chunks(f.payload);
        if (begin_.mode == ResyncMode::Copy) throw proto::ProtocolError("RESYNC_CHUNKS in a copy");
        if (m.chunks.back() >= reader_->chunk_count() || batches_.count(m.batch))
          throw proto::ProtocolError("RESYNC_CHUNKS past the end of the volume or for a batch already asked for");
        reader_->request(m.chunks);
        batches_[m.batch].chunks = std::move(m.chunks);
        break;
      }
      case FrameType::ResyncHashes:
        on_hashes(proto::decode_resync_hashes(f.payload));
        break;
      case FrameType::ResyncData:
        on_data(proto::decode_resync_data(f.payload));
        break;
      case FrameType::ResyncEnd: {
        auto m = proto::decode_resync_end(f.payload);
        if (!batches_.empty()) throw proto::ProtocolError("RESYNC_END with batches in flight");
        sync_replica();
        if (begin_.mode != ResyncMode::Verify) {
          state_.resync.reset();
          state_.consistent_seq = std::max(m.consistent_seq, state_.durable_seq);
          state_.save(state_path_);
        }
        done.written_bytes = stats_.written_bytes;
        send(FrameType::ResyncDone, proto::encode(done));
        stats_.passes++;
        return;
      }
      default:
        throw proto::ProtocolError(std::string("unexpected ") + proto::frame_type_name(f.header.type) +
                                   " during a resync");
    }
  }
}

}  // namespace

void run_resync_secondary(TlsStream& peer, const proto::ResyncBegin& begin, const File& replica, ReplicaState& state,
                          const std::string& state_path, IoBackendKind backend, const std::atomic<bool>& stop,
                          ResyncStats& stats) {
  stats.mode = static_cast<uint32_t>(begin.mode);
  stats.reason = begin.reason;
  stats.read_bytes = stats.written_bytes = stats.wire_bytes = stats.done_bytes = 0;
  stats.total_bytes = begin.chunks * uint64_t{kChunkBytes};
  stats.started_ns = now_realtime_ns();
  stats.active = true;
  struct Inactive {
    ResyncStats& s;
    ~Inactive() { s.active = false; }
  } inactive{stats};
  SecondaryPassRunner runner(peer, begin, replica, state, state_path, backend, stats);
  try {
    runner.run(stop);
  } catch (...) {
    runner.keep_progress();  // the link went: what was written stays counted
    throw;
  }
  runner.keep_progress();  // stopping: likewise (a no-op after RESYNC_END)
}

}  // namespace hrl
