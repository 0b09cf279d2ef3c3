#include "hl7_bridge.h"

#include <Poco/Base64Decoder.h>
#include <Poco/Base64Encoder.h>

#include <functional>
#include <sstream>

#include "access_log.h"
#include "hearth/fhir/error.h"
#include "hearth/fhir/json.h"
#include "hearth/hl7/ack.h"
#include "hearth/hl7/message.h"

namespace hearth::server {

using fhir::FhirError;
using fhir::SqlQuery;
using fhir::SqlRow;
using fhir::SqlValue;
using fhir::StoreTransaction;
using hl7::AckCode;
using hl7::AckError;

namespace {

std::string b64encode(std::string_view bytes) {
  std::ostringstream out;
  Poco::Base64Encoder enc(out);
  enc.rdbuf()->setLineLength(0);
  enc.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  enc.close();
  return out.str();
}

std::string b64decode(const std::string& text) {
  std::istringstream in(text);
  Poco::Base64Decoder dec(in);
  std::string out;
  char buf[4096];
  while (dec.read(buf, sizeof buf) || dec.gcount() > 0) out.append(buf, static_cast<size_t>(dec.gcount()));
  return out;
}

std::string text(const SqlValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  return {};
}
int64_t integer(const SqlValue& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return *i;
  if (const auto* s = std::get_if<std::string>(&v)) return std::atoll(s->c_str());
  return 0;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

bool printable(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7E) return false;
  return true;
}

// Who sent a message and which one it is: the duplicate key. The sender is MSH-3 and MSH-4 as
// they are on the wire (trimmed), joined with '|'.
struct Key {
  std::string sender;
  std::string controlId;
  std::string messageType;  // MSH-9.1^MSH-9.2 (for the ops view)
  std::string lockName() const { return "hl7msg:" + sender + "\x1f" + controlId; }
};

Key keyOf(const hl7::Message& msg) {
  const hl7::Segment& msh = msg.segments()[0];
  Key k;
  k.sender = trim(msh.rawField(3)) + "|" + trim(msh.rawField(4));
  k.controlId = trim(msh.rawField(10));
  k.messageType = msh.field(9).component(1).value();
  const std::string trigger = msh.field(9).component(2).value();
  if (!trigger.empty()) k.messageType += "^" + trigger;
  return k;
}

// The key of input that did not parse, read from its first line when that line is an MSH with a
// usable field separator and the values are short printable ASCII; nullopt otherwise.
std::optional<Key> salvageKey(std::string_view raw) {
  if (raw.substr(0, 3) == "\xEF\xBB\xBF") raw.remove_prefix(3);
  while (!raw.empty() && (raw.front() == '\r' || raw.front() == '\n')) raw.remove_prefix(1);
  const std::string_view line = raw.substr(0, raw.find_first_of("\r\n"));
  if (line.size() < 8 || line.substr(0, 3) != "MSH") return std::nullopt;
  const char sep = line[3];
  if (!printable(std::string_view(&sep, 1)) || std::isalnum(static_cast<unsigned char>(sep)) || sep == ' ') return std::nullopt;
  std::vector<std::string_view> parts;  // parts[n - 1] is MSH-n for n >= 3
  size_t start = 0;
  for (size_t i = 3; i <= line.size(); ++i) {
    if (i == line.size() || line[i] == sep) {
      parts.push_back(line.substr(start, i - start));
      start = i + 1;
    }
  }
  if (parts.size() < 10) return std::nullopt;
  Key k;
  k.sender = trim(parts[2]) + "|" + trim(parts[3]);
  k.controlId = trim(parts[9]);
  k.messageType = trim(parts[8]).substr(0, 40);
  if (k.controlId.empty() || k.controlId.size() > 199 || k.sender.size() > 400 || !printable(k.sender) ||
      !printable(k.controlId) || !printable(k.messageType)) {
    return std::nullopt;
  }
  return k;
}

// PHI-free text of ERR entries: code, location, the adapter's user message (which by contract
// names positions, never values).
std::string errorText(const std::vector<AckError>& errors) {
  std::string out;
  for (const AckError& e : errors) {
    if (!out.empty()) out += "; ";
    out += std::to_string(e.hl7Code);
    if (!e.segmentId.empty()) {
      out += ' ';
      out += e.segmentId;
      if (e.segmentSequence > 1) out += "(" + std::to_string(e.segmentSequence) + ")";
      if (e.field > 0) out += "-" + std::to_string(e.field);
      if (e.component > 0) out += "." + std::to_string(e.component);
    }
    out += ": ";
    out += e.userMessage.empty() ? hl7::hl7ErrorText(e.hl7Code) : e.userMessage;
  }
  return out.substr(0, 4000);
}

// A FhirError (the transaction refused) as text without its diagnostics, which may quote values.
std::string errorText(const FhirError& e) {
  std::string out = "FHIR " + std::to_string(e.status());
  for (const fhir::Issue& i : e.issues()) {
    out += "; ";
    out += fhir::issueTypeCode(i.type);
    if (!i.expression.empty()) out += " at " + i.expression.substr(0, 200);
  }
  return out.substr(0, 4000);
}

AckError fhirAckError(const FhirError& e) {
  AckError a;
  a.hl7Code = 207;
  a.userMessage = "The message content was refused by the FHIR store (" + errorText(e) + ")";
  return a;
}

AckError unavailableAckError() {
  AckError a;
  a.hl7Code = 207;
  a.userMessage = "Message store temporarily unavailable; the message was not accepted. Resend it.";
  return a;
}

std::string ackBytes(const hl7::Message& msg, AckCode code, const std::vector<AckError>& errors = {}) {
  return hl7::buildAck(msg, code, errors).encode();
}

// Thrown inside a unit that found the message already stored: rolls the unit back.
struct AlreadyStored : std::exception {
  const char* what() const noexcept override { return "message already stored"; }
};

constexpr const char* kInsert =
    "INSERT INTO hl7_message (id, sender, control_id, message_type, received_at, received_us, raw_b64, status, "
    "error, ack_code, ack_b64, processed_at, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr const char* kColumns =
    "id, sender, control_id, message_type, received_at, status, error, ack_code, processed_at, attempts";

struct NewRow {
  std::string status, error, ackCode, ack;
  bool processed = false;  // sets processed_at
  int attempts = 1;
};

SqlQuery insertRow(const Key& k, const std::string& rawB64, const NewRow& r) {
  const fhir::Instant now = fhir::nowInstant();
  return SqlQuery{kInsert,
                  {fhir::newResourceId(), k.sender, k.controlId, k.messageType, now.text, now.epochMicros, rawB64,
                   r.status, r.error, r.ackCode, b64encode(r.ack), r.processed ? now.text : std::string(),
                   int64_t{r.attempts}}};
}

Hl7MessageRow rowFrom(const SqlRow& r) {
  Hl7MessageRow m;
  m.id = text(r[0]);
  m.sender = text(r[1]);
  m.controlId = text(r[2]);
  m.messageType = text(r[3]);
  m.receivedAt = text(r[4]);
  m.status = text(r[5]);
  m.error = text(r[6]);
  m.ackCode = text(r[7]);
  m.processedAt = text(r[8]);
  m.attempts = integer(r[9]);
  return m;
}

}  // namespace

struct Hl7Bridge::Stored {
  std::string id, status, ackCode, ack;
};

// The processing steps shared by handle(), recovery and replay.
struct BridgeImpl {
  Hl7Bridge& b;

