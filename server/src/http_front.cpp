#include "http_front.h"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/SHA2Engine.h>
#include <Poco/URI.h>

#include <chrono>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string_view>
#include <vector>

#include "hearth/fhir/bundle.h"
#include "hearth/fhir/json.h"
#include "hearth/fhir/xml.h"

namespace hearth::server {

using fhir::FhirError;
using fhir::IssueType;
using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

namespace {

constexpr const char* kFhirJson = "application/fhir+json;charset=utf-8";
constexpr const char* kFhirXml = "application/fhir+xml;charset=utf-8";

struct Response {
  int status = 200;
  std::string contentType = kFhirJson;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool closeConnection = false;
  void header(std::string name, std::string value) { headers.emplace_back(std::move(name), std::move(value)); }
};

struct Query {
  std::vector<std::pair<std::string, std::string>> params;
  const std::string* get(std::string_view name) const {
    for (const auto& [k, v] : params)
      if (k == name) return &v;
    return nullptr;
  }
};

Query parseQuery(std::string_view q) {
  Query out;
  while (!q.empty()) {
    const size_t amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    std::string key, value;
    try {
      Poco::URI::decode(std::string(part.substr(0, eq)), key, true);
      if (eq != std::string_view::npos) Poco::URI::decode(std::string(part.substr(eq + 1)), value, true);
    } catch (const Poco::Exception&) {
      throw FhirError(400, IssueType::Invalid, "Malformed percent-encoding in the query string");
    }
    out.params.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

std::vector<std::string_view> splitPath(std::string_view path) {
  std::vector<std::string_view> segs;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    if (i >= path.size()) break;
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    segs.push_back(path.substr(i, j - i));
    i = j;
  }
  return segs;
}

std::string trimLower(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  std::string out(s.substr(b, e - b));
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool isJsonMediaType(const std::string& mt) {
  return mt == "application/fhir+json" || mt == "application/json" || mt == "application/json+fhir";
}
bool isXmlMediaType(const std::string& mt) {
  return mt == "application/fhir+xml" || mt == "application/xml" || mt == "text/xml" ||
         mt == "application/xml+fhir";
}

// The response representation: true for XML, false for JSON; 406 if neither can be served.
// _format overrides Accept.
bool negotiate(const HTTPServerRequest& req, const Query& q) {
  if (const std::string* fmt = q.get("_format")) {
    const std::string f = trimLower(*fmt);
    const std::string base = f.substr(0, f.find(';'));
    if (base == "json" || isJsonMediaType(base)) return false;
    if (base == "xml" || isXmlMediaType(base)) return true;
    throw FhirError(406, IssueType::NotSupported,
                    "Unsupported _format: this server serves application/fhir+json and application/fhir+xml");
  }
  const std::string accept = req.get("Accept", "");
  if (accept.empty()) return false;
  // Highest q wins; among equal q the earlier range wins (RFC 9110 12.5.1).
  double bestQ = 0.0;
  int best = -1;  // 0: JSON, 1: XML
  std::string_view a(accept);
  while (!a.empty()) {
    const size_t comma = a.find(',');
    std::string_view item = a.substr(0, comma);
    a = comma == std::string_view::npos ? std::string_view{} : a.substr(comma + 1);
    const size_t semi = item.find(';');
    const std::string mt = trimLower(item.substr(0, semi));
    double qv = 1.0;
    if (semi != std::string_view::npos) {
      std::string params = trimLower(item.substr(semi + 1));
      params.erase(std::remove(params.begin(), params.end(), ' '), params.end());
      const size_t qp = params.find("q=");
      if (qp != std::string::npos && (qp == 0 || params[qp - 1] == ';')) qv = std::strtod(params.c_str() + qp + 2, nullptr);
    }
    if (qv <= 0.0) continue;
    int kind = -1;
    if (mt == "*/*" || mt == "application/*" || isJsonMediaType(mt)) kind = 0;
    else if (isXmlMediaType(mt) || mt == "text/*") kind = 1;
    if (kind >= 0 && qv > bestQ) {
      bestQ = qv;
      best = kind;
    }
  }
  if (best >= 0) return best == 1;
  throw FhirError(406, IssueType::NotSupported,
                  "None of the media types in Accept can be served; this server serves application/fhir+json "
                  "and application/fhir+xml");
}

// The request body's format from Content-Type: true for XML, false for JSON; 415 otherwise.
bool requireFhirBody(const HTTPServerRequest& req) {
  const std::string ct = req.get("Content-Type", "");
  const size_t semi = ct.find(';');
  const std::string mt = trimLower(std::string_view(ct).substr(0, semi));
  const bool xml = isXmlMediaType(mt);
  if (!xml && !isJsonMediaType(mt)) {
    throw FhirError(415, IssueType::NotSupported,
                    ct.empty() ? "Missing Content-Type: send application/fhir+json or application/fhir+xml"
                               : "Unsupported Content-Type: send application/fhir+json or application/fhir+xml");
  }
  if (semi != std::string::npos) {
    const std::string params = trimLower(std::string_view(ct).substr(semi + 1));
    const size_t cs = params.find("charset=");
    if (cs != std::string::npos) {
      std::string charset = params.substr(cs + 8);
      charset = charset.substr(0, charset.find(';'));
      if (!charset.empty() && charset.front() == '"') charset = charset.substr(1, charset.size() - 2);
      if (charset != "utf-8" && charset != "utf8") {
        throw FhirError(415, IssueType::NotSupported, "Unsupported charset: Hearth accepts UTF-8");
      }
    }
  }
  return xml;
}

// True if the request announces a body (Content-Length > 0 or chunked). A request with neither
// has no body (RFC 9112 6.3); Poco would otherwise read until the client closes.
bool hasBody(const HTTPServerRequest& req) {
  return req.getChunkedTransferEncoding() || (req.hasContentLength() && req.getContentLength64() > 0);
}

std::string readBody(HTTPServerRequest& req, size_t limit, Response& r) {
  std::string body;
  if (!hasBody(req)) return body;
  if (req.hasContentLength()) {
    const auto len = req.getContentLength64();
    if (len < 0 || static_cast<uint64_t>(len) > limit) {
      r.closeConnection = true;  // the unread body would otherwise be taken for the next request
      throw FhirError(413, IssueType::TooLong, "The request body exceeds the limit of " + std::to_string(limit) + " bytes");
    }
    body.resize(static_cast<size_t>(len));
    std::istream& in = req.stream();
    in.read(body.data(), len);
    if (in.gcount() != len) {
      r.closeConnection = true;
      throw FhirError(400, IssueType::Incomplete, "The request body is shorter than its Content-Length");
    }
    return body;
  }
  std::istream& in = req.stream();
  char buf[16384];
  while (in) {
    in.read(buf, sizeof buf);
    body.append(buf, static_cast<size_t>(in.gcount()));
    if (body.size() > limit) {
      r.closeConnection = true;
      throw FhirError(413, IssueType::TooLong, "The request body exceeds the limit of " + std::to_string(limit) + " bytes");
    }
  }
  return body;
}

// Reads and discards a body the handler did not consume (an early error answer), so the next
// request on this keep-alive connection starts at the right byte. Bodies over the limit, or a
// failing stream, close the connection instead.
void drainBody(HTTPServerRequest& req, size_t limit, Response& r) {
  if (!hasBody(req)) return;
  if (req.hasContentLength() && static_cast<uint64_t>(req.getContentLength64()) > limit) {
    r.closeConnection = true;
    return;
  }
  try {
    std::istream& in = req.stream();
    char buf[16384];
    size_t total = 0;
    while (in) {
      in.read(buf, sizeof buf);
      total += static_cast<size_t>(in.gcount());
      if (total > limit) {
        r.closeConnection = true;
        return;
      }
    }
  } catch (const std::exception&) {
    r.closeConnection = true;
  }
}

// W/"3", "3" or 3 -> 3. Throws 400 on anything else.
int64_t parseETagVersion(const std::string& value) {
  std::string_view v(value);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.size() >= 2 && (v.substr(0, 2) == "W/" || v.substr(0, 2) == "w/")) v.remove_prefix(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  int64_t n = 0;
  if (v.empty() || v.size() > 18) throw FhirError(400, IssueType::Invalid, "Malformed If-Match: expected W/\"<versionId>\"");
  for (char c : v) {
    if (c < '0' || c > '9') throw FhirError(400, IssueType::Invalid, "Malformed If-Match: expected W/\"<versionId>\"");
    n = n * 10 + (c - '0');
  }
  return n;
}

std::optional<int64_t> ifMatch(const HTTPServerRequest& req) {
  if (!req.has("If-Match")) return std::nullopt;
  return parseETagVersion(req.get("If-Match"));
}

enum class ReturnPref { Representation, Minimal, OperationOutcome };
ReturnPref returnPreference(const HTTPServerRequest& req) {
  const std::string prefer = req.get("Prefer", "");
  if (prefer.empty()) return ReturnPref::Representation;
  const std::string p = trimLower(prefer);
  if (p.find("return=minimal") != std::string::npos) return ReturnPref::Minimal;
  if (p.find("return=operationoutcome") != std::string::npos) return ReturnPref::OperationOutcome;
  return ReturnPref::Representation;
}

bool sane(std::string_view s, size_t maxLen) {
  if (s.empty() || s.size() > maxLen) return false;
  for (char c : s) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

std::string newRequestId() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  static const char* const kHex = "0123456789abcdef";
  uint64_t v = gen();
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i) {
    s[static_cast<size_t>(i)] = kHex[v & 15];
    v >>= 4;
  }
  return s;
}

std::string etag(int64_t version) { return "W/\"" + std::to_string(version) + "\""; }

class HearthRequestHandler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit HearthRequestHandler(ServerContext& ctx) : ctx_(ctx) {}

  void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    ctx_.inFlight.fetch_add(1, std::memory_order_relaxed);
    const auto t0 = std::chrono::steady_clock::now();
    const std::string clientId = req.get("X-Request-Id", "");
    requestId_ = sane(clientId, 128) ? clientId : newRequestId();
    Response r;
    const std::string& uri = req.getURI();
    const size_t qpos = uri.find('?');
    std::string path;
    try {
      Poco::URI::decode(uri.substr(0, qpos), path);
    } catch (const Poco::Exception&) {
      path = uri.substr(0, qpos);
    }
    try {
      if (!req.has("Host") && req.getVersion() == Poco::Net::HTTPMessage::HTTP_1_1) {
        throw FhirError(400, IssueType::Invalid, "HTTP/1.1 requests must carry a Host header");
      }
      query_ = qpos == std::string::npos ? Query{} : parseQuery(std::string_view(uri).substr(qpos + 1));
      dispatch(req, path, r);
    } catch (const FhirError& e) {
      if (!e.internalDetail().empty()) logEvent("error", e.internalDetail(), requestId_);
      const bool close = r.closeConnection;
      r = Response{};
      r.closeConnection = close;
      r.status = e.status();
      r.body = fhir::operationOutcomeJson(e.issues());
      if (e.status() == 405) r.header("Allow", allow_);
      if (e.status() == 401) r.header("WWW-Authenticate", "Bearer realm=\"hearth\"");
    } catch (const std::exception& e) {
      // Internals go to the log with the request id, never to the client.
      logEvent("error", std::string("unhandled error: ") + e.what(), requestId_);
      const bool close = r.closeConnection;
      r = Response{};
      r.closeConnection = close;
      r.status = 500;
      r.body = fhir::operationOutcomeJson(fhir::Severity::Error, IssueType::Exception,
                                          "Internal server error; quote request id " + requestId_);
    }
    if (!bodyRead_) drainBody(req, ctx_.config.http.bodyLimitBytes, r);
    if (!r.body.empty() && r.contentType == kFhirJson) {
      if (xml_) {
        try {
          r.body = fhir::jsonToXml(r.body, pretty_);
          r.contentType = kFhirXml;
        } catch (const std::exception&) {
          // Stored JSON that XML cannot carry (e.g. U+FFFF): say so in JSON rather than fail silently.
          r.status = 406;
          r.body = fhir::operationOutcomeJson(fhir::Severity::Error, IssueType::NotSupported,
                                              "This resource cannot be represented as XML; request JSON");
        }
      } else if (pretty_) {
        r.body = fhir::prettyJson(r.body);
      }
    }
    send(resp, r);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ctx_.metrics.record(route_, Metrics::methodIndex(req.getMethod()), r.status, secs);
    if (ctx_.accessLog) accessLog(req, path, r, secs);
    ctx_.inFlight.fetch_sub(1, std::memory_order_relaxed);
  }

