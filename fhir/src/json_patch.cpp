// RFC 6902 JSON Patch over RFC 6901 JSON Pointers (applyJsonPatch, interactions.h).
//
// The patch works on a small JSON tree of its own rather than a RapidJSON DOM, because FHIR
// decimals must keep their exact text (1.50 stays 1.50): numbers are kept as the raw text they
// arrived as, and written back verbatim. Depth and size are bounded (hostile patches such as
// repeated self-copies must not exhaust memory or the stack), and the whole patch is applied to a
// copy, so a failing operation leaves nothing half-done.
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "hearth/fhir/error.h"
#include "hearth/fhir/interactions.h"

namespace hearth::fhir {

namespace {

// Deeper than any FHIR resource (the validator stops at 100 levels) but far from the stack limit
// of the recursive walks below.
constexpr int kMaxDepth = 256;
// Nodes a patch may add beyond the document's and the patch's own (copies of existing parts, which
// repeated self-copies would double per operation).
constexpr size_t kMaxExtraNodes = 1024u * 1024u;

struct Node {
  enum class Kind : uint8_t { Null, False, True, Number, String, Object, Array };
  Kind kind = Kind::Null;
  std::string text;                                 // Number: raw text; String: the value
  std::vector<std::pair<std::string, Node>> members;  // Object, in document order
  std::vector<Node> items;                          // Array
};

[[noreturn]] void badPatch(const std::string& why) { throw FhirError(400, IssueType::Invalid, "Invalid JSON Patch: " + why); }

// Builds a Node tree from SAX events (numbers as raw text).
class TreeBuilder {
 public:
  bool Null() { return value(Node::Kind::Null, {}); }
  bool Bool(bool b) { return value(b ? Node::Kind::True : Node::Kind::False, {}); }
  bool Int(int) { return false; }  // unreachable: numbers arrive as RawNumber
  bool Uint(unsigned) { return false; }
  bool Int64(int64_t) { return false; }
  bool Uint64(uint64_t) { return false; }
  bool Double(double) { return false; }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) { return value(Node::Kind::Number, std::string(s, n)); }
  bool String(const char* s, rapidjson::SizeType n, bool) { return value(Node::Kind::String, std::string(s, n)); }
  bool StartObject() { return open(Node::Kind::Object); }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    stack_.back()->members.emplace_back(std::string(s, n), Node{});
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    stack_.pop_back();
    return true;
  }
  bool StartArray() { return open(Node::Kind::Array); }
  bool EndArray(rapidjson::SizeType) {
    stack_.pop_back();
    return true;
  }

  Node root;
  bool tooDeep = false;

 private:
  // The slot the next value goes into: the root, the last key's value, or a new array item.
  Node* slot() {
    if (stack_.empty()) return &root;
    Node* top = stack_.back();
    if (top->kind == Node::Kind::Array) {
      top->items.emplace_back();
      return &top->items.back();
    }
    return &top->members.back().second;
  }
  bool value(Node::Kind k, std::string text) {
    Node* n = slot();
    n->kind = k;
    n->text = std::move(text);
    return true;
  }
  bool open(Node::Kind k) {
    if (static_cast<int>(stack_.size()) >= kMaxDepth) {
      tooDeep = true;
      return false;
    }
    Node* n = slot();
    n->kind = k;
    stack_.push_back(n);
    return true;
  }
  std::vector<Node*> stack_;  // pointers stay valid: a container only grows while it is the top
};

Node parseTree(std::string_view json, const char* what, int status) {
  TreeBuilder b;
  rapidjson::Reader reader;
  rapidjson::MemoryStream ms(json.data(), json.size());
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag |
                              rapidjson::kParseNumbersAsStringsFlag;
  if (!reader.Parse<kFlags>(ms, b)) {
    if (b.tooDeep) {
      throw FhirError(status, IssueType::TooCostly,
                      std::string(what) + " nests deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    throw FhirError(status, IssueType::Structure,
                    std::string("Malformed JSON in the ") + what + " at byte " + std::to_string(reader.GetErrorOffset()));
  }
  return std::move(b.root);
}

void write(const Node& n, rapidjson::Writer<rapidjson::StringBuffer>& w) {
  switch (n.kind) {
    case Node::Kind::Null: w.Null(); break;
    case Node::Kind::False: w.Bool(false); break;
    case Node::Kind::True: w.Bool(true); break;
    case Node::Kind::Number:
      w.RawValue(n.text.data(), n.text.size(), rapidjson::kNumberType);
      break;
    case Node::Kind::String: w.String(n.text.data(), static_cast<rapidjson::SizeType>(n.text.size())); break;
    case Node::Kind::Object:
      w.StartObject();
      for (const auto& [k, v] : n.members) {
        w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
        write(v, w);
      }
      w.EndObject();
      break;
    case Node::Kind::Array:
      w.StartArray();
      for (const Node& v : n.items) write(v, w);
      w.EndArray();
      break;
  }
}

size_t countNodes(const Node& n) {
  size_t c = 1;
  for (const auto& m : n.members) c += countNodes(m.second);
  for (const Node& i : n.items) c += countNodes(i);
  return c;
}

int depthOf(const Node& n) {
  int d = 0;
  for (const auto& m : n.members) d = std::max(d, depthOf(m.second));
  for (const Node& i : n.items) d = std::max(d, depthOf(i));
  return (n.kind == Node::Kind::Object || n.kind == Node::Kind::Array) ? d + 1 : d;
}

// RFC 6902 section 4.6: equal types and values; numbers compare by value; objects regardless of
// member order.
bool equal(const Node& a, const Node& b) {
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Node::Kind::Null:
    case Node::Kind::False:
    case Node::Kind::True: return true;
    case Node::Kind::Number:
      return a.text == b.text || std::strtold(a.text.c_str(), nullptr) == std::strtold(b.text.c_str(), nullptr);
    case Node::Kind::String: return a.text == b.text;
    case Node::Kind::Array:
      if (a.items.size() != b.items.size()) return false;
      for (size_t i = 0; i < a.items.size(); ++i)
        if (!equal(a.items[i], b.items[i])) return false;
      return true;
    case Node::Kind::Object:
      if (a.members.size() != b.members.size()) return false;
      for (const auto& [k, v] : a.members) {
        const Node* other = nullptr;
        for (const auto& [k2, v2] : b.members)
          if (k2 == k) {
            other = &v2;
            break;
          }
        if (!other || !equal(v, *other)) return false;
      }
      return true;
  }
  return false;
}

