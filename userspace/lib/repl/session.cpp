#include "repl/session.h"

#include <cstdio>
#include <deque>
#include <thread>

#include "dm/dm_control.h"
#include "dm/target_status.h"
#include "history/history.h"
#include "history/point_image.h"
#include "io/file.h"
#include "log/dirty_bitmap.h"
#include "log/log_reader.h"
#include "log/record_applier.h"
#include "log/superblock.h"
#include "repl/handover_marker.h"
#include "repl/replica_state.h"
#include "repl/token_bucket.h"

namespace hrl {

using namespace std::chrono_literals;
using proto::FrameType;
using proto::ResyncMode;
using proto::ResyncRegions;

namespace {

[[noreturn]] void refuse(TlsStream& peer, proto::RefuseCode code, const std::string& msg) {
  try {
    peer.send(FrameType::Refuse, proto::encode(proto::Refuse{code, msg}));
  } catch (const std::exception&) {  // the refusal is best effort; the reason is ours anyway
  }
  throw SessionError(std::string(proto::refuse_code_name(code)) + ": " + msg, code == proto::RefuseCode::Busy);
}

[[noreturn]] void refused(const TlsStream::Frame& f) {
  auto r = proto::decode_refuse(f.payload);
  throw SessionError("the secondary refused: " + std::string(proto::refuse_code_name(r.code)) + ": " + r.message,
                     r.code == proto::RefuseCode::Busy);
}

// A record of the log failed its checks where valid records must be.
class LogCorrupt : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// ---- primary ---------------------------------------------------------------

class PrimarySession {
 public:
  PrimarySession(TlsStream& peer, const PrimaryOptions& opt, const std::atomic<bool>& stop, SessionStats& stats)
      : peer_(peer), opt_(opt), stop_(stop), stats_(stats), reader_(opt.log_path, reader_options(opt)),
        // The kernel writes the log's superblock and bitmaps with bios, past the
        // page cache: read them with O_DIRECT or see what was there before.
        log_(opt.dm_device.empty() ? File::open(opt.log_path, O_RDWR) : File::open_direct(opt.log_path, O_RDONLY)),
        sb_(reader_.superblock()),
        batch_(sb_.csum_seed()), bandwidth_(opt.bandwidth) {}

  void run();

 private:
  void run_protected();
  struct Shipped {
    uint64_t last_seq;
    LogPosition next;   // where the log's tail goes once it is durable
    uint64_t first_ns;  // timestamp of its oldest record
  };
  struct LogScan {
    uint64_t last_seq = 0;
    std::vector<ByteRange> written;
  };

  static LogReaderOptions reader_options(const PrimaryOptions& opt) {
    // The shipper is bound by compression (a few hundred MB/s), not by reads:
    // a 16 MiB window keeps the daemon small (the RSS aim is 64 MiB).
    LogReaderOptions ro;
    ro.backend = opt.backend;
    ro.queue_depth = 8;
    ro.window_chunks = 16;
    return ro;
  }
  bool dm() const { return !opt_.dm_device.empty(); }
  void handshake();
  void note_checkpoint();
  void release(LogPosition next);
  void release_through(uint64_t last);
  uint64_t shippable(bool refresh);
  void wait_completed(uint64_t seq);
  bool superseding_pass(uint32_t reason);
  void on_frame(const TlsStream::Frame& f);
  bool ship_batch(uint64_t limit);
  void idle();
  bool ship_until(uint64_t seq);
  uint64_t take_bitmap();
  bool run_pass(ResyncMode mode, uint32_t reason, uint64_t take_seq, uint64_t cursor, ResyncRegions regions,
                bool waits_for_window, bool supersedes = false);
  LogScan scan_log_from(LogPosition from);
  void operator_request();
  std::string hand_over();
  void map_again();
  void settle_handover();
  bool replace_corrupt_log(const std::string& what);
  void watch_for_damage(const ReadResult& r, uint64_t durable_before);
  bool window_open() const { return !opt_.resync_window || opt_.resync_window(); }

