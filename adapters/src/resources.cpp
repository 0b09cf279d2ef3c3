// Resources several messages share: Patient (PID, NK1, PD1), Encounter (PV1), Practitioner (XCN),
// Location (PL), AllergyIntolerance (AL1), Coverage + insurer Organization (IN1, IN2).
#include <algorithm>
#include <set>

#include "mappers.h"
#include "v2_tables.h"

namespace hearth::adapters {

using hl7::Element;
using hl7::Segment;

namespace {

// v2 table 0002 (marital status) -> v3 MaritalStatus, where the meaning is the same.
std::string_view v3MaritalStatus(std::string_view v2) {
  static const std::pair<std::string_view, std::string_view> kMap[] = {
      {"A", "L"}, {"B", "U"}, {"D", "D"}, {"E", "L"}, {"I", "I"}, {"M", "M"},
      {"N", "A"}, {"P", "T"}, {"R", "T"}, {"S", "S"}, {"W", "W"},
  };
  for (const auto& [from, to] : kMap) {
    if (from == v2) return to;
  }
  return {};
}

std::string displayName(const hl7::XCN& x) {
  std::string out;
  for (const std::string* part : {&x.prefix, &x.given, &x.middle, &x.family}) {
    if (part->empty()) continue;
    if (!out.empty()) out.push_back(' ');
    out += *part;
  }
  return out;
}

void addUnique(Json& list, std::set<std::string>& seen, Json identifier, const Identity& id) {
  if (identifier.empty() || !seen.insert(id.system + "|" + id.value).second) return;
  list.push(std::move(identifier));
}

Json contactOf(Ctx& c, const Segment& nk1) {
  Json contact = Json::object();
  Json rel = Json::array();
  hl7::CWE role = hl7::CWE::from(nk1.field(7));
  if (!role.empty()) rel.push(c.codeableConcept(role, "0131"));
  hl7::CWE relationship = hl7::CWE::from(nk1.field(3));
  if (!relationship.empty()) rel.push(c.codeableConcept(relationship, "0063"));
  contact.set("relationship", std::move(rel));
  contact.set("name", c.humanName(hl7::XPN::from(nk1.field(2))));
  Json telecom = Json::array();
  for (const Element& rep : nk1.field(5).repetitions()) telecom.push(c.contactPoint(hl7::XTN::from(rep), "home"));
  for (const Element& rep : nk1.field(6).repetitions()) telecom.push(c.contactPoint(hl7::XTN::from(rep), "work"));
  contact.set("telecom", std::move(telecom));
  contact.set("address", c.address(hl7::XAD::from(nk1.field(4))));
  if (auto g = tables::translate("gender", nk1.field(15).value())) contact.set("gender", std::string(*g));
  const std::string org = nk1.field(13).value();
  if (!org.empty()) contact.set("organization", Json::object().set("display", org));
  Json period = Json::object();
  if (auto s = c.date(nk1.field(8), c.at(&nk1, 8))) period.set("start", *s);
  if (auto e = c.date(nk1.field(9), c.at(&nk1, 9))) period.set("end", *e);
  contact.set("period", std::move(period));
  // pat-1: a contact needs a name, telecom, address or organization.
  if (!contact.find("name") && !contact.find("telecom") && !contact.find("address") && !contact.find("organization")) {
    c.warn(101, c.at(&nk1, 2), "NK1 without name, address, phone or organization: contact left out");
    return {};
  }
  return contact;
}

}  // namespace

std::optional<PatientDraft> buildPatient(Ctx& c, const Segment& pid, const std::vector<const Segment*>& nk1s,
                                         const Segment* pd1) {
  Json ids = Json::array();
  std::set<std::string> seen;
  Identity key;
  bool keyIsMr = false;
  const std::vector<Element> pid3 = pid.field(3).repetitions();
  for (const Element& rep : pid3) {
    hl7::CX cx = hl7::CX::from(rep);
    Identity id = c.identityOf(cx, IdKind::Mrn);
    if (!id.valid()) continue;
    if (!key.valid() || (!keyIsMr && cx.identifierTypeCode == "MR")) {
      key = id;
      keyIsMr = cx.identifierTypeCode == "MR";
    }
    addUnique(ids, seen, c.identifier(cx, IdKind::Mrn), id);
  }
  if (!key.valid()) {
    c.error(101, c.at(&pid, 3), "PID-3 (patient identifier list) holds no identifier");
    return std::nullopt;
  }
  // PID-2 (external id, v2.3/2.4) and PID-4 (alternate id) are further identifiers.
  for (int f : {2, 4}) {
    for (const Element& rep : pid.field(f).repetitions()) {
      hl7::CX cx = hl7::CX::from(rep);
      Identity id = c.identityOf(cx, IdKind::Mrn);
      if (id.valid()) addUnique(ids, seen, c.identifier(cx, IdKind::Mrn), id);
    }
  }
  const std::string ssn = pid.field(19).value();
  if (!ssn.empty()) {
    Identity id{"http://hl7.org/fhir/sid/us-ssn", ssn};
    addUnique(ids, seen, c.identifier(id, "SS"), id);
  }

  Json p = Json::object();
  p.set("identifier", std::move(ids));
  const std::string maiden = cleanText(hl7::XPN::from(pid.field(6)).family);
  if (!maiden.empty()) {
    p.set("extension",
          Json::array().push(Json::object()
                                 .set("url", "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName")
                                 .set("valueString", maiden)));
  }
  Json names = Json::array();
  for (const Element& rep : pid.field(5).repetitions()) names.push(c.humanName(hl7::XPN::from(rep)));
  p.set("name", std::move(names));
  Json telecom = Json::array();
  for (const Element& rep : pid.field(13).repetitions()) telecom.push(c.contactPoint(hl7::XTN::from(rep), "home"));
  for (const Element& rep : pid.field(14).repetitions()) telecom.push(c.contactPoint(hl7::XTN::from(rep), "work"));
  p.set("telecom", std::move(telecom));

  const std::string sex = pid.field(8).value();
  if (!sex.empty()) {
    if (auto g = tables::translate("gender", sex)) {
      p.set("gender", std::string(*g));
    } else {
      c.error(103, c.at(&pid, 8), "PID-8 (administrative sex) is not a code of HL7 table 0001");
    }
  }
  if (auto born = c.date(pid.field(7), c.at(&pid, 7))) p.set("birthDate", *born);
  if (pid.field(29).present() && !pid.field(29).isNull()) {
    if (auto died = c.dateTime(pid.field(29), c.at(&pid, 29))) p.set("deceasedDateTime", *died);
  } else {
    const std::string dead = pid.field(30).value();
    if (dead == "Y" || dead == "N") p.set("deceasedBoolean", Json::boolean(dead == "Y"));
  }
  Json addresses = Json::array();
  for (const Element& rep : pid.field(11).repetitions()) addresses.push(c.address(hl7::XAD::from(rep)));
  p.set("address", std::move(addresses));

  hl7::CWE marital = hl7::CWE::from(pid.field(16));
  if (!marital.empty()) {
    Json cc = c.codeableConcept(marital, "0002");
    std::string_view v3 = v3MaritalStatus(marital.code);
    if (!v3.empty() && (marital.system.empty() || marital.system == "HL70002")) {
      Json codings = Json::array();
      codings.push(c.tableCoding("v3-MaritalStatus", v3));
      if (const Json* existing = cc.find("coding")) {
        for (const Json& item : existing->items()) codings.push(item);
      }
      cc.set("coding", std::move(codings));
    }
    p.set("maritalStatus", std::move(cc));
  }
  const std::string birthOrder = pid.field(25).value();
  const std::string multiple = pid.field(24).value();
  if (!birthOrder.empty() && allDigits(birthOrder) && birthOrder.size() < 4 &&
      birthOrder != "0") {
    p.set("multipleBirthInteger", Json::number(std::to_string(std::stoi(birthOrder))));
  } else if (multiple == "Y" || multiple == "N") {
    p.set("multipleBirthBoolean", Json::boolean(multiple == "Y"));
  }
  Json contacts = Json::array();
  for (const Segment* nk1 : nk1s) contacts.push(contactOf(c, *nk1));
  p.set("contact", std::move(contacts));

  hl7::CWE language = hl7::CWE::from(pid.field(15));
  if (!language.empty()) {
    // Languages sent without a coding system are taken as ISO 639 codes (BCP 47 primary tags).
    if (language.system.empty() && !language.code.empty() && language.code.size() <= 3 &&
        allAlpha(language.code)) {
      language.system = "ISO639";
    }
    Json cc = c.codeableConcept(language);
    if (!cc.empty()) {
      p.set("communication",
            Json::array().push(Json::object().set("language", std::move(cc)).set("preferred", Json::boolean(true))));
    }
  }
  if (pd1) {
    Json gps = Json::array();
    for (const Element& rep : pd1->field(4).repetitions()) gps.push(practitionerRef(c, rep));
    p.set("generalPractitioner", std::move(gps));
  }
  return PatientDraft{key, std::move(p)};
}

std::string addPatient(Ctx& c, const Segment& pid, WriteMode mode, const std::vector<const Segment*>& nk1s,
                       const Segment* pd1) {
  auto draft = buildPatient(c, pid, nk1s, pd1);
  if (!draft) return {};
  return mode == WriteMode::Update ? c.update("Patient", draft->id, std::move(draft->resource))
                                   : c.create("Patient", draft->id, std::move(draft->resource));
}

// ---- Encounter -----------------------------------------------------------------------------

namespace {

// PV1-2 patient class (table 0004) -> v3 ActCode encounter class.
std::string_view encounterClass(std::string_view v2) {
  static const std::pair<std::string_view, std::string_view> kMap[] = {
      {"B", "IMP"},  // obstetrics: admitted
      {"C", "AMB"},  // commercial account
      {"E", "EMER"}, {"I", "IMP"}, {"O", "AMB"}, {"P", "PRENC"},
      {"R", "AMB"},  // recurring patient
  };
  for (const auto& [from, to] : kMap) {
    if (from == v2) return to;
  }
  return {};
}

void addParticipants(Ctx& c, Json& list, const Element& field, std::string_view type) {
  for (const Element& rep : field.repetitions()) {
    Json who = practitionerRef(c, rep);
    if (who.empty()) continue;
    list.push(Json::object()
                  .set("type", Json::array().push(c.tableConcept("v3-ParticipationType", type)))
                  .set("individual", std::move(who)));
  }
}

}  // namespace

std::string addEncounter(Ctx& c, const Segment& pv1, const std::string& patientUrl, WriteMode mode, bool required,
                         std::string_view trigger, const Segment* evn) {
  const std::string cls = pv1.field(2).value();
  if (cls == "N") return {};  // not applicable: no visit
  hl7::CX visit = hl7::CX::from(pv1.field(19));
  Identity id = c.identityOf(visit, IdKind::Visit);
  if (!id.valid()) {
    if (required) {
      c.error(101, c.at(&pv1, 19), "PV1-19 (visit number) is required to identify the encounter");
    } else {
      c.warn(101, c.at(&pv1, 19), "no PV1-19 visit number: the Encounter is left out");
    }
    return {};
  }
  if (cls.empty()) {
    c.error(101, c.at(&pv1, 2), "PV1-2 (patient class) is empty");
    return {};
  }
  Json classCoding;
  if (cls == "U") {
    classCoding = c.tableCoding("v3-NullFlavor", "UNK");
  } else if (std::string_view act = encounterClass(cls); !act.empty()) {
    classCoding = c.tableCoding("v3-ActCode", act);
  } else {
    c.error(103, c.at(&pv1, 2), "PV1-2 (patient class) is not a code of HL7 table 0004");
    return {};
  }

  Json period = Json::object();
  if (auto s = c.dateTime(pv1.field(44), c.at(&pv1, 44))) period.set("start", *s);
  std::optional<std::string> end = c.dateTime(pv1.field(45), c.at(&pv1, 45));
  if (!end && trigger == "A03") {
    // Discharge without PV1-45: the event time (EVN-6 occurred, else EVN-2 recorded, else MSH-7).
    if (evn) end = c.dateTime(evn->field(6), c.at(evn, 6));
    if (!end && evn) end = c.dateTime(evn->field(2), c.at(evn, 2));
    if (!end) end = c.dateTime(c.msg.at("MSH-7"), Loc{"MSH", 1, 7});
  }
  if (end) period.set("end", *end);
  std::string status = "in-progress";
  if (end || trigger == "A03") {
    status = "finished";
  } else if (cls == "P") {
    status = "planned";
  }

  Json e = Json::object();
  e.set("identifier", Json::array().push(c.identifier(visit, IdKind::Visit)));
  e.set("status", status);
  e.set("class", std::move(classCoding));
  hl7::CWE admissionType = hl7::CWE::from(pv1.field(4));
  if (!admissionType.empty()) e.set("type", Json::array().push(c.codeableConcept(admissionType, "0007")));
  hl7::CWE service = hl7::CWE::from(pv1.field(10));
  if (!service.empty()) e.set("serviceType", c.codeableConcept(service, "0069"));
  e.set("subject", Ctx::reference(patientUrl));
  Json participants = Json::array();
  addParticipants(c, participants, pv1.field(7), "ATND");
  addParticipants(c, participants, pv1.field(8), "REF");
  addParticipants(c, participants, pv1.field(9), "CON");
  addParticipants(c, participants, pv1.field(17), "ADM");
  e.set("participant", std::move(participants));
  e.set("period", std::move(period));
  Json hospitalization = Json::object();
  hl7::CWE admitSource = hl7::CWE::from(pv1.field(14));
  if (!admitSource.empty()) hospitalization.set("admitSource", c.codeableConcept(admitSource, "0023"));
  hl7::CWE disposition = hl7::CWE::from(pv1.field(36));
  if (!disposition.empty()) {
    if (disposition.system.empty()) disposition.system = "HL70112";
    hospitalization.set("dischargeDisposition", c.codeableConcept(disposition));
  }
  e.set("hospitalization", std::move(hospitalization));
  Json where = locationRef(c, pv1.field(3));
  if (!where.empty()) {
    e.set("location", Json::array().push(Json::object()
                                             .set("location", std::move(where))
                                             .set("status", status == "finished" ? "completed" : "active")));
  }
  return mode == WriteMode::Update ? c.update("Encounter", id, std::move(e)) : c.create("Encounter", id, std::move(e));
}

// ---- Practitioner, Location ----------------------------------------------------------------

Json practitionerRef(Ctx& c, const Element& e) {
  if (e.empty() || e.isNull()) return {};
  hl7::XCN x = hl7::XCN::from(e);
  const std::string display = displayName(x);
  Identity id;
  if (x.assigningAuthority.empty() && x.identifierTypeCode == "NPI") {
    id = {"http://hl7.org/fhir/sid/us-npi", x.id};
  } else {
    id = {c.systemFor(x.assigningAuthority, IdKind::Staff), x.id};
  }
  if (!id.valid()) return Json::object().set("display", display);  // empty when there is no name
  Json p = Json::object();
  p.set("identifier", Json::array().push(c.identifier(id, x.identifierTypeCode)));
  p.set("name", Json::array().push(c.humanName(x)));
  std::string url = c.create("Practitioner", id, std::move(p));
  return Ctx::reference(url, display);
}

Json locationRef(Ctx& c, const Element& e) {
  if (e.empty() || e.isNull()) return {};
  hl7::PL pl = hl7::PL::from(e);
  std::vector<std::string> parts{cleanText(pl.pointOfCare), cleanText(pl.room), cleanText(pl.bed)};
  while (!parts.empty() && parts.back().empty()) parts.pop_back();
  if (parts.empty()) return {};
  std::string value, name;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) value.push_back('^');
    value += parts[i];
    if (!parts[i].empty()) name += (name.empty() ? "" : " ") + parts[i];
  }
  std::string scope = pl.facility.namespaceId.empty() ? c.facility() : pl.facility.namespaceId;
  Identity id{c.opts.localPrefix + "location:" + uriSafe(scope), value};
  if (!id.valid()) return {};
  Json l = Json::object();
  l.set("identifier", Json::array().push(c.identifier(id, {})));
  l.set("status", "active");
  l.set("name", name);
  l.set("description", pl.description);
  l.set("mode", "instance");
  std::string physical = !pl.bed.empty() ? "bd" : (!pl.room.empty() ? "ro" : "");
  if (!physical.empty()) {
    l.set("physicalType",
          Json::object().set("coding", Json::array().push(
                                           Json::object()
                                               .set("system", "http://terminology.hl7.org/CodeSystem/location-physical-type")
                                               .set("code", physical)
                                               .set("display", physical == "bd" ? "Bed" : "Room"))));
  }
  std::string url = c.create("Location", id, std::move(l));
  return Ctx::reference(url, name);
}

