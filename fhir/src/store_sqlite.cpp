// SQLite backend of ResourceStore.
//
// Concurrency: the database runs in WAL mode, so readers never wait for the writer. SQLite allows
// one writer at a time; SqliteStore serialises its own writers with writerMutex_, held from begin()
// until the transaction commits or is destroyed, and every write transaction starts with BEGIN
// IMMEDIATE so another process on the same file waits (busy_timeout) instead of failing half-way.
// Readers take any pooled connection. Each connection keeps its statements prepared
// (SqliteConnection); a statement is reset as soon as its caller is done so no read transaction
// stays open on an idle connection. WAL checkpoints run on a background thread (WalCheckpointer),
// not inside commits.
//
// Search (schema version 3): replaceIndex writes only the index rows that change (see the cost
// model above SqliteTransaction::replaceIndex). query() runs the search engine's SQL on a pooled
// connection (or the transaction's), each connection keeping the statements of the last 64 SQL
// texts prepared; a single statement reads one snapshot. lockKey is a no-op: writers are serialised.
#include "store_sqlite.h"

#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/SQLite/Utility.h>
#include <Poco/Data/Statement.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <climits>
#include <condition_variable>
#include <list>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>

#include "hearth/fhir/error.h"
#include "store_common.h"

namespace hearth::fhir::storeimpl {
namespace {

[[noreturn]] void throwSqlite(sqlite3* db, int rc, const char* what) {
  if ((rc & 0xff) == SQLITE_CONSTRAINT) throw StoreConflict();
  std::string msg = std::string("sqlite ") + what + ": ";
  msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  throw StoreUnavailable(std::move(msg));
}

void execOrThrow(sqlite3* db, const char* sql, const char* what) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = std::string("sqlite ") + what + ": " + (err ? err : sqlite3_errstr(rc));
    sqlite3_free(err);
    if ((rc & 0xff) == SQLITE_CONSTRAINT) throw StoreConflict();
    throw StoreUnavailable(std::move(msg));
  }
}

// Per-connection prepared statements. Index = Stmt.
enum Stmt {
  kRead,
  kVread,
  kCurrent,
  kInsertVersion,
  kUpsertCurrent,
  kBeginImmediate,
  kBeginRead,
  kCommit,
  kRollback,
  kHistSystem,
  kHistSystemSince,
  kHistType,
  kHistTypeSince,
  kHistInstance,
  kHistInstanceSince,
  kCountInstance,
  kHistSystemSinceByTime,
  kHistTypeSinceByTime,
  kSinceProbeSystem,
  kSinceProbeType,
  kSavepoint,
  kReleaseSavepoint,
  kRollbackToSavepoint,
  kStmtCount
};

// Statements of the search index tables, one of each per IndexKind (see indexSql).
enum IndexStmt {
  kIndexSelect,     // the rows of (type, id): rowid, param, value columns
  kIndexDeleteAll,  // every row of (type, id)
  kIndexDeleteRow,  // one row by rowid
  kIndexStmtKinds
};
// An INSERT carries up to this many rows (one statement per kind and row count, prepared on use).
constexpr int kMaxInsertRows = 8;

// A `since` query runs one of two plans. When few versions match (fewer than kSincePlanThreshold,
// counted cheaply on the time index), it collects their seqs from the time index, sorts those
// and fetches the page: cost follows the number of matches. When many match, it walks seq
// newest-first and filters by time: the recent matches sit at the top, so the page fills at once.
// (Walking seq alone would read the whole table whenever fewer than a page match; sorting alone
// would sort everything since an old instant for every page.)
constexpr int kSincePlanThreshold = 2000;

// The SQL of each statement. History statements share their parameters: ?1 before-seq (exclusive),
// ?2 limit, ?3 since (epoch us), ?4 type, ?5 id; each declares only those up to the highest it uses.
#define HIST_COLS "SELECT type, id, version, last_updated, deleted, seq, content, op FROM resource_version "
const char* sqlOf(Stmt s) {
  switch (s) {
    case kRead:
      return "SELECT v.version, v.last_updated, v.deleted, v.seq, v.content, v.op FROM resource_current c "
             "JOIN resource_version v ON v.seq = c.seq WHERE c.type = ?1 AND c.id = ?2";
    case kVread:
      return "SELECT version, last_updated, deleted, seq, content, op FROM resource_version "
             "WHERE type = ?1 AND id = ?2 AND version = ?3";
    case kCurrent:
      return "SELECT version, deleted, last_updated FROM resource_current WHERE type = ?1 AND id = ?2";
    case kInsertVersion:
      return "INSERT INTO resource_version "
             "(type, id, version, last_updated, last_updated_us, deleted, content, op) "
             "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
    case kUpsertCurrent:
      // The WHERE makes the update a compare-and-set: it only moves a pointer that is one version
      // behind, so a writer that skipped current() cannot overwrite a newer version.
      return "INSERT INTO resource_current (type, id, version, deleted, seq, last_updated) "
             "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (type, id) DO UPDATE SET "
             "version = excluded.version, deleted = excluded.deleted, seq = excluded.seq, "
             "last_updated = excluded.last_updated WHERE resource_current.version = excluded.version - 1";
    case kBeginImmediate:
      return "BEGIN IMMEDIATE";
    case kBeginRead:
      return "BEGIN";
    case kCommit:
      return "COMMIT";
    case kRollback:
      return "ROLLBACK";
    case kHistSystem:
      return HIST_COLS "WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2";
    case kHistSystemSince:
      // "+" keeps the planner off the time index: the walk-seq plan (see kSincePlanThreshold).
      return HIST_COLS "WHERE seq < ?1 AND +last_updated_us >= ?3 ORDER BY seq DESC LIMIT ?2";
    case kHistType:
      return HIST_COLS
          "INDEXED BY resource_version_type_seq WHERE type = ?4 AND seq < ?1 ORDER BY seq DESC LIMIT ?2";
    case kHistTypeSince:
      return HIST_COLS
          "INDEXED BY resource_version_type_seq "
          "WHERE type = ?4 AND seq < ?1 AND last_updated_us >= ?3 ORDER BY seq DESC LIMIT ?2";
    case kHistInstance:
      return HIST_COLS "WHERE type = ?4 AND id = ?5 AND seq < ?1 ORDER BY seq DESC LIMIT ?2";
    case kHistInstanceSince:
      return HIST_COLS
          "WHERE type = ?4 AND id = ?5 AND seq < ?1 AND last_updated_us >= ?3 ORDER BY seq DESC LIMIT ?2";
    case kCountInstance:
      return "SELECT count(*) FROM resource_version WHERE type = ?4 AND id = ?5 AND last_updated_us >= ?3";
    case kHistSystemSinceByTime:
      return HIST_COLS
          "WHERE seq IN (SELECT seq FROM resource_version INDEXED BY resource_version_updated "
          "WHERE last_updated_us >= ?3 AND seq < ?1 ORDER BY seq DESC LIMIT ?2) ORDER BY seq DESC";
    case kHistTypeSinceByTime:
      return HIST_COLS
          "WHERE seq IN (SELECT seq FROM resource_version INDEXED BY resource_version_type_updated "
          "WHERE type = ?4 AND last_updated_us >= ?3 AND seq < ?1 ORDER BY seq DESC LIMIT ?2) "
          "ORDER BY seq DESC";
    case kSinceProbeSystem:
      return "SELECT count(*) FROM (SELECT 1 FROM resource_version INDEXED BY resource_version_updated "
             "WHERE last_updated_us >= ?3 AND seq < ?1 LIMIT ?2)";
    case kSinceProbeType:
      return "SELECT count(*) FROM (SELECT 1 FROM resource_version INDEXED BY resource_version_type_updated "
             "WHERE type = ?4 AND last_updated_us >= ?3 AND seq < ?1 LIMIT ?2)";
    case kSavepoint:
      return "SAVEPOINT hearth_unit";
    case kReleaseSavepoint:
      return "RELEASE hearth_unit";
    case kRollbackToSavepoint:
      return "ROLLBACK TO hearth_unit";
    case kStmtCount:
      break;
  }
  return "";
}
#undef HIST_COLS

