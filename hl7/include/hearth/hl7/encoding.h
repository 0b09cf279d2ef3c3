#pragma once
// How a message is written: its delimiters (MSH-1, MSH-2) and character set (MSH-18), and the
// escape rules that let data contain delimiter characters.
//
// Text inside a parsed Message is always UTF-8 ("raw" text = still escaped, as on the wire).
// unescape() turns raw text into the value a user reads; escape() does the reverse for values a
// user writes. Both are pure functions of their arguments.
#include <string>
#include <string_view>

namespace hearth::hl7 {

// MSH-18 character sets this library reads and writes (HL7 table 0211). Others are rejected.
enum class Charset : unsigned char {
  Ascii,    // "ASCII" or MSH-18 empty (the standard's default)
  Latin1,   // "8859/1": converted to UTF-8 on read, back to 8859/1 on write
  Utf8,     // "UNICODE UTF-8": validated on read
};

// The MSH-18 code of a charset ("ASCII", "8859/1", "UNICODE UTF-8").
const char* charsetCode(Charset c);

struct Encoding {
  char field = '|';
  char component = '^';
  char repetition = '~';
  char escape = '\\';
  char subcomponent = '&';
  char truncation = 0;       // v2.7+ 5th MSH-2 character (usually '#'); 0 = none
  Charset charset = Charset::Ascii;

  // MSH-2 as written: component, repetition, escape, subcomponent[, truncation].
  std::string encodingCharacters() const;
  bool isDelimiter(char c) const {
    return c == field || c == component || c == repetition || c == escape || c == subcomponent ||
           (truncation != 0 && c == truncation);
  }
};

// Decodes raw (escaped) text into its value:
//   \F\ \S\ \T\ \R\ \E\ (and \P\ when a truncation character is defined) -> the delimiter;
//   \Xhh..\ -> those bytes, read in the message's charset (8859/1 bytes become UTF-8; bytes
//   that are not valid UTF-8 otherwise become U+FFFD);
//   \.br\ -> "\n".
// Everything else is passed through verbatim with the message's escape character, notably the
// highlighting pair \H\ ... \N\, the other formatting commands (\.sp\, \.in\, ...), character
// set switches (\C..\, \M..\), local escapes (\Z..\) and an escape character without a closing
// one (senders that forgot to escape a backslash).
std::string unescape(std::string_view raw, const Encoding& enc);

// Encodes a value (UTF-8) as raw text: each delimiter becomes its escape sequence, "\r\n" and
// "\n" become \.br\, a lone "\r" and other C0 controls except TAB become \Xhh\.
// unescape(escape(v)) == v for every v without "\r\n".
std::string escape(std::string_view value, const Encoding& enc);

// True when raw needs no decoding (fast path for the common case).
inline bool hasEscapes(std::string_view raw, const Encoding& enc) {
  return raw.find(enc.escape) != std::string_view::npos;
}

// Character set helpers (exposed for the bridge and the tests).
// Index of the first byte that does not start/continue a valid UTF-8 sequence (overlongs,
// surrogates and > U+10FFFF are invalid), or npos when the whole input is valid.
size_t firstInvalidUtf8(std::string_view bytes);
std::string latin1ToUtf8(std::string_view bytes);
// UTF-8 -> 8859/1; false (out untouched beyond what was written) when a character is outside
// U+0000..U+00FF or the input is not valid UTF-8.
bool utf8ToLatin1(std::string_view utf8, std::string& out);

}  // namespace hearth::hl7
