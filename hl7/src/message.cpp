// Message model, parser and encoder (contracts in message.h).
#include "hearth/hl7/message.h"

#include <algorithm>
#include <cctype>

namespace hearth::hl7 {

namespace {

constexpr std::string_view kAbsent{};  // a part past the end

// The index0-th part of s split on sep; an empty view past the end.
std::string_view nthPart(std::string_view s, char sep, size_t index0) {
  size_t start = 0;
  for (size_t k = 0; k < index0; ++k) {
    const size_t p = s.find(sep, start);
    if (p == std::string_view::npos) return kAbsent;
    start = p + 1;
  }
  const size_t end = s.find(sep, start);
  return end == std::string_view::npos ? s.substr(start) : s.substr(start, end - start);
}

size_t countParts(std::string_view s, char sep) {
  if (s.empty()) return 0;
  return static_cast<size_t>(std::count(s.begin(), s.end(), sep)) + 1;
}

// s with its index0-th part (split on sep) replaced by repl; missing parts are created empty and
// trailing empty parts are dropped.
std::string replacePart(std::string_view s, char sep, size_t index0, std::string_view repl) {
  std::vector<std::string_view> parts;
  if (!s.empty()) {
    size_t start = 0;
    while (true) {
      const size_t p = s.find(sep, start);
      if (p == std::string_view::npos) {
        parts.push_back(s.substr(start));
        break;
      }
      parts.push_back(s.substr(start, p - start));
      start = p + 1;
    }
  }
  if (parts.size() <= index0) parts.resize(index0 + 1);
  parts[index0] = repl;
  while (!parts.empty() && parts.back().empty()) parts.pop_back();
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out.push_back(sep);
    out.append(parts[i]);
  }
  return out;
}

bool usableDelimiter(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u < 0x7F && !std::isalnum(u);
}

bool validSegmentId(std::string_view id) {
  if (id.size() != 3) return false;
  auto up = [](char c) { return c >= 'A' && c <= 'Z'; };
  auto dig = [](char c) { return c >= '0' && c <= '9'; };
  return up(id[0]) && (up(id[1]) || dig(id[1])) && (up(id[2]) || dig(id[2]));
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

// Header values (code lists) may be quoted in errors when short and printable; anything else is
// replaced, so an error message can never carry patient data or control bytes.
std::string quoteCode(std::string_view s) {
  if (s.size() > 24) return "(" + std::to_string(s.size()) + " characters)";
  for (const char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7E)
      return "(unprintable)";
  return "'" + std::string(s) + "'";
}

// Where byte `offset` of the (BOM-stripped) input lies: segment index (1-based, empty lines
// skipped as the parser does), segment id, sequence of that id, field number.
struct Located {
  int segment = 0;
  std::string id;
  int sequence = 0;
  int field = 0;
};
Located locate(std::string_view in, size_t offset, char fs) {
  Located loc;
  size_t start = 0;
  std::vector<std::string> ids;
  while (start < in.size()) {
    size_t end = in.find_first_of("\r\n", start);
    if (end == std::string_view::npos) end = in.size();
    if (end > start) {
      const std::string_view line = in.substr(start, end - start);
      ids.emplace_back(line.substr(0, std::min<size_t>(3, line.size())));
      if (offset < end) {
        loc.segment = static_cast<int>(ids.size());
        loc.id = validSegmentId(ids.back()) ? ids.back() : std::string();
        loc.sequence = static_cast<int>(std::count(ids.begin(), ids.end(), ids.back()));
        const std::string_view before = line.substr(0, offset - start);
        loc.field = static_cast<int>(std::count(before.begin(), before.end(), fs));
        if (loc.id == "MSH" && loc.field > 0) ++loc.field;
        return loc;
      }
    }
    start = end + 1;
  }
  return loc;
}

[[noreturn]] void throwInvalidBytes(std::string_view in, size_t offset, char fs, const std::string& why) {
  const Located loc = locate(in, offset, fs);
  throw Hl7Error(ErrorCode::InvalidBytes, why + " (byte offset " + std::to_string(offset) + ")",
                 loc.segment, loc.id, loc.sequence, loc.field);
}

// Splits body on fs into fields appended to out.
void splitFields(std::string_view body, char fs, std::vector<std::string>& out) {
  size_t start = 0;
  while (true) {
    const size_t p = body.find(fs, start);
    if (p == std::string_view::npos) {
      out.emplace_back(body.substr(start));
      return;
    }
    out.emplace_back(body.substr(start, p - start));
    start = p + 1;
  }
}

struct ParsedPath {
  std::string_view segment;
  int occurrence = 1;
  int field = 0;
  int repetition = 0;  // 1-based; 0 = not given
  int component = 0;
  int sub = 0;
};

ParsedPath parsePath(std::string_view path) {
  auto bad = [&](const char* why) -> Hl7Error {
    return Hl7Error(ErrorCode::BadPath, std::string("bad path ") + quoteCode(path) + ": " + why);
  };
  ParsedPath p;
  size_t i = 0;
  auto number = [&](int& out) -> bool {
    const size_t start = i;
    long v = 0;
    while (i < path.size() && path[i] >= '0' && path[i] <= '9' && i - start < 6) v = v * 10 + (path[i++] - '0');
    if (i == start || v < 1) return false;
    out = static_cast<int>(v);
    return true;
  };
  auto parenthesised = [&](int& out) -> bool {
    if (i >= path.size() || path[i] != '(') return true;
    ++i;
    if (!number(out) || i >= path.size() || path[i] != ')') return false;
    ++i;
    return true;
  };
  if (path.size() < 3 || !validSegmentId(path.substr(0, 3))) throw bad("segment id expected");
  p.segment = path.substr(0, 3);
  i = 3;
  if (!parenthesised(p.occurrence)) throw bad("segment occurrence must be (n), n >= 1");
  if (i >= path.size() || path[i] != '-') throw bad("'-' and a field number expected");
  ++i;
  if (!number(p.field)) throw bad("field number >= 1 expected");
  if (!parenthesised(p.repetition)) throw bad("repetition must be (n), n >= 1");
  if (i < path.size() && path[i] == '.') {
    ++i;
    if (!number(p.component)) throw bad("component number >= 1 expected");
    if (i < path.size() && path[i] == '.') {
      ++i;
      if (!number(p.sub)) throw bad("sub-component number >= 1 expected");
    }
  }
  if (i != path.size()) throw bad("unexpected text after the path");
  return p;
}

}  // namespace

// ---------------------------------------------------------------- Element

std::string Element::value() const {
  if (literal_) return std::string(raw_);
  switch (level_) {
    case Level::Field: return repetition(0).value();
    case Level::Repetition: return component(1).value();
    case Level::Component: return subcomponent(1).value();
    case Level::Subcomponent:
      if (isNull()) return {};
      return hasEscapes(raw_, enc_) ? unescape(raw_, enc_) : std::string(raw_);
  }
  return {};
}

size_t Element::repetitionCount() const {
  if (level_ == Level::Field && !literal_) return countParts(raw_, enc_.repetition);
  return raw_.empty() ? 0 : 1;
}

Element Element::repetition(size_t index0) const {
  if (level_ == Level::Field && !literal_)
    return Element(nthPart(raw_, enc_.repetition, index0), Level::Repetition, enc_);
  return index0 == 0 ? *this : Element({}, Level::Repetition, enc_);
}

std::vector<Element> Element::repetitions() const {
  std::vector<Element> out;
  if (raw_.empty()) return out;
  if (level_ != Level::Field || literal_) return {*this};
  size_t start = 0;
  while (true) {
    const size_t p = raw_.find(enc_.repetition, start);
    out.emplace_back(raw_.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start),
                     Level::Repetition, enc_);
    if (p == std::string_view::npos) return out;
    start = p + 1;
  }
}

