// Batch and transaction Bundles, conditional create / update / delete / patch, and PATCH
// (interactions.h). JSON Patch itself is in json_patch.cpp.
//
// Transactions run every write in ONE ResourceService::runAtomic unit, in the order R4 prescribes
// (http.html#trules): DELETE, POST, PUT and PATCH; GET/HEAD entries are evaluated after the commit
// (they see the transaction's writes, but cannot fail it). Ids of created resources are assigned
// before the unit, so references to entries' fullUrls (urn:uuid:, urn:oid:, or absolute URLs) can
// be rewritten to Type/id. Conditional criteria are locked in one sorted pass at the start of the
// unit (StoreTransaction::lockKey), so concurrent conditional writes with the same criteria
// serialise and cannot deadlock each other.
//
// Reading the current content of a resource inside a unit (PATCH needs it): the unit looks the
// current version up through its own transaction (which locks the row) and takes the content from
// a cache filled outside the unit. When the cache lacks that exact version, the unit throws
// NeedContent; the caller reads the committed version from the store, and runs the unit again. A
// concurrent write between the read and the unit is therefore never lost: the unit only ever
// patches the version it holds locked.
#include "hearth/fhir/interactions.h"

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "hearth/fhir/bundle.h"
#include "hearth/fhir/json.h"

namespace hearth::fhir {

namespace {

constexpr size_t kMaxBundleEntries = 10000;
constexpr int kMaxBundleDepth = 512;         // JSON nesting of a whole Bundle (resources stop at 100)
constexpr int kMaxContentPasses = 8;         // re-runs of a unit that needed a resource's content
constexpr int kMaxConditionalDeletes = 10000;  // a conditional delete of more matches is refused
// A transaction with at least this many writes commits on its own, not through group commit
// (ResourceService::runAtomicAlone): small ones gain from sharing a sync, large ones lose more to
// the group's savepoint than the sync costs them.
constexpr size_t kAloneUnitWrites = 32;

using RefMap = std::unordered_map<std::string, std::string>;

std::string_view sv(const rapidjson::Value& v) { return {v.GetString(), v.GetStringLength()}; }

const rapidjson::Value* member(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(name);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

std::string statusText(int status) {
  switch (status) {
    case 200: return "200 OK";
    case 201: return "201 Created";
    case 204: return "204 No Content";
    case 304: return "304 Not Modified";
    case 400: return "400 Bad Request";
    case 401: return "401 Unauthorized";
    case 403: return "403 Forbidden";
    case 404: return "404 Not Found";
    case 405: return "405 Method Not Allowed";
    case 409: return "409 Conflict";
    case 410: return "410 Gone";
    case 412: return "412 Precondition Failed";
    case 413: return "413 Payload Too Large";
    case 415: return "415 Unsupported Media Type";
    case 422: return "422 Unprocessable Entity";
    case 500: return "500 Internal Server Error";
    case 501: return "501 Not Implemented";
    case 503: return "503 Service Unavailable";
    default: return std::to_string(status);
  }
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX decoding for comparing criteria; a malformed escape stays as it is (matchIds rejects it).
std::string percentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = hexValue(s[i + 1]), lo = hexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

// Criteria in a canonical form (parameters decoded and sorted), so that the same criteria written
// differently share a lock key and are recognised as the same conditional reference.
std::string canonicalCriteria(std::string_view criteria) {
  std::vector<std::string> parts;
  while (!criteria.empty()) {
    const size_t amp = criteria.find('&');
    std::string_view part = criteria.substr(0, amp);
    criteria = amp == std::string_view::npos ? std::string_view{} : criteria.substr(amp + 1);
    if (!part.empty()) parts.push_back(percentDecode(part));
  }
  std::sort(parts.begin(), parts.end());
  std::string out;
  for (const std::string& p : parts) {
    if (!out.empty()) out += '&';
    out += p;
  }
  return out;
}

// "Patient?identifier=x", "?identifier=x" or "identifier=x" -> "identifier=x".
std::string criteriaOnly(std::string_view s) {
  const size_t q = s.find('?');
  if (q != std::string_view::npos) s = s.substr(q + 1);
  return std::string(s);
}

std::string lockKeyFor(std::string_view type, std::string_view criteria) {
  return "cond:" + std::string(type) + "?" + canonicalCriteria(criteria);
}

void requireCriteria(std::string_view criteria, std::string_view what) {
  if (criteria.empty()) {
    throw FhirError(400, IssueType::Required,
                    std::string(what) + " needs search criteria, e.g. identifier=system|value");
  }
}

FhirError multipleMatches(std::string_view what, std::string_view type, size_t n, bool atLeast) {
  return FhirError(412, IssueType::MultipleMatches,
                   std::string(what) + ": the criteria match " + (atLeast ? "more than one " : std::to_string(n) + " ") +
                       std::string(type) + " resources; they must match at most one");
}

// W/"3", "3" or 3 -> 3; 400 otherwise.
int64_t parseEtag(std::string_view v, const char* what) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.size() >= 2 && (v[0] == 'W' || v[0] == 'w') && v[1] == '/') v.remove_prefix(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string_view::npos) {
    throw FhirError(400, IssueType::Invalid, std::string("Malformed ") + what + ": expected W/\"<versionId>\"");
  }
  int64_t n = 0;
  for (char c : v) n = n * 10 + (c - '0');
  return n;
}

// Standard base64 (RFC 4648), whitespace ignored; nullopt if malformed.
std::optional<std::string> base64Decode(std::string_view in) {
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0, pad = 0;
  for (char c : in) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+') v = 62;
    else if (c == '/') v = 63;
    else if (c == '=') {
      ++pad;
      continue;
    } else {
      return std::nullopt;
    }
    if (pad) return std::nullopt;  // data after padding
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  if (pad > 2) return std::nullopt;
  return out;
}


// ---- reading current content inside a unit (see the file comment) ----

struct NeedContent {
  std::string type, id;
};
using ContentCache = std::unordered_map<std::string, std::shared_ptr<const StoredVersion>>;

std::string key(std::string_view type, std::string_view id) {
  std::string k(type);
  k += '/';
  k += id;
  return k;
}

const StoredVersion& cachedContent(const ContentCache& cache, std::string_view type, std::string_view id,
                                   int64_t version) {
  auto it = cache.find(key(type, id));
  if (it == cache.end() || it->second->version != version) throw NeedContent{std::string(type), std::string(id)};
  return *it->second;
}

// Reads the committed current version of type/id into `cache` (nothing when it does not exist).
void fetchContent(ResourceService& service, ContentCache& cache, std::string_view type, std::string_view id) {
  std::optional<StoredVersion> v;
  try {
    v = service.store().read(type, id);
  } catch (const StoreUnavailable& e) {
    throw FhirError(503, IssueType::Transient, "The data store is unavailable; nothing was written. Retry later.")
        .withInternalDetail(e.what());
  }
  if (v) cache[key(type, id)] = std::make_shared<const StoredVersion>(std::move(*v));
}

// Runs `fn` as one atomic unit, filling `cache` and re-running when the unit needs content.
// `alone`: a large unit, run in a transaction of its own (ResourceService::runAtomicAlone).
template <class Fn>
void runWithContent(ResourceService& service, ContentCache& cache, Fn&& fn, bool alone = false) {
  for (int pass = 1;; ++pass) {
    try {
      if (alone) {
        service.runAtomicAlone([&](WriteContext& ctx) { fn(ctx); });
      } else {
        service.runAtomic([&](WriteContext& ctx) { fn(ctx); });
      }
      return;
    } catch (const NeedContent& need) {
      if (pass >= kMaxContentPasses) {
        throw FhirError(409, IssueType::Conflict,
                        "The resource kept changing while it was being patched; nothing was written. Retry.");
      }
      fetchContent(service, cache, need.type, need.id);
    }
  }
}

// The patched JSON must still be the same resource: 400 when the patch changed the resource type
// or the id (or removed either).
void checkPatchedIdentity(std::string_view patched, std::string_view type, std::string_view id) {
  const rapidjson::Document d = parseJson(patched);
  if (!d.IsObject()) throw FhirError(400, IssueType::Invalid, "The patch must leave a resource (a JSON object)");
  const rapidjson::Value* rt = member(d, "resourceType");
  if (!rt || !rt->IsString() || sv(*rt) != type) {
    throw FhirError(400, IssueType::Invalid, "A patch must not change or remove resourceType",
                    std::string(type) + ".resourceType");
  }
  const rapidjson::Value* pid = member(d, "id");
  if (!pid || !pid->IsString() || sv(*pid) != id) {
    throw FhirError(400, IssueType::Invalid, "A patch must not change or remove the resource id", std::string(type) + ".id");
  }
}

// PATCH of type/id inside a unit: the current version (locked by the unit), If-Match, the patch,
// and the update through the normal validation (an invalid result is 422).
WriteOutcome patchInUnit(WriteContext& ctx, const ContentCache& cache, std::string_view type, std::string_view id,
                         std::string_view jsonPatch, std::optional<int64_t> ifMatch) {
  const auto cur = ctx.tx().current(type, id);
  if (!cur) {
    throw FhirError(404, IssueType::NotFound, "Resource " + std::string(type) + "/" + std::string(id) + " is not known");
  }
  if (cur->deleted) {
    throw FhirError(410, IssueType::Deleted, "Resource " + std::string(type) + "/" + std::string(id) + " was deleted");
  }
  if (ifMatch && *ifMatch != cur->version) {
    throw FhirError(412, IssueType::Conflict,
                    "Version conflict: If-Match names version " + std::to_string(*ifMatch) +
                        " but the current version is " + std::to_string(cur->version));
  }
  const StoredVersion& base = cachedContent(cache, type, id, cur->version);
  const std::string patched = applyJsonPatch(base.json, jsonPatch);
  checkPatchedIdentity(patched, type, id);
  try {
    return ctx.update(type, id, patched, cur->version);
  } catch (const FhirError& e) {
    // The patch produced well-formed JSON that is not a valid resource: 422 (R4 http.html#patch).
    if (e.status() == 400) throw FhirError(422, e.issues());
    throw;
  }
}

// `body` (a JSON object without a top-level id) with "id" inserted first.
std::string withInjectedId(std::string_view body, std::string_view id, bool emptyObject) {
  const size_t brace = body.find('{');
  std::string out;
  out.reserve(body.size() + id.size() + 8);
  out.append(body.substr(0, brace + 1));
  out += "\"id\":\"";
  appendJsonEscaped(out, id);
  out += '"';
  if (!emptyObject) out += ',';
  out.append(body.substr(brace + 1));
  return out;
}

// ---- Bundle parsing ----

// SAX handler building the Bundle's DOM (it forwards every event to the Document) while recording
// the byte range of each entry[i].resource, so that resources can be passed on as the exact bytes
// the client sent (numbers verbatim) without re-serialising them from the DOM.
class BundleReader {
 public:
  BundleReader(rapidjson::Document& doc, const rapidjson::MemoryStream& ms, std::vector<std::pair<size_t, size_t>>& ranges)
      : doc_(doc), ms_(ms), ranges_(ranges) {}

