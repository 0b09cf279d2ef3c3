#pragma once
// Segment groups: the tree the standard's message structures define over a flat segment list
// (ORU_R01 -> PATIENT_RESULT -> ORDER_OBSERVATION -> OBSERVATION ...).
//
// Each supported structure is one line of the standard's abstract syntax (a small table, see
// groups.cpp): SEG required, [ ] optional, { } repeating, [{ }] both, NAME: ... a named group,
// <A|B> a choice. The tables are the v2.5.1 structures with the segments other versions
// (2.3 ... 2.8) add or move, so one table reads every supported version.
//
// Matching is greedy and never loses a segment: each segment goes to the first place at or after
// the current position of the innermost open group where it may occur, else to a new repetition
// of an enclosing group, else (Z-segments, out-of-order segments) it is kept as an "unexpected"
// item of the innermost open group. Unexpected segments and missing required segments/groups
// are listed in issues(); they are not errors (the mapping decides what it needs).
//
// A GroupTree refers to the Message's segments: keep the Message alive and unmodified.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/hl7/message.h"

namespace hearth::hl7 {

class Group {
 public:
  // One child in message order: a segment or a nested group (exactly one is set).
  struct Item {
    const Segment* segment = nullptr;
    const Group* group = nullptr;
    bool unexpected = false;  // a segment the structure does not place here
  };

  const std::string& name() const { return name_; }
  const std::vector<Item>& items() const { return items_; }

  // Direct children by name (segments: expected and unexpected ones alike).
  const Segment* segment(std::string_view id) const;
  std::vector<const Segment*> segments(std::string_view id) const;
  const Group* group(std::string_view name) const;
  std::vector<const Group*> groups(std::string_view name) const;
  // Every segment in this group and below, in message order.
  std::vector<const Segment*> allSegments() const;

 private:
  friend class GroupTree;
  friend struct GroupBuilder;
  std::string name_;
  std::vector<Item> items_;
  std::vector<std::unique_ptr<Group>> owned_;
};

class GroupTree {
 public:
  // Builds the tree for the message's structure (MSH-9.3, else from MSH-9.1/9.2). A message of
  // an unknown structure gets a flat root holding every segment and known() == false.
  static GroupTree build(const Message& msg);
  // Builds with a named structure (e.g. "ADT_A01"); BadArgument when it is not known.
  static GroupTree build(const Message& msg, std::string_view structureId);
  // The tree points into the message: building from a temporary would dangle.
  static GroupTree build(Message&&) = delete;
  static GroupTree build(Message&&, std::string_view) = delete;

  const Group& root() const { return *root_; }
  const std::string& structureId() const { return structureId_; }
  bool known() const { return known_; }
  // "segment 9 (ZPI) is not expected at ORU_R01/PATIENT_RESULT/PATIENT", "ORU_R01/PATIENT_RESULT(1)/
  // ORDER_OBSERVATION(2): required OBR is missing", ...
  const std::vector<std::string>& issues() const { return issues_; }

 private:
  friend struct GroupBuilder;
  std::unique_ptr<Group> root_;
  std::string structureId_;
  bool known_ = false;
  std::vector<std::string> issues_;
};

// The structure id for a message type/trigger ("ADT","A04" -> "ADT_A01"; "SIU","S14" -> "SIU_S12");
// msh93 (MSH-9.3) wins when it names a known structure. "" when unknown.
std::string structureIdFor(std::string_view type, std::string_view trigger, std::string_view msh93 = {});
// The structures this library has tables for.
std::vector<std::string> knownStructures();

}  // namespace hearth::hl7
