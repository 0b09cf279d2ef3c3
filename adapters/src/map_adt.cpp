// ADT: A01/A04/A08 (admit, register, update), A28/A31 (person add/update), A03 (discharge),
// A40 (merge patient identifier list).
#include "mappers.h"

namespace hearth::adapters {

using hl7::Element;
using hl7::Group;
using hl7::Segment;

namespace {

Json link(const std::string& otherUrl, std::string_view type) {
  return Json::object().set("other", Ctx::reference(otherUrl)).set("type", std::string(type));
}

// A40: for each PATIENT group the surviving patient (PID) replaces the old one (MRG-1).
// Both are conditional updates: the survivor is written from its PID (an ADT feed owns the
// patient) with link "replaces"; the old record keeps only what MRG says (identifiers, MRG-7
// name), active=false and link "replaced-by" (see adapters/README.md for why).
void mapMerge(Ctx& c, const Group& root) {
  const std::vector<const Group*> patients = root.groups("PATIENT");
  if (patients.empty()) {
    c.error(100, Loc{"PID"}, "A40 without a PID/MRG patient group");
    return;
  }
  for (const Group* g : patients) {
    const Segment* pid = g->segment("PID");
    const Segment* mrg = g->segment("MRG");
    if (!pid) {
      c.error(100, Loc{"PID"}, "PATIENT group without PID");
      continue;
    }
    if (!mrg) {
      c.error(100, Loc{"MRG"}, "A40 patient group without MRG");
      continue;
    }
    auto survivor = buildPatient(c, *pid);
    Json oldIds = Json::array();
    Identity oldKey;
    bool oldKeyIsMr = false;
    for (const Element& rep : mrg->field(1).repetitions()) {
      hl7::CX cx = hl7::CX::from(rep);
      Identity id = c.identityOf(cx, IdKind::Mrn);
      if (!id.valid()) continue;
      if (!oldKey.valid() || (!oldKeyIsMr && cx.identifierTypeCode == "MR")) {
        oldKey = id;
        oldKeyIsMr = cx.identifierTypeCode == "MR";
      }
      oldIds.push(c.identifier(cx, IdKind::Mrn));
    }
    if (!oldKey.valid()) {
      c.error(101, c.at(mrg, 1), "MRG-1 (prior patient identifier list) holds no identifier");
      continue;
    }
    if (!survivor) continue;
    if (survivor->id.system == oldKey.system && survivor->id.value == oldKey.value) {
      c.error(207, c.at(mrg, 1), "MRG-1 names the surviving patient itself");
      continue;
    }
    const std::string oldUrl = c.urlFor("Patient", oldKey);
    const std::string survivorUrl = c.urlFor("Patient", survivor->id);

    Json old = Json::object();
    old.set("identifier", std::move(oldIds));
    old.set("active", Json::boolean(false));
    Json names = Json::array();
    for (const Element& rep : mrg->field(7).repetitions()) names.push(c.humanName(hl7::XPN::from(rep)));
    old.set("name", std::move(names));
    old.set("link", Json::array().push(link(survivorUrl, "replaced-by")));
    c.update("Patient", oldKey, std::move(old));

    Json& s = survivor->resource;
    s.set("active", Json::boolean(true));
    s.set("link", Json::array().push(link(oldUrl, "replaces")));
    c.update("Patient", survivor->id, std::move(s));
  }
}

}  // namespace

void mapAdt(Ctx& c, const std::string& trigger) {
  hl7::GroupTree tree = hl7::GroupTree::build(c.msg);
  const Group& root = tree.root();
  if (trigger == "A40") {
    mapMerge(c, root);
    return;
  }
  const Segment* pid = root.segment("PID");
  if (!pid) {
    c.error(100, Loc{"PID"}, "PID segment missing");
    return;
  }
  auto draft = buildPatient(c, *pid, root.segments("NK1"), root.segment("PD1"));
  if (!draft) return;
  const Identity patientId = draft->id;
  const std::string patientUrl = c.update("Patient", draft->id, std::move(draft->resource));

  // A28/A31 add or update a person, not a visit: their PV1 (required, usually "N") is not mapped.
  const bool visitEvent = trigger != "A28" && trigger != "A31";
  const Segment* pv1 = root.segment("PV1");
  if (visitEvent) {
    if (pv1) {
      addEncounter(c, *pv1, patientUrl, WriteMode::Update, trigger == "A03", trigger, root.segment("EVN"));
    } else if (trigger == "A03") {
      c.error(100, Loc{"PV1"}, "A03 without PV1: no visit to discharge");
    }
  }
  for (const Segment* al1 : root.segments("AL1")) addAllergy(c, *al1, patientUrl, patientId);
  for (const Group* ins : root.groups("INSURANCE")) {
    if (const Segment* in1 = ins->segment("IN1")) addCoverage(c, *in1, ins->segment("IN2"), patientUrl);
  }
}

}  // namespace hearth::adapters