  bool Null() { return value() && doc_.Null(); }
  bool Bool(bool b) { return value() && doc_.Bool(b); }
  bool Int(int i) { return value() && doc_.Int(i); }
  bool Uint(unsigned u) { return value() && doc_.Uint(u); }
  bool Int64(int64_t i) { return value() && doc_.Int64(i); }
  bool Uint64(uint64_t u) { return value() && doc_.Uint64(u); }
  bool Double(double d) { return value() && doc_.Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool c) { return value() && doc_.RawNumber(s, n, c); }
  bool String(const char* s, rapidjson::SizeType n, bool c) { return value() && doc_.String(s, n, c); }
  bool Key(const char* s, rapidjson::SizeType n, bool c) {
    Frame& f = frames_.back();
    f.key = KeyKind::Other;
    if (frames_.size() == 1 && n == 5 && std::memcmp(s, "entry", 5) == 0) f.key = KeyKind::Entry;
    if (frames_.size() == 3 && n == 8 && std::memcmp(s, "resource", 8) == 0) f.key = KeyKind::Resource;
    return doc_.Key(s, n, c);
  }
  bool StartObject() {
    if (!value() || !push(false)) return false;
    // Bundle{ entry: [ {resource: {  -> frames: Bundle, entry array, entry object, (this)
    if (frames_.size() == 4 && frames_[0].key == KeyKind::Entry && frames_[1].array &&
        frames_[2].key == KeyKind::Resource) {
      frames_.back().resourceOf = static_cast<int64_t>(frames_[1].count) - 1;
      start_ = ms_.Tell();  // the iterative parser reports StartObject before taking '{'
    }
    return doc_.StartObject();
  }
  bool EndObject(rapidjson::SizeType n) {
    const int64_t entry = frames_.back().resourceOf;
    if (entry >= 0) {
      if (ranges_.size() <= static_cast<size_t>(entry)) ranges_.resize(static_cast<size_t>(entry) + 1, {0, 0});
      ranges_[static_cast<size_t>(entry)] = {start_, ms_.Tell() + 1};  // '}' not taken yet either
    }
    frames_.pop_back();
    return doc_.EndObject(n);
  }
  bool StartArray() { return value() && push(true) && doc_.StartArray(); }
  bool EndArray(rapidjson::SizeType n) {
    frames_.pop_back();
    return doc_.EndArray(n);
  }

  bool tooDeep = false;

 private:
  enum class KeyKind : uint8_t { Other, Entry, Resource };
  struct Frame {
    uint32_t count = 0;  // values seen so far (arrays)
    bool array = false;
    KeyKind key = KeyKind::Other;  // the last key (objects)
    int64_t resourceOf = -1;       // this object is entry[resourceOf].resource
  };
  bool value() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().count;
    return true;
  }
  bool push(bool array) {
    if (static_cast<int>(frames_.size()) >= kMaxBundleDepth) {
      tooDeep = true;
      return false;
    }
    Frame f;
    f.array = array;
    frames_.push_back(f);
    return true;
  }

  rapidjson::Document& doc_;
  const rapidjson::MemoryStream& ms_;
  std::vector<std::pair<size_t, size_t>>& ranges_;
  std::vector<Frame> frames_;
  size_t start_ = 0;
};

struct ParsedBundle {
  rapidjson::Document doc;
  std::vector<std::pair<size_t, size_t>> resourceRanges;  // by entry index; {0,0} when absent
};

ParsedBundle parseBundle(std::string_view body) {
  ParsedBundle out;
  if (body.empty()) throw FhirError(400, IssueType::Structure, "The request body is empty; a Bundle is required");
  rapidjson::MemoryStream ms(body.data(), body.size());
  BundleReader handler(out.doc, ms, out.resourceRanges);
  rapidjson::Reader reader;
  struct Generate {
    rapidjson::Reader& reader;
    rapidjson::MemoryStream& ms;
    BundleReader& handler;
    bool operator()(rapidjson::Document&) {
      return !reader.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(ms, handler).IsError();
    }
  } gen{reader, ms, handler};
  out.doc.Populate(gen);
  if (reader.HasParseError()) {
    if (handler.tooDeep) {
      throw FhirError(400, IssueType::TooCostly,
                      "The Bundle nests deeper than " + std::to_string(kMaxBundleDepth) + " levels");
    }
    throw FhirError(400, IssueType::Structure,
                    "Malformed JSON at byte " + std::to_string(reader.GetErrorOffset()));
  }
  for (const auto& [b, e] : out.resourceRanges) {
    // Invariant of BundleReader; a violation would hand a wrong resource to a write.
    if (e != 0 && (e > body.size() || b >= e || body[b] != '{' || body[e - 1] != '}')) {
      throw FhirError(500, IssueType::Exception, "Internal error while reading the Bundle");
    }
  }
  return out;
}

// Copies a resource through SAX (numbers verbatim), replacing every "reference" string found in
// `refs`. A urn:uuid: / urn:oid: reference not in `refs` is reported through `unresolved`.
class RewriteHandler {
 public:
  explicit RewriteHandler(const RefMap& refs) : w_(buf_), refs_(refs) {}
  bool Null() { return plain() && w_.Null(); }
  bool Bool(bool b) { return plain() && w_.Bool(b); }
  bool Int(int i) { return plain() && w_.Int(i); }
  bool Uint(unsigned u) { return plain() && w_.Uint(u); }
  bool Int64(int64_t i) { return plain() && w_.Int64(i); }
  bool Uint64(uint64_t u) { return plain() && w_.Uint64(u); }
  bool Double(double d) { return plain() && w_.Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    return plain() && w_.RawValue(s, n, rapidjson::kNumberType);
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    if (isRef_) {
      isRef_ = false;
      const std::string v(s, n);
      auto it = refs_.find(v);
      if (it != refs_.end()) {
        return w_.String(it->second.data(), static_cast<rapidjson::SizeType>(it->second.size()));
      }
      if (startsWith(v, "urn:uuid:") || startsWith(v, "urn:oid:")) {
        unresolved = v;
        return false;
      }
    }
    return w_.String(s, n);
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    isRef_ = n == 9 && std::memcmp(s, "reference", 9) == 0;
    return w_.Key(s, n);
  }
  bool StartObject() { return plain() && w_.StartObject(); }
  bool EndObject(rapidjson::SizeType n) { return w_.EndObject(n); }
  bool StartArray() { return plain() && w_.StartArray(); }
  bool EndArray(rapidjson::SizeType n) { return w_.EndArray(n); }

