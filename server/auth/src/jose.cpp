// JWK import/export, JWS sign/verify and claims validation on OpenSSL 3 EVP APIs.
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <ctime>
#include <set>

#include "hearth/auth/base64.h"
#include "hearth/auth/jwt.h"

namespace hearth::auth {
namespace {

constexpr size_t kP384Bytes = 48;
constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 8192;

[[noreturn]] void fail(JoseErrorReason r, const std::string& text) { throw JoseError(r, text); }

template <typename T, void (*F)(T*)>
struct Free {
  void operator()(T* p) const { F(p); }
};
using BnPtr = std::unique_ptr<BIGNUM, Free<BIGNUM, BN_free>>;
using BioPtr = std::unique_ptr<BIO, Free<BIO, BIO_free_all>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Free<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Free<EVP_MD_CTX, EVP_MD_CTX_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, Free<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, Free<OSSL_PARAM, OSSL_PARAM_free>>;
using EcSigPtr = std::unique_ptr<ECDSA_SIG, Free<ECDSA_SIG, ECDSA_SIG_free>>;

PKeyPtr wrap(EVP_PKEY* k) { return PKeyPtr(k, EVP_PKEY_free); }

// Parses a JSON object, refusing duplicate member names (two "alg" members must not let one
// component read one value and another component the other).
void parseObject(rapidjson::Document& d, std::string_view text, const char* what) {
  d.Parse(text.data(), text.size());
  if (d.HasParseError() || !d.IsObject()) fail(JoseErrorReason::Malformed, std::string(what) + " is not a JSON object");
  std::set<std::string> seen;
  for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it) {
    if (!seen.insert(std::string(it->name.GetString(), it->name.GetStringLength())).second)
      fail(JoseErrorReason::Malformed, std::string(what) + " has a duplicate member");
  }
}

std::optional<std::string> optString(const rapidjson::Value& obj, const char* name, const char* what) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) return std::nullopt;
  if (!it->value.IsString()) fail(JoseErrorReason::Malformed, std::string(what) + ": \"" + name + "\" must be a string");
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

std::string b64member(const rapidjson::Value& obj, const char* name) {
  auto s = optString(obj, name, "JWK");
  if (!s) fail(JoseErrorReason::Malformed, std::string("JWK: missing \"") + name + "\"");
  auto bytes = base64urlDecode(*s);
  if (!bytes || bytes->empty()) fail(JoseErrorReason::Malformed, std::string("JWK: \"") + name + "\" is not base64url");
  return *bytes;
}

std::string bnBytes(const EVP_PKEY* key, const char* param, size_t padTo = 0) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, param, &raw) != 1) fail(JoseErrorReason::Internal, "cannot read key parameter");
  BnPtr bn(raw);
  size_t len = padTo ? padTo : size_t(BN_num_bytes(bn.get()));
  std::string out(len, '\0');
  if (BN_bn2binpad(bn.get(), reinterpret_cast<unsigned char*>(out.data()), int(len)) < 0)
    fail(JoseErrorReason::Internal, "cannot encode key parameter");
  return out;
}

bool isRsa(const EVP_PKEY* k) { return EVP_PKEY_is_a(k, "RSA"); }
bool isP384(const EVP_PKEY* k) {
  if (!EVP_PKEY_is_a(k, "EC")) return false;
  char group[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1) return false;
  return std::string(group, len) == "secp384r1";
}

PKeyPtr fromData(const char* type, OSSL_PARAM_BLD* bld) {
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
    fail(JoseErrorReason::Malformed, std::string("JWK: not a valid ") + type + " public key");
  PKeyPtr key = wrap(raw);
  PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1)
    fail(JoseErrorReason::Malformed, std::string("JWK: not a valid ") + type + " public key");
  return key;
}

