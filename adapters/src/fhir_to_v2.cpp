// FHIR R4 -> HL7 v2.5.1 outbound mapping (see fhir_to_v2.h and adapters/README.md, "Outbound").
#include "hearth/adapters/fhir_to_v2.h"

#include <rapidjson/document.h>

#include <cctype>
#include <cstdint>
#include <vector>

#include "hearth/hl7/message.h"

namespace hearth::adapters {

namespace {

using Value = rapidjson::Value;
constexpr const char* kVersion = "2.5.1";

// Numbers are kept as their source text so that decimals (money, quantities) are never rounded.
rapidjson::Document parseResource(std::string_view json, std::string_view what) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseNumbersAsStringsFlag>(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) throw OutboundError(std::string(what) + " is not a JSON object");
  return d;
}

const Value* member(const Value& v, const char* name) {
  if (!v.IsObject()) return nullptr;
  auto it = v.FindMember(name);
  return it == v.MemberEnd() ? nullptr : &it->value;
}

std::string str(const Value& v, const char* name) {
  const Value* m = member(v, name);
  return m && m->IsString() ? std::string(m->GetString(), m->GetStringLength()) : std::string();
}

const Value* first(const Value& v, const char* name) {
  const Value* m = member(v, name);
  if (m && m->IsArray() && !m->Empty()) return &(*m)[0];
  if (m && m->IsObject()) return m;
  return nullptr;
}

template <class Fn>
void forEach(const Value& v, const char* name, Fn&& fn) {
  const Value* m = member(v, name);
  if (!m || !m->IsArray()) return;
  for (const Value& e : m->GetArray()) fn(e);
}

// "Patient/123", "https://x/fhir/Patient/123", "Patient/123/_history/2" -> {type, id}.
std::optional<std::pair<std::string, std::string>> splitReference(std::string_view ref) {
  if (ref.empty() || ref.rfind("urn:", 0) == 0 || ref[0] == '#') return std::nullopt;
  const size_t hist = ref.find("/_history/");
  if (hist != std::string_view::npos) ref = ref.substr(0, hist);
  const size_t slash = ref.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  const std::string_view id = ref.substr(slash + 1);
  std::string_view head = ref.substr(0, slash);
  const size_t prev = head.rfind('/');
  const std::string_view type = prev == std::string_view::npos ? head : head.substr(prev + 1);
  if (type.empty() || id.empty() || !std::isupper(static_cast<unsigned char>(type[0]))) return std::nullopt;
  return std::make_pair(std::string(type), std::string(id));
}

// Resolves a Reference element to a parsed resource of `expectedType` (any type when empty).
std::optional<rapidjson::Document> resolveRef(const Value* reference, std::string_view expectedType,
                                              const Resolver& resolve) {
  if (!reference || !resolve) return std::nullopt;
  const auto parts = splitReference(str(*reference, "reference"));
  if (!parts || (!expectedType.empty() && parts->first != expectedType)) return std::nullopt;
  const auto json = resolve(parts->first, parts->second);
  if (!json) return std::nullopt;
  rapidjson::Document d;
  d.Parse<rapidjson::kParseNumbersAsStringsFlag>(json->data(), json->size());
  if (d.HasParseError() || !d.IsObject()) return std::nullopt;
  return d;
}

// ---- exact decimals (amounts) ------------------------------------------------------------------

// A decimal as unscaled integer and scale (digits after the point). Enough for money: 18 digits.
struct Decimal {
  __int128 unscaled = 0;
  int scale = 0;
};

std::optional<Decimal> parseDecimal(std::string_view s) {
  Decimal d;
  bool neg = false, dot = false, digits = false;
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '.' && !dot) {
      dot = true;
    } else if (c >= '0' && c <= '9') {
      if (d.scale > 12 || d.unscaled > (static_cast<__int128>(1) << 100)) return std::nullopt;
      d.unscaled = d.unscaled * 10 + (c - '0');
      if (dot) ++d.scale;
      digits = true;
    } else {
      return std::nullopt;  // exponents are not money
    }
  }
  if (!digits) return std::nullopt;
  if (neg) d.unscaled = -d.unscaled;
  return d;
}

Decimal rescale(Decimal d, int scale) {
  while (d.scale < scale) {
    d.unscaled *= 10;
    ++d.scale;
  }
  return d;
}

Decimal add(Decimal a, Decimal b) {
  const int s = std::max(a.scale, b.scale);
  a = rescale(a, s);
  b = rescale(b, s);
  return {a.unscaled + b.unscaled, s};
}

