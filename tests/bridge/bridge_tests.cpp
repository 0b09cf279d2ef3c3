// bridge_tests: the inbound HL7 v2 bridge of a real hearth process, over real MLLP sockets.
//
// What a hospital integration engineer would check: a lab's ORU gets AA and the report and its
// observations are then found over FHIR for that patient; a resend gets the same ACK bytes and
// changes nothing; garbage gets AR and bad content AE with ERR, with no clinical data stored;
// ADT updates; enhanced mode (CA then the application ACK); many connections at once; a kill -9
// in the middle of a stream loses no acknowledged message; a message accepted but not processed
// before a stop is processed on start; the ops view lists, shows and replays messages.
// Every scenario runs on SQLite and, when HEARTH_TEST_PG_URL is set, on PostgreSQL.
#include <Poco/Base64Encoder.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <cppunit/extensions/HelperMacros.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "hearth/fhir/json.h"
#include "hearth/fhir/service.h"
#include "hearth/fhir/store.h"
#include "hearth/hl7/message.h"
#include "http_test_support.h"
#include "mllp.h"

using namespace hearth::test;
using hearth::server::MllpDecoder;
using hearth::server::mllpFrame;

namespace {

std::vector<Backend> backends() {
  std::vector<Backend> out{sqliteBackend()};
  if (auto pg = postgresBackend()) out.push_back(*pg);
  return out;
}

uint16_t mllpPort(const HearthProcess& server) {
  std::ifstream in(server.workDir() + "/port");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("mllp=", 0) == 0) return static_cast<uint16_t>(std::stoi(line.substr(5)));
  }
  throw std::runtime_error("no mllp= line in the port file");
}

// One MLLP connection: send a message, read `frames` framed answers.
class MllpConnection {
 public:
  explicit MllpConnection(uint16_t port) : socket_(Poco::Net::SocketAddress("127.0.0.1", port)), decoder_(1 << 24) {
    socket_.setReceiveTimeout(Poco::Timespan(30, 0));
  }
  std::vector<std::string> send(const std::string& message, size_t frames = 1) {
    const std::string framed = mllpFrame(message);
    socket_.sendBytes(framed.data(), static_cast<int>(framed.size()));
    std::vector<std::string> got;
    while (pending_.size() < frames) {
      char buf[8192];
      const int n = socket_.receiveBytes(buf, sizeof buf);
      if (n <= 0) throw std::runtime_error("connection closed before the ACK");
      std::vector<MllpDecoder::Output> out;
      decoder_.feed(buf, static_cast<size_t>(n), out);
      for (auto& o : out)
        if (o.event == MllpDecoder::Event::Frame) pending_.push_back(std::move(o.payload));
    }
    got.assign(pending_.begin(), pending_.begin() + static_cast<long>(frames));
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<long>(frames));
    return got;
  }
  std::string sendOne(const std::string& message) { return send(message, 1)[0]; }

 private:
  Poco::Net::StreamSocket socket_;
  MllpDecoder decoder_;
  std::vector<std::string> pending_;
};

std::string field(const std::string& ack, const char* path) {
  return hearth::hl7::Message::parse(ack).at(path).value();
}

const std::string kAuthority = "urn:hearth:authority:NORTHVALE";

std::string adt(const std::string& trigger, const std::string& controlId, const std::string& mrn,
                const std::string& family, const std::string& given = "Anna", const std::string& msh1516 = "") {
  return "MSH|^~\\&|REGSYS|NORTHVALE|HEARTH|HEARTH_FAC|20250314083015+0100||ADT^" + trigger + "^ADT_A01|" +
         controlId + "|P|2.5.1" + msh1516 + "\r" + "EVN|" + trigger + "|20250314083000+0100\r" + "PID|1||" + mrn +
         "^^^NORTHVALE^MR||" + family + "^" + given + "||19790522|F\r" + "PV1|1|I|3W^312^B^NORTHVALE\r";
}

