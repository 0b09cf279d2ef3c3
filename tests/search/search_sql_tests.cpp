// White-box tests of the search parser and SQL builder (fhir/src/search_query.h): parameters are
// parsed against the R4 definitions, the SQL is run against a scratch database holding the logical
// schema with hand-written index rows, and the matching ids are checked. The same cases run on
// SQLite (in memory) and, with HEARTH_TEST_PG_URL, on a fresh PostgreSQL database. The plan tests
// load a few thousand resources and check with EXPLAIN that the indexes serve the criteria.
#include <cppunit/extensions/HelperMacros.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "hearth/fhir/search.h"
#include "search_db.h"
#include "search_query.h"

using namespace hearth::fhir;
using hearth::test::SearchDb;
namespace sq = hearth::fhir::searchq;
using namespace hearth::test;

namespace {

const std::string kBase = "http://h.test/fhir";
const std::string kV2 = "http://terminology.hl7.org/CodeSystem/v2-0203";
const std::string kLoinc = "http://loinc.org";
const std::string kUcum = "http://unitsofmeasure.org";

constexpr int64_t kDayUs = 86'400'000'000LL;

// The data set: three live patients and a deleted one, organizations, observations, risk
// assessments (numbers) and value sets (uris).
void seed(SearchDb& db) {
  db.begin();
  db.addResource("Organization", "o1", "2024-01-01T00:00:00.000Z",
                 {strRow("name", "acme hospital", "Acme Hospital"), tokRow("identifier", "urn:org", "A1")});
  db.addResource("Organization", "o2", "2024-01-01T00:00:00.000Z",
                 {strRow("name", "general clinic", "General Clinic"), refRow("partof", "Organization", "o1")});
  db.addResource("Patient", "p1", "2024-01-01T10:00:00.000Z",
                 {strRow("family", "muller", "Müller"), strRow("name", "muller", "Müller"),
                  strRow("given", "hans", "Hans"), strRow("name", "hans", "Hans"),
                  dateRow("birthdate", hearth::test::utc("1980-05-12T00:00:00"),
                          hearth::test::utc("1980-05-12T00:00:00") + kDayUs - 1),
                  tokRow("gender", "http://hl7.org/fhir/administrative-gender", "male"),
                  tokRow("identifier", "urn:sys1", "111", "medical record"),
                  tokRow("identifier:of-type", kV2, "MR|111"), refRow("organization", "Organization", "o1"),
                  tokRow("active", "", "true"), tokRow("_tag", "urn:tags", "vip")});
  db.addResource("Patient", "p2", "2024-02-01T10:00:00.000Z",
                 {strRow("family", "mueller", "Mueller"), strRow("name", "mueller", "Mueller"),
                  strRow("given", "anna", "Anna"), strRow("name", "anna", "Anna"),
                  dateRow("birthdate", hearth::test::utc("1990-01-01T00:00:00"),
                          hearth::test::utc("1991-01-01T00:00:00") - 1),
                  tokRow("gender", "http://hl7.org/fhir/administrative-gender", "female"),
                  tokRow("identifier", "urn:sys1", "222"), refRow("organization", "Organization", "o2"),
                  tokRow("active", "", "false")});
  db.addResource("Patient", "p3", "2024-03-01T10:00:00.000Z",
                 {strRow("family", "smith", "Smith"), strRow("name", "smith", "Smith"), strRow("given", "john", "John"),
                  strRow("given", "jon", "Jon"), tokRow("gender", "http://hl7.org/fhir/administrative-gender", "male"),
                  tokRow("identifier", "urn:sys2", "111"), tokRow("identifier", "", "333")});
  db.addResource("Patient", "p4", "2024-03-02T10:00:00.000Z", {}, true);  // deleted
  db.addResource("Observation", "ob1", "2024-01-15T10:30:00.000Z",
                 {refRow("subject", "Patient", "p1"),
                  tokRow("code", kLoinc, "1234", "glucose in blood"),
                  qtyRow("value-quantity", 5.4, kUcum, "mg", "mg"),
                  dateRow("date", hearth::test::utc("2024-01-15T10:30:00"), hearth::test::utc("2024-01-15T10:30:00"))});
  db.addResource("Observation", "ob2", "2024-01-15T10:30:00.000Z",
                 {refRow("subject", "Patient", "p2"), tokRow("code", kLoinc, "5678"),
                  qtyRow("value-quantity", 100, kUcum, "kg", "kg"),
                  dateRow("date", hearth::test::utc("2024-01-01T00:00:00"), hearth::test::utc("2024-02-01T00:00:00") - 1)});
  db.addResource("Observation", "ob3", "2024-01-15T10:30:00.000Z",
                 {refRow("subject", "Patient", "p1"), tokRow("code", kLoinc, "5678"),
                  tokRow("code", "urn:other", "x"), qtyRow("value-quantity", 99.7, kUcum, "kg", "kilogram"),
                  dateRow("date", hearth::test::utc("2023-01-01T00:00:00"), hearth::test::utc("2024-01-01T00:00:00") - 1)});
  db.addResource("Observation", "ob4", "2024-01-15T10:30:00.000Z",
                 {refRow("subject", "Group", "g1"), tokRow("code", "", "1234")});
  db.addResource("Observation", "ob5", "2024-01-15T10:30:00.000Z",
                 {refRow("subject", "Patient", "9", "http://other.org/fhir/Patient/9"),
                  qtyRow("value-quantity", 7, "", "", "pounds"), tokRow("component-code", kLoinc, "8480-6")});
  db.addResource("RiskAssessment", "ra1", "2024-01-01T00:00:00.000Z", {numRow("probability", 0.5)});
  db.addResource("RiskAssessment", "ra2", "2024-01-01T00:00:00.000Z", {numRow("probability", 100)});
  db.addResource("RiskAssessment", "ra3", "2024-01-01T00:00:00.000Z", {numRow("probability", 99.6)});
  db.addResource("ValueSet", "vs1", "2024-01-01T00:00:00.000Z", {uriRow("url", "http://acme.org/fhir/ValueSet/123")});
  db.addResource("ValueSet", "vs2", "2024-01-01T00:00:00.000Z", {uriRow("url", "http://acme.org/fhir/ValueSet/456")});
  db.addResource("ValueSet", "vs3", "2024-01-01T00:00:00.000Z", {uriRow("url", "http://other.org/x")});
  db.commit();
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

struct Page {
  std::vector<std::string> ids;
  std::optional<std::string> cursor;  // for the next page
};

}  // namespace

class SearchSqlTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(SearchSqlTest);
  CPPUNIT_TEST(testString);
  CPPUNIT_TEST(testToken);
  CPPUNIT_TEST(testDate);
  CPPUNIT_TEST(testLastUpdatedAndId);
  CPPUNIT_TEST(testNumber);
  CPPUNIT_TEST(testQuantity);
  CPPUNIT_TEST(testReference);
  CPPUNIT_TEST(testUri);
  CPPUNIT_TEST(testMissing);
  CPPUNIT_TEST(testChains);
  CPPUNIT_TEST(testHas);
  CPPUNIT_TEST(testSort);
  CPPUNIT_TEST(testPagingWithCursors);
  CPPUNIT_TEST(testSystemSearch);
  CPPUNIT_TEST(testCountAndMatchIds);
  CPPUNIT_TEST(testPlans);
  CPPUNIT_TEST_SUITE_END_ABSTRACT();

