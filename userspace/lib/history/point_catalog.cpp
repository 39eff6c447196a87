#include "history/point_catalog.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>

namespace hrl {
namespace {

// A prepared statement, finalized however the scope ends.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql, const std::string& path) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &st_, nullptr) != SQLITE_OK)
      throw std::runtime_error(path + ": " + sqlite3_errmsg(db));
  }
  ~Statement() { sqlite3_finalize(st_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  sqlite3_stmt* get() { return st_; }
  bool step(const std::string& path) {
    int r = sqlite3_step(st_);
    if (r == SQLITE_ROW) return true;
    if (r == SQLITE_DONE) return false;
    throw std::runtime_error(path + ": " + sqlite3_errmsg(db_));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
};

}  // namespace

const char* point_kind_name(PointKind k) {
  switch (k) {
    case PointKind::Crash: return "crash-consistent";
    case PointKind::Named: return "named";
    case PointKind::App: return "app-consistent";
  }
  return "?";
}

PointCatalog::PointCatalog(const std::string& path) : path_(path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw std::runtime_error(path + ": " + why);
  }
  sqlite3_busy_timeout(db_, 5000);
  try {
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");  // a point is durable when add() returns
    exec("CREATE TABLE IF NOT EXISTS points (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, kind INTEGER NOT NULL, "
         "name TEXT NOT NULL, created_ns INTEGER NOT NULL)");
  } catch (...) {
    sqlite3_close(db_);
    throw;
  }
}

PointCatalog::~PointCatalog() { sqlite3_close(db_); }

void PointCatalog::exec(const char* sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : "error";
    sqlite3_free(err);
    throw std::runtime_error(path_ + ": " + why);
  }
}

int64_t PointCatalog::add(uint64_t seq, PointKind kind, const std::string& name, uint64_t created_ns) {
  Statement st(db_, "INSERT INTO points (seq, kind, name, created_ns) VALUES (?, ?, ?, ?)", path_);
  sqlite3_bind_int64(st.get(), 1, static_cast<int64_t>(seq));
  sqlite3_bind_int(st.get(), 2, static_cast<int>(kind));
  sqlite3_bind_text(st.get(), 3, name.c_str(), static_cast<int>(name.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(st.get(), 4, static_cast<int64_t>(created_ns));
  st.step(path_);
  return sqlite3_last_insert_rowid(db_);
}

namespace {

RecoveryPoint row_point(sqlite3_stmt* st) {
  RecoveryPoint p;
  p.id = sqlite3_column_int64(st, 0);
  p.seq = static_cast<uint64_t>(sqlite3_column_int64(st, 1));
  int kind = sqlite3_column_int(st, 2);
  p.kind = kind >= 0 && kind <= 2 ? static_cast<PointKind>(kind) : PointKind::Crash;
  const unsigned char* name = sqlite3_column_text(st, 3);
  p.name = name ? reinterpret_cast<const char*>(name) : "";
  p.created_ns = static_cast<uint64_t>(sqlite3_column_int64(st, 4));
  return p;
}

}  // namespace

std::vector<RecoveryPoint> PointCatalog::list() const {
  Statement st(db_, "SELECT id, seq, kind, name, created_ns FROM points ORDER BY seq, id", path_);
  std::vector<RecoveryPoint> out;
  while (st.step(path_)) out.push_back(row_point(st.get()));
  return out;
}

std::optional<RecoveryPoint> PointCatalog::find(int64_t id) const {
  Statement st(db_, "SELECT id, seq, kind, name, created_ns FROM points WHERE id = ?", path_);
  sqlite3_bind_int64(st.get(), 1, id);
  if (!st.step(path_)) return std::nullopt;
  return row_point(st.get());
}

size_t PointCatalog::drop_where(const char* sql, uint64_t value) {
  Statement st(db_, sql, path_);
  // SQLite integers are signed: beyond INT64_MAX every seq and time is below.
  sqlite3_bind_int64(st.get(), 1, static_cast<int64_t>(std::min<uint64_t>(value, INT64_MAX)));
  st.step(path_);
  return static_cast<size_t>(sqlite3_changes(db_));
}

size_t PointCatalog::drop_before(uint64_t seq) { return drop_where("DELETE FROM points WHERE seq < ?", seq); }
size_t PointCatalog::drop_after(uint64_t seq) { return drop_where("DELETE FROM points WHERE seq > ?", seq); }
size_t PointCatalog::drop_created_before(uint64_t ns) {
  return drop_where("DELETE FROM points WHERE created_ns < ?", ns);
}

}  // namespace hrl
