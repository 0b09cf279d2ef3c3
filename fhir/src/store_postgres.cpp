// PostgreSQL backend of ResourceStore.
//
// Concurrency: transactions run at READ COMMITTED. A writer locks the resource's row in
// resource_current with SELECT ... FOR UPDATE (current()), so writers of one resource queue behind
// each other and each sees the version its predecessor committed. Two creators of the same new id
// have no row to lock; the loser's version insert hits the primary key and put() throws
// StoreConflict, as do serialization failures and deadlocks, so the caller retries the unit.
//
// Each pooled connection keeps its statements prepared server-side (PgConnection) and exchanges
// parameters and results in binary, so the resource bytes travel verbatim (content is bytea).
// A connection found broken is reset once and the failed read (or BEGIN) retried on it.
//
// Search (schema version 3): replaceIndex is one round trip (kReplaceIndex, fed by binary arrays)
// that writes only the rows that change. query() runs the search engine's SQL with PQexecParams
// (parse, plan for the given values, execute: one round trip) after numbering its '?'
// placeholders, and maps the binary results to SqlValue (pgValue). A failed statement aborts the
// transaction it runs in, as in any PostgreSQL transaction (a savepoint rollback recovers it).
// lockKey takes a transaction-scoped advisory lock.
#include "store_postgres.h"

#include <Poco/Data/PostgreSQL/Connector.h>
#include <Poco/Data/PostgreSQL/SessionHandle.h>
#include <libpq-fe.h>

#include <array>
#include <bit>
#include <bitset>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <variant>
#include <vector>
#include <stdexcept>

#include "hearth/fhir/error.h"
#include "store_common.h"

namespace hearth::fhir::storeimpl {
namespace {

constexpr Oid kText = 25, kInt8 = 20, kInt2 = 21, kInt4 = 23, kBool = 16, kBytea = 17, kFloat8 = 701;
constexpr Oid kTextArray = 1009, kInt8Array = 1016, kFloat8Array = 1022;

// Key of the advisory lock that serialises schema migrations across nodes ("HEARTH\0\1").
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(5207640365980975105)";

// The history fence ("HEARTH\0\2"). seq values are handed out at insert time but become visible at
// commit, so under concurrent writers a lower seq can appear after a higher one; a newest-first
// walk that had already passed it would never see it. Every write transaction holds the fence
// shared from its first put() (before it takes a seq) until it ends; the first page of a history
// walk takes it exclusively, which waits for in-flight writers, and reads its page while holding
// it, so every seq at or below that page's top is final. Later pages need no fence.
// If the fence cannot be had within HISTORY_FENCE_WAIT_MS (e.g. the calling thread itself has a write
// transaction open), the page is read without it.
#define HISTORY_FENCE_KEY "5207640365980975106"
#define HISTORY_FENCE_WAIT_MS "1000"

uint64_t toBigEndian(uint64_t v) {
  if constexpr (std::endian::native == std::endian::little) return __builtin_bswap64(v);
  return v;
}
uint16_t toBigEndian16(uint16_t v) {
  if constexpr (std::endian::native == std::endian::little) return __builtin_bswap16(v);
  return v;
}
uint32_t toBigEndian32(uint32_t v) {
  if constexpr (std::endian::native == std::endian::little) return __builtin_bswap32(v);
  return v;
}

// Owns one PGresult.
class PgResult {
 public:
  explicit PgResult(PGresult* r = nullptr) : r_(r) {}
  ~PgResult() { PQclear(r_); }
  PgResult(PgResult&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
  PgResult& operator=(PgResult&& o) noexcept {
    if (this != &o) {
      PQclear(r_);
      r_ = std::exchange(o.r_, nullptr);
    }
    return *this;
  }
  PGresult* get() const { return r_; }
  int rows() const { return PQntuples(r_); }
  int64_t int8(int row, int col) const {
    uint64_t v;
    std::memcpy(&v, PQgetvalue(r_, row, col), sizeof v);
    return static_cast<int64_t>(toBigEndian(v));
  }
  int16_t int2(int row, int col) const {
    uint16_t v;
    std::memcpy(&v, PQgetvalue(r_, row, col), sizeof v);
    return static_cast<int16_t>(toBigEndian16(v));
  }
  bool boolean(int row, int col) const { return PQgetvalue(r_, row, col)[0] != 0; }
  std::string bytes(int row, int col) const {
    return std::string(PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col)));
  }
  std::string sqlstate() const {
    const char* s = r_ ? PQresultErrorField(r_, PG_DIAG_SQLSTATE) : nullptr;
    return s ? s : "";
  }

