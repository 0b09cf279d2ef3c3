// Base64 codecs used by JOSE (base64url, RFC 7515 §2: no padding) and by the password hash
// encoding (standard alphabet without padding, as PHC strings use). Pure functions, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hearth::auth {

std::string base64urlEncode(std::string_view bytes);
// Strict: refuses padding, characters outside the alphabet, whitespace, impossible lengths
// (len % 4 == 1) and non-canonical encodings (unused trailing bits set). nullopt on any of these.
std::optional<std::string> base64urlDecode(std::string_view text);

// Standard alphabet (+/), no padding; decoding is equally strict.
std::string base64NoPadEncode(std::string_view bytes);
std::optional<std::string> base64NoPadDecode(std::string_view text);

}  // namespace hearth::auth
