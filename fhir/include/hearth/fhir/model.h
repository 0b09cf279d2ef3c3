#pragma once
// Model: the FHIR R4 (4.0.1) definitions Hearth needs at run time, generated from the official
// StructureDefinitions and SearchParameters by tools/gen_model.py and compiled into the binary
// (fhir/generated/). Loaded once, immutable afterwards, safe to share between threads.
#include <string>
#include <string_view>
#include <vector>

namespace hearth::fhir {

struct SearchParamDef {
  std::string code;        // e.g. "birthdate"
  std::string type;        // number|date|string|token|reference|composite|quantity|uri|special
  std::string expression;  // FHIRPath as published (may cover several bases, joined with '|')
  std::vector<std::string> targets;  // reference targets (reference params only)
  std::string url;         // canonical URL of the SearchParameter
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

  const ModelImpl& impl() const { return *impl_; }
  ~Model();

 private:
  Model();
  ModelImpl* impl_;
};

}  // namespace hearth::fhir
