// FHIRPath lexer and recursive-descent parser (grammar and operator precedence of FHIRPath N1,
// http://hl7.org/fhirpath/N1/grammar.html). Produces the immutable tree of fhirpath_ast.h.
#include <algorithm>
#include <cstring>
#include <string_view>

#include "fhirpath_ast.h"
#include "fhirpath_values.h"
#include "model_impl.h"

namespace hearth::fhir {

FhirPathError::FhirPathError(Kind kind, size_t position, const std::string& message)
    : std::runtime_error(message), kind_(kind), position_(position) {}

namespace fhirpath {
namespace {

[[noreturn]] void syntaxError(size_t pos, const std::string& what) {
  throw FhirPathError(FhirPathError::Kind::Syntax, pos,
                      "FHIRPath syntax error at position " + std::to_string(pos) + ": " + what);
}

[[noreturn]] void semanticError(size_t pos, const std::string& what) {
  throw FhirPathError(FhirPathError::Kind::Semantic, pos,
                      "FHIRPath error at position " + std::to_string(pos) + ": " + what);
}

// ---------------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------------

enum class Tok : uint8_t {
  End, Ident, DelimIdent, String, Number, Date, DateTime, Time, Variable, Dollar, Punct,
};

struct Token {
  Tok type = Tok::End;
  size_t pos = 0;
  std::string text;  // identifier / string (unescaped) / number text / punctuation / variable name
  DateTime dateTime;
};

bool isIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool isIdentChar(char c) { return isIdentStart(c) || (c >= '0' && c <= '9'); }

void appendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  std::vector<Token> run() {
    std::vector<Token> out;
    while (true) {
      skipSpaceAndComments();
      Token t;
      t.pos = p_;
      if (p_ >= s_.size()) {
        out.push_back(std::move(t));
        return out;
      }
      const char c = s_[p_];
      if (isIdentStart(c)) {
        const size_t start = p_;
        while (p_ < s_.size() && isIdentChar(s_[p_])) ++p_;
        t.type = Tok::Ident;
        t.text = std::string(s_.substr(start, p_ - start));
      } else if (c == '`') {
        t.type = Tok::DelimIdent;
        t.text = quoted('`');
      } else if (c == '\'') {
        t.type = Tok::String;
        t.text = quoted('\'');
      } else if (c >= '0' && c <= '9') {
        const size_t start = p_;
        while (p_ < s_.size() && s_[p_] >= '0' && s_[p_] <= '9') ++p_;
        if (p_ + 1 < s_.size() && s_[p_] == '.' && s_[p_ + 1] >= '0' && s_[p_ + 1] <= '9') {
          ++p_;
          while (p_ < s_.size() && s_[p_] >= '0' && s_[p_] <= '9') ++p_;
        }
        t.type = Tok::Number;
        t.text = std::string(s_.substr(start, p_ - start));
      } else if (c == '@') {
        ++p_;
        size_t used = 0;
        if (p_ < s_.size() && s_[p_] == 'T') {
          auto v = parseTime(s_.substr(p_ + 1), &used);
          if (!v) syntaxError(t.pos, "malformed time literal");
          t.type = Tok::Time;
          t.dateTime = *v;
          p_ += 1 + used;
        } else {
          FhirPathKind kind;
          auto v = parseDateTime(s_.substr(p_), kind, true, &used);
          if (!v) syntaxError(t.pos, "malformed date/time literal");
          t.type = kind == FhirPathKind::Date ? Tok::Date : Tok::DateTime;
          t.dateTime = *v;
          p_ += used;
        }
        if (p_ < s_.size() && isIdentChar(s_[p_])) syntaxError(p_, "malformed date/time literal");
      } else if (c == '%') {
        ++p_;
        t.type = Tok::Variable;
        if (p_ < s_.size() && s_[p_] == '`') {
          t.text = quoted('`');
        } else if (p_ < s_.size() && s_[p_] == '\'') {
          t.text = quoted('\'');
        } else if (p_ < s_.size() && isIdentStart(s_[p_])) {
          const size_t start = p_;
          while (p_ < s_.size() && isIdentChar(s_[p_])) ++p_;
          t.text = std::string(s_.substr(start, p_ - start));
        } else {
          syntaxError(t.pos, "expected a variable name after '%'");
        }
      } else if (c == '$') {
        const size_t start = ++p_;
        while (p_ < s_.size() && isIdentChar(s_[p_])) ++p_;
        t.type = Tok::Dollar;
        t.text = std::string(s_.substr(start, p_ - start));
        if (t.text != "this" && t.text != "index" && t.text != "total") {
          syntaxError(t.pos, "unknown special variable '$" + t.text + "'");
        }
      } else {
        t.type = Tok::Punct;
        static const char* const kTwo[] = {"!=", "!~", "<=", ">="};
        for (const char* two : kTwo) {
          if (s_.substr(p_, 2) == two) t.text = two;
        }
        if (t.text.empty()) {
          if (std::strchr(".,()[]{}+-*/&|=~<>", c) == nullptr) {
            syntaxError(p_, std::string("unexpected character '") + c + "'");
          }
          t.text = std::string(1, c);
        }
        p_ += t.text.size();
      }
      out.push_back(std::move(t));
    }
  }

