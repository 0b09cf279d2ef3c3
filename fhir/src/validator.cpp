// ResourceValidator: one recursive walk over the RapidJSON DOM, resolving each member name against
// the model's member table (ModelImpl::member) and checking JSON types, cardinality, primitive
// formats and required bindings as it goes. The walk keeps the FHIRPath of the current element as
// a stack of frames and renders it to a string only when an issue is reported, so a valid resource
// costs no string building at all.
#include "hearth/fhir/validator.h"

#include <cmath>
#include <cstring>

#include "model_impl.h"
#include "xhtml.h"

namespace hearth::fhir {

namespace {

using rapidjson::Value;

// ---------------------------------------------------------------------------------------------
// Primitive formats (the regexes of the R4 primitive types, hand-coded)
// ---------------------------------------------------------------------------------------------

inline bool isDigit(char c) { return c >= '0' && c <= '9'; }
// Whitespace as in the \s of the R4 regexes.
inline bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Reads exactly `n` digits at s[pos]; advances pos.
bool digits(std::string_view s, size_t& pos, size_t n, int& value) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (!isDigit(c)) return false;
    v = v * 10 + (c - '0');
  }
  value = v;
  pos += n;
  return true;
}

bool isLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int daysInMonth(int y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && isLeap(y) ? 29 : kDays[m - 1];
}

// YYYY, YYYY-MM or YYYY-MM-DD (year 0001-9999, a real calendar date). `full` requires the day.
// Returns the position after the date, or 0 on error.
size_t parseDate(std::string_view s, bool full) {
  size_t pos = 0;
  int y = 0, m = 0, d = 0;
  if (!digits(s, pos, 4, y) || y == 0) return 0;
  if (pos == s.size() || s[pos] != '-') return full ? 0 : pos;
  ++pos;
  if (!digits(s, pos, 2, m) || m < 1 || m > 12) return 0;
  if (pos == s.size() || s[pos] != '-') return full ? 0 : pos;
  ++pos;
  if (!digits(s, pos, 2, d) || d < 1 || d > daysInMonth(y, m)) return 0;
  return pos;
}

// hh:mm:ss(.f+)? from s[pos]; advances pos.
bool parseTime(std::string_view s, size_t& pos) {
  int h = 0, mi = 0, sec = 0;
  if (!digits(s, pos, 2, h) || h > 23) return false;
  if (pos == s.size() || s[pos++] != ':') return false;
  if (!digits(s, pos, 2, mi) || mi > 59) return false;
  if (pos == s.size() || s[pos++] != ':') return false;
  if (!digits(s, pos, 2, sec) || sec > 60) return false;  // 60: leap second, as the spec allows
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    const size_t start = pos;
    while (pos < s.size() && isDigit(s[pos])) ++pos;
    if (pos == start) return false;
  }
  return true;
}

// Z or (+|-)hh:mm with hh 00-13 (any minutes) or 14:00.
bool parseZone(std::string_view s, size_t& pos) {
  if (pos < s.size() && s[pos] == 'Z') {
    ++pos;
    return true;
  }
  if (pos >= s.size() || (s[pos] != '+' && s[pos] != '-')) return false;
  ++pos;
  int h = 0, m = 0;
  if (!digits(s, pos, 2, h)) return false;
  if (pos == s.size() || s[pos++] != ':') return false;
  if (!digits(s, pos, 2, m) || m > 59) return false;
  return h < 14 || (h == 14 && m == 0);
}

bool validDateTime(std::string_view s, bool instant) {
  size_t pos = parseDate(s, instant);
  if (pos == 0) return false;
  if (pos == s.size()) return !instant;
  if (s[pos] != 'T' || pos != 10) return false;  // a time needs a full date
  ++pos;
  if (!parseTime(s, pos) || !parseZone(s, pos)) return false;
  return pos == s.size();
}

bool validTime(std::string_view s) {
  size_t pos = 0;
  return parseTime(s, pos) && pos == s.size();
}

bool validId(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || isDigit(c) || c == '-' || c == '.')) return false;
  }
  return true;
}

// [^\s]+(\s[^\s]+)*
bool validCode(std::string_view s) {
  if (s.empty() || isSpace(s.front()) || isSpace(s.back())) return false;
  for (size_t i = 1; i < s.size(); ++i) {
    if (isSpace(s[i]) && isSpace(s[i - 1])) return false;
  }
  return true;
}

