// Search parameter parsing (search_query.h): names, modifiers, prefixes and values per R4
// search.html, against the parameters Model::searchParams defines for each type.
//
// Diagnostics name the parameter (issue.expression) but never echo its value: values can carry
// patient data.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <ctime>
#include <string>

#include "hearth/fhir/json.h"
#include "search_query.h"

namespace hearth::fhir::searchq {

namespace {

// Thrown (and caught in parseSearch) for a parameter this server does not know or cannot process
// for a type: ignored with a warning under lenient handling, 400 under strict handling.
struct IgnoredParam {
  std::string diagnostics;
};

[[noreturn]] void invalid(const std::string& name, const std::string& msg) {
  throw FhirError(400, IssueType::Invalid, msg, name);
}
[[noreturn]] void notSupported(const std::string& name, const std::string& msg) {
  throw FhirError(400, IssueType::NotSupported, msg, name);
}
[[noreturn]] void tooCostly(const std::string& name, const std::string& msg) {
  throw FhirError(400, IssueType::TooCostly, msg, name);
}

bool startsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// The result parameters (R4 search.html 3.1.1.5): they shape the answer, not the match set.
bool isResultParam(std::string_view code) {
  return code == "_sort" || code == "_count" || code == "_include" || code == "_revinclude" ||
         code == "_summary" || code == "_total" || code == "_elements" || code == "_contained" ||
         code == "_containedType";
}

// Common parameters that the definitions list but whose rows nobody indexes.
bool isUnindexedCommon(std::string_view code) {
  return code == "_text" || code == "_content" || code == "_query" || code == "_filter" || code == "_list";
}

bool indexKindOf(std::string_view type, IndexKind& kind) {
  if (type == "string") kind = IndexKind::String;
  else if (type == "token") kind = IndexKind::Token;
  else if (type == "date") kind = IndexKind::Date;
  else if (type == "number") kind = IndexKind::Number;
  else if (type == "quantity") kind = IndexKind::Quantity;
  else if (type == "reference") kind = IndexKind::Reference;
  else if (type == "uri") kind = IndexKind::Uri;
  else return false;
  return true;
}

uint64_t fnv1a(uint64_t h, std::string_view s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}
constexpr uint64_t kFnvBasis = 14695981039346656037ULL;

// --- dates -------------------------------------------------------------------------------------

int64_t daysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civilFromDays(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp + (mp < 10 ? 3 : -9);
  y += m <= 2;
}

bool digits(std::string_view s, size_t pos, size_t n) {
  if (pos + n > s.size()) return false;
  for (size_t i = pos; i < pos + n; ++i)
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  return true;
}
int num(std::string_view s, size_t pos, size_t n) {
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) v = v * 10 + (s[i] - '0');
  return v;
}

// Search values may stop at the minute (R4 search examples use "2013-01-14T10:00"), which the
// dateTime datatype does not allow: YYYY-MM-DDThh:mm[Z|(+|-)hh:mm] covers that minute.
bool minuteRange(std::string_view t, int64_t& lo, int64_t& hi) {
  if (t.size() < 16 || !digits(t, 0, 4) || t[4] != '-' || !digits(t, 5, 2) || t[7] != '-' || !digits(t, 8, 2) ||
      t[10] != 'T' || !digits(t, 11, 2) || t[13] != ':' || !digits(t, 14, 2))
    return false;
  const int y = num(t, 0, 4), mo = num(t, 5, 2), d = num(t, 8, 2), h = num(t, 11, 2), mi = num(t, 14, 2);
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59) return false;
  int64_t offsetMin = 0;
  std::string_view zone = t.substr(16);
  if (zone == "Z" || zone.empty()) {
    offsetMin = 0;
  } else if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && digits(zone, 1, 2) && zone[3] == ':' &&
             digits(zone, 4, 2)) {
    offsetMin = num(zone, 1, 2) * 60 + num(zone, 4, 2);
    if (zone[0] == '-') offsetMin = -offsetMin;
  } else {
    return false;
  }
  // Reject impossible days (2021-02-30) by a round trip.
  const int64_t days = daysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  int64_t ry;
  unsigned rm, rd;
  civilFromDays(days, ry, rm, rd);
  if (ry != y || static_cast<int>(rm) != mo || static_cast<int>(rd) != d) return false;
  const int64_t minutes = days * 1440 + h * 60 + mi - offsetMin;
  lo = minutes * 60'000'000LL;
  hi = lo + 60'000'000LL - 1;
  return true;
}

bool searchDateRange(std::string_view t, int64_t& lo, int64_t& hi) {
  if (fhirDateRange(t, lo, hi)) return true;
  return minuteRange(t, lo, hi);
}

// --- numbers -----------------------------------------------------------------------------------

