// http_crash_tests: acknowledged writes survive kill -9.
//
// Four client threads create and update resources; every write answered 201/200 is recorded with
// its id, version and the exact resource returned. Once a random number of writes has been
// acknowledged the server is SIGKILLed while the threads are still writing. The server is restarted on
// the same data dir (or database) and every acknowledged version must read back exactly as
// acknowledged, each resource's history must be gap-free, and the store must accept new writes.
// Runs on SQLite with synchronous=NORMAL and FULL (both must survive a process crash) and on
// PostgreSQL when HEARTH_TEST_PG_URL is set.
#include <cppunit/extensions/HelperMacros.h>

#include <atomic>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "http_test_support.h"

using namespace hearth::test;

namespace {

struct Ack {
  std::string type, id, json;
  long version = 0;
};

struct CrashRun {
  std::vector<Ack> acks;
  int threadsStoppedByCrash = 0;
  std::vector<std::string> protocolErrors;  // answers that were neither success nor a transport failure
};

constexpr int kThreads = 4;
constexpr int kMaxWrites = 300;

CrashRun writeUntilKilled(HearthProcess& server, int killAfterAcks) {
  CrashRun run;
  std::mutex mutex;
  std::condition_variable cv;
  std::atomic<int> attempts{0};
  std::atomic<bool> killed{false};
  const std::string prefix = uniqueId("crash");

  auto writer = [&](int t) {
    HttpClient c(server);
    c.setTimeout(std::chrono::milliseconds(15000));
    std::vector<Ack> mine;  // this thread's resources (latest version of each)
    std::mt19937 rng(static_cast<unsigned>(t * 7919 + 17));
    int n = 0;
    while (attempts.fetch_add(1) < kMaxWrites) {
      ++n;
      const std::string marker = prefix + "-t" + std::to_string(t) + "-w" + std::to_string(n);
      bool doUpdate = !mine.empty() && rng() % 3 != 0;
      std::string type = doUpdate ? mine[rng() % mine.size()].type : (rng() % 2 ? "Patient" : "Observation");
      std::string body = type == "Patient" ? fixture("Patient", {{"Organization", "crash-org"}})
                                           : fixture("Observation", {{"Patient", "crash-patient"}});
      body = withMarker(body, marker);
      HttpResponse r;
      std::size_t slot = 0;
      try {
        if (doUpdate) {
          slot = rng() % mine.size();
          type = mine[slot].type;
          body = withMarker(type == "Patient" ? fixture("Patient", {{"Organization", "crash-org"}})
                                              : fixture("Observation", {{"Patient", "crash-patient"}}),
                            marker);
          r = c.put("/fhir/" + type + "/" + mine[slot].id, withId(body, mine[slot].id));
        } else {
          r = c.post("/fhir/" + type, body);
        }
      } catch (const HttpError&) {
        std::lock_guard<std::mutex> lock(mutex);
        if (killed) {
          ++run.threadsStoppedByCrash;
        } else {
          run.protocolErrors.push_back("transport failure before the kill");
        }
        return;
      }
      if (r.status != 200 && r.status != 201) {
        std::lock_guard<std::mutex> lock(mutex);
        run.protocolErrors.push_back(r.describe());
        if (r.status >= 500 && killed) return;
        continue;
      }
      Ack a;
      a.type = type;
      a.json = r.body;
      try {
        rapidjson::Document doc = r.json();
        a.id = jstr(doc, "/id");
        a.version = std::stol(jstr(doc, "/meta/versionId"));
        if (markerOf(doc) != marker)
          throw std::runtime_error("acknowledged body does not carry the marker sent");
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(mutex);
        run.protocolErrors.push_back(std::string("bad success body: ") + e.what() + ": " + r.describe());
        continue;
      }
      if (doUpdate)
        mine[slot] = a;
      else
        mine.push_back(a);
      std::lock_guard<std::mutex> lock(mutex);
      run.acks.push_back(a);
      cv.notify_all();
    }
  };

  std::thread killer([&] {
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait_for(lock, std::chrono::seconds(60),
                [&] { return static_cast<int>(run.acks.size()) >= killAfterAcks; });
    killed = true;
    lock.unlock();
    server.kill9();
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) writers.emplace_back(writer, t);
  for (auto& w : writers) w.join();
  {
    std::lock_guard<std::mutex> lock(mutex);
    killAfterAcks = 0;  // release the killer if the writers finished first
    cv.notify_all();
  }
  killer.join();
  return run;
}

void verifyAfterRestart(HearthProcess& server, const CrashRun& run) {
  HttpClient c(server);
  std::string failures;
  std::map<std::string, long> maxAcked;  // "Type/id" -> highest acknowledged version
  for (const Ack& a : run.acks) {
    auto& m = maxAcked[a.type + "/" + a.id];
    m = std::max(m, a.version);
    HttpResponse r = c.get("/fhir/" + a.type + "/" + a.id + "/_history/" + std::to_string(a.version));
    if (r.status != 200) {
      failures += "\n- acknowledged " + a.type + "/" + a.id + " v" + std::to_string(a.version) +
                  " lost: " + r.describe();
    } else if (!(r.json() == parseJson(a.json))) {
      failures += "\n- acknowledged " + a.type + "/" + a.id + " v" + std::to_string(a.version) +
                  " differs:\n   acked: " + a.json + "\n   now:   " + r.body;
    }
  }
  for (const auto& [key, acked] : maxAcked) {
    History h = collectHistory(c, "/fhir/" + key + "/_history?_count=1000");
    std::vector<long> versions;
    for (const auto& e : h.entries) versions.push_back(std::stol(e.versionId.empty() ? "0" : e.versionId));
    bool gapFree = !versions.empty();
    for (std::size_t i = 0; i < versions.size(); ++i) {
      if (versions[i] != static_cast<long>(versions.size() - i)) gapFree = false;
    }
    if (!gapFree || versions.empty() || versions.front() < acked) {
      std::string v;
      for (long x : versions) v += std::to_string(x) + " ";
      failures += "\n- history of " + key + " (acked up to v" + std::to_string(acked) + ") is not n..1: " + v;
    }
    HttpResponse r = c.get("/fhir/" + key);
    long current = r.status == 200 ? std::stol(jstr(r.json(), "/meta/versionId")) : -1;
    if (current < acked)
      failures +=
          "\n- " + key + " reads as v" + std::to_string(current) + " < acked v" + std::to_string(acked);
  }
  if (!failures.empty()) CPPUNIT_FAIL("after kill -9 and restart:" + failures);

  // The store takes new writes on top of what survived.
  const Ack& last = run.acks.back();
  HttpResponse cur = c.get("/fhir/" + last.type + "/" + last.id);
  assertStatus(200, cur, "read after restart");
  long v = std::stol(jstr(cur.json(), "/meta/versionId"));
  std::string body = withId(withMarker(last.type == "Patient" ? fixture("Patient", {{"Organization", "x"}})
                                                              : fixture("Observation", {{"Patient", "x"}}),
                                       "after-restart"),
                            last.id);
  HttpResponse r = c.put("/fhir/" + last.type + "/" + last.id, body);
  assertStatus(200, r, "update after restart");
  HT_EQ("update after restart gets the next version", weakEtag(v + 1), r.header("ETag"));
  HttpResponse p = c.post("/fhir/Patient", fixture("Patient", {{"Organization", "x"}}));
  assertStatus(201, p, "create after restart");
}

}  // namespace

class HttpCrashTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(HttpCrashTest);
  CPPUNIT_TEST(testKillDuringWritesSqliteNormal);
  CPPUNIT_TEST(testKillDuringWritesSqliteFull);
  CPPUNIT_TEST_SUITE_END();

