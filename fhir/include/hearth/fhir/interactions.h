#pragma once
// Composite FHIR interactions on top of ResourceService and SearchEngine, independent of HTTP:
// batch and transaction Bundles, conditional create / update / delete / patch, and JSON Patch.
//
// Transactions (R4 http.html#transaction): all entries in one database transaction (one
// ResourceService::runAtomic unit): any failing entry fails the whole Bundle (the error of that
// entry, with its index in the diagnostics, and nothing stored). Processing order DELETE, POST,
// PUT/PATCH, GET (HEAD as GET); urn:uuid: / urn:oid: and fullUrl references rewritten to the
// assigned Type/id everywhere in the entries' resources (also inside narrative <a href> is not
// required); conditional references ("Patient?identifier=sys|val": exactly one match, else the
// transaction fails with 412); If-None-Exist, If-Match and conditional URLs on entries.
// Batches: every entry on its own, each with its own status (an entry's failure is its response:
// status + outcome OperationOutcome); references between batch entries are not resolved (R4).
//
// Details of this implementation (R4 leaves them open):
// - GET/HEAD entries of a transaction are evaluated after the commit: they see its writes, and
//   their failures are their own entries' statuses (they cannot roll the writes back).
// - Conditional matches are resolved after the DELETEs, before any resource is written (so every
//   id is known when references are rewritten); a conditional update or patch whose criteria would
//   also match a resource this transaction creates fails with 400 (two entries writing one
//   resource). Conditional references see the store after the DELETEs, and a conditional create of
//   the same Bundle with the same criteria (that create's id).
// - A urn:uuid: / urn:oid: reference that names no fullUrl of the transaction: 400.
// - Conditional deletes in Bundles allow one match (several: 412).
// - Ids of created resources are time-ordered UUIDs (version 7 layout) for index locality.
// - At most 10,000 entries per Bundle (400 beyond).
// - Delete entries answer "204 No Content" ("200 OK" with an outcome under
//   ReturnPreference::OperationOutcome).
//
// Response Bundles (batch-response / transaction-response): one entry per request entry, in the
// request's order, with response.status ("201 Created" ...), location, etag, lastModified and,
// per `returnPref`, the resource or an OperationOutcome.
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "hearth/fhir/search.h"
#include "hearth/fhir/service.h"

namespace hearth::fhir {

enum class ReturnPreference { Minimal, Representation, OperationOutcome };

class InteractionProcessor {
 public:
  InteractionProcessor(ResourceService& service, SearchEngine& search);

  // POST [base] with a Bundle of type batch or transaction. 400 for anything else (other Bundle
  // types, a non-Bundle, entries without request). baseUrl: this server's base (fullUrls,
  // locations, and absolute references to this server).
  std::string processBundle(std::string_view bundleJson, const std::string& baseUrl,
                            ReturnPreference pref = ReturnPreference::Representation);

  // A transaction Bundle whose writes commit together with the caller's own writes to the
  // integration tables (StoreTransaction::execute): `inUnit` runs inside the unit after every
  // entry succeeded, before the commit; it may run more than once (a unit that lost a race is
  // retried) and what it throws rolls everything back and propagates. 400 for a batch (its
  // entries commit separately). The HL7 bridge stores a message and its resources in one commit.
  std::string processTransactionWith(std::string_view bundleJson, const std::string& baseUrl, ReturnPreference pref,
                                     const std::function<void(StoreTransaction&)>& inUnit);

  // POST [type] with If-None-Exist: criteria (a query string). No match: creates (created=true).
  // One match: nothing written, returns that resource's current version (created=false; HTTP 200).
  // Several: 412. Race-free: two concurrent identical conditional creates create one resource.
  WriteOutcome conditionalCreate(std::string_view type, std::string_view body, std::string_view criteria);
  // PUT [type]?criteria: no match -> create (with the body's id if it has one, else a new id; 409
  // if a live resource already has that id, since it does not match the criteria; 412 with
  // ifMatch); one match -> update it (a body id, if any, must equal the match's id, else 400);
  // several -> 412.
  WriteOutcome conditionalUpdate(std::string_view type, std::string_view criteria, std::string_view body,
                                 std::optional<int64_t> ifMatch);
  // DELETE [type]?criteria: no match -> version 0 (nothing done); one -> deleted; several -> 412
  // unless allowMultiple (then all are deleted; the outcome reports the last).
  WriteOutcome conditionalDelete(std::string_view type, std::string_view criteria, bool allowMultiple,
                                 int* deletedCount = nullptr);
  // PATCH [type]/[id] with a JSON Patch document (RFC 6902: add, remove, replace, move, copy,
  // test): the patched resource is validated like an update; a failing `test` -> 422, a malformed
  // patch or a path that does not exist -> 400 (nothing written). Patching id or resourceType -> 400.
  // A patch result that is not a valid resource -> 422. 404 unknown, 410 deleted, 412 If-Match.
  // Race-free: the unit patches exactly the version it holds locked (a concurrent update between
  // the read of the content and the write makes the unit re-read and re-apply).
  WriteOutcome patch(std::string_view type, std::string_view id, std::string_view jsonPatch,
                     std::optional<int64_t> ifMatch);
  // PATCH [type]?criteria: exactly one match is patched; none -> 404; several -> 412.
  WriteOutcome conditionalPatch(std::string_view type, std::string_view criteria, std::string_view jsonPatch,
                                std::optional<int64_t> ifMatch);

 private:
  ResourceService& service_;
  SearchEngine& search_;
};

// Applies an RFC 6902 JSON Patch to a JSON document; returns the patched document (compact).
// Throws FhirError 400 (malformed patch, missing path) or 422 (failed test op).
std::string applyJsonPatch(std::string_view documentJson, std::string_view patchJson);

}  // namespace hearth::fhir
