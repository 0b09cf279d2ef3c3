#pragma once
// FHIRPath for Hearth: the expression language of the FHIR R4 SearchParameters and invariants
// (FHIRPath N1 plus the FHIR additions: extension(), resolve(), conformsTo(), %ucum ...).
//
// An expression is parsed once into an immutable tree (FhirPathExpression) and can then be
// evaluated any number of times, from any number of threads at once, against parsed JSON
// resources (rapidjson::Value). Evaluation walks the JSON in place: a result item is a pointer
// to the JSON element plus the FHIR type the generated R4 model gives it (so `value` of an
// Observation holding `valueQuantity` is an item of type Quantity, and ofType()/is/as work on
// choice elements), or a value the expression computed (numbers, strings, dates, quantities).
//
// Lifetime: a FhirPathResult points into the evaluated JSON, which must outlive it; computed
// strings are owned by the result itself.
#include <rapidjson/document.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::fhir {

// A failure to parse or evaluate an expression. Syntax and (most) semantic errors surface from
// FhirPathExpression::parse; execution errors (a function applied to several items, a string
// compared with a number ...) from evaluate(). `position` is the byte offset in the expression
// text of the offending token or operator, or npos when not applicable.
class FhirPathError : public std::runtime_error {
 public:
  enum class Kind { Syntax, Semantic, Execution };
  FhirPathError(Kind kind, size_t position, const std::string& message);
  Kind kind() const noexcept { return kind_; }
  size_t position() const noexcept { return position_; }

 private:
  Kind kind_;
  size_t position_;
};

// An exact decimal: mantissa / 10^scale (FHIRPath Decimal; FHIR decimals keep their precision,
// so 1.50 has scale 2). Arithmetic that cannot stay exact (division, sqrt ...) keeps 8 or more
// decimal places.
struct FhirPathDecimal {
  __int128 mantissa = 0;
  int32_t scale = 0;

  static std::optional<FhirPathDecimal> parse(std::string_view text);  // [+-]digits[.digits]
  static FhirPathDecimal fromInteger(int64_t v) { return FhirPathDecimal{v, 0}; }
  static FhirPathDecimal fromDouble(double v);  // shortest text that round-trips
  std::string toString() const;                 // "1.50", "-0.5", "3"
  double toDouble() const;
};

// A FHIRPath Date, DateTime or Time with the precision it was written with. A Date uses the date
// fields only, a Time the time fields only. Second precision may carry milliseconds.
struct FhirPathDateTime {
  enum class Precision : uint8_t { Year, Month, Day, Hour, Minute, Second, Millisecond };
  int32_t year = 0;
  uint8_t month = 1, day = 1, hour = 0, minute = 0, second = 0;
  uint16_t millisecond = 0;
  Precision precision = Precision::Year;
  bool hasOffset = false;     // a time-zone offset was given ("Z" is +00:00)
  int16_t offsetMinutes = 0;  // east of UTC
};

enum class FhirPathKind : uint8_t {
  Boolean, Integer, Decimal, String, Date, DateTime, Time, Quantity,
  Object,    // a complex value: resource, data type or backbone element (JSON object), or a
             // resolve() target that is only known by its type
  TypeInfo,  // the result of type(): typeName() / typeNamespace()
};

// One item of a result collection. FHIR primitives read from the JSON report the kind of their
// FHIRPath value (a FHIR `code` is a String, `instant` a DateTime, `positiveInt` an Integer) and
// keep their FHIR type name; values computed by the expression have System types.
struct FhirPathItem {
  FhirPathKind kind() const { return kind_; }
  // FHIR type name from the model: "HumanName", "code", "Patient", "BackboneElement" ...;
  // for System values "Boolean", "Integer", "String" ...; empty for JSON objects the model does
  // not know. For a TypeInfo item (the result of type()): the type it describes.
  std::string_view typeName() const;
  // "FHIR", "System" or "" (untyped JSON objects); for TypeInfo: the described type's namespace.
  std::string_view typeNamespace() const;
  // The element in the evaluated JSON (an object, or a primitive's JSON value); nullptr for
  // computed values and for primitives that carry only an id / extensions.
  const rapidjson::Value* json() const { return json_; }
  // The `_name` companion of a primitive read from JSON (its id / extensions), else nullptr.
  const rapidjson::Value* primitiveExtension() const { return isJsonBacked() ? u_.ext : nullptr; }
  // False only for a primitive that has extensions but no value.
  bool hasValue() const;

  // Value accessors; each requires the matching kind() (and hasValue()).
  bool booleanValue() const;
  int64_t integerValue() const;
  FhirPathDecimal decimalValue() const;       // Decimal (an Integer converts)
  std::string_view stringValue() const;       // String
  FhirPathDateTime dateTimeValue() const;     // Date, DateTime, Time
  FhirPathDecimal quantityValue() const;      // computed Quantity
  std::string_view quantityUnit() const;      // computed Quantity: UCUM code or calendar word
  // The FHIRPath string form (toString()); objects give "".
  std::string toString() const;