std::string indexSql(IndexStmt s, int kind) {
  const std::string table = kIndexTables[kind];
  switch (s) {
    case kIndexSelect:
      return "SELECT rowid, param, " + std::string(kIndexValueColumns[kind]) + " FROM " + table +
             " WHERE type = ?1 AND id = ?2";
    case kIndexDeleteAll:
      return "DELETE FROM " + table + " WHERE type = ?1 AND id = ?2";
    case kIndexDeleteRow:
      return "DELETE FROM " + table + " WHERE rowid = ?1";
    case kIndexStmtKinds:
      break;
  }
  return "";
}

// INSERT of `rows` rows into the kind's table: (type, id, param, values...) per row, numbered
// parameters ?1, ?2 ... row after row.
std::string indexInsertSql(int kind, int rows) {
  const int width = 3 + kIndexValueCount[kind];
  std::string sql = "INSERT INTO " + std::string(kIndexTables[kind]) + " (type, id, param, " +
                    kIndexValueColumns[kind] + ") VALUES ";
  for (int r = 0; r < rows; ++r) {
    sql += r ? ", (" : "(";
    for (int c = 0; c < width; ++c) {
      if (c) sql += ", ";
      sql += "?" + std::to_string(r * width + c + 1);
    }
    sql += ")";
  }
  return sql;
}

class SqliteConnection : public NativeConnection {
 public:
  SqliteConnection(Poco::Data::Session& physical, sqlite3* db) : NativeConnection(physical), db_(db) {}

  sqlite3* db() const { return db_; }

  // The prepared statement s, compiled on first use and kept for the connection's life.
  sqlite3_stmt* statement(Stmt s) {
    if (!stmts_[s]) {
      int rc = sqlite3_prepare_v3(db_, sqlOf(s), -1, SQLITE_PREPARE_PERSISTENT, &stmts_[s], nullptr);
      if (rc != SQLITE_OK) {
        stmts_[s] = nullptr;
        throwSqlite(db_, rc, "prepare");
      }
    }
    return stmts_[s];
  }

  // Search index statements, compiled on first use and kept.
  sqlite3_stmt* indexStatement(IndexStmt s, int kind) {
    sqlite3_stmt*& st = indexStmts_[static_cast<size_t>(s)][static_cast<size_t>(kind)];
    if (!st) st = prepare(indexSql(s, kind));
    return st;
  }
  sqlite3_stmt* indexInsert(int kind, int rows) {
    sqlite3_stmt*& st = indexInserts_[static_cast<size_t>(kind)][static_cast<size_t>(rows - 1)];
    if (!st) st = prepare(indexInsertSql(kind, rows));
    return st;
  }

  // The prepared statement of one dynamic read query (query()), from a small LRU cache keyed by
  // the SQL text: the search engine produces a limited number of SQL shapes and repeats them.
  // The statement must be reset before the next call on this connection (it may be evicted).
  // Throws StoreUnavailable for SQL that does not compile or holds more than one statement.
  sqlite3_stmt* cached(const std::string& sql) {
    if (auto it = cacheIndex_.find(sql); it != cacheIndex_.end()) {
      cache_.splice(cache_.begin(), cache_, it->second);  // most recently used first
      return it->second->second;
    }
    sqlite3_stmt* st = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()) + 1, SQLITE_PREPARE_PERSISTENT,
                                &st, &tail);
    if (rc != SQLITE_OK) throw StoreUnavailable(queryError("sqlite", sqlite3_errmsg(db_), sql));
    if (!st) throw StoreUnavailable(queryError("sqlite", "no statement", sql));
    for (; tail && *tail; ++tail) {
      if (!std::isspace(static_cast<unsigned char>(*tail)) && *tail != ';') {
        sqlite3_finalize(st);
        throw StoreUnavailable(queryError("sqlite", "more than one statement", sql));
      }
    }
    if (cache_.size() >= kQueryCacheSize) {
      cacheIndex_.erase(cache_.back().first);
      sqlite3_finalize(cache_.back().second);
      cache_.pop_back();
    }
    cache_.emplace_front(sql, st);
    cacheIndex_.emplace(cache_.front().first, cache_.begin());
    return st;
  }

  // Poco has closed the connection with sqlite3_close_v2, which leaves it open until its last
  // statement is finalized: finalizing ours frees it.
  void dispose() noexcept override {
    for (auto& st : stmts_) {
      if (st) sqlite3_finalize(st);
      st = nullptr;
    }
    for (auto& perKind : indexStmts_)
      for (auto& st : perKind) sqlite3_finalize(std::exchange(st, nullptr));
    for (auto& perKind : indexInserts_)
      for (auto& st : perKind) sqlite3_finalize(std::exchange(st, nullptr));
    for (auto& entry : cache_) sqlite3_finalize(entry.second);
    cacheIndex_.clear();
    cache_.clear();
    NativeConnection::dispose();
  }

 private:
  sqlite3_stmt* prepare(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr);
    if (rc != SQLITE_OK) throwSqlite(db_, rc, "prepare");
    return st;
  }

  static constexpr size_t kQueryCacheSize = 64;
  sqlite3* db_;
  std::array<sqlite3_stmt*, kStmtCount> stmts_{};
  std::array<std::array<sqlite3_stmt*, kIndexKinds>, kIndexStmtKinds> indexStmts_{};
  std::array<std::array<sqlite3_stmt*, kMaxInsertRows>, kIndexKinds> indexInserts_{};
  // Dynamic statements, most recently used first; the index's keys view the list's strings.
  std::list<std::pair<std::string, sqlite3_stmt*>> cache_;
  std::unordered_map<std::string_view, std::list<std::pair<std::string, sqlite3_stmt*>>::iterator> cacheIndex_;
};

// Binds q's values to the statement st (cached on c); the caller resets it (StatementReset).
void bindQuery(SqliteConnection& c, sqlite3_stmt* st, const SqlQuery& q) {
  sqlite3* db = c.db();
  const int declared = sqlite3_bind_parameter_count(st);
  if (declared != static_cast<int>(q.params.size())) {
    throw StoreUnavailable(queryError("sqlite",
                                      "the statement has " + std::to_string(declared) + " placeholders, " +
                                          std::to_string(q.params.size()) + " values given",
                                      q.sql));
  }
  for (int i = 0; i < declared; ++i) {
    const SqlValue& v = q.params[static_cast<size_t>(i)];
    int rc = SQLITE_OK;
    if (const auto* n = std::get_if<int64_t>(&v)) {
      rc = sqlite3_bind_int64(st, i + 1, *n);
    } else if (const auto* d = std::get_if<double>(&v)) {
      rc = sqlite3_bind_double(st, i + 1, *d);
    } else if (const auto* t = std::get_if<std::string>(&v)) {
      rc = sqlite3_bind_text64(st, i + 1, t->data(), t->size(), SQLITE_STATIC, SQLITE_UTF8);
    } else {
      rc = sqlite3_bind_null(st, i + 1);
    }
    if (rc != SQLITE_OK) throw StoreUnavailable(queryError("sqlite", sqlite3_errmsg(db), q.sql));
  }
}

struct StatementReset {
  sqlite3_stmt* st;
  ~StatementReset() {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
  }
};

