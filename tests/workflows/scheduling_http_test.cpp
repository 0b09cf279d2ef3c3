// Scheduling as reception uses it: generate a week of slots from clinic hours, ask what is free,
// book a slot (it turns busy), never twice (also with 100 clients at once), cancel (it is free
// again), walk-ins without a slot. SQLite and PostgreSQL, over HTTP.
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

// Mon 2027-04-05 .. Fri 2027-04-09, 08:00-12:00 local (+02:00) with a 10:00-10:30 break, 30-minute
// slots: 08:00 08:30 09:00 09:30 10:30 11:00 11:30 = 7 a day, 35 in the week.
const std::string kWeek = R"({"resourceType":"Parameters","parameter":[
  {"name":"start","valueDate":"2027-04-05"},{"name":"end","valueDate":"2027-04-11"},
  {"name":"daysOfWeek","valueString":"mon-fri"},{"name":"from","valueString":"08:00"},{"name":"to","valueString":"12:00"},
  {"name":"break","valueString":"10:00-10:30"},{"name":"slotMinutes","valueInteger":30},{"name":"utcOffset","valueString":"+02:00"}]})";

int64_t intParam(const rapidjson::Document& params, const std::string& name) {
  for (const auto& p : params["parameter"].GetArray())
    if (name == p["name"].GetString()) return p["valueInteger"].GetInt64();
  return -1;
}

std::string bookBody(const std::string& slot, const std::string& practitioner, const std::string& patient,
                     const std::string& startEnd = {}) {
  std::string a = R"({"resourceType":"Appointment")";
  if (!slot.empty()) a += R"(,"slot":[{"reference":"Slot/)" + slot + R"("}])";
  a += startEnd;
  a += R"(,"participant":[{"actor":{"reference":"Practitioner/)" + practitioner +
       R"("},"status":"accepted"},{"actor":{"reference":"Patient/)" + patient + R"("},"status":"accepted"}]})";
  return a;
}

}  // namespace

class SchedulingTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(SchedulingTest);
  CPPUNIT_TEST(testWeekOfSlotsBookCancel);
  CPPUNIT_TEST(testHundredClientsOneSlot);
  CPPUNIT_TEST(testWalkIns);
  CPPUNIT_TEST(testBadRequests);
  CPPUNIT_TEST(testPlainAppointmentTakesAndFreesSlot);
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

  std::string schedule(HttpClient& c, const std::string& practitioner) {
    const HttpResponse r = c.post("/fhir/Schedule", R"({"resourceType":"Schedule","actor":[{"reference":"Practitioner/)" +
                                                        practitioner + R"("}]})");
    assertStatus(201, r);
    return r.json()["id"].GetString();
  }

  int64_t freeCount(HttpClient& c, const std::string& sched) {
    const HttpResponse r = c.get("/fhir/Slot?schedule=Schedule/" + sched + "&status=free&start=ge2027-04-05&_total=accurate&_count=0");
    assertStatus(200, r);
    return r.json()["total"].GetInt64();
  }

  std::string firstFreeSlot(HttpClient& c, const std::string& sched) {
    const HttpResponse r = c.get("/fhir/Slot?schedule=Schedule/" + sched + "&status=free&_sort=start&_count=1");
    assertStatus(200, r);
    return r.json()["entry"][0]["resource"]["id"].GetString();
  }

  void testWeekOfSlotsBookCancel() {
    HttpClient c(*server_);
    const std::string dr = uniqueId("dr"), pat = uniqueId("pat");
    const std::string sched = schedule(c, dr);
    HttpResponse r = c.post("/fhir/Schedule/" + sched + "/$generate-slots", kWeek);
    assertStatus(200, r);
    CPPUNIT_ASSERT_EQUAL(int64_t(35), intParam(r.json(), "created"));
    r = c.post("/fhir/Schedule/" + sched + "/$generate-slots", kWeek);  // again: nothing new
    assertStatus(200, r);
    CPPUNIT_ASSERT_EQUAL(int64_t(0), intParam(r.json(), "created"));
    CPPUNIT_ASSERT_EQUAL(int64_t(35), intParam(r.json(), "skipped"));
    CPPUNIT_ASSERT_EQUAL(int64_t(35), freeCount(c, sched));
    // The first is Monday 08:00 local = 06:00Z.
    const std::string slot = firstFreeSlot(c, sched);
    const HttpResponse first = c.get("/fhir/Slot/" + slot);
    CPPUNIT_ASSERT_EQUAL(std::string("2027-04-05T06:00:00Z"), std::string(first.json()["start"].GetString()));

    const HttpResponse booked = c.post("/fhir/Appointment/$book", bookBody(slot, dr, pat));
    assertStatus(201, booked);
    const std::string appt = booked.json()["id"].GetString();
    CPPUNIT_ASSERT_EQUAL(std::string("booked"), std::string(booked.json()["status"].GetString()));
    CPPUNIT_ASSERT_EQUAL(std::string("busy"), std::string(c.get("/fhir/Slot/" + slot).json()["status"].GetString()));
    CPPUNIT_ASSERT_EQUAL(int64_t(34), freeCount(c, sched));
    // The same slot again: 409, nothing stored.
    assertOperationOutcome(c.post("/fhir/Appointment/$book", bookBody(slot, uniqueId("dr"), uniqueId("pat"))), 409, "slot taken");
    const HttpResponse forSlot = c.get("/fhir/Appointment?slot=Slot/" + slot + "&_total=accurate&_count=0");
    CPPUNIT_ASSERT_EQUAL(int64_t(1), forSlot.json()["total"].GetInt64());

    // Cancel: the appointment is cancelled with the reason, the slot free again, and bookable.
    r = c.post("/fhir/Appointment/" + appt + "/$cancel",
               R"({"resourceType":"Parameters","parameter":[{"name":"reason","valueString":"patient called"}]})");
    assertStatus(200, r);
    CPPUNIT_ASSERT_EQUAL(std::string("cancelled"), std::string(r.json()["status"].GetString()));
    CPPUNIT_ASSERT_EQUAL(std::string("patient called"), std::string(r.json()["cancelationReason"]["text"].GetString()));
    CPPUNIT_ASSERT_EQUAL(std::string("free"), std::string(c.get("/fhir/Slot/" + slot).json()["status"].GetString()));
    CPPUNIT_ASSERT_EQUAL(int64_t(35), freeCount(c, sched));
    const HttpResponse again = c.post("/fhir/Appointment/$book", bookBody(slot, dr, uniqueId("pat")));
    assertStatus(201, again);
    // No-show also frees the slot.
    r = c.post("/fhir/Appointment/" + std::string(again.json()["id"].GetString()) + "/$cancel",
               R"({"resourceType":"Parameters","parameter":[{"name":"status","valueCode":"noshow"}]})");
    assertStatus(200, r);
    CPPUNIT_ASSERT_EQUAL(std::string("noshow"), std::string(r.json()["status"].GetString()));
    CPPUNIT_ASSERT_EQUAL(int64_t(35), freeCount(c, sched));
  }

  std::string slotStatus(HttpClient& c, const std::string& slot) {
    const HttpResponse r = c.get("/fhir/Slot/" + slot);
    assertStatus(200, r);
    return r.json()["status"].GetString();
  }

  // Appointments written with the plain REST interactions (POST, PUT, DELETE, transaction
  // entries), not $book/$cancel, keep their Slots' status in step, in the same transaction.
  void testPlainAppointmentTakesAndFreesSlot() {
    HttpClient c(*server_);
    const std::string dr = uniqueId("dr");
    const std::string sched = schedule(c, dr);
    assertStatus(200, c.post("/fhir/Schedule/" + sched + "/$generate-slots", kWeek));
    const std::string slot = firstFreeSlot(c, sched);
    auto appointment = [&](const std::string& status, const std::string& slotId, const std::string& id = {}) {
      std::string a = R"({"resourceType":"Appointment",)";
      if (!id.empty()) a += R"("id":")" + id + R"(",)";
      return a + R"("status":")" + status + R"(")" + bookBody(slotId, dr, uniqueId("pat")).substr(29);
    };
    const HttpResponse made = c.post("/fhir/Appointment", appointment("booked", slot));
    assertStatus(201, made);
    const std::string appt = made.json()["id"].GetString();
    CPPUNIT_ASSERT_EQUAL(std::string("busy"), slotStatus(c, slot));
    CPPUNIT_ASSERT_EQUAL(int64_t(34), freeCount(c, sched));
    // A second Appointment on the slot: 409, nothing stored, the slot still busy.
    assertOperationOutcome(c.post("/fhir/Appointment", appointment("booked", slot)), 409, "second appointment on a slot");
    CPPUNIT_ASSERT_EQUAL(int64_t(1), c.get("/fhir/Appointment?slot=Slot/" + slot + "&_total=accurate&_count=0").json()["total"].GetInt64());
    CPPUNIT_ASSERT_EQUAL(std::string("busy"), slotStatus(c, slot));
    // The holder moving on (arrived) keeps it; cancelling frees it; booking again takes it.
    assertStatus(200, c.put("/fhir/Appointment/" + appt, appointment("arrived", slot, appt)));
    CPPUNIT_ASSERT_EQUAL(std::string("busy"), slotStatus(c, slot));
    assertStatus(200, c.put("/fhir/Appointment/" + appt, appointment("cancelled", slot, appt)));
    CPPUNIT_ASSERT_EQUAL(std::string("free"), slotStatus(c, slot));
    CPPUNIT_ASSERT_EQUAL(int64_t(35), freeCount(c, sched));
    assertStatus(200, c.put("/fhir/Appointment/" + appt, appointment("booked", slot, appt)));
    CPPUNIT_ASSERT_EQUAL(std::string("busy"), slotStatus(c, slot));
    // No-show frees it; so does deleting a booked Appointment.
    assertStatus(200, c.put("/fhir/Appointment/" + appt, appointment("noshow", slot, appt)));
    CPPUNIT_ASSERT_EQUAL(std::string("free"), slotStatus(c, slot));
    assertStatus(200, c.put("/fhir/Appointment/" + appt, appointment("booked", slot, appt)));
    CPPUNIT_ASSERT_EQUAL(std::string("busy"), slotStatus(c, slot));
    assertStatusIn({200, 204}, c.del("/fhir/Appointment/" + appt));
    CPPUNIT_ASSERT_EQUAL(std::string("free"), slotStatus(c, slot));
    CPPUNIT_ASSERT_EQUAL(int64_t(35), freeCount(c, sched));

    // A transaction entry takes its slot too; a failing entry rolls the Slot change back.
    const HttpResponse tx = c.post("/fhir", R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":)" +
                                                appointment("booked", slot) +
                                                R"(,"request":{"method":"POST","url":"Appointment"}}]})");
    assertStatus(200, tx);
    CPPUNIT_ASSERT_EQUAL(std::string("busy"), slotStatus(c, slot));
    HttpResponse freeSlots = c.get("/fhir/Slot?schedule=Schedule/" + sched + "&status=free&_sort=start&_count=2");
    const std::string other = freeSlots.json()["entry"][0]["resource"]["id"].GetString();
    const HttpResponse failing = c.post(
        "/fhir", R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":)" + appointment("booked", other) +
                     R"(,"request":{"method":"POST","url":"Appointment"}},{"resource":)" + appointment("booked", slot) +
                     R"(,"request":{"method":"POST","url":"Appointment"}}]})");
    assertStatus(409, failing);
    CPPUNIT_ASSERT_EQUAL(std::string("free"), slotStatus(c, other));
    CPPUNIT_ASSERT_EQUAL(int64_t(34), freeCount(c, sched));
    CPPUNIT_ASSERT(c.get("/fhir/Slot?schedule=Schedule/" + sched + "&status=busy&start=ge2027-04-05").body.find(slot) !=
                   std::string::npos);

    // A slot blocked by the clinic cannot be booked.
    HttpResponse blocked = c.get("/fhir/Slot/" + other);
    std::string body = blocked.body;
    body.replace(body.find("\"free\""), 6, "\"busy-unavailable\"");
    assertStatus(200, c.put("/fhir/Slot/" + other, body));
    assertOperationOutcome(c.post("/fhir/Appointment", appointment("booked", other)), 409, "blocked slot");
    CPPUNIT_ASSERT_EQUAL(std::string("busy-unavailable"), slotStatus(c, other));
  }

  void testHundredClientsOneSlot() {
    HttpClient c(*server_);
    const std::string dr = uniqueId("dr");
    const std::string sched = schedule(c, dr);
    assertStatus(200, c.post("/fhir/Schedule/" + sched + "/$generate-slots", kWeek));
    const std::string slot = firstFreeSlot(c, sched);
    std::atomic<int> created{0}, conflict{0}, other{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> clients;
    for (int i = 0; i < 100; ++i) {
      clients.emplace_back([&, i] {
        HttpClient mine(*server_);
        const std::string body = bookBody(slot, dr, "p" + std::to_string(i) + uniqueId("x"));
        while (!go.load()) std::this_thread::yield();
        const HttpResponse r = mine.post("/fhir/Appointment/$book", body);
        if (r.status == 201) ++created;
        else if (r.status == 409) ++conflict;
        else {
          ++other;
          std::cerr << r.describe() << "\n";
        }
      });
    }
    go = true;
    for (auto& t : clients) t.join();
    CPPUNIT_ASSERT_EQUAL(1, created.load());
    CPPUNIT_ASSERT_EQUAL(99, conflict.load());
    CPPUNIT_ASSERT_EQUAL(0, other.load());
    CPPUNIT_ASSERT_EQUAL(int64_t(34), freeCount(c, sched));
  }

  void testWalkIns() {
    HttpClient c(*server_);
    const std::string dr = uniqueId("dr");
    const std::string times = R"(,"start":"2027-05-03T09:00:00Z","end":"2027-05-03T09:15:00Z")";
    const HttpResponse walkIn = c.post("/fhir/Appointment/$book", bookBody("", dr, uniqueId("pat"), times));
    assertStatus(201, walkIn);
    assertOperationOutcome(c.post("/fhir/Appointment/$book", bookBody("", dr, uniqueId("pat"), times)), 409, "overlapping walk-in");
  }

  void testBadRequests() {
    HttpClient c(*server_);
    const std::string sched = schedule(c, uniqueId("dr"));
    assertOperationOutcome(c.post("/fhir/Schedule/" + sched + "/$generate-slots",
                                  R"({"resourceType":"Parameters","parameter":[{"name":"start","valueDate":"2027-04-05"},{"name":"end","valueDate":"2027-04-06"}]})"),
                           400, "no hours");
    std::string badBreak = kWeek;
    badBreak.replace(badBreak.find("10:00-10:30"), 11, "13:00-14:00");
    assertOperationOutcome(c.post("/fhir/Schedule/" + sched + "/$generate-slots", badBreak), 400, "break outside hours");
    assertStatus(404, c.post("/fhir/Schedule/no-such-schedule/$generate-slots", kWeek));
    assertOperationOutcome(c.post("/fhir/Appointment/$book", R"({"resourceType":"Patient"})"), 400, "not an Appointment");
    assertOperationOutcome(c.post("/fhir/Appointment/$book", bookBody("no-such-slot", uniqueId("dr"), uniqueId("pat"))), 422,
                           "unknown slot");
    const HttpResponse appt = c.post("/fhir/Appointment/$book", bookBody("", uniqueId("dr"), uniqueId("pat")));
    assertStatus(201, appt);
    assertOperationOutcome(c.post("/fhir/Appointment/" + std::string(appt.json()["id"].GetString()) + "/$cancel",
                                  R"({"resourceType":"Parameters","parameter":[{"name":"status","valueCode":"fulfilled"}]})"),
                           400, "cancel to fulfilled");
    assertStatus(404, c.post("/fhir/Appointment/no-such-appointment/$cancel", ""));
  }

 protected:
  virtual Backend backend() const = 0;
  static std::unique_ptr<HearthProcess> server_;
};
std::unique_ptr<HearthProcess> SchedulingTest::server_;

class SchedulingSqliteTest : public SchedulingTest {
  CPPUNIT_TEST_SUB_SUITE(SchedulingSqliteTest, SchedulingTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return sqliteBackend(); }
};
CPPUNIT_TEST_SUITE_REGISTRATION(SchedulingSqliteTest);

class SchedulingPostgresTest : public SchedulingTest {
  CPPUNIT_TEST_SUB_SUITE(SchedulingPostgresTest, SchedulingTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return *postgresBackend(); }
};

namespace {
struct RegisterPostgresSuite {
  std::optional<CppUnit::AutoRegisterSuite<SchedulingPostgresTest>> reg;
  RegisterPostgresSuite() {
    if (postgresBackend())
      reg.emplace();
    else
      std::cerr << "[note] HEARTH_TEST_PG_URL not set: PostgreSQL scheduling suite not run\n";
  }
} registerPostgresSuite;
}  // namespace
