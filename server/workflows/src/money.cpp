#include "hearth/workflows/money.h"

#include <stdexcept>

namespace hearth::workflows {

namespace {

using i128 = __int128;

// Largest magnitude a coefficient may have: 38 nines, so every value prints in 38 digits and the
// sum of two of them still fits in 128 bits before the range check.
constexpr i128 tenPow(int n) {
  i128 v = 1;
  for (int i = 0; i < n; ++i) v *= 10;
  return v;
}
constexpr i128 kLimit = tenPow(38) - 1;

i128 checked(i128 v) {
  if (v > kLimit || v < -kLimit) throw std::overflow_error("decimal value out of range (more than 38 digits)");
  return v;
}

i128 mulChecked(i128 a, i128 b) {
  i128 r;
  if (__builtin_mul_overflow(a, b, &r)) throw std::overflow_error("decimal value out of range (more than 38 digits)");
  return checked(r);
}

i128 abs128(i128 v) { return v < 0 ? -v : v; }

// q rounded by the discarded part: `twiceRem` = 2*|remainder| compared with `divisor` (> 0)
// decides the tie; sign is the sign of the exact value.
i128 applyRounding(i128 q, i128 twiceRem, i128 divisor, bool negative, Rounding mode) {
  if (twiceRem == 0 || mode == Rounding::Down) return q;
  bool away = false;
  if (twiceRem > divisor) {
    away = true;
  } else if (twiceRem == divisor) {
    away = mode == Rounding::HalfUp || (abs128(q) % 2 == 1);
  }
  if (!away) return q;
  return negative ? q - 1 : q + 1;
}

// coeff / 10^drop, rounded.
i128 dropDigits(i128 coeff, int drop, Rounding mode) {
  if (drop <= 0) return coeff;
  if (drop > 38) return 0;  // every digit is dropped; |coeff| < 10^38 < half of 10^39
  const i128 p = tenPow(drop);
  const i128 q = coeff / p, r = coeff % p;
  return applyRounding(q, abs128(r) * 2, p, coeff < 0, mode);
}

}  // namespace

Decimal Decimal::parse(std::string_view text) {
  Decimal d;
  if (!tryParse(text, d)) throw std::invalid_argument("not a valid decimal");
  return d;
}

bool Decimal::tryParse(std::string_view s, Decimal& out) {
  size_t i = 0;
  const bool negative = i < s.size() && s[i] == '-';
  if (negative) ++i;
  const size_t intStart = i;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  const size_t intLen = i - intStart;
  if (intLen == 0 || (intLen > 1 && s[intStart] == '0')) return false;
  size_t fracStart = i, fracLen = 0;
  if (i < s.size() && s[i] == '.') {
    fracStart = ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    fracLen = i - fracStart;
    if (fracLen == 0) return false;
  }
  long exponent = 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool expNegative = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) expNegative = s[i++] == '-';
    const size_t expStart = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (exponent > 1000) return false;
      exponent = exponent * 10 + (s[i++] - '0');
    }
    if (i == expStart) return false;
    if (expNegative) exponent = -exponent;
  }
  if (i != s.size()) return false;

  // Significant digits: leading zeros carry no value and do not count toward the 38.
  i128 coeff = 0;
  int digits = 0;
  auto take = [&](char c) {
    if (digits > 0 || c != '0') ++digits;
    if (digits > 38) return false;
    coeff = coeff * 10 + (c - '0');
    return true;
  };
  for (size_t k = intStart; k < intStart + intLen; ++k)
    if (!take(s[k])) return false;
  for (size_t k = fracStart; k < fracStart + fracLen; ++k)
    if (!take(s[k])) return false;
  long scale = static_cast<long>(fracLen) - exponent;
  try {
    if (scale < 0) {
      if (scale < -38) {
        if (coeff != 0) return false;
        scale = 0;
      } else {
        coeff = mulChecked(coeff, tenPow(static_cast<int>(-scale)));
        scale = 0;
      }
    }
  } catch (const std::overflow_error&) {
    return false;
  }
  if (scale > kMaxScale) return false;  // no money amount or rate needs more than 18 decimals
  out = Decimal(negative ? -coeff : coeff, static_cast<int>(scale));
  return true;
}

