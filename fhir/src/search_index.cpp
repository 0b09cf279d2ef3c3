// Search indexing (search_index.h): the rows every R4 search parameter of a resource's type
// contributes, extracted by evaluating the published FHIRPath expressions once per write.
//
// Cost model: the expressions are parsed once, at construction, and trimmed to the parts that
// can match the type they are used for (the published expressions cover many bases joined with
// '|'; evaluating "Patient.name | Practitioner.name | ..." on a Patient would test every base).
// extract() then evaluates each expression once and turns the items into rows reading the JSON
// directly, without further FHIRPath navigation.
#include "hearth/fhir/search_index.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "hearth/fhir/fhirpath.h"

namespace hearth::fhir {

namespace {

using Value = rapidjson::Value;

// =============================================================================================
// Strings
// =============================================================================================

// The folded form of U+00C0 .. U+024F (Latin-1 Supplement letters, Latin Extended-A and a few
// of Latin Extended-B), or nullptr where the character is kept as it is (×, ÷, the rest of
// Extended-B).
class LatinFoldTable {
 public:
  static constexpr char32_t kFirst = 0xC0, kLast = 0x24F;

  static const LatinFoldTable& get() {
    static const LatinFoldTable table;
    return table;
  }
  const char* fold(char32_t c) const { return c >= kFirst && c <= kLast ? table_[c - kFirst] : nullptr; }