bool hasSpace(std::string_view s) {
  for (char c : s) {
    if (isSpace(c)) return true;
  }
  return false;
}

// urn:oid:[0-2](\.(0|[1-9][0-9]*))+
bool validOid(std::string_view s) {
  constexpr std::string_view kPrefix = "urn:oid:";
  if (s.substr(0, kPrefix.size()) != kPrefix) return false;
  size_t pos = kPrefix.size();
  if (pos >= s.size() || s[pos] < '0' || s[pos] > '2') return false;
  ++pos;
  int arcs = 0;
  while (pos < s.size()) {
    if (s[pos++] != '.') return false;
    if (pos >= s.size() || !isDigit(s[pos])) return false;
    if (s[pos] == '0') {
      ++pos;
    } else {
      while (pos < s.size() && isDigit(s[pos])) ++pos;
    }
    if (pos < s.size() && isDigit(s[pos])) return false;  // leading zero
    ++arcs;
  }
  return arcs > 0;
}

// urn:uuid: + lower-case 8-4-4-4-12 hex
bool validUuid(std::string_view s) {
  constexpr std::string_view kPrefix = "urn:uuid:";
  if (s.size() != kPrefix.size() + 36 || s.substr(0, kPrefix.size()) != kPrefix) return false;
  for (size_t i = 0; i < 36; ++i) {
    const char c = s[kPrefix.size() + i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!(isDigit(c) || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

// Base64 (RFC 4648 alphabet) in groups of four, whitespace allowed between characters, padding
// only at the end.
bool validBase64(std::string_view s) {
  size_t count = 0;
  size_t padding = 0;
  for (char c : s) {
    if (isSpace(c)) continue;
    if (c == '=') {
      ++padding;
    } else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || isDigit(c) || c == '+' || c == '/') {
      if (padding) return false;  // data after padding
    } else {
      return false;
    }
    ++count;
  }
  return count > 0 && count % 4 == 0 && padding <= 2;
}

// Valid UTF-8 without control characters other than tab, CR and LF (which XML could not carry).
// Returns nullptr when fine, else the problem.
const char* checkText(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return "must not contain control characters";
      if (c == 0x7f) return "must not contain control characters";
      ++p;
      continue;
    }
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return "must be valid UTF-8";
    }
    if (static_cast<size_t>(end - p) <= n) return "must be valid UTF-8";
    for (size_t i = 1; i <= n; ++i) {
      if ((p[i] & 0xc0) != 0x80) return "must be valid UTF-8";
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff)) {
      return "must be valid UTF-8";
    }
    p += n + 1;
  }
  return nullptr;
}

// nullptr if `s` is a valid value of the string-valued primitive `kind`, else the expected form.
const char* checkString(TypeKind kind, std::string_view s) {
  if (s.empty()) return "must not be an empty string (omit the element instead)";
  if (const char* bad = checkText(s)) return bad;
  switch (kind) {
    case TypeKind::String:
    case TypeKind::Markdown: {
      if (s.size() > 1024 * 1024) return "must not exceed 1 MB";
      for (char c : s) {
        if (!isSpace(c)) return nullptr;
      }
      return "must contain a non-whitespace character";
    }
    case TypeKind::Code:
      return validCode(s) ? nullptr : "must be a code (no leading, trailing or repeated whitespace)";
    case TypeKind::Id:
      return validId(s) ? nullptr : "must be an id (1-64 characters: A-Z a-z 0-9 - .)";
    case TypeKind::Uri:
    case TypeKind::Url:
    case TypeKind::Canonical:
      return hasSpace(s) ? "must be a URI without whitespace" : nullptr;
    case TypeKind::Oid:
      return validOid(s) ? nullptr : "must be an OID (urn:oid:1.2.3...)";
    case TypeKind::Uuid:
      return validUuid(s) ? nullptr : "must be a UUID (urn:uuid: and a lower-case UUID)";
    case TypeKind::Base64Binary:
      return validBase64(s) ? nullptr : "must be base64 encoded";
    case TypeKind::Date:
      return parseDate(s, false) == s.size() ? nullptr : "must be a valid date (YYYY, YYYY-MM or YYYY-MM-DD)";
    case TypeKind::DateTime:
      return validDateTime(s, false)
                 ? nullptr
                 : "must be a valid dateTime (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.sss] with a "
                   "time zone Z or +hh:mm)";
    case TypeKind::Instant:
      return validDateTime(s, true)
                 ? nullptr
                 : "must be a valid instant (YYYY-MM-DDThh:mm:ss[.sss] with a time zone Z or +hh:mm)";
    case TypeKind::Time:
      return validTime(s) ? nullptr : "must be a valid time (hh:mm:ss[.sss])";
    case TypeKind::Xhtml:
      return nullptr;  // checked by checkNarrativeXhtml (Walker::primitive), with its own diagnostics
    default:
      return nullptr;
  }
}

