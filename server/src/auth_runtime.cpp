#include "auth_runtime.h"

#include <Poco/SHA2Engine.h>
#include <Poco/String.h>
#include <rapidjson/document.h>

#include <chrono>

#include "access_log.h"
#include "hearth/auth/jwt.h"
#include "hearth/auth/password.h"

namespace hearth::server {

namespace {

int64_t nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

bool looksLikeJwt(const std::string& t) {
  size_t dots = 0;
  for (char c : t) {
    if (c == '.') {
      ++dots;
    } else if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) {
      return false;
    }
  }
  return dots == 2;
}

}  // namespace

std::string AuthError::challenge() const {
  std::string v = "Bearer realm=\"hearth\"";
  if (!errorCode_.empty()) v += ", error=\"" + errorCode_ + "\"";
  return v;
}

AuthRuntime::AuthRuntime(const Config& config) : config_(config) {
  const AuthConfig& a = config.auth;
  auth::KeyStoreOptions ko;
  ko.directory = a.keysDir;
  ko.rotateAfter = std::chrono::hours(24) * a.keyRotationDays;
  // Keep a retired key published for longer than any token it signed may live.
  ko.publishAfterRetire = std::chrono::hours(24);
  keys_ = std::make_unique<auth::KeyStore>(ko);
  lastMaintain_ = nowSeconds();

  if (!config.cache.redisUrl.empty()) {
    auth::RedisCacheOptions ro;
    ro.url = config.cache.redisUrl;
    ro.keyPrefix = config.cache.redisPrefix;
    ro.timeout = std::chrono::milliseconds(config.cache.redisTimeoutMs);
    try {
      cache_ = auth::makeRedisCache(ro);
    } catch (const std::invalid_argument& e) {
      throw ConfigError(std::string("cache.redis.url: ") + e.what());
    }
  } else {
    auth::InProcessCacheOptions io;
    io.maxEntries = static_cast<size_t>(config.cache.maxEntries);
    cache_ = auth::makeInProcessCache(io);
  }
  auth::InProcessCacheOptions local;
  local.maxEntries = 100000;
  localDeny_ = auth::makeInProcessCache(local);

  try {
    roles_ = a.rolesFile.empty() ? auth::RoleCatalog::parse(embeddedRolesProperties())
                                 : auth::RoleCatalog::load(a.rolesFile);
  } catch (const auth::PolicyConfigError& e) {
    throw ConfigError(std::string("auth.roles-file: ") + e.what());
  }
}

AuthRuntime::~AuthRuntime() = default;

std::string AuthRuntime::issuer(const std::string& fhirBase) const {
  if (!config_.auth.issuer.empty()) return config_.auth.issuer;
  std::string b = fhirBase;
  while (!b.empty() && b.back() == '/') b.pop_back();
  if (b.size() >= 5 && b.compare(b.size() - 5, 5, "/fhir") == 0) b.resize(b.size() - 5);
  return b;
}

void AuthRuntime::setAuditSink(AuditSink sink) {
  std::lock_guard<std::mutex> lock(sinkMutex_);
  sink_ = sink ? std::make_shared<const AuditSink>(std::move(sink)) : nullptr;
}

void AuthRuntime::audit(const AuthEvent& event) const {
  std::shared_ptr<const AuditSink> s;
  {
    std::lock_guard<std::mutex> lock(sinkMutex_);
    s = sink_;
  }
  if (!s) return;
  try {
    (*s)(event);
  } catch (const std::exception& e) {
    logEvent("warning", std::string("auth: audit sink failed: ") + e.what());
  } catch (...) {
    logEvent("warning", "auth: audit sink failed");
  }
}

void AuthRuntime::maintainKeys() {
  const int64_t now = nowSeconds();
  int64_t last = lastMaintain_.load();
  if (now - last < 3600 || !lastMaintain_.compare_exchange_strong(last, now)) return;
  try {
    keys_->maintain();
  } catch (const std::exception& e) {
    logEvent("error", std::string("auth: key maintenance failed: ") + e.what());
  }
}

void AuthRuntime::denyToken(const std::string& jti, int64_t expiresAt) {
  const int64_t ttl = std::max<int64_t>(expiresAt - nowSeconds() + 60, 1);  // + clock leeway
  localDeny_->set("deny:" + jti, "1", std::chrono::seconds(ttl));
  cache_->set("deny:" + jti, "1", std::chrono::seconds(ttl));
}

bool AuthRuntime::denied(const std::string& jti) {
  if (localDeny_->get("deny:" + jti)) return true;
  try {
    return cache_->get("deny:" + jti).has_value();
  } catch (const auth::CacheUnavailable&) {
    if (config_.auth.denylistFailClosed) throw;
    // Fail open (see the header comment); say so in the log at most once a minute.
    const int64_t now = nowSeconds();
    int64_t last = lastOutageLog_.load();
    if (now - last >= 60 && lastOutageLog_.compare_exchange_strong(last, now)) {
      logEvent("warning", "auth: cache unavailable; the revocation denylist is not checked until it returns");
    }
    return false;
  }
}

