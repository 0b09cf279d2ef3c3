#include "hearth/workflows/pharmacy.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <ctime>
#include <map>
#include <optional>
#include <random>
#include <vector>

#include "workflow_support.h"
#include "hearth/fhir/error.h"
#include "hearth/fhir/store.h"
#include "hearth/workflows/money.h"
#include "hearth/workflows/stock.h"

namespace hearth::workflows {

namespace {

using namespace detail;

using fhir::FhirError;
using fhir::IssueType;
using fhir::SqlRow;
using fhir::SqlValue;


std::string todayUtc() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}


template <class Run>
std::vector<Lot> lotsOf(Run&& run, const std::string& medicationId) {
  std::vector<Lot> lots;
  for (const SqlRow& r : run(fhir::SqlQuery{"SELECT lot, expiry, quantity FROM stock_lot WHERE medication_id = ? "
                                             "ORDER BY expiry, lot",
                                             {medicationId}})) {
    lots.push_back({text(r[0]), text(r[1]), integer(r[2])});
  }
  return lots;
}

void applyDispense(fhir::StoreTransaction& tx, const fhir::StoredVersion& v) {
  if (v.type != "MedicationDispense" || v.deleted) return;
  const rapidjson::Document doc = parseExact(v.json);
  if (str(doc, "status") != "completed") return;
  const rapidjson::Value* medRef = member(doc, "medicationReference");
  const std::string ref = medRef ? std::string(str(*medRef, "reference")) : std::string();
  if (ref.rfind("Medication/", 0) != 0) return;  // a coded medication only: not stock-managed
  const std::string medicationId = ref.substr(11);
  const std::string resource = "MedicationDispense/" + v.id;
  const rapidjson::Value* qty = member(doc, "quantity");
  Decimal quantity;
  const rapidjson::Value* qtyValue = qty ? member(*qty, "value") : nullptr;
  if (!qtyValue || !qtyValue->IsString() || !Decimal::tryParse(qtyValue->GetString(), quantity) ||
      quantity.isNegative() || quantity.isZero() || !(quantity == quantity.round(0, Rounding::Down)) ||
      quantity > Decimal::fromInt(1000000000)) {
    throw FhirError(422, IssueType::Value,
                    "A completed dispense of a stocked Medication needs quantity.value, a whole number > 0",
                    "MedicationDispense.quantity");
  }
  const int64_t units = std::stoll(quantity.round(0).toString());
  // Every dispense of this Medication serialises here, so concurrent dispenses see each other.
  tx.lockKey("stock:" + medicationId);
  if (!tx.query({"SELECT 1 FROM stock_movement WHERE resource = ?", {resource}}).empty()) return;  // applied once
  const std::vector<Lot> lots = lotsOf([&](const fhir::SqlQuery& q) { return tx.query(q); }, medicationId);
  if (lots.empty()) return;  // never received: this Medication's stock is not kept by Hearth
  const Allocation a = allocateFefo(lots, todayUtc(), units);
  if (!a.ok) {
    throw FhirError(409, IssueType::Conflict,
                    "Not enough stock of Medication/" + medicationId + ": " + std::to_string(units) + " requested, " +
                        std::to_string(a.usable) + " usable" +
                        (a.expired > 0 ? " (" + std::to_string(a.expired) + " more in expired lots, not dispensed)" : ""),
                    "MedicationDispense.quantity");
  }
  const int64_t now = nowUs();
  for (const LotTake& take : a.takes) {
    // The guard in the WHERE clause and the CHECK constraint keep stock from going negative even
    // if this process were wrong about what the lot holds.
    const int64_t changed = tx.execute({"UPDATE stock_lot SET quantity = quantity - ? WHERE medication_id = ? AND lot = ? "
                                        "AND quantity >= ?",
                                        {take.quantity, medicationId, take.lotId, take.quantity}});
    if (changed != 1) throw fhir::StoreConflict();
    tx.execute({"INSERT INTO stock_movement (id, medication_id, lot, delta, reason, resource, at_us) "
                "VALUES (?, ?, ?, ?, 'dispense', ?, ?)",
                {fhir::newResourceId(), medicationId, take.lotId, -take.quantity, resource, now}});
  }
}

void writeStock(rapidjson::Writer<rapidjson::StringBuffer>& w, const std::string& medicationId, const std::vector<Lot>& lots,
                int64_t reorderLevel, const std::string& today, const std::string& soon) {
  auto str_ = [&](const char* k, const std::string& v) {
    w.Key(k);
    w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
  };
  auto part = [&](const char* name, auto&& value) {
    w.StartObject();
    str_("name", name);
    value();
    w.EndObject();
  };
  int64_t usable = 0;
  for (const Lot& l : lots)
    if (l.expiry >= today) usable += l.quantity;
  w.StartObject();
  str_("name", "medication");
  w.Key("part");
  w.StartArray();
  part("medication", [&] {
    w.Key("valueReference");
    w.StartObject();
    str_("reference", "Medication/" + medicationId);
    w.EndObject();
  });
  part("usable", [&] {
    w.Key("valueInteger");
    w.Int64(usable);
  });
  part("reorderLevel", [&] {
    w.Key("valueInteger");
    w.Int64(reorderLevel);
  });
  part("belowReorderLevel", [&] {
    w.Key("valueBoolean");
    w.Bool(usable < reorderLevel);
  });
  for (const Lot& l : lots) {
    part("lot", [&] {
      w.Key("part");
      w.StartArray();
      part("lot", [&] { str_("valueString", l.id); });
      part("expiry", [&] { str_("valueDate", l.expiry); });
      part("quantity", [&] {
        w.Key("valueInteger");
        w.Int64(l.quantity);
      });
      part("expired", [&] {
        w.Key("valueBoolean");
        w.Bool(l.expiry < today);
      });
      part("expiringSoon", [&] {
        w.Key("valueBoolean");
        w.Bool(l.expiry >= today && l.expiry <= soon);
      });
      w.EndArray();
    });
  }
  w.EndArray();
  w.EndObject();
}

}  // namespace

