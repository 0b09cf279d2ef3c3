// The pure parts of the search result layer (fhir/src/search_results.h): _summary / _elements on
// resources of several types, _include / _revinclude value parsing, and the compiled-in Patient
// compartment (checked against the R4 definitions the model carries).
#include <cppunit/extensions/HelperMacros.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "hearth/fhir/error.h"
#include "hearth/fhir/json.h"
#include "search_results.h"

// Lists compare and print as ["a", "b"] in assertion messages.
template <>
struct CppUnit::assertion_traits<std::vector<std::string>> {
  static bool equal(const std::vector<std::string>& a, const std::vector<std::string>& b) { return a == b; }
  static std::string toString(const std::vector<std::string>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", \"" : "\"") + v[i] + "\"";
    return s + "]";
  }
};

using namespace hearth::fhir;
using namespace hearth::fhir::searchimpl;

namespace {

const char* kPatient = R"({"resourceType":"Patient","id":"p1","meta":{"versionId":"3","lastUpdated":"2024-01-02T03:04:05.678Z"},)"
                       R"("text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Ann Lee</div>"},)"
                       R"("extension":[{"url":"http://example.org/ext","valueString":"x"}],)"
                       R"("identifier":[{"system":"http://hosp.example/mrn","value":"123"},{"extension":[{"url":"http://example.org/e","valueString":"only an extension"}]}],)"
                       R"("active":true,)"
                       R"("name":[{"extension":[{"url":"http://example.org/n","valueString":"n"}],"family":"Lee","given":["Ann"]}],)"
                       R"("gender":"female","birthDate":"1980-05-06","_birthDate":{"extension":[{"url":"http://example.org/t","valueTime":"10:00:00"}]},)"
                       R"("maritalStatus":{"text":"married"},)"
                       R"("photo":[{"contentType":"image/png","data":"AAAA"}],)"
                       R"("contact":[{"name":{"family":"Lee"}}],)"
                       R"("communication":[{"language":{"text":"English"},"preferred":true}],)"
                       R"("link":[{"other":{"reference":"Patient/p0"},"type":"replaces","extension":[{"url":"http://example.org/l","valueString":"l"}]}]})";

const char* kObservation = R"({"resourceType":"Observation","id":"o1","meta":{"versionId":"1","lastUpdated":"2024-01-02T03:04:05.678Z","tag":[{"system":"http://example.org/tags","code":"lab"}]},)"
                           R"("text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Glucose</div>"},)"
                           R"("status":"final","category":[{"text":"laboratory"}],)"
                           R"("code":{"coding":[{"system":"http://loinc.org","code":"15074-8","display":"Glucose"}]},)"
                           R"("subject":{"reference":"Patient/p1"},)"
                           R"("valueQuantity":{"value":1.50,"unit":"mmol/L","system":"http://unitsofmeasure.org","code":"mmol/L"},)"
                           R"("interpretation":[{"text":"normal"}],"note":[{"text":"fasting"}],)"
                           R"("modifierExtension":[{"url":"http://example.org/mod","valueCode":"hypothetical"}],)"
                           R"("component":[{"code":{"text":"part"},"valueQuantity":{"value":2.250},"interpretation":[{"text":"high"}]}]})";

rapidjson::Document parse(const std::string& s) { return parseJson(s); }

std::vector<std::string> memberNames(const rapidjson::Value& v) {
  std::vector<std::string> out;
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) out.emplace_back(it->name.GetString());
  return out;
}

bool has(const rapidjson::Value& v, const char* name) { return v.IsObject() && v.HasMember(name); }

int subsettedTags(const rapidjson::Value& r) {
  if (!has(r, "meta") || !has(r["meta"], "tag")) return 0;
  int n = 0;
  for (const auto& t : r["meta"]["tag"].GetArray()) {
    if (has(t, "system") && has(t, "code") &&
        std::string(t["system"].GetString()) == "http://terminology.hl7.org/CodeSystem/v3-ObservationValue" &&
        std::string(t["code"].GetString()) == "SUBSETTED") {
      ++n;
    }
  }
  return n;
}

int statusOf(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const FhirError& e) {
    return e.status();
  }
  return 0;
}

std::string sum(const char* type, const std::string& json, const char* summary, const char* elements = "") {
  return applySummary(Model::r4(), type, json, summary, elements);
}

}  // namespace

class SummaryTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(SummaryTest);
  CPPUNIT_TEST(testPatientSummaryTrue);
  CPPUNIT_TEST(testObservationSummaryTrueKeepsChoiceAndDecimals);
  CPPUNIT_TEST(testTextMode);
  CPPUNIT_TEST(testDataMode);
  CPPUNIT_TEST(testFalseAndEmptyReturnTheResourceAsIs);
  CPPUNIT_TEST(testElements);
  CPPUNIT_TEST(testElementsChoiceAndPrefixedNames);
  CPPUNIT_TEST(testNoTagWhenNothingRemoved);
  CPPUNIT_TEST(testTagCreatesMetaAndIsNotDuplicated);
  CPPUNIT_TEST(testInvalidSummary);
  CPPUNIT_TEST(testEveryResourceTypeSurvives);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testPatientSummaryTrue() {
    const auto r = parse(sum("Patient", kPatient, "true"));
    // R4: identifier, active, name, telecom, gender, birthDate, deceased[x], address,
    // managingOrganization, link are summary elements; text, photo, contact, communication,
    // maritalStatus and extension are not.
    for (const char* kept : {"resourceType", "id", "meta", "identifier", "active", "name", "gender", "birthDate", "link"})
      CPPUNIT_ASSERT_MESSAGE(kept, has(r, kept));
    for (const char* gone : {"text", "extension", "photo", "contact", "communication", "maritalStatus"})
      CPPUNIT_ASSERT_MESSAGE(gone, !has(r, gone));
    // Inside kept elements the data types' summary flags apply: HumanName.extension goes.
    CPPUNIT_ASSERT(!has(r["name"][0], "extension"));
    CPPUNIT_ASSERT_EQUAL(std::string("Lee"), std::string(r["name"][0]["family"].GetString()));
    // An identifier that only carried an extension is empty now, so it is left out.
    CPPUNIT_ASSERT_EQUAL(1u, r["identifier"].Size());
    CPPUNIT_ASSERT_EQUAL(std::string("123"), std::string(r["identifier"][0]["value"].GetString()));
    // The primitive's extension stays with the primitive.
    CPPUNIT_ASSERT(has(r, "_birthDate"));
    // Patient.link.other and .type are mandatory summary elements; link.extension is not summary.
    CPPUNIT_ASSERT(has(r["link"][0], "other") && has(r["link"][0], "type"));
    CPPUNIT_ASSERT(!has(r["link"][0], "extension"));
    CPPUNIT_ASSERT_EQUAL(1, subsettedTags(r));
    CPPUNIT_ASSERT_EQUAL(std::string("3"), std::string(r["meta"]["versionId"].GetString()));
    // resourceType stays first.
    CPPUNIT_ASSERT_EQUAL(std::string("resourceType"), memberNames(r).front());
  }

  void testObservationSummaryTrueKeepsChoiceAndDecimals() {
    const std::string out = sum("Observation", kObservation, "true");
    const auto r = parse(out);
    for (const char* kept : {"status", "code", "subject", "valueQuantity", "component", "modifierExtension"})
      CPPUNIT_ASSERT_MESSAGE(kept, has(r, kept));
    for (const char* gone : {"text", "category", "interpretation", "note"}) CPPUNIT_ASSERT_MESSAGE(gone, !has(r, gone));
    // Decimals keep their exact text.
    CPPUNIT_ASSERT_MESSAGE(out, out.find("\"value\":1.50") != std::string::npos);
    CPPUNIT_ASSERT_MESSAGE(out, out.find("\"value\":2.250") != std::string::npos);
    // Backbone element: component.code and component.value[x] are summary, interpretation is not.
    CPPUNIT_ASSERT(has(r["component"][0], "valueQuantity"));
    CPPUNIT_ASSERT(!has(r["component"][0], "interpretation"));
    // The resource-level modifierExtension is not a summary element in R4, but it is a modifier:
    // it stays, and keeps its value (an extension without it means nothing).
    CPPUNIT_ASSERT_EQUAL(std::string("hypothetical"), std::string(r["modifierExtension"][0]["valueCode"].GetString()));
    // The existing tag stays, SUBSETTED is added once.
    CPPUNIT_ASSERT_EQUAL(2u, r["meta"]["tag"].Size());
    CPPUNIT_ASSERT_EQUAL(1, subsettedTags(r));
  }

  void testTextMode() {
    const auto p = parse(sum("Patient", kPatient, "text"));
    CPPUNIT_ASSERT_EQUAL((std::vector<std::string>{"resourceType", "id", "meta", "text"}), memberNames(p));
    CPPUNIT_ASSERT_EQUAL(1, subsettedTags(p));
    // Observation: status and code are mandatory top-level elements, kept with text.
    const auto o = parse(sum("Observation", kObservation, "text"));
    CPPUNIT_ASSERT_EQUAL((std::vector<std::string>{"resourceType", "id", "meta", "text", "status", "code"}), memberNames(o));
  }

  void testDataMode() {
    const auto r = parse(sum("Patient", kPatient, "data"));
    CPPUNIT_ASSERT(!has(r, "text"));
    for (const char* kept : {"extension", "photo", "contact", "communication", "name", "identifier"})
      CPPUNIT_ASSERT_MESSAGE(kept, has(r, kept));
    CPPUNIT_ASSERT_EQUAL(2u, r["identifier"].Size());
    CPPUNIT_ASSERT_EQUAL(1, subsettedTags(r));
    // Without a narrative there is nothing to remove: the resource comes back as it is.
    const std::string noText = R"({"resourceType":"Patient","id":"x","gender":"male"})";
    CPPUNIT_ASSERT_EQUAL(noText, sum("Patient", noText, "data"));
  }

  void testFalseAndEmptyReturnTheResourceAsIs() {
    CPPUNIT_ASSERT_EQUAL(std::string(kPatient), sum("Patient", kPatient, "false"));
    CPPUNIT_ASSERT_EQUAL(std::string(kPatient), sum("Patient", kPatient, ""));
  }

  void testElements() {
    const auto r = parse(sum("Patient", kPatient, "", "name,birthDate"));
    CPPUNIT_ASSERT_EQUAL((std::vector<std::string>{"resourceType", "id", "meta", "name", "birthDate", "_birthDate"}),
                        memberNames(r));
    // Listed elements are returned whole (no summary filtering inside them).
    CPPUNIT_ASSERT(has(r["name"][0], "extension"));
    CPPUNIT_ASSERT_EQUAL(1, subsettedTags(r));
    // Mandatory elements come along: Observation.status and .code.
    const auto o = parse(sum("Observation", kObservation, "", "subject"));
    CPPUNIT_ASSERT_EQUAL((std::vector<std::string>{"resourceType", "id", "meta", "status", "code", "subject"}),
                        memberNames(o));
  }

  void testElementsChoiceAndPrefixedNames() {
    for (const char* spec : {"value", "value[x]", "valueQuantity", "Observation.value", " value "}) {
      const auto o = parse(sum("Observation", kObservation, "", spec));
      CPPUNIT_ASSERT_MESSAGE(spec, has(o, "valueQuantity"));
      CPPUNIT_ASSERT_MESSAGE(spec, !has(o, "subject"));
    }
    // Unknown names select nothing but do not fail.
    const auto p = parse(sum("Patient", kPatient, "", "nosuch"));
    CPPUNIT_ASSERT_EQUAL((std::vector<std::string>{"resourceType", "id", "meta"}), memberNames(p));
  }

  void testNoTagWhenNothingRemoved() {
    const std::string small =
        R"({"resourceType":"Patient","id":"s","meta":{"versionId":"1","lastUpdated":"2024-01-01T00:00:00.000Z"},"name":[{"family":"Lee"}],"gender":"other"})";
    CPPUNIT_ASSERT_EQUAL(small, sum("Patient", small, "true"));
    CPPUNIT_ASSERT_EQUAL(small, sum("Patient", small, "", "name,gender"));
    CPPUNIT_ASSERT_EQUAL(0, subsettedTags(parse(sum("Patient", small, "true"))));
  }

  void testTagCreatesMetaAndIsNotDuplicated() {
    const std::string noMeta = R"({"resourceType":"Patient","id":"n","photo":[{"title":"x"}],"gender":"male"})";
    const auto r = parse(sum("Patient", noMeta, "true"));
    CPPUNIT_ASSERT_EQUAL((std::vector<std::string>{"resourceType", "id", "meta", "gender"}), memberNames(r));
    CPPUNIT_ASSERT_EQUAL(1, subsettedTags(r));
    // Summarising a summary does not add a second tag.
    const std::string once = sum("Patient", kPatient, "true");
    const auto twice = parse(sum("Patient", once, "", "name"));
    CPPUNIT_ASSERT_EQUAL(1, subsettedTags(twice));
  }

  void testInvalidSummary() {
    CPPUNIT_ASSERT_EQUAL(400, statusOf([] { sum("Patient", kPatient, "yes"); }));
    CPPUNIT_ASSERT_EQUAL(400, statusOf([] { sum("Patient", kPatient, "TRUE"); }));
    CPPUNIT_ASSERT_EQUAL(400, statusOf([] { sum("Patient", kPatient, "count"); }));  // the engine's job
  }

  // Every resource type: a minimal resource with a narrative survives every mode as valid JSON
  // that still names its type and id.
  void testEveryResourceTypeSurvives() {
    for (const std::string& type : Model::r4().resourceTypes()) {
      const std::string json = "{\"resourceType\":\"" + type + "\",\"id\":\"a\",\"language\":\"en\"}";
      for (const char* mode : {"true", "text", "data", "false"}) {
        const auto r = parse(sum(type.c_str(), json, mode));
        CPPUNIT_ASSERT_MESSAGE(type + " " + mode, std::string(r["resourceType"].GetString()) == type);
        CPPUNIT_ASSERT_MESSAGE(type + " " + mode, std::string(r["id"].GetString()) == "a");
      }
    }
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(SummaryTest);

class IncludeSpecTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(IncludeSpecTest);
  CPPUNIT_TEST(testValid);
  CPPUNIT_TEST(testInvalid);
  CPPUNIT_TEST(testModifiers);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testValid() {
    const Model& m = Model::r4();
    IncludeSpec s = parseIncludeSpec(m, "Observation:subject");
    CPPUNIT_ASSERT_EQUAL(std::string("Observation"), s.sourceType);
    CPPUNIT_ASSERT_EQUAL(std::string("subject"), s.param);
    CPPUNIT_ASSERT(s.targetType.empty());
    CPPUNIT_ASSERT(!s.iterate);
    s = parseIncludeSpec(m, "Observation:subject:Patient");
    CPPUNIT_ASSERT_EQUAL(std::string("Patient"), s.targetType);
    s = parseIncludeSpec(m, "*");
    CPPUNIT_ASSERT_EQUAL(std::string("*"), s.sourceType);
    CPPUNIT_ASSERT_EQUAL(std::string("*"), s.param);
    s = parseIncludeSpec(m, "MedicationRequest:*");
    CPPUNIT_ASSERT_EQUAL(std::string("MedicationRequest"), s.sourceType);
    CPPUNIT_ASSERT_EQUAL(std::string("*"), s.param);
    // A parameter whose targets include any resource accepts any target type.
    s = parseIncludeSpec(m, "Observation:focus:Medication");
    CPPUNIT_ASSERT_EQUAL(std::string("Medication"), s.targetType);
  }

  void testInvalid() {
    const Model& m = Model::r4();
    for (const char* v : {"", "Observation", "Observation:", "Nope:subject", "Observation:nosuch",
                          "Observation:code",                 // a token parameter
                          "Observation:subject:Medication",   // not a target of subject
                          "Observation:subject:Nope", "Observation:*:Patient", "a:b:c:d", "observation:subject"}) {
      CPPUNIT_ASSERT_EQUAL_MESSAGE(v, 400, statusOf([&] { parseIncludeSpec(m, v); }));
    }
  }

  void testModifiers() {
    const Model& m = Model::r4();
    CPPUNIT_ASSERT(!parseIncludeSpec(m, "_include", "Observation:subject").iterate);
    CPPUNIT_ASSERT(parseIncludeSpec(m, "_include:iterate", "Observation:subject").iterate);
    CPPUNIT_ASSERT(parseIncludeSpec(m, "_revinclude:iterate", "Observation:subject").iterate);
    CPPUNIT_ASSERT(parseIncludeSpec(m, "_include:recurse", "Observation:subject").iterate);  // R3 spelling
    CPPUNIT_ASSERT_EQUAL(400, statusOf([&] { parseIncludeSpec(m, "_include:deep", "Observation:subject"); }));
    CPPUNIT_ASSERT_EQUAL(400, statusOf([&] { parseIncludeSpec(m, "_sort", "Observation:subject"); }));
    CPPUNIT_ASSERT_EQUAL(400, statusOf([&] { parseIncludeSpec(m, "_include:iterate", "Observation:code"); }));
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(IncludeSpecTest);

class CompartmentTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(CompartmentTest);
  CPPUNIT_TEST(testKnownEntries);
  CPPUNIT_TEST(testEveryParameterIsAPatientReference);
  CPPUNIT_TEST(testUnsupportedCompartments);
  CPPUNIT_TEST_SUITE_END();

  using V = std::vector<std::string>;

 public:
  void testKnownEntries() {
    CPPUNIT_ASSERT(compartmentTypeSupported("Patient"));
    CPPUNIT_ASSERT_EQUAL((V{"subject", "performer"}), compartmentParams("Patient", "Observation"));
    CPPUNIT_ASSERT_EQUAL((V{"link"}), compartmentParams("Patient", "Patient"));
    // The 4.0.1 definition puts Encounter in the compartment by subject (not by patient).
    CPPUNIT_ASSERT_EQUAL((V{"subject"}), compartmentParams("Patient", "Encounter"));
    CPPUNIT_ASSERT_EQUAL((V{"patient", "recorder", "asserter"}), compartmentParams("Patient", "AllergyIntolerance"));
    // Invoice: subject, patient, recipient; patient is subject.where(resolve() is Patient) and is
    // read through subject's rows (search_index.h).
    CPPUNIT_ASSERT_EQUAL((V{"subject", "recipient"}), compartmentParams("Patient", "Invoice"));
    // Types that are not in the compartment, and names that are not types.
    CPPUNIT_ASSERT(compartmentParams("Patient", "Practitioner").empty());
    CPPUNIT_ASSERT(compartmentParams("Patient", "Organization").empty());
    CPPUNIT_ASSERT(compartmentParams("Patient", "Medication").empty());
    CPPUNIT_ASSERT(compartmentParams("Patient", "Nope").empty());

    const V& types = compartmentResourceTypes("Patient");
    CPPUNIT_ASSERT_EQUAL(size_t(67), types.size());
    CPPUNIT_ASSERT(std::is_sorted(types.begin(), types.end()));
    for (const char* t : {"Observation", "Encounter", "Patient", "DiagnosticReport", "Appointment", "Invoice"})
      CPPUNIT_ASSERT_MESSAGE(t, std::binary_search(types.begin(), types.end(), t));
    CPPUNIT_ASSERT(!std::binary_search(types.begin(), types.end(), std::string("Practitioner")));
  }

  // The generated table agrees with the search parameters: every (type, param) is a reference
  // parameter of that type that can point at a Patient; "{def}" never appears as a parameter.
  void testEveryParameterIsAPatientReference() {
    const Model& m = Model::r4();
    for (const std::string& type : compartmentResourceTypes("Patient")) {
      CPPUNIT_ASSERT_MESSAGE(type, m.isResourceType(type));
      const V& params = compartmentParams("Patient", type);
      CPPUNIT_ASSERT_MESSAGE(type, !params.empty());
      for (const std::string& p : params) {
        CPPUNIT_ASSERT_MESSAGE(type + ":" + p, p != "{def}");
        const SearchParamDef* def = m.searchParam(type, p);
        CPPUNIT_ASSERT_MESSAGE(type + ":" + p, def != nullptr);
        CPPUNIT_ASSERT_EQUAL_MESSAGE(type + ":" + p, std::string("reference"), def->type);
        CPPUNIT_ASSERT_MESSAGE(type + ":" + p,
                               std::find(def->targets.begin(), def->targets.end(), "Patient") != def->targets.end());
      }
    }
  }

  void testUnsupportedCompartments() {
    for (const char* c : {"Encounter", "Practitioner", "RelatedPerson", "Device", "patient", ""}) {
      CPPUNIT_ASSERT_MESSAGE(c, !compartmentTypeSupported(c));
      CPPUNIT_ASSERT_MESSAGE(c, compartmentParams(c, "Observation").empty());
      CPPUNIT_ASSERT_MESSAGE(c, compartmentResourceTypes(c).empty());
    }
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(CompartmentTest);