// A FHIR decimal as a search value, with the half-unit of its last significant digit: "100" ->
// 100 +- 0.5, "100.00" -> +- 0.005, "1e2" -> +- 50 (R4 search.html 3.1.1.4.1).
bool parseSearchNumber(std::string_view s, double& value, double& halfUnit) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  const size_t intStart = i;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  if (i == intStart) return false;
  int decimals = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    const size_t fracStart = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    if (i == fracStart) return false;
    decimals = static_cast<int>(i - fracStart);
  }
  int exponent = 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool neg = false;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
    const size_t expStart = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    if (i == expStart || i - expStart > 3) return false;
    exponent = num(s, expStart, i - expStart);
    if (neg) exponent = -exponent;
  }
  if (i != s.size() || s.size() > 64) return false;
  const std::string text(s);
  char* end = nullptr;
  value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(value)) return false;
  halfUnit = std::pow(10.0, exponent - decimals) / 2;
  return std::isfinite(halfUnit);
}

// Well-formed UTF-8 without NUL: what the store can bind as text on either backend.
bool cleanUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t b = static_cast<uint8_t>(s[i]);
    if (b == 0) return false;
    size_t n = 0;
    uint32_t cp = 0;
    if (b < 0x80) {
      ++i;
      continue;
    } else if ((b & 0xE0) == 0xC0) {
      n = 1;
      cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      n = 2;
      cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      n = 3;
      cp = b & 0x07;
    } else {
      return false;
    }
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const uint8_t c = static_cast<uint8_t>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

bool isSearchParamCode(const Model& model, std::string_view type, std::string_view code) {
  return model.searchParam(type, code) != nullptr;
}

// --- the parser --------------------------------------------------------------------------------

class Parser {
 public:
  Parser(const Model& model, const ParseOptions& options) : model_(model), opt_(options) {}

  ParsedSearch run(const SearchParams& params);

 private:
  Criterion parseCriterion(const std::string& type, std::string_view name, std::string_view value, size_t depth,
                           const std::string& fullName);
  Criterion parseHas(const std::string& type, std::string_view name, std::string_view value, size_t depth,
                     const std::string& fullName);
  Criterion parseChain(const std::string& type, std::string_view name, std::string_view value, size_t depth,
                       const std::string& fullName);
  std::vector<std::string> orValues(std::string_view value, const std::string& name) const;
  Prefix takePrefix(std::string_view& v, const std::string& name) const;
  void dateValue(std::string_view v, Value& out, const std::string& name) const;
  void numberValue(std::string_view v, Value& out, const std::string& name) const;
  void tokenValue(std::string_view raw, const std::string& modifier, Value& out, const std::string& name) const;
  void referenceValue(std::string_view raw, const SearchParamDef& def, const std::string& modifier, Value& out,
                      const std::string& name) const;
  void parseSort(std::string_view value);
  void parseResultParam(const std::string& name, const std::string& value);
  std::vector<std::string> resolveTypes(const SearchParams& params);

  const Model& model_;
  const ParseOptions& opt_;
  ParsedSearch out_;
  std::string cursorToken_;
  std::string sortValue_;
};

std::vector<std::string> Parser::orValues(std::string_view value, const std::string& name) const {
  std::vector<std::string> parts = splitEscaped(value, ',');
  if (parts.size() > opt_.limits.maxOrValues) {
    tooCostly(name, "Parameter " + name + " has more than " + std::to_string(opt_.limits.maxOrValues) +
                        " comma-separated values");
  }
  return parts;
}

Prefix Parser::takePrefix(std::string_view& v, const std::string& name) const {
  if (v.size() >= 2 && std::isalpha(static_cast<unsigned char>(v[0])) && std::isalpha(static_cast<unsigned char>(v[1]))) {
    static const std::pair<const char*, Prefix> kPrefixes[] = {
        {"eq", Prefix::Eq}, {"ne", Prefix::Ne}, {"gt", Prefix::Gt}, {"lt", Prefix::Lt}, {"ge", Prefix::Ge},
        {"le", Prefix::Le}, {"sa", Prefix::Sa}, {"eb", Prefix::Eb}, {"ap", Prefix::Ap}};
    for (const auto& [text, p] : kPrefixes) {
      if (v.substr(0, 2) == text) {
        v.remove_prefix(2);
        return p;
      }
    }
    invalid(name, "Parameter " + name + " has an unknown prefix (allowed: eq ne gt lt ge le sa eb ap)");
  }
  return Prefix::Eq;
}

void Parser::dateValue(std::string_view v, Value& out, const std::string& name) const {
  out.prefix = takePrefix(v, name);
  if (!searchDateRange(v, out.dlo, out.dhi)) {
    invalid(name, "Parameter " + name + " needs a date, dateTime or instant (e.g. 2024-03-01, 2024-03-01T10:00:00Z)");
  }
  if (out.prefix == Prefix::Ap) {
    // "Approximately": the value's range widened by 10% of the gap between it and now, and by
    // at least one day; a target matches when its range overlaps that.
    constexpr int64_t kDay = 86'400'000'000LL;
    const int64_t now = nowInstant().epochMicros;
    const int64_t gap = now > out.dhi ? now - out.dhi : (out.dlo > now ? out.dlo - now : 0);
    const int64_t d = std::max(gap / 10, kDay);
    out.dlo = out.dlo > INT64_MIN + d ? out.dlo - d : INT64_MIN;
    out.dhi = out.dhi < INT64_MAX - d ? out.dhi + d : INT64_MAX;
  }
}