  std::string result() const { return std::string(buf_.GetString(), buf_.GetSize()); }
  std::string unresolved;

 private:
  bool plain() {
    isRef_ = false;
    return true;
  }
  rapidjson::StringBuffer buf_;
  rapidjson::Writer<rapidjson::StringBuffer> w_;
  const RefMap& refs_;
  bool isRef_ = false;
};

// Every "reference" string anywhere in a resource (contained resources and extensions included).
void collectReferences(const rapidjson::Value& root, std::vector<std::string>& out) {
  std::vector<const rapidjson::Value*> stack{&root};
  while (!stack.empty()) {
    const rapidjson::Value* v = stack.back();
    stack.pop_back();
    if (v->IsObject()) {
      for (auto m = v->MemberBegin(); m != v->MemberEnd(); ++m) {
        if (m->value.IsString()) {
          if (sv(m->name) == "reference") out.emplace_back(sv(m->value));
        } else if (m->value.IsObject() || m->value.IsArray()) {
          stack.push_back(&m->value);
        }
      }
    } else if (v->IsArray()) {
      for (const auto& item : v->GetArray())
        if (item.IsObject() || item.IsArray()) stack.push_back(&item);
    }
  }
}

// ---- entries ----

enum class Method { Get, Head, Post, Put, Delete, Patch };

// entry.request.url, relative to the base.
struct Target {
  enum class Kind { Type, Instance, Conditional, VRead, HistoryInstance, HistoryType, HistorySystem, SearchSystem };
  Kind kind = Kind::Type;
  std::string type, id, query;
  bool hasQuery = false;
  int64_t vid = 0;
};

struct Entry {
  size_t index = 0;
  Method method = Method::Get;
  std::string methodName;
  Target target;
  std::string fullUrl;
  const rapidjson::Value* resource = nullptr;  // entry.resource (DOM), if any
  std::string_view resourceText;              // its exact bytes in the request
  bool hasBodyId = false;
  std::string bodyId;
  std::string patchJson;  // PATCH: the JSON Patch carried by a Binary
  std::optional<int64_t> ifMatch;
  std::string ifNoneExist;  // criteria only
  std::string ifNoneMatch, ifModifiedSince;
  std::vector<std::string> references;  // POST/PUT: every reference string of the resource
  std::optional<FhirError> prepareError;  // batch: the entry's own error, found while preparing
  std::string newId;  // creates: the id assigned up front
  // Transactions: the resource to write, parsed, validated and indexed before the unit
  // (prepareWrites); absent when that was not possible, and the unit then does it itself.
  std::optional<PreparedResource> prepared;
};

// The outcome of one entry, for the response Bundle.
struct Result {
  int status = 0;
  bool hasVersion = false;
  StoredVersion version;   // written / read version (location, etag, lastModified, resource)
  bool includeResource = false;
  std::string resource;    // GET results that are not a stored version (search, history)
  bool readAfter = false;  // a conditional create that matched: read the match after the commit
  std::string readType, readId;
  std::string outcome;     // OperationOutcome JSON
};

std::string methodName(Method m) {
  switch (m) {
    case Method::Get: return "GET";
    case Method::Head: return "HEAD";
    case Method::Post: return "POST";
    case Method::Put: return "PUT";
    case Method::Delete: return "DELETE";
    case Method::Patch: return "PATCH";
  }
  return "GET";
}

// An entry's error as the failure of its Bundle: the entry's index in diagnostics and expression
// (never the URL: criteria and ids may carry patient data).
FhirError atEntry(const Entry& e, const FhirError& err) {
  const std::string where = "Bundle.entry[" + std::to_string(e.index) + "]";
  std::vector<Issue> issues = err.issues();
  for (Issue& is : issues) {
    is.diagnostics = where + " (" + e.methodName + (e.target.type.empty() ? "" : " " + e.target.type) + "): " + is.diagnostics;
    if (is.expression.empty()) {
      is.expression = where;
    } else if (!e.target.type.empty() && startsWith(is.expression, e.target.type + ".")) {
      is.expression = where + ".resource" + is.expression.substr(e.target.type.size());
    } else if (is.expression == e.target.type || is.expression == "resourceType" || is.expression == "id") {
      is.expression = where + ".resource" + (is.expression == e.target.type ? "" : "." + is.expression);
    } else {
      is.expression = where + "." + is.expression;
    }
  }
  FhirError out(err.status(), std::move(issues));
  if (!err.internalDetail().empty()) out.withInternalDetail(err.internalDetail());
  return out;
}

template <class Fn>
void guarded(const Entry& e, Fn&& fn) {
  try {
    fn();
  } catch (const FhirError& err) {
    throw atEntry(e, err);
  }
}

}  // namespace

// ---- single conditional interactions and PATCH ----

InteractionProcessor::InteractionProcessor(ResourceService& service, SearchEngine& search)
    : service_(service), search_(search) {}

WriteOutcome InteractionProcessor::conditionalCreate(std::string_view type, std::string_view body,
                                                     std::string_view criteria) {
  service_.checkType(type);
  const std::string crit = criteriaOnly(criteria);
  requireCriteria(crit, "If-None-Exist");
  const std::string lock = lockKeyFor(type, crit);
  // A match that disappears between the unit and the read of it (a concurrent delete) sends us round
  // again: the criteria then decide anew.
  for (int attempt = 0; attempt < 4; ++attempt) {
    WriteOutcome out;
    std::string existing;
    service_.runAtomic([&](WriteContext& ctx) {
      existing.clear();
      ctx.tx().lockKey(lock);
      const auto ids = search_.matchIds(type, crit, &ctx.tx(), 2);
      if (ids.size() > 1) throw multipleMatches("Conditional create", type, ids.size(), true);
      if (ids.size() == 1) {
        existing = ids[0];
        return;
      }
      out = ctx.create(type, body);
    });
    if (existing.empty()) return out;
    try {
      auto v = service_.read(type, existing);
      return WriteOutcome{*v, false};
    } catch (const FhirError& e) {
      if (e.status() != 404 && e.status() != 410) throw;
    }
  }
  throw FhirError(409, IssueType::Conflict, "The matching resource kept changing; nothing was written. Retry.");
}

WriteOutcome InteractionProcessor::conditionalUpdate(std::string_view type, std::string_view criteria,
                                                     std::string_view body, std::optional<int64_t> ifMatch) {
  service_.checkType(type);
  const std::string crit = criteriaOnly(criteria);
  requireCriteria(crit, "A conditional update");
  // The body's id decides between "update the match" and "create with this id"; its other checks
  // (resourceType, validation) are the update's.
  if (body.empty()) throw FhirError(400, IssueType::Structure, "The request body is empty; a resource is required");
  const rapidjson::Document doc = parseJson(body);
  if (!doc.IsObject()) throw FhirError(400, IssueType::Structure, "The body must be a JSON object (a FHIR resource)");
  const rapidjson::Value* idv = member(doc, "id");
  const bool hasId = idv && idv->IsString();
  const std::string bodyId = hasId ? std::string(sv(*idv)) : std::string();
  const std::string lock = lockKeyFor(type, crit);
  WriteOutcome out;
  service_.runAtomic([&](WriteContext& ctx) {
    ctx.tx().lockKey(lock);
    const auto ids = search_.matchIds(type, crit, &ctx.tx(), 2);
    if (ids.size() > 1) throw multipleMatches("Conditional update", type, ids.size(), true);
    if (ids.size() == 1) {
      if (hasId && bodyId != ids[0]) {
        throw FhirError(400, IssueType::Invalid,
                        "The resource id does not match the id of the resource the criteria found", "id");
      }
      out = hasId ? ctx.update(type, ids[0], body, ifMatch)
                  : ctx.update(type, ids[0], withInjectedId(body, ids[0], doc.MemberCount() == 0), ifMatch);
      return;
    }
    if (ifMatch) throw FhirError(412, IssueType::Conflict, "Precondition failed: no resource matches the criteria");
    if (!hasId) {
      out = ctx.create(type, body);
      return;
    }
    // No match but a client id: create with that id, unless a live resource with that id exists
    // (it does not match the criteria, so overwriting it would not be this request's intent).
    ResourceService::checkId(bodyId);
    const auto cur = ctx.tx().current(type, bodyId);
    if (cur && !cur->deleted) {
      throw FhirError(409, IssueType::Conflict,
                      std::string(type) + "/" + bodyId + " exists but does not match the criteria", "id");
    }
    out = ctx.update(type, bodyId, body, std::nullopt);
  });
  return out;
}

