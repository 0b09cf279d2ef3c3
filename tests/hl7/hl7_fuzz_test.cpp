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
#include "hl7_exercise.h"
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

// Everything a consumer might do with a parsed message (hl7_exercise.h), failing the test with
// `context` when a contract breaks.
size_t exercise(const Message& m, const std::string& context) {
  return hl7test::exerciseMessage(m, [&](bool ok, const char* what) { CPPUNIT_ASSERT_MESSAGE(context + ": " + what, ok); });
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
