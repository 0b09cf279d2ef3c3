#include "search_db.h"

#include <libpq-fe.h>
#include <sqlite3.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>

namespace hearth::test {

using fhir::IndexKind;
using fhir::IndexRow;
using fhir::SqlQuery;
using fhir::SqlRow;
using fhir::SqlValue;

namespace {

// The logical schema of store_migrations.cpp version 3, as both backends create it; the reference
// indexes as each store has them now.
std::string schema(bool pg) {
  const std::string t = pg ? "TEXT COLLATE \"C\"" : "TEXT";
  const std::string big = pg ? "BIGINT" : "INTEGER";
  const std::string real = pg ? "DOUBLE PRECISION" : "REAL";
  std::string s;
  s += "CREATE TABLE resource_version (seq " + big + " PRIMARY KEY, type " + t + " NOT NULL, id " + t +
       " NOT NULL, version " + big + " NOT NULL, last_updated TEXT NOT NULL, last_updated_us " + big +
       " NOT NULL, deleted " + (pg ? "BOOLEAN" : "INTEGER") + " NOT NULL, content " + (pg ? "BYTEA" : "BLOB") +
       " NOT NULL, op SMALLINT NOT NULL DEFAULT 0);\n";
  s += "CREATE TABLE resource_current (type " + t + " NOT NULL, id " + t + " NOT NULL, version " + big +
       " NOT NULL, deleted " + (pg ? "BOOLEAN" : "INTEGER") + " NOT NULL, seq " + big +
       " NOT NULL, last_updated TEXT NOT NULL, PRIMARY KEY (type, id))" + (pg ? "" : " WITHOUT ROWID") + ";\n";
  s += "CREATE INDEX resource_current_type_updated ON resource_current (type, last_updated);\n";
  auto table = [&](const std::string& name, const std::string& cols) {
    s += "CREATE TABLE " + name + " (type " + t + " NOT NULL, id " + t + " NOT NULL, param " + t + " NOT NULL, " +
         cols + ");\n";
    s += "CREATE INDEX " + name + "_resource ON " + name + " (type, id);\n";
  };
  table("search_string", "text " + t + " NOT NULL, exact " + t + " NOT NULL");
  s += "CREATE INDEX search_string_value ON search_string (type, param, text);\n";
  table("search_token", "system " + t + " NOT NULL, code " + t + " NOT NULL, text " + t + " NOT NULL");
  s += "CREATE INDEX search_token_value ON search_token (type, param, code, system);\n";
  table("search_date", "lo " + big + " NOT NULL, hi " + big + " NOT NULL");
  s += "CREATE INDEX search_date_lo ON search_date (type, param, lo);\n";
  s += "CREATE INDEX search_date_hi ON search_date (type, param, hi);\n";
  table("search_number", "value " + real + " NOT NULL");
  s += "CREATE INDEX search_number_value ON search_number (type, param, value);\n";
  table("search_quantity", "system " + t + " NOT NULL, code " + t + " NOT NULL, unit " + t + " NOT NULL, value " +
                               real + " NOT NULL");
  s += "CREATE INDEX search_quantity_value ON search_quantity (type, param, code, value);\n";
  table("search_reference", "target_type " + t + " NOT NULL, target_id " + t + " NOT NULL, url " + t + " NOT NULL");
  if (pg) {
    s += "CREATE INDEX search_reference_value ON search_reference (type, param, target_type, target_id);\n";
    s += "CREATE INDEX search_reference_target ON search_reference (target_type, target_id);\n";
    s += "CREATE INDEX search_reference_url ON search_reference (type, param, url);\n";
  } else {  // the SQLite store's since its schema 11
    s += "CREATE INDEX search_reference_target ON search_reference (target_type, target_id, type, param, id);\n";
    s += "CREATE INDEX search_reference_url ON search_reference (type, param, url) WHERE url <> '';\n";
  }
  table("search_uri", "value " + t + " NOT NULL");
  s += "CREATE INDEX search_uri_value ON search_uri (type, param, value);\n";
  return s;
}

std::string sqlQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string realText(double d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

// --- SQLite ------------------------------------------------------------------------------------

class SqliteDb : public SearchDb {
 public:
  SqliteDb() {
    if (sqlite3_open(":memory:", &db_) != SQLITE_OK) throw std::runtime_error("sqlite open failed");
    exec(schema(false));
  }
  ~SqliteDb() override { sqlite3_close(db_); }
  std::string name() const override { return "sqlite"; }
  fhir::SqlDialect dialect() const override { return fhir::SqlDialect::Sqlite; }
  void exec(const std::string& sql) override {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error("sqlite: " + msg + " in " + sql.substr(0, 300));
    }
  }
  std::vector<SqlRow> query(const SqlQuery& q) override { return run(q.sql, q); }
  std::string plan(const SqlQuery& q) override {
    std::string out;
    for (const SqlRow& r : run("EXPLAIN QUERY PLAN " + q.sql, q)) {
      out += std::get<std::string>(r.at(3));
      out += '\n';
    }
    return out;
  }
  void analyze() override { exec("ANALYZE"); }

 private:
  std::vector<SqlRow> run(const std::string& sql, const SqlQuery& q) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      throw std::runtime_error(std::string("sqlite prepare: ") + sqlite3_errmsg(db_) + " in " + sql);
    }
    if (static_cast<size_t>(sqlite3_bind_parameter_count(st)) != q.params.size()) {
      sqlite3_finalize(st);
      throw std::runtime_error("sqlite: placeholder count differs from parameter count in " + sql);
    }
    for (size_t i = 0; i < q.params.size(); ++i) {
      const int k = static_cast<int>(i + 1);
      const SqlValue& v = q.params[i];
      if (const auto* n = std::get_if<int64_t>(&v)) sqlite3_bind_int64(st, k, *n);
      else if (const auto* d = std::get_if<double>(&v)) sqlite3_bind_double(st, k, *d);
      else if (const auto* s = std::get_if<std::string>(&v)) sqlite3_bind_text(st, k, s->data(), static_cast<int>(s->size()), SQLITE_TRANSIENT);
      else sqlite3_bind_null(st, k);
    }
    std::vector<SqlRow> rows;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      SqlRow row;
      for (int c = 0; c < sqlite3_column_count(st); ++c) {
        switch (sqlite3_column_type(st, c)) {
          case SQLITE_INTEGER: row.emplace_back(static_cast<int64_t>(sqlite3_column_int64(st, c))); break;
          case SQLITE_FLOAT: row.emplace_back(sqlite3_column_double(st, c)); break;
          case SQLITE_NULL: row.emplace_back(std::monostate{}); break;
          default: {
            const char* p = static_cast<const char*>(sqlite3_column_blob(st, c));
            row.emplace_back(std::string(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(st, c))));
          }
        }
      }
      rows.push_back(std::move(row));
    }
    const std::string err = sqlite3_errmsg(db_);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) throw std::runtime_error("sqlite step: " + err + " in " + sql);
    return rows;
  }
  sqlite3* db_ = nullptr;
};

