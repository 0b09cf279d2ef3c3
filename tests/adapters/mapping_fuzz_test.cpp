// Property test over mutated messages: whatever a sender puts in its fields, the mapping either
// refuses the message with a positioned HL7 error, or produces a Bundle whose every resource is
// valid R4 -- never an exception, never an invalid resource. Field-level mutations (values from
// a list of awkward inputs, deleted and repeated segments) reach far more of the mapping than
// byte flips, which mostly stop in the parser. Deterministic (fixed seed); run it under
// -DHEARTH_SANITIZE=ON too.
#include <cstdlib>
#include <random>
#include <set>

#include "adapters_test_support.h"
#include "hearth/fhir/validator.h"

using namespace adaptertest;

namespace {

const std::vector<std::string>& awkwardValues() {
  static const std::vector<std::string> k{
      "", "\"\"", "X", "ZZ", "^", "^^^", "~", "&", "&&&", "\\F\\", "\\X01\\", "\\X00\\", "\\H\\x\\N\\", " ",
      "  a  b ", "-1", "0", "1.5", ".", "1.2.3", "99999999999999999999", "2025", "202513", "20250230",
      "20250314120000+2500", "20250314120000.1234-0330", "2025031412", "19000101", "<^5", ">=^1^:^2", "^1^-^",
      "=^3", "<>^4", "^3^+", "^2^.^5", "NM", "ST", "CE", "CWE", "SN", "DT", "TS", "TM", "TX", "FT", "ED", "ID",
      "IS", "MR", "F", "M", "U", "N", "I", "O", "E", "P", "C", "CA", "NW", "HD", "SC", "CM", "A", "Y", "S", "R",
      "H", "L", "HH", "UCUM", "mg^^UCUM", "a b^c d^UCUM", "x^^^NS&1.2&ISO^MR", "x^^^&not a uri&URI^MR",
      "VN1^^^A^VN", "1^BID^^20250101^20250102^S", "^Q2H^^202501011200", "ABC&US D", "12.50&EUR", "7&$$$",
      "\\E\\", "a\\", "Booked", "Cancelled", "Noshow", "Complete", "min", "h", "123", "0930", "2561",
      "SEL", "SPO", "DA", "FA", "SV", "PY", "CG", "CLOSED", "PRN", "QID", "Q0H", "Q99999H", "+0", "-.5"};
  return k;
}

std::string normalized(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
    out.push_back(text[i] == '\n' ? '\r' : text[i]);
  }
  return out;
}

// The awkward values are written with the default delimiters: translate them to the message's.
std::string inDelimiters(const std::string& v, const hearth::hl7::Encoding& enc) {
  std::string out;
  for (char c : v) {
    if (c == '^') out.push_back(enc.component);
    else if (c == '~') out.push_back(enc.repetition);
    else if (c == '\\') out.push_back(enc.escape);
    else if (c == '&') out.push_back(enc.subcomponent);
    else out.push_back(c);
  }
  return out;
}

}  // namespace

class MappingFuzzTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(MappingFuzzTest);
  CPPUNIT_TEST(testMutatedMessagesGiveValidFhirOrPositionedErrors);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testMutatedMessagesGiveValidFhirOrPositionedErrors() {
    hearth::fhir::ResourceValidator validator;
    // HEARTH_FUZZ_SEED / HEARTH_FUZZ_ROUNDS explore further than the fixed default.
    const char* seedEnv = std::getenv("HEARTH_FUZZ_SEED");
    const char* roundsEnv = std::getenv("HEARTH_FUZZ_ROUNDS");
    std::mt19937 rng(seedEnv ? static_cast<unsigned>(std::strtoul(seedEnv, nullptr, 10)) : 20250314u);
    const int rounds = roundsEnv ? std::max(1, std::atoi(roundsEnv)) : 150;
    // HEARTH_FUZZ_DUMP_DIR: also save every mapped Bundle there.
    const char* dumpDir = std::getenv("HEARTH_FUZZ_DUMP_DIR");
    const auto& values = awkwardValues();
    const std::set<int> codes{100, 101, 102, 103, 200, 201, 207};
    int mapped = 0, refused = 0, unparsed = 0;
    for (const std::string& file : allMessageFiles()) {
      const std::string original = normalized(readFile(file));
      const hearth::hl7::Encoding enc = hearth::hl7::Message::parse(original).encoding();
      const char fieldSep = enc.field;
      const std::vector<std::string> segments = split(original, '\r');
      for (int round = 0; round < rounds; ++round) {
        std::vector<std::string> seg = segments;
        const int edits = 1 + static_cast<int>(rng() % 3);
        for (int k = 0; k < edits; ++k) {
          // Segment 0 (MSH) is left alone: its mutations are the parser's business.
          const size_t n = seg.size() - (seg.back().empty() ? 1 : 0);
          if (n < 2) break;
          const size_t i = 1 + rng() % (n - 1);
          const unsigned op = rng() % 10;
          if (op == 0 && n > 2) {
            seg.erase(seg.begin() + static_cast<long>(i));
          } else if (op == 1) {
            seg.insert(seg.begin() + static_cast<long>(i), seg[i]);
          } else {
            std::vector<std::string> fields = split(seg[i], fieldSep);
            const size_t f = 1 + rng() % (fields.size() + 2);
            if (fields.size() <= f) fields.resize(f + 1);
            const std::string v = inDelimiters(values[rng() % values.size()], enc);
            fields[f] = (op == 2 && !fields[f].empty()) ? fields[f] + std::string(1, enc.component) + v : v;
            seg[i].clear();
            for (size_t j = 0; j < fields.size(); ++j) seg[i] += (j ? std::string(1, fieldSep) : "") + fields[j];
          }
        }
        std::string text;
        for (size_t j = 0; j < seg.size(); ++j) text += (j ? "\r" : "") + seg[j];
        std::optional<hearth::hl7::Message> msg;
        try {
          msg = hearth::hl7::Message::parse(text);
        } catch (const hearth::hl7::Hl7Error&) {
          ++unparsed;
          continue;
        }
        auto result = hearth::adapters::mapToFhir(*msg, siteOptions());
        const std::string where = file + " round " + std::to_string(round) + ":\n" + text;
        if (!result.ok()) {
          ++refused;
          for (const auto& e : result.errors) {
            CPPUNIT_ASSERT_MESSAGE("exception inside the mapping (" + e.userMessage + ") for " + where,
                                   e.userMessage.rfind("mapping failed", 0) != 0);
            CPPUNIT_ASSERT_MESSAGE("HL7 error code " + std::to_string(e.hl7Code) + " for " + where, codes.count(e.hl7Code));
          }
          CPPUNIT_ASSERT(result.bundle.empty());
          continue;
        }
        ++mapped;
        if (dumpDir) {  // for a run of tests/schema/validate.mjs over the mutated outputs
          std::ofstream(std::string(dumpDir) + "/fuzz-" + std::to_string(mapped) + "-bundle.json") << result.bundle;
        }
        rapidjson::Document doc = hearth::fhir::parseJson(result.bundle);
        auto issues = validator.validate(doc);
        std::string diag;
        for (const auto& is : issues) diag += "\n  " + is.expression + ": " + is.diagnostics;
        CPPUNIT_ASSERT_MESSAGE("invalid FHIR from " + where + diag, issues.empty());
      }
    }
    // The mutations must exercise both outcomes substantially.
    const int total = rounds * static_cast<int>(allMessageFiles().size());
    CPPUNIT_ASSERT_MESSAGE("mapped " + std::to_string(mapped), mapped > total / 3);
    CPPUNIT_ASSERT_MESSAGE("refused " + std::to_string(refused), refused > total / 15);
    CPPUNIT_ASSERT(unparsed < mapped);
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(MappingFuzzTest);
