#include "auth_server.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/SHA2Engine.h>
#include <Poco/String.h>
#include <Poco/URI.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <set>
#include <sstream>

#include "access_log.h"
#include "hearth/auth/base64.h"
#include "hearth/auth/jwt.h"
#include "hearth/auth/password.h"
#include "hearth/auth/scopes.h"
#include "hearth/fhir/error.h"

namespace hearth::server {

namespace {

using Params = std::vector<std::pair<std::string, std::string>>;
using Json = rapidjson::Writer<rapidjson::StringBuffer>;

int64_t nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string randomToken(size_t bytes = 32) {
  std::string buf(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(buf.data()), static_cast<int>(bytes)) != 1) {
    throw std::runtime_error("no randomness available");
  }
  return auth::base64urlEncode(buf);
}

std::string sha256Raw(const std::string& s) {
  Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
  sha.update(s);
  const auto& d = sha.digest();
  return std::string(d.begin(), d.end());
}
std::string sha256Hex(const std::string& s) {
  Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
  sha.update(s);
  return Poco::DigestEngine::digestToHex(sha.digest());
}

Params parseForm(std::string_view q) {
  Params out;
  while (!q.empty()) {
    const size_t amp = q.find('&');
    std::string part(q.substr(0, amp));
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    if (part.empty()) continue;
    std::replace(part.begin(), part.end(), '+', ' ');
    const size_t eq = part.find('=');
    std::string k, v;
    try {
      Poco::URI::decode(part.substr(0, eq), k);
      if (eq != std::string::npos) Poco::URI::decode(part.substr(eq + 1), v);
    } catch (const Poco::Exception&) {
      continue;  // a malformed pair counts as absent
    }
    out.emplace_back(std::move(k), std::move(v));
  }
  return out;
}

std::string urlEncode(const std::string& s) {
  std::string out;
  Poco::URI::encode(s, "!#$&'()*+,/:;=?@[]% \"<>", out);
  return out;
}

std::string html(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// An OAuth error (RFC 6749 5.2) answered as JSON by the token, introspection and revocation
// endpoints, or as a redirect / error page by /auth/authorize.
struct OAuthError {
  int status;
  std::string error;
  std::string description;
};

struct JsonDoc {
  rapidjson::Document d;
  bool parse(const std::string& s) {
    d.Parse(s.c_str(), s.size());
    return !d.HasParseError() && d.IsObject();
  }
  std::string str(const char* k) const {
    auto it = d.FindMember(k);
    return it != d.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString(), it->value.GetStringLength())
                                                       : std::string();
  }
  int64_t num(const char* k) const {
    auto it = d.FindMember(k);
    return it != d.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : 0;
  }
  bool boolean(const char* k) const {
    auto it = d.FindMember(k);
    return it != d.MemberEnd() && it->value.IsBool() && it->value.GetBool();
  }
  std::vector<std::string> strings(const char* k) const {
    std::vector<std::string> out;
    auto it = d.FindMember(k);
    if (it == d.MemberEnd()) return out;
    if (it->value.IsString()) return splitWords(it->value.GetString());
    if (it->value.IsArray()) {
      for (const auto& v : it->value.GetArray())
        if (v.IsString()) out.emplace_back(v.GetString(), v.GetStringLength());
    }
    return out;
  }
  bool has(const char* k) const { return d.HasMember(k); }
};

void key(Json& w, const char* k, const std::string& v) {
  w.Key(k);
  w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
}
void keyIf(Json& w, const char* k, const std::string& v) {
  if (!v.empty()) key(w, k, v);
}
void keyArray(Json& w, const char* k, const std::vector<std::string>& v) {
  w.Key(k);
  w.StartArray();
  for (const auto& s : v) w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  w.EndArray();
}

// The state kept between the steps of one authorization request (cache "areq:<id>").
struct PendingAuthorization {
  std::string clientId, redirectUri, scope, state, codeChallenge, nonce, aud;
  std::string launchPatient, launchEncounter;  // from an EHR launch handle
  bool ehrLaunch = false;
  std::string user;  // set once the user has signed in

  std::string toJson() const {
    rapidjson::StringBuffer b;
    Json w(b);
    w.StartObject();
    key(w, "client_id", clientId);
    key(w, "redirect_uri", redirectUri);
    key(w, "scope", scope);
    key(w, "state", state);
    key(w, "code_challenge", codeChallenge);
    key(w, "nonce", nonce);
    key(w, "aud", aud);
    key(w, "launch_patient", launchPatient);
    key(w, "launch_encounter", launchEncounter);
    w.Key("ehr");
    w.Bool(ehrLaunch);
    key(w, "user", user);
    w.EndObject();
    return b.GetString();
  }
  static std::optional<PendingAuthorization> fromJson(const std::string& s) {
    JsonDoc j;
    if (!j.parse(s)) return std::nullopt;
    PendingAuthorization p;
    p.clientId = j.str("client_id");
    p.redirectUri = j.str("redirect_uri");
    p.scope = j.str("scope");
    p.state = j.str("state");
    p.codeChallenge = j.str("code_challenge");
    p.nonce = j.str("nonce");
    p.aud = j.str("aud");
    p.launchPatient = j.str("launch_patient");
    p.launchEncounter = j.str("launch_encounter");
    p.ehrLaunch = j.boolean("ehr");
    p.user = j.str("user");
    return p;
  }
};

// What a token grant carries from the code / refresh token to the tokens it issues.
struct Grant {
  std::string clientId, scope, user, fhirUser, patient, encounter, nonce, redirectUri, codeChallenge, family;
  std::vector<std::string> roles;
  bool needBanner = false;
  int64_t authTime = 0;

  std::string toJson() const {
    rapidjson::StringBuffer b;
    Json w(b);
    w.StartObject();
    key(w, "client_id", clientId);
    key(w, "scope", scope);
    key(w, "user", user);
    key(w, "fhirUser", fhirUser);
    key(w, "patient", patient);
    key(w, "encounter", encounter);
    key(w, "nonce", nonce);
    key(w, "redirect_uri", redirectUri);
    key(w, "code_challenge", codeChallenge);
    key(w, "family", family);
    keyArray(w, "roles", roles);
    w.Key("banner");
    w.Bool(needBanner);
    w.Key("auth_time");
    w.Int64(authTime);
    w.EndObject();
    return b.GetString();
  }
  static std::optional<Grant> fromJson(const std::string& s) {
    JsonDoc j;
    if (!j.parse(s)) return std::nullopt;
    Grant g;
    g.clientId = j.str("client_id");
    g.scope = j.str("scope");
    g.user = j.str("user");
    g.fhirUser = j.str("fhirUser");
    g.patient = j.str("patient");
    g.encounter = j.str("encounter");
    g.nonce = j.str("nonce");
    g.redirectUri = j.str("redirect_uri");
    g.codeChallenge = j.str("code_challenge");
    g.family = j.str("family");
    g.roles = j.strings("roles");
    g.needBanner = j.boolean("banner");
    g.authTime = j.num("auth_time");
    return g;
  }
};

constexpr const char* kAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

const char* kPageStyle =
    "<style>body{font-family:system-ui,sans-serif;max-width:34em;margin:3em auto;padding:0 1em;color:#222}"
    "h1{font-size:1.4em}label{display:block;margin:.8em 0 .2em}input,select{font-size:1em;padding:.3em;width:100%}"
    "button{font-size:1em;padding:.4em 1.2em;margin:1em .5em 0 0}.err{color:#a00}li{margin:.2em 0}</style>";

std::string page(const std::string& title, const std::string& bodyHtml) {
  return "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + html(title) +
         "</title><meta name=\"viewport\" content=\"width=device-width\">" + kPageStyle + "</head><body><h1>" +
         html(title) + "</h1>" + bodyHtml + "</body></html>";
}

bool validPkceVerifier(const std::string& v) {
  if (v.size() < 43 || v.size() > 128) return false;
  for (char c : v) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == '~')) return false;
  }
  return true;
}

// A scope the client asks for is allowed when its registration lists it, or lists a clinical scope
// of the same context that covers the type, the interactions and (if any) the filter.
bool scopeAllowed(const std::string& requested, const std::vector<std::string>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), requested) != allowed.end()) return true;
  const bool clinical = requested.rfind("patient/", 0) == 0 || requested.rfind("user/", 0) == 0 ||
                        requested.rfind("system/", 0) == 0;
  if (!clinical) return false;
  try {
    const auth::ResourceScope r = auth::parseResourceScope(requested);
    for (const auto& a : allowed) {
      if (a.rfind(auth::contextName(r.context) + "/", 0) != 0) continue;
      const auth::ResourceScope g = auth::parseResourceScope(a);
      if (g.type != "*" && g.type != r.type) continue;
      if ((r.interactions & ~g.interactions) != 0) continue;
      if (!g.filter.empty() && g.filter != r.filter) continue;
      return true;
    }
  } catch (const auth::ScopeError&) {
  }
  return false;
}

