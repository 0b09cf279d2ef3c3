#pragma once
// Private plumbing shared by the SQLite and PostgreSQL ResourceStore backends.
//
// Connections are opened, limited, counted and recycled by Poco::Data::SessionPool. Statements on
// the hot paths run on the connection's native handle (sqlite3*, PGconn*) with statements prepared
// once per connection and kept: Poco::Data re-prepares a statement on every execution (and, for
// PostgreSQL, adds PQdescribePrepared and DEALLOCATE round trips), which cost more than the query
// itself (numbers in tests/store/README.md). NativeConnection is that per-connection state; the
// ConnectionPool attaches one to every physical session Poco opens and hands both out together.
#include <Poco/AutoPtr.h>
#include <Poco/Data/Session.h>
#include <Poco/Data/SessionImpl.h>
#include <Poco/Data/SessionPool.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <semaphore>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hearth/fhir/search_index.h"
#include "hearth/fhir/store.h"

namespace hearth::fhir::storeimpl {

// ---- URLs -------------------------------------------------------------------------------------

// "sqlite:/abs/path.db", "sqlite:rel/path.db", "sqlite:///abs/path.db" -> the file path.
// Throws StoreUnavailable for an empty path or an in-memory database (each pooled connection would
// see its own private database).
std::string sqlitePathFromUrl(std::string_view url);

// "postgresql://user:pw@host:port/db?k=v&..." (also "postgres://") -> libpq "key=value ..." string as
// Poco's PostgreSQL connector expects it. Percent-escapes are decoded; query parameters are passed
// through as libpq keywords (sslmode, options, application_name, connect_timeout ...). Adds
// application_name=hearth, client_encoding=UTF8 and connect_timeout=10 unless given.
// Throws StoreUnavailable if a value contains whitespace: Poco splits the string at spaces and
// would mangle it.
std::string postgresConnectionString(std::string_view url);

// ---- Time -------------------------------------------------------------------------------------

// FHIR instant -> microseconds since the Unix epoch (UTC). With allowDate also accepts the date
// forms YYYY, YYYY-MM, YYYY-MM-DD (start of that period, UTC). Digits beyond microseconds are
// truncated.
std::optional<int64_t> parseInstantMicros(std::string_view s, bool allowDate);

// Now as "YYYY-MM-DDThh:mm:ss.mmmZ" (for schema_migrations.applied_at).
std::string nowInstant();

// ---- Migrations -------------------------------------------------------------------------------

// One numbered schema step. Applied in order, each in its own transaction together with its
// schema_migrations row; never edited once released (add a new step instead).
struct Migration {
  int version;
  const char* name;
  const char* sql;
};
const std::vector<Migration>& sqliteMigrations();
const std::vector<Migration>& postgresMigrations();

// ---- Versions ---------------------------------------------------------------------------------

// Checks what put() requires of its argument (see StoreTransaction::put) and returns lastUpdated as
// epoch microseconds. Throws std::invalid_argument.
int64_t checkPutArgument(const StoredVersion& v);

// The value of resource_version.op for a WriteOp, and back. Rows written under schema version 1
// carry 0 (unknown), which reads back as the op the version most likely had: Delete if deleted,
// else Create for version 1 and Update after it.
inline int writeOpColumn(WriteOp op) { return static_cast<int>(op); }
WriteOp writeOpFromColumn(int64_t raw, int64_t version, bool deleted);

// ---- Search index and generic queries -----------------------------------------------------

// The index table of each IndexKind, indexed by the kind's value (schema version 3).
inline constexpr int kIndexKinds = 7;
inline constexpr const char* kIndexTables[kIndexKinds] = {"search_string",   "search_token",     "search_date",
                                                          "search_number",   "search_quantity",  "search_reference",
                                                          "search_uri"};
inline int indexKindSlot(IndexKind k) { return static_cast<int>(k); }
// The value columns of each index table (after type, id, param), and how many there are.
inline constexpr const char* kIndexValueColumns[kIndexKinds] = {
    "text, exact", "system, code, text", "lo, hi", "value", "system, code, unit, value",
    "target_type, target_id, url", "value"};
inline constexpr int kIndexValueCount[kIndexKinds] = {2, 3, 2, 1, 4, 3, 1};

// Whether replaceIndex stores the row: a Number or Quantity value that is NaN is not (it is no
// FHIR decimal, matches no search, and SQLite would store it as NULL).
bool indexable(const IndexRow& row);
// Order and equality of rows of one kind by what the store keeps of them (param and the kind's
// value columns; fields the kind does not store are ignored).
bool storedLess(const IndexRow& a, const IndexRow& b);
bool storedEqual(const IndexRow& a, const IndexRow& b);

// True if sql reads: its first keyword (after whitespace and opening parentheses) is SELECT, WITH
// or VALUES. ResourceStore/StoreTransaction::query refuse anything else (transaction control,
// writes), so a bug in a query builder cannot end or modify a transaction behind the store's back.
bool isReadQuery(std::string_view sql);
// INSERT, UPDATE or DELETE that names none of the resource and index tables (StoreTransaction::execute).
bool isIntegrationWrite(std::string_view sql);

// The key of StoreTransaction::lockKey as a 64-bit FNV-1a hash (stable across builds and nodes:
// every node of a cluster must lock the same number for the same key).
uint64_t lockKeyHash(std::string_view key);

// A message for logs about a failed generic query: what failed plus the SQL (never the values,
// which may be patient data).
std::string queryError(const char* backend, std::string_view what, std::string_view sql);

// ---- History helpers --------------------------------------------------------------------------

enum class HistoryScope { System, Type, Instance };
HistoryScope historyScope(const HistoryQuery& q);  // throws std::invalid_argument for id without type
int64_t sinceMicros(const HistoryQuery& q);        // INT64_MIN when absent; FhirError 400 if invalid
int historyLimit(const HistoryQuery& q);           // count clamped to [1, 1000]

// ---- Connections ------------------------------------------------------------------------------

// Backend state bound to one physical Poco session: its native handle and prepared statements.
// Keeps a reference to the physical session, so it can tell when Poco's pool has let go of it
// (closed by the idle janitor, dropped as broken, or pool shut down) and clean up after it.
class NativeConnection {
 public:
  explicit NativeConnection(Poco::Data::Session& physical) : physical_(physical.impl(), true) {}
  virtual ~NativeConnection() = default;
  NativeConnection(const NativeConnection&) = delete;
  NativeConnection& operator=(const NativeConnection&) = delete;

