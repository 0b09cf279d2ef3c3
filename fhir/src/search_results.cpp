// STUB: replaced by the search results implementation (includes, summary, compartments, $everything).
#include "search_results.h"
namespace hearth::fhir::searchimpl {
IncludeSpec parseIncludeSpec(const Model&, std::string_view) { throw FhirError(400, IssueType::NotSupported, "_include is not supported yet"); }
std::vector<FetchedResource> resolveIncludes(ResourceStore&, StoreTransaction*, const Model&, const std::vector<FetchedResource>&,
                                             const std::vector<IncludeSpec>&, const std::vector<IncludeSpec>&, size_t) { return {}; }
std::string applySummary(const Model&, std::string_view, std::string_view json, std::string_view, std::string_view) { return std::string(json); }
bool compartmentTypeSupported(std::string_view t) { return t == "Patient"; }
const std::vector<std::string>& compartmentParams(std::string_view, std::string_view) { static const std::vector<std::string> none; return none; }
const std::vector<std::string>& compartmentResourceTypes(std::string_view) { static const std::vector<std::string> none; return none; }
std::string everything(ResourceStore&, const Model&, std::string_view, std::string_view, const SearchParams&, const std::string&, int, int) {
  throw FhirError(501, IssueType::NotSupported, "$everything is not implemented yet");
}
}  // namespace hearth::fhir::searchimpl
