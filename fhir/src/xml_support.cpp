// The guarded libxml2 entry point, the canonical narrative (XHTML) writer and the small helpers
// both conversion directions share. Every XML byte Hearth parses goes through parseSafely().
#include "xml_support.h"

#include <libxml/entities.h>
#include <libxml/parser.h>
#include <libxml/xmlerror.h>

#include <cctype>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>

#include "hearth/fhir/error.h"
#include "hearth/fhir/xml.h"

namespace hearth::fhir::xml {

namespace {

[[noreturn]] void fail(std::string diagnostics, const std::string& expression) {
  throw FhirError(400, IssueType::Structure, std::move(diagnostics), expression);
}

bool isXmlSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// What the SAX hooks below observed during one parse (reached through ctxt->_private).
struct ParseState {
  bool doctype = false;  // a DOCTYPE (or anything DTD-related) was met: the parse was stopped
  bool haveError = false;
  std::string message;  // the first libxml2 error, first line only
  int line = 0;
  int column = 0;
};

ParseState& stateOf(void* ctx) {
  return *static_cast<ParseState*>(static_cast<xmlParserCtxtPtr>(ctx)->_private);
}

// A DOCTYPE is refused before its internal subset is read: nothing can be declared, so no
// entity can be expanded and no external subset or entity can be fetched.
void refuseDoctype(void* ctx, const xmlChar*, const xmlChar*, const xmlChar*) {
  stateOf(ctx).doctype = true;
  xmlStopParser(static_cast<xmlParserCtxtPtr>(ctx));
}
void refuseEntityDecl(void* ctx, const xmlChar*, int, const xmlChar*, const xmlChar*, xmlChar*) {
  stateOf(ctx).doctype = true;
  xmlStopParser(static_cast<xmlParserCtxtPtr>(ctx));
}
// Only the five predefined XML entities exist (libxml2 resolves those before asking).
xmlEntityPtr predefinedEntityOnly(void*, const xmlChar* name) { return xmlGetPredefinedEntity(name); }
xmlParserInputPtr resolveNothing(void*, const xmlChar*, const xmlChar*) { return nullptr; }

void collectError(void* ctx, xmlErrorPtr err) {
  ParseState& st = stateOf(ctx);
  if (st.haveError || err == nullptr || err->level < XML_ERR_ERROR) return;
  st.haveError = true;
  std::string_view msg = err->message ? std::string_view(err->message) : std::string_view("parse error");
  // The first line only: later lines may echo input bytes.
  msg = msg.substr(0, msg.find('\n'));
  if (err->code == XML_ERR_INVALID_ENCODING) msg = "the input is not valid UTF-8";
  st.message = std::string(msg.substr(0, 160));
  st.line = err->line;
  st.column = err->int2;
}

void initLibxml() {
  static std::once_flag once;
  std::call_once(once, [] { xmlInitParser(); });
}

// Refuses anything that is not UTF-8 before libxml2 could switch decoders: NUL bytes (every
// UTF-16 / UCS-4 document has them), byte-order marks other than UTF-8's, and an XML declaration
// naming another encoding.
void checkUtf8Only(std::string_view text, std::string_view what, const std::string& expression) {
  if (std::memchr(text.data(), 0, text.size()) != nullptr) {
    fail(std::string(what) + " contains a NUL byte; only UTF-8 is accepted", expression);
  }
  std::string_view rest = text;
  if (rest.substr(0, 3) == "\xEF\xBB\xBF") rest.remove_prefix(3);
  if (rest.find_first_not_of(" \t\r\n") == std::string_view::npos)
    fail(std::string(what) + " is empty", expression);
  if (rest.empty() || (rest[0] != '<' && !isXmlSpace(rest[0]))) {
    fail(std::string(what) + " does not start with markup; only UTF-8 XML is accepted", expression);
  }
  if (rest.substr(0, 5) != "<?xml" || rest.size() < 6 || !isXmlSpace(rest[5])) return;
  const size_t end = rest.find("?>");
  if (end == std::string_view::npos) return;  // malformed: libxml2 reports it
  const std::string_view decl = rest.substr(0, end);
  const size_t enc = decl.find("encoding");
  if (enc == std::string_view::npos) return;
  size_t p = enc + 8;
  while (p < decl.size() && isXmlSpace(decl[p])) ++p;
  if (p >= decl.size() || decl[p] != '=') return;
  ++p;
  while (p < decl.size() && isXmlSpace(decl[p])) ++p;
  if (p >= decl.size() || (decl[p] != '"' && decl[p] != '\'')) return;
  const char quote = decl[p];
  const size_t close = decl.find(quote, p + 1);
  if (close == std::string_view::npos) return;
  const std::string_view name = decl.substr(p + 1, close - p - 1);
  static constexpr std::string_view kUtf8 = "utf-8";
  bool utf8 = name.size() == kUtf8.size();
  for (size_t i = 0; utf8 && i < name.size(); ++i) {
    utf8 = static_cast<char>(std::tolower(static_cast<unsigned char>(name[i]))) == kUtf8[i];
  }
  if (!utf8) {
    fail(std::string(what) + " declares an encoding other than UTF-8; only UTF-8 is accepted", expression);
  }
}

struct CtxtFree {
  void operator()(xmlParserCtxt* c) const { xmlFreeParserCtxt(c); }
};

}  // namespace

DocPtr parseSafely(std::string_view text, std::string_view what, const std::string& expression) {
  if (text.size() > kMaxXmlBytes) {
    throw FhirError(413, IssueType::TooLong,
                    std::string(what) + " exceeds the limit of " + std::to_string(kMaxXmlBytes) + " bytes",
                    expression);
  }
  checkUtf8Only(text, what, expression);
  initLibxml();

  std::unique_ptr<xmlParserCtxt, CtxtFree> ctxt(xmlNewParserCtxt());
  if (!ctxt || !ctxt->sax) throw std::bad_alloc();
  ParseState state;
  ctxt->_private = &state;
  xmlSAXHandler* sax = ctxt->sax;  // owned by this context only
  sax->internalSubset = refuseDoctype;
  sax->externalSubset = refuseDoctype;
  sax->entityDecl = refuseEntityDecl;
  sax->getEntity = predefinedEntityOnly;
  sax->getParameterEntity = predefinedEntityOnly;
  sax->resolveEntity = resolveNothing;
  sax->serror = collectError;
  sax->warning = nullptr;
  sax->error = nullptr;
  sax->fatalError = nullptr;

  // Deliberately absent: XML_PARSE_NOENT, XML_PARSE_DTDLOAD, XML_PARSE_DTDATTR, XML_PARSE_DTDVALID,
  // XML_PARSE_XINCLUDE, XML_PARSE_HUGE (which would lift the depth and size limits).
  const int options =
      XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_IGNORE_ENC | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;
  DocPtr doc(
      xmlCtxtReadMemory(ctxt.get(), text.data(), static_cast<int>(text.size()), nullptr, nullptr, options));
  if (state.doctype) {
    fail(std::string(what) + " contains a DOCTYPE declaration; DTDs and entities are not accepted",
         expression);
  }
  if (!doc || !ctxt->wellFormed || state.haveError) {
    std::string msg = "Malformed " + std::string(what);
    if (state.haveError) {
      msg += " (line " + std::to_string(state.line) + ", column " + std::to_string(state.column) +
             "): " + state.message;
    }
    fail(msg, expression);
  }
  if (!ctxt->nsWellFormed) fail(std::string(what) + " has a namespace error", expression);
  if (!xmlDocGetRootElement(doc.get())) fail(std::string(what) + " has no root element", expression);
  return doc;
}

std::string_view attrValue(const xmlAttr* a, std::string& scratch) {
  const xmlNode* c = a->children;
  if (c == nullptr) return {};
  if (c->next == nullptr && c->type == XML_TEXT_NODE) return sv(c->content);
  scratch.clear();
  for (; c; c = c->next) scratch += sv(c->content);
  return scratch;
}

void appendEscapedText(std::string& out, std::string_view s) {
  size_t from = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char* rep = nullptr;
    switch (s[i]) {
      case '&':
        rep = "&amp;";
        break;
      case '<':
        rep = "&lt;";
        break;
      case '>':
        rep = "&gt;";
        break;
      case '\r':
        rep = "&#13;";
        break;  // a literal CR would be read back as LF
      default:
        continue;
    }
    out.append(s.data() + from, i - from);
    out += rep;
    from = i + 1;
  }
  out.append(s.data() + from, s.size() - from);
}

