#pragma once
// ModelImpl: the run-time form of the generated R4 model (fhir/generated/r4_model_data.cpp),
// private to hearth_fhir. Built once by Model::r4() and immutable afterwards, so every member
// function is safe to call from any thread without locking.
//
// Shape: every resource type, complex data type and inline backbone element is a *node* (a JSON
// object shape). A node owns *elements* (ElementDef plus resolved types). JSON member names are
// resolved per node through one flat hash table: `member(node, "valueQuantity")` gives the element
// (`value[x]`), which of its types was chosen (Quantity) and whether it was the `_name` form that
// carries a primitive's id / extensions. Lookups take string_views and allocate nothing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "hearth/fhir/model.h"

namespace hearth::fhir {

// The JSON-relevant kind of a type: how a value of it is written and checked.
enum class TypeKind : uint8_t {
  Complex,       // a complex data type or a backbone element: a JSON object
  Resource,      // "Resource" / "DomainResource" as an element type: any resource, by resourceType
  Boolean, Integer, UnsignedInt, PositiveInt, Decimal,                      // JSON bool / numbers
  String, Markdown, Code, Id, Uri, Url, Canonical, Oid, Uuid, Base64Binary,  // JSON strings
  Date, DateTime, Instant, Time, Xhtml,
};

inline bool isPrimitiveKind(TypeKind k) { return k != TypeKind::Complex && k != TypeKind::Resource; }

// A type known to the model (primitive, complex data type, or resource).
struct TypeInfo {
  std::string name;            // "string", "HumanName", "Patient"
  std::string base;            // base type name ("DomainResource", "Element", ...), empty for roots
  TypeKind kind = TypeKind::Complex;
  bool isResource = false;     // a resource type (possibly abstract)
  bool isAbstract = false;
  int32_t node = -1;           // its node (complex types and resources), else -1
};

// One allowed type of an element, resolved.
struct ElementType {
  std::string_view name;       // type code as in the definitions ("Quantity", "string", "BackboneElement")
  std::string jsonSuffix;      // choice elements: the suffix of the JSON name ("Quantity", "String")
  TypeKind kind = TypeKind::Complex;
  int32_t type = -1;           // index into ModelImpl::types()
  int32_t node = -1;           // node of the value's children (complex / backbone / contentReference)
  bool simpleQuantity = false; // Quantity constrained by the SimpleQuantity profile (no comparator)
  std::vector<std::string_view> targets;  // Reference / canonical target type names
  bool anyTarget = false;      // targets include "Resource" (or none were declared)
};

struct ElementImpl {
  ElementDef def;
  uint32_t node = 0;           // the owning node
  uint16_t local = 0;          // position within the owning node (0 .. elementCount-1)
  bool attribute = false;      // System.* type (Element.id, Extension.url, Resource.id): no `_name`
  int32_t valueSet = -1;       // required binding: index into valueSets(), else -1
  std::vector<ElementType> types;  // one entry; several for choice elements
};

struct NodeImpl {
  std::string path;            // "Patient", "HumanName", "Patient.contact"
  int32_t type = -1;           // the resource / data type this node is (roots only), else -1
  std::vector<uint32_t> elements;  // element indexes, in definition order
  std::vector<uint16_t> required;  // `local` positions of elements with min > 0
};

// A resolved JSON member name within a node.
struct MemberRef {
  uint32_t element = 0;
  uint16_t local = 0;          // the element's position within the node
  uint8_t typeIndex = 0;       // index into ElementImpl::types (the chosen choice type)
  bool underscore = false;     // the `_name` form (primitive id / extensions)
};

// A required value set, enumerated by the generator (or marked not enumerable).
struct ValueSetImpl {
  std::string url;
  bool enumerable = false;
  // Codes per code system, and the union of all codes (for `code` elements, which carry no system).
  std::unordered_map<std::string_view, std::unordered_set<std::string_view>> bySystem;
  std::unordered_set<std::string_view> all;
  std::vector<std::string_view> ordered;  // all codes, in definition order (for messages)
  bool contains(std::string_view code) const { return all.count(code) != 0; }
  // nullptr if the system is not one of the set's systems.
  const std::unordered_set<std::string_view>* codesOf(std::string_view system) const {
    auto it = bySystem.find(system);
    return it == bySystem.end() ? nullptr : &it->second;
  }
};

class ModelImpl {
 public:
  ModelImpl();  // parses the compiled-in data; throws std::runtime_error if it is corrupt

  // Nodes, elements and types.
  const NodeImpl& node(uint32_t i) const { return nodes_[i]; }
  const ElementImpl& element(uint32_t i) const { return elements_[i]; }
  const TypeInfo& type(uint32_t i) const { return types_[i]; }
  const std::vector<TypeInfo>& types() const { return types_; }
  size_t nodeCount() const { return nodes_.size(); }
  size_t elementCount() const { return elements_.size(); }
  size_t maxNodeElements() const { return maxNodeElements_; }

  // -1 if unknown.
  int32_t typeIndex(std::string_view name) const;
  // True if `type` is `base` or derives from it (e.g. Patient from DomainResource).
  bool derivesFrom(std::string_view type, std::string_view base) const;
  // Node of a concrete resource type, -1 if `name` is not one.
  int32_t resourceNode(std::string_view name) const;
  int32_t nodeByPath(std::string_view path) const;
  int32_t elementByPath(std::string_view path) const;

  // Resolves a JSON member name within a node; nullptr if the node has no such member.
  const MemberRef* member(uint32_t node, std::string_view jsonName) const;

  const ValueSetImpl& valueSet(uint32_t i) const { return valueSets_[i]; }
  size_t valueSetCount() const { return valueSets_.size(); }

  // Concrete resource types, sorted; search parameters per resource type.
  const std::vector<std::string>& resourceTypes() const { return resourceTypes_; }
  const std::vector<SearchParamDef>& searchParams(std::string_view resourceType) const;
  const SearchParamDef* searchParam(std::string_view resourceType, std::string_view code) const;

  // Elements directly below a node path (contentReference resolved), definition order.
  std::vector<const ElementDef*> children(std::string_view path) const;

 private:
  struct Slot {
    const char* name = nullptr;  // nullptr: empty slot
    uint32_t nameLen = 0;
    uint32_t node = 0;
    MemberRef ref;
  };
  static uint64_t hashKey(uint32_t node, std::string_view name);
  void resolveElementTypes(const std::vector<std::string_view>& typeTokens);
  void buildMemberTable();
  void addMember(uint32_t node, std::string name, MemberRef ref);

  std::vector<TypeInfo> types_;
  std::vector<NodeImpl> nodes_;
  std::vector<ElementImpl> elements_;
  std::vector<ValueSetImpl> valueSets_;
  std::vector<std::string> resourceTypes_;
  std::unordered_map<std::string_view, int32_t> typeByName_;
  std::unordered_map<std::string_view, int32_t> nodeByPath_;
  std::unordered_map<std::string_view, int32_t> elementByPath_;
  std::unordered_map<std::string, std::vector<SearchParamDef>> searchParams_;
  std::vector<SearchParamDef> noParams_;
  size_t maxNodeElements_ = 0;

  // Member names live in memberNames_ (reserved once, never reallocated after the table is built).
  std::vector<std::pair<uint32_t, std::pair<std::string, MemberRef>>> pendingMembers_;
  std::string memberNames_;
  std::vector<Slot> table_;
  uint64_t tableMask_ = 0;
};

}  // namespace hearth::fhir