void Parser::numberValue(std::string_view v, Value& out, const std::string& name) const {
  out.prefix = takePrefix(v, name);
  double half = 0;
  if (!parseSearchNumber(v, out.number, half)) invalid(name, "Parameter " + name + " needs a number");
  out.lo = out.number - half;
  out.hi = out.number + half;
}

void Parser::tokenValue(std::string_view raw, const std::string& modifier, Value& out, const std::string& name) const {
  if (modifier == "text") {
    out.text = normalizeSearchString(unescapeValue(raw));
    return;
  }
  const std::vector<std::string> parts = splitEscaped(raw, '|');
  if (modifier == "of-type") {
    if (parts.size() != 3 || parts[1].empty() || parts[2].empty()) {
      invalid(name, "Parameter " + name + " (:of-type) needs system|code|value");
    }
    out.system = unescapeValue(parts[0]);
    out.hasSystem = true;
    out.code = unescapeValue(parts[1]) + "|" + unescapeValue(parts[2]);
    return;
  }
  if (parts.size() == 1) {
    out.code = unescapeValue(parts[0]);
  } else if (parts.size() == 2) {
    out.hasSystem = true;
    out.system = unescapeValue(parts[0]);
    out.code = unescapeValue(parts[1]);
    out.hasCode = !parts[1].empty();
    if (!out.hasCode && out.system.empty()) invalid(name, "Parameter " + name + " has an empty token");
  } else {
    invalid(name, "Parameter " + name + " needs code, system|code, |code or system| (escape a literal | as \\|)");
  }
}

void Parser::referenceValue(std::string_view rawEscaped, const SearchParamDef& def, const std::string& modifier,
                            Value& out, const std::string& name) const {
  std::string raw = unescapeValue(rawEscaped);
  // A reference to this server by absolute URL is a local reference.
  if (!opt_.baseUrl.empty() && raw.size() > opt_.baseUrl.size() && startsWith(raw, opt_.baseUrl) &&
      raw[opt_.baseUrl.size()] == '/') {
    raw = raw.substr(opt_.baseUrl.size() + 1);
  }
  std::string_view v(raw);
  const bool absolute = v.find("://") != std::string_view::npos || startsWith(v, "urn:");
  if (absolute) {
    if (!modifier.empty()) invalid(name, "Parameter " + name + ":" + modifier + " needs an id or Type/id");
    out.isUrl = true;
    // Canonical references are indexed without their |version.
    out.text = std::string(v.substr(0, v.find('|')));
    return;
  }
  // Type/id, optionally with /_history/vid (the version is not part of what is indexed).
  const size_t hist = v.find("/_history/");
  if (hist != std::string_view::npos) v = v.substr(0, hist);
  const size_t slash = v.find('/');
  if (slash != std::string_view::npos) {
    const std::string t(v.substr(0, slash));
    const std::string id(v.substr(slash + 1));
    if (!model_.isResourceType(t) || id.empty() || id.find('/') != std::string::npos) {
      invalid(name, "Parameter " + name + " needs an id, Type/id or an absolute URL");
    }
    if (!modifier.empty() && modifier != t) {
      invalid(name, "Parameter " + name + ":" + modifier + " has a reference to another type");
    }
    if (!def.targets.empty() && std::find(def.targets.begin(), def.targets.end(), t) == def.targets.end()) {
      invalid(name, "Parameter " + name + " cannot refer to a " + t);
    }
    out.refType = t;
    out.text = id;
    return;
  }
  if (v.empty()) invalid(name, "Parameter " + name + " has an empty reference");
  out.refType = modifier;  // may be empty: any target type
  out.text = std::string(v);
}

Criterion Parser::parseHas(const std::string& type, std::string_view name, std::string_view value, size_t depth,
                           const std::string& fullName) {
  // _has:Type:param:rest
  std::string_view rest = name.substr(5);
  const size_t c1 = rest.find(':');
  const size_t c2 = c1 == std::string_view::npos ? c1 : rest.find(':', c1 + 1);
  if (c2 == std::string_view::npos || c1 == 0 || c2 == c1 + 1 || c2 + 1 >= rest.size()) {
    invalid(fullName, "_has needs the form _has:Type:reference-parameter:criterion");
  }
  const std::string hasType(rest.substr(0, c1));
  const std::string hasParam(rest.substr(c1 + 1, c2 - c1 - 1));
  if (!model_.isResourceType(hasType)) invalid(fullName, "_has names an unknown resource type");
  const SearchParamDef* def = model_.searchParam(hasType, hasParam);
  if (!def || def->type != "reference") {
    invalid(fullName, "_has: " + hasParam + " is not a reference parameter of " + hasType);
  }
  if (!def->targets.empty() && std::find(def->targets.begin(), def->targets.end(), type) == def->targets.end()) {
    invalid(fullName, "_has: " + hasType + "." + hasParam + " does not refer to " + type);
  }
  Criterion c;
  c.kind = CritKind::Has;
  c.type = type;
  c.name = fullName;
  c.param = hasParam;
  c.hasType = hasType;
  c.inner.push_back(parseCriterion(hasType, rest.substr(c2 + 1), value, depth + 1, fullName));
  return c;
}

