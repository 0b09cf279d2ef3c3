// Store conformance suite: the ResourceStore contract (store.h), written once and run against every
// backend. SqliteStoreTest always runs on a temporary file; PostgresStoreTest runs when
// HEARTH_TEST_PG_URL names a database (tools/pg-test-server.sh prints one), each test in a fresh
// schema that is dropped afterwards. With HEARTH_REQUIRE_PG=1 a missing URL is a failure.
#include <Poco/Data/PostgreSQL/Connector.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <cppunit/TestCaller.h>
#include <cppunit/TestSuite.h>
#include <cppunit/extensions/HelperMacros.h>
#include <cppunit/extensions/TestFactoryRegistry.h>
#include <libpq-fe.h>
#include <poll.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include "hearth/fhir/error.h"
#include "hearth/fhir/store.h"
#include "store_common.h"

extern char** environ;

using namespace hearth::fhir;

namespace {

// base + seconds, as a FHIR instant with milliseconds: 2024-01-01T00:00:00.000Z + s.
std::string instantAt(int64_t seconds, int millis = 0) {
  std::time_t t = static_cast<std::time_t>(1704067200 + seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

std::string resourceJson(const std::string& type, const std::string& id, int64_t version,
                         const std::string& extra = "") {
  return R"({"resourceType":")" + type + R"(","id":")" + id + R"(","meta":{"versionId":")" +
         std::to_string(version) + R"("})" + extra + "}";
}

// A version as the service would write it: deleted -> Delete, version 1 -> Create, else Update.
StoredVersion makeVersion(const std::string& type, const std::string& id, int64_t version,
                          const std::string& lastUpdated, bool deleted = false) {
  StoredVersion v;
  v.type = type;
  v.id = id;
  v.version = version;
  v.lastUpdated = lastUpdated;
  v.deleted = deleted;
  v.op = deleted ? WriteOp::Delete : version == 1 ? WriteOp::Create : WriteOp::Update;
  if (!deleted) v.json = resourceJson(type, id, version);
  return v;
}

void putCommitted(ResourceStore& store, StoredVersion& v) {
  auto tx = store.begin();
  tx->put(v);
  tx->commit();
}

// Appends the next version of type/id the way ResourceService does (lock the current row, put
// current+1, commit), retrying the whole unit on StoreConflict. Returns the version written.
int64_t appendVersion(ResourceStore& store, const std::string& type, const std::string& id,
                      const std::string& lastUpdated, int64_t* seqOut = nullptr) {
  thread_local std::mt19937 rng(std::random_device{}());
  for (int attempt = 0; attempt < 500; ++attempt) {
    try {
      auto tx = store.begin();
      auto cur = tx->current(type, id);
      StoredVersion v = makeVersion(type, id, cur ? cur->version + 1 : 1, lastUpdated);
      tx->put(v);
      tx->commit();
      if (seqOut) *seqOut = v.seq;
      return v.version;
    } catch (const StoreConflict&) {
      std::this_thread::sleep_for(
          std::chrono::microseconds(std::uniform_int_distribution<int>(0, 2000)(rng)));
    }
  }
  throw std::runtime_error("appendVersion: still conflicting after 500 attempts");
}

// All entries of a history query, page by page, checking each page on the way.
std::vector<StoredVersion> allPages(ResourceStore& store, HistoryQuery q,
                                    const std::function<void()>& betweenPages = {}) {
  std::vector<StoredVersion> all;
  for (int guard = 0; guard < 10000; ++guard) {
    HistoryPage page = store.history(q);
    CPPUNIT_ASSERT(static_cast<int>(page.entries.size()) <= q.count);
    for (auto& e : page.entries) all.push_back(std::move(e));
    if (!page.nextBeforeSeq) return all;
    CPPUNIT_ASSERT_EQUAL(static_cast<int>(page.entries.size()), q.count);  // only the last page is short
    CPPUNIT_ASSERT_EQUAL(all.back().seq, *page.nextBeforeSeq);
    q.beforeSeq = page.nextBeforeSeq;
    if (betweenPages) betweenPages();
  }
  CPPUNIT_FAIL("history paging did not end");
  return all;
}

void assertStrictlyNewestFirst(const std::vector<StoredVersion>& entries) {
  for (size_t i = 1; i < entries.size(); ++i) CPPUNIT_ASSERT(entries[i - 1].seq > entries[i].seq);
}

std::vector<int64_t> versionsOf(const std::vector<StoredVersion>& entries) {
  std::vector<int64_t> out;
  for (const auto& e : entries) out.push_back(e.version);
  return out;
}

std::vector<WriteOp> opsOf(const std::vector<StoredVersion>& entries) {
  std::vector<WriteOp> out;
  for (const auto& e : entries) out.push_back(e.op);
  return out;
}

void assertSameVersion(const StoredVersion& expected, const StoredVersion& actual) {
  CPPUNIT_ASSERT_EQUAL(expected.type, actual.type);
  CPPUNIT_ASSERT_EQUAL(expected.id, actual.id);
  CPPUNIT_ASSERT_EQUAL(expected.version, actual.version);
  CPPUNIT_ASSERT_EQUAL(expected.lastUpdated, actual.lastUpdated);
  CPPUNIT_ASSERT_EQUAL(expected.deleted, actual.deleted);
  CPPUNIT_ASSERT(expected.json == actual.json);  // not CPPUNIT_ASSERT_EQUAL: may be 1 MB
  CPPUNIT_ASSERT_EQUAL(expected.seq, actual.seq);
  CPPUNIT_ASSERT_EQUAL(static_cast<int>(expected.op), static_cast<int>(actual.op));
}

std::string hex(std::string_view bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}


// ---- Search index rows (schema version 3) ----------------------------------------------------

IndexRow stringRow(const std::string& param, const std::string& text, const std::string& exact) {
  IndexRow r;
  r.kind = IndexKind::String;
  r.param = param;
  r.text = text;
  r.exact = exact;
  return r;
}
IndexRow tokenRow(const std::string& param, const std::string& system, const std::string& code,
                  const std::string& text = "") {
  IndexRow r;
  r.kind = IndexKind::Token;
  r.param = param;
  r.system = system;
  r.code = code;
  r.text = text;
  return r;
}
IndexRow dateRow(const std::string& param, int64_t lo, int64_t hi) {
  IndexRow r;
  r.kind = IndexKind::Date;
  r.param = param;
  r.lo = lo;
  r.hi = hi;
  return r;
}
IndexRow numberRow(const std::string& param, double value) {
  IndexRow r;
  r.kind = IndexKind::Number;
  r.param = param;
  r.value = value;
  return r;
}
IndexRow quantityRow(const std::string& param, const std::string& system, const std::string& code,
                     const std::string& unit, double value) {
  IndexRow r;
  r.kind = IndexKind::Quantity;
  r.param = param;
  r.system = system;
  r.code = code;
  r.unit = unit;
  r.value = value;
  return r;
}
IndexRow referenceRow(const std::string& param, const std::string& refType, const std::string& refId,
                      const std::string& url) {
  IndexRow r;
  r.kind = IndexKind::Reference;
  r.param = param;
  r.refType = refType;
  r.refId = refId;
  r.url = url;
  return r;
}
IndexRow uriRow(const std::string& param, const std::string& text) {
  IndexRow r;
  r.kind = IndexKind::Uri;
  r.param = param;
  r.text = text;
  return r;
}

// Rows of every kind, with edge values: empty strings, non-ASCII text, open date ends, negative
// and fractional numbers, a kind with several rows of one param.
std::vector<IndexRow> everyKind(const std::string& tag) {
  return {stringRow("family", "muller " + tag, "Müller " + tag),
          stringRow("given", "zoe", "Zoë"),
          stringRow("given", "", ""),
          tokenRow("code", "http://loinc.org", "1234-5", "glucose " + tag),
          tokenRow("identifier", "urn:sys", tag),
          tokenRow("identifier:of-type", "http://terminology.hl7.org/CodeSystem/v2-0203", "MR|" + tag),
          dateRow("date", 1704067200000000, 1704153599999999),
          dateRow("period", INT64_MIN, 1704067200000000),
          dateRow("period", 1704067200000000, INT64_MAX),
          numberRow("probability", -0.125),
          numberRow("probability", 1e300),
          quantityRow("value-quantity", "http://unitsofmeasure.org", "mg/dL", "mg/dL", 5.5),
          quantityRow("value-quantity", "", "", "a lot", -2),
          referenceRow("subject", "Patient", "p-" + tag, "Patient/p-" + tag),
          referenceRow("instantiates-canonical", "", "", "http://example.org/fhir/Questionnaire/q"),
          uriRow("url", "http://example.org/fhir/ValueSet/" + tag)};
}

bool rowLess(const IndexRow& a, const IndexRow& b) {
  return std::tie(a.kind, a.param, a.system, a.code, a.text, a.exact, a.unit, a.refType, a.refId, a.url, a.lo,
                  a.hi, a.value) < std::tie(b.kind, b.param, b.system, b.code, b.text, b.exact, b.unit, b.refType,
                                            b.refId, b.url, b.lo, b.hi, b.value);
}
std::vector<IndexRow> sortedRows(std::vector<IndexRow> rows) {
  std::sort(rows.begin(), rows.end(), rowLess);
  return rows;
}

using QueryFn = std::function<std::vector<SqlRow>(const SqlQuery&)>;
QueryFn queryOf(ResourceStore& s) {
  return [&s](const SqlQuery& q) { return s.query(q); };
}
QueryFn queryOf(StoreTransaction& tx) {
  return [&tx](const SqlQuery& q) { return tx.query(q); };
}

const std::string& str(const SqlValue& v) { return std::get<std::string>(v); }
int64_t i64(const SqlValue& v) { return std::get<int64_t>(v); }
double dbl(const SqlValue& v) { return std::get<double>(v); }

// Every index row of type/id, read back from the seven tables through query, sorted.
std::vector<IndexRow> indexOf(const QueryFn& query, const std::string& type, const std::string& id) {
  std::vector<IndexRow> out;
  auto rows = [&](const std::string& columns, const std::string& table) {
    return query({"SELECT param, " + columns + " FROM " + table + " WHERE type = ? AND id = ?", {type, id}});
  };
  for (const SqlRow& r : rows("text, exact", "search_string")) out.push_back(stringRow(str(r[0]), str(r[1]), str(r[2])));
  for (const SqlRow& r : rows("system, code, text", "search_token"))
    out.push_back(tokenRow(str(r[0]), str(r[1]), str(r[2]), str(r[3])));
  for (const SqlRow& r : rows("lo, hi", "search_date")) out.push_back(dateRow(str(r[0]), i64(r[1]), i64(r[2])));
  for (const SqlRow& r : rows("value", "search_number")) out.push_back(numberRow(str(r[0]), dbl(r[1])));
  for (const SqlRow& r : rows("system, code, unit, value", "search_quantity"))
    out.push_back(quantityRow(str(r[0]), str(r[1]), str(r[2]), str(r[3]), dbl(r[4])));
  // The SQLite store keeps no url for a plain local reference (schema 10: it is target_type/id);
  // read back, the row is the one written (testLocalReferenceUrlNotStored checks the column).
  for (const SqlRow& r : rows("target_type, target_id, url", "search_reference")) {
    const std::string url = str(r[3]).empty() && !str(r[2]).empty() ? str(r[1]) + "/" + str(r[2]) : str(r[3]);
    out.push_back(referenceRow(str(r[0]), str(r[1]), str(r[2]), url));
  }
  for (const SqlRow& r : rows("value", "search_uri")) out.push_back(uriRow(str(r[0]), str(r[1])));
  return sortedRows(std::move(out));
}

// Writes the next version of type/id with its index rows in one transaction (as ResourceService
// does: put, then replaceIndex; a deletion indexes nothing).
void writeIndexed(ResourceStore& store, const std::string& type, const std::string& id, int64_t version,
                  const std::vector<IndexRow>& rows, bool deleted = false) {
  auto tx = store.begin();
  StoredVersion v = makeVersion(type, id, version, instantAt(version), deleted);
  tx->put(v);
  tx->replaceIndex(type, id, deleted ? std::vector<IndexRow>{} : rows);
  tx->commit();
}

// The ids of live resources of type with a token row param = system|code (a search as the engine
// builds it).
std::vector<std::string> idsWithToken(const QueryFn& query, const std::string& type, const std::string& param,
                                      const std::string& system, const std::string& code) {
  std::vector<std::string> ids;
  for (const SqlRow& r : query({"SELECT c.id FROM resource_current c WHERE c.type = ? AND NOT c.deleted AND "
                                "c.id IN (SELECT t.id FROM search_token t WHERE t.type = ? AND t.param = ? AND "
                                "t.code = ? AND t.system = ?) ORDER BY c.id",
                                {type, type, param, code, system}}))
    ids.push_back(str(r[0]));
  return ids;
}
}  // namespace

// ---------------------------------------------------------------------------------------------

