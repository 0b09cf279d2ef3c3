// ORU^R01 -> DiagnosticReport + Observations: what a lab integrator checks (values with units,
// interpretation, reference ranges, statuses, identifiers that make a resend idempotent).
#include "adapters_test_support.h"

using namespace adaptertest;

class OruMappingTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(OruMappingTest);
  CPPUNIT_TEST(testReportHeader);
  CPPUNIT_TEST(testNumericResultWithUnitsRangeAndFlag);
  CPPUNIT_TEST(testStructuredNumericComparatorRatioAndRange);
  CPPUNIT_TEST(testCodedStringAndDateValues);
  CPPUNIT_TEST(testObservationIdentityIsReportPlusSetId);
  CPPUNIT_TEST(testRepeatedSetIdsFallBackToPosition);
  CPPUNIT_TEST(testReportWithoutFillerUsesPlacer);
  CPPUNIT_TEST(testFormattedTextAndEscapes);
  CPPUNIT_TEST(testStatusFromResultsWhenObr25IsEmpty);
  CPPUNIT_TEST(testCustomDelimitersFlowIntoText);
  CPPUNIT_TEST(testResultStatusesMapTable0085);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testReportHeader() {
    Mapped m = mapFile("oru_r01_lab_v251.hl7");
    const Value& entry = *m.entriesOf("DiagnosticReport").at(0);
    CPPUNIT_ASSERT_EQUAL(std::string("PUT"), str(entry, "/request/method"));
    const Value& r = entry["resource"];
    CPPUNIT_ASSERT_EQUAL(std::string("final"), str(r, "/status"));
    CPPUNIT_ASSERT_EQUAL(std::string("http://loinc.org"), str(r, "/code/coding/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("24323-8"), str(r, "/code/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-14T09:00:00+01:00"), str(r, "/effectiveDateTime"));
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-14T12:15:00+01:00"), str(r, "/issued"));
    // OBR-2 placer and OBR-3 filler, each typed.
    CPPUNIT_ASSERT_EQUAL(std::string("PLAC"), str(r, "/identifier/0/type/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("ORD-55102"), str(r, "/identifier/0/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("urn:oid:2.16.840.1.113883.3.9001"), str(r, "/identifier/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("FILL"), str(r, "/identifier/1/type/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("LAB-55102"), str(r, "/identifier/1/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("urn:hearth:authority:CENTRAL_LAB"), str(r, "/identifier/1/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("DiagnosticReport?identifier=urn:hearth:authority:CENTRAL_LAB|LAB-55102"),
                         str(entry, "/request/url"));
    CPPUNIT_ASSERT_EQUAL(size_t(7), count(r, "/result"));
    // The subject is the patient of PID, created only if the server does not know the MRN.
    const Value& patientEntry = m.oneEntry("Patient");
    CPPUNIT_ASSERT_EQUAL(std::string("POST"), str(patientEntry, "/request/method"));
    CPPUNIT_ASSERT_EQUAL(std::string("identifier=urn:oid:2.16.840.1.113883.3.9001|MRN100234"),
                         str(patientEntry, "/request/ifNoneExist"));
    CPPUNIT_ASSERT_EQUAL(str(patientEntry, "/fullUrl"), str(r, "/subject/reference"));
    CPPUNIT_ASSERT_EQUAL(std::string("VN20250314001"), str(m.resolve(r["encounter"]), "/identifier/0/value"));
    // basedOn: the order, created only if unknown.
    const Value& order = m.resolve(r["basedOn"][0]);
    CPPUNIT_ASSERT_EQUAL(std::string("ServiceRequest"), str(order, "/resourceType"));
    CPPUNIT_ASSERT_EQUAL(std::string("ORD-55102"), str(order, "/identifier/0/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("completed"), str(order, "/status"));
    CPPUNIT_ASSERT_EQUAL(std::string("POST"), str(*m.entriesOf("ServiceRequest").at(0), "/request/method"));
    // OBR-24 diagnostic service section: report category, and laboratory observations.
    Mapped chem = mapText(withField(message("oru_r01_lab_v251.hl7"), "OBR", 1, 24, "CH"));
    const Value& chemReport = chem.resources("DiagnosticReport").at(0)[0];
    CPPUNIT_ASSERT_EQUAL(std::string("http://terminology.hl7.org/CodeSystem/v2-0074"), str(chemReport, "/category/0/coding/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("CH"), str(chemReport, "/category/0/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("laboratory"), str(chem.resolve(chemReport["result"][0]), "/category/0/coding/0/code"));
  }

  void testNumericResultWithUnitsRangeAndFlag() {
    Mapped m = mapFile("oru_r01_lab_v251.hl7");
    const Value& report = m.resources("DiagnosticReport").at(0)[0];
    const Value& glucose = m.resolve(report["result"][0]);
    CPPUNIT_ASSERT_EQUAL(std::string("2345-7"), str(glucose, "/code/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("final"), str(glucose, "/status"));
    CPPUNIT_ASSERT_EQUAL(105.0, num(glucose, "/valueQuantity/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("mg/dL"), str(glucose, "/valueQuantity/unit"));
    CPPUNIT_ASSERT_EQUAL(std::string("http://unitsofmeasure.org"), str(glucose, "/valueQuantity/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("mg/dL"), str(glucose, "/valueQuantity/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"),
                         str(glucose, "/interpretation/0/coding/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("H"), str(glucose, "/interpretation/0/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(70.0, num(glucose, "/referenceRange/0/low/value"));
    CPPUNIT_ASSERT_EQUAL(99.0, num(glucose, "/referenceRange/0/high/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("mg/dL"), str(glucose, "/referenceRange/0/high/unit"));
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-14T09:00:00+01:00"), str(glucose, "/effectiveDateTime"));  // OBX-14
    // Decimals keep their written precision: "+0105.0" -> 105.0, ".92" -> 0.92, "1.00" stays.
    CPPUNIT_ASSERT(m.result.bundle.find("\"valueQuantity\":{\"value\":105.0,") != std::string::npos);
    CPPUNIT_ASSERT(m.result.bundle.find("\"valueQuantity\":{\"value\":0.92,") != std::string::npos);
    CPPUNIT_ASSERT(m.result.bundle.find("\"high\":{\"value\":1.00,") != std::string::npos);
    const Value& creatinine = m.resolve(report["result"][1]);
    CPPUNIT_ASSERT_EQUAL(std::string("N"), str(creatinine, "/interpretation/0/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("Reference range adjusted for age and sex."), str(creatinine, "/note/0/text"));
  }

  void testStructuredNumericComparatorRatioAndRange() {
    Mapped m = mapFile("oru_r01_lab_v251.hl7");
    const Value& egfr = m.byIdentifier("Observation", "LAB-55102/3");
    CPPUNIT_ASSERT_EQUAL(std::string(">"), str(egfr, "/valueQuantity/comparator"));
    CPPUNIT_ASSERT_EQUAL(60.0, num(egfr, "/valueQuantity/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("mL/min/{1.73_m2}"), str(egfr, "/valueQuantity/code"));
    const Value& ana = m.byIdentifier("Observation", "LAB-55102/7");
    CPPUNIT_ASSERT_EQUAL(1.0, num(ana, "/valueRatio/numerator/value"));
    CPPUNIT_ASSERT_EQUAL(160.0, num(ana, "/valueRatio/denominator/value"));
    // The second report has no filler number: its observations hang off the placer number.
    const Value& range = m.byIdentifier("Observation", "ORD-55103/3");
    CPPUNIT_ASSERT_EQUAL(2.0, num(range, "/valueRange/low/value"));
    CPPUNIT_ASSERT_EQUAL(5.0, num(range, "/valueRange/high/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("d"), str(range, "/valueRange/high/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("Result verified by second technologist."), str(range, "/note/0/text"));
  }

  void testCodedStringAndDateValues() {
    Mapped m = mapFile("oru_r01_lab_v251.hl7");
    CPPUNIT_ASSERT_EQUAL(std::string("Straw"), str(m.byIdentifier("Observation", "LAB-55102/4"), "/valueString"));
    const Value& nitrite = m.byIdentifier("Observation", "LAB-55102/5");
    CPPUNIT_ASSERT_EQUAL(std::string("http://snomed.info/sct"), str(nitrite, "/valueCodeableConcept/coding/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("260385009"), str(nitrite, "/valueCodeableConcept/coding/0/code"));
    const Value& culture = m.byIdentifier("Observation", "LAB-55102/6");
    CPPUNIT_ASSERT_EQUAL(std::string("preliminary"), str(culture, "/status"));
    CPPUNIT_ASSERT_EQUAL(std::string("3092008"), str(culture, "/valueCodeableConcept/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("2024-09"), str(culture, "/valueCodeableConcept/coding/0/version"));
    CPPUNIT_ASSERT_EQUAL(std::string("STAU"), str(culture, "/valueCodeableConcept/coding/1/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("urn:hearth:codesystem:CENTRAL_LAB:L"),
                         str(culture, "/valueCodeableConcept/coding/1/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("S. aureus isolated"), str(culture, "/valueCodeableConcept/text"));
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-01"), str(m.byIdentifier("Observation", "ORD-55103/1"), "/valueDateTime"));
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-14T06:30:00-05:00"),
                         str(m.byIdentifier("Observation", "ORD-55103/2"), "/valueDateTime"));
  }

  void testObservationIdentityIsReportPlusSetId() {
    Mapped m = mapFile("oru_r01_lab_v251.hl7");
    for (const Value* e : m.entriesOf("Observation")) {
      const Value& o = (*e)["resource"];
      CPPUNIT_ASSERT_EQUAL(std::string("PUT"), str(*e, "/request/method"));
      CPPUNIT_ASSERT_EQUAL("Observation?identifier=" + str(o, "/identifier/0/system") + "|" +
                               str(o, "/identifier/0/value"),
                           str(*e, "/request/url"));
    }
    const Value& report = m.resources("DiagnosticReport").at(0)[0];
    for (rapidjson::SizeType i = 0; i < report["result"].Size(); ++i) {
      const Value& o = m.resolve(report["result"][i]);
      CPPUNIT_ASSERT_EQUAL("LAB-55102/" + std::to_string(i + 1), str(o, "/identifier/0/value"));
      CPPUNIT_ASSERT_EQUAL(std::string("urn:hearth:authority:CENTRAL_LAB"), str(o, "/identifier/0/system"));
    }
    // OBX-4 sub-ids are part of the identity.
    std::string msg = withField(message("oru_r01_lab_v251.hl7"), "OBX", 1, 4, "a");
    Mapped sub = mapText(msg);
    CPPUNIT_ASSERT_MESSAGE(sub.errorsText(), sub.result.ok());
    CPPUNIT_ASSERT_EQUAL(std::string("2345-7"), str(sub.byIdentifier("Observation", "LAB-55102/1/a"), "/code/coding/0/code"));
  }

  void testRepeatedSetIdsFallBackToPosition() {
    Mapped m = mapFile("oru_r01_dupsetid_v251.hl7");
    CPPUNIT_ASSERT_EQUAL(size_t(3), m.entriesOf("Observation").size());
    CPPUNIT_ASSERT_EQUAL(std::string("6690-2"), str(m.byIdentifier("Observation", "LAB-55110/1"), "/code/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("789-8"), str(m.byIdentifier("Observation", "LAB-55110/2"), "/code/coding/0/code"));
    const Value& hb = m.byIdentifier("Observation", "LAB-55110/3");
    CPPUNIT_ASSERT_EQUAL(std::string("L"), str(hb, "/interpretation/0/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(12.0, num(hb, "/referenceRange/0/low/value"));
    CPPUNIT_ASSERT_EQUAL(size_t(1), m.result.warnings.size());
    CPPUNIT_ASSERT_EQUAL(std::string("OBX"), m.result.warnings[0].segmentId);
    CPPUNIT_ASSERT_EQUAL(1, m.result.warnings[0].field);
  }

  void testReportWithoutFillerUsesPlacer() {
    Mapped m = mapFile("oru_r01_v28.hl7");
    const Value& entry = m.oneEntry("DiagnosticReport");
    CPPUNIT_ASSERT_EQUAL(std::string("DiagnosticReport?identifier=urn:oid:2.16.840.1.113883.3.9001|POC-1"),
                         str(entry, "/request/url"));
    CPPUNIT_ASSERT_EQUAL(std::string("1985"), str(m.one("Patient"), "/birthDate"));
    const Value& o = m.one("Observation");
    CPPUNIT_ASSERT_EQUAL(112.0, num(o, "/valueQuantity/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("2025-09-01T10:05:00-03:30"), str(o, "/effectiveDateTime"));
    CPPUNIT_ASSERT_EQUAL(std::string("Point-of-care meter #4."), str(o, "/note/0/text"));
  }

  void testFormattedTextAndEscapes() {
    Mapped m = mapFile("oru_r01_text_v23.hl7");
    const Value& report = m.one("DiagnosticReport");
    CPPUNIT_ASSERT_EQUAL(std::string("RAD"), str(report, "/category/0/coding/0/code"));
    const Value& impression = m.resolve(report["result"][0]);
    CPPUNIT_ASSERT_EQUAL(std::string("imaging"), str(impression, "/category/0/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("No acute cardiopulmonary process.\nHeart size normal."),
                         str(impression, "/valueString"));
    const Value& findings = m.resolve(report["result"][1]);
    // \H\..\N\ dropped, \.br\ and \.sp\ -> newline, \T\ \F\ \S\ \R\ -> & | ^ ~, \X0D0A\ -> newline.
    CPPUNIT_ASSERT_EQUAL(std::string("FINDINGS:\nLungs clear. No effusion & no pneumothorax.\n"
                                     "Ratio 3|4; Dr^Tech~note \nend"),
                         str(findings, "/valueString"));
    CPPUNIT_ASSERT_EQUAL(std::string("Compared with prior study of 2007\\11\\02."), str(findings, "/note/0/text"));
    const Value& addendum = m.resolve(report["result"][2]);
    CPPUNIT_ASSERT_EQUAL(std::string("Unterminated escape \\ stays"), str(addendum, "/valueString"));
    CPPUNIT_ASSERT_EQUAL(std::string("corrected"), str(addendum, "/status"));
    // v2.3 times without a zone (none in MSH-7 either) are read as UTC by default.
    CPPUNIT_ASSERT_EQUAL(std::string("2009-03-06T14:00:00+00:00"), str(report, "/effectiveDateTime"));
    hearth::adapters::MappingOptions eastern = siteOptions();
    eastern.defaultUtcOffsetMinutes = -300;
    Mapped local = mapFile("oru_r01_text_v23.hl7", eastern);
    CPPUNIT_ASSERT_EQUAL(std::string("2009-03-06T14:00:00-05:00"), str(local.one("DiagnosticReport"), "/effectiveDateTime"));
  }

  void testStatusFromResultsWhenObr25IsEmpty() {
    // oru_r01_v28 has no OBR-25: its only OBX is final.
    CPPUNIT_ASSERT_EQUAL(std::string("final"), str(mapFile("oru_r01_v28.hl7").one("DiagnosticReport"), "/status"));
    std::string msg = withField(message("oru_r01_v28.hl7"), "OBX", 1, 11, "P");
    CPPUNIT_ASSERT_EQUAL(std::string("partial"), str(mapText(msg).one("DiagnosticReport"), "/status"));
    msg = withField(message("oru_r01_v28.hl7"), "OBR", 1, 25, "C");
    CPPUNIT_ASSERT_EQUAL(std::string("corrected"), str(mapText(msg).one("DiagnosticReport"), "/status"));
    msg = withField(message("oru_r01_v28.hl7"), "OBR", 1, 25, "P");
    CPPUNIT_ASSERT_EQUAL(std::string("preliminary"), str(mapText(msg).one("DiagnosticReport"), "/status"));
    msg = withField(message("oru_r01_v28.hl7"), "OBR", 1, 25, "X");
    CPPUNIT_ASSERT_EQUAL(std::string("cancelled"), str(mapText(msg).one("DiagnosticReport"), "/status"));
  }

  void testCustomDelimitersFlowIntoText() {
    // MSH#$%*& : field #, component $, repetition %, escape *, sub-component &.
    Mapped m = mapFile("custom_delims_b_v24.hl7");
    const Value& glucose = m.byIdentifier("Observation", "WL-FIL-1/1");
    CPPUNIT_ASSERT_EQUAL(98.0, num(glucose, "/valueQuantity/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("mg/dL"), str(glucose, "/valueQuantity/unit"));
    CPPUNIT_ASSERT(at(glucose, "/valueQuantity/system") == nullptr);  // OBX-6 names no unit system
    const Value& comment = m.byIdentifier("Observation", "WL-FIL-1/2");
    CPPUNIT_ASSERT_EQUAL(std::string("Hash # dollar $ percent % star * amp & | ^ ~ \\ plain"), str(comment, "/valueString"));
    CPPUNIT_ASSERT_EQUAL(std::string("unknown"), str(comment, "/status"));  // OBX-11 empty: warned
    CPPUNIT_ASSERT_EQUAL(11, m.result.warnings.at(0).field);
  }

  void testResultStatusesMapTable0085() {
    const std::pair<const char*, const char*> cases[] = {
        {"F", "final"},     {"C", "corrected"}, {"P", "preliminary"}, {"R", "preliminary"},
        {"X", "cancelled"}, {"W", "entered-in-error"}, {"D", "entered-in-error"}, {"I", "registered"},
        {"A", "amended"},   {"U", "final"},
    };
    for (const auto& [v2, fhir] : cases) {
      Mapped m = mapText(withField(message("oru_r01_v28.hl7"), "OBX", 1, 11, v2));
      CPPUNIT_ASSERT_EQUAL_MESSAGE(v2, std::string(fhir), str(m.one("Observation"), "/status"));
    }
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(OruMappingTest);