// Kinds whose bad values may be quoted in diagnostics (short, structured, not free text).
bool mayQuote(TypeKind kind) {
  switch (kind) {
    case TypeKind::Code:
    case TypeKind::Id:
    case TypeKind::Date:
    case TypeKind::DateTime:
    case TypeKind::Instant:
    case TypeKind::Time:
    case TypeKind::Oid:
    case TypeKind::Uuid:
      return true;
    default:
      return false;
  }
}

// A short printable rendering of `s` for diagnostics (non-printable bytes as '?').
std::string quoteShort(std::string_view s) {
  std::string out = "'";
  const size_t n = std::min<size_t>(s.size(), 64);
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    out += (c >= 0x20 && c < 0x7f && c != '\'') ? static_cast<char>(c) : '?';
  }
  if (s.size() > n) out += "...";
  out += "'";
  return out;
}

const char* jsonTypeName(const Value& v) {
  switch (v.GetType()) {
    case rapidjson::kNullType: return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType: return "a boolean";
    case rapidjson::kObjectType: return "an object";
    case rapidjson::kArrayType: return "an array";
    case rapidjson::kStringType: return "a string";
    case rapidjson::kNumberType: return "a number";
  }
  return "a value";
}

inline std::string_view nameOf(const Value& v) { return {v.GetString(), v.GetStringLength()}; }

// The resource type named by a literal reference ("Patient/1", "http://x/fhir/Patient/1/_history/2",
// "Patient?identifier=..."), or empty if it names none (contained "#id", "urn:uuid:...").
std::string_view referencedType(std::string_view ref) {
  if (ref.empty() || ref[0] == '#' || ref.substr(0, 4) == "urn:") return {};
  const size_t q = ref.find('?');
  if (q != std::string_view::npos) {
    ref = ref.substr(0, q);
    if (ref.find('/') == std::string_view::npos) return ref;  // conditional reference
  }
  // Walk the segments from the end: [.../]Type/id[/_history/vid]
  std::string_view segs[4];
  size_t n = 0;
  size_t end = ref.size();
  while (n < 4) {
    const size_t slash = end == 0 ? std::string_view::npos : ref.rfind('/', end - 1);
    const size_t start = slash == std::string_view::npos ? 0 : slash + 1;
    segs[n++] = ref.substr(start, end - start);
    if (slash == std::string_view::npos) break;
    end = slash;
  }
  if (n >= 4 && segs[1] == "_history") return segs[3];
  if (n >= 2) return segs[1];
  return {};
}

// ---------------------------------------------------------------------------------------------
// The walk
// ---------------------------------------------------------------------------------------------

struct Frame {
  enum Kind : uint8_t { Root, Member, Index, OfType };
  Kind kind;
  uint32_t index;
  std::string_view text;
};

class Walker {
 public:
  Walker(const ModelImpl& model, int32_t extensionType, int32_t codeableConceptType, int32_t codingType,
         int32_t referenceType, int32_t elementNode, std::vector<Issue>& issues)
      : m_(model),
        extensionType_(extensionType),
        codeableConceptType_(codeableConceptType),
        codingType_(codingType),
        referenceType_(referenceType),
        elementNode_(elementNode),
        issues_(issues) {
    frames_.reserve(64);
  }

  void top(const Value& v) {
    if (!v.IsObject()) {
      add(IssueType::Structure, std::string("A resource must be a JSON object, not ") + jsonTypeName(v));
      return;
    }
    resource(v, 1, /*contained=*/false);
  }

