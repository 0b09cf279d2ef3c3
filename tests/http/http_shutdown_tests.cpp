// http_shutdown_tests: SIGTERM is a graceful shutdown.
//
// Requests whose bodies are still arriving when SIGTERM lands must complete with a proper response
// (and their writes must be stored); the listening socket closes so new connections are refused; the
// process exits 0 within a few seconds of the last in-flight request, also when idle keep-alive
// connections are open.
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <cppunit/extensions/HelperMacros.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "http_test_support.h"

using namespace hearth::test;
using Clock = std::chrono::steady_clock;

namespace {

// A POST whose body is written slowly over a raw socket.
class SlowPost {
 public:
  SlowPost(const HearthProcess& server, std::string body) : body_(std::move(body)) {
    socket_.connect(Poco::Net::SocketAddress(server.host(), server.port()), Poco::Timespan(5, 0));
    socket_.setReceiveTimeout(Poco::Timespan(20, 0));
    std::string head =
        "POST /fhir/Patient HTTP/1.1\r\nHost: " + server.host() + ":" + std::to_string(server.port()) +
        "\r\nContent-Type: application/fhir+json\r\nContent-Length: " + std::to_string(body_.size()) +
        "\r\nConnection: close\r\n\r\n";
    sendAll(head);
  }
  // Sends the next `n` bytes of the body.
  void sendSome(std::size_t n) {
    n = std::min(n, body_.size() - sent_);
    sendAll(body_.substr(sent_, n));
    sent_ += n;
  }
  bool done() const { return sent_ == body_.size(); }
  std::size_t size() const { return body_.size(); }
  // Reads the whole response (the server closes the connection after it).
  std::string readResponse() {
    std::string out;
    char buf[8192];
    while (true) {
      int n = socket_.receiveBytes(buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }

 private:
  void sendAll(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      int n = socket_.sendBytes(data.data() + off, static_cast<int>(data.size() - off));
      if (n <= 0) throw std::runtime_error("send failed");
      off += static_cast<std::size_t>(n);
    }
  }
  Poco::Net::StreamSocket socket_;
  std::string body_;
  std::size_t sent_ = 0;
};

bool canConnect(const HearthProcess& server) {
  try {
    Poco::Net::StreamSocket s;
    s.connect(Poco::Net::SocketAddress(server.host(), server.port()), Poco::Timespan(0, 300000));
    // Accepted by the kernel backlog is not enough: a live server answers a request.
    std::string req = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    s.sendBytes(req.data(), static_cast<int>(req.size()));
    s.setReceiveTimeout(Poco::Timespan(0, 500000));
    char buf[64];
    return s.receiveBytes(buf, sizeof buf) > 0;
  } catch (const Poco::Exception&) {
    return false;
  }
}

std::string paddedPatient(std::size_t size, const std::string& marker) {
  std::string head = withMarker(fixture("Patient", {{"Organization", "x"}}), marker);
  head.pop_back();  // the closing brace
  return head + std::string(size - head.size() - 1, ' ') + "}";
}

}  // namespace

class HttpShutdownTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(HttpShutdownTest);
  CPPUNIT_TEST(testSigtermFinishesSlowRequests);
  CPPUNIT_TEST(testSigtermWithIdleKeepAliveConnections);
  CPPUNIT_TEST(testSigtermWhenIdle);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testSigtermFinishesSlowRequests() {
    HearthProcess server;
    server.start();
    constexpr int kSlow = 3;
    constexpr std::size_t kSize = 256 * 1024;
    std::vector<std::unique_ptr<SlowPost>> posts;
    std::vector<std::string> markers;
    for (int i = 0; i < kSlow; ++i) {
      markers.push_back("slow-" + randomToken(10));
      posts.push_back(std::make_unique<SlowPost>(server, paddedPatient(kSize, markers.back())));
      posts.back()->sendSome(16 * 1024);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the server is now reading the bodies
    server.signal(SIGTERM);
    const auto term = Clock::now();
    // Keep feeding the bodies for ~1.5 s; meanwhile the listener must close.
    bool refused = false;
    const std::size_t step = 8 * 1024;
    while (!posts[0]->done()) {
      for (auto& p : posts) p->sendSome(step);
      if (!refused && !canConnect(server)) refused = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1500 * step / kSize));
    }
    std::vector<std::string> locations;
    for (int i = 0; i < kSlow; ++i) {
      std::string resp = posts[i]->readResponse();
      HT_ASSERT("in-flight request " + std::to_string(i) + " must complete with 201 after SIGTERM, got: " +
                    resp.substr(0, 600) + "\nserver log:\n" + server.logTail(1500),
                resp.rfind("HTTP/1.1 201", 0) == 0);
      auto pos = resp.find("\nLocation: ");
      if (pos == std::string::npos) pos = resp.find("\nlocation: ");
      HT_ASSERT("201 carries Location", pos != std::string::npos);
      std::string loc = resp.substr(pos + 11, resp.find('\r', pos + 11) - pos - 11);
      locations.push_back(loc.substr(0, loc.find("/_history/")));
    }
    HT_ASSERT("new connections must not be served after SIGTERM while in-flight requests finish", refused);
    auto st = server.waitExit(std::chrono::milliseconds(5000));
    HT_ASSERT("the server exits within 5 s of finishing the in-flight requests\n" + server.logTail(1500),
              st.has_value());
    HT_EQ("exit status after SIGTERM: " + st->describe(), 0, st->exited ? st->code : 128 + st->signal);
    double seconds = std::chrono::duration<double>(Clock::now() - term).count();
    HT_ASSERT("graceful shutdown took " + std::to_string(seconds) + " s", seconds < 10);
    // The writes that completed during shutdown are stored.
    server.start();
    HttpClient c(server);
    for (int i = 0; i < kSlow; ++i) {
      HttpResponse r = c.get(pathAndQuery(locations[i]));
      assertStatus(200, r, "the resource created during shutdown");
      HT_EQ("content of the resource created during shutdown", markers[i], markerOf(r.json()));
    }
    HT_EQ("clean exit", 0, server.stop().code);
  }

  void testSigtermWithIdleKeepAliveConnections() {
    HearthProcess server;
    server.start();
    std::vector<std::unique_ptr<HttpClient>> idle;
    for (int i = 0; i < 4; ++i) {
      idle.push_back(std::make_unique<HttpClient>(server));
      assertStatus(200, idle.back()->get("/fhir/metadata"), "warm-up");
    }
    const auto term = Clock::now();
    server.signal(SIGTERM);
    auto st = server.waitExit(std::chrono::milliseconds(20000));
    double seconds = std::chrono::duration<double>(Clock::now() - term).count();
    HT_ASSERT("no exit within 20 s of SIGTERM\n" + server.logTail(1500), st.has_value());
    HT_EQ("exit status: " + st->describe(), 0, st->exited ? st->code : 128 + st->signal);
    HT_ASSERT("idle keep-alive connections must not hold up shutdown: it took " + std::to_string(seconds) +
                  " s\n" + server.logTail(1500),
              seconds < 5);
  }

  void testSigtermWhenIdle() {
    HearthProcess server;
    server.start();
    HttpClient c(server);
    assertStatus(201, c.post("/fhir/Patient", fixture("Patient", {{"Organization", "x"}})), "create");
    c.close();
    ExitStatus st = server.stop(std::chrono::milliseconds(5000));
    HT_EQ("exit status: " + st.describe(), 0, st.exited ? st.code : 128 + st.signal);
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(HttpShutdownTest);
