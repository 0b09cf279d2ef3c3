// Shared plumbing of the store backends: URL parsing, instants, history arguments, the connection
// pool and exception translation. See store_common.h.
#include "store_common.h"

#include <Poco/Data/DataException.h>
#include <Poco/Exception.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <stdexcept>
#include <tuple>

#include "hearth/fhir/error.h"

namespace hearth::fhir {

std::optional<int64_t> instantToEpochMicros(std::string_view instant) {
  return storeimpl::parseInstantMicros(instant, false);
}

}  // namespace hearth::fhir

namespace hearth::fhir::storeimpl {

// ---- URLs -------------------------------------------------------------------------------------

std::string sqlitePathFromUrl(std::string_view url) {
  constexpr std::string_view scheme = "sqlite:";
  if (url.substr(0, scheme.size()) != scheme) throw StoreUnavailable("not a sqlite: URL");
  std::string_view path = url.substr(scheme.size());
  if (path.substr(0, 2) == "//") path.remove_prefix(2);  // sqlite:///abs/path
  if (path.empty()) throw StoreUnavailable("sqlite: URL without a file path");
  if (path == ":memory:" || path.find("mode=memory") != std::string_view::npos) {
    throw StoreUnavailable("an in-memory SQLite database cannot be shared by a connection pool; use a file");
  }
  return std::string(path);
}

namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      int hi = i + 2 < s.size() ? hexValue(s[i + 1]) : -1;
      int lo = i + 2 < s.size() ? hexValue(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) throw StoreUnavailable("malformed percent-escape in database URL");
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// A value in libpq's unquoted keyword syntax: backslash escapes quote and backslash. Whitespace
// cannot be expressed because Poco's connector splits the whole string at spaces before libpq
// sees it.
std::string libpqValue(const std::string& key, const std::string& value) {
  std::string out;
  for (char c : value) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      throw StoreUnavailable("PostgreSQL URL: the value of '" + key +
                             "' contains whitespace, which Poco's PostgreSQL connector cannot pass on");
    }
    if (c == '\\' || c == '\'') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string postgresConnectionString(std::string_view url) {
  std::string_view rest;
  for (std::string_view scheme : {"postgresql://", "postgres://"}) {
    if (url.substr(0, scheme.size()) == scheme) rest = url.substr(scheme.size());
  }
  if (rest.data() == nullptr) throw StoreUnavailable("not a postgresql:// URL");

  std::string_view query;
  if (size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view authority = rest, path;
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    path = rest.substr(slash + 1);
  }

  std::map<std::string, std::string> kv;  // keyword -> decoded value
  std::vector<std::string> order;
  auto set = [&](const std::string& k, std::string v) {
    if (v.empty()) return;
    if (!kv.count(k)) order.push_back(k);
    kv[k] = std::move(v);
  };

  std::string_view hostPart = authority;
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    hostPart = authority.substr(at + 1);
    size_t colon = userinfo.find(':');
    set("user", percentDecode(userinfo.substr(0, colon)));
    if (colon != std::string_view::npos) set("password", percentDecode(userinfo.substr(colon + 1)));
  }
  // host[:port][,host[:port]...]; IPv6 literals in brackets.
  std::string hosts, ports;
  bool anyPort = false;
  size_t start = 0;
  while (start <= hostPart.size() && !hostPart.empty()) {
    size_t comma = hostPart.find(',', start);
    std::string_view item =
        hostPart.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    std::string_view host = item, port;
    if (!item.empty() && item.front() == '[') {
      size_t close = item.find(']');
      if (close == std::string_view::npos) throw StoreUnavailable("PostgreSQL URL: unterminated IPv6 host");
      host = item.substr(1, close - 1);
      if (close + 1 < item.size() && item[close + 1] == ':') port = item.substr(close + 2);
    } else if (size_t colon = item.rfind(':'); colon != std::string_view::npos) {
      host = item.substr(0, colon);
      port = item.substr(colon + 1);
    }
    if (!hosts.empty() || start > 0) {
      hosts += ',';
      ports += ',';
    }
    hosts += percentDecode(host);
    ports += std::string(port);
    anyPort = anyPort || !port.empty();
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  set("host", hosts);
  if (anyPort) set("port", ports);
  set("dbname", percentDecode(path));

  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) throw StoreUnavailable("PostgreSQL URL: query parameter without '='");
    std::string key = percentDecode(pair.substr(0, eq));
    for (char c : key) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') {
        throw StoreUnavailable("PostgreSQL URL: invalid parameter name");
      }
    }
    set(key, percentDecode(pair.substr(eq + 1)));
  }
  if (!kv.count("application_name")) set("application_name", "hearth");
  if (!kv.count("client_encoding")) set("client_encoding", "UTF8");
  if (!kv.count("connect_timeout")) set("connect_timeout", "10");

  std::string out;
  for (const auto& k : order) {
    if (!out.empty()) out += ' ';
    out += k + "=" + libpqValue(k, kv[k]);
  }
  return out;
}

