// Invoice/$generate as a billing clerk checks it: totals to the cent on awkward prices, discounts
// and taxes; each charge item billed exactly once, also when several clerks press the button at
// the same time; wrong requests refused without billing anything. SQLite and PostgreSQL, over HTTP.
#include <cppunit/extensions/HelperMacros.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "hearth_process.h"
#include "http_client.h"
#include "http_test_support.h"

using namespace hearth::test;

namespace {

std::string definition(const std::string& url, const std::string& components) {
  return R"({"resourceType":"ChargeItemDefinition","url":")" + url +
         R"(","status":"active","code":{"text":"service"},"propertyGroup":[{"priceComponent":[)" + components + "]}]}";
}

std::string chargeItem(const std::string& encounter, const std::string& patient, const std::string& status,
                       const std::string& pricing, const std::string& quantity, const std::string& extra = {}) {
  return R"({"resourceType":"ChargeItem","status":")" + status +
         R"(","code":{"text":"service"},"subject":{"reference":"Patient/)" + patient +
         R"("},"context":{"reference":"Encounter/)" + encounter + R"("},"quantity":{"value":)" + quantity + "}," +
         pricing + extra + "}";
}

std::string generateFor(const std::string& encounter, const std::string& taxRate = {}) {
  std::string p = R"({"resourceType":"Parameters","parameter":[{"name":"encounter","valueReference":{"reference":"Encounter/)" +
                  encounter + R"("}})";
  if (!taxRate.empty()) p += R"(,{"name":"taxRate","valueDecimal":)" + taxRate + "}";
  return p + "]}";
}

std::string statusOf(HttpClient& c, const std::string& id) {
  const HttpResponse r = c.get("/fhir/ChargeItem/" + id);
  assertStatus(200, r);
  return r.json()["status"].GetString();
}

}  // namespace

class BillingTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(BillingTest);
  CPPUNIT_TEST(testTotalsToTheCent);
  CPPUNIT_TEST(testParallelGenerateBillsOnce);
  CPPUNIT_TEST(testPatientPeriod);
  CPPUNIT_TEST(testRefusalsBillNothing);
  CPPUNIT_TEST(testPaymentsBalanceTheInvoice);
  CPPUNIT_TEST(testClaimToTheInsurer);
  CPPUNIT_TEST(testClaimRefusals);
  CPPUNIT_TEST_SUITE_END_ABSTRACT();

 public:
  void setUp() override {
    if (server_ && server_->options().db != backend().db) server_.reset();
    if (!server_ || !server_->running()) {
      ServerOptions opt;
      opt.db = backend().db;
      server_ = std::make_unique<HearthProcess>(opt);
      server_->start();
    }
  }

  std::string create(HttpClient& c, const std::string& type, const std::string& body) {
    const HttpResponse r = c.post("/fhir/" + type, body);
    assertStatus(201, r, "create " + type);
    return r.json()["id"].GetString();
  }

  // 3 x 33.333 with 19 % tax; 7 x 0.015 priced on the item, taxed by the request's rate; 12.345
  // with a 10 % discount and 19 % tax. Per line, rounded half-up to cents:
  //   100.00 (99.999) + tax 19.00;  0.11 (0.105) + tax 0.02 (0.0209);  12.35 - 1.24 = 11.11 + tax 2.11
  //   totalNet 111.22, totalGross 132.35.
  void testTotalsToTheCent() {
    HttpClient c(*server_);
    const std::string u = uniqueId("bill");
    const std::string enc = create(c, "Encounter", R"({"resourceType":"Encounter","status":"finished","class":{"code":"AMB"}})");
    const std::string pat = create(c, "Patient", R"({"resourceType":"Patient"})");
    create(c, "ChargeItemDefinition",
           definition("urn:test:" + u + ":consult",
                      R"({"type":"base","amount":{"value":33.333,"currency":"EUR"}},{"type":"tax","factor":0.19})"));
    create(c, "ChargeItemDefinition",
           definition("urn:test:" + u + ":lab",
                      R"({"type":"base","amount":{"value":12.345,"currency":"EUR"}},{"type":"discount","factor":0.10},{"type":"tax","factor":0.19})"));
    const std::string consult = create(c, "ChargeItem", chargeItem(enc, pat, "billable", R"("definitionCanonical":["urn:test:)" + u + R"(:consult"])", "3"));
    const std::string supply = create(c, "ChargeItem", chargeItem(enc, pat, "billable", R"("priceOverride":{"value":0.015,"currency":"EUR"})", "7"));
    const std::string lab = create(c, "ChargeItem", chargeItem(enc, pat, "billable", R"("definitionCanonical":["urn:test:)" + u + R"(:lab"])", "1"));
    const std::string planned = create(c, "ChargeItem", chargeItem(enc, pat, "planned", R"("priceOverride":{"value":5,"currency":"EUR"})", "1"));

    const HttpResponse r = c.post("/fhir/Invoice/$generate", generateFor(enc, "0.19"));
    assertStatus(201, r, "$generate");
    CPPUNIT_ASSERT(!r.header("Location").empty());
    // The exact decimal text, as a client parsing the JSON numbers sees it.
    CPPUNIT_ASSERT_MESSAGE(r.body, r.body.find(R"("totalNet":{"value":111.22,"currency":"EUR"})") != std::string::npos);
    CPPUNIT_ASSERT_MESSAGE(r.body, r.body.find(R"("totalGross":{"value":132.35,"currency":"EUR"})") != std::string::npos);
    const rapidjson::Document inv = r.json();
    CPPUNIT_ASSERT_EQUAL(std::string("issued"), std::string(inv["status"].GetString()));
    CPPUNIT_ASSERT_EQUAL(std::string("Patient/" + pat), std::string(inv["subject"]["reference"].GetString()));
    CPPUNIT_ASSERT_EQUAL(3u, inv["lineItem"].Size());
    for (const std::string& id : {consult, supply, lab}) CPPUNIT_ASSERT_EQUAL(std::string("billed"), statusOf(c, id));
    CPPUNIT_ASSERT_EQUAL(std::string("planned"), statusOf(c, planned));
    // The stored Invoice is the same, readable and searchable by its total.
    const HttpResponse stored = c.get("/fhir/Invoice/" + std::string(inv["id"].GetString()));
    assertStatus(200, stored);
    CPPUNIT_ASSERT(stored.body.find(R"("totalGross":{"value":132.35,"currency":"EUR"})") != std::string::npos);
    // Nothing left to bill.
    assertOperationOutcome(c.post("/fhir/Invoice/$generate", generateFor(enc)), 422, "second $generate");
  }

  // An invoice with the awkward prices of testTotalsToTheCent, claimed from the patient's insurer:
  // lines 100.00 + 19.00 tax, 0.11 + 0.02, 12.35 - 1.24 + 2.11: items 119.00, 0.13, 13.22 and
  // total 132.35 (the invoice's totalGross), to the cent.
  std::string awkwardInvoice(HttpClient& c, const std::string& pat) {
    const std::string u = uniqueId("claim");
    const std::string enc = create(c, "Encounter", R"({"resourceType":"Encounter","status":"finished","class":{"code":"AMB"}})");
    create(c, "ChargeItemDefinition",
           definition("urn:test:" + u + ":consult",
                      R"({"type":"base","amount":{"value":33.333,"currency":"EUR"}},{"type":"tax","factor":0.19})"));
    create(c, "ChargeItemDefinition",
           definition("urn:test:" + u + ":lab",
                      R"({"type":"base","amount":{"value":12.345,"currency":"EUR"}},{"type":"discount","factor":0.10},{"type":"tax","factor":0.19})"));
    create(c, "ChargeItem", chargeItem(enc, pat, "billable", R"("definitionCanonical":["urn:test:)" + u + R"(:consult"])", "3"));
    create(c, "ChargeItem", chargeItem(enc, pat, "billable", R"("priceOverride":{"value":0.015,"currency":"EUR"})", "7"));
    create(c, "ChargeItem", chargeItem(enc, pat, "billable", R"("definitionCanonical":["urn:test:)" + u + R"(:lab"])", "1"));
    const HttpResponse r = c.post("/fhir/Invoice/$generate", generateFor(enc, "0.19"));
    assertStatus(201, r, "$generate");
    return r.json()["id"].GetString();
  }

  std::string coverage(HttpClient& c, const std::string& pat, const std::string& status, const std::string& payor,
                       const std::string& order = {}) {
    return create(c, "Coverage", R"({"resourceType":"Coverage","status":")" + status + R"(","beneficiary":{"reference":"Patient/)" +
                                     pat + R"("},"payor":[{"reference":")" + payor + R"("}])" +
                                     (order.empty() ? std::string() : R"(,"order":)" + order) + "}");
  }

  static std::string providerParams(const std::string& provider) {
    return R"({"resourceType":"Parameters","parameter":[{"name":"provider","valueReference":{"reference":")" + provider + R"("}}]})";
  }

  void testClaimToTheInsurer() {
    HttpClient c(*server_);
    const std::string pat = create(c, "Patient", R"({"resourceType":"Patient"})");
    const std::string insurer = create(c, "Organization", R"({"resourceType":"Organization","name":"Insurer"})");
    const std::string other = create(c, "Organization", R"({"resourceType":"Organization","name":"Old insurer"})");
    const std::string hospital = create(c, "Organization", R"({"resourceType":"Organization","name":"Hospital"})");
    coverage(c, pat, "active", "Patient/" + pat, "1");        // self-pay: not claimable
    coverage(c, pat, "cancelled", "Organization/" + other);    // not active
    const std::string cov = coverage(c, pat, "active", "Organization/" + insurer, "2");
    const std::string invoice = awkwardInvoice(c, pat);

    // The Invoice names no issuer: the provider must be given.
    assertOperationOutcome(c.post("/fhir/Invoice/" + invoice + "/$claim", ""), 422, "no provider");
    const HttpResponse r = c.post("/fhir/Invoice/" + invoice + "/$claim", providerParams("Organization/" + hospital));
    assertStatus(201, r, "$claim");
    CPPUNIT_ASSERT(!r.header("Location").empty());
    for (const std::string net : {"119.00", "0.13", "13.22"}) {
      CPPUNIT_ASSERT_MESSAGE(r.body, r.body.find(R"("net":{"value":)" + net + R"(,"currency":"EUR"})") != std::string::npos);
    }
    CPPUNIT_ASSERT_MESSAGE(r.body, r.body.find(R"("total":{"value":132.35,"currency":"EUR"})") != std::string::npos);
    const rapidjson::Document claim = r.json();
    CPPUNIT_ASSERT_EQUAL(std::string("Claim"), std::string(claim["resourceType"].GetString()));
    CPPUNIT_ASSERT_EQUAL(std::string("active"), std::string(claim["status"].GetString()));
    CPPUNIT_ASSERT_EQUAL(std::string("claim"), std::string(claim["use"].GetString()));
    CPPUNIT_ASSERT_EQUAL(std::string("Patient/" + pat), std::string(claim["patient"]["reference"].GetString()));
    CPPUNIT_ASSERT_EQUAL(std::string("Organization/" + insurer), std::string(claim["insurer"]["reference"].GetString()));
    CPPUNIT_ASSERT_EQUAL(std::string("Organization/" + hospital), std::string(claim["provider"]["reference"].GetString()));
    CPPUNIT_ASSERT_EQUAL(std::string("normal"), std::string(claim["priority"]["coding"][0]["code"].GetString()));
    CPPUNIT_ASSERT_EQUAL(1u, claim["insurance"].Size());
    CPPUNIT_ASSERT_EQUAL(std::string("Coverage/" + cov), std::string(claim["insurance"][0]["coverage"]["reference"].GetString()));
    CPPUNIT_ASSERT(claim["insurance"][0]["focal"].GetBool());
    CPPUNIT_ASSERT_EQUAL(3u, claim["item"].Size());
    for (rapidjson::SizeType i = 0; i < 3; ++i) {
      CPPUNIT_ASSERT_EQUAL(static_cast<int>(i + 1), claim["item"][i]["sequence"].GetInt());
      CPPUNIT_ASSERT_EQUAL(std::string("service"), std::string(claim["item"][i]["productOrService"]["text"].GetString()));
    }
    // Stored, and found by patient and by the invoice it claims.
    const std::string claimId = claim["id"].GetString();
    assertStatus(200, c.get("/fhir/Claim/" + claimId));
    const HttpResponse found = c.get("/fhir/Claim?identifier=urn:hearth:invoice-claim%7C" + invoice);
    CPPUNIT_ASSERT_EQUAL(1u, found.json()["entry"].Size());
    // Claimed once: a second $claim names the first.
    const rapidjson::Document oo =
        assertOperationOutcome(c.post("/fhir/Invoice/" + invoice + "/$claim", providerParams("Organization/" + hospital)), 409,
                               "second claim");
    CPPUNIT_ASSERT(std::string(oo["issue"][0]["diagnostics"].GetString()).find("Claim/" + claimId) != std::string::npos);
  }

  void testClaimRefusals() {
    HttpClient c(*server_);
    const std::string hospital = create(c, "Organization", R"({"resourceType":"Organization","name":"Hospital"})");
    // Self-pay only: nothing to claim.
    const std::string selfPay = create(c, "Patient", R"({"resourceType":"Patient"})");
    coverage(c, selfPay, "active", "Patient/" + selfPay);
    const std::string invoice = awkwardInvoice(c, selfPay);
    assertOperationOutcome(c.post("/fhir/Invoice/" + invoice + "/$claim", providerParams("Organization/" + hospital)), 422,
                           "self-pay");
    // Another patient's Coverage, named explicitly.
    const std::string insured = create(c, "Patient", R"({"resourceType":"Patient"})");
    const std::string insurer = create(c, "Organization", R"({"resourceType":"Organization","name":"Insurer"})");
    const std::string theirs = coverage(c, insured, "active", "Organization/" + insurer);
    assertOperationOutcome(
        c.post("/fhir/Invoice/" + invoice + "/$claim",
               R"({"resourceType":"Parameters","parameter":[{"name":"coverage","valueReference":{"reference":"Coverage/)" + theirs +
                   R"("}},{"name":"provider","valueReference":{"reference":"Organization/)" + hospital + R"("}}]})"),
        422, "another patient's coverage");
    // A draft invoice; an unknown one; a bad parameter; GET.
    const std::string draft = create(c, "Invoice", R"({"resourceType":"Invoice","status":"draft","subject":{"reference":"Patient/)" + insured + R"("}})");
    assertOperationOutcome(c.post("/fhir/Invoice/" + draft + "/$claim", providerParams("Organization/" + hospital)), 422, "draft");
    assertOperationOutcome(c.post("/fhir/Invoice/no-such-invoice/$claim", providerParams("Organization/" + hospital)), 404, "unknown");
    assertOperationOutcome(c.post("/fhir/Invoice/" + invoice + "/$claim", providerParams("Patient/" + insured)), 400, "bad provider");
    assertStatus(405, c.get("/fhir/Invoice/" + invoice + "/$claim"));
    // Nothing was stored.
    const HttpResponse none = c.get("/fhir/Claim?identifier=urn:hearth:invoice-claim%7C" + invoice);
    CPPUNIT_ASSERT(!none.json().HasMember("entry"));
  }

  void testParallelGenerateBillsOnce() {
    HttpClient c(*server_);
    const std::string enc = create(c, "Encounter", R"({"resourceType":"Encounter","status":"finished","class":{"code":"AMB"}})");
    const std::string pat = create(c, "Patient", R"({"resourceType":"Patient"})");
    for (int i = 0; i < 5; ++i) {
      create(c, "ChargeItem", chargeItem(enc, pat, "billable", R"("priceOverride":{"value":10.01,"currency":"EUR"})", "1"));
    }
    std::atomic<int> created{0}, nothing{0}, other{0};
    std::vector<std::thread> clerks;
    for (int i = 0; i < 8; ++i) {
      clerks.emplace_back([&] {
        HttpClient mine(*server_);
        const HttpResponse r = mine.post("/fhir/Invoice/$generate", generateFor(enc));
        if (r.status == 201) ++created;
        else if (r.status == 422) ++nothing;
        else {
          ++other;
          std::cerr << r.describe() << "\n";
        }
      });
    }
    for (auto& t : clerks) t.join();
    CPPUNIT_ASSERT_EQUAL(1, created.load());
    CPPUNIT_ASSERT_EQUAL(7, nothing.load());
    CPPUNIT_ASSERT_EQUAL(0, other.load());
    const HttpResponse invoices = c.get("/fhir/Invoice?subject=Patient/" + pat + "&_total=accurate");
    assertStatus(200, invoices);
    CPPUNIT_ASSERT_EQUAL(int64_t(1), invoices.json()["total"].GetInt64());
    CPPUNIT_ASSERT(invoices.body.find(R"("totalGross":{"value":50.05,"currency":"EUR"})") != std::string::npos);
  }

  void testPatientPeriod() {
    HttpClient c(*server_);
    const std::string enc = create(c, "Encounter", R"({"resourceType":"Encounter","status":"finished","class":{"code":"AMB"}})");
    const std::string pat = create(c, "Patient", R"({"resourceType":"Patient"})");
    const std::string in = create(c, "ChargeItem", chargeItem(enc, pat, "billable", R"("priceOverride":{"value":1.10,"currency":"EUR"})", "2",
                                                             R"(,"occurrenceDateTime":"2026-03-10T10:00:00Z")"));
    const std::string out = create(c, "ChargeItem", chargeItem(enc, pat, "billable", R"("priceOverride":{"value":9,"currency":"EUR"})", "1",
                                                              R"(,"occurrenceDateTime":"2026-05-10T10:00:00Z")"));
    const std::string params = R"({"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Patient/)" +
                               pat + R"("}},{"name":"periodStart","valueDate":"2026-03-01"},{"name":"periodEnd","valueDate":"2026-03-31"}]})";
    const HttpResponse r = c.post("/fhir/Invoice/$generate", params);
    assertStatus(201, r);
    CPPUNIT_ASSERT_MESSAGE(r.body, r.body.find(R"("totalNet":{"value":2.20,"currency":"EUR"})") != std::string::npos);
    CPPUNIT_ASSERT_EQUAL(std::string("billed"), statusOf(c, in));
    CPPUNIT_ASSERT_EQUAL(std::string("billable"), statusOf(c, out));
  }

  void testRefusalsBillNothing() {
    HttpClient c(*server_);
    const std::string enc = create(c, "Encounter", R"({"resourceType":"Encounter","status":"finished","class":{"code":"AMB"}})");
    const std::string pat = create(c, "Patient", R"({"resourceType":"Patient"})");
    const std::string eur = create(c, "ChargeItem", chargeItem(enc, pat, "billable", R"("priceOverride":{"value":1,"currency":"EUR"})", "1"));
    const std::string usd = create(c, "ChargeItem", chargeItem(enc, pat, "billable", R"("priceOverride":{"value":1,"currency":"USD"})", "1"));
    assertOperationOutcome(c.post("/fhir/Invoice/$generate", generateFor(enc)), 422, "mixed currencies");
    CPPUNIT_ASSERT_EQUAL(std::string("billable"), statusOf(c, eur));
    CPPUNIT_ASSERT_EQUAL(std::string("billable"), statusOf(c, usd));

    const std::string enc2 = create(c, "Encounter", R"({"resourceType":"Encounter","status":"finished","class":{"code":"AMB"}})");
    const std::string unknown = create(c, "ChargeItem", chargeItem(enc2, pat, "billable", R"("definitionCanonical":["urn:test:no-such-definition"])", "1"));
    assertOperationOutcome(c.post("/fhir/Invoice/$generate", generateFor(enc2)), 422, "unknown definition");
    CPPUNIT_ASSERT_EQUAL(std::string("billable"), statusOf(c, unknown));

    assertOperationOutcome(c.post("/fhir/Invoice/$generate", R"({"resourceType":"Parameters"})"), 400, "no encounter or patient");
    assertOperationOutcome(c.post("/fhir/Invoice/$generate", generateFor("not a valid id!")), 400, "bad reference");
    assertOperationOutcome(c.post("/fhir/Invoice/$generate", generateFor(enc, "-0.1")), 400, "negative tax");
    assertOperationOutcome(c.post("/fhir/Invoice/$generate", R"({"resourceType":"Patient"})"), 400, "not Parameters");
    assertStatus(405, c.get("/fhir/Invoice/$generate"));
  }

  // An invoice of 119.00 (100.00 + 19 % tax): part payments, an overpayment refused, paid off ->
  // balanced; 12 concurrent payments of 11.90 on another: exactly 10 land, never more than owed.
  void testPaymentsBalanceTheInvoice() {
    HttpClient c(*server_);
    auto invoice = [&] {
      const std::string enc = create(c, "Encounter", R"({"resourceType":"Encounter","status":"finished","class":{"code":"AMB"}})");
      const std::string pat = create(c, "Patient", R"({"resourceType":"Patient"})");
      create(c, "ChargeItem", chargeItem(enc, pat, "billable", R"("priceOverride":{"value":100.00,"currency":"EUR"})", "1"));
      const HttpResponse r = c.post("/fhir/Invoice/$generate", generateFor(enc, "0.19"));
      assertStatus(201, r);
      return std::string(r.json()["id"].GetString());
    };
    auto pay = [&](HttpClient& client, const std::string& id, const std::string& amount, const std::string& currency = "EUR") {
      return client.post("/fhir/Invoice/" + id + "/$pay",
                         R"({"resourceType":"Parameters","parameter":[{"name":"amount","valueMoney":{"value":)" + amount +
                             R"(,"currency":")" + currency + R"("}},{"name":"method","valueString":"card"}]})");
    };
    const std::string id = invoice();
    HttpResponse r = c.get("/fhir/Invoice/" + id + "/$balance");
    assertStatus(200, r);
    CPPUNIT_ASSERT_MESSAGE(r.body, r.body.find(R"("name":"outstanding","valueMoney":{"value":119.00,"currency":"EUR"})") != std::string::npos);
    r = pay(c, id, "19.01");
    assertStatus(200, r);
    CPPUNIT_ASSERT_MESSAGE(r.body, r.body.find(R"("name":"outstanding","valueMoney":{"value":99.99,)") != std::string::npos);
    assertOperationOutcome(pay(c, id, "100.00"), 422, "overpayment");
    assertOperationOutcome(pay(c, id, "5.00", "USD"), 422, "other currency");
    assertOperationOutcome(pay(c, id, "0"), 400, "zero");
    assertOperationOutcome(pay(c, id, "1.001"), 400, "fractions of a cent");
    r = c.get("/fhir/Invoice/" + id + "/$balance");
    CPPUNIT_ASSERT_MESSAGE(r.body, r.body.find(R"("name":"paid","valueMoney":{"value":19.01,)") != std::string::npos);
    r = pay(c, id, "99.99");
    assertStatus(200, r);
    CPPUNIT_ASSERT_MESSAGE(r.body, r.body.find(R"("name":"outstanding","valueMoney":{"value":0.00,)") != std::string::npos);
    CPPUNIT_ASSERT_EQUAL(std::string("balanced"), std::string(c.get("/fhir/Invoice/" + id).json()["status"].GetString()));
    assertOperationOutcome(pay(c, id, "1.00"), 422, "balanced invoice");

    const std::string other = invoice();
    std::atomic<int> ok{0}, refused{0}, unexpected{0};
    std::vector<std::thread> payers;
    for (int i = 0; i < 12; ++i) {
      payers.emplace_back([&] {
        HttpClient mine(*server_);
        const HttpResponse p = pay(mine, other, "11.90");
        if (p.status == 200) ++ok;
        else if (p.status == 422) ++refused;
        else ++unexpected;
      });
    }
    for (auto& t : payers) t.join();
    CPPUNIT_ASSERT_EQUAL(10, ok.load());
    CPPUNIT_ASSERT_EQUAL(2, refused.load());
    CPPUNIT_ASSERT_EQUAL(0, unexpected.load());
    CPPUNIT_ASSERT_EQUAL(std::string("balanced"), std::string(c.get("/fhir/Invoice/" + other).json()["status"].GetString()));
  }

 protected:
  virtual Backend backend() const = 0;
  static std::unique_ptr<HearthProcess> server_;
};
std::unique_ptr<HearthProcess> BillingTest::server_;

class BillingSqliteTest : public BillingTest {
  CPPUNIT_TEST_SUB_SUITE(BillingSqliteTest, BillingTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return sqliteBackend(); }
};
CPPUNIT_TEST_SUITE_REGISTRATION(BillingSqliteTest);

class BillingPostgresTest : public BillingTest {
  CPPUNIT_TEST_SUB_SUITE(BillingPostgresTest, BillingTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return *postgresBackend(); }
};

namespace {
struct RegisterPostgresSuite {
  std::optional<CppUnit::AutoRegisterSuite<BillingPostgresTest>> reg;
  RegisterPostgresSuite() {
    if (postgresBackend())
      reg.emplace();
    else
      std::cerr << "[note] HEARTH_TEST_PG_URL not set: PostgreSQL billing suite not run\n";
  }
} registerPostgresSuite;
}  // namespace
