#pragma once
// Pharmacy stock (issue 6 item 3): units on hand per Medication and lot (batch number, expiry),
// changed by receipts and dispenses in the same transaction as what changes them, never negative,
// first-expiry-first-out, expired lots never dispensed, exact under concurrent dispensing.
//
//  - Receipt: POST Medication/<id>/$stock-receive with Parameters lot (valueString), expiry
//    (valueDate), quantity (valueInteger > 0) and optionally reorderLevel (valueInteger >= 0).
//    Adds to the lot (the same lot with another expiry: 422). Answers the Medication's stock.
//  - Dispense: a MedicationDispense written with status completed, medicationReference
//    Medication/<id> and quantity.value a whole number > 0 takes that many units FEFO from the
//    unexpired lots (expiry >= today, UTC) in the dispense's own transaction; when they do not
//    hold enough, the dispense is refused (409, naming what is available and what has expired)
//    and nothing is stored. A dispense is applied once (later versions do not take stock again).
//    Stock management of a Medication starts with its first receipt: a completed dispense of a
//    Medication that was never received, or without a Medication reference (a coded medication
//    only), is not stock-managed and passes (pharmacies whose stock lives elsewhere keep working).
//  - Report: GET Medication/$stock (all stocked medications) or Medication/<id>/$stock, with
//    expiring-within=N (days, default 30): per Medication the usable total, the reorder level and
//    whether it is below it, and each lot with its expiry, units, expired / expiring flags.
// Stock lives in integration tables (schema 6), written only through these paths.
#include <string>

#include "hearth/fhir/service.h"

namespace hearth::workflows {

void installStockGuard(fhir::ResourceService& service);

std::string receiveStock(fhir::ResourceService& service, const std::string& medicationId, const std::string& parametersJson);

// medicationId empty: every Medication with stock rows.
std::string stockReport(fhir::ResourceService& service, const std::string& medicationId, int expiringWithinDays);

}  // namespace hearth::workflows
