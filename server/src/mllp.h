#pragma once
// MLLP (Minimal Lower Layer Protocol, HL7 v2 transport): frames are 0x0B <message> 0x1C 0x0D.
//
//  - MllpDecoder: incremental framing over a byte stream (split and coalesced reads, garbage
//    between frames, oversized frames).
//  - MllpListener: a Poco TCPServer that accepts many connections, decodes frames and answers each
//    with the bytes its handler returns (the ACK), framed; idle connections are closed.
//  - MllpClient: one outbound connection with connect/read timeouts, reconnect on failure, and a
//    send-and-wait-for-ACK call.
// Nothing here knows HL7 semantics: the handler decides what a frame means and what to answer.
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/TCPServer.h>

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::server {

constexpr char kMllpStart = 0x0B;
constexpr char kMllpEnd1 = 0x1C;
constexpr char kMllpEnd2 = 0x0D;

// Wraps a message in an MLLP frame.
std::string mllpFrame(std::string_view message);

class MllpDecoder {
 public:
  explicit MllpDecoder(size_t maxFrameBytes) : max_(maxFrameBytes) {}

  enum class Event { Frame, Oversized, Garbage };
  struct Output {
    Event event;
    std::string payload;  // the message of a Frame; empty otherwise
  };
  // Feeds bytes; appends what they completed to `out`, in order. Bytes outside a frame are
  // reported once per run as Garbage and dropped. A frame that grows past the limit is reported as
  // Oversized and its bytes are dropped up to its end block (the connection may stay open). A
  // 0x0B inside a frame restarts the frame (the sender began again).
  void feed(const char* data, size_t n, std::vector<Output>& out);
  // True while a frame has started but not ended (at connection close: an incomplete frame).
  bool inFrame() const { return state_ != State::Idle; }

 private:
  enum class State { Idle, InFrame, AfterEnd1, Skipping, SkippingAfterEnd1 };
  size_t max_;
  State state_ = State::Idle;
  std::string buf_;
  bool garbageReported_ = false;
};

struct MllpListenerOptions {
  size_t maxFrameBytes = 16 * 1024 * 1024;
  int idleTimeoutSeconds = 300;  // a connection that sends nothing for this long is closed
  int maxConnections = 64;       // concurrent connections served (threads)
  int queue = 64;                // accepted connections waiting for a thread
};

// Called once per complete frame with the message bytes and the peer's address text. Returns the
// responses (unframed) to send back in order: usually one ACK; two in HL7 enhanced mode (accept
// ACK, then application ACK); none to answer nothing. Called concurrently from connection threads;
// frames of one connection are handled one after another, in order.
using MllpHandler = std::function<std::vector<std::string>(std::string_view message, const std::string& peer)>;
// Called for an oversized frame; returns the response (e.g. a reject ACK) or nullopt.
using MllpOversizeHandler = std::function<std::optional<std::string>(const std::string& peer)>;

class MllpListener {
 public:
  // Takes a bound, listening socket (plain or Poco SecureServerSocket for TLS).
  MllpListener(Poco::Net::ServerSocket socket, MllpListenerOptions options, MllpHandler handler,
               MllpOversizeHandler oversize = {});
  ~MllpListener();  // stop()s
  void start();
  // Stops accepting, closes idle connections, and waits (up to graceSeconds) for frames being
  // handled to finish.
  void stop(int graceSeconds = 10);
  uint16_t port() const;
  int activeConnections() const;

  struct Shared;  // state shared with connection threads (mllp.cpp)

 private:
  std::shared_ptr<Shared> shared_;
  std::unique_ptr<Poco::Net::TCPServer> server_;
  uint16_t port_ = 0;
};

struct MllpClientOptions {
  std::string host;
  uint16_t port = 0;
  int connectTimeoutMs = 5000;
  int ackTimeoutMs = 30000;
  size_t maxFrameBytes = 16 * 1024 * 1024;
};

// One outbound MLLP connection. Not thread-safe: one sender at a time.
class MllpClient {
 public:
  explicit MllpClient(MllpClientOptions options) : opt_(std::move(options)) {}
  // Sends `message` and waits for one framed response. Connects (or reconnects after a failure)
  // as needed. Throws std::runtime_error on connect/send/timeout failures; the connection is then
  // dropped so the next call starts afresh.
  std::string exchange(std::string_view message);
  void close();

 private:
  MllpClientOptions opt_;
  std::unique_ptr<Poco::Net::StreamSocket> socket_;
};

}  // namespace hearth::server