 protected:
  virtual SearchDb& db() = 0;

  sq::ParsedSearch parse(const std::string& type, const std::string& query, bool strict = false) {
    sq::ParseOptions opt;
    if (type.empty()) opt.systemLevel = true;
    else opt.types = {type};
    opt.strict = strict;
    opt.baseUrl = kBase;
    return sq::parseSearch(Model::r4(), parseSearchQuery(query), opt);
  }

  Page page(const std::string& type, const std::string& query) {
    const sq::ParsedSearch s = parse(type, query);
    const SqlQuery q = sq::buildPageQuery(s, db().dialect());
    std::vector<SqlRow> rows;
    try {
      rows = db().query(q);
    } catch (const std::exception& e) {
      CPPUNIT_FAIL(db().name() + " " + type + "?" + query + ": " + e.what());
    }
    Page p;
    for (size_t i = 0; i < rows.size() && i < static_cast<size_t>(s.count); ++i) {
      const std::string t = std::get<std::string>(rows[i].at(0));
      const std::string id = std::get<std::string>(rows[i].at(1));
      p.ids.push_back(type.empty() || type != t ? t + "/" + id : id);
    }
    if (rows.size() > static_cast<size_t>(s.count)) {
      const SqlRow& last = rows[static_cast<size_t>(s.count) - 1];
      sq::Cursor c;
      c.type = std::get<std::string>(last.at(0));
      c.id = std::get<std::string>(last.at(1));
      for (size_t k = 0; k < s.sort.size(); ++k) c.keys.push_back(last.at(3 + k));
      p.cursor = sq::encodeCursor(c, s.fingerprint);
    }
    return p;
  }

  std::string ids(const std::string& type, const std::string& query) { return join(page(type, query).ids); }

  void check(const std::string& expected, const std::string& type, const std::string& query) {
    CPPUNIT_ASSERT_EQUAL_MESSAGE(db().name() + ": " + type + "?" + query, expected, ids(type, query));
  }

  void check400(const std::string& type, const std::string& query, bool strict = false,
                const std::string& expression = {}) {
    try {
      parse(type, query, strict);
    } catch (const FhirError& e) {
      CPPUNIT_ASSERT_EQUAL_MESSAGE(type + "?" + query, 400, e.status());
      if (!expression.empty()) {
        CPPUNIT_ASSERT_EQUAL_MESSAGE(type + "?" + query + " expression", expression, e.issues().at(0).expression);
      }
      return;
    }
    CPPUNIT_FAIL("expected 400 for " + type + "?" + query);
  }

 public:
  void testString() {
    check("p1,p2", "Patient", "family=mu");
    check("p1,p2", "Patient", "family=MU");  // case-insensitive (normalised)
    check("p1", "Patient", "family=Mül");     // accent-insensitive
    check("p1", "Patient", "family:exact=Müller");
    check("", "Patient", "family:exact=muller");
    check("p2", "Patient", "family:contains=ell");
    check("p1,p2", "Patient", "family:contains=LL");
    check("", "Patient", "family:contains=%25");  // LIKE wildcards are literal
    check("p1,p2,p3", "Patient", "family=mu,sm");
    check("p2", "Patient", "family=mu&given=anna");
    check("p3", "Patient", "given=jo&given=joh");  // AND over repeats: one row each
    check("p1,p2", "Patient", "name=h,a");
    check("o1,o2", "Organization", "name=");  // an empty value is no criterion
    check400("Patient", "family:foo=x", false, "family:foo");
    check400("Patient", "family:text=x");
  }

