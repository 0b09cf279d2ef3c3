// ACK construction: original mode AA/AE/AR, enhanced-mode commit ACKs, version-specific ERR
// shapes (v2.5 ERR-2/3/4/7/8, v2.3/2.4 ERR-1 + MSA-3/MSA-6), swapped routing, delimiters and
// character set kept, and ACKs for input that did not parse.
#include <cppunit/extensions/HelperMacros.h>

#include <set>

#include "hearth/hl7/ack.h"
#include "hearth/hl7/groups.h"
#include "hearth/hl7/types.h"
#include "hl7_test_support.h"

using namespace hearth::hl7;
using hl7test::corpus;

namespace {

AckOptions fixed(const std::string& controlId, const std::string& ts = "20250102101600") {
  AckOptions o;
  o.controlId = controlId;
  o.timestamp = ts;
  return o;
}

AckError err(int code, const std::string& seg, int field, const std::string& text) {
  AckError e;
  e.hl7Code = code;
  e.segmentId = seg;
  e.segmentSequence = 1;
  e.field = field;
  e.userMessage = text;
  return e;
}

Hl7Error parseError(const std::string& bytes) {
  try {
    Message::parse(bytes);
  } catch (const Hl7Error& e) {
    return e;
  }
  CPPUNIT_FAIL("expected Hl7Error");
  throw;
}

}  // namespace

class AckTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(AckTest);
  CPPUNIT_TEST(originalModeAccept);
  CPPUNIT_TEST(v25ErrorsAreOneErrSegmentEach);
  CPPUNIT_TEST(v23AndV24ErrorsUseErr1AndMsa3);
  CPPUNIT_TEST(enhancedModeCommitAcks);
  CPPUNIT_TEST(delimitersAndCharsetOfTheOriginal);
  CPPUNIT_TEST(ackParsesBackAndGroups);
  CPPUNIT_TEST(ackForUnparseableInput);
  CPPUNIT_TEST(controlIdsAndTimestamps);
  CPPUNIT_TEST_SUITE_END();

 public:
  void originalModeAccept() {
    const Message m = Message::parse(corpus("adt_a28_v25.hl7"));
    CPPUNIT_ASSERT(ackMode(m) == AckMode::Original);
    const Message ack = buildAck(m, AckCode::AA, {}, fixed("ACK-1"));
    CPPUNIT_ASSERT_EQUAL(std::string("MSH|^~\\&|HEARTH|HEARTH|MPI|LAKESHORE|20250102101600||ACK^A28^ACK|ACK-1|P|2.5\r"
                                     "MSA|AA|LS-A28-000451\r"),
                         ack.encode());
    // Sender overrides for a receiver that leaves MSH-5/6 empty.
    AckOptions o = fixed("ACK-1b");
    o.sendingApplication = "HEARTH_BRIDGE";
    o.sendingFacility = "NORTH^1.2.3^ISO";
    const Message own = buildAck(m, AckCode::AR, {}, o);
    CPPUNIT_ASSERT_EQUAL(std::string("HEARTH_BRIDGE"), own.get("MSH-3"));
    CPPUNIT_ASSERT_EQUAL(std::string("1.2.3"), own.get("MSH-4.2"));
    CPPUNIT_ASSERT_EQUAL(std::string("AR"), own.get("MSA-1"));
  }

  void v25ErrorsAreOneErrSegmentEach() {
    const Message m = Message::parse(corpus("adt_a28_v25.hl7"));
    AckError second = err(102, "PV1", 44, "Bad admit time | ignored");
    second.severity = 'W';
    second.repetition = 1;
    second.component = 1;
    second.diagnostic = "expected DTM";
    const Message ack = buildAck(m, AckCode::AE, {err(101, "PID", 3, "Patient identifier missing"), second}, fixed("ACK-2"));
    CPPUNIT_ASSERT_EQUAL(std::string("MSH|^~\\&|HEARTH|HEARTH|MPI|LAKESHORE|20250102101600||ACK^A28^ACK|ACK-2|P|2.5\r"
                                     "MSA|AE|LS-A28-000451\r"
                                     "ERR||PID^1^3|101^Required field missing^HL70357|E||||Patient identifier missing\r"
                                     "ERR||PV1^1^44^1^1|102^Data type error^HL70357|W|||expected DTM|Bad admit time \\F\\ ignored\r"),
                         ack.encode());
    // A message-level error has no location.
    AckError whole;
    whole.hl7Code = 207;
    whole.userMessage = "store unavailable";
    const Message a2 = buildAck(m, AckCode::AE, {whole}, fixed("ACK-2b"));
    CPPUNIT_ASSERT_EQUAL(std::string("ERR|||207^Application internal error^HL70357|E||||store unavailable"),
                         a2.segment("ERR").encode());
  }

  void v23AndV24ErrorsUseErr1AndMsa3() {
    const Message v23 = Message::parse(corpus("adt_a04_v23.hl7"));
    const Message ack = buildAck(v23, AckCode::AE, {err(101, "PID", 3, "Patient identifier missing")}, fixed("ACK-3"));
    CPPUNIT_ASSERT_EQUAL(std::string("MSH|^~\\&|HEARTH|HEARTH|EPICADT|RIVERBEND|20250102101600||ACK^A04|ACK-3|P|2.3\r"
                                     "MSA|AE|RB20241105093000017|Patient identifier missing|||101^Required field missing^HL70357\r"
                                     "ERR|PID^1^3^101&Required field missing&HL70357\r"),
                         ack.encode());
    const Message v24 = Message::parse(corpus("adt_a08_v24.hl7"));
    const Message ack24 = buildAck(v24, AckCode::AE,
                                   {err(101, "PID", 3, "Patient identifier missing"), err(102, "PV1", 44, "Bad time")},
                                   fixed("ACK-4"));
    CPPUNIT_ASSERT_EQUAL(std::string("MSH|^~\\&|HEARTH||PAS|STMARY^^|20250102101600||ACK^A08^ACK|ACK-4|P|2.4||||||ASCII\r"
                                     "MSA|AE|SM-0229-7781|Patient identifier missing|||101^Required field missing^HL70357\r"
                                     "ERR|PID^1^3^101&Required field missing&HL70357~PV1^1^44^102&Data type error&HL70357\r"),
                         ack24.encode());
  }

  void enhancedModeCommitAcks() {
    const Message m = Message::parse(corpus("adt_a01_v251.hl7"));  // MSH-15 AL, MSH-16 NE
    CPPUNIT_ASSERT(ackMode(m) == AckMode::Enhanced);
    CPPUNIT_ASSERT(ackWanted(m.get("MSH-15"), true));
    CPPUNIT_ASSERT(ackWanted(m.get("MSH-15"), false));
    CPPUNIT_ASSERT(!ackWanted(m.get("MSH-16"), true));
    CPPUNIT_ASSERT(ackWanted("ER", false));
    CPPUNIT_ASSERT(!ackWanted("ER", true));
    CPPUNIT_ASSERT(ackWanted("SU", true));
    CPPUNIT_ASSERT(!ackWanted("SU", false));
    CPPUNIT_ASSERT(ackWanted("", true));
    const Message ca = buildAck(m, AckCode::CA, {}, fixed("ACK-5", "20250314083016+0100"));
    CPPUNIT_ASSERT_EQUAL(std::string("MSH|^~\\&|HEARTH|HEARTH_FAC|REGADT|NORTHVALE_HOSP^2.16.840.1.113883.3.9001^ISO|"
                                     "20250314083016+0100||ACK^A01^ACK|ACK-5|P|2.5.1||||||UNICODE UTF-8\r"
                                     "MSA|CA|NV00000001\r"),
                         ca.encode());
    const Hl7Error bad = parseError("MSH|^~\\&|A|B|C|D|20250101||ADT^A01|C1|P|2.5|||AL|AL||UNICODE UTF-8\rPID|1||\xFF\r");
    CPPUNIT_ASSERT(ackCodeFor(bad, AckMode::Enhanced) == AckCode::CE);
    CPPUNIT_ASSERT(ackCodeFor(bad, AckMode::Original) == AckCode::AE);
    const Hl7Error ver = parseError("MSH|^~\\&|A|B|C|D|20250101||ADT^A01|C1|P|2.1\r");
    CPPUNIT_ASSERT(ackCodeFor(ver, AckMode::Enhanced) == AckCode::CR);
    CPPUNIT_ASSERT(ackCodeFor(ver, AckMode::Original) == AckCode::AR);
    CPPUNIT_ASSERT(ackMode(Message::parse(corpus("oml_o21_v251.hl7"))) == AckMode::Enhanced);
  }

  void delimitersAndCharsetOfTheOriginal() {
    const Message a = Message::parse(corpus("custom_delims_a_v25.hl7"));
    const Message ackA = buildAck(a, AckCode::AE, {err(103, "PID", 8, "Sex ~ unknown")}, fixed("ACK-6"));
    CPPUNIT_ASSERT_EQUAL(std::string("MSH|~`!@|HEARTH|HEARTH|PAS|EASTGATE|20250102101600||ACK~A08~ACK|ACK-6|P|2.5\r"
                                     "MSA|AE|EG-CD-0001\r"
                                     "ERR||PID~1~8|103~Table value not found~HL70357|E||||Sex !S! unknown\r"),
                         ackA.encode());
    const Message b = Message::parse(corpus("custom_delims_b_v24.hl7"));
    CPPUNIT_ASSERT_EQUAL(std::string("MSH#$%*&#HEARTH#HEARTH#LABSYS#WESTLAB#20250102101600##ACK$R01$ACK#ACK-7#P#2.4\r"
                                     "MSA#AA#WL-CD-0002\r"),
                         buildAck(b, AckCode::AA, {}, fixed("ACK-7")).encode());
    // 8859/1: MSH-18 copied, the receiver's name written back in 8859/1 bytes.
    const Message l = Message::parse(corpus("adt_a08_latin1_v24.hl7"));
    const std::string bytes = buildAck(l, AckCode::AA, {}, fixed("ACK-8")).encode();
    CPPUNIT_ASSERT(bytes.find("|PAS|H\xD4PITAL_SUD|") != std::string::npos);
    CPPUNIT_ASSERT(bytes.find("|2.4||||||8859/1\r") != std::string::npos);
    CPPUNIT_ASSERT_EQUAL(std::string("H\xC3\x94PITAL_SUD"), Message::parse(bytes).get("MSH-6"));
  }

  void ackParsesBackAndGroups() {
    for (const auto& name : hl7test::corpusNames()) {
      const Message m = Message::parse(corpus(name));
      const Message ack = buildAck(m, AckCode::AE, {err(207, "PID", 1, "x")});
      const Message back = Message::parse(ack.encode());
      CPPUNIT_ASSERT_EQUAL_MESSAGE(name, std::string("ACK"), back.messageType());
      CPPUNIT_ASSERT_EQUAL_MESSAGE(name, m.triggerEvent(), back.triggerEvent());
      CPPUNIT_ASSERT_EQUAL_MESSAGE(name, m.controlId(), back.get("MSA-2"));
      CPPUNIT_ASSERT_EQUAL_MESSAGE(name, m.get("MSH-3"), back.get("MSH-5"));
      CPPUNIT_ASSERT_EQUAL_MESSAGE(name, m.get("MSH-4"), back.get("MSH-6"));
      CPPUNIT_ASSERT_EQUAL_MESSAGE(name, m.get("MSH-5"), back.get("MSH-3"));
      CPPUNIT_ASSERT_EQUAL_MESSAGE(name, m.get("MSH-6"), back.get("MSH-4"));
      CPPUNIT_ASSERT_EQUAL_MESSAGE(name, m.version(), back.version());
      CPPUNIT_ASSERT_EQUAL_MESSAGE(name, m.processingId(), back.processingId());
      CPPUNIT_ASSERT(back.controlId() != m.controlId());
      const GroupTree t = GroupTree::build(back);
      CPPUNIT_ASSERT_EQUAL(std::string("ACK"), t.structureId());
      CPPUNIT_ASSERT_MESSAGE(name, t.issues().empty());
    }
    // An original with an empty MSH-10 gets an empty MSA-2.
    const Message noId = Message::parse("MSH|^~\\&|A|B|C|D|20250101||ADT^A01||P|2.5\rPID|1\r");
    const Message ack = buildAck(noId, AckCode::AA);
    CPPUNIT_ASSERT_EQUAL(std::string("MSA|AA"), ack.segment("MSA").encode());
  }

  void ackForUnparseableInput() {
    // Unsupported version: the header is still usable, the ACK answers in kind.
    const std::string old = "MSH|^~\\&|OLDSYS|OLDFAC|HEARTH|HEARTH|20250101||ADT^A01|OLD-1|P|2.2\rPID|1\r";
    const Hl7Error e = parseError(old);
    const Message ack = buildAck(old, ackCodeFor(e, AckMode::Original), {AckError::from(e)}, fixed("ACK-9"));
    CPPUNIT_ASSERT_EQUAL(std::string("MSH|^~\\&|HEARTH|HEARTH|OLDSYS|OLDFAC|20250102101600||ACK^A01|ACK-9|P|2.2"),
                         ack.segment("MSH").encode());
    CPPUNIT_ASSERT_EQUAL(std::string("AR"), ack.get("MSA-1"));
    CPPUNIT_ASSERT_EQUAL(std::string("OLD-1"), ack.get("MSA-2"));
    CPPUNIT_ASSERT(ack.get("MSA-3").find("not supported") != std::string::npos);
    CPPUNIT_ASSERT_EQUAL(std::string("ERR|MSH^1^12^203&Unsupported version id&HL70357"), ack.segment("ERR").encode());

    // Not HL7 at all: default delimiters, v2.5, no control id to echo; the ACK is itself valid.
    const Hl7Error g = parseError("hello world");
    const Message gack = buildAck("hello world", AckCode::AR, {AckError::from(g)}, fixed("ACK-10"));
    CPPUNIT_ASSERT_EQUAL(std::string("MSH|^~\\&|||||20250102101600||ACK^^ACK|ACK-10|P|2.5\rMSA|AR\r"
                                     "ERR|||100^Segment sequence error^HL70357|E||||"
                                     "HL7 segment 1: the message does not start with an MSH segment\r"),
                         gack.encode());
    CPPUNIT_ASSERT_NO_THROW(Message::parse(gack.encode()));

    // Bad UTF-8 in PID-5: the location reaches ERR-2; header fields with 8-bit bytes are dropped.
    const std::string utf = "MSH|^~\\&|APP|FAC\xFF|HEARTH|HEARTH|20250101||ORU^R01^ORU_R01|U-1|P|2.5.1||||||UNICODE UTF-8\r"
                            "PID|1||X||Bad\xC3\r";
    const Hl7Error u = parseError(utf);
    CPPUNIT_ASSERT_EQUAL(4, u.field());  // the first bad byte is in MSH-4
    const Message uack = buildAck(utf, AckCode::AE, {AckError::from(u)}, fixed("ACK-11"));
    CPPUNIT_ASSERT_EQUAL(std::string("MSH|^~\\&|HEARTH|HEARTH|APP||20250102101600||ACK^R01^ACK|ACK-11|P|2.5.1||||||UNICODE UTF-8"),
                         uack.segment("MSH").encode());
    CPPUNIT_ASSERT_EQUAL(std::string("MSH^1^4"), std::string(uack.at("ERR-2").raw()));
    CPPUNIT_ASSERT_EQUAL(std::string("102"), uack.get("ERR-3"));
    const std::string pidOnly = "MSH|^~\\&|APP|FAC|HEARTH|HEARTH|20250101||ORU^R01|U-2|P|2.5.1||||||UNICODE UTF-8\r"
                                "PID|1||X||Bad\xC3\r";
    const Hl7Error p = parseError(pidOnly);
    CPPUNIT_ASSERT_EQUAL(std::string("PID^1^5"), std::string(buildAck(pidOnly, AckCode::AE, {AckError::from(p)}).at("ERR-2").raw()));
    // Custom delimiters are salvaged from a header that failed later checks.
    const std::string custom = "MSH#$%*&#APP#FAC#HEARTH#HEARTH#20250101##ORU$R01#C-1#P#9.9\r";
    const Message cack = buildAck(custom, AckCode::AR, {AckError::from(parseError(custom))}, fixed("ACK-12"));
    CPPUNIT_ASSERT_EQUAL(std::string("MSH#$%*&#HEARTH#HEARTH#APP#FAC#20250102101600##ACK$R01$ACK#ACK-12#P#9.9"),
                         cack.segment("MSH").encode());
  }

  void controlIdsAndTimestamps() {
    std::set<std::string> ids;
    for (int i = 0; i < 2000; ++i) {
      const std::string id = newControlId();
      CPPUNIT_ASSERT(id.size() <= 20);
      ids.insert(id);
    }
    CPPUNIT_ASSERT_EQUAL(size_t(2000), ids.size());
    const Message ack = buildAck(Message::parse(corpus("adt_a28_v25.hl7")), AckCode::AA);
    const auto ts = DateTime::from(ack.at("MSH-7"));
    CPPUNIT_ASSERT(ts.has_value());
    CPPUNIT_ASSERT(ts->precision == DateTime::Precision::Second);
    CPPUNIT_ASSERT_EQUAL(0, *ts->offsetMinutes);
    CPPUNIT_ASSERT(ts->year >= 2025);
    CPPUNIT_ASSERT(!ack.controlId().empty());
    CPPUNIT_ASSERT_EQUAL(std::string("Required field missing"), std::string(hl7ErrorText(101)));
    CPPUNIT_ASSERT_EQUAL(std::string(), std::string(hl7ErrorText(999)));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(AckTest);
