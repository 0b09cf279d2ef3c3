// The result side of search: _include / _revinclude, _summary / _elements, the Patient compartment
// and Patient/$everything (contracts in search_results.h).
//
// SQL here is written once for both dialects: '?' placeholders, `NOT c.deleted`, no casts needed
// (every bound value is compared with a TEXT column), constant LIMITs inlined as integers.
#include "search_results.h"

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "hearth/fhir/json.h"
#include "hearth/fhir/service.h"
#include "model_impl.h"

namespace hearth::fhir::searchimpl {

namespace {

// ============================================================================================
// A small JSON tree that keeps numbers as the text they arrived as (FHIR decimals keep their
// precision: 1.50 stays 1.50), and object members in order.
// ============================================================================================

struct JValue {
  enum class Kind : uint8_t { Null, False, True, Number, String, Object, Array };
  Kind kind = Kind::Null;
  std::string text;               // Number: raw text; String: the value
  std::vector<std::string> keys;  // Object: member names, parallel to items
  std::vector<JValue> items;      // Object: member values; Array: elements

  bool isObject() const { return kind == Kind::Object; }
  bool isArray() const { return kind == Kind::Array; }
  const JValue* get(std::string_view key) const {
    for (size_t i = 0; i < keys.size(); ++i)
      if (keys[i] == key) return &items[i];
    return nullptr;
  }
  JValue* get(std::string_view key) {
    return const_cast<JValue*>(static_cast<const JValue*>(this)->get(key));
  }
  static JValue string(std::string s) {
    JValue v;
    v.kind = Kind::String;
    v.text = std::move(s);
    return v;
  }
  static JValue object() {
    JValue v;
    v.kind = Kind::Object;
    return v;
  }
};

// SAX handler building a JValue tree (used with the iterative parser: no recursion while parsing).
class TreeBuilder {
 public:
  explicit TreeBuilder(JValue& root) : root_(root) {}
  bool Null() { return add(JValue{}); }
  bool Bool(bool b) {
    JValue v;
    v.kind = b ? JValue::Kind::True : JValue::Kind::False;
    return add(std::move(v));
  }
  bool Int(int) { return false; }  // numbers always arrive raw (kParseNumbersAsStringsFlag)
  bool Uint(unsigned) { return false; }
  bool Int64(int64_t) { return false; }
  bool Uint64(uint64_t) { return false; }
  bool Double(double) { return false; }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    JValue v;
    v.kind = JValue::Kind::Number;
    v.text.assign(s, n);
    return add(std::move(v));
  }
  bool String(const char* s, rapidjson::SizeType n, bool) { return add(JValue::string(std::string(s, n))); }
  bool StartObject() { return open(JValue::Kind::Object); }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    stack_.back()->keys.emplace_back(s, n);
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    stack_.pop_back();
    return true;
  }
  bool StartArray() { return open(JValue::Kind::Array); }
  bool EndArray(rapidjson::SizeType) {
    stack_.pop_back();
    return true;
  }

 private:
  JValue* place(JValue v) {
    if (stack_.empty()) {
      if (started_) return nullptr;  // a second root value
      started_ = true;
      root_ = std::move(v);
      return &root_;
    }
    JValue* parent = stack_.back();
    parent->items.push_back(std::move(v));
    return &parent->items.back();
  }
  bool add(JValue v) { return place(std::move(v)) != nullptr; }
  bool open(JValue::Kind k) {
    JValue v;
    v.kind = k;
    JValue* p = place(std::move(v));
    if (p == nullptr) return false;
    stack_.push_back(p);  // stays valid: a container only grows while it is on top of the stack
    return true;
  }

  JValue& root_;
  std::vector<JValue*> stack_;
  bool started_ = false;
};

JValue parseTree(std::string_view json) {
  JValue root;
  TreeBuilder b(root);
  rapidjson::Reader reader;
  rapidjson::MemoryStream ms(json.data(), json.size());
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag |
                              rapidjson::kParseNumbersAsStringsFlag;
  if (!reader.Parse<kFlags>(ms, b) || !root.isObject()) {
    throw FhirError(500, IssueType::Exception, "A stored resource could not be read");
  }
  return root;
}

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void writeTree(JsonWriter& w, const JValue& v) {
  switch (v.kind) {
    case JValue::Kind::Null: w.Null(); break;
    case JValue::Kind::False: w.Bool(false); break;
    case JValue::Kind::True: w.Bool(true); break;
    case JValue::Kind::Number:
      w.RawValue(v.text.data(), v.text.size(), rapidjson::kNumberType);
      break;
    case JValue::Kind::String:
      w.String(v.text.data(), static_cast<rapidjson::SizeType>(v.text.size()));
      break;
    case JValue::Kind::Object:
      w.StartObject();
      for (size_t i = 0; i < v.keys.size(); ++i) {
        w.Key(v.keys[i].data(), static_cast<rapidjson::SizeType>(v.keys[i].size()));
        writeTree(w, v.items[i]);
      }
      w.EndObject();
      break;
    case JValue::Kind::Array:
      w.StartArray();
      for (const JValue& e : v.items) writeTree(w, e);
      w.EndArray();
      break;
  }
}

std::string serialize(const JValue& v) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  writeTree(w, v);
  return std::string(buf.GetString(), buf.GetSize());
}

// ============================================================================================
// _summary / _elements
// ============================================================================================

constexpr std::string_view kSubsettedSystem = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

enum class SummaryMode { All, True, Text, Data };

