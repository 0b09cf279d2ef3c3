// R4 Subscriptions (rest-hook) as an integrator would check them: a real hearth, a real HTTP
// endpoint in this process, notifications that arrive for matching writes only, in write order,
// with the configured headers, retried until the endpoint is up, and never for a write that rolled
// back; a crash right after the write does not lose the notification. SQLite and PostgreSQL.
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/WebSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/ThreadPool.h>
#include <cppunit/extensions/HelperMacros.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "hearth_process.h"
#include "http_client.h"
#include "http_test_support.h"

using namespace hearth::test;

namespace {

struct Received {
  std::string path, authorization, contentType, body;
};

// An HTTP endpoint that records every request (thread-safe) and answers 200.
class Receiver {
 public:
  explicit Receiver(uint16_t port, int delayMs = 0) : delayMs_(delayMs) {
    Poco::Net::ServerSocket socket;
    socket.bind(Poco::Net::SocketAddress("127.0.0.1", port), true);
    socket.listen(16);
    port_ = socket.address().port();
    auto* params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(4);
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(*this), pool_, socket, params);
    server_->start();
  }
  // Joins the connection threads too: a handler still answering late (delayMs) must not outlive
  // the Receiver (or the process, whose static strings Poco's error response would use).
  ~Receiver() {
    server_->stopAll(true);
    pool_.joinAll();
  }
  uint16_t port() const { return port_; }

  // Requests to `path` received so far.
  std::vector<Received> at(const std::string& path) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<Received> out;
    for (const auto& r : got_)
      if (r.path == path) out.push_back(r);
    return out;
  }
  // Waits until `path` got at least n requests (true) or the timeout passed (false).
  bool waitFor(const std::string& path, size_t n, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (at(path).size() >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return at(path).size() >= n;
  }

 private:
  class Handler : public Poco::Net::HTTPRequestHandler {
   public:
    explicit Handler(Receiver& r) : r_(r) {}
    void handleRequest(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp) override {
      Received got;
      got.path = req.getURI();
      got.authorization = req.get("Authorization", "");
      got.contentType = req.getContentType();
      Poco::StreamCopier::copyToString(req.stream(), got.body);
      {
        std::lock_guard<std::mutex> lock(r_.mutex_);
        r_.got_.push_back(std::move(got));
      }
      if (r_.delayMs_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(r_.delayMs_));
      resp.setStatus(Poco::Net::HTTPResponse::HTTP_OK);
      resp.setContentLength(0);
      resp.send();
    }

   private:
    Receiver& r_;
  };
  class Factory : public Poco::Net::HTTPRequestHandlerFactory {
   public:
    explicit Factory(Receiver& r) : r_(r) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
      return new Handler(r_);
    }

   private:
    Receiver& r_;
  };

  std::mutex mutex_;
  std::vector<Received> got_;
  int delayMs_ = 0;  // answers this late (a slow endpoint)
  uint16_t port_ = 0;
  Poco::ThreadPool pool_{1, 8};  // before server_: destroyed after it
  std::unique_ptr<Poco::Net::HTTPServer> server_;
};

// A loopback port nothing listens on (bound and released).
uint16_t unusedPort() {
  Poco::Net::ServerSocket s;
  s.bind(Poco::Net::SocketAddress("127.0.0.1", 0), true);
  return s.address().port();
}

std::string subscription(const std::string& criteria, uint16_t port, const std::string& path, bool fullResource = true) {
  std::string s = R"({"resourceType":"Subscription","status":"requested","reason":"test","criteria":")" + criteria +
                  R"(","channel":{"type":"rest-hook","endpoint":"http://127.0.0.1:)" + std::to_string(port) + path +
                  R"(","header":["Authorization: Bearer hook-secret"])";
  if (fullResource) s += R"(,"payload":"application/fhir+json")";
  return s + "}}";
}

// A client of the R4 websocket channel: opens <base>/websocket and reads text frames.
class WsClient {
 public:
  explicit WsClient(const HearthProcess& server)
      : session_(server.host(), server.port()),
        request_(Poco::Net::HTTPRequest::HTTP_GET, "/fhir/websocket", Poco::Net::HTTPMessage::HTTP_1_1),
        ws_(session_, request_, response_) {
    ws_.setReceiveTimeout(Poco::Timespan(20, 0));
  }
  void send(const std::string& text) {
    ws_.sendFrame(text.data(), static_cast<int>(text.size()), Poco::Net::WebSocket::FRAME_TEXT);
  }
  // The next frame: its opcode and payload.
  std::pair<int, std::string> next() {
    char buf[1024];
    int flags = 0;
    const int n = ws_.receiveFrame(buf, sizeof buf, flags);
    return {flags & Poco::Net::WebSocket::FRAME_OP_BITMASK, std::string(buf, static_cast<size_t>(std::max(n, 0)))};
  }
  std::string nextText() {
    auto [op, text] = next();
    CPPUNIT_ASSERT_EQUAL_MESSAGE("a text frame: " + text, int(Poco::Net::WebSocket::FRAME_OP_TEXT), op);
    return text;
  }
  Poco::Net::WebSocket& socket() { return ws_; }

