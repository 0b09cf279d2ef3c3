// ORU^R01: each ORDER_OBSERVATION becomes a DiagnosticReport (OBR) with its Observations (OBX +
// NTE); the patient, visit and order it reports on are conditional creates.
#include <algorithm>
#include <cstdio>
#include <set>

#include "mappers.h"
#include "v2_tables.h"

namespace hearth::adapters {

using hl7::Element;
using hl7::Group;
using hl7::Segment;

namespace {

// OBX-11 (table 0085) -> Observation.status.
std::string_view observationStatus(std::string_view v2) {
  static const std::pair<std::string_view, std::string_view> kMap[] = {
      {"A", "amended"},   {"B", "amended"},          {"C", "corrected"},    {"D", "entered-in-error"},
      {"F", "final"},     {"I", "registered"},       {"N", "cancelled"},    {"O", "registered"},
      {"P", "preliminary"}, {"R", "preliminary"},    {"S", "preliminary"},  {"U", "final"},
      {"V", "final"},     {"W", "entered-in-error"}, {"X", "cancelled"},
  };
  for (const auto& [from, to] : kMap) {
    if (from == v2) return to;
  }
  return {};
}

// OBR-25 (table 0123) -> DiagnosticReport.status.
std::string_view reportStatus(std::string_view v2) {
  static const std::pair<std::string_view, std::string_view> kMap[] = {
      {"A", "partial"},   {"C", "corrected"},   {"F", "final"},       {"I", "registered"},
      {"M", "corrected"}, {"N", "partial"},     {"O", "registered"},  {"P", "preliminary"},
      {"R", "preliminary"}, {"S", "registered"}, {"X", "cancelled"},  {"Y", "unknown"},
      {"Z", "unknown"},
  };
  for (const auto& [from, to] : kMap) {
    if (from == v2) return to;
  }
  return {};
}

// OBR-24 diagnostic service sections that are laboratory / imaging work.
std::string_view observationCategory(std::string_view section) {
  static const std::set<std::string_view> kLab{"BG", "BLB", "CH", "CP", "HM", "IMM", "LAB", "MB", "MCB",
                                               "MYC", "OSL", "PAR", "SP", "SR", "TX", "URN", "VR"};
  static const std::set<std::string_view> kImaging{"CT", "CTH", "CUS", "NMR", "NMS", "OUS", "RAD", "RUS", "VUS", "XRC"};
  if (kLab.count(section)) return "laboratory";
  if (kImaging.count(section)) return "imaging";
  return {};
}

// HL7 table 0125 (value type), v2.3 ... v2.8.
bool isValueType(std::string_view t) {
  static const std::set<std::string_view> k{"AD", "CE",  "CF", "CK", "CN", "CNE", "CP", "CWE", "CX",  "DR",
                                            "DT", "DTM", "ED", "FT", "GTS", "ID", "IS", "MA",  "MO",  "NA",
                                            "NM", "PN",  "RP", "SN", "ST",  "TM", "TN", "TS",  "TX",  "XAD",
                                            "XCN", "XON", "XPN", "XTN"};
  return k.count(t) > 0;
}

// HH[MM[SS[.S+]]][+/-ZZZZ] -> FHIR time "hh:mm:ss[.s]" (FHIR times carry no zone).
std::optional<std::string> fhirTime(std::string_view tm) {
  size_t zone = tm.find_first_of("+-");
  std::string_view t = tm.substr(0, zone);
  std::string_view fraction;
  if (size_t dot = t.find('.'); dot != std::string_view::npos) {
    fraction = t.substr(dot + 1);
    t = t.substr(0, dot);
    if (fraction.empty() || !allDigits(fraction) || t.size() != 6) return std::nullopt;
  }
  if (!allDigits(t) || (t.size() != 2 && t.size() != 4 && t.size() != 6)) return std::nullopt;
  int hh = std::stoi(std::string(t.substr(0, 2)));
  int mm = t.size() >= 4 ? std::stoi(std::string(t.substr(2, 2))) : 0;
  int ss = t.size() >= 6 ? std::stoi(std::string(t.substr(4, 2))) : 0;
  if (hh > 23 || mm > 59 || ss > 59) return std::nullopt;
  std::string out(t.substr(0, 2));
  out += ":" + (t.size() >= 4 ? std::string(t.substr(2, 2)) : "00");
  out += ":" + (t.size() >= 6 ? std::string(t.substr(4, 2)) : "00");
  if (!fraction.empty()) out += "." + std::string(fraction);
  return out;
}

// Splits a reference range "70-99", "<5", "<=5", ">60", ">=60", "-5-5" into low / high.
struct RangeParts {
  std::string low, high;
};
std::optional<RangeParts> parseRange(std::string_view s) {
  auto trim = [](std::string_view v) {
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
    return v;
  };
  s = trim(s);
  if (s.empty()) return std::nullopt;
  if (s[0] == '<' || s[0] == '>') {
    const bool less = s[0] == '<';
    std::string_view num = trim(s.substr(s.size() > 1 && s[1] == '=' ? 2 : 1));
    auto d = hl7::toDecimal(num);
    if (!d) return std::nullopt;
    return less ? RangeParts{"", *d} : RangeParts{*d, ""};
  }
  size_t dash = s.find('-', 1);  // a leading '-' is the sign of the low value
  if (dash == std::string_view::npos) return std::nullopt;
  auto lo = hl7::toDecimal(trim(s.substr(0, dash)));
  auto hi = hl7::toDecimal(trim(s.substr(dash + 1)));
  if (!lo || !hi) return std::nullopt;
  return RangeParts{*lo, *hi};
}

Json simpleQuantity(const std::string& value, const hl7::CWE& units) { return quantity(value, units); }

struct ReportContext {
  std::string patientUrl, encounterUrl;
  std::optional<std::string> effective;  // OBR-7
  std::optional<std::string> issued;     // OBR-22
  std::string category;                  // observation-category code or ""
};

// OBX-2 / OBX-5 (and OBX-6 units) -> Observation.value[x]; false when the value is in error.
bool setValue(Ctx& c, Json& obs, const Segment& obx) {
  const std::string type = obx.field(2).value();
  const Element value = obx.field(5);
  if (value.empty() || value.isNull()) return true;
  if (type.empty()) {
    c.error(101, c.at(&obx, 2), "OBX-2 (value type) is empty but OBX-5 holds a value");
    return false;
  }
  const hl7::CWE units = hl7::CWE::from(obx.field(6));
  const Element first = value.repetition(0);
  const Loc where = c.at(&obx, 5);
  if (value.repetitionCount() > 1 && type != "ST" && type != "TX" && type != "FT") {
    c.warn(207, where, "OBX-5 repeats: only the first value of type " + shortCode(type) + " is mapped");
  }
  if (type == "NM") {
    auto d = decimalOf(c, first, where);
    if (!d) return false;
    obs.set("valueQuantity", quantity(*d, units));
  } else if (type == "ST" || type == "TX" || type == "FT") {
    obs.set("valueString", c.textAllRepetitions(value));
  } else if (type == "CE" || type == "CWE" || type == "CNE" || type == "CF") {
    obs.set("valueCodeableConcept", c.codeableConcept(hl7::CWE::from(first)));
  } else if (type == "ID" || type == "IS") {
    obs.set("valueCodeableConcept",
            Json::object().set("coding", Json::array().push(Json::object().set("code", codeSafe(first.value())))));
  } else if (type == "SN") {
    hl7::SN sn = hl7::SN::from(first);
    if (!sn.valid()) {
      c.error(102, where, "not a valid structured numeric (SN)");
      return false;
    }
    auto n1 = hl7::toDecimal(sn.num1);
    auto n2 = hl7::toDecimal(sn.num2);
    const std::string& cmp = sn.comparator;
    if (sn.separator.empty()) {
      if (cmp == "<>") {
        obs.set("valueString", "<> " + sn.num1);
      } else {
        obs.set("valueQuantity", quantity(*n1, units, cmp == "=" ? "" : cmp));
      }
    } else if (sn.separator == "-" && (cmp.empty() || cmp == "=")) {
      obs.set("valueRange", Json::object().set("low", simpleQuantity(*n1, units)).set("high", simpleQuantity(*n2, units)));
    } else if ((sn.separator == ":" || sn.separator == "/") && (cmp.empty() || cmp == "=")) {
      obs.set("valueRatio", Json::object()
                                .set("numerator", Json::object().set("value", Json::number(*n1)))
                                .set("denominator", Json::object().set("value", Json::number(*n2))));
    } else {
      // "2+" (categorical), "." separators or a comparator on a range: kept as written.
      obs.set("valueString", cmp + sn.num1 + sn.separator + sn.num2);
    }
  } else if (type == "DT" || type == "TS" || type == "DTM") {
    auto dt = type == "DT" ? c.date(first, where) : c.dateTime(first, where);
    if (!dt) return false;
    obs.set("valueDateTime", *dt);
  } else if (type == "TM") {
    auto t = fhirTime(first.value());
    if (!t) {
      c.error(102, where, "not a valid time (TM)");
      return false;
    }
    obs.set("valueTime", *t);
  } else if (isValueType(type)) {
    c.error(207, c.at(&obx, 2), "OBX-2 value type " + shortCode(type) + " is not supported by the FHIR mapping");
    return false;
  } else {
    c.error(103, c.at(&obx, 2), "OBX-2 (value type) is not a code of HL7 table 0125");
    return false;
  }
  return true;
}

Json interpretation(Ctx& c, const Segment& obx) {
  Json list = Json::array();
  for (const Element& rep : obx.field(8).repetitions()) {
    const std::string flag = rep.value();
    if (flag.empty()) continue;
    if (tables::contains("v3-ObservationInterpretation", flag)) {
      list.push(Json::object().set("coding", Json::array().push(c.tableCoding("v3-ObservationInterpretation", flag))));
    } else if (tables::contains("0078", flag)) {
      list.push(Json::object().set("coding", Json::array().push(c.tableCoding("0078", flag))));
    } else {
      c.warn(103, c.at(&obx, 8), "OBX-8 abnormal flag is not a code of HL7 table 0078: kept as text");
      list.push(Json::object().set("text", flag));
    }
  }
  return list;
}

Json referenceRange(const Segment& obx, Ctx& c) {
  const std::string text = c.text(obx.field(7));
  if (text.empty()) return {};
  const hl7::CWE units = hl7::CWE::from(obx.field(6));
  Json r = Json::object();
  if (auto parts = parseRange(text)) {
    if (!parts->low.empty()) r.set("low", simpleQuantity(parts->low, units));
    if (!parts->high.empty()) r.set("high", simpleQuantity(parts->high, units));
  } else {
    r.set("text", text);
  }
  return Json::array().push(std::move(r));
}

// One OBX (+ its NTEs) -> Observation; returns its fullUrl ("" when in error).
std::string addObservation(Ctx& c, const Segment& obx, const std::vector<const Segment*>& ntes, const Identity& id,
                           const ReportContext& rc, std::vector<std::string>& statuses) {
  Json code = c.codeableConcept(hl7::CWE::from(obx.field(3)));
  if (code.empty()) {
    c.error(101, c.at(&obx, 3), "OBX-3 (observation identifier) is empty");
    return {};
  }
  const std::string v2Status = obx.field(11).value();
  std::string status;
  if (v2Status.empty()) {
    c.warn(101, c.at(&obx, 11), "OBX-11 (result status) is empty: status unknown");
    status = "unknown";
  } else if (std::string_view s = observationStatus(v2Status); !s.empty()) {
    status = std::string(s);
  } else {
    c.error(103, c.at(&obx, 11), "OBX-11 (result status) is not a code of HL7 table 0085");
    return {};
  }
  statuses.push_back(status);

  Json o = Json::object();
  o.set("identifier", Json::array().push(c.identifier(id, {})));
  o.set("status", status);
  if (!rc.category.empty()) {
    o.set("category", Json::array().push(Json::object().set(
                          "coding", Json::array().push(
                                        Json::object()
                                            .set("system", "http://terminology.hl7.org/CodeSystem/observation-category")
                                            .set("code", rc.category)))));
  }
  o.set("code", std::move(code));
  o.set("subject", Ctx::reference(rc.patientUrl));
  if (!rc.encounterUrl.empty()) o.set("encounter", Ctx::reference(rc.encounterUrl));
  std::optional<std::string> effective = c.dateTime(obx.field(14), c.at(&obx, 14));
  if (!effective) effective = rc.effective;
  if (effective) o.set("effectiveDateTime", *effective);
  if (rc.issued) o.set("issued", *rc.issued);
  if (!setValue(c, o, obx)) return {};
  o.set("interpretation", interpretation(c, obx));
  o.set("note", c.notes(ntes));
  hl7::CWE method = hl7::CWE::from(obx.field(17));
  if (!method.empty()) o.set("method", c.codeableConcept(method));
  o.set("referenceRange", referenceRange(obx, c));
  return c.update("Observation", id, std::move(o));
}

void mapReport(Ctx& c, const Group& oo, const std::string& patientUrl, const std::string& encounterUrl) {
  const Segment* orc = oo.segment("ORC");
  const Segment* obr = oo.segment("OBR");
  if (!obr) {
    c.error(100, Loc{"OBR"}, "ORDER_OBSERVATION without OBR");
    return;
  }
  OrderIds ids = orderIds(c, orc, obr);
  const Identity& key = ids.filler.valid() ? ids.filler : ids.placer;
  if (!key.valid()) {
    c.error(101, c.at(obr, 3), "neither a filler (OBR-3) nor a placer (OBR-2) order number identifies the report");
    return;
  }
  Json code = c.codeableConcept(hl7::CWE::from(obr->field(4)));
  if (code.empty()) {
    c.error(101, c.at(obr, 4), "OBR-4 (universal service identifier) is empty");
    return;
  }
  ReportContext rc;
  rc.patientUrl = patientUrl;
  rc.encounterUrl = encounterUrl;
  rc.effective = c.dateTime(obr->field(7), c.at(obr, 7));
  rc.issued = c.instant(obr->field(22), c.at(obr, 22));
  const std::string section = obr->field(24).value();
  rc.category = std::string(observationCategory(section));

  // Observation identity: report key + OBX-1 set id (+ OBX-4 sub-id). Set ids missing or
  // repeated within the report fall back to the OBX's position, for the whole report.
  const std::vector<const Group*> obsGroups = oo.groups("OBSERVATION");
  bool useSetIds = true;
  std::set<std::string> seen;
  for (const Group* g : obsGroups) {
    const Segment* obx = g->segment("OBX");
    if (!obx) continue;
    const std::string k = obx->field(1).value() + "/" + obx->field(4).value();
    if (obx->field(1).value().empty() || !seen.insert(k).second) useSetIds = false;
  }
  if (!useSetIds && !obsGroups.empty()) {
    c.warn(102, c.at(obsGroups.front()->segment("OBX"), 1),
           "OBX-1 set ids missing or repeated: observations are identified by position");
  }
  Json results = Json::array();
  std::vector<std::string> statuses;
  int position = 0;
  for (const Group* g : obsGroups) {
    const Segment* obx = g->segment("OBX");
    if (!obx) continue;
    ++position;
    std::string suffix = useSetIds ? obx->field(1).value() : std::to_string(position);
    const std::string subId = obx->field(4).value();
    if (useSetIds && !subId.empty()) suffix += "/" + subId;
    Identity obsId{key.system, key.value + "/" + suffix};
    std::string url = addObservation(c, *obx, g->segments("NTE"), obsId, rc, statuses);
    if (!url.empty()) results.push(Ctx::reference(url));
  }

  std::string status;
  const std::string v2Status = obr->field(25).value();
  if (!v2Status.empty()) {
    std::string_view s = reportStatus(v2Status);
    if (s.empty()) {
      c.error(103, c.at(obr, 25), "OBR-25 (result status) is not a code of HL7 table 0123");
      return;
    }
    status = std::string(s);
  } else {
    // No OBR-25: the report is as final as its results.
    auto any = [&](std::string_view v) { return std::find(statuses.begin(), statuses.end(), v) != statuses.end(); };
    bool allFinal = !statuses.empty() && std::all_of(statuses.begin(), statuses.end(), [](const std::string& s) {
      return s == "final" || s == "corrected" || s == "amended";
    });
    if (statuses.empty()) {
      status = "registered";
    } else if (allFinal) {
      status = any("corrected") || any("amended") ? "corrected" : "final";
    } else if (any("preliminary") || any("final")) {
      status = "partial";
    } else {
      status = "unknown";
    }
  }

  // The order the report answers: created if the server does not know it yet.
  Json basedOn = Json::array();
  if (ids.placer.valid()) {
    std::string sr = addServiceRequest(c, orc, obr, nullptr, {}, {}, patientUrl, encounterUrl, WriteMode::Create,
                                       status == "final" || status == "corrected" ? "completed" : "active");
    if (!sr.empty()) basedOn.push(Ctx::reference(sr));
  }

  Json r = Json::object();
  Json notes = c.notes(oo.segments("NTE"));
  if (!notes.empty()) {
    // R4 DiagnosticReport has no note element: the R5 element through its cross-version extension.
    Json ext = Json::array();
    for (const Json& n : notes.items()) {
      ext.push(Json::object()
                   .set("url", "http://hl7.org/fhir/5.0/StructureDefinition/extension-DiagnosticReport.note")
                   .set("valueAnnotation", n));
    }
    r.set("extension", std::move(ext));
  }
  r.set("identifier", orderIdentifiers(c, ids));
  r.set("basedOn", std::move(basedOn));
  r.set("status", status);
  if (!section.empty()) r.set("category", Json::array().push(c.tableConcept("0074", section)));
  r.set("code", std::move(code));
  r.set("subject", Ctx::reference(patientUrl));
  if (!encounterUrl.empty()) r.set("encounter", Ctx::reference(encounterUrl));
  if (rc.effective) r.set("effectiveDateTime", *rc.effective);
  if (rc.issued) r.set("issued", *rc.issued);
  r.set("result", std::move(results));
  bool added = false;
  c.update("DiagnosticReport", key, std::move(r), &added);
  if (!added) c.warn(207, c.at(obr, 3), "the same order number reports twice: the later OBR is ignored");
}

}  // namespace

void mapOru(Ctx& c) {
  hl7::GroupTree tree = hl7::GroupTree::build(c.msg);
  const std::vector<const Group*> results = tree.root().groups("PATIENT_RESULT");
  if (results.empty()) {
    c.error(100, Loc{"OBR"}, "ORU without an OBR");
    return;
  }
  for (const Group* pr : results) {
    const Group* patient = pr->group("PATIENT");
    const Segment* pid = patient ? patient->segment("PID") : nullptr;
    if (!pid) {
      c.error(100, Loc{"PID"}, "results without a PID: no patient to file them for");
      continue;
    }
    std::string patientUrl = addPatient(c, *pid, WriteMode::Create);
    if (patientUrl.empty()) continue;
    std::string encounterUrl;
    const Group* visit = patient->group("VISIT");
    if (const Segment* pv1 = visit ? visit->segment("PV1") : nullptr) {
      encounterUrl = addEncounter(c, *pv1, patientUrl, WriteMode::Create, false);
    }
    for (const Group* oo : pr->groups("ORDER_OBSERVATION")) mapReport(c, *oo, patientUrl, encounterUrl);
  }
}

}  // namespace hearth::adapters
