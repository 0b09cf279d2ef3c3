// Parser, model and encoder: byte-exact round trip of the corpus, MSH numbering, access by
// number and path, empty vs null, escapes, delimiters, terminators, character sets, builders,
// and positioned validation errors.
#include <cppunit/extensions/HelperMacros.h>

#include "hearth/hl7/message.h"
#include "hl7_test_support.h"

using namespace hearth::hl7;
using hl7test::corpus;

namespace {

// Runs parse and returns the Hl7Error it throws (fails the test when it does not throw).
Hl7Error parseError(const std::string& bytes, const ParseOptions& options = {}) {
  try {
    Message::parse(bytes, options);
  } catch (const Hl7Error& e) {
    return e;
  }
  CPPUNIT_FAIL("expected Hl7Error for input of " + std::to_string(bytes.size()) + " bytes");
  throw;  // unreachable
}

const std::string kMsh = "MSH|^~\\&|APP|FAC|RCV|RFAC|20250101120000||ADT^A01^ADT_A01|CTRL-1|P|2.5.1";

}  // namespace

class ParseTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(ParseTest);
  CPPUNIT_TEST(corpusRoundTripsByteForByte);
  CPPUNIT_TEST(mshFieldsAreNumberedAsTheStandard);
  CPPUNIT_TEST(accessByNumberAndByPath);
  CPPUNIT_TEST(badPathsAreRejected);
  CPPUNIT_TEST(emptyAndNullStayDistinct);
  CPPUNIT_TEST(escapesAreDecodedOnRead);
  CPPUNIT_TEST(formattedTextEscapes);
  CPPUNIT_TEST(escapeEncodeRoundTrip);
  CPPUNIT_TEST(nonDefaultDelimiters);
  CPPUNIT_TEST(truncationCharacterOfV27);
  CPPUNIT_TEST(terminatorsAreNormalised);
  CPPUNIT_TEST(latin1IsReadAsUtf8AndWrittenBack);
  CPPUNIT_TEST(utf8AndUndeclaredEightBitBytes);
  CPPUNIT_TEST(unsupportedCharsetIsRejected);
  CPPUNIT_TEST(buildingMessages);
  CPPUNIT_TEST(setKeepsOtherPartsAndEscapes);
  CPPUNIT_TEST(headerValidationErrorsArePositioned);
  CPPUNIT_TEST(emptyControlIdIsAccepted);
  CPPUNIT_TEST(invalidUtf8IsPositioned);
  CPPUNIT_TEST(segmentErrorsArePositioned);
  CPPUNIT_TEST(oversizedInputIsRefused);
  CPPUNIT_TEST_SUITE_END();

 public:
  void corpusRoundTripsByteForByte() {
    const auto names = hl7test::corpusNames();
    CPPUNIT_ASSERT(names.size() >= 20);
    for (const auto& name : names) {
      const std::string in = corpus(name);
      const Message m = Message::parse(in);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(name, hl7test::withCrTerminators(in), m.encode());
      CPPUNIT_ASSERT_MESSAGE(name, m.segmentCount() >= 3);
    }
  }

  void mshFieldsAreNumberedAsTheStandard() {
    const Message m = Message::parse(corpus("adt_a01_v251.hl7"));
    const Segment& msh = m.segment("MSH");
    CPPUNIT_ASSERT_EQUAL(std::string("|"), msh.field(1).value());
    CPPUNIT_ASSERT_EQUAL(std::string("^~\\&"), msh.field(2).value());
    // MSH-2 is literal: never split into components or decoded.
    CPPUNIT_ASSERT_EQUAL(size_t(1), msh.field(2).componentCount());
    CPPUNIT_ASSERT_EQUAL(std::string("REGADT"), msh.field(3).value());
    CPPUNIT_ASSERT_EQUAL(std::string("NORTHVALE_HOSP"), m.get("MSH-4"));
    CPPUNIT_ASSERT_EQUAL(std::string("ISO"), m.get("MSH-4.3"));
    CPPUNIT_ASSERT_EQUAL(std::string("20250314083015+0100"), m.get("MSH-7"));
    CPPUNIT_ASSERT_EQUAL(std::string("ADT"), m.messageType());
    CPPUNIT_ASSERT_EQUAL(std::string("A01"), m.triggerEvent());
    CPPUNIT_ASSERT_EQUAL(std::string("ADT_A01"), m.messageStructure());
    CPPUNIT_ASSERT_EQUAL(std::string("NV00000001"), m.controlId());
    CPPUNIT_ASSERT_EQUAL(std::string("P"), m.processingId());
    CPPUNIT_ASSERT_EQUAL(std::string("2.5.1"), m.version());
    CPPUNIT_ASSERT_EQUAL(251, m.versionCode());
    CPPUNIT_ASSERT_EQUAL(std::string("AL"), m.get("MSH-15"));
    CPPUNIT_ASSERT_EQUAL(std::string("UNICODE UTF-8"), m.get("MSH-18"));
    CPPUNIT_ASSERT_EQUAL(18, msh.fieldCount());
    CPPUNIT_ASSERT(m.encoding().charset == Charset::Utf8);
  }

  void accessByNumberAndByPath() {
    const Message m = Message::parse(corpus("adt_a01_v251.hl7"));
    const Segment& pid = m.segment("PID");
    const Element ids = pid.field(3);
    CPPUNIT_ASSERT_EQUAL(size_t(2), ids.repetitionCount());
    CPPUNIT_ASSERT_EQUAL(std::string("MRN100234"), ids.repetition(0).component(1).value());
    CPPUNIT_ASSERT_EQUAL(std::string("MRN100234"), m.segment("PID").field(3).repetition(0).component(1).value());
    CPPUNIT_ASSERT_EQUAL(std::string("987-65-4320"), ids.repetition(1).component(1).value());
    CPPUNIT_ASSERT_EQUAL(std::string("NORTHVALE"), ids.repetition(0).component(4).subcomponent(1).value());
    CPPUNIT_ASSERT_EQUAL(std::string("2.16.840.1.113883.3.9001"), ids.repetition(0).component(4).subcomponent(2).value());
    CPPUNIT_ASSERT_EQUAL(size_t(3), ids.repetition(0).component(4).subcomponentCount());
    // A field reads as its first repetition, a component as its first sub-component.
    CPPUNIT_ASSERT_EQUAL(std::string("MRN100234"), ids.value());
    CPPUNIT_ASSERT_EQUAL(std::string("NORTHVALE"), ids.component(4).value());

    // Paths: every number 1-based.
    CPPUNIT_ASSERT_EQUAL(std::string("MRN100234"), m.get("PID-3"));
    CPPUNIT_ASSERT_EQUAL(std::string("MRN100234"), m.get("PID-3(1).1"));
    CPPUNIT_ASSERT_EQUAL(std::string("SS"), m.get("PID-3(2).5"));
    CPPUNIT_ASSERT_EQUAL(std::string("2.16.840.1.113883.3.9001"), m.get("PID-3(1).4.2"));
    CPPUNIT_ASSERT_EQUAL(std::string("Berg"), m.get("PID-5(2).1"));
    CPPUNIT_ASSERT_EQUAL(std::string("Mother"), m.get("NK1(2)-3.2"));
    CPPUNIT_ASSERT_EQUAL(std::string("Spouse"), m.get("NK1-3.2"));
    CPPUNIT_ASSERT(m.at("PID-3(3)").empty());       // no third repetition
    CPPUNIT_ASSERT(m.at("NK1(3)-2").empty());       // no third NK1
    CPPUNIT_ASSERT(m.at("OBR-4").empty());          // no OBR at all
    CPPUNIT_ASSERT(m.at("PID-99").empty());         // past the last field
    CPPUNIT_ASSERT(m.at("PID-3").raw().substr(0, 13) == "MRN100234^^^N");  // raw keeps every repetition
    CPPUNIT_ASSERT_EQUAL(2, m.count("NK1"));
    CPPUNIT_ASSERT(m.find("OBX") == nullptr);
    CPPUNIT_ASSERT_THROW(m.segment("OBX"), Hl7Error);

    const Message oru = Message::parse(corpus("oru_r01_lab_v251.hl7"));
    CPPUNIT_ASSERT_EQUAL(std::string(">"), oru.get("OBX(3)-5.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("60"), oru.get("OBX(3)-5.2"));
    CPPUNIT_ASSERT_EQUAL(std::string("Straw"), oru.get("OBX(4)-5"));
    CPPUNIT_ASSERT_EQUAL(10, oru.count("OBX"));
  }

  void badPathsAreRejected() {
    const Message m = Message::parse(corpus("adt_a28_v25.hl7"));
    for (const char* bad : {"", "PI-3", "pid-3", "PID", "PID-", "PID-0", "PID-3(0)", "PID-3(1", "PID-3.0",
                            "PID-3.1.", "PID-3.1.1.1", "PID(0)-3", "PID-3x", "PID.3", "PID-3[1]-1"}) {
      try {
        m.at(bad);
        CPPUNIT_FAIL(std::string("accepted bad path ") + bad);
      } catch (const Hl7Error& e) {
        CPPUNIT_ASSERT(e.code() == ErrorCode::BadPath);
      }
    }
  }

  void emptyAndNullStayDistinct() {
    const std::string in = corpus("adt_a08_v24.hl7");
    const Message m = Message::parse(in);
    const Segment& pid = m.segment("PID");
    // PID-13 and PID-16 are "" (delete the stored value); PID-12 and PID-14 are just absent.
    CPPUNIT_ASSERT(pid.field(13).isNull());
    CPPUNIT_ASSERT(pid.field(13).present());
    CPPUNIT_ASSERT(!pid.field(13).empty());
    CPPUNIT_ASSERT_EQUAL(std::string(""), pid.field(13).value());
    CPPUNIT_ASSERT(pid.field(16).isNull());
    CPPUNIT_ASSERT(pid.field(12).empty());
    CPPUNIT_ASSERT(!pid.field(12).isNull());
    CPPUNIT_ASSERT(pid.field(14).empty());
    // Trailing empty fields and components are kept for the round trip.
    CPPUNIT_ASSERT_EQUAL(34, pid.fieldCount());
    CPPUNIT_ASSERT_EQUAL(size_t(8), pid.field(3).componentCount());
    CPPUNIT_ASSERT_EQUAL(std::string("SM889001^^^STMARY^MR^^^"), std::string(pid.field(3).raw()));
    CPPUNIT_ASSERT_EQUAL(std::string("STMARY^^"), std::string(m.segment("MSH").field(4).raw()));
    CPPUNIT_ASSERT_EQUAL(19, m.segment("MSH").fieldCount());
    CPPUNIT_ASSERT_EQUAL(hl7test::withCrTerminators(in), m.encode());
    // A null component is null too.
    const Message n = Message::parse(kMsh + "\rPID|1||X^\"\"^^Z\r");
    CPPUNIT_ASSERT(n.at("PID-3.2").isNull());
    CPPUNIT_ASSERT(n.at("PID-3.3").empty());
    CPPUNIT_ASSERT(!n.at("PID-3.4").isNull());
  }

  void escapesAreDecodedOnRead() {
    const Message m = Message::parse(corpus("adt_a08_v24.hl7"));
    CPPUNIT_ASSERT_EQUAL(std::string("Tom\xC3\xA1s&Luis"), m.get("PID-5.2"));  // \T\ -> subcomponent separator
    CPPUNIT_ASSERT_EQUAL(std::string("221B Elm St|Unit 3"), m.get("PID-11.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("Tom\xC3\xA1s\\T\\Luis"), std::string(m.at("PID-5.2").raw()));
    // \S\ \E\ decoded; \H\ \N\ (highlighting) passed through as written.
    CPPUNIT_ASSERT_EQUAL(std::string("Prefers name ^Tom^; interpreter: \\H\\Spanish\\N\\ \\ confirmed"), m.get("OBX-5"));
    CPPUNIT_ASSERT_EQUAL(std::string("Legacy AB code"), m.get("ZAD-2"));  // \X4142\ hex
  }

  void formattedTextEscapes() {
    const Message m = Message::parse(corpus("oru_r01_text_v23.hl7"));
    CPPUNIT_ASSERT_EQUAL(std::string("No acute cardiopulmonary process.\nHeart size normal."), m.get("OBX(1)-5"));
    CPPUNIT_ASSERT_EQUAL(std::string("\\H\\FINDINGS:\\N\\\nLungs clear. No effusion & no pneumothorax.\n"
                                     "Ratio 3|4; Dr^Tech~note \r\nend \\.sp\\"),
                         m.get("OBX(2)-5"));
    CPPUNIT_ASSERT_EQUAL(std::string("Compared with prior study of 2007\\11\\02."), m.get("NTE(2)-3"));
    // An escape character without a closing one is data (senders that forgot to escape it).
    CPPUNIT_ASSERT_EQUAL(std::string("Unterminated escape \\ stays"), m.get("OBX(3)-5"));
    // OBX-3 "71046&IMP": the identifier component has sub-components.
    CPPUNIT_ASSERT_EQUAL(std::string("IMP"), m.get("OBX(1)-3.1.2"));
  }

  void escapeEncodeRoundTrip() {
    const Encoding def;
    CPPUNIT_ASSERT_EQUAL(std::string("a\\F\\b\\S\\c\\R\\d\\T\\e\\E\\f"), escape("a|b^c~d&e\\f", def));
    CPPUNIT_ASSERT_EQUAL(std::string("line1\\.br\\line2\\.br\\x\\X0D\\y\\X01\\\tz"), escape("line1\nline2\r\nx\ry\x01\tz", def));
    for (const std::string& v : {std::string("plain"), std::string("|^~\\&"), std::string("a\nb\rc\td\x7f"),
                                std::string("\xC3\xA9t\xC3\xA9 \xE6\x9D\x8E"), std::string("\\H\\bold\\N\\"), std::string()}) {
      CPPUNIT_ASSERT_EQUAL(v, unescape(escape(v, def), def));
    }
    Encoding latin;
    latin.charset = Charset::Latin1;
    CPPUNIT_ASSERT_EQUAL(std::string("\xC3\xA9"), unescape("\\XE9\\", latin));
    CPPUNIT_ASSERT_EQUAL(std::string("\xEF\xBF\xBD"), unescape("\\XE9\\", def));  // not UTF-8 -> U+FFFD
    CPPUNIT_ASSERT_EQUAL(std::string("\xC3\xA9"), unescape("\\XC3A9\\", def));
    // Malformed hex, unknown and empty sequences pass through.
    CPPUNIT_ASSERT_EQUAL(std::string("\\XE\\ \\XZZ\\ \\Q\\ \\\\"), unescape("\\XE\\ \\XZZ\\ \\Q\\ \\\\", def));
    CPPUNIT_ASSERT_EQUAL(std::string("\\P\\"), unescape("\\P\\", def));  // no truncation char defined
  }

  void nonDefaultDelimiters() {
    const Message a = Message::parse(corpus("custom_delims_a_v25.hl7"));
    CPPUNIT_ASSERT_EQUAL('~', a.encoding().component);
    CPPUNIT_ASSERT_EQUAL('`', a.encoding().repetition);
    CPPUNIT_ASSERT_EQUAL('!', a.encoding().escape);
    CPPUNIT_ASSERT_EQUAL('@', a.encoding().subcomponent);
    CPPUNIT_ASSERT_EQUAL(std::string("~`!@"), a.get("MSH-2"));
    CPPUNIT_ASSERT_EQUAL(std::string("A08"), a.triggerEvent());
    CPPUNIT_ASSERT_EQUAL(std::string("EG-55120B"), a.get("PID-3(2).1"));
    CPPUNIT_ASSERT_EQUAL(std::string("1.2.3.4"), a.get("PID-3(1).4.2"));
    CPPUNIT_ASSERT_EQUAL(std::string("Lindiwe"), a.get("PID-5.2"));
    CPPUNIT_ASSERT_EQUAL(std::string("1|2 Mill Row"), a.get("PID-11.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("N"), a.get("PID-30"));
    CPPUNIT_ASSERT_EQUAL(std::string("Delimiters in text: pipe | caret ^ tilde ~ backtick ` at @ bang !."), a.get("OBX-5"));

    const Message b = Message::parse(corpus("custom_delims_b_v24.hl7"));
    CPPUNIT_ASSERT_EQUAL('#', b.encoding().field);
    CPPUNIT_ASSERT_EQUAL(std::string("#"), b.get("MSH-1"));
    CPPUNIT_ASSERT_EQUAL(std::string("$%*&"), b.get("MSH-2"));
    CPPUNIT_ASSERT_EQUAL(std::string("ORU"), b.messageType());
    CPPUNIT_ASSERT_EQUAL(std::string("WL-CD-0002"), b.controlId());
    CPPUNIT_ASSERT_EQUAL(std::string("Kowalczyk"), b.get("PID-5.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("98"), b.get("OBX-5"));
    CPPUNIT_ASSERT_EQUAL(std::string("Hash # dollar $ percent % star * amp & | ^ ~ \\ plain"), b.get("OBX(2)-5"));
    CPPUNIT_ASSERT_EQUAL(15, b.segment("OBX", 2).fieldCount());
  }

  void truncationCharacterOfV27() {
    Message m = Message::parse(corpus("adt_a01_v27_trunc.hl7"));
    CPPUNIT_ASSERT_EQUAL('#', m.encoding().truncation);
    CPPUNIT_ASSERT_EQUAL(std::string("^~\\&#"), m.get("MSH-2"));
    CPPUNIT_ASSERT_EQUAL(std::string("Fairweather-Longname#Thing"), m.get("PID-5.1"));
    CPPUNIT_ASSERT_EQUAL(270, m.versionCode());
    m.set("PID-5.2", "Bea #2");
    CPPUNIT_ASSERT_EQUAL(std::string("Fairweather-Longname\\P\\Thing^Bea \\P\\2"), std::string(m.at("PID-5").raw()));
  }

  void terminatorsAreNormalised() {
    const std::string lf = corpus("adt_a04_v23.hl7");
    CPPUNIT_ASSERT(lf.find('\r') == std::string::npos);
    CPPUNIT_ASSERT_EQUAL(size_t(6), Message::parse(lf).segmentCount());
    const std::string crlf = corpus("adt_a31_v26.hl7");
    CPPUNIT_ASSERT(crlf.find("\r\n") != std::string::npos);
    const Message m = Message::parse(crlf);
    CPPUNIT_ASSERT_EQUAL(size_t(4), m.segmentCount());
    CPPUNIT_ASSERT(m.encode().find('\n') == std::string::npos);
    // Mixed terminators, blank lines, a BOM and no final terminator.
    const Message mixed = Message::parse("\xEF\xBB\xBF" + kMsh + "\r\nEVN|A01\n\n\rPID|1\r\r\nPV1|1|I");
    CPPUNIT_ASSERT_EQUAL(size_t(4), mixed.segmentCount());
    CPPUNIT_ASSERT_EQUAL(kMsh + "\rEVN|A01\rPID|1\rPV1|1|I\r", mixed.encode());
  }

  void latin1IsReadAsUtf8AndWrittenBack() {
    const std::string in = corpus("adt_a08_latin1_v24.hl7");
    CPPUNIT_ASSERT(in.find("Lef\xE8vre") != std::string::npos);  // the file holds 8859/1 bytes
    const Message m = Message::parse(in);
    CPPUNIT_ASSERT(m.encoding().charset == Charset::Latin1);
    CPPUNIT_ASSERT_EQUAL(std::string("Lef\xC3\xA8vre"), m.get("PID-5.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("H\xC3\xA9l\xC3\xA8ne"), m.get("PID-5.2"));
    CPPUNIT_ASSERT_EQUAL(std::string("H\xC3\x94PITAL_SUD"), m.get("MSH-4"));
    CPPUNIT_ASSERT_EQUAL(std::string("Hex \xC3\xA9 is \xC3\xA9 in 8859/1."), m.get("OBX-5"));
    CPPUNIT_ASSERT_EQUAL(in, m.encode());
    // A value outside 8859/1 cannot be written in this message.
    Message copy = m;
    copy.set("PID-5.3", "\xE6\x9D\x8E");
    CPPUNIT_ASSERT_THROW(copy.encode(), Hl7Error);
  }

  void utf8AndUndeclaredEightBitBytes() {
    const Message u = Message::parse(corpus("adt_a01_v251.hl7"));
    CPPUNIT_ASSERT_EQUAL(std::string("\xC3\x85sa"), u.get("PID-5.2"));
    CPPUNIT_ASSERT(u.warnings().empty());
    // Declared ASCII (MSH-18) but holding UTF-8: read as UTF-8, with a warning; strict mode refuses.
    const std::string a08 = corpus("adt_a08_v24.hl7");
    const Message m = Message::parse(a08);
    CPPUNIT_ASSERT(m.encoding().charset == Charset::Utf8);
    CPPUNIT_ASSERT_EQUAL(size_t(1), m.warnings().size());
    ParseOptions strict;
    strict.strictAscii = true;
    const Hl7Error e = parseError(a08, strict);
    CPPUNIT_ASSERT(e.code() == ErrorCode::InvalidBytes);
    CPPUNIT_ASSERT_EQUAL(3, e.segmentIndex());
    CPPUNIT_ASSERT_EQUAL(std::string("PID"), e.segmentId());
    CPPUNIT_ASSERT_EQUAL(5, e.field());
    // Undeclared 8859/1 bytes: read as 8859/1 and written back unchanged.
    const std::string latin = kMsh + "\rPID|1||X||Lef\xE8vre\r";
    const Message l = Message::parse(latin);
    CPPUNIT_ASSERT_EQUAL(std::string("Lef\xC3\xA8vre"), l.get("PID-5"));
    CPPUNIT_ASSERT_EQUAL(latin, l.encode());
    CPPUNIT_ASSERT_EQUAL(size_t(1), l.warnings().size());
  }

  void unsupportedCharsetIsRejected() {
    for (const char* cs : {"8859/2", "UNICODE UTF-16", "ISO IR87", "UNICODE"}) {
      const Hl7Error e = parseError(kMsh + "||||||" + cs + "\rPID|1\r");
      CPPUNIT_ASSERT(e.code() == ErrorCode::UnsupportedCharset);
      CPPUNIT_ASSERT_EQUAL(18, e.field());
      CPPUNIT_ASSERT(std::string(e.what()).find(cs) != std::string::npos);
      CPPUNIT_ASSERT(e.isReject());
    }
    // The non-standard spelling "UTF-8" is read as UNICODE UTF-8, with a warning.
    const Message m = Message::parse(kMsh + "||||||UTF-8\rPID|1\r");
    CPPUNIT_ASSERT(m.encoding().charset == Charset::Utf8);
    CPPUNIT_ASSERT_EQUAL(size_t(1), m.warnings().size());
  }

  void buildingMessages() {
    Message m;
    m.set("MSH-3", "HEARTH");
    m.set("MSH-7", "20250101120000");
    m.set("MSH-9.1", "ADT");
    m.set("MSH-9.2", "A01");
    m.set("MSH-9.3", "ADT_A01");
    m.set("MSH-10", "B-1");
    m.set("MSH-11", "P");
    m.set("MSH-12", "2.5.1");
    Segment& pid = m.addSegment("PID");
    pid.set(1, "1");
    pid.set(3, 0, 1, 0, "X-1");
    pid.set(3, 0, 4, 2, "1.2.3");
    pid.set(3, 1, 1, 0, "Y-2");
    pid.set(5, 0, 1, 0, "O'Brien|Smith");
    pid.set(5, 0, 2, 0, "Ann^Marie");
    m.addSegment("ZXT").set(2, "line1\nline2");
    const std::string expected =
        "MSH|^~\\&|HEARTH||||20250101120000||ADT^A01^ADT_A01|B-1|P|2.5.1\r"
        "PID|1||X-1^^^&1.2.3~Y-2||O'Brien\\F\\Smith^Ann\\S\\Marie\r"
        "ZXT||line1\\.br\\line2\r";
    CPPUNIT_ASSERT_EQUAL(expected, m.encode());
    const Message back = Message::parse(m.encode());
    CPPUNIT_ASSERT_EQUAL(std::string("O'Brien|Smith"), back.get("PID-5.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("line1\nline2"), back.get("ZXT-2"));
    CPPUNIT_ASSERT_THROW(m.set("MSH-1", "#"), Hl7Error);
    CPPUNIT_ASSERT_THROW(m.set("MSH-2", "$%*&"), Hl7Error);
    CPPUNIT_ASSERT_THROW(m.set("OBX-5", "x"), Hl7Error);  // no OBX segment
    CPPUNIT_ASSERT_THROW(m.addSegment("pid"), Hl7Error);
    CPPUNIT_ASSERT_THROW(m.addSegment("MSH"), Hl7Error);
    // A non-ASCII charset is declared in MSH-18.
    Encoding utf8;
    utf8.charset = Charset::Utf8;
    CPPUNIT_ASSERT_EQUAL(std::string("MSH|^~\\&||||||||||||||||UNICODE UTF-8\r"), Message(utf8).encode());
  }

  void setKeepsOtherPartsAndEscapes() {
    Message m = Message::parse(corpus("adt_a01_v251.hl7"));
    m.set("PID-3(2).1", "111-22-3333");
    CPPUNIT_ASSERT_EQUAL(std::string("MRN100234^^^NORTHVALE&2.16.840.1.113883.3.9001&ISO^MR^NORTHVALE~111-22-3333^^^USSSA^SS"),
                         std::string(m.at("PID-3").raw()));
    m.set("PID-3(1).4.2", "");  // clearing a middle sub-component keeps the others
    CPPUNIT_ASSERT_EQUAL(std::string("MRN100234^^^NORTHVALE&&ISO^MR^NORTHVALE"), std::string(m.at("PID-3(1)").raw()));
    m.set("PID-5(1).7", "");  // clearing the last component trims the trailing separator
    CPPUNIT_ASSERT_EQUAL(std::string("Lindqvist^\xC3\x85sa^Marie"), std::string(m.at("PID-5(1)").raw()));
    m.set("PID-30", "");  // clearing the last field trims trailing empty fields
    CPPUNIT_ASSERT_EQUAL(26, m.segment("PID").fieldCount());
    m.set("PID-3(4).1", "NEW");  // a missing repetition is created
    CPPUNIT_ASSERT_EQUAL(size_t(4), m.at("PID-3").repetitionCount());
    CPPUNIT_ASSERT(m.at("PID-3(3)").empty());
    m.set("PID-13", "one~value");  // the whole field: every repetition replaced, delimiters escaped
    CPPUNIT_ASSERT_EQUAL(std::string("one\\R\\value"), std::string(m.at("PID-13").raw()));
    CPPUNIT_ASSERT_EQUAL(size_t(1), m.at("PID-13").repetitionCount());
    const auto reps = m.at("PID-3").repetitions();
    CPPUNIT_ASSERT_EQUAL(size_t(4), reps.size());
    CPPUNIT_ASSERT_EQUAL(std::string("NEW"), reps[3].value());
    CPPUNIT_ASSERT(reps[2].empty());
    m.segment("PID").setRaw(19, "\"\"");
    CPPUNIT_ASSERT(m.at("PID-19").isNull());
    // The rest of the message is untouched.
    const std::string in = hl7test::withCrTerminators(corpus("adt_a01_v251.hl7"));
    const std::string out = m.encode();
    CPPUNIT_ASSERT_EQUAL(in.substr(in.find("PD1|")), out.substr(out.find("PD1|")));
  }

  void headerValidationErrorsArePositioned() {
    struct Case {
      std::string input;
      ErrorCode code;
      int segment, field;
    };
    const std::string h = "MSH|^~\\&|A|B|C|D|20250101";
    const std::vector<Case> cases = {
        {"", ErrorCode::NoMsh, 1, 0},
        {"\r\n\r\n", ErrorCode::NoMsh, 1, 0},
        {"PID|1||X\r", ErrorCode::NoMsh, 1, 0},
        {"MS", ErrorCode::NoMsh, 1, 0},
        {"MSH", ErrorCode::BadFieldSeparator, 1, 1},
        {"MSHA^~\\&A", ErrorCode::BadFieldSeparator, 1, 1},
        {"MSH ^~\\& ", ErrorCode::BadFieldSeparator, 1, 1},
        {"MSH\r", ErrorCode::BadFieldSeparator, 1, 1},
        {"MSH|^~\\|A|B", ErrorCode::BadEncodingCharacters, 1, 2},
        {"MSH|^~^&|A", ErrorCode::BadEncodingCharacters, 1, 2},
        {"MSH|^~\\&#$|A", ErrorCode::BadEncodingCharacters, 1, 2},
        {"MSH|^~A&|A", ErrorCode::BadEncodingCharacters, 1, 2},
        {"MSH||A", ErrorCode::BadEncodingCharacters, 1, 2},
        {h + "||\r", ErrorCode::MissingMessageType, 1, 9},
        {h + "||^A01|C1|P|2.5\r", ErrorCode::MissingMessageType, 1, 9},
        {h + "\r", ErrorCode::MissingMessageType, 1, 9},
        {h + "||ADT^A01\r", ErrorCode::MissingControlId, 1, 10},
        {h + "||ADT^A01|C1|P\r", ErrorCode::MissingVersion, 1, 12},
        {h + "||ADT^A01|C1|P|\r", ErrorCode::MissingVersion, 1, 12},
        {h + "||ADT^A01|C1|P|2.2\r", ErrorCode::UnsupportedVersion, 1, 12},
        {h + "||ADT^A01|C1|P|2.9\r", ErrorCode::UnsupportedVersion, 1, 12},
        {h + "||ADT^A01|C1|P|3.0\r", ErrorCode::UnsupportedVersion, 1, 12},
    };
    for (const Case& c : cases) {
      const Hl7Error e = parseError(c.input);
      const std::string what = e.what();
      CPPUNIT_ASSERT_MESSAGE(what, e.code() == c.code);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(what, c.segment, e.segmentIndex());
      CPPUNIT_ASSERT_EQUAL_MESSAGE(what, c.field, e.field());
      if (c.field > 0) {
        CPPUNIT_ASSERT_MESSAGE(what, what.find("segment 1 (MSH), field " + std::to_string(c.field)) != std::string::npos);
      }
    }
    const Hl7Error v = parseError(h + "||ADT^A01|C1|P|2.2\r");
    CPPUNIT_ASSERT_EQUAL(203, v.hl7ErrorCode());
    CPPUNIT_ASSERT(std::string(v.what()).find("'2.2'") != std::string::npos);
    CPPUNIT_ASSERT_EQUAL(101, parseError(h + "||ADT^A01|C1|P\r").hl7ErrorCode());
    // Every supported version parses, with its components (2.5.1^HL7^...) allowed.
    for (const char* ver : {"2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2"}) {
      CPPUNIT_ASSERT_EQUAL(std::string(ver), Message::parse(h + "||ADT^A01|C1|P|" + ver + "^USA\r").version());
    }
  }

  void emptyControlIdIsAccepted() {
    const Message m = Message::parse("MSH|^~\\&|A|B|C|D|20250101||ADT^A01||P|2.5\rPID|1\r");
    CPPUNIT_ASSERT_EQUAL(std::string(), m.controlId());
    CPPUNIT_ASSERT_EQUAL(size_t(1), m.warnings().size());
    CPPUNIT_ASSERT(m.warnings()[0].find("MSH-10") != std::string::npos);
  }

  void invalidUtf8IsPositioned() {
    // A patient name with a byte that is not UTF-8, in a message declared UNICODE UTF-8.
    const std::string in = kMsh + "||||||UNICODE UTF-8\rEVN|A01\rPID|1||X1||M\xFCller^Hans\rPV1|1|I\r";
    const Hl7Error e = parseError(in);
    CPPUNIT_ASSERT(e.code() == ErrorCode::InvalidBytes);
    CPPUNIT_ASSERT_EQUAL(3, e.segmentIndex());
    CPPUNIT_ASSERT_EQUAL(std::string("PID"), e.segmentId());
    CPPUNIT_ASSERT_EQUAL(1, e.segmentSequence());
    CPPUNIT_ASSERT_EQUAL(5, e.field());
    CPPUNIT_ASSERT_EQUAL(102, e.hl7ErrorCode());
    const std::string what = e.what();
    CPPUNIT_ASSERT(what.find("segment 3 (PID), field 5") != std::string::npos);
    CPPUNIT_ASSERT(what.find("ller") == std::string::npos);  // no patient data in the message
    // Overlong encodings and surrogates are not UTF-8 either; in MSH the field number counts MSH-1.
    CPPUNIT_ASSERT_EQUAL(3, parseError("MSH|^~\\&|\xC0\xAF|B|C|D|20250101||ADT^A01|C1|P|2.5||||||UNICODE UTF-8\r").field());
    CPPUNIT_ASSERT_EQUAL(2, parseError(kMsh + "||||||UNICODE UTF-8\rPID|1|\xED\xA0\x80\r").field());
    CPPUNIT_ASSERT_EQUAL(size_t(3), firstInvalidUtf8("abc\xF4\x90\x80\x80"));  // > U+10FFFF
    CPPUNIT_ASSERT_EQUAL(std::string::npos, firstInvalidUtf8("\xF0\x9F\x98\x80 \xE6\x9D\x8E"));
  }

  void segmentErrorsArePositioned() {
    Hl7Error e = parseError(kMsh + "\rEVN|A01\rpid|1\r");
    CPPUNIT_ASSERT(e.code() == ErrorCode::BadSegmentId);
    CPPUNIT_ASSERT_EQUAL(3, e.segmentIndex());
    e = parseError(kMsh + "\rPIDX|1\r");
    CPPUNIT_ASSERT(e.code() == ErrorCode::BadSegmentId);
    CPPUNIT_ASSERT_EQUAL(2, e.segmentIndex());
    CPPUNIT_ASSERT(parseError(kMsh + "\rP1\r").code() == ErrorCode::BadSegmentId);
    e = parseError(kMsh + "\rPID|1\r" + kMsh + "\r");
    CPPUNIT_ASSERT(e.code() == ErrorCode::UnexpectedMsh);
    CPPUNIT_ASSERT_EQUAL(3, e.segmentIndex());
    CPPUNIT_ASSERT_EQUAL(2, e.segmentSequence());
    CPPUNIT_ASSERT_EQUAL(100, e.hl7ErrorCode());
    // A segment with no fields at all and Z-segments are fine.
    const Message m = Message::parse(kMsh + "\rPID\rZ01|x\r");
    CPPUNIT_ASSERT_EQUAL(0, m.segment("PID").fieldCount());
    CPPUNIT_ASSERT_EQUAL(std::string("x"), m.get("Z01-1"));
  }

  void oversizedInputIsRefused() {
    ParseOptions small;
    small.maxBytes = 64;
    const std::string in = corpus("adt_a28_v25.hl7");
    const Hl7Error e = parseError(in, small);
    CPPUNIT_ASSERT(e.code() == ErrorCode::Oversized);
    CPPUNIT_ASSERT(e.isReject());
    CPPUNIT_ASSERT(std::string(e.what()).find(std::to_string(in.size())) != std::string::npos);
    small.maxBytes = in.size();
    CPPUNIT_ASSERT_NO_THROW(Message::parse(in, small));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ParseTest);
