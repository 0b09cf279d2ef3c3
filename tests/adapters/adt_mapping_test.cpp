// ADT -> Patient, Encounter, Practitioner, Location, AllergyIntolerance, Coverage, Organization:
// the values a registration integrator checks after an admit, a registration, an update, a
// discharge and a merge.
#include "adapters_test_support.h"

using namespace adaptertest;

namespace {
const std::string kNorthvaleOid = "urn:oid:2.16.840.1.113883.3.9001";
}

class AdtMappingTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(AdtMappingTest);
  CPPUNIT_TEST(testA01PatientIdentifiersNamesAndDemographics);
  CPPUNIT_TEST(testA01TelecomAddressesContactsAndLanguage);
  CPPUNIT_TEST(testA01EncounterClassLocationAndDoctors);
  CPPUNIT_TEST(testA01AllergiesAsAllergyIntolerance);
  CPPUNIT_TEST(testA01InsuranceAsCoverageWithInsurer);
  CPPUNIT_TEST(testA04Version23LegacyFields);
  CPPUNIT_TEST(testA08EscapedDelimitersInNamesAndAddresses);
  CPPUNIT_TEST(testA08Latin1TextArrivesAsUnicode);
  CPPUNIT_TEST(testA28AndA31UpdateThePersonWithoutAVisit);
  CPPUNIT_TEST(testA03FinishesTheEncounter);
  CPPUNIT_TEST(testA03WithoutDischargeTimeEndsAtTheEvent);
  CPPUNIT_TEST(testA40MergeLinksBothPatients);
  CPPUNIT_TEST(testDeathAndMultipleBirth);
  CPPUNIT_TEST(testAuthoritySystemsAndDefaults);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testA01PatientIdentifiersNamesAndDemographics() {
    Mapped m = mapFile("adt_a01_v251.hl7");
    const Value& entry = m.oneEntry("Patient");
    CPPUNIT_ASSERT_EQUAL(std::string("PUT"), str(entry, "/request/method"));
    CPPUNIT_ASSERT_EQUAL("Patient?identifier=" + kNorthvaleOid + "|MRN100234", str(entry, "/request/url"));
    const Value& p = entry["resource"];
    CPPUNIT_ASSERT_EQUAL(size_t(2), count(p, "/identifier"));
    CPPUNIT_ASSERT_EQUAL(kNorthvaleOid, str(p, "/identifier/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("MRN100234"), str(p, "/identifier/0/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("http://terminology.hl7.org/CodeSystem/v2-0203"), str(p, "/identifier/0/type/coding/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("MR"), str(p, "/identifier/0/type/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("http://hl7.org/fhir/sid/us-ssn"), str(p, "/identifier/1/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("987-65-4320"), str(p, "/identifier/1/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("SS"), str(p, "/identifier/1/type/coding/0/code"));

    CPPUNIT_ASSERT_EQUAL(size_t(2), count(p, "/name"));
    CPPUNIT_ASSERT_EQUAL(std::string("official"), str(p, "/name/0/use"));
    CPPUNIT_ASSERT_EQUAL(std::string("Lindqvist"), str(p, "/name/0/family"));
    CPPUNIT_ASSERT_EQUAL(std::string("\xC3\x85sa"), str(p, "/name/0/given/0"));
    CPPUNIT_ASSERT_EQUAL(std::string("Marie"), str(p, "/name/0/given/1"));
    CPPUNIT_ASSERT_EQUAL(std::string("maiden"), str(p, "/name/1/use"));
    CPPUNIT_ASSERT_EQUAL(std::string("Berg"), str(p, "/name/1/family"));
    CPPUNIT_ASSERT_EQUAL(std::string("female"), str(p, "/gender"));
    CPPUNIT_ASSERT_EQUAL(std::string("1979-05-22"), str(p, "/birthDate"));
    CPPUNIT_ASSERT_EQUAL(std::string("http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"),
                         str(p, "/maritalStatus/coding/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("M"), str(p, "/maritalStatus/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("http://terminology.hl7.org/CodeSystem/v2-0002"), str(p, "/maritalStatus/coding/1/system"));
    CPPUNIT_ASSERT(at(p, "/deceasedBoolean") && !at(p, "/deceasedBoolean")->GetBool());
    CPPUNIT_ASSERT_EQUAL(std::string("urn:hearth:v2:REGADT:NORTHVALE_HOSP"), str(p, "/meta/source"));
    // PD1-4: the GP is a Practitioner created if unknown, by NPI.
    const Value& gp = m.resolve(p["generalPractitioner"][0]);
    CPPUNIT_ASSERT_EQUAL(std::string("http://hl7.org/fhir/sid/us-npi"), str(gp, "/identifier/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("1122334455"), str(gp, "/identifier/0/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("Okonkwo"), str(gp, "/name/0/family"));
  }

  void testA01TelecomAddressesContactsAndLanguage() {
    Mapped m = mapFile("adt_a01_v251.hl7");
    const Value& p = m.one("Patient");
    CPPUNIT_ASSERT_EQUAL(size_t(3), count(p, "/telecom"));
    CPPUNIT_ASSERT_EQUAL(std::string("phone"), str(p, "/telecom/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("home"), str(p, "/telecom/0/use"));
    CPPUNIT_ASSERT_EQUAL(std::string("+1 (845) 5550142"), str(p, "/telecom/0/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("email"), str(p, "/telecom/1/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("asa.lindqvist@example.org"), str(p, "/telecom/1/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("work"), str(p, "/telecom/2/use"));
    CPPUNIT_ASSERT_EQUAL(std::string("+1 (845) 5550199 ext. 221"), str(p, "/telecom/2/value"));

    CPPUNIT_ASSERT_EQUAL(size_t(2), count(p, "/address"));
    CPPUNIT_ASSERT_EQUAL(std::string("home"), str(p, "/address/0/use"));
    CPPUNIT_ASSERT_EQUAL(std::string("12 Harbour Rd"), str(p, "/address/0/line/0"));
    CPPUNIT_ASSERT_EQUAL(std::string("Apt 4B"), str(p, "/address/0/line/1"));
    CPPUNIT_ASSERT_EQUAL(std::string("Northvale"), str(p, "/address/0/city"));
    CPPUNIT_ASSERT_EQUAL(std::string("NY"), str(p, "/address/0/state"));
    CPPUNIT_ASSERT_EQUAL(std::string("10960"), str(p, "/address/0/postalCode"));
    CPPUNIT_ASSERT_EQUAL(std::string("USA"), str(p, "/address/0/country"));
    CPPUNIT_ASSERT_EQUAL(std::string("087"), str(p, "/address/0/district"));
    CPPUNIT_ASSERT_EQUAL(std::string("postal"), str(p, "/address/1/type"));  // XAD-7 M (mailing)
    CPPUNIT_ASSERT_EQUAL(std::string("PO Box 77"), str(p, "/address/1/line/0"));

    CPPUNIT_ASSERT_EQUAL(std::string("urn:ietf:bcp:47"), str(p, "/communication/0/language/coding/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("sv"), str(p, "/communication/0/language/coding/0/code"));
    CPPUNIT_ASSERT(at(p, "/communication/0/preferred")->GetBool());

    // NK1 -> Patient.contact (relationship: contact role 0131 and relationship 0063).
    CPPUNIT_ASSERT_EQUAL(size_t(2), count(p, "/contact"));
    CPPUNIT_ASSERT_EQUAL(std::string("EC"), str(p, "/contact/0/relationship/0/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("http://terminology.hl7.org/CodeSystem/v2-0131"),
                         str(p, "/contact/0/relationship/0/coding/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("SPO"), str(p, "/contact/0/relationship/1/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("Erik"), str(p, "/contact/0/name/given/0"));
    CPPUNIT_ASSERT_EQUAL(std::string("+1 (845) 5550143"), str(p, "/contact/0/telecom/0/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("12 Harbour Rd"), str(p, "/contact/0/address/line/0"));
    CPPUNIT_ASSERT_EQUAL(std::string("MTH"), str(p, "/contact/1/relationship/0/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("mobile"), str(p, "/contact/1/telecom/0/use"));  // XTN-3 CP
    CPPUNIT_ASSERT_EQUAL(std::string("+46 (8) 55501234"), str(p, "/contact/1/telecom/0/value"));
  }

  void testA01EncounterClassLocationAndDoctors() {
    Mapped m = mapFile("adt_a01_v251.hl7");
    const Value& entry = m.oneEntry("Encounter");
    CPPUNIT_ASSERT_EQUAL(std::string("PUT"), str(entry, "/request/method"));
    CPPUNIT_ASSERT_EQUAL("Encounter?identifier=" + kNorthvaleOid + "|VN20250314001", str(entry, "/request/url"));
    const Value& e = entry["resource"];
    CPPUNIT_ASSERT_EQUAL(std::string("VN"), str(e, "/identifier/0/type/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("in-progress"), str(e, "/status"));
    CPPUNIT_ASSERT_EQUAL(std::string("http://terminology.hl7.org/CodeSystem/v3-ActCode"), str(e, "/class/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("IMP"), str(e, "/class/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("E"), str(e, "/type/0/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("MED"), str(e, "/serviceType/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-14T08:15:00+01:00"), str(e, "/period/start"));
    CPPUNIT_ASSERT(at(e, "/period/end") == nullptr);
    CPPUNIT_ASSERT_EQUAL(std::string("Patient"), str(m.resolve(e["subject"]), "/resourceType"));

    // PV1-7 attending, PV1-8 referring, PV1-17 admitting: one Practitioner per NPI.
    CPPUNIT_ASSERT_EQUAL(size_t(3), count(e, "/participant"));
    CPPUNIT_ASSERT_EQUAL(std::string("ATND"), str(e, "/participant/0/type/0/coding/0/code"));
    const Value& attending = m.resolve(e["participant"][0]["individual"]);
    CPPUNIT_ASSERT_EQUAL(std::string("4455667788"), str(attending, "/identifier/0/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("http://hl7.org/fhir/sid/us-npi"), str(attending, "/identifier/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("Abernathy"), str(attending, "/name/0/family"));
    CPPUNIT_ASSERT_EQUAL(std::string("REF"), str(e, "/participant/1/type/0/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("ADM"), str(e, "/participant/2/type/0/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(str(e, "/participant/0/individual/reference"), str(e, "/participant/2/individual/reference"));
    CPPUNIT_ASSERT_EQUAL(size_t(3), m.resources("Practitioner").size());  // GP, attending, referring
    for (const Value* pe : m.entriesOf("Practitioner")) {
      CPPUNIT_ASSERT_EQUAL(std::string("POST"), str(*pe, "/request/method"));
    }

    const Value& loc = m.resolve(e["location"][0]["location"]);
    CPPUNIT_ASSERT_EQUAL(std::string("3W^312^B"), str(loc, "/identifier/0/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("urn:hearth:location:NORTHVALE"), str(loc, "/identifier/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("3W 312 B"), str(loc, "/name"));
    CPPUNIT_ASSERT_EQUAL(std::string("bd"), str(loc, "/physicalType/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("active"), str(e, "/location/0/status"));
    CPPUNIT_ASSERT_EQUAL(std::string("identifier=urn:hearth:location:NORTHVALE|3W%5E312%5EB"),
                         str(m.oneEntry("Location"), "/request/ifNoneExist"));
  }

  void testA01AllergiesAsAllergyIntolerance() {
    Mapped m = mapFile("adt_a01_v251.hl7");
    auto allergies = m.entriesOf("AllergyIntolerance");
    CPPUNIT_ASSERT_EQUAL(size_t(2), allergies.size());
    const Value& penicillin = (*allergies[0])["resource"];
    CPPUNIT_ASSERT_EQUAL(std::string("PUT"), str(*allergies[0], "/request/method"));
    CPPUNIT_ASSERT_EQUAL(std::string("http://www.nlm.nih.gov/research/umls/rxnorm"), str(penicillin, "/code/coding/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("70618"), str(penicillin, "/code/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("Penicillin"), str(penicillin, "/code/coding/0/display"));
    CPPUNIT_ASSERT_EQUAL(std::string("medication"), str(penicillin, "/category/0"));
    CPPUNIT_ASSERT_EQUAL(std::string("high"), str(penicillin, "/criticality"));
    CPPUNIT_ASSERT_EQUAL(std::string("active"), str(penicillin, "/clinicalStatus/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("Anaphylaxis"), str(penicillin, "/reaction/0/manifestation/0/text"));
    CPPUNIT_ASSERT_EQUAL(std::string("severe"), str(penicillin, "/reaction/0/severity"));
    CPPUNIT_ASSERT_EQUAL(std::string("2001-06-11"), str(penicillin, "/onsetDateTime"));
    CPPUNIT_ASSERT_EQUAL(std::string("Patient"), str(m.resolve(penicillin["patient"]), "/resourceType"));
    const Value& peanut = (*allergies[1])["resource"];
    CPPUNIT_ASSERT_EQUAL(std::string("http://snomed.info/sct"), str(peanut, "/code/coding/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("food"), str(peanut, "/category/0"));
    CPPUNIT_ASSERT_EQUAL(std::string("moderate"), str(peanut, "/reaction/0/severity"));
    // Identified by patient + allergen: another patient's penicillin allergy is another resource.
    CPPUNIT_ASSERT(str(penicillin, "/identifier/0/value").find("MRN100234") != std::string::npos);
    CPPUNIT_ASSERT(str(penicillin, "/identifier/0/value") != str(peanut, "/identifier/0/value"));
  }

  void testA01InsuranceAsCoverageWithInsurer() {
    Mapped m = mapFile("adt_a01_v251.hl7");
    auto coverages = m.entriesOf("Coverage");
    CPPUNIT_ASSERT_EQUAL(size_t(2), coverages.size());
    const Value& gold = (*coverages[0])["resource"];
    CPPUNIT_ASSERT_EQUAL(std::string("PUT"), str(*coverages[0], "/request/method"));
    CPPUNIT_ASSERT_EQUAL(std::string("Coverage?identifier=urn:hearth:policy:88120|POL99812345"),
                         str(*coverages[0], "/request/url"));
    CPPUNIT_ASSERT_EQUAL(std::string("POL99812345"), str(gold, "/subscriberId"));
    CPPUNIT_ASSERT_EQUAL(std::string("active"), str(gold, "/status"));
    CPPUNIT_ASSERT_EQUAL(std::string("self"), str(gold, "/relationship/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(str(gold, "/beneficiary/reference"), str(gold, "/subscriber/reference"));
    CPPUNIT_ASSERT_EQUAL(std::string("Patient"), str(m.resolve(gold["beneficiary"]), "/resourceType"));
    CPPUNIT_ASSERT_EQUAL(std::string("2024-01-01"), str(gold, "/period/start"));
    CPPUNIT_ASSERT_EQUAL(std::string("2025-12-31"), str(gold, "/period/end"));
    CPPUNIT_ASSERT_EQUAL(std::string("plan"), str(gold, "/class/0/type/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("PPO-GOLD"), str(gold, "/class/0/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("Gold PPO"), str(gold, "/class/0/name"));
    CPPUNIT_ASSERT_EQUAL(std::string("group"), str(gold, "/class/1/type/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("GRP7781"), str(gold, "/class/1/value"));
    const Value& insurer = m.resolve(gold["payor"][0]);
    CPPUNIT_ASSERT_EQUAL(std::string("Organization"), str(insurer, "/resourceType"));
    CPPUNIT_ASSERT_EQUAL(std::string("Evergreen Mutual Health"), str(insurer, "/name"));
    CPPUNIT_ASSERT_EQUAL(std::string("88120"), str(insurer, "/identifier/0/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("urn:hearth:authority:EVERGREEN"), str(insurer, "/identifier/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("ins"), str(insurer, "/type/0/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("Hartford"), str(insurer, "/address/0/city"));
    const Value& medicaid = (*coverages[1])["resource"];
    CPPUNIT_ASSERT_EQUAL(std::string("NYM4410027"), str(medicaid, "/subscriberId"));
    CPPUNIT_ASSERT_EQUAL(std::string("New York State Medicaid"), str(m.resolve(medicaid["payor"][0]), "/name"));
    for (const Value* oe : m.entriesOf("Organization")) {
      CPPUNIT_ASSERT_EQUAL(std::string("POST"), str(*oe, "/request/method"));
    }
  }

  void testA04Version23LegacyFields() {
    Mapped m = mapFile("adt_a04_v23.hl7");
    const Value& p = m.one("Patient");
    CPPUNIT_ASSERT_EQUAL(std::string("urn:hearth:authority:RIVERBEND"), str(p, "/identifier/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("4433221"), str(p, "/identifier/0/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("O'Connell"), str(p, "/name/0/family"));
    CPPUNIT_ASSERT_EQUAL(std::string("JR"), str(p, "/name/0/suffix/0"));
    CPPUNIT_ASSERT_EQUAL(std::string("male"), str(p, "/gender"));
    CPPUNIT_ASSERT_EQUAL(std::string("2015-08-17"), str(p, "/birthDate"));
    CPPUNIT_ASSERT_EQUAL(std::string("http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName"),
                         str(p, "/extension/0/url"));
    CPPUNIT_ASSERT_EQUAL(std::string("Byrne"), str(p, "/extension/0/valueString"));
    // v2.3 XTN: the number is in component 1.
    CPPUNIT_ASSERT_EQUAL(std::string("(503) 555-0187 ext. 12"), str(p, "/telecom/0/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("home"), str(p, "/telecom/0/use"));
    CPPUNIT_ASSERT_EQUAL(std::string("work"), str(p, "/telecom/1/use"));
    CPPUNIT_ASSERT_EQUAL(std::string("S"), str(p, "/maritalStatus/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("en"), str(p, "/communication/0/language/coding/0/code"));
    const Value& e = m.one("Encounter");
    CPPUNIT_ASSERT_EQUAL(std::string("AMB"), str(e, "/class/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("urn:hearth:visit:RIVERBEND"), str(e, "/identifier/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("2024-11-05T09:15:00+00:00"), str(e, "/period/start"));  // no zone: UTC default
    const Value& allergy = m.one("AllergyIntolerance");
    CPPUNIT_ASSERT_EQUAL(std::string("Sulfa drugs"), str(allergy, "/code/text"));
    CPPUNIT_ASSERT_EQUAL(std::string("low"), str(allergy, "/criticality"));  // MI
  }

  void testA08EscapedDelimitersInNamesAndAddresses() {
    Mapped m = mapFile("adt_a08_v24.hl7");
    const Value& p = m.one("Patient");
    CPPUNIT_ASSERT_EQUAL(std::string("Tom\xC3\xA1s&Luis"), str(p, "/name/0/given/0"));  // escaped as \T\ on the wire
    CPPUNIT_ASSERT_EQUAL(std::string("221B Elm St|Unit 3"), str(p, "/address/0/line/0"));  // escaped as \F\ on the wire
    CPPUNIT_ASSERT_EQUAL(std::string("1988-02-29"), str(p, "/birthDate"));
    // PID-13 and PID-16 are "" (explicit null): nothing is written for them.
    CPPUNIT_ASSERT(at(p, "/telecom") == nullptr);
    CPPUNIT_ASSERT(at(p, "/maritalStatus") == nullptr);
  }

  void testA08Latin1TextArrivesAsUnicode() {
    Mapped m = mapFile("adt_a08_latin1_v24.hl7");
    const Value& p = m.one("Patient");
    CPPUNIT_ASSERT_EQUAL(std::string("Lef\xC3\xA8vre"), str(p, "/name/0/family"));
    CPPUNIT_ASSERT_EQUAL(std::string("3 rue de l'\xC3\x89glise"), str(p, "/address/0/line/0"));
    // No visit number: no Encounter, and a warning says so.
    CPPUNIT_ASSERT(m.entriesOf("Encounter").empty());
    CPPUNIT_ASSERT_EQUAL(size_t(1), m.result.warnings.size());
    CPPUNIT_ASSERT_EQUAL(std::string("PV1"), m.result.warnings[0].segmentId);
    CPPUNIT_ASSERT_EQUAL(19, m.result.warnings[0].field);
  }

  void testA28AndA31UpdateThePersonWithoutAVisit() {
    Mapped a28 = mapFile("adt_a28_v25.hl7");
    CPPUNIT_ASSERT(a28.entriesOf("Encounter").empty());
    const Value& p = a28.one("Patient");
    CPPUNIT_ASSERT_EQUAL(std::string("LS-0045112"), str(p, "/identifier/0/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("DL"), str(p, "/identifier/1/type/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("Z9981234"), str(p, "/identifier/1/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("Ms"), str(p, "/name/0/prefix/0"));
    CPPUNIT_ASSERT_EQUAL(std::string("Chukwuemeka"), str(p, "/contact/0/name/given/0"));
    CPPUNIT_ASSERT_EQUAL(std::string("2670"), str(a28.one("AllergyIntolerance"), "/code/coding/0/code"));

    Mapped a31 = mapFile("adt_a31_v26.hl7");
    CPPUNIT_ASSERT(a31.entriesOf("Encounter").empty());
    const Value& q = a31.one("Patient");
    // The same patient as the A28 (same conditional URL), with the new name and address.
    CPPUNIT_ASSERT_EQUAL(str(a28.oneEntry("Patient"), "/request/url"), str(a31.oneEntry("Patient"), "/request/url"));
    CPPUNIT_ASSERT_EQUAL(std::string("maiden"), str(q, "/name/1/use"));
    CPPUNIT_ASSERT_EQUAL(std::string("Okafor"), str(q, "/name/1/family"));
    CPPUNIT_ASSERT_EQUAL(std::string("Kalamazoo"), str(q, "/address/0/city"));
    CPPUNIT_ASSERT_EQUAL(std::string("M"), str(q, "/maritalStatus/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("mobile"), str(q, "/telecom/0/use"));
  }

  void testA03FinishesTheEncounter() {
    Mapped m = mapFile("adt_a03_v251.hl7");
    const Value& e = m.one("Encounter");
    CPPUNIT_ASSERT_EQUAL(std::string("finished"), str(e, "/status"));
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-14T08:15:00+01:00"), str(e, "/period/start"));
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-19T15:55:00+01:00"), str(e, "/period/end"));
    CPPUNIT_ASSERT_EQUAL(std::string("01"), str(e, "/hospitalization/dischargeDisposition/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("http://terminology.hl7.org/CodeSystem/v2-0112"),
                         str(e, "/hospitalization/dischargeDisposition/coding/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("completed"), str(e, "/location/0/status"));
    // The discharge updates the encounter the A01 created: the same conditional URL.
    Mapped admit = mapFile("adt_a01_v251.hl7");
    CPPUNIT_ASSERT_EQUAL(str(admit.oneEntry("Encounter"), "/request/url"), str(m.oneEntry("Encounter"), "/request/url"));
    CPPUNIT_ASSERT_EQUAL(str(admit.oneEntry("Patient"), "/request/url"), str(m.oneEntry("Patient"), "/request/url"));
  }

  void testA03WithoutDischargeTimeEndsAtTheEvent() {
    Mapped m = mapFile("adt_a03_noend_v251.hl7");
    const Value& e = m.one("Encounter");
    CPPUNIT_ASSERT_EQUAL(std::string("finished"), str(e, "/status"));
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-19T16:00:00+01:00"), str(e, "/period/end"));  // EVN-6
  }

  void testA40MergeLinksBothPatients() {
    Mapped m = mapFile("adt_a40_v25.hl7");
    auto patients = m.entriesOf("Patient");
    CPPUNIT_ASSERT_EQUAL(size_t(4), patients.size());  // two PID/MRG groups
    const Value& old = m.byIdentifier("Patient", "LS-0099871");
    const Value& survivor = m.byIdentifier("Patient", "LS-0045112");
    CPPUNIT_ASSERT(!at(old, "/active")->GetBool());
    CPPUNIT_ASSERT(at(survivor, "/active")->GetBool());
    CPPUNIT_ASSERT_EQUAL(std::string("replaced-by"), str(old, "/link/0/type"));
    CPPUNIT_ASSERT_EQUAL(std::string("replaces"), str(survivor, "/link/0/type"));
    CPPUNIT_ASSERT_EQUAL(std::string("LS-0045112"), str(m.resolve(old["link"][0]["other"]), "/identifier/0/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("LS-0099871"), str(m.resolve(survivor["link"][0]["other"]), "/identifier/0/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("Abara"), str(old, "/name/0/family"));  // MRG-7
    for (const Value* e : patients) {
      CPPUNIT_ASSERT_EQUAL(std::string("PUT"), str(*e, "/request/method"));
    }
    const Value& old2 = m.byIdentifier("Patient", "LS-0012777");
    CPPUNIT_ASSERT_EQUAL(std::string("LS-0012001"), str(m.resolve(old2["link"][0]["other"]), "/identifier/0/value"));
  }

  void testDeathAndMultipleBirth() {
    std::string msg = message("adt_a08_v24.hl7");
    msg = withField(msg, "PID", 1, 24, "Y");
    msg = withField(msg, "PID", 1, 25, "2");
    msg = withField(msg, "PID", 1, 29, "20250101101500-0500");
    msg = withField(msg, "PID", 1, 30, "Y");
    Mapped m = mapText(msg);
    CPPUNIT_ASSERT_MESSAGE(m.errorsText(), m.result.ok());
    const Value& p = m.one("Patient");
    CPPUNIT_ASSERT_EQUAL(std::string("2025-01-01T10:15:00-05:00"), str(p, "/deceasedDateTime"));
    CPPUNIT_ASSERT(at(p, "/deceasedBoolean") == nullptr);
    CPPUNIT_ASSERT_EQUAL(2.0, num(p, "/multipleBirthInteger"));
  }

  void testAuthoritySystemsAndDefaults() {
    // Without the site map a namespace-only authority gets the configurable prefix.
    hearth::adapters::MappingOptions bare;
    Mapped m = mapFile("oru_r01_lab_v251.hl7", bare);
    CPPUNIT_ASSERT_EQUAL(std::string("urn:hearth:authority:NORTHVALE"), str(m.one("Patient"), "/identifier/0/system"));
    // With it, the lab's patient is the A01's patient.
    Mapped lab = mapFile("oru_r01_lab_v251.hl7");
    Mapped admit = mapFile("adt_a01_v251.hl7");
    CPPUNIT_ASSERT_EQUAL(str(admit.one("Patient"), "/identifier/0/system"), str(lab.one("Patient"), "/identifier/0/system"));
    // PID-3 without an authority: the MRN default system (configurable, else per sending facility).
    std::string noAuthority = withField(message("adt_a04_v23.hl7"), "PID", 1, 3, "4433221^^^^MR");
    Mapped d = mapText(noAuthority, bare);
    CPPUNIT_ASSERT_EQUAL(std::string("urn:hearth:mrn:RIVERBEND"), str(d.one("Patient"), "/identifier/0/system"));
    hearth::adapters::MappingOptions configured;
    configured.defaultMrnSystem = "https://riverbend.example.org/mrn";
    configured.source = "https://riverbend.example.org/epic-adt";
    Mapped e = mapText(noAuthority, configured);
    CPPUNIT_ASSERT_EQUAL(std::string("https://riverbend.example.org/mrn"), str(e.one("Patient"), "/identifier/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("https://riverbend.example.org/epic-adt"), str(e.one("Patient"), "/meta/source"));
    // A universal id of type UUID / URI.
    std::string uuidAuthority =
        withField(message("adt_a04_v23.hl7"), "PID", 1, 3, "4433221^^^&A1B2C3D4-0000-4000-8000-00000000000F&UUID^MR");
    CPPUNIT_ASSERT_EQUAL(std::string("urn:uuid:a1b2c3d4-0000-4000-8000-00000000000f"),
                         str(mapText(uuidAuthority, bare).one("Patient"), "/identifier/0/system"));
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(AdtMappingTest);
