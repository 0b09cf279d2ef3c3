#pragma once
// Private to hearth_fhir: the two halves of SearchEngine that do not touch HTTP or the store.
//
//   parseSearch()  turns decoded name=value pairs into a ParsedSearch: criteria per resource type
//                  (values already split, unescaped, normalised and range-converted), sort keys,
//                  page size, cursor, result parameters, and the parameters that were ignored.
//   buildPageQuery() / buildCountQuery() / buildMatchIdsQuery()
//                  turn a ParsedSearch into SQL over the logical schema of store_migrations.cpp
//                  (version 3) for either dialect.
//
// Every criterion becomes a membership test on the id of the resource it filters
// (`c.id IN (SELECT id FROM search_token WHERE type = ? AND param = ? AND ...)`), so criteria
// compose: chains nest the test on search_reference.target_id, _has on search_reference.id.
// Value predicates are ranges on the indexed columns (never LIKE for prefixes), so both SQLite and
// PostgreSQL can use the (type, param, value) indexes.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/fhir/error.h"
#include "hearth/fhir/model.h"
#include "hearth/fhir/search.h"
#include "hearth/fhir/search_index.h"
#include "hearth/fhir/store.h"
#include "search_results.h"

namespace hearth::fhir::searchq {

// Bounds on what one request may ask for (hostile input -> 400 with a clear message).
struct Limits {
  size_t maxParams = 50;        // name=value pairs per request
  size_t maxChainDepth = 4;     // chain links plus _has levels in one parameter (a.b.c.d.e: 4)
  size_t maxOrValues = 100;     // comma-separated alternatives of one parameter
  size_t maxValueLength = 1024; // bytes of one value (the _cursor may be up to 8 times that)
  size_t maxNameLength = 256;   // bytes of one parameter name (chains included)
  size_t maxSortKeys = 5;
};

enum class Prefix : uint8_t { Eq, Ne, Gt, Lt, Ge, Le, Sa, Eb, Ap };

// One OR-alternative of a criterion, decoded for the parameter's kind. Only the fields of that
// kind are meaningful.
struct Value {
  Prefix prefix = Prefix::Eq;
  // string: normalised text (default, :contains, :text on tokens) or the exact value (:exact);
  // uri: the uri; token: code; reference: target id or url.
  std::string text;
  // token / quantity: system|code. hasSystem: a '|' was present (|code means "no system").
  std::string system;
  std::string code;
  bool hasSystem = false;
  bool hasCode = true;
  // number / quantity: the value and the range its precision implies ([lo, hi) for eq).
  double number = 0;
  double lo = 0;
  double hi = 0;
  // date: the inclusive instant range the value covers, epoch microseconds UTC.
  int64_t dlo = 0;
  int64_t dhi = 0;
  // reference: a local target (type may be empty: any of the parameter's target types), or an
  // absolute / canonical url (isUrl).
  std::string refType;
  bool isUrl = false;
};

enum class CritKind : uint8_t {
  Index,        // value predicates on an index table (positive set, or its complement for :not)
  Missing,      // :missing=true/false
  Id,           // _id
  LastUpdated,  // _lastUpdated
  Chain,        // a reference parameter followed to criteria on the target types
  Has,          // _has: resources referenced by resources of hasType that match the inner criterion
  Compartment,  // membership in a compartment (compartment searches)
};

struct Criterion {
  CritKind kind = CritKind::Index;
  std::string type;     // the resource type whose ids this criterion selects
  std::string param;    // parameter code ("family"), or the index param ("identifier:of-type")
  std::string name;     // the parameter as written, for messages and issue.expression
  IndexKind table = IndexKind::String;
  std::string paramType;  // string token date number quantity reference uri
  std::string modifier;   // "", exact contains not text of-type identifier below above, or a type
  bool negate = false;    // :not (Index), :missing=true (Missing)
  std::vector<Value> values;  // OR
  // Chain: `param` is the reference parameter of `type`; one inner criterion per target type
  // followed (inner[i].type). Has: hasParam is the reference parameter of hasType, and inner[0]
  // applies to hasType. Compartment: `params` reference compartmentType/compartmentId; the
  // compartment owner itself matches too when type == compartmentType.
  std::vector<Criterion> inner;
  std::string hasType;
  std::vector<std::string> params;
  std::vector<std::string> targets;  // reference parameters: the parameter's target types
  std::string compartmentType;
  std::string compartmentId;
};

// The criteria of one resource type (all ANDed). An empty type (system search without _type)
// ranges over every type and carries only _id / _lastUpdated criteria.
struct Branch {
  std::string type;
  std::vector<Criterion> criteria;
};

enum class SortKind : uint8_t { Id, LastUpdated, Index };
struct SortKey {
  std::string name;  // as written, without '-'
  bool desc = false;
  SortKind kind = SortKind::Id;
  // Index keys: per branch (same order as ParsedSearch::branches), the index table of the
  // parameter for that type, or nullopt when the type has no such parameter (sorts as missing).
  std::vector<std::optional<IndexKind>> tables;
};

// The position after the last row of the previous page.
struct Cursor {
  std::vector<SqlValue> keys;  // one per sort key
  std::string type;
  std::string id;
};

struct ParsedSearch {
  std::vector<Branch> branches;
  std::vector<SortKey> sort;
  int count = 20;
  std::string total;      // "", none, estimate, accurate
  std::string summary;    // "", true, text, data, count, false
  std::string elements;   // raw _elements value
  std::vector<searchimpl::IncludeSpec> includes;
  std::vector<searchimpl::IncludeSpec> revincludes;
  std::optional<Cursor> cursor;
  // The parameters the links repeat: every processed one, without _cursor and without ignored ones.
  SearchParams linkParams;
  // Hash of what a cursor depends on (types, criteria, sort): a cursor minted for other criteria
  // is refused.
  uint64_t fingerprint = 0;
  std::vector<Issue> warnings;  // ignored parameters (search.mode outcome)
  bool resultParamsGiven = false;  // any of _sort _count _include ... (refused by matchIds)
};

struct ParseOptions {
  std::vector<std::string> types;  // the types searched; empty + systemLevel: from _type
  bool systemLevel = false;
  std::string compartmentType;     // compartment searches
  std::string compartmentId;
  bool strict = false;
  bool criteriaOnly = false;       // matchIds: result parameters and unknown parameters -> 400
  std::string baseUrl;             // absolute references to this server are local
  int defaultCount = 20;
  int maxCount = 1000;
  Limits limits;
};

ParsedSearch parseSearch(const Model& model, const SearchParams& params, const ParseOptions& options);

// The SQL of one page: columns type, id, content, then one column per sort key; at most
// count + 1 rows (the extra row says there is a next page).
SqlQuery buildPageQuery(const ParsedSearch& s, SqlDialect dialect);
// SELECT COUNT(*) of every match (no paging).
SqlQuery buildCountQuery(const ParsedSearch& s, SqlDialect dialect);
// SELECT c.id of the first `limit` matches of a single-type search, by id.
SqlQuery buildMatchIdsQuery(const ParsedSearch& s, SqlDialect dialect, int limit);
// The common conditional criterion (one positive index parameter of one type, e.g.
// identifier=system|value) read straight from its index table, with neither the resource_current
// join nor DISTINCT/ORDER BY (each costs SQLite a temporary B-tree per write): index rows exist for
// current, non-deleted resources only, so the ids it returns, de-duplicated, are the matches,
// provided fewer than `cap` rows came back (else run buildMatchIdsQuery). nullopt: not that shape.
std::optional<SqlQuery> buildMatchIdsFastQuery(const ParsedSearch& s, SqlDialect dialect, int cap);

// Cursor tokens (base64url): the sort values of the last row plus its type and id, bound to the
// search's fingerprint by a checksum. decodeCursor throws FhirError 400 on anything malformed,
// tampered with, or minted for another search.
std::string encodeCursor(const Cursor& c, uint64_t fingerprint);
Cursor decodeCursor(std::string_view token, uint64_t fingerprint, size_t nkeys);

// Helpers exposed for unit tests.
// Epoch microseconds as the text resource_current.last_updated holds ("2024-01-31T12:00:00.123Z"),
// truncated to the millisecond; years are clamped to 0001..9999.
std::string instantText(int64_t epochMicros);
// The smallest string greater than every string that starts with `prefix` (byte order = code
// point order for UTF-8); nullopt if there is none (empty prefix, or only U+10FFFF).
std::optional<std::string> prefixUpperBound(std::string_view prefix);
// Splits on `sep` not preceded by a backslash; the pieces keep their escapes.
std::vector<std::string> splitEscaped(std::string_view s, char sep);
// Removes the search escapes \, \| \$ \\ .
std::string unescapeValue(std::string_view s);
// Percent-encodes a query component for links (unreserved characters kept).
std::string encodeQueryComponent(std::string_view s);

}  // namespace hearth::fhir::searchq
