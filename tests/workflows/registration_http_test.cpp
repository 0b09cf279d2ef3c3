// Registration as a front desk would check it: Patient/$match ranks the likely records for the
// person at the desk (accents and case do not hide a match; an identifier makes it certain), and
// registering the same person twice (same name, birth date and phone) is refused with a pointer to
// the existing record, also when several desks do it at once. SQLite and PostgreSQL, over HTTP.
#include <cppunit/extensions/HelperMacros.h>

#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iostream>
#include <set>
#include <memory>
#include <mutex>
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

const std::string kMrnSystem = "http://hospital.example.org/fhir/sid/mrn";  // the default system

// The values of the identifiers of the MRN system in a Patient (in order).
std::vector<std::string> mrnsOf(const rapidjson::Value& p) {
  std::vector<std::string> out;
  if (!p.HasMember("identifier")) return out;
  for (const auto& id : p["identifier"].GetArray()) {
    if (id.HasMember("system") && std::string(id["system"].GetString()) == kMrnSystem) {
      CPPUNIT_ASSERT_EQUAL(std::string("MR"), std::string(id["type"]["coding"][0]["code"].GetString()));
      out.emplace_back(id["value"].GetString());
    }
  }
  return out;
}

// The one MRN of a Patient, checked to be MRN + 6 digits.
std::string mrnOf(const rapidjson::Value& p) {
  const std::vector<std::string> m = mrnsOf(p);
  CPPUNIT_ASSERT_EQUAL_MESSAGE("one MRN", size_t(1), m.size());
  CPPUNIT_ASSERT_MESSAGE("MRN format: " + m[0],
                         m[0].size() == 9 && m[0].rfind("MRN", 0) == 0 &&
                             std::all_of(m[0].begin() + 3, m[0].end(), [](char ch) { return ch >= '0' && ch <= '9'; }));
  return m[0];
}

long mrnNumber(const std::string& mrn) { return std::stol(mrn.substr(3)); }

// Ids of the Patients found by Patient?identifier=<MRN system>|value.
std::vector<std::string> patientsWithMrn(HttpClient& c, const std::string& mrn) {
  const HttpResponse r = c.get("/fhir/Patient?identifier=" + kMrnSystem + "%7C" + mrn);
  assertStatus(200, r);
  std::vector<std::string> ids;
  const rapidjson::Document b = r.json();
  if (b.HasMember("entry"))
    for (const auto& e : b["entry"].GetArray()) ids.emplace_back(e["resource"]["id"].GetString());
  return ids;
}

