#include "context.h"

#include <Poco/SHA1Engine.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "v2_tables.h"

namespace hearth::adapters {

namespace {

constexpr size_t kMaxErrors = 50;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool keepInUri(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == ':' || c == '/' || c == '@';
}

void percentEncode(std::string& out, unsigned char c) {
  static const char* kHex = "0123456789ABCDEF";
  out.push_back('%');
  out.push_back(kHex[c >> 4]);
  out.push_back(kHex[c & 0xF]);
}

// Name-based UUID (RFC 4122 version 5, SHA-1) in the URL namespace: the same name always gives
// the same UUID, so a message's fullUrls are stable across resends.
std::string nameUuid(std::string_view name) {
  static const unsigned char kUrlNamespace[16] = {0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1,
                                                  0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};
  Poco::SHA1Engine sha;
  sha.update(kUrlNamespace, sizeof kUrlNamespace);
  sha.update(name.data(), static_cast<unsigned>(name.size()));
  Poco::DigestEngine::Digest d = sha.digest();
  d[6] = static_cast<unsigned char>((d[6] & 0x0F) | 0x50);
  d[8] = static_cast<unsigned char>((d[8] & 0x3F) | 0x80);
  std::string out;
  static const char* kHex = "0123456789abcdef";
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[d[static_cast<size_t>(i)] >> 4]);
    out.push_back(kHex[d[static_cast<size_t>(i)] & 0xF]);
  }
  return out;
}

const char* kindName(IdKind k) {
  switch (k) {
    case IdKind::Mrn: return "mrn";
    case IdKind::Visit: return "visit";
    case IdKind::Account: return "account";
    case IdKind::Placer: return "placer";
    case IdKind::Filler: return "filler";
    case IdKind::Staff: return "staff";
    case IdKind::Location: return "location";
    case IdKind::Organization: return "organization";
    case IdKind::Transaction: return "transaction";
    case IdKind::Other: return "id";
  }
  return "id";
}

std::string fhirDateOf(std::string_view dtm) {
  if (dtm.empty()) return {};
  auto dt = hl7::DateTime::parse(dtm);
  return dt ? dt->toFhirDate() : std::string{};
}

// Plain text for FHIR: CR LF and lone CR become LF; leading and trailing whitespace trimmed.
std::string tidy(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < in.size() && in[i + 1] == '\n') ++i;
    } else {
      out.push_back(in[i]);
    }
  }
  const char* ws = " \t\n";
  const size_t first = out.find_first_not_of(ws);
  if (first == std::string::npos) return {};
  const size_t last = out.find_last_not_of(ws);
  return out.substr(first, last - first + 1);
}

}  // namespace

std::string shortCode(std::string_view s) {
  if (s.empty() || s.size() > 7) return "(unreadable)";
  for (char ch : s) {
    if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_')) {
      return "(unreadable)";
    }
  }
  return std::string(s);
}

std::string cleanText(std::string_view s) {
  std::string out;
  for (char ch : s) {
    if (static_cast<unsigned char>(ch) >= 0x20) out.push_back(ch);
  }
  const size_t first = out.find_first_not_of(' ');
  if (first == std::string::npos) return {};
  return out.substr(first, out.find_last_not_of(' ') - first + 1);
}

std::string codeSafe(std::string_view s) {
  std::string out;
  bool space = false;
  for (char ch : s) {
    if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
      space = !out.empty();
      continue;
    }
    if (static_cast<unsigned char>(ch) < 0x20) continue;
    if (space) out.push_back(' ');
    space = false;
    out.push_back(ch);
  }
  return out;
}

std::string uriSafe(std::string_view s) {
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (keepInUri(c)) {
      out.push_back(ch);
    } else {
      percentEncode(out, c);
    }
  }
  return out;
}

std::string queryEscape(std::string_view s) {
  std::string escaped;
  for (char c : s) {
    if (c == '\\' || c == '|' || c == ',' || c == '$') escaped.push_back('\\');
    escaped.push_back(c);
  }
  return uriSafe(escaped);
}

Ctx::Ctx(const hl7::Message& m, const MappingOptions& o) : msg(m), opts(o) {
  facility_ = msg.get("MSH-4.1");
  if (facility_.empty()) facility_ = msg.get("MSH-4.2");
  if (facility_.empty()) facility_ = msg.get("MSH-3.1");
  if (facility_.empty()) facility_ = "unknown";
  if (!opts.source.empty()) {
    source_ = opts.source;
  } else {
    source_ = "urn:hearth:v2:" + uriSafe(msg.get("MSH-3.1")) + ":" + uriSafe(msg.get("MSH-4.1"));
  }
  if (auto sent = hl7::DateTime::from(msg.at("MSH-7"))) mshOffset_ = sent->offsetMinutes;
  std::map<std::string, int> counts;
  for (const hl7::Segment& s : msg.segments()) sequences_[&s] = ++counts[s.id()];
}

