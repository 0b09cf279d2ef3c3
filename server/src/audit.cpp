#include "audit.h"

#include <Poco/Base64Encoder.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <sstream>

#include "access_control.h"
#include "access_log.h"
#include "auth_runtime.h"
#include "hearth/fhir/json.h"

namespace hearth::server {

namespace {

int64_t steadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string base64(const std::string& bytes) {
  std::ostringstream out;
  Poco::Base64Encoder enc(out);
  enc.rdbuf()->setLineLength(0);
  enc << bytes;
  enc.close();
  return out.str();
}

void str(std::string& out, std::string_view name, std::string_view value) {
  out += '"';
  out += name;
  out += "\":\"";
  fhir::appendJsonEscaped(out, value);
  out += '"';
}

void coding(std::string& out, std::string_view system, std::string_view code, std::string_view display) {
  out += '{';
  str(out, "system", system);
  out += ',';
  str(out, "code", code);
  if (!display.empty()) {
    out += ',';
    str(out, "display", display);
  }
  out += '}';
}

void addUnique(std::vector<std::string>& v, std::string s, size_t cap) {
  if (s.empty() || v.size() >= cap) return;
  if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(std::move(s));
}

std::string member(const rapidjson::Value& v, const char* name) {
  if (!v.IsObject()) return {};
  auto it = v.FindMember(name);
  return it != v.MemberEnd() && it->value.IsString() ? it->value.GetString() : std::string();
}

}  // namespace

AuditTrail::AuditTrail(fhir::ResourceService& service, const AccessControl& access, size_t queueLimit)
    : service_(service), access_(access), limit_(std::max<size_t>(queueLimit, 1)) {}

AuditTrail::~AuditTrail() { stop(); }

void AuditTrail::start() {
  std::lock_guard lk(mu_);
  if (started_) return;
  started_ = true;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
  materializer_ = std::thread([this] { runMaterializer(); });
}

void AuditTrail::stop() {
  {
    std::lock_guard lk(mu_);
    if (!started_) return;
    stopping_ = true;
  }
  notEmpty_.notify_all();
  materializerWake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (materializer_.joinable()) materializer_.join();
  std::lock_guard lk(mu_);
  started_ = false;
  loggedCv_.notify_all();
}

void AuditTrail::record(AuditRecord r) {
  if (r.recorded.empty()) r.recorded = fhir::nowInstant().text;
  std::unique_lock lk(mu_);
  notFull_.wait(lk, [&] { return queue_.size() < limit_ || stopping_ || !started_; });
  if (!started_) {
    // Not running (start-up or after stop): write synchronously so nothing is lost.
    lk.unlock();
    try {
      const std::string json = toJson(r);
      service_.create("AuditEvent", json);
      std::lock_guard g(mu_);
      ++written_;
    } catch (const std::exception& e) {
      std::lock_guard g(mu_);
      ++failed_;
      logEvent("error", std::string("audit: could not store an AuditEvent: ") + e.what());
    }
    return;
  }
  const bool wasEmpty = queue_.empty();
  queue_.push_back(std::move(r));
  ++enqueued_;
  lastRecordMs_.store(steadyMs(), std::memory_order_relaxed);
  lk.unlock();
  if (wasEmpty) notEmpty_.notify_one();  // the writer only sleeps on an empty queue
}

void AuditTrail::run() {
  std::vector<AuditRecord> batch;
  while (true) {
    {
      std::unique_lock lk(mu_);
      notEmpty_.wait(lk, [&] { return !queue_.empty() || stopping_; });
      if (queue_.empty() && stopping_) return;
      while (!queue_.empty() && batch.size() < kBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    notFull_.notify_all();
    // Entities first, then merge the successful reads of one agent/client/token/subtype.
    std::vector<AuditRecord> merged;
    merged.reserve(batch.size());
    for (AuditRecord& r : batch) {
      deriveEntities(r);
      if (r.action == 'R' && r.outcome == 0) {
        auto same = [&](const AuditRecord& m) {
          return m.action == 'R' && m.outcome == 0 && m.subtype == r.subtype && m.fhirUser == r.fhirUser &&
                 m.subject == r.subject && m.clientId == r.clientId && m.jti == r.jti && m.agentKind == r.agentKind &&
                 m.address == r.address && m.resources.size() + r.resources.size() <= kMaxEntities &&
                 m.patients.size() + r.patients.size() <= kMaxEntities;
        };
        auto it = std::find_if(merged.rbegin(), merged.rend(), same);
        if (it != merged.rend()) {
          if (it->periodStart.empty()) it->periodStart = it->recorded;
          it->recorded = r.recorded;
          for (auto& x : r.resources) addUnique(it->resources, std::move(x), kMaxEntities);
          for (auto& x : r.patients) addUnique(it->patients, std::move(x), kMaxEntities);
          continue;
        }
      }
      merged.push_back(std::move(r));
    }
    // One append per AuditEvent, one synced transaction per batch; the materializer makes them
    // resources (see the file comment in audit.h).
    std::vector<std::string> events;
    events.reserve(merged.size());
    size_t unbuilt = 0;
    for (const AuditRecord& r : merged) {
      try {
        events.push_back(toJson(r));
      } catch (const std::exception& e) {
        ++unbuilt;
        logEvent("error", std::string("audit: could not build an AuditEvent: ") + e.what());
      }
    }
    bool ok = false;
    try {
      const int64_t now = fhir::nowInstant().epochMicros;
      service_.runAtomicAlone([&](fhir::WriteContext& w) {
        for (const std::string& e : events) {
          w.tx().execute({"INSERT INTO audit_log (created_us, event) VALUES (?, ?)", {now, e}});
        }
      });
      ok = true;
    } catch (const std::exception& e) {
      logEvent("error", "audit: could not store " + std::to_string(events.size()) + " AuditEvents: " + e.what());
    }
    {
      std::lock_guard lk(mu_);
      failed_ += unbuilt;
      if (ok) {
        written_ += batch.size();
      } else {
        failed_ += batch.size();
      }
      logged_ += batch.size();
    }
    loggedCv_.notify_all();
    if (ok) materializerWake_.notify_one();
    batch.clear();
  }
}

size_t AuditTrail::materialize(size_t max) {
  std::lock_guard m(materializeMu_);
  fhir::ResourceStore& store = service_.store();
  const auto rows = store.query({"SELECT seq, event FROM audit_log ORDER BY seq LIMIT ?", {static_cast<int64_t>(max)}});
  if (rows.empty()) return 0;
  // Parsed, validated and index-extracted before the transaction (it holds the store's writer).
  struct Row {
    int64_t seq;
    std::optional<fhir::PreparedResource> event;
  };
  std::vector<Row> todo;
  todo.reserve(rows.size());
  size_t unbuilt = 0;
  for (const fhir::SqlRow& row : rows) {
    Row t{std::get<int64_t>(row.at(0)), std::nullopt};
    try {
      t.event = service_.prepare("AuditEvent", std::get<std::string>(row.at(1)));
    } catch (const std::exception& e) {
      // Dropped from the log (a row that can never be stored must not block the others).
      ++unbuilt;
      logEvent("error", std::string("audit: a logged AuditEvent is not valid and was dropped: ") + e.what());
    }
    todo.push_back(std::move(t));
  }
  service_.runAtomicAlone([&](fhir::WriteContext& w) {
    for (const Row& t : todo) {
      // The DELETE claims the row: 0 rows affected means another node materialized it.
      if (w.tx().execute({"DELETE FROM audit_log WHERE seq = ?", {t.seq}}) == 1 && t.event) w.create(*t.event);
    }
  });
  if (unbuilt) {
    std::lock_guard lk(mu_);
    failed_ += unbuilt;
  }
  return rows.size();
}

void AuditTrail::flush() {
  {
    std::unique_lock lk(mu_);
    if (started_) {
      const uint64_t target = enqueued_;
      loggedCv_.wait(lk, [&] { return logged_ >= target || !started_; });
    }
  }
  while (materialize(256) > 0) {
  }
}

void AuditTrail::runMaterializer() {
  constexpr int64_t kQuietMs = 200;  // no record for this long: drain the whole log
  // Else at most this many AuditEvents per round (10 rounds/s): a merged event carries up to
  // kMaxEntities entities, i.e. ~2 random index rows each, so this bounds the background write
  // load (and how long it holds the store's writer) while accesses keep coming.
  constexpr size_t kTrickle = 2;
  for (;;) {
    {
      std::unique_lock lk(mu_);
      materializerWake_.wait_for(lk, std::chrono::milliseconds(100), [&] { return stopping_; });
      if (stopping_) return;
    }
    try {
      const bool quiet = steadyMs() - lastRecordMs_.load(std::memory_order_relaxed) >= kQuietMs;
      if (quiet) {
        while (materialize(256) > 0) {
          std::lock_guard lk(mu_);
          if (stopping_ || steadyMs() - lastRecordMs_.load(std::memory_order_relaxed) < kQuietMs) break;
        }
      } else {
        materialize(kTrickle);
      }
    } catch (const std::exception& e) {
      logEvent("error", std::string("audit: could not materialize logged AuditEvents: ") + e.what());
    }
  }
}

uint64_t AuditTrail::written() const {
  std::lock_guard lk(mu_);
  return written_;
}
uint64_t AuditTrail::failed() const {
  std::lock_guard lk(mu_);
  return failed_;
}

void AuditTrail::setAgent(AuditRecord& r, const auth::AccessContext& who) {
  using Kind = auth::AccessContext::Kind;
  r.fhirUser = who.fhirUser;
  r.subject = who.subject;
  r.clientId = who.clientId;
  r.jti = who.jti;
  switch (who.kind) {
    case Kind::Open: r.agentKind = "anonymous"; break;
    case Kind::User: r.agentKind = "user"; break;
    case Kind::Backend: r.agentKind = "backend"; break;
    case Kind::Service: r.agentKind = "service"; break;
  }
  if (!who.patient.empty()) addUnique(r.patients, who.patient, kMaxEntities);
}

void AuditTrail::recordLogin(const std::string& user, const std::string& fhirUser, const std::string& clientId,
                             bool success, const std::string& address, const std::string& reason) {
  AuditRecord r;
  r.typeSystem = "http://dicom.nema.org/resources/ontology/DCM";
  r.typeCode = "110114";
  r.typeDisplay = "User Authentication";
  r.subtypeSystem = "http://dicom.nema.org/resources/ontology/DCM";
  r.subtype = "110122";  // Login
  r.action = 'E';
  r.outcome = success ? 0 : 4;
  r.outcomeDesc = reason;
  r.fhirUser = fhirUser;
  r.subject = user;
  r.clientId = clientId;
  r.agentKind = "user";
  r.address = address;
  if (fhirUser.starts_with("Patient/")) r.patients.push_back(fhirUser.substr(8));
  record(std::move(r));
}

void AuditTrail::recordTokenIssued(const auth::AccessContext& token, const std::string& grantType,
                                   const std::string& address) {
  AuditRecord r;
  r.typeSystem = "http://dicom.nema.org/resources/ontology/DCM";
  r.typeCode = "110114";
  r.typeDisplay = "User Authentication";
  r.subtypeSystem = "urn:hearth:audit-subtype";
  r.subtype = "token-issued";
  r.action = 'E';
  r.outcomeDesc = "grant_type=" + grantType + "; scope=" + token.scopes.granted();
  setAgent(r, token);
  r.address = address;
  record(std::move(r));
}

void AuditTrail::recordDenied(const auth::AccessContext& who, const std::string& subtype, char action,
                              const std::string& resource, const std::string& reason, const std::string& address) {
  AuditRecord r;
  r.subtype = subtype;
  r.action = action;
  r.outcome = 4;
  r.outcomeDesc = reason;
  setAgent(r, who);
  r.address = address;
  if (!resource.empty()) r.resources.push_back(resource);
  record(std::move(r));
}

void AuditTrail::recordAuthEvent(const AuthEvent& e) {
  try {
    using T = AuthEvent::Type;
    if (e.type == T::AccessDenied) return;
    if (e.type == T::Login) {
      recordLogin(e.subject, e.fhirUser, e.clientId, e.success, e.remoteAddress, e.reason);
      return;
    }
    AuditRecord r;
    r.typeSystem = "http://dicom.nema.org/resources/ontology/DCM";
    r.typeCode = "110114";
    r.typeDisplay = "User Authentication";
    r.subtypeSystem = "urn:hearth:audit-subtype";
    r.subtype = e.type == T::TokenIssued    ? "token-issued"
                : e.type == T::TokenRefused ? "token-refused"
                : e.type == T::Revoked      ? "token-revoked"
                                            : "account-change";
    r.action = e.type == T::Admin ? 'U' : 'E';
    r.outcome = e.success ? 0 : 4;
    r.outcomeDesc = e.grantType.empty() ? e.reason : "grant_type=" + e.grantType + (e.reason.empty() ? "" : "; " + e.reason);
    r.fhirUser = e.fhirUser;
    r.subject = e.subject;
    r.clientId = e.clientId;
    r.jti = e.jti;
    r.agentKind = "user";
    r.address = e.remoteAddress;
    if (!e.patient.empty()) r.patients.push_back(e.patient);
    if (e.fhirUser.starts_with("Patient/")) addUnique(r.patients, e.fhirUser.substr(8), kMaxEntities);
    record(std::move(r));
  } catch (const std::exception& ex) {
    logEvent("error", std::string("audit: could not record an authorization event: ") + ex.what());
  }
}

namespace {

// Every "reference": "Patient/<id>" (relative, or absolute ending in Patient/<id>) in a resource:
// the patients it concerns. Cheaper than evaluating the compartment parameters, and for an audit
// record a patient referenced in any role is one the access concerned.
void scanPatients(const rapidjson::Value& v, std::vector<std::string>& out, size_t cap, int depth = 0) {
  if (depth > 32 || out.size() >= cap) return;
  if (v.IsObject()) {
    for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
      if (m->value.IsString() && std::string_view(m->name.GetString(), m->name.GetStringLength()) == "reference") {
        std::string_view ref(m->value.GetString(), m->value.GetStringLength());
        const size_t h = ref.find("/_history/");
        if (h != std::string_view::npos) ref = ref.substr(0, h);
        const size_t p = ref.rfind("Patient/");
        if (p != std::string_view::npos && (p == 0 || ref[p - 1] == '/')) {
          std::string id(ref.substr(p + 8));
          if (!id.empty() && id.find('/') == std::string::npos) addUnique(out, std::move(id), cap);
        }
      } else {
        scanPatients(m->value, out, cap, depth + 1);
      }
    }
  } else if (v.IsArray()) {
    for (const auto& e : v.GetArray()) scanPatients(e, out, cap, depth + 1);
  }
}

}  // namespace

void AuditTrail::deriveEntities(AuditRecord& r) const {
  std::vector<std::string>& patients = r.patients;
  std::vector<std::string>& resources = r.resources;
  // A single resource read whose body mentions no Patient reference adds nothing to what the path
  // already said (its Type/id, and the id when it is a Patient): spare parsing it (a read storm
  // would otherwise cost the writer a JSON parse per read).
  if (!r.body.empty() && (r.subtype == "read" || r.subtype == "vread") && resources.size() == 1 &&
      r.body.find("Patient/") == std::string::npos) {
    r.body.clear();
    r.body.shrink_to_fit();
  }
  if (!r.body.empty()) {
    try {
      rapidjson::Document doc = fhir::parseJson(r.body);
      auto note = [&](const rapidjson::Value& res) {
        const std::string type = member(res, "resourceType"), id = member(res, "id");
        if (type.empty() || type == "OperationOutcome") return;
        if (!id.empty()) addUnique(resources, type + "/" + id, kMaxEntities);
        if (type == "Patient") addUnique(patients, id, kMaxEntities);
        scanPatients(res, patients, kMaxEntities);
      };
      if (member(doc, "resourceType") == "Bundle" && doc.HasMember("entry") && doc["entry"].IsArray()) {
        for (const auto& e : doc["entry"].GetArray()) {
          if (e.IsObject() && e.HasMember("resource")) {
            const auto& res = e["resource"];
            if (member(res, "resourceType") == "Bundle" && res.HasMember("entry") && res["entry"].IsArray()) {
              for (const auto& inner : res["entry"].GetArray())
                if (inner.IsObject() && inner.HasMember("resource")) note(inner["resource"]);
            } else {
              note(res);
            }
          }
          if (e.IsObject() && e.HasMember("response") && e["response"].IsObject()) {
            std::string loc = member(e["response"], "location");
            // "Type/id/_history/n" -> "Type/id"
            auto h = loc.find("/_history");
            if (h != std::string::npos) loc.resize(h);
            if (!loc.empty()) addUnique(resources, loc, kMaxEntities);
          }
        }
      } else {
        note(doc);
      }
    } catch (const std::exception&) {
      // Not JSON (e.g. an empty or minimal body): the explicit entities stay.
    }
    r.body.clear();
    r.body.shrink_to_fit();
  }
  // A denial carries no body: the patient is the one of the resource that was asked for (looked
  // up here, on the writer thread, so a refused request costs nothing extra).
  if (r.outcome != 0 && patients.empty()) {
    for (const std::string& ref : r.resources) {
      const size_t slash = ref.find('/');
      if (slash == std::string::npos) continue;
      try {
        auto v = service_.read(ref.substr(0, slash), ref.substr(slash + 1));
        rapidjson::Document doc = fhir::parseJson(v->json);
        for (auto& p : access_.compartmentPatients(ref.substr(0, slash), doc)) addUnique(patients, p, kMaxEntities);
      } catch (const std::exception&) {
        // Unknown or deleted: no patient to name.
      }
    }
  }
}

std::string AuditTrail::toJson(const AuditRecord& rec) const {
  AuditRecord derived;
  const AuditRecord* rp = &rec;
  if (!rec.body.empty()) {
    derived = rec;
    deriveEntities(derived);
    rp = &derived;
  }
  const AuditRecord& r = *rp;
  const std::vector<std::string>& patients = r.patients;
  const std::vector<std::string>& resources = r.resources;

  std::string out;
  out.reserve(1024);
  out += "{\"resourceType\":\"AuditEvent\",\"type\":";
  coding(out, r.typeSystem, r.typeCode, r.typeDisplay);
  out += ",\"subtype\":[";
  coding(out, r.subtypeSystem, r.subtype, "");
  out += "],\"action\":\"";
  out += r.action;
  out += "\",";
  if (!r.periodStart.empty()) {
    out += "\"period\":{";
    str(out, "start", r.periodStart);
    out += ',';
    str(out, "end", r.recorded);
    out += "},";
  }
  str(out, "recorded", r.recorded.empty() ? fhir::nowInstant().text : r.recorded);
  out += ",\"outcome\":\"" + std::to_string(r.outcome) + "\"";
  if (!r.outcomeDesc.empty()) {
    out += ',';
    str(out, "outcomeDesc", r.outcomeDesc.substr(0, 1000));
  }
  // agent[0]: the requestor (the user, or the client for backend / service tokens)
  out += ",\"agent\":[{\"type\":{\"coding\":[";
  coding(out, "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP", "information recipient");
  out += "]},\"who\":";
  if (!r.fhirUser.empty()) {
    out += "{";
    str(out, "reference", r.fhirUser);
    out += "}";
  } else {
    const std::string kind = r.agentKind.empty() ? "anonymous" : r.agentKind;
    out += "{\"identifier\":{";
    str(out, "system", "urn:hearth:" + kind);
    out += ',';
    str(out, "value", r.subject.empty() ? kind : r.subject);
    out += "}}";
  }
  out += ",\"requestor\":true";
  if (!r.jti.empty()) {
    out += ",\"policy\":[\"";
    fhir::appendJsonEscaped(out, r.jti);
    out += "\"]";
  }
  if (!r.address.empty()) {
    out += ",\"network\":{";
    str(out, "address", r.address);
    out += ",\"type\":\"2\"}";
  }
  out += '}';
  // agent[1]: the OAuth client application
  if (!r.clientId.empty()) {
    out += ",{\"type\":{\"coding\":[";
    coding(out, "http://dicom.nema.org/resources/ontology/DCM", "110150", "Application");
    out += "]},\"who\":{\"identifier\":{";
    str(out, "system", "urn:hearth:oauth-client");
    out += ',';
    str(out, "value", r.clientId);
    out += "}},\"requestor\":false";
    if (!r.jti.empty()) {
      out += ",\"policy\":[\"";
      fhir::appendJsonEscaped(out, r.jti);
      out += "\"]";
    }
    out += '}';
  }
  out += "],\"source\":{\"site\":\"Hearth\",\"observer\":{\"display\":\"Hearth\"},\"type\":[";
  coding(out, "http://terminology.hl7.org/CodeSystem/security-source-type", "4", "Application Server");
  out += "]}";
  std::string entities;
  auto entity = [&](const std::string& body) {
    entities += entities.empty() ? "" : ",";
    entities += body;
  };
  for (const auto& p : patients) {
    std::string e = "{\"what\":{";
    str(e, "reference", "Patient/" + p);
    e += "},\"type\":";
    coding(e, "http://terminology.hl7.org/CodeSystem/audit-entity-type", "1", "Person");
    e += ",\"role\":";
    coding(e, "http://terminology.hl7.org/CodeSystem/object-role", "1", "Patient");
    e += '}';
    entity(e);
  }
  for (const auto& res : resources) {
    if (res.starts_with("Patient/") &&
        std::find(patients.begin(), patients.end(), res.substr(8)) != patients.end())
      continue;  // already listed as the patient
    std::string e = "{\"what\":{";
    str(e, "reference", res);
    e += "},\"type\":";
    coding(e, "http://terminology.hl7.org/CodeSystem/audit-entity-type", "2", "System Object");
    e += ",\"role\":";
    coding(e, "http://terminology.hl7.org/CodeSystem/object-role", "4", "Domain Resource");
    e += '}';
    entity(e);
  }
  if (!r.query.empty()) {
    std::string e = "{\"type\":";
    coding(e, "http://terminology.hl7.org/CodeSystem/audit-entity-type", "2", "System Object");
    e += ",\"role\":";
    coding(e, "http://terminology.hl7.org/CodeSystem/object-role", "24", "Query");
    e += ',';
    str(e, "query", base64(r.query));
    e += '}';
    entity(e);
  }
  if (!entities.empty()) out += ",\"entity\":[" + entities + "]";
  out += '}';
  return out;
}

}  // namespace hearth::server