// One INSERT/UPDATE/DELETE on the integration tables (StoreTransaction::execute).
int64_t runWrite(SqliteConnection& c, const SqlQuery& q) {
  if (!isIntegrationWrite(q.sql)) throw StoreUnavailable(queryError("sqlite", "not an integration-table write", q.sql));
  sqlite3_stmt* st = c.cached(q.sql);
  StatementReset reset{st};
  bindQuery(c, st, q);
  for (;;) {
    const int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) throw StoreUnavailable(queryError("sqlite", sqlite3_errmsg(c.db()), q.sql));
  }
  return static_cast<int64_t>(sqlite3_changes64(c.db()));
}

// Runs one generic read query (ResourceStore::query, StoreTransaction::query) on c and resets the
// statement before returning, so no read transaction stays open. Errors -> StoreUnavailable.
std::vector<SqlRow> runQuery(SqliteConnection& c, const SqlQuery& q) {
  if (!isReadQuery(q.sql)) throw StoreUnavailable(queryError("sqlite", "not a read query", q.sql));
  sqlite3* db = c.db();
  sqlite3_stmt* st = c.cached(q.sql);
  // SELECT ... with a data-modifying CTE, or a function with side effects such as a write: refused.
  if (!sqlite3_stmt_readonly(st)) throw StoreUnavailable(queryError("sqlite", "not a read query", q.sql));
  StatementReset reset{st};
  bindQuery(c, st, q);
  std::vector<SqlRow> rows;
  const int columns = sqlite3_column_count(st);
  for (;;) {
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) throw StoreUnavailable(queryError("sqlite", sqlite3_errmsg(db), q.sql));
    SqlRow& row = rows.emplace_back();
    row.reserve(static_cast<size_t>(columns));
    for (int col = 0; col < columns; ++col) {
      switch (sqlite3_column_type(st, col)) {
        case SQLITE_INTEGER:
          row.emplace_back(static_cast<int64_t>(sqlite3_column_int64(st, col)));
          break;
        case SQLITE_FLOAT:
          row.emplace_back(sqlite3_column_double(st, col));
          break;
        case SQLITE_TEXT: {
          const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, col));
          row.emplace_back(std::string(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(st, col))));
          break;
        }
        case SQLITE_BLOB: {
          const auto* p = static_cast<const char*>(sqlite3_column_blob(st, col));
          const auto n = static_cast<size_t>(sqlite3_column_bytes(st, col));
          row.emplace_back(p ? std::string(p, n) : std::string());
          break;
        }
        default:
          row.emplace_back(std::monostate{});
          break;
      }
    }
  }
  return rows;
}

// One execution of a prepared statement; resets it (ending its implicit read transaction) on exit.
class Running {
 public:
  Running(SqliteConnection& c, Stmt s) : db_(c.db()), st_(c.statement(s)) {}
  Running(SqliteConnection& c, sqlite3_stmt* st) : db_(c.db()), st_(st) {}
  ~Running() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }
  Running(const Running&) = delete;
  Running& operator=(const Running&) = delete;

  // Binds parameter i if the statement declares it. Text and blobs must outlive the execution.
  // (A null data pointer would bind SQL NULL, hence the "".)
  void text(int i, std::string_view v) {
    if (i > sqlite3_bind_parameter_count(st_)) return;
    check(sqlite3_bind_text64(st_, i, v.data() ? v.data() : "", v.size(), SQLITE_STATIC, SQLITE_UTF8));
  }
  void blob(int i, std::string_view v) {
    if (i > sqlite3_bind_parameter_count(st_)) return;
    check(sqlite3_bind_blob64(st_, i, v.data() ? v.data() : "", v.size(), SQLITE_STATIC));
  }
  void int64(int i, int64_t v) {
    if (i <= sqlite3_bind_parameter_count(st_)) check(sqlite3_bind_int64(st_, i, v));
  }
  void real(int i, double v) {
    if (i <= sqlite3_bind_parameter_count(st_)) check(sqlite3_bind_double(st_, i, v));
  }

  // SQLITE_ROW -> true, SQLITE_DONE -> false, anything else throws.
  bool step(const char* what) {
    int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throwSqlite(db_, rc, what);
  }

  int64_t colInt(int c) const { return sqlite3_column_int64(st_, c); }
  double colReal(int c) const { return sqlite3_column_double(st_, c); }
  std::string colBytes(int c) const {
    const void* p = sqlite3_column_blob(st_, c);
    int n = sqlite3_column_bytes(st_, c);
    return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) throwSqlite(db_, rc, "bind");
  }
  sqlite3* db_;
  sqlite3_stmt* st_;
};

// Rolls back the connection's open transaction, if any. Errors are ignored: SQLite may already
// have rolled back by itself after an I/O error.
void rollbackQuietly(SqliteConnection& c) noexcept {
  if (sqlite3_get_autocommit(c.db())) return;
  try {
    Running r(c, kRollback);
    r.step("rollback");
  } catch (...) {
  }
  if (!sqlite3_get_autocommit(c.db())) sqlite3_exec(c.db(), "ROLLBACK", nullptr, nullptr, nullptr);
}

std::string normaliseSynchronous(const std::string& s) {
  std::string up;
  for (char c : s) up.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  if (up == "FULL" || up == "NORMAL" || up == "EXTRA") return up;
  throw StoreUnavailable("sqlite synchronous must be FULL or NORMAL (got '" + s + "')");
}

// ---- Background WAL checkpoints ----------------------------------------------------------------
//
// SQLite's auto-checkpoint runs inside the COMMIT that takes the WAL past 1000 frames: that commit
// copies the WAL into the database file and syncs it, and every write queued behind it waits (the
// tail of commit latency). WalCheckpointer moves this work to a thread with its own connection:
//  - Pool connections carry a WAL hook instead of auto-checkpoint (a hook replaces it). The hook,
//    called after each commit, only notes that there is something to checkpoint.
//  - Every interval with new commits, the thread runs a PASSIVE checkpoint, which neither waits
//    for nor blocks readers and writers: commits go on while it copies and syncs.
//  - SQLite starts the WAL over from its beginning only when a write transaction begins on a WAL
//    that is entirely checkpointed. An idle moment gives that; a steady stream of commits does
//    not (each PASSIVE checkpoint ends behind the commits made while it ran), and the WAL would
//    grow without end. So once the WAL holds restartBytes, the thread first catches up with more
//    PASSIVE runs until one leaves little behind, then takes the store's writer lock and copies
//    that remainder (PASSIVE again, retried for up to kRestartBusyMs while readers of older
//    snapshots finish); SQLite syncs the database file, and the next write finds the whole WAL
//    in it and starts the WAL over (restartWal: why not a RESTART checkpoint). Writers wait for that
//    one short checkpoint (about a millisecond) instead of a full one every 1000 frames. While the
//    thread waits for the writer lock, new write transactions let it go first (waitForRestart);
//    a writer committing in a loop would otherwise take the lock back again and again.
//  - SQLite syncs the database file only at the end of a checkpoint that reached the newest
//    commit, which under steady commits none does; the pages they copied would all be synced by
//    the restart, with writers waiting. So after each PASSIVE run the thread syncs the database
//    file itself (through SQLite's VFS), and the restart only has its own few pages to sync.
//  - A reader holding an old snapshot (a long read in another process) pins the WAL: no checkpoint
//    gets past it, with or without auto-checkpoint. A restart that fails is retried with backoff
//    (1 s doubling to 30 s) so writers are not held back again and again meanwhile; once the reader
//    is gone the next restart succeeds, and journal_size_limit (2 x restartBytes) trims the file.
// Durability is unchanged: each commit still syncs the WAL (synchronous FULL), and a checkpoint
// syncs the database file before the frames it copied can be overwritten, as SQLite's own does.
//
// Threading: the hook runs on committing threads and touches one atomic. The thread owns its
// connection; it takes the writer lock only for a restart, and holds none of its own mutexes then.
class WalCheckpointer {
 public:
  struct Settings {
    std::chrono::milliseconds interval{100};
    int64_t restartBytes = int64_t{64} << 20;
  };
  // How long a restart waits for readers of older snapshots (they take microseconds), polling
  // every kRestartPollUs; writers are held back meanwhile.
  static constexpr int kRestartBusyMs = 20;
  static constexpr int kRestartPollUs = 100;
  static constexpr std::chrono::milliseconds kRestartLockWait{1000};
  // Catching up before a restart: PASSIVE runs until one leaves fewer frames than this behind.
  static constexpr int kRestartRemainderFrames = 256;
  static constexpr int kMaxCatchUpRuns = 4;

