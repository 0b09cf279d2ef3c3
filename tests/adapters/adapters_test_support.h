#pragma once
// Shared helpers of the v2 -> FHIR mapping tests: the message corpora (tests/adapters/messages and
// the HL7 library's tests/hl7/messages), mapping a message and reading the resulting Bundle, and
// editing a message field for the error cases.
#include <cppunit/extensions/HelperMacros.h>
#include <rapidjson/document.h>
#include <rapidjson/pointer.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "hearth/adapters/v2_to_fhir.h"
#include "hearth/fhir/json.h"
#include "hearth/hl7/message.h"

namespace adaptertest {

using rapidjson::Value;

inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A message by file name: tests/adapters/messages first, then tests/hl7/messages.
inline std::string message(const std::string& name) {
  const std::string own = std::string(ADAPTERS_MESSAGES_DIR) + "/" + name;
  if (std::filesystem::exists(own)) return readFile(own);
  return readFile(std::string(HL7_CORPUS_DIR) + "/" + name);
}

// Every *.hl7 of both corpora (full paths, sorted).
inline std::vector<std::string> allMessageFiles() {
  std::vector<std::string> out;
  for (const char* dir : {ADAPTERS_MESSAGES_DIR, HL7_CORPUS_DIR}) {
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      if (e.path().extension() == ".hl7") out.push_back(e.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The site configuration the tests assume: NORTHVALE's MRNs are the OID the A01 sends.
inline hearth::adapters::MappingOptions siteOptions() {
  hearth::adapters::MappingOptions o;
  o.authoritySystems["NORTHVALE"] = "urn:oid:2.16.840.1.113883.3.9001";
  return o;
}

inline const Value* at(const Value& v, const std::string& pointer) {
  return rapidjson::Pointer(pointer.c_str()).Get(v);
}
// The string at a JSON pointer, "" when absent or not a string.
inline std::string str(const Value& v, const std::string& pointer) {
  const Value* p = at(v, pointer);
  return p && p->IsString() ? std::string(p->GetString(), p->GetStringLength()) : std::string();
}
inline double num(const Value& v, const std::string& pointer) {
  const Value* p = at(v, pointer);
  if (!p || !p->IsNumber()) CPPUNIT_FAIL("no number at " + pointer);
  return p->GetDouble();
}
inline size_t count(const Value& v, const std::string& pointer) {
  const Value* p = at(v, pointer);
  return p && p->IsArray() ? p->Size() : 0;
}

struct Mapped {
  hearth::adapters::MappingResult result;
  rapidjson::Document doc;

  const Value& entries() const { return doc["entry"]; }
  std::vector<const Value*> entriesOf(const std::string& type) const {
    std::vector<const Value*> out;
    for (const Value& e : entries().GetArray()) {
      if (str(e, "/resource/resourceType") == type) out.push_back(&e);
    }
    return out;
  }
  std::vector<const Value*> resources(const std::string& type) const {
    std::vector<const Value*> out;
    for (const Value* e : entriesOf(type)) out.push_back(&(*e)["resource"]);
    return out;
  }
  // The entry of the only resource of a type (fails the test otherwise).
  const Value& oneEntry(const std::string& type) const {
    auto list = entriesOf(type);
    if (list.size() != 1) CPPUNIT_FAIL("expected one " + type + ", got " + std::to_string(list.size()));
    return *list.front();
  }
  const Value& one(const std::string& type) const { return oneEntry(type)["resource"]; }
  // The resource an urn:uuid reference points to (fails when no entry has that fullUrl).
  const Value& resolve(const Value& reference) const {
    const std::string url = str(reference, "/reference");
    for (const Value& e : entries().GetArray()) {
      if (str(e, "/fullUrl") == url) return e["resource"];
    }
    CPPUNIT_FAIL("reference " + url + " does not resolve to an entry");
    return reference;  // not reached
  }
  // The resource whose identifier has this value (fails unless exactly one).
  const Value& byIdentifier(const std::string& type, const std::string& value) const {
    const Value* found = nullptr;
    int n = 0;
    for (const Value* r : resources(type)) {
      for (const Value& id : (*r)["identifier"].GetArray()) {
        if (str(id, "/value") == value) {
          found = r;
          ++n;
          break;
        }
      }
    }
    if (n != 1) CPPUNIT_FAIL("expected one " + type + " with identifier " + value + ", got " + std::to_string(n));
    return *found;
  }
  std::string errorsText() const {
    std::string out;
    for (const auto& e : result.errors) {
      out += " [" + std::to_string(e.hl7Code) + " " + e.segmentId + "^" + std::to_string(e.segmentSequence) + "^" +
             std::to_string(e.field) + " " + e.userMessage + "]";
    }
    return out;
  }
};

inline Mapped mapText(const std::string& text,
                      const hearth::adapters::MappingOptions& opts = siteOptions()) {
  Mapped m;
  hearth::hl7::Message msg = hearth::hl7::Message::parse(text);
  m.result = hearth::adapters::mapToFhir(msg, opts);
  if (m.result.ok()) m.doc = hearth::fhir::parseJson(m.result.bundle);
  return m;
}
// Maps a corpus message; fails the test when the mapping reports errors.
inline Mapped mapFile(const std::string& name, const hearth::adapters::MappingOptions& opts = siteOptions()) {
  Mapped m = mapText(message(name), opts);
  if (!m.result.ok()) CPPUNIT_FAIL(name + " did not map:" + m.errorsText());
  return m;
}

// Splits a message into segments (on \r) and a segment into fields (on MSH-1).
inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  out.push_back(cur);
  return out;
}

// The message with field `field` of the `occurrence`-th segment `id` set to raw text `raw`
// (fields added as needed; MSH counts as in the standard, MSH-3 being the 3rd field). `raw` uses
// the message's own delimiters.
inline std::string withField(const std::string& text, const std::string& id, int occurrence, int field,
                             const std::string& raw) {
  std::string normalized;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
    normalized.push_back(text[i] == '\n' ? '\r' : text[i]);
  }
  std::vector<std::string> segments = split(normalized, '\r');
  const char separator = normalized.size() > 3 ? normalized[3] : '|';  // MSH-1
  int seen = 0;
  for (std::string& seg : segments) {
    if (seg.compare(0, 3, id) != 0 || ++seen != occurrence) continue;
    std::vector<std::string> fields = split(seg, separator);
    const size_t index = id == "MSH" ? static_cast<size_t>(field - 1) : static_cast<size_t>(field);
    if (fields.size() <= index) fields.resize(index + 1);
    fields[index] = raw;
    seg.clear();
    for (size_t i = 0; i < fields.size(); ++i) {
      if (i) seg.push_back(separator);
      seg += fields[i];
    }
    std::string out;
    for (size_t i = 0; i < segments.size(); ++i) out += (i ? "\r" : "") + segments[i];
    return out;
  }
  throw std::runtime_error("no segment " + id + "(" + std::to_string(occurrence) + ")");
}

// The first error; fails the test when there is none.
inline const hearth::hl7::AckError& firstError(const Mapped& m) {
  if (m.result.errors.empty()) CPPUNIT_FAIL("expected a mapping error, the message mapped");
  return m.result.errors.front();
}

}  // namespace adaptertest