 private:
  // --- issues --------------------------------------------------------------------------------
  std::string path() const {
    std::string out;
    for (const Frame& f : frames_) {
      switch (f.kind) {
        case Frame::Root:
          out.append(f.text);
          break;
        case Frame::Member:
          out += '.';
          out.append(f.text);
          break;
        case Frame::Index:
          out += '[';
          out += std::to_string(f.index);
          out += ']';
          break;
        case Frame::OfType:
          out += ".ofType(";
          out.append(f.text);
          out += ')';
          break;
      }
    }
    return out;
  }

  void add(IssueType type, std::string diagnostics, std::string_view child = {}) {
    if (stopped_) return;
    if (issues_.size() >= ResourceValidator::kMaxIssues) {
      issues_.push_back(Issue{Severity::Error, IssueType::TooCostly,
                              "Too many issues; the remaining ones are not reported", {}});
      stopped_ = true;
      return;
    }
    std::string expr = path();
    if (!child.empty()) {
      if (!expr.empty()) expr += '.';
      expr.append(child);
    }
    issues_.push_back(Issue{Severity::Error, type, std::move(diagnostics), std::move(expr)});
  }

  struct FramePush {
    FramePush(std::vector<Frame>& f, Frame::Kind kind, std::string_view text, uint32_t index = 0) : frames(f) {
      frames.push_back(Frame{kind, index, text});
    }
    ~FramePush() { frames.pop_back(); }
    std::vector<Frame>& frames;
  };

  static std::string jsonName(const ElementImpl& el, const ElementType& et) {
    return el.def.isChoice ? el.def.name + et.jsonSuffix : el.def.name;
  }

  bool tooDeep(int depth) {
    if (depth <= ResourceValidator::kMaxDepth) return false;
    if (!depthReported_) {
      depthReported_ = true;
      add(IssueType::Structure, "JSON nesting exceeds the maximum depth of " +
                                    std::to_string(ResourceValidator::kMaxDepth) + " levels");
    }
    return true;
  }

  // --- resources -----------------------------------------------------------------------------
  void resource(const Value& v, int depth, bool contained) {
    const auto rt = v.FindMember("resourceType");
    if (rt == v.MemberEnd()) {
      add(IssueType::Structure, "A resource must have a resourceType");
      return;
    }
    if (!rt->value.IsString()) {
      add(IssueType::Structure, "resourceType must be a JSON string");
      return;
    }
    const int32_t node = m_.resourceNode(nameOf(rt->value));
    if (node < 0) {
      add(IssueType::Structure, "Unknown resource type " + quoteShort(nameOf(rt->value)));
      return;
    }
    const std::string& typeName = m_.node(static_cast<uint32_t>(node)).path;
    FramePush push(frames_, frames_.empty() ? Frame::Root : Frame::OfType, typeName);
    object(v, static_cast<uint32_t>(node), depth, Shape::Resource);
    if (contained) containedRules(v);
  }

  // dom-2, dom-4, dom-5: what a contained resource must not carry.
  void containedRules(const Value& v) {
    if (v.HasMember("contained")) {
      add(IssueType::Invariant, "A contained resource must not contain further resources (dom-2)", "contained");
    }
    const auto meta = v.FindMember("meta");
    if (meta == v.MemberEnd() || !meta->value.IsObject()) return;
    if (meta->value.HasMember("versionId") || meta->value.HasMember("lastUpdated")) {
      add(IssueType::Invariant, "A contained resource must not have meta.versionId or meta.lastUpdated (dom-4)",
          "meta");
    }
    if (meta->value.HasMember("security")) {
      add(IssueType::Invariant, "A contained resource must not have security labels (dom-5)", "meta.security");
    }
  }

  // --- objects -------------------------------------------------------------------------------
  // The shape being checked: a resource root, a complex value, or the `_name` object of a primitive.
  enum class Shape { Resource, Complex, PrimitiveExtension };

