// FHIRPath evaluation over rapidjson DOMs, typed by the generated R4 model.
//
// One Evaluator lives for one evaluate() call: it holds the options, the resource, the clock
// reading for now()/today() and (lazily) the storage for computed strings. The parsed tree is
// only read, so a shared FhirPathExpression may be evaluated by many threads at once.
//
// Collections are small inline vectors of FhirPathItem (trivially copyable, 80 bytes): the
// common paths (`Patient.name.family`) produce one to four items per step and never touch the
// heap except for the final result vector.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>

#include <sys/time.h>

#include "fhirpath_ast.h"
#include "fhirpath_values.h"
#include "model_impl.h"

namespace hearth::fhir {
namespace fhirpath {
namespace {

using Item = FhirPathItem;
using Kind = FhirPathKind;
using Value = rapidjson::Value;

// ---------------------------------------------------------------------------------------------
// What the evaluator needs from the model, indexed for O(1) lookups; built once (thread-safe
// static initialisation) and immutable afterwards.
// ---------------------------------------------------------------------------------------------

class ModelInfo {
 public:
  static const ModelInfo& get() {
    static const ModelInfo info;
    return info;
  }

  const ModelImpl& impl;
  int32_t extensionType = -1, extensionNode = -1, stringType = -1, quantityType = -1;

  bool derives(int32_t type, int32_t base) const {
    for (int guard = 0; type >= 0 && guard < 32; ++guard) {
      if (type == base) return true;
      type = baseOf_[static_cast<size_t>(type)];
    }
    return false;
  }
  bool isPrimitive(int32_t type) const { return type >= 0 && primitive_[static_cast<size_t>(type)]; }
  Kind kindOf(int32_t type) const { return kindOf_[static_cast<size_t>(type)]; }
  bool isQuantity(int32_t type) const { return quantityType >= 0 && derives(type, quantityType); }

  // The choice element (value[x]) named `name` in `node`, or -1.
  int32_t choiceElement(uint32_t node, std::string_view name) const {
    auto it = choices_.find(Key{node, name});
    return it == choices_.end() ? -1 : it->second;
  }

  static Kind kindForTypeKind(TypeKind k) {
    switch (k) {
      case TypeKind::Boolean: return Kind::Boolean;
      case TypeKind::Integer: case TypeKind::UnsignedInt: case TypeKind::PositiveInt: return Kind::Integer;
      case TypeKind::Decimal: return Kind::Decimal;
      case TypeKind::Date: return Kind::Date;
      case TypeKind::DateTime: case TypeKind::Instant: return Kind::DateTime;
      case TypeKind::Time: return Kind::Time;
      case TypeKind::Complex: case TypeKind::Resource: return Kind::Object;
      default: return Kind::String;
    }
  }

 private:
  struct Key {
    uint32_t node;
    std::string_view name;
    bool operator==(const Key& o) const { return node == o.node && name == o.name; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return std::hash<std::string_view>()(k.name) ^ (static_cast<size_t>(k.node) * 0x9e3779b97f4a7c15ull);
    }
  };

  ModelInfo() : impl(Model::r4().impl()) {
    const auto& types = impl.types();
    baseOf_.resize(types.size(), -1);
    kindOf_.resize(types.size(), Kind::Object);
    primitive_.resize(types.size(), false);
    for (size_t i = 0; i < types.size(); ++i) {
      baseOf_[i] = types[i].base.empty() ? -1 : impl.typeIndex(types[i].base);
      kindOf_[i] = kindForTypeKind(types[i].kind);
      primitive_[i] = isPrimitiveKind(types[i].kind);
    }
    extensionType = impl.typeIndex("Extension");
    if (extensionType >= 0) extensionNode = impl.type(static_cast<uint32_t>(extensionType)).node;
    stringType = impl.typeIndex("string");
    quantityType = impl.typeIndex("Quantity");
    for (size_t e = 0; e < impl.elementCount(); ++e) {
      const ElementImpl& el = impl.element(static_cast<uint32_t>(e));
      if (el.def.isChoice) choices_.emplace(Key{el.node, el.def.name}, static_cast<int32_t>(e));
    }
  }

  std::vector<int32_t> baseOf_;
  std::vector<Kind> kindOf_;
  std::vector<bool> primitive_;
  std::unordered_map<Key, int32_t, KeyHash> choices_;
};

// ---------------------------------------------------------------------------------------------
// Collections
// ---------------------------------------------------------------------------------------------

// A vector with N items of inline storage, for trivially copyable T.
template <typename T, uint32_t N>
class SmallVec {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  SmallVec() = default;
  SmallVec(const SmallVec& o) { append(o.begin(), o.end()); }
  SmallVec& operator=(const SmallVec& o) {
    if (this != &o) {
      size_ = 0;
      append(o.begin(), o.end());
    }
    return *this;
  }
  SmallVec(SmallVec&& o) noexcept { take(o); }
  SmallVec& operator=(SmallVec&& o) noexcept {
    if (this != &o) {
      release();
      take(o);
    }
    return *this;
  }
  ~SmallVec() { release(); }

  void push_back(const T& v) {
    if (size_ == cap_) grow(cap_ * 2);
    std::memcpy(static_cast<void*>(data() + size_), &v, sizeof(T));
    ++size_;
  }
  void append(const T* b, const T* e) {
    const uint32_t n = static_cast<uint32_t>(e - b);
    if (size_ + n > cap_) grow(std::max(cap_ * 2, size_ + n));
    if (n) std::memcpy(static_cast<void*>(data() + size_), b, n * sizeof(T));
    size_ += n;
  }
  void append(const SmallVec& o) { append(o.begin(), o.end()); }
  void clear() { size_ = 0; }
  void resize(uint32_t n) { size_ = std::min(size_, n); }  // shrinking only
  void erasePrefix(uint32_t n) {
    n = std::min(n, size_);
    std::memmove(static_cast<void*>(data()), data() + n, (size_ - n) * sizeof(T));
    size_ -= n;
  }
  uint32_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](uint32_t i) { return data()[i]; }
  const T& operator[](uint32_t i) const { return data()[i]; }
  T* begin() { return data(); }
  T* end() { return data() + size_; }
  const T* begin() const { return data(); }
  const T* end() const { return data() + size_; }
  T* data() { return heap_ ? heap_ : reinterpret_cast<T*>(inline_); }
  const T* data() const { return heap_ ? heap_ : reinterpret_cast<const T*>(inline_); }

 private:
  void grow(uint32_t cap) {
    T* mem = static_cast<T*>(::operator new(sizeof(T) * cap));
    if (size_) std::memcpy(static_cast<void*>(mem), data(), size_ * sizeof(T));
    if (heap_) ::operator delete(heap_);
    heap_ = mem;
    cap_ = cap;
  }
  void release() {
    if (heap_) ::operator delete(heap_);
    heap_ = nullptr;
    cap_ = N;
    size_ = 0;
  }
  void take(SmallVec& o) {
    if (o.heap_) {
      heap_ = o.heap_;
      cap_ = o.cap_;
      size_ = o.size_;
      o.heap_ = nullptr;
      o.cap_ = N;
      o.size_ = 0;
    } else {
      heap_ = nullptr;
      cap_ = N;
      size_ = 0;
      append(o.begin(), o.end());
      o.size_ = 0;
    }
  }

  T* heap_ = nullptr;
  uint32_t size_ = 0;
  uint32_t cap_ = N;
  alignas(T) unsigned char inline_[N * sizeof(T)];
};

using Coll = SmallVec<Item, 4>;

// Owns the strings an evaluation computes (and keeps the tree alive, whose literals results may
// point into). Blocks never move, so the views handed out stay valid as long as the storage.
class Storage {
 public:
  explicit Storage(std::shared_ptr<const FhirPathExpression::Ast> ast) : ast_(std::move(ast)) {}
  std::string_view store(std::string_view s) {
    if (s.empty()) return std::string_view("", 0);
    if (s.size() > left_) {
      const size_t size = std::max<size_t>(1024, s.size());
      blocks_.push_back(std::make_unique<char[]>(size));
      cur_ = blocks_.back().get();
      left_ = size;
    }
    std::memcpy(cur_, s.data(), s.size());
    std::string_view out(cur_, s.size());
    cur_ += s.size();
    left_ -= s.size();
    return out;
  }