  // Writes one row in its own transaction. False when the store refused it (unavailable, or the
  // key already taken: the caller re-reads).
  bool insertAlone(const Key& k, const std::string& rawB64, const NewRow& r) {
    try {
      b.service_.runAtomic([&](fhir::WriteContext& w) { w.tx().execute(insertRow(k, rawB64, r)); });
      return true;
    } catch (const FhirError& e) {
      logEvent("warning", "hl7: cannot store message row (" + std::to_string(e.status()) + ")" +
                              (e.internalDetail().empty() ? "" : ": " + e.internalDetail()));
      return false;
    }
  }

  bool updateAlone(const std::string& id, const std::string& fromStatuses, const NewRow& r) {
    try {
      b.service_.runAtomic([&](fhir::WriteContext& w) { updateRow(w.tx(), id, fromStatuses, r); });
      return true;
    } catch (const FhirError& e) {
      logEvent("warning", "hl7: cannot update message row (" + std::to_string(e.status()) + ")");
      return false;
    } catch (const AlreadyStored&) {
      return false;
    }
  }

  static void updateRow(StoreTransaction& tx, const std::string& id, const std::string& fromStatuses,
                        const NewRow& r) {
    const fhir::Instant now = fhir::nowInstant();
    const int64_t n = tx.execute(SqlQuery{
        "UPDATE hl7_message SET status = ?, error = ?, ack_code = ?, ack_b64 = ?, processed_at = ?, "
        "attempts = attempts + 1 WHERE id = ? AND status IN (" + fromStatuses + ")",
        {r.status, r.error, r.ackCode, b64encode(r.ack), r.processed ? now.text : std::string(), id}});
    if (n != 1) throw AlreadyStored();  // another thread processed it meanwhile
  }

