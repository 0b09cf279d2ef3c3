#pragma once
// Everything a consumer might do with a parsed message, shared by the seeded mutation test
// (hl7_fuzz_test.cpp, CppUnit) and the libFuzzer target (hl7_libfuzzer.cpp, built with clang and
// no CppUnit): encode and re-parse (must be idempotent), walk every repetition, component and
// sub-component, every typed reader, the group tree, an ACK. `check(ok, what)` reports a broken
// contract the caller's way. Returns a checksum so that nothing is optimised away.
#include <string>

#include "hearth/hl7/ack.h"
#include "hearth/hl7/groups.h"
#include "hearth/hl7/message.h"
#include "hearth/hl7/types.h"

namespace hl7test {

template <class Check>
size_t walkElement(const hearth::hl7::Element& e, int depth, Check& check) {
  size_t n = e.value().size();
  if (depth == 0) {
    const auto reps = e.repetitions();
    check(reps.size() == e.repetitionCount(), "repetitions() and repetitionCount() agree");
    for (size_t r = 0; r < reps.size(); ++r) {
      check(reps[r].raw() == e.repetition(r).raw(), "repetitions() and repetition(r) agree");
      n += walkElement(reps[r], 1, check);
    }
  } else if (depth == 1) {
    for (size_t c = 1; c <= e.componentCount(); ++c) n += walkElement(e.component(static_cast<int>(c)), 2, check);
  } else {
    for (size_t s = 1; s <= e.subcomponentCount(); ++s) n += e.subcomponent(static_cast<int>(s)).value().size();
  }
  return n;
}

template <class Check>
size_t exerciseMessage(const hearth::hl7::Message& m, Check&& check) {
  using namespace hearth::hl7;
  size_t sum = 0;
  const std::string once = m.encode();
  check(Message::parse(once).encode() == once, "encode(parse(encode(m))) == encode(m)");
  for (const Segment& s : m.segments()) {
    for (int f = 0; f <= s.fieldCount(); ++f) {
      const Element field = s.field(f);
      sum += walkElement(field, 0, check);
      sum += CX::from(field).id.size() + XPN::from(field).family.size() + XAD::from(field).city.size();
      sum += XTN::from(field).contactValue().size() + CWE::from(field).code.size() + XCN::from(field).family.size();
      sum += PL::from(field).room.size() + SN::from(field).valid() + EI::from(field).entityId.size();
      if (const auto dt = DateTime::from(field)) sum += dt->toFhirDateTime(0).value_or("").size();
      sum += toDecimal(field.value()).value_or("").size();
    }
  }
  const GroupTree t = GroupTree::build(m);
  check(m.segmentCount() == t.root().allSegments().size(), "the group tree holds every segment once");
  const Message ack = buildAck(m, AckCode::AE, {AckError{}});
  sum += Message::parse(ack.encode()).segmentCount();
  return sum;
}

}  // namespace hl7test
