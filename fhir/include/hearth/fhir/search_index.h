#pragma once
// Search indexing: the rows a resource contributes to the search tables, extracted at write time
// by evaluating every R4 SearchParameter of its type (Model::searchParams) with our FHIRPath engine.
//
// The store keeps one table per kind (see store_migrations.cpp, schema version 3), each keyed by
// (type, id, param); the rows of a resource are replaced as a whole with every write of it, in the
// same database transaction (StoreTransaction::replaceIndex), and removed when it is deleted.
//
// What each kind stores (fields not listed stay empty / 0):
//   String     text  = normalizeSearchString(value)   (starts-with / contains / default search)
//              exact = the value as written            (:exact)
//              From string, markdown, HumanName (family, given, prefix, suffix, text: one row
//              each), Address (line, city, district, state, postalCode, country, text: one row
//              each), and other complex types: one row per string-like leaf.
//   Token      system, code; text = normalizeSearchString(display / CodeableConcept.text /
//              Identifier.type.text ...) for :text.
//              From code/Coding/CodeableConcept (each coding, text = its display; the
//              CodeableConcept.text, when present and not the text of a row the parameter has
//              already (a coding's display, as normalized), adds a row with empty system and code
//              and that text, so a text-only CodeableConcept has just that row), Identifier (system, value,
//              text = type.text; plus, for :of-type, a
//              second row with param "<code>:of-type" whose system = type coding system and
//              code = "<type code>|<value>"), ContactPoint (system = ContactPoint.system, code =
//              value), boolean ("true"/"false"), id/string/uri used as tokens (code = value).
//   Date       lo, hi: the instant range the value covers, epoch microseconds UTC, both inclusive
//              (a date 2020-03 covers 2020-03-01T00:00:00 .. 2020-03-31T23:59:59.999999; a
//              dateTime without offset is taken as UTC). From date, dateTime, instant, Period
//              (open ends are INT64_MIN / INT64_MAX; no row when both are absent), Timing (one
//              row per event, and its repeat.boundsPeriod).
//   Number     value.
//   Quantity   value; system and code (the UCUM code when given); unit = Quantity.unit.
//              From Quantity, Age, Duration, Count, Distance, Money (code = currency, system =
//              "urn:iso:std:iso:4217"), and plain numbers (value only). Range and SampledData are
//              not indexed, nor a quantity without a value.
//   Reference  refType + refId for a reference to a resource by type and id (relative "Patient/1",
//              or absolute with this server's or another base: refType/refId are taken from the
//              last two path segments, _history stripped; refType must be a resource type and
//              refId a valid id, else both stay empty) and url = the reference as written
//              (relative, absolute URL, urn:uuid: ...); contained references ("#x") are not
//              indexed. Reference.identifier adds a Token row with param "<code>:identifier"
//              (system, code = value). canonical and uri values of reference parameters are
//              Reference rows with url only (canonicals without their |version). Resources
//              (Bundle.composition / Bundle.message: the first entry) give no row.
//   Uri        text = the uri as written.
// Composite parameters are not indexed (not supported in searches yet). Derived parameters
// (derivedParam below) have no rows of their own.
#include <rapidjson/document.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/fhir/model.h"

namespace hearth::fhir {

enum class IndexKind : uint8_t { String = 0, Token, Date, Number, Quantity, Reference, Uri };

struct IndexRow {
  IndexKind kind = IndexKind::String;
  std::string param;  // search parameter code, e.g. "family"; "identifier:of-type", "subject:identifier"
  std::string system;
  std::string code;
  std::string text;
  std::string exact;
  std::string unit;
  std::string refType;
  std::string refId;
  std::string url;
  int64_t lo = 0;
  int64_t hi = 0;
  double value = 0;
  bool operator==(const IndexRow&) const = default;
};

// Extracts index rows. Built once (parses every expression of every type), then immutable and
// safe to use from any number of threads.
class SearchIndexer {
 public:
  // derivedRows: also produce the rows of derived parameters (derivedParam) under their own
  // codes, as stores did before; for checking the derivation against the definitions.
  explicit SearchIndexer(const Model& model, bool derivedRows = false);
  ~SearchIndexer();
  SearchIndexer(const SearchIndexer&) = delete;
  SearchIndexer& operator=(const SearchIndexer&) = delete;

