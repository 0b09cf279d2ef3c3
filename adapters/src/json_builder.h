#pragma once
// A small ordered JSON tree for building FHIR resources.
//
// FHIR forbids empty elements ("", {}, [] and null), so set() and push() silently drop an empty
// value: a mapping can write `r.set("birthDate", date)` without testing whether the v2 field was
// valued. Numbers are kept as their decimal text (FHIR decimals keep trailing zeros: "7.50").
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth::adapters {

class Json {
 public:
  enum class Kind { Null, Object, Array, String, Number, Bool };

  Json() = default;  // null
  // Strings drop C0 control characters other than TAB, LF and CR (FHIR strings must not carry
  // them; a v2 \Xhh\ escape can produce them). A string left empty, or holding only
  // whitespace, is an empty value.
  Json(const char* s) : Json(std::string(s)) {}  // NOLINT: strings are the common case
  Json(std::string s);
  Json(std::string_view s) : Json(std::string(s)) {}

  static Json object() { return Json(Kind::Object); }
  static Json array() { return Json(Kind::Array); }
  // decimalText must be a JSON number (the caller validated it, e.g. through hl7::toDecimal).
  static Json number(std::string decimalText) {
    Json j(Kind::Number);
    j.text_ = std::move(decimalText);
    return j;
  }
  static Json boolean(bool b) {
    Json j(Kind::Bool);
    j.text_ = b ? "true" : "false";
    return j;
  }

  Kind kind() const { return kind_; }
  // Null, "", {} and [] are empty; numbers and booleans never are.
  bool empty() const;
  const std::string& text() const { return text_; }  // string / number text

  // Object member (replaces an existing one of the same name); an empty value is ignored (an
  // existing member stays).
  Json& set(std::string_view key, Json value);
  // Array item; empty values are dropped.
  Json& push(Json value);
  // Member lookup (objects); nullptr when absent.
  Json* find(std::string_view key);
  const Json* find(std::string_view key) const;
  const std::vector<std::pair<std::string, Json>>& members() const { return members_; }
  const std::vector<Json>& items() const { return items_; }
  size_t size() const { return kind_ == Kind::Array ? items_.size() : members_.size(); }

  std::string dump() const;
  void dumpTo(std::string& out) const;

 private:
  explicit Json(Kind k) : kind_(k) {}
  Kind kind_ = Kind::Null;
  std::string text_;
  std::vector<std::pair<std::string, Json>> members_;
  std::vector<Json> items_;
};

}  // namespace hearth::adapters
