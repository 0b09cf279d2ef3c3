// libFuzzer target for the HL7 v2 parser (coverage-guided, beside hl7_fuzz_test's seeded
// mutations). Built with clang -fsanitize=fuzzer,address,undefined when clang is present (see
// CMakeLists.txt); the ctest `hl7_libfuzzer` runs it for a bounded time from tests/hl7/messages.
// Contract checked on every input: Message::parse either succeeds or throws Hl7Error (anything
// else escapes and libFuzzer reports it as a crash); a parsed message encodes to bytes that parse
// again to the same encoding, and every element, typed reader, group tree and ACK can be built
// from it; an unparseable input still gets an AR that is itself a message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "hearth/hl7/ack.h"
#include "hearth/hl7/error.h"
#include "hearth/hl7/groups.h"
#include "hearth/hl7/message.h"
#include "hearth/hl7/types.h"

using namespace hearth::hl7;

namespace {

void check(bool ok) {
  if (!ok) std::abort();  // a broken contract: libFuzzer keeps the input as a crash
}

size_t walk(const Element& e, int depth) {
  size_t n = e.value().size();
  if (depth == 0) {
    for (const Element& r : e.repetitions()) n += walk(r, 1);
  } else if (depth == 1) {
    for (size_t c = 1; c <= e.componentCount(); ++c) n += walk(e.component(static_cast<int>(c)), 2);
  } else {
    for (size_t s = 1; s <= e.subcomponentCount(); ++s) n += e.subcomponent(static_cast<int>(s)).value().size();
  }
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  ParseOptions po;
  po.maxBytes = 1u << 20;
  try {
    const Message m = Message::parse(input, po);
    const std::string once = m.encode();
    check(Message::parse(once).encode() == once);
    size_t sum = 0;
    for (const Segment& s : m.segments()) {
      for (int f = 0; f <= s.fieldCount(); ++f) {
        const Element field = s.field(f);
        sum += walk(field, 0);
        sum += CX::from(field).id.size() + XPN::from(field).family.size() + XAD::from(field).city.size();
        sum += XTN::from(field).contactValue().size() + CWE::from(field).code.size();
        sum += PL::from(field).room.size() + SN::from(field).valid() + EI::from(field).entityId.size();
        if (const auto dt = DateTime::from(field)) sum += dt->toFhirDateTime(0).value_or("").size();
        sum += toDecimal(field.value()).value_or("").size();
      }
    }
    const GroupTree t = GroupTree::build(m);
    check(t.root().allSegments().size() == m.segmentCount());
    sum += Message::parse(buildAck(m, AckCode::AE, {AckError{}}).encode()).segmentCount();
    check(sum > 0);
  } catch (const Hl7Error& e) {
    check(buildAck(input, AckCode::AR, {AckError::from(e)}).encode().rfind("MSH", 0) == 0);
  }
  return 0;
}
