#include "auth_directory.h"

#include <openssl/rand.h>

#include <Poco/SHA2Engine.h>

#include <chrono>
#include <cstring>
#include <stdexcept>

#include "hearth/auth/jwk.h"
#include "hearth/auth/password.h"
#include "hearth/auth/scopes.h"

namespace hearth::server {

using fhir::SqlQuery;
using fhir::SqlRow;

namespace {

int64_t nowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string text(const SqlRow& row, size_t i) {
  if (i < row.size() && std::holds_alternative<std::string>(row[i])) return std::get<std::string>(row[i]);
  return {};
}
int64_t integer(const SqlRow& row, size_t i) {
  if (i < row.size() && std::holds_alternative<int64_t>(row[i])) return std::get<int64_t>(row[i]);
  return 0;
}

bool nameChars(const std::string& s, const char* extra) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && !std::strchr(extra, c)) return false;
  }
  return true;
}

constexpr const char* kAccountColumns = "id, password_hash, roles, fhir_user, display_name, active";
constexpr const char* kClientColumns =
    "client_id, name, client_type, secret_sha256, redirect_uris, scopes, jwks, jku, roles, active";

Account accountFrom(const SqlRow& r) {
  Account a;
  a.id = text(r, 0);
  a.passwordHash = text(r, 1);
  a.roles = splitWords(text(r, 2));
  a.fhirUser = text(r, 3);
  a.displayName = text(r, 4);
  a.active = integer(r, 5) != 0;
  return a;
}

OAuthClient clientFrom(const SqlRow& r) {
  OAuthClient c;
  c.clientId = text(r, 0);
  c.name = text(r, 1);
  c.type = text(r, 2);
  c.secretSha256 = text(r, 3);
  c.redirectUris = splitWords(text(r, 4));
  c.scopes = text(r, 5);
  c.jwks = text(r, 6);
  c.jku = splitWords(text(r, 7));
  c.roles = splitWords(text(r, 8));
  c.active = integer(r, 9) != 0;
  return c;
}

std::string randomSecret() {
  unsigned char buf[32];
  if (RAND_bytes(buf, sizeof buf) != 1) throw std::runtime_error("no randomness available");
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string s;
  for (unsigned char b : buf) s += alphabet[b & 63];
  // 32 chars of 6 bits = 192 bits of entropy.
  return s;
}

std::string sha256Hex(const std::string& s) {
  Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
  sha.update(s);
  return Poco::DigestEngine::digestToHex(sha.digest());
}

bool validReference(const std::string& ref) {
  if (ref.empty()) return true;
  const size_t slash = ref.find('/');
  if (slash == std::string::npos) return false;
  const std::string type = ref.substr(0, slash), id = ref.substr(slash + 1);
  if (type != "Patient" && type != "Practitioner" && type != "PractitionerRole" && type != "RelatedPerson" &&
      type != "Person") {
    return false;
  }
  return nameChars(id, "-.") && id.size() <= 64;
}

}  // namespace

std::vector<std::string> splitWords(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == ',')) ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != ',') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string joinWords(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& w : v) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

void AuthDirectory::checkAccountId(const std::string& id) {
  if (!nameChars(id, "._@-")) {
    throw std::invalid_argument("a user name is 1 to 64 letters, digits or . _ @ -");
  }
}

void AuthDirectory::checkPassword(const std::string& password) {
  if (password.size() < 8) throw std::invalid_argument("a password needs at least 8 characters");
  if (password.size() > 1024) throw std::invalid_argument("a password may have at most 1024 characters");
}

void AuthDirectory::checkClient(const OAuthClient& c) {
  if (!nameChars(c.clientId, "._-")) throw std::invalid_argument("a client_id is 1 to 64 letters, digits or . _ -");
  if (c.type != "public" && c.type != "confidential-symmetric" && c.type != "confidential-asymmetric") {
    throw std::invalid_argument("client type must be public, confidential-symmetric or confidential-asymmetric");
  }
  for (const auto& u : c.redirectUris) {
    if (!(u.rfind("https://", 0) == 0 || u.rfind("http://", 0) == 0) || u.find('#') != std::string::npos ||
        u.size() > 2000) {
      throw std::invalid_argument("redirect URIs must be absolute http(s) URLs without a fragment");
    }
  }
  if (c.type != "confidential-asymmetric" && c.redirectUris.empty()) {
    throw std::invalid_argument("a public or symmetric client needs at least one redirect URI");
  }
  if (c.type == "confidential-asymmetric") {
    if (c.jwks.empty() && c.jku.empty()) {
      throw std::invalid_argument("an asymmetric client needs a JWKS or at least one allowed jku URL");
    }
    if (!c.jwks.empty()) {
      try {
        if (auth::parseJwks(c.jwks).empty()) throw std::invalid_argument("the JWKS has no RSA or P-384 signing key");
      } catch (const auth::JoseError& e) {
        throw std::invalid_argument(std::string("the JWKS is not valid: ") + e.what());
      }
    }
    for (const auto& u : c.jku) {
      if (!(u.rfind("https://", 0) == 0 || u.rfind("http://", 0) == 0)) {
        throw std::invalid_argument("jku URLs must be absolute http(s) URLs");
      }
    }
  }
  if (!c.scopes.empty()) {
    try {
      (void)auth::parseScopes(c.scopes);
    } catch (const auth::ScopeError& e) {
      // A client may hold patient/ and user/ scopes: check them one by one.
      for (const auto& s : splitWords(c.scopes)) {
        try {
          (void)auth::parseScopes(s);
        } catch (const auth::ScopeError& e2) {
          throw std::invalid_argument(std::string("scopes: ") + e2.what());
        }
      }
    }
  }
  for (const auto& r : c.roles) {
    if (!nameChars(r, "_-")) throw std::invalid_argument("role names are letters, digits, _ or -");
  }
}

