// Cache conformance suite (cache.h): one set of cases run against InProcessCache and RedisCache.
// RedisCacheTest runs when HEARTH_TEST_REDIS_URL is set (test.sh starts a redis-server and sets it);
// with HEARTH_REQUIRE_REDIS=1 a missing URL is a failure. Every Redis test uses a fresh random key
// prefix and short TTLs, so runs never see each other's keys. RedisOutageTest starts its own
// password-protected redis-server, kills it (SIGKILL) mid-test and restarts it.
#include <cppunit/TestCaller.h>
#include <cppunit/TestSuite.h>
#include <cppunit/extensions/HelperMacros.h>
#include <cppunit/extensions/TestFactoryRegistry.h>

#include <atomic>
#include <iostream>
#include <thread>

#include "hearth/auth/cache.h"
#include "test_support.h"

using namespace hearth::auth;
using namespace std::chrono_literals;

class CacheConformance : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(CacheConformance);
  CPPUNIT_TEST(testGetSetRemove);
  CPPUNIT_TEST(testBinaryValues);
  CPPUNIT_TEST(testTtlExpiry);
  CPPUNIT_TEST(testSetReplacesValueAndTtl);
  CPPUNIT_TEST(testSetIfAbsent);
  CPPUNIT_TEST(testTakeIsSingleUse);
  CPPUNIT_TEST(testConcurrentTakeHasOneWinner);
  CPPUNIT_TEST(testConcurrentSetIfAbsentHasOneWinner);
  CPPUNIT_TEST(testIncrFixedWindow);
  CPPUNIT_TEST(testIncrConcurrent);
  CPPUNIT_TEST(testIncrOnTextRefused);
  CPPUNIT_TEST(testNonPositiveTtlRefused);
  CPPUNIT_TEST(testPrefixesIsolate);
  CPPUNIT_TEST_SUITE_END_ABSTRACT();

 protected:
  // A cache whose keys live under `prefix` (unique per test for Redis).
  virtual std::unique_ptr<Cache> make(const std::string& prefix) = 0;
  std::string prefix_;
  std::unique_ptr<Cache> cache_;

 public:
  void setUp() override {
    prefix_ = "t" + authtest::randomHex() + ":";
    cache_ = make(prefix_);
  }
  void tearDown() override { cache_.reset(); }

  void testGetSetRemove() {
    CPPUNIT_ASSERT(!cache_->get("session:a"));
    cache_->set("session:a", "alice", 10s);
    CPPUNIT_ASSERT_EQUAL(std::string("alice"), cache_->get("session:a").value_or("?"));
    CPPUNIT_ASSERT(cache_->remove("session:a"));
    CPPUNIT_ASSERT(!cache_->remove("session:a"));
    CPPUNIT_ASSERT(!cache_->get("session:a"));
  }

  void testBinaryValues() {
    const std::string v("a\0b\xff\n c", 7);
    cache_->set(std::string("k\0ey", 4), v, 10s);
    CPPUNIT_ASSERT(cache_->get(std::string("k\0ey", 4)) == v);
    CPPUNIT_ASSERT(!cache_->get("k"));  // the NUL is part of the key, not its end
    CPPUNIT_ASSERT(cache_->take(std::string("k\0ey", 4)) == v);
    cache_->set("empty", "", 10s);
    CPPUNIT_ASSERT(cache_->get("empty") == std::string());  // present but empty, not absent
  }

  void testTtlExpiry() {
    cache_->set("short", "x", 150ms);
    cache_->set("long", "y", 10s);
    CPPUNIT_ASSERT(cache_->get("short"));
    std::this_thread::sleep_for(400ms);
    CPPUNIT_ASSERT(!cache_->get("short"));
    CPPUNIT_ASSERT(!cache_->take("short"));
    CPPUNIT_ASSERT(!cache_->remove("short"));
    CPPUNIT_ASSERT_EQUAL(std::string("y"), cache_->get("long").value_or("?"));
    // An expired key is free again for setIfAbsent (a jti can be reused after its exp).
    cache_->set("jti:1", "1", 150ms);
    CPPUNIT_ASSERT(!cache_->setIfAbsent("jti:1", "1", 10s));
    std::this_thread::sleep_for(400ms);
    CPPUNIT_ASSERT(cache_->setIfAbsent("jti:1", "2", 10s));
    CPPUNIT_ASSERT_EQUAL(std::string("2"), cache_->get("jti:1").value_or("?"));
  }

  void testSetReplacesValueAndTtl() {
    cache_->set("k", "old", 150ms);
    cache_->set("k", "new", 10s);
    std::this_thread::sleep_for(400ms);
    CPPUNIT_ASSERT_EQUAL(std::string("new"), cache_->get("k").value_or("?"));
  }

  void testSetIfAbsent() {
    CPPUNIT_ASSERT(cache_->setIfAbsent("jti:abc", "first", 10s));
    CPPUNIT_ASSERT(!cache_->setIfAbsent("jti:abc", "second", 10s));
    CPPUNIT_ASSERT_EQUAL(std::string("first"), cache_->get("jti:abc").value_or("?"));
  }

  void testTakeIsSingleUse() {
    cache_->set("code:1", "grant", 10s);
    CPPUNIT_ASSERT_EQUAL(std::string("grant"), cache_->take("code:1").value_or("?"));
    CPPUNIT_ASSERT(!cache_->take("code:1"));
    CPPUNIT_ASSERT(!cache_->get("code:1"));
  }

  void testConcurrentTakeHasOneWinner() {
    for (int round = 0; round < 20; ++round) {
      const std::string key = "code:race" + std::to_string(round);
      cache_->set(key, "grant" + std::to_string(round), 10s);
      std::atomic<int> ready{0}, winners{0};
      std::atomic<bool> go{false};
      std::vector<std::thread> threads;
      std::vector<std::string> got(16);
      for (int t = 0; t < 16; ++t) {
        threads.emplace_back([&, t] {
          ++ready;
          while (!go) std::this_thread::yield();
          if (auto v = cache_->take(key)) {
            ++winners;
            got[size_t(t)] = *v;
          }
        });
      }
      while (ready < 16) std::this_thread::yield();
      go = true;
      for (auto& th : threads) th.join();
      CPPUNIT_ASSERT_EQUAL(1, winners.load());
      int matching = 0;
      for (const auto& g : got) matching += g == "grant" + std::to_string(round);
      CPPUNIT_ASSERT_EQUAL(1, matching);
    }
  }

  void testConcurrentSetIfAbsentHasOneWinner() {
    std::atomic<int> winners{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 16; ++t) {
      threads.emplace_back([&, t] {
        while (!go) std::this_thread::yield();
        if (cache_->setIfAbsent("jti:race", std::to_string(t), 10s)) ++winners;
      });
    }
    go = true;
    for (auto& th : threads) th.join();
    CPPUNIT_ASSERT_EQUAL(1, winners.load());
  }

  void testIncrFixedWindow() {
    CPPUNIT_ASSERT_EQUAL(int64_t(1), cache_->incr("lock:bob", 500ms));
    CPPUNIT_ASSERT_EQUAL(int64_t(2), cache_->incr("lock:bob", 500ms));
    std::this_thread::sleep_for(300ms);
    // Later increments do not extend the window set at creation.
    CPPUNIT_ASSERT_EQUAL(int64_t(3), cache_->incr("lock:bob", 500ms));
    CPPUNIT_ASSERT_EQUAL(std::string("3"), cache_->get("lock:bob").value_or("?"));
    std::this_thread::sleep_for(400ms);
    CPPUNIT_ASSERT(!cache_->get("lock:bob"));
    CPPUNIT_ASSERT_EQUAL(int64_t(1), cache_->incr("lock:bob", 500ms));
  }

  void testIncrConcurrent() {
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
      threads.emplace_back([&] {
        for (int i = 0; i < 25; ++i) cache_->incr("lock:many", 10s);
      });
    for (auto& th : threads) th.join();
    CPPUNIT_ASSERT_EQUAL(std::string("200"), cache_->get("lock:many").value_or("?"));
  }

  void testIncrOnTextRefused() {
    cache_->set("text", "not a number", 10s);
    CPPUNIT_ASSERT_THROW(cache_->incr("text", 10s), std::invalid_argument);
    CPPUNIT_ASSERT_EQUAL(std::string("not a number"), cache_->get("text").value_or("?"));
  }

  void testNonPositiveTtlRefused() {
    CPPUNIT_ASSERT_THROW(cache_->set("k", "v", 0ms), std::invalid_argument);
    CPPUNIT_ASSERT_THROW(cache_->setIfAbsent("k", "v", -5ms), std::invalid_argument);
    CPPUNIT_ASSERT_THROW(cache_->incr("k", 0ms), std::invalid_argument);
    CPPUNIT_ASSERT(!cache_->get("k"));
  }

  void testPrefixesIsolate() {
    auto other = make(prefix_ + "other:");
    cache_->set("shared", "mine", 10s);
    CPPUNIT_ASSERT(!other->get("shared"));
    other->set("shared", "theirs", 10s);
    CPPUNIT_ASSERT_EQUAL(std::string("mine"), cache_->get("shared").value_or("?"));
  }
};

