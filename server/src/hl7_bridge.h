#pragma once
// Hl7Bridge: the inbound HL7 v2 bridge. One MLLP frame in, the ACK frame(s) out, with every
// message stored in hl7_message (store_migrations.cpp) before any ACK leaves (store-before-ACK).
//
// Flow of handle():
//  1. Parse. Unparseable input / unusable MSH -> AR (ERR from the parse error). When a sender
//     (MSH-3, MSH-4) and control id (MSH-10) can be salvaged from the first line, the raw message
//     is recorded with status 'rejected' and that AR; otherwise only a PHI-free log line.
//     An empty MSH-10 is also rejected (101 at MSH-10): without it a resend cannot be recognised.
//  2. Duplicate: a row with the same sender and MSH-10 exists -> its stored ACK bytes go back
//     unchanged and nothing else happens (rows in status 'received' answer the accept ACK that
//     was sent; their processing belongs to the first delivery or to start-up recovery).
//     Concurrent deliveries of one message: an in-process lock per (sender, control id), plus, in
//     the unit that stores the row, a lockKey and re-check (several nodes on PostgreSQL); a unit
//     that still loses (UNIQUE violation) re-reads the winner's row and answers its ACK.
//  3. Original mode (MSH-15 and MSH-16 empty): the mapped transaction Bundle and the row
//     ('processed', AA and the AA bytes) commit in ONE transaction
//     (InteractionProcessor::processTransactionWith); the AA is returned after the commit. In
//     journal mode (setJournal, the default with group commit) the raw message is first made
//     durable in the journal and the unit is only applied in the open commit group: the AA waits
//     for the journal sync and the unit, not for the group's commit (hl7_journal.h).
//     Mapping errors (AckError list) or a Bundle the FHIR layer refuses (4xx) -> the row is stored
//     with status 'error', a PHI-free error text (codes and locations) and the AE, in its own
//     transaction; then AE with ERR (location, table 0357 code, text). Unsupported message type or
//     trigger -> 'rejected' + AR.
//     The store unavailable (503, or any failure to commit) -> AE with ERR 207 and nothing stored:
//     the sender keeps the message and resends it (an AE here means "not taken, try again"; AR
//     would tell it to give up). If even the row cannot be stored, the same AE 207 goes back.
//  4. Enhanced mode (MSH-15 or MSH-16 present): the raw row is committed with status 'received'
//     first (ack_b64 = the accept ACK), then processed like original mode (the row updated in the
//     same transaction as the resources), and the handler returns, on the same connection, the
//     accept ACK (CA, when MSH-15 wants one; CR for an unsupported type; CE when the row cannot be
//     stored) followed by the application ACK (AA/AE/AR, when MSH-16 wants one). Returning both on
//     the connection the message came in on is a pragmatic choice: senders that wait for the
//     application ACK as a separate message on their own listener are not served (no routes for
//     inbound partners yet).
//  5. Recovery (recoverPending(), called before the listener starts): rows in 'received' status
//     (accepted in enhanced mode and not processed, e.g. after a crash) are processed in the order
//     they were received.
// ACK details (hl7/ack.h): MSH sender and receiver swapped, MSA-2 = MSH-10, version echoed, a new
// unique control id per ACK.
//
// Replay (ops view): replay(id) re-runs the mapping of a stored 'error' or 'received' message
// (after a mapping fix); on success the row becomes 'processed' with the AA it would have got.
//
// Thread-safe: handle() runs concurrently on MLLP connection threads.
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/adapters/v2_to_fhir.h"
#include "hearth/fhir/interactions.h"
#include "hearth/fhir/service.h"
#include "hl7_journal.h"

namespace hearth::server {

struct Hl7BridgeOptions {
  adapters::MappingOptions mapping;
  std::string baseUrl = "http://localhost/fhir";  // fullUrl base for the transaction responses
  size_t maxMessageBytes = 16u << 20;
};

// One stored message as the ops view shows it.
struct Hl7MessageRow {
  std::string id, sender, controlId, messageType, receivedAt, status, error, ackCode, processedAt;
  int64_t attempts = 0;
  std::string raw;  // decoded bytes (only when asked for)
  std::string ack;  // decoded ACK bytes (only when asked for)
};

struct Hl7BridgeCounters {
  std::atomic<uint64_t> received{0}, processed{0}, errors{0}, rejected{0}, duplicates{0}, unavailable{0};
};

class Hl7Bridge {
 public:
  Hl7Bridge(fhir::ResourceService& service, fhir::InteractionProcessor& interactions, Hl7BridgeOptions options);

  // One inbound message; returns the ACK(s) to send, in order (see the flow above).
  std::vector<std::string> handle(std::string_view raw, const std::string& peer);
  // The answer to a frame larger than the listener accepts: AR with ERR 207, nothing stored.
  std::string oversizeAck() const;

  // Processes every 'received' row in received order; returns how many were processed.
  int recoverPending();

  // Journal mode (hl7_journal.h): original-mode messages are journaled and applied in the open
  // group instead of committed one by one. Set before the listener starts; the journal outlives
  // the bridge's use of it. Only effective with group commit on (the SQLite default).
  void setJournal(Hl7Journal* journal) { journal_ = journal; }
  // Processes the journal's recovered records that are not in hl7_message yet (start-up, before
  // the listener), commits them and deletes the journal segments they were in. Returns how many.
  int replayJournal();
  // Deletes journal segments that are no longer needed (after committing applied writes).
  void reclaimJournal();

  // Ops view. list(): newest first; status empty = all; count capped at 1000.
  std::vector<Hl7MessageRow> list(const std::string& status, int count);
  std::optional<Hl7MessageRow> get(const std::string& id, bool withContent);
  // Re-runs the mapping of an 'error' or 'received' message. nullopt: no such row. Otherwise the
  // row after the attempt. Throws fhir::FhirError 409 for rows in another status.
  std::optional<Hl7MessageRow> replay(const std::string& id);

  const Hl7BridgeCounters& counters() const { return counters_; }
  std::string renderMetrics() const;  // Prometheus text lines

 private:
  struct Stored;
  std::vector<std::string> handleMessage(std::string_view raw, const std::string& peer);
  std::optional<Stored> findRow(const std::string& sender, const std::string& controlId);
  std::mutex& lockFor(const std::string& key);

  fhir::ResourceService& service_;
  fhir::InteractionProcessor& interactions_;
  Hl7BridgeOptions options_;
  Hl7BridgeCounters counters_;
  Hl7Journal* journal_ = nullptr;
  std::mutex stripes_[64];

  friend struct BridgeImpl;
};

}  // namespace hearth::server
