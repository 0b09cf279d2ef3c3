// HL7 v2 outbound end to end: a real hearth with routes pointing at an MLLP partner in this test
// process (MllpListener). FHIR writes -> ORM^O01 / DFT^P03 on the wire -> ACK -> outbox status,
// retry while the partner is down, AE recorded as failed, $retry, rolled-back transactions send
// nothing, and pending rows survive a restart. Runs on SQLite, and on PostgreSQL when
// HEARTH_TEST_PG_URL is set (route names are unique per test, so servers sharing the database
// never take each other's rows).
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <cppunit/extensions/HelperMacros.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

#include "hearth/hl7/ack.h"
#include "hearth/hl7/message.h"
#include "hearth_process.h"
#include "http_client.h"
#include "http_test_support.h"
#include "mllp.h"

using namespace hearth;
using namespace hearth::test;

namespace {

// The receiving system: records every message, answers AA, or AE for order codes "REJECTME"
// while `reject` is set.
struct Partner {
  std::mutex mutex;
  std::vector<std::string> received;
  std::atomic<bool> reject{true};
  std::unique_ptr<server::MllpListener> listener;
  uint16_t port = 0;

  static uint16_t freePort() {
    Poco::Net::ServerSocket s(Poco::Net::SocketAddress("127.0.0.1", 0));
    return s.address().port();
  }
  void start(uint16_t p) {
    Poco::Net::ServerSocket s;
    s.bind(Poco::Net::SocketAddress("127.0.0.1", p), true);
    s.listen();
    listener = std::make_unique<server::MllpListener>(
        s, server::MllpListenerOptions{}, [this](std::string_view msg, const std::string&) {
          hl7::Message m = hl7::Message::parse(msg);
          {
            std::lock_guard<std::mutex> lock(mutex);
            received.emplace_back(msg);
          }
          if (reject && m.get("OBR-4.1") == "REJECTME") {
            hl7::AckError e;
            e.hl7Code = 103;
            e.segmentId = "OBR";
            e.field = 4;
            e.userMessage = "Unknown test code";
            return std::vector<std::string>{hl7::buildAck(m, hl7::AckCode::AE, {e}).encode()};
          }
          return std::vector<std::string>{hl7::buildAck(m, hl7::AckCode::AA).encode()};
        });
    listener->start();
    port = listener->port();
  }
  void stop() {
    if (listener) listener->stop(2);
    listener.reset();
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mutex);
    return received.size();
  }
  // The received messages that contain `needle`.
  std::vector<hl7::Message> with(const std::string& needle) {
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<hl7::Message> out;
    for (const auto& r : received)
      if (r.find(needle) != std::string::npos) out.push_back(hl7::Message::parse(r));
    return out;
  }
  ~Partner() { stop(); }
};

bool waitFor(const std::function<bool()>& pred, int ms = 15000) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

std::vector<Backend> backends() {
  std::vector<Backend> out{sqliteBackend()};
  if (auto pg = postgresBackend()) out.push_back(*pg);
  return out;
}

struct Server {
  std::string lab = "lab" + randomToken(6);
  std::string billing = "bill" + randomToken(6);
  std::unique_ptr<HearthProcess> proc;
  std::unique_ptr<HttpClient> http;

  Server(const Backend& b, uint16_t partnerPort, std::vector<std::string> extraArgs = {}) {
    ServerOptions o;
    o.args = std::move(extraArgs);
    o.db = b.db;
    const std::string port = std::to_string(partnerPort);
    auto set = [&](const std::string& kv) { o.args.insert(o.args.end(), {"--set", kv}); };
    set("hl7.out.sending-facility=NORTHVALE");
    set("hl7.out.poll-ms=50");
    for (const auto& [route, message] : {std::pair{lab, "ORM^O01"}, std::pair{billing, "DFT^P03"}}) {
      const std::string p = "hl7.out." + route + ".";
      set(p + "host=127.0.0.1");
      set(p + "port=" + port);
      set(p + "message=" + message);
      set(p + "ack-timeout-ms=3000");
      set(p + "connect-timeout-ms=500");
      set(p + "retry-initial-ms=200");
      set(p + "retry-max-ms=400");
      set(p + "max-attempts=1000");
    }
    set("hl7.out." + lab + ".category=laboratory");
    set("hl7.out." + lab + ".receiving-application=LIS");
    proc = std::make_unique<HearthProcess>(o);
    proc->start();
    http = std::make_unique<HttpClient>(*proc);
  }
  void reconnect() { http = std::make_unique<HttpClient>(*proc); }

