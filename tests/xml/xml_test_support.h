#pragma once
// Helpers for xml_tests: fixture locations, a JSON comparison that keeps numbers as text (so
// 1.50 vs 1.5 is a difference), and asserting FhirErrors.
#include <cppunit/extensions/HelperMacros.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "hearth/fhir/error.h"

namespace hearth::xmltest {

inline std::string sourceDir() {
  const char* env = std::getenv("HEARTH_SOURCE_DIR");
  return env && *env ? env : HEARTH_SOURCE_DIR_DEFAULT;
}

// ../shared next to the repository: the official test inputs (tests may read them).
inline std::string sharedFhirpathDir() { return sourceDir() + "/../shared/fhir-r4/test-cases/fhirpath"; }

inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) CPPUNIT_FAIL("cannot read " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Files in `dir` whose name ends with `suffix`, sorted; fails if the directory is missing.
inline std::vector<std::string> filesIn(const std::string& dir, const std::string& suffix) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) CPPUNIT_FAIL("fixture directory is missing: " + dir);
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string p = e.path().string();
    if (e.is_regular_file() && p.size() > suffix.size() &&
        p.compare(p.size() - suffix.size(), suffix.size(), suffix) == 0) {
      out.push_back(p);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A JSON value with numbers kept as their source text.
struct JNode {
  enum Kind { Null, False, True, Number, String, Array, Object } kind = Null;
  std::string text;                                    // Number / String
  std::vector<std::pair<std::string, JNode>> members;  // Object, in source order
  std::vector<JNode> items;                            // Array
};

// SAX handler building a JNode tree (used with kParseNumbersAsStringsFlag).
class JTreeBuilder {
 public:
  bool Null() { return add(leaf(JNode::Null)); }
  bool Bool(bool b) { return add(leaf(b ? JNode::True : JNode::False)); }
  bool Int(int) { return false; }  // numbers arrive as RawNumber
  bool Uint(unsigned) { return false; }
  bool Int64(int64_t) { return false; }
  bool Uint64(uint64_t) { return false; }
  bool Double(double) { return false; }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    return add(leaf(JNode::Number, std::string(s, n)));
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    return add(leaf(JNode::String, std::string(s, n)));
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    keys_.back().assign(s, n);
    return true;
  }
  bool StartObject() { return open(JNode::Object); }
  bool EndObject(rapidjson::SizeType) { return close(); }
  bool StartArray() { return open(JNode::Array); }
  bool EndArray(rapidjson::SizeType) { return close(); }
  JNode root;

 private:
  static JNode leaf(JNode::Kind k, std::string text = {}) {
    JNode n;
    n.kind = k;
    n.text = std::move(text);
    return n;
  }
  bool open(JNode::Kind k) {
    open_.push_back(leaf(k));
    keys_.emplace_back();
    return true;
  }
  bool close() {
    JNode done = std::move(open_.back());
    open_.pop_back();
    keys_.pop_back();
    return add(std::move(done));
  }
  bool add(JNode v) {
    if (open_.empty()) {
      root = std::move(v);
      return true;
    }
    JNode& parent = open_.back();
    if (parent.kind == JNode::Object) {
      parent.members.emplace_back(keys_.back(), std::move(v));
    } else {
      parent.items.push_back(std::move(v));
    }
    return true;
  }
  std::vector<JNode> open_;        // containers being filled, innermost last
  std::vector<std::string> keys_;  // the pending member name of each open container
};

inline JNode parseTree(const std::string& json) {
  JTreeBuilder b;
  rapidjson::Reader reader;
  rapidjson::MemoryStream ms(json.data(), json.size());
  if (!reader.Parse<rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseValidateEncodingFlag |
                    rapidjson::kParseIterativeFlag>(ms, b)) {
    CPPUNIT_FAIL("test JSON does not parse: " + json.substr(0, 200));
  }
  return std::move(b.root);
}