  void testToken() {
    check("p1,p3", "Patient", "gender=male");
    check("p2", "Patient", "gender:not=male");
    check("p1,p2,p3", "Patient", "gender:not=other");
    check("p1", "Patient", "identifier=urn:sys1|111");
    check("p1,p3", "Patient", "identifier=111");
    check("p1,p2", "Patient", "identifier=urn:sys1|");
    check("p3", "Patient", "identifier=|333");
    check("", "Patient", "identifier=|111");
    check("p1", "Patient", "identifier:of-type=" + kV2 + "|MR|111");
    check("", "Patient", "identifier:of-type=" + kV2 + "|MR|222");
    check("p1", "Patient", "identifier:text=Medical");
    check("ob1", "Observation", "code:text=gluc");
    check("ob1,ob4", "Observation", "code=1234");
    check("ob2,ob3", "Observation", "code=" + kLoinc + "|5678");
    check("ob1,ob2,ob3", "Observation", "code=" + kLoinc + "|");
    check("ob1,ob2,ob3,ob4", "Observation", "code=1234,5678");
    check("ob3", "Observation", "code=5678&code=urn:other|x");
    // combo-code is code | component-code (search_index.h: read from both parameters' rows).
    check("ob1,ob4,ob5", "Observation", "combo-code=1234,8480-6");
    check("ob5", "Observation", "combo-code=" + kLoinc + "|8480-6&combo-code:missing=false");
    check("ob1,ob2,ob3", "Observation", "combo-code:not=" + kLoinc + "|8480-6&combo-code=" + kLoinc + "|");
    check("p1", "Patient", "active=true");
    check("p1", "Patient", "_tag=urn:tags|vip");
    check("p2,p3", "Patient", "_tag:not=urn:tags|vip");
    check400("Patient", "identifier:of-type=a|b");
    check400("Patient", "gender:in=http://x/vs");
    check400("Patient", "gender:below=x");
    check400("Patient", "gender:exact=x");
    check400("Patient", "identifier=a|b|c");
    check400("Patient", "gender:of-type=a|b|c");  // :of-type is for identifiers only
  }

  void testDate() {
    check("p1", "Patient", "birthdate=1980");
    check("p1", "Patient", "birthdate=1980-05-12");
    check("", "Patient", "birthdate=1980-05-13");
    check("p2", "Patient", "birthdate=ge1985");
    check("p1", "Patient", "birthdate=lt1985");
    check("p2", "Patient", "birthdate=ne1980-05-12");
    check("p2", "Patient", "birthdate=gt1980-05-12");
    check("p1,p2", "Patient", "birthdate=ge1980-05-12");
    check("p1,p2", "Patient", "birthdate=le1990-06");  // p2's year starts before June
    check("p1", "Patient", "birthdate=eb1990");
    check("p2", "Patient", "birthdate=sa1980");
    check("p1", "Patient", "birthdate=ap1980-05-13");
    check("ob1", "Observation", "date=2024-01-15");
    check("ob1,ob2", "Observation", "date=2024-01");
    check("ob1", "Observation", "date=2024-01-15T10:30");  // minute precision
    check("ob1", "Observation", "date=2024-01-15T11:30:00%2B01:00");
    check("ob2", "Observation", "date=gt2024-01-20");
    check("ob2,ob3", "Observation", "date=lt2024-01-10");
    check("ob1,ob2", "Observation", "date=sa2023-12-31");
    check("ob3", "Observation", "date=eb2024-01-01");
    check("ob1,ob2", "Observation", "date=ge2024-01-15");
    check("ob1,ob2,ob3", "Observation", "date=le2024-01-15");
    check("ob3", "Observation", "date=ne2024-01");
    check("ob1,ob2,ob3", "Observation", "date=ap2024-01-15");  // +-10% of the gap to now: reaches 2023
    check("ob1,ob2", "Observation", "date=ge2024-01-01&date=le2024-01-31");
    check400("Patient", "birthdate=xx1980", false, "birthdate");
    check400("Patient", "birthdate=1980-13");
    check400("Patient", "birthdate=garbage");
    check400("Patient", "birthdate=2021-02-30");
    check400("Patient", "birthdate=ge");
  }

  void testLastUpdatedAndId() {
    check("p2,p3", "Patient", "_lastUpdated=ge2024-02-01");
    check("p1", "Patient", "_lastUpdated=lt2024-02");
    check("p3", "Patient", "_lastUpdated=2024-03");
    check("p1", "Patient", "_lastUpdated=2024-01-01T10:00:00.000Z");
    check("p2", "Patient", "_lastUpdated=gt2024-01-01T10:00:00Z&_lastUpdated=lt2024-03");
    check("p1,p3", "Patient", "_id=p1,p3");
    check("", "Patient", "_id=p4");  // deleted
    check("p2", "Patient", "_id=p2&family=mue");
    check400("Patient", "_lastUpdated=yesterday");
    check400("Patient", "_id:not=p1");
  }

  void testNumber() {
    check("ra2,ra3", "RiskAssessment", "probability=100");
    check("ra2", "RiskAssessment", "probability=100.0");
    check("ra2,ra3", "RiskAssessment", "probability=1e2");
    check("ra1", "RiskAssessment", "probability=ne100");
    check("ra1", "RiskAssessment", "probability=le0.5");
    check("ra2", "RiskAssessment", "probability=gt99.6");
    check("ra2,ra3", "RiskAssessment", "probability=ge99.6");
    check("ra1", "RiskAssessment", "probability=lt99.6");
    check("ra2,ra3", "RiskAssessment", "probability=ap95");
    check("ra1,ra2", "RiskAssessment", "probability=0.5,100.0");
    check400("RiskAssessment", "probability=abc", false, "probability");
    check400("RiskAssessment", "probability=zz5");
    check400("RiskAssessment", "probability=1.");
  }