// RFC 6901: "" is the whole document; otherwise "/"-separated tokens with ~1 = '/' and ~0 = '~'.
std::vector<std::string> parsePointer(const std::string& p) {
  std::vector<std::string> tokens;
  if (p.empty()) return tokens;
  if (p[0] != '/') badPatch("the pointer '" + p.substr(0, 100) + "' must be empty or start with '/'");
  std::string cur;
  for (size_t i = 1; i <= p.size(); ++i) {
    if (i == p.size() || p[i] == '/') {
      tokens.push_back(std::move(cur));
      cur.clear();
      continue;
    }
    if (p[i] == '~') {
      if (i + 1 < p.size() && p[i + 1] == '0') cur += '~';
      else if (i + 1 < p.size() && p[i + 1] == '1') cur += '/';
      else badPatch("the pointer '" + p.substr(0, 100) + "' has a '~' not followed by 0 or 1");
      ++i;
      continue;
    }
    cur += p[i];
  }
  if (static_cast<int>(tokens.size()) > kMaxDepth) badPatch("the pointer is too deep");
  return tokens;
}

Node* findMember(Node& obj, const std::string& key) {
  for (auto& [k, v] : obj.members)
    if (k == key) return &v;
  return nullptr;
}

// An array index token: "0" or digits without a leading zero. Returns false otherwise.
bool arrayIndex(const std::string& t, size_t& out) {
  if (t.empty() || t.size() > 9) return false;
  if (t.size() > 1 && t[0] == '0') return false;
  size_t v = 0;
  for (char c : t) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<size_t>(c - '0');
  }
  out = v;
  return true;
}

std::string show(const std::string& pointer) { return "'" + pointer.substr(0, 200) + "'"; }

// The node at tokens[0, n), or nullptr when it does not exist.
Node* resolve(Node& root, const std::vector<std::string>& tokens, size_t n) {
  Node* cur = &root;
  for (size_t i = 0; i < n; ++i) {
    const std::string& t = tokens[i];
    if (cur->kind == Node::Kind::Object) {
      cur = findMember(*cur, t);
    } else if (cur->kind == Node::Kind::Array) {
      size_t idx = 0;
      if (!arrayIndex(t, idx) || idx >= cur->items.size()) return nullptr;
      cur = &cur->items[idx];
    } else {
      return nullptr;
    }
    if (!cur) return nullptr;
  }
  return cur;
}

class Patcher {
 public:
  Patcher(Node doc, size_t patchNodes)
      : doc_(std::move(doc)), nodes_(countNodes(doc_)), maxNodes_(nodes_ + patchNodes + kMaxExtraNodes) {}

