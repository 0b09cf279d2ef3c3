#pragma once
// AuthServer: the embedded SMART App Launch 2 authorization server and the account/client admin
// API (issue 5). http_front.cpp hands it every request under these paths:
//
//   GET  /.well-known/smart-configuration, /fhir/.well-known/smart-configuration
//   GET  /.well-known/openid-configuration          (same issuer as the SMART document)
//   GET  /auth/jwks                                  public signing keys (unique kid per key)
//   GET|POST /auth/authorize                         code flow: login page, consent, patient picker
//   POST /auth/token                                 authorization_code, refresh_token, client_credentials
//   POST /auth/introspect, /auth/revoke              RFC 7662 / RFC 7009
//   POST /auth/launch                                EHR launch handle {"patient","encounter"} -> {"launch"}
//   GET|POST /admin/users, GET|PUT /admin/users/{id}, POST /admin/users/{id}/password
//   GET|POST /admin/clients, GET /admin/clients/{id}
//
// Rules (README "Security" has the full list): authorization code + PKCE S256 only; exact
// redirect_uri; state required and echoed; aud must equal the FHIR base; codes, launch handles and
// pending logins are single use (Cache::take); refresh tokens rotate on every use, and presenting a
// rotated one revokes its whole family; client_credentials only with private_key_jwt (RS384/ES384,
// iss = sub = client_id, aud = token URL or issuer, exp at most 5 minutes ahead, jti never seen
// before, keys from the registered JWKS or an allow-listed jku only); login lockout after
// auth.lockout.max-failures failures. What needs the cache answers 503 while it is unreachable.
//
// Secrets (passwords, codes, refresh tokens, client secrets) are stored only as hashes (cache keys
// use SHA-256 of the value) and never logged. Thread-safe.
#include <string>
#include <utility>
#include <vector>

#include "auth_directory.h"
#include "auth_runtime.h"
#include "hearth/fhir/search.h"
#include "hearth/fhir/service.h"

namespace hearth::server {

struct AuthHttpRequest {
  std::string method;                // GET (also for HEAD) | POST | PUT ...
  std::vector<std::string> segments;  // decoded path segments
  std::vector<std::pair<std::string, std::string>> query;  // decoded URL parameters
  std::string body;                  // raw request body (form or JSON)
  std::string contentType;           // media type, lower case, without parameters
  std::string authorization;         // Authorization header
  std::string cookie;                // Cookie header
  std::string fhirBase;              // this server's FHIR base URL as the client sees it
  std::string remoteAddress;
};

struct AuthHttpResponse {
  int status = 200;
  std::string contentType = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

class AuthServer {
 public:
  AuthServer(AuthRuntime& runtime, fhir::ResourceService& service, fhir::SearchEngine& search);

  // True for the paths listed in the header comment (segments of the decoded path).
  static bool handles(const std::vector<std::string>& segments);
  // Never throws for client errors (they become OAuth/HTML/JSON error responses).
  AuthHttpResponse handle(const AuthHttpRequest& request);

  // rest.security of the CapabilityStatement: SMART-on-FHIR service + oauth-uris extension.
  std::string capabilitySecurityJson(const std::string& fhirBase) const;

  AuthDirectory& directory() { return directory_; }

 private:
  struct Impl;
  AuthRuntime& runtime_;
  fhir::ResourceService& service_;
  fhir::SearchEngine& search_;
  AuthDirectory directory_;
};

// `hearth user ...` / `hearth client ...`: the admin CLI against the configured store. Returns the
// process exit code. Passwords are read from standard input (one line), never from arguments.
int runAuthCli(const std::vector<std::string>& args, fhir::ResourceStore& store, const Config& config);

}  // namespace hearth::server
