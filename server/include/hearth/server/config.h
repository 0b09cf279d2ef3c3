#pragma once
// Hearth's configuration, parsed once at start-up into typed structs. Modules receive the struct
// they need; nobody reads raw configuration keys after start-up. Every key is documented in
// config/hearth.properties.
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "hearth/fhir/store.h"

namespace Poco::Util {
class AbstractConfiguration;
}

namespace hearth::server {

struct HttpConfig {
  std::string host = "127.0.0.1";
  int port = 8080;
  int threads = 64;           // maximum worker threads (one per active connection)
  int queue = 256;            // accepted connections waiting for a thread
  int backlog = 512;          // listen() backlog
  bool keepAlive = true;
  int keepAliveTimeoutSeconds = 15;
  int keepAliveMaxRequests = 0;  // 0: unlimited
  int timeoutSeconds = 60;       // socket send/receive timeout
  size_t bodyLimitBytes = 16u * 1024u * 1024u;
  int shutdownGraceSeconds = 30;  // how long in-flight requests may take after SIGTERM
  std::string tlsCertificate;     // PEM file; TLS is on when both are set
  std::string tlsPrivateKey;
};

struct FhirConfig {
  std::string baseUrl;  // empty: derived from the Host header, http(s)://host/fhir
  int pageSizeDefault = 20;
  int pageSizeMax = 1000;
  long readCacheMegabytes = -1;  // -1: auto (on for SQLite, off for PostgreSQL)
  int groupCommitMax = -1;       // -1: auto (64 for SQLite, off for PostgreSQL); 0: off
  int groupCommitLingerMs = 100;  // a group of applied (journaled) writes commits within this time
  bool conditionalDeleteMultiple = false;  // DELETE Type?criteria may delete several matches
};

// Hospital workflows (issue 6).
struct RegistrationConfig {
  // registration.duplicate-check = reject: a new Patient with the same family and given name,
  // birth date and phone as a live one -> 409. off: no check.
  bool rejectDuplicates = false;
  // registration.mrn.*: the hospital medical record number the server assigns to every Patient
  // (workflows/registration.h). Off by default: a general FHIR server stores what it is given;
  // a hospital deployment turns it on.
  bool mrnEnabled = false;
  std::string mrnSystem = "http://hospital.example.org/fhir/sid/mrn";
  std::string mrnFormat = "MRN{000000}";
  bool mrnAcceptClient = false;  // keep a client-supplied MRN on create (legacy migration)
};

struct SchedulingConfig {
  bool preventDoubleBooking = true;   // refuse overlapping active Appointments (409)
  int maxAppointmentMinutes = 24 * 60;  // longest appointment booked (the overlap check's window)
};

struct SubscriptionsConfig {
  bool enabled = true;       // R4 Subscriptions (rest-hook) served and delivered
  int maxAttempts = 10;      // deliveries tried before a notification is marked failed
  int timeoutMs = 10000;     // per delivery (connect + answer)
};

struct NotificationsConfig {
  bool labAlerts = true;          // a final DiagnosticReport -> Communication to the ordering doctor
  int reminderHours = 24;         // booked Appointments get a reminder this long ahead (0: none)
  int scanIntervalSeconds = 60;   // how often reminders are looked for
};

struct LogConfig {
  bool access = true;
  std::string level = "information";
  std::string file;  // empty: stderr
};

// Interim bearer-token access control (until SMART on FHIR lands): tokens are configured by
// their SHA-256 hex digest only, never in clear.
struct TokenGrant {
  std::string sha256Hex;
  bool write = false;
};
// Authentication and the embedded SMART authorization server (issue 5; server/src/auth_runtime.h,
// auth_server.h). Lifetimes in seconds.
struct AuthConfig {
  bool enabled = false;
  std::vector<TokenGrant> tokens;  // interim static tokens (Kind::Service); optional
  std::string keysDir;             // auth.keys-dir; default <data.dir>/keys
  std::string rolesFile;           // auth.roles-file; empty: the catalog embedded at build time
  std::string issuer;              // auth.issuer; empty: the FHIR base without "/fhir"
  int accessTokenSeconds = 3600;   // auth.access-token-lifetime (<= 3600)
  int backendTokenSeconds = 300;   // auth.backend-token-lifetime (<= 300)
  int refreshTokenSeconds = 7 * 24 * 3600;  // auth.refresh-token-lifetime
  int codeSeconds = 60;            // auth.code-lifetime (authorization codes)
  int launchSeconds = 3600;        // auth.launch-lifetime (EHR launch handles)
  int loginSeconds = 900;          // auth.login-lifetime (a pending login/consent page)
  int lockoutFailures = 5;         // auth.lockout.max-failures within the window locks the account
  int lockoutWindowSeconds = 900;  // auth.lockout.window
  int keyRotationDays = 30;        // auth.key-rotation-days
  bool denylistFailClosed = false; // auth.denylist.fail-closed: 503 instead of fail-open on Redis outage
  std::string smartStyleUrl;       // auth.smart-style-url (token response smart_style_url)
};

// The short-lived state cache (auth codes, sessions, replay cache, denylist, lockout counters).
struct CacheConfig {
  std::string redisUrl;            // cache.redis.url; empty: in-process (single node)
  std::string redisPrefix = "hearth:";  // cache.redis.prefix
  int redisTimeoutMs = 2000;       // cache.redis.timeout-ms
  int maxEntries = 100000;         // cache.max-entries (in-process cache)
};

// The audit trail (server/src/audit.h): AuditEvents for every FHIR interaction and denial.
struct AuditConfig {
  bool enabled = false;     // audit.enabled; default: on when auth.enabled, off otherwise
  int queueLimit = 10000;   // audit.queue-limit: records waiting for the writer (then requests wait)
};

// The inbound HL7 v2 MLLP listener (the bridge). Off when enabled=false or port=-1.
struct MllpConfig {
  bool enabled = true;
  std::string host = "127.0.0.1";
  int idleTimeoutSeconds = 300;
  size_t maxFrameBytes = 16u * 1024u * 1024u;
  int maxConnections = 64;
  bool tls = false;  // serve MLLP over TLS with the http.tls.* certificate and key
  // Journal mode (server/src/hl7_journal.h): original-mode messages durable in a journal, their
  // writes applied in the open commit group; on by default (effective with group commit on).
  bool journal = true;
  std::string journalDir;  // empty: <data.dir>/hl7-journal
};

struct Config {
  std::string dataDir = "./data";
  std::string portFile;  // written once listening: "http=<port>\nmllp=<port>\n"
  int mllpPort = 2575;  // mllp.port; -1 = no MLLP listener, 0 = pick a free port
  MllpConfig mllp;
  HttpConfig http;
  fhir::StoreOptions store;
  FhirConfig fhir;
  RegistrationConfig registration;
  SchedulingConfig scheduling;
  SubscriptionsConfig subscriptions;
  NotificationsConfig notifications;
  LogConfig log;
  AuthConfig auth;
  AuditConfig audit;
  CacheConfig cache;

  // Reads every key from `c`, applying defaults; throws ConfigError naming the key on a bad value.
  static Config load(const Poco::Util::AbstractConfiguration& c);
};

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// True for 127.0.0.0/8, ::1 and "localhost".
bool isLoopbackHost(const std::string& host);

}  // namespace hearth::server
