// RedisCache: a small pool of blocking hiredis connections. Every command goes through run(), which
// borrows a connection, sends one command (binary-safe argv) and classifies the outcome:
//   I/O or protocol error -> the connection is dropped (with every idle one: after a Redis restart
//   they are all stale) and, if it was a reused connection, the command is retried once on a fresh
//   one; a second failure throws CacheUnavailable.
//   Retrying is safe in the direction that matters: a lost reply of take() loses the code (the
//   client restarts the flow), of setIfAbsent() reports a replay (request refused), of incr()
//   counts a failure twice (earlier lockout). Nothing is ever granted twice.
#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <vector>

#include "hearth/auth/cache.h"

namespace hearth::auth {

namespace {

std::string percentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

int parseNumber(const std::string& s, int lo, int hi, const char* what) {
  if (s.empty() || s.size() > 9 || !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }))
    throw std::invalid_argument(std::string("redis url: bad ") + what);
  int v = std::stoi(s);
  if (v < lo || v > hi) throw std::invalid_argument(std::string("redis url: ") + what + " out of range");
  return v;
}

}  // namespace

RedisUrl parseRedisUrl(const std::string& url) {
  const std::string scheme = "redis://";
  if (url.rfind(scheme, 0) != 0) throw std::invalid_argument("redis url: must start with redis://");
  std::string rest = url.substr(scheme.size());
  RedisUrl r;
  // Userinfo ends at the LAST '@' (a password may contain '@' unencoded).
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    std::string userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = userinfo.find(':');
    if (colon == std::string::npos) {
      r.password = percentDecode(userinfo);  // redis://secret@host: password only
    } else {
      r.user = percentDecode(userinfo.substr(0, colon));
      r.password = percentDecode(userinfo.substr(colon + 1));
    }
  }
  std::string hostport = rest;
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    hostport = rest.substr(0, slash);
    std::string db = rest.substr(slash + 1);
    if (auto q = db.find('?'); q != std::string::npos) db = db.substr(0, q);
    if (!db.empty()) r.db = parseNumber(db, 0, 100000, "database number");
  }
  if (!hostport.empty() && hostport[0] == '[') {  // [::1]:6379
    auto close = hostport.find(']');
    if (close == std::string::npos) throw std::invalid_argument("redis url: unterminated IPv6 address");
    r.host = hostport.substr(1, close - 1);
    std::string after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') throw std::invalid_argument("redis url: bad port");
      r.port = parseNumber(after.substr(1), 1, 65535, "port");
    }
  } else if (auto colon = hostport.rfind(':'); colon != std::string::npos) {
    r.host = hostport.substr(0, colon);
    r.port = parseNumber(hostport.substr(colon + 1), 1, 65535, "port");
  } else {
    r.host = hostport;
  }
  if (r.host.empty()) throw std::invalid_argument("redis url: missing host");
  return r;
}

namespace {

// take: GET then DEL in one script, atomic on the server (works on Redis < 6.2 without GETDEL).
const char* kTakeScript =
    "local v = redis.call('GET', KEYS[1]) if v then redis.call('DEL', KEYS[1]) end return v";
// incr: the TTL is set only when the counter is created (fixed window).
const char* kIncrScript =
    "local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end "
    "return n";

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;

// A reply with type REDIS_REPLY_ERROR: Redis understood and refused the command.
struct RedisError {
  std::string message;
};

class RedisCache final : public Cache {
 public:
  explicit RedisCache(const RedisCacheOptions& o) : url_(parseRedisUrl(o.url)), options_(o) {}

  std::optional<std::string> get(const std::string& key) override {
    Reply r = run({"GET", k(key)});
    return stringOrNil(r.get());
  }

  void set(const std::string& key, const std::string& value, Ttl ttl) override {
    checkTtl(ttl);
    run({"SET", k(key), value, "PX", std::to_string(ttl.count())});
  }

  bool setIfAbsent(const std::string& key, const std::string& value, Ttl ttl) override {
    checkTtl(ttl);
    Reply r = run({"SET", k(key), value, "PX", std::to_string(ttl.count()), "NX"});
    return r->type == REDIS_REPLY_STATUS;  // "OK"; nil when the key existed
  }

  std::optional<std::string> take(const std::string& key) override {
    Reply r = run({"EVAL", kTakeScript, "1", k(key)});
    return stringOrNil(r.get());
  }