 private:
  PGresult* r_;
};

[[noreturn]] void throwPg(PGconn* conn, const PgResult& r, const char* what) {
  const std::string state = r.sqlstate();
  // unique_violation, serialization_failure, deadlock_detected: a concurrent writer won.
  if (state == "23505" || state == "40001" || state == "40P01") throw StoreConflict();
  std::string msg = std::string("postgresql ") + what + ": ";
  if (!state.empty()) msg += "[" + state + "] ";
  const char* primary = r.get() ? PQresultErrorField(r.get(), PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  std::string text = primary ? primary : PQerrorMessage(conn);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  throw StoreUnavailable(msg + text);
}

// Binary parameters for PQexecPrepared. Values point into this object: do not copy it.
class PgParams {
 public:
  PgParams() = default;
  PgParams(const PgParams&) = delete;
  PgParams& operator=(const PgParams&) = delete;

  void text(std::string_view s) { add(s.data() ? s.data() : "", s.size()); }
  void bytes(std::string_view s) { add(s.data() ? s.data() : "", s.size()); }
  void int8(int64_t v) {
    ints_[n_] = toBigEndian(static_cast<uint64_t>(v));
    add(reinterpret_cast<const char*>(&ints_[n_]), sizeof(uint64_t));
  }
  void int2(int16_t v) {
    shorts_[n_] = toBigEndian16(static_cast<uint16_t>(v));
    add(reinterpret_cast<const char*>(&shorts_[n_]), sizeof(uint16_t));
  }
  void int4(int32_t v) {
    words_[n_] = toBigEndian32(static_cast<uint32_t>(v));
    add(reinterpret_cast<const char*>(&words_[n_]), sizeof(uint32_t));
  }
  void boolean(bool b) {
    bools_[n_] = b ? 1 : 0;
    add(&bools_[n_], 1);
  }
  int count() const { return n_; }
  const char* const* values() const { return values_.data(); }
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  void add(const char* p, size_t len) {
    if (n_ >= kMax) throw std::logic_error("PgParams: too many parameters");
    if (len > static_cast<size_t>(INT_MAX)) throw StoreUnavailable("postgresql: value too large");
    values_[n_] = p;
    lengths_[n_] = static_cast<int>(len);
    formats_[n_] = 1;
    ++n_;
  }
  static constexpr int kMax = 8;
  int n_ = 0;
  std::array<const char*, kMax> values_{};
  std::array<int, kMax> lengths_{};
  std::array<int, kMax> formats_{};
  std::array<uint64_t, kMax> ints_{};
  std::array<uint16_t, kMax> shorts_{};
  std::array<uint32_t, kMax> words_{};
  std::array<char, kMax> bools_{};
};

enum PgStmt {
  kRead,
  kVread,
  kCurrent,
  kInsertVersion,
  kUpsertCurrent,
  kHistSystem,
  kHistSystemSince,
  kHistType,
  kHistTypeSince,
  kHistInstance,
  kHistInstanceSince,
  kCountInstance,
  kReplaceIndex,
  kLockKey,
  kStmtCount
};

constexpr int kMaxStmtParams = 25;  // kReplaceIndex
struct PgStmtDef {
  const char* name;
  const char* sql;
  int nParams;
  std::array<Oid, kMaxStmtParams> types;
};

// The SQL, name and parameter types of each statement. History statements all take ($1 before-seq,
// $2 limit, $3 since-us, $4 type, $5 id); instance history also returns the total count of the
// resource's matching versions (same snapshot).
// A statement's name changes with its SQL (suffix _N: the schema version it was written for):
// preparing tolerates a name that already exists, which behind a statement-sharing proxy could be
// an older build's statement of the same name.
#define HIST_COLS "SELECT type, id, version, last_updated, deleted, seq, content, op"
#define INSTANCE_TOTAL \
  ", (SELECT count(*) FROM resource_version WHERE type = $4 AND id = $5 AND last_updated_us >= $3) "
// The replacement statement (kReplaceIndex): one round trip that writes only the rows that change.
// Parameters: $1 type, $2 id, then per kind one array per column (param first, then the kind's
// value columns), in IndexKind order. Per kind k:
//   nK  the new rows, each numbered within its group of identical rows (1, 2 ... for repeats)
//   oK  the stored rows of (type, id), numbered the same way, with their ctid
//   dK  deletes the stored rows that have no new counterpart (same values, same number)
//   iK  inserts the new rows that have no stored counterpart
// so the stored rows end up exactly the new ones (as a multiset), and an update that leaves most
// rows as they were (a reindex: all) writes no tuples, index entries or WAL for those. All parts
// of a WITH see one snapshot: the deletes and inserts never see each other's rows.
const std::string& replaceIndexSql() {
  static const std::string sql = [] {
    std::string out = "WITH ";
    int param = 3;
    for (int k = 0; k < kIndexKinds; ++k) {
      const int width = 1 + kIndexValueCount[k];
      std::vector<std::string> columns = {"param"};
      {
        std::string all = kIndexValueColumns[k];
        for (size_t pos = 0; pos <= all.size();) {
          size_t comma = all.find(',', pos);
          if (comma == std::string::npos) comma = all.size();
          std::string c = all.substr(pos, comma - pos);
          while (!c.empty() && c.front() == ' ') c.erase(0, 1);
          columns.push_back(c);
          pos = comma + 1;
        }
      }
      auto list = [&](const std::string& prefix, const std::string& sep) {
        std::string r;
        for (int c = 0; c < width; ++c) r += (c ? sep : "") + prefix + "c" + std::to_string(c);
        return r;
      };
      const std::string n = "n" + std::to_string(k), o = "o" + std::to_string(k), table = kIndexTables[k];
      std::string arrays, stored, matchNew, matchOld;
      for (int c = 0; c < width; ++c) {
        arrays += (c ? ", $" : "$") + std::to_string(param + c);
        stored += ", " + columns[static_cast<size_t>(c)] + " AS c" + std::to_string(c);
        matchNew += "n.c" + std::to_string(c) + " = o.c" + std::to_string(c) + " AND ";
      }
      out += n + " AS (SELECT " + list("", ", ") + ", row_number() OVER (PARTITION BY " + list("", ", ") +
             ") AS k FROM unnest(" + arrays + ") AS u(" + list("", ", ") + ")), ";
      std::string realColumns;
      for (const auto& c : columns) realColumns += (realColumns.empty() ? "" : ", ") + c;
      out += o + " AS (SELECT ctid AS t" + stored + ", row_number() OVER (PARTITION BY " + realColumns +
             ") AS k FROM " + table + " WHERE type = $1 AND id = $2), ";
      out += "d" + std::to_string(k) + " AS (DELETE FROM " + table + " WHERE ctid IN (SELECT o.t FROM " + o +
             " o WHERE NOT EXISTS (SELECT 1 FROM " + n + " n WHERE " + matchNew + "n.k = o.k))), ";
      std::string insertColumns = "type, id";
      for (const auto& c : columns) insertColumns += ", " + c;
      out += "i" + std::to_string(k) + " AS (INSERT INTO " + table + " (" + insertColumns + ") SELECT $1, $2, " +
             list("n.", ", ") + " FROM " + n + " n WHERE NOT EXISTS (SELECT 1 FROM " + o + " o WHERE " + matchNew +
             "n.k = o.k))" + (k + 1 < kIndexKinds ? ", " : " ");
      param += width;
    }
    return out + "SELECT 1";
  }();
  return sql;
}

PgStmtDef defOf(PgStmt s) {
  constexpr std::array<Oid, kMaxStmtParams> kHistTypes = {kInt8, kInt8, kInt8, kText, kText};
  switch (s) {
    case kRead:
      return {"hearth_read_2",
              "SELECT v.version, v.last_updated, v.deleted, v.seq, v.content, v.op FROM resource_current c "
              "JOIN resource_version v ON v.seq = c.seq WHERE c.type = $1 AND c.id = $2",
              2,
              {kText, kText}};
    case kVread:
      return {"hearth_vread_2",
              "SELECT version, last_updated, deleted, seq, content, op FROM resource_version "
              "WHERE type = $1 AND id = $2 AND version = $3",
              3,
              {kText, kText, kInt8}};
    case kCurrent:
      return {"hearth_current",
              "SELECT version, deleted, last_updated FROM resource_current "
              "WHERE type = $1 AND id = $2 FOR UPDATE",
              2,
              {kText, kText}};
    case kInsertVersion:
      // Takes the history fence shared before a seq is drawn (see HISTORY_FENCE_KEY).
      // DO NOTHING + RETURNING: a lost creator race shows up as zero rows, not as an error that
      // would abort the transaction.
      return {"hearth_insert_version_2",
              "WITH fence AS (SELECT pg_advisory_xact_lock_shared(" HISTORY_FENCE_KEY
              ")) "
              "INSERT INTO resource_version "
              "(type, id, version, last_updated, last_updated_us, deleted, content, op) "
              "SELECT $1, $2, $3, $4, $5, $6, $7, $8 FROM fence ON CONFLICT DO NOTHING RETURNING seq",
              8,
              {kText, kText, kInt8, kText, kInt8, kBool, kBytea, kInt2}};
    case kUpsertCurrent:
      // Compare-and-set: only moves a pointer that is exactly one version behind.
      return {"hearth_upsert_current",
              "INSERT INTO resource_current (type, id, version, deleted, seq, last_updated) "
              "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (type, id) DO UPDATE SET "
              "version = EXCLUDED.version, deleted = EXCLUDED.deleted, seq = EXCLUDED.seq, "
              "last_updated = EXCLUDED.last_updated WHERE resource_current.version = EXCLUDED.version - 1",
              6,
              {kText, kText, kInt8, kBool, kInt8, kText}};
    case kHistSystem:
      return {"hearth_hist_system_2",
              HIST_COLS " FROM resource_version WHERE seq < $1 ORDER BY seq DESC LIMIT $2", 5, kHistTypes};
    case kHistSystemSince:
      return {"hearth_hist_system_since_2",
              HIST_COLS
              " FROM resource_version WHERE seq < $1 AND last_updated_us >= $3 "
              "ORDER BY seq DESC LIMIT $2",
              5, kHistTypes};
    case kHistType:
      return {"hearth_hist_type_2",
              HIST_COLS " FROM resource_version WHERE type = $4 AND seq < $1 ORDER BY seq DESC LIMIT $2", 5,
              kHistTypes};
    case kHistTypeSince:
      return {"hearth_hist_type_since_2",
              HIST_COLS
              " FROM resource_version WHERE type = $4 AND seq < $1 AND last_updated_us >= $3 "
              "ORDER BY seq DESC LIMIT $2",
              5, kHistTypes};
    case kHistInstance:
      return {"hearth_hist_instance_2",
              HIST_COLS INSTANCE_TOTAL
              "FROM resource_version WHERE type = $4 AND id = $5 AND seq < $1 "
              "ORDER BY seq DESC LIMIT $2",
              5, kHistTypes};
    case kHistInstanceSince:
      return {"hearth_hist_instance_since_2",
              HIST_COLS INSTANCE_TOTAL
              "FROM resource_version WHERE type = $4 AND id = $5 AND seq < $1 "
              "AND last_updated_us >= $3 ORDER BY seq DESC LIMIT $2",
              5, kHistTypes};
    case kCountInstance:
      return {"hearth_count_instance",
              "SELECT count(*) FROM resource_version WHERE type = $4 AND id = $5 AND last_updated_us >= $3",
              5, kHistTypes};
    case kReplaceIndex:
      return {"hearth_replace_index_3", replaceIndexSql().c_str(),
              25,
              {kText,      kText,                                              // type, id
               kTextArray, kTextArray, kTextArray,                             // string
               kTextArray, kTextArray, kTextArray, kTextArray,                 // token
               kTextArray, kInt8Array, kInt8Array,                             // date
               kTextArray, kFloat8Array,                                       // number
               kTextArray, kTextArray, kTextArray, kTextArray, kFloat8Array,   // quantity
               kTextArray, kTextArray, kTextArray, kTextArray,                 // reference
               kTextArray, kTextArray}};                                       // uri
    case kLockKey:
      // The two-int4 form: its key space is disjoint from the one-bigint form used for the
      // migration lock and the history fence, so no key can collide with those.
      return {"hearth_lock_key_3", "SELECT pg_advisory_xact_lock($1, $2)", 2, {kInt4, kInt4}};
    case kStmtCount:
      break;
  }
  return {"", "", 0, {}};
}
#undef HIST_COLS
#undef INSTANCE_TOTAL

void quietNotices(void*, const char*) {}

// One physical connection: its PGconn, which statements it has prepared, and the backend process
// those belong to (a reset connection gets a new backend and must prepare again).
class PgConnection : public NativeConnection {
 public:
  PgConnection(Poco::Data::Session& physical, PGconn* conn, int lockTimeoutMs)
      : NativeConnection(physical), conn_(conn), lockTimeoutMs_(lockTimeoutMs) {
    PQsetNoticeProcessor(conn_, quietNotices, nullptr);
  }

  // Poco 1.11 calls PQfinish only for a connection in CONNECTION_OK state (and then forgets the
  // pointer); a broken one it just drops. Finish that one here, after Poco is done with it.
  void dispose() noexcept override {
    if (physical_.isNull()) return;
    PGconn* stillOwned = nullptr;
    try {
      stillOwned = static_cast<PGconn*>(
          *Poco::AnyCast<Poco::Data::PostgreSQL::SessionHandle*>(physical_->getProperty("handle")));
    } catch (...) {
    }
    const bool leftOpen = stillOwned && PQstatus(stillOwned) != CONNECTION_OK;
    NativeConnection::dispose();  // last reference: Poco's SessionImpl goes away here
    if (leftOpen) PQfinish(stillOwned);
  }

  PGconn* raw() const { return conn_; }
  bool broken() const { return PQstatus(conn_) != CONNECTION_OK; }

  // Re-establishes per-backend state after a (re)connect; cheap when nothing changed. Also ends a
  // transaction a crashed caller might have left open.
  void ensureReady() {
    if (broken()) throw StoreUnavailable("postgresql: connection lost");
    int pid = PQbackendPID(conn_);
    if (pid != pid_) {
      prepared_.reset();
      std::string setup = "SET lock_timeout = " + std::to_string(lockTimeoutMs_);
      simple(setup.c_str(), "session setup");
      pid_ = pid;
    }
    if (PQtransactionStatus(conn_) != PQTRANS_IDLE) simple("ROLLBACK", "rollback");
  }

  // Tries to reconnect a broken connection; true if it is usable again.
  bool tryReset() {
    PQreset(conn_);
    return !broken();
  }

  PgResult run(PgStmt s, const PgParams& p, const char* what) {
    return run(s, p.count(), p.values(), p.lengths(), p.formats(), what);
  }
  // The same with parameters given as libpq arrays (all binary: formats may be null for text).
  PgResult run(PgStmt s, int n, const char* const* values, const int* lengths, const int* formats,
               const char* what) {
    const PgStmtDef def = defOf(s);
    if (!prepared_[s]) {
      PgResult pr(PQprepare(conn_, def.name, def.sql, def.nParams, def.types.data()));
      if (PQresultStatus(pr.get()) != PGRES_COMMAND_OK && pr.sqlstate() != "42P05")
        throwPg(conn_, pr, "prepare");
      prepared_.set(s);
    }
    PgResult r(PQexecPrepared(conn_, def.name, n, values, lengths, formats, 1));
    ExecStatusType st = PQresultStatus(r.get());
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
      if (r.sqlstate() == "26000") prepared_.reset();  // statements vanished (e.g. DISCARD ALL)
      throwPg(conn_, r, what);
    }
    return r;
  }

  // A statement without parameters through the simple query protocol (may hold several statements).
  PgResult simple(const char* sql, const char* what) {
    PgResult r(PQexec(conn_, sql));
    ExecStatusType st = PQresultStatus(r.get());
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) throwPg(conn_, r, what);
    return r;
  }