 private:
  void skipSpaceAndComments() {
    while (p_ < s_.size()) {
      const char c = s_[p_];
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f') {
        ++p_;
      } else if (c == '/' && p_ + 1 < s_.size() && s_[p_ + 1] == '/') {
        while (p_ < s_.size() && s_[p_] != '\n') ++p_;
      } else if (c == '/' && p_ + 1 < s_.size() && s_[p_ + 1] == '*') {
        const size_t end = s_.find("*/", p_ + 2);
        if (end == std::string_view::npos) syntaxError(p_, "unterminated comment");
        p_ = end + 2;
      } else {
        return;
      }
    }
  }

  // A '...' string or `...` identifier with FHIRPath escapes; p_ is at the opening quote.
  std::string quoted(char q) {
    const size_t open = p_++;
    std::string out;
    while (true) {
      if (p_ >= s_.size()) syntaxError(open, "unterminated literal");
      const char c = s_[p_++];
      if (c == q) return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (p_ >= s_.size()) syntaxError(open, "unterminated literal");
      const char e = s_[p_++];
      switch (e) {
        case '\'': case '"': case '`': case '\\': case '/': out += e; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = 0;
          for (int i = 0; i < 4; ++i) {
            if (p_ >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[p_]))) {
              syntaxError(p_, "malformed \\u escape");
            }
            const char h = s_[p_++];
            cp = cp * 16 + static_cast<uint32_t>(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
          }
          appendUtf8(out, cp);
          break;
        }
        default: syntaxError(p_ - 2, std::string("unknown escape '\\") + e + "'");
      }
    }
  }

  std::string_view s_;
  size_t p_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Function table
// ---------------------------------------------------------------------------------------------

struct FnInfo {
  const char* name;
  Fn fn;
  uint8_t minArgs, maxArgs;
};

