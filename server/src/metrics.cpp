#include "metrics.h"

#include <cstdio>

namespace hearth::server {

namespace {
const char* const kMethodNames[Metrics::kMethods] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "other"};
const int kStatusCodes[Metrics::kStatuses] = {200, 201, 204, 304, 400, 401, 403, 404, 405, 406, 409, 410,
                                              412, 413, 415, 422, 429, 500, 501, 503, 0, 0, 0, 0};
const double kBucketBounds[Metrics::kBuckets] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                 0.1,    0.25,  0.5,    1.0,   2.5,  5.0,   1e300};
}  // namespace

const char* routeName(Route r) {
  switch (r) {
    case Route::Metadata: return "metadata";
    case Route::Auth: return "auth";
    case Route::Create: return "create";
    case Route::Read: return "read";
    case Route::VRead: return "vread";
    case Route::Update: return "update";
    case Route::Delete: return "delete";
    case Route::HistoryInstance: return "history-instance";
    case Route::HistoryType: return "history-type";
    case Route::HistorySystem: return "history-system";
    case Route::Search: return "search-type";
    case Route::SearchSystem: return "search-system";
    case Route::Compartment: return "search-compartment";
    case Route::Everything: return "everything";
    case Route::Bundle: return "batch-transaction";
    case Route::Patch: return "patch";
    case Route::ConditionalWrite: return "conditional-write";
    case Route::Reindex: return "reindex";
    case Route::Operation: return "operation";
    case Route::Health: return "health";
    case Route::Metrics: return "metrics";
    case Route::Unknown:
    case Route::kCount: break;
  }
  return "unknown";
}

int Metrics::methodIndex(const std::string& m) {
  for (int i = 0; i < kMethods - 1; ++i)
    if (m == kMethodNames[i]) return i;
  return kMethods - 1;
}

int Metrics::statusIndex(int status) {
  for (int i = 0; i < kStatuses; ++i)
    if (kStatusCodes[i] == status) return i;
  return kStatuses - 1;  // "other"
}

void Metrics::record(Route route, int methodIdx, int status, double seconds) {
  const size_t r = static_cast<size_t>(route);
  counts_[(r * kMethods + static_cast<size_t>(methodIdx)) * kStatuses + static_cast<size_t>(statusIndex(status))]
      .fetch_add(1, std::memory_order_relaxed);
  for (int b = 0; b < kBuckets; ++b) {
    if (seconds <= kBucketBounds[b]) {
      buckets_[r * kBuckets + static_cast<size_t>(b)].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  sumMicros_[r].fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
  observations_[r].fetch_add(1, std::memory_order_relaxed);
}

std::string Metrics::render(const fhir::StorePoolStats& pool, const std::string& backend) const {
  std::string out;
  char line[512];
  out += "# HELP hearth_http_requests_total HTTP requests handled, by route, method and status.\n";
  out += "# TYPE hearth_http_requests_total counter\n";
  for (size_t r = 0; r < kRoutes; ++r) {
    for (int m = 0; m < kMethods; ++m) {
      for (int s = 0; s < kStatuses; ++s) {
        const uint64_t n = counts_[(r * kMethods + static_cast<size_t>(m)) * kStatuses + static_cast<size_t>(s)].load(std::memory_order_relaxed);
        if (n == 0) continue;
        const std::string status = kStatusCodes[s] ? std::to_string(kStatusCodes[s]) : "other";
        std::snprintf(line, sizeof line, "hearth_http_requests_total{route=\"%s\",method=\"%s\",status=\"%s\"} %llu\n",
                      routeName(static_cast<Route>(r)), kMethodNames[m], status.c_str(),
                      static_cast<unsigned long long>(n));
        out += line;
      }
    }
  }
  out += "# HELP hearth_http_request_duration_seconds Time to handle a request, by route.\n";
  out += "# TYPE hearth_http_request_duration_seconds histogram\n";
  for (size_t r = 0; r < kRoutes; ++r) {
    const uint64_t total = observations_[r].load(std::memory_order_relaxed);
    if (total == 0) continue;
    const char* name = routeName(static_cast<Route>(r));
    uint64_t cumulative = 0;
    for (int b = 0; b < kBuckets; ++b) {
      cumulative += buckets_[r * kBuckets + static_cast<size_t>(b)].load(std::memory_order_relaxed);
      if (b == kBuckets - 1) {
        std::snprintf(line, sizeof line, "hearth_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                      name, static_cast<unsigned long long>(cumulative));
      } else {
        std::snprintf(line, sizeof line, "hearth_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                      name, kBucketBounds[b], static_cast<unsigned long long>(cumulative));
      }
      out += line;
    }
    std::snprintf(line, sizeof line,
                  "hearth_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                  "hearth_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                  name, static_cast<double>(sumMicros_[r].load(std::memory_order_relaxed)) / 1e6, name,
                  static_cast<unsigned long long>(total));
    out += line;
  }
  char pool_block[2048];
  std::snprintf(pool_block, sizeof pool_block,
                "# HELP hearth_store_pool_capacity Maximum database sessions.\n"
                "# TYPE hearth_store_pool_capacity gauge\n"
                "hearth_store_pool_capacity{backend=\"%s\"} %d\n"
                "# HELP hearth_store_pool_allocated Database sessions opened.\n"
                "# TYPE hearth_store_pool_allocated gauge\n"
                "hearth_store_pool_allocated{backend=\"%s\"} %d\n"
                "# HELP hearth_store_pool_idle Database sessions idle in the pool.\n"
                "# TYPE hearth_store_pool_idle gauge\n"
                "hearth_store_pool_idle{backend=\"%s\"} %d\n"
                "# HELP hearth_store_pool_in_use Database sessions in use.\n"
                "# TYPE hearth_store_pool_in_use gauge\n"
                "hearth_store_pool_in_use{backend=\"%s\"} %d\n",
                backend.c_str(), pool.capacity, backend.c_str(), pool.allocated, backend.c_str(), pool.idle,
                backend.c_str(), pool.inUse);
  out += pool_block;
  return out;
}

}  // namespace hearth::server
