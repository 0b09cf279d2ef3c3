// DFT^P03 -> ChargeItem per FT1 (+ Account of PID-18 / PV1-50), and an Invoice over the
// message's charges when PV1-41 (account status) says the account is closed.
#include <algorithm>
#include <climits>

#include "mappers.h"

namespace hearth::adapters {

using hl7::Element;
using hl7::Group;
using hl7::Segment;

namespace {

// An exact decimal (mantissa * 10^-scale) for sums and products of money amounts.
struct Decimal {
  long long mantissa = 0;
  int scale = 0;

  static std::optional<Decimal> parse(std::string_view text) {
    Decimal d;
    bool negative = false;
    size_t i = 0;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) negative = text[i++] == '-';
    bool digits = false, point = false;
    for (; i < text.size(); ++i) {
      const char ch = text[i];
      if (ch == '.' && !point) {
        point = true;
        continue;
      }
      if (ch < '0' || ch > '9') return std::nullopt;
      if (d.mantissa > (LLONG_MAX - 9) / 10) return std::nullopt;
      d.mantissa = d.mantissa * 10 + (ch - '0');
      digits = true;
      if (point) ++d.scale;
    }
    if (!digits || d.scale > 12) return std::nullopt;
    if (negative) d.mantissa = -d.mantissa;
    return d;
  }
  static bool rescale(Decimal& d, int scale) {
    while (d.scale < scale) {
      if (d.mantissa > LLONG_MAX / 10 || d.mantissa < LLONG_MIN / 10) return false;
      d.mantissa *= 10;
      ++d.scale;
    }
    return true;
  }
  static std::optional<Decimal> add(Decimal a, Decimal b) {
    const int scale = std::max(a.scale, b.scale);
    if (!rescale(a, scale) || !rescale(b, scale)) return std::nullopt;
    Decimal r;
    if (__builtin_add_overflow(a.mantissa, b.mantissa, &r.mantissa)) return std::nullopt;
    r.scale = scale;
    return r;
  }
  static std::optional<Decimal> multiply(const Decimal& a, const Decimal& b) {
    Decimal r;
    if (__builtin_mul_overflow(a.mantissa, b.mantissa, &r.mantissa)) return std::nullopt;
    r.scale = a.scale + b.scale;
    if (r.scale > 12) return std::nullopt;
    return r;
  }
  std::string text() const {
    const unsigned long long magnitude =
        mantissa < 0 ? 0ULL - static_cast<unsigned long long>(mantissa) : static_cast<unsigned long long>(mantissa);
    const std::string digits = std::to_string(magnitude);
    const size_t fraction = static_cast<size_t>(scale);
    std::string out;
    if (mantissa < 0) out.push_back('-');
    if (digits.size() <= fraction) {
      out.push_back('0');
      out.push_back('.');
      out.append(fraction - digits.size(), '0');
      out.append(digits);
    } else {
      out.append(digits, 0, digits.size() - fraction);
      if (fraction > 0) {
        out.push_back('.');
        out.append(digits, digits.size() - fraction, fraction);
      }
    }
    return out;
  }
};

struct Money {
  std::string value;     // decimal text
  std::string currency;  // ISO 4217, may be empty
};

Json moneyJson(const Money& m) { return Json::object().set("value", Json::number(m.value)).set("currency", m.currency); }

// CP (FT1-11 / FT1-12): component 1 is MO = quantity & denomination.
std::optional<Money> priceOf(Ctx& c, const Segment& ft1, int field) {
  const Element mo = ft1.field(field).component(1);
  const std::string amount = mo.subcomponent(1).value();
  if (amount.empty()) return std::nullopt;
  auto d = hl7::toDecimal(amount);
  if (!d) {
    c.error(102, c.at(&ft1, field, 0, 1), "not a valid amount (CP/MO)");
    return std::nullopt;
  }
  std::string currency = mo.subcomponent(2).value();
  if (!currency.empty() && !(currency.size() == 3 && allAlpha(currency))) {
    c.warn(102, c.at(&ft1, field, 0, 1), "the denomination is not an ISO 4217 currency code: left out");
    currency.clear();
  }
  return Money{*d, currency};
}

}  // namespace

