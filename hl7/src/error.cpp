#include "hearth/hl7/error.h"

namespace hearth::hl7 {

const char* errorCodeName(ErrorCode c) {
  switch (c) {
    case ErrorCode::Oversized: return "Oversized";
    case ErrorCode::NoMsh: return "NoMsh";
    case ErrorCode::BadFieldSeparator: return "BadFieldSeparator";
    case ErrorCode::BadEncodingCharacters: return "BadEncodingCharacters";
    case ErrorCode::BadSegmentId: return "BadSegmentId";
    case ErrorCode::UnexpectedMsh: return "UnexpectedMsh";
    case ErrorCode::MissingMessageType: return "MissingMessageType";
    case ErrorCode::MissingControlId: return "MissingControlId";
    case ErrorCode::MissingVersion: return "MissingVersion";
    case ErrorCode::UnsupportedVersion: return "UnsupportedVersion";
    case ErrorCode::UnsupportedCharset: return "UnsupportedCharset";
    case ErrorCode::InvalidBytes: return "InvalidBytes";
    case ErrorCode::NotFound: return "NotFound";
    case ErrorCode::BadPath: return "BadPath";
    case ErrorCode::BadArgument: return "BadArgument";
  }
  return "Unknown";
}

namespace {
// "HL7 segment 3 (PID), field 7: <message>" -- the position first, so logs line up.
std::string positioned(const std::string& message, int segmentIndex, const std::string& segmentId,
                       int field) {
  if (segmentIndex <= 0) return "HL7: " + message;
  std::string s = "HL7 segment " + std::to_string(segmentIndex);
  if (!segmentId.empty()) s += " (" + segmentId + ")";
  if (field > 0) s += ", field " + std::to_string(field);
  return s + ": " + message;
}
}  // namespace

Hl7Error::Hl7Error(ErrorCode code, std::string message, int segmentIndex, std::string segmentId,
                   int segmentSequence, int field)
    : std::runtime_error(positioned(message, segmentIndex, segmentId, field)),
      code_(code),
      segmentIndex_(segmentIndex),
      segmentId_(std::move(segmentId)),
      segmentSequence_(segmentSequence),
      field_(field) {}

int Hl7Error::hl7ErrorCode() const noexcept {
  switch (code_) {
    case ErrorCode::NoMsh:
    case ErrorCode::UnexpectedMsh:
      return 100;  // segment sequence error
    case ErrorCode::MissingMessageType:
    case ErrorCode::MissingControlId:
    case ErrorCode::MissingVersion:
      return 101;  // required field missing
    case ErrorCode::BadFieldSeparator:
    case ErrorCode::BadEncodingCharacters:
    case ErrorCode::BadSegmentId:
    case ErrorCode::UnsupportedCharset:
    case ErrorCode::InvalidBytes:
      return 102;  // data type error
    case ErrorCode::UnsupportedVersion:
      return 203;  // unsupported version id
    default:
      return 207;  // application internal error
  }
}

bool Hl7Error::isReject() const noexcept {
  switch (code_) {
    case ErrorCode::Oversized:
    case ErrorCode::NoMsh:
    case ErrorCode::BadFieldSeparator:
    case ErrorCode::BadEncodingCharacters:
    case ErrorCode::UnsupportedVersion:
    case ErrorCode::UnsupportedCharset:
      return true;
    default:
      return false;
  }
}

}  // namespace hearth::hl7