Jwk jwkFromValue(const rapidjson::Value& v) {
  if (!v.IsObject()) fail(JoseErrorReason::Malformed, "JWK is not a JSON object");
  for (const char* priv : {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}) {
    if (v.HasMember(priv)) fail(JoseErrorReason::Malformed, "JWK contains private key material");
  }
  auto kty = optString(v, "kty", "JWK");
  if (!kty) fail(JoseErrorReason::Malformed, "JWK: missing \"kty\"");
  Jwk jwk;
  jwk.kid = optString(v, "kid", "JWK").value_or("");
  jwk.alg = optString(v, "alg", "JWK").value_or("");
  jwk.use = optString(v, "use", "JWK").value_or("");
  if (!jwk.use.empty() && jwk.use != "sig") fail(JoseErrorReason::KeyMismatch, "JWK: \"use\" is not \"sig\"");
  if (!jwk.alg.empty()) parseAlg(jwk.alg);  // throws UnsupportedAlgorithm
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld) fail(JoseErrorReason::Internal, "out of memory");
  if (*kty == "RSA") {
    std::string n = b64member(v, "n"), e = b64member(v, "e");
    BnPtr bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), int(n.size()), nullptr));
    BnPtr be(BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), int(e.size()), nullptr));
    if (!bn || !be || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn.get()) ||
        !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, be.get()))
      fail(JoseErrorReason::Internal, "out of memory");
    jwk.key = fromData("RSA", bld.get());
    if (EVP_PKEY_get_bits(jwk.key.get()) < kMinRsaBits) fail(JoseErrorReason::KeyMismatch, "JWK: RSA key shorter than 2048 bits");
    // Verification cost grows with the modulus; a client has no reason to exceed 8192 bits.
    if (EVP_PKEY_get_bits(jwk.key.get()) > kMaxRsaBits) fail(JoseErrorReason::KeyMismatch, "JWK: RSA key longer than 8192 bits");
  } else if (*kty == "EC") {
    if (optString(v, "crv", "JWK").value_or("") != "P-384") fail(JoseErrorReason::KeyMismatch, "JWK: only curve P-384 is supported");
    std::string x = b64member(v, "x"), y = b64member(v, "y");
    if (x.size() != kP384Bytes || y.size() != kP384Bytes) fail(JoseErrorReason::Malformed, "JWK: P-384 coordinates must be 48 bytes");
    std::string point = "\x04" + x + y;
    if (!OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "secp384r1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()))
      fail(JoseErrorReason::Internal, "out of memory");
    jwk.key = fromData("EC", bld.get());
  } else {
    fail(JoseErrorReason::KeyMismatch, "JWK: unsupported key type");
  }
  return jwk;
}

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
void put(Writer& w, const char* k, const std::string& v) {
  w.Key(k);
  w.String(v.data(), rapidjson::SizeType(v.size()));
}

void writePublicJwk(Writer& w, const Jwk& jwk) {
  const EVP_PKEY* k = jwk.key.get();
  w.StartObject();
  if (isRsa(k)) {
    put(w, "kty", "RSA");
    put(w, "n", base64urlEncode(bnBytes(k, OSSL_PKEY_PARAM_RSA_N)));
    put(w, "e", base64urlEncode(bnBytes(k, OSSL_PKEY_PARAM_RSA_E)));
  } else if (isP384(k)) {
    put(w, "kty", "EC");
    put(w, "crv", "P-384");
    put(w, "x", base64urlEncode(bnBytes(k, OSSL_PKEY_PARAM_EC_PUB_X, kP384Bytes)));
    put(w, "y", base64urlEncode(bnBytes(k, OSSL_PKEY_PARAM_EC_PUB_Y, kP384Bytes)));
  } else {
    fail(JoseErrorReason::KeyMismatch, "unsupported key type");
  }
  put(w, "use", "sig");
  if (!jwk.alg.empty()) put(w, "alg", jwk.alg);
  if (!jwk.kid.empty()) put(w, "kid", jwk.kid);
  w.EndObject();
}

const EVP_MD* digestFor(JwsAlg alg) { return alg == JwsAlg::RS256 ? EVP_sha256() : EVP_sha384(); }

std::string derToRaw(const std::string& der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  EcSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, long(der.size())));
  if (!sig) fail(JoseErrorReason::Internal, "ECDSA signature conversion failed");
  const BIGNUM *r = nullptr, *s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string raw(2 * kP384Bytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(r, out, kP384Bytes) < 0 || BN_bn2binpad(s, out + kP384Bytes, kP384Bytes) < 0)
    fail(JoseErrorReason::Internal, "ECDSA signature conversion failed");
  return raw;
}

// R||S -> DER; nullopt if the length is wrong.
std::optional<std::string> rawToDer(const std::string& raw) {
  if (raw.size() != 2 * kP384Bytes) return std::nullopt;
  auto* in = reinterpret_cast<const unsigned char*>(raw.data());
  BnPtr r(BN_bin2bn(in, kP384Bytes, nullptr)), s(BN_bin2bn(in + kP384Bytes, kP384Bytes, nullptr));
  EcSigPtr sig(ECDSA_SIG_new());
  if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) fail(JoseErrorReason::Internal, "out of memory");
  r.release();
  s.release();
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) fail(JoseErrorReason::Internal, "ECDSA signature conversion failed");
  std::string out(reinterpret_cast<char*>(der), size_t(len));
  OPENSSL_free(der);
  return out;
}

