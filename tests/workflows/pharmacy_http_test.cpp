// Pharmacy stock as the pharmacist checks it: receipts add to lots, completed dispenses take the
// first-expiring usable lot, expired lots are never dispensed, stock never goes negative, and 50
// concurrent dispenses of a lot holding 30 leave exactly 30 dispensed and 0 on the shelf. SQLite and
// PostgreSQL, over HTTP.
#include <cppunit/extensions/HelperMacros.h>

#include <atomic>
#include <iostream>
#include <map>
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

std::string receipt(const std::string& lot, const std::string& expiry, const std::string& quantity,
                    const std::string& reorder = {}) {
  std::string p = R"({"resourceType":"Parameters","parameter":[{"name":"lot","valueString":")" + lot +
                  R"("},{"name":"expiry","valueDate":")" + expiry + R"("},{"name":"quantity","valueInteger":)" + quantity + "}";
  if (!reorder.empty()) p += R"(,{"name":"reorderLevel","valueInteger":)" + reorder + "}";
  return p + "]}";
}

std::string dispense(const std::string& medication, const std::string& quantity, const std::string& status = "completed") {
  return R"({"resourceType":"MedicationDispense","status":")" + status +
         R"(","medicationReference":{"reference":"Medication/)" + medication + R"("},"quantity":{"value":)" + quantity + "}}";
}

struct LotState {
  int64_t quantity = -1;
  bool expired = false, expiringSoon = false;
};
struct Stock {
  int64_t usable = -1, reorderLevel = -1;
  bool below = false;
  std::map<std::string, LotState> lots;
};

Stock stockOf(HttpClient& c, const std::string& medication, const std::string& query = {}) {
  const HttpResponse r = c.get("/fhir/Medication/" + medication + "/$stock" + query);
  assertStatus(200, r, "$stock");
  const rapidjson::Document d = r.json();
  Stock s;
  if (!d.HasMember("parameter")) return s;
  for (const auto& part : d["parameter"][0]["part"].GetArray()) {
    const std::string name = part["name"].GetString();
    if (name == "usable") s.usable = part["valueInteger"].GetInt64();
    if (name == "reorderLevel") s.reorderLevel = part["valueInteger"].GetInt64();
    if (name == "belowReorderLevel") s.below = part["valueBoolean"].GetBool();
    if (name == "lot") {
      std::string lot;
      LotState st;
      for (const auto& f : part["part"].GetArray()) {
        const std::string n = f["name"].GetString();
        if (n == "lot") lot = f["valueString"].GetString();
        if (n == "quantity") st.quantity = f["valueInteger"].GetInt64();
        if (n == "expired") st.expired = f["valueBoolean"].GetBool();
        if (n == "expiringSoon") st.expiringSoon = f["valueBoolean"].GetBool();
      }
      s.lots[lot] = st;
    }
  }
  return s;
}

}  // namespace

class PharmacyTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(PharmacyTest);
  CPPUNIT_TEST(testFiftyConcurrentDispensesOfThirty);
  CPPUNIT_TEST(testFefoExpiredAndReorder);
  CPPUNIT_TEST(testDispenseTakesStockOnce);
  CPPUNIT_TEST(testBadRequests);
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

  std::string medication(HttpClient& c) {
    const HttpResponse r = c.post("/fhir/Medication", R"({"resourceType":"Medication","code":{"text":"amoxicillin 500 mg"}})");
    assertStatus(201, r);
    return r.json()["id"].GetString();
  }

  void testFiftyConcurrentDispensesOfThirty() {
    HttpClient c(*server_);
    const std::string med = medication(c);
    assertStatus(200, c.post("/fhir/Medication/" + med + "/$stock-receive", receipt("L30", "2030-01-31", "30")));
    std::atomic<int> ok{0}, refused{0}, other{0};
    std::vector<std::thread> counter;
    for (int i = 0; i < 50; ++i) {
      counter.emplace_back([&] {
        HttpClient mine(*server_);
        const HttpResponse r = mine.post("/fhir/MedicationDispense", dispense(med, "1"));
        if (r.status == 201) ++ok;
        else if (r.status == 409) ++refused;
        else {
          ++other;
          std::cerr << r.describe() << "\n";
        }
      });
    }
    for (auto& t : counter) t.join();
    CPPUNIT_ASSERT_EQUAL(30, ok.load());
    CPPUNIT_ASSERT_EQUAL(20, refused.load());
    CPPUNIT_ASSERT_EQUAL(0, other.load());
    const Stock s = stockOf(c, med);
    CPPUNIT_ASSERT_EQUAL(int64_t(0), s.usable);
    CPPUNIT_ASSERT_EQUAL(int64_t(0), s.lots.at("L30").quantity);
    // Exactly the 30 accepted dispenses are stored.
    const HttpResponse stored = c.get("/fhir/MedicationDispense?medication=Medication/" + med + "&_total=accurate&_count=0");
    assertStatus(200, stored);
    CPPUNIT_ASSERT_EQUAL(int64_t(30), stored.json()["total"].GetInt64());
  }

  void testFefoExpiredAndReorder() {
    HttpClient c(*server_);
    const std::string med = medication(c);
    assertStatus(200, c.post("/fhir/Medication/" + med + "/$stock-receive", receipt("OLD", "2020-01-01", "100")));
    assertStatus(200, c.post("/fhir/Medication/" + med + "/$stock-receive", receipt("LATE", "2031-01-01", "10", "20")));
    assertStatus(200, c.post("/fhir/Medication/" + med + "/$stock-receive", receipt("EARLY", "2030-06-30", "5")));
    // 7 units: the 5 of EARLY, then 2 of LATE; the expired lot is never touched.
    assertStatus(201, c.post("/fhir/MedicationDispense", dispense(med, "7")));
    Stock s = stockOf(c, med);
    CPPUNIT_ASSERT_EQUAL(int64_t(0), s.lots.at("EARLY").quantity);
    CPPUNIT_ASSERT_EQUAL(int64_t(8), s.lots.at("LATE").quantity);
    CPPUNIT_ASSERT_EQUAL(int64_t(100), s.lots.at("OLD").quantity);
    CPPUNIT_ASSERT(s.lots.at("OLD").expired);
    CPPUNIT_ASSERT_EQUAL(int64_t(8), s.usable);
    CPPUNIT_ASSERT_EQUAL(int64_t(20), s.reorderLevel);
    CPPUNIT_ASSERT(s.below);
    // 9 units with 8 usable: refused, naming what is there; nothing taken, nothing stored.
    const HttpResponse shortStock = c.post("/fhir/MedicationDispense", dispense(med, "9"));
    const rapidjson::Document oo = assertOperationOutcome(shortStock, 409, "short stock");
    const std::string why = oo["issue"][0]["diagnostics"].GetString();
    CPPUNIT_ASSERT_MESSAGE(why, why.find("8 usable") != std::string::npos && why.find("100") != std::string::npos);
    CPPUNIT_ASSERT_EQUAL(int64_t(8), stockOf(c, med).usable);
    // Expiring soon: within 3650 days LATE is, within 1 day it is not.
    CPPUNIT_ASSERT(stockOf(c, med, "?expiring-within=3650").lots.at("LATE").expiringSoon);
    CPPUNIT_ASSERT(!stockOf(c, med, "?expiring-within=1").lots.at("LATE").expiringSoon);
    // The whole-pharmacy report lists it too.
    const HttpResponse all = c.get("/fhir/Medication/$stock");
    assertStatus(200, all);
    CPPUNIT_ASSERT(all.body.find("Medication/" + med) != std::string::npos);
  }

  void testDispenseTakesStockOnce() {
    HttpClient c(*server_);
    const std::string med = medication(c);
    assertStatus(200, c.post("/fhir/Medication/" + med + "/$stock-receive", receipt("ONE", "2030-01-01", "10")));
    const HttpResponse prepared = c.post("/fhir/MedicationDispense", dispense(med, "4", "in-progress"));
    assertStatus(201, prepared);
    CPPUNIT_ASSERT_EQUAL(int64_t(10), stockOf(c, med).usable);  // not handed over yet
    const std::string id = prepared.json()["id"].GetString();
    assertStatus(200, c.put("/fhir/MedicationDispense/" + id, withId(dispense(med, "4"), id)));
    CPPUNIT_ASSERT_EQUAL(int64_t(6), stockOf(c, med).usable);
    std::string corrected = dispense(med, "4");
    corrected.insert(corrected.size() - 1, R"(,"note":[{"text":"patient counselled"}])");
    assertStatus(200, c.put("/fhir/MedicationDispense/" + id, withId(corrected, id)));
    CPPUNIT_ASSERT_EQUAL(int64_t(6), stockOf(c, med).usable);  // a later version takes nothing more
  }

  void testBadRequests() {
    HttpClient c(*server_);
    const std::string med = medication(c);
    const std::string url = "/fhir/Medication/" + med + "/$stock-receive";
    assertOperationOutcome(c.post(url, R"({"resourceType":"Parameters","parameter":[{"name":"expiry","valueDate":"2030-01-01"},{"name":"quantity","valueInteger":1}]})"),
                           400, "no lot");
    assertOperationOutcome(c.post(url, receipt("X", "2030-02-30", "1")), 400, "impossible expiry");
    assertOperationOutcome(c.post(url, receipt("X", "2030-01-01", "0")), 400, "zero quantity");
    assertOperationOutcome(c.post(url, receipt("X", "2030-01-01", "-5")), 400, "negative quantity");
    assertStatus(200, c.post(url, receipt("X", "2030-01-01", "3")));
    assertOperationOutcome(c.post(url, receipt("X", "2031-01-01", "3")), 422, "same lot, other expiry");
    assertStatus(404, c.post("/fhir/Medication/no-such-medication/$stock-receive", receipt("X", "2030-01-01", "1")));
    assertOperationOutcome(c.post("/fhir/MedicationDispense", dispense(med, "1.5")), 422, "fractional units");
    CPPUNIT_ASSERT_EQUAL(int64_t(3), stockOf(c, med).usable);
    assertOperationOutcome(c.get("/fhir/Medication/" + med + "/$stock?expiring-within=soon"), 400, "bad expiring-within");
  }

 protected:
  virtual Backend backend() const = 0;
  static std::unique_ptr<HearthProcess> server_;
};
std::unique_ptr<HearthProcess> PharmacyTest::server_;

class PharmacySqliteTest : public PharmacyTest {
  CPPUNIT_TEST_SUB_SUITE(PharmacySqliteTest, PharmacyTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return sqliteBackend(); }
};
CPPUNIT_TEST_SUITE_REGISTRATION(PharmacySqliteTest);

class PharmacyPostgresTest : public PharmacyTest {
  CPPUNIT_TEST_SUB_SUITE(PharmacyPostgresTest, PharmacyTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return *postgresBackend(); }
};

namespace {
struct RegisterPostgresSuite {
  std::optional<CppUnit::AutoRegisterSuite<PharmacyPostgresTest>> reg;
  RegisterPostgresSuite() {
    if (postgresBackend())
      reg.emplace();
    else
      std::cerr << "[note] HEARTH_TEST_PG_URL not set: PostgreSQL pharmacy suite not run\n";
  }
} registerPostgresSuite;
}  // namespace
