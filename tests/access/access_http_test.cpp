// Access control and the audit trail on the FHIR API (issue 5 parts 3 and 5), through a real hearth
// with auth enabled, on SQLite and PostgreSQL. Access tokens are minted here with the server's own
// KeyStore directory (the test creates the keys before the server starts, so both sides hold the
// same keys), exactly as the embedded authorization server signs them (access.h claim contract).
//
// Covered: the role matrix (receptionist / pharmacist / billing / doctor), patient-context tokens
// confined to their compartment through read, search, _include, _revinclude, chains, _has,
// $everything, history, compartment and system searches, batch and transaction entries; v2
// granular scopes; writes outside the grant refused with nothing stored; bad tokens (expired,
// forged, alg none, wrong aud) -> 401; AuditEvents for read / search / create / denial, found by
// patient and agent; AuditEvents immutable through the API.
#include <cppunit/extensions/HelperMacros.h>

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "hearth/auth/base64.h"
#include "hearth/auth/jwt.h"
#include "hearth/auth/keystore.h"
#include "hearth_process.h"
#include "http_client.h"
#include "http_test_support.h"

using namespace hearth::test;
namespace auth = hearth::auth;

namespace {

constexpr const char* kLab = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory";

int64_t nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string jsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

struct TokenSpec {
  std::string sub = "user-1";
  std::string clientId = "portal";
  std::string scope;
  std::vector<std::string> roles;
  std::string fhirUser;
  std::string patient;
  std::string aud;      // default: the server's FHIR base
  std::string iss;      // default: the server's origin
  int64_t iat = 0, exp = 0;
  std::string jti;
};

std::vector<std::string> entryRefs(const HttpResponse& r) {
  std::vector<std::string> out;
  const rapidjson::Document b = r.json();
  if (!b.IsObject() || !b.HasMember("entry")) return out;
  for (const auto& e : b["entry"].GetArray()) {
    if (!e.HasMember("resource")) continue;
    const auto& res = e["resource"];
    out.push_back(std::string(res["resourceType"].GetString()) + "/" + res["id"].GetString());
  }
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

class AccessTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(AccessTest);
  CPPUNIT_TEST(testRoleMatrix);
  CPPUNIT_TEST(testWriteDeniedStoresNothing);
  CPPUNIT_TEST(testPatientReadsOnlyOwnRecord);
  CPPUNIT_TEST(testPatientIncludesChainsHas);
  CPPUNIT_TEST(testPatientEverythingHistoryBundles);
  CPPUNIT_TEST(testPatientContextWritesStayInCompartment);
  CPPUNIT_TEST(testGranularScope);
  CPPUNIT_TEST(testBadTokens);
  CPPUNIT_TEST(testAuditTrail);
  CPPUNIT_TEST(testAuditEventsImmutable);
  CPPUNIT_TEST(testAuditSurvivesKill9);
  CPPUNIT_TEST_SUITE_END_ABSTRACT();

 public:
  void setUp() override {
    if (server_ && server_->options().db != backend().db) {
      server_.reset();
      keys_.reset();
    }
    if (!server_ || !server_->running()) {
      keysDir_ = "/tmp/hearth-access-keys-" + randomToken(8);
      ::mkdir(keysDir_.c_str(), 0700);
      auth::KeyStoreOptions ko;
      ko.directory = keysDir_;
      keys_ = std::make_unique<auth::KeyStore>(ko);
      serviceToken_ = "svc-" + randomToken(24);
      ServerOptions opt;
      opt.db = backend().db;
      opt.args = {"--set", "auth.enabled=true", "--set", "auth.keys-dir=" + keysDir_, "--set",
                  "auth.tokens=" + sha256Hex(serviceToken_) + ":write"};
      server_ = std::make_unique<HearthProcess>(opt);
      server_->start();
      seed();
    }
  }

  // ------------------------------------------------------------------------------------------
  void testRoleMatrix() {
    HttpClient c(*server_);
    const Headers reception = bearer(staff("receptionist"));
    assertOperationOutcome(c.get("/fhir/DiagnosticReport/" + reportA_, reception), 403, "receptionist reads a lab report");
    assertOperationOutcome(c.get("/fhir/Observation/" + labA_, reception), 403, "receptionist reads a lab result");
    assertOperationOutcome(c.get("/fhir/Observation?patient=" + patientA_, reception), 403, "receptionist searches labs");
    assertStatus(200, c.get("/fhir/Patient/" + patientA_, reception), "receptionist reads a Patient");
    // Criteria on a type the role cannot search are refused too: they would tell which patients
    // have a given lab result.
    assertOperationOutcome(c.get("/fhir/Patient?_has:Observation:subject:code=" + codeB_, reception), 403,
                           "receptionist _has on Observation");
    assertOperationOutcome(c.get("/fhir/Encounter?_has:Observation:encounter:code=" + codeB_, reception), 403,
                           "receptionist _has on Observation from Encounter");
    assertStatus(200, c.get("/fhir/Encounter?subject:Patient.family=" + familyB_, reception),
                 "receptionist chains to Patient");
    // The include of a type the role may not see is left out of the answer.
    const auto inc = entryRefs(c.get("/fhir/Patient?_id=" + patientA_ + "&_revinclude=Observation:subject", reception));
    CPPUNIT_ASSERT_MESSAGE("receptionist: revinclude drops Observations",
                           contains(inc, "Patient/" + patientA_) && !contains(inc, "Observation/" + labA_));

    const Headers pharmacy = bearer(staff("pharmacist"));
    assertOperationOutcome(c.post("/fhir/Invoice", invoice(uniqueId("inv")), pharmacy), 403, "pharmacist creates an invoice");
    assertStatus(200, c.get("/fhir/MedicationRequest?patient=" + patientA_, pharmacy), "pharmacist reads prescriptions");

    const Headers billing = bearer(staff("billing"));
    assertOperationOutcome(c.get("/fhir/Observation/" + labA_, billing), 403, "billing reads an Observation");
    assertStatus(201, c.post("/fhir/Invoice", invoice(uniqueId("inv")), billing), "billing creates an invoice");

    const Headers doctor = bearer(staff("doctor"));
    assertStatus(200, c.get("/fhir/Observation/" + labA_, doctor), "doctor reads a lab result");
    assertStatus(200, c.get("/fhir/DiagnosticReport/" + reportA_, doctor), "doctor reads a lab report");
    const auto refs = entryRefs(c.get("/fhir/Observation?patient=" + patientB_, doctor));
    CPPUNIT_ASSERT_MESSAGE("doctor sees patient B's lab result", contains(refs, "Observation/" + labB_));

    // The token's scopes narrow the role: a doctor holding user/Patient.rs only cannot read labs.
    TokenSpec narrow = staffSpec("doctor");
    narrow.scope = "user/Patient.rs";
    assertOperationOutcome(c.get("/fhir/Observation/" + labA_, bearer(narrow)), 403, "doctor with Patient-only scope");
  }

  void testWriteDeniedStoresNothing() {
    HttpClient c(*server_);
    const std::string ident = uniqueId("denied");
    const std::string obs = observation(patientA_, "laboratory", "1234-5", ident);
    assertOperationOutcome(c.post("/fhir/Observation", obs, bearer(staff("receptionist"))), 403, "receptionist creates");
    assertOperationOutcome(c.put("/fhir/Observation/" + labA_, observation(patientA_, "laboratory", "1234-5", ident, labA_),
                                 bearer(staff("billing"))),
                           403, "billing updates");
    assertOperationOutcome(c.request("DELETE", "/fhir/Observation/" + labA_, {}, bearer(staff("pharmacist"))), 403,
                           "pharmacist deletes");
    CPPUNIT_ASSERT_EQUAL(size_t(0), entryRefs(c.get("/fhir/Observation?identifier=urn:test|" + ident, service())).size());
    assertStatus(200, c.get("/fhir/Observation/" + labA_, service()), "the lab result is still there");
  }

  void testPatientReadsOnlyOwnRecord() {
    HttpClient c(*server_);
    const Headers me = bearer(patientToken(patientA_));
    assertStatus(200, c.get("/fhir/Patient/" + patientA_, me), "own Patient");
    assertStatus(200, c.get("/fhir/Observation/" + labA_, me), "own lab result");
    assertStatusIn({403, 404}, c.get("/fhir/Patient/" + patientB_, me), "another Patient");
    assertStatusIn({403, 404}, c.get("/fhir/Observation/" + labB_, me), "another patient's Observation");
    assertStatusIn({403, 404}, c.get("/fhir/Observation/" + labB_ + "/_history/1", me), "vread of another's");

    // A plain search returns only the own compartment, and the count is the own count.
    const HttpResponse all = c.get("/fhir/Observation?_total=accurate&_count=100", me);
    assertStatus(200, all, "search");
    const auto refs = entryRefs(all);
    CPPUNIT_ASSERT_MESSAGE("own lab in search", contains(refs, "Observation/" + labA_));
    CPPUNIT_ASSERT_MESSAGE("own vitals in search", contains(refs, "Observation/" + vitalA_));
    CPPUNIT_ASSERT_MESSAGE("B's lab not in search", !contains(refs, "Observation/" + labB_));
    CPPUNIT_ASSERT_MESSAGE("B's performed lab not in search", !contains(refs, "Observation/" + perfB_));
    const rapidjson::Document b = all.json();
    CPPUNIT_ASSERT_MESSAGE("total is the own count", b.HasMember("total") && b["total"].GetInt64() == int64_t(refs.size()));
    // Searching for B explicitly finds nothing.
    CPPUNIT_ASSERT_EQUAL(size_t(0), entryRefs(c.get("/fhir/Observation?subject=Patient/" + patientB_, me)).size());
    const auto pats = entryRefs(c.get("/fhir/Patient?_count=100", me));
    CPPUNIT_ASSERT_MESSAGE("Patient search: only self", pats.size() == 1 && pats[0] == "Patient/" + patientA_);
    // Another patient's compartment and system-wide search are refused.
    assertOperationOutcome(c.get("/fhir/Patient/" + patientB_ + "/Observation", me), 403, "B's compartment");
    assertOperationOutcome(c.get("/fhir?_type=Observation", me), 403, "system search");
    // Shared directory resources stay readable (the performer of an own result).
    assertStatus(200, c.get("/fhir/Practitioner/" + practitioner_, me), "practitioner");
  }

  void testPatientIncludesChainsHas() {
    HttpClient c(*server_);
    const Headers me = bearer(patientToken(patientA_));
    auto leaks = [&](const std::string& query) {
      const HttpResponse r = c.get(query, me);
      assertStatus(200, r, query);
      for (const auto& ref : entryRefs(r)) {
        if (ref == "Patient/" + patientB_ || ref == "Observation/" + labB_ || ref == "Observation/" + perfB_ ||
            ref == "Encounter/" + encounterB_)
          return ref;
      }
      return std::string();
    };
    for (const std::string& q : std::vector<std::string>{
             "/fhir/Observation?_include=Observation:subject",
             "/fhir/Observation?_include=*&_include:iterate=*",
             "/fhir/Patient?_revinclude=Observation:subject&_revinclude=Encounter:subject",
             "/fhir/Patient?_revinclude=*",
             // The shared performer pulls in everything it performed: B's result must not come along.
             "/fhir/Practitioner?_id=" + practitioner_ + "&_revinclude=Observation:performer",
             "/fhir/Observation?_include=Observation:performer&_revinclude:iterate=Observation:performer",
             // Chains and _has: matches stay inside the compartment.
             "/fhir/Observation?subject:Patient.family=" + familyB_,
             "/fhir/Observation?subject.family=" + familyB_,
             "/fhir/Patient?_has:Observation:subject:code=" + codeB_,
             "/fhir/Patient?family=" + familyB_,
             "/fhir/Encounter?patient=" + patientB_,
         }) {
      const std::string leaked = leaks(q);
      CPPUNIT_ASSERT_MESSAGE(q + " leaked " + leaked, leaked.empty());
    }
    // The includes still work inside the compartment.
    const auto own = entryRefs(c.get("/fhir/Observation?_id=" + labA_ + "&_include=Observation:subject", me));
    CPPUNIT_ASSERT_MESSAGE("own include", contains(own, "Patient/" + patientA_));
  }

  void testPatientEverythingHistoryBundles() {
    HttpClient c(*server_);
    const Headers me = bearer(patientToken(patientA_));
    assertOperationOutcome(c.get("/fhir/Patient/" + patientB_ + "/$everything", me), 403, "B's $everything");
    const HttpResponse ev = c.get("/fhir/Patient/" + patientA_ + "/$everything", me);
    assertStatus(200, ev, "own $everything");
    const auto evRefs = entryRefs(ev);
    CPPUNIT_ASSERT_MESSAGE("own $everything has own lab", contains(evRefs, "Observation/" + labA_));
    CPPUNIT_ASSERT_MESSAGE("own $everything has no B", !contains(evRefs, "Patient/" + patientB_) &&
                                                            !contains(evRefs, "Observation/" + perfB_));

    assertStatusIn({403, 404}, c.get("/fhir/Observation/" + labB_ + "/_history", me), "history of B's lab");
    for (const std::string h : {"/fhir/Observation/_history?_count=1000", "/fhir/_history?_count=1000",
                                "/fhir/Patient/_history?_count=1000"}) {
      const HttpResponse r = c.get(h, me);
      assertStatus(200, r, h);
      const auto refs = entryRefs(r);
      CPPUNIT_ASSERT_MESSAGE(h + " leaks B", !contains(refs, "Observation/" + labB_) &&
                                                 !contains(refs, "Patient/" + patientB_) &&
                                                 !contains(refs, "Observation/" + perfB_));
    }

    // Batch reads and searches: B's resources never come back.
    const std::string batch =
        R"({"resourceType":"Bundle","type":"batch","entry":[)"
        R"({"request":{"method":"GET","url":"Observation/)" + labB_ + R"("}},)"
        R"({"request":{"method":"GET","url":"Observation?subject=Patient/)" + patientB_ + R"("}},)"
        R"({"request":{"method":"GET","url":"Patient/)" + patientB_ + R"(/$everything"}},)"
        R"({"request":{"method":"GET","url":"Observation/)" + labA_ + R"("}}]})";
    const HttpResponse br = c.post("/fhir", batch, me);
    if (br.status == 200) {
      const std::string body = br.body;
      CPPUNIT_ASSERT_MESSAGE("batch leaks B's lab: " + body, body.find("\"id\":\"" + labB_ + "\"") == std::string::npos);
      CPPUNIT_ASSERT_MESSAGE("batch leaks B: " + body, body.find("\"id\":\"" + patientB_ + "\"") == std::string::npos);
    } else {
      assertOperationOutcome(br, 403, "batch with entries outside the compartment");
    }
  }

  void testPatientContextWritesStayInCompartment() {
    HttpClient c(*server_);
    // A doctor launched in patient A's context (patient/ scopes): writes stay inside A's compartment.
    TokenSpec t = staffSpec("doctor");
    t.scope = "launch/patient patient/*.cruds";
    t.patient = patientA_;
    const Headers inA = bearer(t);
    const std::string identA = uniqueId("ctxA"), identB = uniqueId("ctxB"), identT = uniqueId("ctxT");
    assertStatus(201, c.post("/fhir/Observation", observation(patientA_, "vital-signs", "8867-4", identA), inA), "own write");
    assertOperationOutcome(c.post("/fhir/Observation", observation(patientB_, "vital-signs", "8867-4", identB), inA), 403,
                           "write into B's record");
    assertOperationOutcome(c.put("/fhir/Observation/" + labB_, observation(patientB_, "laboratory", codeB_, identB, labB_), inA),
                           403, "update of B's result");
    // Moving own data into B's record is refused as well.
    assertOperationOutcome(c.put("/fhir/Observation/" + vitalA_, observation(patientB_, "vital-signs", "8867-4", identB, vitalA_), inA),
                           403, "moving A's result to B");
    // A transaction with one entry outside the compartment stores nothing at all.
    const std::string tx = R"({"resourceType":"Bundle","type":"transaction","entry":[)"
                           R"({"request":{"method":"POST","url":"Observation"},"resource":)" +
                           observation(patientA_, "vital-signs", "8867-4", identT) +
                           R"(},{"request":{"method":"POST","url":"Observation"},"resource":)" +
                           observation(patientB_, "vital-signs", "8867-4", identT) + "}]}";
    assertOperationOutcome(c.post("/fhir", tx, inA), 403, "transaction with an entry for B");
    CPPUNIT_ASSERT_EQUAL(size_t(0), entryRefs(c.get("/fhir/Observation?identifier=urn:test|" + identT, service())).size());
    CPPUNIT_ASSERT_EQUAL(size_t(0), entryRefs(c.get("/fhir/Observation?identifier=urn:test|" + identB, service())).size());
    // Conditional interactions would reveal matches outside the compartment: refused.
    assertOperationOutcome(c.request("DELETE", "/fhir/Observation?code=" + codeB_, {}, inA), 403, "conditional delete");
    assertStatus(200, c.get("/fhir/Observation/" + labB_, service()), "B's lab untouched");
  }

  void testGranularScope() {
    HttpClient c(*server_);
    TokenSpec t = patientSpec(patientA_);
    t.scope = std::string("launch/patient patient/Patient.rs patient/Observation.rs?category=") + kLab;
    const Headers labsOnly = bearer(t);
    const auto refs = entryRefs(c.get("/fhir/Observation?_count=100", labsOnly));
    CPPUNIT_ASSERT_MESSAGE("lab result visible", contains(refs, "Observation/" + labA_));
    CPPUNIT_ASSERT_MESSAGE("vital signs hidden", !contains(refs, "Observation/" + vitalA_));
    CPPUNIT_ASSERT_MESSAGE("other patient's lab hidden", !contains(refs, "Observation/" + labB_));
    assertStatus(200, c.get("/fhir/Observation/" + labA_, labsOnly), "read lab");
    assertStatusIn({403, 404}, c.get("/fhir/Observation/" + vitalA_, labsOnly), "read vital signs");
    assertOperationOutcome(c.get("/fhir/DiagnosticReport/" + reportA_, labsOnly), 403, "type outside the scopes");
    // Includes of the filtered type are filtered too.
    const auto inc = entryRefs(c.get("/fhir/Patient?_revinclude=Observation:subject", labsOnly));
    CPPUNIT_ASSERT_MESSAGE("revinclude keeps the filter", !contains(inc, "Observation/" + vitalA_));
  }

  void testBadTokens() {
    HttpClient c(*server_);
    const std::string target = "/fhir/Patient/" + patientA_;
    auto expect401 = [&](const std::string& token, const std::string& what) {
      const HttpResponse r = c.get(target, {{"Authorization", "Bearer " + token}});
      assertOperationOutcome(r, 401, what);
      CPPUNIT_ASSERT_MESSAGE(what + ": WWW-Authenticate", r.header("WWW-Authenticate").rfind("Bearer", 0) == 0);
    };
    assertOperationOutcome(c.get(target), 401, "no token");
    TokenSpec expired = staffSpec("doctor");
    expired.iat = nowSeconds() - 7200;
    expired.exp = nowSeconds() - 3600;
    expect401(mint(expired), "expired");
    TokenSpec wrongAud = staffSpec("doctor");
    wrongAud.aud = "https://elsewhere.example/fhir";
    expect401(mint(wrongAud), "wrong aud");
    // Forged: signed by a key the server does not hold.
    const std::string otherDir = "/tmp/hearth-access-other-" + randomToken(8);
    ::mkdir(otherDir.c_str(), 0700);
    auth::KeyStoreOptions ko;
    ko.directory = otherDir;
    auth::KeyStore other(ko);
    expect401(mint(staffSpec("doctor"), &other), "forged signature");
    // alg none: a valid payload without a signature.
    const std::string good = mint(staffSpec("doctor"));
    const std::string payload = good.substr(good.find('.') + 1, good.rfind('.') - good.find('.') - 1);
    expect401(auth::base64urlEncode(R"({"alg":"none","typ":"at+jwt"})") + "." + payload + ".", "alg none");
    // A tampered payload with the original signature.
    const std::string tampered = good.substr(0, good.find('.') + 1) +
                                 auth::base64urlEncode(R"({"sub":"x","scope":"user/*.cruds"})") +
                                 good.substr(good.rfind('.'));
    expect401(tampered, "tampered payload");
    if (std::system(("rm -rf " + otherDir).c_str()) != 0) std::cerr << "[note] could not remove " << otherDir << "\n";
  }

  void testAuditTrail() {
    HttpClient c(*server_);
    // A fresh patient, so the trail we look for is exactly this test's.
    const std::string pid = create(c, "Patient", patientJson(uniqueId("audfam")));
    const std::string obs = create(c, "Observation", observation(pid, "laboratory", "2345-7", uniqueId("aud")));
    TokenSpec doc = staffSpec("doctor");
    doc.fhirUser = "Practitioner/" + practitioner_;
    doc.jti = "jti-" + randomToken(12);
    assertStatus(200, c.get("/fhir/Observation/" + obs, bearer(doc)), "read");
    assertStatus(200, c.get("/fhir/Observation?patient=" + pid, bearer(doc)), "search");
    const std::string created = [&] {
      const HttpResponse r = c.post("/fhir/Observation", observation(pid, "vital-signs", "8867-4", uniqueId("aud")), bearer(doc));
      assertStatus(201, r, "create");
      return std::string(r.json()["id"].GetString());
    }();
    TokenSpec rec = staffSpec("receptionist");
    rec.fhirUser = "Practitioner/" + receptionist_;
    assertOperationOutcome(c.get("/fhir/Observation/" + obs, bearer(rec)), 403, "denied read");

    // The writer is asynchronous: wait until the four records are there (bounded by the test timeout).
    std::set<std::string> seen;
    rapidjson::Document bundle;
    for (int attempt = 0; attempt < 200; ++attempt) {
      const HttpResponse r = c.get("/fhir/AuditEvent?patient=" + pid + "&_count=100", service());
      assertStatus(200, r, "AuditEvent?patient=");
      bundle = r.json();
      seen.clear();
      if (bundle.HasMember("entry")) {
        for (const auto& e : bundle["entry"].GetArray()) {
          const auto& a = e["resource"];
          const std::string sub = a["subtype"][0]["code"].GetString();
          const std::string outcome = a["outcome"].GetString();
          seen.insert(sub + ":" + outcome);
        }
      }
      if (seen.count("read:0") && seen.count("search-type:0") && seen.count("create:0") && seen.count("read:4")) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::string all;
    for (const auto& s : seen) all += s + " ";
    CPPUNIT_ASSERT_MESSAGE("read audited: " + all, seen.count("read:0"));
    CPPUNIT_ASSERT_MESSAGE("search audited: " + all, seen.count("search-type:0"));
    CPPUNIT_ASSERT_MESSAGE("create audited: " + all, seen.count("create:0"));
    CPPUNIT_ASSERT_MESSAGE("denial audited: " + all, seen.count("read:4"));

    // BALP shape of the read: action R, the user and the client as agents, the jti as policy,
    // the patient and the Observation as entities.
    bool checked = false;
    for (const auto& e : bundle["entry"].GetArray()) {
      const auto& a = e["resource"];
      if (std::string(a["subtype"][0]["code"].GetString()) != "read" || std::string(a["outcome"].GetString()) != "0") continue;
      CPPUNIT_ASSERT_EQUAL(std::string("rest"), std::string(a["type"]["code"].GetString()));
      CPPUNIT_ASSERT_EQUAL(std::string("R"), std::string(a["action"].GetString()));
      CPPUNIT_ASSERT(a.HasMember("recorded"));
      const auto& user = a["agent"][0];
      CPPUNIT_ASSERT_EQUAL("Practitioner/" + practitioner_, std::string(user["who"]["reference"].GetString()));
      CPPUNIT_ASSERT(user["requestor"].GetBool());
      CPPUNIT_ASSERT_EQUAL(doc.jti, std::string(user["policy"][0].GetString()));
      CPPUNIT_ASSERT_EQUAL(std::string("portal"), std::string(a["agent"][1]["who"]["identifier"]["value"].GetString()));
      std::set<std::string> entities;
      for (const auto& en : a["entity"].GetArray())
        if (en.HasMember("what")) entities.insert(en["what"]["reference"].GetString());
      CPPUNIT_ASSERT(entities.count("Patient/" + pid));
      CPPUNIT_ASSERT(entities.count("Observation/" + obs));
      CPPUNIT_ASSERT_EQUAL(std::string("Hearth"), std::string(a["source"]["observer"]["display"].GetString()));
      checked = true;
    }
    CPPUNIT_ASSERT(checked);
    // The search record carries the query, base64.
    bool query = false;
    for (const auto& e : bundle["entry"].GetArray()) {
      const auto& a = e["resource"];
      if (std::string(a["subtype"][0]["code"].GetString()) != "search-type") continue;
      for (const auto& en : a["entity"].GetArray())
        if (en.HasMember("query") && en["query"].GetStringLength() > 0) query = true;
      CPPUNIT_ASSERT(query);
    }
    // Found by agent and date as well.
    const auto byAgent = entryRefs(c.get("/fhir/AuditEvent?agent=Practitioner/" + receptionist_ + "&_count=100", service()));
    CPPUNIT_ASSERT_MESSAGE("AuditEvent?agent= finds the denial", !byAgent.empty());
    const auto byDate = entryRefs(c.get("/fhir/AuditEvent?patient=" + pid + "&date=ge2020-01-01", service()));
    CPPUNIT_ASSERT_MESSAGE("AuditEvent?date= works", !byDate.empty());
    // The AuditEvents are valid R4 resources (official JSON schema).
    BodyRecorder recorder(bodyDir("access-audit-" + backend().name));
    c.setRecorder(&recorder);
    assertStatus(200, c.get("/fhir/AuditEvent?patient=" + pid + "&_count=100", service()), "audit bodies");
    c.setRecorder(nullptr);
    assertBodiesMatchSchema(recorder.dir());
    (void)created;
  }

  // An audited access is durable once the writer logged it (audit.h: audit_log, appended in synced
  // batches, made AuditEvents later): reads that keep a storm going (so the background does not
  // drain the log) and then a kill -9 lose none of the accesses logged before it.
  void testAuditSurvivesKill9() {
    HttpClient c(*server_);
    TokenSpec doc = staffSpec("doctor");
    doc.jti = "jti-kill-" + randomToken(12);
    const Headers h = bearer(doc);
    for (int i = 0; i < 60; ++i) {
      assertStatus(200, c.get("/fhir/Patient/" + patientA_, h), "audited read");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    server_->kill9();
    server_->restart();
    HttpClient c2(*server_);
    const HttpResponse r = c2.get("/fhir/AuditEvent?patient=" + patientA_ + "&_count=1000", service());
    assertStatus(200, r, "AuditEvent?patient= after kill -9");
    const rapidjson::Document b = r.json();
    bool found = false;
    if (b.HasMember("entry")) {
      for (const auto& e : b["entry"].GetArray()) {
        const auto& a = e["resource"];
        if (!a.HasMember("agent")) continue;
        for (const auto& ag : a["agent"].GetArray()) {
          if (ag.HasMember("policy") && ag["policy"].IsArray()) {
            for (const auto& p : ag["policy"].GetArray()) found = found || (p.IsString() && doc.jti == p.GetString());
          }
        }
      }
    }
    CPPUNIT_ASSERT_MESSAGE("the reads made before kill -9 are in the audit trail after restart", found);
  }

  void testAuditEventsImmutable() {
    HttpClient c(*server_);
    const std::string ae =
        R"({"resourceType":"AuditEvent","type":{"system":"http://terminology.hl7.org/CodeSystem/audit-event-type","code":"rest"},)"
        R"("recorded":"2026-01-01T00:00:00Z","agent":[{"who":{"display":"forger"},"requestor":true}],)"
        R"("source":{"observer":{"display":"elsewhere"}}})";
    TokenSpec admin = staffSpec("admin");
    for (const Headers& h : {service(), bearer(admin), bearer(staff("doctor"))}) {
      assertOperationOutcome(c.post("/fhir/AuditEvent", ae, h), 403, "create an AuditEvent");
    }
    // An existing one (from this suite's own traffic).
    std::string id;
    for (int attempt = 0; attempt < 200 && id.empty(); ++attempt) {
      const auto refs = entryRefs(c.get("/fhir/AuditEvent?_count=1", service()));
      if (!refs.empty()) id = refs[0].substr(std::string("AuditEvent/").size());
      else std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    CPPUNIT_ASSERT_MESSAGE("an AuditEvent exists", !id.empty());
    std::string changed = ae;
    changed.insert(1, "\"id\":\"" + id + "\",");
    for (const Headers& h : {service(), bearer(admin)}) {
      assertOperationOutcome(c.put("/fhir/AuditEvent/" + id, changed, h), 403, "update an AuditEvent");
      assertOperationOutcome(c.request("DELETE", "/fhir/AuditEvent/" + id, {}, h), 403, "delete an AuditEvent");
    }
    const std::string tx = R"({"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"DELETE","url":"AuditEvent/)" +
                           id + R"("}}]})";
    assertOperationOutcome(c.post("/fhir", tx, service()), 403, "delete an AuditEvent in a transaction");
    assertStatus(200, c.get("/fhir/AuditEvent/" + id, service()), "still there");
  }

 protected:
  virtual Backend backend() const = 0;

  // -- tokens ----------------------------------------------------------------------------------
  std::string mint(const TokenSpec& t, auth::KeyStore* ks = nullptr) {
    const int64_t now = nowSeconds();
    std::string p = "{";
    p += "\"iss\":" + jsonString(t.iss.empty() ? server_->origin() : t.iss);
    p += ",\"aud\":" + jsonString(t.aud.empty() ? server_->fhirBase() : t.aud);
    p += ",\"sub\":" + jsonString(t.sub);
    p += ",\"client_id\":" + jsonString(t.clientId);
    p += ",\"scope\":" + jsonString(t.scope);
    p += ",\"jti\":" + jsonString(t.jti.empty() ? "jti-" + randomToken(16) : t.jti);
    p += ",\"iat\":" + std::to_string(t.iat ? t.iat : now);
    p += ",\"exp\":" + std::to_string(t.exp ? t.exp : now + 600);
    if (!t.fhirUser.empty()) p += ",\"fhirUser\":" + jsonString(t.fhirUser);
    if (!t.patient.empty()) p += ",\"patient\":" + jsonString(t.patient);
    p += ",\"roles\":[";
    for (size_t i = 0; i < t.roles.size(); ++i) p += (i ? "," : "") + jsonString(t.roles[i]);
    p += "]}";
    auth::KeyStore& k = ks ? *ks : *keys_;
    return auth::signJws(auth::JwsAlg::RS256, k.signingKey(auth::JwsAlg::RS256), p, "at+jwt");
  }
  Headers bearer(const TokenSpec& t) { return {{"Authorization", "Bearer " + mint(t)}}; }
  Headers bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }
  Headers service() { return {{"Authorization", "Bearer " + serviceToken_}}; }
  TokenSpec staffSpec(const std::string& role) {
    TokenSpec t;
    t.sub = role + "-user";
    t.roles = {role};
    t.scope = "openid fhirUser user/*.cruds";
    t.fhirUser = "Practitioner/" + practitioner_;
    return t;
  }
  std::string staff(const std::string& role) { return mint(staffSpec(role)); }
  TokenSpec patientSpec(const std::string& pid) {
    TokenSpec t;
    t.sub = "patient-" + pid;
    t.roles = {"patient"};
    t.scope = "openid fhirUser launch/patient patient/*.read";
    t.fhirUser = "Patient/" + pid;
    t.patient = pid;
    return t;
  }
  std::string patientToken(const std::string& pid) { return mint(patientSpec(pid)); }

  // -- data ------------------------------------------------------------------------------------
  static std::string patientJson(const std::string& family) {
    return R"({"resourceType":"Patient","name":[{"family":")" + family + R"(","given":["Test"]}]})";
  }
  std::string observation(const std::string& pid, const std::string& category, const std::string& code,
                          const std::string& ident, const std::string& id = {}, const std::string& performer = {}) {
    std::string o = R"({"resourceType":"Observation",)";
    if (!id.empty()) o += R"("id":")" + id + R"(",)";
    o += R"("identifier":[{"system":"urn:test","value":")" + ident + R"("}],"status":"final",)"
         R"("category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":")" +
         category + R"("}]}],"code":{"coding":[{"system":"http://loinc.org","code":")" + code + R"("}]},)"
         R"("subject":{"reference":"Patient/)" + pid + R"("})";
    if (!performer.empty()) o += R"(,"performer":[{"reference":"Practitioner/)" + performer + R"("}])";
    o += R"(,"valueQuantity":{"value":1.50,"unit":"mmol/L"}})";
    return o;
  }
  std::string invoice(const std::string& ident) {
    return R"({"resourceType":"Invoice","identifier":[{"system":"urn:test","value":")" + ident +
           R"("}],"status":"draft","subject":{"reference":"Patient/)" + patientA_ + R"("}})";
  }
  std::string create(HttpClient& c, const std::string& type, const std::string& body) {
    const HttpResponse r = c.post("/fhir/" + type, body, service());
    assertStatus(201, r, "seed " + type);
    return r.json()["id"].GetString();
  }
  void seed() {
    HttpClient c(*server_);
    practitioner_ = create(c, "Practitioner", R"({"resourceType":"Practitioner","name":[{"family":"Okafor"}]})");
    receptionist_ = create(c, "Practitioner", R"({"resourceType":"Practitioner","name":[{"family":"Front"}]})");
    familyB_ = uniqueId("famb");
    codeB_ = "9" + randomToken(6).substr(0, 5);
    patientA_ = create(c, "Patient", patientJson(uniqueId("fama")));
    patientB_ = create(c, "Patient", patientJson(familyB_));
    labA_ = create(c, "Observation", observation(patientA_, "laboratory", "2345-7", uniqueId("la"), {}, practitioner_));
    vitalA_ = create(c, "Observation", observation(patientA_, "vital-signs", "8867-4", uniqueId("va")));
    labB_ = create(c, "Observation", observation(patientB_, "laboratory", codeB_, uniqueId("lb")));
    perfB_ = create(c, "Observation", observation(patientB_, "laboratory", codeB_, uniqueId("pb"), {}, practitioner_));
    encounterB_ = create(c, "Encounter",
                         R"({"resourceType":"Encounter","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},"subject":{"reference":"Patient/)" +
                             patientB_ + R"("}})");
    reportA_ = create(c, "DiagnosticReport",
                      R"({"resourceType":"DiagnosticReport","status":"final","code":{"text":"panel"},"subject":{"reference":"Patient/)" +
                          patientA_ + R"("},"result":[{"reference":"Observation/)" + labA_ + R"("}]})");
    create(c, "MedicationRequest",
           R"({"resourceType":"MedicationRequest","status":"active","intent":"order","medicationCodeableConcept":{"text":"aspirin"},"subject":{"reference":"Patient/)" +
               patientA_ + R"("}})");
  }

  static std::unique_ptr<HearthProcess> server_;
  static std::unique_ptr<auth::KeyStore> keys_;
  static std::string keysDir_, serviceToken_;
  static std::string practitioner_, receptionist_, patientA_, patientB_, labA_, vitalA_, labB_, perfB_, encounterB_,
      reportA_, familyB_, codeB_;
};
std::unique_ptr<HearthProcess> AccessTest::server_;
std::unique_ptr<auth::KeyStore> AccessTest::keys_;
std::string AccessTest::keysDir_, AccessTest::serviceToken_;
std::string AccessTest::practitioner_, AccessTest::receptionist_, AccessTest::patientA_, AccessTest::patientB_,
    AccessTest::labA_, AccessTest::vitalA_, AccessTest::labB_, AccessTest::perfB_, AccessTest::encounterB_,
    AccessTest::reportA_, AccessTest::familyB_, AccessTest::codeB_;

class AccessSqliteTest : public AccessTest {
  CPPUNIT_TEST_SUB_SUITE(AccessSqliteTest, AccessTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return sqliteBackend(); }
};
CPPUNIT_TEST_SUITE_REGISTRATION(AccessSqliteTest);

class AccessPostgresTest : public AccessTest {
  CPPUNIT_TEST_SUB_SUITE(AccessPostgresTest, AccessTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return *postgresBackend(); }
};

namespace {
struct RegisterPostgresSuite {
  std::optional<CppUnit::AutoRegisterSuite<AccessPostgresTest>> reg;
  RegisterPostgresSuite() {
    if (postgresBackend())
      reg.emplace();
    else
      std::cerr << "[note] HEARTH_TEST_PG_URL not set: PostgreSQL access suite not run\n";
  }
} registerPostgresSuite;
}  // namespace