  WalCheckpointer(std::timed_mutex& writerMutex, Settings settings)
      : writerMutex_(writerMutex), settings_(settings) {}
  ~WalCheckpointer() {
    stop();
    if (db_) sqlite3_close_v2(db_);  // the last connection to close checkpoints and removes the WAL
  }
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // Hands the checkpoints of pool connection db to this checkpointer. Throws StoreUnavailable.
  void watch(sqlite3* db) {
    sqlite3_wal_hook(db, &WalCheckpointer::onCommit, this);
    execOrThrow(db, ("PRAGMA journal_size_limit = " + std::to_string(2 * settings_.restartBytes)).c_str(),
                "configure");
  }

  // Opens the checkpointer's connection to path (a database already in WAL mode) with the store's
  // synchronous setting, and starts the thread. Throws StoreUnavailable.
  void start(const std::string& path, const std::string& synchronous) {
    int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr);
    if (rc != SQLITE_OK) throwSqlite(db_, rc, "opening the checkpoint connection");
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_handler(db_, &WalCheckpointer::pollBriefly, nullptr);  // PASSIVE never waits
    execOrThrow(db_, ("PRAGMA synchronous = " + synchronous).c_str(), "configure");
    // A read opens the WAL on this connection (a checkpoint does nothing on a connection that
    // has not); the page size turns bytes into frames.
    execOrThrow(db_, "SELECT count(*) FROM sqlite_master", "opening the checkpoint connection");
    sqlite3_stmt* st = nullptr;
    rc = sqlite3_prepare_v2(db_, "PRAGMA page_size", -1, &st, nullptr);
    int64_t pageSize = 0;
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) pageSize = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (pageSize <= 0) throwSqlite(db_, rc == SQLITE_OK ? SQLITE_ERROR : rc, "reading the page size");
    restartFrames_ = std::max<int64_t>(1, settings_.restartBytes / pageSize);
    thread_ = std::thread([this] { loop(); });
  }

  // Called by a write transaction before it takes the writer lock: while a restart is waiting for
  // that lock, waits (until deadline at most) for the restart to be done. One atomic load otherwise.
  void waitForRestart(std::chrono::steady_clock::time_point deadline) {
    if (!restartWaiting_.load(std::memory_order_acquire)) return;
    std::unique_lock lock(gateMutex_);
    gateCv_.wait_until(lock, deadline, [this] { return !restartWaiting_.load(std::memory_order_acquire); });
  }

  // Stops and joins the thread; a checkpoint under way finishes first. Idempotent.
  void stop() noexcept {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  static int onCommit(void* self, sqlite3*, const char*, int) {
    static_cast<WalCheckpointer*>(self)->committed_.store(true, std::memory_order_relaxed);
    return SQLITE_OK;
  }

  // Busy handler of the checkpoint connection: polls finely for kRestartBusyMs, where SQLite's
  // default handler would sleep 1, 2, 5, 10 ... ms between attempts.
  static int pollBriefly(void*, int attempts) {
    if (attempts >= kRestartBusyMs * 1000 / kRestartPollUs) return 0;
    std::this_thread::sleep_for(std::chrono::microseconds(kRestartPollUs));
    return 1;
  }

  struct Result {
    bool ok = false;
    int frames = 0;  // frames in the WAL
    int left = 0;    // of those, not yet in the database file
  };
  Result checkpoint(int mode) {
    Result r;
    int copied = 0;
    r.ok = sqlite3_wal_checkpoint_v2(db_, nullptr, mode, &r.frames, &copied) == SQLITE_OK;
    r.left = r.ok ? std::max(0, r.frames - copied) : r.frames;
    return r;
  }

  // A PASSIVE checkpoint with the database file synced afterwards (see the class comment). Cheap
  // when SQLite has synced it already.
  Result checkpointAndSync() {
    Result r = checkpoint(SQLITE_CHECKPOINT_PASSIVE);
    sqlite3_file* file = nullptr;
    if (sqlite3_file_control(db_, "main", SQLITE_FCNTL_FILE_POINTER, &file) == SQLITE_OK && file &&
        file->pMethods) {
      file->pMethods->xSync(file, SQLITE_SYNC_NORMAL);  // a failure shows again in the next checkpoint
    }
    return r;
  }

  void loop() {
    using Clock = std::chrono::steady_clock;
    std::chrono::seconds backoff{0};
    Clock::time_point nextRestart{};
    bool behind = false;  // the last checkpoint left frames behind (readers, or another checkpointer)
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait_for(lock, settings_.interval, [this] { return stop_; });
      if (stop_) return;
      if (!committed_.exchange(false, std::memory_order_relaxed) && !behind) continue;
      lock.unlock();
      Result r = checkpointAndSync();
      behind = !r.ok || r.left > 0;
      if (r.ok && r.frames >= restartFrames_ && Clock::now() >= nextRestart) {
        for (int i = 0; i < kMaxCatchUpRuns && r.ok && r.left >= kRestartRemainderFrames; ++i) {
          r = checkpointAndSync();
        }
        if (restartWal()) {
          backoff = std::chrono::seconds(0);
          behind = false;
        } else {
          backoff = std::clamp(backoff * 2, std::chrono::seconds(1), std::chrono::seconds(30));
          nextRestart = Clock::now() + backoff;
        }
      }
      lock.lock();
    }
  }

  // Checkpoints everything with writers held back, so that the next write transaction finds
  // every frame in the database file and starts the WAL over itself. PASSIVE, repeated while
  // readers of older snapshots still need frames (they take microseconds; up to kRestartBusyMs),
  // rather than RESTART: a RESTART starts the WAL over here, under a new header, and every other
  // connection then drops its whole page cache, the writer's included; when the writer starts
  // the WAL over itself it keeps its cache (the upper levels of the index B-trees).
  bool restartWal() {
    restartWaiting_.store(true, std::memory_order_release);
    bool done = false;
    {
      std::unique_lock writer(writerMutex_, std::defer_lock);
      if (writer.try_lock_for(kRestartLockWait)) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kRestartBusyMs);
        for (;;) {
          const Result r = checkpoint(SQLITE_CHECKPOINT_PASSIVE);
          done = r.ok && r.left == 0;  // SQLite synced the database file: it reached the newest commit
          if (done || !r.ok || std::chrono::steady_clock::now() >= deadline) break;
          std::this_thread::sleep_for(std::chrono::microseconds(kRestartPollUs));
        }
      }
    }
    {
      std::lock_guard lock(gateMutex_);
      restartWaiting_.store(false, std::memory_order_release);
    }
    gateCv_.notify_all();
    return done;
  }

  std::timed_mutex& writerMutex_;
  const Settings settings_;
  int64_t restartFrames_ = 1;
  sqlite3* db_ = nullptr;  // used by the thread only (and by start/destructor around it)
  std::atomic<bool> committed_{false};
  std::atomic<bool> restartWaiting_{false};  // a restart wants the writer lock; cleared under gateMutex_
  std::mutex gateMutex_;
  std::condition_variable gateCv_;
  std::mutex mu_;  // guards stop_
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

