#include "hearth/workflows/notifications.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <ctime>
#include <random>
#include <set>
#include <vector>

#include "workflow_support.h"
#include "hearth/fhir/error.h"
#include "hearth/fhir/json.h"
#include "hearth/fhir/store.h"

namespace hearth::workflows {

namespace {

using namespace detail;

using fhir::FhirError;
using fhir::SqlRow;
using fhir::SqlValue;

constexpr const char* kSystem = "urn:hearth:notification";






// Relative "Type/id" of a Reference object, or "".
std::string reference(const rapidjson::Value& ref) {
  const std::string r(str(ref, "reference"));
  if (r.find(':') != std::string::npos || r.find('/') == std::string::npos) return {};
  return r.substr(0, r.find('/', r.find('/') + 1));
}

// The readable name of a CodeableConcept: text, else the first coding's display, else its code.
std::string conceptText(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject() || !obj.HasMember(name)) return {};
  const rapidjson::Value& cc = obj[name];
  if (!str(cc, "text").empty()) return std::string(str(cc, "text"));
  if (cc.IsObject() && cc.HasMember("coding") && cc["coding"].IsArray() && !cc["coding"].Empty()) {
    const auto& c = cc["coding"][0];
    return std::string(!str(c, "display").empty() ? str(c, "display") : str(c, "code"));
  }
  return {};
}

// Builds a Communication (compact JSON) with rapidjson, so every value is escaped.
std::string communication(const std::string& identifier, const std::string& category, const std::string& subject,
                          const std::vector<std::string>& recipients, const std::string& about,
                          const std::string& message) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto refObj = [&](const std::string& r) {
    w.StartObject();
    w.Key("reference");
    w.String(r.c_str(), static_cast<rapidjson::SizeType>(r.size()));
    w.EndObject();
  };
  w.StartObject();
  w.Key("resourceType");
  w.String("Communication");
  w.Key("identifier");
  w.StartArray();
  w.StartObject();
  w.Key("system");
  w.String(kSystem);
  w.Key("value");
  w.String(identifier.c_str(), static_cast<rapidjson::SizeType>(identifier.size()));
  w.EndObject();
  w.EndArray();
  w.Key("status");
  w.String("completed");
  w.Key("category");
  w.StartArray();
  w.StartObject();
  w.Key("coding");
  w.StartArray();
  w.StartObject();
  w.Key("system");
  w.String("http://terminology.hl7.org/CodeSystem/communication-category");
  w.Key("code");
  w.String(category.c_str(), static_cast<rapidjson::SizeType>(category.size()));
  w.EndObject();
  w.EndArray();
  w.EndObject();
  w.EndArray();
  if (!subject.empty()) {
    w.Key("subject");
    refObj(subject);
  }
  w.Key("about");
  w.StartArray();
  refObj(about);
  w.EndArray();
  w.Key("sent");
  const std::string sent = isoUtc(nowUs());
  w.String(sent.c_str(), static_cast<rapidjson::SizeType>(sent.size()));
  if (!recipients.empty()) {
    w.Key("recipient");
    w.StartArray();
    for (const auto& r : recipients) refObj(r);
    w.EndArray();
  }
  w.Key("payload");
  w.StartArray();
  w.StartObject();
  w.Key("contentString");
  w.String(message.c_str(), static_cast<rapidjson::SizeType>(message.size()));
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return buf.GetString();
}

}  // namespace

ClinicalNotifier::ClinicalNotifier(fhir::ResourceService& service, fhir::InteractionProcessor& interactions,
                                   NotificationOptions options)
    : service_(service), interactions_(interactions), options_(options) {}

ClinicalNotifier::~ClinicalNotifier() { stop(); }