 private:
  PGconn* conn_;
  int lockTimeoutMs_;
  int pid_ = -1;
  std::bitset<kStmtCount> prepared_;
};

void* pgHandle(Poco::Data::Session& s) {
  auto* handle = Poco::AnyCast<Poco::Data::PostgreSQL::SessionHandle*>(s.getProperty("handle"));
  return static_cast<PGconn*>(*handle);
}

// Runs fn on a leased, ready connection. If it fails because the connection broke (server restart,
// idle connection dropped by a firewall), resets it and runs fn once more: only for work that is
// safe to repeat (reads, BEGIN).
template <class Fn>
auto withConnection(ConnectionPool& pool, const char* what, Fn&& fn) {
  return guarded(what, [&] {
    for (int attempt = 0;; ++attempt) {
      auto lease = pool.acquire();
      PgConnection& c = lease.conn<PgConnection>();
      try {
        if (c.broken() && !c.tryReset()) throw StoreUnavailable("postgresql: cannot reconnect");
        c.ensureReady();
        return fn(lease, c);
      } catch (const StoreUnavailable&) {
        if (attempt == 0 && c.broken() && c.tryReset()) continue;
        throw;
      }
    }
  });
}

StoredVersion versionFromRow(const PgResult& r, int row, std::string_view type, std::string_view id) {
  StoredVersion v;
  v.type = type;
  v.id = id;
  v.version = r.int8(row, 0);
  v.lastUpdated = r.bytes(row, 1);
  v.deleted = r.boolean(row, 2);
  v.seq = r.int8(row, 3);
  v.json = r.bytes(row, 4);
  v.op = writeOpFromColumn(r.int2(row, 5), v.version, v.deleted);
  return v;
}

