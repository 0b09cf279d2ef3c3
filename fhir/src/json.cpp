#include "hearth/fhir/json.h"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <cstdio>
#include <ctime>

#include "hearth/fhir/error.h"

namespace hearth::fhir {

namespace {

constexpr unsigned kParseFlags =
    rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
constexpr unsigned kRawParseFlags = kParseFlags | rapidjson::kParseNumbersAsStringsFlag;

using StringWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// SAX handler that splits a resource into (meta members, other members), dropping resourceType,
// id, meta.versionId and meta.lastUpdated, with numbers copied verbatim.
class StampHandler {
 public:
  StampHandler() : rest(restBuf), meta(metaBuf) {}

  bool Null() { return scalar([](StringWriter& w) { w.Null(); }); }
  bool Bool(bool b) { return scalar([b](StringWriter& w) { w.Bool(b); }); }
  bool Int(int i) { return scalar([i](StringWriter& w) { w.Int(i); }); }
  bool Uint(unsigned u) { return scalar([u](StringWriter& w) { w.Uint(u); }); }
  bool Int64(int64_t i) { return scalar([i](StringWriter& w) { w.Int64(i); }); }
  bool Uint64(uint64_t u) { return scalar([u](StringWriter& w) { w.Uint64(u); }); }
  bool Double(double d) { return scalar([d](StringWriter& w) { w.Double(d); }); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    return scalar([s, n](StringWriter& w) { w.RawValue(s, n, rapidjson::kNumberType); });
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    return scalar([s, n](StringWriter& w) { w.String(s, n); });
  }
  bool StartObject() {
    if (depth_ == 0) {
      depth_ = 1;
      rest.StartObject();
      return true;
    }
    if (StringWriter* w = target()) w->StartObject();
    ++depth_;
    return true;
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    std::string_view k(s, n);
    if (depth_ == 1) {
      if (k == "resourceType" || k == "id") {
        dropping_ = true;
        dropDepth_ = 1;
        return true;
      }
      route_ = (k == "meta") ? Route::Meta : Route::Rest;
      if (route_ == Route::Rest) rest.Key(s, n);
      return true;
    }
    if (depth_ == 2 && route_ == Route::Meta && !dropping_ &&
        (k == "versionId" || k == "lastUpdated")) {
      dropping_ = true;
      dropDepth_ = 2;
      return true;
    }
    if (StringWriter* w = target()) w->Key(s, n);
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    --depth_;
    if (depth_ == 0) {
      rest.EndObject();
      return true;
    }
    if (StringWriter* w = target()) w->EndObject();
    afterValue();
    return true;
  }
  bool StartArray() {
    if (StringWriter* w = target()) w->StartArray();
    ++depth_;
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    --depth_;
    if (StringWriter* w = target()) w->EndArray();
    afterValue();
    return true;
  }

  rapidjson::StringBuffer restBuf, metaBuf;
  StringWriter rest, meta;
  bool sawMeta() const { return metaBuf.GetSize() > 0; }

 private:
  enum class Route { Rest, Meta };
  StringWriter* target() {
    if (dropping_) return nullptr;
    return route_ == Route::Meta ? &meta : &rest;
  }
  template <class F>
  bool scalar(F f) {
    if (depth_ == 0) return false;  // a resource is an object
    if (StringWriter* w = target()) f(*w);
    afterValue();
    return true;
  }
  void afterValue() {
    if (dropping_ && depth_ == dropDepth_) dropping_ = false;
  }