void ClinicalNotifier::install() {
  if (!options_.labAlerts) return;
  service_.addWriteObserver([this](fhir::StoreTransaction& tx, const fhir::StoredVersion& v) {
    if (v.type != "DiagnosticReport" || v.deleted) return;
    const rapidjson::Document doc = fhir::parseJson(v.json);
    if (str(doc, "status") != "final") return;
    const int64_t now = nowUs();
    tx.execute({"INSERT INTO event_outbox (id, kind, subscription_id, resource, seq, payload, status, attempts, "
                "next_attempt_us, created_us) VALUES (?, 'lab-alert', '', ?, ?, '', 'pending', 0, ?, ?)",
                {fhir::newResourceId(), "DiagnosticReport/" + v.id + "/_history/" + std::to_string(v.version), v.seq, now, now}});
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_one();
  });
}

void ClinicalNotifier::start() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void ClinicalNotifier::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    wake_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void ClinicalNotifier::run() {
  auto nextScan = std::chrono::steady_clock::now();
  for (;;) {
    bool worked = false;
    try {
      if (options_.labAlerts) worked = processLabAlert();
      if (options_.reminderHours > 0 && std::chrono::steady_clock::now() >= nextScan) {
        scanReminders();
        nextScan = std::chrono::steady_clock::now() + std::chrono::seconds(options_.scanIntervalSeconds);
      }
    } catch (const std::exception&) {
      worked = false;  // store unavailable or a write refused: retried on the next round
    }
    std::unique_lock<std::mutex> lock(mutex_);
    if (stopping_) return;
    if (!worked) wake_.wait_for(lock, std::chrono::milliseconds(options_.pollIntervalMs));
  }
}

// One batch of due lab alerts. The query walks event_outbox_queue (subscription_id, status, seq):
// lab alerts carry subscription_id ''. (It named only kind and status before, so SQLite sorted
// every pending row by seq for each alert: after a bulk import of 40k final reports that was a
// scan of tens of thousands of rows per alert, a core kept busy, and one synced commit per alert
// that emptied every read connection's page cache each time.) Outcomes are recorded in one
// transaction per batch. A crash or an unavailable store mid-batch leaves the unrecorded rows
// pending: they are processed again, and the Communication is created conditionally on its
// identifier, so nobody is alerted twice.
bool ClinicalNotifier::processLabAlert() {
  constexpr int kBatch = 64;
  fhir::ResourceStore& store = service_.store();
  // (kind || '' and next_attempt_us + 0 keep SQLite's planner off event_outbox_due, which it
  // prefers without statistics and which needs a sort.)
  const auto rows = store.query({"SELECT id, resource FROM event_outbox WHERE subscription_id = '' AND status = 'pending' "
                                 "AND kind || '' = 'lab-alert' AND next_attempt_us + 0 <= ? ORDER BY seq LIMIT " +
                                     std::to_string(kBatch),
                                 {nowUs()}});
  if (rows.empty()) return false;
  std::vector<std::pair<std::string, AlertOutcome>> outcomes;  // event_outbox id -> outcome
  auto record = [&] {
    if (outcomes.empty()) return;
    auto tx = store.begin();
    for (const auto& [rowId, o] : outcomes) {
      tx->execute({"UPDATE event_outbox SET status = ?, attempts = attempts + 1, last_error = ?, delivered_us = ? "
                   "WHERE id = ? AND status = 'pending'",
                   {o.status, o.error, nowUs(), rowId}});
    }
    tx->commit();
    outcomes.clear();
  };
  try {
    for (const SqlRow& row : rows) outcomes.emplace_back(text(row[0]), labAlert(text(row[1])));
  } catch (...) {
    record();  // what was decided stands; the rest stays pending
    throw;
  }
  record();
  return true;
}

