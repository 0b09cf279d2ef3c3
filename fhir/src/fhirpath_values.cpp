// FHIRPath value semantics: decimals, partial dates/times, calendar arithmetic, UCUM subset.
#include "fhirpath_values.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace hearth::fhir {

namespace {

using i128 = __int128;

constexpr int kMaxDigits = 38;

const i128* pow10Table() {
  static const auto table = [] {
    struct T {
      i128 v[kMaxDigits + 1];
    } t{};
    t.v[0] = 1;
    for (int i = 1; i <= kMaxDigits; ++i) t.v[i] = t.v[i - 1] * 10;
    return t;
  }();
  return table.v;
}

i128 pow10(int n) { return pow10Table()[n]; }

i128 abs128(i128 v) { return v < 0 ? -v : v; }

// Writes |v| in decimal.
std::string digitsOf(i128 v) {
  if (v < 0) v = -v;
  if (v == 0) return "0";
  char buf[48];
  int n = 0;
  while (v > 0) {
    buf[n++] = static_cast<char>('0' + static_cast<int>(v % 10));
    v /= 10;
  }
  std::string out(static_cast<size_t>(n), '0');
  for (int i = 0; i < n; ++i) out[static_cast<size_t>(i)] = buf[n - 1 - i];
  return out;
}

int digitCount(i128 v) {
  v = abs128(v);
  int n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

// Brings both operands to the larger scale; false on overflow.
bool align(const FhirPathDecimal& a, const FhirPathDecimal& b, i128& am, i128& bm, int32_t& scale) {
  scale = std::max(a.scale, b.scale);
  am = a.mantissa;
  bm = b.mantissa;
  const int da = scale - a.scale, db = scale - b.scale;
  if (da > kMaxDigits || db > kMaxDigits) return false;
  if (da > 0 && __builtin_mul_overflow(am, pow10(da), &am)) return false;
  if (db > 0 && __builtin_mul_overflow(bm, pow10(db), &bm)) return false;
  return true;
}

// num / den rounded half away from zero.
i128 divRound(i128 num, i128 den) {
  i128 q = num / den, r = num % den;
  if (r != 0 && abs128(r) * 2 >= abs128(den)) q += ((num < 0) != (den < 0)) ? -1 : 1;
  return q;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// FhirPathDecimal members
// ---------------------------------------------------------------------------------------------

std::optional<FhirPathDecimal> FhirPathDecimal::parse(std::string_view s) {
  size_t p = 0;
  bool neg = false;
  if (p < s.size() && (s[p] == '+' || s[p] == '-')) neg = s[p++] == '-';
  i128 m = 0;
  int32_t scale = 0;
  int digits = 0;
  bool any = false;
  auto addDigit = [&](char c) {
    if (digits == 0 && c == '0') return true;  // leading zeros do not count
    if (++digits > kMaxDigits) return false;
    m = m * 10 + (c - '0');
    return true;
  };
  while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
    if (!addDigit(s[p++])) return std::nullopt;
    any = true;
  }
  if (!any) return std::nullopt;
  if (p < s.size() && s[p] == '.') {
    ++p;
    bool frac = false;
    while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
      if (!addDigit(s[p++])) return std::nullopt;
      ++scale;
      frac = true;
    }
    if (!frac) return std::nullopt;
  }
  if (p < s.size() && (s[p] == 'e' || s[p] == 'E')) {
    ++p;
    bool eneg = false;
    if (p < s.size() && (s[p] == '+' || s[p] == '-')) eneg = s[p++] == '-';
    int e = 0;
    bool edig = false;
    while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
      e = e * 10 + (s[p++] - '0');
      edig = true;
      if (e > 400) return std::nullopt;
    }
    if (!edig) return std::nullopt;
    if (eneg) {
      scale += e;
    } else {
      scale -= e;
      if (scale < 0) {
        if (digits - scale > kMaxDigits) return std::nullopt;
        m *= pow10(-scale);
        scale = 0;
      }
    }
  }
  if (p != s.size()) return std::nullopt;
  if (scale > 400) return std::nullopt;
  return FhirPathDecimal{neg ? -m : m, scale};
}

FhirPathDecimal FhirPathDecimal::fromDouble(double v) {
  if (!std::isfinite(v)) return FhirPathDecimal{};
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  if (auto d = parse(std::string_view(buf, static_cast<size_t>(res.ptr - buf)))) {
    if (d->scale <= kMaxDigits) return *d;
    return fhirpath::decRound(*d, kMaxDigits);
  }
  return FhirPathDecimal{};
}

std::string FhirPathDecimal::toString() const {
  std::string digits = digitsOf(mantissa);
  if (scale > 0) {
    if (static_cast<int32_t>(digits.size()) <= scale) {
      digits.insert(0, static_cast<size_t>(scale - static_cast<int32_t>(digits.size()) + 1), '0');
    }
    digits.insert(digits.size() - static_cast<size_t>(scale), 1, '.');
  }
  if (mantissa < 0) digits.insert(0, 1, '-');
  return digits;
}

