// resolveIncludes and Patient/$everything (fhir/src/search_results.h) over the real stores (SQLite
// always, PostgreSQL with HEARTH_TEST_PG_URL; a fresh database for each test): resources and their
// search_reference rows are written directly (no indexer), so
// these cases pin down the SQL and the set logic: which resources come back, with which
// search.mode, deduplicated, paged without gaps or repeats, in few statements.
#include <cppunit/TestCaller.h>
#include <cppunit/TestSuite.h>
#include <cppunit/extensions/HelperMacros.h>
#include <cppunit/extensions/TestFactoryRegistry.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "hearth/fhir/error.h"
#include "hearth/fhir/json.h"
#include "results_test_store.h"
#include "search_results.h"

using namespace hearth::fhir;
using namespace hearth::fhir::searchimpl;
using hearth::test::TestWorld;

namespace {

using Keys = std::set<std::string>;

Keys keysOf(const std::vector<FetchedResource>& rs) {
  Keys k;
  for (const auto& r : rs) k.insert(r.type + "/" + r.id);
  return k;
}

std::string show(const Keys& k) {
  std::string s;
  for (const auto& x : k) s += x + " ";
  return s;
}

int statusOf(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const FhirError& e) {
    return e.status();
  }
  return 0;
}

FetchedResource fr(const std::string& type, const std::string& id) { return FetchedResource{type, id, {}}; }

// A small hospital: two patients, their encounters, observations, a report, staff.
//   p1: Encounter e1 (subject p1, service-provider org1, participant pr2), Observations o1 (subject p1,
//       performer pr1, encounter e1, has-member o2), o2 (subject p1, performer prDeleted), o5 (subject
//       p1, performer Patient p2: a reference to another patient), DiagnosticReport dr1 (subject p1,
//       result o1, performer pr1), Patient.general-practitioner pr3, Observation o4 (focus p1 only:
//       not a compartment parameter), o6 (subject p1, performer Practitioner/missing), deleted o7.
//   p2: Observation o3 (subject p2, performer pr1).
void seedHospital(TestWorld& w) {
  w.add("Organization", "org1", "2024-01-01T00:00:00.000Z", {});
  w.add("Practitioner", "pr1", "2024-01-01T00:00:00.000Z", {});
  w.add("Practitioner", "pr2", "2024-03-01T00:00:00.000Z", {});
  w.add("Practitioner", "pr3", "2024-01-01T00:00:00.000Z", {});
  w.add("Practitioner", "prDeleted", "2024-01-01T00:00:00.000Z", {});
  w.remove("Practitioner", "prDeleted", "2024-01-02T00:00:00.000Z");
  w.add("Patient", "p1", "2024-01-01T00:00:00.000Z",
        {{"general-practitioner", "Practitioner", "pr3"}, {"organization", "Organization", "org1"}});
  w.add("Patient", "p2", "2024-01-01T00:00:00.000Z", {});
  w.add("Encounter", "e1", "2024-02-01T00:00:00.000Z",
        {{"subject", "Patient", "p1"}, {"patient", "Patient", "p1"}, {"service-provider", "Organization", "org1"},
         {"participant", "Practitioner", "pr2"}, {"practitioner", "Practitioner", "pr2"}});
  w.add("Observation", "o1", "2024-02-01T00:00:00.000Z",
        {{"subject", "Patient", "p1"}, {"patient", "Patient", "p1"}, {"performer", "Practitioner", "pr1"},
         {"encounter", "Encounter", "e1"}, {"has-member", "Observation", "o2"}});
  w.add("Observation", "o2", "2024-03-01T00:00:00.000Z",
        {{"subject", "Patient", "p1"}, {"patient", "Patient", "p1"}, {"performer", "Practitioner", "prDeleted"}});
  w.add("Observation", "o3", "2024-02-01T00:00:00.000Z",
        {{"subject", "Patient", "p2"}, {"patient", "Patient", "p2"}, {"performer", "Practitioner", "pr1"}});
  w.add("Observation", "o4", "2024-02-01T00:00:00.000Z", {{"focus", "Patient", "p1"}});
  w.add("Observation", "o5", "2024-02-01T00:00:00.000Z",
        {{"subject", "Patient", "p1"}, {"patient", "Patient", "p1"}, {"performer", "Patient", "p2"}});
  w.add("Observation", "o6", "2024-02-01T00:00:00.000Z",
        {{"subject", "Patient", "p1"}, {"patient", "Patient", "p1"}, {"performer", "Practitioner", "missing"}});
  w.add("Observation", "o7", "2024-02-01T00:00:00.000Z", {{"subject", "Patient", "p1"}});
  w.remove("Observation", "o7", "2024-02-02T00:00:00.000Z");
  w.add("DiagnosticReport", "dr1", "2024-03-01T00:00:00.000Z",
        {{"subject", "Patient", "p1"}, {"patient", "Patient", "p1"}, {"result", "Observation", "o1"},
         {"performer", "Practitioner", "pr1"}});
}