  int64_t incr(const std::string& key, Ttl ttl) override {
    checkTtl(ttl);
    Reply r;
    try {
      r = run({"EVAL", kIncrScript, "1", k(key), std::to_string(ttl.count())}, true);
    } catch (const RedisError& e) {
      if (e.message.find("not an integer") != std::string::npos)
        throw std::invalid_argument("cache: incr on a value that is not an integer");
      throw CacheUnavailable("redis: command refused");
    }
    if (r->type != REDIS_REPLY_INTEGER) throw CacheUnavailable("redis: unexpected reply to INCR");
    return r->integer;
  }

  bool remove(const std::string& key) override {
    Reply r = run({"DEL", k(key)});
    if (r->type != REDIS_REPLY_INTEGER) throw CacheUnavailable("redis: unexpected reply to DEL");
    return r->integer > 0;
  }

  std::string backend() const override { return "redis"; }

 private:
  static void checkTtl(Ttl ttl) {
    if (ttl.count() <= 0) throw std::invalid_argument("cache: TTL must be positive");
  }

  std::string k(const std::string& key) const { return options_.keyPrefix + key; }

  static std::optional<std::string> stringOrNil(redisReply* r) {
    if (r->type == REDIS_REPLY_NIL) return std::nullopt;
    if (r->type == REDIS_REPLY_STRING) return std::string(r->str, r->len);
    throw CacheUnavailable("redis: unexpected reply type");
  }

  timeval tv() const {
    timeval t{};
    t.tv_sec = options_.timeout.count() / 1000;
    t.tv_usec = static_cast<suseconds_t>((options_.timeout.count() % 1000) * 1000);
    return t;
  }

  // A fresh, authenticated connection with the database selected; throws CacheUnavailable.
  Context connect() {
    Context c(redisConnectWithTimeout(url_.host.c_str(), url_.port, tv()));
    if (!c || c->err) throw CacheUnavailable("redis: cannot connect");
    if (redisSetTimeout(c.get(), tv()) != REDIS_OK) throw CacheUnavailable("redis: cannot set timeout");
    if (!url_.password.empty()) {
      std::vector<std::string> auth{"AUTH"};
      if (!url_.user.empty()) auth.push_back(url_.user);
      auth.push_back(url_.password);
      Reply r = command(c.get(), auth);
      // The reply text is not echoed: it could help an attacker probe; the password never is.
      if (!r || r->type == REDIS_REPLY_ERROR) throw CacheUnavailable("redis: authentication failed");
    }
    if (url_.db != 0) {
      Reply r = command(c.get(), {"SELECT", std::to_string(url_.db)});
      if (!r || r->type == REDIS_REPLY_ERROR) throw CacheUnavailable("redis: cannot select database");
    }
    return c;
  }

  static Reply command(redisContext* c, const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    return Reply(static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data())));
  }

  // Runs one command; see the file comment for the retry rule. Error replies throw RedisError when
  // `errorsToCaller`, else CacheUnavailable.
  Reply run(const std::vector<std::string>& args, bool errorsToCaller = false) {
    for (int attempt = 0;; ++attempt) {
      Context c;
      bool reused = false;
      {
        std::lock_guard lock(mutex_);
        if (!idle_.empty()) {
          c = std::move(idle_.back());
          idle_.pop_back();
          reused = true;
        }
      }
      if (!c) c = connect();
      Reply r = command(c.get(), args);
      if (!r || c->err) {
        {
          std::lock_guard lock(mutex_);
          idle_.clear();  // the others are likely stale too
        }
        if (reused && attempt == 0) continue;
        throw CacheUnavailable("redis: connection lost");
      }
      release(std::move(c));
      if (r->type == REDIS_REPLY_ERROR) {
        std::string msg(r->str ? r->str : "", r->str ? r->len : 0);
        if (errorsToCaller) throw RedisError{msg};
        throw CacheUnavailable("redis: command refused");
      }
      return r;
    }
  }

  void release(Context c) {
    std::lock_guard lock(mutex_);
    if (idle_.size() < options_.poolSize) idle_.push_back(std::move(c));
  }

  RedisUrl url_;
  RedisCacheOptions options_;
  std::mutex mutex_;
  std::vector<Context> idle_;
};

}  // namespace

std::unique_ptr<Cache> makeRedisCache(const RedisCacheOptions& options) {
  return std::make_unique<RedisCache>(options);
}

}  // namespace hearth::auth