class InProcessCacheTest : public CacheConformance {
  CPPUNIT_TEST_SUB_SUITE(InProcessCacheTest, CacheConformance);
  CPPUNIT_TEST(testBoundedSize);
  CPPUNIT_TEST_SUITE_END();

 protected:
  std::unique_ptr<Cache> make(const std::string& prefix) override {
    InProcessCacheOptions o;
    o.keyPrefix = prefix;
    return makeInProcessCache(o);
  }

 public:
  void testBoundedSize() {
    InProcessCacheOptions o;
    o.maxEntries = 64;
    o.shards = 4;
    auto c = makeInProcessCache(o);
    c->set("keep", "long-lived", 1h);
    for (int i = 0; i < 1000; ++i) c->set("k" + std::to_string(i), "v", 1min);
    int present = 0;
    for (int i = 0; i < 1000; ++i) present += c->get("k" + std::to_string(i)) ? 1 : 0;
    CPPUNIT_ASSERT(present <= 64);
    CPPUNIT_ASSERT(present >= 16);  // the newest survive
    CPPUNIT_ASSERT(c->get("k999"));
    // Eviction picks the entry closest to expiry, so the long-lived one survives the flood.
    CPPUNIT_ASSERT_EQUAL(std::string("long-lived"), c->get("keep").value_or("?"));
    CPPUNIT_ASSERT_EQUAL(std::string("memory"), c->backend());
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(InProcessCacheTest);

// ---- Redis ----------------------------------------------------------------------------------

class RedisCacheTest : public CacheConformance {
  CPPUNIT_TEST_SUB_SUITE(RedisCacheTest, CacheConformance);
  CPPUNIT_TEST(testDatabaseSelection);
  CPPUNIT_TEST(testUnreachableIsUnavailable);
  CPPUNIT_TEST_SUITE_END();

 protected:
  std::unique_ptr<Cache> make(const std::string& prefix) override {
    RedisCacheOptions o;
    o.url = authtest::env("HEARTH_TEST_REDIS_URL");
    o.keyPrefix = prefix;
    return makeRedisCache(o);
  }

 public:
  void testDatabaseSelection() {
    RedisUrl u = parseRedisUrl(authtest::env("HEARTH_TEST_REDIS_URL"));
    RedisCacheOptions o;
    o.keyPrefix = prefix_;
    o.url = "redis://" + u.host + ":" + std::to_string(u.port) + "/7";
    auto db7 = makeRedisCache(o);
    db7->set("where", "seven", 10s);
    CPPUNIT_ASSERT(!cache_->get("where"));  // cache_ is db 0 (or the URL's db)
    CPPUNIT_ASSERT_EQUAL(std::string("seven"), db7->get("where").value_or("?"));
    CPPUNIT_ASSERT_EQUAL(std::string("redis"), db7->backend());
  }

  void testUnreachableIsUnavailable() {
    RedisCacheOptions o;
    o.url = "redis://127.0.0.1:" + std::to_string(authtest::freePort());
    o.timeout = 500ms;
    auto c = makeRedisCache(o);  // construction does not connect
    CPPUNIT_ASSERT_THROW(c->get("x"), CacheUnavailable);
    CPPUNIT_ASSERT_THROW(c->take("x"), CacheUnavailable);
    CPPUNIT_ASSERT_THROW(c->incr("x", 1s), CacheUnavailable);
  }
};

class RedisRequired : public CppUnit::TestFixture {
 public:
  void testRedisConfigured() {
    CPPUNIT_FAIL("HEARTH_REQUIRE_REDIS=1 but HEARTH_TEST_REDIS_URL is not set (test.sh starts a redis-server)");
  }
};

// Outage: our own redis-server with a password, killed with SIGKILL and restarted on the same port.
class RedisOutageTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(RedisOutageTest);
  CPPUNIT_TEST(testKilledThenRestarted);
  CPPUNIT_TEST(testWrongPasswordIsUnavailableWithoutEchoingIt);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testKilledThenRestarted() {
    const int port = authtest::freePort();
    authtest::RedisProcess redis(port, "pw-" + authtest::randomHex());
    redis.start();
    RedisCacheOptions o;
    o.url = redis.url(3);
    o.timeout = 500ms;
    o.poolSize = 4;
    auto c = makeRedisCache(o);
    // Several pooled connections exist when Redis dies.
    std::vector<std::thread> warm;
    for (int i = 0; i < 4; ++i) warm.emplace_back([&, i] { c->set("k" + std::to_string(i), "v", 30s); });
    for (auto& t : warm) t.join();
    CPPUNIT_ASSERT_EQUAL(std::string("v"), c->get("k0").value_or("?"));

    redis.kill();
    CPPUNIT_ASSERT_THROW(c->get("k0"), CacheUnavailable);
    CPPUNIT_ASSERT_THROW(c->set("k0", "v", 1s), CacheUnavailable);
    CPPUNIT_ASSERT_THROW(c->setIfAbsent("jti:x", "v", 1s), CacheUnavailable);
    CPPUNIT_ASSERT_THROW(c->take("code:x"), CacheUnavailable);
    CPPUNIT_ASSERT_THROW(c->incr("lock:x", 1s), CacheUnavailable);
    CPPUNIT_ASSERT_THROW(c->remove("k0"), CacheUnavailable);

    redis.start();  // same port and password; data is gone (no persistence)
    CPPUNIT_ASSERT(!c->get("k0"));
    c->set("code:new", "grant", 30s);
    CPPUNIT_ASSERT_EQUAL(std::string("grant"), c->take("code:new").value_or("?"));
    CPPUNIT_ASSERT_EQUAL(int64_t(1), c->incr("lock:x", 30s));
  }

  void testWrongPasswordIsUnavailableWithoutEchoingIt() {
    const int port = authtest::freePort();
    authtest::RedisProcess redis(port, "right-" + authtest::randomHex());
    redis.start();
    RedisCacheOptions o;
    o.url = "redis://:WrongSecret42@127.0.0.1:" + std::to_string(port) + "/0";
    auto c = makeRedisCache(o);
    try {
      c->get("x");
      CPPUNIT_FAIL("expected CacheUnavailable");
    } catch (const CacheUnavailable& e) {
      CPPUNIT_ASSERT(std::string(e.what()).find("WrongSecret42") == std::string::npos);
    }
  }
};

class RedisSuiteFactory : public CppUnit::TestFactory {
 public:
  CppUnit::Test* makeTest() override {
    auto* all = new CppUnit::TestSuite("Redis");
    if (!authtest::env("HEARTH_TEST_REDIS_URL").empty()) {
      all->addTest(RedisCacheTest::suite());
      all->addTest(RedisOutageTest::suite());
    } else if (authtest::env("HEARTH_REQUIRE_REDIS") == "1") {
      all->addTest(new CppUnit::TestCaller<RedisRequired>("RedisCacheTest::testRedisConfigured",
                                                          &RedisRequired::testRedisConfigured));
    } else {
      std::cerr << "RedisCacheTest: SKIPPED (set HEARTH_TEST_REDIS_URL; test.sh does)\n";
    }
    return all;
  }
};

namespace {
struct RegisterRedisSuite {
  RegisterRedisSuite() { CppUnit::TestFactoryRegistry::getRegistry().registerFactory(&factory); }
  ~RegisterRedisSuite() { CppUnit::TestFactoryRegistry::getRegistry().unregisterFactory(&factory); }
  RedisSuiteFactory factory;
};
RegisterRedisSuite registerRedisSuite;
}  // namespace

// ---- URL parsing ----------------------------------------------------------------------------

class RedisUrlTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(RedisUrlTest);
  CPPUNIT_TEST(testForms);
  CPPUNIT_TEST(testErrorsDoNotEchoPassword);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testForms() {
    RedisUrl u = parseRedisUrl("redis://cache.local");
    CPPUNIT_ASSERT_EQUAL(std::string("cache.local"), u.host);
    CPPUNIT_ASSERT_EQUAL(6379, u.port);
    CPPUNIT_ASSERT_EQUAL(0, u.db);
    CPPUNIT_ASSERT(u.password.empty());
    u = parseRedisUrl("redis://:p%40ss@10.0.0.5:6380/4");
    CPPUNIT_ASSERT_EQUAL(std::string("10.0.0.5"), u.host);
    CPPUNIT_ASSERT_EQUAL(6380, u.port);
    CPPUNIT_ASSERT_EQUAL(4, u.db);
    CPPUNIT_ASSERT_EQUAL(std::string("p@ss"), u.password);
    CPPUNIT_ASSERT(u.user.empty());
    u = parseRedisUrl("redis://hearth:s3cret@[::1]:7000/1");
    CPPUNIT_ASSERT_EQUAL(std::string("::1"), u.host);
    CPPUNIT_ASSERT_EQUAL(7000, u.port);
    CPPUNIT_ASSERT_EQUAL(std::string("hearth"), u.user);
    CPPUNIT_ASSERT_EQUAL(std::string("s3cret"), u.password);
  }

  void testErrorsDoNotEchoPassword() {
    for (const char* bad : {"http://x", "redis://", "redis://:TopSecret@host:99999", "redis://:TopSecret@host:abc",
                            "redis://:TopSecret@host/notadb", "redis://:TopSecret@[::1"}) {
      try {
        parseRedisUrl(bad);
        CPPUNIT_FAIL(std::string("accepted ") + bad);
      } catch (const std::invalid_argument& e) {
        CPPUNIT_ASSERT(std::string(e.what()).find("TopSecret") == std::string::npos);
      }
    }
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(RedisUrlTest);