std::string fetchJwks(const std::string& url) {
  Poco::URI uri(url);
  std::unique_ptr<Poco::Net::HTTPClientSession> session;
  if (uri.getScheme() == "https") {
    session = std::make_unique<Poco::Net::HTTPSClientSession>(uri.getHost(), uri.getPort());
  } else {
    session = std::make_unique<Poco::Net::HTTPClientSession>(uri.getHost(), uri.getPort());
  }
  session->setTimeout(Poco::Timespan(5, 0));
  Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_GET, uri.getPathAndQuery(), Poco::Net::HTTPMessage::HTTP_1_1);
  req.set("Accept", "application/json");
  session->sendRequest(req);
  Poco::Net::HTTPResponse resp;
  std::istream& in = session->receiveResponse(resp);
  if (resp.getStatus() != Poco::Net::HTTPResponse::HTTP_OK) throw std::runtime_error("jku answered " + std::to_string(resp.getStatus()));
  std::string body;
  char buf[4096];
  while (in && body.size() < 256 * 1024) {
    in.read(buf, sizeof buf);
    body.append(buf, static_cast<size_t>(in.gcount()));
  }
  return body;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// One request. Everything that can go wrong with the client's input ends as an OAuth error.
struct AuthServer::Impl {
  AuthServer& s;
  const AuthHttpRequest& req;
  AuthHttpResponse r;
  Params form;  // POST form parameters (or the query for GET)

  Impl(AuthServer& server, const AuthHttpRequest& request) : s(server), req(request) {}

  AuthRuntime& rt() { return s.runtime_; }
  const AuthConfig& cfg() { return s.runtime_.settings(); }
  std::string issuer() { return rt().issuer(req.fhirBase); }
  std::string tokenUrl() { return issuer() + "/auth/token"; }

  const std::string* param(std::string_view name) const {
    for (const auto& [k, v] : form)
      if (k == name) return &v;
    return nullptr;
  }
  std::string paramOr(std::string_view name) const {
    const std::string* p = param(name);
    return p ? *p : std::string();
  }
  // A parameter given twice is an error (RFC 6749 3.1, 3.2).
  bool repeated() const {
    std::set<std::string> seen;
    for (const auto& [k, v] : form)
      if (!seen.insert(k).second) return true;
    return false;
  }