  void object(const Value& obj, uint32_t nodeIndex, int depth, Shape shape) {
    const bool isResource = shape == Shape::Resource;
    if (tooDeep(depth)) return;
    if (obj.MemberCount() == 0) {
      add(IssueType::Structure, "Empty JSON object: omit the element instead");
      return;
    }
    const NodeImpl& node = m_.node(nodeIndex);
    const size_t n = node.elements.size();
    // Per element of the node: bit 1 value seen, bit 2 `_name` seen; choice: 1 + chosen type.
    uint8_t seenBuf[64];
    uint8_t choiceBuf[64];
    std::vector<uint8_t> seenHeap, choiceHeap;
    uint8_t* seen = seenBuf;
    uint8_t* choice = choiceBuf;
    if (n > sizeof(seenBuf)) {
      seenHeap.resize(n);
      choiceHeap.resize(n);
      seen = seenHeap.data();
      choice = choiceHeap.data();
    }
    std::memset(seen, 0, n);
    std::memset(choice, 0, n);
    bool sawResourceType = false;
    bool onlyId = shape == Shape::Complex;

    for (auto it = obj.MemberBegin(); it != obj.MemberEnd() && !stopped_; ++it) {
      const std::string_view name = nameOf(it->name);
      if (isResource && name == "resourceType") {
        if (sawResourceType) add(IssueType::Structure, "Duplicate property 'resourceType'");
        sawResourceType = true;
        continue;
      }
      const MemberRef* ref = m_.member(nodeIndex, name);
      if (ref == nullptr) {
        onlyId = false;
        add(IssueType::Structure, "Unknown element " + quoteShort(name), name);
        continue;
      }
      if (onlyId && name != "id") onlyId = false;
      const ElementImpl& el = m_.element(ref->element);
      const ElementType& et = el.types[ref->typeIndex];
      const uint8_t bit = ref->underscore ? 2 : 1;
      if (el.def.isChoice) {
        const uint8_t chosen = static_cast<uint8_t>(ref->typeIndex + 1);
        if (choice[ref->local] != 0 && choice[ref->local] != chosen) {
          const ElementType& first = el.types[choice[ref->local] - 1u];
          add(IssueType::Structure,
              "Only one type is allowed for " + el.def.name + "[x]; found both '" + jsonName(el, first) +
                  "' and '" + jsonName(el, et) + "'",
              el.def.name);
          continue;
        }
        choice[ref->local] = chosen;
      }
      if (seen[ref->local] & bit) {
        add(IssueType::Structure, "Duplicate property " + quoteShort(name), el.def.name);
        continue;
      }
      seen[ref->local] |= bit;

      FramePush member(frames_, Frame::Member, el.def.name);
      if (el.def.isChoice) {
        FramePush ofType(frames_, Frame::OfType, et.name);
        dispatch(obj, it->value, el, *ref, depth);
      } else {
        dispatch(obj, it->value, el, *ref, depth);
      }
    }

    if (onlyId && !stopped_) {
      add(IssueType::Invariant, "An element must have content besides its id (ele-1)");
    }
    for (uint16_t r : node.required) {
      if (seen[r] == 0) {
        const ElementImpl& el = m_.element(node.elements[r]);
        add(IssueType::Required,
            "Missing required element '" + el.def.name + (el.def.isChoice ? "[x]'" : "'"), el.def.name);
      }
    }
  }

  void dispatch(const Value& parent, const Value& v, const ElementImpl& el, const MemberRef& ref, int depth) {
    if (ref.underscore) {
      primitiveExtensions(parent, v, el, el.types[ref.typeIndex], depth);
    } else {
      elementValue(parent, v, el, el.types[ref.typeIndex], depth);
    }
  }

  // --- element values --------------------------------------------------------------------------
  void elementValue(const Value& parent, const Value& v, const ElementImpl& el, const ElementType& et, int depth) {
    if (el.def.max == 0) {
      add(IssueType::Structure, "Element '" + jsonName(el, et) + "' is not allowed");
      return;
    }
    if (el.def.max > 1) {
      if (!v.IsArray()) {
        add(IssueType::Structure, "Element '" + jsonName(el, et) + "' repeats: it must be a JSON array, not " +
                                      jsonTypeName(v));
        return;
      }
      if (v.Empty()) {
        add(IssueType::Structure, "Empty JSON array: omit the element '" + jsonName(el, et) + "' instead");
        return;
      }
      if (tooDeep(depth + 1)) return;
      if (el.def.max != ElementDef::kUnbounded && v.Size() > el.def.max) {
        add(IssueType::Structure,
            "Element '" + jsonName(el, et) + "' allows at most " + std::to_string(el.def.max) + " items");
      }
      if (v.Size() < el.def.min) {
        add(IssueType::Required,
            "Element '" + jsonName(el, et) + "' needs at least " + std::to_string(el.def.min) + " items");
      }
      for (rapidjson::SizeType i = 0; i < v.Size() && !stopped_; ++i) {
        FramePush index(frames_, Frame::Index, {}, i);
        const Value& item = v[i];
        if (item.IsNull()) {
          nullItem(parent, el, et, i);
        } else {
          single(item, el, et, depth + 1);
        }
      }
      return;
    }
    if (v.IsArray()) {
      add(IssueType::Structure, "Element '" + jsonName(el, et) + "' does not repeat: it must not be a JSON array");
      return;
    }
    if (v.IsNull()) {
      add(IssueType::Structure, "Element '" + jsonName(el, et) + "' must not be null: omit it instead");
      return;
    }
    single(v, el, et, depth);
  }

