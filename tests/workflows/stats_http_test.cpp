// $hospital-stats as an administrator reads it: for one day, the encounters, admissions,
// appointments per status, booking lead time, revenue invoiced and collected (to the cent, per
// currency) and dispenses, from data this test writes on a day nothing else uses; registrations
// as the difference before and after. SQLite and PostgreSQL, over HTTP.
#include <cppunit/extensions/HelperMacros.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>

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
    if (p.HasMember("part")) {
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

}  // namespace

class StatsTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(StatsTest);
  CPPUNIT_TEST(testFiguresOfOneDay);
  CPPUNIT_TEST(testBadPeriods);
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
