#pragma once
// The audit trail (issue 5, part 5): every read, search, create, update, delete, login, token issue
// and access denial becomes an AuditEvent in the FHIR store, shaped after IHE Basic Audit Log
// Patterns (BALP):
//   type      http://terminology.hl7.org/CodeSystem/audit-event-type#rest (RESTful operation), or
//             http://dicom.nema.org/resources/ontology/DCM#110114 (user authentication) for logins
//             and token issues
//   subtype   http://hl7.org/fhir/restful-interaction#<read|vread|history-instance|search-type|
//             create|update|patch|delete|batch|transaction|operation ...>, or DCM#110122 Login /
//             hearth token-issued
//   action    C R U D E (searches and operations: E), recorded = now, outcome 0 / 4 (denied) / 8
//   agent     [0] the user: who = fhirUser (or the account / client id as an identifier),
//             requestor = true, policy = [token jti], network.address = the client's IP;
//             [1] the OAuth client (identifier urn:hearth:oauth-client|<client_id>), requestor false
//   source    observer display "Hearth", type 4 (application server)
//   entity    the patient(s) concerned (type 1 Person, role 1 Patient), the resource(s) touched
//             (type 2, role 4 Domain Resource; at most kMaxEntities), and for searches the query
//             string base64 encoded (role 24 Query)
// Searchable with the R4 AuditEvent parameters: patient (entity.what / agent.who that are
// Patients), agent (agent.who), date (recorded), subtype, action, outcome ...
//
// Writing is asynchronous: record() builds a small AuditRecord and puts it on a bounded queue; one
// writer thread takes up to kBatch records at a time, works out the entities (the returned
// resources and the Patients they reference, off the request path) and stores them in ONE
// transaction. Successful reads (action R) of the same agent, client, token and subtype that are
// waiting in the same batch are merged into one AuditEvent: one entity per resource read (up to
// kMaxEntities), `period` from the first to the last access. Under load this turns hundreds of
// reads per second by one client into a few AuditEvents; searches, writes, operations and
// denials are never merged.
// Staging (schema version 9): the writer does not store AuditEvent resources itself. It appends
// each (merged) AuditEvent's JSON to audit_log, one narrow append-only table, in one synced
// transaction per batch: an audited read costs an append instead of the ~2 random index rows per
// entity of a stored AuditEvent (about 5 random B-tree pages per read: the reason audited reads
// ran at a tenth of open reads). A materializer turns log rows into AuditEvent resources, deleting
// each row in the transaction that creates its resource (exactly once, also with several nodes on
// one PostgreSQL: a row whose DELETE affects nothing was taken by another node):
//   - before any request that may read AuditEvents (flush(), called by the HTTP front), so a
//     search always sees every access recorded before it, the recent queue included;
//   - in the background, a small batch every 100 ms while records keep arriving (the backlog of a
//     sustained read storm is bounded only by disk; it drains when the storm ends), and in full
//     once no record arrived for 200 ms.
// When the queue is full, record() waits (back-pressure) rather than drop records. stop() flushes
// the queue into the log (rows left there are materialized after the next start). Durability
// trade-off (documented in README): a record still queued when the process crashes (kill -9,
// power loss) is lost, reads and writes alike - at most the queue's content, typically the last
// few milliseconds; logged records are not. The write itself is not rolled back for a lost record.
//
// AuditEvents are written through ResourceService directly, never through the HTTP policy;
// access_control.h keeps them immutable for every API caller. Records carry no tokens (only the
// jti) and no request bodies; log lines of the writer carry counts only.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "hearth/auth/access.h"
#include "hearth/fhir/service.h"