void appendEscapedAttr(std::string& out, std::string_view s) {
  size_t from = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char* rep = nullptr;
    switch (s[i]) {
      case '&':
        rep = "&amp;";
        break;
      case '<':
        rep = "&lt;";
        break;
      case '>':
        rep = "&gt;";
        break;
      case '"':
        rep = "&quot;";
        break;
      case '\t':
        rep = "&#9;";
        break;
      case '\n':
        rep = "&#10;";
        break;
      case '\r':
        rep = "&#13;";
        break;
      default:
        continue;
    }
    out.append(s.data() + from, i - from);
    out += rep;
    from = i + 1;
  }
  out.append(s.data() + from, s.size() - from);
}

bool isXmlText(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return false;
      ++p;
      continue;
    }
    int len = 0;
    uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p < len) return false;
    for (int i = 1; i < len; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return false;  // overlong
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF) return false;
    p += len;
  }
  return true;
}

namespace {

// HTML's void elements: only these are written in the empty-element form (<br/>). Narratives are
// often shown by HTML parsers, which read <td/> or <a name="x"/> as an open element.
bool isVoidElement(std::string_view name) {
  static constexpr std::string_view kVoid[] = {"area",  "base", "br",   "col",   "embed",  "hr",    "img",
                                               "input", "link", "meta", "param", "source", "track", "wbr"};
  for (std::string_view v : kVoid) {
    if (v == name) return true;
  }
  return false;
}

void writeXhtmlElement(std::string& out, const xmlNode* n, bool root, int depth,
                       const std::string& expression) {
  if (depth > kMaxXmlDepth) {
    fail("The narrative is nested deeper than " + std::to_string(kMaxXmlDepth) + " levels", expression);
  }
  if (nsOf(n) != kXhtmlNs) {
    fail("The narrative contains an element outside the XHTML namespace", expression);
  }
  const std::string_view name = sv(n->name);
  out += '<';
  out += name;
  if (root) {
    out += " xmlns=\"";
    out += kXhtmlNs;
    out += '"';
  }
  std::string scratch;
  for (const xmlAttr* a = n->properties; a; a = a->next) {
    out += ' ';
    if (a->ns) {
      if (sv(a->ns->href) != sv(XML_XML_NAMESPACE)) {
        fail("The narrative has an attribute in a foreign namespace", expression);
      }
      out += "xml:";
    }
    out += sv(a->name);
    out += "=\"";
    appendEscapedAttr(out, attrValue(a, scratch));
    out += '"';
  }
  bool content = false;
  for (const xmlNode* c = n->children; c && !content; c = c->next) content = c->type != XML_PI_NODE;
  if (!content && isVoidElement(name)) {
    out += "/>";
    return;
  }
  out += '>';
  for (const xmlNode* c = n->children; c; c = c->next) {
    switch (c->type) {
      case XML_ELEMENT_NODE:
        writeXhtmlElement(out, c, false, depth + 1, expression);
        break;
      case XML_TEXT_NODE:
      case XML_CDATA_SECTION_NODE:
        appendEscapedText(out, sv(c->content));
        break;
      case XML_COMMENT_NODE:
        out += "<!--";
        out += sv(c->content);
        out += "-->";
        break;
      case XML_PI_NODE:
        break;
      default:
        fail("The narrative contains an unsupported XML node", expression);
    }
  }
  out += "</";
  out += name;
  out += '>';
}

}  // namespace

