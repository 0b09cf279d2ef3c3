// ORM^O01 / OML^O21 -> ServiceRequest, RDE^O11 -> MedicationRequest, SIU -> Appointment,
// DFT^P03 -> ChargeItem (+ Account, Invoice).
#include "adapters_test_support.h"

using namespace adaptertest;

class OrdersMappingTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(OrdersMappingTest);
  CPPUNIT_TEST(testOmlLabOrder);
  CPPUNIT_TEST(testOrmVersion23TwoOrders);
  CPPUNIT_TEST(testOrderControlAndStatus);
  CPPUNIT_TEST(testRdeMedicationOrder);
  CPPUNIT_TEST(testRdeVersion23TimingAndDoseRange);
  CPPUNIT_TEST(testSiuBookedAppointment);
  CPPUNIT_TEST(testSiuStatusPerEvent);
  CPPUNIT_TEST(testSiuEndFromDurationAcrossMidnight);
  CPPUNIT_TEST(testDftChargesWithExactAmounts);
  CPPUNIT_TEST(testDftClosedAccountGivesInvoice);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testOmlLabOrder() {
    Mapped m = mapFile("oml_o21_v251.hl7");
    const Value& entry = m.oneEntry("ServiceRequest");
    CPPUNIT_ASSERT_EQUAL(std::string("PUT"), str(entry, "/request/method"));
    CPPUNIT_ASSERT_EQUAL(std::string("ServiceRequest?identifier=urn:oid:2.16.840.1.113883.3.9001|ORD-55102"),
                         str(entry, "/request/url"));
    const Value& s = entry["resource"];
    CPPUNIT_ASSERT_EQUAL(std::string("PLAC"), str(s, "/identifier/0/type/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("active"), str(s, "/status"));  // ORC-5 SC
    CPPUNIT_ASSERT_EQUAL(std::string("order"), str(s, "/intent"));
    CPPUNIT_ASSERT_EQUAL(std::string("stat"), str(s, "/priority"));  // TQ1-9 S
    CPPUNIT_ASSERT_EQUAL(std::string("24323-8"), str(s, "/code/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-14T09:00:00+01:00"), str(s, "/occurrenceDateTime"));  // TQ1-7
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-14T08:45:00+01:00"), str(s, "/authoredOn"));          // ORC-9
    CPPUNIT_ASSERT_EQUAL(std::string("Abernathy"), str(m.resolve(s["requester"]), "/name/0/family"));
    CPPUNIT_ASSERT_EQUAL(std::string("E11.9"), str(s, "/reasonCode/0/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("Patient on metformin."), str(s, "/note/0/text"));
    CPPUNIT_ASSERT_EQUAL(std::string("VN20250314001"), str(m.resolve(s["encounter"]), "/identifier/0/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("POST"), str(m.oneEntry("Encounter"), "/request/method"));
    // The order the lab's ORU reports on is this one.
    Mapped result = mapFile("oru_r01_lab_v251.hl7");
    CPPUNIT_ASSERT_EQUAL("identifier=" + str(entry, "/request/url").substr(std::string("ServiceRequest?identifier=").size()),
                         str(*result.entriesOf("ServiceRequest").at(0), "/request/ifNoneExist"));
  }

  void testOrmVersion23TwoOrders() {
    Mapped m = mapFile("orm_o01_v23.hl7");
    auto orders = m.resources("ServiceRequest");
    CPPUNIT_ASSERT_EQUAL(size_t(2), orders.size());
    const Value& cbc = *orders[0];
    CPPUNIT_ASSERT_EQUAL(std::string("RB-ORD-9001"), str(cbc, "/identifier/0/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("urn:hearth:authority:CPOE"), str(cbc, "/identifier/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("routine"), str(cbc, "/priority"));  // ORC-7.6 R
    CPPUNIT_ASSERT_EQUAL(std::string("2024-11-05T10:30:00+00:00"), str(cbc, "/occurrenceDateTime"));  // ORC-7.4
    CPPUNIT_ASSERT_EQUAL(std::string("R50.9"), str(cbc, "/reasonCode/0/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("Draw from left arm."), str(cbc, "/note/0/text"));
    CPPUNIT_ASSERT_EQUAL(std::string("600-7"), str(*orders[1], "/code/coding/0/code"));
    CPPUNIT_ASSERT(at(*orders[1], "/priority") == nullptr);
    CPPUNIT_ASSERT_EQUAL(str(cbc, "/subject/reference"), str(*orders[1], "/subject/reference"));
  }

  void testOrderControlAndStatus() {
    Mapped cancel = mapFile("orm_o01_cancel_v25.hl7");
    CPPUNIT_ASSERT_EQUAL(std::string("revoked"), str(cancel.one("ServiceRequest"), "/status"));
    // The cancellation targets the order the O01 created.
    Mapped created = mapFile("orm_o01_v23.hl7");
    CPPUNIT_ASSERT_EQUAL(str(*created.entriesOf("ServiceRequest").at(1), "/request/url"),
                         str(cancel.oneEntry("ServiceRequest"), "/request/url"));
    const std::pair<const char*, const char*> byStatus[] = {{"CM", "completed"}, {"HD", "on-hold"}, {"IP", "active"},
                                                            {"DC", "revoked"}, {"ER", "entered-in-error"}};
    for (const auto& [orc5, fhir] : byStatus) {
      Mapped m = mapText(withField(message("orm_o01_cancel_v25.hl7"), "ORC", 1, 5, orc5));
      CPPUNIT_ASSERT_EQUAL_MESSAGE(orc5, std::string(fhir), str(m.one("ServiceRequest"), "/status"));
    }
    std::string noOrderStatus = withField(message("orm_o01_cancel_v25.hl7"), "ORC", 1, 5, "");
    CPPUNIT_ASSERT_EQUAL(std::string("revoked"), str(mapText(noOrderStatus).one("ServiceRequest"), "/status"));  // ORC-1 CA
    CPPUNIT_ASSERT_EQUAL(std::string("on-hold"),
                         str(mapText(withField(noOrderStatus, "ORC", 1, 1, "HD")).one("ServiceRequest"), "/status"));
    CPPUNIT_ASSERT_EQUAL(std::string("active"),
                         str(mapText(withField(noOrderStatus, "ORC", 1, 1, "NW")).one("ServiceRequest"), "/status"));
  }

  void testRdeMedicationOrder() {
    Mapped m = mapFile("rde_o11_v25.hl7");
    const Value& entry = m.oneEntry("MedicationRequest");
    CPPUNIT_ASSERT_EQUAL(std::string("MedicationRequest?identifier=urn:oid:2.16.840.1.113883.3.9001|RX-33001"),
                         str(entry, "/request/url"));
    const Value& r = entry["resource"];
    CPPUNIT_ASSERT_EQUAL(std::string("active"), str(r, "/status"));  // ORC-5 IP
    CPPUNIT_ASSERT_EQUAL(std::string("order"), str(r, "/intent"));
    CPPUNIT_ASSERT_EQUAL(std::string("http://www.nlm.nih.gov/research/umls/rxnorm"),
                         str(r, "/medicationCodeableConcept/coding/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("860975"), str(r, "/medicationCodeableConcept/coding/0/code"));
    const Value& dosage = r["dosageInstruction"][0];
    CPPUNIT_ASSERT_EQUAL(500.0, num(dosage, "/doseAndRate/0/doseQuantity/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("mg"), str(dosage, "/doseAndRate/0/doseQuantity/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("http://unitsofmeasure.org"), str(dosage, "/doseAndRate/0/doseQuantity/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("BID"), str(dosage, "/timing/code/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(2.0, num(dosage, "/timing/repeat/frequency"));
    CPPUNIT_ASSERT_EQUAL(1.0, num(dosage, "/timing/repeat/period"));
    CPPUNIT_ASSERT_EQUAL(std::string("d"), str(dosage, "/timing/repeat/periodUnit"));
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-14T12:00:00+01:00"), str(dosage, "/timing/repeat/boundsPeriod/start"));
    CPPUNIT_ASSERT_EQUAL(std::string("PO"), str(dosage, "/route/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("http://terminology.hl7.org/CodeSystem/v2-0162"), str(dosage, "/route/coding/0/system"));
    CPPUNIT_ASSERT_EQUAL(28.0, num(r, "/dispenseRequest/quantity/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("Tablet"), str(r, "/dispenseRequest/quantity/unit"));
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-14T10:30:00+01:00"), str(r, "/authoredOn"));
    CPPUNIT_ASSERT_EQUAL(std::string("Abernathy"), str(m.resolve(r["requester"]), "/name/0/family"));
    CPPUNIT_ASSERT_EQUAL(std::string("Take with meals"), str(r, "/note/0/text"));
  }

  void testRdeVersion23TimingAndDoseRange() {
    Mapped m = mapFile("rde_o11_v23.hl7");
    const Value& r = m.one("MedicationRequest");
    const Value& dosage = r["dosageInstruction"][0];
    CPPUNIT_ASSERT_EQUAL(5.0, num(dosage, "/doseAndRate/0/doseRange/low/value"));
    CPPUNIT_ASSERT_EQUAL(10.0, num(dosage, "/doseAndRate/0/doseRange/high/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("mL"), str(dosage, "/doseAndRate/0/doseRange/high/code"));
    CPPUNIT_ASSERT_EQUAL(6.0, num(dosage, "/timing/repeat/period"));  // RXE-1.2 Q6H
    CPPUNIT_ASSERT_EQUAL(std::string("h"), str(dosage, "/timing/repeat/periodUnit"));
    CPPUNIT_ASSERT_EQUAL(std::string("2024-11-08T14:00:00+00:00"), str(dosage, "/timing/repeat/boundsPeriod/end"));
    CPPUNIT_ASSERT_EQUAL(std::string("PRNF"), str(dosage, "/additionalInstruction/0/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("routine"), str(r, "/priority"));
    CPPUNIT_ASSERT_EQUAL(0.0, num(r, "/dispenseRequest/numberOfRepeatsAllowed"));
  }

  void testSiuBookedAppointment() {
    Mapped m = mapFile("siu_s12_v251.hl7");
    const Value& entry = m.oneEntry("Appointment");
    CPPUNIT_ASSERT_EQUAL(std::string("PUT"), str(entry, "/request/method"));
    CPPUNIT_ASSERT_EQUAL(std::string("Appointment?identifier=urn:hearth:authority:HEARTH|FILL7781"), str(entry, "/request/url"));
    const Value& a = entry["resource"];
    CPPUNIT_ASSERT_EQUAL(std::string("booked"), str(a, "/status"));
    CPPUNIT_ASSERT_EQUAL(std::string("APT7781"), str(a, "/identifier/0/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("PLAC"), str(a, "/identifier/0/type/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("FILL7781"), str(a, "/identifier/1/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("2025-05-20T09:00:00-07:00"), str(a, "/start"));
    CPPUNIT_ASSERT_EQUAL(std::string("2025-05-20T09:30:00-07:00"), str(a, "/end"));
    CPPUNIT_ASSERT_EQUAL(30.0, num(a, "/minutesDuration"));
    CPPUNIT_ASSERT_EQUAL(std::string("99214"), str(a, "/serviceType/0/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("FOLLOWUP"), str(a, "/reasonCode/0/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("NORMAL"), str(a, "/appointmentType/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("Patient requests an interpreter (Tagalog)."), str(a, "/comment"));
    CPPUNIT_ASSERT_EQUAL(size_t(3), count(a, "/participant"));
    CPPUNIT_ASSERT_EQUAL(std::string("HC-7781002"), str(m.resolve(a["participant"][0]["actor"]), "/identifier/0/value"));
    const Value& doctor = m.resolve(a["participant"][1]["actor"]);
    CPPUNIT_ASSERT_EQUAL(std::string("Practitioner"), str(doctor, "/resourceType"));
    CPPUNIT_ASSERT_EQUAL(std::string("Baptiste"), str(doctor, "/name/0/family"));
    CPPUNIT_ASSERT_EQUAL(std::string("ATT"), str(a, "/participant/1/type/0/coding/0/code"));
    const Value& room = m.resolve(a["participant"][2]["actor"]);
    CPPUNIT_ASSERT_EQUAL(std::string("CARDIO^2^204"), str(room, "/identifier/0/value"));
    for (rapidjson::SizeType i = 0; i < a["participant"].Size(); ++i) {
      CPPUNIT_ASSERT_EQUAL(std::string("accepted"), str(a["participant"][i], "/status"));
    }
    // AIG (equipment) is reported as not mapped.
    CPPUNIT_ASSERT_EQUAL(std::string("AIG"), m.result.warnings.at(0).segmentId);
  }

  void testSiuStatusPerEvent() {
    const std::pair<const char*, const char*> cases[] = {{"siu_s12_v251.hl7", "booked"},
                                                         {"siu_s13_v24.hl7", "booked"},
                                                         {"siu_s14_v25.hl7", "booked"},
                                                         {"siu_s15_v25.hl7", "cancelled"},
                                                         {"siu_s26_v251.hl7", "noshow"}};
    std::string url;
    for (const auto& [file, status] : cases) {
      Mapped m = mapFile(file);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(file, std::string(status), str(m.one("Appointment"), "/status"));
      // Every event of the appointment updates the same resource.
      if (url.empty()) url = str(m.oneEntry("Appointment"), "/request/url");
      CPPUNIT_ASSERT_EQUAL_MESSAGE(file, url, str(m.oneEntry("Appointment"), "/request/url"));
    }
    // S15: the cancellation reason is SCH-6.
    CPPUNIT_ASSERT_EQUAL(std::string("ROUTINE"), str(mapFile("siu_s15_v25.hl7").one("Appointment"), "/cancelationReason/coding/0/code"));
    // S14 carries the new state in SCH-25.
    std::string complete = withField(message("siu_s14_v25.hl7"), "SCH", 1, 25, "Complete");
    CPPUNIT_ASSERT_EQUAL(std::string("fulfilled"), str(mapText(complete).one("Appointment"), "/status"));
    // S13 (reschedule) moves the times.
    std::string moved = withField(message("siu_s13_v24.hl7"), "SCH", 1, 11, "^^30^20250527140000-0700^20250527143000-0700");
    Mapped r = mapText(moved);
    CPPUNIT_ASSERT_EQUAL(std::string("2025-05-27T14:00:00-07:00"), str(r.one("Appointment"), "/start"));
    CPPUNIT_ASSERT_EQUAL(std::string("2025-05-27T14:30:00-07:00"), str(r.one("Appointment"), "/end"));
  }

  void testSiuEndFromDurationAcrossMidnight() {
    Mapped m = mapFile("siu_s12_duration_v25.hl7");
    const Value& a = m.one("Appointment");
    CPPUNIT_ASSERT_EQUAL(std::string("2025-05-20T23:30:00-07:00"), str(a, "/start"));
    CPPUNIT_ASSERT_EQUAL(std::string("2025-05-21T00:15:00-07:00"), str(a, "/end"));
    CPPUNIT_ASSERT_EQUAL(45.0, num(a, "/minutesDuration"));
    CPPUNIT_ASSERT_EQUAL(std::string("Normal"), str(a, "/appointmentType/coding/0/display"));
  }

  void testDftChargesWithExactAmounts() {
    Mapped m = mapFile("dft_p03_v25.hl7");
    auto charges = m.entriesOf("ChargeItem");
    CPPUNIT_ASSERT_EQUAL(size_t(2), charges.size());
    CPPUNIT_ASSERT_EQUAL(std::string("ChargeItem?identifier=urn:hearth:transaction:NORTHVALE_HOSP|TX-88001"),
                         str(*charges[0], "/request/url"));
    const Value& cath = (*charges[0])["resource"];
    CPPUNIT_ASSERT_EQUAL(std::string("billable"), str(cath, "/status"));
    CPPUNIT_ASSERT_EQUAL(std::string("http://www.ama-assn.org/go/cpt"), str(cath, "/code/coding/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("93458"), str(cath, "/code/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-15T10:30:00+01:00"), str(cath, "/occurrenceDateTime"));
    CPPUNIT_ASSERT_EQUAL(std::string("USD"), str(cath, "/priceOverride/currency"));
    CPPUNIT_ASSERT_EQUAL(std::string("I20.9"), str(cath, "/reason/0/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("VN20250314001"), str(m.resolve(cath["context"]), "/identifier/0/value"));
    const Value& visits = (*charges[1])["resource"];
    CPPUNIT_ASSERT_EQUAL(3.0, num(visits, "/quantity/value"));
    // Amounts keep their decimal text exactly.
    CPPUNIT_ASSERT(m.result.bundle.find("\"priceOverride\":{\"value\":2450.00,\"currency\":\"USD\"}") != std::string::npos);
    CPPUNIT_ASSERT(m.result.bundle.find("\"priceOverride\":{\"value\":180.00,\"currency\":\"USD\"}") != std::string::npos);
    CPPUNIT_ASSERT(m.entriesOf("Invoice").empty());  // the account stays open
  }

  void testDftClosedAccountGivesInvoice() {
    Mapped m = mapFile("dft_p03_close_v25.hl7");
    auto charges = m.resources("ChargeItem");
    CPPUNIT_ASSERT_EQUAL(size_t(2), charges.size());  // FT1-6 PY (payment) is not a charge
    CPPUNIT_ASSERT_EQUAL(std::string("FT1"), m.result.warnings.at(0).segmentId);
    CPPUNIT_ASSERT_EQUAL(3, m.result.warnings.at(0).segmentSequence);
    CPPUNIT_ASSERT_EQUAL(6, m.result.warnings.at(0).field);
    const Value& account = m.one("Account");
    CPPUNIT_ASSERT_EQUAL(std::string("ACC55501"), str(account, "/identifier/0/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("POST"), str(m.oneEntry("Account"), "/request/method"));
    CPPUNIT_ASSERT_EQUAL(str(m.oneEntry("Account"), "/fullUrl"), str(*charges[0], "/account/0/reference"));
    // FT1-4 as a range; FT1-12 unit price x FT1-10 quantity = 3 x 60.05.
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-18T23:59:00+01:00"), str(*charges[1], "/occurrencePeriod/end"));
    CPPUNIT_ASSERT(m.result.bundle.find("\"priceOverride\":{\"value\":180.15,\"currency\":\"USD\"}") != std::string::npos);
    CPPUNIT_ASSERT_EQUAL(std::string("Abernathy"), str(m.resolve((*charges[0])["performer"][0]["actor"]), "/name/0/family"));
    const Value& invoiceEntry = m.oneEntry("Invoice");
    CPPUNIT_ASSERT_EQUAL(std::string("Invoice?identifier=urn:oid:2.16.840.1.113883.3.9001|ACC55501"),
                         str(invoiceEntry, "/request/url"));
    const Value& inv = invoiceEntry["resource"];
    CPPUNIT_ASSERT_EQUAL(std::string("issued"), str(inv, "/status"));
    CPPUNIT_ASSERT_EQUAL(size_t(2), count(inv, "/lineItem"));
    CPPUNIT_ASSERT_EQUAL(std::string("ChargeItem"), str(m.resolve(inv["lineItem"][0]["chargeItemReference"]), "/resourceType"));
    CPPUNIT_ASSERT(m.result.bundle.find("\"totalNet\":{\"value\":2630.15,\"currency\":\"USD\"}") != std::string::npos);
    CPPUNIT_ASSERT(m.result.bundle.find("\"totalGross\":{\"value\":2630.15,\"currency\":\"USD\"}") != std::string::npos);
    // Another status is not a closing one (configurable).
    std::string open = withField(message("dft_p03_close_v25.hl7"), "PV1", 1, 41, "OPEN");
    CPPUNIT_ASSERT(mapText(open).entriesOf("Invoice").empty());
    hearth::adapters::MappingOptions finalBill = siteOptions();
    finalBill.closedAccountStatuses = {"OPEN"};
    CPPUNIT_ASSERT_EQUAL(size_t(1), mapText(open, finalBill).entriesOf("Invoice").size());
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(OrdersMappingTest);
