// Model / ModelImpl: parses the generated R4 model text (record format: tools/gen_model.py) into
// types, nodes, elements, value sets and search parameters, and builds the member table that the
// validator (and any format converter) resolves JSON member names with.
#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "model_impl.h"

namespace hearth::fhir {

namespace generated {
extern const std::string_view kR4ModelChunks[];
extern const std::size_t kR4ModelChunkCount;
}  // namespace generated

namespace {

void splitOn(std::string_view s, char sep, std::vector<std::string_view>& out) {
  out.clear();
  if (s.empty()) return;
  size_t start = 0;
  while (true) {
    size_t p = s.find(sep, start);
    if (p == std::string_view::npos) {
      out.push_back(s.substr(start));
      return;
    }
    out.push_back(s.substr(start, p - start));
    start = p + 1;
  }
}

[[noreturn]] void corrupt(const char* what) {
  throw std::runtime_error(std::string("generated R4 model data is corrupt: ") + what);
}

uint32_t parseCount(std::string_view s) {
  if (s == "*") return ElementDef::kUnbounded;
  if (s.empty() || s.size() > 9) corrupt("bad cardinality");
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') corrupt("bad cardinality");
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  return v;
}

TypeKind primitiveKind(std::string_view name) {
  static const std::pair<std::string_view, TypeKind> kPrimitives[] = {
      {"boolean", TypeKind::Boolean},           {"integer", TypeKind::Integer},
      {"unsignedInt", TypeKind::UnsignedInt},   {"positiveInt", TypeKind::PositiveInt},
      {"decimal", TypeKind::Decimal},           {"string", TypeKind::String},
      {"markdown", TypeKind::Markdown},         {"code", TypeKind::Code},
      {"id", TypeKind::Id},                     {"uri", TypeKind::Uri},
      {"url", TypeKind::Url},                   {"canonical", TypeKind::Canonical},
      {"oid", TypeKind::Oid},                   {"uuid", TypeKind::Uuid},
      {"base64Binary", TypeKind::Base64Binary}, {"date", TypeKind::Date},
      {"dateTime", TypeKind::DateTime},         {"instant", TypeKind::Instant},
      {"time", TypeKind::Time},                 {"xhtml", TypeKind::Xhtml},
  };
  for (const auto& [n, k] : kPrimitives) {
    if (n == name) return k;
  }
  corrupt("unknown primitive type");
}

struct ParsedSearchParam {
  std::string_view bases;
  SearchParamDef def;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

ModelImpl::ModelImpl() {
  std::vector<std::string_view> fields;
  std::vector<std::string_view> parts;
  std::vector<std::string_view> elementTypeTokens;  // per element: the raw type list
  std::vector<ParsedSearchParam> params;
  std::unordered_map<std::string_view, int32_t> nodeIndex;  // keys: views into the static data

  for (size_t c = 0; c < generated::kR4ModelChunkCount; ++c) {
    const std::string_view chunk = generated::kR4ModelChunks[c];
    size_t pos = 0;
    while (pos < chunk.size()) {
      size_t nl = chunk.find('\n', pos);
      if (nl == std::string_view::npos) nl = chunk.size();
      const std::string_view line = chunk.substr(pos, nl - pos);
      pos = nl + 1;
      if (line.empty()) continue;
      splitOn(line, '\t', fields);
      const std::vector<std::string_view>& f = fields;
      switch (line[0]) {
        case 'H':
          break;
        case 'V': {
          if (f.size() != 4) corrupt("V record");
          ValueSetImpl& vs = valueSets_.emplace_back();
          vs.url = std::string(f[2]);
          vs.enumerable = f[3] == "1";
          break;
        }
        case 'C': {
          if (valueSets_.empty() || f.size() < 3) corrupt("C record");
          ValueSetImpl& vs = valueSets_.back();
          auto& codes = vs.bySystem[f[1]];
          for (size_t i = 2; i < f.size(); ++i) {
            codes.insert(f[i]);
            if (vs.all.insert(f[i]).second) vs.ordered.push_back(f[i]);
          }
          break;
        }
        case 'T': {
          if (f.size() != 5) corrupt("T record");
          TypeInfo& t = types_.emplace_back();
          t.name = std::string(f[1]);
          t.base = std::string(f[3]);
          t.isResource = f[2] == "resource";
          t.isAbstract = f[4] == "1";
          if (f[2] == "primitive") {
            t.kind = primitiveKind(f[1]);
          } else {
            t.kind = t.isResource ? TypeKind::Resource : TypeKind::Complex;
          }
          break;
        }
        case 'E': {
          if (f.size() != 8) corrupt("E record");
          const std::string_view path = f[1];
          const size_t dot = path.rfind('.');
          if (dot == std::string_view::npos) corrupt("element path");
          const std::string_view parent = path.substr(0, dot);
          auto [it, added] = nodeIndex.emplace(parent, static_cast<int32_t>(nodes_.size()));
          if (added) nodes_.emplace_back().path = std::string(parent);
          NodeImpl& node = nodes_[static_cast<size_t>(it->second)];

          ElementImpl& e = elements_.emplace_back();
          const std::string_view name = path.substr(dot + 1);
          e.def.path = std::string(path);
          e.def.isChoice = name.size() > 3 && name.substr(name.size() - 3) == "[x]";
          e.def.name = std::string(e.def.isChoice ? name.substr(0, name.size() - 3) : name);
          e.def.min = parseCount(f[2]);
          e.def.max = parseCount(f[3]);
          e.def.isSummary = f[4].find('S') != std::string_view::npos;
          e.def.isModifier = f[4].find('M') != std::string_view::npos;
          e.attribute = f[4].find('A') != std::string_view::npos;
          e.valueSet = f[6].empty() ? -1 : static_cast<int32_t>(parseCount(f[6]));
          e.def.contentReference = std::string(f[7]);
          e.node = static_cast<uint32_t>(it->second);
          e.local = static_cast<uint16_t>(node.elements.size());
          if (e.def.min > 0) node.required.push_back(e.local);
          node.elements.push_back(static_cast<uint32_t>(elements_.size() - 1));
          elementTypeTokens.push_back(f[5]);
          break;
        }
        case 'P': {
          if (f.size() != 8) corrupt("P record");
          ParsedSearchParam& ps = params.emplace_back();
          ps.bases = f[1];
          ps.def.code = std::string(f[2]);
          ps.def.type = std::string(f[3]);
          ps.def.url = std::string(f[4]);
          ps.def.expression = std::string(f[5]);
          splitOn(f[6], ',', parts);
          for (std::string_view t : parts) ps.def.targets.emplace_back(t);
          splitOn(f[7], ';', parts);
          for (std::string_view comp : parts) {
            const size_t sp = comp.find(' ');
            if (sp == std::string_view::npos) corrupt("search parameter component");
            ps.def.components.emplace_back(std::string(comp.substr(0, sp)), std::string(comp.substr(sp + 1)));
          }
          break;
        }
        default:
          corrupt("unknown record");
      }
    }
  }

  // Types get their nodes (a type without elements of its own gets an empty one).
  for (size_t i = 0; i < types_.size(); ++i) {
    TypeInfo& t = types_[i];
    if (isPrimitiveKind(t.kind)) continue;
    auto it = nodeIndex.find(t.name);
    if (it == nodeIndex.end()) {
      nodes_.emplace_back().path = t.name;
      t.node = static_cast<int32_t>(nodes_.size() - 1);
    } else {
      t.node = it->second;
    }
    nodes_[static_cast<size_t>(t.node)].type = static_cast<int32_t>(i);
  }

  // Indexes keyed by views into the (now stable) owned strings.
  for (size_t i = 0; i < types_.size(); ++i) typeByName_.emplace(types_[i].name, static_cast<int32_t>(i));
  for (size_t i = 0; i < nodes_.size(); ++i) nodeByPath_.emplace(nodes_[i].path, static_cast<int32_t>(i));
  for (size_t i = 0; i < elements_.size(); ++i) {
    elementByPath_.emplace(elements_[i].def.path, static_cast<int32_t>(i));
  }
  for (const NodeImpl& n : nodes_) maxNodeElements_ = std::max(maxNodeElements_, n.elements.size());

  resolveElementTypes(elementTypeTokens);
  buildMemberTable();

  // Resource types and their search parameters (Resource / DomainResource ones apply to all).
  for (const TypeInfo& t : types_) {
    if (t.isResource && !t.isAbstract) resourceTypes_.push_back(t.name);
  }
  std::sort(resourceTypes_.begin(), resourceTypes_.end());
  for (const std::string& rt : resourceTypes_) searchParams_[rt];
  for (ParsedSearchParam& ps : params) {
    splitOn(ps.bases, ',', parts);
    for (std::string_view base : parts) {
      if (base == "Resource" || base == "DomainResource") {
        for (const std::string& rt : resourceTypes_) {
          if (derivesFrom(rt, base)) searchParams_[rt].push_back(ps.def);
        }
      } else if (auto it = searchParams_.find(std::string(base)); it != searchParams_.end()) {
        it->second.push_back(ps.def);
      }
    }
  }
}

void ModelImpl::resolveElementTypes(const std::vector<std::string_view>& tokens) {
  std::vector<std::string_view> parts;
  std::vector<std::string_view> targets;
  for (size_t i = 0; i < elements_.size(); ++i) {
    ElementImpl& e = elements_[i];
    splitOn(tokens[i], ',', parts);
    for (std::string_view tok : parts) {
      ElementType et;
      const size_t paren = tok.find('(');
      if (paren != std::string_view::npos) {
        if (tok.back() != ')') corrupt("type token");
        splitOn(tok.substr(paren + 1, tok.size() - paren - 2), '|', targets);
        et.targets = targets;
        tok = tok.substr(0, paren);
      }
      if (tok == "SimpleQuantity") {
        et.simpleQuantity = true;
        tok = "Quantity";
      }
      et.type = typeIndex(tok);
      if (et.type < 0) corrupt("unknown element type");
      const TypeInfo& t = types_[static_cast<size_t>(et.type)];
      et.name = t.name;
      et.kind = t.kind;
      if (tok == "BackboneElement" || tok == "Element") {
        et.node = nodeByPath(e.def.path);  // an inline structure: its children follow its path
        if (et.node < 0) et.node = t.node;  // (no children of its own: just id / extension)
      } else if (!isPrimitiveKind(t.kind)) {
        et.node = t.node;
      }
      e.types.push_back(std::move(et));
    }
  }
  // contentReference: the element repeats the structure of the referenced one.
  for (ElementImpl& e : elements_) {
    if (e.def.contentReference.empty()) continue;
    const int32_t ref = elementByPath(e.def.contentReference);
    const int32_t refNode = nodeByPath(e.def.contentReference);
    if (ref < 0 || refNode < 0) corrupt("contentReference target");
    e.types = elements_[static_cast<size_t>(ref)].types;
    for (ElementType& et : e.types) et.node = refNode;
  }
  // Public view of the types, JSON suffixes of choice types, reference targets.
  for (ElementImpl& e : elements_) {
    for (ElementType& et : e.types) {
      e.def.types.emplace_back(et.name);
      if (e.def.isChoice) {
        et.jsonSuffix = std::string(et.name);
        et.jsonSuffix[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(et.jsonSuffix[0])));
      }
      et.anyTarget = et.targets.empty();
      for (std::string_view tg : et.targets) {
        if (tg == "Resource" || tg == "DomainResource") et.anyTarget = true;
        if (std::find(e.def.targets.begin(), e.def.targets.end(), tg) == e.def.targets.end()) {
          e.def.targets.emplace_back(tg);
        }
      }
    }
    if (e.valueSet >= 0) {
      if (static_cast<size_t>(e.valueSet) >= valueSets_.size()) corrupt("value set index");
      e.def.requiredValueSet = valueSets_[static_cast<size_t>(e.valueSet)].url;
    }
  }
}

void ModelImpl::addMember(uint32_t node, std::string name, MemberRef ref) {
  pendingMembers_.push_back({node, {std::move(name), ref}});
}

void ModelImpl::buildMemberTable() {
  for (size_t i = 0; i < elements_.size(); ++i) {
    const ElementImpl& e = elements_[i];
    MemberRef ref;
    ref.element = static_cast<uint32_t>(i);
    ref.local = e.local;
    if (e.def.isChoice) {
      for (size_t t = 0; t < e.types.size(); ++t) {
        ref.typeIndex = static_cast<uint8_t>(t);
        ref.underscore = false;
        addMember(e.node, e.def.name + e.types[t].jsonSuffix, ref);
        if (isPrimitiveKind(e.types[t].kind) && e.types[t].kind != TypeKind::Xhtml && !e.attribute) {
          ref.underscore = true;
          addMember(e.node, "_" + e.def.name + e.types[t].jsonSuffix, ref);
        }
      }
    } else {
      addMember(e.node, e.def.name, ref);
      if (e.types.size() == 1 && isPrimitiveKind(e.types[0].kind) && e.types[0].kind != TypeKind::Xhtml &&
          !e.attribute) {
        ref.underscore = true;
        addMember(e.node, "_" + e.def.name, ref);
      }
    }
  }
  size_t total = 0;
  for (const auto& m : pendingMembers_) total += m.second.first.size();
  memberNames_.reserve(total);
  size_t capacity = 16;
  while (capacity < pendingMembers_.size() * 2) capacity *= 2;
  table_.assign(capacity, Slot{});
  tableMask_ = capacity - 1;
  for (const auto& [node, named] : pendingMembers_) {
    const std::string& name = named.first;
    const char* stored = memberNames_.data() + memberNames_.size();
    memberNames_.append(name);  // never reallocates: reserved above
    uint64_t h = hashKey(node, name) & tableMask_;
    while (table_[h].name != nullptr) {
      if (table_[h].node == node && std::string_view(table_[h].name, table_[h].nameLen) == name) {
        corrupt("duplicate JSON member name");
      }
      h = (h + 1) & tableMask_;
    }
    table_[h] = Slot{stored, static_cast<uint32_t>(name.size()), node, named.second};
  }
  pendingMembers_.clear();
  pendingMembers_.shrink_to_fit();
}

// ---------------------------------------------------------------------------------------------
// Lookups
// ---------------------------------------------------------------------------------------------

uint64_t ModelImpl::hashKey(uint32_t node, std::string_view name) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the name, then mixed with the node
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ull;
  }
  h ^= (static_cast<uint64_t>(node) + 0x9e3779b97f4a7c15ull) * 0xbf58476d1ce4e5b9ull;
  h ^= h >> 29;
  return h;
}

