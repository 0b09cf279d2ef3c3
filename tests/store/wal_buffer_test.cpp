// WalBufferTest: the WAL write buffer (fhir/src/sqlite_wal_buffer.cpp) against the property that
// matters: whatever a commit wrote is in the files, as the OS has them, when COMMIT returns. The
// files are copied at that moment (what a kill -9 would leave) and the copy opened on its own:
// it must hold every committed row, pass integrity_check, and hold nothing of rolled-back work.
// Cases: many small commits, one commit far larger than the buffer, a transaction that spills
// frames to the WAL and rolls back, one that spills and then rewrites spilled pages in place
// (SQLite rewrites frames and checksums then), the WAL starting over, and a second connection
// reading while the first writes.
#include <cppunit/extensions/HelperMacros.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "store_sqlite.h"

namespace fs = std::filesystem;

namespace {

class Db {
 public:
  explicit Db(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) CPPUNIT_FAIL("open " + path);
  }
  ~Db() { sqlite3_close(db_); }
  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      const std::string e = err ? err : "?";
      sqlite3_free(err);
      CPPUNIT_FAIL(sql.substr(0, 80) + ": " + e);
    }
  }
  std::string text(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) CPPUNIT_FAIL("prepare " + sql);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return out;
  }
  sqlite3* handle() { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace

class WalBufferTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(WalBufferTest);
  CPPUNIT_TEST(testCommitsAreInTheFilesWhenCommitReturns);
  CPPUNIT_TEST_SUITE_END();

 public:
  void setUp() override {
    hearth::fhir::storeimpl::installWalWriteBuffer();
    char tmpl[] = "/tmp/hearth-walbuf-XXXXXX";
    CPPUNIT_ASSERT(mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
  }
  void tearDown() override { fs::remove_all(dir_); }

  void testCommitsAreInTheFilesWhenCommitReturns() {
    const std::string path = dir_ + "/w.db";
    Db db(path);
    CPPUNIT_ASSERT_EQUAL(std::string("wal"), db.text("PRAGMA journal_mode = WAL"));
    db.exec("PRAGMA synchronous = NORMAL; PRAGMA cache_size = 50; PRAGMA wal_autocheckpoint = 0");
    db.exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL); CREATE INDEX t_v ON t (v)");
    int64_t rows = 0;
    auto checkCopy = [&](const std::string& what) {
      const std::string copy = dir_ + "/copy-" + std::to_string(++copies_);
      fs::create_directory(copy);
      fs::copy_file(path, copy + "/w.db");
      if (fs::exists(path + "-wal")) fs::copy_file(path + "-wal", copy + "/w.db-wal");
      Db c(copy + "/w.db");
      CPPUNIT_ASSERT_EQUAL_MESSAGE(what, std::string("ok"), c.text("PRAGMA integrity_check"));
      CPPUNIT_ASSERT_EQUAL_MESSAGE(what, std::to_string(rows), c.text("SELECT count(*) FROM t"));
      CPPUNIT_ASSERT_EQUAL_MESSAGE(what, std::string("0"), c.text("SELECT count(*) FROM t WHERE k < 0"));
    };
    auto insert = [&](int n, int bytes) {
      for (int i = 0; i < n; ++i) {
        db.exec("INSERT INTO t (v) VALUES (randomblob(" + std::to_string(bytes) + "))");
        ++rows;
      }
    };

    // Small commits, each its own check.
    for (int i = 0; i < 5; ++i) {
      insert(3, 300);
      checkCopy("small commit " + std::to_string(i));
    }
    // One commit of ~3 MB: many buffer flushes, and a cache of 50 pages spills mid-transaction.
    db.exec("BEGIN");
    insert(300, 10000);
    db.exec("COMMIT");
    checkCopy("large commit");
    // Spilled frames of a transaction that rolls back: nothing of it may show, and the next
    // commit writes over those frames.
    db.exec("BEGIN");
    for (int i = 0; i < 200; ++i) db.exec("INSERT INTO t (k, v) VALUES (-" + std::to_string(i + 1) + ", randomblob(5000))");
    db.exec("ROLLBACK");
    insert(4, 200);
    checkCopy("after a rolled-back spill");
    // Spill, then change the spilled pages again before committing: SQLite rewrites those frames
    // in place and recomputes the checksums of the frames after them.
    db.exec("BEGIN");
    insert(150, 4000);
    db.exec("UPDATE t SET v = randomblob(3000) WHERE k % 3 = 0");
    insert(10, 100);
    db.exec("COMMIT");
    checkCopy("spill and rewrite");
    // The WAL starts over after a full checkpoint; the next commits write from its beginning.
    db.exec("PRAGMA wal_checkpoint(PASSIVE)");
    insert(2, 100);
    checkCopy("first commit of a restarted WAL");
    db.exec("BEGIN");
    insert(60, 8000);
    db.exec("COMMIT");
    checkCopy("large commit in the restarted WAL");

    // Commits of 1 to 70 pages: the commit frame's header and page fall at every position
    // relative to the buffer's end (a header that fits with its page not fitting included).
    // Without the index, a row of ~3,900 bytes fills one table page: a commit of n rows writes
    // n pages plus a few, so n runs over every alignment.
    db.exec("DROP INDEX t_v");
    for (int n = 1; n <= 70; ++n) {
      db.exec("BEGIN");
      insert(n, 3900);
      db.exec("COMMIT");
      checkCopy("commit of " + std::to_string(n) + " pages");
    }

    // A second connection sees each commit once it returns, and never a torn one.
    Db reader(path);
    for (int i = 0; i < 20; ++i) {
      db.exec("BEGIN");
      insert(20, 2000);
      db.exec("COMMIT");
      CPPUNIT_ASSERT_EQUAL(std::to_string(rows), reader.text("SELECT count(*) FROM t"));
    }
    CPPUNIT_ASSERT_EQUAL(std::string("ok"), reader.text("PRAGMA integrity_check"));
    checkCopy("after the reader");
  }

 private:
  std::string dir_;
  int copies_ = 0;
};

CPPUNIT_TEST_SUITE_REGISTRATION(WalBufferTest);
