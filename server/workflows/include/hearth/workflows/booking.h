#pragma once
// No double booking (issue 6 item 2): a write observer on the ResourceService that refuses, with
// 409 and an OperationOutcome naming the conflict, any Appointment version that would overlap an
// active Appointment of the same practitioner (or PractitionerRole, Location, Device,
// HealthcareService) or take a Slot another active Appointment holds.
//
// Race-free: the check runs inside the transaction that writes the Appointment, after taking a
// lock per booked actor and slot (StoreTransaction::lockKey, sorted so two bookings never wait on
// each other in a cycle). Of any number of concurrent overlapping bookings exactly one commits;
// on SQLite the single writer already serialises them, on PostgreSQL the advisory locks do, and a
// check that runs after the other booking committed sees it (READ COMMITTED: each statement reads
// the latest committed data).
//
// What counts:
//  - Active statuses: pending, booked, arrived, checked-in, fulfilled. proposed, waitlist,
//    cancelled, noshow and entered-in-error neither block nor are checked, so cancelling or
//    marking a no-show frees the time, and a waiting-list entry may overlap anything.
//  - An Appointment without start and end (or start + minutesDuration) has no time to overlap;
//    only its Slot is checked.
//  - Participants whose status is "declined" are not booked; relative references only
//    ("Practitioner/123"); the Patient is not checked (a patient may hold overlapping requests).
//  - Intervals are half-open: an appointment ending at 10:00 and one starting at 10:00 do not
//    overlap.
//  - Appointments are compared within maxAppointmentMinutes before the new start (the index
//    holds Appointment.start only); longer appointments are refused as implausible (422).
#include <cstdint>

#include "hearth/fhir/service.h"

namespace hearth::workflows {

struct BookingGuardOptions {
  int maxAppointmentMinutes = 24 * 60;
};

// Registers the guard on `service` (before it serves requests).
void installBookingGuard(fhir::ResourceService& service, BookingGuardOptions options = {});

// Keeps Slot.status in step with the Appointments that hold the Slots (a write follower, so the
// Slot changes in the transaction of the Appointment write, whichever way it is written: POST,
// PUT, PATCH, transaction/batch entries, $book, $cancel):
//  - an active Appointment (statuses above) referencing Slot/<id>: a free or busy-tentative Slot
//    becomes busy; a busy-unavailable or entered-in-error Slot cannot be booked (409); a Slot that
//    does not exist is left to referential checks (nothing happens);
//  - a Slot the Appointment held before this version (cancelled, noshow, another inactive status,
//    the slot reference removed, or the Appointment deleted) becomes free again when it is busy
//    and no other active Appointment holds it.
// Slot?schedule=...&status=free&start=ge... then answers what is free.
void installSlotSync(fhir::ResourceService& service);

}  // namespace hearth::workflows
