#pragma once
// Shared helpers of the HTTP integration suites: backends, fixtures, FHIR-aware assertions,
// history paging and the JSON-schema check of recorded response bodies.
#include <cppunit/extensions/HelperMacros.h>
#include <rapidjson/document.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hearth_process.h"
#include "http_client.h"

namespace hearth::test {

// The hospital's core resource types, in an order where every type's references point at types
// created before it (the fixtures reference each other through {{Type}} placeholders).
const std::vector<std::string>& coreTypes();

// A store the server can run on: SQLite in the data dir (always) or PostgreSQL (HEARTH_TEST_PG_URL).
struct Backend {
  std::string name;                                   // "sqlite" | "postgres"
  std::string db;                                     // --db URL; empty for the SQLite default
  bool isolated() const { return name == "sqlite"; }  // a fresh store that only this process writes
};
Backend sqliteBackend();
std::optional<Backend> postgresBackend();

// $HEARTH_SOURCE_DIR (repo root); throws if unset.
std::string sourceDir();
std::string readTextFile(const std::string& path);
// tests/http/fixtures/<type>.json with each {{Type}} replaced by refs[Type] (throws if missing).
std::string fixture(const std::string& type, const std::map<std::string, std::string>& refs = {});
// Where a suite saves response bodies: $HEARTH_TEST_BODY_DIR/<suite>, else a temp dir.
std::string bodyDir(const std::string& suite);

// Runs `node tests/schema/validate.mjs <dir>` (installing tests/schema/node_modules with `npm ci`
// first when missing, under a lock). Fails the current test with the validator's output when a body
// is invalid, when the directory has no bodies, or when node/ajv are unavailable.
void assertBodiesMatchSchema(const std::string& dir);
// Runs the validator on a file or directory: {exit code, output}. Fails the current test only when
// node or ajv are unavailable.
std::pair<int, std::string> runSchemaValidator(const std::string& path);

// A per-process random prefix for ids, so runs sharing one PostgreSQL database never collide.
const std::string& runPrefix();
std::string uniqueId(const std::string& label);

// FHIR assertions. Each names the request/response in its failure message.
void assertStatus(int expected, const HttpResponse& r, const std::string& what = {});
void assertStatusIn(std::initializer_list<int> allowed, const HttpResponse& r, const std::string& what = {});
// Content-Type is application/fhir+json with charset=utf-8.
void assertFhirJsonContentType(const HttpResponse& r, const std::string& what = {});
// An OperationOutcome body with at least one issue carrying severity and code; returns it.
rapidjson::Document assertOperationOutcome(const HttpResponse& r, int status, const std::string& what = {});
// OperationOutcome whose issues all have a non-empty expression and one of which starts with
// `expressionPrefix` and contains `expressionPart`.
void assertIssueExpression(const rapidjson::Document& oo, const std::string& expressionPrefix,
                           const std::string& expressionPart, const std::string& what = {});

// W/"7" -> 7; -1 if the value is not a weak ETag with a numeric version.
long etagVersion(const std::string& etag);
std::string weakEtag(long version);
// Seconds since the epoch of an RFC 1123 date or a FHIR instant (fractions dropped); throws on junk.
long long httpDateSeconds(const std::string& rfc1123);
long long instantSeconds(const std::string& instant);
// Microseconds since the epoch of a FHIR instant (with fraction and zone).
long long instantMicros(const std::string& instant);

// Resource equality ignoring id and meta.versionId/meta.lastUpdated (and meta when that empties it).
bool sameContent(const rapidjson::Value& a, const rapidjson::Value& b);
std::string withoutServerFields(const rapidjson::Value& resource);
// `json` (a resource) with "id" set to `id`.
std::string withId(const std::string& json, const std::string& id);
// `json` with a root extension carrying `marker`, so every version's content is distinct.
std::string withMarker(const std::string& json, const std::string& marker);
// The marker set by withMarker, "" if none.
std::string markerOf(const rapidjson::Value& resource);

struct HistoryEntry {
  std::string fullUrl, method, url, status, etag, lastModified;
  bool hasResource = false;
  std::string resourceType, id, versionId, marker;
  std::string resourceJson;
};
struct History {
  std::vector<HistoryEntry> entries;
  int pages = 0;
  long total = -1;  // first page's Bundle.total, -1 if absent
};
// GETs `url` and follows `next` links; asserts every page is a 200 history Bundle with an
// absolute self link and absolute next links.
History collectHistory(HttpClient& client, const std::string& url, int maxPages = 500);

// A lazily started server per backend, shared by the tests of one process, stopped at exit.
HearthProcess& sharedServer(const Backend& backend);

}  // namespace hearth::test

// Message-carrying assertions usable from helpers and tests.
#define HT_ASSERT(msg, cond) CPPUNIT_ASSERT_MESSAGE(msg, cond)
#define HT_EQ(msg, expected, actual) CPPUNIT_ASSERT_EQUAL_MESSAGE(msg, expected, actual)
