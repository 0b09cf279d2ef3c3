#pragma once
// Private to hearth_fhir: the parts of search that work on a page of results rather than on the
// query: _include / _revinclude, _summary / _elements, compartments and Patient/$everything.
// SearchEngine (search.cpp) builds and runs the query, then calls these.
//
// SQL runs through ResourceStore::query over the logical schema (store_migrations.cpp, version 3):
// resource_current c JOIN resource_version v ON v.seq = c.seq for content, search_reference for
// links (type, id, param, target_type, target_id, url).
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/fhir/error.h"
#include "hearth/fhir/model.h"
#include "hearth/fhir/search.h"
#include "hearth/fhir/store.h"

namespace hearth::fhir::searchimpl {

struct FetchedResource {
  std::string type;
  std::string id;
  std::string json;  // current version, as stored (id and meta stamped)
};

// One parsed _include or _revinclude value: "Observation:subject", "Observation:subject:Patient",
// "*" (all reference parameters of the source type), with :iterate (R4 also accepts the legacy
// :recurse as :iterate).
struct IncludeSpec {
  std::string sourceType;  // the resource type that holds the reference ("*" for _include=*)
  std::string param;       // reference search parameter code, or "*"
  std::string targetType;  // optional restriction of the target type
  bool iterate = false;
};

// Parses an _include/_revinclude value. Throws FhirError 400 for malformed values, unknown types
// and parameters that are not reference parameters of sourceType.
// Accepted values: "Type:param", "Type:param:TargetType" (TargetType must be a declared target of
// param), "Type:*" (every reference parameter of Type) and "*" (every reference parameter of every
// type). The result has iterate = false; the modifier is on the parameter name (see below).
IncludeSpec parseIncludeSpec(const Model& model, std::string_view value);
// The same, given the parameter name as well: "_include" / "_revinclude", optionally with the
// modifier ":iterate" (or the legacy R3 ":recurse"), which sets iterate. Any other name or
// modifier -> 400.
IncludeSpec parseIncludeSpec(const Model& model, std::string_view name, std::string_view value);

// Resolves includes for a page of matches: the resources the matches reference through the
// _include parameters, and those referencing the matches through the _revinclude parameters;
// :iterate specs are applied again to what was included, until nothing new appears or `limit`
// resources were included. The result holds no resource that is among `matches` and no duplicate;
// deleted resources and references to unknown resources are skipped. Runs in `tx` when not null.
// Order: each round's additions in (type, id) order, rounds in sequence. Statements per round: one
// per source type for all _include specs, one per _revinclude spec and target type, one for the
// contents (IN lists of at most 500 ids each; more only for larger pages).
std::vector<FetchedResource> resolveIncludes(ResourceStore& store, StoreTransaction* tx, const Model& model,
                                             const std::vector<FetchedResource>& matches,
                                             const std::vector<IncludeSpec>& includes,
                                             const std::vector<IncludeSpec>& revincludes, size_t limit);

// _summary / _elements on one resource (see SearchEngine::applySummary). summary "count" is handled
// by the engine, not here (400 here). Mandatory elements (min >= 1), id, meta and resourceType are
// always kept; the SUBSETTED tag (system http://terminology.hl7.org/CodeSystem/v3-ObservationValue)
// is added to meta.tag when something was removed (and only then: otherwise the bytes come back
// unchanged). summary=true also keeps modifier elements (DomainResource.modifierExtension is not
// a summary element in R4). _elements names top-level elements ("name", "value" or "valueQuantity"
// for value[x], optionally "Patient.name"); unknown names select nothing. With both, an element
// must pass both. Numbers keep their exact text.
std::string applySummary(const Model& model, std::string_view type, std::string_view resourceJson,
                         std::string_view summary, std::string_view elements);

// The Patient compartment (R4 compartmentdefinition-patient): the search parameters by which a
// resource of `resourceType` belongs to the compartment of a patient; empty if that type is not in
// the compartment ("Patient" itself: {"link"}; the patient resource also belongs by its own id).
// Compartments other than Patient are not defined in the data we hold: compartmentTypeSupported
// says which are.
// A type entry whose only parameter is the pseudo-parameter "{def}" belongs by its own id; "{def}"
// is never returned as a parameter (the 4.0.1 Patient definition has no such entry: the patient
// resource itself is handled by id wherever the compartment is used).
// compartmentParams gives the codes of the index rows to read: a derived parameter of the
// definition (search_index.h: Invoice patient = subject.where(resolve() is Patient)) is replaced
// by those it is made of.
bool compartmentTypeSupported(std::string_view compartmentType);
const std::vector<std::string>& compartmentParams(std::string_view compartmentType, std::string_view resourceType);
// The resource types with at least one parameter in the compartment.
const std::vector<std::string>& compartmentResourceTypes(std::string_view compartmentType);

namespace generated {
// One row of a compiled-in CompartmentDefinition (tools/gen_compartments.py ->
// fhir/generated/patient_compartment.cpp): params is the comma-separated list of parameter codes.
struct CompartmentMembership {
  const char* resourceType;
  const char* params;
  bool byDefinition;  // the definition lists "{def}" for this type
};
extern const CompartmentMembership kPatientCompartment[];
extern const std::size_t kPatientCompartmentSize;
}  // namespace generated

// Patient/[id]/$everything as a searchset Bundle (compact JSON), per SearchEngine::everything.
// The set: the patient, every resource in its compartment (a search_reference row pointing at the
// patient under one of its type's compartment parameters), all with search.mode "match"; plus what
// those resources and the patient reference (one level) that is not in the set already, with mode
// "include": practitioners, organizations, medications ... but never another Patient. Dangling
// and deleted targets are left out.
// Parameters: _since (instant; resources with lastUpdated >= it), _type (comma-separated types;
// filters the set, it does not change what is referenced), _count (page size, default
// `defaultCount`, at most maxCount; 0 gives only Bundle.total), _cursor (from a next link);
// _format/_pretty are kept in the links, anything else is ignored. Pages follow the order
// (type, id): the opaque, checksummed _cursor names the last resource of the previous page, so
// pages never repeat or skip resources that exist throughout, whatever is written in between.
// Errors: 404 unknown patient (or type), 410 deleted patient, 400 for other types than Patient,
// malformed parameters and changed cursors. Statements: one read, one for every key of the set
// (with lastUpdated), one for the page's contents.
std::string everything(ResourceStore& store, const Model& model, std::string_view type, std::string_view id,
                       const SearchParams& params, const std::string& baseUrl, int defaultCount, int maxCount);

}  // namespace hearth::fhir::searchimpl
