#pragma once
// ResourceValidator: checks a parsed FHIR JSON resource against the generated R4 model.
//
// It reports, each with the FHIRPath expression of the offending element (e.g.
// "Patient.name[0].given[1]", "Observation.value.ofType(Quantity).value"):
//  - structure (IssueType::Structure): not an object, unknown resourceType, unknown element,
//    wrong JSON type (string vs number vs boolean vs object vs array, array where max = 1 and
//    scalar where max > 1), duplicate keys, empty objects / arrays / strings, nulls outside
//    primitive-extension arrays, nesting deeper than the limit;
//  - content: invalid primitive values (IssueType::Value: date, dateTime, instant, time, id,
//    code, decimal, integer ranges, uri, oid, uuid, base64Binary ...; a narrative div must be safe
//    FHIR XHTML, txt-1/txt-2, see fhir/src/xhtml.h), missing required elements
//    (IssueType::Required: min cardinality), codes outside required bindings (IssueType::CodeInvalid).
// Contained resources and Bundle.entry.resource are validated as resources of their own type.
// Also checked: extension url + value[x] xor nested extensions (ext-1, IssueType::Invariant),
// contained resources without nested contained / meta.versionId / lastUpdated / security
// (dom-2, dom-4, dom-5, Invariant), no comparator in a SimpleQuantity, elements that carry only an
// id (ele-1, Invariant), and the resource type of literal references ("Patient/1") against the
// element's allowed targets (Value).
// Expressions: array items are indexed ("Patient.name[0].given[1]"); a choice element is named by
// its base name with ofType ("Observation.value.ofType(Quantity).value"); a resource inside a
// resource likewise ("Bundle.entry[0].resource.ofType(Patient).gender",
// "Patient.contained[0].ofType(Organization).name"); the `_name` extension form of a primitive
// is addressed as the primitive itself ("Patient.birthDate.extension[0].url").
// Diagnostics name the element and the expected form; they quote a bad value only for short
// dates, times, codes, ids and numbers, never free text (which may be patient data).
// At most 100 issues are reported; nesting deeper than 100 JSON levels is one Structure issue.
// Thread-safe: one instance may be shared by all threads (validate() keeps its state on the stack).
#include <rapidjson/document.h>

#include <vector>

#include "hearth/fhir/error.h"
#include "hearth/fhir/model.h"

namespace hearth::fhir {

class ResourceValidator {
 public:
  explicit ResourceValidator(const Model& model = Model::r4());
  // Returns every problem found (empty when valid). Never throws for bad input.
  std::vector<Issue> validate(const rapidjson::Value& resource) const;

  static constexpr int kMaxDepth = 100;
  static constexpr size_t kMaxIssues = 100;

 private:
  const Model& model_;
  // Types with extra rules, resolved once from the model.
  int32_t extensionType_ = -1;
  int32_t codeableConceptType_ = -1;
  int32_t codingType_ = -1;
  int32_t referenceType_ = -1;
  int32_t elementNode_ = -1;  // the node of Element: shape of a primitive's `_name` object
};

// True if any issue is a structural / parse-level problem (answered 400); otherwise content
// problems are answered 422.
bool hasStructuralIssue(const std::vector<Issue>& issues);

}  // namespace hearth::fhir