  TlsStream& peer_;
  const PrimaryOptions& opt_;
  const std::atomic<bool>& stop_;
  SessionStats& stats_;
  LogReader reader_;
  File log_;
  Superblock sb_;
  proto::Welcome welcome_;
  std::deque<Shipped> inflight_;
  proto::BatchBuilder batch_;
  uint64_t first_ns_ = 0;
  TokenBucket bandwidth_;
  std::optional<std::string> corrupt_;  // where the log's valid records end
  bool welcome_handled_ = false;        // the resync WELCOME asked for is done or running
  // The secondary holds records this log no longer has (a power loss took
  // them from the primary after they shipped): its replica starts over.
  std::optional<std::string> discontinuity_;
  uint64_t shippable_ = 0;              // with dm-hrl, records below it are durable: they may ship
  uint64_t stuck_seq_ = 0;              // where the reader found the end, and since when
  std::chrono::steady_clock::time_point stuck_since_, next_stuck_check_;
};

// Releases the log up to (not including) next: the records before it are durable.
void PrimarySession::release(LogPosition next) {
  if (dm())
    dm_message(opt_.dm_device, "ack " + std::to_string(next.seq - 1));
  else
    acknowledge_log(log_, next.seq, next.ring_pos);
}

// Releases the records up to `last`, and the reader goes on after them: for a
// pass that supersedes records the reader cannot, or need not, ship.
void PrimarySession::release_through(uint64_t last) {
  if (!dm()) {  // a writer's log: the reader stands right after `last`
    if (reader_.position().seq != last + 1)
      throw std::logic_error("the log's reader is not after the released records");
    return release(reader_.position());
  }
  dm_message(opt_.dm_device, "ack " + std::to_string(last));
  Superblock now = read_superblock(log_);
  if (now.tail_seq != last + 1)
    throw SessionError("after ack " + std::to_string(last) + " the log's tail is at seq " +
                           std::to_string(now.tail_seq),
                       false);
  reader_.seek({now.tail_seq, now.tail_offset});
}

// The records that may ship: with dm-hrl only those on the log's stable
// media, so a power loss of this site never takes a record the secondary
// holds; the target makes them durable within milliseconds.
uint64_t PrimarySession::shippable(bool refresh) {
  if (!dm()) return UINT64_MAX;
  if (refresh || reader_.position().seq >= shippable_) shippable_ = target_status(opt_.dm_device).durable;
  return shippable_;
}

// Waits until every write sequenced before `seq` has reached the data device:
// a pass must not read a block a journaled write is still bringing.
void PrimarySession::wait_completed(uint64_t seq) {
  if (!dm()) return;  // a writer's writes are done before they are in its log
  while (!stop_ && target_status(opt_.dm_device).completed < seq) std::this_thread::sleep_for(2ms);
}

void PrimarySession::handshake() {
  // A new replica may be taken as equal only to a log formatted as in sync
  // that has released nothing since.
  bool in_sync = sb_.tail_seq == 1 && !sb_.has(HRL_SB_RESYNC_REQUIRED) && !sb_.has(HRL_SB_BITMAP_MODE) &&
                 !sb_.has(HRL_SB_RESYNC_PENDING) && sb_.dirty_bits == 0;
  peer_.send(FrameType::Hello, proto::encode(proto::Hello{sb_.uuid, sb_.generation, sb_.data_sectors, sb_.tail_seq,
                                                          in_sync, opt_.node}));
  auto f = peer_.receive();
  if (f.header.type == FrameType::Refuse) refused(f);
  if (f.header.type != FrameType::Welcome)
    throw SessionError(std::string("expected WELCOME, got ") + proto::frame_type_name(f.header.type), true);
  welcome_ = proto::decode_welcome(f.payload);
  if (welcome_.uuid != sb_.uuid || welcome_.generation != sb_.generation)
    throw SessionError("the secondary answered for another volume or lineage", false);
  settle_handover();
  const uint64_t durable = welcome_.durable_seq;
  if (durable > stats_.durable_seq) stats_.progress++;  // the last session applied more than it could confirm
  stats_.durable_seq = durable;
  note_checkpoint();

  if (welcome_.resync_take_seq && dm()) {
    // The secondary recorded a pass at take_seq: the records before it are
    // held there or superseded by the pass, and may go. The target answered
    // take_seq only once they were durable, so this log still has them; if
    // it does not, the pass belongs to a history this log lost.
    const uint64_t head = target_status(opt_.dm_device).head;
    if (welcome_.resync_take_seq > head) {
      discontinuity_ = "its resync at seq " + std::to_string(welcome_.resync_take_seq) +
                       " is past this log's head (seq " + std::to_string(head) + ")";
      return;
    }
    if (durable >= sb_.tail_seq) release_through(durable);
    return;
  }
  // Skip what the secondary already holds, and make sure it holds what this
  // log has: the last record it holds must be this log's record at that seq.
  LogRecord rec;
  ReadResult r;
  uint64_t csum = 0;
  while (reader_.position().seq <= durable) {
    r = reader_.next(rec);
    if (r.status == ReadStatus::Corrupt) {
      if (!dm()) throw SessionError("the log is corrupt: " + r.describe(), false);
      discontinuity_ = "the log is corrupt before it: " + r.describe();
      return;
    }
    if (r.status == ReadStatus::End) {
      discontinuity_ = "this log ends at seq " + std::to_string(r.at.seq - 1);
      return;
    }
    if (rec.header.seq == durable) csum = header_checksum(rec.header, sb_.csum_seed());
  }
  if (durable < sb_.tail_seq) return;  // what it holds was acknowledged: this log's own records
  if (!welcome_.durable_csum || csum != welcome_.durable_csum) {
    discontinuity_ = "its record " + std::to_string(durable) + " is not this log's record " + std::to_string(durable);
    return;
  }
  release(reader_.position());
}

// A resync the secondary is in the middle of, checkpointed past where the
// last WELCOME had it: the sessions since made progress, though none
// finished the pass.
void PrimarySession::note_checkpoint() {
  if (!welcome_.resync_mode) return;
  const bool same_pass = welcome_.resync_take_seq == stats_.checkpoint_take_seq;
  if (welcome_.resync_cursor > (same_pass ? stats_.checkpoint_cursor : 0)) stats_.progress++;
  stats_.checkpoint_take_seq = welcome_.resync_take_seq;
  stats_.checkpoint_cursor = welcome_.resync_cursor;
}

void PrimarySession::on_frame(const TlsStream::Frame& f) {
  if (f.header.type == FrameType::Refuse) refused(f);
  if (f.header.type != FrameType::Durable)
    throw SessionError(std::string("unexpected ") + proto::frame_type_name(f.header.type) + " frame", true);
  uint64_t seq = proto::decode_durable(f.payload).seq;
  std::optional<Shipped> done;
  while (!inflight_.empty() && inflight_.front().last_seq <= seq) {
    done = inflight_.front();
    inflight_.pop_front();
  }
  if (!done || done->last_seq != seq)
    throw SessionError("DURABLE " + std::to_string(seq) + " does not end a batch in flight", true);
  release(done->next);  // only now may the ring space go
  stats_.durable_seq = seq;
  stats_.progress++;
  stats_.pending_since_ns = inflight_.empty() ? 0 : inflight_.front().first_ns;
}

// Ships one batch of the records before `limit`; false when there were none.
bool PrimarySession::ship_batch(uint64_t limit) {
  if (corrupt_) throw LogCorrupt(*corrupt_);
  LogRecord rec;
  ReadResult r;
  bool read_end = false;
  // What the target said was durable before the reads below: a record found
  // missing by a read that began after it was durable is damaged.
  const uint64_t durable_before = shippable(reader_.position().seq == stuck_seq_);
  limit = std::min(limit, durable_before);
  while (batch_.bytes() < opt_.batch_bytes && reader_.position().seq < limit) {
    r = reader_.next(rec);
    if (r.status != ReadStatus::Record) {
      read_end = true;
      break;
    }
    if (!batch_.count()) first_ns_ = rec.header.timestamp_ns;
    batch_.add(rec.header, rec.payload);
  }
  if (r.status == ReadStatus::Corrupt) {
    // The valid records before it still go; the damage is dealt with next.
    corrupt_ = r.describe();
    if (!batch_.count()) throw LogCorrupt(*corrupt_);
  }
  if (!batch_.count()) {
    if (read_end && r.status == ReadStatus::End) watch_for_damage(r, durable_before);
    return false;
  }
  while (inflight_.size() >= opt_.window) on_frame(peer_.receive());
  Shipped s{batch_.last_seq(), reader_.position(), first_ns_};
  if (inflight_.empty()) stats_.pending_since_ns = first_ns_;
  uint64_t raw = batch_.bytes();
  auto frame = proto::make_frame(FrameType::Records, batch_.take(), opt_.zstd_level);
  wait_for_tokens(bandwidth_, frame.size(), stop_);  // the volume's limit
  peer_.send_frame(frame);
  stats_.raw_bytes += raw;
  stats_.wire_bytes += frame.size();
  inflight_.push_back(s);
  return true;
}

// The reader stops where the log's valid records end. Past the head the
// target last persisted, a record that fails its checks reads as the end of
// the log (a write torn by a crash), so damage there looks like silence.
// With dm-hrl the status says which records exist: one that stays unreadable
// for kStuckLimit while the target has written past it is damaged.
void PrimarySession::watch_for_damage(const ReadResult& r, uint64_t durable_before) {
  if (!dm()) return;
  constexpr auto kStuckLimit = 5s;
  auto now = std::chrono::steady_clock::now();
  uint64_t at = reader_.position().seq;
  if (at != stuck_seq_) {
    stuck_seq_ = at;
    stuck_since_ = next_stuck_check_ = now;
    return;
  }
  if (now - stuck_since_ < kStuckLimit || now < next_stuck_check_) return;
  next_stuck_check_ = now + 1s;
  // Only a record the target said was on stable media before the read can be
  // damaged; one allocated but still being written (a slow log device) is
  // just not there yet.
  if (durable_before > at)
    throw LogCorrupt(r.describe() + ", though the target had made records up to seq " +
                     std::to_string(durable_before - 1) + " durable");
}

// Nothing new: take acknowledgements, and look for records with one small read.
void PrimarySession::idle() {
  while (!stop_ && peer_.readable(inflight_.empty() ? 50ms : 0ms)) on_frame(peer_.receive());
  for (auto until = std::chrono::steady_clock::now() + 250ms; !stop_ && std::chrono::steady_clock::now() < until;)
    if ((reader_.peek() && reader_.position().seq < shippable(true)) || peer_.readable(5ms)) return;
}

// Ships every record before seq and waits until the secondary holds them durably.
bool PrimarySession::ship_until(uint64_t seq) {
  while (!stop_ && reader_.position().seq < seq)
    if (!ship_batch(seq)) idle();
  while (!stop_ && !inflight_.empty()) on_frame(peer_.receive());
  return !stop_;
}

// Hands the target's bitmap to a resync; the pass starts at the answer.
uint64_t PrimarySession::take_bitmap() {
  std::string answer = dm_message(opt_.dm_device, "take_bitmap");
  try {
    return std::stoull(answer);
  } catch (const std::exception&) {
    throw std::runtime_error(opt_.dm_device + ": take_bitmap answered \"" + answer + "\"");
  }
}

// The records from `from` on: the last sequence number, and the ranges they write.
PrimarySession::LogScan PrimarySession::scan_log_from(LogPosition from) {
  LogReaderOptions ro = reader_options(opt_);
  LogReader scan(opt_.log_path, ro);
  scan.seek(from);
  LogScan out;
  out.last_seq = from.seq - 1;
  LogRecord rec;
  for (ReadResult r; (r = scan.next(rec)).status == ReadStatus::Record;) {
    out.last_seq = rec.header.seq;
    if (rec.header.type == HRL_REC_WRITE || rec.header.type == HRL_REC_DISCARD)
      out.written.push_back({rec.header.sector * HRL_SECTOR_SIZE, uint64_t{rec.header.nr_sectors} * HRL_SECTOR_SIZE});
  }
  return out;
}

// One resync pass at take_seq; false when the session stops first.
bool PrimarySession::run_pass(ResyncMode mode, uint32_t reason, uint64_t take_seq, uint64_t cursor,
                              ResyncRegions regions, bool waits_for_window, bool supersedes) {
  const uint64_t data_bytes = sb_.data_sectors * HRL_SECTOR_SIZE;
  ChunkPlan plan = ChunkPlan::device(data_bytes);
  if (regions == ResyncRegions::Bitmap) {
    // The target wrote the taken bitmap to the log before answering take_bitmap.
    Superblock now = read_superblock(log_);
    DirtyBitmap bits(now.data_sectors, now.bitmap_block);
    if (now.has(HRL_SB_RESYNC_PENDING) && now.resync_take_seq == take_seq &&
        load_bitmap_area(log_, now.resync_offset, now.bitmap_bytes, now.resync_csum, now.csum_seed(), bits))
      plan = ChunkPlan::bitmap(data_bytes, bits);
    else
      regions = ResyncRegions::Device;  // the bitmap is not there: compare everything, which covers it
  }
  File data = File::open_direct(opt_.data_path, O_RDONLY);
  if (data.size() < data_bytes)
    throw SessionError(opt_.data_path + " is smaller than the volume", false);
  PrimaryPass pass;
  pass.begin = {mode, regions, reason, take_seq, cursor, plan.count_from(cursor), supersedes};
  pass.plan = std::move(plan);
  pass.data = &data;
  pass.data_bytes = data_bytes;
  pass.backend = opt_.backend;
  pass.zstd_level = opt_.zstd_level;
  pass.bandwidth = opt_.resync_bandwidth;
  if (waits_for_window) pass.may_run = [this] { return window_open(); };
  const LogPosition from = reader_.position();
  // Every write the pass may have read was sequenced before this moment. A
  // verify changes nothing, so the secondary does not need it.
  if (mode != ResyncMode::Verify)
    pass.consistent_seq = [&] {
      if (dm()) return target_status(opt_.dm_device).head - 1;
      return scan_log_from(from).last_seq;
    };
  auto say = [&](const std::string& line) {
    if (opt_.log) opt_.log(line);
  };
  char line[256];
  snprintf(line, sizeof line, "%s %s (%s) at seq %llu: %llu MiB to compare%s", cursor ? "resuming" : "starting",
           proto::resync_mode_name(mode), reason_name(reason), static_cast<unsigned long long>(take_seq),
           static_cast<unsigned long long>(pass.plan.bytes_from(cursor) >> 20),
           cursor ? (" from chunk " + std::to_string(cursor) + ", its checkpoint").c_str() : "");
  say(line);
  wait_completed(take_seq);
  auto t0 = std::chrono::steady_clock::now();
  // Nothing ships while a pass runs: the RPO grows from its start (a verify
  // leaves the replica as it was, but holds records back all the same).
  if (!stats_.pending_since_ns) stats_.pending_since_ns = now_realtime_ns();
  PassResult result = run_resync_primary(peer_, pass, stop_, stats_.resync);
  if (inflight_.empty()) stats_.pending_since_ns = 0;
  if (!result.completed) {
    say(std::string(proto::resync_mode_name(mode)) + " stopped; the secondary's checkpoint keeps its progress");
    return false;
  }
  stats_.progress++;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  snprintf(line, sizeof line, "%s done in %.1f s: compared %llu MiB, %llu KiB differed, %llu KiB on the wire",
           proto::resync_mode_name(mode), secs, static_cast<unsigned long long>(stats_.resync.done_bytes >> 20),
           static_cast<unsigned long long>(stats_.resync.differing_bytes >> 10),
           static_cast<unsigned long long>(stats_.resync.wire_bytes >> 10));
  say(line);
  if (mode != ResyncMode::Verify && dm()) {
    TargetStatus t = target_status(opt_.dm_device);
    if (t.resync_pending() && t.take_seq == take_seq) dm_message(opt_.dm_device, "end_resync");
  }
  if (mode == ResyncMode::Verify && opt_.control) {
    // Blocks written since the verify began differ because the replica has
    // not had them yet: they are reported apart, not as divergence.
    LogScan scan = scan_log_from(from);
    std::vector<ByteRange> diverged;
    uint64_t written = 0;
    for (const ByteRange& r : result.differing) {
      bool touched = false;
      for (const ByteRange& w : scan.written) touched |= w.offset < r.offset + r.length && r.offset < w.offset + w.length;
      if (touched)
        written += r.length;
      else
        diverged.push_back(r);
    }
    std::lock_guard lock(opt_.control->mu);
    opt_.control->verify_ranges = std::move(diverged);
    opt_.control->verify_written_bytes = written;
  }
  return true;
}

// A planned failover (hrlctl failover --planned, failback): the application
// has stopped (its writer closed the log; or nothing holds the dm device
// open), every record is made durable, a verify must find the sites equal,
// and the secondary takes over at the next generation. A dm device is
// removed before PROMOTE, so nothing can write after the verify, and mapped
// again if the takeover does not happen. Returns the outcome.
std::string PrimarySession::hand_over() {
  uint64_t end;
  if (dm()) {
    if (auto open = dm_open_count(opt_.dm_device); open && *open > 0)
      return "refused: /dev/mapper/" + opt_.dm_device + " is in use (open " + std::to_string(*open) +
             " times): unmount it, stop the application first";
    end = target_status(opt_.dm_device).head;
  } else {
    Superblock now = read_superblock(log_);
    if (!now.has(HRL_SB_CLEAN)) return "refused: the log is open for writing: stop the application first";
    end = now.head_seq;
  }
  // Blocks the ring did not journal (bitmap mode) do not ship: the verify
  // finds them, whatever the flags say.
  if (!ship_until(end) || !run_pass(ResyncMode::Verify, HRL_REASON_OPERATOR, end, 0, ResyncRegions::Device, false))
    return "interrupted: the session stopped; nothing was handed over";
  {
    std::lock_guard lock(opt_.control->mu);
    if (!opt_.control->verify_ranges.empty() || opt_.control->verify_written_bytes)
      return "refused: after the drain the sites differ in " + std::to_string(opt_.control->verify_ranges.size()) +
             " ranges: run hrlctl resync, then fail over again";
  }
  // Nothing may have written since the drain: the device goes (it cannot
  // while open); a writer's log must still be closed at the same head.
  if (dm()) {
    try {
      dm_remove(opt_.dm_device);
    } catch (const std::exception& e) {
      return "refused: " + std::string(e.what()) + ": was it opened during the handover? Stop the application first";
    }
  }
  Superblock now = read_superblock(log_);
  if (now.head_seq != end || (!dm() && !now.has(HRL_SB_CLEAN))) {
    if (dm()) map_again();
    return "refused: writes arrived during the handover; they ship now: stop the application, fail over again";
  }
  // From PROMOTE on the other site may take over: a restart must know that.
  if (!opt_.handover_marker.empty()) {
    try {
      save_handover_marker(opt_.handover_marker, {sb_.generation + 1, end - 1});
    } catch (const std::exception& e) {  // without the mark, no PROMOTE
      try {  // nor a mark left behind by a write that failed after its rename
        remove_handover_marker(opt_.handover_marker);
      } catch (const std::exception&) {  // the next session finds it and settles it
      }
      if (dm()) map_again();
      return "refused: " + std::string(e.what()) + ": the handover could not be marked; nothing was handed over";
    }
  }
  peer_.send(FrameType::Promote, proto::encode(proto::Promote{sb_.generation + 1, end - 1}));
  TlsStream::Frame f;
  try {
    f = peer_.receive();
  } catch (const std::exception& e) {
    // PROMOTE went out: the other site may have taken over. Mapping the
    // device again could make two primaries; it stays unmapped. With the
    // handover marked, sessions go on: the next one the other site
    // welcomes settles it (settle_handover), and none can ship meanwhile.
    throw SessionError(std::string("no answer to PROMOTE (") + e.what() +
                           "): the other site may be the primary now; check it before anything else",
                       !opt_.handover_marker.empty());
  }
  if (f.header.type == FrameType::Refuse) {  // nothing changed there: the volume stays here
    if (dm()) map_again();
    if (!opt_.handover_marker.empty()) remove_handover_marker(opt_.handover_marker);
    auto r = proto::decode_refuse(f.payload);
    // The secondary ends the session after a refusal; the next one goes on replicating.
    throw SessionError("the secondary refused to take over: " + r.message, true);
  }
  if (f.header.type != FrameType::Promoted)
    throw SessionError(std::string("expected PROMOTED, got ") + proto::frame_type_name(f.header.type) +
                           ": the other site may be the primary now; check it before anything else",
                       !opt_.handover_marker.empty());
  auto p = proto::decode_promote(f.payload);
  if (p.generation != sb_.generation + 1 || p.last_seq != end - 1)
    throw SessionError("the secondary took over at generation " + std::to_string(p.generation) + ", seq " +
                           std::to_string(p.last_seq) + ", not as asked",
                       false);
  opt_.control->handed_over = true;
  if (opt_.log) opt_.log("handed over at seq " + std::to_string(end - 1) + ": the secondary is the primary now");
  return "completed";
}

// A planned failover lost its answer (the session broke after PROMOTE, or
// hrld stopped). The other site welcomed this session as its primary's
// replica at this generation,
// so PROMOTE never took effect there (it takes sessions one at a time: the
// session that carried PROMOTE is over). The volume stays here.
void PrimarySession::settle_handover() {
  if (opt_.handover_marker.empty()) return;
  auto marker = load_handover_marker(opt_.handover_marker);
  if (!marker) return;
  if (marker->generation != sb_.generation + 1) {  // left from an earlier generation: stale
    remove_handover_marker(opt_.handover_marker);
    return;
  }
  if (dm() && !dm_open_count(opt_.dm_device)) map_again();
  remove_handover_marker(opt_.handover_marker);
  if (opt_.log) opt_.log("the planned failover whose answer was lost did not happen: the secondary is still the replica; "
                         "this site stays the primary");
}

// The dm device a handover removed, back as it was: the volume stays here.
void PrimarySession::map_again() {
  dm_create(opt_.dm_device, sb_.data_sectors, "hrl", opt_.dm_table_data + " " + opt_.log_path);
}

void PrimarySession::operator_request() {
  uint64_t id = opt_.control->request_id;
  uint32_t requested = opt_.control->requested.exchange(0);
  auto mode = static_cast<ResyncMode>(requested);
  std::string outcome = "completed";
  try {
    if (requested == OperatorControl::kHandover)
      outcome = hand_over();
    else if (ship_until(reader_.position().seq) &&
             !run_pass(mode, HRL_REASON_OPERATOR, reader_.position().seq, 0, ResyncRegions::Device, false))
      outcome = "interrupted: the session stopped; a resync resumes from its checkpoint";
  } catch (const std::exception& e) {
    outcome = std::string("failed: ") + e.what();
    std::lock_guard lock(opt_.control->mu);
    opt_.control->finished_id = id;
    opt_.control->outcome = outcome;
    throw;
  }
  std::lock_guard lock(opt_.control->mu);
  opt_.control->finished_id = id;
  opt_.control->outcome = outcome;
}

// A pass that replaces records the replica cannot have: past a damaged
// record, or when the replica holds records this log lost. The whole device
// is compared at take_seq and the replica starts over at take_seq - 1. The
// records before take_seq are released only once the pass is done, so the
// secondary has recorded it: a link cut before then and the next session
// finds the same log and starts the same way.
bool PrimarySession::superseding_pass(uint32_t reason) {
  while (!stop_ && !inflight_.empty()) on_frame(peer_.receive());
  if (stop_) return false;
  uint64_t take;
  if (dm()) {
    if (!target_status(opt_.dm_device).resync_required()) dm_message(opt_.dm_device, "request_resync");
    take = take_bitmap();
  } else {  // a writer's log: the pass is taken at its end, read through
    LogRecord rec;
    while (reader_.next(rec).status == ReadStatus::Record) {
    }
    take = reader_.position().seq;
  }
  corrupt_.reset();
  if (!run_pass(ResyncMode::Checksum, reason, take, 0, ResyncRegions::Device, false, true)) return false;
  release_through(take - 1);
  return true;
}

// A damaged record cannot be shipped, nor can what follows it be found. With
// dm-hrl the target can start over with a superseding pass. Without the
// module the log's writer owns it: the volume goes critical.
bool PrimarySession::replace_corrupt_log(const std::string& what) {
  if (!dm()) throw SessionError("the log is corrupt: " + what, false);
  if (opt_.log) opt_.log("the log is corrupt (" + what + "): the whole device goes to a checksum resync");
  return superseding_pass(HRL_REASON_LOG_CORRUPT);
}

void PrimarySession::run() {
  handshake();
  for (;;) {
    try {
      return run_protected();
    } catch (const LogCorrupt& e) {
      if (!replace_corrupt_log(e.what())) return;  // then on from take_seq
    }
  }
}

void PrimarySession::run_protected() {
  if (discontinuity_) {
    // Records the replica holds are not this log's: compare everything, now.
    std::string why = *discontinuity_;
    discontinuity_.reset();
    uint32_t reason = dm() ? target_status(opt_.dm_device).reason : uint32_t{HRL_REASON_NONE};
    if (reason == HRL_REASON_NONE) reason = HRL_REASON_UNCLEAN_SHUTDOWN;
    if (opt_.log)
      opt_.log("the secondary holds records up to seq " + std::to_string(welcome_.durable_seq) +
               " that this log does not (" + why + "): the replica is rebased by a whole-device resync");
    welcome_handled_ = true;  // the pass below covers what it asked for
    if (!superseding_pass(reason)) return;
  }
  if (welcome_.resync_mode && !welcome_handled_) {
    welcome_handled_ = true;
    auto mode = static_cast<ResyncMode>(welcome_.resync_mode);
    auto regions = static_cast<ResyncRegions>(welcome_.resync_regions);
    if (welcome_.resync_take_seq) {
      // The secondary is in the middle of a pass: resume it where its checkpoint says.
      if (welcome_.resync_take_seq != welcome_.durable_seq + 1)
        throw SessionError("the secondary's resync starts at seq " + std::to_string(welcome_.resync_take_seq) +
                               " but it holds records up to " + std::to_string(welcome_.durable_seq),
                           false);
      if (!run_pass(mode, welcome_.resync_reason, welcome_.resync_take_seq, welcome_.resync_cursor, regions, false))
        return;
    } else {
      // A new replica: the whole device, after the target's bitmap if it keeps one.
      uint64_t take = dm() && target_status(opt_.dm_device).needs_take() ? take_bitmap() : reader_.position().seq;
      if (!ship_until(take) || !run_pass(mode, welcome_.resync_reason, take, 0, ResyncRegions::Device, false)) return;
    }
  }
  auto next_check = std::chrono::steady_clock::now();
  while (!stop_) {
    if (opt_.control && opt_.control->requested) {
      operator_request();
      if (opt_.control->handed_over) return;  // this site is the secondary now
      continue;
    }
    if (dm() && std::chrono::steady_clock::now() >= next_check) {
      next_check = std::chrono::steady_clock::now() + 500ms;
      TargetStatus t = target_status(opt_.dm_device);
      if (t.reason == HRL_REASON_IO_ERROR && t.resync_required()) {
        // The log failed a write: records past its durable point may be
        // holes and never ship. The whole device is compared in their place.
        if (opt_.log) opt_.log("the log failed a write: the whole device goes to a checksum resync");
        if (!superseding_pass(HRL_REASON_IO_ERROR)) return;
        continue;
      }
      if (t.needs_take() && (window_open() || t.urgent())) {
        uint64_t take = take_bitmap();
        // Dirty blocks in journal mode are writes that failed: the status says why anyway.
        uint32_t reason = t.reason != HRL_REASON_NONE ? t.reason : uint32_t{HRL_REASON_RING_OVERFLOW};
        if (!ship_until(take) || !run_pass(ResyncMode::Checksum, reason, take, 0, ResyncRegions::Bitmap, !t.urgent()))
          return;
        continue;
      }
    }
    if (!ship_batch(UINT64_MAX)) idle();
  }
}

}  // namespace

void run_primary_session(TlsStream& peer, const PrimaryOptions& opt, const std::atomic<bool>& stop,
                         SessionStats& stats) {
  PrimarySession(peer, opt, stop, stats).run();
}

// ---- secondary -------------------------------------------------------------

namespace {

// Every WRITE and DISCARD of the batch lies within the volume.
void check_within_volume(const std::vector<proto::BatchRecord>& records, uint64_t data_sectors) {
  for (const auto& r : records) {
    const RecordHeader& h = r.header;
    if ((h.type == HRL_REC_WRITE || h.type == HRL_REC_DISCARD) &&
        (h.sector > data_sectors || h.nr_sectors > data_sectors - h.sector))
      throw proto::ProtocolError("record seq " + std::to_string(h.seq) + " reaches past the end of the volume (sector " +
                                 std::to_string(h.sector) + ", " + std::to_string(h.nr_sectors) + " sectors; the volume has " +
                                 std::to_string(data_sectors) + ")");
  }
}

// A planned failover: the primary drained and verified; this replica holds
// every record it wrote. The site takes over (opt.take_over: the state, the
// log, the role) and answers PROMOTED.
void take_over(TlsStream& peer, const TlsStream::Frame& f, const SecondaryOptions& opt, ReplicaState& state) {
  proto::Promote p;
  try {
    p = proto::decode_promote(f.payload);
  } catch (const proto::ProtocolError& e) {
    refuse(peer, proto::RefuseCode::Internal, e.what());
  }
  if (!opt.take_over) refuse(peer, proto::RefuseCode::Internal, "this site cannot become the volume's primary");
  if (!state.consistent() || state.resync)
    refuse(peer, proto::RefuseCode::Internal, "the replica is in the middle of a resync: it cannot take over");
  if (p.last_seq != state.durable_seq)
    refuse(peer, proto::RefuseCode::Gap,
           "a takeover after seq " + std::to_string(p.last_seq) + " but the replica holds records up to " +
               std::to_string(state.durable_seq));
  if (p.generation != state.generation + 1)
    refuse(peer, proto::RefuseCode::Generation,
           "a takeover at generation " + std::to_string(p.generation) + " from generation " +
               std::to_string(state.generation));
  try {
    opt.take_over(state, p.generation);
  } catch (const TakeoverUnsettled&) {
    throw;  // no answer: the primary must not take it for a refusal
  } catch (const std::exception& e) {
    refuse(peer, proto::RefuseCode::Internal, std::string("the takeover failed: ") + e.what());
  }
  peer.send(FrameType::Promoted, proto::encode(p));
}

}  // namespace

void run_secondary_session(TlsStream& peer, const SecondaryOptions& opt, const std::atomic<bool>& stop,
                           SessionStats& stats) {
  std::optional<ReplicaState> state = ReplicaState::load(opt.state_path);
  // Records are whole sectors at sector offsets, and the applier's buffers
  // are aligned: O_DIRECT wherever the replica's sectors are 512 bytes.
  File replica = File::open(opt.replica_path, O_RDWR);
  // A device replica is held exclusively while the session writes it:
  // nothing mounts it meanwhile (a test or a failed-over volume in use),
  // and a session never writes under a file system someone mounted.
  if (replica.is_block_device()) {
    try {
      replica = open_exclusive(opt.replica_path, "the replica", replica.logical_sector_size() == HRL_SECTOR_SIZE);
    } catch (const std::runtime_error& e) {
      if (dynamic_cast<const std::system_error*>(&e)) throw;
      refuse(peer, proto::RefuseCode::Busy, e.what());
    }
  } else if (replica.logical_sector_size() == HRL_SECTOR_SIZE) {
    replica = File::open_direct(opt.replica_path, O_RDWR);
  }

  auto f = peer.receive();
  if (f.header.type != FrameType::Hello)
    refuse(peer, proto::RefuseCode::Internal, std::string("expected HELLO, got ") + proto::frame_type_name(f.header.type));
  auto hello = proto::decode_hello(f.payload);
  if (state && state->uuid != hello.uuid)
    refuse(peer, proto::RefuseCode::WrongVolume,
           "this replica follows volume " + uuid_string(state->uuid) + ", not " + uuid_string(hello.uuid));
  if (state && state->adopt_newer_generation && state->uuid == hello.uuid && hello.generation > state->generation) {
    state->generation = hello.generation;  // the promoted side, after reprotect: its lineage from now on
    state->adopt_newer_generation = false;
    state->save(opt.state_path);
  }
  if (state && state->promoted)
    refuse(peer, proto::RefuseCode::Generation,
           "volume " + uuid_string(state->uuid) + " was failed over to this site at seq " +
               std::to_string(state->promoted->seq) + " (generation " + std::to_string(state->generation) +
               "): this site is its primary now; reprotect to replicate again");
  if (state && state->generation != hello.generation)
    refuse(peer, proto::RefuseCode::Generation,
           "the replica is at generation " + std::to_string(state->generation) + ", the primary at " +
               std::to_string(hello.generation) + ": the sites diverged");
  if (replica.size() < hello.data_sectors * HRL_SECTOR_SIZE)
    refuse(peer, proto::RefuseCode::Size,
           opt.replica_path + " is " + std::to_string(replica.size()) + " bytes, the volume " +
               std::to_string(hello.data_sectors * HRL_SECTOR_SIZE));
  if (!state) {
    // A new pair: the replica starts where the primary's log starts and,
    // unless the log says both sides began equal, needs a whole-device
    // resync (take_seq 0: not started; the primary chooses where it starts).
    state = ReplicaState{hello.uuid, hello.generation, hello.data_sectors, hello.first_seq - 1, 0, std::nullopt, 0, std::nullopt, std::nullopt};
    if (!hello.in_sync_from_start)
      state->resync = ResyncCheckpoint{static_cast<uint32_t>(ResyncMode::Checksum),
                                       static_cast<uint32_t>(ResyncRegions::Device), HRL_REASON_NEW_VOLUME, 0, 0,
                                       now_realtime_ns()};
    if (opt.history) {  // nothing of this lineage is applied yet: its history begins here, whole
      opt.history->open(state->uuid, state->durable_seq);
      state->history_complete = opt.history->start_over(state->durable_seq);
    }
    state->save(opt.state_path);
  }
  if (hello.first_seq > state->durable_seq + 1)
    refuse(peer, proto::RefuseCode::Gap,
           "the replica holds records up to seq " + std::to_string(state->durable_seq) +
               "; the primary's log starts at seq " + std::to_string(hello.first_seq) + ": a resync is required");
  proto::Welcome welcome{state->uuid, state->generation, state->durable_seq, state->durable_csum, 0, 0, 0, 0, 0, opt.node};
  if (state->resync) {
    welcome.resync_mode = state->resync->mode;
    welcome.resync_regions = state->resync->regions;
    welcome.resync_reason = state->resync->reason;
    welcome.resync_take_seq = state->resync->take_seq;
    welcome.resync_cursor = state->resync->cursor;
  }
  peer.send(FrameType::Welcome, proto::encode(welcome));
  if (opt.log)
    opt.log("the replica holds records up to seq " + std::to_string(state->durable_seq) +
            (state->resync ? std::string(", in a resync (") + reason_name(state->resync->reason) + ")" : ""));
  stats.durable_seq = state->durable_seq;
  stats.inconsistent = !state->consistent();

  const uint64_t seed = hrl_csum_seed(state->uuid.data());
  auto io = make_io_backend(opt.backend, 32);
  History* history = opt.history;
  if (history) {
    history->open(state->uuid, state->durable_seq);
    // Records applied without before-images since the journal began (a
    // session with history off) leave a gap no image can be rebuilt across:
    // history starts over after the next batch.
    if (size_t dropped = history->begin_session(state->durable_seq, !state->history_complete); dropped && opt.log)
      opt.log("the replica took records without keeping history up to seq " + std::to_string(state->durable_seq) +
              ": the " + std::to_string(dropped) + " points before are dropped, and history starts over with the next batch");
  } else if (state->history_complete) {  // durable before any record is applied without before-images
    state->history_complete = false;
    state->save(opt.state_path);
  }
  auto last_point = std::chrono::steady_clock::now(), last_prune = last_point;
  uint64_t last_point_seq = state->durable_seq;
  // A crash-consistent point every point_interval, when the replica is
  // consistent and has moved; retention once a second.
  auto keep_history = [&] {
    if (!history) return;
    auto now = std::chrono::steady_clock::now();
    if (now - last_prune >= 1s) {
      history->prune(now_realtime_ns());
      last_prune = now;
    }
    if (!state->consistent() || !state->history_complete || state->durable_seq == last_point_seq ||
        now - last_point < std::chrono::duration<double>(opt.point_interval))
      return;
    history->add_point(state->durable_seq, PointKind::Crash, "");
    last_point = now;
    last_point_seq = state->durable_seq;
  };
  while (!stop) {
    keep_history();
    if (!peer.readable(200ms)) continue;
    try {
      f = peer.receive();
    } catch (const PeerClosed&) {
      return;  // the primary stopped: a normal end of the session
    }
    if (f.header.type == FrameType::ResyncBegin) {
      proto::ResyncBegin begin;
      try {
        begin = proto::decode_resync_begin(f.payload);
      } catch (const proto::ProtocolError& e) {
        refuse(peer, proto::RefuseCode::Internal, e.what());
      }
      // Records before take_seq first, the pass next: the replica must hold
      // exactly those. Only a whole-device pass that supersedes records (past
      // a corrupt log, or records the primary lost) starts it over elsewhere.
      bool skips = begin.supersedes;
      if (begin.take_seq != state->durable_seq + 1 && !skips)
        refuse(peer, proto::RefuseCode::Internal,
               "a resync at seq " + std::to_string(begin.take_seq) + " but the replica holds records up to " +
                   std::to_string(state->durable_seq));
      if (begin.mode == ResyncMode::Verify) {
        if (state->resync && state->resync->take_seq)
          refuse(peer, proto::RefuseCode::Internal, "a verify while a resync is in progress");
      } else {
        if (state->resync && state->resync->take_seq == begin.take_seq && begin.cursor > state->resync->cursor)
          refuse(peer, proto::RefuseCode::Internal,
                 "a resync resumed at chunk " + std::to_string(begin.cursor) + " past the checkpoint at " +
                     std::to_string(state->resync->cursor));
        uint64_t started = state->resync ? state->resync->started_ns : now_realtime_ns();
        if (skips) {
          if (opt.log)
            opt.log("a resync (" + std::string(reason_name(begin.reason)) + ") at seq " +
                    std::to_string(begin.take_seq) + " supersedes what the replica holds after seq " +
                    std::to_string(std::min(state->durable_seq, begin.take_seq - 1)) + ": it starts over at seq " +
                    std::to_string(begin.take_seq - 1));
          state->durable_csum = 0;  // the pass brings data, not that record
        }
        state->durable_seq = begin.take_seq - 1;  // the same, or records the pass supersedes
        state->resync = ResyncCheckpoint{static_cast<uint32_t>(begin.mode), static_cast<uint32_t>(begin.regions),
                                         begin.reason, begin.take_seq, begin.cursor, started};
        state->save(opt.state_path);
        stats.inconsistent = true;
      }
      // A pass changes the replica without before-images: the history before it cannot be rebuilt.
      if (history && begin.mode != ResyncMode::Verify) history->restart(begin.take_seq - 1);
      run_resync_secondary(peer, begin, replica, *state, opt.state_path, opt.backend, stop, stats.resync);
      stats.inconsistent = !state->consistent();
      continue;
    }
    if (f.header.type == FrameType::Promote) {
      replica.close();  // the exclusive hold goes first: the takeover maps dm-hrl over the replica
      take_over(peer, f, opt, *state);
      return;  // the primary now: the volume changes roles
    }
    if (f.header.type != FrameType::Records)
      refuse(peer, proto::RefuseCode::Internal, std::string("unexpected ") + proto::frame_type_name(f.header.type));
    if (state->resync && state->resync->take_seq)
      refuse(peer, proto::RefuseCode::Internal, "records while a resync is in progress");
    std::vector<proto::BatchRecord> records;
    try {  // every record is checked before any is applied, or its before-image taken
      records = proto::decode_batch(f.payload, seed, state->durable_seq + 1);
      check_within_volume(records, state->data_sectors);
    } catch (const proto::ProtocolError& e) {
      refuse(peer, proto::RefuseCode::BadRecord, std::string(e.what()) + "; nothing of the batch was applied");
    }
    std::vector<LogRecord> batch;
    for (const auto& br : records) batch.push_back(LogRecord{br.header, 0, br.payload});
    // Before-images durable before the replica changes. A batch without
    // them (history suspended for space, or after a gap) is recorded as a
    // gap before any of it is applied; history starts over after it.
    const bool kept = history && state->history_complete && history->capture(replica, batch, io.get());
    if (history && !kept && state->history_complete) {
      state->history_complete = false;
      state->save(opt.state_path);
    }
    RecordApplier applier(replica, state->data_sectors, *io);
    for (const auto& rec : batch) applier.apply(rec);
    applier.finish();  // applied and fdatasync'ed
    state->durable_seq = records.back().header.seq;
    state->durable_csum = header_checksum(records.back().header, seed);
    // A MARK names the image after it. Its point is in the catalog before the
    // state says the batch is durable: a crash between the two leaves the
    // point after durable_seq, which the next session drops and the batch,
    // arriving again, adds; never a durable MARK with no point.
    if (history && !kept) state->history_complete = history->start_over(state->durable_seq);  // from the next batch on
    // A MARK names an image history can build when the batch's before-images
    // are in, or when it is the batch's last record and history starts over
    // at its seq: the replica is that image, history's first boundary.
    auto buildable = [&](const LogRecord& rec) {
      return kept || (state->history_complete && rec.header.seq == state->durable_seq);
    };
    if (history && state->consistent())
      for (const auto& rec : batch)
        if (rec.header.type == HRL_REC_MARK && buildable(rec)) {
          std::string name(reinterpret_cast<const char*>(rec.payload.data()), rec.payload.size());
          name = name.substr(0, name.find('\0'));
          bool app = name.rfind(kAppPointPrefix, 0) == 0;
          history->add_point(rec.header.seq, app ? PointKind::App : PointKind::Named,
                             app ? name.substr(std::string(kAppPointPrefix).size()) : name);
        }
    state->save(opt.state_path);  // durable before it is acknowledged
    peer.send(FrameType::Durable, proto::encode(proto::Durable{state->durable_seq}));
    stats.durable_seq = state->durable_seq;
    stats.inconsistent = !state->consistent();
    stats.raw_bytes += f.payload.size();
    stats.wire_bytes += f.header.wire_len + proto::kHeaderSize;
  }
}

}  // namespace hrl