  // A null in a repeating primitive is allowed only as a placeholder whose `_name` entry carries
  // the extensions.
  void nullItem(const Value& parent, const ElementImpl& el, const ElementType& et, rapidjson::SizeType i) {
    if (isPrimitiveKind(et.kind)) {
      const std::string underscored = "_" + jsonName(el, et);
      const auto ext = parent.FindMember(underscored.c_str());
      if (ext != parent.MemberEnd() && ext->value.IsArray() && i < ext->value.Size() && ext->value[i].IsObject()) {
        return;
      }
    }
    add(IssueType::Structure, "Null in '" + jsonName(el, et) + "': a null is only allowed where '_" +
                                  jsonName(el, et) + "' has the matching entry");
  }

  void single(const Value& v, const ElementImpl& el, const ElementType& et, int depth) {
    switch (et.kind) {
      case TypeKind::Complex:
        if (!v.IsObject()) {
          add(IssueType::Structure, "Element '" + jsonName(el, et) + "' must be a JSON object (" +
                                        std::string(et.name) + "), not " + jsonTypeName(v));
          return;
        }
        object(v, static_cast<uint32_t>(et.node), depth + 1, Shape::Complex);
        complexRules(v, el, et);
        return;
      case TypeKind::Resource:
        if (!v.IsObject()) {
          add(IssueType::Structure, "Element '" + jsonName(el, et) + "' must be a resource (a JSON object), not " +
                                        jsonTypeName(v));
          return;
        }
        if (tooDeep(depth + 1)) return;
        resource(v, depth + 1, el.def.name == "contained");
        return;
      default:
        primitive(v, el, et);
        return;
    }
  }

  void primitive(const Value& v, const ElementImpl& el, const ElementType& et) {
    const TypeKind kind = et.kind;
    switch (kind) {
      case TypeKind::Boolean:
        if (!v.IsBool()) {
          add(IssueType::Structure, "Element '" + jsonName(el, et) + "' must be a JSON boolean, not " + jsonTypeName(v));
        }
        return;
      case TypeKind::Integer:
      case TypeKind::UnsignedInt:
      case TypeKind::PositiveInt: {
        if (!v.IsNumber()) {
          add(IssueType::Structure, "Element '" + jsonName(el, et) + "' must be a JSON number, not " + jsonTypeName(v));
          return;
        }
        const char* form = kind == TypeKind::Integer       ? "a whole number in the 32-bit range"
                           : kind == TypeKind::UnsignedInt ? "a whole number from 0 to 2147483647"
                                                           : "a whole number from 1 to 2147483647";
        const bool ok = v.IsInt() && (kind == TypeKind::Integer || v.GetInt() >= (kind == TypeKind::PositiveInt ? 1 : 0));
        if (!ok) add(IssueType::Value, "Invalid value for '" + jsonName(el, et) + "': must be " + form);
        return;
      }
      case TypeKind::Decimal:
        if (!v.IsNumber()) {
          add(IssueType::Structure, "Element '" + jsonName(el, et) + "' must be a JSON number, not " + jsonTypeName(v));
        } else if (v.IsDouble() && !std::isfinite(v.GetDouble())) {
          add(IssueType::Value, "Invalid value for '" + jsonName(el, et) + "': must be a finite decimal");
        }
        return;
      default:
        break;
    }
    if (!v.IsString()) {
      add(IssueType::Structure, "Element '" + jsonName(el, et) + "' must be a JSON string, not " + jsonTypeName(v));
      return;
    }
    const std::string_view s = nameOf(v);
    if (s.empty()) {
      add(IssueType::Structure, "Element '" + jsonName(el, et) + "' must not be an empty string: omit it instead");
      return;
    }
    if (const char* problem = checkString(kind, s)) {
      std::string diag = "Invalid value for '" + jsonName(el, et) + "': " + problem;
      if (mayQuote(kind)) diag += "; got " + quoteShort(s);
      add(IssueType::Value, std::move(diag));
      return;
    }
    if (kind == TypeKind::Xhtml) {
      const std::string problem = checkNarrativeXhtml(s);
      if (!problem.empty()) add(IssueType::Value, "Invalid narrative: the " + jsonName(el, et) + " " + problem);
      return;
    }
    if (kind == TypeKind::Code && el.valueSet >= 0) {
      const ValueSetImpl& vs = m_.valueSet(static_cast<uint32_t>(el.valueSet));
      if (vs.enumerable && !vs.contains(s)) codeNotInValueSet(vs, s);
    }
  }

