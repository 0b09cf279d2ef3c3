// Schema migrations of the resource store, one numbered list per backend, compiled into the binary.
//
// Rules: a released step is never edited; a schema change is a new step with the next number in
// BOTH lists (the logical schema stays the same across backends). openStore() applies the missing
// steps in order, each in one transaction together with its schema_migrations row, and refuses a
// database that already carries a step newer than this build knows.
//
// Logical schema (version 1):
//   resource_version  every version of every resource, deletions included.
//     seq              store-wide, strictly increasing write sequence (history order and cursors)
//     type, id, version   the logical key (unique)
//     last_updated     the FHIR instant text exactly as written into meta.lastUpdated
//     last_updated_us  the same instant as UTC microseconds since the epoch (for `since` filters)
//     deleted          deletion marker
//     content          the resource JSON bytes as sent to clients (empty for deletions)
// Indexes: (type, id, version) unique; seq; (type, id, seq), (type, seq) for history pages;
//   (last_updated_us) and (type, last_updated_us) for `since` filters that match few versions.
//   resource_current  one row per resource: the current version and where it lives (seq), so a
//     read is a primary-key lookup plus a seq lookup and a writer has a row to lock.
//
// Version 2: resource_version.op, the interaction that made the version (WriteOp: 1 create,
//   2 update, 3 delete; history reports it as request.method). Rows from before carry 0 (unknown);
//   readers map it (storeimpl::writeOpFromColumn). Adding a column with a constant default
//   rewrites no rows on either backend, so the step is quick on a large database.
//
// Version 3: search. One index table per IndexKind (search_index.h says what each kind stores);
//   StoreTransaction::replaceIndex replaces the rows of a resource as a whole, in the transaction
//   that writes its version, so the tables always describe the current versions (a deleted
//   resource has none). Every table has (type, id, param) and its value columns:
//     search_string    text, exact                    (type, param, text)
//     search_token     system, code, text             (type, param, code, system)
//     search_date      lo, hi                         (type, param, lo), (type, param, hi)
//     search_number    value                          (type, param, value)
//     search_quantity  system, code, unit, value      (type, param, code, value)
//     search_reference target_type, target_id, url    (type, param, target_type, target_id),
//                                                     (target_type, target_id), (type, param, url)
//     search_uri       value                          (type, param, value)
//   with the value index(es) listed for searches by value, plus (type, id) on every table for
//   replacing a resource's rows and joining back to resource_current. (target_type, target_id)
//   serves _revinclude and reverse chains, which look for whoever points at a resource.
//   Text columns are never NULL (absent text is ''); PostgreSQL compares them bytewise (COLLATE
//   "C"), as SQLite's BINARY collation does, so range scans (starts-with) behave alike. lo/hi are
//   epoch microseconds UTC, an inclusive range (INT64_MIN / INT64_MAX for open Period ends);
//   value is a double. No primary keys: rows are only ever found through (type, id) or by value.
//   Also resource_current (type, last_updated): _lastUpdated filters and the default sort of a
//   type's search (last_updated is fixed-width UTC text, so text order is time order).
//
// Version 4: the HL7v2 bridge's integration tables, written with StoreTransaction::execute.
//   hl7_message  every inbound message, stored before any ACK leaves (store-before-ACK): the raw
//                bytes (base64, since v2 messages may be 8-bit in any MSH-18 character set), the
//                sender (MSH-3^MSH-4) and control id (MSH-10; unique per sender, so a resend is
//                recognised), status received/processed/error/rejected, the error text and the ACK
//                that was sent (base64), so a duplicate gets the original ACK again.
//   hl7_outbox   outbound v2 messages made from FHIR writes, enqueued in the transaction of the
//                write (so none is lost or sent for a write that rolled back), then delivered over
//                MLLP by a dispatcher with retry and back-off; status pending/sent/failed, the
//                partner's ACK code and the last error.
//   Times are FHIR instants (text) plus epoch microseconds for ordering and due-time scans.
//
// Version 5: event_outbox, work that a write triggers, enqueued in the transaction of the write
//   (so none is lost or done for a rolled-back write): kind 'rest-hook' are the notifications of
//   R4 Subscriptions, kind 'lab-alert' the Communications to raise for final lab reports;
//   subscription, the resource version (Type/id/_history/n and its store seq, the per-subscription
//   delivery order), the payload (resource JSON, empty for ping), status pending/delivered/failed/
//   dropped, attempts, next due time, last error.
//
// Version 6: pharmacy stock (workflows/pharmacy.h). stock_lot: units on hand per Medication and
//   lot, with the lot's expiry date (never negative: CHECK); stock_item: the reorder level per
//   Medication; stock_movement: every change (receipt +, dispense -) with the resource that made
//   it, so a dispense is applied once and stock can be traced. invoice_payment: the payments
//   recorded against an Invoice (amount as exact decimal text; the PaymentReconciliation resource
//   is the FHIR record of each), from which the outstanding balance is computed.
//
// Version 7: the embedded authorization server (issue 5; server/src/auth_directory.h).
//   auth_account: user accounts (id = login name, scrypt password hash, space-separated roles of
//   config/roles.properties, fhirUser reference, active flag). auth_client: registered OAuth clients
//   (client_type public | confidential-symmetric | confidential-asymmetric; SHA-256 of the generated
//   secret for symmetric clients; space-separated exact redirect URIs, allowed scopes, allowed jku
//   URLs and roles (backend clients); the registered JWKS as JSON text).
//
// Version 8: registration_counter, named counters that only grow (workflows/registration.h: the
//   hospital MRN, name "mrn|<system>"): a number is taken by incrementing the row in the
//   transaction that writes the resource carrying it, so it is never handed out twice or reused.
//
// Version 9: audit_log, the audit trail's staging table (server/src/audit.h): each row one
//   AuditEvent (its JSON) as the audit writer built it, appended in batches (one narrow B-tree
//   keyed by an increasing seq, so an audited read costs an append, not the ~170 random index
//   rows of a merged AuditEvent). Rows become AuditEvent resources (and are deleted, in the same
//   transaction) in the background and before any request that may read AuditEvents.
#include "store_common.h"

