// HL7 v2 outbox: enqueue in the writing transaction, deliver over MLLP (see hl7_outbox.h).
#include "hl7_outbox.h"

#include <Poco/Base64Decoder.h>
#include <Poco/Base64Encoder.h>
#include <Poco/StringTokenizer.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <functional>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "access_log.h"
#include "hearth/adapters/fhir_to_v2.h"
#include "hearth/fhir/json.h"
#include "hearth/hl7/ack.h"
#include "hearth/hl7/message.h"
#include "mllp.h"

namespace hearth::server {

namespace {

using fhir::SqlQuery;
using fhir::SqlRow;
using fhir::SqlValue;

struct Route {
  std::string name;
  std::string host;
  uint16_t port = 0;
  std::set<std::string, std::less<>> types;
  std::string message;  // ORM^O01 | OML^O21 | DFT^P03
  std::string category;  // ServiceRequest.category code or text; empty = any
  std::string receivingApplication, receivingFacility;
  int maxAttempts = 10;
  int ackTimeoutMs = 30000;
  int connectTimeoutMs = 5000;
  int64_t retryInitialMs = 1000;
  int64_t retryMaxMs = 300000;
};

std::string b64encode(const std::string& s) {
  std::ostringstream out;
  Poco::Base64Encoder enc(out);
  enc.rdbuf()->setLineLength(0);
  enc << s;
  enc.close();
  return out.str();
}

std::string b64decode(const std::string& s) {
  std::istringstream in(s);
  Poco::Base64Decoder dec(in);
  std::string out((std::istreambuf_iterator<char>(dec)), std::istreambuf_iterator<char>());
  return out;
}

int64_t nowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string v2Now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M%S+0000", &tm);
  return buf;
}

std::string newRowId() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

std::string text(const SqlValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  return {};
}
int64_t integer(const SqlValue& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return *i;
  if (const auto* s = std::get_if<std::string>(&v)) return std::strtoll(s->c_str(), nullptr, 10);
  return 0;
}

using QueryFn = std::function<std::vector<SqlRow>(const SqlQuery&)>;

// Reads a resource's live content through `query`: inside the writing transaction (sees its own
// writes) when enqueuing, committed data when a deferred row is mapped at delivery.
adapters::Resolver resolverFor(QueryFn query) {
  return [query](std::string_view type, std::string_view id) -> std::optional<std::string> {
    std::vector<SqlRow> rows;
    if (type == "Coverage" && id.rfind("?beneficiary=Patient/", 0) == 0) {
      const std::string patient(id.substr(std::string_view("?beneficiary=Patient/").size()));
      rows = query({"SELECT v.content FROM search_reference r "
                    "JOIN resource_current c ON c.type = r.type AND c.id = r.id "
                    "JOIN resource_version v ON v.seq = c.seq "
                    "WHERE r.type = 'Coverage' AND r.param = 'beneficiary' AND r.target_type = 'Patient' "
                    "AND r.target_id = ? AND NOT c.deleted ORDER BY c.seq DESC LIMIT 1",
                    {patient}});
    } else {
      rows = query({"SELECT v.content FROM resource_current c JOIN resource_version v ON v.seq = c.seq "
                    "WHERE c.type = ? AND c.id = ? AND NOT c.deleted",
                    {std::string(type), std::string(id)}});
    }
    if (rows.empty() || rows[0].empty()) return std::nullopt;
    return text(rows[0][0]);
  };
}

// A row whose mapping failed at enqueue time (typically a transaction Bundle that writes the
// ServiceRequest before its Patient) carries this instead of a payload, with the order control;
// the dispatcher maps it from committed data when it reaches the head. Not base64 (':').
constexpr std::string_view kDeferred = "defer:";

const char* controlName(adapters::OrderControl c) {
  switch (c) {
    case adapters::OrderControl::NW: return "NW";
    case adapters::OrderControl::XO: return "XO";
    case adapters::OrderControl::CA: return "CA";
    default: return "";
  }
}
adapters::OrderControl controlFromName(std::string_view n) {
  if (n == "NW") return adapters::OrderControl::NW;
  if (n == "XO") return adapters::OrderControl::XO;
  if (n == "CA") return adapters::OrderControl::CA;
  return adapters::OrderControl::None;
}

bool categoryMatches(const std::string& json, const std::string& wanted) {
  if (wanted.empty()) return true;
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("category") || !d["category"].IsArray()) return false;
  auto same = [&](const rapidjson::Value& s) {
    if (!s.IsString()) return false;
    const std::string v(s.GetString(), s.GetStringLength());
    return v.size() == wanted.size() &&
           std::equal(v.begin(), v.end(), wanted.begin(), [](char a, char b) { return std::tolower(a) == std::tolower(b); });
  };
  for (const auto& cc : d["category"].GetArray()) {
    if (!cc.IsObject()) continue;
    if (cc.HasMember("text") && same(cc["text"])) return true;
    if (cc.HasMember("coding") && cc["coding"].IsArray())
      for (const auto& c : cc["coding"].GetArray())
        if (c.IsObject() && c.HasMember("code") && same(c["code"])) return true;
  }
  return false;
}

