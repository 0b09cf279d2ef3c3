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
#include "hearth/fhir/json.h"
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

namespace hearth::workflows {

namespace {

using namespace detail;
using fhir::FhirError;
using fhir::IssueType;
using fhir::SqlRow;

constexpr const char* kInvoiceClaimSystem = "urn:hearth:invoice-claim";

// Content and version of the live type/id inside a unit, if any.
std::optional<std::pair<std::string, int64_t>> liveResource(fhir::StoreTransaction& tx, const std::string& type,
                                                            const std::string& id) {
  const auto rows = tx.query({"SELECT v.content, c.version FROM resource_current c JOIN resource_version v ON v.seq = c.seq "
                              "WHERE c.type = ? AND c.id = ? AND NOT c.deleted",
                              {type, id}});
  if (rows.empty()) return std::nullopt;
  return std::make_pair(text(rows[0][0]), integer(rows[0][1]));
}

// "Type/id" of a relative reference whose type is one of `types`; "" otherwise.
std::string refOf(const rapidjson::Value* ref, std::initializer_list<const char*> types) {
  if (!ref) return {};
  const std::string r(str(*ref, "reference"));
  for (const char* t : types) {
    const std::string prefix = std::string(t) + "/";
    if (r.rfind(prefix, 0) == 0 && fhir::ResourceService::isValidId(r.substr(prefix.size()))) return r;
  }
  return {};
}

bool periodCoversToday(const rapidjson::Value& coverage) {
  const rapidjson::Value* period = member(coverage, "period");
  if (!period) return true;
  const std::string today = isoUtc(nowUs()).substr(0, 10);
  const std::string start(str(*period, "start")), end(str(*period, "end"));
  return (start.empty() || start.substr(0, 10) <= today) && (end.empty() || end.substr(0, 10) >= today);
}

// The payor Organization of a Coverage, or "".
std::string insurerOf(const rapidjson::Value& coverage) {
  if (const rapidjson::Value* payors = member(coverage, "payor"); payors && payors->IsArray()) {
    for (const auto& p : payors->GetArray())
      if (std::string ref = refOf(&p, {"Organization"}); !ref.empty()) return ref;
  }
  return {};
}

}  // namespace

fhir::WriteOutcome claimInvoice(fhir::ResourceService& service, const std::string& invoiceId,
                                const std::string& parametersJson) {
  fhir::ResourceService::checkId(invoiceId);
  std::string coverageParam, providerParam;
  if (!parametersJson.empty()) {
    const rapidjson::Document params = parseExact(parametersJson);
    if (str(params, "resourceType") != "Parameters") {
      throw FhirError(400, IssueType::Invalid, "$claim takes a Parameters resource", "Parameters");
    }
    if (const rapidjson::Value* ps = member(params, "parameter"); ps && ps->IsArray()) {
      for (const auto& p : ps->GetArray()) {
        const std::string_view name = str(p, "name");
        if (name == "coverage") {
          coverageParam = refOf(member(p, "valueReference"), {"Coverage"});
          if (coverageParam.empty()) {
            throw FhirError(400, IssueType::Value, "coverage must be a valueReference to Coverage/<id>", "Parameters.parameter");
          }
        } else if (name == "provider") {
          providerParam = refOf(member(p, "valueReference"), {"Organization", "Practitioner", "PractitionerRole"});
          if (providerParam.empty()) {
            throw FhirError(400, IssueType::Value,
                            "provider must be a valueReference to Organization, Practitioner or PractitionerRole",
                            "Parameters.parameter");
          }
        }
      }
    }
  }
  (void)service.read("Invoice", invoiceId);  // 404 / 410
  fhir::WriteOutcome out;
  service.runAtomic([&](fhir::WriteContext& ctx) {
    fhir::StoreTransaction& tx = ctx.tx();
    tx.lockKey("claim:Invoice/" + invoiceId);
    const auto invoice = liveResource(tx, "Invoice", invoiceId);
    if (!invoice) throw FhirError(404, IssueType::NotFound, "Invoice/" + invoiceId + " is not known");
    const rapidjson::Document inv = parseExact(invoice->first);
    const std::string status(str(inv, "status"));
    if (status != "issued" && status != "balanced") {
      throw FhirError(422, IssueType::BusinessRule, "Invoice/" + invoiceId + " is " + status + "; only issued or balanced invoices are claimed",
                      "Invoice.status");
    }
    const std::string patient = refOf(member(inv, "subject"), {"Patient"});
    if (patient.empty()) {
      throw FhirError(422, IssueType::BusinessRule, "Invoice/" + invoiceId + " is not for a Patient (subject)", "Invoice.subject");
    }
    // One live Claim per Invoice.
    for (const SqlRow& r : tx.query({"SELECT c.id, v.content FROM search_token t "
                                     "JOIN resource_current c ON c.type = t.type AND c.id = t.id "
                                     "JOIN resource_version v ON v.seq = c.seq "
                                     "WHERE t.type = 'Claim' AND t.param = 'identifier' AND t.system = ? AND t.code = ? "
                                     "AND NOT c.deleted",
                                     {std::string(kInvoiceClaimSystem), invoiceId}})) {
      const std::string s(str(fhir::parseJson(text(r[1])), "status"));
      if (s == "cancelled" || s == "entered-in-error") continue;
      throw FhirError(409, IssueType::Duplicate,
                      "Invoice/" + invoiceId + " is already claimed by Claim/" + text(r[0]) +
                          " (cancel that Claim to claim again)",
                      "Invoice");
    }
    // The Coverage and its insurer.
    std::string coverage, insurer;
    if (!coverageParam.empty()) {
      const auto cov = liveResource(tx, "Coverage", coverageParam.substr(9));
      if (!cov) throw FhirError(422, IssueType::NotFound, coverageParam + " is not known", "Parameters.parameter");
      const rapidjson::Document c = parseExact(cov->first);
      if (refOf(member(c, "beneficiary"), {"Patient"}) != patient) {
        throw FhirError(422, IssueType::BusinessRule, coverageParam + " does not cover " + patient, "Coverage.beneficiary");
      }
      if (str(c, "status") != "active") {
        throw FhirError(422, IssueType::BusinessRule, coverageParam + " is not active", "Coverage.status");
      }
      insurer = insurerOf(c);
      if (insurer.empty()) {
        throw FhirError(422, IssueType::BusinessRule, coverageParam + " has no insurer (no Organization payor): self-pay is not claimed",
                        "Coverage.payor");
      }
      coverage = coverageParam;
    } else {
      int64_t bestOrder = INT64_MAX;
      std::string bestId;
      for (const SqlRow& r : tx.query({"SELECT c.id, v.content FROM search_reference s "
                                       "JOIN resource_current c ON c.type = s.type AND c.id = s.id "
                                       "JOIN resource_version v ON v.seq = c.seq "
                                       "WHERE s.type = 'Coverage' AND s.param = 'beneficiary' AND s.target_type = 'Patient' "
                                       "AND s.target_id = ? AND NOT c.deleted",
                                       {patient.substr(8)}})) {
        const rapidjson::Document c = parseExact(text(r[1]));
        if (str(c, "status") != "active" || !periodCoversToday(c)) continue;
        const std::string payor = insurerOf(c);
        if (payor.empty()) continue;
        int64_t order = INT64_MAX - 1;
        if (const rapidjson::Value* o = member(c, "order"); o && o->IsString()) order = std::stoll(o->GetString());
        const std::string id = text(r[0]);
        if (order < bestOrder || (order == bestOrder && id < bestId)) {
          bestOrder = order;
          bestId = id;
          insurer = payor;
        }
      }
      if (bestId.empty()) {
        throw FhirError(422, IssueType::BusinessRule,
                        patient + " has no active Coverage with an insurer (an Organization payor); nothing to claim",
                        "Coverage");
      }
      coverage = "Coverage/" + bestId;
    }
    std::string provider = providerParam;
    if (provider.empty()) provider = refOf(member(inv, "issuer"), {"Organization"});
    if (provider.empty()) {
      throw FhirError(422, IssueType::Required,
                      "No provider: the Invoice has no issuer Organization; pass the parameter provider", "Parameters.parameter");
    }

    // Items: one per Invoice line, net = all of its price components but informational.
    const rapidjson::Value* gross = member(inv, "totalGross");
    const std::string currency = gross ? std::string(str(*gross, "currency")) : std::string();
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    Decimal sum;
    w.StartObject();
    writeString(w, "resourceType", "Claim");
    w.Key("identifier");
    w.StartArray();
    w.StartObject();
    writeString(w, "system", kInvoiceClaimSystem);
    writeString(w, "value", invoiceId);
    w.EndObject();
    w.EndArray();
    writeString(w, "status", "active");
    w.Key("type");
    const std::string claimType =
        R"({"coding":[{"system":"http://terminology.hl7.org/CodeSystem/claim-type","code":"institutional"}]})";
    w.RawValue(claimType.c_str(), claimType.size(), rapidjson::kObjectType);
    writeString(w, "use", "claim");
    auto reference = [&](const char* key, const std::string& ref) {
      w.Key(key);
      w.StartObject();
      writeString(w, "reference", ref);
      w.EndObject();
    };
    reference("patient", patient);
    writeString(w, "created", isoUtc(nowUs()));
    reference("insurer", insurer);
    reference("provider", provider);
    w.Key("priority");
    const std::string priority =
        R"({"coding":[{"system":"http://terminology.hl7.org/CodeSystem/processpriority","code":"normal"}]})";
    w.RawValue(priority.c_str(), priority.size(), rapidjson::kObjectType);
    w.Key("insurance");
    w.StartArray();
    w.StartObject();
    w.Key("sequence");
    w.Int(1);
    w.Key("focal");
    w.Bool(true);
    reference("coverage", coverage);
    w.EndObject();
    w.EndArray();
    w.Key("item");
    w.StartArray();
    int sequence = 0;
    if (const rapidjson::Value* lines = member(inv, "lineItem"); lines && lines->IsArray()) {
      for (const auto& line : lines->GetArray()) {
        Decimal net;
        if (const rapidjson::Value* pcs = member(line, "priceComponent"); pcs && pcs->IsArray()) {
          for (const auto& pc : pcs->GetArray()) {
            const std::string_view type = str(pc, "type");
            const auto amount = moneyAt(member(pc, "amount"));
            if (!amount || type == "informational") continue;
            if (type == "discount" || type == "deduction") net -= amount->value;
            else net += amount->value;
          }
        }
        sum += net;
        // productOrService: the code of the ChargeItem the line bills.
        std::string code = R"({"text":"Invoice line"})";
        const std::string chargeItem = refOf(member(line, "chargeItemReference"), {"ChargeItem"});
        if (!chargeItem.empty()) {
          if (const auto ci = liveResource(tx, "ChargeItem", chargeItem.substr(11))) {
            rapidjson::Document d;
            d.Parse<rapidjson::kParseNumbersAsStringsFlag>(ci->first.c_str());
            if (const rapidjson::Value* c = member(d, "code"); c && c->IsObject()) {
              rapidjson::StringBuffer cb;
              rapidjson::Writer<rapidjson::StringBuffer> cw(cb);
              c->Accept(cw);
              code = cb.GetString();
            }
          }
        }
        w.StartObject();
        w.Key("sequence");
        w.Int(++sequence);
        w.Key("productOrService");
        w.RawValue(code.c_str(), code.size(), rapidjson::kObjectType);
        w.Key("net");
        writeMoney(w, net, currency);
        w.EndObject();
      }
    }
    w.EndArray();
    if (sequence == 0) throw FhirError(422, IssueType::BusinessRule, "Invoice/" + invoiceId + " has no lines to claim", "Invoice.lineItem");
    const auto total = moneyAt(gross);
    if (total && !(total->value == sum)) {
      throw FhirError(422, IssueType::BusinessRule,
                      "The lines of Invoice/" + invoiceId + " add up to " + sum.toString() + ", not its totalGross " +
                          total->value.toString(),
                      "Invoice.totalGross");
    }
    w.Key("total");
    writeMoney(w, total ? total->value : sum, currency);
    w.EndObject();
    out = ctx.create("Claim", std::string(buf.GetString(), buf.GetSize()));
  });
  return out;
}

}  // namespace hearth::workflows
