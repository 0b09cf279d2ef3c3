#pragma once
// HL7 v2 outbound: FHIR writes -> v2 messages -> partners over MLLP, through a durable outbox
// (table hl7_outbox, schema migration 4).
//
// Routes come from configuration (config/hearth.properties, keys hl7.out.<route>.*): a partner's
// host/port, the resource types it takes, the message it wants (ORM^O01, OML^O21, DFT^P03),
// an optional ServiceRequest category filter, MSH-5/6, retry limits.
//
// Enqueue: a write observer (ResourceService::addWriteObserver) maps every written version that
// matches a route and INSERTs a pending row in the same transaction as the write: a write that
// rolls back enqueues nothing, a committed one is never lost. What is sent:
//   ServiceRequest  active/on-hold: NW for the first message of that order on the route, XO for
//                   later versions; revoked / entered-in-error / deleted: CA (only when an earlier
//                   message of the order went to that route, and only once: not again when a
//                   revoked order is edited or deleted); draft and completed: nothing.
//   ChargeItem      the first version with status billable (one DFT per charge).
//   Invoice         the first version with status issued or balanced (one DFT, FT1 per line).
// A version that matches but cannot be mapped in its transaction (typically a transaction Bundle
// whose ServiceRequest entry is written before its Patient, or a Patient that does not exist) gets
// a pending row with a deferred payload ("defer:<ORC-1>") and the reason in last_error: when it
// reaches the head of its route, the dispatcher maps it from committed data (the source version,
// referenced resources as they are then); if that fails too the row becomes failed with the
// reason. The write itself always succeeds (an outbound problem never blocks clinical data).
//
// Delivery: one dispatcher thread per route, FIFO by creation, one message in flight, waiting for
// the ACK (ack-timeout-ms). MSA-1 AA/CA -> sent; AR/CR -> failed; AE/CE -> failed as well (an
// application error about the content: the same bytes would get the same answer; fix the data or
// the mapping and $retry). No connection, send error, timeout or an ACK for another control id ->
// attempts+1, next attempt after a capped exponential back-off (retry-initial-ms doubling up to
// retry-max-ms), still pending; after max-attempts -> failed.
// Ordering: a pending head (waiting for its back-off) blocks its route, so an XO or CA never
// overtakes its NW; a failed row does not block (one rejected message must not stop a partner's
// feed). A row re-queued with $retry keeps its place by creation time and is sent next.
// Delivery is at least once: a crash between the partner's ACK and the status update re-sends the
// row after restart with the same MSH-10, which partners use to drop duplicates.
// Restart: pending rows are picked up by the next start. One dispatching Hearth per database.
#include <Poco/Util/AbstractConfiguration.h>

#include <memory>
#include <optional>
#include <string>

#include "hearth/fhir/service.h"
#include "hearth/fhir/store.h"

namespace hearth::server {

class Hl7Outbox {
 public:
  // Reads the routes, registers the write observer on `service` and starts one dispatcher per
  // route. Returns nullptr when no route is configured. Throws std::invalid_argument for a bad
  // route (the caller reports a configuration error). Call before the service handles requests.
  static std::unique_ptr<Hl7Outbox> start(const Poco::Util::AbstractConfiguration& config,
                                          fhir::ResourceService& service, fhir::ResourceStore& store);
  ~Hl7Outbox();  // stop()s
  // Stops the dispatchers: the message in flight finishes (or times out), nothing new starts.
  void stop();

  struct Impl;

 private:
  explicit Hl7Outbox(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Operations view (server/src/http_front.cpp, /admin/hl7/outbox). Plain JSON, not FHIR.
// List, newest first: id, route, messageType, controlId, source, status, attempts, nextAttempt,
// createdAt, sentAt, ackCode, lastError (no payload). status/route filter when non-empty;
// limit 1..1000.
std::string outboxListJson(fhir::ResourceStore& store, const std::string& status, const std::string& route,
                           int limit);
// One row with its payload decoded (segments separated by "\r" as on the wire); nullopt if absent.
std::optional<std::string> outboxEntryJson(fhir::ResourceStore& store, const std::string& id);
// $retry: a failed or pending row becomes pending, due now, attempts reset to 0 (a row whose
// mapping failed is mapped again from the current data of its references).
// Returns: 0 done, 404 no such row, 409 already sent.
int outboxRetry(fhir::ResourceStore& store, const std::string& id);

}  // namespace hearth::server