// ---- Time -------------------------------------------------------------------------------------

namespace {

bool readDigits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

int64_t daysFromCivil(int y, int m, int d) {
  // Days since 1970-01-01 in the proleptic Gregorian calendar (era arithmetic: 400-year cycles).
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool isLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int daysInMonth(int y, int m) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && isLeap(y) ? 29 : days[m - 1];
}

}  // namespace

std::optional<int64_t> parseInstantMicros(std::string_view s, bool allowDate) {
  int y = 0, mo = 1, d = 1, h = 0, mi = 0, se = 0;
  if (!readDigits(s, 0, 4, y)) return std::nullopt;
  size_t p = 4;
  auto dateOnly = [&]() -> std::optional<int64_t> {
    if (!allowDate) return std::nullopt;
    return daysFromCivil(y, mo, d) * 86400LL * 1000000LL;
  };
  if (p == s.size()) return dateOnly();
  if (s[p] != '-' || !readDigits(s, p + 1, 2, mo) || mo < 1 || mo > 12) return std::nullopt;
  p += 3;
  if (p == s.size()) return dateOnly();
  if (s[p] != '-' || !readDigits(s, p + 1, 2, d) || d < 1 || d > daysInMonth(y, mo)) return std::nullopt;
  p += 3;
  if (p == s.size()) return dateOnly();
  if (s[p] != 'T' || !readDigits(s, p + 1, 2, h) || h > 23 || p + 3 >= s.size() || s[p + 3] != ':' ||
      !readDigits(s, p + 4, 2, mi) || mi > 59 || p + 6 >= s.size() || s[p + 6] != ':' ||
      !readDigits(s, p + 7, 2, se) || se > 60) {
    return std::nullopt;
  }
  p += 9;
  int64_t micros = 0;
  if (p < s.size() && s[p] == '.') {
    ++p;
    size_t digits = 0;
    while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
      if (digits < 6) micros = micros * 10 + (s[p] - '0');
      ++digits;
      ++p;
    }
    if (digits == 0) return std::nullopt;
    for (size_t i = digits; i < 6; ++i) micros *= 10;
  }
  int offsetMinutes = 0;
  if (p < s.size() && s[p] == 'Z') {
    ++p;
  } else if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
    int oh = 0, om = 0;
    if (!readDigits(s, p + 1, 2, oh) || p + 3 >= s.size() || s[p + 3] != ':' ||
        !readDigits(s, p + 4, 2, om) || oh > 14 || om > 59) {
      return std::nullopt;
    }
    offsetMinutes = (oh * 60 + om) * (s[p] == '-' ? -1 : 1);
    p += 6;
  } else {
    return std::nullopt;  // an instant must carry its time zone
  }
  if (p != s.size()) return std::nullopt;
  int64_t secs = daysFromCivil(y, mo, d) * 86400LL + h * 3600LL + mi * 60LL + se - offsetMinutes * 60LL;
  return secs * 1000000LL + micros;
}

std::string nowInstant() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

// ---- Versions ---------------------------------------------------------------------------------

int64_t checkPutArgument(const StoredVersion& v) {
  auto us = parseInstantMicros(v.lastUpdated, false);
  if (!us) throw std::invalid_argument("ResourceStore put: lastUpdated is not a FHIR instant");
  if (v.version < 1) throw std::invalid_argument("ResourceStore put: version must be >= 1");
  if (v.op != WriteOp::Create && v.op != WriteOp::Update && v.op != WriteOp::Delete)
    throw std::invalid_argument("ResourceStore put: op is not a WriteOp");
  if ((v.op == WriteOp::Delete) != v.deleted)
    throw std::invalid_argument("ResourceStore put: op must be Delete exactly for a deletion");
  return *us;
}

WriteOp writeOpFromColumn(int64_t raw, int64_t version, bool deleted) {
  switch (raw) {
    case static_cast<int>(WriteOp::Create):
      return WriteOp::Create;
    case static_cast<int>(WriteOp::Update):
      return WriteOp::Update;
    case static_cast<int>(WriteOp::Delete):
      return WriteOp::Delete;
    default:  // 0: written before op was recorded
      if (deleted) return WriteOp::Delete;
      return version == 1 ? WriteOp::Create : WriteOp::Update;
  }
}

// ---- History helpers --------------------------------------------------------------------------

HistoryScope historyScope(const HistoryQuery& q) {
  if (q.type.empty()) {
    if (!q.id.empty()) throw std::invalid_argument("history: id given without type");
    return HistoryScope::System;
  }
  return q.id.empty() ? HistoryScope::Type : HistoryScope::Instance;
}