// Alerts about one report version (resource = DiagnosticReport/<id>/_history/<version>):
// delivered (the Communication exists) or dropped with the reason. Throws when the store is
// unavailable.
ClinicalNotifier::AlertOutcome ClinicalNotifier::labAlert(const std::string& resource) {
  const size_t a = resource.find('/'), b = resource.find("/_history/");
  const std::string id = resource.substr(a + 1, b - a - 1);
  const int64_t version = std::stoll(resource.substr(b + 10));
  fhir::StoredVersion report;
  try {
    report = service_.vread("DiagnosticReport", id, version);
  } catch (const FhirError& e) {
    if (e.status() >= 500) throw;
    return {"dropped", "the report version is gone"};
  }
  const rapidjson::Document doc = fhir::parseJson(report.json);
  std::set<std::string> recipients;
  if (doc.HasMember("basedOn") && doc["basedOn"].IsArray()) {
    for (const auto& based : doc["basedOn"].GetArray()) {
      const std::string ref = reference(based);
      if (ref.rfind("ServiceRequest/", 0) != 0) continue;
      std::shared_ptr<const fhir::StoredVersion> order;
      try {
        order = service_.read("ServiceRequest", ref.substr(15));
      } catch (const FhirError& e) {
        if (e.status() >= 500) throw;
        continue;  // the order is unknown or deleted: nobody to tell through it
      }
      const rapidjson::Document o = fhir::parseJson(order->json);
      if (o.HasMember("requester")) {
        const std::string requester = reference(o["requester"]);
        if (requester.rfind("Practitioner/", 0) == 0 || requester.rfind("PractitionerRole/", 0) == 0) {
          recipients.insert(requester);
        }
      }
    }
  }
  if (recipients.empty()) return {"dropped", "no ordering practitioner on the report's orders"};
  std::string subject;
  if (doc.HasMember("subject")) subject = reference(doc["subject"]);
  const std::string code = conceptText(doc, "code");
  const std::string identifier = "lab-result:DiagnosticReport/" + id;
  const std::string body =
      communication(identifier, "alert", subject, {recipients.begin(), recipients.end()}, "DiagnosticReport/" + id,
                    "Lab report final" + (code.empty() ? std::string() : ": " + code));
  interactions_.conditionalCreate("Communication", body, std::string("identifier=") + kSystem + "|" + identifier);
  return {"delivered", ""};
}

void ClinicalNotifier::scanReminders() {
  const int64_t now = nowUs();
  const int64_t until = now + int64_t{options_.reminderHours} * 3600 * 1000000;
  // Booked appointments starting in the window that have no reminder yet.
  const auto rows = service_.store().query(
      {"SELECT d.id FROM search_date d WHERE d.type = 'Appointment' AND d.param = 'date' AND d.lo >= ? AND d.lo <= ? "
       "AND EXISTS (SELECT 1 FROM search_token s WHERE s.type = 'Appointment' AND s.id = d.id "
       "AND s.param || '' = 'status' AND s.code || '' = 'booked') "
       "AND NOT EXISTS (SELECT 1 FROM search_token t WHERE t.type = 'Communication' AND t.param = 'identifier' "
       "AND t.system = ? AND t.code = 'reminder:Appointment/' || d.id) LIMIT 500",
       {now, until, std::string(kSystem)}});
  for (const SqlRow& row : rows) {
    const std::string id = text(row[0]);
    std::shared_ptr<const fhir::StoredVersion> appt;
    try {
      appt = service_.read("Appointment", id);
    } catch (const FhirError&) {
      continue;
    }
    const rapidjson::Document doc = fhir::parseJson(appt->json);
    std::vector<std::string> recipients;
    std::string subject;
    if (doc.HasMember("participant") && doc["participant"].IsArray()) {
      for (const auto& p : doc["participant"].GetArray()) {
        if (!p.IsObject() || !p.HasMember("actor") || str(p, "status") == "declined") continue;
        const std::string ref = reference(p["actor"]);
        if (ref.empty()) continue;
        if (ref.rfind("Patient/", 0) == 0 && subject.empty()) subject = ref;
        if (ref.rfind("Patient/", 0) == 0 || ref.rfind("Practitioner/", 0) == 0 ||
            ref.rfind("RelatedPerson/", 0) == 0 || ref.rfind("PractitionerRole/", 0) == 0) {
          recipients.push_back(ref);
        }
      }
    }
    const std::string identifier = "reminder:Appointment/" + id;
    const std::string body = communication(identifier, "reminder", subject, recipients, "Appointment/" + id,
                                           "Reminder: appointment at " + std::string(str(doc, "start")));
    interactions_.conditionalCreate("Communication", body, std::string("identifier=") + kSystem + "|" + identifier);
  }
}

}  // namespace hearth::workflows