 private:
  Poco::Net::HTTPClientSession session_;
  Poco::Net::HTTPRequest request_;
  Poco::Net::HTTPResponse response_;
  Poco::Net::WebSocket ws_;
};

std::string patient(const std::string& family, const std::string& gender = "female") {
  return R"({"resourceType":"Patient","gender":")" + gender + R"(","name":[{"family":")" + family + R"("}]})";
}

}  // namespace

class SubscriptionTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(SubscriptionTest);
  CPPUNIT_TEST(testMatchingWritesNotifyInOrder);
  CPPUNIT_TEST(testPingPayload);
  CPPUNIT_TEST(testInvalidSubscriptionsRefused);
  CPPUNIT_TEST(testRetriedUntilEndpointUp);
  CPPUNIT_TEST(testRolledBackWriteNotifiesNobody);
  CPPUNIT_TEST(testNotificationSurvivesKill9);
  CPPUNIT_TEST(testWebSocketChannel);
  CPPUNIT_TEST(testWebSocketAcrossNodes);
  CPPUNIT_TEST(testRestHookOnceAcrossNodes);
  CPPUNIT_TEST(testKilledMidDeliveryRedeliversAfterRestart);
  CPPUNIT_TEST_SUITE_END_ABSTRACT();

 public:
  void setUp() override {
    if (server_ && server_->options().db != backend().db) server_.reset();
    if (!server_ || !server_->running()) {
      ServerOptions opt;
      opt.db = backend().db;
      server_ = std::make_unique<HearthProcess>(opt);
      server_->start();
    }
  }

  void testMatchingWritesNotifyInOrder() {
    Receiver hook(0);
    HttpClient c(*server_);
    const std::string family = uniqueId("Sub");
    assertStatus(201, c.post("/fhir/Subscription", subscription("Patient?family=" + family + "&gender=female",
                                                                hook.port(), "/hook")));
    // Not matching (other family, or male): no notification.
    assertStatus(201, c.post("/fhir/Patient", patient(uniqueId("Other"))));
    const HttpResponse male = c.post("/fhir/Patient", patient(family, "male"));
    assertStatus(201, male);
    // Matching: created, then updated four times -> five notifications, in version order.
    const HttpResponse created = c.post("/fhir/Patient", patient(family));
    assertStatus(201, created);
    const std::string id = created.json()["id"].GetString();
    for (int i = 0; i < 4; ++i) {
      std::string body = patient(family);
      body.insert(body.size() - 1, R"(,"birthDate":"198)" + std::to_string(i) + R"(-01-01")");
      assertStatus(200, c.put("/fhir/Patient/" + id, withId(body, id)));
    }
    CPPUNIT_ASSERT(hook.waitFor("/hook", 5, std::chrono::seconds(10)));
    std::this_thread::sleep_for(std::chrono::milliseconds(800));  // nothing more must come
    const auto got = hook.at("/hook");
    CPPUNIT_ASSERT_EQUAL(size_t(5), got.size());
    for (size_t i = 0; i < got.size(); ++i) {
      rapidjson::Document doc;
      doc.Parse(got[i].body.c_str());
      CPPUNIT_ASSERT_MESSAGE(got[i].body, doc.IsObject());
      CPPUNIT_ASSERT_EQUAL(id, std::string(doc["id"].GetString()));
      CPPUNIT_ASSERT_EQUAL(std::to_string(i + 1), std::string(doc["meta"]["versionId"].GetString()));
      CPPUNIT_ASSERT_EQUAL(std::string("Bearer hook-secret"), got[i].authorization);
      CPPUNIT_ASSERT(got[i].contentType.find("application/fhir+json") == 0);
    }
  }

  void testPingPayload() {
    Receiver hook(0);
    HttpClient c(*server_);
    const std::string family = uniqueId("Ping");
    assertStatus(201, c.post("/fhir/Subscription", subscription("Patient?family=" + family, hook.port(), "/ping", false)));
    assertStatus(201, c.post("/fhir/Patient", patient(family)));
    CPPUNIT_ASSERT(hook.waitFor("/ping", 1, std::chrono::seconds(10)));
    CPPUNIT_ASSERT_EQUAL(std::string(), hook.at("/ping")[0].body);  // no PHI in a ping
  }

  // R4 websocket channel: bind, bound, a ping per matching committed write (none for others),
  // errors for what cannot be bound, pong for WebSocket pings; advertised in the CapabilityStatement.
  void testWebSocketChannel() {
    HttpClient c(*server_);
    const HttpResponse meta = c.get("/fhir/metadata");
    CPPUNIT_ASSERT_MESSAGE(meta.body, meta.body.find(R"("url":"http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket","valueUri":"ws://)") !=
                                          std::string::npos);
    CPPUNIT_ASSERT(meta.body.find("/fhir/websocket\"") != std::string::npos);
    assertOperationOutcome(c.get("/fhir/websocket"), 400, "plain GET of the websocket endpoint");
    const std::string family = uniqueId("Ws"), other = uniqueId("WsOther");
    const HttpResponse made = c.post("/fhir/Subscription",
                                     R"({"resourceType":"Subscription","status":"requested","reason":"ward app","criteria":"Patient?family=)" +
                                         family + R"(","channel":{"type":"websocket"}})");
    assertStatus(201, made);
    const std::string sub = made.json()["id"].GetString();
    const std::string restHook = [&] {
      const HttpResponse r = c.post("/fhir/Subscription", subscription("Patient?family=" + other, unusedPort(), "/x"));
      assertStatus(201, r);
      return std::string(r.json()["id"].GetString());
    }();

    WsClient ws(*server_);
    ws.send("bind no-such-subscription");
    CPPUNIT_ASSERT_EQUAL(std::string("error no-such-subscription no such Subscription"), ws.nextText());
    ws.send("bind " + restHook);
    CPPUNIT_ASSERT_EQUAL(std::string("error " + restHook + " the Subscription's channel is not websocket"), ws.nextText());
    ws.send("hello");
    CPPUNIT_ASSERT(ws.nextText().rfind("error ", 0) == 0);
    ws.send("bind " + sub);
    CPPUNIT_ASSERT_EQUAL(std::string("bound " + sub), ws.nextText());
    // A WebSocket ping is answered with a pong carrying the same payload.
    ws.socket().sendFrame("hb", 2, static_cast<int>(Poco::Net::WebSocket::FRAME_FLAG_FIN) | static_cast<int>(Poco::Net::WebSocket::FRAME_OP_PING));
    const auto [op, payload] = ws.next();
    CPPUNIT_ASSERT_EQUAL(int(Poco::Net::WebSocket::FRAME_OP_PONG), op);
    CPPUNIT_ASSERT_EQUAL(std::string("hb"), payload);

    // A write that does not match, then one that does: the first frame is the ping of the second.
    assertStatus(201, c.post("/fhir/Patient", patient(other)));
    assertStatus(201, c.post("/fhir/Patient", patient(family)));
    CPPUNIT_ASSERT_EQUAL(std::string("ping " + sub), ws.nextText());
    // A transaction that fails notifies nobody: the next ping is for the write after it.
    const HttpResponse failed = c.post(
        "/fhir", R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":)" + patient(family) +
                     R"(,"request":{"method":"POST","url":"Patient"}},{"resource":{"resourceType":"Patient","id":"x"},"request":{"method":"PUT","url":"Patient/y"}}]})");
    assertStatus(400, failed);
    assertStatus(201, c.post("/fhir/Patient", patient(family, "male")));
    CPPUNIT_ASSERT_EQUAL(std::string("ping " + sub), ws.nextText());
    // Only what was written: search says two Patients of that family (the rolled-back one is not there).
    const HttpResponse found = c.get("/fhir/Patient?family=" + family + "&_total=accurate&_count=0");
    CPPUNIT_ASSERT_EQUAL(int64_t(2), found.json()["total"].GetInt64());
    // A second client bound to the same subscription gets the pings too.
    WsClient second(*server_);
    second.send("bind " + sub);
    CPPUNIT_ASSERT_EQUAL(std::string("bound " + sub), second.nextText());
    assertStatus(201, c.post("/fhir/Patient", patient(family)));
    CPPUNIT_ASSERT_EQUAL(std::string("ping " + sub), ws.nextText());
    CPPUNIT_ASSERT_EQUAL(std::string("ping " + sub), second.nextText());
    // Shutdown closes open WebSockets (with a close frame) rather than waiting the grace period
    // (30 s) for them: a clean exit within stop()'s 10 s.
    const ExitStatus st = server_->stop();
    CPPUNIT_ASSERT_MESSAGE(st.describe(), st.exited && st.code == 0);
    CPPUNIT_ASSERT_EQUAL(int(Poco::Net::WebSocket::FRAME_OP_CLOSE), ws.next().first);
  }

  // Two nodes on one PostgreSQL database: a client bound on one node gets the pings of writes
  // made through the other (and the node without clients does not swallow them).
  void testWebSocketAcrossNodes() {
    const auto other = startSecondNode();
    if (!other) return;
    HttpClient c(*server_);
    const std::string family = uniqueId("WsNode");
    const HttpResponse made = c.post("/fhir/Subscription",
                                     R"({"resourceType":"Subscription","status":"requested","reason":"r","criteria":"Patient?family=)" +
                                         family + R"(","channel":{"type":"websocket"}})");
    assertStatus(201, made);
    const std::string sub = made.json()["id"].GetString();
    WsClient ws(*other);
    ws.send("bind " + sub);
    CPPUNIT_ASSERT_EQUAL(std::string("bound " + sub), ws.nextText());
    for (int i = 0; i < 3; ++i) {
      assertStatus(201, c.post("/fhir/Patient", patient(family)));
      CPPUNIT_ASSERT_EQUAL(std::string("ping " + sub), ws.nextText());
    }
  }

  // Two nodes on one PostgreSQL database poll the same outbox: each notification is POSTed once,
  // even to an endpoint slow enough that the other node polls while the first one delivers.
  void testRestHookOnceAcrossNodes() {
    const auto other = startSecondNode();
    if (!other) return;
    Receiver hook(0, 700);
    HttpClient c(*server_);
    const std::string family = uniqueId("Once");
    assertStatus(201, c.post("/fhir/Subscription", subscription("Patient?family=" + family, hook.port(), "/once")));
    for (int i = 0; i < 3; ++i) assertStatus(201, c.post("/fhir/Patient", patient(family)));
    CPPUNIT_ASSERT(hook.waitFor("/once", 3, std::chrono::seconds(20)));
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // a duplicate would arrive by now
    CPPUNIT_ASSERT_EQUAL(size_t(3), hook.at("/once").size());
  }

  // A node killed while it delivers (its claim on the notification held) delivers again as soon as
  // it is back, not when the claim's lease would have ended (at-least-once, no long gap).
  void testKilledMidDeliveryRedeliversAfterRestart() {
    Receiver hook(0, 3000);  // answers after 3 s: the kill lands mid-delivery
    {
      HttpClient c(*server_);
      const std::string family = uniqueId("Mid");
      assertStatus(201, c.post("/fhir/Subscription", subscription("Patient?family=" + family, hook.port(), "/mid")));
      assertStatus(201, c.post("/fhir/Patient", patient(family)));
    }
    CPPUNIT_ASSERT(hook.waitFor("/mid", 1, std::chrono::seconds(10)));
    server_->kill9();
    server_->restart();
    CPPUNIT_ASSERT_MESSAGE("redelivered after the restart", hook.waitFor("/mid", 2, std::chrono::seconds(12)));
  }

  // A second node on the same database, started; nullptr on SQLite (one process per store).
  std::unique_ptr<HearthProcess> startSecondNode() {
    if (backend().isolated()) return nullptr;
    ServerOptions opt;
    opt.db = backend().db;
    auto other = std::make_unique<HearthProcess>(opt);
    other->start();
    return other;
  }

  void testInvalidSubscriptionsRefused() {
    HttpClient c(*server_);
    const uint16_t port = unusedPort();
    const std::string marker = uniqueId("bad");
    const std::vector<std::pair<std::string, std::string>> bad = {
        {subscription("Patient?no-such-param=" + marker, port, "/x"), "unknown search parameter"},
        {subscription("NoSuchType?name=" + marker, port, "/x"), "unknown type"},
        {subscription("Patient/" + marker, port, "/x"), "not a search"},
        {R"({"resourceType":"Subscription","status":"requested","reason":"r","criteria":"Patient?name=)" + marker +
             R"(","channel":{"type":"email","endpoint":"mailto:ward@example.org"}})",
         "email channel"},
        {R"({"resourceType":"Subscription","status":"requested","reason":"r","criteria":"Patient?name=)" + marker +
             R"(","channel":{"type":"rest-hook","endpoint":"ftp://127.0.0.1/x"}})",
         "ftp endpoint"},
    };
    for (const auto& [body, what] : bad) assertOperationOutcome(c.post("/fhir/Subscription", body), 422, what);
    // A valid one that is off is stored but not served.
    std::string off = subscription("Patient?name=" + marker, port, "/x");
    off.replace(off.find("requested"), 9, "off");
    assertStatus(201, c.post("/fhir/Subscription", off));
    const HttpResponse all = c.get("/fhir/Subscription?criteria=" + std::string("Patient%3Fname%3D") + marker + "&_total=accurate");
    assertStatus(200, all);
    CPPUNIT_ASSERT_EQUAL(int64_t(1), all.json()["total"].GetInt64());  // only the one that is off
  }

  void testRetriedUntilEndpointUp() {
    const uint16_t port = unusedPort();
    HttpClient c(*server_);
    const std::string family = uniqueId("Retry");
    assertStatus(201, c.post("/fhir/Subscription", subscription("Patient?family=" + family, port, "/late")));
    assertStatus(201, c.post("/fhir/Patient", patient(family)));
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // a few failed attempts
    Receiver hook(port);
    CPPUNIT_ASSERT(hook.waitFor("/late", 1, std::chrono::seconds(15)));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    CPPUNIT_ASSERT_EQUAL(size_t(1), hook.at("/late").size());  // delivered once, not once per attempt
  }

  void testRolledBackWriteNotifiesNobody() {
    Receiver hook(0);
    HttpClient c(*server_);
    const std::string family = uniqueId("Rollback");
    assertStatus(201, c.post("/fhir/Subscription", subscription("Patient?family=" + family, hook.port(), "/rb")));
    // A transaction whose second entry is invalid: nothing is stored, nobody is notified.
    const std::string bundle = R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":)" +
                               patient(family) +
                               R"(,"request":{"method":"POST","url":"Patient"}},{"resource":{"resourceType":"Patient","gender":"sometimes"},"request":{"method":"POST","url":"Patient"}}]})";
    const HttpResponse r = c.post("/fhir", bundle);
    CPPUNIT_ASSERT_MESSAGE(r.describe(), r.status >= 400 && r.status < 500);
    // Then a committed one: its notification arrives, and it is the only one.
    assertStatus(201, c.post("/fhir/Patient", patient(family)));
    CPPUNIT_ASSERT(hook.waitFor("/rb", 1, std::chrono::seconds(10)));
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    CPPUNIT_ASSERT_EQUAL(size_t(1), hook.at("/rb").size());
  }

  // The notification is enqueued in the write's transaction: a kill -9 right after the 201 (the
  // endpoint being down, so nothing was sent yet) loses nothing; it is delivered after restart.
  void testNotificationSurvivesKill9() {
    const uint16_t port = unusedPort();
    std::string id;
    {
      HttpClient c(*server_);
      const std::string family = uniqueId("Crash");
      assertStatus(201, c.post("/fhir/Subscription", subscription("Patient?family=" + family, port, "/crash")));
      const HttpResponse created = c.post("/fhir/Patient", patient(family));
      assertStatus(201, created);
      id = created.json()["id"].GetString();
    }
    server_->kill9();
    Receiver hook(port);
    server_->restart();
    CPPUNIT_ASSERT(hook.waitFor("/crash", 1, std::chrono::seconds(15)));
    rapidjson::Document doc;
    doc.Parse(hook.at("/crash")[0].body.c_str());
    CPPUNIT_ASSERT(doc.IsObject());
    CPPUNIT_ASSERT_EQUAL(id, std::string(doc["id"].GetString()));
  }

 protected:
  virtual Backend backend() const = 0;
  static std::unique_ptr<HearthProcess> server_;
};
std::unique_ptr<HearthProcess> SubscriptionTest::server_;

class SubscriptionSqliteTest : public SubscriptionTest {
  CPPUNIT_TEST_SUB_SUITE(SubscriptionSqliteTest, SubscriptionTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return sqliteBackend(); }
};
CPPUNIT_TEST_SUITE_REGISTRATION(SubscriptionSqliteTest);

class SubscriptionPostgresTest : public SubscriptionTest {
  CPPUNIT_TEST_SUB_SUITE(SubscriptionPostgresTest, SubscriptionTest);
  CPPUNIT_TEST_SUITE_END();

 protected:
  Backend backend() const override { return *postgresBackend(); }
};

namespace {
struct RegisterPostgresSuite {
  std::optional<CppUnit::AutoRegisterSuite<SubscriptionPostgresTest>> reg;
  RegisterPostgresSuite() {
    if (postgresBackend())
      reg.emplace();
    else
      std::cerr << "[note] HEARTH_TEST_PG_URL not set: PostgreSQL subscription suite not run\n";
  }
} registerPostgresSuite;
}  // namespace
