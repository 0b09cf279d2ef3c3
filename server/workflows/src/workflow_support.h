#pragma once
// Small helpers shared by the workflow sources (internal to hearth_workflows): reading JSON
// members, SQL values, the clock, and parsing bodies with numbers kept as their text.
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <ctime>
#include <string>
#include <string_view>

#include "hearth/fhir/error.h"
#include "hearth/fhir/store.h"

namespace hearth::workflows::detail {

// The string member `name` of a JSON object, or "" (absent, not a string, not an object).
inline std::string_view str(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject()) return {};
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || !it->value.IsString()) return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

// The member `name` of a JSON object, or nullptr.
inline const rapidjson::Value* member(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(name);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

inline std::string text(const fhir::SqlValue& v) {
  const auto* s = std::get_if<std::string>(&v);
  return s ? *s : std::string();
}

inline int64_t integer(const fhir::SqlValue& v) {
  if (const auto* n = std::get_if<int64_t>(&v)) return *n;
  if (const auto* d = std::get_if<double>(&v)) return static_cast<int64_t>(*d);
  return 0;
}

inline int64_t nowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "YYYY-MM-DDThh:mm:ssZ" of epoch microseconds (whole seconds, UTC).
inline std::string isoUtc(int64_t us) {
  const std::time_t t = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// A JSON string literal of s (escaped).
inline std::string jsonString(const std::string& s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  return buf.GetString();
}

// Parses a JSON object keeping numbers as their text, so amounts reach Decimal exactly as
// written; 400 when it is not a JSON object.
inline rapidjson::Document parseExact(std::string_view json) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseValidateEncodingFlag>(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) {
    throw fhir::FhirError(400, fhir::IssueType::Structure, "The body is not a JSON object");
  }
  return d;
}

}  // namespace hearth::workflows::detail
