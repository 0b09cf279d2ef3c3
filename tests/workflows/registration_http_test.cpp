// Registration as a front desk would check it: Patient/$match ranks the likely records for the
// person at the desk (accents and case do not hide a match; an identifier makes it certain), and
// registering the same person twice (same name, birth date and phone) is refused with a pointer to
// the existing record, also when several desks do it at once. SQLite and PostgreSQL, over HTTP.
#include <cppunit/extensions/HelperMacros.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "hearth_process.h"
#include "http_client.h"
#include "http_test_support.h"

using namespace hearth::test;

namespace {

std::string patient(const std::string& family, const std::string& given, const std::string& birthDate,
                    const std::string& phone = {}, const std::string& mrn = {}) {
  std::string p = R"({"resourceType":"Patient","gender":"female","name":[{"family":")" + family + R"(","given":[")" + given +
                  R"("]}],"birthDate":")" + birthDate + R"(")";
  if (!phone.empty()) p += R"(,"telecom":[{"system":"phone","value":")" + phone + R"("}])";
  if (!mrn.empty()) p += R"(,"identifier":[{"system":"urn:test:mrn","value":")" + mrn + R"("}])";
  return p + "}";
}

std::string matchParams(const std::string& patientJson, bool onlyCertain = false) {
  return R"({"resourceType":"Parameters","parameter":[{"name":"resource","resource":)" + patientJson +
         R"(},{"name":"onlyCertainMatches","valueBoolean":)" + (onlyCertain ? "true" : "false") + "}]}";
}

}  // namespace

class RegistrationTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(RegistrationTest);
  CPPUNIT_TEST(testMatchRanksCandidates);
  CPPUNIT_TEST(testDuplicateRegistrationRefused);
  CPPUNIT_TEST(testParallelDesksRegisterOnce);
  CPPUNIT_TEST(testMatchBadInput);
  CPPUNIT_TEST_SUITE_END_ABSTRACT();

 public:
  void setUp() override {
    if (server_ && server_->options().db != backend().db) server_.reset();
    if (!server_ || !server_->running()) {
      ServerOptions opt;
      opt.db = backend().db;
      opt.args = {"--set", "registration.duplicate-check=reject"};
      server_ = std::make_unique<HearthProcess>(opt);
      server_->start();
    }
  }

  void testMatchRanksCandidates() {
    HttpClient c(*server_);
    const std::string u = uniqueId("m");
    auto create = [&](const std::string& body) {
      const HttpResponse r = c.post("/fhir/Patient", body);
      assertStatus(201, r);
      return std::string(r.json()["id"].GetString());
    };
    const std::string a = create(patient("Müller" + u, "Anna", "1980-05-01", "+49301234", "A-" + u));
    const std::string b = create(patient("Muller" + u, "Anna", "1980-05-01"));
    const std::string cc = create(patient("Müller" + u, "Berta", "1980-05-01"));
    create(patient("Müller" + u, "Anna", "1975-01-01"));  // another birth date: not a candidate

    // The person at the desk: name in capitals without the umlaut, same birth date and phone.
    HttpResponse r = c.post("/fhir/Patient/$match", matchParams(patient("MULLER" + u, "anna", "1980-05-01", "+49301234")));
    assertStatus(200, r);
    rapidjson::Document bundle = r.json();
    CPPUNIT_ASSERT_EQUAL(std::string("searchset"), std::string(bundle["type"].GetString()));
    CPPUNIT_ASSERT_EQUAL(3u, bundle["entry"].Size());
    const std::vector<std::pair<std::string, std::string>> want = {{a, "probable"}, {b, "probable"}, {cc, "possible"}};
    double previous = 2;
    for (rapidjson::SizeType i = 0; i < 3; ++i) {
      const auto& e = bundle["entry"][i];
      CPPUNIT_ASSERT_EQUAL(want[i].first, std::string(e["resource"]["id"].GetString()));
      CPPUNIT_ASSERT_EQUAL(std::string("match"), std::string(e["search"]["mode"].GetString()));
      CPPUNIT_ASSERT_EQUAL(want[i].second, std::string(e["search"]["extension"][0]["valueCode"].GetString()));
      const double score = e["search"]["score"].GetDouble();
      CPPUNIT_ASSERT(score < previous);  // best first, strictly: the phone ranks A above B
      previous = score;
    }
    // With the MRN the match is certain, and onlyCertainMatches leaves just that one.
    r = c.post("/fhir/Patient/$match", matchParams(patient("Someone" + u, "Else", "2001-01-01", "", "A-" + u), true));
    assertStatus(200, r);
    bundle = r.json();
    CPPUNIT_ASSERT_EQUAL(1u, bundle["entry"].Size());
    CPPUNIT_ASSERT_EQUAL(a, std::string(bundle["entry"][0]["resource"]["id"].GetString()));
    CPPUNIT_ASSERT_EQUAL(std::string("certain"), std::string(bundle["entry"][0]["search"]["extension"][0]["valueCode"].GetString()));
    // Nobody like this: an empty searchset.
    r = c.post("/fhir/Patient/$match", matchParams(patient("Nobody" + u, "Here", "1901-01-01")));
    assertStatus(200, r);
    CPPUNIT_ASSERT_EQUAL(int64_t(0), r.json()["total"].GetInt64());
  }

  void testDuplicateRegistrationRefused() {
    HttpClient c(*server_);
    const std::string family = "Dup" + uniqueId("d");
    const HttpResponse first = c.post("/fhir/Patient", patient(family, "Jon", "1990-02-03", "555-0101", "X1"));
    assertStatus(201, first);
    const std::string id = first.json()["id"].GetString();
    // Same person, other MRN (another system registered them): refused, naming the record.
    const HttpResponse again = c.post("/fhir/Patient", patient(family, "jon", "1990-02-03", "555 0101", "X2"));
    const rapidjson::Document oo = assertOperationOutcome(again, 409, "duplicate registration");
    CPPUNIT_ASSERT(std::string(oo["issue"][0]["diagnostics"].GetString()).find("Patient/" + id) != std::string::npos);
    // Another phone, another birth date, another given name: different people, registered.
    assertStatus(201, c.post("/fhir/Patient", patient(family, "Jon", "1990-02-03", "555-0199")));
    assertStatus(201, c.post("/fhir/Patient", patient(family, "Jon", "1990-02-04", "555-0101")));
    assertStatus(201, c.post("/fhir/Patient", patient(family, "Jane", "1990-02-03", "555-0101")));
    // Updating the existing record is not a registration.
    assertStatus(200, c.put("/fhir/Patient/" + id, withId(patient(family, "Jon", "1990-02-03", "555-0101", "X1"), id)));
  }

  void testParallelDesksRegisterOnce() {
    const std::string family = "Desk" + uniqueId("p");
    std::atomic<int> created{0}, refused{0}, other{0};
    std::vector<std::thread> desks;
    for (int i = 0; i < 10; ++i) {
      desks.emplace_back([&] {
        HttpClient c(*server_);
        const HttpResponse r = c.post("/fhir/Patient", patient(family, "Ola", "1970-07-07", "555-7777"));
        if (r.status == 201) ++created;
        else if (r.status == 409) ++refused;
        else ++other;
      });
    }
    for (auto& t : desks) t.join();
    CPPUNIT_ASSERT_EQUAL(1, created.load());
    CPPUNIT_ASSERT_EQUAL(9, refused.load());
    CPPUNIT_ASSERT_EQUAL(0, other.load());
  }

  void testMatchBadInput() {
    HttpClient c(*server_);
    assertOperationOutcome(c.post("/fhir/Patient/$match", patient("X", "Y", "2000-01-01")), 400, "not Parameters");
    assertOperationOutcome(c.post("/fhir/Patient/$match", R"({"resourceType":"Parameters","parameter":[{"name":"count","valueInteger":3}]})"),
                           400, "no resource");
    assertOperationOutcome(c.post("/fhir/Patient/$match", "{not json"), 400, "malformed");
    assertStatus(405, c.get("/fhir/Patient/$match"));
  }

 protected:
  virtual Backend backend() const = 0;
  static std::unique_ptr<HearthProcess> server_;
};
std::unique_ptr<HearthProcess> RegistrationTest::server_;

class RegistrationSqliteTest : public RegistrationTest {
  CPPUNIT_TEST_SUB_SUITE(RegistrationSqliteTest, RegistrationTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return sqliteBackend(); }
};
CPPUNIT_TEST_SUITE_REGISTRATION(RegistrationSqliteTest);

class RegistrationPostgresTest : public RegistrationTest {
  CPPUNIT_TEST_SUB_SUITE(RegistrationPostgresTest, RegistrationTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return *postgresBackend(); }
};

namespace {
struct RegisterPostgresSuite {
  std::optional<CppUnit::AutoRegisterSuite<RegistrationPostgresTest>> reg;
  RegisterPostgresSuite() {
    if (postgresBackend())
      reg.emplace();
    else
      std::cerr << "[note] HEARTH_TEST_PG_URL not set: PostgreSQL registration suite not run\n";
  }
} registerPostgresSuite;
}  // namespace
