// Mutation fuzz over the corpus: random byte flips, delimiter/terminator injections, truncations,
// deletions, duplications and random garbage. Every input must either parse or fail with an
// Hl7Error -- never crash, hang or throw anything else (run under ASan/UBSan too). Whatever
// parses must survive everything a consumer does with it: encode/re-parse (idempotent), walk
// every element, typed readers, groups, ACKs.
#include <cppunit/extensions/HelperMacros.h>

#include <random>

#include "hearth/hl7/ack.h"
#include "hearth/hl7/groups.h"
#include "hearth/hl7/types.h"
#include "hl7_test_support.h"

using namespace hearth::hl7;

namespace {

constexpr int kMutationsPerMessage = 400;
constexpr unsigned kSeed = 20250314;

std::string mutate(const std::string& in, std::mt19937& rng) {
  std::string s = in;
  auto pos = [&](size_t n) { return n == 0 ? size_t(0) : std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  static const char kSpecial[] = {'|', '^', '~', '\\', '&', '#', '\r', '\n', '"', '\0', 'X', '.', '\xC3', '\xFF', 'M'};
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits && !s.empty(); ++e) {
    switch (rng() % 7) {
      case 0: s[pos(s.size())] = static_cast<char>(rng() & 0xFF); break;
      case 1: s[pos(s.size())] = kSpecial[rng() % sizeof kSpecial]; break;
      case 2: s.resize(pos(s.size() + 1)); break;
      case 3: {
        const size_t p = pos(s.size());
        s.erase(p, 1 + rng() % 16);
        break;
      }
      case 4: {
        const size_t p = pos(s.size());
        s.insert(pos(s.size() + 1), s.substr(p, 1 + rng() % 64));
        break;
      }
      case 5: s.insert(pos(s.size() + 1), 1, kSpecial[rng() % sizeof kSpecial]); break;
      case 6: {  // damage the header specifically
        const size_t p = pos(std::min<size_t>(s.size(), 40));
        s[p] = kSpecial[rng() % sizeof kSpecial];
        break;
      }
    }
  }
  return s;
}

size_t walk(const Element& e, int depth) {
  size_t n = e.value().size();
  if (depth == 0) {
    const auto reps = e.repetitions();
    CPPUNIT_ASSERT_EQUAL(e.repetitionCount(), reps.size());
    for (size_t r = 0; r < reps.size(); ++r) {
      CPPUNIT_ASSERT(reps[r].raw() == e.repetition(r).raw());
      n += walk(reps[r], 1);
    }
  } else if (depth == 1) {
    for (size_t c = 1; c <= e.componentCount(); ++c) n += walk(e.component(static_cast<int>(c)), 2);
  } else if (depth == 2) {
    for (size_t s = 1; s <= e.subcomponentCount(); ++s) n += e.subcomponent(static_cast<int>(s)).value().size();
  }
  return n;
}

// Everything a consumer might do with a parsed message; returns a checksum so nothing is elided.
size_t exercise(const Message& m, const std::string& context) {
  size_t sum = 0;
  const std::string once = m.encode();
  const Message again = Message::parse(once);
  CPPUNIT_ASSERT_EQUAL_MESSAGE(context, once, again.encode());
  for (const Segment& s : m.segments()) {
    for (int f = 0; f <= s.fieldCount(); ++f) {
      const Element field = s.field(f);
      sum += walk(field, 0);
      sum += CX::from(field).id.size() + XPN::from(field).family.size() + XAD::from(field).city.size();
      sum += XTN::from(field).contactValue().size() + CWE::from(field).code.size() + XCN::from(field).family.size();
      sum += PL::from(field).room.size() + SN::from(field).valid() + EI::from(field).entityId.size();
      if (const auto dt = DateTime::from(field)) sum += dt->toFhirDateTime(0).value_or("").size();
      sum += toDecimal(field.value()).value_or("").size();
    }
  }
  const GroupTree t = GroupTree::build(m);
  CPPUNIT_ASSERT_EQUAL_MESSAGE(context, m.segmentCount(), t.root().allSegments().size());
  const Message ack = buildAck(m, AckCode::AE, {AckError{}});
  sum += Message::parse(ack.encode()).segmentCount();
  return sum;
}

}  // namespace

class FuzzTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(FuzzTest);
  CPPUNIT_TEST(mutatedCorpusParsesOrFailsCleanly);
  CPPUNIT_TEST(randomBytesFailCleanly);
  CPPUNIT_TEST_SUITE_END();

 public:
  void mutatedCorpusParsesOrFailsCleanly() {
    std::mt19937 rng(kSeed);
    size_t parsed = 0, rejected = 0, checksum = 0;
    for (const auto& name : hl7test::corpusNames()) {
      const std::string original = hl7test::corpus(name);
      for (int i = 0; i < kMutationsPerMessage; ++i) {
        const std::string input = mutate(original, rng);
        const std::string context = name + " mutation " + std::to_string(i) + " (seed " + std::to_string(kSeed) + ")";
        try {
          const Message m = Message::parse(input);
          ++parsed;
          checksum += exercise(m, context);
        } catch (const Hl7Error& e) {
          ++rejected;
          CPPUNIT_ASSERT_MESSAGE(context, std::string(e.what()).rfind("HL7", 0) == 0);
          // An unparseable message still gets an ACK that is itself a message.
          const Message ack = buildAck(input, AckCode::AR, {AckError::from(e)});
          const std::string bytes = ack.encode();
          CPPUNIT_ASSERT_MESSAGE(context, bytes.rfind("MSH", 0) == 0);
        } catch (const std::exception& e) {
          CPPUNIT_FAIL(context + ": unexpected exception: " + e.what());
        }
      }
    }
    // The mutations must exercise both paths substantially.
    CPPUNIT_ASSERT(parsed > 1000);
    CPPUNIT_ASSERT(rejected > 1000);
    CPPUNIT_ASSERT(checksum > 0);
  }

  void randomBytesFailCleanly() {
    std::mt19937 rng(kSeed + 1);
    for (int i = 0; i < 3000; ++i) {
      std::string input = i % 2 ? "MSH" : "";
      const size_t n = rng() % 300;
      for (size_t k = 0; k < n; ++k) input.push_back(static_cast<char>(rng() & 0xFF));
      try {
        const Message m = Message::parse(input);
        exercise(m, "random " + std::to_string(i));
      } catch (const Hl7Error&) {
      } catch (const std::exception& e) {
        CPPUNIT_FAIL("random input " + std::to_string(i) + ": unexpected exception: " + e.what());
      }
    }
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(FuzzTest);
