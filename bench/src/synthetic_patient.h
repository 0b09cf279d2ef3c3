// Synthetic FHIR R4 Patient resources for benchmarking.
//
// Contract: syntheticPatient(seed, index) is a pure function: the same (seed, index) always yields
// the same compact JSON text, so a load is reproducible whatever the thread interleaving. The text
// always starts with exactly `{"resourceType":"Patient",` and carries no `id` and no `meta`; the wrk
// update script relies on that prefix to splice an id in. Every value is invented (fictional 555-01xx
// phone numbers, example.org domains) and valid against the R4 Patient definition, so a conformant
// server accepts each one with 201. Sizes run 1.8-1.95 KB.
#pragma once

#include <cstdint>
#include <string>

namespace hearth::bench {

inline constexpr const char* kPatientPrefix = "{\"resourceType\":\"Patient\",";

std::string syntheticPatient(std::uint64_t seed, std::uint64_t index);

}  // namespace hearth::bench