 protected:
  void crashAndRecover(const Backend& backend, std::vector<std::string> args) {
    HearthProcess server(ServerOptions{std::move(args), backend.db});
    server.start();
    std::mt19937 rng(std::random_device{}());
    const int killAfter = 80 + static_cast<int>(rng() % 120);  // somewhere in the middle of the 300 writes
    CrashRun run = writeUntilKilled(server, killAfter);
    std::string errors;
    for (const auto& e : run.protocolErrors) errors += "\n- " + e;
    HT_ASSERT("writes must succeed until the kill:" + errors, run.protocolErrors.empty());
    HT_ASSERT("the kill must hit while writes were in flight (acked " + std::to_string(run.acks.size()) + ")",
              run.threadsStoppedByCrash > 0 && static_cast<int>(run.acks.size()) < kMaxWrites);
    HT_ASSERT("enough acknowledged writes before the kill", static_cast<int>(run.acks.size()) >= killAfter);
    HT_ASSERT("the server was killed", !server.running());
    server.start();
    verifyAfterRestart(server, run);
    HT_EQ("clean exit after recovery", 0, server.stop().code);
    std::cerr << " [" << backend.name << ": " << run.acks.size() << " acknowledged writes verified] ";
  }

 public:
  void testKillDuringWritesSqliteNormal() {
    crashAndRecover(sqliteBackend(), {"--set", "store.sqlite.synchronous=NORMAL"});
  }
  void testKillDuringWritesSqliteFull() {
    crashAndRecover(sqliteBackend(), {"--set", "store.sqlite.synchronous=FULL"});
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(HttpCrashTest);

class HttpCrashPostgresTest : public HttpCrashTest {
  CPPUNIT_TEST_SUITE(HttpCrashPostgresTest);
  CPPUNIT_TEST(testKillDuringWritesPostgres);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testKillDuringWritesPostgres() { crashAndRecover(*postgresBackend(), {}); }
};

namespace {
// Registered only when a PostgreSQL database is configured.
struct RegisterPostgresCrashSuite {
  std::optional<CppUnit::AutoRegisterSuite<HttpCrashPostgresTest>> reg;
  RegisterPostgresCrashSuite() {
    if (postgresBackend())
      reg.emplace();
    else
      std::cerr << "[note] HEARTH_TEST_PG_URL not set: PostgreSQL crash test not run\n";
  }
} registerPostgresCrashSuite;
}  // namespace