std::string resourceKey(std::string_view type, std::string_view id) {
  std::string key;
  key.reserve(type.size() + 1 + id.size());
  key.append(type).push_back('\0');
  key.append(id);
  return key;
}

// True if a reference row's url is just its target as Type/id (stored as '' since schema 10).
bool isLocalReferenceUrl(const IndexRow& row) {
  return !row.refId.empty() && row.url.size() == row.refType.size() + 1 + row.refId.size() &&
         row.url.compare(0, row.refType.size(), row.refType) == 0 && row.url[row.refType.size()] == '/' &&
         row.url.compare(row.refType.size() + 1, std::string::npos, row.refId) == 0;
}

// Binds the value columns of row (of its kind) from parameter `at` on.
void bindIndexValues(Running& r, int at, const IndexRow& row) {
  switch (row.kind) {
    case IndexKind::String:
      r.text(at, row.text);
      r.text(at + 1, row.exact);
      break;
    case IndexKind::Token:
      r.text(at, row.system);
      r.text(at + 1, row.code);
      r.text(at + 2, row.text);
      break;
    case IndexKind::Date:
      r.int64(at, row.lo);
      r.int64(at + 1, row.hi);
      break;
    case IndexKind::Number:
      r.real(at, row.value);
      break;
    case IndexKind::Quantity:
      r.text(at, row.system);
      r.text(at + 1, row.code);
      r.text(at + 2, row.unit);
      r.real(at + 3, row.value);
      break;
    case IndexKind::Reference:
      r.text(at, row.refType);
      r.text(at + 1, row.refId);
      // Schema version 10: no url for a plain local reference (it is target_type/target_id).
      if (isLocalReferenceUrl(row)) {
        r.text(at + 2, std::string_view());
      } else {
        r.text(at + 2, row.url);
      }
      break;
    case IndexKind::Uri:
      r.text(at, row.text);
      break;
  }
}

// A row of kind k as kIndexSelect returns it (column 1 param, then the value columns).
IndexRow readIndexRow(const Running& r, int kind) {
  IndexRow row;
  row.kind = static_cast<IndexKind>(kind);
  row.param = r.colBytes(1);
  switch (row.kind) {
    case IndexKind::String:
      row.text = r.colBytes(2);
      row.exact = r.colBytes(3);
      break;
    case IndexKind::Token:
      row.system = r.colBytes(2);
      row.code = r.colBytes(3);
      row.text = r.colBytes(4);
      break;
    case IndexKind::Date:
      row.lo = r.colInt(2);
      row.hi = r.colInt(3);
      break;
    case IndexKind::Number:
      row.value = r.colReal(2);
      break;
    case IndexKind::Quantity:
      row.system = r.colBytes(2);
      row.code = r.colBytes(3);
      row.unit = r.colBytes(4);
      row.value = r.colReal(5);
      break;
    case IndexKind::Reference:
      row.refType = r.colBytes(2);
      row.refId = r.colBytes(3);
      row.url = r.colBytes(4);
      if (row.url.empty() && !row.refId.empty()) row.url = row.refType + "/" + row.refId;
      break;
    case IndexKind::Uri:
      row.text = r.colBytes(2);
      break;
  }
  return row;
}

class SqliteStore;

class SqliteTransaction final : public StoreTransaction {
 public:
  // syncOnCommit: commit() syncs the WAL itself (the store's synchronous=FULL, with connections
  // at NORMAL so that commitUnsynced() can skip the sync).
  SqliteTransaction(std::timed_mutex& writerMutex, WalCheckpointer& checkpointer, ConnectionPool& pool,
                    std::chrono::milliseconds wait, bool syncOnCommit);
  ~SqliteTransaction() override;

  std::optional<CurrentVersion> current(std::string_view type, std::string_view id) override;
  void put(StoredVersion& v) override;
  void commit() override { finish(syncOnCommit_); }
  void commitUnsynced() override { finish(false); }
  void savepoint() override { step(kSavepoint, "savepoint"); }
  void releaseSavepoint() override { step(kReleaseSavepoint, "release savepoint"); }
  // ROLLBACK TO keeps the savepoint open; releasing it too keeps the nesting at one level.
  void rollbackToSavepoint() override {
    fresh_.clear();  // a rolled-back create may have been among them: take nothing for fresh now
    step(kRollbackToSavepoint, "rollback to savepoint");
    step(kReleaseSavepoint, "release savepoint");
  }
  void replaceIndex(std::string_view type, std::string_view id, const std::vector<IndexRow>& rows) override;
  std::vector<SqlRow> query(const SqlQuery& q) override {
    return guarded("sqlite query", [&] { return runQuery(conn(), q); });
  }
  int64_t execute(const SqlQuery& q) override {
    return guarded("sqlite execute", [&] { return runWrite(conn(), q); });
  }
  // Nothing to do: the store has one writer at a time (writerMutex_ in this process, BEGIN
  // IMMEDIATE across processes), held until this transaction ends, so no other check-then-write
  // can interleave with this one whatever its key.
  void lockKey(std::string_view) override {}

 private:
  void step(Stmt s, const char* what) {
    guarded("sqlite savepoint", [&] {
      Running r(conn(), s);
      r.step(what);
    });
  }
  SqliteConnection& conn() {
    if (!open_) throw StoreUnavailable("sqlite: transaction already finished");
    return lease_.conn<SqliteConnection>();
  }

  void finish(bool sync);

  std::unique_lock<std::timed_mutex> writer_;
  ConnectionPool::Lease lease_;
  bool open_ = false;
  bool syncOnCommit_ = false;
  // Index bookkeeping (replaceIndex): resources this transaction created (put() of version 1)
  // whose index it has not written yet, so there is nothing to replace; and resources whose index
  // it wrote otherwise, which a later put() of version 1 must not take for fresh. Keys: type NUL id.
  std::unordered_set<std::string> fresh_, indexed_;
};

SqliteTransaction::SqliteTransaction(std::timed_mutex& writerMutex, WalCheckpointer& checkpointer,
                                     ConnectionPool& pool, std::chrono::milliseconds wait, bool syncOnCommit)
    : writer_(writerMutex, std::defer_lock), syncOnCommit_(syncOnCommit) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  checkpointer.waitForRestart(deadline);
  if (!writer_.try_lock_until(deadline)) throw StoreUnavailable("sqlite: timed out waiting for the write lock");
  lease_ = pool.acquire();
  guarded("sqlite begin", [&] {
    Running r(lease_.conn<SqliteConnection>(), kBeginImmediate);
    r.step("begin");
  });
  open_ = true;
}

SqliteTransaction::~SqliteTransaction() {
  if (open_) rollbackQuietly(lease_.conn<SqliteConnection>());
}

std::optional<CurrentVersion> SqliteTransaction::current(std::string_view type, std::string_view id) {
  return guarded("sqlite current", [&]() -> std::optional<CurrentVersion> {
    Running r(conn(), kCurrent);
    r.text(1, type);
    r.text(2, id);
    if (!r.step("current")) return std::nullopt;
    CurrentVersion cv;
    cv.version = r.colInt(0);
    cv.deleted = r.colInt(1) != 0;
    cv.lastUpdated = r.colBytes(2);
    return cv;
  });
}