const MemberRef* ModelImpl::member(uint32_t node, std::string_view name) const {
  uint64_t h = hashKey(node, name) & tableMask_;
  while (true) {
    const Slot& s = table_[h];
    if (s.name == nullptr) return nullptr;
    if (s.node == node && s.nameLen == name.size() && std::char_traits<char>::compare(s.name, name.data(), name.size()) == 0) {
      return &s.ref;
    }
    h = (h + 1) & tableMask_;
  }
}

int32_t ModelImpl::typeIndex(std::string_view name) const {
  auto it = typeByName_.find(name);
  return it == typeByName_.end() ? -1 : it->second;
}

bool ModelImpl::derivesFrom(std::string_view type, std::string_view base) const {
  for (int guard = 0; guard < 16; ++guard) {
    if (type == base) return true;
    const int32_t t = typeIndex(type);
    if (t < 0) return false;
    type = types_[static_cast<size_t>(t)].base;
    if (type.empty()) return false;
  }
  return false;
}

int32_t ModelImpl::resourceNode(std::string_view name) const {
  const int32_t t = typeIndex(name);
  if (t < 0) return -1;
  const TypeInfo& info = types_[static_cast<size_t>(t)];
  return info.isResource && !info.isAbstract ? info.node : -1;
}

int32_t ModelImpl::nodeByPath(std::string_view path) const {
  auto it = nodeByPath_.find(path);
  return it == nodeByPath_.end() ? -1 : it->second;
}

