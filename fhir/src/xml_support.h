#pragma once
// Internals shared by the two directions of the FHIR XML conversion (xml_to_json.cpp,
// xml_from_json.cpp): the one place libxml2 is asked to parse anything, the canonical XHTML
// writer for Narrative.div, escaping, and the FHIRPath-style location used in errors.
#include <libxml/tree.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::fhir::xml {

inline constexpr std::string_view kFhirNs = "http://hl7.org/fhir";
inline constexpr std::string_view kXhtmlNs = "http://www.w3.org/1999/xhtml";
inline constexpr std::string_view kXsiNs = "http://www.w3.org/2001/XMLSchema-instance";

inline std::string_view sv(const xmlChar* s) {
  return s ? std::string_view(reinterpret_cast<const char*>(s)) : std::string_view();
}
inline std::string_view nsOf(const xmlNode* n) { return n->ns ? sv(n->ns->href) : std::string_view(); }

struct DocFree {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
using DocPtr = std::unique_ptr<xmlDoc, DocFree>;

// Parses a complete XML document under the safety rules stated in hearth/fhir/xml.h and returns
// it (never null). `what` names the input in diagnostics ("XML", "the narrative XHTML") and
// `expression` locates it. Throws FhirError 400 / 413.
DocPtr parseSafely(std::string_view text, std::string_view what, const std::string& expression);

// The value of an attribute as one string (attributes hold text only: no entities exist here).
// Returns a view into the node when possible, else into `scratch`.
std::string_view attrValue(const xmlAttr* a, std::string& scratch);

// Appends `s` escaped for XML text content (& < >) or an attribute value (also " and tab, CR,
// LF as character references, so attribute-value normalisation cannot alter them).
void appendEscapedText(std::string& out, std::string_view s);
void appendEscapedAttr(std::string& out, std::string_view s);

// True if every character of the UTF-8 string `s` may appear in XML 1.0 (Char production); false
// also for malformed UTF-8 and surrogate code points.
bool isXmlText(std::string_view s);

// Appends the canonical serialisation of a Narrative div (see hearth/fhir/xml.h) whose root is
// `div` in the XHTML namespace. `depth` is the div's own nesting level, checked against
// kMaxXmlDepth. Throws FhirError 400 for non-XHTML elements, attributes in foreign namespaces or
// a root that is not an XHTML div.
void appendCanonicalXhtml(std::string& out, const xmlNode* div, int depth, const std::string& expression);

// `name` in single quotes for a diagnostic, cut (at a character boundary) after 64 bytes: names
// come from the input and are echoed only to say which one was refused.
std::string quoted(std::string_view name);

// A FHIRPath-style location ("Bundle.entry[0].resource.ofType(Patient).name[1].given[0]"),
// kept as a stack of views and rendered only when an error needs it. The views point into the
// model or the input document, both of which outlive a conversion.
class Location {
 public:
  struct Step {
    std::string_view name;
    int index = -1;           // array position, or -1
    std::string_view ofType;  // choice type / resource type, or empty
  };
  void push(std::string_view name, int index = -1, std::string_view ofType = {}) {
    steps_.push_back(Step{name, index, ofType});
  }
  void pop() { steps_.pop_back(); }
  Step& back() { return steps_.back(); }
  size_t depth() const { return steps_.size(); }
  std::string str() const;  // each step's name cut like quoted() does
  // The location with one more step, for a member that was not pushed.
  std::string str(std::string_view child) const;

 private:
  std::vector<Step> steps_;
};

}  // namespace hearth::fhir::xml
