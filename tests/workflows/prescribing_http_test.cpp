// MedicationRequest/$check as a prescriber sees it before signing: a warning for a drug the
// patient is allergic to (by code or by name), a warning for an active order of the same drug,
// nothing for an allergy that is no longer active. SQLite and PostgreSQL, over HTTP.
#include <cppunit/extensions/HelperMacros.h>

#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "hearth_process.h"
#include "http_client.h"
#include "http_test_support.h"

using namespace hearth::test;

namespace {

const std::string kRx = "http://www.nlm.nih.gov/research/umls/rxnorm";

std::string coded(const std::string& code, const std::string& display) {
  return R"({"coding":[{"system":")" + kRx + R"(","code":")" + code + R"(","display":")" + display + R"("}]})";
}

std::string allergy(const std::string& patient, const std::string& code, const std::string& status) {
  return R"({"resourceType":"AllergyIntolerance","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical","code":")" +
         status + R"("}]},"code":)" + code + R"(,"patient":{"reference":"Patient/)" + patient + R"("}})";
}

std::string order(const std::string& patient, const std::string& medication, const std::string& status = "active") {
  return R"({"resourceType":"MedicationRequest","status":")" + status + R"(","intent":"order",)" + medication +
         R"(,"subject":{"reference":"Patient/)" + patient + R"("}})";
}

// (severity, diagnostics) of each issue, joined for assertions.
std::string issues(const HttpResponse& r) {
  const rapidjson::Document oo = r.json();
  std::string out;
  for (const auto& i : oo["issue"].GetArray()) {
    out += std::string(i["severity"].GetString()) + ": " + i["diagnostics"].GetString() + "\n";
  }
  return out;
}

}  // namespace

class PrescribingTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(PrescribingTest);
  CPPUNIT_TEST(testWarnings);
  CPPUNIT_TEST(testBadInput);
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

  void testWarnings() {
    HttpClient c(*server_);
    const HttpResponse p = c.post("/fhir/Patient", R"({"resourceType":"Patient"})");
    assertStatus(201, p);
    const std::string pat = p.json()["id"].GetString();
    const HttpResponse a = c.post("/fhir/AllergyIntolerance", allergy(pat, coded("723", "Amoxicillin"), "active"));
    assertStatus(201, a);
    const std::string allergyId = a.json()["id"].GetString();
    assertStatus(201, c.post("/fhir/AllergyIntolerance", allergy(pat, coded("5640", "Ibuprofen"), "inactive")));
    const HttpResponse existing = c.post("/fhir/MedicationRequest", order(pat, R"("medicationCodeableConcept":)" + coded("6809", "Metformin")));
    assertStatus(201, existing);
    const std::string existingId = existing.json()["id"].GetString();

    auto check = [&](const std::string& medication, const std::string& status = "draft") {
      const HttpResponse r = c.post("/fhir/MedicationRequest/$check", order(pat, medication, status));
      assertStatus(200, r, "$check");
      return issues(r);
    };
    std::string got = check(R"("medicationCodeableConcept":)" + coded("723", "Amoxicillin 500 mg capsule"));
    CPPUNIT_ASSERT_MESSAGE(got, got.find("warning: The patient has an active allergy") == 0);
    CPPUNIT_ASSERT_MESSAGE(got, got.find("AllergyIntolerance/" + allergyId) != std::string::npos);
    // By name only, in capitals and without a code.
    got = check(R"("medicationCodeableConcept":{"text":"AMOXICILLIN"})");
    CPPUNIT_ASSERT_MESSAGE(got, got.find("warning: The patient has an active allergy") == 0);
    // The allergy to ibuprofen is no longer active: no warning.
    got = check(R"("medicationCodeableConcept":)" + coded("5640", "Ibuprofen"));
    CPPUNIT_ASSERT_EQUAL(std::string("information: No interactions found\n"), got);
    // Metformin is already on order: duplicate, also through a Medication resource.
    got = check(R"("medicationCodeableConcept":)" + coded("6809", "Metformin"));
    CPPUNIT_ASSERT_MESSAGE(got, got.find("warning: An active order for the same drug exists: MedicationRequest/" + existingId) == 0);
    const HttpResponse med = c.post("/fhir/Medication", R"({"resourceType":"Medication","code":)" + coded("6809", "Metformin 500 mg") + "}");
    assertStatus(201, med);
    got = check(R"("medicationReference":{"reference":"Medication/)" + std::string(med.json()["id"].GetString()) + R"("})");
    CPPUNIT_ASSERT_MESSAGE(got, got.find("An active order for the same drug") != std::string::npos);
    // Once the existing order is cancelled, no duplicate.
    assertStatus(200, c.put("/fhir/MedicationRequest/" + existingId,
                            withId(order(pat, R"("medicationCodeableConcept":)" + coded("6809", "Metformin"), "cancelled"), existingId)));
    got = check(R"("medicationCodeableConcept":)" + coded("6809", "Metformin"));
    CPPUNIT_ASSERT_EQUAL(std::string("information: No interactions found\n"), got);
  }

  void testBadInput() {
    HttpClient c(*server_);
    assertOperationOutcome(c.post("/fhir/MedicationRequest/$check", R"({"resourceType":"Patient"})"), 400, "not a MedicationRequest");
    assertOperationOutcome(c.post("/fhir/MedicationRequest/$check",
                                  R"({"resourceType":"MedicationRequest","status":"draft","intent":"order","medicationCodeableConcept":{"text":"x"}})"),
                           400, "no subject");
    assertStatus(405, c.get("/fhir/MedicationRequest/$check"));
  }

 protected:
  virtual Backend backend() const = 0;
  static std::unique_ptr<HearthProcess> server_;
};
std::unique_ptr<HearthProcess> PrescribingTest::server_;

class PrescribingSqliteTest : public PrescribingTest {
  CPPUNIT_TEST_SUB_SUITE(PrescribingSqliteTest, PrescribingTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return sqliteBackend(); }
};
CPPUNIT_TEST_SUITE_REGISTRATION(PrescribingSqliteTest);

class PrescribingPostgresTest : public PrescribingTest {
  CPPUNIT_TEST_SUB_SUITE(PrescribingPostgresTest, PrescribingTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return *postgresBackend(); }
};

namespace {
struct RegisterPostgresSuite {
  std::optional<CppUnit::AutoRegisterSuite<PrescribingPostgresTest>> reg;
  RegisterPostgresSuite() {
    if (postgresBackend())
      reg.emplace();
    else
      std::cerr << "[note] HEARTH_TEST_PG_URL not set: PostgreSQL prescribing suite not run\n";
  }
} registerPostgresSuite;
}  // namespace
