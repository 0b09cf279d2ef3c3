#pragma once
// ResourceStore: the storage port of Hearth's FHIR layer.
//
// Owns durable, versioned resource storage. Every version of every resource is kept; a delete is
// a version too (deleted = true, empty json). The stored json of a live version already carries
// id, meta.versionId and meta.lastUpdated, so a read can send the stored bytes as they are.
//
// Two backends implement it through Poco::Data: SQLite (embedded default, WAL) and PostgreSQL.
// Backend-neutral rules (version numbering, If-Match, retries) live in ResourceService
// (service.h) on top of StoreTransaction; backends only persist and fetch.
//
// Threading: a ResourceStore is shared by all request threads; every method is thread-safe.
// A StoreTransaction belongs to one thread and lives for one unit of work.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace hearth::fhir {

struct IndexRow;  // search_index.h

// Generic read queries for the search engine (search.h), which builds SQL over the logical schema
// of store_migrations.cpp. Placeholders are written '?' and bound in order; the PostgreSQL backend
// rewrites them to $1, $2 ... (the builder never puts '?' inside SQL literals). Values: NULL,
// 64-bit integer, double, or text (bound as text; PostgreSQL infers the type from the context, so
// the builder casts where the context does not say, e.g. CAST(? AS BIGINT)).
// Result columns come back as: integers (SQLite INTEGER, PostgreSQL int2/4/8 and boolean as 0/1)
// -> int64_t; SQLite REAL, PostgreSQL float4/float8/numeric -> double; text and blobs (bytea
// decoded to its raw bytes) -> std::string; NULL -> monostate.
using SqlValue = std::variant<std::monostate, int64_t, double, std::string>;
struct SqlQuery {
  std::string sql;
  std::vector<SqlValue> params;
};
using SqlRow = std::vector<SqlValue>;
enum class SqlDialect { Sqlite, Postgres };

class StoreConflict : public std::exception {
 public:
  const char* what() const noexcept override { return "concurrent write conflict"; }
};
class StoreUnavailable : public std::exception {
 public:
  explicit StoreUnavailable(std::string msg) : msg_(std::move(msg)) {}
  const char* what() const noexcept override { return msg_.c_str(); }  // for logs only, never clients
 private:
  std::string msg_;
};


// The interaction that made a version; history entries report it as request.method.
//   Create  POST Type (always version 1)
//   Update  PUT Type/id, also when the PUT created the resource (update-as-create, or a PUT after a
//           deletion)
//   Delete  DELETE Type/id (exactly the versions with deleted = true)
// Versions written before the store recorded this (schema version 1) read back as Delete when
// deleted, else Create for version 1 and Update for later versions.
enum class WriteOp : uint8_t { Create = 1, Update = 2, Delete = 3 };

struct StoredVersion {
  std::string type;
  std::string id;
  int64_t version = 0;       // 1, 2, 3 ... per resource
  std::string lastUpdated;   // FHIR instant, UTC, millisecond precision: 2026-11-22T04:14:56.123Z
  bool deleted = false;
  std::string json;          // the resource as stored (empty when deleted)
  int64_t seq = 0;           // store-wide, strictly increasing write sequence (history order, cursors)
  WriteOp op = WriteOp::Create;  // what made this version (see WriteOp)
};

// The current state of one resource, as seen (and, in a transaction, locked) by a writer.
struct CurrentVersion {
  int64_t version = 0;
  bool deleted = false;
  std::string lastUpdated;
};

// One atomic unit of work. Destroying it without commit() rolls back.
// Errors: a write that collides with a concurrent writer throws StoreConflict (the caller may retry
// the whole unit); any other backend failure throws StoreUnavailable. Both carry no SQL text.
class StoreTransaction {
 public:
  virtual ~StoreTransaction() = default;
  // Current version of type/id, or nullopt if it never existed. Within the transaction the row is
  // locked against concurrent writers where the backend needs it (PostgreSQL: SELECT ... FOR UPDATE).
  virtual std::optional<CurrentVersion> current(std::string_view type, std::string_view id) = 0;
  // Appends a version and makes it current. v.seq is assigned by the store and written back.
  // The caller guarantees v.version == previous version + 1 (or 1 for a new resource), that
  // v.lastUpdated is a valid FHIR instant, and that v.op is a WriteOp that is Delete exactly when
  // v.deleted (std::invalid_argument otherwise). A version that is not exactly one ahead of the
  // stored current version throws StoreConflict.
  virtual void put(StoredVersion& v) = 0;
  virtual void commit() = 0;
  // Commits and makes the writes visible without waiting for them to be durable (no WAL sync on
  // SQLite); a later commit() or a checkpoint makes them durable, in order. Only for writes whose
  // input the caller holds durably elsewhere (GroupCommitter's applied units, hl7_journal.h).
  // The default is commit().
  virtual void commitUnsynced() { commit(); }
  // One level of savepoint, used by GroupCommitter to isolate the units of work that share this
  // transaction: savepoint() marks, releaseSavepoint() keeps what was done since, and
  // rollbackToSavepoint() undoes it (also after a failed statement) and leaves the transaction usable.
  virtual void savepoint() = 0;
  virtual void releaseSavepoint() = 0;
  virtual void rollbackToSavepoint() = 0;

