// http_crud_tests: every REST interaction and header of the server contract, over real sockets.
//
// StoreCrudTest runs the interactions whose outcome depends on the store (create/read/vread/update/
// delete/history for the hospital's core types, paging, _since, If-Match, rejected writes) once per
// backend: SQLite always, PostgreSQL when HEARTH_TEST_PG_URL is set. Ids carry a per-process random
// prefix and history assertions only look at what the test itself wrote, so runs can share one
// PostgreSQL database. HttpFrontTest (SQLite) covers the HTTP layer: negotiation, error statuses,
// request ids, access log, auth, body limit, metadata, metrics.
// Every response body of a /fhir request is saved and, as each suite's last test, validated against
// the official R4 JSON schema.
#include <Poco/File.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/String.h>
#include <Poco/URI.h>
#include <cppunit/extensions/HelperMacros.h>
#include <cppunit/extensions/TestFactoryRegistry.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "http_test_support.h"

using namespace hearth::test;

namespace {

const std::regex kIdPattern(R"(^[A-Za-z0-9\-\.]{1,64}$)");

std::string enc(const std::string& s) {
  std::string out;
  Poco::URI::encode(s, "+:/?#[]@!$&'()*,;=", out);
  return out;
}

BodyRecorder& recorderFor(const std::string& suite) {
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<BodyRecorder>> recorders;
  std::lock_guard<std::mutex> lock(mutex);
  auto& r = recorders[suite];
  if (!r) r = std::make_unique<BodyRecorder>(bodyDir(suite));
  return *r;
}

std::string str(long v) { return std::to_string(v); }

// A created resource as the server returned it.
struct Stored {
  std::string type, id;
  std::string json;  // response body
  long version = 0;
  std::string lastUpdated;
};

// Checks the headers and body of a create/update response; returns the stored resource.
Stored checkWriteResponse(const HttpResponse& r, int status, const std::string& type,
                          const std::string& submitted, long expectedVersion, const std::string& base,
                          const std::string& what) {
  assertStatus(status, r, what);
  assertFhirJsonContentType(r, what);
  rapidjson::Document body = r.json();
  rapidjson::Document sent = parseJson(submitted);
  Stored s;
  s.type = type;
  s.id = jstr(body, "/id");
  s.json = r.body;
  HT_EQ(what + ": resourceType", type, jstr(body, "/resourceType"));
  HT_ASSERT(what + ": server id must be a valid FHIR id: " + r.describe(),
            std::regex_match(s.id, kIdPattern));
  HT_EQ(what + ": meta.versionId", str(expectedVersion), jstr(body, "/meta/versionId"));
  s.version = expectedVersion;
  s.lastUpdated = jstr(body, "/meta/lastUpdated");
  long long lu = 0;
  try {
    lu = instantSeconds(s.lastUpdated);
  } catch (const std::exception& e) {
    CPPUNIT_FAIL(what + ": meta.lastUpdated must be a FHIR instant: " + r.describe());
  }
  HT_ASSERT(what + ": stored content differs from what was sent.\n sent:   " + withoutServerFields(sent) +
                "\n stored: " + withoutServerFields(body),
            sameContent(sent, body));
  HT_EQ(what + ": ETag " + r.describe(), weakEtag(expectedVersion), r.header("ETag"));
  try {
    HT_EQ(what + ": Last-Modified must match meta.lastUpdated", lu,
          httpDateSeconds(r.header("Last-Modified")));
  } catch (const std::runtime_error& e) {
    CPPUNIT_FAIL(what + ": " + e.what() + " in " + r.describe());
  }
  if (status == 201) {
    HT_EQ(what + ": Location " + r.describe(),
          base + "/" + type + "/" + s.id + "/_history/" + str(expectedVersion), r.header("Location"));
  }
  return s;
}

void checkRequestUrl(const std::string& actual, const std::string& expectedRelative, const std::string& base,
                     const std::string& what) {
  HT_ASSERT(what + ": request.url '" + actual + "' should be '" + expectedRelative + "'",
            actual == expectedRelative || actual == base + "/" + expectedRelative);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Store-dependent interactions, once per backend.
class StoreCrudTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(StoreCrudTest);
  CPPUNIT_TEST(testCoreTypesLifecycle);
  CPPUNIT_TEST(testCreateIgnoresBodyId);
  CPPUNIT_TEST(testReadUnknownAndVreadUnknownVersion);
  CPPUNIT_TEST(testUpdateAsCreate);
  CPPUNIT_TEST(testIfMatch);
  CPPUNIT_TEST(testDeleteSemantics);
  CPPUNIT_TEST(testInstanceHistoryPaging);
  CPPUNIT_TEST(testTypeHistoryPaging);
  CPPUNIT_TEST(testSystemHistory);
  CPPUNIT_TEST(testHistorySince);
  CPPUNIT_TEST(testRejectedWritesLeaveDataUntouched);
  CPPUNIT_TEST(testDecimalPrecisionAndUnicode);
  CPPUNIT_TEST(testModelExamplesRoundTrip);
  CPPUNIT_TEST(testBodiesMatchSchema);
  CPPUNIT_TEST_SUITE_END_ABSTRACT();

 public:
  void setUp() override {
    client_ = std::make_unique<HttpClient>(server());
    client_->setRecorder(&recorderFor(suiteName()));
  }
  void tearDown() override { client_.reset(); }

 protected:
  virtual Backend backend() const = 0;
  std::string suiteName() const { return "store_" + backend().name; }
  HearthProcess& server() { return sharedServer(backend()); }
  std::string base() { return server().fhirBase(); }
  HttpClient& http() { return *client_; }

  Stored create(const std::string& type, const std::string& body, const std::string& what = {}) {
    HttpResponse r = http().post("/fhir/" + type, body);
    return checkWriteResponse(r, 201, type, body, 1, base(), what.empty() ? "create " + type : what);
  }
  Stored update(const Stored& prev, const std::string& body, int status = 200) {
    std::string sent = withId(body, prev.id);
    HttpResponse r = http().put("/fhir/" + prev.type + "/" + prev.id, sent);
    return checkWriteResponse(r, status, prev.type, sent, prev.version + 1, base(),
                              "update " + prev.type + "/" + prev.id + " to v" + str(prev.version + 1));
  }
  std::string basic(const std::string& marker) {
    return withMarker(R"({"resourceType":"Basic","code":{"text":"hearth test"}})", marker);
  }

  // ---- the full lifecycle of every core type
  void lifecycle(const std::string& type, const std::string& body, std::map<std::string, std::string>& refs) {
    const std::string what = type + ": ";
    // create
    const std::string v1Body = withMarker(body, "v1");
    Stored v1 = create(type, v1Body, what + "create");
    refs[type] = v1.id;
    const std::string path = "/fhir/" + type + "/" + v1.id;
    // read
    HttpResponse r = http().get(path);
    assertStatus(200, r, what + "read");
    assertFhirJsonContentType(r, what + "read");
    HT_ASSERT(what + "read must return the created resource.\n created: " + v1.json + "\n read: " + r.body,
              r.json() == parseJson(v1.json));
    HT_EQ(what + "read ETag", weakEtag(1), r.header("ETag"));
    HT_EQ(what + "read Last-Modified", instantSeconds(v1.lastUpdated),
          httpDateSeconds(r.header("Last-Modified")));
    // update
    Stored v2 = update(v1, withMarker(body, "v2"));
    HT_ASSERT(what + "lastUpdated must not go back",
              instantMicros(v2.lastUpdated) >= instantMicros(v1.lastUpdated));
    // vread both versions
    r = http().get(path + "/_history/1");
    assertStatus(200, r, what + "vread 1");
    HT_ASSERT(what + "vread 1 must return version 1: " + r.body, r.json() == parseJson(v1.json));
    HT_EQ(what + "vread 1 ETag", weakEtag(1), r.header("ETag"));
    r = http().get(path + "/_history/2");
    assertStatus(200, r, what + "vread 2");
    HT_ASSERT(what + "vread 2 must return version 2: " + r.body, r.json() == parseJson(v2.json));
    // instance history
    History h = collectHistory(http(), path + "/_history");
    HT_EQ(what + "history total after update", 2L, h.total);
    HT_EQ(what + "history entries after update", std::size_t(2), h.entries.size());
    const HistoryEntry& e2 = h.entries[0];
    const HistoryEntry& e1 = h.entries[1];
    HT_EQ(what + "newest first: entry 0 is version 2", std::string("2"), e2.versionId);
    HT_EQ(what + "entry 1 is version 1", std::string("1"), e1.versionId);
    HT_EQ(what + "history fullUrl (no version: bdl-8)", base() + "/" + type + "/" + v1.id, e2.fullUrl);
    HT_EQ(what + "history fullUrl", base() + "/" + type + "/" + v1.id, e1.fullUrl);
    HT_EQ(what + "history request.method of update", std::string("PUT"), e2.method);
    HT_EQ(what + "history request.method of create", std::string("POST"), e1.method);
    checkRequestUrl(e2.url, type + "/" + v1.id, base(), what + "update entry");
    checkRequestUrl(e1.url, type, base(), what + "create entry");
    HT_ASSERT(what + "create entry response.status '" + e1.status + "'", e1.status.rfind("201", 0) == 0);
    HT_ASSERT(what + "update entry response.status '" + e2.status + "'", e2.status.rfind("200", 0) == 0);
    HT_EQ(what + "update entry etag", weakEtag(2), e2.etag);
    HT_EQ(what + "create entry etag", weakEtag(1), e1.etag);
    HT_EQ(what + "update entry lastModified", instantMicros(v2.lastUpdated), instantMicros(e2.lastModified));
    HT_ASSERT(
        what + "history entry resources are the versions",
        parseJson(e2.resourceJson) == parseJson(v2.json) && parseJson(e1.resourceJson) == parseJson(v1.json));
    // delete
    r = http().del(path);
    assertStatusIn({200, 204}, r, what + "delete");
    HT_EQ(what + "delete ETag is the deletion version", weakEtag(3), r.header("ETag"));
    if (r.status == 200 && !r.body.empty()) assertOperationOutcome(r, 200, what + "delete body");
    r = http().get(path);
    assertOperationOutcome(r, 410, what + "read after delete");
    r = http().get(path + "/_history/3");
    assertOperationOutcome(r, 410, what + "vread of the deletion version");
    r = http().get(path + "/_history/2");
    assertStatus(200, r, what + "vread 2 after delete");
    h = collectHistory(http(), path + "/_history");
    HT_EQ(what + "history total after delete", 3L, h.total);
    HT_EQ(what + "history entries after delete", std::size_t(3), h.entries.size());
    HT_ASSERT(what + "deletion entry has no resource", !h.entries[0].hasResource);
    HT_EQ(what + "deletion entry method", std::string("DELETE"), h.entries[0].method);
    checkRequestUrl(h.entries[0].url, type + "/" + v1.id, base(), what + "delete entry");
    HT_EQ(what + "deletion entry etag", weakEtag(3), h.entries[0].etag);
    HT_ASSERT(what + "deletion entry response.status '" + h.entries[0].status + "'",
              h.entries[0].status.rfind("200", 0) == 0 || h.entries[0].status.rfind("204", 0) == 0);
    HT_EQ(what + "deletion entry fullUrl", base() + "/" + type + "/" + v1.id, h.entries[0].fullUrl);
    // bring it back
    std::string v4Body = withId(withMarker(body, "v4"), v1.id);
    r = http().put(path, v4Body);
    assertStatusIn({200, 201}, r, what + "update after delete");
    checkWriteResponse(r, r.status, type, v4Body, 4, base(), what + "update after delete");
    r = http().get(path);
    assertStatus(200, r, what + "read after re-create");
    HT_EQ(what + "read after re-create: version", std::string("4"), jstr(r.json(), "/meta/versionId"));
    h = collectHistory(http(), path + "/_history");
    HT_EQ(what + "history total at the end", 4L, h.total);
    std::vector<std::string> markers;
    for (const auto& e : h.entries) markers.push_back(e.hasResource ? e.marker : "(deleted)");
    std::vector<std::string> expected{"v4", "(deleted)", "v2", "v1"};
    HT_ASSERT(what + "history order newest first", markers == expected);
  }

 public:
  void testCoreTypesLifecycle() {
    std::map<std::string, std::string> refs;
    std::string failures;
    for (const auto& type : coreTypes()) {
      try {
        lifecycle(type, fixture(type, refs), refs);
      } catch (const CppUnit::Exception& e) {
        failures += "\n- " + type + ": " + e.what();
      } catch (const std::exception& e) {
        failures += "\n- " + type + ": exception: " + e.what();
      }
    }
    if (!failures.empty()) CPPUNIT_FAIL("lifecycle failures:" + failures);
  }

  void testCreateIgnoresBodyId() {
    std::string clientId = uniqueId("client-chosen");
    std::string body = withId(fixture("Practitioner"), clientId);
    HttpResponse r = http().post("/fhir/Practitioner", body);
    Stored s = checkWriteResponse(r, 201, "Practitioner", body, 1, base(), "create with an id in the body");
    HT_ASSERT("the server must assign its own id, not the body's", s.id != clientId);
    assertOperationOutcome(http().get("/fhir/Practitioner/" + clientId), 404, "the body id must not exist");
    HttpResponse again = http().post("/fhir/Practitioner", body);
    Stored s2 = checkWriteResponse(again, 201, "Practitioner", body, 1, base(), "second create");
    HT_ASSERT("two creates get two ids", s.id != s2.id);
  }

  void testReadUnknownAndVreadUnknownVersion() {
    assertOperationOutcome(http().get("/fhir/Patient/" + uniqueId("never")), 404, "read of an unknown id");
    Stored p = create("Patient", fixture("Patient", {{"Organization", "x"}}));
    assertOperationOutcome(http().get("/fhir/Patient/" + p.id + "/_history/2"), 404,
                           "vread of a future version");
    assertOperationOutcome(http().get("/fhir/Patient/" + p.id + "/_history/99"), 404,
                           "vread of an unknown version");
    assertOperationOutcome(http().get("/fhir/Patient/" + uniqueId("never") + "/_history/1"), 404,
                           "vread of an unknown id");
    assertOperationOutcome(http().get("/fhir/Patient/" + uniqueId("never") + "/_history"), 404,
                           "history of an unknown id");
  }

  void testUpdateAsCreate() {
    std::string id = uniqueId("upc");
    std::string body = withId(withMarker(fixture("Organization"), "first"), id);
    HttpResponse r = http().put("/fhir/Organization/" + id, body);
    Stored s = checkWriteResponse(r, 201, "Organization", body, 1, base(), "update-as-create");
    HT_EQ("update-as-create keeps the client id", id, s.id);
    HT_EQ("update-as-create Location", base() + "/Organization/" + id + "/_history/1", r.header("Location"));
    r = http().get("/fhir/Organization/" + id);
    assertStatus(200, r, "read after update-as-create");
    HT_ASSERT("read returns the created version", r.json() == parseJson(s.json));
    History h = collectHistory(http(), "/fhir/Organization/" + id + "/_history");
    HT_EQ("one version", std::size_t(1), h.entries.size());
    HT_EQ("update-as-create history method", std::string("PUT"), h.entries[0].method);
    HT_ASSERT("update-as-create history status '" + h.entries[0].status + "'",
              h.entries[0].status.rfind("201", 0) == 0);
    Stored s2 = update(s, withMarker(fixture("Organization"), "second"));
    HT_EQ("then a normal update", 2L, s2.version);
  }

  void testIfMatch() {
    Stored v1 = create("Patient", fixture("Patient", {{"Organization", "x"}}));
    const std::string path = "/fhir/Patient/" + v1.id;
    std::string b2 = withId(withMarker(fixture("Patient", {{"Organization", "x"}}), "if-match-2"), v1.id);
    HttpResponse r = http().put(path, b2, {{"If-Match", weakEtag(1)}});
    Stored v2 = checkWriteResponse(r, 200, "Patient", b2, 2, base(), "PUT with a matching If-Match");
    std::string b3 = withId(withMarker(fixture("Patient", {{"Organization", "x"}}), "stale"), v1.id);
    r = http().put(path, b3, {{"If-Match", weakEtag(1)}});
    assertOperationOutcome(r, 412, "PUT with a stale If-Match");
    r = http().get(path);
    assertStatus(200, r, "read after 412");
    HT_ASSERT("a 412 must not change the resource", r.json() == parseJson(v2.json));
    HT_EQ("ETag after 412", weakEtag(2), r.header("ETag"));
    r = http().put(path, b3, {{"If-Match", weakEtag(7)}});
    assertOperationOutcome(r, 412, "PUT with a future If-Match");
    std::string missing = uniqueId("ifm-missing");
    r = http().put("/fhir/Patient/" + missing, withId(fixture("Patient", {{"Organization", "x"}}), missing),
                   {{"If-Match", weakEtag(1)}});
    assertOperationOutcome(r, 412, "If-Match on a resource that does not exist");
    assertOperationOutcome(http().get("/fhir/Patient/" + missing), 404, "the 412 must not have created it");
    History h = collectHistory(http(), path + "/_history");
    HT_EQ("history after the 412s", std::size_t(2), h.entries.size());
  }

  void testDeleteSemantics() {
    // R4 (http.html#delete): "Upon successful deletion, or if the resource does not exist at all,
    // the server should return either a 200 OK ... or a 204 No Content". Nothing may be created.
    const std::string never = "/fhir/Patient/" + uniqueId("never");
    assertOperationOutcome(http().del(never), 200, "delete of an id that never existed");
    assertOperationOutcome(http().get(never), 404, "a delete of an unknown id creates nothing");
    assertOperationOutcome(http().get(never + "/_history"), 404, "no history for an unknown id");
    Stored v1 = create("Location", fixture("Location", {{"Organization", "x"}}));
    const std::string path = "/fhir/Location/" + v1.id;
    HttpResponse r = http().del(path);
    assertStatusIn({200, 204}, r, "delete");
    HT_EQ("delete ETag", weakEtag(2), r.header("ETag"));
    r = http().del(path);
    assertStatusIn({200, 204}, r, "delete of an already deleted resource is idempotent");
    r = http().get(path);
    assertOperationOutcome(r, 410, "read of a deleted resource");
    assertOperationOutcome(http().get(path + "/_history/2"), 410, "vread of the deletion");
    r = http().get(path + "/_history/1");
    assertStatus(200, r, "vread of the version before the deletion");
    HT_ASSERT("old version unchanged", r.json() == parseJson(v1.json));
  }

  void testInstanceHistoryPaging() {
    Stored cur = create("Basic", basic("p1"));
    for (int i = 2; i <= 5; ++i) cur = update(cur, basic("p" + std::to_string(i)));
    History h = collectHistory(http(), "/fhir/Basic/" + cur.id + "/_history?_count=2");
    HT_EQ("instance history total with _count", 5L, h.total);
    HT_EQ("pages for 5 versions at _count=2", 3, h.pages);
    std::vector<std::string> versions;
    for (const auto& e : h.entries) versions.push_back(e.versionId);
    HT_ASSERT("all versions exactly once, newest first",
              versions == (std::vector<std::string>{"5", "4", "3", "2", "1"}));
    // The first page alone holds at most _count entries.
    HttpResponse r = http().get("/fhir/Basic/" + cur.id + "/_history?_count=2");
    rapidjson::Document firstPage = r.json();
    const rapidjson::Value* entries = jptr(firstPage, "/entry");
    HT_ASSERT("first page respects _count", entries && entries->IsArray() && entries->Size() == 2);
  }

  void testTypeHistoryPaging() {
    std::vector<std::pair<std::string, std::string>> written;  // (id, version) in write order
    Stored a = create("Basic", basic("t-a1"));
    const std::string since = a.lastUpdated;
    written.emplace_back(a.id, "1");
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    Stored b = create("Basic", basic("t-b1"));
    written.emplace_back(b.id, "1");
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    a = update(a, basic("t-a2"));
    written.emplace_back(a.id, "2");
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    Stored c = create("Basic", basic("t-c1"));
    written.emplace_back(c.id, "1");
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    a = update(a, basic("t-a3"));
    written.emplace_back(a.id, "3");
    std::set<std::string> ours{a.id, b.id, c.id};

    History h = collectHistory(http(), "/fhir/Basic/_history?_count=2&_since=" + enc(since));
    std::vector<std::pair<std::string, std::string>> seen;
    long long prev = LLONG_MAX;
    for (const auto& e : h.entries) {
      HT_EQ("type history only holds Basic", std::string("Basic"), e.resourceType);
      long long t = instantMicros(e.lastModified);
      HT_ASSERT("type history is newest first", t <= prev);
      prev = t;
      if (ours.count(e.id)) seen.emplace_back(e.id, e.versionId);
    }
    std::vector<std::pair<std::string, std::string>> expected(written.rbegin(), written.rend());
    std::string got;
    for (auto& [i, v] : seen) got += i + "/" + v + " ";
    HT_ASSERT("type history holds every version written, once, newest first; got " + got, seen == expected);
    HT_ASSERT("5 versions at _count=2 need at least 3 pages", h.pages >= 3);
  }

  void testSystemHistory() {
    std::unique_ptr<HearthProcess> own;
    HttpClient* client = &http();
    std::unique_ptr<HttpClient> ownClient;
    std::string fhirBase = base();
    if (backend().isolated()) {
      // A fresh store: the system history must hold exactly what this test writes.
      own = std::make_unique<HearthProcess>(
          ServerOptions{{"--set", "scheduling.prevent-double-booking=false"}, backend().db});
      own->start();
      ownClient = std::make_unique<HttpClient>(*own);
      ownClient->setRecorder(&recorderFor(suiteName()));
      client = ownClient.get();
      fhirBase = own->fhirBase();
    }
    auto post = [&](const std::string& type, const std::string& body) {
      HttpResponse r = client->post("/fhir/" + type, body);
      return checkWriteResponse(r, 201, type, body, 1, fhirBase, "system history: create " + type);
    };
    Stored p = post("Patient", fixture("Patient", {{"Organization", "x"}}));
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    Stored o = post("Organization", fixture("Organization"));
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    std::string pb = withId(withMarker(fixture("Patient", {{"Organization", o.id}}), "sys-2"), p.id);
    HttpResponse r = client->put("/fhir/Patient/" + p.id, pb);
    checkWriteResponse(r, 200, "Patient", pb, 2, fhirBase, "system history: update");
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    assertStatusIn({200, 204}, client->del("/fhir/Organization/" + o.id), "system history: delete");

    std::vector<std::string> expected{"Organization/" + o.id + "/2", "Patient/" + p.id + "/2",
                                      "Organization/" + o.id + "/1", "Patient/" + p.id + "/1"};
    std::string url = "/fhir/_history?_count=3";
    if (!backend().isolated()) url += "&_since=" + enc(p.lastUpdated);
    History h = collectHistory(*client, url);
    std::vector<std::string> seen;
    for (const auto& e : h.entries) {
      if (backend().isolated() || e.id == p.id || e.id == o.id)
        seen.push_back(e.resourceType + "/" + e.id + "/" + e.versionId);
    }
    std::string got;
    for (auto& s : seen) got += s + " ";
    HT_ASSERT("system history holds every version, newest first, deletions included; got " + got,
              seen == expected);
    if (backend().isolated()) {
      HT_EQ("4 entries at _count=3 make 2 pages", 2, h.pages);
      HT_ASSERT("the deletion entry has no resource", !h.entries[0].hasResource);
      HT_EQ("the deletion entry method", std::string("DELETE"), h.entries[0].method);
    }
    if (own) HT_EQ("clean exit", 0, own->stop().code);
  }

  void testHistorySince() {
    Stored a = create("Basic", basic("s-a1"));
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    Stored b = create("Basic", basic("s-b1"));
    const std::string since = b.lastUpdated;
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    Stored a2 = update(a, basic("s-a2"));
    const long long sinceUs = instantMicros(since);

    History h = collectHistory(http(), "/fhir/Basic/" + a.id + "/_history?_since=" + enc(since));
    HT_EQ("instance history _since: only the version at/after the instant", std::size_t(1), h.entries.size());
    HT_EQ("instance history _since: it is version 2", std::string("2"), h.entries[0].versionId);

    for (const std::string& url :
         {"/fhir/Basic/_history?_since=" + enc(since), "/fhir/_history?_since=" + enc(since)}) {
      h = collectHistory(http(), url);
      std::vector<std::string> seen;
      for (const auto& e : h.entries) {
        HT_ASSERT(url + ": entry older than _since: " + e.lastModified,
                  instantMicros(e.lastModified) >= sinceUs);
        if (e.id == a.id || e.id == b.id) seen.push_back(e.id + "/" + e.versionId);
      }
      HT_ASSERT(url + ": must hold exactly a/2 and b/1 (the boundary is inclusive)",
                seen == (std::vector<std::string>{a.id + "/2", b.id + "/1"}));
    }
    h = collectHistory(http(), "/fhir/Basic/" + a.id + "/_history?_since=" + enc("2999-01-01T00:00:00Z"));
    HT_EQ("_since in the future: no entries", std::size_t(0), h.entries.size());
  }

  void testRejectedWritesLeaveDataUntouched() {
    Stored v1 = create("Patient", fixture("Patient", {{"Organization", "x"}}));
    Stored v2 = update(v1, withMarker(fixture("Patient", {{"Organization", "x"}}), "good-2"));
    const std::string path = "/fhir/Patient/" + v1.id;
    const std::string good = withId(withMarker(fixture("Patient", {{"Organization", "x"}}), "bad"), v1.id);
    struct Bad {
      std::string label, body;
      Headers headers;
      int status;
    };
    std::string withUnknown = good;
    withUnknown.insert(withUnknown.size() - 1, R"(,"favouriteColour":"blue")");
    std::string wrongType = good;
    wrongType.insert(wrongType.size() - 1, R"(,"active":"yes")");
    std::string badDate = good;
    badDate.replace(badDate.find("1980-02-29"), 10, "1981-02-29");
    std::string badCode = good;
    badCode.replace(badCode.find("\"female\""), 8, "\"robot\"");
    std::vector<Bad> bads{
        {"malformed JSON", good.substr(0, good.size() - 5), {}, 400},
        {"id mismatch", withId(good, v1.id + "x"), {}, 400},
        {"no id", withoutServerFields(parseJson(good)), {}, 400},
        {"type mismatch", withId(R"({"resourceType":"Organization","name":"x"})", v1.id), {}, 400},
        {"unknown element", withUnknown, {}, 400},
        {"wrong JSON type", wrongType, {}, 400},
        {"impossible date", badDate, {}, 422},
        {"code outside a required binding", badCode, {}, 422},
        {"stale If-Match", good, {{"If-Match", weakEtag(1)}}, 412},
        {"unsupported content type", good, {{"Content-Type", "text/plain"}}, 415},
    };
    for (const auto& bad : bads) {
      HttpResponse r = http().put(path, bad.body, bad.headers);
      assertOperationOutcome(r, bad.status, "rejected PUT (" + bad.label + ")");
      r = http().get(path);
      assertStatus(200, r, "read after rejected PUT (" + bad.label + ")");
      HT_ASSERT("rejected PUT (" + bad.label + ") changed the resource: " + r.body,
                r.json() == parseJson(v2.json));
      HT_EQ("ETag after rejected PUT (" + bad.label + ")", weakEtag(2), r.header("ETag"));
      History h = collectHistory(http(), path + "/_history");
      HT_EQ("history after rejected PUT (" + bad.label + ")", std::size_t(2), h.entries.size());
    }
    // Rejected creates must not create anything: on an isolated store the system history is unchanged.
    if (backend().isolated()) {
      History before = collectHistory(http(), "/fhir/_history?_count=1000");
      for (const auto& bad : bads) {
        if (bad.label == "stale If-Match" || bad.label == "id mismatch" || bad.label == "no id") continue;
        std::string body = bad.body;
        HttpResponse r = http().post("/fhir/Patient", body, bad.headers);
        HT_ASSERT("rejected POST (" + bad.label + ") must fail: " + r.describe(), r.status >= 400);
      }
      History after = collectHistory(http(), "/fhir/_history?_count=1000");
      HT_EQ("rejected creates must not add versions", before.entries.size(), after.entries.size());
    }
  }

  void testDecimalPrecisionAndUnicode() {
    std::map<std::string, std::string> refs{{"Patient", "x"}, {"Organization", "x"}};
    Stored o = create("Observation", fixture("Observation", refs));
    HttpResponse r = http().get("/fhir/Observation/" + o.id);
    assertStatus(200, r, "read observation");
    static const std::regex value550(R"("value"\s*:\s*5\.50[,}\s])");
    HT_ASSERT("decimal 5.50 must keep its precision (FHIR decimals are exact): " + r.body,
              std::regex_search(r.body, value550));
    Stored p = create("Patient", fixture("Patient", refs));
    r = http().get("/fhir/Patient/" + p.id);
    rapidjson::Document doc = r.json();
    HT_EQ("unicode round trip", std::string("Zoë"), jstr(doc, "/name/0/given/0"));
    HT_EQ("unicode round trip", std::string("Łucja"), jstr(doc, "/name/0/given/1"));
  }

  void testModelExamplesRoundTrip() {
    // Example resources written for the model tests, when present, must be accepted and round-trip.
    Poco::File dir(sourceDir() + "/tests/model/examples");
    std::vector<std::string> files;
    if (dir.exists()) dir.list(files);
    std::sort(files.begin(), files.end());
    int tried = 0;
    std::string failures;
    for (const auto& f : files) {
      if (f.size() < 5 || f.substr(f.size() - 5) != ".json") continue;
      std::string text = readTextFile(dir.path() + "/" + f);
      rapidjson::Document doc;
      doc.Parse(text.c_str());
      if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("resourceType")) continue;
      std::string type = jstr(doc, "/resourceType");
      ++tried;
      HttpResponse r = http().post("/fhir/" + type, text);
      if (r.status != 201) {
        failures += "\n- " + f + ": " + r.describe();
        continue;
      }
      if (!sameContent(doc, r.json()))
        failures += "\n- " + f + ": stored content differs: " + r.body.substr(0, 800);
    }
    if (!failures.empty())
      CPPUNIT_FAIL("model examples rejected or altered (" + std::to_string(tried) + " tried):" + failures);
    if (tried == 0)
      std::cerr << "\n[note] no tests/model/examples/*.json yet; fixtures in tests/http/fixtures cover the "
                   "core types\n";
  }