  // True once neither Poco's pool nor any lease refers to the physical session any more.
  bool orphaned() noexcept;
  // Frees the native resources and drops the physical session. Only for orphaned connections;
  // called with the ConnectionPool's bookkeeping lock held.
  virtual void dispose() noexcept { physical_.reset(); }

 protected:
  // The physical session itself (a Poco::Data::Session would hold two references).
  Poco::AutoPtr<Poco::Data::SessionImpl> physical_;
};

struct ConnectionPoolConfig {
  std::string connector;         // Poco connector name: "sqlite" | "postgresql"
  std::string connectionString;  // as that connector expects it
  int minSessions = 1;
  int maxSessions = 16;
  std::chrono::milliseconds acquireTimeout{5000};
  // Native handle of a (pooled or physical) session, the key that finds its NativeConnection.
  std::function<void*(Poco::Data::Session&)> handleOf;
  // Configures a freshly opened physical session and returns its backend state. May throw.
  std::function<std::unique_ptr<NativeConnection>(Poco::Data::Session&)> attach;
  // Optional: runs before the pool opens a new physical session; throws StoreUnavailable to
  // refuse (PostgreSQL checks the server answers: Poco 1.11 leaks the connection object of
  // every failed connect).
  std::function<void()> beforeConnect;
};

// Owns a Poco::Data::SessionPool plus one NativeConnection per physical session.
// acquire() waits (up to acquireTimeout) for a free session instead of failing at once as Poco's
// pool does when exhausted. Thread-safe. Every Lease must be gone before the pool is destroyed.
class ConnectionPool {
 public:
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    ~Lease();
    template <class T>
    T& conn() {
      return static_cast<T&>(*conn_);
    }
    Poco::Data::Session& session() { return *session_; }
    explicit operator bool() const { return conn_ != nullptr; }
    void reset() noexcept;  // returns the session to the pool now

   private:
    friend class ConnectionPool;
    ConnectionPool* pool_ = nullptr;
    std::optional<Poco::Data::Session> session_;
    NativeConnection* conn_ = nullptr;
  };

  explicit ConnectionPool(ConnectionPoolConfig config);
  ~ConnectionPool();

  // Throws StoreUnavailable when no session frees up in time or a new one cannot be opened.
  Lease acquire();
  // Opens minSessions sessions now so the first requests do not pay for connecting.
  void warmUp();
  StorePoolStats stats();

 private:
  class HookedPool;
  std::unique_ptr<NativeConnection> attachPhysical(Poco::Data::Session& physical);

  ConnectionPoolConfig config_;
  std::counting_semaphore<> slots_;
  std::mutex connsMutex_;  // guards conns_
  std::unordered_map<void*, std::unique_ptr<NativeConnection>> conns_;
  std::unique_ptr<HookedPool> pool_;
};

// Runs fn, translating any Poco or std exception other than the store's own into StoreUnavailable
// (prefixed with what). StoreConflict, StoreUnavailable and FhirError pass through.
template <class Fn>
auto guarded(const char* what, Fn&& fn) -> decltype(fn());

[[noreturn]] void rethrowAsStoreError(const char* what);

template <class Fn>
auto guarded(const char* what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (...) {
    rethrowAsStoreError(what);
  }
}

}  // namespace hearth::fhir::storeimpl