 private:
  void send(HTTPServerResponse& resp, const Response& r) {
    resp.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(r.status));
    resp.set("X-Request-Id", requestId_);
    for (const auto& [k, v] : r.headers) resp.set(k, v);
    if (r.closeConnection) resp.setKeepAlive(false);
    if (r.body.empty()) {
      resp.setContentLength(0);
      resp.send();
    } else {
      resp.setContentType(r.contentType);
      resp.sendBuffer(r.body.data(), r.body.size());
    }
  }

  void accessLog(const HTTPServerRequest& req, const std::string& path, const Response& r, double secs) {
    std::string line;
    line.reserve(256);
    line += "{\"ts\":\"";
    line += fhir::nowInstant().text;
    line += "\",\"level\":\"info\",\"msg\":\"access\",\"requestId\":\"";
    fhir::appendJsonEscaped(line, requestId_);
    line += "\",\"method\":\"";
    fhir::appendJsonEscaped(line, req.getMethod().substr(0, 16));
    line += "\",\"path\":\"";
    fhir::appendJsonEscaped(line, path.substr(0, 256));
    line += "\",\"route\":\"";
    line += routeName(route_);
    line += "\",\"status\":";
    line += std::to_string(r.status);
    char dur[32];
    std::snprintf(dur, sizeof dur, "%.3f", secs * 1000.0);
    line += ",\"durationMs\":";
    line += dur;
    line += ",\"bytes\":";
    line += std::to_string(r.body.size());
    line += '}';
    ctx_.accessLog->write(std::move(line));
  }