struct Page {
  std::vector<std::pair<std::string, std::string>> entries;  // key, mode
  std::string next;                                         // the _cursor of the next link
  std::string self;
  long total = -1;
};

std::string queryParam(const std::string& url, const std::string& name) {
  const size_t q = url.find('?');
  if (q == std::string::npos) return {};
  const std::string query = url.substr(q + 1);
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string::npos) amp = query.size();
    const std::string pair = query.substr(pos, amp - pos);
    if (pair.rfind(name + "=", 0) == 0) return pair.substr(name.size() + 1);
    pos = amp + 1;
  }
  return {};
}

Page page(TestWorld& w, const SearchParams& params) {
  const std::string body = everything(w.store(), Model::r4(), "Patient", "p1", params, "http://h/fhir", 20, 100);
  const auto doc = parseJson(body);
  Page p;
  CPPUNIT_ASSERT_EQUAL(std::string("searchset"), std::string(doc["type"].GetString()));
  if (doc.HasMember("total")) p.total = doc["total"].GetInt64();
  for (const auto& l : doc["link"].GetArray()) {
    if (std::string(l["relation"].GetString()) == "next") p.next = queryParam(l["url"].GetString(), "_cursor");
    if (std::string(l["relation"].GetString()) == "self") p.self = l["url"].GetString();
  }
  if (doc.HasMember("entry")) {
    for (const auto& e : doc["entry"].GetArray()) {
      const auto& r = e["resource"];
      const std::string k = std::string(r["resourceType"].GetString()) + "/" + r["id"].GetString();
      CPPUNIT_ASSERT_EQUAL("http://h/fhir/" + k, std::string(e["fullUrl"].GetString()));
      p.entries.emplace_back(k, e["search"]["mode"].GetString());
    }
  }
  return p;
}

std::map<std::string, std::string> allPages(TestWorld& w, SearchParams params, int* pages = nullptr) {
  std::map<std::string, std::string> out;
  std::string lastKey;
  for (int n = 1; n < 100; ++n) {
    Page p = page(w, params);
    for (const auto& [k, mode] : p.entries) {
      CPPUNIT_ASSERT_MESSAGE("duplicate " + k, out.emplace(k, mode).second);
      CPPUNIT_ASSERT_MESSAGE("order " + lastKey + " " + k, lastKey.empty() || lastKey < k);
      lastKey = k;
    }
    if (p.next.empty()) {
      if (pages) *pages = n;
      return out;
    }
    params.erase(std::remove_if(params.begin(), params.end(), [](const auto& kv) { return kv.first == "_cursor"; }),
                 params.end());
    params.emplace_back("_cursor", p.next);
  }
  CPPUNIT_FAIL("paging does not end");
  return out;
}

}  // namespace

class ResultsStoreTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(ResultsStoreTest);
  CPPUNIT_TEST(testInclude);
  CPPUNIT_TEST(testIncludeTargetTypeAndStar);
  CPPUNIT_TEST(testRevinclude);
  CPPUNIT_TEST(testIterate);
  CPPUNIT_TEST(testIncludeLimit);
  CPPUNIT_TEST(testIncludeStatementsPerSpec);
  CPPUNIT_TEST(testEverything);
  CPPUNIT_TEST(testEverythingType);
  CPPUNIT_TEST(testEverythingSince);
  CPPUNIT_TEST(testEverythingPaging);
  CPPUNIT_TEST(testEverythingErrors);
  CPPUNIT_TEST(testEverythingStatements);
  CPPUNIT_TEST_SUITE_END_ABSTRACT();

  std::unique_ptr<TestWorld> w_;

 protected:
  virtual std::string backend() const = 0;

 public:
  void setUp() override {
    w_ = TestWorld::create(backend());
    seedHospital(*w_);
  }
  void tearDown() override { w_.reset(); }

  std::vector<FetchedResource> inc(const std::vector<FetchedResource>& matches, const std::vector<std::string>& includes,
                                   const std::vector<std::string>& revincludes, size_t limit = 1000) {
    std::vector<IncludeSpec> a, b;
    for (const auto& s : includes) {
      const size_t sp = s.find(' ');
      a.push_back(sp == std::string::npos ? parseIncludeSpec(Model::r4(), s)
                                          : parseIncludeSpec(Model::r4(), s.substr(0, sp), s.substr(sp + 1)));
    }
    for (const auto& s : revincludes) {
      const size_t sp = s.find(' ');
      b.push_back(sp == std::string::npos ? parseIncludeSpec(Model::r4(), s)
                                          : parseIncludeSpec(Model::r4(), s.substr(0, sp), s.substr(sp + 1)));
    }
    return resolveIncludes(w_->store(), nullptr, Model::r4(), matches, a, b, limit);
  }

  void testInclude() {
    const auto got = inc({fr("Observation", "o1"), fr("Observation", "o2"), fr("Observation", "o3")},
                         {"Observation:subject"}, {});
    CPPUNIT_ASSERT_EQUAL(std::string("Patient/p1 Patient/p2 "), show(keysOf(got)));
    CPPUNIT_ASSERT_EQUAL(size_t(2), got.size());  // each once
    for (const auto& r : got) {
      const auto doc = parseJson(r.json);  // the stored content comes along
      CPPUNIT_ASSERT_EQUAL(r.id, std::string(doc["id"].GetString()));
    }
    // Deleted and unknown targets are skipped.
    CPPUNIT_ASSERT(inc({fr("Observation", "o2"), fr("Observation", "o6")}, {"Observation:performer"}, {}).empty());
    // What is already among the matches is not included again.
    CPPUNIT_ASSERT_EQUAL(std::string("Practitioner/pr1 "),
                         show(keysOf(inc({fr("Observation", "o1"), fr("Patient", "p1")}, {"Observation:subject",
                                                                                           "Observation:performer"}, {}))));
    // Matches of another type than the spec's source type contribute nothing.
    CPPUNIT_ASSERT(inc({fr("Patient", "p1")}, {"Observation:subject"}, {}).empty());
  }

  void testIncludeTargetTypeAndStar() {
    const std::vector<FetchedResource> obs = {fr("Observation", "o1"), fr("Observation", "o5")};
    CPPUNIT_ASSERT_EQUAL(std::string("Practitioner/pr1 "), show(keysOf(inc(obs, {"Observation:performer:Practitioner"}, {}))));
    CPPUNIT_ASSERT_EQUAL(std::string("Patient/p2 "), show(keysOf(inc(obs, {"Observation:performer:Patient"}, {}))));
    CPPUNIT_ASSERT_EQUAL(std::string("Encounter/e1 Observation/o2 Patient/p1 Patient/p2 Practitioner/pr1 "),
                         show(keysOf(inc(obs, {"Observation:*"}, {}))));
    CPPUNIT_ASSERT_EQUAL(std::string("Encounter/e1 Observation/o2 Patient/p1 Patient/p2 Practitioner/pr1 "),
                         show(keysOf(inc(obs, {"*"}, {}))));
  }

  void testRevinclude() {
    CPPUNIT_ASSERT_EQUAL(std::string("Observation/o1 Observation/o2 Observation/o5 Observation/o6 "),
                         show(keysOf(inc({fr("Patient", "p1")}, {}, {"Observation:subject"}))));
    CPPUNIT_ASSERT_EQUAL(std::string("DiagnosticReport/dr1 Observation/o1 Observation/o3 "),
                         show(keysOf(inc({fr("Practitioner", "pr1")}, {}, {"Observation:performer", "DiagnosticReport:performer"}))));
    // Target type restriction: only matches of that type are targets.
    CPPUNIT_ASSERT(inc({fr("Patient", "p2")}, {}, {"Observation:performer:Practitioner"}).empty());
    CPPUNIT_ASSERT_EQUAL(std::string("Observation/o5 "),
                         show(keysOf(inc({fr("Patient", "p2")}, {}, {"Observation:performer:Patient"}))));
    // The deleted observation o7 had its rows removed: never revincluded.
    for (const auto& r : inc({fr("Patient", "p1")}, {}, {"*"})) CPPUNIT_ASSERT(r.id != "o7");
  }

  void testIterate() {
    // Without :iterate, Observation:encounter applies to the matches (a patient) only: nothing.
    CPPUNIT_ASSERT_EQUAL(std::string("DiagnosticReport/dr1 "),
                         show(keysOf(inc({fr("Patient", "p1")}, {"Observation:encounter"}, {"DiagnosticReport:subject"}))));
    // DiagnosticReport <- revinclude; its results -> include:iterate; their encounter ->
    // include:iterate; the encounter's organization -> include:iterate: four levels.
    const auto got = inc({fr("Patient", "p1")},
                         {"_include:iterate DiagnosticReport:result", "_include:iterate Observation:encounter",
                          "_include:iterate Encounter:service-provider"},
                         {"DiagnosticReport:subject"});
    CPPUNIT_ASSERT_EQUAL(std::string("DiagnosticReport/dr1 Encounter/e1 Observation/o1 Organization/org1 "),
                         show(keysOf(got)));
    // :recurse is the R3 spelling of :iterate; :iterate on a _revinclude follows has-member back.
    CPPUNIT_ASSERT_EQUAL(std::string("Observation/o1 "),
                         show(keysOf(inc({fr("Observation", "o2")}, {}, {"_revinclude:recurse Observation:has-member"}))));
    // A cycle ends: o1 -> o2 (has-member) and back through the revinclude.
    const auto cyc = inc({fr("Observation", "o1")}, {"_include:iterate Observation:has-member"},
                         {"_revinclude:iterate Observation:has-member"});
    CPPUNIT_ASSERT_EQUAL(std::string("Observation/o2 "), show(keysOf(cyc)));
  }

  void testIncludeLimit() {
    const auto all = inc({fr("Patient", "p1")}, {}, {"Observation:subject"});
    CPPUNIT_ASSERT_EQUAL(size_t(4), all.size());
    const auto two = inc({fr("Patient", "p1")}, {}, {"Observation:subject"}, 2);
    CPPUNIT_ASSERT_EQUAL(size_t(2), two.size());
    // The limit counts new resources, not rows that turn out to be duplicates of the matches.
    const auto withMatches = inc({fr("Patient", "p1"), fr("Observation", "o1"), fr("Observation", "o2")}, {},
                                 {"Observation:subject"}, 2);
    CPPUNIT_ASSERT_EQUAL(std::string("Observation/o5 Observation/o6 "), show(keysOf(withMatches)));
    CPPUNIT_ASSERT(inc({fr("Patient", "p1")}, {}, {"Observation:subject"}, 0).empty());
  }

  // One statement per spec and round for a page of one type, however many matches it has.
  void testIncludeStatementsPerSpec() {
    std::vector<FetchedResource> many;
    for (int i = 0; i < 300; ++i) {
      const std::string id = "bulk" + std::to_string(i);
      w_->add("Observation", id, "2024-01-01T00:00:00.000Z",
              {{"subject", "Patient", i % 2 ? "p1" : "p2"}, {"performer", "Practitioner", "pr" + std::to_string(1 + i % 3)}});
      many.push_back(fr("Observation", id));
    }
    const long before = w_->statements();
    const auto got = inc(many, {"Observation:subject", "Observation:performer"}, {});
    CPPUNIT_ASSERT_EQUAL(2L, w_->statements() - before);
    CPPUNIT_ASSERT_EQUAL(std::string("Patient/p1 Patient/p2 Practitioner/pr1 Practitioner/pr2 Practitioner/pr3 "),
                         show(keysOf(got)));
  }

  void testEverything() {
    const auto all = allPages(*w_, {{"_count", "100"}});
    const std::map<std::string, std::string> expected = {
        {"Patient/p1", "match"},          {"Encounter/e1", "match"},         {"Observation/o1", "match"},
        {"Observation/o2", "match"},      {"Observation/o5", "match"},       {"Observation/o6", "match"},
        {"DiagnosticReport/dr1", "match"}, {"Practitioner/pr1", "include"}, {"Practitioner/pr2", "include"},
        {"Practitioner/pr3", "include"},  {"Organization/org1", "include"}};
    std::string got;
    for (const auto& [k, m] : all) got += k + "=" + m + " ";
    CPPUNIT_ASSERT_MESSAGE(got, all == expected);
    // Not there: the other patient and its observation (o3 shares a practitioner), o4 (focus is
    // not a compartment parameter), deleted o7 and prDeleted, the dangling Practitioner/missing.
    CPPUNIT_ASSERT_EQUAL(11L, page(*w_, {{"_count", "100"}}).total);
  }

  void testEverythingType() {
    const auto obs = allPages(*w_, {{"_type", "Observation,Practitioner"}});
    Keys k;
    for (const auto& [key, mode] : obs) k.insert(key);
    CPPUNIT_ASSERT_EQUAL(std::string("Observation/o1 Observation/o2 Observation/o5 Observation/o6 Practitioner/pr1 "
                                     "Practitioner/pr2 Practitioner/pr3 "),
                         show(k));
    const auto pat = allPages(*w_, {{"_type", "Patient"}});
    CPPUNIT_ASSERT_EQUAL(size_t(1), pat.size());
    CPPUNIT_ASSERT(pat.count("Patient/p1"));
    CPPUNIT_ASSERT_EQUAL(400, statusOf([&] { page(*w_, {{"_type", "Observation,Nope"}}); }));
  }

  void testEverythingSince() {
    const auto recent = allPages(*w_, {{"_since", "2024-02-15T00:00:00Z"}});
    Keys k;
    for (const auto& [key, mode] : recent) k.insert(key);
    CPPUNIT_ASSERT_EQUAL(std::string("DiagnosticReport/dr1 Observation/o2 Practitioner/pr2 "), show(k));
    CPPUNIT_ASSERT_EQUAL(std::string("include"), recent.at("Practitioner/pr2"));
    // The boundary is inclusive, and other offsets are understood.
    const auto exact = allPages(*w_, {{"_since", "2024-03-01T01:00:00+01:00"}});
    CPPUNIT_ASSERT_EQUAL(size_t(3), exact.size());
    CPPUNIT_ASSERT(allPages(*w_, {{"_since", "2025-01-01T00:00:00Z"}}).empty());
    CPPUNIT_ASSERT_EQUAL(400, statusOf([&] { page(*w_, {{"_since", "yesterday"}}); }));
  }

  void testEverythingPaging() {
    const auto whole = allPages(*w_, {{"_count", "100"}});
    for (int count : {1, 2, 3, 5, 10, 11}) {
      int pages = 0;
      const auto paged = allPages(*w_, {{"_count", std::to_string(count)}}, &pages);
      CPPUNIT_ASSERT_MESSAGE(std::to_string(count), paged == whole);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(std::to_string(count), static_cast<int>((whole.size() + count - 1) / count), pages);
    }
    // Writes between pages neither repeat nor skip what was not changed: insert a new observation
    // before the cursor and one after it.
    Page first = page(*w_, {{"_count", "4"}});
    CPPUNIT_ASSERT_EQUAL(size_t(4), first.entries.size());
    w_->add("Observation", "a-new", "2024-04-01T00:00:00.000Z", {{"subject", "Patient", "p1"}});
    w_->add("Observation", "z-new", "2024-04-01T00:00:00.000Z", {{"subject", "Patient", "p1"}});
    std::map<std::string, std::string> seen;
    for (const auto& [k, m] : first.entries) seen.emplace(k, m);
    const auto rest = allPages(*w_, {{"_count", "4"}, {"_cursor", first.next}});
    for (const auto& [k, m] : rest) CPPUNIT_ASSERT_MESSAGE("repeated " + k, seen.emplace(k, m).second);
    for (const auto& [k, m] : whole) CPPUNIT_ASSERT_MESSAGE("skipped " + k, seen.count(k));
    CPPUNIT_ASSERT(seen.count("Observation/z-new"));
    // _count is capped by maxCount (100 here) and must be a number.
    CPPUNIT_ASSERT_EQUAL(std::string("100"), queryParam(page(*w_, {{"_count", "100000"}}).self, "_count"));
    // _count=0: only the total.
    const Page none = page(*w_, {{"_count", "0"}});
    CPPUNIT_ASSERT(none.entries.empty() && none.next.empty());
    CPPUNIT_ASSERT_EQUAL(13L, none.total);
    CPPUNIT_ASSERT_EQUAL(400, statusOf([&] { page(*w_, {{"_count", "ten"}}); }));
    CPPUNIT_ASSERT_EQUAL(400, statusOf([&] { page(*w_, {{"_count", "-1"}}); }));
  }

  void testEverythingErrors() {
    auto run = [&](const char* type, const char* id, SearchParams p = {}) {
      return statusOf([&] { everything(w_->store(), Model::r4(), type, id, p, "http://h/fhir", 20, 100); });
    };
    CPPUNIT_ASSERT_EQUAL(404, run("Patient", "nobody"));
    w_->remove("Patient", "p2", "2024-05-01T00:00:00.000Z");
    CPPUNIT_ASSERT_EQUAL(410, run("Patient", "p2"));
    CPPUNIT_ASSERT_EQUAL(400, run("Observation", "o1"));  // $everything is a Patient operation here
    CPPUNIT_ASSERT_EQUAL(404, run("Nope", "x"));
    // Cursors: a valid one passes; any change to it is refused.
    const std::string cursor = page(*w_, {{"_count", "2"}}).next;
    CPPUNIT_ASSERT(!cursor.empty());
    CPPUNIT_ASSERT_EQUAL(0, run("Patient", "p1", {{"_cursor", cursor}}));
    std::string tampered = cursor;
    tampered[0] = tampered[0] == 'A' ? 'B' : 'A';
    CPPUNIT_ASSERT_EQUAL(400, run("Patient", "p1", {{"_cursor", tampered}}));
    CPPUNIT_ASSERT_EQUAL(400, run("Patient", "p1", {{"_cursor", cursor.substr(0, cursor.size() - 1) + "x"}}));
    CPPUNIT_ASSERT_EQUAL(400, run("Patient", "p1", {{"_cursor", "garbage"}}));
    CPPUNIT_ASSERT_EQUAL(400, run("Patient", "p1", {{"_cursor", ""}}));
  }

  // The whole set in few statements, however many resources the patient has.
  void testEverythingStatements() {
    for (int i = 0; i < 400; ++i) {
      w_->add("Observation", "x" + std::to_string(1000 + i), "2024-01-01T00:00:00.000Z",
              {{"subject", "Patient", "p1"}, {"performer", "Practitioner", "pr" + std::to_string(1 + i % 3)}});
    }
    const long before = w_->statements();
    const Page p = page(*w_, {{"_count", "100"}});
    CPPUNIT_ASSERT_EQUAL(size_t(100), p.entries.size());
    CPPUNIT_ASSERT_EQUAL(411L, p.total);
    CPPUNIT_ASSERT(w_->statements() - before <= 3);  // read of the patient, the keys, one page of content
  }
};