void installStockGuard(fhir::ResourceService& service) {
  service.addWriteObserver([](fhir::StoreTransaction& tx, const fhir::StoredVersion& v) { applyDispense(tx, v); });
}

std::string receiveStock(fhir::ResourceService& service, const std::string& medicationId, const std::string& parametersJson) {
  fhir::ResourceService::checkId(medicationId);
  (void)service.read("Medication", medicationId);  // 404 / 410 for an unknown or deleted Medication
  const rapidjson::Document params = parseExact(parametersJson);
  if (str(params, "resourceType") != "Parameters") {
    throw FhirError(400, IssueType::Invalid, "$stock-receive takes a Parameters resource", "Parameters");
  }
  std::string lot, expiry;
  std::optional<int64_t> quantity, reorder;
  auto wholeNumber = [](const rapidjson::Value* v) -> std::optional<int64_t> {
    Decimal d;
    if (!v || !v->IsString() || !Decimal::tryParse(v->GetString(), d) || d.isNegative() ||
        !(d == d.round(0, Rounding::Down)) || d > Decimal::fromInt(1000000000)) {
      return std::nullopt;
    }
    return std::stoll(d.round(0).toString());
  };
  if (const auto* list = member(params, "parameter"); list && list->IsArray()) {
    for (const auto& p : list->GetArray()) {
      const std::string_view name = str(p, "name");
      if (name == "lot") lot = std::string(str(p, "valueString"));
      if (name == "expiry") expiry = std::string(str(p, "valueDate"));
      if (name == "quantity") quantity = wholeNumber(member(p, "valueInteger"));
      if (name == "reorderLevel") reorder = wholeNumber(member(p, "valueInteger"));
    }
  }
  if (lot.empty() || lot.size() > 64) throw FhirError(400, IssueType::Required, "lot (valueString, up to 64 characters) is required", "Parameters.parameter");
  if (!isIsoDate(expiry)) throw FhirError(400, IssueType::Value, "expiry must be a date (YYYY-MM-DD)", "Parameters.parameter");
  if (!quantity || *quantity <= 0) throw FhirError(400, IssueType::Value, "quantity must be a whole number > 0", "Parameters.parameter");

  fhir::ResourceStore& store = service.store();
  try {
    auto tx = store.begin();
    tx->lockKey("stock:" + medicationId);
    const auto existing = tx->query({"SELECT expiry FROM stock_lot WHERE medication_id = ? AND lot = ?", {medicationId, lot}});
    if (!existing.empty() && text(existing[0][0]) != expiry) {
      throw FhirError(422, IssueType::BusinessRule,
                      "Lot " + lot + " is on record with expiry " + text(existing[0][0]) + ", not " + expiry, "Parameters.parameter");
    }
    const int64_t now = nowUs();
    if (existing.empty()) {
      tx->execute({"INSERT INTO stock_lot (medication_id, lot, expiry, quantity, received_us) VALUES (?, ?, ?, ?, ?)",
                   {medicationId, lot, expiry, *quantity, now}});
    } else {
      tx->execute({"UPDATE stock_lot SET quantity = quantity + ?, received_us = ? WHERE medication_id = ? AND lot = ?",
                   {*quantity, now, medicationId, lot}});
    }
    tx->execute({"INSERT INTO stock_movement (id, medication_id, lot, delta, reason, resource, at_us) "
                 "VALUES (?, ?, ?, ?, 'receipt', ?, ?)",
                 {fhir::newResourceId(), medicationId, lot, *quantity, "Medication/" + medicationId, now}});
    if (reorder) {
      if (tx->execute({"UPDATE stock_item SET reorder_level = ? WHERE medication_id = ?", {*reorder, medicationId}}) == 0) {
        tx->execute({"INSERT INTO stock_item (medication_id, reorder_level) VALUES (?, ?)", {medicationId, *reorder}});
      }
    }
    tx->commit();
  } catch (const fhir::StoreUnavailable& e) {
    throw FhirError(503, IssueType::Transient, "The data store is unavailable; nothing was written. Retry later.")
        .withInternalDetail(e.what());
  } catch (const fhir::StoreConflict&) {
    throw FhirError(409, IssueType::Conflict, "The stock changed concurrently; nothing was written. Retry.");
  }
  return stockReport(service, medicationId, 30);
}