namespace hearth::server {

class AccessControl;
struct AuthEvent;

struct AuditRecord {
  std::string typeSystem = "http://terminology.hl7.org/CodeSystem/audit-event-type";
  std::string typeCode = "rest";
  std::string typeDisplay = "RESTful Operation";
  std::string subtypeSystem = "http://hl7.org/fhir/restful-interaction";
  std::string subtype;        // "read", "search-type", "create" ...
  char action = 'R';          // C R U D E
  int outcome = 0;            // 0 success, 4 minor failure (denied), 8 serious failure
  std::string outcomeDesc;    // reason of a denial (policy text: no PHI)
  // Who
  std::string fhirUser;       // "Practitioner/9" / "Patient/5" or empty
  std::string subject;        // account id / client id (when there is no fhirUser)
  std::string clientId;
  std::string jti;
  std::string agentKind;      // "user", "backend", "service", "anonymous"
  std::string address;        // client IP
  // What
  std::vector<std::string> patients;   // Patient ids known up front (patient context)
  std::vector<std::string> resources;  // "Type/id" touched
  std::string query;                   // search query string (stored base64)
  std::string body;                    // returned resource or Bundle: entities derived off-thread
  std::string requestId;
  // When (set by record(); merged read records: first and last access)
  std::string recorded;
  std::string periodStart;
};

class AuditTrail {
 public:
  static constexpr size_t kBatch = 256;
  static constexpr size_t kMaxEntities = 100;

  AuditTrail(fhir::ResourceService& service, const AccessControl& access, size_t queueLimit = 10000);
  ~AuditTrail();
  AuditTrail(const AuditTrail&) = delete;
  AuditTrail& operator=(const AuditTrail&) = delete;

  void start();
  // Stops taking records and writes everything queued before returning.
  void stop();

  // Queues a record (waits while the queue is full). Thread-safe.
  void record(AuditRecord r);

  // Fills a record's agent fields from an access context.
  static void setAgent(AuditRecord& r, const auth::AccessContext& who);

  // Entry points for the authorization server (server/src/auth_*): logins, token issues and
  // denials outside the FHIR routes. `user` is the fhirUser or account id; nothing secret.
  void recordLogin(const std::string& user, const std::string& fhirUser, const std::string& clientId, bool success,
                   const std::string& address, const std::string& reason = {});
  void recordTokenIssued(const auth::AccessContext& token, const std::string& grantType, const std::string& address);
  void recordDenied(const auth::AccessContext& who, const std::string& subtype, char action,
                    const std::string& resource, const std::string& reason, const std::string& address);
  // The authorization server's events (AuthRuntime::setAuditSink): logins, token issues and
  // refusals, revocations, account changes. AccessDenied is skipped: the HTTP front records
  // authentication failures on the API itself, with the request's context. Never throws.
  void recordAuthEvent(const AuthEvent& e);

  // The AuditEvent JSON for a record (entities from record fields and, when `access` is given,
  // from the body). Public for tests.
  std::string toJson(const AuditRecord& r) const;

  // Makes every record made before this call an AuditEvent resource: waits until the writer has
  // logged them, then materializes the whole log. For requests that may read AuditEvents.
  // Throws what the store throws.
  void flush();
  // Materializes up to `max` log rows (oldest first); returns how many rows it took off the log.
  size_t materialize(size_t max);

  uint64_t written() const;
  uint64_t failed() const;

 private:
  void run();
  void runMaterializer();
  // Fills r.patients / r.resources from r.body and drops the body.
  void deriveEntities(AuditRecord& r) const;
  fhir::ResourceService& service_;
  const AccessControl& access_;
  const size_t limit_;
  mutable std::mutex mu_;
  std::condition_variable notEmpty_, notFull_;
  std::deque<AuditRecord> queue_;
  bool stopping_ = false, started_ = false;
  uint64_t written_ = 0, failed_ = 0;
  uint64_t enqueued_ = 0, logged_ = 0;  // records queued / taken off the queue and logged (or failed)
  std::condition_variable loggedCv_, materializerWake_;
  std::atomic<int64_t> lastRecordMs_{0};  // steady clock: when record() was last called
  std::mutex materializeMu_;              // one materialization at a time in this process
  std::thread thread_, materializer_;
};

}  // namespace hearth::server