// Appends s to out without its NUL bytes (PostgreSQL text cannot hold them).
void appendWithoutNul(std::string& out, std::string_view s) {
  while (!s.empty()) {
    const size_t nul = s.find('\0');
    out.append(s.substr(0, nul));
    if (nul == std::string_view::npos) break;
    s.remove_prefix(nul + 1);
  }
}

// ---- Search index rows as binary arrays ---------------------------------------------------------

// A one-dimensional array parameter in PostgreSQL's binary array format: ndim, has-nulls flag,
// element type, then (for ndim 1) the length and lower bound, then each element as its byte length
// and bytes. Never holds NULLs.
class PgArray {
 public:
  explicit PgArray(Oid elementType) : elementType_(elementType) {}
  // Text elements lose NUL bytes, which PostgreSQL text cannot hold (a JSON string may carry
  // \u0000); query() drops them from text values the same way, so such values still match.
  void text(std::string_view s) {
    const size_t at = body_.size();
    put32(0);
    appendWithoutNul(body_, s);
    const size_t n = body_.size() - at - 4;
    if (n > static_cast<size_t>(INT32_MAX)) throw StoreUnavailable("postgresql: index value too large");
    const uint32_t be = toBigEndian32(static_cast<uint32_t>(n));
    std::memcpy(body_.data() + at, &be, sizeof be);
    ++count_;
  }
  void int8(int64_t v) {
    put32(8);
    put64(static_cast<uint64_t>(v));
    ++count_;
  }
  void float8(double v) {
    put32(8);
    put64(std::bit_cast<uint64_t>(v));
    ++count_;
  }
  // The whole parameter value.
  const std::string& finish() {
    out_.clear();
    auto header = [&](uint32_t v) {
      const uint32_t be = toBigEndian32(v);
      out_.append(reinterpret_cast<const char*>(&be), sizeof be);
    };
    header(count_ ? 1 : 0);  // ndim: an empty array has no dimensions
    header(0);               // no NULLs
    header(elementType_);
    if (count_) {
      header(count_);
      header(1);  // lower bound
    }
    out_ += body_;
    return out_;
  }

 private:
  void put32(uint32_t v) {
    const uint32_t be = toBigEndian32(v);
    body_.append(reinterpret_cast<const char*>(&be), sizeof be);
  }
  void put64(uint64_t v) {
    const uint64_t be = toBigEndian(v);
    body_.append(reinterpret_cast<const char*>(&be), sizeof be);
  }
  Oid elementType_;
  uint32_t count_ = 0;
  std::string body_, out_;
};

constexpr int kReplaceIndexParams = 25;