std::string stockReport(fhir::ResourceService& service, const std::string& medicationId, int expiringWithinDays) {
  fhir::ResourceStore& store = service.store();
  auto run = [&](const fhir::SqlQuery& q) { return store.query(q); };
  std::vector<std::string> ids;
  if (!medicationId.empty()) {
    fhir::ResourceService::checkId(medicationId);
    (void)service.read("Medication", medicationId);
    ids.push_back(medicationId);
  } else {
    for (const SqlRow& r : store.query({"SELECT DISTINCT medication_id FROM stock_lot ORDER BY medication_id LIMIT 10000", {}}))
      ids.push_back(text(r[0]));
  }
  const std::string today = todayUtc();
  const std::string soon = addDays(today, expiringWithinDays);
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("resourceType");
  w.String("Parameters");
  if (!ids.empty()) {
    w.Key("parameter");
    w.StartArray();
    for (const std::string& id : ids) {
      const auto reorder = store.query({"SELECT reorder_level FROM stock_item WHERE medication_id = ?", {id}});
      writeStock(w, id, lotsOf(run, id), reorder.empty() ? 0 : integer(reorder[0][0]), today, soon);
    }
    w.EndArray();
  }
  w.EndObject();
  return buf.GetString();
}

}  // namespace hearth::workflows
