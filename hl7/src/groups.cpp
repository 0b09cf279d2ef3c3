// Segment group tables and the greedy matcher (contracts in groups.h).
#include "hearth/hl7/groups.h"

#include <algorithm>
#include <map>
#include <stdexcept>

namespace hearth::hl7 {

namespace {

// One structure per line, in the standard's abstract message syntax.
const std::pair<std::string_view, std::string_view> kStructures[] = {
    {"ACK", "MSH [{SFT}] [UAC] MSA [{ERR}]"},
    {"ADT_A01",
     "MSH [{SFT}] [UAC] EVN PID [PD1] [{ARV}] [{ROL}] [{NK1}] PV1 [PV2] [{ARV}] [{ROL}] [{DB1}] [{OBX}] [{AL1}] "
     "[{DG1}] [DRG] [{PROCEDURE: PR1 [{ROL}]}] [{GT1}] [{INSURANCE: IN1 [IN2] [{IN3}] [{ROL}]}] [ACC] [UB1] [UB2] "
     "[PDA]"},
    {"ADT_A02", "MSH [{SFT}] [UAC] EVN PID [PD1] [{ROL}] PV1 [PV2] [{ROL}] [{DB1}] [{OBX}] [PDA]"},
    {"ADT_A03",
     "MSH [{SFT}] [UAC] EVN PID [PD1] [{ARV}] [{ROL}] [{NK1}] PV1 [PV2] [{ARV}] [{ROL}] [{DB1}] [{AL1}] [{DG1}] "
     "[DRG] [{PROCEDURE: PR1 [{ROL}]}] [{OBX}] [{GT1}] [{INSURANCE: IN1 [IN2] [{IN3}] [{ROL}]}] [ACC] [PDA]"},
    {"ADT_A05",
     "MSH [{SFT}] [UAC] EVN PID [PD1] [{ARV}] [{ROL}] [{NK1}] PV1 [PV2] [{ARV}] [{ROL}] [{DB1}] [{OBX}] [{AL1}] "
     "[{DG1}] [DRG] [{PROCEDURE: PR1 [{ROL}]}] [{GT1}] [{INSURANCE: IN1 [IN2] [{IN3}] [{ROL}]}] [ACC] [UB1] [UB2]"},
    {"ADT_A06",
     "MSH [{SFT}] [UAC] EVN PID [PD1] [{ROL}] [MRG] [{NK1}] PV1 [PV2] [{ROL}] [{DB1}] [{OBX}] [{AL1}] [{DG1}] "
     "[DRG] [{PROCEDURE: PR1 [{ROL}]}] [{GT1}] [{INSURANCE: IN1 [IN2] [{IN3}] [{ROL}]}] [ACC] [UB1] [UB2]"},
    {"ADT_A09", "MSH [{SFT}] [UAC] EVN PID [PD1] PV1 [PV2] [{DB1}] [{OBX}] [{DG1}]"},
    {"ADT_A12", "MSH [{SFT}] [UAC] EVN PID [PD1] PV1 [PV2] [{DB1}] [{OBX}] [DG1]"},
    {"ADT_A21", "MSH [{SFT}] [UAC] EVN PID [PD1] PV1 [PV2] [{DB1}] [{OBX}]"},
    {"ADT_A30", "MSH [{SFT}] [UAC] EVN PID [PD1] MRG"},
    {"ADT_A39", "MSH [{SFT}] [UAC] EVN {PATIENT: PID [PD1] MRG [PV1]}"},
    {"SIU_S12",
     "MSH [{SFT}] [UAC] SCH [{TQ1}] [{NTE}] [{PATIENT: PID [PD1] [{PRT}] [PV1] [PV2] [{PRT}] [{OBX}] [{DG1}]}] "
     "{RESOURCES: RGS [{SERVICE: AIS [{NTE}]}] [{GENERAL_RESOURCE: AIG [{NTE}]}] "
     "[{LOCATION_RESOURCE: AIL [{NTE}]}] [{PERSONNEL_RESOURCE: AIP [{NTE}]}]}"},
    // v2.3 puts NK1 before the patient NTEs, v2.5 after: both orders are expected.
    {"ORU_R01",
     "MSH [{SFT}] [UAC] {PATIENT_RESULT: [PATIENT: PID [PD1] [{PRT}] [{NTE}] [{NK1}] [{NTE}] [{ARV}] "
     "[VISIT: PV1 [PV2] [{PRT}]]] {ORDER_OBSERVATION: [ORC] OBR [{NTE}] [{PRT}] [{TIMING_QTY: TQ1 [{TQ2}]}] [CTD] "
     "[{OBSERVATION: OBX [{PRT}] [{NTE}]}] [{FT1}] [{CTI}] [{SPECIMEN: SPM [{OBX}]}]}} [DSC]"},
    {"ORM_O01",
     "MSH [{SFT}] [{NTE}] [PATIENT: PID [PD1] [{NTE}] [PATIENT_VISIT: PV1 [PV2]] [{INSURANCE: IN1 [IN2] [IN3]}] "
     "[GT1] [{AL1}]] {ORDER: ORC [ORDER_DETAIL: <OBR|RQD|RQ1|RXO|ODS|ODT> [{NTE}] [CTD] [{DG1}] "
     "[{OBSERVATION: OBX [{NTE}]}]] [{FT1}] [{CTI}] [BLG]}"},
    {"OML_O21",
     "MSH [{SFT}] [UAC] [{NTE}] [PATIENT: PID [PD1] [{PRT}] [{NTE}] [{NK1}] [{ARV}] [PATIENT_VISIT: PV1 [PV2] "
     "[{PRT}]] [{INSURANCE: IN1 [IN2] [IN3]}] [GT1] [{AL1}]] {ORDER: ORC [{PRT}] [{TIMING: TQ1 [{TQ2}]}] "
     "[OBSERVATION_REQUEST: OBR [{PRT}] [TCD] [{NTE}] [CTD] [{DG1}] [{OBSERVATION: OBX [{PRT}] [TCD] [{NTE}]}] "
     "[{SPECIMEN: SPM [{OBX}] [{CONTAINER: SAC [{OBX}]}]}]] [{FT1}] [{CTI}] [BLG]}"},
    {"RDE_O11",
     "MSH [{SFT}] [UAC] [{NTE}] [PATIENT: PID [PD1] [{PRT}] [{NTE}] [{ARV}] [PATIENT_VISIT: PV1 [PV2] [{PRT}]] "
     "[{INSURANCE: IN1 [IN2] [IN3]}] [GT1] [{AL1}]] {ORDER: ORC [{PRT}] [{TIMING: TQ1 [{TQ2}]}] "
     "[ORDER_DETAIL: RXO [{NTE}] {RXR} [{COMPONENT: RXC [{NTE}]}]] [{PRT}] RXE [{PRT}] [{NTE}] "
     "[{TIMING_ENCODED: TQ1 [{TQ2}]}] {RXR} [{RXC}] [{OBSERVATION: OBX [{PRT}] [{NTE}]}] [{FT1}] [BLG] [{CTI}]}"},
    // v2.3/2.4 have patient-level OBX before FT1; v2.5 moved them into COMMON_ORDER.
    {"DFT_P03",
     "MSH [{SFT}] [UAC] EVN PID [PD1] [{PRT}] [{ROL}] [PV1] [PV2] [{PRT}] [{ROL}] [{DB1}] [{OBX}] "
     "[{COMMON_ORDER: ORC [{TIMING_QUANTITY: TQ1 [{TQ2}]}] [ORDER: OBR [{NTE}]] [{OBSERVATION: OBX [{NTE}]}]}] "
     "{FINANCIAL: FT1 [{NTE}] [{FINANCIAL_PROCEDURE: PR1 [{ROL}]}] [{FINANCIAL_COMMON_ORDER: ORC "
     "[{FINANCIAL_TIMING_QUANTITY: TQ1 [{TQ2}]}] [FINANCIAL_ORDER: OBR [{NTE}]] "
     "[{FINANCIAL_OBSERVATION: OBX [{NTE}]}]}]} [{DG1}] [DRG] [{GT1}] [{INSURANCE: IN1 [IN2] [{IN3}] [{ROL}]}] "
     "[ACC]"},
};

// Message type + trigger -> structure, where MSH-9.3 is absent (common before v2.5).
const std::pair<std::string_view, std::string_view> kEvents[] = {
    {"ADT^A01", "ADT_A01"}, {"ADT^A02", "ADT_A02"}, {"ADT^A03", "ADT_A03"}, {"ADT^A04", "ADT_A01"},
    {"ADT^A05", "ADT_A05"}, {"ADT^A06", "ADT_A06"}, {"ADT^A07", "ADT_A06"}, {"ADT^A08", "ADT_A01"},
    {"ADT^A09", "ADT_A09"}, {"ADT^A10", "ADT_A09"}, {"ADT^A11", "ADT_A09"}, {"ADT^A12", "ADT_A12"},
    {"ADT^A13", "ADT_A01"}, {"ADT^A14", "ADT_A05"}, {"ADT^A21", "ADT_A21"}, {"ADT^A22", "ADT_A21"},
    {"ADT^A23", "ADT_A21"}, {"ADT^A25", "ADT_A21"}, {"ADT^A26", "ADT_A21"}, {"ADT^A27", "ADT_A21"},
    {"ADT^A28", "ADT_A05"}, {"ADT^A29", "ADT_A21"}, {"ADT^A31", "ADT_A05"}, {"ADT^A32", "ADT_A21"},
    {"ADT^A33", "ADT_A21"}, {"ADT^A30", "ADT_A30"}, {"ADT^A34", "ADT_A30"}, {"ADT^A35", "ADT_A30"},
    {"ADT^A36", "ADT_A30"}, {"ADT^A46", "ADT_A30"}, {"ADT^A47", "ADT_A30"}, {"ADT^A48", "ADT_A30"},
    {"ADT^A49", "ADT_A30"}, {"ADT^A39", "ADT_A39"}, {"ADT^A40", "ADT_A39"}, {"ADT^A41", "ADT_A39"},
    {"ADT^A42", "ADT_A39"}, {"ORU^R01", "ORU_R01"}, {"ORM^O01", "ORM_O01"}, {"OML^O21", "OML_O21"},
    {"RDE^O01", "RDE_O11"}, {"RDE^O11", "RDE_O11"}, {"RDE^O25", "RDE_O11"}, {"DFT^P03", "DFT_P03"},
};

struct Node {
  std::string name;              // segment id(s) "OBR|RQD" or group name
  std::vector<std::string> ids;  // segment node: the ids it accepts
  bool isGroup = false, optional = false, repeating = false;
  std::vector<Node> children;
  std::vector<std::string> first;  // ids that can start this node

