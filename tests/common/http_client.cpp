#include "http_client.h"

#include <Poco/File.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>
#include <rapidjson/error/en.h>
#include <rapidjson/pointer.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "hearth_process.h"

namespace hearth::test {

class HttpSession : public Poco::Net::HTTPClientSession {
 public:
  using Poco::Net::HTTPClientSession::HTTPClientSession;
  // Forgets an error recorded while sending, so the response the server sent can still be read.
  void forgetSendError() { clearException(); }
};

namespace {

// HEARTH_TEST_HTTP_CLOSE=1: one connection per request (a diagnosis aid to see past a server bug that
// breaks keep-alive; the keep-alive tests then fail by design).
bool closeEachConnection() {
  static const bool close = [] {
    const char* v = std::getenv("HEARTH_TEST_HTTP_CLOSE");
    return v && std::string(v) == "1";
  }();
  return close;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

bool hasHeaderIn(const Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return true;
  }
  return false;
}

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return {};
}

bool HttpResponse::hasHeader(std::string_view name) const { return hasHeaderIn(headers, name); }

rapidjson::Document HttpResponse::json() const {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    throw std::runtime_error("response body is not a JSON object: " + describe());
  }
  return doc;
}

std::string HttpResponse::describe() const {
  std::ostringstream out;
  out << request << " -> HTTP " << status << " " << reason << "; headers:";
  for (const auto& [k, v] : headers) out << " [" << k << ": " << v << "]";
  out << "; body: " << (body.size() > 1500 ? body.substr(0, 1500) + "..." : body);
  return out.str();
}

BodyRecorder::BodyRecorder(std::string dir, bool clean) : dir_(std::move(dir)) {
  Poco::File f(dir_);
  if (clean && f.exists()) f.remove(true);
  f.createDirectories();
}

void BodyRecorder::record(const std::string& method, const std::string& target,
                          const HttpResponse& response) {
  if (response.body.empty()) return;
  // The JSON schema check covers JSON bodies; XML answers are checked by the XML round-trip suite
  // (tests/xml) — their JSON twin is what gets validated here.
  if (response.header("Content-Type").find("xml") != std::string::npos) return;
  std::string path = pathAndQuery(target);
  if (path.rfind("/fhir", 0) != 0) return;
  std::string slug;
  for (char c : path.substr(0, path.find('?'))) {
    slug += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    if (slug.size() >= 80) break;
  }
  std::size_t n = ++count_;
  char prefix[32];
  std::snprintf(prefix, sizeof prefix, "%05zu_%d_", n, response.status);
  std::string file = dir_ + "/" + prefix + method + slug + ".json";
  std::lock_guard<std::mutex> lock(mutex_);
  std::ofstream out(file, std::ios::binary);
  out << response.body;
}

HttpClient::HttpClient(std::string host, uint16_t port) : host_(std::move(host)), port_(port) {
  session_ = std::make_unique<HttpSession>(host_, port_);
  session_->setKeepAlive(true);
  session_->setTimeout(Poco::Timespan(30, 0));
}

HttpClient::HttpClient(const HearthProcess& server) : HttpClient(server.host(), server.port()) {}

HttpClient::~HttpClient() = default;

void HttpClient::setTimeout(std::chrono::milliseconds timeout) {
  session_->setTimeout(Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(timeout.count()) * 1000));
}

void HttpClient::close() { session_->reset(); }

uint16_t HttpClient::localPort() const {
  try {
    return session_->connected() ? session_->socket().address().port() : 0;
  } catch (const Poco::Exception&) {
    return 0;
  }
}

std::string HttpClient::toOriginForm(const std::string& target) const {
  if (!target.empty() && target[0] == '/') return target;
  Poco::URI uri(target);
  if (uri.getHost() != host_ || uri.getPort() != port_) {
    throw HttpError("HttpClient: URL " + target + " does not point at the server under test (" + host_ + ":" +
                    std::to_string(port_) + ")");
  }
  return uri.getPathEtc();
}

HttpResponse HttpClient::request(const std::string& method, const std::string& target,
                                 const std::string& body, const Headers& headers) {
  return perform(method, target, body, headers, false);
}

HttpResponse HttpClient::requestChunked(const std::string& method, const std::string& target,
                                        const std::string& body, const Headers& headers) {
  return perform(method, target, body, headers, true);
}

