#pragma once
// AuthDirectory: user accounts and registered OAuth clients of the embedded authorization server
// (issue 5), in the store's auth_account / auth_client tables (schema version 7,
// fhir/src/store_migrations.cpp), through ResourceStore::query and StoreTransaction::execute.
//
// Accounts: id (the login name: 1-64 of [A-Za-z0-9._@-]), scrypt password hash (password.h),
// roles (names of the RoleCatalog), fhirUser ("Practitioner/9", "Patient/123", "RelatedPerson/5"),
// display name, active flag.
// Clients: client_id (1-64 of [A-Za-z0-9._-]), type public | confidential-symmetric (HTTP Basic
// or client_secret_post with a server-generated secret; only its SHA-256 is stored) |
// confidential-asymmetric (private_key_jwt with the registered JWKS and/or allow-listed jku URLs),
// exact redirect URIs, allowed scopes (empty = any scope the server knows), roles (for
// client_credentials tokens).
//
// Errors: std::invalid_argument (bad input; the text is safe to show), std::out_of_range (no such
// account/client on update), fhir::StoreUnavailable (database). Thread-safe (stateless on top of the
// thread-safe store).
#include <optional>
#include <string>
#include <vector>

#include "hearth/fhir/store.h"

namespace hearth::server {

struct Account {
  std::string id;
  std::string passwordHash;
  std::vector<std::string> roles;
  std::string fhirUser;
  std::string displayName;
  bool active = true;
};

struct OAuthClient {
  std::string clientId;
  std::string name;
  std::string type;  // "public" | "confidential-symmetric" | "confidential-asymmetric"
  std::string secretSha256;
  std::vector<std::string> redirectUris;
  std::string scopes;  // allowed scopes, space separated; empty = no restriction
  std::string jwks;    // registered JWKS JSON ({"keys":[...]}), may be empty with jku
  std::vector<std::string> jku;  // allowed jku URLs
  std::vector<std::string> roles;
  bool active = true;
  bool isPublic() const { return type == "public"; }
};

class AuthDirectory {
 public:
  explicit AuthDirectory(fhir::ResourceStore& store) : store_(store) {}

  std::optional<Account> account(const std::string& id);
  std::vector<Account> accounts();
  // Creates the account (password hashed here); throws invalid_argument if it exists or is invalid.
  void addAccount(const Account& a, const std::string& password);
  // Sets a new password; throws out_of_range for an unknown account.
  void setPassword(const std::string& id, const std::string& password);
  // Replaces roles, fhirUser, display name and active flag (not the password).
  void updateAccount(const Account& a);
  // Replaces the stored hash (re-hash with current parameters after a login).
  void rehash(const std::string& id, const std::string& hash);

  std::optional<OAuthClient> client(const std::string& clientId);
  std::vector<OAuthClient> clients();
  // Registers the client. For confidential-symmetric clients, returns the generated secret (shown
  // once, only its SHA-256 is stored); otherwise "". Throws invalid_argument.
  std::string addClient(const OAuthClient& c);

  // Validation shared by the CLI and the admin API (throw invalid_argument).
  static void checkAccountId(const std::string& id);
  static void checkPassword(const std::string& password);
  static void checkClient(const OAuthClient& c);

 private:
  fhir::ResourceStore& store_;
};

// Space-separated list helpers.
std::vector<std::string> splitWords(const std::string& s);
std::string joinWords(const std::vector<std::string>& v);

}  // namespace hearth::server