auth::AccessContext AuthRuntime::authenticate(const std::string& header, const std::string& fhirBase) {
  auth::AccessContext ctx;
  if (!enabled()) return ctx;  // Kind::Open
  if (header.size() <= 7 || Poco::icompare(header.substr(0, 7), "bearer ") != 0) {
    throw AuthError(401, "", "Authentication required: send Authorization: Bearer <token>");
  }
  std::string token = header.substr(7);
  while (!token.empty() && token.front() == ' ') token.erase(token.begin());
  while (!token.empty() && token.back() == ' ') token.pop_back();
  if (token.empty()) throw AuthError(401, "", "Authentication required: send Authorization: Bearer <token>");
  if (!config_.auth.tokens.empty()) {
    auth::AccessContext s = serviceToken(token);
    if (s.kind == auth::AccessContext::Kind::Service) return s;
  }
  if (!looksLikeJwt(token)) throw AuthError(401, "invalid_token", "The bearer token is not valid");
  return jwtToken(token, fhirBase);
}

auth::AccessContext AuthRuntime::serviceToken(const std::string& token) const {
  Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
  sha.update(token);
  const std::string digest = Poco::DigestEngine::digestToHex(sha.digest());
  const TokenGrant* grant = nullptr;
  for (const TokenGrant& g : config_.auth.tokens) {
    // Compare every candidate in constant time (no early exit on the first match either).
    if (auth::constantTimeEquals(g.sha256Hex, digest)) grant = &g;
  }
  auth::AccessContext ctx;
  ctx.kind = auth::AccessContext::Kind::Open;  // "no match" marker for the caller
  if (!grant) return ctx;
  ctx.kind = auth::AccessContext::Kind::Service;
  ctx.subject = "service:" + digest.substr(0, 12);
  ctx.serviceWrite = grant->write;
  return ctx;
}

auth::AccessContext AuthRuntime::jwtToken(const std::string& token, const std::string& fhirBase) {
  maintainKeys();
  auth::Claims claims;
  try {
    const auth::VerifiedJws jws = auth::verifyJws(token, keys_->verificationKeys(),
                                                  {auth::JwsAlg::RS256, auth::JwsAlg::RS384, auth::JwsAlg::ES384});
    if (jws.typ != "at+jwt") throw auth::JoseError(auth::JoseErrorReason::Malformed, "not an access token");
    auth::ClaimsPolicy policy;
    policy.issuer = issuer(fhirBase);
    policy.audiences = {fhirBase};
    policy.requireExp = true;
    policy.requireJti = true;
    policy.requireSub = true;
    policy.maxLifetime = std::chrono::seconds(3600);
    claims = auth::validateClaims(jws.payloadJson, policy);
  } catch (const auth::JoseError& e) {
    const bool expired = e.reason() == auth::JoseErrorReason::Expired;
    audit(AuthEvent{AuthEvent::Type::AccessDenied, false, "", "", "", "", "", "", expired ? "expired" : "invalid", ""});
    throw AuthError(401, "invalid_token", expired ? "The access token has expired" : "The access token is not valid");
  }
  auto scope = claims.stringClaim("scope");
  if (!scope) throw AuthError(401, "invalid_token", "The access token carries no scope");
  auth::AccessContext ctx;
  try {
    ctx.scopes = auth::parseScopes(*scope);
  } catch (const auth::ScopeError&) {
    throw AuthError(401, "invalid_token", "The access token's scope is not valid");
  }
  ctx.subject = claims.sub;
  ctx.clientId = claims.stringClaim("client_id").value_or("");
  ctx.fhirUser = claims.stringClaim("fhirUser").value_or("");
  ctx.patient = claims.stringClaim("patient").value_or("");
  ctx.encounter = claims.stringClaim("encounter").value_or("");
  ctx.jti = claims.jti;
  ctx.expiresAt = claims.exp.value_or(0);
  rapidjson::Document d;
  d.Parse(claims.json.c_str(), claims.json.size());
  if (d.IsObject()) {
    auto it = d.FindMember("roles");
    if (it != d.MemberEnd() && it->value.IsArray()) {
      for (const auto& r : it->value.GetArray())
        if (r.IsString()) ctx.roles.emplace_back(r.GetString(), r.GetStringLength());
    }
  }
  const bool backend = ctx.scopes.context() == auth::ScopeContext::System && ctx.subject == ctx.clientId;
  ctx.kind = backend ? auth::AccessContext::Kind::Backend : auth::AccessContext::Kind::User;
  if (backend && claims.iat && claims.exp && *claims.exp - *claims.iat > 300) {
    throw AuthError(401, "invalid_token", "A backend-service token may live at most 5 minutes");
  }
  if (denied(ctx.jti)) {
    audit(AuthEvent{AuthEvent::Type::AccessDenied, false, ctx.subject, ctx.clientId, ctx.fhirUser, ctx.patient,
                    ctx.jti, "", "revoked", ""});
    throw AuthError(401, "invalid_token", "The access token has been revoked");
  }
  return ctx;
}

}  // namespace hearth::server
