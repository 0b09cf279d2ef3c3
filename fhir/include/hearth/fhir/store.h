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
#include <vector>

namespace hearth::fhir {

struct StoredVersion {
  std::string type;
  std::string id;
  int64_t version = 0;       // 1, 2, 3 ... per resource
  std::string lastUpdated;   // FHIR instant, UTC, millisecond precision: 2026-11-22T04:14:56.123Z
  bool deleted = false;
  std::string json;          // the resource as stored (empty when deleted)
  int64_t seq = 0;           // store-wide, strictly increasing write sequence (history order, cursors)
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
  // The caller guarantees v.version == previous version + 1 (or 1 for a new resource).
  virtual void put(StoredVersion& v) = 0;
  virtual void commit() = 0;
};

struct HistoryQuery {
  std::string type;                 // empty: whole system
  std::string id;                   // empty: whole type (requires type)
  std::optional<std::string> since; // FHIR instant; only versions with lastUpdated >= since
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
};

struct StoreOptions {
  std::string url;            // "sqlite:/path/hearth.db" | "postgresql://user:pw@host:port/db"
  int poolMin = 2;
  int poolMax = 16;
  std::string sqliteSynchronous = "FULL";  // FULL (power-loss safe) | NORMAL (process-crash safe)
  int busyTimeoutMs = 5000;
};

// Opens the store named by options.url and applies pending schema migrations.
// Throws StoreUnavailable if the database cannot be opened or migrated.
std::unique_ptr<ResourceStore> openStore(const StoreOptions& options);

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

}  // namespace hearth::fhir
