#pragma once
// A scratch database with the logical search schema (store_migrations.cpp, version 3) for the
// white-box SQL tests: SQLite in memory always, PostgreSQL (a fresh database per instance, dropped
// afterwards) when HEARTH_TEST_PG_URL is set. Runs the SqlQuery texts the search builder makes,
// binding parameters the way the stores do ('?' placeholders; PostgreSQL: $n, int8 / float8 / text).
#include <memory>
#include <string>
#include <vector>

#include "hearth/fhir/search_index.h"
#include "hearth/fhir/store.h"

namespace hearth::test {

class SearchDb {
 public:
  virtual ~SearchDb() = default;
  virtual std::string name() const = 0;
  virtual fhir::SqlDialect dialect() const = 0;
  virtual void exec(const std::string& sql) = 0;
  virtual std::vector<fhir::SqlRow> query(const fhir::SqlQuery& q) = 0;
  // The plan, one line per node: EXPLAIN QUERY PLAN (SQLite) / EXPLAIN (PostgreSQL).
  virtual std::string plan(const fhir::SqlQuery& q) = 0;
  // Refreshes planner statistics (ANALYZE).
  virtual void analyze() = 0;

  // A live (or deleted) resource whose content is {"resourceType":T,"id":I}, with its index rows.
  void addResource(const std::string& type, const std::string& id, const std::string& lastUpdated,
                   const std::vector<fhir::IndexRow>& rows, bool deleted = false);
  // Several at once in one transaction (faster for the plan tests).
  void begin();
  void commit();

 protected:
  int64_t seq_ = 0;
};

std::unique_ptr<SearchDb> openSqliteSearchDb();
// nullptr when HEARTH_TEST_PG_URL is not set.
std::unique_ptr<SearchDb> openPostgresSearchDb();

// Row builders.
fhir::IndexRow strRow(const std::string& param, const std::string& text, const std::string& exact);
fhir::IndexRow tokRow(const std::string& param, const std::string& system, const std::string& code,
                      const std::string& text = {});
fhir::IndexRow dateRow(const std::string& param, int64_t lo, int64_t hi);
fhir::IndexRow numRow(const std::string& param, double value);
fhir::IndexRow qtyRow(const std::string& param, double value, const std::string& system, const std::string& code,
                      const std::string& unit);
fhir::IndexRow refRow(const std::string& param, const std::string& type, const std::string& id,
                      const std::string& url = {});
fhir::IndexRow uriRow(const std::string& param, const std::string& value);
// Epoch microseconds of a UTC date-time "YYYY-MM-DDThh:mm:ss" (fraction not allowed).
int64_t utc(const std::string& dateTime);

}  // namespace hearth::test
