// SIU^S12/S13/S14/S15/S26 -> Appointment (SCH, TQ1, PID, AIS, AIP, AIL).
#include "mappers.h"

namespace hearth::adapters {

using hl7::Element;
using hl7::Group;
using hl7::Segment;

namespace {

// SCH-25 filler status (table 0278) -> Appointment.status.
std::string_view statusFromFiller(std::string_view v2) {
  static const std::pair<std::string_view, std::string_view> kMap[] = {
      {"Blocked", "booked"},   {"Booked", "booked"},        {"Cancelled", "cancelled"}, {"Complete", "fulfilled"},
      {"DC", "cancelled"},     {"Deleted", "entered-in-error"}, {"Discontinued", "cancelled"},
      {"Noshow", "noshow"},    {"Overbook", "booked"},      {"Pending", "pending"},     {"Started", "arrived"},
      {"Waitlist", "waitlist"},
  };
  for (const auto& [from, to] : kMap) {
    if (from == v2) return to;
  }
  return {};
}

// Days since 1970-01-01 of a civil date (proleptic Gregorian) and back.
long long daysFromCivil(int y, int m, int d) {
  y -= m <= 2;
  const long long era = (y >= 0 ? y : y - 399) / 400;
  const long long yoe = y - era * 400;
  const long long doy = (153LL * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}
void civilFromDays(long long z, int& y, int& m, int& d) {
  z += 719468;
  const long long era = (z >= 0 ? z : z - 146096) / 146097;
  const long long doe = z - era * 146097;
  const long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const long long mp = (5 * doy + 2) / 153;
  d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  y = static_cast<int>(yoe + era * 400 + (m <= 2));
}

// dt + minutes, in dt's own zone (at least minute precision).
hl7::DateTime addMinutes(hl7::DateTime dt, long long minutes) {
  if (dt.precision < hl7::DateTime::Precision::Minute) dt.precision = hl7::DateTime::Precision::Minute;
  const int month = dt.month ? dt.month : 1, day = dt.day ? dt.day : 1;
  long long total = daysFromCivil(dt.year, month, day) * 1440 + dt.hour * 60 + dt.minute + minutes;
  long long days = total >= 0 ? total / 1440 : (total - 1439) / 1440;
  long long rest = total - days * 1440;
  civilFromDays(days, dt.year, dt.month, dt.day);
  dt.hour = static_cast<int>(rest / 60);
  dt.minute = static_cast<int>(rest % 60);
  return dt;
}

// SCH-9 duration with SCH-10 units in minutes; nullopt when not a positive whole number of
// minutes or hours.
std::optional<long long> durationMinutes(const Segment& sch) {
  const std::string n = sch.field(9).value();
  if (!allDigits(n) || n.size() > 6) return std::nullopt;
  long long value = std::stoll(n);
  const std::string unit = sch.field(10).value();
  if (unit.empty() || unit == "min" || unit == "MIN" || unit == "minutes" || unit == "M") {
    // v2 expresses an appointment's duration in minutes unless told otherwise
  } else if (unit == "h" || unit == "H" || unit == "hr" || unit == "HR" || unit == "hours") {
    value *= 60;
  } else {
    return std::nullopt;
  }
  if (value <= 0) return std::nullopt;
  return value;
}

}  // namespace

void mapSiu(Ctx& c, const std::string& trigger) {
  hl7::GroupTree tree = hl7::GroupTree::build(c.msg);
  const Group& root = tree.root();
  const Segment* sch = root.segment("SCH");
  if (!sch) {
    c.error(100, Loc{"SCH"}, "SCH segment missing");
    return;
  }
  const Identity placer = c.identityOf(hl7::EI::from(sch->field(1)), IdKind::Placer);
  const Identity filler = c.identityOf(hl7::EI::from(sch->field(2)), IdKind::Filler);
  const Identity& key = filler.valid() ? filler : placer;
  if (!key.valid()) {
    c.error(101, c.at(sch, 1), "neither a placer (SCH-1) nor a filler (SCH-2) appointment id");
    return;
  }

  // Status from the event; an S14 (modification) carries it in SCH-25.
  std::string status;
  if (trigger == "S12" || trigger == "S13") status = "booked";
  if (trigger == "S15") status = "cancelled";
  if (trigger == "S26") status = "noshow";
  if (trigger == "S14") {
    const std::string fillerStatus = sch->field(25).value();
    std::string_view s = statusFromFiller(fillerStatus);
    if (!fillerStatus.empty() && s.empty()) {
      c.warn(103, c.at(sch, 25), "SCH-25 (filler status) is not a code of HL7 table 0278: booked assumed");
    }
    status = s.empty() ? "booked" : std::string(s);
  }

  // Timing: TQ1-7/8, else SCH-11 (TQ) components 4/5; the end from SCH-9/10 when only the start
  // is known.
  const std::vector<const Segment*> tq1s = root.segments("TQ1");
  const Segment* tq1 = tq1s.empty() ? nullptr : tq1s.front();
  std::optional<hl7::DateTime> start, end;
  Loc startLoc = c.at(sch, 11, 0, 4), endLoc = c.at(sch, 11, 0, 5);
  const Element startEl = tq1 && tq1->field(7).present() ? tq1->field(7) : sch->field(11).component(4);
  const Element endEl = tq1 && tq1->field(8).present() ? tq1->field(8) : sch->field(11).component(5);
  if (tq1 && tq1->field(7).present()) startLoc = c.at(tq1, 7);
  if (tq1 && tq1->field(8).present()) endLoc = c.at(tq1, 8);
  auto parseTime = [&](const Element& e, const Loc& where) -> std::optional<hl7::DateTime> {
    if (e.empty()) return std::nullopt;
    auto dt = hl7::DateTime::from(e);
    if (!dt) {
      c.error(102, where, "not a valid date/time");
    } else if (dt->precision < hl7::DateTime::Precision::Hour) {
      // Appointment.start/end are instants: a date alone does not say when.
      c.error(102, where, "an appointment time needs at least the hour");
      dt.reset();
    }
    return dt;
  };
  start = parseTime(startEl, startLoc);
  end = parseTime(endEl, endLoc);
  const std::optional<long long> minutes = durationMinutes(*sch);
  if (start && !end && minutes) end = addMinutes(*start, *minutes);
  const bool needsTimes = status != "proposed" && status != "cancelled" && status != "waitlist";
  if (needsTimes && (!start || !end) && !c.failed()) {
    c.error(101, startLoc, "the appointment's start and end (TQ1-7/8 or SCH-11.4/11.5) are required");
    return;
  }

  Json a = Json::object();
  a.set("identifier", Json::array().push(c.identifier(placer, "PLAC")).push(c.identifier(filler, "FILL")));
  a.set("status", status);
  if (status == "cancelled") {
    hl7::CWE reason = hl7::CWE::from(sch->field(6));
    if (!reason.empty()) a.set("cancelationReason", c.codeableConcept(reason));
  }
  Json serviceTypes = Json::array();
  for (const Group* res : root.groups("RESOURCES")) {
    for (const Group* svc : res->groups("SERVICE")) {
      const Segment* ais = svc->segment("AIS");
      if (!ais) continue;
      hl7::CWE service = hl7::CWE::from(ais->field(3));
      if (!service.empty()) serviceTypes.push(c.codeableConcept(service));
    }
  }
  a.set("serviceType", std::move(serviceTypes));
  hl7::CWE type = hl7::CWE::from(sch->field(8));
  if (!type.empty()) a.set("appointmentType", c.codeableConcept(type, "0277"));
  hl7::CWE reason = hl7::CWE::from(sch->field(7));
  if (!reason.empty()) a.set("reasonCode", Json::array().push(c.codeableConcept(reason, "0276")));
  if (start) {
    if (auto s = c.dateTimeOf(*start, startLoc)) a.set("start", *s);
  }
  if (end) {
    if (auto e = c.dateTimeOf(*end, endLoc)) a.set("end", *e);
  }
  if (minutes) a.set("minutesDuration", Json::number(std::to_string(*minutes)));
  std::string comment;
  for (const Segment* nte : root.segments("NTE")) {
    std::string t = c.textAllRepetitions(nte->field(3));
    if (t.empty()) continue;
    if (!comment.empty()) comment.push_back('\n');
    comment += t;
  }
  a.set("comment", comment);

  Json participants = Json::array();
  auto participant = [&](Json actor, Json type) {
    if (actor.empty()) return;
    Json p = Json::object();
    if (!type.empty()) p.set("type", Json::array().push(std::move(type)));
    p.set("actor", std::move(actor));
    p.set("status", "accepted");
    participants.push(std::move(p));
  };
  for (const Group* patient : root.groups("PATIENT")) {
    if (const Segment* pid = patient->segment("PID")) {
      std::string url = addPatient(c, *pid, WriteMode::Create);
      if (!url.empty()) participant(Ctx::reference(url), {});
    }
  }
  bool general = false;
  for (const Group* res : root.groups("RESOURCES")) {
    for (const Group* g : res->groups("PERSONNEL_RESOURCE")) {
      const Segment* aip = g->segment("AIP");
      if (!aip) continue;
      hl7::CWE role = hl7::CWE::from(aip->field(4));
      for (const Element& rep : aip->field(3).repetitions()) {
        participant(practitionerRef(c, rep), role.empty() ? Json() : c.codeableConcept(role));
      }
    }
    for (const Group* g : res->groups("LOCATION_RESOURCE")) {
      if (const Segment* ail = g->segment("AIL")) participant(locationRef(c, ail->field(3)), {});
    }
    general = general || !res->groups("GENERAL_RESOURCE").empty();
  }
  if (general) c.warn(207, Loc{"AIG"}, "AIG general resources (equipment) are not mapped");
  if (participants.empty()) {
    c.error(100, Loc{"PID"}, "an appointment needs a participant: no PID, AIP or AIL");
    return;
  }
  a.set("participant", std::move(participants));
  if (c.failed()) return;
  c.update("Appointment", key, std::move(a));
}

}  // namespace hearth::adapters
