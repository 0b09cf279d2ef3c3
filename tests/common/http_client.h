#pragma once
// A small HTTP/1.1 client for integration tests, over Poco::Net::HTTPClientSession.
//
// HttpClient keeps one keep-alive connection (so tests exercise connection reuse) and reconnects
// when the server closed it. When the server answers before the whole body is sent (e.g. 413) and
// closes, the failed send is forgiven and the response that arrived is returned, as curl does. It
// never retries a request that may have reached the server, except GET/HEAD on a reused connection
// that the server closed before answering. With HEARTH_TEST_HTTP_CLOSE=1 every request uses a new
// connection (to see past a server bug that breaks keep-alive). Not thread-safe: use one HttpClient
// per thread. Transport failures throw HttpError (a std::runtime_error naming the request).
//
// BodyRecorder saves every non-empty response body of a /fhir request into a directory, one file per
// response, so a test can validate all of them against the FHIR JSON schema afterwards. Thread-safe.
#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth::test {

class HttpSession;  // a Poco::Net::HTTPClientSession that can read a response after a failed send

class HearthProcess;

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  std::string request;  // "METHOD /path?query" that produced this response
  int status = 0;
  std::string reason;
  Headers headers;  // as received, in order; names compared case-insensitively by header()
  std::string body;

  // First value of header `name` (case-insensitive), "" if absent.
  std::string header(std::string_view name) const;
  bool hasHeader(std::string_view name) const;
  // The body parsed as a JSON object; throws std::runtime_error (with the body) otherwise.
  rapidjson::Document json() const;
  // "HTTP 404 Not Found; headers...; body: ..." (body cut at 1500 chars) for assertion messages.
  std::string describe() const;
};

class HttpError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class BodyRecorder {
 public:
  // Creates `dir` (and parents); with `clean`, removes what an earlier run left in it.
  explicit BodyRecorder(std::string dir, bool clean = true);
  void record(const std::string& method, const std::string& target, const HttpResponse& response);
  const std::string& dir() const { return dir_; }
  std::size_t count() const { return count_.load(); }

 private:
  std::string dir_;
  std::mutex mutex_;
  std::atomic<std::size_t> count_{0};
};

class HttpClient {
 public:
  HttpClient(std::string host, uint16_t port);
  explicit HttpClient(const HearthProcess& server);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // `target` is an origin-form path with query ("/fhir/Patient?_count=2") or an absolute URL on
  // the same server (as found in Location headers and Bundle links). A non-empty body without a
  // Content-Type header in `headers` is sent as application/fhir+json.
  HttpResponse request(const std::string& method, const std::string& target, const std::string& body = {},
                       const Headers& headers = {});
  // As request(), but the body goes out with Transfer-Encoding: chunked (no Content-Length).
  HttpResponse requestChunked(const std::string& method, const std::string& target, const std::string& body,
                              const Headers& headers = {});

  HttpResponse get(const std::string& target, const Headers& headers = {}) {
    return request("GET", target, {}, headers);
  }
  HttpResponse post(const std::string& target, const std::string& body, const Headers& headers = {}) {
    return request("POST", target, body, headers);
  }
  HttpResponse put(const std::string& target, const std::string& body, const Headers& headers = {}) {
    return request("PUT", target, body, headers);
  }
  HttpResponse del(const std::string& target, const Headers& headers = {}) {
    return request("DELETE", target, {}, headers);
  }

  void setTimeout(std::chrono::milliseconds timeout);
  void setRecorder(BodyRecorder* recorder) { recorder_ = recorder; }
  // Headers added to every request (e.g. Authorization) unless the request sets the same header.
  void setDefaultHeaders(Headers headers) { defaultHeaders_ = std::move(headers); }
  // Drops the current connection; the next request opens a new one.
  void close();
  // Local port of the current connection, 0 if none: equal ports across requests = reused connection.
  uint16_t localPort() const;

 private:
  HttpResponse perform(const std::string& method, const std::string& target, const std::string& body,
                       const Headers& headers, bool chunked);
  std::string toOriginForm(const std::string& target) const;

  std::string host_;
  uint16_t port_;
  std::unique_ptr<HttpSession> session_;
  BodyRecorder* recorder_ = nullptr;
  Headers defaultHeaders_;
};

// Sends `request` verbatim on a new connection and returns everything the server sends until it
// closes the connection (or `timeout` passes). For requests HttpClient cannot express (HTTP/1.0,
// no Host header, malformed framing). Throws HttpError on connection failure.
std::string rawExchange(const std::string& host, uint16_t port, const std::string& request,
                        std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));
// The status code of a raw response ("HTTP/1.1 201 Created..." -> 201), 0 if unparseable.
int rawStatus(const std::string& response);
// The value of header `name` in a raw response ("" if absent), and its body (after the blank line).
std::string rawHeader(const std::string& response, const std::string& name);
std::string rawBody(const std::string& response);

// JSON helpers for assertions.
rapidjson::Document parseJson(const std::string& text);  // throws std::runtime_error
// Value at a JSON pointer ("/meta/versionId"), nullptr if absent.
const rapidjson::Value* jptr(const rapidjson::Value& root, const char* pointer);
// String at a JSON pointer, "" if absent or not a string.
std::string jstr(const rapidjson::Value& root, const char* pointer);
std::string toJson(const rapidjson::Value& value);
// The path and query of a URL ("http://h:1/fhir/x?y" -> "/fhir/x?y").
std::string pathAndQuery(const std::string& url);

}  // namespace hearth::test
