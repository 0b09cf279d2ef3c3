#pragma once
// AccessLog: one JSON line per request (time, request id, method, path, route, status, duration,
// bytes). Never the query string, headers or bodies: those can carry patient data.
// Lines are queued and written by a background thread so request threads never block on I/O;
// the queue is bounded (lines beyond it are counted as dropped, not buffered without limit).
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hearth::server {

class AccessLog {
 public:
  explicit AccessLog(std::FILE* out);
  ~AccessLog();  // flushes what is queued
  void write(std::string line);  // line without trailing newline
  void flush();

 private:
  void run();
  std::FILE* out_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> queue_;
  size_t dropped_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

// Structured (JSON line) application log used for start-up, shutdown and errors.
void logEvent(const char* level, const std::string& message, const std::string& requestId = {});

}  // namespace hearth::server