std::string statusOf(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("status") || !d["status"].IsString()) return {};
  return d["status"].GetString();
}

}  // namespace

struct Hl7Outbox::Impl {
  fhir::ResourceStore& store;
  std::vector<Route> routes;
  adapters::OutboundOptions base;  // sending app/facility, authority map
  int pollMs = 200;
  std::atomic<bool> stopping{false};
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<std::thread> threads;

  explicit Impl(fhir::ResourceStore& s) : store(s) {}

  // ---- enqueue (inside the writing transaction) ----

  void onWrite(fhir::StoreTransaction& tx, const fhir::StoredVersion& v) {
    for (const Route& r : routes) {
      if (!r.types.count(v.type)) continue;
      enqueueFor(tx, r, v);
    }
  }

  // Whether an earlier message about `source` (type/id) went into this route's queue.
  bool alreadyQueued(fhir::StoreTransaction& tx, const Route& r, const fhir::StoredVersion& v) {
    // Sources are "<type>/<id>/_history/<version>": a bytewise range over the prefix (indexed;
    // '0' is the byte after '/'). Rows without payload (mapping failures) were never sent.
    const std::string prefix = v.type + "/" + v.id + "/_history/";
    auto rows = tx.query({"SELECT COUNT(*) FROM hl7_outbox WHERE route = ? AND source >= ? AND source < ? "
                          "AND payload_b64 <> ''",
                          {r.name, prefix, prefix.substr(0, prefix.size() - 1) + "0"}});
    return !rows.empty() && integer(rows[0][0]) > 0;
  }

  void enqueueFor(fhir::StoreTransaction& tx, const Route& r, const fhir::StoredVersion& v) {
    std::string content = v.json;
    if (v.deleted) {
      if (v.type != "ServiceRequest") return;  // a deleted charge is not un-billed by v2 here
      auto rows = tx.query({"SELECT content, deleted FROM resource_version WHERE type = ? AND id = ? AND version = ?",
                            {v.type, v.id, v.version - 1}});
      if (rows.empty() || integer(rows[0][1]) != 0) return;
      content = text(rows[0][0]);
    }
    const std::string status = statusOf(content);
    adapters::OrderControl control = adapters::OrderControl::None;
    if (v.type == "ServiceRequest") {
      if (!categoryMatches(content, r.category)) return;
      control = adapters::orderControlFor(status, v.version, v.deleted);
      if (control == adapters::OrderControl::None) return;
      const bool earlier = alreadyQueued(tx, r, v);
      if (control == adapters::OrderControl::XO && !earlier) control = adapters::OrderControl::NW;
      if (control == adapters::OrderControl::CA && !earlier) return;  // the partner never saw it
      if (control == adapters::OrderControl::CA && v.version > 1) {
        // Cancelled once is enough: no second CA when a revoked order is edited or deleted.
        std::string before = content;  // for a deletion, content is already the previous version
        if (!v.deleted) {
          auto prev = tx.query({"SELECT content FROM resource_version WHERE type = ? AND id = ? AND version = ?",
                                {v.type, v.id, v.version - 1}});
          before = prev.empty() ? std::string() : text(prev[0][0]);
        }
        const std::string was = statusOf(before);
        if (was == "revoked" || was == "entered-in-error" || (before.empty() && !v.deleted)) return;
      }
    } else if (v.type == "ChargeItem") {
      if (status != "billable" || alreadyQueued(tx, r, v)) return;
    } else if (v.type == "Invoice") {
      if ((status != "issued" && status != "balanced") || alreadyQueued(tx, r, v)) return;
    } else {
      return;
    }

    const std::string controlId = hl7::newControlId();
    std::string error;
    std::string payload = build(r, v.type, content, control, controlId,
                                [&tx](const SqlQuery& q) { return tx.query(q); }, error);
    const fhir::Instant now = fhir::nowInstant();
    const std::string source = v.type + "/" + v.id + "/_history/" + std::to_string(v.version);
    std::string stored = b64encode(payload);
    if (!error.empty()) {
      stored = std::string(kDeferred) + controlName(control);
      error = "mapping deferred to delivery: " + error;
      logEvent("info", "hl7 outbox " + r.name + ": " + error + " (" + v.type + "/" + v.id + ")");
    }
    tx.execute({"INSERT INTO hl7_outbox (id, route, message_type, control_id, source, payload_b64, status, attempts, "
                "next_attempt_us, created_at, created_us, sent_at, ack_code, last_error) "
                "VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, '', '', ?)",
                {newRowId(), r.name, r.message, controlId, source, stored, now.epochMicros, now.text,
                 now.epochMicros, error}});
  }