 private:
  struct Range {
    char32_t from, to;
    const char* folded;
  };
  LatinFoldTable() {
    table_.fill(nullptr);
    static constexpr Range kRanges[] = {
        // Latin-1 Supplement (upper case, then lower case; × and ÷ are not letters)
        {0xC0, 0xC5, "a"}, {0xC6, 0xC6, "ae"}, {0xC7, 0xC7, "c"}, {0xC8, 0xCB, "e"}, {0xCC, 0xCF, "i"},
        {0xD0, 0xD0, "d"}, {0xD1, 0xD1, "n"}, {0xD2, 0xD6, "o"}, {0xD8, 0xD8, "o"}, {0xD9, 0xDC, "u"},
        {0xDD, 0xDD, "y"}, {0xDE, 0xDE, "th"}, {0xDF, 0xDF, "ss"},
        {0xE0, 0xE5, "a"}, {0xE6, 0xE6, "ae"}, {0xE7, 0xE7, "c"}, {0xE8, 0xEB, "e"}, {0xEC, 0xEF, "i"},
        {0xF0, 0xF0, "d"}, {0xF1, 0xF1, "n"}, {0xF2, 0xF6, "o"}, {0xF8, 0xF8, "o"}, {0xF9, 0xFC, "u"},
        {0xFD, 0xFD, "y"}, {0xFE, 0xFE, "th"}, {0xFF, 0xFF, "y"},
        // Latin Extended-A (upper/lower pairs)
        {0x100, 0x105, "a"}, {0x106, 0x10D, "c"}, {0x10E, 0x111, "d"}, {0x112, 0x11B, "e"},
        {0x11C, 0x123, "g"}, {0x124, 0x127, "h"}, {0x128, 0x131, "i"}, {0x132, 0x133, "ij"},
        {0x134, 0x135, "j"}, {0x136, 0x138, "k"}, {0x139, 0x142, "l"}, {0x143, 0x14B, "n"},
        {0x14C, 0x151, "o"}, {0x152, 0x153, "oe"}, {0x154, 0x159, "r"}, {0x15A, 0x161, "s"},
        {0x162, 0x167, "t"}, {0x168, 0x173, "u"}, {0x174, 0x175, "w"}, {0x176, 0x178, "y"},
        {0x179, 0x17E, "z"}, {0x17F, 0x17F, "s"},
        // Latin Extended-B: Vietnamese horned vowels, Pinyin caron vowels, Romanian comma below
        {0x1A0, 0x1A1, "o"}, {0x1AF, 0x1B0, "u"}, {0x1CD, 0x1CE, "a"}, {0x1CF, 0x1D0, "i"},
        {0x1D1, 0x1D2, "o"}, {0x1D3, 0x1DC, "u"}, {0x218, 0x219, "s"}, {0x21A, 0x21B, "t"},
    };
    for (const Range& r : kRanges) {
      for (char32_t c = r.from; c <= r.to; ++c) table_[c - kFirst] = r.folded;
    }
  }
  std::array<const char*, kLast - kFirst + 1> table_;
};

bool isUnicodeSpace(char32_t c) {
  return c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// Decodes one UTF-8 sequence at s[i] (i < s.size()); returns its length, or 0 when the bytes
// there are not a valid, shortest-form sequence of a scalar value.
size_t decodeUtf8(std::string_view s, size_t i, char32_t& cp) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const unsigned char b = byte(i + k);
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  return len;
}

void appendUtf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

// Simple lower-casing of the Greek and Cyrillic capitals (no accents removed there).
char32_t lowerNonLatin(char32_t c) {
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 0x20;  // Greek Α..Ω
  if (c == 0x3C2) return 0x3C3;                                 // final sigma ς -> σ
  if (c >= 0x410 && c <= 0x42F) return c + 0x20;                // Cyrillic А..Я
  if (c >= 0x400 && c <= 0x40F) return c + 0x50;                // Cyrillic Ѐ..Џ
  return c;
}

// =============================================================================================
// Dates
// =============================================================================================

constexpr int64_t kMicrosPerSecond = 1000000;
constexpr int64_t kMicrosPerDay = 86400 * kMicrosPerSecond;

bool isLeapYear(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int daysInMonth(int y, int m) {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && isLeapYear(y) ? 29 : kDays[m - 1];
}

// Days from 1970-01-01 to y-m-d (proleptic Gregorian; 1 <= y <= 9999).
int64_t daysSinceEpoch(int y, int m, int d) {
  static constexpr int kBeforeMonth[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
  const auto leapsThrough = [](int64_t year) { return year / 4 - year / 100 + year / 400; };  // years 1..year
  int64_t days = 365 * (int64_t{y} - 1970) + leapsThrough(y - 1) - leapsThrough(1969);
  days += kBeforeMonth[m - 1] + (m > 2 && isLeapYear(y) ? 1 : 0);
  return days + d - 1;
}

// Reads exactly n digits at s[i]; advances i.
bool readDigits(std::string_view s, size_t& i, size_t n, int& out) {
  if (i + n > s.size()) return false;
  int v = 0;
  for (size_t k = 0; k < n; ++k) {
    const char c = s[i + k];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  i += n;
  return true;
}

// =============================================================================================
// References
// =============================================================================================

// FHIR id: [A-Za-z0-9\-\.]{1,64}
bool isFhirId(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) {
      return false;
    }
  }
  return true;
}

bool startsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// The "Type/id" a literal reference points at: the last two path segments of a relative
// reference or of an http(s) URL, after any "/_history/<version>". False for other URIs
// (urn:uuid:, urn:oid:, ...), conditional references and anything that is not a resource type
// followed by a valid id.
bool referenceTarget(std::string_view ref, const Model& model, std::string_view& type, std::string_view& id) {
  std::string_view path = ref;
  if (startsWith(ref, "http://") || startsWith(ref, "https://")) {
    path = ref.substr(ref.find("//") + 2);
    const size_t slash = path.find('/');
    if (slash == std::string_view::npos) return false;
    path = path.substr(slash + 1);  // below the host
  } else if (ref.find(':') != std::string_view::npos) {
    return false;  // some other URI scheme
  }
  if (path.find_first_of("?#") != std::string_view::npos) return false;
  if (const size_t h = path.rfind("/_history/"); h != std::string_view::npos) {
    if (path.find('/', h + 10) != std::string_view::npos) return false;
    path = path.substr(0, h);
  }
  const size_t last = path.rfind('/');
  if (last == std::string_view::npos) return false;
  id = path.substr(last + 1);
  const std::string_view head = path.substr(0, last);
  const size_t prev = head.rfind('/');
  type = prev == std::string_view::npos ? head : head.substr(prev + 1);
  // A relative reference is exactly Type/id; an absolute one may have any base before it.
  if (prev != std::string_view::npos && path.data() == ref.data()) return false;
  return isFhirId(id) && model.isResourceType(type);
}

// =============================================================================================
// Expressions
// =============================================================================================

bool isIdentStart(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool isIdentChar(char c) { return isIdentStart(c) || (c >= '0' && c <= '9'); }

// Splits `expr` at its top-level '|' operators. False when it has a top-level operator that
// binds more loosely than '|' (comparison, equality, in/contains, and/or/xor/implies): cutting
// such an expression at '|' would change its meaning.
bool splitTopLevelUnion(std::string_view expr, std::vector<std::string_view>& parts) {
  int depth = 0;
  size_t start = 0;
  char prevSignificant = 0;  // the last non-blank character outside literals
  for (size_t i = 0; i < expr.size(); ++i) {
    const char c = expr[i];
    if (c == '\'' || c == '`' || c == '"') {  // literal or delimited identifier: skip it
      for (++i; i < expr.size() && expr[i] != c; ++i) {
        if (expr[i] == '\\') ++i;
      }
      prevSignificant = c;
      continue;
    }
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') --depth;
    if (depth == 0) {
      if (c == '|') {
        parts.push_back(expr.substr(start, i - start));
        start = i + 1;
      } else if (c == '=' || c == '<' || c == '>' || c == '~' || c == '!') {
        return false;
      } else if (isIdentStart(c)) {
        size_t end = i;
        while (end < expr.size() && isIdentChar(expr[end])) ++end;
        const std::string_view word = expr.substr(i, end - i);
        if (prevSignificant != '.' && (word == "and" || word == "or" || word == "xor" || word == "implies" ||
                                       word == "in" || word == "contains")) {
          return false;
        }
        i = end - 1;
        prevSignificant = 'a';
        continue;
      }
    }
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') prevSignificant = c;
  }
  parts.push_back(expr.substr(start));
  return true;
}

// The identifier a union part starts with, after blanks and opening parentheses.
std::string_view leadingIdentifier(std::string_view part) {
  size_t i = 0;
  while (i < part.size() && (part[i] == ' ' || part[i] == '(' || part[i] == '\t' || part[i] == '\n')) ++i;
  size_t end = i;
  while (end < part.size() && isIdentChar(part[end])) ++end;
  return part.substr(i, end - i);
}

std::string_view trimBlanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

// =============================================================================================
// Item values
// =============================================================================================

// The complex types whose rows are built from their fields.
enum class Shape : uint8_t {
  Other, HumanName, Address, Identifier, Coding, CodeableConcept, ContactPoint, Quantity, Money, Period, Timing,
  Reference,
};

Shape shapeOf(std::string_view t) {
  if (t.empty()) return Shape::Other;
  switch (t[0]) {  // a switch on the first letter, then exact names: no hashing per item
    case 'A':
      if (t == "Address") return Shape::Address;
      if (t == "Age") return Shape::Quantity;
      break;
    case 'C':
      if (t == "CodeableConcept") return Shape::CodeableConcept;
      if (t == "Coding") return Shape::Coding;
      if (t == "ContactPoint") return Shape::ContactPoint;
      if (t == "Count") return Shape::Quantity;
      break;
    case 'D':
      if (t == "Duration" || t == "Distance") return Shape::Quantity;
      break;
    case 'H':
      if (t == "HumanName") return Shape::HumanName;
      break;
    case 'I':
      if (t == "Identifier") return Shape::Identifier;
      break;
    case 'M':
      if (t == "Money") return Shape::Money;
      if (t == "MoneyQuantity") return Shape::Quantity;
      break;
    case 'P':
      if (t == "Period") return Shape::Period;
      break;
    case 'Q':
      if (t == "Quantity") return Shape::Quantity;
      break;
    case 'R':
      if (t == "Reference") return Shape::Reference;
      break;
    case 'S':
      if (t == "SimpleQuantity") return Shape::Quantity;
      break;
    case 'T':
      if (t == "Timing") return Shape::Timing;
      break;
    default:
      break;
  }
  return Shape::Other;
}

const Value* member(const Value& object, const char* name) {
  if (!object.IsObject()) return nullptr;
  auto it = object.FindMember(name);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

std::string_view stringMember(const Value& object, const char* name) {
  const Value* v = member(object, name);
  return v && v->IsString() ? std::string_view(v->GetString(), v->GetStringLength()) : std::string_view();
}

// A JSON number, or a decimal kept as text (documents parsed with numbers as strings).
bool jsonNumber(const Value* v, double& out) {
  if (!v) return false;
  if (v->IsNumber()) {
    out = v->GetDouble();
    return true;
  }
  if (v->IsString()) {
    if (auto d = FhirPathDecimal::parse(std::string_view(v->GetString(), v->GetStringLength()))) {
      out = d->toDouble();
      return true;
    }
  }
  return false;
}

// Calls f(string_view) for a string member, or for each string of an array member.
template <typename F>
void forEachString(const Value& object, const char* name, F&& f) {
  const Value* v = member(object, name);
  if (!v) return;
  if (v->IsString()) {
    f(std::string_view(v->GetString(), v->GetStringLength()));
  } else if (v->IsArray()) {
    for (const Value& e : v->GetArray()) {
      if (e.IsString()) f(std::string_view(e.GetString(), e.GetStringLength()));
    }
  }
}

template <typename F>
void forEachObject(const Value& object, const char* name, F&& f) {
  const Value* v = member(object, name);
  if (!v) return;
  if (v->IsObject()) {
    f(*v);
  } else if (v->IsArray()) {
    for (const Value& e : v->GetArray()) {
      if (e.IsObject()) f(e);
    }
  }
}

// The text of a primitive item (String kind read from JSON or computed); empty if none.
std::string_view itemString(const FhirPathItem& item) {
  if (item.kind() != FhirPathKind::String || !item.hasValue()) return {};
  return item.stringValue();
}

}  // namespace

// =============================================================================================
// Public helpers
// =============================================================================================

std::string normalizeSearchString(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool pendingSpace = false;
  const auto emitSeparator = [&] {
    if (pendingSpace && !out.empty()) out += ' ';
    pendingSpace = false;
  };
  const LatinFoldTable& folds = LatinFoldTable::get();
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      ++i;
      if (b <= 0x20 || b == 0x7F) {  // blanks and control characters separate words
        pendingSpace = true;
        continue;
      }
      emitSeparator();
      out += static_cast<char>(b >= 'A' && b <= 'Z' ? b + ('a' - 'A') : b);
      continue;
    }
    char32_t cp = 0;
    const size_t len = decodeUtf8(s, i, cp);
    if (len == 0) {  // not UTF-8: drop the byte and resynchronise on the next one
      ++i;
      continue;
    }
    const std::string_view original = s.substr(i, len);
    i += len;
    if (isUnicodeSpace(cp)) {
      pendingSpace = true;
      continue;
    }
    if (cp >= 0x300 && cp <= 0x36F) continue;  // combining diacritical marks (decomposed accents)
    emitSeparator();
    if (const char* folded = folds.fold(cp)) {
      out += folded;
    } else if (const char32_t lower = lowerNonLatin(cp); lower != cp) {
      appendUtf8(out, lower);
    } else {
      out += original;
    }
  }
  return out;
}

bool fhirDateRange(std::string_view s, int64_t& lo, int64_t& hi) {
  size_t i = 0;
  int year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0;
  int64_t span = 0;  // microseconds covered by the precision written
  if (!readDigits(s, i, 4, year) || year == 0) return false;
  int64_t micros = 0;
  if (i == s.size()) {
    span = (isLeapYear(year) ? 366 : 365) * kMicrosPerDay;
  } else {
    if (s[i] != '-' || !readDigits(s, ++i, 2, month) || month < 1 || month > 12) return false;
    if (i == s.size()) {
      span = daysInMonth(year, month) * kMicrosPerDay;
    } else {
      if (s[i] != '-' || !readDigits(s, ++i, 2, day) || day < 1 || day > daysInMonth(year, month)) return false;
      span = kMicrosPerDay;
      if (i < s.size()) {
        if (s[i] != 'T' || !readDigits(s, ++i, 2, hour) || hour > 23) return false;
        if (i >= s.size() || s[i] != ':' || !readDigits(s, ++i, 2, minute) || minute > 59) return false;
        span = 60 * kMicrosPerSecond;
        if (i < s.size() && s[i] == ':') {
          if (!readDigits(s, ++i, 2, second) || second > 60) return false;  // 60: leap second
          span = kMicrosPerSecond;
          if (i < s.size() && s[i] == '.') {
            ++i;
            int digits = 0;
            int64_t fraction = 0;
            for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, ++digits) {
              if (digits < 6) fraction = fraction * 10 + (s[i] - '0');  // finer than 1 µs is ignored
            }
            if (digits == 0) return false;
            int64_t unit = 1;  // microseconds per unit of the last digit kept
            for (int d = std::min(digits, 6); d < 6; ++d) unit *= 10;
            micros = fraction * unit;
            span = unit;
          }
        }
        // Time-zone offset: Z, +hh:mm or -hh:mm (at most 14:00); none means UTC.
        if (i < s.size()) {
          if (s[i] == 'Z') {
            ++i;
          } else if (s[i] == '+' || s[i] == '-') {
            const bool east = s[i] == '+';
            int oh = 0, om = 0;
            if (!readDigits(s, ++i, 2, oh) || i >= s.size() || s[i] != ':' || !readDigits(s, ++i, 2, om) ||
                om > 59 || oh > 14 || (oh == 14 && om != 0)) {
              return false;
            }
            const int64_t offset = (int64_t{oh} * 60 + om) * 60 * kMicrosPerSecond;
            micros -= east ? offset : -offset;
          } else {
            return false;
          }
        }
      }
    }
  }
  if (i != s.size()) return false;
  const int64_t seconds = ((daysSinceEpoch(year, month, day) * 24 + hour) * 60 + minute) * 60 + second;
  lo = seconds * kMicrosPerSecond + micros;
  hi = lo + span - 1;
  return true;
}

bool SearchIndexer::kindOf(std::string_view t, IndexKind& kind) {
  if (t == "string") {
    kind = IndexKind::String;
  } else if (t == "token") {
    kind = IndexKind::Token;
  } else if (t == "date") {
    kind = IndexKind::Date;
  } else if (t == "number") {
    kind = IndexKind::Number;
  } else if (t == "quantity") {
    kind = IndexKind::Quantity;
  } else if (t == "reference") {
    kind = IndexKind::Reference;
  } else if (t == "uri") {
    kind = IndexKind::Uri;
  } else {
    return false;
  }
  return true;
}

namespace {

// The part of a published expression that can match `type`: the '|' alternatives rooted at
// another resource type are dropped (they yield nothing on `type`). Empty if none is left.
std::string expressionForType(const Model& model, const std::string& type, const std::string& published) {
  std::vector<std::string_view> parts;
  if (!splitTopLevelUnion(published, parts)) return published;  // evaluated whole, as published
  std::string kept;
  size_t keptCount = 0;
  for (std::string_view part : parts) {
    const std::string_view root = leadingIdentifier(part);
    // Keep the parts rooted at this type, at Resource / DomainResource, or at no type at all
    // ("name | alias" of InsurancePlan, relative to the resource).
    if (model.isResourceType(root) && root != type) continue;
    if (!kept.empty()) kept += " | ";
    kept += trimBlanks(part);
    ++keptCount;
  }
  return keptCount == parts.size() ? published : kept;
}

// An expression part in a canonical spelling for comparing parts: blanks outside literals
// collapsed to one, none next to parentheses and dots, outer blanks removed.
std::string canonicalPart(std::string_view part) {
  std::string out;
  bool blank = false;
  for (size_t i = 0; i < part.size(); ++i) {
    const char c = part[i];
    if (c == '\'' || c == '`' || c == '"') {  // copy a literal as written
      const size_t start = i;
      for (++i; i < part.size() && part[i] != c; ++i) {
        if (part[i] == '\\') ++i;
      }
      if (blank && !out.empty()) out += ' ';
      blank = false;
      out.append(part.substr(start, std::min(i + 1, part.size()) - start));
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      blank = true;
      continue;
    }
    const bool tight = c == '(' || c == ')' || c == '.' || (!out.empty() && (out.back() == '(' || out.back() == '.'));
    if (blank && !out.empty() && !tight) out += ' ';
    blank = false;
    out += c;
  }
  return out;
}

struct DerivedTable {
  std::unordered_map<std::string, DerivedParam> byKey;  // "<type>\n<code>"
  static std::string key(std::string_view type, std::string_view code) {
    std::string k;
    k.reserve(type.size() + code.size() + 1);
    k.append(type).append(1, '\n').append(code);
    return k;
  }
};

// Finds, per resource type, the parameters whose rows are those of others (search_index.h).
DerivedTable buildDerivedTable(const Model& model) {
  DerivedTable table;
  struct P {
    const SearchParamDef* def;
    IndexKind kind;
    std::vector<std::string> parts;  // canonical, sorted, unique
    bool derived = false;
  };
  constexpr std::string_view kFilterHead = ".where(resolve() is ";
  for (const std::string& type : model.resourceTypes()) {
    std::vector<P> ps;
    for (const SearchParamDef& def : model.searchParams(type)) {
      IndexKind kind;
      if (!SearchIndexer::kindOf(def.type, kind) || def.expression.empty() || def.code == "_id" ||
          def.code == "_lastUpdated") {
        continue;
      }
      const std::string text = expressionForType(model, type, def.expression);
      std::vector<std::string_view> raw;
      if (text.empty() || !splitTopLevelUnion(text, raw)) continue;
      P p{&def, kind, {}};
      for (std::string_view r : raw) p.parts.push_back(canonicalPart(r));
      std::sort(p.parts.begin(), p.parts.end());
      p.parts.erase(std::unique(p.parts.begin(), p.parts.end()), p.parts.end());
      ps.push_back(std::move(p));
    }
    // Smaller expressions first (ties by code), so the parts a union may be made of are settled
    // (stored or not) before it is considered.
    std::sort(ps.begin(), ps.end(), [](const P& a, const P& b) {
      return a.parts.size() != b.parts.size() ? a.parts.size() < b.parts.size() : a.def->code < b.def->code;
    });
    for (P& p : ps) {
      DerivedParam d;
      // filter: "X.where(resolve() is T)" where "X" is a stored reference parameter of its own.
      if (p.kind == IndexKind::Reference && p.parts.size() == 1) {
        const std::string& part = p.parts[0];
        const size_t at = part.rfind(kFilterHead);
        if (at != std::string::npos && part.back() == ')') {
          const std::string base = part.substr(0, at);
          const std::string target = part.substr(at + kFilterHead.size(), part.size() - 1 - at - kFilterHead.size());
          const auto q = std::find_if(ps.begin(), ps.end(), [&](const P& o) {
            return &o != &p && !o.derived && o.kind == IndexKind::Reference && o.parts.size() == 1 && o.parts[0] == base;
          });
          if (q != ps.end() && model.isResourceType(target)) {
            d.params.push_back(q->def->code);
            d.targetType = target;
          }
        }
      }
      // union: the parts are exactly those of stored parameters of the same kind settled before.
      if (d.params.empty()) {
        std::vector<std::string> covered;
        for (const P& o : ps) {
          if (&o == &p) break;  // only those settled before
          if (o.derived || o.kind != p.kind) continue;
          if (!std::includes(p.parts.begin(), p.parts.end(), o.parts.begin(), o.parts.end())) continue;
          d.params.push_back(o.def->code);
          covered.insert(covered.end(), o.parts.begin(), o.parts.end());
        }
        std::sort(covered.begin(), covered.end());
        covered.erase(std::unique(covered.begin(), covered.end()), covered.end());
        if (covered != p.parts) d.params.clear();
      }
      if (d.params.empty()) continue;
      p.derived = true;
      const std::string& code = p.def->code;
      if (d.targetType.empty()) {  // the suffixed rows of a union are the union of theirs
        for (const char* suffix : {":of-type", ":identifier"}) {
          DerivedParam s;
          for (const std::string& q : d.params) s.params.push_back(q + suffix);
          table.byKey.emplace(DerivedTable::key(type, code + suffix), std::move(s));
        }
      }
      table.byKey.emplace(DerivedTable::key(type, code), std::move(d));
    }
  }
  return table;
}

const DerivedTable& derivedTable() {
  static const DerivedTable table = buildDerivedTable(Model::r4());
  return table;
}

}  // namespace

const DerivedParam* derivedParam(std::string_view type, std::string_view code) {
  const DerivedTable& t = derivedTable();
  if (t.byKey.empty()) return nullptr;
  auto it = t.byKey.find(DerivedTable::key(type, code));
  return it == t.byKey.end() ? nullptr : &it->second;
}

bool rowOfParam(std::string_view type, std::string_view code, std::string_view rowParam,
                std::string_view rowTargetType) {
  if (rowParam == code) return true;
  const DerivedParam* d = derivedParam(type, code);
  if (!d || (!d->targetType.empty() && d->targetType != rowTargetType)) return false;
  return std::find(d->params.begin(), d->params.end(), rowParam) != d->params.end();
}

// =============================================================================================
// SearchIndexer
// =============================================================================================

struct SearchIndexer::Impl {
  struct Param {
    std::string code;
    std::string ofTypeCode;      // "<code>:of-type" (token parameters)
    std::string identifierCode;  // "<code>:identifier" (reference parameters)
    IndexKind kind;
    FhirPathExpression expression;
    // A filter-derived reference parameter (derivedParam): its references are the rows of
    // another parameter, so only their identifiers (":identifier" rows) are stored for it.
    bool identifiersOnly = false;
  };
  struct TypeParams {
    std::string type;
    std::vector<Param> params;
  };