  void testQuantity() {
    check("ob1", "Observation", "value-quantity=5.4");
    check("ob2,ob3", "Observation", "value-quantity=100");
    check("ob2", "Observation", "value-quantity=100.0");
    check("ob2", "Observation", "value-quantity=gt99.8");
    check("ob1", "Observation", "value-quantity=5.4|" + kUcum + "|mg");
    check("", "Observation", "value-quantity=5.4|urn:other|mg");
    check("ob1", "Observation", "value-quantity=5.4||mg");
    check("ob2,ob3", "Observation", "value-quantity=100||kg");
    check("ob3", "Observation", "value-quantity=le100||kilogram");  // matches the unit too
    check("ob5", "Observation", "value-quantity=7||pounds");
    check("ob1,ob5", "Observation", "value-quantity=lt10");
    check("ob2,ob3", "Observation", "value-quantity=ap100");
    check400("Observation", "value-quantity=5.4|mg");
    check400("Observation", "value-quantity=5.4|" + kUcum + "|");
  }

  void testReference() {
    check("p1", "Patient", "organization=Organization/o1");
    check("p1", "Patient", "organization=o1");
    check("p1", "Patient", "organization:Organization=o1");
    check("p1", "Patient", "organization=" + kBase + "/Organization/o1");
    check("p1", "Patient", "organization=Organization/o1/_history/3");
    check("ob1,ob3", "Observation", "subject=Patient/p1");
    check("ob1,ob3", "Observation", "subject=p1");
    check("ob1,ob3", "Observation", "subject:Patient=p1");
    check("", "Observation", "subject:Group=p1");
    check("ob4", "Observation", "subject=Group/g1");
    check("ob5", "Observation", "subject=http://other.org/fhir/Patient/9");
    check("ob1,ob2,ob3", "Observation", "subject=p1,Patient/p2");
    // patient is subject.where(resolve() is Patient): read from subject's rows naming a Patient.
    check("ob1,ob3", "Observation", "patient=p1");
    check("ob2", "Observation", "patient=Patient/p2");
    check("ob5", "Observation", "patient=http://other.org/fhir/Patient/9");
    check("", "Observation", "patient=g1");  // Group/g1 is a subject, not a patient
    check("o2", "Organization", "partof=o1");
    check400("Patient", "organization=Patient/p1");           // not a target type of the parameter
    check400("Observation", "subject:Organization=o1");      // ditto, as a modifier
    check400("Observation", "subject:Patient=Group/g1");
    check400("Patient", "organization:below=o1");
  }

  void testUri() {
    check("vs1", "ValueSet", "url=http://acme.org/fhir/ValueSet/123");
    check("", "ValueSet", "url=http://acme.org/fhir/ValueSet");
    check("vs1,vs2", "ValueSet", "url:below=http://acme.org/fhir");
    check("vs1", "ValueSet", "url:above=http://acme.org/fhir/ValueSet/123/_history/2");
    check("", "ValueSet", "url:above=http://acme.org/fhir/ValueSet/12");
    check400("ValueSet", "url:contains=acme");
  }

  void testMissing() {
    check("p3", "Patient", "organization:missing=true");
    check("p1,p2", "Patient", "organization:missing=false");
    check("p3", "Patient", "birthdate:missing=true");
    check("p1,p2,p3", "Patient", "family:missing=false");
    check("", "Patient", "family:missing=true");
    check("p2,p3", "Patient", "_tag:missing=true");
    check("ob1,ob2,ob3,ob5", "Observation", "value-quantity:missing=false");
    check("vs1,vs2,vs3", "ValueSet", "url:missing=false");
    check("ra1,ra2,ra3", "RiskAssessment", "probability:missing=false");
    check("ob4", "Observation", "patient:missing=true");  // its subject is a Group
    check("ob1,ob2,ob3,ob5", "Observation", "patient:missing=false");
    check("ob5", "Observation", "code:missing=true");
    check("ob1,ob2,ob3,ob4,ob5", "Observation", "combo-code:missing=false");  // ob5: a component code
    check400("Patient", "family:missing=maybe");
  }

  void testChains() {
    check("p1", "Patient", "organization.name=acme");
    check("p2", "Patient", "organization:Organization.name=gen");
    check("ob1,ob3", "Observation", "subject:Patient.family=mul");
    check("ob2", "Observation", "subject.family=mue");  // Group/Device/Location have no family
    check("ob1,ob3", "Observation", "subject:Patient.organization.name=acme");
    check("ob2", "Observation", "subject.organization.partof=o1");
    check("ob2", "Observation", "subject.organization.partof.name=acme");
    check("ob1,ob3", "Observation", "subject._id=p1");
    check("ob1,ob3", "Observation", "patient.family=mul");
    check("ob1,ob3", "Observation", "subject.identifier=urn:sys1|111");
    check("ob2", "Observation", "subject.gender:not=male");  // Patients that exist and are not male
    check("ob1,ob2,ob3", "Observation", "subject.birthdate:missing=false");
    check("ob2", "Observation", "subject:Patient._lastUpdated=2024-02");
    check("ob1,ob3", "Observation", "subject:Patient.organization._has:Patient:organization:given=hans");
    check400("Observation", "subject.nosuchparam=x");
    check400("Observation", "code.name=x");  // only references chain
    check400("Observation", "subject:Organization.name=x");
    // Depth: four links are allowed, a fifth is refused.
    check("", "Observation", "subject:Patient.organization.partof.partof.name=x");
    check400("Observation", "subject:Patient.organization.partof.partof.partof.name=x", false,
             "subject:Patient.organization.partof.partof.partof.name");
  }