Criterion Parser::parseChain(const std::string& type, std::string_view name, std::string_view value, size_t depth,
                             const std::string& fullName) {
  const size_t dot = name.find('.');
  const std::string_view head = name.substr(0, dot);
  const std::string_view rest = name.substr(dot + 1);
  const size_t colon = head.find(':');
  const std::string code(head.substr(0, colon));
  const std::string modifier = colon == std::string_view::npos ? std::string() : std::string(head.substr(colon + 1));
  const SearchParamDef* def = model_.searchParam(type, code);
  if (!def) throw IgnoredParam{"Unknown search parameter " + code + " for " + type};
  if (def->type != "reference") invalid(fullName, "Only reference parameters can be chained: " + code);
  if (rest.empty()) invalid(fullName, "A chain needs a parameter after the '.'");
  std::vector<std::string> targets;
  if (!modifier.empty()) {
    if (!model_.isResourceType(modifier) ||
        (!def->targets.empty() && std::find(def->targets.begin(), def->targets.end(), modifier) == def->targets.end())) {
      invalid(fullName, "Parameter " + code + " cannot refer to a " + modifier);
    }
    targets.push_back(modifier);
  } else {
    targets = def->targets;
  }
  Criterion c;
  c.kind = CritKind::Chain;
  c.type = type;
  c.name = fullName;
  c.param = code;
  c.table = IndexKind::Reference;
  // The rest of the chain applies to every target type that defines its first parameter.
  const size_t restColon = rest.find_first_of(":.");
  const std::string_view nextCode = rest.substr(0, restColon);
  for (const std::string& target : targets) {
    if (nextCode == "_id" || nextCode == "_lastUpdated" || startsWith(rest, "_has:") ||
        isSearchParamCode(model_, target, nextCode)) {
      try {
        c.inner.push_back(parseCriterion(target, rest, value, depth + 1, fullName));
      } catch (const IgnoredParam&) {
        // A deeper link this target cannot follow: the other targets may.
      }
    }
  }
  if (c.inner.empty()) {
    invalid(fullName, "No target type of " + type + "." + code + " has the chained parameter " +
                          std::string(nextCode));
  }
  return c;
}

Criterion Parser::parseCriterion(const std::string& type, std::string_view name, std::string_view value, size_t depth,
                                 const std::string& fullName) {
  if (depth > opt_.limits.maxChainDepth) {
    tooCostly(fullName, "Parameter " + fullName + " chains more than " + std::to_string(opt_.limits.maxChainDepth) +
                            " levels");
  }
  if (startsWith(name, "_has:")) return parseHas(type, name, value, depth, fullName);
  const size_t dot = name.find('.');
  const size_t colon = name.find(':');
  if (dot != std::string_view::npos && (colon == std::string_view::npos || dot < name.find(':', colon + 1))) {
    // "subject.name" or "subject:Patient.name": the '.' comes before any second ':'.
    return parseChain(type, name, value, depth, fullName);
  }
  const std::string code(name.substr(0, colon));
  const std::string modifier = colon == std::string_view::npos ? std::string() : std::string(name.substr(colon + 1));

  Criterion c;
  c.type = type;
  c.name = fullName;
  c.param = code;
  c.modifier = modifier;

  if (code == "_id" || code == "_lastUpdated") {
    if (!modifier.empty()) invalid(fullName, "Parameter " + code + " takes no modifier");
    c.kind = code == "_id" ? CritKind::Id : CritKind::LastUpdated;
    c.paramType = code == "_id" ? "token" : "date";
    for (const std::string& part : orValues(value, fullName)) {
      Value v;
      if (c.kind == CritKind::Id) {
        v.text = unescapeValue(part);
        if (v.text.empty()) invalid(fullName, "_id needs an id");
      } else {
        dateValue(unescapeValue(part), v, fullName);
      }
      c.values.push_back(std::move(v));
    }
    return c;
  }

  const SearchParamDef* def = model_.searchParam(type, code);
  if (!def) throw IgnoredParam{"Unknown search parameter " + code + " for " + type};
  if (isUnindexedCommon(code) || def->expression.empty() || !indexKindOf(def->type, c.table)) {
    throw IgnoredParam{"Search parameter " + code + " (" + def->type + ") is not supported by this server"};
  }
  c.paramType = def->type;

  if (modifier == "missing") {
    if (value != "true" && value != "false") invalid(fullName, "Parameter " + fullName + " takes true or false");
    c.kind = CritKind::Missing;
    c.negate = value == "true";
    return c;
  }

  // Modifiers per type (R4 search.html); known but unsupported ones are refused, since ignoring a
  // modifier would silently change what matches.
  const std::string& t = def->type;
  bool ok = modifier.empty();
  if (t == "string") ok = ok || modifier == "exact" || modifier == "contains";
  if (t == "token") {
    ok = ok || modifier == "not" || modifier == "text" || (modifier == "of-type" && code == "identifier");
    if (modifier == "in" || modifier == "not-in" || modifier == "above" || modifier == "below") {
      notSupported(fullName, "Modifier :" + modifier + " is not supported for token parameters");
    }
  }
  if (t == "uri") ok = ok || modifier == "below" || modifier == "above";
  if (t == "reference") {
    if (modifier == "identifier") {
      ok = true;
    } else if (!modifier.empty() && model_.isResourceType(modifier)) {
      if (!def->targets.empty() &&
          std::find(def->targets.begin(), def->targets.end(), modifier) == def->targets.end()) {
        invalid(fullName, "Parameter " + code + " cannot refer to a " + modifier);
      }
      ok = true;
    } else if (modifier == "above" || modifier == "below") {
      notSupported(fullName, "Modifier :" + modifier + " is not supported for reference parameters");
    }
  }
  if (!ok) invalid(fullName, "Unknown modifier :" + modifier + " for " + t + " parameter " + code);

  c.kind = CritKind::Index;
  c.negate = modifier == "not";
  c.targets = def->targets;
  if (modifier == "of-type") c.param = code + ":of-type";
  if (t == "reference" && modifier == "identifier") {
    // Reference.identifier is indexed as token rows of "<code>:identifier".
    c.param = code + ":identifier";
    c.table = IndexKind::Token;
  }

  for (const std::string& part : orValues(value, fullName)) {
    Value v;
    if (c.table == IndexKind::Token) {
      tokenValue(part, modifier == "identifier" ? std::string() : modifier, v, fullName);
    } else if (t == "string") {
      v.text = modifier == "exact" ? unescapeValue(part) : normalizeSearchString(unescapeValue(part));
    } else if (t == "date") {
      dateValue(unescapeValue(part), v, fullName);
    } else if (t == "number") {
      numberValue(unescapeValue(part), v, fullName);
    } else if (t == "quantity") {
      const std::vector<std::string> parts = splitEscaped(part, '|');
      if (parts.size() != 1 && parts.size() != 3) {
        invalid(fullName, "Parameter " + fullName + " needs [prefix]number, number|system|code or number||code");
      }
      numberValue(unescapeValue(parts[0]), v, fullName);
      if (parts.size() == 3) {
        v.system = unescapeValue(parts[1]);
        v.code = unescapeValue(parts[2]);
        v.hasSystem = !v.system.empty();
        v.hasCode = !v.code.empty();
        if (!v.hasCode && v.hasSystem) invalid(fullName, "Parameter " + fullName + " has a system without a code");
      } else {
        v.hasCode = false;
      }
    } else if (t == "reference") {
      referenceValue(part, *def, modifier, v, fullName);
    } else if (t == "uri") {
      v.text = unescapeValue(part);
    }
    c.values.push_back(std::move(v));
  }
  return c;
}

