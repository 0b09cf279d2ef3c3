#include "smart_support.h"

#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "hearth/auth/jwk.h"
#include "hearth/auth/jwt.h"

namespace hearth::test {

namespace {

std::string jsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

AuthFixture::AuthFixture() {
  dir_ = (std::filesystem::temp_directory_path() / ("hearth-smart-" + randomToken(12))).string();
  std::filesystem::create_directories(dir_);
  keysDir_ = dir_ + "/keys";
  ::mkdir(keysDir_.c_str(), 0700);
  auth::KeyStoreOptions o;
  o.directory = keysDir_;
  o.algorithms = {auth::JwsAlg::RS256, auth::JwsAlg::ES384};
  keys_ = std::make_unique<auth::KeyStore>(o);
}

AuthFixture::~AuthFixture() {
  const char* keep = std::getenv("HEARTH_TEST_KEEP");
  if (keep && std::string(keep) == "1") return;
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

ServerOptions AuthFixture::serverOptions(std::vector<std::string> extraArgs, std::string db) const {
  ServerOptions o;
  o.args = {"--set", "auth.enabled=true", "--set", "auth.keys-dir=" + keysDir_};
  for (auto& a : extraArgs) o.args.push_back(std::move(a));
  o.db = std::move(db);
  return o;
}

std::string AuthFixture::mint(const HearthProcess& server, const TokenSpec& t) {
  const int64_t now = t.issuedAt ? t.issuedAt
                                 : std::chrono::duration_cast<std::chrono::seconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count();
  std::string p = "{";
  p += "\"iss\":" + jsonString(t.issuer.empty() ? server.origin() : t.issuer);
  p += ",\"aud\":" + jsonString(t.audience.empty() ? server.fhirBase() : t.audience);
  p += ",\"sub\":" + jsonString(t.sub);
  p += ",\"client_id\":" + jsonString(t.clientId);
  p += ",\"scope\":" + jsonString(t.scope);
  p += ",\"jti\":" + jsonString(t.jti.empty() ? randomToken(24) : t.jti);
  p += ",\"iat\":" + std::to_string(now);
  p += ",\"exp\":" + std::to_string(now + t.lifetimeSeconds);
  if (!t.fhirUser.empty()) p += ",\"fhirUser\":" + jsonString(t.fhirUser);
  if (!t.patient.empty()) p += ",\"patient\":" + jsonString(t.patient);
  if (!t.encounter.empty()) p += ",\"encounter\":" + jsonString(t.encounter);
  if (!t.roles.empty()) {
    p += ",\"roles\":[";
    for (size_t i = 0; i < t.roles.size(); ++i) p += (i ? "," : "") + jsonString(t.roles[i]);
    p += "]";
  }
  p += "}";
  const auth::JwsAlg alg = auth::parseAlg(t.alg);
  return auth::signJws(alg, keys_->signingKey(alg), p, t.typ);
}

}  // namespace hearth::test