  void codeNotInValueSet(const ValueSetImpl& vs, std::string_view code, std::string_view child = {}) {
    std::string diag = "Code " + quoteShort(code) + " is not in the required value set " + vs.url;
    if (vs.ordered.size() <= 12) {
      diag += " (allowed: ";
      for (size_t i = 0; i < vs.ordered.size(); ++i) {
        if (i) diag += ", ";
        diag.append(vs.ordered[i]);
      }
      diag += ')';
    }
    add(IssueType::CodeInvalid, std::move(diag), child);
  }

  // `_name`: the id / extensions of a primitive (a parallel array for repeating primitives).
  void primitiveExtensions(const Value& parent, const Value& v, const ElementImpl& el, const ElementType& et,
                           int depth) {
    const std::string name = jsonName(el, et);
    if (el.def.max > 1) {
      if (!v.IsArray()) {
        add(IssueType::Structure, "'_" + name + "' must be a JSON array parallel to '" + name + "'");
        return;
      }
      if (v.Empty()) {
        add(IssueType::Structure, "Empty JSON array: omit '_" + name + "' instead");
        return;
      }
      if (tooDeep(depth + 1)) return;
      const auto values = parent.FindMember(name.c_str());
      const Value* valueArray =
          values != parent.MemberEnd() && values->value.IsArray() ? &values->value : nullptr;
      if (valueArray && valueArray->Size() != v.Size()) {
        add(IssueType::Structure, "'_" + name + "' must have as many entries as '" + name + "'");
      }
      bool any = false;
      for (rapidjson::SizeType i = 0; i < v.Size() && !stopped_; ++i) {
        FramePush index(frames_, Frame::Index, {}, i);
        const Value& item = v[i];
        if (item.IsNull()) {
          if (valueArray && i < valueArray->Size() && (*valueArray)[i].IsNull()) {
            add(IssueType::Structure, "'" + name + "' and '_" + name + "' must not both be null at the same position");
          }
          continue;
        }
        any = true;
        const bool hasValue = valueArray && i < valueArray->Size() && !(*valueArray)[i].IsNull();
        extensionObject(item, name, hasValue, depth + 1);
      }
      if (!any) add(IssueType::Structure, "'_" + name + "' must not contain only nulls: omit it instead");
      return;
    }
    if (v.IsArray()) {
      add(IssueType::Structure, "'_" + name + "' does not repeat: it must not be a JSON array");
      return;
    }
    extensionObject(v, name, parent.HasMember(name.c_str()), depth);
  }

  void extensionObject(const Value& v, const std::string& name, bool hasValue, int depth) {
    if (!v.IsObject()) {
      add(IssueType::Structure, "'_" + name + "' must be a JSON object holding the id / extensions of '" + name +
                                    "', not " + jsonTypeName(v));
      return;
    }
    object(v, static_cast<uint32_t>(elementNode_), depth + 1, Shape::PrimitiveExtension);
    if (!hasValue && !v.HasMember("extension") && !stopped_) {
      add(IssueType::Invariant, "'_" + name + "' without a value must have extensions (ele-1)");
    }
  }

