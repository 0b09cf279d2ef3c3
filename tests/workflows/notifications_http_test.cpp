// Clinical notifications as a doctor's app would see them: a lab report turning final raises one
// Communication to the doctor who ordered it, and booked appointments get one reminder ahead of
// time; nothing for preliminary reports, reports without an order, far-off or cancelled
// appointments. Over HTTP on SQLite and PostgreSQL.
#include <cppunit/extensions/HelperMacros.h>

#include <chrono>
#include <ctime>
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

const std::string kSystem = "urn:hearth:notification";

std::string isoIn(std::chrono::minutes fromNow) {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + fromNow);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The Communications with this notification identifier (searchset entries' resources).
rapidjson::Document communications(HttpClient& c, const std::string& identifier) {
  const HttpResponse r = c.get("/fhir/Communication?identifier=" + kSystem + "%7C" + identifier);
  assertStatus(200, r, "Communication search");
  return r.json();
}
size_t entries(const rapidjson::Document& bundle) {
  return bundle.HasMember("entry") ? bundle["entry"].Size() : 0;
}
size_t waitForCommunications(HttpClient& c, const std::string& identifier, size_t n, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t got = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    got = entries(communications(c, identifier));
    if (got >= n) return got;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return got;
}

std::string report(const std::string& status, const std::string& patient, const std::string& order) {
  std::string r = R"({"resourceType":"DiagnosticReport","status":")" + status +
                  R"(","code":{"coding":[{"system":"http://loinc.org","code":"58410-2","display":"CBC panel"}]},"subject":{"reference":"Patient/)" +
                  patient + R"("})";
  if (!order.empty()) r += R"(,"basedOn":[{"reference":"ServiceRequest/)" + order + R"("}])";
  return r + "}";
}

}  // namespace

class NotificationsTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(NotificationsTest);
  CPPUNIT_TEST(testFinalReportAlertsOrderingDoctorOnce);
  CPPUNIT_TEST(testReportWithoutOrderAlertsNobody);
  CPPUNIT_TEST(testImportedReportsAlertOnceEach);
  CPPUNIT_TEST(testRemindersForUpcomingBookings);
  CPPUNIT_TEST_SUITE_END_ABSTRACT();

 public:
  void setUp() override {
    if (server_ && server_->options().db != backend().db) server_.reset();
    if (!server_ || !server_->running()) {
      ServerOptions opt;
      opt.db = backend().db;
      opt.args = {"--set", "notifications.scan-interval-seconds=1", "--set", "notifications.reminder-hours=24"};
      server_ = std::make_unique<HearthProcess>(opt);
      server_->start();
    }
  }

  void testFinalReportAlertsOrderingDoctorOnce() {
    HttpClient c(*server_);
    const std::string dr = uniqueId("dr"), pat = uniqueId("pat"), order = uniqueId("sr");
    assertStatus(201, c.put("/fhir/Practitioner/" + dr, R"({"resourceType":"Practitioner","id":")" + dr + R"("})"));
    assertStatus(201, c.put("/fhir/Patient/" + pat, R"({"resourceType":"Patient","id":")" + pat + R"("})"));
    assertStatus(201, c.put("/fhir/ServiceRequest/" + order,
                            R"({"resourceType":"ServiceRequest","id":")" + order +
                                R"(","status":"active","intent":"order","subject":{"reference":"Patient/)" + pat +
                                R"("},"requester":{"reference":"Practitioner/)" + dr + R"("}})"));
    const HttpResponse created = c.post("/fhir/DiagnosticReport", report("preliminary", pat, order));
    assertStatus(201, created);
    const std::string id = created.json()["id"].GetString();
    const std::string identifier = "lab-result:DiagnosticReport/" + id;
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    CPPUNIT_ASSERT_EQUAL(size_t(0), entries(communications(c, identifier)));  // preliminary: no alert

    assertStatus(200, c.put("/fhir/DiagnosticReport/" + id, withId(report("final", pat, order), id)));
    CPPUNIT_ASSERT_EQUAL(size_t(1), waitForCommunications(c, identifier, 1, std::chrono::seconds(10)));
    const rapidjson::Document found = communications(c, identifier);
    const auto& comm = found["entry"][0]["resource"];
    CPPUNIT_ASSERT_EQUAL(std::string("Practitioner/" + dr), std::string(comm["recipient"][0]["reference"].GetString()));
    CPPUNIT_ASSERT_EQUAL(size_t(1), static_cast<size_t>(comm["recipient"].Size()));
    CPPUNIT_ASSERT_EQUAL(std::string("Patient/" + pat), std::string(comm["subject"]["reference"].GetString()));
    CPPUNIT_ASSERT_EQUAL(std::string("DiagnosticReport/" + id), std::string(comm["about"][0]["reference"].GetString()));
    CPPUNIT_ASSERT_EQUAL(std::string("alert"), std::string(comm["category"][0]["coding"][0]["code"].GetString()));
    CPPUNIT_ASSERT(std::string(comm["payload"][0]["contentString"].GetString()).find("CBC panel") != std::string::npos);
    // The doctor's app finds it by recipient.
    const HttpResponse mine = c.get("/fhir/Communication?recipient=Practitioner/" + dr + "&category=alert");
    assertStatus(200, mine);
    CPPUNIT_ASSERT_EQUAL(size_t(1), entries(mine.json()));

    // Amended, then final again: still one alert.
    assertStatus(200, c.put("/fhir/DiagnosticReport/" + id, withId(report("amended", pat, order), id)));
    assertStatus(200, c.put("/fhir/DiagnosticReport/" + id, withId(report("final", pat, order), id)));
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    CPPUNIT_ASSERT_EQUAL(size_t(1), entries(communications(c, identifier)));
  }

  void testReportWithoutOrderAlertsNobody() {
    HttpClient c(*server_);
    const HttpResponse created = c.post("/fhir/DiagnosticReport", report("final", uniqueId("pat"), ""));
    assertStatus(201, created);
    const std::string id = created.json()["id"].GetString();
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    CPPUNIT_ASSERT_EQUAL(size_t(0), entries(communications(c, "lab-result:DiagnosticReport/" + id)));
  }

  // An import of many final reports at once (more than one batch of the worker), ordered and
  // unordered mixed: every ordered report alerts its doctor exactly once, the others nobody.
  void testImportedReportsAlertOnceEach() {
    HttpClient c(*server_);
    const std::string dr = uniqueId("dr"), pat = uniqueId("pat"), order = uniqueId("sr");
    assertStatus(201, c.put("/fhir/Practitioner/" + dr, R"({"resourceType":"Practitioner","id":")" + dr + R"("})"));
    assertStatus(201, c.put("/fhir/ServiceRequest/" + order,
                            R"({"resourceType":"ServiceRequest","id":")" + order +
                                R"(","status":"active","intent":"order","subject":{"reference":"Patient/)" + pat +
                                R"("},"requester":{"reference":"Practitioner/)" + dr + R"("}})"));
    constexpr int kOrdered = 70, kUnordered = 10;
    std::string bundle = R"({"resourceType":"Bundle","type":"transaction","entry":[)";
    for (int i = 0; i < kOrdered + kUnordered; ++i) {
      if (i) bundle += ",";
      bundle += R"({"resource":)" + report("final", pat, i < kOrdered ? order : "") +
                R"(,"request":{"method":"POST","url":"DiagnosticReport"}})";
    }
    bundle += "]}";
    const HttpResponse r = c.post("/fhir", bundle);
    assertStatus(200, r);
    std::vector<std::string> ids;
    const rapidjson::Document body = r.json();  // kept alive: the loop walks into it
    for (const auto& e : body["entry"].GetArray()) {
      const std::string loc = e["response"]["location"].GetString();  // DiagnosticReport/<id>/_history/1
      ids.push_back(loc.substr(17, loc.find("/_history") - 17));
    }
    CPPUNIT_ASSERT_EQUAL(size_t(kOrdered + kUnordered), ids.size());
    const HttpResponse mine = [&] {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      for (;;) {
        HttpResponse got = c.get("/fhir/Communication?recipient=Practitioner/" + dr + "&_count=200&_total=accurate");
        assertStatus(200, got);
        if (got.json()["total"].GetInt() >= kOrdered || std::chrono::steady_clock::now() >= deadline) return got;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }();
    CPPUNIT_ASSERT_EQUAL(kOrdered, mine.json()["total"].GetInt());
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // nothing more comes
    for (int i = 0; i < kOrdered + kUnordered; ++i) {
      CPPUNIT_ASSERT_EQUAL_MESSAGE(ids[static_cast<size_t>(i)], size_t(i < kOrdered ? 1 : 0),
                                   entries(communications(c, "lab-result:DiagnosticReport/" + ids[static_cast<size_t>(i)])));
    }
  }

  void testRemindersForUpcomingBookings() {
    HttpClient c(*server_);
    auto book = [&](const std::string& status, std::chrono::minutes in, const std::string& dr, const std::string& pat) {
      const HttpResponse r = c.post(
          "/fhir/Appointment", R"({"resourceType":"Appointment","status":")" + status + R"(","start":")" + isoIn(in) +
                                   R"(","end":")" + isoIn(in + std::chrono::minutes(20)) +
                                   R"(","participant":[{"actor":{"reference":"Practitioner/)" + dr +
                                   R"("},"status":"accepted"},{"actor":{"reference":"Patient/)" + pat +
                                   R"("},"status":"accepted"}]})");
      assertStatus(201, r);
      return std::string(r.json()["id"].GetString());
    };
    const std::string dr = uniqueId("dr"), pat = uniqueId("pat");
    const std::string soon = book("booked", std::chrono::minutes(120), dr, pat);
    const std::string far = book("booked", std::chrono::minutes(48 * 60), dr, pat);
    const std::string cancelled = book("cancelled", std::chrono::minutes(60), uniqueId("dr"), pat);
    CPPUNIT_ASSERT_EQUAL(size_t(1),
                         waitForCommunications(c, "reminder:Appointment/" + soon, 1, std::chrono::seconds(10)));
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // more scans: still one reminder
    const rapidjson::Document found = communications(c, "reminder:Appointment/" + soon);
    CPPUNIT_ASSERT_EQUAL(size_t(1), entries(found));
    const auto& comm = found["entry"][0]["resource"];
    CPPUNIT_ASSERT_EQUAL(std::string("reminder"), std::string(comm["category"][0]["coding"][0]["code"].GetString()));
    CPPUNIT_ASSERT_EQUAL(std::string("Patient/" + pat), std::string(comm["subject"]["reference"].GetString()));
    CPPUNIT_ASSERT_EQUAL(size_t(2), static_cast<size_t>(comm["recipient"].Size()));
    CPPUNIT_ASSERT_EQUAL(size_t(0), entries(communications(c, "reminder:Appointment/" + far)));
    CPPUNIT_ASSERT_EQUAL(size_t(0), entries(communications(c, "reminder:Appointment/" + cancelled)));
  }

 protected:
  virtual Backend backend() const = 0;
  static std::unique_ptr<HearthProcess> server_;
};
std::unique_ptr<HearthProcess> NotificationsTest::server_;

class NotificationsSqliteTest : public NotificationsTest {
  CPPUNIT_TEST_SUB_SUITE(NotificationsSqliteTest, NotificationsTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return sqliteBackend(); }
};
CPPUNIT_TEST_SUITE_REGISTRATION(NotificationsSqliteTest);

class NotificationsPostgresTest : public NotificationsTest {
  CPPUNIT_TEST_SUB_SUITE(NotificationsPostgresTest, NotificationsTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return *postgresBackend(); }
};

namespace {
struct RegisterPostgresSuite {
  std::optional<CppUnit::AutoRegisterSuite<NotificationsPostgresTest>> reg;
  RegisterPostgresSuite() {
    if (postgresBackend())
      reg.emplace();
    else
      std::cerr << "[note] HEARTH_TEST_PG_URL not set: PostgreSQL notifications suite not run\n";
  }
} registerPostgresSuite;
}  // namespace