std::string Decimal::toString() const {
  i128 v = abs128(coeff_);
  std::string digits;
  do {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  } while (v != 0);
  if (digits.size() <= static_cast<size_t>(scale_)) digits.insert(0, static_cast<size_t>(scale_) + 1 - digits.size(), '0');
  if (scale_ > 0) digits.insert(digits.size() - static_cast<size_t>(scale_), 1, '.');
  if (coeff_ < 0) digits.insert(digits.begin(), '-');
  return digits;
}

i128 Decimal::at(int scale) const { return scale == scale_ ? coeff_ : mulChecked(coeff_, tenPow(scale - scale_)); }

Decimal Decimal::operator-() const { return Decimal(-coeff_, scale_); }

Decimal operator+(const Decimal& a, const Decimal& b) {
  const int s = std::max(a.scale_, b.scale_);
  return Decimal(checked(a.at(s) + b.at(s)), s);
}

Decimal operator-(const Decimal& a, const Decimal& b) { return a + (-b); }

Decimal operator*(const Decimal& a, const Decimal& b) {
  const int s = a.scale_ + b.scale_;
  const i128 product = mulChecked(a.coeff_, b.coeff_);
  if (s <= Decimal::kMaxScale) return Decimal(product, s);
  return Decimal(dropDigits(product, s - Decimal::kMaxScale, Rounding::HalfEven), Decimal::kMaxScale);
}

Decimal Decimal::round(int digits, Rounding mode) const {
  if (digits < 0 || digits > kMaxScale) throw std::invalid_argument("rounding digits out of range");
  if (digits >= scale_) return Decimal(at(digits), digits);
  return Decimal(dropDigits(coeff_, scale_ - digits, mode), digits);
}

Decimal Decimal::divide(const Decimal& a, const Decimal& b, int digits, Rounding mode) {
  if (b.coeff_ == 0) throw std::domain_error("division by zero");
  if (digits < 0 || digits > kMaxScale) throw std::invalid_argument("rounding digits out of range");
  // a/b = (ca / 10^sa) / (cb / 10^sb); the result coefficient at `digits` is
  // ca * 10^(digits + sb - sa) / cb.
  const int k = digits + b.scale_ - a.scale_;
  i128 num = a.coeff_, den = b.coeff_;
  if (k >= 0) {
    num = mulChecked(num, tenPow(k));
  } else {
    den = mulChecked(den, tenPow(-k));
  }
  const bool negative = (num < 0) != (den < 0);
  const i128 an = abs128(num), ad = abs128(den);
  const i128 q = an / ad, r = an % ad;
  // 2r may exceed 128 bits only when r > 2^126, which needs |den| > 2^126 > kLimit*10^..: compare
  // r with den - r instead of doubling.
  i128 magnitude = q;
  if (r != 0 && mode != Rounding::Down) {
    const i128 rest = ad - r;
    if (r > rest || (r == rest && (mode == Rounding::HalfUp || q % 2 == 1))) ++magnitude;
  }
  return Decimal(checked(negative ? -magnitude : magnitude), digits);
}

int Decimal::compare(const Decimal& a, const Decimal& b) {
  if ((a.coeff_ < 0) != (b.coeff_ < 0)) return a.coeff_ < 0 ? -1 : 1;
  const int s = std::max(a.scale_, b.scale_);
  i128 x, y;
  try {
    x = a.at(s);
    y = b.at(s);
  } catch (const std::overflow_error&) {
    // Scaling the one with fewer decimals overflowed: it has the larger magnitude.
    const bool aBigger = a.scale_ < b.scale_;
    const int sign = a.coeff_ < 0 ? -1 : 1;
    return aBigger ? sign : -sign;
  }
  return x < y ? -1 : (x > y ? 1 : 0);
}

}  // namespace hearth::workflows