  std::string base(const HTTPServerRequest& req) const {
    if (!ctx_.config.fhir.baseUrl.empty()) return ctx_.config.fhir.baseUrl;
    std::string host = req.get("Host", "");
    bool ok = !host.empty() && host.size() < 256;
    for (char c : host) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']')) ok = false;
    }
    if (!ok) host = ctx_.config.http.host + ":" + std::to_string(ctx_.boundPort.load());
    return (ctx_.tls.load() ? "https://" : "http://") + host + "/fhir";
  }

  void methodNotAllowed(const HTTPServerRequest& req, std::string allow) {
    allow_ = std::move(allow);
    throw FhirError(405, IssueType::NotSupported, "Method " + req.getMethod().substr(0, 16) + " is not allowed here; allowed: " + allow_);
  }

  // 401 / 403 under the interim bearer-token scheme; /fhir/metadata stays public.
  void authorize(const HTTPServerRequest& req, bool write) {
    const AuthConfig& a = ctx_.config.auth;
    if (!a.enabled) return;
    const std::string h = req.get("Authorization", "");
    if (h.size() <= 7 || Poco::icompare(h.substr(0, 7), "bearer ") != 0) {
      throw FhirError(401, IssueType::Login, "Authentication required: send Authorization: Bearer <token>");
    }
    Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
    sha.update(h.substr(7));
    const std::string digest = Poco::DigestEngine::digestToHex(sha.digest());
    const TokenGrant* grant = nullptr;
    for (const TokenGrant& g : a.tokens) {
      // Compare every byte regardless of mismatches (constant time per candidate).
      unsigned diff = 0;
      for (size_t i = 0; i < 64; ++i) diff |= static_cast<unsigned>(g.sha256Hex[i] ^ digest[i]);
      if (diff == 0) grant = &g;
    }
    if (!grant) throw FhirError(401, IssueType::Login, "The bearer token is not valid");
    if (write && !grant->write) throw FhirError(403, IssueType::Forbidden, "This token may read but not write");
  }

  void dispatch(HTTPServerRequest& req, const std::string& path, Response& r) {
    // HEAD is GET without a body (Poco's sendBuffer omits it for HEAD requests).
    const std::string method = req.getMethod() == "HEAD" ? std::string("GET") : req.getMethod();
    const auto segs = splitPath(path);
    if (const std::string* p = query_.get("_pretty")) pretty_ = (*p == "true");
    if (segs.size() == 1 && segs[0] == "health") {
      route_ = Route::Health;
      if (method != "GET") methodNotAllowed(req, "GET, HEAD");
      return health(r);
    }
    if (segs.size() == 1 && segs[0] == "metrics") {
      route_ = Route::Metrics;
      if (method != "GET") methodNotAllowed(req, "GET, HEAD");
      r.contentType = "text/plain; version=0.0.4; charset=utf-8";
      r.body = ctx_.metrics.render(ctx_.service.store().poolStats(), ctx_.service.store().backendName());
      return;
    }
    if (segs.empty() || segs[0] != "fhir") {
      throw FhirError(404, IssueType::NotFound, "No such endpoint; the FHIR base is /fhir");
    }
    const bool write = method == "POST" || method == "PUT" || method == "DELETE" || method == "PATCH";
    const size_t n = segs.size() - 1;
    if (n == 1 && segs[1] == "metadata") {
      route_ = Route::Metadata;
      if (method != "GET") methodNotAllowed(req, "GET, HEAD");
      xml_ = negotiate(req, query_);
      r.body = fhir::capabilityStatementJson(ctx_.softwareVersion, base(req));
      return;
    }
    authorize(req, write);
    if (n == 0) throw FhirError(404, IssueType::NotSupported, "Batch/transaction and system search are not supported yet");
    if (n == 1 && segs[1] == "_history") {
      route_ = Route::HistorySystem;
      if (method != "GET") methodNotAllowed(req, "GET, HEAD");
      xml_ = negotiate(req, query_);
      return history(req, "", "", r);
    }
    const std::string type(segs[1]);
    ctx_.service.checkType(type);  // 404 for unknown types
    if (n == 1) {
      route_ = Route::Create;
      if (method != "POST") methodNotAllowed(req, "POST");
      xml_ = negotiate(req, query_);
      const bool xmlBody = requireFhirBody(req);
      bodyRead_ = true;
      std::string body = readBody(req, ctx_.config.http.bodyLimitBytes, r);
      if (xmlBody) body = fhir::xmlToJson(body);
      auto out = ctx_.service.create(type, body);
      return writeResponse(req, out, 201, r);
    }
    if (n == 2 && segs[2] == "_history") {
      route_ = Route::HistoryType;
      if (method != "GET") methodNotAllowed(req, "GET, HEAD");
      xml_ = negotiate(req, query_);
      return history(req, type, "", r);
    }
    const std::string id(segs[2]);
    if (n == 2) {
      if (method == "GET") {
        route_ = Route::Read;
        xml_ = negotiate(req, query_);
        auto v = ctx_.service.read(type, id);
        r.header("ETag", etag(v->version));
        r.header("Last-Modified", fhir::httpDateFromInstant(v->lastUpdated));
        r.body = v->json;
        return;
      }
      if (method == "PUT") {
        route_ = Route::Update;
        xml_ = negotiate(req, query_);
        const bool xmlBody = requireFhirBody(req);
        const auto expected = ifMatch(req);
        bodyRead_ = true;
        std::string body = readBody(req, ctx_.config.http.bodyLimitBytes, r);
        if (xmlBody) body = fhir::xmlToJson(body);
        auto out = ctx_.service.update(type, id, body, expected);
        return writeResponse(req, out, out.created ? 201 : 200, r);
      }
      if (method == "DELETE") {
        route_ = Route::Delete;
        xml_ = negotiate(req, query_);
        auto out = ctx_.service.remove(type, id, ifMatch(req));
        if (out.version.version == 0) {
          r.body = fhir::operationOutcomeJson(fhir::Severity::Information, IssueType::Informational,
                                              "Nothing to delete: " + type + "/" + id + " does not exist");
          return;
        }
        r.header("ETag", etag(out.version.version));
        r.body = fhir::operationOutcomeJson(
            fhir::Severity::Information, IssueType::Informational,
            "Deleted " + type + "/" + id + " (version " + std::to_string(out.version.version) + ")");
        return;
      }
      route_ = Route::Read;
      methodNotAllowed(req, "GET, HEAD, PUT, DELETE");
    }
    if (n == 3 && segs[3] == "_history") {
      route_ = Route::HistoryInstance;
      if (method != "GET") methodNotAllowed(req, "GET, HEAD");
      xml_ = negotiate(req, query_);
      fhir::ResourceService::checkId(id);
      return history(req, type, id, r);
    }
    if (n == 4 && segs[3] == "_history") {
      route_ = Route::VRead;
      if (method != "GET") methodNotAllowed(req, "GET, HEAD");
      xml_ = negotiate(req, query_);
      const std::string vid(segs[4]);
      int64_t version = 0;
      if (vid.empty() || vid.size() > 18 || vid.find_first_not_of("0123456789") != std::string::npos) {
        throw FhirError(404, IssueType::NotFound, "Unknown version id");
      }
      version = std::stoll(vid);
      auto v = ctx_.service.vread(type, id, version);
      r.header("ETag", etag(v.version));
      r.header("Last-Modified", fhir::httpDateFromInstant(v.lastUpdated));
      r.body = std::move(v.json);
      return;
    }
    throw FhirError(404, IssueType::NotFound, "No such FHIR endpoint");
  }

  void writeResponse(const HTTPServerRequest& req, const fhir::WriteOutcome& out, int status, Response& r) {
    const fhir::StoredVersion& v = out.version;
    r.status = status;
    const std::string b = base(req);
    r.header("Location", b + "/" + v.type + "/" + v.id + "/_history/" + std::to_string(v.version));
    r.header("ETag", etag(v.version));
    r.header("Last-Modified", fhir::httpDateFromInstant(v.lastUpdated));
    switch (returnPreference(req)) {
      case ReturnPref::Minimal: r.body.clear(); break;
      case ReturnPref::OperationOutcome:
        r.body = fhir::operationOutcomeJson(
            fhir::Severity::Information, IssueType::Informational,
            std::string(out.created ? "Created " : "Updated ") + v.type + "/" + v.id + " (version " + std::to_string(v.version) + ")");
        break;
      case ReturnPref::Representation: r.body = v.json; break;
    }
  }

  void history(const HTTPServerRequest& req, const std::string& type, const std::string& id, Response& r) {
    fhir::HistoryQuery q;
    q.type = type;
    q.id = id;
    q.count = ctx_.config.fhir.pageSizeDefault;
    if (const std::string* c = query_.get("_count")) {
      if (c->empty() || c->size() > 9 || c->find_first_not_of("0123456789") != std::string::npos) {
        throw FhirError(400, IssueType::Invalid, "_count must be a non-negative integer", "_count");
      }
      q.count = std::max(1, std::min(std::stoi(*c), ctx_.config.fhir.pageSizeMax));
    }
    if (const std::string* s = query_.get("_since")) {
      int64_t micros = 0;
      if (!fhir::parseInstant(*s, micros)) {
        throw FhirError(400, IssueType::Invalid, "_since must be a FHIR instant, e.g. 2026-01-01T00:00:00Z", "_since");
      }
      q.since = *s;
    }
    if (const std::string* cur = query_.get("_cursor")) {
      if (cur->empty() || cur->size() > 18 || cur->find_first_not_of("0123456789") != std::string::npos) {
        throw FhirError(400, IssueType::Invalid, "Malformed paging cursor", "_cursor");
      }
      q.beforeSeq = std::stoll(*cur);
    }
    fhir::HistoryPage page = ctx_.service.history(q);
    const std::string b = base(req);
    std::string selfPath = b;
    if (!type.empty()) selfPath += "/" + type;
    if (!id.empty()) selfPath += "/" + id;
    selfPath += "/_history";
    std::string common = "?_count=" + std::to_string(q.count);
    if (q.since) common += "&_since=" + encode(*q.since);
    if (const std::string* f = query_.get("_format")) common += "&_format=" + encode(*f);
    if (pretty_) common += "&_pretty=true";
    fhir::BundleBuilder bundle("history");
    if (page.total >= 0) bundle.setTotal(page.total);
    bundle.addLink("self", selfPath + common + (q.beforeSeq ? "&_cursor=" + std::to_string(*q.beforeSeq) : ""));
    if (page.nextBeforeSeq) bundle.addLink("next", selfPath + common + "&_cursor=" + std::to_string(*page.nextBeforeSeq));
    for (const auto& v : page.entries) bundle.addHistoryEntry(v, b);
    r.body = bundle.finish();
  }

  static std::string encode(const std::string& s) {
    std::string out;
    Poco::URI::encode(s, "&=+?#/ ", out);
    return out;
  }

  void health(Response& r) {
    const bool ok = ctx_.service.store().healthy();
    r.contentType = "application/json";
    r.status = ok ? 200 : 503;
    r.body = std::string("{\"status\":\"") + (ok ? "ok" : "unavailable") + "\",\"store\":\"" +
             ctx_.service.store().backendName() + "\"}";
  }

  ServerContext& ctx_;
  Route route_ = Route::Unknown;
  std::string requestId_;
  std::string allow_;
  Query query_;
  bool pretty_ = false;
  bool bodyRead_ = false;  // the handler consumed (or tried to consume) the request body
  bool xml_ = false;       // the response is XML (negotiated by _format / Accept)
};

}  // namespace

Poco::Net::HTTPRequestHandler* HearthRequestHandlerFactory::createRequestHandler(const HTTPServerRequest&) {
  return new HearthRequestHandler(ctx_);
}

}  // namespace hearth::server