  // Maps one resource version for route r; "" and `error` set when it cannot be mapped.
  std::string build(const Route& r, const std::string& type, const std::string& content,
                    adapters::OrderControl control, const std::string& controlId, QueryFn query, std::string& error) {
    adapters::OutboundOptions o = base;
    o.receivingApplication = r.receivingApplication;
    o.receivingFacility = r.receivingFacility;
    o.controlId = controlId;
    o.timestamp = v2Now();
    try {
      const auto resolve = resolverFor(std::move(query));
      if (r.message == "DFT^P03") return adapters::financialToDft(type, content, resolve, o);
      if (type == "ServiceRequest")
        return adapters::serviceRequestToV2(
            content, r.message == "OML^O21" ? adapters::OrderMessage::OML_O21 : adapters::OrderMessage::ORM_O01,
            control, resolve, o);
      error = "route message " + r.message + " does not carry " + type;
    } catch (const adapters::OutboundError& e) {
      error = std::string("cannot map: ") + e.what();
    } catch (const hl7::Hl7Error& e) {
      error = std::string("cannot encode: ") + e.what();
    }
    return {};
  }

  // A deferred row reaching the head: map it now from committed data (the source version's
  // content, referenced resources as they are now). Returns the payload, or "" after marking the
  // row failed.
  std::string mapDeferred(const Route& r, const std::string& id, const std::string& stored,
                          const std::string& controlId) {
    std::string source;
    auto rows = store.query({"SELECT source FROM hl7_outbox WHERE id = ?", {id}});
    if (!rows.empty()) source = text(rows[0][0]);
    // "<type>/<id>/_history/<version>"
    const size_t s1 = source.find('/'), h = source.find("/_history/");
    std::string error, payload;
    if (s1 == std::string::npos || h == std::string::npos || h <= s1) {
      error = "cannot map: unreadable source";
    } else {
      const std::string type = source.substr(0, s1), rid = source.substr(s1 + 1, h - s1 - 1);
      const adapters::OrderControl control = controlFromName(std::string_view(stored).substr(kDeferred.size()));
      int64_t version = std::strtoll(source.c_str() + h + 10, nullptr, 10);
      if (control == adapters::OrderControl::CA && type == "ServiceRequest") {
        auto del = store.query({"SELECT deleted FROM resource_version WHERE type = ? AND id = ? AND version = ?",
                                {type, rid, version}});
        if (!del.empty() && integer(del[0][0]) != 0) --version;  // cancel from the last live version
      }
      auto content = store.query({"SELECT content FROM resource_version WHERE type = ? AND id = ? AND version = ?",
                                  {type, rid, version}});
      if (content.empty()) {
        error = "cannot map: the source version is gone";
      } else {
        payload = build(r, type, text(content[0][0]), control, controlId,
                        [this](const SqlQuery& q) { return store.query(q); }, error);
      }
    }
    if (!error.empty()) {
      update("UPDATE hl7_outbox SET status = 'failed', last_error = ? WHERE id = ? AND status = 'pending'",
             {error, id});
      logEvent("warn", "hl7 outbox " + r.name + ": message " + id + " not sent: " + error);
      return {};
    }
    const std::string encoded = b64encode(payload);
    update("UPDATE hl7_outbox SET payload_b64 = ?, last_error = '' WHERE id = ? AND status = 'pending'", {encoded, id});
    return payload;
  }

  // ---- delivery ----