SummaryMode parseSummaryMode(std::string_view s) {
  if (s.empty() || s == "false") return SummaryMode::All;
  if (s == "true") return SummaryMode::True;
  if (s == "text") return SummaryMode::Text;
  if (s == "data") return SummaryMode::Data;
  if (s == "count") {
    throw FhirError(400, IssueType::NotSupported, "_summary=count applies to searches only", "_summary");
  }
  throw FhirError(400, IssueType::Value,
                  "Invalid _summary value (expected true, text, data, count or false)", "_summary");
}

// Walks a resource and drops what the requested view leaves out; `removed` records whether
// anything was dropped (so the caller adds the SUBSETTED tag).
//   true   the elements marked isSummary, recursively into kept complex values (the data types'
//          own summary flags apply below), plus mandatory (min >= 1) and modifier elements: the
//          R4 definitions leave DomainResource.modifierExtension out of the summary, but a
//          reader that does not see a modifier would misread the rest. Extensions and primitives
//          (with their `_name` companions) are kept whole.
//   text   text, id, meta and the top-level mandatory elements.
//   data   everything but text.
//   _elements  the listed top-level elements (whole), plus id, meta and mandatory ones.
class Subsetter {
 public:
  Subsetter(const ModelImpl& m, SummaryMode mode, std::vector<std::string> elements)
      : m_(m), mode_(mode), elements_(std::move(elements)) {}
  bool removed = false;

  // Filters the members of a resource object (node: the resource type's node).
  void resource(uint32_t node, JValue& obj) {
    filterObject(obj, [&](const std::string& key, JValue& value) {
      if (key == "resourceType") return true;
      const MemberRef* ref = m_.member(node, key);
      if (ref == nullptr) return mode_ == SummaryMode::Data || mode_ == SummaryMode::All;  // unknown member
      const ElementImpl& el = m_.element(ref->element);
      const ElementDef& def = el.def;
      const bool always = def.name == "id" || def.name == "meta" || def.min >= 1;
      bool keep = true;
      switch (mode_) {
        case SummaryMode::All: break;
        case SummaryMode::Data: keep = def.name != "text"; break;
        case SummaryMode::Text: keep = always || def.name == "text"; break;
        case SummaryMode::True:
          keep = always || def.isSummary || def.isModifier;
          if (keep) summaryValue(el, *ref, value);
          break;
      }
      if (keep && !elements_.empty() && !always) keep = listed(def.name, key);
      return keep;
    });
  }

 private:
  // Keeps the members for which keep(key, value) is true; records a removal otherwise.
  template <class Keep>
  void filterObject(JValue& obj, Keep&& keep) {
    size_t out = 0;
    for (size_t i = 0; i < obj.keys.size(); ++i) {
      if (keep(obj.keys[i], obj.items[i])) {
        if (out != i) {
          obj.keys[out] = std::move(obj.keys[i]);
          obj.items[out] = std::move(obj.items[i]);
        }
        ++out;
      } else {
        removed = true;
      }
    }
    obj.keys.resize(out);
    obj.items.resize(out);
  }

  bool listed(std::string_view name, std::string_view key) const {
    if (!key.empty() && key[0] == '_') key.remove_prefix(1);  // a primitive's id / extensions
    for (const std::string& e : elements_)
      if (e == name || e == key) return true;
    return false;
  }

  // _summary=true below a kept element: complex values keep their summary (and mandatory)
  // members, recursively. Primitives, and extensions (whose value is their meaning), stay whole.
  void summaryValue(const ElementImpl& el, const MemberRef& ref, JValue& value) {
    if (ref.underscore || ref.typeIndex >= el.types.size()) return;
    const ElementType& t = el.types[ref.typeIndex];
    if (t.name == "Extension") return;
    if (t.kind == TypeKind::Resource) {
      forEachObject(value, [&](JValue& o) {
        const JValue* rt = o.get("resourceType");
        const int32_t n = rt && rt->kind == JValue::Kind::String ? m_.resourceNode(rt->text) : -1;
        if (n >= 0) summaryObject(static_cast<uint32_t>(n), o);
      });
      return;
    }
    if (t.kind != TypeKind::Complex || t.node < 0) return;
    const uint32_t node = static_cast<uint32_t>(t.node);
    forEachObject(value, [&](JValue& o) { summaryObject(node, o); });
    dropEmptyObjects(value);
  }

  void summaryObject(uint32_t node, JValue& obj) {
    filterObject(obj, [&](const std::string& key, JValue& value) {
      if (key == "resourceType") return true;
      const MemberRef* ref = m_.member(node, key);
      if (ref == nullptr) return false;
      const ElementImpl& el = m_.element(ref->element);
      if (!el.def.isSummary && !el.def.isModifier && el.def.min < 1) return false;
      summaryValue(el, *ref, value);
      return !(value.isObject() && value.keys.empty()) && !(value.isArray() && value.items.empty());
    });
  }

  template <class F>
  static void forEachObject(JValue& v, F&& f) {
    if (v.isObject()) {
      f(v);
    } else if (v.isArray()) {
      for (JValue& e : v.items)
        if (e.isObject()) f(e);
    }
  }

  // An array item left empty by filtering carries nothing: it goes.
  void dropEmptyObjects(JValue& v) {
    if (!v.isArray()) return;
    const size_t before = v.items.size();
    v.items.erase(std::remove_if(v.items.begin(), v.items.end(),
                                 [](const JValue& e) { return e.isObject() && e.keys.empty(); }),
                  v.items.end());
    if (v.items.size() != before) removed = true;
  }

  const ModelImpl& m_;
  SummaryMode mode_;
  std::vector<std::string> elements_;
};

