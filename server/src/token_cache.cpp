#include "token_cache.h"

#include <chrono>

#include "hearth/auth/cache.h"

namespace hearth::server {

namespace {
int64_t nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

std::shared_ptr<const Identity> VerifiedTokenCache::find(const std::string& key, auth::Cache& denylist) {
  std::shared_ptr<const Identity> hit;
  {
    std::lock_guard lk(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return nullptr;
    if (it->second->ctx.expiresAt <= nowSeconds()) {
      map_.erase(it);
      return nullptr;
    }
    hit = it->second;
  }
  try {
    if (denylist.get("deny:" + hit->ctx.jti)) return nullptr;  // revoked: authenticate() says so
  } catch (const std::exception&) {
    return nullptr;  // denylist unavailable: let authenticate() apply its rule
  }
  return hit;
}

std::shared_ptr<const Identity> VerifiedTokenCache::remember(const std::string& key, auth::AccessContext ctx) {
  using Kind = auth::AccessContext::Kind;
  auto id = std::make_shared<Identity>();
  id->ctx = std::move(ctx);
  const auth::AccessContext& c = id->ctx;
  if ((c.kind != Kind::User && c.kind != Kind::Backend) || c.expiresAt <= nowSeconds() || c.jti.empty()) return id;
  std::lock_guard lk(mu_);
  if (map_.size() >= capacity_) map_.clear();
  map_[key] = id;
  return id;
}

}  // namespace hearth::server