// FHIR JSON equivalence that is not byte equality: in a repeating primitive's parallel arrays
// (`given` / `_given`), a shorter array means trailing nulls. Pads both to the same length.
inline void alignPrimitiveArrays(JNode& n) {
  if (n.kind == JNode::Object) {
    for (auto& [k, v] : n.members) {
      if (k.size() < 2 || k[0] != '_' || v.kind != JNode::Array) continue;
      for (auto& [k2, v2] : n.members) {
        if (k2 != k.substr(1) || v2.kind != JNode::Array) continue;
        const size_t len = std::max(v.items.size(), v2.items.size());
        v.items.resize(len);
        v2.items.resize(len);
      }
    }
  }
  for (auto& [k, v] : n.members) alignPrimitiveArrays(v);
  for (JNode& v : n.items) alignPrimitiveArrays(v);
}

inline void appendQuoted(std::string& out, const std::string& s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      continue;
    }
    out += c;
  }
  out += '"';
}

// One line per leaf ("path = value"), object members sorted: member order is not significant in
// JSON, everything else (array order, types, number text, string bytes) is.
inline void flatten(const JNode& n, const std::string& path, std::vector<std::string>& out) {
  switch (n.kind) {
    case JNode::Null:
      out.push_back(path + " = null");
      return;
    case JNode::False:
      out.push_back(path + " = false");
      return;
    case JNode::True:
      out.push_back(path + " = true");
      return;
    case JNode::Number:
      out.push_back(path + " = " + n.text);
      return;
    case JNode::String: {
      std::string s = path + " = ";
      appendQuoted(s, n.text);
      out.push_back(s);
      return;
    }
    case JNode::Array:
      out.push_back(path + " = [" + std::to_string(n.items.size()) + "]");
      for (size_t i = 0; i < n.items.size(); ++i)
        flatten(n.items[i], path + "[" + std::to_string(i) + "]", out);
      return;
    case JNode::Object: {
      std::map<std::string, const JNode*> sorted;
      for (const auto& [k, v] : n.members) {
        if (sorted.count(k)) out.push_back(path + " DUPLICATE KEY " + k);
        sorted[k] = &v;
      }
      out.push_back(path + " = {" + std::to_string(sorted.size()) + "}");
      for (const auto& [k, v] : sorted) flatten(*v, path + "." + k, out);
      return;
    }
  }
}

inline std::vector<std::string> flatJson(const std::string& json, bool align = false) {
  JNode n = parseTree(json);
  if (align) alignPrimitiveArrays(n);
  std::vector<std::string> out;
  flatten(n, "$", out);
  return out;
}

// Fails with the first differing leaf when the two JSON texts are not equivalent.
inline void assertSameJson(const std::string& expected, const std::string& actual, const std::string& what,
                           bool align = false) {
  const std::vector<std::string> a = flatJson(expected, align), b = flatJson(actual, align);
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    const std::string x = i < a.size() ? a[i] : "(end)", y = i < b.size() ? b[i] : "(end)";
    if (x != y) CPPUNIT_FAIL(what + ": JSON differs\n  expected: " + x + "\n  actual:   " + y);
  }
}

// Runs f, expecting a FhirError with `status` whose first issue has `expression` (unless
// `expression` is "*"); returns the diagnostics.
inline std::string expectFhirError(const std::function<void()>& f, int status, const std::string& expression,
                                   const std::string& what) {
  try {
    f();
  } catch (const fhir::FhirError& e) {
    CPPUNIT_ASSERT_EQUAL_MESSAGE(what + ": status", status, e.status());
    CPPUNIT_ASSERT_MESSAGE(what + ": an issue", !e.issues().empty());
    if (expression != "*") {
      CPPUNIT_ASSERT_EQUAL_MESSAGE(what + ": expression (" + e.issues()[0].diagnostics + ")", expression,
                                   e.issues()[0].expression);
    }
    return e.issues()[0].diagnostics;
  }
  CPPUNIT_FAIL(what + ": expected a FhirError " + std::to_string(status));
}

}  // namespace hearth::xmltest
