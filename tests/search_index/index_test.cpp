// SearchIndexTest: the rows SearchIndexer::extract produces for the R4 search parameters, as the
// search tables will store them and a user's search will find them; normalizeSearchString and
// fhirDateRange on their own. Expected date ranges are computed with timegm(), independently of
// the code under test.
#include <cppunit/extensions/HelperMacros.h>
#include <dirent.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "hearth/fhir/model.h"
#include "hearth/fhir/search_index.h"

using hearth::fhir::fhirDateRange;
using hearth::fhir::IndexKind;
using hearth::fhir::IndexRow;
using hearth::fhir::Model;
using hearth::fhir::normalizeSearchString;
using hearth::fhir::SearchIndexer;
using hearth::fhir::SearchParamDef;

namespace {

std::string sourceDir() {
  const char* env = std::getenv("HEARTH_SOURCE_DIR");
  return env && *env ? env : HEARTH_SOURCE_DIR_DEFAULT;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) CPPUNIT_FAIL("cannot read " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<std::string> jsonFilesIn(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (!d) CPPUNIT_FAIL("cannot list " + dir);
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() > 5 && name.substr(name.size() - 5) == ".json") out.push_back(dir + "/" + name);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::unique_ptr<rapidjson::Document> parse(const std::string& json) {
  auto doc = std::make_unique<rapidjson::Document>();
  doc->Parse<rapidjson::kParseValidateEncodingFlag>(json.data(), json.size());
  if (doc->HasParseError()) CPPUNIT_FAIL("test JSON does not parse: " + json.substr(0, 80));
  return doc;
}

// Calls check(file, resource) for every example resource of tests/model/examples (and official/),
// the entries of example Bundles included.
template <class Check>
void forEachExample(Check&& check) {
  const std::string root = sourceDir() + "/tests/model/examples";
  for (const std::string& dir : {root, root + "/official"}) {
    for (const std::string& file : jsonFilesIn(dir)) {
      auto doc = parse(readFile(file));
      check(file, *doc);
      if (std::string((*doc)["resourceType"].GetString()) == "Bundle" && doc->HasMember("entry")) {
        for (const auto& entry : (*doc)["entry"].GetArray()) {
          if (entry.HasMember("resource")) check(file + " (entry)", entry["resource"]);
        }
      }
    }
  }
}

std::unique_ptr<rapidjson::Document> example(const std::string& file) {
  return parse(readFile(sourceDir() + "/tests/model/examples/" + file));
}

// One indexer for the whole suite, as the server keeps one.
const SearchIndexer& indexer() {
  static const SearchIndexer instance(Model::r4());
  return instance;
}

std::vector<IndexRow> rowsOf(const rapidjson::Value& resource) {
  return indexer().extract(resource["resourceType"].GetString(), resource);
}

std::vector<IndexRow> withParam(const std::vector<IndexRow>& rows, const std::string& param) {
  std::vector<IndexRow> out;
  for (const IndexRow& r : rows) {
    if (r.param == param) out.push_back(r);
  }
  return out;
}

// The rows a search for `code` of `type` reads (its own, or those it is derived from:
// search_index.h), named `code`.
std::vector<IndexRow> searchedRows(const std::vector<IndexRow>& rows, const std::string& type, const std::string& code) {
  std::vector<IndexRow> out;
  for (const IndexRow& r : rows) {
    if (!hearth::fhir::rowOfParam(type, code, r.param, r.refType)) continue;
    out.push_back(r);
    out.back().param = code;
  }
  return out;
}

const char* kindName(IndexKind k) {
  static const char* const kNames[] = {"String", "Token", "Date", "Number", "Quantity", "Reference", "Uri"};
  return kNames[static_cast<int>(k)];
}

std::string describe(const IndexRow& r) {
  std::ostringstream o;
  o << kindName(r.kind) << " " << r.param;
  if (!r.system.empty()) o << " system=" << r.system;
  if (!r.code.empty()) o << " code=" << r.code;
  if (!r.text.empty()) o << " text=" << r.text;
  if (!r.exact.empty()) o << " exact=" << r.exact;
  if (!r.unit.empty()) o << " unit=" << r.unit;
  if (!r.refType.empty() || !r.refId.empty()) o << " target=" << r.refType << "/" << r.refId;
  if (!r.url.empty()) o << " url=" << r.url;
  if (r.kind == IndexKind::Date) o << " lo=" << r.lo << " hi=" << r.hi;
  if (r.kind == IndexKind::Number || r.kind == IndexKind::Quantity) o << " value=" << r.value;
  return o.str();
}

std::string describe(const std::vector<IndexRow>& rows) {
  std::string s;
  for (const IndexRow& r : rows) s += "\n  " + describe(r);
  return s;
}

IndexRow stringRow(const std::string& param, const std::string& text, const std::string& exact) {
  IndexRow r;
  r.kind = IndexKind::String;
  r.param = param;
  r.text = text;
  r.exact = exact;
  return r;
}

IndexRow tokenRow(const std::string& param, const std::string& system, const std::string& code,
                  const std::string& text = "") {
  IndexRow r;
  r.kind = IndexKind::Token;
  r.param = param;
  r.system = system;
  r.code = code;
  r.text = text;
  return r;
}

IndexRow referenceRow(const std::string& param, const std::string& type, const std::string& id,
                      const std::string& url) {
  IndexRow r;
  r.kind = IndexKind::Reference;
  r.param = param;
  r.refType = type;
  r.refId = id;
  r.url = url;
  return r;
}

IndexRow dateRow(const std::string& param, int64_t lo, int64_t hi) {
  IndexRow r;
  r.kind = IndexKind::Date;
  r.param = param;
  r.lo = lo;
  r.hi = hi;
  return r;
}

IndexRow quantityRow(const std::string& param, double value, const std::string& system, const std::string& code,
                     const std::string& unit) {
  IndexRow r;
  r.kind = IndexKind::Quantity;
  r.param = param;
  r.value = value;
  r.system = system;
  r.code = code;
  r.unit = unit;
  return r;
}

IndexRow uriRow(const std::string& param, const std::string& text) {
  IndexRow r;
  r.kind = IndexKind::Uri;
  r.param = param;
  r.text = text;
  return r;
}

// The rows of `param` are exactly `expected`, in any order.
void assertRows(const std::vector<IndexRow>& all, const std::string& param, std::vector<IndexRow> expected) {
  std::vector<IndexRow> actual = withParam(all, param);
  const std::string message = "rows of " + param + ":" + describe(actual) + "\nexpected:" + describe(expected);
  CPPUNIT_ASSERT_EQUAL_MESSAGE(message, expected.size(), actual.size());
  for (const IndexRow& e : expected) {
    CPPUNIT_ASSERT_MESSAGE(message + "\nmissing: " + describe(e),
                           std::find(actual.begin(), actual.end(), e) != actual.end());
  }
}

// Epoch microseconds of a UTC civil time, by the C library.
int64_t utcMicros(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<int64_t>(timegm(&tm)) * 1000000;
}

constexpr int64_t kSecond = 1000000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

std::pair<int64_t, int64_t> range(const std::string& text) {
  int64_t lo = 0, hi = 0;
  CPPUNIT_ASSERT_MESSAGE("fhirDateRange rejected " + text, fhirDateRange(text, lo, hi));
  return {lo, hi};
}

bool rejected(const std::string& text) {
  int64_t lo = 0, hi = 0;
  return !fhirDateRange(text, lo, hi);
}

// CPU time of the calling thread: unlike wall time, not inflated by other processes.
double threadCpuMicros() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

bool sanitized() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

}  // namespace

class SearchIndexTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(SearchIndexTest);
  CPPUNIT_TEST(testPatientNames);
  CPPUNIT_TEST(testPatientIdentifiersAndTelecom);
  CPPUNIT_TEST(testPatientDatesTokensAddressAndReferences);
  CPPUNIT_TEST(testMetaTagProfileSecurity);
  CPPUNIT_TEST(testObservationCodeSubjectValueCategory);
  CPPUNIT_TEST(testObservationEffectivePeriodAndAbsoluteSubject);
  CPPUNIT_TEST(testObservationContainedSubjectIsNotIndexed);
  CPPUNIT_TEST(testConceptTextRowOnlyWhenNew);
  CPPUNIT_TEST(testEncounterAndAppointmentDates);
  CPPUNIT_TEST(testMedicationRequest);
  CPPUNIT_TEST(testDiagnosticReportResults);
  CPPUNIT_TEST(testInvoiceMoney);
  CPPUNIT_TEST(testCanonicalAndOtherReferences);
  CPPUNIT_TEST(testNumberAndTimingAndStringLeaves);
  CPPUNIT_TEST(testOddJsonDoesNotThrow);
  CPPUNIT_TEST(testEveryExampleGivesConsistentRows);
  CPPUNIT_TEST(testDerivedParamsFromTheDefinitions);
  CPPUNIT_TEST(testDerivedRowsEqualTheDefinitions);
  CPPUNIT_TEST(testKindOf);
  CPPUNIT_TEST(testNormalizeSearchString);
  CPPUNIT_TEST(testFhirDateRangePrecisions);
  CPPUNIT_TEST(testFhirDateRangeOffsetsAndFractions);
  CPPUNIT_TEST(testFhirDateRangeRejects);
  CPPUNIT_TEST(testConcurrentExtraction);
  CPPUNIT_TEST(testIndexingTime);
  CPPUNIT_TEST_SUITE_END();

