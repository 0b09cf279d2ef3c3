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
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>
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
  explicit Receiver(uint16_t port) {
    Poco::Net::ServerSocket socket;
    socket.bind(Poco::Net::SocketAddress("127.0.0.1", port), true);
    socket.listen(16);
    port_ = socket.address().port();
    auto* params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(4);
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(*this), socket, params);
    server_->start();
  }
  ~Receiver() { server_->stopAll(true); }
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
  uint16_t port_ = 0;
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

  void testInvalidSubscriptionsRefused() {
    HttpClient c(*server_);
    const uint16_t port = unusedPort();
    const std::string marker = uniqueId("bad");
    const std::vector<std::pair<std::string, std::string>> bad = {
        {subscription("Patient?no-such-param=" + marker, port, "/x"), "unknown search parameter"},
        {subscription("NoSuchType?name=" + marker, port, "/x"), "unknown type"},
        {subscription("Patient/" + marker, port, "/x"), "not a search"},
        {R"({"resourceType":"Subscription","status":"requested","reason":"r","criteria":"Patient?name=)" + marker +
             R"(","channel":{"type":"websocket"}})",
         "websocket channel"},
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