void Parser::parseSort(std::string_view value) {
  out_.sort.clear();
  for (const std::string& part : splitEscaped(value, ',')) {
    if (out_.sort.size() >= opt_.limits.maxSortKeys) {
      tooCostly("_sort", "_sort takes at most " + std::to_string(opt_.limits.maxSortKeys) + " keys");
    }
    SortKey k;
    std::string_view p(part);
    if (!p.empty() && p[0] == '-') {
      k.desc = true;
      p.remove_prefix(1);
    }
    k.name = std::string(p);
    if (k.name.empty()) invalid("_sort", "_sort has an empty key");
    if (k.name == "_id") {
      k.kind = SortKind::Id;
    } else if (k.name == "_lastUpdated") {
      k.kind = SortKind::LastUpdated;
    } else {
      k.kind = SortKind::Index;
      // Every branch type that defines the parameter must index it with the same kind (the
      // sort column has one SQL type); types without it sort as missing.
      bool any = false;
      IndexKind kind{};
      for (const Branch& b : out_.branches) {
        const SearchParamDef* def = b.type.empty() ? nullptr : model_.searchParam(b.type, k.name);
        k.tables.emplace_back();
        if (!def) continue;
        IndexKind kk;
        if (isUnindexedCommon(k.name) || def->expression.empty() || !indexKindOf(def->type, kk)) {
          invalid("_sort", "Cannot sort by " + k.name + " (" + def->type + " parameter)");
        }
        if (any && kk != kind) invalid("_sort", "Cannot sort by " + k.name + ": it has different types");
        kind = kk;
        k.tables.back() = kk;
        any = true;
      }
      if (!any) invalid("_sort", "Unknown sort parameter " + k.name);
    }
    out_.sort.push_back(std::move(k));
  }
}

void Parser::parseResultParam(const std::string& name, const std::string& value) {
  const std::string code = name.substr(0, name.find(':'));
  const std::string modifier = name.size() > code.size() ? name.substr(code.size() + 1) : std::string();
  if (code != "_include" && code != "_revinclude" && !modifier.empty()) {
    invalid(name, "Parameter " + code + " takes no modifier");
  }
  if (code == "_sort") {
    sortValue_ = value;  // parsed once the types are known (after the loop)
  } else if (code == "_count") {
    if (value.empty() || value.size() > 9 || value.find_first_not_of("0123456789") != std::string::npos) {
      invalid(name, "_count needs a non-negative integer");
    }
    out_.count = std::min(std::stoi(value), opt_.maxCount);
  } else if (code == "_total") {
    if (value != "none" && value != "estimate" && value != "accurate") {
      invalid(name, "_total takes none, estimate or accurate");
    }
    out_.total = value;
  } else if (code == "_summary") {
    if (value != "true" && value != "text" && value != "data" && value != "count" && value != "false") {
      invalid(name, "_summary takes true, text, data, count or false");
    }
    out_.summary = value;
  } else if (code == "_elements") {
    out_.elements = value;
  } else if (code == "_include" || code == "_revinclude") {
    if (!modifier.empty() && modifier != "iterate" && modifier != "recurse") {
      invalid(name, "Unknown modifier :" + modifier + " for " + code + " (allowed: :iterate)");
    }
    searchimpl::IncludeSpec spec = searchimpl::parseIncludeSpec(model_, value);
    spec.iterate = spec.iterate || !modifier.empty();
    (code == "_include" ? out_.includes : out_.revincludes).push_back(std::move(spec));
  }
}

