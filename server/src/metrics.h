#pragma once
// Metrics: request counters by route, method and status, and a latency histogram per route,
// rendered as Prometheus text. Lock-free: fixed arrays of relaxed atomics, so recording costs a
// few atomic increments on the request path.
#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "hearth/fhir/store.h"

namespace hearth::server {

enum class Route : uint8_t {
  Metadata, Create, Read, VRead, Update, Delete, HistoryInstance, HistoryType, HistorySystem,
  Search, SearchSystem, Compartment, Everything, Bundle, Patch, ConditionalWrite, Reindex,
  Operation, Health, Metrics, Auth, Unknown, kCount
};
const char* routeName(Route r);

class Metrics {
 public:
  static constexpr int kMethods = 8;  // GET POST PUT DELETE PATCH HEAD OPTIONS other
  static constexpr int kStatuses = 24;
  static constexpr int kBuckets = 14;

  static int methodIndex(const std::string& method);
  void record(Route route, int methodIdx, int status, double seconds);
  std::string render(const fhir::StorePoolStats& pool, const std::string& backend) const;

 private:
  static int statusIndex(int status);
  static constexpr size_t kRoutes = static_cast<size_t>(Route::kCount);
  std::array<std::atomic<uint64_t>, kRoutes * kMethods * kStatuses> counts_{};
  std::array<std::atomic<uint64_t>, kRoutes * kBuckets> buckets_{};
  std::array<std::atomic<uint64_t>, kRoutes> sumMicros_{};
  std::array<std::atomic<uint64_t>, kRoutes> observations_{};
};

}  // namespace hearth::server