  bool starts(const std::string& id) const {
    const auto& set = isGroup ? first : ids;
    return std::find(set.begin(), set.end(), id) != set.end();
  }
};

class SyntaxParser {
 public:
  explicit SyntaxParser(std::string_view text) {
    std::string cur;
    auto flush = [&] {
      if (!cur.empty()) tokens_.push_back(cur), cur.clear();
    };
    for (const char c : text) {
      if (c == ' ') {
        flush();
      } else if (c == '[' || c == ']' || c == '{' || c == '}' || c == '<' || c == '>' || c == '|') {
        flush();
        tokens_.emplace_back(1, c);
      } else {
        cur.push_back(c);
      }
    }
    flush();
  }

  std::vector<Node> sequence(const std::string& until) {
    std::vector<Node> out;
    while (pos_ < tokens_.size() && tokens_[pos_] != until) out.push_back(item());
    if (!until.empty()) {
      if (pos_ >= tokens_.size()) throw std::logic_error("structure table: missing '" + until + "'");
      ++pos_;
    }
    return out;
  }

 private:
  Node item() {
    const std::string tok = tokens_[pos_++];
    if (tok == "[" || tok == "{") {
      std::string name;
      if (pos_ < tokens_.size() && tokens_[pos_].size() > 1 && tokens_[pos_].back() == ':') {
        name = tokens_[pos_].substr(0, tokens_[pos_].size() - 1);
        ++pos_;
      }
      std::vector<Node> children = sequence(tok == "[" ? "]" : "}");
      Node n;
      if (!name.empty()) {
        n.name = name;
        n.isGroup = true;
        n.children = std::move(children);
      } else if (children.size() == 1) {
        n = std::move(children[0]);
      } else {
        throw std::logic_error("structure table: an unnamed bracket must hold one item");
      }
      (tok == "[" ? n.optional : n.repeating) = true;
      return n;
    }
    Node n;
    if (tok == "<") {
      while (pos_ < tokens_.size() && tokens_[pos_] != ">") {
        if (tokens_[pos_] != "|") n.ids.push_back(tokens_[pos_]);
        ++pos_;
      }
      if (pos_ >= tokens_.size() || n.ids.empty()) throw std::logic_error("structure table: bad choice");
      ++pos_;
    } else {
      if (tok.size() != 3) throw std::logic_error("structure table: bad segment id '" + tok + "'");
      n.ids.push_back(tok);
    }
    for (const auto& id : n.ids) n.name += (n.name.empty() ? "" : "|") + id;
    return n;
  }

