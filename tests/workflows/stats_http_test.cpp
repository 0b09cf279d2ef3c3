// $hospital-stats as an administrator reads it: for one day, the encounters, admissions,
// appointments per status, booking lead time, revenue invoiced and collected (to the cent, per
// currency) and dispenses, from data this test writes on a day nothing else uses; registrations
// as the difference before and after. SQLite and PostgreSQL, over HTTP.
#include <cppunit/extensions/HelperMacros.h>

#include <chrono>
#include <cmath>
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "hearth_process.h"
#include "http_client.h"
#include "http_test_support.h"

using namespace hearth::test;

namespace {

struct Stats {
  std::map<std::string, std::string> values;  // name (appointments.<status>, invoiced.<cur>) -> JSON text
  std::string get(const std::string& k) const {
    auto it = values.find(k);
    return it == values.end() ? std::string("<absent>") : it->second;
  }
};

std::string jsonText(const rapidjson::Value& v) {
  if (v.IsInt64()) return std::to_string(v.GetInt64());
  if (v.IsString()) return v.GetString();
  if (v.IsNumber()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f", v.GetDouble());
    return buf;
  }
  return "?";
}

Stats stats(HttpClient& c, const std::string& start, const std::string& end) {
  const HttpResponse r = c.get("/fhir/$hospital-stats?start=" + start + "&end=" + end);
  assertStatus(200, r, "$hospital-stats");
  const rapidjson::Document d = r.json();
  CPPUNIT_ASSERT_EQUAL(std::string("Parameters"), std::string(d["resourceType"].GetString()));
  Stats s;
  for (const auto& p : d["parameter"].GetArray()) {
    const std::string name = p["name"].GetString();
    if (name == "lowStock" || name == "expiring") {
      continue;  // lists, read by pharmacyLists()
    } else if (p.HasMember("part")) {
      for (const auto& part : p["part"].GetArray())
        s.values[name + "." + part["name"].GetString()] = jsonText(part["valueInteger"]);
    } else if (p.HasMember("valueMoney")) {
      s.values[name + "." + p["valueMoney"]["currency"].GetString()] = jsonText(p["valueMoney"]["value"]);
    } else if (p.HasMember("valueInteger")) {
      s.values[name] = jsonText(p["valueInteger"]);
    } else if (p.HasMember("valueDecimal")) {
      s.values[name] = jsonText(p["valueDecimal"]);
    }
  }
  return s;
}

// "Medication/<id>" of each lowStock entry, and "Medication/<id>|lot|expiry|quantity|expired" of
// each expiring entry, in answer order.
std::pair<std::vector<std::string>, std::vector<std::string>> pharmacyLists(HttpClient& c, const std::string& query) {
  const HttpResponse r = c.get("/fhir/$hospital-stats?" + query);
  assertStatus(200, r, "$hospital-stats");
  const rapidjson::Document d = r.json();
  std::vector<std::string> low, expiring;
  for (const auto& p : d["parameter"].GetArray()) {
    const std::string name = p["name"].GetString();
    if (name != "lowStock" && name != "expiring") continue;
    std::string row;
    for (const auto& part : p["part"].GetArray()) {
      if (!row.empty()) row += "|";
      if (part.HasMember("valueReference")) row += part["valueReference"]["reference"].GetString();
      else if (part.HasMember("valueInteger")) row += std::to_string(part["valueInteger"].GetInt64());
      else if (part.HasMember("valueBoolean")) row += part["valueBoolean"].GetBool() ? "true" : "false";
      else if (part.HasMember("valueString")) row += part["valueString"].GetString();
      else if (part.HasMember("valueDate")) row += part["valueDate"].GetString();
    }
    (name == "lowStock" ? low : expiring).push_back(row);
  }
  return {low, expiring};
}

std::string randomDay() {
  std::mt19937 rng(std::random_device{}());
  char day[16];
  std::snprintf(day, sizeof day, "%04d-%02d-%02d", 2040 + static_cast<int>(rng() % 80), 1 + static_cast<int>(rng() % 12),
                1 + static_cast<int>(rng() % 28));
  return day;
}

// The UTC date `days` from today.
std::string dateFromToday(int days) {
  const std::time_t t = std::time(nullptr) + static_cast<std::time_t>(days) * 86400;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

}  // namespace

class StatsTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(StatsTest);
  CPPUNIT_TEST(testFiguresOfOneDay);
  CPPUNIT_TEST(testBadPeriods);
  CPPUNIT_TEST(testAverageWait);
  CPPUNIT_TEST(testLowStockAndExpiring);
  CPPUNIT_TEST_SUITE_END_ABSTRACT();

