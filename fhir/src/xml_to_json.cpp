// FHIR XML -> FHIR JSON. The XML is parsed once (xml::parseSafely) and walked with the generated
// model: each element name is resolved within its parent's node exactly like a JSON member name,
// so choice names, repeats and primitive types come from the same tables the validator uses.
// JSON is streamed out through a RapidJSON Writer; integers and decimals are written as raw text.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "hearth/fhir/error.h"
#include "hearth/fhir/model.h"
#include "hearth/fhir/xml.h"
#include "model_impl.h"
#include "xml_support.h"

namespace hearth::fhir {

namespace {

using xml::sv;

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// -?(0|[1-9][0-9]*) : FHIR integer lexical space, also a JSON number.
size_t scanInteger(std::string_view s, size_t p) {
  if (p < s.size() && s[p] == '-') ++p;
  if (p >= s.size() || !isDigit(s[p])) return std::string_view::npos;
  if (s[p] == '0') return p + 1;
  while (p < s.size() && isDigit(s[p])) ++p;
  return p;
}
bool isIntegerText(std::string_view s) { return scanInteger(s, 0) == s.size(); }
// FHIR decimal: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? (exactly JSON's number grammar).
bool isDecimalText(std::string_view s) {
  size_t p = scanInteger(s, 0);
  if (p == std::string_view::npos) return false;
  if (p < s.size() && s[p] == '.') {
    const size_t start = ++p;
    while (p < s.size() && isDigit(s[p])) ++p;
    if (p == start) return false;
  }
  if (p < s.size() && (s[p] == 'e' || s[p] == 'E')) {
    ++p;
    if (p < s.size() && (s[p] == '+' || s[p] == '-')) ++p;
    const size_t start = p;
    while (p < s.size() && isDigit(s[p])) ++p;
    if (p == start) return false;
  }
  return p == s.size();
}

bool isBlank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

// One XML attribute or child element of the element being converted, resolved in the model.
struct Entry {
  uint32_t element = 0;
  uint16_t local = 0;          // definition order within the node
  uint8_t typeIndex = 0;       // the choice type named by the element name
  bool attribute = false;      // an XML attribute (Element.id, Extension.url)
  const void* item = nullptr;  // xmlNode* or xmlAttr*
  const xmlNode* node() const { return static_cast<const xmlNode*>(item); }
  const xmlAttr* attr() const { return static_cast<const xmlAttr*>(item); }
};

class XmlToJson {
 public:
  explicit XmlToJson(const ModelImpl& m) : m_(m), w_(buf_) {
    const int32_t element = m_.typeIndex("Element");
    elementNode_ = static_cast<uint32_t>(m_.type(static_cast<uint32_t>(element)).node);
  }

  std::string run(std::string_view text) {
    xml::DocPtr doc = xml::parseSafely(text, "XML", {});
    const xmlNode* root = xmlDocGetRootElement(doc.get());
    loc_.push(sv(root->name));
    resource(root, 1);
    return std::string(buf_.GetString(), buf_.GetSize());
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
      fail("The XML is nested deeper than " + std::to_string(kMaxXmlDepth) + " levels");
  }

  bool isXmlAttribute(const ElementImpl& e) const {
    if (!e.attribute) return false;
    const NodeImpl& owner = m_.node(e.node);
    return owner.type < 0 || !m_.type(static_cast<uint32_t>(owner.type)).isResource;
  }

  // A resource element (the document root or the child of a resource-typed element); the
  // location already names it.
  void resource(const xmlNode* el, int depth) {
    checkDepth(depth);
    const std::string_view name = sv(el->name);
    if (xml::nsOf(el) != xml::kFhirNs) {
      fail("Element " + xml::quoted(name) + " is not in the FHIR namespace (" + std::string(xml::kFhirNs) +
           ")");
    }
    const int32_t node = m_.resourceNode(name);
    if (node < 0) fail(xml::quoted(name) + " is not a FHIR R4 resource type");
    w_.StartObject();
    w_.Key("resourceType", 12);
    w_.String(name.data(), static_cast<rapidjson::SizeType>(name.size()));
    members(el, static_cast<uint32_t>(node), depth, Mode::Resource);
    w_.EndObject();
  }

  enum class Mode { Resource, Complex, Primitive };