// The parameters of kReplaceIndex for one resource (values point into this object).
class IndexParams {
 public:
  IndexParams(std::string_view type, std::string_view id, const std::vector<IndexRow>& rows) {
    // Column arrays in statement order; the first of each kind is its param column.
    static constexpr std::array<int, kIndexKinds> kFirst = {0, 3, 7, 10, 12, 17, 21};
    std::vector<PgArray> cols;
    cols.reserve(kReplaceIndexParams - 2);
    const PgStmtDef def = defOf(kReplaceIndex);
    for (int i = 0; i < kReplaceIndexParams - 2; ++i) {
      const Oid t = def.types[static_cast<size_t>(i + 2)];
      cols.emplace_back(t == kInt8Array ? kInt8 : t == kFloat8Array ? kFloat8 : kText);
    }
    for (const IndexRow& row : rows) {
      if (!indexable(row)) continue;  // NaN: not stored, as on SQLite
      const int k = indexKindSlot(row.kind);
      PgArray* c = &cols[static_cast<size_t>(kFirst[static_cast<size_t>(k)])];
      c[0].text(row.param);
      switch (row.kind) {
        case IndexKind::String:
          c[1].text(row.text);
          c[2].text(row.exact);
          break;
        case IndexKind::Token:
          c[1].text(row.system);
          c[2].text(row.code);
          c[3].text(row.text);
          break;
        case IndexKind::Date:
          c[1].int8(row.lo);
          c[2].int8(row.hi);
          break;
        case IndexKind::Number:
          c[1].float8(row.value);
          break;
        case IndexKind::Quantity:
          c[1].text(row.system);
          c[2].text(row.code);
          c[3].text(row.unit);
          c[4].float8(row.value);
          break;
        case IndexKind::Reference:
          c[1].text(row.refType);
          c[2].text(row.refId);
          c[3].text(row.url);
          break;
        case IndexKind::Uri:
          c[1].text(row.text);
          break;
      }
    }
    type_ = stripNul(type);
    id_ = stripNul(id);
    values_[0] = type_.c_str();
    lengths_[0] = static_cast<int>(type_.size());
    values_[1] = id_.c_str();
    lengths_[1] = static_cast<int>(id_.size());
    for (size_t i = 0; i < cols.size(); ++i) {
      arrays_[i] = cols[i].finish();
      values_[i + 2] = arrays_[i].data();
      lengths_[i + 2] = static_cast<int>(arrays_[i].size());
    }
  }
  const char* const* values() const { return values_.data(); }
  const int* lengths() const { return lengths_.data(); }

 private:
  static std::string stripNul(std::string_view s) {
    std::string out;
    appendWithoutNul(out, s);
    return out;
  }
  std::string type_, id_;
  std::array<std::string, kReplaceIndexParams - 2> arrays_;
  std::array<const char*, kReplaceIndexParams> values_{};
  std::array<int, kReplaceIndexParams> lengths_{};
};

// ---- Generic read queries -----------------------------------------------------------------------