HttpResponse HttpClient::perform(const std::string& method, const std::string& target,
                                 const std::string& body, const Headers& headers, bool chunked) {
  const std::string uri = toOriginForm(target);
  const bool retryable = method == "GET" || method == "HEAD";
  for (int attempt = 0;; ++attempt) {
    bool reused = session_->connected();
    // A keep-alive connection the server has closed reads as "readable" (EOF) while idle.
    if (reused) {
      try {
        if (session_->socket().poll(Poco::Timespan(0), Poco::Net::Socket::SELECT_READ)) {
          session_->reset();
          reused = false;
        }
      } catch (const Poco::Exception&) {
        session_->reset();
        reused = false;
      }
    }
    try {
      Poco::Net::HTTPRequest req(method, uri, Poco::Net::HTTPMessage::HTTP_1_1);
      req.setKeepAlive(!closeEachConnection());
      Headers all;  // per-request headers replace default ones of the same name
      for (const auto& d : defaultHeaders_) {
        if (!hasHeaderIn(headers, d.first)) all.push_back(d);
      }
      all.insert(all.end(), headers.begin(), headers.end());
      for (const auto& [k, v] : all) req.add(k, v);
      if (!body.empty() && !hasHeaderIn(all, "Content-Type")) req.setContentType("application/fhir+json");
      if (chunked) {
        req.setChunkedTransferEncoding(true);
      } else if (!body.empty() || method == "POST" || method == "PUT") {
        req.setContentLength(static_cast<std::streamsize>(body.size()));
      }
      std::ostream& os = session_->sendRequest(req);
      os.write(body.data(), static_cast<std::streamsize>(body.size()));
      os.flush();
      try {
        session_->flushRequest();  // ends the request stream now, so a send error shows up here
      } catch (const Poco::Exception&) {
      }
      std::string sendError;
      if (session_->networkException()) {
        // The server stopped reading (and may have answered already): try to read its answer.
        sendError = session_->networkException()->displayText();
        session_->forgetSendError();
      }
      Poco::Net::HTTPResponse resp;
      std::istream* isp = nullptr;
      try {
        isp = &session_->receiveResponse(resp);
      } catch (const Poco::Exception& e) {
        if (sendError.empty()) throw;
        session_->reset();
        throw HttpError(method + " " + uri + ": sending the body failed (" + sendError +
                        ") and no response could be read (" + e.displayText() + ")");
      }
      std::istream& is = *isp;
      HttpResponse out;
      out.request = method + " " + uri;
      out.status = resp.getStatus();
      out.reason = resp.getReason();
      for (const auto& [k, v] : resp) out.headers.emplace_back(k, v);
      Poco::StreamCopier::copyToString(is, out.body);
      if (recorder_) recorder_->record(method, uri, out);
      if (closeEachConnection()) session_->reset();
      return out;
    } catch (const Poco::Net::NoMessageException& e) {
      session_->reset();
      if (retryable && reused && attempt == 0) continue;
      throw HttpError(method + " " + uri + ": " + e.displayText());
    } catch (const Poco::Net::ConnectionResetException& e) {
      session_->reset();
      if (retryable && reused && attempt == 0) continue;
      throw HttpError(method + " " + uri + ": " + e.displayText());
    } catch (const Poco::Exception& e) {
      session_->reset();
      throw HttpError(method + " " + uri + ": " + e.displayText());
    } catch (const std::ios_base::failure& e) {
      session_->reset();
      throw HttpError(method + " " + uri + ": " + e.what());
    }
  }
}

std::string rawExchange(const std::string& host, uint16_t port, const std::string& request,
                        std::chrono::milliseconds timeout) {
  try {
    Poco::Net::StreamSocket s;
    s.connect(Poco::Net::SocketAddress(host, port), Poco::Timespan(5, 0));
    s.setReceiveTimeout(Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(timeout.count()) * 1000));
    std::size_t off = 0;
    while (off < request.size()) {
      int n = s.sendBytes(request.data() + off, static_cast<int>(request.size() - off));
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
    std::string out;
    char buf[8192];
    try {
      for (int n; (n = s.receiveBytes(buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    } catch (const Poco::TimeoutException&) {
      // A server that keeps the connection open: return what arrived.
    }
    return out;
  } catch (const Poco::Exception& e) {
    throw HttpError("raw exchange with " + host + ":" + std::to_string(port) + ": " + e.displayText());
  }
}

int rawStatus(const std::string& response) {
  if (response.rfind("HTTP/", 0) != 0) return 0;
  auto sp = response.find(' ');
  if (sp == std::string::npos || response.size() < sp + 4) return 0;
  try {
    return std::stoi(response.substr(sp + 1, 3));
  } catch (const std::exception&) {
    return 0;
  }
}

std::string rawHeader(const std::string& response, const std::string& name) {
  std::size_t end = response.find("\r\n\r\n");
  std::size_t pos = response.find("\r\n");
  while (pos != std::string::npos && pos < end) {
    std::size_t next = response.find("\r\n", pos + 2);
    std::string line = response.substr(pos + 2, next - pos - 2);
    auto colon = line.find(':');
    if (colon != std::string::npos && iequals(line.substr(0, colon), name)) {
      std::string v = line.substr(colon + 1);
      while (!v.empty() && v.front() == ' ') v.erase(0, 1);
      return v;
    }
    pos = next;
  }
  return {};
}

std::string rawBody(const std::string& response) {
  std::size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? std::string() : response.substr(end + 4);
}

rapidjson::Document parseJson(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(text.data(), text.size());
  if (doc.HasParseError()) {
    throw std::runtime_error(std::string("invalid JSON (") +
                             rapidjson::GetParseError_En(doc.GetParseError()) + " at " +
                             std::to_string(doc.GetErrorOffset()) + "): " + text.substr(0, 500));
  }
  return doc;
}

const rapidjson::Value* jptr(const rapidjson::Value& root, const char* pointer) {
  return rapidjson::Pointer(pointer).Get(root);
}

std::string jstr(const rapidjson::Value& root, const char* pointer) {
  const rapidjson::Value* v = jptr(root, pointer);
  return v && v->IsString() ? std::string(v->GetString(), v->GetStringLength()) : std::string();
}

std::string toJson(const rapidjson::Value& value) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
  value.Accept(writer);
  return std::string(buf.GetString(), buf.GetSize());
}

std::string pathAndQuery(const std::string& url) {
  if (!url.empty() && url[0] == '/') return url;
  return Poco::URI(url).getPathEtc();
}

}  // namespace hearth::test
