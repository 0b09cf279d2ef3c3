#pragma once
// The per-message mappings (one file each) and the resource builders they share
// (resources.cpp). Every function reports problems through the Ctx and adds entries to it.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "context.h"
#include "hearth/hl7/groups.h"

namespace hearth::adapters {

// Conditional update (the message owns the resource) or conditional create (it only refers to it).
enum class WriteMode { Update, Create };

// ---- shared resource builders (resources.cpp) -------------------------------------------------

// The Patient of a PID (identifiers, names, demographics; NK1 -> Patient.contact; PD1-4 ->
// generalPractitioner). The key identity is the first PID-3 of type MR, else the first PID-3.
// nullopt (error 101 at PID-3) when PID-3 holds no identifier.
struct PatientDraft {
  Identity id;
  Json resource;
};
std::optional<PatientDraft> buildPatient(Ctx& c, const hl7::Segment& pid,
                                         const std::vector<const hl7::Segment*>& nk1s = {},
                                         const hl7::Segment* pd1 = nullptr);
// Builds and adds the Patient; returns its fullUrl ("" on error).
std::string addPatient(Ctx& c, const hl7::Segment& pid, WriteMode mode,
                       const std::vector<const hl7::Segment*>& nk1s = {}, const hl7::Segment* pd1 = nullptr);

// The Encounter of a PV1 (PV1-19 visit number is its identity). Returns "" when there is none:
// PV1-2 "N" (not applicable), or no visit number (error 101 when `required`, else a warning).
// trigger: the ADT event (A03 finishes the encounter); evn: its EVN for the discharge time.
std::string addEncounter(Ctx& c, const hl7::Segment& pv1, const std::string& patientUrl, WriteMode mode,
                         bool required, std::string_view trigger = {}, const hl7::Segment* evn = nullptr);

// A reference to the Practitioner of an XCN: conditional create on XCN-1 (+ XCN-9 authority);
// a display-only reference when the XCN has a name but no id; empty when the XCN is empty.
Json practitionerRef(Ctx& c, const hl7::Element& xcn);
// A reference to the Location of a PL (point of care ^ room ^ bed, conditional create).
Json locationRef(Ctx& c, const hl7::Element& pl);

// AL1 -> AllergyIntolerance (conditional update on patient + allergen).
void addAllergy(Ctx& c, const hl7::Segment& al1, const std::string& patientUrl, const Identity& patient);
// IN1 (+ IN2) -> Coverage with the insurer Organization.
void addCoverage(Ctx& c, const hl7::Segment& in1, const hl7::Segment* in2, const std::string& patientUrl);

// Order numbers of an ORC/OBR pair (ORC first, OBR as fallback).
struct OrderIds {
  Identity placer;
  Identity filler;
};
OrderIds orderIds(Ctx& c, const hl7::Segment* orc, const hl7::Segment* obr);
// [placer (type PLAC), filler (type FILL)] identifiers.
Json orderIdentifiers(Ctx& c, const OrderIds& ids);

// ORC/OBR (+ TQ1, NTE, DG1) -> ServiceRequest, identified by the placer order number (the
// filler's when there is none). Status from ORC-5 (table 0038), else fallbackStatus when given
// (an ORU's order), else from ORC-1 (table 0119, required). Returns its fullUrl ("" on error).
std::string addServiceRequest(Ctx& c, const hl7::Segment* orc, const hl7::Segment* obr, const hl7::Segment* tq1,
                              const std::vector<const hl7::Segment*>& ntes,
                              const std::vector<const hl7::Segment*>& dg1s, const std::string& patientUrl,
                              const std::string& encounterUrl, WriteMode mode, std::string_view fallbackStatus = {});

// Decimal text of an NM element (102 at `where` when not numeric); nullopt when absent.
std::optional<std::string> decimalOf(Ctx& c, const hl7::Element& e, const Loc& where);
// Quantity {value, unit, system, code} from a decimal and a CWE of units (UCUM when CWE-3 or
// the alternate triplet says so).
Json quantity(const std::string& value, const hl7::CWE& units, std::string_view comparator = {});

// ---- the message mappings ----------------------------------------------------------------------
void mapAdt(Ctx& c, const std::string& trigger);
void mapSiu(Ctx& c, const std::string& trigger);
void mapOru(Ctx& c);
void mapServiceOrders(Ctx& c);  // ORM^O01, OML^O21
void mapRde(Ctx& c);
void mapDft(Ctx& c);

}  // namespace hearth::adapters