// ---- AllergyIntolerance --------------------------------------------------------------------

void addAllergy(Ctx& c, const Segment& al1, const std::string& patientUrl, const Identity& patient) {
  hl7::CWE allergen = hl7::CWE::from(al1.field(3));
  Json code = c.codeableConcept(allergen);
  if (code.empty()) {
    c.error(101, c.at(&al1, 3), "AL1-3 (allergen) is empty");
    return;
  }
  // No identifier in AL1: the allergy is identified by patient + allergen.
  std::string allergenKey = !allergen.code.empty() ? (allergen.system.empty() ? "" : allergen.system + ":") + allergen.code
                                                   : "text:" + (allergen.text.empty() ? allergen.originalText : allergen.text);
  Identity id{c.opts.localPrefix + "allergy", patient.system + "#" + patient.value + "#" + allergenKey};

  Json a = Json::object();
  a.set("identifier", Json::array().push(c.identifier(id, {})));
  a.set("clinicalStatus",
        Json::object().set("coding", Json::array().push(
                                         Json::object()
                                             .set("system", "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical")
                                             .set("code", "active")
                                             .set("display", "Active"))));
  const std::string type = al1.field(2).value();
  std::string category;
  if (type == "DA") category = "medication";
  if (type == "FA") category = "food";
  if (type == "EA" || type == "AA" || type == "PA" || type == "LA") category = "environment";
  if (!type.empty() && type != "MC") a.set("type", "allergy");
  if (!category.empty()) a.set("category", Json::array().push(category));
  const std::string severity = al1.field(4).value();
  std::string criticality, reactionSeverity;
  if (severity == "SV") {
    criticality = "high";
    reactionSeverity = "severe";
  } else if (severity == "MO") {
    criticality = "low";
    reactionSeverity = "moderate";
  } else if (severity == "MI") {
    criticality = "low";
    reactionSeverity = "mild";
  } else if (severity == "U") {
    criticality = "unable-to-assess";
  }
  a.set("criticality", criticality);
  a.set("code", std::move(code));
  a.set("patient", Ctx::reference(patientUrl));
  if (auto onset = c.date(al1.field(6), c.at(&al1, 6))) a.set("onsetDateTime", *onset);
  Json manifestations = Json::array();
  for (const Element& rep : al1.field(5).repetitions()) {
    std::string t = c.text(rep);
    if (!t.empty()) manifestations.push(Json::object().set("text", t));
  }
  if (!manifestations.empty()) {
    a.set("reaction", Json::array().push(
                          Json::object().set("manifestation", std::move(manifestations)).set("severity", reactionSeverity)));
  }
  bool added = false;
  c.update("AllergyIntolerance", id, std::move(a), &added);
  if (!added) c.warn(207, c.at(&al1, 3), "the same allergen is listed twice: the later AL1 is ignored");
}