size_t Element::componentCount() const {
  if (literal_) return raw_.empty() ? 0 : 1;
  switch (level_) {
    case Level::Field: return repetition(0).componentCount();
    case Level::Repetition: return countParts(raw_, enc_.component);
    default: return raw_.empty() ? 0 : 1;
  }
}

Element Element::component(int n) const {
  if (n < 1) return Element({}, Level::Component, enc_);
  if (literal_) return n == 1 ? *this : Element({}, Level::Component, enc_);
  switch (level_) {
    case Level::Field: return repetition(0).component(n);
    case Level::Repetition:
      return Element(nthPart(raw_, enc_.component, static_cast<size_t>(n - 1)), Level::Component, enc_);
    default: return n == 1 ? *this : Element({}, Level::Component, enc_);
  }
}

size_t Element::subcomponentCount() const {
  if (literal_) return raw_.empty() ? 0 : 1;
  switch (level_) {
    case Level::Field:
    case Level::Repetition: return component(1).subcomponentCount();
    case Level::Component: return countParts(raw_, enc_.subcomponent);
    default: return raw_.empty() ? 0 : 1;
  }
}

Element Element::subcomponent(int n) const {
  if (n < 1) return Element({}, Level::Subcomponent, enc_);
  if (literal_) return n == 1 ? *this : Element({}, Level::Subcomponent, enc_);
  switch (level_) {
    case Level::Field:
    case Level::Repetition: return component(1).subcomponent(n);
    case Level::Component:
      return Element(nthPart(raw_, enc_.subcomponent, static_cast<size_t>(n - 1)), Level::Subcomponent, enc_);
    default: return n == 1 ? *this : Element({}, Level::Subcomponent, enc_);
  }
}

