#include "hearth/server/app.h"

#include <Poco/File.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/Context.h>
#include <Poco/Path.h>
#include <Poco/ThreadPool.h>
#include <Poco/Util/HelpFormatter.h>
#include <Poco/Util/MapConfiguration.h>
#include <Poco/Util/PropertyFileConfiguration.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <thread>

#include "access_control.h"
#include "access_log.h"
#include "audit.h"
#include "token_cache.h"
#include "auth_runtime.h"
#include "auth_server.h"
#include "hearth/fhir/model.h"
#include "hearth/fhir/service.h"
#include "hearth/server/config.h"
#include "hearth/workflows/booking.h"
#include "hearth/workflows/notifications.h"
#include "hearth/workflows/pharmacy.h"
#include "hearth/workflows/registration.h"
#include "hearth/workflows/subscriptions.h"
#include "hl7_outbox.h"
#include "hl7_bridge.h"
#include "hl7_journal.h"
#include "http_front.h"
#include "mllp.h"
#include "metrics.h"

namespace hearth::server {

namespace {
constexpr const char* kVersion = "0.1.0";
// Command-line overrides sit above the config file in the layered configuration.
constexpr int kFlagPriority = -100;
constexpr int kFilePriority = 0;

void writePortFile(const std::string& path, int httpPort, int mllpPort) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "http=" << httpPort << "\n";
    if (mllpPort > 0) out << "mllp=" << mllpPort << "\n";
  }
  Poco::File(tmp).renameTo(path);
}
}  // namespace

HearthApp::HearthApp() { setUnixOptions(true); }

void HearthApp::defineOptions(Poco::Util::OptionSet& options) {
  ServerApplication::defineOptions(options);
  using Poco::Util::Option;
  // Poco calls handleOption(fullName, argument) for each option given.
  auto cb = [this](const char*) { return Poco::Util::OptionCallback<HearthApp>(this, &HearthApp::handleOption); };
  options.addOption(Option("help", "h", "show this help").required(false).repeatable(false).callback(cb("help")));
  options.addOption(Option("port", "", "HTTP port (http.port); 0 picks a free port").argument("N").callback(cb("port")));
  options.addOption(Option("mllp-port", "", "MLLP port (mllp.port)").argument("N").callback(cb("mllp-port")));
  options.addOption(Option("data-dir", "", "data directory (data.dir)").argument("DIR").callback(cb("data-dir")));
  options.addOption(Option("config", "", "configuration file (properties)").argument("FILE").callback(cb("config")));
  options.addOption(Option("db", "", "store URL: sqlite:PATH or postgresql://... (store.url)").argument("URL").callback(cb("db")));
  options.addOption(Option("port-file", "", "write the bound ports to FILE once listening").argument("FILE").callback(cb("port-file")));
  options.addOption(Option("reindex", "", "rebuild the search index of every resource, then exit").required(false).repeatable(false).callback(cb("reindex")));
  options.addOption(Option("set", "", "set any configuration key").argument("KEY=VALUE").repeatable(true).callback(cb("set")));
}

void HearthApp::handleOption(const std::string& name, const std::string& value) {
  auto& flags = config();
  auto setFlag = [&](const std::string& key, const std::string& v) {
    // Written into the application's own top layer (priority of the map added in initialize()).
    flags.setString(key, v);
  };
  if (name == "help") {
    helpRequested_ = true;
    Poco::Util::HelpFormatter help(options());
    help.setCommand(commandName());
    help.setUsage("[options] | [options] user add|passwd|list ... | [options] client add|list ...");
    help.setHeader("Hearth: FHIR R4 + HL7v2 integration server. Every key of config/hearth.properties can be set with --set key=value.");
    help.format(std::cout);
    stopOptionsProcessing();
  } else if (name == "port") {
    setFlag("http.port", value);
  } else if (name == "mllp-port") {
    setFlag("mllp.port", value);
  } else if (name == "data-dir") {
    setFlag("data.dir", value);
  } else if (name == "config") {
    configFile_ = value;
  } else if (name == "db") {
    setFlag("store.url", value);
  } else if (name == "port-file") {
    setFlag("server.port-file", value);
  } else if (name == "reindex") {
    reindexOnly_ = true;
  } else if (name == "set") {
    const auto eq = value.find('=');
    if (eq == std::string::npos || eq == 0) throw Poco::InvalidArgumentException("--set needs KEY=VALUE");
    setFlag(value.substr(0, eq), value.substr(eq + 1));
  }
}

