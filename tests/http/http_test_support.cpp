#include "http_test_support.h"

#include <Poco/DateTime.h>
#include <Poco/DateTimeFormat.h>
#include <Poco/DateTimeParser.h>
#include <Poco/File.h>
#include <fcntl.h>
#include <rapidjson/pointer.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>

namespace hearth::test {
namespace {

// Writing to a server that was just killed must fail the write, not kill the test process.
const bool kSigpipeIgnored = [] {
  ::signal(SIGPIPE, SIG_IGN);
  return true;
}();

const char* kMarkerUrl = "http://example.org/hearth-test/marker";

std::string shellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

// Runs a shell command, returning its exit code and combined output.
std::pair<int, std::string> runCommand(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) output.append(buf, n);
  int status = ::pclose(pipe);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return {code, output};
}

std::string msgPrefix(const std::string& what) { return what.empty() ? std::string() : what + ": "; }

void stripServerFields(rapidjson::Value& v) {
  if (!v.IsObject()) return;
  v.RemoveMember("id");
  auto meta = v.FindMember("meta");
  if (meta != v.MemberEnd() && meta->value.IsObject()) {
    meta->value.RemoveMember("versionId");
    meta->value.RemoveMember("lastUpdated");
    if (meta->value.MemberCount() == 0) v.RemoveMember("meta");
  }
}

}  // namespace

const std::vector<std::string>& coreTypes() {
  static const std::vector<std::string> types{"Organization",     "Patient",           "Practitioner",
                                              "Location",         "PractitionerRole",  "Medication",
                                              "Encounter",        "Schedule",          "Slot",
                                              "Appointment",      "ServiceRequest",    "Observation",
                                              "DiagnosticReport", "MedicationRequest", "MedicationDispense",
                                              "Coverage",         "ChargeItem",        "Claim",
                                              "Invoice",          "AuditEvent"};
  return types;
}

Backend sqliteBackend() { return Backend{"sqlite", ""}; }

std::optional<Backend> postgresBackend() {
  if (auto url = pgUrl()) return Backend{"postgres", *url};
  return std::nullopt;
}

std::string sourceDir() {
  const char* dir = std::getenv("HEARTH_SOURCE_DIR");
  if (!dir || !*dir) throw std::runtime_error("HEARTH_SOURCE_DIR is not set (run the tests through ctest)");
  return dir;
}