// --- PostgreSQL --------------------------------------------------------------------------------

class PgDb : public SearchDb {
 public:
  explicit PgDb(const std::string& url) {
    admin_ = connect(url);
    std::mt19937_64 rng(std::random_device{}() ^
                        static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
    char buf[32];
    std::snprintf(buf, sizeof buf, "hearth_sqltest_%012llx", static_cast<unsigned long long>(rng() & 0xFFFFFFFFFFFFULL));
    dbName_ = buf;
    run(admin_, "CREATE DATABASE " + dbName_ + " ENCODING 'UTF8' TEMPLATE template0");
    // Same server, the new database.
    const size_t slash = url.find('/', url.find("://") + 3);
    const size_t qm = url.find('?', slash == std::string::npos ? 0 : slash);
    std::string dbUrl = url.substr(0, slash) + "/" + dbName_ + (qm == std::string::npos ? "" : url.substr(qm));
    conn_ = connect(dbUrl);
    exec(schema(true));
  }
  ~PgDb() override {
    if (conn_) PQfinish(conn_);
    if (admin_) {
      PQclear(PQexec(admin_, ("DROP DATABASE IF EXISTS " + dbName_).c_str()));
      PQfinish(admin_);
    }
  }
  std::string name() const override { return "postgres"; }
  fhir::SqlDialect dialect() const override { return fhir::SqlDialect::Postgres; }
  void exec(const std::string& sql) override { run(conn_, sql); }
  std::vector<SqlRow> query(const SqlQuery& q) override { return params(q.sql, q); }
  std::string plan(const SqlQuery& q) override {
    std::string out;
    for (const SqlRow& r : params("EXPLAIN " + q.sql, q)) out += std::get<std::string>(r.at(0)) + "\n";
    return out;
  }
  void analyze() override { exec("ANALYZE"); }

 private:
  static PGconn* connect(const std::string& url) {
    PGconn* c = PQconnectdb(url.c_str());
    if (PQstatus(c) != CONNECTION_OK) {
      std::string msg = PQerrorMessage(c);
      PQfinish(c);
      throw std::runtime_error("postgres connect: " + msg);
    }
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    return c;
  }
  static void run(PGconn* c, const std::string& sql) {
    PGresult* r = PQexec(c, sql.c_str());
    const auto st = PQresultStatus(r);
    std::string msg = PQresultErrorMessage(r);
    PQclear(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) throw std::runtime_error("postgres: " + msg + " in " + sql.substr(0, 300));
  }
  // '?' -> $n as the store does; parameters typed as the store types them (text left untyped).
  std::vector<SqlRow> params(const std::string& sqlIn, const SqlQuery& q) {
    std::string sql;
    int n = 0;
    for (char ch : sqlIn) {
      if (ch == '?') sql += "$" + std::to_string(++n);
      else sql += ch;
    }
    if (static_cast<size_t>(n) != q.params.size()) throw std::runtime_error("postgres: placeholder count differs in " + sqlIn);
    std::vector<Oid> types;
    std::vector<std::string> texts;
    std::vector<const char*> values;
    texts.reserve(q.params.size());
    for (const SqlValue& v : q.params) {
      if (const auto* i = std::get_if<int64_t>(&v)) {
        types.push_back(20);
        texts.push_back(std::to_string(*i));
      } else if (const auto* d = std::get_if<double>(&v)) {
        types.push_back(701);
        texts.push_back(std::isinf(*d) ? (*d > 0 ? "Infinity" : "-Infinity") : realText(*d));
      } else if (const auto* s = std::get_if<std::string>(&v)) {
        types.push_back(0);
        texts.push_back(*s);
      } else {
        types.push_back(0);
        texts.push_back("");
      }
    }
    for (size_t i = 0; i < q.params.size(); ++i)
      values.push_back(std::holds_alternative<std::monostate>(q.params[i]) ? nullptr : texts[i].c_str());
    PGresult* r = PQexecParams(conn_, sql.c_str(), n, types.data(), values.data(), nullptr, nullptr, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      std::string msg = PQresultErrorMessage(r);
      PQclear(r);
      throw std::runtime_error("postgres: " + msg + " in " + sql);
    }
    std::vector<SqlRow> rows;
    for (int i = 0; i < PQntuples(r); ++i) {
      SqlRow row;
      for (int c = 0; c < PQnfields(r); ++c) {
        if (PQgetisnull(r, i, c)) {
          row.emplace_back(std::monostate{});
          continue;
        }
        const char* val = PQgetvalue(r, i, c);
        switch (PQftype(r, c)) {
          case 16: row.emplace_back(static_cast<int64_t>(val[0] == 't')); break;
          case 20:
          case 21:
          case 23: row.emplace_back(static_cast<int64_t>(std::strtoll(val, nullptr, 10))); break;
          case 700:
          case 701:
          case 1700: row.emplace_back(std::strtod(val, nullptr)); break;
          case 17: {
            size_t len = 0;
            unsigned char* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(val), &len);
            row.emplace_back(std::string(reinterpret_cast<char*>(raw), len));
            PQfreemem(raw);
            break;
          }
          default: row.emplace_back(std::string(val, static_cast<size_t>(PQgetlength(r, i, c))));
        }
      }
      rows.push_back(std::move(row));
    }
    PQclear(r);
    return rows;
  }

