// Role-based access policy intersected with SMART scopes (issue 5, parts 1 and 3).
//
// Roles (admin, doctor, nurse, receptionist, pharmacist, billing, patient, or any the site adds)
// are defined in config/roles.properties: per role, the interactions (c r u d s) allowed on each
// resource type ("*" = every type), and optionally `compartment = Patient`, which confines the role
// to its own patient compartment (the user's fhirUser must then be Patient/<id>). The file format
// is documented in that file; RoleCatalog refuses unknown keys, unknown letters and duplicate
// types with the line number, because a typo in a security policy must not pass silently.
//
// authorize() decides ONE interaction on ONE resource type:
//   allowed = (union of the principal's role permissions) ∩ (the token's clinical scopes)
// and tells the caller which confinements it must apply:
//   - compartmentPatient: the request must stay inside Patient/<id>'s compartment (patient/ scopes
//     use the token's patient context; a compartment role uses the user's own Patient id). The
//     caller enforces it on reads, searches (incl. _include/_revinclude/chains/_has), history,
//     $everything and every bundle entry; the policy cannot see those.
//   - requiredFilters: granular v2 scopes (e.g. ?category=laboratory) grant only matching
//     resources; when the request's own parameters do not already contain one filter set, the
//     caller must restrict the result to resources matching at least one of them (or refuse).
// Types listed in policy.immutableTypes (default AuditEvent) never allow c/u/d through the API,
// whatever the role (the server writes them internally without calling authorize).
//
// The caller maps FHIR interactions to letters: read/vread/instance history -> r;
// search/type or system history/$everything -> s (per type returned); create -> c;
// update/patch -> u; delete -> d; a conditional update or delete needs s as well.
//
// Thread-safety: RoleCatalog is immutable after loading; authorize is a pure function.
// Decision::reason names roles, types and scopes only (no patient ids, no tokens): safe to log.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/auth/scopes.h"

namespace hearth::auth {

class PolicyConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct RoleDefinition {
  std::string name;
  std::string description;
  std::map<std::string, unsigned> permissions;  // type or "*" -> Interaction mask
  bool patientCompartment = false;
  // The mask this role has on `type` (the type's own entry OR the "*" entry).
  unsigned allowed(std::string_view type) const;
};

class RoleCatalog {
 public:
  // Parses the properties text; throws PolicyConfigError("line N: ...").
  static RoleCatalog parse(std::string_view properties);
  // Reads and parses a file; throws PolicyConfigError (also when the file cannot be read).
  static RoleCatalog load(const std::string& path);

  const RoleDefinition* find(std::string_view role) const;
  std::vector<std::string> roleNames() const;
  const std::set<std::string>& immutableTypes() const { return immutable_; }

 private:
  std::map<std::string, RoleDefinition, std::less<>> roles_;
  std::set<std::string> immutable_{"AuditEvent"};
};

// Who is asking: from a validated access token (and the user account behind it).
struct Principal {
  std::vector<std::string> roles;  // the user's roles; for backend clients, the client's roles
  ScopeSet scopes;                 // the token's scopes
  std::string fhirUser;            // "Patient/123", "Practitioner/9" or empty
  std::string patientContext;      // the launch patient id (token "patient"), or empty
};

struct Decision {
  bool allowed = false;
  std::string reason;                            // why (denials) or what granted (allows); loggable
  std::optional<std::string> compartmentPatient;  // confine to this Patient id's compartment
  std::vector<QueryParams> requiredFilters;       // restrict to resources matching one of these
};

// Decides `interaction` (exactly one Interaction bit) on resource type `type`. `params` are the
// request's search parameters, used only to see whether a granular filter is already applied.
// Unknown roles grant nothing (they are reported in the reason). Throws std::invalid_argument if
// `interaction` is not a single bit.
Decision authorize(const RoleCatalog& catalog, const Principal& who, std::string_view type,
                   Interaction interaction, const QueryParams& params = {});

}  // namespace hearth::auth
