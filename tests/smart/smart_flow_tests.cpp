// smart_flow_tests: the SMART App Launch authorization server (server/src/auth_server.h) driven by
// independent OAuth clients. Each test runs one scenario of smart_flows.mjs (npm openid-client and
// jose; installed by ./test.sh with `npm ci` in tests/smart) against a real Hearth with
// auth.enabled=true whose cache is a private redis-server, so the outage scenario can kill and
// restart it. With HEARTH_TEST_PG_URL set, the standalone launch also runs on PostgreSQL.
// Without node_modules the suite fails (it is required by ./test.sh), naming the fix.
#include <cppunit/extensions/HelperMacros.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "smart_support.h"

extern char** environ;

using namespace hearth::test;

namespace {

std::string sourceDir() {
  const char* s = std::getenv("HEARTH_SOURCE_DIR");
  return s ? s : ".";
}

int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class Redis {
 public:
  Redis() : port_(freePort()) {
    std::vector<std::string> args{"redis-server", "--bind", "127.0.0.1", "--port", std::to_string(port_), "--save", "",
                                  "--appendonly", "no", "--logfile", "/dev/null", "--dir", "/tmp"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawnp(&pid_, "redis-server", nullptr, nullptr, argv.data(), environ) != 0) {
      throw std::runtime_error("cannot start redis-server");
    }
    for (int i = 0; i < 100; ++i) {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port_));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      ::close(fd);
      if (ok) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw std::runtime_error("redis-server did not start");
  }
  ~Redis() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }

 private:
  int port_;
  pid_t pid_ = -1;
};

const std::string kAdminToken = "smart-flow-admin-token";

}  // namespace

class SmartFlowTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(SmartFlowTest);
  CPPUNIT_TEST(discovery);
  CPPUNIT_TEST(standaloneLaunch);
  CPPUNIT_TEST(standaloneLaunchPostgres);
  CPPUNIT_TEST(staffPatientPicker);
  CPPUNIT_TEST(ehrLaunch);
  CPPUNIT_TEST(refreshRotation);
  CPPUNIT_TEST(revocation);
  CPPUNIT_TEST(auditTrail);
  CPPUNIT_TEST(invalidAud);
  CPPUNIT_TEST(pkce);
  CPPUNIT_TEST(mixedScopes);
  CPPUNIT_TEST(lockout);
  CPPUNIT_TEST(backendServices);
  CPPUNIT_TEST(backendJku);
  CPPUNIT_TEST(symmetricClient);
  CPPUNIT_TEST(redisOutage);
  CPPUNIT_TEST_SUITE_END();

 public:
  void discovery() { scenario("discovery"); }
  void standaloneLaunch() { scenario("standalone-launch"); }
  void standaloneLaunchPostgres() {
    const auto pg = pgUrl();
    if (!pg) return;  // SQLite only without HEARTH_TEST_PG_URL
    scenario("standalone-launch", *pg);
  }
  void staffPatientPicker() { scenario("staff-patient-picker"); }
  void ehrLaunch() { scenario("ehr-launch"); }
  void refreshRotation() { scenario("refresh-rotation"); }
  void revocation() { scenario("revocation"); }
  void auditTrail() { scenario("audit-trail"); }
  void invalidAud() { scenario("invalid-aud"); }
  void pkce() { scenario("pkce"); }
  void mixedScopes() { scenario("mixed-scopes"); }
  void lockout() { scenario("lockout"); }
  void backendServices() { scenario("backend-services"); }
  void backendJku() { scenario("backend-jku"); }
  void symmetricClient() { scenario("symmetric-client"); }
  void redisOutage() { scenario("redis-outage"); }

 private:
  void scenario(const std::string& name, const std::string& db = {}) {
    const std::string dir = sourceDir() + "/tests/smart";
    CPPUNIT_ASSERT_MESSAGE("tests/smart/node_modules is missing: run `npm ci` in tests/smart (./test.sh does)",
                           std::filesystem::exists(dir + "/node_modules/openid-client"));
    Redis redis;
    AuthFixture fx;
    HearthProcess server(fx.serverOptions({"--set", "auth.tokens=" + sha256Hex(kAdminToken) + ":write", "--set",
                                           "cache.redis.url=" + redis.url(), "--set", "cache.redis.timeout-ms=500"},
                                          db));
    server.start();
    const std::string cmd = "cd '" + dir + "' && HEARTH_ORIGIN='" + server.origin() + "' HEARTH_ADMIN_TOKEN='" +
                            kAdminToken + "' REDIS_PORT=" + std::to_string(redis.port()) +
                            " REDIS_PID=" + std::to_string(redis.pid()) + " node smart_flows.mjs " + name + " 2>&1";
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    CPPUNIT_ASSERT(p);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int st = ::pclose(p);
    const int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    CPPUNIT_ASSERT_EQUAL_MESSAGE(name + " failed:\n" + out + "\n--- server log tail:\n" + server.logTail(3000), 0, code);
    // Nothing secret in the server log: no tokens, codes or passwords.
    const std::string log = server.log();
    CPPUNIT_ASSERT_MESSAGE("admin token in the log", log.find(kAdminToken) == std::string::npos);
    CPPUNIT_ASSERT_MESSAGE("a JWT in the log", log.find("eyJ") == std::string::npos);
    CPPUNIT_ASSERT_MESSAGE("a password in the log", log.find("-long") == std::string::npos);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(SmartFlowTest);
