// Cache: the short-lived shared state of the authorization server (issue 5, part 4): login
// sessions, single-use authorization codes, refresh-token families, the client-assertion `jti`
// replay cache, the revocation denylist and login lockout counters. Every entry has a TTL.
//
// Two implementations behind one interface:
//   InProcessCache  the embedded default; state lives in this process only (one Hearth node).
//   RedisCache      hiredis against `cache.redis.url`; several Hearth nodes share state.
// Both pass the same conformance suite (tests/auth/cache_conformance_test.cpp).
//
// Contract common to all implementations:
// - Keys and values are arbitrary byte strings (values may contain NULs). Keys should be namespaced
//   by the caller ("code:", "jti:", "lock:" ...); the implementation adds its own configured prefix.
// - A TTL is a positive duration; entries are invisible once it has elapsed (lazily purged). A TTL
//   of zero or less is a programming error (std::invalid_argument): nothing auth-related may live
//   forever.
// - All operations are thread-safe and individually atomic: in particular setIfAbsent and take
//   have exactly one winner among concurrent callers, on one node or across nodes sharing Redis.
// - Operations throw CacheUnavailable when the backing store cannot be reached (Redis down, timed
//   out, protocol error). Callers answer 503 for requests that need the cache; requests that need
//   only a valid JWT keep working. RedisCache reconnects on the next operation, so service recovers
//   by itself when Redis returns. InProcessCache never throws CacheUnavailable.
// - Exception texts never contain keys or values (they can be codes, tokens or user names).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace hearth::auth {

// The cache backend cannot be reached or answered nonsense. Maps to HTTP 503.
class CacheUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Cache {
 public:
  using Ttl = std::chrono::milliseconds;
  virtual ~Cache() = default;

  // The value of `key`, or nullopt when absent or expired.
  virtual std::optional<std::string> get(const std::string& key) = 0;
  // Stores `value` under `key` (replacing any previous value and TTL).
  virtual void set(const std::string& key, const std::string& value, Ttl ttl) = 0;
  // Stores only if `key` is absent (or expired); true if this call stored it. The replay cache:
  // setIfAbsent("jti:" + jti, "1", exp - now) == false means the assertion was seen before.
  virtual bool setIfAbsent(const std::string& key, const std::string& value, Ttl ttl) = 0;
  // Atomically returns and deletes the value: of several concurrent takes of one key exactly one
  // gets the value, the others nullopt. Single-use authorization codes and launch handles.
  virtual std::optional<std::string> take(const std::string& key) = 0;
  // Increments the integer counter at `key` (absent -> 0) and returns the new value. The TTL is set
  // when the counter is created and not extended by later increments (a fixed window: "5 failures
  // within 15 minutes"). Throws std::invalid_argument if the key holds a non-integer value.
  virtual int64_t incr(const std::string& key, Ttl ttl) = 0;
  // Removes `key`; true if it existed.
  virtual bool remove(const std::string& key) = 0;
  // Implementation name for logs and metrics: "memory" or "redis".
  virtual std::string backend() const = 0;
};

struct InProcessCacheOptions {
  // Upper bound on live entries. When a shard is full, expired entries are purged first, then the
  // entry closest to expiry is evicted (it would be the first to go anyway). Lockout counters and
  // replay entries can therefore be lost under a flood larger than this; size it generously.
  size_t maxEntries = 100000;
  // Number of independently locked shards (rounded up to at least 1).
  size_t shards = 16;
  std::string keyPrefix;
};

// Thread-safe, sharded (a mutex per shard, chosen by key hash) in-memory cache with TTLs.
std::unique_ptr<Cache> makeInProcessCache(const InProcessCacheOptions& options = {});

struct RedisCacheOptions {
  // redis://[:password@]host[:port][/db]  or  redis://user:password@host:port/db (Redis 6 ACL).
  // Default port 6379, db 0. Throws std::invalid_argument for a malformed URL (the text names the
  // problem, never the password).
  std::string url;
  std::string keyPrefix = "hearth:";
  // Per-command socket timeout and connect timeout.
  std::chrono::milliseconds timeout{2000};
  // Idle connections kept in the pool; more are opened under load and closed when returned beyond
  // this number.
  size_t poolSize = 8;
};

// Redis-backed cache. Construction does not contact Redis (a node may start before Redis); the
// first operation connects. A connection that fails mid-command is discarded, the operation throws
// CacheUnavailable and the next operation opens a fresh connection (reconnect after a Redis restart).
// take() is one Lua script (GET + DEL), incr() one script (INCR + PEXPIRE on creation), so both are
// atomic in Redis; setIfAbsent is SET NX PX.
std::unique_ptr<Cache> makeRedisCache(const RedisCacheOptions& options);

// Parsed form of a redis:// URL (exposed for tests and diagnostics).
struct RedisUrl {
  std::string host;
  int port = 6379;
  int db = 0;
  std::string user;      // empty: AUTH with password only
  std::string password;  // empty: no AUTH
};
RedisUrl parseRedisUrl(const std::string& url);

}  // namespace hearth::auth