  explicit Impl(const Model& m) : model(m) {}

  // The position of `type` in `types`, or -1.
  ptrdiff_t find(std::string_view type) const {
    auto it = std::lower_bound(types.begin(), types.end(), type,
                               [](const TypeParams& t, std::string_view name) { return t.type < name; });
    return it != types.end() && it->type == type ? it - types.begin() : -1;
  }

  // The part of a published expression that can match `type`: the '|' alternatives rooted at
  // another resource type are dropped (they yield nothing on `type`). Empty if none is left.
  std::string expressionFor(const std::string& type, const std::string& published) const;

  const Model& model;
  std::vector<TypeParams> types;  // sorted by type
  // Per type (same positions as `types`): the most rows one resource has produced so far, capped,
  // to reserve the result vector once instead of growing it row by row.
  std::unique_ptr<std::atomic<uint32_t>[]> rowHints;
  size_t unparsable = 0;          // (type, parameter) pairs skipped: expression does not parse (R4: 0)
};

std::string SearchIndexer::Impl::expressionFor(const std::string& type, const std::string& published) const {
  return expressionForType(model, type, published);
}

namespace {

// Builds the rows of one parameter for one resource, dropping duplicates of the rows this
// parameter already produced.
class RowBuilder {
 public:
  RowBuilder(std::vector<IndexRow>& rows, const Model& model) : rows_(rows), model_(model) {}

