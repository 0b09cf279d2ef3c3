#pragma once
// Scheduling operations (issue 6 item 2), on top of the booking guard (booking.h):
//
//  - POST Schedule/<id>/$generate-slots with Parameters: start, end (valueDate, inclusive days),
//    daysOfWeek (valueString, "mon-fri" or "mon,wed"), from / to (valueString "08:00"), break
//    (valueString "12:00-13:00", repeatable), slotMinutes (valueInteger), gapMinutes (optional),
//    utcOffset (valueString "+01:00", default "+00:00"). Creates the free Slots of the Schedule in
//    one transaction (at most 5000 per call), skipping starts that already have a Slot, so running
//    it twice creates nothing new. Answers Parameters created / skipped.
//  - POST Appointment/$book with an Appointment (status booked if absent): creates it and marks
//    each referenced Slot busy, in one transaction; a Slot that is not free -> 409, nothing stored.
//    (The Slot changes through the slot sync of booking.h, as for a plain Appointment write.)
//    Walk-ins are booked the same way without a slot (start/end and participants only).
//  - POST Appointment/<id>/$cancel with optional Parameters status (cancelled | noshow, default
//    cancelled) and reason (valueString): sets the status and frees its Slots, in one transaction.
// Slot?schedule=Schedule/<id>&status=free&start=ge... then answers what is free.
#include <string>

#include "hearth/fhir/search.h"
#include "hearth/fhir/service.h"

namespace hearth::workflows {

std::string generateScheduleSlots(fhir::ResourceService& service, const std::string& scheduleId,
                                  const std::string& parametersJson);
fhir::WriteOutcome bookAppointment(fhir::ResourceService& service, const std::string& appointmentJson);
fhir::WriteOutcome cancelAppointment(fhir::ResourceService& service, const std::string& appointmentId,
                                     const std::string& parametersJson);

}  // namespace hearth::workflows
