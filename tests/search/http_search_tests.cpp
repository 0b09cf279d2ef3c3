// http_search_tests: FHIR search over real sockets against a real hearth, per R4 search.html.
//
// The same cases run on SQLite (a fresh data dir) and, when HEARTH_TEST_PG_URL is set, on
// PostgreSQL: each PostgreSQL fixture creates its own database on that server
// (hearth_search_<random>, dropped when the process ends), so result sets are exact and runs never
// see each other's data. The data set is written once per backend through the REST API (PUT with
// chosen ids, so the default order by id is known), then every test searches it.
// Every response body of a /fhir request is saved and, as each suite's last test, validated against
// the official R4 JSON schema.
#include <Poco/URI.h>
#include <cppunit/extensions/HelperMacros.h>
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "http_test_support.h"

using namespace hearth::test;

namespace {

std::string enc(const std::string& s) {
  std::string out;
  Poco::URI::encode(s, "+:/?#[]@!$&'()*,;=|% ", out);
  return out;
}

BodyRecorder& recorderFor(const std::string& suite) {
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<BodyRecorder>> recorders;
  std::lock_guard<std::mutex> lock(mutex);
  auto& r = recorders[suite];
  if (!r) r = std::make_unique<BodyRecorder>(bodyDir(suite));
  return *r;
}

// --- a server per backend with a database of its own ----------------------------------------------

// A fresh PostgreSQL database on the HEARTH_TEST_PG_URL server, dropped on destruction.
class PgDatabase {
 public:
  explicit PgDatabase(const std::string& url) : adminUrl_(url) {
    std::mt19937_64 rng(std::random_device{}() ^
                        static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
    char buf[40];
    std::snprintf(buf, sizeof buf, "hearth_search_%012llx", static_cast<unsigned long long>(rng() & 0xFFFFFFFFFFFFULL));
    name_ = buf;
    admin("CREATE DATABASE " + name_ + " ENCODING 'UTF8' TEMPLATE template0");
    const size_t slash = url.find('/', url.find("://") + 3);
    const size_t qm = url.find('?', slash == std::string::npos ? url.size() : slash);
    url_ = url.substr(0, slash) + "/" + name_ + (qm == std::string::npos ? "" : url.substr(qm));
  }
  ~PgDatabase() {
    try {
      admin("DROP DATABASE IF EXISTS " + name_);
    } catch (const std::exception& e) {
      std::cerr << "[note] could not drop " << name_ << ": " << e.what() << "\n";
    }
  }
  const std::string& url() const { return url_; }

 private:
  void admin(const std::string& sql) {
    PGconn* c = PQconnectdb(adminUrl_.c_str());
    if (PQstatus(c) != CONNECTION_OK) {
      std::string msg = PQerrorMessage(c);
      PQfinish(c);
      throw std::runtime_error("postgres: " + msg);
    }
    PGresult* r = PQexec(c, sql.c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    std::string msg = PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(c);
    if (!ok) throw std::runtime_error("postgres: " + msg);
  }
  std::string adminUrl_, name_, url_;
};

struct SearchServer {
  std::unique_ptr<PgDatabase> db;          // destroyed after the server
  std::unique_ptr<HearthProcess> process;
  bool seeded = false;
  ~SearchServer() {
    if (process && process->running()) process->stop();
    process.reset();
  }
};

SearchServer& searchServer(const std::string& backend) {
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<SearchServer>> servers;
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = servers[backend];
  if (!slot || !slot->process->running()) {
    auto s = std::make_unique<SearchServer>();
    ServerOptions opt;
    if (backend == "postgres") {
      s->db = std::make_unique<PgDatabase>(*pgUrl());
      opt.db = s->db->url();
    }
    s->process = std::make_unique<HearthProcess>(opt);
    s->process->start();  // throws: the next test tries again
    slot = std::move(s);
  }
  return *slot;
}

const std::string kV2 = "http://terminology.hl7.org/CodeSystem/v2-0203";
const std::string kLoinc = "http://loinc.org";
const std::string kUcum = "http://unitsofmeasure.org";

// The data set, as (type, id, JSON body). References use ids chosen here.
std::vector<std::tuple<std::string, std::string, std::string>> dataSet() {
  return {
      {"Organization", "org-a",
       R"({"resourceType":"Organization","id":"org-a","name":"Acme Hospital","identifier":[{"system":"urn:org","value":"A1"}]})"},
      {"Organization", "org-b",
       R"({"resourceType":"Organization","id":"org-b","name":"General Clinic","partOf":{"reference":"Organization/org-a"}})"},
      {"Patient", "pat-a",
       R"({"resourceType":"Patient","id":"pat-a","meta":{"tag":[{"system":"urn:tags","code":"vip"}]},)"
       R"("identifier":[{"type":{"coding":[{"system":")" + kV2 + R"(","code":"MR"}],"text":"Medical record"},"system":"urn:sys1","value":"111"}],)"
       R"("active":true,"name":[{"family":"Müller","given":["Hans"]}],"gender":"male","birthDate":"1980-05-12",)"
       R"("telecom":[{"system":"email","value":"hans@example.org"}],"managingOrganization":{"reference":"Organization/org-a"}})"},
      {"Patient", "pat-b",
       R"({"resourceType":"Patient","id":"pat-b","identifier":[{"system":"urn:sys1","value":"222"}],"active":false,)"
       R"("name":[{"family":"Mueller","given":["Anna"]}],"gender":"female","birthDate":"1990",)"
       R"("managingOrganization":{"reference":"Organization/org-b"}})"},
      {"Patient", "pat-c",
       R"({"resourceType":"Patient","id":"pat-c","identifier":[{"system":"urn:sys2","value":"111"},{"value":"333"}],)"
       R"("name":[{"family":"Smith","given":["John","Jon"]}],"gender":"male"})"},
      {"Patient", "pat-d", R"({"resourceType":"Patient","id":"pat-d","name":[{"family":"Mulder"}],"gender":"male"})"},
      {"Group", "grp-1", R"({"resourceType":"Group","id":"grp-1","type":"person","actual":true})"},
      {"Observation", "obs-1",
       R"({"resourceType":"Observation","id":"obs-1","status":"final","code":{"coding":[{"system":")" + kLoinc +
           R"(","code":"1234","display":"Glucose"}],"text":"Glucose in blood"},"subject":{"reference":"Patient/pat-a"},)"
           R"("effectiveDateTime":"2024-01-15T10:30:00Z","valueQuantity":{"value":5.4,"unit":"mg","system":")" + kUcum +
           R"(","code":"mg"}})"},
      {"Observation", "obs-2",
       R"({"resourceType":"Observation","id":"obs-2","status":"final","code":{"coding":[{"system":")" + kLoinc +
           R"(","code":"5678"}]},"subject":{"reference":"Patient/pat-b"},)"
           R"("effectivePeriod":{"start":"2024-01-01","end":"2024-01-31"},"valueQuantity":{"value":100,"unit":"kg","system":")" +
           kUcum + R"(","code":"kg"}})"},
      {"Observation", "obs-3",
       R"({"resourceType":"Observation","id":"obs-3","status":"final","code":{"coding":[{"system":")" + kLoinc +
           R"(","code":"5678"},{"system":"urn:other","code":"x"}]},"subject":{"reference":"Patient/pat-a"},)"
           R"("effectiveDateTime":"2023","valueQuantity":{"value":99.7,"unit":"kilogram","system":")" + kUcum +
           R"(","code":"kg"}})"},
      {"Observation", "obs-4",
       R"({"resourceType":"Observation","id":"obs-4","status":"preliminary","code":{"coding":[{"code":"1234"}]},)"
       R"("subject":{"reference":"Group/grp-1"}})"},
      {"Observation", "obs-5",
       R"({"resourceType":"Observation","id":"obs-5","status":"final","code":{"text":"weight"},)"
       R"("subject":{"reference":"http://other.org/fhir/Patient/9"},"valueQuantity":{"value":7,"unit":"pounds"}})"},
      {"RiskAssessment", "ra-1",
       R"({"resourceType":"RiskAssessment","id":"ra-1","status":"final","subject":{"reference":"Patient/pat-a"},)"
       R"("prediction":[{"probabilityDecimal":0.5}]})"},
      {"RiskAssessment", "ra-2",
       R"({"resourceType":"RiskAssessment","id":"ra-2","status":"final","subject":{"reference":"Patient/pat-b"},)"
       R"("prediction":[{"probabilityDecimal":100}]})"},
      {"RiskAssessment", "ra-3",
       R"({"resourceType":"RiskAssessment","id":"ra-3","status":"final","subject":{"reference":"Patient/pat-c"},)"
       R"("prediction":[{"probabilityDecimal":99.6}]})"},
      {"ValueSet", "vs-1", R"({"resourceType":"ValueSet","id":"vs-1","status":"active","url":"http://acme.org/fhir/ValueSet/123"})"},
      {"ValueSet", "vs-2", R"({"resourceType":"ValueSet","id":"vs-2","status":"active","url":"http://acme.org/fhir/ValueSet/456"})"},
      {"ValueSet", "vs-3", R"({"resourceType":"ValueSet","id":"vs-3","status":"draft","url":"http://other.org/x"})"},
      {"Encounter", "enc-1",
       R"({"resourceType":"Encounter","id":"enc-1","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},)"
       R"("subject":{"reference":"Patient/pat-a"},"serviceProvider":{"reference":"Organization/org-a"}})"},
  };
}

