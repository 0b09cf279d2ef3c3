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
#include <string>

#include "hearth/fhir/service.h"

namespace hearth::workflows {

// POST/GET Patient/$match with `parametersJson` (a Parameters resource). baseUrl: the FHIR base
// for fullUrls. Throws FhirError 400 when there is no Patient in "resource".
std::string patientMatch(fhir::ResourceService& service, const std::string& parametersJson, const std::string& baseUrl);

void installDuplicateCheck(fhir::ResourceService& service);

}  // namespace hearth::workflows