void appendCanonicalXhtml(std::string& out, const xmlNode* div, int depth, const std::string& expression) {
  if (sv(div->name) != "div" || nsOf(div) != kXhtmlNs) {
    fail("The narrative must be a <div> element in the XHTML namespace (" + std::string(kXhtmlNs) + ")",
         expression);
  }
  writeXhtmlElement(out, div, true, depth, expression);
}

namespace {

std::string_view cut(std::string_view s) {
  constexpr size_t kMax = 64;
  if (s.size() <= kMax) return s;
  size_t n = kMax;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // not inside a character
  return s.substr(0, n);
}

}  // namespace

std::string quoted(std::string_view name) {
  std::string out = "'";
  out += cut(name);
  if (cut(name).size() < name.size()) out += "...";
  out += '\'';
  return out;
}

std::string Location::str() const {
  std::string out;
  for (const Step& s : steps_) {
    if (!out.empty()) out += '.';
    out += cut(s.name);
    if (s.index >= 0) {
      out += '[';
      out += std::to_string(s.index);
      out += ']';
    }
    if (!s.ofType.empty()) {
      out += ".ofType(";
      out += s.ofType;
      out += ')';
    }
  }
  return out;
}

std::string Location::str(std::string_view child) const {
  std::string out = str();
  if (!out.empty()) out += '.';
  out += cut(child);
  return out;
}

}  // namespace hearth::fhir::xml