  int depth_ = 0;
  Route route_ = Route::Rest;
  bool dropping_ = false;
  int dropDepth_ = 0;
};

// SAX handler forwarding to a PrettyWriter with numbers verbatim.
struct PrettyHandler {
  explicit PrettyHandler(rapidjson::StringBuffer& b) : w(b) { w.SetIndent(' ', 2); }
  bool Null() { return w.Null(); }
  bool Bool(bool b) { return w.Bool(b); }
  bool Int(int i) { return w.Int(i); }
  bool Uint(unsigned u) { return w.Uint(u); }
  bool Int64(int64_t i) { return w.Int64(i); }
  bool Uint64(uint64_t u) { return w.Uint64(u); }
  bool Double(double d) { return w.Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    return w.RawValue(s, n, rapidjson::kNumberType);
  }
  bool String(const char* s, rapidjson::SizeType n, bool) { return w.String(s, n); }
  bool StartObject() { return w.StartObject(); }
  bool Key(const char* s, rapidjson::SizeType n, bool) { return w.Key(s, n); }
  bool EndObject(rapidjson::SizeType n) { return w.EndObject(n); }
  bool StartArray() { return w.StartArray(); }
  bool EndArray(rapidjson::SizeType n) { return w.EndArray(n); }
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w;
};

std::string_view inner(const rapidjson::StringBuffer& b) {
  // "{...}" -> "..."
  std::string_view s(b.GetString(), b.GetSize());
  if (s.size() < 2) return {};
  return s.substr(1, s.size() - 2);
}

int64_t daysFromCivil(int y, unsigned m, unsigned d) {
  // Howard Hinnant's public-domain days-from-civil algorithm (proleptic Gregorian).
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

}  // namespace

rapidjson::Document parseJson(std::string_view body) {
  rapidjson::Document doc;
  rapidjson::MemoryStream ms(body.data(), body.size());
  doc.ParseStream<kParseFlags>(ms);
  if (doc.HasParseError()) {
    throw FhirError(400, IssueType::Structure,
                    std::string("Malformed JSON at byte ") + std::to_string(doc.GetErrorOffset()) +
                        ": " + rapidjson::GetParseError_En(doc.GetParseError()));
  }
  return doc;
}

std::string stampResource(std::string_view body, std::string_view resourceType, std::string_view id,
                          int64_t versionId, std::string_view lastUpdated) {
  StampHandler h;
  rapidjson::Reader reader;
  rapidjson::MemoryStream ms(body.data(), body.size());
  if (!reader.Parse<kRawParseFlags>(ms, h)) {
    throw FhirError(400, IssueType::Structure, "Malformed JSON resource");
  }
  std::string out;
  out.reserve(body.size() + 128);
  out += "{\"resourceType\":\"";
  appendJsonEscaped(out, resourceType);
  out += "\",\"id\":\"";
  appendJsonEscaped(out, id);
  out += "\",\"meta\":{\"versionId\":\"";
  out += std::to_string(versionId);
  out += "\",\"lastUpdated\":\"";
  appendJsonEscaped(out, lastUpdated);
  out += '"';
  if (h.sawMeta()) {
    std::string_view m = inner(h.metaBuf);
    if (!m.empty()) {
      out += ',';
      out += m;
    }
  }
  out += '}';
  std::string_view r = inner(h.restBuf);
  if (!r.empty()) {
    out += ',';
    out += r;
  }
  out += '}';
  return out;
}

std::string prettyJson(std::string_view json) {
  rapidjson::StringBuffer buf;
  PrettyHandler h(buf);
  rapidjson::Reader reader;
  rapidjson::MemoryStream ms(json.data(), json.size());
  if (!reader.Parse<kRawParseFlags>(ms, h)) return std::string(json);
  return std::string(buf.GetString(), buf.GetSize());
}

Instant nowInstant() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const int64_t micros = duration_cast<microseconds>(now.time_since_epoch()).count();
  const time_t secs = static_cast<time_t>(micros / 1000000);
  const int millis = static_cast<int>((micros / 1000) % 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  // Keep epochMicros consistent with the text (millisecond precision), so that comparisons of the
  // stored number and the visible instant agree.
  return Instant{buf, (micros / 1000) * 1000};
}

bool parseInstant(std::string_view s, int64_t& epochMicros) {
  int y = 0, mo = 1, d = 1, h = 0, mi = 0, sec = 0;
  if (!digits(s, 0, 4, y)) return false;
  size_t p = 4;
  if (p < s.size()) {
    if (s[p] != '-' || !digits(s, p + 1, 2, mo)) return false;
    p += 3;
    if (p < s.size()) {
      if (s[p] != '-' || !digits(s, p + 1, 2, d)) return false;
      p += 3;
    }
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return false;
  int64_t frac = 0;
  int64_t offsetSec = 0;
  if (p < s.size()) {
    if (s[p] != 'T' || !digits(s, p + 1, 2, h) || s.size() < p + 6 || s[p + 3] != ':' ||
        !digits(s, p + 4, 2, mi))
      return false;
    p += 6;
    if (p < s.size() && s[p] == ':') {
      if (!digits(s, p + 1, 2, sec)) return false;
      p += 3;
      if (p < s.size() && s[p] == '.') {
        ++p;
        int64_t scale = 100000;
        size_t start = p;
        while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
          if (scale > 0) frac += (s[p] - '0') * scale;
          scale /= 10;
          ++p;
        }
        if (p == start) return false;
      }
    }
    if (h > 24 || mi > 59 || sec > 60) return false;
    if (p >= s.size()) return false;  // a time needs a zone
    if (s[p] == 'Z') {
      ++p;
    } else if (s[p] == '+' || s[p] == '-') {
      int oh = 0, om = 0;
      if (!digits(s, p + 1, 2, oh) || s.size() < p + 6 || s[p + 3] != ':' || !digits(s, p + 4, 2, om))
        return false;
      offsetSec = (oh * 3600 + om * 60) * (s[p] == '+' ? 1 : -1);
      p += 6;
    } else {
      return false;
    }
  }
  if (p != s.size()) return false;
  const int64_t days = daysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  const int64_t total = days * 86400 + h * 3600 + mi * 60 + sec - offsetSec;
  epochMicros = total * 1000000 + frac;
  return true;
}

std::string httpDateFromInstant(std::string_view instant) {
  int64_t micros = 0;
  if (!parseInstant(instant, micros)) return {};
  const time_t secs = static_cast<time_t>(micros / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  static const char* const kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday], tm.tm_mday,
                kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

void appendJsonEscaped(std::string& out, std::string_view s) {
  static const char* const kHex = "0123456789abcdef";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
}

}  // namespace hearth::fhir
