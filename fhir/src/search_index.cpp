// STUB: replaced by the search-index implementation.
#include "hearth/fhir/search_index.h"
namespace hearth::fhir {
struct SearchIndexer::Impl {};
SearchIndexer::SearchIndexer(const Model&) : impl_(std::make_unique<Impl>()) {}
SearchIndexer::~SearchIndexer() = default;
std::vector<IndexRow> SearchIndexer::extract(std::string_view, const rapidjson::Value&) const { return {}; }
bool SearchIndexer::kindOf(std::string_view, IndexKind&) { return false; }
std::string normalizeSearchString(std::string_view s) { return std::string(s); }
bool fhirDateRange(std::string_view, int64_t&, int64_t&) { return false; }
}  // namespace hearth::fhir
