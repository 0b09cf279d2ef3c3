#pragma once
// JSON helpers for FHIR resources, built on RapidJSON.
//
// FHIR decimals must keep their exact textual form (1.50 stays 1.50), so nothing here round-trips
// numbers through double: re-serialisation goes through RapidJSON's SAX reader with
// kParseNumbersAsStringsFlag and writes every number back as the raw text it arrived as.
#include <rapidjson/document.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace hearth::fhir {

// Parses a request body into a DOM (iterative parser: no recursion on hostile nesting; UTF-8
// validated). Throws FhirError 400 (structure) naming the byte offset on malformed JSON.
rapidjson::Document parseJson(std::string_view body);

// Returns the resource's JSON with `id` set to `id` and meta.versionId / meta.lastUpdated set;
// resourceType, id and meta come first, every other member keeps its order and exact bytes
// (numbers verbatim). Other meta members (profile, tag, security, source) are kept.
// `body` must already have been parsed successfully (it is re-read with a SAX pass).
std::string stampResource(std::string_view body, std::string_view resourceType, std::string_view id,
                          int64_t versionId, std::string_view lastUpdated);

// Pretty-prints JSON (2-space indent), numbers verbatim.
std::string prettyJson(std::string_view json);

// FHIR instant for "now" in UTC with millisecond precision, e.g. 2026-11-22T04:14:56.123Z,
// plus the same moment as microseconds since the epoch.
struct Instant {
  std::string text;
  int64_t epochMicros = 0;
};
Instant nowInstant();
// Parses a FHIR instant / dateTime (with or without fraction, any offset, or a date) into
// epoch microseconds (UTC); partial dates are taken at their start. Returns false if malformed.
bool parseInstant(std::string_view text, int64_t& epochMicros);
// RFC 1123 date for HTTP headers (Last-Modified) from a FHIR instant; empty if unparsable.
std::string httpDateFromInstant(std::string_view instant);

// Escapes a string for embedding in JSON (without the surrounding quotes).
void appendJsonEscaped(std::string& out, std::string_view s);

}  // namespace hearth::fhir
