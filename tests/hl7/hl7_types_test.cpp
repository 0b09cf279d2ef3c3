// Typed readers: CX, HD, EI, XPN, XAD, XTN (v2.3 and v2.5+ forms), CWE/CE, SN, NM, PL, XCN, and
// TS/DTM at every precision with offsets and their FHIR spelling.
#include <cppunit/extensions/HelperMacros.h>

#include "hearth/hl7/types.h"
#include "hl7_test_support.h"

using namespace hearth::hl7;
using hl7test::corpus;

class TypesTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(TypesTest);
  CPPUNIT_TEST(cxWithNestedAssigningAuthority);
  CPPUNIT_TEST(hdAndEi);
  CPPUNIT_TEST(xpnNames);
  CPPUNIT_TEST(xadAddresses);
  CPPUNIT_TEST(xtnStructuredAndLegacy);
  CPPUNIT_TEST(cweAndCe);
  CPPUNIT_TEST(snStructuredNumbers);
  CPPUNIT_TEST(nmNumbers);
  CPPUNIT_TEST(plAndXcn);
  CPPUNIT_TEST(dateTimePrecisions);
  CPPUNIT_TEST(dateTimeToFhir);
  CPPUNIT_TEST(invalidDateTimes);
  CPPUNIT_TEST(readersTolerateAbsentAndNull);
  CPPUNIT_TEST_SUITE_END();

 public:
  void cxWithNestedAssigningAuthority() {
    const Message m = Message::parse(corpus("adt_a01_v251.hl7"));
    const CX mrn = CX::from(m.at("PID-3(1)"));
    CPPUNIT_ASSERT_EQUAL(std::string("MRN100234"), mrn.id);
    CPPUNIT_ASSERT_EQUAL(std::string("NORTHVALE"), mrn.assigningAuthority.namespaceId);
    CPPUNIT_ASSERT_EQUAL(std::string("2.16.840.1.113883.3.9001"), mrn.assigningAuthority.universalId);
    CPPUNIT_ASSERT_EQUAL(std::string("ISO"), mrn.assigningAuthority.universalIdType);
    CPPUNIT_ASSERT_EQUAL(std::string("MR"), mrn.identifierTypeCode);
    CPPUNIT_ASSERT_EQUAL(std::string("NORTHVALE"), mrn.assigningFacility.namespaceId);
    CPPUNIT_ASSERT(mrn.checkDigit.empty());
    // The field form reads the first repetition; the second is the SSN.
    CPPUNIT_ASSERT_EQUAL(std::string("MRN100234"), CX::from(m.segment("PID").field(3)).id);
    const CX ssn = CX::from(m.segment("PID").field(3).repetition(1));
    CPPUNIT_ASSERT_EQUAL(std::string("987-65-4320"), ssn.id);
    CPPUNIT_ASSERT_EQUAL(std::string("USSSA"), ssn.assigningAuthority.namespaceId);
    CPPUNIT_ASSERT(ssn.assigningAuthority.universalId.empty());
    CPPUNIT_ASSERT_EQUAL(std::string("SS"), ssn.identifierTypeCode);
    // Check digit, scheme and dates.
    const Message c = Message::parse(corpus("adt_a28_v25.hl7"));
    CPPUNIT_ASSERT_EQUAL(std::string("DL"), CX::from(c.at("PID-3(2)")).identifierTypeCode);
    Message b;
    b.addSegment("PID").setRaw(3, "12345^6^M10^HOSP^MR^^20200101^20301231");
    const CX full = CX::from(b.at("PID-3"));
    CPPUNIT_ASSERT_EQUAL(std::string("6"), full.checkDigit);
    CPPUNIT_ASSERT_EQUAL(std::string("M10"), full.checkDigitScheme);
    CPPUNIT_ASSERT_EQUAL(std::string("20200101"), full.effectiveDate);
    CPPUNIT_ASSERT_EQUAL(std::string("20301231"), full.expirationDate);
  }

  void hdAndEi() {
    const Message m = Message::parse(corpus("oru_r01_lab_v251.hl7"));
    const HD sender = HD::from(m.at("MSH-4"));
    CPPUNIT_ASSERT_EQUAL(std::string("CENTRAL_LAB"), sender.namespaceId);
    CPPUNIT_ASSERT_EQUAL(std::string("2.16.840.1.113883.3.9002"), sender.universalId);
    CPPUNIT_ASSERT_EQUAL(std::string("ISO"), sender.universalIdType);
    CPPUNIT_ASSERT(HD::from(m.at("MSH-3")).universalId.empty());
    const EI placer = EI::from(m.at("ORC-2"));
    CPPUNIT_ASSERT_EQUAL(std::string("ORD-55102"), placer.entityId);
    CPPUNIT_ASSERT_EQUAL(std::string("NORTHVALE"), placer.assigner.namespaceId);
    CPPUNIT_ASSERT_EQUAL(std::string("LAB-55102"), EI::from(m.at("OBR-3")).entityId);
    CPPUNIT_ASSERT_EQUAL(std::string("SP-55102"), EI::from(m.at("SPM-2")).entityId);
  }

  void xpnNames() {
    const Message m = Message::parse(corpus("adt_a01_v251.hl7"));
    const XPN legal = XPN::from(m.at("PID-5(1)"));
    CPPUNIT_ASSERT_EQUAL(std::string("Lindqvist"), legal.family);
    CPPUNIT_ASSERT_EQUAL(std::string("\xC3\x85sa"), legal.given);
    CPPUNIT_ASSERT_EQUAL(std::string("Marie"), legal.middle);
    CPPUNIT_ASSERT_EQUAL(std::string("L"), legal.nameTypeCode);
    const XPN maiden = XPN::from(m.at("PID-5(2)"));
    CPPUNIT_ASSERT_EQUAL(std::string("Berg"), maiden.family);
    CPPUNIT_ASSERT_EQUAL(std::string("M"), maiden.nameTypeCode);
    const XPN v23 = XPN::from(Message::parse(corpus("adt_a04_v23.hl7")).at("PID-5"));
    CPPUNIT_ASSERT_EQUAL(std::string("O'Connell"), v23.family);
    CPPUNIT_ASSERT_EQUAL(std::string("JR"), v23.suffix);
    const XPN ms = XPN::from(Message::parse(corpus("adt_a28_v25.hl7")).at("PID-5"));
    CPPUNIT_ASSERT_EQUAL(std::string("Ms"), ms.prefix);
    // FN with sub-components (surname & own surname prefix) and the later components.
    Message b;
    b.addSegment("PID").setRaw(5, "van der Berg&van der^Jan^P^III^Mr^PhD^L^A^^^G^20200101^20301231^MD");
    const XPN full = XPN::from(b.at("PID-5"));
    CPPUNIT_ASSERT_EQUAL(std::string("van der Berg"), full.family);
    CPPUNIT_ASSERT_EQUAL(std::string("van der"), full.familyPrefix);
    CPPUNIT_ASSERT_EQUAL(std::string("III"), full.suffix);
    CPPUNIT_ASSERT_EQUAL(std::string("PhD"), full.degree);
    CPPUNIT_ASSERT_EQUAL(std::string("A"), full.representationCode);
    CPPUNIT_ASSERT_EQUAL(std::string("G"), full.assemblyOrder);
    CPPUNIT_ASSERT_EQUAL(std::string("20301231"), full.expirationDate);
    CPPUNIT_ASSERT_EQUAL(std::string("MD"), full.professionalSuffix);
  }

  void xadAddresses() {
    const Message m = Message::parse(corpus("adt_a01_v251.hl7"));
    const XAD home = XAD::from(m.at("PID-11(1)"));
    CPPUNIT_ASSERT_EQUAL(std::string("12 Harbour Rd"), home.street);
    CPPUNIT_ASSERT_EQUAL(std::string("Harbour Rd"), home.streetName);
    CPPUNIT_ASSERT_EQUAL(std::string("12"), home.dwellingNumber);
    CPPUNIT_ASSERT_EQUAL(std::string("Apt 4B"), home.otherDesignation);
    CPPUNIT_ASSERT_EQUAL(std::string("Northvale"), home.city);
    CPPUNIT_ASSERT_EQUAL(std::string("NY"), home.state);
    CPPUNIT_ASSERT_EQUAL(std::string("10960"), home.zip);
    CPPUNIT_ASSERT_EQUAL(std::string("USA"), home.country);
    CPPUNIT_ASSERT_EQUAL(std::string("H"), home.addressType);
    CPPUNIT_ASSERT_EQUAL(std::string("087"), home.county);
    const XAD mail = XAD::from(m.at("PID-11(2)"));
    CPPUNIT_ASSERT_EQUAL(std::string("PO Box 77"), mail.street);
    CPPUNIT_ASSERT_EQUAL(std::string("M"), mail.addressType);
    CPPUNIT_ASSERT(mail.otherDesignation.empty());
    // Escaped delimiter inside the street (v2.4 plain-text street).
    CPPUNIT_ASSERT_EQUAL(std::string("221B Elm St|Unit 3"), XAD::from(Message::parse(corpus("adt_a08_v24.hl7")).at("PID-11")).street);
  }

  void xtnStructuredAndLegacy() {
    const Message m = Message::parse(corpus("adt_a01_v251.hl7"));
    const XTN home = XTN::from(m.at("PID-13(1)"));
    CPPUNIT_ASSERT(!home.fromLegacy);
    CPPUNIT_ASSERT_EQUAL(std::string("PRN"), home.useCode);
    CPPUNIT_ASSERT_EQUAL(std::string("PH"), home.equipmentType);
    CPPUNIT_ASSERT_EQUAL(std::string("1"), home.countryCode);
    CPPUNIT_ASSERT_EQUAL(std::string("845"), home.areaCode);
    CPPUNIT_ASSERT_EQUAL(std::string("5550142"), home.localNumber);
    CPPUNIT_ASSERT_EQUAL(std::string("+1 (845) 5550142"), home.contactValue());
    CPPUNIT_ASSERT(!home.isEmail());
    const XTN email = XTN::from(m.at("PID-13(2)"));
    CPPUNIT_ASSERT(email.isEmail());
    CPPUNIT_ASSERT_EQUAL(std::string("NET"), email.useCode);
    CPPUNIT_ASSERT_EQUAL(std::string("asa.lindqvist@example.org"), email.contactValue());
    const XTN work = XTN::from(m.at("PID-14"));
    CPPUNIT_ASSERT_EQUAL(std::string("221"), work.extension);
    CPPUNIT_ASSERT_EQUAL(std::string("+1 (845) 5550199 ext. 221"), work.contactValue());

    // v2.3: everything in component 1.
    const Message old = Message::parse(corpus("adt_a04_v23.hl7"));
    const XTN legacy = XTN::from(old.at("PID-13"));
    CPPUNIT_ASSERT(legacy.fromLegacy);
    CPPUNIT_ASSERT_EQUAL(std::string("(503)555-0187X12C evenings only"), legacy.legacyNumber);
    CPPUNIT_ASSERT_EQUAL(std::string("503"), legacy.areaCode);
    CPPUNIT_ASSERT_EQUAL(std::string("555-0187"), legacy.localNumber);
    CPPUNIT_ASSERT_EQUAL(std::string("12"), legacy.extension);
    CPPUNIT_ASSERT_EQUAL(std::string("evenings only"), legacy.anyText);
    CPPUNIT_ASSERT_EQUAL(std::string("(503) 555-0187 ext. 12"), legacy.contactValue());
    const XTN withCountry = XTN::from(old.at("PID-14"));
    CPPUNIT_ASSERT_EQUAL(std::string("1"), withCountry.countryCode);
    CPPUNIT_ASSERT_EQUAL(std::string("+1 (503) 555-0100"), withCountry.contactValue());
    CPPUNIT_ASSERT_EQUAL(std::string("555-0188"), XTN::from(old.at("NK1-5")).localNumber);

    // v2.6 unformatted number (component 12) and v2.7 without component 1.
    const XTN v26 = XTN::from(Message::parse(corpus("adt_a31_v26.hl7")).at("PID-13"));
    CPPUNIT_ASSERT_EQUAL(std::string("+12695550177"), v26.unformatted);
    CPPUNIT_ASSERT_EQUAL(std::string("CP"), v26.equipmentType);
    Message b;
    b.addSegment("PID").setRaw(13, "^PRN^PH^^^^^^^^^+442079460000");
    CPPUNIT_ASSERT_EQUAL(std::string("+442079460000"), XTN::from(b.at("PID-13")).contactValue());
    b.segment("PID").setRaw(13, "^NET^X.400^someone@example.net");
    CPPUNIT_ASSERT_EQUAL(std::string("someone@example.net"), XTN::from(b.at("PID-13")).contactValue());
  }

  void cweAndCe() {
    const Message m = Message::parse(corpus("oru_r01_lab_v251.hl7"));
    const CWE cwe = CWE::from(m.at("OBX(6)-5"));
    CPPUNIT_ASSERT_EQUAL(std::string("3092008"), cwe.code);
    CPPUNIT_ASSERT_EQUAL(std::string("Staphylococcus aureus"), cwe.text);
    CPPUNIT_ASSERT_EQUAL(std::string("SCT"), cwe.system);
    CPPUNIT_ASSERT_EQUAL(std::string("STAU"), cwe.altCode);
    CPPUNIT_ASSERT_EQUAL(std::string("Staph aureus"), cwe.altText);
    CPPUNIT_ASSERT_EQUAL(std::string("L"), cwe.altSystem);
    CPPUNIT_ASSERT_EQUAL(std::string("2024-09"), cwe.systemVersion);
    CPPUNIT_ASSERT_EQUAL(std::string("v3"), cwe.altSystemVersion);
    CPPUNIT_ASSERT_EQUAL(std::string("S. aureus isolated"), cwe.originalText);
    const CE ce = CE::from(m.at("OBX(5)-5"));
    CPPUNIT_ASSERT_EQUAL(std::string("260385009"), ce.code);
    CPPUNIT_ASSERT_EQUAL(std::string("Negative"), ce.text);
    CPPUNIT_ASSERT(ce.altCode.empty());
    const CWE loinc = CWE::from(m.at("OBX(1)-3"));
    CPPUNIT_ASSERT_EQUAL(std::string("2345-7"), loinc.code);
    CPPUNIT_ASSERT_EQUAL(std::string("LN"), loinc.system);
    // A text-only CE (v2.3 AL1-3 "^Sulfa drugs").
    const CE textOnly = CE::from(Message::parse(corpus("adt_a04_v23.hl7")).at("AL1-3"));
    CPPUNIT_ASSERT(textOnly.code.empty());
    CPPUNIT_ASSERT_EQUAL(std::string("Sulfa drugs"), textOnly.text);
    CPPUNIT_ASSERT(!textOnly.empty());
  }

  void snStructuredNumbers() {
    const Message m = Message::parse(corpus("oru_r01_lab_v251.hl7"));
    const SN gt = SN::from(m.at("OBX(3)-5"));
    CPPUNIT_ASSERT_EQUAL(std::string(">"), gt.comparator);
    CPPUNIT_ASSERT_EQUAL(std::string("60"), gt.num1);
    CPPUNIT_ASSERT(gt.valid());
    const SN ratio = SN::from(m.at("OBX(7)-5"));
    CPPUNIT_ASSERT_EQUAL(std::string("1"), ratio.num1);
    CPPUNIT_ASSERT_EQUAL(std::string(":"), ratio.separator);
    CPPUNIT_ASSERT_EQUAL(std::string("160"), ratio.num2);
    CPPUNIT_ASSERT(ratio.valid());
    const SN range = SN::from(m.at("OBX(10)-5"));
    CPPUNIT_ASSERT_EQUAL(std::string("-"), range.separator);
    CPPUNIT_ASSERT_EQUAL(std::string("5"), range.num2);
    CPPUNIT_ASSERT(range.valid());
    CPPUNIT_ASSERT((SN{"", "3", "+", ""}.valid()));
    CPPUNIT_ASSERT((SN{"<=", "-0.5", "", ""}.valid()));
    CPPUNIT_ASSERT((SN{"<>", "2", "/", "3"}.valid()));
    CPPUNIT_ASSERT(!(SN{"", "abc", "", ""}.valid()));
    CPPUNIT_ASSERT(!(SN{"", "2", "-", ""}.valid()));
    CPPUNIT_ASSERT(!(SN{">>", "1", "", ""}.valid()));
    CPPUNIT_ASSERT(!(SN{"", "1", "", "2"}.valid()));
    CPPUNIT_ASSERT(!(SN{"", "1", "*", "2"}.valid()));
    CPPUNIT_ASSERT(!(SN{">", "", "", ""}.valid()));
  }

  void nmNumbers() {
    const Message m = Message::parse(corpus("oru_r01_lab_v251.hl7"));
    CPPUNIT_ASSERT_EQUAL(std::string("105.0"), toDecimal(m.get("OBX(1)-5")).value());
    CPPUNIT_ASSERT_EQUAL(std::string("0.92"), toDecimal(m.get("OBX(2)-5")).value());
    CPPUNIT_ASSERT_EQUAL(std::string("-0.5"), toDecimal("-.5").value());
    CPPUNIT_ASSERT_EQUAL(std::string("3"), toDecimal("3.").value());
    CPPUNIT_ASSERT_EQUAL(std::string("7"), toDecimal("007").value());
    CPPUNIT_ASSERT_EQUAL(std::string("0"), toDecimal("0").value());
    CPPUNIT_ASSERT_EQUAL(std::string("0.000"), toDecimal("000.000").value());
    CPPUNIT_ASSERT_EQUAL(std::string("12.5"), toDecimal(" 12.5 ").value());
    for (const char* bad : {"", "+", "-", ".", "1e5", "1.2.3", "12a", "--1", "1,5", "0x10", "+-1"}) {
      CPPUNIT_ASSERT_MESSAGE(bad, !toDecimal(bad).has_value());
      CPPUNIT_ASSERT_MESSAGE(bad, !isNumeric(bad));
    }
  }

  void plAndXcn() {
    const Message m = Message::parse(corpus("adt_a01_v251.hl7"));
    const PL loc = PL::from(m.at("PV1-3"));
    CPPUNIT_ASSERT_EQUAL(std::string("3W"), loc.pointOfCare);
    CPPUNIT_ASSERT_EQUAL(std::string("312"), loc.room);
    CPPUNIT_ASSERT_EQUAL(std::string("B"), loc.bed);
    CPPUNIT_ASSERT_EQUAL(std::string("NORTHVALE"), loc.facility.namespaceId);
    CPPUNIT_ASSERT_EQUAL(std::string("N"), loc.locationType);
    CPPUNIT_ASSERT_EQUAL(std::string("MAIN"), loc.building);
    CPPUNIT_ASSERT_EQUAL(std::string("3"), loc.floor);
    const XCN doc = XCN::from(m.at("PV1-7"));
    CPPUNIT_ASSERT_EQUAL(std::string("4455667788"), doc.id);
    CPPUNIT_ASSERT_EQUAL(std::string("Abernathy"), doc.family);
    CPPUNIT_ASSERT_EQUAL(std::string("Paul"), doc.given);
    CPPUNIT_ASSERT_EQUAL(std::string("R"), doc.middle);
    CPPUNIT_ASSERT_EQUAL(std::string("Dr"), doc.prefix);
    CPPUNIT_ASSERT_EQUAL(std::string("MD"), doc.degree);
    CPPUNIT_ASSERT_EQUAL(std::string("NPI"), doc.assigningAuthority.namespaceId);
    CPPUNIT_ASSERT_EQUAL(std::string("L"), doc.nameTypeCode);
    CPPUNIT_ASSERT_EQUAL(std::string("NPI"), doc.identifierTypeCode);
    // An XCN nested in a component (v2.3 OBR-32, NDL): its parts are sub-components.
    const Message rad = Message::parse(corpus("oru_r01_text_v23.hl7"));
    const XCN reader = XCN::from(rad.at("OBR-32.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("4455990011"), reader.id);
    CPPUNIT_ASSERT_EQUAL(std::string("Ekwueme"), reader.family);
    CPPUNIT_ASSERT_EQUAL(std::string("Adaobi"), reader.given);
    CPPUNIT_ASSERT_EQUAL(std::string("Dr"), reader.prefix);
  }

  void dateTimePrecisions() {
    using P = DateTime::Precision;
    struct Case {
      const char* text;
      P precision;
      int y, mo, d, h, mi, s;
      const char* fraction;
    };
    const Case cases[] = {
        {"2025", P::Year, 2025, 0, 0, 0, 0, 0, ""},
        {"202503", P::Month, 2025, 3, 0, 0, 0, 0, ""},
        {"20250314", P::Day, 2025, 3, 14, 0, 0, 0, ""},
        {"2025031412", P::Hour, 2025, 3, 14, 12, 0, 0, ""},
        {"202503141215", P::Minute, 2025, 3, 14, 12, 15, 0, ""},
        {"20250314121530", P::Second, 2025, 3, 14, 12, 15, 30, ""},
        {"20250314121530.2", P::FractionalSecond, 2025, 3, 14, 12, 15, 30, "2"},
        {"20250314121530.1234", P::FractionalSecond, 2025, 3, 14, 12, 15, 30, "1234"},
    };
    for (const Case& c : cases) {
      const auto dt = DateTime::parse(c.text);
      CPPUNIT_ASSERT_MESSAGE(c.text, dt.has_value());
      CPPUNIT_ASSERT_MESSAGE(c.text, dt->precision == c.precision);
      CPPUNIT_ASSERT_EQUAL(c.y, dt->year);
      CPPUNIT_ASSERT_EQUAL(c.mo, dt->month);
      CPPUNIT_ASSERT_EQUAL(c.d, dt->day);
      CPPUNIT_ASSERT_EQUAL(c.h, dt->hour);
      CPPUNIT_ASSERT_EQUAL(c.mi, dt->minute);
      CPPUNIT_ASSERT_EQUAL(c.s, dt->second);
      CPPUNIT_ASSERT_EQUAL(std::string(c.fraction), dt->fraction);
      CPPUNIT_ASSERT(!dt->offsetMinutes.has_value());
      // The same value with an offset at every precision.
      const auto withOffset = DateTime::parse(std::string(c.text) + "-0330");
      CPPUNIT_ASSERT_MESSAGE(c.text, withOffset.has_value());
      CPPUNIT_ASSERT_EQUAL(-210, *withOffset->offsetMinutes);
      CPPUNIT_ASSERT(withOffset->precision == c.precision);
    }
    CPPUNIT_ASSERT_EQUAL(0, *DateTime::parse("20250314121530+0000")->offsetMinutes);
    CPPUNIT_ASSERT_EQUAL(840, *DateTime::parse("20250314121530+1400")->offsetMinutes);
    CPPUNIT_ASSERT(DateTime::parse("20240229").has_value());  // leap day
    CPPUNIT_ASSERT(DateTime::parse("20000229").has_value());

    const Message m = Message::parse(corpus("oru_r01_lab_v251.hl7"));
    const auto ts = DateTime::from(m.at("MSH-7"));
    CPPUNIT_ASSERT(ts.has_value());
    CPPUNIT_ASSERT_EQUAL(std::string("25"), ts->fraction);
    CPPUNIT_ASSERT_EQUAL(60, *ts->offsetMinutes);
    // TS with the (deprecated) degree of precision component.
    Message b;
    b.addSegment("OBX").setRaw(14, "202503141215^M");
    const auto dp = DateTime::from(b.at("OBX-14"));
    CPPUNIT_ASSERT_EQUAL(std::string("M"), dp->degreeOfPrecision);
    CPPUNIT_ASSERT(dp->precision == DateTime::Precision::Minute);
  }

  void dateTimeToFhir() {
    auto fhir = [](const char* v, std::optional<int> assumed = std::nullopt) {
      return DateTime::parse(v)->toFhirDateTime(assumed);
    };
    CPPUNIT_ASSERT_EQUAL(std::string("2025"), fhir("2025").value());
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03"), fhir("202503").value());
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-14"), fhir("20250314").value());
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-14"), fhir("20250314+0100").value());  // dates carry no zone
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-14T12:00:00+01:00"), fhir("2025031412+0100").value());
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-14T12:15:00-05:00"), fhir("202503141215-0500").value());
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-14T12:15:30+00:00"), fhir("20250314121530+0000").value());
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-14T12:15:30.25+01:00"), fhir("20250314121530.25+0100").value());
    CPPUNIT_ASSERT_EQUAL(std::string("2025-09-01T10:10:10.1234-03:30"), fhir("20250901101010.1234-0330").value());
    // A time without a zone needs the sender's zone.
    CPPUNIT_ASSERT(!fhir("20250314121530").has_value());
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-14T12:15:30+01:00"), fhir("20250314121530", 60).value());
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-14T12:15:30-05:00"), fhir("20250314121530-0500", 60).value());  // own offset wins
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03-14"), DateTime::parse("20250314121530.5-0500")->toFhirDate());
    CPPUNIT_ASSERT_EQUAL(std::string("2025-03"), DateTime::parse("202503")->toFhirDate());
    CPPUNIT_ASSERT_EQUAL(std::string("1985"), DateTime::from(Message::parse(corpus("oru_r01_v28.hl7")).at("PID-7"))->toFhirDate());
  }

  void invalidDateTimes() {
    for (const char* bad : {"", "202", "20250", "2025031", "20250230", "20230229", "19000229", "20251301", "20250001",
                            "20250100", "2025031424", "202503141260", "20250314121560", "20250314.5", "2025031412.5",
                            "20250314121530.", "20250314121530.12345", "20250314+01", "20250314+01000",
                            "20250314+1500", "20250314-1300", "20250314+0160", "2025-03-14", "20250314T1215",
                            "0000", "20250314121530Z", " 20250314", "2025031412153"}) {
      CPPUNIT_ASSERT_MESSAGE(bad, !DateTime::parse(bad).has_value());
    }
  }

  void readersTolerateAbsentAndNull() {
    Message b;
    Segment& pid = b.addSegment("PID");
    pid.setRaw(5, "\"\"");
    const XPN nullName = XPN::from(b.at("PID-5"));
    CPPUNIT_ASSERT(nullName.family.empty());
    CPPUNIT_ASSERT(b.at("PID-5").isNull());
    CPPUNIT_ASSERT(CX::from(b.at("PID-3")).id.empty());
    CPPUNIT_ASSERT(CWE::from(b.at("PID-99")).empty());
    CPPUNIT_ASSERT(HD::from(b.at("MSH-4")).empty());
    CPPUNIT_ASSERT(!DateTime::from(b.at("PID-7")).has_value());
    CPPUNIT_ASSERT(XTN::from(b.at("PID-13")).contactValue().empty());
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(TypesTest);
