#include "hearth/workflows/scheduling.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <ctime>
#include <set>
#include <vector>

#include "workflow_support.h"
#include "hearth/fhir/error.h"
#include "hearth/fhir/interactions.h"
#include "hearth/fhir/search_index.h"
#include "hearth/fhir/store.h"
#include "hearth/workflows/availability.h"

namespace hearth::workflows {

namespace {

using namespace detail;

using fhir::FhirError;
using fhir::IssueType;
using fhir::SqlRow;
using fhir::SqlValue;

constexpr size_t kMaxSlots = 5000;
constexpr int64_t kDayUs = 86400LL * 1000000;




FhirError badParameter(const std::string& what) { return FhirError(400, IssueType::Value, what, "Parameters.parameter"); }

// Current content and version of type/id inside the unit; nullopt if absent or deleted.
std::optional<std::pair<std::string, int64_t>> current(fhir::StoreTransaction& tx, const std::string& type,
                                                       const std::string& id) {
  const auto rows = tx.query({"SELECT v.content, c.version FROM resource_current c JOIN resource_version v ON v.seq = c.seq "
                              "WHERE c.type = ? AND c.id = ? AND NOT c.deleted",
                              {type, id}});
  if (rows.empty()) return std::nullopt;
  return std::make_pair(text(rows[0][0]), integer(rows[0][1]));
}

std::string withStatus(const std::string& json, const std::string& status, bool hadStatus = true) {
  return fhir::applyJsonPatch(json, std::string(R"([{"op":")") + (hadStatus ? "replace" : "add") +
                                        R"(","path":"/status","value":)" + jsonString(status) + "}]");
}

std::vector<std::string> slotIds(const rapidjson::Value& appointment) {
  std::vector<std::string> ids;
  if (!appointment.HasMember("slot") || !appointment["slot"].IsArray()) return ids;
  for (const auto& s : appointment["slot"].GetArray()) {
    const std::string ref(str(s, "reference"));
    if (ref.rfind("Slot/", 0) != 0 || !fhir::ResourceService::isValidId(ref.substr(5))) {
      throw FhirError(422, IssueType::Value, "Appointment.slot must reference Slot/<id> of this server", "Appointment.slot");
    }
    ids.push_back(ref.substr(5));
  }
  return ids;
}

}  // namespace

std::string generateScheduleSlots(fhir::ResourceService& service, const std::string& scheduleId,
                                  const std::string& parametersJson) {
  fhir::ResourceService::checkId(scheduleId);
  (void)service.read("Schedule", scheduleId);  // 404 / 410
  const rapidjson::Document params = parseExact(parametersJson);
  if (str(params, "resourceType") != "Parameters") throw FhirError(400, IssueType::Invalid, "$generate-slots takes a Parameters resource");
  WorkingHours hours;
  hours.breaks.clear();
  std::string start, end, offset = "+00:00";
  bool haveFrom = false, haveTo = false, haveLength = false;
  if (params.HasMember("parameter") && params["parameter"].IsArray()) {
    for (const auto& p : params["parameter"].GetArray()) {
      const std::string_view name = str(p, "name");
      const std::string value(!str(p, "valueString").empty() ? str(p, "valueString") : str(p, "valueDate"));
      auto number = [&]() -> int {
        const std::string_view n = str(p, "valueInteger");
        if (n.empty() || n.size() > 4 || n.find_first_not_of("0123456789") != std::string_view::npos) {
          throw badParameter(std::string(name) + " must be a whole number");
        }
        return std::stoi(std::string(n));
      };
      if (name == "start") start = value;
      if (name == "end") end = value;
      if (name == "utcOffset") offset = value;
      if (name == "daysOfWeek") {
        const auto mask = parseDays(value);
        if (!mask) throw badParameter("daysOfWeek must be like mon-fri or mon,wed,fri");
        hours.daysMask = *mask;
      }
      if (name == "from" || name == "to") {
        const auto minute = parseClock(value);
        if (!minute) throw badParameter(std::string(name) + " must be a time HH:MM");
        (name == "from" ? hours.startMinute : hours.endMinute) = *minute;
        (name == "from" ? haveFrom : haveTo) = true;
      }
      if (name == "break") {
        const size_t dash = value.find('-');
        const auto a = parseClock(value.substr(0, dash)), b = dash == std::string::npos ? std::nullopt : parseClock(value.substr(dash + 1));
        if (!a || !b) throw badParameter("break must be like 12:00-13:00");
        hours.breaks.emplace_back(*a, *b);
      }
      if (name == "slotMinutes") {
        hours.slotMinutes = number();
        haveLength = true;
      }
      if (name == "gapMinutes") hours.gapMinutes = number();
    }
  }
  if (!haveFrom || !haveTo || !haveLength) throw badParameter("from, to and slotMinutes are required");
  if (offset.size() != 6 || (offset[0] != '+' && offset[0] != '-') || !parseClock(offset.substr(1))) {
    throw badParameter("utcOffset must be like +01:00");
  }
  hours.utcOffsetMinutes = (offset[0] == '-' ? -1 : 1) * *parseClock(offset.substr(1));
  int64_t fromLo = 0, ignore = 0, toLo = 0;
  if (start.size() != 10 || !fhir::fhirDateRange(start, fromLo, ignore)) throw badParameter("start must be a date");
  if (end.size() != 10 || !fhir::fhirDateRange(end, toLo, ignore)) throw badParameter("end must be a date");
  if (toLo < fromLo) throw badParameter("end is before start");
  if (const std::string why = validate(hours); !why.empty()) throw badParameter(why);
  // Local days [start, end] as UTC instants.
  const int64_t offsetUs = hours.utcOffsetMinutes * 60LL * 1000000;
  const int64_t rangeFrom = fromLo - offsetUs, rangeTo = toLo + kDayUs - offsetUs;
  std::vector<Interval> slots;
  try {
    slots = generateSlots(hours, rangeFrom, rangeTo, kMaxSlots);
  } catch (const std::length_error&) {
    throw FhirError(422, IssueType::TooCostly, "More than 5000 slots: generate a shorter period per call");
  }

  size_t created = 0, skipped = 0;
  service.runAtomic([&](fhir::WriteContext& ctx) {
    created = skipped = 0;
    fhir::StoreTransaction& tx = ctx.tx();
    tx.lockKey("slots:Schedule/" + scheduleId);
    std::set<int64_t> existing;
    for (const SqlRow& r : tx.query({"SELECT d.lo FROM search_reference r JOIN search_date d ON d.type = r.type AND d.id = r.id "
                                     "AND d.param = 'start' WHERE r.type = 'Slot' AND r.param = 'schedule' "
                                     "AND r.target_type = 'Schedule' AND r.target_id = ? AND d.lo >= ? AND d.lo < ?",
                                     {scheduleId, rangeFrom, rangeTo}})) {
      existing.insert(integer(r[0]));
    }
    for (const Interval& slot : slots) {
      if (existing.count(slot.startUs)) {
        ++skipped;
        continue;
      }
      ctx.create("Slot", R"({"resourceType":"Slot","schedule":{"reference":"Schedule/)" + scheduleId +
                             R"("},"status":"free","start":")" + isoUtc(slot.startUs) + R"(","end":")" +
                             isoUtc(slot.endUs) + R"("})");
      ++created;
    }
  });
  return R"({"resourceType":"Parameters","parameter":[{"name":"created","valueInteger":)" + std::to_string(created) +
         R"(},{"name":"skipped","valueInteger":)" + std::to_string(skipped) + "}]}";
}

