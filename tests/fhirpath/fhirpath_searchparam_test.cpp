// FhirPathSearchParamTest: the expressions of every R4 search parameter in the model, as the
// search indexer will use them:
//  - every expression (and every composite component expression) parses;
//  - every expression evaluates without error on every example resource of its type
//    (tests/model/examples/*.json, its official/ subfolder and the FHIRPath suite inputs), with
//    the resources of the example transaction Bundle evaluated inside their Bundle;
//  - on the hospital fixtures, a sample of parameters yields exactly the values a user would
//    expect the index to hold.
#include <map>
#include <set>

#include "fhirpath_test_support.h"
#include "hearth/fhir/fhirpath.h"
#include "hearth/fhir/model.h"

using hearth::fhir::FhirPathError;
using hearth::fhir::FhirPathExpression;
using hearth::fhir::FhirPathKind;
using hearth::fhir::FhirPathOptions;
using hearth::fhir::FhirPathResult;
using hearth::fhir::Model;
using hearth::fhir::SearchParamDef;

namespace {

struct Example {
  std::string file;
  std::shared_ptr<rapidjson::Document> doc;
};

std::vector<Example> loadExamples() {
  std::vector<Example> out;
  const std::string root = hearth::test::sourceDir();
  for (const std::string& dir : {root + "/tests/model/examples", root + "/tests/model/examples/official",
                                 root + "/tests/fhirpath/inputs"}) {
    for (const std::string& file : hearth::test::jsonFilesIn(dir)) {
      auto doc = std::make_shared<rapidjson::Document>();
      hearth::test::parseInto(*doc, hearth::test::readFile(file), file);
      out.push_back({file, doc});
    }
  }
  return out;
}

std::string resourceType(const rapidjson::Value& v) {
  if (!v.IsObject() || !v.HasMember("resourceType") || !v["resourceType"].IsString()) return {};
  return v["resourceType"].GetString();
}

// The parsed expressions, shared by all evaluations of a test (parsing once is the contract).
class ExpressionCache {
 public:
  const FhirPathExpression& get(const std::string& text) {
    auto it = cache_.find(text);
    if (it == cache_.end()) it = cache_.emplace(text, FhirPathExpression::parse(text)).first;
    return it->second;
  }

 private:
  std::map<std::string, FhirPathExpression> cache_;
};

FhirPathOptions indexingOptions(const rapidjson::Value* root) {
  FhirPathOptions o;
  o.asFiltersCollections = true;
  o.rootResource = root;
  return o;
}

}  // namespace

class FhirPathSearchParamTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(FhirPathSearchParamTest);
  CPPUNIT_TEST(testEveryExpressionParses);
  CPPUNIT_TEST(testEveryExpressionEvaluatesOnTheExamples);
  CPPUNIT_TEST(testIndexValuesOfThePatientFixture);
  CPPUNIT_TEST(testIndexValuesOfTheObservationFixture);
  CPPUNIT_TEST(testReferenceTargetsInsideABundle);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testEveryExpressionParses() {
    const Model& model = Model::r4();
    std::set<std::string> expressions;
    std::string failures;
    size_t params = 0;
    for (const std::string& type : model.resourceTypes()) {
      for (const SearchParamDef& p : model.searchParams(type)) {
        ++params;
        std::vector<std::string> texts;
        if (!p.expression.empty()) texts.push_back(p.expression);
        for (const auto& c : p.components) texts.push_back(c.second);
        for (const std::string& text : texts) {
          if (!expressions.insert(text).second) continue;
          try {
            FhirPathExpression::parse(text);
          } catch (const FhirPathError& e) {
            failures += "\n  " + type + "." + p.code + ": " + e.what();
          }
        }
      }
    }
    CPPUNIT_ASSERT_MESSAGE("expressions that do not parse:" + failures, failures.empty());
    // The model carries the R4 parameters of all 146 resource types (many shared).
    CPPUNIT_ASSERT(params > 2500);
    CPPUNIT_ASSERT(expressions.size() > 900);
  }

  void testEveryExpressionEvaluatesOnTheExamples() {
    const Model& model = Model::r4();
    ExpressionCache cache;
    std::string failures;
    size_t evaluations = 0, withValues = 0, resources = 0;
    auto check = [&](const std::string& file, const rapidjson::Value& resource, const rapidjson::Value* root) {
      const std::string type = resourceType(resource);
      if (!model.isResourceType(type)) return;
      ++resources;
      for (const SearchParamDef& p : model.searchParams(type)) {
        if (p.expression.empty()) continue;
        try {
          const FhirPathResult r = cache.get(p.expression).evaluate(resource, indexingOptions(root));
          ++evaluations;
          if (!r.empty()) ++withValues;
          // Composite parameters: each component relative to each match.
          for (const auto& [url, component] : p.components) {
            for (const auto& item : r) cache.get(component).evaluate(item, resource, indexingOptions(root));
          }
        } catch (const FhirPathError& e) {
          failures += "\n  " + file + " " + type + "." + p.code + " (" + p.expression + "): " + e.what();
        }
      }
    };
    for (const Example& ex : loadExamples()) {
      const rapidjson::Value& doc = *ex.doc;
      check(ex.file, doc, nullptr);
      if (resourceType(doc) == "Bundle" && doc.HasMember("entry")) {
        for (const auto& entry : doc["entry"].GetArray()) {
          if (entry.HasMember("resource")) check(ex.file + " (entry)", entry["resource"], &doc);
        }
      }
    }
    CPPUNIT_ASSERT_MESSAGE("evaluation errors:" + failures, failures.empty());
    CPPUNIT_ASSERT(resources >= 30);
    CPPUNIT_ASSERT(evaluations > 500);
    // Realistic fixtures fill a good share of their parameters.
    CPPUNIT_ASSERT_MESSAGE(std::to_string(withValues) + " of " + std::to_string(evaluations) + " had values",
                           withValues * 4 > evaluations);
  }

  void testIndexValuesOfThePatientFixture() {
    rapidjson::Document doc;
    hearth::test::parseInto(
        doc, hearth::test::readFile(hearth::test::sourceDir() + "/tests/model/examples/patient.json"), "patient.json");
    auto values = [&](const std::string& code) {
      const SearchParamDef* p = Model::r4().searchParam("Patient", code);
      CPPUNIT_ASSERT_MESSAGE("no Patient search parameter " + code, p != nullptr);
      std::vector<std::string> out;
      for (const auto& item : FhirPathExpression::parse(p->expression).evaluate(doc, indexingOptions(nullptr))) {
        out.push_back(std::string(item.typeName()) + ":" + item.toString());
      }
      return out;
    };
    using V = std::vector<std::string>;
    CPPUNIT_ASSERT(values("family") == V({"string:Doe", "string:Roe"}));
    // `Patient.name.given | Practitioner.name.given`: a union, so the second "Jane" is merged.
    CPPUNIT_ASSERT(values("given") == V({"string:Jane", "string:Quinn", "string:Janie"}));
    CPPUNIT_ASSERT(values("birthdate") == V({"date:1984-07-14"}));
    CPPUNIT_ASSERT(values("gender") == V({"code:female"}));
    CPPUNIT_ASSERT(values("address-city") == V({"string:Springfield"}));
    CPPUNIT_ASSERT(values("address-postalcode") == V({"string:62704"}));
    CPPUNIT_ASSERT(values("active") == V({"boolean:true"}));
    CPPUNIT_ASSERT(values("_lastUpdated") == V({"instant:2024-03-05T14:22:10.123+01:00"}));
    CPPUNIT_ASSERT(values("_id") == V({"id:hearth-pat-001"}));
    CPPUNIT_ASSERT_EQUAL(size_t(3), values("name").size());
    CPPUNIT_ASSERT_EQUAL(size_t(2), values("identifier").size());
    CPPUNIT_ASSERT_EQUAL(size_t(2), values("phone").size());
    CPPUNIT_ASSERT_EQUAL(size_t(1), values("email").size());
    CPPUNIT_ASSERT_EQUAL(size_t(1), values("general-practitioner").size());
    CPPUNIT_ASSERT_EQUAL(size_t(2), values("language").size());
    // `Patient.deceased.exists() and Patient.deceased != false` on deceasedBoolean false.
    CPPUNIT_ASSERT(values("deceased") == V({"Boolean:false"}));
  }

  void testIndexValuesOfTheObservationFixture() {
    rapidjson::Document doc;
    hearth::test::parseInto(
        doc, hearth::test::readFile(hearth::test::sourceDir() + "/tests/model/examples/observation.json"),
        "observation.json");
    auto eval = [&](const std::string& code) {
      const SearchParamDef* p = Model::r4().searchParam("Observation", code);
      CPPUNIT_ASSERT_MESSAGE("no Observation search parameter " + code, p != nullptr);
      return FhirPathExpression::parse(p->expression).evaluate(doc, indexingOptions(nullptr));
    };
    const FhirPathResult quantity = eval("value-quantity");
    CPPUNIT_ASSERT_EQUAL(size_t(1), quantity.size());
    CPPUNIT_ASSERT_EQUAL(std::string("Quantity"), std::string(quantity[0].typeName()));
    CPPUNIT_ASSERT(quantity[0].json() == &doc["valueQuantity"]);
    const FhirPathResult date = eval("date");
    CPPUNIT_ASSERT_EQUAL(size_t(1), date.size());
    CPPUNIT_ASSERT(date[0].kind() == FhirPathKind::DateTime);
    CPPUNIT_ASSERT_EQUAL(std::string("dateTime"), std::string(date[0].typeName()));
    CPPUNIT_ASSERT_EQUAL(size_t(1), eval("patient").size());   // subject.where(resolve() is Patient)
    CPPUNIT_ASSERT_EQUAL(size_t(1), eval("subject").size());
    CPPUNIT_ASSERT_EQUAL(size_t(1), eval("code").size());
    CPPUNIT_ASSERT_EQUAL(size_t(0), eval("value-string").size());

    // The composite code-value-quantity: each match, then its components.
    const SearchParamDef* composite = Model::r4().searchParam("Observation", "code-value-quantity");
    CPPUNIT_ASSERT(composite != nullptr);
    CPPUNIT_ASSERT_EQUAL(size_t(2), composite->components.size());
    const FhirPathResult matches = FhirPathExpression::parse(composite->expression).evaluate(doc);
    CPPUNIT_ASSERT_EQUAL(size_t(1), matches.size());
    const FhirPathResult code = FhirPathExpression::parse(composite->components[0].second).evaluate(matches[0], doc);
    const FhirPathResult value = FhirPathExpression::parse(composite->components[1].second).evaluate(matches[0], doc);
    CPPUNIT_ASSERT_EQUAL(size_t(1), code.size());
    CPPUNIT_ASSERT_EQUAL(std::string("CodeableConcept"), std::string(code[0].typeName()));
    CPPUNIT_ASSERT_EQUAL(size_t(1), value.size());
    CPPUNIT_ASSERT_EQUAL(std::string("Quantity"), std::string(value[0].typeName()));
  }

  void testReferenceTargetsInsideABundle() {
    rapidjson::Document bundle;
    hearth::test::parseInto(
        bundle, hearth::test::readFile(hearth::test::sourceDir() + "/tests/model/examples/bundle-transaction.json"),
        "bundle-transaction.json");
    // Every resource in the transaction: its `patient` parameter (where it has one) must find the
    // Patient, whether referenced as "Patient/id" or by the urn:uuid of a Bundle entry.
    size_t checked = 0;
    for (const auto& entry : bundle["entry"].GetArray()) {
      if (!entry.HasMember("resource")) continue;  // a DELETE request
      const rapidjson::Value& resource = entry["resource"];
      const std::string type = resourceType(resource);
      const SearchParamDef* p = Model::r4().searchParam(type, "patient");
      if (!p || !resource.HasMember("subject")) continue;
      const FhirPathResult r = FhirPathExpression::parse(p->expression).evaluate(resource, indexingOptions(&bundle));
      CPPUNIT_ASSERT_EQUAL_MESSAGE(type, size_t(1), r.size());
      ++checked;
    }
    CPPUNIT_ASSERT(checked >= 1);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(FhirPathSearchParamTest);
