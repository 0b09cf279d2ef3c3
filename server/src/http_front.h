#pragma once
// The HTTP front: a Poco HTTPRequestHandlerFactory whose handlers route each request to the FHIR
// interactions, health and metrics, and turn every FhirError into an OperationOutcome.
// ServerContext is shared by all handler threads; everything in it is thread-safe or immutable.
#include <Poco/Net/HTTPRequestHandlerFactory.h>

#include <atomic>
#include <memory>
#include <string>

#include "access_log.h"
#include "hearth/fhir/interactions.h"
#include "hearth/fhir/search.h"
#include "hearth/fhir/service.h"
#include "hearth/server/config.h"
#include "metrics.h"

namespace hearth::workflows {
class SubscriptionHub;
}

namespace hearth::server {

class Hl7Bridge;
class AccessControl;
class AuditTrail;
class VerifiedTokenCache;
class AuthRuntime;
class AuthServer;

struct ServerContext {
  const Config& config;
  fhir::ResourceService& service;
  fhir::SearchEngine& search;
  fhir::InteractionProcessor& interactions;
  Metrics& metrics;
  AccessLog* accessLog = nullptr;  // null when log.access=false
  std::string softwareVersion;
  std::atomic<int> inFlight{0};
  std::atomic<bool> tls{false};
  std::atomic<int> boundPort{0};  // the HTTP port actually bound (differs from config with port 0)
  Hl7Bridge* hl7 = nullptr;       // the inbound HL7 v2 bridge; null when MLLP is off
  // R4 Subscriptions; serves the websocket channel at /fhir/websocket. Null when subscriptions are off.
  workflows::SubscriptionHub* subscriptions = nullptr;
  AccessControl* access = nullptr;  // FHIR access control (access_control.h); null = everything open
  AuditTrail* audit = nullptr;      // the audit trail (audit.h); null when audit.enabled=false
  VerifiedTokenCache* verifiedTokens = nullptr;  // verified JWTs (token_cache.h); null = no cache
  AuthRuntime* auth = nullptr;    // keys, cache, roles, token check (auth_runtime.h); always set by app.cpp
  AuthServer* authServer = nullptr;  // /auth/..., /.well-known/..., /admin/users|clients (auth_server.h)
};

class HearthRequestHandlerFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit HearthRequestHandlerFactory(ServerContext& ctx) : ctx_(ctx) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest& request) override;

 private:
  ServerContext& ctx_;
};

}  // namespace hearth::server
