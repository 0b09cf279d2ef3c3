#pragma once
// VerifiedTokenCache: remembers the AccessContext of access tokens that AuthRuntime::authenticate
// has verified, so a client sending the same JWT again does not pay for the signature check and
// the claims parsing on every request (issue 5 part 8: the JWT check must cost < 10% of a read).
//
// Contract:
//   - Keyed by the FHIR base and the whole token text (never by a part of it: a cached entry can
//     only be hit by the exact bytes that were verified, for the base whose aud/iss they passed).
//     Entries live until the token's exp, never longer, and at most `capacity` of them are kept
//     (the whole map is dropped when full: simple and bounded).
//   - Revocation still applies on every hit: the jti is looked up in the shared denylist
//     (AuthRuntime::cache(), key "deny:<jti>", the key AuthRuntime::denyToken writes). If that
//     cache is unavailable, the hit is not used and the caller falls back to authenticate(), which
//     applies the node-local denylist and the fail-open/fail-closed rule.
//   - Only User and Backend contexts are cached (Service tokens are cheap to check already).
//   - A cached Identity also memoizes the policy decisions made for it (AccessControl::check with
//     no search parameters): the context is immutable, so the decision for (type, interaction) is too.
// Thread-safe (one mutex per cache and per identity; the critical sections are map operations).
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "hearth/auth/access.h"

namespace hearth::auth {
class Cache;
}

namespace hearth::server {

struct Grant;

// An authenticated caller, shared by the requests that present the same token.
struct Identity {
  auth::AccessContext ctx;
  // (type, interaction) -> the grant, or nullopt with the denial reason.
  struct Memo {
    std::shared_ptr<const Grant> grant;  // null: denied
    std::string reason;                  // the denial's reason
  };
  mutable std::mutex mu;
  mutable std::map<std::pair<std::string, unsigned>, Memo, std::less<>> decisions;
};

class VerifiedTokenCache {
 public:
  explicit VerifiedTokenCache(size_t capacity = 10000) : capacity_(capacity) {}

  // The cached identity for `key` if present, unexpired and not revoked; null otherwise (also when
  // the denylist cannot be consulted).
  std::shared_ptr<const Identity> find(const std::string& key, auth::Cache& denylist);
  // Caches a verified context (User/Backend with a jti and a future exp); returns the shared
  // identity to use for this request.
  std::shared_ptr<const Identity> remember(const std::string& key, auth::AccessContext ctx);

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const Identity>> map_;
};

}  // namespace hearth::server