  PGconn* admin_ = nullptr;
  PGconn* conn_ = nullptr;
  std::string dbName_;
};

const char* tableOf(IndexKind k) {
  switch (k) {
    case IndexKind::String: return "search_string";
    case IndexKind::Token: return "search_token";
    case IndexKind::Date: return "search_date";
    case IndexKind::Number: return "search_number";
    case IndexKind::Quantity: return "search_quantity";
    case IndexKind::Reference: return "search_reference";
    case IndexKind::Uri: return "search_uri";
  }
  return "";
}

}  // namespace

void SearchDb::begin() { exec("BEGIN"); }
void SearchDb::commit() { exec("COMMIT"); }

void SearchDb::addResource(const std::string& type, const std::string& id, const std::string& lastUpdated,
                           const std::vector<IndexRow>& rows, bool deleted) {
  const bool pg = dialect() == fhir::SqlDialect::Postgres;
  ++seq_;
  const std::string content = deleted ? "" : R"({"resourceType":")" + type + R"(","id":")" + id + R"("})";
  const std::string del = pg ? (deleted ? "TRUE" : "FALSE") : (deleted ? "1" : "0");
  const std::string contentLit = pg ? "convert_to(" + sqlQuote(content) + ", 'UTF8')" : "CAST(" + sqlQuote(content) + " AS BLOB)";
  std::string sql = "INSERT INTO resource_version (seq, type, id, version, last_updated, last_updated_us, deleted, content) VALUES (" +
                    std::to_string(seq_) + ", " + sqlQuote(type) + ", " + sqlQuote(id) + ", 1, " + sqlQuote(lastUpdated) +
                    ", 0, " + del + ", " + contentLit + ");\n";
  sql += "INSERT INTO resource_current (type, id, version, deleted, seq, last_updated) VALUES (" + sqlQuote(type) + ", " +
         sqlQuote(id) + ", 1, " + del + ", " + std::to_string(seq_) + ", " + sqlQuote(lastUpdated) + ");\n";
  for (const IndexRow& r : rows) {
    std::string cols, vals;
    switch (r.kind) {
      case IndexKind::String: cols = "text, exact"; vals = sqlQuote(r.text) + ", " + sqlQuote(r.exact); break;
      case IndexKind::Token: cols = "system, code, text"; vals = sqlQuote(r.system) + ", " + sqlQuote(r.code) + ", " + sqlQuote(r.text); break;
      case IndexKind::Date: cols = "lo, hi"; vals = std::to_string(r.lo) + ", " + std::to_string(r.hi); break;
      case IndexKind::Number: cols = "value"; vals = realText(r.value); break;
      case IndexKind::Quantity:
        cols = "system, code, unit, value";
        vals = sqlQuote(r.system) + ", " + sqlQuote(r.code) + ", " + sqlQuote(r.unit) + ", " + realText(r.value);
        break;
      case IndexKind::Reference:
        cols = "target_type, target_id, url";
        vals = sqlQuote(r.refType) + ", " + sqlQuote(r.refId) + ", " + sqlQuote(r.url);
        break;
      case IndexKind::Uri: cols = "value"; vals = sqlQuote(r.text); break;
    }
    sql += std::string("INSERT INTO ") + tableOf(r.kind) + " (type, id, param, " + cols + ") VALUES (" + sqlQuote(type) + ", " +
           sqlQuote(id) + ", " + sqlQuote(r.param) + ", " + vals + ");\n";
  }
  exec(sql);
}

