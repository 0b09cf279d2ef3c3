// ACK construction (contracts in ack.h).
#include "hearth/hl7/ack.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace hearth::hl7 {

namespace {

// What an ACK needs from the original header. Raw texts are in `enc`'s delimiters.
struct Header {
  Encoding enc;
  std::string sendingApp, sendingFacility, receivingApp, receivingFacility;
  std::string controlId, processingId, versionRaw, version, trigger, charsetRaw;
};

bool oldStyle(std::string_view version) {
  // 2.1 ... 2.4 (and 2.3.1): ERR-1 / MSA-3 style.
  return version.size() >= 3 && version[0] == '2' && version[1] == '.' && version[2] >= '0' && version[2] <= '4';
}

std::string nowTimestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M%S+0000", &tm);
  return buf;
}

std::string num(int n) { return n > 0 ? std::to_string(n) : std::string(); }

// Joins parts with sep and drops trailing empty ones.
std::string joinTrim(const std::vector<std::string>& parts, char sep) {
  size_t n = parts.size();
  while (n > 0 && parts[n - 1].empty()) --n;
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (i) out.push_back(sep);
    out += parts[i];
  }
  return out;
}

Message build(const Header& h, AckCode code, const std::vector<AckError>& errors, const AckOptions& o) {
  // The ACK keeps the original's delimiters (raw header texts are copied) and its effective
  // character set, so encode() writes bytes the sender reads; MSH-18 is copied verbatim below.
  const Encoding& enc = h.enc;
  Message ack(enc);
  Segment& msh = ack.segmentAt(0);
  msh.setRaw(3, o.sendingApplication.empty() ? h.receivingApp : o.sendingApplication);
  msh.setRaw(4, o.sendingFacility.empty() ? h.receivingFacility : o.sendingFacility);
  msh.setRaw(5, h.sendingApp);
  msh.setRaw(6, h.sendingFacility);
  msh.set(7, o.timestamp.empty() ? nowTimestamp() : o.timestamp);
  // MSH-9 gained its message structure component in v2.3.1.
  const bool v23 = h.version == "2.3" || h.version == "2.2" || h.version == "2.1";
  std::string type = "ACK";
  if (!h.trigger.empty() || !v23) type += enc.component + h.trigger;
  if (!v23) type += std::string(1, enc.component) + "ACK";
  msh.setRaw(9, type);
  msh.set(10, o.controlId.empty() ? newControlId() : o.controlId);
  msh.setRaw(11, h.processingId.empty() ? std::string("P") : h.processingId);
  msh.setRaw(12, h.versionRaw);
  msh.setRaw(18, h.charsetRaw);

  const bool old = oldStyle(h.version);
  Segment& msa = ack.addSegment("MSA");
  msa.set(1, ackCodeText(code));
  msa.setRaw(2, h.controlId);
  if (old && !errors.empty()) {
    const AckError& first = errors.front();
    msa.set(3, first.userMessage.empty() ? hl7ErrorText(first.hl7Code) : first.userMessage);
    msa.setRaw(6, joinTrim({std::to_string(first.hl7Code), escape(hl7ErrorText(first.hl7Code), enc), "HL70357"},
                           enc.component));
  }
  if (errors.empty()) return ack;

  if (old) {
    std::vector<std::string> reps;
    for (const AckError& e : errors) {
      const std::string codeCe = joinTrim({std::to_string(e.hl7Code), escape(hl7ErrorText(e.hl7Code), enc), "HL70357"},
                                          enc.subcomponent);
      reps.push_back(joinTrim({e.segmentId, num(e.segmentSequence), num(e.field), codeCe}, enc.component));
    }
    ack.addSegment("ERR").setRaw(1, joinTrim(reps, enc.repetition));
    return ack;
  }
  for (const AckError& e : errors) {
    Segment& err = ack.addSegment("ERR");
    if (!e.segmentId.empty())
      err.setRaw(2, joinTrim({e.segmentId, num(e.segmentSequence), num(e.field), num(e.repetition), num(e.component),
                              num(e.subcomponent)},
                             enc.component));
    err.setRaw(3, joinTrim({std::to_string(e.hl7Code), escape(hl7ErrorText(e.hl7Code), enc), "HL70357"}, enc.component));
    err.set(4, std::string(1, e.severity));
    if (!e.diagnostic.empty()) err.set(7, e.diagnostic);
    if (!e.userMessage.empty()) err.set(8, e.userMessage);
  }
  return ack;
}

bool printable(std::string_view s) {
  if (s.size() > 200) return false;
  for (const char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7E) return false;
  return true;
}