  void testHas() {
    check("p1", "Patient", "_has:Observation:subject:code=1234");
    check("p1", "Patient", "_has:Observation:patient:code=1234");
    check("p1,p2", "Patient", "_has:Observation:patient:code=5678");
    check("p1", "Patient", "_has:Observation:patient:code=5678&_has:Observation:patient:code=urn:other|x");
    check("o1", "Organization", "_has:Patient:organization:_has:Observation:subject:code=1234");
    check("o1", "Organization", "_has:Patient:organization:family=mul");
    check("o1", "Organization", "_has:Organization:partof:name=gen");
    check("p2", "Patient", "_has:Observation:subject:value-quantity=100.0");
    check400("Patient", "_has:Observation:code:code=1234");   // not a reference parameter
    check400("Patient", "_has:Observation:subject=1234");
    check400("Patient", "_has:Nothing:subject:code=1");
    check400("Organization", "_has:Observation:subject:code=1");  // subject never points at an Organization
  }

  void testSort() {
    check("p2,p1,p3", "Patient", "_sort=family");
    check("p3,p1,p2", "Patient", "_sort=-family");
    check("p1,p2,p3", "Patient", "_sort=birthdate");
    check("p2,p1,p3", "Patient", "_sort=-birthdate");  // missing last in both directions
    check("p2,p3,p1", "Patient", "_sort=gender,-_id");
    check("p3,p2,p1", "Patient", "_sort=-_lastUpdated");
    check("p1,p2,p3", "Patient", "_sort=_lastUpdated");
    check("p3,p2,p1", "Patient", "_sort=-_id");
    check("ob3,ob2,ob1,ob4,ob5", "Observation", "_sort=date");
    check("ob2,ob1,ob3,ob4,ob5", "Observation", "_sort=-date");  // by the end of each range
    check("ob1,ob5,ob3,ob2,ob4", "Observation", "_sort=value-quantity");
    check("ra1,ra3,ra2", "RiskAssessment", "_sort=probability");
    check("ob4,ob5,ob1,ob3,ob2", "Observation", "_sort=subject,_id");  // Group/g1 < Patient/9 < Patient/p1
    check("ob5,ob1,ob3,ob2,ob4", "Observation", "_sort=patient,_id");  // ob4's Group is no patient: last
    check400("Patient", "_sort=nosuch");
    check400("Patient", "_sort=,");
    check400("Patient", "_sort=a,b,c,d,e,f");
  }

  void testPagingWithCursors() {
    struct Case {
      std::string type, query, expected;
    };
    const std::vector<Case> cases = {
        {"Patient", "_count=1", "p1,p2,p3"},
        {"Patient", "_count=2&_sort=birthdate", "p1,p2,p3"},
        {"Patient", "_count=1&_sort=-birthdate", "p2,p1,p3"},
        {"Patient", "_count=1&_sort=gender,-_id", "p2,p3,p1"},
        {"Observation", "_count=2&_sort=subject,_id", "ob4,ob5,ob1,ob3,ob2"},
        {"Observation", "_count=1&_sort=-date", "ob2,ob1,ob3,ob4,ob5"},
        {"Observation", "_count=2&_sort=value-quantity", "ob1,ob5,ob3,ob2,ob4"},
        {"Observation", "_count=1&_sort=-_lastUpdated", "ob1,ob2,ob3,ob4,ob5"},
        {"", "_type=Patient,Organization&_count=2", "Organization/o1,Organization/o2,Patient/p1,Patient/p2,Patient/p3"},
        {"", "_type=Patient,Organization&_count=2&_sort=-_lastUpdated",
         "Patient/p3,Patient/p2,Patient/p1,Organization/o1,Organization/o2"},
    };
    for (const Case& c : cases) {
      std::vector<std::string> all;
      std::string query = c.query;
      for (int pages = 0; pages < 20; ++pages) {
        const Page p = page(c.type, query);
        all.insert(all.end(), p.ids.begin(), p.ids.end());
        if (!p.cursor) break;
        query = c.query + "&_cursor=" + *p.cursor;
      }
      CPPUNIT_ASSERT_EQUAL_MESSAGE(db().name() + " paging " + c.type + "?" + c.query, c.expected, join(all));
    }
    // A cursor only fits the search that minted it, and any change to it is detected.
    const Page first = page("Patient", "_count=1&_sort=family");
    CPPUNIT_ASSERT(first.cursor);
    check400("Patient", "_count=1&_sort=given&_cursor=" + *first.cursor, false, "_cursor");
    check400("Patient", "_count=1&_sort=family&family=m&_cursor=" + *first.cursor);
    parse("Patient", "_count=5&_sort=family&_cursor=" + *first.cursor);  // another page size is fine
    std::string tampered = *first.cursor;
    tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
    check400("Patient", "_count=1&_sort=family&_cursor=" + tampered);
    check400("Patient", "_cursor=zzz");
  }

  void testSystemSearch() {
    check("Organization/o1,Patient/p1", "", "_id=p1,o1");
    check("Patient/p1,Patient/p2", "", "_type=Patient&family=mu");
    check("Organization/o1,Patient/p1", "", "_type=Patient,Organization&_id=p1,o1");
    check("Organization/o1,Organization/o2", "", "_type=Patient,Organization&_lastUpdated=lt2024-01-01T01:00:00Z");
    check400("", "family=mu");  // needs _type
    check400("", "_type=Nothing");
    check400("", "_type=Patient,Organization&family=mu");  // Organization has no family
  }