  void begin(const std::string& param, const std::string& ofTypeParam, const std::string& identifierParam,
             bool identifiersOnly) {
    param_ = &param;
    identifiersOnly_ = identifiersOnly;
    ofTypeParam_ = &ofTypeParam;
    identifierParam_ = &identifierParam;
    first_ = rows_.size();
  }

  void add(IndexKind kind, const FhirPathItem& item) {
    switch (kind) {
      case IndexKind::String: return addString(item);
      case IndexKind::Token: return addToken(item);
      case IndexKind::Date: return addDate(item);
      case IndexKind::Number: return addNumber(item);
      case IndexKind::Quantity: return addQuantity(item);
      case IndexKind::Reference: return addReference(item);
      case IndexKind::Uri: return addUri(item);
    }
  }

 private:
  IndexRow& open(IndexKind kind, const std::string* param = nullptr) {
    IndexRow& row = rows_.emplace_back();
    row.kind = kind;
    row.param = param ? *param : *param_;
    return row;
  }
  // IndexRow equality, cheapest and most discriminating fields first.
  static bool sameRow(const IndexRow& a, const IndexRow& b) {
    return a.kind == b.kind && a.lo == b.lo && a.hi == b.hi && a.value == b.value && a.code == b.code &&
           a.text == b.text && a.exact == b.exact && a.system == b.system && a.url == b.url &&
           a.refId == b.refId && a.refType == b.refType && a.unit == b.unit && a.param == b.param;
  }
  // Keeps the row last opened unless it repeats one of this parameter's rows.
  void close() {
    const IndexRow& row = rows_.back();
    for (size_t i = first_; i + 1 < rows_.size(); ++i) {
      if (sameRow(rows_[i], row)) {
        rows_.pop_back();
        return;
      }
    }
  }