  // ---- representation (written by the evaluator; read it through the accessors above) ----
  bool isJsonBacked() const { return (flags_ & kComputed) == 0; }
  static constexpr uint8_t kComputed = 1;     // payload holds the value (no JSON behind it)
  static constexpr uint8_t kCalendarUnit = 2; // Quantity: unit is a calendar word (year, days ...)
  static constexpr uint8_t kSystemType = 4;   // TypeInfo: namespace System (else FHIR)
  struct Quantity {
    FhirPathDecimal value;
    const char* unit;
    uint32_t unitLength;
  };
  FhirPathKind kind_ = FhirPathKind::Object;
  uint8_t flags_ = 0;
  int32_t type_ = -1;   // model type index (FHIR types), -1 for System values / untyped JSON
  int32_t node_ = -1;   // model node whose elements are this value's children, -1 if none
  const rapidjson::Value* json_ = nullptr;
  union Payload {
    const rapidjson::Value* ext;  // JSON-backed primitive: the `_name` companion, or nullptr
    bool boolean;
    int64_t integer;
    FhirPathDecimal decimal;
    struct { const char* data; uint32_t length; } string;  // String; TypeInfo: the type name
    FhirPathDateTime dateTime;
    Quantity quantity;
    Payload() : ext(nullptr) {}
  } u_;
};

// The items an evaluation produced, in order, plus the storage of the strings it computed.
class FhirPathResult {
 public:
  FhirPathResult() = default;
  FhirPathResult(std::vector<FhirPathItem> items, std::shared_ptr<const void> storage)
      : items_(std::move(items)), storage_(std::move(storage)) {}
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  const FhirPathItem& operator[](size_t i) const { return items_[i]; }
  std::vector<FhirPathItem>::const_iterator begin() const { return items_.begin(); }
  std::vector<FhirPathItem>::const_iterator end() const { return items_.end(); }
  const std::vector<FhirPathItem>& items() const { return items_; }
  // FHIRPath boolean conversion of the whole collection: empty → nullopt, one Boolean → it,
  // one other item → true; throws FhirPathError (Execution) for several items.
  std::optional<bool> asBoolean() const;

 private:
  std::vector<FhirPathItem> items_;
  std::shared_ptr<const void> storage_;
};

struct FhirPathOptions {
  // Semantic checks of the conformance suite's strict mode: names the R4 model does not know
  // (`Patient.nmae`, `(Observation.value as Period).unit`) and a type name that is not the
  // context's (`Encounter.name` on a Patient) are errors instead of empty results; so are
  // ordered functions on children()/descendants() and non-boolean iif() criteria.
  bool strict = false;
  // `as` on a collection of several items: the FHIRPath spec makes it an error; the published
  // R4 search parameter expressions (`Group.characteristic.value.as(CodeableConcept)`) rely on
  // it filtering like ofType(). Search indexing sets this.
  bool asFiltersCollections = false;
  // %rootResource when it differs from the evaluated resource (a resource inside a Bundle);
  // resolve() looks up references among its entries (by fullUrl, or by type and id).
  const rapidjson::Value* rootResource = nullptr;
  // Receives trace(name [, projection]) calls; nullptr ignores them.
  std::function<void(std::string_view name, const FhirPathResult& items)> trace;
};

// A parsed expression: immutable, cheap to copy (shared tree), safe to evaluate concurrently.
//
// Semantics follow FHIRPath N1 as the R4 conformance suite tests it. Notes for Hearth's uses:
//  - resolve() on a Reference yields the referenced resource when it is contained ("#id") or in
//    the Bundle given as rootResource; otherwise, for "Type/id" (relative or absolute, with or
//    without _history), an Object item that only knows its type: enough for
//    `resolve() is Patient`, empty for any navigation below it;
//  - as()/ofType() match primitive types exactly (a `code` is not `as string`), complex types
//    and resources with their derivations (Age as Quantity); `is` follows derivation for both;
//  - now()/today() read the local clock once per evaluation.
class FhirPathExpression {
 public:
  struct Ast;  // the parsed tree (fhir/src/fhirpath_ast.h)

  // Parses `text`; throws FhirPathError (Syntax with the byte position, or Semantic for unknown
  // functions, wrong argument counts and unknown type names).
  static FhirPathExpression parse(std::string_view text);

  // Evaluates against a resource (its %resource / %context and the initial focus). Throws
  // FhirPathError (Execution, or Semantic for JSON names such as `valueQuantity` and for the
  // checks of options.strict).
  FhirPathResult evaluate(const rapidjson::Value& resource, const FhirPathOptions& options = {}) const;
  // Evaluates with `focus` (an item of an earlier result over `resource`, e.g. one match of a
  // composite search parameter) as the initial focus; %resource is `resource`. The result that
  // `focus` came from must outlive this call's result if `focus` is a computed string.
  FhirPathResult evaluate(const FhirPathItem& focus, const rapidjson::Value& resource,
                          const FhirPathOptions& options = {}) const;
  // Evaluates with an empty focus (expressions made only of literals and functions).
  FhirPathResult evaluate(const FhirPathOptions& options = {}) const;

  const std::string& text() const;

 private:
  explicit FhirPathExpression(std::shared_ptr<const Ast> ast) : ast_(std::move(ast)) {}
  std::shared_ptr<const Ast> ast_;
};

// Formats a date/time value as FHIRPath writes it ("2015-02-04T14:34:28.123+10:00", "14:34",
// "2015-02"); `kind` is Date, DateTime or Time.
std::string formatFhirPathDateTime(const FhirPathDateTime& value, FhirPathKind kind);

}  // namespace hearth::fhir