bool verifySignature(JwsAlg alg, EVP_PKEY* key, std::string_view input, const std::string& signature) {
  std::string sig = signature;
  if (alg == JwsAlg::ES384) {
    auto der = rawToDer(signature);
    if (!der) return false;
    sig = *der;
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, digestFor(alg), nullptr, key) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
}

struct Compact {
  std::string_view header, payload, signature;
};
Compact splitCompact(std::string_view compact) {
  if (compact.size() > 64 * 1024) fail(JoseErrorReason::Malformed, "token too large");
  auto d1 = compact.find('.');
  auto d2 = d1 == std::string_view::npos ? d1 : compact.find('.', d1 + 1);
  if (d2 == std::string_view::npos || compact.find('.', d2 + 1) != std::string_view::npos)
    fail(JoseErrorReason::Malformed, "not a compact JWS (three parts expected)");
  return {compact.substr(0, d1), compact.substr(d1 + 1, d2 - d1 - 1), compact.substr(d2 + 1)};
}

std::string decodePart(std::string_view part, const char* what) {
  auto bytes = base64urlDecode(part);
  if (!bytes) fail(JoseErrorReason::Malformed, std::string(what) + " is not base64url");
  return *bytes;
}

}  // namespace

std::string algName(JwsAlg alg) {
  switch (alg) {
    case JwsAlg::RS256: return "RS256";
    case JwsAlg::RS384: return "RS384";
    case JwsAlg::ES384: return "ES384";
  }
  return "";
}

JwsAlg parseAlg(std::string_view name) {
  if (name == "RS256") return JwsAlg::RS256;
  if (name == "RS384") return JwsAlg::RS384;
  if (name == "ES384") return JwsAlg::ES384;
  fail(JoseErrorReason::UnsupportedAlgorithm, "unsupported JWS algorithm");
}

std::string Jwk::kty() const { return key && isRsa(key.get()) ? "RSA" : key && EVP_PKEY_is_a(key.get(), "EC") ? "EC" : ""; }

bool Jwk::fits(JwsAlg a) const {
  if (!key) return false;
  if (!alg.empty() && alg != algName(a)) return false;
  if (a == JwsAlg::ES384) return isP384(key.get());
  return isRsa(key.get()) && EVP_PKEY_get_bits(key.get()) >= kMinRsaBits;
}

Jwk parseJwk(std::string_view json) {
  rapidjson::Document d;
  parseObject(d, json, "JWK");
  return jwkFromValue(d);
}

std::vector<Jwk> parseJwks(std::string_view json) {
  rapidjson::Document d;
  parseObject(d, json, "JWKS");
  auto keys = d.FindMember("keys");
  if (keys == d.MemberEnd() || !keys->value.IsArray()) fail(JoseErrorReason::Malformed, "JWKS: missing \"keys\" array");
  std::vector<Jwk> out;
  for (const auto& v : keys->value.GetArray()) {
    if (!v.IsObject()) fail(JoseErrorReason::Malformed, "JWKS: a key is not an object");
    auto kty = v.FindMember("kty");
    bool supported = kty != v.MemberEnd() && kty->value.IsString() &&
                     (std::string(kty->value.GetString()) == "RSA" || std::string(kty->value.GetString()) == "EC");
    auto use = v.FindMember("use");
    bool encryption = use != v.MemberEnd() && use->value.IsString() && std::string(use->value.GetString()) == "enc";
    if (!supported || encryption) continue;
    out.push_back(jwkFromValue(v));
  }
  return out;
}

std::string publicJwkJson(const Jwk& key) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  writePublicJwk(w, key);
  return buf.GetString();
}

std::string jwksJson(const std::vector<Jwk>& keys) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("keys");
  w.StartArray();
  for (const auto& k : keys) writePublicJwk(w, k);
  w.EndArray();
  w.EndObject();
  return buf.GetString();
}

