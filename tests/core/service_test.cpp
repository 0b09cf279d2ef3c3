// ResourceService over a real SQLite store (and PostgreSQL when HEARTH_TEST_PG_URL is set):
// versioning, If-Match, group commit under concurrency, and the current-version cache staying
// coherent while writers and readers race.
#include <cppunit/extensions/HelperMacros.h>

#include <Poco/File.h>
#include <Poco/TemporaryFile.h>

#include <atomic>
#include <cstdlib>
#include <set>
#include <thread>
#include <vector>

#include "hearth/fhir/error.h"
#include "hearth/fhir/group_commit.h"
#include "hearth/fhir/json.h"
#include "hearth/fhir/service.h"

using namespace hearth::fhir;

namespace {

struct Fixture {
  Poco::TemporaryFile dir;
  std::unique_ptr<ResourceStore> store;
  std::unique_ptr<ResourceService> service;
  Fixture(size_t cacheBytes, int groupCommit) {
    dir.createDirectories();
    StoreOptions o;
    o.url = "sqlite:" + dir.path() + "/hearth.db";
    o.sqliteSynchronous = "NORMAL";
    store = openStore(o);
    ServiceOptions so;
    so.readCacheBytes = cacheBytes;
    so.groupCommitMax = groupCommit;
    service = std::make_unique<ResourceService>(*store, Model::r4(), so);
  }
};

std::string patient(const std::string& id, const std::string& family) {
  std::string s = "{\"resourceType\":\"Patient\"";
  if (!id.empty()) s += ",\"id\":\"" + id + "\"";
  return s + ",\"name\":[{\"family\":\"" + family + "\"}],\"gender\":\"female\"}";
}

int64_t versionOf(const std::string& json) {
  auto doc = parseJson(json);
  return std::stoll(doc["meta"]["versionId"].GetString());
}

int statusOf(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const FhirError& e) {
    return e.status();
  }
  return 0;
}

}  // namespace

class ServiceTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(ServiceTest);
  CPPUNIT_TEST(createReadUpdateDelete);
  CPPUNIT_TEST(rejectedWritesChangeNothing);
  CPPUNIT_TEST(groupCommitConcurrentUpdatesLoseNothing);
  CPPUNIT_TEST(groupCommitFailedUnitLeavesNothing);
  CPPUNIT_TEST(ifMatchRaceHasOneWinner);
  CPPUNIT_TEST(cacheNeverServesOlderThanCommitted);
  CPPUNIT_TEST_SUITE_END();

 public:
  void createReadUpdateDelete() {
    Fixture f(1 << 20, 16);
    auto c = f.service->create("Patient", patient("ignored", "Okafor"));
    CPPUNIT_ASSERT(c.created);
    CPPUNIT_ASSERT(c.version.id != "ignored");
    CPPUNIT_ASSERT_EQUAL(int64_t(1), c.version.version);
    auto r = f.service->read("Patient", c.version.id);
    CPPUNIT_ASSERT_EQUAL(c.version.json, r->json);
    auto u = f.service->update("Patient", c.version.id, patient(c.version.id, "Eze"), int64_t(1));
    CPPUNIT_ASSERT(!u.created);
    CPPUNIT_ASSERT_EQUAL(int64_t(2), u.version.version);
    CPPUNIT_ASSERT_EQUAL(int64_t(2), versionOf(f.service->read("Patient", c.version.id)->json));
    auto d = f.service->remove("Patient", c.version.id, std::nullopt);
    CPPUNIT_ASSERT_EQUAL(int64_t(3), d.version.version);
    CPPUNIT_ASSERT_EQUAL(410, statusOf([&] { f.service->read("Patient", c.version.id); }));
    CPPUNIT_ASSERT_EQUAL(410, statusOf([&] { f.service->vread("Patient", c.version.id, 3); }));
    CPPUNIT_ASSERT(f.service->vread("Patient", c.version.id, 1).json.find("Okafor") != std::string::npos);
    // Deleting again is idempotent and writes nothing.
    CPPUNIT_ASSERT_EQUAL(int64_t(3), f.service->remove("Patient", c.version.id, std::nullopt).version.version);
    // Update brings it back as version 4.
    auto back = f.service->update("Patient", c.version.id, patient(c.version.id, "Back"), std::nullopt);
    CPPUNIT_ASSERT_EQUAL(int64_t(4), back.version.version);
    CPPUNIT_ASSERT(back.created);
    CPPUNIT_ASSERT_EQUAL(404, statusOf([&] { f.service->read("Patient", "nope"); }));
    CPPUNIT_ASSERT_EQUAL(404, statusOf([&] { f.service->read("Patientx", "p"); }));
    // Deleting what never existed succeeds without writing anything (R4 http.html#delete).
    CPPUNIT_ASSERT_EQUAL(int64_t(0), f.service->remove("Patient", "never", std::nullopt).version.version);
    CPPUNIT_ASSERT_EQUAL(404, statusOf([&] { f.service->read("Patient", "never"); }));
  }

  void rejectedWritesChangeNothing() {
    Fixture f(1 << 20, 16);
    auto c = f.service->create("Patient", patient("", "Okafor"));
    const std::string id = c.version.id;
    CPPUNIT_ASSERT_EQUAL(400, statusOf([&] { f.service->update("Patient", id, "{not json", std::nullopt); }));
    CPPUNIT_ASSERT_EQUAL(400, statusOf([&] { f.service->update("Patient", id, patient("other", "X"), std::nullopt); }));
    CPPUNIT_ASSERT_EQUAL(400, statusOf([&] { f.service->update("Patient", id, R"({"resourceType":"Patient","id":")" + id + R"(","bogus":1})", std::nullopt); }));
    CPPUNIT_ASSERT_EQUAL(422, statusOf([&] { f.service->update("Patient", id, R"({"resourceType":"Patient","id":")" + id + R"(","gender":"mal"})", std::nullopt); }));
    CPPUNIT_ASSERT_EQUAL(412, statusOf([&] { f.service->update("Patient", id, patient(id, "Y"), int64_t(7)); }));
    CPPUNIT_ASSERT_EQUAL(400, statusOf([&] { f.service->update("Observation", id, patient(id, "Y"), std::nullopt); }));
    CPPUNIT_ASSERT_EQUAL(int64_t(1), versionOf(f.service->read("Patient", id)->json));
    HistoryQuery q;
    q.type = "Patient";
    q.id = id;
    CPPUNIT_ASSERT_EQUAL(size_t(1), f.service->history(q).entries.size());
  }

  void groupCommitConcurrentUpdatesLoseNothing() {
    Fixture f(1 << 20, 64);
    auto c = f.service->create("Patient", patient("", "Start"));
    const std::string id = c.version.id;
    constexpr int kThreads = 8, kEach = 25;
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i) {
          try {
            f.service->update("Patient", id, patient(id, "T" + std::to_string(t) + "-" + std::to_string(i)), std::nullopt);
          } catch (...) {
            ++failures;
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    CPPUNIT_ASSERT_EQUAL(0, failures.load());
    CPPUNIT_ASSERT_EQUAL(int64_t(1 + kThreads * kEach), versionOf(f.service->read("Patient", id)->json));
    std::set<int64_t> versions;
    HistoryQuery q;
    q.type = "Patient";
    q.id = id;
    q.count = 1000;
    for (const auto& v : f.service->history(q).entries) versions.insert(v.version);
    CPPUNIT_ASSERT_EQUAL(size_t(1 + kThreads * kEach), versions.size());
    CPPUNIT_ASSERT_EQUAL(int64_t(1), *versions.begin());
    CPPUNIT_ASSERT_EQUAL(int64_t(1 + kThreads * kEach), *versions.rbegin());
  }

  // A failing unit leaves none of its writes, whether it ran first in its transaction (no
  // savepoint: the transaction is rolled back and a fresh one opened) or after applied units
  // (its savepoint is rolled back, theirs stay).
  void groupCommitFailedUnitLeavesNothing() {
    Fixture f(0, 64);
    ResourceStore& store = *f.store;
    auto insert = [](int v, bool fail) {
      return [v, fail](StoreTransaction& tx) {
        tx.execute(SqlQuery{"INSERT INTO registration_counter (name, last_value) VALUES (?, ?)",
                            {"gc-probe-" + std::to_string(v), int64_t{v}}});
        if (fail) throw FhirError(412, IssueType::Conflict, "refused on purpose");
      };
    };
    auto values = [&] {
      std::vector<int64_t> out;
      for (const SqlRow& r : store.query(SqlQuery{"SELECT last_value FROM registration_counter WHERE name LIKE 'gc-probe-%' ORDER BY last_value", {}})) {
        out.push_back(std::get<int64_t>(r[0]));
      }
      return out;
    };
    GroupCommitter gc(store, 64, 1000);
    // Alone in a fresh transaction: rolled back whole; the next unit commits normally.
    CPPUNIT_ASSERT_EQUAL(412, statusOf([&] { gc.run(insert(1, true)); }));
    gc.run(insert(2, false));
    CPPUNIT_ASSERT(values() == std::vector<int64_t>({2}));
    // After applied units of an open group: only the failing unit's writes go.
    gc.runApplied(insert(3, false));
    gc.runApplied(insert(4, false));
    CPPUNIT_ASSERT_EQUAL(412, statusOf([&] { gc.run(insert(5, true)); }));
    gc.flush(true);
    CPPUNIT_ASSERT(values() == std::vector<int64_t>({2, 3, 4}));
    // A failing applied unit first in its group, then more applied units in the same group.
    CPPUNIT_ASSERT_EQUAL(412, statusOf([&] { gc.runApplied(insert(6, true)); }));
    gc.runApplied(insert(7, false));
    gc.flush(true);
    CPPUNIT_ASSERT(values() == std::vector<int64_t>({2, 3, 4, 7}));
    CPPUNIT_ASSERT(!gc.appliedLost());
  }

  void ifMatchRaceHasOneWinner() {
    Fixture f(0, 64);
    auto c = f.service->create("Patient", patient("", "Start"));
    const std::string id = c.version.id;
    std::atomic<int> ok{0}, precondition{0}, other{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&] {
        const int s = statusOf([&] { f.service->update("Patient", id, patient(id, "Racer"), int64_t(1)); });
        (s == 0 ? ok : s == 412 ? precondition : other)++;
      });
    }
    for (auto& th : threads) th.join();
    CPPUNIT_ASSERT_EQUAL(1, ok.load());
    CPPUNIT_ASSERT_EQUAL(7, precondition.load());
    CPPUNIT_ASSERT_EQUAL(0, other.load());
  }

  void cacheNeverServesOlderThanCommitted() {
    // A tiny cache so entries are evicted all the time while writers and readers race.
    Fixture f(8 * 1024, 32);
    std::vector<std::string> ids;
    for (int i = 0; i < 20; ++i) ids.push_back(f.service->create("Patient", patient("", "P")).version.id);
    std::vector<std::atomic<int64_t>> committed(ids.size());
    for (auto& c : committed) c = 1;
    std::atomic<bool> stop{false};
    std::atomic<int> stale{0};
    std::vector<std::thread> threads;
    for (int w = 0; w < 3; ++w) {
      threads.emplace_back([&, w] {
        for (int i = 0; i < 100; ++i) {
          const size_t k = static_cast<size_t>((i * 7 + w) % static_cast<int>(ids.size()));
          auto out = f.service->update("Patient", ids[k], patient(ids[k], "W"), std::nullopt);
          int64_t prev = committed[k].load();
          while (prev < out.version.version && !committed[k].compare_exchange_weak(prev, out.version.version)) {
          }
        }
      });
    }
    for (int r = 0; r < 3; ++r) {
      threads.emplace_back([&] {
        while (!stop) {
          for (size_t k = 0; k < ids.size(); ++k) {
            const int64_t floor = committed[k].load();  // acknowledged before this read started
            if (f.service->read("Patient", ids[k])->version < floor) ++stale;
          }
        }
      });
    }
    for (int w = 0; w < 3; ++w) threads[static_cast<size_t>(w)].join();
    stop = true;
    for (size_t i = 3; i < threads.size(); ++i) threads[i].join();
    CPPUNIT_ASSERT_EQUAL(0, stale.load());
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ServiceTest);