std::string toText(Decimal d) {
  const bool neg = d.unscaled < 0;
  __int128 u = neg ? -d.unscaled : d.unscaled;
  std::string digits;
  do {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(u % 10)));
    u /= 10;
  } while (u > 0);
  while (static_cast<int>(digits.size()) <= d.scale) digits.insert(digits.begin(), '0');
  if (d.scale > 0) digits.insert(digits.end() - d.scale, '.');
  return neg ? "-" + digits : digits;
}

// Money.value / Quantity.value as decimal text (numbers were parsed as strings).
std::string decimalText(const Value* v) {
  if (!v || !v->IsString()) return {};
  return std::string(v->GetString(), v->GetStringLength());
}

// ---- v2 value builders ---------------------------------------------------------------------------

std::string codeSystemName(std::string_view system) {
  static const std::pair<const char*, const char*> known[] = {
      {"http://loinc.org", "LN"},
      {"http://snomed.info/sct", "SCT"},
      {"http://hl7.org/fhir/sid/icd-10", "I10"},
      {"http://hl7.org/fhir/sid/icd-10-cm", "I10C"},
      {"http://hl7.org/fhir/sid/icd-9-cm", "I9C"},
      {"http://www.ama-assn.org/go/cpt", "C4"},
      {"http://www.nlm.nih.gov/research/umls/rxnorm", "RXNORM"},
      {"http://hl7.org/fhir/sid/ndc", "NDC"},
      {"http://hl7.org/fhir/sid/cvx", "CVX"},
      {"http://unitsofmeasure.org", "UCUM"},
  };
  for (const auto& [uri, name] : known)
    if (system == uri) return name;
  constexpr std::string_view v2 = "http://terminology.hl7.org/CodeSystem/v2-";
  if (system.rfind(v2, 0) == 0) return "HL7" + std::string(system.substr(v2.size()));
  // Local code systems made by the inbound mapping: urn:hearth:codesystem:<facility>:<name>.
  constexpr std::string_view local = "urn:hearth:codesystem:";
  if (system.rfind(local, 0) == 0) {
    const size_t colon = system.rfind(':');
    return std::string(system.substr(colon + 1));
  }
  return system.empty() ? std::string() : "L";
}

// CodeableConcept -> CWE in (seg, field, rep): primary and alternate triplet, CWE-9 text.
void setCwe(hl7::Segment& seg, int field, size_t rep, const Value* cc) {
  if (!cc || !cc->IsObject()) return;
  int triplet = 0;
  forEach(*cc, "coding", [&](const Value& c) {
    if (triplet >= 2 || str(c, "code").empty()) return;
    const int base = triplet * 3;
    seg.set(field, rep, base + 1, 0, str(c, "code"));
    seg.set(field, rep, base + 2, 0, str(c, "display"));
    seg.set(field, rep, base + 3, 0, codeSystemName(str(c, "system")));
    ++triplet;
  });
  const std::string text = str(*cc, "text");
  if (!text.empty()) {
    if (triplet == 0) seg.set(field, rep, 2, 0, text);
    seg.set(field, rep, 9, 0, text);
  }
}

std::string codingCode(const Value* cc) {
  if (!cc) return {};
  const Value* c = first(*cc, "coding");
  return c ? str(*c, "code") : std::string();
}

// HD as sub-components (inside CX-4 / EI-2..4 the caller picks the level).
void setAuthorityAsSubcomponents(hl7::Segment& seg, int field, size_t rep, int component,
                                 const AssigningAuthority& a) {
  seg.set(field, rep, component, 1, a.namespaceId);
  seg.set(field, rep, component, 2, a.universalId);
  seg.set(field, rep, component, 3, a.universalIdType);
}

// Identifier -> CX at (field, rep).
void setCx(hl7::Segment& seg, int field, size_t rep, const Value& ident, const OutboundOptions& o) {
  seg.set(field, rep, 1, 0, str(ident, "value"));
  const std::string system = str(ident, "system");
  if (!system.empty()) setAuthorityAsSubcomponents(seg, field, rep, 4, authorityForSystem(system, o));
  if (const Value* type = member(ident, "type")) seg.set(field, rep, 5, 0, codingCode(type));
}

