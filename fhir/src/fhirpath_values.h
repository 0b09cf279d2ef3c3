#pragma once
// Value semantics of FHIRPath, independent of JSON and of the expression tree: exact decimal
// arithmetic, partial date/time parsing, formatting, comparison and calendar arithmetic, and the
// UCUM subset that quantity comparison needs. Pure functions; no shared state.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "hearth/fhir/fhirpath.h"

namespace hearth::fhir::fhirpath {

using Decimal = FhirPathDecimal;
using DateTime = FhirPathDateTime;
using Precision = FhirPathDateTime::Precision;

// ---- decimals ------------------------------------------------------------------------------
// Arithmetic returns nullopt on overflow of the 38-digit mantissa (the caller reports it).
std::optional<Decimal> decAdd(const Decimal& a, const Decimal& b);
std::optional<Decimal> decSub(const Decimal& a, const Decimal& b);
std::optional<Decimal> decMul(const Decimal& a, const Decimal& b);
// a / b with at least `minScale` decimal places (trailing zeros trimmed); nullopt if b is 0.
std::optional<Decimal> decDiv(const Decimal& a, const Decimal& b, int32_t minScale = 8);
int decCompare(const Decimal& a, const Decimal& b);  // -1, 0, 1
Decimal decRound(const Decimal& a, int32_t scale);   // half away from zero; never raises scale
Decimal decRescale(const Decimal& a, int32_t scale); // exact widening, or rounding narrowing
Decimal decTrim(const Decimal& a, int32_t minScale = 0);  // drops trailing fractional zeros
Decimal decFloor(const Decimal& a, int32_t scale);
Decimal decCeil(const Decimal& a, int32_t scale);
Decimal decTruncate(const Decimal& a, int32_t scale);
Decimal decNegate(const Decimal& a);
bool decIsInteger(const Decimal& a);
std::optional<int64_t> decToInt64(const Decimal& a);  // integral part, nullopt if out of range
// Significant digits rounding (used when a conversion factor was inexact).
Decimal decRoundSignificant(const Decimal& a, int digits);

// ---- dates and times -----------------------------------------------------------------------
// Parses a date / dateTime ("2015", "2015-02-04T14:34:28.123+10:00", "2015-02T" when
// `allowTrailingT`) or, with `time`, a time ("14:34:28.123"). `consumed` (if given) receives the
// number of characters used; without it the whole text must be consumed.
// The kind is Date when no 'T' was present, else DateTime.
std::optional<DateTime> parseDateTime(std::string_view text, FhirPathKind& kind, bool allowTrailingT,
                                      size_t* consumed = nullptr);
std::optional<DateTime> parseTime(std::string_view text, size_t* consumed = nullptr);
// Compares two values of kinds Date/DateTime (mixed allowed) or Time/Time. nullopt when the
// result is unknown (precisions differ where the values agree, or only one has an offset).
std::optional<int> compareDateTime(const DateTime& a, const DateTime& b);
// Equivalence: same precision and same instant.
bool equivalentDateTime(const DateTime& a, const DateTime& b);
// Adds `amount` whole units of a calendar unit; nullopt when the unit cannot apply to the value.
enum class CalendarUnit { Year, Month, Week, Day, Hour, Minute, Second, Millisecond };
std::optional<DateTime> addToDateTime(const DateTime& value, FhirPathKind kind, CalendarUnit unit, int64_t amount);
// The number of digits precision() reports for a date/time value.
int dateTimePrecisionDigits(const DateTime& value, FhirPathKind kind);
// low/highBoundary for dates and times; nullopt for precisions that do not apply.
std::optional<DateTime> dateTimeBoundary(const DateTime& value, FhirPathKind kind, int digits, bool high,
                                         FhirPathKind& resultKind);

// ---- quantities ----------------------------------------------------------------------------
// Calendar duration words (year(s) ... millisecond(s)); nullopt for anything else.
std::optional<CalendarUnit> calendarWord(std::string_view word);
// A date arithmetic unit: calendar words (quoted or not) and the UCUM definite units wk d h min
// s ms; nullopt for anything else (UCUM 'a' and 'mo' are not calendar durations).
std::optional<CalendarUnit> arithmeticUnit(std::string_view unit, bool calendarWord);

// A unit reduced to UCUM base dimensions: value_in_base = value * factor.
struct UnitDef {
  Decimal factor{1, 0};
  int8_t dims[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  bool exact = true;     // factor is exact (no inexact division went into it)
  bool sameDims(const UnitDef& o) const;
};
// Parses a UCUM unit expression (or, with `calendar`, a calendar word). nullopt if unknown.
std::optional<UnitDef> parseUnit(std::string_view unit, bool calendar);

struct QuantityValue {
  Decimal value;
  std::string_view unit;
  bool calendar = false;
};
// Converts `q`'s value to the unit of `target`; nullopt if the units are not comparable.
std::optional<Decimal> convertQuantity(const QuantityValue& q, const QuantityValue& target);
std::string quantityToString(const QuantityValue& q);

}  // namespace hearth::fhir::fhirpath
