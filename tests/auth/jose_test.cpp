// jwk.h / jwt.h / keystore.h: base64url, JWS sign/verify (RS256, RS384, ES384), refusal of the
// classic JWT attacks, JWK/JWKS import/export, claims validation, the signing-key store; plus
// cross-checks against the openssl CLI (RS384) and the npm jose library (all three algorithms).
#include <cppunit/TestSuite.h>
#include <cppunit/extensions/HelperMacros.h>
#include <cppunit/extensions/TestFactoryRegistry.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <functional>

#include <fstream>
#include <iostream>
#include <sstream>

#include "hearth/auth/base64.h"
#include "hearth/auth/jwt.h"
#include "hearth/auth/keystore.h"
#include "test_support.h"

using namespace hearth::auth;
namespace fs = std::filesystem;

namespace {

Jwk makeKey(JwsAlg alg, const std::string& kid) {
  Jwk k;
  k.key = generateKey(alg);
  k.kid = kid;
  return k;
}

// The public half only, as a verifier would hold it.
Jwk publicOnly(const Jwk& k) {
  Jwk p = parseJwk(publicJwkJson(k));
  return p;
}

std::string header(const std::string& json) { return base64urlEncode(json); }

JoseErrorReason reasonOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const JoseError& e) {
    return e.reason();
  }
  CPPUNIT_FAIL("expected JoseError");
  return JoseErrorReason::Internal;
}

const std::set<JwsAlg> kAll{JwsAlg::RS256, JwsAlg::RS384, JwsAlg::ES384};
const std::string kPayload = R"({"iss":"https://hearth.test","sub":"u1","aud":"https://hearth.test/fhir","exp":4102444800})";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
void spit(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary);
  out << data;
}

}  // namespace

