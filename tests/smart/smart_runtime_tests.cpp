// smart_runtime_tests: the resource server's token check (server/src/auth_runtime.h) on a real
// Hearth with auth.enabled=true: access tokens per access.h's claim contract are accepted, every
// malformed, foreign, expired or mis-addressed one is refused with 401 and
// WWW-Authenticate: Bearer ... error="invalid_token"; no token -> 401 without an error code; the
// interim static tokens keep working (read vs write).
#include <cppunit/extensions/HelperMacros.h>

#include "hearth/auth/jwk.h"
#include "hearth/auth/jwt.h"
#include "http_client.h"
#include "smart_support.h"

using namespace hearth::test;

namespace {

const std::string kReadToken = "static-read-token-for-tests";
const std::string kWriteToken = "static-write-token-for-tests";

}  // namespace

class SmartRuntimeTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(SmartRuntimeTest);
  CPPUNIT_TEST(noTokenIs401WithoutErrorCode);
  CPPUNIT_TEST(validTokenReads);
  CPPUNIT_TEST(badTokensAre401InvalidToken);
  CPPUNIT_TEST(staticTokensStillWork);
  CPPUNIT_TEST(metadataStaysPublic);
  CPPUNIT_TEST_SUITE_END();

 public:
  void setUp() override {
    fx_ = std::make_unique<AuthFixture>();
    server_ = std::make_unique<HearthProcess>(fx_->serverOptions(
        {"--set", "auth.tokens=" + sha256Hex(kReadToken) + ":read," + sha256Hex(kWriteToken) + ":write"}));
    server_->start();
    http_ = std::make_unique<HttpClient>(*server_);
  }
  void tearDown() override {
    http_.reset();
    server_.reset();
    fx_.reset();
  }

  void noTokenIs401WithoutErrorCode() {
    auto r = http_->get("/fhir/Patient");
    CPPUNIT_ASSERT_EQUAL_MESSAGE(r.describe(), 401, r.status);
    CPPUNIT_ASSERT_EQUAL(std::string("Bearer realm=\"hearth\""), r.header("WWW-Authenticate"));
  }

  void validTokenReads() {
    TokenSpec t;
    t.scope = "user/*.cruds";
    t.roles = {"admin"};
    const std::string jwt = fx_->mint(*server_, t);
    auto r = http_->get("/fhir/Patient", {{"Authorization", "Bearer " + jwt}});
    CPPUNIT_ASSERT_EQUAL_MESSAGE(r.describe(), 200, r.status);
    TokenSpec e = t;
    e.alg = "ES384";
    r = http_->get("/fhir/Patient", {{"Authorization", "Bearer " + fx_->mint(*server_, e)}});
    CPPUNIT_ASSERT_EQUAL_MESSAGE(r.describe(), 200, r.status);
  }

  void expectInvalid(const std::string& token, const std::string& what) {
    auto r = http_->get("/fhir/Patient", {{"Authorization", "Bearer " + token}});
    CPPUNIT_ASSERT_EQUAL_MESSAGE(what + ": " + r.describe(), 401, r.status);
    CPPUNIT_ASSERT_EQUAL_MESSAGE(what, std::string("Bearer realm=\"hearth\", error=\"invalid_token\""),
                                 r.header("WWW-Authenticate"));
    CPPUNIT_ASSERT_MESSAGE(what + ": token echoed", r.body.find(token) == std::string::npos);
  }

  void badTokensAre401InvalidToken() {
    TokenSpec t;
    t.scope = "user/*.rs";
    expectInvalid("not-a-token", "garbage");
    TokenSpec aud = t;
    aud.audience = "http://elsewhere.example/fhir";
    expectInvalid(fx_->mint(*server_, aud), "wrong aud");
    TokenSpec iss = t;
    iss.issuer = "http://evil.example";
    expectInvalid(fx_->mint(*server_, iss), "wrong iss");
    TokenSpec old = t;
    old.issuedAt = 1700000000;
    expectInvalid(fx_->mint(*server_, old), "expired");
    TokenSpec longLived = t;
    longLived.lifetimeSeconds = 7200;
    expectInvalid(fx_->mint(*server_, longLived), "lifetime over 1 h");
    TokenSpec typ = t;
    typ.typ = "JWT";
    expectInvalid(fx_->mint(*server_, typ), "not typ at+jwt");
    TokenSpec noScope = t;
    noScope.scope = "patient/Observation.rs user/Patient.rs";
    expectInvalid(fx_->mint(*server_, noScope), "mixed scopes");
    // Signed by a key the server does not know.
    AuthFixture other;
    expectInvalid(other.mint(*server_, t), "foreign key");
    // Tampered payload: the signature no longer matches.
    std::string good = fx_->mint(*server_, t);
    const size_t d1 = good.find('.'), d2 = good.rfind('.');
    std::string payload = good.substr(d1 + 1, d2 - d1 - 1);
    payload[payload.size() / 2] = payload[payload.size() / 2] == 'A' ? 'B' : 'A';
    expectInvalid(good.substr(0, d1 + 1) + payload + good.substr(d2), "tampered");
    // alg none.
    // alg none: {"alg":"none","typ":"at+jwt"}, the genuine payload, no signature.
    expectInvalid("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + good.substr(d1 + 1, d2 - d1 - 1) + ".", "alg none");
  }

  void staticTokensStillWork() {
    auto r = http_->get("/fhir/Patient", {{"Authorization", "Bearer " + kReadToken}});
    CPPUNIT_ASSERT_EQUAL_MESSAGE(r.describe(), 200, r.status);
    r = http_->post("/fhir/Patient", R"({"resourceType":"Patient"})", {{"Authorization", "Bearer " + kReadToken}});
    CPPUNIT_ASSERT_EQUAL_MESSAGE(r.describe(), 403, r.status);
    r = http_->post("/fhir/Patient", R"({"resourceType":"Patient"})", {{"Authorization", "Bearer " + kWriteToken}});
    CPPUNIT_ASSERT_EQUAL_MESSAGE(r.describe(), 201, r.status);
  }

  void metadataStaysPublic() {
    auto r = http_->get("/fhir/metadata");
    CPPUNIT_ASSERT_EQUAL_MESSAGE(r.describe(), 200, r.status);
  }

 private:
  std::unique_ptr<AuthFixture> fx_;
  std::unique_ptr<HearthProcess> server_;
  std::unique_ptr<HttpClient> http_;
};

CPPUNIT_TEST_SUITE_REGISTRATION(SmartRuntimeTest);
