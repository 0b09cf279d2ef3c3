// SQL for searches (search_query.h), over the logical schema of store_migrations.cpp (version 3),
// the same text for SQLite and PostgreSQL except where SqlDialect says otherwise.
//
// Shape of a page query:
//
//   SELECT u.type, u.id, v.content, u.s0 ... FROM (
//     SELECT c.type AS type, c.id AS id, c.seq AS seq, <sort key> AS s0 ...
//     FROM resource_current c WHERE c.type = ? AND NOT c.deleted AND <criterion> AND ...
//     [UNION ALL <the same for the next type>]          -- _type=A,B and compartment "*"
//   ) u JOIN resource_version v ON v.seq = u.seq
//   WHERE <after the cursor>
//   ORDER BY u.s0 ..., u.type, u.id LIMIT <count + 1>
//
// A single-type branch is flattened by both planners into a plain join, so the default order
// (u.id) walks resource_current's primary key and stops after count + 1 rows; criteria are
// membership tests `c.id IN (SELECT s.id FROM search_x s WHERE s.type = ? AND s.param = ? AND
// <value predicate>)` that the planners drive from the (type, param, value) indexes.
// Sort keys are correlated subqueries (MIN of the column for ascending, MAX for descending) that
// are NULL when the resource has no value: those sort last in both directions (NULLS LAST).
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "search_query.h"

namespace hearth::fhir::searchq {

namespace {

const char* tableName(IndexKind k) {
  switch (k) {
    case IndexKind::String: return "search_string";
    case IndexKind::Token: return "search_token";
    case IndexKind::Date: return "search_date";
    case IndexKind::Number: return "search_number";
    case IndexKind::Quantity: return "search_quantity";
    case IndexKind::Reference: return "search_reference";
    case IndexKind::Uri: return "search_uri";
  }
  return "search_string";
}

// SQL text and its parameters, built together so the '?' and the values stay in order.
class Sql {
 public:
  explicit Sql(SqlDialect d) : d_(d) {}
  Sql& operator<<(std::string_view s) {
    q_.sql.append(s);
    return *this;
  }
  Sql& text(std::string v) {
    q_.sql += '?';
    q_.params.emplace_back(std::move(v));
    return *this;
  }
  // PostgreSQL cannot always infer the type of a bare parameter (LIMIT, row values, CASE): the
  // numeric ones carry a cast there.
  Sql& integer(int64_t v) {
    q_.sql += d_ == SqlDialect::Postgres ? "CAST(? AS BIGINT)" : "?";
    q_.params.emplace_back(v);
    return *this;
  }
  Sql& real(double v) {
    q_.sql += d_ == SqlDialect::Postgres ? "CAST(? AS DOUBLE PRECISION)" : "?";
    q_.params.emplace_back(v);
    return *this;
  }
  Sql& value(const SqlValue& v) {
    if (const auto* i = std::get_if<int64_t>(&v)) return integer(*i);
    if (const auto* d = std::get_if<double>(&v)) return real(*d);
    if (const auto* s = std::get_if<std::string>(&v)) return text(*s);
    return *this << "NULL";
  }
  std::string alias(char prefix) { return prefix + std::to_string(++aliases_); }
  SqlDialect dialect() const { return d_; }
  SqlQuery take() { return std::move(q_); }

