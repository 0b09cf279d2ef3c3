#pragma once
// Helpers shared by the model_tests suites: locating fixtures, parsing JSON, asserting issues.
#include <cppunit/extensions/HelperMacros.h>
#include <rapidjson/document.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "hearth/fhir/validator.h"

namespace hearth::test {

inline std::string sourceDir() {
  const char* env = std::getenv("HEARTH_SOURCE_DIR");
  return env && *env ? env : HEARTH_SOURCE_DIR_DEFAULT;
}

// The official R4 definitions (tests may read them; the product never does).
inline std::string fhirDefsDir() {
  const char* env = std::getenv("HEARTH_FHIR_DEFS");
  return env && *env ? env : sourceDir() + "/../shared/fhir-r4";
}

inline std::string examplesDir() { return sourceDir() + "/tests/model/examples"; }

inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) CPPUNIT_FAIL("cannot read " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Parses like the REST layer does (iterative: no recursion, UTF-8 validated); fails the test on
// malformed JSON.
inline void parseInto(rapidjson::Document& doc, const std::string& json) {
  doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(json.data(), json.size());
  if (doc.HasParseError()) CPPUNIT_FAIL("test JSON does not parse: " + json.substr(0, 200));
}

inline std::vector<fhir::Issue> validateJson(const std::string& json) {
  rapidjson::Document doc;
  parseInto(doc, json);
  return fhir::ResourceValidator().validate(doc);
}

inline std::string describe(const std::vector<fhir::Issue>& issues) {
  std::string out;
  for (const fhir::Issue& i : issues) {
    out += "\n  [" + std::string(fhir::issueTypeCode(i.type)) + "] " + i.expression + " : " + i.diagnostics;
  }
  return out.empty() ? " (no issues)" : out;
}

// Asserts that `issues` contains one of `type` at exactly `expression`.
inline void assertIssue(const std::vector<fhir::Issue>& issues, fhir::IssueType type, const std::string& expression,
                        CppUnit::SourceLine line) {
  for (const fhir::Issue& i : issues) {
    if (i.type == type && i.expression == expression) return;
  }
  CppUnit::Asserter::fail(CppUnit::Message("expected [" + std::string(fhir::issueTypeCode(type)) + "] at '" +
                                               expression + "', got:" + describe(issues)),
                          line);
}

}  // namespace hearth::test

#define ASSERT_ISSUE(issues, type, expr) ::hearth::test::assertIssue((issues), (type), (expr), CPPUNIT_SOURCELINE())
#define ASSERT_VALID(issues) \
  CPPUNIT_ASSERT_MESSAGE("expected no issues, got:" + ::hearth::test::describe(issues), (issues).empty())
