#include "hearth/auth/scopes.h"

#include <algorithm>
#include <cctype>

namespace hearth::auth {
namespace {

constexpr std::string_view kLetters = "cruds";

[[noreturn]] void bad(std::string_view scope, const std::string& why) {
  // Scopes are not secrets, but bound what we echo.
  std::string shown(scope.substr(0, 200));
  throw ScopeError("invalid scope \"" + shown + "\": " + why);
}

bool validTokenChars(std::string_view s) {
  // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
  for (unsigned char c : s)
    if (c < 0x21 || c == 0x22 || c == 0x5C || c > 0x7E) return false;
  return !s.empty();
}

bool validType(std::string_view t) {
  if (t == "*") return true;
  if (t.empty() || t.size() > 64 || !std::isupper(static_cast<unsigned char>(t[0]))) return false;
  return std::all_of(t.begin(), t.end(), [](unsigned char c) { return std::isalpha(c); });
}

std::optional<std::string> percentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(s[i + 2])))
      return std::nullopt;
    out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
    i += 2;
  }
  return out;
}

}  // namespace

std::string interactionLetters(unsigned mask) {
  std::string out;
  for (size_t i = 0; i < kLetters.size(); ++i)
    if (mask & (1u << i)) out += kLetters[i];
  return out;
}

std::optional<unsigned> parseInteractionLetters(std::string_view letters) {
  unsigned mask = 0;
  for (char c : letters) {
    auto pos = kLetters.find(c);
    if (pos == std::string_view::npos || (mask & (1u << pos))) return std::nullopt;
    mask |= 1u << pos;
  }
  if (mask == 0) return std::nullopt;
  return mask;
}

std::string contextName(ScopeContext c) {
  switch (c) {
    case ScopeContext::Patient: return "patient";
    case ScopeContext::User: return "user";
    case ScopeContext::System: return "system";
  }
  return "";
}

ResourceScope parseResourceScope(std::string_view scope) {
  if (!validTokenChars(scope)) bad(scope, "characters not allowed in a scope");
  ResourceScope r{};
  r.text = std::string(scope);
  auto slash = scope.find('/');
  if (slash == std::string_view::npos) bad(scope, "expected <context>/<type>.<permissions>");
  std::string_view ctx = scope.substr(0, slash);
  if (ctx == "patient") r.context = ScopeContext::Patient;
  else if (ctx == "user") r.context = ScopeContext::User;
  else if (ctx == "system") r.context = ScopeContext::System;
  else bad(scope, "context must be patient, user or system");
  std::string_view rest = scope.substr(slash + 1);
  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
    if (query.empty()) bad(scope, "empty filter");
  }
  auto dot = rest.find('.');
  if (dot == std::string_view::npos) bad(scope, "missing .<permissions>");
  std::string_view type = rest.substr(0, dot), perms = rest.substr(dot + 1);
  if (!validType(type)) bad(scope, "not a resource type");
  r.type = std::string(type);
  if (perms == "read") {
    r.interactions = kRead | kSearch;
  } else if (perms == "write") {
    r.interactions = kCreate | kUpdate | kDelete;
  } else if (perms == "*") {
    r.interactions = kAllInteractions;
  } else {
    // v2: letters in canonical order only (SMART v2 §scopes: "cruds" order).
    auto mask = parseInteractionLetters(perms);
    if (!mask || interactionLetters(*mask) != perms) bad(scope, "permissions must be read, write, * or cruds letters in order");
    r.interactions = *mask;
    r.v2 = true;
  }
  if (!query.empty()) {
    if (!r.v2) bad(scope, "granular filters need SMART v2 permissions (e.g. .rs)");
    size_t start = 0;
    while (start <= query.size()) {
      size_t amp = query.find('&', start);
      std::string_view pair = query.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
      auto eq = pair.find('=');
      if (eq == std::string_view::npos || eq == 0 || eq + 1 == pair.size()) bad(scope, "filter must be name=value");
      auto name = percentDecode(pair.substr(0, eq)), value = percentDecode(pair.substr(eq + 1));
      if (!name || !value) bad(scope, "bad percent-encoding in filter");
      r.filter.emplace_back(*name, *value);
      if (amp == std::string_view::npos) break;
      start = amp + 1;
    }
  }
  return r;
}

std::optional<ScopeContext> ScopeSet::context() const {
  if (resources.empty()) return std::nullopt;
  return resources.front().context;
}

std::string ScopeSet::granted() const {
  std::vector<std::string> parts;
  if (openid) parts.push_back("openid");
  if (fhirUser) parts.push_back("fhirUser");
  if (profile) parts.push_back("profile");
  if (launch) parts.push_back("launch");
  if (launchPatient) parts.push_back("launch/patient");
  if (launchEncounter) parts.push_back("launch/encounter");
  if (offlineAccess) parts.push_back("offline_access");
  if (onlineAccess) parts.push_back("online_access");
  for (const auto& r : resources) parts.push_back(r.text);
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : " ") + p;
  return out;
}

ScopeSet parseScopes(std::string_view scope) {
  if (scope.size() > 8192) throw ScopeError("scope string too long");
  ScopeSet set;
  size_t start = 0;
  while (start < scope.size()) {
    size_t end = scope.find(' ', start);
    if (end == std::string_view::npos) end = scope.size();
    std::string_view tok = scope.substr(start, end - start);
    start = end + 1;
    if (tok.empty()) continue;
    if (!validTokenChars(tok)) bad(tok, "characters not allowed in a scope");
    if (tok == "openid") set.openid = true;
    else if (tok == "fhirUser") set.fhirUser = true;
    else if (tok == "profile") set.profile = true;
    else if (tok == "launch") set.launch = true;
    else if (tok == "launch/patient") set.launchPatient = true;
    else if (tok == "launch/encounter") set.launchEncounter = true;
    else if (tok == "offline_access") set.offlineAccess = true;
    else if (tok == "online_access") set.onlineAccess = true;
    else if (tok.starts_with("patient/") || tok.starts_with("user/") || tok.starts_with("system/")) {
      ResourceScope r = parseResourceScope(tok);
      if (!set.resources.empty() && set.resources.front().context != r.context)
        throw ScopeError("scopes mix " + contextName(set.resources.front().context) + "/ and " +
                         contextName(r.context) + "/ contexts");
      bool dup = std::any_of(set.resources.begin(), set.resources.end(),
                             [&](const ResourceScope& x) { return x.text == r.text; });
      if (!dup) set.resources.push_back(std::move(r));
    } else if (std::find(set.other.begin(), set.other.end(), tok) == set.other.end()) {
      if (set.other.size() >= 100) throw ScopeError("too many scopes");
      set.other.emplace_back(tok);
    }
    if (set.resources.size() > 200) throw ScopeError("too many scopes");
  }
  if (set.offlineAccess && set.onlineAccess) throw ScopeError("offline_access and online_access are exclusive");
  return set;
}

}  // namespace hearth::auth