// ---- problems ------------------------------------------------------------------------------

namespace {
hl7::AckError makeError(int code, char severity, const Loc& where, std::string text) {
  hl7::AckError e;
  e.hl7Code = code;
  e.severity = severity;
  e.segmentId = where.segment;
  e.segmentSequence = where.sequence;
  e.field = where.field;
  e.repetition = where.repetition;
  e.component = where.component;
  e.userMessage = std::move(text);
  return e;
}
}  // namespace

void Ctx::error(int hl7Code, const Loc& where, std::string text) {
  if (result_.errors.size() < kMaxErrors) result_.errors.push_back(makeError(hl7Code, 'E', where, std::move(text)));
}

void Ctx::warn(int hl7Code, const Loc& where, std::string text) {
  if (result_.warnings.size() < kMaxErrors) result_.warnings.push_back(makeError(hl7Code, 'W', where, std::move(text)));
}

Loc Ctx::at(const hl7::Segment* seg, int field, int repetition, int component) const {
  Loc l;
  if (seg) {
    l.segment = seg->id();
    auto it = sequences_.find(seg);
    l.sequence = it == sequences_.end() ? 1 : it->second;
  }
  l.field = field;
  l.repetition = repetition;
  l.component = component;
  return l;
}

// ---- entries -------------------------------------------------------------------------------

std::string Ctx::addEntry(std::string_view method, std::string_view type, const Identity& id, Json resource,
                          bool* added) {
  const std::string key = std::string(type) + "|" + id.system + "|" + id.value;
  for (const Entry& e : entries_) {
    if (e.key == key) {
      if (added) *added = false;
      return e.fullUrl;
    }
  }
  if (added) *added = true;
  const std::string fullUrl = urlFor(type, id);
  // resourceType and meta first, then the resource's own members in the order they were set.
  Json r = Json::object();
  r.set("resourceType", std::string(type));
  r.set("meta", meta());
  for (const auto& [k, v] : resource.members()) {
    if (k != "resourceType" && k != "meta") r.set(k, v);
  }
  const std::string criteria = "identifier=" + queryEscape(id.system) + "|" + queryEscape(id.value);
  Json request = Json::object();
  request.set("method", std::string(method));
  if (method == "PUT") {
    request.set("url", std::string(type) + "?" + criteria);
  } else {
    request.set("url", std::string(type));
    request.set("ifNoneExist", criteria);
  }
  Json entry = Json::object();
  entry.set("fullUrl", fullUrl);
  entry.set("resource", std::move(r));
  entry.set("request", std::move(request));
  entries_.push_back(Entry{key, fullUrl, std::string(type), std::move(entry)});
  return fullUrl;
}

std::string Ctx::update(std::string_view type, const Identity& id, Json resource, bool* added) {
  return addEntry("PUT", type, id, std::move(resource), added);
}

std::string Ctx::create(std::string_view type, const Identity& id, Json resource, bool* added) {
  return addEntry("POST", type, id, std::move(resource), added);
}

std::string Ctx::urlFor(std::string_view type, const Identity& id) {
  return "urn:uuid:" + nameUuid(std::string(type) + "|" + id.system + "|" + id.value);
}

MappingResult Ctx::finish() {
  MappingResult r = std::move(result_);
  if (!r.errors.empty()) return r;
  Json bundle = Json::object();
  bundle.set("resourceType", "Bundle");
  bundle.set("type", "transaction");
  Json list = Json::array();
  for (Entry& e : entries_) {
    ++r.counts[e.type];
    list.push(std::move(e.json));
  }
  bundle.set("entry", std::move(list));
  r.bundle = bundle.dump();
  return r;
}

// ---- systems -------------------------------------------------------------------------------

std::string Ctx::localSystem(IdKind kind) const {
  if (kind == IdKind::Mrn && !opts.defaultMrnSystem.empty()) return opts.defaultMrnSystem;
  return opts.localPrefix + kindName(kind) + ":" + uriSafe(facility_);
}

