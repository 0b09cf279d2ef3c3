#include "hearth/server/config.h"

#include "hearth/workflows/registration.h"

#include <Poco/Path.h>
#include <Poco/String.h>
#include <Poco/StringTokenizer.h>
#include <Poco/Util/AbstractConfiguration.h>

#include <cctype>
#include <stdexcept>

namespace hearth::server {

namespace {

int intKey(const Poco::Util::AbstractConfiguration& c, const std::string& key, int def, int min, int max) {
  int v = def;
  try {
    v = c.getInt(key, def);
  } catch (const Poco::Exception&) {
    throw ConfigError("config key " + key + " must be an integer");
  }
  if (v < min || v > max) {
    throw ConfigError("config key " + key + " must be between " + std::to_string(min) + " and " +
                      std::to_string(max));
  }
  return v;
}

bool boolKey(const Poco::Util::AbstractConfiguration& c, const std::string& key, bool def) {
  try {
    return c.getBool(key, def);
  } catch (const Poco::Exception&) {
    throw ConfigError("config key " + key + " must be true or false");
  }
}

bool isHex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char ch : s)
    if (!std::isxdigit(static_cast<unsigned char>(ch))) return false;
  return true;
}

}  // namespace

bool isLoopbackHost(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

Config Config::load(const Poco::Util::AbstractConfiguration& c) {
  Config cfg;
  cfg.dataDir = c.getString("data.dir", cfg.dataDir);
  cfg.portFile = c.getString("server.port-file", "");
  cfg.mllpPort = intKey(c, "mllp.port", cfg.mllpPort, -1, 65535);
  MllpConfig& m = cfg.mllp;
  m.enabled = boolKey(c, "mllp.enabled", m.enabled) && cfg.mllpPort >= 0;
  m.host = c.getString("mllp.host", m.host);
  m.idleTimeoutSeconds = intKey(c, "mllp.idle-timeout", m.idleTimeoutSeconds, 1, 86400);
  m.maxFrameBytes = static_cast<size_t>(intKey(c, "mllp.max-frame-bytes", static_cast<int>(m.maxFrameBytes), 1024, 1 << 30));
  m.maxConnections = intKey(c, "mllp.max-connections", m.maxConnections, 1, 4096);
  m.tls = boolKey(c, "mllp.tls", m.tls);
  m.journal = boolKey(c, "mllp.journal", m.journal);
  m.journalDir = c.getString("mllp.journal.dir", m.journalDir);

  HttpConfig& h = cfg.http;
  h.host = c.getString("http.host", h.host);
  h.port = intKey(c, "http.port", h.port, 0, 65535);
  h.threads = intKey(c, "http.threads", h.threads, 2, 4096);
  h.queue = intKey(c, "http.queue", h.queue, 1, 100000);
  h.backlog = intKey(c, "http.backlog", h.backlog, 1, 65535);
  h.keepAlive = boolKey(c, "http.keepalive", h.keepAlive);
  h.keepAliveTimeoutSeconds = intKey(c, "http.keepalive.timeout", h.keepAliveTimeoutSeconds, 1, 3600);
  h.keepAliveMaxRequests = intKey(c, "http.keepalive.max-requests", h.keepAliveMaxRequests, 0, 1000000000);
  h.timeoutSeconds = intKey(c, "http.timeout", h.timeoutSeconds, 1, 3600);
  h.bodyLimitBytes = static_cast<size_t>(intKey(c, "http.body-limit", static_cast<int>(h.bodyLimitBytes), 256, 1 << 30));
  h.shutdownGraceSeconds = intKey(c, "http.shutdown-grace", h.shutdownGraceSeconds, 0, 3600);
  h.tlsCertificate = c.getString("http.tls.certificate", "");
  h.tlsPrivateKey = c.getString("http.tls.private-key", "");
  // http.tls=true states that HTTPS is wanted: without a certificate and key that is an error
  // (./run.sh --tls makes a development pair), never a silent fall-back to plain HTTP.
  if (boolKey(c, "http.tls", false) && (h.tlsCertificate.empty() || h.tlsPrivateKey.empty())) {
    throw ConfigError("http.tls=true needs http.tls.certificate and http.tls.private-key (./run.sh --tls generates a "
                      "development pair)");
  }
  if (h.tlsCertificate.empty() != h.tlsPrivateKey.empty()) {
    throw ConfigError("http.tls.certificate and http.tls.private-key must be set together");
  }
  if (m.tls && h.tlsCertificate.empty()) throw ConfigError("mllp.tls=true needs http.tls.certificate and http.tls.private-key");

  fhir::StoreOptions& s = cfg.store;
  s.url = c.getString("store.url", "");
  if (s.url.empty()) s.url = "sqlite:" + Poco::Path(cfg.dataDir).append("hearth.db").toString();
  s.poolMin = intKey(c, "store.pool.min", s.poolMin, 1, 1024);
  s.poolMax = intKey(c, "store.pool.max", s.poolMax, 1, 1024);
  if (s.poolMax < s.poolMin) throw ConfigError("store.pool.max must be >= store.pool.min");
  s.sqliteSynchronous = Poco::toUpper(c.getString("store.sqlite.synchronous", s.sqliteSynchronous));
  if (s.sqliteSynchronous != "FULL" && s.sqliteSynchronous != "NORMAL" && s.sqliteSynchronous != "EXTRA") {
    throw ConfigError("store.sqlite.synchronous must be FULL, EXTRA or NORMAL");
  }
  s.busyTimeoutMs = intKey(c, "store.busy-timeout-ms", s.busyTimeoutMs, 0, 600000);
  s.sqliteCacheMb = intKey(c, "store.sqlite.cache-mb", s.sqliteCacheMb, 1, 1 << 20);
  s.sqliteWriterCacheMb = intKey(c, "store.sqlite.writer-cache-mb", s.sqliteWriterCacheMb, 1, 1 << 20);
  s.sqliteMmapMb = intKey(c, "store.sqlite.mmap-mb", s.sqliteMmapMb, 0, 1 << 24);
  s.sqliteWalWriteBuffer = boolKey(c, "store.sqlite.wal-write-buffer", s.sqliteWalWriteBuffer);
  s.sqliteCheckpointIntervalMs = intKey(c, "store.sqlite.checkpoint-interval-ms", s.sqliteCheckpointIntervalMs, 1, 600000);
  s.sqliteWalRestartKb = intKey(c, "store.sqlite.wal-restart-kb", s.sqliteWalRestartKb, 64, 1 << 24);

  FhirConfig& f = cfg.fhir;
  f.baseUrl = c.getString("fhir.base-url", "");
  while (!f.baseUrl.empty() && f.baseUrl.back() == '/') f.baseUrl.pop_back();
  f.pageSizeMax = intKey(c, "fhir.page-size.max", f.pageSizeMax, 1, 100000);
  f.pageSizeDefault = intKey(c, "fhir.page-size.default", f.pageSizeDefault, 1, f.pageSizeMax);
  f.readCacheMegabytes = intKey(c, "fhir.read-cache.mb", -1, -1, 1 << 20);
  f.groupCommitMax = intKey(c, "store.group-commit.max", -1, -1, 10000);
  f.groupCommitLingerMs = intKey(c, "store.group-commit.linger-ms", f.groupCommitLingerMs, 0, 600000);
  f.conditionalDeleteMultiple = boolKey(c, "fhir.conditional-delete.multiple", false);

  const std::string duplicates = c.getString("registration.duplicate-check", "off");
  if (duplicates != "off" && duplicates != "reject") throw ConfigError("registration.duplicate-check must be off or reject");
  cfg.registration.rejectDuplicates = duplicates == "reject";
  RegistrationConfig& rg = cfg.registration;
  rg.mrnEnabled = boolKey(c, "registration.mrn.enabled", rg.mrnEnabled);
  rg.mrnSystem = c.getString("registration.mrn.system", rg.mrnSystem);
  if (rg.mrnSystem.empty() || rg.mrnSystem.find_first_of(" \t|") != std::string::npos) {
    throw ConfigError("registration.mrn.system must be a URI (no spaces or '|')");
  }
  rg.mrnFormat = c.getString("registration.mrn.format", rg.mrnFormat);
  try {
    workflows::checkMrnFormat(rg.mrnFormat);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(std::string("registration.mrn.format: ") + e.what());
  }
  rg.mrnAcceptClient = boolKey(c, "registration.mrn.accept-client", rg.mrnAcceptClient);

  SchedulingConfig& sc = cfg.scheduling;
  sc.preventDoubleBooking = boolKey(c, "scheduling.prevent-double-booking", sc.preventDoubleBooking);
  sc.maxAppointmentMinutes = intKey(c, "scheduling.max-appointment-minutes", sc.maxAppointmentMinutes, 1, 7 * 24 * 60);

  SubscriptionsConfig& sub = cfg.subscriptions;
  sub.enabled = boolKey(c, "subscriptions.enabled", sub.enabled);
  sub.maxAttempts = intKey(c, "subscriptions.max-attempts", sub.maxAttempts, 1, 1000);
  sub.timeoutMs = intKey(c, "subscriptions.timeout-ms", sub.timeoutMs, 100, 600000);

  NotificationsConfig& nc = cfg.notifications;
  nc.labAlerts = boolKey(c, "notifications.lab-alerts", nc.labAlerts);
  nc.reminderHours = intKey(c, "notifications.reminder-hours", nc.reminderHours, 0, 24 * 30);
  nc.scanIntervalSeconds = intKey(c, "notifications.scan-interval-seconds", nc.scanIntervalSeconds, 1, 86400);

  LogConfig& l = cfg.log;
  l.access = boolKey(c, "log.access", l.access);
  l.level = c.getString("log.level", l.level);
  l.file = c.getString("log.file", "");

  AuthConfig& a = cfg.auth;
  a.enabled = boolKey(c, "auth.enabled", a.enabled);
  Poco::StringTokenizer tokens(c.getString("auth.tokens", ""), ",;",
                               Poco::StringTokenizer::TOK_TRIM | Poco::StringTokenizer::TOK_IGNORE_EMPTY);
  for (const std::string& t : tokens) {
    const auto colon = t.find(':');
    TokenGrant g;
    g.sha256Hex = Poco::toLower(t.substr(0, colon));
    const std::string access = colon == std::string::npos ? "read" : t.substr(colon + 1);
    if (!isHex64(g.sha256Hex) || (access != "read" && access != "write")) {
      throw ConfigError("auth.tokens entries must be <sha256-hex>:read or <sha256-hex>:write");
    }
    g.write = access == "write";
    a.tokens.push_back(g);
  }
  AuditConfig& au = cfg.audit;
  au.enabled = boolKey(c, "audit.enabled", a.enabled);
  au.queueLimit = intKey(c, "audit.queue-limit", au.queueLimit, 1, 10000000);
  // With SMART access tokens, static tokens are optional (operations tooling only).
  if (!a.enabled && !isLoopbackHost(h.host)) {
    throw ConfigError("http.host " + h.host +
                      " is not a loopback address: set auth.enabled=true before exposing Hearth on a network");
  }
  a.keysDir = c.getString("auth.keys-dir", "");
  if (a.keysDir.empty()) a.keysDir = Poco::Path(cfg.dataDir).append("keys").toString();
  a.rolesFile = c.getString("auth.roles-file", "");
  a.issuer = c.getString("auth.issuer", "");
  while (!a.issuer.empty() && a.issuer.back() == '/') a.issuer.pop_back();
  a.accessTokenSeconds = intKey(c, "auth.access-token-lifetime", a.accessTokenSeconds, 60, 3600);
  a.backendTokenSeconds = intKey(c, "auth.backend-token-lifetime", a.backendTokenSeconds, 30, 300);
  a.refreshTokenSeconds = intKey(c, "auth.refresh-token-lifetime", a.refreshTokenSeconds, 300, 90 * 24 * 3600);
  a.codeSeconds = intKey(c, "auth.code-lifetime", a.codeSeconds, 10, 600);
  a.launchSeconds = intKey(c, "auth.launch-lifetime", a.launchSeconds, 10, 24 * 3600);
  a.loginSeconds = intKey(c, "auth.login-lifetime", a.loginSeconds, 60, 3600);
  a.lockoutFailures = intKey(c, "auth.lockout.max-failures", a.lockoutFailures, 1, 1000);
  a.lockoutWindowSeconds = intKey(c, "auth.lockout.window", a.lockoutWindowSeconds, 1, 7 * 24 * 3600);
  a.keyRotationDays = intKey(c, "auth.key-rotation-days", a.keyRotationDays, 1, 3650);
  a.denylistFailClosed = boolKey(c, "auth.denylist.fail-closed", a.denylistFailClosed);
  a.smartStyleUrl = c.getString("auth.smart-style-url", "");

  CacheConfig& cc = cfg.cache;
  cc.redisUrl = c.getString("cache.redis.url", "");
  cc.redisPrefix = c.getString("cache.redis.prefix", cc.redisPrefix);
  cc.redisTimeoutMs = intKey(c, "cache.redis.timeout-ms", cc.redisTimeoutMs, 10, 60000);
  cc.maxEntries = intKey(c, "cache.max-entries", cc.maxEntries, 100, 100000000);
  return cfg;
}

}  // namespace hearth::server