void SqliteTransaction::put(StoredVersion& v) {
  const int64_t us = checkPutArgument(v);
  guarded("sqlite put", [&] {
    SqliteConnection& c = conn();
    {
      Running r(c, kInsertVersion);
      r.text(1, v.type);
      r.text(2, v.id);
      r.int64(3, v.version);
      r.text(4, v.lastUpdated);
      r.int64(5, us);
      r.int64(6, v.deleted ? 1 : 0);
      r.blob(7, v.json);
      r.int64(8, writeOpColumn(v.op));
      r.step("insert version");
    }
    int64_t seq = sqlite3_last_insert_rowid(c.db());
    {
      Running r(c, kUpsertCurrent);
      r.text(1, v.type);
      r.text(2, v.id);
      r.int64(3, v.version);
      r.int64(4, v.deleted ? 1 : 0);
      r.int64(5, seq);
      r.text(6, v.lastUpdated);
      r.step("update current");
    }
    if (sqlite3_changes(c.db()) != 1) throw StoreConflict();
    v.seq = seq;
    // Version 1 exists only if no version did before: the resource has no index rows yet.
    if (v.version == 1) {
      std::string key = resourceKey(v.type, v.id);
      if (!indexed_.count(key)) fresh_.insert(std::move(key));
    }
  });
}

// Cost model: every index row is a b-tree insert into its table plus one into each of the table's
// indexes (2-4), and each of those is a seek with record comparisons from the root. So the work
// done is kept to the rows that change:
//  - a resource this transaction created has no rows yet: nothing to find or delete;
//  - a kind without new rows (all kinds for a deletion) deletes by (type, id) in one statement;
//  - otherwise the stored rows are read and compared with the new ones, and only rows that
//    vanished are deleted (by rowid) and only new ones inserted; an update usually leaves most
//    rows as they were (and a reindex nearly all), which then costs a read instead of two writes.
// Inserts go up to kMaxInsertRows per statement: one statement execution per kind instead of per row.
void SqliteTransaction::replaceIndex(std::string_view type, std::string_view id,
                                     const std::vector<IndexRow>& rows) {
  guarded("sqlite index", [&] {
    SqliteConnection& c = conn();
    std::string key = resourceKey(type, id);
    const bool fresh = fresh_.erase(key) > 0;
    if (!fresh) indexed_.insert(std::move(key));

    // The rows to store, per kind, in storedLess order (equal rows stay: duplicates are kept as given).
    std::array<std::vector<const IndexRow*>, kIndexKinds> wanted;
    for (const IndexRow& row : rows) {
      if (indexable(row)) wanted[static_cast<size_t>(indexKindSlot(row.kind))].push_back(&row);
    }
    for (int k = 0; k < kIndexKinds; ++k) {
      auto& want = wanted[static_cast<size_t>(k)];
      std::vector<char> kept(want.size(), 0);  // 1 = already stored
      if (!fresh && want.empty()) {
        Running r(c, c.indexStatement(kIndexDeleteAll, k));
        r.text(1, type);
        r.text(2, id);
        r.step("index delete");
        continue;
      }
      if (!fresh) {
        std::sort(want.begin(), want.end(), [](const IndexRow* a, const IndexRow* b) { return storedLess(*a, *b); });
        std::vector<int64_t> stale;
        {
          Running r(c, c.indexStatement(kIndexSelect, k));
          r.text(1, type);
          r.text(2, id);
          while (r.step("index read")) {
            const IndexRow old = readIndexRow(r, k);
            auto it = std::lower_bound(want.begin(), want.end(), &old,
                                       [](const IndexRow* a, const IndexRow* b) { return storedLess(*a, *b); });
            size_t at = static_cast<size_t>(it - want.begin());
            while (at < want.size() && kept[at] && storedEqual(*want[at], old)) ++at;
            if (at < want.size() && storedEqual(*want[at], old)) {
              kept[at] = 1;
            } else {
              stale.push_back(r.colInt(0));
            }
          }
        }
        for (int64_t rowid : stale) {
          Running r(c, c.indexStatement(kIndexDeleteRow, k));
          r.int64(1, rowid);
          r.step("index delete");
        }
      }
      // Insert what is not stored yet, kMaxInsertRows at a time.
      const int width = 3 + kIndexValueCount[k];
      size_t next = 0;
      while (true) {
        std::array<const IndexRow*, kMaxInsertRows> batch{};
        int n = 0;
        for (; next < want.size() && n < kMaxInsertRows; ++next) {
          if (!kept[next]) batch[static_cast<size_t>(n++)] = want[next];
        }
        if (n == 0) break;
        Running r(c, c.indexInsert(k, n));
        for (int i = 0; i < n; ++i) {
          const int at = i * width + 1;
          r.text(at, type);
          r.text(at + 1, id);
          r.text(at + 2, batch[static_cast<size_t>(i)]->param);
          bindIndexValues(r, at + 3, *batch[static_cast<size_t>(i)]);
        }
        r.step("index insert");
      }
    }
  });
}

void SqliteTransaction::finish(bool sync) {
  guarded("sqlite commit", [&] {
    Running r(conn(), kCommit);
    r.step("commit");
  });
  if (sync) {
    // What synchronous=FULL does at the end of a WAL commit: sync the WAL file, which holds this
    // commit's frames and those of every unsynced commit before it.
    sqlite3* db = lease_.conn<SqliteConnection>().db();
    sqlite3_file* wal = nullptr;
    int rc = sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal);
    if (rc == SQLITE_OK && wal && wal->pMethods) rc = wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL);
    if (rc != SQLITE_OK) {
      open_ = false;
      lease_.reset();
      writer_.unlock();
      throw StoreUnavailable("sqlite: syncing the WAL after commit failed (code " + std::to_string(rc) + ")");
    }
  }
  open_ = false;
  lease_.reset();
  writer_.unlock();
}

class SqliteStore final : public ResourceStore {
 public:
  SqliteStore(std::string path, const StoreOptions& options);
  // Stops the checkpointer before the pool's connections close (they reference it in their hook).
  ~SqliteStore() override { checkpointer_.stop(); }

  std::unique_ptr<StoreTransaction> begin() override {
    return std::make_unique<SqliteTransaction>(writerMutex_, checkpointer_, *writerPool_, wait_, synchronous_ == "FULL");
  }
  std::optional<StoredVersion> read(std::string_view type, std::string_view id) override;
  std::optional<StoredVersion> vread(std::string_view type, std::string_view id, int64_t version) override;
  HistoryPage history(const HistoryQuery& q) override;
  bool healthy() override;
  // Both pools: the write connection counts against store.pool.max like the readers.
  StorePoolStats poolStats() override {
    StorePoolStats r = pool_->stats();
    const StorePoolStats w = writerPool_->stats();
    r.capacity += w.capacity;
    r.allocated += w.allocated;
    r.idle += w.idle;
    r.inUse += w.inUse;
    return r;
  }
  std::string backendName() const override { return "sqlite"; }
  SqlDialect dialect() const override { return SqlDialect::Sqlite; }
  std::vector<SqlRow> query(const SqlQuery& q) override;

 private:
  std::unique_ptr<NativeConnection> attach(Poco::Data::Session& physical, bool writer);
  void migrate();