// Identifier -> EI (entity id, namespace, universal id, type) as components of (field, rep).
void setEi(hl7::Segment& seg, int field, size_t rep, const std::string& value, const std::string& system,
           const OutboundOptions& o) {
  seg.set(field, rep, 1, 0, value);
  if (system.empty()) return;
  const AssigningAuthority a = authorityForSystem(system, o);
  seg.set(field, rep, 2, 0, a.namespaceId);
  seg.set(field, rep, 3, 0, a.universalId);
  seg.set(field, rep, 4, 0, a.universalIdType);
}

// HumanName -> XPN components starting at `offset` (XPN: 1 family, 2 given, 3 middle, 4 suffix,
// 5 prefix, 7 name type; XCN shifts them by one after its id).
void setName(hl7::Segment& seg, int field, size_t rep, int offset, const Value& name) {
  seg.set(field, rep, offset + 1, 0, str(name, "family"));
  std::vector<std::string> given;
  forEach(name, "given", [&](const Value& g) {
    if (g.IsString()) given.emplace_back(g.GetString(), g.GetStringLength());
  });
  if (!given.empty()) seg.set(field, rep, offset + 2, 0, given[0]);
  std::string middle;
  for (size_t i = 1; i < given.size(); ++i) middle += (i > 1 ? " " : "") + given[i];
  seg.set(field, rep, offset + 3, 0, middle);
  const Value* suffix = first(name, "suffix");
  if (suffix && suffix->IsString()) seg.set(field, rep, offset + 4, 0, suffix->GetString());
  const Value* prefix = first(name, "prefix");
  if (prefix && prefix->IsString()) seg.set(field, rep, offset + 5, 0, prefix->GetString());
}

std::string nameTypeFor(std::string_view use) {
  if (use == "official") return "L";
  if (use == "usual") return "D";
  if (use == "maiden") return "M";
  if (use == "nickname") return "N";
  if (use == "anonymous") return "S";
  if (use == "temp" || use == "old") return "A";
  return {};
}

// Practitioner (or a Reference with only a display) -> XCN at (field, rep).
void setXcn(hl7::Segment& seg, int field, size_t rep, const Value* reference, const Resolver& resolve,
            const OutboundOptions& o) {
  if (!reference) return;
  auto doc = resolveRef(reference, "Practitioner", resolve);
  if (!doc) {
    const std::string display = str(*reference, "display");
    if (!display.empty()) seg.set(field, rep, 2, 0, display);
    return;
  }
  if (const Value* id = first(*doc, "identifier")) {
    seg.set(field, rep, 1, 0, str(*id, "value"));
    const std::string system = str(*id, "system");
    if (!system.empty()) setAuthorityAsSubcomponents(seg, field, rep, 9, authorityForSystem(system, o));
  }
  if (const Value* name = first(*doc, "name")) setName(seg, field, rep, 1, *name);
}

std::string genderCode(std::string_view g) {
  if (g == "male") return "M";
  if (g == "female") return "F";
  if (g == "other") return "O";
  if (g == "unknown") return "U";
  return {};
}

// ---- segments ----------------------------------------------------------------------------------

hl7::Message newMessage(std::string_view type, std::string_view trigger, std::string_view structure,
                        const OutboundOptions& o) {
  if (o.controlId.empty()) throw OutboundError("no control id (MSH-10) given");
  hl7::Encoding enc;
  enc.charset = hl7::Charset::Utf8;  // FHIR text is Unicode
  hl7::Message msg(enc);
  hl7::Segment& msh = msg.segment("MSH");
  msh.set(3, o.sendingApplication);
  msh.set(4, o.sendingFacility);
  msh.set(5, o.receivingApplication);
  msh.set(6, o.receivingFacility);
  msh.set(7, o.timestamp);
  msh.set(9, 0, 1, 0, type);
  msh.set(9, 0, 2, 0, trigger);
  msh.set(9, 0, 3, 0, structure);
  msh.set(10, o.controlId);
  msh.set(11, o.processingId);
  msh.set(12, kVersion);
  // Original-mode acknowledgement: the partner answers one AA/AE/AR.
  return msg;
}

rapidjson::Document requirePatient(const Value& resource, const char* field, const Resolver& resolve) {
  const Value* subject = member(resource, field);
  if (!subject) throw OutboundError(std::string("the resource has no ") + field);
  auto patient = resolveRef(subject, "Patient", resolve);
  if (!patient) throw OutboundError(std::string(field) + " does not resolve to a live Patient");
  return std::move(*patient);
}