  void testCountAndMatchIds() {
    auto count = [&](const std::string& type, const std::string& query) {
      const auto rows = db().query(sq::buildCountQuery(parse(type, query), db().dialect()));
      return std::get<int64_t>(rows.at(0).at(0));
    };
    CPPUNIT_ASSERT_EQUAL(int64_t(3), count("Patient", ""));
    CPPUNIT_ASSERT_EQUAL(int64_t(2), count("Patient", "family=mu&_count=1"));
    CPPUNIT_ASSERT_EQUAL(int64_t(5), count("", "_type=Patient,Organization"));
    sq::ParseOptions opt;
    opt.types = {"Patient"};
    opt.criteriaOnly = true;
    opt.strict = true;
    const auto s = sq::parseSearch(Model::r4(), parseSearchQuery("identifier=111"), opt);
    const auto rows = db().query(sq::buildMatchIdsQuery(s, db().dialect(), 1));
    CPPUNIT_ASSERT_EQUAL(size_t(1), rows.size());
    CPPUNIT_ASSERT_EQUAL(std::string("p1"), std::get<std::string>(rows[0][0]));
    // The fast form of a one-parameter criterion (straight from the index table, de-duplicated by
    // the caller) finds exactly what the general form finds; other shapes have no fast form.
    auto ids = [](const std::vector<SqlRow>& rs) {
      std::vector<std::string> v;
      for (const auto& r : rs) v.push_back(std::get<std::string>(r.at(0)));
      std::sort(v.begin(), v.end());
      v.erase(std::unique(v.begin(), v.end()), v.end());
      return v;
    };
    for (const char* q : {"identifier=111", "family=mu", "family=mu,zz", "given=nobody", "gender=female"}) {
      const auto ps = sq::parseSearch(Model::r4(), parseSearchQuery(q), opt);
      const auto fast = sq::buildMatchIdsFastQuery(ps, db().dialect(), 100);
      CPPUNIT_ASSERT_MESSAGE(q, fast.has_value());
      CPPUNIT_ASSERT_MESSAGE(q, ids(db().query(*fast)) == ids(db().query(sq::buildMatchIdsQuery(ps, db().dialect(), 100))));
    }
    for (const char* q : {"identifier:not=111", "identifier=111&family=mu", "_id=p1", "family:missing=true"}) {
      const auto ps = sq::parseSearch(Model::r4(), parseSearchQuery(q), opt);
      CPPUNIT_ASSERT_MESSAGE(q, !sq::buildMatchIdsFastQuery(ps, db().dialect(), 100).has_value());
    }
    for (const char* bad : {"_count=1", "nosuch=1", "_sort=family", "_text=x"}) {
      try {
        sq::parseSearch(Model::r4(), parseSearchQuery(bad), opt);
        CPPUNIT_FAIL(std::string("criteria-only accepted ") + bad);
      } catch (const FhirError& e) {
        CPPUNIT_ASSERT_EQUAL(400, e.status());
      }
    }
  }

  // With a few thousand resources and fresh statistics, the planners must drive selective
  // criteria from the value indexes and never scan the index tables or resource_current whole.
  void testPlans() {
    auto big = makeBigDb();
    if (!big) return;
    SearchDb& d = *big;
    struct Case {
      std::string type, query;
      // At least one of these indexes serves the criteria. A reference may be looked up by its
      // target first (search_reference_target) when the parameter alone is not selective.
      std::vector<std::string> anyOf;
    };
    const bool pg = d.dialect() == SqlDialect::Postgres;
    const std::vector<Case> cases = {
        {"Patient", "family=fam12", {"search_string_value"}},
        {"Patient", "identifier=urn:mrn|1234", {"search_token_value"}},
        {"Patient", "identifier=urn:mrn|1234&_sort=-_lastUpdated", {"search_token_value"}},
        {"Patient", "birthdate=ge2007-06-01T00:00", {"search_date_hi", "search_date_lo", "search_date_resource"}},
        {"Patient", "birthdate=lt1950-06-01T00:00", {"search_date_lo"}},
        {"Patient", "given=g7&gender=male", {"search_string_value", "search_token_value"}},
        {"Observation", "subject=Patient/pt77&code=http://loinc.org|c1", {"search_reference_value", "search_reference_target"}},
        {"Observation", "subject=pt77", {"search_reference_value", "search_reference_target"}},
        {"Observation", "subject=Patient/pt77&date=ge2020-02-01T00:00", {"search_reference_value", "search_reference_target"}},
        {"Observation", "subject:Patient.identifier=urn:mrn|1234", {"search_token_value"}},
        {"Observation", "subject.family=fam77", {"search_string_value"}},
        {"Patient", "_has:Observation:subject:code=http://loinc.org|rare", {"search_token_value"}},
        {"Patient", "_lastUpdated=ge2024-12-30T00:00", {"resource_current_type_updated"}},
        {"Patient", "_id=pt5", {"PRIMARY KEY", "resource_current_pkey"}},
        {"Patient", "family=fam1&_sort=birthdate", {"search_string_value"}},
    };
    std::string failures;
    for (const Case& c : cases) {
      const sq::ParsedSearch s = parse(c.type, c.query);
      const std::string plan = d.plan(sq::buildPageQuery(s, d.dialect()));
      if (std::getenv("HEARTH_TEST_SHOW_PLANS")) std::cerr << "\n[plan " << d.name() << "] " << c.type << "?" << c.query << "\n" << plan;
      bool used = false;
      for (const std::string& idx : c.anyOf) used = used || plan.find(idx) != std::string::npos;
      if (!used) failures += "\n" + c.query + " uses none of the expected indexes:\n" + plan;
      // No full scan of a table: PostgreSQL "Seq Scan", SQLite "SCAN <alias>" without an index.
      std::istringstream lines(plan);
      for (std::string line; std::getline(lines, line);) {
        const bool seq = pg ? line.find("Seq Scan") != std::string::npos
                            : line.find("SCAN ") != std::string::npos && line.find("USING") == std::string::npos &&
                                  line.find("SUBQUERY") == std::string::npos && line.find("CONSTANT ROW") == std::string::npos;
        if (seq) failures += "\n" + c.query + " scans a table: " + line + "\n" + plan;
      }
    }
    CPPUNIT_ASSERT_MESSAGE(d.name() + ":" + failures, failures.empty());
  }