class StoreConformance : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(StoreConformance);
  CPPUNIT_TEST(testExecuteIntegrationTables);
  CPPUNIT_TEST(testPutReadVread);
  CPPUNIT_TEST(testVersionsKept);
  CPPUNIT_TEST(testDeletionMarker);
  CPPUNIT_TEST(testWriteOpRoundTrip);
  CPPUNIT_TEST(testWriteOpMustMatchDeletion);
  CPPUNIT_TEST(testCurrentInTransaction);
  CPPUNIT_TEST(testPutOutOfSequenceConflicts);
  CPPUNIT_TEST(testRollbackOnDestroy);
  CPPUNIT_TEST(testOperationsAfterCommitFail);
  CPPUNIT_TEST(testSavepointsIsolateUnits);
  CPPUNIT_TEST(testHistoryScopesNewestFirst);
  CPPUNIT_TEST(testHistorySinceAndCount);
  CPPUNIT_TEST(testHistoryInvalidSince);
  CPPUNIT_TEST(testHistorySinceManyMatches);
  CPPUNIT_TEST(testHistoryPagingNoDuplicatesNoGaps);
  CPPUNIT_TEST(testHistoryPagingWithConcurrentWrites);
  CPPUNIT_TEST(testConcurrentWritersOneId);
  CPPUNIT_TEST(testMigrationsIdempotent);
  CPPUNIT_TEST(testUpgradeFromSchemaVersion1);
  CPPUNIT_TEST(testConcurrentFirstOpen);
  CPPUNIT_TEST(testHealthyAndPoolStats);
  CPPUNIT_TEST(testUnicodeAndBinaryRoundTrip);
  CPPUNIT_TEST(testLargeContent);
  CPPUNIT_TEST(testReopenKeepsData);
  CPPUNIT_TEST(testCommitSurvivesKill9);
  CPPUNIT_TEST(testIndexReplaceAndQuery);
  CPPUNIT_TEST(testIndexReplaceRemovesOldRows);
  CPPUNIT_TEST(testIndexDeletionRemovesRows);
  CPPUNIT_TEST(testIndexReplaceKeepsExactlyTheNewRows);
  CPPUNIT_TEST(testIndexInTheCreatingTransaction);
  CPPUNIT_TEST(testIndexRollback);
  CPPUNIT_TEST(testIndexValuesWithNulBytes);
  CPPUNIT_TEST(testIndexReadersSeeWholeReplacements);
  CPPUNIT_TEST(testQueryTypeMapping);
  CPPUNIT_TEST(testQueryErrors);
  CPPUNIT_TEST(testQueryManyStatementShapes);
  CPPUNIT_TEST(testLockKeyCheckThenWrite);
  CPPUNIT_TEST(testUpgradeFromSchemaVersion2);
  CPPUNIT_TEST_SUITE_END_ABSTRACT();

 public:
  void setUp() override {
    createDatabase();
    store_ = openStore(options());
  }
  void tearDown() override {
    store_.reset();
    dropDatabase();
  }

 protected:
  // A fresh, empty database for each test.
  virtual void createDatabase() = 0;
  virtual void dropDatabase() = 0;
  virtual StoreOptions options() = 0;
  virtual std::string expectedBackend() = 0;
  virtual int64_t migrationRows() = 0;
  virtual size_t knownMigrations() = 0;
  // Schema step 1 as released, to build a database as the first release left it.
  virtual const storeimpl::Migration& firstMigration() = 0;
  // All schema steps of the backend, in order.
  virtual const std::vector<storeimpl::Migration>& migrationSteps() = 0;
  // Runs an SQL script (several statements) on the test database, bypassing the store.
  virtual void execRaw(const std::string& sql) = 0;
  // The SQL of a database at schema `version`: the migrations up to it and their records, as an
  // older release left it (for the upgrade tests).
  std::string schemaUpTo(int version) {
    std::string sql =
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at TEXT NOT NULL);\n";
    for (const storeimpl::Migration& m : migrationSteps()) {
      if (m.version > version) break;
      sql += m.sql;
      sql += ";\nINSERT INTO schema_migrations (version, name, applied_at) VALUES (" + std::to_string(m.version) +
             ", 'v" + std::to_string(m.version) + "', '2024-01-01T00:00:00.000Z');\n";
    }
    return sql;
  }
  // SQL literals of the backend's column types (resource_version.deleted and .content).
  virtual std::string boolLiteral(bool b) = 0;
  virtual std::string bytesLiteral(std::string_view bytes) = 0;

  std::unique_ptr<ResourceStore> store_;

 public:
  void testPutReadVread() {
    StoredVersion v = makeVersion("Patient", "p1", 1, instantAt(0, 123));
    putCommitted(*store_, v);
    CPPUNIT_ASSERT(v.seq > 0);
    CPPUNIT_ASSERT_EQUAL(expectedBackend(), store_->backendName());

    auto read = store_->read("Patient", "p1");
    CPPUNIT_ASSERT(read.has_value());
    assertSameVersion(v, *read);
    CPPUNIT_ASSERT_EQUAL(std::string("2024-01-01T00:00:00.123Z"), read->lastUpdated);

    auto vread = store_->vread("Patient", "p1", 1);
    CPPUNIT_ASSERT(vread.has_value());
    assertSameVersion(v, *vread);

    CPPUNIT_ASSERT(!store_->vread("Patient", "p1", 2));
    CPPUNIT_ASSERT(!store_->vread("Patient", "p1", 0));
    CPPUNIT_ASSERT(!store_->read("Patient", "p2"));
    CPPUNIT_ASSERT(!store_->read("Observation", "p1"));  // the type is part of the identity
    CPPUNIT_ASSERT(!store_->read("Patient", "P1"));      // ids are case-sensitive
  }

  void testVersionsKept() {
    std::vector<StoredVersion> written;
    for (int n = 1; n <= 5; ++n) {
      StoredVersion v = makeVersion("Patient", "multi", n, instantAt(n));
      v.json = resourceJson("Patient", "multi", n, R"(,"name":[{"family":"V)" + std::to_string(n) + R"("}])");
      putCommitted(*store_, v);
      if (!written.empty()) CPPUNIT_ASSERT(v.seq > written.back().seq);
      written.push_back(v);
    }
    for (const auto& v : written) {
      auto got = store_->vread("Patient", "multi", v.version);
      CPPUNIT_ASSERT(got.has_value());
      assertSameVersion(v, *got);
    }
    auto current = store_->read("Patient", "multi");
    CPPUNIT_ASSERT(current.has_value());
    assertSameVersion(written.back(), *current);
  }

  void testDeletionMarker() {
    StoredVersion v1 = makeVersion("Patient", "gone", 1, instantAt(1));
    putCommitted(*store_, v1);
    StoredVersion v2 = makeVersion("Patient", "gone", 2, instantAt(2), true);
    putCommitted(*store_, v2);

    auto read = store_->read("Patient", "gone");
    CPPUNIT_ASSERT(read.has_value());
    CPPUNIT_ASSERT(read->deleted);
    CPPUNIT_ASSERT_EQUAL(int64_t(2), read->version);
    CPPUNIT_ASSERT(read->json.empty());
    CPPUNIT_ASSERT_EQUAL(instantAt(2), read->lastUpdated);

    auto old = store_->vread("Patient", "gone", 1);
    CPPUNIT_ASSERT(old.has_value());
    assertSameVersion(v1, *old);
    auto marker = store_->vread("Patient", "gone", 2);
    CPPUNIT_ASSERT(marker.has_value() && marker->deleted);

    {
      auto tx = store_->begin();
      auto cur = tx->current("Patient", "gone");
      CPPUNIT_ASSERT(cur.has_value());
      CPPUNIT_ASSERT(cur->deleted);
      CPPUNIT_ASSERT_EQUAL(int64_t(2), cur->version);
    }

    // Re-creating after a delete continues the version sequence.
    StoredVersion v3 = makeVersion("Patient", "gone", 3, instantAt(3));
    putCommitted(*store_, v3);
    auto back = store_->read("Patient", "gone");
    CPPUNIT_ASSERT(back.has_value());
    assertSameVersion(v3, *back);

    HistoryQuery q;
    q.type = "Patient";
    q.id = "gone";
    HistoryPage page = store_->history(q);
    CPPUNIT_ASSERT(versionsOf(page.entries) == (std::vector<int64_t>{3, 2, 1}));
    CPPUNIT_ASSERT(page.entries[1].deleted);
  }

  // The op of each version comes back as written, whatever its version number: a PUT that
  // creates is an Update at version 1, a PUT after a deletion an Update too.
  void testWriteOpRoundTrip() {
    std::vector<StoredVersion> written;
    auto write = [&](const std::string& id, int64_t version, WriteOp op, int t) {
      StoredVersion v = makeVersion("Patient", id, version, instantAt(t), op == WriteOp::Delete);
      v.op = op;
      putCommitted(*store_, v);
      written.push_back(v);
    };
    write("op-put", 1, WriteOp::Update, 1);   // update-as-create
    write("op-post", 1, WriteOp::Create, 2);
    write("op-put", 2, WriteOp::Delete, 3);
    write("op-put", 3, WriteOp::Update, 4);   // re-created by PUT after the deletion
    write("op-post", 2, WriteOp::Update, 5);
    write("op-post", 3, WriteOp::Delete, 6);

    for (const auto& v : written) assertSameVersion(v, *store_->vread(v.type, v.id, v.version));
    assertSameVersion(written[3], *store_->read("Patient", "op-put"));
    auto post = store_->read("Patient", "op-post");
    CPPUNIT_ASSERT(post && post->deleted);
    CPPUNIT_ASSERT(post->op == WriteOp::Delete);

    HistoryQuery q;
    q.type = "Patient";
    q.id = "op-put";
    CPPUNIT_ASSERT(opsOf(store_->history(q).entries) ==
                   (std::vector<WriteOp>{WriteOp::Update, WriteOp::Delete, WriteOp::Update}));
    q.id = "op-post";
    q.since = instantAt(0);  // the other instance plan
    CPPUNIT_ASSERT(opsOf(store_->history(q).entries) ==
                   (std::vector<WriteOp>{WriteOp::Delete, WriteOp::Update, WriteOp::Create}));
    // Type and system pages carry it as well, with and without since.
    for (const char* type : {"", "Patient"}) {
      for (bool since : {false, true}) {
        HistoryQuery all;
        all.type = type;
        if (since) all.since = "2024-01-01";
        std::vector<StoredVersion> got = allPages(*store_, all);
        CPPUNIT_ASSERT_EQUAL(written.size(), got.size());
        for (size_t i = 0; i < got.size(); ++i) assertSameVersion(written[written.size() - 1 - i], got[i]);
      }
    }
  }

  // op is part of what put() checks: Delete exactly for a deletion, and a known value.
  void testWriteOpMustMatchDeletion() {
    auto tx = store_->begin();
    StoredVersion liveDelete = makeVersion("Patient", "bad-op", 1, instantAt(1));
    liveDelete.op = WriteOp::Delete;
    CPPUNIT_ASSERT_THROW(tx->put(liveDelete), std::invalid_argument);
    StoredVersion deletedUpdate = makeVersion("Patient", "bad-op", 1, instantAt(1), true);
    deletedUpdate.op = WriteOp::Update;
    CPPUNIT_ASSERT_THROW(tx->put(deletedUpdate), std::invalid_argument);
    StoredVersion unknown = makeVersion("Patient", "bad-op", 1, instantAt(1));
    unknown.op = static_cast<WriteOp>(0);
    CPPUNIT_ASSERT_THROW(tx->put(unknown), std::invalid_argument);
    StoredVersion fine = makeVersion("Patient", "bad-op", 1, instantAt(1));
    tx->put(fine);  // the refused puts left the transaction usable and wrote nothing
    tx->commit();
    assertSameVersion(fine, *store_->read("Patient", "bad-op"));
    HistoryQuery q;
    CPPUNIT_ASSERT_EQUAL(size_t(1), store_->history(q).entries.size());
  }

  void testCurrentInTransaction() {
    {
      auto tx = store_->begin();
      CPPUNIT_ASSERT(!tx->current("Patient", "cur"));
    }
    StoredVersion v = makeVersion("Patient", "cur", 1, instantAt(5, 7));
    putCommitted(*store_, v);
    auto tx = store_->begin();
    auto cur = tx->current("Patient", "cur");
    CPPUNIT_ASSERT(cur.has_value());
    CPPUNIT_ASSERT_EQUAL(int64_t(1), cur->version);
    CPPUNIT_ASSERT(!cur->deleted);
    CPPUNIT_ASSERT_EQUAL(instantAt(5, 7), cur->lastUpdated);
    // Within the transaction its own put is visible to current().
    StoredVersion v2 = makeVersion("Patient", "cur", 2, instantAt(6));
    tx->put(v2);
    auto after = tx->current("Patient", "cur");
    CPPUNIT_ASSERT(after.has_value());
    CPPUNIT_ASSERT_EQUAL(int64_t(2), after->version);
    tx->commit();
    CPPUNIT_ASSERT_EQUAL(int64_t(2), store_->read("Patient", "cur")->version);
  }

  void testPutOutOfSequenceConflicts() {
    StoredVersion v1 = makeVersion("Patient", "seq", 1, instantAt(1));
    putCommitted(*store_, v1);
    {
      auto tx = store_->begin();
      StoredVersion dup = makeVersion("Patient", "seq", 1, instantAt(2));
      CPPUNIT_ASSERT_THROW(tx->put(dup), StoreConflict);
    }
    {
      auto tx = store_->begin();
      StoredVersion skip = makeVersion("Patient", "seq", 3, instantAt(2));
      CPPUNIT_ASSERT_THROW(tx->put(skip), StoreConflict);
    }
    auto read = store_->read("Patient", "seq");
    CPPUNIT_ASSERT(read.has_value());
    assertSameVersion(v1, *read);
    CPPUNIT_ASSERT(!store_->vread("Patient", "seq", 3));
    // A bad lastUpdated is a caller bug, not a database error.
    auto tx = store_->begin();
    StoredVersion bad = makeVersion("Patient", "seq", 2, "yesterday");
    CPPUNIT_ASSERT_THROW(tx->put(bad), std::invalid_argument);
  }

  void testRollbackOnDestroy() {
    StoredVersion keep = makeVersion("Patient", "keep", 1, instantAt(1));
    putCommitted(*store_, keep);
    {
      auto tx = store_->begin();
      StoredVersion a = makeVersion("Patient", "rolled", 1, instantAt(2));
      StoredVersion b = makeVersion("Patient", "keep", 2, instantAt(2));
      tx->put(a);
      tx->put(b);
      // destroyed without commit
    }
    CPPUNIT_ASSERT(!store_->read("Patient", "rolled"));
    CPPUNIT_ASSERT(!store_->vread("Patient", "rolled", 1));
    CPPUNIT_ASSERT_EQUAL(int64_t(1), store_->read("Patient", "keep")->version);
    CPPUNIT_ASSERT(!store_->vread("Patient", "keep", 2));
    HistoryQuery q;
    HistoryPage page = store_->history(q);
    CPPUNIT_ASSERT_EQUAL(size_t(1), page.entries.size());
    q.type = "Patient";
    q.id = "rolled";
    page = store_->history(q);
    CPPUNIT_ASSERT(page.entries.empty());
    CPPUNIT_ASSERT_EQUAL(int64_t(0), page.total);

    // The store is writable again at once, and the rolled-back work left nothing behind.
    StoredVersion again = makeVersion("Patient", "rolled", 1, instantAt(3));
    putCommitted(*store_, again);
    CPPUNIT_ASSERT_EQUAL(int64_t(1), store_->read("Patient", "rolled")->version);
    CPPUNIT_ASSERT_EQUAL(int64_t(2), appendVersion(*store_, "Patient", "keep", instantAt(4)));
  }

  void testOperationsAfterCommitFail() {
    auto tx = store_->begin();
    StoredVersion v = makeVersion("Patient", "once", 1, instantAt(1));
    tx->put(v);
    tx->commit();
    StoredVersion v2 = makeVersion("Patient", "once", 2, instantAt(2));
    CPPUNIT_ASSERT_THROW(tx->put(v2), StoreUnavailable);
    CPPUNIT_ASSERT_THROW(tx->commit(), StoreUnavailable);
    CPPUNIT_ASSERT_EQUAL(int64_t(1), store_->read("Patient", "once")->version);
  }

  // GroupCommitter's use: several units in one transaction, each in a savepoint; a failed unit is
  // rolled back alone and the transaction goes on.
  void testSavepointsIsolateUnits() {
    StoredVersion existing = makeVersion("Patient", "sp-existing", 1, instantAt(1));
    putCommitted(*store_, existing);

    auto tx = store_->begin();
    tx->savepoint();
    StoredVersion a = makeVersion("Patient", "sp-a", 1, instantAt(2));
    tx->put(a);
    tx->releaseSavepoint();

    tx->savepoint();
    StoredVersion b = makeVersion("Patient", "sp-b", 1, instantAt(3));
    tx->put(b);
    StoredVersion e2 = makeVersion("Patient", "sp-existing", 2, instantAt(3));
    tx->put(e2);
    tx->rollbackToSavepoint();  // b and e2 are undone

    tx->savepoint();
    StoredVersion dup = makeVersion("Patient", "sp-a", 1, instantAt(4));
    CPPUNIT_ASSERT_THROW(tx->put(dup), StoreConflict);  // a failed statement inside the unit
    tx->rollbackToSavepoint();

    tx->savepoint();
    CPPUNIT_ASSERT_EQUAL(int64_t(1), tx->current("Patient", "sp-existing")->version);
    StoredVersion e2again = makeVersion("Patient", "sp-existing", 2, instantAt(5));
    tx->put(e2again);
    StoredVersion a2 = makeVersion("Patient", "sp-a", 2, instantAt(5));
    tx->put(a2);
    tx->releaseSavepoint();
    tx->commit();

    assertSameVersion(a2, *store_->read("Patient", "sp-a"));
    assertSameVersion(a, *store_->vread("Patient", "sp-a", 1));
    assertSameVersion(e2again, *store_->read("Patient", "sp-existing"));
    CPPUNIT_ASSERT(!store_->read("Patient", "sp-b"));
    HistoryQuery q;
    q.count = 100;
    std::vector<StoredVersion> all = allPages(*store_, q);
    CPPUNIT_ASSERT_EQUAL(size_t(4), all.size());  // existing v1, a v1, existing v2, a v2
    assertStrictlyNewestFirst(all);
  }

  void testHistoryScopesNewestFirst() {
    // Interleaved writes over two types and three resources.
    int t = 0;
    for (int round = 1; round <= 4; ++round) {
      appendVersion(*store_, "Patient", "h1", instantAt(++t));
      if (round <= 2) appendVersion(*store_, "Patient", "h2", instantAt(++t));
      if (round <= 3) appendVersion(*store_, "Observation", "o1", instantAt(++t));
    }
    HistoryQuery q;
    q.count = 100;
    q.type = "Patient";
    q.id = "h1";
    HistoryPage inst = store_->history(q);
    CPPUNIT_ASSERT(versionsOf(inst.entries) == (std::vector<int64_t>{4, 3, 2, 1}));
    assertStrictlyNewestFirst(inst.entries);
    CPPUNIT_ASSERT_EQUAL(int64_t(4), inst.total);
    CPPUNIT_ASSERT(!inst.nextBeforeSeq);
    for (const auto& e : inst.entries) {
      CPPUNIT_ASSERT_EQUAL(std::string("Patient"), e.type);
      CPPUNIT_ASSERT_EQUAL(std::string("h1"), e.id);
      CPPUNIT_ASSERT_EQUAL(resourceJson("Patient", "h1", e.version), e.json);
    }

    q.id.clear();
    HistoryPage type = store_->history(q);
    CPPUNIT_ASSERT_EQUAL(size_t(6), type.entries.size());
    assertStrictlyNewestFirst(type.entries);
    for (const auto& e : type.entries) CPPUNIT_ASSERT_EQUAL(std::string("Patient"), e.type);
    CPPUNIT_ASSERT(type.total == -1 || type.total == 6);

    q.type.clear();
    HistoryPage sys = store_->history(q);
    CPPUNIT_ASSERT_EQUAL(size_t(9), sys.entries.size());
    assertStrictlyNewestFirst(sys.entries);
    CPPUNIT_ASSERT_EQUAL(std::string("Patient"), sys.entries.front().type);  // h1 v4 was written last
    CPPUNIT_ASSERT_EQUAL(std::string("h1"), sys.entries.front().id);
    CPPUNIT_ASSERT(sys.total == -1 || sys.total == 9);

    HistoryQuery none;
    none.type = "Encounter";
    CPPUNIT_ASSERT(store_->history(none).entries.empty());
    none.id = "x";
    HistoryPage empty = store_->history(none);
    CPPUNIT_ASSERT(empty.entries.empty());
    CPPUNIT_ASSERT_EQUAL(int64_t(0), empty.total);
  }

  void testHistorySinceAndCount() {
    // Patient/s1 versions at +0s, +10s, +20.500s, +30s, +40s; Observation/o at +25s.
    const std::vector<std::string> times = {instantAt(0), instantAt(10), instantAt(20, 500), instantAt(30),
                                            instantAt(40)};
    for (size_t i = 0; i < times.size(); ++i) {
      appendVersion(*store_, "Patient", "s1", times[i]);
      if (i == 2) appendVersion(*store_, "Observation", "o", instantAt(25));
    }
    HistoryQuery q;
    q.type = "Patient";
    q.id = "s1";
    q.since = instantAt(20, 500);  // inclusive
    HistoryPage page = store_->history(q);
    CPPUNIT_ASSERT(versionsOf(page.entries) == (std::vector<int64_t>{5, 4, 3}));
    CPPUNIT_ASSERT_EQUAL(int64_t(3), page.total);

    q.since = instantAt(20, 501);
    CPPUNIT_ASSERT(versionsOf(store_->history(q).entries) == (std::vector<int64_t>{5, 4}));

    // The same instant written with another offset selects the same versions: comparison is by
    // time, not by text.
    q.since = "2024-01-01T01:00:20.5+01:00";
    CPPUNIT_ASSERT(versionsOf(store_->history(q).entries) == (std::vector<int64_t>{5, 4, 3}));
    q.since = "2023-12-31T19:00:30-05:00";
    CPPUNIT_ASSERT(versionsOf(store_->history(q).entries) == (std::vector<int64_t>{5, 4}));

    // Date-only forms mean the start of that day (UTC).
    q.since = "2024-01-01";
    CPPUNIT_ASSERT_EQUAL(size_t(5), store_->history(q).entries.size());
    q.since = "2024-01-02";
    page = store_->history(q);
    CPPUNIT_ASSERT(page.entries.empty());
    CPPUNIT_ASSERT_EQUAL(int64_t(0), page.total);

    // count limits the page; total still counts every matching version.
    q.since.reset();
    q.count = 2;
    page = store_->history(q);
    CPPUNIT_ASSERT(versionsOf(page.entries) == (std::vector<int64_t>{5, 4}));
    CPPUNIT_ASSERT_EQUAL(int64_t(5), page.total);
    CPPUNIT_ASSERT(page.nextBeforeSeq.has_value());
    q.beforeSeq = page.nextBeforeSeq;
    page = store_->history(q);
    CPPUNIT_ASSERT(versionsOf(page.entries) == (std::vector<int64_t>{3, 2}));
    CPPUNIT_ASSERT_EQUAL(int64_t(5), page.total);

    // Type and system level honour since as well.
    HistoryQuery tq;
    tq.type = "Patient";
    tq.since = instantAt(25);
    CPPUNIT_ASSERT(versionsOf(store_->history(tq).entries) == (std::vector<int64_t>{5, 4}));
    HistoryQuery sq;
    sq.since = instantAt(20);
    HistoryPage sys = store_->history(sq);
    CPPUNIT_ASSERT_EQUAL(size_t(4), sys.entries.size());  // s1 v3, v4, v5 and the Observation
    assertStrictlyNewestFirst(sys.entries);

    // count below 1 behaves as 1.
    HistoryQuery one;
    one.count = 0;
    CPPUNIT_ASSERT_EQUAL(size_t(1), store_->history(one).entries.size());
  }

  void testHistoryInvalidSince() {
    appendVersion(*store_, "Patient", "x", instantAt(0));
    for (const char* bad : {"yesterday", "2024-13-01", "2024-01-01T10:00:00", "2024-01-01T25:00:00Z", ""}) {
      HistoryQuery q;
      q.since = bad;
      try {
        store_->history(q);
        CPPUNIT_FAIL(std::string("accepted _since=") + bad);
      } catch (const FhirError& e) {
        CPPUNIT_ASSERT_EQUAL(400, e.status());
      }
    }
  }

  // Enough versions after `since` that backends may switch plans between few and many matches;
  // the walk must give the same answer either way.
  void testHistorySinceManyMatches() {
    std::vector<StoredVersion> all;
    auto tx = store_->begin();
    for (int i = 0; i < 2600; ++i) {
      const bool recent = i >= 300;
      StoredVersion v = makeVersion(i % 2 ? "Patient" : "Observation", "m" + std::to_string(i), 1,
                                    recent ? instantAt(10000 + i) : instantAt(i));
      tx->put(v);
      all.push_back(v);
    }
    tx->commit();
    for (const char* type : {"", "Patient"}) {
      for (int count : {500, 1000}) {
        HistoryQuery q;
        q.type = type;
        q.count = count;
        q.since = instantAt(5000);
        std::vector<int64_t> expected, seen;
        for (auto it = all.rbegin(); it != all.rend(); ++it) {
          if (it->lastUpdated >= instantAt(5000) && (q.type.empty() || it->type == q.type))
            expected.push_back(it->seq);
        }
        for (const auto& e : allPages(*store_, q)) seen.push_back(e.seq);
        CPPUNIT_ASSERT(seen == expected);
      }
    }
  }

  void testHistoryPagingNoDuplicatesNoGaps() {
    std::set<int64_t> all, patients, instance;
    const char* types[] = {"Patient", "Observation", "Encounter"};
    for (int i = 0; i < 36; ++i) {
      std::string type = types[i % 3];
      std::string id = "r" + std::to_string(i % 5);
      int64_t seq = 0;
      appendVersion(*store_, type, id, instantAt(i), &seq);
      all.insert(seq);
      if (type == "Patient") patients.insert(seq);
      if (type == "Patient" && id == "r0") instance.insert(seq);
    }
    auto check = [](const std::vector<StoredVersion>& got, const std::set<int64_t>& expected) {
      assertStrictlyNewestFirst(got);
      std::set<int64_t> seqs;
      for (const auto& e : got) seqs.insert(e.seq);
      CPPUNIT_ASSERT_EQUAL(got.size(), seqs.size());
      CPPUNIT_ASSERT(seqs == expected);
    };
    for (int count : {1, 5, 7, 36, 50}) {
      HistoryQuery q;
      q.count = count;
      check(allPages(*store_, q), all);
      q.type = "Patient";
      check(allPages(*store_, q), patients);
      q.id = "r0";
      check(allPages(*store_, q), instance);
    }
  }

  void testHistoryPagingWithConcurrentWrites() {
    for (int i = 0; i < 40; ++i) {
      appendVersion(*store_, i % 2 ? "Patient" : "Observation", "w" + std::to_string(i % 7), instantAt(i));
    }
    std::atomic<bool> stop{false};
    std::atomic<int> written{0};
    std::thread writer([&] {
      int i = 0;
      while (!stop) {
        appendVersion(*store_, i % 2 ? "Patient" : "Observation", "w" + std::to_string(i % 7),
                      instantAt(100 + i));
        ++written;
        ++i;
      }
    });
    int between = 0;
    auto writeBetweenPages = [&] {
      appendVersion(*store_, "Patient", "between", instantAt(1000 + between++));
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    };
    std::vector<StoredVersion> sys, patients;
    try {
      HistoryQuery q;
      q.count = 6;
      sys = allPages(*store_, q, writeBetweenPages);
      q.type = "Patient";
      patients = allPages(*store_, q, writeBetweenPages);
    } catch (...) {
      stop = true;
      writer.join();
      throw;
    }
    stop = true;
    writer.join();
    CPPUNIT_ASSERT(written > 0);
    CPPUNIT_ASSERT(between > 0);
    // A newest-first walk sees exactly the versions at or below its first page's top entry, each
    // once; everything written after the first page lands above it and stays out of the walk.
    HistoryQuery everything;
    everything.count = 1000;
    const std::vector<StoredVersion> final = allPages(*store_, everything);
    for (auto* got : {&sys, &patients}) {
      CPPUNIT_ASSERT(got->size() >= 20);
      assertStrictlyNewestFirst(*got);
      const int64_t top = got->front().seq;
      std::vector<int64_t> expected, seen;
      for (const auto& e : final) {
        if (e.seq <= top && (got == &sys || e.type == "Patient")) expected.push_back(e.seq);
      }
      for (const auto& e : *got) seen.push_back(e.seq);
      CPPUNIT_ASSERT(seen == expected);
    }
  }

  void testConcurrentWritersOneId() {
    constexpr int kThreads = 4, kEach = 15;
    std::mutex m;
    std::vector<int64_t> got;
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        try {
          for (int i = 0; i < kEach; ++i) {
            int64_t v = appendVersion(*store_, "Patient", "contended", instantAt(t * 100 + i));
            std::lock_guard lock(m);
            got.push_back(v);
          }
        } catch (const std::exception& e) {
          std::cerr << "writer failed: " << e.what() << "\n";
          ++failures;
        }
      });
    }
    for (auto& th : threads) th.join();
    CPPUNIT_ASSERT_EQUAL(0, failures.load());
    std::sort(got.begin(), got.end());
    std::vector<int64_t> expected(kThreads * kEach);
    std::iota(expected.begin(), expected.end(), 1);
    CPPUNIT_ASSERT(got == expected);  // every writer got its own version; none lost, none twice
    CPPUNIT_ASSERT_EQUAL(int64_t(kThreads * kEach), store_->read("Patient", "contended")->version);
    HistoryQuery q;
    q.type = "Patient";
    q.id = "contended";
    q.count = 1000;
    HistoryPage page = store_->history(q);
    CPPUNIT_ASSERT_EQUAL(int64_t(kThreads * kEach), page.total);
    std::vector<int64_t> versions = versionsOf(page.entries);
    std::reverse(versions.begin(), versions.end());
    CPPUNIT_ASSERT(versions == expected);  // and seq order is version order
    for (int64_t v = 1; v <= kThreads * kEach; ++v) CPPUNIT_ASSERT(store_->vread("Patient", "contended", v));
  }

  void testMigrationsIdempotent() {
    StoredVersion v = makeVersion("Patient", "mig", 1, instantAt(1));
    putCommitted(*store_, v);
    CPPUNIT_ASSERT_EQUAL(static_cast<int64_t>(knownMigrations()), migrationRows());
    store_.reset();
    store_ = openStore(options());
    auto second = openStore(options());  // two open at once, both already migrated
    CPPUNIT_ASSERT_EQUAL(static_cast<int64_t>(knownMigrations()), migrationRows());
    assertSameVersion(v, *second->read("Patient", "mig"));
    second.reset();
    assertSameVersion(v, *store_->read("Patient", "mig"));
  }

  // A database as the first release left it (schema step 1 only, versions without op) is
  // upgraded when a store opens it; its old versions read back with the op they most likely had.
  void testUpgradeFromSchemaVersion1() {
    store_.reset();
    dropDatabase();
    createDatabase();
    struct Old {
      const char* type;
      const char* id;
      int64_t version;
      bool deleted;
    };
    const std::vector<Old> rows = {{"Patient", "old", 1, false},  {"Patient", "old", 2, false},
                                   {"Patient", "old", 3, true},   {"Patient", "old2", 1, false},
                                   {"Observation", "o", 1, false}, {"Observation", "o", 2, true},
                                   {"Observation", "o", 3, false}};
    std::string sql =
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at TEXT NOT NULL);\n";
    sql += firstMigration().sql;
    sql += ";\nINSERT INTO schema_migrations (version, name, applied_at) VALUES (1, 'v1', '2024-01-01T00:00:00.000Z');\n";
    std::vector<StoredVersion> expected;
    int t = 0;
    for (const Old& r : rows) {
      StoredVersion v = makeVersion(r.type, r.id, r.version, instantAt(++t), r.deleted);
      sql += "INSERT INTO resource_version (type, id, version, last_updated, last_updated_us, deleted, content) "
             "VALUES ('" + v.type + "', '" + v.id + "', " + std::to_string(v.version) + ", '" + v.lastUpdated +
             "', " + std::to_string(*instantToEpochMicros(v.lastUpdated)) + ", " + boolLiteral(v.deleted) + ", " +
             bytesLiteral(v.json) + ");\n";
      expected.push_back(v);
    }
    sql += "INSERT INTO resource_current (type, id, version, deleted, seq, last_updated) "
           "SELECT type, id, version, deleted, seq, last_updated FROM resource_version v WHERE version = "
           "(SELECT max(version) FROM resource_version w WHERE w.type = v.type AND w.id = v.id);\n";
    execRaw(sql);

    store_ = openStore(options());
    CPPUNIT_ASSERT_EQUAL(static_cast<int64_t>(knownMigrations()), migrationRows());
    // The mapping: deleted -> Delete, else version 1 -> Create, later -> Update. (Observation/o
    // version 3 was a re-creation after a deletion; PUT is the only way to do that.)
    const std::vector<WriteOp> mapped = {WriteOp::Create, WriteOp::Update, WriteOp::Delete, WriteOp::Create,
                                         WriteOp::Create, WriteOp::Delete, WriteOp::Update};
    for (size_t i = 0; i < expected.size(); ++i) {
      auto got = store_->vread(expected[i].type, expected[i].id, expected[i].version);
      CPPUNIT_ASSERT(got.has_value());
      CPPUNIT_ASSERT(got->seq > 0);
      expected[i].seq = got->seq;
      CPPUNIT_ASSERT_EQUAL(static_cast<int>(mapped[i]), static_cast<int>(got->op));
      expected[i].op = mapped[i];
      assertSameVersion(expected[i], *got);
    }
    assertSameVersion(expected[2], *store_->read("Patient", "old"));
    assertSameVersion(expected[3], *store_->read("Patient", "old2"));
    assertSameVersion(expected[6], *store_->read("Observation", "o"));
    HistoryQuery q;
    q.type = "Patient";
    q.id = "old";
    HistoryPage page = store_->history(q);
    CPPUNIT_ASSERT(opsOf(page.entries) == (std::vector<WriteOp>{WriteOp::Delete, WriteOp::Update, WriteOp::Create}));
    CPPUNIT_ASSERT_EQUAL(int64_t(3), page.total);
    HistoryQuery sys;
    std::vector<StoredVersion> all = allPages(*store_, sys);
    CPPUNIT_ASSERT_EQUAL(expected.size(), all.size());
    for (size_t i = 0; i < all.size(); ++i) assertSameVersion(expected[expected.size() - 1 - i], all[i]);

    // The upgraded database takes new versions with their recorded op, next to the old ones.
    StoredVersion recreated = makeVersion("Patient", "old", 4, instantAt(100));
    StoredVersion byPut = makeVersion("Patient", "new", 1, instantAt(101));
    byPut.op = WriteOp::Update;
    {
      auto tx = store_->begin();
      CPPUNIT_ASSERT_EQUAL(int64_t(3), tx->current("Patient", "old")->version);
      tx->put(recreated);
      tx->put(byPut);
      tx->commit();
    }
    CPPUNIT_ASSERT(recreated.seq > expected.back().seq);
    assertSameVersion(recreated, *store_->read("Patient", "old"));
    assertSameVersion(byPut, *store_->vread("Patient", "new", 1));
    assertSameVersion(expected[0], *store_->vread("Patient", "old", 1));

    // Opening again applies nothing more.
    store_.reset();
    store_ = openStore(options());
    CPPUNIT_ASSERT_EQUAL(static_cast<int64_t>(knownMigrations()), migrationRows());
    assertSameVersion(byPut, *store_->read("Patient", "new"));
  }

  void testConcurrentFirstOpen() {
    // Several nodes start at once against an empty database: every one opens, each migration
    // step is applied once.
    store_.reset();
    dropDatabase();
    createDatabase();
    constexpr int kNodes = 4;
    std::vector<std::unique_ptr<ResourceStore>> nodes(kNodes);
    std::vector<std::string> errors(kNodes);
    std::vector<std::thread> threads;
    for (int i = 0; i < kNodes; ++i) {
      threads.emplace_back([&, i] {
        try {
          nodes[i] = openStore(options());
        } catch (const std::exception& e) {
          errors[i] = e.what();
        }
      });
    }
    for (auto& th : threads) th.join();
    for (int i = 0; i < kNodes; ++i) {
      CPPUNIT_ASSERT_EQUAL(std::string(), errors[i]);
      CPPUNIT_ASSERT(nodes[i]);
    }
    CPPUNIT_ASSERT_EQUAL(static_cast<int64_t>(knownMigrations()), migrationRows());
    CPPUNIT_ASSERT_EQUAL(int64_t(1), appendVersion(*nodes[0], "Patient", "n", instantAt(1)));
    CPPUNIT_ASSERT_EQUAL(int64_t(2), appendVersion(*nodes[1], "Patient", "n", instantAt(2)));
    CPPUNIT_ASSERT_EQUAL(int64_t(2), nodes[3]->read("Patient", "n")->version);
  }

  void testHealthyAndPoolStats() {
    CPPUNIT_ASSERT(store_->healthy());
    StoreOptions o = options();
    StorePoolStats s = store_->poolStats();
    CPPUNIT_ASSERT_EQUAL(o.poolMax, s.capacity);
    CPPUNIT_ASSERT(s.allocated >= o.poolMin);
    CPPUNIT_ASSERT(s.allocated <= s.capacity);
    CPPUNIT_ASSERT_EQUAL(0, s.inUse);
    CPPUNIT_ASSERT_EQUAL(s.allocated, s.idle);
    {
      auto tx = store_->begin();
      StorePoolStats during = store_->poolStats();
      CPPUNIT_ASSERT_EQUAL(1, during.inUse);
      CPPUNIT_ASSERT_EQUAL(during.allocated - 1, during.idle);
    }
    CPPUNIT_ASSERT_EQUAL(0, store_->poolStats().inUse);
  }

  void testUnicodeAndBinaryRoundTrip() {
    StoredVersion v = makeVersion("Patient", "uni", 1, instantAt(1));
    v.json =
        resourceJson("Patient", "uni", 1,
                     ",\"name\":[{\"family\":\"Zoë Σωκράτης 日本語 🚑\",\"given\":[\"e\u0301\",\"\u2028\"]}]");
    CPPUNIT_ASSERT(v.json.find("\xF0\x9F\x9A\x91") != std::string::npos);  // the ambulance, as UTF-8 bytes
    putCommitted(*store_, v);
    assertSameVersion(v, *store_->read("Patient", "uni"));

    // The store keeps bytes, not text: NUL, invalid UTF-8 and every byte value survive.
    StoredVersion raw = makeVersion("Binary", "bytes", 1, instantAt(2));
    raw.json.clear();
    for (int i = 0; i < 256; ++i) raw.json.push_back(static_cast<char>(i));
    raw.json += std::string("\0\xff\xfe", 3);
    putCommitted(*store_, raw);
    assertSameVersion(raw, *store_->read("Binary", "bytes"));
    assertSameVersion(raw, *store_->vread("Binary", "bytes", 1));
    HistoryQuery q;
    q.type = "Binary";
    HistoryPage page = store_->history(q);
    CPPUNIT_ASSERT_EQUAL(size_t(1), page.entries.size());
    assertSameVersion(raw, page.entries[0]);
  }

  void testLargeContent() {
    std::mt19937 rng(42);
    std::string big = R"({"resourceType":"Binary","id":"big","data":")";
    const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    while (big.size() < (1 << 20)) big.push_back(alphabet[rng() % 64]);
    big += "\"}";
    StoredVersion v = makeVersion("Binary", "big", 1, instantAt(1));
    v.json = big;
    putCommitted(*store_, v);
    StoredVersion v2 = makeVersion("Binary", "big", 2, instantAt(2));
    v2.json = big + " ";
    putCommitted(*store_, v2);
    assertSameVersion(v2, *store_->read("Binary", "big"));
    assertSameVersion(v, *store_->vread("Binary", "big", 1));
    HistoryQuery q;
    q.type = "Binary";
    q.id = "big";
    HistoryPage page = store_->history(q);
    CPPUNIT_ASSERT_EQUAL(size_t(2), page.entries.size());
    assertSameVersion(v2, page.entries[0]);
    assertSameVersion(v, page.entries[1]);
  }

  void testReopenKeepsData() {
    std::vector<StoredVersion> written;
    for (int n = 1; n <= 3; ++n) {
      for (const char* id : {"a", "b"}) {
        StoredVersion v = makeVersion("Patient", id, n, instantAt(n));
        putCommitted(*store_, v);
        written.push_back(v);
      }
    }
    StoredVersion del = makeVersion("Patient", "b", 4, instantAt(9), true);
    putCommitted(*store_, del);
    written.push_back(del);
    store_.reset();
    store_ = openStore(options());
    for (const auto& v : written) assertSameVersion(v, *store_->vread(v.type, v.id, v.version));
    assertSameVersion(written[4], *store_->read("Patient", "a"));
    assertSameVersion(del, *store_->read("Patient", "b"));
    HistoryQuery q;
    CPPUNIT_ASSERT_EQUAL(size_t(7), store_->history(q).entries.size());
    int64_t seq = 0;
    CPPUNIT_ASSERT_EQUAL(int64_t(4), appendVersion(*store_, "Patient", "a", instantAt(10), &seq));
    CPPUNIT_ASSERT(seq > del.seq);  // the sequence continues after a restart
  }

  void testCommitSurvivesKill9() {
    for (const char* sync : {"FULL", "NORMAL"}) {
      const std::string id = std::string("crash-") + sync;
      const int commits = 20;
      int fds[2];
      CPPUNIT_ASSERT_EQUAL(0, pipe(fds));
      posix_spawn_file_actions_t actions;
      posix_spawn_file_actions_init(&actions);
      posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
      posix_spawn_file_actions_addclose(&actions, fds[0]);
      const std::string url = options().url, count = std::to_string(commits);
      std::vector<char*> argv = {
          const_cast<char*>(STORE_CRASH_CHILD), const_cast<char*>(url.c_str()), const_cast<char*>(id.c_str()),
          const_cast<char*>(count.c_str()),     const_cast<char*>(sync),        nullptr};
      pid_t pid = 0;
      int rc = posix_spawn(&pid, STORE_CRASH_CHILD, &actions, nullptr, argv.data(), environ);
      posix_spawn_file_actions_destroy(&actions);
      close(fds[1]);
      CPPUNIT_ASSERT_EQUAL(0, rc);

      // Wait until the child reports its last commit, then kill it without any chance to clean up.
      std::string out;
      const std::string done = "committed " + count + "\n";
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (out.find(done) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
        pollfd p{fds[0], POLLIN, 0};
        if (poll(&p, 1, 1000) <= 0) continue;
        char buf[256];
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
      }
      close(fds[0]);
      kill(pid, SIGKILL);
      int status = 0;
      waitpid(pid, &status, 0);
      CPPUNIT_ASSERT_MESSAGE("child did not commit: " + out, out.find(done) != std::string::npos);
      CPPUNIT_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

      store_.reset();
      store_ = openStore(options());
      auto read = store_->read("Patient", id);
      CPPUNIT_ASSERT(read.has_value());
      CPPUNIT_ASSERT_EQUAL(int64_t(commits), read->version);
      for (int n = 1; n <= commits; ++n) CPPUNIT_ASSERT(store_->vread("Patient", id, n));
      // The database is fully usable after the crash.
      CPPUNIT_ASSERT_EQUAL(int64_t(commits + 1), appendVersion(*store_, "Patient", id, instantAt(1)));
    }
  }

  // ---- Search index and generic queries (schema version 3) -----------------------------------

  // Rows written with a version come back from every table as written: inside the transaction
  // first (its own uncommitted writes), for everyone else only after the commit.
  void testIndexReplaceAndQuery() {
    const std::vector<IndexRow> rows = everyKind("o1");
    {
      auto tx = store_->begin();
      StoredVersion v = makeVersion("Observation", "o1", 1, instantAt(1));
      tx->put(v);
      tx->replaceIndex("Observation", "o1", rows);
      CPPUNIT_ASSERT(indexOf(queryOf(*tx), "Observation", "o1") == sortedRows(rows));
      CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Observation", "o1").empty());
      tx->commit();
    }
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Observation", "o1") == sortedRows(rows));
    // The same id under another type, and another id of the type, keep their own rows.
    writeIndexed(*store_, "Patient", "o1", 1, {stringRow("family", "other", "Other")});
    writeIndexed(*store_, "Observation", "o2", 1, everyKind("o2"));
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Observation", "o1") == sortedRows(rows));
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Patient", "o1") ==
                   sortedRows({stringRow("family", "other", "Other")}));
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Observation", "o2") == sortedRows(everyKind("o2")));

    // Searches as the engine writes them: by token, by reference target, by date range.
    CPPUNIT_ASSERT(idsWithToken(queryOf(*store_), "Observation", "identifier", "urn:sys", "o2") ==
                   std::vector<std::string>{"o2"});
    CPPUNIT_ASSERT(idsWithToken(queryOf(*store_), "Observation", "code", "http://loinc.org", "1234-5") ==
                   (std::vector<std::string>{"o1", "o2"}));
    auto byRef = store_->query({"SELECT type, id FROM search_reference WHERE target_type = ? AND target_id = ?",
                                {std::string("Patient"), std::string("p-o1")}});
    CPPUNIT_ASSERT_EQUAL(size_t(1), byRef.size());
    CPPUNIT_ASSERT_EQUAL(std::string("o1"), str(byRef[0][1]));
    auto byDate = store_->query({"SELECT count(*) FROM search_date WHERE type = ? AND param = ? AND lo <= ? AND hi >= ?",
                                 {std::string("Observation"), std::string("period"), int64_t{1704067200000000},
                                  int64_t{1704067200000000}}});
    CPPUNIT_ASSERT_EQUAL(int64_t(4), i64(byDate[0][0]));  // both open-ended periods of both resources
    auto byNumber = store_->query({"SELECT count(*) FROM search_number WHERE type = ? AND value < ?",
                                   {std::string("Observation"), 0.0}});
    CPPUNIT_ASSERT_EQUAL(int64_t(2), i64(byNumber[0][0]));
  }

  // A new version's rows replace the old ones as a whole; writing the same rows again leaves one
  // copy of each.
  void testIndexReplaceRemovesOldRows() {
    writeIndexed(*store_, "Patient", "r", 1, everyKind("v1"));
    writeIndexed(*store_, "Patient", "keep", 1, everyKind("keep"));
    const std::vector<IndexRow> v2 = {stringRow("family", "new", "New"),
                                      referenceRow("general-practitioner", "Practitioner", "dr", "Practitioner/dr")};
    writeIndexed(*store_, "Patient", "r", 2, v2);
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Patient", "r") == sortedRows(v2));
    writeIndexed(*store_, "Patient", "r", 3, v2);
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Patient", "r") == sortedRows(v2));
    CPPUNIT_ASSERT(idsWithToken(queryOf(*store_), "Patient", "identifier", "urn:sys", "v1").empty());
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Patient", "keep") == sortedRows(everyKind("keep")));
    // Replacing twice within one transaction keeps the second set only.
    {
      auto tx = store_->begin();
      StoredVersion v4 = makeVersion("Patient", "r", 4, instantAt(4));
      tx->put(v4);
      tx->replaceIndex("Patient", "r", everyKind("x"));
      tx->replaceIndex("Patient", "r", {uriRow("url", "u")});
      tx->commit();
    }
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Patient", "r") == sortedRows({uriRow("url", "u")}));
  }

  // Whatever old and new rows share, the stored rows end up exactly the new ones: rows in common,
  // rows that go, rows that come, repeated rows (counted as given), kinds that empty or fill,
  // more rows of one kind than one statement carries. A NaN number is not stored.
  void testIndexReplaceKeepsExactlyTheNewRows() {
    auto many = [](const std::string& tag, int n) {
      std::vector<IndexRow> rows;
      for (int i = 0; i < n; ++i) rows.push_back(stringRow("given", tag + std::to_string(i), tag));
      return rows;
    };
    const IndexRow a = tokenRow("identifier", "s", "a"), b = tokenRow("identifier", "s", "b"),
                   c = tokenRow("identifier", "s", "c"), d = tokenRow("identifier", "s", "d");
    std::vector<std::vector<IndexRow>> versions = {
        {a, b, c, numberRow("n", 1)},
        {b, c, d, numberRow("n", 1), numberRow("n", 2)},  // a goes, d and n=2 come
        {a, a, b, dateRow("date", 1, 2)},                  // repeated rows, number kind emptied
        {a, b, b, dateRow("date", 1, 2)},
        many("x", 19),                                     // 8 + 8 + 3 per statement
        many("x", 17),
        [&] {
          auto rows = many("y", 9);
          rows.push_back(numberRow("nan", std::nan("")));
          rows.push_back(numberRow("n", 3));
          return rows;
        }(),
    };
    int64_t version = 0;
    for (const auto& rows : versions) {
      writeIndexed(*store_, "Patient", "ex", ++version, rows);
      std::vector<IndexRow> expected;
      for (const IndexRow& r : rows)
        if (!(r.kind == IndexKind::Number && std::isnan(r.value))) expected.push_back(r);
      CPPUNIT_ASSERT_MESSAGE("version " + std::to_string(version),
                             indexOf(queryOf(*store_), "Patient", "ex") == sortedRows(expected));
    }
  }

  // A transaction that creates a resource may index it more than once, or index it before the put
  // (both replace as usual), and a create rolled back to a savepoint leaves nothing behind.
  void testIndexInTheCreatingTransaction() {
    {
      auto tx = store_->begin();
      StoredVersion v = makeVersion("Patient", "twice", 1, instantAt(1));
      tx->put(v);
      tx->replaceIndex("Patient", "twice", everyKind("first"));
      tx->replaceIndex("Patient", "twice", everyKind("second"));
      tx->replaceIndex("Patient", "early", everyKind("early"));  // before its put
      StoredVersion early = makeVersion("Patient", "early", 1, instantAt(1));
      tx->put(early);
      tx->replaceIndex("Patient", "early", {uriRow("url", "after-put")});
      tx->commit();
    }
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Patient", "twice") == sortedRows(everyKind("second")));
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Patient", "early") == sortedRows({uriRow("url", "after-put")}));
    {
      auto tx = store_->begin();
      tx->savepoint();
      StoredVersion v = makeVersion("Patient", "undone", 1, instantAt(2));
      tx->put(v);
      tx->replaceIndex("Patient", "undone", everyKind("undone"));
      tx->rollbackToSavepoint();
      tx->savepoint();
      StoredVersion again = makeVersion("Patient", "undone", 1, instantAt(3));
      tx->put(again);
      tx->replaceIndex("Patient", "undone", everyKind("again"));
      tx->releaseSavepoint();
      tx->commit();
    }
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Patient", "undone") == sortedRows(everyKind("again")));
  }

  // A deletion removes every row of the resource; re-creating it indexes it again.
  void testIndexDeletionRemovesRows() {
    writeIndexed(*store_, "Patient", "d", 1, everyKind("d"));
    writeIndexed(*store_, "Patient", "other", 1, everyKind("other"));
    writeIndexed(*store_, "Patient", "d", 2, {}, true);
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Patient", "d").empty());
    for (const char* table : storeimpl::kIndexTables) {
      auto n = store_->query({std::string("SELECT count(*) FROM ") + table + " WHERE id = ?", {std::string("d")}});
      CPPUNIT_ASSERT_EQUAL_MESSAGE(table, int64_t(0), i64(n[0][0]));
    }
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Patient", "other") == sortedRows(everyKind("other")));
    writeIndexed(*store_, "Patient", "d", 3, everyKind("again"));
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Patient", "d") == sortedRows(everyKind("again")));
    CPPUNIT_ASSERT(idsWithToken(queryOf(*store_), "Patient", "identifier", "urn:sys", "again") ==
                   std::vector<std::string>{"d"});
  }

  // Index rows live and die with the transaction (and the savepoint) that wrote them.
  void testIndexRollback() {
    writeIndexed(*store_, "Patient", "kept", 1, everyKind("kept"));
    {
      auto tx = store_->begin();
      StoredVersion fresh = makeVersion("Patient", "fresh", 1, instantAt(2));
      tx->put(fresh);
      tx->replaceIndex("Patient", "fresh", everyKind("fresh"));
      StoredVersion kept2 = makeVersion("Patient", "kept", 2, instantAt(2));
      tx->put(kept2);
      tx->replaceIndex("Patient", "kept", {});
      // destroyed without commit
    }
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Patient", "fresh").empty());
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Patient", "kept") == sortedRows(everyKind("kept")));

    auto tx = store_->begin();
    tx->savepoint();
    StoredVersion a = makeVersion("Patient", "unit-a", 1, instantAt(3));
    tx->put(a);
    tx->replaceIndex("Patient", "unit-a", everyKind("a"));
    tx->releaseSavepoint();
    tx->savepoint();
    StoredVersion b = makeVersion("Patient", "unit-b", 1, instantAt(3));
    tx->put(b);
    tx->replaceIndex("Patient", "unit-b", everyKind("b"));
    StoredVersion kept2 = makeVersion("Patient", "kept", 2, instantAt(3));
    tx->put(kept2);
    tx->replaceIndex("Patient", "kept", {stringRow("family", "changed", "Changed")});
    tx->rollbackToSavepoint();
    CPPUNIT_ASSERT(indexOf(queryOf(*tx), "Patient", "unit-b").empty());
    tx->commit();
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Patient", "unit-a") == sortedRows(everyKind("a")));
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Patient", "unit-b").empty());
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Patient", "kept") == sortedRows(everyKind("kept")));
  }

  // A JSON string may carry \u0000. Indexing such a value must not fail the write; the row is
  // stored (PostgreSQL text cannot hold NUL: the byte is dropped there, in the index and in query
  // values alike) and found again with the same value.
  void testIndexValuesWithNulBytes() {
    const std::string withNul("a\0b", 3);
    writeIndexed(*store_, "Patient", "nul", 1, {stringRow("family", withNul, withNul), tokenRow("identifier", "s", withNul)});
    CPPUNIT_ASSERT(idsWithToken(queryOf(*store_), "Patient", "identifier", "s", withNul) ==
                   std::vector<std::string>{"nul"});
    CPPUNIT_ASSERT_EQUAL(size_t(2), indexOf(queryOf(*store_), "Patient", "nul").size());
  }

  // A reader sees the rows of one version or of the next, never a mix and never none: the
  // replacement is atomic with its commit.
  void testIndexReadersSeeWholeReplacements() {
    constexpr int kRows = 12, kVersions = 120;
    auto rowsOf = [](int version) {
      std::vector<IndexRow> rows;
      for (int i = 0; i < kRows; ++i)
        rows.push_back(stringRow("family", "v" + std::to_string(version) + "-" + std::to_string(i), "x"));
      return rows;
    };
    writeIndexed(*store_, "Patient", "churn", 1, rowsOf(1));
    std::atomic<bool> stop{false};
    std::atomic<int> reads{0}, bad{0};
    std::string badSample;
    std::mutex sampleMutex;
    auto reader = [&] {
      try {
        while (!stop) {
          auto rows = store_->query({"SELECT text FROM search_string WHERE type = ? AND id = ? ORDER BY text",
                                     {std::string("Patient"), std::string("churn")}});
          std::set<std::string> versions;
          for (const auto& r : rows) versions.insert(str(r[0]).substr(0, str(r[0]).find('-')));
          if (rows.size() != kRows || versions.size() != 1) {
            ++bad;
            std::lock_guard lock(sampleMutex);
            badSample = std::to_string(rows.size()) + " rows, " + std::to_string(versions.size()) + " versions";
          }
          ++reads;
        }
      } catch (const std::exception& e) {
        ++bad;
        std::lock_guard lock(sampleMutex);
        badSample = e.what();
      }
    };
    std::thread r1(reader), r2(reader);
    try {
      for (int v = 2; v <= kVersions; ++v) writeIndexed(*store_, "Patient", "churn", v, rowsOf(v));
    } catch (...) {
      stop = true;
      r1.join();
      r2.join();
      throw;
    }
    stop = true;
    r1.join();
    r2.join();
    CPPUNIT_ASSERT(reads > 0);
    CPPUNIT_ASSERT_EQUAL_MESSAGE(badSample, 0, bad.load());
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Patient", "churn") == sortedRows(rowsOf(kVersions)));
  }

  // Column values come back by type: integers (and the deleted flag, 0/1) as int64, reals as
  // double, text as string, the resource content as its exact bytes, NULL as monostate; parameters
  // of each kind bind.
  void testQueryTypeMapping() {
    StoredVersion a = makeVersion("Patient", "a", 1, instantAt(1));
    for (int i = 0; i < 256; ++i) a.json.push_back(static_cast<char>(i));  // any byte survives
    putCommitted(*store_, a);
    writeIndexed(*store_, "Patient", "b", 1, {numberRow("n", 2.5)});
    writeIndexed(*store_, "Patient", "b", 2, {}, true);
    const std::string sql =
        "SELECT c.id, c.version, c.deleted, v.content, NULL, CAST(? AS DOUBLE PRECISION), CAST(? AS TEXT), "
        "CAST(? AS BIGINT), c.last_updated FROM resource_current c JOIN resource_version v ON v.seq = c.seq "
        "WHERE c.type = ? AND c.version >= ? ORDER BY c.id";
    auto tx = store_->begin();
    for (const QueryFn& query : {queryOf(*store_), queryOf(*tx)}) {
      auto rows = query({sql, {0.25, std::string("Zoë"), std::monostate{}, std::string("Patient"), int64_t{1}}});
      CPPUNIT_ASSERT_EQUAL(size_t(2), rows.size());
      CPPUNIT_ASSERT_EQUAL(size_t(9), rows[0].size());
      CPPUNIT_ASSERT_EQUAL(std::string("a"), str(rows[0][0]));
      CPPUNIT_ASSERT_EQUAL(int64_t(1), i64(rows[0][1]));
      CPPUNIT_ASSERT_EQUAL(int64_t(0), i64(rows[0][2]));
      CPPUNIT_ASSERT(a.json == str(rows[0][3]));
      CPPUNIT_ASSERT(std::holds_alternative<std::monostate>(rows[0][4]));
      CPPUNIT_ASSERT_EQUAL(0.25, dbl(rows[0][5]));
      CPPUNIT_ASSERT_EQUAL(std::string("Zoë"), str(rows[0][6]));
      CPPUNIT_ASSERT(std::holds_alternative<std::monostate>(rows[0][7]));
      CPPUNIT_ASSERT_EQUAL(instantAt(1), str(rows[0][8]));
      CPPUNIT_ASSERT_EQUAL(std::string("b"), str(rows[1][0]));
      CPPUNIT_ASSERT_EQUAL(int64_t(2), i64(rows[1][1]));
      CPPUNIT_ASSERT_EQUAL(int64_t(1), i64(rows[1][2]));  // deleted
      CPPUNIT_ASSERT_EQUAL(std::string(), str(rows[1][3]));
    }
    // Portable boolean filter, aggregate types, extreme integers and doubles as parameters.
    auto live = store_->query({"SELECT id FROM resource_current WHERE type = ? AND NOT deleted", {std::string("Patient")}});
    CPPUNIT_ASSERT_EQUAL(size_t(1), live.size());
    CPPUNIT_ASSERT_EQUAL(std::string("a"), str(live[0][0]));
    auto agg = store_->query({"SELECT count(*), max(version), CAST(? AS BIGINT), CAST(? AS BIGINT), "
                              "CAST(? AS DOUBLE PRECISION) FROM resource_current",
                              {int64_t{INT64_MIN}, int64_t{INT64_MAX}, -1.5e-300}});
    CPPUNIT_ASSERT_EQUAL(int64_t(2), i64(agg[0][0]));
    CPPUNIT_ASSERT_EQUAL(int64_t(2), i64(agg[0][1]));
    CPPUNIT_ASSERT_EQUAL(int64_t{INT64_MIN}, i64(agg[0][2]));
    CPPUNIT_ASSERT_EQUAL(int64_t{INT64_MAX}, i64(agg[0][3]));
    CPPUNIT_ASSERT_EQUAL(-1.5e-300, dbl(agg[0][4]));
    // No rows: an empty result, not an error.
    CPPUNIT_ASSERT(store_->query({"SELECT id FROM resource_current WHERE type = ?", {std::string("None")}}).empty());
  }

  // Malformed queries fail as StoreUnavailable, never a crash; the store (and a transaction rolled
  // back to its savepoint) goes on working. Only reads are accepted.
  // execute(): integration-table writes commit and roll back with the transaction; resource and
  // index tables, reads and anything else are refused and leave the transaction usable.
  void testExecuteIntegrationTables() {
    const std::string insert =
        "INSERT INTO hl7_message (id, sender, control_id, message_type, received_at, received_us, raw_b64, status) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
    auto row = [](const std::string& id, const std::string& control) {
      return std::vector<SqlValue>{id, std::string("LAB^HOSP"), control, std::string("ORU^R01"), instantAt(1),
                                   int64_t{1000}, std::string("TVNI"), std::string("received")};
    };
    const std::string count = "SELECT count(*) FROM hl7_message";
    {
      auto tx = store_->begin();
      CPPUNIT_ASSERT_EQUAL(int64_t(1), tx->execute({insert, row("m1", "c1")}));
      tx->savepoint();
      // Same sender and control id: the unique key refuses it, the transaction stays usable.
      CPPUNIT_ASSERT_THROW(tx->execute({insert, row("m2", "c1")}), StoreUnavailable);
      tx->rollbackToSavepoint();
      const std::vector<SqlQuery> refused = {
          {"UPDATE resource_current SET version = 9", {}},
          {"DELETE FROM search_token", {}},
          {"SELECT 1", {}},
          {"CREATE TABLE x (a INTEGER)", {}},
          {"DROP TABLE hl7_message", {}},
          {"", {}},
      };
      for (const SqlQuery& q : refused) {
        tx->savepoint();
        CPPUNIT_ASSERT_THROW_MESSAGE(q.sql, tx->execute(q), StoreUnavailable);
        tx->rollbackToSavepoint();
      }
      CPPUNIT_ASSERT_EQUAL(int64_t(1),
                           tx->execute({"UPDATE hl7_message SET status = ? WHERE id = ?",
                                        {std::string("processed"), std::string("m1")}}));
      CPPUNIT_ASSERT_EQUAL(int64_t(0), tx->execute({"UPDATE hl7_message SET status = ? WHERE id = ?",
                                                    {std::string("processed"), std::string("none")}}));
      tx->commit();
    }
    CPPUNIT_ASSERT_EQUAL(int64_t(1), i64(store_->query({count, {}})[0][0]));
    {
      auto tx = store_->begin();
      tx->execute({insert, row("m3", "c3")});
      // no commit: rolled back when the transaction is dropped
    }
    CPPUNIT_ASSERT_EQUAL(int64_t(1), i64(store_->query({count, {}})[0][0]));
    const auto rows = store_->query({"SELECT status, error, ack_code FROM hl7_message WHERE id = ?", {std::string("m1")}});
    CPPUNIT_ASSERT_EQUAL(std::string("processed"), str(rows.at(0)[0]));
    CPPUNIT_ASSERT_EQUAL(std::string(""), str(rows.at(0)[1]));  // defaults, not NULL
    CPPUNIT_ASSERT_EQUAL(std::string(""), str(rows.at(0)[2]));
  }

  void testQueryErrors() {
    writeIndexed(*store_, "Patient", "e", 1, everyKind("e"));
    const std::string two = "SELECT id FROM resource_current WHERE type = ? AND id = ?";
    const std::vector<SqlQuery> bad = {
        {two, {std::string("Patient")}},                                                   // too few values
        {two, {std::string("Patient"), std::string("e"), std::string("extra")}},           // too many
        {"SELECT id FROM resource_current WHERE type = ?", {}},                            // none
        {"SELECT FROM WHERE", {}},                                                         // syntax
        {"SELECT * FROM no_such_table", {}},                                               // unknown table
        {"DELETE FROM search_string", {}},                                                 // a write
        {"UPDATE resource_current SET version = 9", {}},
        {"SELECT 1; DELETE FROM search_string", {}},                                       // two statements
        {"COMMIT", {}},
        {"", {}},
    };
    for (const SqlQuery& q : bad) CPPUNIT_ASSERT_THROW_MESSAGE(q.sql, store_->query(q), StoreUnavailable);
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Patient", "e") == sortedRows(everyKind("e")));
    CPPUNIT_ASSERT_EQUAL(size_t(1), store_->query({two, {std::string("Patient"), std::string("e")}}).size());

    auto tx = store_->begin();
    for (const SqlQuery& q : bad) {
      tx->savepoint();
      CPPUNIT_ASSERT_THROW_MESSAGE(q.sql, tx->query(q), StoreUnavailable);
      tx->rollbackToSavepoint();
    }
    StoredVersion v2 = makeVersion("Patient", "e", 2, instantAt(2));
    tx->put(v2);
    tx->replaceIndex("Patient", "e", {uriRow("url", "after-errors")});
    tx->commit();
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Patient", "e") == sortedRows({uriRow("url", "after-errors")}));
    CPPUNIT_ASSERT_EQUAL(int64_t(2), store_->read("Patient", "e")->version);
  }

  // More distinct SQL texts than a connection keeps prepared, each run repeatedly: every answer
  // is the right one (statements cached per SQL text must never answer for another text).
  void testQueryManyStatementShapes() {
    writeIndexed(*store_, "Patient", "s", 1, {numberRow("n", 1)});
    auto tx = store_->begin();
    for (int round = 0; round < 3; ++round) {
      for (int shape = 0; shape < 150; ++shape) {
        SqlQuery q{"SELECT CAST(? AS BIGINT) + " + std::to_string(shape) + " FROM search_number WHERE id = ?",
                   {int64_t{round * 1000}, std::string("s")}};
        auto fromStore = store_->query(q);
        auto fromTx = tx->query(q);
        CPPUNIT_ASSERT_EQUAL(size_t(1), fromStore.size());
        CPPUNIT_ASSERT_EQUAL(int64_t(round * 1000 + shape), i64(fromStore[0][0]));
        CPPUNIT_ASSERT(fromStore == fromTx);
      }
    }
  }

  // The pattern lockKey exists for: conditional create (check for a match, create if none) from
  // several writers at once creates exactly one resource per key.
  void testLockKeyCheckThenWrite() {
    constexpr int kThreads = 4, kKeys = 8;
    std::atomic<int> next{0}, failures{0}, created{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        try {
          for (int k = 0; k < kKeys; ++k) {
            const std::string value = "mrn-" + std::to_string(k);
            for (int attempt = 0;; ++attempt) {
              try {
                auto tx = store_->begin();
                tx->lockKey("Patient?identifier=urn:sys|" + value);
                bool exists = !idsWithToken(queryOf(*tx), "Patient", "identifier", "urn:sys", value).empty();
                if (!exists) {
                  StoredVersion v = makeVersion("Patient", "t" + std::to_string(t) + "-" + std::to_string(next++), 1,
                                                instantAt(k));
                  tx->put(v);
                  tx->replaceIndex("Patient", v.id, {tokenRow("identifier", "urn:sys", value)});
                }
                tx->commit();
                if (!exists) ++created;
                break;
              } catch (const StoreConflict&) {
                if (attempt > 50) throw;
              }
            }
          }
        } catch (const std::exception& e) {
          std::cerr << "conditional writer failed: " << e.what() << "\n";
          ++failures;
        }
      });
    }
    for (auto& th : threads) th.join();
    CPPUNIT_ASSERT_EQUAL(0, failures.load());
    CPPUNIT_ASSERT_EQUAL(kKeys, created.load());
    for (int k = 0; k < kKeys; ++k) {
      CPPUNIT_ASSERT_EQUAL(size_t(1), idsWithToken(queryOf(*store_), "Patient", "identifier", "urn:sys",
                                                   "mrn-" + std::to_string(k))
                                          .size());
    }
  }

  // A database at schema version 2 (the release before search) is upgraded on open: its data is
  // kept, the index tables are there and empty, and writes index from then on.
  void testUpgradeFromSchemaVersion2() {
    store_.reset();
    dropDatabase();
    createDatabase();
    std::string sql = schemaUpTo(2);
    std::vector<StoredVersion> old;
    for (int i = 0; i < 5; ++i) {
      StoredVersion v = makeVersion("Patient", "v2-" + std::to_string(i), 1, instantAt(i));
      sql += "INSERT INTO resource_version (type, id, version, last_updated, last_updated_us, deleted, content, op) "
             "VALUES ('Patient', '" + v.id + "', 1, '" + v.lastUpdated + "', " +
             std::to_string(*instantToEpochMicros(v.lastUpdated)) + ", " + boolLiteral(false) + ", " +
             bytesLiteral(v.json) + ", 1);\n";
      old.push_back(v);
    }
    sql += "INSERT INTO resource_current (type, id, version, deleted, seq, last_updated) "
           "SELECT type, id, version, deleted, seq, last_updated FROM resource_version;\n";
    execRaw(sql);

    store_ = openStore(options());
    CPPUNIT_ASSERT_EQUAL(static_cast<int64_t>(knownMigrations()), migrationRows());
    CPPUNIT_ASSERT(knownMigrations() >= 3);
    for (StoredVersion& v : old) {
      auto got = store_->read(v.type, v.id);
      CPPUNIT_ASSERT(got.has_value());
      v.seq = got->seq;
      assertSameVersion(v, *got);
    }
    for (const char* table : storeimpl::kIndexTables) {
      CPPUNIT_ASSERT_EQUAL(int64_t(0), i64(store_->query({std::string("SELECT count(*) FROM ") + table, {}})[0][0]));
    }
    // _lastUpdated order over the upgraded rows (served by the new resource_current index).
    auto newest = store_->query({"SELECT id FROM resource_current WHERE type = ? AND last_updated >= ? "
                                 "ORDER BY last_updated DESC LIMIT 2",
                                 {std::string("Patient"), instantAt(2)}});
    CPPUNIT_ASSERT_EQUAL(size_t(2), newest.size());
    CPPUNIT_ASSERT_EQUAL(std::string("v2-4"), str(newest[0][0]));
    CPPUNIT_ASSERT_EQUAL(std::string("v2-3"), str(newest[1][0]));
    writeIndexed(*store_, "Patient", "v2-0", 2, everyKind("up"));
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Patient", "v2-0") == sortedRows(everyKind("up")));
    store_.reset();
    store_ = openStore(options());
    CPPUNIT_ASSERT_EQUAL(static_cast<int64_t>(knownMigrations()), migrationRows());
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Patient", "v2-0") == sortedRows(everyKind("up")));
  }
};