  // Rules tied to particular complex types.
  void complexRules(const Value& v, const ElementImpl& el, const ElementType& et) {
    if (et.type == extensionType_) {
      bool hasValue = false;
      for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
        const std::string_view n = nameOf(it->name);
        if (n.substr(0, 5) == "value" || n.substr(0, 6) == "_value") {
          hasValue = true;
          break;
        }
      }
      const bool hasExtensions = v.HasMember("extension");
      if (hasValue == hasExtensions) {
        add(IssueType::Invariant, hasValue ? "An extension must not have both a value[x] and nested extensions (ext-1)"
                                           : "An extension must have a value[x] or nested extensions (ext-1)");
      }
      return;
    }
    if (et.type == referenceType_) {
      if (et.anyTarget) return;
      const auto ref = v.FindMember("reference");
      if (ref == v.MemberEnd() || !ref->value.IsString()) return;
      const std::string_view type = referencedType(nameOf(ref->value));
      if (type.empty() || m_.resourceNode(type) < 0) return;
      for (std::string_view t : et.targets) {
        if (t == type) return;
      }
      std::string allowed;
      for (std::string_view t : et.targets) {
        if (!allowed.empty()) allowed += ", ";
        allowed.append(t);
      }
      add(IssueType::Value,
          "A reference to " + std::string(type) + " is not allowed in '" + jsonName(el, et) + "' (allowed: " + allowed + ")",
          "reference");
      return;
    }
    if (et.simpleQuantity) {
      if (v.HasMember("comparator")) {
        add(IssueType::Invariant, "A SimpleQuantity must not have a comparator (sqty-1)", "comparator");
      }
      return;
    }
    if (el.valueSet < 0) return;
    const ValueSetImpl& vs = m_.valueSet(static_cast<uint32_t>(el.valueSet));
    if (!vs.enumerable) return;
    if (et.type == codingType_) {
      checkCoding(v, vs);
    } else if (et.type == codeableConceptType_) {
      const auto codings = v.FindMember("coding");
      if (codings == v.MemberEnd() || !codings->value.IsArray()) return;
      FramePush member(frames_, Frame::Member, "coding");
      for (rapidjson::SizeType i = 0; i < codings->value.Size(); ++i) {
        FramePush index(frames_, Frame::Index, {}, i);
        checkCoding(codings->value[i], vs);
      }
    }
  }

  // A coding whose system is one of the value set's systems must use one of its codes.
  void checkCoding(const Value& coding, const ValueSetImpl& vs) {
    if (!coding.IsObject()) return;
    const auto system = coding.FindMember("system");
    const auto code = coding.FindMember("code");
    if (system == coding.MemberEnd() || code == coding.MemberEnd()) return;
    if (!system->value.IsString() || !code->value.IsString()) return;
    const auto* codes = vs.codesOf(nameOf(system->value));
    if (codes == nullptr) return;
    if (codes->count(nameOf(code->value)) == 0) codeNotInValueSet(vs, nameOf(code->value), "code");
  }

  const ModelImpl& m_;
  const int32_t extensionType_;
  const int32_t codeableConceptType_;
  const int32_t codingType_;
  const int32_t referenceType_;
  const int32_t elementNode_;
  std::vector<Issue>& issues_;
  std::vector<Frame> frames_;
  bool stopped_ = false;
  bool depthReported_ = false;
};

}  // namespace

ResourceValidator::ResourceValidator(const Model& model) : model_(model) {
  const ModelImpl& m = model_.impl();
  extensionType_ = m.typeIndex("Extension");
  codeableConceptType_ = m.typeIndex("CodeableConcept");
  codingType_ = m.typeIndex("Coding");
  referenceType_ = m.typeIndex("Reference");
  const int32_t element = m.typeIndex("Element");
  elementNode_ = element < 0 ? -1 : m.type(static_cast<uint32_t>(element)).node;
}

std::vector<Issue> ResourceValidator::validate(const rapidjson::Value& resource) const {
  std::vector<Issue> issues;
  Walker walker(model_.impl(), extensionType_, codeableConceptType_, codingType_, referenceType_, elementNode_,
                issues);
  walker.top(resource);
  return issues;
}

bool hasStructuralIssue(const std::vector<Issue>& issues) {
  for (const Issue& i : issues) {
    if (i.type == IssueType::Structure || i.type == IssueType::Invalid) return true;
  }
  return false;
}

}  // namespace hearth::fhir
