#include "mllp.h"

#include <Poco/Net/NetException.h>
#include <Poco/Net/TCPServerConnection.h>
#include <Poco/Net/TCPServerConnectionFactory.h>
#include <Poco/Net/TCPServerParams.h>
#include <Poco/Timespan.h>

#include <chrono>
#include <stdexcept>
#include <thread>

namespace hearth::server {

std::string mllpFrame(std::string_view message) {
  std::string out;
  out.reserve(message.size() + 3);
  out += kMllpStart;
  out.append(message);
  out += kMllpEnd1;
  out += kMllpEnd2;
  return out;
}

void MllpDecoder::feed(const char* data, size_t n, std::vector<Output>& out) {
  for (size_t i = 0; i < n; ++i) {
    const char c = data[i];
    switch (state_) {
      case State::Idle:
        if (c == kMllpStart) {
          state_ = State::InFrame;
          buf_.clear();
          garbageReported_ = false;
        } else if (c != '\r' && c != '\n' && !garbageReported_) {
          // Stray line ends between frames are common and harmless; anything else is reported.
          garbageReported_ = true;
          out.push_back({Event::Garbage, {}});
        }
        break;
      case State::InFrame:
        if (c == kMllpEnd1) {
          state_ = State::AfterEnd1;
        } else if (c == kMllpStart) {
          buf_.clear();  // the sender started over
        } else if (buf_.size() >= max_) {
          buf_.clear();
          buf_.shrink_to_fit();
          state_ = State::Skipping;
          out.push_back({Event::Oversized, {}});
        } else {
          buf_ += c;
        }
        break;
      case State::AfterEnd1:
        if (c == kMllpEnd2) {
          out.push_back({Event::Frame, std::move(buf_)});
          buf_.clear();
          state_ = State::Idle;
        } else if (c == kMllpEnd1) {
          buf_ += kMllpEnd1;  // 0x1C inside the message; keep waiting for 0x1C 0x0D
        } else {
          // A lone 0x1C is not an end block: it belongs to the message.
          buf_ += kMllpEnd1;
          if (c == kMllpStart) {
            buf_.clear();
          } else {
            buf_ += c;
          }
          state_ = State::InFrame;
        }
        break;
      case State::Skipping:
        if (c == kMllpEnd1) state_ = State::SkippingAfterEnd1;
        break;
      case State::SkippingAfterEnd1:
        state_ = c == kMllpEnd2 ? State::Idle : (c == kMllpEnd1 ? State::SkippingAfterEnd1 : State::Skipping);
        break;
    }
  }
}

// ---- listener ---------------------------------------------------------------------------------

struct MllpListener::Shared {
  MllpListenerOptions options;
  MllpHandler handler;
  MllpOversizeHandler oversize;
  std::atomic<bool> stopping{false};
  std::atomic<int> active{0};
};

namespace {

class MllpConnection : public Poco::Net::TCPServerConnection {
 public:
  MllpConnection(const Poco::Net::StreamSocket& s, std::shared_ptr<MllpListener::Shared> shared)
      : TCPServerConnection(s), shared_(std::move(shared)) {}

  void run() override {
    shared_->active.fetch_add(1);
    struct Leave {
      std::atomic<int>& n;
      ~Leave() { n.fetch_sub(1); }
    } leave{shared_->active};
    Poco::Net::StreamSocket& sock = socket();
    std::string peer;
    try {
      peer = sock.peerAddress().toString();
      sock.setNoDelay(true);
      // Short polls so a stopping listener and the idle timeout are noticed promptly.
      sock.setReceiveTimeout(Poco::Timespan(0, 250 * 1000));
    } catch (const Poco::Exception&) {
      return;
    }
    MllpDecoder decoder(shared_->options.maxFrameBytes);
    std::vector<MllpDecoder::Output> outputs;
    std::vector<char> buf(64 * 1024);
    auto lastActivity = std::chrono::steady_clock::now();
    const auto idle = std::chrono::seconds(shared_->options.idleTimeoutSeconds);
    for (;;) {
      if (shared_->stopping.load() && !decoder.inFrame()) return;
      int n = 0;
      try {
        n = sock.receiveBytes(buf.data(), static_cast<int>(buf.size()));
      } catch (const Poco::TimeoutException&) {
        if (std::chrono::steady_clock::now() - lastActivity > idle) return;
        continue;
      } catch (const Poco::Exception&) {
        return;  // reset by peer and the like: nothing was acknowledged for a partial frame
      }
      if (n <= 0) return;  // orderly close; an unfinished frame is dropped unanswered
      lastActivity = std::chrono::steady_clock::now();
      outputs.clear();
      decoder.feed(buf.data(), static_cast<size_t>(n), outputs);
      for (auto& o : outputs) {
        std::vector<std::string> replies;
        if (o.event == MllpDecoder::Event::Frame) {
          replies = shared_->handler(o.payload, peer);
        } else if (o.event == MllpDecoder::Event::Oversized && shared_->oversize) {
          if (auto r = shared_->oversize(peer)) replies.push_back(std::move(*r));
        }
        for (const std::string& reply : replies) {
          const std::string framed = mllpFrame(reply);
          try {
            sock.sendBytes(framed.data(), static_cast<int>(framed.size()));
          } catch (const Poco::Exception&) {
            return;
          }
        }
      }
    }
  }