  // Writes the JSON members for the attributes and children of `el` (an element of node `node`),
  // in definition order.
  void members(const xmlNode* el, uint32_t node, int depth, Mode mode) {
    const size_t begin = entries_.size();
    for (const xmlAttr* a = el->properties; a; a = a->next) {
      const std::string_view name = sv(a->name);
      if (a->ns) {
        if (mode == Mode::Resource && sv(a->ns->href) == xml::kXsiNs && name == "schemaLocation") continue;
        failAt(name, "Unknown attribute " + xml::quoted(name) + " (in a foreign namespace)");
      }
      if (mode == Mode::Primitive && name == "value") continue;  // read by the caller
      const MemberRef* ref = m_.member(node, name);
      if (!ref || ref->underscore || !isXmlAttribute(m_.element(ref->element))) {
        failAt(name, "Unknown attribute " + xml::quoted(name));
      }
      entries_.push_back(Entry{ref->element, ref->local, ref->typeIndex, true, a});
    }
    for (const xmlNode* c = el->children; c; c = c->next) {
      switch (c->type) {
        case XML_ELEMENT_NODE:
          break;
        case XML_TEXT_NODE:
        case XML_CDATA_SECTION_NODE:
          if (!isBlank(sv(c->content)))
            fail("Text content is not allowed here; FHIR values are in 'value' attributes");
          continue;
        case XML_COMMENT_NODE:
        case XML_PI_NODE:
          continue;
        default:
          fail("Unsupported XML content");
      }
      const std::string_view name = sv(c->name);
      const MemberRef* ref = m_.member(node, name);
      if (!ref || ref->underscore) failAt(name, "Unknown element " + xml::quoted(name));
      const ElementImpl& e = m_.element(ref->element);
      if (isXmlAttribute(e)) failAt(name, xml::quoted(name) + " must be an XML attribute, not an element");
      const bool xhtml = e.types[ref->typeIndex].kind == TypeKind::Xhtml;
      if (xml::nsOf(c) != (xhtml ? xml::kXhtmlNs : xml::kFhirNs)) {
        failAt(name, "Element " + xml::quoted(name) + " is not in the " + (xhtml ? "XHTML" : "FHIR") +
                         " namespace (" + std::string(xhtml ? xml::kXhtmlNs : xml::kFhirNs) + ")");
      }
      entries_.push_back(Entry{ref->element, ref->local, ref->typeIndex, false, c});
    }
    const size_t end = entries_.size();
    const auto first = entries_.begin() + static_cast<std::ptrdiff_t>(begin);
    const auto last = entries_.begin() + static_cast<std::ptrdiff_t>(end);
    const auto byLocal = [](const Entry& a, const Entry& b) { return a.local < b.local; };
    if (!std::is_sorted(first, last, byLocal)) std::stable_sort(first, last, byLocal);
    for (size_t i = begin; i < end;) {
      size_t j = i + 1;
      while (j < end && entries_[j].local == entries_[i].local) ++j;
      group(i, j, depth);
      i = j;
    }
    entries_.resize(begin);
  }

  // Writes one JSON member (plus its `_name` twin for primitives) from entries_[i, j), which all
  // name the same element. entries_ may grow (and move) during the nested calls: index only.
  void group(size_t i, size_t j, int depth) {
    const Entry first = entries_[i];
    const ElementImpl& e = m_.element(first.element);
    const ElementType& t = e.types[first.typeIndex];
    key_ = e.def.name;
    key_ += t.jsonSuffix;
    for (size_t k = i + 1; k < j; ++k) {
      if (entries_[k].typeIndex != first.typeIndex) {
        failAt(e.def.name, "More than one type given for the choice element '" + e.def.name + "[x]'");
      }
    }
    const size_t count = j - i;
    if (!e.def.isArray() && count > 1) failAt(key_, "Element '" + key_ + "' may occur only once");

    if (first.attribute) {
      w_.Key(key_.data(), static_cast<rapidjson::SizeType>(key_.size()));
      const std::string_view v = xml::attrValue(first.attr(), scratch_);
      w_.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
      return;
    }
    const std::string_view ofType = e.def.isChoice ? t.name : std::string_view();
    const bool array = e.def.isArray();
    switch (t.kind) {
      case TypeKind::Xhtml: {
        loc_.push(e.def.name);
        std::string div;
        xml::appendCanonicalXhtml(div, first.node(), depth + 1, loc_.str());
        loc_.pop();
        w_.Key(key_.data(), static_cast<rapidjson::SizeType>(key_.size()));
        w_.String(div.data(), static_cast<rapidjson::SizeType>(div.size()));
        return;
      }
      case TypeKind::Resource:
      case TypeKind::Complex: {
        w_.Key(key_.data(), static_cast<rapidjson::SizeType>(key_.size()));
        if (array) w_.StartArray();
        for (size_t k = i; k < j; ++k) {
          const xmlNode* el = entries_[k].node();
          loc_.push(e.def.name, array ? static_cast<int>(k - i) : -1, ofType);
          if (t.kind == TypeKind::Resource) {
            const xmlNode* inner = wrappedResource(el);
            loc_.back().ofType = sv(inner->name);
            resource(inner, depth + 2);
          } else {
            checkDepth(depth + 1);
            w_.StartObject();
            members(el, static_cast<uint32_t>(t.node), depth + 1, Mode::Complex);
            w_.EndObject();
          }
          loc_.pop();
        }
        if (array) w_.EndArray();
        return;
      }
      default:
        primitives(i, j, e, t, depth);
    }
  }

