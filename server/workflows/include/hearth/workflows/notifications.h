#pragma once
// Clinical notifications as FHIR Communication resources (issue 6 items 5 and 7), which apps
// receive by subscribing (e.g. Communication?recipient=Practitioner/123, see subscriptions.h):
//
//  - Lab-result alerts: a DiagnosticReport version written with status final enqueues, in the
//    same transaction, a 'lab-alert' row in event_outbox (durable: a crash after the write does
//    not lose it). A worker then creates one Communication (category alert) to the ordering
//    doctors (requester of the ServiceRequests in DiagnosticReport.basedOn), about the report,
//    for its subject. Idempotent: the Communication carries the identifier
//    urn:hearth:notification|lab-result:DiagnosticReport/<id> and is created conditionally, so
//    the first final version alerts once; amended or corrected versions do not alert again. A
//    report without an ordering doctor is recorded as dropped (nobody to tell).
//  - Appointment reminders: every scan interval, Appointments with status booked starting within
//    the next reminderHours get one Communication (category reminder) to their participants
//    (identifier urn:hearth:notification|reminder:Appointment/<id>; created once).
// The payload text names the report code or the appointment time only.
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "hearth/fhir/interactions.h"
#include "hearth/fhir/service.h"

namespace hearth::workflows {

struct NotificationOptions {
  bool labAlerts = true;
  int reminderHours = 24;         // 0: no reminders
  int scanIntervalSeconds = 60;   // reminder scan period
  int pollIntervalMs = 200;       // lab-alert queue poll
};

class ClinicalNotifier {
 public:
  ClinicalNotifier(fhir::ResourceService& service, fhir::InteractionProcessor& interactions,
                   NotificationOptions options = {});
  ~ClinicalNotifier();
  ClinicalNotifier(const ClinicalNotifier&) = delete;
  ClinicalNotifier& operator=(const ClinicalNotifier&) = delete;

  void install();  // write observer (lab alerts)
  void start();    // worker thread
  void stop();

 private:
  void run();
  struct AlertOutcome {
    std::string status;  // event_outbox status: delivered | dropped
    std::string error;   // why it was dropped
  };
  bool processLabAlert();  // one batch; false when none was due
  AlertOutcome labAlert(const std::string& resource);
  void scanReminders();

  fhir::ResourceService& service_;
  fhir::InteractionProcessor& interactions_;
  NotificationOptions options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace hearth::workflows
