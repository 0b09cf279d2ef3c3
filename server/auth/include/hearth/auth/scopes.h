// SMART App Launch scopes (v1 and v2) as Hearth understands them.
//
//   Clinical scopes:  <context>/<type>.<permissions>[?<granular filter>]
//     context       patient | user | system
//     type          a FHIR resource type (capitalised letters) or "*"
//     permissions   v1: read | write | *          (read = r+s, write = c+u+d, * = all)
//                   v2: a non-empty subset of "cruds", letters in that order (e.g. rs, cud)
//     filter        v2 only: name=value[&name=value...] (percent-decoded), e.g.
//                   patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory
//   Other scopes:     openid fhirUser profile launch launch/patient launch/encounter offline_access
//                     online_access. Any other well-formed token (e.g. a client's own "email") is
//                     kept in `other`; the authorization server does not grant it.
//
// parseScopes refuses (ScopeError): tokens with characters outside RFC 6749's scope-token set,
// anything that starts with patient/, user/ or system/ but does not parse (e.g. "patient/Obs",
// "user/Observation.rx", "patient/*.sr", v1 with a filter), both offline_access and online_access,
// and a mix of patient/, user/ and system/ clinical scopes in one request (issue 5: one token, one
// context). Pure functions, thread-safe. Error texts quote the offending scope (scopes are not
// secret).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth::auth {

class ScopeError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// FHIR interactions as SMART v2 letters; combine as a bit mask.
enum Interaction : unsigned {
  kCreate = 1u << 0,  // c: create
  kRead = 1u << 1,    // r: read, vread, history of an instance
  kUpdate = 1u << 2,  // u: update, patch
  kDelete = 1u << 3,  // d: delete
  kSearch = 1u << 4,  // s: search, history of a type, operations returning many resources
  kAllInteractions = 31u,
};
// "cruds" subset in canonical order, e.g. kRead|kSearch -> "rs".
std::string interactionLetters(unsigned mask);
// Letters (any order, each at most once) -> mask; nullopt for anything else or empty.
std::optional<unsigned> parseInteractionLetters(std::string_view letters);

enum class ScopeContext { Patient, User, System };
std::string contextName(ScopeContext c);

using QueryParams = std::vector<std::pair<std::string, std::string>>;

struct ResourceScope {
  ScopeContext context;
  std::string type;          // resource type or "*"
  unsigned interactions;     // Interaction mask
  QueryParams filter;        // v2 granular filter; empty = the whole type
  bool v2 = false;           // written in v2 syntax
  std::string text;          // the scope as given
  bool coversType(std::string_view t) const { return type == "*" || type == t; }
};

struct ScopeSet {
  std::vector<ResourceScope> resources;
  bool openid = false, fhirUser = false, profile = false;
  bool launch = false, launchPatient = false, launchEncounter = false;
  bool offlineAccess = false, onlineAccess = false;
  std::vector<std::string> other;
  // The single context of the clinical scopes, nullopt when there are none.
  std::optional<ScopeContext> context() const;
  // The recognised scopes (not `other`) space-separated, in the order given: what a token grants.
  std::string granted() const;
};

// Parses a space-separated scope string (as in an authorization request or a token's "scope").
// Repeated spaces are tolerated, duplicates collapse. Throws ScopeError.
ScopeSet parseScopes(std::string_view scope);
// One clinical scope; throws ScopeError.
ResourceScope parseResourceScope(std::string_view scope);

}  // namespace hearth::auth