  std::vector<std::string> tokens_;
  size_t pos_ = 0;
};

void computeFirst(Node& n) {
  if (!n.isGroup) return;
  for (Node& c : n.children) computeFirst(c);
  for (const Node& c : n.children) {
    for (const auto& id : c.isGroup ? c.first : c.ids)
      if (std::find(n.first.begin(), n.first.end(), id) == n.first.end()) n.first.push_back(id);
    if (!c.optional) break;
  }
}

const std::map<std::string, Node, std::less<>>& structures() {
  static const std::map<std::string, Node, std::less<>> table = [] {
    std::map<std::string, Node, std::less<>> m;
    for (const auto& [id, syntax] : kStructures) {
      SyntaxParser p(syntax);
      Node root;
      root.name = std::string(id);
      root.isGroup = true;
      root.children = p.sequence("");
      computeFirst(root);
      m.emplace(root.name, std::move(root));
    }
    return m;
  }();
  return table;
}

}  // namespace

// Runs the greedy placement of groups.h over one message.
struct GroupBuilder {
  struct Frame {
    const Node* def;
    Group* inst;
    int ci = -1;              // last matched child index
    std::vector<int> counts;  // matches per child
    std::string path;
  };
  GroupTree& tree;
  std::vector<Frame> stack;

  void closeFrame(const Frame& f) {
    for (size_t j = 0; j < f.def->children.size(); ++j) {
      const Node& c = f.def->children[j];
      if (!c.optional && f.counts[j] == 0)
        tree.issues_.push_back(f.path + ": required " + (c.isGroup ? "group " : "") + c.name + " is missing");
    }
  }

