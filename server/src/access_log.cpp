#include "access_log.h"

#include "hearth/fhir/json.h"

namespace hearth::server {

namespace {
constexpr size_t kMaxQueued = 100000;
std::mutex gEventMu;
}  // namespace

AccessLog::AccessLog(std::FILE* out) : out_(out), thread_([this] { run(); }) {}

AccessLog::~AccessLog() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void AccessLog::write(std::string line) {
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= kMaxQueued) {
      ++dropped_;
      return;
    }
    queue_.push_back(std::move(line));
  }
  cv_.notify_one();
}

void AccessLog::flush() {
  std::lock_guard lock(mu_);
  for (const std::string& l : queue_) {
    std::fwrite(l.data(), 1, l.size(), out_);
    std::fputc('\n', out_);
  }
  queue_.clear();
  std::fflush(out_);
}

void AccessLog::run() {
  std::vector<std::string> batch;
  for (;;) {
    size_t dropped = 0;
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      batch.swap(queue_);
      dropped = dropped_;
      dropped_ = 0;
      stopping = stop_;
    }
    std::string chunk;
    for (const std::string& l : batch) {
      chunk += l;
      chunk += '\n';
    }
    if (dropped) chunk += "{\"level\":\"warning\",\"msg\":\"access log lines dropped\",\"count\":" + std::to_string(dropped) + "}\n";
    if (!chunk.empty()) {
      std::lock_guard lock(gEventMu);
      std::fwrite(chunk.data(), 1, chunk.size(), out_);
      std::fflush(out_);
    }
    batch.clear();
    if (stopping) {
      std::lock_guard lock(mu_);
      if (queue_.empty()) return;
    }
  }
}

void logEvent(const char* level, const std::string& message, const std::string& requestId) {
  std::string line = "{\"ts\":\"" + fhir::nowInstant().text + "\",\"level\":\"" + level + "\",\"msg\":\"";
  fhir::appendJsonEscaped(line, message);
  line += '"';
  if (!requestId.empty()) {
    line += ",\"requestId\":\"";
    fhir::appendJsonEscaped(line, requestId);
    line += '"';
  }
  line += "}\n";
  std::lock_guard lock(gEventMu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace hearth::server