 private:
  std::shared_ptr<MllpListener::Shared> shared_;
};

class MllpConnectionFactory : public Poco::Net::TCPServerConnectionFactory {
 public:
  explicit MllpConnectionFactory(std::shared_ptr<MllpListener::Shared> shared) : shared_(std::move(shared)) {}
  Poco::Net::TCPServerConnection* createConnection(const Poco::Net::StreamSocket& socket) override {
    return new MllpConnection(socket, shared_);
  }

 private:
  std::shared_ptr<MllpListener::Shared> shared_;
};

}  // namespace

MllpListener::MllpListener(Poco::Net::ServerSocket socket, MllpListenerOptions options, MllpHandler handler,
                           MllpOversizeHandler oversize)
    : shared_(std::make_shared<Shared>()) {
  shared_->options = options;
  shared_->handler = std::move(handler);
  shared_->oversize = std::move(oversize);
  port_ = socket.address().port();
  auto* params = new Poco::Net::TCPServerParams;
  params->setMaxThreads(options.maxConnections);
  params->setMaxQueued(options.queue);
  params->setThreadIdleTime(Poco::Timespan(60, 0));
  server_ = std::make_unique<Poco::Net::TCPServer>(new MllpConnectionFactory(shared_), socket, params);
}

MllpListener::~MllpListener() { stop(); }

void MllpListener::start() { server_->start(); }

void MllpListener::stop(int graceSeconds) {
  if (!server_) return;
  shared_->stopping.store(true);
  server_->stop();  // no new connections; running ones see `stopping` within one poll
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(graceSeconds);
  while (shared_->active.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  server_.reset();
}

uint16_t MllpListener::port() const { return port_; }
int MllpListener::activeConnections() const { return shared_->active.load(); }

// ---- client -----------------------------------------------------------------------------------

void MllpClient::close() {
  if (socket_) {
    try {
      socket_->close();
    } catch (const Poco::Exception&) {
    }
    socket_.reset();
  }
}

std::string MllpClient::exchange(std::string_view message) {
  try {
    if (!socket_) {
      auto s = std::make_unique<Poco::Net::StreamSocket>();
      s->connect(Poco::Net::SocketAddress(opt_.host, opt_.port), Poco::Timespan(0, opt_.connectTimeoutMs * 1000L));
      s->setNoDelay(true);
      socket_ = std::move(s);
    }
    const std::string framed = mllpFrame(message);
    size_t sent = 0;
    while (sent < framed.size()) {
      const int n = socket_->sendBytes(framed.data() + sent, static_cast<int>(framed.size() - sent));
      if (n <= 0) throw std::runtime_error("MLLP send failed");
      sent += static_cast<size_t>(n);
    }
    socket_->setReceiveTimeout(Poco::Timespan(0, opt_.ackTimeoutMs * 1000L));
    MllpDecoder decoder(opt_.maxFrameBytes);
    std::vector<MllpDecoder::Output> out;
    char buf[8192];
    for (;;) {
      const int n = socket_->receiveBytes(buf, sizeof buf);
      if (n <= 0) throw std::runtime_error("MLLP peer closed the connection before answering");
      decoder.feed(buf, static_cast<size_t>(n), out);
      for (auto& o : out) {
        if (o.event == MllpDecoder::Event::Frame) return std::move(o.payload);
        if (o.event == MllpDecoder::Event::Oversized) throw std::runtime_error("MLLP response too large");
      }
      out.clear();
    }
  } catch (const Poco::TimeoutException&) {
    close();
    throw std::runtime_error("MLLP: no response within the ACK timeout");
  } catch (const Poco::Exception& e) {
    close();
    throw std::runtime_error("MLLP: " + e.displayText());
  } catch (...) {
    close();
    throw;
  }
}

}  // namespace hearth::server
