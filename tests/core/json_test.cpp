// Unit tests for the pure JSON helpers: stamping keeps every byte of the client's content
// (decimals verbatim), OperationOutcome shape, instants, ids.
#include <cppunit/extensions/HelperMacros.h>

#include <set>

#include "hearth/fhir/error.h"
#include "hearth/fhir/json.h"
#include "hearth/fhir/service.h"

using namespace hearth::fhir;

class JsonTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(JsonTest);
  CPPUNIT_TEST(stampPutsIdentityFirstAndKeepsDecimals);
  CPPUNIT_TEST(stampReplacesClientIdAndVersionButKeepsOtherMeta);
  CPPUNIT_TEST(stampKeepsUnicodeAndNesting);
  CPPUNIT_TEST(malformedJsonIs400WithOffset);
  CPPUNIT_TEST(deepNestingDoesNotCrash);
  CPPUNIT_TEST(operationOutcomeShape);
  CPPUNIT_TEST(instants);
  CPPUNIT_TEST(ids);
  CPPUNIT_TEST_SUITE_END();

 public:
  void stampPutsIdentityFirstAndKeepsDecimals() {
    const std::string in = R"({"valueQuantity":{"value":1.50,"unit":"mg"},"resourceType":"Observation","status":"final","n":1e2})";
    const std::string out = stampResource(in, "Observation", "o1", 3, "2026-11-22T04:14:56.123Z");
    CPPUNIT_ASSERT_EQUAL(std::string(R"({"resourceType":"Observation","id":"o1","meta":{"versionId":"3","lastUpdated":"2026-11-22T04:14:56.123Z"},"valueQuantity":{"value":1.50,"unit":"mg"},"status":"final","n":1e2})"),
                         out);
  }

  void stampReplacesClientIdAndVersionButKeepsOtherMeta() {
    const std::string in = R"({"resourceType":"Patient","id":"client","meta":{"versionId":"9","profile":["http://x/p"],"lastUpdated":"2000-01-01T00:00:00Z","tag":[{"code":"t"}]},"active":true})";
    const std::string out = stampResource(in, "Patient", "server", 1, "2026-01-01T00:00:00.000Z");
    CPPUNIT_ASSERT_EQUAL(std::string(R"({"resourceType":"Patient","id":"server","meta":{"versionId":"1","lastUpdated":"2026-01-01T00:00:00.000Z","profile":["http://x/p"],"tag":[{"code":"t"}]},"active":true})"),
                         out);
    // The result is itself valid JSON that parses.
    CPPUNIT_ASSERT(parseJson(out).IsObject());
  }

  void stampKeepsUnicodeAndNesting() {
    const std::string in = "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Ngũgĩ \\\"wa\\\" Thiong'o\",\"given\":[\"Zoë\",\"李\"]}],\"contained\":[{\"resourceType\":\"Organization\",\"id\":\"o\",\"meta\":{\"versionId\":\"5\"}}]}";
    const std::string out = stampResource(in, "Patient", "p", 2, "2026-01-01T00:00:00.000Z");
    CPPUNIT_ASSERT(out.find("\"family\":\"Ngũgĩ \\\"wa\\\" Thiong'o\"") != std::string::npos);
    CPPUNIT_ASSERT(out.find("\"given\":[\"Zoë\",\"李\"]") != std::string::npos);
    // Nested (contained) ids and metas are not touched.
    CPPUNIT_ASSERT(out.find("{\"resourceType\":\"Organization\",\"id\":\"o\",\"meta\":{\"versionId\":\"5\"}}") != std::string::npos);
  }

  void malformedJsonIs400WithOffset() {
    try {
      parseJson("{\"resourceType\":\"Patient\",}");
      CPPUNIT_FAIL("expected FhirError");
    } catch (const FhirError& e) {
      CPPUNIT_ASSERT_EQUAL(400, e.status());
      CPPUNIT_ASSERT(e.issues().at(0).diagnostics.find("byte") != std::string::npos);
      CPPUNIT_ASSERT_EQUAL(std::string("structure"), std::string(issueTypeCode(e.issues().at(0).type)));
    }
    CPPUNIT_ASSERT_THROW(parseJson("\xff\xfe{}"), FhirError);  // not UTF-8
  }

  void deepNestingDoesNotCrash() {
    std::string deep(200000, '[');
    deep += std::string(200000, ']');
    CPPUNIT_ASSERT(parseJson(deep).IsArray());  // iterative parser: no stack overflow
  }

  void operationOutcomeShape() {
    const std::string oo = operationOutcomeJson({Issue{Severity::Error, IssueType::Value, "bad \"date\"", "Patient.birthDate"}});
    CPPUNIT_ASSERT_EQUAL(std::string(R"({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"value","diagnostics":"bad \"date\"","expression":["Patient.birthDate"]}]})"), oo);
    CPPUNIT_ASSERT(operationOutcomeJson(std::vector<Issue>{}).find("\"informational\"") != std::string::npos);
  }

  void instants() {
    int64_t us = 0;
    CPPUNIT_ASSERT(parseInstant("1970-01-01T00:00:00Z", us));
    CPPUNIT_ASSERT_EQUAL(int64_t(0), us);
    CPPUNIT_ASSERT(parseInstant("1970-01-01T01:00:00.5+01:00", us));
    CPPUNIT_ASSERT_EQUAL(int64_t(500000), us);
    CPPUNIT_ASSERT(parseInstant("2026-11-22", us));
    CPPUNIT_ASSERT(parseInstant("2026", us));
    CPPUNIT_ASSERT(!parseInstant("2026-13-01", us));
    CPPUNIT_ASSERT(!parseInstant("2026-01-01T10:00:00", us));  // a time needs a zone
    CPPUNIT_ASSERT(!parseInstant("yesterday", us));
    const Instant now = nowInstant();
    CPPUNIT_ASSERT_EQUAL(size_t(24), now.text.size());
    int64_t parsed = 0;
    CPPUNIT_ASSERT(parseInstant(now.text, parsed));
    CPPUNIT_ASSERT_EQUAL(now.epochMicros, parsed);
    CPPUNIT_ASSERT_EQUAL(std::string("Thu, 01 Jan 1970 00:00:00 GMT"), httpDateFromInstant("1970-01-01T00:00:00Z"));
  }

  void ids() {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
      const std::string id = newResourceId();
      CPPUNIT_ASSERT_EQUAL(size_t(36), id.size());
      CPPUNIT_ASSERT(ResourceService::isValidId(id));
      CPPUNIT_ASSERT(seen.insert(id).second);
    }
    CPPUNIT_ASSERT(!ResourceService::isValidId(""));
    CPPUNIT_ASSERT(!ResourceService::isValidId(std::string(65, 'a')));
    CPPUNIT_ASSERT(!ResourceService::isValidId("a/b"));
    CPPUNIT_ASSERT(!ResourceService::isValidId("a b"));
    CPPUNIT_ASSERT(ResourceService::isValidId("A-z.09"));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(JsonTest);