std::string Ctx::systemFor(const hl7::HD& a, IdKind kind) const {
  if (a.empty()) return localSystem(kind);
  for (const std::string* key : {&a.namespaceId, &a.universalId}) {
    if (key->empty()) continue;
    auto it = opts.authoritySystems.find(*key);
    if (it != opts.authoritySystems.end()) return it->second;
  }
  if (!a.universalId.empty()) {
    const std::string type = upper(a.universalIdType);
    if (type == "ISO") return "urn:oid:" + uriSafe(a.universalId);
    if (type == "UUID") return "urn:uuid:" + uriSafe(lower(a.universalId));
    if (type == "URI" || type == "URL") return uriSafe(a.universalId);
  }
  const std::string ns = upper(a.namespaceId);
  if (ns == "NPI") return "http://hl7.org/fhir/sid/us-npi";
  if (ns == "USSSA" || ns == "SSA") return "http://hl7.org/fhir/sid/us-ssn";
  if (!a.namespaceId.empty()) return opts.namespacePrefix + uriSafe(a.namespaceId);
  return opts.namespacePrefix + uriSafe(a.universalId);
}

std::string Ctx::codingSystem(std::string_view name) const {
  if (name.empty()) return {};
  auto it = opts.codingSystems.find(name);
  if (it != opts.codingSystems.end()) return it->second;
  if (auto uri = tables::codingSystemUri(name)) return *uri;
  return opts.localCodeSystemPrefix + uriSafe(facility_) + ":" + uriSafe(name);
}

// ---- data types ----------------------------------------------------------------------------

Identity Ctx::identityOf(const hl7::CX& cx, IdKind kind) const {
  if (cx.id.empty()) return {};
  hl7::HD authority = cx.assigningAuthority;
  // SSNs are often sent as type SS without an authority.
  if (authority.empty() && cx.identifierTypeCode == "SS") return {"http://hl7.org/fhir/sid/us-ssn", cx.id};
  if (authority.empty() && cx.identifierTypeCode == "NPI") return {"http://hl7.org/fhir/sid/us-npi", cx.id};
  return {systemFor(authority, kind), cx.id};
}

Identity Ctx::identityOf(const hl7::EI& ei, IdKind kind) const {
  if (ei.entityId.empty()) return {};
  return {systemFor(ei.assigner, kind), ei.entityId};
}

Json Ctx::identifier(const Identity& id, std::string_view typeCode) const {
  if (!id.valid()) return {};
  Json j = Json::object();
  if (!typeCode.empty()) {
    if (tables::contains("0203", typeCode)) {
      j.set("type", tableConcept("0203", typeCode));
    } else {
      j.set("type", Json::object().set("text", std::string(typeCode)));
    }
  }
  j.set("system", id.system);
  j.set("value", id.value);
  return j;
}

Json Ctx::identifier(const hl7::CX& cx, IdKind kind) const {
  Json j = identifier(identityOf(cx, kind), cx.identifierTypeCode);
  if (j.empty()) return j;
  std::string start = fhirDateOf(cx.effectiveDate), end = fhirDateOf(cx.expirationDate);
  if (!start.empty() || !end.empty()) j.set("period", Json::object().set("start", start).set("end", end));
  return j;
}

Json Ctx::humanName(const hl7::XPN& x) const {
  Json n = Json::object();
  if (auto use = tables::translate("name-use", x.nameTypeCode)) n.set("use", std::string(*use));
  std::string family = x.family;
  if (!x.familyPrefix.empty() && !family.empty()) family = x.familyPrefix + " " + family;
  n.set("family", family);
  Json given = Json::array();
  given.push(x.given).push(x.middle);
  n.set("given", std::move(given));
  n.set("prefix", Json::array().push(x.prefix));
  n.set("suffix", Json::array().push(x.suffix).push(x.degree).push(x.professionalSuffix));
  std::string start = fhirDateOf(x.effectiveDate), end = fhirDateOf(x.expirationDate);
  if (!start.empty() || !end.empty()) n.set("period", Json::object().set("start", start).set("end", end));
  if (n.find("family") == nullptr && n.find("given") == nullptr) return {};
  return n;
}

Json Ctx::humanName(const hl7::XCN& x) const {
  Json n = Json::object();
  n.set("family", x.family);
  n.set("given", Json::array().push(x.given).push(x.middle));
  n.set("prefix", Json::array().push(x.prefix));
  n.set("suffix", Json::array().push(x.suffix).push(x.degree).push(x.professionalSuffix));
  if (n.find("family") == nullptr && n.find("given") == nullptr) return {};
  return n;
}