// Adds the SUBSETTED tag to meta.tag (creating meta after id when it is missing).
void addSubsettedTag(JValue& resource) {
  JValue* meta = resource.get("meta");
  if (meta == nullptr || !meta->isObject()) {
    size_t pos = 0;
    for (size_t i = 0; i < resource.keys.size(); ++i)
      if (resource.keys[i] == "resourceType" || resource.keys[i] == "id") pos = i + 1;
    if (meta != nullptr) {  // not an object: cannot be stored data, but never crash on it
      *meta = JValue::object();
    } else {
      resource.keys.insert(resource.keys.begin() + static_cast<std::ptrdiff_t>(pos), "meta");
      resource.items.insert(resource.items.begin() + static_cast<std::ptrdiff_t>(pos), JValue::object());
      meta = &resource.items[pos];
    }
  }
  JValue* tags = meta->get("tag");
  if (tags == nullptr || !tags->isArray()) {
    if (tags == nullptr) {
      meta->keys.emplace_back("tag");
      meta->items.push_back(JValue{});
      tags = &meta->items.back();
    }
    tags->kind = JValue::Kind::Array;
    tags->items.clear();
  }
  for (const JValue& t : tags->items) {
    const JValue* sys = t.get("system");
    const JValue* code = t.get("code");
    if (sys && code && sys->text == kSubsettedSystem && code->text == "SUBSETTED") return;
  }
  JValue tag = JValue::object();
  tag.keys = {"system", "code", "display"};
  tag.items = {JValue::string(std::string(kSubsettedSystem)), JValue::string("SUBSETTED"),
               JValue::string("Resource encoded in summary mode")};
  tags->items.push_back(std::move(tag));
}

std::vector<std::string> splitList(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string_view::npos) end = s.size();
    out.emplace_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// ============================================================================================
// SQL plumbing
// ============================================================================================

std::vector<SqlRow> runQuery(ResourceStore& store, StoreTransaction* tx, const SqlQuery& q) {
  try {
    return tx != nullptr ? tx->query(q) : store.query(q);
  } catch (const StoreUnavailable& e) {
    throw FhirError(503, IssueType::Transient, "The database is unavailable").withInternalDetail(e.what());
  }
}

const std::string& textAt(const SqlRow& row, size_t i) {
  static const std::string empty;
  if (i < row.size())
    if (const auto* s = std::get_if<std::string>(&row[i])) return *s;
  return empty;
}

// "?, ?, ?" for n placeholders.
std::string placeholders(size_t n) {
  std::string s;
  s.reserve(n * 3);
  for (size_t i = 0; i < n; ++i) s += i == 0 ? "?" : ", ?";
  return s;
}

constexpr size_t kInBatch = 500;  // ids per IN list (well below either backend's parameter limit)

std::string key(std::string_view type, std::string_view id) {
  std::string k;
  k.reserve(type.size() + id.size() + 1);
  k += type;
  k += '/';
  k += id;
  return k;
}

// A resource by type and id, ordered by type then id (bytewise, as the C collation orders them).
struct ResourceKey {
  std::string type;
  std::string id;
  bool operator<(const ResourceKey& o) const { return type != o.type ? type < o.type : id < o.id; }
  bool operator==(const ResourceKey& o) const = default;
};

// The current content of `keys` (sorted, distinct), "type/id" -> JSON; deleted and unknown
// resources are absent. One statement per kInBatch keys: (type = ? AND id IN (...)) groups joined
// by OR, which both backends answer with primary-key lookups.
std::unordered_map<std::string, std::string> fetchContent(ResourceStore& store, StoreTransaction* tx,
                                                          const std::vector<ResourceKey>& keys) {
  std::unordered_map<std::string, std::string> out;
  size_t i = 0;
  while (i < keys.size()) {
    const size_t end = std::min(keys.size(), i + kInBatch);
    SqlQuery q;
    q.sql = "SELECT c.type, c.id, v.content FROM resource_current c JOIN resource_version v ON v.seq = c.seq"
            " WHERE NOT c.deleted AND (";
    bool firstGroup = true;
    while (i < end) {
      size_t j = i;
      while (j < end && keys[j].type == keys[i].type) ++j;
      q.sql += firstGroup ? "" : " OR ";
      firstGroup = false;
      q.sql += "(c.type = ? AND c.id IN (" + placeholders(j - i) + "))";
      q.params.emplace_back(keys[i].type);
      for (size_t k = i; k < j; ++k) q.params.emplace_back(keys[k].id);
      i = j;
    }
    q.sql += ")";
    for (SqlRow& row : runQuery(store, tx, q)) {
      if (row.size() < 3 || !std::holds_alternative<std::string>(row[2])) continue;
      out[key(textAt(row, 0), textAt(row, 1))] = std::move(std::get<std::string>(row[2]));
    }
  }
  return out;
}

// ============================================================================================
// Compartments
// ============================================================================================

struct CompartmentTable {
  std::unordered_map<std::string_view, std::vector<std::string>> params;  // type -> param codes
  std::vector<std::string> types;                                          // sorted
};

const CompartmentTable& patientCompartment() {
  static const CompartmentTable table = [] {
    CompartmentTable t;
    for (size_t i = 0; i < generated::kPatientCompartmentSize; ++i) {
      const generated::CompartmentMembership& row = generated::kPatientCompartment[i];
      // The codes whose rows are stored: a derived parameter (search_index.h) stands for the
      // rows it is made of, if they can name a Patient at all.
      std::vector<std::string> codes;
      if (*row.params != '\0') {
        for (std::string& code : splitList(row.params, ',')) {
          const DerivedParam* d = derivedParam(row.resourceType, code);
          if (d && !d->targetType.empty() && d->targetType != "Patient") continue;
          const std::vector<std::string> stored = d ? d->params : std::vector<std::string>{code};
          for (const std::string& c : stored) {
            if (std::find(codes.begin(), codes.end(), c) == codes.end()) codes.push_back(c);
          }
        }
      }
      t.params.emplace(row.resourceType, std::move(codes));
      t.types.emplace_back(row.resourceType);
    }
    std::sort(t.types.begin(), t.types.end());
    return t;
  }();
  return table;
}

}  // namespace