// ---- Coverage ------------------------------------------------------------------------------

namespace {

std::string subscriberRelationship(std::string_view v2) {
  if (v2.empty()) return {};
  if (v2 == "SEL") return "self";
  if (v2 == "SPO") return "spouse";
  if (v2 == "CHD" || v2 == "NCH" || v2 == "SCH" || v2 == "FCH") return "child";
  if (v2 == "MTH" || v2 == "FTH" || v2 == "PAR") return "parent";
  if (v2 == "DOM") return "common";
  return "other";
}

Json coverageClass(std::string_view type, const std::string& value, const std::string& name) {
  if (cleanText(value).empty()) return {};
  return Json::object()
      .set("type", Json::object().set(
                       "coding", Json::array().push(Json::object()
                                                        .set("system", "http://terminology.hl7.org/CodeSystem/coverage-class")
                                                        .set("code", std::string(type)))))
      .set("value", value)
      .set("name", name);
}

}  // namespace

void addCoverage(Ctx& c, const Segment& in1, const Segment* in2, const std::string& patientUrl) {
  std::string policy = cleanText(in1.field(36).value());
  if (policy.empty()) policy = cleanText(hl7::CX::from(in1.field(49)).id);
  if (policy.empty()) {
    c.warn(101, c.at(&in1, 36), "IN1-36 (policy number) is empty: the Coverage is left out");
    return;
  }
  // Insurer: conditional create on IN1-3; a display-only reference when only IN1-4 names it.
  hl7::CX insurerId = hl7::CX::from(in1.field(3));
  const std::string insurerName = cleanText(in1.field(4).value());
  Json payor;
  std::string insurerKey;
  const Identity org = c.identityOf(insurerId, IdKind::Organization);
  if (org.valid()) {
    Json o = Json::object();
    o.set("identifier", Json::array().push(c.identifier(insurerId, IdKind::Organization)));
    o.set("active", Json::boolean(true));
    o.set("type", Json::array().push(Json::object().set(
                      "coding", Json::array().push(Json::object()
                                                       .set("system", "http://terminology.hl7.org/CodeSystem/organization-type")
                                                       .set("code", "ins")
                                                       .set("display", "Insurance Company")))));
    o.set("name", insurerName);
    Json telecom = Json::array();
    for (const Element& rep : in1.field(7).repetitions()) telecom.push(c.contactPoint(hl7::XTN::from(rep), "work"));
    o.set("telecom", std::move(telecom));
    o.set("address", Json::array().push(c.address(hl7::XAD::from(in1.field(5)))));
    payor = Ctx::reference(c.create("Organization", org, std::move(o)), insurerName);
    insurerKey = org.value;
  } else if (!insurerName.empty()) {
    c.warn(101, c.at(&in1, 3), "IN1-3 (insurance company id) is empty: the insurer is named, not linked");
    payor = Json::object().set("display", insurerName);
    insurerKey = insurerName;
  } else {
    c.warn(101, c.at(&in1, 3), "IN1-3 and IN1-4 (insurer) are empty: the Coverage is left out");
    return;
  }
  Identity id{c.opts.localPrefix + "policy:" + uriSafe(insurerKey), policy};

  Json cov = Json::object();
  Json ids = Json::array().push(c.identifier(id, "MB"));
  if (in2) {
    hl7::CX member = hl7::CX::from(in2->field(61));
    if (!member.id.empty()) ids.push(c.identifier(member, IdKind::Other));
  }
  cov.set("identifier", std::move(ids));
  cov.set("status", "active");
  hl7::CWE planType = hl7::CWE::from(in1.field(15));
  if (!planType.empty()) cov.set("type", c.codeableConcept(planType));
  const std::string relation = in1.field(17).value();
  const std::string rel = subscriberRelationship(relation);
  const hl7::XPN insured = hl7::XPN::from(in1.field(16));
  Json subscriber;
  if (rel == "self") {
    subscriber = Ctx::reference(patientUrl);
  } else if (!insured.family.empty() || !insured.given.empty()) {
    subscriber = Json::object().set("display", insured.given.empty() ? insured.family : insured.given + " " + insured.family);
  }
  cov.set("policyHolder", subscriber);
  cov.set("subscriber", subscriber);
  cov.set("subscriberId", policy);
  cov.set("beneficiary", Ctx::reference(patientUrl));
  if (!rel.empty()) {
    cov.set("relationship", Json::object().set(
                                "coding", Json::array().push(
                                              Json::object()
                                                  .set("system", "http://terminology.hl7.org/CodeSystem/subscriber-relationship")
                                                  .set("code", rel))));
  }
  Json period = Json::object();
  if (auto s = c.date(in1.field(12), c.at(&in1, 12))) period.set("start", *s);
  if (auto e = c.date(in1.field(13), c.at(&in1, 13))) period.set("end", *e);
  cov.set("period", std::move(period));
  cov.set("payor", Json::array().push(std::move(payor)));
  Json classes = Json::array();
  hl7::CWE plan = hl7::CWE::from(in1.field(2));
  classes.push(coverageClass("plan", plan.code, plan.text));
  classes.push(coverageClass("group", in1.field(8).value(), in1.field(9).value()));
  cov.set("class", std::move(classes));
  const std::string priority = in1.field(22).value();
  if (!priority.empty() && priority.size() < 4 && allDigits(priority) &&
      std::stoi(priority) > 0) {
    cov.set("order", Json::number(std::to_string(std::stoi(priority))));
  }
  bool added = false;
  c.update("Coverage", id, std::move(cov), &added);
  if (!added) c.warn(207, c.at(&in1, 36), "the same policy is listed twice: the later IN1 is ignored");
}