  std::string create(const std::string& type, const std::string& body) {
    HttpResponse r = http->post("/fhir/" + type, body, {{"Content-Type", "application/fhir+json"}});
    assertStatus(201, r, "create " + type);
    return jstr(r.json(), "/id");
  }
  // The outbox row about type/id (any version), as JSON text; "" when none.
  rapidjson::Document rows(const std::string& status = {}) {
    HttpResponse r = http->get("/admin/hl7/outbox?_count=1000" + (status.empty() ? "" : "&status=" + status));
    assertStatus(200, r, "outbox list");
    return parseJson(r.body);
  }
  std::optional<std::pair<std::string, std::string>> row(const std::string& source, std::string* error = nullptr,
                                                          long* attempts = nullptr, std::string* ack = nullptr) {
    rapidjson::Document d = rows();
    for (const auto& e : d["entries"].GetArray()) {
      if (std::string(e["source"].GetString()).rfind(source + "/", 0) != 0) continue;
      if (error) *error = e["lastError"].GetString();
      if (attempts) *attempts = e["attempts"].GetInt64();
      if (ack) *ack = e["ackCode"].GetString();
      return std::make_pair(std::string(e["id"].GetString()), std::string(e["status"].GetString()));
    }
    return std::nullopt;
  }
  std::string statusOf(const std::string& source) {
    auto r = row(source);
    return r ? r->second : std::string();
  }
};

std::string patientJson(const std::string& mrn) {
  return R"({"resourceType":"Patient","identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]},"system":"urn:oid:2.16.840.1.113883.3.9001","value":")" +
         mrn + R"("}],"name":[{"family":"Okafor","given":["Ada"]}],"gender":"female","birthDate":"1975-07-14"})";
}

std::string labOrderJson(const std::string& patientId, const std::string& placer, const std::string& code,
                         const std::string& category = "laboratory") {
  return R"({"resourceType":"ServiceRequest","status":"active","intent":"order",
    "identifier":[{"system":"urn:oid:2.16.840.1.113883.3.9001.2","value":")" + placer + R"("}],
    "category":[{"text":")" + category + R"("}],
    "code":{"coding":[{"system":"http://loinc.org","code":")" + code + R"(","display":"Test"}]},
    "subject":{"reference":"Patient/)" + patientId + R"("}})";
}

}  // namespace

class OutboxHttpTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(OutboxHttpTest);
  CPPUNIT_TEST(testLabOrderDeliveredAndAcknowledged);
  CPPUNIT_TEST(testPartnerDownThenUp);
  CPPUNIT_TEST(testApplicationErrorIsRecordedThenRetried);
  CPPUNIT_TEST(testFailedTransactionEnqueuesNothing);
  CPPUNIT_TEST(testChargeItemAndInvoiceGoOutAsDft);
  CPPUNIT_TEST(testPendingRowDeliveredAfterRestart);
  CPPUNIT_TEST(testAdminRoutesNeedWriteAccess);
  CPPUNIT_TEST(testOrderBeforeItsPatientInABundleAndUnmappableOrders);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testLabOrderDeliveredAndAcknowledged() {
    for (const Backend& b : backends()) {
      Partner partner;
      partner.start(0);
      Server s(b, partner.port);
      const std::string mrn = uniqueId("mrn");
      const std::string pid = s.create("Patient", patientJson(mrn));
      const std::string placer = uniqueId("ord");
      const std::string sr = s.create("ServiceRequest", labOrderJson(pid, placer, "24323-8"));
      const std::string imaging = s.create("ServiceRequest", labOrderJson(pid, uniqueId("img"), "36643-5", "imaging"));
      CPPUNIT_ASSERT_MESSAGE(b.name, waitFor([&] { return s.statusOf("ServiceRequest/" + sr) == "sent"; }));
      auto msgs = partner.with(placer);
      CPPUNIT_ASSERT_EQUAL(size_t(1), msgs.size());
      const hl7::Message& m = msgs[0];
      CPPUNIT_ASSERT_EQUAL(std::string("ORM"), m.messageType());
      CPPUNIT_ASSERT_EQUAL(std::string("O01"), m.triggerEvent());
      CPPUNIT_ASSERT_EQUAL(std::string("LIS"), m.get("MSH-5"));
      CPPUNIT_ASSERT_EQUAL(std::string("NORTHVALE"), m.get("MSH-4"));
      CPPUNIT_ASSERT_EQUAL(mrn, m.get("PID-3.1"));
      CPPUNIT_ASSERT_EQUAL(std::string("2.16.840.1.113883.3.9001"), m.get("PID-3.4.2"));
      CPPUNIT_ASSERT_EQUAL(std::string("Okafor"), m.get("PID-5.1"));
      CPPUNIT_ASSERT_EQUAL(std::string("NW"), m.get("ORC-1"));
      CPPUNIT_ASSERT_EQUAL(placer, m.get("OBR-2.1"));
      CPPUNIT_ASSERT_EQUAL(std::string("24323-8"), m.get("OBR-4.1"));
      CPPUNIT_ASSERT_EQUAL(std::string("LN"), m.get("OBR-4.3"));
      // The row: sent, AA, and the same control id as on the wire; the detail has the payload.
      std::string ack;
      auto row = s.row("ServiceRequest/" + sr, nullptr, nullptr, &ack);
      CPPUNIT_ASSERT_EQUAL(std::string("AA"), ack);
      HttpResponse detail = s.http->get("/admin/hl7/outbox/" + row->first);
      assertStatus(200, detail);
      CPPUNIT_ASSERT_EQUAL(m.controlId(), jstr(detail.json(), "/controlId"));
      CPPUNIT_ASSERT(jstr(detail.json(), "/payload").find(placer) != std::string::npos);
      // The imaging order matches no route (category filter): nothing queued.
      CPPUNIT_ASSERT(!s.row("ServiceRequest/" + imaging));
      // A change of the active order -> XO; then status revoked -> CA, same placer number.
      std::string body = labOrderJson(pid, placer, "24323-8");
      body.insert(body.find('{') + 1, "\"id\":\"" + sr + "\",\"priority\":\"stat\",");
      assertStatus(200, s.http->put("/fhir/ServiceRequest/" + sr, body, {{"Content-Type", "application/fhir+json"}}));
      CPPUNIT_ASSERT(waitFor([&] { return partner.with(placer).size() == 2; }));
      CPPUNIT_ASSERT_EQUAL(std::string("XO"), partner.with(placer)[1].get("ORC-1"));
      CPPUNIT_ASSERT_EQUAL(std::string("S"), partner.with(placer)[1].get("OBR-27.6"));
      body.replace(body.find("\"active\""), 8, "\"revoked\"");
      assertStatus(200, s.http->put("/fhir/ServiceRequest/" + sr, body, {{"Content-Type", "application/fhir+json"}}));
      CPPUNIT_ASSERT(waitFor([&] { return partner.with(placer).size() == 3; }));
      CPPUNIT_ASSERT_EQUAL(std::string("CA"), partner.with(placer)[2].get("ORC-1"));
      CPPUNIT_ASSERT_EQUAL(placer, partner.with(placer)[2].get("ORC-2.1"));
      // Deleting the cancelled order sends no second CA; deleting a live one does.
      assertStatusIn({200, 204}, s.http->del("/fhir/ServiceRequest/" + sr));
      const std::string placer2 = uniqueId("ord");
      const std::string sr2 = s.create("ServiceRequest", labOrderJson(pid, placer2, "2345-7"));
      CPPUNIT_ASSERT(waitFor([&] { return partner.with(placer2).size() == 1; }));
      assertStatusIn({200, 204}, s.http->del("/fhir/ServiceRequest/" + sr2));
      CPPUNIT_ASSERT(waitFor([&] { return partner.with(placer2).size() == 2; }));
      CPPUNIT_ASSERT_EQUAL(std::string("CA"), partner.with(placer2)[1].get("ORC-1"));
      CPPUNIT_ASSERT_EQUAL(std::string("2345-7"), partner.with(placer2)[1].get("OBR-4.1"));
      CPPUNIT_ASSERT_EQUAL(size_t(3), partner.with(placer).size());
      // Unknown row, and retrying a sent row.
      assertStatus(404, s.http->get("/admin/hl7/outbox/nosuchrow"));
      assertStatus(409, s.http->post("/admin/hl7/outbox/" + row->first + "/$retry", ""));
    }
  }

  void testPartnerDownThenUp() {
    for (const Backend& b : backends()) {
      Partner partner;
      const uint16_t port = Partner::freePort();
      Server s(b, port);
      const std::string pid = s.create("Patient", patientJson(uniqueId("mrn")));
      const std::string placer = uniqueId("ord");
      const std::string sr = s.create("ServiceRequest", labOrderJson(pid, placer, "2345-7"));
      long attempts = 0;
      std::string error;
      CPPUNIT_ASSERT(waitFor([&] {
        auto r = s.row("ServiceRequest/" + sr, &error, &attempts);
        return r && r->second == "pending" && attempts >= 2;
      }));
      CPPUNIT_ASSERT(!error.empty());
      partner.start(port);
      CPPUNIT_ASSERT_MESSAGE(b.name, waitFor([&] { return s.statusOf("ServiceRequest/" + sr) == "sent"; }));
      CPPUNIT_ASSERT_EQUAL(size_t(1), partner.with(placer).size());
    }
  }

  void testApplicationErrorIsRecordedThenRetried() {
    for (const Backend& b : backends()) {
      Partner partner;
      partner.start(0);
      Server s(b, partner.port);
      const std::string pid = s.create("Patient", patientJson(uniqueId("mrn")));
      const std::string placer = uniqueId("ord");
      const std::string sr = s.create("ServiceRequest", labOrderJson(pid, placer, "REJECTME"));
      CPPUNIT_ASSERT(waitFor([&] { return s.statusOf("ServiceRequest/" + sr) == "failed"; }));
      std::string error, ack;
      long attempts = 0;
      auto row = s.row("ServiceRequest/" + sr, &error, &attempts, &ack);
      CPPUNIT_ASSERT_EQUAL(std::string("AE"), ack);
      CPPUNIT_ASSERT_EQUAL(1L, attempts);  // AE is not retried automatically
      CPPUNIT_ASSERT_MESSAGE(error, error.find("Unknown test code") != std::string::npos);
      HttpResponse failed = s.http->get("/admin/hl7/outbox?status=failed&_count=1000");
      CPPUNIT_ASSERT(failed.body.find(row->first) != std::string::npos);
      // The partner fixes its catalogue; an operator retries.
      partner.reject = false;
      HttpResponse retry = s.http->post("/admin/hl7/outbox/" + row->first + "/$retry", "");
      assertStatus(200, retry);
      CPPUNIT_ASSERT(waitFor([&] { return s.statusOf("ServiceRequest/" + sr) == "sent"; }));
      CPPUNIT_ASSERT_EQUAL(size_t(2), partner.with(placer).size());
      // Same message (same MSH-10) both times: the partner can tell it is a resend.
      CPPUNIT_ASSERT_EQUAL(partner.with(placer)[0].controlId(), partner.with(placer)[1].controlId());
    }
  }

  void testFailedTransactionEnqueuesNothing() {
    for (const Backend& b : backends()) {
      Partner partner;
      partner.start(0);
      Server s(b, partner.port);
      const std::string placer = uniqueId("ord");
      const size_t before = s.rows()["entries"].Size();
      // The failing entry: a PUT with a stale If-Match, processed after the POSTs (so the
      // ServiceRequest has been written, and enqueued, inside the transaction when it fails).
      const std::string other = s.create("Patient", patientJson(uniqueId("mrn")));
      const std::string bundle = R"({"resourceType":"Bundle","type":"transaction","entry":[
        {"fullUrl":"urn:uuid:4f0d8c3e-1111-4a4a-8c8c-000000000001","resource":)" + patientJson(uniqueId("mrn")) +
                                 R"(,"request":{"method":"POST","url":"Patient"}},
        {"fullUrl":"urn:uuid:4f0d8c3e-1111-4a4a-8c8c-000000000002","resource":{"resourceType":"ServiceRequest",
          "status":"active","intent":"order","category":[{"text":"laboratory"}],
          "identifier":[{"system":"urn:oid:2.16.840.1.113883.3.9001.2","value":")" + placer + R"("}],
          "code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},
          "subject":{"reference":"urn:uuid:4f0d8c3e-1111-4a4a-8c8c-000000000001"}},
          "request":{"method":"POST","url":"ServiceRequest"}},
        {"resource":{"resourceType":"Patient","id":")" + other + R"(","active":true},
          "request":{"method":"PUT","url":"Patient/)" + other + R"(","ifMatch":"W/\"99\""}}]})";
      HttpResponse r = s.http->post("/fhir", bundle, {{"Content-Type", "application/fhir+json"}});
      CPPUNIT_ASSERT_MESSAGE(r.describe(), r.status >= 400);
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      CPPUNIT_ASSERT_EQUAL(before, static_cast<size_t>(s.rows()["entries"].Size()));
      CPPUNIT_ASSERT_EQUAL(size_t(0), partner.with(placer).size());
      std::string good = bundle.substr(0, bundle.rfind(",\n        {\"resource\":{\"resourceType\":\"Patient\""));
      good += "]}";
      // The same bundle without the bad entry goes through: the route was live all along.
      HttpResponse ok = s.http->post("/fhir", good, {{"Content-Type", "application/fhir+json"}});
      assertStatus(200, ok, "the good transaction");
      CPPUNIT_ASSERT_MESSAGE(b.name, waitFor([&] { return partner.with(placer).size() == 1; }));
      CPPUNIT_ASSERT_EQUAL(std::string("NW"), partner.with(placer)[0].get("ORC-1"));
    }
  }

  void testChargeItemAndInvoiceGoOutAsDft() {
    for (const Backend& b : backends()) {
      Partner partner;
      partner.start(0);
      Server s(b, partner.port);
      const std::string mrn = uniqueId("mrn");
      const std::string pid = s.create("Patient", patientJson(mrn));
      const std::string org = s.create("Organization", R"({"resourceType":"Organization","name":"Acme Health",
        "identifier":[{"system":"urn:oid:2.16.840.1.113883.3.9001.9","value":"ACME-01"}]})");
      s.create("Coverage", R"({"resourceType":"Coverage","status":"active","subscriberId":"POL-778",
        "beneficiary":{"reference":"Patient/)" + pid + R"("},"payor":[{"reference":"Organization/)" + org + R"("}]})");
      const std::string tx = uniqueId("tx");
      const std::string ci = s.create("ChargeItem", R"({"resourceType":"ChargeItem","status":"billable",
        "identifier":[{"value":")" + tx + R"("}],
        "code":{"coding":[{"system":"http://www.ama-assn.org/go/cpt","code":"80053"}]},
        "subject":{"reference":"Patient/)" + pid + R"("},"occurrenceDateTime":"2026-12-01",
        "priceOverride":{"value":19.99,"currency":"USD"}})");
      CPPUNIT_ASSERT_MESSAGE(b.name, waitFor([&] { return s.statusOf("ChargeItem/" + ci) == "sent"; }));
      auto dft = partner.with(tx);
      CPPUNIT_ASSERT_EQUAL(size_t(1), dft.size());
      CPPUNIT_ASSERT_EQUAL(std::string("DFT"), dft[0].messageType());
      CPPUNIT_ASSERT_EQUAL(mrn, dft[0].get("PID-3.1"));
      CPPUNIT_ASSERT_EQUAL(std::string("19.99"), dft[0].get("FT1-11.1.1"));
      CPPUNIT_ASSERT_EQUAL(std::string("Acme Health"), dft[0].get("IN1-4.1"));  // the patient's Coverage
      CPPUNIT_ASSERT_EQUAL(std::string("POL-778"), dft[0].get("IN1-36"));
      // An issued Invoice: one FT1 per line, amounts to the cent, summing to totalGross.
      const std::string inv = s.create("Invoice", R"({"resourceType":"Invoice","status":"issued","date":"2026-12-06",
        "identifier":[{"value":")" + tx + R"(-inv"}],
        "subject":{"reference":"Patient/)" + pid + R"("},
        "lineItem":[{"chargeItemReference":{"reference":"ChargeItem/)" + ci + R"("},
                     "priceComponent":[{"type":"base","amount":{"value":19.99,"currency":"USD"}}]},
                    {"chargeItemCodeableConcept":{"coding":[{"system":"http://www.ama-assn.org/go/cpt","code":"36415"}]},
                     "priceComponent":[{"type":"base","amount":{"value":0.70,"currency":"USD"}},
                                       {"type":"tax","amount":{"value":0.01,"currency":"USD"}}]}],
        "totalGross":{"value":20.70,"currency":"USD"}})");
      CPPUNIT_ASSERT(waitFor([&] { return s.statusOf("Invoice/" + inv) == "sent"; }));
      auto all = partner.with(tx);
      CPPUNIT_ASSERT_EQUAL(size_t(2), all.size());
      const hl7::Message& m = all[1];
      CPPUNIT_ASSERT_EQUAL(2, m.count("FT1"));
      CPPUNIT_ASSERT_EQUAL(std::string("19.99"), m.get("FT1(1)-11.1.1"));
      CPPUNIT_ASSERT_EQUAL(std::string("0.71"), m.get("FT1(2)-11.1.1"));
      // 19.99 + 0.71 = 20.70 = totalGross (checked in cents, not floating point)
      auto cents = [](const std::string& d) {
        const size_t dot = d.find('.');
        return std::stol(d.substr(0, dot)) * 100 + std::stol(d.substr(dot + 1));
      };
      CPPUNIT_ASSERT_EQUAL(2070L, cents(m.get("FT1(1)-11.1.1")) + cents(m.get("FT1(2)-11.1.1")));
    }
  }

  void testPendingRowDeliveredAfterRestart() {
    for (const Backend& b : backends()) {
      Partner partner;
      const uint16_t port = Partner::freePort();
      Server s(b, port);
      const std::string pid = s.create("Patient", patientJson(uniqueId("mrn")));
      const std::string placer = uniqueId("ord");
      const std::string sr = s.create("ServiceRequest", labOrderJson(pid, placer, "718-7"));
      long attempts = 0;
      CPPUNIT_ASSERT(waitFor([&] { s.row("ServiceRequest/" + sr, nullptr, &attempts); return attempts >= 1; }));
      s.proc->stop();
      partner.start(port);
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      CPPUNIT_ASSERT_EQUAL(size_t(0), partner.with(placer).size());
      s.proc->start();
      s.reconnect();
      CPPUNIT_ASSERT_MESSAGE(b.name, waitFor([&] { return s.statusOf("ServiceRequest/" + sr) == "sent"; }));
      CPPUNIT_ASSERT_EQUAL(size_t(1), partner.with(placer).size());
    }
  }

  // A transaction may write the ServiceRequest before its Patient: the row is mapped at delivery
  // from committed data. An order that can never be mapped (subject is not a Patient) is failed
  // with the reason, and the FHIR write still succeeds.
  void testOrderBeforeItsPatientInABundleAndUnmappableOrders() {
    for (const Backend& b : backends()) {
      Partner partner;
      partner.start(0);
      Server s(b, partner.port);
      const std::string mrn = uniqueId("mrn"), placer = uniqueId("ord");
      const std::string bundle = R"({"resourceType":"Bundle","type":"transaction","entry":[
        {"fullUrl":"urn:uuid:4f0d8c3e-2222-4a4a-8c8c-000000000002","resource":{"resourceType":"ServiceRequest",
          "status":"active","intent":"order","category":[{"text":"laboratory"}],
          "identifier":[{"system":"urn:oid:2.16.840.1.113883.3.9001.2","value":")" + placer + R"("}],
          "code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},
          "subject":{"reference":"urn:uuid:4f0d8c3e-2222-4a4a-8c8c-000000000001"}},
          "request":{"method":"POST","url":"ServiceRequest"}},
        {"fullUrl":"urn:uuid:4f0d8c3e-2222-4a4a-8c8c-000000000001","resource":)" + patientJson(mrn) +
                                 R"(,"request":{"method":"POST","url":"Patient"}}]})";
      assertStatus(200, s.http->post("/fhir", bundle, {{"Content-Type", "application/fhir+json"}}));
      CPPUNIT_ASSERT_MESSAGE(b.name, waitFor([&] { return partner.with(placer).size() == 1; }));
      CPPUNIT_ASSERT_EQUAL(mrn, partner.with(placer)[0].get("PID-3.1"));
      CPPUNIT_ASSERT_EQUAL(std::string("2345-7"), partner.with(placer)[0].get("OBR-4.1"));

      const std::string group = s.create("Group", R"({"resourceType":"Group","type":"person","actual":true})");
      const std::string bad = uniqueId("ord");
      std::string body = labOrderJson("x", bad, "2345-7");
      body.replace(body.find("Patient/x"), 9, "Group/" + group);
      const std::string sr = s.create("ServiceRequest", body);
      CPPUNIT_ASSERT(waitFor([&] { return s.statusOf("ServiceRequest/" + sr) == "failed"; }));
      std::string error;
      s.row("ServiceRequest/" + sr, &error);
      CPPUNIT_ASSERT_MESSAGE(error, error.find("Patient") != std::string::npos);
      CPPUNIT_ASSERT_EQUAL(size_t(0), partner.with(bad).size());
    }
  }

  // The outbox holds PHI (payloads): its routes need a token with write access, like FHIR writes.
  void testAdminRoutesNeedWriteAccess() {
    const std::string readToken = "read-" + randomToken(16), writeToken = "write-" + randomToken(16);
    Partner partner;
    partner.start(0);
    Server s(sqliteBackend(), partner.port,
             {"--set", "auth.enabled=true", "--set",
              "auth.tokens=" + sha256Hex(readToken) + ":read," + sha256Hex(writeToken) + ":write"});
    const Headers reader{{"Authorization", "Bearer " + readToken}};
    const Headers writer{{"Authorization", "Bearer " + writeToken}};
    assertStatus(401, s.http->get("/admin/hl7/outbox"));
    assertStatus(403, s.http->get("/admin/hl7/outbox", reader));
    assertStatus(403, s.http->get("/admin/hl7/outbox/x", reader));
    assertStatus(403, s.http->post("/admin/hl7/outbox/x/$retry", "", reader));
    HttpResponse list = s.http->get("/admin/hl7/outbox?status=pending", writer);
    assertStatus(200, list);
    CPPUNIT_ASSERT(list.json()["entries"].IsArray());
    assertStatus(404, s.http->post("/admin/hl7/outbox/x/$retry", "", writer));
    assertStatus(405, s.http->request("DELETE", "/admin/hl7/outbox/x", "", writer));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(OutboxHttpTest);
