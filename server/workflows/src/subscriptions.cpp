#include "hearth/workflows/subscriptions.h"

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/WebSocket.h>
#include <Poco/URI.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <limits>
#include <random>

#include "workflow_support.h"
#include "hearth/fhir/error.h"
#include "hearth/fhir/json.h"
#include "hearth/fhir/store.h"

namespace hearth::workflows {

namespace {

using namespace detail;

using fhir::FhirError;
using fhir::IssueType;
using fhir::SqlQuery;
using fhir::SqlRow;
using fhir::SqlValue;

// A cached list of live subscriptions is trusted this long: Subscription writes invalidate it at
// once, and this bounds how long a load that raced an uncommitted Subscription write can miss it.
constexpr auto kCacheTtl = std::chrono::seconds(1);



int64_t number(const SqlValue& v) {
  const auto* n = std::get_if<int64_t>(&v);
  return n ? *n : 0;
}


}  // namespace

bool parseSubscription(std::string_view json, const std::string& id, SubscriptionHub::Subscription& out) {
  const rapidjson::Document doc = fhir::parseJson(json);
  const std::string_view status = str(doc, "status");
  if (status == "off" || status == "error") return false;
  SubscriptionHub::Subscription s;
  s.id = id;
  const std::string criteria(str(doc, "criteria"));
  const size_t q = criteria.find('?');
  s.type = criteria.substr(0, q);
  s.query = q == std::string::npos ? std::string() : criteria.substr(q + 1);
  if (s.type.empty() || s.type.find('/') != std::string::npos) {
    throw FhirError(422, IssueType::Value, "Subscription.criteria must be a search: Type?parameters",
                    "Subscription.criteria");
  }
  const auto channel = doc.FindMember("channel");
  if (channel == doc.MemberEnd() || !channel->value.IsObject()) {
    throw FhirError(422, IssueType::Required, "Subscription.channel is required", "Subscription.channel");
  }
  const rapidjson::Value& ch = channel->value;
  if (str(ch, "type") == "websocket") {  // pings over a client's WebSocket: nothing else to check
    s.channel = "websocket";
    out = std::move(s);
    return true;
  }
  if (str(ch, "type") != "rest-hook") {
    throw FhirError(422, IssueType::NotSupported, "Only the rest-hook and websocket channels are supported",
                    "Subscription.channel.type");
  }
  s.endpoint = std::string(str(ch, "endpoint"));
  try {
    const Poco::URI uri(s.endpoint);
    if ((uri.getScheme() != "http" && uri.getScheme() != "https") || uri.getHost().empty()) throw Poco::Exception("");
  } catch (const Poco::Exception&) {
    throw FhirError(422, IssueType::Value, "Subscription.channel.endpoint must be an absolute http(s) URL",
                    "Subscription.channel.endpoint");
  }
  s.payload = std::string(str(ch, "payload"));
  if (!s.payload.empty() && s.payload != "application/fhir+json" && s.payload != "application/json") {
    throw FhirError(422, IssueType::NotSupported, "Subscription.channel.payload must be application/fhir+json or absent",
                    "Subscription.channel.payload");
  }
  if (auto h = ch.FindMember("header"); h != ch.MemberEnd() && h->value.IsArray()) {
    for (const auto& line : h->value.GetArray()) {
      if (!line.IsString()) continue;
      const std::string l(line.GetString(), line.GetStringLength());
      const size_t colon = l.find(':');
      if (colon == std::string::npos || colon == 0 || l.find_first_of("\r\n") != std::string::npos) {
        throw FhirError(422, IssueType::Value, "Subscription.channel.header lines must be 'Name: value'",
                        "Subscription.channel.header");
      }
      s.headers.push_back(l);
    }
  }
  out = std::move(s);
  return true;
}

SubscriptionHub::SubscriptionHub(fhir::ResourceService& service, fhir::SearchEngine& search, SubscriptionOptions options)
    : service_(service), search_(search), options_(options) {}

SubscriptionHub::~SubscriptionHub() { stop(); }

void SubscriptionHub::install() {
  service_.addWriteObserver([this](fhir::StoreTransaction& tx, const fhir::StoredVersion& v) { onWrite(tx, v); });
}

std::shared_ptr<const std::vector<SubscriptionHub::Subscription>> SubscriptionHub::active(fhir::StoreTransaction& tx) {
  {
    std::lock_guard<std::mutex> lock(cacheMutex_);
    if (cache_ && std::chrono::steady_clock::now() - loaded_ < kCacheTtl) return cache_;
  }
  // Read inside the writing transaction, on its own connection: a second pooled connection per
  // write could exhaust the pool under load (every in-flight write holding one and waiting for
  // another). A Subscription written earlier in this same unit is seen here; should the unit roll
  // back, the cached list names it for at most kCacheTtl, and the dispatcher drops notifications
  // of subscriptions that do not exist.
  auto list = std::make_shared<std::vector<Subscription>>();
  const auto rows = tx.query(
      {"SELECT c.id, v.content FROM resource_current c JOIN resource_version v ON v.seq = c.seq "
       "WHERE c.type = 'Subscription' AND NOT c.deleted",
       {}});
  for (const SqlRow& row : rows) {
    Subscription s;
    try {
      if (parseSubscription(text(row.at(1)), text(row.at(0)), s)) list->push_back(std::move(s));
    } catch (const FhirError&) {
      // Stored before this server checked subscriptions, or by an older version: not served.
    }
  }
  std::lock_guard<std::mutex> lock(cacheMutex_);
  cache_ = list;
  loaded_ = std::chrono::steady_clock::now();
  return cache_;
}

void SubscriptionHub::onWrite(fhir::StoreTransaction& tx, const fhir::StoredVersion& v) {
  if (v.type == "Subscription") {
    {
      std::lock_guard<std::mutex> lock(cacheMutex_);
      cache_.reset();
    }
    Subscription s;
    bool live = false;
    if (!v.deleted) {
      live = parseSubscription(v.json, v.id, s);
      if (live) {
        try {
          service_.checkType(s.type);
          (void)search_.matchIds(s.type, s.query, &tx, 1);  // a criteria the search engine refuses
        } catch (const FhirError& e) {
          const std::string why = e.issues().empty() ? std::string() : e.issues().front().diagnostics;
          throw FhirError(422, IssueType::Value, "Subscription.criteria is not a search this server can run: " + why,
                          "Subscription.criteria");
        }
      }
    }
    if (!live) {
      tx.execute({"DELETE FROM event_outbox WHERE subscription_id = ? AND status = 'pending'", {v.id}});
    }
    return;
  }
  if (v.deleted) return;
  const auto subs = active(tx);
  bool enqueued = false;
  for (const Subscription& s : *subs) {
    if (s.type != v.type) continue;
    const std::string criteria = s.query.empty() ? "_id=" + v.id : s.query + "&_id=" + v.id;
    if (search_.matchIds(s.type, criteria, &tx, 1).empty()) continue;
    const int64_t now = nowUs();
    tx.execute({"INSERT INTO event_outbox (id, kind, subscription_id, resource, seq, payload, status, attempts, "
                "next_attempt_us, created_us) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
                {fhir::newResourceId(), s.channel, s.id, v.type + "/" + v.id + "/_history/" + std::to_string(v.version),
                 v.seq, s.payload.empty() || s.channel != "rest-hook" ? std::string() : v.json, now, now}});
    enqueued = true;
  }
  // Only a write that queued a notification wakes the dispatcher: waking it for every write cost
  // a thread switch and an outbox query per resource (7 % of the HL7 bridge's CPU).
  if (!enqueued) return;
  std::lock_guard<std::mutex> lock(runMutex_);
  wake_.notify_one();
}

void SubscriptionHub::start() {
  std::lock_guard<std::mutex> lock(runMutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  // A node that was killed while delivering leaves its claim (deliverOne's lease) on the row for
  // up to the lease's length; pending notifications are made due now instead, waiting retries
  // included (a restart retries at once). With several nodes, a claim of a live node reset here
  // can mean one duplicate POST at this node's start: delivery is at-least-once anyway.
  try {
    fhir::ResourceStore& store = service_.store();
    auto tx = store.begin();
    const int64_t now = nowUs();
    tx->execute({"UPDATE event_outbox SET next_attempt_us = ? WHERE kind = 'rest-hook' AND status = 'pending' "
                 "AND next_attempt_us > ?",
                 {now, now}});
    tx->commit();
  } catch (const std::exception&) {
    // Store unavailable at start: the rows become due when their lease or back-off ends.
  }
  thread_ = std::thread([this] { run(); });
}

void SubscriptionHub::stop() {
  {
    std::lock_guard<std::mutex> lock(runMutex_);
    stopping_ = true;
    wake_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void SubscriptionHub::run() {
  for (;;) {
    bool worked = false;
    try {
      worked = deliverOne();
      worked = deliverWebSocketPings() || worked;
    } catch (const std::exception&) {
      worked = false;  // store unavailable: try again after the poll interval
    }
    std::unique_lock<std::mutex> lock(runMutex_);
    if (stopping_) return;
    if (!worked) wake_.wait_for(lock, std::chrono::milliseconds(options_.pollIntervalMs));
  }
}

namespace {
// POSTs one notification; returns "" on 2xx, else why not (no PHI: status or network error).
std::string post(const SubscriptionHub::Subscription& s, const std::string& body, int timeoutMs) {
  try {
    const Poco::URI uri(s.endpoint);
    std::unique_ptr<Poco::Net::HTTPClientSession> session;
    if (uri.getScheme() == "https") {
      session = std::make_unique<Poco::Net::HTTPSClientSession>(uri.getHost(), uri.getPort());
    } else {
      session = std::make_unique<Poco::Net::HTTPClientSession>(uri.getHost(), uri.getPort());
    }
    session->setTimeout(Poco::Timespan(static_cast<long>(timeoutMs) * 1000));
    Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_POST, uri.getPathAndQuery().empty() ? "/" : uri.getPathAndQuery(),
                               Poco::Net::HTTPMessage::HTTP_1_1);
    for (const std::string& h : s.headers) {
      const size_t colon = h.find(':');
      std::string value = h.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(value.begin());
      req.set(h.substr(0, colon), value);
    }
    if (!body.empty()) req.setContentType("application/fhir+json");
    req.setContentLength(static_cast<std::streamsize>(body.size()));
    session->sendRequest(req) << body;
    Poco::Net::HTTPResponse resp;
    std::istream& in = session->receiveResponse(resp);
    in.ignore(std::numeric_limits<std::streamsize>::max());
    const int status = static_cast<int>(resp.getStatus());
    if (status >= 200 && status < 300) return {};
    return "HTTP " + std::to_string(status);
  } catch (const Poco::Exception& e) {
    return std::string("delivery failed: ") + e.className();
  } catch (const std::exception&) {
    return "delivery failed";
  }
}
}  // namespace

bool SubscriptionHub::deliverOne() {
  fhir::ResourceStore& store = service_.store();
  // The oldest due notification among the heads of the subscriptions' queues (write order per
  // subscription: a later notification waits while an earlier one is pending).
  const auto rows = store.query(
      {"SELECT e.id, e.subscription_id, e.payload, e.attempts, e.next_attempt_us FROM event_outbox e "
       "WHERE e.kind = 'rest-hook' AND e.status = 'pending' AND e.next_attempt_us <= ? AND NOT EXISTS (SELECT 1 "
       "FROM event_outbox o WHERE o.subscription_id = e.subscription_id AND o.status = 'pending' AND o.seq < e.seq "
       "AND o.kind = e.kind) "
       "ORDER BY e.next_attempt_us, e.seq LIMIT 1",
       {nowUs()}});
  if (rows.empty()) return false;
  const std::string id = text(rows[0][0]), subId = text(rows[0][1]), payload = text(rows[0][2]);
  const int64_t attempts = number(rows[0][3]) + 1;
  // Claim the notification before delivering it: several nodes on one database poll the same
  // outbox, and without a claim each would POST it. The claim is a lease (the row stays pending,
  // so later notifications of the subscription still wait behind it): its due time moves past the
  // delivery's timeout, by compare-and-set on the due time read above; 0 rows = another node has
  // it. A node that dies mid-delivery leaves the row due again when the lease ends (at-least-once).
  {
    const int64_t leaseUs = int64_t{options_.timeoutMs} * 1000 + 30LL * 1000000;
    auto tx = store.begin();
    const int64_t claimed =
        tx->execute({"UPDATE event_outbox SET next_attempt_us = ? WHERE id = ? AND status = 'pending' AND next_attempt_us = ?",
                     {nowUs() + leaseUs, id, number(rows[0][4])}});
    tx->commit();
    if (claimed != 1) return true;  // taken by another node: look for the next one
  }

  auto finish = [&](const std::string& status, const std::string& error, int64_t nextUs) {
    auto tx = store.begin();
    tx->execute({"UPDATE event_outbox SET status = ?, attempts = ?, last_error = ?, next_attempt_us = ?, "
                 "delivered_us = ? WHERE id = ?",
                 {status, attempts, error, nextUs, status == "delivered" ? nowUs() : int64_t{0}, id}});
    tx->commit();
  };
  Subscription s;
  const auto current = store.read("Subscription", subId);
  bool live = false;
  try {
    live = current && !current->deleted && parseSubscription(current->json, subId, s);
  } catch (const FhirError&) {
    live = false;
  }
  if (!live) {
    finish("dropped", "the subscription is gone or off", 0);
    return true;
  }
  if (s.channel != "rest-hook") {  // the channel changed since the write: nothing to POST to
    finish("dropped", "the subscription is no longer rest-hook", 0);
    return true;
  }
  const std::string error = post(s, payload, options_.timeoutMs);
  if (error.empty()) {
    finish("delivered", "", 0);
  } else if (attempts >= options_.maxAttempts) {
    finish("failed", error, 0);
  } else {
    const int64_t backoff = std::min<int64_t>(options_.maxBackoffUs, int64_t{1000000} << std::min<int64_t>(attempts - 1, 20));
    finish("pending", error, nowUs() + backoff);
  }
  return true;
}

}  // namespace hearth::workflows

// ---- websocket channel ----

namespace hearth::workflows {

struct SubscriptionHub::WsConnection {
  explicit WsConnection(Poco::Net::WebSocket s) : ws(std::move(s)) {}
  Poco::Net::WebSocket ws;
  std::mutex sendMutex;  // the request thread (bound, pong) and the dispatcher (ping) both send
  bool sendText(const std::string& text) {
    std::lock_guard<std::mutex> lock(sendMutex);
    try {
      ws.sendFrame(text.data(), static_cast<int>(text.size()), Poco::Net::WebSocket::FRAME_TEXT);
      return true;
    } catch (const Poco::Exception&) {
      return false;
    } catch (const std::exception&) {
      return false;
    }
  }
};

void SubscriptionHub::serveWebSocket(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp) {
  {
    std::lock_guard<std::mutex> lock(wsMutex_);
    if (wsClosing_) throw FhirError(503, IssueType::Transient, "The server is shutting down");
    if (wsConnections_.size() >= kMaxWebSockets) {
      throw FhirError(503, IssueType::Transient,
                      "Too many open subscription WebSockets (" + std::to_string(kMaxWebSockets) + "); retry later");
    }
  }
  std::shared_ptr<WsConnection> conn;
  try {
    conn = std::make_shared<WsConnection>(Poco::Net::WebSocket(req, resp));  // answers 101 on success
  } catch (const Poco::Net::WebSocketException&) {
    throw FhirError(400, IssueType::Invalid, "Not a WebSocket handshake (GET with Upgrade: websocket, version 13)");
  }
  {
    std::lock_guard<std::mutex> lock(wsMutex_);
    wsConnections_.insert(conn);
  }
  conn->ws.setReceiveTimeout(Poco::Timespan(1, 0));
  std::vector<char> buf(4096);
  std::set<std::string> mine;  // subscriptions this connection bound
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(wsMutex_);
      if (wsClosing_) break;
    }
    int flags = 0, n = 0;
    try {
      n = conn->ws.receiveFrame(buf.data(), static_cast<int>(buf.size()), flags);
    } catch (const Poco::TimeoutException&) {
      continue;
    } catch (const Poco::Exception&) {
      break;  // reset, oversized frame, closed under us
    }
    const int op = flags & Poco::Net::WebSocket::FRAME_OP_BITMASK;
    if ((n == 0 && flags == 0) || op == Poco::Net::WebSocket::FRAME_OP_CLOSE) break;
    if (op == Poco::Net::WebSocket::FRAME_OP_PING) {
      std::lock_guard<std::mutex> lock(conn->sendMutex);
      try {
        conn->ws.sendFrame(buf.data(), n, static_cast<int>(Poco::Net::WebSocket::FRAME_FLAG_FIN) | static_cast<int>(Poco::Net::WebSocket::FRAME_OP_PONG));
      } catch (const Poco::Exception&) {
        break;
      }
      continue;
    }
    if (op != Poco::Net::WebSocket::FRAME_OP_TEXT) continue;
    std::string msg(buf.data(), static_cast<size_t>(n));
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r' || msg.back() == ' ')) msg.pop_back();
    if (msg.rfind("bind ", 0) != 0) {
      if (!conn->sendText("error unknown command; send: bind <subscription id>")) break;
      continue;
    }
    const std::string id = msg.substr(5);
    std::string why;
    if (!fhir::ResourceService::isValidId(id)) {
      why = "not a valid id";
    } else {
      try {
        const auto current = service_.store().read("Subscription", id);
        Subscription sub;
        if (!current || current->deleted) why = "no such Subscription";
        else if (!parseSubscription(current->json, id, sub)) why = "the Subscription is off";
        else if (sub.channel != "websocket") why = "the Subscription's channel is not websocket";
      } catch (const FhirError&) {
        why = "the Subscription cannot be served";
      } catch (const std::exception&) {
        why = "the store is unavailable; retry";
      }
    }
    if (!why.empty()) {
      if (!conn->sendText("error " + (fhir::ResourceService::isValidId(id) ? id : std::string("-")) + " " + why)) break;
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(wsMutex_);
      wsBound_[id].insert(conn);
    }
    mine.insert(id);
    if (!conn->sendText("bound " + id)) break;
  }
  std::lock_guard<std::mutex> lock(wsMutex_);
  for (const std::string& id : mine) {
    auto it = wsBound_.find(id);
    if (it == wsBound_.end()) continue;
    it->second.erase(conn);
    if (it->second.empty()) wsBound_.erase(it);
  }
  wsConnections_.erase(conn);
  try {
    std::lock_guard<std::mutex> sendLock(conn->sendMutex);
    conn->ws.shutdown();  // close frame (1000)
  } catch (const Poco::Exception&) {
  } catch (const std::exception&) {
  }
}

void SubscriptionHub::closeWebSockets() {
  std::lock_guard<std::mutex> lock(wsMutex_);
  wsClosing_ = true;  // the request threads see it within their 1 s receive timeout
}

bool SubscriptionHub::deliverWebSocketPings() {
  // Every node reads the recent websocket rows and pings its own bound connections (a client is
  // connected to one node; several nodes may hold clients of one subscription), so no node marks
  // a row done for the others: each remembers the rows it has handled, and rows past the window
  // are deleted by whichever node sees them first. The window is far longer than a writing
  // transaction (a row becomes visible when its write commits).
  constexpr int64_t kWindowUs = 60LL * 1000000;
  fhir::ResourceStore& store = service_.store();
  const int64_t now = nowUs();
  const auto rows = store.query(
      {"SELECT id, subscription_id FROM event_outbox WHERE kind = 'websocket' AND status = 'pending' "
       "AND created_us >= ? ORDER BY seq LIMIT 1000",
       {now - kWindowUs}});
  bool sentAny = false;
  for (const SqlRow& r : rows) {
    const std::string id = text(r[0]), subId = text(r[1]);
    std::vector<std::shared_ptr<WsConnection>> targets;
    {
      std::lock_guard<std::mutex> lock(wsMutex_);
      if (!wsHandled_.emplace(id, now).second) continue;
      if (auto it = wsBound_.find(subId); it != wsBound_.end()) targets.assign(it->second.begin(), it->second.end());
    }
    for (const auto& c : targets) sentAny = c->sendText("ping " + subId) || sentAny;
  }
  {
    std::lock_guard<std::mutex> lock(wsMutex_);
    for (auto it = wsHandled_.begin(); it != wsHandled_.end();) {
      it = it->second < now - 2 * kWindowUs ? wsHandled_.erase(it) : std::next(it);
    }
  }
  if (now - wsLastCleanupUs_ > kWindowUs) {
    wsLastCleanupUs_ = now;
    auto tx = store.begin();
    tx->execute({"DELETE FROM event_outbox WHERE kind = 'websocket' AND created_us < ?", {now - 2 * kWindowUs}});
    tx->commit();
  }
  return sentAny;
}

}  // namespace hearth::workflows
