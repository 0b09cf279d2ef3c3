#include "hearth/workflows/booking.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "workflow_support.h"
#include "hearth/fhir/error.h"
#include "hearth/fhir/json.h"
#include "hearth/fhir/interactions.h"
#include "hearth/fhir/search_index.h"
#include "hearth/fhir/store.h"

namespace hearth::workflows {

namespace {

using namespace detail;

using fhir::FhirError;
using fhir::IssueType;
using fhir::SqlQuery;
using fhir::SqlRow;
using fhir::SqlValue;
using fhir::StoreTransaction;

constexpr int64_t kMinuteUs = 60LL * 1000 * 1000;

bool isActive(std::string_view status) {
  return status == "pending" || status == "booked" || status == "arrived" || status == "checked-in" ||
         status == "fulfilled";
}

bool bookableType(std::string_view t) {
  return t == "Practitioner" || t == "PractitionerRole" || t == "Location" || t == "Device" || t == "HealthcareService";
}


struct Booking {
  bool active = false;
  bool timed = false;
  int64_t startUs = 0, endUs = 0;
  std::vector<std::pair<std::string, std::string>> actors;  // (type, id), bookable and not declined
  std::vector<std::string> slots;                            // Slot ids
};

// "Type/id" (relative, optionally with _history) -> (type, id); empty type otherwise.
std::pair<std::string, std::string> splitReference(std::string_view ref) {
  const size_t slash = ref.find('/');
  if (slash == std::string_view::npos || slash == 0 || ref.find(':') != std::string_view::npos) return {};
  std::string_view id = ref.substr(slash + 1);
  id = id.substr(0, id.find('/'));
  if (id.empty()) return {};
  return {std::string(ref.substr(0, slash)), std::string(id)};
}

Booking readBooking(std::string_view json, int maxMinutes) {
  Booking b;
  const rapidjson::Document doc = fhir::parseJson(json);
  b.active = isActive(str(doc, "status"));
  if (!b.active) return b;
  const std::string_view start = str(doc, "start"), end = str(doc, "end");
  int64_t lo = 0, hi = 0;
  if (!start.empty() && fhir::fhirDateRange(start, lo, hi)) {
    b.startUs = lo;
    int64_t elo = 0, ehi = 0;
    if (!end.empty() && fhir::fhirDateRange(end, elo, ehi)) {
      b.endUs = elo;
      b.timed = true;
    } else if (auto md = doc.FindMember("minutesDuration"); md != doc.MemberEnd() && md->value.IsInt()) {
      b.endUs = lo + md->value.GetInt() * kMinuteUs;
      b.timed = true;
    }
  }
  if (b.timed) {
    if (b.endUs < b.startUs) {
      throw FhirError(422, IssueType::Invariant, "The appointment ends before it starts", "Appointment.end");
    }
    if (b.endUs - b.startUs > maxMinutes * kMinuteUs) {
      throw FhirError(422, IssueType::BusinessRule,
                      "The appointment is longer than " + std::to_string(maxMinutes) +
                          " minutes, the longest this server books",
                      "Appointment.end");
    }
  }
  if (auto parts = doc.FindMember("participant"); parts != doc.MemberEnd() && parts->value.IsArray()) {
    for (const auto& p : parts->value.GetArray()) {
      if (str(p, "status") == "declined") continue;
      auto actor = p.IsObject() ? p.FindMember("actor") : rapidjson::Value::ConstMemberIterator();
      if (!p.IsObject() || actor == p.MemberEnd()) continue;
      auto [type, id] = splitReference(str(actor->value, "reference"));
      if (bookableType(type)) b.actors.emplace_back(std::move(type), std::move(id));
    }
  }
  if (auto slots = doc.FindMember("slot"); slots != doc.MemberEnd() && slots->value.IsArray()) {
    for (const auto& s : slots->value.GetArray()) {
      auto [type, id] = splitReference(str(s, "reference"));
      if (type == "Slot") b.slots.push_back(std::move(id));
    }
  }
  std::sort(b.actors.begin(), b.actors.end());
  b.actors.erase(std::unique(b.actors.begin(), b.actors.end()), b.actors.end());
  std::sort(b.slots.begin(), b.slots.end());
  b.slots.erase(std::unique(b.slots.begin(), b.slots.end()), b.slots.end());
  return b;
}


// Other live Appointments referring to target through `param` (and, for actors, starting in
// [fromUs, beforeUs)): (id, content). The date test is written `d.param || ''` / `d.lo + 0` so
// that SQLite looks the row up by (type, id) for each candidate instead of scanning every
// appointment in the date range per candidate (the (type, param, lo) index; quadratic).
std::vector<SqlRow> candidates(StoreTransaction& tx, const std::string& param, const std::string& targetType,
                               const std::string& targetId, const std::string& selfId, bool timed, int64_t fromUs,
                               int64_t beforeUs) {
  SqlQuery q;
  q.sql =
      "SELECT c.id, v.content FROM search_reference r "
      "JOIN resource_current c ON c.type = r.type AND c.id = r.id "
      "JOIN resource_version v ON v.seq = c.seq "
      "WHERE r.type = 'Appointment' AND r.param = ? AND r.target_type = ? AND r.target_id = ? AND r.id <> ? "
      "AND NOT c.deleted";
  q.params = {param, targetType, targetId, selfId};
  if (timed) {
    q.sql +=
        " AND EXISTS (SELECT 1 FROM search_date d WHERE d.type = 'Appointment' AND d.id = r.id "
        "AND d.param || '' = 'date' AND d.lo + 0 < ? AND d.lo + 0 >= ?)";
    q.params.emplace_back(beforeUs);
    q.params.emplace_back(fromUs);
  }
  return tx.query(q);
}

void check(StoreTransaction& tx, const fhir::StoredVersion& v, const BookingGuardOptions& options) {
  if (v.type != "Appointment" || v.deleted) return;
  const Booking b = readBooking(v.json, options.maxAppointmentMinutes);
  if (!b.active || (b.actors.empty() && b.slots.empty())) return;

  std::vector<std::string> keys;
  if (b.timed)
    for (const auto& [type, id] : b.actors) keys.push_back("booking:" + type + "/" + id);
  for (const std::string& s : b.slots) keys.push_back("booking:Slot/" + s);
  std::sort(keys.begin(), keys.end());
  for (const std::string& k : keys) tx.lockKey(k);

  for (const std::string& slot : b.slots) {
    for (const SqlRow& row : candidates(tx, "slot", "Slot", slot, v.id, false, 0, 0)) {
      if (!readBooking(text(row.at(1)), INT32_MAX).active) continue;
      throw FhirError(409, IssueType::Conflict,
                      "Slot/" + slot + " is already booked by Appointment/" + text(row.at(0)), "Appointment.slot");
    }
  }
  if (!b.timed) return;
  const int64_t from = b.startUs - options.maxAppointmentMinutes * kMinuteUs;
  for (const auto& [type, id] : b.actors) {
    for (const SqlRow& row : candidates(tx, "actor", type, id, v.id, true, from, b.endUs)) {
      Booking other;
      try {
        other = readBooking(text(row.at(1)), INT32_MAX);
      } catch (const FhirError&) {
        continue;  // a stored appointment this guard would refuse now cannot be compared
      }
      if (!other.active || !other.timed) continue;
      if (other.startUs < b.endUs && b.startUs < other.endUs) {
        throw FhirError(409, IssueType::Conflict,
                        type + "/" + id + " is already booked at that time by Appointment/" + text(row.at(0)),
                        "Appointment.participant.actor");
      }
    }
  }
}

// Slot ids of an Appointment body (relative references), whatever its status.
std::vector<std::string> slotsOf(std::string_view json) {
  std::vector<std::string> out;
  const rapidjson::Document doc = fhir::parseJson(json);
  if (auto slots = doc.FindMember("slot"); slots != doc.MemberEnd() && slots->value.IsArray()) {
    for (const auto& s : slots->value.GetArray()) {
      auto [type, id] = splitReference(str(s, "reference"));
      if (type == "Slot") out.push_back(std::move(id));
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// Content and version of the live Slot/id, if any.
std::optional<std::pair<std::string, int64_t>> liveSlot(StoreTransaction& tx, const std::string& id) {
  const auto rows = tx.query({"SELECT v.content, c.version FROM resource_current c JOIN resource_version v ON v.seq = c.seq "
                              "WHERE c.type = 'Slot' AND c.id = ? AND NOT c.deleted",
                              {id}});
  if (rows.empty()) return std::nullopt;
  return std::make_pair(text(rows[0][0]), integer(rows[0][1]));
}

// `slotJson` with status set to `status` (numbers kept verbatim).
std::string withSlotStatus(const std::string& slotJson, const std::string& status) {
  return fhir::applyJsonPatch(slotJson, R"([{"op":"replace","path":"/status","value":)" + jsonString(status) + "}]");
}

void syncSlots(fhir::WriteContext& ctx, const fhir::StoredVersion& v) {
  if (v.type != "Appointment") return;
  StoreTransaction& tx = ctx.tx();
  std::vector<std::string> now, before;
  if (!v.deleted && isActive(str(fhir::parseJson(v.json), "status"))) now = slotsOf(v.json);
  if (v.version > 1) {
    for (const SqlRow& r : tx.query({"SELECT content FROM resource_version WHERE type = 'Appointment' AND id = ? AND version = ?",
                                     {v.id, v.version - 1}})) {
      if (!text(r[0]).empty()) before = slotsOf(text(r[0]));
    }
  }
  for (const std::string& id : now) {
    const auto slot = liveSlot(tx, id);
    if (!slot) continue;
    const std::string status(str(fhir::parseJson(slot->first), "status"));
    if (status == "busy") continue;  // held by this Appointment (the booking guard refuses a second holder)
    if (status != "free" && status != "busy-tentative") {
      throw FhirError(409, IssueType::Conflict, "Slot/" + id + " is " + status + " and cannot be booked",
                      "Appointment.slot");
    }
    ctx.update("Slot", id, withSlotStatus(slot->first, "busy"), slot->second);
  }
  for (const std::string& id : before) {
    if (std::binary_search(now.begin(), now.end(), id)) continue;
    const auto slot = liveSlot(tx, id);
    if (!slot || str(fhir::parseJson(slot->first), "status") != "busy") continue;
    bool held = false;
    for (const SqlRow& row : candidates(tx, "slot", "Slot", id, v.id, false, 0, 0)) {
      if (isActive(str(fhir::parseJson(text(row.at(1))), "status"))) held = true;
    }
    if (!held) ctx.update("Slot", id, withSlotStatus(slot->first, "free"), slot->second);
  }
}

}  // namespace

void installSlotSync(fhir::ResourceService& service) { service.addWriteFollower(syncSlots); }

void installBookingGuard(fhir::ResourceService& service, BookingGuardOptions options) {
  service.addWriteObserver([options](StoreTransaction& tx, const fhir::StoredVersion& v) { check(tx, v, options); });
}

}  // namespace hearth::workflows