std::vector<std::string> Parser::resolveTypes(const SearchParams& params) {
  if (!opt_.compartmentType.empty()) {
    if (!searchimpl::compartmentTypeSupported(opt_.compartmentType)) {
      invalid("", "Compartment searches are not supported for " + opt_.compartmentType);
    }
    std::vector<std::string> types;
    if (opt_.types.size() == 1 && opt_.types[0] == "*") {
      types = searchimpl::compartmentResourceTypes(opt_.compartmentType);
      if (std::find(types.begin(), types.end(), opt_.compartmentType) == types.end()) {
        types.push_back(opt_.compartmentType);
      }
      std::sort(types.begin(), types.end());
    } else {
      for (const std::string& t : opt_.types) {
        if (t != opt_.compartmentType && searchimpl::compartmentParams(opt_.compartmentType, t).empty()) {
          invalid("", t + " resources are not part of the " + opt_.compartmentType + " compartment");
        }
        types.push_back(t);
      }
    }
    return types;
  }
  if (!opt_.systemLevel) return opt_.types;
  std::vector<std::string> types;
  for (const auto& [name, value] : params) {
    if (name != "_type") continue;
    for (const std::string& part : splitEscaped(value, ',')) {
      const std::string t = unescapeValue(part);
      if (!model_.isResourceType(t)) invalid("_type", "_type names an unknown resource type");
      if (std::find(types.begin(), types.end(), t) == types.end()) types.push_back(t);
      if (types.size() > opt_.limits.maxOrValues) tooCostly("_type", "_type lists too many types");
    }
  }
  if (types.empty()) types.push_back("");  // every type
  return types;
}

ParsedSearch Parser::run(const SearchParams& params) {
  if (params.size() > opt_.limits.maxParams) {
    tooCostly("", "A search takes at most " + std::to_string(opt_.limits.maxParams) + " parameters");
  }
  for (const auto& [name, value] : params) {
    if (!cleanUtf8(name) || !cleanUtf8(value)) {
      invalid(cleanUtf8(name) && name.size() <= 200 ? name : std::string(),
              "Search parameters must be UTF-8 text without NUL characters");
    }
    const size_t limit = name == "_cursor" ? opt_.limits.maxValueLength * 8 : opt_.limits.maxValueLength;
    if (name.size() > opt_.limits.maxNameLength || value.size() > limit) {
      tooCostly(name.size() > opt_.limits.maxNameLength ? std::string() : name,
                "Search parameter names are limited to " + std::to_string(opt_.limits.maxNameLength) +
                    " bytes and values to " + std::to_string(opt_.limits.maxValueLength));
    }
  }
  out_.count = std::min(opt_.defaultCount, opt_.maxCount);
  for (const std::string& t : resolveTypes(params)) out_.branches.push_back(Branch{t, {}});

  if (!opt_.compartmentType.empty()) {
    for (Branch& b : out_.branches) {
      Criterion c;
      c.kind = CritKind::Compartment;
      c.type = b.type;
      c.name = opt_.compartmentType;
      c.params = searchimpl::compartmentParams(opt_.compartmentType, b.type);
      c.compartmentType = opt_.compartmentType;
      c.compartmentId = opt_.compartmentId;
      b.criteria.push_back(std::move(c));
    }
  }

  for (const auto& [name, value] : params) {
    if (name == "_cursor") {
      if (opt_.criteriaOnly) invalid(name, "_cursor is not allowed here");
      cursorToken_ = value;
      continue;
    }
    if (name == "_format" || name == "_pretty") continue;  // about the exchange, not the search
    if (name == "_type" && opt_.systemLevel) {
      out_.linkParams.emplace_back(name, value);
      continue;
    }
    const std::string code = name.substr(0, name.find(':'));
    if (isResultParam(code)) {
      out_.resultParamsGiven = true;
      if (opt_.criteriaOnly) invalid(name, "Result parameter " + code + " is not allowed in conditional criteria");
      if (code == "_contained" || code == "_containedType") {
        if (opt_.strict) notSupported(name, "Parameter " + code + " is not supported");
        out_.warnings.push_back(
            Issue{Severity::Warning, IssueType::NotSupported, "Parameter " + code + " is not supported: ignored", name});
        continue;
      }
      parseResultParam(name, value);
      out_.linkParams.emplace_back(name, value);
      continue;
    }
    if (value.empty()) continue;  // "name=" states no criterion
    // One criterion per branch type; a parameter unknown to every type is ignored (lenient) or
    // refused (strict); one unknown to only some of the types is refused.
    std::vector<Criterion> parsed;
    std::string ignoredWhy;
    size_t ignored = 0;
    for (const Branch& b : out_.branches) {
      if (b.type.empty()) {
        if (code != "_id" && code != "_lastUpdated") {
          invalid(name, "A search across all types supports only _id and _lastUpdated; name the types with _type");
        }
      }
      try {
        parsed.push_back(parseCriterion(b.type, name, value, 0, name));
      } catch (const IgnoredParam& e) {
        ++ignored;
        ignoredWhy = e.diagnostics;
      }
    }
    if (ignored == out_.branches.size()) {
      if (opt_.strict || opt_.criteriaOnly) throw FhirError(400, IssueType::NotSupported, ignoredWhy, name);
      out_.warnings.push_back(Issue{Severity::Warning, IssueType::NotSupported, ignoredWhy + ": ignored", name});
      continue;
    }
    if (ignored > 0) invalid(name, ignoredWhy + " (the parameter must apply to every type searched)");
    for (size_t i = 0; i < parsed.size(); ++i) out_.branches[i].criteria.push_back(std::move(parsed[i]));
    out_.linkParams.emplace_back(name, value);
  }
  if (!sortValue_.empty()) parseSort(sortValue_);

  // What a cursor depends on: the types, the criteria and the sort, in order.
  uint64_t h = kFnvBasis;
  h = fnv1a(h, opt_.compartmentType + "/" + opt_.compartmentId + "|");
  for (const Branch& b : out_.branches) h = fnv1a(h, b.type + ",");
  for (const auto& [name, value] : out_.linkParams) {
    const std::string code = name.substr(0, name.find(':'));
    if (code == "_count" || code == "_total" || code == "_summary" || code == "_elements" || code == "_include" ||
        code == "_revinclude")
      continue;
    h = fnv1a(h, name);
    h = fnv1a(h, "=");
    h = fnv1a(h, value);
    h = fnv1a(h, "&");
  }
  out_.fingerprint = h;
  if (!cursorToken_.empty()) out_.cursor = decodeCursor(cursorToken_, h, out_.sort.size());
  if (out_.cursor) {
    bool known = false;
    for (const Branch& b : out_.branches) known = known || b.type.empty() || b.type == out_.cursor->type;
    if (!known) invalid("_cursor", "_cursor does not belong to this search");
  }
  return std::move(out_);
}