double FhirPathDecimal::toDouble() const {
  long double v = static_cast<long double>(mantissa);
  int s = scale;
  while (s > 0) {
    const int step = std::min(s, 18);
    v /= static_cast<long double>(pow10(step));
    s -= step;
  }
  return static_cast<double>(v);
}

namespace fhirpath {

// ---------------------------------------------------------------------------------------------
// Decimal arithmetic
// ---------------------------------------------------------------------------------------------

std::optional<Decimal> decAdd(const Decimal& a, const Decimal& b) {
  i128 am, bm, r;
  int32_t s;
  if (!align(a, b, am, bm, s) || __builtin_add_overflow(am, bm, &r)) return std::nullopt;
  return Decimal{r, s};
}

std::optional<Decimal> decSub(const Decimal& a, const Decimal& b) {
  i128 am, bm, r;
  int32_t s;
  if (!align(a, b, am, bm, s) || __builtin_sub_overflow(am, bm, &r)) return std::nullopt;
  return Decimal{r, s};
}

std::optional<Decimal> decMul(const Decimal& a, const Decimal& b) {
  i128 r;
  if (!__builtin_mul_overflow(a.mantissa, b.mantissa, &r)) {
    Decimal out{r, a.scale + b.scale};
    return out.scale > kMaxDigits ? decRound(out, kMaxDigits) : out;
  }
  // Too many digits: drop the least significant ones of the longer operand and retry.
  Decimal x = a, y = b;
  for (int guard = 0; guard < 40; ++guard) {
    Decimal& big = digitCount(x.mantissa) >= digitCount(y.mantissa) ? x : y;
    if (big.scale <= 0) return std::nullopt;
    big = decRound(big, big.scale - 1);
    if (!__builtin_mul_overflow(x.mantissa, y.mantissa, &r)) return Decimal{r, x.scale + y.scale};
  }
  return std::nullopt;
}

std::optional<Decimal> decDiv(const Decimal& a, const Decimal& b, int32_t minScale) {
  if (b.mantissa == 0) return std::nullopt;
  int32_t target = std::max(minScale, a.scale);
  // result mantissa = a.m * 10^(target + b.s - a.s) / b.m
  for (; target >= 0; --target) {
    const int e = target + b.scale - a.scale;
    i128 num = a.mantissa, den = b.mantissa;
    if (e >= 0) {
      if (e > kMaxDigits || __builtin_mul_overflow(num, pow10(e), &num)) continue;
    } else {
      if (-e > kMaxDigits || __builtin_mul_overflow(den, pow10(-e), &den)) continue;
    }
    return Decimal{divRound(num, den), target};
  }
  return std::nullopt;
}

int decCompare(const Decimal& a, const Decimal& b) {
  i128 am, bm;
  int32_t s;
  if (!align(a, b, am, bm, s)) {
    const double x = a.toDouble(), y = b.toDouble();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  return am < bm ? -1 : (am > bm ? 1 : 0);
}

Decimal decRound(const Decimal& a, int32_t scale) {
  if (a.scale <= scale) return a;
  const int diff = a.scale - scale;
  if (diff > kMaxDigits) return Decimal{0, scale};
  return Decimal{divRound(a.mantissa, pow10(diff)), scale};
}

Decimal decRescale(const Decimal& a, int32_t scale) {
  if (a.scale >= scale) return decRound(a, scale);
  const int diff = scale - a.scale;
  i128 m;
  if (diff > kMaxDigits || __builtin_mul_overflow(a.mantissa, pow10(diff), &m)) return a;
  return Decimal{m, scale};
}

Decimal decTrim(const Decimal& a, int32_t minScale) {
  Decimal r = a;
  while (r.scale > minScale && r.mantissa % 10 == 0) {
    r.mantissa /= 10;
    --r.scale;
  }
  return r;
}

namespace {
enum class RoundMode { Floor, Ceil, Truncate };
Decimal roundTo(const Decimal& a, int32_t scale, RoundMode mode) {
  if (a.scale <= scale) return decRescale(a, scale);
  const int diff = a.scale - scale;
  if (diff > kMaxDigits) {
    i128 q = 0;
    if (mode == RoundMode::Floor && a.mantissa < 0) q = -1;
    if (mode == RoundMode::Ceil && a.mantissa > 0) q = 1;
    return Decimal{q, scale};
  }
  const i128 p = pow10(diff);
  i128 q = a.mantissa / p;
  const i128 r = a.mantissa % p;
  if (r != 0) {
    if (mode == RoundMode::Floor && a.mantissa < 0) q -= 1;
    if (mode == RoundMode::Ceil && a.mantissa > 0) q += 1;
  }
  return Decimal{q, scale};
}
}  // namespace

Decimal decFloor(const Decimal& a, int32_t scale) { return roundTo(a, scale, RoundMode::Floor); }
Decimal decCeil(const Decimal& a, int32_t scale) { return roundTo(a, scale, RoundMode::Ceil); }
Decimal decTruncate(const Decimal& a, int32_t scale) { return roundTo(a, scale, RoundMode::Truncate); }
Decimal decNegate(const Decimal& a) { return Decimal{-a.mantissa, a.scale}; }

bool decIsInteger(const Decimal& a) {
  if (a.scale <= 0) return true;
  if (a.scale > kMaxDigits) return a.mantissa == 0;
  return a.mantissa % pow10(a.scale) == 0;
}

std::optional<int64_t> decToInt64(const Decimal& a) {
  const Decimal t = decTruncate(a, 0);
  if (t.mantissa > INT64_MAX || t.mantissa < INT64_MIN) return std::nullopt;
  return static_cast<int64_t>(t.mantissa);
}

Decimal decRoundSignificant(const Decimal& a, int digits) {
  const int n = digitCount(a.mantissa);
  if (n <= digits) return a;
  const int32_t scale = a.scale - (n - digits);
  return scale >= 0 ? decTrim(decRound(a, scale), 0) : a;
}

// ---------------------------------------------------------------------------------------------
// Dates and times
// ---------------------------------------------------------------------------------------------

namespace {

bool isLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int daysInMonth(int y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && isLeap(y) ? 29 : kDays[m - 1];
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t daysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void civilFromDays(int64_t z, int32_t& y, uint8_t& m, uint8_t& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  d = static_cast<uint8_t>(doy - (153 * mp + 2) / 5 + 1);
  m = static_cast<uint8_t>(mp < 10 ? mp + 3 : mp - 9);
  y = static_cast<int32_t>(yoe + era * 400 + (m <= 2));
}

int64_t epochMillis(const DateTime& v) {
  return daysFromCivil(v.year, v.month, v.day) * 86400000LL + v.hour * 3600000LL + v.minute * 60000LL +
         v.second * 1000LL + v.millisecond;
}

void setFromEpochMillis(DateTime& v, int64_t ms) {
  int64_t days = ms / 86400000LL;
  int64_t rem = ms % 86400000LL;
  if (rem < 0) {
    rem += 86400000LL;
    --days;
  }
  civilFromDays(days, v.year, v.month, v.day);
  v.hour = static_cast<uint8_t>(rem / 3600000LL);
  v.minute = static_cast<uint8_t>(rem / 60000LL % 60);
  v.second = static_cast<uint8_t>(rem / 1000LL % 60);
  v.millisecond = static_cast<uint16_t>(rem % 1000LL);
}

bool digitsAt(std::string_view s, size_t p, size_t n, int& out) {
  if (p + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[p + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

// hh(:mm(:ss(.fff)?)?)? at p; advances p.
bool parseClock(std::string_view s, size_t& p, DateTime& v) {
  int h, mi, sec;
  if (!digitsAt(s, p, 2, h) || h > 23) return false;
  p += 2;
  v.hour = static_cast<uint8_t>(h);
  v.precision = Precision::Hour;
  if (p < s.size() && s[p] == ':' && digitsAt(s, p + 1, 2, mi)) {
    if (mi > 59) return false;
    v.minute = static_cast<uint8_t>(mi);
    v.precision = Precision::Minute;
    p += 3;
    if (p < s.size() && s[p] == ':' && digitsAt(s, p + 1, 2, sec)) {
      if (sec > 59) return false;
      v.second = static_cast<uint8_t>(sec);
      v.precision = Precision::Second;
      p += 3;
      if (p + 1 < s.size() && s[p] == '.' && s[p + 1] >= '0' && s[p + 1] <= '9') {
        ++p;
        int ms = 0, n = 0;
        while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
          if (n < 3) ms = ms * 10 + (s[p] - '0');
          ++n;
          ++p;
        }
        while (n < 3) {
          ms *= 10;
          ++n;
        }
        v.millisecond = static_cast<uint16_t>(ms);
        v.precision = Precision::Millisecond;
      }
    }
  }
  return true;
}

int level(Precision p) { return p == Precision::Millisecond ? 5 : static_cast<int>(p); }

DateTime toUtc(const DateTime& v) {
  DateTime r = v;
  setFromEpochMillis(r, epochMillis(v) - v.offsetMinutes * 60000LL);
  r.offsetMinutes = 0;
  return r;
}

}  // namespace

std::optional<DateTime> parseDateTime(std::string_view s, FhirPathKind& kind, bool allowTrailingT,
                                      size_t* consumed) {
  DateTime v;
  size_t p = 0;
  int y, mo, d;
  if (!digitsAt(s, 0, 4, y)) return std::nullopt;
  if (s.size() > 4 && s[4] >= '0' && s[4] <= '9') return std::nullopt;
  v.year = y;
  p = 4;
  v.precision = Precision::Year;
  kind = FhirPathKind::Date;
  if (p < s.size() && s[p] == '-' && digitsAt(s, p + 1, 2, mo)) {
    if (mo < 1 || mo > 12) return std::nullopt;
    v.month = static_cast<uint8_t>(mo);
    v.precision = Precision::Month;
    p += 3;
    if (p < s.size() && s[p] == '-' && digitsAt(s, p + 1, 2, d)) {
      if (d < 1 || d > daysInMonth(y, mo)) return std::nullopt;
      v.day = static_cast<uint8_t>(d);
      v.precision = Precision::Day;
      p += 3;
    }
  }
  if (p < s.size() && s[p] == 'T') {
    kind = FhirPathKind::DateTime;
    ++p;
    if (p < s.size() && s[p] >= '0' && s[p] <= '9') {
      if (v.precision != Precision::Day) return std::nullopt;
      if (!parseClock(s, p, v)) return std::nullopt;
      if (p < s.size() && s[p] == 'Z') {
        v.hasOffset = true;
        ++p;
      } else if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
        int oh, om;
        if (!digitsAt(s, p + 1, 2, oh) || p + 3 >= s.size() || s[p + 3] != ':' || !digitsAt(s, p + 4, 2, om) ||
            oh > 14 || om > 59) {
          return std::nullopt;
        }
        v.hasOffset = true;
        v.offsetMinutes = static_cast<int16_t>((oh * 60 + om) * (s[p] == '-' ? -1 : 1));
        p += 6;
      }
    } else if (!allowTrailingT) {
      return std::nullopt;
    }
  }
  if (consumed) {
    *consumed = p;
  } else if (p != s.size()) {
    return std::nullopt;
  }
  return v;
}

std::optional<DateTime> parseTime(std::string_view s, size_t* consumed) {
  DateTime v;
  size_t p = 0;
  if (!parseClock(s, p, v)) return std::nullopt;
  if (consumed) {
    *consumed = p;
  } else if (p != s.size()) {
    return std::nullopt;
  }
  return v;
}

std::optional<int> compareDateTime(const DateTime& a0, const DateTime& b0) {
  DateTime a = a0, b = b0;
  if (level(a.precision) >= 3 && level(b.precision) >= 3) {
    if (a.hasOffset != b.hasOffset) return std::nullopt;
    if (a.hasOffset && a.offsetMinutes != b.offsetMinutes) {
      a = toUtc(a);
      b = toUtc(b);
    }
  }
  const int la = level(a.precision), lb = level(b.precision);
  const int m = std::min(la, lb);
  const int64_t va[6] = {a.year, a.month, a.day, a.hour, a.minute, a.second * 1000 + a.millisecond};
  const int64_t vb[6] = {b.year, b.month, b.day, b.hour, b.minute, b.second * 1000 + b.millisecond};
  for (int i = 0; i <= m; ++i) {
    if (va[i] != vb[i]) return va[i] < vb[i] ? -1 : 1;
  }
  if (la != lb) return std::nullopt;
  return 0;
}

bool equivalentDateTime(const DateTime& a, const DateTime& b) {
  if (level(a.precision) != level(b.precision)) return false;
  auto c = compareDateTime(a, b);
  return c && *c == 0;
}

std::optional<DateTime> addToDateTime(const DateTime& value, FhirPathKind kind, CalendarUnit unit, int64_t amount) {
  DateTime r = value;
  if (unit == CalendarUnit::Week) {
    unit = CalendarUnit::Day;
    amount *= 7;
  }
  if (kind == FhirPathKind::Time) {
    int64_t unitMs;
    switch (unit) {
      case CalendarUnit::Hour: unitMs = 3600000; break;
      case CalendarUnit::Minute: unitMs = 60000; break;
      case CalendarUnit::Second: unitMs = 1000; break;
      case CalendarUnit::Millisecond: unitMs = 1; break;
      default: return std::nullopt;
    }
    static const int64_t kPrecMs[] = {0, 0, 0, 3600000, 60000, 1000, 1};
    const int64_t precMs = kPrecMs[static_cast<int>(value.precision)];
    const int64_t delta = amount * unitMs / precMs * precMs;
    int64_t ms = value.hour * 3600000LL + value.minute * 60000LL + value.second * 1000LL + value.millisecond + delta;
    ms %= 86400000LL;
    if (ms < 0) ms += 86400000LL;
    r.hour = static_cast<uint8_t>(ms / 3600000);
    r.minute = static_cast<uint8_t>(ms / 60000 % 60);
    r.second = static_cast<uint8_t>(ms / 1000 % 60);
    r.millisecond = static_cast<uint16_t>(ms % 1000);
    return r;
  }
  auto addMonths = [&](int64_t months) {
    int64_t total = static_cast<int64_t>(r.year) * 12 + (r.month - 1) + months;
    r.year = static_cast<int32_t>(total >= 0 ? total / 12 : (total - 11) / 12);
    r.month = static_cast<uint8_t>(total - static_cast<int64_t>(r.year) * 12 + 1);
    if (r.day > daysInMonth(r.year, r.month)) r.day = static_cast<uint8_t>(daysInMonth(r.year, r.month));
  };
  switch (unit) {
    case CalendarUnit::Year:
      r.year = static_cast<int32_t>(r.year + amount);
      if (r.day > daysInMonth(r.year, r.month)) r.day = static_cast<uint8_t>(daysInMonth(r.year, r.month));
      break;
    case CalendarUnit::Month:
      if (level(r.precision) >= 1) {
        addMonths(amount);
      } else {
        r.year = static_cast<int32_t>(r.year + amount / 12);
      }
      break;
    default: {
      int64_t unitMs;
      switch (unit) {
        case CalendarUnit::Day: unitMs = 86400000LL; break;
        case CalendarUnit::Hour: unitMs = 3600000LL; break;
        case CalendarUnit::Minute: unitMs = 60000LL; break;
        case CalendarUnit::Second: unitMs = 1000LL; break;
        default: unitMs = 1; break;
      }
      if (amount > INT64_MAX / 86400000LL || amount < -INT64_MAX / 86400000LL) return std::nullopt;
      const int64_t deltaMs = amount * unitMs;
      const int lv = level(r.precision);
      if (lv == 0) {
        r.year = static_cast<int32_t>(r.year + deltaMs / 86400000LL / 365);
      } else if (lv == 1) {
        addMonths(deltaMs / 86400000LL / 30);
      } else {
        static const int64_t kPrecMs[] = {0, 0, 86400000LL, 3600000LL, 60000LL, 1000LL, 1};
        const int64_t precMs = kPrecMs[static_cast<int>(r.precision)];
        setFromEpochMillis(r, epochMillis(r) + deltaMs / precMs * precMs);
      }
      break;
    }
  }
  if (r.year < 1 || r.year > 9999) return std::nullopt;
  return r;
}

int dateTimePrecisionDigits(const DateTime& v, FhirPathKind kind) {
  if (kind == FhirPathKind::Time) {
    static const int kTime[] = {0, 0, 0, 2, 4, 6, 9};
    return kTime[static_cast<int>(v.precision)];
  }
  static const int kDate[] = {4, 6, 8, 10, 12, 14, 17};
  return kDate[static_cast<int>(v.precision)];
}

std::optional<DateTime> dateTimeBoundary(const DateTime& v, FhirPathKind kind, int digits, bool high,
                                         FhirPathKind& resultKind) {
  Precision target;
  if (kind == FhirPathKind::Time) {
    switch (digits) {
      case 2: target = Precision::Hour; break;
      case 4: target = Precision::Minute; break;
      case 6: target = Precision::Second; break;
      case 9: target = Precision::Millisecond; break;
      default: return std::nullopt;
    }
    resultKind = FhirPathKind::Time;
  } else {
    switch (digits) {
      case 4: target = Precision::Year; break;
      case 6: target = Precision::Month; break;
      case 8: target = Precision::Day; break;
      case 10: target = Precision::Hour; break;
      case 12: target = Precision::Minute; break;
      case 14: target = Precision::Second; break;
      case 17: target = Precision::Millisecond; break;
      default: return std::nullopt;
    }
    resultKind = level(target) <= 2 ? FhirPathKind::Date : FhirPathKind::DateTime;
  }
  DateTime r = v;
  const int have = static_cast<int>(v.precision);
  if (kind != FhirPathKind::Time) {
    if (have < 1) r.month = high ? 12 : 1;
    if (have < 2) r.day = high ? static_cast<uint8_t>(daysInMonth(r.year, r.month)) : 1;
  }
  if (have < 3) r.hour = high ? 23 : 0;
  if (have < 4) r.minute = high ? 59 : 0;
  if (have < 5) r.second = high ? 59 : 0;
  if (have < 6) r.millisecond = high ? 999 : 0;
  r.precision = target;
  if (resultKind == FhirPathKind::DateTime && !v.hasOffset) {
    r.hasOffset = true;
    r.offsetMinutes = static_cast<int16_t>(high ? -12 * 60 : 14 * 60);
  }
  if (resultKind != FhirPathKind::DateTime) {
    r.hasOffset = false;
    r.offsetMinutes = 0;
  }
  return r;
}

}  // namespace fhirpath

std::string formatFhirPathDateTime(const FhirPathDateTime& v, FhirPathKind kind) {
  char buf[64];
  int n = 0;
  const int lv = static_cast<int>(v.precision);
  if (kind != FhirPathKind::Time) {
    n += std::snprintf(buf + n, sizeof buf - static_cast<size_t>(n), "%04d", v.year);
    if (lv >= 1) n += std::snprintf(buf + n, sizeof buf - static_cast<size_t>(n), "-%02d", v.month);
    if (lv >= 2) n += std::snprintf(buf + n, sizeof buf - static_cast<size_t>(n), "-%02d", v.day);
    if (kind == FhirPathKind::Date || lv < 3) return std::string(buf, static_cast<size_t>(n));
    buf[n++] = 'T';
  }
  n += std::snprintf(buf + n, sizeof buf - static_cast<size_t>(n), "%02d", v.hour);
  if (lv >= 4) n += std::snprintf(buf + n, sizeof buf - static_cast<size_t>(n), ":%02d", v.minute);
  if (lv >= 5) n += std::snprintf(buf + n, sizeof buf - static_cast<size_t>(n), ":%02d", v.second);
  if (lv >= 6) n += std::snprintf(buf + n, sizeof buf - static_cast<size_t>(n), ".%03d", v.millisecond);
  if (kind == FhirPathKind::DateTime && v.hasOffset) {
    if (v.offsetMinutes == 0) {
      buf[n++] = 'Z';
    } else {
      const int off = v.offsetMinutes < 0 ? -v.offsetMinutes : v.offsetMinutes;
      n += std::snprintf(buf + n, sizeof buf - static_cast<size_t>(n), "%c%02d:%02d", v.offsetMinutes < 0 ? '-' : '+',
                         off / 60, off % 60);
    }
  }
  return std::string(buf, static_cast<size_t>(n));
}

namespace fhirpath {

// ---------------------------------------------------------------------------------------------
// Quantities and UCUM
// ---------------------------------------------------------------------------------------------

std::optional<CalendarUnit> calendarWord(std::string_view w) {
  if (w.size() > 1 && w.back() == 's') w.remove_suffix(1);
  if (w == "year") return CalendarUnit::Year;
  if (w == "month") return CalendarUnit::Month;
  if (w == "week") return CalendarUnit::Week;
  if (w == "day") return CalendarUnit::Day;
  if (w == "hour") return CalendarUnit::Hour;
  if (w == "minute") return CalendarUnit::Minute;
  if (w == "second") return CalendarUnit::Second;
  if (w == "millisecond") return CalendarUnit::Millisecond;
  return std::nullopt;
}

std::optional<CalendarUnit> arithmeticUnit(std::string_view unit, bool /*calendarWord*/) {
  if (auto c = calendarWord(unit)) return c;
  if (unit == "wk") return CalendarUnit::Week;
  if (unit == "d") return CalendarUnit::Day;
  if (unit == "h") return CalendarUnit::Hour;
  if (unit == "min") return CalendarUnit::Minute;
  if (unit == "s") return CalendarUnit::Second;
  if (unit == "ms") return CalendarUnit::Millisecond;
  return std::nullopt;
}

bool UnitDef::sameDims(const UnitDef& o) const { return std::memcmp(dims, o.dims, sizeof dims) == 0; }

namespace {

// Dimension slots: length, mass, time, angle, temperature, charge, luminosity, amount, and a
// pseudo dimension for calendar months/years (not comparable with UCUM 'a' / 'mo').
enum Dim { L, M, T, A, K, Q, F, N, CAL };

struct Atom {
  const char* symbol;
  const char* factor;
  int8_t dims[9];
  bool metric;  // accepts SI prefixes
};

// The UCUM units Hearth understands, with their factor to the base units (m, g, s, rad, K, C,
// cd, mol). Definitions from the UCUM specification.
const Atom kAtoms[] = {
    {"1", "1", {}, false},
    {"m", "1", {1}, true},
    {"g", "1", {0, 1}, true},
    {"s", "1", {0, 0, 1}, true},
    {"rad", "1", {0, 0, 0, 1}, true},
    {"K", "1", {0, 0, 0, 0, 1}, true},
    {"C", "1", {0, 0, 0, 0, 0, 1}, true},
    {"cd", "1", {0, 0, 0, 0, 0, 0, 1}, true},
    {"mol", "1", {0, 0, 0, 0, 0, 0, 0, 1}, true},
    {"eq", "1", {0, 0, 0, 0, 0, 0, 0, 1}, true},
    {"L", "0.001", {3}, true},
    {"l", "0.001", {3}, true},
    {"min", "60", {0, 0, 1}, false},
    {"h", "3600", {0, 0, 1}, false},
    {"d", "86400", {0, 0, 1}, false},
    {"wk", "604800", {0, 0, 1}, false},
    {"mo", "2629800", {0, 0, 1}, false},
    {"a", "31557600", {0, 0, 1}, false},
    {"Hz", "1", {0, 0, -1}, true},
    {"Bq", "1", {0, 0, -1}, true},
    {"N", "1000", {1, 1, -2}, true},
    {"Pa", "1000", {-1, 1, -2}, true},
    {"bar", "100000000", {-1, 1, -2}, true},
    {"J", "1000", {2, 1, -2}, true},
    {"W", "1000", {2, 1, -3}, true},
    {"A", "1", {0, 0, -1, 0, 0, 1}, true},
    {"V", "1000", {2, 1, -2, 0, 0, -1}, true},
    {"kat", "1", {0, 0, -1, 0, 0, 0, 0, 1}, true},
    {"%", "0.01", {}, false},
    {"[ppm]", "0.000001", {}, false},
    {"[ppb]", "0.000000001", {}, false},
    {"m[Hg]", "133322000", {-1, 1, -2}, true},
    {"m[H2O]", "9806650", {-1, 1, -2}, true},
    {"[lb_av]", "453.59237", {0, 1}, false},
    {"[oz_av]", "28.349523125", {0, 1}, false},
    {"[in_i]", "0.0254", {1}, false},
    {"[ft_i]", "0.3048", {1}, false},
    {"[yd_i]", "0.9144", {1}, false},
    {"[mi_i]", "1609.344", {1}, false},
    {"[gal_us]", "0.003785411784", {3}, false},
    {"[qt_us]", "0.000946352946", {3}, false},
    {"[pt_us]", "0.000473176473", {3}, false},
    {"[foz_us]", "0.0000295735295625", {3}, false},
    {"[cup_us]", "0.0002365882365", {3}, false},
    {"[tbs_us]", "0.00001478676478125", {3}, false},
    {"[tsp_us]", "0.00000492892159375", {3}, false},
    {"t", "1000000", {0, 1}, true},
    {"u", "1.6605402E-24", {0, 1}, true},
    {"ar", "100", {2}, true},
};

struct Prefix {
  const char* symbol;
  int exponent;
};
const Prefix kPrefixes[] = {{"da", 1},  {"Y", 24},  {"Z", 21},  {"E", 18},  {"P", 15}, {"T", 12}, {"G", 9},
                            {"M", 6},   {"k", 3},   {"h", 2},   {"d", -1},  {"c", -2}, {"m", -3}, {"u", -6},
                            {"n", -9},  {"p", -12}, {"f", -15}, {"a", -18}, {"z", -21}, {"y", -24}};

const Atom* findAtom(std::string_view s) {
  for (const Atom& a : kAtoms) {
    if (s == a.symbol) return &a;
  }
  return nullptr;
}

Decimal pow10Decimal(int e) { return e >= 0 ? Decimal{pow10(e), 0} : Decimal{1, -e}; }

bool mulInto(UnitDef& u, const UnitDef& o, int sign) {
  if (sign > 0) {
    auto f = decMul(u.factor, o.factor);
    if (!f) return false;
    u.factor = *f;
  } else {
    auto f = decDiv(u.factor, o.factor, 30);
    if (!f) return false;
    auto back = decMul(*f, o.factor);
    if (!back || decCompare(*back, u.factor) != 0) u.exact = false;
    u.factor = decTrim(*f);
  }
  u.exact = u.exact && o.exact;
  for (int i = 0; i < 9; ++i) u.dims[i] = static_cast<int8_t>(u.dims[i] + sign * o.dims[i]);
  return true;
}

class UnitParser {
 public:
  explicit UnitParser(std::string_view s) : s_(s) {}

  std::optional<UnitDef> parse() {
    UnitDef u;
    if (p_ < s_.size() && s_[p_] == '/') {
      ++p_;
      UnitDef c;
      if (!component(c) || !mulInto(u, c, -1)) return std::nullopt;
    } else if (!component(u)) {
      return std::nullopt;
    }
    if (!rest(u)) return std::nullopt;
    return p_ == s_.size() ? std::optional<UnitDef>(u) : std::nullopt;
  }

 private:
  bool rest(UnitDef& u) {
    while (p_ < s_.size() && (s_[p_] == '.' || s_[p_] == '/')) {
      const int sign = s_[p_] == '.' ? 1 : -1;
      ++p_;
      UnitDef c;
      if (!component(c) || !mulInto(u, c, sign)) return false;
    }
    return true;
  }

  bool skipAnnotation() {
    if (p_ >= s_.size() || s_[p_] != '{') return false;
    const size_t close = s_.find('}', p_);
    if (close == std::string_view::npos) return false;
    p_ = close + 1;
    return true;
  }

  bool component(UnitDef& u) {
    if (p_ < s_.size() && s_[p_] == '(') {
      ++p_;
      UnitDef inner;
      if (!component(inner) || !rest(inner)) return false;
      if (p_ >= s_.size() || s_[p_] != ')') return false;
      ++p_;
      u = inner;
      return true;
    }
    if (p_ < s_.size() && s_[p_] == '{') {
      u = UnitDef{};
      return skipAnnotation();
    }
    // The symbol: everything up to the next operator, bracketed parts included.
    const size_t start = p_;
    while (p_ < s_.size()) {
      const char c = s_[p_];
      if (c == '[') {
        const size_t close = s_.find(']', p_);
        if (close == std::string_view::npos) return false;
        p_ = close + 1;
        continue;
      }
      if (c == '.' || c == '/' || c == '(' || c == ')' || c == '{') break;
      ++p_;
    }
    std::string_view tok = s_.substr(start, p_ - start);
    if (p_ < s_.size() && s_[p_] == '{') skipAnnotation();
    if (tok.empty()) return false;
    if (std::all_of(tok.begin(), tok.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      auto f = Decimal::parse(tok);
      if (!f) return false;
      u = UnitDef{};
      u.factor = *f;
      return true;
    }
    // Trailing exponent (outside brackets): m2, s-1, 10*3.
    size_t e = tok.size();
    while (e > 0 && tok[e - 1] >= '0' && tok[e - 1] <= '9') --e;
    int exponent = 1;
    if (e < tok.size() && e > 0) {
      size_t signPos = e;
      if (tok[e - 1] == '-' || tok[e - 1] == '+') --signPos;
      if (signPos > 0) {
        exponent = std::stoi(std::string(tok.substr(e)));
        if (signPos < e && tok[signPos] == '-') exponent = -exponent;
        tok = tok.substr(0, signPos);
      }
    }
    UnitDef base;
    if (tok == "10*" || tok == "10^") {
      base.factor = Decimal{10, 0};
    } else if (!atom(tok, base)) {
      return false;
    }
    u = UnitDef{};
    if (exponent < -20 || exponent > 20) return false;
    for (int i = 0; i < (exponent < 0 ? -exponent : exponent); ++i) {
      if (!mulInto(u, base, exponent < 0 ? -1 : 1)) return false;
    }
    return true;
  }

  static bool atom(std::string_view tok, UnitDef& out) {
    auto fromAtom = [&](const Atom& a, int prefixExp) {
      auto f = Decimal::parse(a.factor);
      if (!f) return false;
      out.factor = *f;
      if (prefixExp != 0) {
        auto g = decMul(out.factor, pow10Decimal(prefixExp));
        if (!g) return false;
        out.factor = *g;
      }
      std::memcpy(out.dims, a.dims, sizeof out.dims);
      return true;
    };
    if (const Atom* a = findAtom(tok)) return fromAtom(*a, 0);
    for (const Prefix& pr : kPrefixes) {
      const std::string_view ps(pr.symbol);
      if (tok.size() > ps.size() && tok.substr(0, ps.size()) == ps) {
        const Atom* a = findAtom(tok.substr(ps.size()));
        if (a && a->metric) return fromAtom(*a, pr.exponent);
      }
    }
    return false;
  }

  std::string_view s_;
  size_t p_ = 0;
};

}  // namespace

std::optional<UnitDef> parseUnit(std::string_view unit, bool calendar) {
  if (calendar) {
    auto c = calendarWord(unit);
    if (!c) return std::nullopt;
    UnitDef u;
    switch (*c) {
      case CalendarUnit::Year: u.factor = Decimal{12, 0}; u.dims[CAL] = 1; return u;
      case CalendarUnit::Month: u.dims[CAL] = 1; return u;
      case CalendarUnit::Week: u.factor = Decimal{604800, 0}; break;
      case CalendarUnit::Day: u.factor = Decimal{86400, 0}; break;
      case CalendarUnit::Hour: u.factor = Decimal{3600, 0}; break;
      case CalendarUnit::Minute: u.factor = Decimal{60, 0}; break;
      case CalendarUnit::Second: break;
      case CalendarUnit::Millisecond: u.factor = Decimal{1, 3}; break;
    }
    u.dims[T] = 1;
    return u;
  }
  if (unit.empty()) return std::nullopt;
  return UnitParser(unit).parse();
}

std::optional<Decimal> convertQuantity(const QuantityValue& q, const QuantityValue& target) {
  if (q.calendar == target.calendar && q.unit == target.unit) return q.value;
  auto from = parseUnit(q.unit, q.calendar);
  auto to = parseUnit(target.unit, target.calendar);
  if (!from || !to || !from->sameDims(*to)) return std::nullopt;
  auto base = decMul(q.value, from->factor);
  if (!base) return std::nullopt;
  auto v = decDiv(*base, to->factor, base->scale + 12);
  if (!v) return std::nullopt;
  auto back = decMul(*v, to->factor);
  const bool exact = from->exact && to->exact && back && decCompare(*back, *base) == 0;
  if (exact) return decTrim(*v, std::max(q.value.scale, 0));
  return decRoundSignificant(*v, 18);
}

std::string quantityToString(const QuantityValue& q) {
  std::string out = q.value.toString();
  out += ' ';
  if (q.calendar) {
    out += q.unit;
  } else {
    out += '\'';
    out += q.unit;
    out += '\'';
  }
  return out;
}

}  // namespace fhirpath
}  // namespace hearth::fhir