std::string oru(const std::string& controlId, const std::string& mrn, const std::string& filler,
                const std::string& glucose = "105", bool withPid3 = true) {
  return "MSH|^~\\&|LABSYS|CENTRAL_LAB|HEARTH|NORTHVALE|20250314121530+0100||ORU^R01^ORU_R01|" + controlId +
         "|P|2.5.1\r" + "PID|1||" + (withPid3 ? mrn + "^^^NORTHVALE^MR" : std::string()) +
         "||Doe^Jane||19790522|F\r" + "OBR|1|P" + filler + "^NORTHVALE|" + filler +
         "^CENTRAL_LAB|24323-8^Comprehensive metabolic panel^LN|||20250314090000+0100|||||||||||||||"
         "20250314121500+0100|||F\r" +
         "OBX|1|NM|2345-7^Glucose^LN||" + glucose + "|mg/dL^mg/dL^UCUM|70-99|H|||F\r" +
         "OBX|2|NM|2160-0^Creatinine^LN||0.92|mg/dL^mg/dL^UCUM|0.57-1.00|N|||F\r";
}

long total(HttpClient& c, const std::string& query) {
  HttpResponse r = c.get(query + (query.find('?') == std::string::npos ? "?" : "&") + "_summary=count");
  assertStatus(200, r, query);
  auto doc = r.json();
  return doc["total"].GetInt64();
}

std::string patientId(HttpClient& c, const std::string& mrn) {
  HttpResponse r = c.get("/fhir/Patient?identifier=" + kAuthority + "|" + mrn);
  assertStatus(200, r);
  auto doc = r.json();
  if (!doc.HasMember("entry") || doc["entry"].Size() != 1) return {};
  return jstr(doc["entry"][0]["resource"], "/id");
}

std::string b64(const std::string& bytes) {
  std::ostringstream out;
  Poco::Base64Encoder enc(out);
  enc.rdbuf()->setLineLength(0);
  enc << bytes;
  enc.close();
  return out.str();
}

std::string storeUrl(const HearthProcess& server) {
  return server.options().db.empty() ? "sqlite:" + server.dataDir() + "/hearth.db" : server.options().db;
}

// Writes an hl7_message row straight into the server's database (as a crash would leave it).
void insertRow(const HearthProcess& server, const std::string& id, const std::string& controlId,
               const std::string& sender, const std::string& raw, const std::string& status) {
  hearth::fhir::StoreOptions so;
  so.url = storeUrl(server);
  so.poolMin = 1;
  so.poolMax = 1;
  auto store = hearth::fhir::openStore(so);
  auto tx = store->begin();
  const auto now = hearth::fhir::nowInstant();
  tx->execute(hearth::fhir::SqlQuery{
      "INSERT INTO hl7_message (id, sender, control_id, message_type, received_at, received_us, raw_b64, status, "
      "error, ack_code, ack_b64, processed_at, attempts) VALUES (?, ?, ?, 'ADT^A01', ?, ?, ?, ?, '', '', '', '', 0)",
      {id, sender, controlId, now.text, now.epochMicros, b64(raw), status}});
  tx->commit();
}

}  // namespace

class BridgeTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(BridgeTest);
  CPPUNIT_TEST(testOruAcceptedAndFoundOverFhir);
  CPPUNIT_TEST(testResendAnswersTheSameAckAndChangesNothing);
  CPPUNIT_TEST(testGarbageAndBadHeaderGetAr);
  CPPUNIT_TEST(testBadContentGetsAeAndStoresNoClinicalData);
  CPPUNIT_TEST(testAdtA01ThenA08Updates);
  CPPUNIT_TEST(testEnhancedModeAcceptThenApplicationAck);
  CPPUNIT_TEST(testConcurrentConnections);
  CPPUNIT_TEST(testConcurrentDuplicatesProcessedOnce);
  CPPUNIT_TEST(testKill9LosesNoAcknowledgedMessage);
  CPPUNIT_TEST(testJournalReplaysAcknowledgedMessagesAfterKill9);
  CPPUNIT_TEST(testAcknowledgedMessageVisibleAtOnce);
  CPPUNIT_TEST(testCleanStopLeavesNoJournalToReplay);
  CPPUNIT_TEST(testReceivedRowProcessedOnStart);
  CPPUNIT_TEST(testOpsViewListsShowsAndReplays);
  CPPUNIT_TEST(testOpsViewNeedsWriteAccess);
  CPPUNIT_TEST(testOversizedMessageGetsArAndConnectionGoesOn);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testOruAcceptedAndFoundOverFhir() {
    for (const Backend& be : backends()) {
      HearthProcess& server = sharedServer(be);
      HttpClient http(server);
      MllpConnection mllp(mllpPort(server));
      const std::string mrn = uniqueId("mrn"), ctl = uniqueId("c"), filler = uniqueId("f");
      const std::string ack = mllp.sendOne(oru(ctl, mrn, filler));
      CPPUNIT_ASSERT_EQUAL_MESSAGE(be.name + ": " + ack, std::string("AA"), field(ack, "MSA-1"));
      CPPUNIT_ASSERT_EQUAL(ctl, field(ack, "MSA-2"));
      // Sender and receiver swapped, version echoed.
      CPPUNIT_ASSERT_EQUAL(std::string("HEARTH"), field(ack, "MSH-3"));
      CPPUNIT_ASSERT_EQUAL(std::string("NORTHVALE"), field(ack, "MSH-4"));
      CPPUNIT_ASSERT_EQUAL(std::string("LABSYS"), field(ack, "MSH-5"));
      CPPUNIT_ASSERT_EQUAL(std::string("CENTRAL_LAB"), field(ack, "MSH-6"));
      CPPUNIT_ASSERT_EQUAL(std::string("2.5.1"), field(ack, "MSH-12"));
      CPPUNIT_ASSERT(!field(ack, "MSH-10").empty() && field(ack, "MSH-10") != ctl);

      const std::string pid = patientId(http, mrn);
      CPPUNIT_ASSERT_MESSAGE(be.name + ": patient found by MRN", !pid.empty());
      CPPUNIT_ASSERT_EQUAL(1L, total(http, "/fhir/DiagnosticReport?patient=Patient/" + pid));
      CPPUNIT_ASSERT_EQUAL(2L, total(http, "/fhir/Observation?patient=Patient/" + pid));
      CPPUNIT_ASSERT_EQUAL(1L, total(http, "/fhir/Observation?patient=Patient/" + pid + "&code=http://loinc.org|2345-7"));
      HttpResponse metrics = http.get("/metrics");
      CPPUNIT_ASSERT(metrics.body.find("hearth_hl7_messages_total{outcome=\"processed\"}") != std::string::npos);
      HttpResponse obs = http.get("/fhir/Observation?patient=Patient/" + pid + "&code=http://loinc.org|2345-7");
      auto doc = obs.json();
      CPPUNIT_ASSERT_EQUAL(105.0, doc["entry"][0]["resource"]["valueQuantity"]["value"].GetDouble());
    }
  }

  void testResendAnswersTheSameAckAndChangesNothing() {
    for (const Backend& be : backends()) {
      HearthProcess& server = sharedServer(be);
      HttpClient http(server);
      const std::string mrn = uniqueId("mrn"), ctl = uniqueId("c"), filler = uniqueId("f");
      const std::string msg = oru(ctl, mrn, filler);
      const std::string first = MllpConnection(mllpPort(server)).sendOne(msg);
      CPPUNIT_ASSERT_EQUAL(std::string("AA"), field(first, "MSA-1"));
      const std::string pid = patientId(http, mrn);
      HttpResponse before = http.get("/fhir/DiagnosticReport?patient=Patient/" + pid);
      const std::string drId = jstr(before.json()["entry"][0]["resource"], "/id");
      // A resend on another connection, and twice on one.
      MllpConnection again(mllpPort(server));
      CPPUNIT_ASSERT_EQUAL(first, again.sendOne(msg));
      CPPUNIT_ASSERT_EQUAL(first, again.sendOne(msg));
      CPPUNIT_ASSERT_EQUAL(1L, total(http, "/fhir/DiagnosticReport/" + drId + "/_history"));
      CPPUNIT_ASSERT_EQUAL(2L, total(http, "/fhir/Observation?patient=Patient/" + pid));
      CPPUNIT_ASSERT_EQUAL(1L, total(http, "/fhir/Patient/" + pid + "/_history"));
      CPPUNIT_ASSERT_EQUAL(1L, total(http, "/fhir/Patient?identifier=" + kAuthority + "|" + mrn));
    }
  }

  void testGarbageAndBadHeaderGetAr() {
    for (const Backend& be : backends()) {
      HearthProcess& server = sharedServer(be);
      HttpClient http(server);
      MllpConnection mllp(mllpPort(server));
      const std::string garbage = mllp.sendOne("this is not HL7 at all");
      CPPUNIT_ASSERT_EQUAL(std::string("AR"), field(garbage, "MSA-1"));
      CPPUNIT_ASSERT(!field(garbage, "ERR-3").empty());
      // A readable header with an unsupported version: AR, and the message is on record as rejected.
      const std::string ctl = uniqueId("c"), mrn = uniqueId("mrn");
      std::string badVersion = adt("A01", ctl, mrn, "Rejected");
      badVersion.replace(badVersion.find("|2.5.1"), 6, "|9.9");
      // (The AR echoes version 9.9, which this parser refuses too: read it as text.)
      const std::string ar = mllp.sendOne(badVersion);
      CPPUNIT_ASSERT_MESSAGE(ar, ar.find("\rMSA|AR|" + ctl) != std::string::npos);
      CPPUNIT_ASSERT_MESSAGE(ar, ar.find("\rERR|") != std::string::npos);
      // An unsupported message type: AR too.
      std::string qry = adt("A01", uniqueId("c"), mrn, "Rejected");
      qry.replace(qry.find("ADT^A01^ADT_A01"), 15, "QRY^A19");
      CPPUNIT_ASSERT_EQUAL(std::string("AR"), field(mllp.sendOne(qry), "MSA-1"));
      // A message without control id.
      CPPUNIT_ASSERT_EQUAL(std::string("AR"), field(mllp.sendOne(adt("A01", "", mrn, "Rejected")), "MSA-1"));
      // The connection still works and nothing clinical was stored.
      CPPUNIT_ASSERT_EQUAL(0L, total(http, "/fhir/Patient?identifier=" + kAuthority + "|" + mrn));
      HttpResponse list = http.get("/admin/hl7/messages?status=rejected&_count=1000");
      assertStatus(200, list);
      CPPUNIT_ASSERT_MESSAGE(list.body, list.body.find("\"controlId\":\"" + ctl + "\"") != std::string::npos);
    }
  }

  void testBadContentGetsAeAndStoresNoClinicalData() {
    for (const Backend& be : backends()) {
      HearthProcess& server = sharedServer(be);
      HttpClient http(server);
      MllpConnection mllp(mllpPort(server));
      const std::string mrn = uniqueId("mrn"), filler = uniqueId("f");
      // OBX-2 NM with a value that is not a number.
      const std::string ae = mllp.sendOne(oru(uniqueId("c"), mrn, filler, "abc"));
      CPPUNIT_ASSERT_EQUAL_MESSAGE(ae, std::string("AE"), field(ae, "MSA-1"));
      const auto parsed = hearth::hl7::Message::parse(ae);
      CPPUNIT_ASSERT_MESSAGE(ae, parsed.find("ERR") != nullptr);
      CPPUNIT_ASSERT_EQUAL(std::string("OBX"), parsed.at("ERR-2.1").value());
      CPPUNIT_ASSERT_EQUAL(std::string("102"), parsed.at("ERR-3.1").value());
      CPPUNIT_ASSERT_MESSAGE("no value echoed", ae.find("abc") == std::string::npos);
      // PID-3 missing.
      const std::string ae2 = mllp.sendOne(oru(uniqueId("c"), mrn, uniqueId("f"), "99", false));
      CPPUNIT_ASSERT_EQUAL_MESSAGE(ae2, std::string("AE"), field(ae2, "MSA-1"));
      CPPUNIT_ASSERT_EQUAL(std::string("PID"), field(ae2, "ERR-2.1"));
      CPPUNIT_ASSERT_EQUAL(0L, total(http, "/fhir/Patient?identifier=" + kAuthority + "|" + mrn));
      CPPUNIT_ASSERT_EQUAL(0L, total(http, "/fhir/DiagnosticReport?identifier=" + filler));
    }
  }

  void testAdtA01ThenA08Updates() {
    for (const Backend& be : backends()) {
      HearthProcess& server = sharedServer(be);
      HttpClient http(server);
      MllpConnection mllp(mllpPort(server));
      const std::string mrn = uniqueId("mrn");
      CPPUNIT_ASSERT_EQUAL(std::string("AA"), field(mllp.sendOne(adt("A01", uniqueId("c"), mrn, "Berg")), "MSA-1"));
      const std::string pid = patientId(http, mrn);
      CPPUNIT_ASSERT(!pid.empty());
      CPPUNIT_ASSERT_EQUAL(std::string("AA"),
                           field(mllp.sendOne(adt("A08", uniqueId("c"), mrn, "Lindqvist", "Asa")), "MSA-1"));
      HttpResponse p = http.get("/fhir/Patient/" + pid);
      assertStatus(200, p);
      auto doc = p.json();
      CPPUNIT_ASSERT_EQUAL(std::string("Lindqvist"), jstr(doc, "/name/0/family"));
      CPPUNIT_ASSERT_EQUAL(std::string("2"), jstr(doc, "/meta/versionId"));
      CPPUNIT_ASSERT_EQUAL(1L, total(http, "/fhir/Patient?identifier=" + kAuthority + "|" + mrn));
    }
  }

  void testEnhancedModeAcceptThenApplicationAck() {
    for (const Backend& be : backends()) {
      HearthProcess& server = sharedServer(be);
      HttpClient http(server);
      MllpConnection mllp(mllpPort(server));
      const std::string mrn = uniqueId("mrn"), ctl = uniqueId("c");
      const auto acks = mllp.send(adt("A01", ctl, mrn, "Enhanced", "Eva", "|||AL|AL"), 2);
      CPPUNIT_ASSERT_EQUAL(std::string("CA"), field(acks[0], "MSA-1"));
      CPPUNIT_ASSERT_EQUAL(ctl, field(acks[0], "MSA-2"));
      CPPUNIT_ASSERT_EQUAL(std::string("AA"), field(acks[1], "MSA-1"));
      CPPUNIT_ASSERT_EQUAL(ctl, field(acks[1], "MSA-2"));
      CPPUNIT_ASSERT(!patientId(http, mrn).empty());
      // Accept ACK only (MSH-16 NE): one frame, and the next exchange on the connection is in step.
      const std::string mrn2 = uniqueId("mrn");
      const auto one = mllp.send(adt("A01", uniqueId("c"), mrn2, "Enhanced", "Eva", "|||AL|NE"), 1);
      CPPUNIT_ASSERT_EQUAL(std::string("CA"), field(one[0], "MSA-1"));
      // No accept ACK (MSH-15 NE), application ACK always: one frame, the AA.
      const std::string ack = mllp.sendOne(adt("A01", uniqueId("c"), uniqueId("mrn"), "Enhanced", "Eva", "|||NE|AL"));
      CPPUNIT_ASSERT_EQUAL(std::string("AA"), field(ack, "MSA-1"));
      CPPUNIT_ASSERT(!patientId(http, mrn2).empty());
      HttpResponse row = http.get("/admin/hl7/messages?status=received");
      CPPUNIT_ASSERT(row.body.find(ctl) == std::string::npos);
    }
  }

  void testConcurrentConnections() {
    const int kConnections = 8, kPerConnection = std::getenv("HEARTH_BRIDGE_QUICK") ? 10 : 50;
    for (const Backend& be : backends()) {
      HearthProcess& server = sharedServer(be);
      const uint16_t port = mllpPort(server);
      const std::string family = uniqueId("Conc");
      std::atomic<int> aa{0};
      std::mutex mutex;
      std::vector<std::string> failures;
      std::vector<std::thread> threads;
      for (int t = 0; t < kConnections; ++t) {
        threads.emplace_back([&, t] {
          try {
            MllpConnection c(port);
            for (int i = 0; i < kPerConnection; ++i) {
              const std::string ctl = family + "-" + std::to_string(t) + "-" + std::to_string(i);
              const std::string ack = c.sendOne(adt("A01", ctl, ctl, family));
              if (field(ack, "MSA-1") == "AA" && field(ack, "MSA-2") == ctl) {
                ++aa;
              } else {
                std::lock_guard<std::mutex> lock(mutex);
                failures.push_back(ack);
              }
            }
          } catch (const std::exception& e) {
            std::lock_guard<std::mutex> lock(mutex);
            failures.push_back(e.what());
          }
        });
      }
      for (auto& t : threads) t.join();
      CPPUNIT_ASSERT_MESSAGE(be.name + ": " + (failures.empty() ? "" : failures[0]), failures.empty());
      CPPUNIT_ASSERT_EQUAL(kConnections * kPerConnection, aa.load());
      HttpClient http(server);
      CPPUNIT_ASSERT_EQUAL(long(kConnections * kPerConnection), total(http, "/fhir/Patient?family=" + family));
    }
  }

  void testConcurrentDuplicatesProcessedOnce() {
    for (const Backend& be : backends()) {
      HearthProcess& server = sharedServer(be);
      const uint16_t port = mllpPort(server);
      const std::string mrn = uniqueId("mrn");
      const std::string msg = adt("A01", uniqueId("c"), mrn, "Twin");
      std::vector<std::string> acks(8);
      std::vector<std::thread> threads;
      for (size_t i = 0; i < acks.size(); ++i) {
        threads.emplace_back([&, i] {
          try {
            acks[i] = MllpConnection(port).sendOne(msg);
          } catch (const std::exception& e) {
            acks[i] = e.what();
          }
        });
      }
      for (auto& t : threads) t.join();
      for (const std::string& a : acks) CPPUNIT_ASSERT_EQUAL_MESSAGE(be.name, acks[0], a);
      CPPUNIT_ASSERT_EQUAL(std::string("AA"), field(acks[0], "MSA-1"));
      HttpClient http(server);
      const std::string pid = patientId(http, mrn);
      CPPUNIT_ASSERT(!pid.empty());
      CPPUNIT_ASSERT_EQUAL(1L, total(http, "/fhir/Patient/" + pid + "/_history"));
    }
  }

  void testKill9LosesNoAcknowledgedMessage() {
    for (const Backend& be : backends()) {
      ServerOptions so;
      so.db = be.db;
      HearthProcess server(so);
      server.start();
      const uint16_t port = mllpPort(server);
      const std::string family = uniqueId("Crash");
      std::mutex mutex;
      std::vector<std::string> acked;
      std::atomic<bool> stop{false};
      std::thread sender([&] {
        try {
          MllpConnection c(port);
          for (int i = 0; !stop && i < 5000; ++i) {
            const std::string mrn = family + "-" + std::to_string(i);
            const std::string ack = c.sendOne(adt("A01", mrn, mrn, family));
            if (field(ack, "MSA-1") == "AA") {
              std::lock_guard<std::mutex> lock(mutex);
              acked.push_back(mrn);
            }
          }
        } catch (const std::exception&) {
          // the connection died with the server
        }
      });
      const size_t killAt = 30 + static_cast<size_t>(std::hash<std::string>{}(family) % 50);
      for (int i = 0; i < 3000; ++i) {
        {
          std::lock_guard<std::mutex> lock(mutex);
          if (acked.size() >= killAt) break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      server.kill9();
      stop = true;
      sender.join();
      CPPUNIT_ASSERT_MESSAGE(be.name + ": messages were acknowledged before the kill", acked.size() >= killAt);
      server.start();
      HttpClient http(server);
      for (const std::string& mrn : acked) {
        CPPUNIT_ASSERT_MESSAGE(be.name + ": acknowledged " + mrn + " survives kill -9", !patientId(http, mrn).empty());
      }
      // A resend of the last acknowledged message is a duplicate: the same answer, no new version.
      MllpConnection c(mllpPort(server));
      const std::string last = acked.back();
      CPPUNIT_ASSERT_EQUAL(std::string("AA"), field(c.sendOne(adt("A01", last, last, family)), "MSA-1"));
      CPPUNIT_ASSERT_EQUAL(1L, total(http, "/fhir/Patient/" + patientId(http, last) + "/_history"));
    }
  }

  // Journal mode (server/src/hl7_journal.h), on each store: the group of applied messages is held open
  // for 60 s here, so when the server is killed nothing of it is committed to the database; every
  // acknowledged message must come back from the journal at the next start, exactly once.
  void testJournalReplaysAcknowledgedMessagesAfterKill9() {
    for (const Backend& be : backends()) {
      ServerOptions so;
      so.db = be.db;
      so.args = {"--set", "store.group-commit.linger-ms=60000"};
      HearthProcess server(so);
      server.start();
      const std::string family = uniqueId("Journal");
      std::vector<std::string> mrns;
      {
        MllpConnection c(mllpPort(server));
        for (int i = 0; i < 40; ++i) {
          const std::string mrn = family + "-" + std::to_string(i);
          CPPUNIT_ASSERT_EQUAL(std::string("AA"), field(c.sendOne(adt("A01", mrn, mrn, family)), "MSA-1"));
          mrns.push_back(mrn);
          // A copy of a message still in the open group is recognised as a duplicate (the unit that
          // finds it fails, which ends the group: the 30 messages after it stay uncommitted).
          if (i == 9) {
            CPPUNIT_ASSERT_EQUAL(std::string("AA"), field(c.sendOne(adt("A01", mrns[3], mrns[3], family)), "MSA-1"));
          }
        }
      }
      server.kill9();
      server.start();
      HttpClient http(server);
      for (const std::string& mrn : mrns) {
        CPPUNIT_ASSERT_MESSAGE(be.name + ": acknowledged " + mrn + " replayed from the journal",
                               !patientId(http, mrn).empty());
      }
      CPPUNIT_ASSERT_EQUAL(40L, total(http, "/fhir/Patient?family=" + family));
      CPPUNIT_ASSERT_EQUAL(1L, total(http, "/fhir/Patient/" + patientId(http, mrns[3]) + "/_history"));
      const std::string log = server.log();
      CPPUNIT_ASSERT_MESSAGE(log,
                             log.find("journaled message(s) processed after an unclean stop") != std::string::npos);
      // Replayed messages answer resends with their stored AA and change nothing.
      MllpConnection c(mllpPort(server));
      CPPUNIT_ASSERT_EQUAL(std::string("AA"), field(c.sendOne(adt("A01", mrns[7], mrns[7], family)), "MSA-1"));
      CPPUNIT_ASSERT_EQUAL(1L, total(http, "/fhir/Patient/" + patientId(http, mrns[7]) + "/_history"));
    }
  }


  // What a lab system does: AA, then at once a FHIR search. With the group held open for 60 s the
  // answer can only come from the flush the HTTP front does before serving a request.
  void testAcknowledgedMessageVisibleAtOnce() {
    for (const Backend& be : backends()) {
      ServerOptions so;
      so.db = be.db;
      so.args = {"--set", "store.group-commit.linger-ms=60000"};
      HearthProcess server(so);
      server.start();
      HttpClient http(server);
      MllpConnection c(mllpPort(server));
      for (int i = 0; i < 5; ++i) {
        const std::string mrn = uniqueId("vis"), ctl = uniqueId("c"), filler = uniqueId("F");
        CPPUNIT_ASSERT_EQUAL(std::string("AA"), field(c.sendOne(oru(ctl, mrn, filler)), "MSA-1"));
        const std::string pid = patientId(http, mrn);
        CPPUNIT_ASSERT_MESSAGE("patient of message " + std::to_string(i), !pid.empty());
        CPPUNIT_ASSERT_EQUAL(2L, total(http, "/fhir/Observation?subject=Patient/" + pid));
        CPPUNIT_ASSERT_EQUAL(1L, total(http, "/fhir/DiagnosticReport?subject=Patient/" + pid));
      }
    }
  }


  // A clean stop commits the applied messages and deletes the journal: nothing is replayed.
  void testCleanStopLeavesNoJournalToReplay() {
    for (const Backend& be : backends()) {
      ServerOptions so;
      so.db = be.db;
      so.args = {"--set", "store.group-commit.linger-ms=60000"};
      HearthProcess server(so);
      server.start();
      const std::string family = uniqueId("Clean");
      {
        MllpConnection c(mllpPort(server));
        for (int i = 0; i < 10; ++i) {
          const std::string mrn = family + "-" + std::to_string(i);
          CPPUNIT_ASSERT_EQUAL(std::string("AA"), field(c.sendOne(adt("A01", mrn, mrn, family)), "MSA-1"));
        }
      }
      server.stop();
      server.start();
      HttpClient http(server);
      CPPUNIT_ASSERT_EQUAL(10L, total(http, "/fhir/Patient?family=" + family));
      const std::string log = server.log();
      CPPUNIT_ASSERT_MESSAGE(log, log.find("journaled message(s) processed") == std::string::npos);
    }
  }


  void testReceivedRowProcessedOnStart() {
    for (const Backend& be : backends()) {
      ServerOptions so;
      so.db = be.db;
      HearthProcess server(so);
      server.start();
      server.stop();
      const std::string mrn = uniqueId("mrn"), ctl = uniqueId("c");
      insertRow(server, hearth::fhir::newResourceId(), ctl, "REGSYS|NORTHVALE", adt("A01", ctl, mrn, "Recovered"),
                "received");
      server.start();
      HttpClient http(server);
      CPPUNIT_ASSERT_MESSAGE(be.name, !patientId(http, mrn).empty());
      HttpResponse list = http.get("/admin/hl7/messages?status=processed&_count=1000");
      CPPUNIT_ASSERT_MESSAGE(list.body, list.body.find("\"controlId\":\"" + ctl + "\"") != std::string::npos);
      // The sender resending it now gets the AA recovery stored.
      const std::string ack = MllpConnection(mllpPort(server)).sendOne(adt("A01", ctl, mrn, "Recovered"));
      CPPUNIT_ASSERT_EQUAL(std::string("AA"), field(ack, "MSA-1"));
    }
  }

  void testOpsViewListsShowsAndReplays() {
    for (const Backend& be : backends()) {
      HearthProcess& server = sharedServer(be);
      HttpClient http(server);
      MllpConnection mllp(mllpPort(server));
      const std::string ctl = uniqueId("c");
      CPPUNIT_ASSERT_EQUAL(std::string("AE"), field(mllp.sendOne(oru(ctl, uniqueId("mrn"), uniqueId("f"), "abc")), "MSA-1"));
      HttpResponse list = http.get("/admin/hl7/messages?status=error&_count=1000");
      assertStatus(200, list);
      auto doc = list.json();
      std::string id;
      for (const auto& m : doc["messages"].GetArray()) {
        CPPUNIT_ASSERT(!m.HasMember("raw"));
        if (std::string(m["controlId"].GetString()) == ctl) id = m["id"].GetString();
      }
      CPPUNIT_ASSERT_MESSAGE(list.body, !id.empty());
      HttpResponse one = http.get("/admin/hl7/messages/" + id);
      assertStatus(200, one);
      auto m = one.json();
      CPPUNIT_ASSERT(std::string(m["raw"].GetString()).find("OBX|1|NM|") != std::string::npos);
      CPPUNIT_ASSERT(std::string(m["ack"].GetString()).find("MSA|AE|" + ctl) != std::string::npos);
      CPPUNIT_ASSERT(!std::string(m["error"].GetString()).empty());
      CPPUNIT_ASSERT(std::string(m["error"].GetString()).find("abc") == std::string::npos);
      // Replaying content that is still wrong leaves it in error, one more attempt.
      HttpResponse r1 = http.post("/admin/hl7/messages/" + id + "/$replay", "");
      assertStatus(200, r1);
      CPPUNIT_ASSERT_EQUAL(std::string("error"), std::string(r1.json()["status"].GetString()));
      CPPUNIT_ASSERT_EQUAL(2, r1.json()["attempts"].GetInt());
      // A stored message in error whose mapping now succeeds (as after a mapping fix) is replayed.
      const std::string mrn = uniqueId("mrn"), ctl2 = uniqueId("c"), rowId = hearth::fhir::newResourceId();
      insertRow(server, rowId, ctl2, "REGSYS|NORTHVALE", adt("A01", ctl2, mrn, "Replayed"), "error");
      HttpResponse r2 = http.post("/admin/hl7/messages/" + rowId + "/$replay", "");
      assertStatus(200, r2);
      CPPUNIT_ASSERT_EQUAL(std::string("processed"), std::string(r2.json()["status"].GetString()));
      CPPUNIT_ASSERT(!patientId(http, mrn).empty());
      // Processed messages are not replayed; unknown ids are 404.
      assertStatus(409, http.post("/admin/hl7/messages/" + rowId + "/$replay", ""));
      assertStatus(404, http.get("/admin/hl7/messages/nope"));
      assertStatus(400, http.get("/admin/hl7/messages?status=bogus"));
    }
  }

  void testOpsViewNeedsWriteAccess() {
    const std::string readToken = "bridge-read-" + randomToken(), writeToken = "bridge-write-" + randomToken();
    ServerOptions so;
    so.args = {"--set", "auth.enabled=true", "--set",
               "auth.tokens=" + sha256Hex(readToken) + ":read," + sha256Hex(writeToken) + ":write"};
    HearthProcess server(so);
    server.start();
    HttpClient http(server);
    assertStatus(401, http.get("/admin/hl7/messages"));
    assertStatus(403, http.get("/admin/hl7/messages", {{"Authorization", "Bearer " + readToken}}));
    assertStatus(200, http.get("/admin/hl7/messages", {{"Authorization", "Bearer " + writeToken}}));
  }

  void testOversizedMessageGetsArAndConnectionGoesOn() {
    ServerOptions so;
    so.args = {"--set", "mllp.max-frame-bytes=2048"};
    HearthProcess server(so);
    server.start();
    MllpConnection mllp(mllpPort(server));
    const std::string mrn = uniqueId("mrn");
    std::string big = adt("A01", uniqueId("c"), mrn, "Big");
    big += "NTE|1||" + std::string(4000, 'x') + "\r";
    const std::string ar = mllp.sendOne(big);
    CPPUNIT_ASSERT_MESSAGE(ar, ar.find("\rMSA|AR") != std::string::npos);
    CPPUNIT_ASSERT_EQUAL(std::string("AA"), field(mllp.sendOne(adt("A01", uniqueId("c"), mrn, "Small")), "MSA-1"));
    HttpClient http(server);
    HttpResponse p = http.get("/fhir/Patient/" + patientId(http, mrn));
    CPPUNIT_ASSERT_EQUAL(std::string("Small"), jstr(p.json(), "/name/0/family"));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(BridgeTest);