// --- base64url ---------------------------------------------------------------------------------

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url(const std::string& in) {
  std::string out;
  size_t i = 0;
  while (i + 2 < in.size()) {
    const uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += kB64[(n >> 18) & 63];
    out += kB64[(n >> 12) & 63];
    out += kB64[(n >> 6) & 63];
    out += kB64[n & 63];
    i += 3;
  }
  if (i + 1 == in.size()) {
    const uint32_t n = uint8_t(in[i]) << 16;
    out += kB64[(n >> 18) & 63];
    out += kB64[(n >> 12) & 63];
  } else if (i + 2 == in.size()) {
    const uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kB64[(n >> 18) & 63];
    out += kB64[(n >> 12) & 63];
    out += kB64[(n >> 6) & 63];
  }
  return out;
}

bool unbase64url(std::string_view in, std::string& out) {
  if (in.size() % 4 == 1) return false;
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : in) {
    const char* p = ch ? std::strchr(kB64, ch) : nullptr;
    if (!p) return false;
    acc = (acc << 6) | static_cast<uint32_t>(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return (acc & ((1u << bits) - 1)) == 0;  // no stray bits: one token per cursor
}

void putU64(std::string& s, uint64_t v) {
  for (int i = 7; i >= 0; --i) s += static_cast<char>((v >> (i * 8)) & 0xFF);
}
void putLen(std::string& s, size_t n) {
  s += static_cast<char>((n >> 8) & 0xFF);
  s += static_cast<char>(n & 0xFF);
}

class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  bool u8(uint8_t& v) {
    if (pos_ + 1 > s_.size()) return false;
    v = static_cast<uint8_t>(s_[pos_++]);
    return true;
  }
  bool u64(uint64_t& v) {
    if (pos_ + 8 > s_.size()) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(s_[pos_++]);
    return true;
  }
  bool str(std::string& v) {
    if (pos_ + 2 > s_.size()) return false;
    const size_t n = (static_cast<uint8_t>(s_[pos_]) << 8) | static_cast<uint8_t>(s_[pos_ + 1]);
    pos_ += 2;
    if (pos_ + n > s_.size()) return false;
    v.assign(s_.substr(pos_, n));
    pos_ += n;
    return true;
  }
  size_t pos() const { return pos_; }
  bool done() const { return pos_ == s_.size(); }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

constexpr uint8_t kCursorVersion = 1;

}  // namespace

// --- public helpers ----------------------------------------------------------------------------