WriteOutcome InteractionProcessor::conditionalDelete(std::string_view type, std::string_view criteria,
                                                     bool allowMultiple, int* deletedCount) {
  service_.checkType(type);
  const std::string crit = criteriaOnly(criteria);
  requireCriteria(crit, "A conditional delete");
  const std::string lock = lockKeyFor(type, crit);
  WriteOutcome last;
  int count = 0;
  service_.runAtomic([&](WriteContext& ctx) {
    count = 0;
    last = WriteOutcome{};
    last.version.type = std::string(type);
    ctx.tx().lockKey(lock);
    const int limit = allowMultiple ? kMaxConditionalDeletes + 1 : 2;
    const auto ids = search_.matchIds(type, crit, &ctx.tx(), limit);
    if (ids.size() > 1 && !allowMultiple) throw multipleMatches("Conditional delete", type, ids.size(), true);
    if (static_cast<int>(ids.size()) > kMaxConditionalDeletes) {
      throw FhirError(412, IssueType::TooCostly,
                      "Conditional delete: the criteria match more than " + std::to_string(kMaxConditionalDeletes) +
                          " resources; narrow them");
    }
    for (const std::string& id : ids) {
      last = ctx.remove(type, id, std::nullopt);
      ++count;
    }
  });
  if (deletedCount) *deletedCount = count;
  return last;
}

WriteOutcome InteractionProcessor::patch(std::string_view type, std::string_view id, std::string_view jsonPatch,
                                         std::optional<int64_t> ifMatch) {
  service_.checkType(type);
  ResourceService::checkId(id);
  ContentCache cache;
  fetchContent(service_, cache, type, id);  // usually the version the unit will find
  WriteOutcome out;
  runWithContent(service_, cache,
                 [&](WriteContext& ctx) { out = patchInUnit(ctx, cache, type, id, jsonPatch, ifMatch); });
  return out;
}

WriteOutcome InteractionProcessor::conditionalPatch(std::string_view type, std::string_view criteria,
                                                    std::string_view jsonPatch, std::optional<int64_t> ifMatch) {
  service_.checkType(type);
  const std::string crit = criteriaOnly(criteria);
  requireCriteria(crit, "A conditional patch");
  const std::string lock = lockKeyFor(type, crit);
  ContentCache cache;
  WriteOutcome out;
  runWithContent(service_, cache, [&](WriteContext& ctx) {
    ctx.tx().lockKey(lock);
    const auto ids = search_.matchIds(type, crit, &ctx.tx(), 2);
    if (ids.empty()) throw FhirError(404, IssueType::NotFound, "Conditional patch: no " + std::string(type) + " matches the criteria");
    if (ids.size() > 1) throw multipleMatches("Conditional patch", type, ids.size(), true);
    out = patchInUnit(ctx, cache, type, ids[0], jsonPatch, ifMatch);
  });
  return out;
}

// ---- Bundles ----

namespace {

// The state of one processBundle call.
class BundleRun {
 public:
  BundleRun(ResourceService& service, SearchEngine& search, const std::string& baseUrl, ReturnPreference pref)
      : service_(service), search_(search), base_(baseUrl), pref_(pref) {}
  // Extra writes inside a transaction's unit (processTransactionWith); transactions only.
  void setInUnit(std::function<void(StoreTransaction&)> fn) { inUnit_ = std::move(fn); }

  std::string run(std::string_view body) {
    ParsedBundle parsed = parseBundle(body);
    const rapidjson::Document& doc = parsed.doc;
    if (!doc.IsObject()) throw FhirError(400, IssueType::Structure, "The body must be a Bundle resource (a JSON object)");
    const rapidjson::Value* rt = member(doc, "resourceType");
    if (!rt || !rt->IsString() || sv(*rt) != "Bundle") {
      throw FhirError(400, IssueType::Invalid, "POST to the base takes a Bundle of type batch or transaction", "resourceType");
    }
    const rapidjson::Value* type = member(doc, "type");
    if (!type || !type->IsString() || (sv(*type) != "batch" && sv(*type) != "transaction")) {
      throw FhirError(400, IssueType::Invalid, "Bundle.type must be batch or transaction to POST to the base",
                      "Bundle.type");
    }
    transaction_ = sv(*type) == "transaction";
    if (inUnit_ && !transaction_) {
      throw FhirError(400, IssueType::Invalid, "Bundle.type must be transaction here", "Bundle.type");
    }
    const rapidjson::Value* list = member(doc, "entry");
    if (list && !list->IsArray()) throw FhirError(400, IssueType::Structure, "Bundle.entry must be an array", "Bundle.entry");
    const size_t n = list ? list->Size() : 0;
    if (n > kMaxBundleEntries) {
      throw FhirError(400, IssueType::TooCostly,
                      "The Bundle has " + std::to_string(n) + " entries; a batch or transaction takes at most " +
                          std::to_string(kMaxBundleEntries) + ". Split it into several Bundles.",
                      "Bundle.entry");
    }
    entries_.resize(n);
    results_.assign(n, Result{});
    for (size_t i = 0; i < n; ++i) {
      Entry& e = entries_[i];
      e.index = i;
      readStructure(e, (*list)[static_cast<rapidjson::SizeType>(i)], body,
                    i < parsed.resourceRanges.size() ? parsed.resourceRanges[i] : std::pair<size_t, size_t>{0, 0});
    }
    if (transaction_) {
      for (Entry& e : entries_) guarded(e, [&] { prepare(e); });
      runTransaction();
    } else {
      for (Entry& e : entries_) {
        try {
          prepare(e);
        } catch (const FhirError& err) {
          e.prepareError = err;
        }
      }
      runBatch();
    }
    return responseBundle();
  }

 private:
  // Bundle-level structure of one entry: any problem here is a 400 for the whole Bundle.
  void readStructure(Entry& e, const rapidjson::Value& v, std::string_view body, std::pair<size_t, size_t> range) {
    const std::string where = "Bundle.entry[" + std::to_string(e.index) + "]";
    if (!v.IsObject()) throw FhirError(400, IssueType::Structure, where + " must be an object", where);
    const rapidjson::Value* req = member(v, "request");
    if (!req || !req->IsObject()) {
      throw FhirError(400, IssueType::Required, where + ".request is required in a batch or transaction", where + ".request");
    }
    const rapidjson::Value* method = member(*req, "method");
    const rapidjson::Value* url = member(*req, "url");
    if (!method || !method->IsString()) {
      throw FhirError(400, IssueType::Required, where + ".request.method is required", where + ".request.method");
    }
    if (!url || !url->IsString() || url->GetStringLength() == 0) {
      throw FhirError(400, IssueType::Required, where + ".request.url is required", where + ".request.url");
    }
    const std::string_view m = sv(*method);
    if (m == "GET") e.method = Method::Get;
    else if (m == "HEAD") e.method = Method::Head;
    else if (m == "POST") e.method = Method::Post;
    else if (m == "PUT") e.method = Method::Put;
    else if (m == "DELETE") e.method = Method::Delete;
    else if (m == "PATCH") e.method = Method::Patch;
    else {
      throw FhirError(400, IssueType::Value, where + ".request.method must be GET, HEAD, POST, PUT, DELETE or PATCH",
                      where + ".request.method");
    }
    e.methodName = methodName(e.method);
    urls_.emplace_back(sv(*url));
    if (const rapidjson::Value* f = member(v, "fullUrl")) {
      if (!f->IsString()) throw FhirError(400, IssueType::Structure, where + ".fullUrl must be a string", where + ".fullUrl");
      e.fullUrl.assign(sv(*f));
    }
    if (const rapidjson::Value* r = member(v, "resource")) {
      if (!r->IsObject()) throw FhirError(400, IssueType::Structure, where + ".resource must be a resource", where + ".resource");
      e.resource = r;
      if (range.second > range.first) e.resourceText = body.substr(range.first, range.second - range.first);
    }
    auto optString = [&](const char* name, std::string& out) {
      if (const rapidjson::Value* s = member(*req, name)) {
        if (!s->IsString()) {
          throw FhirError(400, IssueType::Structure, where + ".request." + name + " must be a string",
                          where + ".request." + name);
        }
        out.assign(sv(*s));
      }
    };
    std::string ifMatch;
    optString("ifMatch", ifMatch);
    optString("ifNoneExist", e.ifNoneExist);
    optString("ifNoneMatch", e.ifNoneMatch);
    optString("ifModifiedSince", e.ifModifiedSince);
    if (!ifMatch.empty()) e.ifMatch = parseEtag(ifMatch, "ifMatch");
    e.ifNoneExist = criteriaOnly(e.ifNoneExist);
  }

