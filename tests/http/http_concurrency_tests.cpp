// http_concurrency_tests: concurrent writes to one resource lose nothing and version correctly.
//
// - 8 threads x 25 PUTs without If-Match on one resource: every PUT succeeds, the final version is
//   1 + 200, each version 2..201 was handed out exactly once and the history holds each PUT's content
//   at the version its response named.
// - 8 threads racing a PUT with the same If-Match: exactly one wins, the rest get 412 (or 409).
// - 8 threads racing update-as-create of one new id: one 201, seven 200, versions 1..8.
// Runs on SQLite and, with HEARTH_TEST_PG_URL, on PostgreSQL.
#include <cppunit/extensions/HelperMacros.h>

#include <barrier>
#include <iostream>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "http_test_support.h"

using namespace hearth::test;

namespace {

constexpr int kThreads = 8;

struct Outcome {
  int status = 0;
  long version = -1;  // from the ETag
  std::string marker;
  std::string error;
};

std::string patientBody(const std::string& id, const std::string& marker) {
  return withId(withMarker(fixture("Patient", {{"Organization", "conc-org"}}), marker), id);
}

// Runs `perThread` PUTs of `id` from kThreads threads that start together; returns every outcome.
std::vector<Outcome> racePuts(HearthProcess& server, const std::string& id, int perThread,
                              const std::string& tag, const Headers& headers = {}) {
  std::vector<Outcome> outcomes;
  std::mutex mutex;
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      HttpClient c(server);
      try {
        c.get("/health");  // open the connection before the race
      } catch (const std::exception&) {
      }
      start.arrive_and_wait();
      for (int i = 0; i < perThread; ++i) {
        Outcome o;
        o.marker = tag + "-t" + std::to_string(t) + "-" + std::to_string(i);
        try {
          HttpResponse r = c.put("/fhir/Patient/" + id, patientBody(id, o.marker), headers);
          o.status = r.status;
          o.version = etagVersion(r.header("ETag"));
          if (r.status >= 300) o.error = r.describe();
        } catch (const std::exception& e) {
          o.error = e.what();
        }
        std::lock_guard<std::mutex> lock(mutex);
        outcomes.push_back(o);
      }
    });
  }
  for (auto& th : threads) th.join();
  return outcomes;
}

std::string summarize(const std::vector<Outcome>& outcomes) {
  std::map<int, int> byStatus;
  std::string firstErrors;
  int shown = 0;
  for (const auto& o : outcomes) {
    ++byStatus[o.status];
    if (!o.error.empty() && shown++ < 3) firstErrors += "\n  " + o.error.substr(0, 600);
  }
  std::string s = "statuses:";
  for (auto [st, n] : byStatus) s += " " + std::to_string(st) + "x" + std::to_string(n);
  return s + firstErrors;
}

// Checks that the history of `id` is exactly versions n..1 and that each successful outcome's content
// sits at the version its response named.
void assertHistoryMatches(HttpClient& c, const std::string& id, long expectedVersions,
                          const std::vector<Outcome>& outcomes, const std::string& what) {
  History h = collectHistory(c, "/fhir/Patient/" + id + "/_history?_count=100");
  HT_EQ(what + ": history entries", static_cast<std::size_t>(expectedVersions), h.entries.size());
  std::map<long, std::string> markerAt;
  for (std::size_t i = 0; i < h.entries.size(); ++i) {
    long v = std::stol(h.entries[i].versionId.empty() ? "0" : h.entries[i].versionId);
    HT_EQ(what + ": history is n..1 without gaps or duplicates", expectedVersions - static_cast<long>(i), v);
    markerAt[v] = h.entries[i].marker;
  }
  for (const auto& o : outcomes) {
    if (o.status != 200 && o.status != 201) continue;
    HT_EQ(what + ": version " + std::to_string(o.version) + " holds the content of the PUT that was told so",
          o.marker, markerAt[o.version]);
  }
}

}  // namespace

class ConcurrencyTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(ConcurrencyTest);
  CPPUNIT_TEST(testConcurrentPutsLoseNothing);
  CPPUNIT_TEST(testIfMatchRaceHasOneWinner);
  CPPUNIT_TEST(testConcurrentUpdateAsCreate);
  CPPUNIT_TEST_SUITE_END_ABSTRACT();

 protected:
  virtual Backend backend() const = 0;
  HearthProcess& server() { return sharedServer(backend()); }

 public:
  void testConcurrentPutsLoseNothing() {
    HttpClient c(server());
    const std::string id = uniqueId("conc");
    HttpResponse r = c.put("/fhir/Patient/" + id, patientBody(id, "initial"));
    assertStatus(201, r, "update-as-create");
    constexpr int perThread = 25;
    std::vector<Outcome> outcomes = racePuts(server(), id, perThread, "burst");
    int ok = 0;
    std::set<long> versions;
    for (const auto& o : outcomes) {
      if (o.status == 200) ++ok;
      versions.insert(o.version);
    }
    HT_EQ("every PUT without If-Match succeeds (" + summarize(outcomes) + ")", kThreads * perThread, ok);
    HT_EQ("each version was handed out once", static_cast<std::size_t>(kThreads * perThread),
          versions.size());
    HT_EQ("versions run 2..201", 2L, *versions.begin());
    HT_EQ("versions run 2..201", 1L + kThreads * perThread, *versions.rbegin());
    r = c.get("/fhir/Patient/" + id);
    HT_EQ("final version", std::to_string(1 + kThreads * perThread), jstr(r.json(), "/meta/versionId"));
    assertHistoryMatches(c, id, 1 + kThreads * perThread, outcomes, "burst");
  }

  void testIfMatchRaceHasOneWinner() {
    HttpClient c(server());
    const std::string id = uniqueId("race");
    assertStatus(201, c.put("/fhir/Patient/" + id, patientBody(id, "initial")), "update-as-create");
    long current = 1;
    std::vector<Outcome> winners;
    for (int round = 0; round < 5; ++round) {
      std::vector<Outcome> outcomes =
          racePuts(server(), id, 1, "round" + std::to_string(round), {{"If-Match", weakEtag(current)}});
      int wins = 0, refused = 0;
      for (const auto& o : outcomes) {
        if (o.status == 200) {
          ++wins;
          winners.push_back(o);
          HT_EQ("the winner gets the next version", current + 1, o.version);
        } else if (o.status == 412 || o.status == 409) {
          ++refused;
        }
      }
      HT_EQ(
          "round " + std::to_string(round) + ": exactly one If-Match PUT wins (" + summarize(outcomes) + ")",
          1, wins);
      HT_EQ("round " + std::to_string(round) + ": the others get 412/409 (" + summarize(outcomes) + ")",
            kThreads - 1, refused);
      ++current;
      HttpResponse r = c.get("/fhir/Patient/" + id);
      HT_EQ("version after the round", std::to_string(current), jstr(r.json(), "/meta/versionId"));
      HT_EQ("the winner's content is stored", winners.back().marker, markerOf(r.json()));
    }
    assertHistoryMatches(c, id, current, winners, "If-Match race");
  }

  void testConcurrentUpdateAsCreate() {
    HttpClient c(server());
    for (int round = 0; round < 3; ++round) {
      const std::string id = uniqueId("newrace");
      std::vector<Outcome> outcomes = racePuts(server(), id, 1, "create" + std::to_string(round));
      int created = 0, updated = 0;
      std::set<long> versions;
      for (const auto& o : outcomes) {
        if (o.status == 201) ++created;
        if (o.status == 200) ++updated;
        versions.insert(o.version);
      }
      const std::string what = "round " + std::to_string(round) + " (" + summarize(outcomes) + ")";
      HT_EQ(what + ": exactly one PUT creates", 1, created);
      HT_EQ(what + ": the others update", kThreads - 1, updated);
      HT_ASSERT(what + ": versions 1..8 all land", versions == (std::set<long>{1, 2, 3, 4, 5, 6, 7, 8}));
      for (const auto& o : outcomes) {
        if (o.status == 201) HT_EQ(what + ": the creating PUT is version 1", 1L, o.version);
      }
      assertHistoryMatches(c, id, kThreads, outcomes, "update-as-create race");
    }
  }
};

class ConcurrencySqliteTest : public ConcurrencyTest {
  CPPUNIT_TEST_SUB_SUITE(ConcurrencySqliteTest, ConcurrencyTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return sqliteBackend(); }
};
CPPUNIT_TEST_SUITE_REGISTRATION(ConcurrencySqliteTest);

class ConcurrencyPostgresTest : public ConcurrencyTest {
  CPPUNIT_TEST_SUB_SUITE(ConcurrencyPostgresTest, ConcurrencyTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return *postgresBackend(); }
};

namespace {
struct RegisterPostgresConcurrencySuite {
  std::optional<CppUnit::AutoRegisterSuite<ConcurrencyPostgresTest>> reg;
  RegisterPostgresConcurrencySuite() {
    if (postgresBackend())
      reg.emplace();
    else
      std::cerr << "[note] HEARTH_TEST_PG_URL not set: PostgreSQL concurrency suite not run\n";
  }
} registerPostgresConcurrencySuite;
}  // namespace