void HearthApp::initialize(Poco::Util::Application& self) {
  // Do not load <appname>.properties implicitly; only --config FILE.
  ServerApplication::initialize(self);
}

int HearthApp::main(const std::vector<std::string>& args) {
  if (helpRequested_) return EXIT_OK;
  Config cfg;
  try {
    if (!configFile_.empty()) {
      config().add(new Poco::Util::PropertyFileConfiguration(configFile_), kFilePriority, false);
    }
    cfg = Config::load(config());
  } catch (const ConfigError& e) {
    logEvent("error", std::string("configuration error: ") + e.what());
    return EXIT_CONFIG;
  } catch (const Poco::Exception& e) {
    logEvent("error", "cannot read configuration: " + e.displayText());
    return EXIT_CONFIG;
  }
  (void)kFlagPriority;

  try {
    Poco::File(cfg.dataDir).createDirectories();
  } catch (const Poco::Exception& e) {
    logEvent("error", "cannot create data directory " + cfg.dataDir + ": " + e.displayText());
    return EXIT_CANTCREAT;
  }

  std::unique_ptr<fhir::ResourceStore> store;
  try {
    store = fhir::openStore(cfg.store);
  } catch (const std::exception& e) {
    logEvent("error", std::string("cannot open the store: ") + e.what());
    return EXIT_UNAVAILABLE;
  }
  // Admin CLI: `hearth user ...` / `hearth client ...` work on the store, then exit.
  if (!args.empty()) {
    if (args[0] != "user" && args[0] != "client") {
      logEvent("error", "unknown command " + args[0].substr(0, 32) + "; commands: user, client (see --help)");
      return EXIT_USAGE;
    }
    return runAuthCli(args, *store, cfg);
  }
  const auto& model = fhir::Model::r4();

  fhir::ServiceOptions serviceOptions;
  long cacheMb = cfg.fhir.readCacheMegabytes;
  if (cacheMb < 0) cacheMb = store->backendName() == "sqlite" ? 256 : 0;
  serviceOptions.readCacheBytes = static_cast<size_t>(cacheMb) * 1024 * 1024;
  int groupCommit = cfg.fhir.groupCommitMax;
  if (groupCommit < 0) groupCommit = store->backendName() == "sqlite" ? 64 : 0;
  serviceOptions.groupCommitMax = groupCommit;
  serviceOptions.groupCommitLingerMs = cfg.fhir.groupCommitLingerMs;
  fhir::ResourceService service(*store, model, serviceOptions);
  if (cfg.registration.rejectDuplicates) workflows::installDuplicateCheck(service);
  if (cfg.registration.mrnEnabled) {
    workflows::installMrnAssignment(service, {cfg.registration.mrnSystem, cfg.registration.mrnFormat,
                                              cfg.registration.mrnAcceptClient});
  }
  workflows::installStockGuard(service);  // completed dispenses take stock (pharmacy.h)
  workflows::installSlotSync(service);    // Appointments take and free their Slots (booking.h)
  if (cfg.scheduling.preventDoubleBooking) {
    workflows::installBookingGuard(service, {cfg.scheduling.maxAppointmentMinutes});
  }
  if (reindexOnly_) {
    try {
      const auto t0 = std::chrono::steady_clock::now();
      const int64_t n = service.reindex();
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      logEvent("info", "reindexed " + std::to_string(n) + " resources in " + std::to_string(secs) + " s");
      return EXIT_OK;
    } catch (const std::exception& e) {
      logEvent("error", std::string("reindex failed: ") + e.what());
      return EXIT_UNAVAILABLE;
    }
  }
  fhir::SearchEngine search(service);
  fhir::InteractionProcessor interactions(service, search);
  // R4 Subscriptions (rest-hook): notifications enqueued in the writing transaction, delivered
  // by a background thread with retry (hearth/workflows/subscriptions.h).
  workflows::SubscriptionOptions subscriptionOptions;
  subscriptionOptions.maxAttempts = cfg.subscriptions.maxAttempts;
  subscriptionOptions.timeoutMs = cfg.subscriptions.timeoutMs;
  workflows::SubscriptionHub subscriptions(service, search, subscriptionOptions);
  if (cfg.subscriptions.enabled) subscriptions.install();
  // Lab-result alerts and appointment reminders as Communications (hearth/workflows/notifications.h).
  workflows::NotificationOptions notificationOptions;
  notificationOptions.labAlerts = cfg.notifications.labAlerts;
  notificationOptions.reminderHours = cfg.notifications.reminderHours;
  notificationOptions.scanIntervalSeconds = cfg.notifications.scanIntervalSeconds;
  workflows::ClinicalNotifier notifier(service, interactions, notificationOptions);
  notifier.install();

  // --- HL7 v2 outbound (FHIR -> v2 over MLLP, durable outbox; server/src/hl7_outbox.h) ---
  std::unique_ptr<Hl7Outbox> hl7Outbox;
  try {
    hl7Outbox = Hl7Outbox::start(config(), service, *store);
  } catch (const std::invalid_argument& e) {
    logEvent("error", std::string("configuration error: ") + e.what());
    return EXIT_CONFIG;
  }
  // --- end HL7 v2 outbound ---

  Metrics metrics;
  std::FILE* logOut = stderr;
  if (!cfg.log.file.empty()) {
    logOut = std::fopen(cfg.log.file.c_str(), "a");
    if (!logOut) {
      logEvent("error", "cannot open log.file " + cfg.log.file);
      return EXIT_CANTCREAT;
    }
  }
  std::unique_ptr<AccessLog> accessLog;
  if (cfg.log.access) accessLog = std::make_unique<AccessLog>(logOut);

  // Keys, token/session cache and roles (auth_runtime.h); needed even with auth off, because the
  // authorization server answers its discovery documents either way.
  std::unique_ptr<AuthRuntime> authRuntime;
  try {
    authRuntime = std::make_unique<AuthRuntime>(cfg);
  } catch (const ConfigError& e) {
    logEvent("error", std::string("configuration error: ") + e.what());
    return EXIT_CONFIG;
  } catch (const std::exception& e) {
    logEvent("error", std::string("cannot set up authentication: ") + e.what());
    return EXIT_CANTCREAT;
  }
  logEvent("info", std::string("auth: ") + (cfg.auth.enabled ? "enabled" : "DISABLED (open, loopback only)") +
                       ", cache " + authRuntime->cache().backend() + ", " +
                       std::to_string(authRuntime->keys().verificationKeys().size()) + " signing keys");

  AuthServer authServer(*authRuntime, service, search);

  ServerContext ctx{cfg, service, search, interactions, metrics, accessLog.get(), kVersion};
  if (cfg.subscriptions.enabled) ctx.subscriptions = &subscriptions;
  ctx.auth = authRuntime.get();
  ctx.authServer = &authServer;

  // Access control (roles from the auth runtime) and the audit trail (issue 5).
  AccessControl access(&authRuntime->roles(), service, cfg.audit.enabled);
  ctx.access = &access;
  VerifiedTokenCache verifiedTokens;
  ctx.verifiedTokens = &verifiedTokens;
  std::unique_ptr<AuditTrail> audit;
  if (cfg.audit.enabled) {
    audit = std::make_unique<AuditTrail>(service, access, static_cast<size_t>(cfg.audit.queueLimit));
    audit->start();
    ctx.audit = audit.get();
    // Logins, token issues and refusals, revocations and account changes of the authorization
    // server. Authentication failures on the FHIR API (AccessDenied) are recorded by the HTTP
    // front with the request's context instead.
    AuditTrail* trail = audit.get();
    authRuntime->setAuditSink([trail](const AuthEvent& e) { trail->recordAuthEvent(e); });
  }

  // HL7 v2 bridge: messages accepted but not processed before the last stop are processed before
  // the MLLP listener takes new ones (so they keep their order).
  std::unique_ptr<Hl7Journal> journal;  // outlives the bridge's use of it (declared first)
  std::unique_ptr<Hl7Bridge> bridge;
  if (cfg.mllp.enabled) {
    Hl7BridgeOptions bo;
    bo.baseUrl = !cfg.fhir.baseUrl.empty() ? cfg.fhir.baseUrl : "http://" + cfg.http.host + "/fhir";
    bo.maxMessageBytes = cfg.mllp.maxFrameBytes;
    bridge = std::make_unique<Hl7Bridge>(service, interactions, bo);
    if (cfg.mllp.journal) {
      service.enableAppliedWrites();  // PostgreSQL: a committer for the journaled units only
      Hl7JournalOptions jo;
      jo.directory = !cfg.mllp.journalDir.empty() ? cfg.mllp.journalDir : cfg.dataDir + "/hl7-journal";
      try {
        journal = std::make_unique<Hl7Journal>(jo);
      } catch (const std::exception& e) {
        logEvent("error", std::string("hl7: cannot open the journal: ") + e.what());
        return EXIT_CANTCREAT;
      }
      bridge->setJournal(journal.get());
      try {
        const int n = bridge->replayJournal();
        if (n > 0) logEvent("info", "hl7: " + std::to_string(n) + " journaled message(s) processed after an unclean stop");
      } catch (const std::exception& e) {
        logEvent("error", std::string("hl7: journal replay failed (the journal is kept): ") + e.what());
        return EXIT_SOFTWARE;
      }
    }
    try {
      bridge->recoverPending();
    } catch (const std::exception& e) {
      logEvent("warning", std::string("hl7: recovery of received messages failed: ") + e.what());
    }
    ctx.hl7 = bridge.get();
  }

  int httpPort = 0;
  try {
    Poco::Net::SocketAddress addr(cfg.http.host, static_cast<Poco::UInt16>(cfg.http.port));
    std::unique_ptr<Poco::Net::ServerSocket> socket;
    if (!cfg.http.tlsCertificate.empty()) {
      Poco::Net::Context::Ptr tls = new Poco::Net::Context(
          Poco::Net::Context::TLS_SERVER_USE, cfg.http.tlsPrivateKey, cfg.http.tlsCertificate, "",
          Poco::Net::Context::VERIFY_NONE, 9, false, "HIGH:!aNULL:!MD5:!RC4");
      tls->disableProtocols(Poco::Net::Context::PROTO_SSLV2 | Poco::Net::Context::PROTO_SSLV3 |
                            Poco::Net::Context::PROTO_TLSV1 | Poco::Net::Context::PROTO_TLSV1_1);
      socket = std::make_unique<Poco::Net::SecureServerSocket>(tls);
      ctx.tls = true;
    } else {
      socket = std::make_unique<Poco::Net::ServerSocket>();
    }
    socket->bind(addr, true);
    socket->listen(cfg.http.backlog);
    httpPort = socket->address().port();
    ctx.boundPort = httpPort;

    auto* params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(cfg.http.threads);
    params->setMaxQueued(cfg.http.queue);
    params->setKeepAlive(cfg.http.keepAlive);
    params->setKeepAliveTimeout(Poco::Timespan(cfg.http.keepAliveTimeoutSeconds, 0));
    params->setMaxKeepAliveRequests(cfg.http.keepAliveMaxRequests == 0 ? 1000000000 : cfg.http.keepAliveMaxRequests);
    params->setTimeout(Poco::Timespan(cfg.http.timeoutSeconds, 0));
    params->setServerName("Hearth");
    params->setSoftwareVersion(std::string("Hearth/") + kVersion);

    std::unique_ptr<MllpListener> mllp;
    int mllpPort = 0;
    if (bridge) {
      Poco::Net::SocketAddress maddr(cfg.mllp.host, static_cast<Poco::UInt16>(cfg.mllpPort));
      std::unique_ptr<Poco::Net::ServerSocket> msock;
      if (cfg.mllp.tls) {
        Poco::Net::Context::Ptr tls = new Poco::Net::Context(
            Poco::Net::Context::TLS_SERVER_USE, cfg.http.tlsPrivateKey, cfg.http.tlsCertificate, "",
            Poco::Net::Context::VERIFY_NONE, 9, false, "HIGH:!aNULL:!MD5:!RC4");
        tls->disableProtocols(Poco::Net::Context::PROTO_SSLV2 | Poco::Net::Context::PROTO_SSLV3 |
                              Poco::Net::Context::PROTO_TLSV1 | Poco::Net::Context::PROTO_TLSV1_1);
        msock = std::make_unique<Poco::Net::SecureServerSocket>(tls);
      } else {
        msock = std::make_unique<Poco::Net::ServerSocket>();
      }
      msock->bind(maddr, true);
      msock->listen(cfg.http.backlog);
      mllpPort = msock->address().port();
      MllpListenerOptions mo;
      mo.maxFrameBytes = cfg.mllp.maxFrameBytes;
      mo.idleTimeoutSeconds = cfg.mllp.idleTimeoutSeconds;
      mo.maxConnections = cfg.mllp.maxConnections;
      Hl7Bridge* b = bridge.get();
      mllp = std::make_unique<MllpListener>(
          *msock, mo, [b](std::string_view message, const std::string& peer) { return b->handle(message, peer); },
          [b](const std::string&) { return std::optional<std::string>(b->oversizeAck()); });
      mllp->start();
      logEvent("info", std::string("HL7 v2 MLLP listener on ") + (cfg.mllp.tls ? "tls://" : "") + cfg.mllp.host + ":" +
                           std::to_string(mllpPort));
    }

    Poco::ThreadPool pool("http", 4, cfg.http.threads, 60);
    Poco::Net::HTTPServer server(new HearthRequestHandlerFactory(ctx), pool, *socket, params);
    server.start();
    if (cfg.subscriptions.enabled) subscriptions.start();
    notifier.start();
    if (!cfg.portFile.empty()) writePortFile(cfg.portFile, httpPort, mllpPort);
    logEvent("info", "Hearth " + std::string(kVersion) + " listening on " + (ctx.tls ? "https://" : "http://") +
                         cfg.http.host + ":" + std::to_string(httpPort) + "/fhir (store: " + store->backendName() +
                         ", " + std::to_string(model.resourceTypes().size()) + " resource types)");

    waitForTerminationRequest();

    // Graceful shutdown: stop accepting, let in-flight requests finish, then close idle
    // keep-alive connections.
    logEvent("info", "shutdown requested; finishing in-flight requests");
    // MLLP first: no new message is accepted; messages being handled finish (and are ACKed).
    if (mllp) mllp->stop(cfg.http.shutdownGraceSeconds);
    if (bridge) {
      // Commit the applied messages and drop the journal segments they no longer need.
      service.flushApplied(true);
      if (journal) journal->closeCurrent();
      bridge->reclaimJournal();
    }
    logEvent("info", "shutdown: MLLP listener stopped");
    subscriptions.closeWebSockets();  // open subscription WebSockets end within a second
    server.stopAll(false);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(cfg.http.shutdownGraceSeconds);
    while (ctx.inFlight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    server.stopAll(true);
    const auto closeDeadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (server.currentConnections() > 0 && std::chrono::steady_clock::now() < closeDeadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pool.joinAll();
    logEvent("info", "shutdown: HTTP stopped");
    notifier.stop();
    subscriptions.stop();
    if (hl7Outbox) hl7Outbox->stop();  // HL7 v2 outbound: finish the message in flight
    if (audit) {
      authRuntime->setAuditSink(nullptr);
      audit->stop();  // write every queued AuditEvent
    }
    logEvent("info", "shutdown: background workers stopped");
  } catch (const Poco::Exception& e) {
    logEvent("error", "HTTP server failed: " + e.displayText());
    return EXIT_SOFTWARE;
  }
  if (accessLog) accessLog.reset();
  if (logOut != stderr) std::fclose(logOut);
  logEvent("info", "Hearth stopped");
  return EXIT_OK;
}

}  // namespace hearth::server
