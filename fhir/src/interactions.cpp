// STUB: replaced by the bundle / conditional / patch implementation.
#include "hearth/fhir/interactions.h"
namespace hearth::fhir {
InteractionProcessor::InteractionProcessor(ResourceService& s, SearchEngine& q) : service_(s), search_(q) {}
std::string InteractionProcessor::processBundle(std::string_view, const std::string&, ReturnPreference) { throw FhirError(501, IssueType::NotSupported, "not implemented"); }
WriteOutcome InteractionProcessor::conditionalCreate(std::string_view, std::string_view, std::string_view) { throw FhirError(501, IssueType::NotSupported, "not implemented"); }
WriteOutcome InteractionProcessor::conditionalUpdate(std::string_view, std::string_view, std::string_view, std::optional<int64_t>) { throw FhirError(501, IssueType::NotSupported, "not implemented"); }
WriteOutcome InteractionProcessor::conditionalDelete(std::string_view, std::string_view, bool, int*) { throw FhirError(501, IssueType::NotSupported, "not implemented"); }
WriteOutcome InteractionProcessor::patch(std::string_view, std::string_view, std::string_view, std::optional<int64_t>) { throw FhirError(501, IssueType::NotSupported, "not implemented"); }
WriteOutcome InteractionProcessor::conditionalPatch(std::string_view, std::string_view, std::string_view, std::optional<int64_t>) { throw FhirError(501, IssueType::NotSupported, "not implemented"); }
std::string applyJsonPatch(std::string_view, std::string_view) { throw FhirError(501, IssueType::NotSupported, "not implemented"); }
}  // namespace hearth::fhir
