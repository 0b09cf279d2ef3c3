// Orders: ORM^O01 and OML^O21 -> ServiceRequest (ORC + OBR), RDE^O11 -> MedicationRequest
// (ORC + RXE + TQ1 + RXR).
#include "mappers.h"
#include "v2_tables.h"

namespace hearth::adapters {

using hl7::Element;
using hl7::Group;
using hl7::Segment;

namespace {

std::string_view lookup(std::initializer_list<std::pair<std::string_view, std::string_view>> map, std::string_view k) {
  for (const auto& [from, to] : map) {
    if (from == k) return to;
  }
  return {};
}

// ORC-5 order status (table 0038).
std::string_view serviceStatusFromOrderStatus(std::string_view v2) {
  return lookup({{"A", "active"}, {"CA", "revoked"}, {"CM", "completed"}, {"DC", "revoked"}, {"ER", "entered-in-error"},
                 {"HD", "on-hold"}, {"IP", "active"}, {"RP", "revoked"}, {"SC", "active"}},
                v2);
}
std::string_view medicationStatusFromOrderStatus(std::string_view v2) {
  return lookup({{"A", "active"}, {"CA", "cancelled"}, {"CM", "completed"}, {"DC", "stopped"}, {"ER", "entered-in-error"},
                 {"HD", "on-hold"}, {"IP", "active"}, {"RP", "stopped"}, {"SC", "active"}},
                v2);
}
// ORC-1 order control (table 0119): cancellations, discontinuations and holds; every other
// control code leaves the order active.
std::string_view serviceStatusFromControl(std::string_view v2) {
  std::string_view s = lookup({{"CA", "revoked"}, {"OC", "revoked"}, {"CR", "revoked"}, {"DC", "revoked"},
                               {"OD", "revoked"}, {"DR", "revoked"}, {"HD", "on-hold"}, {"OH", "on-hold"},
                               {"HR", "on-hold"}},
                              v2);
  return s.empty() ? "active" : s;
}
std::string_view medicationStatusFromControl(std::string_view v2) {
  std::string_view s = lookup({{"CA", "cancelled"}, {"OC", "cancelled"}, {"CR", "cancelled"}, {"DC", "stopped"},
                               {"OD", "stopped"}, {"DR", "stopped"}, {"HD", "on-hold"}, {"OH", "on-hold"},
                               {"HR", "on-hold"}},
                              v2);
  return s.empty() ? "active" : s;
}

// Status from ORC-5 (when mapped) else ORC-1; "" after an error.
std::string orderStatus(Ctx& c, const Segment* orc, std::string_view fallback, bool medication) {
  if (orc) {
    const std::string v5 = orc->field(5).value();
    if (!v5.empty()) {
      std::string_view s = medication ? medicationStatusFromOrderStatus(v5) : serviceStatusFromOrderStatus(v5);
      if (!s.empty()) return std::string(s);
      c.warn(103, c.at(orc, 5), "ORC-5 (order status) is not a code of HL7 table 0038: status from ORC-1");
    }
  }
  if (!fallback.empty()) return std::string(fallback);
  if (!orc) {
    c.error(100, Loc{"ORC"}, "order without ORC");
    return {};
  }
  const std::string control = orc->field(1).value();
  if (control.empty()) {
    c.error(101, c.at(orc, 1), "ORC-1 (order control) is empty");
    return {};
  }
  if (!tables::contains("0119", control)) {
    c.error(103, c.at(orc, 1), "ORC-1 (order control) is not a code of HL7 table 0119");
    return {};
  }
  return std::string(medication ? medicationStatusFromControl(control) : serviceStatusFromControl(control));
}

// Priority: TQ1-9 (table 0485), else component 6 of ORC-7 / OBR-27 (TQ).
std::string priorityOf(const Segment* tq1, const Segment* orc, const Segment* obr) {
  std::string code;
  if (tq1) code = tq1->field(9).value();
  if (code.empty() && orc) code = orc->field(7).component(6).value();
  if (code.empty() && obr) code = obr->field(27).component(6).value();
  return std::string(lookup({{"S", "stat"}, {"A", "asap"}, {"R", "routine"}, {"T", "urgent"}}, code));
}

// Start of the order: TQ1-7, else ORC-7.4 / OBR-27.4.
std::optional<std::string> startOf(Ctx& c, const Segment* tq1, const Segment* orc, const Segment* obr) {
  if (tq1 && tq1->field(7).present()) return c.dateTime(tq1->field(7), c.at(tq1, 7));
  if (orc && orc->field(7).component(4).present()) return c.dateTime(orc->field(7).component(4), c.at(orc, 7, 0, 4));
  if (obr && obr->field(27).component(4).present()) return c.dateTime(obr->field(27).component(4), c.at(obr, 27, 0, 4));
  return std::nullopt;
}

Json requesterOf(Ctx& c, const Segment* orc, const Segment* obr) {
  Json who;
  if (orc) who = practitionerRef(c, orc->field(12));
  if (who.empty() && obr) who = practitionerRef(c, obr->field(16));
  return who;
}

}  // namespace

std::string addServiceRequest(Ctx& c, const Segment* orc, const Segment* obr, const Segment* tq1,
                              const std::vector<const Segment*>& ntes, const std::vector<const Segment*>& dg1s,
                              const std::string& patientUrl, const std::string& encounterUrl, WriteMode mode,
                              std::string_view fallbackStatus) {
  OrderIds ids = orderIds(c, orc, obr);
  const Identity& key = ids.placer.valid() ? ids.placer : ids.filler;
  if (!key.valid()) {
    c.error(101, orc ? c.at(orc, 2) : c.at(obr, 2), "neither a placer (ORC-2/OBR-2) nor a filler order number");
    return {};
  }
  Json code = obr ? c.codeableConcept(hl7::CWE::from(obr->field(4))) : Json();
  if (code.empty()) {
    c.error(101, obr ? c.at(obr, 4) : Loc{"OBR"}, "OBR-4 (universal service identifier) is empty");
    return {};
  }
  std::string status = orderStatus(c, orc, fallbackStatus, false);
  if (status.empty()) return {};

  Json s = Json::object();
  s.set("identifier", orderIdentifiers(c, ids));
  s.set("status", status);
  s.set("intent", "order");
  s.set("priority", priorityOf(tq1, orc, obr));
  s.set("code", std::move(code));
  s.set("subject", Ctx::reference(patientUrl));
  if (!encounterUrl.empty()) s.set("encounter", Ctx::reference(encounterUrl));
  if (auto start = startOf(c, tq1, orc, obr)) s.set("occurrenceDateTime", *start);
  if (orc) {
    if (auto authored = c.dateTime(orc->field(9), c.at(orc, 9))) s.set("authoredOn", *authored);
  }
  s.set("requester", requesterOf(c, orc, obr));
  Json reasons = Json::array();
  for (const Segment* dg1 : dg1s) {
    hl7::CWE dx = hl7::CWE::from(dg1->field(3));
    if (!dx.empty()) reasons.push(c.codeableConcept(dx));
  }
  s.set("reasonCode", std::move(reasons));
  s.set("note", c.notes(ntes));
  return mode == WriteMode::Update ? c.update("ServiceRequest", key, std::move(s))
                                   : c.create("ServiceRequest", key, std::move(s));
}

namespace {

struct PatientContext {
  std::string patientUrl, encounterUrl;
};

// The PATIENT group of ORM/OML/RDE: Patient and Encounter as conditional creates.
std::optional<PatientContext> orderPatient(Ctx& c, const Group& root) {
  const Group* patient = root.group("PATIENT");
  const Segment* pid = patient ? patient->segment("PID") : nullptr;
  if (!pid) {
    c.error(100, Loc{"PID"}, "order without a PID: no patient to order for");
    return std::nullopt;
  }
  PatientContext pc;
  pc.patientUrl = addPatient(c, *pid, WriteMode::Create);
  if (pc.patientUrl.empty()) return std::nullopt;
  const Group* visit = patient->group("PATIENT_VISIT");
  if (const Segment* pv1 = visit ? visit->segment("PV1") : nullptr) {
    pc.encounterUrl = addEncounter(c, *pv1, pc.patientUrl, WriteMode::Create, false);
  }
  return pc;
}

}  // namespace

void mapServiceOrders(Ctx& c) {
  hl7::GroupTree tree = hl7::GroupTree::build(c.msg);
  const Group& root = tree.root();
  auto pc = orderPatient(c, root);
  if (!pc) return;
  const std::vector<const Group*> orders = root.groups("ORDER");
  if (orders.empty()) c.error(100, Loc{"ORC"}, "no ORDER (ORC) in the message");
  for (const Group* order : orders) {
    const Segment* orc = order->segment("ORC");
    // ORM_O01: ORDER_DETAIL holds OBR (or another detail segment); OML_O21: OBSERVATION_REQUEST.
    const Group* detail = order->group("ORDER_DETAIL");
    if (!detail) detail = order->group("OBSERVATION_REQUEST");
    const Segment* obr = detail ? detail->segment("OBR") : nullptr;
    if (!obr) {
      c.warn(207, c.at(orc, 1), "ORC without OBR (not a service order): not mapped");
      continue;
    }
    const Group* timing = order->group("TIMING");
    const Segment* tq1 = timing ? timing->segment("TQ1") : nullptr;
    addServiceRequest(c, orc, obr, tq1, detail->segments("NTE"), detail->segments("DG1"), pc->patientUrl,
                      pc->encounterUrl, WriteMode::Update);
  }
}

// ---- RDE -----------------------------------------------------------------------------------

namespace {

// Timing.repeat of the common repeat patterns (table 0335); empty for others.
Json repeatOf(const std::string& pattern) {
  auto every = [](int frequency, int period, const char* unit) {
    return Json::object()
        .set("frequency", Json::number(std::to_string(frequency)))
        .set("period", Json::number(std::to_string(period)))
        .set("periodUnit", unit);
  };
  if (pattern == "QD" || pattern == "Q1D") return every(1, 1, "d");
  if (pattern == "BID") return every(2, 1, "d");
  if (pattern == "TID") return every(3, 1, "d");
  if (pattern == "QID") return every(4, 1, "d");
  if (pattern == "QOD") return every(1, 2, "d");
  if (pattern == "QAM") return every(1, 1, "d").set("when", Json::array().push("MORN"));
  if (pattern == "QPM") return every(1, 1, "d").set("when", Json::array().push("EVE"));
  if (pattern == "QHS") return every(1, 1, "d").set("when", Json::array().push("HS"));
  // Q<n>H, Q<n>D, Q<n>W, Q<n>L (months), Q<n>M (minutes), Q<n>S (seconds)
  if (pattern.size() >= 3 && pattern[0] == 'Q') {
    const std::string n = pattern.substr(1, pattern.size() - 2);
    const char unit = pattern.back();
    const char* fhirUnit = unit == 'H' ? "h" : unit == 'D' ? "d" : unit == 'W' ? "wk" : unit == 'L' ? "mo"
                         : unit == 'M' ? "min" : unit == 'S' ? "s" : nullptr;
    if (fhirUnit && allDigits(n) && n.size() < 5 && std::stoi(n) > 0) return every(1, std::stoi(n), fhirUnit);
  }
  return {};
}

Json timingOf(Ctx& c, const Segment* tq1, const Segment& rxe) {
  Json timing = Json::object();
  std::string pattern;
  Json boundsPeriod = Json::object();
  if (tq1) {
    pattern = tq1->field(3).component(1).subcomponent(1).value();
    if (auto s = c.dateTime(tq1->field(7), c.at(tq1, 7))) boundsPeriod.set("start", *s);
    if (auto e = c.dateTime(tq1->field(8), c.at(tq1, 8))) boundsPeriod.set("end", *e);
  } else {
    // v2.3/2.4: RXE-1 (TQ): 2 interval (repeat pattern), 4 start, 5 end.
    const Element tq = rxe.field(1);
    pattern = tq.component(2).subcomponent(1).value();
    if (auto s = c.dateTime(tq.component(4), c.at(&rxe, 1, 0, 4))) boundsPeriod.set("start", *s);
    if (auto e = c.dateTime(tq.component(5), c.at(&rxe, 1, 0, 5))) boundsPeriod.set("end", *e);
  }
  Json repeat = repeatOf(pattern);
  if (pattern == "PRN") repeat = Json();
  if (!boundsPeriod.empty()) {
    if (repeat.empty()) repeat = Json::object();
    repeat.set("boundsPeriod", std::move(boundsPeriod));
  }
  timing.set("repeat", std::move(repeat));
  if (!pattern.empty()) timing.set("code", c.tableConcept("0335", pattern));
  return timing;
}

}  // namespace

void mapRde(Ctx& c) {
  hl7::GroupTree tree = hl7::GroupTree::build(c.msg);
  const Group& root = tree.root();
  auto pc = orderPatient(c, root);
  if (!pc) return;
  const std::vector<const Group*> orders = root.groups("ORDER");
  if (orders.empty()) c.error(100, Loc{"ORC"}, "no ORDER (ORC) in the message");
  for (const Group* order : orders) {
    const Segment* orc = order->segment("ORC");
    const Segment* rxe = order->segment("RXE");
    if (!rxe) {
      c.error(100, Loc{"RXE"}, "pharmacy order without RXE");
      continue;
    }
    OrderIds ids = orderIds(c, orc, nullptr);
    const Identity& key = ids.placer.valid() ? ids.placer : ids.filler;
    if (!key.valid()) {
      c.error(101, c.at(orc, 2), "neither a placer (ORC-2) nor a filler (ORC-3) order number");
      continue;
    }
    Json drug = c.codeableConcept(hl7::CWE::from(rxe->field(2)));
    if (drug.empty()) {
      c.error(101, c.at(rxe, 2), "RXE-2 (give code) is empty");
      continue;
    }
    std::string status = orderStatus(c, orc, {}, true);
    if (status.empty()) continue;

    const Group* encoded = order->group("TIMING_ENCODED");
    const Group* timingGroup = order->group("TIMING");
    const Segment* tq1 = encoded ? encoded->segment("TQ1") : nullptr;
    if (!tq1 && timingGroup) tq1 = timingGroup->segment("TQ1");

    Json m = Json::object();
    m.set("identifier", orderIdentifiers(c, ids));
    m.set("status", status);
    m.set("intent", "order");
    m.set("priority", priorityOf(tq1, orc, nullptr));
    m.set("medicationCodeableConcept", std::move(drug));
    m.set("subject", Ctx::reference(pc->patientUrl));
    if (!pc->encounterUrl.empty()) m.set("encounter", Ctx::reference(pc->encounterUrl));
    if (orc) {
      if (auto authored = c.dateTime(orc->field(9), c.at(orc, 9))) m.set("authoredOn", *authored);
      m.set("requester", practitionerRef(c, orc->field(12)));
    }
    Json notes = c.notes(order->segments("NTE"));
    const std::string dispensing = c.text(rxe->field(21));
    if (!dispensing.empty()) notes.push(Json::object().set("text", dispensing));
    m.set("note", std::move(notes));

    Json dosage = Json::object();
    Json additional = Json::array();
    for (const Element& rep : rxe->field(7).repetitions()) {
      hl7::CWE instr = hl7::CWE::from(rep);
      if (!instr.empty()) additional.push(c.codeableConcept(instr));
    }
    dosage.set("additionalInstruction", std::move(additional));
    dosage.set("timing", timingOf(c, tq1, *rxe));
    if (tq1 && tq1->field(3).value() == "PRN") dosage.set("asNeededBoolean", Json::boolean(true));
    const std::vector<const Segment*> rxrs = order->segments("RXR");
    if (!rxrs.empty()) {
      hl7::CWE route = hl7::CWE::from(rxrs.front()->field(1));
      if (!route.empty()) dosage.set("route", c.codeableConcept(route, "0162"));
      hl7::CWE site = hl7::CWE::from(rxrs.front()->field(2));
      if (!site.empty()) dosage.set("site", c.codeableConcept(site, "0163"));
    }
    const hl7::CWE units = hl7::CWE::from(rxe->field(5));
    auto minDose = decimalOf(c, rxe->field(3), c.at(rxe, 3));
    auto maxDose = decimalOf(c, rxe->field(4), c.at(rxe, 4));
    if (minDose) {
      Json doseAndRate = Json::object();
      if (maxDose && *maxDose != *minDose) {
        doseAndRate.set("doseRange", Json::object().set("low", quantity(*minDose, units)).set("high", quantity(*maxDose, units)));
      } else {
        doseAndRate.set("doseQuantity", quantity(*minDose, units));
      }
      dosage.set("doseAndRate", Json::array().push(std::move(doseAndRate)));
    }
    m.set("dosageInstruction", Json::array().push(std::move(dosage)));

    Json dispense = Json::object();
    if (auto amount = decimalOf(c, rxe->field(10), c.at(rxe, 10))) {
      dispense.set("quantity", quantity(*amount, hl7::CWE::from(rxe->field(11))));
    }
    const std::string refills = rxe->field(12).value();
    if (allDigits(refills) && refills.size() < 5) {
      dispense.set("numberOfRepeatsAllowed", Json::number(std::to_string(std::stoi(refills))));
    }
    m.set("dispenseRequest", std::move(dispense));
    if (c.failed()) continue;
    c.update("MedicationRequest", key, std::move(m));
  }
}

}  // namespace hearth::adapters
