// ValidatorTest: each rule of ResourceValidator on small hand-written resources, asserting the
// issue type and the FHIRPath expression a client would see in the OperationOutcome.
#include <string>
#include <vector>

#include "model_test_support.h"

using hearth::fhir::IssueType;
using hearth::test::validateJson;

namespace {

// A minimal valid Observation with the given extra members spliced in.
std::string observation(const std::string& extra) {
  return R"({"resourceType":"Observation","status":"final","code":{"text":"Potassium"})" +
         (extra.empty() ? "" : "," + extra) + "}";
}

std::string patient(const std::string& members) {
  return R"({"resourceType":"Patient")" + (members.empty() ? "" : "," + members) + "}";
}

}  // namespace

class ValidatorTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(ValidatorTest);
  CPPUNIT_TEST(testMinimalResourcesAreValid);
  CPPUNIT_TEST(testNotAResource);
  CPPUNIT_TEST(testUnknownResourceType);
  CPPUNIT_TEST(testUnknownElement);
  CPPUNIT_TEST(testWrongJsonType);
  CPPUNIT_TEST(testArrayForSingleElement);
  CPPUNIT_TEST(testScalarForRepeatingElement);
  CPPUNIT_TEST(testDates);
  CPPUNIT_TEST(testDateTimesAndInstants);
  CPPUNIT_TEST(testTime);
  CPPUNIT_TEST(testIdAndCode);
  CPPUNIT_TEST(testNumbers);
  CPPUNIT_TEST(testUriOidUuidBase64);
  CPPUNIT_TEST(testStrings);
  CPPUNIT_TEST(testNarrativeDiv);
  CPPUNIT_TEST(testMissingRequiredElements);
  CPPUNIT_TEST(testRequiredBindingOnCode);
  CPPUNIT_TEST(testRequiredBindingOnCodeableConcept);
  CPPUNIT_TEST(testEmptyObjectArrayAndNull);
  CPPUNIT_TEST(testDuplicateKeys);
  CPPUNIT_TEST(testTwoChoiceVariants);
  CPPUNIT_TEST(testChoiceExpressions);
  CPPUNIT_TEST(testPrimitiveExtensions);
  CPPUNIT_TEST(testRepeatingPrimitiveExtensions);
  CPPUNIT_TEST(testExtensions);
  CPPUNIT_TEST(testContainedResources);
  CPPUNIT_TEST(testBundleEntries);
  CPPUNIT_TEST(testResourceTypeOnlyAtResourceLevel);
  CPPUNIT_TEST(testReferenceTargets);
  CPPUNIT_TEST(testSimpleQuantity);
  CPPUNIT_TEST(testElementWithOnlyId);
  CPPUNIT_TEST(testDeepNesting);
  CPPUNIT_TEST(testIssueLimit);
  CPPUNIT_TEST(testStructuralClassification);
  CPPUNIT_TEST(testDiagnosticsDoNotEchoFreeText);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testMinimalResourcesAreValid() {
    ASSERT_VALID(validateJson(patient("")));
    ASSERT_VALID(validateJson(observation("")));
    ASSERT_VALID(validateJson(R"({"resourceType":"Basic","code":{"text":"x"}})"));
    ASSERT_VALID(validateJson(R"({"resourceType":"Parameters","parameter":[{"name":"a","valueInteger":-5},)"
                              R"({"name":"b","resource":{"resourceType":"Patient","id":"p1"}},)"
                              R"({"name":"c","part":[{"name":"d","valueMeta":{"versionId":"1"}}]}]})"));
  }

  void testNotAResource() {
    auto issues = validateJson("[1,2]");
    ASSERT_ISSUE(issues, IssueType::Structure, "");
    issues = validateJson(R"({"id":"x"})");
    ASSERT_ISSUE(issues, IssueType::Structure, "");
    issues = validateJson(R"({"resourceType":17})");
    ASSERT_ISSUE(issues, IssueType::Structure, "");
  }

  void testUnknownResourceType() {
    for (const char* t : {"Patientx", "Resource", "DomainResource", "patient", "SubscriptionStatus", ""}) {
      const auto issues = validateJson(std::string(R"({"resourceType":")") + t + R"("})");
      CPPUNIT_ASSERT_EQUAL_MESSAGE(t, size_t(1), issues.size());
      ASSERT_ISSUE(issues, IssueType::Structure, "");
    }
  }

  void testUnknownElement() {
    auto issues = validateJson(patient(R"("foo":1,"gender":"male")"));
    CPPUNIT_ASSERT_EQUAL(size_t(1), issues.size());
    ASSERT_ISSUE(issues, IssueType::Structure, "Patient.foo");
    CPPUNIT_ASSERT(issues[0].diagnostics.find("foo") != std::string::npos);
    issues = validateJson(patient(R"("name":[{"family":"Doe","nickname":"J"}])"));
    ASSERT_ISSUE(issues, IssueType::Structure, "Patient.name[0].nickname");
    // A known element of the wrong context, a choice name with an unknown type, an old DSTU2 member.
    ASSERT_ISSUE(validateJson(patient(R"("status":"final")")), IssueType::Structure, "Patient.status");
    ASSERT_ISSUE(validateJson(observation(R"("valueHumanName":{"family":"x"})")), IssueType::Structure,
                 "Observation.valueHumanName");
    ASSERT_ISSUE(validateJson(patient(R"("fhir_comments":["x"])")), IssueType::Structure, "Patient.fhir_comments");
    // `_name` exists only for primitives.
    ASSERT_ISSUE(validateJson(patient(R"("_name":[{"id":"a"}])")), IssueType::Structure, "Patient._name");
  }

  void testWrongJsonType() {
    ASSERT_ISSUE(validateJson(patient(R"("active":"true")")), IssueType::Structure, "Patient.active");
    ASSERT_ISSUE(validateJson(patient(R"("birthDate":19800101)")), IssueType::Structure, "Patient.birthDate");
    ASSERT_ISSUE(validateJson(patient(R"("maritalStatus":"M")")), IssueType::Structure, "Patient.maritalStatus");
    ASSERT_ISSUE(validateJson(patient(R"("name":[{"given":[true]}])")), IssueType::Structure,
                 "Patient.name[0].given[0]");
    ASSERT_ISSUE(validateJson(observation(R"("valueQuantity":{"value":"4.2"})")), IssueType::Structure,
                 "Observation.value.ofType(Quantity).value");
    ASSERT_ISSUE(validateJson(patient(R"("multipleBirthInteger":"2")")), IssueType::Structure,
                 "Patient.multipleBirth.ofType(integer)");
    ASSERT_ISSUE(validateJson(patient(R"("contained":["x"])")), IssueType::Structure, "Patient.contained[0]");
  }

  void testArrayForSingleElement() {
    ASSERT_ISSUE(validateJson(patient(R"("gender":["female"])")), IssueType::Structure, "Patient.gender");
    ASSERT_ISSUE(validateJson(patient(R"("birthDate":["1980-01-01"])")), IssueType::Structure, "Patient.birthDate");
    ASSERT_ISSUE(validateJson(observation(R"("subject":[{"reference":"Patient/1"}])")), IssueType::Structure,
                 "Observation.subject");
    ASSERT_ISSUE(validateJson(patient(R"("name":[{"family":["Doe"]}])")), IssueType::Structure,
                 "Patient.name[0].family");
  }

  void testScalarForRepeatingElement() {
    ASSERT_ISSUE(validateJson(patient(R"("name":{"family":"Doe"})")), IssueType::Structure, "Patient.name");
    ASSERT_ISSUE(validateJson(patient(R"("name":[{"given":"Jane"}])")), IssueType::Structure,
                 "Patient.name[0].given");
    ASSERT_ISSUE(validateJson(observation(R"("category":{"text":"lab"})")), IssueType::Structure,
                 "Observation.category");
  }

  void testDates() {
    for (const char* ok : {"1980", "1980-02", "1980-02-29", "2000-02-29", "2024-12-31", "0001-01-01"}) {
      ASSERT_VALID(validateJson(patient(std::string(R"("birthDate":")") + ok + "\"")));
    }
    for (const char* bad : {"1980-13-01", "2023-02-30", "1900-02-29", "2023-04-31", "1980-00", "1980-1-01",
                            "80-01-01", "0000", "1980-01-01T10:00:00Z", "1980/01/01", "1980-01-01 ", "19800101"}) {
      const auto issues = validateJson(patient(std::string(R"("birthDate":")") + bad + "\""));
      CPPUNIT_ASSERT_EQUAL_MESSAGE(bad, size_t(1), issues.size());
      ASSERT_ISSUE(issues, IssueType::Value, "Patient.birthDate");
    }
  }

  void testDateTimesAndInstants() {
    for (const char* ok : {"2024", "2024-03", "2024-03-01", "2024-03-01T08:12:00Z", "2024-03-01T08:12:00.5+01:00",
                           "2024-03-01T23:59:60-14:00", "2024-03-01T00:00:00+14:00"}) {
      ASSERT_VALID(validateJson(observation(std::string(R"("effectiveDateTime":")") + ok + "\"")));
    }
    for (const char* bad : {"2024-03-01T08:12", "2024-03-01T08:12:00", "2024-03-01T24:00:00Z",
                            "2024-03-01T08:12:00+15:00", "2024-03-01T08:12:00+14:30", "2024-02-30T08:00:00Z",
                            "2024-03T08:12:00Z", "2024-03-01T08:12:00.Z", "2024-03-01t08:12:00z"}) {
      const auto issues = validateJson(observation(std::string(R"("effectiveDateTime":")") + bad + "\""));
      CPPUNIT_ASSERT_EQUAL_MESSAGE(bad, size_t(1), issues.size());
      ASSERT_ISSUE(issues, IssueType::Value, "Observation.effective.ofType(dateTime)");
    }
    ASSERT_VALID(validateJson(observation(R"("issued":"2024-03-01T11:30:45.120+01:00")")));
    for (const char* bad : {"2024-03-01", "2024-03-01T11:30:45", "2024", "2024-03-01T11:30Z"}) {
      ASSERT_ISSUE(validateJson(observation(std::string(R"("issued":")") + bad + "\"")), IssueType::Value,
                   "Observation.issued");
    }
    ASSERT_ISSUE(validateJson(patient(R"("meta":{"lastUpdated":"2024-03-01T10:00:00"})")), IssueType::Value,
                 "Patient.meta.lastUpdated");
  }

  void testTime() {
    const std::string base = R"({"resourceType":"Location","hoursOfOperation":[{"openingTime":")";
    ASSERT_VALID(validateJson(base + R"(08:30:00","closingTime":"17:00:00.000"}]})"));
    for (const char* bad : {"8:30:00", "08:30", "24:00:00", "08:60:00", "08:30:00Z"}) {
      ASSERT_ISSUE(validateJson(base + bad + R"("}]})"), IssueType::Value,
                   "Location.hoursOfOperation[0].openingTime");
    }
  }

  void testIdAndCode() {
    ASSERT_VALID(validateJson(patient(R"("id":"A-z.0-9")")));
    ASSERT_VALID(validateJson(patient(R"("id":")" + std::string(64, 'a') + "\"")));
    for (const std::string& bad : std::vector<std::string>{"bad id", "bad_id", std::string(65, 'a'), "id/1", "\u00e9t\u00e9"}) {
      const auto issues = validateJson(patient(R"("id":")" + bad + "\""));
      CPPUNIT_ASSERT_EQUAL_MESSAGE(bad, size_t(1), issues.size());
      ASSERT_ISSUE(issues, IssueType::Value, "Patient.id");
    }
    // Codes: no leading / trailing / repeated whitespace.
    ASSERT_VALID(validateJson(patient(R"("language":"en-US")")));
    for (const char* bad : {" en", "en ", "en  US", "en\\t US"}) {
      ASSERT_ISSUE(validateJson(patient(std::string(R"("language":")") + bad + "\"")), IssueType::Value,
                   "Patient.language");
    }
    ASSERT_ISSUE(validateJson(patient(R"("gender":" female")")), IssueType::Value, "Patient.gender");
  }

  void testNumbers() {
    ASSERT_VALID(validateJson(patient(R"("multipleBirthInteger":-2147483648)")));
    ASSERT_ISSUE(validateJson(patient(R"("multipleBirthInteger":1.5)")), IssueType::Value,
                 "Patient.multipleBirth.ofType(integer)");
    ASSERT_ISSUE(validateJson(patient(R"("multipleBirthInteger":2147483648)")), IssueType::Value,
                 "Patient.multipleBirth.ofType(integer)");
    ASSERT_ISSUE(validateJson(patient(R"("multipleBirthInteger":1e2)")), IssueType::Value,
                 "Patient.multipleBirth.ofType(integer)");
    // positiveInt (ContactPoint.rank) and unsignedInt (Attachment.size)
    ASSERT_VALID(validateJson(patient(R"("telecom":[{"system":"phone","value":"1","rank":1}])")));
    ASSERT_ISSUE(validateJson(patient(R"("telecom":[{"system":"phone","value":"1","rank":0}])")), IssueType::Value,
                 "Patient.telecom[0].rank");
    ASSERT_VALID(validateJson(patient(R"("photo":[{"size":0}])")));
    ASSERT_ISSUE(validateJson(patient(R"("photo":[{"size":-1}])")), IssueType::Value, "Patient.photo[0].size");
    // decimal
    ASSERT_VALID(validateJson(observation(R"("valueQuantity":{"value":-1.5e-3})")));
    ASSERT_VALID(validateJson(observation(R"("valueQuantity":{"value":12})")));
    ASSERT_ISSUE(validateJson(observation(R"("valueQuantity":{"value":true})")), IssueType::Structure,
                 "Observation.value.ofType(Quantity).value");
    // boolean
    ASSERT_ISSUE(validateJson(patient(R"("active":1)")), IssueType::Structure, "Patient.active");
  }

  void testUriOidUuidBase64() {
    ASSERT_VALID(validateJson(patient(R"("identifier":[{"system":"urn:oid:2.16.840.1.113883.4.1","value":"1"}])")));
    ASSERT_ISSUE(validateJson(patient(R"("identifier":[{"system":"http://exa mple.org","value":"1"}])")),
                 IssueType::Value, "Patient.identifier[0].system");
    ASSERT_ISSUE(validateJson(patient(R"("implicitRules":"a\nb")")), IssueType::Value, "Patient.implicitRules");
    // oid / uuid: in an extension value
    const std::string ext = R"("extension":[{"url":"http://example.org/x",)";
    ASSERT_VALID(validateJson(patient(ext + R"("valueOid":"urn:oid:1.2.840.10008"}])")));
    for (const char* bad : {"1.2.3", "urn:oid:3.1", "urn:oid:1.02", "urn:oid:1", "urn:oid:1."}) {
      ASSERT_ISSUE(validateJson(patient(ext + R"("valueOid":")" + bad + R"("}])")), IssueType::Value,
                   "Patient.extension[0].value.ofType(oid)");
    }
    ASSERT_VALID(validateJson(patient(ext + R"("valueUuid":"urn:uuid:79a14950-442c-11ed-b878-0242ac120002"}])")));
    ASSERT_ISSUE(validateJson(patient(ext + R"("valueUuid":"urn:uuid:79A14950-442C-11ED-B878-0242AC120002"}])")),
                 IssueType::Value, "Patient.extension[0].value.ofType(uuid)");
    // base64Binary
    ASSERT_VALID(validateJson(patient(R"("photo":[{"data":"aGVsbG8="}])")));
    ASSERT_VALID(validateJson(patient(R"("photo":[{"data":"aGVs\nbG8h"}])")));
    for (const char* bad : {"aGVsbG8", "aGV=sbG8", "a!==", "===="}) {
      ASSERT_ISSUE(validateJson(patient(std::string(R"("photo":[{"data":")") + bad + R"("}])")),
                   IssueType::Value, "Patient.photo[0].data");
    }
  }

  void testStrings() {
    ASSERT_ISSUE(validateJson(patient(R"("name":[{"family":"   "}])")), IssueType::Value, "Patient.name[0].family");
    ASSERT_ISSUE(validateJson(patient(R"("name":[{"family":"Do\u0001e"}])")), IssueType::Value,
                 "Patient.name[0].family");
    ASSERT_VALID(validateJson(patient(R"("name":[{"text":"Line one\r\n\tLine two","family":"M\u00fcller"}])")));
    // Invalid UTF-8 (the REST parser rejects it too; the validator does not rely on that).
    rapidjson::Document doc;
    doc.Parse(patient(R"("name":[{"family":"x"}])").c_str());
    doc["name"][0]["family"].SetString("\xc3\x28", 2, doc.GetAllocator());
    const auto issues = hearth::fhir::ResourceValidator().validate(doc);
    ASSERT_ISSUE(issues, IssueType::Value, "Patient.name[0].family");
  }

  void testNarrativeDiv() {
    ASSERT_VALID(validateJson(patient(
        R"("text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>x</p></div>"})")));
    ASSERT_ISSUE(validateJson(patient(R"("text":{"status":"generated","div":"plain text"})")), IssueType::Value,
                 "Patient.text.div");
    ASSERT_ISSUE(validateJson(patient(R"("text":{"status":"generated","div":"<p>x</p>"})")), IssueType::Value,
                 "Patient.text.div");
    ASSERT_ISSUE(validateJson(patient(R"("text":{"status":"generated"})")), IssueType::Required, "Patient.text.div");
    ASSERT_ISSUE(validateJson(patient(R"("text":{"status":"generated","div":"<div>x</div>","_div":{"id":"a"}})")),
                 IssueType::Structure, "Patient.text._div");
  }

  void testMissingRequiredElements() {
    auto issues = validateJson(R"({"resourceType":"Observation","code":{"text":"x"}})");
    CPPUNIT_ASSERT_EQUAL(size_t(1), issues.size());
    ASSERT_ISSUE(issues, IssueType::Required, "Observation.status");
    issues = validateJson(R"({"resourceType":"Observation"})");
    CPPUNIT_ASSERT_EQUAL(size_t(2), issues.size());
    ASSERT_ISSUE(issues, IssueType::Required, "Observation.status");
    ASSERT_ISSUE(issues, IssueType::Required, "Observation.code");
    // Inside a present backbone element and inside a data type.
    ASSERT_ISSUE(validateJson(observation(R"("component":[{"valueString":"x"}])")), IssueType::Required,
                 "Observation.component[0].code");
    ASSERT_ISSUE(validateJson(patient(R"("link":[{"type":"seealso"}])")), IssueType::Required, "Patient.link[0].other");
    // A required choice element.
    ASSERT_ISSUE(validateJson(R"({"resourceType":"MedicationRequest","status":"active","intent":"order",)"
                              R"("subject":{"reference":"Patient/1"}})"),
                 IssueType::Required, "MedicationRequest.medication");
    // A primitive present only through its extension counts as present.
    ASSERT_VALID(validateJson(R"({"resourceType":"Observation","code":{"text":"x"},"_status":{"extension":[)"
                              R"({"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"unknown"}]}})"));
  }

  void testRequiredBindingOnCode() {
    auto issues = validateJson(patient(R"("gender":"mal")"));
    CPPUNIT_ASSERT_EQUAL(size_t(1), issues.size());
    ASSERT_ISSUE(issues, IssueType::CodeInvalid, "Patient.gender");
    CPPUNIT_ASSERT(issues[0].diagnostics.find("'mal'") != std::string::npos);
    CPPUNIT_ASSERT(issues[0].diagnostics.find("male, female, other, unknown") != std::string::npos);
    ASSERT_ISSUE(validateJson(patient(R"("gender":"Male")")), IssueType::CodeInvalid, "Patient.gender");
    for (const char* g : {"male", "female", "other", "unknown"}) {
      ASSERT_VALID(validateJson(patient(std::string(R"("gender":")") + g + "\"")));
    }
    ASSERT_ISSUE(validateJson(R"({"resourceType":"Observation","status":"done","code":{"text":"x"}})"),
                 IssueType::CodeInvalid, "Observation.status");
    ASSERT_ISSUE(validateJson(patient(R"("telecom":[{"system":"telepathy","value":"x"}])")), IssueType::CodeInvalid,
                 "Patient.telecom[0].system");
    // Not enumerable (BCP-13 mime types): not checked.
    ASSERT_VALID(validateJson(patient(R"("photo":[{"contentType":"application/x-made-up"}])")));
  }

  void testRequiredBindingOnCodeableConcept() {
    const std::string base = R"({"resourceType":"Condition","subject":{"reference":"Patient/1"},"clinicalStatus":)";
    ASSERT_VALID(validateJson(
        base + R"({"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]}})"));
    const auto issues = validateJson(
        base + R"({"coding":[{"system":"http://snomed.info/sct","code":"55561003"},)"
               R"({"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"bogus"}]}})");
    CPPUNIT_ASSERT_EQUAL(size_t(1), issues.size());
    ASSERT_ISSUE(issues, IssueType::CodeInvalid, "Condition.clinicalStatus.coding[1].code");
    // Codings of other systems and text-only concepts are not judged.
    ASSERT_VALID(validateJson(base + R"({"coding":[{"system":"http://snomed.info/sct","code":"55561003"}]}})"));
    ASSERT_VALID(validateJson(base + R"({"text":"active"}})"));
  }

  void testEmptyObjectArrayAndNull() {
    ASSERT_ISSUE(validateJson(patient(R"("maritalStatus":{})")), IssueType::Structure, "Patient.maritalStatus");
    ASSERT_ISSUE(validateJson(patient(R"("name":[])")), IssueType::Structure, "Patient.name");
    ASSERT_ISSUE(validateJson(patient(R"("name":[{}])")), IssueType::Structure, "Patient.name[0]");
    ASSERT_ISSUE(validateJson(patient(R"("gender":null)")), IssueType::Structure, "Patient.gender");
    ASSERT_ISSUE(validateJson(patient(R"("name":[null])")), IssueType::Structure, "Patient.name[0]");
    ASSERT_ISSUE(validateJson(patient(R"("name":[{"given":["Jane",null]}])")), IssueType::Structure,
                 "Patient.name[0].given[1]");
    const auto issues = validateJson(patient(R"("name":[{"family":""}])"));
    CPPUNIT_ASSERT_EQUAL(size_t(1), issues.size());
    ASSERT_ISSUE(issues, IssueType::Structure, "Patient.name[0].family");
    ASSERT_ISSUE(validateJson(R"({"resourceType":"Patient","id":""})"), IssueType::Structure, "Patient.id");
  }

  void testDuplicateKeys() {
    auto issues = validateJson(R"({"resourceType":"Patient","gender":"male","gender":"female"})");
    CPPUNIT_ASSERT_EQUAL(size_t(1), issues.size());
    ASSERT_ISSUE(issues, IssueType::Structure, "Patient.gender");
    ASSERT_ISSUE(validateJson(R"({"resourceType":"Patient","resourceType":"Patient"})"), IssueType::Structure,
                 "Patient");
    ASSERT_ISSUE(validateJson(patient(R"("name":[{"family":"a","family":"b"}])")), IssueType::Structure,
                 "Patient.name[0].family");
    ASSERT_ISSUE(validateJson(patient(R"("_birthDate":{"id":"a"},"birthDate":"1980","_birthDate":{"id":"b"})")),
                 IssueType::Structure, "Patient.birthDate");
  }

  void testTwoChoiceVariants() {
    auto issues = validateJson(patient(R"("deceasedBoolean":false,"deceasedDateTime":"2020-01-01")"));
    CPPUNIT_ASSERT_EQUAL(size_t(1), issues.size());
    ASSERT_ISSUE(issues, IssueType::Structure, "Patient.deceased");
    ASSERT_ISSUE(validateJson(observation(R"("valueString":"x","_valueBoolean":{"id":"a"})")), IssueType::Structure,
                 "Observation.value");
    // The value and its extension of the same variant are one element.
    ASSERT_VALID(validateJson(observation(R"("valueString":"x","_valueString":{"id":"a"})")));
  }

  void testChoiceExpressions() {
    ASSERT_ISSUE(validateJson(observation(R"("valueQuantity":{"value":1,"comparator":"~"})")), IssueType::CodeInvalid,
                 "Observation.value.ofType(Quantity).comparator");
    ASSERT_ISSUE(validateJson(observation(R"("valuePeriod":{"start":"2024-13"})")), IssueType::Value,
                 "Observation.value.ofType(Period).start");
    ASSERT_ISSUE(validateJson(observation(R"("component":[{"code":{"text":"a"},"valueBoolean":"yes"}])")),
                 IssueType::Structure, "Observation.component[0].value.ofType(boolean)");
  }

  void testPrimitiveExtensions() {
    const std::string dar = R"({"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"masked"})";
    ASSERT_VALID(validateJson(patient(R"("birthDate":"1980","_birthDate":{"id":"b1","extension":[)" + dar + "]}")));
    ASSERT_VALID(validateJson(patient(R"("_birthDate":{"extension":[)" + dar + "]}")));  // `_x` without `x`
    ASSERT_ISSUE(validateJson(patient(R"("_birthDate":"x")")), IssueType::Structure, "Patient.birthDate");
    ASSERT_ISSUE(validateJson(patient(R"("_birthDate":[{"id":"a"}])")), IssueType::Structure, "Patient.birthDate");
    ASSERT_ISSUE(validateJson(patient(R"("_birthDate":{"foo":1})")), IssueType::Structure, "Patient.birthDate.foo");
    ASSERT_ISSUE(validateJson(patient(R"("_birthDate":{"extension":[{"valueCode":"masked"}]})")), IssueType::Required,
                 "Patient.birthDate.extension[0].url");
    // No value and no extensions: nothing is said.
    ASSERT_ISSUE(validateJson(patient(R"("_birthDate":{"id":"a"})")), IssueType::Invariant, "Patient.birthDate");
    // Element.id and Resource.id are not primitives with extensions.
    ASSERT_ISSUE(validateJson(patient(R"("_id":{"id":"a"})")), IssueType::Structure, "Patient._id");
  }

  void testRepeatingPrimitiveExtensions() {
    const std::string ext = R"({"extension":[{"url":"http://example.org/syllables","valueInteger":2}]})";
    ASSERT_VALID(validateJson(patient(R"("name":[{"given":["Jane","Ann"],"_given":[null,)" + ext + "]}]")));
    ASSERT_VALID(validateJson(patient(R"("name":[{"given":[null,"Ann"],"_given":[)" + ext + ",null]}]")));
    ASSERT_ISSUE(validateJson(patient(R"("name":[{"given":["Jane","Ann"],"_given":[)" + ext + "]}]")),
                 IssueType::Structure, "Patient.name[0].given");
    ASSERT_ISSUE(validateJson(patient(R"("name":[{"given":[null,"Ann"],"_given":[null,)" + ext + "]}]")),
                 IssueType::Structure, "Patient.name[0].given[0]");
    ASSERT_ISSUE(validateJson(patient(R"("name":[{"given":["Jane"],"_given":[null]}])")), IssueType::Structure,
                 "Patient.name[0].given");
    ASSERT_ISSUE(validateJson(patient(R"("name":[{"given":["Jane"],"_given":)" + ext + "}]")), IssueType::Structure,
                 "Patient.name[0].given");
    ASSERT_ISSUE(validateJson(patient(R"("name":[{"given":["Jane"],"_given":[{"extension":[{"url":"u"}]}]}])")),
                 IssueType::Invariant, "Patient.name[0].given[0].extension[0]");
  }

  void testExtensions() {
    ASSERT_VALID(validateJson(patient(R"("extension":[{"url":"http://example.org/a","extension":[)"
                                      R"({"url":"b","valueString":"x"},{"url":"c","valueQuantity":{"value":1}}]}])")));
    ASSERT_ISSUE(validateJson(patient(R"("extension":[{"valueString":"x"}])")), IssueType::Required,
                 "Patient.extension[0].url");
    ASSERT_ISSUE(validateJson(patient(R"("extension":[{"url":"http://example.org/a"}])")), IssueType::Invariant,
                 "Patient.extension[0]");
    ASSERT_ISSUE(validateJson(patient(R"("extension":[{"url":"http://example.org/a","valueString":"x",)"
                                      R"("extension":[{"url":"b","valueString":"y"}]}])")),
                 IssueType::Invariant, "Patient.extension[0]");
    ASSERT_ISSUE(validateJson(patient(R"("modifierExtension":[{"url":"http://example.org/a","valueFoo":1}])")),
                 IssueType::Structure, "Patient.modifierExtension[0].valueFoo");
    ASSERT_ISSUE(validateJson(patient(R"("extension":[{"url":"http://exa mple.org/a","valueString":"x"}])")),
                 IssueType::Value, "Patient.extension[0].url");
    ASSERT_ISSUE(validateJson(patient(R"("extension":[{"url":"http://example.org/a","_url":{"id":"x"},"valueString":"x"}])")),
                 IssueType::Structure, "Patient.extension[0]._url");
    ASSERT_ISSUE(validateJson(patient(R"("extension":{"url":"http://example.org/a","valueString":"x"})")),
                 IssueType::Structure, "Patient.extension");
    ASSERT_ISSUE(validateJson(patient(R"("extension":[{"url":"http://example.org/a","valueDate":"2020-02-30"}])")),
                 IssueType::Value, "Patient.extension[0].value.ofType(date)");
  }

  void testContainedResources() {
    ASSERT_VALID(validateJson(patient(R"("contained":[{"resourceType":"Organization","id":"o1","name":"Org"}],)"
                                      R"("managingOrganization":{"reference":"#o1"})")));
    ASSERT_ISSUE(validateJson(patient(R"("contained":[{"resourceType":"Foo","id":"x"}])")), IssueType::Structure,
                 "Patient.contained[0]");
    ASSERT_ISSUE(validateJson(patient(R"("contained":[{"id":"x"}])")), IssueType::Structure, "Patient.contained[0]");
    ASSERT_ISSUE(validateJson(patient(R"("contained":[{"resourceType":"Organization","id":"o1","nam":"Org"}])")),
                 IssueType::Structure, "Patient.contained[0].ofType(Organization).nam");
    ASSERT_ISSUE(validateJson(patient(R"("contained":[{"resourceType":"Observation","id":"o1","code":{"text":"x"}}])")),
                 IssueType::Required, "Patient.contained[0].ofType(Observation).status");
    // dom-2, dom-4, dom-5
    ASSERT_ISSUE(validateJson(patient(R"("contained":[{"resourceType":"Organization","id":"o1",)"
                                      R"("contained":[{"resourceType":"Organization","id":"o2"}]}])")),
                 IssueType::Invariant, "Patient.contained[0].ofType(Organization).contained");
    ASSERT_ISSUE(validateJson(patient(R"("contained":[{"resourceType":"Organization","id":"o1",)"
                                      R"("meta":{"versionId":"2"}}])")),
                 IssueType::Invariant, "Patient.contained[0].ofType(Organization).meta");
    ASSERT_ISSUE(validateJson(patient(R"("contained":[{"resourceType":"Organization","id":"o1",)"
                                      R"("meta":{"security":[{"code":"R"}]}}])")),
                 IssueType::Invariant, "Patient.contained[0].ofType(Organization).meta.security");
  }

  void testBundleEntries() {
    const std::string bundle = R"({"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:)"
                               R"(0c3e2b3a-6a0e-4d6f-9d2b-3f1f4b9a7c01","resource":)";
    ASSERT_VALID(validateJson(bundle + R"({"resourceType":"Patient","gender":"male"}}]})"));
    ASSERT_ISSUE(validateJson(bundle + R"({"resourceType":"Patient","gender":"mal"}}]})"), IssueType::CodeInvalid,
                 "Bundle.entry[0].resource.ofType(Patient).gender");
    ASSERT_ISSUE(validateJson(bundle + R"({"resourceType":"Nope"}}]})"), IssueType::Structure,
                 "Bundle.entry[0].resource");
    ASSERT_ISSUE(validateJson(R"({"resourceType":"Bundle","entry":[{"request":{"method":"POST","url":"Patient"}}]})"),
                 IssueType::Required, "Bundle.type");
    ASSERT_ISSUE(validateJson(R"({"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"FETCH",)"
                              R"("url":"Patient"}}]})"),
                 IssueType::CodeInvalid, "Bundle.entry[0].request.method");
    // Bundle.entry.response.outcome is any resource.
    ASSERT_VALID(validateJson(R"({"resourceType":"Bundle","type":"batch-response","entry":[{"response":{"status":)"
                              R"("400","outcome":{"resourceType":"OperationOutcome","issue":[{"severity":"error",)"
                              R"("code":"invalid"}]}}}]})"));
  }

  void testResourceTypeOnlyAtResourceLevel() {
    ASSERT_ISSUE(validateJson(patient(R"("name":[{"resourceType":"HumanName","family":"x"}])")), IssueType::Structure,
                 "Patient.name[0].resourceType");
    // ...except where the model defines an element of that name (ExampleScenario.instance).
    ASSERT_VALID(validateJson(R"({"resourceType":"ExampleScenario","status":"draft","instance":[{"resourceId":"a",)"
                              R"("resourceType":"Patient"}]})"));
  }

  void testReferenceTargets() {
    ASSERT_VALID(validateJson(observation(R"("subject":{"reference":"Patient/123"})")));
    ASSERT_VALID(validateJson(observation(R"("subject":{"reference":"https://ehr.example.org/fhir/Group/7/_history/2"})")));
    ASSERT_VALID(validateJson(observation(R"("subject":{"reference":"urn:uuid:0c3e2b3a-6a0e-4d6f-9d2b-3f1f4b9a7c01"})")));
    ASSERT_VALID(validateJson(observation(R"("subject":{"reference":"#p1"})")));
    ASSERT_VALID(validateJson(observation(R"("subject":{"reference":"Patient?identifier=x|1"})")));
    ASSERT_VALID(validateJson(observation(R"("subject":{"reference":"http://example.org/things/42"})")));
    ASSERT_ISSUE(validateJson(observation(R"("subject":{"reference":"Practitioner/1"})")), IssueType::Value,
                 "Observation.subject.reference");
    ASSERT_ISSUE(validateJson(observation(R"("subject":{"reference":"http://x.org/fhir/Practitioner/1/_history/3"})")),
                 IssueType::Value, "Observation.subject.reference");
    ASSERT_ISSUE(validateJson(observation(R"("performer":[{"reference":"Patient/1"},{"reference":"Medication/2"}])")),
                 IssueType::Value, "Observation.performer[1].reference");
    // Reference(Any) accepts every type.
    ASSERT_VALID(validateJson(observation(R"("focus":[{"reference":"Medication/2"}])")));
  }

  void testSimpleQuantity() {
    const std::string base = R"({"resourceType":"MedicationRequest","status":"active","intent":"order",)"
                              R"("medicationCodeableConcept":{"text":"x"},"subject":{"reference":"Patient/1"},)"
                              R"("dispenseRequest":{"quantity":{"value":30)";
    ASSERT_VALID(validateJson(base + "}}}"));
    ASSERT_ISSUE(validateJson(base + R"(,"comparator":"<"}}})"), IssueType::Invariant,
                 "MedicationRequest.dispenseRequest.quantity.comparator");
  }

  void testElementWithOnlyId() {
    ASSERT_ISSUE(validateJson(patient(R"("maritalStatus":{"id":"m1"})")), IssueType::Invariant,
                 "Patient.maritalStatus");
    ASSERT_VALID(validateJson(patient(R"("maritalStatus":{"id":"m1","text":"Married"})")));
  }

  void testDeepNesting() {
    // 5000 nested extensions: one Structure issue, no stack overflow.
    std::string json = R"({"resourceType":"Patient","extension":[)";
    const int depth = 5000;
    for (int i = 0; i < depth; ++i) json += R"({"url":"http://example.org/n","extension":[)";
    json += R"({"url":"leaf","valueBoolean":true})";
    for (int i = 0; i < depth; ++i) json += "]}";
    json += "]}";
    const auto issues = validateJson(json);
    size_t depthIssues = 0;
    for (const auto& i : issues) {
      if (i.type == IssueType::Structure && i.diagnostics.find("depth") != std::string::npos) ++depthIssues;
    }
    CPPUNIT_ASSERT_EQUAL_MESSAGE(hearth::test::describe(issues), size_t(1), depthIssues);
    CPPUNIT_ASSERT(issues.size() <= 2);
    // 40 levels are fine.
    std::string ok = R"({"resourceType":"Patient","extension":[)";
    for (int i = 0; i < 20; ++i) ok += R"({"url":"http://example.org/n","extension":[)";
    ok += R"({"url":"leaf","valueBoolean":true})";
    for (int i = 0; i < 20; ++i) ok += "]}";
    ok += "]}";
    ASSERT_VALID(validateJson(ok));
  }

  void testIssueLimit() {
    std::string members;
    for (int i = 0; i < 500; ++i) members += (i ? "," : "") + std::string("\"bad") + std::to_string(i) + "\":1";
    const auto issues = validateJson(patient(members));
    CPPUNIT_ASSERT_EQUAL(hearth::fhir::ResourceValidator::kMaxIssues + 1, issues.size());
    CPPUNIT_ASSERT(issues.back().type == IssueType::TooCostly);
  }

  void testStructuralClassification() {
    using hearth::fhir::hasStructuralIssue;
    CPPUNIT_ASSERT(hasStructuralIssue(validateJson(patient(R"("foo":1)"))));
    CPPUNIT_ASSERT(hasStructuralIssue(validateJson(patient(R"("gender":"male","birthDate":"1980-13","foo":1)"))));
    CPPUNIT_ASSERT(!hasStructuralIssue(validateJson(patient(R"("birthDate":"1980-13")"))));
    CPPUNIT_ASSERT(!hasStructuralIssue(validateJson(patient(R"("gender":"mal")"))));
    CPPUNIT_ASSERT(!hasStructuralIssue(validateJson(R"({"resourceType":"Observation"})")));
    CPPUNIT_ASSERT(!hasStructuralIssue({}));
    CPPUNIT_ASSERT(hasStructuralIssue({hearth::fhir::Issue{hearth::fhir::Severity::Error, IssueType::Invalid, "x", ""}}));
  }

  void testDiagnosticsDoNotEchoFreeText() {
    auto issues = validateJson(patient(R"("name":[{"family":"Secretname\u0001"}])"));
    CPPUNIT_ASSERT_EQUAL(size_t(1), issues.size());
    CPPUNIT_ASSERT(issues[0].diagnostics.find("Secretname") == std::string::npos);
    issues = validateJson(patient(R"("birthDate":"1980-13-01")"));
    CPPUNIT_ASSERT(issues[0].diagnostics.find("'1980-13-01'") != std::string::npos);
    CPPUNIT_ASSERT(issues[0].diagnostics.find("birthDate") != std::string::npos);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ValidatorTest);
