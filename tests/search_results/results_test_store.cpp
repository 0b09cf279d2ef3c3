// TestWorld over a private SQLite database that carries the logical search schema
// (resource_current, resource_version, search_reference, as store_migrations.cpp version 3
// defines them), with a ResourceStore whose query() and read() run on it. It stands in for the
// real backends' generic query support in these white-box tests.
#include "results_test_store.h"

#include <sqlite3.h>

#include <atomic>
#include <stdexcept>

namespace hearth::test {

namespace {

using fhir::SqlRow;
using fhir::SqlValue;

class SqliteDb {
 public:
  explicit SqliteDb(const std::string& path = ":memory:") {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) throw std::runtime_error("sqlite3_open failed");
    if (path != ":memory:") return;  // an existing database (benchmarks)
    exec(R"SQL(
CREATE TABLE resource_version (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
  last_updated TEXT NOT NULL, last_updated_us INTEGER NOT NULL, deleted INTEGER NOT NULL, content BLOB NOT NULL,
  op SMALLINT NOT NULL DEFAULT 0, UNIQUE (type, id, version));
CREATE TABLE resource_current (
  type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, deleted INTEGER NOT NULL, seq INTEGER NOT NULL,
  last_updated TEXT NOT NULL, PRIMARY KEY (type, id)) WITHOUT ROWID;
CREATE INDEX resource_current_updated ON resource_current (type, last_updated);
CREATE TABLE search_reference (
  type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, target_type TEXT NOT NULL, target_id TEXT NOT NULL,
  url TEXT NOT NULL);
CREATE INDEX search_reference_target ON search_reference (type, param, target_type, target_id);
CREATE INDEX search_reference_rev ON search_reference (target_type, target_id);
CREATE INDEX search_reference_res ON search_reference (type, id);
CREATE INDEX search_reference_url ON search_reference (type, param, url);
)SQL");
  }
  ~SqliteDb() { sqlite3_close(db_); }
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error("sqlite: " + msg);
    }
  }

  std::vector<SqlRow> query(const fhir::SqlQuery& q) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, q.sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      throw fhir::StoreUnavailable(std::string("prepare: ") + sqlite3_errmsg(db_) + " in " + q.sql);
    }
    int i = 1;
    for (const SqlValue& v : q.params) {
      if (std::holds_alternative<std::monostate>(v)) sqlite3_bind_null(st, i);
      if (const auto* n = std::get_if<int64_t>(&v)) sqlite3_bind_int64(st, i, *n);
      if (const auto* d = std::get_if<double>(&v)) sqlite3_bind_double(st, i, *d);
      if (const auto* s = std::get_if<std::string>(&v))
        sqlite3_bind_text(st, i, s->data(), static_cast<int>(s->size()), SQLITE_TRANSIENT);
      ++i;
    }
    std::vector<SqlRow> rows;
    int rc = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      SqlRow row;
      for (int c = 0; c < sqlite3_column_count(st); ++c) {
        switch (sqlite3_column_type(st, c)) {
          case SQLITE_INTEGER: row.emplace_back(static_cast<int64_t>(sqlite3_column_int64(st, c))); break;
          case SQLITE_FLOAT: row.emplace_back(sqlite3_column_double(st, c)); break;
          case SQLITE_NULL: row.emplace_back(std::monostate{}); break;
          default: {
            const void* p = sqlite3_column_blob(st, c);
            const int n = sqlite3_column_bytes(st, c);
            row.emplace_back(std::string(static_cast<const char*>(p), static_cast<size_t>(n)));
          }
        }
      }
      rows.push_back(std::move(row));
    }
    const std::string err = sqlite3_errmsg(db_);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) throw fhir::StoreUnavailable("step: " + err);
    return rows;
  }

 private:
  sqlite3* db_ = nullptr;
};

