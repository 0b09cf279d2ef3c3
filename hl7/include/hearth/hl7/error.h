#pragma once
// The one error type of Hearth's HL7 v2 library.
//
// Every failure to read a message (and every misuse of a path or a missing segment) is an
// Hl7Error: a code, the position it concerns (1-based segment index in the message, segment id,
// occurrence of that segment id, field number; 0 when not applicable) and a message meant for
// an operator. Messages never quote field values (they may be patient data); they name
// positions, lengths and byte offsets only.
#include <stdexcept>
#include <string>
#include <string_view>

namespace hearth::hl7 {

enum class ErrorCode {
  Oversized,              // input larger than ParseOptions::maxBytes
  NoMsh,                  // empty input or the first segment is not MSH
  BadFieldSeparator,      // MSH-1 unusable (alphanumeric, control, whitespace, 8-bit)
  BadEncodingCharacters,  // MSH-2 not 4 (or 5, v2.7 truncation) distinct usable characters
  BadSegmentId,           // a segment id that is not 3 characters [A-Z][A-Z0-9][A-Z0-9]
  UnexpectedMsh,          // a second MSH (batches are not read as one message)
  MissingMessageType,     // MSH-9 (or MSH-9.1) empty
  MissingControlId,       // MSH has no field 10 at all (an empty MSH-10 is accepted)
  MissingVersion,         // MSH-12 empty
  UnsupportedVersion,     // MSH-12 not one of 2.3 ... 2.8.2
  UnsupportedCharset,     // MSH-18 other than ASCII, 8859/1, UNICODE UTF-8
  InvalidBytes,           // bytes not valid in the declared character set
  NotFound,               // a segment asked for by name is not in the message
  BadPath,                // a path that does not follow SEG[(n)]-F[(r)][.C[.S]]
  BadArgument,            // misuse of a builder call (e.g. setting MSH-1/MSH-2)
};

// Name of the code, e.g. "UnsupportedVersion" (for logs and metrics labels).
const char* errorCodeName(ErrorCode c);

class Hl7Error : public std::runtime_error {
 public:
  Hl7Error(ErrorCode code, std::string message, int segmentIndex = 0, std::string segmentId = {},
           int segmentSequence = 0, int field = 0);

  ErrorCode code() const noexcept { return code_; }
  int segmentIndex() const noexcept { return segmentIndex_; }        // 1 = MSH; 0 = none
  const std::string& segmentId() const noexcept { return segmentId_; }
  int segmentSequence() const noexcept { return segmentSequence_; }  // n-th segment with that id
  int field() const noexcept { return field_; }                      // 0 = whole segment/message

  // HL7 table 0357 (message error condition) code that an ACK should carry for this error:
  // 100 segment sequence, 101 required field missing, 102 data type error, 203 unsupported
  // version id, 207 application internal error.
  int hl7ErrorCode() const noexcept;
  // True when the message as a whole cannot be processed (AR / CR rather than AE / CE):
  // no usable header, unsupported version or character set, oversized.
  bool isReject() const noexcept;

 private:
  ErrorCode code_;
  int segmentIndex_;
  std::string segmentId_;
  int segmentSequence_;
  int field_;
};

}  // namespace hearth::hl7
