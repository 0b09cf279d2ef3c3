// FHIR JSON -> FHIR XML. The JSON is read into a RapidJSON DOM in which numbers keep their exact
// text (see NumberMarkingHandler), then each object's members are resolved in the model, ordered
// by definition, and written as elements / attributes into one output string.
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <algorithm>

#include "hearth/fhir/error.h"
#include "hearth/fhir/model.h"
#include "hearth/fhir/xml.h"
#include "model_impl.h"
#include "xml_support.h"

namespace hearth::fhir {

namespace {

using rapidjson::SizeType;
using rapidjson::Value;

// Numbers are stored in the DOM as strings that start with this byte. It cannot begin a string
// from the input: the parse validates UTF-8, in which 0xFF never occurs.
constexpr char kNumberMark = '\xFF';

bool isNumber(const Value& v) {
  return v.IsString() && v.GetStringLength() > 0 && v.GetString()[0] == kNumberMark;
}
bool isText(const Value& v) { return v.IsString() && !isNumber(v); }
std::string_view numberText(const Value& v) {
  return std::string_view(v.GetString() + 1, v.GetStringLength() - 1);
}
std::string_view text(const Value& v) { return std::string_view(v.GetString(), v.GetStringLength()); }

// SAX handler that fills a Document, turning each raw number into a marked string.
class NumberMarkingHandler {
 public:
  explicit NumberMarkingHandler(rapidjson::Document& d) : d_(d) {}
  bool Null() { return d_.Null(); }
  bool Bool(bool b) { return d_.Bool(b); }
  bool Int(int i) { return d_.Int(i); }
  bool Uint(unsigned u) { return d_.Uint(u); }
  bool Int64(int64_t i) { return d_.Int64(i); }
  bool Uint64(uint64_t u) { return d_.Uint64(u); }
  bool Double(double x) { return d_.Double(x); }
  bool RawNumber(const char* s, SizeType n, bool) {
    buf_.assign(1, kNumberMark);
    buf_.append(s, n);
    return d_.String(buf_.data(), static_cast<SizeType>(buf_.size()), true);
  }
  bool String(const char* s, SizeType n, bool copy) { return d_.String(s, n, copy); }
  bool StartObject() { return d_.StartObject(); }
  bool Key(const char* s, SizeType n, bool copy) { return d_.Key(s, n, copy); }
  bool EndObject(SizeType n) { return d_.EndObject(n); }
  bool StartArray() { return d_.StartArray(); }
  bool EndArray(SizeType n) { return d_.EndArray(n); }

 private:
  rapidjson::Document& d_;
  std::string buf_;
};

void parseMarked(std::string_view json, rapidjson::Document& doc) {
  rapidjson::ParseResult result;
  auto generator = [&](rapidjson::Document& d) {
    NumberMarkingHandler h(d);
    rapidjson::Reader reader;
    rapidjson::MemoryStream ms(json.data(), json.size());
    result = reader.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag |
                          rapidjson::kParseNumbersAsStringsFlag>(ms, h);
    return !result.IsError();
  };
  doc.Populate(generator);
  if (result.IsError()) {
    throw FhirError(400, IssueType::Structure,
                    "Malformed JSON at byte " + std::to_string(result.Offset()) + ": " +
                        rapidjson::GetParseError_En(result.Code()));
  }
}

// One JSON member of the object being written, resolved in the model.
struct Entry {
  uint32_t element = 0;
  uint16_t local = 0;
  uint8_t typeIndex = 0;
  bool underscore = false;
  const Value* key = nullptr;
  const Value* value = nullptr;
};

class JsonToXml {
 public:
  JsonToXml(const ModelImpl& m, bool pretty) : m_(m), pretty_(pretty) {
    elementNode_ = static_cast<uint32_t>(m_.type(static_cast<uint32_t>(m_.typeIndex("Element"))).node);
  }

  std::string run(std::string_view json) {
    rapidjson::Document doc;
    parseMarked(json, doc);
    out_.reserve(json.size() + json.size() / 2 + 64);
    out_ = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
    if (!doc.IsObject()) throw FhirError(400, IssueType::Structure, "A resource must be a JSON object");
    resource(doc, 0, 1, true);
    if (pretty_) out_ += '\n';
    return std::move(out_);
  }

 private:
  [[noreturn]] void fail(const std::string& diagnostics) const {
    throw FhirError(400, IssueType::Structure, diagnostics, loc_.str());
  }
  [[noreturn]] void failAt(std::string_view child, const std::string& diagnostics) const {
    throw FhirError(400, IssueType::Structure, diagnostics, loc_.str(child));
  }
  void checkDepth(int depth) const {
    if (depth > kMaxXmlDepth)
      fail("The resource is nested deeper than " + std::to_string(kMaxXmlDepth) + " levels");
  }
  void newline(int indent) {
    if (!pretty_) return;
    out_ += '\n';
    out_.append(static_cast<size_t>(indent) * 2, ' ');
  }
  void appendAttrText(std::string_view s) {
    if (!xml::isXmlText(s)) fail("The value holds characters that XML cannot represent");
    xml::appendEscapedAttr(out_, s);
  }