const FnInfo kFunctions[] = {
    {"empty", Fn::Empty, 0, 0}, {"exists", Fn::Exists, 0, 1}, {"all", Fn::All, 1, 1},
    {"allTrue", Fn::AllTrue, 0, 0}, {"anyTrue", Fn::AnyTrue, 0, 0}, {"allFalse", Fn::AllFalse, 0, 0},
    {"anyFalse", Fn::AnyFalse, 0, 0}, {"subsetOf", Fn::SubsetOf, 1, 1}, {"supersetOf", Fn::SupersetOf, 1, 1},
    {"count", Fn::Count, 0, 0}, {"distinct", Fn::Distinct, 0, 0}, {"isDistinct", Fn::IsDistinct, 0, 0},
    {"where", Fn::Where, 1, 1}, {"select", Fn::Select, 1, 1}, {"repeat", Fn::Repeat, 1, 1},
    {"ofType", Fn::OfType, 1, 1}, {"as", Fn::As, 1, 1}, {"is", Fn::Is, 1, 1},
    {"first", Fn::First, 0, 0}, {"last", Fn::Last, 0, 0}, {"tail", Fn::Tail, 0, 0}, {"skip", Fn::Skip, 1, 1},
    {"take", Fn::Take, 1, 1}, {"single", Fn::Single, 0, 0}, {"intersect", Fn::Intersect, 1, 1},
    {"exclude", Fn::Exclude, 1, 1}, {"union", Fn::Union, 1, 1}, {"combine", Fn::Combine, 1, 1},
    {"iif", Fn::Iif, 2, 3},
    {"toBoolean", Fn::ToBoolean, 0, 0}, {"convertsToBoolean", Fn::ConvertsToBoolean, 0, 0},
    {"toInteger", Fn::ToInteger, 0, 0}, {"convertsToInteger", Fn::ConvertsToInteger, 0, 0},
    {"toDecimal", Fn::ToDecimal, 0, 0}, {"convertsToDecimal", Fn::ConvertsToDecimal, 0, 0},
    {"toString", Fn::ToString, 0, 0}, {"convertsToString", Fn::ConvertsToString, 0, 0},
    {"toDate", Fn::ToDate, 0, 0}, {"convertsToDate", Fn::ConvertsToDate, 0, 0},
    {"toDateTime", Fn::ToDateTime, 0, 0}, {"convertsToDateTime", Fn::ConvertsToDateTime, 0, 0},
    {"toTime", Fn::ToTime, 0, 0}, {"convertsToTime", Fn::ConvertsToTime, 0, 0},
    {"toQuantity", Fn::ToQuantity, 0, 1}, {"convertsToQuantity", Fn::ConvertsToQuantity, 0, 1},
    {"indexOf", Fn::IndexOf, 1, 1}, {"substring", Fn::Substring, 1, 2}, {"startsWith", Fn::StartsWith, 1, 1},
    {"endsWith", Fn::EndsWith, 1, 1}, {"contains", Fn::Contains, 1, 1}, {"upper", Fn::Upper, 0, 0},
    {"lower", Fn::Lower, 0, 0}, {"replace", Fn::Replace, 2, 2}, {"matches", Fn::Matches, 1, 1},
    {"matchesFull", Fn::MatchesFull, 1, 1}, {"replaceMatches", Fn::ReplaceMatches, 2, 2},
    {"length", Fn::Length, 0, 0}, {"toChars", Fn::ToChars, 0, 0}, {"trim", Fn::Trim, 0, 0},
    {"split", Fn::Split, 1, 1}, {"join", Fn::Join, 0, 1}, {"encode", Fn::Encode, 1, 1},
    {"decode", Fn::Decode, 1, 1}, {"escape", Fn::Escape, 1, 1}, {"unescape", Fn::Unescape, 1, 1},
    {"abs", Fn::Abs, 0, 0}, {"ceiling", Fn::Ceiling, 0, 0}, {"exp", Fn::Exp, 0, 0}, {"floor", Fn::Floor, 0, 0},
    {"ln", Fn::Ln, 0, 0}, {"log", Fn::Log, 1, 1}, {"power", Fn::Power, 1, 1}, {"round", Fn::Round, 0, 1},
    {"sqrt", Fn::Sqrt, 0, 0}, {"truncate", Fn::Truncate, 0, 0},
    {"children", Fn::Children, 0, 0}, {"descendants", Fn::Descendants, 0, 0}, {"trace", Fn::Trace, 1, 2},
    {"now", Fn::Now, 0, 0}, {"today", Fn::Today, 0, 0}, {"timeOfDay", Fn::TimeOfDay, 0, 0},
    {"not", Fn::Not, 0, 0}, {"aggregate", Fn::Aggregate, 1, 2}, {"sort", Fn::Sort, 0, 255},
    {"lowBoundary", Fn::LowBoundary, 0, 1}, {"highBoundary", Fn::HighBoundary, 0, 1},
    {"precision", Fn::Precision, 0, 0}, {"comparable", Fn::Comparable, 1, 1}, {"type", Fn::Type, 0, 0},
    {"extension", Fn::Extension, 1, 1}, {"hasValue", Fn::HasValue, 0, 0}, {"getValue", Fn::GetValue, 0, 0},
    {"resolve", Fn::Resolve, 0, 0}, {"conformsTo", Fn::ConformsTo, 1, 1}, {"htmlChecks", Fn::HtmlChecks, 0, 0},
    {"htmlchecks", Fn::HtmlChecks, 0, 0},
};