  virtual std::unique_ptr<SearchDb> makeBig() = 0;

  std::unique_ptr<SearchDb> makeBigDb() {
    std::unique_ptr<SearchDb> d = makeBig();
    if (!d) return d;
    d->begin();
    for (int i = 0; i < 3000; ++i) {
      const std::string id = "pt" + std::to_string(i);
      char lu[40];
      std::snprintf(lu, sizeof lu, "2024-%02d-%02dT00:00:00.000Z", 1 + i % 12, 1 + i % 28);
      d->addResource("Patient", id, lu,
                     {strRow("family", "fam" + std::to_string(i), "Fam"), strRow("given", "g" + std::to_string(i % 50), "G"),
                      tokRow("identifier", "urn:mrn", std::to_string(i)), tokRow("gender", "g", i % 2 ? "male" : "female"),
                      dateRow("birthdate", utc("1950-01-01T00:00:00") + int64_t(i) * 7 * kDayUs,
                              utc("1950-01-01T00:00:00") + int64_t(i) * 7 * kDayUs + kDayUs - 1)});
      for (int k = 0; k < 3; ++k) {
        d->addResource("Observation", "obs" + std::to_string(i) + "-" + std::to_string(k), lu,
                       {refRow("subject", "Patient", id),
                        tokRow("code", "http://loinc.org", i == 42 && k == 0 ? "rare" : "c" + std::to_string(k)),
                        dateRow("date", utc("2020-01-01T00:00:00") + int64_t(i) * kDayUs,
                                utc("2020-01-01T00:00:00") + int64_t(i) * kDayUs)});
      }
    }
    d->commit();
    d->analyze();
    return d;
  }
};

class SearchSqlSqliteTest : public SearchSqlTest {
  CPPUNIT_TEST_SUB_SUITE(SearchSqlSqliteTest, SearchSqlTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  SearchDb& db() override {
    static std::unique_ptr<SearchDb> d = [] {
      auto x = openSqliteSearchDb();
      seed(*x);
      return x;
    }();
    return *d;
  }
  std::unique_ptr<SearchDb> makeBig() override { return openSqliteSearchDb(); }
};
CPPUNIT_TEST_SUITE_REGISTRATION(SearchSqlSqliteTest);

class SearchSqlPostgresTest : public SearchSqlTest {
  CPPUNIT_TEST_SUB_SUITE(SearchSqlPostgresTest, SearchSqlTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  SearchDb& db() override {
    static std::unique_ptr<SearchDb> d = [] {
      auto x = openPostgresSearchDb();
      seed(*x);
      return x;
    }();
    return *d;
  }
  std::unique_ptr<SearchDb> makeBig() override { return openPostgresSearchDb(); }
};

namespace {
struct RegisterPostgres {
  std::optional<CppUnit::AutoRegisterSuite<SearchSqlPostgresTest>> reg;
  RegisterPostgres() {
    if (const char* u = std::getenv("HEARTH_TEST_PG_URL"); u && *u)
      reg.emplace();
    else
      std::cerr << "[note] HEARTH_TEST_PG_URL not set: PostgreSQL SQL tests not run\n";
  }
} registerPostgres;

// Parser-only cases (no database).
class SearchParseTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(SearchParseTest);
  CPPUNIT_TEST(testFormDecoding);
  CPPUNIT_TEST(testHelpers);
  CPPUNIT_TEST(testUnknownParameters);
  CPPUNIT_TEST(testLimits);
  CPPUNIT_TEST(testResultParameters);
  CPPUNIT_TEST_SUITE_END();

  static sq::ParsedSearch parse(const std::string& type, const SearchParams& params, bool strict = false) {
    sq::ParseOptions opt;
    opt.types = {type};
    opt.strict = strict;
    return sq::parseSearch(Model::r4(), params, opt);
  }
  static int status(const std::string& type, const SearchParams& params, bool strict = false) {
    try {
      parse(type, params, strict);
      return 200;
    } catch (const FhirError& e) {
      return e.status();
    }
  }

 public:
  void testFormDecoding() {
    const SearchParams p = parseSearchQuery("a=1&b=x%7Cy&c=hello+world&&d&e=%C3%BC&f=a%2Bb");
    CPPUNIT_ASSERT_EQUAL(size_t(6), p.size());
    CPPUNIT_ASSERT_EQUAL(std::string("x|y"), p[1].second);
    CPPUNIT_ASSERT_EQUAL(std::string("hello world"), p[2].second);
    CPPUNIT_ASSERT_EQUAL(std::string("d"), p[3].first);
    CPPUNIT_ASSERT_EQUAL(std::string(""), p[3].second);
    CPPUNIT_ASSERT_EQUAL(std::string("\xC3\xBC"), p[4].second);
    CPPUNIT_ASSERT_EQUAL(std::string("a+b"), p[5].second);
    for (const char* bad : {"a=%", "a=%4", "a=%zz", "%g0=1"}) {
      try {
        parseSearchQuery(bad);
        CPPUNIT_FAIL(std::string("accepted ") + bad);
      } catch (const FhirError& e) {
        CPPUNIT_ASSERT_EQUAL(400, e.status());
      }
    }
  }

