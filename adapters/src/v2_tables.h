#pragma once
// Code tables compiled into the adapters (generated/v2_tables.cpp, from tools/gen_v2_tables.py):
// v2 tables and v3 code systems (code -> display, canonical system URL) and the FHIR <-> v2
// ConceptMaps inverted to v2 -> FHIR. Plus the coding-system names of CWE-3 (HL7 table 0396) this
// mapping knows a FHIR system URI for.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace hearth::adapters {

namespace generated {
struct Concept {
  std::string_view code;
  std::string_view display;
};
struct CodeTable {
  std::string_view id;      // "0001" (v2 table number) or "v3-ObservationInterpretation"
  std::string_view system;  // canonical URL of the code system
  const Concept* concepts;  // sorted by code (byte order)
  std::size_t count;
};
struct MapPair {
  std::string_view source;  // v2 code
  std::string_view target;  // FHIR code
};
struct ConceptMapTable {
  std::string_view name;  // "gender", "name-use", "address-use", "contact-point-use", "contact-point-system"
  const MapPair* pairs;   // sorted by source
  std::size_t count;
};
extern const CodeTable kCodeTables[];
extern const std::size_t kCodeTableCount;
extern const ConceptMapTable kConceptMaps[];
extern const std::size_t kConceptMapCount;
}  // namespace generated

namespace tables {

// A table by id ("0001", "v3-ActCode"); nullptr when not compiled in.
const generated::CodeTable* table(std::string_view id);
// Canonical system URL of a table ("http://terminology.hl7.org/CodeSystem/v2-0001"); "" if unknown.
std::string_view systemOf(std::string_view tableId);
// True when the table holds the code.
bool contains(std::string_view tableId, std::string_view code);
// Display of a code in a table; "" when absent.
std::string_view display(std::string_view tableId, std::string_view code);
// v2 code -> FHIR code through an inverted ConceptMap ("gender", "name-use", ...).
std::optional<std::string_view> translate(std::string_view mapName, std::string_view v2Code);

// FHIR system URI for a CWE-3 coding system name: "LN" -> http://loinc.org, "HL70078" ->
// http://terminology.hl7.org/CodeSystem/v2-0078, ...; nullopt for names this mapping does not
// know (local codes "L", "99zzz", unlisted names).
std::optional<std::string> codingSystemUri(std::string_view name);

}  // namespace tables
}  // namespace hearth::adapters
