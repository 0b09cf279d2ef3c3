#pragma once
// Helpers for suites that need Hearth with authentication on (issue 5): a known signing-key
// directory shared by the test and the server, so tests can mint access tokens themselves with
// KeyStore (exactly as the authorization server does, following access.h's claim contract), and
// server options that switch auth on.
//
// Typical use:
//   hearth::test::AuthFixture fx;                        // fresh keys dir (0700) with keys in it
//   hearth::test::HearthProcess server(fx.serverOptions());
//   server.start();
//   hearth::test::TokenSpec t;
//   t.scope = "patient/*.rs"; t.patient = "123"; t.fhirUser = "Patient/123"; t.roles = {"patient"};
//   std::string jwt = fx.mint(server, t);                 // Authorization: Bearer <jwt>
// The fixture removes its directory on destruction (unless HEARTH_TEST_KEEP=1).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hearth/auth/keystore.h"
#include "hearth_process.h"

namespace hearth::test {

// The claims of a test access token (access.h contract). Empty strings are left out.
struct TokenSpec {
  std::string sub = "test-user";
  std::string clientId = "test-client";
  std::string scope = "user/*.cruds";
  std::string fhirUser;
  std::string patient;
  std::string encounter;
  std::vector<std::string> roles;
  std::string jti;             // empty: a random one
  int64_t lifetimeSeconds = 600;
  int64_t issuedAt = 0;        // epoch seconds; 0 = now
  std::string issuer;          // empty: the server's origin (what Hearth expects by default)
  std::string audience;        // empty: the server's FHIR base
  std::string alg = "RS256";   // RS256 | ES384 (signed with the key store's active key of that alg)
  std::string typ = "at+jwt";
};

class AuthFixture {
 public:
  AuthFixture();
  ~AuthFixture();
  AuthFixture(const AuthFixture&) = delete;
  AuthFixture& operator=(const AuthFixture&) = delete;

  const std::string& keysDir() const { return keysDir_; }
  auth::KeyStore& keys() { return *keys_; }
  // ServerOptions with --set auth.enabled=true and auth.keys-dir=<keysDir>, plus `extraArgs`.
  ServerOptions serverOptions(std::vector<std::string> extraArgs = {}, std::string db = {}) const;
  // A signed access token for `server` (iss = origin, aud = FHIR base unless overridden).
  std::string mint(const HearthProcess& server, const TokenSpec& spec);

 private:
  std::string dir_;
  std::string keysDir_;
  std::unique_ptr<auth::KeyStore> keys_;
};

}  // namespace hearth::test