std::string jwkThumbprint(const EVP_PKEY* key) {
  // RFC 7638: the required members only, lexicographic order, no whitespace.
  std::string canonical;
  if (isRsa(key)) {
    canonical = "{\"e\":\"" + base64urlEncode(bnBytes(key, OSSL_PKEY_PARAM_RSA_E)) + "\",\"kty\":\"RSA\",\"n\":\"" +
                base64urlEncode(bnBytes(key, OSSL_PKEY_PARAM_RSA_N)) + "\"}";
  } else if (isP384(key)) {
    canonical = "{\"crv\":\"P-384\",\"kty\":\"EC\",\"x\":\"" +
                base64urlEncode(bnBytes(key, OSSL_PKEY_PARAM_EC_PUB_X, kP384Bytes)) + "\",\"y\":\"" +
                base64urlEncode(bnBytes(key, OSSL_PKEY_PARAM_EC_PUB_Y, kP384Bytes)) + "\"}";
  } else {
    fail(JoseErrorReason::KeyMismatch, "unsupported key type");
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(canonical.data(), canonical.size(), md, &len, EVP_sha256(), nullptr) != 1)
    fail(JoseErrorReason::Internal, "digest failed");
  return base64urlEncode(std::string_view(reinterpret_cast<char*>(md), len));
}

PKeyPtr loadPem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), int(pem.size())));
  if (!bio) fail(JoseErrorReason::Internal, "out of memory");
  if (EVP_PKEY* k = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)) return wrap(k);
  BioPtr bio2(BIO_new_mem_buf(pem.data(), int(pem.size())));
  if (EVP_PKEY* k = PEM_read_bio_PUBKEY(bio2.get(), nullptr, nullptr, nullptr)) return wrap(k);
  fail(JoseErrorReason::Malformed, "not a PEM private or public key");
}

namespace {
std::string bioText(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, size_t(len));
}
}  // namespace

std::string privateKeyPem(const EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    fail(JoseErrorReason::Internal, "cannot encode private key");
  return bioText(bio.get());
}

std::string publicKeyPem(const EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) fail(JoseErrorReason::Internal, "cannot encode public key");
  return bioText(bio.get());
}

PKeyPtr generateKey(JwsAlg alg) {
  EVP_PKEY* k = alg == JwsAlg::ES384 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384")
                                     : EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t(2048));
  if (!k) fail(JoseErrorReason::Internal, "key generation failed");
  return wrap(k);
}

std::string signJws(JwsAlg alg, const Jwk& key, std::string_view payloadJson, std::string_view typ) {
  if (!key.fits(alg)) fail(JoseErrorReason::KeyMismatch, "signing key does not fit the algorithm");
  {
    rapidjson::Document d;
    parseObject(d, payloadJson, "JWT payload");
  }
  rapidjson::StringBuffer hb;
  Writer w(hb);
  w.StartObject();
  put(w, "alg", algName(alg));
  if (!typ.empty()) put(w, "typ", std::string(typ));
  if (!key.kid.empty()) put(w, "kid", key.kid);
  w.EndObject();
  std::string input = base64urlEncode(hb.GetString()) + "." + base64urlEncode(payloadJson);
  MdCtxPtr ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, digestFor(alg), nullptr, key.key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1)
    fail(JoseErrorReason::Internal, "signing failed");
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1)
    fail(JoseErrorReason::Internal, "signing failed");
  sig.resize(len);
  if (alg == JwsAlg::ES384) sig = derToRaw(sig);
  return input + "." + base64urlEncode(sig);
}

VerifiedJws verifyJws(std::string_view compact, const std::vector<Jwk>& keys, const std::set<JwsAlg>& allowed) {
  Compact parts = splitCompact(compact);
  VerifiedJws out{};
  out.headerJson = decodePart(parts.header, "JWS header");
  rapidjson::Document h;
  parseObject(h, out.headerJson, "JWS header");
  auto algText = optString(h, "alg", "JWS header");
  if (!algText) fail(JoseErrorReason::Malformed, "JWS header: missing \"alg\"");
  out.alg = parseAlg(*algText);  // none, HS*, ... -> UnsupportedAlgorithm
  if (!allowed.count(out.alg)) fail(JoseErrorReason::UnsupportedAlgorithm, "JWS algorithm not allowed here");
  if (h.HasMember("crit")) fail(JoseErrorReason::Malformed, "JWS header: \"crit\" extensions are not supported");
  out.kid = optString(h, "kid", "JWS header").value_or("");
  out.typ = optString(h, "typ", "JWS header").value_or("");
  out.jku = optString(h, "jku", "JWS header").value_or("");
  std::string signature = decodePart(parts.signature, "JWS signature");
  out.payloadJson = decodePart(parts.payload, "JWS payload");

  const std::string_view input = compact.substr(0, parts.header.size() + 1 + parts.payload.size());
  bool candidate = false, kidFound = false;
  for (const auto& k : keys) {
    if (!out.kid.empty() && k.kid != out.kid) continue;
    kidFound = true;
    if (!k.fits(out.alg)) continue;
    candidate = true;
    if (verifySignature(out.alg, k.key.get(), input, signature)) {
      rapidjson::Document p;
      parseObject(p, out.payloadJson, "JWS payload");
      return out;
    }
  }
  if (!out.kid.empty() && !kidFound) fail(JoseErrorReason::KeyNotFound, "no key with the token's kid");
  if (!candidate) fail(JoseErrorReason::KeyMismatch, "no key of the token's algorithm");
  fail(JoseErrorReason::BadSignature, "signature verification failed");
}

