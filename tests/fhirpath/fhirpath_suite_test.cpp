// FhirPathSuiteTest: the official FHIRPath conformance suite for R4
// (../shared/fhir-r4/test-cases/fhirpath/tests-fhir-r4.xml), run in full at test time.
//
// Every test of the suite is evaluated; the number that pass must not fall below kPassFloor (the
// count this engine reached), so a regression fails while a newly passing test only raises the
// score. Failing tests are listed by name with the reason. The suite's input resources are XML;
// their JSON conversions (tests/model/xml_to_json.py) and the suite's JSON inputs are committed
// in tests/fhirpath/inputs/.
#include <libxml/parser.h>
#include <libxml/tree.h>

#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include "fhirpath_test_support.h"
#include "hearth/fhir/fhirpath.h"

using hearth::fhir::FhirPathError;
using hearth::fhir::FhirPathExpression;
using hearth::fhir::FhirPathItem;
using hearth::fhir::FhirPathKind;
using hearth::fhir::FhirPathOptions;
using hearth::fhir::FhirPathResult;

namespace {

// Tests of the suite that pass today; raise it when more pass, never lower it.
constexpr int kPassFloor = 932;

struct ExpectedOutput {
  std::string type;  // "boolean", "string", "code", "date" ..., or "" (untyped)
  std::string text;
};

struct SuiteTest {
  std::string group, name, input, expression;
  std::string invalid;    // "syntax" | "semantic" | "execution" | ""
  std::string mode;       // "strict" | ...
  bool predicate = false;
  bool ordered = true;
  std::vector<ExpectedOutput> outputs;
};

std::string attr(xmlNode* n, const char* name) {
  xmlChar* v = xmlGetProp(n, reinterpret_cast<const xmlChar*>(name));
  if (!v) return {};
  std::string s(reinterpret_cast<const char*>(v));
  xmlFree(v);
  return s;
}

std::string text(xmlNode* n) {
  xmlChar* v = xmlNodeGetContent(n);
  if (!v) return {};
  std::string s(reinterpret_cast<const char*>(v));
  xmlFree(v);
  return s;
}

bool named(xmlNode* n, const char* name) {
  return n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, reinterpret_cast<const xmlChar*>(name)) == 0;
}

std::vector<SuiteTest> loadSuite(const std::string& path) {
  std::unique_ptr<xmlDoc, void (*)(xmlDoc*)> doc(xmlReadFile(path.c_str(), nullptr, XML_PARSE_NONET), xmlFreeDoc);
  if (!doc) CPPUNIT_FAIL("cannot parse " + path);
  std::vector<SuiteTest> tests;
  for (xmlNode* g = xmlDocGetRootElement(doc.get())->children; g; g = g->next) {
    if (!named(g, "group")) continue;
    for (xmlNode* t = g->children; t; t = t->next) {
      if (!named(t, "test")) continue;
      SuiteTest st;
      st.group = attr(g, "name");
      st.name = attr(t, "name");
      st.input = attr(t, "inputfile");
      st.mode = attr(t, "mode");
      st.predicate = attr(t, "predicate") == "true";
      st.ordered = attr(t, "ordered") != "false";
      for (xmlNode* c = t->children; c; c = c->next) {
        if (named(c, "expression")) {
          st.expression = text(c);
          st.invalid = attr(c, "invalid");
          if (st.mode.empty()) st.mode = attr(c, "mode");
        } else if (named(c, "output")) {
          st.outputs.push_back({attr(c, "type"), text(c)});
        }
      }
      tests.push_back(std::move(st));
    }
  }
  return tests;
}

// The suite's name for an item's type: FHIR types by their code, System types in lower case.
std::string suiteType(const FhirPathItem& it) {
  if (it.typeNamespace() == "FHIR") return std::string(it.typeName());
  switch (it.kind()) {
    case FhirPathKind::Boolean: return "boolean";
    case FhirPathKind::Integer: return "integer";
    case FhirPathKind::Decimal: return "decimal";
    case FhirPathKind::String: return "string";
    case FhirPathKind::Date: return "date";
    case FhirPathKind::DateTime: return "dateTime";
    case FhirPathKind::Time: return "time";
    case FhirPathKind::Quantity: return "Quantity";
    default: return "object";
  }
}

bool sameNumber(const std::string& a, const std::string& b) {
  auto x = hearth::fhir::FhirPathDecimal::parse(a), y = hearth::fhir::FhirPathDecimal::parse(b);
  if (!x || !y) return false;
  // Equal values regardless of trailing zeros.
  while (x->scale < y->scale) { x->mantissa *= 10; ++x->scale; }
  while (y->scale < x->scale) { y->mantissa *= 10; ++y->scale; }
  return x->mantissa == y->mantissa;
}

