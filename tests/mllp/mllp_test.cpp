// MLLP framing and transport. The listener is exercised over real loopback sockets with a raw
// client, so frame boundaries can be placed anywhere in the TCP stream.
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <cppunit/extensions/HelperMacros.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mllp.h"

using hearth::server::MllpClient;
using hearth::server::MllpClientOptions;
using hearth::server::MllpDecoder;
using hearth::server::mllpFrame;
using hearth::server::MllpListener;
using hearth::server::MllpListenerOptions;

namespace {

std::vector<std::string> frames(MllpDecoder& d, const std::string& bytes, int* oversized = nullptr,
                                int* garbage = nullptr) {
  std::vector<MllpDecoder::Output> out;
  d.feed(bytes.data(), bytes.size(), out);
  std::vector<std::string> got;
  for (auto& o : out) {
    if (o.event == MllpDecoder::Event::Frame) got.push_back(o.payload);
    if (o.event == MllpDecoder::Event::Oversized && oversized) ++*oversized;
    if (o.event == MllpDecoder::Event::Garbage && garbage) ++*garbage;
  }
  return got;
}

// Reads one framed response from a raw socket (up to 5 s).
std::string readFrame(Poco::Net::StreamSocket& s) {
  s.setReceiveTimeout(Poco::Timespan(5, 0));
  MllpDecoder d(1 << 20);
  // One byte per read: never consume the start of a following frame (two answers sent back to
  // back may arrive in one segment), which a fresh decoder on the next call would not see.
  char buf[1];
  for (;;) {
    int n = s.receiveBytes(buf, sizeof buf);
    if (n <= 0) return "<closed>";
    std::vector<MllpDecoder::Output> out;
    d.feed(buf, static_cast<size_t>(n), out);
    for (auto& o : out)
      if (o.event == MllpDecoder::Event::Frame) return o.payload;
  }
}

}  // namespace

class MllpTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(MllpTest);
  CPPUNIT_TEST(testDecoderWholeAndSplit);
  CPPUNIT_TEST(testDecoderTwoFramesOneRead);
  CPPUNIT_TEST(testDecoderGarbageAndRestart);
  CPPUNIT_TEST(testDecoderOversized);
  CPPUNIT_TEST(testListenerFragmentedAndCoalesced);
  CPPUNIT_TEST(testListenerIncompleteFrameNotAnswered);
  CPPUNIT_TEST(testListenerOversizedAnsweredAndConnectionUsable);
  CPPUNIT_TEST(testClientExchangeAndReconnect);
  CPPUNIT_TEST(testManyConnections);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testDecoderWholeAndSplit() {
    const std::string msg = "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\rPID|1||123\r";
    MllpDecoder d(1024);
    auto got = frames(d, mllpFrame(msg));
    CPPUNIT_ASSERT_EQUAL(size_t(1), got.size());
    CPPUNIT_ASSERT_EQUAL(msg, got[0]);
    // Every split point of the frame yields the same single message.
    const std::string framed = mllpFrame(msg);
    for (size_t cut = 1; cut < framed.size(); ++cut) {
      MllpDecoder e(1024);
      auto a = frames(e, framed.substr(0, cut));
      auto b = frames(e, framed.substr(cut));
      CPPUNIT_ASSERT_MESSAGE("split at " + std::to_string(cut), a.empty());
      CPPUNIT_ASSERT_EQUAL(size_t(1), b.size());
      CPPUNIT_ASSERT_EQUAL(msg, b[0]);
      CPPUNIT_ASSERT(!e.inFrame());
    }
  }

  void testDecoderTwoFramesOneRead() {
    MllpDecoder d(1024);
    auto got = frames(d, mllpFrame("ONE") + mllpFrame("TWO") + "\x0b" "THR");
    CPPUNIT_ASSERT_EQUAL(size_t(2), got.size());
    CPPUNIT_ASSERT_EQUAL(std::string("ONE"), got[0]);
    CPPUNIT_ASSERT_EQUAL(std::string("TWO"), got[1]);
    CPPUNIT_ASSERT(d.inFrame());  // the third is still open
    got = frames(d, "EE\x1c\x0d");
    CPPUNIT_ASSERT_EQUAL(std::string("THREE"), got.at(0));
  }

  void testDecoderGarbageAndRestart() {
    MllpDecoder d(1024);
    int garbage = 0;
    // Noise before a frame is dropped and reported; a lone 0x1C is message content; a second
    // start block restarts the frame.
    auto got = frames(d, "noise\x0b" "A\x1c" "B\x1c\x0d", nullptr, &garbage);
    CPPUNIT_ASSERT_EQUAL(1, garbage);
    CPPUNIT_ASSERT_EQUAL(size_t(1), got.size());
    CPPUNIT_ASSERT_EQUAL(std::string("A\x1c" "B"), got[0]);
    got = frames(d, "\x0b" "partial\x0b" "fresh\x1c\x0d");
    CPPUNIT_ASSERT_EQUAL(std::string("fresh"), got.at(0));
    // Line ends between frames are not garbage.
    garbage = 0;
    frames(d, "\r\n", nullptr, &garbage);
    CPPUNIT_ASSERT_EQUAL(0, garbage);
  }

  void testDecoderOversized() {
    MllpDecoder d(10);
    int over = 0;
    auto got = frames(d, "\x0b" + std::string(50, 'x') + "\x1c\x0d" + mllpFrame("ok"), &over);
    CPPUNIT_ASSERT_EQUAL(1, over);
    CPPUNIT_ASSERT_EQUAL(size_t(1), got.size());
    CPPUNIT_ASSERT_EQUAL(std::string("ok"), got[0]);
  }

  static std::unique_ptr<MllpListener> echoListener(MllpListenerOptions opt = {}) {
    Poco::Net::ServerSocket ss;
    ss.bind(Poco::Net::SocketAddress("127.0.0.1", 0), true);
    ss.listen(64);
    auto l = std::make_unique<MllpListener>(
        ss, opt, [](std::string_view m, const std::string&) { return std::vector<std::string>{"ACK:" + std::string(m)}; },
        [](const std::string&) { return std::optional<std::string>("TOO-BIG"); });
    l->start();
    return l;
  }

  void testListenerFragmentedAndCoalesced() {
    auto l = echoListener();
    Poco::Net::StreamSocket s(Poco::Net::SocketAddress("127.0.0.1", l->port()));
    s.setNoDelay(true);
    const std::string f = mllpFrame("FIRST");
    for (char c : f) {  // one byte per send
      s.sendBytes(&c, 1);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    CPPUNIT_ASSERT_EQUAL(std::string("ACK:FIRST"), readFrame(s));
    const std::string two = mllpFrame("A") + mllpFrame("B");
    s.sendBytes(two.data(), static_cast<int>(two.size()));
    CPPUNIT_ASSERT_EQUAL(std::string("ACK:A"), readFrame(s));
    CPPUNIT_ASSERT_EQUAL(std::string("ACK:B"), readFrame(s));
  }

  void testListenerIncompleteFrameNotAnswered() {
    std::atomic<int> handled{0};
    Poco::Net::ServerSocket ss;
    ss.bind(Poco::Net::SocketAddress("127.0.0.1", 0), true);
    ss.listen(8);
    MllpListener l(ss, {}, [&](std::string_view, const std::string&) {
      ++handled;
      return std::vector<std::string>{"ACK"};
    });
    l.start();
    {
      Poco::Net::StreamSocket s(Poco::Net::SocketAddress("127.0.0.1", l.port()));
      const std::string partial = "\x0bMSH|^~\\&|no end block";
      s.sendBytes(partial.data(), static_cast<int>(partial.size()));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      s.close();  // the frame never ends: it must not be handled
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    CPPUNIT_ASSERT_EQUAL(0, handled.load());
  }

  void testListenerOversizedAnsweredAndConnectionUsable() {
    MllpListenerOptions opt;
    opt.maxFrameBytes = 1000;
    auto l = echoListener(opt);
    Poco::Net::StreamSocket s(Poco::Net::SocketAddress("127.0.0.1", l->port()));
    const std::string big = mllpFrame(std::string(100000, 'x'));
    s.sendBytes(big.data(), static_cast<int>(big.size()));
    CPPUNIT_ASSERT_EQUAL(std::string("TOO-BIG"), readFrame(s));
    const std::string ok = mllpFrame("small");
    s.sendBytes(ok.data(), static_cast<int>(ok.size()));
    CPPUNIT_ASSERT_EQUAL(std::string("ACK:small"), readFrame(s));
  }

  void testClientExchangeAndReconnect() {
    auto l = echoListener();
    MllpClientOptions o;
    o.host = "127.0.0.1";
    o.port = l->port();
    o.ackTimeoutMs = 3000;
    MllpClient c(o);
    CPPUNIT_ASSERT_EQUAL(std::string("ACK:one"), c.exchange("one"));
    CPPUNIT_ASSERT_EQUAL(std::string("ACK:two"), c.exchange("two"));
    const uint16_t port = l->port();
    l->stop(2);
    l.reset();
    bool failed = false;
    try {
      c.exchange("lost");
    } catch (const std::runtime_error&) {
      failed = true;
    }
    CPPUNIT_ASSERT_MESSAGE("an exchange with a stopped listener fails", failed);
    // A new listener on the same port: the client reconnects by itself.
    Poco::Net::ServerSocket ss;
    ss.bind(Poco::Net::SocketAddress("127.0.0.1", port), true);
    ss.listen(8);
    MllpListener again(ss, {}, [](std::string_view m, const std::string&) { return std::vector<std::string>{"ACK2:" + std::string(m)}; });
    again.start();
    CPPUNIT_ASSERT_EQUAL(std::string("ACK2:three"), c.exchange("three"));
  }

  void testManyConnections() {
    auto l = echoListener();
    std::atomic<int> ok{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 16; ++t) {
      ts.emplace_back([&, t] {
        MllpClient c({"127.0.0.1", l->port(), 3000, 5000, 1 << 20});
        for (int i = 0; i < 50; ++i) {
          const std::string m = "m" + std::to_string(t) + "-" + std::to_string(i);
          if (c.exchange(m) == "ACK:" + m) ++ok;
        }
      });
    }
    for (auto& t : ts) t.join();
    CPPUNIT_ASSERT_EQUAL(16 * 50, ok.load());
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(MllpTest);