std::optional<std::string> prefixUpperBound(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty()) {
    // The last code point: back up over continuation bytes.
    size_t start = s.size() - 1;
    while (start > 0 && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
    const std::string_view ch(s.data() + start, s.size() - start);
    uint32_t cp = 0;
    const uint8_t b0 = static_cast<uint8_t>(ch[0]);
    if (b0 < 0x80) cp = b0;
    else if ((b0 & 0xE0) == 0xC0 && ch.size() == 2) cp = ((b0 & 0x1F) << 6) | (ch[1] & 0x3F);
    else if ((b0 & 0xF0) == 0xE0 && ch.size() == 3) cp = ((b0 & 0x0F) << 12) | ((ch[1] & 0x3F) << 6) | (ch[2] & 0x3F);
    else if ((b0 & 0xF8) == 0xF0 && ch.size() == 4)
      cp = ((b0 & 0x07) << 18) | ((ch[1] & 0x3F) << 12) | ((ch[2] & 0x3F) << 6) | (ch[3] & 0x3F);
    else cp = 0x110000;  // not UTF-8: drop it and carry
    s.resize(start);
    uint32_t next = cp + 1;
    if (next >= 0xD800 && next <= 0xDFFF) next = 0xE000;
    if (next > 0x10FFFF) continue;  // no successor at this position: increment the one before
    if (next < 0x80) {
      s += static_cast<char>(next);
    } else if (next < 0x800) {
      s += static_cast<char>(0xC0 | (next >> 6));
      s += static_cast<char>(0x80 | (next & 0x3F));
    } else if (next < 0x10000) {
      s += static_cast<char>(0xE0 | (next >> 12));
      s += static_cast<char>(0x80 | ((next >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (next & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (next >> 18));
      s += static_cast<char>(0x80 | ((next >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((next >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (next & 0x3F));
    }
    return s;
  }
  return std::nullopt;
}

std::vector<std::string> splitEscaped(std::string_view s, char sep) {
  std::vector<std::string> out(1);
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      out.back() += s[i];
      out.back() += s[++i];
    } else if (s[i] == sep) {
      out.emplace_back();
    } else {
      out.back() += s[i];
    }
  }
  return out;
}

std::string unescapeValue(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == ',' || s[i + 1] == '|' || s[i + 1] == '$' || s[i + 1] == '\\')) {
      out += s[++i];
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string encodeQueryComponent(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == ':' || c == '/' || c == ',') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string encodeCursor(const Cursor& c, uint64_t fingerprint) {
  std::string p;
  p += static_cast<char>(kCursorVersion);
  p += static_cast<char>(c.keys.size());
  for (const SqlValue& v : c.keys) {
    if (const auto* i = std::get_if<int64_t>(&v)) {
      p += '\1';
      putU64(p, static_cast<uint64_t>(*i));
    } else if (const auto* d = std::get_if<double>(&v)) {
      p += '\2';
      uint64_t bits;
      std::memcpy(&bits, d, sizeof bits);
      putU64(p, bits);
    } else if (const auto* s = std::get_if<std::string>(&v)) {
      p += '\3';
      const std::string_view t = std::string_view(*s).substr(0, 0xFFFF);
      putLen(p, t.size());
      p += t;
    } else {
      p += '\0';
    }
  }
  putLen(p, c.type.size());
  p += c.type;
  putLen(p, c.id.size());
  p += c.id;
  putU64(p, fnv1a(fnv1a(kFnvBasis, std::to_string(fingerprint)), p));
  return base64url(p);
}

Cursor decodeCursor(std::string_view token, uint64_t fingerprint, size_t nkeys) {
  auto bad = [] { invalid("_cursor", "_cursor is not a cursor of this search (use the links of the previous page)"); };
  std::string p;
  if (token.empty() || !unbase64url(token, p) || p.size() < 12) bad();
  const std::string_view body(p.data(), p.size() - 8);
  Reader check(std::string_view(p).substr(p.size() - 8));
  uint64_t sum = 0;
  check.u64(sum);
  if (sum != fnv1a(fnv1a(kFnvBasis, std::to_string(fingerprint)), body)) bad();
  Reader r(body);
  Cursor c;
  uint8_t version = 0, n = 0;
  if (!r.u8(version) || version != kCursorVersion || !r.u8(n) || n != nkeys) bad();
  for (uint8_t i = 0; i < n; ++i) {
    uint8_t tag = 0;
    if (!r.u8(tag)) bad();
    if (tag == 0) {
      c.keys.emplace_back(std::monostate{});
    } else if (tag == 1 || tag == 2) {
      uint64_t bits = 0;
      if (!r.u64(bits)) bad();
      if (tag == 1) {
        c.keys.emplace_back(static_cast<int64_t>(bits));
      } else {
        double d;
        std::memcpy(&d, &bits, sizeof d);
        if (std::isnan(d)) bad();
        c.keys.emplace_back(d);
      }
    } else if (tag == 3) {
      std::string s;
      if (!r.str(s)) bad();
      c.keys.emplace_back(std::move(s));
    } else {
      bad();
    }
  }
  if (!r.str(c.type) || !r.str(c.id) || !r.done() || c.id.empty() || c.id.size() > 64) bad();
  return c;
}

ParsedSearch parseSearch(const Model& model, const SearchParams& params, const ParseOptions& options) {
  Parser p(model, options);
  return p.run(params);
}

}  // namespace hearth::fhir::searchq
