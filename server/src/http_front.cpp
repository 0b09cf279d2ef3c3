#include "http_front.h"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/DateTime.h>
#include <Poco/DateTimeFormat.h>
#include <Poco/DateTimeParser.h>
#include <Poco/SHA2Engine.h>
#include <Poco/String.h>
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
#include "hearth/workflows/billing.h"
#include "hearth/workflows/pharmacy.h"
#include "hearth/workflows/prescribing.h"
#include "hearth/workflows/registration.h"
#include "hearth/workflows/scheduling.h"
#include "hearth/workflows/stats.h"
#include "hearth/workflows/subscriptions.h"
#include "access_control.h"
#include "audit.h"
#include "auth_runtime.h"
#include "auth_server.h"
#include "token_cache.h"
#include "hl7_outbox.h"
#include "hl7_bridge.h"

namespace hearth::server {

using fhir::FhirError;
using fhir::IssueType;
namespace auth = hearth::auth;
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
    // application/x-www-form-urlencoded: '+' is a space (a literal plus arrives as %2B). Poco's
    // plusAsSpace only applies after a '?' in the string it decodes, so replace it here.
    std::string raw(part);
    std::replace(raw.begin(), raw.end(), '+', ' ');
    try {
      Poco::URI::decode(raw.substr(0, eq), key);
      if (eq != std::string_view::npos) Poco::URI::decode(raw.substr(eq + 1), value);
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

// Whether a request may return AuditEvents (so the audit log must be materialized first, audit.h):
// anything naming AuditEvent (type, _revinclude, _has, _type ...), system-level searches, history,
// operations and Bundles, and Patient compartment searches and $everything (AuditEvent is in the
// Patient compartment). A false positive costs one indexed SELECT on the empty log.
bool mayReadAuditEvents(const std::vector<std::string_view>& segs, const std::string& uri) {
  if (uri.find("AuditEvent") != std::string::npos) return true;
  if (segs.empty() || segs[0] != "fhir") return false;
  if (segs.size() == 1) return true;
  if (segs[1].front() == '_' || segs[1].front() == '$') return true;
  return segs.size() >= 4 && segs[1] == "Patient";
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
    // Counted until this handler returns, however it returns: a send to a client that went away
    // throws, and a count left behind would hold a graceful shutdown for its whole grace period.
    struct InFlight {
      std::atomic<int>& n;
      explicit InFlight(std::atomic<int>& counter) : n(counter) { n.fetch_add(1, std::memory_order_relaxed); }
      ~InFlight() { n.fetch_sub(1, std::memory_order_relaxed); }
    } inFlight(ctx_.inFlight);
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
      if (path == "/fhir/websocket" && ctx_.subscriptions && req.getMethod() == "GET" &&
          Poco::icompare(req.get("Upgrade", ""), "websocket") == 0) {
        // R4 Subscription websocket channel (hearth/workflows/subscriptions.h): this thread serves
        // the connection until it closes; the handshake answer (101) is sent by the hub.
        route_ = Route::Operation;
        // Subscriptions are created by administrators only (access_control.h); binding to their
        // notifications takes the same (any static operations token may listen).
        establish(req);
        if (who().kind == auth::AccessContext::Kind::User || who().kind == auth::AccessContext::Kind::Backend) {
          requireAdmin();
        }
        ctx_.subscriptions->serveWebSocket(req, resp);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        r.status = 101;
        ctx_.metrics.record(route_, Metrics::methodIndex(req.getMethod()), r.status, secs);
        if (ctx_.accessLog) accessLog(req, path, r, secs);
        return;
      }
      dispatch(req, path, r);
    } catch (const FhirError& e) {
      if (!e.internalDetail().empty()) logEvent("error", e.internalDetail(), requestId_);
      if (e.status() == 401 || e.status() == 403) {
        std::string why;
        for (const auto& issue : e.issues()) why += issue.diagnostics;
        auditRequest(req, path, e.status(), std::string(), why);
      }
      const bool close = r.closeConnection;
      r = Response{};
      r.closeConnection = close;
      r.status = e.status();
      r.body = fhir::operationOutcomeJson(e.issues());
      if (e.status() == 405) r.header("Allow", allow_);
      if (e.status() == 401) r.header("WWW-Authenticate", challenge_.empty() ? "Bearer realm=\"hearth\"" : challenge_);
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
    if (r.status < 400) auditRequest(req, path, r.status, r.body, std::string());
    send(resp, r);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ctx_.metrics.record(route_, Metrics::methodIndex(req.getMethod()), r.status, secs);
    if (ctx_.accessLog) accessLog(req, path, r, secs);
  }

 private:
  void send(HTTPServerResponse& resp, const Response& r) {
    resp.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(r.status));
    resp.set("X-Request-Id", requestId_);
    // HTTPS only (a browser ignores it over plain HTTP, and sending it there would be a lie):
    // clients that spoke TLS to this host keep to TLS for a year.
    if (ctx_.tls.load()) resp.set("Strict-Transport-Security", "max-age=31536000");
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

  // Who is asking (AccessContext, auth_runtime.h), once per request; /fhir/metadata, /health and
  // /metrics stay public. Auth off: Open. A static token of auth.tokens: Service (read or write).
  // A SMART access token: User or Backend. No token or a bad one: 401 with WWW-Authenticate.
  void establish(const HTTPServerRequest& req) {
    established_ = true;
    identity_.reset();
    ownWho_ = auth::AccessContext{};
    who_ = &ownWho_;
    if (!ctx_.auth || !ctx_.auth->enabled()) return;
    try {
      const std::string header = req.get("Authorization", "");
      // A JWT verified before (for this FHIR base) skips the signature check; see token_cache.h.
      std::string key;
      if (ctx_.verifiedTokens && header.size() > 7 && Poco::icompare(header.substr(0, 7), "bearer ") == 0) {
        key = base(req);
        key += '\n';
        key.append(header, 7);
        if (auto hit = ctx_.verifiedTokens->find(key, ctx_.auth->cache())) {
          identity_ = std::move(hit);
          who_ = &identity_->ctx;
          return;
        }
      }
      auth::AccessContext fresh = ctx_.auth->authenticate(header, base(req));
      if (!key.empty()) {
        identity_ = ctx_.verifiedTokens->remember(key, std::move(fresh));
        who_ = &identity_->ctx;
      } else {
        ownWho_ = std::move(fresh);
      }
    } catch (const AuthError& e) {
      challenge_ = e.challenge();
      throw FhirError(e.status(), IssueType::Login, e.what());
    } catch (const auth::CacheUnavailable&) {
      throw FhirError(503, IssueType::Transient, "The token service is temporarily unavailable; retry shortly");
    }
  }

  bool restricted() const { return ctx_.access && !who().unrestricted(); }

  // One interaction on one type; 403 (forbidden) with the policy's reason when denied.
  Grant need(std::string_view type, auth::Interaction interaction, const fhir::SearchParams& params = {}) {
    if (!ctx_.access) {
      Grant g;
      g.unrestricted = true;
      return g;
    }
    return ctx_.access->require(who(), type, interaction, params, identity_.get());
  }
  // The same for workflow operations, which act on data a compartment cannot delimit: refused to
  // patient-confined and filtered grants.
  Grant needOp(std::string_view type, auth::Interaction interaction) {
    Grant g = need(type, interaction);
    if (g.restricted()) {
      throw FhirError(403, IssueType::Forbidden,
                      "Access denied: this operation is not available to patient-context or filtered tokens");
    }
    return g;
  }
  // /admin/* and $reindex: the admin role, or a write Service token (Open when auth is off).
  void requireAdmin() {
    using Kind = auth::AccessContext::Kind;
    if (who().kind == Kind::Open) return;
    if (who().kind == Kind::Service) {
      if (!who().serviceWrite) throw FhirError(403, IssueType::Forbidden, "This token may read but not write");
      return;
    }
    const bool admin = std::find(who().roles.begin(), who().roles.end(), "admin") != who().roles.end();
    const auto scopeContext = who().scopes.context();
    if (!admin || (scopeContext && *scopeContext == auth::ScopeContext::Patient)) {
      throw FhirError(403, IssueType::Forbidden, "Access denied: administration needs the admin role");
    }
  }
  static void outside() {
    throw FhirError(403, IssueType::Forbidden, "Access denied: the resource lies outside what this token may see");
  }
  // A restricted grant on an existing resource: its current content must satisfy the grant.
  // Returns false when the resource does not exist (or is deleted).
  bool checkExisting(const Grant& g, const std::string& type, const std::string& id) {
    std::shared_ptr<const fhir::StoredVersion> v;
    try {
      v = ctx_.service.read(type, id);
    } catch (const FhirError& e) {
      if (e.status() == 404 || e.status() == 410) return false;
      throw;
    }
    if (g.restricted() && !ctx_.access->satisfies(g, type, v->json)) outside();
    return true;
  }

  // Conditional interactions also search (s); their criteria would reveal resources outside a
  // compartment or filter (200 vs 201, 412), so restricted grants cannot use them.
  void needConditional(const std::string& type, const Grant& g, const fhir::SearchParams& criteria) {
    need(type, auth::kSearch, criteria);
    if (g.restricted()) {
      throw FhirError(403, IssueType::Forbidden,
                      "Access denied: conditional interactions are not available to patient-context or filtered tokens");
    }
  }

  // Every entry of a batch or transaction is checked before anything is processed; one denied
  // entry refuses the whole Bundle (403) with nothing written. Reads and searches inside it are
  // filtered afterwards like any other response (filterBundle on the batch-response).
  void checkBundle(const std::string& body) {
    rapidjson::Document doc = fhir::parseJson(body);
    if (!doc.IsObject() || !doc.HasMember("entry") || !doc["entry"].IsArray()) return;
    auto str = [](const rapidjson::Value& v, const char* name) -> std::string {
      if (!v.IsObject()) return {};
      auto it = v.FindMember(name);
      return it != v.MemberEnd() && it->value.IsString() ? it->value.GetString() : std::string();
    };
    for (const auto& e : doc["entry"].GetArray()) {
      if (!e.IsObject() || !e.HasMember("request")) continue;  // processBundle refuses such entries
      const auto& request = e["request"];
      const std::string method = str(request, "method");
      std::string url = str(request, "url");
      if (url.starts_with("http://") || url.starts_with("https://")) {
        const size_t f = url.find("/fhir/");
        url = f == std::string::npos ? std::string() : url.substr(f + 6);
      }
      const size_t qm = url.find('?');
      const std::string pathPart = url.substr(0, qm);
      const fhir::SearchParams criteria =
          qm == std::string::npos ? fhir::SearchParams{} : fhir::parseSearchQuery(url.substr(qm + 1));
      const auto segs = splitPath(pathPart);
      const std::string type = segs.empty() ? std::string() : std::string(segs[0]);
      const std::string id = segs.size() >= 2 ? std::string(segs[1]) : std::string();
      const bool instance = !id.empty() && id[0] != '_' && id[0] != '$';
      if (type.empty() || type[0] == '_' || type[0] == '$') {  // system-level search / history / op
        Grant g = need("*", auth::kSearch);
        if (g.confined()) outside();
        continue;
      }
      if (e.HasMember("resource") && e["resource"].IsObject() && str(e["resource"], "resourceType") == "AuditEvent" &&
          method != "GET") {
        need("AuditEvent", auth::kCreate);  // immutable: refused
      }
      if (method == "GET" || method == "HEAD") {
        if (!instance) {
          if (!id.empty() && id[0] == '$') needOp(type, auth::kSearch);
          Grant g = need(type, auth::kSearch, criteria);
          if (g.confined() && !AccessControl::confinable(type)) outside();
        } else if (segs.size() >= 3 && (segs[2] == "$everything" || ctx_.service.model().isResourceType(segs[2]))) {
          Grant g = need(segs[2] == "$everything" ? type : std::string(segs[2]), auth::kSearch, criteria);
          if (g.confined() && (type != "Patient" || id != *g.patient)) outside();
        } else if (segs.size() >= 3 && segs[2][0] == '$') {
          needOp(type, auth::kRead);
        } else {
          need(type, auth::kRead);
        }
        continue;
      }
      if (method == "POST") {
        if (id == "_search") {
          need(type, auth::kSearch, criteria);
          continue;
        }
        if (!id.empty()) {  // an operation
          needOp(type, auth::kCreate);
          continue;
        }
        Grant g = need(type, auth::kCreate);
        const std::string ifNoneExist = str(request, "ifNoneExist");
        if (!ifNoneExist.empty()) needConditional(type, g, fhir::parseSearchQuery(stripQueryMark(ifNoneExist)));
        if (g.restricted() && (!e.HasMember("resource") || !ctx_.access->satisfies(g, type, e["resource"]))) outside();
        continue;
      }
      if (method == "PUT" || method == "DELETE" || method == "PATCH") {
        Grant g = need(type, method == "DELETE" ? auth::kDelete : auth::kUpdate);
        if (!instance || qm != std::string::npos) {
          needConditional(type, g, criteria);
          continue;
        }
        if (method == "PATCH" && g.restricted()) {
          throw FhirError(403, IssueType::Forbidden,
                          "Access denied: patient-context and filtered tokens change resources with PUT, not PATCH");
        }
        if (method == "PUT" && g.restricted() &&
            (!e.HasMember("resource") || !ctx_.access->satisfies(g, type, e["resource"]))) {
          outside();
        }
        if (!checkExisting(g, type, id) && method == "PUT") need(type, auth::kCreate);
        continue;
      }
      // Unknown methods: processBundle answers them.
    }
  }

  // Audit (audit.h): successes of the FHIR interactions and every 401/403.
  void auditRequest(const HTTPServerRequest& req, const std::string& path, int status, const std::string& body,
                    const std::string& denial) {
    // The authorization server (Route::Auth) reports its own events through AuthRuntime's sink.
    if (!ctx_.audit || route_ == Route::Auth || route_ == Route::Health || route_ == Route::Metrics) return;
    const bool denied = status == 401 || status == 403;
    AuditRecord a;
    const std::string& m = req.getMethod();
    switch (route_) {
      case Route::Read: a.subtype = "read"; break;
      case Route::VRead: a.subtype = "vread"; break;
      case Route::HistoryInstance: a.subtype = "history-instance"; break;
      case Route::HistoryType: a.subtype = "history-type"; break;
      case Route::HistorySystem: a.subtype = "history-system"; break;
      case Route::Search: case Route::Compartment: a.subtype = "search-type"; a.action = 'E'; break;
      case Route::SearchSystem: a.subtype = "search-system"; a.action = 'E'; break;
      case Route::Bundle: a.subtype = "batch"; a.action = 'E'; break;
      case Route::Create: a.subtype = "create"; a.action = 'C'; break;
      case Route::Update: a.subtype = "update"; a.action = 'U'; break;
      case Route::Patch: a.subtype = "patch"; a.action = 'U'; break;
      case Route::Delete: a.subtype = "delete"; a.action = 'D'; break;
      case Route::ConditionalWrite:
        a.subtype = m == "POST" ? "create" : m == "PUT" ? "update" : m == "PATCH" ? "patch" : "delete";
        a.action = m == "POST" ? 'C' : m == "DELETE" ? 'D' : 'U';
        break;
      case Route::Everything: case Route::Reindex: case Route::Operation: a.subtype = "operation"; a.action = 'E'; break;
      default:
        if (!denied) return;
        a.subtype = "operation";
        a.action = 'E';
        break;
    }
    if (denied) {
      a.outcome = 4;
      a.outcomeDesc = denial;
    }
    AuditTrail::setAgent(a, who());
    try {
      a.address = req.clientAddress().host().toString();
    } catch (const std::exception&) {
    }
    a.requestId = requestId_;
    // The resource named by the path: /fhir/Type/id[/...]
    const auto segs = splitPath(path);
    if (segs.size() >= 3 && segs[0] == "fhir" && !segs[2].empty() && segs[2][0] != '$' && segs[2][0] != '_' &&
        ctx_.service.model().isResourceType(segs[1]) && fhir::ResourceService::isValidId(segs[2])) {
      a.resources.push_back(std::string(segs[1]) + "/" + std::string(segs[2]));
      if (segs[1] == "Patient") a.patients.push_back(std::string(segs[2]));
    }
    if (a.action == 'E' && route_ != Route::Bundle) {
      const std::string& uri = req.getURI();
      const size_t q = uri.find('?');
      if (q != std::string::npos) a.query = uri.substr(q + 1);
    }
    if (!denied && a.action != 'D') a.body = body;
    ctx_.audit->record(std::move(a));
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
      if (ctx_.hl7) r.body += ctx_.hl7->renderMetrics();  // HL7 bridge counters
      return;
    }
    // Writes acknowledged before this request (HL7 messages applied in the open commit group,
    // hl7_journal.h) become visible first; a single atomic load when none are pending.
    ctx_.service.flushApplied();
    // Accesses recorded before this request are AuditEvents before it reads any (audit.h).
    if (ctx_.audit && mayReadAuditEvents(segs, req.getURI())) {
      try {
        ctx_.audit->flush();
      } catch (const fhir::StoreUnavailable& e) {
        throw FhirError(503, IssueType::Transient, "The database is unavailable").withInternalDetail(e.what());
      }
    }
    // --- HL7 v2 outbox operations view (hl7_outbox.h): write access required (payloads carry PHI) ---
    if (segs.size() >= 3 && segs[0] == "admin" && segs[1] == "hl7" && segs[2] == "outbox") {
      establish(req);
      requireAdmin();
      r.contentType = "application/json";
      if (segs.size() == 3) {
        if (method != "GET") methodNotAllowed(req, "GET, HEAD");
        const std::string* st = query_.get("status");
        const std::string* rt = query_.get("route");
        const std::string* cnt = query_.get("_count");
        r.body = outboxListJson(ctx_.service.store(), st ? *st : "", rt ? *rt : "", cnt ? std::atoi(cnt->c_str()) : 100);
        return;
      }
      const std::string id(segs[3]);
      if (segs.size() == 4) {
        if (method != "GET") methodNotAllowed(req, "GET, HEAD");
        auto entry = outboxEntryJson(ctx_.service.store(), id);
        if (!entry) throw FhirError(404, IssueType::NotFound, "No outbox message with that id");
        r.body = std::move(*entry);
        return;
      }
      if (segs.size() == 5 && segs[4] == "$retry") {
        if (method != "POST") methodNotAllowed(req, "POST");
        const int rc = outboxRetry(ctx_.service.store(), id);
        if (rc == 404) throw FhirError(404, IssueType::NotFound, "No outbox message with that id");
        if (rc == 409) throw FhirError(409, IssueType::Conflict, "The message was sent already; nothing to resend");
        r.body = *outboxEntryJson(ctx_.service.store(), id);
        return;
      }
      throw FhirError(404, IssueType::NotFound, "No such endpoint under /admin/hl7/outbox");
    }
    // --- end HL7 v2 outbox ---
    // ---- BEGIN SMART authorization server (auth_server.h) ----
    if (ctx_.authServer && !segs.empty()) {
      std::vector<std::string> s(segs.begin(), segs.end());
      if (AuthServer::handles(s)) return authServer(req, method, std::move(s), r);
    }
    // ---- END SMART authorization server ----
    // ---- BEGIN HL7 bridge ops view (/admin/hl7/messages; see hl7Messages below) ----
    if (segs.size() >= 3 && segs[0] == "admin" && segs[1] == "hl7" && segs[2] == "messages") {
      return hl7Messages(req, method, segs, r);
    }
    // ---- END HL7 bridge ops view ----
    if (segs.empty() || segs[0] != "fhir") {
      throw FhirError(404, IssueType::NotFound, "No such endpoint; the FHIR base is /fhir");
    }
    const bool write = method == "POST" || method == "PUT" || method == "DELETE" || method == "PATCH";
    const size_t n = segs.size() - 1;
    if (n == 1 && segs[1] == "metadata") {
      route_ = Route::Metadata;
      if (method != "GET") methodNotAllowed(req, "GET, HEAD");
      xml_ = negotiate(req, query_);
      r.body = fhir::capabilityStatementJson(ctx_.softwareVersion, base(req),
                                             ctx_.authServer ? ctx_.authServer->capabilitySecurityJson(base(req)) : "");
      if (ctx_.subscriptions) {  // where the Subscription websocket channel is served
        std::string ws = base(req) + "/websocket";
        ws.replace(0, ws.find(':'), ws.rfind("https", 0) == 0 ? "wss" : "ws");
        const std::string rest = R"("rest":[{"mode":"server",)";
        std::string wsJson;
        fhir::appendJsonEscaped(wsJson, ws);
        if (const size_t at = r.body.find(rest); at != std::string::npos) {
          r.body.replace(at, rest.size(),
                         std::string(R"("rest":[{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket","valueUri":)") +
                             "\"" + wsJson + R"("}],"mode":"server",)");
        }
      }
      return;
    }
    establish(req);
    (void)write;
    if (n == 1 && segs[1] == "websocket") {  // handshakes are served in handleRequest
      route_ = Route::Operation;
      if (!ctx_.subscriptions) throw FhirError(404, IssueType::NotFound, "Subscriptions are off on this server");
      throw FhirError(400, IssueType::Invalid,
                      "This is the Subscription websocket endpoint: open a WebSocket (GET with Upgrade: websocket)");
    }
    if (n == 0) {
      if (method == "GET") {
        route_ = Route::SearchSystem;
        xml_ = negotiate(req, query_);
        return search(req, "", "", "", searchParams(), r);
      }
      if (method == "POST") {
        route_ = Route::Bundle;
        xml_ = negotiate(req, query_);
        std::string body = readFhirBody(req, r);
        // Entries are checked for restricted callers, and for everyone when they touch AuditEvents.
        if (restricted() || (ctx_.access && body.find("AuditEvent") != std::string::npos)) checkBundle(body);
        r.body = ctx_.interactions.processBundle(body, base(req), interactionPreference(req));
        if (restricted()) r.body = ctx_.access->filterBundle(who(), r.body);
        return;
      }
      route_ = Route::SearchSystem;
      methodNotAllowed(req, "GET, HEAD, POST");
    }
    if (n == 1 && segs[1] == "_history") {
      route_ = Route::HistorySystem;
      if (method != "GET") methodNotAllowed(req, "GET, HEAD");
      xml_ = negotiate(req, query_);
      return history(req, "", "", r);
    }
    if (n == 1 && segs[1] == "_search") {
      route_ = Route::SearchSystem;
      if (method != "POST") methodNotAllowed(req, "POST");
      xml_ = negotiate(req, query_);
      return search(req, "", "", "", formParams(req, r), r);
    }
    if (n == 1 && segs[1] == "$reindex") {
      route_ = Route::Reindex;
      if (method != "POST") methodNotAllowed(req, "POST");
      requireAdmin();
      xml_ = negotiate(req, query_);
      const std::string* t = query_.get("type");
      if (t) ctx_.service.checkType(*t);
      const int64_t count = ctx_.service.reindex(t ? *t : std::string());
      r.body = fhir::operationOutcomeJson(fhir::Severity::Information, IssueType::Informational,
                                          "Reindexed " + std::to_string(count) + " resources");
      return;
    }
    if (n == 1 && segs[1] == "$hospital-stats") {
      // Administrator figures for a period (hearth/workflows/stats.h).
      route_ = Route::Operation;
      if (method != "GET") methodNotAllowed(req, "GET, HEAD");
      if (restricted()) needOp("*", auth::kSearch);
      xml_ = negotiate(req, query_);
      const std::string* start = query_.get("start");
      const std::string* end = query_.get("end");
      r.body = workflows::hospitalStats(ctx_.service.store(), start ? *start : std::string(), end ? *end : std::string(),
                                        expiringWithinDays());
      return;
    }
    const std::string type(segs[1]);
    ctx_.service.checkType(type);  // 404 for unknown types
    if (n == 1) {
      const bool hasCriteria = !searchParams().empty();
      if (method == "GET") {
        route_ = Route::Search;
        xml_ = negotiate(req, query_);
        return search(req, type, "", "", searchParams(), r);
      }
      if (method == "POST") {
        route_ = Route::Create;
        xml_ = negotiate(req, query_);
        const Grant g = need(type, auth::kCreate);
        std::string body = readFhirBody(req, r);
        const std::string ifNoneExist = req.get("If-None-Exist", "");
        if (!ifNoneExist.empty()) {
          route_ = Route::ConditionalWrite;
          needConditional(type, g, fhir::parseSearchQuery(stripQueryMark(ifNoneExist)));
          auto out = ctx_.interactions.conditionalCreate(type, body, stripQueryMark(ifNoneExist));
          return writeResponse(req, out, out.created ? 201 : 200, r);
        }
        if (g.restricted() && !ctx_.access->satisfies(g, type, body)) outside();
        auto out = ctx_.service.create(type, body);
        return writeResponse(req, out, 201, r);
      }
      route_ = Route::ConditionalWrite;
      if (method == "PUT" || method == "DELETE" || method == "PATCH") {
        if (!hasCriteria) {
          throw FhirError(400, IssueType::Required,
                          "A conditional " + method + " on " + type + " needs search criteria, e.g. " + type +
                              "?identifier=system|value");
        }
        xml_ = negotiate(req, query_);
        const std::string criteria = criteriaString();
        needConditional(type, need(type, method == "DELETE" ? auth::kDelete : auth::kUpdate), searchParams());
        if (method == "PUT") {
          const auto expected = ifMatch(req);
          std::string body = readFhirBody(req, r);
          auto out = ctx_.interactions.conditionalUpdate(type, criteria, body, expected);
          return writeResponse(req, out, out.created ? 201 : 200, r);
        }
        if (method == "PATCH") {
          const auto expected = ifMatch(req);
          std::string body = readPatchBody(req, r);
          auto out = ctx_.interactions.conditionalPatch(type, criteria, body, expected);
          return writeResponse(req, out, 200, r);
        }
        int deleted = 0;
        auto out = ctx_.interactions.conditionalDelete(type, criteria, ctx_.config.fhir.conditionalDeleteMultiple, &deleted);
        return deleteResponse(type, out, deleted, r);
      }
      route_ = Route::Search;
      methodNotAllowed(req, "GET, HEAD, POST, PUT, DELETE, PATCH");
    }
    if (n == 2 && segs[2] == "_history") {
      route_ = Route::HistoryType;
      if (method != "GET") methodNotAllowed(req, "GET, HEAD");
      xml_ = negotiate(req, query_);
      return history(req, type, "", r);
    }
    if (n == 2 && segs[2] == "_search") {
      route_ = Route::Search;
      if (method != "POST") methodNotAllowed(req, "POST");
      xml_ = negotiate(req, query_);
      return search(req, type, "", "", formParams(req, r), r);
    }
    if (n == 2 && type == "Invoice" && segs[2] == "$generate") {
      // Bill an encounter's or a patient's charge items (hearth/workflows/billing.h).
      route_ = Route::Operation;
      if (method != "POST") methodNotAllowed(req, "POST");
      needOp("Invoice", auth::kCreate);
      xml_ = negotiate(req, query_);
      const std::string body = readFhirBody(req, r);
      const fhir::WriteOutcome out = workflows::generateInvoice(ctx_.service, ctx_.search, body);
      return writeResponse(req, out, 201, r);
    }
    if (n == 2 && type == "MedicationRequest" && segs[2] == "$check") {
      // Prescription safety checks (hearth/workflows/prescribing.h).
      route_ = Route::Operation;
      if (method != "POST") methodNotAllowed(req, "POST");
      needOp("MedicationRequest", auth::kSearch);
      needOp("AllergyIntolerance", auth::kSearch);
      xml_ = negotiate(req, query_);
      r.body = workflows::checkPrescription(ctx_.service, ctx_.search, readFhirBody(req, r));
      return;
    }
    if (n == 2 && type == "Appointment" && segs[2] == "$book") {
      route_ = Route::Operation;
      if (method != "POST") methodNotAllowed(req, "POST");
      needOp("Appointment", auth::kCreate);
      xml_ = negotiate(req, query_);
      return writeResponse(req, workflows::bookAppointment(ctx_.service, readFhirBody(req, r)), 201, r);
    }
    if (n == 2 && type == "Medication" && segs[2] == "$stock") {
      route_ = Route::Operation;
      if (method != "GET") methodNotAllowed(req, "GET, HEAD");
      needOp("Medication", auth::kSearch);
      xml_ = negotiate(req, query_);
      r.body = workflows::stockReport(ctx_.service, "", expiringWithinDays());
      return;
    }
    if (n == 2 && type == "Patient" && segs[2] == "$match") {
      // Candidate records for a patient (hearth/workflows/registration.h).
      route_ = Route::Operation;
      if (method != "POST") methodNotAllowed(req, "POST");
      needOp("Patient", auth::kSearch);
      xml_ = negotiate(req, query_);
      const std::string body = readFhirBody(req, r);
      r.body = workflows::patientMatch(ctx_.service, body, base(req));
      return;
    }
    const std::string id(segs[2]);
    if (n == 2) {
      if (method == "GET") {
        route_ = Route::Read;
        const Grant g = need(type, auth::kRead);
        xml_ = negotiate(req, query_);
        auto v = ctx_.service.read(type, id);
        if (g.restricted() && !ctx_.access->satisfies(g, type, v->json)) outside();
        r.header("ETag", etag(v->version));
        r.header("Last-Modified", fhir::httpDateFromInstant(v->lastUpdated));
        if (notModified(req, *v)) {
          r.status = 304;
          return;
        }
        const std::string* summary = query_.get("_summary");
        const std::string* elements = query_.get("_elements");
        if (summary || elements) {
          r.body = ctx_.search.applySummary(type, v->json, summary ? *summary : std::string(),
                                            elements ? *elements : std::string());
        } else {
          r.body = v->json;
        }
        return;
      }
      if (method == "PUT") {
        route_ = Route::Update;
        const Grant g = need(type, auth::kUpdate);
        xml_ = negotiate(req, query_);
        const auto expected = ifMatch(req);
        std::string body = readFhirBody(req, r);
        if (restricted()) {
          if (g.restricted() && !ctx_.access->satisfies(g, type, body)) outside();
          if (!checkExisting(g, type, id)) need(type, auth::kCreate);  // update as create
        }
        auto out = ctx_.service.update(type, id, body, expected);
        return writeResponse(req, out, out.created ? 201 : 200, r);
      }
      if (method == "PATCH") {
        route_ = Route::Patch;
        if (need(type, auth::kUpdate).restricted()) {
          throw FhirError(403, IssueType::Forbidden,
                          "Access denied: patient-context and filtered tokens change resources with PUT, not PATCH");
        }
        xml_ = negotiate(req, query_);
        const auto expected = ifMatch(req);
        std::string body = readPatchBody(req, r);
        auto out = ctx_.interactions.patch(type, id, body, expected);
        return writeResponse(req, out, 200, r);
      }
      if (method == "DELETE") {
        route_ = Route::Delete;
        const Grant g = need(type, auth::kDelete);
        if (g.restricted()) checkExisting(g, type, id);
        xml_ = negotiate(req, query_);
        auto out = ctx_.service.remove(type, id, ifMatch(req));
        return deleteResponse(type, out, out.version.version == 0 ? 0 : 1, r);
      }
      route_ = Route::Read;
      methodNotAllowed(req, "GET, HEAD, PUT, PATCH, DELETE");
    }
    if (n == 3 && segs[3] == "_history") {
      route_ = Route::HistoryInstance;
      if (method != "GET") methodNotAllowed(req, "GET, HEAD");
      xml_ = negotiate(req, query_);
      fhir::ResourceService::checkId(id);
      return history(req, type, id, r);
    }
    if (n == 3 && ((type == "Schedule" && segs[3] == "$generate-slots") || (type == "Appointment" && segs[3] == "$cancel"))) {
      // Scheduling operations (hearth/workflows/scheduling.h).
      route_ = Route::Operation;
      if (method != "POST") methodNotAllowed(req, "POST");
      if (type == "Schedule") {
        needOp("Schedule", auth::kRead);
        needOp("Slot", auth::kCreate);
      } else {
        needOp("Appointment", auth::kUpdate);
      }
      xml_ = negotiate(req, query_);
      const bool hasBody = req.getContentLength() > 0 || req.getChunkedTransferEncoding();
      const std::string body = hasBody ? readFhirBody(req, r) : std::string();
      if (type == "Schedule") {
        r.body = workflows::generateScheduleSlots(ctx_.service, id, body);
        return;
      }
      return writeResponse(req, workflows::cancelAppointment(ctx_.service, id, body), 200, r);
    }
    if (n == 3 && type == "Invoice" && segs[3] == "$claim") {
      // A Claim to the patient's insurer for an Invoice (hearth/workflows/billing.h).
      route_ = Route::Operation;
      if (method != "POST") methodNotAllowed(req, "POST");
      xml_ = negotiate(req, query_);
      const bool hasBody = req.getContentLength() > 0 || req.getChunkedTransferEncoding();
      const std::string body = hasBody ? readFhirBody(req, r) : std::string();
      return writeResponse(req, workflows::claimInvoice(ctx_.service, id, body), 201, r);
    }
    if (n == 3 && type == "Invoice" && (segs[3] == "$pay" || segs[3] == "$balance")) {
      // Payments (hearth/workflows/billing.h).
      route_ = Route::Operation;
      xml_ = negotiate(req, query_);
      needOp("Invoice", segs[3] == "$pay" ? auth::kUpdate : auth::kRead);
      if (segs[3] == "$pay") {
        if (method != "POST") methodNotAllowed(req, "POST");
        r.body = workflows::payInvoice(ctx_.service, id, readFhirBody(req, r));
      } else {
        if (method != "GET") methodNotAllowed(req, "GET, HEAD");
        r.body = workflows::invoiceBalance(ctx_.service, id);
      }
      return;
    }
    if (n == 3 && type == "Medication" && (segs[3] == "$stock" || segs[3] == "$stock-receive")) {
      // Pharmacy stock of one Medication (hearth/workflows/pharmacy.h).
      route_ = Route::Operation;
      xml_ = negotiate(req, query_);
      needOp("Medication", segs[3] == "$stock-receive" ? auth::kUpdate : auth::kRead);
      if (segs[3] == "$stock-receive") {
        if (method != "POST") methodNotAllowed(req, "POST");
        r.body = workflows::receiveStock(ctx_.service, id, readFhirBody(req, r));
      } else {
        if (method != "GET") methodNotAllowed(req, "GET, HEAD");
        r.body = workflows::stockReport(ctx_.service, id, expiringWithinDays());
      }
      return;
    }
    if (n == 3 && segs[3] == "$everything") {
      route_ = Route::Everything;
      if (method != "GET" && method != "POST") methodNotAllowed(req, "GET, HEAD, POST");
      xml_ = negotiate(req, query_);
      fhir::ResourceService::checkId(id);
      const Grant g = need(type, auth::kSearch);
      if (g.confined() && (type != "Patient" || id != *g.patient)) outside();
      r.body = ctx_.search.everything(type, id, searchParams(), base(req));
      if (restricted()) r.body = ctx_.access->filterBundle(who(), r.body);
      return;
    }
    if (n == 3 && (segs[3] == "*" || ctx_.service.model().isResourceType(segs[3]))) {
      route_ = Route::Compartment;
      if (method != "GET") methodNotAllowed(req, "GET, HEAD");
      xml_ = negotiate(req, query_);
      fhir::ResourceService::checkId(id);
      return search(req, std::string(segs[3]), type, id, searchParams(), r);
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
      const Grant g = need(type, auth::kRead);
      auto v = ctx_.service.vread(type, id, version);
      if (g.restricted() && !ctx_.access->satisfies(g, type, v.json)) outside();
      r.header("ETag", etag(v.version));
      r.header("Last-Modified", fhir::httpDateFromInstant(v.lastUpdated));
      r.body = std::move(v.json);
      return;
    }
    throw FhirError(404, IssueType::NotFound, "No such FHIR endpoint");
  }

  // The request's FHIR body as JSON (XML bodies converted); 415 for other media types.
  std::string readFhirBody(HTTPServerRequest& req, Response& r) {
    const bool xmlBody = requireFhirBody(req);
    bodyRead_ = true;
    std::string body = readBody(req, ctx_.config.http.bodyLimitBytes, r);
    if (xmlBody) body = fhir::xmlToJson(body);
    return body;
  }

  // A JSON Patch body (application/json-patch+json); 415 for anything else.
  std::string readPatchBody(HTTPServerRequest& req, Response& r) {
    const std::string ct = req.get("Content-Type", "");
    const std::string mt = trimLower(std::string_view(ct).substr(0, ct.find(';')));
    if (mt != "application/json-patch+json") {
      throw FhirError(415, IssueType::NotSupported,
                      "PATCH takes a JSON Patch document: send Content-Type application/json-patch+json");
    }
    bodyRead_ = true;
    return readBody(req, ctx_.config.http.bodyLimitBytes, r);
  }

  // POST [type]/_search: the form body's parameters followed by those of the URL.
  fhir::SearchParams formParams(HTTPServerRequest& req, Response& r) {
    const std::string ct = req.get("Content-Type", "");
    const std::string mt = trimLower(std::string_view(ct).substr(0, ct.find(';')));
    fhir::SearchParams params;
    if (hasBody(req)) {
      if (mt != "application/x-www-form-urlencoded") {
        throw FhirError(415, IssueType::NotSupported,
                        "POST _search takes application/x-www-form-urlencoded parameters");
      }
      bodyRead_ = true;
      params = fhir::parseSearchQuery(readBody(req, ctx_.config.http.bodyLimitBytes, r));
    }
    for (auto& p : searchParams()) params.push_back(std::move(p));
    return params;
  }

  // The URL's parameters minus those about the HTTP exchange rather than the search.
  fhir::SearchParams searchParams() const {
    fhir::SearchParams out;
    for (const auto& [k, v] : query_.params) {
      if (k == "_format" || k == "_pretty") continue;
      out.emplace_back(k, v);
    }
    return out;
  }

  // The URL's search criteria re-encoded as a query string (conditional interactions).
  std::string criteriaString() const {
    std::string out;
    for (const auto& [k, v] : searchParams()) {
      if (!out.empty()) out += '&';
      out += encode(k);
      out += '=';
      out += encode(v);
    }
    return out;
  }

  static std::string stripQueryMark(const std::string& s) {
    const size_t q = s.find('?');
    return q == std::string::npos ? s : s.substr(q + 1);  // "Patient?identifier=x" or "identifier=x"
  }

  static fhir::ReturnPreference interactionPreference(const HTTPServerRequest& req) {
    switch (returnPreference(req)) {
      case ReturnPref::Minimal: return fhir::ReturnPreference::Minimal;
      case ReturnPref::OperationOutcome: return fhir::ReturnPreference::OperationOutcome;
      case ReturnPref::Representation: break;
    }
    return fhir::ReturnPreference::Representation;
  }

  // Search under access control: the type (each _type, or "*") must allow s; a patient-confined
  // grant turns a type search into a search of the patient's compartment (so matches, paging and
  // totals only ever see that compartment) and refuses other compartments and system-level
  // search; a single granular filter is added to the criteria. The answer is then filtered
  // (includes, revincludes, anything else the criteria pulled in).
  void search(const HTTPServerRequest& req, const std::string& type, const std::string& compartmentType,
              const std::string& compartmentId, fhir::SearchParams params, Response& r) {
    if (!restricted()) return rawSearch(req, type, compartmentType, compartmentId, std::move(params), r);
    const auto sParam = [&](std::string_view name) -> const std::string* {
      for (const auto& [k, v] : params)
        if (k == name) return &v;
      return nullptr;
    };
    Grant g;
    if (type.empty()) {
      // System-level search: every type named by _type (or all types).
      if (const std::string* t = sParam("_type")) {
        std::string_view rest(*t);
        while (!rest.empty()) {
          const size_t c = rest.find(',');
          const std::string one(rest.substr(0, c));
          rest = c == std::string_view::npos ? std::string_view{} : rest.substr(c + 1);
          if (!one.empty()) g = need(one, auth::kSearch, params);
        }
      } else {
        g = need("*", auth::kSearch, params);
      }
      if (g.confined()) {
        throw FhirError(403, IssueType::Forbidden,
                        "Access denied: patient-context tokens search one type at a time (e.g. Observation?...)");
      }
    } else if (type == "*") {
      g = need(compartmentType, auth::kSearch, params);  // Patient/[id]/*: each entry is checked below
    } else {
      g = need(type, auth::kSearch, params);
    }
    needChainTypes(params);
    std::string ct = compartmentType, cid = compartmentId, linkPath;
    if (g.confined()) {
      if (!ct.empty()) {
        if (ct != "Patient" || cid != *g.patient) outside();
      } else if (!AccessControl::sharedType(type)) {
        if (!AccessControl::confinable(type)) outside();
        ct = "Patient";
        cid = *g.patient;
        linkPath = type;
      }
    }
    if (g.filters.size() == 1) {
      for (const auto& f : g.filters.front()) params.push_back(f);
    } else if (g.filters.size() > 1 && (sParam("_total") || sParam("_summary"))) {
      throw FhirError(403, IssueType::Forbidden,
                      "Access denied: counts are not available under several granular scopes; search with one of "
                      "their filters");
    }
    rawSearch(req, type, ct, cid, std::move(params), r, linkPath);
    r.body = ctx_.access->filterBundle(who(), r.body);
  }

  // Reverse chains (_has:Type:ref:param) and typed chains (ref:Type.param) search resources of
  // another type: the caller must be allowed to search that type too, or the criteria would tell
  // which patients have, e.g., an Observation with a given code (a classic bypass). Untyped chains
  // (ref.param) go to the reference's target types; their matches still pass the response filter.
  void needChainTypes(const fhir::SearchParams& params) {
    for (const auto& [name, value] : params) {
      (void)value;
      std::string_view n(name);
      while (n.starts_with("_has:")) {
        n.remove_prefix(5);
        const size_t c = n.find(':');
        need(std::string(n.substr(0, c)), auth::kSearch);
        if (c == std::string_view::npos) break;
        n.remove_prefix(c + 1);            // ref:rest
        const size_t c2 = n.find(':');
        if (c2 == std::string_view::npos) break;
        n.remove_prefix(c2 + 1);           // the next _has or the parameter
      }
      size_t pos = 0;
      while ((pos = n.find(':', pos)) != std::string_view::npos) {
        const size_t dot = n.find('.', pos);
        if (dot == std::string_view::npos) break;
        const std::string t(n.substr(pos + 1, dot - pos - 1));
        if (!t.empty() && std::isupper(static_cast<unsigned char>(t[0])) && ctx_.service.model().isResourceType(t))
          need(t, auth::kSearch);
        pos = dot;
      }
    }
  }

  void rawSearch(const HTTPServerRequest& req, const std::string& type, const std::string& compartmentType,
                 const std::string& compartmentId, fhir::SearchParams params, Response& r,
                 const std::string& linkPath = {}) {
    fhir::SearchRequest s;
    s.type = type;
    s.compartmentType = compartmentType;
    s.compartmentId = compartmentId;
    s.params = std::move(params);
    s.strict = trimLower(req.get("Prefer", "")).find("handling=strict") != std::string::npos;
    s.baseUrl = base(req);
    s.linkPath = !linkPath.empty() ? linkPath
                 : compartmentType.empty() ? type
                                           : compartmentType + "/" + compartmentId + "/" + type;
    s.defaultCount = ctx_.config.fhir.pageSizeDefault;
    s.maxCount = ctx_.config.fhir.pageSizeMax;
    r.body = ctx_.search.search(s);
  }

  // If-None-Match (ETag) and If-Modified-Since (HTTP date) on a read: true when the client's copy
  // is current (304 Not Modified). If-None-Match wins when both are present (RFC 9110 13.2.2).
  static bool notModified(const HTTPServerRequest& req, const fhir::StoredVersion& v) {
    if (req.has("If-None-Match")) {
      const std::string inm = req.get("If-None-Match");
      if (trimLower(inm) == "*") return true;
      std::string_view rest(inm);
      while (!rest.empty()) {
        const size_t comma = rest.find(',');
        const std::string one(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        try {
          if (parseETagVersion(one) == v.version) return true;
        } catch (const FhirError&) {
          // An entity tag that is not ours never matches.
        }
      }
      return false;
    }
    if (req.has("If-Modified-Since")) {
      try {
        int tzd = 0;
        const Poco::DateTime since =
            Poco::DateTimeParser::parse(Poco::DateTimeFormat::HTTP_FORMAT, req.get("If-Modified-Since"), tzd);
        int64_t micros = 0;
        if (!fhir::parseInstant(v.lastUpdated, micros)) return false;
        const int64_t sinceMicros = (since.timestamp().epochMicroseconds() - static_cast<int64_t>(tzd) * 1000000);
        return micros / 1000000 <= sinceMicros / 1000000;  // HTTP dates have second precision
      } catch (const Poco::Exception&) {
        return false;  // an invalid date is ignored (RFC 9110 13.1.3)
      }
    }
    return false;
  }

  void deleteResponse(const std::string& type, const fhir::WriteOutcome& out, int deleted, Response& r) {
    if (deleted == 0 || out.version.version == 0) {
      r.body = fhir::operationOutcomeJson(fhir::Severity::Information, IssueType::Informational,
                                          "Nothing to delete: no matching " + type + " exists");
      return;
    }
    r.header("ETag", etag(out.version.version));
    std::string text = deleted > 1 ? "Deleted " + std::to_string(deleted) + " " + type + " resources"
                                   : "Deleted " + type + "/" + out.version.id + " (version " +
                                         std::to_string(out.version.version) + ")";
    r.body = fhir::operationOutcomeJson(fhir::Severity::Information, IssueType::Informational, text);
  }

  // expiring-within of Medication/$stock: days, 0..3650, default 30.
  int expiringWithinDays() const {
    const std::string* v = query_.get("expiring-within");
    if (!v) return 30;
    if (v->empty() || v->size() > 4 || v->find_first_not_of("0123456789") != std::string::npos || std::stoi(*v) > 3650) {
      throw FhirError(400, IssueType::Invalid, "expiring-within must be a number of days (0 to 3650)", "expiring-within");
    }
    return std::stoi(*v);
  }

  // The authorization server's endpoints: their own (OAuth / HTML / JSON) bodies and errors.
  void authServer(HTTPServerRequest& req, const std::string& method, std::vector<std::string> segs, Response& r) {
    route_ = Route::Auth;
    AuthHttpRequest a;
    a.method = method;
    a.segments = std::move(segs);
    a.query = query_.params;
    const std::string ct = req.get("Content-Type", "");
    a.contentType = trimLower(std::string_view(ct).substr(0, ct.find(';')));
    if (method != "GET" && hasBody(req)) {
      bodyRead_ = true;
      a.body = readBody(req, std::min<size_t>(ctx_.config.http.bodyLimitBytes, 1024 * 1024), r);
    }
    a.authorization = req.get("Authorization", "");
    a.cookie = req.get("Cookie", "");
    a.fhirBase = base(req);
    a.remoteAddress = req.clientAddress().host().toString();
    AuthHttpResponse out = ctx_.authServer->handle(a);
    r.status = out.status;
    r.contentType = out.contentType.empty() ? std::string("application/json") : out.contentType;
    r.body = std::move(out.body);
    for (auto& [k, v] : out.headers) r.header(std::move(k), std::move(v));
  }

  // ---- BEGIN HL7 bridge ops view ----
  // GET  /admin/hl7/messages?status=&_count=   newest first, without message content
  // GET  /admin/hl7/messages/{id}                one message with its raw text, error and ACK
  // POST /admin/hl7/messages/{id}/$replay        re-run the mapping of an error/received message
  // Message content is patient data: every route needs a token with write access (like writes).
  static void hl7RowJson(std::string& out, const Hl7MessageRow& m, bool content) {
    auto field = [&](const char* name, const std::string& v, bool comma = true) {
      out += '"';
      out += name;
      out += "\":\"";
      fhir::appendJsonEscaped(out, v);
      out += comma ? "\"," : "\"";
    };
    out += '{';
    field("id", m.id);
    field("sender", m.sender);
    field("controlId", m.controlId);
    field("messageType", m.messageType);
    field("receivedAt", m.receivedAt);
    field("status", m.status);
    field("error", m.error);
    field("ackCode", m.ackCode);
    field("processedAt", m.processedAt);
    if (content) {
      field("raw", m.raw);
      field("ack", m.ack);
    }
    out += "\"attempts\":" + std::to_string(m.attempts) + "}";
  }

  void hl7Messages(HTTPServerRequest& req, const std::string& method, const std::vector<std::string_view>& segs,
                   Response& r) {
    establish(req);
    requireAdmin();
    if (!ctx_.hl7) throw FhirError(404, IssueType::NotFound, "The HL7 v2 bridge is not enabled (mllp.enabled)");
    r.contentType = "application/json";
    if (segs.size() == 3) {
      if (method != "GET") methodNotAllowed(req, "GET, HEAD");
      const std::string* st = query_.get("status");
      const std::string status = st ? *st : std::string();
      if (!status.empty() && status != "received" && status != "processed" && status != "error" && status != "rejected") {
        throw FhirError(400, IssueType::Value, "status must be received, processed, error or rejected");
      }
      int count = 50;
      if (const std::string* c = query_.get("_count")) {
        char* end = nullptr;
        const long v = std::strtol(c->c_str(), &end, 10);
        if (c->empty() || *end != '\0' || v < 1) throw FhirError(400, IssueType::Value, "_count must be a positive integer");
        count = static_cast<int>(std::min(v, 1000L));
      }
      const auto rows = ctx_.hl7->list(status, count);
      r.body = "{\"messages\":[";
      for (size_t i = 0; i < rows.size(); ++i) {
        if (i) r.body += ',';
        hl7RowJson(r.body, rows[i], false);
      }
      r.body += "]}";
      return;
    }
    const std::string id(segs[3]);
    if (id.empty() || id.size() > 64) throw FhirError(404, IssueType::NotFound, "No such message");
    if (segs.size() == 4) {
      if (method != "GET") methodNotAllowed(req, "GET, HEAD");
      const auto m = ctx_.hl7->get(id, true);
      if (!m) throw FhirError(404, IssueType::NotFound, "No such message");
      hl7RowJson(r.body, *m, true);
      return;
    }
    if (segs.size() == 5 && segs[4] == "$replay") {
      if (method != "POST") methodNotAllowed(req, "POST");
      const auto m = ctx_.hl7->replay(id);
      if (!m) throw FhirError(404, IssueType::NotFound, "No such message");
      hl7RowJson(r.body, *m, false);
      return;
    }
    throw FhirError(404, IssueType::NotFound, "No such endpoint");
  }
  // ---- END HL7 bridge ops view ----

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

  // History under access control: an instance's needs r (and the instance must be visible now or
  // in the versions shown), a type's or the system's s; every version shown must be visible.
  void history(const HTTPServerRequest& req, const std::string& type, const std::string& id, Response& r) {
    if (!restricted()) return rawHistory(req, type, id, r);
    Grant g = need(type.empty() ? std::string("*") : type, id.empty() ? auth::kSearch : auth::kRead);
    if (g.confined() && !type.empty() && !AccessControl::confinable(type)) outside();
    rawHistory(req, type, id, r);
    bool removed = false;
    r.body = ctx_.access->filterBundle(who(), r.body, &removed, id.empty() ? auth::kSearch : auth::kRead);
    if (!id.empty() && removed && g.restricted()) {
      // Some versions of this instance are outside the grant: show the instance's history only if
      // it is visible now (deleted and moved-out versions are not shown at all then).
      if (!checkExisting(g, type, id)) outside();
    }
  }

  void rawHistory(const HTTPServerRequest& req, const std::string& type, const std::string& id, Response& r) {
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
  // Who is asking (establish()): points at ownWho_ or at the shared cached identity_.
  const auth::AccessContext& who() const { return *who_; }
  auth::AccessContext ownWho_;
  std::shared_ptr<const Identity> identity_;
  const auth::AccessContext* who_ = &ownWho_;
  bool established_ = false;
  std::string challenge_;     // WWW-Authenticate of an authentication failure
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
