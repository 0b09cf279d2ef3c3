#pragma once
// HL7 v2 -> FHIR R4: one message becomes one FHIR transaction Bundle that, posted to a FHIR
// server, applies the message idempotently.
//
// Pure functions: no network, no store, no clock, no randomness. The same message and options
// always give the same Bundle bytes (fullUrls are name-based UUIDs of each resource's business
// identity), so a resent message posts the same transaction again.
//
// Idempotency: every entry is conditional on a business identifier, never a plain POST:
//  - resources the message owns are written with a conditional update,
//    request {method: PUT, url: "Type?identifier=<system>|<value>"} (created when absent, replaced
//    when present): Patient and Encounter from ADT, DiagnosticReport and Observation from ORU,
//    ServiceRequest from ORM/OML, MedicationRequest from RDE, Appointment from SIU, Coverage,
//    AllergyIntolerance, ChargeItem and Invoice;
//  - resources the message only refers to are conditional creates,
//    request {method: POST, url: "Type", ifNoneExist: "identifier=<system>|<value>"} (created when
//    absent, left untouched when present): Practitioner, Location, Organization, Account, and the
//    Patient / Encounter / ServiceRequest of non-ADT messages.
// Entries refer to each other by their urn:uuid: fullUrl; the server resolves those to the ids of
// the created or matched resources. Identifier values in URLs use FHIR search escaping (\| \, \$
// \\) and are percent-encoded.
//
// Supported messages (see adapters/README.md for the field-by-field mapping):
//   ADT A01 A04 A08 A28 A31 (register/update), A03 (discharge), A40 (merge patient),
//   SIU S12 S13 S14 S15 S26, ORU R01, ORM O01, OML O21, RDE O11, DFT P03.
// Anything else is refused with error 200 (message type) or 201 (trigger event).
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/hl7/ack.h"
#include "hearth/hl7/message.h"

namespace hearth::adapters {

struct MappingOptions {
  // Identifier system URI per assigning authority, keyed by the HD namespace id or universal id
  // ("NORTHVALE" -> "urn:oid:2.16.840.1.113883.3.9001"). Checked before everything else.
  // Without an entry: universal id type ISO -> "urn:oid:<id>", UUID -> "urn:uuid:<id>",
  // URI/URL -> the id itself; well-known names (NPI, USSSA/SSA) -> their FHIR sid URIs;
  // otherwise namespacePrefix + namespace id.
  std::map<std::string, std::string, std::less<>> authoritySystems;
  std::string namespacePrefix = "urn:hearth:authority:";
  // System of patient identifiers (PID-3, MRG-1) that carry no assigning authority.
  // Empty: "urn:hearth:mrn:<sending facility>" (MSH-4.1, else MSH-4.2, else MSH-3.1).
  std::string defaultMrnSystem;
  // Other identifiers without an authority (visit, placer/filler numbers, staff ids, locations,
  // accounts, transactions ...) get localPrefix + "<kind>:<sending facility>", e.g.
  // "urn:hearth:filler:CENTRAL_LAB": they are only unique within the sender.
  std::string localPrefix = "urn:hearth:";
  // Code system URI per CWE-3 coding system name, before the built-in list (LN, SCT, I10, ...).
  std::map<std::string, std::string, std::less<>> codingSystems;
  // Coding systems that are neither (local "L", "99zzz", unknown names): this prefix +
  // "<sending facility>:<name>".
  std::string localCodeSystemPrefix = "urn:hearth:codesystem:";
  // meta.source of every resource. Empty: "urn:hearth:v2:<MSH-3.1>:<MSH-4.1>" (percent-encoded).
  std::string source;
  // UTC offset (minutes) assumed for v2 times sent without one when MSH-7 carries none either
  // (MSH-7's offset is used when it has one). nullopt: such a time is a data type error (102).
  std::optional<int> defaultUtcOffsetMinutes = 0;
  // DFT: PV1-41 (account status) values that mean "the account is closed": such a message also
  // yields an Invoice over its charges.
  std::vector<std::string> closedAccountStatuses = {"C", "CLOSED"};
};

struct MappingResult {
  // The transaction Bundle (compact JSON). Empty when errors is not empty.
  std::string bundle;
  // Why the message cannot be applied: ERR location (segment, sequence = n-th segment with that
  // id, field, component), HL7 table 0357 code, severity 'E' and a user message without patient
  // data. 100 required segment missing, 101 required field missing, 102 data type error,
  // 103 table value not found, 200 unsupported message type, 201 unsupported event code,
  // 207 application error. An AE answers these, except 200/201 which an AR answers.
  std::vector<hl7::AckError> errors;
  // Data the mapping left out or defaulted (severity 'W'): may go into the AA as ERR segments.
  std::vector<hl7::AckError> warnings;
  // Number of Bundle entries per resource type ("Observation" -> 7), for logs and metrics.
  std::map<std::string, int> counts;
  bool ok() const { return errors.empty(); }
  // True when the refusal is about the message type / event (200, 201), i.e. an AR not an AE.
  bool unsupported() const;
};

MappingResult mapToFhir(const hl7::Message& msg, const MappingOptions& opts = {});

// Whether mapToFhir handles MSH-9.1 type / MSH-9.2 trigger.
bool supports(std::string_view type, std::string_view trigger);

}  // namespace hearth::adapters