size_t Element::partCount() const {
  return level_ == Level::Component ? subcomponentCount() : componentCount();
}

Element Element::part(int n) const {
  return level_ == Level::Component ? subcomponent(n) : component(n);
}

// ---------------------------------------------------------------- Segment

Segment::Segment(std::string_view id, const Encoding& enc) : enc_(enc) {
  if (!validSegmentId(id))
    throw Hl7Error(ErrorCode::BadArgument, "segment id " + quoteCode(id) + " is not 3 characters A-Z/0-9");
  fields_.emplace_back(id);
  if (id == "MSH") {
    fields_.emplace_back(1, enc.field);
    fields_.emplace_back(enc.encodingCharacters());
  }
}

std::string_view Segment::rawField(int n) const {
  if (n < 0 || n >= static_cast<int>(fields_.size())) return {};
  return fields_[static_cast<size_t>(n)];
}

Element Segment::field(int n) const {
  if (n < 0 || n >= static_cast<int>(fields_.size())) return Element({}, Element::Level::Field, enc_);
  const bool literal = n == 0 || (n <= 2 && fields_[0] == "MSH");
  return Element(fields_[static_cast<size_t>(n)], Element::Level::Field, enc_, literal);
}

void Segment::setRaw(int field, std::string raw) {
  if (field < 1 || field > 9999) throw Hl7Error(ErrorCode::BadArgument, "field number out of range");
  if (field <= 2 && id() == "MSH")
    throw Hl7Error(ErrorCode::BadArgument, "MSH-1 and MSH-2 are fixed by the message's encoding");
  const auto n = static_cast<size_t>(field);
  if (fields_.size() <= n) fields_.resize(n + 1);
  fields_[n] = std::move(raw);
  const size_t keep = id() == "MSH" ? 3 : 1;
  while (fields_.size() > keep && fields_.back().empty()) fields_.pop_back();
}

void Segment::setRaw(int field, size_t rep, int component, int sub, std::string_view raw) {
  if (component < 0 || sub < 0 || (component == 0 && sub > 0) || rep > 9999 || component > 9999 || sub > 9999)
    throw Hl7Error(ErrorCode::BadArgument, "bad repetition/component/sub-component position");
  const std::string_view current = rawField(field);
  std::string repRaw(nthPart(current, enc_.repetition, rep));
  if (component == 0) {
    repRaw = std::string(raw);
  } else {
    const auto c0 = static_cast<size_t>(component - 1);
    std::string compRaw(nthPart(repRaw, enc_.component, c0));
    compRaw = sub == 0 ? std::string(raw) : replacePart(compRaw, enc_.subcomponent, static_cast<size_t>(sub - 1), raw);
    repRaw = replacePart(repRaw, enc_.component, c0, compRaw);
  }
  setRaw(field, replacePart(current, enc_.repetition, rep, repRaw));
}

void Segment::set(int field, std::string_view value) { setRaw(field, escape(value, enc_)); }

void Segment::set(int field, size_t rep, int component, int sub, std::string_view value) {
  setRaw(field, rep, component, sub, escape(value, enc_));
}