// ============================================================================================
// _include / _revinclude specs
// ============================================================================================

IncludeSpec parseIncludeSpec(const Model& model, std::string_view value) {
  const auto bad = [&](const std::string& why) -> FhirError {
    return FhirError(400, IssueType::Invalid, "Invalid _include/_revinclude value '" + std::string(value) + "': " + why);
  };
  IncludeSpec spec;
  value = trim(value);
  if (value == "*") {
    spec.sourceType = "*";
    spec.param = "*";
    return spec;
  }
  const std::vector<std::string> parts = splitList(value, ':');
  if (parts.size() < 2 || parts.size() > 3) throw bad("expected Type:parameter or Type:parameter:TargetType");
  spec.sourceType = parts[0];
  spec.param = parts[1];
  if (!model.isResourceType(spec.sourceType)) throw bad("unknown resource type '" + spec.sourceType + "'");
  if (spec.param == "*") {
    if (parts.size() == 3) throw bad("a target type cannot follow '*'");
    return spec;
  }
  const SearchParamDef* def = model.searchParam(spec.sourceType, spec.param);
  if (def == nullptr) throw bad("'" + spec.param + "' is not a search parameter of " + spec.sourceType);
  if (def->type != "reference") throw bad("'" + spec.param + "' is not a reference parameter");
  if (parts.size() == 3) {
    spec.targetType = parts[2];
    if (!model.isResourceType(spec.targetType)) throw bad("unknown resource type '" + spec.targetType + "'");
    const bool anyTarget = def->targets.empty() ||
                           std::find(def->targets.begin(), def->targets.end(), "Resource") != def->targets.end();
    if (!anyTarget && std::find(def->targets.begin(), def->targets.end(), spec.targetType) == def->targets.end()) {
      throw bad(spec.targetType + " is not a target of " + spec.sourceType + ":" + spec.param);
    }
  }
  return spec;
}

IncludeSpec parseIncludeSpec(const Model& model, std::string_view name, std::string_view value) {
  std::string_view base = name;
  std::string_view modifier;
  if (const size_t colon = name.find(':'); colon != std::string_view::npos) {
    base = name.substr(0, colon);
    modifier = name.substr(colon + 1);
  }
  if (base != "_include" && base != "_revinclude") {
    throw FhirError(400, IssueType::Invalid, "Not an _include or _revinclude parameter: " + std::string(name));
  }
  if (!modifier.empty() && modifier != "iterate" && modifier != "recurse") {
    throw FhirError(400, IssueType::Invalid,
                    "Unknown modifier '" + std::string(modifier) + "' on " + std::string(base) +
                        " (expected :iterate)",
                    std::string(name));
  }
  IncludeSpec spec = parseIncludeSpec(model, value);
  spec.iterate = !modifier.empty();
  return spec;
}

// ============================================================================================
// resolveIncludes
// ============================================================================================

namespace {

// Resources grouped by type: type -> distinct ids, sorted.
std::map<std::string, std::vector<std::string>> byType(const std::vector<ResourceKey>& rs) {
  std::map<std::string, std::vector<std::string>> out;
  for (const ResourceKey& r : rs) out[r.type].push_back(r.id);
  for (auto& [type, ids] : out) {
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  }
  return out;
}

// Calls fn(batch) for the ids in slices of at most kInBatch.
template <class Fn>
void inBatches(const std::vector<std::string>& ids, Fn&& fn) {
  for (size_t start = 0; start < ids.size(); start += kInBatch) {
    const size_t end = std::min(ids.size(), start + kInBatch);
    fn(std::vector<std::string>(ids.begin() + static_cast<std::ptrdiff_t>(start),
                                ids.begin() + static_cast<std::ptrdiff_t>(end)));
  }
}

bool includeAccepts(const IncludeSpec& s, const std::string& sourceType, const std::string& param,
                    const std::string& targetType) {
  if (targetType.empty()) return false;  // a canonical or external reference: nothing to include
  return (s.sourceType == "*" || s.sourceType == sourceType) &&
         (s.param == "*" || rowOfParam(sourceType, s.param, param, targetType)) &&
         (s.targetType.empty() || s.targetType == targetType);
}

// State of one resolveIncludes call.
class IncludeResolver {
 public:
  IncludeResolver(ResourceStore& store, StoreTransaction* tx, size_t limit) : store_(store), tx_(tx), limit_(limit) {}

  void known(const std::string& type, const std::string& id) { seen_.insert(key(type, id)); }
  bool full() const { return found_.size() >= limit_; }
  std::vector<FetchedResource> take() { return std::move(found_); }