  void testBodiesMatchSchema() {
    // Runs last in the suite: everything the previous tests received must be valid R4 JSON.
    http().get("/fhir/metadata");
    http().get("/fhir/Patient/" + uniqueId("nothing"));
    assertBodiesMatchSchema(recorderFor(suiteName()).dir());
  }

 private:
  std::unique_ptr<HttpClient> client_;
};

class StoreCrudSqliteTest : public StoreCrudTest {
  CPPUNIT_TEST_SUB_SUITE(StoreCrudSqliteTest, StoreCrudTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return sqliteBackend(); }
};
CPPUNIT_TEST_SUITE_REGISTRATION(StoreCrudSqliteTest);

class StoreCrudPostgresTest : public StoreCrudTest {
  CPPUNIT_TEST_SUB_SUITE(StoreCrudPostgresTest, StoreCrudTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return *postgresBackend(); }
};

namespace {
// The PostgreSQL suite exists only when a database is configured; say so when it is not.
struct RegisterPostgresSuite {
  std::optional<CppUnit::AutoRegisterSuite<StoreCrudPostgresTest>> reg;
  RegisterPostgresSuite() {
    if (postgresBackend())
      reg.emplace();
    else
      std::cerr << "[note] HEARTH_TEST_PG_URL not set: PostgreSQL CRUD suite not run\n";
  }
} registerPostgresSuite;
}  // namespace