  // entry.request.url -> Target.
  Target parseUrl(std::string_view url) {
    Target t;
    if (startsWith(url, base_ + "/")) {
      url.remove_prefix(base_.size() + 1);
    } else if (url == base_) {
      url = {};
    } else if (url.find("://") != std::string_view::npos) {
      throw FhirError(400, IssueType::Invalid, "request.url must be relative to this server's base (e.g. Patient/123)",
                      "request.url");
    }
    while (!url.empty() && url.front() == '/') url.remove_prefix(1);
    const size_t q = url.find('?');
    if (q != std::string_view::npos) {
      t.hasQuery = true;
      t.query = std::string(url.substr(q + 1));
      url = url.substr(0, q);
    }
    std::vector<std::string_view> segs;
    while (!url.empty()) {
      const size_t slash = url.find('/');
      segs.push_back(url.substr(0, slash));
      url = slash == std::string_view::npos ? std::string_view{} : url.substr(slash + 1);
      if (segs.back().empty() || segs.size() > 4) {
        throw FhirError(400, IssueType::Invalid, "request.url is not a FHIR interaction URL", "request.url");
      }
    }
    if (segs.empty()) {
      t.kind = Target::Kind::SearchSystem;
      return t;
    }
    if (segs.size() == 1 && segs[0] == "_history") {
      t.kind = Target::Kind::HistorySystem;
      return t;
    }
    t.type = std::string(segs[0]);
    service_.checkType(t.type);
    if (segs.size() == 1) {
      t.kind = t.hasQuery ? Target::Kind::Conditional : Target::Kind::Type;
      return t;
    }
    if (segs.size() == 2 && segs[1] == "_history") {
      t.kind = Target::Kind::HistoryType;
      return t;
    }
    t.id = std::string(segs[1]);
    ResourceService::checkId(t.id);
    if (segs.size() == 2) {
      t.kind = Target::Kind::Instance;
      return t;
    }
    if (segs[2] != "_history") throw FhirError(400, IssueType::Invalid, "request.url is not a FHIR interaction URL", "request.url");
    if (segs.size() == 3) {
      t.kind = Target::Kind::HistoryInstance;
      return t;
    }
    const std::string_view vid = segs[3];
    if (vid.size() > 18 || vid.find_first_not_of("0123456789") != std::string_view::npos) {
      throw FhirError(400, IssueType::Invalid, "request.url names a malformed version id", "request.url");
    }
    t.kind = Target::Kind::VRead;
    t.vid = std::stoll(std::string(vid));
    return t;
  }

  // Entry-level checks and preparation (an error fails a transaction; it is the entry's response
  // in a batch).
  void prepare(Entry& e) {
    e.target = parseUrl(urls_[e.index]);
    const Target::Kind k = e.target.kind;
    auto needResource = [&] {
      if (!e.resource || e.resourceText.empty()) {
        throw FhirError(400, IssueType::Required, e.methodName + " entries need a resource", "resource");
      }
      const rapidjson::Value* rt = member(*e.resource, "resourceType");
      if (!rt || !rt->IsString()) throw FhirError(400, IssueType::Structure, "The resource lacks resourceType", "resourceType");
      return std::string(sv(*rt));
    };
    switch (e.method) {
      case Method::Post: {
        if (k != Target::Kind::Type) throw FhirError(400, IssueType::Invalid, "POST entries take request.url = [type]");
        if (needResource() != e.target.type) {
          throw FhirError(400, IssueType::Invalid, "The resource's type does not match request.url", "resourceType");
        }
        e.newId = newResourceId();
        break;
      }
      case Method::Put: {
        if (k != Target::Kind::Instance && k != Target::Kind::Conditional) {
          throw FhirError(400, IssueType::Invalid, "PUT entries take request.url = [type]/[id] or [type]?[criteria]");
        }
        if (needResource() != e.target.type) {
          throw FhirError(400, IssueType::Invalid, "The resource's type does not match request.url", "resourceType");
        }
        if (const rapidjson::Value* id = member(*e.resource, "id"); id && id->IsString()) {
          e.hasBodyId = true;
          e.bodyId.assign(sv(*id));
        }
        if (k == Target::Kind::Conditional) {
          requireCriteria(e.target.query, "A conditional PUT");
          e.newId = newResourceId();
        }
        break;
      }
      case Method::Delete:
        if (k != Target::Kind::Instance && k != Target::Kind::Conditional) {
          throw FhirError(400, IssueType::Invalid, "DELETE entries take request.url = [type]/[id] or [type]?[criteria]");
        }
        if (k == Target::Kind::Conditional) requireCriteria(e.target.query, "A conditional DELETE");
        break;
      case Method::Patch:
        if (k != Target::Kind::Instance && k != Target::Kind::Conditional) {
          throw FhirError(400, IssueType::Invalid, "PATCH entries take request.url = [type]/[id] or [type]?[criteria]");
        }
        if (k == Target::Kind::Conditional) requireCriteria(e.target.query, "A conditional PATCH");
        e.patchJson = patchDocument(e);
        break;
      case Method::Get:
      case Method::Head:
        if (k == Target::Kind::Conditional) {
          e.target.kind = Target::Kind::SearchSystem;  // [type]?[params]: a type search (type stays set)
        }
        break;
    }
    if ((e.method == Method::Post || e.method == Method::Put) && transaction_) collectReferences(*e.resource, e.references);
  }

