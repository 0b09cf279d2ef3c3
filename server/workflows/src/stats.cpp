#include "hearth/workflows/stats.h"

#include <cstdio>
#include <limits>
#include <map>
#include <vector>

#include "workflow_support.h"
#include "hearth/fhir/error.h"
#include "hearth/fhir/search_index.h"
#include "hearth/workflows/money.h"
#include "hearth/workflows/stock.h"

namespace hearth::workflows {

namespace {

using namespace detail;

using fhir::FhirError;
using fhir::IssueType;
using fhir::SqlQuery;
using fhir::SqlRow;
using fhir::SqlValue;



// A stored double back to the decimal it was indexed from (values come from FHIR decimals of at
// most 15-17 significant digits; %.15g gives the shortest form for the money amounts we store).
Decimal toDecimal(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  Decimal d;
  if (Decimal::tryParse(buf, d)) return d;
  std::snprintf(buf, sizeof buf, "%.6f", v);
  return Decimal::tryParse(buf, d) ? d : Decimal();
}

}  // namespace

std::string hospitalStats(fhir::ResourceStore& store, const std::string& start, const std::string& end,
                          int expiringWithinDays) {
  int64_t from = 0, ignore = 0, to = 0;
  if (start.empty() || !fhir::fhirDateRange(start, from, ignore)) {
    throw FhirError(400, IssueType::Invalid, "start must be a FHIR date or dateTime", "start");
  }
  if (end.empty() || !fhir::fhirDateRange(end, ignore, to)) {
    throw FhirError(400, IssueType::Invalid, "end must be a FHIR date or dateTime", "end");
  }
  if (to < from) throw FhirError(400, IssueType::Invalid, "end is before start", "end");
  auto count = [&](const std::string& sql, std::vector<SqlValue> params) {
    const auto rows = store.query({sql, std::move(params)});
    return rows.empty() ? int64_t{0} : integer(rows[0][0]);
  };

  const int64_t newPatients = count(
      "SELECT count(*) FROM resource_version WHERE type = 'Patient' AND version = 1 "
      "AND last_updated_us >= ? AND last_updated_us <= ?",
      {from, to});
  const std::string encounterWhere =
      "FROM search_date d WHERE d.type = 'Encounter' AND d.param = 'date' AND d.lo >= ? AND d.lo <= ?";
  const int64_t encounters = count("SELECT count(DISTINCT d.id) " + encounterWhere, {from, to});
  const int64_t admissions = count(
      "SELECT count(DISTINCT d.id) " + encounterWhere +
          " AND EXISTS (SELECT 1 FROM search_token t WHERE t.type = 'Encounter' AND t.id = d.id "
          "AND t.param || '' = 'class' AND t.code || '' IN ('IMP', 'ACUTE', 'NONAC'))",
      {from, to});

  std::map<std::string, int64_t> appointments;
  for (const SqlRow& row : store.query(
           {"SELECT t.code, count(DISTINCT d.id) FROM search_date d CROSS JOIN search_token t "
            "WHERE d.type = 'Appointment' AND d.param = 'date' AND d.lo >= ? AND d.lo <= ? "
            "AND t.type = d.type AND t.id = d.id AND t.param || '' = 'status' GROUP BY t.code",
            {from, to}})) {
    appointments[text(row[0])] = integer(row[1]);
  }
  // Lead time: appointment start minus the time its first version was written (booking).
  const auto lead = store.query(
      {"SELECT count(*), avg(d.lo - v.last_updated_us) FROM search_date d "
       "JOIN resource_version v ON v.type = d.type AND v.id = d.id AND v.version = 1 "
       "WHERE d.type = 'Appointment' AND d.param = 'date' AND d.lo >= ? AND d.lo <= ? "
       "AND NOT EXISTS (SELECT 1 FROM search_token t WHERE t.type = d.type AND t.id = d.id "
       "AND t.param || '' = 'status' AND t.code || '' IN ('cancelled', 'entered-in-error', 'proposed', 'waitlist'))",
       {from, to}});

  // Wait: the linked Encounter's period.start minus the Appointment's start, for the period's
  // Appointments that an Encounter names (Encounter.appointment). The reference row is found by
  // its target ((target_type, target_id) index); the Encounter's date row by (type, id): the
  // `e.param || ''` keeps SQLite from scanning every Encounter's date row through
  // (type, param, lo) for each appointment.
  const auto wait = store.query(
      {"SELECT count(*), avg(e.lo - d.lo) FROM search_date d "
       "JOIN search_reference r ON r.target_type = 'Appointment' AND r.target_id = d.id "
       "AND r.type = 'Encounter' AND r.param = 'appointment' "
       "JOIN search_date e ON e.type = 'Encounter' AND e.id = r.id AND e.param || '' = 'date' "
       "WHERE d.type = 'Appointment' AND d.param = 'date' AND d.lo >= ? AND d.lo <= ? "
       "AND e.lo > ?",  // an Encounter period without a start is open (INT64_MIN): no wait to measure
       {from, to, std::numeric_limits<int64_t>::min()}});

  std::map<std::string, Decimal> invoiced, collected;
  for (const SqlRow& row : store.query(
           {"SELECT q.code, q.value, t.code FROM search_date d CROSS JOIN search_token t CROSS JOIN search_quantity q "
            "WHERE d.type = 'Invoice' AND d.param = 'date' AND d.lo >= ? AND d.lo <= ? "
            "AND t.type = d.type AND t.id = d.id AND t.param || '' = 'status' AND t.code || '' IN ('issued', 'balanced') "
            "AND q.type = d.type AND q.id = d.id AND q.param || '' = 'totalgross'",
            {from, to}})) {
    const std::string currency = text(row[0]).empty() ? "XXX" : text(row[0]);
    const double* v = std::get_if<double>(&row[1]);
    const Decimal amount = v ? toDecimal(*v) : Decimal();
    invoiced[currency] += amount;
    if (text(row[2]) == "balanced") collected[currency] += amount;
  }
  const int64_t dispensed = count(
      "SELECT count(DISTINCT d.id) FROM search_date d WHERE d.type = 'MedicationDispense' "
      "AND d.param = 'whenhandedover' AND d.lo >= ? AND d.lo <= ? AND EXISTS (SELECT 1 FROM search_token t "
      "WHERE t.type = d.type AND t.id = d.id AND t.param || '' = 'status' AND t.code || '' = 'completed')",
      {from, to});

  // Pharmacy, as of today (not the period): Medications whose usable stock (unexpired lots) is
  // below their reorder level, and lots with units left that expire within N days (expired ones
  // still on the shelf included). The stock tables hold one row per Medication / lot.
  const std::string today = isoUtc(nowUs()).substr(0, 10);
  const std::string soon = addDays(today, expiringWithinDays);
  const auto lowStock = store.query(
      {"SELECT i.medication_id, i.reorder_level, "
       "coalesce(sum(CASE WHEN l.expiry >= ? THEN l.quantity ELSE 0 END), 0) AS usable "
       "FROM stock_item i LEFT JOIN stock_lot l ON l.medication_id = i.medication_id WHERE i.reorder_level > 0 "
       "GROUP BY i.medication_id, i.reorder_level "
       "HAVING coalesce(sum(CASE WHEN l.expiry >= ? THEN l.quantity ELSE 0 END), 0) < i.reorder_level "
       "ORDER BY i.medication_id LIMIT 1000",
       {today, today}});
  const auto expiring = store.query(
      {"SELECT medication_id, lot, expiry, quantity FROM stock_lot WHERE quantity > 0 AND expiry <= ? "
       "ORDER BY expiry, medication_id, lot LIMIT 1000",
       {soon}});

  std::string out = R"({"resourceType":"Parameters","parameter":[)";
  bool first = true;
  auto part = [&](const std::string& name, const std::string& valueJson) {
    if (!first) out += ',';
    first = false;
    out += R"({"name":)" + jsonString(name) + "," + valueJson + "}";
  };
  auto integerPart = [&](const std::string& name, int64_t n) { part(name, R"("valueInteger":)" + std::to_string(n)); };
  part("start", R"("valueString":)" + jsonString(start));
  part("end", R"("valueString":)" + jsonString(end));
  integerPart("newPatients", newPatients);
  integerPart("encounters", encounters);
  integerPart("admissions", admissions);
  if (!appointments.empty()) {
    std::string parts;
    for (const auto& [status, n] : appointments) {
      if (!parts.empty()) parts += ',';
      parts += R"({"name":)" + jsonString(status) + R"(,"valueInteger":)" + std::to_string(n) + "}";
    }
    if (!first) out += ',';
    first = false;
    out += R"({"name":"appointments","part":[)" + parts + "]}";
  }
  if (!lead.empty() && integer(lead[0][0]) > 0) {
    const double* avgUs = std::get_if<double>(&lead[0][1]);
    const Decimal micros = toDecimal(avgUs ? *avgUs : static_cast<double>(integer(lead[0][1])));
    const Decimal days = Decimal::divide(micros, Decimal::fromInt(86400LL * 1000000LL), 2);
    part("averageLeadDays", R"("valueDecimal":)" + days.toString());
  }
  if (!wait.empty() && integer(wait[0][0]) > 0) {
    const double* avgUs = std::get_if<double>(&wait[0][1]);
    const Decimal micros = toDecimal(avgUs ? *avgUs : static_cast<double>(integer(wait[0][1])));
    part("averageWaitMinutes", R"("valueDecimal":)" + Decimal::divide(micros, Decimal::fromInt(60LL * 1000000LL), 2).toString());
    integerPart("waitSamples", integer(wait[0][0]));
  }
  for (const auto& [currency, sum] : invoiced) {
    part("invoiced", R"("valueMoney":{"value":)" + sum.round(2).toString() + R"(,"currency":)" + jsonString(currency) + "}");
  }
  for (const auto& [currency, sum] : collected) {
    part("collected", R"("valueMoney":{"value":)" + sum.round(2).toString() + R"(,"currency":)" + jsonString(currency) + "}");
  }
  integerPart("dispensed", dispensed);
  integerPart("lowStockItems", static_cast<int64_t>(lowStock.size()));
  for (const SqlRow& r : lowStock) {
    part("lowStock", R"("part":[{"name":"medication","valueReference":{"reference":)" + jsonString("Medication/" + text(r[0])) +
                         R"(}},{"name":"usable","valueInteger":)" + std::to_string(integer(r[2])) +
                         R"(},{"name":"reorderLevel","valueInteger":)" + std::to_string(integer(r[1])) + "}]");
  }
  integerPart("expiringLots", static_cast<int64_t>(expiring.size()));
  for (const SqlRow& r : expiring) {
    part("expiring", R"("part":[{"name":"medication","valueReference":{"reference":)" + jsonString("Medication/" + text(r[0])) +
                         R"(}},{"name":"lot","valueString":)" + jsonString(text(r[1])) +
                         R"(},{"name":"expiry","valueDate":)" + jsonString(text(r[2])) +
                         R"(},{"name":"quantity","valueInteger":)" + std::to_string(integer(r[3])) +
                         R"(},{"name":"expired","valueBoolean":)" + (text(r[2]) < today ? "true" : "false") + "}]");
  }
  out += "]}";
  return out;
}

}  // namespace hearth::workflows
