#pragma once
// Bundle assembly from stored resource bytes (no re-serialisation of the resources).
#include <cstdint>
#include <string>
#include <string_view>

#include "hearth/fhir/store.h"

namespace hearth::fhir {

// Writes a Bundle of the given type (history, searchset, batch-response, ...) entry by entry.
// Not thread-safe; one builder per response.
class BundleBuilder {
 public:
  explicit BundleBuilder(std::string_view bundleType);
  void setTotal(int64_t total) { total_ = total; }
  void addLink(std::string_view relation, std::string_view url);
  // A history entry: fullUrl, resource (absent for deletions), request and response.
  void addHistoryEntry(const StoredVersion& v, std::string_view base);
  // A searchset entry with raw resource bytes; mode is match, include or outcome. An empty
  // fullUrl is left out (the OperationOutcome of mode outcome has none).
  void addSearchEntry(std::string_view fullUrl, std::string_view resourceJson, std::string_view mode);
  std::string finish();

 private:
  std::string type_;
  int64_t total_ = -1;
  std::string links_;
  std::string entries_;
};

// CapabilityStatement for what this server supports, generated from the model (compact JSON).
// `securityJson`, when not empty, is a JSON object text placed as rest[0].security (e.g. the SMART
// on FHIR service coding and the oauth-uris extension of the embedded authorization server).
std::string capabilityStatementJson(std::string_view softwareVersion, std::string_view baseUrl,
                                    std::string_view securityJson = {});

}  // namespace hearth::fhir
