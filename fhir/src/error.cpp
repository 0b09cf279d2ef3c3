#include "hearth/fhir/error.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace hearth::fhir {

const char* issueTypeCode(IssueType t) {
  switch (t) {
    case IssueType::Invalid: return "invalid";
    case IssueType::Structure: return "structure";
    case IssueType::Required: return "required";
    case IssueType::Value: return "value";
    case IssueType::Invariant: return "invariant";
    case IssueType::Security: return "security";
    case IssueType::Login: return "login";
    case IssueType::Unknown: return "unknown";
    case IssueType::Expired: return "expired";
    case IssueType::Forbidden: return "forbidden";
    case IssueType::Suppressed: return "suppressed";
    case IssueType::Processing: return "processing";
    case IssueType::NotSupported: return "not-supported";
    case IssueType::Duplicate: return "duplicate";
    case IssueType::MultipleMatches: return "multiple-matches";
    case IssueType::NotFound: return "not-found";
    case IssueType::Deleted: return "deleted";
    case IssueType::TooLong: return "too-long";
    case IssueType::CodeInvalid: return "code-invalid";
    case IssueType::Extension: return "extension";
    case IssueType::TooCostly: return "too-costly";
    case IssueType::BusinessRule: return "business-rule";
    case IssueType::Conflict: return "conflict";
    case IssueType::Transient: return "transient";
    case IssueType::LockError: return "lock-error";
    case IssueType::NoStore: return "no-store";
    case IssueType::Exception: return "exception";
    case IssueType::Timeout: return "timeout";
    case IssueType::Incomplete: return "incomplete";
    case IssueType::Throttled: return "throttled";
    case IssueType::Informational: return "informational";
  }
  return "exception";
}

const char* severityCode(Severity s) {
  switch (s) {
    case Severity::Fatal: return "fatal";
    case Severity::Error: return "error";
    case Severity::Warning: return "warning";
    case Severity::Information: return "information";
  }
  return "error";
}

FhirError::FhirError(int httpStatus, IssueType type, std::string diagnostics, std::string expression)
    : status_(httpStatus) {
  issues_.push_back(Issue{Severity::Error, type, std::move(diagnostics), std::move(expression)});
}

FhirError::FhirError(int httpStatus, std::vector<Issue> issues)
    : status_(httpStatus), issues_(std::move(issues)) {}

const char* FhirError::what() const noexcept {
  return issues_.empty() ? "FHIR error" : issues_.front().diagnostics.c_str();
}

std::string operationOutcomeJson(const std::vector<Issue>& issues) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("resourceType");
  w.String("OperationOutcome");
  w.Key("issue");
  w.StartArray();
  for (const Issue& i : issues) {
    w.StartObject();
    w.Key("severity");
    w.String(severityCode(i.severity));
    w.Key("code");
    w.String(issueTypeCode(i.type));
    if (!i.diagnostics.empty()) {
      w.Key("diagnostics");
      w.String(i.diagnostics.data(), static_cast<rapidjson::SizeType>(i.diagnostics.size()));
    }
    if (!i.expression.empty()) {
      w.Key("expression");
      w.StartArray();
      w.String(i.expression.data(), static_cast<rapidjson::SizeType>(i.expression.size()));
      w.EndArray();
    }
    w.EndObject();
  }
  if (issues.empty()) {  // OperationOutcome.issue is 1..*
    w.StartObject();
    w.Key("severity");
    w.String("information");
    w.Key("code");
    w.String("informational");
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string operationOutcomeJson(Severity s, IssueType t, std::string_view diagnostics) {
  return operationOutcomeJson({Issue{s, t, std::string(diagnostics), {}}});
}

}  // namespace hearth::fhir