  // Replaces every search-index row of type/id (all kinds) with `rows` (empty: removes them, as
  // for a deletion). Callers index the version they put in the same transaction.
  virtual void replaceIndex(std::string_view type, std::string_view id, const std::vector<IndexRow>& rows) = 0;
  // Runs a read query inside this transaction (sees its own uncommitted writes).
  // Throws StoreUnavailable on SQL errors (the message, for logs, may contain the SQL).
  virtual std::vector<SqlRow> query(const SqlQuery& q) = 0;
  // Serialises writers that use the same key until this transaction ends, so that a check-then-
  // write (conditional create, conditional update) cannot race another one with the same key.
  // PostgreSQL: pg_advisory_xact_lock(hash of key). SQLite: nothing to do (one writer at a time).
  virtual void lockKey(std::string_view key) = 0;
  // Runs one INSERT, UPDATE or DELETE on the integration tables (hl7_message, hl7_outbox and the
  // like) inside this transaction and returns the number of rows it changed. Resource and index
  // tables (resource_*, search_*) are written only through put() and replaceIndex(): a statement
  // naming them is refused, as is anything that is not one of those three statements.
  // Throws StoreUnavailable on SQL errors (constraint violations included; the message, for logs,
  // may contain the SQL).
  virtual int64_t execute(const SqlQuery& q) = 0;
};

struct HistoryQuery {
  std::string type;                 // empty: whole system
  std::string id;                   // empty: whole type (requires type)
  std::optional<std::string> since; // FHIR instant; only versions with lastUpdated >= since.
                                    // Also YYYY, YYYY-MM, YYYY-MM-DD (start of that day, UTC).
                                    // history() throws FhirError 400 (invalid) for anything else.
  std::optional<int64_t> beforeSeq; // paging cursor: only versions with seq < beforeSeq
  int count = 50;                   // page size, >= 1
};

struct HistoryPage {
  std::vector<StoredVersion> entries;  // newest first (seq descending)
  std::optional<int64_t> nextBeforeSeq; // cursor of the next (older) page, if there is one
  int64_t total = -1;                  // number of matching versions, -1 if not computed
};

struct StorePoolStats {
  int capacity = 0;   // maximum sessions
  int allocated = 0;  // sessions opened
  int idle = 0;       // sessions ready in the pool
  int inUse = 0;      // sessions checked out right now
};

class ResourceStore {
 public:
  virtual ~ResourceStore() = default;
  virtual std::unique_ptr<StoreTransaction> begin() = 0;
  // Current version (possibly a deletion marker), or nullopt if type/id never existed.
  virtual std::optional<StoredVersion> read(std::string_view type, std::string_view id) = 0;
  virtual std::optional<StoredVersion> vread(std::string_view type, std::string_view id, int64_t version) = 0;
  virtual HistoryPage history(const HistoryQuery& q) = 0;
  // True if the database answers a trivial query now.
  virtual bool healthy() = 0;
  virtual StorePoolStats poolStats() = 0;
  virtual std::string backendName() const = 0;  // "sqlite" | "postgresql"
  virtual SqlDialect dialect() const = 0;
  // Runs a read query on a pooled connection (committed data only). See SqlQuery.
  virtual std::vector<SqlRow> query(const SqlQuery& q) = 0;
};

struct StoreOptions {
  std::string url;            // "sqlite:/path/hearth.db" | "postgresql://user:pw@host:port/db"
  int poolMin = 2;
  int poolMax = 16;
  std::string sqliteSynchronous = "FULL";  // FULL (power-loss safe) | NORMAL (process-crash safe)
  int busyTimeoutMs = 5000;
  // SQLite WAL checkpoints run on a background thread of the store, not inside commits: every
  // sqliteCheckpointIntervalMs while there are new commits; and once the WAL holds
  // sqliteWalRestartKb, writers are held back for one short checkpoint so the WAL can start over
  // from its beginning (which bounds its size).
  int sqliteCheckpointIntervalMs = 100;
  int sqliteWalRestartKb = 65536;
  // SQLite page cache of each pooled read connection, and of the one write connection (kept
  // warm from one write transaction to the next), in MiB; allocated as pages are used.
  int sqliteCacheMb = 32;
  int sqliteWriterCacheMb = 32;
  // Memory-mapped reads (PRAGMA mmap_size) in MiB; 0 = off (pread).
  int sqliteMmapMb = 0;
  // Gather the WAL appends of a commit into few write() calls (sqlite_wal_buffer.cpp). Applies
  // to the whole process from the first SQLite store opened with it on.
  bool sqliteWalWriteBuffer = true;
};

// Opens the store named by options.url and applies pending schema migrations.
// Throws StoreUnavailable if the database cannot be opened or migrated.
// URLs: sqlite:PATH (also sqlite:///abs/path), postgresql://user:pw@host:port/db?param=value
// (also postgres://; query parameters are libpq keywords such as sslmode or options;
// percent-escapes are decoded; values must not contain whitespace).
// Every StoreTransaction must be gone before its ResourceStore is destroyed.
std::unique_ptr<ResourceStore> openStore(const StoreOptions& options);

// A FHIR instant (e.g. 2024-01-31T12:00:00.123+01:00) as microseconds since 1970-01-01T00:00:00Z,
// or nullopt if it is not a valid instant. This is the order in which the store compares
// lastUpdated with HistoryQuery::since.
std::optional<int64_t> instantToEpochMicros(std::string_view instant);

}  // namespace hearth::fhir
