#include "hearth/auth/password.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <charconv>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

#include "hearth/auth/base64.h"

namespace hearth::auth {
namespace {

struct Parsed {
  PasswordParams params;
  std::string salt;
  std::string hash;
};

void checkRange(const PasswordParams& p) {
  if (p.logN < 14 || p.logN > 20 || p.r < 1 || p.r > 32 || p.p < 1 || p.p > 16 || p.saltBytes < 16 ||
      p.saltBytes > 64 || p.keyBytes < 32 || p.keyBytes > 64)
    throw std::invalid_argument("password hash parameters out of range");
}

// scrypt(password, salt) -> keyBytes bytes; nullopt if OpenSSL refuses.
std::optional<std::string> derive(std::string_view password, std::string_view salt, const PasswordParams& p) {
  std::unique_ptr<EVP_KDF, decltype(&EVP_KDF_free)> kdf(EVP_KDF_fetch(nullptr, "SCRYPT", nullptr), EVP_KDF_free);
  if (!kdf) return std::nullopt;
  std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)> ctx(EVP_KDF_CTX_new(kdf.get()), EVP_KDF_CTX_free);
  if (!ctx) return std::nullopt;
  uint64_t n = uint64_t(1) << p.logN;
  uint32_t r = uint32_t(p.r), par = uint32_t(p.p);
  // Room for N=2^20, r=32 (the accepted maximum) plus slack: 128 * r * N bytes.
  uint64_t maxmem = 128ull * r * n + (16ull << 20);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, const_cast<char*>(password.data()),
                                        password.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(salt.data()), salt.size()),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &par),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
      OSSL_PARAM_construct_end()};
  std::string out(p.keyBytes, '\0');
  // An empty password is passed as a zero-length octet string; OpenSSL accepts it.
  if (EVP_KDF_derive(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), out.size(), params) != 1)
    return std::nullopt;
  return out;
}

bool parseInt(std::string_view s, int& out) {
  if (s.empty() || s.size() > 3) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    size_t pos = s.find(sep, start);
    parts.push_back(s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return parts;
}

// "$scrypt$ln=15,r=8,p=1$salt$hash" -> parts; nullopt if anything is off.
std::optional<Parsed> parse(std::string_view encoded) {
  if (encoded.size() > 512) return std::nullopt;
  auto parts = split(encoded, '$');
  if (parts.size() != 5 || !parts[0].empty() || parts[1] != "scrypt") return std::nullopt;
  auto kv = split(parts[2], ',');
  if (kv.size() != 3) return std::nullopt;
  Parsed out;
  if (kv[0].substr(0, 3) != "ln=" || !parseInt(kv[0].substr(3), out.params.logN)) return std::nullopt;
  if (kv[1].substr(0, 2) != "r=" || !parseInt(kv[1].substr(2), out.params.r)) return std::nullopt;
  if (kv[2].substr(0, 2) != "p=" || !parseInt(kv[2].substr(2), out.params.p)) return std::nullopt;
  auto salt = base64NoPadDecode(parts[3]);
  auto hash = base64NoPadDecode(parts[4]);
  if (!salt || !hash) return std::nullopt;
  out.params.saltBytes = salt->size();
  out.params.keyBytes = hash->size();
  try {
    checkRange(out.params);
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
  out.salt = std::move(*salt);
  out.hash = std::move(*hash);
  return out;
}

}  // namespace

std::string hashPassword(std::string_view password, const PasswordParams& params) {
  checkRange(params);
  std::string salt(params.saltBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), int(salt.size())) != 1)
    throw std::runtime_error("password hashing: no random bytes available");
  auto key = derive(password, salt, params);
  if (!key) throw std::runtime_error("password hashing: scrypt failed");
  return "$scrypt$ln=" + std::to_string(params.logN) + ",r=" + std::to_string(params.r) +
         ",p=" + std::to_string(params.p) + "$" + base64NoPadEncode(salt) + "$" + base64NoPadEncode(*key);
}

bool verifyPassword(std::string_view password, std::string_view encoded) {
  auto parsed = parse(encoded);
  if (!parsed) return false;
  auto key = derive(password, parsed->salt, parsed->params);
  if (!key) return false;
  return constantTimeEquals(*key, parsed->hash);
}

bool passwordNeedsRehash(std::string_view encoded, const PasswordParams& current) {
  auto parsed = parse(encoded);
  if (!parsed) return true;
  const auto& p = parsed->params;
  return p.logN != current.logN || p.r != current.r || p.p != current.p || p.saltBytes != current.saltBytes ||
         p.keyBytes != current.keyBytes;
}

void burnPasswordCheck(std::string_view password) {
  // A hash of a random password made once per process with the default parameters.
  static const std::string dummy = [] {
    unsigned char junk[16];
    RAND_bytes(junk, sizeof junk);
    return hashPassword(std::string_view(reinterpret_cast<char*>(junk), sizeof junk));
  }();
  (void)verifyPassword(password, dummy);
}

bool constantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace hearth::auth
