#include "json_builder.h"

#include <algorithm>

namespace hearth::adapters {

Json::Json(std::string s) : kind_(Kind::String), text_(std::move(s)) {
  auto control = [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c < 0x20 && c != '\t' && c != '\n' && c != '\r';
  };
  text_.erase(std::remove_if(text_.begin(), text_.end(), control), text_.end());
  // A FHIR string needs a non-whitespace character: whitespace alone is no value.
  if (text_.find_first_not_of(" \t\r\n") == std::string::npos) text_.clear();
}

bool Json::empty() const {
  switch (kind_) {
    case Kind::Null: return true;
    case Kind::String: return text_.empty();
    case Kind::Object: return members_.empty();
    case Kind::Array: return items_.empty();
    case Kind::Number:
    case Kind::Bool: return false;
  }
  return true;
}

Json& Json::set(std::string_view key, Json value) {
  if (kind_ == Kind::Null) kind_ = Kind::Object;
  if (value.empty()) return *this;
  for (auto& [k, v] : members_) {
    if (k == key) {
      v = std::move(value);
      return *this;
    }
  }
  members_.emplace_back(std::string(key), std::move(value));
  return *this;
}

Json& Json::push(Json value) {
  if (kind_ == Kind::Null) kind_ = Kind::Array;
  if (!value.empty()) items_.push_back(std::move(value));
  return *this;
}

Json* Json::find(std::string_view key) {
  for (auto& [k, v] : members_) {
    if (k == key) return &v;
  }
  return nullptr;
}

const Json* Json::find(std::string_view key) const {
  for (const auto& [k, v] : members_) {
    if (k == key) return &v;
  }
  return nullptr;
}

namespace {
void appendEscaped(std::string& out, std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  out.push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}
}  // namespace

void Json::dumpTo(std::string& out) const {
  switch (kind_) {
    case Kind::Null: out += "null"; return;
    case Kind::String: appendEscaped(out, text_); return;
    case Kind::Number:
    case Kind::Bool: out += text_; return;
    case Kind::Object: {
      out.push_back('{');
      bool first = true;
      for (const auto& [k, v] : members_) {
        if (!first) out.push_back(',');
        first = false;
        appendEscaped(out, k);
        out.push_back(':');
        v.dumpTo(out);
      }
      out.push_back('}');
      return;
    }
    case Kind::Array: {
      out.push_back('[');
      bool first = true;
      for (const auto& v : items_) {
        if (!first) out.push_back(',');
        first = false;
        v.dumpTo(out);
      }
      out.push_back(']');
      return;
    }
  }
}

std::string Json::dump() const {
  std::string out;
  dumpTo(out);
  return out;
}

}  // namespace hearth::adapters