  // One round: the specs applied to `sources`; returns the keys of the resources it added.
  std::vector<ResourceKey> round(const std::vector<ResourceKey>& sources, const std::vector<const IncludeSpec*>& includes,
                                 const std::vector<const IncludeSpec*>& revincludes) {
    const auto groups = byType(sources);
    std::set<ResourceKey> candidates;
    // _include: one statement per source type (and IN batch) fetches every reference row of the
    // sources; the specs pick from them here. (Filtering on param in SQL would tempt a planner
    // without statistics into the (type, param, ...) index, which walks every row of that param.)
    for (const auto& [type, ids] : groups) {
      const bool wanted = std::any_of(includes.begin(), includes.end(), [&](const IncludeSpec* s) {
        return s->sourceType == "*" || s->sourceType == type;
      });
      if (!wanted) continue;
      inBatches(ids, [&](const std::vector<std::string>& batch) {
        SqlQuery q;
        q.sql = "SELECT r.param, r.target_type, r.target_id FROM search_reference r WHERE r.type = ? AND r.id IN (" +
                placeholders(batch.size()) + ")";
        q.params.emplace_back(type);
        for (const std::string& id : batch) q.params.emplace_back(id);
        for (const SqlRow& row : runQuery(store_, tx_, q)) {
          const std::string& param = textAt(row, 0);
          const std::string& targetType = textAt(row, 1);
          const std::string& targetId = textAt(row, 2);
          for (const IncludeSpec* s : includes) {
            if (includeAccepts(*s, type, param, targetType)) {
              if (seen_.count(key(targetType, targetId)) == 0) candidates.insert({targetType, targetId});
              break;
            }
          }
        }
      });
    }
    // _revinclude: one statement per spec and target type (and IN batch), on the
    // (type, param, target_type, target_id) or (target_type, target_id) index.
    for (const IncludeSpec* s : revincludes) {
      for (const auto& [type, ids] : groups) {
        if (!s->targetType.empty() && s->targetType != type) continue;
        inBatches(ids, [&](const std::vector<std::string>& batch) { revinclude(*s, type, batch, candidates); });
      }
    }
    // Contents, in (type, id) order, up to the limit; candidates that no longer exist drop out.
    std::vector<ResourceKey> wanted(candidates.begin(), candidates.end());
    std::vector<ResourceKey> added;
    size_t pos = 0;
    while (pos < wanted.size() && !full()) {
      // Fetch about as many as may still be added (most candidates exist), at least one batch.
      const size_t n = std::min(wanted.size() - pos, std::max(limit_ - found_.size(), kInBatch));
      std::vector<ResourceKey> slice(wanted.begin() + static_cast<std::ptrdiff_t>(pos),
                                     wanted.begin() + static_cast<std::ptrdiff_t>(pos + n));
      pos += n;
      auto content = fetchContent(store_, tx_, slice);
      for (ResourceKey& k : slice) {
        std::string kk = key(k.type, k.id);
        seen_.insert(kk);
        auto it = content.find(kk);
        if (it == content.end() || full()) continue;
        found_.push_back(FetchedResource{k.type, k.id, std::move(it->second)});
        added.push_back(std::move(k));
      }
    }
    return added;
  }

 private:
  // The sources that reference `batch` (ids of `type`) through the spec. A target with very many
  // referrers is read up to a LIMIT that covers the room left (plus rows that may repeat what is
  // known); if the LIMIT was hit before enough new resources turned up, it is read again with a
  // larger one.
  void revinclude(const IncludeSpec& s, const std::string& type, const std::vector<std::string>& batch,
                  std::set<ResourceKey>& candidates) {
    const size_t room = limit_ > found_.size() + candidates.size() ? limit_ - found_.size() - candidates.size() : 0;
    if (room == 0) return;
    size_t rowLimit = room + seen_.size() + candidates.size() + 64;
    while (true) {
      SqlQuery q;
      q.sql = "SELECT r.type, r.id FROM search_reference r WHERE r.target_type = ?";
      q.params.emplace_back(type);
      if (s.sourceType != "*") {
        q.sql += " AND r.type = ?";
        q.params.emplace_back(s.sourceType);
      }
      if (s.param != "*") {
        // A derived parameter (search_index.h) reads the rows it is made of; one restricted to
        // another target type than `type` has none here.
        const DerivedParam* d = derivedParam(s.sourceType, s.param);
        if (d && !d->targetType.empty() && d->targetType != type) return;
        const std::vector<std::string> own{s.param};
        const std::vector<std::string>& codes = d ? d->params : own;
        q.sql += " AND r.param IN (" + placeholders(codes.size()) + ")";
        for (const std::string& code : codes) q.params.emplace_back(code);
      }
      q.sql += " AND r.target_id IN (" + placeholders(batch.size()) + ") LIMIT " + std::to_string(rowLimit);
      for (const std::string& id : batch) q.params.emplace_back(id);
      const std::vector<SqlRow> rows = runQuery(store_, tx_, q);
      size_t fresh = 0;
      for (const SqlRow& row : rows) {
        ResourceKey k{textAt(row, 0), textAt(row, 1)};
        if (seen_.count(key(k.type, k.id)) == 0 && candidates.insert(std::move(k)).second) ++fresh;
      }
      if (rows.size() < rowLimit || fresh >= room) return;
      rowLimit *= 4;
    }
  }

  ResourceStore& store_;
  StoreTransaction* tx_;
  size_t limit_;
  std::unordered_set<std::string> seen_;  // "type/id" of the matches and of every candidate looked at
  std::vector<FetchedResource> found_;
};

}  // namespace