  void testHelpers() {
    CPPUNIT_ASSERT_EQUAL(std::string("ab"), *sq::prefixUpperBound("aa"));
    CPPUNIT_ASSERT_EQUAL(std::string("m\xC3\xBD"), *sq::prefixUpperBound("m\xC3\xBC"));
    CPPUNIT_ASSERT_EQUAL(std::string("\xEE\x80\x80"), *sq::prefixUpperBound("\xED\x9F\xBF"));  // skips surrogates
    CPPUNIT_ASSERT_EQUAL(std::string("b"), *sq::prefixUpperBound("a\xF4\x8F\xBF\xBF"));
    CPPUNIT_ASSERT(!sq::prefixUpperBound(""));
    const auto parts = sq::splitEscaped("a\\,b,c\\|d|e", ',');
    CPPUNIT_ASSERT_EQUAL(size_t(2), parts.size());
    CPPUNIT_ASSERT_EQUAL(std::string("a,b"), sq::unescapeValue(parts[0]));
    CPPUNIT_ASSERT_EQUAL(std::string("c|d|e"), sq::unescapeValue(parts[1]));
    CPPUNIT_ASSERT_EQUAL(std::string("a\\b"), sq::unescapeValue("a\\\\b"));
    CPPUNIT_ASSERT_EQUAL(std::string("2024-01-31T12:00:00.123Z"), sq::instantText(utc("2024-01-31T12:00:00") + 123456));
    CPPUNIT_ASSERT_EQUAL(std::string("1969-12-31T23:59:59.999Z"), sq::instantText(-1));
    CPPUNIT_ASSERT_EQUAL(std::string("9999-12-31T23:59:59.999Z"), sq::instantText(INT64_MAX));
    CPPUNIT_ASSERT_EQUAL(std::string("a%7Cb%20c,d:e/f"), sq::encodeQueryComponent("a|b c,d:e/f"));
  }

  void testUnknownParameters() {
    auto s = parse("Patient", {{"nosuch", "1"}, {"family", "x"}, {"_text", "y"}, {"_contained", "true"}});
    CPPUNIT_ASSERT_EQUAL(size_t(3), s.warnings.size());
    CPPUNIT_ASSERT_EQUAL(std::string("nosuch"), s.warnings[0].expression);
    CPPUNIT_ASSERT_EQUAL(size_t(1), s.linkParams.size());  // ignored ones are not repeated in links
    CPPUNIT_ASSERT_EQUAL(std::string("family"), s.linkParams[0].first);
    CPPUNIT_ASSERT_EQUAL(400, status("Patient", {{"nosuch", "1"}}, true));
    CPPUNIT_ASSERT_EQUAL(400, status("Patient", {{"_text", "x"}}, true));
    CPPUNIT_ASSERT_EQUAL(400, status("Patient", {{"_content", "x"}}, true));
    CPPUNIT_ASSERT_EQUAL(200, status("Patient", {{"_text", "x"}}, false));
    CPPUNIT_ASSERT_EQUAL(200, status("Observation", {{"code-value-quantity", "x$1"}}, false));  // composite: ignored
    CPPUNIT_ASSERT_EQUAL(400, status("Observation", {{"code-value-quantity", "x$1"}}, true));
    CPPUNIT_ASSERT_EQUAL(200, status("Patient", {{"_format", "xml"}, {"_pretty", "true"}}, true));
  }

  void testLimits() {
    SearchParams many;
    for (int i = 0; i < 51; ++i) many.emplace_back("family", "x");
    CPPUNIT_ASSERT_EQUAL(400, status("Patient", many));
    many.pop_back();
    CPPUNIT_ASSERT_EQUAL(200, status("Patient", many));
    CPPUNIT_ASSERT_EQUAL(400, status("Patient", {{"family", std::string(1025, 'a')}}));
    CPPUNIT_ASSERT_EQUAL(200, status("Patient", {{"family", std::string(1024, 'a')}}));
    CPPUNIT_ASSERT_EQUAL(400, status("Patient", {{std::string(2000, 'a'), "1"}}));
    std::string ors;
    for (int i = 0; i < 101; ++i) ors += (i ? "," : "") + std::to_string(i);
    CPPUNIT_ASSERT_EQUAL(400, status("Patient", {{"_id", ors}}));
    CPPUNIT_ASSERT_EQUAL(400, status("Patient", {{"family", "\xff"}}));
    CPPUNIT_ASSERT_EQUAL(400, status("Patient", {{"family", std::string("a\0b", 3)}}));
    CPPUNIT_ASSERT_EQUAL(400, status("Patient", {{"fam\xc3", "x"}}));
    std::string deep = "_has:Patient:link:";
    CPPUNIT_ASSERT_EQUAL(400, status("Patient", {{deep + deep + deep + deep + deep + "family", "x"}}));
    CPPUNIT_ASSERT_EQUAL(200, status("Patient", {{deep + deep + deep + deep + "family", "x"}}));
  }

  void testResultParameters() {
    auto s = parse("Patient", {{"_count", "5"}, {"_total", "accurate"}, {"_summary", "count"}, {"_elements", "id,name"}});
    CPPUNIT_ASSERT_EQUAL(5, s.count);
    CPPUNIT_ASSERT_EQUAL(std::string("accurate"), s.total);
    CPPUNIT_ASSERT_EQUAL(std::string("count"), s.summary);
    CPPUNIT_ASSERT_EQUAL(std::string("id,name"), s.elements);
    CPPUNIT_ASSERT_EQUAL(1000, parse("Patient", {{"_count", "5000"}}).count);  // capped at maxCount
    CPPUNIT_ASSERT_EQUAL(0, parse("Patient", {{"_count", "0"}}).count);
    for (const auto& [k, v] : SearchParams{{"_count", "-1"}, {"_count", "abc"}, {"_count", "99999999999999"},
                                           {"_total", "some"}, {"_summary", "maybe"}, {"_sort:x", "family"}}) {
      CPPUNIT_ASSERT_EQUAL_MESSAGE(k + "=" + v, 400, status("Patient", {{k, v}}));
    }
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(SearchParseTest);
}  // namespace