std::string readTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string fixture(const std::string& type, const std::map<std::string, std::string>& refs) {
  std::string text = readTextFile(sourceDir() + "/tests/http/fixtures/" + type + ".json");
  std::size_t pos;
  while ((pos = text.find("{{")) != std::string::npos) {
    std::size_t end = text.find("}}", pos);
    std::string name = text.substr(pos + 2, end - pos - 2);
    auto it = refs.find(name);
    if (it == refs.end()) throw std::runtime_error("fixture " + type + " needs a " + name + " id");
    text.replace(pos, end - pos + 2, it->second);
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

std::string bodyDir(const std::string& suite) {
  const char* base = std::getenv("HEARTH_TEST_BODY_DIR");
  if (base && *base) return std::string(base) + "/" + suite;
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp && *tmp ? tmp : "/tmp") + "/hearth-bodies-" + std::to_string(::getpid()) + "/" +
         suite;
}

std::pair<int, std::string> runSchemaValidator(const std::string& path) {
  const std::string schemaDir = sourceDir() + "/tests/schema";
  auto [nodeRc, nodeOut] = runCommand("node --version");
  if (nodeRc != 0) CPPUNIT_FAIL("schema check impossible: `node` is not available on PATH (" + nodeOut + ")");
  if (!Poco::File(schemaDir + "/node_modules/ajv/package.json").exists()) {
    // Several test processes may get here at once: one installs, the others wait on the lock.
    int lockFd = ::open("/tmp/hearth-schema-npm-ci.lock", O_CREAT | O_RDWR, 0666);
    if (lockFd >= 0) ::flock(lockFd, LOCK_EX);
    if (!Poco::File(schemaDir + "/node_modules/ajv/package.json").exists()) {
      auto [rc, out] = runCommand("cd " + shellQuote(schemaDir) + " && npm ci --no-audit --no-fund");
      if (rc != 0) {
        if (lockFd >= 0) ::close(lockFd);
        CPPUNIT_FAIL("schema check impossible: `npm ci` in tests/schema failed (ajv unavailable):\n" + out);
      }
    }
    if (lockFd >= 0) ::close(lockFd);
  }
  auto result = runCommand("cd " + shellQuote(schemaDir) + " && node validate.mjs " + shellQuote(path));
  if (result.first == 2) CPPUNIT_FAIL("schema validator could not run on " + path + ":\n" + result.second);
  return result;
}

void assertBodiesMatchSchema(const std::string& dir) {
  auto [rc, out] = runSchemaValidator(dir);
  if (rc != 0) {
    if (out.size() > 12000) out = out.substr(0, 12000) + "\n...(cut)";
    CPPUNIT_FAIL("response bodies in " + dir + " do not all validate against fhir.schema.json (exit " +
                 std::to_string(rc) + "):\n" + out);
  }
}

const std::string& runPrefix() {
  static const std::string prefix = "ht" + randomToken(8);
  return prefix;
}

std::string uniqueId(const std::string& label) {
  std::string id = runPrefix() + "-" + label + "-" + randomToken(6);
  if (id.size() > 64) id = id.substr(0, 64);
  return id;
}

void assertStatus(int expected, const HttpResponse& r, const std::string& what) {
  if (r.status != expected) {
    CPPUNIT_FAIL(msgPrefix(what) + "expected HTTP " + std::to_string(expected) + ", got " + r.describe());
  }
}

void assertStatusIn(std::initializer_list<int> allowed, const HttpResponse& r, const std::string& what) {
  for (int s : allowed) {
    if (r.status == s) return;
  }
  std::string list;
  for (int s : allowed) list += (list.empty() ? "" : "/") + std::to_string(s);
  CPPUNIT_FAIL(msgPrefix(what) + "expected HTTP " + list + ", got " + r.describe());
}

void assertFhirJsonContentType(const HttpResponse& r, const std::string& what) {
  std::string ct = r.header("Content-Type");
  std::string lower;
  for (char c : ct) {
    if (c != ' ') lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  HT_ASSERT(msgPrefix(what) + "Content-Type must be application/fhir+json;charset=utf-8: " + r.describe(),
            lower.rfind("application/fhir+json", 0) == 0 && lower.find("charset=utf-8") != std::string::npos);
}

rapidjson::Document assertOperationOutcome(const HttpResponse& r, int status, const std::string& what) {
  assertStatus(status, r, what);
  assertFhirJsonContentType(r, what);
  rapidjson::Document doc;
  try {
    doc = r.json();
  } catch (const std::exception& e) {
    CPPUNIT_FAIL(msgPrefix(what) + "error body is not JSON: " + r.describe());
  }
  HT_EQ(msgPrefix(what) + "error body must be an OperationOutcome: " + r.describe(),
        std::string("OperationOutcome"), jstr(doc, "/resourceType"));
  const rapidjson::Value* issues = jptr(doc, "/issue");
  HT_ASSERT(msgPrefix(what) + "OperationOutcome without issues: " + r.describe(),
            issues && issues->IsArray() && !issues->Empty());
  for (const auto& issue : issues->GetArray()) {
    HT_ASSERT(msgPrefix(what) + "issue without severity/code: " + r.describe(),
              issue.IsObject() && !jstr(issue, "/severity").empty() && !jstr(issue, "/code").empty());
  }
  return doc;
}

void assertIssueExpression(const rapidjson::Document& oo, const std::string& expressionPrefix,
                           const std::string& expressionPart, const std::string& what) {
  const rapidjson::Value* issues = jptr(oo, "/issue");
  HT_ASSERT(msgPrefix(what) + "no issues in " + toJson(oo), issues && issues->IsArray());
  bool found = false;
  for (const auto& issue : issues->GetArray()) {
    const rapidjson::Value* exprs = jptr(issue, "/expression");
    HT_ASSERT(msgPrefix(what) + "every issue must carry a non-empty expression: " + toJson(oo),
              exprs && exprs->IsArray() && !exprs->Empty());
    for (const auto& e : exprs->GetArray()) {
      HT_ASSERT(msgPrefix(what) + "expression must be a non-empty string: " + toJson(oo),
                e.IsString() && e.GetStringLength() > 0);
      std::string s = e.GetString();
      if (s.rfind(expressionPrefix, 0) == 0 && s.find(expressionPart) != std::string::npos) found = true;
    }
  }
  HT_ASSERT(msgPrefix(what) + "expected an issue expression starting with '" + expressionPrefix +
                "' containing '" + expressionPart + "': " + toJson(oo),
            found);
}

long etagVersion(const std::string& etag) {
  static const std::regex re(R"re(^W/"([0-9]+)"$)re");
  std::smatch m;
  if (!std::regex_match(etag, m, re)) return -1;
  return std::stol(m[1]);
}

std::string weakEtag(long version) { return "W/\"" + std::to_string(version) + "\""; }

long long httpDateSeconds(const std::string& text) {
  static const std::regex rfc1123(
      R"(^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$)");
  if (!std::regex_match(text, rfc1123)) throw std::runtime_error("not an RFC 1123 date: '" + text + "'");
  int tzd = 0;
  Poco::DateTime dt = Poco::DateTimeParser::parse(Poco::DateTimeFormat::HTTP_FORMAT, text, tzd);
  dt.makeUTC(tzd);
  return static_cast<long long>(dt.timestamp().epochTime());
}

long long instantMicros(const std::string& instant) {
  static const std::regex re(
      R"(^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|([+-])(\d{2}):(\d{2}))$)");
  std::smatch m;
  if (!std::regex_match(instant, m, re)) throw std::runtime_error("not a FHIR instant: '" + instant + "'");
  std::tm tm{};
  tm.tm_year = std::stoi(m[1]) - 1900;
  tm.tm_mon = std::stoi(m[2]) - 1;
  tm.tm_mday = std::stoi(m[3]);
  tm.tm_hour = std::stoi(m[4]);
  tm.tm_min = std::stoi(m[5]);
  tm.tm_sec = std::stoi(m[6]);
  long long secs = static_cast<long long>(timegm(&tm));
  if (m[8] != "Z") {
    long long off = std::stoll(m[10]) * 3600 + std::stoll(m[11]) * 60;
    secs -= (m[9] == "+" ? off : -off);
  }
  long long micros = 0;
  if (m[7].matched) {
    std::string frac = m[7].str().substr(1);
    frac = (frac + "000000").substr(0, 6);
    micros = std::stoll(frac);
  }
  return secs * 1000000 + micros;
}

long long instantSeconds(const std::string& instant) {
  long long us = instantMicros(instant);
  return us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
}

bool sameContent(const rapidjson::Value& a, const rapidjson::Value& b) {
  rapidjson::Document x, y;
  x.CopyFrom(a, x.GetAllocator());
  y.CopyFrom(b, y.GetAllocator());
  stripServerFields(x);
  stripServerFields(y);
  return x == y;
}

std::string withoutServerFields(const rapidjson::Value& resource) {
  rapidjson::Document x;
  x.CopyFrom(resource, x.GetAllocator());
  stripServerFields(x);
  return toJson(x);
}

std::string withId(const std::string& json, const std::string& id) {
  rapidjson::Document doc = parseJson(json);
  doc.RemoveMember("id");
  doc.AddMember("id", rapidjson::Value(id.c_str(), doc.GetAllocator()), doc.GetAllocator());
  return toJson(doc);
}

std::string withMarker(const std::string& json, const std::string& marker) {
  rapidjson::Document doc = parseJson(json);
  auto& alloc = doc.GetAllocator();
  rapidjson::Value ext(rapidjson::kObjectType);
  ext.AddMember("url", rapidjson::Value(kMarkerUrl, alloc), alloc);
  ext.AddMember("valueString", rapidjson::Value(marker.c_str(), alloc), alloc);
  auto it = doc.FindMember("extension");
  if (it == doc.MemberEnd()) {
    doc.AddMember("extension", rapidjson::Value(rapidjson::kArrayType), alloc);
    it = doc.FindMember("extension");
  }
  rapidjson::Value kept(rapidjson::kArrayType);
  for (auto& e : it->value.GetArray()) {
    if (jstr(e, "/url") != kMarkerUrl) kept.PushBack(rapidjson::Value(e, alloc), alloc);
  }
  kept.PushBack(ext, alloc);
  it->value = kept;
  return toJson(doc);
}

std::string markerOf(const rapidjson::Value& resource) {
  const rapidjson::Value* exts = jptr(resource, "/extension");
  if (!exts || !exts->IsArray()) return {};
  for (const auto& e : exts->GetArray()) {
    if (jstr(e, "/url") == kMarkerUrl) return jstr(e, "/valueString");
  }
  return {};
}

History collectHistory(HttpClient& client, const std::string& url, int maxPages) {
  History h;
  std::string next = url;
  while (!next.empty()) {
    HT_ASSERT("history paging did not end after " + std::to_string(maxPages) + " pages: " + url,
              h.pages < maxPages);
    HttpResponse r = client.get(next);
    assertStatus(200, r, "history page");
    assertFhirJsonContentType(r, "history page");
    rapidjson::Document doc = r.json();
    HT_EQ("history is a Bundle: " + r.describe(), std::string("Bundle"), jstr(doc, "/resourceType"));
    HT_EQ("Bundle.type: " + r.describe(), std::string("history"), jstr(doc, "/type"));
    if (h.pages == 0) {
      const rapidjson::Value* total = jptr(doc, "/total");
      if (total && total->IsInt64()) h.total = static_cast<long>(total->GetInt64());
    }
    ++h.pages;
    std::string self;
    next.clear();
    if (const rapidjson::Value* links = jptr(doc, "/link"); links && links->IsArray()) {
      for (const auto& l : links->GetArray()) {
        std::string rel = jstr(l, "/relation");
        if (rel == "self") self = jstr(l, "/url");
        if (rel == "next") next = jstr(l, "/url");
      }
    }
    HT_ASSERT("history page needs an absolute self link: " + r.describe(), self.rfind("http", 0) == 0);
    HT_ASSERT("next link must be absolute: " + next, next.empty() || next.rfind("http", 0) == 0);
    if (const rapidjson::Value* entries = jptr(doc, "/entry"); entries && entries->IsArray()) {
      for (const auto& e : entries->GetArray()) {
        HistoryEntry he;
        he.fullUrl = jstr(e, "/fullUrl");
        he.method = jstr(e, "/request/method");
        he.url = jstr(e, "/request/url");
        he.status = jstr(e, "/response/status");
        he.etag = jstr(e, "/response/etag");
        he.lastModified = jstr(e, "/response/lastModified");
        if (const rapidjson::Value* res = jptr(e, "/resource"); res && res->IsObject()) {
          he.hasResource = true;
          he.resourceType = jstr(*res, "/resourceType");
          he.id = jstr(*res, "/id");
          he.versionId = jstr(*res, "/meta/versionId");
          he.marker = markerOf(*res);
          he.resourceJson = toJson(*res);
        } else {
          // A deletion: identify it by its request URL ("Type/id").
          std::string u = he.url;
          if (auto q = u.find('?'); q != std::string::npos) u = u.substr(0, q);
          auto slash = u.rfind('/');
          if (slash != std::string::npos) {
            he.id = u.substr(slash + 1);
            auto prev = u.rfind('/', slash - 1);
            he.resourceType = u.substr(prev == std::string::npos ? 0 : prev + 1,
                                       slash - (prev == std::string::npos ? 0 : prev + 1));
          }
          if (long v = etagVersion(he.etag); v > 0) he.versionId = std::to_string(v);
        }
        h.entries.push_back(std::move(he));
      }
    }
  }
  return h;
}

HearthProcess& sharedServer(const Backend& backend) {
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<HearthProcess>> servers;
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = servers[backend.name];
  if (!slot || !slot->running()) {
    // The storage suites post the same example resources (an Appointment with a slot and times
    // among them) again and again to check fidelity; the no-double-booking rule that would refuse
    // the repeats is a hospital workflow with its own suite (tests/workflows), so it is off here.
    slot = std::make_unique<HearthProcess>(
        ServerOptions{{"--set", "scheduling.prevent-double-booking=false"}, backend.db});
    slot->start();
  }
  return *slot;
}

}  // namespace hearth::test