std::vector<FetchedResource> resolveIncludes(ResourceStore& store, StoreTransaction* tx, const Model&,
                                             const std::vector<FetchedResource>& matches,
                                             const std::vector<IncludeSpec>& includes,
                                             const std::vector<IncludeSpec>& revincludes, size_t limit) {
  if ((includes.empty() && revincludes.empty()) || matches.empty() || limit == 0) return {};
  IncludeResolver resolver(store, tx, limit);
  std::vector<ResourceKey> frontier;
  for (const FetchedResource& m : matches) {
    resolver.known(m.type, m.id);
    frontier.push_back({m.type, m.id});
  }
  // Round 0 applies every spec to the matches; later rounds apply the :iterate specs to what the
  // previous round added. A round only adds unseen resources, so this ends; the round cap bounds
  // pathological reference chains.
  constexpr int kMaxRounds = 32;
  for (int round = 0; round < kMaxRounds && !frontier.empty() && !resolver.full(); ++round) {
    std::vector<const IncludeSpec*> inc, rev;
    for (const IncludeSpec& s : includes)
      if (round == 0 || s.iterate) inc.push_back(&s);
    for (const IncludeSpec& s : revincludes)
      if (round == 0 || s.iterate) rev.push_back(&s);
    if (inc.empty() && rev.empty()) break;
    frontier = resolver.round(frontier, inc, rev);
  }
  return resolver.take();
}

// ============================================================================================
// applySummary
// ============================================================================================

std::string applySummary(const Model& model, std::string_view type, std::string_view resourceJson,
                         std::string_view summary, std::string_view elements) {
  const SummaryMode mode = parseSummaryMode(trim(summary));
  std::vector<std::string> listed;
  for (const std::string& e : splitList(elements, ',')) {
    std::string_view name = trim(e);
    // "Patient.name" names the same element as "name".
    if (name.size() > type.size() + 1 && name.substr(0, type.size()) == type && name[type.size()] == '.') {
      name.remove_prefix(type.size() + 1);
    }
    if (name.size() > 3 && name.substr(name.size() - 3) == "[x]") name.remove_suffix(3);
    if (!name.empty()) listed.emplace_back(name);
  }
  if (mode == SummaryMode::All && listed.empty()) return std::string(resourceJson);

  const ModelImpl& m = model.impl();
  const int32_t node = m.resourceNode(type);
  if (node < 0) throw FhirError(404, IssueType::NotSupported, "Unknown resource type: " + std::string(type));
  JValue resource = parseTree(resourceJson);
  Subsetter s(m, mode, std::move(listed));
  s.resource(static_cast<uint32_t>(node), resource);
  if (!s.removed) return std::string(resourceJson);
  addSubsettedTag(resource);
  return serialize(resource);
}

// ============================================================================================
// Compartments
// ============================================================================================

bool compartmentTypeSupported(std::string_view compartmentType) { return compartmentType == "Patient"; }

const std::vector<std::string>& compartmentParams(std::string_view compartmentType, std::string_view resourceType) {
  static const std::vector<std::string> none;
  if (!compartmentTypeSupported(compartmentType)) return none;
  const CompartmentTable& t = patientCompartment();
  auto it = t.params.find(resourceType);
  return it == t.params.end() ? none : it->second;
}

const std::vector<std::string>& compartmentResourceTypes(std::string_view compartmentType) {
  static const std::vector<std::string> none;
  if (!compartmentTypeSupported(compartmentType)) return none;
  return patientCompartment().types;
}

// ============================================================================================
// Patient/$everything
// ============================================================================================

namespace {

// The SQL condition "m (a search_reference row) links its resource into the patient compartment":
// (m.type, m.param) is one of the compartment's pairs, tested as one IN list of "type|param"
// constants (SQLite looks each row up in a temporary index of the list; the equivalent OR of one
// (type AND param IN ...) branch per type cost a tenth of an $everything request in string
// compares). Built once from the compiled-in table, whose names are plain identifiers
// ([A-Za-z] types, [a-z0-9-] codes: checked by the generator), so they can stand as literals.
const std::string& compartmentCondition() {
  static const std::string cond = [] {
    std::string list;
    const CompartmentTable& t = patientCompartment();
    for (const std::string& type : t.types) {
      for (const std::string& param : t.params.at(type)) {
        list += list.empty() ? "'" : ", '";
        list += type + "|" + param + "'";
      }
    }
    return list.empty() ? std::string("(1 = 0)") : "((m.type || '|' || m.param) IN (" + list + "))";
  }();
  return cond;
}

// One resource of the $everything set, before its content is fetched.
struct EverythingKey {
  std::string type;
  std::string id;
  bool match = true;  // in the compartment (or the patient): search.mode match; else include
  bool operator<(const EverythingKey& o) const { return type != o.type ? type < o.type : id < o.id; }
};

// ---- the opaque paging cursor: base64url("type/id") + "." + 16 hex digits of a checksum ----

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kB64[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kB64[(acc << (6 - bits)) & 63];
  return out;
}

bool unbase64url(std::string_view in, std::string& out) {
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const char* p = std::char_traits<char>::find(kB64, 64, c);
    if (p == nullptr) return false;
    acc = (acc << 6) | static_cast<uint32_t>(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return true;
}

std::string hex16(uint64_t v) {
  static const char* digits = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i) {
    s[static_cast<size_t>(i)] = digits[v & 15];
    v >>= 4;
  }
  return s;
}

constexpr std::string_view kCursorSalt = "hearth-everything-v1|";

std::string encodeCursor(const EverythingKey& k) {
  const std::string payload = key(k.type, k.id);
  return base64url(payload) + "." + hex16(fnv1a(std::string(kCursorSalt) + payload));
}

EverythingKey decodeCursor(const Model& model, std::string_view cursor) {
  const FhirError bad(400, IssueType::Invalid, "Invalid _cursor (use the links of the previous page)", "_cursor");
  const size_t dot = cursor.find('.');
  if (dot == std::string_view::npos || cursor.size() - dot - 1 != 16) throw bad;
  std::string payload;
  if (!unbase64url(cursor.substr(0, dot), payload)) throw bad;
  if (hex16(fnv1a(std::string(kCursorSalt) + payload)) != cursor.substr(dot + 1)) throw bad;
  const size_t slash = payload.find('/');
  if (slash == std::string::npos) throw bad;
  EverythingKey k{payload.substr(0, slash), payload.substr(slash + 1), true};
  if (!model.isResourceType(k.type) || !ResourceService::isValidId(k.id)) throw bad;
  return k;
}

// ---- query strings ----

void appendQueryEscaped(std::string& out, std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~' || c == ':' || c == ',') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
}

struct EverythingRequest {
  std::optional<int64_t> since;              // epoch micros
  std::optional<std::set<std::string>> types;  // _type
  int count = 0;
  std::optional<EverythingKey> after;        // _cursor
  SearchParams echo;                         // parameters the links repeat (without _cursor)
};

EverythingRequest parseEverythingParams(const Model& model, const SearchParams& params, int defaultCount,
                                        int maxCount) {
  EverythingRequest req;
  req.count = std::max(1, defaultCount);
  for (const auto& [name, value] : params) {
    if (name == "_since") {
      int64_t micros = 0;
      if (!parseInstant(value, micros)) {
        throw FhirError(400, IssueType::Value, "Invalid _since (expected a FHIR instant)", "_since");
      }
      req.since = micros;
      req.echo.emplace_back(name, value);
    } else if (name == "_type") {
      if (!req.types) req.types.emplace();
      for (const std::string& t : splitList(value, ',')) {
        const std::string_view tt = trim(t);
        if (!model.isResourceType(tt)) {
          throw FhirError(400, IssueType::Value, "Unknown resource type in _type: '" + std::string(tt) + "'", "_type");
        }
        req.types->emplace(tt);
      }
      req.echo.emplace_back(name, value);
    } else if (name == "_count") {
      int n = -1;
      const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || p != value.data() + value.size() || n < 0) {
        throw FhirError(400, IssueType::Value, "Invalid _count (expected a non-negative integer)", "_count");
      }
      req.count = std::min(n, std::max(1, maxCount));
      req.echo.emplace_back(name, std::to_string(req.count));
    } else if (name == "_cursor") {
      req.after = decodeCursor(model, value);
    } else if (name == "_format" || name == "_pretty") {
      req.echo.emplace_back(name, value);  // representation choices the links keep
    }
    // Anything else is not a parameter of $everything: ignored, and left out of the links.
  }
  return req;
}

