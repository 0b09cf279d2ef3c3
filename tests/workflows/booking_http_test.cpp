// No double booking, ever (issue 6 item 2), checked the way reception would: through the REST API
// of a real hearth, on SQLite and PostgreSQL. 100 clients booking the same practitioner at once get
// exactly one 201; overlapping or slot-sharing bookings get 409 with an OperationOutcome that names
// the conflict; back-to-back, cancelled, proposed and other practitioners' bookings do not block.
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

std::string appointment(const std::string& practitioner, const std::string& start, const std::string& end,
                        const std::string& status = "booked", const std::string& extra = {}) {
  std::string a = R"({"resourceType":"Appointment","status":")" + status + R"(")";
  if (!start.empty()) a += R"(,"start":")" + start + R"(")";
  if (!end.empty()) a += R"(,"end":")" + end + R"(")";
  a += extra;
  a += R"(,"participant":[{"actor":{"reference":"Practitioner/)" + practitioner +
       R"("},"status":"accepted"},{"actor":{"display":"walk-in patient"},"status":"accepted"}]})";
  return a;
}

std::string diagnostics(const HttpResponse& r) {
  const rapidjson::Document oo = r.json();
  if (!oo.IsObject() || !oo.HasMember("issue") || !oo["issue"].IsArray() || oo["issue"].Empty()) return {};
  const auto& issue = oo["issue"][0];
  return issue.HasMember("diagnostics") && issue["diagnostics"].IsString() ? issue["diagnostics"].GetString() : "";
}

int64_t countOf(HttpClient& c, const std::string& query) {
  const HttpResponse r = c.get("/fhir/Appointment?" + query + "&_total=accurate&_count=0");
  assertStatus(200, r, query);
  const rapidjson::Document b = r.json();
  return b.HasMember("total") ? b["total"].GetInt64() : -1;
}

}  // namespace

class BookingTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(BookingTest);
  CPPUNIT_TEST(testHundredParallelBookingsOneWins);
  CPPUNIT_TEST(testOverlapRules);
  CPPUNIT_TEST(testRescheduleAndUpdates);
  CPPUNIT_TEST(testSlotHeldOnce);
  CPPUNIT_TEST(testTransactionWithClashingEntriesStoresNothing);
  CPPUNIT_TEST_SUITE_END_ABSTRACT();

 public:
  void setUp() override {
    // One server at a time, on this fixture's backend.
    if (server_ && server_->options().db != backend().db) server_.reset();
    if (!server_ || !server_->running()) {
      ServerOptions opt;
      opt.db = backend().db;
      server_ = std::make_unique<HearthProcess>(opt);
      server_->start();
    }
  }

  void testHundredParallelBookingsOneWins() {
    const std::string p = uniqueId("dr");
    constexpr int kClients = 100;
    std::atomic<int> created{0}, conflicts{0}, other{0}, namedConflict{0};
    std::vector<std::thread> threads;
    std::atomic<bool> go{false};
    for (int i = 0; i < kClients; ++i) {
      threads.emplace_back([&] {
        HttpClient c(*server_);
        while (!go.load()) std::this_thread::yield();
        const HttpResponse r =
            c.post("/fhir/Appointment", appointment(p, "2027-03-01T10:00:00Z", "2027-03-01T10:30:00Z"));
        if (r.status == 201) {
          ++created;
        } else if (r.status == 409) {
          ++conflicts;
          if (diagnostics(r).find("Practitioner/" + p) != std::string::npos) ++namedConflict;
        } else {
          ++other;
          std::cerr << "unexpected: " << r.describe() << "\n";
        }
      });
    }
    go = true;
    for (auto& t : threads) t.join();
    CPPUNIT_ASSERT_EQUAL(1, created.load());
    CPPUNIT_ASSERT_EQUAL(kClients - 1, conflicts.load());
    CPPUNIT_ASSERT_EQUAL(kClients - 1, namedConflict.load());
    CPPUNIT_ASSERT_EQUAL(0, other.load());
    HttpClient c(*server_);
    CPPUNIT_ASSERT_EQUAL(int64_t(1), countOf(c, "actor=Practitioner/" + p));
  }

  void testOverlapRules() {
    HttpClient c(*server_);
    const std::string p = uniqueId("dr"), q = uniqueId("dr");
    assertStatus(201, c.post("/fhir/Appointment", appointment(p, "2027-03-02T10:00:00Z", "2027-03-02T10:30:00Z")));
    // Back to back: 10:30 to 11:00 does not overlap 10:00 to 10:30.
    assertStatus(201, c.post("/fhir/Appointment", appointment(p, "2027-03-02T10:30:00Z", "2027-03-02T11:00:00Z")));
    // Overlapping: refused, with an OperationOutcome naming the practitioner.
    const HttpResponse clash =
        c.post("/fhir/Appointment", appointment(p, "2027-03-02T10:15:00Z", "2027-03-02T10:45:00Z"));
    const rapidjson::Document oo = assertOperationOutcome(clash, 409, "overlap");
    CPPUNIT_ASSERT_EQUAL(std::string("conflict"), std::string(oo["issue"][0]["code"].GetString()));
    CPPUNIT_ASSERT(diagnostics(clash).find("Practitioner/" + p) != std::string::npos);
    // Same time zone offset written differently is the same instant: 11:15+01:00 = 10:15Z.
    assertOperationOutcome(c.post("/fhir/Appointment", appointment(p, "2027-03-02T11:15:00+01:00",
                                                                   "2027-03-02T11:20:00+01:00")),
                           409, "offset");
    // minutesDuration instead of end.
    assertOperationOutcome(c.post("/fhir/Appointment", appointment(p, "2027-03-02T09:50:00Z", "", "booked",
                                                                   R"(,"minutesDuration":15)")),
                           409, "minutesDuration");
    // Another practitioner, a proposal and a waiting-list entry do not clash.
    assertStatus(201, c.post("/fhir/Appointment", appointment(q, "2027-03-02T10:15:00Z", "2027-03-02T10:45:00Z")));
    assertStatus(201, c.post("/fhir/Appointment",
                             appointment(p, "2027-03-02T10:15:00Z", "2027-03-02T10:45:00Z", "proposed")));
    assertStatus(201, c.post("/fhir/Appointment",
                             appointment(p, "2027-03-02T10:15:00Z", "2027-03-02T10:45:00Z", "waitlist")));
    // An implausibly long booking is refused as content (422), not stored.
    assertOperationOutcome(c.post("/fhir/Appointment",
                                  appointment(q, "2027-03-05T10:00:00Z", "2027-03-07T10:00:00Z")),
                           422, "two days");
    assertOperationOutcome(c.post("/fhir/Appointment",
                                  appointment(q, "2027-03-05T10:00:00Z", "2027-03-05T09:00:00Z")),
                           422, "ends before it starts");
    CPPUNIT_ASSERT_EQUAL(int64_t(4), countOf(c, "actor=Practitioner/" + p));
    CPPUNIT_ASSERT_EQUAL(int64_t(1), countOf(c, "actor=Practitioner/" + q));
  }

  void testRescheduleAndUpdates() {
    HttpClient c(*server_);
    const std::string p = uniqueId("dr");
    const HttpResponse first =
        c.post("/fhir/Appointment", appointment(p, "2027-03-03T09:00:00Z", "2027-03-03T09:30:00Z"));
    assertStatus(201, first);
    const std::string firstId = first.json()["id"].GetString();
    const HttpResponse second =
        c.post("/fhir/Appointment", appointment(p, "2027-03-03T10:00:00Z", "2027-03-03T10:30:00Z"));
    assertStatus(201, second);
    const std::string secondId = second.json()["id"].GetString();
    // Updating an appointment without moving it does not clash with itself.
    assertStatus(200, c.put("/fhir/Appointment/" + firstId,
                            withId(appointment(p, "2027-03-03T09:00:00Z", "2027-03-03T09:30:00Z", "arrived"), firstId)));
    // Moving the second onto the first: 409, and the stored second is unchanged.
    assertOperationOutcome(
        c.put("/fhir/Appointment/" + secondId,
              withId(appointment(p, "2027-03-03T09:15:00Z", "2027-03-03T09:45:00Z"), secondId)),
        409, "reschedule onto a booked time");
    const HttpResponse stored = c.get("/fhir/Appointment/" + secondId);
    assertStatus(200, stored);
    CPPUNIT_ASSERT_EQUAL(std::string("2027-03-03T10:00:00Z"), std::string(stored.json()["start"].GetString()));
    CPPUNIT_ASSERT_EQUAL(std::string("1"), std::string(stored.json()["meta"]["versionId"].GetString()));
    // Cancelling the first frees its time; a no-show frees it too.
    assertStatus(200, c.put("/fhir/Appointment/" + firstId,
                            withId(appointment(p, "2027-03-03T09:00:00Z", "2027-03-03T09:30:00Z", "cancelled"), firstId)));
    assertStatus(200, c.put("/fhir/Appointment/" + secondId,
                            withId(appointment(p, "2027-03-03T09:15:00Z", "2027-03-03T09:45:00Z"), secondId)));
    // Deleting frees the time as well.
    assertStatus(200, c.request("DELETE", "/fhir/Appointment/" + secondId));
    assertStatus(201, c.post("/fhir/Appointment", appointment(p, "2027-03-03T09:00:00Z", "2027-03-03T09:30:00Z")));
  }

  void testSlotHeldOnce() {
    HttpClient c(*server_);
    const std::string slot = uniqueId("slot");
    const std::string withSlot = R"(,"slot":[{"reference":"Slot/)" + slot + R"("}])";
    // Two practitioners, same slot (no times given): the slot decides.
    assertStatus(201, c.post("/fhir/Appointment", appointment(uniqueId("dr"), "", "", "booked", withSlot)));
    const HttpResponse again = c.post("/fhir/Appointment", appointment(uniqueId("dr"), "", "", "booked", withSlot));
    assertOperationOutcome(again, 409, "slot taken");
    CPPUNIT_ASSERT(diagnostics(again).find("Slot/" + slot) != std::string::npos);
    CPPUNIT_ASSERT_EQUAL(int64_t(1), countOf(c, "slot=Slot/" + slot));
  }

  // A transaction booking the same practitioner twice at overlapping times: all or nothing.
  void testTransactionWithClashingEntriesStoresNothing() {
    HttpClient c(*server_);
    const std::string p = uniqueId("dr");
    auto entry = [&](const std::string& start, const std::string& end) {
      return R"({"resource":)" + appointment(p, start, end) + R"(,"request":{"method":"POST","url":"Appointment"}})";
    };
    const std::string bundle = R"({"resourceType":"Bundle","type":"transaction","entry":[)" +
                               entry("2027-03-04T08:00:00Z", "2027-03-04T09:00:00Z") + "," +
                               entry("2027-03-04T08:30:00Z", "2027-03-04T08:45:00Z") + "]}";
    const HttpResponse r = c.post("/fhir", bundle);
    assertOperationOutcome(r, 409, "transaction with clashing bookings");
    CPPUNIT_ASSERT_EQUAL(int64_t(0), countOf(c, "actor=Practitioner/" + p));
  }

 protected:
  virtual Backend backend() const = 0;
  static std::unique_ptr<HearthProcess> server_;
};
std::unique_ptr<HearthProcess> BookingTest::server_;

class BookingSqliteTest : public BookingTest {
  CPPUNIT_TEST_SUB_SUITE(BookingSqliteTest, BookingTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return sqliteBackend(); }
};
CPPUNIT_TEST_SUITE_REGISTRATION(BookingSqliteTest);

class BookingPostgresTest : public BookingTest {
  CPPUNIT_TEST_SUB_SUITE(BookingPostgresTest, BookingTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return *postgresBackend(); }
};

namespace {
struct RegisterPostgresSuite {
  std::optional<CppUnit::AutoRegisterSuite<BookingPostgresTest>> reg;
  RegisterPostgresSuite() {
    if (postgresBackend())
      reg.emplace();
    else
      std::cerr << "[note] HEARTH_TEST_PG_URL not set: PostgreSQL booking suite not run\n";
  }
} registerPostgresSuite;
}  // namespace