// ---------------------------------------------------------------------------------------------
// The HTTP layer, on SQLite.
class HttpFrontTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(HttpFrontTest);
  CPPUNIT_TEST(testCapabilityStatement);
  CPPUNIT_TEST(testHealthAndMetrics);
  CPPUNIT_TEST(testPreferReturn);
  CPPUNIT_TEST(testFormatAndPretty);
  CPPUNIT_TEST(testAcceptNegotiation);
  CPPUNIT_TEST(testXmlRepresentation);
  CPPUNIT_TEST(testUnsupportedContentType415);
  CPPUNIT_TEST(testMethodNotAllowed405);
  CPPUNIT_TEST(testNotFound404);
  CPPUNIT_TEST(testRequestId);
  CPPUNIT_TEST(testAccessLogWithoutPhi);
  CPPUNIT_TEST(testStructuralErrors400);
  CPPUNIT_TEST(testContentErrors422);
  CPPUNIT_TEST(testBadIdAndTypeMismatch400);
  CPPUNIT_TEST(testHostileInputsNeverCause5xx);
  CPPUNIT_TEST(testBaseUrlFromHostHeaderAndConfig);
  CPPUNIT_TEST(testRequestsWithoutHostHeader);
  CPPUNIT_TEST(testKeepAlive);
  CPPUNIT_TEST(testErrorsKeepConnectionInSync);
  CPPUNIT_TEST(testBodyLimit413);
  CPPUNIT_TEST(testHttpsWithHsts);
  CPPUNIT_TEST(testConfigFileAndSwitches);
  CPPUNIT_TEST(testAuth401And403);
  CPPUNIT_TEST(testBodiesMatchSchema);
  CPPUNIT_TEST_SUITE_END();

 public:
  void setUp() override {
    client_ = std::make_unique<HttpClient>(server());
    client_->setRecorder(&recorderFor("front"));
  }
  void tearDown() override { client_.reset(); }

 private:
  HearthProcess& server() { return sharedServer(sqliteBackend()); }
  std::string base() { return server().fhirBase(); }
  HttpClient& http() { return *client_; }
  std::string patient() { return fixture("Patient", {{"Organization", "x"}}); }
  Stored createPatient(HttpClient& c, const std::string& b) {
    std::string body = patient();
    return checkWriteResponse(c.post("/fhir/Patient", body), 201, "Patient", body, 1, b, "create Patient");
  }

 public:
  void testCapabilityStatement() {
    HttpResponse r = http().get("/fhir/metadata");
    assertStatus(200, r, "metadata");
    assertFhirJsonContentType(r, "metadata");
    rapidjson::Document cs = r.json();
    HT_EQ("resourceType", std::string("CapabilityStatement"), jstr(cs, "/resourceType"));
    HT_EQ("fhirVersion", std::string("4.0.1"), jstr(cs, "/fhirVersion"));
    HT_EQ("kind", std::string("instance"), jstr(cs, "/kind"));
    HT_ASSERT("status", !jstr(cs, "/status").empty());
    HT_ASSERT("date", !jstr(cs, "/date").empty());
    bool json = false;
    if (auto* f = jptr(cs, "/format"); f && f->IsArray()) {
      for (auto& v : f->GetArray()) {
        std::string s = v.IsString() ? v.GetString() : "";
        if (s == "json" || s == "application/fhir+json") json = true;
      }
    }
    HT_ASSERT("format lists json", json);
    HT_EQ("rest[0].mode", std::string("server"), jstr(cs, "/rest/0/mode"));
    std::set<std::string> systemInteractions;
    if (auto* a = jptr(cs, "/rest/0/interaction"); a && a->IsArray()) {
      for (auto& i : a->GetArray()) systemInteractions.insert(jstr(i, "/code"));
    }
    HT_ASSERT("system interaction history-system", systemInteractions.count("history-system") == 1);
    std::map<std::string, std::set<std::string>> listed;
    const rapidjson::Value* resources = jptr(cs, "/rest/0/resource");
    HT_ASSERT("rest[0].resource", resources && resources->IsArray());
    for (auto& res : resources->GetArray()) {
      auto& set = listed[jstr(res, "/type")];
      if (auto* a = jptr(res, "/interaction"); a && a->IsArray()) {
        for (auto& i : a->GetArray()) set.insert(jstr(i, "/code"));
      }
    }
    std::vector<std::string> types = coreTypes();
    types.push_back("Basic");
    for (const auto& t : types) {
      HT_ASSERT("CapabilityStatement lists " + t, listed.count(t) == 1);
      for (const char* code :
           {"read", "vread", "update", "delete", "history-instance", "history-type", "create"}) {
        HT_ASSERT("CapabilityStatement: " + t + " interaction " + code, listed[t].count(code) == 1);
      }
    }
    // Every R4 resource type (the official schema's list) is listed.
    std::string schemaPath = sourceDir() + "/../shared/fhir-r4/fhir.schema.json";
    if (Poco::File(schemaPath).exists()) {
      rapidjson::Document schema = parseJson(readTextFile(schemaPath));
      std::string missing;
      for (auto& m : (*jptr(schema, "/discriminator/mapping")).GetObject()) {
        if (!listed.count(m.name.GetString())) missing += std::string(" ") + m.name.GetString();
      }
      HT_ASSERT("CapabilityStatement misses R4 types:" + missing, missing.empty());
    }
    // "Really supported": a claimed search must answer.
    if (listed["Patient"].count("search-type")) {
      HttpResponse s = http().get("/fhir/Patient?_count=1");
      assertStatus(200, s, "CapabilityStatement claims Patient search-type");
      HT_EQ("search answers a searchset", std::string("searchset"), jstr(s.json(), "/type"));
    }
  }

  void testHealthAndMetrics() {
    std::string id = createPatient(http(), base()).id;
    http().get("/fhir/Patient/" + id);
    http().get("/fhir/Patient/" + uniqueId("nope"));
    HttpResponse r = http().get("/health");
    assertStatus(200, r, "health");
    rapidjson::Document doc = r.json();
    HT_EQ("health status", std::string("ok"), jstr(doc, "/status"));
    HT_EQ("health store", std::string("sqlite"), jstr(doc, "/store"));
    r = http().get("/metrics");
    assertStatus(200, r, "metrics");
    HT_ASSERT("metrics: Prometheus text content type: " + r.header("Content-Type"),
              r.header("Content-Type").rfind("text/plain", 0) == 0);
    for (const char* name : {"hearth_http_requests_total{", "hearth_http_request_duration_seconds_bucket{",
                             "hearth_store_pool_"}) {
      HT_ASSERT(std::string("metrics must expose ") + name + ":\n" + r.body.substr(0, 2000),
                r.body.find(name) != std::string::npos);
    }
    static const std::regex requestLine(R"re(hearth_http_requests_total\{[^}]*status="404"[^}]*\} [0-9])re");
    static const std::regex labels(
        R"re(hearth_http_requests_total\{(?=[^}]*route=")(?=[^}]*method=")(?=[^}]*status="))re");
    HT_ASSERT("metrics count the 404 just answered", std::regex_search(r.body, requestLine));
    HT_ASSERT("request counter carries route, method and status labels", std::regex_search(r.body, labels));
    HT_ASSERT("metric labels must use route templates, not resource ids",
              r.body.find(id) == std::string::npos);
  }

  void testPreferReturn() {
    std::string body = patient();
    HttpResponse r = http().post("/fhir/Patient", body, {{"Prefer", "return=minimal"}});
    assertStatus(201, r, "POST return=minimal");
    HT_ASSERT("return=minimal: empty body, got: " + r.body, r.body.empty());
    HT_ASSERT("return=minimal keeps Location", r.header("Location").rfind(base() + "/Patient/", 0) == 0);
    HT_EQ("return=minimal keeps ETag", weakEtag(1), r.header("ETag"));
    std::string loc = r.header("Location");
    std::string id = loc.substr((base() + "/Patient/").size());
    id = id.substr(0, id.find('/'));
    assertStatus(200, http().get("/fhir/Patient/" + id), "read of the minimal create");

    std::string b2 = withId(withMarker(body, "minimal-put"), id);
    r = http().put("/fhir/Patient/" + id, b2, {{"Prefer", "return=minimal"}});
    assertStatus(200, r, "PUT return=minimal");
    HT_ASSERT("PUT return=minimal: empty body", r.body.empty());
    HT_EQ("PUT return=minimal ETag", weakEtag(2), r.header("ETag"));

    r = http().post("/fhir/Patient", body, {{"Prefer", "return=OperationOutcome"}});
    assertStatus(201, r, "POST return=OperationOutcome");
    HT_EQ("return=OperationOutcome body", std::string("OperationOutcome"), jstr(r.json(), "/resourceType"));
    HT_EQ("return=OperationOutcome ETag", weakEtag(1), r.header("ETag"));
    HT_ASSERT("return=OperationOutcome Location", !r.header("Location").empty());

    r = http().put("/fhir/Patient/" + id, withId(withMarker(body, "oo-put"), id),
                   {{"Prefer", "return=OperationOutcome"}});
    assertStatus(200, r, "PUT return=OperationOutcome");
    HT_EQ("PUT return=OperationOutcome body", std::string("OperationOutcome"),
          jstr(r.json(), "/resourceType"));

    r = http().post("/fhir/Patient", body, {{"Prefer", "return=representation"}});
    checkWriteResponse(r, 201, "Patient", body, 1, base(), "POST return=representation");
  }

  void testFormatAndPretty() {
    Stored p = createPatient(http(), base());
    const std::string path = "/fhir/Patient/" + p.id;
    HttpResponse plain = http().get(path);
    assertStatus(200, plain, "plain read");
    for (const std::string& q : {std::string("?_format=json"), "?_format=" + enc("application/fhir+json"),
                                 "?_format=" + enc("application/json")}) {
      HttpResponse r = http().get(path + q, {{"Accept", "text/csv"}});
      assertStatus(200, r, "_format overrides Accept (" + q + ")");
      assertFhirJsonContentType(r, q);
      HT_ASSERT("same resource with " + q, r.json() == plain.json());
    }
    HttpResponse pretty = http().get(path + "?_pretty=true");
    assertStatus(200, pretty, "_pretty=true");
    HT_ASSERT("_pretty=true must be indented: " + pretty.body, pretty.body.find("\n ") != std::string::npos);
    HT_ASSERT("_pretty=true: same content", pretty.json() == plain.json());
    HT_ASSERT("without _pretty the body is compact: " + plain.body,
              plain.body.find("\n ") == std::string::npos);
    HttpResponse notPretty = http().get(path + "?_pretty=false");
    HT_ASSERT("_pretty=false is compact", notPretty.body.find("\n ") == std::string::npos);
    HttpResponse both = http().get(path + "?_format=json&_pretty=true");
    HT_ASSERT("_format and _pretty together",
              both.status == 200 && both.body.find("\n ") != std::string::npos);
    HttpResponse prettyError = http().get("/fhir/Patient/" + uniqueId("nope") + "?_pretty=true");
    assertOperationOutcome(prettyError, 404, "pretty error");
  }

  void testAcceptNegotiation() {
    Stored p = createPatient(http(), base());
    const std::string path = "/fhir/Patient/" + p.id;
    for (const char* accept :
         {"*/*", "application/*", "application/json", "application/fhir+json",
          "application/fhir+json; charset=utf-8", "application/fhir+json;fhirVersion=4.0",
          "application/fhir+xml;q=0.9, application/fhir+json", "text/html;q=0.5, application/json;q=0.4"}) {
      HttpResponse r = http().get(path, {{"Accept", accept}});
      assertStatus(200, r, std::string("Accept: ") + accept);
      assertFhirJsonContentType(r, std::string("Accept: ") + accept);
    }
    for (const char* accept : {"text/csv", "image/png", "application/fhir+json;q=0, text/html"}) {
      HttpResponse r = http().get(path, {{"Accept", accept}});
      assertOperationOutcome(r, 406, std::string("Accept: ") + accept);
    }
    for (const char* accept : {"application/fhir+xml", "application/xml", "text/xml",
                               "application/fhir+json;q=0.5, application/fhir+xml"}) {
      HttpResponse r = http().get(path, {{"Accept", accept}});
      assertStatus(200, r, std::string("Accept: ") + accept);
      HT_ASSERT(std::string("XML content type for Accept: ") + accept,
                r.header("Content-Type").rfind("application/fhir+xml", 0) == 0);
      HT_ASSERT("an XML Patient", r.body.find("<Patient xmlns=\"http://hl7.org/fhir\">") != std::string::npos);
    }
    for (const std::string& f : {enc("text/csv"), std::string("html")}) {
      HttpResponse r = http().get(path + "?_format=" + f, {{"Accept", "application/fhir+json"}});
      assertOperationOutcome(r, 406, "_format=" + f + " overrides a servable Accept");
    }
    for (const std::string& f : {std::string("xml"), enc("application/fhir+xml")}) {
      HttpResponse r = http().get(path + "?_format=" + f, {{"Accept", "application/fhir+json"}});
      assertStatus(200, r, "_format=" + f);
      HT_ASSERT("_format=" + f + " overrides Accept", r.header("Content-Type").rfind("application/fhir+xml", 0) == 0);
    }
    std::size_t before = collectHistory(http(), "/fhir/_history?_count=1000").entries.size();
    HttpResponse r = http().post("/fhir/Patient", patient(), {{"Accept", "text/csv"}});
    assertOperationOutcome(r, 406, "POST with an unservable Accept");
    std::size_t after = collectHistory(http(), "/fhir/_history?_count=1000").entries.size();
    HT_EQ("a create answered 406 must not have been stored", before, after);
  }

  void testXmlRepresentation() {
    const std::string xml =
        "<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"true\"/><name><family value=\"Adeyemi\"/>"
        "<given value=\"Tolu\"/></name><gender value=\"female\"/><birthDate value=\"1990-07-01\"/></Patient>";
    HttpResponse r = http().post("/fhir/Patient", xml,
                                 {{"Content-Type", "application/fhir+xml"}, {"Accept", "application/fhir+json"}});
    assertStatus(201, r, "create from XML");
    const std::string id = r.json()["id"].GetString();
    HT_EQ("family from XML", std::string("Adeyemi"), std::string(r.json()["name"][0]["family"].GetString()));
    HT_ASSERT("active is a JSON boolean", r.json()["active"].IsBool());
    r = http().get("/fhir/Patient/" + id, {{"Accept", "application/fhir+xml"}});
    assertStatus(200, r, "read as XML");
    HT_ASSERT("XML carries the server id", r.body.find("<id value=\"" + id + "\"/>") != std::string::npos);
    HT_ASSERT("XML carries the version", r.body.find("<versionId value=\"1\"/>") != std::string::npos);
    // Update from XML, answered in XML.
    const std::string xml2 = "<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"" + id +
                             "\"/><active value=\"false\"/></Patient>";
    r = http().put("/fhir/Patient/" + id, xml2,
                   {{"Content-Type", "application/fhir+xml"}, {"Accept", "application/fhir+xml"}});
    assertStatus(200, r, "update from XML");
    HT_ASSERT("XML update answer", r.body.find("<active value=\"false\"/>") != std::string::npos);
    // Errors in an XML exchange come back as an XML OperationOutcome.
    r = http().put("/fhir/Patient/" + id, "<Patient xmlns=\"http://hl7.org/fhir\"><bogus value=\"1\"/></Patient>",
                   {{"Content-Type", "application/fhir+xml"}, {"Accept", "application/fhir+xml"}});
    HT_EQ("unknown XML element", 400, r.status);
    HT_ASSERT("XML OperationOutcome", r.body.find("<OperationOutcome xmlns=\"http://hl7.org/fhir\">") != std::string::npos);
    // Hostile XML never reaches the file system and changes nothing.
    const std::string xxe =
        "<?xml version=\"1.0\"?><!DOCTYPE p [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
        "<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"" + id + "\"/><name><family value=\"&x;\"/></name></Patient>";
    r = http().put("/fhir/Patient/" + id, xxe, {{"Content-Type", "application/fhir+xml"}});
    assertOperationOutcome(r, 400, "XXE");
    HT_ASSERT("no file content in the answer", r.body.find("root:") == std::string::npos);
    r = http().get("/fhir/Patient/" + id);
    HT_EQ("still version 2 after the rejected XML", std::string("2"), std::string(r.json()["meta"]["versionId"].GetString()));
  }

  void testUnsupportedContentType415() {
    std::string body = patient();
    for (const char* ct : {"application/json", "application/json; charset=utf-8",
                           "application/fhir+json;charset=UTF-8", "application/fhir+json; fhirVersion=4.0"}) {
      HttpResponse r = http().post("/fhir/Patient", body, {{"Content-Type", ct}});
      checkWriteResponse(r, 201, "Patient", body, 1, base(), std::string("Content-Type: ") + ct);
    }
    for (const char* ct : {"text/plain", "application/x-www-form-urlencoded", "text/csv", "image/png"}) {
      HttpResponse r = http().post("/fhir/Patient", body, {{"Content-Type", ct}});
      assertOperationOutcome(r, 415, std::string("POST with Content-Type: ") + ct);
    }
    Stored p = createPatient(http(), base());
    HttpResponse r =
        http().put("/fhir/Patient/" + p.id, withId(body, p.id), {{"Content-Type", "text/plain"}});
    assertOperationOutcome(r, 415, "PUT with Content-Type text/plain");
  }

  void testMethodNotAllowed405() {
    auto allowOf = [](const HttpResponse& r) {
      std::set<std::string> s;
      std::string a = r.header("Allow");
      std::string cur;
      for (char c : a + ",") {
        if (c == ',') {
          if (!cur.empty()) s.insert(cur);
          cur.clear();
        } else if (c != ' ') {
          cur += c;
        }
      }
      return s;
    };
    HttpResponse r = http().post("/fhir/Patient/123", patient());
    assertOperationOutcome(r, 405, "POST on an instance");
    auto allow = allowOf(r);
    for (const char* m : {"GET", "PUT", "DELETE"}) {
      HT_ASSERT(std::string("Allow of an instance lists ") + m + ": " + r.header("Allow"),
                allow.count(m) == 1);
    }
    HT_ASSERT("Allow must not list the refused method", allow.count("POST") == 0);
    r = http().post("/fhir/Patient/_history", patient());
    assertOperationOutcome(r, 405, "POST on a type's history");
    allow = allowOf(r);
    HT_ASSERT("Allow of a type history lists GET: " + r.header("Allow"), allow.count("GET") == 1);
    HT_ASSERT("Allow must not list POST", allow.count("POST") == 0);
    // DELETE / PUT on a type are conditional interactions: without criteria they cannot name a
    // resource, which is a client error (400), not a refused method.
    r = http().del("/fhir/Patient");
    assertOperationOutcome(r, 400, "conditional DELETE without criteria");
    r = http().put("/fhir/Patient", patient());
    assertOperationOutcome(r, 400, "conditional PUT without criteria");
    r = http().post("/fhir/Patient/123/_history/1", patient());
    assertOperationOutcome(r, 405, "POST on a version");
    HT_ASSERT("Allow of a version lists GET: " + r.header("Allow"), allowOf(r).count("GET") == 1);
    r = http().del("/fhir/metadata");
    assertOperationOutcome(r, 405, "DELETE on metadata");
    HT_ASSERT("Allow of metadata lists GET: " + r.header("Allow"), allowOf(r).count("GET") == 1);
  }

  void testNotFound404() {
    assertOperationOutcome(http().get("/fhir/NotAType/1"), 404, "unknown resource type");
    assertOperationOutcome(http().get("/fhir/patient/1"), 404, "resource types are case-sensitive");
    assertOperationOutcome(http().post("/fhir/NotAType", R"({"resourceType":"NotAType"})"), 404,
                           "create of an unknown type");
    assertOperationOutcome(http().get("/fhir/Patient/" + uniqueId("nope")), 404, "unknown id");
    assertOperationOutcome(http().get("/fhir/Patient/abc/_history/1/extra"), 404,
                           "unknown route below a version");
    assertOperationOutcome(http().get("/nothing-here"), 404, "unknown route outside /fhir");
  }

  void testRequestId() {
    HttpResponse r = http().get("/fhir/metadata", {{"X-Request-Id", "hearth-test-1234abcd"}});
    HT_EQ("a sane X-Request-Id is echoed", std::string("hearth-test-1234abcd"), r.header("X-Request-Id"));
    r = http().get("/fhir/Patient/" + uniqueId("nope"), {{"X-Request-Id", "err-req-42"}});
    HT_EQ("error responses echo X-Request-Id too", std::string("err-req-42"), r.header("X-Request-Id"));
    HttpResponse a = http().get("/fhir/metadata");
    HttpResponse b = http().get("/fhir/metadata");
    HT_ASSERT("a generated X-Request-Id is present", !a.header("X-Request-Id").empty());
    HT_ASSERT("generated X-Request-Ids differ per request",
              a.header("X-Request-Id") != b.header("X-Request-Id"));
    for (const std::string& insane :
         {std::string(500, 'x'), std::string("bad id \"<script>\""), std::string("line\tbreak")}) {
      r = http().get("/fhir/metadata", {{"X-Request-Id", insane}});
      HT_ASSERT("an insane X-Request-Id is replaced, not echoed: " + r.header("X-Request-Id"),
                !r.header("X-Request-Id").empty() && r.header("X-Request-Id") != insane);
    }
  }

  void testAccessLogWithoutPhi() {
    const std::string family = "Secretname" + randomToken(8);
    std::string body = fixture("Patient", {{"Organization", "x"}});
    body.replace(body.find("Testperson"), 10, family);
    Stored p =
        checkWriteResponse(http().post("/fhir/Patient", body), 201, "Patient", body, 1, base(), "create");
    const std::string rid = "log-" + randomToken(12);
    const std::string secretQuery = "q" + randomToken(12);
    HttpResponse r =
        http().get("/fhir/Patient/" + p.id + "?_pretty=true&family=" + secretQuery, {{"X-Request-Id", rid}});
    const std::string missRid = "log-" + randomToken(12);
    http().get("/fhir/Patient/" + uniqueId("nope"), {{"X-Request-Id", missRid}});
    std::string line, missLine;
    for (int i = 0; i < 50 && (line.empty() || missLine.empty()); ++i) {
      std::istringstream log(server().log());
      for (std::string l; std::getline(log, l);) {
        if (l.find(rid) != std::string::npos) line = l;
        if (l.find(missRid) != std::string::npos) missLine = l;
      }
      if (line.empty() || missLine.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    HT_ASSERT("access log has a line with the request id " + rid + ":\n" + server().logTail(2000),
              !line.empty());
    HT_ASSERT("access log line has the method: " + line, line.find("GET") != std::string::npos);
    HT_ASSERT("access log line has the path: " + line,
              line.find("/fhir/Patient/" + p.id) != std::string::npos);
    HT_ASSERT("access log line has the status: " + line, line.find("200") != std::string::npos);
    HT_ASSERT("access log must not contain the query string: " + line,
              line.find(secretQuery) == std::string::npos);
    HT_ASSERT("access log of the 404 has its status: " + missLine, missLine.find("404") != std::string::npos);
    std::string all = server().log();
    HT_ASSERT("the log must never contain patient data", all.find(family) == std::string::npos);
    HT_ASSERT("the log must never contain query strings", all.find(secretQuery) == std::string::npos);
  }

  void testStructuralErrors400() {
    struct Case {
      std::string label, body, exprPrefix, exprPart;
    };
    std::vector<Case> cases{
        {"malformed JSON", R"({"resourceType":"Patient","active":true)", "", ""},
        {"not an object", R"([{"resourceType":"Patient"}])", "", ""},
        {"missing resourceType", R"({"active":true})", "", ""},
        {"unknown element", R"({"resourceType":"Patient","favouriteColour":"blue"})", "Patient",
         "favouriteColour"},
        {"wrong JSON type (string for boolean)", R"({"resourceType":"Patient","active":"yes"})",
         "Patient.active", ""},
        {"wrong JSON type (object for array)", R"({"resourceType":"Patient","name":{"family":"X"}})",
         "Patient.name", ""},
        {"wrong JSON type nested", R"({"resourceType":"Patient","name":[{"family":["X"]}]})", "Patient.name",
         "family"},
        {"unknown nested element",
         R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1,"units":"mg"}})",
         "Observation.value", "units"},
        {"duplicate property", R"({"resourceType":"Patient","active":true,"active":false})", "Patient.active",
         ""},
        {"null value", R"({"resourceType":"Patient","active":null})", "Patient.active", ""},
        {"empty array", R"({"resourceType":"Patient","name":[]})", "Patient.name", ""},
        {"empty body", "", "", ""},
    };
    for (const auto& c : cases) {
      HttpResponse r = http().post(
          "/fhir/" + std::string(c.body.find("Observation") != std::string::npos ? "Observation" : "Patient"),
          c.body, {{"Content-Type", "application/fhir+json"}});
      rapidjson::Document oo = assertOperationOutcome(r, 400, c.label);
      if (!c.exprPrefix.empty()) assertIssueExpression(oo, c.exprPrefix, c.exprPart, c.label);
    }
  }

  void testContentErrors422() {
    struct Case {
      std::string type, label, body, exprPrefix, exprPart;
    };
    std::vector<Case> cases{
        {"Patient", "impossible date", R"({"resourceType":"Patient","birthDate":"1980-13-45"})",
         "Patient.birthDate", ""},
        {"Patient", "non-leap 29 February", R"({"resourceType":"Patient","birthDate":"1981-02-29"})",
         "Patient.birthDate", ""},
        {"Patient", "code outside the required binding", R"({"resourceType":"Patient","gender":"robot"})",
         "Patient.gender", ""},
        {"Observation", "missing required element",
         R"({"resourceType":"Observation","code":{"text":"glucose"}})", "Observation", "status"},
        {"Observation", "bad instant",
         R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"issued":"2024-03-02"})",
         "Observation.issued", ""},
    };
    for (const auto& c : cases) {
      HttpResponse r = http().post("/fhir/" + c.type, c.body);
      rapidjson::Document oo = assertOperationOutcome(r, 422, c.label);
      assertIssueExpression(oo, c.exprPrefix, c.exprPart, c.label);
    }
  }

  void testBadIdAndTypeMismatch400() {
    std::string body = patient();
    assertOperationOutcome(http().put("/fhir/Patient/bad$id", withId(body, "bad$id")), 400,
                           "PUT with an invalid id");
    std::string longId(65, 'a');
    assertOperationOutcome(http().put("/fhir/Patient/" + longId, withId(body, longId)), 400,
                           "PUT with a 65-char id");
    std::string id = uniqueId("mismatch");
    assertOperationOutcome(http().put("/fhir/Patient/" + id, withId(body, id + "-other")), 400,
                           "body id != URL id");
    assertOperationOutcome(http().put("/fhir/Patient/" + id, body), 400, "PUT body without id");
    assertOperationOutcome(
        http().put("/fhir/Patient/" + id, withId(R"({"resourceType":"Organization","name":"x"})", id)), 400,
        "PUT resourceType != URL type");
    assertOperationOutcome(http().post("/fhir/Patient", R"({"resourceType":"Organization","name":"x"})"), 400,
                           "POST resourceType != URL type");
    assertOperationOutcome(http().get("/fhir/Patient/" + id), 404,
                           "nothing was created by the rejected PUTs");
  }

  void testHostileInputsNeverCause5xx() {
    // Unparseable parameters are the client's fault (400); nothing a client sends may produce a 5xx.
    for (const char* q : {"_since=garbage", "_since=2024-13-99T00:00:00Z", "_count=-1", "_count=abc",
                          "_count=99999999999999999999", "_cursor=zzz", "_cursor=%00%ff"}) {
      assertOperationOutcome(http().get(std::string("/fhir/_history?") + q), 400,
                             std::string("system history ") + q);
      assertOperationOutcome(http().get(std::string("/fhir/Patient/_history?") + q), 400,
                             std::string("type history ") + q);
    }
    std::vector<std::pair<std::string, std::string>> requests{
        {"GET", "/fhir/Patient/%00"},
        {"GET", "/fhir/Patient/a%2Fb"},
        {"GET", "/fhir/Patient/" + std::string(2000, 'a')},
        {"GET", "/fhir/Patient/x/_history/abc"},
        {"GET", "/fhir/Patient/x/_history/-1"},
        {"GET", "/fhir/Patient/x/_history/99999999999999999999999"},
        {"GET", "/fhir/%F0%9F%94%A5/1"},
        {"GET", "/fhir//Patient"},
        {"GET", "/fhir/Patient/x?_format=%ff"},
        {"POST", "/fhir/Patient?_pretty=maybe"},
    };
    for (const auto& [method, path] : requests) {
      HttpResponse r =
          http().request(method, path, method == "POST" ? R"({"resourceType":"Patient","active":true})" : "");
      HT_ASSERT("no 5xx for " + method + " " + path + ": " + r.describe(), r.status < 500);
      if (r.status >= 400) assertOperationOutcome(r, r.status, method + " " + path);
    }
  }

  void testBaseUrlFromHostHeaderAndConfig() {
    std::string body = patient();
    HttpResponse r = http().post("/fhir/Patient", body, {{"Host", "hearth.test:8443"}});
    assertStatus(201, r, "create with a Host header");
    std::string id = jstr(r.json(), "/id");
    HT_EQ("Location follows the Host header", "http://hearth.test:8443/fhir/Patient/" + id + "/_history/1",
          r.header("Location"));
    HearthProcess configured(ServerOptions{{"--set", "fhir.base-url=https://hearth.example.org/fhir"}, ""});
    configured.start();
    HttpClient c(configured);
    c.setRecorder(&recorderFor("front"));
    r = c.post("/fhir/Patient", body);
    assertStatus(201, r, "create with fhir.base-url set");
    id = jstr(r.json(), "/id");
    const std::string fb = "https://hearth.example.org/fhir";
    HT_EQ("Location uses fhir.base-url", fb + "/Patient/" + id + "/_history/1", r.header("Location"));
    c.put("/fhir/Patient/" + id, withId(body, id));
    r = c.get("/fhir/Patient/" + id + "/_history?_count=1");
    assertStatus(200, r, "history with fhir.base-url set");
    rapidjson::Document b = r.json();
    HT_EQ("fullUrl uses fhir.base-url", fb + "/Patient/" + id, jstr(b, "/entry/0/fullUrl"));
    for (const auto& l : jptr(b, "/link")->GetArray()) {
      HT_ASSERT("links use fhir.base-url: " + jstr(l, "/url"), jstr(l, "/url").rfind(fb + "/", 0) == 0);
    }
    HT_EQ("clean exit", 0, configured.stop().code);
  }

  void testRequestsWithoutHostHeader() {
    // HTTP/1.0 clients (probes, old integration engines) may omit Host: serve them, with links built
    // from the address the server really listens on. HTTP/1.1 requires Host: 400 without it (RFC 9112 3.2).
    const std::string body = R"({"resourceType":"Patient","active":true})";
    std::string resp = rawExchange(server().host(), server().port(), "GET /fhir/metadata HTTP/1.0\r\n\r\n");
    HT_EQ("HTTP/1.0 GET without Host: " + resp.substr(0, 400), 200, rawStatus(resp));
    resp =
        rawExchange(server().host(), server().port(),
                    "POST /fhir/Patient HTTP/1.0\r\nContent-Type: application/fhir+json\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body);
    HT_EQ("HTTP/1.0 POST without Host: " + resp.substr(0, 400), 201, rawStatus(resp));
    std::string loc = rawHeader(resp, "Location");
    HT_ASSERT("without Host, Location uses the port the server listens on: " + loc,
              loc.find(":" + std::to_string(server().port()) + "/fhir/Patient/") != std::string::npos);
    resp = rawExchange(server().host(), server().port(),
                       "GET /fhir/metadata HTTP/1.1\r\nConnection: close\r\n\r\n");
    HT_EQ("HTTP/1.1 without Host: " + resp.substr(0, 400), 400, rawStatus(resp));
  }

  void testKeepAlive() {
    HttpResponse a = http().get("/fhir/metadata");
    uint16_t first = http().localPort();
    HttpResponse b = http().get("/fhir/Patient/" + uniqueId("nope"));
    HttpResponse c = http().post("/fhir/Patient", patient());
    uint16_t last = http().localPort();
    HT_ASSERT("responses must keep the connection open: " + c.describe(),
              a.header("Connection") != "close" && b.header("Connection") != "close" &&
                  c.header("Connection") != "close");
    HT_ASSERT("three requests (incl. an error) share one keep-alive connection", first != 0 && first == last);
  }

  void testErrorsKeepConnectionInSync() {
    // An error answered before the request body was read must not leave that body in the
    // connection, where it would be parsed as the next request (drain it, or close the connection).
    struct Case {
      std::string label, method, path;
      Headers headers;
    };
    std::vector<Case> cases{
        {"405", "POST", "/fhir/Patient/123", {}},
        {"404 unknown type", "POST", "/fhir/NotAType", {}},
        {"415", "POST", "/fhir/Patient", {{"Content-Type", "text/plain"}}},
        {"406", "POST", "/fhir/Patient", {{"Accept", "text/csv"}}},
        {"405 on metadata", "PUT", "/fhir/metadata", {}},
    };
    std::string failures;
    for (const auto& c : cases) {
      HttpClient fresh(server());
      HttpResponse err = fresh.request(c.method, c.path, patient(), c.headers);
      HttpResponse next = fresh.get("/fhir/metadata");
      if (next.status != 200) {
        failures += "\n- after " + err.request + " -> " + std::to_string(err.status) +
                    ", the next request on the "
                    "connection got: " +
                    next.describe().substr(0, 400);
      }
    }
    if (!failures.empty()) CPPUNIT_FAIL("unread request bodies corrupt keep-alive connections:" + failures);
  }

  // TLS from config: HTTPS answers with HSTS; the same port does not speak plain HTTP; and
  // http.tls=true without a certificate refuses to start instead of serving plain HTTP.
  void testHttpsWithHsts() {
    char dirTemplate[] = "/tmp/hearth-tls-XXXXXX";
    const char* dir = ::mkdtemp(dirTemplate);
    CPPUNIT_ASSERT(dir != nullptr);
    const std::string cert = std::string(dir) + "/cert.pem", key = std::string(dir) + "/key.pem";
    const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -keyout " + key +
                            " -out " + cert + " >/dev/null 2>&1";
    CPPUNIT_ASSERT_EQUAL_MESSAGE("openssl made a test certificate", 0, std::system(cmd.c_str()));
    {
      ServerOptions so{{"--set", "http.tls=true", "--set", "http.tls.certificate=" + cert, "--set",
                        "http.tls.private-key=" + key},
                       ""};
      so.tls = true;
      HearthProcess server(so);
      server.start();
      Poco::Net::Context::Ptr ctx =
          new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", Poco::Net::Context::VERIFY_NONE);
      Poco::Net::HTTPSClientSession https("127.0.0.1", server.port(), ctx);
      https.setTimeout(Poco::Timespan(10, 0));
      Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_GET, "/fhir/metadata", Poco::Net::HTTPMessage::HTTP_1_1);
      req.setHost("127.0.0.1");
      https.sendRequest(req);
      Poco::Net::HTTPResponse resp;
      std::istream& in = https.receiveResponse(resp);
      std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      CPPUNIT_ASSERT_EQUAL(200, static_cast<int>(resp.getStatus()));
      CPPUNIT_ASSERT_EQUAL(std::string("max-age=31536000"), resp.get("Strict-Transport-Security", ""));
      CPPUNIT_ASSERT_MESSAGE(body, body.find("\"CapabilityStatement\"") != std::string::npos);
      CPPUNIT_ASSERT_MESSAGE("the base URL is https",
                             body.find("\"url\":\"https://") != std::string::npos ||
                                 body.find("https://127.0.0.1") != std::string::npos);
      // Plain HTTP on the TLS port gets no HTTP answer.
      bool plainAnswered = false;
      try {
        Poco::Net::HTTPClientSession plain("127.0.0.1", server.port());
        plain.setTimeout(Poco::Timespan(5, 0));
        Poco::Net::HTTPRequest preq(Poco::Net::HTTPRequest::HTTP_GET, "/fhir/metadata", Poco::Net::HTTPMessage::HTTP_1_1);
        plain.sendRequest(preq);
        Poco::Net::HTTPResponse presp;
        plain.receiveResponse(presp);
        plainAnswered = presp.getStatus() == Poco::Net::HTTPResponse::HTTP_OK;
      } catch (const Poco::Exception&) {
      }
      CPPUNIT_ASSERT(!plainAnswered);
    }
    {
      HearthProcess server(ServerOptions{{"--set", "http.tls=true"}, ""});
      CPPUNIT_ASSERT_THROW(server.start(), std::runtime_error);
      CPPUNIT_ASSERT_MESSAGE(server.log(), server.log().find("http.tls=true needs") != std::string::npos);
    }
    std::remove(cert.c_str());
    std::remove(key.c_str());
    ::rmdir(dir);
  }

  void testBodyLimit413() {
    HearthProcess limited(ServerOptions{{"--set", "http.body-limit=2048"}, ""});
    limited.start();
    HttpClient c(limited);
    c.setRecorder(&recorderFor("front"));
    // A Patient of exactly `size` bytes (whitespace padding), optionally carrying an id.
    auto padded = [](std::size_t size, const std::string& id = {}) {
      std::string head =
          R"({"resourceType":"Patient",)" + (id.empty() ? "" : "\"id\":\"" + id + "\",") + R"("active":true)";
      return head + std::string(size - head.size() - 1, ' ') + "}";
    };
    HttpResponse r = c.post("/fhir/Patient", padded(2048));
    assertStatus(201, r, "a body of exactly the limit is accepted");
    std::string id = jstr(r.json(), "/id");
    r = c.post("/fhir/Patient", padded(2049));
    assertOperationOutcome(r, 413, "a body one byte over the limit");
    r = c.post("/fhir/Patient", padded(100000));
    assertOperationOutcome(r, 413, "a large body");
    HttpClient chunked(limited);
    chunked.setRecorder(&recorderFor("front"));
    r = chunked.requestChunked("POST", "/fhir/Patient", padded(8000));
    assertOperationOutcome(r, 413, "a chunked body over the limit");
    HttpClient chunkedOk(limited);
    r = chunkedOk.requestChunked("POST", "/fhir/Patient", padded(1000));
    assertStatus(201, r, "a chunked body under the limit is accepted");
    std::string chunkedId = jstr(r.json(), "/id");
    r = c.put("/fhir/Patient/" + id, padded(5000, id));
    assertOperationOutcome(r, 413, "PUT over the limit");
    r = c.get("/fhir/Patient/" + id);
    assertStatus(200, r, "read after 413");
    HT_EQ("a 413 leaves the resource untouched", std::string("1"), jstr(r.json(), "/meta/versionId"));
    History h = collectHistory(c, "/fhir/_history");
    std::set<std::string> stored;
    for (const auto& e : h.entries) stored.insert(e.id);
    HT_ASSERT("only the accepted creates are stored",
              h.entries.size() == 2 && stored.count(id) && stored.count(chunkedId));
    HT_EQ("clean exit", 0, limited.stop().code);
  }

  void testConfigFileAndSwitches() {
    // --config FILE is read, --set overrides it; page sizes, keep-alive and access logging follow config.
    std::string dir = bodyDir("front-config");
    Poco::File(dir).createDirectories();
    const std::string file = dir + "/hearth-test.properties";
    std::ofstream(file) << "# written by http_crud_tests\nhttp.body-limit = 100\nfhir.page-size.default = 3\n"
                           "fhir.page-size.max = 5\nlog.access = false\n";
    HearthProcess srv(ServerOptions{
        {"--config", file, "--set", "http.body-limit=3000", "--set", "http.keepalive=false"}, ""});
    srv.start();
    HttpClient c(srv);
    c.setRecorder(&recorderFor("front"));
    auto padded = [](std::size_t size) {
      std::string head = R"({"resourceType":"Patient","active":true)";
      return head + std::string(size - head.size() - 1, ' ') + "}";
    };
    const std::string rid = "cfg-" + randomToken(12);
    HttpResponse r = c.post("/fhir/Patient", padded(2500), {{"X-Request-Id", rid}});
    assertStatus(201, r, "--set http.body-limit=3000 overrides the file's 100");
    HT_EQ("http.keepalive=false: the server closes connections", std::string("close"),
          Poco::toLower(r.header("Connection")));
    assertOperationOutcome(c.post("/fhir/Patient", padded(4000)), 413, "body over the configured limit");
    std::string id = jstr(r.json(), "/id");
    for (int v = 2; v <= 12; ++v)
      assertStatus(200, c.put("/fhir/Patient/" + id, withId(patient(), id)), "update");
    r = c.get("/fhir/Patient/" + id + "/_history");
    rapidjson::Document page = r.json();
    const rapidjson::Value* entries = jptr(page, "/entry");
    HT_ASSERT("fhir.page-size.default=3: " + r.body.substr(0, 300),
              entries && entries->IsArray() && entries->Size() == 3);
    r = c.get("/fhir/Patient/" + id + "/_history?_count=100");
    page = r.json();
    entries = jptr(page, "/entry");
    HT_ASSERT("fhir.page-size.max=5 caps _count", entries && entries->IsArray() && entries->Size() == 5);
    History h = collectHistory(c, "/fhir/Patient/" + id + "/_history?_count=100");
    HT_EQ("paging at the capped size still reaches every version", std::size_t(12), h.entries.size());
    HT_EQ("12 versions at 5 per page", 3, h.pages);
    HT_EQ("clean exit", 0, srv.stop().code);
    HT_ASSERT("log.access=false: no access line", srv.log().find(rid) == std::string::npos);
  }

  void testAuth401And403() {
    const std::string readToken = "read-" + randomToken(24);
    const std::string writeToken = "write-" + randomToken(24);
    HearthProcess secured(
        ServerOptions{{"--set", "auth.enabled=true", "--set",
                       "auth.tokens=" + sha256Hex(readToken) + ":read," + sha256Hex(writeToken) + ":write"},
                      ""});
    secured.start();
    HttpClient c(secured);
    c.setRecorder(&recorderFor("front"));
    const std::string fb = secured.fhirBase();
    const Headers asReader{{"Authorization", "Bearer " + readToken}};
    const Headers asWriter{{"Authorization", "Bearer " + writeToken}};

    assertStatus(200, c.get("/health"), "/health stays open");
    assertStatus(200, c.get("/metrics"), "/metrics stays open");
    for (const Headers& bad : {Headers{}, Headers{{"Authorization", "Bearer not-a-token"}},
                               Headers{{"Authorization", "Basic " + readToken}},
                               Headers{{"Authorization", "Bearer " + sha256Hex(readToken)}}}) {
      HttpResponse r = c.get("/fhir/Patient/" + uniqueId("any"), bad);
      assertOperationOutcome(r, 401, "no valid bearer token");
      HT_ASSERT("401 carries WWW-Authenticate: Bearer: " + r.describe(),
                r.header("WWW-Authenticate").rfind("Bearer", 0) == 0);
      r = c.post("/fhir/Patient", patient(), bad);
      assertOperationOutcome(r, 401, "write without a valid token");
    }
    std::string body = patient();
    HttpResponse r = c.post("/fhir/Patient", body, asWriter);
    Stored p = checkWriteResponse(r, 201, "Patient", body, 1, fb, "create with the write token");
    r = c.get("/fhir/Patient/" + p.id, asReader);
    assertStatus(200, r, "read with the read token");
    r = c.get("/fhir/Patient/" + p.id + "/_history", asReader);
    assertStatus(200, r, "history with the read token");
    r = c.post("/fhir/Patient", body, asReader);
    assertOperationOutcome(r, 403, "create with a read-only token");
    r = c.put("/fhir/Patient/" + p.id, withId(withMarker(body, "forbidden"), p.id), asReader);
    assertOperationOutcome(r, 403, "update with a read-only token");
    r = c.del("/fhir/Patient/" + p.id, asReader);
    assertOperationOutcome(r, 403, "delete with a read-only token");
    r = c.get("/fhir/Patient/" + p.id, asReader);
    assertStatus(200, r, "read after the refused writes");
    HT_ASSERT("refused writes leave the resource untouched", r.json() == parseJson(p.json));
    r = c.put("/fhir/Patient/" + p.id, withId(withMarker(body, "allowed"), p.id), asWriter);
    assertStatus(200, r, "update with the write token");
    std::string log = secured.log();
    HT_ASSERT("tokens must never be logged",
              log.find(readToken) == std::string::npos && log.find(writeToken) == std::string::npos);
    HT_EQ("clean exit", 0, secured.stop().code);
  }

  void testBodiesMatchSchema() {
    http().get("/fhir/metadata");
    assertBodiesMatchSchema(recorderFor("front").dir());
  }

 private:
  std::unique_ptr<HttpClient> client_;
};
CPPUNIT_TEST_SUITE_REGISTRATION(HttpFrontTest);
