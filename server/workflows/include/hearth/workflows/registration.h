#pragma once
// Patient registration helpers (issue 6 item 1):
//
//  - Patient/$match (R4 operation): candidates for a Patient given in a Parameters resource
//    (parameter "resource"; "onlyCertainMatches" and "count" honoured), found through the
//    search index (identifier, family name + birth date, phone, email; never a scan) and scored:
//      any identifier (system and value) equal                         1.0   certain
//      otherwise the sum, capped at 0.99, of
//        family equal 0.3, + a given name equal 0.2, birth date equal 0.3,
//        phone or email equal 0.15, gender equal 0.05 (different: -0.2)
//      grade: >= 0.8 probable, >= 0.5 possible, below: not returned.
//    Names compare case- and accent-insensitively (the index's normalisation). The answer is a
//    searchset Bundle, best first, each entry with search.score and the match-grade extension.
//  - Duplicate check on registration: a new Patient (first version) with the same family name,
//    a same given name, the same birth date and the same phone as a live Patient is refused with
//    409 naming the existing record (registration.duplicate-check = reject), or let through (off).
//  - Hospital MRN (installMrnAssignment): every Patient written without an identifier of the MRN
//    system gets one, `format` with the next number of a counter row (registration_counter), taken
//    in the transaction that writes the Patient (a write transform, ResourceService::
//    addWriteTransform): so it holds for plain creates, transaction/batch entries, conditional
//    creates, update-as-create and HL7-mapped patients alike, numbers are unique and never reused
//    (a rolled-back write rolls its number back; the counter only ever grows), and concurrent
//    registrations serialise on the counter row. The identifier carries type MR (v2-0203).
//    Rules for identifiers of the MRN system that a client sends:
//      create (or update of a Patient without an MRN): refused with 422, unless acceptClientMrn
//        (migrating a legacy register), then kept if no other live Patient holds it (409 if one does);
//      update of a Patient that has an MRN: the same value is kept; a different one is refused (422);
//        none (a client or an HL7 feed replacing the record with its own identifiers) keeps the
//        stored MRN: it is put back, never lost.
#include <cstdint>
#include <string>

#include "hearth/fhir/service.h"

namespace hearth::workflows {

// POST/GET Patient/$match with `parametersJson` (a Parameters resource). baseUrl: the FHIR base
// for fullUrls. Throws FhirError 400 when there is no Patient in "resource".
std::string patientMatch(fhir::ResourceService& service, const std::string& parametersJson, const std::string& baseUrl);

void installDuplicateCheck(fhir::ResourceService& service);

struct MrnOptions {
  std::string system = "http://hospital.example.org/fhir/sid/mrn";  // Identifier.system of the MRN
  // The MRN text: one placeholder {0...0} is replaced by the number, zero-padded to the
  // placeholder's width (wider numbers are written in full): MRN{000000} -> MRN000001.
  std::string format = "MRN{000000}";
  bool acceptClientMrn = false;
};

// formatMrn("MRN{000000}", 42) == "MRN000042". Throws std::invalid_argument unless `format` has
// exactly one placeholder of 1 to 18 zeros (checkMrnFormat: the same test, for the config).
std::string formatMrn(const std::string& format, int64_t number);
void checkMrnFormat(const std::string& format);

// Registers the MRN write transform on `service` (before it serves requests).
void installMrnAssignment(fhir::ResourceService& service, MrnOptions options);

}  // namespace hearth::workflows