// ---- SQLite ---------------------------------------------------------------------------------

class SqliteStoreTest : public StoreConformance {
  CPPUNIT_TEST_SUB_SUITE(SqliteStoreTest, StoreConformance);
  CPPUNIT_TEST(testTwoStoresOnOneFile);
  CPPUNIT_TEST(testSynchronousOption);
  CPPUNIT_TEST(testOpenErrors);
  CPPUNIT_TEST(testCheckpointsWithoutFurtherCommits);
  CPPUNIT_TEST(testWalStartsOverUnderSteadyWrites);
  CPPUNIT_TEST(testPinnedWalRecovers);
  CPPUNIT_TEST(testQueryLeavesNoReadTransaction);
  CPPUNIT_TEST(testLocalReferenceUrlNotStored);
  CPPUNIT_TEST_SUITE_END();

 protected:
  void createDatabase() override {
    if (dir_.empty()) {
      char tmpl[] = "/tmp/hearth-store-test-XXXXXX";
      CPPUNIT_ASSERT(mkdtemp(tmpl) != nullptr);
      dir_ = tmpl;
    }
  }
  void dropDatabase() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
    dir_.clear();
  }
  StoreOptions options() override {
    StoreOptions o;
    o.url = "sqlite:" + dir_ + "/hearth.db";
    o.poolMin = 2;
    o.poolMax = 6;
    return o;
  }
  std::string expectedBackend() override { return "sqlite"; }
  size_t knownMigrations() override { return storeimpl::sqliteMigrations().size(); }
  const storeimpl::Migration& firstMigration() override { return storeimpl::sqliteMigrations().at(0); }
  const std::vector<storeimpl::Migration>& migrationSteps() override { return storeimpl::sqliteMigrations(); }
  void execRaw(const std::string& sql) override {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2((dir_ + "/hearth.db").c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                             nullptr);
    char* err = nullptr;
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    sqlite3_close(db);
    CPPUNIT_ASSERT_EQUAL_MESSAGE(msg, SQLITE_OK, rc);
  }
  std::string boolLiteral(bool b) override { return b ? "1" : "0"; }
  std::string bytesLiteral(std::string_view bytes) override { return "X'" + hex(bytes) + "'"; }

  std::string dbPath() const { return dir_ + "/hearth.db"; }
  std::string walPath() const { return dir_ + "/hearth.db-wal"; }
  static int64_t fileSize(const std::string& path) {
    std::error_code ec;
    auto n = std::filesystem::file_size(path, ec);
    return ec ? -1 : static_cast<int64_t>(n);
  }
  // The WAL header's checkpoint sequence number: SQLite increments it each time the WAL starts
  // over from its beginning. 0 when there is no WAL header.
  uint32_t walRestarts() const {
    unsigned char h[16] = {};
    FILE* f = std::fopen(walPath().c_str(), "rb");
    if (!f) return 0;
    size_t n = std::fread(h, 1, sizeof h, f);
    std::fclose(f);
    if (n < sizeof h) return 0;
    return (uint32_t{h[12]} << 24) | (uint32_t{h[13]} << 16) | (uint32_t{h[14]} << 8) | h[15];
  }
  // A version of about 2 KB, the size of a typical Patient.
  static StoredVersion paddedVersion(const std::string& id, int64_t version, int t) {
    StoredVersion v = makeVersion("Patient", id, version, instantAt(t));
    v.json = resourceJson("Patient", id, version, R"(,"text":{"div":")" + std::string(2000, 'x') + R"("})");
    return v;
  }
  void reopen(int intervalMs, int restartKb) {
    store_.reset();
    StoreOptions o = options();
    o.sqliteCheckpointIntervalMs = intervalMs;
    o.sqliteWalRestartKb = restartKb;
    store_ = openStore(o);
  }
  int64_t migrationRows() override {
    Poco::Data::SQLite::Connector::registerConnector();
    Poco::Data::Session s("sqlite", dir_ + "/hearth.db");
    int64_t n = -1;
    s << "SELECT count(*) FROM schema_migrations", Poco::Data::Keywords::into(n), Poco::Data::Keywords::now;
    return n;
  }

 public:
  // Two stores on one file stand for two processes: they do not share the in-process writer lock,
  // so BEGIN IMMEDIATE and the busy timeout must keep their writers apart.
  void testTwoStoresOnOneFile() {
    auto other = openStore(options());
    std::atomic<int> failures{0};
    auto work = [&](ResourceStore* s, int base) {
      try {
        for (int i = 0; i < 20; ++i) appendVersion(*s, "Patient", "shared", instantAt(base + i));
      } catch (const std::exception& e) {
        std::cerr << "writer failed: " << e.what() << "\n";
        ++failures;
      }
    };
    std::thread a(work, store_.get(), 0), b(work, other.get(), 100);
    a.join();
    b.join();
    CPPUNIT_ASSERT_EQUAL(0, failures.load());
    CPPUNIT_ASSERT_EQUAL(int64_t(40), store_->read("Patient", "shared")->version);
    CPPUNIT_ASSERT_EQUAL(int64_t(40), other->read("Patient", "shared")->version);
    for (int64_t v = 1; v <= 40; ++v) CPPUNIT_ASSERT(other->vread("Patient", "shared", v));
  }

  void testSynchronousOption() {
    store_.reset();
    StoreOptions o = options();
    o.sqliteSynchronous = "normal";
    auto normal = openStore(o);
    CPPUNIT_ASSERT_EQUAL(int64_t(1), appendVersion(*normal, "Patient", "sync", instantAt(1)));
    normal.reset();
    o.sqliteSynchronous = "OFF";  // would give up durability: refused
    CPPUNIT_ASSERT_THROW(openStore(o), StoreUnavailable);
  }

  // Committed data reaches the database file in the background, with no further commit and far
  // below SQLite's own auto-checkpoint threshold (1000 pages): checkpoints do not wait for a commit.
  void testCheckpointsWithoutFurtherCommits() {
    reopen(20, 65536);
    for (int i = 0; i < 40; ++i) {
      StoredVersion v = paddedVersion("bg" + std::to_string(i), 1, i);
      putCommitted(*store_, v);
    }
    const int64_t expected = 40 * 2000;
    for (int i = 0; i < 250 && fileSize(dbPath()) < expected; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CPPUNIT_ASSERT_MESSAGE("database file: " + std::to_string(fileSize(dbPath())) + " bytes",
                           fileSize(dbPath()) >= expected);
    StoredVersion last = paddedVersion("bg39", 1, 39);
    last.seq = store_->read("Patient", "bg39")->seq;
    assertSameVersion(last, *store_->read("Patient", "bg39"));
  }

  // A writer committing without pause never leaves SQLite an idle moment to start the WAL over;
  // the checkpointer makes one once the WAL holds sqliteWalRestartKb, so the WAL is reused instead
  // of growing with everything written.
  void testWalStartsOverUnderSteadyWrites() {
    reopen(10, 256);
    const uint32_t restartsBefore = walRestarts();
    constexpr int kWrites = 1500;  // each commit writes several 4 KB pages: tens of times 256 KB
    for (int i = 0; i < kWrites; ++i) {
      StoredVersion v = paddedVersion("steady" + std::to_string(i), 1, i);
      putCommitted(*store_, v);
    }
    const uint32_t restarts = walRestarts() - restartsBefore;
    const int64_t wal = fileSize(walPath());
    CPPUNIT_ASSERT_MESSAGE("WAL restarts: " + std::to_string(restarts), restarts >= 3);
    // Every commit writes at least three pages (table, index, current pointer): 18 MB in all.
    CPPUNIT_ASSERT_MESSAGE("WAL file: " + std::to_string(wal) + " bytes", wal < 6 * 1024 * 1024);
    HistoryQuery q;
    q.count = 1000;
    CPPUNIT_ASSERT_EQUAL(size_t(kWrites), allPages(*store_, q).size());
  }

  // A reader that keeps an old snapshot pins the WAL: writes go on (no writer waits more than
  // briefly for a restart that cannot succeed), and once the reader is gone the WAL starts over
  // and its file is trimmed back (journal_size_limit: twice sqliteWalRestartKb).
  void testPinnedWalRecovers() {
    reopen(10, 256);
    StoredVersion first = paddedVersion("pin-0", 1, 0);
    putCommitted(*store_, first);
    sqlite3* reader = nullptr;
    CPPUNIT_ASSERT_EQUAL(SQLITE_OK, sqlite3_open_v2(dbPath().c_str(), &reader, SQLITE_OPEN_READONLY, nullptr));
    CPPUNIT_ASSERT_EQUAL(SQLITE_OK, sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM resource_version;",
                                                 nullptr, nullptr, nullptr));
    double slowestMs = 0;
    for (int i = 1; i <= 600; ++i) {
      StoredVersion v = paddedVersion("pin-" + std::to_string(i), 1, i);
      auto t0 = std::chrono::steady_clock::now();
      putCommitted(*store_, v);
      slowestMs = std::max(
          slowestMs, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    const int64_t pinnedWal = fileSize(walPath());
    // The reader still sees its snapshot, and the WAL grew past what a restart would have allowed.
    int64_t seen = -1;
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(reader, "SELECT count(*) FROM resource_version", -1, &st, nullptr);
    if (sqlite3_step(st) == SQLITE_ROW) seen = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_exec(reader, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close(reader);
    CPPUNIT_ASSERT_EQUAL(int64_t(1), seen);
    CPPUNIT_ASSERT_MESSAGE("WAL file while pinned: " + std::to_string(pinnedWal), pinnedWal > 4 * 256 * 1024);
    CPPUNIT_ASSERT_MESSAGE("slowest commit while pinned: " + std::to_string(slowestMs) + " ms", slowestMs < 2000);

    const uint32_t restartsBefore = walRestarts();
    int n = 601;
    for (int i = 0; i < 100 && (walRestarts() == restartsBefore || fileSize(walPath()) > 2 * 256 * 1024 + 65536);
         ++i, ++n) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      StoredVersion v = paddedVersion("pin-" + std::to_string(n), 1, n);
      putCommitted(*store_, v);
    }
    CPPUNIT_ASSERT(walRestarts() != restartsBefore);
    CPPUNIT_ASSERT_MESSAGE("WAL file after the reader left: " + std::to_string(fileSize(walPath())),
                           fileSize(walPath()) <= 2 * 256 * 1024 + 65536);
    HistoryQuery q;
    q.count = 1000;
    CPPUNIT_ASSERT_EQUAL(size_t(n), allPages(*store_, q).size());
    assertSameVersion(first, *store_->vread("Patient", "pin-0", 1));
  }

  // ResourceStore::query ends its read transaction before returning, also when the statement fails
  // half-way: otherwise an idle pooled connection would pin the WAL (no checkpoint gets past an
  // open snapshot). A TRUNCATE checkpoint from outside succeeds only if no reader holds one.
  void testQueryLeavesNoReadTransaction() {
    for (int i = 0; i < 20; ++i) writeIndexed(*store_, "Patient", "w" + std::to_string(i), 1, everyKind("w"));
    for (int i = 0; i < 50; ++i) {
      CPPUNIT_ASSERT_EQUAL(size_t(20), store_->query({"SELECT id FROM resource_current", {}}).size());
      // abs() of the smallest integer fails at step time, after the read transaction began.
      CPPUNIT_ASSERT_THROW(store_->query({"SELECT abs(CAST(? AS INTEGER)) FROM resource_current", {int64_t{INT64_MIN}}}),
                           StoreUnavailable);
    }
    writeIndexed(*store_, "Patient", "after", 1, everyKind("after"));
    sqlite3* db = nullptr;
    CPPUNIT_ASSERT_EQUAL(SQLITE_OK, sqlite3_open_v2(dbPath().c_str(), &db, SQLITE_OPEN_READWRITE, nullptr));
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* st = nullptr;
    int busy = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
      busy = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    CPPUNIT_ASSERT_EQUAL(0, busy);
    CPPUNIT_ASSERT_EQUAL(int64_t(0), fileSize(walPath()));
  }

  // Schema 10: a plain local reference is stored without its url (it is target_type/target_id),
  // other references keep theirs and only those are in the (partial) url index. A database at
  // schema 9 is converted on open; searches by URL still find absolute references.
  void testLocalReferenceUrlNotStored() {
    store_.reset();
    dropDatabase();
    createDatabase();
    std::string sql = schemaUpTo(9);
    sql +=
        "INSERT INTO search_reference (type, id, param, target_type, target_id, url) VALUES "
        "('Observation', 'o9', 'subject', 'Patient', 'p1', 'Patient/p1'), "
        "('Observation', 'o9', 'performer', 'Practitioner', '5', 'http://other.example/fhir/Practitioner/5'), "
        "('Observation', 'o9', 'based-on', '', '', 'http://example.org/fhir/ServiceRequest/sr');\n";
    execRaw(sql);
    store_ = openStore(options());
    CPPUNIT_ASSERT_EQUAL(static_cast<int64_t>(knownMigrations()), migrationRows());
    auto stored = [&](const std::string& id) {
      std::map<std::string, std::string> out;  // param -> url column
      for (const SqlRow& r : store_->query({"SELECT param, url FROM search_reference WHERE type = 'Observation' AND id = ?", {id}})) {
        out[str(r[0])] = str(r[1]);
      }
      return out;
    };
    const std::map<std::string, std::string> upgraded = stored("o9");
    CPPUNIT_ASSERT_EQUAL(size_t(3), upgraded.size());
    CPPUNIT_ASSERT_EQUAL(std::string(), upgraded.at("subject"));
    CPPUNIT_ASSERT_EQUAL(std::string("http://other.example/fhir/Practitioner/5"), upgraded.at("performer"));
    CPPUNIT_ASSERT_EQUAL(std::string("http://example.org/fhir/ServiceRequest/sr"), upgraded.at("based-on"));

    // New writes store the same way, and read back as written.
    const std::vector<IndexRow> rows = {
        referenceRow("subject", "Patient", "p2", "Patient/p2"),
        referenceRow("performer", "Practitioner", "7", "http://other.example/fhir/Practitioner/7"),
        referenceRow("based-on", "", "", "http://example.org/fhir/ServiceRequest/sr2")};
    writeIndexed(*store_, "Observation", "o10", 1, rows);
    const std::map<std::string, std::string> fresh = stored("o10");
    CPPUNIT_ASSERT_EQUAL(std::string(), fresh.at("subject"));
    CPPUNIT_ASSERT_EQUAL(std::string("http://other.example/fhir/Practitioner/7"), fresh.at("performer"));
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Observation", "o10") == sortedRows(rows));
    // An update that keeps the rows keeps them (the comparison with the stored rows sees them equal).
    writeIndexed(*store_, "Observation", "o10", 2, rows);
    CPPUNIT_ASSERT(indexOf(queryOf(*store_), "Observation", "o10") == sortedRows(rows));

    // A search by URL, written as the search engine writes it, finds the absolute reference
    // through the partial index; the local one is found by its target.
    const std::string byUrl =
        "SELECT id FROM search_reference WHERE type = 'Observation' AND param = ? AND url <> '' AND url = ?";
    auto ids = store_->query({byUrl, {std::string("performer"), std::string("http://other.example/fhir/Practitioner/7")}});
    CPPUNIT_ASSERT_EQUAL(size_t(1), ids.size());
    CPPUNIT_ASSERT_EQUAL(std::string("o10"), str(ids[0][0]));
    sqlite3* db = nullptr;
    CPPUNIT_ASSERT_EQUAL(SQLITE_OK, sqlite3_open_v2(dbPath().c_str(), &db, SQLITE_OPEN_READONLY, nullptr));
    sqlite3_stmt* st = nullptr;
    std::string plan;
    if (sqlite3_prepare_v2(db, ("EXPLAIN QUERY PLAN " + byUrl).c_str(), -1, &st, nullptr) == SQLITE_OK) {
      while (sqlite3_step(st) == SQLITE_ROW) plan += reinterpret_cast<const char*>(sqlite3_column_text(st, 3));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    CPPUNIT_ASSERT_MESSAGE(plan, plan.find("search_reference_url") != std::string::npos);
  }

  void testOpenErrors() {
    StoreOptions o = options();
    o.url = "sqlite:" + dir_ + "/no/such/dir/hearth.db";
    CPPUNIT_ASSERT_THROW(openStore(o), StoreUnavailable);
    o.url = "sqlite::memory:";
    CPPUNIT_ASSERT_THROW(openStore(o), StoreUnavailable);
    o.url = "mysql://localhost/db";
    CPPUNIT_ASSERT_THROW(openStore(o), StoreUnavailable);
    o.url = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2";
    CPPUNIT_ASSERT_THROW(openStore(o), StoreUnavailable);
    // A file that is not a database.
    const std::string junk = dir_ + "/junk.db";
    FILE* f = std::fopen(junk.c_str(), "w");
    CPPUNIT_ASSERT(f);
    for (int i = 0; i < 64; ++i) std::fputs("this is not an SQLite database, just text.\n", f);
    std::fclose(f);
    o.url = "sqlite:" + junk;
    CPPUNIT_ASSERT_THROW(openStore(o), StoreUnavailable);
  }

 private:
  std::string dir_;
};

CPPUNIT_TEST_SUITE_REGISTRATION(SqliteStoreTest);

// ---- PostgreSQL -----------------------------------------------------------------------------

namespace {
std::string pgBaseUrl() {
  const char* url = std::getenv("HEARTH_TEST_PG_URL");
  return url ? url : "";
}
}  // namespace

class PostgresStoreTest : public StoreConformance {
  CPPUNIT_TEST_SUB_SUITE(PostgresStoreTest, StoreConformance);
  CPPUNIT_TEST(testCreatorRaceIsConflict);
  CPPUNIT_TEST(testDeadlockIsConflict);
  CPPUNIT_TEST(testWriterWaitsForLockedRow);
  CPPUNIT_TEST(testHistoryWaitsForInFlightWrite);
  CPPUNIT_TEST(testLockKeySerialises);
  CPPUNIT_TEST(testQueryPostgresTypes);
  CPPUNIT_TEST_SUITE_END();

 protected:
  // Each test gets its own schema, selected for the store through the libpq `options` parameter.
  void createDatabase() override {
    static std::atomic<int> counter{0};
    if (schema_.empty()) {
      schema_ = "hearth_test_" + std::to_string(getpid()) + "_" + std::to_string(++counter);
    }
    admin("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
    admin("CREATE SCHEMA " + schema_);
  }
  void dropDatabase() override {
    if (!schema_.empty()) admin("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
  }
  StoreOptions options() override {
    StoreOptions o;
    std::string base = pgBaseUrl();
    o.url = base + (base.find('?') == std::string::npos ? "?" : "&") + "options=--search_path%3D" + schema_;
    o.poolMin = 2;
    o.poolMax = 8;
    o.busyTimeoutMs = 10000;
    return o;
  }
  std::string expectedBackend() override { return "postgresql"; }
  size_t knownMigrations() override { return storeimpl::postgresMigrations().size(); }
  const storeimpl::Migration& firstMigration() override { return storeimpl::postgresMigrations().at(0); }
  const std::vector<storeimpl::Migration>& migrationSteps() override { return storeimpl::postgresMigrations(); }
  void execRaw(const std::string& sql) override {
    PGconn* conn = PQconnectdb(storeimpl::postgresConnectionString(options().url).c_str());
    std::string msg;
    bool ok = PQstatus(conn) == CONNECTION_OK;
    if (ok) {
      PGresult* r = PQexec(conn, ("SET client_min_messages TO WARNING;\n" + sql).c_str());
      ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
      PQclear(r);
    }
    if (!ok) msg = PQerrorMessage(conn);
    PQfinish(conn);
    CPPUNIT_ASSERT_MESSAGE(msg, ok);
  }
  std::string boolLiteral(bool b) override { return b ? "true" : "false"; }
  std::string bytesLiteral(std::string_view bytes) override { return "'\\x" + hex(bytes) + "'::bytea"; }
  int64_t migrationRows() override {
    Poco::Data::Session s = adminSession();
    int64_t n = -1;
    s << "SELECT count(*) FROM " + schema_ + ".schema_migrations", Poco::Data::Keywords::into(n),
        Poco::Data::Keywords::now;
    return n;
  }

 public:
  void tearDown() override {
    StoreConformance::tearDown();
    schema_.clear();
  }

  // Two transactions create the same new resource: the one that commits first wins, the other's
  // put() reports StoreConflict (not a database error), and a retry appends version 2.
  void testCreatorRaceIsConflict() {
    auto first = store_->begin();
    CPPUNIT_ASSERT(!first->current("Patient", "race"));
    StoredVersion a = makeVersion("Patient", "race", 1, instantAt(1));
    first->put(a);

    std::atomic<int> outcome{0};  // 1 = conflict, 2 = succeeded (wrong), 3 = other error
    std::thread second([&] {
      try {
        auto tx = store_->begin();
        if (tx->current("Patient", "race")) {
          outcome = 3;
          return;
        }
        StoredVersion b = makeVersion("Patient", "race", 1, instantAt(2));
        tx->put(b);  // blocks on the first transaction's key until it commits
        tx->commit();
        outcome = 2;
      } catch (const StoreConflict&) {
        outcome = 1;
      } catch (...) {
        outcome = 3;
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    first->commit();
    second.join();
    CPPUNIT_ASSERT_EQUAL(1, outcome.load());
    CPPUNIT_ASSERT_EQUAL(int64_t(2), appendVersion(*store_, "Patient", "race", instantAt(3)));
    assertSameVersion(a, *store_->vread("Patient", "race", 1));
  }

  void testDeadlockIsConflict() {
    appendVersion(*store_, "Patient", "A", instantAt(1));
    appendVersion(*store_, "Patient", "B", instantAt(1));
    std::atomic<int> conflicts{0}, others{0};
    auto lockBoth = [&](const char* first, const char* second) {
      try {
        auto tx = store_->begin();
        tx->current("Patient", first);
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        tx->current("Patient", second);
        tx->commit();
      } catch (const StoreConflict&) {
        ++conflicts;
      } catch (...) {
        ++others;
      }
    };
    std::thread t1(lockBoth, "A", "B"), t2(lockBoth, "B", "A");
    t1.join();
    t2.join();
    CPPUNIT_ASSERT_EQUAL(0, others.load());
    CPPUNIT_ASSERT_EQUAL(1, conflicts.load());  // PostgreSQL breaks the cycle by failing one of them
  }

  // current() locks the row: a second writer sees the first one's committed version.
  // A transaction draws its seq at put() but becomes visible at commit. A history walk starting
  // while it is in flight (and after a later seq committed) must not walk past it: the first page
  // waits for it instead.
  void testHistoryWaitsForInFlightWrite() {
    auto slow = store_->begin();
    StoredVersion early = makeVersion("Patient", "slow", 1, instantAt(1));
    slow->put(early);  // seq drawn, not committed
    StoredVersion later = makeVersion("Patient", "fast", 1, instantAt(2));
    std::thread fast([&] { putCommitted(*store_, later); });  // must not wait for `slow`
    fast.join();
    CPPUNIT_ASSERT(later.seq > early.seq);

    std::atomic<bool> done{false};
    std::vector<StoredVersion> walk;
    std::thread reader([&] {
      HistoryQuery q;
      q.count = 1;
      walk = allPages(*store_, q);
      done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CPPUNIT_ASSERT(!done);  // the first page waits for the in-flight write
    slow->commit();
    reader.join();
    CPPUNIT_ASSERT_EQUAL(size_t(2), walk.size());
    CPPUNIT_ASSERT_EQUAL(later.seq, walk[0].seq);
    CPPUNIT_ASSERT_EQUAL(early.seq, walk[1].seq);
  }

  // lockKey holds the key until the transaction ends: a second transaction locking the same key
  // waits for the first to commit (or roll back); another key does not wait.
  void testLockKeySerialises() {
    using Clock = std::chrono::steady_clock;
    const std::string key = "Patient?identifier=urn:sys|42";
    for (bool commitFirst : {true, false}) {
      auto first = store_->begin();
      first->lockKey(key);
      Clock::time_point acquired{}, otherAcquired{};
      std::atomic<bool> failed{false};
      std::thread second([&] {
        try {
          auto tx = store_->begin();
          tx->lockKey(key);
          acquired = Clock::now();
          tx->commit();
        } catch (...) {
          failed = true;
        }
      });
      std::thread other([&] {
        try {
          auto tx = store_->begin();
          tx->lockKey("Patient?identifier=urn:sys|43");
          otherAcquired = Clock::now();
          tx->commit();
        } catch (...) {
          failed = true;
        }
      });
      other.join();
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      const Clock::time_point released = Clock::now();
      if (commitFirst) {
        StoredVersion v = makeVersion("Patient", "locked", 1, instantAt(1));
        first->put(v);
        first->commit();
      } else {
        first.reset();  // rollback releases it too
      }
      second.join();
      CPPUNIT_ASSERT(!failed);
      CPPUNIT_ASSERT(otherAcquired < released);  // a different key did not wait
      CPPUNIT_ASSERT(acquired >= released);      // the same key waited for the first to end
    }
    // Locking the same key twice in one transaction is fine (it holds it already).
    auto tx = store_->begin();
    tx->lockKey(key);
    tx->lockKey(key);
    tx->commit();
  }

  // PostgreSQL result types beyond the schema's own: int2/int4, float4, numeric (what sum() and
  // avg() return), varchar, boolean; a type the store does not map is an error, not garbage.
  void testQueryPostgresTypes() {
    auto rows = store_->query(
        {"SELECT CAST(? AS SMALLINT), CAST(? AS INTEGER), CAST(? AS REAL), CAST(? AS NUMERIC), "
         "CAST(? AS NUMERIC), CAST(? AS NUMERIC), CAST(? AS NUMERIC), CAST(? AS VARCHAR), true, false, "
         "CAST(? AS NUMERIC), CAST('NaN' AS NUMERIC)",
         {int64_t{-7}, int64_t{-2000000000}, 0.5, std::string("12345.678"), std::string("-0.000123"),
          std::string("1e20"), std::string("0"), std::string("vc"), std::string("123456789012345678901234567890.5")}});
    CPPUNIT_ASSERT_EQUAL(size_t(1), rows.size());
    const SqlRow& r = rows[0];
    CPPUNIT_ASSERT_EQUAL(int64_t(-7), i64(r[0]));
    CPPUNIT_ASSERT_EQUAL(int64_t(-2000000000), i64(r[1]));
    CPPUNIT_ASSERT_EQUAL(0.5, dbl(r[2]));
    CPPUNIT_ASSERT_EQUAL(12345.678, dbl(r[3]));
    CPPUNIT_ASSERT_EQUAL(-0.000123, dbl(r[4]));
    CPPUNIT_ASSERT_EQUAL(1e20, dbl(r[5]));
    CPPUNIT_ASSERT_EQUAL(0.0, dbl(r[6]));
    CPPUNIT_ASSERT_EQUAL(std::string("vc"), str(r[7]));
    CPPUNIT_ASSERT_EQUAL(int64_t(1), i64(r[8]));
    CPPUNIT_ASSERT_EQUAL(int64_t(0), i64(r[9]));
    CPPUNIT_ASSERT_EQUAL(123456789012345678901234567890.5, dbl(r[10]));
    CPPUNIT_ASSERT(std::isnan(dbl(r[11])));
    writeIndexed(*store_, "Patient", "agg", 1, {numberRow("n", 1.5), numberRow("m", 2)});
    auto agg = store_->query({"SELECT sum(version), avg(value) FROM resource_current c JOIN search_number n "
                              "ON n.type = c.type AND n.id = c.id",
                              {}});
    CPPUNIT_ASSERT_EQUAL(2.0, dbl(agg[0][0]));  // sum(bigint) is numeric in PostgreSQL
    CPPUNIT_ASSERT_EQUAL(1.75, dbl(agg[0][1]));
    CPPUNIT_ASSERT_THROW(store_->query({"SELECT now()", {}}), StoreUnavailable);
    CPPUNIT_ASSERT_EQUAL(size_t(1), store_->query({"SELECT 1", {}}).size());  // the connection is fine
  }

  void testWriterWaitsForLockedRow() {
    appendVersion(*store_, "Patient", "L", instantAt(1));
    auto first = store_->begin();
    CPPUNIT_ASSERT_EQUAL(int64_t(1), first->current("Patient", "L")->version);
    std::atomic<int64_t> seenBySecond{0};
    std::thread second([&] {
      auto tx = store_->begin();
      seenBySecond = tx->current("Patient", "L")->version;  // waits for `first`
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CPPUNIT_ASSERT_EQUAL(int64_t(0), seenBySecond.load());
    StoredVersion v2 = makeVersion("Patient", "L", 2, instantAt(2));
    first->put(v2);
    first->commit();
    second.join();
    CPPUNIT_ASSERT_EQUAL(int64_t(2), seenBySecond.load());
  }

 private:
  static Poco::Data::Session adminSession() {
    static std::once_flag once;
    std::call_once(once, [] { Poco::Data::PostgreSQL::Connector::registerConnector(); });
    return Poco::Data::Session("postgresql", storeimpl::postgresConnectionString(pgBaseUrl()));
  }
  static void admin(const std::string& sql) {
    Poco::Data::Session s = adminSession();
    s << "SET client_min_messages TO WARNING", Poco::Data::Keywords::now;  // no "skipping" notices
    s << sql, Poco::Data::Keywords::now;
  }
  std::string schema_;
};

// Fails the run when PostgreSQL is required but not configured.
class PostgresRequired : public CppUnit::TestFixture {
 public:
  void testPostgresConfigured() {
    CPPUNIT_FAIL(
        "HEARTH_REQUIRE_PG=1 but HEARTH_TEST_PG_URL is not set (start one with tools/pg-test-server.sh)");
  }
};

// Registers PostgresStoreTest only when a database is configured, so an unconfigured run says
// "skipped" instead of passing tests that never ran.
class PostgresSuiteFactory : public CppUnit::TestFactory {
 public:
  CppUnit::Test* makeTest() override {
    if (!pgBaseUrl().empty()) return PostgresStoreTest::suite();
    const char* require = std::getenv("HEARTH_REQUIRE_PG");
    if (require && std::string(require) == "1") {
      auto* suite = new CppUnit::TestSuite("PostgresStoreTest");
      suite->addTest(new CppUnit::TestCaller<PostgresRequired>("PostgresStoreTest::testPostgresConfigured",
                                                               &PostgresRequired::testPostgresConfigured));
      return suite;
    }
    std::cerr << "PostgresStoreTest: SKIPPED (set HEARTH_TEST_PG_URL, e.g. from tools/pg-test-server.sh)\n";
    return new CppUnit::TestSuite("PostgresStoreTest");
  }
};

namespace {
struct RegisterPostgresSuite {
  RegisterPostgresSuite() { CppUnit::TestFactoryRegistry::getRegistry().registerFactory(&factory); }
  ~RegisterPostgresSuite() { CppUnit::TestFactoryRegistry::getRegistry().unregisterFactory(&factory); }
  PostgresSuiteFactory factory;
};
RegisterPostgresSuite registerPostgresSuite;

}  // namespace