std::string unverifiedPayload(std::string_view compact) {
  Compact parts = splitCompact(compact);
  std::string payload = decodePart(parts.payload, "JWS payload");
  rapidjson::Document p;
  parseObject(p, payload, "JWS payload");
  return payload;
}

std::optional<std::string> Claims::stringClaim(std::string_view name) const {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) return std::nullopt;
  auto it = d.FindMember(rapidjson::Value(name.data(), rapidjson::SizeType(name.size())));
  if (it == d.MemberEnd() || !it->value.IsString()) return std::nullopt;
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

namespace {
std::optional<int64_t> numericDate(const rapidjson::Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) return std::nullopt;
  if (!it->value.IsNumber()) fail(JoseErrorReason::Malformed, std::string("claim \"") + name + "\" is not a number");
  double v = it->value.GetDouble();
  if (!std::isfinite(v) || v < 0 || v > 1e15) fail(JoseErrorReason::Malformed, std::string("claim \"") + name + "\" out of range");
  return int64_t(v);
}
}  // namespace

Claims validateClaims(std::string_view payloadJson, const ClaimsPolicy& policy) {
  rapidjson::Document d;
  parseObject(d, payloadJson, "JWT claims");
  Claims c;
  c.json = std::string(payloadJson);
  c.iss = optString(d, "iss", "JWT claims").value_or("");
  c.sub = optString(d, "sub", "JWT claims").value_or("");
  c.jti = optString(d, "jti", "JWT claims").value_or("");
  if (auto aud = d.FindMember("aud"); aud != d.MemberEnd()) {
    if (aud->value.IsString()) {
      c.aud.emplace_back(aud->value.GetString(), aud->value.GetStringLength());
    } else if (aud->value.IsArray()) {
      for (const auto& a : aud->value.GetArray()) {
        if (!a.IsString()) fail(JoseErrorReason::Malformed, "claim \"aud\" must hold strings");
        c.aud.emplace_back(a.GetString(), a.GetStringLength());
      }
    } else {
      fail(JoseErrorReason::Malformed, "claim \"aud\" must be a string or an array");
    }
  }
  c.exp = numericDate(d, "exp");
  c.nbf = numericDate(d, "nbf");
  c.iat = numericDate(d, "iat");

  const int64_t now = policy.now ? policy.now : int64_t(std::time(nullptr));
  const int64_t leeway = policy.leeway.count();
  if (policy.requireExp && !c.exp) fail(JoseErrorReason::MissingClaim, "claim \"exp\" is required");
  if (policy.requireIat && !c.iat) fail(JoseErrorReason::MissingClaim, "claim \"iat\" is required");
  if (policy.requireJti && c.jti.empty()) fail(JoseErrorReason::MissingClaim, "claim \"jti\" is required");
  if (policy.requireSub && c.sub.empty()) fail(JoseErrorReason::MissingClaim, "claim \"sub\" is required");
  if (c.exp && now - leeway >= *c.exp) fail(JoseErrorReason::Expired, "token expired");
  if (c.nbf && *c.nbf > now + leeway) fail(JoseErrorReason::NotYetValid, "token not yet valid");
  if (c.iat && *c.iat > now + leeway) fail(JoseErrorReason::IssuedInFuture, "token issued in the future");
  if (!policy.issuer.empty() && c.iss != policy.issuer) fail(JoseErrorReason::BadIssuer, "unexpected issuer");
  if (!policy.audiences.empty()) {
    bool ok = false;
    for (const auto& a : c.aud)
      for (const auto& want : policy.audiences) ok = ok || a == want;
    if (!ok) fail(JoseErrorReason::BadAudience, "token not meant for this audience");
  }
  if (policy.maxLifetime) {
    if (!c.exp) fail(JoseErrorReason::MissingClaim, "claim \"exp\" is required");
    int64_t start = c.iat ? *c.iat : now;
    if (*c.exp - start > policy.maxLifetime->count()) fail(JoseErrorReason::LifetimeTooLong, "token lifetime too long");
  }
  return c;
}

}  // namespace hearth::auth