void Segment::encodeTo(std::string& out) const {
  out += fields_[0];
  size_t i = 1;
  if (fields_[0] == "MSH") {
    // MSH-1 is the separator itself and MSH-2 follows it directly.
    if (fields_.size() > 1) out += fields_[1];
    if (fields_.size() > 2) out += fields_[2];
    i = 3;
  }
  for (; i < fields_.size(); ++i) {
    out.push_back(enc_.field);
    out += fields_[i];
  }
}

std::string Segment::encode() const {
  std::string out;
  encodeTo(out);
  return out;
}

// ---------------------------------------------------------------- Message

int versionCodeOf(std::string_view v) {
  static const std::pair<std::string_view, int> kVersions[] = {
      {"2.3", 230}, {"2.3.1", 231}, {"2.4", 240}, {"2.5", 250}, {"2.5.1", 251}, {"2.6", 260},
      {"2.7", 270}, {"2.7.1", 271}, {"2.8", 280}, {"2.8.1", 281}, {"2.8.2", 282}};
  for (const auto& [text, code] : kVersions)
    if (text == v) return code;
  return 0;
}

Message::Message(const Encoding& enc) : enc_(enc) {
  segments_.emplace_back("MSH", enc_);
  if (enc_.charset != Charset::Ascii) segments_[0].setRaw(18, charsetCode(enc_.charset));
}