const FnInfo* findFunction(std::string_view name) {
  for (const FnInfo& f : kFunctions) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

}  // namespace

std::string singleLinePattern(std::string_view p) {
  std::string out;
  bool inClass = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      out += c;
      out += p[++i];
      continue;
    }
    if (c == '[') inClass = true;
    if (c == ']') inClass = false;
    if (c == '.' && !inClass) {
      out += "[\\s\\S]";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

int8_t systemTypeKind(std::string_view name) {
  static const std::pair<const char*, FhirPathKind> kSystem[] = {
      {"Boolean", FhirPathKind::Boolean}, {"Integer", FhirPathKind::Integer}, {"Decimal", FhirPathKind::Decimal},
      {"String", FhirPathKind::String},   {"Date", FhirPathKind::Date},       {"DateTime", FhirPathKind::DateTime},
      {"Time", FhirPathKind::Time},       {"Quantity", FhirPathKind::Quantity},
  };
  for (const auto& [n, k] : kSystem) {
    if (name == n) return static_cast<int8_t>(k);
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

// Binding strength of binary operators (higher binds tighter), FHIRPath N1 §"Operator precedence".
int precedence(BinOp op) {
  switch (op) {
    case BinOp::Implies: return 1;
    case BinOp::Or: case BinOp::Xor: return 2;
    case BinOp::And: return 3;
    case BinOp::In: case BinOp::Contains: return 4;
    case BinOp::Eq: case BinOp::Ne: case BinOp::Equiv: case BinOp::NotEquiv: return 5;
    case BinOp::Lt: case BinOp::Gt: case BinOp::Le: case BinOp::Ge: return 6;
    case BinOp::Union: return 7;
    case BinOp::Is: case BinOp::As: return 8;
    case BinOp::Add: case BinOp::Sub: case BinOp::Concat: return 9;
    case BinOp::Mul: case BinOp::Div: case BinOp::IntDiv: case BinOp::Mod: return 10;
  }
  return 0;
}

bool isKeyword(std::string_view s) {
  static const char* const kKeywords[] = {"and", "or", "xor", "implies", "is", "as", "div", "mod", "in", "contains"};
  return std::any_of(std::begin(kKeywords), std::end(kKeywords), [&](const char* k) { return s == k; });
}

class Parser {
 public:
  Parser(std::string_view text, std::vector<Token> tokens)
      : text_(text), toks_(std::move(tokens)), impl_(Model::r4().impl()) {}

  std::unique_ptr<Node> parseAll() {
    if (peek().type == Tok::End) syntaxError(0, "empty expression");
    auto root = expression(0);
    if (peek().type != Tok::End) syntaxError(peek().pos, "unexpected '" + describe(peek()) + "'");
    return root;
  }

 private:
  const Token& peek(size_t ahead = 0) const { return toks_[std::min(i_ + ahead, toks_.size() - 1)]; }
  const Token& next() { return toks_[std::min(i_++, toks_.size() - 1)]; }
  bool isPunct(const Token& t, const char* p) const { return t.type == Tok::Punct && t.text == p; }
  void expect(const char* p) {
    if (!isPunct(peek(), p)) {
      syntaxError(peek().pos, std::string("expected '") + p + "' but found '" + describe(peek()) + "'");
    }
    ++i_;
  }
  static std::string describe(const Token& t) {
    if (t.type == Tok::End) return "end of expression";
    if (t.type == Tok::String) return "'" + t.text + "'";
    return t.text.empty() ? "literal" : t.text;
  }

  bool binaryOp(const Token& t, BinOp& op) const {
    static const std::pair<const char*, BinOp> kPunct[] = {
        {"*", BinOp::Mul}, {"/", BinOp::Div}, {"+", BinOp::Add}, {"-", BinOp::Sub}, {"&", BinOp::Concat},
        {"|", BinOp::Union}, {"<", BinOp::Lt}, {">", BinOp::Gt}, {"<=", BinOp::Le}, {">=", BinOp::Ge},
        {"=", BinOp::Eq}, {"!=", BinOp::Ne}, {"~", BinOp::Equiv}, {"!~", BinOp::NotEquiv}};
    static const std::pair<const char*, BinOp> kWords[] = {
        {"div", BinOp::IntDiv}, {"mod", BinOp::Mod}, {"in", BinOp::In}, {"contains", BinOp::Contains},
        {"and", BinOp::And}, {"or", BinOp::Or}, {"xor", BinOp::Xor}, {"implies", BinOp::Implies},
        {"is", BinOp::Is}, {"as", BinOp::As}};
    if (t.type == Tok::Punct) {
      for (const auto& [s, o] : kPunct) {
        if (t.text == s) {
          op = o;
          return true;
        }
      }
    } else if (t.type == Tok::Ident) {
      for (const auto& [s, o] : kWords) {
        if (t.text == s) {
          op = o;
          return true;
        }
      }
    }
    return false;
  }

  // Bounds the recursion of hostile input ("((((...", "- - - ...") well below the stack size;
  // evaluation recursion follows the tree, so it is bounded too.
  struct DepthGuard {
    DepthGuard(Parser& p, size_t pos) : p_(p) {
      if (++p_.depth_ > kMaxDepth) syntaxError(pos, "expression nested too deeply");
    }
    ~DepthGuard() { --p_.depth_; }
    Parser& p_;
  };
  static constexpr int kMaxDepth = 200;

  std::unique_ptr<Node> expression(int minPrec) {
    DepthGuard guard(*this, peek().pos);
    auto left = unary();
    while (true) {
      BinOp op;
      if (!binaryOp(peek(), op)) return left;
      const int prec = precedence(op);
      if (prec < minPrec) return left;
      const Token& opTok = next();
      auto node = std::make_unique<Node>();
      node->pos = static_cast<uint32_t>(opTok.pos);
      node->lhs = std::move(left);
      if (op == BinOp::Is || op == BinOp::As) {
        node->kind = NodeKind::TypeOp;
        node->op = op;
        node->type = typeSpecifier();
      } else {
        node->kind = NodeKind::Binary;
        node->op = op;
        node->rhs = expression(prec + 1);
      }
      left = std::move(node);
    }
  }

  std::unique_ptr<Node> unary() {
    DepthGuard guard(*this, peek().pos);
    if (isPunct(peek(), "+") || isPunct(peek(), "-")) {
      const Token& t = next();
      const bool minus = t.text == "-";
      auto operand = unary();
      if (!minus) return operand;
      // A negative number literal folds into the literal itself.
      if (operand->kind == NodeKind::Literal && !operand->lhs &&
          (operand->literal.kind_ == FhirPathKind::Integer || operand->literal.kind_ == FhirPathKind::Decimal ||
           operand->literal.kind_ == FhirPathKind::Quantity)) {
        FhirPathItem& lit = operand->literal;
        if (lit.kind_ == FhirPathKind::Integer) lit.u_.integer = -lit.u_.integer;
        if (lit.kind_ == FhirPathKind::Decimal) lit.u_.decimal = decNegate(lit.u_.decimal);
        if (lit.kind_ == FhirPathKind::Quantity) lit.u_.quantity.value = decNegate(lit.u_.quantity.value);
        operand->pos = static_cast<uint32_t>(t.pos);
        return operand;
      }
      auto node = std::make_unique<Node>();
      node->kind = NodeKind::Negate;
      node->pos = static_cast<uint32_t>(t.pos);
      node->lhs = std::move(operand);
      return node;
    }
    return postfix(term());
  }

  std::unique_ptr<Node> postfix(std::unique_ptr<Node> left) {
    while (true) {
      if (isPunct(peek(), ".")) {
        ++i_;
        const Token& name = next();
        if (name.type != Tok::Ident && name.type != Tok::DelimIdent) {
          syntaxError(name.pos, "expected a name after '.' but found '" + describe(name) + "'");
        }
        if (name.type == Tok::Ident && isPunct(peek(), "(")) {
          left = function(name, std::move(left));
        } else {
          auto node = std::make_unique<Node>();
          node->kind = NodeKind::Member;
          node->pos = static_cast<uint32_t>(name.pos);
          node->name = name.text;
          node->lhs = std::move(left);
          left = std::move(node);
        }
      } else if (isPunct(peek(), "[")) {
        const Token& open = next();
        auto node = std::make_unique<Node>();
        node->kind = NodeKind::Indexer;
        node->pos = static_cast<uint32_t>(open.pos);
        node->lhs = std::move(left);
        node->rhs = expression(0);
        expect("]");
        left = std::move(node);
      } else {
        return left;
      }
    }
  }

  std::unique_ptr<Node> literalNode(size_t pos) {
    auto node = std::make_unique<Node>();
    node->kind = NodeKind::Literal;
    node->pos = static_cast<uint32_t>(pos);
    node->literal.flags_ = FhirPathItem::kComputed;
    return node;
  }

  void setLiteralString(Node& node, std::string text) {
    node.literalText = std::move(text);
    node.literal.kind_ = FhirPathKind::String;
    node.literal.u_.string.data = node.literalText.data();
    node.literal.u_.string.length = static_cast<uint32_t>(node.literalText.size());
  }

  std::unique_ptr<Node> term() {
    const Token& t = next();
    switch (t.type) {
      case Tok::End:
        syntaxError(t.pos, "unexpected end of expression");
      case Tok::Number: {
        auto node = literalNode(t.pos);
        auto dec = Decimal::parse(t.text);
        if (!dec) syntaxError(t.pos, "number out of range");
        const bool isInteger = t.text.find('.') == std::string::npos;
        if (isInteger && dec->mantissa <= INT64_MAX) {
          node->literal.kind_ = FhirPathKind::Integer;
          node->literal.u_.integer = static_cast<int64_t>(dec->mantissa);
        } else {
          node->literal.kind_ = FhirPathKind::Decimal;
          node->literal.u_.decimal = *dec;
        }
        // A quantity: number followed by a unit string or a calendar duration word.
        const Token& u = peek();
        const bool unitString = u.type == Tok::String;
        const bool calendar = u.type == Tok::Ident && calendarWord(u.text) && !isPunct(peek(1), "(");
        if (unitString || calendar) {
          ++i_;
          node->literalText = u.text;
          Decimal value = node->literal.kind_ == FhirPathKind::Integer ? Decimal::fromInteger(node->literal.u_.integer)
                                                                       : node->literal.u_.decimal;
          node->literal.kind_ = FhirPathKind::Quantity;
          node->literal.u_.quantity.value = value;
          node->literal.u_.quantity.unit = node->literalText.data();
          node->literal.u_.quantity.unitLength = static_cast<uint32_t>(node->literalText.size());
          if (calendar) node->literal.flags_ |= FhirPathItem::kCalendarUnit;
        }
        return node;
      }
      case Tok::String: {
        auto node = literalNode(t.pos);
        setLiteralString(*node, t.text);
        return node;
      }
      case Tok::Date: case Tok::DateTime: case Tok::Time: {
        auto node = literalNode(t.pos);
        node->literal.kind_ = t.type == Tok::Date ? FhirPathKind::Date
                              : t.type == Tok::Time ? FhirPathKind::Time : FhirPathKind::DateTime;
        node->literal.u_.dateTime = t.dateTime;
        return node;
      }
      case Tok::Variable: return variable(t);
      case Tok::Dollar: {
        auto node = std::make_unique<Node>();
        node->pos = static_cast<uint32_t>(t.pos);
        node->kind = t.text == "this" ? NodeKind::This : t.text == "index" ? NodeKind::Index : NodeKind::Total;
        return node;
      }
      case Tok::Punct: {
        if (t.text == "(") {
          auto inner = expression(0);
          expect(")");
          return inner;
        }
        if (t.text == "{") {
          expect("}");
          auto node = std::make_unique<Node>();
          node->kind = NodeKind::EmptySet;
          node->pos = static_cast<uint32_t>(t.pos);
          return node;
        }
        syntaxError(t.pos, "unexpected '" + t.text + "'");
      }
      case Tok::Ident: case Tok::DelimIdent: {
        if (t.type == Tok::Ident && isPunct(peek(), "(")) return function(t, nullptr);
        if (t.type == Tok::Ident) {
          if (t.text == "true" || t.text == "false") {
            auto node = literalNode(t.pos);
            node->literal.kind_ = FhirPathKind::Boolean;
            node->literal.u_.boolean = t.text == "true";
            return node;
          }
          // 'as', 'contains', 'in' and 'is' may name elements (ValueSet.expansion.contains).
          if (isKeyword(t.text) && t.text != "as" && t.text != "contains" && t.text != "in" && t.text != "is") {
            syntaxError(t.pos, "unexpected '" + t.text + "'");
          }
        }
        auto node = std::make_unique<Node>();
        node->kind = NodeKind::Member;
        node->pos = static_cast<uint32_t>(t.pos);
        node->name = t.text;
        if (!t.text.empty() && t.text[0] >= 'A' && t.text[0] <= 'Z') node->typeName = impl_.typeIndex(t.text);
        return node;
      }
    }
    syntaxError(t.pos, "unexpected token");
  }

  std::unique_ptr<Node> variable(const Token& t) {
    const std::string& n = t.text;
    auto constant = [&](std::string value) {
      auto node = literalNode(t.pos);
      setLiteralString(*node, std::move(value));
      return node;
    };
    if (n == "ucum") return constant("http://unitsofmeasure.org");
    if (n == "sct") return constant("http://snomed.info/sct");
    if (n == "loinc") return constant("http://loinc.org");
    if (n.rfind("vs-", 0) == 0) return constant("http://hl7.org/fhir/ValueSet/" + n.substr(3));
    if (n.rfind("ext-", 0) == 0) return constant("http://hl7.org/fhir/StructureDefinition/" + n.substr(4));
    auto node = std::make_unique<Node>();
    node->kind = NodeKind::Variable;
    node->pos = static_cast<uint32_t>(t.pos);
    if (n == "resource") {
      node->var = Var::Resource;
    } else if (n == "rootResource") {
      node->var = Var::RootResource;
    } else if (n == "context") {
      node->var = Var::Context;
    } else {
      semanticError(t.pos, "unknown variable '%" + n + "'");
    }
    return node;
  }

  std::unique_ptr<Node> function(const Token& name, std::unique_ptr<Node> receiver) {
    const FnInfo* info = findFunction(name.text);
    if (!info) semanticError(name.pos, "unknown function '" + name.text + "'");
    auto node = std::make_unique<Node>();
    node->kind = NodeKind::Function;
    node->fn = info->fn;
    node->pos = static_cast<uint32_t>(name.pos);
    node->name = name.text;
    node->lhs = std::move(receiver);
    expect("(");
    if (!isPunct(peek(), ")")) {
      while (true) {
        node->args.push_back(expression(0));
        if (isPunct(peek(), ",")) {
          ++i_;
          continue;
        }
        break;
      }
    }
    expect(")");
    if (node->args.size() < info->minArgs || node->args.size() > info->maxArgs) {
      semanticError(name.pos, "wrong number of arguments for " + name.text + "()");
    }
    if (info->fn == Fn::OfType || info->fn == Fn::As || info->fn == Fn::Is) {
      node->type = typeFromExpression(*node->args[0]);
      node->args.clear();
    }
    if ((info->fn == Fn::Matches || info->fn == Fn::MatchesFull || info->fn == Fn::ReplaceMatches) &&
        node->args[0]->kind == NodeKind::Literal && node->args[0]->literal.kind_ == FhirPathKind::String) {
      const std::string& pattern = node->args[0]->literalText;
      try {
        node->regex = std::make_unique<const std::regex>(singleLinePattern(pattern), std::regex::ECMAScript);
      } catch (const std::regex_error&) {
        semanticError(node->args[0]->pos, "invalid regular expression '" + pattern + "'");
      }
    }
    return node;
  }

  TypeSpec resolveType(const std::string& ns, const std::string& name, size_t pos) {
    TypeSpec spec;
    spec.text = ns.empty() ? name : ns + "." + name;
    if (ns == "System") {
      spec.systemKind = systemTypeKind(name);
    } else if (ns == "FHIR") {
      spec.fhirType = impl_.typeIndex(name);
    } else if (ns.empty()) {
      spec.fhirType = impl_.typeIndex(name);
      spec.systemKind = systemTypeKind(name);
      if (spec.fhirType < 0 && spec.systemKind < 0) semanticError(pos, "unknown type '" + name + "'");
    } else {
      semanticError(pos, "unknown type namespace '" + ns + "'");
    }
    return spec;
  }

  // `is T` / `as T`: a qualified identifier.
  TypeSpec typeSpecifier() {
    const Token& first = next();
    if (first.type != Tok::Ident && first.type != Tok::DelimIdent) {
      syntaxError(first.pos, "expected a type name but found '" + describe(first) + "'");
    }
    if ((first.text == "FHIR" || first.text == "System") && isPunct(peek(), ".") &&
        (peek(1).type == Tok::Ident || peek(1).type == Tok::DelimIdent)) {
      ++i_;
      const Token& second = next();
      return resolveType(first.text, second.text, first.pos);
    }
    return resolveType("", first.text, first.pos);
  }

  // The argument of is() / as() / ofType(), parsed as a path: `Quantity`, `FHIR.Patient`.
  TypeSpec typeFromExpression(const Node& arg) {
    if (arg.kind == NodeKind::Member && !arg.lhs) return resolveType("", arg.name, arg.pos);
    if (arg.kind == NodeKind::Member && arg.lhs && arg.lhs->kind == NodeKind::Member && !arg.lhs->lhs) {
      return resolveType(arg.lhs->name, arg.name, arg.lhs->pos);
    }
    semanticError(arg.pos, "expected a type name");
  }

  std::string_view text_;
  std::vector<Token> toks_;
  size_t i_ = 0;
  int depth_ = 0;
  const ModelImpl& impl_;
};

}  // namespace
}  // namespace fhirpath

FhirPathExpression FhirPathExpression::parse(std::string_view text) {
  auto ast = std::make_shared<Ast>();
  ast->text = std::string(text);
  fhirpath::Parser parser(ast->text, fhirpath::Lexer(ast->text).run());
  ast->root = parser.parseAll();
  return FhirPathExpression(std::move(ast));
}

const std::string& FhirPathExpression::text() const { return ast_->text; }

}  // namespace hearth::fhir
