#pragma once
// Acknowledgements (ACK messages) for a received message.
//
// Original mode (MSH-15 and MSH-16 both empty): one application ACK, AA / AE / AR.
// Enhanced mode: an accept (commit) ACK CA / CE / CR when MSH-15 asks for it, then an application
// ACK when MSH-16 asks for it (ackWanted() reads the AL / NE / ER / SU conditions).
//
// The ACK's MSH swaps sender and receiver (MSH-3/4 <-> MSH-5/6), carries MSH-9 "ACK^<trigger>^ACK"
// ("ACK^<trigger>" in v2.3, whose MSH-9 has no structure component), a new control id, the
// original's MSH-11 (processing id), MSH-12 (version), MSH-18 and delimiters. MSA-2 is the
// original MSH-10. Errors are written the way the version expects:
//   v2.5+:     one ERR per error: ERR-2 location (segment^sequence^field^repetition^component^
//              sub-component), ERR-3 HL7 error code (table 0357), ERR-4 severity, ERR-7 diagnostic,
//              ERR-8 user message;
//   v2.3/2.4:  one ERR whose ERR-1 repeats segment^sequence^field^code&text&HL70357 per error,
//              plus MSA-3 (text) and MSA-6 (error condition) from the first error.
#include <string>
#include <string_view>
#include <vector>

#include "hearth/hl7/message.h"

namespace hearth::hl7 {

enum class AckCode { AA, AE, AR, CA, CE, CR };
const char* ackCodeText(AckCode c);

enum class AckMode { Original, Enhanced };
AckMode ackMode(const Message& msg);
// Whether an ACK is due under an MSH-15/MSH-16 condition (table 0155): AL always, NE never,
// ER only on failure, SU only on success; an empty condition means always (original mode).
bool ackWanted(std::string_view condition, bool success);
// AR/AE (original mode) or CR/CE (enhanced) for a parse failure, by Hl7Error::isReject().
AckCode ackCodeFor(const Hl7Error& e, AckMode mode);

struct AckError {
  int hl7Code = 207;        // table 0357 (0 accepted, 100, 101, 102, 103, 104, 200 ... 207)
  char severity = 'E';      // table 0516: E error, W warning, I information, F fatal
  std::string segmentId;    // location; empty = the message as a whole
  int segmentSequence = 0;  // n-th segment with that id (1-based); 0 = not given
  int field = 0;
  int repetition = 0;       // 1-based; 0 = not given
  int component = 0;
  int subcomponent = 0;
  std::string userMessage;  // must not contain patient data
  std::string diagnostic;   // ERR-7 (v2.5+); must not contain patient data
  // Location and code of a parse failure; the message is the error's text.
  static AckError from(const Hl7Error& e);
};

struct AckOptions {
  std::string controlId;           // MSH-10 of the ACK; newControlId() when empty
  std::string timestamp;           // MSH-7; the current UTC time when empty
  std::string sendingApplication;  // raw MSH-3 of the ACK; the original MSH-5 when empty
  std::string sendingFacility;     // raw MSH-4 of the ACK; the original MSH-6 when empty
};

Message buildAck(const Message& original, AckCode code, const std::vector<AckError>& errors = {},
                 const AckOptions& options = {});
// For input that did not parse: the header fields are salvaged from the first line when its
// MSH-1/MSH-2 are usable (fields with non-printable or 8-bit bytes are dropped), else the ACK
// uses the default delimiters and leaves them empty. Version: the input's MSH-12.1 when
// printable, else 2.5.
Message buildAck(std::string_view rawInput, AckCode code, const std::vector<AckError>& errors,
                 const AckOptions& options = {});

// A control id unique within this process and across restarts (time based), at most 20 chars.
std::string newControlId();
// Text of a table 0357 code ("Required field missing"), "" when unknown.
const char* hl7ErrorText(int code);

}  // namespace hearth::hl7
