// AccessContext: who is asking, established once per HTTP request from the Authorization header
// (issue 5). It is the contract between the authorization server (which issues access tokens),
// the resource server's token check (which turns a token into an AccessContext) and enforcement
// (policy.h's authorize() plus compartment confinement, and the audit trail).
//
// Access-token contract (JWS compact, signed by KeyStore, header "kid" = the key's thumbprint,
// "typ" = "at+jwt"; RS256 unless configured otherwise). Claims:
//   iss        the authorization server's issuer (the same value served as "issuer" by
//              /.well-known/smart-configuration and /.well-known/openid-configuration)
//   aud        the FHIR base URL the token is for (must equal the server's /fhir base)
//   sub        the user account id (user tokens) or the client_id (backend-service tokens)
//   client_id  the OAuth client
//   scope      granted scopes, space separated (scopes.h syntax, v1 or v2)
//   jti        unique token id (denylist key on revocation; AuditEvent agent.policy)
//   iat, exp   issue and expiry time, epoch seconds (exp - iat <= 3600; <= 300 for backend services)
//   fhirUser   optional, "Practitioner/9", "Patient/123", "RelatedPerson/5" (relative reference)
//   patient    optional launch patient context (a Patient id)
//   encounter  optional launch encounter context (an Encounter id)
//   roles      optional array of hospital role names (roles.properties) of the user or client
// Tokens missing iss/aud/sub/jti/exp/scope, or signed by a key not in KeyStore::verificationKeys(),
// are rejected (401). A revoked token's jti sits in the cache denylist until its exp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hearth/auth/policy.h"
#include "hearth/auth/scopes.h"

namespace hearth::auth {

struct AccessContext {
  enum class Kind {
    Open,     // auth.enabled=false: everything allowed, nothing to confine (loopback dev only)
    User,     // a person signed in through /auth/authorize (staff or patient)
    Backend,  // a client_credentials token (system/ scopes)
    Service,  // an interim static bearer token from auth.tokens (operations tooling)
  };
  Kind kind = Kind::Open;
  std::string subject;    // account id or client id
  std::string clientId;
  std::string fhirUser;   // relative reference or empty
  std::vector<std::string> roles;
  ScopeSet scopes;
  std::string patient;    // launch patient id or empty
  std::string encounter;  // launch encounter id or empty
  std::string jti;        // token id or empty (Open / Service)
  int64_t expiresAt = 0;  // epoch seconds, 0 = none
  bool serviceWrite = false;  // Service tokens: may write

  // Open and Service contexts bypass role/scope policy (Service is limited by serviceWrite).
  bool unrestricted() const { return kind == Kind::Open || kind == Kind::Service; }
  Principal principal() const { return Principal{roles, scopes, fhirUser, patient}; }
};

}  // namespace hearth::auth