bool usableDelimiter(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u < 0x7F && !((u >= '0' && u <= '9') || (u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z'));
}

std::string_view firstPart(std::string_view s, char sep) { return s.substr(0, s.find(sep)); }

}  // namespace

const char* ackCodeText(AckCode c) {
  switch (c) {
    case AckCode::AA: return "AA";
    case AckCode::AE: return "AE";
    case AckCode::AR: return "AR";
    case AckCode::CA: return "CA";
    case AckCode::CE: return "CE";
    case AckCode::CR: return "CR";
  }
  return "AE";
}

AckMode ackMode(const Message& msg) {
  const Segment& msh = msg.segments()[0];
  return msh.field(15).empty() && msh.field(16).empty() ? AckMode::Original : AckMode::Enhanced;
}

bool ackWanted(std::string_view condition, bool success) {
  if (condition == "NE") return false;
  if (condition == "ER") return !success;
  if (condition == "SU") return success;
  return true;  // AL, empty (original mode) and unknown values: acknowledge
}

AckCode ackCodeFor(const Hl7Error& e, AckMode mode) {
  if (mode == AckMode::Enhanced) return e.isReject() ? AckCode::CR : AckCode::CE;
  return e.isReject() ? AckCode::AR : AckCode::AE;
}

AckError AckError::from(const Hl7Error& e) {
  AckError a;
  a.hl7Code = e.hl7ErrorCode();
  a.segmentId = e.segmentId();
  a.segmentSequence = e.segmentSequence();
  a.field = e.field();
  a.userMessage = e.what();
  return a;
}

const char* hl7ErrorText(int code) {
  switch (code) {
    case 0: return "Message accepted";
    case 100: return "Segment sequence error";
    case 101: return "Required field missing";
    case 102: return "Data type error";
    case 103: return "Table value not found";
    case 104: return "Value too long";
    case 200: return "Unsupported message type";
    case 201: return "Unsupported event code";
    case 202: return "Unsupported processing id";
    case 203: return "Unsupported version id";
    case 204: return "Unknown key identifier";
    case 205: return "Duplicate key identifier";
    case 206: return "Application record locked";
    case 207: return "Application internal error";
    default: return "";
  }
}

std::string newControlId() {
  static std::atomic<unsigned> counter{0};
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld%04u", static_cast<long long>(ms), counter.fetch_add(1) % 10000);
  return buf;
}

Message buildAck(const Message& original, AckCode code, const std::vector<AckError>& errors, const AckOptions& options) {
  const Segment& msh = original.segments()[0];
  Header h;
  h.enc = original.encoding();
  h.sendingApp = msh.rawField(3);
  h.sendingFacility = msh.rawField(4);
  h.receivingApp = msh.rawField(5);
  h.receivingFacility = msh.rawField(6);
  h.controlId = msh.rawField(10);
  h.processingId = msh.rawField(11);
  h.versionRaw = msh.rawField(12);
  h.version = original.version();
  h.trigger = std::string(firstPart(msh.field(9).component(2).raw(), h.enc.subcomponent));
  h.charsetRaw = msh.rawField(18);
  return build(h, code, errors, options);
}

Message buildAck(std::string_view raw, AckCode code, const std::vector<AckError>& errors, const AckOptions& options) {
  Header h;
  if (raw.substr(0, 3) == "\xEF\xBB\xBF") raw.remove_prefix(3);
  while (!raw.empty() && (raw.front() == '\r' || raw.front() == '\n')) raw.remove_prefix(1);
  const std::string_view line = raw.substr(0, raw.find_first_of("\r\n"));
  bool usable = line.size() >= 8 && line.substr(0, 3) == "MSH" && usableDelimiter(line[3]);
  size_t e = 4;
  if (usable) {
    while (e < line.size() && line[e] != line[3]) ++e;
    const std::string_view msh2 = line.substr(4, e - 4);
    usable = msh2.size() == 4 || msh2.size() == 5;
    for (size_t i = 0; usable && i < msh2.size(); ++i)
      usable = usableDelimiter(msh2[i]) && msh2[i] != line[3] && msh2.find(msh2[i]) == i;
    if (usable)
      h.enc = Encoding{line[3], msh2[0], msh2[1], msh2[2], msh2[3], msh2.size() == 5 ? msh2[4] : '\0', Charset::Ascii};
  }
  if (usable && e < line.size()) {
    std::vector<std::string_view> f(3);  // MSH-0..2 placeholders
    std::string_view rest = line.substr(e + 1);
    while (true) {
      const size_t p = rest.find(h.enc.field);
      f.push_back(rest.substr(0, p));
      if (p == std::string_view::npos) break;
      rest.remove_prefix(p + 1);
    }
    auto get = [&](size_t n) { return n < f.size() && printable(f[n]) ? std::string(f[n]) : std::string(); };
    h.sendingApp = get(3);
    h.sendingFacility = get(4);
    h.receivingApp = get(5);
    h.receivingFacility = get(6);
    h.controlId = get(10);
    h.processingId = get(11);
    const std::string msh9 = get(9);
    const std::string_view afterType = msh9.find(h.enc.component) == std::string::npos
                                           ? std::string_view()
                                           : std::string_view(msh9).substr(msh9.find(h.enc.component) + 1);
    h.trigger = std::string(firstPart(firstPart(afterType, h.enc.component), h.enc.subcomponent));
    const std::string msh12 = get(12);
    h.version = std::string(firstPart(firstPart(msh12, h.enc.component), h.enc.repetition));
    h.versionRaw = h.version;
    // Only the character sets this library writes are echoed; an unsupported one is left out.
    const std::string cs = get(18);
    if (cs == "8859/1" || cs == "UNICODE UTF-8") {
      h.charsetRaw = cs;
      h.enc.charset = cs == "8859/1" ? Charset::Latin1 : Charset::Utf8;
    }
  }
  if (h.version.empty() || h.enc.isDelimiter(h.version[0])) h.version = h.versionRaw = "2.5";
  return build(h, code, errors, options);
}

}  // namespace hearth::hl7