// The query's SQL with its '?' placeholders numbered $1, $2 ... in order. '?' inside quoted
// literals or identifiers is left alone. count receives the number of placeholders.
std::string numberPlaceholders(std::string_view sql, size_t& count) {
  std::string out;
  out.reserve(sql.size() + 16);
  count = 0;
  char quote = 0;
  for (char ch : sql) {
    if (quote) {
      if (ch == quote) quote = 0;  // a doubled quote closes and reopens: same result
      out.push_back(ch);
    } else if (ch == '\'' || ch == '"') {
      quote = ch;
      out.push_back(ch);
    } else if (ch == '?') {
      out += '$';
      out += std::to_string(++count);
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

// A binary numeric value (int16 ndigits, int16 weight, uint16 sign, int16 dscale, ndigits base-10000
// digits) as the nearest double: its decimal digits through strtod, which rounds correctly.
double numericToDouble(const char* p, int len) {
  auto u16 = [&](int at) -> uint16_t {
    uint16_t v;
    std::memcpy(&v, p + at, sizeof v);
    return toBigEndian16(v);
  };
  if (len < 8) throw StoreUnavailable("postgresql query: malformed numeric value");
  const int ndigits = static_cast<int16_t>(u16(0));
  const int weight = static_cast<int16_t>(u16(2));
  const uint16_t sign = u16(4);
  if (sign == 0xC000) return std::numeric_limits<double>::quiet_NaN();
  if (sign == 0xD000) return std::numeric_limits<double>::infinity();
  if (sign == 0xF000) return -std::numeric_limits<double>::infinity();
  if (ndigits < 0 || len < 8 + 2 * ndigits) throw StoreUnavailable("postgresql query: malformed numeric value");
  if (ndigits == 0) return 0.0;
  std::string text = sign == 0x4000 ? "-" : "";
  for (int i = 0; i < ndigits; ++i) {
    char group[8];
    std::snprintf(group, sizeof group, "%04u", static_cast<unsigned>(u16(8 + 2 * i)) % 10000u);
    text += group;
  }
  text += "e" + std::to_string((weight - ndigits + 1) * 4);
  return std::strtod(text.c_str(), nullptr);
}

// One result value (binary format) as an SqlValue, by the column's type.
SqlValue pgValue(const PgResult& r, int row, int col, Oid type) {
  if (PQgetisnull(r.get(), row, col)) return std::monostate{};
  const char* p = PQgetvalue(r.get(), row, col);
  const int len = PQgetlength(r.get(), row, col);
  auto need = [&](int n) {
    if (len != n) throw StoreUnavailable("postgresql query: unexpected value size");
  };
  switch (type) {
    case kBool:
      need(1);
      return static_cast<int64_t>(p[0] != 0);
    case kInt2:
      need(2);
      return static_cast<int64_t>(r.int2(row, col));
    case kInt4:
    case 26: {  // oid (unsigned)
      need(4);
      uint32_t v;
      std::memcpy(&v, p, sizeof v);
      v = toBigEndian32(v);
      return type == kInt4 ? static_cast<int64_t>(static_cast<int32_t>(v)) : static_cast<int64_t>(v);
    }
    case kInt8:
      need(8);
      return r.int8(row, col);
    case 700: {  // float4
      need(4);
      uint32_t v;
      std::memcpy(&v, p, sizeof v);
      return static_cast<double>(std::bit_cast<float>(toBigEndian32(v)));
    }
    case kFloat8: {
      need(8);
      uint64_t v;
      std::memcpy(&v, p, sizeof v);
      return std::bit_cast<double>(toBigEndian(v));
    }
    case 1700:  // numeric (sum(), avg() ...)
      return numericToDouble(p, len);
    case kText:
    case kBytea:
    case 19:    // name
    case 114:   // json
    case 705:   // unknown (an untyped literal)
    case 1042:  // char(n)
    case 1043:  // varchar
      return std::string(p, static_cast<size_t>(len));
    case 3802:  // jsonb: a version byte (1), then the text
      if (len < 1) throw StoreUnavailable("postgresql query: malformed jsonb value");
      return std::string(p + 1, static_cast<size_t>(len - 1));
    default:
      throw StoreUnavailable("postgresql query: unsupported result column type (OID " + std::to_string(type) + ")");
  }
}

// Runs one generic statement on c (PQexecParams: parse, bind and execute in one round trip, with
// a plan made for these values); runQuery (reads) and execute (integration writes) check its kind. Integers and doubles go as binary int8 / float8, text as text of
// a type the server infers from the context, NULL untyped. Errors -> StoreUnavailable.
PgResult execQuery(PgConnection& c, const SqlQuery& q) {
  size_t placeholders = 0;
  const std::string sql = numberPlaceholders(q.sql, placeholders);
  if (placeholders != q.params.size()) {
    throw StoreUnavailable(queryError("postgresql",
                                      "the statement has " + std::to_string(placeholders) + " placeholders, " +
                                          std::to_string(q.params.size()) + " values given",
                                      q.sql));
  }
  const size_t n = q.params.size();
  std::vector<Oid> types(n, 0);
  std::vector<const char*> values(n, nullptr);
  std::vector<int> lengths(n, 0), formats(n, 0);
  std::vector<uint64_t> numbers(n, 0);
  std::vector<std::string> texts(n);
  for (size_t i = 0; i < n; ++i) {
    const SqlValue& v = q.params[i];
    if (const auto* k = std::get_if<int64_t>(&v)) {
      types[i] = kInt8;
      numbers[i] = toBigEndian(static_cast<uint64_t>(*k));
    } else if (const auto* d = std::get_if<double>(&v)) {
      types[i] = kFloat8;
      numbers[i] = toBigEndian(std::bit_cast<uint64_t>(*d));
    } else if (const auto* t = std::get_if<std::string>(&v)) {
      // Text parameters travel as C strings: drop NUL bytes, as the index does (PgArray::text).
      appendWithoutNul(texts[i], *t);
      values[i] = texts[i].c_str();
      continue;
    } else {
      continue;  // NULL
    }
    values[i] = reinterpret_cast<const char*>(&numbers[i]);
    lengths[i] = 8;
    formats[i] = 1;
  }
  PgResult r(PQexecParams(c.raw(), sql.c_str(), static_cast<int>(n), types.data(), values.data(), lengths.data(),
                          formats.data(), 1));
  const ExecStatusType st = PQresultStatus(r.get());
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    const std::string state = r.sqlstate();
    const char* primary = r.get() ? PQresultErrorField(r.get(), PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    std::string text = primary ? primary : PQerrorMessage(c.raw());
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    throw StoreUnavailable(queryError("postgresql", (state.empty() ? "" : "[" + state + "] ") + text, q.sql));
  }
  return r;
}

std::vector<SqlRow> runQuery(PgConnection& c, const SqlQuery& q) {
  if (!isReadQuery(q.sql)) throw StoreUnavailable(queryError("postgresql", "not a read query", q.sql));
  const PgResult r = execQuery(c, q);
  const int rows = r.rows(), columns = PQnfields(r.get());
  std::vector<Oid> columnTypes(static_cast<size_t>(columns));
  for (int col = 0; col < columns; ++col) columnTypes[static_cast<size_t>(col)] = PQftype(r.get(), col);
  std::vector<SqlRow> out(static_cast<size_t>(rows));
  for (int row = 0; row < rows; ++row) {
    SqlRow& dst = out[static_cast<size_t>(row)];
    dst.reserve(static_cast<size_t>(columns));
    for (int col = 0; col < columns; ++col) dst.push_back(pgValue(r, row, col, columnTypes[static_cast<size_t>(col)]));
  }
  return out;
}

class PgTransaction final : public StoreTransaction {
 public:
  explicit PgTransaction(ConnectionPool& pool) {
    lease_ = withConnection(pool, "postgresql begin", [](ConnectionPool::Lease& lease, PgConnection& c) {
      c.simple("BEGIN", "begin");
      return std::move(lease);
    });
    open_ = true;
  }

  ~PgTransaction() override {
    if (!open_) return;
    PgConnection& c = lease_.conn<PgConnection>();
    if (!c.broken()) PQclear(PQexec(c.raw(), "ROLLBACK"));
  }

  std::optional<CurrentVersion> current(std::string_view type, std::string_view id) override {
    return guarded("postgresql current", [&]() -> std::optional<CurrentVersion> {
      PgParams p;
      p.text(type);
      p.text(id);
      PgResult r = conn().run(kCurrent, p, "current");
      if (r.rows() == 0) return std::nullopt;
      CurrentVersion cv;
      cv.version = r.int8(0, 0);
      cv.deleted = r.boolean(0, 1);
      cv.lastUpdated = r.bytes(0, 2);
      return cv;
    });
  }

  void put(StoredVersion& v) override {
    const int64_t us = checkPutArgument(v);
    guarded("postgresql put", [&] {
      PgConnection& c = conn();
      int64_t seq = 0;
      {
        PgParams p;
        p.text(v.type);
        p.text(v.id);
        p.int8(v.version);
        p.text(v.lastUpdated);
        p.int8(us);
        p.boolean(v.deleted);
        p.bytes(v.json);
        p.int2(static_cast<int16_t>(writeOpColumn(v.op)));
        PgResult r = c.run(kInsertVersion, p, "insert version");
        if (r.rows() != 1) throw StoreConflict();  // another writer committed this version first
        seq = r.int8(0, 0);
      }
      PgParams p;
      p.text(v.type);
      p.text(v.id);
      p.int8(v.version);
      p.boolean(v.deleted);
      p.int8(seq);
      p.text(v.lastUpdated);
      PgResult r = c.run(kUpsertCurrent, p, "update current");
      if (std::strcmp(PQcmdTuples(r.get()), "1") != 0) throw StoreConflict();
      v.seq = seq;
    });
  }

  void savepoint() override {
    guarded("postgresql savepoint", [&] { conn().simple("SAVEPOINT hearth_unit", "savepoint"); });
  }
  void releaseSavepoint() override {
    guarded("postgresql savepoint",
            [&] { conn().simple("RELEASE SAVEPOINT hearth_unit", "release savepoint"); });
  }
  // Also recovers a transaction aborted by a failed statement. Locks taken since the savepoint
  // (row locks, the history fence) are released with it. Releasing the savepoint as well keeps the
  // nesting at one level.
  void rollbackToSavepoint() override {
    guarded("postgresql savepoint", [&] {
      conn().simple("ROLLBACK TO SAVEPOINT hearth_unit; RELEASE SAVEPOINT hearth_unit",
                    "rollback to savepoint");
    });
  }

  void replaceIndex(std::string_view type, std::string_view id, const std::vector<IndexRow>& rows) override {
    guarded("postgresql index", [&] {
      IndexParams p(type, id, rows);
      std::array<int, kReplaceIndexParams> formats;
      formats.fill(1);
      conn().run(kReplaceIndex, kReplaceIndexParams, p.values(), p.lengths(), formats.data(), "index");
    });
  }

  std::vector<SqlRow> query(const SqlQuery& q) override {
    return guarded("postgresql query", [&] { return runQuery(conn(), q); });
  }
  int64_t execute(const SqlQuery& q) override {
    if (!isIntegrationWrite(q.sql)) {
      throw StoreUnavailable(queryError("postgresql", "not an integration-table write", q.sql));
    }
    return guarded("postgresql execute", [&] {
      const PgResult r = execQuery(conn(), q);
      const char* n = PQcmdTuples(r.get());
      return static_cast<int64_t>(n && *n ? std::strtoll(n, nullptr, 10) : 0);
    });
  }

  // A transaction-scoped advisory lock on the key's 64-bit hash, split into the two-int4 form
  // (see kLockKey). Waits at most lock_timeout (StoreOptions::busyTimeoutMs), then fails as
  // StoreUnavailable; a wait cycle with another transaction is a deadlock, i.e. StoreConflict.
  void lockKey(std::string_view key) override {
    guarded("postgresql lock", [&] {
      const uint64_t h = lockKeyHash(key);
      PgParams p;
      p.int4(static_cast<int32_t>(static_cast<uint32_t>(h >> 32)));
      p.int4(static_cast<int32_t>(static_cast<uint32_t>(h)));
      conn().run(kLockKey, p, "lock key");
    });
  }

  // Visible at once, durable with the WAL writer's next flush (or any later synchronous commit,
  // which flushes the WAL up to itself): synchronous_commit off for this transaction only.
  void commitUnsynced() override {
    guarded("postgresql commit", [&] { conn().simple("SET LOCAL synchronous_commit = off", "commit"); });
    commit();
  }

  void commit() override {
    guarded("postgresql commit", [&] {
      PgResult r = conn().simple("COMMIT", "commit");
      // COMMIT of a transaction that already failed reports ROLLBACK.
      if (std::strcmp(PQcmdStatus(r.get()), "COMMIT") != 0) {
        throw StoreUnavailable("postgresql commit: the transaction had failed and was rolled back");
      }
    });
    open_ = false;
    lease_.reset();
  }

 private:
  PgConnection& conn() {
    if (!open_) throw StoreUnavailable("postgresql: transaction already finished");
    return lease_.conn<PgConnection>();
  }

  ConnectionPool::Lease lease_;
  bool open_ = false;
};

class PostgresStore final : public ResourceStore {
 public:
  PostgresStore(const std::string& connectionString, const StoreOptions& options);

  std::unique_ptr<StoreTransaction> begin() override { return std::make_unique<PgTransaction>(*pool_); }
  std::optional<StoredVersion> read(std::string_view type, std::string_view id) override;
  std::optional<StoredVersion> vread(std::string_view type, std::string_view id, int64_t version) override;
  HistoryPage history(const HistoryQuery& q) override;
  bool healthy() override;
  StorePoolStats poolStats() override { return pool_->stats(); }
  std::string backendName() const override { return "postgresql"; }
  SqlDialect dialect() const override { return SqlDialect::Postgres; }
  // Autocommit on a pooled connection: one statement, one snapshot. Retried once on a connection
  // that turns out to be broken (reads are safe to repeat).
  std::vector<SqlRow> query(const SqlQuery& q) override {
    return withConnection(*pool_, "postgresql query",
                          [&](ConnectionPool::Lease&, PgConnection& c) { return runQuery(c, q); });
  }

 private:
  void migrate();

  int lockTimeoutMs_;
  std::unique_ptr<ConnectionPool> pool_;
};

PostgresStore::PostgresStore(const std::string& connectionString, const StoreOptions& options)
    : lockTimeoutMs_(std::max(1, options.busyTimeoutMs)) {
  static std::once_flag registered;
  std::call_once(registered, [] { Poco::Data::PostgreSQL::Connector::registerConnector(); });

  ConnectionPoolConfig cfg;
  cfg.connector = "postgresql";
  cfg.connectionString = connectionString;
  cfg.minSessions = options.poolMin;
  cfg.maxSessions = options.poolMax;
  cfg.acquireTimeout = std::chrono::milliseconds(std::max(1, options.busyTimeoutMs));
  cfg.handleOf = pgHandle;
  cfg.beforeConnect = [connectionString] {
    if (PQping(connectionString.c_str()) != PQPING_OK) {
      throw StoreUnavailable("postgresql: server not reachable or not accepting connections");
    }
  };
  cfg.attach = [this](Poco::Data::Session& physical) -> std::unique_ptr<NativeConnection> {
    return std::make_unique<PgConnection>(physical, static_cast<PGconn*>(pgHandle(physical)), lockTimeoutMs_);
  };
  pool_ = std::make_unique<ConnectionPool>(std::move(cfg));
  migrate();
  pool_->warmUp();
}

void PostgresStore::migrate() {
  withConnection(*pool_, "postgresql migration", [&](ConnectionPool::Lease&, PgConnection& c) {
    const auto& steps = postgresMigrations();
    const int newest = steps.empty() ? 0 : steps.back().version;
    for (const Migration& m : steps) {
      c.simple("BEGIN", "migration");
      try {
        // Everything below runs with the lock held, so concurrent starts apply each step once
        // (and do not race on CREATE TABLE IF NOT EXISTS either).
        c.simple("SET LOCAL lock_timeout = 0", "migration");  // a long migration elsewhere is no error
        c.simple(kMigrationLock, "migration lock");
        c.simple(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
            "name TEXT NOT NULL, applied_at TEXT NOT NULL)",
            "migration");
        std::string check = "SELECT coalesce(max(version), 0), count(*) FILTER (WHERE version = " +
                            std::to_string(m.version) + ") FROM schema_migrations";
        PgResult r = c.simple(check.c_str(), "migration");
        const long maxApplied = std::stol(PQgetvalue(r.get(), 0, 0));
        const long applied = std::stol(PQgetvalue(r.get(), 0, 1));
        if (maxApplied > newest) {
          throw StoreUnavailable("postgresql: database schema version " + std::to_string(maxApplied) +
                                 " is newer than this build supports (" + std::to_string(newest) + ")");
        }
        if (!applied) {
          c.simple(m.sql, "migration");
          const char* values[] = {nullptr, m.name, nullptr};
          std::string version = std::to_string(m.version), now = nowInstant();
          values[0] = version.c_str();
          values[2] = now.c_str();
          PgResult ins(PQexecParams(
              c.raw(), "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)", 3,
              nullptr, values, nullptr, nullptr, 0));
          if (PQresultStatus(ins.get()) != PGRES_COMMAND_OK) throwPg(c.raw(), ins, "migration");
        }
        c.simple("COMMIT", "migration");
      } catch (...) {
        if (!c.broken()) PQclear(PQexec(c.raw(), "ROLLBACK"));
        throw;
      }
    }
    return 0;
  });
}

std::optional<StoredVersion> PostgresStore::read(std::string_view type, std::string_view id) {
  return withConnection(*pool_, "postgresql read",
                        [&](ConnectionPool::Lease&, PgConnection& c) -> std::optional<StoredVersion> {
                          PgParams p;
                          p.text(type);
                          p.text(id);
                          PgResult r = c.run(kRead, p, "read");
                          if (r.rows() == 0) return std::nullopt;
                          return versionFromRow(r, 0, type, id);
                        });
}

std::optional<StoredVersion> PostgresStore::vread(std::string_view type, std::string_view id,
                                                  int64_t version) {
  return withConnection(*pool_, "postgresql vread",
                        [&](ConnectionPool::Lease&, PgConnection& c) -> std::optional<StoredVersion> {
                          PgParams p;
                          p.text(type);
                          p.text(id);
                          p.int8(version);
                          PgResult r = c.run(kVread, p, "vread");
                          if (r.rows() == 0) return std::nullopt;
                          return versionFromRow(r, 0, type, id);
                        });
}

HistoryPage PostgresStore::history(const HistoryQuery& q) {
  const HistoryScope scope = historyScope(q);
  const int64_t since = sinceMicros(q);
  const int limit = historyLimit(q);
  const int64_t before = q.beforeSeq.value_or(INT64_MAX);
  return withConnection(*pool_, "postgresql history", [&](ConnectionPool::Lease&, PgConnection& c) {
    PgStmt s = scope == HistoryScope::System ? kHistSystem
               : scope == HistoryScope::Type ? kHistType
                                             : kHistInstance;
    if (q.since) s = static_cast<PgStmt>(s + 1);
    PgParams p;
    p.int8(before);
    p.int8(limit + 1);
    p.int8(since);
    p.text(q.type);
    p.text(q.id);
    // The first page of a walk is read behind the history fence (see HISTORY_FENCE_KEY).
    bool fenced = false;
    if (!q.beforeSeq) {
      PgResult f(PQexec(c.raw(), "BEGIN; SET LOCAL lock_timeout = " HISTORY_FENCE_WAIT_MS
                                 "; SELECT pg_advisory_xact_lock(" HISTORY_FENCE_KEY ")"));
      fenced = PQresultStatus(f.get()) == PGRES_TUPLES_OK;
      if (!fenced) {
        if (c.broken()) throwPg(c.raw(), f, "history fence");
        c.simple("ROLLBACK", "history fence");  // timed out: read the page unfenced
      }
    }
    PgResult r;
    try {
      r = c.run(s, p, "history");
      if (fenced) c.simple("COMMIT", "history");
    } catch (...) {
      if (fenced && !c.broken()) PQclear(PQexec(c.raw(), "ROLLBACK"));
      throw;
    }
    HistoryPage page;
    const int rows = r.rows();
    for (int i = 0; i < rows && i < limit; ++i) {
      StoredVersion v;
      v.type = r.bytes(i, 0);
      v.id = r.bytes(i, 1);
      v.version = r.int8(i, 2);
      v.lastUpdated = r.bytes(i, 3);
      v.deleted = r.boolean(i, 4);
      v.seq = r.int8(i, 5);
      v.json = r.bytes(i, 6);
      v.op = writeOpFromColumn(r.int2(i, 7), v.version, v.deleted);
      page.entries.push_back(std::move(v));
    }
    if (rows > limit) page.nextBeforeSeq = page.entries.back().seq;
    if (scope == HistoryScope::Instance) {
      if (rows > 0) {
        page.total = r.int8(0, 8);
      } else {
        PgResult cnt = c.run(kCountInstance, p, "history count");
        page.total = cnt.int8(0, 0);
      }
    }
    return page;
  });
}

bool PostgresStore::healthy() {
  try {
    return withConnection(*pool_, "postgresql health", [](ConnectionPool::Lease&, PgConnection& c) {
      PgResult r = c.simple("SELECT 1", "health");
      return r.rows() == 1;
    });
  } catch (...) {
    return false;
  }
}

}  // namespace

std::unique_ptr<ResourceStore> openPostgresStore(const std::string& connectionString,
                                                 const StoreOptions& options) {
  return guarded("postgresql open", [&]() -> std::unique_ptr<ResourceStore> {
    return std::make_unique<PostgresStore>(connectionString, options);
  });
}

}  // namespace hearth::fhir::storeimpl