  std::string synchronous_;
  int busyTimeoutMs_;
  std::chrono::milliseconds wait_;
  std::timed_mutex writerMutex_;  // held by the one live write transaction (and a WAL restart)
  int readerCacheMb_, writerCacheMb_;
  int64_t mmapBytes_;
  WalCheckpointer checkpointer_;  // outlives the pools: their connections call into it
  // Readers. SQLite drops a connection's whole page cache when it begins a transaction after
  // another connection committed, so under a steady write load a reader's cache holds only what
  // its current statement touched. (store.sqlite.mmap-mb would read from the OS page cache
  // without the copy; measured slower on this project's benchmarks, so off by default.)
  std::unique_ptr<ConnectionPool> pool_;
  // The one write connection (every SqliteTransaction and migrations, always under writerMutex_):
  // its own commits do not invalidate its cache, so the upper levels of the index B-trees stay
  // in memory from one write to the next (store.sqlite.writer-cache-mb). With writes spread over
  // the reader pool, every write began cold and read its pages back from the OS (the bulk-import
  // profile: most of the writer's time in pread, malloc and memcpy of pages). The writer starts
  // the WAL over itself (WalCheckpointer::restartWal), which keeps its cache.
  std::unique_ptr<ConnectionPool> writerPool_;
};

WalCheckpointer::Settings checkpointSettings(const StoreOptions& o) {
  WalCheckpointer::Settings s;
  s.interval = std::chrono::milliseconds(std::max(1, o.sqliteCheckpointIntervalMs));
  s.restartBytes = std::max<int64_t>(64 * 1024, int64_t{o.sqliteWalRestartKb} * 1024);
  return s;
}

void* sqliteHandle(Poco::Data::Session& s) { return Poco::Data::SQLite::Utility::dbHandle(s); }

// Process-wide SQLite settings, applied once before SQLite initialises, i.e. before the first
// connection of any kind, openSqliteStore's probe included (sqlite3_config refuses with
// SQLITE_MISUSE once SQLite is initialised):
//  - multi-thread mode: a connection is only ever used by one thread at a time (the pools lease
//    it, the checkpointer has its own), so SQLite's per-connection mutexes only cost;
//  - no memory statistics, which take a global mutex on every allocation;
//  - statement journals (the sub-journal of every savepoint: each unit of a commit group runs in
//    one) kept in memory up to kStatementJournalSpill, in ONE allocation of that size, before they
//    spill to a temporary file. With temp_store=MEMORY instead, SQLite keeps them in 1 KiB chunks,
//    allocated page copy by page copy and freed together at each RELEASE: hundreds of
//    malloc/free per HL7 message, which also left glibc's free lists so fragmented that unrelated
//    small allocations slowed down (perf, one-connection ADT: ~25 % of the group writer's time in
//    malloc/free). The write connection therefore keeps temp_store at its default (see attach()).
constexpr int kStatementJournalSpill = 4 << 20;
void configureSqliteProcess() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Refused harmlessly if something else in the process initialised SQLite first: it keeps its
    // defaults (serialized mode, memory statistics), which is correct, only slower.
    sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, kStatementJournalSpill);
    Poco::Data::SQLite::Connector::registerConnector();
  });
}

SqliteStore::SqliteStore(std::string path, const StoreOptions& options)
    : synchronous_(normaliseSynchronous(options.sqliteSynchronous)),
      busyTimeoutMs_(std::max(0, options.busyTimeoutMs)),
      wait_(std::max(1, options.busyTimeoutMs)),
      readerCacheMb_(std::max(1, options.sqliteCacheMb)),
      writerCacheMb_(std::max(1, options.sqliteWriterCacheMb)),
      mmapBytes_(int64_t{std::max(0, options.sqliteMmapMb)} * 1024 * 1024),
      checkpointer_(writerMutex_, checkpointSettings(options)) {
  configureSqliteProcess();
  if (options.sqliteWalWriteBuffer) installWalWriteBuffer();

  ConnectionPoolConfig cfg;
  cfg.connector = "sqlite";
  cfg.connectionString = path;
  cfg.acquireTimeout = wait_;
  cfg.handleOf = sqliteHandle;
  // The write connection is one of store.pool.max: the readers get the rest (at least one).
  cfg.maxSessions = std::max(1, options.poolMax - 1);
  cfg.minSessions = std::clamp(options.poolMin - 1, 1, cfg.maxSessions);
  ConnectionPoolConfig writerCfg = cfg;
  writerCfg.minSessions = 1;
  writerCfg.maxSessions = 1;
  writerCfg.attach = [this](Poco::Data::Session& s) { return attach(s, true); };
  writerPool_ = std::make_unique<ConnectionPool>(std::move(writerCfg));
  cfg.attach = [this](Poco::Data::Session& s) { return attach(s, false); };
  pool_ = std::make_unique<ConnectionPool>(std::move(cfg));
  migrate();
  checkpointer_.start(path, synchronous_);
  pool_->warmUp();
}

std::unique_ptr<NativeConnection> SqliteStore::attach(Poco::Data::Session& physical, bool writer) {
  sqlite3* db = Poco::Data::SQLite::Utility::dbHandle(physical);
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, busyTimeoutMs_);
  // WAL is a property of the file: the first connection switches it, later ones just confirm.
  // While another process or node is switching it or running the WAL recovery, SQLite answers
  // SQLITE_BUSY here without calling the busy handler (several nodes starting at once on a new
  // file): retry for up to the busy timeout.
  {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(busyTimeoutMs_, 100));
    for (int attempt = 0;; ++attempt) {
      sqlite3_stmt* st = nullptr;
      int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, nullptr);
      std::string mode;
      if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
          mode = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
          rc = SQLITE_OK;
        }
      }
      sqlite3_finalize(st);
      if (mode == "wal") break;
      const int primary = rc & 0xFF;
      if ((primary == SQLITE_BUSY || primary == SQLITE_LOCKED) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min(2 + attempt * 2, 50)));
        continue;
      }
      throwSqlite(db, rc == SQLITE_OK ? SQLITE_ERROR : rc, "switching to WAL");
    }
  }
  // FULL is kept by SqliteTransaction::commit() syncing the WAL itself; the connection runs at
  // NORMAL so that commitUnsynced() can leave the sync out (GroupCommitter's applied groups).
  execOrThrow(db, ("PRAGMA synchronous = " + std::string(synchronous_ == "FULL" ? "NORMAL" : synchronous_)).c_str(),
              "configure");
  execOrThrow(db, "PRAGMA foreign_keys = OFF", "configure");
  // Sort scratch and temporary B-trees of the readers in memory. Not on the write connection: there
  // temp_store=MEMORY would also put savepoint sub-journals in 1 KiB chunks (see
  // configureSqliteProcess: they stay in memory up to kStatementJournalSpill anyway; with
  // SQLite's own 64 KiB default they spilled to a temporary file per unit, a third of the group
  // writer's time in pwrite).
  if (!writer) execOrThrow(db, "PRAGMA temp_store = MEMORY", "configure");
  // Page cache (allocated lazily, as pages are used): store.sqlite.cache-mb per reader,
  // store.sqlite.writer-cache-mb for the write connection, whose cache survives from one
  // transaction to the next (see writerPool_). SQLite's default is 2 MiB.
  execOrThrow(db, ("PRAGMA cache_size = -" + std::to_string(int64_t{writer ? writerCacheMb_ : readerCacheMb_} * 1024)).c_str(),
              "configure");
  if (mmapBytes_ > 0) {
    execOrThrow(db, ("PRAGMA mmap_size = " + std::to_string(mmapBytes_)).c_str(), "configure");
  }
  checkpointer_.watch(db);
  return std::make_unique<SqliteConnection>(physical, db);
}

