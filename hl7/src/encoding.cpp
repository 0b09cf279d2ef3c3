// Escape sequences and character set conversion (see encoding.h for the contracts).
#include "hearth/hl7/encoding.h"

#include <cstdint>

namespace hearth::hl7 {

const char* charsetCode(Charset c) {
  switch (c) {
    case Charset::Ascii: return "ASCII";
    case Charset::Latin1: return "8859/1";
    case Charset::Utf8: return "UNICODE UTF-8";
  }
  return "ASCII";
}

std::string Encoding::encodingCharacters() const {
  std::string s{component, repetition, escape, subcomponent};
  if (truncation != 0) s.push_back(truncation);
  return s;
}

namespace {

int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

void appendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not valid.
size_t utf8SequenceLength(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  size_t len;
  uint32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    cp = b0 & 0x0F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

// Bytes from a \X..\ sequence, read in the message's character set, appended as UTF-8.
void appendHexBytes(std::string& out, const std::string& bytes, Charset cs) {
  if (cs == Charset::Latin1) {
    out += latin1ToUtf8(bytes);
    return;
  }
  for (size_t i = 0; i < bytes.size();) {
    const size_t n = utf8SequenceLength(bytes, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    } else {
      out.append(bytes, i, n);
      i += n;
    }
  }
}

// Decodes one escape sequence body (between the escape characters); false = pass through.
bool decodeSequence(std::string_view body, const Encoding& enc, std::string& out) {
  if (body.size() == 1) {
    switch (body[0]) {
      case 'F': out.push_back(enc.field); return true;
      case 'S': out.push_back(enc.component); return true;
      case 'T': out.push_back(enc.subcomponent); return true;
      case 'R': out.push_back(enc.repetition); return true;
      case 'E': out.push_back(enc.escape); return true;
      case 'P':
        if (enc.truncation == 0) return false;
        out.push_back(enc.truncation);
        return true;
      default: return false;
    }
  }
  if (body == ".br") {
    out.push_back('\n');
    return true;
  }
  if (body[0] == 'X' && body.size() >= 3 && (body.size() - 1) % 2 == 0) {
    std::string bytes;
    bytes.reserve((body.size() - 1) / 2);
    for (size_t i = 1; i + 1 < body.size(); i += 2) {
      const int hi = hexDigit(body[i]), lo = hexDigit(body[i + 1]);
      if (hi < 0 || lo < 0) return false;
      bytes.push_back(static_cast<char>(hi * 16 + lo));
    }
    appendHexBytes(out, bytes, enc.charset);
    return true;
  }
  return false;
}

}  // namespace

std::string unescape(std::string_view raw, const Encoding& enc) {
  std::string out;
  out.reserve(raw.size());
  size_t i = 0;
  while (i < raw.size()) {
    const size_t esc = raw.find(enc.escape, i);
    if (esc == std::string_view::npos) {
      out.append(raw.substr(i));
      break;
    }
    out.append(raw.substr(i, esc - i));
    const size_t close = raw.find(enc.escape, esc + 1);
    if (close == std::string_view::npos) {  // unterminated: literal escape character
      out.append(raw.substr(esc));
      break;
    }
    const std::string_view body = raw.substr(esc + 1, close - esc - 1);
    if (body.empty()) {
      // Two adjacent escape characters: not a sequence; keep the first, re-scan from the second.
      out.push_back(enc.escape);
      i = close;
      continue;
    }
    if (!decodeSequence(body, enc, out)) out.append(raw.substr(esc, close - esc + 1));
    i = close + 1;
  }
  return out;
}

std::string escape(std::string_view value, const Encoding& enc) {
  std::string out;
  out.reserve(value.size() + 8);
  auto seq = [&](std::string_view body) {
    out.push_back(enc.escape);
    out.append(body);
    out.push_back(enc.escape);
  };
  static const char* const kHex = "0123456789ABCDEF";
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c == enc.field) seq("F");
    else if (c == enc.component) seq("S");
    else if (c == enc.subcomponent) seq("T");
    else if (c == enc.repetition) seq("R");
    else if (c == enc.escape) seq("E");
    else if (enc.truncation != 0 && c == enc.truncation) seq("P");
    else if (c == '\n') seq(".br");
    else if (c == '\r' && i + 1 < value.size() && value[i + 1] == '\n') {
      seq(".br");
      ++i;
    } else if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
      const auto b = static_cast<unsigned char>(c);
      const char hex[] = {'X', kHex[b >> 4], kHex[b & 15], 0};
      seq(hex);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

size_t firstInvalidUtf8(std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    // Fast path over ASCII.
    if (static_cast<unsigned char>(bytes[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = utf8SequenceLength(bytes, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

std::string latin1ToUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() + bytes.size() / 8);
  for (const char c : bytes) appendUtf8(out, static_cast<unsigned char>(c));
  return out;
}

bool utf8ToLatin1(std::string_view utf8, std::string& out) {
  out.reserve(out.size() + utf8.size());
  for (size_t i = 0; i < utf8.size();) {
    const auto b0 = static_cast<unsigned char>(utf8[i]);
    if (b0 < 0x80) {
      out.push_back(static_cast<char>(b0));
      ++i;
      continue;
    }
    const size_t n = utf8SequenceLength(utf8, i);
    if (n != 2) return false;  // U+0080..U+00FF are exactly the 2-byte sequences C2/C3 xx
    const uint32_t cp = ((b0 & 0x1F) << 6) | (static_cast<unsigned char>(utf8[i + 1]) & 0x3F);
    if (cp > 0xFF) return false;
    out.push_back(static_cast<char>(cp));
    i += 2;
  }
  return true;
}

}  // namespace hearth::hl7