void addPid(hl7::Message& msg, const Value& patient, const std::string& accountNumber, const Resolver& resolve,
            const OutboundOptions& o) {
  hl7::Segment& pid = msg.addSegment("PID");
  pid.set(1, "1");
  size_t rep = 0;
  forEach(patient, "identifier", [&](const Value& id) {
    if (str(id, "value").empty()) return;
    setCx(pid, 3, rep++, id, o);
  });
  if (rep == 0) {
    // No business identifier: the FHIR id, under the sending application's authority.
    pid.set(3, 0, 1, 0, str(patient, "id"));
    pid.set(3, 0, 4, 1, o.sendingApplication);
  }
  rep = 0;
  forEach(patient, "name", [&](const Value& n) {
    setName(pid, 5, rep, 0, n);
    pid.set(5, rep, 7, 0, nameTypeFor(str(n, "use")));
    ++rep;
  });
  pid.set(7, fhirDateToV2(str(patient, "birthDate")));
  pid.set(8, genderCode(str(patient, "gender")));
  rep = 0;
  forEach(patient, "address", [&](const Value& a) {
    const Value* lines = member(a, "line");
    if (lines && lines->IsArray()) {
      if (lines->Size() > 0 && (*lines)[0].IsString()) pid.set(11, rep, 1, 0, (*lines)[0].GetString());
      if (lines->Size() > 1 && (*lines)[1].IsString()) pid.set(11, rep, 2, 0, (*lines)[1].GetString());
    }
    pid.set(11, rep, 3, 0, str(a, "city"));
    pid.set(11, rep, 4, 0, str(a, "state"));
    pid.set(11, rep, 5, 0, str(a, "postalCode"));
    pid.set(11, rep, 6, 0, str(a, "country"));
    const std::string use = str(a, "use");
    const std::string type = str(a, "type");
    pid.set(11, rep, 7, 0,
            type == "postal" ? "M" : use == "home" ? "H" : use == "work" ? "O" : use == "temp" ? "C" : "");
    pid.set(11, rep, 9, 0, str(a, "district"));
    ++rep;
  });
  size_t home = 0, work = 0;
  forEach(patient, "telecom", [&](const Value& t) {
    const std::string value = str(t, "value");
    if (value.empty()) return;
    const std::string system = str(t, "system"), use = str(t, "use");
    const bool isWork = use == "work";
    const int field = isWork ? 14 : 13;
    const size_t r = isWork ? work++ : home++;
    pid.set(field, r, 2, 0, isWork ? "WPN" : use == "mobile" ? "ORN" : "PRN");
    const std::string equip = system == "email" ? "Internet" : system == "fax" ? "FX"
                              : use == "mobile"  ? "CP"
                                                 : "PH";
    pid.set(field, r, 3, 0, equip);
    if (system == "email") pid.set(field, r, 4, 0, value);
    else pid.set(field, r, 1, 0, value);
  });
  pid.set(18, accountNumber);
  (void)resolve;
}

// PV1 from the Encounter when there is one; otherwise PV1-2 U (unknown), which the receiving
// system reads as "no visit".
void addPv1(hl7::Message& msg, const Value* encounterRef, const Resolver& resolve, const OutboundOptions& o) {
  hl7::Segment& pv1 = msg.addSegment("PV1");
  pv1.set(1, "1");
  auto enc = resolveRef(encounterRef, "Encounter", resolve);
  if (!enc) {
    pv1.set(2, "U");
    return;
  }
  const std::string cls = str(member(*enc, "class") ? *member(*enc, "class") : *enc, "code");
  pv1.set(2, cls == "IMP" || cls == "ACUTE" || cls == "NONAC" ? "I"
             : cls == "AMB"                                   ? "O"
             : cls == "EMER"                                  ? "E"
             : cls == "PRENC"                                 ? "P"
                                                              : "U");
  if (const Value* loc = first(*enc, "location")) {
    if (const Value* l = member(*loc, "location")) pv1.set(3, 0, 1, 0, str(*l, "display"));
  }
  forEach(*enc, "participant", [&](const Value& p) {
    const Value* type = first(p, "type");
    const std::string code = type ? codingCode(type) : std::string();
    const int field = code == "ATND" ? 7 : code == "REF" ? 8 : code == "CON" ? 9 : code == "ADM" ? 17 : 0;
    if (field && pv1.field(field).empty()) setXcn(pv1, field, 0, member(p, "individual"), resolve, o);
  });
  if (const Value* id = first(*enc, "identifier")) setCx(pv1, 19, 0, *id, o);
  if (const Value* period = member(*enc, "period")) {
    pv1.set(44, fhirDateToV2(str(*period, "start")));
    pv1.set(45, fhirDateToV2(str(*period, "end")));
  }
}

