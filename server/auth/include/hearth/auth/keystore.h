// KeyStore: Hearth's own JWS signing keys (access tokens, id_tokens), persisted and rotated.
//
// One active key per configured algorithm (default RS256 for id_tokens and access tokens, ES384
// offered as well). Keys live as PKCS#8 PEM files in `directory` (created 0700), one file per key,
// mode 0600, named "<alg>-<created epoch seconds>-<kid>.pem"; kid is the RFC 7638 thumbprint, so it
// is unique per key and stable across restarts. Files readable by group or others are refused
// (like ssh does): a key that may have leaked must be replaced, not used.
//
// Rotation: when the active key of an algorithm is older than rotateAfter, maintain() creates a
// new one, which becomes active at once. The previous key stops signing but stays published in
// verificationKeys()/jwks() for publishAfterRetire (set it to at least the longest token
// lifetime, so tokens signed just before rotation still verify); afterwards its file is deleted.
//
// Thread-safety: all members may be called concurrently (a shared_mutex guards the key list).
// Several Hearth nodes must share the directory (or the next session adds a shared store);
// otherwise tokens from one node do not verify on another.
// Errors: std::runtime_error for I/O and permission problems (text names the path, never key data).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "hearth/auth/jwk.h"

namespace hearth::auth {

struct KeyStoreOptions {
  std::string directory;
  std::vector<JwsAlg> algorithms{JwsAlg::RS256, JwsAlg::ES384};
  std::chrono::seconds rotateAfter{std::chrono::hours(24 * 30)};
  std::chrono::seconds publishAfterRetire{std::chrono::hours(24)};
  // Epoch seconds; empty = system clock. Tests inject a fake clock.
  std::function<int64_t()> clock;
};

class KeyStore {
 public:
  // Loads the keys in the directory and runs maintain() (so a fresh directory gets its keys).
  explicit KeyStore(KeyStoreOptions options);

  // The active key (with private part) for `alg`; throws std::invalid_argument for an algorithm
  // that is not configured.
  Jwk signingKey(JwsAlg alg) const;
  // Every key that verifies tokens: active and retired-but-published ones (public use only).
  std::vector<Jwk> verificationKeys() const;
  // The JWKS document of verificationKeys() (public members only).
  std::string jwks() const;

  // Makes a fresh active key for `alg` now (e.g. after a suspected compromise; then also shorten
  // publishAfterRetire or delete the old file by hand).
  void rotate(JwsAlg alg);
  // Rotates overdue keys and deletes keys past their publication window. Call it periodically
  // (e.g. hourly) and at startup.
  void maintain();

 private:
  struct Entry {
    JwsAlg alg;
    int64_t created;
    Jwk jwk;
    std::string path;
  };
  int64_t now() const;
  Entry create(JwsAlg alg, int64_t created);
  void maintainLocked();

  KeyStoreOptions options_;
  mutable std::shared_mutex mutex_;
  std::vector<Entry> entries_;  // sorted by created, per algorithm the last one is active
};

}  // namespace hearth::auth
