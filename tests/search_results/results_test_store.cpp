// TestWorld over the real store backends: SQLite in a temporary directory, PostgreSQL in a schema
// of its own (selected through the libpq `options` parameter, dropped afterwards).
#include "results_test_store.h"

#include <Poco/File.h>
#include <Poco/TemporaryFile.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>

#include "hearth/fhir/search_index.h"

namespace hearth::test {

std::optional<std::string> pgTestUrl() {
  const char* url = std::getenv("HEARTH_TEST_PG_URL");
  if (url == nullptr || *url == '\0') return std::nullopt;
  return std::string(url);
}

namespace {

using fhir::SqlRow;

// Forwards to a store and counts the statements run through it.
class CountingStore : public fhir::ResourceStore {
 public:
  explicit CountingStore(fhir::ResourceStore& inner) : inner_(inner) {}
  std::unique_ptr<fhir::StoreTransaction> begin() override { return inner_.begin(); }
  std::optional<fhir::StoredVersion> read(std::string_view type, std::string_view id) override {
    ++statements;
    return inner_.read(type, id);
  }
  std::optional<fhir::StoredVersion> vread(std::string_view type, std::string_view id, int64_t v) override {
    ++statements;
    return inner_.vread(type, id, v);
  }
  fhir::HistoryPage history(const fhir::HistoryQuery& q) override { return inner_.history(q); }
  bool healthy() override { return inner_.healthy(); }
  fhir::StorePoolStats poolStats() override { return inner_.poolStats(); }
  std::string backendName() const override { return inner_.backendName(); }
  fhir::SqlDialect dialect() const override { return inner_.dialect(); }
  std::vector<SqlRow> query(const fhir::SqlQuery& q) override {
    ++statements;
    return inner_.query(q);
  }
  std::atomic<long> statements{0};

 private:
  fhir::ResourceStore& inner_;
};

// Runs one admin statement on the PostgreSQL test database.
void pgAdmin(const std::string& url, const std::string& sql) {
  // libpq accepts URIs; our URL may carry extra parameters it does not know, so only the base.
  const std::string base = url.substr(0, url.find('?'));
  PGconn* c = PQconnectdb(base.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c);
    PQfinish(c);
    throw std::runtime_error("postgres: " + msg);
  }
  PGresult* r = PQexec(c, ("SET client_min_messages TO WARNING; " + sql).c_str());
  const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
  std::string msg = PQerrorMessage(c);
  PQclear(r);
  PQfinish(c);
  if (!ok) throw std::runtime_error("postgres: " + msg);
}

class RealWorld : public TestWorld {
 public:
  explicit RealWorld(const std::string& backend) {
    fhir::StoreOptions o;
    if (backend == "sqlite") {
      dir_ = std::make_unique<Poco::TemporaryFile>();
      dir_->createDirectories();
      o.url = "sqlite:" + dir_->path() + "/hearth.db";
      o.sqliteSynchronous = "NORMAL";
    } else if (backend == "postgres") {
      const auto url = pgTestUrl();
      if (!url) throw std::runtime_error("HEARTH_TEST_PG_URL is not set");
      static std::atomic<int> counter{0};
      pgUrl_ = *url;
      schema_ = "hearth_results_" + std::to_string(getpid()) + "_" + std::to_string(++counter);
      pgAdmin(pgUrl_, "DROP SCHEMA IF EXISTS " + schema_ + " CASCADE; CREATE SCHEMA " + schema_);
      o.url = pgUrl_ + (pgUrl_.find('?') == std::string::npos ? "?" : "&") + "options=--search_path%3D" + schema_;
    } else {
      throw std::invalid_argument("unknown backend " + backend);
    }
    store_ = fhir::openStore(o);
    counting_ = std::make_unique<CountingStore>(*store_);
  }
  explicit RealWorld(const fhir::StoreOptions& o) {
    store_ = fhir::openStore(o);
    counting_ = std::make_unique<CountingStore>(*store_);
  }
  ~RealWorld() override {
    counting_.reset();
    store_.reset();
    if (!schema_.empty()) {
      try {
        pgAdmin(pgUrl_, "DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
      } catch (const std::exception&) {
        // best effort: a leftover schema does not affect other runs (names are per process)
      }
    }
  }

  void add(const std::string& type, const std::string& id, const std::string& lastUpdated,
           const std::vector<RefRow>& refs, const std::string& extra) override {
    std::vector<fhir::IndexRow> rows;
    for (const RefRow& r : refs) {
      fhir::IndexRow row;
      row.kind = fhir::IndexKind::Reference;
      row.param = r.param;
      row.refType = r.targetType;
      row.refId = r.targetId;
      row.url = r.targetType + "/" + r.targetId;
      rows.push_back(std::move(row));
    }
    write(type, id, lastUpdated, false, rows, extra);
  }
  void remove(const std::string& type, const std::string& id, const std::string& lastUpdated) override {
    write(type, id, lastUpdated, true, {}, {});
  }
  fhir::ResourceStore& store() override { return *counting_; }
  fhir::ResourceStore& raw() override { return *store_; }
  long statements() const override { return counting_->statements.load(); }

 private:
  void write(const std::string& type, const std::string& id, const std::string& lastUpdated, bool deleted,
             const std::vector<fhir::IndexRow>& rows, const std::string& extra) {
    auto tx = store_->begin();
    const auto cur = tx->current(type, id);
    fhir::StoredVersion v;
    v.type = type;
    v.id = id;
    v.version = cur ? cur->version + 1 : 1;
    v.lastUpdated = lastUpdated;
    v.deleted = deleted;
    v.op = deleted ? fhir::WriteOp::Delete : (cur ? fhir::WriteOp::Update : fhir::WriteOp::Create);
    if (!deleted) {
      v.json = "{\"resourceType\":\"" + type + "\",\"id\":\"" + id + "\",\"meta\":{\"versionId\":\"" +
               std::to_string(v.version) + "\",\"lastUpdated\":\"" + lastUpdated + "\"}" + extra + "}";
    }
    tx->put(v);
    tx->replaceIndex(type, id, rows);
    tx->commit();
  }

  std::unique_ptr<Poco::TemporaryFile> dir_;
  std::string pgUrl_, schema_;
  std::unique_ptr<fhir::ResourceStore> store_;
  std::unique_ptr<CountingStore> counting_;
};

}  // namespace

std::unique_ptr<TestWorld> TestWorld::create(const std::string& backend) { return std::make_unique<RealWorld>(backend); }

std::unique_ptr<TestWorld> TestWorld::open(const std::string& url) {
  fhir::StoreOptions o;
  o.url = url;
  o.sqliteSynchronous = "NORMAL";
  return std::make_unique<RealWorld>(o);
}

}  // namespace hearth::test
