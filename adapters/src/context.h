#pragma once
// The state of one mapping run (Ctx) and the v2 data type -> FHIR data type conversions every
// message mapping shares.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hearth/adapters/v2_to_fhir.h"
#include "hearth/hl7/types.h"
#include "json_builder.h"

namespace hearth::adapters {

// An ERR location: segment id, n-th segment with that id, field, repetition (1-based), component.
struct Loc {
  std::string segment;
  int sequence = 0;
  int field = 0;
  int repetition = 0;
  int component = 0;
  Loc withField(int f, int rep = 0, int comp = 0) const {
    Loc l = *this;
    l.field = f;
    l.repetition = rep;
    l.component = comp;
    return l;
  }
  Loc withComponent(int comp) const {
    Loc l = *this;
    l.component = comp;
    return l;
  }
};

// What an identifier identifies, when it has no assigning authority: names the local system
// (MappingOptions::localPrefix + kind + ":" + sending facility).
enum class IdKind { Mrn, Visit, Account, Placer, Filler, Staff, Location, Organization, Transaction, Other };

// Text without control characters and without surrounding whitespace.
std::string cleanText(std::string_view s);

// A business identity: the system|value pair a conditional entry is keyed on. Both are cleaned
// (cleanText) on construction, so the entry's criteria and the identifier the resource carries
// are always the same text.
struct Identity {
  std::string system;
  std::string value;
  Identity() = default;
  Identity(std::string_view s, std::string_view v) : system(cleanText(s)), value(cleanText(v)) {}
  bool valid() const { return !system.empty() && !value.empty(); }
};

class Ctx {
 public:
  Ctx(const hl7::Message& msg, const MappingOptions& opts);

  const hl7::Message& msg;
  const MappingOptions& opts;

  // ---- problems --------------------------------------------------------------------------
  void error(int hl7Code, const Loc& where, std::string text);
  void warn(int hl7Code, const Loc& where, std::string text);
  bool failed() const { return !result_.errors.empty(); }
  // The location of a field of a segment of msg (its sequence computed from the message).
  Loc at(const hl7::Segment* seg, int field = 0, int repetition = 0, int component = 0) const;

  // ---- entries ---------------------------------------------------------------------------
  // Adds a conditional update (PUT Type?identifier=...) or conditional create (POST, ifNoneExist)
  // of `resource` and returns its fullUrl. The same type + identity added twice yields one entry
  // (the first); `added` tells the caller whether this call added it.
  std::string update(std::string_view type, const Identity& id, Json resource, bool* added = nullptr);
  std::string create(std::string_view type, const Identity& id, Json resource, bool* added = nullptr);
  // The fullUrl the entry of type + identity has or will have (a name-based UUID of both), so
  // that two resources can refer to each other (Patient.link both ways).
  static std::string urlFor(std::string_view type, const Identity& id);
  // The finished result: the Bundle when there were no errors.
  MappingResult finish();

  // ---- systems ---------------------------------------------------------------------------
  // Sending facility (MSH-4.1, else MSH-4.2, else MSH-3.1), as used in local systems.
  const std::string& facility() const { return facility_; }
  // Identifier system of an assigning authority; kind decides the local system when the
  // authority is empty.
  std::string systemFor(const hl7::HD& authority, IdKind kind) const;
  std::string localSystem(IdKind kind) const;
  // Code system URI for a CWE-3 name ("" when name is empty).
  std::string codingSystem(std::string_view name) const;

  // ---- data types ------------------------------------------------------------------------
  Identity identityOf(const hl7::CX& cx, IdKind kind) const;
  Identity identityOf(const hl7::EI& ei, IdKind kind) const;
  // Identifier with system, value and type (CX-5 / typeCode, table 0203); empty when no value.
  Json identifier(const hl7::CX& cx, IdKind kind) const;
  Json identifier(const Identity& id, std::string_view typeCode) const;
  Json humanName(const hl7::XPN& xpn) const;
  Json humanName(const hl7::XCN& xcn) const;
  Json address(const hl7::XAD& xad) const;
  // defaultUse: the use when XTN-2 is empty ("home" for PID-13, "work" for PID-14).
  Json contactPoint(const hl7::XTN& xtn, std::string_view defaultUse) const;
  // A Coding for code/display in coding system `systemName` (CWE-3), or in v2 table
  // `defaultTable` ("0001") when systemName is empty.
  Json coding(std::string_view code, std::string_view display, std::string_view systemName,
              std::string_view version = {}, std::string_view defaultTable = {}) const;
  // CodeableConcept of a CWE: primary and alternate codings, text from CWE-9 (original text) or
  // CWE-2 when there is no code.
  Json codeableConcept(const hl7::CWE& cwe, std::string_view defaultTable = {}) const;
  // CodeableConcept of a code from a compiled-in table (v2 or v3), with its display.
  Json tableConcept(std::string_view tableId, std::string_view code, std::string_view text = {}) const;
  Json tableCoding(std::string_view tableId, std::string_view code) const;

  // FHIR dateTime / date / instant of a TS, DTM or DT element; nullopt when absent (error 102
  // at `where` when present but invalid).
  std::optional<std::string> dateTime(const hl7::Element& e, const Loc& where);
  std::optional<std::string> date(const hl7::Element& e, const Loc& where);
  std::optional<std::string> instant(const hl7::Element& e, const Loc& where);
  std::optional<std::string> dateTimeOf(const hl7::DateTime& dt, const Loc& where);

  // Human-readable text of an element: formatting escapes resolved for plain text (\.br\ and
  // \.sp\ -> newline, highlighting \H\ \N\ and other formatting commands dropped), delimiter
  // and hex escapes decoded, an unterminated escape character kept verbatim; CR LF -> LF and
  // surrounding whitespace trimmed.
  std::string text(const hl7::Element& e) const;
  // All repetitions' text, joined with "\n".
  std::string textAllRepetitions(const hl7::Element& e) const;

  // {"source": ...} for Resource.meta.
  Json meta() const;
  static Json reference(const std::string& fullUrl, std::string_view display = {});

  // NTE-3 (all repetitions) of each NTE as Annotations.
  Json notes(const std::vector<const hl7::Segment*>& ntes) const;

 private:
  std::string addEntry(std::string_view method, std::string_view type, const Identity& id, Json resource,
                       bool* added);
  MappingResult result_;
  std::string facility_;
  std::string source_;
  std::optional<int> mshOffset_;
  std::unordered_map<const hl7::Segment*, int> sequences_;
  struct Entry {
    std::string key;
    std::string fullUrl;
    std::string type;
    Json json;  // the whole entry
  };
  std::vector<Entry> entries_;
};

// Non-empty and only ASCII digits / letters.
inline bool allDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return false;
  }
  return true;
}
inline bool allAlpha(std::string_view s) {
  if (s.empty()) return false;
  for (char ch : s) {
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))) return false;
  }
  return true;
}

// A code from the message fit for an error text: itself when it is a short code ([A-Za-z0-9_],
// at most 7 characters), else "(unreadable)" -- error texts must never carry patient data.
std::string shortCode(std::string_view s);

// A v2 value as a FHIR code: surrounding whitespace trimmed, inner runs of whitespace collapsed
// to one space (FHIR code: [^\s]+( [^\s]+)*); "" when nothing is left.
std::string codeSafe(std::string_view s);

// FHIR search escaping (\ , | $) then percent-encoding: a token value for a query string.
std::string queryEscape(std::string_view s);
// Percent-encoding of characters not allowed in a URI (keeps unreserved and ':' '/' '.' '@').
std::string uriSafe(std::string_view s);

}  // namespace hearth::adapters