  // ---- string ----------------------------------------------------------------------------
  void stringRow(std::string_view value) {
    if (value.empty()) return;
    IndexRow& row = open(IndexKind::String);
    row.text = normalizeSearchString(value);
    row.exact = value;
    close();
  }
  // Every string leaf of a complex value (its own id and extensions left out).
  void stringLeaves(const Value& v, int depth) {
    if (v.IsString()) return stringRow(std::string_view(v.GetString(), v.GetStringLength()));
    if (depth > 4) return;
    if (v.IsArray()) {
      for (const Value& e : v.GetArray()) stringLeaves(e, depth + 1);
      return;
    }
    if (!v.IsObject()) return;
    for (const auto& m : v.GetObject()) {
      const std::string_view name(m.name.GetString(), m.name.GetStringLength());
      if (name.empty() || name[0] == '_' || name == "id" || name == "extension" || name == "modifierExtension") {
        continue;
      }
      stringLeaves(m.value, depth + 1);
    }
  }
  void addString(const FhirPathItem& item) {
    if (item.kind() == FhirPathKind::String) return stringRow(itemString(item));
    if (item.kind() != FhirPathKind::Object || !item.json()) return;
    const Value& v = *item.json();
    const auto each = [this](std::string_view s) { stringRow(s); };
    switch (shapeOf(item.typeName())) {
      case Shape::HumanName:
        for (const char* f : {"family", "given", "prefix", "suffix", "text"}) forEachString(v, f, each);
        return;
      case Shape::Address:
        for (const char* f : {"line", "city", "district", "state", "postalCode", "country", "text"}) {
          forEachString(v, f, each);
        }
        return;
      default:
        return stringLeaves(v, 0);
    }
  }

