// http_schema_tests: every body Hearth sends must be valid R4 JSON.
//
// Drives a representative set of interactions (every core type's lifecycle, history Bundles with
// paging links, Prefer variants, pretty-printing, and every error status the contract names) against
// one server with auth and a small body limit, saves every /fhir response body, and validates all of
// them with tests/schema/validate.mjs (ajv + the official fhir.schema.json). A control test checks
// that the validator really rejects invalid resources.
#include <Poco/File.h>
#include <cppunit/extensions/HelperMacros.h>

#include <fstream>
#include <set>

#include "http_test_support.h"

using namespace hearth::test;

class HttpSchemaTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(HttpSchemaTest);
  CPPUNIT_TEST(testValidatorRejectsInvalidResources);
  CPPUNIT_TEST(testEveryResponseBodyIsValidFhir);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testValidatorRejectsInvalidResources() {
    // Without this control a broken validator would pass everything.
    std::string dir = bodyDir("schema-control");
    BodyRecorder clean(dir);
    auto write = [&](const std::string& name, const std::string& text) {
      std::ofstream(dir + "/" + name) << text;
    };
    write("valid.json", R"({"resourceType":"Patient","active":true})");
    auto [okRc, okOut] = runSchemaValidator(dir + "/valid.json");
    HT_EQ("a valid Patient passes: " + okOut, 0, okRc);
    const std::vector<std::pair<std::string, std::string>> invalid{
        {"unknown-element.json", R"({"resourceType":"Patient","favouriteColour":"blue"})"},
        {"oo-without-issue.json", R"({"resourceType":"OperationOutcome"})"},
        {"bad-date.json", R"({"resourceType":"Patient","birthDate":"1980-13"})"},
        {"bundle-bad-type.json", R"({"resourceType":"Bundle","type":"nonsense"})"},
        {"not-a-resource.json", R"({"status":"ok"})"},
    };
    for (const auto& [name, text] : invalid) {
      write(name, text);
      auto [rc, out] = runSchemaValidator(dir + "/" + name);
      HT_EQ("the validator must reject " + name + ": " + out, 1, rc);
    }
  }

  void testEveryResponseBodyIsValidFhir() {
    const std::string readToken = "schema-read-" + randomToken(20);
    const std::string writeToken = "schema-write-" + randomToken(20);
    // audit.enabled=false: this walk creates, updates and deletes an AuditEvent like every core
    // type, which the audit trail forbids (AuditEvent bodies written by the trail are validated
    // by tests/access).
    HearthProcess server(
        ServerOptions{{"--set", "http.body-limit=8192", "--set", "auth.enabled=true", "--set",
                       "auth.tokens=" + sha256Hex(readToken) + ":read," + sha256Hex(writeToken) + ":write", "--set",
                       "audit.enabled=false"},
                      ""});
    server.start();
    BodyRecorder recorder(bodyDir("schema"));
    HttpClient c(server);
    c.setRecorder(&recorder);
    c.setDefaultHeaders({{"Authorization", "Bearer " + writeToken}});
    std::set<int> statuses;
    std::string log;
    auto note = [&](const HttpResponse& r) {
      statuses.insert(r.status);
      log += "\n  " + r.request + " -> " + std::to_string(r.status);
      return r;
    };

    note(c.get("/fhir/metadata"));
    note(c.get("/fhir/metadata?_pretty=true"));
    std::map<std::string, std::string> refs;
    for (const auto& type : coreTypes()) {
      std::string body = fixture(type, refs);
      HttpResponse r = note(c.post("/fhir/" + type, body));
      assertStatus(201, r, "create " + type);
      std::string id = jstr(r.json(), "/id");
      refs[type] = id;
      const std::string path = "/fhir/" + type + "/" + id;
      note(c.get(path));
      note(c.put(path, withId(withMarker(body, "v2"), id)));
      note(c.get(path + "/_history/1?_pretty=true"));
      note(c.get(path + "/_history"));
      if (type == "Patient" || type == "Observation") {
        note(c.del(path));
        note(c.get(path));                  // 410
        note(c.get(path + "/_history/3"));  // 410 of the deletion
        note(c.get(path + "/_history"));    // history with a deletion entry
        note(c.put(path, withId(body, id)));
      }
    }
    note(c.get("/fhir/Patient/_history?_count=1"));
    note(c.get("/fhir/_history?_count=7"));
    std::string next = "/fhir/_history?_count=5";
    for (int page = 0; page < 3 && !next.empty(); ++page) {
      HttpResponse r = note(c.get(next));
      next.clear();
      rapidjson::Document doc = r.json();
      if (const auto* links = jptr(doc, "/link"); links && links->IsArray()) {
        for (const auto& l : links->GetArray()) {
          if (jstr(l, "/relation") == "next") next = jstr(l, "/url");
        }
      }
    }
    std::string patient = fixture("Patient", refs);
    note(c.post("/fhir/Patient", patient, {{"Prefer", "return=OperationOutcome"}}));
    note(c.post("/fhir/Patient", patient, {{"Prefer", "return=representation"}}));
    note(c.post("/fhir/Patient", patient + " "));

    // Every error status of the contract.
    note(c.post("/fhir/Patient", R"({"resourceType":"Patient",)"));                              // 400
    note(c.post("/fhir/Patient", R"({"resourceType":"Patient","favouriteColour":"blue"})"));     // 400
    note(c.put("/fhir/Patient/" + refs["Patient"], withId(patient, "other")));                   // 400
    note(c.post("/fhir/Patient", R"({"resourceType":"Patient","birthDate":"1980-13-45"})"));     // 422
    note(c.post("/fhir/Observation", R"({"resourceType":"Observation","code":{"text":"x"}})"));  // 422
    note(c.get("/fhir/Patient/" + refs["Patient"], {{"Authorization", "Bearer wrong"}}));        // 401
    note(c.post("/fhir/Patient", patient, {{"Authorization", "Bearer " + readToken}}));          // 403
    note(c.get("/fhir/NotAType/1"));                                                             // 404
    note(c.get("/fhir/Patient/" + uniqueId("nope")));                                            // 404
    note(c.get("/fhir/Patient/" + uniqueId("nope") + "?_pretty=true"));                          // 404 pretty
    note(c.post("/fhir/Patient/123", patient));                                                  // 405
    note(c.get("/fhir/Patient/" + refs["Patient"], {{"Accept", "text/csv"}}));                   // 406
    note(c.put("/fhir/Organization/" + refs["Organization"],
               withId(fixture("Organization"), refs["Organization"]), {{"If-Match", weakEtag(1)}}));  // 412
    note(c.post("/fhir/Patient", std::string(R"({"resourceType":"Patient","active":true)") +
                                     std::string(9000, ' ') + "}"));           // 413
    note(c.post("/fhir/Patient", patient, {{"Content-Type", "text/plain"}}));  // 415

    for (int s : {200, 201, 400, 401, 403, 404, 405, 406, 410, 412, 413, 415, 422}) {
      HT_ASSERT("the scenario must have produced HTTP " + std::to_string(s) +
                    "; it got:" + log.substr(log.size() > 3000 ? log.size() - 3000 : 0),
                statuses.count(s) == 1);
    }
    HT_ASSERT("bodies recorded", recorder.count() > 100);
    assertBodiesMatchSchema(recorder.dir());
    HT_EQ("clean exit", 0, server.stop().code);
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(HttpSchemaTest);