  // The rows of `resource` (a parsed, valid resource of `type`). Duplicate rows are dropped.
  // Never throws for valid resources: a parameter whose expression fails to evaluate on this
  // resource contributes no rows. `_id` and `_lastUpdated` are not rows (the store answers them
  // from resource_current).
  std::vector<IndexRow> extract(std::string_view type, const rapidjson::Value& resource) const;

  // The index kind a search parameter type stores ("string" -> String ...); false for
  // composite and special.
  static bool kindOf(std::string_view searchParamType, IndexKind& kind);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Parameters the index does not store under their own code, because R4 defines their values as
// those of other parameters of the same resource type, found from the definitions themselves
// (R4 has ~30 such pairs, most rows of a clinical database among them):
//   union   the expression is the union of other parameters' expressions: Observation combo-code
//           = code | component-code, combo-value-quantity = value-quantity |
//           component-value-quantity. Searches read the rows of all of `params` ("P:of-type" and
//           "P:identifier" likewise read those of each part).
//   filter  a reference parameter defined as another one restricted to a target type: patient =
//           subject.where(resolve() is Patient) (Observation, Encounter, DiagnosticReport ...),
//           Appointment practitioner = actor.where(resolve() is Practitioner). Searches read the
//           one parameter in `params` with target_type = `targetType`. The identifiers of such
//           references are still stored under "P:identifier" (they carry no target type).
// A store written before this kept rows under the derived codes too: they are never read, and go
// with the resource's next write (or a reindex).
struct DerivedParam {
  std::vector<std::string> params;  // stored parameter codes whose rows make up this one
  std::string targetType;           // filter: the target type the rows must name; "" for a union
};

// How `code` of resource type `type` is stored; nullptr when under its own code (most
// parameters). Codes with a modifier suffix (":of-type", ":identifier") are looked up as such.
// Built once from Model::r4() on first use; thread-safe.
const DerivedParam* derivedParam(std::string_view type, std::string_view code);

// True when an index row of `type` (its param and, for references, target type) belongs to
// search parameter `code`: its own rows, or the rows `code` is derived from.
bool rowOfParam(std::string_view type, std::string_view code, std::string_view rowParam,
                std::string_view rowTargetType);

// The form strings are indexed and searched in: Unicode letters folded to lower case and stripped
// of accents (Latin-1 Supplement and Latin Extended-A at least: "Müller" -> "muller",
// "ÉLODIE" -> "elodie", "Straße" -> "strasse"), runs of whitespace collapsed to one space,
// leading/trailing whitespace removed. Bytes that are not valid UTF-8 are dropped. Also: combining
// accents (U+0300..U+036F, decomposed input) are dropped, a few Latin Extended-B letters folded
// (Romanian ș ț, Vietnamese ơ ư, Pinyin ǎ ǐ ǒ ǔ ǖ ...), Greek and Cyrillic capitals lower-cased;
// other characters are kept as written. Whitespace: ASCII blanks and control characters, NBSP
// and the Unicode space separators.
std::string normalizeSearchString(std::string_view s);

// The instant range [lo, hi] (epoch microseconds UTC, inclusive) covered by a FHIR date, dateTime
// or instant at the precision written ("2020" -> the whole year). A value without a time-zone
// offset is taken as UTC. Accepted: YYYY, YYYY-MM, YYYY-MM-DD, YYYY-MM-DDThh:mm, ...Thh:mm:ss and
// ...Thh:mm:ss.f+ (a fraction of n digits covers 10^-n s; finer than 1 µs is ignored), each time
// optionally followed by Z or ±hh:mm (up to 14:00). False if `text` is not such a value or names
// a day that does not exist (2021-02-29).
bool fhirDateRange(std::string_view text, int64_t& lo, int64_t& hi);

}  // namespace hearth::fhir