  // ---- token -----------------------------------------------------------------------------
  void tokenRow(std::string_view system, std::string_view code, std::string_view text,
                const std::string* param = nullptr) {
    if (system.empty() && code.empty() && text.empty()) return;
    IndexRow& row = open(IndexKind::Token, param);
    row.system = system;
    row.code = code;
    if (!text.empty()) row.text = normalizeSearchString(text);
    close();
  }
  void codingRow(const Value& coding) {
    tokenRow(stringMember(coding, "system"), stringMember(coding, "code"), stringMember(coding, "display"));
  }
  // An Identifier as a token of `param`; with `ofType`, also the rows :of-type searches use.
  void identifierRows(const Value& identifier, const std::string& param, bool ofType) {
    const std::string_view system = stringMember(identifier, "system");
    const std::string_view value = stringMember(identifier, "value");
    const Value* type = member(identifier, "type");
    tokenRow(system, value, type ? stringMember(*type, "text") : std::string_view(), &param);
    // :of-type rows: the identifier type's coding system, and "<type code>|<value>".
    if (!ofType || !type || value.empty()) return;
    forEachObject(*type, "coding", [&](const Value& coding) {
      const std::string_view typeCode = stringMember(coding, "code");
      if (typeCode.empty()) return;
      IndexRow& row = open(IndexKind::Token, ofTypeParam_);
      row.system = stringMember(coding, "system");
      row.code.reserve(typeCode.size() + 1 + value.size());
      row.code.append(typeCode).append(1, '|').append(value);
      close();
    });
  }
  void addToken(const FhirPathItem& item) {
    switch (item.kind()) {
      case FhirPathKind::String:
        return tokenRow({}, itemString(item), {});
      case FhirPathKind::Boolean:
        if (item.hasValue()) tokenRow({}, item.booleanValue() ? "true" : "false", {});
        return;
      case FhirPathKind::Integer: case FhirPathKind::Decimal: case FhirPathKind::Date:
      case FhirPathKind::DateTime: case FhirPathKind::Time:
        if (item.hasValue()) tokenRow({}, item.toString(), {});
        return;
      case FhirPathKind::Object:
        break;
      default:
        return;
    }
    if (!item.json()) return;
    const Value& v = *item.json();
    switch (shapeOf(item.typeName())) {
      case Shape::Coding:
        return codingRow(v);
      case Shape::CodeableConcept: {
        forEachObject(v, "coding", [this](const Value& coding) { codingRow(coding); });
        // The concept's own text, for :text (alone when there are no codings), unless a row of
        // this parameter carries that text already (a coding's display, usually): :text matches
        // any row's text, so the row would only add an index entry.
        const std::string_view text = stringMember(v, "text");
        if (text.empty()) return;
        std::string normalized = normalizeSearchString(text);
        for (size_t i = first_; i < rows_.size(); ++i) {
          if (rows_[i].kind == IndexKind::Token && rows_[i].text == normalized && rows_[i].param == *param_) return;
        }
        IndexRow& row = open(IndexKind::Token);
        row.text = std::move(normalized);
        return close();
      }
      case Shape::Identifier:
        return identifierRows(v, *param_, true);
      case Shape::ContactPoint: {
        const std::string_view value = stringMember(v, "value");
        if (!value.empty()) tokenRow(stringMember(v, "system"), value, {});
        return;
      }
      default:
        return;
    }
  }

