#pragma once
// The parsed form of a FHIRPath expression, produced by fhirpath_parser.cpp and walked by
// fhirpath_eval.cpp. A tree is built once and never modified afterwards, so any number of
// threads may evaluate it at once. Everything that can be decided from the text alone is
// decided at parse time: function identity and arity, type specifiers resolved against the R4
// model, constant variables (%ucum ...) turned into literals, regular expressions compiled.
#include <cstdint>
#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/fhir/fhirpath.h"

namespace hearth::fhir::fhirpath {

enum class NodeKind : uint8_t {
  Literal,   // `literal` (a computed item)
  EmptySet,  // {}
  Member,    // identifier: `name` on `lhs`, or on the focus when lhs is null
  Function,  // `fn` applied to `lhs` (or the focus) with `args`
  Indexer,   // lhs[rhs]
  Negate,    // -lhs (unary plus is dropped by the parser)
  Binary,    // lhs `op` rhs
  TypeOp,    // lhs is/as `type` (op Is or As)
  This,      // $this
  Index,     // $index
  Total,     // $total
  Variable,  // %resource, %rootResource, %context
};

enum class BinOp : uint8_t {
  Mul, Div, IntDiv, Mod, Add, Sub, Concat, Union, Lt, Gt, Le, Ge, Eq, Ne, Equiv, NotEquiv,
  In, Contains, And, Or, Xor, Implies, Is, As,
};

enum class Var : uint8_t { Resource, RootResource, Context };

enum class Fn : uint8_t {
  // existence and filtering
  Empty, Exists, All, AllTrue, AnyTrue, AllFalse, AnyFalse, SubsetOf, SupersetOf, Count, Distinct,
  IsDistinct, Where, Select, Repeat, OfType, As, Is,
  // subsetting and combining
  First, Last, Tail, Skip, Take, Single, Intersect, Exclude, Union, Combine,
  Iif,
  // conversion
  ToBoolean, ConvertsToBoolean, ToInteger, ConvertsToInteger, ToDecimal, ConvertsToDecimal,
  ToString, ConvertsToString, ToDate, ConvertsToDate, ToDateTime, ConvertsToDateTime, ToTime,
  ConvertsToTime, ToQuantity, ConvertsToQuantity,
  // strings
  IndexOf, Substring, StartsWith, EndsWith, Contains, Upper, Lower, Replace, Matches, MatchesFull,
  ReplaceMatches, Length, ToChars, Trim, Split, Join, Encode, Decode, Escape, Unescape,
  // math
  Abs, Ceiling, Exp, Floor, Ln, Log, Power, Round, Sqrt, Truncate,
  // tree navigation and utility
  Children, Descendants, Trace, Now, Today, TimeOfDay, Not, Aggregate, Sort,
  LowBoundary, HighBoundary, Precision, Comparable, Type,
  // FHIR additions
  Extension, HasValue, GetValue, Resolve, ConformsTo, HtmlChecks,
};

// A type named in `is`, `as`, ofType(): a model type, a System type, or both for an unqualified
// name that is both ("Quantity").
struct TypeSpec {
  std::string text;         // as written (messages)
  int32_t fhirType = -1;    // model type index
  int8_t systemKind = -1;   // FhirPathKind of a System type
};

struct Node {
  NodeKind kind = NodeKind::Literal;
  BinOp op = BinOp::Add;
  Fn fn = Fn::Empty;
  Var var = Var::Resource;
  uint32_t pos = 0;           // byte offset in the expression text
  std::string name;           // Member: element name; Function: function name
  int32_t typeName = -1;      // Member on the focus: the model type this identifier names, if any
  std::unique_ptr<Node> lhs;  // receiver / left or only operand
  std::unique_ptr<Node> rhs;  // right operand / index
  std::vector<std::unique_ptr<Node>> args;
  FhirPathItem literal;       // Literal (strings point into literalText)
  std::string literalText;
  TypeSpec type;              // TypeOp, ofType / as / is
  std::unique_ptr<const std::regex> regex;  // matches / matchesFull / replaceMatches on a literal
};

// Rewrites a regular expression for FHIRPath's single-line mode ('.' also matches line breaks)
// in ECMAScript syntax.
std::string singleLinePattern(std::string_view pattern);

}  // namespace hearth::fhir::fhirpath

namespace hearth::fhir {
struct FhirPathExpression::Ast {
  std::string text;
  std::unique_ptr<fhirpath::Node> root;
};
}  // namespace hearth::fhir