std::string joinIds(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

}  // namespace

class SearchHttpTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(SearchHttpTest);
  CPPUNIT_TEST(testString);
  CPPUNIT_TEST(testToken);
  CPPUNIT_TEST(testDate);
  CPPUNIT_TEST(testNumberAndQuantity);
  CPPUNIT_TEST(testReference);
  CPPUNIT_TEST(testUri);
  CPPUNIT_TEST(testMissing);
  CPPUNIT_TEST(testIdLastUpdatedAndTags);
  CPPUNIT_TEST(testChainsAndHas);
  CPPUNIT_TEST(testSort);
  CPPUNIT_TEST(testLinksAndPaging);
  CPPUNIT_TEST(testPagingUnderConcurrentWrites);
  CPPUNIT_TEST(testTotalAndSummaryCount);
  CPPUNIT_TEST(testSummaryAndElements);
  CPPUNIT_TEST(testIncludes);
  CPPUNIT_TEST(testUnknownParameters);
  CPPUNIT_TEST(testHostileParameters);
  CPPUNIT_TEST(testCompartments);
  CPPUNIT_TEST(testSystemSearch);
  CPPUNIT_TEST(testPostSearch);
  CPPUNIT_TEST(testXmlSearchset);
  CPPUNIT_TEST(testWritesAreSearchable);
  CPPUNIT_TEST(testCapabilityStatement);
  CPPUNIT_TEST(testBodiesMatchSchema);
  CPPUNIT_TEST_SUITE_END_ABSTRACT();

 public:
  void setUp() override {
    SearchServer& s = searchServer(backend());
    client_ = std::make_unique<HttpClient>(*s.process);
    client_->setRecorder(&recorderFor(suiteName()));
    if (!s.seeded) {
      for (const auto& [type, id, body] : dataSet()) {
        HttpResponse r = http().put("/fhir/" + type + "/" + id, body);
        assertStatusIn({200, 201}, r, "seed " + type + "/" + id);
        // meta.lastUpdated has millisecond precision: writes this close together could share an
        // instant, and the _lastUpdated tests below rely on distinct instants in write order.
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      assertStatus(200, http().del("/fhir/Patient/pat-d"), "delete pat-d");
      s.seeded = true;
    }
  }
  void tearDown() override { client_.reset(); }

 protected:
  virtual std::string backend() const = 0;
  std::string suiteName() const { return "search_" + backend(); }
  HearthProcess& server() { return *searchServer(backend()).process; }
  std::string base() { return server().fhirBase(); }
  HttpClient& http() { return *client_; }

  // A 200 searchset; returns the parsed bundle.
  rapidjson::Document searchset(const std::string& path, const Headers& headers = {}) {
    HttpResponse r = http().get(path, headers);
    assertStatus(200, r, path);
    assertFhirJsonContentType(r, path);
    rapidjson::Document b = r.json();
    HT_EQ(path + ": resourceType", std::string("Bundle"), jstr(b, "/resourceType"));
    HT_EQ(path + ": type", std::string("searchset"), jstr(b, "/type"));
    return b;
  }

  // The ids (Type/id when `qualified`) of the entries with search.mode == mode, in order.
  static std::vector<std::string> entryIds(const rapidjson::Value& b, const std::string& mode = "match",
                                           bool qualified = false) {
    std::vector<std::string> ids;
    if (const auto* e = jptr(b, "/entry"); e && e->IsArray()) {
      for (const auto& entry : e->GetArray()) {
        if (jstr(entry, "/search/mode") != mode) continue;
        ids.push_back(qualified ? jstr(entry, "/resource/resourceType") + "/" + jstr(entry, "/resource/id")
                                : jstr(entry, "/resource/id"));
      }
    }
    return ids;
  }

  std::string link(const rapidjson::Value& b, const std::string& relation) {
    if (const auto* l = jptr(b, "/link"); l && l->IsArray()) {
      for (const auto& x : l->GetArray())
        if (jstr(x, "/relation") == relation) return jstr(x, "/url");
    }
    return {};
  }

  std::string ids(const std::string& path) { return joinIds(entryIds(searchset(path))); }

  void check(const std::string& expected, const std::string& typeAndQuery) {
    CPPUNIT_ASSERT_EQUAL_MESSAGE(backend() + ": GET " + typeAndQuery, expected, ids("/fhir/" + typeAndQuery));
  }

  rapidjson::Document expect400(const std::string& path, const Headers& headers = {}) {
    HttpResponse r = http().get(path, headers);
    return assertOperationOutcome(r, 400, path);
  }

 public:
  void testString() {
    check("pat-a,pat-b", "Patient?family=mu");
    check("pat-a,pat-b", "Patient?family=MU");
    check("pat-a", "Patient?family=" + enc("MÜL"));
    check("pat-a", "Patient?family:exact=" + enc("Müller"));
    check("", "Patient?family:exact=muller");
    check("pat-b", "Patient?family:contains=ell");
    check("pat-a,pat-b", "Patient?family:contains=LL");
    check("", "Patient?family:contains=" + enc("%_"));
    check("pat-a,pat-b,pat-c", "Patient?family=mu,sm");
    check("pat-b", "Patient?family=mu&given=anna");
    check("pat-c", "Patient?given=jo&given=jon");
    check("pat-a,pat-b", "Patient?name=h,anna");
    check("org-a", "Organization?name=acme%20hos");
    check("org-b", "Organization?name=general+cl");  // '+' is a space in a query
    expect400("/fhir/Patient?family:foo=x");
    expect400("/fhir/Patient?family:text=x");
  }

  void testToken() {
    check("pat-a,pat-c", "Patient?gender=male");
    check("pat-b", "Patient?gender:not=male");
    check("pat-a,pat-b,pat-c", "Patient?gender:not=other");
    check("pat-a", "Patient?identifier=urn:sys1|111");
    check("pat-a,pat-c", "Patient?identifier=111");
    check("pat-a,pat-b", "Patient?identifier=urn:sys1|");
    check("pat-c", "Patient?identifier=|333");
    check("", "Patient?identifier=|111");
    check("pat-a", "Patient?identifier:of-type=" + kV2 + "|MR|111");
    check("", "Patient?identifier:of-type=" + kV2 + "|MR|222");
    check("pat-a", "Patient?identifier:text=medical");
    check("obs-1", "Observation?code:text=gluc");
    check("obs-1,obs-4", "Observation?code=1234");
    check("obs-2,obs-3", "Observation?code=" + kLoinc + "|5678");
    check("obs-1,obs-2,obs-3,obs-4", "Observation?code=1234,5678");
    check("obs-3", "Observation?code=5678&code=urn:other|x");
    check("pat-a", "Patient?active=true");
    check("pat-b", "Patient?active=false");
    check("pat-a", "Patient?email=hans@example.org");
    check("obs-4", "Observation?status=preliminary");
    expect400("/fhir/Patient?gender:in=http://x/vs");
    expect400("/fhir/Patient?identifier:of-type=a|b");
    expect400("/fhir/Patient?identifier=a|b|c");
  }

  void testDate() {
    check("pat-a", "Patient?birthdate=1980");
    check("pat-a", "Patient?birthdate=1980-05-12");
    check("", "Patient?birthdate=1980-05-13");
    check("pat-b", "Patient?birthdate=ge1985");
    check("pat-a", "Patient?birthdate=lt1985");
    check("pat-b", "Patient?birthdate=ne1980-05-12");
    check("pat-b", "Patient?birthdate=gt1980-05-12");
    check("pat-a,pat-b", "Patient?birthdate=ge1980-05-12");
    check("pat-a,pat-b", "Patient?birthdate=le1990-06");
    check("pat-a", "Patient?birthdate=eb1990");
    check("pat-b", "Patient?birthdate=sa1980");
    check("pat-a", "Patient?birthdate=ap1980-05-13");
    check("obs-1", "Observation?date=2024-01-15");
    check("obs-1,obs-2", "Observation?date=2024-01");
    check("obs-1", "Observation?date=2024-01-15T10:30:00Z");
    check("obs-1", "Observation?date=" + enc("2024-01-15T11:30:00+01:00"));
    check("obs-2", "Observation?date=gt2024-01-20");
    check("obs-2,obs-3", "Observation?date=lt2024-01-10");
    check("obs-1,obs-2", "Observation?date=sa2023-12-31");
    check("obs-3", "Observation?date=eb2024-01-01");
    check("obs-1,obs-2", "Observation?date=ge2024-01-15");
    check("obs-1,obs-2,obs-3", "Observation?date=le2024-01-15");
    check("obs-3", "Observation?date=ne2024-01");
    check("obs-1,obs-2,obs-3", "Observation?date=ap2024-01-15");  // +-10% of the gap to now
    check("obs-1,obs-2", "Observation?date=ge2024-01-01&date=le2024-01-31");
    auto oo = expect400("/fhir/Patient?birthdate=xx1980");
    assertIssueExpression(oo, "birthdate", "birthdate", "unknown prefix");
    expect400("/fhir/Patient?birthdate=1980-13");
    expect400("/fhir/Patient?birthdate=garbage");
  }

  void testNumberAndQuantity() {
    check("ra-2,ra-3", "RiskAssessment?probability=100");
    check("ra-2", "RiskAssessment?probability=100.0");
    check("ra-2,ra-3", "RiskAssessment?probability=1e2");
    check("ra-1", "RiskAssessment?probability=ne100");
    check("ra-1", "RiskAssessment?probability=le0.5");
    check("ra-2", "RiskAssessment?probability=gt99.6");
    check("ra-2,ra-3", "RiskAssessment?probability=ge99.6");
    check("ra-1", "RiskAssessment?probability=lt99.6");
    check("ra-2,ra-3", "RiskAssessment?probability=ap95");
    check("obs-1", "Observation?value-quantity=5.4");
    check("obs-2,obs-3", "Observation?value-quantity=100");
    check("obs-2", "Observation?value-quantity=100.0");
    check("obs-2", "Observation?value-quantity=gt99.8");
    check("obs-1", "Observation?value-quantity=5.4|" + kUcum + "|mg");
    check("", "Observation?value-quantity=5.4|urn:other|mg");
    check("obs-1", "Observation?value-quantity=5.4||mg");
    check("obs-2,obs-3", "Observation?value-quantity=100||kg");
    check("obs-5", "Observation?value-quantity=7||pounds");
    check("obs-1,obs-5", "Observation?value-quantity=lt10");
    check("obs-2,obs-3", "Observation?value-quantity=ap100");
    expect400("/fhir/RiskAssessment?probability=abc");
    expect400("/fhir/RiskAssessment?probability=zz5");
    expect400("/fhir/Observation?value-quantity=5.4|mg");
  }

  void testReference() {
    check("pat-a", "Patient?organization=Organization/org-a");
    check("pat-a", "Patient?organization=org-a");
    check("pat-a", "Patient?organization:Organization=org-a");
    check("pat-a", "Patient?organization=" + enc(base() + "/Organization/org-a"));
    check("obs-1,obs-3", "Observation?subject=Patient/pat-a");
    check("obs-1,obs-3", "Observation?subject=pat-a");
    check("obs-1,obs-3", "Observation?subject:Patient=pat-a");
    check("obs-1,obs-3", "Observation?patient=pat-a");
    // patient = subject.where(resolve() is Patient), read from subject's rows (search_index.h).
    check("obs-5", "Observation?patient=" + enc("http://other.org/fhir/Patient/9"));
    check("", "Observation?patient=grp-1");
    check("obs-4", "Observation?patient:missing=true&_id=obs-1,obs-4,obs-5");
    expect400("/fhir/Observation?patient=Group/grp-1");
    check("obs-3", "Observation?combo-code=urn:other|x");
    check("obs-1,obs-4", "Observation?combo-code=1234");
    check("", "Observation?subject:Group=pat-a");
    check("obs-4", "Observation?subject=Group/grp-1");
    check("obs-5", "Observation?subject=" + enc("http://other.org/fhir/Patient/9"));
    check("obs-1,obs-2,obs-3", "Observation?subject=pat-a,Patient/pat-b");
    check("org-b", "Organization?partof=org-a");
    expect400("/fhir/Patient?organization=Patient/pat-a");
    expect400("/fhir/Observation?subject:Organization=org-a");
  }

  void testUri() {
    check("vs-1", "ValueSet?url=http://acme.org/fhir/ValueSet/123");
    check("", "ValueSet?url=http://acme.org/fhir/ValueSet");
    check("vs-1,vs-2", "ValueSet?url:below=http://acme.org/fhir");
    check("vs-1", "ValueSet?url:above=http://acme.org/fhir/ValueSet/123/_history/2");
    check("vs-1,vs-2", "ValueSet?url:below=http://acme.org/fhir&status=active");
  }

  void testMissing() {
    check("pat-c", "Patient?organization:missing=true");
    check("pat-a,pat-b", "Patient?organization:missing=false");
    check("pat-c", "Patient?birthdate:missing=true");
    check("pat-a,pat-b,pat-c", "Patient?family:missing=false");
    check("", "Patient?family:missing=true");
    check("obs-4", "Observation?value-quantity:missing=true");
    check("obs-4,obs-5", "Observation?date:missing=true");
    check("obs-5", "Observation?code:missing=false&code:text=weight");
    check("ra-1,ra-2,ra-3", "RiskAssessment?probability:missing=false");
    check("vs-1,vs-2,vs-3", "ValueSet?url:missing=false");
    expect400("/fhir/Patient?family:missing=maybe");
  }

  void testIdLastUpdatedAndTags() {
    check("pat-a,pat-c", "Patient?_id=pat-a,pat-c");
    check("", "Patient?_id=pat-d");  // deleted
    check("pat-b", "Patient?_id=pat-b&family=mue");
    check("pat-a,pat-b,pat-c", "Patient?_lastUpdated=ge2020-01-01");
    check("", "Patient?_lastUpdated=lt2020-01-01");
    check("pat-a", "Patient?_tag=urn:tags|vip");
    check("pat-b,pat-c", "Patient?_tag:not=urn:tags|vip");
    // _lastUpdated around a resource's own instant.
    rapidjson::Document b = searchset("/fhir/Patient?_id=pat-b");
    const std::string lu = jstr(b, "/entry/0/resource/meta/lastUpdated");
    CPPUNIT_ASSERT(!lu.empty());
    check("pat-b", "Patient?_id=pat-a,pat-b&_lastUpdated=" + enc(lu));
    check("pat-b", "Patient?_id=pat-b&_lastUpdated=ge" + enc(lu));
    check("", "Patient?_id=pat-b&_lastUpdated=gt" + enc(lu));
    expect400("/fhir/Patient?_lastUpdated=yesterday");
  }

  void testChainsAndHas() {
    check("pat-a", "Patient?organization.name=acme");
    check("pat-b", "Patient?organization:Organization.name=gen");
    check("obs-1,obs-3", "Observation?subject:Patient.family=mul");
    check("obs-2", "Observation?subject.family=mue");
    check("obs-1,obs-3", "Observation?subject:Patient.organization.name=acme");
    check("obs-2", "Observation?subject.organization.partof.name=acme");
    check("obs-1,obs-3", "Observation?subject.identifier=urn:sys1|111");
    check("pat-a", "Patient?_has:Observation:subject:code=1234");
    check("pat-a,pat-b", "Patient?_has:Observation:patient:code=5678");
    check("org-a", "Organization?_has:Patient:organization:_has:Observation:subject:code=1234");
    check("org-a", "Organization?_has:Patient:organization:family=mul");
    expect400("/fhir/Observation?subject.nosuch=x");
    expect400("/fhir/Observation?code.name=x");
    expect400("/fhir/Patient?_has:Observation:code:code=1234");
    expect400("/fhir/Observation?subject:Patient.organization.partof.partof.partof.name=x");
  }

  void testSort() {
    check("pat-b,pat-a,pat-c", "Patient?_id=pat-a,pat-b,pat-c&_sort=family");
    check("pat-c,pat-a,pat-b", "Patient?_id=pat-a,pat-b,pat-c&_sort=-family");
    check("pat-a,pat-b,pat-c", "Patient?_id=pat-a,pat-b,pat-c&_sort=birthdate");
    check("pat-b,pat-a,pat-c", "Patient?_id=pat-a,pat-b,pat-c&_sort=-birthdate");  // missing values last
    check("pat-b,pat-c,pat-a", "Patient?_id=pat-a,pat-b,pat-c&_sort=gender,-_id");
    check("pat-c,pat-b,pat-a", "Patient?_id=pat-a,pat-b,pat-c&_sort=-_id");
    check("obs-3,obs-2,obs-1,obs-4,obs-5", "Observation?_sort=date");
    check("obs-2,obs-1,obs-3,obs-4,obs-5", "Observation?_sort=-date");
    check("obs-1,obs-5,obs-3,obs-2,obs-4", "Observation?_sort=value-quantity");
    check("ra-1,ra-3,ra-2", "RiskAssessment?_sort=probability");
    check("ra-2,ra-3,ra-1", "RiskAssessment?_sort=-probability");
    // _lastUpdated follows write order here (the data set was written in order).
    check("pat-a,pat-b,pat-c", "Patient?_id=pat-a,pat-b,pat-c&_sort=_lastUpdated");
    check("pat-c,pat-b,pat-a", "Patient?_id=pat-a,pat-b,pat-c&_sort=-_lastUpdated");
    expect400("/fhir/Patient?_sort=nosuch");
  }

  void testLinksAndPaging() {
    rapidjson::Document b = searchset("/fhir/Patient?family=mu,sm&_count=2&_sort=family&bogus=1");
    HT_EQ("first page", std::string("pat-b,pat-a"), joinIds(entryIds(b)));
    const std::string self = link(b, "self"), next = link(b, "next"), first = link(b, "first");
    HT_ASSERT("self is absolute: " + self, self.rfind(base() + "/Patient?", 0) == 0);
    HT_ASSERT("self repeats the criteria: " + self, self.find("family=mu,sm") != std::string::npos);
    HT_ASSERT("self has no ignored parameter: " + self, self.find("bogus") == std::string::npos);
    HT_ASSERT("first has no cursor: " + first, first.find("_cursor") == std::string::npos && !first.empty());
    HT_ASSERT("next carries a cursor: " + next, next.find("_cursor=") != std::string::npos);
    HT_ASSERT("next repeats the sort: " + next, next.find("_sort=family") != std::string::npos);
    HT_ASSERT("no total while more pages follow", !jptr(b, "/total"));
    rapidjson::Document b2 = searchset(pathAndQuery(next));
    HT_EQ("second page", std::string("pat-c"), joinIds(entryIds(b2, "match")));
    HT_ASSERT("last page has no next", link(b2, "next").empty());
    HT_ASSERT("second page's self carries its cursor", link(b2, "self").find("_cursor=") != std::string::npos);
    // Following first starts over.
    HT_EQ("first again", std::string("pat-b,pat-a"), joinIds(entryIds(searchset(pathAndQuery(first)))));
    // A tampered or foreign cursor is refused.
    std::string tampered = pathAndQuery(next);
    const size_t c = tampered.find("_cursor=") + 12;
    tampered[c] = tampered[c] == 'A' ? 'B' : 'A';
    expect400(tampered);
    const std::string cursor = next.substr(next.find("_cursor=") + 8);
    expect400("/fhir/Patient?family=mu&_count=2&_sort=family&_cursor=" + cursor);
    expect400("/fhir/Patient?_cursor=zzz");
  }

  // Walk every page while another client inserts matching resources and updates existing ones:
  // each resource that existed before the walk (and whose sort value does not change) appears
  // exactly once, and no resource appears twice.
  void testPagingUnderConcurrentWrites() {
    const std::string family = "Walker" + randomToken(6);
    std::set<std::string> before;
    std::map<std::string, std::string> bodies;
    for (int i = 0; i < 60; ++i) {
      const std::string body = R"({"resourceType":"Patient","name":[{"family":")" + family + R"(","given":["g)" +
                               std::to_string(i % 10) + R"("]}]})";
      HttpResponse r = http().post("/fhir/Patient", body);
      assertStatus(201, r, "create walker");
      const std::string id = jstr(r.json(), "/id");
      before.insert(id);
      bodies[id] = body;
    }
    for (const std::string sort : {"", "&_sort=given", "&_sort=-given,_id"}) {
      std::atomic<bool> stop{false};
      std::atomic<int> written{0};
      std::thread writer([&] {
        HttpClient w(server());
        int i = 0;
        auto it = bodies.begin();
        while (!stop.load() && i < 200) {
          // New matches, and updates of existing ones that keep their sort values.
          w.post("/fhir/Patient", R"({"resourceType":"Patient","name":[{"family":")" + family +
                                      R"(","given":["g)" + std::to_string(i % 10) + R"("]}]})");
          if (it != bodies.end()) {
            std::string updated = withId(it->second, it->first);
            w.put("/fhir/Patient/" + it->first, withMarker(updated, "u" + std::to_string(i)));
            ++it;
          }
          ++i;
          written.store(i);
        }
      });
      std::vector<std::string> seen;
      std::string next = "/fhir/Patient?family=" + family + "&_count=7" + sort;
      int pages = 0;
      while (!next.empty() && pages < 100) {
        rapidjson::Document b = searchset(next);
        for (const auto& id : entryIds(b)) seen.push_back(id);
        const std::string n = link(b, "next");
        next = n.empty() ? std::string() : pathAndQuery(n);
        ++pages;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      stop.store(true);
      writer.join();
      std::set<std::string> unique(seen.begin(), seen.end());
      HT_EQ("no duplicates (" + sort + ")", unique.size(), seen.size());
      for (const std::string& id : before) {
        HT_ASSERT("pre-existing " + id + " seen once (" + sort + "), pages " + std::to_string(pages), unique.count(id) == 1);
      }
      HT_ASSERT("the writer ran during the walk", written.load() > 0);
      HT_ASSERT("several pages", pages > 5);
    }
  }

  void testTotalAndSummaryCount() {
    rapidjson::Document b = searchset("/fhir/Patient?family=mu");
    HT_ASSERT("total given when the first page holds everything", jptr(b, "/total") && jptr(b, "/total")->GetInt() == 2);
    b = searchset("/fhir/Observation?_count=2");
    HT_ASSERT("no total by default when more pages follow", !jptr(b, "/total"));
    b = searchset("/fhir/Observation?_count=2&_total=accurate");
    HT_ASSERT("_total=accurate", jptr(b, "/total") && jptr(b, "/total")->GetInt() == 5);
    HT_EQ("_total=accurate still pages", size_t(2), entryIds(b).size());
    b = searchset("/fhir/Observation?_count=2&_total=estimate");
    HT_ASSERT("_total=estimate", jptr(b, "/total") && jptr(b, "/total")->GetInt() == 5);
    b = searchset("/fhir/Observation?_total=none&code=1234");
    HT_ASSERT("_total=none", !jptr(b, "/total"));
    b = searchset("/fhir/Observation?_summary=count&code=1234,5678");
    HT_ASSERT("_summary=count total", jptr(b, "/total") && jptr(b, "/total")->GetInt() == 4);
    HT_ASSERT("_summary=count: no entries", !jptr(b, "/entry"));
    HT_ASSERT("_summary=count: no next", link(b, "next").empty());
    b = searchset("/fhir/Observation?_count=0");
    HT_ASSERT("_count=0 total", jptr(b, "/total") && jptr(b, "/total")->GetInt() == 5);
    HT_ASSERT("_count=0: no entries", !jptr(b, "/entry"));
    expect400("/fhir/Patient?_total=some");
    expect400("/fhir/Patient?_summary=maybe");
  }

  void testSummaryAndElements() {
    rapidjson::Document b = searchset("/fhir/Patient?_id=pat-a&_elements=name");
    const rapidjson::Value* res = jptr(b, "/entry/0/resource");
    HT_ASSERT("entry", res != nullptr);
    HT_ASSERT("_elements keeps name", jptr(*res, "/name") != nullptr);
    HT_ASSERT("_elements drops gender", jptr(*res, "/gender") == nullptr);
    HT_EQ("_elements keeps id", std::string("pat-a"), jstr(*res, "/id"));
    b = searchset("/fhir/Patient?_id=pat-a&_summary=true");
    res = jptr(b, "/entry/0/resource");
    HT_ASSERT("entry", res != nullptr);
    HT_ASSERT("_summary=true keeps name", jptr(*res, "/name") != nullptr);
    b = searchset("/fhir/Patient?_id=pat-a&_summary=false");
    HT_ASSERT("_summary=false is the whole resource", jptr(b, "/entry/0/resource/telecom") != nullptr);
  }

  void testIncludes() {
    rapidjson::Document b = searchset("/fhir/Observation?_id=obs-1&_include=Observation:subject");
    HT_EQ("match", std::string("obs-1"), joinIds(entryIds(b)));
    HT_EQ("include", std::string("Patient/pat-a"), joinIds(entryIds(b, "include", true)));
    b = searchset("/fhir/Patient?_id=pat-a&_revinclude=Observation:subject");
    HT_EQ("match", std::string("pat-a"), joinIds(entryIds(b)));
    auto inc = entryIds(b, "include", true);
    std::sort(inc.begin(), inc.end());
    HT_EQ("revinclude", std::string("Observation/obs-1,Observation/obs-3"), joinIds(inc));
    // Through a derived parameter (patient = subject.where(resolve() is Patient)).
    b = searchset("/fhir/Observation?_id=obs-1,obs-4&_include=Observation:patient");
    HT_EQ("match (patient)", std::string("obs-1,obs-4"), joinIds(entryIds(b)));
    HT_EQ("include (patient): not the Group", std::string("Patient/pat-a"), joinIds(entryIds(b, "include", true)));
    b = searchset("/fhir/Patient?_id=pat-a&_revinclude=Observation:patient");
    inc = entryIds(b, "include", true);
    std::sort(inc.begin(), inc.end());
    HT_EQ("revinclude (patient)", std::string("Observation/obs-1,Observation/obs-3"), joinIds(inc));
    b = searchset("/fhir/Group?_id=grp-1&_revinclude=Observation:patient");
    HT_EQ("revinclude (patient) of a Group", std::string(""), joinIds(entryIds(b, "include", true)));
    b = searchset("/fhir/Group?_id=grp-1&_revinclude=Observation:subject");
    HT_EQ("revinclude (subject) of a Group", std::string("Observation/obs-4"), joinIds(entryIds(b, "include", true)));
    expect400("/fhir/Patient?_include=garbage");
  }

  void testUnknownParameters() {
    rapidjson::Document b = searchset("/fhir/Patient?family=mu&nosuch=1&_text=x");
    HT_EQ("unknown ignored", std::string("pat-a,pat-b"), joinIds(entryIds(b)));
    const rapidjson::Value* outcome = nullptr;
    for (const auto& e : jptr(b, "/entry")->GetArray())
      if (jstr(e, "/search/mode") == "outcome") outcome = &e;
    HT_ASSERT("an outcome entry", outcome != nullptr);
    HT_EQ("outcome resource", std::string("OperationOutcome"), jstr(*outcome, "/resource/resourceType"));
    HT_EQ("severity", std::string("warning"), jstr(*outcome, "/resource/issue/0/severity"));
    std::string expressions;
    for (const auto& i : jptr(*outcome, "/resource/issue")->GetArray()) expressions += jstr(i, "/expression/0") + ";";
    HT_ASSERT("names the ignored parameters: " + expressions,
              expressions.find("nosuch") != std::string::npos && expressions.find("_text") != std::string::npos);
    HT_ASSERT("self link leaves them out", link(b, "self").find("nosuch") == std::string::npos);
    const Headers strict{{"Prefer", "handling=strict"}};
    auto oo = expect400("/fhir/Patient?family=mu&nosuch=1", strict);
    assertIssueExpression(oo, "nosuch", "nosuch", "strict unknown");
    expect400("/fhir/Patient?_text=x", strict);
    expect400("/fhir/Patient?_content=x", strict);
    searchset("/fhir/Patient?family=mu", {{"Prefer", "handling=lenient"}});
  }

  void testHostileParameters() {
    std::vector<std::string> paths = {
        "/fhir/Patient?family=%ff",
        "/fhir/Patient?family=%00",
        "/fhir/Patient?family=" + std::string(2000, 'a'),
        "/fhir/Patient?" + std::string(300, 'x') + "=1",
        "/fhir/Patient?birthdate=xx2020",
        "/fhir/Patient?birthdate=2020-99",
        "/fhir/RiskAssessment?probability=1e999",
        "/fhir/Patient?_count=-1",
        "/fhir/Patient?_count=abc",
        "/fhir/Patient?_count=99999999999999999999",
        "/fhir/Patient?_sort=-",
        "/fhir/Patient?_sort=family,given,birthdate,gender,address,name",
        "/fhir/Patient?_cursor=zzz",
        "/fhir/Patient?_cursor=%00%ff",
        "/fhir/Patient?_cursor=" + std::string(9000, 'A'),
        "/fhir/Observation?subject.organization.partof.partof.partof.partof.name=x",
        "/fhir/Patient?_has:Observation=1",
        "/fhir/Patient?_has:Observation:subject:_has:Observation:subject:_has:Observation:subject:_has:Observation:"
        "subject:_has:Observation:subject:code=1",
        "/fhir/Observation?subject=Patient/",
        "/fhir/Patient?identifier=a|b|c",
        "/fhir/Patient?_lastUpdated=ge2024-13-01",
        "/fhir?family=x",
        "/fhir?_type=Nothing",
        "/fhir/Patient?family:contains:exact=x",
        "/fhir/Patient?_id:below=x",
    };
    std::string many = "/fhir/Patient?";
    for (int i = 0; i < 60; ++i) many += "family=a&";
    paths.push_back(many);
    std::string ors = "/fhir/Patient?_id=";
    for (int i = 0; i < 150; ++i) ors += (i ? "," : "") + std::to_string(i);
    paths.push_back(ors);
    for (const std::string& p : paths) {
      HttpResponse r = http().get(p);
      HT_ASSERT("no 5xx for " + p.substr(0, 200) + ": " + r.describe(), r.status < 500);
      assertOperationOutcome(r, 400, p.substr(0, 200));
    }
    // Odd but valid: no error.
    for (const std::string& p : std::vector<std::string>{"/fhir/Patient?family:contains=" + enc("%_\\"),
                                                         "/fhir/Patient?family=" + enc("'; DROP TABLE x;--"),
                                                         "/fhir/Patient?family=" + enc("a\\,b"), "/fhir/Patient?_id="}) {
      HttpResponse r = http().get(p);
      assertStatus(200, r, p);
    }
  }

  void testCompartments() {
    check("obs-1,obs-3", "Patient/pat-a/Observation");
    check("obs-1", "Patient/pat-a/Observation?code=1234");
    check("", "Patient/pat-c/Observation");
    check("enc-1", "Patient/pat-a/Encounter");
    rapidjson::Document b = searchset("/fhir/Patient/pat-a/*");
    auto all = entryIds(b, "match", true);
    std::set<std::string> got(all.begin(), all.end());
    for (const char* expected : {"Observation/obs-1", "Observation/obs-3", "Encounter/enc-1", "RiskAssessment/ra-1"}) {
      HT_ASSERT(std::string("Patient/pat-a/* holds ") + expected, got.count(expected) == 1);
    }
    HT_ASSERT("Patient/pat-a/* leaves out others", got.count("Observation/obs-2") == 0);
    HT_ASSERT("links repeat the compartment path", link(b, "self").find("/Patient/pat-a/") != std::string::npos);
    expect400("/fhir/Encounter/enc-1/Observation");     // no Encounter compartment here
    expect400("/fhir/Patient/pat-a/Organization");      // not in the Patient compartment
  }

  void testSystemSearch() {
    rapidjson::Document b = searchset("/fhir?_id=pat-a,org-a");
    HT_EQ("system _id", std::string("Organization/org-a,Patient/pat-a"), joinIds(entryIds(b, "match", true)));
    b = searchset("/fhir?_type=Patient&family=mu");
    HT_EQ("_type + criteria", std::string("Patient/pat-a,Patient/pat-b"), joinIds(entryIds(b, "match", true)));
    b = searchset("/fhir?_type=Patient,Organization&_id=pat-a,org-a,org-b&_count=2");
    HT_EQ("two types, page 1", std::string("Organization/org-a,Organization/org-b"), joinIds(entryIds(b, "match", true)));
    b = searchset(pathAndQuery(link(b, "next")));
    HT_EQ("two types, page 2", std::string("Patient/pat-a"), joinIds(entryIds(b, "match", true)));
    HT_ASSERT("system self link", link(b, "self").rfind(base() + "?", 0) == 0);
  }

  void testPostSearch() {
    const Headers form{{"Content-Type", "application/x-www-form-urlencoded"}};
    HttpResponse r = http().post("/fhir/Patient/_search", "family=mu&_count=1&given=h%C3%A4ns,anna", form);
    assertStatus(200, r, "POST _search");
    rapidjson::Document b = r.json();
    HT_EQ("POST _search page", std::string("pat-a"), joinIds(entryIds(b)));
    const std::string next = link(b, "next");
    HT_ASSERT("next link is a GET with the form's parameters: " + next, next.find("family=mu") != std::string::npos);
    HT_EQ("next page", std::string("pat-b"), joinIds(entryIds(searchset(pathAndQuery(next)))));
    r = http().post("/fhir/_search", "_type=Observation&code=1234", form);
    assertStatus(200, r, "POST system _search");
    HT_EQ("system POST", std::string("Observation/obs-1,Observation/obs-4"), joinIds(entryIds(r.json(), "match", true)));
    r = http().post("/fhir/Patient/_search", "family=%zz", form);
    assertOperationOutcome(r, 400, "bad escape in form body");
    r = http().post("/fhir/Patient/_search", R"({"family":"mu"})", {{"Content-Type", "application/json"}});
    assertStatus(415, r, "POST _search with JSON");
  }

  void testXmlSearchset() {
    HttpResponse r = http().get("/fhir/Patient?family=mu&_format=xml&_elements=name,gender&nosuch=1");
    assertStatus(200, r, "xml searchset");
    HT_ASSERT("xml content type: " + r.header("Content-Type"),
              r.header("Content-Type").find("application/fhir+xml") != std::string::npos);
    HT_ASSERT("Bundle root", r.body.find("<Bundle xmlns=\"http://hl7.org/fhir\">") != std::string::npos);
    HT_ASSERT("searchset", r.body.find("<type value=\"searchset\"/>") != std::string::npos);
    HT_ASSERT("match entries", r.body.find("<mode value=\"match\"/>") != std::string::npos);
    HT_ASSERT("outcome entry", r.body.find("<mode value=\"outcome\"/>") != std::string::npos);
    HT_ASSERT("patients", r.body.find("<Patient") != std::string::npos);
    HT_ASSERT("names", r.body.find("<family value=\"M\xC3\xBCller\"/>") != std::string::npos);
  }

  void testWritesAreSearchable() {
    const std::string family = "Zed" + randomToken(6);
    HttpResponse r = http().post("/fhir/Patient", R"({"resourceType":"Patient","name":[{"family":")" + family + R"("}]})");
    assertStatus(201, r, "create");
    const std::string id = jstr(r.json(), "/id");
    check(id, "Patient?family=" + family);
    r = http().put("/fhir/Patient/" + id,
                   R"({"resourceType":"Patient","id":")" + id + R"(","name":[{"family":")" + family + R"(x"}],"gender":"other"})");
    assertStatus(200, r, "update");
    check(id, "Patient?family=" + family + "x&gender=other");
    check("", "Patient?family:exact=" + family);
    assertStatus(200, http().del("/fhir/Patient/" + id), "delete");
    check("", "Patient?family=" + family);
  }

  void testCapabilityStatement() {
    HttpResponse r = http().get("/fhir/metadata");
    assertStatus(200, r, "metadata");
    rapidjson::Document cs = r.json();
    std::set<std::string> system;
    for (const auto& i : jptr(cs, "/rest/0/interaction")->GetArray()) system.insert(jstr(i, "/code"));
    for (const char* code : {"transaction", "batch", "search-system", "history-system"})
      HT_ASSERT(std::string("system interaction ") + code, system.count(code) == 1);
    const rapidjson::Value* patient = nullptr;
    for (const auto& res : jptr(cs, "/rest/0/resource")->GetArray())
      if (jstr(res, "/type") == "Patient") patient = &res;
    HT_ASSERT("Patient listed", patient != nullptr);
    std::set<std::string> interactions;
    for (const auto& i : jptr(*patient, "/interaction")->GetArray()) interactions.insert(jstr(i, "/code"));
    HT_ASSERT("search-type", interactions.count("search-type") == 1);
    HT_ASSERT("patch", interactions.count("patch") == 1);
    std::map<std::string, std::string> params;
    for (const auto& p : jptr(*patient, "/searchParam")->GetArray()) params[jstr(p, "/name")] = jstr(p, "/type");
    HT_EQ("family", std::string("string"), params["family"]);
    HT_EQ("birthdate", std::string("date"), params["birthdate"]);
    HT_EQ("organization", std::string("reference"), params["organization"]);
    HT_EQ("_id", std::string("token"), params["_id"]);
    HT_ASSERT("no _text (not supported)", params.count("_text") == 0);
    std::set<std::string> revinc;
    for (const auto& v : jptr(*patient, "/searchRevInclude")->GetArray()) revinc.insert(v.GetString());
    HT_ASSERT("revinclude Observation:subject", revinc.count("Observation:subject") == 1);
    HT_EQ("conditionalDelete", std::string("single"), jstr(*patient, "/conditionalDelete"));
  }

  void testBodiesMatchSchema() {
    http().get("/fhir/metadata");
    assertBodiesMatchSchema(recorderFor(suiteName()).dir());
  }

 private:
  std::unique_ptr<HttpClient> client_;
};

class SearchHttpSqliteTest : public SearchHttpTest {
  CPPUNIT_TEST_SUB_SUITE(SearchHttpSqliteTest, SearchHttpTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  std::string backend() const override { return "sqlite"; }
};
CPPUNIT_TEST_SUITE_REGISTRATION(SearchHttpSqliteTest);

class SearchHttpPostgresTest : public SearchHttpTest {
  CPPUNIT_TEST_SUB_SUITE(SearchHttpPostgresTest, SearchHttpTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  std::string backend() const override { return "postgres"; }
};

namespace {
struct RegisterPostgresSuite {
  std::optional<CppUnit::AutoRegisterSuite<SearchHttpPostgresTest>> reg;
  RegisterPostgresSuite() {
    if (pgUrl())
      reg.emplace();
    else
      std::cerr << "[note] HEARTH_TEST_PG_URL not set: PostgreSQL search suite not run\n";
  }
} registerPostgresSuite;
}  // namespace
