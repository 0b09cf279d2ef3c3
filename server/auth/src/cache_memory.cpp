// InProcessCache: sharded hash maps under a mutex each; TTLs against steady_clock.
#include <algorithm>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "hearth/auth/cache.h"

namespace hearth::auth {
namespace {

using Clock = std::chrono::steady_clock;

void checkTtl(Cache::Ttl ttl) {
  if (ttl.count() <= 0) throw std::invalid_argument("cache: TTL must be positive");
}

class InProcessCache final : public Cache {
 public:
  explicit InProcessCache(const InProcessCacheOptions& o)
      : prefix_(o.keyPrefix), shards_(std::max<size_t>(1, o.shards)) {
    perShard_ = std::max<size_t>(1, (o.maxEntries + shards_.size() - 1) / shards_.size());
  }

  std::optional<std::string> get(const std::string& key) override {
    auto [shard, k] = locate(key);
    std::lock_guard lock(shard.mutex);
    auto it = live(shard, k);
    if (it == shard.map.end()) return std::nullopt;
    return it->second.value;
  }

  void set(const std::string& key, const std::string& value, Ttl ttl) override {
    checkTtl(ttl);
    auto [shard, k] = locate(key);
    std::lock_guard lock(shard.mutex);
    put(shard, k, value, ttl);
  }

  bool setIfAbsent(const std::string& key, const std::string& value, Ttl ttl) override {
    checkTtl(ttl);
    auto [shard, k] = locate(key);
    std::lock_guard lock(shard.mutex);
    if (live(shard, k) != shard.map.end()) return false;
    put(shard, k, value, ttl);
    return true;
  }

  std::optional<std::string> take(const std::string& key) override {
    auto [shard, k] = locate(key);
    std::lock_guard lock(shard.mutex);
    auto it = live(shard, k);
    if (it == shard.map.end()) return std::nullopt;
    std::string v = std::move(it->second.value);
    shard.map.erase(it);
    return v;
  }

  int64_t incr(const std::string& key, Ttl ttl) override {
    checkTtl(ttl);
    auto [shard, k] = locate(key);
    std::lock_guard lock(shard.mutex);
    auto it = live(shard, k);
    if (it == shard.map.end()) {
      put(shard, k, "1", ttl);
      return 1;
    }
    int64_t n = 0;
    size_t used = 0;
    try {
      n = std::stoll(it->second.value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != it->second.value.size())
      throw std::invalid_argument("cache: incr on a value that is not an integer");
    it->second.value = std::to_string(++n);
    return n;
  }

  bool remove(const std::string& key) override {
    auto [shard, k] = locate(key);
    std::lock_guard lock(shard.mutex);
    auto it = live(shard, k);
    if (it == shard.map.end()) return false;
    shard.map.erase(it);
    return true;
  }

  std::string backend() const override { return "memory"; }

 private:
  struct Entry {
    std::string value;
    Clock::time_point expires;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, Entry> map;
  };
  using Map = std::unordered_map<std::string, Entry>;

  std::pair<Shard&, std::string> locate(const std::string& key) {
    std::string k = prefix_ + key;
    size_t h = std::hash<std::string>{}(k);
    return {shards_[h % shards_.size()], std::move(k)};
  }

  // The live entry for k, erasing it if expired.
  static Map::iterator live(Shard& s, const std::string& k) {
    auto it = s.map.find(k);
    if (it != s.map.end() && it->second.expires <= Clock::now()) {
      s.map.erase(it);
      return s.map.end();
    }
    return it;
  }

  void put(Shard& s, const std::string& k, const std::string& value, Ttl ttl) {
    const auto now = Clock::now();
    auto it = s.map.find(k);
    if (it == s.map.end() && s.map.size() >= perShard_) makeRoom(s, now);
    s.map[k] = Entry{value, now + ttl};
  }

  // Purges expired entries; if none were, evicts the entry closest to expiry.
  void makeRoom(Shard& s, Clock::time_point now) {
    std::erase_if(s.map, [now](const auto& kv) { return kv.second.expires <= now; });
    if (s.map.size() < perShard_) return;
    auto victim = std::min_element(s.map.begin(), s.map.end(), [](const auto& a, const auto& b) {
      return a.second.expires < b.second.expires;
    });
    if (victim != s.map.end()) s.map.erase(victim);
  }

  std::string prefix_;
  std::vector<Shard> shards_;
  size_t perShard_ = 1;
};

}  // namespace

std::unique_ptr<Cache> makeInProcessCache(const InProcessCacheOptions& options) {
  return std::make_unique<InProcessCache>(options);
}

}  // namespace hearth::auth