 private:
  std::shared_ptr<const FhirPathExpression::Ast> ast_;
  std::vector<std::unique_ptr<char[]>> blocks_;
  char* cur_ = nullptr;
  size_t left_ = 0;
};

struct Frame {
  const Coll* input;           // the focus of identifiers and receiver-less functions
  const Item* self = nullptr;  // $this inside iteration functions (else the input)
  int64_t index = -1;          // $index, -1 outside iteration functions
  const Coll* total = nullptr; // $total inside aggregate()
};

[[noreturn]] void fail(const Node& n, const std::string& what) {
  throw FhirPathError(FhirPathError::Kind::Execution, n.pos,
                      "FHIRPath evaluation error at position " + std::to_string(n.pos) + ": " + what);
}

[[noreturn]] void failSemantic(const Node& n, const std::string& what) {
  throw FhirPathError(FhirPathError::Kind::Semantic, n.pos,
                      "FHIRPath error at position " + std::to_string(n.pos) + ": " + what);
}

// ---------------------------------------------------------------------------------------------
// Item construction and reading
// ---------------------------------------------------------------------------------------------

Item computed(Kind k) {
  Item it;
  it.kind_ = k;
  it.flags_ = Item::kComputed;
  return it;
}
Item boolItem(bool b) {
  Item it = computed(Kind::Boolean);
  it.u_.boolean = b;
  return it;
}
Item intItem(int64_t v) {
  Item it = computed(Kind::Integer);
  it.u_.integer = v;
  return it;
}
Item decItem(const Decimal& d) {
  Item it = computed(Kind::Decimal);
  it.u_.decimal = d;
  return it;
}
Item strItem(std::string_view s) {
  Item it = computed(Kind::String);
  it.u_.string.data = s.data();
  it.u_.string.length = static_cast<uint32_t>(s.size());
  return it;
}
Item dateItem(Kind k, const DateTime& v) {
  Item it = computed(k);
  it.u_.dateTime = v;
  return it;
}
Item quantityItem(const Decimal& v, std::string_view unit, bool calendar) {
  Item it = computed(Kind::Quantity);
  it.u_.quantity.value = v;
  it.u_.quantity.unit = unit.data();
  it.u_.quantity.unitLength = static_cast<uint32_t>(unit.size());
  if (calendar) it.flags_ |= Item::kCalendarUnit;
  return it;
}

bool isComputed(const Item& it) { return !it.isJsonBacked(); }

std::string_view jsonString(const Value& v) { return std::string_view(v.GetString(), v.GetStringLength()); }

const Value* member(const Value& obj, std::string_view name) {
  for (auto m = obj.MemberBegin(); m != obj.MemberEnd(); ++m) {
    if (jsonString(m->name) == name) return &m->value;
  }
  return nullptr;
}

std::optional<Decimal> jsonDecimal(const Value& v) {
  if (v.IsInt64()) return Decimal::fromInteger(v.GetInt64());
  if (v.IsUint64()) return Decimal{static_cast<__int128>(v.GetUint64()), 0};
  if (v.IsDouble()) return Decimal::fromDouble(v.GetDouble());
  if (v.IsString()) return Decimal::parse(jsonString(v));
  return std::nullopt;
}

// An item's FHIRPath value, read from the JSON or the payload. `ok` false: no primitive value
// (objects other than quantities, primitives with only extensions, malformed JSON values).
struct Val {
  Kind kind = Kind::Object;
  bool ok = false;
  bool b = false;
  int64_t i = 0;
  Decimal d;
  std::string_view s;
  DateTime dt;
  QuantityValue q;
};

constexpr const char* kUcum = "http://unitsofmeasure.org";

Val valueOf(const Item& it) {
  Val v;
  v.kind = it.kind_;
  if (isComputed(it)) {
    v.ok = it.kind_ != Kind::Object && it.kind_ != Kind::TypeInfo;
    switch (it.kind_) {
      case Kind::Boolean: v.b = it.u_.boolean; break;
      case Kind::Integer: v.i = it.u_.integer; break;
      case Kind::Decimal: v.d = it.u_.decimal; break;
      case Kind::String: v.s = std::string_view(it.u_.string.data, it.u_.string.length); break;
      case Kind::Date: case Kind::DateTime: case Kind::Time: v.dt = it.u_.dateTime; break;
      case Kind::Quantity:
        v.q.value = it.u_.quantity.value;
        v.q.unit = std::string_view(it.u_.quantity.unit, it.u_.quantity.unitLength);
        v.q.calendar = (it.flags_ & Item::kCalendarUnit) != 0;
        break;
      default: break;
    }
    return v;
  }
  const Value* j = it.json_;
  if (!j) return v;
  switch (it.kind_) {
    case Kind::Boolean:
      if (j->IsBool()) {
        v.b = j->GetBool();
        v.ok = true;
      }
      break;
    case Kind::Integer:
      if (j->IsInt64()) {
        v.i = j->GetInt64();
        v.ok = true;
      } else if (auto d = jsonDecimal(*j); d && decIsInteger(*d)) {
        if (auto i = decToInt64(*d)) {
          v.i = *i;
          v.ok = true;
        }
      }
      break;
    case Kind::Decimal:
      if (auto d = jsonDecimal(*j)) {
        v.d = *d;
        v.ok = true;
      }
      break;
    case Kind::String:
      if (j->IsString()) {
        v.s = jsonString(*j);
        v.ok = true;
      }
      break;
    case Kind::Date: case Kind::DateTime: {
      if (!j->IsString()) break;
      Kind parsed;
      if (auto dt = parseDateTime(jsonString(*j), parsed, false)) {
        v.dt = *dt;
        v.ok = true;
      }
      break;
    }
    case Kind::Time:
      if (!j->IsString()) break;
      if (auto dt = parseTime(jsonString(*j))) {
        v.dt = *dt;
        v.ok = true;
      }
      break;
    case Kind::Object: {
      if (it.type_ < 0 || !j->IsObject() || !ModelInfo::get().isQuantity(it.type_)) break;
      const Value* value = member(*j, "value");
      if (!value) break;
      auto d = jsonDecimal(*value);
      if (!d) break;
      const Value* system = member(*j, "system");
      const Value* code = member(*j, "code");
      const Value* unit = member(*j, "unit");
      v.kind = Kind::Quantity;
      v.q.value = *d;
      if (code && code->IsString() && system && system->IsString() && jsonString(*system) == kUcum) {
        v.q.unit = jsonString(*code);
      } else if (unit && unit->IsString()) {
        v.q.unit = jsonString(*unit);
      } else if (code && code->IsString()) {
        v.q.unit = jsonString(*code);
      } else {
        v.q.unit = "1";
      }
      v.ok = true;
      break;
    }
    default: break;
  }
  return v;
}

bool isNumeric(Kind k) { return k == Kind::Integer || k == Kind::Decimal; }
bool isDateLike(Kind k) { return k == Kind::Date || k == Kind::DateTime; }
Decimal numeric(const Val& v) { return v.kind == Kind::Integer ? Decimal::fromInteger(v.i) : v.d; }

std::string_view systemTypeName(Kind k) {
  switch (k) {
    case Kind::Boolean: return "Boolean";
    case Kind::Integer: return "Integer";
    case Kind::Decimal: return "Decimal";
    case Kind::String: return "String";
    case Kind::Date: return "Date";
    case Kind::DateTime: return "DateTime";
    case Kind::Time: return "Time";
    case Kind::Quantity: return "Quantity";
    default: return "";
  }
}

// FHIRPath toString() of a value.
std::optional<std::string> stringOf(const Item& it) {
  const Val v = valueOf(it);
  if (!v.ok) return std::nullopt;
  switch (v.kind) {
    case Kind::Boolean: return std::string(v.b ? "true" : "false");
    case Kind::Integer: return std::to_string(v.i);
    case Kind::Decimal: return v.d.toString();
    case Kind::String: return std::string(v.s);
    case Kind::Date: case Kind::DateTime: case Kind::Time:
      if (!isComputed(it) && it.json_ && it.json_->IsString()) return std::string(jsonString(*it.json_));
      return formatFhirPathDateTime(v.dt, v.kind);
    case Kind::Quantity: return quantityToString(v.q);
    default: return std::nullopt;
  }
}

// ---- UTF-8 -----------------------------------------------------------------------------------

size_t codePoints(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Byte offset of code point `cp` (s.size() if beyond the end).
size_t byteOffset(std::string_view s, size_t cp) {
  size_t i = 0;
  while (i < s.size() && cp > 0) {
    ++i;
    while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
    --cp;
  }
  return i;
}

std::string normalizeForEquivalence(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

// ---- comparisons ------------------------------------------------------------------------------

// Equality (=) of two items: true / false, or nullopt when unknown (date precisions differ,
// quantities of incomparable units, primitives without values).
std::optional<bool> itemsEqual(const Item& a, const Item& b) {
  const Val va = valueOf(a), vb = valueOf(b);
  if (va.ok && vb.ok) {
    if (isNumeric(va.kind) && isNumeric(vb.kind)) {
      if (va.kind == Kind::Integer && vb.kind == Kind::Integer) return va.i == vb.i;
      return decCompare(numeric(va), numeric(vb)) == 0;
    }
    if (va.kind == Kind::String && vb.kind == Kind::String) return va.s == vb.s;
    if (va.kind == Kind::Boolean && vb.kind == Kind::Boolean) return va.b == vb.b;
    if ((isDateLike(va.kind) && isDateLike(vb.kind)) || (va.kind == Kind::Time && vb.kind == Kind::Time)) {
      auto c = compareDateTime(va.dt, vb.dt);
      if (!c) return std::nullopt;
      return *c == 0;
    }
    if (va.kind == Kind::Quantity && vb.kind == Kind::Quantity) {
      auto conv = convertQuantity(vb.q, va.q);
      if (!conv) return std::nullopt;
      return decCompare(va.q.value, *conv) == 0;
    }
    return false;
  }
  if (va.ok != vb.ok) {
    // A primitive without value compares as unknown; a value never equals an object.
    const bool aValueless = !va.ok && a.kind_ != Kind::Object && a.kind_ != Kind::TypeInfo;
    const bool bValueless = !vb.ok && b.kind_ != Kind::Object && b.kind_ != Kind::TypeInfo;
    if (aValueless || bValueless) return std::nullopt;
    return false;
  }
  if (a.kind_ == Kind::TypeInfo || b.kind_ == Kind::TypeInfo) {
    return a.kind_ == b.kind_ && a.typeName() == b.typeName() && a.typeNamespace() == b.typeNamespace();
  }
  if (a.kind_ != Kind::Object || b.kind_ != Kind::Object) return std::nullopt;
  if (a.json_ && b.json_) return a.json_ == b.json_ || *a.json_ == *b.json_;
  return !a.json_ && !b.json_ && a.type_ == b.type_;
}

bool itemsEquivalent(const Item& a, const Item& b) {
  const Val va = valueOf(a), vb = valueOf(b);
  if (va.ok && vb.ok) {
    if (isNumeric(va.kind) && isNumeric(vb.kind)) {
      const Decimal x = numeric(va), y = numeric(vb);
      const int32_t s = std::min(x.scale, y.scale);
      return decCompare(decRound(x, s), decRound(y, s)) == 0;
    }
    if (va.kind == Kind::String && vb.kind == Kind::String) {
      return normalizeForEquivalence(va.s) == normalizeForEquivalence(vb.s);
    }
    if (va.kind == Kind::Boolean && vb.kind == Kind::Boolean) return va.b == vb.b;
    if ((isDateLike(va.kind) && isDateLike(vb.kind)) || (va.kind == Kind::Time && vb.kind == Kind::Time)) {
      return va.kind == vb.kind && equivalentDateTime(va.dt, vb.dt);
    }
    if (va.kind == Kind::Quantity && vb.kind == Kind::Quantity) {
      auto conv = convertQuantity(vb.q, va.q);
      if (!conv) return false;
      const int32_t s = std::min(va.q.value.scale, conv->scale);
      return decCompare(decRound(va.q.value, s), decRound(*conv, s)) == 0;
    }
    return false;
  }
  if (va.ok != vb.ok) return false;
  auto eq = itemsEqual(a, b);
  return eq && *eq;
}

// Identity for repeat() de-duplication: the same JSON node, or equal computed values.
bool sameItem(const Item& a, const Item& b) {
  if (!isComputed(a) && !isComputed(b)) return a.json_ == b.json_ && a.u_.ext == b.u_.ext && a.type_ == b.type_;
  if (isComputed(a) != isComputed(b)) return false;
  auto eq = itemsEqual(a, b);
  return eq && *eq;
}

// ---------------------------------------------------------------------------------------------
// The evaluator
// ---------------------------------------------------------------------------------------------

class Evaluator {
 public:
  Evaluator(const FhirPathOptions& options, std::shared_ptr<const FhirPathExpression::Ast> ast,
            const Value* resource)
      : opt_(options), ast_(std::move(ast)), model_(ModelInfo::get()), resource_(resource) {
    root_ = options.rootResource ? options.rootResource : resource;
  }

  Item resourceItem(const Value& v) const {
    Item it;
    it.kind_ = Kind::Object;
    it.json_ = &v;
    if (v.IsObject()) {
      if (const Value* rt = member(v, "resourceType"); rt && rt->IsString()) {
        it.type_ = model_.impl.typeIndex(jsonString(*rt));
        it.node_ = it.type_ >= 0 ? model_.impl.type(static_cast<uint32_t>(it.type_)).node : -1;
      }
    }
    return it;
  }

  void eval(const Node& n, const Frame& f, Coll& out);

  std::shared_ptr<Storage> storage() {
    if (!storage_) storage_ = std::make_shared<Storage>(ast_);
    return storage_;
  }
  bool hasStorage() const { return storage_ != nullptr; }
  std::string_view store(std::string_view s) { return storage()->store(s); }

 private:
  // ---- navigation ----
  void pushTyped(const Value* v, const Value* ext, const ElementType& et, Coll& out) const;
  void pushUntyped(const Value* v, const Value* ext, Coll* out) const;
  void pushValues(const Value* val, const Value* ext, const ElementType& et, Coll& out) const;
  void navigate(const Node& n, const Item& it, std::string_view name, Coll& out) const;
  void children(const Item& it, Coll& out) const;
  void memberOrType(const Node& n, const Coll& src, bool atRoot, Coll& out) const;
  void checkMemberOfCast(const Node& n) const;

  // ---- helpers ----
  void evalArg(const Node& n, size_t i, const Frame& f, Coll& out) { eval(*n.args[i], f, out); }
  const Item* singleton(const Node& n, const Coll& c, const char* what) const {
    if (c.empty()) return nullptr;
    if (c.size() > 1) fail(n, std::string(what) + " expects a single item but got " + std::to_string(c.size()));
    return &c[0];
  }
  std::optional<bool> toBool(const Node& n, const Coll& c) const {
    if (c.empty()) return std::nullopt;
    if (c.size() > 1) fail(n, "a boolean context needs a single item but got " + std::to_string(c.size()));
    if (c[0].kind_ == Kind::Boolean) {
      const Val v = valueOf(c[0]);
      if (!v.ok) return std::nullopt;
      return v.b;
    }
    return true;
  }
  std::optional<std::string_view> stringArg(const Node& n, size_t i, const Frame& f);
  std::optional<int64_t> integerArg(const Node& n, size_t i, const Frame& f);
  std::optional<std::string_view> inputString(const Node& n, const Coll& in) const;
  bool isType(const Item& it, const TypeSpec& spec, bool exactPrimitive) const;
  bool contains(const Coll& c, const Item& it) const {
    for (const Item& x : c) {
      auto eq = itemsEqual(x, it);
      if (eq && *eq) return true;
    }
    return false;
  }
  void distinctInto(const Coll& c, Coll& out) const {
    for (const Item& x : c) {
      if (!contains(out, x)) out.push_back(x);
    }
  }
  std::optional<bool> collectionsEqual(const Coll& a, const Coll& b) const;
  bool collectionsEquivalent(const Coll& a, const Coll& b) const;

  void binary(const Node& n, const Frame& f, Coll& out);
  void arithmetic(const Node& n, const Item& a, const Item& b, Coll& out);
  std::optional<int> compare(const Node& n, const Item& a, const Item& b) const;
  void function(const Node& n, const Frame& f, Coll& out);
  void stringFunction(const Node& n, const Frame& f, const Coll& in, Coll& out);
  void mathFunction(const Node& n, const Frame& f, const Coll& in, Coll& out);
  void conversion(const Node& n, const Frame& f, const Coll& in, Coll& out);
  void boundary(const Node& n, const Frame& f, const Coll& in, Coll& out);
  void resolve(const Item& it, Coll& out) const;
  void clock();

  const FhirPathOptions& opt_;
  std::shared_ptr<const FhirPathExpression::Ast> ast_;
  const ModelInfo& model_;
  const Value* resource_;
  const Value* root_;
  std::shared_ptr<Storage> storage_;
  bool clockRead_ = false;
  DateTime now_;
};

// ---- navigation ------------------------------------------------------------------------------

void Evaluator::pushUntyped(const Value* v, const Value* ext, Coll* out) const {
  if (!out || !v) return;
  if (v->IsArray()) {
    // One level: FHIR JSON never nests arrays (and hostile nesting must not recurse).
    for (const Value& e : v->GetArray()) {
      if (!e.IsArray()) pushUntyped(&e, nullptr, out);
    }
    return;
  }
  Item it;
  it.json_ = v;
  it.u_.ext = ext;
  if (v->IsObject()) {
    if (const Value* rt = member(*v, "resourceType"); rt && rt->IsString()) {
      out->push_back(resourceItem(*v));
      return;
    }
    it.kind_ = Kind::Object;
  } else if (v->IsString()) {
    it.kind_ = Kind::String;
  } else if (v->IsBool()) {
    it.kind_ = Kind::Boolean;
  } else if (v->IsInt64()) {
    it.kind_ = Kind::Integer;
  } else if (v->IsNumber()) {
    it.kind_ = Kind::Decimal;
  } else {
    return;  // null
  }
  out->push_back(it);
}

void Evaluator::pushTyped(const Value* v, const Value* ext, const ElementType& et, Coll& out) const {
  if (ext && !ext->IsObject()) ext = nullptr;
  if (v && v->IsNull()) v = nullptr;
  if (!v && !ext) return;
  Item it;
  it.json_ = v;
  if (isPrimitiveKind(et.kind)) {
    if (v && (v->IsObject() || v->IsArray())) {  // malformed: not a primitive
      pushUntyped(v, nullptr, &out);
      return;
    }
    it.kind_ = ModelInfo::kindForTypeKind(et.kind);
    it.type_ = et.type;
    it.u_.ext = ext;
    out.push_back(it);
    return;
  }
  if (!v || !v->IsObject()) {
    pushUntyped(v, nullptr, &out);
    return;
  }
  if (et.kind == TypeKind::Resource) {
    out.push_back(resourceItem(*v));
    return;
  }
  it.kind_ = Kind::Object;
  it.type_ = et.type;
  it.node_ = et.node;
  out.push_back(it);
}

// Pushes the values of one element: its value member `val` (a value or an array) and the
// `_name` member `ext` of primitives (an object, or an array parallel to the values).
void Evaluator::pushValues(const Value* val, const Value* ext, const ElementType& et, Coll& out) const {
  if (val && val->IsArray()) {
    const Value* extArr = ext && ext->IsArray() ? ext : nullptr;
    const rapidjson::SizeType n = val->Size();
    for (rapidjson::SizeType i = 0; i < n; ++i) {
      const Value* x = extArr && i < extArr->Size() ? &(*extArr)[i] : nullptr;
      pushTyped(&(*val)[i], x, et, out);
    }
    return;
  }
  if (!val && ext && ext->IsArray()) {
    for (const Value& x : ext->GetArray()) pushTyped(nullptr, &x, et, out);
    return;
  }
  pushTyped(val, ext, et, out);
}

void Evaluator::navigate(const Node& n, const Item& it, std::string_view name, Coll& out) const {
  if (it.kind_ == Kind::TypeInfo) {
    if (name == "name") out.push_back(strItem(it.typeName()));
    if (name == "namespace") out.push_back(strItem(it.typeNamespace()));
    return;
  }
  if (isComputed(it)) return;
  const Value* j = it.json_;
  if (!j || !j->IsObject()) {
    // A primitive: its id and extensions live in the `_name` companion.
    const Value* ext = it.u_.ext;
    if (!ext || !ext->IsObject()) return;
    if (name == "extension") {
      if (const Value* e = member(*ext, "extension"); e && model_.extensionType >= 0) {
        ElementType et;
        et.kind = TypeKind::Complex;
        et.type = model_.extensionType;
        et.node = model_.extensionNode;
        pushValues(e, nullptr, et, out);
      }
    } else if (name == "id") {
      if (const Value* id = member(*ext, "id"); id && id->IsString()) {
        Item s;
        s.kind_ = Kind::String;
        s.type_ = model_.stringType;
        s.json_ = id;
        out.push_back(s);
      }
    } else if (opt_.strict && it.type_ >= 0) {
      failSemantic(n, "'" + std::string(name) + "' is not an element of " + std::string(it.typeName()));
    }
    return;
  }
  if (it.node_ < 0) {
    pushUntyped(member(*j, name), nullptr, &out);
    return;
  }
  const uint32_t node = static_cast<uint32_t>(it.node_);
  const MemberRef* m = model_.impl.member(node, name);
  if (m && !m->underscore) {
    const ElementImpl& e = model_.impl.element(m->element);
    if (e.def.isChoice) {
      failSemantic(n, "'" + std::string(name) + "' is not a FHIRPath name; use " + e.def.name + ".ofType(" +
                          std::string(e.types[m->typeIndex].name) + ")");
    }
    const ElementType& et = e.types[0];
    const bool primitive = isPrimitiveKind(et.kind);
    const Value* val = nullptr;
    const Value* ext = nullptr;
    for (auto mm = j->MemberBegin(); mm != j->MemberEnd(); ++mm) {
      const std::string_view key = jsonString(mm->name);
      if (key.size() == name.size() && key == name) {
        val = &mm->value;
        if (!primitive) break;
      } else if (primitive && key.size() == name.size() + 1 && key[0] == '_' && key.substr(1) == name) {
        ext = &mm->value;
      }
    }
    pushValues(val, ext, et, out);
    return;
  }
  const int32_t choice = model_.choiceElement(node, name);
  if (choice >= 0) {
    const Value* val = nullptr;
    const Value* ext = nullptr;
    const ElementType* chosen = nullptr;
    for (auto mm = j->MemberBegin(); mm != j->MemberEnd(); ++mm) {
      std::string_view key = jsonString(mm->name);
      const bool underscore = !key.empty() && key[0] == '_';
      const std::string_view bare = underscore ? key.substr(1) : key;
      if (bare.size() <= name.size() || bare.substr(0, name.size()) != name) continue;
      const MemberRef* r = model_.impl.member(node, key);
      if (!r || r->element != static_cast<uint32_t>(choice)) continue;
      const ElementType& et = model_.impl.element(r->element).types[r->typeIndex];
      if (chosen && chosen != &et) continue;  // two different choices: keep the first
      chosen = &et;
      (underscore ? ext : val) = &mm->value;
    }
    if (chosen) pushValues(val, ext, *chosen, out);
    return;
  }
  if (opt_.strict) {
    failSemantic(n, "'" + std::string(name) + "' is not an element of " + std::string(it.typeName()));
  }
  pushUntyped(member(*j, name), nullptr, &out);
}

void Evaluator::children(const Item& it, Coll& out) const {
  if (isComputed(it) || !it.json_ || !it.json_->IsObject()) return;
  const Value& j = *it.json_;
  for (auto mm = j.MemberBegin(); mm != j.MemberEnd(); ++mm) {
    const std::string_view key = jsonString(mm->name);
    if (key == "resourceType") continue;
    if (it.node_ < 0) {
      if (!key.empty() && key[0] == '_') continue;
      pushUntyped(&mm->value, nullptr, &out);
      continue;
    }
    const MemberRef* r = model_.impl.member(static_cast<uint32_t>(it.node_), key);
    if (!r) {
      if (!key.empty() && key[0] != '_') pushUntyped(&mm->value, nullptr, &out);
      continue;
    }
    const ElementType& et = model_.impl.element(r->element).types[r->typeIndex];
    if (r->underscore) {
      // Only extensions, no value member: the primitive still exists.
      const std::string_view bare = key.substr(1);
      if (!member(j, bare)) pushValues(nullptr, &mm->value, et, out);
      continue;
    }
    const Value* ext = nullptr;
    if (isPrimitiveKind(et.kind)) {
      std::string under = "_";
      under += key;
      ext = member(j, under);
    }
    pushValues(&mm->value, ext, et, out);
  }
}

void Evaluator::memberOrType(const Node& n, const Coll& src, bool atRoot, Coll& out) const {
  if (opt_.strict && n.lhs) checkMemberOfCast(n);
  for (const Item& it : src) {
    if (atRoot && n.typeName >= 0) {
      if (it.type_ >= 0 && model_.derives(it.type_, n.typeName)) {
        out.push_back(it);
        continue;
      }
      if (model_.impl.type(static_cast<uint32_t>(n.typeName)).isResource) {
        if (opt_.strict) failSemantic(n, "the context is not a " + n.name);
        continue;
      }
    }
    navigate(n, it, n.name, out);
  }
}

// Strict mode: `(x as T).name` and `x.ofType(T).name` must name an element of T, whether or not
// the data has a T here (a static check; the cast may well yield nothing at run time).
void Evaluator::checkMemberOfCast(const Node& n) const {
  const Node& cast = *n.lhs;
  const bool isCast = (cast.kind == NodeKind::TypeOp && cast.op == BinOp::As) ||
                      (cast.kind == NodeKind::Function && (cast.fn == Fn::As || cast.fn == Fn::OfType));
  if (!isCast || cast.type.fhirType < 0 || model_.isPrimitive(cast.type.fhirType)) return;
  const int32_t node = model_.impl.type(static_cast<uint32_t>(cast.type.fhirType)).node;
  if (node < 0) return;
  const MemberRef* m = model_.impl.member(static_cast<uint32_t>(node), n.name);
  if ((m && !m->underscore) || model_.choiceElement(static_cast<uint32_t>(node), n.name) >= 0) return;
  failSemantic(n, "'" + n.name + "' is not an element of " + cast.type.text);
}

// ---- type tests ------------------------------------------------------------------------------

bool Evaluator::isType(const Item& it, const TypeSpec& spec, bool exactPrimitive) const {
  if (it.kind_ == Kind::TypeInfo) return false;
  if (it.type_ >= 0) {
    if (spec.fhirType < 0) return false;
    if (exactPrimitive && model_.isPrimitive(it.type_)) return it.type_ == spec.fhirType;
    return model_.derives(it.type_, spec.fhirType);
  }
  return spec.systemKind >= 0 && it.kind_ != Kind::Object && static_cast<int8_t>(it.kind_) == spec.systemKind;
}

// ---- argument helpers ------------------------------------------------------------------------

std::optional<std::string_view> Evaluator::stringArg(const Node& n, size_t i, const Frame& f) {
  Coll c;
  evalArg(n, i, f, c);
  const Item* it = singleton(n, c, "the argument");
  if (!it) return std::nullopt;
  const Val v = valueOf(*it);
  if (!v.ok) return std::nullopt;
  if (v.kind != Kind::String) fail(n, n.name + "() expects a string argument");
  return v.s;
}

std::optional<int64_t> Evaluator::integerArg(const Node& n, size_t i, const Frame& f) {
  Coll c;
  evalArg(n, i, f, c);
  const Item* it = singleton(n, c, "the argument");
  if (!it) return std::nullopt;
  const Val v = valueOf(*it);
  if (!v.ok) return std::nullopt;
  if (v.kind != Kind::Integer) fail(n, n.name + "() expects an integer argument");
  return v.i;
}

std::optional<std::string_view> Evaluator::inputString(const Node& n, const Coll& in) const {
  const Item* it = singleton(n, in, (n.name + "()").c_str());
  if (!it) return std::nullopt;
  const Val v = valueOf(*it);
  if (v.ok && v.kind == Kind::String) return v.s;
  if (!v.ok && it->kind_ == Kind::String) return std::nullopt;
  fail(n, n.name + "() applies to strings, not to " +
              std::string(it->typeName().empty() ? "this value" : it->typeName()));
}

// ---- collection comparisons ------------------------------------------------------------------

std::optional<bool> Evaluator::collectionsEqual(const Coll& a, const Coll& b) const {
  if (a.empty() || b.empty()) return std::nullopt;
  if (a.size() != b.size()) return false;
  bool unknown = false;
  for (uint32_t i = 0; i < a.size(); ++i) {
    auto eq = itemsEqual(a[i], b[i]);
    if (!eq) {
      unknown = true;
    } else if (!*eq) {
      return false;
    }
  }
  if (unknown) return std::nullopt;
  return true;
}

bool Evaluator::collectionsEquivalent(const Coll& a, const Coll& b) const {
  if (a.size() != b.size()) return false;
  std::vector<bool> used(b.size(), false);
  for (const Item& x : a) {
    bool found = false;
    for (uint32_t i = 0; i < b.size() && !found; ++i) {
      if (!used[i] && itemsEquivalent(x, b[i])) used[i] = found = true;
    }
    if (!found) return false;
  }
  return true;
}

// ---- evaluation ------------------------------------------------------------------------------

void Evaluator::eval(const Node& n, const Frame& f, Coll& out) {
  switch (n.kind) {
    case NodeKind::Literal:
      out.push_back(n.literal);
      return;
    case NodeKind::EmptySet:
      return;
    case NodeKind::Member: {
      if (!n.lhs) {
        memberOrType(n, *f.input, true, out);
        return;
      }
      Coll src;
      eval(*n.lhs, f, src);
      memberOrType(n, src, false, out);
      return;
    }
    case NodeKind::Function:
      function(n, f, out);
      return;
    case NodeKind::Indexer: {
      Coll src;
      eval(*n.lhs, f, src);
      Coll idx;
      eval(*n.rhs, f, idx);
      const Item* i = singleton(n, idx, "an index");
      if (!i) return;
      const Val v = valueOf(*i);
      if (!v.ok || v.kind != Kind::Integer) fail(n, "an index must be an integer");
      if (v.i >= 0 && v.i < static_cast<int64_t>(src.size())) out.push_back(src[static_cast<uint32_t>(v.i)]);
      return;
    }
    case NodeKind::Negate: {
      Coll c;
      eval(*n.lhs, f, c);
      const Item* it = singleton(n, c, "unary minus");
      if (!it) return;
      const Val v = valueOf(*it);
      if (v.ok && v.kind == Kind::Integer) {
        out.push_back(intItem(-v.i));
      } else if (v.ok && v.kind == Kind::Decimal) {
        out.push_back(decItem(decNegate(v.d)));
      } else if (v.ok && v.kind == Kind::Quantity) {
        out.push_back(quantityItem(decNegate(v.q.value), v.q.unit, v.q.calendar));
      } else {
        fail(n, "unary minus applies to numbers and quantities");
      }
      return;
    }
    case NodeKind::Binary:
      binary(n, f, out);
      return;
    case NodeKind::TypeOp: {
      Coll c;
      eval(*n.lhs, f, c);
      if (n.op == BinOp::Is) {
        const Item* it = singleton(n, c, "'is'");
        if (it) out.push_back(boolItem(isType(*it, n.type, false)));
        return;
      }
      if (c.size() > 1 && !opt_.asFiltersCollections) fail(n, "'as' expects a single item");
      for (const Item& it : c) {
        if (isType(it, n.type, true)) out.push_back(it);
      }
      return;
    }
    case NodeKind::This:
      if (f.self) {
        out.push_back(*f.self);
      } else {
        out.append(*f.input);
      }
      return;
    case NodeKind::Index:
      if (f.index >= 0) out.push_back(intItem(f.index));
      return;
    case NodeKind::Total:
      if (f.total) out.append(*f.total);
      return;
    case NodeKind::Variable: {
      const Value* v = n.var == Var::RootResource ? root_ : resource_;
      if (v) out.push_back(resourceItem(*v));
      return;
    }
  }
}

void Evaluator::binary(const Node& n, const Frame& f, Coll& out) {
  Coll a, b;
  switch (n.op) {
    case BinOp::And: {
      eval(*n.lhs, f, a);
      const auto x = toBool(n, a);
      if (x && !*x) {
        out.push_back(boolItem(false));
        return;
      }
      eval(*n.rhs, f, b);
      const auto y = toBool(n, b);
      if (y && !*y) {
        out.push_back(boolItem(false));
      } else if (x && y) {
        out.push_back(boolItem(true));
      }
      return;
    }
    case BinOp::Or: {
      eval(*n.lhs, f, a);
      const auto x = toBool(n, a);
      if (x && *x) {
        out.push_back(boolItem(true));
        return;
      }
      eval(*n.rhs, f, b);
      const auto y = toBool(n, b);
      if (y && *y) {
        out.push_back(boolItem(true));
      } else if (x && y) {
        out.push_back(boolItem(false));
      }
      return;
    }
    case BinOp::Xor: {
      eval(*n.lhs, f, a);
      eval(*n.rhs, f, b);
      const auto x = toBool(n, a), y = toBool(n, b);
      if (x && y) out.push_back(boolItem(*x != *y));
      return;
    }
    case BinOp::Implies: {
      eval(*n.lhs, f, a);
      const auto x = toBool(n, a);
      if (x && !*x) {
        out.push_back(boolItem(true));
        return;
      }
      eval(*n.rhs, f, b);
      const auto y = toBool(n, b);
      if (y && *y) {
        out.push_back(boolItem(true));
      } else if (x && y) {
        out.push_back(boolItem(false));
      }
      return;
    }
    default:
      break;
  }
  eval(*n.lhs, f, a);
  eval(*n.rhs, f, b);
  switch (n.op) {
    case BinOp::Union: {
      Coll merged;
      distinctInto(a, merged);
      for (const Item& x : b) {
        if (!contains(merged, x)) merged.push_back(x);
      }
      out.append(merged);
      return;
    }
    case BinOp::Eq: case BinOp::Ne: {
      auto eq = collectionsEqual(a, b);
      if (eq) out.push_back(boolItem(n.op == BinOp::Eq ? *eq : !*eq));
      return;
    }
    case BinOp::Equiv: case BinOp::NotEquiv: {
      const bool eq = collectionsEquivalent(a, b);
      out.push_back(boolItem(n.op == BinOp::Equiv ? eq : !eq));
      return;
    }
    case BinOp::Lt: case BinOp::Gt: case BinOp::Le: case BinOp::Ge: {
      const Item* x = singleton(n, a, "a comparison");
      const Item* y = singleton(n, b, "a comparison");
      if (!x || !y) return;
      auto c = compare(n, *x, *y);
      if (!c) return;
      bool r = false;
      switch (n.op) {
        case BinOp::Lt: r = *c < 0; break;
        case BinOp::Gt: r = *c > 0; break;
        case BinOp::Le: r = *c <= 0; break;
        default: r = *c >= 0; break;
      }
      out.push_back(boolItem(r));
      return;
    }
    case BinOp::In: case BinOp::Contains: {
      const Coll& needle = n.op == BinOp::In ? a : b;
      const Coll& hay = n.op == BinOp::In ? b : a;
      const Item* x = singleton(n, needle, "membership");
      if (!x) return;
      out.push_back(boolItem(contains(hay, *x)));
      return;
    }
    case BinOp::Concat: {
      std::string s;
      for (const Coll* c : {&a, &b}) {
        const Item* x = singleton(n, *c, "'&'");
        if (!x) continue;
        const Val v = valueOf(*x);
        if (v.ok && v.kind != Kind::String) fail(n, "'&' concatenates strings");
        s += v.s;
      }
      out.push_back(strItem(store(s)));
      return;
    }
    default: {
      const Item* x = singleton(n, a, "an arithmetic operator");
      const Item* y = singleton(n, b, "an arithmetic operator");
      if (!x || !y) return;
      arithmetic(n, *x, *y, out);
      return;
    }
  }
}

std::optional<int> Evaluator::compare(const Node& n, const Item& a, const Item& b) const {
  const Val va = valueOf(a), vb = valueOf(b);
  if (!va.ok || !vb.ok) {
    const bool complexA = a.kind_ == Kind::Object && va.kind != Kind::Quantity;
    const bool complexB = b.kind_ == Kind::Object && vb.kind != Kind::Quantity;
    if (complexA || complexB) {
      fail(n, "cannot compare complex values");
    }
    return std::nullopt;
  }
  if (isNumeric(va.kind) && isNumeric(vb.kind)) {
    if (va.kind == Kind::Integer && vb.kind == Kind::Integer) return va.i < vb.i ? -1 : (va.i > vb.i ? 1 : 0);
    return decCompare(numeric(va), numeric(vb));
  }
  if (va.kind == Kind::String && vb.kind == Kind::String) {
    const int c = va.s.compare(vb.s);
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if ((isDateLike(va.kind) && isDateLike(vb.kind)) || (va.kind == Kind::Time && vb.kind == Kind::Time)) {
    return compareDateTime(va.dt, vb.dt);
  }
  if (va.kind == Kind::Quantity && vb.kind == Kind::Quantity) {
    auto conv = convertQuantity(vb.q, va.q);
    if (!conv) return std::nullopt;
    return decCompare(va.q.value, *conv);
  }
  fail(n, "cannot compare " + std::string(systemTypeName(va.kind)) + " with " + std::string(systemTypeName(vb.kind)));
}

std::string_view ucumForCalendar(std::string_view unit) {
  auto c = calendarWord(unit);
  if (!c) return unit;
  switch (*c) {
    case CalendarUnit::Year: return "a";
    case CalendarUnit::Month: return "mo";
    case CalendarUnit::Week: return "wk";
    case CalendarUnit::Day: return "d";
    case CalendarUnit::Hour: return "h";
    case CalendarUnit::Minute: return "min";
    case CalendarUnit::Second: return "s";
    case CalendarUnit::Millisecond: return "ms";
  }
  return unit;
}

void Evaluator::arithmetic(const Node& n, const Item& a, const Item& b, Coll& out) {
  const Val va = valueOf(a), vb = valueOf(b);
  if (!va.ok || !vb.ok) {
    if (a.kind_ == Kind::Object || b.kind_ == Kind::Object) fail(n, "arithmetic on complex values");
    return;
  }
  const BinOp op = n.op;
  // Integer arithmetic stays Integer (except '/').
  if (va.kind == Kind::Integer && vb.kind == Kind::Integer && op != BinOp::Div) {
    int64_t r = 0;
    bool overflow = false;
    switch (op) {
      case BinOp::Add: overflow = __builtin_add_overflow(va.i, vb.i, &r); break;
      case BinOp::Sub: overflow = __builtin_sub_overflow(va.i, vb.i, &r); break;
      case BinOp::Mul: overflow = __builtin_mul_overflow(va.i, vb.i, &r); break;
      case BinOp::IntDiv:
        if (vb.i == 0) return;
        r = va.i / vb.i;
        break;
      case BinOp::Mod:
        if (vb.i == 0) return;
        r = va.i % vb.i;
        break;
      default: break;
    }
    if (overflow) fail(n, "integer overflow");
    out.push_back(intItem(r));
    return;
  }
  if (isNumeric(va.kind) && isNumeric(vb.kind)) {
    const Decimal x = numeric(va), y = numeric(vb);
    std::optional<Decimal> r;
    switch (op) {
      case BinOp::Add: r = decAdd(x, y); break;
      case BinOp::Sub: r = decSub(x, y); break;
      case BinOp::Mul: r = decMul(x, y); break;
      case BinOp::Div:
        if (y.mantissa == 0) return;
        r = decDiv(x, y, 8);
        if (r) r = decTrim(*r, std::max(x.scale, y.scale));
        break;
      case BinOp::IntDiv: {
        if (y.mantissa == 0) return;
        auto q = decDiv(x, y, 8);
        auto i = q ? decToInt64(decTruncate(*q, 0)) : std::nullopt;
        if (!i) fail(n, "decimal overflow");
        out.push_back(intItem(*i));
        return;
      }
      case BinOp::Mod: {
        if (y.mantissa == 0) return;
        auto q = decDiv(x, y, 8);
        if (!q) fail(n, "decimal overflow");
        auto prod = decMul(decTruncate(*q, 0), y);
        if (prod) r = decSub(x, *prod);
        break;
      }
      default: break;
    }
    if (!r) fail(n, "decimal overflow");
    out.push_back(decItem(*r));
    return;
  }
  if (va.kind == Kind::String && vb.kind == Kind::String && op == BinOp::Add) {
    std::string s(va.s);
    s += vb.s;
    out.push_back(strItem(store(s)));
    return;
  }
  if ((isDateLike(va.kind) || va.kind == Kind::Time) && vb.kind == Kind::Quantity &&
      (op == BinOp::Add || op == BinOp::Sub)) {
    auto unit = arithmeticUnit(vb.q.unit, vb.q.calendar);
    if (!unit) fail(n, "cannot add '" + std::string(vb.q.unit) + "' to a date/time");
    auto amount = decToInt64(vb.q.value);
    if (!amount) fail(n, "duration out of range");
    auto r = addToDateTime(va.dt, va.kind, *unit, op == BinOp::Add ? *amount : -*amount);
    if (!r) fail(n, "date/time arithmetic out of range");
    out.push_back(dateItem(va.kind, *r));
    return;
  }
  if (va.kind == Kind::Quantity && vb.kind == Kind::Quantity) {
    if (op == BinOp::Add || op == BinOp::Sub) {
      auto conv = convertQuantity(vb.q, va.q);
      if (!conv) return;
      auto r = op == BinOp::Add ? decAdd(va.q.value, *conv) : decSub(va.q.value, *conv);
      if (!r) fail(n, "decimal overflow");
      out.push_back(quantityItem(*r, va.q.unit, va.q.calendar));
      return;
    }
    if (op == BinOp::Mul || op == BinOp::Div) {
      const std::string_view ua = va.q.calendar ? ucumForCalendar(va.q.unit) : va.q.unit;
      const std::string_view ub = vb.q.calendar ? ucumForCalendar(vb.q.unit) : vb.q.unit;
      auto r = op == BinOp::Mul ? decMul(va.q.value, vb.q.value) : decDiv(va.q.value, vb.q.value, 8);
      if (!r) {
        if (op == BinOp::Div) return;
        fail(n, "decimal overflow");
      }
      std::string unit;
      auto wrap = [](std::string_view u) {
        return u.find_first_of("./") == std::string_view::npos ? std::string(u) : "(" + std::string(u) + ")";
      };
      if (op == BinOp::Mul) {
        unit = ua == "1" ? std::string(ub) : ub == "1" ? std::string(ua) : std::string(ua) + "." + wrap(ub);
      } else {
        unit = ub == "1" ? std::string(ua) : (ua == "1" ? "" : std::string(ua)) + "/" + wrap(ub);
        if (ua == ub) unit = "1";
      }
      if (op == BinOp::Div) r = decTrim(*r, std::max(va.q.value.scale, vb.q.value.scale));
      out.push_back(quantityItem(*r, store(unit), false));
      return;
    }
  }
  if (va.kind == Kind::Quantity && isNumeric(vb.kind) && (op == BinOp::Mul || op == BinOp::Div)) {
    auto r = op == BinOp::Mul ? decMul(va.q.value, numeric(vb)) : decDiv(va.q.value, numeric(vb), 8);
    if (!r) return;
    out.push_back(quantityItem(*r, va.q.unit, va.q.calendar));
    return;
  }
  if (isNumeric(va.kind) && vb.kind == Kind::Quantity && op == BinOp::Mul) {
    auto r = decMul(numeric(va), vb.q.value);
    if (!r) fail(n, "decimal overflow");
    out.push_back(quantityItem(*r, vb.q.unit, vb.q.calendar));
    return;
  }
  fail(n, "operator not defined for " + std::string(systemTypeName(va.kind)) + " and " +
              std::string(systemTypeName(vb.kind)));
}

// ---- resolve() -------------------------------------------------------------------------------

void Evaluator::resolve(const Item& it, Coll& out) const {
  std::string_view ref;
  if (it.kind_ == Kind::String) {
    const Val v = valueOf(it);
    if (!v.ok) return;
    ref = v.s;
  } else if (!isComputed(it) && it.json_ && it.json_->IsObject()) {
    const Value* r = member(*it.json_, "reference");
    if (!r || !r->IsString()) return;
    ref = jsonString(*r);
  } else {
    return;
  }
  if (ref.empty()) return;
  auto findContained = [&](const Value* holder, std::string_view id) -> const Value* {
    if (!holder || !holder->IsObject()) return nullptr;
    const Value* contained = member(*holder, "contained");
    if (!contained || !contained->IsArray()) return nullptr;
    for (const Value& c : contained->GetArray()) {
      if (!c.IsObject()) continue;
      const Value* cid = member(c, "id");
      if (cid && cid->IsString() && jsonString(*cid) == id) return &c;
    }
    return nullptr;
  };
  if (ref[0] == '#') {
    if (const Value* c = findContained(resource_, ref.substr(1))) out.push_back(resourceItem(*c));
    return;
  }
  // Strip a version and find "Type/id" at the end.
  std::string_view path = ref;
  if (size_t h = path.find("/_history/"); h != std::string_view::npos) path = path.substr(0, h);
  std::string_view type, id;
  if (size_t slash = path.rfind('/'); slash != std::string_view::npos) {
    id = path.substr(slash + 1);
    std::string_view before = path.substr(0, slash);
    const size_t prev = before.rfind('/');
    type = prev == std::string_view::npos ? before : before.substr(prev + 1);
  }
  // In a Bundle: the entry whose fullUrl is the reference (or ends with Type/id).
  if (root_ && root_->IsObject()) {
    const Value* rt = member(*root_, "resourceType");
    const Value* entries = member(*root_, "entry");
    if (rt && rt->IsString() && jsonString(*rt) == "Bundle" && entries && entries->IsArray()) {
      for (const Value& e : entries->GetArray()) {
        if (!e.IsObject()) continue;
        const Value* full = member(e, "fullUrl");
        const Value* res = member(e, "resource");
        if (!res || !res->IsObject()) continue;
        bool match = full && full->IsString() && jsonString(*full) == ref;
        if (!match && !type.empty()) {
          const Value* rrt = member(*res, "resourceType");
          const Value* rid = member(*res, "id");
          match = rrt && rid && rrt->IsString() && rid->IsString() && jsonString(*rrt) == type &&
                  jsonString(*rid) == id;
        }
        if (match) {
          out.push_back(resourceItem(*res));
          return;
        }
      }
    }
  }
  if (type.empty() || id.empty()) return;
  const int32_t t = model_.impl.typeIndex(type);
  if (t < 0 || !model_.impl.type(static_cast<uint32_t>(t)).isResource) return;
  // Not available here: an object known only by its type (enough for `resolve() is Patient`).
  Item r = computed(Kind::Object);
  r.type_ = t;
  r.node_ = model_.impl.type(static_cast<uint32_t>(t)).node;
  out.push_back(r);
}

void Evaluator::clock() {
  if (clockRead_) return;
  clockRead_ = true;
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  const time_t secs = tv.tv_sec;
  struct tm local;
  localtime_r(&secs, &local);
  now_.year = local.tm_year + 1900;
  now_.month = static_cast<uint8_t>(local.tm_mon + 1);
  now_.day = static_cast<uint8_t>(local.tm_mday);
  now_.hour = static_cast<uint8_t>(local.tm_hour);
  now_.minute = static_cast<uint8_t>(local.tm_min);
  now_.second = static_cast<uint8_t>(std::min(local.tm_sec, 59));
  now_.millisecond = static_cast<uint16_t>(tv.tv_usec / 1000);
  now_.precision = Precision::Millisecond;
  now_.hasOffset = true;
  now_.offsetMinutes = static_cast<int16_t>(local.tm_gmtoff / 60);
}

// ---- functions -------------------------------------------------------------------------------

bool isOrderedFunction(Fn fn) {
  return fn == Fn::First || fn == Fn::Last || fn == Fn::Tail || fn == Fn::Skip || fn == Fn::Take;
}

void Evaluator::function(const Node& n, const Frame& f, Coll& out) {
  Coll received;
  const Coll* inp = f.input;
  if (n.lhs) {
    if (opt_.strict && isOrderedFunction(n.fn) && n.lhs->kind == NodeKind::Function &&
        (n.lhs->fn == Fn::Children || n.lhs->fn == Fn::Descendants)) {
      failSemantic(n, n.name + "() needs an ordered collection; " + n.lhs->name + "() is unordered");
    }
    eval(*n.lhs, f, received);
    inp = &received;
  }
  const Coll& in = *inp;

  // Evaluates argument `a` once per input item with that item as focus and $this.
  auto perItem = [&](size_t a, uint32_t i, Coll& res, const Coll* total = nullptr) {
    Coll single;
    single.push_back(in[i]);
    Frame g{&single, &single[0], static_cast<int64_t>(i), total};
    eval(*n.args[a], g, res);
  };
  auto criterion = [&](uint32_t i) {
    Coll res;
    perItem(0, i, res);
    auto b = toBool(*n.args[0], res);
    return b && *b;
  };

  switch (n.fn) {
    // ---- existence ----
    case Fn::Empty: out.push_back(boolItem(in.empty())); return;
    case Fn::Exists:
      if (n.args.empty()) {
        out.push_back(boolItem(!in.empty()));
      } else {
        bool any = false;
        for (uint32_t i = 0; i < in.size() && !any; ++i) any = criterion(i);
        out.push_back(boolItem(any));
      }
      return;
    case Fn::All: {
      bool all = true;
      for (uint32_t i = 0; i < in.size() && all; ++i) all = criterion(i);
      out.push_back(boolItem(all));
      return;
    }
    case Fn::AllTrue: case Fn::AnyTrue: case Fn::AllFalse: case Fn::AnyFalse: {
      const bool wantAll = n.fn == Fn::AllTrue || n.fn == Fn::AllFalse;
      const bool target = n.fn == Fn::AllTrue || n.fn == Fn::AnyTrue;
      bool result = wantAll;
      for (const Item& it : in) {
        const Val v = valueOf(it);
        if (it.kind_ != Kind::Boolean) fail(n, n.name + "() expects booleans");
        if (!v.ok) continue;
        if (wantAll && v.b != target) result = false;
        if (!wantAll && v.b == target) result = true;
      }
      out.push_back(boolItem(result));
      return;
    }
    case Fn::SubsetOf: case Fn::SupersetOf: {
      Coll other;
      evalArg(n, 0, f, other);
      const Coll& small = n.fn == Fn::SubsetOf ? in : other;
      const Coll& big = n.fn == Fn::SubsetOf ? other : in;
      bool all = true;
      for (const Item& it : small) {
        if (!contains(big, it)) {
          all = false;
          break;
        }
      }
      out.push_back(boolItem(all));
      return;
    }
    case Fn::Count: out.push_back(intItem(in.size())); return;
    case Fn::Distinct: distinctInto(in, out); return;
    case Fn::IsDistinct: {
      Coll d;
      distinctInto(in, d);
      out.push_back(boolItem(d.size() == in.size()));
      return;
    }
    case Fn::Where:
      for (uint32_t i = 0; i < in.size(); ++i) {
        if (criterion(i)) out.push_back(in[i]);
      }
      return;
    case Fn::Select:
      for (uint32_t i = 0; i < in.size(); ++i) perItem(0, i, out);
      return;
    case Fn::Repeat: {
      Coll result;
      Coll frontier = in;
      for (int depth = 0; !frontier.empty() && depth < 10000; ++depth) {
        Coll next;
        for (const Item& it : frontier) {
          Coll single;
          single.push_back(it);
          Frame g{&single, &single[0], -1, nullptr};
          Coll res;
          eval(*n.args[0], g, res);
          for (const Item& r : res) {
            bool seen = false;
            for (const Item& x : result) {
              if (sameItem(x, r)) {
                seen = true;
                break;
              }
            }
            if (!seen) {
              result.push_back(r);
              next.push_back(r);
            }
          }
        }
        frontier = std::move(next);
      }
      out.append(result);
      return;
    }
    case Fn::OfType:
      for (const Item& it : in) {
        if (isType(it, n.type, true)) out.push_back(it);
      }
      return;
    case Fn::As:
      if (in.size() > 1 && !opt_.asFiltersCollections) fail(n, "as() expects a single item");
      for (const Item& it : in) {
        if (isType(it, n.type, true)) out.push_back(it);
      }
      return;
    case Fn::Is: {
      const Item* it = singleton(n, in, "is()");
      if (it) out.push_back(boolItem(isType(*it, n.type, false)));
      return;
    }

    // ---- subsetting ----
    case Fn::First: if (!in.empty()) out.push_back(in[0]); return;
    case Fn::Last: if (!in.empty()) out.push_back(in[in.size() - 1]); return;
    case Fn::Tail: if (in.size() > 1) out.append(in.begin() + 1, in.end()); return;
    case Fn::Skip: case Fn::Take: {
      auto k = integerArg(n, 0, f);
      if (!k) return;
      const int64_t count = std::max<int64_t>(0, *k);
      const uint32_t c = static_cast<uint32_t>(std::min<int64_t>(count, in.size()));
      if (n.fn == Fn::Skip) {
        out.append(in.begin() + c, in.end());
      } else {
        out.append(in.begin(), in.begin() + c);
      }
      return;
    }
    case Fn::Single:
      if (in.size() > 1) fail(n, "single() on " + std::to_string(in.size()) + " items");
      out.append(in);
      return;
    case Fn::Intersect: case Fn::Exclude: {
      Coll other;
      evalArg(n, 0, f, other);
      if (n.fn == Fn::Intersect) {
        Coll r;
        for (const Item& it : in) {
          if (contains(other, it) && !contains(r, it)) r.push_back(it);
        }
        out.append(r);
      } else {
        for (const Item& it : in) {
          if (!contains(other, it)) out.push_back(it);
        }
      }
      return;
    }
    case Fn::Union: {
      Coll other;
      evalArg(n, 0, f, other);
      Coll merged;
      distinctInto(in, merged);
      for (const Item& x : other) {
        if (!contains(merged, x)) merged.push_back(x);
      }
      out.append(merged);
      return;
    }
    case Fn::Combine: {
      Coll other;
      evalArg(n, 0, f, other);
      out.append(in);
      out.append(other);
      return;
    }
    case Fn::Iif: {
      Frame g = f;
      if (n.lhs) {
        if (in.size() > 1) fail(n, "iif() on " + std::to_string(in.size()) + " items");
        g = Frame{&in, in.empty() ? nullptr : &in[0], f.index, f.total};
      }
      Coll crit;
      eval(*n.args[0], g, crit);
      if (opt_.strict && crit.size() == 1 && crit[0].kind_ != Kind::Boolean) {
        failSemantic(*n.args[0], "iif() criterion must be boolean");
      }
      auto b = toBool(*n.args[0], crit);
      if (b && *b) {
        eval(*n.args[1], g, out);
      } else if (n.args.size() > 2) {
        eval(*n.args[2], g, out);
      }
      return;
    }

    // ---- tree navigation, utility ----
    case Fn::Children:
      for (const Item& it : in) children(it, out);
      return;
    case Fn::Descendants: {
      Coll frontier = in;
      for (int depth = 0; !frontier.empty() && depth < 1000; ++depth) {
        Coll next;
        for (const Item& it : frontier) children(it, next);
        out.append(next);
        frontier = std::move(next);
      }
      return;
    }
    case Fn::Trace: {
      auto name = stringArg(n, 0, f);
      if (opt_.trace) {
        Coll shown;
        if (n.args.size() > 1) {
          for (uint32_t i = 0; i < in.size(); ++i) perItem(1, i, shown);
        } else {
          shown = in;
        }
        FhirPathResult r(std::vector<Item>(shown.begin(), shown.end()), storage());
        opt_.trace(name.value_or(""), r);
      }
      out.append(in);
      return;
    }
    case Fn::Now: case Fn::Today: case Fn::TimeOfDay: {
      clock();
      DateTime v = now_;
      if (n.fn == Fn::Today) {
        v.precision = Precision::Day;
        v.hasOffset = false;
        v.offsetMinutes = 0;
        out.push_back(dateItem(Kind::Date, v));
      } else if (n.fn == Fn::TimeOfDay) {
        v.hasOffset = false;
        v.offsetMinutes = 0;
        out.push_back(dateItem(Kind::Time, v));
      } else {
        out.push_back(dateItem(Kind::DateTime, v));
      }
      return;
    }
    case Fn::Not: {
      auto b = toBool(n, in);
      if (b) out.push_back(boolItem(!*b));
      return;
    }
    case Fn::Aggregate: {
      Coll total;
      if (n.args.size() > 1) evalArg(n, 1, f, total);
      for (uint32_t i = 0; i < in.size(); ++i) {
        Coll next;
        perItem(0, i, next, &total);
        total = std::move(next);
      }
      out.append(total);
      return;
    }
    case Fn::Sort: {
      const uint32_t count = in.size();
      const size_t keys = n.args.size();
      std::vector<Coll> keyValues(count * keys);
      for (uint32_t i = 0; i < count; ++i) {
        for (size_t k = 0; k < keys; ++k) {
          const Node& key = *n.args[k];
          Coll single;
          single.push_back(in[i]);
          Frame g{&single, &single[0], static_cast<int64_t>(i), nullptr};
          eval(key.kind == NodeKind::Negate ? *key.lhs : key, g, keyValues[i * keys + k]);
        }
      }
      std::vector<uint32_t> order(count);
      for (uint32_t i = 0; i < count; ++i) order[i] = i;
      // Items whose key is empty come first, in either direction.
      std::stable_sort(order.begin(), order.end(), [&](uint32_t x, uint32_t y) {
        if (keys == 0) return compare(n, in[x], in[y]).value_or(0) < 0;
        for (size_t k = 0; k < keys; ++k) {
          const Coll& a = keyValues[x * keys + k];
          const Coll& b = keyValues[y * keys + k];
          if (a.empty() || b.empty()) {
            if (a.empty() != b.empty()) return a.empty();
            continue;
          }
          int c = compare(n, a[0], b[0]).value_or(0);
          if (n.args[k]->kind == NodeKind::Negate) c = -c;
          if (c != 0) return c < 0;
        }
        return false;
      });
      for (uint32_t i : order) out.push_back(in[i]);
      return;
    }
    case Fn::Type: {
      for (const Item& it : in) {
        Item t = computed(Kind::TypeInfo);
        const std::string_view name = it.typeName();
        t.u_.string.data = name.data();
        t.u_.string.length = static_cast<uint32_t>(name.size());
        if (it.type_ < 0) t.flags_ |= Item::kSystemType;
        out.push_back(t);
      }
      return;
    }

    // ---- FHIR additions ----
    case Fn::Extension: {
      auto url = stringArg(n, 0, f);
      if (!url || model_.extensionType < 0) return;
      for (const Item& it : in) {
        if (isComputed(it)) continue;
        const Value* holder = it.json_ && it.json_->IsObject() ? it.json_ : it.u_.ext;
        if (!holder || !holder->IsObject()) continue;
        const Value* exts = member(*holder, "extension");
        if (!exts || !exts->IsArray()) continue;
        for (const Value& e : exts->GetArray()) {
          if (!e.IsObject()) continue;
          const Value* u = member(e, "url");
          if (!u || !u->IsString() || jsonString(*u) != *url) continue;
          Item x;
          x.kind_ = Kind::Object;
          x.json_ = &e;
          x.type_ = model_.extensionType;
          x.node_ = model_.extensionNode;
          out.push_back(x);
        }
      }
      return;
    }
    case Fn::HasValue: {
      bool has = false;
      if (in.size() == 1 && in[0].kind_ != Kind::Object && in[0].kind_ != Kind::TypeInfo) has = valueOf(in[0]).ok;
      out.push_back(boolItem(has));
      return;
    }
    case Fn::GetValue: {
      if (in.size() != 1 || in[0].kind_ == Kind::Object || in[0].kind_ == Kind::TypeInfo) return;
      const Val v = valueOf(in[0]);
      if (!v.ok) return;
      Item it = in[0];
      it.type_ = -1;  // the System value
      out.push_back(it);
      return;
    }
    case Fn::Resolve:
      for (const Item& it : in) resolve(it, out);
      return;
    case Fn::ConformsTo: {
      auto url = stringArg(n, 0, f);
      if (!url) return;
      constexpr std::string_view kBase = "http://hl7.org/fhir/StructureDefinition/";
      if (url->substr(0, kBase.size()) != kBase) fail(n, "conformsTo(): unknown profile '" + std::string(*url) + "'");
      const int32_t t = model_.impl.typeIndex(url->substr(kBase.size()));
      if (t < 0) fail(n, "conformsTo(): unknown profile '" + std::string(*url) + "'");
      for (const Item& it : in) out.push_back(boolItem(it.type_ >= 0 && model_.derives(it.type_, t)));
      return;
    }
    case Fn::HtmlChecks:
      out.push_back(boolItem(true));
      return;

    case Fn::LowBoundary: case Fn::HighBoundary: case Fn::Precision: case Fn::Comparable:
      boundary(n, f, in, out);
      return;

    case Fn::Abs: case Fn::Ceiling: case Fn::Exp: case Fn::Floor: case Fn::Ln: case Fn::Log: case Fn::Power:
    case Fn::Round: case Fn::Sqrt: case Fn::Truncate:
      mathFunction(n, f, in, out);
      return;

    case Fn::ToBoolean: case Fn::ConvertsToBoolean: case Fn::ToInteger: case Fn::ConvertsToInteger:
    case Fn::ToDecimal: case Fn::ConvertsToDecimal: case Fn::ToString: case Fn::ConvertsToString:
    case Fn::ToDate: case Fn::ConvertsToDate: case Fn::ToDateTime: case Fn::ConvertsToDateTime:
    case Fn::ToTime: case Fn::ConvertsToTime: case Fn::ToQuantity: case Fn::ConvertsToQuantity:
      conversion(n, f, in, out);
      return;

    default:
      stringFunction(n, f, in, out);
      return;
  }
}

// ---- string functions ------------------------------------------------------------------------

const char* const kBase64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64Encode(std::string_view in, bool url) {
  std::string out;
  size_t i = 0;
  while (i < in.size()) {
    const uint32_t b0 = static_cast<unsigned char>(in[i]);
    const uint32_t b1 = i + 1 < in.size() ? static_cast<unsigned char>(in[i + 1]) : 0;
    const uint32_t b2 = i + 2 < in.size() ? static_cast<unsigned char>(in[i + 2]) : 0;
    const uint32_t v = (b0 << 16) | (b1 << 8) | b2;
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += i + 1 < in.size() ? kBase64[(v >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kBase64[v & 63] : '=';
    i += 3;
  }
  if (url) {
    for (char& c : out) {
      if (c == '+') c = '-';
      if (c == '/') c = '_';
    }
  }
  return out;
}

std::optional<std::string> base64Decode(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+' || c == '-') v = 62;
    else if (c == '/' || c == '_') v = 63;
    else if (c == '=') break;
    else return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

void Evaluator::stringFunction(const Node& n, const Frame& f, const Coll& in, Coll& out) {
  if (n.fn == Fn::Join) {
    std::string sep;
    if (!n.args.empty()) {
      auto s = stringArg(n, 0, f);
      if (s) sep = std::string(*s);
    }
    std::string joined;
    bool first = true;
    for (const Item& it : in) {
      const Val v = valueOf(it);
      if (!v.ok) continue;
      if (v.kind != Kind::String) fail(n, "join() expects strings");
      if (!first) joined += sep;
      joined += v.s;
      first = false;
    }
    out.push_back(strItem(store(joined)));
    return;
  }
  auto s = inputString(n, in);
  if (!s) return;
  const std::string_view str = *s;
  auto pushStr = [&](std::string_view v) { out.push_back(strItem(store(v))); };
  switch (n.fn) {
    case Fn::IndexOf: {
      auto sub = stringArg(n, 0, f);
      if (!sub) return;
      const size_t p = str.find(*sub);
      out.push_back(intItem(p == std::string_view::npos ? -1 : static_cast<int64_t>(codePoints(str.substr(0, p)))));
      return;
    }
    case Fn::Substring: {
      auto start = integerArg(n, 0, f);
      if (!start) return;
      const int64_t len = static_cast<int64_t>(codePoints(str));
      if (*start < 0 || *start >= len) return;
      int64_t count = len - *start;
      if (n.args.size() > 1) {
        auto c = integerArg(n, 1, f);
        if (c) count = std::min(count, std::max<int64_t>(0, *c));
      }
      const size_t b = byteOffset(str, static_cast<size_t>(*start));
      const size_t e = byteOffset(str, static_cast<size_t>(*start + count));
      pushStr(str.substr(b, e - b));
      return;
    }
    case Fn::StartsWith: case Fn::EndsWith: case Fn::Contains: {
      auto sub = stringArg(n, 0, f);
      if (!sub) return;
      bool r;
      if (n.fn == Fn::StartsWith) {
        r = str.substr(0, sub->size()) == *sub;
      } else if (n.fn == Fn::EndsWith) {
        r = str.size() >= sub->size() && str.substr(str.size() - sub->size()) == *sub;
      } else {
        r = str.find(*sub) != std::string_view::npos;
      }
      out.push_back(boolItem(r));
      return;
    }
    case Fn::Upper: case Fn::Lower: {
      std::string r(str);
      for (char& c : r) {
        c = static_cast<char>(n.fn == Fn::Upper ? std::toupper(static_cast<unsigned char>(c))
                                                : std::tolower(static_cast<unsigned char>(c)));
      }
      pushStr(r);
      return;
    }
    case Fn::Replace: {
      auto pattern = stringArg(n, 0, f);
      auto subst = stringArg(n, 1, f);
      if (!pattern || !subst) return;
      std::string r;
      if (pattern->empty()) {
        r += *subst;
        for (size_t i = 0; i < str.size();) {
          const size_t next = byteOffset(str.substr(i), 1) + i;
          r += str.substr(i, next - i);
          r += *subst;
          i = next;
        }
      } else {
        size_t pos = 0;
        while (true) {
          const size_t hit = str.find(*pattern, pos);
          if (hit == std::string_view::npos) break;
          r += str.substr(pos, hit - pos);
          r += *subst;
          pos = hit + pattern->size();
        }
        r += str.substr(pos);
      }
      pushStr(r);
      return;
    }
    case Fn::Matches: case Fn::MatchesFull: case Fn::ReplaceMatches: {
      std::unique_ptr<std::regex> dynamic;
      const std::regex* re = n.regex.get();
      std::optional<std::string_view> pattern;
      if (!re) {
        pattern = stringArg(n, 0, f);
        if (!pattern) return;
        if (!pattern->empty()) {
          try {
            dynamic = std::make_unique<std::regex>(singleLinePattern(*pattern), std::regex::ECMAScript);
          } catch (const std::regex_error&) {
            fail(n, "invalid regular expression");
          }
          re = dynamic.get();
        }
      } else {
        pattern = std::string_view(n.args[0]->literalText);
      }
      const std::string subject(str);
      if (n.fn == Fn::ReplaceMatches) {
        auto subst = stringArg(n, 1, f);
        if (!subst) return;
        if (!re || pattern->empty()) {
          pushStr(str);
          return;
        }
        pushStr(std::regex_replace(subject, *re, std::string(*subst)));
        return;
      }
      if (!re) {
        out.push_back(boolItem(n.fn == Fn::Matches || str.empty()));
        return;
      }
      out.push_back(boolItem(n.fn == Fn::Matches ? std::regex_search(subject, *re) : std::regex_match(subject, *re)));
      return;
    }
    case Fn::Length: out.push_back(intItem(static_cast<int64_t>(codePoints(str)))); return;
    case Fn::ToChars:
      for (size_t i = 0; i < str.size();) {
        const size_t next = byteOffset(str.substr(i), 1) + i;
        pushStr(str.substr(i, next - i));
        i = next;
      }
      return;
    case Fn::Trim: {
      size_t b = 0, e = str.size();
      while (b < e && isSpace(str[b])) ++b;
      while (e > b && isSpace(str[e - 1])) --e;
      pushStr(str.substr(b, e - b));
      return;
    }
    case Fn::Split: {
      auto sep = stringArg(n, 0, f);
      if (!sep) return;
      if (sep->empty()) {
        for (size_t i = 0; i < str.size();) {
          const size_t next = byteOffset(str.substr(i), 1) + i;
          pushStr(str.substr(i, next - i));
          i = next;
        }
        return;
      }
      size_t pos = 0;
      while (true) {
        const size_t hit = str.find(*sep, pos);
        if (hit == std::string_view::npos) break;
        pushStr(str.substr(pos, hit - pos));
        pos = hit + sep->size();
      }
      pushStr(str.substr(pos));
      return;
    }
    case Fn::Encode: case Fn::Decode: {
      auto format = stringArg(n, 0, f);
      if (!format) return;
      if (*format == "base64" || *format == "urlbase64") {
        if (n.fn == Fn::Encode) {
          pushStr(base64Encode(str, *format == "urlbase64"));
        } else if (auto d = base64Decode(str)) {
          pushStr(*d);
        }
      } else if (*format == "hex") {
        static const char* kHex = "0123456789abcdef";
        std::string r;
        if (n.fn == Fn::Encode) {
          for (unsigned char c : str) {
            r += kHex[c >> 4];
            r += kHex[c & 15];
          }
        } else {
          if (str.size() % 2) return;
          for (size_t i = 0; i < str.size(); i += 2) {
            auto hex = [](char c) -> int {
              if (c >= '0' && c <= '9') return c - '0';
              c = static_cast<char>(c | 0x20);
              return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            };
            const int hi = hex(str[i]), lo = hex(str[i + 1]);
            if (hi < 0 || lo < 0) return;
            r += static_cast<char>(hi * 16 + lo);
          }
        }
        pushStr(r);
      } else {
        fail(n, "unknown encoding '" + std::string(*format) + "'");
      }
      return;
    }
    case Fn::Escape: case Fn::Unescape: {
      auto format = stringArg(n, 0, f);
      if (!format) return;
      std::string r;
      if (*format == "html") {
        if (n.fn == Fn::Escape) {
          for (char c : str) {
            switch (c) {
              case '&': r += "&amp;"; break;
              case '<': r += "&lt;"; break;
              case '>': r += "&gt;"; break;
              case '"': r += "&quot;"; break;
              case '\'': r += "&#39;"; break;
              default: r += c;
            }
          }
        } else {
          static const std::pair<const char*, char> kEntities[] = {
              {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}, {"&#39;", '\''}};
          for (size_t i = 0; i < str.size();) {
            bool done = false;
            for (const auto& [ent, ch] : kEntities) {
              const size_t len = std::strlen(ent);
              if (str.substr(i, len) == ent) {
                r += ch;
                i += len;
                done = true;
                break;
              }
            }
            if (!done) r += str[i++];
          }
        }
      } else if (*format == "json") {
        if (n.fn == Fn::Escape) {
          for (char c : str) {
            switch (c) {
              case '"': r += "\\\""; break;
              case '\\': r += "\\\\"; break;
              case '\n': r += "\\n"; break;
              case '\r': r += "\\r"; break;
              case '\t': r += "\\t"; break;
              default: r += c;
            }
          }
        } else {
          for (size_t i = 0; i < str.size(); ++i) {
            if (str[i] == '\\' && i + 1 < str.size()) {
              const char e = str[++i];
              switch (e) {
                case 'n': r += '\n'; break;
                case 'r': r += '\r'; break;
                case 't': r += '\t'; break;
                default: r += e;
              }
            } else {
              r += str[i];
            }
          }
        }
      } else {
        fail(n, "unknown escape format '" + std::string(*format) + "'");
      }
      pushStr(r);
      return;
    }
    default:
      // Unreachable: the parser rejects unknown functions and the dispatcher sends only the
      // string group here. Kept as an invariant check rather than undefined behaviour.
      fail(n, "internal error: function " + n.name + "() dispatched to the string group");
  }
}

// ---- math ------------------------------------------------------------------------------------

void Evaluator::mathFunction(const Node& n, const Frame& f, const Coll& in, Coll& out) {
  const Item* it = singleton(n, in, (n.name + "()").c_str());
  if (!it) return;
  const Val v = valueOf(*it);
  if (!v.ok) return;
  if (n.fn == Fn::Abs && v.kind == Kind::Quantity) {
    out.push_back(quantityItem(v.q.value.mantissa < 0 ? decNegate(v.q.value) : v.q.value, v.q.unit, v.q.calendar));
    return;
  }
  if (!isNumeric(v.kind)) fail(n, n.name + "() applies to numbers");
  const Decimal d = numeric(v);
  auto pushDouble = [&](double x) {
    if (std::isfinite(x)) out.push_back(decItem(Decimal::fromDouble(x)));
  };
  auto pushInteger = [&](const Decimal& x) {
    auto i = decToInt64(x);
    if (!i) fail(n, "integer overflow");
    out.push_back(intItem(*i));
  };
  switch (n.fn) {
    case Fn::Abs:
      if (v.kind == Kind::Integer) {
        out.push_back(intItem(v.i < 0 ? -v.i : v.i));
      } else {
        out.push_back(decItem(d.mantissa < 0 ? decNegate(d) : d));
      }
      return;
    case Fn::Ceiling: pushInteger(decCeil(d, 0)); return;
    case Fn::Floor: pushInteger(decFloor(d, 0)); return;
    case Fn::Truncate: pushInteger(decTruncate(d, 0)); return;
    case Fn::Round: {
      int64_t precision = 0;
      if (!n.args.empty()) {
        auto p = integerArg(n, 0, f);
        if (!p) return;
        if (*p < 0) fail(n, "round() precision must not be negative");
        precision = *p;
      }
      out.push_back(decItem(decRound(d, static_cast<int32_t>(std::min<int64_t>(precision, 38)))));
      return;
    }
    case Fn::Exp: pushDouble(std::exp(d.toDouble())); return;
    case Fn::Ln: pushDouble(std::log(d.toDouble())); return;
    case Fn::Sqrt: pushDouble(std::sqrt(d.toDouble())); return;
    case Fn::Log: case Fn::Power: {
      Coll c;
      evalArg(n, 0, f, c);
      const Item* a = singleton(n, c, "the argument");
      if (!a) return;
      const Val av = valueOf(*a);
      if (!av.ok || !isNumeric(av.kind)) fail(n, n.name + "() expects a number");
      if (n.fn == Fn::Log) {
        pushDouble(std::log(d.toDouble()) / std::log(numeric(av).toDouble()));
        return;
      }
      if (v.kind == Kind::Integer && av.kind == Kind::Integer && av.i >= 0) {
        int64_t r = 1;
        for (int64_t i = 0; i < av.i; ++i) {
          if (__builtin_mul_overflow(r, v.i, &r)) fail(n, "integer overflow");
        }
        out.push_back(intItem(r));
        return;
      }
      pushDouble(std::pow(d.toDouble(), numeric(av).toDouble()));
      return;
    }
    default: return;
  }
}

// ---- conversions -----------------------------------------------------------------------------

std::optional<bool> stringToBoolean(std::string_view s) {
  std::string l(s);
  for (char& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (l == "true" || l == "t" || l == "yes" || l == "y" || l == "1" || l == "1.0") return true;
  if (l == "false" || l == "f" || l == "no" || l == "n" || l == "0" || l == "0.0") return false;
  return std::nullopt;
}

bool plainNumber(std::string_view s, bool allowFraction) {
  size_t p = 0;
  if (p < s.size() && (s[p] == '+' || s[p] == '-')) ++p;
  const size_t digits = p;
  while (p < s.size() && s[p] >= '0' && s[p] <= '9') ++p;
  if (p == digits) return false;
  if (p < s.size() && s[p] == '.' && allowFraction) {
    const size_t frac = ++p;
    while (p < s.size() && s[p] >= '0' && s[p] <= '9') ++p;
    if (p == frac) return false;
  }
  return p == s.size();
}

void Evaluator::conversion(const Node& n, const Frame& f, const Coll& in, Coll& out) {
  const Item* it = singleton(n, in, (n.name + "()").c_str());
  if (!it) return;
  const Val v = valueOf(*it);
  if (!v.ok) return;
  Coll result;
  switch (n.fn) {
    case Fn::ToBoolean: case Fn::ConvertsToBoolean: {
      std::optional<bool> b;
      if (v.kind == Kind::Boolean) b = v.b;
      if (v.kind == Kind::Integer && (v.i == 0 || v.i == 1)) b = v.i == 1;
      if (v.kind == Kind::Decimal) {
        if (decCompare(v.d, Decimal{1, 0}) == 0) b = true;
        if (decCompare(v.d, Decimal{0, 0}) == 0) b = false;
      }
      if (v.kind == Kind::String) b = stringToBoolean(v.s);
      if (b) result.push_back(boolItem(*b));
      break;
    }
    case Fn::ToInteger: case Fn::ConvertsToInteger:
      if (v.kind == Kind::Integer) result.push_back(intItem(v.i));
      if (v.kind == Kind::Boolean) result.push_back(intItem(v.b ? 1 : 0));
      if (v.kind == Kind::String && plainNumber(v.s, false)) {
        auto d = Decimal::parse(v.s);
        if (d && d->mantissa <= INT32_MAX && d->mantissa >= INT32_MIN) {
          result.push_back(intItem(static_cast<int64_t>(d->mantissa)));
        }
      }
      break;
    case Fn::ToDecimal: case Fn::ConvertsToDecimal:
      if (isNumeric(v.kind)) result.push_back(decItem(numeric(v)));
      if (v.kind == Kind::Boolean) result.push_back(decItem(Decimal{v.b ? 10 : 0, 1}));
      if (v.kind == Kind::String && plainNumber(v.s, true)) {
        if (auto d = Decimal::parse(v.s)) result.push_back(decItem(*d));
      }
      break;
    case Fn::ToString: case Fn::ConvertsToString:
      if (auto s = stringOf(*it)) {
        result.push_back(v.kind == Kind::String ? strItem(v.s) : strItem(store(*s)));
      }
      break;
    case Fn::ToDate: case Fn::ConvertsToDate: {
      if (isDateLike(v.kind)) {
        DateTime d = v.dt;
        if (static_cast<int>(d.precision) > static_cast<int>(Precision::Day)) d.precision = Precision::Day;
        d.hasOffset = false;
        d.offsetMinutes = 0;
        result.push_back(dateItem(Kind::Date, d));
      } else if (v.kind == Kind::String) {
        Kind k;
        if (auto d = parseDateTime(v.s, k, false)) {
          if (static_cast<int>(d->precision) > static_cast<int>(Precision::Day)) d->precision = Precision::Day;
          d->hasOffset = false;
          result.push_back(dateItem(Kind::Date, *d));
        }
      }
      break;
    }
    case Fn::ToDateTime: case Fn::ConvertsToDateTime:
      if (isDateLike(v.kind)) {
        result.push_back(dateItem(Kind::DateTime, v.dt));
      } else if (v.kind == Kind::String) {
        Kind k;
        if (auto d = parseDateTime(v.s, k, false)) result.push_back(dateItem(Kind::DateTime, *d));
      }
      break;
    case Fn::ToTime: case Fn::ConvertsToTime:
      if (v.kind == Kind::Time) {
        result.push_back(dateItem(Kind::Time, v.dt));
      } else if (v.kind == Kind::String) {
        std::string_view s = v.s;
        if (!s.empty() && s[0] == 'T') s.remove_prefix(1);
        if (auto d = parseTime(s)) result.push_back(dateItem(Kind::Time, *d));
      }
      break;
    case Fn::ToQuantity: case Fn::ConvertsToQuantity: {
      std::optional<QuantityValue> q;
      if (v.kind == Kind::Quantity) {
        q = v.q;
      } else if (isNumeric(v.kind)) {
        q = QuantityValue{numeric(v), "1", false};
      } else if (v.kind == Kind::Boolean) {
        q = QuantityValue{Decimal{v.b ? 10 : 0, 1}, "1", false};
      } else if (v.kind == Kind::String) {
        std::string_view s = v.s;
        size_t p = 0;
        if (p < s.size() && (s[p] == '+' || s[p] == '-')) ++p;
        while (p < s.size() && ((s[p] >= '0' && s[p] <= '9') || s[p] == '.')) ++p;
        const std::string_view number = s.substr(0, p);
        std::string_view rest = s.substr(p);
        while (!rest.empty() && rest[0] == ' ') rest.remove_prefix(1);
        if (plainNumber(number, true)) {
          auto d = Decimal::parse(number);
          if (rest.empty()) {
            q = QuantityValue{*d, "1", false};
          } else if (rest.size() >= 2 && rest.front() == '\'' && rest.back() == '\'') {
            q = QuantityValue{*d, store(rest.substr(1, rest.size() - 2)), false};
          } else if (calendarWord(rest)) {
            q = QuantityValue{*d, store(rest), true};
          }
        }
      }
      if (q && !n.args.empty()) {
        auto unit = stringArg(n, 0, f);
        if (!unit) return;
        auto conv = convertQuantity(*q, QuantityValue{Decimal{}, *unit, false});
        q = conv ? std::optional<QuantityValue>(QuantityValue{*conv, store(*unit), false}) : std::nullopt;
      }
      if (q) result.push_back(quantityItem(q->value, q->unit, q->calendar));
      break;
    }
    default:
      break;
  }
  const bool converts = n.fn == Fn::ConvertsToBoolean || n.fn == Fn::ConvertsToInteger ||
                        n.fn == Fn::ConvertsToDecimal || n.fn == Fn::ConvertsToString || n.fn == Fn::ConvertsToDate ||
                        n.fn == Fn::ConvertsToDateTime || n.fn == Fn::ConvertsToTime ||
                        n.fn == Fn::ConvertsToQuantity;
  if (converts) {
    out.push_back(boolItem(!result.empty()));
  } else {
    out.append(result);
  }
}

// ---- lowBoundary / highBoundary / precision / comparable -------------------------------------

void Evaluator::boundary(const Node& n, const Frame& f, const Coll& in, Coll& out) {
  const Item* it = singleton(n, in, (n.name + "()").c_str());
  if (!it) return;
  const Val v = valueOf(*it);
  if (!v.ok) return;
  if (n.fn == Fn::Comparable) {
    Coll c;
    evalArg(n, 0, f, c);
    const Item* o = singleton(n, c, "the argument");
    if (!o) return;
    const Val ov = valueOf(*o);
    if (v.kind != Kind::Quantity || !ov.ok || ov.kind != Kind::Quantity) fail(n, "comparable() applies to quantities");
    auto a = parseUnit(v.q.unit, v.q.calendar);
    auto b = parseUnit(ov.q.unit, ov.q.calendar);
    out.push_back(boolItem(a && b && a->sameDims(*b)));
    return;
  }
  if (n.fn == Fn::Precision) {
    if (v.kind == Kind::Decimal) out.push_back(intItem(v.d.scale));
    if (v.kind == Kind::Integer) out.push_back(intItem(0));
    if (isDateLike(v.kind) || v.kind == Kind::Time) out.push_back(intItem(dateTimePrecisionDigits(v.dt, v.kind)));
    return;
  }
  const bool high = n.fn == Fn::HighBoundary;
  std::optional<int64_t> digits;
  if (!n.args.empty()) {
    digits = integerArg(n, 0, f);
    if (!digits) return;
  }
  if (isDateLike(v.kind) || v.kind == Kind::Time) {
    const int d = digits ? static_cast<int>(*digits) : (v.kind == Kind::Date ? 8 : v.kind == Kind::Time ? 9 : 17);
    Kind rk;
    if (auto r = dateTimeBoundary(v.dt, v.kind, d, high, rk)) out.push_back(dateItem(rk, *r));
    return;
  }
  Decimal d;
  if (isNumeric(v.kind)) {
    d = numeric(v);
  } else if (v.kind == Kind::Quantity) {
    d = v.q.value;
  } else {
    fail(n, n.name + "() applies to numbers, quantities and dates");
  }
  const int64_t p = digits.value_or(8);
  if (p < 0 || p > 28) return;
  // The value stands for the interval of +/- half a unit in its last digit.
  const Decimal edge = high ? *decAdd(d, Decimal{5, d.scale + 1}) : *decSub(d, Decimal{5, d.scale + 1});
  Decimal r = high ? decCeil(edge, static_cast<int32_t>(p)) : decFloor(edge, static_cast<int32_t>(p));
  // Below the requested precision the boundary is zero.
  if (decCompare(edge.mantissa < 0 ? decNegate(edge) : edge, Decimal{1, static_cast<int32_t>(p)}) < 0) {
    r = Decimal{0, static_cast<int32_t>(p)};
  }
  if (v.kind == Kind::Quantity) {
    out.push_back(quantityItem(r, v.q.unit, v.q.calendar));
  } else {
    out.push_back(decItem(r));
  }
}

}  // namespace
}  // namespace fhirpath

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

std::string_view FhirPathItem::typeName() const {
  if (kind_ == FhirPathKind::TypeInfo) return std::string_view(u_.string.data, u_.string.length);
  if (type_ >= 0) return fhirpath::ModelInfo::get().impl.type(static_cast<uint32_t>(type_)).name;
  return fhirpath::systemTypeName(kind_);
}

std::string_view FhirPathItem::typeNamespace() const {
  if (kind_ == FhirPathKind::TypeInfo) return (flags_ & kSystemType) ? "System" : "FHIR";
  if (type_ >= 0) return "FHIR";
  return kind_ == FhirPathKind::Object ? "" : "System";
}

bool FhirPathItem::hasValue() const { return fhirpath::valueOf(*this).ok || kind_ == FhirPathKind::Object; }

bool FhirPathItem::booleanValue() const { return fhirpath::valueOf(*this).b; }
int64_t FhirPathItem::integerValue() const { return fhirpath::valueOf(*this).i; }
FhirPathDecimal FhirPathItem::decimalValue() const { return fhirpath::numeric(fhirpath::valueOf(*this)); }
std::string_view FhirPathItem::stringValue() const { return fhirpath::valueOf(*this).s; }
FhirPathDateTime FhirPathItem::dateTimeValue() const { return fhirpath::valueOf(*this).dt; }
FhirPathDecimal FhirPathItem::quantityValue() const { return fhirpath::valueOf(*this).q.value; }
std::string_view FhirPathItem::quantityUnit() const { return fhirpath::valueOf(*this).q.unit; }
std::string FhirPathItem::toString() const { return fhirpath::stringOf(*this).value_or(std::string()); }

std::optional<bool> FhirPathResult::asBoolean() const {
  if (items_.empty()) return std::nullopt;
  if (items_.size() > 1) {
    throw FhirPathError(FhirPathError::Kind::Execution, std::string::npos,
                        "FHIRPath: a boolean was expected but the result has " + std::to_string(items_.size()) +
                            " items");
  }
  if (items_[0].kind() != FhirPathKind::Boolean) return true;
  const auto v = fhirpath::valueOf(items_[0]);
  if (!v.ok) return std::nullopt;
  return v.b;
}

namespace {
FhirPathResult run(const std::shared_ptr<const FhirPathExpression::Ast>& ast, const rapidjson::Value* resource,
                   const FhirPathItem* focus, const FhirPathOptions& options) {
  fhirpath::Evaluator ev(options, ast, resource);
  fhirpath::Coll input;
  if (focus) {
    input.push_back(*focus);
  } else if (resource) {
    input.push_back(ev.resourceItem(*resource));
  }
  fhirpath::Frame frame{&input};
  fhirpath::Coll out;
  ev.eval(*ast->root, frame, out);
  // Results that point at computed strings or literals keep their storage (and the tree) alive.
  bool needsStorage = ev.hasStorage();
  for (const FhirPathItem& it : out) {
    if (!it.isJsonBacked() && (it.kind() == FhirPathKind::String || it.kind() == FhirPathKind::Quantity)) {
      needsStorage = true;
    }
  }
  std::shared_ptr<const void> storage;
  if (needsStorage) storage = ev.storage();
  return FhirPathResult(std::vector<FhirPathItem>(out.begin(), out.end()), std::move(storage));
}
}  // namespace

FhirPathResult FhirPathExpression::evaluate(const rapidjson::Value& resource, const FhirPathOptions& options) const {
  return run(ast_, &resource, nullptr, options);
}

FhirPathResult FhirPathExpression::evaluate(const FhirPathItem& focus, const rapidjson::Value& resource,
                                            const FhirPathOptions& options) const {
  return run(ast_, &resource, &focus, options);
}

FhirPathResult FhirPathExpression::evaluate(const FhirPathOptions& options) const {
  return run(ast_, nullptr, nullptr, options);
}

}  // namespace hearth::fhir
