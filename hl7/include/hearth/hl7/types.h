#pragma once
// Typed readers for the HL7 v2 data types the FHIR mapping needs.
//
// Each reader takes an Element holding one value of the type: a field (its first repetition is
// read), a repetition, or -- for types nested in a component, such as the HD in CX-4 -- a
// component, whose sub-components are then the type's parts (Element::part). Readers never
// throw: absent parts are empty strings; all strings are decoded (escapes resolved, UTF-8).
// Component numbers in the comments are the standard's, across v2.3 ... v2.8.
#include <optional>
#include <string>
#include <string_view>

#include "hearth/hl7/message.h"

namespace hearth::hl7 {

// HD hierarchic designator: 1 namespace id, 2 universal id, 3 universal id type.
struct HD {
  std::string namespaceId, universalId, universalIdType;
  bool empty() const { return namespaceId.empty() && universalId.empty() && universalIdType.empty(); }
  static HD from(const Element& e);
};

// EI entity identifier: 1 entity id, 2 namespace id, 3 universal id, 4 universal id type.
struct EI {
  std::string entityId;
  HD assigner;  // components 2-4
  static EI from(const Element& e);
};

// CX extended composite id: 1 id, 2 check digit, 3 check digit scheme, 4 assigning authority (HD),
// 5 identifier type code, 6 assigning facility (HD), 7 effective date, 8 expiration date.
struct CX {
  std::string id, checkDigit, checkDigitScheme;
  HD assigningAuthority;
  std::string identifierTypeCode;
  HD assigningFacility;
  std::string effectiveDate, expirationDate;
  static CX from(const Element& e);
};

// CWE / CE coded element: 1 identifier, 2 text, 3 coding system, 4-6 alternate triplet,
// 7 coding system version, 8 alternate version, 9 original text; v2.7+ second alternate 10-12.
struct CWE {
  std::string code, text, system;
  std::string altCode, altText, altSystem;
  std::string systemVersion, altSystemVersion, originalText;
  std::string alt2Code, alt2Text, alt2System;
  bool empty() const { return code.empty() && text.empty() && altCode.empty() && originalText.empty(); }
  static CWE from(const Element& e);
};
using CE = CWE;  // CE is the first six components of CWE

// XPN person name: 1 family name (FN: surname&own prefix&own surname&partner prefix&partner
// surname), 2 given, 3 second/further given names or initials, 4 suffix, 5 prefix, 6 degree,
// 7 name type code, 8 representation code, 11 assembly order, 12/13 effective/expiration date,
// 14 professional suffix.
struct XPN {
  std::string family, familyPrefix, given, middle, suffix, prefix, degree, nameTypeCode,
      representationCode, assemblyOrder, effectiveDate, expirationDate, professionalSuffix;
  static XPN from(const Element& e);
};

// XAD address: 1 street (SAD: street or mailing address&street name&dwelling number; plain text
// before v2.5), 2 other designation, 3 city, 4 state, 5 zip, 6 country, 7 address type,
// 8 other geographic designation, 9 county/parish, 10 census tract, 11 representation code,
// 13/14 effective/expiration date.
struct XAD {
  std::string street, streetName, dwellingNumber, otherDesignation, city, state, zip, country,
      addressType, otherGeographic, county, censusTract, representationCode, effectiveDate,
      expirationDate;
  static XAD from(const Element& e);
};

// XTN telecom number. v2.3 form: component 1 holds "[NNN] [(999)]999-9999 [X99999] [B99999]
// [C any text]"; v2.5+ adds structured components 5-12 (component 1 withdrawn in v2.7).
// 2 use code (table 0201: PRN, WPN, NET, ...), 3 equipment type (table 0202: PH, FX, CP, Internet,
// X.400, ...), 4 email, 5 country code, 6 area/city code, 7 local number, 8 extension, 9 any text,
// 10 extension prefix, 11 speed dial, 12 unformatted number.
struct XTN {
  std::string legacyNumber;  // component 1 as sent
  std::string useCode, equipmentType, email, countryCode, areaCode, localNumber, extension, anyText,
      extensionPrefix, speedDial, unformatted;
  // When components 5-7 are empty, country/area/local/extension/anyText are filled from the v2.3
  // form of component 1 and this is true.
  bool fromLegacy = false;
  bool isEmail() const;
  // The contact value a FHIR ContactPoint would carry: the email for Internet/X.400 equipment
  // (or when only an email is present), else "+CC (AAA) LLL ext. EEE" from the parts present,
  // else the unformatted number, else component 1 verbatim.
  std::string contactValue() const;
  static XTN from(const Element& e);
};

// XCN extended composite id and name for persons: 1 id, 2 family (FN), 3 given, 4 middle,
// 5 suffix, 6 prefix, 7 degree, 8 source table, 9 assigning authority (HD), 10 name type,
// 11 check digit, 12 check digit scheme, 13 identifier type code, 14 assigning facility (HD),
// 21 professional suffix.
struct XCN {
  std::string id, family, given, middle, suffix, prefix, degree, sourceTable;
  HD assigningAuthority;
  std::string nameTypeCode, checkDigit, checkDigitScheme, identifierTypeCode;
  HD assigningFacility;
  std::string professionalSuffix;
  static XCN from(const Element& e);
};

// PL person location: 1 point of care, 2 room, 3 bed (each HD from v2.5, the namespace id is
// read), 4 facility (HD), 5 location status, 6 person location type, 7 building, 8 floor,
// 9 description, 10 comprehensive location id (EI), 11 assigning authority (HD).
struct PL {
  std::string pointOfCare, room, bed;
  HD facility;
  std::string status, locationType, building, floor, description;
  EI comprehensiveId;
  HD assigningAuthority;
  static PL from(const Element& e);
};

// NM numeric: optional sign, digits, optional decimal point ("+007.50", "-.5", "3.").
bool isNumeric(std::string_view nm);
// The FHIR decimal spelling of an NM value ("+007.50" -> "7.50", "-.5" -> "-0.5", "3." -> "3"),
// trailing zeros kept (they carry precision); nullopt when not numeric.
std::optional<std::string> toDecimal(std::string_view nm);

// SN structured numeric: 1 comparator (> < >= <= = <>), 2 num1, 3 separator/suffix (- + / . :),
// 4 num2. "<^5" is "less than 5", "^1^:^128" a ratio, "^2^-^5" a range, "^3^+" "3 or more".
struct SN {
  std::string comparator, num1, separator, num2;
  // Comparator and separator from the tables, numbers numeric, num2 present exactly when a
  // range/ratio separator needs it.
  bool valid() const;
  static SN from(const Element& e);
};

// DTM (and TS component 1, DT): YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ].
struct DateTime {
  enum class Precision { Year, Month, Day, Hour, Minute, Second, FractionalSecond };
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  std::string fraction;               // the 1-4 digits after '.', as sent
  Precision precision = Precision::Year;
  std::optional<int> offsetMinutes;   // +/-ZZZZ as minutes east of UTC; nullopt when absent
  std::string degreeOfPrecision;      // TS component 2 (deprecated), when read through from()

  // Strict: digit counts, calendar ranges (leap years), offset within -12:00..+14:00.
  static std::optional<DateTime> parse(std::string_view dtm);
  // TS/DTM element: component 1 (and 2, degree of precision, for TS).
  static std::optional<DateTime> from(const Element& e);

  // FHIR dateTime: "2024", "2024-03", "2024-03-12", or with a time "2024-03-12T10:15:30.25+01:00".
  // Hour and minute precision are padded to seconds (FHIR has no such precision). A time needs a
  // zone in FHIR: the value's own offset, else assumedOffsetMinutes (the sender's zone); with
  // neither the result is nullopt. An offset on a date-only value is dropped (FHIR dates have
  // no zone).
  std::optional<std::string> toFhirDateTime(std::optional<int> assumedOffsetMinutes = std::nullopt) const;
  // FHIR date at the value's precision, capped at day: "2024", "2024-03", "2024-03-12".
  std::string toFhirDate() const;
};

}  // namespace hearth::hl7