  void apply(const Node& op, size_t index) {
    where_ = "operation " + std::to_string(index);
    if (op.kind != Node::Kind::Object) badPatch(where_ + " is not an object");
    const std::string opName = stringMember(op, "op");
    const std::string path = stringMember(op, "path");
    const auto tokens = parsePointer(path);
    if (opName == "add") {
      add(tokens, path, valueMember(op));
    } else if (opName == "remove") {
      remove(tokens, path);
    } else if (opName == "replace") {
      Node* target = resolve(doc_, tokens, tokens.size());
      if (!target) badPatch(where_ + " (replace): the path " + show(path) + " does not exist");
      Node v = valueMember(op);
      grow(v, tokens.size());
      *target = std::move(v);
    } else if (opName == "move") {
      const std::string from = stringMember(op, "from");
      const auto fromTokens = parsePointer(from);
      if (from == path) {
        if (!resolve(doc_, fromTokens, fromTokens.size()))
          badPatch(where_ + " (move): the path " + show(from) + " does not exist");
        return;
      }
      if (path.size() > from.size() && path.compare(0, from.size(), from) == 0 && path[from.size()] == '/')
        badPatch(where_ + " (move): " + show(from) + " cannot be moved into one of its own children");
      Node v = remove(fromTokens, from);
      add(tokens, path, std::move(v), false);  // moved, not grown (depth is checked)
    } else if (opName == "copy") {
      const std::string from = stringMember(op, "from");
      const auto fromTokens = parsePointer(from);
      Node* src = resolve(doc_, fromTokens, fromTokens.size());
      if (!src) badPatch(where_ + " (copy): the path " + show(from) + " does not exist");
      grow(*src, tokens.size());  // before copying: a hostile copy must not allocate first
      Node v = *src;
      add(tokens, path, std::move(v), false);
    } else if (opName == "test") {
      Node* target = resolve(doc_, tokens, tokens.size());
      const Node expected = valueMember(op);
      if (!target || !equal(*target, expected)) {
        throw FhirError(422, IssueType::Processing,
                        "JSON Patch " + where_ + " (test) failed: the value at " + show(path) +
                            (target ? " differs from the expected value" : " does not exist"));
      }
    } else {
      badPatch(where_ + " has an unknown op '" + opName.substr(0, 40) +
               "' (expected add, remove, replace, move, copy or test)");
    }
  }

  Node& doc() { return doc_; }

 private:
  std::string stringMember(const Node& op, const char* name) {
    for (const auto& [k, v] : op.members) {
      if (k == name) {
        if (v.kind != Node::Kind::String) badPatch(where_ + ": '" + name + "' must be a string");
        return v.text;
      }
    }
    badPatch(where_ + " lacks '" + name + "'");
  }
  Node valueMember(const Node& op) {
    for (const auto& [k, v] : op.members)
      if (k == "value") return v;
    badPatch(where_ + " lacks 'value'");
  }

  // Accounts for a value about to be inserted at depth `atDepth`.
  void grow(const Node& v, size_t atDepth) {
    nodes_ += countNodes(v);
    if (nodes_ > maxNodes_) badPatch("the patched document would be too large");
    checkDepth(v, atDepth);
  }
  void checkDepth(const Node& v, size_t atDepth) {
    if (static_cast<int>(atDepth) + depthOf(v) > kMaxDepth) badPatch("the patched document would nest too deeply");
  }

  void add(const std::vector<std::string>& tokens, const std::string& path, Node v, bool count = true) {
    if (count) grow(v, tokens.size());
    else checkDepth(v, tokens.size());
    if (tokens.empty()) {
      doc_ = std::move(v);
      return;
    }
    Node* parent = resolve(doc_, tokens, tokens.size() - 1);
    if (!parent) badPatch(where_ + " (add): the parent of " + show(path) + " does not exist");
    const std::string& last = tokens.back();
    if (parent->kind == Node::Kind::Object) {
      if (Node* existing = findMember(*parent, last)) *existing = std::move(v);
      else parent->members.emplace_back(last, std::move(v));
    } else if (parent->kind == Node::Kind::Array) {
      size_t idx = 0;
      if (last == "-") {
        parent->items.push_back(std::move(v));
      } else if (arrayIndex(last, idx) && idx <= parent->items.size()) {
        parent->items.insert(parent->items.begin() + static_cast<std::ptrdiff_t>(idx), std::move(v));
      } else {
        badPatch(where_ + " (add): " + show(path) + " is not a valid index of an array of " +
                 std::to_string(parent->items.size()) + " items");
      }
    } else {
      badPatch(where_ + " (add): the parent of " + show(path) + " is not an object or array");
    }
  }

  Node remove(const std::vector<std::string>& tokens, const std::string& path) {
    if (tokens.empty()) badPatch(where_ + ": the whole document cannot be removed");
    Node* parent = resolve(doc_, tokens, tokens.size() - 1);
    const std::string& last = tokens.back();
    if (parent && parent->kind == Node::Kind::Object) {
      for (auto it = parent->members.begin(); it != parent->members.end(); ++it) {
        if (it->first == last) {
          Node v = std::move(it->second);
          parent->members.erase(it);
          return v;
        }
      }
    } else if (parent && parent->kind == Node::Kind::Array) {
      size_t idx = 0;
      if (arrayIndex(last, idx) && idx < parent->items.size()) {
        Node v = std::move(parent->items[idx]);
        parent->items.erase(parent->items.begin() + static_cast<std::ptrdiff_t>(idx));
        return v;
      }
    }
    badPatch(where_ + ": the path " + show(path) + " does not exist");
  }

  Node doc_;
  size_t nodes_;
  size_t maxNodes_;
  std::string where_;
};

}  // namespace

std::string applyJsonPatch(std::string_view documentJson, std::string_view patchJson) {
  const Node patch = parseTree(patchJson, "JSON Patch", 400);
  if (patch.kind != Node::Kind::Array) badPatch("the document must be a JSON array of operations");
  Patcher p(parseTree(documentJson, "patched document", 400), countNodes(patch));
  for (size_t i = 0; i < patch.items.size(); ++i) p.apply(patch.items[i], i);
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  write(p.doc(), w);
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace hearth::fhir