// ---- orders, numbers -----------------------------------------------------------------------

OrderIds orderIds(Ctx& c, const Segment* orc, const Segment* obr) {
  OrderIds ids;
  auto pick = [&](int orcField, int obrField, IdKind kind) {
    Identity id;
    if (orc) id = c.identityOf(hl7::EI::from(orc->field(orcField)), kind);
    if (!id.valid() && obr) id = c.identityOf(hl7::EI::from(obr->field(obrField)), kind);
    return id;
  };
  ids.placer = pick(2, 2, IdKind::Placer);
  ids.filler = pick(3, 3, IdKind::Filler);
  return ids;
}

Json orderIdentifiers(Ctx& c, const OrderIds& ids) {
  return Json::array().push(c.identifier(ids.placer, "PLAC")).push(c.identifier(ids.filler, "FILL"));
}

std::optional<std::string> decimalOf(Ctx& c, const Element& e, const Loc& where) {
  if (e.empty() || e.isNull()) return std::nullopt;
  std::string v = e.value();
  if (v.empty()) return std::nullopt;
  auto d = hl7::toDecimal(v);
  if (!d) c.error(102, where, "not a number (NM)");
  return d;
}

Json quantity(const std::string& value, const hl7::CWE& units, std::string_view comparator) {
  Json q = Json::object();
  q.set("value", Json::number(value));
  q.set("comparator", std::string(comparator));
  std::string unit = units.text.empty() ? units.code : units.text;
  q.set("unit", unit);
  // qty-3: a code needs its system, so both or neither.
  std::string code = units.system == "UCUM" ? codeSafe(units.code) : std::string();
  if (code.empty() && units.altSystem == "UCUM") code = codeSafe(units.altCode);
  if (!code.empty()) {
    q.set("system", "http://unitsofmeasure.org");
    q.set("code", code);
  }
  return q;
}

}  // namespace hearth::adapters
