#pragma once
// MedicationRequest/$check (issue 6 item 3): the basic safety checks a prescriber sees before
// signing, as an OperationOutcome of warnings (never an error: the prescriber decides):
//  - an active AllergyIntolerance of the patient whose code (or a reaction substance) names the
//    same drug: same coding (system and code) or the same text, case- and accent-insensitive;
//  - an active MedicationRequest of the patient for the same drug (same coding or text), other
//    than the one being checked.
// Input: the MedicationRequest (JSON). Its medication is medicationCodeableConcept or a
// medicationReference to a Medication of this server (its code). No warning: one information
// issue "No interactions found". 400 when it is not a MedicationRequest or has no subject.
#include <string>

#include "hearth/fhir/search.h"
#include "hearth/fhir/service.h"

namespace hearth::workflows {

std::string checkPrescription(fhir::ResourceService& service, fhir::SearchEngine& search,
                              const std::string& medicationRequestJson);

}  // namespace hearth::workflows
