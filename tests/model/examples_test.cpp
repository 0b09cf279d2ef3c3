// ExamplesTest: realistic resources must validate clean (no false positives):
//  - tests/model/examples/*.json: Hearth's hospital fixtures (one or more per core resource type;
//    other suites reuse them), each also valid against the official R4 JSON schema;
//  - tests/model/examples/official/*.json: the official FHIRPath test-suite inputs that are
//    published as XML, converted to JSON with tests/model/xml_to_json.py;
//  - the JSON inputs of the official FHIRPath test suite in ../shared/fhir-r4/test-cases, two of
//    which are deliberately incomplete fragments and must yield exactly the expected issues.
#include <dirent.h>

#include <algorithm>
#include <set>

#include "model_test_support.h"

using hearth::fhir::IssueType;
using hearth::test::readFile;
using hearth::test::validateJson;

namespace {

std::vector<std::string> jsonFiles(const std::string& dir) {
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

std::string resourceTypeOf(const std::string& json) {
  rapidjson::Document doc;
  hearth::test::parseInto(doc, json);
  return doc.IsObject() && doc.HasMember("resourceType") ? doc["resourceType"].GetString() : "";
}

}  // namespace

class ExamplesTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(ExamplesTest);
  CPPUNIT_TEST(testHospitalExamplesAreValid);
  CPPUNIT_TEST(testEveryCoreTypeHasAnExample);
  CPPUNIT_TEST(testOfficialExamplesAreValid);
  CPPUNIT_TEST(testOfficialJsonTestInputs);
  CPPUNIT_TEST(testEveryExampleBreaksWhenCorrupted);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testHospitalExamplesAreValid() {
    const auto files = jsonFiles(hearth::test::examplesDir());
    CPPUNIT_ASSERT(files.size() >= 20);
    for (const std::string& f : files) {
      const auto issues = validateJson(readFile(f));
      CPPUNIT_ASSERT_MESSAGE(f + ":" + hearth::test::describe(issues), issues.empty());
    }
  }

  void testEveryCoreTypeHasAnExample() {
    std::set<std::string> types;
    for (const std::string& f : jsonFiles(hearth::test::examplesDir())) types.insert(resourceTypeOf(readFile(f)));
    for (const char* t : {"Patient", "Appointment", "MedicationRequest", "Invoice", "DiagnosticReport", "Observation",
                          "Practitioner", "PractitionerRole", "Organization", "Location", "Encounter", "Schedule",
                          "Slot", "ServiceRequest", "Medication", "MedicationDispense", "ChargeItem", "Coverage",
                          "Claim", "AuditEvent", "Bundle"}) {
      CPPUNIT_ASSERT_MESSAGE(std::string("no example of ") + t, types.count(t) == 1);
    }
  }

  void testOfficialExamplesAreValid() {
    const auto files = jsonFiles(hearth::test::examplesDir() + "/official");
    CPPUNIT_ASSERT_EQUAL(size_t(7), files.size());
    for (const std::string& f : files) {
      const auto issues = validateJson(readFile(f));
      CPPUNIT_ASSERT_MESSAGE(f + ":" + hearth::test::describe(issues), issues.empty());
    }
  }

  void testOfficialJsonTestInputs() {
    const std::string dir = hearth::test::fhirDefsDir() + "/test-cases/fhirpath";
    for (const char* valid : {"appointment-examplereq.json", "patient-container-example.json"}) {
      const auto issues = validateJson(readFile(dir + "/" + valid));
      CPPUNIT_ASSERT_MESSAGE(std::string(valid) + ":" + hearth::test::describe(issues), issues.empty());
    }
    // An ExplanationOfBenefit fragment: only its mandatory elements are missing.
    auto issues = validateJson(readFile(dir + "/explanationofbenefit-example.json"));
    CPPUNIT_ASSERT_EQUAL_MESSAGE(hearth::test::describe(issues), size_t(11), issues.size());
    for (const auto& i : issues) CPPUNIT_ASSERT(i.type == IssueType::Required);
    ASSERT_ISSUE(issues, IssueType::Required, "ExplanationOfBenefit.status");
    ASSERT_ISSUE(issues, IssueType::Required, "ExplanationOfBenefit.item[1].productOrService");
    // Its `_given` has fewer entries than `given`: the JSON format requires parallel arrays.
    issues = validateJson(readFile(dir + "/patient-name-extensions.json"));
    CPPUNIT_ASSERT_EQUAL_MESSAGE(hearth::test::describe(issues), size_t(1), issues.size());
    ASSERT_ISSUE(issues, IssueType::Structure, "Patient.name[0].given");
  }

  // Guards the positive tests against a validator that accepts everything: one unknown member
  // added to each fixture must be reported at the resource root.
  void testEveryExampleBreaksWhenCorrupted() {
    for (const std::string& f : jsonFiles(hearth::test::examplesDir())) {
      std::string json = readFile(f);
      const size_t brace = json.rfind('}');
      json.insert(brace, ",\"notAnElement\":true");
      const std::string type = resourceTypeOf(json);
      ASSERT_ISSUE(validateJson(json), IssueType::Structure, type + ".notAnElement");
    }
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ExamplesTest);
