// Segment groups: every table parses, events resolve to structures, the corpus messages group as
// the standard says, nothing is ever lost, and missing/unexpected segments are reported.
#include <cppunit/extensions/HelperMacros.h>

#include <algorithm>

#include "hearth/hl7/groups.h"
#include "hl7_test_support.h"

using namespace hearth::hl7;
using hl7test::corpus;

namespace {

std::vector<std::string> ids(const std::vector<const Segment*>& segs) {
  std::vector<std::string> out;
  for (const Segment* s : segs) out.push_back(s->id());
  return out;
}

// The direct children of a group as "SEG" / "GROUP" names, unexpected segments marked with '!'.
std::string shape(const Group& g) {
  std::string out;
  for (const auto& item : g.items()) {
    if (!out.empty()) out += ' ';
    out += item.segment ? (item.unexpected ? "!" : "") + item.segment->id() : item.group->name();
  }
  return out;
}

const std::string kMsh = "MSH|^~\\&|A|B|C|D|20250101||";

}  // namespace

class GroupsTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(GroupsTest);
  CPPUNIT_TEST(everyTableLoads);
  CPPUNIT_TEST(eventsResolveToStructures);
  CPPUNIT_TEST(noSegmentIsEverLost);
  CPPUNIT_TEST(oruLab);
  CPPUNIT_TEST(oruVersionDifferences);
  CPPUNIT_TEST(adtA01FamilyWithInsurance);
  CPPUNIT_TEST(adtMergeHasOneGroupPerPatient);
  CPPUNIT_TEST(siuResources);
  CPPUNIT_TEST(ordersOrmOmlRde);
  CPPUNIT_TEST(dftFinancialAndInsurance);
  CPPUNIT_TEST(missingAndUnexpectedSegmentsAreReported);
  CPPUNIT_TEST(unknownStructureIsFlat);
  CPPUNIT_TEST_SUITE_END();

 public:
  void everyTableLoads() {
    const auto known = knownStructures();
    for (const char* s : {"ACK", "ADT_A01", "ADT_A02", "ADT_A03", "ADT_A05", "ADT_A06", "ADT_A09", "ADT_A12", "ADT_A21",
                          "ADT_A30", "ADT_A39", "SIU_S12", "ORU_R01", "ORM_O01", "OML_O21", "RDE_O11", "DFT_P03"}) {
      CPPUNIT_ASSERT_MESSAGE(s, std::find(known.begin(), known.end(), s) != known.end());
    }
    const Message m = Message::parse(kMsh + "ADT^A01|C1|P|2.5\r");
    for (const auto& s : known) {
      const GroupTree t = GroupTree::build(m, s);
      CPPUNIT_ASSERT_EQUAL(s, t.structureId());
      CPPUNIT_ASSERT_EQUAL(size_t(1), t.root().allSegments().size());
    }
    CPPUNIT_ASSERT_THROW(GroupTree::build(m, "XYZ_Q99"), Hl7Error);
  }

  void eventsResolveToStructures() {
    CPPUNIT_ASSERT_EQUAL(std::string("ADT_A01"), structureIdFor("ADT", "A01"));
    CPPUNIT_ASSERT_EQUAL(std::string("ADT_A01"), structureIdFor("ADT", "A04"));
    CPPUNIT_ASSERT_EQUAL(std::string("ADT_A01"), structureIdFor("ADT", "A08"));
    CPPUNIT_ASSERT_EQUAL(std::string("ADT_A01"), structureIdFor("ADT", "A13"));
    CPPUNIT_ASSERT_EQUAL(std::string("ADT_A05"), structureIdFor("ADT", "A28"));
    CPPUNIT_ASSERT_EQUAL(std::string("ADT_A05"), structureIdFor("ADT", "A31"));
    CPPUNIT_ASSERT_EQUAL(std::string("ADT_A03"), structureIdFor("ADT", "A03"));
    CPPUNIT_ASSERT_EQUAL(std::string("ADT_A39"), structureIdFor("ADT", "A40"));
    CPPUNIT_ASSERT_EQUAL(std::string("ADT_A06"), structureIdFor("ADT", "A07"));
    for (int n = 12; n <= 26; ++n)
      CPPUNIT_ASSERT_EQUAL(std::string("SIU_S12"), structureIdFor("SIU", "S" + std::to_string(n)));
    CPPUNIT_ASSERT_EQUAL(std::string(), structureIdFor("SIU", "S27"));
    CPPUNIT_ASSERT_EQUAL(std::string("RDE_O11"), structureIdFor("RDE", "O01"));
    CPPUNIT_ASSERT_EQUAL(std::string("ACK"), structureIdFor("ACK", "A01", "ACK"));
    CPPUNIT_ASSERT_EQUAL(std::string("ACK"), structureIdFor("ACK", ""));
    CPPUNIT_ASSERT_EQUAL(std::string("ADT_A05"), structureIdFor("ADT", "A01", "ADT_A05"));  // MSH-9.3 wins
    CPPUNIT_ASSERT_EQUAL(std::string("ADT_A01"), structureIdFor("ADT", "A01", "ADT_X99"));  // unknown 9.3
    CPPUNIT_ASSERT_EQUAL(std::string(), structureIdFor("MFN", "M02"));
  }

  void noSegmentIsEverLost() {
    for (const auto& name : hl7test::corpusNames()) {
      const Message m = Message::parse(corpus(name));
      const GroupTree t = GroupTree::build(m);
      CPPUNIT_ASSERT_MESSAGE(name, t.known());
      const auto all = t.root().allSegments();
      CPPUNIT_ASSERT_EQUAL_MESSAGE(name, m.segmentCount(), all.size());
      for (size_t i = 0; i < all.size(); ++i) CPPUNIT_ASSERT_MESSAGE(name, all[i] == &m.segments()[i]);
      // The corpus follows the standard's structures: nothing missing, only Z-segments unexpected.
      std::string issues;
      for (const auto& s : t.issues()) issues += s + "; ";
      CPPUNIT_ASSERT_MESSAGE(name + ": " + issues, t.issues().empty());
    }
  }

  void oruLab() {
    const Message m = Message::parse(corpus("oru_r01_lab_v251.hl7"));
    const GroupTree t = GroupTree::build(m);
    CPPUNIT_ASSERT_EQUAL(std::string("ORU_R01"), t.structureId());
    CPPUNIT_ASSERT_EQUAL(std::string("MSH PATIENT_RESULT"), shape(t.root()));
    const Group* pr = t.root().group("PATIENT_RESULT");
    CPPUNIT_ASSERT_EQUAL(std::string("PATIENT ORDER_OBSERVATION ORDER_OBSERVATION"), shape(*pr));
    CPPUNIT_ASSERT_EQUAL(std::string("PID NTE VISIT"), shape(*pr->group("PATIENT")));
    CPPUNIT_ASSERT_EQUAL(std::string("PV1"), shape(*pr->group("PATIENT")->group("VISIT")));
    const auto orders = pr->groups("ORDER_OBSERVATION");
    CPPUNIT_ASSERT_EQUAL(std::string("ORC OBR TIMING_QTY OBSERVATION OBSERVATION OBSERVATION OBSERVATION OBSERVATION "
                                     "OBSERVATION OBSERVATION SPECIMEN"),
                         shape(*orders[0]));
    const auto obs = orders[0]->groups("OBSERVATION");
    CPPUNIT_ASSERT_EQUAL(size_t(7), obs.size());
    CPPUNIT_ASSERT_EQUAL(std::string("OBX NTE"), shape(*obs[1]));  // the creatinine note
    CPPUNIT_ASSERT_EQUAL(std::string("CWE"), obs[5]->segment("OBX")->field(2).value());
    CPPUNIT_ASSERT_EQUAL(std::string("SPM"), shape(*orders[0]->group("SPECIMEN")));
    CPPUNIT_ASSERT_EQUAL(std::string("ORC OBR OBSERVATION OBSERVATION OBSERVATION"), shape(*orders[1]));
    CPPUNIT_ASSERT_EQUAL(std::string("OBX NTE"), shape(*orders[1]->groups("OBSERVATION")[2]));
    CPPUNIT_ASSERT(t.issues().empty());
  }

  void oruVersionDifferences() {
    // v2.3: NK1 before the patient NTE, no ORC; both still expected.
    const Message v23 = Message::parse(corpus("oru_r01_text_v23.hl7"));
    const GroupTree t = GroupTree::build(v23);
    const Group* pr = t.root().group("PATIENT_RESULT");
    CPPUNIT_ASSERT_EQUAL(std::string("PID NK1 NTE VISIT"), shape(*pr->group("PATIENT")));
    const Group* order = pr->group("ORDER_OBSERVATION");
    CPPUNIT_ASSERT_EQUAL(std::string("OBR OBSERVATION OBSERVATION OBSERVATION"), shape(*order));
    CPPUNIT_ASSERT_EQUAL(std::string("OBX NTE"), shape(*order->groups("OBSERVATION")[1]));
    // v2.8: PRT after OBR and after OBX.
    const Message m28 = Message::parse(corpus("oru_r01_v28.hl7"));
    const GroupTree t28 = GroupTree::build(m28);
    const Group* o28 = t28.root().group("PATIENT_RESULT")->group("ORDER_OBSERVATION");
    CPPUNIT_ASSERT_EQUAL(std::string("ORC OBR PRT OBSERVATION"), shape(*o28));
    CPPUNIT_ASSERT_EQUAL(std::string("OBX PRT NTE"), shape(*o28->group("OBSERVATION")));
    // Several patients in one ORU: one PATIENT_RESULT each.
    const Message two = Message::parse(kMsh + "ORU^R01|C1|P|2.5.1\rPID|1\rOBR|1\rOBX|1\rPID|2\rOBR|1\rOBX|1\rOBX|2\r");
    const GroupTree t2 = GroupTree::build(two);
    const auto results = t2.root().groups("PATIENT_RESULT");
    CPPUNIT_ASSERT_EQUAL(size_t(2), results.size());
    CPPUNIT_ASSERT_EQUAL(std::string("2"), results[1]->group("PATIENT")->segment("PID")->field(1).value());
    CPPUNIT_ASSERT_EQUAL(size_t(2), results[1]->group("ORDER_OBSERVATION")->groups("OBSERVATION").size());
    CPPUNIT_ASSERT(t2.issues().empty());
  }

  void adtA01FamilyWithInsurance() {
    const Message m = Message::parse(corpus("adt_a01_v251.hl7"));
    const GroupTree t = GroupTree::build(m);
    CPPUNIT_ASSERT_EQUAL(std::string("ADT_A01"), t.structureId());
    CPPUNIT_ASSERT_EQUAL(std::string("MSH EVN PID PD1 NK1 NK1 PV1 PV2 AL1 AL1 DG1 INSURANCE INSURANCE"),
                         shape(t.root()));
    const auto ins = t.root().groups("INSURANCE");
    CPPUNIT_ASSERT_EQUAL(std::string("IN1 IN2"), shape(*ins[0]));
    // A Z-segment stays with the innermost open group (here the second insurance).
    CPPUNIT_ASSERT_EQUAL(std::string("IN1 !ZPI"), shape(*ins[1]));
    CPPUNIT_ASSERT_EQUAL(std::string("2"), ins[1]->segment("IN1")->field(1).value());
    CPPUNIT_ASSERT_EQUAL(size_t(2), t.root().segments("NK1").size());
    CPPUNIT_ASSERT_EQUAL(std::string("ZPI"), t.root().allSegments().back()->id());
    CPPUNIT_ASSERT(t.issues().empty());
    // A04 and A08 share the A01 structure; A28/A31 are ADT_A05; A03 has OBX after the procedures.
    const Message a04m = Message::parse(corpus("adt_a04_v23.hl7"));
    const Message a08m = Message::parse(corpus("adt_a08_v24.hl7"));
    const Message a31m = Message::parse(corpus("adt_a31_v26.hl7"));
    const Message a03m = Message::parse(corpus("adt_a03_v251.hl7"));
    CPPUNIT_ASSERT_EQUAL(std::string("ADT_A01"), GroupTree::build(a04m).structureId());
    CPPUNIT_ASSERT_EQUAL(std::string("ADT_A01"), GroupTree::build(a08m).structureId());
    CPPUNIT_ASSERT_EQUAL(std::string("ADT_A05"), GroupTree::build(a31m).structureId());
    const GroupTree a03 = GroupTree::build(a03m);
    CPPUNIT_ASSERT_EQUAL(std::string("MSH EVN PID PV1 DG1 PROCEDURE OBX OBX"), shape(a03.root()));
    CPPUNIT_ASSERT_EQUAL(std::string("PR1 ROL"), shape(*a03.root().group("PROCEDURE")));
    // v2.4 ROL after PID (A08).
    const GroupTree a08 = GroupTree::build(a08m);
    CPPUNIT_ASSERT_EQUAL(std::string("MSH EVN PID ROL PV1 OBX !ZAD"), shape(a08.root()));
  }

  void adtMergeHasOneGroupPerPatient() {
    const Message m = Message::parse(corpus("adt_a40_v25.hl7"));
    const GroupTree t = GroupTree::build(m);
    CPPUNIT_ASSERT_EQUAL(std::string("ADT_A39"), t.structureId());
    const auto patients = t.root().groups("PATIENT");
    CPPUNIT_ASSERT_EQUAL(size_t(2), patients.size());
    CPPUNIT_ASSERT_EQUAL(std::string("PID MRG"), shape(*patients[0]));
    CPPUNIT_ASSERT_EQUAL(std::string("LS-0099871"), patients[0]->segment("MRG")->field(1).value());
    CPPUNIT_ASSERT_EQUAL(std::string("LS-0012777"), patients[1]->segment("MRG")->field(1).value());
  }

  void siuResources() {
    for (const char* name : {"siu_s12_v251.hl7", "siu_s13_v24.hl7", "siu_s14_v25.hl7", "siu_s15_v25.hl7", "siu_s26_v251.hl7"}) {
      const Message m = Message::parse(corpus(name));
      const GroupTree t = GroupTree::build(m);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(name, std::string("SIU_S12"), t.structureId());
      const Group* res = t.root().group("RESOURCES");
      CPPUNIT_ASSERT_EQUAL_MESSAGE(name, std::string("RGS SERVICE GENERAL_RESOURCE LOCATION_RESOURCE PERSONNEL_RESOURCE"), shape(*res));
      CPPUNIT_ASSERT_EQUAL(std::string("AIS NTE"), shape(*res->group("SERVICE")));
      CPPUNIT_ASSERT_EQUAL(std::string("AIG"), shape(*res->group("GENERAL_RESOURCE")));
      CPPUNIT_ASSERT_EQUAL(std::string("AIL"), shape(*res->group("LOCATION_RESOURCE")));
      CPPUNIT_ASSERT_EQUAL(std::string("AIP"), shape(*res->group("PERSONNEL_RESOURCE")));
      CPPUNIT_ASSERT_EQUAL(std::string("PID PV1"), shape(*t.root().group("PATIENT")));
    }
    const Message s12m = Message::parse(corpus("siu_s12_v251.hl7"));
    const GroupTree s12 = GroupTree::build(s12m);
    CPPUNIT_ASSERT_EQUAL(std::string("MSH SCH NTE PATIENT RESOURCES"), shape(s12.root()));
    // Two resource groups.
    const Message two = Message::parse(kMsh + "SIU^S12|C1|P|2.5\rSCH|1\rRGS|1\rAIS|1\rAIP|1\rRGS|2\rAIL|1\rNTE|1\r");
    const GroupTree t2 = GroupTree::build(two);
    const auto res = t2.root().groups("RESOURCES");
    CPPUNIT_ASSERT_EQUAL(size_t(2), res.size());
    CPPUNIT_ASSERT_EQUAL(std::string("RGS LOCATION_RESOURCE"), shape(*res[1]));
    CPPUNIT_ASSERT_EQUAL(std::string("AIL NTE"), shape(*res[1]->group("LOCATION_RESOURCE")));
  }

  void ordersOrmOmlRde() {
    const Message ormm = Message::parse(corpus("orm_o01_v23.hl7"));
    const Message omlm = Message::parse(corpus("oml_o21_v251.hl7"));
    const Message rdem = Message::parse(corpus("rde_o11_v25.hl7"));
    const GroupTree orm = GroupTree::build(ormm);
    CPPUNIT_ASSERT_EQUAL(std::string("MSH PATIENT ORDER ORDER"), shape(orm.root()));
    CPPUNIT_ASSERT_EQUAL(std::string("PID PATIENT_VISIT INSURANCE"), shape(*orm.root().group("PATIENT")));
    const auto orders = orm.root().groups("ORDER");
    CPPUNIT_ASSERT_EQUAL(std::string("ORC ORDER_DETAIL"), shape(*orders[0]));
    CPPUNIT_ASSERT_EQUAL(std::string("OBR NTE DG1"), shape(*orders[0]->group("ORDER_DETAIL")));
    CPPUNIT_ASSERT_EQUAL(std::string("RB-ORD-9002"), orders[1]->group("ORDER_DETAIL")->segment("OBR")->field(2).value());

    const GroupTree oml = GroupTree::build(omlm);
    CPPUNIT_ASSERT_EQUAL(std::string("MSH PATIENT ORDER"), shape(oml.root()));
    const Group* order = oml.root().group("ORDER");
    CPPUNIT_ASSERT_EQUAL(std::string("ORC TIMING OBSERVATION_REQUEST"), shape(*order));
    const Group* req = order->group("OBSERVATION_REQUEST");
    CPPUNIT_ASSERT_EQUAL(std::string("OBR NTE DG1 OBSERVATION SPECIMEN"), shape(*req));
    CPPUNIT_ASSERT_EQUAL(std::string("SPM CONTAINER"), shape(*req->group("SPECIMEN")));
    CPPUNIT_ASSERT_EQUAL(std::string("SAC"), shape(*req->group("SPECIMEN")->group("CONTAINER")));

    const GroupTree rde = GroupTree::build(rdem);
    CPPUNIT_ASSERT_EQUAL(std::string("MSH PATIENT ORDER"), shape(rde.root()));
    CPPUNIT_ASSERT_EQUAL(std::string("PID PATIENT_VISIT AL1"), shape(*rde.root().group("PATIENT")));
    const Group* rx = rde.root().group("ORDER");
    // The TQ1 after ORC is the order's timing, the one after RXE the encoded timing.
    CPPUNIT_ASSERT_EQUAL(std::string("ORC TIMING RXE TIMING_ENCODED RXR RXC"), shape(*rx));
    CPPUNIT_ASSERT_EQUAL(std::string("20250321120000+0100"), rx->group("TIMING")->segment("TQ1")->field(8).value());
    CPPUNIT_ASSERT(rx->group("TIMING_ENCODED")->segment("TQ1")->field(8).empty());
  }

  void dftFinancialAndInsurance() {
    const Message m = Message::parse(corpus("dft_p03_v25.hl7"));
    const GroupTree t = GroupTree::build(m);
    CPPUNIT_ASSERT_EQUAL(std::string("MSH EVN PID PV1 FINANCIAL FINANCIAL DG1 GT1 INSURANCE"), shape(t.root()));
    const auto fin = t.root().groups("FINANCIAL");
    CPPUNIT_ASSERT_EQUAL(std::string("FT1 FINANCIAL_PROCEDURE"), shape(*fin[0]));
    CPPUNIT_ASSERT_EQUAL(std::string("PR1"), shape(*fin[0]->group("FINANCIAL_PROCEDURE")));
    CPPUNIT_ASSERT_EQUAL(std::string("FT1"), shape(*fin[1]));
    CPPUNIT_ASSERT_EQUAL(std::string("IN1 IN2 IN3"), shape(*t.root().group("INSURANCE")));
    CPPUNIT_ASSERT_EQUAL(std::string("93458"), fin[0]->segment("FT1")->field(7).value());
  }

  void missingAndUnexpectedSegmentsAreReported() {
    // ADT^A01 without PV1, an OBX before any OBR in an ORU, an NK1 after PV1.
    const Message noPv1 = Message::parse(kMsh + "ADT^A01|C1|P|2.5\rEVN|A01\rPID|1\r");
    const GroupTree a = GroupTree::build(noPv1);
    CPPUNIT_ASSERT_EQUAL(size_t(1), a.issues().size());
    CPPUNIT_ASSERT_EQUAL(std::string("ADT_A01: required PV1 is missing"), a.issues()[0]);

    const Message late = Message::parse(kMsh + "ADT^A01|C1|P|2.5\rEVN|A01\rPID|1\rPV1|1\rNK1|1\rAL1|1\r");
    const GroupTree b = GroupTree::build(late);
    CPPUNIT_ASSERT_EQUAL(std::string("MSH EVN PID PV1 !NK1 AL1"), shape(b.root()));
    CPPUNIT_ASSERT_EQUAL(size_t(1), b.issues().size());
    CPPUNIT_ASSERT_EQUAL(std::string("segment 5 (NK1) is not expected at ADT_A01; kept there"), b.issues()[0]);

    const Message oru = Message::parse(kMsh + "ORU^R01|C1|P|2.5\rPID|1\rOBX|1\rOBR|1\rOBX|2\r");
    const GroupTree c = GroupTree::build(oru);
    CPPUNIT_ASSERT_EQUAL(size_t(5), c.root().allSegments().size());
    CPPUNIT_ASSERT_EQUAL(std::string("PID !OBX"), shape(*c.root().group("PATIENT_RESULT")->group("PATIENT")));
    CPPUNIT_ASSERT_EQUAL(size_t(1), c.issues().size());
    CPPUNIT_ASSERT(c.issues()[0].find("segment 3 (OBX)") != std::string::npos);

    // A required group missing, and a required segment inside a repeated group.
    const Message empty = Message::parse(kMsh + "ORU^R01|C1|P|2.5\r");
    CPPUNIT_ASSERT_EQUAL(std::string("ORU_R01: required group PATIENT_RESULT is missing"),
                         GroupTree::build(empty).issues().at(0));
    const Message noObr = Message::parse(kMsh + "ORU^R01|C1|P|2.5\rPID|1\rOBR|1\rORC|1\rOBX|1\r");
    const auto issues = GroupTree::build(noObr).issues();
    CPPUNIT_ASSERT_EQUAL(size_t(1), issues.size());
    CPPUNIT_ASSERT_EQUAL(std::string("ORU_R01/PATIENT_RESULT(1)/ORDER_OBSERVATION(2): required OBR is missing"), issues[0]);
  }

  void unknownStructureIsFlat() {
    const Message m = Message::parse(kMsh + "MFN^M02|C1|P|2.5\rMFI|PRA\rMFE|MAD\rSTF|1\r");
    const GroupTree t = GroupTree::build(m);
    CPPUNIT_ASSERT(!t.known());
    CPPUNIT_ASSERT_EQUAL(std::string("MSH MFI MFE STF"), shape(t.root()));
    CPPUNIT_ASSERT_EQUAL(std::string("MFN_M02"), t.root().name());
    CPPUNIT_ASSERT(t.issues().empty());
    CPPUNIT_ASSERT(ids(t.root().allSegments()) == (std::vector<std::string>{"MSH", "MFI", "MFE", "STF"}));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(GroupsTest);