  // ---- date ------------------------------------------------------------------------------
  void dateRow(int64_t lo, int64_t hi) {
    IndexRow& row = open(IndexKind::Date);
    row.lo = lo;
    row.hi = hi;
    close();
  }
  void dateText(std::string_view text) {
    int64_t lo = 0, hi = 0;
    if (fhirDateRange(text, lo, hi)) dateRow(lo, hi);
  }
  void periodRow(const Value& period) {
    const std::string_view start = stringMember(period, "start"), end = stringMember(period, "end");
    if (start.empty() && end.empty()) return;
    int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max(), ignored = 0;
    if (!start.empty() && !fhirDateRange(start, lo, ignored)) return;
    if (!end.empty() && !fhirDateRange(end, ignored, hi)) return;
    dateRow(lo, hi);
  }
  void addDate(const FhirPathItem& item) {
    const FhirPathKind k = item.kind();
    if (k == FhirPathKind::Date || k == FhirPathKind::DateTime) {
      if (!item.hasValue()) return;
      const Value* v = item.json();
      if (v && v->IsString()) return dateText(std::string_view(v->GetString(), v->GetStringLength()));
      return dateText(formatFhirPathDateTime(item.dateTimeValue(), k));  // a computed value
    }
    if (k != FhirPathKind::Object || !item.json()) return;
    const Value& v = *item.json();
    switch (shapeOf(item.typeName())) {
      case Shape::Period:
        return periodRow(v);
      case Shape::Timing:
        forEachString(v, "event", [this](std::string_view e) { dateText(e); });
        if (const Value* repeat = member(v, "repeat")) {
          if (const Value* bounds = member(*repeat, "boundsPeriod")) periodRow(*bounds);
        }
        return;
      default:
        return;
    }
  }

  // ---- number and quantity ---------------------------------------------------------------
  static bool numericValue(const FhirPathItem& item, double& out) {
    if (!item.hasValue()) return false;
    if (item.kind() == FhirPathKind::Integer) {
      out = static_cast<double>(item.integerValue());
      return true;
    }
    if (item.kind() == FhirPathKind::Decimal) {
      if (const Value* v = item.json(); v && jsonNumber(v, out)) return true;
      out = item.decimalValue().toDouble();
      return true;
    }
    return false;
  }
  void addNumber(const FhirPathItem& item) {
    double value = 0;
    if (numericValue(item, value) ||
        (item.kind() == FhirPathKind::Object && item.json() && shapeOf(item.typeName()) == Shape::Quantity &&
         jsonNumber(member(*item.json(), "value"), value))) {
      IndexRow& row = open(IndexKind::Number);
      row.value = value;
      close();
    }
  }
  void addQuantity(const FhirPathItem& item) {
    double value = 0;
    if (numericValue(item, value)) {
      IndexRow& row = open(IndexKind::Quantity);
      row.value = value;
      return close();
    }
    if (item.kind() == FhirPathKind::Quantity && item.hasValue()) {  // a computed quantity
      IndexRow& row = open(IndexKind::Quantity);
      row.value = item.quantityValue().toDouble();
      row.code = item.quantityUnit();
      return close();
    }
    if (item.kind() != FhirPathKind::Object || !item.json()) return;
    const Value& v = *item.json();
    const Shape shape = shapeOf(item.typeName());
    if (shape != Shape::Quantity && shape != Shape::Money) return;  // Range, SampledData: not indexed
    if (!jsonNumber(member(v, "value"), value)) return;
    IndexRow& row = open(IndexKind::Quantity);
    row.value = value;
    if (shape == Shape::Money) {
      row.code = stringMember(v, "currency");
      if (!row.code.empty()) row.system = "urn:iso:std:iso:4217";
    } else {
      row.system = stringMember(v, "system");
      row.code = stringMember(v, "code");
      row.unit = stringMember(v, "unit");
    }
    close();
  }

