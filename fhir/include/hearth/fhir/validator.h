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
//    code, decimal, integer ranges, uri, oid, uuid, base64Binary ...), missing required elements
//    (IssueType::Required: min cardinality), codes outside required bindings (IssueType::CodeInvalid).
// Contained resources and Bundle.entry.resource are validated as resources of their own type.
// Thread-safe: one instance may be shared by all threads.
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

 private:
  const Model& model_;
};

// True if any issue is a structural / parse-level problem (answered 400); otherwise content
// problems are answered 422.
bool hasStructuralIssue(const std::vector<Issue>& issues);

}  // namespace hearth::fhir
