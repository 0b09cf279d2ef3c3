#include "hearth_process.h"

#include <Poco/File.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/Context.h>
#include <memory>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/NullStream.h>
#include <Poco/SHA2Engine.h>
#include <Poco/StreamCopier.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace hearth::test {
namespace {

using Clock = std::chrono::steady_clock;

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

ExitStatus decode(int status) {
  ExitStatus e;
  if (WIFEXITED(status)) {
    e.exited = true;
    e.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    e.signal = WTERMSIG(status);
  }
  return e;
}

// Parses "http=<port>" out of the port file; 0 if the file is absent or has no such line.
uint16_t readPortFile(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("http=", 0) == 0) {
      try {
        int p = std::stoi(line.substr(5));
        if (p > 0 && p < 65536) return static_cast<uint16_t>(p);
      } catch (const std::exception&) {
        return 0;
      }
    }
  }
  return 0;
}

int healthStatus(const std::string& host, uint16_t port, bool tls) {
  try {
    std::unique_ptr<Poco::Net::HTTPClientSession> owned;
    if (tls) {
      Poco::Net::Context::Ptr ctx =
          new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", Poco::Net::Context::VERIFY_NONE);
      owned = std::make_unique<Poco::Net::HTTPSClientSession>(host, port, ctx);
    } else {
      owned = std::make_unique<Poco::Net::HTTPClientSession>(host, port);
    }
    Poco::Net::HTTPClientSession& session = *owned;
    session.setTimeout(Poco::Timespan(2, 0));
    Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_GET, "/health", Poco::Net::HTTPMessage::HTTP_1_1);
    session.sendRequest(req);
    Poco::Net::HTTPResponse resp;
    std::istream& body = session.receiveResponse(resp);
    Poco::NullOutputStream sink;
    Poco::StreamCopier::copyStream(body, sink);
    return resp.getStatus();
  } catch (const Poco::Exception&) {
    return 0;
  }
}

}  // namespace

std::string ExitStatus::describe() const {
  if (exited) return "exit code " + std::to_string(code);
  return std::string("killed by signal ") + std::to_string(signal) + " (" + strsignal(signal) + ")";
}

HearthProcess::HearthProcess(ServerOptions options) : options_(std::move(options)) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/hearth-test-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed: " + std::string(strerror(errno)));
  workDir_ = buf.data();
  dataDir_ = workDir_ + "/data";
  portFile_ = workDir_ + "/port";
}

HearthProcess::~HearthProcess() {
  try {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      if (!waitExit(std::chrono::milliseconds(5000))) kill9();
    }
  } catch (...) {
  }
  const char* keep = std::getenv("HEARTH_TEST_KEEP");
  if (!(keep && std::string(keep) == "1")) {
    try {
      Poco::File(workDir_).remove(true);
    } catch (...) {
    }
  }
}

std::string HearthProcess::binary() {
  const char* bin = std::getenv("HEARTH_BINARY");
  if (!bin || !*bin) throw std::runtime_error("HEARTH_BINARY is not set (run the tests through ctest)");
  if (::access(bin, X_OK) != 0)
    throw std::runtime_error(std::string("HEARTH_BINARY is not executable: ") + bin);
  return bin;
}

std::string HearthProcess::origin() const { return "http://" + host_ + ":" + std::to_string(port_); }
std::string HearthProcess::fhirBase() const { return origin() + "/fhir"; }
std::string HearthProcess::logPath() const { return workDir_ + "/server.log"; }
std::string HearthProcess::log() const { return readFile(logPath()); }

std::string HearthProcess::logTail(std::size_t bytes) const {
  std::string all = log();
  return all.size() > bytes ? "..." + all.substr(all.size() - bytes) : all;
}

void HearthProcess::start() {
  if (pid_ > 0) throw std::logic_error("HearthProcess::start: already running");
  spawn();
  waitReady();
}