std::string everythingUrl(const std::string& baseUrl, std::string_view type, std::string_view id,
                          const SearchParams& echo, const std::string* cursor) {
  std::string url = baseUrl + "/" + std::string(type) + "/" + std::string(id) + "/$everything";
  char sep = '?';
  for (const auto& [name, value] : echo) {
    url += sep;
    sep = '&';
    appendQueryEscaped(url, name);
    url += '=';
    appendQueryEscaped(url, value);
  }
  if (cursor != nullptr) {
    url += sep;
    url += "_cursor=";
    url += *cursor;
  }
  return url;
}

bool updatedSince(const std::string& lastUpdated, const std::optional<int64_t>& since) {
  if (!since) return true;
  int64_t micros = 0;
  return parseInstant(lastUpdated, micros) && micros >= *since;
}

}  // namespace

std::string everything(ResourceStore& store, const Model& model, std::string_view type, std::string_view id,
                       const SearchParams& params, const std::string& baseUrl, int defaultCount, int maxCount) {
  if (!model.isResourceType(type)) throw FhirError(404, IssueType::NotFound, "Unknown resource type: " + std::string(type));
  if (!compartmentTypeSupported(type)) {
    throw FhirError(400, IssueType::NotSupported, "$everything is supported on Patient only");
  }
  const EverythingRequest req = parseEverythingParams(model, params, defaultCount, maxCount);

  std::optional<StoredVersion> patient;
  try {
    patient = store.read(type, id);
  } catch (const StoreUnavailable& e) {
    throw FhirError(503, IssueType::Transient, "The database is unavailable").withInternalDetail(e.what());
  }
  if (!patient) throw FhirError(404, IssueType::NotFound, std::string(type) + "/" + std::string(id) + " is not known");
  if (patient->deleted) throw FhirError(410, IssueType::Deleted, std::string(type) + "/" + std::string(id) + " was deleted");

  // 1. Every key of the $everything set, in one statement: the compartment members (kind 0), what
  //    they reference (kind 1), and what the patient itself references (kind 1). The members are
  //    made distinct first (most are found through two parameters, e.g. Observation subject and
  //    patient) and materialized once for both uses; their references are made distinct too (the
  //    patient itself left out: most point back to it) before resource_current is looked up, once
  //    per target. A member needs no resource_current lookup unless _since asks for its
  //    last-updated: a deletion removes every index row of its resource, so a reference row is
  //    always that of a current, undeleted resource (step 3 reads only undeleted contents anyway).
  //    CROSS JOIN keeps the join order (members, then their references by (type, id)); SQLite's
  //    planner otherwise scans the whole reference index. UNION ALL: what duplicates remain (a
  //    target that is also a member) are merged by add() below, cheaper than SQLite's temporary
  //    index for UNION. Contents are fetched for one page only (step 3). At 1M resources this
  //    statement went from ~3.3 to ~1.2 ms.
  SqlQuery q;
  const std::string& inCompartment = compartmentCondition();
  q.sql =
      "WITH mem AS MATERIALIZED (SELECT DISTINCT m.type AS type, m.id AS id FROM search_reference m"
      " WHERE m.target_type = ? AND m.target_id = ? AND " +
      inCompartment + ") " +
      (req.since ? std::string("SELECT 0, c.type, c.id, c.last_updated FROM mem CROSS JOIN resource_current c"
                               " WHERE c.type = mem.type AND c.id = mem.id AND NOT c.deleted")
                 : std::string("SELECT 0, mem.type, mem.id, '' FROM mem")) +
      " UNION ALL"
      " SELECT 1, t.tt, t.ti, c.last_updated FROM ("
      "   SELECT DISTINCT r.target_type AS tt, r.target_id AS ti FROM mem CROSS JOIN search_reference r"
      "   WHERE r.type = mem.type AND r.id = mem.id AND NOT (r.target_type = ? AND r.target_id = ?)) t"
      " JOIN resource_current c ON c.type = t.tt AND c.id = t.ti"
      " WHERE NOT c.deleted"
      " UNION ALL"
      " SELECT 1, r.target_type, r.target_id, c.last_updated FROM search_reference r"
      " JOIN resource_current c ON c.type = r.target_type AND c.id = r.target_id"
      " WHERE r.type = ? AND r.id = ? AND NOT c.deleted";
  for (int i = 0; i < 3; ++i) {
    q.params.emplace_back(std::string(type));
    q.params.emplace_back(std::string(id));
  }
  const std::vector<SqlRow> rows = runQuery(store, nullptr, q);

  // 2. The set, in (type, id) order: the patient and the members are matches; referenced
  //    resources that are not members are includes, except other patients (their records are not
  //    this patient's).
  std::vector<EverythingKey> keys;
  {
    std::unordered_map<std::string, size_t> at;  // "type\0id" -> index in keys
    auto add = [&](const std::string& t, const std::string& i, bool match, const std::string& lastUpdated) {
      if (req.types && req.types->count(t) == 0) return;
      if (!updatedSince(lastUpdated, req.since)) return;
      std::string k = t + '\0' + i;
      auto it = at.find(k);
      if (it != at.end()) {
        keys[it->second].match = keys[it->second].match || match;
        return;
      }
      at.emplace(std::move(k), keys.size());
      keys.push_back(EverythingKey{t, i, match});
    };
    add(std::string(type), std::string(id), true, patient->lastUpdated);
    for (const SqlRow& row : rows) {
      const bool member = std::holds_alternative<int64_t>(row.at(0)) && std::get<int64_t>(row.at(0)) == 0;
      const std::string& t = textAt(row, 1);
      const std::string& i = textAt(row, 2);
      if (!member && t == type && i != id) continue;  // another patient
      add(t, i, member, textAt(row, 3));
    }
  }
  std::sort(keys.begin(), keys.end());

  // 3. This page: the keys after the cursor, and their contents in one statement per batch.
  auto first = keys.begin();
  if (req.after) first = std::upper_bound(keys.begin(), keys.end(), *req.after);
  const size_t remaining = static_cast<size_t>(keys.end() - first);
  const size_t pageSize = std::min(remaining, static_cast<size_t>(req.count));
  const std::vector<EverythingKey> page(first, first + static_cast<std::ptrdiff_t>(pageSize));
  const bool more = remaining > pageSize && pageSize > 0;

  std::vector<ResourceKey> pageKeys;
  for (const EverythingKey& k : page) pageKeys.push_back({k.type, k.id});
  const auto content = fetchContent(store, nullptr, pageKeys);

  // 4. The Bundle.
  std::string out;
  {
    // The contents plus the entry wrappers (fullUrl, search mode): one allocation, no regrowth
    // copies of a body that is often half a megabyte.
    size_t bytes = 4096;
    for (const auto& [k, json] : content) bytes += json.size() + k.size() + 160 + baseUrl.size();
    out.reserve(bytes);
  }
  out += "{\"resourceType\":\"Bundle\",\"id\":\"";
  out += newResourceId();
  out += "\",\"meta\":{\"lastUpdated\":\"";
  out += nowInstant().text;
  out += "\"},\"type\":\"searchset\",\"total\":";
  out += std::to_string(keys.size());
  out += ",\"link\":[{\"relation\":\"self\",\"url\":\"";
  {
    SearchParams self = req.echo;
    std::string cursorText;
    for (const auto& [name, value] : params)
      if (name == "_cursor") cursorText = value;
    std::string url = everythingUrl(baseUrl, type, id, self, cursorText.empty() ? nullptr : &cursorText);
    appendJsonEscaped(out, url);
  }
  out += "\"},{\"relation\":\"first\",\"url\":\"";
  appendJsonEscaped(out, everythingUrl(baseUrl, type, id, req.echo, nullptr));
  out += "\"}";
  if (more) {
    const std::string next = encodeCursor(page.back());
    out += ",{\"relation\":\"next\",\"url\":\"";
    appendJsonEscaped(out, everythingUrl(baseUrl, type, id, req.echo, &next));
    out += "\"}";
  }
  out += "]";
  bool firstEntry = true;
  for (const EverythingKey& k : page) {
    auto it = content.find(key(k.type, k.id));
    if (it == content.end()) continue;  // deleted between the two statements
    out += firstEntry ? ",\"entry\":[" : ",";
    firstEntry = false;
    out += "{\"fullUrl\":\"";
    appendJsonEscaped(out, baseUrl + "/" + k.type + "/" + k.id);
    out += "\",\"resource\":";
    out += it->second;
    out += ",\"search\":{\"mode\":\"";
    out += k.match ? "match" : "include";
    out += "\"}}";
  }
  if (!firstEntry) out += "]";
  out += "}";
  return out;
}

}  // namespace hearth::fhir::searchimpl
