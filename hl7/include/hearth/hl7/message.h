#pragma once
// The HL7 v2 message model: Message owns Segments; Element is a read-only view of a field, a
// repetition, a component or a sub-component.
//
// Numbering follows the standard: fields, components and sub-components are 1-based; in MSH,
// MSH-1 is the field separator and MSH-2 the encoding characters (so MSH-3 is the sending
// application). Repetitions are 0-based in the method form (field(3).repetition(0)) and
// 1-based in paths (see Message::at).
//
// Round trip: a parsed message keeps every field as the raw (still escaped) text it had on the
// wire, trailing empty fields and components included, so encode() returns the input bytes with
// each segment terminator written as "\r" (input may use "\r", "\n" or "\r\n"; empty lines and a
// leading UTF-8 byte order mark are dropped; the last segment always gets its "\r").
//
// Empty vs null: an absent value has empty raw text; an explicit null ("" on the wire, meaning
// "delete this value") has raw text "\"\"" and isNull() true. value() of both is "".
//
// Lifetime: Elements (and the Group tree of groups.h) are views into the Message; they stay valid
// until the Message is modified, moved or destroyed. A Message is not synchronised: share it
// between threads read-only or not at all.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/hl7/encoding.h"
#include "hearth/hl7/error.h"

namespace hearth::hl7 {

class Element {
 public:
  enum class Level : unsigned char { Field, Repetition, Component, Subcomponent };

  Element() = default;  // an empty (absent) field
  Element(std::string_view raw, Level level, const Encoding& enc, bool literal = false)
      : raw_(raw), enc_(enc), level_(level), literal_(literal) {}

  std::string_view raw() const { return raw_; }
  Level level() const { return level_; }
  const Encoding& encoding() const { return enc_; }
  bool empty() const { return raw_.empty(); }
  bool present() const { return !raw_.empty(); }
  bool isNull() const { return raw_ == "\"\""; }

  // The decoded value of the first atomic part: a field reads as its first repetition, a
  // repetition as its first component, a component as its first sub-component (the standard's
  // rule for reading a composite where a primitive was expected). "" for absent and null.
  std::string value() const;

  // Children one level down. Asking an element for a level above or at its own (component(1) of
  // a component, repetition(0) of a component) returns the element itself for index 1 / 0 and an
  // empty element otherwise; asking a field for components reads its first repetition, asking a
  // field or repetition for sub-components reads its first component.
  size_t repetitionCount() const;  // 0 when absent
  Element repetition(size_t index0) const;
  std::vector<Element> repetitions() const;  // all of them in one pass
  size_t componentCount() const;
  Element component(int n) const;
  size_t subcomponentCount() const;
  Element subcomponent(int n) const;

  // The parts of this element as a composite data type: components of a field/repetition,
  // sub-components of a component. Typed readers (types.h) use this so that one reader works
  // for a type whether it sits in a field (HD in MSH-4) or inside a component (HD in CX-4).
  size_t partCount() const;
  Element part(int n) const;

 private:
  std::string_view raw_;
  Encoding enc_;
  Level level_ = Level::Field;
  bool literal_ = false;  // MSH-1 / MSH-2: never split or decoded
};

// One segment: its id and its fields as raw text. Field 0 is the id.
class Segment {
 public:
  // A new segment for building messages. "MSH" starts with MSH-1 and MSH-2 from enc.
  explicit Segment(std::string_view id, const Encoding& enc = {});

  const std::string& id() const { return fields_[0]; }
  const Encoding& encoding() const { return enc_; }
  // Highest field number present (trailing empty fields that were on the wire count).
  int fieldCount() const { return static_cast<int>(fields_.size()) - 1; }
  // Field n (1-based); an empty element past the end. field(0) is the id.
  Element field(int n) const;
  std::string_view rawField(int n) const;

  // Builders. Values are escaped; raw text is taken as already escaped. rep is 0-based,
  // component/sub 1-based with 0 meaning "the whole level". Missing levels are created; trailing
  // empty parts left by the change are trimmed. MSH-1 and MSH-2 cannot be set (BadArgument).
  void set(int field, std::string_view value);  // the whole field (all repetitions)
  void set(int field, size_t rep, int component, int sub, std::string_view value);
  void setRaw(int field, std::string raw);
  void setRaw(int field, size_t rep, int component, int sub, std::string_view raw);

  // The segment as on the wire, without terminator.
  std::string encode() const;
  void encodeTo(std::string& out) const;

 private:
  friend class Message;
  Segment() = default;
  std::vector<std::string> fields_;  // [0] id; MSH: [1] field separator, [2] encoding chars
  Encoding enc_;
};

struct ParseOptions {
  size_t maxBytes = 16u << 20;  // larger input is refused (Oversized) before any work
  // In a message declared ASCII (MSH-18 empty or "ASCII"), 8-bit bytes are an error when true.
  // When false they are read as UTF-8 if they form valid UTF-8 and as 8859/1 otherwise (both
  // noted in warnings()); encode() writes them back the way they came.
  bool strictAscii = false;
};

class Message {
 public:
  // A new message holding only MSH (MSH-1, MSH-2 and, unless ASCII, MSH-18 from enc).
  explicit Message(const Encoding& enc = {});

  // Reads a message; throws Hl7Error (positioned) for the failures listed in error.h.
  static Message parse(std::string_view bytes, const ParseOptions& options = {});

  // The message as bytes in its character set, each segment followed by "\r".
  std::string encode() const;

  const Encoding& encoding() const { return enc_; }
  const std::vector<Segment>& segments() const { return segments_; }
  size_t segmentCount() const { return segments_.size(); }
  Segment& segmentAt(size_t index0);

  const Segment* find(std::string_view id, int occurrence = 1) const;
  Segment* find(std::string_view id, int occurrence = 1);
  // Like find() but throws Hl7Error(NotFound).
  const Segment& segment(std::string_view id, int occurrence = 1) const;
  Segment& segment(std::string_view id, int occurrence = 1);
  int count(std::string_view id) const;

  Segment& addSegment(std::string_view id);

  // Path form: SEG[(occurrence)]-FIELD[(repetition)][.COMPONENT[.SUBCOMPONENT]], every number
  // 1-based, as HL7 documents count: "PID-3" (first repetition's whole text through value()),
  // "PID-3(2).1" (2nd repetition, component 1), "PID-3(1).4.2" (its assigning authority's
  // universal id), "OBX(3)-5" (5th field of the 3rd OBX), "MSH-9.2".
  // at() returns an empty element when the segment or part is absent; BadPath for a malformed
  // path. get() is at(path).value(). set() escapes value and throws NotFound for a missing
  // segment.
  Element at(std::string_view path) const;
  std::string get(std::string_view path) const { return at(path).value(); }
  void set(std::string_view path, std::string_view value);

  // MSH conveniences (decoded values).
  std::string messageType() const;       // MSH-9.1
  std::string triggerEvent() const;      // MSH-9.2
  std::string messageStructure() const;  // MSH-9.3 (often absent before v2.5)
  std::string controlId() const;         // MSH-10
  std::string processingId() const;      // MSH-11.1
  std::string version() const;           // MSH-12.1
  // 230, 231, 240, 250, 251, 260, 270, 271, 280, 281, 282; 0 when not one of them.
  int versionCode() const;

  // Things accepted but worth an operator's attention (empty MSH-10, charset guesses).
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  Encoding enc_;
  std::vector<Segment> segments_;
  std::vector<std::string> warnings_;
};

// 230 for "2.3", 251 for "2.5.1", ...; 0 when the text is not a version this library reads.
int versionCodeOf(std::string_view version);

}  // namespace hearth::hl7
