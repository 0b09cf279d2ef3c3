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
  };
  return steps;
}

}  // namespace hearth::fhir::storeimpl
