// The catalog of recovery points (design.md, "Recovery points and failover"):
// a SQLite database in WAL mode beside the replica's state, one row per point:
// the record boundary it stands for (seq), its kind and name, when it was
// taken. The secondary writes it; readers (hrlctl points) open their own
// connection, which WAL lets them do while it writes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace hrl {

enum class PointKind { Crash, Named, App };
const char* point_kind_name(PointKind k);

struct RecoveryPoint {
  int64_t id = 0;
  uint64_t seq = 0;  // the image after record seq
  PointKind kind = PointKind::Crash;
  std::string name;
  uint64_t created_ns = 0;  // CLOCK_REALTIME
};

class PointCatalog {
 public:
  explicit PointCatalog(const std::string& path);  // created if missing
  ~PointCatalog();
  PointCatalog(const PointCatalog&) = delete;
  PointCatalog& operator=(const PointCatalog&) = delete;

  int64_t add(uint64_t seq, PointKind kind, const std::string& name, uint64_t created_ns);
  std::vector<RecoveryPoint> list() const;  // oldest first
  std::optional<RecoveryPoint> find(int64_t id) const;
  // Each drop returns how many points went.
  // Drops the points before seq: the images they stand for cannot be rebuilt any more.
  size_t drop_before(uint64_t seq);
  // Drops the points after seq: the replica went back past them (a failover).
  size_t drop_after(uint64_t seq);
  // Drops the points taken before created_ns (retention by age).
  size_t drop_created_before(uint64_t created_ns);

 private:
  void exec(const char* sql) const;
  size_t drop_where(const char* sql, uint64_t value);
  sqlite3* db_ = nullptr;
  std::string path_;
};

// MARK records name their point; an app-consistent one (taken with the file
// system frozen) starts with this prefix.
inline constexpr const char* kAppPointPrefix = "app:";

}  // namespace hrl
