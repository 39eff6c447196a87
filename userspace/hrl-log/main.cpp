// hrl-log: format, inspect, verify and replay a .hrl log.
//
//   hrl-log format LOG --data DEV [--ring-size SIZE] [--bitmap-block SIZE] [--al-extents N]
//                      [--al-extent-size SIZE] [--force]
//   hrl-log dump LOG [--json] [--limit N]
//   hrl-log verify LOG [--json]
//   hrl-log replay LOG TARGET [--from-seq N] [--to-seq N | --to-mark NAME]
//
// Exit status: 0 success, 1 an error or a corrupt log, 2 bad usage.
#include <fcntl.h>
#include <xxhash.h>

#include <CLI/CLI.hpp>
#include <bit>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "io/file.h"
#include "io/io_backend.h"
#include "log/activity_log.h"
#include "log/format_log.h"
#include "log/log_reader.h"
#include "log/record_applier.h"
#include "log/superblock.h"

namespace hrl {
namespace {

using json = nlohmann::ordered_json;

std::string iso_time(uint64_t ns) {
  time_t s = static_cast<time_t>(ns / 1000000000ULL);
  tm t;
  gmtime_r(&s, &t);
  char buf[64];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06" PRIu64 "Z", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
           t.tm_hour, t.tm_min, t.tm_sec, static_cast<uint64_t>(ns % 1000000000ULL / 1000));
  return buf;
}

std::string record_flags(uint16_t f) {
  std::string s;
  if (f & HRL_REC_FLUSH) s += "FLUSH";
  if (f & HRL_REC_FUA) s += s.empty() ? "FUA" : ",FUA";
  return s.empty() ? "-" : s;
}

std::string mark_name(const LogRecord& r) {
  return {reinterpret_cast<const char*>(r.payload.data()), r.payload.size()};
}

json superblock_json(const Superblock& sb) {
  return json{{"uuid", uuid_string(sb.uuid)},
              {"version", sb.version},
              {"generation", sb.generation},
              {"flags", flags_string(sb.flags)},
              {"resync_reason", reason_name(sb.resync_reason)},
              {"data_sectors", sb.data_sectors},
              {"bitmap_block", sb.bitmap_block},
              {"max_payload", sb.max_payload},
              {"bitmap_offset", sb.bitmap_offset},
              {"resync_offset", sb.resync_offset},
              {"bitmap_bytes", sb.bitmap_bytes},
              {"ring_offset", sb.ring_offset},
              {"ring_bytes", sb.ring_bytes},
              {"tail_seq", sb.tail_seq},
              {"tail_offset", sb.tail_offset},
              {"head_seq", sb.head_seq},
              {"head_offset", sb.head_offset},
              {"resync_take_seq", sb.resync_take_seq},
              {"dirty_bits", sb.dirty_bits},
              {"resync_bits", sb.resync_bits},
              {"update_seq", sb.update_seq},
              {"al_offset", sb.al_offset},
              {"al_extent_bytes", sb.al_offset ? uint64_t{1} << sb.al_extent_shift : 0},
              {"al_extents", sb.al_extents},
              {"created", iso_time(sb.created_ns)},
              {"updated", iso_time(sb.updated_ns)}};
}

json record_json(const LogRecord& r) {
  const RecordHeader& h = r.header;
  json j{{"seq", h.seq},
         {"type", record_type_name(h.type)},
         {"flags", record_flags(h.flags)},
         {"ring_offset", r.ring_pos},
         {"time", iso_time(h.timestamp_ns)}};
  if (h.type == HRL_REC_WRITE || h.type == HRL_REC_DISCARD) {
    j["sector"] = h.sector;
    j["sectors"] = h.nr_sectors;
  }
  if (h.type == HRL_REC_MARK) j["name"] = mark_name(r);
  if (h.type == HRL_REC_WRITE) j["payload_xxh64"] = h.payload_csum;
  return j;
}

json end_json(const ReadResult& r) {
  return json{{"status", r.status == ReadStatus::Corrupt ? "corrupt" : "end"},
              {"seq", r.at.seq},
              {"ring_offset", r.at.ring_pos},
              {"found", verdict_name(r.verdict)},
              {"detail", r.detail}};
}

void print_superblock(const std::string& path, const Superblock& sb) {
  printf("log %s: volume %s, generation %" PRIu64 ", format %u\n", path.c_str(), uuid_string(sb.uuid).c_str(),
         sb.generation, sb.version);
  printf("  data %" PRIu64 " sectors, bitmap block %u bytes, ring %" PRIu64 " bytes at %" PRIu64
         ", max payload %u\n",
         sb.data_sectors, sb.bitmap_block, sb.ring_bytes, sb.ring_offset, sb.max_payload);
  printf("  flags %s, reason %s, tail seq %" PRIu64 " @%" PRIu64 ", head seq %" PRIu64 " @%" PRIu64 " (persisted)\n",
         flags_string(sb.flags).c_str(), reason_name(sb.resync_reason), sb.tail_seq, sb.tail_offset, sb.head_seq,
         sb.head_offset);
  printf("  dirty blocks %" PRIu64 ", resync blocks %" PRIu64 " (taken at seq %" PRIu64 ")\n", sb.dirty_bits,
         sb.resync_bits, sb.resync_take_seq);
}

int cmd_format(const std::string& log_path, const std::string& data_path, const FormatOptions& fopt, bool force) {
  File log = File::open(log_path, O_RDWR);
  File data = File::open(data_path, O_RDONLY);
  if (auto old = existing_log(log); old && !force) {
    fprintf(stderr,
            "hrl-log: %s already holds the log of volume %s (generation %" PRIu64
            "); formatting loses its unshipped records. Use --force to format anyway.\n",
            log_path.c_str(), uuid_string(old->uuid).c_str(), old->generation);
    return 1;
  }
  uint64_t data_bytes = data.size();
  if (data_bytes == 0 || data_bytes % HRL_SECTOR_SIZE) {
    fprintf(stderr, "hrl-log: %s: data device size %" PRIu64 " is not a whole number of sectors\n", data_path.c_str(),
            data_bytes);
    return 1;
  }
  Superblock sb = format_log(log, data_bytes / HRL_SECTOR_SIZE, fopt);
  printf("formatted %s: volume %s, data %" PRIu64 " sectors, ring %" PRIu64 " bytes, bitmap %" PRIu64
         " bytes x2, max payload %u\n",
         log_path.c_str(), uuid_string(sb.uuid).c_str(), sb.data_sectors, sb.ring_bytes, sb.bitmap_bytes,
         sb.max_payload);
  return 0;
}

int cmd_dump(const std::string& log_path, bool as_json, uint64_t limit, const LogReaderOptions& opt) {
  LogReader reader(log_path, opt);
  LogRecord rec;
  ReadResult r;
  uint64_t n = 0;
  if (as_json) {
    json out{{"superblock", superblock_json(reader.superblock())}, {"records", json::array()}};
    if (reader.superblock().al_offset) {
      ActivityLog al = read_activity_log(File::open(log_path, O_RDONLY), reader.superblock());
      out["activity_log"] = al.all ? json{{"seq", al.seq}, {"all", true}}
                                   : json{{"seq", al.seq}, {"all", false}, {"extents", al.extents}};
    }
    while ((limit == 0 || n < limit) && (r = reader.next(rec)).status == ReadStatus::Record) {
      out["records"].push_back(record_json(rec));
      n++;
    }
    if (r.status != ReadStatus::Record) out["end"] = end_json(r);
    std::cout << out.dump(2) << "\n";
    return r.status == ReadStatus::Corrupt ? 1 : 0;
  }
  print_superblock(log_path, reader.superblock());
  printf("%-12s %-8s %-9s %-14s %-9s %s\n", "SEQ", "TYPE", "FLAGS", "SECTOR", "SECTORS", "TIME / NAME");
  while ((limit == 0 || n < limit) && (r = reader.next(rec)).status == ReadStatus::Record) {
    const RecordHeader& h = rec.header;
    std::string tail = h.type == HRL_REC_MARK ? "\"" + mark_name(rec) + "\"" : iso_time(h.timestamp_ns);
    printf("%-12" PRIu64 " %-8s %-9s %-14" PRIu64 " %-9u %s\n", h.seq, record_type_name(h.type),
           record_flags(h.flags).c_str(), h.sector, h.nr_sectors, tail.c_str());
    n++;
  }
  if (r.status != ReadStatus::Record) printf("%s\n", r.describe().c_str());
  return r.status == ReadStatus::Corrupt ? 1 : 0;
}

int cmd_verify(const std::string& log_path, bool as_json, const LogReaderOptions& opt) {
  LogReader reader(log_path, opt);
  LogRecord rec;
  ReadResult r;
  uint64_t records = 0, bytes = 0, marks = 0;
  uint64_t first = reader.position().seq;
  while ((r = reader.next(rec)).status == ReadStatus::Record) {
    records++;
    bytes += rec.header.span();
    marks += rec.header.type == HRL_REC_MARK;
  }
  const Superblock& sb = reader.superblock();
  // The bitmaps are checked against their superblock checksums as the writer will.
  bool bitmaps_ok = true;
  for (auto [offset, csum] : {std::pair{sb.bitmap_offset, sb.bitmap_csum}, std::pair{sb.resync_offset, sb.resync_csum}}) {
    AlignedBuffer area(sb.bitmap_bytes);
    reader.file().read_at(area.span(), offset);
    bitmaps_ok &= XXH64(area.data(), area.size(), sb.csum_seed()) == csum;
  }
  bool ok = r.status == ReadStatus::End && bitmaps_ok;
  if (as_json) {
    std::cout << json{{"ok", ok},
                      {"records", records},
                      {"first_seq", first},
                      {"ring_bytes_used", bytes},
                      {"marks", marks},
                      {"bitmaps_ok", bitmaps_ok},
                      {"superblock", superblock_json(sb)},
                      {"end", end_json(r)}}
                     .dump(2)
              << "\n";
  } else {
    printf("%s: %" PRIu64 " valid records (seq %" PRIu64 "..%" PRIu64 "), %" PRIu64 " ring bytes, %" PRIu64
           " marks; bitmaps %s\n%s\n%s\n",
           log_path.c_str(), records, first, r.at.seq - 1, bytes, marks, bitmaps_ok ? "ok" : "FAIL checksum",
           r.describe().c_str(), ok ? "OK" : "FAILED");
  }
  return ok ? 0 : 1;
}

// Finds where a replay must stop before touching the target, so a request that
// cannot be met changes nothing.
std::optional<uint64_t> find_stop(const std::string& log_path, const LogReaderOptions& opt, uint64_t to_seq,
                                  const std::string& to_mark, std::string& err) {
  LogReader reader(log_path, opt);
  LogRecord rec;
  ReadResult r;
  while ((r = reader.next(rec)).status == ReadStatus::Record) {
    if (!to_mark.empty() && rec.header.type == HRL_REC_MARK && mark_name(rec) == to_mark) return rec.header.seq;
    if (to_seq && rec.header.seq == to_seq) return to_seq;
  }
  if (r.status == ReadStatus::Corrupt)
    err = r.describe();
  else if (!to_mark.empty())
    err = "no mark named '" + to_mark + "' in the log (records up to seq " + std::to_string(r.at.seq - 1) + ")";
  else
    err = "the log ends at seq " + std::to_string(r.at.seq - 1) + ", before the requested seq " + std::to_string(to_seq);
  return std::nullopt;
}

int cmd_replay(const std::string& log_path, const std::string& target_path, uint64_t from_seq, uint64_t to_seq,
               const std::string& to_mark, const LogReaderOptions& opt) {
  uint64_t stop = UINT64_MAX;
  if (to_seq || !to_mark.empty()) {
    std::string err;
    auto found = find_stop(log_path, opt, to_seq, to_mark, err);
    if (!found) {
      fprintf(stderr, "hrl-log replay: %s; nothing was applied\n", err.c_str());
      return 1;
    }
    stop = *found;
  }
  LogReader reader(log_path, opt);
  const Superblock& sb = reader.superblock();
  if (from_seq && from_seq < sb.tail_seq) {
    fprintf(stderr, "hrl-log replay: seq %" PRIu64 " was already released from the ring (tail is %" PRIu64 ")\n",
            from_seq, sb.tail_seq);
    return 1;
  }
  File target = File::open(target_path, O_RDWR);
  auto io = make_io_backend(opt.backend, 32);
  RecordApplier applier(target, sb.data_sectors, *io);
  LogRecord rec;
  ReadResult r;
  while ((r = reader.next(rec)).status == ReadStatus::Record) {
    if (rec.header.seq > stop) break;
    if (rec.header.seq >= from_seq) applier.apply(rec);
    if (rec.header.seq == stop) break;
  }
  applier.finish();
  const ApplyStats& st = applier.stats();
  printf("replayed %" PRIu64 " records onto %s: %" PRIu64 " writes (%" PRIu64 " bytes), %" PRIu64 " discards, %" PRIu64
         " marks, through seq %" PRIu64 " [%s]\n",
         st.records, target_path.c_str(), st.writes, st.bytes, st.discards, st.marks,
         r.status == ReadStatus::Record ? rec.header.seq : r.at.seq - 1, io->name().data());
  if (r.status == ReadStatus::Corrupt) {
    fprintf(stderr, "hrl-log replay: stopped at %s\n", r.describe().c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace hrl

int main(int argc, char** argv) {
  using namespace hrl;
  CLI::App app{"hrl-log: format, inspect, verify and replay a .hrl log"};
  app.require_subcommand(1);
  std::string backend = "auto";
  app.add_option("--backend", backend, "I/O backend: auto, io_uring or libaio (also HRL_IO_BACKEND)")
      ->check(CLI::IsMember({"auto", "io_uring", "uring", "libaio", "aio"}));

  std::string log_path, data_path, target_path, to_mark;
  FormatOptions fopt;
  uint64_t limit = 0, from_seq = 0, to_seq = 0;
  bool force = false, as_json = false;

  auto* format = app.add_subcommand("format", "write a new, empty log for a data device");
  format->add_option("log", log_path, "log device or file")->required();
  format->add_option("--data", data_path, "the data device the log tracks (sets its size)")->required();
  format->add_option("--ring-size", fopt.ring_bytes, "ring bytes (default: all space after the bitmaps)")
      ->transform(CLI::AsSizeValue(false));
  format->add_option("--bitmap-block", fopt.bitmap_block, "bytes of data per dirty-bitmap bit")
      ->transform(CLI::AsSizeValue(false));
  format->add_option("--max-payload", fopt.max_payload, "largest record payload")->transform(CLI::AsSizeValue(false));
  uint64_t al_extent_size = uint64_t{1} << HRL_DEFAULT_AL_EXTENT_SHIFT;
  format->add_option("--al-extents", fopt.al_extents,
                     "extents the activity log lists: a crash resyncs at most these (0: no activity log, "
                     "a crash resyncs the whole device)")
      ->check(CLI::Range(0u, HRL_AL_MAX_EXTENTS));
  format->add_option("--al-extent-size", al_extent_size, "bytes of data an activity log extent covers (power of 2)")
      ->transform(CLI::AsSizeValue(false))
      ->check([](const std::string& v) -> std::string {
        uint64_t n = std::stoull(v);
        if (n < (uint64_t{1} << HRL_AL_MIN_EXTENT_SHIFT) || n > (uint64_t{1} << HRL_AL_MAX_EXTENT_SHIFT) || (n & (n - 1)))
          return "an extent is a power of two from 64 KiB to 1 TiB";
        return {};
      });
  format->add_flag("--force", force, "format over an existing hrl log");
  format->add_flag("--assume-in-sync", fopt.assume_in_sync,
                   "the replica already equals the data device: no initial resync");

  auto* dump = app.add_subcommand("dump", "print the superblock and the records from the tail");
  dump->add_option("log", log_path, "log device or file")->required();
  dump->add_flag("--json", as_json, "machine-readable output");
  dump->add_option("--limit", limit, "print at most N records");

  auto* verify = app.add_subcommand("verify", "check every record and both bitmaps");
  verify->add_option("log", log_path, "log device or file")->required();
  verify->add_flag("--json", as_json, "machine-readable output");

  auto* replay = app.add_subcommand("replay", "apply the records onto a device or image, in log order");
  replay->add_option("log", log_path, "log device or file")->required();
  replay->add_option("target", target_path, "device or image to write")->required();
  replay->add_option("--from-seq", from_seq, "skip records before this sequence number");
  auto* to_seq_opt = replay->add_option("--to-seq", to_seq, "stop after this sequence number");
  replay->add_option("--to-mark", to_mark, "stop after the MARK with this name")->excludes(to_seq_opt);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  LogReaderOptions opt;
  try {
    opt.backend = parse_io_backend_kind(backend);
    if (*format) {
      fopt.al_extent_shift = static_cast<uint32_t>(std::countr_zero(al_extent_size));
      return cmd_format(log_path, data_path, fopt, force);
    }
    if (*dump) return cmd_dump(log_path, as_json, limit, opt);
    if (*verify) return cmd_verify(log_path, as_json, opt);
    if (*replay) return cmd_replay(log_path, target_path, from_seq, to_seq, to_mark, opt);
  } catch (const std::exception& e) {
    fprintf(stderr, "hrl-log: %s\n", e.what());
    return 1;
  }
  return 2;
}