Json Ctx::address(const hl7::XAD& x) const {
  Json a = Json::object();
  const std::string& type = x.addressType;
  if (type == "M") {
    a.set("type", "postal");
  } else if (auto use = tables::translate("address-use", type)) {
    a.set("use", std::string(*use));
  }
  std::string street = x.street;
  if (street.empty() && !x.streetName.empty()) {
    street = x.dwellingNumber.empty() ? x.streetName : x.dwellingNumber + " " + x.streetName;
  }
  a.set("line", Json::array().push(street).push(x.otherDesignation));
  a.set("city", x.city);
  a.set("district", x.county);
  a.set("state", x.state);
  a.set("postalCode", x.zip);
  a.set("country", x.country);
  if (a.find("line") == nullptr && a.find("city") == nullptr && a.find("postalCode") == nullptr &&
      a.find("state") == nullptr && a.find("country") == nullptr && a.find("district") == nullptr) {
    return {};
  }
  std::string start = fhirDateOf(x.effectiveDate), end = fhirDateOf(x.expirationDate);
  if (!start.empty() || !end.empty()) a.set("period", Json::object().set("start", start).set("end", end));
  return a;
}

Json Ctx::contactPoint(const hl7::XTN& x, std::string_view defaultUse) const {
  const std::string value = cleanText(x.contactValue());
  if (value.empty()) return {};
  Json c = Json::object();
  std::string system;
  if (auto s = tables::translate("contact-point-system", x.equipmentType)) system = std::string(*s);
  if (system.empty()) system = x.isEmail() ? "email" : "phone";
  c.set("system", system);
  c.set("value", value);
  std::string use;
  if (x.equipmentType == "CP") {
    use = "mobile";
  } else if (auto u = tables::translate("contact-point-use", x.useCode)) {
    use = std::string(*u);
  } else if (x.useCode.empty() && system != "email") {
    use = std::string(defaultUse);
  }
  c.set("use", use);
  return c;
}

Json Ctx::coding(std::string_view rawCode, std::string_view display, std::string_view systemName,
                 std::string_view version, std::string_view defaultTable) const {
  const std::string code = codeSafe(rawCode);
  if (code.empty()) return {};
  Json c = Json::object();
  std::string system;
  std::string tableId;
  if (!systemName.empty()) {
    system = codingSystem(systemName);
    if (systemName.size() == 7 && systemName.substr(0, 3) == "HL7") tableId = std::string(systemName.substr(3));
  } else if (!defaultTable.empty() && tables::contains(defaultTable, code)) {
    // No coding system named: the field's own table, when the code is one of its codes (a code
    // outside it stays without a system rather than be claimed by the table).
    system = std::string(tables::systemOf(defaultTable));
    tableId = std::string(defaultTable);
  }
  std::string shown(display);
  if (shown.empty() && !tableId.empty()) shown = std::string(tables::display(tableId, code));
  c.set("system", system);
  c.set("version", std::string(version));
  c.set("code", code);
  c.set("display", shown);
  return c;
}

Json Ctx::codeableConcept(const hl7::CWE& x, std::string_view defaultTable) const {
  Json cc = Json::object();
  Json codings = Json::array();
  codings.push(coding(x.code, x.text, x.system, x.systemVersion, defaultTable));
  codings.push(coding(x.altCode, x.altText, x.altSystem, x.altSystemVersion));
  codings.push(coding(x.alt2Code, x.alt2Text, x.alt2System));
  const bool coded = !codings.empty();
  cc.set("coding", std::move(codings));
  if (!x.originalText.empty()) {
    cc.set("text", x.originalText);
  } else if (!coded) {
    cc.set("text", x.text.empty() ? x.altText : x.text);
  }
  return cc;
}

Json Ctx::tableCoding(std::string_view tableId, std::string_view code) const {
  if (code.empty()) return {};
  const generated::CodeTable* t = tables::table(tableId);
  if (!t) return {};
  Json c = Json::object();
  c.set("system", std::string(t->system));
  c.set("code", std::string(code));
  c.set("display", std::string(tables::display(tableId, code)));
  return c;
}

Json Ctx::tableConcept(std::string_view tableId, std::string_view code, std::string_view text) const {
  Json cc = Json::object();
  const bool known = tables::contains(tableId, code);
  if (known) cc.set("coding", Json::array().push(tableCoding(tableId, code)));
  std::string t(text);
  if (t.empty() && !known) t = std::string(code);  // an unknown code is kept as text
  cc.set("text", t);
  return cc;
}

