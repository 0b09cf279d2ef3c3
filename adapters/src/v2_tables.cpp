#include "v2_tables.h"

#include <algorithm>
#include <cctype>

namespace hearth::adapters::tables {

using generated::CodeTable;

const CodeTable* table(std::string_view id) {
  for (std::size_t i = 0; i < generated::kCodeTableCount; ++i) {
    if (generated::kCodeTables[i].id == id) return &generated::kCodeTables[i];
  }
  return nullptr;
}

std::string_view systemOf(std::string_view tableId) {
  const CodeTable* t = table(tableId);
  return t ? t->system : std::string_view{};
}

namespace {
const generated::Concept* findConcept(const CodeTable& t, std::string_view code) {
  const generated::Concept* end = t.concepts + t.count;
  const generated::Concept* it =
      std::lower_bound(t.concepts, end, code, [](const generated::Concept& c, std::string_view k) { return c.code < k; });
  return (it != end && it->code == code) ? it : nullptr;
}
}  // namespace

bool contains(std::string_view tableId, std::string_view code) {
  const CodeTable* t = table(tableId);
  return t && findConcept(*t, code);
}

std::string_view display(std::string_view tableId, std::string_view code) {
  const CodeTable* t = table(tableId);
  if (!t) return {};
  const generated::Concept* c = findConcept(*t, code);
  return c ? c->display : std::string_view{};
}

std::optional<std::string_view> translate(std::string_view mapName, std::string_view v2Code) {
  for (std::size_t i = 0; i < generated::kConceptMapCount; ++i) {
    const generated::ConceptMapTable& m = generated::kConceptMaps[i];
    if (m.name != mapName) continue;
    const generated::MapPair* end = m.pairs + m.count;
    const generated::MapPair* it =
        std::lower_bound(m.pairs, end, v2Code, [](const generated::MapPair& p, std::string_view k) { return p.source < k; });
    if (it != end && it->source == v2Code) return it->target;
    return std::nullopt;
  }
  return std::nullopt;
}

std::optional<std::string> codingSystemUri(std::string_view name) {
  // Table 0396 names with a system URI defined by FHIR (terminologies page / sid registry).
  static const std::pair<std::string_view, std::string_view> kKnown[] = {
      {"LN", "http://loinc.org"},
      {"SCT", "http://snomed.info/sct"},
      {"SNOMED", "http://snomed.info/sct"},
      {"I10", "http://hl7.org/fhir/sid/icd-10"},
      {"I10C", "http://hl7.org/fhir/sid/icd-10-cm"},
      {"I10P", "http://www.cms.gov/Medicare/Coding/ICD10"},
      {"I9C", "http://hl7.org/fhir/sid/icd-9-cm"},
      {"C4", "http://www.ama-assn.org/go/cpt"},
      {"CPT", "http://www.ama-assn.org/go/cpt"},
      {"RXNORM", "http://www.nlm.nih.gov/research/umls/rxnorm"},
      {"NDC", "http://hl7.org/fhir/sid/ndc"},
      {"CVX", "http://hl7.org/fhir/sid/cvx"},
      {"UCUM", "http://unitsofmeasure.org"},
      {"ISO639", "urn:ietf:bcp:47"},
      {"CDCREC", "urn:oid:2.16.840.1.113883.6.238"},
      {"ISO3166", "urn:iso:std:iso:3166"},
      {"ISO4217", "urn:iso:std:iso:4217"},
      {"NUCCPT", "http://nucc.org/provider-taxonomy"},
  };
  for (const auto& [n, uri] : kKnown) {
    if (n == name) return std::string(uri);
  }
  // HL7nnnn: the v2 table nnnn (HL7 and user-defined tables alike).
  if (name.size() == 7 && name.substr(0, 3) == "HL7" &&
      std::all_of(name.begin() + 3, name.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    std::string_view known = systemOf(name.substr(3));
    if (!known.empty()) return std::string(known);
    return "http://terminology.hl7.org/CodeSystem/v2-" + std::string(name.substr(3));
  }
  return std::nullopt;
}

}  // namespace hearth::adapters::tables