namespace hearth::fhir::storeimpl {

const std::vector<Migration>& sqliteMigrations() {
  static const std::vector<Migration> steps = {
      {1, "resource versions and current pointers", R"SQL(
-- seq is the rowid: history paging walks the table's own b-tree, and reads join on it.
-- AUTOINCREMENT keeps seq strictly increasing even if the newest rows were ever removed.
CREATE TABLE resource_version (
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,
  type            TEXT    NOT NULL,
  id              TEXT    NOT NULL,
  version         INTEGER NOT NULL,
  last_updated    TEXT    NOT NULL,
  last_updated_us INTEGER NOT NULL,
  deleted         INTEGER NOT NULL,
  content         BLOB    NOT NULL,
  UNIQUE (type, id, version)
);
CREATE INDEX resource_version_instance_seq ON resource_version (type, id, seq);
CREATE INDEX resource_version_type_seq ON resource_version (type, seq);
CREATE INDEX resource_version_updated ON resource_version (last_updated_us);
CREATE INDEX resource_version_type_updated ON resource_version (type, last_updated_us);

-- Small rows, clustered on the key: the lookup that starts every read and every write.
CREATE TABLE resource_current (
  type         TEXT    NOT NULL,
  id           TEXT    NOT NULL,
  version      INTEGER NOT NULL,
  deleted      INTEGER NOT NULL,
  seq          INTEGER NOT NULL,
  last_updated TEXT    NOT NULL,
  PRIMARY KEY (type, id)
) WITHOUT ROWID;
)SQL"},
      {2, "record the interaction that made each version", R"SQL(
ALTER TABLE resource_version ADD COLUMN op SMALLINT NOT NULL DEFAULT 0;
)SQL"},
      {3, "search index tables", R"SQL(
-- Plain rowid tables: a resource's rows are found through the (type, id) index.
CREATE TABLE search_string (
  type  TEXT NOT NULL,
  id    TEXT NOT NULL,
  param TEXT NOT NULL,
  text  TEXT NOT NULL,
  exact TEXT NOT NULL
);
CREATE INDEX search_string_value ON search_string (type, param, text);
CREATE INDEX search_string_resource ON search_string (type, id);

CREATE TABLE search_token (
  type   TEXT NOT NULL,
  id     TEXT NOT NULL,
  param  TEXT NOT NULL,
  system TEXT NOT NULL,
  code   TEXT NOT NULL,
  text   TEXT NOT NULL
);
CREATE INDEX search_token_value ON search_token (type, param, code, system);
CREATE INDEX search_token_resource ON search_token (type, id);

CREATE TABLE search_date (
  type  TEXT NOT NULL,
  id    TEXT NOT NULL,
  param TEXT NOT NULL,
  lo    INTEGER NOT NULL,
  hi    INTEGER NOT NULL
);
CREATE INDEX search_date_lo ON search_date (type, param, lo);
CREATE INDEX search_date_hi ON search_date (type, param, hi);
CREATE INDEX search_date_resource ON search_date (type, id);

CREATE TABLE search_number (
  type  TEXT NOT NULL,
  id    TEXT NOT NULL,
  param TEXT NOT NULL,
  value REAL NOT NULL
);
CREATE INDEX search_number_value ON search_number (type, param, value);
CREATE INDEX search_number_resource ON search_number (type, id);

CREATE TABLE search_quantity (
  type   TEXT NOT NULL,
  id     TEXT NOT NULL,
  param  TEXT NOT NULL,
  system TEXT NOT NULL,
  code   TEXT NOT NULL,
  unit   TEXT NOT NULL,
  value  REAL NOT NULL
);
CREATE INDEX search_quantity_value ON search_quantity (type, param, code, value);
CREATE INDEX search_quantity_resource ON search_quantity (type, id);

CREATE TABLE search_reference (
  type        TEXT NOT NULL,
  id          TEXT NOT NULL,
  param       TEXT NOT NULL,
  target_type TEXT NOT NULL,
  target_id   TEXT NOT NULL,
  url         TEXT NOT NULL
);
CREATE INDEX search_reference_value ON search_reference (type, param, target_type, target_id);
CREATE INDEX search_reference_target ON search_reference (target_type, target_id);
CREATE INDEX search_reference_resource ON search_reference (type, id);
CREATE INDEX search_reference_url ON search_reference (type, param, url);

CREATE TABLE search_uri (
  type  TEXT NOT NULL,
  id    TEXT NOT NULL,
  param TEXT NOT NULL,
  value TEXT NOT NULL
);
CREATE INDEX search_uri_value ON search_uri (type, param, value);
CREATE INDEX search_uri_resource ON search_uri (type, id);

CREATE INDEX resource_current_type_updated ON resource_current (type, last_updated);
)SQL"},
      {4, "HL7v2 message store and outbox", R"SQL(
CREATE TABLE hl7_message (
  id            TEXT PRIMARY KEY,
  sender        TEXT NOT NULL,
  control_id    TEXT NOT NULL,
  message_type  TEXT NOT NULL,
  received_at   TEXT NOT NULL,
  received_us   BIGINT NOT NULL,
  raw_b64       TEXT NOT NULL,
  status        TEXT NOT NULL,
  error         TEXT NOT NULL DEFAULT '',
  ack_code      TEXT NOT NULL DEFAULT '',
  ack_b64       TEXT NOT NULL DEFAULT '',
  processed_at  TEXT NOT NULL DEFAULT '',
  attempts      INTEGER NOT NULL DEFAULT 0,
  UNIQUE (sender, control_id)
);
CREATE INDEX hl7_message_status ON hl7_message (status, received_us);
CREATE INDEX hl7_message_received ON hl7_message (received_us);


CREATE TABLE hl7_outbox (
  id              TEXT PRIMARY KEY,
  route           TEXT NOT NULL,
  message_type    TEXT NOT NULL,
  control_id      TEXT NOT NULL,
  source          TEXT NOT NULL,
  payload_b64     TEXT NOT NULL,
  status          TEXT NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_us BIGINT NOT NULL,
  created_at      TEXT NOT NULL,
  created_us      BIGINT NOT NULL,
  sent_at         TEXT NOT NULL DEFAULT '',
  ack_code        TEXT NOT NULL DEFAULT '',
  last_error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX hl7_outbox_due ON hl7_outbox (status, next_attempt_us);
CREATE INDEX hl7_outbox_created ON hl7_outbox (created_us);
-- the dispatcher's FIFO head per route, and "was this resource already sent on this route"
CREATE INDEX hl7_outbox_queue ON hl7_outbox (route, status, created_us);
CREATE INDEX hl7_outbox_source ON hl7_outbox (route, source);
)SQL"},
      {5, "event outbox (subscription notifications)", R"SQL(
CREATE TABLE event_outbox (
  id              TEXT PRIMARY KEY,
  kind            TEXT NOT NULL DEFAULT 'rest-hook',
  subscription_id TEXT NOT NULL,
  resource        TEXT NOT NULL,
  seq             BIGINT NOT NULL,
  payload         TEXT NOT NULL,
  status          TEXT NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_us BIGINT NOT NULL,
  created_us      BIGINT NOT NULL,
  delivered_us    BIGINT NOT NULL DEFAULT 0,
  last_error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX event_outbox_due ON event_outbox (kind, status, next_attempt_us);
CREATE INDEX event_outbox_queue ON event_outbox (subscription_id, status, seq);
)SQL"},
      {6, "pharmacy stock and invoice payments", R"SQL(
CREATE TABLE stock_lot (
  medication_id TEXT NOT NULL,
  lot           TEXT NOT NULL,
  expiry        TEXT NOT NULL,
  quantity      BIGINT NOT NULL CHECK (quantity >= 0),
  received_us   BIGINT NOT NULL,
  PRIMARY KEY (medication_id, lot)
);
CREATE TABLE stock_item (
  medication_id TEXT PRIMARY KEY,
  reorder_level BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE stock_movement (
  id            TEXT PRIMARY KEY,
  medication_id TEXT NOT NULL,
  lot           TEXT NOT NULL,
  delta         BIGINT NOT NULL,
  reason        TEXT NOT NULL,
  resource      TEXT NOT NULL,
  at_us         BIGINT NOT NULL
);
CREATE INDEX stock_movement_resource ON stock_movement (resource);
CREATE INDEX stock_movement_medication ON stock_movement (medication_id, at_us);
CREATE TABLE invoice_payment (
  payment_id  TEXT PRIMARY KEY,
  invoice_id  TEXT NOT NULL,
  amount      TEXT NOT NULL,
  currency    TEXT NOT NULL,
  at_us       BIGINT NOT NULL
);
CREATE INDEX invoice_payment_invoice ON invoice_payment (invoice_id);
)SQL"},
      {7, "authorization server accounts and OAuth clients", R"SQL(
CREATE TABLE auth_account (
  id            TEXT PRIMARY KEY,
  password_hash TEXT NOT NULL,
  roles         TEXT NOT NULL DEFAULT '',
  fhir_user     TEXT NOT NULL DEFAULT '',
  display_name  TEXT NOT NULL DEFAULT '',
  active        INTEGER NOT NULL DEFAULT 1,
  created_us    BIGINT NOT NULL,
  updated_us    BIGINT NOT NULL
);
CREATE TABLE auth_client (
  client_id     TEXT PRIMARY KEY,
  name          TEXT NOT NULL DEFAULT '',
  client_type   TEXT NOT NULL,
  secret_sha256 TEXT NOT NULL DEFAULT '',
  redirect_uris TEXT NOT NULL DEFAULT '',
  scopes        TEXT NOT NULL DEFAULT '',
  jwks          TEXT NOT NULL DEFAULT '',
  jku           TEXT NOT NULL DEFAULT '',
  roles         TEXT NOT NULL DEFAULT '',
  active        INTEGER NOT NULL DEFAULT 1,
  created_us    BIGINT NOT NULL,
  updated_us    BIGINT NOT NULL
);
)SQL"},
      {8, "registration counters (hospital MRN)", R"SQL(
CREATE TABLE registration_counter (
  name       TEXT PRIMARY KEY,
  last_value BIGINT NOT NULL
);
)SQL"},
      {9, "audit trail staging log", R"SQL(
CREATE TABLE audit_log (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  created_us BIGINT NOT NULL,
  event      TEXT NOT NULL
);
)SQL"},
      {10, "reference index: local references without a url copy, covering indexes for $everything", R"SQL(
-- A local reference's url column repeated target_type/target_id ("Patient/123"): it is now stored
-- only when it says more (absolute URLs, canonicals, references that did not parse), and only
-- those rows are in the url index (searches by URL name url <> '' so the partial index serves
-- them). That is one b-tree insert fewer per reference row (the bulk-import cost).
UPDATE search_reference SET url = '' WHERE target_id <> '' AND url = target_type || '/' || target_id;
DROP INDEX search_reference_url;
CREATE INDEX search_reference_url ON search_reference (type, param, url) WHERE url <> '';
-- $everything's key query finds a patient's compartment members by target and their references
-- by (type, id): with the columns it reads in the index, it no longer visits the table's rows
-- (scattered across the file as the database grows), one random page read per row at 1M.
DROP INDEX search_reference_target;
CREATE INDEX search_reference_target ON search_reference (target_type, target_id, type, param, id);
DROP INDEX search_reference_resource;
CREATE INDEX search_reference_resource ON search_reference (type, id, target_type, target_id);
)SQL"},
      {11, "reference index: searches by target through search_reference_target", R"SQL(
-- search_reference_target (target_type, target_id, type, param, id) answers every search for
-- references to a given target, which is what the value index (type, param, target_type,
-- target_id) was for, and covers the id besides: the value index only cost a random b-tree
-- insert per reference row (15-20 % of a bulk import). Searches for a bare id list the target
-- types (search_sql.cpp) so the target index still serves them.
DROP INDEX search_reference_value;
)SQL"},
  };
  return steps;
}

const std::vector<Migration>& postgresMigrations() {
  static const std::vector<Migration> steps = {
      {1, "resource versions and current pointers", R"SQL(
-- type and id compare bytewise (COLLATE "C"): FHIR ids are case-sensitive ASCII, and the C
-- collation keeps the b-trees cheap whatever the database's default locale is.
-- content is bytea so the JSON bytes come back exactly as written, whatever the encodings.
CREATE TABLE resource_version (
  type            TEXT COLLATE "C" NOT NULL,
  id              TEXT COLLATE "C" NOT NULL,
  version         BIGINT  NOT NULL,
  seq             BIGINT  GENERATED ALWAYS AS IDENTITY,
  last_updated    TEXT    NOT NULL,
  last_updated_us BIGINT  NOT NULL,
  deleted         BOOLEAN NOT NULL,
  content         BYTEA   NOT NULL,
  PRIMARY KEY (type, id, version),
  UNIQUE (seq)
);
CREATE INDEX resource_version_instance_seq ON resource_version (type, id, seq);
CREATE INDEX resource_version_type_seq ON resource_version (type, seq);
CREATE INDEX resource_version_updated ON resource_version (last_updated_us);
CREATE INDEX resource_version_type_updated ON resource_version (type, last_updated_us);

-- Writers lock the row here (SELECT ... FOR UPDATE) before appending a version.
CREATE TABLE resource_current (
  type         TEXT COLLATE "C" NOT NULL,
  id           TEXT COLLATE "C" NOT NULL,
  version      BIGINT  NOT NULL,
  deleted      BOOLEAN NOT NULL,
  seq          BIGINT  NOT NULL,
  last_updated TEXT    NOT NULL,
  PRIMARY KEY (type, id)
);
)SQL"},
      {2, "record the interaction that made each version", R"SQL(
ALTER TABLE resource_version ADD COLUMN op SMALLINT NOT NULL DEFAULT 0;
)SQL"},
      {3, "search index tables", R"SQL(
-- Heap tables without keys; text bytewise (COLLATE "C") like resource_current.type/id.
CREATE TABLE search_string (
  type  TEXT COLLATE "C" NOT NULL,
  id    TEXT COLLATE "C" NOT NULL,
  param TEXT COLLATE "C" NOT NULL,
  text  TEXT COLLATE "C" NOT NULL,
  exact TEXT COLLATE "C" NOT NULL
);
CREATE INDEX search_string_value ON search_string (type, param, text);
CREATE INDEX search_string_resource ON search_string (type, id);

CREATE TABLE search_token (
  type   TEXT COLLATE "C" NOT NULL,
  id     TEXT COLLATE "C" NOT NULL,
  param  TEXT COLLATE "C" NOT NULL,
  system TEXT COLLATE "C" NOT NULL,
  code   TEXT COLLATE "C" NOT NULL,
  text   TEXT COLLATE "C" NOT NULL
);
CREATE INDEX search_token_value ON search_token (type, param, code, system);
CREATE INDEX search_token_resource ON search_token (type, id);

CREATE TABLE search_date (
  type  TEXT COLLATE "C" NOT NULL,
  id    TEXT COLLATE "C" NOT NULL,
  param TEXT COLLATE "C" NOT NULL,
  lo    BIGINT NOT NULL,
  hi    BIGINT NOT NULL
);
CREATE INDEX search_date_lo ON search_date (type, param, lo);
CREATE INDEX search_date_hi ON search_date (type, param, hi);
CREATE INDEX search_date_resource ON search_date (type, id);

CREATE TABLE search_number (
  type  TEXT COLLATE "C" NOT NULL,
  id    TEXT COLLATE "C" NOT NULL,
  param TEXT COLLATE "C" NOT NULL,
  value DOUBLE PRECISION NOT NULL
);
CREATE INDEX search_number_value ON search_number (type, param, value);
CREATE INDEX search_number_resource ON search_number (type, id);

CREATE TABLE search_quantity (
  type   TEXT COLLATE "C" NOT NULL,
  id     TEXT COLLATE "C" NOT NULL,
  param  TEXT COLLATE "C" NOT NULL,
  system TEXT COLLATE "C" NOT NULL,
  code   TEXT COLLATE "C" NOT NULL,
  unit   TEXT COLLATE "C" NOT NULL,
  value  DOUBLE PRECISION NOT NULL
);
CREATE INDEX search_quantity_value ON search_quantity (type, param, code, value);
CREATE INDEX search_quantity_resource ON search_quantity (type, id);

CREATE TABLE search_reference (
  type        TEXT COLLATE "C" NOT NULL,
  id          TEXT COLLATE "C" NOT NULL,
  param       TEXT COLLATE "C" NOT NULL,
  target_type TEXT COLLATE "C" NOT NULL,
  target_id   TEXT COLLATE "C" NOT NULL,
  url         TEXT COLLATE "C" NOT NULL
);
CREATE INDEX search_reference_value ON search_reference (type, param, target_type, target_id);
CREATE INDEX search_reference_target ON search_reference (target_type, target_id);
CREATE INDEX search_reference_resource ON search_reference (type, id);
CREATE INDEX search_reference_url ON search_reference (type, param, url);

CREATE TABLE search_uri (
  type  TEXT COLLATE "C" NOT NULL,
  id    TEXT COLLATE "C" NOT NULL,
  param TEXT COLLATE "C" NOT NULL,
  value TEXT COLLATE "C" NOT NULL
);
CREATE INDEX search_uri_value ON search_uri (type, param, value);
CREATE INDEX search_uri_resource ON search_uri (type, id);

CREATE INDEX resource_current_type_updated ON resource_current (type, last_updated);
)SQL"},
      {4, "HL7v2 message store and outbox", R"SQL(
CREATE TABLE hl7_message (
  id            TEXT COLLATE "C" PRIMARY KEY,
  sender        TEXT COLLATE "C" NOT NULL,
  control_id    TEXT COLLATE "C" NOT NULL,
  message_type  TEXT COLLATE "C" NOT NULL,
  received_at   TEXT COLLATE "C" NOT NULL,
  received_us   BIGINT NOT NULL,
  raw_b64       TEXT NOT NULL,
  status        TEXT COLLATE "C" NOT NULL,
  error         TEXT NOT NULL DEFAULT '',
  ack_code      TEXT COLLATE "C" NOT NULL DEFAULT '',
  ack_b64       TEXT NOT NULL DEFAULT '',
  processed_at  TEXT COLLATE "C" NOT NULL DEFAULT '',
  attempts      INTEGER NOT NULL DEFAULT 0,
  UNIQUE (sender, control_id)
);
CREATE INDEX hl7_message_status ON hl7_message (status, received_us);
CREATE INDEX hl7_message_received ON hl7_message (received_us);


CREATE TABLE hl7_outbox (
  id              TEXT COLLATE "C" PRIMARY KEY,
  route           TEXT COLLATE "C" NOT NULL,
  message_type    TEXT COLLATE "C" NOT NULL,
  control_id      TEXT COLLATE "C" NOT NULL,
  source          TEXT COLLATE "C" NOT NULL,
  payload_b64     TEXT NOT NULL,
  status          TEXT COLLATE "C" NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_us BIGINT NOT NULL,
  created_at      TEXT COLLATE "C" NOT NULL,
  created_us      BIGINT NOT NULL,
  sent_at         TEXT COLLATE "C" NOT NULL DEFAULT '',
  ack_code        TEXT COLLATE "C" NOT NULL DEFAULT '',
  last_error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX hl7_outbox_due ON hl7_outbox (status, next_attempt_us);
CREATE INDEX hl7_outbox_created ON hl7_outbox (created_us);
-- the dispatcher's FIFO head per route, and "was this resource already sent on this route"
CREATE INDEX hl7_outbox_queue ON hl7_outbox (route, status, created_us);
CREATE INDEX hl7_outbox_source ON hl7_outbox (route, source);
)SQL"},
      {5, "event outbox (subscription notifications)", R"SQL(
CREATE TABLE event_outbox (
  id              TEXT COLLATE "C" PRIMARY KEY,
  kind            TEXT COLLATE "C" NOT NULL DEFAULT 'rest-hook',
  subscription_id TEXT COLLATE "C" NOT NULL,
  resource        TEXT COLLATE "C" NOT NULL,
  seq             BIGINT NOT NULL,
  payload         TEXT NOT NULL,
  status          TEXT COLLATE "C" NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_us BIGINT NOT NULL,
  created_us      BIGINT NOT NULL,
  delivered_us    BIGINT NOT NULL DEFAULT 0,
  last_error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX event_outbox_due ON event_outbox (kind, status, next_attempt_us);
CREATE INDEX event_outbox_queue ON event_outbox (subscription_id, status, seq);
)SQL"},
      {6, "pharmacy stock and invoice payments", R"SQL(
CREATE TABLE stock_lot (
  medication_id TEXT COLLATE "C" NOT NULL,
  lot           TEXT COLLATE "C" NOT NULL,
  expiry        TEXT COLLATE "C" NOT NULL,
  quantity      BIGINT NOT NULL CHECK (quantity >= 0),
  received_us   BIGINT NOT NULL,
  PRIMARY KEY (medication_id, lot)
);
CREATE TABLE stock_item (
  medication_id TEXT COLLATE "C" PRIMARY KEY,
  reorder_level BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE stock_movement (
  id            TEXT COLLATE "C" PRIMARY KEY,
  medication_id TEXT COLLATE "C" NOT NULL,
  lot           TEXT COLLATE "C" NOT NULL,
  delta         BIGINT NOT NULL,
  reason        TEXT COLLATE "C" NOT NULL,
  resource      TEXT COLLATE "C" NOT NULL,
  at_us         BIGINT NOT NULL
);
CREATE INDEX stock_movement_resource ON stock_movement (resource);
CREATE INDEX stock_movement_medication ON stock_movement (medication_id, at_us);
CREATE TABLE invoice_payment (
  payment_id  TEXT COLLATE "C" PRIMARY KEY,
  invoice_id  TEXT COLLATE "C" NOT NULL,
  amount      TEXT NOT NULL,
  currency    TEXT COLLATE "C" NOT NULL,
  at_us       BIGINT NOT NULL
);
CREATE INDEX invoice_payment_invoice ON invoice_payment (invoice_id);
)SQL"},
      {7, "authorization server accounts and OAuth clients", R"SQL(
CREATE TABLE auth_account (
  id            TEXT COLLATE "C" PRIMARY KEY,
  password_hash TEXT NOT NULL,
  roles         TEXT NOT NULL DEFAULT '',
  fhir_user     TEXT NOT NULL DEFAULT '',
  display_name  TEXT NOT NULL DEFAULT '',
  active        INTEGER NOT NULL DEFAULT 1,
  created_us    BIGINT NOT NULL,
  updated_us    BIGINT NOT NULL
);
CREATE TABLE auth_client (
  client_id     TEXT COLLATE "C" PRIMARY KEY,
  name          TEXT NOT NULL DEFAULT '',
  client_type   TEXT NOT NULL,
  secret_sha256 TEXT NOT NULL DEFAULT '',
  redirect_uris TEXT NOT NULL DEFAULT '',
  scopes        TEXT NOT NULL DEFAULT '',
  jwks          TEXT NOT NULL DEFAULT '',
  jku           TEXT NOT NULL DEFAULT '',
  roles         TEXT NOT NULL DEFAULT '',
  active        INTEGER NOT NULL DEFAULT 1,
  created_us    BIGINT NOT NULL,
  updated_us    BIGINT NOT NULL
);
)SQL"},
      {8, "registration counters (hospital MRN)", R"SQL(
CREATE TABLE registration_counter (
  name       TEXT COLLATE "C" PRIMARY KEY,
  last_value BIGINT NOT NULL
);
)SQL"},
      {9, "audit trail staging log", R"SQL(
CREATE TABLE audit_log (
  seq        BIGSERIAL PRIMARY KEY,
  created_us BIGINT NOT NULL,
  event      TEXT NOT NULL
);
)SQL"},
  };
  return steps;
}

}  // namespace hearth::fhir::storeimpl
