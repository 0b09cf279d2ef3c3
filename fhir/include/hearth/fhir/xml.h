#pragma once
// FHIR R4 XML <-> JSON conversion (http://hl7.org/fhir/R4/xml.html and json.html), driven by the
// generated R4 model, so that the JSON side is exactly what the JSON validator and the store see.
//
// Mapping (both directions):
//  - the root element name <-> JSON `resourceType`; namespace http://hl7.org/fhir;
//  - primitives: the `value` attribute <-> the JSON value (boolean / number by the model's type;
//    integers and decimals keep their exact text: 1.50 stays 1.50); the element's `id` attribute
//    and `extension` children <-> the `_name` object; repeating primitives <-> the parallel
//    `name` / `_name` arrays with nulls;
//  - `id` attributes of elements and `url` of Extension <-> plain JSON members (Resource.id is an
//    element, <id value=".."/>, as R4 defines it);
//  - choice elements keep their typed names (valueQuantity);
//  - a repeated element <-> a JSON array; the model's cardinality decides array vs. single value;
//  - resources inside resources (contained, Bundle.entry.resource, Parameters.parameter.resource,
//    Bundle.entry.response.outcome) are wrapped in their element: <contained><Patient>..;
//  - Narrative.div is XHTML (namespace http://www.w3.org/1999/xhtml) <-> a JSON string holding
//    `<div xmlns="http://www.w3.org/1999/xhtml">...</div>`. Both directions write the XHTML in one
//    canonical form: XHTML elements unprefixed with the namespace declared once on the div,
//    attributes in document order with double quotes, text escaping only & < > (and in
//    attributes also " and tab / CR / LF as character references), empty HTML void elements as
//    <br/> and other empty elements as <td></td> (safe for HTML parsers), comments kept,
//    processing instructions dropped; line ends are LF, as XML parsing makes them. A div
//    already in that form is kept byte for byte, so JSON -> XML -> JSON is the identity for it.
//  - XML element order follows the StructureDefinitions on output. On input the order of sibling
//    elements is not enforced (published examples are not always in order); repeats of one
//    element are gathered into one array in document order.
//
// Safety (XML input, including narrative strings re-parsed on the JSON side): libxml2 without
// DTD loading, entity substitution, network access or XML_PARSE_HUGE; any DOCTYPE is refused as
// soon as the parser meets it (so no entity is ever declared, fetched or expanded); inputs over
// kMaxXmlBytes, nesting deeper than kMaxXmlDepth, NUL bytes, and any encoding other than UTF-8
// (BOM or declaration) are refused; comments and processing instructions outside the narrative
// are ignored. libxml2's own limits still apply (one text or attribute value at most 10 MB).
//
// Errors are FhirError 400 (IssueType::Structure; 413 TooLong for oversized input) with the
// FHIRPath of the offending element in `expression` (validator style: "Patient.name[1].given[0]",
// "Observation.value.ofType(Quantity).value"). Diagnostics never quote element values.
// Thread-safe: no shared mutable state (libxml2 is initialised once, on first use).
#include <cstddef>
#include <string>
#include <string_view>

namespace hearth::fhir {

inline constexpr size_t kMaxXmlBytes = 64u * 1024u * 1024u;
inline constexpr int kMaxXmlDepth = 128;  // element nesting, narrative included

// Parses one FHIR XML resource (any resource type, Bundle included) and returns its FHIR JSON
// (compact; members in definition order, resourceType first). The result is not validated:
// pass it to ResourceValidator like any client JSON. Throws FhirError 400 for XML that is
// malformed, hostile (DOCTYPE / entities), not UTF-8, or not FHIR (wrong namespace, unknown
// element or attribute, text where none is allowed, a non-repeating element repeated, a
// boolean / integer / decimal value that is not lexically valid, an element with neither value
// nor children).
std::string xmlToJson(std::string_view xml);

// Writes a FHIR JSON resource (expected to have passed ResourceValidator) as FHIR XML in
// StructureDefinition element order, with an XML declaration; `pretty` indents by two spaces
// (the narrative's own whitespace is never touched). Throws FhirError 400 (Structure) if the JSON
// does not fit the model (unknown member, wrong JSON type, mismatched `_name` array, a narrative
// that is not a well-formed XHTML div) or holds characters XML 1.0 cannot carry (control
// characters other than tab / CR / LF, U+FFFE, U+FFFF).
std::string jsonToXml(std::string_view json, bool pretty = false);

}  // namespace hearth::fhir
