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
#include "hearth/hl7/message.h"
#include "hl7_exercise.h"

using namespace hearth::hl7;

namespace {

// A broken contract: abort, and libFuzzer keeps the input as a crash.
void check(bool ok, const char* /*what*/) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  ParseOptions po;
  po.maxBytes = 1u << 20;
  try {
    const Message m = Message::parse(input, po);
    check(hl7test::exerciseMessage(m, check) > 0, "checksum");
  } catch (const Hl7Error& e) {
    check(buildAck(input, AckCode::AR, {AckError::from(e)}).encode().rfind("MSH", 0) == 0, "AR for unparseable input");
  }
  return 0;
}