 private:
  SqlDialect d_;
  SqlQuery q_;
  int aliases_ = 0;
};

// --- value predicates --------------------------------------------------------------------------

// Starts-with on an indexed text column: a range, so the (type, param, column) index serves it.
void prefixRange(Sql& q, const std::string& col, const std::string& prefix) {
  q << col << " >= ";
  q.text(prefix);
  if (auto upper = prefixUpperBound(prefix)) {
    q << " AND " << col << " < ";
    q.text(*upper);
  }
}

// A date search value against an indexed range [lo, hi] (R4 search.html 3.1.1.4.2).
void dateRangePredicate(Sql& q, const Value& v, const std::string& lo, const std::string& hi) {
  switch (v.prefix) {
    case Prefix::Eq:
      q << lo << " >= ";
      q.integer(v.dlo) << " AND " << hi << " <= ";
      q.integer(v.dhi);
      break;
    case Prefix::Ne:
      q << "(" << lo << " < ";
      q.integer(v.dlo) << " OR " << hi << " > ";
      q.integer(v.dhi) << ")";
      break;
    case Prefix::Gt:
      q << hi << " > ";
      q.integer(v.dhi);
      break;
    case Prefix::Lt:
      q << lo << " < ";
      q.integer(v.dlo);
      break;
    case Prefix::Ge:  // above the value overlaps the target, or the value contains it
      q << "(" << hi << " > ";
      q.integer(v.dhi) << " OR (" << lo << " >= ";
      q.integer(v.dlo) << " AND " << hi << " <= ";
      q.integer(v.dhi) << "))";
      break;
    case Prefix::Le:
      q << "(" << lo << " < ";
      q.integer(v.dlo) << " OR (" << lo << " >= ";
      q.integer(v.dlo) << " AND " << hi << " <= ";
      q.integer(v.dhi) << "))";
      break;
    case Prefix::Sa:
      q << lo << " > ";
      q.integer(v.dhi);
      break;
    case Prefix::Eb:
      q << hi << " < ";
      q.integer(v.dlo);
      break;
    case Prefix::Ap:  // the range was widened when parsed: overlap
      q << lo << " <= ";
      q.integer(v.dhi) << " AND " << hi << " >= ";
      q.integer(v.dlo);
      break;
  }
}

// _lastUpdated: a point in time held as fixed-width UTC text, compared as text.
void lastUpdatedPredicate(Sql& q, const Value& v, const std::string& col) {
  const std::string lo = instantText(v.dlo), hi = instantText(v.dhi);
  switch (v.prefix) {
    case Prefix::Eq:
    case Prefix::Ap:
      q << col << " >= ";
      q.text(lo) << " AND " << col << " <= ";
      q.text(hi);
      break;
    case Prefix::Ne:
      q << "(" << col << " < ";
      q.text(lo) << " OR " << col << " > ";
      q.text(hi) << ")";
      break;
    case Prefix::Gt:
    case Prefix::Sa:
      q << col << " > ";
      q.text(hi);
      break;
    case Prefix::Lt:
    case Prefix::Eb:
      q << col << " < ";
      q.text(lo);
      break;
    case Prefix::Ge:
      q << col << " >= ";
      q.text(lo);
      break;
    case Prefix::Le:
      q << col << " <= ";
      q.text(hi);
      break;
  }
}

// Numbers: eq/ne use the precision of the search value ([lo, hi)); the others the value itself.
void numberPredicate(Sql& q, const Value& v, const std::string& col) {
  switch (v.prefix) {
    case Prefix::Eq:
      q << col << " >= ";
      q.real(v.lo) << " AND " << col << " < ";
      q.real(v.hi);
      break;
    case Prefix::Ne:
      q << "(" << col << " < ";
      q.real(v.lo) << " OR " << col << " >= ";
      q.real(v.hi) << ")";
      break;
    case Prefix::Gt:
    case Prefix::Sa:
      q << col << " > ";
      q.real(v.number);
      break;
    case Prefix::Lt:
    case Prefix::Eb:
      q << col << " < ";
      q.real(v.number);
      break;
    case Prefix::Ge:
      q << col << " >= ";
      q.real(v.number);
      break;
    case Prefix::Le:
      q << col << " <= ";
      q.real(v.number);
      break;
    case Prefix::Ap: {  // within 10% of the value (its precision range when the value is 0)
      const double d = std::fabs(v.number) / 10;
      q << col << " >= ";
      q.real(d > 0 ? v.number - d : v.lo) << " AND " << col << " <= ";
      q.real(d > 0 ? v.number + d : v.hi);
      break;
    }
  }
}

std::string likeContains(const std::string& s) {
  std::string out = "%";
  for (char c : s) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  out += '%';
  return out;
}

void valuePredicate(Sql& q, const Criterion& c, const Value& v, const std::string& a) {
  switch (c.table) {
    case IndexKind::String:
      if (c.modifier == "exact") {
        q << a << ".exact = ";
        q.text(v.text);
      } else if (c.modifier == "contains") {
        q << a << ".text LIKE ";
        q.text(likeContains(v.text)) << " ESCAPE '\\'";
      } else {
        prefixRange(q, a + ".text", v.text);
      }
      return;
    case IndexKind::Token:
      if (c.modifier == "text") {
        prefixRange(q, a + ".text", v.text);
      } else if (!v.hasSystem) {
        q << a << ".code = ";
        q.text(v.code);
      } else if (!v.hasCode) {
        q << a << ".system = ";
        q.text(v.system);
      } else {
        q << a << ".code = ";
        q.text(v.code) << " AND " << a << ".system = ";
        q.text(v.system);
      }
      return;
    case IndexKind::Date:
      dateRangePredicate(q, v, a + ".lo", a + ".hi");
      return;
    case IndexKind::Number:
      numberPredicate(q, v, a + ".value");
      return;
    case IndexKind::Quantity:
      if (v.hasSystem) {
        q << a << ".code = ";
        q.text(v.code) << " AND " << a << ".system = ";
        q.text(v.system) << " AND ";
      } else if (v.hasCode) {
        q << "(" << a << ".code = ";
        q.text(v.code) << " OR " << a << ".unit = ";
        q.text(v.code) << ") AND ";
      }
      numberPredicate(q, v, a + ".value");
      return;
    case IndexKind::Reference:
      if (v.isUrl) {
        // url <> '' names the condition of the partial url index (SQLite store, schema 10).
        q << a << ".url <> '' AND " << a << ".url = ";
        q.text(v.text);
      } else if (!v.refType.empty()) {
        q << a << ".target_type = ";
        q.text(v.refType) << " AND " << a << ".target_id = ";
        q.text(v.text);
      } else {
        // An id alone: any of the parameter's target types, listed so that an index led by
        // target_type serves it. PostgreSQL's value index (type, param, target_type, target_id)
        // serves a parameter that can point almost anywhere without the list; SQLite's only
        // index by target is search_reference_target (schema 11), led by target_type.
        if (!c.targets.empty() && (c.targets.size() <= 32 || q.dialect() == SqlDialect::Sqlite)) {
          q << a << ".target_type IN (";
          for (size_t i = 0; i < c.targets.size(); ++i) {
            if (i) q << ", ";
            q.text(c.targets[i]);
          }
          q << ") AND ";
        }
        q << a << ".target_id = ";
        q.text(v.text);
      }
      return;
    case IndexKind::Uri:
      if (c.modifier == "below") {
        prefixRange(q, a + ".value", v.text);
      } else if (c.modifier == "above") {
        // The indexed uri is a prefix of the search value: it sorts at or before it.
        const bool pg = q.dialect() == SqlDialect::Postgres;
        q << a << ".value <= ";
        q.text(v.text) << " AND substr(" << (pg ? "CAST(" : "");
        q.text(v.text) << (pg ? " AS TEXT)" : "") << ", 1, length(" << a << ".value)) = " << a << ".value";
      } else {
        q << a << ".value = ";
        q.text(v.text);
      }
      return;
  }
}

// --- criteria ----------------------------------------------------------------------------------
//
// A criterion tests the id of a resource in one of two ways:
//   set    idExpr IN (SELECT a.id FROM search_x a WHERE a.type = ? AND a.param = ? AND <values>)
//          The planner can drive the query from it (through the value index).
//   probe  EXISTS (SELECT 1 FROM search_x a WHERE a.type = ? AND a.id = idExpr AND a.param = ? ...)
//          Checked per candidate row through the (type, id) index.
// PostgreSQL turns both into semi-joins and picks the order from its statistics, so it gets sets.
// SQLite materialises every IN list in full, so a broad criterion (code=, date=ge...) next to a
// selective one (subject=) would cost as much as the broad one alone: there the most selective
// criterion (by a static ranking, selectivity()) is the set and the others are probes, with
// `+a.param` keeping SQLite on the (type, id) index for them. Negations (:not, :missing=true) are
// always probes (NOT EXISTS): the complement of a value set is usually most of the table.

struct Ctx {
  std::string idExpr;  // SQL naming the id under test
  bool live = true;    // idExpr only names live resources of the criterion's type
  std::string row;     // alias of the resource_current row idExpr belongs to ("" if none)
  bool probe = false;  // test per row rather than as a set
};

void condition(Sql& q, const Criterion& c, const Ctx& x);

// The value predicates of c's OR-values on alias a: " AND (p1 OR p2 ...)".
void valuesClause(Sql& q, const Criterion& c, const std::string& a) {
  if (c.values.empty()) return;
  q << " AND (";
  for (size_t i = 0; i < c.values.size(); ++i) {
    if (i) q << " OR ";
    q << "(";
    valuePredicate(q, c, c.values[i], a);
    q << ")";
  }
  q << ")";
}

// "a.param" for set lookups; for probes on SQLite "+a.param", which keeps the value index (whose
// leading columns are type, param) out of the running so the (type, id) index serves the probe.
std::string paramColumn(const Sql& q, const std::string& a, bool probe) {
  return (probe && q.dialect() == SqlDialect::Sqlite ? "+" : "") + a + ".param";
}

// The rows of search parameter `param` of `type` on alias a: "a.param = ?" for one stored under
// its own code; for one the index derives from others (derivedParam), "a.param IN (...)" over
// their codes, or "a.param = ? AND a.target_type = ?" for a reference restricted to a target type.
void paramTerm(Sql& q, const std::string& a, bool probe, std::string_view type, const std::string& param) {
  const std::string col = paramColumn(q, a, probe);
  const DerivedParam* d = derivedParam(type, param);
  if (d == nullptr) {
    q << col << " = ";
    q.text(param);
    return;
  }
  if (d->params.size() == 1) {
    q << col << " = ";
    q.text(d->params[0]);
  } else {
    q << col << " IN (";
    for (size_t i = 0; i < d->params.size(); ++i) {
      if (i) q << ", ";
      q.text(d->params[i]);
    }
    q << ")";
  }
  if (!d->targetType.empty()) {
    q << " AND " << a << ".target_type = ";
    q.text(d->targetType);
  }
}

// SELECT the ids of c.type's resources with an index row of c's parameter (matching its values
// when withValues).
void indexSet(Sql& q, const Criterion& c, bool withValues) {
  const std::string a = q.alias('s');
  q << "SELECT " << a << ".id FROM " << tableName(c.table) << " " << a << " WHERE " << a << ".type = ";
  q.text(c.type) << " AND ";
  paramTerm(q, a, false, c.type, c.param);
  if (withValues) valuesClause(q, c, a);
}

// EXISTS (an index row of c's parameter for the resource idExpr [matching its values]).
void indexProbe(Sql& q, const Criterion& c, const std::string& idExpr, bool withValues) {
  const std::string a = q.alias('s');
  q << "EXISTS (SELECT 1 FROM " << tableName(c.table) << " " << a << " WHERE " << a << ".type = ";
  q.text(c.type) << " AND " << a << ".id = " << idExpr << " AND ";
  paramTerm(q, a, true, c.type, c.param);
  if (withValues) valuesClause(q, c, a);
  q << ")";
}

// Resources of c.type with no matching index row. When idExpr may name resources that do not
// exist (a reference's target), it must also name a live resource of c.type.
void negation(Sql& q, const Criterion& c, const Ctx& x, bool withValues) {
  if (x.live) {
    q << "NOT ";
    indexProbe(q, c, x.idExpr, withValues);
    return;
  }
  const std::string r = q.alias('r');
  q << x.idExpr << " IN (SELECT " << r << ".id FROM resource_current " << r << " WHERE " << r << ".type = ";
  q.text(c.type) << " AND NOT " << r << ".deleted AND NOT ";
  indexProbe(q, c, r + ".id", withValues);
  q << ")";
}

// Conditions on resource_current columns, for an id that is not a resource_current row here.
template <class Pred>
void onCurrentRow(Sql& q, const Criterion& c, const std::string& idExpr, Pred&& pred) {
  const std::string r = q.alias('r');
  q << idExpr << " IN (SELECT " << r << ".id FROM resource_current " << r << " WHERE " << r << ".type = ";
  q.text(c.type) << " AND NOT " << r << ".deleted AND ";
  pred(r);
  q << ")";
}

// "idExpr IN (SELECT a.id FROM search_reference a WHERE a.type = ? AND " (set) or "EXISTS
// (SELECT 1 FROM search_reference a WHERE a.type = ? AND a.id = idExpr AND " (probe): the caller
// adds the parameter term and the rest, and closes with one ")".
void referenceRows(Sql& q, const Criterion& c, const Ctx& x, const std::string& a) {
  if (x.probe) {
    q << "EXISTS (SELECT 1 FROM search_reference " << a << " WHERE " << a << ".type = ";
    q.text(c.type) << " AND " << a << ".id = " << x.idExpr << " AND ";
  } else {
    q << x.idExpr << " IN (SELECT " << a << ".id FROM search_reference " << a << " WHERE " << a << ".type = ";
    q.text(c.type) << " AND ";
  }
}

void condition(Sql& q, const Criterion& c, const Ctx& x) {
  switch (c.kind) {
    case CritKind::Index:
    case CritKind::Missing: {
      const bool withValues = c.kind == CritKind::Index;
      if (c.negate) {
        negation(q, c, x, withValues);
      } else if (x.probe) {
        indexProbe(q, c, x.idExpr, withValues);
      } else {
        q << x.idExpr << " IN (";
        indexSet(q, c, withValues);
        q << ")";
      }
      return;
    }
    case CritKind::Id: {
      auto list = [&](const std::string& col) {
        q << col << " IN (";
        for (size_t i = 0; i < c.values.size(); ++i) {
          if (i) q << ", ";
          q.text(c.values[i].text);
        }
        q << ")";
      };
      if (x.live) {
        list(x.idExpr);
      } else {
        onCurrentRow(q, c, x.idExpr, [&](const std::string& r) { list(r + ".id"); });
      }
      return;
    }
    case CritKind::LastUpdated: {
      auto preds = [&](const std::string& r) {
        q << "(";
        for (size_t i = 0; i < c.values.size(); ++i) {
          if (i) q << " OR ";
          q << "(";
          lastUpdatedPredicate(q, c.values[i], r + ".last_updated");
          q << ")";
        }
        q << ")";
      };
      // On the outer row when it is a probe (or a search across all types); as a set otherwise,
      // which lets the planner drive it from the (type, last_updated) index instead of walking
      // the type's rows in page order.
      if (!x.row.empty() && (x.probe || c.type.empty())) {
        preds(x.row);
      } else {
        onCurrentRow(q, c, x.idExpr, preds);
      }
      return;
    }
    case CritKind::Chain: {
      const std::string a = q.alias('s');
      referenceRows(q, c, x, a);
      paramTerm(q, a, x.probe, c.type, c.param);
      q << " AND (";
      for (size_t i = 0; i < c.inner.size(); ++i) {
        if (i) q << " OR ";
        q << "(" << a << ".target_type = ";
        q.text(c.inner[i].type) << " AND ";
        condition(q, c.inner[i], Ctx{a + ".target_id", false, "", false});
        q << ")";
      }
      q << "))";
      return;
    }
    case CritKind::Has: {
      const std::string a = q.alias('s');
      if (x.probe) {
        q << "EXISTS (SELECT 1 FROM search_reference " << a << " WHERE " << a << ".target_type = ";
        q.text(c.type) << " AND " << a << ".target_id = " << x.idExpr << " AND " << a << ".type = ";
      } else {
        q << x.idExpr << " IN (SELECT " << a << ".target_id FROM search_reference " << a << " WHERE " << a
          << ".target_type = ";
        q.text(c.type) << " AND " << a << ".type = ";
      }
      q.text(c.hasType) << " AND ";
      paramTerm(q, a, false, c.hasType, c.param);
      q << " AND ";
      condition(q, c.inner.at(0), Ctx{a + ".id", true, "", false});
      q << ")";
      return;
    }
    case CritKind::Compartment: {
      const bool owner = c.type == c.compartmentType;
      q << "(";
      if (!c.params.empty()) {
        const std::string a = q.alias('s');
        referenceRows(q, c, x, a);
        q << paramColumn(q, a, x.probe) << " IN (";
        for (size_t i = 0; i < c.params.size(); ++i) {
          if (i) q << ", ";
          q.text(c.params[i]);
        }
        q << ") AND " << a << ".target_type = ";
        q.text(c.compartmentType) << " AND " << a << ".target_id = ";
        q.text(c.compartmentId) << ")";
        if (owner) q << " OR ";
      }
      if (owner) {
        q << x.idExpr << " = ";
        q.text(c.compartmentId);
      }
      if (c.params.empty() && !owner) q << "1 = 0";
      q << ")";
      return;
    }
  }
}

// A static guess at how few resources a criterion selects (lower: fewer), for choosing SQLite's
// driving set: ids first, then exact identifiers and references, then other values, ranges,
// presence; negations never drive.
int selectivity(const Criterion& c) {
  switch (c.kind) {
    case CritKind::Id: return 0;
    case CritKind::Compartment: return 1;
    case CritKind::Chain:
    case CritKind::Has: return 3;
    case CritKind::LastUpdated: return 5;
    case CritKind::Missing: return c.negate ? 9 : 6;
    case CritKind::Index: break;
  }
  if (c.negate) return 9;
  bool exact = true;
  for (const Value& v : c.values) {
    switch (c.table) {
      case IndexKind::Token: exact = exact && c.modifier != "text" && v.hasSystem && v.hasCode; break;
      case IndexKind::Reference: exact = exact && (v.isUrl || !v.refType.empty()); break;
      case IndexKind::String: exact = exact && c.modifier == "exact"; break;
      case IndexKind::Uri: exact = exact && c.modifier.empty(); break;
      default: exact = false;
    }
  }
  if (exact) return 1;
  switch (c.table) {
    case IndexKind::Token:
      return c.modifier == "text" ? 4 : 2;
    case IndexKind::Reference:
      return 2;
    case IndexKind::String:
      return c.modifier == "contains" ? 4 : 2;
    default:
      return 4;  // dates, numbers, quantities, uri prefixes
  }
}

// --- the page query ----------------------------------------------------------------------------

const char* sortColumnType(IndexKind k) {
  switch (k) {
    case IndexKind::Date: return "BIGINT";
    case IndexKind::Number:
    case IndexKind::Quantity: return "DOUBLE PRECISION";
    default: return "TEXT";
  }
}

std::optional<IndexKind> anyTable(const SortKey& k) {
  for (const auto& t : k.tables)
    if (t) return t;
  return std::nullopt;
}

// The value a resource sorts by: the smallest of its values ascending, the largest descending.
void sortExpr(Sql& q, const SortKey& k, size_t branch, const std::string& type) {
  if (k.kind == SortKind::Id) {
    q << "c.id";
    return;
  }
  if (k.kind == SortKind::LastUpdated) {
    q << "c.last_updated";
    return;
  }
  const std::optional<IndexKind> table = branch < k.tables.size() ? k.tables[branch] : std::nullopt;
  if (!table) {
    q << "CAST(NULL AS " << sortColumnType(anyTable(k).value_or(IndexKind::String)) << ")";
    return;
  }
  const std::string a = q.alias('o');
  std::string col;
  switch (*table) {
    case IndexKind::String: col = a + ".text"; break;
    case IndexKind::Token: col = a + ".code"; break;
    case IndexKind::Date: col = k.desc ? a + ".hi" : a + ".lo"; break;
    case IndexKind::Number:
    case IndexKind::Quantity:
    case IndexKind::Uri: col = a + ".value"; break;
    case IndexKind::Reference:
      col = "CASE WHEN " + a + ".target_id = '' THEN " + a + ".url ELSE " + a + ".target_type || '/' || " + a +
            ".target_id END";
      break;
  }
  q << "(SELECT " << (k.desc ? "MAX(" : "MIN(") << col << ") FROM " << tableName(*table) << " " << a << " WHERE " << a
    << ".type = ";
  q.text(type) << " AND " << a << ".id = c.id AND ";
  paramTerm(q, a, false, type, k.name);
  q << ")";
}

void branchSelect(Sql& q, const ParsedSearch& s, size_t bi, bool withSort) {
  const Branch& b = s.branches[bi];
  q << "SELECT c.type AS type, c.id AS id, c.seq AS seq";
  if (withSort) {
    for (size_t k = 0; k < s.sort.size(); ++k) {
      q << ", ";
      sortExpr(q, s.sort[k], bi, b.type);
      q << " AS s" << std::to_string(k);
    }
  }
  q << " FROM resource_current c WHERE ";
  if (!b.type.empty()) {
    q << "c.type = ";
    q.text(b.type) << " AND ";
  }
  q << "NOT c.deleted";
  // SQLite: one driving set, the rest probes (see condition()); PostgreSQL: sets throughout.
  size_t driver = b.criteria.size();
  if (q.dialect() == SqlDialect::Sqlite) {
    int best = 9;
    for (size_t i = 0; i < b.criteria.size(); ++i) {
      const int rank = selectivity(b.criteria[i]);
      if (rank < best) {
        best = rank;
        driver = i;
      }
    }
  }
  for (size_t i = 0; i < b.criteria.size(); ++i) {
    q << " AND ";
    const bool probe = q.dialect() == SqlDialect::Sqlite && i != driver;
    condition(q, b.criteria[i], Ctx{"c.id", true, "c", probe});
  }
}

void unionOfBranches(Sql& q, const ParsedSearch& s, bool withSort) {
  for (size_t i = 0; i < s.branches.size(); ++i) {
    if (i) q << " UNION ALL ";
    branchSelect(q, s, i, withSort);
  }
}

bool singleTyped(const ParsedSearch& s) { return s.branches.size() == 1 && !s.branches[0].type.empty(); }

// The rows after the cursor in the page order: keys from `i` on, then type and id.
void afterCursor(Sql& q, const ParsedSearch& s, const Cursor& cur, size_t i) {
  if (i == s.sort.size()) {
    if (singleTyped(s)) {
      q << "u.id > ";
      q.text(cur.id);
    } else {
      q << "(u.type > ";
      q.text(cur.type) << " OR (u.type = ";
      q.text(cur.type) << " AND u.id > ";
      q.text(cur.id) << "))";
    }
    return;
  }
  const SortKey& k = s.sort[i];
  const std::string col = "u.s" + std::to_string(i);
  const bool nullable = k.kind == SortKind::Index;
  const SqlValue& cv = cur.keys.at(i);
  if (std::holds_alternative<std::monostate>(cv)) {
    // In the trailing group of missing values: only ties on this key remain.
    q << "(" << col << " IS NULL AND ";
    afterCursor(q, s, cur, i + 1);
    q << ")";
    return;
  }
  q << "(" << col << (k.desc ? " < " : " > ");
  q.value(cv);
  if (nullable) q << " OR " << col << " IS NULL";
  q << " OR (" << col << " = ";
  q.value(cv) << " AND ";
  afterCursor(q, s, cur, i + 1);
  q << "))";
}

}  // namespace

std::string instantText(int64_t us) {
  constexpr int64_t kMin = -62135596800LL * 1'000'000;  // 0001-01-01T00:00:00Z
  constexpr int64_t kMax = 253402300799999999LL;        // 9999-12-31T23:59:59.999999Z
  us = std::clamp(us, kMin, kMax);
  int64_t ms = us >= 0 ? us / 1000 : -((-us + 999) / 1000);
  int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  const int millis = static_cast<int>(ms - secs * 1000);
  int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
  const int64_t sod = secs - days * 86400;
  // civil from days
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp + (mp < 10 ? 3 : -9);
  y += m <= 2;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<long long>(y), m, d,
                static_cast<int>(sod / 3600), static_cast<int>(sod / 60 % 60), static_cast<int>(sod % 60), millis);
  return buf;
}

