#include "repl/session.h"

#include <deque>

#include "io/file.h"
#include "log/log_reader.h"
#include "log/record_applier.h"
#include "log/superblock.h"
#include "dm/dm_control.h"
#include "repl/replica_state.h"
#include "repl/token_bucket.h"

#include <thread>

namespace hrl {

using namespace std::chrono_literals;
using proto::FrameType;

namespace {

[[noreturn]] void refuse(TlsStream& peer, proto::RefuseCode code, const std::string& msg) {
  try {
    peer.send(FrameType::Refuse, proto::encode(proto::Refuse{code, msg}));
  } catch (const std::exception&) {  // the refusal is best effort; the reason is ours anyway
  }
  throw SessionError(std::string(proto::refuse_code_name(code)) + ": " + msg, code == proto::RefuseCode::Busy);
}

}  // namespace

// ---- primary ---------------------------------------------------------------

void run_primary_session(TlsStream& peer, const PrimaryOptions& opt, const std::atomic<bool>& stop,
                         SessionStats& stats) {
  // The shipper is bound by compression (a few hundred MB/s), not by reads:
  // a 16 MiB window keeps the daemon small (the RSS aim is 64 MiB).
  LogReaderOptions ro;
  ro.backend = opt.backend;
  ro.queue_depth = 8;
  ro.window_chunks = 16;
  LogReader reader(opt.log_path, ro);
  File log = File::open(opt.log_path, opt.dm_device.empty() ? O_RDWR : O_RDONLY);
  const Superblock sb = reader.superblock();
  // Releases the log up to (not including) next: the records before it are durable.
  auto release = [&](LogPosition next) {
    if (opt.dm_device.empty())
      acknowledge_log(log, next.seq, next.ring_pos);
    else
      dm_message(opt.dm_device, "ack " + std::to_string(next.seq - 1));
  };

  peer.send(FrameType::Hello,
            proto::encode(proto::Hello{sb.uuid, sb.generation, sb.data_sectors, sb.tail_seq, opt.node}));
  auto f = peer.receive();
  if (f.header.type == FrameType::Refuse) {
    auto r = proto::decode_refuse(f.payload);
    throw SessionError("the secondary refused: " + std::string(proto::refuse_code_name(r.code)) + ": " + r.message,
                       r.code == proto::RefuseCode::Busy);
  }
  if (f.header.type != FrameType::Welcome)
    throw SessionError(std::string("expected WELCOME, got ") + proto::frame_type_name(f.header.type), true);
  auto welcome = proto::decode_welcome(f.payload);
  if (welcome.uuid != sb.uuid || welcome.generation != sb.generation)
    throw SessionError("the secondary answered for another volume or lineage", false);
  const uint64_t durable = welcome.durable_seq;
  stats.durable_seq = durable;

  // Skip what the secondary already holds; acknowledge it if the log has not.
  LogRecord rec;
  ReadResult r;
  while (reader.position().seq <= durable) {
    r = reader.next(rec);
    if (r.status == ReadStatus::Corrupt) throw SessionError("the log is corrupt: " + r.describe(), false);
    if (r.status == ReadStatus::End)
      throw SessionError("the secondary holds records up to seq " + std::to_string(durable) +
                             " but this log ends at seq " + std::to_string(r.at.seq - 1) + ": a resync is required",
                         false);
  }
  if (durable >= sb.tail_seq) release(reader.position());

  struct Shipped {
    uint64_t last_seq;
    LogPosition next;  // where the log's tail goes once it is durable
    uint64_t first_ns;  // timestamp of its oldest record
  };
  std::deque<Shipped> inflight;
  proto::BatchBuilder batch(sb.csum_seed());
  uint64_t first_ns = 0;
  TokenBucket bandwidth(opt.bandwidth);

  auto on_frame = [&](const TlsStream::Frame& fr) {
    if (fr.header.type == FrameType::Refuse) {
      auto rf = proto::decode_refuse(fr.payload);
      throw SessionError("the secondary refused: " + std::string(proto::refuse_code_name(rf.code)) + ": " +
                             rf.message,
                         rf.code == proto::RefuseCode::Busy);
    }
    if (fr.header.type != FrameType::Durable)
      throw SessionError(std::string("unexpected ") + proto::frame_type_name(fr.header.type) + " frame", true);
    uint64_t seq = proto::decode_durable(fr.payload).seq;
    std::optional<Shipped> done;
    while (!inflight.empty() && inflight.front().last_seq <= seq) {
      done = inflight.front();
      inflight.pop_front();
    }
    if (!done || done->last_seq != seq)
      throw SessionError("DURABLE " + std::to_string(seq) + " does not end a batch in flight", true);
    release(done->next);  // only now may the ring space go
    stats.durable_seq = seq;
    stats.pending_since_ns = inflight.empty() ? 0 : inflight.front().first_ns;
  };

  while (!stop) {
    r = ReadResult{};
    while (batch.bytes() < opt.batch_bytes && (r = reader.next(rec)).status == ReadStatus::Record) {
      if (!batch.count()) first_ns = rec.header.timestamp_ns;
      batch.add(rec.header, rec.payload);
    }
    if (r.status == ReadStatus::Corrupt) throw SessionError("the log is corrupt: " + r.describe(), false);
    if (batch.count()) {
      while (inflight.size() >= opt.window) on_frame(peer.receive());
      Shipped s{batch.last_seq(), reader.position(), first_ns};
      if (inflight.empty()) stats.pending_since_ns = first_ns;
      uint64_t raw = batch.bytes();
      auto frame = proto::make_frame(FrameType::Records, batch.take(), opt.zstd_level);
      for (auto wait = bandwidth.take(frame.size()); wait.count() > 0 && !stop;) {  // the volume's limit
        auto step = std::min<std::chrono::nanoseconds>(wait, 50ms);
        std::this_thread::sleep_for(step);
        wait -= step;
      }
      peer.send_frame(frame);
      stats.raw_bytes += raw;
      stats.wire_bytes += frame.size();
      inflight.push_back(s);
      continue;
    }
    // Nothing new: take acknowledgements, and look for records with one small read.
    while (!stop && peer.readable(inflight.empty() ? 50ms : 0ms)) on_frame(peer.receive());
    while (!stop && !reader.peek() && !peer.readable(20ms)) {
    }
  }
}

// ---- secondary -------------------------------------------------------------

void run_secondary_session(TlsStream& peer, const SecondaryOptions& opt, const std::atomic<bool>& stop,
                           SessionStats& stats) {
  std::optional<ReplicaState> state = ReplicaState::load(opt.state_path);
  // Records are whole sectors at sector offsets, and the applier's buffers
  // are aligned: O_DIRECT wherever the replica's sectors are 512 bytes.
  File replica = File::open(opt.replica_path, O_RDWR);
  if (replica.logical_sector_size() == HRL_SECTOR_SIZE) replica = File::open_direct(opt.replica_path, O_RDWR);

  auto f = peer.receive();
  if (f.header.type != FrameType::Hello)
    refuse(peer, proto::RefuseCode::Internal, std::string("expected HELLO, got ") + proto::frame_type_name(f.header.type));
  auto hello = proto::decode_hello(f.payload);
  if (state && state->uuid != hello.uuid)
    refuse(peer, proto::RefuseCode::WrongVolume,
           "this replica follows volume " + uuid_string(state->uuid) + ", not " + uuid_string(hello.uuid));
  if (state && state->generation != hello.generation)
    refuse(peer, proto::RefuseCode::Generation,
           "the replica is at generation " + std::to_string(state->generation) + ", the primary at " +
               std::to_string(hello.generation) + ": the sites diverged");
  if (replica.size() < hello.data_sectors * HRL_SECTOR_SIZE)
    refuse(peer, proto::RefuseCode::Size,
           opt.replica_path + " is " + std::to_string(replica.size()) + " bytes, the volume " +
               std::to_string(hello.data_sectors * HRL_SECTOR_SIZE));
  if (!state) {  // a new pair: the replica starts where the primary's log starts
    state = ReplicaState{hello.uuid, hello.generation, hello.data_sectors, hello.first_seq - 1};
    state->save(opt.state_path);
  }
  if (hello.first_seq > state->durable_seq + 1)
    refuse(peer, proto::RefuseCode::Gap,
           "the replica holds records up to seq " + std::to_string(state->durable_seq) +
               "; the primary's log starts at seq " + std::to_string(hello.first_seq) + ": a resync is required");
  peer.send(FrameType::Welcome,
            proto::encode(proto::Welcome{state->uuid, state->generation, state->durable_seq, opt.node}));
  stats.durable_seq = state->durable_seq;

  const uint64_t seed = hrl_csum_seed(state->uuid.data());
  auto io = make_io_backend(opt.backend, 32);
  while (!stop) {
    if (!peer.readable(200ms)) continue;
    try {
      f = peer.receive();
    } catch (const PeerClosed&) {
      return;  // the primary stopped: a normal end of the session
    }
    if (f.header.type != FrameType::Records)
      refuse(peer, proto::RefuseCode::Internal, std::string("unexpected ") + proto::frame_type_name(f.header.type));
    std::vector<proto::BatchRecord> records;
    try {  // every record is checked before any is applied
      records = proto::decode_batch(f.payload, seed, state->durable_seq + 1);
    } catch (const proto::ProtocolError& e) {
      refuse(peer, proto::RefuseCode::BadRecord, std::string(e.what()) + "; nothing of the batch was applied");
    }
    RecordApplier applier(replica, state->data_sectors, *io);
    for (const auto& br : records) applier.apply(LogRecord{br.header, 0, br.payload});
    applier.finish();  // applied and fdatasync'ed
    state->durable_seq = records.back().header.seq;
    state->save(opt.state_path);  // durable before it is acknowledged
    peer.send(FrameType::Durable, proto::encode(proto::Durable{state->durable_seq}));
    stats.durable_seq = state->durable_seq;
    stats.raw_bytes += f.payload.size();
    stats.wire_bytes += f.header.wire_len + proto::kHeaderSize;
  }
}

}  // namespace hrl
