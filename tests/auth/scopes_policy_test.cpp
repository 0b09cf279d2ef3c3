// scopes.h and policy.h: SMART v1/v2 scope parsing (table-driven) and the hospital role matrix of
// issue 5, with config/roles.properties as shipped.
#include <cppunit/extensions/HelperMacros.h>

#include "hearth/auth/policy.h"
#include "test_support.h"

using namespace hearth::auth;

class ScopesTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(ScopesTest);
  CPPUNIT_TEST(testValidClinicalScopes);
  CPPUNIT_TEST(testInvalidClinicalScopes);
  CPPUNIT_TEST(testScopeStrings);
  CPPUNIT_TEST(testMixedContextsRejected);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testValidClinicalScopes() {
    struct Row {
      const char* scope;
      ScopeContext ctx;
      const char* type;
      const char* letters;
      bool v2;
      size_t filters;
    };
    const Row rows[] = {
        {"patient/*.read", ScopeContext::Patient, "*", "rs", false, 0},
        {"user/Observation.write", ScopeContext::User, "Observation", "cud", false, 0},
        {"system/Patient.*", ScopeContext::System, "Patient", "cruds", false, 0},
        {"patient/Observation.rs", ScopeContext::Patient, "Observation", "rs", true, 0},
        {"user/Encounter.cu", ScopeContext::User, "Encounter", "cu", true, 0},
        {"system/*.cruds", ScopeContext::System, "*", "cruds", true, 0},
        {"patient/Condition.d", ScopeContext::Patient, "Condition", "d", true, 0},
        {"patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
         ScopeContext::Patient, "Observation", "rs", true, 1},
        {"patient/Condition.rs?category=encounter-diagnosis&clinical-status=active", ScopeContext::Patient, "Condition",
         "rs", true, 2},
    };
    for (const auto& r : rows) {
      ResourceScope s = parseResourceScope(r.scope);
      CPPUNIT_ASSERT_MESSAGE(r.scope, s.context == r.ctx);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(r.scope, std::string(r.type), s.type);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(r.scope, std::string(r.letters), interactionLetters(s.interactions));
      CPPUNIT_ASSERT_EQUAL_MESSAGE(r.scope, r.v2, s.v2);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(r.scope, r.filters, s.filter.size());
    }
    ResourceScope g = parseResourceScope("patient/Observation.rs?code=http://loinc.org%7C4548-4");
    CPPUNIT_ASSERT_EQUAL(std::string("code"), g.filter[0].first);
    CPPUNIT_ASSERT_EQUAL(std::string("http://loinc.org|4548-4"), g.filter[0].second);
  }

  void testInvalidClinicalScopes() {
    for (const char* bad :
         {"patient/Obs", "patient/Observation", "patient/Observation.", "patient/observation.read", "patient/.read",
          "patient/Observation.rx", "patient/Observation.sr", "patient/Observation.rrs", "patient/Observation.READ",
          "patient/Observation.read?category=lab", "patient/Observation.rs?", "patient/Observation.rs?category",
          "patient/Observation.rs?=x", "patient/Observation.rs?a=%zz",
          "patient/Obser-vation.rs", "patient/*.rs\"", "patient/**.rs"}) {
      CPPUNIT_ASSERT_THROW_MESSAGE(bad, parseResourceScope(bad), ScopeError);
      CPPUNIT_ASSERT_THROW_MESSAGE(bad, parseScopes(std::string("openid ") + bad), ScopeError);
    }
    // An unknown context is not a clinical scope: refused as one, and as part of a scope string
    // merely not recognised (it grants nothing).
    CPPUNIT_ASSERT_THROW(parseResourceScope("practitioner/Observation.read"), ScopeError);
    ScopeSet s = parseScopes("practitioner/Observation.read");
    CPPUNIT_ASSERT(s.resources.empty() && s.other.size() == 1 && s.granted().empty());
  }

  void testScopeStrings() {
    ScopeSet s = parseScopes("openid fhirUser launch launch/patient offline_access  patient/*.read patient/*.read email");
    CPPUNIT_ASSERT(s.openid && s.fhirUser && s.launch && s.launchPatient && s.offlineAccess);
    CPPUNIT_ASSERT(!s.onlineAccess && !s.launchEncounter);
    CPPUNIT_ASSERT_EQUAL(size_t(1), s.resources.size());  // duplicates collapse
    CPPUNIT_ASSERT_EQUAL(size_t(1), s.other.size());
    CPPUNIT_ASSERT(s.context() == ScopeContext::Patient);
    CPPUNIT_ASSERT_EQUAL(std::string("openid fhirUser launch launch/patient offline_access patient/*.read"), s.granted());
    CPPUNIT_ASSERT(!parseScopes("openid profile").context());
    CPPUNIT_ASSERT_THROW(parseScopes("offline_access online_access"), ScopeError);
    CPPUNIT_ASSERT_THROW(parseScopes("openid\tpatient/*.read"), ScopeError);  // tab is not a separator
    CPPUNIT_ASSERT_THROW(parseScopes(std::string(9000, 'a')), ScopeError);
  }

  void testMixedContextsRejected() {
    for (const char* mixed : {"patient/*.read user/Observation.rs", "user/*.rs system/Patient.rs",
                              "system/*.rs patient/Observation.rs"})
      CPPUNIT_ASSERT_THROW_MESSAGE(mixed, parseScopes(mixed), ScopeError);
    CPPUNIT_ASSERT_NO_THROW(parseScopes("patient/Observation.rs patient/Patient.r launch/patient"));
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(ScopesTest);

class PolicyTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(PolicyTest);
  CPPUNIT_TEST(testShippedRolesLoad);
  CPPUNIT_TEST(testRoleMatrix);
  CPPUNIT_TEST(testScopesNarrowRoles);
  CPPUNIT_TEST(testPatientCompartment);
  CPPUNIT_TEST(testGranularScopes);
  CPPUNIT_TEST(testAuditEventImmutable);
  CPPUNIT_TEST(testConfigErrors);
  CPPUNIT_TEST_SUITE_END();

  RoleCatalog catalog_;

  static Principal staff(const std::string& role, const std::string& scopes = "user/*.cruds") {
    Principal p;
    p.roles = {role};
    p.scopes = parseScopes(scopes);
    p.fhirUser = "Practitioner/77";
    return p;
  }

 public:
  void setUp() override {
    catalog_ = RoleCatalog::load(authtest::env("HEARTH_SOURCE_DIR") + "/config/roles.properties");
  }

  void testShippedRolesLoad() {
    for (const char* r : {"admin", "doctor", "nurse", "receptionist", "pharmacist", "billing", "patient"})
      CPPUNIT_ASSERT_MESSAGE(r, catalog_.find(r) != nullptr);
    CPPUNIT_ASSERT(catalog_.find("patient")->patientCompartment);
    CPPUNIT_ASSERT(!catalog_.find("doctor")->patientCompartment);
    CPPUNIT_ASSERT(catalog_.immutableTypes().count("AuditEvent"));
  }

  // The matrix (and the obvious neighbours), with user/*.cruds so that only the role decides.
  void testRoleMatrix() {
    struct Row {
      const char* role;
      const char* type;
      Interaction what;
      bool allowed;
    };
    const Row rows[] = {
        // Receptionist: registration and scheduling, never lab results.
        {"receptionist", "Patient", kCreate, true},
        {"receptionist", "Patient", kUpdate, true},
        {"receptionist", "Appointment", kCreate, true},
        {"receptionist", "Slot", kSearch, true},
        {"receptionist", "Schedule", kRead, true},
        {"receptionist", "Practitioner", kRead, true},
        {"receptionist", "Practitioner", kUpdate, false},
        {"receptionist", "Observation", kRead, false},
        {"receptionist", "Observation", kSearch, false},
        {"receptionist", "DiagnosticReport", kRead, false},
        {"receptionist", "DiagnosticReport", kSearch, false},
        {"receptionist", "Condition", kRead, false},
        {"receptionist", "MedicationRequest", kRead, false},
        {"receptionist", "Patient", kDelete, false},
        // Pharmacist: reads prescriptions, dispenses, maintains medications; no invoices.
        {"pharmacist", "MedicationRequest", kRead, true},
        {"pharmacist", "MedicationRequest", kSearch, true},
        {"pharmacist", "MedicationRequest", kCreate, false},
        {"pharmacist", "MedicationRequest", kUpdate, false},
        {"pharmacist", "MedicationDispense", kCreate, true},
        {"pharmacist", "Medication", kUpdate, true},
        {"pharmacist", "Medication", kCreate, true},
        {"pharmacist", "Invoice", kCreate, false},
        {"pharmacist", "Invoice", kRead, false},
        {"pharmacist", "Claim", kCreate, false},
        // Billing: financial resources, patient demographics read-only, no clinical data.
        {"billing", "Invoice", kCreate, true},
        {"billing", "ChargeItem", kUpdate, true},
        {"billing", "Claim", kCreate, true},
        {"billing", "Coverage", kUpdate, true},
        {"billing", "Account", kCreate, true},
        {"billing", "Patient", kRead, true},
        {"billing", "Patient", kUpdate, false},
        {"billing", "Observation", kRead, false},
        {"billing", "MedicationRequest", kRead, false},
        // Clinical staff.
        {"doctor", "Observation", kCreate, true},
        {"doctor", "DiagnosticReport", kRead, true},
        {"doctor", "MedicationRequest", kCreate, true},
        {"doctor", "Invoice", kCreate, false},
        {"doctor", "Observation", kDelete, false},
        {"nurse", "Observation", kCreate, true},
        {"nurse", "MedicationAdministration", kCreate, true},
        {"nurse", "MedicationRequest", kCreate, false},
        {"nurse", "DiagnosticReport", kUpdate, false},
        {"admin", "Invoice", kDelete, true},
        {"admin", "Observation", kRead, true},
        // Unknown role: nothing.
        {"janitor", "Patient", kRead, false},
    };
    for (const auto& r : rows) {
      Decision d = authorize(catalog_, staff(r.role), r.type, r.what);
      std::string label = std::string(r.role) + " " + interactionLetters(r.what) + " " + r.type + ": " + d.reason;
      CPPUNIT_ASSERT_EQUAL_MESSAGE(label, r.allowed, d.allowed);
      if (d.allowed) CPPUNIT_ASSERT_MESSAGE(label, !d.compartmentPatient);
    }
  }

  void testScopesNarrowRoles() {
    // A doctor's app holding only read scopes cannot write, although the role could.
    Principal p = staff("doctor", "openid fhirUser user/*.read");
    CPPUNIT_ASSERT(authorize(catalog_, p, "Observation", kRead).allowed);
    CPPUNIT_ASSERT(!authorize(catalog_, p, "Observation", kCreate).allowed);
    // And scopes never widen a role: receptionist with user/*.* still cannot read labs.
    p = staff("receptionist", "user/*.*");
    CPPUNIT_ASSERT(!authorize(catalog_, p, "Observation", kRead).allowed);
    // v2 letters are exact: .r without .s does not allow search.
    p = staff("doctor", "user/Observation.r");
    CPPUNIT_ASSERT(authorize(catalog_, p, "Observation", kRead).allowed);
    CPPUNIT_ASSERT(!authorize(catalog_, p, "Observation", kSearch).allowed);
    CPPUNIT_ASSERT(!authorize(catalog_, p, "Condition", kRead).allowed);
    // No clinical scopes at all: nothing.
    p = staff("admin", "openid fhirUser");
    CPPUNIT_ASSERT(!authorize(catalog_, p, "Patient", kRead).allowed);
    // Roles of several kinds combine (union before the scope intersection).
    p = staff("receptionist");
    p.roles.push_back("billing");
    CPPUNIT_ASSERT(authorize(catalog_, p, "Invoice", kCreate).allowed);
    CPPUNIT_ASSERT(authorize(catalog_, p, "Appointment", kCreate).allowed);
    CPPUNIT_ASSERT(!authorize(catalog_, p, "Observation", kRead).allowed);
    CPPUNIT_ASSERT_THROW(authorize(catalog_, p, "Patient", Interaction(kRead | kSearch)), std::invalid_argument);
  }

  void testPatientCompartment() {
    // A patient user: read-only, confined to their own compartment.
    Principal pat;
    pat.roles = {"patient"};
    pat.fhirUser = "Patient/123";
    pat.scopes = parseScopes("openid fhirUser patient/*.read");
    pat.patientContext = "123";
    Decision d = authorize(catalog_, pat, "Observation", kSearch);
    CPPUNIT_ASSERT(d.allowed);
    CPPUNIT_ASSERT_EQUAL(std::string("123"), d.compartmentPatient.value_or("?"));
    CPPUNIT_ASSERT(!authorize(catalog_, pat, "Observation", kCreate).allowed);
    CPPUNIT_ASSERT(!authorize(catalog_, pat, "Patient", kUpdate).allowed);
    // Another patient in context than the user's own record: refused.
    pat.patientContext = "456";
    CPPUNIT_ASSERT(!authorize(catalog_, pat, "Observation", kRead).allowed);
    // user/ scopes do not escape the compartment role.
    pat.scopes = parseScopes("user/*.rs");
    pat.patientContext.clear();
    d = authorize(catalog_, pat, "Observation", kRead);
    CPPUNIT_ASSERT(d.allowed);
    CPPUNIT_ASSERT_EQUAL(std::string("123"), d.compartmentPatient.value_or("?"));
    // A patient-role account without a Patient fhirUser gets nothing.
    pat.fhirUser = "Practitioner/1";
    CPPUNIT_ASSERT(!authorize(catalog_, pat, "Observation", kRead).allowed);
    // A doctor launching an app in a patient context is confined to that patient.
    Principal doc = staff("doctor", "launch patient/Observation.rs patient/Patient.r");
    doc.patientContext = "999";
    d = authorize(catalog_, doc, "Observation", kSearch);
    CPPUNIT_ASSERT(d.allowed);
    CPPUNIT_ASSERT_EQUAL(std::string("999"), d.compartmentPatient.value_or("?"));
    // patient/ scopes without a patient in context: refused.
    doc.patientContext.clear();
    CPPUNIT_ASSERT(!authorize(catalog_, doc, "Observation", kSearch).allowed);
  }

  void testGranularScopes() {
    const std::string lab = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory";
    Principal p = staff("doctor", "patient/Observation.rs?category=" + lab);
    p.patientContext = "5";
    // Without the filter in the request, the caller must apply it.
    Decision d = authorize(catalog_, p, "Observation", kSearch);
    CPPUNIT_ASSERT(d.allowed);
    CPPUNIT_ASSERT_EQUAL(size_t(1), d.requiredFilters.size());
    CPPUNIT_ASSERT_EQUAL(std::string("category"), d.requiredFilters[0][0].first);
    CPPUNIT_ASSERT_EQUAL(lab, d.requiredFilters[0][0].second);
    // A request that already carries it needs nothing more.
    d = authorize(catalog_, p, "Observation", kSearch, {{"category", lab}, {"date", "ge2024"}});
    CPPUNIT_ASSERT(d.allowed && d.requiredFilters.empty());
    // A different category value does not satisfy it.
    d = authorize(catalog_, p, "Observation", kSearch, {{"category", "vital-signs"}});
    CPPUNIT_ASSERT(d.allowed && d.requiredFilters.size() == 1);
    // An unfiltered scope for the same type lifts the restriction.
    p.scopes = parseScopes("patient/Observation.rs?category=" + lab + " patient/Observation.rs");
    CPPUNIT_ASSERT(authorize(catalog_, p, "Observation", kSearch).requiredFilters.empty());
  }

  void testAuditEventImmutable() {
    Principal admin = staff("admin");
    CPPUNIT_ASSERT(authorize(catalog_, admin, "AuditEvent", kRead).allowed);
    CPPUNIT_ASSERT(authorize(catalog_, admin, "AuditEvent", kSearch).allowed);
    for (Interaction i : {kCreate, kUpdate, kDelete})
      CPPUNIT_ASSERT(!authorize(catalog_, admin, "AuditEvent", i).allowed);
  }

  void testConfigErrors() {
    const char* bad[] = {
        "role.x.permissions = Patient:rx",
        "role.x.permissions = Patient:rs, Patient:c",
        "role.x.permissions = patient:rs",
        "role.x.permissions = Patient",
        "role.x.compartment = Encounter",
        "role.x.colour = blue",
        "roles.x.permissions = Patient:r",
        "role..permissions = Patient:r",
        "role.X.permissions = Patient:r",
        "policy.immutableTypes = *",
        "just a line",
    };
    for (const char* text : bad) CPPUNIT_ASSERT_THROW_MESSAGE(text, RoleCatalog::parse(text), PolicyConfigError);
    try {
      RoleCatalog::parse("# comment\n\nrole.a.permissions = Patient:r\nrole.a.permissions = Patient:q\n");
      CPPUNIT_FAIL("accepted bad letters");
    } catch (const PolicyConfigError& e) {
      CPPUNIT_ASSERT_MESSAGE(e.what(), std::string(e.what()).find("line 4") != std::string::npos);
    }
    RoleCatalog c = RoleCatalog::parse("role.a.permissions = Patient:sr, \\\n   Observation:c\npolicy.immutableTypes = Provenance\n");
    CPPUNIT_ASSERT_EQUAL(unsigned(kRead | kSearch), c.find("a")->allowed("Patient"));
    CPPUNIT_ASSERT_EQUAL(unsigned(kCreate), c.find("a")->allowed("Observation"));
    CPPUNIT_ASSERT(c.immutableTypes().count("Provenance") && !c.immutableTypes().count("AuditEvent"));
    CPPUNIT_ASSERT_THROW(RoleCatalog::load("/nonexistent/roles.properties"), PolicyConfigError);
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(PolicyTest);
