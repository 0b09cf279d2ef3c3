// STUB: replaced by the search engine implementation.
#include "hearth/fhir/search.h"
#include "hearth/fhir/service.h"
namespace hearth::fhir {
struct SearchEngine::Impl {};
SearchParams parseSearchQuery(std::string_view) { return {}; }
SearchEngine::SearchEngine(ResourceService&) : impl_(std::make_unique<Impl>()) {}
SearchEngine::~SearchEngine() = default;
std::string SearchEngine::search(const SearchRequest&) { throw FhirError(501, IssueType::NotSupported, "search not implemented"); }
std::string SearchEngine::everything(std::string_view, std::string_view, const SearchParams&, const std::string&) { throw FhirError(501, IssueType::NotSupported, "not implemented"); }
std::vector<std::string> SearchEngine::matchIds(std::string_view, std::string_view, StoreTransaction*, int) { throw FhirError(501, IssueType::NotSupported, "not implemented"); }
std::string SearchEngine::applySummary(std::string_view, std::string_view json, std::string_view, std::string_view) const { return std::string(json); }
}  // namespace hearth::fhir