  void update(const std::string& sql, std::vector<SqlValue> params) {
    auto tx = store.begin();
    tx->execute({sql, std::move(params)});
    tx->commit();
  }

  // Waits up to `ms` or until stop.
  void sleepFor(int64_t ms) {
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(ms, 1)), [&] { return stopping.load(); });
  }

  void dispatch(const Route& r) {
    MllpClientOptions co;
    co.host = r.host;
    co.port = r.port;
    co.ackTimeoutMs = r.ackTimeoutMs;
    co.connectTimeoutMs = r.connectTimeoutMs;
    MllpClient client(co);
    while (!stopping.load()) {
      std::vector<SqlRow> rows;
      try {
        rows = store.query({"SELECT id, payload_b64, attempts, next_attempt_us, control_id FROM hl7_outbox "
                            "WHERE route = ? AND status = 'pending' ORDER BY created_us, id LIMIT 1",
                            {r.name}});
      } catch (const std::exception& e) {
        logEvent("error", "hl7 outbox " + r.name + ": cannot read the outbox: " + e.what());
        sleepFor(1000);
        continue;
      }
      if (rows.empty()) {
        sleepFor(pollMs);
        continue;
      }
      const std::string id = text(rows[0][0]);
      const int64_t attempts = integer(rows[0][2]);
      const int64_t due = integer(rows[0][3]);
      const std::string controlId = text(rows[0][4]);
      const int64_t wait = (due - nowMicros()) / 1000;
      if (wait > 0) {
        // The head waits for its back-off and holds the route (ordering); re-read afterwards so
        // that a $retry (due now) is seen within the poll interval.
        sleepFor(std::min<int64_t>(wait, pollMs));
        continue;
      }
      try {
        const std::string stored = text(rows[0][1]);
        std::string payload;
        if (stored.rfind(kDeferred, 0) == 0) {
          payload = mapDeferred(r, id, stored, controlId);
          if (payload.empty()) continue;  // marked failed; the next row is the head now
        } else {
          payload = b64decode(stored);
        }
        deliver(r, client, id, payload, controlId, attempts);
      } catch (const std::exception& e) {
        logEvent("error", "hl7 outbox " + r.name + ": cannot record delivery of " + id + ": " + e.what());
        sleepFor(1000);
      }
    }
    client.close();
  }

  void deliver(const Route& r, MllpClient& client, const std::string& id, const std::string& payload,
               const std::string& controlId, int64_t attempts) {
    std::string ackCode, error;
    bool transient = false;
    try {
      const std::string response = client.exchange(payload);
      hl7::Message ack = hl7::Message::parse(response);
      ackCode = ack.get("MSA-1");
      if (ack.get("MSA-2") != controlId) {
        transient = true;
        error = "the ACK acknowledges another control id";
      } else if (ackCode != "AA" && ackCode != "CA") {
        error = ackCode.empty() ? "the ACK has no MSA-1" : "partner answered " + ackCode;
        std::string detail = ack.get("ERR-8");
        if (detail.empty()) detail = ack.get("ERR-3.2");
        if (detail.empty()) detail = ack.get("ERR-7");
        if (detail.empty()) detail = ack.get("MSA-3");
        if (detail.empty()) detail = ack.get("ERR-1.4.2");
        if (!detail.empty()) error += ": " + detail;
        if (ackCode.empty()) transient = true;
      }
    } catch (const hl7::Hl7Error& e) {
      transient = true;
      error = std::string("unreadable ACK: ") + e.what();
    } catch (const std::exception& e) {
      transient = true;
      error = e.what();
    }
    const fhir::Instant now = fhir::nowInstant();
    if (error.empty()) {
      update("UPDATE hl7_outbox SET status = 'sent', attempts = ?, sent_at = ?, ack_code = ?, last_error = '' "
             "WHERE id = ? AND status = 'pending'",
             {attempts + 1, now.text, ackCode, id});
      return;
    }
    if (!transient || attempts + 1 >= r.maxAttempts) {
      if (transient) error += " (gave up after " + std::to_string(attempts + 1) + " attempts)";
      update("UPDATE hl7_outbox SET status = 'failed', attempts = ?, ack_code = ?, last_error = ? "
             "WHERE id = ? AND status = 'pending'",
             {attempts + 1, ackCode, error, id});
      logEvent("warn", "hl7 outbox " + r.name + ": message " + id + " failed: " + error);
      return;
    }
    int64_t delayMs = r.retryInitialMs;
    for (int64_t i = 0; i < attempts && delayMs < r.retryMaxMs; ++i) delayMs *= 2;
    delayMs = std::min(delayMs, r.retryMaxMs);
    update("UPDATE hl7_outbox SET attempts = ?, next_attempt_us = ?, ack_code = ?, last_error = ? "
           "WHERE id = ? AND status = 'pending'",
           {attempts + 1, now.epochMicros + delayMs * 1000, ackCode, error, id});
  }
};