  struct Result {
    AckCode code = AckCode::AA;
    std::string ack;
    bool stored = false;  // the outcome is in the row (false: store unavailable, nothing written)
  };

  // Maps and applies a parsed message. rowId empty: the row is inserted (original mode) in the
  // unit; else the existing 'received'/'error' row is updated. Duplicates found on the way
  // answer the stored ACK.
  Result process(const hl7::Message& msg, const Key& k, const std::string& rawB64, const std::string& rowId,
                 const std::string& fromStatuses) {
    adapters::MappingResult m = adapters::mapToFhir(msg, b.options_.mapping);
    if (!m.ok()) {
      const bool reject = m.unsupported();
      NewRow row{reject ? "rejected" : "error", errorText(m.errors), reject ? "AR" : "AE",
                 ackBytes(msg, reject ? AckCode::AR : AckCode::AE, m.errors)};
      return finishFailure(k, rawB64, rowId, fromStatuses, row, reject ? AckCode::AR : AckCode::AE, msg);
    }
    const std::string aa = ackBytes(msg, AckCode::AA, m.warnings);
    NewRow row{"processed", "", "AA", aa, true};
    std::optional<std::string> storedAck;  // the ACK of a copy found inside the unit
    try {
      b.interactions_.processTransactionWith(
          m.bundle, b.options_.baseUrl, fhir::ReturnPreference::Minimal, [&](StoreTransaction& tx) {
            if (rowId.empty()) {
              tx.lockKey(k.lockName());
              // Read inside the unit: a copy applied in the open group (journal mode) is visible
              // here only, not to findRow's own connection.
              const auto existing = tx.query(SqlQuery{
                  "SELECT id, ack_b64 FROM hl7_message WHERE sender = ? AND control_id = ?", {k.sender, k.controlId}});
              if (!existing.empty()) {
                storedAck = b64decode(text(existing[0][1]));
                throw AlreadyStored();
              }
              tx.execute(insertRow(k, rawB64, row));
            } else {
              updateRow(tx, rowId, fromStatuses, row);
            }
          });
      b.counters_.processed.fetch_add(1, std::memory_order_relaxed);
      return Result{AckCode::AA, aa, true};
    } catch (const AlreadyStored&) {
      if (storedAck) {
        b.counters_.duplicates.fetch_add(1, std::memory_order_relaxed);
        return Result{AckCode::AA, *storedAck, true};
      }
      return storedAnswer(k, rowId);
    } catch (const FhirError& e) {
      if (e.status() >= 500 || e.status() == 409) {
        // 409: the write kept losing races; 5xx: the store. Either way nothing was written; a
        // constraint violation (the same message committed by another node) is told apart by
        // re-reading.
        if (rowId.empty()) {
          if (auto s = b.findRow(k.sender, k.controlId)) {
            b.counters_.duplicates.fetch_add(1, std::memory_order_relaxed);
            return Result{AckCode::AA, s->ack, true};
          }
        }
        logEvent("warning", "hl7: message not applied, store unavailable (" + std::to_string(e.status()) + ")" +
                                (e.internalDetail().empty() ? "" : ": " + e.internalDetail()));
        b.counters_.unavailable.fetch_add(1, std::memory_order_relaxed);
        return Result{AckCode::AE, ackBytes(msg, AckCode::AE, {unavailableAckError()}), false};
      }
      NewRow err{"error", errorText(e), "AE", ackBytes(msg, AckCode::AE, {fhirAckError(e)})};
      return finishFailure(k, rawB64, rowId, fromStatuses, err, AckCode::AE, msg);
    }
  }