// Identifier whose type is `typeCode` (PLAC, FILL), else nullptr.
const Value* identifierOfType(const Value& resource, std::string_view typeCode) {
  const Value* found = nullptr;
  forEach(resource, "identifier", [&](const Value& id) {
    if (!found && member(id, "type") && codingCode(member(id, "type")) == typeCode) found = &id;
  });
  return found;
}

std::string priorityCode(std::string_view p) {
  if (p == "stat") return "S";
  if (p == "asap") return "A";
  if (p == "urgent") return "T";
  if (p == "routine") return "R";
  return {};
}

std::string orderStatusCode(std::string_view status, OrderControl control) {
  if (control == OrderControl::CA) return "CA";
  if (status == "on-hold") return "HD";
  if (status == "completed") return "CM";
  if (status == "entered-in-error") return "ER";
  return "SC";  // scheduled: active, not yet performed
}

const char* controlText(OrderControl c) {
  switch (c) {
    case OrderControl::NW: return "NW";
    case OrderControl::XO: return "XO";
    case OrderControl::CA: return "CA";
    default: return "";
  }
}

// Coverage -> IN1 (payer from Coverage.payor Organization).
void addIn1(hl7::Message& msg, int setId, const Value& coverage, const Resolver& resolve, const OutboundOptions& o) {
  hl7::Segment& in1 = msg.addSegment("IN1");
  in1.set(1, std::to_string(setId));
  std::string plan, group;
  forEach(coverage, "class", [&](const Value& c) {
    const std::string t = codingCode(member(c, "type"));
    if (t == "plan" && plan.empty()) plan = str(c, "value");
    if (t == "group" && group.empty()) group = str(c, "value");
  });
  in1.set(2, 0, 1, 0, plan);
  if (auto org = resolveRef(first(coverage, "payor"), "Organization", resolve)) {
    if (const Value* id = first(*org, "identifier")) setCx(in1, 3, 0, *id, o);
    in1.set(4, 0, 1, 0, str(*org, "name"));
  } else if (const Value* payor = first(coverage, "payor")) {
    in1.set(4, 0, 1, 0, str(*payor, "display"));
  }
  in1.set(8, group);
  if (const Value* period = member(coverage, "period")) {
    in1.set(12, fhirDateToV2(str(*period, "start")));
    in1.set(13, fhirDateToV2(str(*period, "end")));
  }
  in1.set(15, 0, 1, 0, codingCode(member(coverage, "type")));
  const std::string rel = codingCode(member(coverage, "relationship"));
  in1.set(17, 0, 1, 0,
          rel == "self" ? "SEL" : rel == "spouse" ? "SPO" : rel == "child" ? "CHD" : rel.empty() ? "" : "OTH");
  if (const Value* order = member(coverage, "order")) in1.set(22, decimalText(order));
  std::string policy = str(coverage, "subscriberId");
  if (policy.empty())
    if (const Value* id = first(coverage, "identifier")) policy = str(*id, "value");
  in1.set(36, policy);
}

}  // namespace

// ---- public helpers ------------------------------------------------------------------------------

AssigningAuthority authorityForSystem(std::string_view system, const OutboundOptions& o) {
  for (const auto& [ns, sys] : o.authoritySystems)
    if (sys == system) return {ns, "", ""};
  if (system.rfind("urn:oid:", 0) == 0) return {"", std::string(system.substr(8)), "ISO"};
  if (system.rfind("urn:uuid:", 0) == 0) return {"", std::string(system.substr(9)), "UUID"};
  if (system == "http://hl7.org/fhir/sid/us-npi") return {"NPI", "", ""};
  if (system == "http://hl7.org/fhir/sid/us-ssn") return {"USSSA", "", ""};
  if (!o.namespacePrefix.empty() && system.rfind(o.namespacePrefix, 0) == 0)
    return {std::string(system.substr(o.namespacePrefix.size())), "", ""};
  // urn:hearth:<kind>:<facility> (identifiers the inbound mapping scoped to a sender).
  constexpr std::string_view local = "urn:hearth:";
  if (system.rfind(local, 0) == 0) {
    const size_t colon = system.find(':', local.size());
    if (colon != std::string_view::npos) return {std::string(system.substr(colon + 1)), "", ""};
  }
  if (system.rfind("http://", 0) == 0 || system.rfind("https://", 0) == 0)
    return {"", std::string(system), "URI"};
  return {std::string(system), "", ""};
}

