// ModelTest: the generated R4 model as other modules see it (resource types, search parameters,
// elements, bindings), plus a cross-check of every resource and data type against the official
// R4 JSON schema (../shared/fhir-r4/fhir.schema.json).
#include <algorithm>
#include <set>

#include "hearth/fhir/model.h"
#include "model_impl.h"
#include "model_test_support.h"

using hearth::fhir::ElementDef;
using hearth::fhir::Model;
using hearth::fhir::ModelImpl;

namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

const hearth::fhir::SearchParamDef* param(const std::string& type, const std::string& code) {
  return Model::r4().searchParam(type, code);
}

// JSON member names the model accepts directly in a node.
std::set<std::string> memberNames(const ModelImpl& m, int32_t node) {
  std::set<std::string> out;
  for (uint32_t e : m.node(static_cast<uint32_t>(node)).elements) {
    const auto& el = m.element(e);
    for (const auto& t : el.types) {
      const std::string name = el.def.isChoice ? el.def.name + t.jsonSuffix : el.def.name;
      for (const std::string& candidate : {name, "_" + name}) {
        if (m.member(static_cast<uint32_t>(node), candidate)) out.insert(candidate);
      }
    }
  }
  return out;
}

}  // namespace

class ModelTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(ModelTest);
  CPPUNIT_TEST(testResourceTypes);
  CPPUNIT_TEST(testPatientSearchParams);
  CPPUNIT_TEST(testSearchParamDetails);
  CPPUNIT_TEST(testObservationValueChoice);
  CPPUNIT_TEST(testGenderBinding);
  CPPUNIT_TEST(testElementLookup);
  CPPUNIT_TEST(testContentReference);
  CPPUNIT_TEST(testNonR4AdditionsAreAbsent);
  CPPUNIT_TEST(testMemberResolution);
  CPPUNIT_TEST(testValueSetEnumeration);
  CPPUNIT_TEST(testMatchesOfficialJsonSchema);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testResourceTypes() {
    const Model& m = Model::r4();
    const auto& types = m.resourceTypes();
    CPPUNIT_ASSERT_EQUAL(size_t(146), types.size());
    CPPUNIT_ASSERT(std::is_sorted(types.begin(), types.end()));
    for (const char* t : {"Patient", "Appointment", "MedicationRequest", "Invoice", "DiagnosticReport", "Bundle",
                          "Parameters", "Binary", "OperationOutcome", "VisionPrescription"}) {
      CPPUNIT_ASSERT_MESSAGE(t, contains(types, t));
      CPPUNIT_ASSERT_MESSAGE(t, m.isResourceType(t));
    }
    for (const char* t : {"Resource", "DomainResource", "MetadataResource", "SubscriptionStatus", "HumanName",
                          "string", "patient", ""}) {
      CPPUNIT_ASSERT_MESSAGE(t, !m.isResourceType(t));
      CPPUNIT_ASSERT_MESSAGE(t, !contains(types, t));
    }
    CPPUNIT_ASSERT(m.isDataType("HumanName"));
    CPPUNIT_ASSERT(m.isDataType("Dosage"));
    CPPUNIT_ASSERT(!m.isDataType("Patient"));
    CPPUNIT_ASSERT(!m.isDataType("string"));
    CPPUNIT_ASSERT(m.isPrimitiveType("positiveInt"));
    CPPUNIT_ASSERT(!m.isPrimitiveType("Quantity"));
  }

  void testPatientSearchParams() {
    const Model& m = Model::r4();
    const auto& params = m.searchParams("Patient");
    std::set<std::string> codes;
    for (const auto& p : params) codes.insert(p.code);
    for (const char* c : {"birthdate", "name", "identifier", "family", "given", "gender", "organization",
                          "general-practitioner", "_id", "_lastUpdated", "_tag", "_profile", "_security",
                          "_source", "_text"}) {
      CPPUNIT_ASSERT_MESSAGE(c, codes.count(c) == 1);
    }
    CPPUNIT_ASSERT_EQUAL(codes.size(), params.size());  // no code twice
    // Bundle is not a DomainResource: it has _id but no _text.
    CPPUNIT_ASSERT(param("Bundle", "_id") != nullptr);
    CPPUNIT_ASSERT(param("Bundle", "_text") == nullptr);
    CPPUNIT_ASSERT(m.searchParams("NoSuchType").empty());
  }

  void testSearchParamDetails() {
    const auto* birthdate = param("Patient", "birthdate");
    CPPUNIT_ASSERT(birthdate);
    CPPUNIT_ASSERT_EQUAL(std::string("date"), birthdate->type);
    CPPUNIT_ASSERT_EQUAL(std::string("Patient.birthDate | Person.birthDate | RelatedPerson.birthDate"),
                         birthdate->expression);
    CPPUNIT_ASSERT_EQUAL(std::string("http://hl7.org/fhir/SearchParameter/individual-birthdate"), birthdate->url);

    const auto* id = param("Patient", "_id");
    CPPUNIT_ASSERT(id);
    CPPUNIT_ASSERT_EQUAL(std::string("token"), id->type);
    CPPUNIT_ASSERT_EQUAL(std::string("Resource.id"), id->expression);

    const auto* gp = param("Patient", "general-practitioner");
    CPPUNIT_ASSERT(gp);
    CPPUNIT_ASSERT_EQUAL(std::string("reference"), gp->type);
    CPPUNIT_ASSERT(contains(gp->targets, "Practitioner"));
    CPPUNIT_ASSERT(contains(gp->targets, "Organization"));
    CPPUNIT_ASSERT(contains(gp->targets, "PractitionerRole"));

    const auto* composite = param("Observation", "code-value-quantity");
    CPPUNIT_ASSERT(composite);
    CPPUNIT_ASSERT_EQUAL(std::string("composite"), composite->type);
    CPPUNIT_ASSERT_EQUAL(size_t(2), composite->components.size());
    CPPUNIT_ASSERT_EQUAL(std::string("http://hl7.org/fhir/SearchParameter/clinical-code"),
                         composite->components[0].first);
    CPPUNIT_ASSERT_EQUAL(std::string("code"), composite->components[0].second);

    const auto* slotStart = param("Slot", "start");
    CPPUNIT_ASSERT(slotStart);
    CPPUNIT_ASSERT_EQUAL(std::string("Slot.start"), slotStart->expression);
    // The package's one non-R4 (5.0.0 snapshot) parameter is not carried.
    CPPUNIT_ASSERT(param("DeviceDefinition", "classification") == nullptr);
  }

  void testObservationValueChoice() {
    const ElementDef* value = Model::r4().element("Observation.value[x]");
    CPPUNIT_ASSERT(value);
    CPPUNIT_ASSERT(value->isChoice);
    CPPUNIT_ASSERT_EQUAL(std::string("value"), value->name);
    const std::vector<std::string> expected = {"Quantity", "CodeableConcept", "string",   "boolean",
                                               "integer",  "Range",           "Ratio",    "SampledData",
                                               "time",     "dateTime",        "Period"};
    CPPUNIT_ASSERT(expected == value->types);
    CPPUNIT_ASSERT_EQUAL(0u, value->min);
    CPPUNIT_ASSERT_EQUAL(1u, value->max);
    CPPUNIT_ASSERT(value->isSummary);
  }

  void testGenderBinding() {
    const ElementDef* gender = Model::r4().element("Patient.gender");
    CPPUNIT_ASSERT(gender);
    CPPUNIT_ASSERT_EQUAL(std::string("http://hl7.org/fhir/ValueSet/administrative-gender"), gender->requiredValueSet);
    const ModelImpl& m = Model::r4().impl();
    const auto& el = m.element(static_cast<uint32_t>(m.elementByPath("Patient.gender")));
    CPPUNIT_ASSERT(el.valueSet >= 0);
    const auto& vs = m.valueSet(static_cast<uint32_t>(el.valueSet));
    CPPUNIT_ASSERT(vs.enumerable);
    const std::set<std::string_view> codes(vs.all.begin(), vs.all.end());
    CPPUNIT_ASSERT((codes == std::set<std::string_view>{"male", "female", "other", "unknown"}));
    CPPUNIT_ASSERT(vs.codesOf("http://hl7.org/fhir/administrative-gender") != nullptr);
  }

  void testElementLookup() {
    const Model& m = Model::r4();
    const ElementDef* birthDate = m.element("Patient.birthDate");
    CPPUNIT_ASSERT(birthDate);
    CPPUNIT_ASSERT(birthDate->types == std::vector<std::string>{"date"});
    CPPUNIT_ASSERT(birthDate->isSummary);
    CPPUNIT_ASSERT(!birthDate->isArray());

    const ElementDef* name = m.element("Patient.name");
    CPPUNIT_ASSERT(name && name->isArray() && name->max == ElementDef::kUnbounded);

    const ElementDef* status = m.element("Observation.status");
    CPPUNIT_ASSERT(status && status->min == 1 && status->isModifier && status->isSummary);

    const ElementDef* subject = m.element("Observation.subject");
    CPPUNIT_ASSERT(subject);
    CPPUNIT_ASSERT(subject->types == std::vector<std::string>{"Reference"});
    CPPUNIT_ASSERT((subject->targets == std::vector<std::string>{"Patient", "Group", "Device", "Location"}));

    const ElementDef* contained = m.element("Patient.contained");
    CPPUNIT_ASSERT(contained && contained->types == std::vector<std::string>{"Resource"});
    const ElementDef* id = m.element("Patient.id");
    CPPUNIT_ASSERT(id && id->types == std::vector<std::string>{"id"});
    const ElementDef* dose = m.element("Dosage.doseAndRate.dose[x]");
    CPPUNIT_ASSERT(dose && (dose->types == std::vector<std::string>{"Range", "Quantity"}));

    CPPUNIT_ASSERT(m.element("Patient.nothing") == nullptr);
    CPPUNIT_ASSERT(m.element("HumanName.given") != nullptr);

    std::vector<std::string> children;
    for (const ElementDef* c : m.children("Patient.contact")) children.push_back(c->name);
    CPPUNIT_ASSERT((children == std::vector<std::string>{"id", "extension", "modifierExtension", "relationship",
                                                         "name", "telecom", "address", "gender", "organization",
                                                         "period"}));
    CPPUNIT_ASSERT(m.children("Patient.birthDate").empty());
    CPPUNIT_ASSERT(m.children("Observation.value[x]").empty());
    CPPUNIT_ASSERT(m.children("NoSuch.path").empty());
    const auto nameChildren = m.children("Patient.name");  // those of HumanName
    CPPUNIT_ASSERT(!nameChildren.empty() && nameChildren == m.children("HumanName"));
  }

  void testContentReference() {
    const Model& m = Model::r4();
    const ElementDef* nested = m.element("Questionnaire.item.item");
    CPPUNIT_ASSERT(nested);
    CPPUNIT_ASSERT_EQUAL(std::string("Questionnaire.item"), nested->contentReference);
    const auto direct = m.children("Questionnaire.item");
    const auto viaReference = m.children("Questionnaire.item.item");
    CPPUNIT_ASSERT(!direct.empty());
    CPPUNIT_ASSERT(direct == viaReference);
  }

  // The input package's snapshots carry vendor / R5 additions; the model is built from the R4
  // differentials and must not contain them.
  void testNonR4AdditionsAreAbsent() {
    const Model& m = Model::r4();
    for (const char* path : {"Meta.project", "Meta.account", "Meta.author", "Binary.url", "ResearchStudy.name",
                             "ResearchStudy.studyDesign", "DeviceDefinition.classification",
                             "ObservationDefinition.publisher", "EvidenceVariable.characteristic.linkId"}) {
      CPPUNIT_ASSERT_MESSAGE(path, m.element(path) == nullptr);
    }
    const ElementDef* outcome = m.element("Bundle.entry.response.outcome");
    CPPUNIT_ASSERT(outcome && outcome->types == std::vector<std::string>{"Resource"});
    const ElementDef* observer = m.element("AuditEvent.source.observer");
    CPPUNIT_ASSERT(observer && !contains(observer->targets, "Bot"));
    const ElementDef* definition = m.element("EvidenceVariable.characteristic.definition[x]");
    CPPUNIT_ASSERT(definition && definition->types.size() == 6);
    const ElementDef* studyStatus = m.element("ResearchStudy.status");
    CPPUNIT_ASSERT(studyStatus);
    CPPUNIT_ASSERT_EQUAL(std::string("http://hl7.org/fhir/ValueSet/research-study-status"),
                         studyStatus->requiredValueSet);
    const ElementDef* detectedIssue = m.element("DetectedIssue.status");
    CPPUNIT_ASSERT(detectedIssue);
    CPPUNIT_ASSERT_EQUAL(std::string("http://hl7.org/fhir/ValueSet/observation-status"),
                         detectedIssue->requiredValueSet);
  }

  void testMemberResolution() {
    const ModelImpl& m = Model::r4().impl();
    const int32_t obs = m.resourceNode("Observation");
    CPPUNIT_ASSERT(obs >= 0);
    const auto* quantity = m.member(static_cast<uint32_t>(obs), "valueQuantity");
    CPPUNIT_ASSERT(quantity && !quantity->underscore);
    CPPUNIT_ASSERT_EQUAL(std::string("Observation.value[x]"), m.element(quantity->element).def.path);
    CPPUNIT_ASSERT_EQUAL(std::string_view("Quantity"),
                         m.element(quantity->element).types[quantity->typeIndex].name);
    const auto* stringExt = m.member(static_cast<uint32_t>(obs), "_valueString");
    CPPUNIT_ASSERT(stringExt && stringExt->underscore);
    CPPUNIT_ASSERT(m.member(static_cast<uint32_t>(obs), "_valueQuantity") == nullptr);  // not a primitive
    CPPUNIT_ASSERT(m.member(static_cast<uint32_t>(obs), "value") == nullptr);
    CPPUNIT_ASSERT(m.member(static_cast<uint32_t>(obs), "resourceType") == nullptr);
    CPPUNIT_ASSERT(m.member(static_cast<uint32_t>(obs), "_id") == nullptr);  // Resource.id: no extensions
    const int32_t narrative = m.nodeByPath("Narrative");
    CPPUNIT_ASSERT(m.member(static_cast<uint32_t>(narrative), "div") != nullptr);
    CPPUNIT_ASSERT(m.member(static_cast<uint32_t>(narrative), "_div") == nullptr);
    // ExampleScenario.instance has an element named resourceType (a code).
    const int32_t instance = m.nodeByPath("ExampleScenario.instance");
    CPPUNIT_ASSERT(m.member(static_cast<uint32_t>(instance), "resourceType") != nullptr);
  }

  void testValueSetEnumeration() {
    const ModelImpl& m = Model::r4().impl();
    size_t enumerable = 0;
    bool sawMime = false;
    for (size_t i = 0; i < m.valueSetCount(); ++i) {
      const auto& vs = m.valueSet(static_cast<uint32_t>(i));
      if (vs.enumerable) {
        ++enumerable;
        CPPUNIT_ASSERT_MESSAGE(vs.url, !vs.all.empty());
      }
      if (vs.url == "http://hl7.org/fhir/ValueSet/mimetypes") {
        sawMime = true;
        CPPUNIT_ASSERT(!vs.enumerable);  // BCP-13: not enumerable, not checked
      }
    }
    CPPUNIT_ASSERT(sawMime);
    CPPUNIT_ASSERT(enumerable > 200);
    // A value set built from is-a filters over a code system hierarchy (v3 ActCode descendants)
    // and one made of a whole code system.
    const auto& status = m.element(static_cast<uint32_t>(m.elementByPath("Observation.status")));
    const auto& obsStatus = m.valueSet(static_cast<uint32_t>(status.valueSet));
    CPPUNIT_ASSERT(obsStatus.contains("final") && obsStatus.contains("entered-in-error") && !obsStatus.contains("done"));
    const auto& clinical = m.element(static_cast<uint32_t>(m.elementByPath("Condition.clinicalStatus")));
    const auto& clinicalVs = m.valueSet(static_cast<uint32_t>(clinical.valueSet));
    const auto* codes = clinicalVs.codesOf("http://terminology.hl7.org/CodeSystem/condition-clinical");
    CPPUNIT_ASSERT(codes && codes->count("active") && codes->count("recurrence") && codes->count("resolved"));
  }

  // Every property the official JSON schema defines for a resource or data type is a member the
  // model accepts, and vice versa except for the schema's known gaps: it has no `_name` for
  // canonical elements and predates Meta in the open types (valueMeta); it has `_url` on
  // Extension, which Hearth refuses (url is an XML attribute and cannot carry extensions).
  void testMatchesOfficialJsonSchema() {
    const std::string text = hearth::test::readFile(hearth::test::fhirDefsDir() + "/fhir.schema.json");
    rapidjson::Document schema;
    hearth::test::parseInto(schema, text);
    const auto& defs = schema["definitions"];
    const ModelImpl& m = Model::r4().impl();
    size_t compared = 0;
    for (const auto& type : m.types()) {
      if (type.isAbstract || type.node < 0) continue;
      if (type.name == "BackboneElement" || type.name == "Element") continue;
      const auto def = defs.FindMember(type.name.c_str());
      CPPUNIT_ASSERT_MESSAGE("schema has no definition for " + type.name, def != defs.MemberEnd());
      std::set<std::string> schemaNames;
      for (const auto& p : def->value["properties"].GetObject()) schemaNames.insert(p.name.GetString());
      schemaNames.erase("resourceType");
      const std::set<std::string> modelNames = memberNames(m, type.node);
      for (const std::string& n : schemaNames) {
        if (type.name == "Extension" && n == "_url") continue;
        CPPUNIT_ASSERT_MESSAGE(type.name + "." + n + " is in the schema but not in the model", modelNames.count(n));
      }
      for (const std::string& n : modelNames) {
        if (schemaNames.count(n)) continue;
        const bool known = n[0] == '_' || (n.size() > 4 && n.substr(n.size() - 4) == "Meta");
        CPPUNIT_ASSERT_MESSAGE(type.name + "." + n + " is in the model but not in the schema", known);
      }
      ++compared;
    }
    CPPUNIT_ASSERT(compared > 180);  // 146 resources + the concrete data types
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ModelTest);
