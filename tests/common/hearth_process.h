#pragma once
// HearthProcess: one real `hearth` server process for integration tests.
//
// Owns a fresh temporary work directory (data dir, port file, server log) and the child process.
// start() runs `$HEARTH_BINARY --port 0 --mllp-port 0 --port-file <work>/port --data-dir <work>/data [--db
// URL] [extra args...]` with stdout+stderr appended to <work>/server.log, waits for the port file and then
// for `GET /health` = 200, and throws std::runtime_error (carrying the log tail) if the server does not come
// up within the start timeout. restart() reuses the same data dir, db and arguments, so a test can check what
// survived a stop or a kill -9. The destructor stops a still-running server (SIGTERM, then SIGKILL after a
// grace period) and removes the work directory unless HEARTH_TEST_KEEP=1.
//
// The child is started with fork/exec and PR_SET_PDEATHSIG=SIGKILL, so a test process that dies
// does not leave servers behind. PDEATHSIG follows the *thread* that forked: call start()/restart()
// from a thread that outlives the server (the test's main thread).
// Not thread-safe: one thread drives a HearthProcess; other threads may read port()/baseUrl()
// and call kill9() concurrently only while no other member function runs.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hearth::test {

// How a server process ended.
struct ExitStatus {
  bool exited = false;  // true: normal exit with `code`; false: killed by `signal`
  int code = 0;
  int signal = 0;
  std::string describe() const;
};

struct ServerOptions {
  std::vector<std::string> args;  // extra command line arguments, e.g. {"--set", "http.body-limit=2048"}
  std::string db;                 // --db URL; empty = the server's default (SQLite in the data dir)
  std::chrono::milliseconds startTimeout{20000};
  bool tls = false;  // the server speaks HTTPS (the start-up health check uses TLS, any certificate)
};

class HearthProcess {
 public:
  explicit HearthProcess(ServerOptions options = {});
  ~HearthProcess();
  HearthProcess(const HearthProcess&) = delete;
  HearthProcess& operator=(const HearthProcess&) = delete;

  // Starts the server and waits until it is healthy; throws std::runtime_error otherwise.
  void start();
  // SIGTERM, then waits up to `timeout` for the exit; on timeout SIGKILLs and throws.
  ExitStatus stop(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));
  // SIGKILL and reap. Safe to call from another thread while requests are in flight.
  void kill9();
  // stop() (if running) then start() on the same data dir / db / arguments.
  void restart();
  // Sends `sig` to the server without waiting.
  void signal(int sig);
  // Waits up to `timeout` for the process to exit; nullopt if it is still running.
  std::optional<ExitStatus> waitExit(std::chrono::milliseconds timeout);
  bool running();

  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  const std::string& host() const { return host_; }
  // http://127.0.0.1:<port> (no trailing slash) and <that>/fhir.
  std::string origin() const;
  std::string fhirBase() const;
  const std::string& workDir() const { return workDir_; }
  const std::string& dataDir() const { return dataDir_; }
  const ServerOptions& options() const { return options_; }
  std::string logPath() const;
  // Everything the server wrote to stdout/stderr so far (all starts appended).
  std::string log() const;
  std::string logTail(std::size_t bytes = 4000) const;

  // $HEARTH_BINARY; throws if unset or not executable.
  static std::string binary();

 private:
  void spawn();
  void waitReady();
  [[noreturn]] void failStart(const std::string& why);

  ServerOptions options_;
  std::string host_ = "127.0.0.1";
  std::string workDir_;
  std::string dataDir_;
  std::string portFile_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::optional<ExitStatus> lastExit_;
};

// $HEARTH_TEST_PG_URL if set and non-empty.
std::optional<std::string> pgUrl();
// A random token of `n` lowercase hex characters (valid in FHIR ids), distinct per call and process.
std::string randomToken(std::size_t n = 10);
// Lowercase hex SHA-256 of `text`.
std::string sha256Hex(const std::string& text);

}  // namespace hearth::test