int64_t sinceMicros(const HistoryQuery& q) {
  if (!q.since) return INT64_MIN;
  auto us = parseInstantMicros(*q.since, true);
  if (!us)
    throw FhirError(400, IssueType::Invalid, "_since must be a FHIR instant, e.g. 2024-01-31T12:00:00Z");
  return *us;
}

int historyLimit(const HistoryQuery& q) { return std::clamp(q.count, 1, 1000); }

// ---- Exceptions -------------------------------------------------------------------------------

void rethrowAsStoreError(const char* what) {
  try {
    throw;
  } catch (const StoreConflict&) {
    throw;
  } catch (const StoreUnavailable&) {
    throw;
  } catch (const FhirError&) {
    throw;
  } catch (const std::invalid_argument&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const Poco::Data::SessionPoolExhaustedException&) {
    throw StoreUnavailable(std::string(what) + ": connection pool exhausted");
  } catch (const Poco::Exception& e) {
    throw StoreUnavailable(std::string(what) + ": " + e.displayText());
  } catch (const std::exception& e) {
    throw StoreUnavailable(std::string(what) + ": " + e.what());
  } catch (...) {
    throw StoreUnavailable(std::string(what) + ": unknown error");
  }
}

// ---- Connections ------------------------------------------------------------------------------

// ---- Search index and generic queries -----------------------------------------------------

bool isReadQuery(std::string_view sql) {
  size_t i = 0;
  while (i < sql.size() && (std::isspace(static_cast<unsigned char>(sql[i])) || sql[i] == '(')) ++i;
  size_t end = i;
  while (end < sql.size() && std::isalpha(static_cast<unsigned char>(sql[end]))) ++end;
  std::string word;
  for (size_t k = i; k < end; ++k) word.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(sql[k]))));
  return word == "SELECT" || word == "WITH" || word == "VALUES";
}

bool isIntegrationWrite(std::string_view sql) {
  size_t i = 0;
  while (i < sql.size() && std::isspace(static_cast<unsigned char>(sql[i]))) ++i;
  std::string lower;
  lower.reserve(sql.size());
  for (size_t k = i; k < sql.size(); ++k) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(sql[k]))));
  const bool write = lower.rfind("insert", 0) == 0 || lower.rfind("update", 0) == 0 || lower.rfind("delete", 0) == 0;
  if (!write) return false;
  // Resource and index tables change only through put() / replaceIndex(), which keep them consistent.
  return lower.find("resource_") == std::string::npos && lower.find("search_") == std::string::npos &&
         lower.find("schema_") == std::string::npos;
}

bool indexable(const IndexRow& row) {
  if (row.kind == IndexKind::Number || row.kind == IndexKind::Quantity) return !std::isnan(row.value);
  return indexKindSlot(row.kind) >= 0 && indexKindSlot(row.kind) < kIndexKinds;
}

namespace {
// The stored columns of a row, in table order, as a tuple of references.
template <class Fn>
bool compareStored(const IndexRow& a, const IndexRow& b, Fn&& cmp) {
  switch (a.kind) {
    case IndexKind::String:
      return cmp(std::tie(a.param, a.text, a.exact), std::tie(b.param, b.text, b.exact));
    case IndexKind::Token:
      return cmp(std::tie(a.param, a.system, a.code, a.text), std::tie(b.param, b.system, b.code, b.text));
    case IndexKind::Date:
      return cmp(std::tie(a.param, a.lo, a.hi), std::tie(b.param, b.lo, b.hi));
    case IndexKind::Number:
      return cmp(std::tie(a.param, a.value), std::tie(b.param, b.value));
    case IndexKind::Quantity:
      return cmp(std::tie(a.param, a.system, a.code, a.unit, a.value),
                 std::tie(b.param, b.system, b.code, b.unit, b.value));
    case IndexKind::Reference:
      return cmp(std::tie(a.param, a.refType, a.refId, a.url), std::tie(b.param, b.refType, b.refId, b.url));
    case IndexKind::Uri:
      return cmp(std::tie(a.param, a.text), std::tie(b.param, b.text));
  }
  return cmp(std::tie(a.param), std::tie(b.param));
}
}  // namespace

bool storedLess(const IndexRow& a, const IndexRow& b) {
  if (a.kind != b.kind) return a.kind < b.kind;
  return compareStored(a, b, [](const auto& x, const auto& y) { return x < y; });
}
bool storedEqual(const IndexRow& a, const IndexRow& b) {
  return a.kind == b.kind && compareStored(a, b, [](const auto& x, const auto& y) { return x == y; });
}