std::optional<Account> AuthDirectory::account(const std::string& id) {
  auto rows = store_.query(SqlQuery{std::string("SELECT ") + kAccountColumns + " FROM auth_account WHERE id = ?", {id}});
  if (rows.empty()) return std::nullopt;
  return accountFrom(rows[0]);
}

std::vector<Account> AuthDirectory::accounts() {
  std::vector<Account> out;
  for (const auto& r : store_.query(SqlQuery{std::string("SELECT ") + kAccountColumns + " FROM auth_account ORDER BY id", {}})) {
    out.push_back(accountFrom(r));
  }
  return out;
}

void AuthDirectory::addAccount(const Account& a, const std::string& password) {
  checkAccountId(a.id);
  checkPassword(password);
  if (!validReference(a.fhirUser)) {
    throw std::invalid_argument("fhirUser must be a relative reference such as Practitioner/9 or Patient/123");
  }
  for (const auto& r : a.roles) {
    if (!nameChars(r, "_-")) throw std::invalid_argument("role names are letters, digits, _ or -");
  }
  const std::string hash = auth::hashPassword(password);
  auto tx = store_.begin();
  if (!tx->query(SqlQuery{"SELECT id FROM auth_account WHERE id = ?", {a.id}}).empty()) {
    throw std::invalid_argument("a user with that name exists already");
  }
  const int64_t now = nowMicros();
  tx->execute(SqlQuery{"INSERT INTO auth_account (id, password_hash, roles, fhir_user, display_name, active, created_us, "
                       "updated_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       {a.id, hash, joinWords(a.roles), a.fhirUser, a.displayName, int64_t(a.active ? 1 : 0), now, now}});
  tx->commit();
}

void AuthDirectory::setPassword(const std::string& id, const std::string& password) {
  checkPassword(password);
  const std::string hash = auth::hashPassword(password);
  auto tx = store_.begin();
  const int64_t n = tx->execute(
      SqlQuery{"UPDATE auth_account SET password_hash = ?, updated_us = ? WHERE id = ?", {hash, nowMicros(), id}});
  if (n == 0) throw std::out_of_range("no such user");
  tx->commit();
}

void AuthDirectory::updateAccount(const Account& a) {
  if (!validReference(a.fhirUser)) {
    throw std::invalid_argument("fhirUser must be a relative reference such as Practitioner/9 or Patient/123");
  }
  auto tx = store_.begin();
  const int64_t n = tx->execute(SqlQuery{
      "UPDATE auth_account SET roles = ?, fhir_user = ?, display_name = ?, active = ?, updated_us = ? WHERE id = ?",
      {joinWords(a.roles), a.fhirUser, a.displayName, int64_t(a.active ? 1 : 0), nowMicros(), a.id}});
  if (n == 0) throw std::out_of_range("no such user");
  tx->commit();
}

void AuthDirectory::rehash(const std::string& id, const std::string& hash) {
  auto tx = store_.begin();
  tx->execute(SqlQuery{"UPDATE auth_account SET password_hash = ? WHERE id = ?", {hash, id}});
  tx->commit();
}

std::optional<OAuthClient> AuthDirectory::client(const std::string& clientId) {
  auto rows = store_.query(
      SqlQuery{std::string("SELECT ") + kClientColumns + " FROM auth_client WHERE client_id = ?", {clientId}});
  if (rows.empty()) return std::nullopt;
  return clientFrom(rows[0]);
}

std::vector<OAuthClient> AuthDirectory::clients() {
  std::vector<OAuthClient> out;
  for (const auto& r :
       store_.query(SqlQuery{std::string("SELECT ") + kClientColumns + " FROM auth_client ORDER BY client_id", {}})) {
    out.push_back(clientFrom(r));
  }
  return out;
}

std::string AuthDirectory::addClient(const OAuthClient& in) {
  OAuthClient c = in;
  checkClient(c);
  std::string secret;
  if (c.type == "confidential-symmetric") {
    secret = randomSecret();
    c.secretSha256 = sha256Hex(secret);
  } else {
    c.secretSha256.clear();
  }
  auto tx = store_.begin();
  if (!tx->query(SqlQuery{"SELECT client_id FROM auth_client WHERE client_id = ?", {c.clientId}}).empty()) {
    throw std::invalid_argument("a client with that client_id exists already");
  }
  const int64_t now = nowMicros();
  tx->execute(SqlQuery{"INSERT INTO auth_client (client_id, name, client_type, secret_sha256, redirect_uris, scopes, jwks, "
                       "jku, roles, active, created_us, updated_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       {c.clientId, c.name, c.type, c.secretSha256, joinWords(c.redirectUris), c.scopes, c.jwks,
                        joinWords(c.jku), joinWords(c.roles), int64_t(c.active ? 1 : 0), now, now}});
  tx->commit();
  return secret;
}

}  // namespace hearth::server
