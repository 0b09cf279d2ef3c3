#pragma once
// Exact decimal arithmetic for billing (invoice totals, price components, taxes, discounts).
//
// FHIR carries money as a JSON decimal whose written precision is significant ("10.50" is not
// "10.5" for display, and 0.1 + 0.2 must be 0.3 to the cent). Decimal keeps a signed integer
// coefficient and a scale (digits after the point): value = coefficient / 10^scale. Addition and
// multiplication are exact; rounding happens only where the caller asks (round()), with the mode
// it names. Every operation that would leave the 38-digit range throws std::overflow_error; bad
// text throws std::invalid_argument. Values are immutable; the type is cheap to copy and
// thread-safe as a value.
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

namespace hearth::workflows {

enum class Rounding {
  HalfUp,    // 0.125 -> 0.13, -0.125 -> -0.13 (away from zero on ties; commercial rounding)
  HalfEven,  // 0.125 -> 0.12, 0.135 -> 0.14 (banker's rounding; unbiased over many lines)
  Down,      // toward zero (truncation)
};

class Decimal {
 public:
  static constexpr int kMaxScale = 18;  // digits after the point a value may carry

  Decimal() = default;  // 0
  static Decimal fromInt(int64_t v) { return Decimal(v, 0); }
  // Parses FHIR decimal text: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? (exponents are
  // folded into the scale; leading zeros like "01" are refused as FHIR does). The written scale
  // is kept: parse("1.50").toString() == "1.50".
  static Decimal parse(std::string_view text);
  // As parse(), but returns false instead of throwing.
  static bool tryParse(std::string_view text, Decimal& out);

  // Plain decimal text with exactly scale() digits after the point (no exponent), valid as a
  // JSON number and as a FHIR decimal.
  std::string toString() const;
  int scale() const { return scale_; }
  bool isZero() const { return coeff_ == 0; }
  bool isNegative() const { return coeff_ < 0; }

  Decimal operator-() const;
  friend Decimal operator+(const Decimal& a, const Decimal& b);
  friend Decimal operator-(const Decimal& a, const Decimal& b);
  // Exact product (scale = sum of scales, capped by kMaxScale with HalfEven rounding beyond it).
  friend Decimal operator*(const Decimal& a, const Decimal& b);
  Decimal& operator+=(const Decimal& o) { return *this = *this + o; }
  Decimal& operator-=(const Decimal& o) { return *this = *this - o; }

  // Rounded to `digits` after the point (0..kMaxScale); the result has exactly that scale, so
  // round(2) of "3" is "3.00".
  Decimal round(int digits, Rounding mode = Rounding::HalfUp) const;
  // a / b rounded to `digits` after the point. Throws std::domain_error when b is zero.
  static Decimal divide(const Decimal& a, const Decimal& b, int digits, Rounding mode = Rounding::HalfUp);

  // Numeric comparison: 1.5 == 1.50.
  friend bool operator==(const Decimal& a, const Decimal& b) { return compare(a, b) == 0; }
  friend std::strong_ordering operator<=>(const Decimal& a, const Decimal& b) { return compare(a, b) <=> 0; }

 private:
  Decimal(__int128 coeff, int scale) : coeff_(coeff), scale_(scale) {}
  static int compare(const Decimal& a, const Decimal& b);
  // coeff scaled up to `scale` (>= scale_); overflow_error if it does not fit.
  __int128 at(int scale) const;

  __int128 coeff_ = 0;
  int scale_ = 0;
};

}  // namespace hearth::workflows