Message Message::parse(std::string_view bytes, const ParseOptions& options) {
  if (bytes.size() > options.maxBytes)
    throw Hl7Error(ErrorCode::Oversized, "message of " + std::to_string(bytes.size()) +
                                             " bytes exceeds the limit of " + std::to_string(options.maxBytes));
  std::string_view in = bytes;
  if (in.substr(0, 3) == "\xEF\xBB\xBF") in.remove_prefix(3);
  while (!in.empty() && (in.front() == '\r' || in.front() == '\n')) in.remove_prefix(1);
  if (in.empty()) throw Hl7Error(ErrorCode::NoMsh, "empty message: no MSH segment", 1);
  if (in.substr(0, 3) != "MSH") throw Hl7Error(ErrorCode::NoMsh, "the message does not start with an MSH segment", 1);
  if (in.size() < 4 || !usableDelimiter(in[3]))
    throw Hl7Error(ErrorCode::BadFieldSeparator,
                   "MSH-1 (field separator) must be a printable character other than a letter or digit",
                   1, "MSH", 1, 1);
  Encoding enc;
  enc.field = in[3];
  size_t e = 4;
  while (e < in.size() && in[e] != enc.field && in[e] != '\r' && in[e] != '\n') ++e;
  const std::string_view msh2 = in.substr(4, e - 4);
  {
    bool ok = msh2.size() == 4 || msh2.size() == 5;
    for (size_t i = 0; ok && i < msh2.size(); ++i) {
      ok = usableDelimiter(msh2[i]) && msh2[i] != enc.field && msh2.find(msh2[i]) == i;
    }
    if (!ok)
      throw Hl7Error(ErrorCode::BadEncodingCharacters,
                     "MSH-2 (encoding characters) must be 4 distinct delimiter characters (5 with the "
                     "v2.7 truncation character), none a letter, digit or the field separator; got " +
                         std::to_string(msh2.size()) + " characters",
                     1, "MSH", 1, 2);
  }
  enc.component = msh2[0];
  enc.repetition = msh2[1];
  enc.escape = msh2[2];
  enc.subcomponent = msh2[3];
  enc.truncation = msh2.size() == 5 ? msh2[4] : 0;

  Message msg(Encoding{});
  msg.segments_.clear();

  // MSH-18 decides how the bytes are read; it is found before anything is converted (the MSH
  // segment is ASCII in every supported character set).
  const size_t mshEnd = std::min(in.find_first_of("\r\n"), in.size());
  std::string_view mshLine = in.substr(0, mshEnd);
  std::string_view charsetText;
  if (e < mshLine.size()) {
    // MSH-3 starts after e; MSH-18 is then the 16th field.
    const std::string_view f18 = nthPart(mshLine.substr(e + 1), enc.field, 15);
    charsetText = trim(nthPart(nthPart(f18, enc.repetition, 0), enc.component, 0));
  }
  Charset declared = Charset::Ascii;
  if (charsetText.empty() || iequals(charsetText, "ASCII")) {
    declared = Charset::Ascii;
  } else if (charsetText == "8859/1") {
    declared = Charset::Latin1;
  } else if (iequals(charsetText, "UNICODE UTF-8")) {
    declared = Charset::Utf8;
  } else if (iequals(charsetText, "UTF-8")) {
    declared = Charset::Utf8;
    msg.warnings_.push_back("MSH-18 'UTF-8' read as the standard code 'UNICODE UTF-8'");
  } else {
    throw Hl7Error(ErrorCode::UnsupportedCharset,
                   "character set " + quoteCode(charsetText) +
                       " (MSH-18) is not supported; supported: ASCII, 8859/1, UNICODE UTF-8",
                   1, "MSH", 1, 18);
  }

  std::string converted;
  std::string_view text = in;
  Charset effective = declared;
  auto firstHigh = [](std::string_view s) {
    for (size_t i = 0; i < s.size(); ++i)
      if (static_cast<unsigned char>(s[i]) >= 0x80) return i;
    return std::string_view::npos;
  };
  switch (declared) {
    case Charset::Utf8: {
      const size_t bad = firstInvalidUtf8(in);
      if (bad != std::string_view::npos)
        throwInvalidBytes(in, bad, enc.field, "bytes that are not valid UTF-8 in a message declared UNICODE UTF-8");
      break;
    }
    case Charset::Latin1:
      if (firstHigh(in) != std::string_view::npos) {
        converted = latin1ToUtf8(in);
        text = converted;
      }
      break;
    case Charset::Ascii: {
      const size_t high = firstHigh(in);
      if (high == std::string_view::npos) break;
      if (options.strictAscii)
        throwInvalidBytes(in, high, enc.field, "8-bit bytes in a message declared ASCII");
      if (firstInvalidUtf8(in) == std::string_view::npos) {
        effective = Charset::Utf8;
        msg.warnings_.push_back("8-bit bytes in a message declared ASCII: read as UTF-8");
      } else {
        effective = Charset::Latin1;
        converted = latin1ToUtf8(in);
        text = converted;
        msg.warnings_.push_back("8-bit bytes in a message declared ASCII that are not UTF-8: read as 8859/1");
      }
      break;
    }
  }
  enc.charset = effective;
  msg.enc_ = enc;

  msg.segments_.reserve(static_cast<size_t>(std::count(text.begin(), text.end(), '\r')) + 1);
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find_first_of("\r\n", start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    start = (end + 1 < text.size() && text[end] == '\r' && text[end + 1] == '\n') ? end + 2 : end + 1;
    if (line.empty()) continue;

    const int index = static_cast<int>(msg.segments_.size()) + 1;
    if (line.size() < 3 || !validSegmentId(line.substr(0, 3)) || (line.size() > 3 && line[3] != enc.field)) {
      // The text is not quoted: a stray terminator inside a value makes the "segment" patient data.
      throw Hl7Error(ErrorCode::BadSegmentId,
                     "the segment does not start with a 3-character id (A-Z, 0-9) and the field separator",
                     index);
    }
    const std::string_view id = line.substr(0, 3);
    if (id == "MSH" && index > 1)
      throw Hl7Error(ErrorCode::UnexpectedMsh, "a second MSH segment: one message per parse (batches are not read here)",
                     index, "MSH", msg.count("MSH") + 1);

    Segment seg;
    seg.enc_ = enc;
    seg.fields_.reserve(static_cast<size_t>(std::count(line.begin(), line.end(), enc.field)) + 2);
    seg.fields_.emplace_back(id);
    if (index == 1) {
      seg.fields_.emplace_back(1, enc.field);
      seg.fields_.emplace_back(msh2);
      if (e < line.size()) splitFields(line.substr(e + 1), enc.field, seg.fields_);
    } else if (line.size() > 3) {
      splitFields(line.substr(4), enc.field, seg.fields_);
    }
    msg.segments_.push_back(std::move(seg));
  }

  const Segment& msh = msg.segments_[0];
  if (trim(msh.field(9).component(1).value()).empty())
    throw Hl7Error(ErrorCode::MissingMessageType, "MSH-9 (message type) is required", 1, "MSH", 1, 9);
  if (msh.fieldCount() < 10)
    throw Hl7Error(ErrorCode::MissingControlId, "MSH-10 (message control id) is missing: the MSH segment ends early",
                   1, "MSH", 1, 10);
  if (msh.field(10).empty()) msg.warnings_.push_back("MSH-10 (message control id) is empty");
  const std::string version(trim(msh.field(12).component(1).value()));
  if (version.empty())
    throw Hl7Error(ErrorCode::MissingVersion, "MSH-12 (version id) is required", 1, "MSH", 1, 12);
  if (versionCodeOf(version) == 0)
    throw Hl7Error(ErrorCode::UnsupportedVersion,
                   "version " + quoteCode(version) + " (MSH-12) is not supported; supported: 2.3 to 2.8.2", 1,
                   "MSH", 1, 12);
  return msg;
}