namespace {

int intOr(const Poco::Util::AbstractConfiguration& c, const std::string& key, int def, int min, int max,
          const std::string& route) {
  if (!c.has(key)) return def;
  int v = 0;
  try {
    v = c.getInt(key);
  } catch (const Poco::Exception&) {
    throw std::invalid_argument(key + " must be an integer");
  }
  if (v < min || v > max) throw std::invalid_argument(key + " must be in " + std::to_string(min) + ".." + std::to_string(max));
  (void)route;
  return v;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

}  // namespace

Hl7Outbox::Hl7Outbox(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Hl7Outbox::~Hl7Outbox() { stop(); }

void Hl7Outbox::stop() {
  if (!impl_) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  for (auto& t : impl_->threads)
    if (t.joinable()) t.join();
  impl_->threads.clear();
}

std::unique_ptr<Hl7Outbox> Hl7Outbox::start(const Poco::Util::AbstractConfiguration& config,
                                            fhir::ResourceService& service, fhir::ResourceStore& store) {
  auto impl = std::make_unique<Impl>(store);
  impl->base.sendingApplication = config.getString("hl7.out.sending-application", "HEARTH");
  impl->base.sendingFacility = config.getString("hl7.out.sending-facility", "");
  impl->pollMs = intOr(config, "hl7.out.poll-ms", 200, 10, 60000, "");
  // hl7.out.authority-systems = NS=system, NS2=system2 (the inbound mapping's table, reversed).
  for (const std::string& pair : Poco::StringTokenizer(config.getString("hl7.out.authority-systems", ""), ",",
                                                       Poco::StringTokenizer::TOK_TRIM | Poco::StringTokenizer::TOK_IGNORE_EMPTY)) {
    const size_t eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) throw std::invalid_argument("hl7.out.authority-systems: NS=system expected");
    impl->base.authoritySystems[trim(pair.substr(0, eq))] = trim(pair.substr(eq + 1));
  }
  Poco::Util::AbstractConfiguration::Keys names;
  config.keys("hl7.out", names);
  for (const std::string& name : names) {
    const std::string p = "hl7.out." + name + ".";
    if (!config.has(p + "host")) continue;  // the global keys above, or a commented-out route
    Route r;
    r.name = name;
    r.host = config.getString(p + "host");
    r.port = static_cast<uint16_t>(intOr(config, p + "port", 0, 1, 65535, name));
    if (r.port == 0) throw std::invalid_argument(p + "port is required");
    r.message = trim(config.getString(p + "message", ""));
    if (r.message != "ORM^O01" && r.message != "OML^O21" && r.message != "DFT^P03")
      throw std::invalid_argument(p + "message must be ORM^O01, OML^O21 or DFT^P03");
    const std::string defTypes = r.message == "DFT^P03" ? "Invoice,ChargeItem" : "ServiceRequest";
    for (const std::string& t : Poco::StringTokenizer(config.getString(p + "types", defTypes), ",",
                                                      Poco::StringTokenizer::TOK_TRIM | Poco::StringTokenizer::TOK_IGNORE_EMPTY)) {
      const bool order = t == "ServiceRequest";
      const bool money = t == "Invoice" || t == "ChargeItem";
      if (!order && !money) throw std::invalid_argument(p + "types: " + t + " is not sent over HL7 v2");
      if (order != (r.message != "DFT^P03")) throw std::invalid_argument(p + "types: " + t + " does not go in " + r.message);
      r.types.insert(t);
    }
    r.category = trim(config.getString(p + "category", ""));
    r.receivingApplication = config.getString(p + "receiving-application", "");
    r.receivingFacility = config.getString(p + "receiving-facility", "");
    r.maxAttempts = intOr(config, p + "max-attempts", 10, 1, 1000000, name);
    r.ackTimeoutMs = intOr(config, p + "ack-timeout-ms", 30000, 100, 3600000, name);
    r.connectTimeoutMs = intOr(config, p + "connect-timeout-ms", 5000, 100, 600000, name);
    r.retryInitialMs = intOr(config, p + "retry-initial-ms", 1000, 10, 3600000, name);
    r.retryMaxMs = intOr(config, p + "retry-max-ms", 300000, 10, 86400000, name);
    if (config.getBool(p + "tls", false))
      throw std::invalid_argument(p + "tls: TLS to v2 partners is not supported yet (use a TLS tunnel)");
    impl->routes.push_back(std::move(r));
  }
  if (impl->routes.empty()) return nullptr;
  Impl* raw = impl.get();
  service.addWriteObserver([raw](fhir::StoreTransaction& tx, const fhir::StoredVersion& v) { raw->onWrite(tx, v); });
  for (const Route& r : raw->routes) {
    raw->threads.emplace_back([raw, &r] { raw->dispatch(r); });
    logEvent("info", "hl7 outbound route " + r.name + ": " + r.message + " to " + r.host + ":" + std::to_string(r.port));
  }
  return std::unique_ptr<Hl7Outbox>(new Hl7Outbox(std::move(impl)));
}

// ---- operations view ----------------------------------------------------------------------------

namespace {

void field(std::string& out, const char* name, const std::string& value, bool comma = true) {
  if (comma) out += ',';
  out += '"';
  out += name;
  out += "\":\"";
  fhir::appendJsonEscaped(out, value);
  out += '"';
}

void rowJson(std::string& out, const SqlRow& r) {
  out += '{';
  field(out, "id", text(r[0]), false);
  field(out, "route", text(r[1]));
  field(out, "messageType", text(r[2]));
  field(out, "controlId", text(r[3]));
  field(out, "source", text(r[4]));
  field(out, "status", text(r[5]));
  out += ",\"attempts\":" + std::to_string(integer(r[6]));
  out += ",\"nextAttemptUs\":" + std::to_string(integer(r[7]));
  field(out, "createdAt", text(r[8]));
  field(out, "sentAt", text(r[9]));
  field(out, "ackCode", text(r[10]));
  field(out, "lastError", text(r[11]));
}

constexpr const char* kColumns =
    "id, route, message_type, control_id, source, status, attempts, next_attempt_us, created_at, sent_at, ack_code, "
    "last_error, payload_b64";

}  // namespace

std::string outboxListJson(fhir::ResourceStore& store, const std::string& status, const std::string& route,
                           int limit) {
  std::string sql = std::string("SELECT ") + kColumns + " FROM hl7_outbox WHERE 1 = 1";
  std::vector<SqlValue> params;
  if (!status.empty()) {
    sql += " AND status = ?";
    params.emplace_back(status);
  }
  if (!route.empty()) {
    sql += " AND route = ?";
    params.emplace_back(route);
  }
  sql += " ORDER BY created_us DESC, id DESC LIMIT " + std::to_string(std::clamp(limit, 1, 1000));
  const auto rows = store.query({sql, params});
  std::string out = "{\"entries\":[";
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i) out += ',';
    rowJson(out, rows[i]);
    out += '}';
  }
  out += "]}";
  return out;
}

std::optional<std::string> outboxEntryJson(fhir::ResourceStore& store, const std::string& id) {
  const auto rows = store.query({std::string("SELECT ") + kColumns + " FROM hl7_outbox WHERE id = ?", {id}});
  if (rows.empty()) return std::nullopt;
  std::string out;
  rowJson(out, rows[0]);
  const std::string stored = text(rows[0][12]);
  field(out, "payload", stored.rfind(kDeferred, 0) == 0 ? std::string() : b64decode(stored));
  out += '}';
  return out;
}

int outboxRetry(fhir::ResourceStore& store, const std::string& id) {
  const auto rows = store.query({"SELECT status, payload_b64 FROM hl7_outbox WHERE id = ?", {id}});
  if (rows.empty()) return 404;
  if (text(rows[0][0]) == "sent" || text(rows[0][1]).empty()) return 409;
  auto tx = store.begin();
  const int64_t n = tx->execute({"UPDATE hl7_outbox SET status = 'pending', attempts = 0, next_attempt_us = ?, "
                                 "last_error = '' WHERE id = ? AND status <> 'sent'",
                                 {nowMicros(), id}});
  tx->commit();
  return n == 1 ? 0 : 409;
}

}  // namespace hearth::server
