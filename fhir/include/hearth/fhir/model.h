#pragma once
// Model: the FHIR R4 (4.0.1) definitions Hearth needs at run time, generated from the official
// StructureDefinitions and SearchParameters by tools/gen_model.py and compiled into the binary
// (fhir/generated/). Loaded once, immutable afterwards, safe to share between threads.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth::fhir {

struct SearchParamDef {
  std::string code;        // e.g. "birthdate"
  std::string type;        // number|date|string|token|reference|composite|quantity|uri|special
  std::string expression;  // FHIRPath as published (may cover several bases, joined with '|')
  std::vector<std::string> targets;  // reference targets (reference params only)
  std::string url;         // canonical URL of the SearchParameter
  // Composite parameters: their components as (definition URL, FHIRPath relative to the match).
  std::vector<std::pair<std::string, std::string>> components;
};

// One element of a resource type, data type or backbone element, as the R4 definitions state it.
struct ElementDef {
  static constexpr uint32_t kUnbounded = UINT32_MAX;
  std::string path;        // "Patient.birthDate", "Observation.value[x]", "Patient.contact.name"
  std::string name;        // JSON name without "[x]": "birthDate", "value" (sent as valueQuantity ...)
  uint32_t min = 0;
  uint32_t max = 1;        // kUnbounded for "*"
  bool isSummary = false;  // part of the _summary=true view
  bool isModifier = false;
  bool isChoice = false;   // value[x]: one of several types, named by suffix in JSON
  std::vector<std::string> types;    // type codes: "string", "Quantity", "Reference", "BackboneElement"
  std::vector<std::string> targets;  // Reference / canonical target types ("Patient", "Group"), if any
  std::string contentReference;      // "Questionnaire.item" for Questionnaire.item.item, else empty
  std::string requiredValueSet;      // canonical URL of a required binding, else empty
  bool isArray() const { return max > 1; }
};

class ModelImpl;

class Model {
 public:
  // The R4 model, built on first use from the compiled-in data (thread-safe static init).
  static const Model& r4();

  // All 146 concrete R4 resource type names (not Resource / DomainResource), sorted.
  const std::vector<std::string>& resourceTypes() const;
  bool isResourceType(std::string_view name) const;
  // Search parameters that apply to a resource type, including those defined on Resource and
  // DomainResource (_id, _lastUpdated, _tag, _profile, _security, _source, _text, _content ...).
  const std::vector<SearchParamDef>& searchParams(std::string_view resourceType) const;
  // One search parameter of a resource type by code; nullptr if there is none.
  const SearchParamDef* searchParam(std::string_view resourceType, std::string_view code) const;

  // An element by its definition path ("Patient.birthDate", "Observation.value[x]"); nullptr if
  // unknown. Paths below a complex data type start with that type ("HumanName.given").
  const ElementDef* element(std::string_view path) const;
  // The elements directly below a resource type, data type or backbone element path, in definition
  // order. An element path of a single complex type yields that type's elements ("Patient.name":
  // those of HumanName; "Questionnaire.item.item": those of "Questionnaire.item"). Empty for
  // unknown paths, primitives and choice elements.
  std::vector<const ElementDef*> children(std::string_view path) const;
  // True for the 20 R4 primitive types ("string", "date", "positiveInt" ...).
  bool isPrimitiveType(std::string_view name) const;
  // True for complex data types ("HumanName", "Quantity", "Dosage" ...), not resources.
  bool isDataType(std::string_view name) const;

  // The run-time structures behind this API (fhir/src/model_impl.h), for code inside hearth_fhir
  // (validator, format converters) that resolves JSON member names itself.
  const ModelImpl& impl() const { return *impl_; }
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

 private:
  Model();
  ModelImpl* impl_;
};

}  // namespace hearth::fhir