  bool isXmlAttribute(const ElementImpl& e) const {
    if (!e.attribute) return false;
    const NodeImpl& owner = m_.node(e.node);
    return owner.type < 0 || !m_.type(static_cast<uint32_t>(owner.type)).isResource;
  }

  // A resource object. At the root the location is empty and gets the resource type; below, the
  // caller's step gets it as ofType.
  void resource(const Value& obj, int indent, int depth, bool root) {
    checkDepth(depth);
    auto rt = obj.FindMember("resourceType");
    if (rt == obj.MemberEnd() || !isText(rt->value)) fail("A resource needs a 'resourceType' string");
    const std::string_view type = text(rt->value);
    const int32_t node = m_.resourceNode(type);
    if (root) loc_.push(type);
    if (node < 0) fail(xml::quoted(type) + " is not a FHIR R4 resource type");
    if (!root) loc_.back().ofType = type;
    element(type, &obj, static_cast<uint32_t>(node), indent, depth, root ? Extra::Namespace : Extra::None,
            true);
  }

  enum class Extra { None, Namespace, Value };

  // Writes <tag ...>...</tag> for the members of `obj` (may be null: a primitive without `_name`)
  // resolved in `node`; `isResource`: obj is a resource and its resourceType is the tag.
  // Extra::Namespace declares the FHIR namespace (the root); Extra::Value writes value_ (already
  // escaped) as the `value` attribute of a primitive.
  void element(std::string_view tag, const Value* obj, uint32_t node, int indent, int depth, Extra extra,
               bool isResource = false) {
    checkDepth(depth);
    const size_t begin = entries_.size();
    if (obj) {
      if (!obj->IsObject()) fail("Expected a JSON object");
      for (auto m = obj->MemberBegin(); m != obj->MemberEnd(); ++m) {
        const std::string_view key = text(m->name);
        if (isResource && key == "resourceType") continue;  // the tag
        const MemberRef* ref = m_.member(node, key);
        if (!ref) failAt(key, "Unknown element " + xml::quoted(key));
        entries_.push_back(
            Entry{ref->element, ref->local, ref->typeIndex, ref->underscore, &m->name, &m->value});
      }
    }
    const size_t end = entries_.size();
    const auto first = entries_.begin() + static_cast<std::ptrdiff_t>(begin);
    const auto last = entries_.begin() + static_cast<std::ptrdiff_t>(end);
    const auto byLocal = [](const Entry& a, const Entry& b) { return a.local < b.local; };
    if (!std::is_sorted(first, last, byLocal)) std::stable_sort(first, last, byLocal);

    newline(indent);
    out_ += '<';
    out_ += tag;
    if (extra == Extra::Namespace) {
      out_ += " xmlns=\"";
      out_ += xml::kFhirNs;
      out_ += '"';
    }
    bool children = false;
    for (size_t k = begin; k < end; ++k) {
      const Entry& en = entries_[k];
      const ElementImpl& e = m_.element(en.element);
      if (!isXmlAttribute(e)) {
        children = true;
        continue;
      }
      if (k > begin && entries_[k - 1].local == en.local)
        failAt(e.def.name, "Duplicate member '" + e.def.name + "'");
      if (!isText(*en.value)) failAt(e.def.name, "'" + e.def.name + "' must be a string");
      out_ += ' ';
      out_ += e.def.name;
      out_ += "=\"";
      loc_.push(e.def.name);
      appendAttrText(text(*en.value));
      loc_.pop();
      out_ += '"';
    }
    if (extra == Extra::Value) {
      out_ += " value=\"";
      out_ += value_;
      out_ += '"';
    }
    if (!children) {
      out_ += "/>";
      entries_.resize(begin);
      return;
    }
    out_ += '>';
    for (size_t i = begin; i < end;) {
      size_t j = i + 1;
      while (j < end && entries_[j].local == entries_[i].local) ++j;
      if (!isXmlAttribute(m_.element(entries_[i].element))) group(i, j, indent + 1, depth);
      i = j;
    }
    newline(indent);
    out_ += "</";
    out_ += tag;
    out_ += '>';
    entries_.resize(begin);
  }