void HearthProcess::spawn() {
  // --mllp-port 0: parallel test servers must not compete for the default MLLP port.
  std::vector<std::string> args{binary(),      "--port",  "0",          "--mllp-port", "0",
                                "--port-file", portFile_, "--data-dir", dataDir_};
  if (!options_.db.empty()) {
    args.push_back("--db");
    args.push_back(options_.db);
  }
  args.insert(args.end(), options_.args.begin(), options_.args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  ::unlink(portFile_.c_str());
  Poco::File(dataDir_).createDirectories();
  int logFd = ::open(logPath().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (logFd < 0) throw std::runtime_error("cannot open server log " + logPath());
  int nullFd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  {
    std::string banner = "=== hearth-test: starting server ===\n";
    (void)!::write(logFd, banner.data(), banner.size());
  }
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(logFd);
    ::close(nullFd);
    throw std::runtime_error("fork failed: " + std::string(strerror(errno)));
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    // The server starts with default signal dispositions and an empty mask, whatever the test set up
    // (test processes ignore SIGPIPE; an ignored signal would survive exec).
    for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP}) ::signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(nullFd, 0);
    ::dup2(logFd, 1);
    ::dup2(logFd, 2);
    ::execv(argv[0], argv.data());
    const char msg[] = "hearth-test: execv failed\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::close(logFd);
  ::close(nullFd);
  pid_ = pid;
  port_ = 0;
  lastExit_.reset();
}

void HearthProcess::waitReady() {
  const auto deadline = Clock::now() + options_.startTimeout;
  while (port_ == 0) {
    if (auto st = waitExit(std::chrono::milliseconds(0)))
      failStart("server exited during start-up: " + st->describe());
    port_ = readPortFile(portFile_);
    if (port_ != 0) break;
    if (Clock::now() > deadline)
      failStart("no port file after " + std::to_string(options_.startTimeout.count()) + " ms");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  int last = 0;
  while (true) {
    if (auto st = waitExit(std::chrono::milliseconds(0)))
      failStart("server exited during start-up: " + st->describe());
    last = healthStatus(host_, port_, options_.tls);
    if (last == 200) return;
    if (Clock::now() > deadline) {
      failStart("GET /health did not answer 200 within " + std::to_string(options_.startTimeout.count()) +
                " ms (last status " + std::to_string(last) + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void HearthProcess::failStart(const std::string& why) {
  if (pid_ > 0) kill9();
  throw std::runtime_error("hearth failed to start (" + why + "); server output:\n" + logTail());
}

std::optional<ExitStatus> HearthProcess::waitExit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return lastExit_;
  const auto deadline = Clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      lastExit_ = decode(status);
      return lastExit_;
    }
    if (r < 0 && errno != EINTR) {
      pid_ = -1;
      lastExit_ = ExitStatus{};
      return lastExit_;
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool HearthProcess::running() { return pid_ > 0 && !waitExit(std::chrono::milliseconds(0)); }

void HearthProcess::signal(int sig) {
  if (pid_ <= 0) throw std::logic_error("HearthProcess::signal: not running");
  ::kill(pid_, sig);
}

ExitStatus HearthProcess::stop(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) {
    if (lastExit_) return *lastExit_;
    throw std::logic_error("HearthProcess::stop: not running");
  }
  ::kill(pid_, SIGTERM);
  if (auto st = waitExit(timeout)) return *st;
  kill9();
  throw std::runtime_error("hearth did not exit within " + std::to_string(timeout.count()) +
                           " ms of SIGTERM (killed); server output:\n" + logTail());
}

void HearthProcess::kill9() {
  pid_t pid = pid_;
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  lastExit_ = decode(status);
}

void HearthProcess::restart() {
  if (pid_ > 0) stop();
  start();
}

std::optional<std::string> pgUrl() {
  const char* url = std::getenv("HEARTH_TEST_PG_URL");
  if (!url || !*url) return std::nullopt;
  return std::string(url);
}

std::string randomToken(std::size_t n) {
  static std::mutex mutex;
  static std::mt19937_64 rng([] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(::getpid()) ^
           static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  }());
  static const char hex[] = "0123456789abcdef";
  std::lock_guard<std::mutex> lock(mutex);
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += hex[rng() & 15];
  return out;
}

std::string sha256Hex(const std::string& text) {
  Poco::SHA2Engine engine(Poco::SHA2Engine::SHA_256);
  engine.update(text);
  return Poco::DigestEngine::digestToHex(engine.digest());
}

}  // namespace hearth::test