// Empty string when `actual` matches `expected`, else why not.
std::string mismatch(const FhirPathItem& actual, const ExpectedOutput& expected) {
  std::string want = expected.text;
  if (!want.empty() && want[0] == '@') want = want.substr(want.size() > 1 && want[1] == 'T' ? 2 : 1);
  const std::string got = actual.toString();
  const std::string gotType = suiteType(actual);
  if (!expected.type.empty() && expected.type != gotType) {
    return "expected " + expected.type + " '" + expected.text + "', got " + gotType + " '" + got + "'";
  }
  const bool numeric = expected.type == "decimal" || expected.type == "integer";
  if (numeric ? !sameNumber(got, want) : got != want) {
    return "expected '" + expected.text + "', got " + gotType + " '" + got + "'";
  }
  return {};
}

std::string describe(const FhirPathResult& r) {
  std::string s = "[";
  for (size_t i = 0; i < r.size(); ++i) s += (i ? ", " : "") + suiteType(r[i]) + " '" + r[i].toString() + "'";
  return s + "]";
}

// Runs one test; empty string on success, else the reason it failed.
std::string run(const SuiteTest& t, const std::map<std::string, std::shared_ptr<rapidjson::Document>>& inputs) {
  FhirPathOptions options;
  options.strict = t.mode == "strict";
  const rapidjson::Document* input = nullptr;
  if (!t.input.empty()) {
    auto it = inputs.find(t.input);
    if (it == inputs.end()) return "input " + t.input + " is not available";
    input = it->second.get();
  }
  std::optional<FhirPathResult> result;
  std::string error;
  try {
    FhirPathExpression e = FhirPathExpression::parse(t.expression);
    result = input ? e.evaluate(*input, options) : e.evaluate(options);
  } catch (const FhirPathError& e) {
    error = e.what();
  }
  if (!t.invalid.empty()) {
    return error.empty() ? "expected a " + t.invalid + " error, got " + describe(*result) : "";
  }
  if (!error.empty()) return "unexpected error: " + error;
  std::vector<FhirPathItem> items(result->begin(), result->end());
  if (t.predicate) {
    // A predicate test asks whether the result exists.
    if (t.outputs.size() != 1 || t.outputs[0].type != "boolean") return "malformed predicate test";
    const bool exists = !items.empty();
    return (exists ? "true" : "false") == t.outputs[0].text ? "" : "predicate expected " + t.outputs[0].text;
  }
  if (items.size() != t.outputs.size()) {
    return "expected " + std::to_string(t.outputs.size()) + " items, got " + describe(*result);
  }
  if (t.ordered) {
    for (size_t i = 0; i < items.size(); ++i) {
      std::string why = mismatch(items[i], t.outputs[i]);
      if (!why.empty()) return "item " + std::to_string(i) + ": " + why;
    }
    return {};
  }
  std::vector<bool> used(items.size(), false);
  for (const ExpectedOutput& o : t.outputs) {
    bool found = false;
    for (size_t i = 0; i < items.size() && !found; ++i) {
      if (!used[i] && mismatch(items[i], o).empty()) used[i] = found = true;
    }
    if (!found) return "missing '" + o.text + "' in " + describe(*result);
  }
  return {};
}

}  // namespace

class FhirPathSuiteTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(FhirPathSuiteTest);
  CPPUNIT_TEST(testOfficialSuite);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testOfficialSuite() {
    const std::string suite = hearth::test::fhirDefsDir() + "/test-cases/fhirpath/tests-fhir-r4.xml";
    if (!hearth::test::fileExists(suite)) {
      CPPUNIT_FAIL("the official FHIRPath suite is missing: " + suite +
                   " (set HEARTH_SOURCE_DIR to the repository root next to shared/, or HEARTH_FHIR_DEFS)");
    }
    const std::vector<SuiteTest> tests = loadSuite(suite);
    CPPUNIT_ASSERT_MESSAGE("the suite has no tests", tests.size() > 900);

    std::map<std::string, std::shared_ptr<rapidjson::Document>> inputs;
    const std::string inputDir = hearth::test::sourceDir() + "/tests/fhirpath/inputs";
    for (const SuiteTest& t : tests) {
      if (t.input.empty() || inputs.count(t.input)) continue;
      std::string json = t.input;
      if (json.size() > 4 && json.substr(json.size() - 4) == ".xml") json = json.substr(0, json.size() - 4) + ".json";
      auto doc = std::make_shared<rapidjson::Document>();
      hearth::test::parseInto(*doc, hearth::test::readFile(inputDir + "/" + json), json);
      inputs[t.input] = doc;
    }

    int passed = 0;
    std::vector<std::string> failures;
    for (const SuiteTest& t : tests) {
      const std::string why = run(t, inputs);
      if (why.empty()) {
        ++passed;
      } else {
        failures.push_back(t.group + "/" + t.name + ": " + why + "\n      " + t.expression);
      }
    }
    std::cout << "\nFHIRPath R4 suite: " << passed << " of " << tests.size() << " tests pass (floor " << kPassFloor
              << ")\n";
    for (const std::string& f : failures) std::cout << "  FAIL " << f << "\n";
    CPPUNIT_ASSERT_MESSAGE("FHIRPath suite regressed: " + std::to_string(passed) + " pass, floor is " +
                               std::to_string(kPassFloor),
                           passed >= kPassFloor);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(FhirPathSuiteTest);
