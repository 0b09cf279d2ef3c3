// Bad content -> mapping errors an AE (or AR) can carry: ERR-2 location, ERR-3 table 0357 code,
// a message without patient data, and no Bundle.
#include <set>

#include "adapters_test_support.h"
#include "hearth/hl7/ack.h"

using namespace adaptertest;
using hearth::hl7::AckError;

namespace {

void assertError(const Mapped& m, int code, const std::string& segment, int sequence, int field, int component = 0) {
  const AckError& e = firstError(m);
  const std::string where = "errors:" + m.errorsText();
  CPPUNIT_ASSERT_EQUAL_MESSAGE(where, code, e.hl7Code);
  CPPUNIT_ASSERT_EQUAL_MESSAGE(where, segment, e.segmentId);
  CPPUNIT_ASSERT_EQUAL_MESSAGE(where, sequence, e.segmentSequence);
  CPPUNIT_ASSERT_EQUAL_MESSAGE(where, field, e.field);
  CPPUNIT_ASSERT_EQUAL_MESSAGE(where, component, e.component);
  CPPUNIT_ASSERT_EQUAL('E', e.severity);
  CPPUNIT_ASSERT(!e.userMessage.empty());
  CPPUNIT_ASSERT_MESSAGE("no Bundle when there are errors", m.result.bundle.empty());
  CPPUNIT_ASSERT(!m.result.ok());
}

}  // namespace

class MappingErrorsTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(MappingErrorsTest);
  CPPUNIT_TEST(testMissingPatientIdentifier);
  CPPUNIT_TEST(testInvalidBirthDate);
  CPPUNIT_TEST(testUnknownAdministrativeSex);
  CPPUNIT_TEST(testUnknownObservationValueType);
  CPPUNIT_TEST(testUnsupportedObservationValueType);
  CPPUNIT_TEST(testNonNumericNumericResult);
  CPPUNIT_TEST(testBadStructuredNumeric);
  CPPUNIT_TEST(testMissingObservationCode);
  CPPUNIT_TEST(testUnknownResultStatuses);
  CPPUNIT_TEST(testUnsupportedMessageTypeAndEvent);
  CPPUNIT_TEST(testDischargeWithoutVisitNumber);
  CPPUNIT_TEST(testUnknownPatientClass);
  CPPUNIT_TEST(testAppointmentWithoutTimes);
  CPPUNIT_TEST(testOrderControlNotInTable);
  CPPUNIT_TEST(testTimeWithoutZoneWhenNoDefault);
  CPPUNIT_TEST(testEveryErrorIsReported);
  CPPUNIT_TEST(testErrorsBecomeAnAeAck);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testMissingPatientIdentifier() {
    Mapped m = mapText(withField(message("adt_a01_v251.hl7"), "PID", 1, 3, ""));
    assertError(m, 101, "PID", 1, 3);
    // Only empty repetitions count as missing too.
    assertError(mapText(withField(message("oru_r01_lab_v251.hl7"), "PID", 1, 3, "~^^^NORTHVALE^MR")), 101, "PID", 1, 3);
  }

  void testInvalidBirthDate() {
    Mapped m = mapText(withField(message("adt_a01_v251.hl7"), "PID", 1, 7, "19791322"));
    assertError(m, 102, "PID", 1, 7);
    CPPUNIT_ASSERT_MESSAGE("error texts must not quote patient data",
                           m.result.errors[0].userMessage.find("19791322") == std::string::npos);
    assertError(mapText(withField(message("adt_a01_v251.hl7"), "PID", 1, 7, "22.05.1979")), 102, "PID", 1, 7);
  }

  void testUnknownAdministrativeSex() {
    assertError(mapText(withField(message("adt_a01_v251.hl7"), "PID", 1, 8, "Q")), 103, "PID", 1, 8);
    // Every table 0001 code maps.
    const std::pair<const char*, const char*> cases[] = {
        {"F", "female"}, {"M", "male"}, {"O", "other"}, {"A", "other"}, {"N", "other"}, {"U", "unknown"}};
    for (const auto& [v2, fhir] : cases) {
      Mapped m = mapText(withField(message("adt_a01_v251.hl7"), "PID", 1, 8, v2));
      CPPUNIT_ASSERT_EQUAL_MESSAGE(v2, std::string(fhir), str(m.one("Patient"), "/gender"));
    }
  }

  void testUnknownObservationValueType() {
    // The 2nd OBX of the message: ERR-2 sequence 2, field 2.
    Mapped m = mapText(withField(message("oru_r01_lab_v251.hl7"), "OBX", 2, 2, "XY"));
    assertError(m, 103, "OBX", 2, 2);
  }

  void testUnsupportedObservationValueType() {
    Mapped m = mapText(withField(message("oru_r01_lab_v251.hl7"), "OBX", 4, 2, "ED"));
    assertError(m, 207, "OBX", 4, 2);
  }

  void testNonNumericNumericResult() {
    assertError(mapText(withField(message("oru_r01_lab_v251.hl7"), "OBX", 1, 5, "high")), 102, "OBX", 1, 5);
    assertError(mapText(withField(message("oru_r01_lab_v251.hl7"), "OBX", 1, 5, "1,5")), 102, "OBX", 1, 5);
  }

  void testBadStructuredNumeric() {
    assertError(mapText(withField(message("oru_r01_lab_v251.hl7"), "OBX", 3, 5, "~^60")), 102, "OBX", 3, 5);
    assertError(mapText(withField(message("oru_r01_lab_v251.hl7"), "OBX", 3, 5, ">^sixty")), 102, "OBX", 3, 5);
  }

  void testMissingObservationCode() {
    assertError(mapText(withField(message("oru_r01_lab_v251.hl7"), "OBX", 5, 3, "")), 101, "OBX", 5, 3);
    assertError(mapText(withField(message("oru_r01_lab_v251.hl7"), "OBR", 1, 4, "")), 101, "OBR", 1, 4);
    // A value without its type.
    assertError(mapText(withField(message("oru_r01_lab_v251.hl7"), "OBX", 4, 2, "")), 101, "OBX", 4, 2);
  }

  void testUnknownResultStatuses() {
    assertError(mapText(withField(message("oru_r01_lab_v251.hl7"), "OBX", 1, 11, "Q")), 103, "OBX", 1, 11);
    assertError(mapText(withField(message("oru_r01_lab_v251.hl7"), "OBR", 2, 25, "Q")), 103, "OBR", 2, 25);
  }

  void testUnsupportedMessageTypeAndEvent() {
    Mapped type = mapText(withField(message("adt_a01_v251.hl7"), "MSH", 1, 9, "MFN^M02^MFN_M02"));
    assertError(type, 200, "MSH", 1, 9, 1);
    CPPUNIT_ASSERT(type.result.unsupported());
    Mapped event = mapText(withField(message("adt_a01_v251.hl7"), "MSH", 1, 9, "ADT^A02^ADT_A02"));
    assertError(event, 201, "MSH", 1, 9, 2);
    CPPUNIT_ASSERT(event.result.unsupported());
    CPPUNIT_ASSERT(!hearth::adapters::supports("ADT", "A02"));
    CPPUNIT_ASSERT(hearth::adapters::supports("ADT", "A40"));
    // Content errors are not "unsupported" (AE, not AR).
    CPPUNIT_ASSERT(!mapText(withField(message("adt_a01_v251.hl7"), "PID", 1, 3, "")).result.unsupported());
  }

  void testDischargeWithoutVisitNumber() {
    assertError(mapText(withField(message("adt_a03_v251.hl7"), "PV1", 1, 19, "")), 101, "PV1", 1, 19);
    // An admit without one only loses the Encounter (warning), the Patient is still written.
    Mapped admit = mapText(withField(message("adt_a01_v251.hl7"), "PV1", 1, 19, ""));
    CPPUNIT_ASSERT_MESSAGE(admit.errorsText(), admit.result.ok());
    CPPUNIT_ASSERT(admit.entriesOf("Encounter").empty());
    CPPUNIT_ASSERT_EQUAL(size_t(1), admit.entriesOf("Patient").size());
    CPPUNIT_ASSERT_EQUAL(19, admit.result.warnings.at(0).field);
  }

  void testUnknownPatientClass() {
    assertError(mapText(withField(message("adt_a01_v251.hl7"), "PV1", 1, 2, "Z")), 103, "PV1", 1, 2);
    assertError(mapText(withField(message("adt_a01_v251.hl7"), "PV1", 1, 2, "")), 101, "PV1", 1, 2);
    CPPUNIT_ASSERT_EQUAL(std::string("EMER"),
                         str(mapText(withField(message("adt_a01_v251.hl7"), "PV1", 1, 2, "E")).one("Encounter"), "/class/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("planned"),
                         str(mapText(withField(message("adt_a01_v251.hl7"), "PV1", 1, 2, "P")).one("Encounter"), "/status"));
  }

  void testAppointmentWithoutTimes() {
    Mapped m = mapText(withField(message("siu_s12_v251.hl7"), "SCH", 1, 11, ""));
    assertError(m, 101, "SCH", 1, 11, 4);
    // A cancelled appointment needs no times.
    Mapped cancelled = mapText(withField(message("siu_s15_v25.hl7"), "SCH", 1, 11, ""));
    CPPUNIT_ASSERT_MESSAGE(cancelled.errorsText(), cancelled.result.ok());
    CPPUNIT_ASSERT(at(cancelled.one("Appointment"), "/start") == nullptr);
    assertError(mapText(withField(message("siu_s12_v251.hl7"), "SCH", 1, 11, "^^30^20250520250000-0700")), 102, "SCH", 1, 11, 4);
    assertError(mapText(withField(withField(message("siu_s12_v251.hl7"), "SCH", 1, 1, ""), "SCH", 1, 2, "")), 101, "SCH", 1, 1);
  }

  void testOrderControlNotInTable() {
    assertError(mapText(withField(withField(message("orm_o01_cancel_v25.hl7"), "ORC", 1, 5, ""), "ORC", 1, 1, "ZZ")), 103,
                "ORC", 1, 1);
    assertError(mapText(withField(message("rde_o11_v25.hl7"), "RXE", 1, 2, "")), 101, "RXE", 1, 2);
    assertError(mapText(withField(message("rde_o11_v25.hl7"), "RXE", 1, 3, "five hundred")), 102, "RXE", 1, 3);
    assertError(mapText(withField(message("dft_p03_v25.hl7"), "FT1", 2, 7, "")), 101, "FT1", 2, 7);
    assertError(mapText(withField(message("dft_p03_v25.hl7"), "FT1", 1, 11, "2,450.00&USD")), 102, "FT1", 1, 11, 1);
  }

  void testTimeWithoutZoneWhenNoDefault() {
    hearth::adapters::MappingOptions strict = siteOptions();
    strict.defaultUtcOffsetMinutes.reset();
    // oru_r01_text_v23: neither OBR-7 nor MSH-7 carries an offset.
    assertError(mapText(message("oru_r01_text_v23.hl7"), strict), 102, "OBR", 1, 7);
    // MSH-7's offset is the sender's zone for times without one.
    std::string zoned = withField(message("oru_r01_text_v23.hl7"), "MSH", 1, 7, "200903061432+0200");
    Mapped m = mapText(zoned, strict);
    CPPUNIT_ASSERT_MESSAGE(m.errorsText(), m.result.ok());
    CPPUNIT_ASSERT_EQUAL(std::string("2009-03-06T14:00:00+02:00"), str(m.one("DiagnosticReport"), "/effectiveDateTime"));
  }

  void testEveryErrorIsReported() {
    std::string msg = withField(message("oru_r01_lab_v251.hl7"), "OBX", 1, 5, "high");
    msg = withField(msg, "OBX", 4, 11, "Q");
    msg = withField(msg, "PID", 1, 8, "Q");
    Mapped m = mapText(msg);
    CPPUNIT_ASSERT_EQUAL_MESSAGE(m.errorsText(), size_t(3), m.result.errors.size());
    std::set<std::string> where;
    for (const AckError& e : m.result.errors) {
      where.insert(e.segmentId + "^" + std::to_string(e.segmentSequence) + "^" + std::to_string(e.field) + "=" +
                   std::to_string(e.hl7Code));
    }
    CPPUNIT_ASSERT(where.count("PID^1^8=103"));
    CPPUNIT_ASSERT(where.count("OBX^1^5=102"));
    CPPUNIT_ASSERT(where.count("OBX^4^11=103"));
  }

  void testErrorsBecomeAnAeAck() {
    const std::string text = withField(message("adt_a01_v251.hl7"), "PID", 1, 3, "");
    hearth::hl7::Message msg = hearth::hl7::Message::parse(text);
    auto result = hearth::adapters::mapToFhir(msg, siteOptions());
    hearth::hl7::AckOptions ackOptions;
    ackOptions.controlId = "ACK0001";
    ackOptions.timestamp = "20250314083016+0100";
    hearth::hl7::Message ack = hearth::hl7::buildAck(msg, hearth::hl7::AckCode::AE, result.errors, ackOptions);
    CPPUNIT_ASSERT_EQUAL(std::string("AE"), ack.get("MSA-1"));
    CPPUNIT_ASSERT_EQUAL(std::string("NV00000001"), ack.get("MSA-2"));
    CPPUNIT_ASSERT_EQUAL(std::string("PID"), ack.get("ERR-2.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("1"), ack.get("ERR-2.2"));
    CPPUNIT_ASSERT_EQUAL(std::string("3"), ack.get("ERR-2.3"));
    CPPUNIT_ASSERT_EQUAL(std::string("101"), ack.get("ERR-3.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("E"), ack.get("ERR-4"));
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(MappingErrorsTest);
