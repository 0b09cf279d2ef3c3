#pragma once
// SearchEngine: FHIR R4 search over the search-index tables (search_index.h), independent of HTTP.
//
// Parses search parameters against the R4 definitions (Model::searchParams), builds one SQL query
// per search over the logical schema (store_migrations.cpp) for either dialect, runs it through
// ResourceStore::query (or StoreTransaction::query inside a write), and assembles searchset
// Bundles from the stored resource bytes.
//
// Supported (R4 search.html): string (default starts-with, :exact, :contains), token (system|code,
// |code, system|, :not, :text, :of-type, :missing), date with prefixes eq ne gt lt ge le sa eb ap,
// number and quantity with prefixes (quantity value|system|code), reference (Type/id, id, absolute
// URL, :[type], :identifier), uri (:below, :above), :missing for every kind; OR with commas, AND
// with repeated parameters; chains (a.b.c=) and reverse chains (_has); _id, _lastUpdated, _tag,
// _profile, _security; _include / _revinclude (with :iterate, and *); _sort (several keys, -desc);
// _count with keyset paging (links carry an opaque _cursor so pages stay stable under concurrent
// writes); _summary (true/text/data/count/false), _elements; _total (none/estimate/accurate);
// compartment searches; Patient/$everything.
//
// Errors are FhirError: 400 for malformed values, unknown parameters under strict handling, and
// parameters this server cannot process; 404 for unknown types.
//
// Choices where R4 leaves room:
//   - Unknown parameters, and known ones this server cannot process (composite and special
//     parameters, _text, _content, _contained ...), are ignored under lenient handling: they are left
//     out of the links and listed as warnings in an OperationOutcome entry (search.mode outcome).
//     Malformed values, unknown prefixes and modifiers, and known but unsupported modifiers (token
//     :in/:not-in/:above/:below) are 400 whatever the handling, with the parameter in
//     issue.expression.
//   - ap on dates: the value's range widened by 10% of the gap between it and now, at least one
//     day each way; a target matches when its range overlaps that. ap on numbers and quantities:
//     within 10% of the value.
//   - eq on numbers uses the precision of the search value (100 means [99.5, 100.5), 1e2 means
//     [50, 150)); the other prefixes compare with the value itself.
//   - Paging is keyset paging: links carry an opaque _cursor (the sort values, type and id of the
//     page's last row, with a checksum binding it to the search); a resource that existed when a
//     walk began and whose sort values do not change is seen exactly once however the data changes
//     meanwhile. There is no `previous` link; `first` restarts the walk. Tampered cursors, or
//     cursors of another search, are 400.
//   - Bundle.total: given with _total=accurate (and _total=estimate, answered with the same exact
//     count), _summary=count and _count=0, and on a first page that holds every match; otherwise left
//     out.
//   - _sort on a parameter sorts by the resource's smallest value ascending and its largest
//     descending (dates: start / end of the ranges); resources without a value come last either way.
//     Ties end by type and id; the default order is by id.
//   - Hostile input: at most 50 parameters, names of 256 bytes, values of 1024 bytes, 100
//     comma-separated values, 4 chain / _has levels, 5 sort keys; beyond that 400 (too-costly).
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hearth/fhir/error.h"
#include "hearth/fhir/model.h"
#include "hearth/fhir/store.h"

namespace hearth::fhir {

class ResourceService;

using SearchParams = std::vector<std::pair<std::string, std::string>>;  // decoded name=value, in order

// Splits an application/x-www-form-urlencoded string ("a=1&b=x%7Cy") into decoded pairs.
// Throws FhirError 400 on malformed percent-escapes.
SearchParams parseSearchQuery(std::string_view query);

struct SearchRequest {
  std::string type;  // resource type; empty for a system-level search (GET /fhir?_type=...)
  // Compartment search (GET /fhir/Patient/123/Observation): the compartment type and id; `type`
  // is then the resource type searched within it ("*" for every type of the compartment).
  std::string compartmentType;
  std::string compartmentId;
  SearchParams params;
  bool strict = false;   // Prefer: handling=strict: unknown or unsupported parameters -> 400
  std::string baseUrl;   // e.g. "http://127.0.0.1:8080/fhir": fullUrls and links
  // The path the links repeat, relative to baseUrl ("Patient", "Patient/123/Observation", "").
  std::string linkPath;
  int defaultCount = 20;
  int maxCount = 1000;
};

// The R4 Patient compartment (CompartmentDefinition patient): the search parameters by which a
// resource of `resourceType` belongs to a patient's compartment (reference parameters pointing at
// the Patient); empty when the type is not in the compartment. "Patient" itself gives {"link"}
// (the patient resource also belongs by its own id). Used by access control (server) to confine
// patient-context tokens.
const std::vector<std::string>& patientCompartmentParams(std::string_view resourceType);

class SearchEngine {
 public:
  SearchEngine(ResourceService& service);
  ~SearchEngine();
  SearchEngine(const SearchEngine&) = delete;
  SearchEngine& operator=(const SearchEngine&) = delete;

  // A searchset Bundle (compact JSON) for the request: matches with search.mode "match",
  // _include/_revinclude results with "include", and an OperationOutcome entry (mode "outcome")
  // listing ignored parameters when there are any.
  std::string search(const SearchRequest& req);

  // GET Patient/[id]/$everything (and other compartment owners that define one): the patient and
  // every resource in its compartment, plus resources those reference that the compartment does not
  // hold (Practitioner, Organization, Medication ...). Params: _since, _type, _count (paging).
  // 404 if the patient does not exist.
  std::string everything(std::string_view type, std::string_view id, const SearchParams& params,
                         const std::string& baseUrl);

  // Ids of current resources of `type` that match `criteria` (a query string such as
  // "identifier=http://x|123&active=true"), at most `limit` of them. Used by conditional create,
  // update, delete and conditional references; runs in `tx` when given (sees its writes). Result
  // parameters (_sort, _count, _include ...) are not allowed here (400). Unknown parameters -> 400.
  std::vector<std::string> matchIds(std::string_view type, std::string_view criteria,
                                    StoreTransaction* tx, int limit);

  // _summary / _elements applied to one resource (also used on read): `summary` is
  // "true" | "text" | "data" | "false" (empty = not given); `elements` the comma-separated
  // _elements value (empty = not given). Returns the resource JSON to send, with the SUBSETTED tag
  // in meta.tag when something was left out. 400 for an invalid _summary value.
  std::string applySummary(std::string_view type, std::string_view resourceJson, std::string_view summary,
                           std::string_view elements) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::fhir
