#pragma once
// R4 Subscriptions, rest-hook channel, delivered durably (issue 6 item 7).
//
// Contract:
//  - A Subscription resource (status requested or active; off and error are ignored) with
//    criteria "Type?query" (any search this server supports, e.g.
//    "DiagnosticReport?status=final&code=http://loinc.org|58410-2") and channel.type rest-hook is
//    live as soon as its write commits. Its write is refused (422, nothing stored) when the
//    criteria is not a valid search, the channel type is not rest-hook, or the endpoint is not an
//    absolute http(s) URL. Hearth does not rewrite the resource's status (it would take a second
//    version); "requested" is served as "active".
//  - Every version of a resource of the criteria's type written afterwards (create or update, not
//    delete) that matches the criteria at that moment enqueues one notification, in the SAME
//    transaction as the write (table event_outbox): a write that rolls back notifies nobody, and
//    a committed one is never lost, a crash included.
//  - A dispatcher thread POSTs each due notification to channel.endpoint: the resource as
//    application/fhir+json when channel.payload is set (the R4 "full resource" form), an empty
//    body otherwise (the "ping" form), with channel.header lines added. 2xx: delivered. Anything
//    else or no answer: retried with exponential back-off (1 s doubling up to 5 min), at most
//    maxAttempts times, then failed. Notifications of one subscription go out in write order;
//    a failing endpoint holds back only its own subscription's queue.
//  - The list of live subscriptions is cached for at most a second and dropped at once when a
//    Subscription is written; it is read inside a writing transaction (never on a second
//    connection, which could exhaust the pool under load).
//  - Deleting the Subscription (or setting it off) drops its undelivered notifications.
//  - Channel websocket (R4 subscription.html#2.46.7.2): no endpoint. A client opens a WebSocket
//    to <base>/websocket (ws:// or wss://; the handshake GET needs read access like any read),
//    sends the text "bind <subscription id>" (a live websocket Subscription, else the answer is
//    "error <id> <reason>") and gets "bound <id>"; for every notification of that subscription
//    each bound connection gets "ping <id>" (the client then runs the criteria search). Pings are
//    enqueued like rest-hook notifications (so only for committed writes, in write order); every
//    node reads the rows of the last minute and pings the connections bound to it at that moment
//    (several nodes on one PostgreSQL database each serve their own clients), and rows older than
//    two minutes are deleted: a subscription nobody is bound to gets no backlog (R4 websockets
//    carry none). WebSocket ping frames are answered with pong; at most
//    kMaxWebSockets connections are open at once (more: 503); closeWebSockets() closes them all
//    (shutdown, before the HTTP server waits for in-flight requests).
// Thread-safe; install() before the service handles requests, start() once listening.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace Poco::Net {
class HTTPServerRequest;
class HTTPServerResponse;
}  // namespace Poco::Net

#include "hearth/fhir/search.h"
#include "hearth/fhir/service.h"

namespace hearth::workflows {

struct SubscriptionOptions {
  int maxAttempts = 10;
  int timeoutMs = 10000;          // connect + response, per delivery
  int pollIntervalMs = 200;       // how often the dispatcher looks for due notifications
  int64_t maxBackoffUs = 300LL * 1000 * 1000;
};

class SubscriptionHub {
 public:
  SubscriptionHub(fhir::ResourceService& service, fhir::SearchEngine& search, SubscriptionOptions options = {});
  ~SubscriptionHub();
  SubscriptionHub(const SubscriptionHub&) = delete;
  SubscriptionHub& operator=(const SubscriptionHub&) = delete;

  void install();  // registers the write observer
  void start();    // starts the dispatcher thread
  void stop();     // stops it (waits for a delivery in flight, at most timeoutMs)

  static constexpr size_t kMaxWebSockets = 16;
  // Serves one WebSocket connection on the request thread until it closes (see the contract).
  // Throws FhirError 400 for a request that is not a WebSocket handshake, 503 when kMaxWebSockets
  // are open or the hub is closing; nothing has been sent to the client then.
  void serveWebSocket(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp);
  void closeWebSockets();

  struct Subscription {
    std::string id;
    std::string type;      // criteria resource type
    std::string query;     // criteria query string (may be empty: every resource of the type)
    std::string channel = "rest-hook";  // rest-hook | websocket
    std::string endpoint;
    std::string payload;   // channel.payload; empty = ping
    std::vector<std::string> headers;
  };

 private:
  void onWrite(fhir::StoreTransaction& tx, const fhir::StoredVersion& v);
  std::shared_ptr<const std::vector<Subscription>> active(fhir::StoreTransaction& tx);
  void run();
  bool deliverOne();
  bool deliverWebSocketPings();  // sends the due websocket pings; true if there were any

  struct WsConnection;
  std::mutex wsMutex_;
  bool wsClosing_ = false;
  std::set<std::shared_ptr<WsConnection>> wsConnections_;
  std::map<std::string, std::set<std::shared_ptr<WsConnection>>> wsBound_;  // subscription id -> connections
  std::map<std::string, int64_t> wsHandled_;  // websocket outbox rows this node has handled -> when
  int64_t wsLastCleanupUs_ = 0;               // dispatcher thread only

  fhir::ResourceService& service_;
  fhir::SearchEngine& search_;
  SubscriptionOptions options_;

  std::mutex cacheMutex_;
  std::shared_ptr<const std::vector<Subscription>> cache_;  // null: reload on next use
  std::chrono::steady_clock::time_point loaded_;

  std::mutex runMutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

// Parses a Subscription resource; throws FhirError 422 (with the element) when it cannot be
// served. Returns false (and leaves `out` alone) when its status is off or error.
bool parseSubscription(std::string_view json, const std::string& id, SubscriptionHub::Subscription& out);

}  // namespace hearth::workflows
