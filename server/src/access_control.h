#pragma once
// Access control on the FHIR API (issue 5, part 3): turns policy.h's authorize() into decisions on
// HTTP interactions and checks what a response may carry.
//
// Two layers, both needed:
//   1. require(): before anything is read or written, the interaction on the type must be allowed
//      (role permissions ∩ token scopes). Denied -> FhirError 403 (IssueType forbidden).
//   2. visible() / filterBundle(): every resource a response carries (the read resource, search
//      matches, _include/_revinclude results incl. :iterate and *, $everything members, history
//      versions, batch/transaction response entries and the bundles nested in them) must be one
//      the caller may see: its type allows r/s, it lies inside the caller's patient compartment
//      when the grant is confined to one, and it matches one of the granular filters (v2 scopes
//      with ?name=value) when the grant carries filters. Entries that fail are removed, and the
//      Bundle's total is dropped when anything was removed (a count must not reveal hidden data).
// The first layer gives clear 403s; the second is the safety net that closes the bypasses
// (includes, chains, _has, history of a resource that moved out of the compartment ...), because
// it looks at the resources themselves and not at how the request asked for them.
//
// Compartment membership is decided from the resource's content with the search indexer and the
// R4 Patient CompartmentDefinition: a resource of type T is in Patient/p's compartment when one of
// T's compartment parameters references Patient/p (Patient/p itself by id, or by `link`). Types
// outside the compartment are visible to a confined caller only when they are shared directory or
// definition resources (sharedType(): Practitioner, Organization, Location, Medication,
// ValueSet ...), never other types that may carry patient data (Binary, Bundle, Person ...).
//
// Open (auth off) and Service (interim static bearer tokens) contexts are unrestricted; Service
// writes need a write token. All functions are const and thread-safe.
#include <rapidjson/document.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/auth/access.h"
#include "hearth/auth/policy.h"
#include "hearth/fhir/service.h"

namespace hearth::server {

struct Identity;  // token_cache.h

// What require() granted: the confinements the caller must keep.
struct Grant {
  bool unrestricted = false;                 // Open / Service, or nothing to confine
  std::optional<std::string> patient;        // confine to Patient/<id>'s compartment
  std::vector<auth::QueryParams> filters;    // granular filters (any one must match); empty = none
  bool confined() const { return patient.has_value(); }
  bool restricted() const { return patient.has_value() || !filters.empty(); }
};

class AccessControl {
 public:
  // `roles` may be null (no RoleCatalog loaded: only Open and Service contexts can be served;
  // User/Backend contexts are then denied everything).
  // `protectAudit` (audit.enabled): AuditEvents are immutable for Open and Service contexts too
  // (User and Backend tokens never change them: policy.immutableTypes).
  AccessControl(const auth::RoleCatalog* roles, const fhir::ResourceService& service, bool protectAudit = true);

  // The interaction on `type` ("*" = every type) for `who`; throws FhirError 403 (forbidden)
  // with the policy's reason when denied. `params` are the request's search parameters (granular
  // filters already applied by the request count as satisfied).
  // `memo` (the cached identity `who` belongs to, or null) memoizes decisions without params.
  Grant require(const auth::AccessContext& who, std::string_view type, auth::Interaction interaction,
                const auth::QueryParams& params = {}, const Identity* memo = nullptr) const;
  // The same without throwing: nullopt when denied (reason in *why when given).
  std::optional<Grant> check(const auth::AccessContext& who, std::string_view type, auth::Interaction interaction,
                             const auth::QueryParams& params = {}, std::string* why = nullptr,
                             const Identity* memo = nullptr) const;

  // Whether `who` may see this resource (parsed JSON of `type`) through `interaction` (kRead or
  // kSearch): the type is allowed and the resource satisfies the grant's confinements.
  bool visible(const auth::AccessContext& who, std::string_view type, const rapidjson::Value& resource,
               auth::Interaction interaction) const;
  // Whether a resource satisfies a grant (compartment and filters) - for writes: the new content
  // (create/update) and the current content (update/delete) must both satisfy it.
  bool satisfies(const Grant& g, std::string_view type, const rapidjson::Value& resource) const;
  bool satisfies(const Grant& g, std::string_view type, std::string_view resourceJson) const;

  // Removes from a Bundle (searchset, history, batch-response, transaction-response; nested
  // Bundles in entry.resource recursively) every entry whose resource `who` may not see
  // (interaction kSearch for searchsets and history, kRead for batch responses' read entries).
  // Numbers keep their exact text. Sets *removed when something was taken out; the Bundle's
  // total is then dropped. Entries without a resource (history deletes, batch outcomes) are kept.
  // `interaction` applies to the entries of searchset/history Bundles (kRead for an instance's
  // history); batch/transaction responses always use kRead for their direct entries.
  std::string filterBundle(const auth::AccessContext& who, std::string_view bundleJson, bool* removed = nullptr,
                           auth::Interaction interaction = auth::kSearch) const;

  // Patient compartment membership from content (see the header comment).
  bool inPatientCompartment(std::string_view type, const rapidjson::Value& resource, std::string_view patientId) const;
  // The Patient ids a resource's compartment parameters reference (Patient: its own id).
  std::vector<std::string> compartmentPatients(std::string_view type, const rapidjson::Value& resource) const;
  // Whether the resource matches a granular filter (every name=value of it; token, reference,
  // string and uri parameters; anything else does not match).
  bool matchesFilter(std::string_view type, const rapidjson::Value& resource, const auth::QueryParams& filter) const;

  // Directory and definition types that hold no patient data: visible to confined callers.
  static bool sharedType(std::string_view type);
  // Whether a confined caller can ever see resources of `type` (compartment or shared type).
  static bool confinable(std::string_view type);

  const auth::RoleCatalog* roles() const { return roles_; }

 private:
  std::string filterBundleImpl(const auth::AccessContext& who, std::string_view bundleJson, bool* removed,
                               auth::Interaction interaction, int depth) const;
  const auth::RoleCatalog* roles_;
  const fhir::ResourceService& service_;
  bool protectAudit_;
};

// Maps FHIR JSON numbers verbatim: splits a JSON object into (member name, raw value) pairs and
// a JSON array into raw element texts (compact, numbers as written). Empty on malformed input.
std::vector<std::pair<std::string, std::string>> jsonMembers(std::string_view objectJson);
std::vector<std::string> jsonElements(std::string_view arrayJson);

}  // namespace hearth::server