  void enter(size_t depth, size_t j, const Segment* seg) {
    while (true) {
      Frame& f = stack[depth];
      f.ci = static_cast<int>(j);
      const int rep = ++f.counts[j];
      const Node& c = f.def->children[j];
      if (!c.isGroup) {
        f.inst->items_.push_back(Group::Item{seg, nullptr, false});
        return;
      }
      auto g = std::make_unique<Group>();
      g->name_ = c.name;
      Group* gp = g.get();
      f.inst->owned_.push_back(std::move(g));
      f.inst->items_.push_back(Group::Item{nullptr, gp, false});
      std::string path = f.path + "/" + c.name + "(" + std::to_string(rep) + ")";
      stack.push_back(Frame{&c, gp, -1, std::vector<int>(c.children.size(), 0), std::move(path)});
      ++depth;
      // The first-set guarantees a child of the new group starts with this segment.
      j = 0;
      while (!c.children[j].starts(seg->id())) ++j;
    }
  }

  void place(const Segment* seg, size_t index) {
    for (size_t d = stack.size(); d-- > 0;) {
      const Frame& f = stack[d];
      const auto& ch = f.def->children;
      for (size_t j = f.ci < 0 ? 0 : static_cast<size_t>(f.ci); j < ch.size(); ++j) {
        if (static_cast<int>(j) == f.ci && !ch[j].repeating) continue;
        if (!ch[j].starts(seg->id())) continue;
        while (stack.size() > d + 1) {
          closeFrame(stack.back());
          stack.pop_back();
        }
        enter(d, j, seg);
        return;
      }
    }
    stack.back().inst->items_.push_back(Group::Item{seg, nullptr, true});
    if (seg->id()[0] != 'Z')  // Z-segments are site-defined: never in a table, not an issue
      tree.issues_.push_back("segment " + std::to_string(index) + " (" + seg->id() + ") is not expected at " +
                             stack.back().path + "; kept there");
  }
};

const Segment* Group::segment(std::string_view id) const {
  for (const Item& i : items_)
    if (i.segment && i.segment->id() == id) return i.segment;
  return nullptr;
}

std::vector<const Segment*> Group::segments(std::string_view id) const {
  std::vector<const Segment*> out;
  for (const Item& i : items_)
    if (i.segment && i.segment->id() == id) out.push_back(i.segment);
  return out;
}

const Group* Group::group(std::string_view name) const {
  for (const Item& i : items_)
    if (i.group && i.group->name() == name) return i.group;
  return nullptr;
}

std::vector<const Group*> Group::groups(std::string_view name) const {
  std::vector<const Group*> out;
  for (const Item& i : items_)
    if (i.group && i.group->name() == name) out.push_back(i.group);
  return out;
}

std::vector<const Segment*> Group::allSegments() const {
  std::vector<const Segment*> out;
  for (const Item& i : items_) {
    if (i.segment) {
      out.push_back(i.segment);
    } else {
      const auto sub = i.group->allSegments();
      out.insert(out.end(), sub.begin(), sub.end());
    }
  }
  return out;
}

std::string structureIdFor(std::string_view type, std::string_view trigger, std::string_view msh93) {
  const auto& s = structures();
  if (!msh93.empty() && s.find(msh93) != s.end()) return std::string(msh93);
  if (type == "ACK") return "ACK";
  const std::string key = std::string(type) + "^" + std::string(trigger);
  for (const auto& [event, structure] : kEvents)
    if (event == key) return std::string(structure);
  if (type == "SIU" && trigger.size() == 3 && trigger[0] == 'S') {
    const int n = (trigger[1] - '0') * 10 + (trigger[2] - '0');
    if (n >= 12 && n <= 26) return "SIU_S12";
  }
  return {};
}

std::vector<std::string> knownStructures() {
  std::vector<std::string> out;
  for (const auto& [id, node] : structures()) out.push_back(id);
  return out;
}

GroupTree GroupTree::build(const Message& msg) {
  const std::string id = structureIdFor(msg.messageType(), msg.triggerEvent(), msg.messageStructure());
  if (!id.empty()) return build(msg, id);
  GroupTree t;
  t.root_ = std::make_unique<Group>();
  t.root_->name_ = msg.messageType() + "_" + msg.triggerEvent();
  for (const Segment& s : msg.segments()) t.root_->items_.push_back(Group::Item{&s, nullptr, false});
  return t;
}

GroupTree GroupTree::build(const Message& msg, std::string_view structureId) {
  const auto& s = structures();
  const auto it = s.find(structureId);
  if (it == s.end())
    throw Hl7Error(ErrorCode::BadArgument, "no group table for structure " + std::string(structureId.substr(0, 16)));
  GroupTree t;
  t.structureId_ = it->first;
  t.known_ = true;
  t.root_ = std::make_unique<Group>();
  t.root_->name_ = it->first;
  GroupBuilder b{t, {}};
  b.stack.push_back(GroupBuilder::Frame{&it->second, t.root_.get(), -1,
                                        std::vector<int>(it->second.children.size(), 0), it->first});
  size_t index = 0;
  for (const Segment& seg : msg.segments()) b.place(&seg, ++index);
  while (!b.stack.empty()) {
    b.closeFrame(b.stack.back());
    b.stack.pop_back();
  }
  return t;
}

}  // namespace hearth::hl7