class Base64Test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(Base64Test);
  CPPUNIT_TEST(testVectors);
  CPPUNIT_TEST(testStrictDecoding);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testVectors() {
    // RFC 4648 §10 vectors, unpadded.
    const std::pair<const char*, const char*> v[] = {{"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"},
                                                     {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
    for (auto [plain, enc] : v) {
      CPPUNIT_ASSERT_EQUAL(std::string(enc), base64urlEncode(plain));
      CPPUNIT_ASSERT_EQUAL(std::string(plain), base64urlDecode(enc).value_or("?"));
    }
    CPPUNIT_ASSERT_EQUAL(std::string("-_8"), base64urlEncode("\xfb\xff"));
    CPPUNIT_ASSERT_EQUAL(std::string("+/8"), base64NoPadEncode("\xfb\xff"));
  }
  void testStrictDecoding() {
    for (const char* bad : {"Zg==", "Zh", "Z", "Zm9v!", "Zm 9v", "+/8", "Zm9vYg="}) CPPUNIT_ASSERT_MESSAGE(bad, !base64urlDecode(bad));
    CPPUNIT_ASSERT(!base64NoPadDecode("-_8"));
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(Base64Test);

class JwsTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(JwsTest);
  CPPUNIT_TEST(testRoundTripAllAlgorithms);
  CPPUNIT_TEST(testTamperingDetected);
  CPPUNIT_TEST(testAlgNoneRefused);
  CPPUNIT_TEST(testHmacWithPublicKeyRefused);
  CPPUNIT_TEST(testAlgKeyMismatch);
  CPPUNIT_TEST(testAllowedListEnforced);
  CPPUNIT_TEST(testKidSelection);
  CPPUNIT_TEST(testMalformedTokens);
  CPPUNIT_TEST(testEcdsaSignatureEncoding);
  CPPUNIT_TEST(testOpensslCliCrossCheck);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testRoundTripAllAlgorithms() {
    for (JwsAlg alg : {JwsAlg::RS256, JwsAlg::RS384, JwsAlg::ES384}) {
      Jwk k = makeKey(alg, "k-" + algName(alg));
      std::string token = signJws(alg, k, kPayload);
      VerifiedJws v = verifyJws(token, {publicOnly(k)}, kAll);
      CPPUNIT_ASSERT(v.alg == alg);
      CPPUNIT_ASSERT_EQUAL(kPayload, v.payloadJson);
      CPPUNIT_ASSERT_EQUAL(std::string("k-") + algName(alg), v.kid);
      CPPUNIT_ASSERT_EQUAL(std::string("JWT"), v.typ);
    }
  }

  void testTamperingDetected() {
    Jwk k = makeKey(JwsAlg::RS256, "k1");
    std::string token = signJws(JwsAlg::RS256, k, kPayload);
    auto d1 = token.find('.'), d2 = token.rfind('.');
    std::string forged = token.substr(0, d1 + 1) + base64urlEncode(R"({"iss":"https://hearth.test","sub":"admin","exp":4102444800})") +
                         token.substr(d2);
    CPPUNIT_ASSERT(reasonOf([&] { verifyJws(forged, {k}, kAll); }) == JoseErrorReason::BadSignature);
    Jwk other = makeKey(JwsAlg::RS256, "k1");  // same kid, different key
    CPPUNIT_ASSERT(reasonOf([&] { verifyJws(token, {publicOnly(other)}, kAll); }) == JoseErrorReason::BadSignature);
    std::string sigFlip = token;
    sigFlip[d2 + 5] = sigFlip[d2 + 5] == 'A' ? 'B' : 'A';
    CPPUNIT_ASSERT(reasonOf([&] { verifyJws(sigFlip, {k}, kAll); }) == JoseErrorReason::BadSignature);
  }

  void testAlgNoneRefused() {
    Jwk k = makeKey(JwsAlg::RS256, "k1");
    for (const char* h : {R"({"alg":"none"})", R"({"alg":"None","kid":"k1"})", R"({"alg":"NONE"})"}) {
      std::string token = header(h) + "." + base64urlEncode(kPayload) + ".";
      CPPUNIT_ASSERT(reasonOf([&] { verifyJws(token, {k}, kAll); }) == JoseErrorReason::UnsupportedAlgorithm);
    }
  }

  void testHmacWithPublicKeyRefused() {
    // The classic confusion: an attacker signs with HS256 using the server's public key as secret.
    Jwk k = makeKey(JwsAlg::RS256, "k1");
    std::string token = header(R"({"alg":"HS256","kid":"k1"})") + "." + base64urlEncode(kPayload) + "." +
                        base64urlEncode(std::string(32, 'x'));
    CPPUNIT_ASSERT(reasonOf([&] { verifyJws(token, {publicOnly(k)}, kAll); }) == JoseErrorReason::UnsupportedAlgorithm);
    CPPUNIT_ASSERT(reasonOf([] { parseAlg("HS384"); }) == JoseErrorReason::UnsupportedAlgorithm);
  }

  void testAlgKeyMismatch() {
    Jwk rsa = makeKey(JwsAlg::RS384, "r");
    Jwk ec = makeKey(JwsAlg::ES384, "e");
    CPPUNIT_ASSERT_THROW(signJws(JwsAlg::ES384, rsa, kPayload), JoseError);
    // A token claiming ES384 against RSA keys only.
    Jwk ecNoKid = ec;
    ecNoKid.kid.clear();
    std::string es = signJws(JwsAlg::ES384, ecNoKid, kPayload);
    CPPUNIT_ASSERT(reasonOf([&] { verifyJws(es, {publicOnly(rsa)}, kAll); }) == JoseErrorReason::KeyMismatch);
    // A JWK pinned to RS384 does not verify RS256 even with the right key material.
    Jwk pinned = publicOnly(rsa);
    pinned.alg = "RS384";
    Jwk rs256signer = rsa;
    std::string rs256 = signJws(JwsAlg::RS256, rs256signer, kPayload);
    CPPUNIT_ASSERT(reasonOf([&] { verifyJws(rs256, {pinned}, kAll); }) == JoseErrorReason::KeyMismatch);
  }

  void testAllowedListEnforced() {
    Jwk k = makeKey(JwsAlg::RS256, "k1");
    std::string token = signJws(JwsAlg::RS256, k, kPayload);
    // Backend-service assertions accept RS384/ES384 only.
    CPPUNIT_ASSERT(reasonOf([&] { verifyJws(token, {k}, {JwsAlg::RS384, JwsAlg::ES384}); }) ==
                   JoseErrorReason::UnsupportedAlgorithm);
  }

  void testKidSelection() {
    Jwk a = makeKey(JwsAlg::ES384, "a"), b = makeKey(JwsAlg::ES384, "b");
    std::string tb = signJws(JwsAlg::ES384, b, kPayload);
    CPPUNIT_ASSERT_EQUAL(std::string("b"), verifyJws(tb, {publicOnly(a), publicOnly(b)}, kAll).kid);
    CPPUNIT_ASSERT(reasonOf([&] { verifyJws(tb, {publicOnly(a)}, kAll); }) == JoseErrorReason::KeyNotFound);
    // Without kid, every fitting key is tried.
    Jwk nokid = b;
    nokid.kid.clear();
    std::string t = signJws(JwsAlg::ES384, nokid, kPayload);
    CPPUNIT_ASSERT(t.substr(0, t.find('.')) == base64urlEncode(R"({"alg":"ES384","typ":"JWT"})"));
    CPPUNIT_ASSERT_NO_THROW(verifyJws(t, {publicOnly(a), publicOnly(b)}, kAll));
  }

  void testMalformedTokens() {
    Jwk k = makeKey(JwsAlg::RS256, "k1");
    std::string good = signJws(JwsAlg::RS256, k, kPayload);
    std::string sig = good.substr(good.rfind('.'));
    const std::string p = base64urlEncode(kPayload);
    const std::vector<std::string> bad{
        "", "abc", "a.b", good + ".x", "!!.x.y",
        header(R"({"alg":"RS256","crit":["exp"]})") + "." + p + sig,
        header(R"({"alg":"RS256","alg":"none"})") + "." + p + sig,
        header(R"(["RS256"])") + "." + p + sig,
        header(R"({"alg":"RS256"})") + "." + base64urlEncode("[1,2]") + sig,
        header(R"({"alg":"RS256"})") + "." + p + "==" + sig,
        header(R"({"alg":256})") + "." + p + sig,
    };
    for (const auto& t : bad) {
      CPPUNIT_ASSERT_THROW_MESSAGE(t, verifyJws(t, {k}, kAll), JoseError);
    }
    CPPUNIT_ASSERT(reasonOf([&] { verifyJws(bad[5], {k}, kAll); }) == JoseErrorReason::Malformed);
    CPPUNIT_ASSERT(reasonOf([&] { verifyJws(bad[6], {k}, kAll); }) == JoseErrorReason::Malformed);
    CPPUNIT_ASSERT_THROW(signJws(JwsAlg::RS256, k, "not json"), JoseError);
  }

  void testEcdsaSignatureEncoding() {
    Jwk k = makeKey(JwsAlg::ES384, "e");
    for (int i = 0; i < 20; ++i) {  // short R or S values (leading zero bytes) must still be 48 bytes
      std::string t = signJws(JwsAlg::ES384, k, R"({"n":)" + std::to_string(i) + ",\"exp\":4102444800}");
      auto sig = base64urlDecode(t.substr(t.rfind('.') + 1));
      CPPUNIT_ASSERT(sig && sig->size() == 96);
      CPPUNIT_ASSERT_NO_THROW(verifyJws(t, {publicOnly(k)}, kAll));
      // A DER signature (what OpenSSL produces natively) is not a JWS ES384 signature.
      std::string truncated = t.substr(0, t.rfind('.') + 1) + base64urlEncode(sig->substr(0, 95));
      CPPUNIT_ASSERT(reasonOf([&] { verifyJws(truncated, {k}, kAll); }) == JoseErrorReason::BadSignature);
    }
  }

  void testOpensslCliCrossCheck() {
    fs::path dir = authtest::tempDir("cli");
    int st = -1;
    authtest::run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " + (dir / "k.pem").string() +
                      " 2>/dev/null && openssl pkey -in " + (dir / "k.pem").string() + " -pubout -out " +
                      (dir / "pub.pem").string(),
                  &st);
    CPPUNIT_ASSERT_EQUAL(0, st);
    // openssl signs, we verify (RS384 = RSASSA-PKCS1-v1_5 with SHA-384).
    std::string input = header(R"({"alg":"RS384","kid":"cli"})") + "." + base64urlEncode(kPayload);
    spit(dir / "in.txt", input);
    authtest::run("openssl dgst -sha384 -sign " + (dir / "k.pem").string() + " -out " + (dir / "sig.bin").string() + " " +
                      (dir / "in.txt").string(),
                  &st);
    CPPUNIT_ASSERT_EQUAL(0, st);
    Jwk pub;
    pub.kid = "cli";
    pub.key = loadPem(slurp(dir / "pub.pem"));
    std::string token = input + "." + base64urlEncode(slurp(dir / "sig.bin"));
    CPPUNIT_ASSERT_EQUAL(kPayload, verifyJws(token, {pub}, kAll).payloadJson);
    // We sign with openssl's key, openssl verifies.
    Jwk priv;
    priv.kid = "cli";
    priv.key = loadPem(slurp(dir / "k.pem"));
    std::string ours = signJws(JwsAlg::RS384, priv, kPayload);
    spit(dir / "in2.txt", ours.substr(0, ours.rfind('.')));
    spit(dir / "sig2.bin", *base64urlDecode(ours.substr(ours.rfind('.') + 1)));
    std::string out = authtest::run("openssl dgst -sha384 -verify " + (dir / "pub.pem").string() + " -signature " +
                                        (dir / "sig2.bin").string() + " " + (dir / "in2.txt").string(),
                                    &st);
    CPPUNIT_ASSERT_EQUAL(0, st);
    CPPUNIT_ASSERT(out.find("Verified OK") != std::string::npos);
    fs::remove_all(dir);
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(JwsTest);

class JwkTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(JwkTest);
  CPPUNIT_TEST(testRfc7638Thumbprint);
  CPPUNIT_TEST(testExportImportRoundTrip);
  CPPUNIT_TEST(testRefusedKeys);
  CPPUNIT_TEST(testJwks);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testRfc7638Thumbprint() {
    // RFC 7638 §3.1 example key and thumbprint.
    const std::string jwk =
        R"({"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"})";
    Jwk k = parseJwk(jwk);
    CPPUNIT_ASSERT_EQUAL(std::string("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"), jwkThumbprint(k.key.get()));
    CPPUNIT_ASSERT_EQUAL(std::string("2011-04-29"), k.kid);
    CPPUNIT_ASSERT_EQUAL(std::string("RSA"), k.kty());
    CPPUNIT_ASSERT(k.fits(JwsAlg::RS256) && !k.fits(JwsAlg::RS384) && !k.fits(JwsAlg::ES384));
  }

  void testExportImportRoundTrip() {
    for (JwsAlg alg : {JwsAlg::RS384, JwsAlg::ES384}) {
      Jwk k = makeKey(alg, "x");
      k.alg = algName(alg);
      std::string json = publicJwkJson(k);
      CPPUNIT_ASSERT(json.find("\"d\"") == std::string::npos);  // never private members
      Jwk back = parseJwk(json);
      CPPUNIT_ASSERT_EQUAL(jwkThumbprint(k.key.get()), jwkThumbprint(back.key.get()));
      CPPUNIT_ASSERT_EQUAL(json, publicJwkJson(back));
      CPPUNIT_ASSERT(EVP_PKEY_eq(k.key.get(), back.key.get()) == 1);
      if (alg == JwsAlg::ES384) CPPUNIT_ASSERT(json.find("\"crv\":\"P-384\"") != std::string::npos);
      // PEM round trip.
      CPPUNIT_ASSERT(EVP_PKEY_eq(k.key.get(), loadPem(privateKeyPem(k.key.get())).get()) == 1);
      CPPUNIT_ASSERT(EVP_PKEY_eq(k.key.get(), loadPem(publicKeyPem(k.key.get())).get()) == 1);
    }
  }

  void testRefusedKeys() {
    Jwk ec = makeKey(JwsAlg::ES384, "e");
    std::string json = publicJwkJson(ec);
    // Private material.
    std::string withD = json.substr(0, json.size() - 1) + R"(,"d":"AAAA"})";
    CPPUNIT_ASSERT_THROW(parseJwk(withD), JoseError);
    // A point not on the curve (y changed).
    auto y = json.find("\"y\":\"") + 5;
    std::string offCurve = json;
    offCurve[y + 3] = offCurve[y + 3] == 'A' ? 'B' : 'A';
    CPPUNIT_ASSERT_THROW(parseJwk(offCurve), JoseError);
    // P-256, short coordinates, 1024-bit RSA, symmetric keys, encryption keys, alg none.
    CPPUNIT_ASSERT_THROW(parseJwk(R"({"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"})"), JoseError);
    CPPUNIT_ASSERT_THROW(parseJwk(R"({"kty":"EC","crv":"P-384","x":"AAAA","y":"AAAA"})"), JoseError);
    CPPUNIT_ASSERT_THROW(parseJwk(R"({"kty":"oct","k":"c2VjcmV0"})"), JoseError);
    fs::path dir = authtest::tempDir("rsa1024");
    int st = -1;
    authtest::run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out " + (dir / "k.pem").string() + " 2>/dev/null", &st);
    CPPUNIT_ASSERT_EQUAL(0, st);
    Jwk weak;
    weak.key = loadPem(slurp(dir / "k.pem"));
    fs::remove_all(dir);
    CPPUNIT_ASSERT(!weak.fits(JwsAlg::RS256));
    CPPUNIT_ASSERT_THROW(parseJwk(publicJwkJson(weak)), JoseError);
    std::string enc = json;
    enc.replace(enc.find("\"use\":\"sig\""), 11, "\"use\":\"enc\"");
    CPPUNIT_ASSERT_THROW(parseJwk(enc), JoseError);
    std::string none = json.substr(0, json.size() - 1) + R"(,"alg":"none"})";
    CPPUNIT_ASSERT_THROW(parseJwk(none), JoseError);
  }

  void testJwks() {
    Jwk a = makeKey(JwsAlg::RS384, "a"), b = makeKey(JwsAlg::ES384, "b");
    std::string set = jwksJson({a, b});
    auto keys = parseJwks(set);
    CPPUNIT_ASSERT_EQUAL(size_t(2), keys.size());
    CPPUNIT_ASSERT_EQUAL(std::string("a"), keys[0].kid);
    CPPUNIT_ASSERT_EQUAL(std::string("EC"), keys[1].kty());
    // Unsupported key types and encryption keys are skipped, not fatal.
    std::string mixed = R"({"keys":[{"kty":"oct","k":"AAAA"},{"kty":"OKP","crv":"Ed25519","x":"AAAA"},)" +
                        publicJwkJson(b) + "]}";
    CPPUNIT_ASSERT_EQUAL(size_t(1), parseJwks(mixed).size());
    CPPUNIT_ASSERT_THROW(parseJwks(R"({"keys":{}})"), JoseError);
    CPPUNIT_ASSERT_THROW(parseJwks(R"([])"), JoseError);
    CPPUNIT_ASSERT_THROW(parseJwks(R"({"keys":[{"kty":"RSA","n":"!!","e":"AQAB"}]})"), JoseError);
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(JwkTest);

class ClaimsTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(ClaimsTest);
  CPPUNIT_TEST(testTimes);
  CPPUNIT_TEST(testIssuerAudience);
  CPPUNIT_TEST(testLifetimeAndRequired);
  CPPUNIT_TEST(testMalformed);
  CPPUNIT_TEST_SUITE_END();

  static JoseErrorReason check(const std::string& json, const ClaimsPolicy& p) {
    return reasonOf([&] { validateClaims(json, p); });
  }

 public:
  void testTimes() {
    ClaimsPolicy p;
    p.now = 1000000;
    p.leeway = std::chrono::seconds(30);
    CPPUNIT_ASSERT_NO_THROW(validateClaims(R"({"exp":1000100})", p));
    CPPUNIT_ASSERT_NO_THROW(validateClaims(R"({"exp":999980})", p));  // within leeway
    CPPUNIT_ASSERT(check(R"({"exp":999970})", p) == JoseErrorReason::Expired);
    CPPUNIT_ASSERT(check(R"({"exp":1000100,"nbf":1000031})", p) == JoseErrorReason::NotYetValid);
    CPPUNIT_ASSERT_NO_THROW(validateClaims(R"({"exp":1000100,"nbf":1000030})", p));
    CPPUNIT_ASSERT(check(R"({"exp":1000100,"iat":1000031})", p) == JoseErrorReason::IssuedInFuture);
    CPPUNIT_ASSERT_NO_THROW(validateClaims(R"({"exp":1000100.7,"iat":999999.5})", p));
    CPPUNIT_ASSERT(check(R"({"sub":"x"})", p) == JoseErrorReason::MissingClaim);
  }

  void testIssuerAudience() {
    ClaimsPolicy p;
    p.now = 1000000;
    p.issuer = "https://hearth.test";
    p.audiences = {"https://hearth.test/auth/token", "https://hearth.test"};
    const std::string exp = R"("exp":1000100)";
    Claims c = validateClaims(R"({"iss":"https://hearth.test","aud":"https://hearth.test",)" + exp + R"(,"scope":"a b"})", p);
    CPPUNIT_ASSERT_EQUAL(size_t(1), c.aud.size());
    CPPUNIT_ASSERT_EQUAL(std::string("a b"), c.stringClaim("scope").value_or("?"));
    CPPUNIT_ASSERT(!c.stringClaim("exp"));
    c = validateClaims(R"({"iss":"https://hearth.test","aud":["other","https://hearth.test/auth/token"],)" + exp + "}", p);
    CPPUNIT_ASSERT_EQUAL(size_t(2), c.aud.size());
    CPPUNIT_ASSERT(check(R"({"iss":"https://evil.test","aud":"https://hearth.test",)" + exp + "}", p) == JoseErrorReason::BadIssuer);
    CPPUNIT_ASSERT(check(R"({"aud":"https://hearth.test",)" + exp + "}", p) == JoseErrorReason::BadIssuer);
    CPPUNIT_ASSERT(check(R"({"iss":"https://hearth.test","aud":["other"],)" + exp + "}", p) == JoseErrorReason::BadAudience);
    CPPUNIT_ASSERT(check(R"({"iss":"https://hearth.test",)" + exp + "}", p) == JoseErrorReason::BadAudience);
    CPPUNIT_ASSERT(check(R"({"iss":"https://hearth.test","aud":"https://hearth.test/",)" + exp + "}", p) ==
                   JoseErrorReason::BadAudience);  // exact match, no normalisation
  }

  void testLifetimeAndRequired() {
    ClaimsPolicy p;  // a SMART client assertion: exp <= 5 min, jti required
    p.now = 1000000;
    p.maxLifetime = std::chrono::seconds(300);
    p.requireJti = true;
    p.requireSub = true;
    CPPUNIT_ASSERT_NO_THROW(validateClaims(R"({"sub":"c","jti":"j","iat":1000000,"exp":1000300})", p));
    CPPUNIT_ASSERT(check(R"({"sub":"c","jti":"j","iat":1000000,"exp":1000301})", p) == JoseErrorReason::LifetimeTooLong);
    CPPUNIT_ASSERT(check(R"({"sub":"c","jti":"j","exp":1000400})", p) == JoseErrorReason::LifetimeTooLong);
    CPPUNIT_ASSERT(check(R"({"sub":"c","exp":1000100})", p) == JoseErrorReason::MissingClaim);
    CPPUNIT_ASSERT(check(R"({"jti":"j","exp":1000100})", p) == JoseErrorReason::MissingClaim);
    p.requireIat = true;
    CPPUNIT_ASSERT(check(R"({"sub":"c","jti":"j","exp":1000100})", p) == JoseErrorReason::MissingClaim);
  }

  void testMalformed() {
    ClaimsPolicy p;
    p.now = 1000000;
    for (const char* bad : {R"({"exp":"1000100"})", R"({"exp":1000100,"aud":5})", R"({"exp":1000100,"aud":[5]})",
                            R"({"exp":1000100,"iss":1})", R"({"exp":-1})", "[]", "{", R"({"exp":1,"exp":1000100})"})
      CPPUNIT_ASSERT_MESSAGE(bad, check(bad, p) == JoseErrorReason::Malformed);
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(ClaimsTest);

class KeyStoreTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(KeyStoreTest);
  CPPUNIT_TEST(testGeneratesAndPersists);
  CPPUNIT_TEST(testRotation);
  CPPUNIT_TEST(testRefusesExposedKeyFile);
  CPPUNIT_TEST_SUITE_END();

  fs::path dir_;
  int64_t now_ = 1800000000;

  KeyStoreOptions options() {
    KeyStoreOptions o;
    o.directory = (dir_ / "keys").string();
    o.rotateAfter = std::chrono::hours(24 * 30);
    o.publishAfterRetire = std::chrono::hours(2);
    o.clock = [this] { return now_; };
    return o;
  }

 public:
  void setUp() override { dir_ = authtest::tempDir("keys"); }
  void tearDown() override { fs::remove_all(dir_); }

  void testGeneratesAndPersists() {
    std::string rsKid, esKid;
    {
      KeyStore ks(options());
      rsKid = ks.signingKey(JwsAlg::RS256).kid;
      esKid = ks.signingKey(JwsAlg::ES384).kid;
      CPPUNIT_ASSERT(rsKid != esKid && rsKid.size() == 43);
      CPPUNIT_ASSERT_THROW(ks.signingKey(JwsAlg::RS384), std::invalid_argument);
      std::string jwks = ks.jwks();
      CPPUNIT_ASSERT(jwks.find(rsKid) != std::string::npos && jwks.find(esKid) != std::string::npos);
      CPPUNIT_ASSERT(jwks.find("\"d\"") == std::string::npos);
      CPPUNIT_ASSERT_EQUAL(size_t(2), parseJwks(jwks).size());
    }
    struct stat st{};
    CPPUNIT_ASSERT_EQUAL(0, ::stat((dir_ / "keys").c_str(), &st));
    CPPUNIT_ASSERT_EQUAL(0700u, unsigned(st.st_mode & 0777));
    int files = 0;
    for (const auto& f : fs::directory_iterator(dir_ / "keys")) {
      CPPUNIT_ASSERT_EQUAL(0, ::stat(f.path().c_str(), &st));
      CPPUNIT_ASSERT_EQUAL(0600u, unsigned(st.st_mode & 0777));
      ++files;
    }
    CPPUNIT_ASSERT_EQUAL(2, files);
    // A restart loads the same keys; tokens signed before verify after.
    KeyStore again(options());
    CPPUNIT_ASSERT_EQUAL(rsKid, again.signingKey(JwsAlg::RS256).kid);
    CPPUNIT_ASSERT_EQUAL(esKid, again.signingKey(JwsAlg::ES384).kid);
  }

  void testRotation() {
    KeyStore ks(options());
    Jwk old = ks.signingKey(JwsAlg::RS256);
    std::string token = signJws(JwsAlg::RS256, old, kPayload);
    now_ += 3600;
    ks.rotate(JwsAlg::RS256);
    Jwk fresh = ks.signingKey(JwsAlg::RS256);
    CPPUNIT_ASSERT(fresh.kid != old.kid);
    // The old key still verifies until its publication window ends.
    CPPUNIT_ASSERT_NO_THROW(verifyJws(token, ks.verificationKeys(), kAll));
    now_ += 3600;  // 1 h after rotation: still published
    ks.maintain();
    CPPUNIT_ASSERT_NO_THROW(verifyJws(token, ks.verificationKeys(), kAll));
    now_ += 3601;  // > 2 h after rotation: gone, also from disk
    ks.maintain();
    CPPUNIT_ASSERT(reasonOf([&] { verifyJws(token, ks.verificationKeys(), kAll); }) == JoseErrorReason::KeyNotFound);
    CPPUNIT_ASSERT_EQUAL(size_t(2), ks.verificationKeys().size());
    CPPUNIT_ASSERT_EQUAL(2, int(std::distance(fs::directory_iterator(dir_ / "keys"), fs::directory_iterator())));
    // Automatic rotation after rotateAfter.
    Jwk es = ks.signingKey(JwsAlg::ES384);
    now_ += 31 * 24 * 3600;
    ks.maintain();
    CPPUNIT_ASSERT(ks.signingKey(JwsAlg::ES384).kid != es.kid);
    CPPUNIT_ASSERT(ks.signingKey(JwsAlg::RS256).kid != fresh.kid);
    CPPUNIT_ASSERT_EQUAL(size_t(4), ks.verificationKeys().size());  // the two retired ones still published
    KeyStore reloaded(options());
    CPPUNIT_ASSERT_EQUAL(ks.signingKey(JwsAlg::ES384).kid, reloaded.signingKey(JwsAlg::ES384).kid);
    CPPUNIT_ASSERT_EQUAL(size_t(4), reloaded.verificationKeys().size());
  }

  void testRefusesExposedKeyFile() {
    { KeyStore ks(options()); }
    for (const auto& f : fs::directory_iterator(dir_ / "keys")) ::chmod(f.path().c_str(), 0644);
    CPPUNIT_ASSERT_THROW(KeyStore ks2{options()}, std::runtime_error);
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(KeyStoreTest);

// ---- npm jose cross-check (tests/auth/jose_crosscheck.mjs) -----------------------------------

namespace {
fs::path crossScript() { return fs::path(authtest::env("HEARTH_SOURCE_DIR")) / "tests/auth/jose_crosscheck.mjs"; }
}  // namespace

class JoseLibraryCrossCheck : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(JoseLibraryCrossCheck);
  CPPUNIT_TEST(testJoseSignsWeVerify);
  CPPUNIT_TEST(testWeSignJoseVerifies);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testJoseSignsWeVerify() {
    for (const char* alg : {"RS256", "RS384", "ES384"}) {
      int st = -1;
      std::string out = authtest::run("node " + crossScript().string() + " sign " + alg, &st);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(out, 0, st);
      rapidjson_free_parse(out, alg);
    }
  }

  void testWeSignJoseVerifies() {
    fs::path dir = authtest::tempDir("jose");
    for (JwsAlg alg : {JwsAlg::RS256, JwsAlg::RS384, JwsAlg::ES384}) {
      Jwk k = makeKey(alg, "hearth-" + algName(alg));
      k.alg = algName(alg);
      std::string token = signJws(alg, k, R"({"iss":"https://hearth.test","sub":"Patient/1","exp":4102444800})");
      spit(dir / "in.json", R"({"jwks":)" + jwksJson({k}) + R"(,"token":")" + token + R"(","alg":")" + algName(alg) + "\"}");
      int st = -1;
      std::string out = authtest::run("node " + crossScript().string() + " verify < " + (dir / "in.json").string(), &st);
      CPPUNIT_ASSERT_EQUAL_MESSAGE(out, 0, st);
      CPPUNIT_ASSERT_MESSAGE(out, out.find("\"sub\":\"Patient/1\"") != std::string::npos);
      // And jose refuses what we refuse: our token with a flipped payload.
      std::string bad = token;
      bad[token.find('.') + 3] ^= 1;
      spit(dir / "in.json", R"({"jwks":)" + jwksJson({k}) + R"(,"token":")" + bad + R"(","alg":")" + algName(alg) + "\"}");
      authtest::run("node " + crossScript().string() + " verify < " + (dir / "in.json").string(), &st);
      CPPUNIT_ASSERT(st != 0);
    }
    fs::remove_all(dir);
  }

 private:
  // Extracts jwks and token from the script's JSON with our own parsers and verifies.
  static void rapidjson_free_parse(const std::string& out, const char* alg) {
    auto jwksStart = out.find("{\"keys\"");
    auto tokenKey = out.find(",\"token\":\"");
    CPPUNIT_ASSERT(jwksStart != std::string::npos && tokenKey != std::string::npos);
    std::string jwks = out.substr(jwksStart, tokenKey - jwksStart);
    auto tokStart = tokenKey + 10;
    std::string token = out.substr(tokStart, out.find('"', tokStart) - tokStart);
    auto keys = parseJwks(jwks);
    CPPUNIT_ASSERT_EQUAL(size_t(1), keys.size());
    VerifiedJws v = verifyJws(token, keys, {parseAlg(alg)});
    CPPUNIT_ASSERT_EQUAL(std::string("node-") + alg, v.kid);
    ClaimsPolicy p;
    p.audiences = {"https://hearth.test/auth/token"};
    p.issuer = "node-client";
    p.maxLifetime = std::chrono::seconds(300);
    p.requireJti = true;
    Claims c = validateClaims(v.payloadJson, p);
    CPPUNIT_ASSERT_EQUAL(std::string("system/Patient.rs"), c.stringClaim("scope").value_or("?"));
    // Tampered: another payload under jose's signature.
    std::string forged = token.substr(0, token.find('.') + 1) + base64urlEncode(R"({"scope":"system/*.*"})") +
                         token.substr(token.rfind('.'));
    CPPUNIT_ASSERT(reasonOf([&] { verifyJws(forged, keys, {parseAlg(alg)}); }) == JoseErrorReason::BadSignature);
  }
};

class JoseCrossCheckFactory : public CppUnit::TestFactory {
 public:
  CppUnit::Test* makeTest() override {
    fs::path modules = crossScript().parent_path() / "node_modules" / "jose";
    int st = -1;
    authtest::run("node --version >/dev/null 2>&1", &st);
    if (st == 0 && fs::exists(modules)) return JoseLibraryCrossCheck::suite();
    std::cerr << "JoseLibraryCrossCheck: SKIPPED (needs node and `npm ci` in tests/auth; test.sh does it)\n";
    return new CppUnit::TestSuite("JoseLibraryCrossCheck");
  }
};
namespace {
struct RegisterCross {
  RegisterCross() { CppUnit::TestFactoryRegistry::getRegistry().registerFactory(&factory); }
  ~RegisterCross() { CppUnit::TestFactoryRegistry::getRegistry().unregisterFactory(&factory); }
  JoseCrossCheckFactory factory;
};
RegisterCross registerCross;
}  // namespace