class FakeStore : public fhir::ResourceStore {
 public:
  explicit FakeStore(SqliteDb& db) : db_(db) {}
  std::unique_ptr<fhir::StoreTransaction> begin() override { throw std::logic_error("not used"); }
  std::optional<fhir::StoredVersion> read(std::string_view type, std::string_view id) override {
    ++statements;
    const auto rows = db_.query({"SELECT c.version, c.deleted, c.last_updated, v.content, c.seq FROM resource_current c"
                                 " JOIN resource_version v ON v.seq = c.seq WHERE c.type = ? AND c.id = ?",
                                 {std::string(type), std::string(id)}});
    if (rows.empty()) return std::nullopt;
    fhir::StoredVersion v;
    v.type = type;
    v.id = id;
    v.version = std::get<int64_t>(rows[0][0]);
    v.deleted = std::get<int64_t>(rows[0][1]) != 0;
    v.lastUpdated = std::get<std::string>(rows[0][2]);
    v.json = std::get<std::string>(rows[0][3]);
    v.seq = std::get<int64_t>(rows[0][4]);
    return v;
  }
  std::optional<fhir::StoredVersion> vread(std::string_view, std::string_view, int64_t) override {
    throw std::logic_error("not used");
  }
  fhir::HistoryPage history(const fhir::HistoryQuery&) override { throw std::logic_error("not used"); }
  bool healthy() override { return true; }
  fhir::StorePoolStats poolStats() override { return {}; }
  std::string backendName() const override { return "sqlite"; }
  fhir::SqlDialect dialect() const override { return fhir::SqlDialect::Sqlite; }
  std::vector<SqlRow> query(const fhir::SqlQuery& q) override {
    ++statements;
    return db_.query(q);
  }
  std::atomic<long> statements{0};

 private:
  SqliteDb& db_;
};

class FakeWorld : public TestWorld {
 public:
  explicit FakeWorld(const std::string& path = ":memory:") : db_(path), store_(db_) {}
  void add(const std::string& type, const std::string& id, const std::string& lastUpdated,
           const std::vector<RefRow>& refs) override {
    write(type, id, lastUpdated, false);
    db_.query({"DELETE FROM search_reference WHERE type = ? AND id = ?", {type, id}});
    for (const RefRow& r : refs) {
      db_.query({"INSERT INTO search_reference (type, id, param, target_type, target_id, url) VALUES (?, ?, ?, ?, ?, '')",
                 {type, id, r.param, r.targetType, r.targetId}});
    }
  }
  void remove(const std::string& type, const std::string& id, const std::string& lastUpdated) override {
    write(type, id, lastUpdated, true);
    db_.query({"DELETE FROM search_reference WHERE type = ? AND id = ?", {type, id}});
  }
  fhir::ResourceStore& store() override { return store_; }
  long statements() const override { return store_.statements.load(); }

 private:
  void write(const std::string& type, const std::string& id, const std::string& lastUpdated, bool deleted) {
    const auto cur = db_.query({"SELECT version FROM resource_current WHERE type = ? AND id = ?", {type, id}});
    const int64_t version = cur.empty() ? 1 : std::get<int64_t>(cur[0][0]) + 1;
    const std::string content =
        deleted ? std::string()
                : "{\"resourceType\":\"" + type + "\",\"id\":\"" + id + "\",\"meta\":{\"versionId\":\"" +
                      std::to_string(version) + "\",\"lastUpdated\":\"" + lastUpdated + "\"}}";
    db_.query({"INSERT INTO resource_version (type, id, version, last_updated, last_updated_us, deleted, content)"
               " VALUES (?, ?, ?, ?, 0, ?, ?)",
               {type, id, version, lastUpdated, int64_t(deleted ? 1 : 0), content}});
    db_.query({"INSERT OR REPLACE INTO resource_current (type, id, version, deleted, seq, last_updated)"
               " VALUES (?, ?, ?, ?, (SELECT max(seq) FROM resource_version), ?)",
               {type, id, version, int64_t(deleted ? 1 : 0), lastUpdated}});
  }

  SqliteDb db_;
  FakeStore store_;
};

}  // namespace

std::unique_ptr<TestWorld> TestWorld::create() { return std::make_unique<FakeWorld>(); }
std::unique_ptr<TestWorld> TestWorld::openSqliteFile(const std::string& path) { return std::make_unique<FakeWorld>(path); }

}  // namespace hearth::test