std::string fhirDateToV2(std::string_view d) {
  // YYYY[-MM[-DD[Thh:mm[:ss[.fff]][Z|+hh:mm]]]]
  std::string out;
  size_t i = 0;
  auto digits = [&](size_t n) {
    if (i + n > d.size()) return false;
    for (size_t k = 0; k < n; ++k)
      if (!std::isdigit(static_cast<unsigned char>(d[i + k]))) return false;
    out.append(d.substr(i, n));
    i += n;
    return true;
  };
  if (!digits(4)) return {};
  for (int part = 0; part < 2 && i < d.size() && d[i] == '-'; ++part) {
    ++i;
    if (!digits(2)) return {};
  }
  if (i < d.size() && d[i] == 'T') {
    ++i;
    if (!digits(2) || i >= d.size() || d[i] != ':') return {};
    ++i;
    if (!digits(2)) return {};
    if (i < d.size() && d[i] == ':') {
      ++i;
      if (!digits(2)) return {};
      if (i < d.size() && d[i] == '.') {
        out += '.';
        ++i;
        size_t n = 0;
        while (i < d.size() && std::isdigit(static_cast<unsigned char>(d[i])) && n < 4) {
          out += d[i++];
          ++n;
        }
        while (i < d.size() && std::isdigit(static_cast<unsigned char>(d[i]))) ++i;
      }
    }
    if (i < d.size() && d[i] == 'Z') {
      out += "+0000";
      ++i;
    } else if (i + 6 <= d.size() && (d[i] == '+' || d[i] == '-') && d[i + 3] == ':') {
      out += d[i];
      out.append(d.substr(i + 1, 2));
      out.append(d.substr(i + 4, 2));
      i += 6;
    }
  }
  return i == d.size() ? out : std::string();
}

OrderControl orderControlFor(std::string_view status, long long version, bool deleted) {
  if (deleted || status == "revoked" || status == "entered-in-error") return OrderControl::CA;
  if (status == "active" || status == "on-hold") return version <= 1 ? OrderControl::NW : OrderControl::XO;
  return OrderControl::None;  // draft (not yet an order), completed, unknown: nothing to tell
}

// ---- ServiceRequest -> ORM^O01 / OML^O21 ---------------------------------------------------------

std::string serviceRequestToV2(std::string_view json, OrderMessage type, OrderControl control,
                               const Resolver& resolve, const OutboundOptions& o) {
  rapidjson::Document sr = parseResource(json, "ServiceRequest");
  if (str(sr, "resourceType") != "ServiceRequest") throw OutboundError("not a ServiceRequest");
  if (control == OrderControl::None) throw OutboundError("no order control for this ServiceRequest status");
  const Value* code = member(sr, "code");
  if (!code || (!first(*code, "coding") && str(*code, "text").empty()))
    throw OutboundError("ServiceRequest.code is required for OBR-4");
  rapidjson::Document patient = requirePatient(sr, "subject", resolve);

  const bool oml = type == OrderMessage::OML_O21;
  hl7::Message msg = oml ? newMessage("OML", "O21", "OML_O21", o) : newMessage("ORM", "O01", "ORM_O01", o);
  addPid(msg, patient, "", resolve, o);
  addPv1(msg, member(sr, "encounter"), resolve, o);

  // Placer number: the PLAC identifier, else the first identifier, else the FHIR id under the
  // sending application (so a CA or XO names the same order as the NW).
  std::string placer, placerSystem;
  const Value* plac = identifierOfType(sr, "PLAC");
  if (!plac) plac = first(sr, "identifier");
  if (plac && plac != identifierOfType(sr, "FILL")) {
    placer = str(*plac, "value");
    placerSystem = str(*plac, "system");
  }
  hl7::Segment& orc = msg.addSegment("ORC");
  orc.set(1, controlText(control));
  if (placer.empty()) {
    orc.set(2, 0, 1, 0, str(sr, "id"));
    orc.set(2, 0, 2, 0, o.sendingApplication);
  } else {
    setEi(orc, 2, 0, placer, placerSystem, o);
  }
  const Value* fill = identifierOfType(sr, "FILL");
  if (fill) setEi(orc, 3, 0, str(*fill, "value"), str(*fill, "system"), o);
  const std::string status = str(sr, "status");
  orc.set(5, orderStatusCode(status, control));
  std::string when = str(sr, "occurrenceDateTime");
  if (when.empty())
    if (const Value* p = member(sr, "occurrencePeriod")) when = str(*p, "start");
  const std::string whenV2 = fhirDateToV2(when);
  const std::string prio = priorityCode(str(sr, "priority"));
  if (!oml) {
    orc.set(7, 0, 4, 0, whenV2);
    orc.set(7, 0, 6, 0, prio);
  }
  orc.set(9, fhirDateToV2(str(sr, "authoredOn")));
  setXcn(orc, 12, 0, member(sr, "requester"), resolve, o);
  // Copied now: adding segments may move the segment storage (orc is not used after this).
  const std::string placerRaw(orc.rawField(2)), fillerRaw(orc.rawField(3)), providerRaw(orc.rawField(12));
  if (oml && (!whenV2.empty() || !prio.empty())) {
    hl7::Segment& tq1 = msg.addSegment("TQ1");
    tq1.set(1, "1");
    tq1.set(7, whenV2);
    tq1.set(9, 0, 1, 0, prio);
  }

  hl7::Segment& obr = msg.addSegment("OBR");
  obr.set(1, "1");
  obr.setRaw(2, placerRaw);
  obr.setRaw(3, fillerRaw);
  setCwe(obr, 4, 0, code);
  obr.set(6, whenV2);  // requested date/time
  obr.setRaw(16, providerRaw);
  if (!oml) {
    obr.set(27, 0, 4, 0, whenV2);
    obr.set(27, 0, 6, 0, prio);
  }
  int n = 0;
  forEach(sr, "note", [&](const Value& note) {
    const std::string text = str(note, "text");
    if (text.empty()) return;
    hl7::Segment& nte = msg.addSegment("NTE");
    nte.set(1, std::to_string(++n));
    nte.set(2, "P");  // source: placer
    nte.set(3, text);
  });
  n = 0;
  forEach(sr, "reasonCode", [&](const Value& rc) {
    if (!first(rc, "coding")) return;
    hl7::Segment& dg1 = msg.addSegment("DG1");
    dg1.set(1, std::to_string(++n));
    setCwe(dg1, 3, 0, &rc);
    dg1.set(6, "W");  // working diagnosis: the reason given with the order
  });
  return msg.encode();
}