 public:
  void setUp() override {
    if (server_ && server_->options().db != backend().db) server_.reset();
    if (!server_ || !server_->running()) {
      ServerOptions opt;
      opt.db = backend().db;
      server_ = std::make_unique<HearthProcess>(opt);
      server_->start();
    }
  }

  void testFiguresOfOneDay() {
    HttpClient c(*server_);
    // A day far ahead that no other test writes to.
    std::mt19937 rng(std::random_device{}());
    char day[16];
    std::snprintf(day, sizeof day, "%04d-%02d-%02d", 2040 + static_cast<int>(rng() % 80), 1 + static_cast<int>(rng() % 12),
                  1 + static_cast<int>(rng() % 28));
    const std::string d = day;
    const std::string now = "2026-01-01", later = "2139-12-31";
    const Stats before = stats(c, now, later);

    for (int i = 0; i < 3; ++i) {
      assertStatus(201, c.post("/fhir/Patient", R"({"resourceType":"Patient","name":[{"family":")" + uniqueId("Stat") + R"("}]})"));
    }
    auto encounter = [&](const std::string& cls, const std::string& start) {
      assertStatus(201, c.post("/fhir/Encounter",
                               R"({"resourceType":"Encounter","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":")" +
                                   cls + R"("},"period":{"start":")" + start + R"("}})"));
    };
    encounter("IMP", d + "T08:00:00Z");
    encounter("AMB", d + "T09:00:00Z");
    encounter("IMP", "2039-06-01T09:00:00Z");  // another day
    const auto booked = std::chrono::system_clock::now();
    auto appointment = [&](const std::string& status) {
      assertStatus(201, c.post("/fhir/Appointment",
                               R"({"resourceType":"Appointment","status":")" + status + R"(","start":")" + d +
                                   R"(T10:00:00Z","end":")" + d + R"(T10:30:00Z","participant":[{"actor":{"reference":"Practitioner/)" +
                                   uniqueId("dr") + R"("},"status":"accepted"}]})"));
    };
    appointment("booked");
    appointment("booked");
    appointment("fulfilled");
    appointment("cancelled");
    appointment("noshow");
    auto invoice = [&](const std::string& status, const std::string& gross, const std::string& currency) {
      assertStatus(201, c.post("/fhir/Invoice", R"({"resourceType":"Invoice","status":")" + status + R"(","date":")" + d +
                                                    R"(T12:00:00Z","totalGross":{"value":)" + gross + R"(,"currency":")" +
                                                    currency + R"("}})"));
    };
    invoice("issued", "10.10", "EUR");
    invoice("balanced", "20.20", "EUR");
    invoice("balanced", "0.1", "EUR");
    invoice("balanced", "0.2", "EUR");
    invoice("issued", "99.99", "USD");
    invoice("draft", "500.00", "EUR");      // not issued: not revenue
    invoice("cancelled", "700.00", "EUR");  // cancelled: not revenue
    auto dispense = [&](const std::string& status) {
      assertStatus(201, c.post("/fhir/MedicationDispense",
                               R"({"resourceType":"MedicationDispense","status":")" + status +
                                   R"(","medicationCodeableConcept":{"text":"paracetamol 500 mg"},"whenHandedOver":")" + d +
                                   R"(T15:00:00Z"})"));
    };
    dispense("completed");
    dispense("completed");
    dispense("in-progress");

    const Stats s = stats(c, d, d);
    CPPUNIT_ASSERT_EQUAL(std::string("2"), s.get("encounters"));
    CPPUNIT_ASSERT_EQUAL(std::string("1"), s.get("admissions"));
    CPPUNIT_ASSERT_EQUAL(std::string("2"), s.get("appointments.booked"));
    CPPUNIT_ASSERT_EQUAL(std::string("1"), s.get("appointments.fulfilled"));
    CPPUNIT_ASSERT_EQUAL(std::string("1"), s.get("appointments.cancelled"));
    CPPUNIT_ASSERT_EQUAL(std::string("1"), s.get("appointments.noshow"));
    CPPUNIT_ASSERT_EQUAL(std::string("30.60"), s.get("invoiced.EUR"));  // 10.10 + 20.20 + 0.1 + 0.2, exactly
    CPPUNIT_ASSERT_EQUAL(std::string("20.50"), s.get("collected.EUR"));
    CPPUNIT_ASSERT_EQUAL(std::string("99.99"), s.get("invoiced.USD"));
    CPPUNIT_ASSERT_EQUAL(std::string("<absent>"), s.get("collected.USD"));
    CPPUNIT_ASSERT_EQUAL(std::string("2"), s.get("dispensed"));
    // Lead time: from booking (now) to 10:00 on that day, over the 4 appointments not cancelled.
    std::tm t{};
    std::sscanf(d.c_str(), "%d-%d-%d", &t.tm_year, &t.tm_mon, &t.tm_mday);
    t.tm_year -= 1900;
    t.tm_mon -= 1;
    t.tm_hour = 10;
    const double expectDays =
        static_cast<double>(timegm(&t) - std::chrono::system_clock::to_time_t(booked)) / 86400.0;
    const double gotDays = std::stod(s.get("averageLeadDays"));
    CPPUNIT_ASSERT_MESSAGE(s.get("averageLeadDays") + " vs " + std::to_string(expectDays),
                           std::fabs(gotDays - expectDays) < 0.02);

    const Stats after = stats(c, now, later);
    CPPUNIT_ASSERT_EQUAL(std::stoll(before.get("newPatients")) + 3, std::stoll(after.get("newPatients")));
  }

  // Wait = the linked Encounter's period.start minus the Appointment's start.
  void testAverageWait() {
    HttpClient c(*server_);
    const std::string d = randomDay();
    auto appointment = [&](const std::string& hhmm) {
      const HttpResponse r = c.post("/fhir/Appointment",
                                    R"({"resourceType":"Appointment","status":"fulfilled","start":")" + d + "T" + hhmm +
                                        R"(:00Z","end":")" + d + "T" + hhmm.substr(0, 2) + R"(:59:00Z","participant":[{"actor":{"reference":"Practitioner/)" +
                                        uniqueId("dr") + R"("},"status":"accepted"}]})");
      assertStatus(201, r);
      return std::string(r.json()["id"].GetString());
    };
    auto encounter = [&](const std::string& appt, const std::string& start) {
      assertStatus(201, c.post("/fhir/Encounter",
                               R"({"resourceType":"Encounter","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},"appointment":[{"reference":"Appointment/)" +
                                   appt + R"("}],"period":{"start":")" + start + R"("}})"));
    };
    CPPUNIT_ASSERT_EQUAL(std::string("<absent>"), stats(c, d, d).get("averageWaitMinutes"));
    encounter(appointment("10:00"), d + "T10:15:00Z");  // 15 minutes
    encounter(appointment("11:00"), d + "T11:45:30Z");  // 45.5 minutes
    appointment("12:00");                               // no encounter: not counted
    const Stats s = stats(c, d, d);
    CPPUNIT_ASSERT_EQUAL(std::string("30.25"), s.get("averageWaitMinutes"));
    CPPUNIT_ASSERT_EQUAL(std::string("2"), s.get("waitSamples"));
  }

  // Low stock (usable below the reorder level) and lots expiring within N days, as of today.
  void testLowStockAndExpiring() {
    HttpClient c(*server_);
    auto medication = [&] {
      const HttpResponse r = c.post("/fhir/Medication", R"({"resourceType":"Medication","code":{"text":")" + uniqueId("drug") + R"("}})");
      assertStatus(201, r);
      return std::string(r.json()["id"].GetString());
    };
    auto receive = [&](const std::string& med, const std::string& lot, const std::string& expiry, int qty, int reorder) {
      assertStatus(200, c.post("/fhir/Medication/" + med + "/$stock-receive",
                               R"({"resourceType":"Parameters","parameter":[{"name":"lot","valueString":")" + lot +
                                   R"("},{"name":"expiry","valueDate":")" + expiry + R"("},{"name":"quantity","valueInteger":)" +
                                   std::to_string(qty) + R"(},{"name":"reorderLevel","valueInteger":)" + std::to_string(reorder) + "}]}"));
    };
    const std::string low = medication(), plenty = medication();
    const std::string soon = dateFromToday(10), late = dateFromToday(400);
    receive(low, "L1", soon, 5, 20);       // 5 usable < 20, and expiring in 10 days
    receive(plenty, "P1", late, 100, 10);  // fine on both counts
    const auto [lowStock, expiring] = pharmacyLists(c, "start=2026-01-01&end=2026-01-02&expiring-within=30");
    auto has = [](const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); };
    CPPUNIT_ASSERT(has(lowStock, "Medication/" + low + "|5|20"));
    for (const std::string& row : lowStock) CPPUNIT_ASSERT(row.find(plenty) == std::string::npos);
    CPPUNIT_ASSERT(has(expiring, "Medication/" + low + "|L1|" + soon + "|5|false"));
    for (const std::string& row : expiring) CPPUNIT_ASSERT(row.find(plenty) == std::string::npos);
    const Stats s = stats(c, "2026-01-01", "2026-01-02");
    CPPUNIT_ASSERT_EQUAL(std::to_string(lowStock.size()), s.get("lowStockItems"));
    CPPUNIT_ASSERT_EQUAL(std::to_string(expiring.size()), s.get("expiringLots"));
    // A shorter horizon leaves the lot out; a bad one is refused.
    const auto [lowStock5, expiring5] = pharmacyLists(c, "start=2026-01-01&end=2026-01-02&expiring-within=5");
    for (const std::string& row : expiring5) CPPUNIT_ASSERT(row.find(low) == std::string::npos);
    CPPUNIT_ASSERT(has(lowStock5, "Medication/" + low + "|5|20"));
    assertOperationOutcome(c.get("/fhir/$hospital-stats?start=2026-01-01&end=2026-01-02&expiring-within=soon"), 400,
                           "bad expiring-within");
  }

  void testBadPeriods() {
    HttpClient c(*server_);
    assertOperationOutcome(c.get("/fhir/$hospital-stats?end=2026-12-31"), 400, "no start");
    assertOperationOutcome(c.get("/fhir/$hospital-stats?start=2026-01-01"), 400, "no end");
    assertOperationOutcome(c.get("/fhir/$hospital-stats?start=yesterday&end=2026-12-31"), 400, "bad start");
    assertOperationOutcome(c.get("/fhir/$hospital-stats?start=2026-12-31&end=2026-01-01"), 400, "end before start");
    assertStatus(405, c.post("/fhir/$hospital-stats?start=2026-01-01&end=2026-12-31", "{}"));
  }

 protected:
  virtual Backend backend() const = 0;
  static std::unique_ptr<HearthProcess> server_;
};
std::unique_ptr<HearthProcess> StatsTest::server_;

class StatsSqliteTest : public StatsTest {
  CPPUNIT_TEST_SUB_SUITE(StatsSqliteTest, StatsTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return sqliteBackend(); }
};
CPPUNIT_TEST_SUITE_REGISTRATION(StatsSqliteTest);

class StatsPostgresTest : public StatsTest {
  CPPUNIT_TEST_SUB_SUITE(StatsPostgresTest, StatsTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return *postgresBackend(); }
};

namespace {
struct RegisterPostgresSuite {
  std::optional<CppUnit::AutoRegisterSuite<StatsPostgresTest>> reg;
  RegisterPostgresSuite() {
    if (postgresBackend())
      reg.emplace();
    else
      std::cerr << "[note] HEARTH_TEST_PG_URL not set: PostgreSQL stats suite not run\n";
  }
} registerPostgresSuite;
}  // namespace
