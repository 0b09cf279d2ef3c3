// Typed readers (contracts in types.h).
#include "hearth/hl7/types.h"

#include <cctype>
#include <cstdio>

namespace hearth::hl7 {

namespace {

std::string v(const Element& e, int n) { return e.part(n).value(); }
// Sub-component s of part n (FN in XPN-1, SAD in XAD-1, HD namespace in PL-1).
std::string sv(const Element& e, int n, int s) { return e.part(n).subcomponent(s).value(); }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// HD read from a part of a composite: when the part is itself split (CX-4 "&1.2.3&ISO"), its
// sub-components are the HD parts; when the composite is a component, the part is a
// sub-component and only the namespace id can be present.
HD hdOf(const Element& e, int n) { return HD::from(e.part(n)); }

// Reads the v2.3 telephone form "[NNN] [(999)]999-9999 [X99999] [B99999] [C any text]".
void parseLegacyPhone(std::string_view s, XTN& x) {
  s = trim(s);
  size_t k = 0;
  while (k < s.size() && s[k] != 'X' && s[k] != 'B' && s[k] != 'C') ++k;
  const std::string_view number = trim(s.substr(0, k));
  const size_t open = number.find('(');
  const size_t close = number.find(')');
  if (open != std::string_view::npos && close != std::string_view::npos && close > open) {
    std::string_view cc = trim(number.substr(0, open));
    if (!cc.empty() && cc.front() == '+') cc.remove_prefix(1);
    x.countryCode = std::string(cc);
    x.areaCode = std::string(trim(number.substr(open + 1, close - open - 1)));
    x.localNumber = std::string(trim(number.substr(close + 1)));
  } else {
    x.localNumber = std::string(number);
  }
  while (k < s.size()) {
    const char marker = s[k++];
    if (marker == 'C') {  // free text runs to the end
      x.anyText = std::string(trim(s.substr(k)));
      return;
    }
    size_t end = k;
    while (end < s.size() && s[end] != 'X' && s[end] != 'B' && s[end] != 'C') ++end;
    if (marker == 'X') x.extension = std::string(trim(s.substr(k, end - k)));
    k = end;  // B (beeper) stays only in legacyNumber
  }
}

int daysInMonth(int y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
  return kDays[m - 1];
}

}  // namespace

HD HD::from(const Element& e) { return HD{v(e, 1), v(e, 2), v(e, 3)}; }

EI EI::from(const Element& e) {
  EI x;
  x.entityId = v(e, 1);
  x.assigner = HD{v(e, 2), v(e, 3), v(e, 4)};
  return x;
}

CX CX::from(const Element& e) {
  CX x;
  x.id = v(e, 1);
  x.checkDigit = v(e, 2);
  x.checkDigitScheme = v(e, 3);
  x.assigningAuthority = hdOf(e, 4);
  x.identifierTypeCode = v(e, 5);
  x.assigningFacility = hdOf(e, 6);
  x.effectiveDate = v(e, 7);
  x.expirationDate = v(e, 8);
  return x;
}

CWE CWE::from(const Element& e) {
  CWE x;
  x.code = v(e, 1);
  x.text = v(e, 2);
  x.system = v(e, 3);
  x.altCode = v(e, 4);
  x.altText = v(e, 5);
  x.altSystem = v(e, 6);
  x.systemVersion = v(e, 7);
  x.altSystemVersion = v(e, 8);
  x.originalText = v(e, 9);
  x.alt2Code = v(e, 10);
  x.alt2Text = v(e, 11);
  x.alt2System = v(e, 12);
  return x;
}

XPN XPN::from(const Element& e) {
  XPN x;
  x.family = sv(e, 1, 1);
  x.familyPrefix = sv(e, 1, 2);
  x.given = v(e, 2);
  x.middle = v(e, 3);
  x.suffix = v(e, 4);
  x.prefix = v(e, 5);
  x.degree = v(e, 6);
  x.nameTypeCode = v(e, 7);
  x.representationCode = v(e, 8);
  x.assemblyOrder = v(e, 11);
  x.effectiveDate = v(e, 12);
  x.expirationDate = v(e, 13);
  x.professionalSuffix = v(e, 14);
  return x;
}

XAD XAD::from(const Element& e) {
  XAD x;
  x.street = sv(e, 1, 1);
  x.streetName = sv(e, 1, 2);
  x.dwellingNumber = sv(e, 1, 3);
  x.otherDesignation = v(e, 2);
  x.city = v(e, 3);
  x.state = v(e, 4);
  x.zip = v(e, 5);
  x.country = v(e, 6);
  x.addressType = v(e, 7);
  x.otherGeographic = v(e, 8);
  x.county = v(e, 9);
  x.censusTract = v(e, 10);
  x.representationCode = v(e, 11);
  x.effectiveDate = v(e, 13);
  x.expirationDate = v(e, 14);
  return x;
}

XTN XTN::from(const Element& e) {
  XTN x;
  x.legacyNumber = v(e, 1);
  x.useCode = v(e, 2);
  x.equipmentType = v(e, 3);
  x.email = v(e, 4);
  x.countryCode = v(e, 5);
  x.areaCode = v(e, 6);
  x.localNumber = v(e, 7);
  x.extension = v(e, 8);
  x.anyText = v(e, 9);
  x.extensionPrefix = v(e, 10);
  x.speedDial = v(e, 11);
  x.unformatted = v(e, 12);
  if (x.countryCode.empty() && x.areaCode.empty() && x.localNumber.empty() && !x.legacyNumber.empty() &&
      !iequals(x.equipmentType, "Internet") && !iequals(x.equipmentType, "X.400")) {
    std::string ext = x.extension, text = x.anyText;
    parseLegacyPhone(x.legacyNumber, x);
    if (x.extension.empty()) x.extension = ext;
    if (x.anyText.empty()) x.anyText = text;
    x.fromLegacy = true;
  }
  return x;
}

bool XTN::isEmail() const {
  if (iequals(equipmentType, "Internet") || iequals(equipmentType, "X.400")) return true;
  return !email.empty() && localNumber.empty() && legacyNumber.empty() && unformatted.empty();
}

std::string XTN::contactValue() const {
  if (isEmail()) return email.empty() ? legacyNumber : email;
  if (!localNumber.empty()) {
    std::string s;
    if (!countryCode.empty()) s += "+" + countryCode + " ";
    if (!areaCode.empty()) s += "(" + areaCode + ") ";
    s += localNumber;
    if (!extension.empty()) s += " ext. " + extension;
    return s;
  }
  if (!unformatted.empty()) return unformatted;
  return legacyNumber;
}

XCN XCN::from(const Element& e) {
  XCN x;
  x.id = v(e, 1);
  x.family = sv(e, 2, 1);
  x.given = v(e, 3);
  x.middle = v(e, 4);
  x.suffix = v(e, 5);
  x.prefix = v(e, 6);
  x.degree = v(e, 7);
  x.sourceTable = v(e, 8);
  x.assigningAuthority = hdOf(e, 9);
  x.nameTypeCode = v(e, 10);
  x.checkDigit = v(e, 11);
  x.checkDigitScheme = v(e, 12);
  x.identifierTypeCode = v(e, 13);
  x.assigningFacility = hdOf(e, 14);
  x.professionalSuffix = v(e, 21);
  return x;
}

PL PL::from(const Element& e) {
  PL x;
  x.pointOfCare = sv(e, 1, 1);
  x.room = sv(e, 2, 1);
  x.bed = sv(e, 3, 1);
  x.facility = hdOf(e, 4);
  x.status = v(e, 5);
  x.locationType = v(e, 6);
  x.building = sv(e, 7, 1);
  x.floor = sv(e, 8, 1);
  x.description = v(e, 9);
  const Element ei = e.part(10);
  x.comprehensiveId.entityId = ei.subcomponent(1).value();
  x.comprehensiveId.assigner = HD{ei.subcomponent(2).value(), ei.subcomponent(3).value(), ei.subcomponent(4).value()};
  x.assigningAuthority = hdOf(e, 11);
  return x;
}

bool isNumeric(std::string_view nm) { return toDecimal(nm).has_value(); }

std::optional<std::string> toDecimal(std::string_view nm) {
  nm = trim(nm);
  bool negative = false;
  if (!nm.empty() && (nm.front() == '+' || nm.front() == '-')) {
    negative = nm.front() == '-';
    nm.remove_prefix(1);
  }
  const size_t dot = nm.find('.');
  std::string_view ip = nm.substr(0, dot), fp = dot == std::string_view::npos ? std::string_view() : nm.substr(dot + 1);
  if (ip.empty() && fp.empty()) return std::nullopt;
  for (const char c : ip)
    if (c < '0' || c > '9') return std::nullopt;
  for (const char c : fp)
    if (c < '0' || c > '9') return std::nullopt;
  while (ip.size() > 1 && ip.front() == '0') ip.remove_prefix(1);
  std::string out = negative ? "-" : "";
  out += ip.empty() ? "0" : std::string(ip);
  if (!fp.empty()) out += "." + std::string(fp);
  return out;
}

bool SN::valid() const {
  static const std::string_view kComparators[] = {"", ">", "<", ">=", "<=", "=", "<>"};
  bool comparatorOk = false;
  for (const auto c : kComparators) comparatorOk = comparatorOk || c == comparator;
  if (!comparatorOk) return false;
  if (num1.empty() || !isNumeric(num1)) return false;
  if (separator.empty() || separator == "+") return num2.empty();
  if (separator != "-" && separator != "/" && separator != "." && separator != ":") return false;
  return !num2.empty() && isNumeric(num2);
}

SN SN::from(const Element& e) { return SN{v(e, 1), v(e, 2), v(e, 3), v(e, 4)}; }

std::optional<DateTime> DateTime::parse(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  const size_t digits = i;
  if (digits < 4 || digits > 14 || digits % 2 != 0) return std::nullopt;
  auto num = [&](size_t pos, size_t len) {
    int n = 0;
    for (size_t k = 0; k < len; ++k) n = n * 10 + (s[pos + k] - '0');
    return n;
  };
  DateTime dt;
  dt.year = num(0, 4);
  dt.precision = Precision::Year;
  if (digits >= 6) dt.month = num(4, 2), dt.precision = Precision::Month;
  if (digits >= 8) dt.day = num(6, 2), dt.precision = Precision::Day;
  if (digits >= 10) dt.hour = num(8, 2), dt.precision = Precision::Hour;
  if (digits >= 12) dt.minute = num(10, 2), dt.precision = Precision::Minute;
  if (digits >= 14) dt.second = num(12, 2), dt.precision = Precision::Second;
  if (dt.year < 1) return std::nullopt;
  if (digits >= 6 && (dt.month < 1 || dt.month > 12)) return std::nullopt;
  if (digits >= 8 && (dt.day < 1 || dt.day > daysInMonth(dt.year, dt.month))) return std::nullopt;
  if (dt.hour > 23 || dt.minute > 59 || dt.second > 59) return std::nullopt;
  if (i < s.size() && s[i] == '.') {
    if (digits != 14) return std::nullopt;
    const size_t start = ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start || i - start > 4) return std::nullopt;
    dt.fraction = std::string(s.substr(start, i - start));
    dt.precision = Precision::FractionalSecond;
  }
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    const int sign = s[i] == '-' ? -1 : 1;
    ++i;
    if (s.size() - i != 4) return std::nullopt;
    for (size_t k = i; k < s.size(); ++k)
      if (s[k] < '0' || s[k] > '9') return std::nullopt;
    const int hh = num(i, 2), mm = num(i + 2, 2);
    if (mm > 59) return std::nullopt;
    const int offset = sign * (hh * 60 + mm);
    if (offset < -12 * 60 || offset > 14 * 60) return std::nullopt;
    dt.offsetMinutes = offset;
    i = s.size();
  }
  if (i != s.size()) return std::nullopt;
  return dt;
}

std::optional<DateTime> DateTime::from(const Element& e) {
  auto dt = parse(v(e, 1));
  if (dt) dt->degreeOfPrecision = v(e, 2);
  return dt;
}

std::string DateTime::toFhirDate() const {
  char buf[16];
  if (precision == Precision::Year) std::snprintf(buf, sizeof buf, "%04d", year);
  else if (precision == Precision::Month) std::snprintf(buf, sizeof buf, "%04d-%02d", year, month);
  else std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", year, month, day);
  return buf;
}

std::optional<std::string> DateTime::toFhirDateTime(std::optional<int> assumedOffsetMinutes) const {
  if (precision <= Precision::Day) return toFhirDate();
  const std::optional<int> offset = offsetMinutes ? offsetMinutes : assumedOffsetMinutes;
  if (!offset) return std::nullopt;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", year, month, day, hour, minute, second);
  std::string out = buf;
  if (!fraction.empty()) out += "." + fraction;
  const int abs = *offset < 0 ? -*offset : *offset;
  std::snprintf(buf, sizeof buf, "%c%02d:%02d", *offset < 0 ? '-' : '+', abs / 60, abs % 60);
  return out + buf;
}

}  // namespace hearth::hl7