 public:
  // ---- Patient ---------------------------------------------------------------------------

  void testPatientNames() {
    auto doc = example("patient.json");
    const auto rows = rowsOf(*doc);
    // Two names with "Jane" as given: the repeated value is one row.
    assertRows(rows, "family", {stringRow("family", "doe", "Doe"), stringRow("family", "roe", "Roe")});
    assertRows(rows, "given", {stringRow("given", "jane", "Jane"), stringRow("given", "quinn", "Quinn"),
                               stringRow("given", "janie", "Janie")});
    // name: family, given, prefix and text of every HumanName.
    assertRows(rows, "name",
               {stringRow("name", "doe", "Doe"), stringRow("name", "jane", "Jane"), stringRow("name", "quinn", "Quinn"),
                stringRow("name", "ms.", "Ms."), stringRow("name", "jane quinn doe", "Jane Quinn Doe"),
                stringRow("name", "roe", "Roe"), stringRow("name", "janie", "Janie")});
    // Accented names are searchable unaccented, and keep their spelling for :exact.
    auto accented = parse(R"({"resourceType":"Patient","name":[{"family":"Müller-Lüdenscheidt",
        "given":["ÉLODIE","  Zoë  Anne "],"suffix":["Jr."]}]})");
    const auto arows = rowsOf(*accented);
    assertRows(arows, "family", {stringRow("family", "muller-ludenscheidt", "Müller-Lüdenscheidt")});
    assertRows(arows, "given",
               {stringRow("given", "elodie", "ÉLODIE"), stringRow("given", "zoe anne", "  Zoë  Anne ")});
    CPPUNIT_ASSERT_EQUAL(size_t(4), withParam(arows, "name").size());  // family, 2 given, suffix
  }

  void testPatientIdentifiersAndTelecom() {
    auto doc = example("patient.json");
    const auto rows = rowsOf(*doc);
    const std::string v2 = "http://terminology.hl7.org/CodeSystem/v2-0203";
    assertRows(rows, "identifier",
               {tokenRow("identifier", "http://hearth.example.org/fhir/sid/mrn", "000123456", "mrn"),
                tokenRow("identifier", "http://hl7.org/fhir/sid/us-ssn", "999-45-6789")});
    assertRows(rows, "identifier:of-type", {tokenRow("identifier:of-type", v2, "MR|000123456"),
                                            tokenRow("identifier:of-type", v2, "SS|999-45-6789")});
    assertRows(rows, "telecom",
               {tokenRow("telecom", "phone", "+1 555 013 4455"), tokenRow("telecom", "phone", "+1 555 013 9000"),
                tokenRow("telecom", "email", "jane.doe@example.com")});
    assertRows(rows, "phone",
               {tokenRow("phone", "phone", "+1 555 013 4455"), tokenRow("phone", "phone", "+1 555 013 9000")});
    assertRows(rows, "email", {tokenRow("email", "email", "jane.doe@example.com")});
  }

  void testPatientDatesTokensAddressAndReferences() {
    auto doc = example("patient.json");
    const auto rows = rowsOf(*doc);
    const int64_t birth = utcMicros(1984, 7, 14);
    assertRows(rows, "birthdate", {dateRow("birthdate", birth, birth + kDay - 1)});
    assertRows(rows, "gender", {tokenRow("gender", "", "female")});
    assertRows(rows, "active", {tokenRow("active", "", "true")});
    // deceasedBoolean false: `Patient.deceased.exists() and Patient.deceased != false` is false.
    assertRows(rows, "deceased", {tokenRow("deceased", "", "false")});
    assertRows(rows, "address-city", {stringRow("address-city", "springfield", "Springfield")});
    assertRows(rows, "address-postalcode", {stringRow("address-postalcode", "62704", "62704")});
    assertRows(rows, "address-state", {stringRow("address-state", "il", "IL")});
    assertRows(rows, "address-country", {stringRow("address-country", "us", "US")});
    assertRows(rows, "address-use", {tokenRow("address-use", "", "home")});
    assertRows(rows, "address",
               {stringRow("address", "42 elm street", "42 Elm Street"), stringRow("address", "apt 3b", "Apt 3B"),
                stringRow("address", "springfield", "Springfield"), stringRow("address", "sangamon", "Sangamon"),
                stringRow("address", "il", "IL"), stringRow("address", "62704", "62704"),
                stringRow("address", "us", "US"),
                stringRow("address", "42 elm street, apt 3b, springfield, il 62704",
                          "42 Elm Street, Apt 3B, Springfield, IL 62704")});
    assertRows(rows, "general-practitioner",
               {referenceRow("general-practitioner", "Practitioner", "hearth-pract-001",
                             "Practitioner/hearth-pract-001")});
    assertRows(rows, "organization",
               {referenceRow("organization", "Organization", "hearth-hospital", "Organization/hearth-hospital")});
    assertRows(rows, "link", {referenceRow("link", "Patient", "hearth-pat-001-old", "Patient/hearth-pat-001-old")});
    // A CodeableConcept: one row per coding (text = display), plus its own text.
    assertRows(rows, "language",
               {tokenRow("language", "urn:ietf:bcp:47", "en-US", "english (united states)"),
                tokenRow("language", "", "", "english"), tokenRow("language", "urn:ietf:bcp:47", "es", "spanish")});
    // _id and _lastUpdated come from resource_current, not from rows.
    CPPUNIT_ASSERT(withParam(rows, "_id").empty());
    CPPUNIT_ASSERT(withParam(rows, "_lastUpdated").empty());
  }

  void testMetaTagProfileSecurity() {
    auto doc = parse(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},
      "meta":{"profile":["http://example.org/StructureDefinition/vitals|1.2","http://hl7.org/fhir/StructureDefinition/vitalsigns"],
        "tag":[{"system":"http://example.org/tags","code":"import-2024","display":"Import batch"},{"code":"unsystematic"}],
        "security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"HTEST"}],
        "source":"urn:uuid:5b8a0c4e-7f7e-4c8e-9f0b-1f2d3c4b5a69#3"}})");
    const auto rows = rowsOf(*doc);
    assertRows(rows, "_tag", {tokenRow("_tag", "http://example.org/tags", "import-2024", "import batch"),
                              tokenRow("_tag", "", "unsystematic")});
    assertRows(rows, "_security",
               {tokenRow("_security", "http://terminology.hl7.org/CodeSystem/v3-ActReason", "HTEST")});
    // _profile is a uri parameter: the canonical as written.
    assertRows(rows, "_profile", {uriRow("_profile", "http://example.org/StructureDefinition/vitals|1.2"),
                                  uriRow("_profile", "http://hl7.org/fhir/StructureDefinition/vitalsigns")});
    assertRows(rows, "_source", {uriRow("_source", "urn:uuid:5b8a0c4e-7f7e-4c8e-9f0b-1f2d3c4b5a69#3")});
    // A text-only CodeableConcept: one row with the text and no code.
    assertRows(rows, "code", {tokenRow("code", "", "", "x")});
  }

  // ---- Observation -----------------------------------------------------------------------

  void testObservationCodeSubjectValueCategory() {
    auto doc = parse(R"({"resourceType":"Observation","id":"bp1","status":"final",
      "category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
      "code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"},
                        {"system":"http://snomed.info/sct","code":"364075005","display":"Heart Rate"}],
              "text":"Pulse"},
      "subject":{"reference":"Patient/p1"},
      "effectiveDateTime":"2024-03-01T08:12:00+01:00",
      "valueQuantity":{"value":72,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"}})");
    const auto rows = rowsOf(*doc);
    assertRows(rows, "code", {tokenRow("code", "http://loinc.org", "8867-4", "heart rate"),
                              tokenRow("code", "http://snomed.info/sct", "364075005", "heart rate"),
                              tokenRow("code", "", "", "pulse")});
    assertRows(rows, "category", {tokenRow("category", "http://terminology.hl7.org/CodeSystem/observation-category",
                                           "vital-signs")});
    assertRows(rows, "subject", {referenceRow("subject", "Patient", "p1", "Patient/p1")});
    // `Observation.subject.where(resolve() is Patient)`
    assertRows(searchedRows(rows, "Observation", "patient"), "patient",
               {referenceRow("patient", "Patient", "p1", "Patient/p1")});
    assertRows(rows, "value-quantity",
               {quantityRow("value-quantity", 72, "http://unitsofmeasure.org", "/min", "beats/minute")});
    // 08:12 at +01:00 is 07:12 UTC; a dateTime to the second covers that second.
    const int64_t at = utcMicros(2024, 3, 1, 7, 12);
    assertRows(rows, "date", {dateRow("date", at, at + kSecond - 1)});
    assertRows(rows, "status", {tokenRow("status", "", "final")});
    CPPUNIT_ASSERT(withParam(rows, "value-concept").empty());
    CPPUNIT_ASSERT(withParam(rows, "value-date").empty());

    // The official-style example on file.
    auto fixture = example("observation.json");
    const auto frows = rowsOf(*fixture);
    assertRows(frows, "value-quantity",
               {quantityRow("value-quantity", 4.2, "http://unitsofmeasure.org", "mmol/L", "mmol/L")});
    assertRows(frows, "based-on",
               {referenceRow("based-on", "ServiceRequest", "hearth-sr-001", "ServiceRequest/hearth-sr-001")});
  }

  void testObservationEffectivePeriodAndAbsoluteSubject() {
    auto doc = parse(R"({"resourceType":"Observation","status":"final","code":{"text":"Urine output"},
      "subject":{"reference":"https://other.example.org/fhir/R4/Patient/p7/_history/3"},
      "effectivePeriod":{"start":"2024-03-01T08:00:00Z"},
      "valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"260385009","display":"Negative"}]}})");
    const auto rows = rowsOf(*doc);
    assertRows(rows, "subject", {referenceRow("subject", "Patient", "p7",
                                              "https://other.example.org/fhir/R4/Patient/p7/_history/3")});
    // Open end: up to INT64_MAX.
    assertRows(rows, "date", {dateRow("date", utcMicros(2024, 3, 1, 8), kMax)});
    assertRows(rows, "value-concept", {tokenRow("value-concept", "http://snomed.info/sct", "260385009", "negative")});
    CPPUNIT_ASSERT(withParam(rows, "value-quantity").empty());

    // A period with both ends, at day precision: from the first day's start to the last's end.
    auto closed = parse(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},
      "subject":{"reference":"Group/g1"},"effectivePeriod":{"start":"2024-02-28","end":"2024-03-01"}})");
    const auto crows = rowsOf(*closed);
    assertRows(crows, "date", {dateRow("date", utcMicros(2024, 2, 28), utcMicros(2024, 3, 2) - 1)});
    assertRows(crows, "subject", {referenceRow("subject", "Group", "g1", "Group/g1")});
    CPPUNIT_ASSERT_MESSAGE("a Group subject is not a patient", searchedRows(crows, "Observation", "patient").empty());

    auto openStart = parse(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},
      "effectivePeriod":{"end":"2024"}})");
    assertRows(rowsOf(*openStart), "date", {dateRow("date", kMin, utcMicros(2025, 1, 1) - 1)});
  }

  // CodeableConcept.text gets a row of its own only when no coding of the parameter carries that
  // text already (:text reads every row's text).
  void testConceptTextRowOnlyWhenNew() {
    auto same = parse(R"({"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org",
      "code":"8867-4","display":"Heart rate"}],"text":"heart  RATE"}})");
    assertRows(rowsOf(*same), "code", {tokenRow("code", "http://loinc.org", "8867-4", "heart rate")});
    auto other = parse(R"({"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org",
      "code":"8867-4","display":"Heart rate"}],"text":"Pulse"}})");
    assertRows(rowsOf(*other), "code",
               {tokenRow("code", "http://loinc.org", "8867-4", "heart rate"), tokenRow("code", "", "", "pulse")});
    auto textOnly = parse(R"({"resourceType":"Observation","status":"final","code":{"text":"Pulse"}})");
    assertRows(rowsOf(*textOnly), "code", {tokenRow("code", "", "", "pulse")});
  }

  void testObservationContainedSubjectIsNotIndexed() {
    auto doc = parse(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},
      "contained":[{"resourceType":"Patient","id":"p1","name":[{"family":"Inner"}]}],
      "subject":{"reference":"#p1"},"performer":[{"reference":"#p1"},{"reference":"Practitioner/dr1"}]})");
    const auto rows = rowsOf(*doc);
    CPPUNIT_ASSERT_MESSAGE(describe(rows), withParam(rows, "subject").empty());
    CPPUNIT_ASSERT(searchedRows(rows, "Observation", "patient").empty());
    assertRows(rows, "performer", {referenceRow("performer", "Practitioner", "dr1", "Practitioner/dr1")});
    // Nothing of the contained resource leaks into the container's rows.
    for (const IndexRow& r : rows) CPPUNIT_ASSERT_MESSAGE(describe(r), r.exact != "Inner");
  }

  // ---- other resources -------------------------------------------------------------------

  void testEncounterAndAppointmentDates() {
    auto enc = example("encounter.json");
    const auto erows = rowsOf(*enc);
    // period 09:02 .. 09:45 at +01:00 (to the second).
    assertRows(erows, "date", {dateRow("date", utcMicros(2024, 3, 5, 8, 2), utcMicros(2024, 3, 5, 8, 45, 1) - 1)});
    assertRows(erows, "location-period",
               {dateRow("location-period", utcMicros(2024, 3, 5, 8, 10), utcMicros(2024, 3, 5, 8, 41, 1) - 1)});
    assertRows(erows, "length", {quantityRow("length", 43, "http://unitsofmeasure.org", "min", "min")});
    assertRows(erows, "class", {tokenRow("class", "http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB",
                                         "ambulatory")});
    assertRows(erows, "subject", {referenceRow("subject", "Patient", "hearth-pat-001", "Patient/hearth-pat-001")});

    auto appt = example("appointment.json");
    const auto arows = rowsOf(*appt);
    assertRows(arows, "date", {dateRow("date", utcMicros(2024, 3, 5, 8), utcMicros(2024, 3, 5, 8, 0, 1) - 1)});
    assertRows(arows, "actor", {referenceRow("actor", "Patient", "hearth-pat-001", "Patient/hearth-pat-001"),
                                referenceRow("actor", "Practitioner", "hearth-pract-001", "Practitioner/hearth-pract-001"),
                                referenceRow("actor", "Location", "hearth-loc-im", "Location/hearth-loc-im")});
    assertRows(searchedRows(arows, "Appointment", "patient"), "patient",
               {referenceRow("patient", "Patient", "hearth-pat-001", "Patient/hearth-pat-001")});
    // Stored once, under actor: the derived parameters have no rows of their own.
    CPPUNIT_ASSERT(withParam(arows, "patient").empty() && withParam(arows, "practitioner").empty());
    assertRows(arows, "status", {tokenRow("status", "", "booked")});
  }

  void testMedicationRequest() {
    auto doc = example("medicationrequest.json");
    const auto rows = rowsOf(*doc);
    assertRows(rows, "medication", {referenceRow("medication", "Medication", "hearth-med-001",
                                                 "Medication/hearth-med-001")});
    CPPUNIT_ASSERT(withParam(rows, "code").empty());  // medication is a Reference here
    const int64_t authored = utcMicros(2024, 3, 5, 8, 38);
    assertRows(rows, "authoredon", {dateRow("authoredon", authored, authored + kSecond - 1)});
    assertRows(rows, "intent", {tokenRow("intent", "", "order")});
    assertRows(rows, "requester", {referenceRow("requester", "Practitioner", "hearth-pract-001",
                                                "Practitioner/hearth-pract-001")});

    // medicationCodeableConcept and timing events (`date` is dosageInstruction.timing.event).
    auto coded = parse(R"({"resourceType":"MedicationRequest","status":"active","intent":"order",
      "subject":{"reference":"Patient/p1"},
      "medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"310325"}]},
      "dosageInstruction":[{"timing":{"event":["2024-03-05T08:00:00Z","2024-03-05T20:00:00Z"]}}]})");
    const auto crows = rowsOf(*coded);
    assertRows(crows, "code", {tokenRow("code", "http://www.nlm.nih.gov/research/umls/rxnorm", "310325")});
    CPPUNIT_ASSERT(withParam(crows, "medication").empty());
    const int64_t morning = utcMicros(2024, 3, 5, 8), evening = utcMicros(2024, 3, 5, 20);
    assertRows(crows, "date",
               {dateRow("date", morning, morning + kSecond - 1), dateRow("date", evening, evening + kSecond - 1)});
  }

  void testDiagnosticReportResults() {
    auto doc = example("diagnosticreport.json");
    const auto rows = rowsOf(*doc);
    // The second result is "#glucose" (contained): not indexed.
    assertRows(rows, "result", {referenceRow("result", "Observation", "hearth-obs-001", "Observation/hearth-obs-001")});
    // issued to the millisecond covers that millisecond.
    const int64_t issued = utcMicros(2024, 3, 1, 10, 45);
    assertRows(rows, "issued", {dateRow("issued", issued, issued + 999)});
    assertRows(rows, "code", {tokenRow("code", "http://loinc.org", "51990-0", "basic metabolic panel - blood"),
                              tokenRow("code", "", "", "basic metabolic panel")});
    assertRows(rows, "conclusion", {tokenRow("conclusion", "http://snomed.info/sct", "17621005", "normal")});
  }

  void testInvoiceMoney() {
    // R4 defines totalnet / totalgross as quantity parameters on Invoice.totalNet / totalGross (Money).
    const SearchParamDef* def = Model::r4().searchParam("Invoice", "totalnet");
    CPPUNIT_ASSERT(def != nullptr);
    CPPUNIT_ASSERT_EQUAL(std::string("quantity"), def->type);
    auto doc = example("invoice.json");
    const auto rows = rowsOf(*doc);
    assertRows(rows, "totalnet", {quantityRow("totalnet", 96, "urn:iso:std:iso:4217", "USD", "")});
    assertRows(rows, "totalgross", {quantityRow("totalgross", 120, "urn:iso:std:iso:4217", "USD", "")});
    assertRows(rows, "recipient", {referenceRow("recipient", "Patient", "hearth-pat-001", "Patient/hearth-pat-001")});
  }

  void testCanonicalAndOtherReferences() {
    // canonical: url only, version stripped.
    auto qr = parse(R"({"resourceType":"QuestionnaireResponse","status":"completed",
      "questionnaire":"http://example.org/fhir/Questionnaire/phq-9|2.1",
      "subject":{"reference":"urn:uuid:0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"},
      "author":{"identifier":{"system":"http://example.org/staff","value":"S-17"}},
      "source":{"reference":"Patient/pat 1"}})");
    const auto rows = rowsOf(*qr);
    assertRows(rows, "questionnaire", {referenceRow("questionnaire", "", "", "http://example.org/fhir/Questionnaire/phq-9")});
    // urn:uuid: url only.
    assertRows(rows, "subject", {referenceRow("subject", "", "", "urn:uuid:0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b")});
    // A logical reference by identifier: a token row for :identifier, no reference row.
    CPPUNIT_ASSERT(withParam(rows, "author").empty());
    assertRows(rows, "author:identifier", {tokenRow("author:identifier", "http://example.org/staff", "S-17")});
    // "pat 1" is not a valid id: url only.
    assertRows(rows, "source", {referenceRow("source", "", "", "Patient/pat 1")});

    // Not a resource type, conditional references, a bare id: url only.
    auto obs = parse(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},
      "subject":{"reference":"Patientx/1"},
      "basedOn":[{"reference":"ServiceRequest?identifier=http://x|1"},{"reference":"just-an-id"},
                 {"reference":"http://example.org/ServiceRequest/sr9"},{"reference":"ftp://example.org/ServiceRequest/sr9"}],
      "partOf":[{"reference":"some/base/Procedure/pr1"}]})");
    const auto orows = rowsOf(*obs);
    assertRows(orows, "subject", {referenceRow("subject", "", "", "Patientx/1")});
    assertRows(orows, "based-on",
               {referenceRow("based-on", "", "", "ServiceRequest?identifier=http://x|1"),
                referenceRow("based-on", "", "", "just-an-id"),
                referenceRow("based-on", "ServiceRequest", "sr9", "http://example.org/ServiceRequest/sr9"),
                referenceRow("based-on", "", "", "ftp://example.org/ServiceRequest/sr9")});
    // A relative reference is exactly Type/id.
    assertRows(orows, "part-of", {referenceRow("part-of", "", "", "some/base/Procedure/pr1")});

    // Relative with _history.
    auto versioned = parse(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},
      "subject":{"reference":"Patient/p1/_history/4"}})");
    assertRows(rowsOf(*versioned), "subject", {referenceRow("subject", "Patient", "p1", "Patient/p1/_history/4")});
  }

  void testNumberAndTimingAndStringLeaves() {
    auto risk = parse(R"({"resourceType":"RiskAssessment","status":"final","subject":{"reference":"Patient/p1"},
      "prediction":[{"probabilityDecimal":0.25},{"probabilityRange":{"low":{"value":1},"high":{"value":2}}}]})");
    const auto rrows = rowsOf(*risk);
    IndexRow number;
    number.kind = IndexKind::Number;
    number.param = "probability";
    number.value = 0.25;
    assertRows(rrows, "probability", {number});  // the Range is not indexed

    auto plan = parse(R"({"resourceType":"CarePlan","status":"active","intent":"plan","subject":{"reference":"Patient/p1"},
      "activity":[{"detail":{"status":"scheduled","scheduledTiming":{"repeat":{"boundsPeriod":{"start":"2024-01-01","end":"2024-06-30"}}}}},
                  {"detail":{"status":"scheduled","scheduledPeriod":{"start":"2024-07-01T10:00:00Z","end":"2024-07-01T11:00:00Z"}}}]})");
    assertRows(rowsOf(*plan), "activity-date",
               {dateRow("activity-date", utcMicros(2024, 1, 1), utcMicros(2024, 7, 1) - 1),
                dateRow("activity-date", utcMicros(2024, 7, 1, 10), utcMicros(2024, 7, 1, 11, 0, 1) - 1)});

    // A string parameter on valueString / valueCodeableConcept.text.
    auto obs = parse(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"valueString":"Trace  Amounts"})");
    assertRows(rowsOf(*obs), "value-string", {stringRow("value-string", "trace amounts", "Trace  Amounts")});
  }

  void testOddJsonDoesNotThrow() {
    // Wrong JSON types everywhere: no exception, and the well-formed parts still give rows.
    auto doc = parse(R"({"resourceType":"Patient","birthDate":19840714,"gender":"female",
      "name":"Doe","telecom":[{"system":5,"value":["x"]},{"system":"phone","value":"555"}],
      "identifier":[{"system":{"a":1},"value":12},{"type":"MR","value":"v"}],
      "address":[{"city":["Paris",null,3]}],"deceasedDateTime":"not a date",
      "generalPractitioner":[{"reference":42},{"reference":""},{"reference":"#"}],
      "managingOrganization":{"reference":"Organization/o1","identifier":"oops"}})");
    std::vector<IndexRow> rows;
    CPPUNIT_ASSERT_NO_THROW(rows = rowsOf(*doc));
    assertRows(rows, "gender", {tokenRow("gender", "", "female")});
    assertRows(rows, "phone", {tokenRow("phone", "phone", "555")});
    assertRows(rows, "address-city", {stringRow("address-city", "paris", "Paris")});
    assertRows(rows, "organization", {referenceRow("organization", "Organization", "o1", "Organization/o1")});
    CPPUNIT_ASSERT(withParam(rows, "death-date").empty());
    CPPUNIT_ASSERT(withParam(rows, "general-practitioner").empty());

    // Not a resource of a known type, or not an object.
    rapidjson::Document empty;
    empty.SetObject();
    CPPUNIT_ASSERT(indexer().extract("NoSuchType", empty).empty());
    rapidjson::Value array(rapidjson::kArrayType);
    CPPUNIT_ASSERT(indexer().extract("Patient", array).empty());
  }

  // Every example resource (and every entry of the example Bundle): rows belong to a parameter of
  // the type with the kind its type implies, are not repeated, and dates are proper ranges.
  void testEveryExampleGivesConsistentRows() {
    const Model& model = Model::r4();
    size_t resources = 0, totalRows = 0;
    std::string failures;
    auto check = [&](const std::string& file, const rapidjson::Value& resource) {
      const std::string type = resource["resourceType"].GetString();
      if (!model.isResourceType(type)) return;
      ++resources;
      std::vector<IndexRow> rows;
      try {
        rows = indexer().extract(type, resource);
      } catch (const std::exception& e) {
        failures += "\n" + file + ": threw " + e.what();
        return;
      }
      totalRows += rows.size();
      for (size_t i = 0; i < rows.size(); ++i) {
        const IndexRow& r = rows[i];
        std::string code = r.param;
        IndexKind expected;
        const size_t colon = code.find(':');
        const std::string modifier = colon == std::string::npos ? "" : code.substr(colon + 1);
        if (colon != std::string::npos) code.resize(colon);
        const SearchParamDef* def = model.searchParam(type, code);
        if (!def || !SearchIndexer::kindOf(def->type, expected)) {
          failures += "\n" + file + ": row of no indexable parameter: " + describe(r);
          continue;
        }
        if (!modifier.empty()) {
          const bool ok = (modifier == "of-type" && def->type == "token") ||
                          (modifier == "identifier" && def->type == "reference");
          if (!ok) failures += "\n" + file + ": unexpected row: " + describe(r);
          expected = IndexKind::Token;
        }
        if (r.kind != expected) failures += "\n" + file + ": wrong kind: " + describe(r);
        if (r.kind == IndexKind::Date && r.lo > r.hi) failures += "\n" + file + ": empty range: " + describe(r);
        if (r.kind == IndexKind::String && r.text != normalizeSearchString(r.exact)) {
          failures += "\n" + file + ": text is not the normalised value: " + describe(r);
        }
        if (code == "_id" || code == "_lastUpdated") failures += "\n" + file + ": " + describe(r);
        for (size_t j = 0; j < i; ++j) {
          if (rows[j] == r) failures += "\n" + file + ": repeated row: " + describe(r);
        }
      }
    };
    forEachExample(check);
    CPPUNIT_ASSERT_MESSAGE(failures, failures.empty());
    CPPUNIT_ASSERT(resources >= 30);
    CPPUNIT_ASSERT(totalRows > 400);
  }

  // The parameters stored through others (search_index.h), as the R4 definitions make them.
  void testDerivedParamsFromTheDefinitions() {
    using hearth::fhir::derivedParam;
    using hearth::fhir::DerivedParam;
    auto describeDerived = [](const DerivedParam* d) {
      if (!d) return std::string("(own rows)");
      std::string s;
      for (const std::string& p : d->params) s += (s.empty() ? "" : ",") + p;
      return s + (d->targetType.empty() ? "" : " -> " + d->targetType);
    };
    auto expect = [&](const char* type, const char* code, const std::string& wanted) {
      CPPUNIT_ASSERT_EQUAL_MESSAGE(std::string(type) + "." + code, wanted, describeDerived(derivedParam(type, code)));
    };
    expect("Observation", "combo-code", "code,component-code");
    expect("Observation", "combo-value-quantity", "component-value-quantity,value-quantity");
    expect("Observation", "combo-value-concept", "component-value-concept,value-concept");
    expect("Observation", "combo-code:of-type", "code:of-type,component-code:of-type");
    expect("Observation", "patient", "subject -> Patient");
    expect("Encounter", "patient", "subject -> Patient");
    expect("Encounter", "practitioner", "participant -> Practitioner");
    expect("Appointment", "patient", "actor -> Patient");
    expect("Appointment", "practitioner", "actor -> Practitioner");
    expect("DiagnosticReport", "patient", "subject -> Patient");
    expect("MedicationRequest", "patient", "subject -> Patient");
    expect("Invoice", "patient", "subject -> Patient");
    // Their own rows: the base parameters, filters on something else than the target type
    // (Patient phone = telecom.where(system='phone')), and the ":identifier" rows of a filter.
    for (const auto& [type, code] : std::vector<std::pair<const char*, const char*>>{
             {"Observation", "code"}, {"Observation", "subject"}, {"Observation", "component-code"},
             {"Patient", "phone"}, {"Patient", "family"}, {"Patient", "identifier"}, {"Appointment", "actor"},
             {"Observation", "patient:identifier"}, {"Observation", "performer"}, {"Invoice", "recipient"}}) {
      expect(type, code, "(own rows)");
    }
  }

  // Checks each derivation against the definitions on every example: the rows the definitions
  // give a derived parameter (an indexer that still produces them) are exactly the rows of the
  // parameters it is derived from (restricted to the target type), and apart from those, both
  // indexers produce the same rows.
  void testDerivedRowsEqualTheDefinitions() {
    using hearth::fhir::derivedParam;
    static const SearchIndexer full(Model::r4(), true);
    size_t derivedRows = 0;
    std::string failures;
    auto valueKey = [](IndexRow r) {
      r.param.clear();
      return describe(r);
    };
    auto check = [&](const std::string& file, const rapidjson::Value& resource) {
      const std::string type = resource["resourceType"].GetString();
      if (!Model::r4().isResourceType(type)) return;
      const std::vector<IndexRow> all = full.extract(type, resource);
      const std::vector<IndexRow> lean = indexer().extract(type, resource);
      for (const IndexRow& r : lean) {
        if (std::find(all.begin(), all.end(), r) == all.end()) failures += "\n" + file + ": extra row " + describe(r);
      }
      for (const IndexRow& r : all) {
        const auto* d = derivedParam(type, r.param);
        if (!d || (!d->targetType.empty() && r.kind != IndexKind::Reference)) {
          if (std::find(lean.begin(), lean.end(), r) == lean.end()) failures += "\n" + file + ": lost " + describe(r);
          continue;
        }
        ++derivedRows;
        // The derived row's value is among the rows it is derived from ...
        const bool found = std::any_of(lean.begin(), lean.end(), [&](const IndexRow& s) {
          return std::find(d->params.begin(), d->params.end(), s.param) != d->params.end() &&
                 (d->targetType.empty() || s.refType == d->targetType) && valueKey(s) == valueKey(r);
        });
        if (!found) failures += "\n" + file + ": derived row not found: " + describe(r);
      }
      // ... and every row it is derived from is one of the derived parameter's rows.
      for (const IndexRow& s : lean) {
        for (const SearchParamDef& def : Model::r4().searchParams(type)) {
          const auto* d = derivedParam(type, def.code);
          if (!d || std::find(d->params.begin(), d->params.end(), s.param) == d->params.end()) continue;
          if (!d->targetType.empty() && s.refType != d->targetType) continue;
          const bool found = std::any_of(all.begin(), all.end(), [&](const IndexRow& r) {
            return r.param == def.code && valueKey(r) == valueKey(s);
          });
          if (!found) failures += "\n" + file + ": " + def.code + " lacks " + describe(s);
        }
      }
    };
    forEachExample(check);
    CPPUNIT_ASSERT_MESSAGE(failures, failures.empty());
    CPPUNIT_ASSERT_MESSAGE(std::to_string(derivedRows), derivedRows >= 20);
  }

  void testKindOf() {
    IndexKind k = IndexKind::Uri;
    CPPUNIT_ASSERT(SearchIndexer::kindOf("string", k) && k == IndexKind::String);
    CPPUNIT_ASSERT(SearchIndexer::kindOf("token", k) && k == IndexKind::Token);
    CPPUNIT_ASSERT(SearchIndexer::kindOf("date", k) && k == IndexKind::Date);
    CPPUNIT_ASSERT(SearchIndexer::kindOf("number", k) && k == IndexKind::Number);
    CPPUNIT_ASSERT(SearchIndexer::kindOf("quantity", k) && k == IndexKind::Quantity);
    CPPUNIT_ASSERT(SearchIndexer::kindOf("reference", k) && k == IndexKind::Reference);
    CPPUNIT_ASSERT(SearchIndexer::kindOf("uri", k) && k == IndexKind::Uri);
    CPPUNIT_ASSERT(!SearchIndexer::kindOf("composite", k));
    CPPUNIT_ASSERT(!SearchIndexer::kindOf("special", k));
    CPPUNIT_ASSERT(!SearchIndexer::kindOf("", k));
  }

  // ---- normalizeSearchString -------------------------------------------------------------

  void testNormalizeSearchString() {
    using S = std::string;
    CPPUNIT_ASSERT_EQUAL(S("muller"), normalizeSearchString("Müller"));
    CPPUNIT_ASSERT_EQUAL(S("elodie"), normalizeSearchString("ÉLODIE"));
    CPPUNIT_ASSERT_EQUAL(S("strasse"), normalizeSearchString("Straße"));
    CPPUNIT_ASSERT_EQUAL(S("aero"), normalizeSearchString("Ærø"));  // ø -> o
    CPPUNIT_ASSERT_EQUAL(S("oeuvre"), normalizeSearchString("Œuvre"));
    CPPUNIT_ASSERT_EQUAL(S("francois"), normalizeSearchString("FRANÇOIS"));
    CPPUNIT_ASSERT_EQUAL(S("lodz"), normalizeSearchString("Łódź"));
    CPPUNIT_ASSERT_EQUAL(S("dvorak"), normalizeSearchString("Dvořák"));
    CPPUNIT_ASSERT_EQUAL(S("sogut"), normalizeSearchString("Söğüt"));
    CPPUNIT_ASSERT_EQUAL(S("istanbul"), normalizeSearchString("İstanbul"));
    CPPUNIT_ASSERT_EQUAL(S("thorn"), normalizeSearchString("Þorn"));
    CPPUNIT_ASSERT_EQUAL(S("ijssel"), normalizeSearchString("Ĳssel"));
    CPPUNIT_ASSERT_EQUAL(S("stefan"), normalizeSearchString("Ștefan"));
    CPPUNIT_ASSERT_EQUAL(S("aaaaaa ceeee"), normalizeSearchString("ÀÁÂÃÄÅ ÇÈÉÊË"));
    // Decomposed accents (NFD) fold like composed ones.
    CPPUNIT_ASSERT_EQUAL(S("jose"), normalizeSearchString("Jose\xCC\x81"));
    // Mixed case, whitespace runs (tabs, newlines, NBSP, ideographic space), trimming.
    CPPUNIT_ASSERT_EQUAL(S("van der berg"), normalizeSearchString("  Van \t DER\n\nBerg  "));
    CPPUNIT_ASSERT_EQUAL(S("a b c"), normalizeSearchString("A\xC2\xA0" "B\xE3\x80\x80" "C"));
    CPPUNIT_ASSERT_EQUAL(S(""), normalizeSearchString(" \t\n "));
    CPPUNIT_ASSERT_EQUAL(S(""), normalizeSearchString(""));
    // Outside the folded ranges: kept; Greek and Cyrillic capitals lower-cased.
    CPPUNIT_ASSERT_EQUAL(S("東京 2x"), normalizeSearchString("東京 2X"));
    CPPUNIT_ASSERT_EQUAL(S("иван"), normalizeSearchString("ИВАН"));
    CPPUNIT_ASSERT_EQUAL(S("σοφια"), normalizeSearchString("ΣΟΦΙΑ"));
    CPPUNIT_ASSERT_EQUAL(S("1 × 2 ÷ 3 µg"), normalizeSearchString("1 × 2 ÷ 3 µg"));
    CPPUNIT_ASSERT_EQUAL(S("😀 ok"), normalizeSearchString("😀 OK"));
    // Invalid UTF-8 is dropped: stray continuation, truncated sequence, overlong, surrogate,
    // above U+10FFFF, bytes that never occur.
    CPPUNIT_ASSERT_EQUAL(S("ab"), normalizeSearchString("a\x80" "b"));
    CPPUNIT_ASSERT_EQUAL(S("ab"), normalizeSearchString("a\xC3" "b"));
    CPPUNIT_ASSERT_EQUAL(S("a"), normalizeSearchString("a\xE2\x82"));
    CPPUNIT_ASSERT_EQUAL(S("a/"), normalizeSearchString("a\xC0\xAF/"));
    CPPUNIT_ASSERT_EQUAL(S("xy"), normalizeSearchString("x\xED\xA0\x80y"));
    CPPUNIT_ASSERT_EQUAL(S("xy"), normalizeSearchString("x\xF4\x90\x80\x80y"));
    CPPUNIT_ASSERT_EQUAL(S("xy"), normalizeSearchString("x\xFF\xFEy"));
    CPPUNIT_ASSERT_EQUAL(S("mller"), normalizeSearchString("M\xFCller"));  // Latin-1, not UTF-8
    CPPUNIT_ASSERT_EQUAL(S("muller"), normalizeSearchString("Mu\xCC\x88ller"));
    // Idempotent.
    const std::string once = normalizeSearchString("  Ça  VA, Gérard?  ");
    CPPUNIT_ASSERT_EQUAL(S("ca va, gerard?"), once);
    CPPUNIT_ASSERT_EQUAL(once, normalizeSearchString(once));
  }

  // ---- fhirDateRange ---------------------------------------------------------------------

  void testFhirDateRangePrecisions() {
    auto r = range("2020");
    CPPUNIT_ASSERT_EQUAL(utcMicros(2020, 1, 1), r.first);
    CPPUNIT_ASSERT_EQUAL(utcMicros(2021, 1, 1) - 1, r.second);
    r = range("2020-03");
    CPPUNIT_ASSERT_EQUAL(utcMicros(2020, 3, 1), r.first);
    CPPUNIT_ASSERT_EQUAL(utcMicros(2020, 4, 1) - 1, r.second);  // ..03-31T23:59:59.999999
    r = range("2020-02");
    CPPUNIT_ASSERT_EQUAL(29 * kDay, r.second - r.first + 1);  // leap year
    r = range("2021-02");
    CPPUNIT_ASSERT_EQUAL(28 * kDay, r.second - r.first + 1);
    r = range("2020-12");
    CPPUNIT_ASSERT_EQUAL(utcMicros(2021, 1, 1) - 1, r.second);
    r = range("2024-02-29");
    CPPUNIT_ASSERT_EQUAL(utcMicros(2024, 2, 29), r.first);
    CPPUNIT_ASSERT_EQUAL(utcMicros(2024, 3, 1) - 1, r.second);
    r = range("2000-02-29");  // divisible by 400: leap
    CPPUNIT_ASSERT_EQUAL(utcMicros(2000, 2, 29), r.first);
    r = range("2015-02-07T13:28");
    CPPUNIT_ASSERT_EQUAL(utcMicros(2015, 2, 7, 13, 28), r.first);
    CPPUNIT_ASSERT_EQUAL(r.first + kMinute - 1, r.second);
    r = range("2015-02-07T13:28:17");
    CPPUNIT_ASSERT_EQUAL(utcMicros(2015, 2, 7, 13, 28, 17), r.first);
    CPPUNIT_ASSERT_EQUAL(r.first + kSecond - 1, r.second);
    // Far ends of the FHIR range and the epoch itself.
    r = range("1970-01-01T00:00:00Z");
    CPPUNIT_ASSERT_EQUAL(int64_t(0), r.first);
    r = range("0001");
    CPPUNIT_ASSERT_EQUAL(utcMicros(1, 1, 1), r.first);
    r = range("9999-12-31");
    CPPUNIT_ASSERT_EQUAL(utcMicros(9999, 12, 31) + kDay - 1, r.second);
    r = range("1900-03-01");  // 1900 is not a leap year
    CPPUNIT_ASSERT_EQUAL(utcMicros(1900, 3, 1), r.first);
    r = range("1969-12-31T23:59:59Z");
    CPPUNIT_ASSERT_EQUAL(-kSecond, r.first);
  }

  void testFhirDateRangeOffsetsAndFractions() {
    const int64_t base = utcMicros(2015, 2, 7, 13, 28, 17);
    auto r = range("2015-02-07T13:28:17Z");
    CPPUNIT_ASSERT_EQUAL(base, r.first);
    r = range("2015-02-07T13:28:17-05:00");
    CPPUNIT_ASSERT_EQUAL(base + 5 * kHour, r.first);
    CPPUNIT_ASSERT_EQUAL(base + 5 * kHour + kSecond - 1, r.second);
    r = range("2015-02-07T13:28:17+10:30");
    CPPUNIT_ASSERT_EQUAL(base - 10 * kHour - 30 * kMinute, r.first);
    r = range("2015-02-07T00:30:00+14:00");  // crosses to the previous UTC day
    CPPUNIT_ASSERT_EQUAL(utcMicros(2015, 2, 6, 10, 30), r.first);
    r = range("2015-02-07T13:28+01:00");
    CPPUNIT_ASSERT_EQUAL(utcMicros(2015, 2, 7, 12, 28), r.first);
    CPPUNIT_ASSERT_EQUAL(r.first + kMinute - 1, r.second);
    // Fractions: the range is one unit of the last digit written.
    r = range("2015-02-07T13:28:17.2Z");
    CPPUNIT_ASSERT_EQUAL(base + 200000, r.first);
    CPPUNIT_ASSERT_EQUAL(base + 299999, r.second);
    r = range("2015-02-07T13:28:17.239+02:00");
    CPPUNIT_ASSERT_EQUAL(base - 2 * kHour + 239000, r.first);
    CPPUNIT_ASSERT_EQUAL(base - 2 * kHour + 239999, r.second);
    r = range("2015-02-07T13:28:17.123456Z");
    CPPUNIT_ASSERT_EQUAL(base + 123456, r.first);
    CPPUNIT_ASSERT_EQUAL(r.first, r.second);
    r = range("2015-02-07T13:28:17.123456789Z");  // below a microsecond: truncated
    CPPUNIT_ASSERT_EQUAL(base + 123456, r.first);
    CPPUNIT_ASSERT_EQUAL(r.first, r.second);
    // Leap second.
    r = range("2016-12-31T23:59:60Z");
    CPPUNIT_ASSERT_EQUAL(utcMicros(2017, 1, 1), r.first);
  }

  void testFhirDateRangeRejects() {
    for (const char* bad :
         {"", "20", "202", "0000", "2020-", "2020-1", "2020-13", "2020-00", "2021-02-29", "2020-02-30", "2020-04-31",
          "1900-02-29", "2020-01-00", "2020-01-32", "2020/01/01", "2020-01-01T", "2020-01-01T1", "2020-01-01T10",
          "2020-01-01T24:00", "2020-01-01T10:60", "2020-01-01T10:00:61", "2020-01-01T10:00:00.",
          "2020-01-01T10:00:00.5.5", "2020-01-01Z", "2020-01-01T10:00:00+1:00", "2020-01-01T10:00:00+01",
          "2020-01-01T10:00:00+15:00", "2020-01-01T10:00:00+14:30", "2020-01-01T10:00:00+01:60",
          "2020-01-01T10:00:00 Z", "2020-01-01T10:00:00ZZ", " 2020", "2020 ", "abcd", "2020-01-01x", "+2020",
          "2020-01-01T10:00:00z", "２０２０"}) {
      CPPUNIT_ASSERT_MESSAGE(std::string("accepted \"") + bad + "\"", rejected(bad));
    }
  }

  // ---- concurrency and cost --------------------------------------------------------------

  void testConcurrentExtraction() {
    auto patient = example("patient.json");
    auto observation = example("observation.json");
    const auto expectedPatient = rowsOf(*patient);
    const auto expectedObservation = rowsOf(*observation);
    std::atomic<int> mismatches{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 200; ++i) {
          if (rowsOf(*patient) != expectedPatient) ++mismatches;
          if (rowsOf(*observation) != expectedObservation) ++mismatches;
        }
      });
    }
    for (auto& th : threads) th.join();
    CPPUNIT_ASSERT_EQUAL(0, mismatches.load());
  }

  // Indexing must stay cheap next to the write itself. Prints the figures; the bound is loose
  // (shared, loaded CI machines) but catches a regression by an order of magnitude.
  void testIndexingTime() {
    auto small = parse(R"({"resourceType":"Patient","id":"p1","meta":{"versionId":"1","lastUpdated":"2024-03-05T14:22:10.123Z"},
      "identifier":[{"system":"http://hearth.example.org/fhir/sid/mrn","value":"000123456"}],"active":true,
      "name":[{"family":"Doe","given":["Jane","Quinn"]}],"telecom":[{"system":"phone","value":"+1 555 013 4455"}],
      "gender":"female","birthDate":"1984-07-14",
      "address":[{"line":["42 Elm Street"],"city":"Springfield","postalCode":"62704","country":"US"}],
      "generalPractitioner":[{"reference":"Practitioner/dr1"}],"managingOrganization":{"reference":"Organization/o1"}})");
    auto full = example("patient.json");
    auto observation = example("observation.json");
    auto timeOf = [](const rapidjson::Value& resource, size_t& rowCount) {
      const std::string type = resource["resourceType"].GetString();
      rowCount = indexer().extract(type, resource).size();
      const int rounds = 2000;
      double best = 1e300;
      for (int attempt = 0; attempt < 3; ++attempt) {  // CPU time, best of 3: other work on the machine
        const double start = threadCpuMicros();
        size_t total = 0;
        for (int i = 0; i < rounds; ++i) total += indexer().extract(type, resource).size();
        const double us = threadCpuMicros() - start;
        CPPUNIT_ASSERT_EQUAL(rowCount * rounds, total);
        best = std::min(best, us / rounds);
      }
      return best;
    };
    size_t smallRows = 0, fullRows = 0, obsRows = 0;
    const double smallUs = timeOf(*small, smallRows);
    const double fullUs = timeOf(*full, fullRows);
    const double obsUs = timeOf(*observation, obsRows);
    std::cerr << "\n  indexing: small Patient " << smallRows << " rows " << smallUs << " us; example Patient "
              << fullRows << " rows " << fullUs << " us; example Observation " << obsRows << " rows " << obsUs
              << " us\n";
    CPPUNIT_ASSERT(smallRows >= 15);
#ifdef NDEBUG
    const double bound = sanitized() ? 5000 : 200;
#else
    const double bound = 5000;
#endif
    CPPUNIT_ASSERT_MESSAGE("small Patient took " + std::to_string(smallUs) + " us", smallUs < bound);
    CPPUNIT_ASSERT_MESSAGE("example Observation took " + std::to_string(obsUs) + " us", obsUs < bound);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(SearchIndexTest);
