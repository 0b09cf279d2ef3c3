#include "hearth/workflows/billing.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <ctime>
#include <optional>
#include <vector>

#include "workflow_support.h"
#include "hearth/fhir/error.h"
#include "hearth/fhir/interactions.h"
#include "hearth/fhir/store.h"
#include "hearth/workflows/money.h"

namespace hearth::workflows {

namespace {

using namespace detail;

using fhir::FhirError;
using fhir::IssueType;
using fhir::SqlRow;
using fhir::SqlValue;

constexpr size_t kMaxItems = 1000;



std::optional<Decimal> decimalAt(const rapidjson::Value* v) {
  if (!v || !v->IsString()) return std::nullopt;  // numbers come as strings (parseExact)
  Decimal d;
  if (!Decimal::tryParse({v->GetString(), v->GetStringLength()}, d)) return std::nullopt;
  return d;
}

struct Money {
  Decimal value;
  std::string currency;
};

std::optional<Money> moneyAt(const rapidjson::Value* v) {
  if (!v) return std::nullopt;
  auto value = decimalAt(member(*v, "value"));
  if (!value) return std::nullopt;
  return Money{*value, std::string(str(*v, "currency"))};
}

struct Component {
  std::string type;  // base surcharge deduction discount tax informational
  std::optional<Decimal> factor;
  Decimal amount;
};

struct Line {
  std::string chargeItemId;
  int64_t version = 0;
  std::string json;
  std::vector<Component> components;
};


void writeMoney(rapidjson::Writer<rapidjson::StringBuffer>& w, const Decimal& value, const std::string& currency) {
  w.StartObject();
  w.Key("value");
  const std::string v = value.toString();
  w.RawValue(v.c_str(), v.size(), rapidjson::kNumberType);
  if (!currency.empty()) {
    w.Key("currency");
    w.String(currency.c_str(), static_cast<rapidjson::SizeType>(currency.size()));
  }
  w.EndObject();
}

void writeString(rapidjson::Writer<rapidjson::StringBuffer>& w, const char* key, const std::string& value) {
  w.Key(key);
  w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
}

}  // namespace

fhir::WriteOutcome generateInvoice(fhir::ResourceService& service, fhir::SearchEngine& search,
                                 const std::string& parametersJson) {
  const rapidjson::Document params = parseExact(parametersJson);
  if (str(params, "resourceType") != "Parameters") {
    throw FhirError(400, IssueType::Invalid, "Invoice/$generate takes a Parameters resource", "Parameters");
  }
  std::string encounter, patient, periodStart, periodEnd;
  std::optional<Decimal> taxRate;
  if (const auto* list = member(params, "parameter"); list && list->IsArray()) {
    for (const auto& p : list->GetArray()) {
      const std::string_view name = str(p, "name");
      const std::string ref(str(*(member(p, "valueReference") ? member(p, "valueReference") : &p), "reference"));
      const std::string date(!str(p, "valueDate").empty() ? str(p, "valueDate") : str(p, "valueDateTime"));
      if (name == "encounter") encounter = ref;
      if (name == "patient") patient = ref;
      if (name == "periodStart") periodStart = date;
      if (name == "periodEnd") periodEnd = date;
      if (name == "taxRate") {
        taxRate = decimalAt(member(p, "valueDecimal"));
        if (!taxRate || taxRate->isNegative()) {
          throw FhirError(400, IssueType::Value, "taxRate must be a non-negative decimal", "Parameters.parameter");
        }
      }
    }
  }
  auto refId = [](const std::string& ref, const char* type) {
    const std::string prefix = std::string(type) + "/";
    if (ref.rfind(prefix, 0) != 0 || ref.size() == prefix.size() || !fhir::ResourceService::isValidId(ref.substr(prefix.size()))) {
      return std::string();
    }
    return ref.substr(prefix.size());
  };
  std::string criteria, subject;
  if (!encounter.empty()) {
    const std::string id = refId(encounter, "Encounter");
    if (id.empty()) throw FhirError(400, IssueType::Value, "encounter must reference Encounter/<id>", "Parameters.parameter");
    criteria = "context=Encounter/" + id;
  } else if (!patient.empty()) {
    const std::string id = refId(patient, "Patient");
    if (id.empty()) throw FhirError(400, IssueType::Value, "patient must reference Patient/<id>", "Parameters.parameter");
    criteria = "subject=Patient/" + id;
    subject = "Patient/" + id;
    if (!periodStart.empty()) criteria += "&occurrence=ge" + periodStart;
    if (!periodEnd.empty()) criteria += "&occurrence=le" + periodEnd;
  } else {
    throw FhirError(400, IssueType::Required, "$generate needs an encounter, or a patient (and optionally a period)",
                    "Parameters.parameter");
  }

  fhir::WriteOutcome out;
  service.runAtomic([&](fhir::WriteContext& ctx) {
    fhir::StoreTransaction& tx = ctx.tx();
    // Two $generate calls for the same encounter or patient bill one after the other: the second
    // finds the items already billed.
    tx.lockKey("billing:" + criteria);
    const std::vector<std::string> ids = search.matchIds("ChargeItem", criteria, &tx, static_cast<int>(kMaxItems) + 1);
    if (ids.size() > kMaxItems) {
      throw FhirError(422, IssueType::TooCostly, "More than 1000 charge items: generate per encounter or a shorter period");
    }
    std::vector<Line> lines;
    std::string currency, invoiceSubject = subject;
    Decimal net, gross;
    for (const std::string& id : ids) {
      const auto rows = tx.query({"SELECT v.content, c.version FROM resource_current c JOIN resource_version v "
                                  "ON v.seq = c.seq WHERE c.type = 'ChargeItem' AND c.id = ? AND NOT c.deleted",
                                  {id}});
      if (rows.empty()) continue;
      Line line{id, integer(rows[0][1]), text(rows[0][0]), {}};
      const rapidjson::Document item = parseExact(line.json);
      if (str(item, "status") != "billable") continue;
      const std::string where = "ChargeItem/" + id;
      if (invoiceSubject.empty()) invoiceSubject = std::string(str(*(member(item, "subject") ? member(item, "subject") : &item), "reference"));

      Decimal quantity = Decimal::fromInt(1);
      if (const auto q = decimalAt(member(*(member(item, "quantity") ? member(item, "quantity") : &item), "value"))) quantity = *q;
      Decimal factor = Decimal::fromInt(1);
      if (const auto f = decimalAt(member(item, "factorOverride"))) factor = *f;

      std::optional<Money> unit = moneyAt(member(item, "priceOverride"));
      std::vector<Component> extra;  // the definition's surcharges, discounts, taxes
      if (const auto* defs = member(item, "definitionCanonical"); defs && defs->IsArray() && !defs->Empty() &&
                                                                 (*defs)[0].IsString()) {
        std::string url((*defs)[0].GetString());
        std::string version;
        if (const size_t bar = url.find('|'); bar != std::string::npos) {
          version = url.substr(bar + 1);
          url.resize(bar);
        }
        std::string defCriteria = "url=" + url;
        if (!version.empty()) defCriteria += "&version=" + version;
        const auto defIds = search.matchIds("ChargeItemDefinition", defCriteria, &tx, 2);
        if (defIds.size() != 1) {
          throw FhirError(422, IssueType::BusinessRule,
                          where + ": its ChargeItemDefinition " + url + (defIds.empty() ? " is not known" : " is ambiguous"));
        }
        const auto defRows = tx.query({"SELECT v.content FROM resource_current c JOIN resource_version v ON v.seq = c.seq "
                                       "WHERE c.type = 'ChargeItemDefinition' AND c.id = ?",
                                       {defIds[0]}});
        const rapidjson::Document def = parseExact(text(defRows.at(0)[0]));
        const auto* groups = member(def, "propertyGroup");
        const auto* comps = groups && groups->IsArray() && !groups->Empty() ? member((*groups)[0], "priceComponent") : nullptr;
        if (comps && comps->IsArray()) {
          for (const auto& c : comps->GetArray()) {
            const std::string type(str(c, "type"));
            if (type == "base") {
              if (!unit) unit = moneyAt(member(c, "amount"));
            } else if (type == "surcharge" || type == "deduction" || type == "discount" || type == "tax") {
              Component comp{type, decimalAt(member(c, "factor")), Decimal()};
              if (!comp.factor) {
                const auto amount = moneyAt(member(c, "amount"));
                if (!amount) throw FhirError(422, IssueType::BusinessRule, where + ": a " + type + " component has neither factor nor amount");
                comp.amount = amount->value;
              }
              extra.push_back(comp);
            }
          }
        }
      }
      if (!unit) throw FhirError(422, IssueType::BusinessRule, where + " has no price (priceOverride or a base price component)");
      if (currency.empty()) currency = unit->currency;
      if (!unit->currency.empty() && unit->currency != currency) {
        throw FhirError(422, IssueType::BusinessRule, "The charge items are in different currencies; invoice them separately");
      }
      const Decimal base = (unit->value * quantity * factor).round(2);
      line.components.push_back({"base", std::nullopt, base});
      Decimal lineNet = base;
      bool taxed = false;
      for (const Component& c : extra) {
        if (c.type == "tax") continue;
        const Decimal amount = c.factor ? (*c.factor * base).round(2) : (c.amount * quantity).round(2);
        line.components.push_back({c.type, c.factor, amount});
        lineNet = c.type == "surcharge" ? lineNet + amount : lineNet - amount;
      }
      for (const Component& c : extra) {
        if (c.type != "tax") continue;
        const Decimal amount = c.factor ? (*c.factor * lineNet).round(2) : (c.amount * quantity).round(2);
        line.components.push_back({"tax", c.factor, amount});
        gross += amount;
        taxed = true;
      }
      if (!taxed && taxRate) {
        const Decimal amount = (*taxRate * lineNet).round(2);
        line.components.push_back({"tax", taxRate, amount});
        gross += amount;
      }
      net += lineNet;
      lines.push_back(std::move(line));
    }
    if (lines.empty()) throw FhirError(422, IssueType::BusinessRule, "Nothing to invoice: no billable charge items");
    gross += net;

    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    writeString(w, "resourceType", "Invoice");
    writeString(w, "status", "issued");
    if (!invoiceSubject.empty()) {
      w.Key("subject");
      w.StartObject();
      writeString(w, "reference", invoiceSubject);
      w.EndObject();
    }
    writeString(w, "date", isoUtc(nowUs()));
    w.Key("lineItem");
    w.StartArray();
    int sequence = 0;
    for (const Line& l : lines) {
      w.StartObject();
      w.Key("sequence");
      w.Int(++sequence);
      w.Key("chargeItemReference");
      w.StartObject();
      writeString(w, "reference", "ChargeItem/" + l.chargeItemId);
      w.EndObject();
      w.Key("priceComponent");
      w.StartArray();
      for (const Component& c : l.components) {
        w.StartObject();
        writeString(w, "type", c.type);
        if (c.factor) {
          w.Key("factor");
          const std::string f = c.factor->toString();
          w.RawValue(f.c_str(), f.size(), rapidjson::kNumberType);
        }
        w.Key("amount");
        writeMoney(w, c.amount, currency);
        w.EndObject();
      }
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    w.Key("totalNet");
    writeMoney(w, net, currency);
    w.Key("totalGross");
    writeMoney(w, gross, currency);
    w.EndObject();
    const fhir::WriteOutcome invoice = ctx.create("Invoice", buf.GetString());
    for (const Line& l : lines) {
      const std::string billed = fhir::applyJsonPatch(l.json, R"([{"op":"replace","path":"/status","value":"billed"}])");
      ctx.update("ChargeItem", l.chargeItemId, billed, l.version);
    }
    out = invoice;
  });
  return out;
}

namespace {

struct Balance {
  Decimal gross, paid;
  std::string currency, status;
  int64_t version = 0;
  std::string json;
};

// The Invoice and its payments, read in `tx` (store when null).
Balance balanceOf(fhir::ResourceService& service, fhir::StoreTransaction* tx, const std::string& invoiceId) {
  auto run = [&](const fhir::SqlQuery& q) { return tx ? tx->query(q) : service.store().query(q); };
  const auto rows = run({"SELECT v.content, c.version FROM resource_current c JOIN resource_version v ON v.seq = c.seq "
                         "WHERE c.type = 'Invoice' AND c.id = ? AND NOT c.deleted",
                         {invoiceId}});
  if (rows.empty()) throw FhirError(404, IssueType::NotFound, "Invoice/" + invoiceId + " is not known");
  Balance b;
  b.json = text(rows[0][0]);
  b.version = integer(rows[0][1]);
  const rapidjson::Document inv = parseExact(b.json);
  b.status = std::string(str(inv, "status"));
  const auto gross = moneyAt(member(inv, "totalGross"));
  if (!gross) throw FhirError(422, IssueType::BusinessRule, "Invoice/" + invoiceId + " has no totalGross to pay against");
  b.gross = gross->value;
  b.currency = gross->currency;
  for (const SqlRow& r : run({"SELECT amount FROM invoice_payment WHERE invoice_id = ?", {invoiceId}})) {
    b.paid += Decimal::parse(text(r[0]));
  }
  return b;
}

std::string balanceParameters(const Balance& b) {
  const Decimal outstanding = b.gross - b.paid;
  auto money = [&](const Decimal& d) {
    return R"({"value":)" + d.round(2).toString() + (b.currency.empty() ? std::string() : R"(,"currency":")" + b.currency + R"(")") + "}";
  };
  return R"({"resourceType":"Parameters","parameter":[{"name":"totalGross","valueMoney":)" + money(b.gross) +
         R"(},{"name":"paid","valueMoney":)" + money(b.paid) + R"(},{"name":"outstanding","valueMoney":)" +
         money(outstanding) + R"(},{"name":"status","valueCode":")" + b.status + R"("}]})";
}

}  // namespace

std::string invoiceBalance(fhir::ResourceService& service, const std::string& invoiceId) {
  fhir::ResourceService::checkId(invoiceId);
  return balanceParameters(balanceOf(service, nullptr, invoiceId));
}

std::string payInvoice(fhir::ResourceService& service, const std::string& invoiceId, const std::string& parametersJson) {
  fhir::ResourceService::checkId(invoiceId);
  const rapidjson::Document params = parseExact(parametersJson);
  if (str(params, "resourceType") != "Parameters") throw FhirError(400, IssueType::Invalid, "$pay takes a Parameters resource");
  std::optional<Money> amount;
  std::string method;
  if (const auto* list = member(params, "parameter"); list && list->IsArray()) {
    for (const auto& p : list->GetArray()) {
      if (str(p, "name") == "amount") amount = moneyAt(member(p, "valueMoney"));
      if (str(p, "name") == "method") method = std::string(str(p, "valueString"));
    }
  }
  if (!amount || amount->value.isNegative() || amount->value.isZero() || amount->value.scale() > 2) {
    throw FhirError(400, IssueType::Value, "amount (valueMoney) must be a positive amount in cents", "Parameters.parameter");
  }
  Balance after;
  service.runAtomic([&](fhir::WriteContext& ctx) {
    fhir::StoreTransaction& tx = ctx.tx();
    tx.lockKey("invoice:" + invoiceId);
    Balance b = balanceOf(service, &tx, invoiceId);
    if (b.status != "issued") {
      throw FhirError(422, IssueType::BusinessRule, "Invoice/" + invoiceId + " is " + b.status + "; only an issued invoice takes payments");
    }
    if (!amount->currency.empty() && !b.currency.empty() && amount->currency != b.currency) {
      throw FhirError(422, IssueType::BusinessRule, "The payment is in " + amount->currency + ", the invoice in " + b.currency);
    }
    const Decimal outstanding = b.gross - b.paid;
    if (amount->value > outstanding) {
      throw FhirError(422, IssueType::BusinessRule,
                      "The payment of " + amount->value.toString() + " exceeds the outstanding " + outstanding.round(2).toString());
    }
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    const std::string now = isoUtc(nowUs());
    w.StartObject();
    writeString(w, "resourceType", "PaymentReconciliation");
    writeString(w, "status", "active");
    writeString(w, "created", now);
    writeString(w, "paymentDate", now.substr(0, 10));
    w.Key("paymentAmount");
    writeMoney(w, amount->value, b.currency);
    w.Key("detail");
    w.StartArray();
    w.StartObject();
    w.Key("type");
    w.StartObject();
    w.Key("coding");
    w.StartArray();
    w.StartObject();
    writeString(w, "system", "http://terminology.hl7.org/CodeSystem/payment-type");
    writeString(w, "code", "payment");
    w.EndObject();
    w.EndArray();
    if (!method.empty()) writeString(w, "text", method);
    w.EndObject();
    w.Key("request");
    w.StartObject();
    writeString(w, "reference", "Invoice/" + invoiceId);
    w.EndObject();
    w.Key("amount");
    writeMoney(w, amount->value, b.currency);
    w.EndObject();
    w.EndArray();
    w.EndObject();
    const fhir::WriteOutcome payment = ctx.create("PaymentReconciliation", buf.GetString());
    tx.execute({"INSERT INTO invoice_payment (payment_id, invoice_id, amount, currency, at_us) VALUES (?, ?, ?, ?, ?)",
                {payment.version.id, invoiceId, amount->value.toString(), b.currency,
                 nowUs()}});
    b.paid += amount->value;
    if ((b.gross - b.paid).isZero()) {
      ctx.update("Invoice", invoiceId,
                 fhir::applyJsonPatch(b.json, R"([{"op":"replace","path":"/status","value":"balanced"}])"), b.version);
      b.status = "balanced";
    }
    after = b;
  });
  return balanceParameters(after);
}

}  // namespace hearth::workflows
