#include "hearth/auth/policy.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

namespace hearth::auth {
namespace {

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::vector<std::string> splitList(const std::string& v) {
  std::vector<std::string> out;
  std::stringstream ss(v);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item = trim(item);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

bool validRoleName(std::string_view n) {
  return !n.empty() && std::all_of(n.begin(), n.end(), [](unsigned char c) {
    return std::islower(c) || std::isdigit(c) || c == '_' || c == '-';
  });
}

bool validTypeName(std::string_view t) {
  return t == "*" || (!t.empty() && std::isupper(static_cast<unsigned char>(t[0])) &&
                      std::all_of(t.begin(), t.end(), [](unsigned char c) { return std::isalpha(c); }));
}

// A single key=value line of a Java-style properties text (with '\' continuation).
struct Line {
  int number;
  std::string key, value;
};

std::vector<Line> readProperties(std::string_view text) {
  std::vector<Line> out;
  std::istringstream in{std::string(text)};
  std::string raw;
  int n = 0;
  while (std::getline(in, raw)) {
    ++n;
    int first = n;
    std::string line = trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == '!') continue;
    while (!line.empty() && line.back() == '\\' && std::getline(in, raw)) {
      ++n;
      line.pop_back();
      line += trim(raw);
    }
    auto eq = line.find_first_of("=:");
    if (eq == std::string::npos) throw PolicyConfigError("line " + std::to_string(first) + ": expected key = value");
    out.push_back({first, trim(line.substr(0, eq)), trim(line.substr(eq + 1))});
  }
  return out;
}

}  // namespace

unsigned RoleDefinition::allowed(std::string_view type) const {
  unsigned mask = 0;
  if (auto it = permissions.find(std::string(type)); it != permissions.end()) mask |= it->second;
  if (auto it = permissions.find("*"); it != permissions.end()) mask |= it->second;
  return mask;
}

RoleCatalog RoleCatalog::parse(std::string_view properties) {
  RoleCatalog cat;
  for (const Line& l : readProperties(properties)) {
    auto err = [&](const std::string& why) { return PolicyConfigError("line " + std::to_string(l.number) + ": " + why); };
    if (l.key == "policy.immutableTypes") {
      cat.immutable_.clear();
      for (const auto& t : splitList(l.value)) {
        if (!validTypeName(t) || t == "*") throw err("not a resource type: " + t);
        cat.immutable_.insert(t);
      }
      continue;
    }
    // role.<name>.<field>
    if (!l.key.starts_with("role.")) throw err("unknown key " + l.key);
    auto dot = l.key.rfind('.');
    std::string name = l.key.substr(5, dot > 5 ? dot - 5 : 0), field = l.key.substr(dot + 1);
    if (dot <= 5 || !validRoleName(name)) throw err("bad role name in " + l.key);
    RoleDefinition& role = cat.roles_[name];
    role.name = name;
    if (field == "description") {
      role.description = l.value;
    } else if (field == "compartment") {
      if (l.value == "Patient") role.patientCompartment = true;
      else if (l.value.empty()) role.patientCompartment = false;
      else throw err("compartment must be Patient (or empty)");
    } else if (field == "permissions") {
      role.permissions.clear();
      for (const auto& item : splitList(l.value)) {
        auto colon = item.find(':');
        if (colon == std::string::npos) throw err("permission must be Type:letters, got " + item);
        std::string type = trim(item.substr(0, colon)), letters = trim(item.substr(colon + 1));
        if (!validTypeName(type)) throw err("not a resource type: " + type);
        auto mask = parseInteractionLetters(letters);
        if (!mask) throw err("letters must be a subset of cruds: " + item);
        if (!role.permissions.emplace(type, *mask).second) throw err("type listed twice: " + type);
      }
    } else {
      throw err("unknown key " + l.key);
    }
  }
  return cat;
}

RoleCatalog RoleCatalog::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw PolicyConfigError("cannot read role definitions " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return parse(ss.str());
  } catch (const PolicyConfigError& e) {
    throw PolicyConfigError(path + ": " + e.what());
  }
}