  // ---- reference and uri -----------------------------------------------------------------
  void referenceRow(std::string_view ref) {
    if (ref.empty() || ref[0] == '#') return;  // contained resources are not indexed
    IndexRow& row = open(IndexKind::Reference);
    row.url = ref;
    std::string_view type, id;
    if (referenceTarget(ref, model_, type, id)) {
      row.refType = type;
      row.refId = id;
    }
    close();
  }
  void addReference(const FhirPathItem& item) {
    if (identifiersOnly_) {
      if (item.kind() == FhirPathKind::Object && item.json() && shapeOf(item.typeName()) == Shape::Reference) {
        if (const Value* identifier = member(*item.json(), "identifier"); identifier && identifier->IsObject()) {
          identifierRows(*identifier, *identifierParam_, false);
        }
      }
      return;
    }
    if (item.kind() == FhirPathKind::String) {  // canonical / uri: the URL only, without |version
      std::string_view url = itemString(item);
      if (url.empty() || url[0] == '#') return;
      if (item.typeName() == "canonical") url = url.substr(0, url.find('|'));
      IndexRow& row = open(IndexKind::Reference);
      row.url = url;
      return close();
    }
    if (item.kind() != FhirPathKind::Object || !item.json() || shapeOf(item.typeName()) != Shape::Reference) return;
    const Value& v = *item.json();
    referenceRow(stringMember(v, "reference"));
    if (const Value* identifier = member(v, "identifier"); identifier && identifier->IsObject()) {
      identifierRows(*identifier, *identifierParam_, false);
    }
  }
  void addUri(const FhirPathItem& item) {
    const std::string_view value = itemString(item);
    if (value.empty()) return;
    IndexRow& row = open(IndexKind::Uri);
    row.text = value;
    close();
  }

  std::vector<IndexRow>& rows_;
  const Model& model_;
  const std::string* param_ = nullptr;
  const std::string* ofTypeParam_ = nullptr;
  const std::string* identifierParam_ = nullptr;
  bool identifiersOnly_ = false;
  size_t first_ = 0;
};

}  // namespace

SearchIndexer::SearchIndexer(const Model& model, bool derivedRows) : impl_(std::make_unique<Impl>(model)) {
  // Parsed once per distinct text: many types share a parameter, and trimmed texts repeat.
  std::unordered_map<std::string, FhirPathExpression> parsed;
  std::unordered_set<std::string> refused;
  const auto parseOnce = [&](const std::string& text) -> const FhirPathExpression* {
    if (auto it = parsed.find(text); it != parsed.end()) return &it->second;
    if (refused.count(text)) return nullptr;
    try {
      return &parsed.emplace(text, FhirPathExpression::parse(text)).first->second;
    } catch (const FhirPathError&) {
      refused.insert(text);
      return nullptr;
    }
  };
  for (const std::string& type : model.resourceTypes()) {
    Impl::TypeParams tp;
    tp.type = type;
    for (const SearchParamDef& def : model.searchParams(type)) {
      IndexKind kind;
      if (!kindOf(def.type, kind) || def.expression.empty() || def.code == "_id" || def.code == "_lastUpdated") {
        continue;
      }
      const std::string text = impl_->expressionFor(type, def.expression);
      if (text.empty()) continue;  // no alternative of the expression is about this type
      const FhirPathExpression* expression = parseOnce(text);
      // Should trimming ever produce text the parser refuses, the published whole still works.
      if (!expression && text != def.expression) expression = parseOnce(def.expression);
      if (!expression) {
        ++impl_->unparsable;  // none for the R4 definitions; the parameter is then not indexed
        continue;
      }
      // Derived parameters (search_index.h): a union stores nothing of its own; a filter only
      // the identifiers of its references.
      const DerivedParam* derived = derivedRows ? nullptr : derivedParam(type, def.code);
      if (derived && derived->targetType.empty()) continue;
      tp.params.push_back(Impl::Param{def.code, def.code + ":of-type", def.code + ":identifier", kind, *expression,
                                      derived != nullptr});
    }
    impl_->types.push_back(std::move(tp));
  }
  std::sort(impl_->types.begin(), impl_->types.end(),
            [](const Impl::TypeParams& a, const Impl::TypeParams& b) { return a.type < b.type; });
  impl_->rowHints = std::make_unique<std::atomic<uint32_t>[]>(impl_->types.size());
  for (size_t i = 0; i < impl_->types.size(); ++i) impl_->rowHints[i].store(16, std::memory_order_relaxed);
}

SearchIndexer::~SearchIndexer() = default;

std::vector<IndexRow> SearchIndexer::extract(std::string_view type, const rapidjson::Value& resource) const {
  std::vector<IndexRow> rows;
  const ptrdiff_t position = impl_->find(type);
  if (position < 0 || !resource.IsObject()) return rows;
  const Impl::TypeParams* tp = &impl_->types[static_cast<size_t>(position)];
  std::atomic<uint32_t>& hint = impl_->rowHints[static_cast<size_t>(position)];
  rows.reserve(hint.load(std::memory_order_relaxed));
  FhirPathOptions options;
  options.asFiltersCollections = true;
  RowBuilder builder(rows, impl_->model);
  for (const Impl::Param& p : tp->params) {
    FhirPathResult result;
    try {
      result = p.expression.evaluate(resource, options);
    } catch (const FhirPathError&) {
      continue;  // this parameter contributes nothing; the others still do
    }
    builder.begin(p.code, p.ofTypeCode, p.identifierCode, p.identifiersOnly);
    for (const FhirPathItem& item : result) builder.add(p.kind, item);
  }
  constexpr uint32_t kMaxHint = 256;
  const uint32_t produced = static_cast<uint32_t>(std::min<size_t>(rows.size(), kMaxHint));
  if (produced > hint.load(std::memory_order_relaxed)) hint.store(produced, std::memory_order_relaxed);
  return rows;
}

}  // namespace hearth::fhir