// ---- Invoice / ChargeItem -> DFT^P03 -------------------------------------------------------------

namespace {

struct Charge {
  std::string transactionId;
  std::string date;          // v2 DTM
  std::string postingDate;   // v2 DTM
  const Value* code = nullptr;
  std::string quantity;      // decimal text
  std::string extended;      // decimal text: the charge's total
  std::string unit;          // decimal text: unit price when known
  std::string currency;
  const Value* performer = nullptr;
};

void fillFromChargeItem(Charge& c, const Value& ci) {
  if (const Value* id = first(ci, "identifier")) c.transactionId = str(*id, "value");
  std::string when = str(ci, "occurrenceDateTime");
  if (when.empty())
    if (const Value* p = member(ci, "occurrencePeriod")) when = str(*p, "start");
  c.date = fhirDateToV2(when);
  c.postingDate = fhirDateToV2(str(ci, "enteredDate"));
  c.code = member(ci, "code");
  if (const Value* q = member(ci, "quantity")) c.quantity = decimalText(member(*q, "value"));
  if (const Value* price = member(ci, "priceOverride")) {
    c.extended = decimalText(member(*price, "value"));
    c.currency = str(*price, "currency");
  }
  if (const Value* perf = first(ci, "performer")) c.performer = member(*perf, "actor");
}

void addFt1(hl7::Message& msg, int setId, const Charge& c, const Resolver& resolve, const OutboundOptions& o) {
  hl7::Segment& ft1 = msg.addSegment("FT1");
  ft1.set(1, std::to_string(setId));
  ft1.set(2, c.transactionId);
  ft1.set(4, 0, 1, 0, c.date);
  ft1.set(5, c.postingDate.empty() ? c.date : c.postingDate);
  ft1.set(6, "CG");
  setCwe(ft1, 7, 0, c.code);
  ft1.set(10, c.quantity.empty() ? "1" : c.quantity);
  ft1.set(11, 0, 1, 1, c.extended);
  ft1.set(11, 0, 1, 2, c.currency);
  ft1.set(12, 0, 1, 1, c.unit);
  ft1.set(12, 0, 1, 2, c.unit.empty() ? "" : c.currency);
  setXcn(ft1, 20, 0, c.performer, resolve, o);
}

// The Account's identifier (PID-18) and its first Coverage, when the account resolves.
std::string accountNumber(const Value* accountRef, const Resolver& resolve, std::optional<rapidjson::Document>& coverage) {
  auto account = resolveRef(accountRef, "Account", resolve);
  if (!account) return {};
  forEach(*account, "coverage", [&](const Value& c) {
    if (!coverage) coverage = resolveRef(member(c, "coverage"), "Coverage", resolve);
  });
  const Value* id = first(*account, "identifier");
  return id ? str(*id, "value") : std::string();
}

}  // namespace

