// FhirPathEngineTest: the behaviour of the FHIRPath engine that Hearth's search indexing and
// validation rely on, beyond the official suite: error reporting, choice types, primitive
// extensions, resolve(), `as` on collections, result accessors and lifetime, thread safety,
// and evaluation cost for the Patient search parameters.
#include <atomic>
#include <chrono>
#include <iostream>
#include <thread>

#include "fhirpath_test_support.h"
#include "hearth/fhir/fhirpath.h"
#include "hearth/fhir/model.h"

using hearth::fhir::FhirPathDecimal;
using hearth::fhir::FhirPathError;
using hearth::fhir::FhirPathExpression;
using hearth::fhir::FhirPathItem;
using hearth::fhir::FhirPathKind;
using hearth::fhir::FhirPathOptions;
using hearth::fhir::FhirPathResult;
using hearth::fhir::Model;

namespace {

rapidjson::Document parse(const std::string& json) {
  rapidjson::Document doc;
  hearth::test::parseInto(doc, json, "test JSON");
  return doc;
}

rapidjson::Document fixture(const std::string& name) {
  return parse(hearth::test::readFile(hearth::test::sourceDir() + "/tests/model/examples/" + name));
}

FhirPathResult eval(const rapidjson::Value& resource, const std::string& expression, FhirPathOptions options = {}) {
  return FhirPathExpression::parse(expression).evaluate(resource, options);
}

// "type:value" of each item, for compact assertions.
std::vector<std::string> shown(const FhirPathResult& r) {
  std::vector<std::string> out;
  for (const FhirPathItem& it : r) out.push_back(std::string(it.typeName()) + ":" + it.toString());
  return out;
}

using Strings = std::vector<std::string>;

// The error a parse raises, or fails the test if it parses.
FhirPathError parseError(const std::string& expression) {
  try {
    FhirPathExpression::parse(expression);
  } catch (const FhirPathError& e) {
    return e;
  }
  CPPUNIT_FAIL("expected a parse error for: " + expression);
  throw;  // unreachable
}

}  // namespace

class FhirPathEngineTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(FhirPathEngineTest);
  CPPUNIT_TEST(testSyntaxErrorsNameTheirPosition);
  CPPUNIT_TEST(testSemanticErrorsAtParseTime);
  CPPUNIT_TEST(testChoiceElementsAreTypedByTheModel);
  CPPUNIT_TEST(testPrimitiveExtensions);
  CPPUNIT_TEST(testResolveKnowsTheTargetType);
  CPPUNIT_TEST(testResolveFindsContainedAndBundledResources);
  CPPUNIT_TEST(testAsOnSeveralItems);
  CPPUNIT_TEST(testSearchExpressionShapes);
  CPPUNIT_TEST(testStrictModeReportsUnknownNames);
  CPPUNIT_TEST(testValueAccessors);
  CPPUNIT_TEST(testResultsOutliveTheExpression);
  CPPUNIT_TEST(testFocusEvaluation);
  CPPUNIT_TEST(testTraceReachesTheCallback);
  CPPUNIT_TEST(testConcurrentEvaluationOfSharedExpressions);
  CPPUNIT_TEST(testPatientSearchParameterCost);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testSyntaxErrorsNameTheirPosition() {
    FhirPathError e = parseError("Patient.name.where(given = 'x'");
    CPPUNIT_ASSERT(e.kind() == FhirPathError::Kind::Syntax);
    CPPUNIT_ASSERT_EQUAL(size_t(30), e.position());
    CPPUNIT_ASSERT(std::string(e.what()).find("position 30") != std::string::npos);

    e = parseError("Patient.name.given = 'Peter");
    CPPUNIT_ASSERT(e.kind() == FhirPathError::Kind::Syntax);
    CPPUNIT_ASSERT_EQUAL(size_t(21), e.position());

    e = parseError("Patient..name");
    CPPUNIT_ASSERT_EQUAL(size_t(8), e.position());
    e = parseError("2 + 2 /* open");
    CPPUNIT_ASSERT_EQUAL(size_t(6), e.position());
    e = parseError("@2015-13-01");
    CPPUNIT_ASSERT_EQUAL(size_t(0), e.position());
    e = parseError("");
    CPPUNIT_ASSERT(e.kind() == FhirPathError::Kind::Syntax);
    e = parseError("Patient.name)");
    CPPUNIT_ASSERT_EQUAL(size_t(12), e.position());
    // Hostile nesting is refused before it can exhaust the stack; reasonable nesting is fine.
    e = parseError(std::string(5000, '(') + "1" + std::string(5000, ')'));
    CPPUNIT_ASSERT(std::string(e.what()).find("nested too deeply") != std::string::npos);
    parseError(std::string(5000, '-') + "1");
    CPPUNIT_ASSERT(shown(FhirPathExpression::parse(std::string(50, '(') + "1" + std::string(50, ')')).evaluate()) ==
                   Strings({"Integer:1"}));
  }

  void testSemanticErrorsAtParseTime() {
    FhirPathError e = parseError("Patient.name.frobnicate()");
    CPPUNIT_ASSERT(e.kind() == FhirPathError::Kind::Semantic);
    CPPUNIT_ASSERT_EQUAL(size_t(13), e.position());
    CPPUNIT_ASSERT(std::string(e.what()).find("frobnicate") != std::string::npos);
    e = parseError("Patient.name.where()");
    CPPUNIT_ASSERT(e.kind() == FhirPathError::Kind::Semantic);
    e = parseError("Observation.value.ofType(Quantiti)");
    CPPUNIT_ASSERT(e.kind() == FhirPathError::Kind::Semantic);
    e = parseError("%unknownVariable");
    CPPUNIT_ASSERT(e.kind() == FhirPathError::Kind::Semantic);
    e = parseError("'abc'.matches('(')");
    CPPUNIT_ASSERT(e.kind() == FhirPathError::Kind::Semantic);
  }

  void testChoiceElementsAreTypedByTheModel() {
    rapidjson::Document obs = fixture("observation.json");
    FhirPathResult value = eval(obs, "Observation.value");
    CPPUNIT_ASSERT_EQUAL(size_t(1), value.size());
    CPPUNIT_ASSERT_EQUAL(std::string("Quantity"), std::string(value[0].typeName()));
    CPPUNIT_ASSERT_EQUAL(std::string("FHIR"), std::string(value[0].typeNamespace()));
    CPPUNIT_ASSERT(value[0].json() == &obs["valueQuantity"]);
    CPPUNIT_ASSERT(shown(eval(obs, "Observation.value.as(Quantity).value")) == Strings({"decimal:4.2"}));
    CPPUNIT_ASSERT(shown(eval(obs, "(Observation.value as Quantity).unit")) == Strings({"string:mmol/L"}));
    CPPUNIT_ASSERT(eval(obs, "Observation.value.ofType(string)").empty());
    CPPUNIT_ASSERT(shown(eval(obs, "Observation.value is Quantity")) == Strings({"Boolean:true"}));
    CPPUNIT_ASSERT(shown(eval(obs, "Observation.effective.ofType(dateTime)")) ==
                   Strings({"dateTime:2024-03-01T08:12:00+01:00"}));
    // The JSON name of a choice is not a FHIRPath name.
    try {
      eval(obs, "Observation.valueQuantity");
      CPPUNIT_FAIL("valueQuantity must be rejected");
    } catch (const FhirPathError& e) {
      CPPUNIT_ASSERT(e.kind() == FhirPathError::Kind::Semantic);
      CPPUNIT_ASSERT(std::string(e.what()).find("value.ofType(Quantity)") != std::string::npos);
    }
  }

  void testPrimitiveExtensions() {
    rapidjson::Document pat = fixture("patient.json");
    CPPUNIT_ASSERT(shown(eval(pat, "Patient.birthDate.extension('http://hl7.org/fhir/StructureDefinition/"
                                   "patient-birthTime').value")) == Strings({"dateTime:1984-07-14T06:35:00-05:00"}));
    CPPUNIT_ASSERT(shown(eval(pat, "Patient.birthDate.extension.url")) ==
                   Strings({"uri:http://hl7.org/fhir/StructureDefinition/patient-birthTime"}));
    const FhirPathResult birth = eval(pat, "Patient.birthDate");
    CPPUNIT_ASSERT_EQUAL(size_t(1), birth.size());
    CPPUNIT_ASSERT(birth[0].primitiveExtension() == &pat["_birthDate"]);
    // A repeating primitive with an extension but no value still exists, without a value.
    rapidjson::Document p = parse(R"({"resourceType":"Patient","name":[{"given":[null,"B"],
        "_given":[{"extension":[{"url":"http://x","valueString":"y"}]},null]}]})");
    CPPUNIT_ASSERT_EQUAL(size_t(2), eval(p, "Patient.name.given").size());
    CPPUNIT_ASSERT(eval(p, "Patient.name.given")[0].json() == nullptr);
    CPPUNIT_ASSERT(!eval(p, "Patient.name.given")[0].hasValue());
    CPPUNIT_ASSERT(shown(eval(p, "Patient.name.given.select($this.hasValue())")) ==
                   Strings({"Boolean:false", "Boolean:true"}));
    CPPUNIT_ASSERT(shown(eval(p, "Patient.name.given.extension('http://x').value")) == Strings({"string:y"}));
  }

  void testResolveKnowsTheTargetType() {
    rapidjson::Document acct = parse(R"({"resourceType":"Account","subject":[
        {"reference":"Patient/123"},{"reference":"Device/9"},
        {"reference":"http://other.example.org/fhir/Patient/77/_history/2"},{"display":"no reference"}]})");
    CPPUNIT_ASSERT_EQUAL(size_t(2), eval(acct, "Account.subject.where(resolve() is Patient)").size());
    CPPUNIT_ASSERT_EQUAL(size_t(1), eval(acct, "Account.subject.where(resolve() is Device)").size());
    CPPUNIT_ASSERT_EQUAL(size_t(3), eval(acct, "Account.subject.where(resolve() is Resource)").size());
    CPPUNIT_ASSERT(shown(eval(acct, "Account.subject[0].resolve().type().name")) == Strings({"String:Patient"}));
    // A resolved-by-type target has no content.
    CPPUNIT_ASSERT(eval(acct, "Account.subject[0].resolve().id").empty());
  }

  void testResolveFindsContainedAndBundledResources() {
    rapidjson::Document pat = parse(R"({"resourceType":"Patient","id":"p",
        "contained":[{"resourceType":"Organization","id":"org1","name":"Inner Org"}],
        "managingOrganization":{"reference":"#org1"}})");
    CPPUNIT_ASSERT(shown(eval(pat, "Patient.managingOrganization.resolve().name")) == Strings({"string:Inner Org"}));
    CPPUNIT_ASSERT(shown(eval(pat, "Patient.contained.id")) == Strings({"id:org1"}));

    rapidjson::Document bundle = fixture("bundle-transaction.json");
    const rapidjson::Value& obs = bundle["entry"][1]["resource"];
    FhirPathOptions inBundle;
    inBundle.rootResource = &bundle;
    const FhirPathResult target = eval(obs, "Observation.subject.resolve()", inBundle);
    CPPUNIT_ASSERT_EQUAL(size_t(1), target.size());
    CPPUNIT_ASSERT(target[0].json() == &bundle["entry"][0]["resource"]);
    CPPUNIT_ASSERT(shown(eval(obs, "%rootResource.type().name", inBundle)) == Strings({"String:Bundle"}));
    CPPUNIT_ASSERT(shown(eval(obs, "%resource.type().name", inBundle)) == Strings({"String:Observation"}));
    // Outside the Bundle a urn:uuid names nothing.
    CPPUNIT_ASSERT(eval(obs, "Observation.subject.resolve()").empty());
  }

  void testAsOnSeveralItems() {
    rapidjson::Document group = parse(R"({"resourceType":"Group","type":"person","actual":true,"characteristic":[
        {"code":{"text":"a"},"valueCodeableConcept":{"text":"x"},"exclude":false},
        {"code":{"text":"b"},"valueBoolean":true,"exclude":false},
        {"code":{"text":"c"},"valueCodeableConcept":{"text":"y"},"exclude":false}]})");
    const std::string expr = "Group.characteristic.value.as(CodeableConcept)";
    try {
      eval(group, expr);
      CPPUNIT_FAIL("as() on several items must fail by default (FHIRPath spec)");
    } catch (const FhirPathError& e) {
      CPPUNIT_ASSERT(e.kind() == FhirPathError::Kind::Execution);
    }
    FhirPathOptions lenient;
    lenient.asFiltersCollections = true;
    CPPUNIT_ASSERT_EQUAL(size_t(2), eval(group, expr, lenient).size());
    CPPUNIT_ASSERT_EQUAL(size_t(2), eval(group, "(Group.characteristic.value as CodeableConcept)", lenient).size());
    CPPUNIT_ASSERT_EQUAL(size_t(1), eval(group, "Group.characteristic.value.ofType(boolean)").size());
  }

  void testSearchExpressionShapes() {
    rapidjson::Document bundle = fixture("bundle-transaction.json");
    CPPUNIT_ASSERT(shown(eval(bundle, "Bundle.entry[0].resource.type().name")) == Strings({"String:Patient"}));
    rapidjson::Document pat = fixture("patient.json");
    CPPUNIT_ASSERT(shown(eval(pat, "Patient.extension('http://hl7.org/fhir/StructureDefinition/"
                                   "patient-mothersMaidenName').value")) == Strings({"string:Smith"}));
    CPPUNIT_ASSERT(shown(eval(pat, "Resource.meta.lastUpdated")) == Strings({"instant:2024-03-05T14:22:10.123+01:00"}));
    CPPUNIT_ASSERT(shown(eval(pat, "Patient.deceased.exists() and Patient.deceased != false")) ==
                   Strings({"Boolean:false"}));
    rapidjson::Document dead = parse(R"({"resourceType":"Patient","deceasedDateTime":"2020-01-01"})");
    CPPUNIT_ASSERT(shown(eval(dead, "Patient.deceased.exists() and Patient.deceased != false")) ==
                   Strings({"Boolean:true"}));

    rapidjson::Document qr = parse(R"({"resourceType":"QuestionnaireResponse","status":"completed","item":[
        {"linkId":"x","answer":[{"valueString":"one"}]},{"linkId":"y","item":[{"linkId":"x"}]}]})");
    CPPUNIT_ASSERT_EQUAL(size_t(1), eval(qr, "QuestionnaireResponse.item.where(linkId='x')").size());
    CPPUNIT_ASSERT_EQUAL(size_t(2), eval(qr, "QuestionnaireResponse.descendants().ofType(BackboneElement)"
                                             ".where(linkId='x')").size());
    CPPUNIT_ASSERT_EQUAL(size_t(2), eval(qr, "QuestionnaireResponse.repeat(item).where(linkId='x')").size());

    rapidjson::Document cond = parse(R"({"resourceType":"Condition","subject":{"reference":"Patient/1"},
        "onsetPeriod":{"start":"2020-01-01","end":"2020-02-01"}})");
    CPPUNIT_ASSERT(shown(eval(cond, "Condition.onset.as(dateTime) | Condition.onset.as(Period)")) ==
                   Strings({"Period:"}));
    rapidjson::Document cm = parse(R"({"resourceType":"ConceptMap","status":"draft","sourceUri":"http://vs/a"})");
    CPPUNIT_ASSERT(shown(eval(cm, "(ConceptMap.source as uri)")) == Strings({"uri:http://vs/a"}));
    CPPUNIT_ASSERT(eval(cm, "(ConceptMap.source as canonical)").empty());
    rapidjson::Document lib = parse(R"({"resourceType":"Library","status":"draft","type":{"text":"t"},
        "relatedArtifact":[{"type":"depends-on","resource":"http://lib/a"},
                           {"type":"composed-of","resource":"http://lib/b"}]})");
    CPPUNIT_ASSERT(shown(eval(lib, "Library.relatedArtifact.where(type='depends-on').resource")) ==
                   Strings({"canonical:http://lib/a"}));
    rapidjson::Document bp = parse(R"({"resourceType":"Observation","status":"final","code":{"text":"bp"},
        "component":[
          {"code":{"text":"sys"},"valueQuantity":{"value":120,"code":"mm[Hg]","system":"http://unitsofmeasure.org"}},
          {"code":{"text":"dia"},"valueQuantity":{"value":80.50,"code":"mm[Hg]","system":"http://unitsofmeasure.org"}}]})");
    CPPUNIT_ASSERT_EQUAL(size_t(2), eval(bp, "Observation.component.code").size());
    CPPUNIT_ASSERT(shown(eval(bp, "(Observation.component.value as Quantity).value", [] {
                     FhirPathOptions o;
                     o.asFiltersCollections = true;
                     return o;
                   }())) == Strings({"decimal:120", "decimal:80.5"}));
    CPPUNIT_ASSERT(shown(eval(bp, "Observation.component.value.where($this > 100 'mm[Hg]').value")) ==
                   Strings({"decimal:120"}));
    // UCUM conversion: 120 mm[Hg] is 15.99864 kPa, equivalent (not equal) to 16 kPa.
    CPPUNIT_ASSERT(shown(eval(bp, "Observation.component.value.first() ~ 16 'kPa'")) == Strings({"Boolean:true"}));
    CPPUNIT_ASSERT(shown(eval(bp, "Observation.component.value.first() = 16 'kPa'")) == Strings({"Boolean:false"}));
    CPPUNIT_ASSERT(shown(eval(bp, "Observation.component.value.first() = 15.99864 'kPa'")) ==
                   Strings({"Boolean:true"}));
  }

  void testStrictModeReportsUnknownNames() {
    rapidjson::Document pat = fixture("patient.json");
    CPPUNIT_ASSERT(eval(pat, "Patient.nmae").empty());
    FhirPathOptions strict;
    strict.strict = true;
    try {
      eval(pat, "Patient.nmae", strict);
      CPPUNIT_FAIL("strict mode must reject Patient.nmae");
    } catch (const FhirPathError& e) {
      CPPUNIT_ASSERT(e.kind() == FhirPathError::Kind::Semantic);
      CPPUNIT_ASSERT_EQUAL(size_t(8), e.position());
    }
    CPPUNIT_ASSERT_EQUAL(size_t(3), eval(pat, "Patient.name", strict).size());
  }

  void testValueAccessors() {
    rapidjson::Document obs = fixture("observation.json");
    const FhirPathResult issued = eval(obs, "Observation.issued");
    CPPUNIT_ASSERT(issued[0].kind() == FhirPathKind::DateTime);
    const auto dt = issued[0].dateTimeValue();
    CPPUNIT_ASSERT_EQUAL(2024, dt.year);
    CPPUNIT_ASSERT_EQUAL(30, int(dt.minute));
    CPPUNIT_ASSERT_EQUAL(120, int(dt.millisecond));
    CPPUNIT_ASSERT(dt.precision == hearth::fhir::FhirPathDateTime::Precision::Millisecond);
    CPPUNIT_ASSERT(dt.hasOffset);
    CPPUNIT_ASSERT_EQUAL(60, int(dt.offsetMinutes));

    const FhirPathResult v = eval(obs, "Observation.value.value");
    CPPUNIT_ASSERT(v[0].kind() == FhirPathKind::Decimal);
    CPPUNIT_ASSERT_EQUAL(std::string("4.2"), v[0].decimalValue().toString());
    CPPUNIT_ASSERT_DOUBLES_EQUAL(4.2, v[0].decimalValue().toDouble(), 1e-12);

    const FhirPathResult q = FhirPathExpression::parse("4.50 'mg' * 2").evaluate();
    CPPUNIT_ASSERT(q[0].kind() == FhirPathKind::Quantity);
    CPPUNIT_ASSERT_EQUAL(std::string("9.00"), q[0].quantityValue().toString());
    CPPUNIT_ASSERT_EQUAL(std::string("mg"), std::string(q[0].quantityUnit()));
    CPPUNIT_ASSERT_EQUAL(std::string("9.00 'mg'"), q[0].toString());

    CPPUNIT_ASSERT_EQUAL(std::string("0.3"), FhirPathExpression::parse("0.1 + 0.2").evaluate()[0].toString());
    CPPUNIT_ASSERT_EQUAL(std::string("true"), FhirPathExpression::parse("(1.1 + 2.2) = 3.3").evaluate()[0].toString());
    CPPUNIT_ASSERT(FhirPathExpression::parse("1 | 2").evaluate().size() == 2);
    CPPUNIT_ASSERT(*FhirPathExpression::parse("1 < 2").evaluate().asBoolean());
    CPPUNIT_ASSERT(!FhirPathExpression::parse("{}").evaluate().asBoolean().has_value());
    CPPUNIT_ASSERT_THROW(FhirPathExpression::parse("1 | 2").evaluate().asBoolean(), FhirPathError);
  }

  void testResultsOutliveTheExpression() {
    FhirPathResult r;
    {
      FhirPathExpression e = FhirPathExpression::parse("'lit' | ('con' & 'cat') | 'abc'.upper()");
      r = e.evaluate();
    }
    CPPUNIT_ASSERT(shown(r) == Strings({"String:lit", "String:concat", "String:ABC"}));
  }

  void testFocusEvaluation() {
    rapidjson::Document pat = fixture("patient.json");
    const FhirPathResult names = eval(pat, "Patient.name");
    const FhirPathExpression given = FhirPathExpression::parse("given.first() & ' ' & %resource.gender");
    CPPUNIT_ASSERT(shown(given.evaluate(names[2], pat)) == Strings({"String:Janie female"}));
  }

  void testTraceReachesTheCallback() {
    rapidjson::Document pat = fixture("patient.json");
    std::vector<std::string> seen;
    FhirPathOptions o;
    o.trace = [&](std::string_view name, const FhirPathResult& items) {
      seen.push_back(std::string(name) + "=" + std::to_string(items.size()));
    };
    CPPUNIT_ASSERT_EQUAL(size_t(3), eval(pat, "Patient.name.trace('names').trace('families', family)", o).size());
    CPPUNIT_ASSERT(seen == Strings({"names=3", "families=2"}));
  }

  void testConcurrentEvaluationOfSharedExpressions() {
    rapidjson::Document pat = fixture("patient.json");
    std::vector<FhirPathExpression> exprs;
    std::vector<Strings> expected;
    for (const auto& p : Model::r4().searchParams("Patient")) {
      if (p.expression.empty()) continue;
      exprs.push_back(FhirPathExpression::parse(p.expression));
      expected.push_back(shown(exprs.back().evaluate(pat)));
    }
    exprs.push_back(FhirPathExpression::parse("Patient.name.given.select($this.upper() & '-' & $index.toString())"));
    expected.push_back(shown(exprs.back().evaluate(pat)));
    std::atomic<int> mismatches{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int round = 0; round < 200; ++round) {
          for (size_t i = 0; i < exprs.size(); ++i) {
            if (shown(exprs[i].evaluate(pat)) != expected[i]) ++mismatches;
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    CPPUNIT_ASSERT_EQUAL(0, mismatches.load());
  }

  // Search indexing evaluates every parameter of a resource type on each write: measure the cost
  // for the Patient parameters on a realistic Patient (parsed expressions reused).
  void testPatientSearchParameterCost() {
    rapidjson::Document pat = fixture("patient.json");
    std::vector<FhirPathExpression> exprs;
    for (const auto& p : Model::r4().searchParams("Patient")) {
      if (!p.expression.empty()) exprs.push_back(FhirPathExpression::parse(p.expression));
    }
    FhirPathOptions o;
    o.asFiltersCollections = true;
    size_t items = 0;
    for (const auto& e : exprs) items += e.evaluate(pat, o).size();  // warm-up
    const int rounds = 2000;
    const auto start = std::chrono::steady_clock::now();
    size_t total = 0;
    for (int r = 0; r < rounds; ++r) {
      for (const auto& e : exprs) total += e.evaluate(pat, o).size();
    }
    const double us =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / rounds;
    std::cout << "\nPatient search parameters: " << exprs.size() << " expressions, " << items << " values, "
              << us << " us per resource (" << us / static_cast<double>(exprs.size()) << " us per expression)\n";
    CPPUNIT_ASSERT_EQUAL(items * rounds, total);
    CPPUNIT_ASSERT(items > 30);
    // A generous bound (also for sanitizer builds) that catches accidental quadratic behaviour.
    CPPUNIT_ASSERT_MESSAGE(std::to_string(us) + " us per Patient", us < 5000);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(FhirPathEngineTest);
