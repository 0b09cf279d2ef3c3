#include "token_cache.h"

#include <chrono>

#include "hearth/auth/cache.h"

namespace hearth::server {

namespace {
int64_t nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

std::optional<auth::AccessContext> VerifiedTokenCache::find(const std::string& token, auth::Cache& denylist) {
  std::optional<auth::AccessContext> hit;
  {
    std::lock_guard lk(mu_);
    auto it = map_.find(token);
    if (it == map_.end()) return std::nullopt;
    if (it->second.ctx.expiresAt <= nowSeconds()) {
      map_.erase(it);
      return std::nullopt;
    }
    hit = it->second.ctx;
  }
  try {
    if (denylist.get("deny:" + hit->jti)) return std::nullopt;  // revoked: authenticate() says so
  } catch (const std::exception&) {
    return std::nullopt;  // denylist unavailable: let authenticate() apply its rule
  }
  return hit;
}

void VerifiedTokenCache::remember(const std::string& token, const auth::AccessContext& ctx) {
  using Kind = auth::AccessContext::Kind;
  if ((ctx.kind != Kind::User && ctx.kind != Kind::Backend) || ctx.expiresAt <= nowSeconds() || ctx.jti.empty()) return;
  std::lock_guard lk(mu_);
  if (map_.size() >= capacity_) map_.clear();
  map_[token] = Entry{ctx};
}

}  // namespace hearth::server