std::optional<std::string> Ctx::dateTimeOf(const hl7::DateTime& dt, const Loc& where) {
  std::optional<int> assumed = mshOffset_ ? mshOffset_ : opts.defaultUtcOffsetMinutes;
  auto out = dt.toFhirDateTime(assumed);
  if (!out) error(102, where, "time without a UTC offset (and none configured for the sender)");
  return out;
}

std::optional<std::string> Ctx::dateTime(const hl7::Element& e, const Loc& where) {
  if (e.empty() || e.isNull()) return std::nullopt;
  auto dt = hl7::DateTime::from(e);
  if (!dt) {
    if (e.subcomponent(1).empty()) return std::nullopt;  // e.g. only TS-2 degree of precision
    error(102, where, "not a valid date/time (expected YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ])");
    return std::nullopt;
  }
  return dateTimeOf(*dt, where);
}

std::optional<std::string> Ctx::date(const hl7::Element& e, const Loc& where) {
  if (e.empty() || e.isNull()) return std::nullopt;
  auto dt = hl7::DateTime::from(e);
  if (!dt) {
    if (e.subcomponent(1).empty()) return std::nullopt;
    error(102, where, "not a valid date (expected YYYY[MM[DD]])");
    return std::nullopt;
  }
  return dt->toFhirDate();
}

std::optional<std::string> Ctx::instant(const hl7::Element& e, const Loc& where) {
  if (e.empty() || e.isNull()) return std::nullopt;
  auto dt = hl7::DateTime::from(e);
  if (!dt) {
    if (e.subcomponent(1).empty()) return std::nullopt;
    error(102, where, "not a valid date/time");
    return std::nullopt;
  }
  if (dt->precision < hl7::DateTime::Precision::Hour) {
    warn(102, where, "a date without a time cannot be an instant: left out");
    return std::nullopt;
  }
  return dateTimeOf(*dt, where);
}

std::string Ctx::text(const hl7::Element& e) const {
  if (e.empty() || e.isNull()) return {};
  const hl7::Encoding& enc = e.encoding();
  const std::string_view raw = e.subcomponent(1).raw();
  if (!hl7::hasEscapes(raw, enc)) return tidy(raw);
  const std::string br = std::string(1, enc.escape) + ".br" + enc.escape;
  std::string rebuilt;
  size_t i = 0;
  while (i < raw.size()) {
    if (raw[i] != enc.escape) {
      rebuilt.push_back(raw[i++]);
      continue;
    }
    const size_t close = raw.find(enc.escape, i + 1);
    if (close == std::string_view::npos) {  // no closing escape: the sender meant a backslash
      rebuilt.append(raw.substr(i));
      break;
    }
    const std::string_view seq = raw.substr(i + 1, close - i - 1);
    if (seq == "H" || seq == "N") {
      // highlighting on/off: no meaning in plain text
    } else if (seq.substr(0, 3) == ".sp") {
      int lines = 1;
      if (seq.size() > 3) {
        lines = std::atoi(std::string(seq.substr(3)).c_str());
        lines = std::clamp(lines, 1, 20);
      }
      for (int n = 0; n < lines; ++n) rebuilt += br;
    } else if (seq.substr(0, 3) == ".in" || seq.substr(0, 3) == ".ti" || seq.substr(0, 3) == ".sk" ||
               seq == ".ce" || seq == ".fi" || seq == ".nf") {
      // indentation, centring and fill commands: dropped
    } else {
      rebuilt.append(raw.substr(i, close - i + 1));
    }
    i = close + 1;
  }
  return tidy(hl7::unescape(rebuilt, enc));
}

std::string Ctx::textAllRepetitions(const hl7::Element& e) const {
  std::string out;
  for (const hl7::Element& rep : e.repetitions()) {
    std::string t = text(rep);
    if (t.empty()) continue;
    if (!out.empty()) out.push_back('\n');
    out += t;
  }
  return out;
}

Json Ctx::meta() const { return Json::object().set("source", source_); }

Json Ctx::reference(const std::string& fullUrl, std::string_view display) {
  Json r = Json::object();
  r.set("reference", fullUrl);
  r.set("display", std::string(display));
  return r;
}

Json Ctx::notes(const std::vector<const hl7::Segment*>& ntes) const {
  Json list = Json::array();
  for (const hl7::Segment* n : ntes) {
    std::string t = textAllRepetitions(n->field(3));
    if (!t.empty()) list.push(Json::object().set("text", t));
  }
  return list;
}

}  // namespace hearth::adapters