SqlQuery buildPageQuery(const ParsedSearch& s, SqlDialect dialect) {
  Sql q(dialect);
  q << "SELECT u.type, u.id, v.content";
  for (size_t k = 0; k < s.sort.size(); ++k) q << ", u.s" << std::to_string(k);
  q << " FROM (";
  unionOfBranches(q, s, true);
  q << ") u JOIN resource_version v ON v.seq = u.seq";
  if (s.cursor) {
    q << " WHERE ";
    afterCursor(q, s, *s.cursor, 0);
  }
  q << " ORDER BY ";
  for (size_t k = 0; k < s.sort.size(); ++k) {
    q << "u.s" << std::to_string(k) << (s.sort[k].desc ? " DESC" : " ASC");
    if (s.sort[k].kind == SortKind::Index) q << " NULLS LAST";
    q << ", ";
  }
  q << (singleTyped(s) ? "u.id" : "u.type, u.id") << " LIMIT ";
  q.integer(static_cast<int64_t>(s.count) + 1);
  return q.take();
}

SqlQuery buildCountQuery(const ParsedSearch& s, SqlDialect dialect) {
  Sql q(dialect);
  q << "SELECT COUNT(*) FROM (";
  unionOfBranches(q, s, false);
  q << ") u";
  return q.take();
}

std::optional<SqlQuery> buildMatchIdsFastQuery(const ParsedSearch& s, SqlDialect dialect, int cap) {
  if (!singleTyped(s) || s.branches[0].criteria.size() != 1) return std::nullopt;
  const Criterion& c = s.branches[0].criteria[0];
  if (c.kind != CritKind::Index || c.negate || c.values.empty()) return std::nullopt;
  Sql q(dialect);
  const std::string a = q.alias('s');
  q << "SELECT " << a << ".id FROM " << tableName(c.table) << " " << a << " WHERE " << a << ".type = ";
  q.text(c.type) << " AND ";
  paramTerm(q, a, false, c.type, c.param);
  valuesClause(q, c, a);
  q << " LIMIT ";
  q.integer(cap);
  return q.take();
}

SqlQuery buildMatchIdsQuery(const ParsedSearch& s, SqlDialect dialect, int limit) {
  Sql q(dialect);
  q << "SELECT u.id FROM (";
  unionOfBranches(q, s, false);
  q << ") u ORDER BY u.id LIMIT ";
  q.integer(limit);
  return q.take();
}

}  // namespace hearth::fhir::searchq
