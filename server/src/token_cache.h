#pragma once
// VerifiedTokenCache: remembers the AccessContext of access tokens that AuthRuntime::authenticate
// has verified, so a client sending the same JWT again does not pay for the signature check and
// the claims parsing on every request (issue 5 part 8: the JWT check must cost < 10% of a read).
//
// Contract:
//   - Keyed by the whole token text (never by a part of it: a cached entry can only be hit by the
//     exact bytes that were verified). Entries live until the token's exp, never longer, and at
//     most `capacity` of them are kept (the whole map is dropped when full: simple and bounded).
//   - Revocation still applies on every hit: the jti is looked up in the shared denylist
//     (AuthRuntime::cache(), key "deny:<jti>", the key AuthRuntime::denyToken writes). If that
//     cache is unavailable, the hit is not used and the caller falls back to authenticate(), which
//     applies the node-local denylist and the fail-open/fail-closed rule.
//   - Only User and Backend contexts are cached (Service tokens are cheap to check already).
// Thread-safe (one mutex; the critical sections are a map lookup or insert).
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "hearth/auth/access.h"

namespace hearth::auth {
class Cache;
}

namespace hearth::server {

class VerifiedTokenCache {
 public:
  explicit VerifiedTokenCache(size_t capacity = 10000) : capacity_(capacity) {}

  // The cached context for `token` if it is present, unexpired and not revoked; nullopt otherwise
  // (also when the denylist cannot be consulted).
  std::optional<auth::AccessContext> find(const std::string& token, auth::Cache& denylist);
  void remember(const std::string& token, const auth::AccessContext& ctx);

 private:
  struct Entry {
    auth::AccessContext ctx;
  };
  const size_t capacity_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> map_;
};

}  // namespace hearth::server
