// JSON Web Keys (RFC 7517/7518) for the algorithms Hearth speaks: RSA (RS256, RS384; >= 2048 bits)
// and EC P-384 (ES384). Used to publish our signing keys (JWKS endpoint) and to import the public
// keys registered by SMART backend-service clients (their JWKS or jku).
//
// Keys are held as OpenSSL EVP_PKEY (shared, immutable after creation: safe to use from many
// threads). Import never accepts private-key members: a client JWK with "d" (or RSA "p","q",...)
// is refused, since a client that publishes its private key must not be trusted.
// Errors: JoseError (jwt.h reasons) with a text naming the problem, never key material.
#pragma once

#include <openssl/types.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::auth {

// JWS algorithms Hearth signs and verifies. Anything else ("none", HS256, PS256, ES256 ...) is not
// representable, so it cannot be accepted by accident.
enum class JwsAlg { RS256, RS384, ES384 };
std::string algName(JwsAlg alg);
// "RS256" | "RS384" | "ES384" -> alg; anything else throws JoseError(UnsupportedAlgorithm).
JwsAlg parseAlg(std::string_view name);

// Why a JOSE operation failed; callers map all of them to invalid_token / invalid_client.
enum class JoseErrorReason {
  Malformed,             // not compact JWS / not JSON / bad base64url / bad JWK members
  UnsupportedAlgorithm,  // alg none, HS*, or not in the caller's allowed list
  KeyMismatch,           // key type or curve does not fit the alg
  KeyNotFound,           // no key with the token's kid (or no candidate key)
  BadSignature,
  Expired,
  NotYetValid,
  IssuedInFuture,
  BadIssuer,
  BadAudience,
  LifetimeTooLong,
  MissingClaim,
  Internal,  // OpenSSL failure while signing / generating
};

class JoseError : public std::runtime_error {
 public:
  JoseError(JoseErrorReason reason, const std::string& text) : std::runtime_error(text), reason_(reason) {}
  JoseErrorReason reason() const { return reason_; }

 private:
  JoseErrorReason reason_;
};

using PKeyPtr = std::shared_ptr<EVP_PKEY>;

// A public (or, for our own signing keys, private) key with its JWK metadata.
struct Jwk {
  std::string kid;
  std::string alg;  // optional "alg" member; empty when absent
  std::string use;  // optional "use" member ("sig"); empty when absent
  PKeyPtr key;
  // "RSA" or "EC".
  std::string kty() const;
  // True if this key can verify/sign `alg` (RSA >= 2048 bits for RS*, P-384 for ES384), and the
  // JWK's own "alg" (if any) equals it.
  bool fits(JwsAlg alg) const;
};

// Parses one JWK (a JSON object). Accepts kty RSA (n, e) and EC with crv P-384 (x, y: 48 bytes
// each, point checked to be on the curve). Refuses private members, other kty/crv, RSA < 2048 or > 8192 bits,
// "use" other than "sig".
Jwk parseJwk(std::string_view json);
// Parses a JWKS ({"keys":[...]}). Keys of unsupported types are skipped (a client may publish
// encryption keys too), malformed supported ones make the whole set fail. Throws JoseError.
std::vector<Jwk> parseJwks(std::string_view json);

// The public JWK of a key as a JSON object text: kty, kid, use "sig", alg (when set), n/e or
// crv/x/y. Never private members, whatever the key holds.
std::string publicJwkJson(const Jwk& key);
// {"keys":[...]} of the public parts.
std::string jwksJson(const std::vector<Jwk>& keys);
// RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key: the kid Hearth gives its keys.
std::string jwkThumbprint(const EVP_PKEY* key);

// PEM (PKCS#8 private key or SubjectPublicKeyInfo public key) <-> EVP_PKEY. Throws JoseError.
PKeyPtr loadPem(std::string_view pem);
std::string privateKeyPem(const EVP_PKEY* key);
std::string publicKeyPem(const EVP_PKEY* key);
// New key pair for `alg`: RSA 2048 for RS*, P-384 for ES384.
PKeyPtr generateKey(JwsAlg alg);

}  // namespace hearth::auth