class SqliteResultsTest : public ResultsStoreTest {
  CPPUNIT_TEST_SUB_SUITE(SqliteResultsTest, ResultsStoreTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  std::string backend() const override { return "sqlite"; }
};
CPPUNIT_TEST_SUITE_REGISTRATION(SqliteResultsTest);

// PostgreSQL: registered when HEARTH_TEST_PG_URL is set; HEARTH_REQUIRE_PG=1 without it fails.
class PostgresResultsTest : public ResultsStoreTest {
  CPPUNIT_TEST_SUB_SUITE(PostgresResultsTest, ResultsStoreTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  std::string backend() const override { return "postgres"; }
};

namespace {

class PostgresRequired : public CppUnit::TestFixture {
 public:
  void testPostgresConfigured() { CPPUNIT_FAIL("HEARTH_REQUIRE_PG=1 but HEARTH_TEST_PG_URL is not set"); }
};

class PostgresResultsFactory : public CppUnit::TestFactory {
 public:
  CppUnit::Test* makeTest() override {
    if (hearth::test::pgTestUrl()) return PostgresResultsTest::suite();
    const char* require = std::getenv("HEARTH_REQUIRE_PG");
    auto* suite = new CppUnit::TestSuite("PostgresResultsTest");
    if (require && std::string(require) == "1") {
      suite->addTest(new CppUnit::TestCaller<PostgresRequired>("PostgresResultsTest::testPostgresConfigured",
                                                               &PostgresRequired::testPostgresConfigured));
    } else {
      std::cerr << "PostgresResultsTest: SKIPPED (set HEARTH_TEST_PG_URL, e.g. from tools/pg-test-server.sh)\n";
    }
    return suite;
  }
};

struct RegisterPostgresResults {
  RegisterPostgresResults() { CppUnit::TestFactoryRegistry::getRegistry().registerFactory(&factory); }
  ~RegisterPostgresResults() { CppUnit::TestFactoryRegistry::getRegistry().unregisterFactory(&factory); }
  PostgresResultsFactory factory;
} registerPostgresResults;

}  // namespace