const RoleDefinition* RoleCatalog::find(std::string_view role) const {
  auto it = roles_.find(role);
  return it == roles_.end() ? nullptr : &it->second;
}

std::vector<std::string> RoleCatalog::roleNames() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : roles_) out.push_back(name);
  return out;
}

namespace {

bool containsFilter(const QueryParams& params, const QueryParams& filter) {
  return std::all_of(filter.begin(), filter.end(), [&](const auto& f) {
    return std::find(params.begin(), params.end(), f) != params.end();
  });
}

Decision deny(std::string reason) {
  Decision d;
  d.reason = std::move(reason);
  return d;
}

}  // namespace

Decision authorize(const RoleCatalog& catalog, const Principal& who, std::string_view type, Interaction interaction,
                   const QueryParams& params) {
  unsigned bit = static_cast<unsigned>(interaction);
  if (bit == 0 || (bit & (bit - 1)) != 0 || bit > kAllInteractions)
    throw std::invalid_argument("authorize: exactly one interaction expected");
  const std::string what = interactionLetters(bit) + " on " + std::string(type);

  if (catalog.immutableTypes().count(std::string(type)) && (bit & (kCreate | kUpdate | kDelete)))
    return deny(std::string(type) + " cannot be changed through the API");

  // 1. Roles: the union of what the principal's roles allow.
  unsigned roleMask = 0;
  bool compartmentRole = false, allCompartment = true;
  std::string granting;
  for (const auto& name : who.roles) {
    const RoleDefinition* role = catalog.find(name);
    if (!role) continue;
    unsigned m = role->allowed(type);
    if (m & bit) {
      granting += (granting.empty() ? "" : ",") + name;
      compartmentRole = compartmentRole || role->patientCompartment;
      allCompartment = allCompartment && role->patientCompartment;
    }
    roleMask |= m;
  }
  if (!(roleMask & bit)) {
    std::string roles;
    for (const auto& r : who.roles) roles += (roles.empty() ? "" : ",") + r;
    return deny("role(s) [" + roles + "] do not allow " + what);
  }

  // 2. Scopes: one context per token, and some scope must cover the type and interaction.
  const auto& scopes = who.scopes.resources;
  for (const auto& s : scopes)
    if (s.context != scopes.front().context) return deny("token mixes patient/, user/ and system/ scopes");
  std::vector<const ResourceScope*> grants;
  for (const auto& s : scopes)
    if (s.coversType(type) && (s.interactions & bit)) grants.push_back(&s);
  if (grants.empty()) return deny("token scopes do not allow " + what);

  Decision d;
  d.allowed = true;
  d.reason = "role(s) [" + granting + "] and scope " + grants.front()->text + " allow " + what;

  // 3. Granular filters: unrestricted if any granting scope has none.
  bool unrestricted = std::any_of(grants.begin(), grants.end(), [](const ResourceScope* s) { return s->filter.empty(); });
  if (!unrestricted) {
    bool satisfied = std::any_of(grants.begin(), grants.end(),
                                 [&](const ResourceScope* s) { return containsFilter(params, s->filter); });
    if (!satisfied)
      for (const auto* s : grants) d.requiredFilters.push_back(s->filter);
  }

  // 4. Patient compartment confinement.
  if (scopes.front().context == ScopeContext::Patient) {
    if (who.patientContext.empty()) return deny("patient/ scopes without a patient in context");
    d.compartmentPatient = who.patientContext;
  }
  // A compartment role confines only if no unconfined role also grants the interaction.
  if (compartmentRole && allCompartment) {
    const std::string prefix = "Patient/";
    if (!who.fhirUser.starts_with(prefix) || who.fhirUser.size() == prefix.size())
      return deny("compartment role without a Patient fhirUser");
    std::string own = who.fhirUser.substr(prefix.size());
    if (d.compartmentPatient && *d.compartmentPatient != own)
      return deny("patient context differs from the user's own patient record");
    d.compartmentPatient = own;
  }
  return d;
}

}  // namespace hearth::auth
