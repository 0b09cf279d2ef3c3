#pragma once
// FHIR R4 -> HL7 v2 (outbound): a ServiceRequest becomes an ORM^O01 or OML^O21 order, an Invoice
// or ChargeItem a DFT^P03 financial transaction.
//
// Pure functions: no store, no network, no clock. Referenced resources (Patient, Encounter,
// Practitioner, Coverage, Organization ...) are read through a Resolver supplied by the caller (the
// server passes one that reads inside the writing transaction). The same inputs give the same
// bytes: MSH-7 and MSH-10 come from the caller.
//
// Identifier systems map back to v2 assigning authorities (the inverse of v2 -> FHIR, see
// adapters/README.md): an entry of OutboundOptions::authoritySystems whose system matches ->
// that namespace; "urn:oid:X" -> "&X&ISO"; "<namespacePrefix>NS" -> "NS"; "urn:hearth:mrn:FAC"
// and "urn:hearth:<kind>:FAC" -> "FAC"; any other system -> the system text as namespace id.
// So a message mapped in and a resource mapped back out carry the same identifiers.
//
// Amounts (Money.value) are copied as the decimal text of the JSON (RapidJSON keeps the source
// digits), never through a binary double: 12.10 stays "12.10".
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace hearth::adapters {

// Returns the JSON of the current version of type/id, or nullopt when absent or deleted.
// One query form besides plain ids: type "Coverage", id "?beneficiary=Patient/<id>" asks for that
// patient's coverage (the server answers with its newest active Coverage); used for IN1 when the
// charge's Account lists none. A resolver may answer nullopt to it.
using Resolver = std::function<std::optional<std::string>(std::string_view type, std::string_view id)>;

enum class OrderMessage { ORM_O01, OML_O21 };

struct OutboundOptions {
  std::string sendingApplication = "HEARTH";  // MSH-3 (escaped by the encoder)
  std::string sendingFacility;                // MSH-4
  std::string receivingApplication;           // MSH-5 (from the route)
  std::string receivingFacility;              // MSH-6 (from the route)
  std::string controlId;                      // MSH-10 (required)
  std::string timestamp;                      // MSH-7 as v2 DTM (YYYYMMDDHHMMSS[+ZZZZ]); required
  std::string processingId = "P";             // MSH-11
  // Namespace id -> identifier system, the same map as MappingOptions::authoritySystems; used in
  // reverse (system -> namespace).
  std::map<std::string, std::string, std::less<>> authoritySystems;
  std::string namespacePrefix = "urn:hearth:authority:";
};

// A resource that cannot be mapped (missing subject, no code, unresolvable Patient ...). The
// message never contains patient data.
class OutboundError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What an order message says about the ServiceRequest's life cycle (ORC-1).
//   NW  new order: version 1, or any version whose status is draft/active and whose earlier
//       versions were never sent (previousSent false)
//   XO  change: a later version of an order already sent, still draft/active/on-hold
//   CA  cancel: status revoked / entered-in-error, or the resource was deleted
//   (completed orders are not sent: the filler completes them, not the placer)
enum class OrderControl { NW, XO, CA, None };
OrderControl orderControlFor(std::string_view status, long long version, bool deleted);

// ServiceRequest JSON -> ORM^O01 / OML^O21 (v2.5.1). `control` overrides the computed ORC-1
// (the server passes CA for a deletion, where no JSON content remains: then `serviceRequest`
// is the last live version). Throws OutboundError.
std::string serviceRequestToV2(std::string_view serviceRequest, OrderMessage type, OrderControl control,
                               const Resolver& resolve, const OutboundOptions& options);

// Invoice or ChargeItem JSON -> DFT^P03 (v2.5.1). Throws OutboundError.
std::string financialToDft(std::string_view resourceType, std::string_view resource, const Resolver& resolve,
                           const OutboundOptions& options);

// "urn:oid:1.2.3" -> {"", "1.2.3", "ISO"}; see the header comment. Exposed for tests.
struct AssigningAuthority {
  std::string namespaceId, universalId, universalIdType;
};
AssigningAuthority authorityForSystem(std::string_view system, const OutboundOptions& options);

// FHIR dateTime / date / instant -> v2 DTM ("2026-12-06T10:30:00+01:00" -> "202612061030+0100",
// "1980-03-01" -> "19800301"); "" for text that is not a FHIR date. Exposed for tests.
std::string fhirDateToV2(std::string_view fhirDate);

}  // namespace hearth::adapters