fhir::WriteOutcome bookAppointment(fhir::ResourceService& service, const std::string& appointmentJson) {
  const rapidjson::Document doc = parseExact(appointmentJson);
  if (str(doc, "resourceType") != "Appointment") throw FhirError(400, IssueType::Invalid, "$book takes an Appointment", "Appointment");
  std::string body = appointmentJson;
  if (str(doc, "status").empty()) body = withStatus(body, "booked", false);
  const std::vector<std::string> slots = slotIds(doc);
  fhir::WriteOutcome out;
  service.runAtomic([&](fhir::WriteContext& ctx) {
    for (const std::string& id : slots) {
      const auto slot = current(ctx.tx(), "Slot", id);
      if (!slot) throw FhirError(422, IssueType::NotFound, "Slot/" + id + " does not exist", "Appointment.slot");
      const rapidjson::Document s = parseExact(slot->first);
      if (str(s, "status") != "free") {
        throw FhirError(409, IssueType::Conflict, "Slot/" + id + " is " + std::string(str(s, "status")) + ", not free",
                        "Appointment.slot");
      }
    }
    // The slot sync (booking.h, installSlotSync) marks the Slots busy in this transaction.
    out = ctx.create("Appointment", body);
  });
  return out;
}

fhir::WriteOutcome cancelAppointment(fhir::ResourceService& service, const std::string& appointmentId,
                                     const std::string& parametersJson) {
  fhir::ResourceService::checkId(appointmentId);
  std::string status = "cancelled", reason;
  if (!parametersJson.empty()) {
    const rapidjson::Document params = parseExact(parametersJson);
    if (str(params, "resourceType") != "Parameters") throw FhirError(400, IssueType::Invalid, "$cancel takes a Parameters resource");
    if (params.HasMember("parameter") && params["parameter"].IsArray()) {
      for (const auto& p : params["parameter"].GetArray()) {
        if (str(p, "name") == "status") status = std::string(!str(p, "valueCode").empty() ? str(p, "valueCode") : str(p, "valueString"));
        if (str(p, "name") == "reason") reason = std::string(str(p, "valueString"));
      }
    }
  }
  if (status != "cancelled" && status != "noshow") throw badParameter("status must be cancelled or noshow");
  (void)service.read("Appointment", appointmentId);  // 404 / 410
  fhir::WriteOutcome out;
  service.runAtomic([&](fhir::WriteContext& ctx) {
    const auto appt = current(ctx.tx(), "Appointment", appointmentId);
    if (!appt) throw FhirError(404, IssueType::NotFound, "Appointment/" + appointmentId + " is not known");
    const rapidjson::Document doc = parseExact(appt->first);
    std::string patch = R"([{"op":"replace","path":"/status","value":)" + jsonString(status) + "}";
    if (!reason.empty()) {
      patch += R"(,{"op":"add","path":"/cancelationReason","value":{"text":)" + jsonString(reason) + "}}";
    }
    patch += "]";
    out = ctx.update("Appointment", appointmentId, fhir::applyJsonPatch(appt->first, patch), appt->second);
    for (const std::string& id : slotIds(doc)) {
      const auto slot = current(ctx.tx(), "Slot", id);
      if (!slot) continue;
      if (str(parseExact(slot->first), "status") != "busy") continue;
      ctx.update("Slot", id, withStatus(slot->first, "free"), slot->second);
    }
  });
  return out;
}

}  // namespace hearth::workflows