int32_t ModelImpl::elementByPath(std::string_view path) const {
  auto it = elementByPath_.find(path);
  return it == elementByPath_.end() ? -1 : it->second;
}

const std::vector<SearchParamDef>& ModelImpl::searchParams(std::string_view resourceType) const {
  auto it = searchParams_.find(std::string(resourceType));
  return it == searchParams_.end() ? noParams_ : it->second;
}

const SearchParamDef* ModelImpl::searchParam(std::string_view resourceType, std::string_view code) const {
  for (const SearchParamDef& p : searchParams(resourceType)) {
    if (p.code == code) return &p;
  }
  return nullptr;
}

std::vector<const ElementDef*> ModelImpl::children(std::string_view path) const {
  std::vector<const ElementDef*> out;
  int32_t node = nodeByPath(path);
  if (node < 0) {
    // A contentReference element (Questionnaire.item.item) or a typed element: its value's node.
    const int32_t e = elementByPath(path);
    if (e < 0) return out;
    const ElementImpl& el = elements_[static_cast<size_t>(e)];
    if (el.types.size() != 1) return out;
    node = el.types[0].node;
    if (node < 0) return out;
  }
  for (uint32_t e : nodes_[static_cast<size_t>(node)].elements) out.push_back(&elements_[e].def);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------

Model::Model() : impl_(new ModelImpl()) {}
Model::~Model() { delete impl_; }

const Model& Model::r4() {
  static const Model model;  // thread-safe initialisation (C++11 magic static)
  return model;
}

const std::vector<std::string>& Model::resourceTypes() const { return impl_->resourceTypes(); }

bool Model::isResourceType(std::string_view name) const { return impl_->resourceNode(name) >= 0; }

const std::vector<SearchParamDef>& Model::searchParams(std::string_view resourceType) const {
  return impl_->searchParams(resourceType);
}

const SearchParamDef* Model::searchParam(std::string_view resourceType, std::string_view code) const {
  return impl_->searchParam(resourceType, code);
}

const ElementDef* Model::element(std::string_view path) const {
  const int32_t e = impl_->elementByPath(path);
  return e < 0 ? nullptr : &impl_->element(static_cast<uint32_t>(e)).def;
}

std::vector<const ElementDef*> Model::children(std::string_view path) const { return impl_->children(path); }

bool Model::isPrimitiveType(std::string_view name) const {
  const int32_t t = impl_->typeIndex(name);
  return t >= 0 && isPrimitiveKind(impl_->type(static_cast<uint32_t>(t)).kind);
}

bool Model::isDataType(std::string_view name) const {
  const int32_t t = impl_->typeIndex(name);
  if (t < 0) return false;
  const TypeInfo& info = impl_->type(static_cast<uint32_t>(t));
  return info.kind == TypeKind::Complex && !info.isAbstract && name != "BackboneElement" && name != "Element";
}

}  // namespace hearth::fhir