  Result finishFailure(const Key& k, const std::string& rawB64, const std::string& rowId,
                       const std::string& fromStatuses, const NewRow& row, AckCode code, const hl7::Message& msg) {
    const bool ok = rowId.empty() ? insertAlone(k, rawB64, row) : updateAlone(rowId, fromStatuses, row);
    if (!ok) {
      if (rowId.empty()) {
        if (auto s = b.findRow(k.sender, k.controlId)) return Result{AckCode::AA, s->ack, true};
      }
      b.counters_.unavailable.fetch_add(1, std::memory_order_relaxed);
      return Result{AckCode::AE, ackBytes(msg, AckCode::AE, {unavailableAckError()}), false};
    }
    (code == AckCode::AR ? b.counters_.rejected : b.counters_.errors).fetch_add(1, std::memory_order_relaxed);
    logEvent("info", "hl7: message " + std::string(code == AckCode::AR ? "rejected" : "in error") + " from " +
                         k.sender + " control id " + k.controlId + ": " + row.error);
    return Result{code, row.ack, true};
  }

  Result storedAnswer(const Key& k, const std::string& rowId) {
    b.counters_.duplicates.fetch_add(1, std::memory_order_relaxed);
    if (rowId.empty()) {
      if (auto s = b.findRow(k.sender, k.controlId)) return Result{AckCode::AA, s->ack, true};
    } else {
      auto rows = b.service_.store().query(SqlQuery{"SELECT ack_b64 FROM hl7_message WHERE id = ?", {rowId}});
      if (!rows.empty()) return Result{AckCode::AA, b64decode(text(rows[0][0])), true};
    }
    return Result{AckCode::AE, {}, false};
  }
};

Hl7Bridge::Hl7Bridge(fhir::ResourceService& service, fhir::InteractionProcessor& interactions,
                     Hl7BridgeOptions options)
    : service_(service), interactions_(interactions), options_(std::move(options)) {}

std::mutex& Hl7Bridge::lockFor(const std::string& key) {
  return stripes_[std::hash<std::string>{}(key) % (sizeof stripes_ / sizeof stripes_[0])];
}

std::optional<Hl7Bridge::Stored> Hl7Bridge::findRow(const std::string& sender, const std::string& controlId) {
  auto rows = service_.store().query(SqlQuery{
      "SELECT id, status, ack_code, ack_b64 FROM hl7_message WHERE sender = ? AND control_id = ?", {sender, controlId}});
  if (rows.empty()) return std::nullopt;
  return Stored{text(rows[0][0]), text(rows[0][1]), text(rows[0][2]), b64decode(text(rows[0][3]))};
}

std::string Hl7Bridge::oversizeAck() const {
  AckError e;
  e.hl7Code = 207;
  e.userMessage = "Message larger than this receiver accepts";
  return hl7::buildAck(std::string_view(), AckCode::AR, {e}).encode();
}

std::vector<std::string> Hl7Bridge::handle(std::string_view raw, const std::string& peer) {
  counters_.received.fetch_add(1, std::memory_order_relaxed);
  try {
    return handleMessage(raw, peer);
  } catch (const std::exception& e) {
    // The store failed outside a unit (a read), or something unforeseen: nothing was acknowledged,
    // so the sender must resend (a message already committed is then answered as a duplicate).
    logEvent("error", std::string("hl7: message from ") + peer + " not handled: " + e.what());
    counters_.unavailable.fetch_add(1, std::memory_order_relaxed);
    return {hl7::buildAck(raw, AckCode::AE, {unavailableAckError()}).encode()};
  }
}

std::vector<std::string> Hl7Bridge::handleMessage(std::string_view raw, const std::string& peer) {
  BridgeImpl impl{*this};
  hl7::ParseOptions po;
  po.maxBytes = options_.maxMessageBytes;
  std::optional<hl7::Message> parsed;
  try {
    parsed.emplace(hl7::Message::parse(raw, po));
  } catch (const hl7::Hl7Error& e) {
    // No usable message: AR (CR would need a readable MSH-15). Record it when it can be named.
    const std::string ar = hl7::buildAck(raw, AckCode::AR, {AckError::from(e)}).encode();
    counters_.rejected.fetch_add(1, std::memory_order_relaxed);
    if (auto k = salvageKey(raw)) {
      std::lock_guard<std::mutex> lock(lockFor(k->lockName()));
      if (auto s = findRow(k->sender, k->controlId)) {
        counters_.duplicates.fetch_add(1, std::memory_order_relaxed);
        return {s->ack};
      }
      NewRow row{"rejected", std::string("parse: ") + hl7::errorCodeName(e.code()) + ": " + e.what(), "AR", ar};
      impl.insertAlone(*k, b64encode(raw), row);
      logEvent("info", "hl7: rejected unparseable message from " + k->sender + " control id " + k->controlId +
                           " (" + hl7::errorCodeName(e.code()) + ")");
    } else {
      logEvent("info", "hl7: rejected unparseable input from " + peer + " (" + hl7::errorCodeName(e.code()) + ", " +
                           std::to_string(raw.size()) + " bytes)");
    }
    return {ar};
  }
  const hl7::Message& msg = *parsed;
  const Key k = keyOf(msg);
  const bool enhanced = hl7::ackMode(msg) == hl7::AckMode::Enhanced;
  const hl7::Segment& msh = msg.segments()[0];
  const std::string acceptCond = msh.field(15).value();
  const std::string appCond = msh.field(16).value();
  if (k.controlId.empty()) {
    AckError e;
    e.hl7Code = 101;
    e.segmentId = "MSH";
    e.segmentSequence = 1;
    e.field = 10;
    e.userMessage = "MSH-10 (message control id) is required to accept a message";
    counters_.rejected.fetch_add(1, std::memory_order_relaxed);
    logEvent("info", "hl7: rejected message without control id from " + k.sender);
    return {ackBytes(msg, enhanced ? AckCode::CR : AckCode::AR, {e})};
  }

  std::lock_guard<std::mutex> lock(lockFor(k.lockName()));
  const bool journaled = !enhanced && journal_ && service_.appliedWritesEnabled();
  // In journal mode the unit itself looks for an earlier copy (it must: a copy still in the open
  // group is visible only there), so the read here would only repeat that lookup.
  if (!journaled) {
    if (auto s = findRow(k.sender, k.controlId)) {
      counters_.duplicates.fetch_add(1, std::memory_order_relaxed);
      return {s->ack};
    }
  }
  const std::string rawB64 = b64encode(raw);
  if (!enhanced) {
    if (journaled) {
      // Journal mode (hl7_journal.h): record durable in the journal, writes applied in the open
      // group; the AA waits for both.
      const Hl7Journal::Ticket t = journal_->append(peer, raw);
      BridgeImpl::Result r;
      try {
        fhir::ResourceService::AppliedWrites applied;
        // The record's sync runs here while the writer applies the message (no thread hand-off;
        // waitDurable below then returns at once, or rethrows a failed sync).
        fhir::GroupCommitter::WhileWaiting sync([this, t] { journal_->waitDurable(t); });
        r = impl.process(msg, k, rawB64, {}, {});
      } catch (...) {
        journal_->release(t);
        throw;
      }
      journal_->release(t);
      journal_->waitDurable(t);  // throws: the outer handler answers AE 207, the sender resends
      reclaimJournal();
      return {r.ack};
    }
    return {impl.process(msg, k, rawB64, {}, {}).ack};
  }

  // Enhanced mode: commit the raw message first, then accept, then process.
  const std::string ca = ackBytes(msg, AckCode::CA);
  NewRow received{"received", "", "CA", ca, false, 0};
  std::vector<std::string> out;
  if (!impl.insertAlone(k, rawB64, received)) {
    if (auto s = findRow(k.sender, k.controlId)) return {s->ack};
    counters_.unavailable.fetch_add(1, std::memory_order_relaxed);
    const std::string ce = ackBytes(msg, AckCode::CE, {unavailableAckError()});
    if (hl7::ackWanted(acceptCond, false)) out.push_back(ce);
    return out;
  }
  auto row = findRow(k.sender, k.controlId);
  if (!row) return {};  // cannot happen: committed above
  BridgeImpl::Result r = impl.process(msg, k, rawB64, row->id, "'received'");
  const bool success = r.code == AckCode::AA;
  // The accept ACK reports whether the message was taken: it was (committed above), unless the
  // type is not one we take at all (CR).
  const AckCode accept = r.code == AckCode::AR ? AckCode::CR : AckCode::CA;
  if (hl7::ackWanted(acceptCond, accept == AckCode::CA)) {
    out.push_back(accept == AckCode::CA ? ca : ackBytes(msg, accept, {}));
  }
  if (!r.stored) return out;  // stays 'received': processed on the next start or by a replay
  // The row keeps the application ACK: a duplicate gets that one frame back.
  if (accept != AckCode::CR && hl7::ackWanted(appCond, success)) out.push_back(r.ack);
  return out;
}

void Hl7Bridge::reclaimJournal() {
  if (!journal_) return;
  journal_->reclaim([this] {
    if (service_.appliedLost()) return false;  // a group with applied messages failed: keep all
    service_.flushApplied(true);
    return !service_.appliedLost();
  });
}

int Hl7Bridge::replayJournal() {
  if (!journal_) return 0;
  int replayed = 0;
  for (const Hl7Journal::Record& rec : journal_->recovered()) {
    try {
      hl7::ParseOptions po;
      po.maxBytes = options_.maxMessageBytes;
      const hl7::Message msg = hl7::Message::parse(rec.raw, po);
      const Key k = keyOf(msg);
      if (!k.controlId.empty() && hl7::ackMode(msg) != hl7::AckMode::Enhanced) {
        std::lock_guard<std::mutex> lock(lockFor(k.lockName()));
        if (!findRow(k.sender, k.controlId)) {
          BridgeImpl impl{*this};
          fhir::ResourceService::AppliedWrites applied;
          const BridgeImpl::Result r = impl.process(msg, k, b64encode(rec.raw), {}, {});
          if (!r.stored) {
            // The store refused: keep the journal for the next start rather than lose the message.
            logEvent("error", "hl7: journal replay stopped, store unavailable; the journal is kept");
            return replayed;
          }
          ++replayed;
        }
      }
    } catch (const hl7::Hl7Error&) {
      // Only parseable original-mode messages are journaled; nothing to do for anything else.
    }
    journal_->releaseRecovered(rec.seq);
  }
  service_.flushApplied(true);
  reclaimJournal();
  return replayed;
}

int Hl7Bridge::recoverPending() {
  BridgeImpl impl{*this};
  int done = 0;
  for (;;) {
    auto rows = service_.store().query(SqlQuery{
        "SELECT id, raw_b64 FROM hl7_message WHERE status = 'received' ORDER BY received_us, id LIMIT 100", {}});
    if (rows.empty()) break;
    int progressed = 0;
    for (const SqlRow& r : rows) {
      const std::string id = text(r[0]);
      const std::string raw = b64decode(text(r[1]));
      try {
        hl7::ParseOptions po;
        po.maxBytes = options_.maxMessageBytes;
        const hl7::Message msg = hl7::Message::parse(raw, po);
        const Key k = keyOf(msg);
        std::lock_guard<std::mutex> lock(lockFor(k.lockName()));
        BridgeImpl::Result res = impl.process(msg, k, text(r[1]), id, "'received'");
        if (res.stored) ++progressed;
      } catch (const hl7::Hl7Error& e) {
        if (impl.updateAlone(id, "'received'",
                             NewRow{"rejected", std::string("parse: ") + hl7::errorCodeName(e.code()), "AR",
                                    hl7::buildAck(raw, AckCode::AR, {AckError::from(e)}).encode()})) {
          ++progressed;
        }
      }
    }
    done += progressed;
    if (progressed == 0) break;  // the store refuses: leave the rest for the next start
  }
  if (done > 0) logEvent("info", "hl7: recovered " + std::to_string(done) + " received-but-unprocessed messages");
  return done;
}

std::vector<Hl7MessageRow> Hl7Bridge::list(const std::string& status, int count) {
  if (count < 1) count = 1;
  if (count > 1000) count = 1000;
  SqlQuery q{std::string("SELECT ") + kColumns + " FROM hl7_message", {}};
  if (!status.empty()) {
    q.sql += " WHERE status = ?";
    q.params.emplace_back(status);
  }
  q.sql += " ORDER BY received_us DESC, id DESC LIMIT " + std::to_string(count);
  std::vector<Hl7MessageRow> out;
  for (const SqlRow& r : service_.store().query(q)) out.push_back(rowFrom(r));
  return out;
}

std::optional<Hl7MessageRow> Hl7Bridge::get(const std::string& id, bool withContent) {
  auto rows = service_.store().query(
      SqlQuery{std::string("SELECT ") + kColumns + ", raw_b64, ack_b64 FROM hl7_message WHERE id = ?", {id}});
  if (rows.empty()) return std::nullopt;
  Hl7MessageRow m = rowFrom(rows[0]);
  if (withContent) {
    m.raw = b64decode(text(rows[0][10]));
    m.ack = b64decode(text(rows[0][11]));
  }
  return m;
}

std::optional<Hl7MessageRow> Hl7Bridge::replay(const std::string& id) {
  auto row = get(id, true);
  if (!row) return std::nullopt;
  if (row->status != "error" && row->status != "received") {
    throw FhirError(409, fhir::IssueType::BusinessRule,
                    "Only messages in status error or received can be replayed; this one is " + row->status);
  }
  hl7::Message msg;
  try {
    hl7::ParseOptions po;
    po.maxBytes = options_.maxMessageBytes;
    msg = hl7::Message::parse(row->raw, po);
  } catch (const hl7::Hl7Error& e) {
    throw FhirError(422, fhir::IssueType::Invalid,
                    std::string("The stored message does not parse: ") + hl7::errorCodeName(e.code()));
  }
  const Key k = keyOf(msg);
  std::lock_guard<std::mutex> lock(lockFor(k.lockName()));
  BridgeImpl impl{*this};
  BridgeImpl::Result r = impl.process(msg, k, b64encode(row->raw), id, "'error','received'");
  if (!r.stored) throw FhirError(503, fhir::IssueType::Transient, "The store is unavailable; nothing was replayed");
  return get(id, false);
}

std::string Hl7Bridge::renderMetrics() const {
  std::string out =
      "# HELP hearth_hl7_messages_total Inbound HL7 v2 messages by outcome.\n"
      "# TYPE hearth_hl7_messages_total counter\n";
  auto line = [&](const char* outcome, const std::atomic<uint64_t>& v) {
    out += "hearth_hl7_messages_total{outcome=\"";
    out += outcome;
    out += "\"} " + std::to_string(v.load(std::memory_order_relaxed)) + "\n";
  };
  line("received", counters_.received);
  line("processed", counters_.processed);
  line("error", counters_.errors);
  line("rejected", counters_.rejected);
  line("duplicate", counters_.duplicates);
  line("unavailable", counters_.unavailable);
  return out;
}

}  // namespace hearth::server