  // PATCH entries carry the JSON Patch as a Binary (R4 http.html#transaction).
  static std::string patchDocument(const Entry& e) {
    if (!e.resource) throw FhirError(400, IssueType::Required, "PATCH entries need a Binary resource holding a JSON Patch", "resource");
    const rapidjson::Value* rt = member(*e.resource, "resourceType");
    if (rt && rt->IsString() && sv(*rt) == "Parameters") {
      throw FhirError(400, IssueType::NotSupported,
                      "FHIRPath Patch (Parameters) is not supported; send a Binary with a JSON Patch "
                      "(contentType application/json-patch+json)",
                      "resource");
    }
    if (!rt || !rt->IsString() || sv(*rt) != "Binary") {
      throw FhirError(400, IssueType::Invalid, "PATCH entries need a Binary resource holding a JSON Patch", "resourceType");
    }
    const rapidjson::Value* ct = member(*e.resource, "contentType");
    std::string mt = ct && ct->IsString() ? std::string(sv(*ct)) : std::string();
    mt = mt.substr(0, mt.find(';'));
    while (!mt.empty() && mt.back() == ' ') mt.pop_back();
    std::transform(mt.begin(), mt.end(), mt.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (mt != "application/json-patch+json") {
      throw FhirError(400, IssueType::NotSupported, "The Binary of a PATCH entry must have contentType application/json-patch+json",
                      "Binary.contentType");
    }
    const rapidjson::Value* data = member(*e.resource, "data");
    if (!data || !data->IsString()) throw FhirError(400, IssueType::Required, "The Binary of a PATCH entry lacks data", "Binary.data");
    auto decoded = base64Decode(sv(*data));
    if (!decoded) throw FhirError(400, IssueType::Value, "Binary.data is not valid base64", "Binary.data");
    return std::move(*decoded);
  }

  // ---- transaction ----

  void runTransaction() {
    // fullUrls must be unique: they are how entries refer to each other.
    std::unordered_map<std::string, size_t> seen;
    for (const Entry& e : entries_) {
      if (e.fullUrl.empty()) continue;
      auto [it, fresh] = seen.emplace(e.fullUrl, e.index);
      if (!fresh) {
        throw atEntry(e, FhirError(400, IssueType::Duplicate,
                                   "fullUrl is the same as that of Bundle.entry[" + std::to_string(it->second) + "]",
                                   "fullUrl"));
      }
    }
    // References known before the unit: creates get the ids assigned up front, PUT [type]/[id] its id.
    RefMap staticRefs;
    for (const Entry& e : entries_) {
      if (e.fullUrl.empty()) continue;
      if (e.method == Method::Post) staticRefs[e.fullUrl] = e.target.type + "/" + e.newId;
      if (e.method == Method::Put && e.target.kind == Target::Kind::Instance) staticRefs[e.fullUrl] = e.target.type + "/" + e.target.id;
    }
    // Every conditional write's lock key, sorted: taken in this order by every transaction.
    std::vector<std::string> locks;
    for (const Entry& e : entries_) {
      if (e.method == Method::Post && !e.ifNoneExist.empty()) locks.push_back(lockKeyFor(e.target.type, e.ifNoneExist));
      if ((e.method == Method::Put || e.method == Method::Delete || e.method == Method::Patch) &&
          e.target.kind == Target::Kind::Conditional) {
        locks.push_back(lockKeyFor(e.target.type, e.target.query));
      }
    }
    std::sort(locks.begin(), locks.end());
    locks.erase(std::unique(locks.begin(), locks.end()), locks.end());

    prepareWrites(staticRefs);
    size_t writes = 0;
    for (const Entry& e : entries_) writes += e.method != Method::Get && e.method != Method::Head;

    ContentCache cache;
    for (const Entry& e : entries_) {
      if (e.method == Method::Patch && e.target.kind == Target::Kind::Instance) fetchContent(service_, cache, e.target.type, e.target.id);
    }
    runWithContent(service_, cache, [&](WriteContext& ctx) {
      std::vector<Result> results(entries_.size());
      RefMap refs = staticRefs;
      for (const std::string& l : locks) ctx.tx().lockKey(l);
      transactionUnit(ctx, cache, refs, results);
      if (inUnit_) inUnit_(ctx.tx());
      results_ = std::move(results);
    }, writes >= kAloneUnitWrites);
    for (const Entry& e : entries_) {
      if (e.method == Method::Get || e.method == Method::Head) results_[e.index] = evaluateGet(e);
    }
    readMatchedCreates();
  }

  // Parses, validates and indexes, before the unit, every POST and PUT whose stored body is known
  // now: its references resolve through `staticRefs` alone (none names the fullUrl of a
  // conditional create or update, nor is a conditional reference, which only the unit resolves),
  // and a PUT keeps its body as sent (a conditional PUT without an id gets one injected in the
  // unit). The unit holds the store's writer lock (and, with group commit, runs on the single
  // writer thread), so this keeps the CPU work of the Bundle off it, and a retried unit does not
  // redo it. Purely an optimisation: an entry that fails here is left unprepared, and the unit
  // meets the same error at the same point of the R4 order as it would have without this step.
  void prepareWrites(const RefMap& staticRefs) {
    std::unordered_set<std::string> unitResolved;  // fullUrls whose target the unit decides
    for (const Entry& e : entries_) {
      if (e.fullUrl.empty()) continue;
      if ((e.method == Method::Post && !e.ifNoneExist.empty()) ||
          (e.method == Method::Put && e.target.kind == Target::Kind::Conditional)) {
        unitResolved.insert(e.fullUrl);
      }
    }
    for (Entry& e : entries_) {
      const bool bodyKept = e.method == Method::Post ||
                            (e.method == Method::Put && (e.target.kind == Target::Kind::Instance || e.hasBodyId));
      if (!bodyKept) continue;
      bool resolvable = true;
      for (const std::string& ref : e.references) {
        const size_t q = ref.find('?');
        if (unitResolved.count(ref) || (q != std::string::npos && q != 0 && ref.find('/') >= q)) {
          resolvable = false;
          break;
        }
      }
      if (!resolvable) continue;
      try {
        const std::string rewritten = rewrite(e, staticRefs);
        e.prepared = service_.prepare(e.target.type, rewritten.empty() ? e.resourceText : std::string_view(rewritten));
      } catch (const FhirError&) {
        // Left to the unit, which reports it in order.
      }
    }
  }

  // The writes of a transaction, in R4 order; re-runnable (all state is in the arguments).
  void transactionUnit(WriteContext& ctx, const ContentCache& cache, RefMap& refs, std::vector<Result>& results) {
    StoreTransaction& tx = ctx.tx();
    std::unordered_map<std::string, size_t> writers;  // Type/id -> entry writing it
    auto claim = [&](const Entry& e, const std::string& type, const std::string& id) {
      auto [it, fresh] = writers.emplace(key(type, id), e.index);
      if (!fresh) {
        throw FhirError(400, IssueType::Duplicate,
                        "This entry and Bundle.entry[" + std::to_string(it->second) +
                            "] write the same resource; a transaction may write each resource once");
      }
    };
    std::vector<std::string> ids(entries_.size());  // the resource each write entry targets
    std::vector<bool> skip(entries_.size(), false);  // nothing to write for this entry
    std::vector<bool> createViaPut(entries_.size(), false);
    RefMap conditionalAliases;  // canonical "Type?criteria" of conditional creates -> Type/id

    // 1. DELETE
    for (const Entry& e : entries_) {
      if (e.method != Method::Delete) continue;
      guarded(e, [&] {
        Result& r = results[e.index];
        std::string id = e.target.id;
        if (e.target.kind == Target::Kind::Conditional) {
          const auto found = search_.matchIds(e.target.type, e.target.query, &tx, 2);
          if (found.size() > 1) throw multipleMatches("Conditional delete", e.target.type, found.size(), true);
          if (found.empty()) {
            r.status = deleteStatus();
            deleteOutcome(r, "Nothing to delete: no " + e.target.type + " matches the criteria");
            return;
          }
          id = found[0];
        }
        claim(e, e.target.type, id);
        const WriteOutcome out = ctx.remove(e.target.type, id, e.ifMatch);
        r.status = deleteStatus();
        if (out.version.version > 0) {
          r.hasVersion = true;
          r.version = out.version;
        }
        deleteOutcome(r, out.version.version > 0 ? "Deleted " + e.target.type + "/" + id : "Nothing to delete");
      });
    }
    // 2. Resolve conditional creates (after the deletions, as R4 orders them), then conditional
    // updates and patches, so that every id is known before any resource is written.
    for (const Entry& e : entries_) {
      if (e.method != Method::Post) continue;
      ids[e.index] = e.newId;
      if (e.ifNoneExist.empty()) continue;
      guarded(e, [&] {
        const auto found = search_.matchIds(e.target.type, e.ifNoneExist, &tx, 2);
        if (found.size() > 1) throw multipleMatches("Conditional create", e.target.type, found.size(), true);
        if (found.size() == 1) {
          ids[e.index] = found[0];
          skip[e.index] = true;
        }
        const std::string ref = e.target.type + "/" + ids[e.index];
        if (!e.fullUrl.empty()) refs[e.fullUrl] = ref;
        conditionalAliases[e.target.type + "?" + canonicalCriteria(e.ifNoneExist)] = ref;
      });
    }
    for (const Entry& e : entries_) {
      if (e.method != Method::Put && e.method != Method::Patch) continue;
      guarded(e, [&] {
        if (e.target.kind == Target::Kind::Instance) {
          ids[e.index] = e.target.id;
          return;
        }
        const auto found = search_.matchIds(e.target.type, e.target.query, &tx, 2);
        const char* what = e.method == Method::Put ? "Conditional update" : "Conditional patch";
        if (found.size() > 1) throw multipleMatches(what, e.target.type, found.size(), true);
        if (e.method == Method::Patch) {
          if (found.empty()) throw FhirError(404, IssueType::NotFound, "Conditional patch: no " + e.target.type + " matches the criteria");
          ids[e.index] = found[0];
          return;
        }
        if (found.size() == 1) {
          if (e.hasBodyId && e.bodyId != found[0]) {
            throw FhirError(400, IssueType::Invalid, "The resource id does not match the id of the resource the criteria found", "id");
          }
          ids[e.index] = found[0];
        } else {
          if (e.ifMatch) throw FhirError(412, IssueType::Conflict, "Precondition failed: no resource matches the criteria");
          ids[e.index] = e.hasBodyId ? e.bodyId : e.newId;
          createViaPut[e.index] = true;
        }
        if (!e.fullUrl.empty()) refs[e.fullUrl] = e.target.type + "/" + ids[e.index];
      });
    }
    for (const Entry& e : entries_) {
      if (e.method == Method::Post || e.method == Method::Put || e.method == Method::Patch) {
        if (!skip[e.index]) guarded(e, [&] { claim(e, e.target.type, ids[e.index]); });
      }
    }
    // 3. Conditional references: a conditional create of this Bundle with the same criteria, else
    // exactly one current match.
    for (const Entry& e : entries_) {
      for (const std::string& ref : e.references) {
        if (refs.count(ref)) continue;
        const size_t q = ref.find('?');
        if (q == std::string::npos || q == 0 || ref.find('/') < q) continue;
        const std::string type = ref.substr(0, q);
        if (!service_.model().isResourceType(type)) continue;
        guarded(e, [&] {
          const std::string criteria = ref.substr(q + 1);
          auto alias = conditionalAliases.find(type + "?" + canonicalCriteria(criteria));
          if (alias != conditionalAliases.end()) {
            refs[ref] = alias->second;
            return;
          }
          const auto found = search_.matchIds(type, criteria, &tx, 2);
          if (found.size() != 1) {
            throw FhirError(412, found.empty() ? IssueType::NotFound : IssueType::MultipleMatches,
                            "The conditional reference to " + type + " matches " +
                                (found.empty() ? std::string("no resource") : std::string("more than one resource")) +
                                "; it must match exactly one");
          }
          refs[ref] = type + "/" + found[0];
        });
      }
    }
    // 4. POST
    for (const Entry& e : entries_) {
      if (e.method != Method::Post) continue;
      guarded(e, [&] {
        Result& r = results[e.index];
        if (skip[e.index]) {
          r.status = 200;
          r.readAfter = true;
          r.readType = e.target.type;
          r.readId = ids[e.index];
          return;
        }
        if (e.prepared) {
          setWritten(r, ctx.create(*e.prepared, ids[e.index]), 201);
          return;
        }
        const std::string rewritten = rewrite(e, refs);
        WriteOutcome out = ctx.create(e.target.type, rewritten.empty() ? e.resourceText : rewritten, ids[e.index]);
        setWritten(r, std::move(out), 201);
      });
    }
    // 5. PUT and PATCH
    for (const Entry& e : entries_) {
      if (e.method != Method::Put) continue;
      guarded(e, [&] {
        const PreparedResource* prep = e.prepared ? &*e.prepared : nullptr;
        std::string body = prep ? std::string() : rewrite(e, refs);
        std::string_view text = body.empty() ? e.resourceText : std::string_view(body);
        WriteOutcome out;
        if (createViaPut[e.index]) {
          if (e.hasBodyId) {
            const auto cur = tx.current(e.target.type, e.bodyId);
            if (cur && !cur->deleted) {
              throw FhirError(409, IssueType::Conflict, e.target.type + "/" + e.bodyId + " exists but does not match the criteria", "id");
            }
            out = prep ? ctx.update(*prep, e.bodyId, std::nullopt) : ctx.update(e.target.type, e.bodyId, text, std::nullopt);
          } else {
            out = prep ? ctx.create(*prep, ids[e.index]) : ctx.create(e.target.type, text, ids[e.index]);
          }
        } else if (e.target.kind == Target::Kind::Conditional && !e.hasBodyId) {
          out = ctx.update(e.target.type, ids[e.index],
                           withInjectedId(text, ids[e.index], e.resource->MemberCount() == 0), e.ifMatch);
        } else {
          out = prep ? ctx.update(*prep, ids[e.index], e.ifMatch) : ctx.update(e.target.type, ids[e.index], text, e.ifMatch);
        }
        const int status = out.created ? 201 : 200;
        setWritten(results[e.index], std::move(out), status);
      });
    }
    for (const Entry& e : entries_) {
      if (e.method != Method::Patch) continue;
      guarded(e, [&] {
        WriteOutcome out = patchInUnit(ctx, cache, e.target.type, ids[e.index], e.patchJson, e.ifMatch);
        setWritten(results[e.index], std::move(out), 200);
      });
    }
    // 6. Conditional updates and patches were resolved before this Bundle's creates; if one of them
    // would have matched a resource created here (R4 processes POST first), two entries would
    // write the same resource: refuse rather than answer differently from the R4 order.
    std::unordered_set<std::string> createdHere, typesCreated;
    for (const Entry& e : entries_) {
      if (e.method == Method::Post && !skip[e.index]) {
        createdHere.insert(key(e.target.type, ids[e.index]));
        typesCreated.insert(e.target.type);
      }
    }
    for (const Entry& e : entries_) {
      if ((e.method != Method::Put && e.method != Method::Patch) || e.target.kind != Target::Kind::Conditional) continue;
      if (!typesCreated.count(e.target.type)) continue;
      guarded(e, [&] {
        for (const std::string& id : search_.matchIds(e.target.type, e.target.query, &tx, 3)) {
          if (id != ids[e.index] && createdHere.count(key(e.target.type, id))) {
            throw FhirError(400, IssueType::Duplicate,
                            "The criteria also match a resource this transaction creates; a transaction may write "
                            "each resource once");
          }
        }
      });
    }
  }

  // The entry's resource with references rewritten; empty when nothing needs rewriting (the
  // request's bytes are used as they are).
  std::string rewrite(const Entry& e, const RefMap& refs) const {
    bool needed = false;
    for (const std::string& r : e.references) {
      if (refs.count(r) || startsWith(r, "urn:uuid:") || startsWith(r, "urn:oid:")) {
        needed = true;
        break;
      }
    }
    if (!needed) return {};
    RewriteHandler h(refs);
    rapidjson::Reader reader;
    rapidjson::MemoryStream ms(e.resourceText.data(), e.resourceText.size());
    if (!reader.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseNumbersAsStringsFlag>(ms, h)) {
      if (!h.unresolved.empty()) {
        throw FhirError(400, IssueType::NotFound,
                        "The reference " + h.unresolved.substr(0, 80) + " matches no fullUrl of this transaction",
                        e.target.type);
      }
      throw FhirError(400, IssueType::Structure, "The resource could not be read");
    }
    return h.result();
  }

  // Deletions answer 204 without a body, or 200 with an OperationOutcome when the client prefers one.
  int deleteStatus() const { return pref_ == ReturnPreference::OperationOutcome ? 200 : 204; }
  void deleteOutcome(Result& r, const std::string& text) const {
    if (pref_ == ReturnPreference::OperationOutcome) r.outcome = info(text);
  }

  static std::string info(const std::string& text) {
    return operationOutcomeJson(Severity::Information, IssueType::Informational, text);
  }

  void setWritten(Result& r, WriteOutcome out, int status) const {
    r.status = status;
    r.hasVersion = true;
    r.version = std::move(out.version);
    r.includeResource = pref_ == ReturnPreference::Representation;
    if (!r.includeResource) r.version.json.clear();  // not sent: do not keep 10,000 of them
    if (pref_ == ReturnPreference::OperationOutcome) {
      r.outcome = info(std::string(status == 201 ? "Created " : "Updated ") + r.version.type + "/" + r.version.id +
                       " (version " + std::to_string(r.version.version) + ")");
    }
  }

  // Conditional creates that matched answer with the match's current version.
  void readMatchedCreates() {
    for (Result& r : results_) {
      if (!r.readAfter) continue;
      try {
        auto v = service_.read(r.readType, r.readId);
        r.hasVersion = true;
        r.version = *v;
        r.includeResource = pref_ == ReturnPreference::Representation;
      } catch (const FhirError&) {
        // Deleted since the commit: the entry still says 200 with the location; no body to send.
        r.hasVersion = true;
        r.version.type = r.readType;
        r.version.id = r.readId;
      }
    }
  }

  // ---- batch ----

  void runBatch() {
    for (Entry& e : entries_) {
      Result& r = results_[e.index];
      try {
        if (e.prepareError) throw *e.prepareError;
        r = executeBatchEntry(e);
      } catch (const FhirError& err) {
        r = Result{};
        r.status = err.status();
        r.outcome = operationOutcomeJson(err.issues());
      }
    }
  }

  Result executeBatchEntry(const Entry& e) {
    Result r;
    InteractionProcessor proc(service_, search_);
    const Target& t = e.target;
    const bool conditional = t.kind == Target::Kind::Conditional;
    switch (e.method) {
      case Method::Post: {
        if (!e.ifNoneExist.empty()) {
          const WriteOutcome out = proc.conditionalCreate(t.type, e.resourceText, e.ifNoneExist);
          setWritten(r, out, out.created ? 201 : 200);
        } else {
          setWritten(r, service_.create(t.type, e.resourceText), 201);
        }
        return r;
      }
      case Method::Put: {
        const WriteOutcome out = conditional ? proc.conditionalUpdate(t.type, t.query, e.resourceText, e.ifMatch)
                                             : service_.update(t.type, t.id, e.resourceText, e.ifMatch);
        setWritten(r, out, out.created ? 201 : 200);
        return r;
      }
      case Method::Delete: {
        int deleted = 0;
        const WriteOutcome out = conditional ? proc.conditionalDelete(t.type, t.query, false, &deleted)
                                             : service_.remove(t.type, t.id, e.ifMatch);
        r.status = deleteStatus();
        if (out.version.version > 0) {
          r.hasVersion = true;
          r.version = out.version;
        }
        deleteOutcome(r, out.version.version > 0 ? "Deleted " + t.type + "/" + out.version.id : "Nothing to delete");
        return r;
      }
      case Method::Patch: {
        const WriteOutcome out = conditional ? proc.conditionalPatch(t.type, t.query, e.patchJson, e.ifMatch)
                                             : proc.patch(t.type, t.id, e.patchJson, e.ifMatch);
        setWritten(r, out, 200);
        return r;
      }
      case Method::Get:
      case Method::Head: return evaluateGet(e);
    }
    return r;
  }

  // ---- reads (batch, and transactions after the commit) ----

  Result evaluateGet(const Entry& e) {
    try {
      return evaluateGetOrThrow(e);
    } catch (const FhirError& err) {
      Result r;
      r.status = err.status();
      r.outcome = operationOutcomeJson(err.issues());
      return r;
    }
  }

  Result evaluateGetOrThrow(const Entry& e) {
    Result r;
    r.status = 200;
    const Target& t = e.target;
    switch (t.kind) {
      case Target::Kind::Instance: {
        auto v = service_.read(t.type, t.id);
        r.hasVersion = true;
        r.version = *v;
        if (notModified(e, *v)) {
          r.status = 304;
          return r;
        }
        const SearchParams params = parseSearchQuery(t.query);
        std::string summary, elements;
        for (const auto& [k, val] : params) {
          if (k == "_summary") summary = val;
          if (k == "_elements") elements = val;
        }
        if (!summary.empty() || !elements.empty()) {
          r.resource = search_.applySummary(t.type, v->json, summary, elements);
        } else {
          r.includeResource = true;
        }
        return r;
      }
      case Target::Kind::VRead: {
        r.hasVersion = true;
        r.version = service_.vread(t.type, t.id, t.vid);
        r.includeResource = true;
        return r;
      }
      case Target::Kind::HistoryInstance:
      case Target::Kind::HistoryType:
      case Target::Kind::HistorySystem: {
        HistoryQuery q;
        q.type = t.type;
        q.id = t.id;
        for (const auto& [k, val] : parseSearchQuery(t.query)) {
          if (k == "_count") {
            if (val.empty() || val.size() > 9 || val.find_first_not_of("0123456789") != std::string::npos) {
              throw FhirError(400, IssueType::Invalid, "_count must be a non-negative integer", "_count");
            }
            q.count = std::max(1, std::min(std::stoi(val), 1000));
          } else if (k == "_since") {
            q.since = val;
          }
        }
        HistoryPage page = service_.history(q);
        BundleBuilder b("history");
        if (page.total >= 0) b.setTotal(page.total);
        for (const StoredVersion& v : page.entries) b.addHistoryEntry(v, base_);
        r.resource = b.finish();
        return r;
      }
      case Target::Kind::SearchSystem:
      case Target::Kind::Type:
      case Target::Kind::Conditional: {
        SearchRequest s;
        s.type = t.type;
        s.params = parseSearchQuery(t.query);
        s.baseUrl = base_;
        s.linkPath = t.type;
        r.resource = search_.search(s);
        return r;
      }
    }
    return r;
  }

  // ifNoneMatch / ifModifiedSince of a read entry.
  static bool notModified(const Entry& e, const StoredVersion& v) {
    if (!e.ifNoneMatch.empty()) {
      if (e.ifNoneMatch == "*") return true;
      try {
        return parseEtag(e.ifNoneMatch, "ifNoneMatch") == v.version;
      } catch (const FhirError&) {
        return false;
      }
    }
    if (!e.ifModifiedSince.empty()) {
      int64_t since = 0, at = 0;
      if (parseInstant(e.ifModifiedSince, since) && parseInstant(v.lastUpdated, at)) return at <= since;
    }
    return false;
  }

  // ---- response ----

  std::string responseBundle() const {
    std::string out;
    size_t reserve = 256;
    for (const Result& r : results_) reserve += 256 + (r.includeResource ? r.version.json.size() : r.resource.size());
    out.reserve(reserve);
    out += "{\"resourceType\":\"Bundle\",\"id\":\"";
    out += newResourceId();
    out += "\",\"meta\":{\"lastUpdated\":\"";
    out += nowInstant().text;
    out += "\"},\"type\":\"";
    out += transaction_ ? "transaction-response" : "batch-response";
    out += '"';
    if (!results_.empty()) {
      out += ",\"entry\":[";
      for (size_t i = 0; i < results_.size(); ++i) {
        if (i) out += ',';
        appendEntry(out, results_[i]);
      }
      out += ']';
    }
    out += '}';
    return out;
  }

  void appendEntry(std::string& out, const Result& r) const {
    out += '{';
    const bool withVersionBody = r.includeResource && r.hasVersion && !r.version.deleted && !r.version.json.empty();
    if (withVersionBody || (r.hasVersion && r.status < 300 && !r.version.deleted)) {
      out += "\"fullUrl\":\"";
      appendJsonEscaped(out, base_ + "/" + r.version.type + "/" + r.version.id);
      out += "\",";
    }
    if (withVersionBody) {
      out += "\"resource\":";
      out += r.version.json;
      out += ',';
    } else if (!r.resource.empty()) {
      out += "\"resource\":";
      out += r.resource;
      out += ',';
    }
    out += "\"response\":{\"status\":\"";
    out += statusText(r.status);
    out += '"';
    if (r.hasVersion && r.version.version > 0) {
      if (!r.version.deleted) {
        out += ",\"location\":\"";
        appendJsonEscaped(out, r.version.type + "/" + r.version.id + "/_history/" + std::to_string(r.version.version));
        out += '"';
      }
      out += ",\"etag\":\"W/\\\"";
      out += std::to_string(r.version.version);
      out += "\\\"\"";
      if (!r.version.lastUpdated.empty()) {
        out += ",\"lastModified\":\"";
        appendJsonEscaped(out, r.version.lastUpdated);
        out += '"';
      }
    }
    if (!r.outcome.empty()) {
      out += ",\"outcome\":";
      out += r.outcome;
    }
    out += "}}";
  }

  ResourceService& service_;
  SearchEngine& search_;
  const std::string& base_;
  ReturnPreference pref_;
  std::function<void(StoreTransaction&)> inUnit_;
  bool transaction_ = false;
  std::vector<Entry> entries_;
  std::vector<std::string> urls_;  // entry.request.url, by entry index
  std::vector<Result> results_;
};

}  // namespace

std::string InteractionProcessor::processBundle(std::string_view bundleJson, const std::string& baseUrl,
                                                ReturnPreference pref) {
  BundleRun run(service_, search_, baseUrl, pref);
  return run.run(bundleJson);
}

std::string InteractionProcessor::processTransactionWith(std::string_view bundleJson, const std::string& baseUrl,
                                                         ReturnPreference pref,
                                                         const std::function<void(StoreTransaction&)>& inUnit) {
  BundleRun run(service_, search_, baseUrl, pref);
  run.setInUnit(inUnit);
  return run.run(bundleJson);
}

}  // namespace hearth::fhir
