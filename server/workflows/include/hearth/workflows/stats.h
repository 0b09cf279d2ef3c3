#pragma once
// $hospital-stats: the administrator's figures for a period, read from the search index tables
// (one aggregate query per figure, never a scan of resource bodies), so it stays fast on a
// million resources. Definitions (also in the README):
//   newPatients            Patients whose first version was written in the period (registrations)
//   encounters             live Encounters whose period starts in the period
//   admissions             of those, class IMP (inpatient), ACUTE or NONAC
//   appointments.<status>  live Appointments starting in the period, per status (booked,
//                          fulfilled, cancelled, noshow, ...)
//   averageLeadDays        mean days from booking (first version) to start, over the period's
//                          appointments that were not cancelled / entered in error
//   invoiced.<currency>    sum of totalGross of Invoices dated in the period, status issued or
//                          balanced, per currency (exact decimal sum)
//   collected.<currency>   the same for balanced (paid) Invoices
//   dispensed              MedicationDispenses completed (status completed) handed over in the period
//   averageWaitMinutes     mean minutes from an Appointment's start to the period.start of the
//                          Encounter that names it (Encounter.appointment), over the period's
//                          Appointments that have one (negative when seen early; two decimals);
//                          waitSamples: how many such pairs. Both absent when there are none.
//   lowStockItems, lowStock   as of today: Medications whose usable stock (unexpired lots) is
//                          below their reorder level (> 0): medication, usable, reorderLevel
//   expiringLots, expiring as of today: lots with units left whose expiry is within
//                          expiring-within days (default 30; already expired ones included, flagged
//                          expired): medication, lot, expiry, quantity, expired (at most 1000 each)
// The period is [start, end] in whole days or instants, start's lower bound to end's upper bound.
#include <string>

#include "hearth/fhir/store.h"

namespace hearth::workflows {

// The figures as a FHIR Parameters resource (compact JSON). Throws FhirError 400 for a missing
// or malformed start/end or end before start.
std::string hospitalStats(fhir::ResourceStore& store, const std::string& start, const std::string& end,
                          int expiringWithinDays = 30);

}  // namespace hearth::workflows
