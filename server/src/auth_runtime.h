#pragma once
// AuthRuntime: the security state of one running Hearth (issue 5), shared by all request threads.
//
// Owns the signing keys (KeyStore, `auth.keys-dir`), the short-lived state cache (InProcessCache,
// or RedisCache when `cache.redis.url` is set) and the role catalog (`auth.roles-file`, default:
// config/roles.properties as embedded into the binary at build time). It turns the Authorization
// header of a request into an AccessContext (access.h) and offers the building blocks the
// embedded authorization server (auth_server.h) needs: issuer, token signing, denylist.
//
// authenticate(header, fhirBase):
//   auth.enabled=false             -> Kind::Open (no header looked at).
//   no / non-Bearer header         -> AuthError(401, "") : WWW-Authenticate without error code.
//   a static token of auth.tokens  -> Kind::Service (serviceWrite from its :read/:write suffix).
//   a JWT                          -> verified per the ACCESS-TOKEN CLAIM CONTRACT of access.h:
//       signature against KeyStore::verificationKeys() (RS256/RS384/ES384, header typ at+jwt),
//       iss == issuer(fhirBase), aud contains fhirBase, exp in the future, exp - iat <= 3600,
//       required claims iss/aud/sub/jti/exp/scope, scope parses (scopes.h), jti not on the
//       denylist. client_credentials tokens (system/ scopes, sub == client_id) -> Kind::Backend,
//       everything else -> Kind::User.
//   anything else                  -> AuthError(401, "invalid_token").
//
// Denylist and Redis outages (decision, issue 5 part 4: "requests with valid JWTs still work"):
// the denylist lookup fails OPEN when the shared cache throws CacheUnavailable, unless
// `auth.denylist.fail-closed=true` (then the request gets 503). Revocations made by this node are
// also kept in a small in-process denylist that is consulted first, so this node still refuses
// tokens it revoked while Redis is away. Tokens live at most one hour, which bounds the exposure.
//
// Audit hook: setAuditSink(fn) installs a callback that receives an AuthEvent for every login
// (success and failure), token issue or refusal, revocation and authentication denial. The sink is
// called synchronously on the request thread, must be thread-safe and must not throw (exceptions
// are swallowed and logged). Events never carry passwords, codes or tokens, only the token's jti.
//
// Thread-safety: every member may be called concurrently after construction.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "hearth/auth/access.h"
#include "hearth/auth/cache.h"
#include "hearth/auth/keystore.h"
#include "hearth/auth/policy.h"
#include "hearth/server/config.h"

namespace hearth::server {

// An authentication failure: the HTTP layer answers `status` (401) with
//   WWW-Authenticate: Bearer realm="hearth"[, error="<errorCode>"]
// The text is safe to show (it never contains the token).
class AuthError : public std::runtime_error {
 public:
  AuthError(int status, std::string errorCode, const std::string& text)
      : std::runtime_error(text), status_(status), errorCode_(std::move(errorCode)) {}
  int status() const { return status_; }
  const std::string& errorCode() const { return errorCode_; }
  // The WWW-Authenticate header value for this error.
  std::string challenge() const;

 private:
  int status_;
  std::string errorCode_;
};

// What happened, for the audit trail (see the header comment). Plain data, safe to store.
struct AuthEvent {
  enum class Type {
    Login,         // a user signed in at /auth/authorize (outcome success or failure)
    TokenIssued,   // /auth/token issued an access token
    TokenRefused,  // /auth/token refused a request (bad client, code, PKCE, assertion ...)
    Revoked,       // /auth/revoke revoked a token (or a refresh-token family)
    AccessDenied,  // a request to the FHIR API was refused authentication (401)
    Admin,         // an account or client was created or changed
  };
  Type type = Type::Login;
  bool success = true;
  std::string subject;      // account id or client id (empty if unknown)
  std::string clientId;
  std::string fhirUser;
  std::string patient;      // launch patient id, if any
  std::string jti;          // access token id, if any
  std::string grantType;    // for token events
  std::string reason;       // short machine-readable reason for failures ("invalid_grant: ...")
  std::string remoteAddress;
};
using AuditSink = std::function<void(const AuthEvent&)>;

class AuthRuntime {
 public:
  // Builds the runtime from the configuration: creates/loads the keys (keys dir 0700), connects the
  // cache lazily (Redis is contacted by the first operation), loads the role catalog. Throws
  // ConfigError for a bad roles file or Redis URL, std::runtime_error for key-store I/O problems.
  explicit AuthRuntime(const Config& config);
  ~AuthRuntime();

  bool enabled() const { return config_.auth.enabled; }
  const AuthConfig& settings() const { return config_.auth; }

  // See the header comment. Throws AuthError; throws auth::CacheUnavailable only with
  // auth.denylist.fail-closed=true.
  auth::AccessContext authenticate(const std::string& authorizationHeader, const std::string& fhirBase);

  // The issuer for a FHIR base: auth.issuer if configured, else the base without its trailing
  // "/fhir" (e.g. http://host:8080). The authorization server lives at <issuer>/auth/...
  std::string issuer(const std::string& fhirBase) const;

  // Puts `jti` on the denylist until `expiresAt` (epoch seconds). Throws auth::CacheUnavailable.
  void denyToken(const std::string& jti, int64_t expiresAt);

  auth::KeyStore& keys() { return *keys_; }
  auth::Cache& cache() { return *cache_; }
  const auth::RoleCatalog& roles() const { return roles_; }

  void setAuditSink(AuditSink sink);
  // Delivers `event` to the sink, if any (never throws).
  void audit(const AuthEvent& event) const;

  // Runs KeyStore::maintain() at most hourly (called from the request path, cheap otherwise).
  void maintainKeys();

 private:
  auth::AccessContext serviceToken(const std::string& token) const;
  auth::AccessContext jwtToken(const std::string& token, const std::string& fhirBase);
  bool denied(const std::string& jti);

  const Config& config_;
  std::unique_ptr<auth::KeyStore> keys_;
  std::unique_ptr<auth::Cache> cache_;
  std::unique_ptr<auth::Cache> localDeny_;  // revocations made by this node (see header comment)
  auth::RoleCatalog roles_;
  mutable std::mutex sinkMutex_;
  std::shared_ptr<const AuditSink> sink_;
  std::atomic<int64_t> lastMaintain_{0};
  std::atomic<int64_t> lastOutageLog_{0};
};

// The role catalog embedded at build time (config/roles.properties of the source tree).
const char* embeddedRolesProperties();

}  // namespace hearth::server