  // The single resource element inside a resource-typed element such as <contained>.
  const xmlNode* wrappedResource(const xmlNode* el) const {
    if (el->properties) fail("A resource container element has no attributes");
    const xmlNode* found = nullptr;
    for (const xmlNode* c = el->children; c; c = c->next) {
      if (c->type == XML_ELEMENT_NODE) {
        if (found) fail("Exactly one resource is expected here");
        found = c;
      } else if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) &&
                 !isBlank(sv(c->content))) {
        fail("Text content is not allowed here");
      }
    }
    if (!found) fail("A resource is expected here");
    return found;
  }

  static const xmlAttr* valueAttr(const xmlNode* el) {
    for (const xmlAttr* a = el->properties; a; a = a->next) {
      if (!a->ns && sv(a->name) == "value") return a;
    }
    return nullptr;
  }
  // True if the primitive element carries an id or extensions (its JSON `_name` object).
  static bool hasExtras(const xmlNode* el) {
    for (const xmlAttr* a = el->properties; a; a = a->next) {
      if (a->ns || sv(a->name) != "value") return true;
    }
    for (const xmlNode* c = el->children; c; c = c->next) {
      if (c->type == XML_ELEMENT_NODE) return true;
      if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && !isBlank(sv(c->content)))
        return true;
    }
    return false;
  }

  void primitives(size_t i, size_t j, const ElementImpl& e, const ElementType& t, int depth) {
    const bool array = e.def.isArray();
    bool anyValue = false, anyExtras = false;
    for (size_t k = i; k < j; ++k) {
      const xmlNode* el = entries_[k].node();
      const bool v = valueAttr(el) != nullptr, x = hasExtras(el);
      if (!v && !x) failAt(key_, "Element '" + key_ + "' has neither a value nor extensions");
      if (x && e.attribute) failAt(key_, "Element '" + key_ + "' cannot carry an id or extensions");
      anyValue |= v;
      anyExtras |= x;
    }
    const std::string name = key_;  // key_ is reused by nested members
    const std::string_view ofType = e.def.isChoice ? t.name : std::string_view();
    if (anyValue) {
      w_.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
      if (array) w_.StartArray();
      for (size_t k = i; k < j; ++k) {
        const xmlAttr* v = valueAttr(entries_[k].node());
        if (!v) {
          w_.Null();
          continue;
        }
        loc_.push(e.def.name, array ? static_cast<int>(k - i) : -1, ofType);
        value(t.kind, xml::attrValue(v, scratch_));
        loc_.pop();
      }
      if (array) w_.EndArray();
    }
    if (anyExtras) {
      const std::string underscored = "_" + name;
      w_.Key(underscored.data(), static_cast<rapidjson::SizeType>(underscored.size()));
      if (array) w_.StartArray();
      for (size_t k = i; k < j; ++k) {
        const xmlNode* el = entries_[k].node();
        if (!hasExtras(el)) {
          w_.Null();
          continue;
        }
        loc_.push(e.def.name, array ? static_cast<int>(k - i) : -1, ofType);
        checkDepth(depth + 1);
        w_.StartObject();
        members(el, elementNode_, depth + 1, Mode::Primitive);
        w_.EndObject();
        loc_.pop();
      }
      if (array) w_.EndArray();
    }
  }

  void value(TypeKind kind, std::string_view v) {
    switch (kind) {
      case TypeKind::Boolean:
        if (v == "true") {
          w_.Bool(true);
        } else if (v == "false") {
          w_.Bool(false);
        } else {
          fail("A boolean value must be 'true' or 'false'");
        }
        return;
      case TypeKind::Integer:
      case TypeKind::UnsignedInt:
      case TypeKind::PositiveInt:
        if (!isIntegerText(v)) fail("Not a valid integer value");
        w_.RawValue(v.data(), v.size(), rapidjson::kNumberType);
        return;
      case TypeKind::Decimal:
        if (!isDecimalText(v)) fail("Not a valid decimal value");
        w_.RawValue(v.data(), v.size(), rapidjson::kNumberType);
        return;
      default:
        w_.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
    }
  }

  const ModelImpl& m_;
  uint32_t elementNode_ = 0;  // the node of Element: the shape of a primitive's `_name` object
  rapidjson::StringBuffer buf_;
  rapidjson::Writer<rapidjson::StringBuffer> w_;
  xml::Location loc_;
  std::vector<Entry> entries_;  // a stack: each members() call works on its own tail
  std::string key_;
  std::string scratch_;
};

}  // namespace

std::string xmlToJson(std::string_view xml) {
  XmlToJson converter(Model::r4().impl());
  return converter.run(xml);
}

}  // namespace hearth::fhir