void mapDft(Ctx& c) {
  hl7::GroupTree tree = hl7::GroupTree::build(c.msg);
  const Group& root = tree.root();
  const Segment* pid = root.segment("PID");
  if (!pid) {
    c.error(100, Loc{"PID"}, "PID segment missing");
    return;
  }
  const std::string patientUrl = addPatient(c, *pid, WriteMode::Create);
  if (patientUrl.empty()) return;
  const Segment* pv1 = root.segment("PV1");
  std::string encounterUrl;
  if (pv1) encounterUrl = addEncounter(c, *pv1, patientUrl, WriteMode::Create, false);

  // The account: PID-18 (patient account number), else PV1-50 (alternate visit id).
  hl7::CX accountCx = hl7::CX::from(pid->field(18));
  Loc accountLoc = c.at(pid, 18);
  if (accountCx.id.empty() && pv1) {
    accountCx = hl7::CX::from(pv1->field(50));
    accountLoc = c.at(pv1, 50);
  }
  const Identity accountId = c.identityOf(accountCx, IdKind::Account);
  std::string accountUrl;
  if (accountId.valid()) {
    Json acct = Json::object();
    acct.set("identifier", Json::array().push(c.identifier(accountCx, IdKind::Account)));
    acct.set("status", "active");
    acct.set("subject", Json::array().push(Ctx::reference(patientUrl)));
    accountUrl = c.create("Account", accountId, std::move(acct));
  }
  const Identity visitId = pv1 ? c.identityOf(hl7::CX::from(pv1->field(19)), IdKind::Visit) : Identity{};

  struct Line {
    std::string url;
    std::optional<Money> amount;
  };
  std::vector<Line> lines;
  const std::vector<const Group*> financials = root.groups("FINANCIAL");
  if (financials.empty()) c.error(100, Loc{"FT1"}, "no FT1 in the message");
  for (const Group* fin : financials) {
    const Segment* ft1 = fin->segment("FT1");
    if (!ft1) continue;
    const std::string type = ft1->field(6).value();
    if (type.empty()) {
      c.error(101, c.at(ft1, 6), "FT1-6 (transaction type) is empty");
      continue;
    }
    if (type == "PY" || type == "CO") {
      c.warn(207, c.at(ft1, 6), "payments (FT1-6 PY/CO) are not charges: not mapped");
      continue;
    }
    Json code = c.codeableConcept(hl7::CWE::from(ft1->field(7)));
    if (code.empty()) {
      c.error(101, c.at(ft1, 7), "FT1-7 (transaction code) is empty");
      continue;
    }
    // Identity: FT1-2 transaction id, else the account (or visit) and FT1-1.
    Identity id;
    const std::string txId = cleanText(ft1->field(2).value());
    if (!txId.empty()) {
      id = {c.localSystem(IdKind::Transaction), txId};
    } else {
      const Identity& scope = accountId.valid() ? accountId : visitId;
      const std::string setId = cleanText(ft1->field(1).value());
      if (!scope.valid() || setId.empty()) {
        c.error(101, c.at(ft1, 2), "FT1-2 (transaction id) is empty and no account/visit number + FT1-1 identifies the charge");
        continue;
      }
      id = {scope.system, scope.value + "/" + setId};
    }

    Json ch = Json::object();
    ch.set("identifier", Json::array().push(c.identifier(id, {})));
    ch.set("status", "billable");
    ch.set("code", std::move(code));
    ch.set("subject", Ctx::reference(patientUrl));
    if (!encounterUrl.empty()) ch.set("context", Ctx::reference(encounterUrl));
    const Element when = ft1->field(4);
    auto from = c.dateTime(when.component(1), c.at(ft1, 4, 0, 1));
    auto to = c.dateTime(when.component(2), c.at(ft1, 4, 0, 2));
    if (from && to) {
      ch.set("occurrencePeriod", Json::object().set("start", *from).set("end", *to));
    } else if (from) {
      ch.set("occurrenceDateTime", *from);
    }
    auto quantityText = decimalOf(c, ft1->field(10), c.at(ft1, 10));
    if (quantityText) ch.set("quantity", Json::object().set("value", Json::number(*quantityText)));
    Json performers = Json::array();
    for (const Element& rep : ft1->field(20).repetitions()) {
      Json who = practitionerRef(c, rep);
      if (!who.empty()) performers.push(Json::object().set("actor", std::move(who)));
    }
    ch.set("performer", std::move(performers));
    // Price: FT1-11 (extended amount), else FT1-12 (unit amount) x FT1-10 (quantity).
    std::optional<Money> amount = priceOf(c, *ft1, 11);
    if (!amount) {
      if (auto unit = priceOf(c, *ft1, 12)) {
        auto u = Decimal::parse(unit->value);
        auto q = Decimal::parse(quantityText.value_or("1"));
        auto product = u && q ? Decimal::multiply(*u, *q) : std::nullopt;
        if (product) {
          amount = Money{product->text(), unit->currency};
        } else {
          c.warn(102, c.at(ft1, 12), "FT1-12 x FT1-10 cannot be computed exactly: no price");
        }
      }
    }
    if (amount) ch.set("priceOverride", moneyJson(*amount));
    if (auto entered = c.dateTime(ft1->field(5), c.at(ft1, 5))) ch.set("enteredDate", *entered);
    Json reasons = Json::array();
    for (const Element& rep : ft1->field(19).repetitions()) {
      hl7::CWE dx = hl7::CWE::from(rep);
      if (!dx.empty()) reasons.push(c.codeableConcept(dx));
    }
    ch.set("reason", std::move(reasons));
    if (!accountUrl.empty()) ch.set("account", Json::array().push(Ctx::reference(accountUrl)));
    ch.set("note", c.notes(fin->segments("NTE")));
    bool added = false;
    std::string url = c.update("ChargeItem", id, std::move(ch), &added);
    if (!added) {
      c.warn(207, c.at(ft1, 2), "the same transaction is listed twice: the later FT1 is ignored");
      continue;
    }
    lines.push_back({url, amount});
  }

  // Invoice: the account is closed (PV1-41 in MappingOptions::closedAccountStatuses).
  const std::string accountStatus = pv1 ? pv1->field(41).value() : std::string();
  const auto& closed = c.opts.closedAccountStatuses;
  if (accountStatus.empty() || std::find(closed.begin(), closed.end(), accountStatus) == closed.end()) return;
  const Identity& invoiceId = accountId.valid() ? accountId : visitId;
  if (!invoiceId.valid()) {
    c.error(101, accountLoc, "closing an account needs its number (PID-18, PV1-50 or PV1-19)");
    return;
  }
  if (lines.empty()) {
    c.warn(207, c.at(pv1, 41), "the account is closed but no charge was mapped: no Invoice");
    return;
  }
  Json inv = Json::object();
  inv.set("identifier", Json::array().push(c.identifier(invoiceId, {})));
  inv.set("status", "issued");
  inv.set("subject", Ctx::reference(patientUrl));
  if (auto when = c.dateTime(c.msg.at("MSH-7"), Loc{"MSH", 1, 7})) inv.set("date", *when);
  if (!accountUrl.empty()) inv.set("account", Ctx::reference(accountUrl));
  Json items = Json::array();
  std::optional<Decimal> total = Decimal{};
  std::string currency;
  bool oneCurrency = true;
  int sequence = 0;
  for (const Line& line : lines) {
    Json item = Json::object();
    item.set("sequence", Json::number(std::to_string(++sequence)));
    item.set("chargeItemReference", Ctx::reference(line.url));
    if (line.amount) {
      item.set("priceComponent", Json::array().push(
                                     Json::object().set("type", "base").set("amount", moneyJson(*line.amount))));
      if (sequence == 1) currency = line.amount->currency;
      oneCurrency = oneCurrency && currency == line.amount->currency;
      auto d = Decimal::parse(line.amount->value);
      total = total && d ? Decimal::add(*total, *d) : std::nullopt;
    } else {
      total = std::nullopt;
    }
    items.push(std::move(item));
  }
  inv.set("lineItem", std::move(items));
  if (total && oneCurrency) {
    Money sum{total->text(), currency};
    inv.set("totalNet", moneyJson(sum));
    inv.set("totalGross", moneyJson(sum));
  } else {
    c.warn(207, c.at(pv1, 41), "charges without a price or in several currencies: no Invoice total");
  }
  c.update("Invoice", invoiceId, std::move(inv));
}

}  // namespace hearth::adapters