// One HL7 v2 message over MLLP to the server's listener; returns the ACK.
std::string sendMllp(const HearthProcess& server, const std::string& message) {
  std::ifstream in(server.workDir() + "/port");
  std::string line;
  uint16_t port = 0;
  while (std::getline(in, line))
    if (line.rfind("mllp=", 0) == 0) port = static_cast<uint16_t>(std::stoi(line.substr(5)));
  CPPUNIT_ASSERT_MESSAGE("the server listens for MLLP", port != 0);
  Poco::Net::StreamSocket s(Poco::Net::SocketAddress("127.0.0.1", port));
  s.setReceiveTimeout(Poco::Timespan(30, 0));
  const std::string framed = "\x0b" + message + "\x1c\r";
  s.sendBytes(framed.data(), static_cast<int>(framed.size()));
  std::string got;
  char buf[4096];
  while (got.find("\x1c\r") == std::string::npos) {
    const int n = s.receiveBytes(buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

}  // namespace

class RegistrationTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(RegistrationTest);
  CPPUNIT_TEST(testMatchRanksCandidates);
  CPPUNIT_TEST(testDuplicateRegistrationRefused);
  CPPUNIT_TEST(testParallelDesksRegisterOnce);
  CPPUNIT_TEST(testMatchBadInput);
  CPPUNIT_TEST(testMrnAssignedAndSearchable);
  CPPUNIT_TEST(testMrnOnEveryCreatePath);
  CPPUNIT_TEST(testMrnOwnedByServer);
  CPPUNIT_TEST(testParallelCreatesGetDistinctMrns);
  CPPUNIT_TEST(testMrnFromLegacyRegister);
  CPPUNIT_TEST_SUITE_END_ABSTRACT();

 public:
  void setUp() override {
    if (server_ && server_->options().db != backend().db) server_.reset();
    if (!server_ || !server_->running()) {
      ServerOptions opt;
      opt.db = backend().db;
      opt.args = {"--set", "registration.duplicate-check=reject", "--set", "registration.mrn.enabled=true"};
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

  void testMrnAssignedAndSearchable() {
    HttpClient c(*server_);
    const std::string u = uniqueId("mrn");
    const HttpResponse first = c.post("/fhir/Patient", patient("Mrn" + u, "Ada", "1961-01-01"));
    assertStatus(201, first);
    const std::string mrn1 = mrnOf(first.json());
    // Identifiers the client sent are kept, and so are its numbers, digit for digit.
    const std::string withOwn =
        R"({"resourceType":"Patient","identifier":[{"system":"urn:test:insurance","value":")" + u +
        R"("}],"name":[{"family":"Mrn)" + u +
        R"(","given":["Bo"]}],"extension":[{"url":"http://example.org/weight-ratio","valueDecimal":1.50}]})";
    const HttpResponse second = c.post("/fhir/Patient", withOwn);
    assertStatus(201, second);
    const rapidjson::Document p2 = second.json();
    const std::string mrn2 = mrnOf(p2);
    CPPUNIT_ASSERT_EQUAL(mrnNumber(mrn1) + 1, mrnNumber(mrn2));  // nothing else registers meanwhile
    CPPUNIT_ASSERT_EQUAL(2u, p2["identifier"].Size());
    CPPUNIT_ASSERT_EQUAL(std::string("urn:test:insurance"), std::string(p2["identifier"][0]["system"].GetString()));
    const HttpResponse read = c.get("/fhir/Patient/" + std::string(p2["id"].GetString()));
    assertStatus(200, read);
    CPPUNIT_ASSERT_MESSAGE(read.body, read.body.find("\"valueDecimal\":1.50") != std::string::npos);
    CPPUNIT_ASSERT_EQUAL(mrn2, mrnOf(read.json()));
    // Searchable by system|value.
    CPPUNIT_ASSERT(patientsWithMrn(c, mrn1) == std::vector<std::string>{first.json()["id"].GetString()});
    CPPUNIT_ASSERT(patientsWithMrn(c, mrn2) == std::vector<std::string>{p2["id"].GetString()});
  }

  void testMrnOnEveryCreatePath() {
    HttpClient c(*server_);
    const std::string u = uniqueId("paths");
    std::set<std::string> mrns;
    auto expectOne = [&](const rapidjson::Value& p, const std::string& what) {
      const std::string m = mrnOf(p);
      CPPUNIT_ASSERT_MESSAGE(what + ": a new MRN", mrns.insert(m).second);
      CPPUNIT_ASSERT_MESSAGE(what + ": found by MRN", patientsWithMrn(c, m) == std::vector<std::string>{p["id"].GetString()});
    };
    // A transaction: POST (with a urn:uuid fullUrl) and PUT (update-as-create), and a batch.
    for (const std::string kind : {"transaction", "batch"}) {
      const std::string bundle =
          R"({"resourceType":"Bundle","type":")" + kind + R"(","entry":[)"
          R"({"fullUrl":"urn:uuid:0b4c6f3e-1d2a-4c8e-9f1b-2a3b4c5d6e7f","resource":)" +
          patient("Tx" + u + kind, "Ann", "1950-01-01") +
          R"(,"request":{"method":"POST","url":"Patient"}},{"resource":)" +
          withId(patient("Tx" + u + kind, "Ben", "1950-01-02"), u + "-" + kind) +
          R"(,"request":{"method":"PUT","url":"Patient/)" + u + "-" + kind + R"("}}]})";
      const HttpResponse r = c.post("/fhir", bundle, {{"Prefer", "return=representation"}});
      assertStatus(200, r);
      const rapidjson::Document b = r.json();
      for (const auto& e : b["entry"].GetArray()) {
        CPPUNIT_ASSERT_EQUAL(std::string("201"), std::string(e["response"]["status"].GetString()).substr(0, 3));
        const HttpResponse read = c.get("/fhir/" + std::string(e["response"]["location"].GetString()).substr(0, std::string(e["response"]["location"].GetString()).find("/_history")));
        assertStatus(200, read);
        expectOne(read.json(), kind + " entry");
      }
    }
    // Conditional create: made once, with an MRN; the second call finds it and changes nothing.
    const std::string cond = patient("Cond" + u, "Cy", "1940-04-04", "", "C-" + u);
    const HttpResponse made = c.post("/fhir/Patient", cond, {{"If-None-Exist", "identifier=urn:test:mrn|C-" + u}});
    assertStatus(201, made);
    expectOne(made.json(), "conditional create");
    const HttpResponse again = c.post("/fhir/Patient", cond, {{"If-None-Exist", "identifier=urn:test:mrn|C-" + u}});
    assertStatus(200, again);
    // PUT of a new id (update-as-create).
    const HttpResponse put = c.put("/fhir/Patient/" + u + "-put", withId(patient("Put" + u, "Di", "1930-03-03"), u + "-put"));
    assertStatus(201, put);
    expectOne(put.json(), "update-as-create");
    // HL7 v2 ADT^A01: the patient keeps the sender's identifier and gets an MRN; an A08 that
    // replaces the record keeps the MRN.
    const std::string v2id = "V2" + u.substr(u.size() > 10 ? u.size() - 10 : 0);
    auto adt = [&](const std::string& trigger, const std::string& control, const std::string& given) {
      return "MSH|^~\\&|REGSYS|NORTHVALE|HEARTH|HEARTH_FAC|20250314083015+0100||ADT^" + trigger + "^ADT_A01|" + control +
             "|P|2.5.1\rEVN|" + trigger + "|20250314083000+0100\rPID|1||" + v2id + "^^^NORTHVALE^MR||Hl7" + u + "^" +
             given + "||19790522|F\rPV1|1|I|3W^312^B^NORTHVALE\r";
    };
    const std::string ack = sendMllp(*server_, adt("A01", "C1" + v2id, "Eva"));
    CPPUNIT_ASSERT_MESSAGE(ack, ack.find("|AA|") != std::string::npos);
    HttpResponse found = c.get("/fhir/Patient?family=Hl7" + u);
    assertStatus(200, found);
    rapidjson::Document b = found.json();
    CPPUNIT_ASSERT_EQUAL(1u, b["entry"].Size());
    const std::string hl7Mrn = mrnOf(b["entry"][0]["resource"]);
    CPPUNIT_ASSERT_MESSAGE("the sender's identifier is kept", found.body.find(v2id) != std::string::npos);
    CPPUNIT_ASSERT(mrns.insert(hl7Mrn).second);
    const std::string ack2 = sendMllp(*server_, adt("A08", "C2" + v2id, "Evita"));
    CPPUNIT_ASSERT_MESSAGE(ack2, ack2.find("|AA|") != std::string::npos);
    found = c.get("/fhir/Patient?family=Hl7" + u);
    b = found.json();
    CPPUNIT_ASSERT_EQUAL(1u, b["entry"].Size());
    CPPUNIT_ASSERT_MESSAGE("the A08 was applied", found.body.find("Evita") != std::string::npos);
    CPPUNIT_ASSERT_EQUAL(hl7Mrn, mrnOf(b["entry"][0]["resource"]));
  }

  void testMrnOwnedByServer() {
    HttpClient c(*server_);
    const std::string u = uniqueId("own");
    // A client may not bring its own MRN: 422, nothing stored.
    const std::string forged = R"({"resourceType":"Patient","identifier":[{"system":")" + kMrnSystem +
                               R"(","value":"MRN999999"}],"name":[{"family":"Own)" + u + R"("}]})";
    assertOperationOutcome(c.post("/fhir/Patient", forged), 422, "client MRN");
    HttpResponse none = c.get("/fhir/Patient?family=Own" + u);
    CPPUNIT_ASSERT(!none.json().HasMember("entry"));
    // An update that leaves the MRN out keeps it; one that changes it is refused; the same is fine.
    const HttpResponse made = c.post("/fhir/Patient", patient("Own" + u, "Fay", "1999-09-09"));
    assertStatus(201, made);
    const std::string id = made.json()["id"].GetString();
    const std::string mrn = mrnOf(made.json());
    const HttpResponse without = c.put("/fhir/Patient/" + id, withId(patient("Own" + u, "Faye", "1999-09-09"), id));
    assertStatus(200, without);
    CPPUNIT_ASSERT_EQUAL(mrn, mrnOf(without.json()));
    const std::string changed = R"({"resourceType":"Patient","id":")" + id + R"(","identifier":[{"system":")" +
                                kMrnSystem + R"(","value":"MRN000000"}],"name":[{"family":"Own)" + u + R"("}]})";
    assertOperationOutcome(c.put("/fhir/Patient/" + id, changed), 422, "changed MRN");
    const HttpResponse current = c.get("/fhir/Patient/" + id);
    CPPUNIT_ASSERT_EQUAL(std::string("2"), std::string(current.json()["meta"]["versionId"].GetString()));
    CPPUNIT_ASSERT_EQUAL(mrn, mrnOf(current.json()));
    std::string same = changed;
    same.replace(same.find("MRN000000"), 9, mrn);
    assertStatus(200, c.put("/fhir/Patient/" + id, same));
    CPPUNIT_ASSERT(patientsWithMrn(c, mrn) == std::vector<std::string>{id});
    // A deleted patient's MRN is not handed out again.
    assertStatusIn({200, 204}, c.del("/fhir/Patient/" + id));
    const HttpResponse next = c.post("/fhir/Patient", patient("Own" + u, "Gil", "1999-09-10"));
    assertStatus(201, next);
    CPPUNIT_ASSERT(mrnNumber(mrnOf(next.json())) > mrnNumber(mrn));
  }

  void testParallelCreatesGetDistinctMrns() {
    const std::string family = "Par" + uniqueId("mrn");
    std::mutex mu;
    std::vector<std::string> mrns;
    std::atomic<int> failed{0};
    std::vector<std::thread> desks;
    for (int t = 0; t < 10; ++t) {
      desks.emplace_back([&, t] {
        HttpClient c(*server_);
        for (int i = 0; i < 10; ++i) {
          const HttpResponse r = c.post("/fhir/Patient", patient(family, "P" + std::to_string(t * 10 + i), "2001-01-01"));
          if (r.status != 201) {
            ++failed;
            continue;
          }
          std::lock_guard lock(mu);
          mrns.push_back(mrnOf(r.json()));
        }
      });
    }
    for (auto& t : desks) t.join();
    CPPUNIT_ASSERT_EQUAL(0, failed.load());
    CPPUNIT_ASSERT_EQUAL(size_t(100), mrns.size());
    std::set<long> numbers;
    for (const std::string& m : mrns) numbers.insert(mrnNumber(m));
    CPPUNIT_ASSERT_EQUAL(size_t(100), numbers.size());               // distinct
    CPPUNIT_ASSERT_EQUAL(99L, *numbers.rbegin() - *numbers.begin());  // and no number lost
    HttpClient c(*server_);
    CPPUNIT_ASSERT_EQUAL(size_t(1), patientsWithMrn(c, mrns[37]).size());
  }

  // registration.mrn.accept-client = true (loading a legacy register): a client's MRN is kept when
  // no other Patient holds it; patients without one are numbered as usual, skipping taken numbers.
  void testMrnFromLegacyRegister() {
    ServerOptions opt;
    opt.db = backend().db;
    opt.args = {"--set", "registration.mrn.enabled=true", "--set", "registration.mrn.accept-client=true",
                "--set", "registration.mrn.system=urn:test:legacy-mrn:" + uniqueId("sys"),
                "--set", "registration.mrn.format=H-{0000}"};
    HearthProcess legacy(opt);
    legacy.start();
    const std::string system = opt.args[5].substr(opt.args[5].find('=') + 1);
    HttpClient c(legacy);
    auto withMrn = [&](const std::string& value) {
      return R"({"resourceType":"Patient","identifier":[{"system":")" + system + R"(","value":")" + value +
             R"("}],"name":[{"family":"Legacy"}]})";
    };
    const HttpResponse kept = c.post("/fhir/Patient", withMrn("H-0001"));
    assertStatus(201, kept);
    CPPUNIT_ASSERT_EQUAL(1u, kept.json()["identifier"].Size());
    assertOperationOutcome(c.post("/fhir/Patient", withMrn("H-0001")), 409, "MRN taken");
    const HttpResponse numbered = c.post("/fhir/Patient", R"({"resourceType":"Patient","name":[{"family":"Legacy"}]})");
    assertStatus(201, numbered);
    const rapidjson::Document p = numbered.json();
    CPPUNIT_ASSERT_EQUAL(std::string(system), std::string(p["identifier"][0]["system"].GetString()));
    CPPUNIT_ASSERT_EQUAL(std::string("H-0002"), std::string(p["identifier"][0]["value"].GetString()));  // H-0001 is taken
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