  void json(int status, const std::string& body) {
    r.status = status;
    r.contentType = "application/json";
    r.body = body;
  }
  void noStore() {
    r.headers.emplace_back("Cache-Control", "no-store");
    r.headers.emplace_back("Pragma", "no-cache");
  }
  void oauthError(const OAuthError& e) {
    rapidjson::StringBuffer b;
    Json w(b);
    w.StartObject();
    key(w, "error", e.error);
    keyIf(w, "error_description", e.description);
    w.EndObject();
    json(e.status, b.GetString());
    noStore();
    // RFC 6749 5.2: a client that tried HTTP Basic gets the Basic challenge with its 401.
    if (e.status == 401 && req.authorization.size() > 6 && Poco::icompare(req.authorization.substr(0, 6), "basic ") == 0) {
      r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"hearth\"");
    }
  }
  void htmlPage(int status, const std::string& title, const std::string& bodyHtml) {
    r.status = status;
    r.contentType = "text/html; charset=utf-8";
    r.body = page(title, bodyHtml);
    noStore();
    r.headers.emplace_back("X-Frame-Options", "DENY");
    r.headers.emplace_back("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'");
  }
  void audit(AuthEvent::Type type, bool ok, const std::string& subject, const std::string& client,
             const std::string& reason, const std::string& grantType = {}, const std::string& jti = {},
             const std::string& fhirUser = {}, const std::string& patient = {}) {
    AuthEvent e;
    e.type = type;
    e.success = ok;
    e.subject = subject;
    e.clientId = client;
    e.reason = reason;
    e.grantType = grantType;
    e.jti = jti;
    e.fhirUser = fhirUser;
    e.patient = patient;
    e.remoteAddress = req.remoteAddress;
    rt().audit(e);
  }

  // ------------------------------------------------------------------ discovery
  std::vector<std::string> scopesSupported() {
    return {"openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter", "offline_access",
            "online_access", "patient/*.read", "patient/*.rs", "patient/*.cruds", "user/*.read", "user/*.rs",
            "user/*.cruds", "system/*.read", "system/*.rs", "system/*.cruds"};
  }

  void smartConfiguration() {
    const std::string iss = issuer();
    rapidjson::StringBuffer b;
    Json w(b);
    w.StartObject();
    key(w, "issuer", iss);
    key(w, "jwks_uri", iss + "/auth/jwks");
    key(w, "authorization_endpoint", iss + "/auth/authorize");
    key(w, "token_endpoint", iss + "/auth/token");
    key(w, "introspection_endpoint", iss + "/auth/introspect");
    key(w, "revocation_endpoint", iss + "/auth/revoke");
    keyArray(w, "grant_types_supported", {"authorization_code", "refresh_token", "client_credentials"});
    keyArray(w, "token_endpoint_auth_methods_supported", {"client_secret_basic", "client_secret_post", "private_key_jwt"});
    keyArray(w, "token_endpoint_auth_signing_alg_values_supported", {"RS384", "ES384"});
    keyArray(w, "scopes_supported", scopesSupported());
    keyArray(w, "response_types_supported", {"code"});
    keyArray(w, "code_challenge_methods_supported", {"S256"});
    keyArray(w, "capabilities",
             {"launch-ehr", "launch-standalone", "authorize-post", "client-public", "client-confidential-symmetric",
              "client-confidential-asymmetric", "context-passthrough-banner", "context-passthrough-style",
              "context-ehr-patient", "context-ehr-encounter", "context-standalone-patient", "permission-offline",
              "permission-online", "permission-patient", "permission-user", "permission-v1", "permission-v2",
              "sso-openid-connect"});
    w.EndObject();
    json(200, b.GetString());
  }

  void openidConfiguration() {
    const std::string iss = issuer();
    rapidjson::StringBuffer b;
    Json w(b);
    w.StartObject();
    key(w, "issuer", iss);
    key(w, "authorization_endpoint", iss + "/auth/authorize");
    key(w, "token_endpoint", iss + "/auth/token");
    key(w, "jwks_uri", iss + "/auth/jwks");
    key(w, "introspection_endpoint", iss + "/auth/introspect");
    key(w, "revocation_endpoint", iss + "/auth/revoke");
    keyArray(w, "response_types_supported", {"code"});
    keyArray(w, "subject_types_supported", {"public"});
    keyArray(w, "id_token_signing_alg_values_supported", {"RS256"});
    keyArray(w, "grant_types_supported", {"authorization_code", "refresh_token", "client_credentials"});
    keyArray(w, "token_endpoint_auth_methods_supported", {"client_secret_basic", "client_secret_post", "private_key_jwt"});
    keyArray(w, "token_endpoint_auth_signing_alg_values_supported", {"RS384", "ES384"});
    keyArray(w, "code_challenge_methods_supported", {"S256"});
    keyArray(w, "scopes_supported", scopesSupported());
    keyArray(w, "claims_supported", {"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "fhirUser", "name"});
    w.EndObject();
    json(200, b.GetString());
  }

  // ------------------------------------------------------------------ authorize
  void authorizeRedirect(const PendingAuthorization& p, const std::string& query) {
    std::string loc = p.redirectUri;
    loc += loc.find('?') == std::string::npos ? '?' : '&';
    loc += query;
    if (!p.state.empty()) loc += "&state=" + urlEncode(p.state);
    r.status = 302;
    r.contentType.clear();
    r.body.clear();
    r.headers.emplace_back("Location", loc);
    noStore();
  }
  void authorizeError(const PendingAuthorization& p, const std::string& error, const std::string& description) {
    audit(AuthEvent::Type::TokenRefused, false, p.user, p.clientId, error + ": " + description, "authorization_code");
    authorizeRedirect(p, "error=" + error + "&error_description=" + urlEncode(description));
  }

  void authorize() {
    if (req.method != "GET" && req.method != "POST") {
      htmlPage(405, "Method not allowed", "<p>Use GET or POST.</p>");
      return;
    }
    const std::string step = paramOr("hearth_step");
    if (step == "login") return loginSubmit();
    if (step == "consent") return consentSubmit();
    return authorizeStart();
  }

  void authorizeStart() {
    if (repeated()) {
      htmlPage(400, "Invalid request", "<p>A parameter was given more than once.</p>");
      return;
    }
    PendingAuthorization p;
    p.clientId = paramOr("client_id");
    p.redirectUri = paramOr("redirect_uri");
    // Until client and redirect URI are known good, errors are shown here, never redirected.
    const auto client = p.clientId.empty() ? std::nullopt : s.directory_.client(p.clientId);
    if (!client || !client->active || client->type == "confidential-asymmetric") {
      htmlPage(400, "Unknown application", "<p>The application (client_id) is not registered for this flow.</p>");
      return;
    }
    if (std::find(client->redirectUris.begin(), client->redirectUris.end(), p.redirectUri) == client->redirectUris.end()) {
      htmlPage(400, "Invalid redirect", "<p>The redirect_uri does not exactly match one registered for this application.</p>");
      return;
    }
    p.state = paramOr("state");
    p.aud = paramOr("aud");
    std::string aud = p.aud, base = req.fhirBase;
    while (!aud.empty() && aud.back() == '/') aud.pop_back();
    if (aud != base) {
      // SMART: never issue a code for a resource server we are not. Shown, not redirected.
      audit(AuthEvent::Type::TokenRefused, false, "", p.clientId, "invalid_request: aud", "authorization_code");
      htmlPage(400, "Invalid audience",
               "<p>The aud parameter must be this server's FHIR base URL: " + html(req.fhirBase) + "</p>");
      return;
    }
    if (paramOr("response_type") != "code") return authorizeError(p, "unsupported_response_type", "response_type must be code");
    if (p.state.empty()) return authorizeError(p, "invalid_request", "state is required");
    if (paramOr("code_challenge_method") != "S256") {
      return authorizeError(p, "invalid_request", "PKCE with code_challenge_method=S256 is required");
    }
    p.codeChallenge = paramOr("code_challenge");
    if (p.codeChallenge.size() != 43 || !auth::base64urlDecode(p.codeChallenge)) {
      return authorizeError(p, "invalid_request", "code_challenge must be the base64url SHA-256 of the code_verifier");
    }
    p.scope = paramOr("scope");
    auth::ScopeSet scopes;
    try {
      scopes = auth::parseScopes(p.scope);
    } catch (const auth::ScopeError& e) {
      return authorizeError(p, "invalid_scope", e.what());
    }
    if (scopes.context() == auth::ScopeContext::System) {
      return authorizeError(p, "invalid_scope", "system/ scopes are for client_credentials only");
    }
    if (!client->scopes.empty()) {
      const auto allowed = splitWords(client->scopes);
      for (const auto& sc : splitWords(p.scope)) {
        if (!scopeAllowed(sc, allowed)) return authorizeError(p, "invalid_scope", "scope not allowed for this client: " + sc);
      }
    }
    p.nonce = paramOr("nonce");
    if (const std::string* launch = param("launch")) {
      auto bound = rt().cache().take("launch:" + sha256Hex(*launch));
      JsonDoc j;
      if (!bound || !j.parse(*bound)) return authorizeError(p, "invalid_request", "unknown, expired or used launch");
      p.launchPatient = j.str("patient");
      p.launchEncounter = j.str("encounter");
      p.ehrLaunch = true;
    }
    const std::string id = randomToken();
    // An existing login session (cookie) skips the login form (single sign-on).
    if (const auto user = sessionUser()) {
      p.user = *user;
      rt().cache().set("areq:" + sha256Hex(id), p.toJson(), std::chrono::seconds(cfg().loginSeconds));
      return consentPage(id, p, {});
    }
    rt().cache().set("areq:" + sha256Hex(id), p.toJson(), std::chrono::seconds(cfg().loginSeconds));
    loginPage(200, id, *client, {});
  }

  void loginPage(int status, const std::string& id, const OAuthClient& client, const std::string& error) {
    std::string b;
    b += "<p><strong>" + html(client.name.empty() ? client.clientId : client.name) +
         "</strong> asks to connect to your record at Hearth. Sign in to continue.</p>";
    if (!error.empty()) b += "<p class=\"err\" role=\"alert\">" + html(error) + "</p>";
    b += "<form method=\"post\" action=\"authorize\">";
    b += "<input type=\"hidden\" name=\"hearth_step\" value=\"login\">";
    b += "<input type=\"hidden\" name=\"hearth_request\" value=\"" + html(id) + "\">";
    b += "<label for=\"username\">User name</label><input id=\"username\" name=\"username\" autocomplete=\"username\" required>";
    b += "<label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" "
         "autocomplete=\"current-password\" required>";
    b += "<button type=\"submit\">Sign in</button></form>";
    htmlPage(status, "Sign in to Hearth", b);
  }

  std::optional<std::string> sessionUser() {
    const std::string sid = cookie("hearth_session");
    if (sid.empty()) return std::nullopt;
    return rt().cache().get("sess:" + sha256Hex(sid));
  }
  std::string cookie(const std::string& name) const {
    std::string_view c(req.cookie);
    while (!c.empty()) {
      const size_t semi = c.find(';');
      std::string_view part = c.substr(0, semi);
      c = semi == std::string_view::npos ? std::string_view{} : c.substr(semi + 1);
      while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
      const size_t eq = part.find('=');
      if (eq != std::string_view::npos && part.substr(0, eq) == name) return std::string(part.substr(eq + 1));
    }
    return {};
  }

  std::optional<PendingAuthorization> pending(const std::string& id) {
    if (id.empty() || id.size() > 100) return std::nullopt;
    auto v = rt().cache().get("areq:" + sha256Hex(id));
    if (!v) return std::nullopt;
    return PendingAuthorization::fromJson(*v);
  }

  void loginSubmit() {
    const std::string id = paramOr("hearth_request");
    auto p = pending(id);
    if (!p) {
      htmlPage(400, "Sign-in expired", "<p>This sign-in page has expired. Start again from the application.</p>");
      return;
    }
    const auto client = s.directory_.client(p->clientId);
    if (!client) {
      htmlPage(400, "Unknown application", "<p>The application is no longer registered.</p>");
      return;
    }
    const std::string username = paramOr("username");
    const std::string password = paramOr("password");
    if (username.empty() || username.size() > 64) return loginPage(401, id, *client, "Wrong user name or password.");
    const std::string lockKey = "lock:" + sha256Hex(username);
    const auto failures = rt().cache().get(lockKey);
    if (failures && std::atoll(failures->c_str()) >= cfg().lockoutFailures) {
      audit(AuthEvent::Type::Login, false, username, p->clientId, "locked");
      return loginPage(429, id, *client, "Too many failed sign-ins. This account is locked for a while; try again later.");
    }
    const auto account = s.directory_.account(username);
    bool ok = false;
    if (account) {
      ok = auth::verifyPassword(password, account->passwordHash) && account->active;
    } else {
      auth::burnPasswordCheck(password);  // same time as a wrong password
    }
    if (!ok) {
      rt().cache().incr(lockKey, std::chrono::seconds(cfg().lockoutWindowSeconds));
      audit(AuthEvent::Type::Login, false, username, p->clientId, "bad credentials");
      return loginPage(401, id, *client, "Wrong user name or password.");
    }
    rt().cache().remove(lockKey);
    if (auth::passwordNeedsRehash(account->passwordHash)) {
      try {
        s.directory_.rehash(account->id, auth::hashPassword(password));
      } catch (const std::exception&) {
        // The old hash still works; try again next time.
      }
    }
    audit(AuthEvent::Type::Login, true, account->id, p->clientId, "", "", "", account->fhirUser);
    const std::string sid = randomToken();
    rt().cache().set("sess:" + sha256Hex(sid), account->id, std::chrono::seconds(cfg().loginSeconds));
    r.headers.emplace_back("Set-Cookie", "hearth_session=" + sid + "; Path=/auth; HttpOnly; SameSite=Lax" +
                                             (issuer().rfind("https://", 0) == 0 ? "; Secure" : ""));
    p->user = account->id;
    rt().cache().set("areq:" + sha256Hex(id), p->toJson(), std::chrono::seconds(cfg().loginSeconds));
    consentPage(id, *p, {});
  }

  // The patient the token will be bound to: the launch's, the user's own, or picked.
  bool needsPatient(const auth::ScopeSet& sc) const {
    return sc.launchPatient || sc.context() == auth::ScopeContext::Patient;
  }

  std::vector<std::pair<std::string, std::string>> patientChoices() {
    std::vector<std::pair<std::string, std::string>> out;
    fhir::SearchRequest q;
    q.type = "Patient";
    q.params = {{"_count", "50"}, {"_sort", "family"}};
    q.baseUrl = req.fhirBase;
    q.linkPath = "Patient";
    q.defaultCount = 50;
    q.maxCount = 50;
    JsonDoc j;
    if (!j.parse(s.search_.search(q))) return out;
    auto e = j.d.FindMember("entry");
    if (e == j.d.MemberEnd() || !e->value.IsArray()) return out;
    for (const auto& entry : e->value.GetArray()) {
      auto res = entry.FindMember("resource");
      if (res == entry.MemberEnd() || !res->value.IsObject()) continue;
      auto idm = res->value.FindMember("id");
      if (idm == res->value.MemberEnd() || !idm->value.IsString()) continue;
      std::string label;
      auto names = res->value.FindMember("name");
      if (names != res->value.MemberEnd() && names->value.IsArray() && !names->value.Empty()) {
        const auto& n = names->value[0];
        auto given = n.FindMember("given");
        if (given != n.MemberEnd() && given->value.IsArray()) {
          for (const auto& g : given->value.GetArray())
            if (g.IsString()) label += std::string(g.GetString()) + " ";
        }
        auto fam = n.FindMember("family");
        if (fam != n.MemberEnd() && fam->value.IsString()) label += fam->value.GetString();
      }
      auto bd = res->value.FindMember("birthDate");
      if (bd != res->value.MemberEnd() && bd->value.IsString()) label += std::string(" (") + bd->value.GetString() + ")";
      out.emplace_back(idm->value.GetString(), label);
    }
    return out;
  }

  void consentPage(const std::string& id, const PendingAuthorization& p, const std::string& error) {
    const auto client = s.directory_.client(p.clientId);
    const auto account = s.directory_.account(p.user);
    if (!client || !account) {
      htmlPage(400, "Sign-in expired", "<p>Start again from the application.</p>");
      return;
    }
    const auth::ScopeSet sc = auth::parseScopes(p.scope);
    std::string b;
    b += "<p>Signed in as <strong>" + html(account->displayName.empty() ? account->id : account->displayName) + "</strong>.</p>";
    b += "<p><strong>" + html(client->name.empty() ? client->clientId : client->name) + "</strong> asks for:</p><ul>";
    for (const auto& w : splitWords(p.scope)) b += "<li><code>" + html(w) + "</code></li>";
    b += "</ul>";
    if (!error.empty()) b += "<p class=\"err\" role=\"alert\">" + html(error) + "</p>";
    b += "<form method=\"post\" action=\"authorize\">";
    b += "<input type=\"hidden\" name=\"hearth_step\" value=\"consent\">";
    b += "<input type=\"hidden\" name=\"hearth_request\" value=\"" + html(id) + "\">";
    const bool patientUser = account->fhirUser.rfind("Patient/", 0) == 0;
    if (needsPatient(sc) && p.launchPatient.empty() && !patientUser) {
      b += "<label for=\"patient\">Patient</label><select id=\"patient\" name=\"patient\">";
      for (const auto& [pid, label] : patientChoices()) {
        b += "<option value=\"" + html(pid) + "\">" + html(label.empty() ? pid : label) + " [" + html(pid) + "]</option>";
      }
      b += "</select><label for=\"patient_id\">or a patient id</label><input id=\"patient_id\" name=\"patient_id\">";
    }
    b += "<button type=\"submit\" name=\"decision\" value=\"approve\">Allow</button>";
    b += "<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>";
    htmlPage(200, "Allow access?", b);
  }

  void consentSubmit() {
    const std::string id = paramOr("hearth_request");
    auto p = pending(id);
    const auto user = sessionUser();
    // The consent must come from the browser that signed in (the session cookie), for this request.
    if (!p || p->user.empty() || !user || *user != p->user) {
      htmlPage(400, "Sign-in expired", "<p>This page has expired. Start again from the application.</p>");
      return;
    }
    const auto account = s.directory_.account(p->user);
    if (!account || !account->active) {
      htmlPage(400, "Sign-in expired", "<p>Start again from the application.</p>");
      return;
    }
    if (paramOr("decision") != "approve") {
      rt().cache().take("areq:" + sha256Hex(id));
      return authorizeError(*p, "access_denied", "the user denied access");
    }
    const auth::ScopeSet sc = auth::parseScopes(p->scope);
    Grant g;
    g.clientId = p->clientId;
    g.scope = sc.granted();
    g.user = account->id;
    g.fhirUser = account->fhirUser;
    g.roles = account->roles;
    g.nonce = p->nonce;
    g.redirectUri = p->redirectUri;
    g.codeChallenge = p->codeChallenge;
    g.authTime = nowSeconds();
    const bool patientUser = account->fhirUser.rfind("Patient/", 0) == 0;
    if (needsPatient(sc)) {
      if (patientUser) {
        g.patient = account->fhirUser.substr(8);
      } else if (!p->launchPatient.empty()) {
        g.patient = p->launchPatient;
      } else {
        std::string chosen = paramOr("patient_id");
        if (chosen.empty()) chosen = paramOr("patient");
        if (!patientExists(chosen)) return consentPage(id, *p, "Choose an existing patient.");
        g.patient = chosen;
      }
      g.needBanner = !p->ehrLaunch;
    }
    if (p->ehrLaunch && sc.launchEncounter) g.encounter = p->launchEncounter;
    if (p->ehrLaunch && !p->launchPatient.empty() && g.patient.empty() && sc.launch) g.patient = p->launchPatient;
    // Single use: a second submit of the same page finds nothing.
    if (!rt().cache().take("areq:" + sha256Hex(id))) {
      htmlPage(400, "Sign-in expired", "<p>This page was used already. Start again from the application.</p>");
      return;
    }
    const std::string code = randomToken();
    rt().cache().set("code:" + sha256Hex(code), g.toJson(), std::chrono::seconds(cfg().codeSeconds));
    authorizeRedirect(*p, "code=" + code);
  }

  bool patientExists(const std::string& id) {
    if (id.empty() || id.size() > 64) return false;
    try {
      auto v = s.service_.read("Patient", id);
      return v && !v->deleted;
    } catch (const std::exception&) {
      return false;
    }
  }

  // ------------------------------------------------------------------ token endpoint
  // Authenticates the client of a token/introspect/revoke request. Returns nullopt (with the error
  // filled in) on failure. `requireConfidential`: public clients are refused.
  std::optional<OAuthClient> authenticateClient(OAuthError& err, bool allowPublic) {
    const std::string& h = req.authorization;
    std::string clientId = paramOr("client_id");
    if (h.size() > 6 && Poco::icompare(h.substr(0, 6), "basic ") == 0) {
      auto decoded = auth::base64NoPadDecode(std::string_view(h).substr(6));
      if (!decoded) {
        // Standard base64 with padding: strip it and retry.
        std::string t = h.substr(6);
        while (!t.empty() && (t.back() == '=' || t.back() == ' ')) t.pop_back();
        decoded = auth::base64NoPadDecode(t);
      }
      const size_t colon = decoded ? decoded->find(':') : std::string::npos;
      if (colon == std::string::npos) {
        err = {401, "invalid_client", "malformed HTTP Basic credentials"};
        return std::nullopt;
      }
      std::string id, secret;
      try {
        Poco::URI::decode(decoded->substr(0, colon), id);
        Poco::URI::decode(decoded->substr(colon + 1), secret);
      } catch (const Poco::Exception&) {
        err = {401, "invalid_client", "malformed HTTP Basic credentials"};
        return std::nullopt;
      }
      return symmetric(id, secret, err);
    }
    if (const std::string* secret = param("client_secret")) return symmetric(clientId, *secret, err);
    if (param("client_assertion") || param("client_assertion_type")) return assertion(err);
    const auto c = clientId.empty() ? std::nullopt : s.directory_.client(clientId);
    if (!c || !c->active) {
      err = {401, "invalid_client", "unknown client"};
      return std::nullopt;
    }
    if (!c->isPublic() || !allowPublic) {
      err = {401, "invalid_client", "this client must authenticate"};
      return std::nullopt;
    }
    return c;
  }

  std::optional<OAuthClient> symmetric(const std::string& id, const std::string& secret, OAuthError& err) {
    const auto c = id.empty() ? std::nullopt : s.directory_.client(id);
    const std::string digest = sha256Hex(secret);
    if (!c || !c->active || c->type != "confidential-symmetric" || !auth::constantTimeEquals(c->secretSha256, digest)) {
      err = {401, "invalid_client", "client authentication failed"};
      return std::nullopt;
    }
    return c;
  }

  std::optional<OAuthClient> assertion(OAuthError& err) {
    err = {401, "invalid_client", "client assertion refused"};
    if (paramOr("client_assertion_type") != kAssertionType) {
      err.description = "client_assertion_type must be " + std::string(kAssertionType);
      return std::nullopt;
    }
    const std::string jwt = paramOr("client_assertion");
    std::string iss, jku;
    try {
      JsonDoc payload;
      if (!payload.parse(auth::unverifiedPayload(jwt))) return std::nullopt;
      iss = payload.str("iss");
      const auto header = auth::base64urlDecode(std::string_view(jwt).substr(0, jwt.find('.')));
      JsonDoc h;
      if (!header || !h.parse(*header)) return std::nullopt;
      jku = h.str("jku");
      if (h.has("jwk") || h.has("x5u") || h.has("x5c")) {
        err.description = "embedded or remote keys other than an allow-listed jku are not accepted";
        return std::nullopt;
      }
    } catch (const auth::JoseError&) {
      err.description = "malformed client assertion";
      return std::nullopt;
    }
    const auto c = iss.empty() ? std::nullopt : s.directory_.client(iss);
    if (!c || !c->active || c->type != "confidential-asymmetric") {
      err.description = "unknown client";
      return std::nullopt;
    }
    if (!paramOr("client_id").empty() && paramOr("client_id") != c->clientId) {
      err.description = "client_id does not match the assertion";
      return std::nullopt;
    }
    std::vector<auth::Jwk> keys;
    try {
      if (!jku.empty()) {
        if (std::find(c->jku.begin(), c->jku.end(), jku) == c->jku.end()) {
          err.description = "the assertion's jku is not registered for this client";
          return std::nullopt;
        }
        keys = s.jkuKeys(jku);
      } else if (!c->jwks.empty()) {
        keys = s.clientKeys(c->jwks);
      } else if (c->jku.size() == 1) {
        keys = s.jkuKeys(c->jku.front());
      }
    } catch (const std::exception&) {
      err.description = "the client's keys could not be loaded";
      return std::nullopt;
    }
    int64_t exp = 0;
    std::string jti;
    try {
      const auto v = auth::verifyJws(jwt, keys, {auth::JwsAlg::RS384, auth::JwsAlg::ES384});
      auth::ClaimsPolicy policy;
      policy.issuer = c->clientId;
      policy.audiences = {tokenUrl(), issuer()};
      policy.requireExp = true;
      policy.requireJti = true;
      policy.requireSub = true;
      policy.maxLifetime = std::chrono::seconds(300);
      const auth::Claims claims = auth::validateClaims(v.payloadJson, policy);
      if (claims.sub != c->clientId) {
        err.description = "sub must equal the client_id";
        return std::nullopt;
      }
      exp = *claims.exp;
      if (exp - nowSeconds() > 300 + 30) {
        err.description = "the assertion's exp is more than 5 minutes ahead";
        return std::nullopt;
      }
      jti = claims.jti;
    } catch (const auth::JoseError& e) {
      err.description = std::string("client assertion refused: ") + e.what();
      return std::nullopt;
    }
    // Replay cache: a jti is good once per client until the assertion expires.
    const int64_t ttl = std::max<int64_t>(exp - nowSeconds() + 60, 1);
    if (!rt().cache().setIfAbsent("ajti:" + sha256Hex(c->clientId + "\n" + jti), "1", std::chrono::seconds(ttl))) {
      err.description = "client assertion replayed (jti seen before)";
      return std::nullopt;
    }
    return c;
  }

  std::string signAccessToken(const Grant& g, const std::string& sub, int lifetime, std::string& jtiOut, int64_t& expOut) {
    rt().maintainKeys();  // key rotation is due-checked at most hourly
    const int64_t now = nowSeconds();
    jtiOut = randomToken(18);
    expOut = now + lifetime;
    rapidjson::StringBuffer b;
    Json w(b);
    w.StartObject();
    key(w, "iss", issuer());
    key(w, "aud", req.fhirBase);
    key(w, "sub", sub);
    key(w, "client_id", g.clientId);
    key(w, "scope", g.scope);
    key(w, "jti", jtiOut);
    w.Key("iat");
    w.Int64(now);
    w.Key("exp");
    w.Int64(expOut);
    keyIf(w, "fhirUser", g.fhirUser);
    keyIf(w, "patient", g.patient);
    keyIf(w, "encounter", g.encounter);
    if (!g.roles.empty()) keyArray(w, "roles", g.roles);
    w.EndObject();
    return auth::signJws(auth::JwsAlg::RS256, rt().keys().signingKey(auth::JwsAlg::RS256), b.GetString(), "at+jwt");
  }

  std::string idToken(const Grant& g, const std::string& sub) {
    const int64_t now = nowSeconds();
    rapidjson::StringBuffer b;
    Json w(b);
    w.StartObject();
    key(w, "iss", issuer());
    key(w, "sub", sub);
    key(w, "aud", g.clientId);
    w.Key("iat");
    w.Int64(now);
    w.Key("exp");
    w.Int64(now + cfg().accessTokenSeconds);
    if (g.authTime) {
      w.Key("auth_time");
      w.Int64(g.authTime);
    }
    keyIf(w, "nonce", g.nonce);
    if (!g.fhirUser.empty()) key(w, "fhirUser", req.fhirBase + "/" + g.fhirUser);
    w.EndObject();
    return auth::signJws(auth::JwsAlg::RS256, rt().keys().signingKey(auth::JwsAlg::RS256), b.GetString(), "JWT");
  }

  std::string newRefreshToken(Grant& g) {
    if (g.family.empty()) g.family = randomToken(18);
    const std::string token = randomToken();
    rt().cache().set("rt:" + sha256Hex(token), g.toJson(), std::chrono::seconds(cfg().refreshTokenSeconds));
    return token;
  }

  // The access tokens issued under a refresh-token family that may still be valid, so that
  // revoking the family (RFC 7009 2.1: "SHOULD also invalidate all access tokens based on the same
  // authorization grant"; reuse detection) denies them too, at no cost per request: the list is
  // read only when a family is revoked. Key "famat:<family>", a JSON array of [jti, exp], expired
  // entries dropped on each update; rotation makes concurrent updates of one family exceptional.
  std::vector<std::pair<std::string, int64_t>> familyTokens(const std::string& family) {
    std::vector<std::pair<std::string, int64_t>> out;
    const auto stored = rt().cache().get("famat:" + family);
    if (!stored) return out;
    rapidjson::Document list;
    list.Parse(stored->c_str());
    if (list.HasParseError() || !list.IsArray()) return out;
    for (const auto& e : list.GetArray()) {
      if (e.IsArray() && e.Size() == 2 && e[0].IsString() && e[1].IsInt64()) out.emplace_back(e[0].GetString(), e[1].GetInt64());
    }
    return out;
  }

  void rememberFamilyToken(const std::string& family, const std::string& jti, int64_t exp) {
    if (family.empty() || jti.empty()) return;
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    rapidjson::StringBuffer b;
    rapidjson::Writer<rapidjson::StringBuffer> w(b);
    w.StartArray();
    int64_t last = exp;
    auto entry = [&](const std::string& id, int64_t e) {
      w.StartArray();
      w.String(id.c_str(), static_cast<rapidjson::SizeType>(id.size()));
      w.Int64(e);
      w.EndArray();
      last = std::max(last, e);
    };
    for (const auto& [id, e] : familyTokens(family)) {
      if (e > now) entry(id, e);
    }
    entry(jti, exp);
    w.EndArray();
    rt().cache().set("famat:" + family, b.GetString(), std::chrono::seconds(std::max<int64_t>(last - now + 60, 1)));
  }

  // Revokes a refresh-token family: no refresh token of it is accepted again, and every access
  // token issued under it is denied.
  void revokeFamily(const std::string& family) {
    rt().cache().set("rtfam:" + family, "revoked", std::chrono::seconds(cfg().refreshTokenSeconds));
    for (const auto& [jti, exp] : familyTokens(family)) rt().denyToken(jti, exp);
  }

  void tokenResponse(Grant& g, const std::string& grantType, bool userToken) {
    const auth::ScopeSet sc = auth::parseScopes(g.scope);
    std::string jti;
    int64_t exp = 0;
    const int lifetime = userToken ? cfg().accessTokenSeconds : cfg().backendTokenSeconds;
    const std::string sub = userToken ? g.user : g.clientId;
    const std::string at = signAccessToken(g, sub, lifetime, jti, exp);
    std::string refresh;
    if (userToken && (sc.offlineAccess || sc.onlineAccess)) {
      refresh = newRefreshToken(g);
      rememberFamilyToken(g.family, jti, exp);
    }
    rapidjson::StringBuffer b;
    Json w(b);
    w.StartObject();
    key(w, "access_token", at);
    key(w, "token_type", "Bearer");
    w.Key("expires_in");
    w.Int(lifetime);
    key(w, "scope", g.scope);
    if (!refresh.empty()) key(w, "refresh_token", refresh);
    if (userToken && sc.openid && sc.fhirUser) key(w, "id_token", idToken(g, sub));
    keyIf(w, "patient", g.patient);
    keyIf(w, "encounter", g.encounter);
    if (userToken) {
      w.Key("need_patient_banner");
      w.Bool(g.needBanner);
      key(w, "smart_style_url", cfg().smartStyleUrl.empty() ? issuer() + "/auth/smart-style.json" : cfg().smartStyleUrl);
    }
    w.EndObject();
    json(200, b.GetString());
    noStore();
    audit(AuthEvent::Type::TokenIssued, true, sub, g.clientId, "", grantType, jti, g.fhirUser, g.patient);
  }

  void token() {
    if (req.method != "POST") return oauthError({405, "invalid_request", "use POST"});
    if (req.contentType != "application/x-www-form-urlencoded") {
      return oauthError({400, "invalid_request", "send application/x-www-form-urlencoded parameters"});
    }
    if (repeated()) return oauthError({400, "invalid_request", "a parameter was given more than once"});
    const std::string grantType = paramOr("grant_type");
    OAuthError err{};
    auto refuse = [&](const OAuthError& e, const std::string& client) {
      audit(AuthEvent::Type::TokenRefused, false, "", client, e.error + ": " + e.description, grantType);
      oauthError(e);
    };
    if (grantType != "authorization_code" && grantType != "refresh_token" && grantType != "client_credentials") {
      return refuse({400, "unsupported_grant_type", "grant_type must be authorization_code, refresh_token or client_credentials"}, "");
    }
    const auto client = authenticateClient(err, grantType != "client_credentials");
    if (!client) return refuse(err, paramOr("client_id"));
    if (grantType == "authorization_code") {
      const std::string code = paramOr("code");
      auto stored = code.empty() ? std::nullopt : rt().cache().take("code:" + sha256Hex(code));
      auto g = stored ? Grant::fromJson(*stored) : std::nullopt;
      if (!g) return refuse({400, "invalid_grant", "unknown, expired or used authorization code"}, client->clientId);
      if (g->clientId != client->clientId) return refuse({400, "invalid_grant", "the code was issued to another client"}, client->clientId);
      if (paramOr("redirect_uri") != g->redirectUri) return refuse({400, "invalid_grant", "redirect_uri does not match"}, client->clientId);
      const std::string verifier = paramOr("code_verifier");
      if (!validPkceVerifier(verifier)) return refuse({400, "invalid_grant", "a valid code_verifier is required (PKCE)"}, client->clientId);
      if (!auth::constantTimeEquals(auth::base64urlEncode(sha256Raw(verifier)), g->codeChallenge)) {
        return refuse({400, "invalid_grant", "code_verifier does not match the code_challenge"}, client->clientId);
      }
      return tokenResponse(*g, grantType, true);
    }
    if (grantType == "refresh_token") {
      const std::string token = paramOr("refresh_token");
      if (token.empty() || token.size() > 200) return refuse({400, "invalid_grant", "refresh_token is required"}, client->clientId);
      const std::string h = sha256Hex(token);
      auto stored = rt().cache().take("rt:" + h);
      if (!stored) {
        // A rotated token presented again: someone holds a copy. Revoke the whole family.
        if (auto fam = rt().cache().get("rtused:" + h)) {
          revokeFamily(*fam);
          logEvent("warning", "auth: refresh token reuse detected; the token family is revoked");
          return refuse({400, "invalid_grant", "refresh token reuse detected; the grant is revoked"}, client->clientId);
        }
        return refuse({400, "invalid_grant", "unknown, expired or revoked refresh token"}, client->clientId);
      }
      auto g = Grant::fromJson(*stored);
      if (!g || g->clientId != client->clientId) {
        return refuse({400, "invalid_grant", "the refresh token was issued to another client"}, client->clientId);
      }
      rt().cache().set("rtused:" + h, g->family, std::chrono::seconds(cfg().refreshTokenSeconds));
      if (rt().cache().get("rtfam:" + g->family)) {
        return refuse({400, "invalid_grant", "the refresh token has been revoked"}, client->clientId);
      }
      if (const std::string* narrower = param("scope")) {
        const auto had = splitWords(g->scope);
        for (const auto& w : splitWords(*narrower)) {
          if (std::find(had.begin(), had.end(), w) == had.end()) {
            return refuse({400, "invalid_scope", "a refresh may only narrow the scope: " + w}, client->clientId);
          }
        }
        g->scope = auth::parseScopes(*narrower).granted();
      }
      return tokenResponse(*g, grantType, true);
    }
    // client_credentials: backend services, private_key_jwt only.
    if (client->type != "confidential-asymmetric") {
      return refuse({400, "unauthorized_client", "client_credentials needs private_key_jwt client authentication"}, client->clientId);
    }
    Grant g;
    g.clientId = client->clientId;
    g.roles = client->roles;
    auth::ScopeSet sc;
    try {
      sc = auth::parseScopes(paramOr("scope"));
    } catch (const auth::ScopeError& e) {
      return refuse({400, "invalid_scope", e.what()}, client->clientId);
    }
    if (sc.context() != auth::ScopeContext::System || sc.launch || sc.launchPatient || sc.openid || sc.offlineAccess) {
      return refuse({400, "invalid_scope", "client_credentials grants system/ scopes only"}, client->clientId);
    }
    if (!client->scopes.empty()) {
      const auto allowed = splitWords(client->scopes);
      for (const auto& w : splitWords(paramOr("scope"))) {
        if (!scopeAllowed(w, allowed)) return refuse({400, "invalid_scope", "scope not allowed for this client: " + w}, client->clientId);
      }
    }
    g.scope = sc.granted();
    tokenResponse(g, grantType, false);
  }

  // ------------------------------------------------------------------ introspect / revoke
  // Our own access token, signature and issuer checked (expiry reported, not thrown).
  std::optional<auth::Claims> ownAccessToken(const std::string& token, bool allowExpired) {
    try {
      const auto v = auth::verifyJws(token, rt().keys().verificationKeys(), {auth::JwsAlg::RS256, auth::JwsAlg::ES384});
      if (v.typ != "at+jwt") return std::nullopt;
      auth::ClaimsPolicy p;
      p.issuer = issuer();
      if (allowExpired) p.leeway = std::chrono::seconds(24 * 3600);
      return auth::validateClaims(v.payloadJson, p);
    } catch (const auth::JoseError&) {
      return std::nullopt;
    }
  }

  void introspect() {
    if (req.method != "POST") return oauthError({405, "invalid_request", "use POST"});
    // Callers: a confidential client, or anyone holding a valid access token of ours.
    bool allowed = false;
    if (req.authorization.size() > 7 && Poco::icompare(req.authorization.substr(0, 7), "bearer ") == 0) {
      try {
        (void)rt().authenticate(req.authorization, req.fhirBase);
        allowed = true;
      } catch (const AuthError&) {
      }
    } else {
      OAuthError err{};
      allowed = authenticateClient(err, false).has_value();
    }
    if (!allowed) return oauthError({401, "invalid_client", "introspection needs client authentication or a bearer token"});
    const std::string token = paramOr("token");
    rapidjson::StringBuffer b;
    Json w(b);
    w.StartObject();
    bool active = false;
    if (auto claims = ownAccessToken(token, false)) {
      bool denied = false;
      try {
        denied = rt().cache().get("deny:" + claims->jti).has_value();
      } catch (const auth::CacheUnavailable&) {
        throw;
      }
      if (!denied) {
        active = true;
        w.Key("active");
        w.Bool(true);
        key(w, "token_type", "Bearer");
        key(w, "iss", claims->iss);
        key(w, "sub", claims->sub);
        if (!claims->aud.empty()) key(w, "aud", claims->aud.front());
        key(w, "jti", claims->jti);
        w.Key("exp");
        w.Int64(*claims->exp);
        if (claims->iat) {
          w.Key("iat");
          w.Int64(*claims->iat);
        }
        for (const char* k : {"scope", "client_id", "fhirUser", "patient", "encounter"}) {
          if (auto v = claims->stringClaim(k)) key(w, k, *v);
        }
      }
    } else if (!token.empty() && token.size() < 200) {
      if (auto stored = rt().cache().get("rt:" + sha256Hex(token))) {
        auto g = Grant::fromJson(*stored);
        if (g && !rt().cache().get("rtfam:" + g->family)) {
          active = true;
          w.Key("active");
          w.Bool(true);
          key(w, "token_type", "refresh_token");
          key(w, "client_id", g->clientId);
          key(w, "scope", g->scope);
          keyIf(w, "sub", g->user);
          keyIf(w, "patient", g->patient);
          keyIf(w, "fhirUser", g->fhirUser);
        }
      }
    }
    if (!active) {
      w.Key("active");
      w.Bool(false);
    }
    w.EndObject();
    json(200, b.GetString());
    noStore();
  }

  void revoke() {
    if (req.method != "POST") return oauthError({405, "invalid_request", "use POST"});
    OAuthError err{};
    const auto client = authenticateClient(err, true);
    if (!client) return oauthError(err);
    const std::string token = paramOr("token");
    if (auto claims = ownAccessToken(token, true)) {
      // Only the client the token was issued to may revoke it (RFC 7009 2.1); others get 200 anyway.
      if (claims->stringClaim("client_id").value_or("") == client->clientId && claims->exp) {
        rt().denyToken(claims->jti, *claims->exp);
        audit(AuthEvent::Type::Revoked, true, claims->sub, client->clientId, "access token", "", claims->jti,
              claims->stringClaim("fhirUser").value_or(""), claims->stringClaim("patient").value_or(""));
      }
    } else if (!token.empty() && token.size() < 200) {
      const std::string h = sha256Hex(token);
      if (auto stored = rt().cache().get("rt:" + h)) {
        auto g = Grant::fromJson(*stored);
        if (g && g->clientId == client->clientId) {
          revokeFamily(g->family);
          rt().cache().remove("rt:" + h);
          audit(AuthEvent::Type::Revoked, true, g->user, client->clientId, "refresh token family", "", "", g->fhirUser,
                g->patient);
        }
      }
    }
    json(200, "{}");
    noStore();
  }

  // ------------------------------------------------------------------ admin API
  // Admin access: auth off (open, loopback), a write static token, or a user token with role admin.
  bool adminAllowed(bool ehrLaunch = false) {
    try {
      const auth::AccessContext a = rt().authenticate(req.authorization, req.fhirBase);
      if (a.kind == auth::AccessContext::Kind::Open) return true;
      if (a.kind == auth::AccessContext::Kind::Service) {
        if (a.serviceWrite) return true;
        adminDenied(403, "This token may read but not write");
        return false;
      }
      const bool admin = std::find(a.roles.begin(), a.roles.end(), "admin") != a.roles.end();
      const bool staff = !a.roles.empty() && std::find(a.roles.begin(), a.roles.end(), "patient") == a.roles.end() &&
                         a.fhirUser.rfind("Patient/", 0) != 0;
      if (a.kind == auth::AccessContext::Kind::User && (admin || (ehrLaunch && staff))) return true;
      adminDenied(403, ehrLaunch ? "EHR launches need a staff user" : "This needs the admin role");
      return false;
    } catch (const AuthError& e) {
      adminDenied(e.status(), e.what());
      r.headers.emplace_back("WWW-Authenticate", e.challenge());
      return false;
    }
  }
  void adminDenied(int status, const std::string& text) {
    rapidjson::StringBuffer b;
    Json w(b);
    w.StartObject();
    key(w, "error", status == 401 ? "unauthorized" : "forbidden");
    key(w, "error_description", text);
    w.EndObject();
    json(status, b.GetString());
  }
  void adminError(int status, const std::string& text) {
    rapidjson::StringBuffer b;
    Json w(b);
    w.StartObject();
    key(w, "error", status == 404 ? "not_found" : "invalid_request");
    key(w, "error_description", text);
    w.EndObject();
    json(status, b.GetString());
  }

  static void accountJson(Json& w, const Account& a) {
    w.StartObject();
    key(w, "id", a.id);
    keyArray(w, "roles", a.roles);
    keyIf(w, "fhirUser", a.fhirUser);
    keyIf(w, "name", a.displayName);
    w.Key("active");
    w.Bool(a.active);
    w.EndObject();
  }
  static void clientJson(Json& w, const OAuthClient& c) {
    w.StartObject();
    key(w, "client_id", c.clientId);
    keyIf(w, "name", c.name);
    key(w, "type", c.type);
    keyArray(w, "redirect_uris", c.redirectUris);
    key(w, "scope", c.scopes);
    if (!c.jwks.empty()) {
      rapidjson::Document d;
      d.Parse(c.jwks.c_str());
      w.Key("jwks");
      d.Accept(w);
    }
    if (!c.jku.empty()) keyArray(w, "jku", c.jku);
    if (!c.roles.empty()) keyArray(w, "roles", c.roles);
    w.Key("active");
    w.Bool(c.active);
    w.EndObject();
  }

  void adminUsers() {
    if (!adminAllowed()) return;
    const auto& seg = req.segments;
    rapidjson::StringBuffer b;
    Json w(b);
    try {
      if (seg.size() == 2) {
        if (req.method == "GET") {
          w.StartObject();
          w.Key("users");
          w.StartArray();
          for (const auto& a : s.directory_.accounts()) accountJson(w, a);
          w.EndArray();
          w.EndObject();
          return json(200, b.GetString());
        }
        if (req.method != "POST") return adminError(405, "use GET or POST");
        JsonDoc j;
        if (!j.parse(req.body)) return adminError(400, "send a JSON object");
        Account a;
        a.id = j.str("id");
        a.roles = j.strings("roles");
        a.fhirUser = j.str("fhirUser");
        a.displayName = j.str("name");
        for (const auto& role : a.roles) {
          if (!rt().roles().find(role)) return adminError(400, "unknown role " + role);
        }
        s.directory_.addAccount(a, j.str("password"));
        audit(AuthEvent::Type::Admin, true, a.id, "", "user created");
        accountJson(w, a);
        return json(201, b.GetString());
      }
      const std::string id = seg[2];
      if (seg.size() == 3) {
        auto a = s.directory_.account(id);
        if (!a) return adminError(404, "no such user");
        if (req.method == "PUT") {
          JsonDoc j;
          if (!j.parse(req.body)) return adminError(400, "send a JSON object");
          if (j.has("roles")) a->roles = j.strings("roles");
          for (const auto& role : a->roles) {
            if (!rt().roles().find(role)) return adminError(400, "unknown role " + role);
          }
          if (j.has("fhirUser")) a->fhirUser = j.str("fhirUser");
          if (j.has("name")) a->displayName = j.str("name");
          if (j.has("active")) a->active = j.boolean("active");
          s.directory_.updateAccount(*a);
          audit(AuthEvent::Type::Admin, true, a->id, "", "user updated");
        } else if (req.method != "GET") {
          return adminError(405, "use GET or PUT");
        }
        accountJson(w, *a);
        return json(200, b.GetString());
      }
      if (seg.size() == 4 && seg[3] == "password") {
        if (req.method != "POST") return adminError(405, "use POST");
        JsonDoc j;
        if (!j.parse(req.body)) return adminError(400, "send a JSON object");
        s.directory_.setPassword(id, j.str("password"));
        rt().cache().remove("lock:" + sha256Hex(id));
        audit(AuthEvent::Type::Admin, true, id, "", "password reset");
        r.status = 204;
        r.body.clear();
        return;
      }
      adminError(404, "no such endpoint");
    } catch (const std::invalid_argument& e) {
      adminError(400, e.what());
    } catch (const std::out_of_range&) {
      adminError(404, "no such user");
    }
  }

  void adminClients() {
    if (!adminAllowed()) return;
    const auto& seg = req.segments;
    rapidjson::StringBuffer b;
    Json w(b);
    try {
      if (seg.size() == 2) {
        if (req.method == "GET") {
          w.StartObject();
          w.Key("clients");
          w.StartArray();
          for (const auto& c : s.directory_.clients()) clientJson(w, c);
          w.EndArray();
          w.EndObject();
          return json(200, b.GetString());
        }
        if (req.method != "POST") return adminError(405, "use GET or POST");
        JsonDoc j;
        if (!j.parse(req.body)) return adminError(400, "send a JSON object");
        OAuthClient c;
        c.clientId = j.str("client_id");
        c.name = j.str("name");
        c.type = j.str("type");
        c.redirectUris = j.strings("redirect_uris");
        c.scopes = j.has("scope") ? j.str("scope") : joinWords(j.strings("scopes"));
        auto jw = j.d.FindMember("jwks");
        if (jw != j.d.MemberEnd()) {
          rapidjson::StringBuffer jb;
          rapidjson::Writer<rapidjson::StringBuffer> jwr(jb);
          jw->value.Accept(jwr);
          c.jwks = jw->value.IsString() ? std::string(jw->value.GetString()) : std::string(jb.GetString());
        }
        c.jku = j.strings("jku");
        c.roles = j.strings("roles");
        for (const auto& role : c.roles) {
          if (!rt().roles().find(role)) return adminError(400, "unknown role " + role);
        }
        const std::string secret = s.directory_.addClient(c);
        audit(AuthEvent::Type::Admin, true, c.clientId, c.clientId, "client registered");
        // The secret is shown in this response only.
        rapidjson::StringBuffer cb;
        Json cw(cb);
        clientJson(cw, c);
        std::string out = cb.GetString();
        if (!secret.empty()) out = out.substr(0, out.size() - 1) + ",\"client_secret\":\"" + secret + "\"}";
        json(201, out);
        noStore();
        return;
      }
      if (seg.size() == 3) {
        if (req.method != "GET") return adminError(405, "use GET");
        auto c = s.directory_.client(seg[2]);
        if (!c) return adminError(404, "no such client");
        clientJson(w, *c);
        return json(200, b.GetString());
      }
      adminError(404, "no such endpoint");
    } catch (const std::invalid_argument& e) {
      adminError(400, e.what());
    }
  }

  // POST /auth/launch {"patient": id, "encounter": id} -> {"launch": handle}: an EHR launch context.
  void launch() {
    if (req.method != "POST") return adminError(405, "use POST");
    if (!adminAllowed(true)) return;
    JsonDoc j;
    if (!j.parse(req.body)) return adminError(400, "send a JSON object");
    const std::string patient = j.str("patient");
    if (!patient.empty() && !patientExists(patient)) return adminError(400, "no such patient");
    const std::string encounter = j.str("encounter");
    if (encounter.size() > 64) return adminError(400, "bad encounter id");
    rapidjson::StringBuffer vb;
    Json vw(vb);
    vw.StartObject();
    key(vw, "patient", patient);
    key(vw, "encounter", encounter);
    vw.EndObject();
    const std::string handle = randomToken(18);
    rt().cache().set("launch:" + sha256Hex(handle), vb.GetString(), std::chrono::seconds(cfg().launchSeconds));
    json(201, "{\"launch\":\"" + handle + "\"}");
    noStore();
  }

  // ------------------------------------------------------------------ dispatch
  void run() {
    dispatch();
    // Browser apps (public clients) read discovery and keys and call the token endpoint from
    // their own origin: those answers carry no cookies or ambient authority, so any origin may read them.
    const auto& seg = req.segments;
    const std::string last = seg.empty() ? "" : seg.back();
    if (last == "smart-configuration" || last == "openid-configuration" || last == "jwks" || last == "token" ||
        last == "revoke" || last == "smart-style.json") {
      r.headers.emplace_back("Access-Control-Allow-Origin", "*");
    }
  }

  void dispatch() {
    const auto& seg = req.segments;
    if (req.method == "POST" && req.contentType == "application/x-www-form-urlencoded") {
      form = parseForm(req.body);
    } else if (req.method == "GET") {
      form = req.query;
    }
    if (seg.size() >= 2 && seg[0] == "admin") {
      return seg[1] == "users" ? adminUsers() : adminClients();
    }
    const bool wellKnown = (seg.size() == 2 && seg[0] == ".well-known") || (seg.size() == 3 && seg[1] == ".well-known");
    if (wellKnown) {
      if (req.method != "GET") return adminError(405, "use GET");
      if (seg.back() == "smart-configuration") return smartConfiguration();
      if (seg.back() == "openid-configuration") return openidConfiguration();
      return adminError(404, "no such document");
    }
    const std::string what = seg.size() == 2 ? seg[1] : "";
    if (what == "authorize") return authorize();
    if (what == "token") return token();
    if (what == "introspect") return introspect();
    if (what == "revoke") return revoke();
    if (what == "launch") return launch();
    if (what == "jwks") {
      json(200, rt().keys().jwks());
      r.headers.emplace_back("Cache-Control", "max-age=300");
      return;
    }
    if (what == "smart-style.json") {
      json(200, R"({"color_background":"#f6f6f4","color_error":"#a00000","color_highlight":"#2a5d84",)"
                R"("color_modal_backdrop":"","color_success":"#2e7d32","color_text":"#222222",)"
                R"("dim_border_radius":"4px","dim_font_size":"16px","dim_spacing_size":"16px",)"
                R"("font_family_body":"system-ui, sans-serif","font_family_heading":"system-ui, sans-serif"})");
      return;
    }
    adminError(404, "no such endpoint under /auth");
  }
};

AuthServer::AuthServer(AuthRuntime& runtime, fhir::ResourceService& service, fhir::SearchEngine& search)
    : runtime_(runtime), service_(service), search_(search), directory_(service.store()) {}

std::vector<auth::Jwk> AuthServer::clientKeys(const std::string& jwksText) {
  const std::string k = sha256Raw(jwksText);
  {
    std::lock_guard<std::mutex> lock(keysMutex_);
    auto it = parsedJwks_.find(k);
    if (it != parsedJwks_.end()) return it->second;
  }
  std::vector<auth::Jwk> keys = auth::parseJwks(jwksText);  // throws JoseError
  std::lock_guard<std::mutex> lock(keysMutex_);
  if (parsedJwks_.size() >= 1000) parsedJwks_.clear();
  parsedJwks_[k] = keys;
  return keys;
}

std::vector<auth::Jwk> AuthServer::jkuKeys(const std::string& url) {
  const int64_t now = nowSeconds();
  {
    std::lock_guard<std::mutex> lock(keysMutex_);
    auto it = fetchedJku_.find(url);
    if (it != fetchedJku_.end() && it->second.first > now) return it->second.second;
  }
  std::vector<auth::Jwk> keys = auth::parseJwks(fetchJwks(url));
  std::lock_guard<std::mutex> lock(keysMutex_);
  if (fetchedJku_.size() >= 1000) fetchedJku_.clear();
  fetchedJku_[url] = {now + 300, keys};
  return keys;
}

bool AuthServer::handles(const std::vector<std::string>& seg) {
  if (seg.empty()) return false;
  if (seg[0] == "auth") return seg.size() == 2;
  if (seg[0] == ".well-known") return seg.size() == 2;
  if (seg[0] == "fhir" && seg.size() == 3 && seg[1] == ".well-known") return true;
  if (seg[0] == "admin" && seg.size() >= 2 && (seg[1] == "users" || seg[1] == "clients")) return true;
  return false;
}

AuthHttpResponse AuthServer::handle(const AuthHttpRequest& request) {
  Impl impl(*this, request);
  try {
    impl.run();
  } catch (const auth::CacheUnavailable&) {
    // Everything here needs the cache (codes, sessions, replay cache): 503 until it returns.
    impl.r = AuthHttpResponse{};
    impl.oauthError({503, "temporarily_unavailable", "the token service is temporarily unavailable; retry shortly"});
    impl.r.headers.emplace_back("Retry-After", "5");
  } catch (const fhir::StoreUnavailable& e) {
    logEvent("error", std::string("auth: store unavailable: ") + e.what());
    impl.r = AuthHttpResponse{};
    impl.oauthError({503, "temporarily_unavailable", "the account store is temporarily unavailable"});
  }
  return std::move(impl.r);
}

std::string AuthServer::capabilitySecurityJson(const std::string& fhirBase) const {
  const std::string iss = runtime_.issuer(fhirBase);
  rapidjson::StringBuffer b;
  Json w(b);
  w.StartObject();
  w.Key("extension");
  w.StartArray();
  w.StartObject();
  key(w, "url", "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris");
  w.Key("extension");
  w.StartArray();
  for (const auto& [name, path] : std::vector<std::pair<std::string, std::string>>{
           {"authorize", "/auth/authorize"}, {"token", "/auth/token"}, {"introspect", "/auth/introspect"},
           {"revoke", "/auth/revoke"}}) {
    w.StartObject();
    key(w, "url", name);
    key(w, "valueUri", iss + path);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  w.EndArray();
  w.Key("service");
  w.StartArray();
  w.StartObject();
  w.Key("coding");
  w.StartArray();
  w.StartObject();
  key(w, "system", "http://terminology.hl7.org/CodeSystem/restful-security-service");
  key(w, "code", "SMART-on-FHIR");
  key(w, "display", "SMART-on-FHIR");
  w.EndObject();
  w.EndArray();
  key(w, "text", "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)");
  w.EndObject();
  w.EndArray();
  key(w, "description", "SMART App Launch 2 authorization server at " + iss + "/auth (discovery: " + fhirBase +
                            "/.well-known/smart-configuration)");
  w.EndObject();
  return b.GetString();
}

}  // namespace hearth::server
