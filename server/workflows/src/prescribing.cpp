#include "hearth/workflows/prescribing.h"

#include <rapidjson/document.h>

#include <set>
#include <vector>

#include "workflow_support.h"
#include "hearth/fhir/error.h"
#include "hearth/fhir/json.h"
#include "hearth/fhir/search_index.h"

namespace hearth::workflows {

namespace {

using namespace detail;

using fhir::FhirError;
using fhir::IssueType;


// What names a drug: "system|code" of each coding, and "text:<normalised>" of text and displays.
struct DrugKeys {
  std::set<std::string> keys;
  std::string label;  // for messages
  void add(const rapidjson::Value& cc) {
    if (!cc.IsObject()) return;
    if (!str(cc, "text").empty()) {
      keys.insert("text:" + fhir::normalizeSearchString(str(cc, "text")));
      if (label.empty()) label = std::string(str(cc, "text"));
    }
    if (cc.HasMember("coding") && cc["coding"].IsArray()) {
      for (const auto& c : cc["coding"].GetArray()) {
        if (!str(c, "code").empty()) keys.insert(std::string(str(c, "system")) + "|" + std::string(str(c, "code")));
        if (!str(c, "display").empty()) {
          keys.insert("text:" + fhir::normalizeSearchString(str(c, "display")));
          if (label.empty()) label = std::string(str(c, "display"));
        }
        if (label.empty() && !str(c, "code").empty()) label = std::string(str(c, "code"));
      }
    }
  }
  bool overlaps(const DrugKeys& o) const {
    for (const auto& k : keys)
      if (o.keys.count(k)) return true;
    return false;
  }
};

DrugKeys medicationOf(fhir::ResourceService& service, const rapidjson::Value& request) {
  DrugKeys d;
  if (request.HasMember("medicationCodeableConcept")) d.add(request["medicationCodeableConcept"]);
  if (request.HasMember("medicationReference")) {
    const std::string ref(str(request["medicationReference"], "reference"));
    if (ref.rfind("Medication/", 0) == 0 && fhir::ResourceService::isValidId(ref.substr(11))) {
      try {
        const auto med = service.read("Medication", ref.substr(11));
        const rapidjson::Document m = fhir::parseJson(med->json);
        if (m.HasMember("code")) d.add(m["code"]);
      } catch (const FhirError&) {
        // unknown or deleted Medication: nothing to compare
      }
    }
  }
  return d;
}

}  // namespace

std::string checkPrescription(fhir::ResourceService& service, fhir::SearchEngine& search,
                              const std::string& medicationRequestJson) {
  const rapidjson::Document req = fhir::parseJson(medicationRequestJson);
  if (str(req, "resourceType") != "MedicationRequest") {
    throw FhirError(400, IssueType::Invalid, "$check takes a MedicationRequest", "MedicationRequest");
  }
  const std::string subject(req.HasMember("subject") ? str(req["subject"], "reference") : std::string_view());
  if (subject.rfind("Patient/", 0) != 0 || !fhir::ResourceService::isValidId(subject.substr(8))) {
    throw FhirError(400, IssueType::Required, "The MedicationRequest needs subject Patient/<id>", "MedicationRequest.subject");
  }
  const DrugKeys drug = medicationOf(service, req);
  const std::string selfId(str(req, "id"));
  std::vector<fhir::Issue> issues;

  for (const std::string& id : search.matchIds("AllergyIntolerance", "patient=" + subject + "&clinical-status=active", nullptr, 200)) {
    std::shared_ptr<const fhir::StoredVersion> a;
    try {
      a = service.read("AllergyIntolerance", id);
    } catch (const FhirError&) {
      continue;
    }
    const rapidjson::Document allergy = fhir::parseJson(a->json);
    DrugKeys allergen;
    if (allergy.HasMember("code")) allergen.add(allergy["code"]);
    if (allergy.HasMember("reaction") && allergy["reaction"].IsArray()) {
      for (const auto& r : allergy["reaction"].GetArray())
        if (r.IsObject() && r.HasMember("substance")) allergen.add(r["substance"]);
    }
    if (drug.overlaps(allergen)) {
      issues.push_back({fhir::Severity::Warning, IssueType::BusinessRule,
                        "The patient has an active allergy to " + (allergen.label.empty() ? drug.label : allergen.label) +
                            " (AllergyIntolerance/" + id + ")",
                        "MedicationRequest.medication"});
    }
  }
  for (const std::string& id : search.matchIds("MedicationRequest", "subject=" + subject + "&status=active", nullptr, 200)) {
    if (id == selfId) continue;
    std::shared_ptr<const fhir::StoredVersion> m;
    try {
      m = service.read("MedicationRequest", id);
    } catch (const FhirError&) {
      continue;
    }
    const rapidjson::Document other = fhir::parseJson(m->json);
    if (drug.overlaps(medicationOf(service, other))) {
      issues.push_back({fhir::Severity::Warning, IssueType::BusinessRule,
                        "An active order for the same drug exists: MedicationRequest/" + id,
                        "MedicationRequest.medication"});
    }
  }
  if (issues.empty()) {
    issues.push_back({fhir::Severity::Information, IssueType::Informational, "No interactions found", ""});
  }
  return fhir::operationOutcomeJson(issues);
}

}  // namespace hearth::workflows