std::unique_ptr<SearchDb> openSqliteSearchDb() { return std::make_unique<SqliteDb>(); }

std::unique_ptr<SearchDb> openPostgresSearchDb() {
  const char* url = std::getenv("HEARTH_TEST_PG_URL");
  if (!url || !*url) return nullptr;
  return std::make_unique<PgDb>(url);
}

IndexRow strRow(const std::string& param, const std::string& text, const std::string& exact) {
  IndexRow r;
  r.kind = IndexKind::String;
  r.param = param;
  r.text = text;
  r.exact = exact;
  return r;
}
IndexRow tokRow(const std::string& param, const std::string& system, const std::string& code, const std::string& text) {
  IndexRow r;
  r.kind = IndexKind::Token;
  r.param = param;
  r.system = system;
  r.code = code;
  r.text = text;
  return r;
}
IndexRow dateRow(const std::string& param, int64_t lo, int64_t hi) {
  IndexRow r;
  r.kind = IndexKind::Date;
  r.param = param;
  r.lo = lo;
  r.hi = hi;
  return r;
}
IndexRow numRow(const std::string& param, double value) {
  IndexRow r;
  r.kind = IndexKind::Number;
  r.param = param;
  r.value = value;
  return r;
}
IndexRow qtyRow(const std::string& param, double value, const std::string& system, const std::string& code,
                const std::string& unit) {
  IndexRow r;
  r.kind = IndexKind::Quantity;
  r.param = param;
  r.value = value;
  r.system = system;
  r.code = code;
  r.unit = unit;
  return r;
}
IndexRow refRow(const std::string& param, const std::string& type, const std::string& id, const std::string& url) {
  IndexRow r;
  r.kind = IndexKind::Reference;
  r.param = param;
  r.refType = type;
  r.refId = id;
  r.url = url;
  return r;
}
IndexRow uriRow(const std::string& param, const std::string& value) {
  IndexRow r;
  r.kind = IndexKind::Uri;
  r.param = param;
  r.text = value;
  return r;
}

int64_t utc(const std::string& s) {
  int y, mo, d, h, mi, se;
  if (std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &h, &mi, &se) != 6) throw std::runtime_error("utc: " + s);
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = se;
  return static_cast<int64_t>(timegm(&tm)) * 1000000;
}

}  // namespace hearth::test