std::string Message::encode() const {
  size_t size = 0;
  for (const Segment& s : segments_)
    for (const std::string& f : s.fields_) size += f.size() + 1;
  std::string out;
  out.reserve(size + segments_.size());
  for (const Segment& s : segments_) {
    s.encodeTo(out);
    out.push_back('\r');
  }
  if (enc_.charset == Charset::Latin1) {
    const bool high = std::any_of(out.begin(), out.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
    if (high) {
      std::string latin;
      if (!utf8ToLatin1(out, latin))
        throw Hl7Error(ErrorCode::BadArgument, "a value holds characters that 8859/1 (MSH-18) cannot represent");
      return latin;
    }
  }
  return out;
}

Segment& Message::segmentAt(size_t index0) {
  if (index0 >= segments_.size()) throw Hl7Error(ErrorCode::NotFound, "segment index out of range");
  return segments_[index0];
}

const Segment* Message::find(std::string_view id, int occurrence) const {
  int seen = 0;
  for (const Segment& s : segments_)
    if (s.id() == id && ++seen == occurrence) return &s;
  return nullptr;
}

Segment* Message::find(std::string_view id, int occurrence) {
  return const_cast<Segment*>(static_cast<const Message*>(this)->find(id, occurrence));
}

const Segment& Message::segment(std::string_view id, int occurrence) const {
  const Segment* s = find(id, occurrence);
  if (!s)
    throw Hl7Error(ErrorCode::NotFound, "no segment " + quoteCode(id) +
                                            (occurrence > 1 ? " occurrence " + std::to_string(occurrence) : std::string()));
  return *s;
}

Segment& Message::segment(std::string_view id, int occurrence) {
  return const_cast<Segment&>(static_cast<const Message*>(this)->segment(id, occurrence));
}

int Message::count(std::string_view id) const {
  return static_cast<int>(std::count_if(segments_.begin(), segments_.end(), [&](const Segment& s) { return s.id() == id; }));
}

Segment& Message::addSegment(std::string_view id) {
  if (id == "MSH") throw Hl7Error(ErrorCode::BadArgument, "a message has exactly one MSH");
  segments_.push_back(Segment(id, enc_));
  return segments_.back();
}

Element Message::at(std::string_view path) const {
  const ParsedPath p = parsePath(path);
  const Segment* s = find(p.segment, p.occurrence);
  if (!s) return Element({}, Element::Level::Field, enc_);
  Element e = s->field(p.field);
  if (p.repetition > 0) e = e.repetition(static_cast<size_t>(p.repetition - 1));
  if (p.component > 0) e = e.component(p.component);
  if (p.sub > 0) e = e.subcomponent(p.sub);
  return e;
}

void Message::set(std::string_view path, std::string_view value) {
  const ParsedPath p = parsePath(path);
  Segment& s = segment(p.segment, p.occurrence);
  if (p.repetition == 0 && p.component == 0) {
    s.set(p.field, value);
  } else {
    s.set(p.field, static_cast<size_t>(p.repetition > 0 ? p.repetition - 1 : 0), p.component, p.sub, value);
  }
}

std::string Message::messageType() const { return segments_[0].field(9).component(1).value(); }
std::string Message::triggerEvent() const { return segments_[0].field(9).component(2).value(); }
std::string Message::messageStructure() const { return segments_[0].field(9).component(3).value(); }
std::string Message::controlId() const { return segments_[0].field(10).value(); }
std::string Message::processingId() const { return segments_[0].field(11).component(1).value(); }
std::string Message::version() const { return std::string(trim(segments_[0].field(12).component(1).value())); }
int Message::versionCode() const { return versionCodeOf(version()); }

}  // namespace hearth::hl7