uint64_t lockKeyHash(std::string_view key) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a 64: offset basis, prime 2^40 + 2^8 + 0xb3
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string queryError(const char* backend, std::string_view what, std::string_view sql) {
  constexpr size_t kMaxSql = 2000;
  std::string msg = std::string(backend) + " query: ";
  msg += what;
  msg += " [SQL: ";
  msg += sql.substr(0, kMaxSql);
  if (sql.size() > kMaxSql) msg += "...";
  msg += "]";
  return msg;
}

bool NativeConnection::orphaned() noexcept { return physical_.isNull() || physical_->referenceCount() == 1; }

// Poco's pool with the hook that runs once per physical session it opens.
class ConnectionPool::HookedPool : public Poco::Data::SessionPool {
 public:
  HookedPool(ConnectionPool& owner, const ConnectionPoolConfig& c)
      // Idle sessions above the minimum are closed after a day; NativeConnections of closed
      // sessions are dropped the next time a session is opened.
      : Poco::Data::SessionPool(c.connector, c.connectionString, c.minSessions, c.maxSessions, 86400),
        owner_(owner) {}

 protected:
  void customizeSession(Poco::Data::Session& physical) override {
    auto native = owner_.attachPhysical(physical);
    void* handle = owner_.config_.handleOf(physical);
    std::lock_guard lock(owner_.connsMutex_);
    // Clean up after sessions Poco has let go of since (their handles may be reused).
    for (auto it = owner_.conns_.begin(); it != owner_.conns_.end();) {
      if (it->second->orphaned()) {
        it->second->dispose();
        it = owner_.conns_.erase(it);
      } else {
        ++it;
      }
    }
    owner_.conns_[handle] = std::move(native);
  }

 private:
  ConnectionPool& owner_;
};

std::unique_ptr<NativeConnection> ConnectionPool::attachPhysical(Poco::Data::Session& physical) {
  return config_.attach(physical);
}

ConnectionPool::ConnectionPool(ConnectionPoolConfig config)
    : config_(std::move(config)), slots_(std::max(1, config_.maxSessions)) {
  config_.minSessions = std::clamp(config_.minSessions, 0, std::max(1, config_.maxSessions));
  config_.maxSessions = std::max(1, config_.maxSessions);
  pool_ = guarded("opening connection pool", [&] { return std::make_unique<HookedPool>(*this, config_); });
}

ConnectionPool::~ConnectionPool() {
  try {
    pool_->shutdown();  // closes every session; none may be leased any more
  } catch (...) {
  }
  pool_.reset();
  std::lock_guard lock(connsMutex_);
  for (auto& [handle, conn] : conns_) {
    if (conn->orphaned()) conn->dispose();
  }
  conns_.clear();
}

ConnectionPool::Lease ConnectionPool::acquire() {
  if (!slots_.try_acquire_for(config_.acquireTimeout)) {
    throw StoreUnavailable("timed out waiting for a database connection");
  }
  Lease lease;
  lease.pool_ = this;  // from here on the lease gives the slot back
  try {
    if (config_.beforeConnect && pool_->idle() == 0) config_.beforeConnect();
    lease.session_.emplace(pool_->get());
    void* handle = config_.handleOf(*lease.session_);
    std::lock_guard lock(connsMutex_);
    auto it = conns_.find(handle);
    if (it == conns_.end()) throw StoreUnavailable("pooled session without connection state");
    lease.conn_ = it->second.get();
  } catch (...) {
    rethrowAsStoreError("opening a database connection");
  }
  return lease;
}

void ConnectionPool::warmUp() {
  std::vector<Lease> leases;
  for (int i = 0; i < config_.minSessions; ++i) leases.push_back(acquire());
}

StorePoolStats ConnectionPool::stats() {
  StorePoolStats s;
  s.capacity = pool_->capacity();
  s.allocated = pool_->allocated();
  s.idle = pool_->idle();
  s.inUse = pool_->used();
  return s;
}

ConnectionPool::Lease::Lease(Lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)),
      session_(std::move(other.session_)),
      conn_(std::exchange(other.conn_, nullptr)) {
  other.session_.reset();
}

ConnectionPool::Lease& ConnectionPool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    reset();
    pool_ = std::exchange(other.pool_, nullptr);
    session_ = std::move(other.session_);
    other.session_.reset();
    conn_ = std::exchange(other.conn_, nullptr);
  }
  return *this;
}

ConnectionPool::Lease::~Lease() { reset(); }

void ConnectionPool::Lease::reset() noexcept {
  conn_ = nullptr;
  try {
    session_.reset();  // Poco puts the session back into its pool
  } catch (...) {
  }
  if (pool_) std::exchange(pool_, nullptr)->slots_.release();
}

}  // namespace hearth::fhir::storeimpl
