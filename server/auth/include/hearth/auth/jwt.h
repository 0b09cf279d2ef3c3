// JWS compact serialization (RFC 7515) and JWT claims validation (RFC 7519) for access tokens,
// id_tokens and SMART backend-service client assertions.
//
// Security rules enforced here (the classic JWT pitfalls):
// - Only RS256, RS384 and ES384 exist (JwsAlg); "none", HS*, and any alg not in the caller's
//   `allowed` list are refused before any key is looked at.
// - The key must fit the alg (RSA for RS*, EC P-384 for ES384); a kid in the header must name one
//   of the supplied keys. The header's jku/jwk/x5u are never fetched or used: the caller supplies
//   the keys (our KeyStore, or the client's registered JWKS) and may compare `jku` itself.
// - A "crit" header is refused (no extensions are understood), as is a header or payload that is
//   not a JSON object, and base64url with padding or non-canonical bits.
// - ES384 signatures are the 96-byte R||S form of RFC 7518 §3.4 (converted to/from DER for OpenSSL);
//   any other length is a bad signature.
// All functions are thread-safe. Errors are JoseError (jwk.h) with a reason.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/auth/jwk.h"

namespace hearth::auth {

// Signs `payloadJson` (must be a JSON object text) as a compact JWS with header
// {"alg":..,"typ":typ,"kid":key.kid}. The key must hold a private key fitting `alg`.
std::string signJws(JwsAlg alg, const Jwk& key, std::string_view payloadJson, std::string_view typ = "JWT");

struct VerifiedJws {
  JwsAlg alg;
  std::string kid;          // header kid ("" if absent)
  std::string typ;          // header typ ("" if absent)
  std::string jku;          // header jku ("" if absent): informational, never fetched
  std::string headerJson;   // decoded header
  std::string payloadJson;  // decoded payload (a JSON object)
};

// Verifies a compact JWS against `keys`. With a kid in the header, only the key with that kid is
// tried; without one, every key fitting the alg is tried. Throws JoseError.
VerifiedJws verifyJws(std::string_view compact, const std::vector<Jwk>& keys, const std::set<JwsAlg>& allowed);

// Decodes the payload of a compact JWS WITHOUT verifying it (to read `iss` of a client assertion
// before its keys are known). Never base an authorization decision on it. Throws JoseError.
std::string unverifiedPayload(std::string_view compact);

struct ClaimsPolicy {
  std::string issuer;                  // required iss (empty: not checked)
  std::vector<std::string> audiences;  // aud must contain one of these (empty: not checked)
  std::chrono::seconds leeway{30};     // clock skew tolerated for exp/nbf/iat
  bool requireExp = true;
  bool requireIat = false;
  bool requireJti = false;
  bool requireSub = false;
  // Upper bound on exp - iat (or exp - now without iat): e.g. 5 min for client assertions.
  std::optional<std::chrono::seconds> maxLifetime;
  // Seconds since the epoch; 0 = the system clock.
  int64_t now = 0;
};

// The registered claims of a validated token (the payload stays available as JSON text).
struct Claims {
  std::string iss, sub, jti;
  std::vector<std::string> aud;  // a string aud becomes a one-element list
  std::optional<int64_t> exp, nbf, iat;
  std::string json;
  // A top-level string claim ("scope", "client_id", "fhirUser", ...), nullopt when absent or not a
  // string.
  std::optional<std::string> stringClaim(std::string_view name) const;
};

// Checks exp (now - leeway < exp), nbf (nbf <= now + leeway), iat (not after now + leeway),
// iss, aud, max lifetime and the required claims; numeric dates must be JSON numbers (integer or
// fractional, truncated). Throws JoseError with Expired/NotYetValid/IssuedInFuture/BadIssuer/
// BadAudience/LifetimeTooLong/MissingClaim/Malformed.
Claims validateClaims(std::string_view payloadJson, const ClaimsPolicy& policy);

}  // namespace hearth::auth
