#pragma once
// The one error type of Hearth's FHIR layer.
//
// Every failure that should reach a client is a FhirError: an HTTP status plus one or more
// OperationOutcome issues (severity, IssueType code, diagnostics, FHIRPath expression).
// Only the HTTP boundary (server/) turns a FhirError into a response; code below it throws.
// Diagnostics must never carry SQL, stack traces, file paths or patient data.
#include <exception>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::fhir {

// R4 value set issue-type (http://hl7.org/fhir/issue-type), the codes Hearth uses.
enum class IssueType {
  Invalid, Structure, Required, Value, Invariant, Security, Login, Unknown, Expired,
  Forbidden, Suppressed, Processing, NotSupported, Duplicate, MultipleMatches, NotFound,
  Deleted, TooLong, CodeInvalid, Extension, TooCostly, BusinessRule, Conflict, Transient,
  LockError, NoStore, Exception, Timeout, Incomplete, Throttled, Informational
};
enum class Severity { Fatal, Error, Warning, Information };

const char* issueTypeCode(IssueType t);
const char* severityCode(Severity s);

struct Issue {
  Severity severity = Severity::Error;
  IssueType type = IssueType::Invalid;
  std::string diagnostics;
  std::string expression;  // FHIRPath of the offending element, e.g. "Patient.birthDate"; may be empty
};

class FhirError : public std::exception {
 public:
  FhirError(int httpStatus, IssueType type, std::string diagnostics, std::string expression = {});
  FhirError(int httpStatus, std::vector<Issue> issues);

  int status() const noexcept { return status_; }
  const std::vector<Issue>& issues() const noexcept { return issues_; }
  const char* what() const noexcept override;

  // Detail for the server log only (never sent to a client), e.g. why the store is unavailable.
  // Must not contain patient data.
  const std::string& internalDetail() const noexcept { return internalDetail_; }
  FhirError& withInternalDetail(std::string detail) {
    internalDetail_ = std::move(detail);
    return *this;
  }

 private:
  int status_;
  std::vector<Issue> issues_;
  std::string internalDetail_;
};

// Serialises issues as an R4 OperationOutcome resource (compact JSON).
std::string operationOutcomeJson(const std::vector<Issue>& issues);
// Convenience: a single informational/error issue.
std::string operationOutcomeJson(Severity s, IssueType t, std::string_view diagnostics);

}  // namespace hearth::fhir