void SqliteStore::migrate() {
  std::unique_lock writer(writerMutex_);
  auto lease = writerPool_->acquire();
  SqliteConnection& c = lease.conn<SqliteConnection>();
  sqlite3* db = c.db();
  const auto& steps = sqliteMigrations();
  const int newest = steps.empty() ? 0 : steps.back().version;
  for (const Migration& m : steps) {
    execOrThrow(db, "BEGIN IMMEDIATE", "migration");
    try {
      execOrThrow(db,
                  "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                  "name TEXT NOT NULL, applied_at TEXT NOT NULL)",
                  "migration");
      sqlite3_stmt* st = nullptr;
      int64_t applied = 0, maxApplied = 0;
      int rc = sqlite3_prepare_v2(db,
                                  "SELECT coalesce(max(version), 0), coalesce(sum(version = ?1), 0) "
                                  "FROM schema_migrations",
                                  -1, &st, nullptr);
      if (rc != SQLITE_OK) throwSqlite(db, rc, "migration");
      sqlite3_bind_int(st, 1, m.version);
      rc = sqlite3_step(st);
      if (rc == SQLITE_ROW) {
        maxApplied = sqlite3_column_int64(st, 0);
        applied = sqlite3_column_int64(st, 1);
      }
      sqlite3_finalize(st);
      if (rc != SQLITE_ROW) throwSqlite(db, rc, "migration");
      if (maxApplied > newest) {
        throw StoreUnavailable("sqlite: database schema version " + std::to_string(maxApplied) +
                               " is newer than this build supports (" + std::to_string(newest) + ")");
      }
      if (!applied) {
        execOrThrow(db, m.sql, "migration");
        rc = sqlite3_prepare_v2(
            db, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)", -1, &st,
            nullptr);
        if (rc != SQLITE_OK) throwSqlite(db, rc, "migration");
        std::string now = nowInstant();
        sqlite3_bind_int(st, 1, m.version);
        sqlite3_bind_text(st, 2, m.name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, now.c_str(), -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) throwSqlite(db, rc, "migration");
      }
      execOrThrow(db, "COMMIT", "migration");
    } catch (const StoreConflict&) {
      rollbackQuietly(c);
      throw StoreUnavailable("sqlite: migration " + std::to_string(m.version) + " failed");
    } catch (...) {
      rollbackQuietly(c);
      throw;
    }
  }
}

std::optional<StoredVersion> SqliteStore::read(std::string_view type, std::string_view id) {
  return guarded("sqlite read", [&]() -> std::optional<StoredVersion> {
    auto lease = pool_->acquire();
    Running r(lease.conn<SqliteConnection>(), kRead);
    r.text(1, type);
    r.text(2, id);
    if (!r.step("read")) return std::nullopt;
    StoredVersion v;
    v.type = type;
    v.id = id;
    v.version = r.colInt(0);
    v.lastUpdated = r.colBytes(1);
    v.deleted = r.colInt(2) != 0;
    v.seq = r.colInt(3);
    v.json = r.colBytes(4);
    v.op = writeOpFromColumn(r.colInt(5), v.version, v.deleted);
    return v;
  });
}

std::optional<StoredVersion> SqliteStore::vread(std::string_view type, std::string_view id, int64_t version) {
  return guarded("sqlite vread", [&]() -> std::optional<StoredVersion> {
    auto lease = pool_->acquire();
    Running r(lease.conn<SqliteConnection>(), kVread);
    r.text(1, type);
    r.text(2, id);
    r.int64(3, version);
    if (!r.step("vread")) return std::nullopt;
    StoredVersion v;
    v.type = type;
    v.id = id;
    v.version = r.colInt(0);
    v.lastUpdated = r.colBytes(1);
    v.deleted = r.colInt(2) != 0;
    v.seq = r.colInt(3);
    v.json = r.colBytes(4);
    v.op = writeOpFromColumn(r.colInt(5), v.version, v.deleted);
    return v;
  });
}

HistoryPage SqliteStore::history(const HistoryQuery& q) {
  const HistoryScope scope = historyScope(q);
  const int64_t since = sinceMicros(q);
  const int limit = historyLimit(q);
  const int64_t before = q.beforeSeq.value_or(INT64_MAX);
  return guarded("sqlite history", [&] {
    auto lease = pool_->acquire();
    SqliteConnection& c = lease.conn<SqliteConnection>();
    HistoryPage page;
    const bool withTotal = scope == HistoryScope::Instance;
    // The count and the page come from one snapshot.
    if (withTotal) Running(c, kBeginRead).step("history");
    try {
      Stmt s = scope == HistoryScope::System ? kHistSystem
               : scope == HistoryScope::Type ? kHistType
                                             : kHistInstance;
      if (q.since) s = static_cast<Stmt>(s + 1);
      if (q.since && scope != HistoryScope::Instance) {
        Running probe(c, scope == HistoryScope::System ? kSinceProbeSystem : kSinceProbeType);
        probe.int64(1, before);
        probe.int64(2, kSincePlanThreshold);
        probe.int64(3, since);
        probe.text(4, q.type);
        if (probe.step("history") && probe.colInt(0) < kSincePlanThreshold) {
          s = scope == HistoryScope::System ? kHistSystemSinceByTime : kHistTypeSinceByTime;
        }
      }
      {
        Running r(c, s);
        r.int64(1, before);
        r.int64(2, limit + 1);
        r.int64(3, since);
        r.text(4, q.type);
        r.text(5, q.id);
        while (r.step("history")) {
          StoredVersion v;
          v.type = r.colBytes(0);
          v.id = r.colBytes(1);
          v.version = r.colInt(2);
          v.lastUpdated = r.colBytes(3);
          v.deleted = r.colInt(4) != 0;
          v.seq = r.colInt(5);
          v.json = r.colBytes(6);
          v.op = writeOpFromColumn(r.colInt(7), v.version, v.deleted);
          page.entries.push_back(std::move(v));
        }
      }
      if (static_cast<int>(page.entries.size()) > limit) {
        page.entries.pop_back();
        page.nextBeforeSeq = page.entries.back().seq;
      }
      if (withTotal) {
        Running r(c, kCountInstance);
        r.int64(3, since);
        r.text(4, q.type);
        r.text(5, q.id);
        if (r.step("history count")) page.total = r.colInt(0);
        Running(c, kCommit).step("history");
      }
    } catch (...) {
      rollbackQuietly(c);
      throw;
    }
    return page;
  });
}

// One statement on a pooled connection: SQLite runs it in a single read transaction (one snapshot,
// whatever subqueries it has), which ends when runQuery resets the statement.
std::vector<SqlRow> SqliteStore::query(const SqlQuery& q) {
  return guarded("sqlite query", [&] {
    auto lease = pool_->acquire();
    return runQuery(lease.conn<SqliteConnection>(), q);
  });
}

bool SqliteStore::healthy() {
  try {
    auto lease = pool_->acquire();
    // Through Poco's statement API on purpose: this is the path Poco itself would use, and the
    // query touches the file (a bare SELECT 1 would not notice a vanished database).
    int steps = 0;
    lease.session() << "SELECT count(*) FROM schema_migrations", Poco::Data::Keywords::into(steps),
        Poco::Data::Keywords::now;
    return steps > 0;
  } catch (...) {
    return false;
  }
}

}  // namespace

std::unique_ptr<ResourceStore> openSqliteStore(const std::string& path, const StoreOptions& options) {
  configureSqliteProcess();
  // Poco's connector retries a failing open for a minute; find out at once whether it can work.
  sqlite3* probe = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &probe, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  std::string why = rc == SQLITE_OK ? "" : (probe ? sqlite3_errmsg(probe) : sqlite3_errstr(rc));
  sqlite3_close_v2(probe);
  if (rc != SQLITE_OK) throw StoreUnavailable("sqlite open: " + why);
  return guarded("sqlite open", [&]() -> std::unique_ptr<ResourceStore> {
    return std::make_unique<SqliteStore>(path, options);
  });
}

}  // namespace hearth::fhir::storeimpl