  // Writes the element(s) for entries_[i, j): at most one plain member and one `_name` member of
  // the same element. entries_ may grow (and move) during nested calls: index only.
  void group(size_t i, size_t j, int indent, int depth) {
    const Value* plain = nullptr;
    const Value* under = nullptr;
    const Entry first = entries_[i];
    const ElementImpl& e = m_.element(first.element);
    for (size_t k = i; k < j; ++k) {
      const Entry& en = entries_[k];
      if (en.typeIndex != first.typeIndex) {
        failAt(e.def.name, "More than one type given for the choice element '" + e.def.name + "[x]'");
      }
      const Value*& slot = en.underscore ? under : plain;
      if (slot) failAt(text(*en.key), "Duplicate member " + xml::quoted(text(*en.key)));
      slot = en.value;
    }
    const ElementType& t = e.types[first.typeIndex];
    const std::string tag = e.def.name + t.jsonSuffix;
    const std::string_view ofType = e.def.isChoice ? t.name : std::string_view();
    const bool array = e.def.isArray();

    if (t.kind == TypeKind::Xhtml) {
      loc_.push(e.def.name);
      if (!plain || !isText(*plain)) fail("The narrative must be a string");
      const xml::DocPtr doc = xml::parseSafely(text(*plain), "the narrative XHTML", loc_.str());
      newline(indent);
      xml::appendCanonicalXhtml(out_, xmlDocGetRootElement(doc.get()), depth + 1, loc_.str());
      loc_.pop();
      return;
    }
    if (t.kind == TypeKind::Resource || t.kind == TypeKind::Complex) {
      if (!plain) failAt(text(*first.key), "Unknown element " + xml::quoted(text(*first.key)));
      forEach(*plain, array, tag, [&](const Value& item, int index) {
        loc_.push(e.def.name, index, ofType);
        if (t.kind == TypeKind::Resource) {
          if (!item.IsObject()) fail("Expected a resource (JSON object)");
          newline(indent);
          out_ += '<';
          out_ += tag;
          out_ += '>';
          resource(item, indent + 1, depth + 2, false);
          newline(indent);
          out_ += "</";
          out_ += tag;
          out_ += '>';
        } else {
          element(tag, &item, static_cast<uint32_t>(t.node), indent, depth + 1, Extra::None);
        }
        loc_.pop();
      });
      return;
    }

    // A primitive: `name` (values) and `_name` (id / extensions), parallel arrays if repeating.
    if (!array) {
      loc_.push(e.def.name, -1, ofType);
      writePrimitive(tag, plain, under, t.kind, indent, depth);
      loc_.pop();
      return;
    }
    if ((plain && !plain->IsArray()) || (under && !under->IsArray()))
      failAt(tag, "'" + tag + "' must be an array");
    // The arrays should be equally long (ResourceValidator insists); a shorter one is read as
    // padded with nulls, as the official FHIRPath test input patient-name-extensions.json needs.
    const SizeType n = std::max(plain ? plain->Size() : 0, under ? under->Size() : 0);
    if (n == 0) failAt(tag, "'" + tag + "' must not be empty");
    for (SizeType k = 0; k < n; ++k) {
      loc_.push(e.def.name, static_cast<int>(k), ofType);
      const Value* v = plain && k < plain->Size() && !(*plain)[k].IsNull() ? &(*plain)[k] : nullptr;
      const Value* x = under && k < under->Size() && !(*under)[k].IsNull() ? &(*under)[k] : nullptr;
      writePrimitive(tag, v, x, t.kind, indent, depth);
      loc_.pop();
    }
  }

  template <class F>
  void forEach(const Value& v, bool array, const std::string& tag, F f) {
    if (!array) {
      f(v, -1);
      return;
    }
    if (!v.IsArray()) failAt(tag, "'" + tag + "' must be an array");
    if (v.Empty()) failAt(tag, "'" + tag + "' must not be empty");
    for (SizeType k = 0; k < v.Size(); ++k) f(v[k], static_cast<int>(k));
  }

  void writePrimitive(const std::string& tag, const Value* v, const Value* extras, TypeKind kind, int indent,
                      int depth) {
    if (!v && (!extras || !extras->IsObject() || extras->ObjectEmpty())) {
      fail("A primitive needs a value, an id or extensions");
    }
    if (!v) {
      element(tag, extras, elementNode_, indent, depth + 1, Extra::None);
      return;
    }
    value_.clear();
    switch (kind) {
      case TypeKind::Boolean:
        if (!v->IsBool()) fail("Expected a JSON boolean");
        value_ = v->GetBool() ? "true" : "false";
        break;
      case TypeKind::Integer:
      case TypeKind::UnsignedInt:
      case TypeKind::PositiveInt:
      case TypeKind::Decimal:
        if (!isNumber(*v)) fail("Expected a JSON number");
        value_ = numberText(*v);
        break;
      default:
        if (!isText(*v)) fail("Expected a JSON string");
        if (!xml::isXmlText(text(*v))) fail("The value holds characters that XML cannot represent");
        xml::appendEscapedAttr(value_, text(*v));
    }
    element(tag, extras, elementNode_, indent, depth + 1, Extra::Value);
  }

  const ModelImpl& m_;
  const bool pretty_;
  uint32_t elementNode_ = 0;  // the node of Element: the shape of a primitive's `_name` object
  std::string out_;
  std::string value_;  // the escaped value attribute of the primitive being written
  xml::Location loc_;
  std::vector<Entry> entries_;  // a stack: each element() call works on its own tail
};

}  // namespace

std::string jsonToXml(std::string_view json, bool pretty) {
  JsonToXml converter(Model::r4().impl(), pretty);
  return converter.run(json);
}

}  // namespace hearth::fhir