std::string financialToDft(std::string_view resourceType, std::string_view json, const Resolver& resolve,
                           const OutboundOptions& o) {
  rapidjson::Document doc = parseResource(json, resourceType);
  if (str(doc, "resourceType") != resourceType) throw OutboundError("resourceType does not match");
  const bool invoice = resourceType == "Invoice";
  if (!invoice && resourceType != "ChargeItem") throw OutboundError("DFT^P03 maps Invoice and ChargeItem only");
  rapidjson::Document patient = requirePatient(doc, "subject", resolve);

  std::optional<rapidjson::Document> coverage;
  const Value* accountRef = invoice ? member(doc, "account") : first(doc, "account");
  const std::string account = accountNumber(accountRef, resolve, coverage);

  std::vector<Charge> charges;
  std::vector<rapidjson::Document> keep;  // resolved ChargeItems the Charges point into
  keep.reserve(64);
  const Value* encounterRef = nullptr;
  if (!invoice) {
    Charge c;
    fillFromChargeItem(c, doc);
    charges.push_back(c);
    encounterRef = member(doc, "context");
  } else {
    const Value* items = member(doc, "lineItem");
    if (items && items->IsArray() && items->Size() > 64) throw OutboundError("more than 64 Invoice line items");
    const std::string date = fhirDateToV2(str(doc, "date"));
    forEach(doc, "lineItem", [&](const Value& li) {
      Charge c;
      if (auto ci = resolveRef(member(li, "chargeItemReference"), "ChargeItem", resolve)) {
        keep.push_back(std::move(*ci));
        fillFromChargeItem(c, keep.back());
        if (!encounterRef) encounterRef = member(keep.back(), "context");
      }
      if (const Value* cc = member(li, "chargeItemCodeableConcept")) c.code = cc;
      if (c.date.empty()) c.date = date;
      // The line's amount: base + surcharge + tax - deduction - discount (informational
      // components are not part of the price), summed exactly.
      std::optional<Decimal> total, base;
      forEach(li, "priceComponent", [&](const Value& pc) {
        const std::string type = str(pc, "type");
        const Value* amount = member(pc, "amount");
        if (!amount || type == "informational") return;
        auto d = parseDecimal(decimalText(member(*amount, "value")));
        if (!d) return;
        if (c.currency.empty()) c.currency = str(*amount, "currency");
        if (type == "deduction" || type == "discount") d->unscaled = -d->unscaled;
        if (type == "base" && !base) base = d;
        total = total ? add(*total, *d) : *d;
      });
      if (total) c.extended = toText(*total);
      // FT1-12 (unit amount) only when the line is one unit: dividing could lose cents.
      if (base && (c.quantity.empty() || c.quantity == "1")) c.unit = toText(*base);
      if (c.code == nullptr) throw OutboundError("an Invoice line item has no charge code");
      charges.push_back(c);
    });
    if (charges.empty()) throw OutboundError("the Invoice has no line items");
  }

  hl7::Message msg = newMessage("DFT", "P03", "DFT_P03", o);
  hl7::Segment& evn = msg.addSegment("EVN");
  evn.set(1, "P03");
  evn.set(2, o.timestamp);
  addPid(msg, patient, account, resolve, o);
  addPv1(msg, encounterRef, resolve, o);
  int setId = 0;
  for (const Charge& c : charges) addFt1(msg, ++setId, c, resolve, o);
  if (!coverage && resolve) {
    // No Coverage on the account: ask for the patient's own (see Resolver in fhir_to_v2.h).
    if (auto json = resolve("Coverage", "?beneficiary=Patient/" + str(patient, "id"))) {
      rapidjson::Document d;
      d.Parse<rapidjson::kParseNumbersAsStringsFlag>(json->data(), json->size());
      if (!d.HasParseError() && d.IsObject()) coverage = std::move(d);
    }
  }
  if (coverage) addIn1(msg, 1, *coverage, resolve, o);
  return msg.encode();
}

}  // namespace hearth::adapters
