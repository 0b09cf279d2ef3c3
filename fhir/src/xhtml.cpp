// Narrative XHTML check: one streaming SAX2 pass of libxml2 over the div, with our own handlers
// (no tree is built). Every handler that sees something forbidden records the first problem and
// stops the parser; libxml2's own well-formedness errors arrive through the structured-error
// handler and are reported in our words (libxml2 messages quote tag and entity names, which may
// be narrative text).
//
// Safety of the parse does not rest on parser options alone: the DOCTYPE handler stops the parser
// before an internal subset is read, so no entity is ever declared and no DTD named; the handlers
// that would resolve entities or read an external subset refuse; entity substitution and DTD
// loading are off, XML_PARSE_NONET is set and XML_PARSE_HUGE is not (libxml2's size limits apply
// on top of kMaxNarrativeBytes and kMaxNarrativeDepth). No tree and no global libxml2 setting is
// touched, so this coexists with other libxml2 users in the process.
#include "xhtml.h"

#include <libxml/SAX2.h>
#include <libxml/entities.h>
#include <libxml/parser.h>
#include <libxml/xmlerror.h>

#include <algorithm>
#include <mutex>

namespace hearth::fhir {

namespace {

constexpr std::string_view kXhtmlNamespace = "http://www.w3.org/1999/xhtml";
constexpr std::string_view kXmlNamespace = "http://www.w3.org/XML/1998/namespace";

// --- the vocabulary (data) ---------------------------------------------------------------------

// Elements allowed in a narrative: the non-deprecated elements of HTML 4.0 chapters 7 (structure:
// div, span, h1-h6, address), 8 (bdo), 9 except section 9.4 (phrase elements, quotations,
// sub/sup, p, br, pre), 10 (lists), 11 (tables) and 15 (tt, i, b, big, small, hr), plus a and img.
// The R4 txt-1 xpath lists the same set without address, bdo and kbd. Sorted.
constexpr std::string_view kAllowedElements[] = {
    "a",     "abbr",  "acronym", "address", "b",     "bdo",   "big",   "blockquote", "br",    "caption", "cite",
    "code",  "col",   "colgroup", "dd",     "dfn",   "div",   "dl",    "dt",         "em",    "h1",      "h2",
    "h3",    "h4",    "h5",      "h6",      "hr",    "i",     "img",   "kbd",        "li",    "ol",      "p",
    "pre",   "q",     "samp",    "small",   "span",  "strong", "sub",  "sup",        "table", "tbody",   "td",
    "tfoot", "th",    "thead",   "tr",      "tt",    "ul",    "var"};

// Attributes allowed on any element: the R4 txt-1 list (its xpath). Sorted. Besides these only
// xml:lang and xml:space are accepted.
constexpr std::string_view kAllowedAttributes[] = {
    "abbr",     "accesskey", "align",   "alt",     "axis",    "bgcolor", "border",   "cellhalign", "cellpadding",
    "cellspacing", "cellvalign", "char", "charoff", "charset", "cite",   "class",    "colspan",    "compact",
    "coords",   "dir",       "frame",   "headers", "height",  "href",    "hreflang", "hspace",     "id",
    "lang",     "longdesc",  "name",    "nowrap",  "rel",     "rev",     "rowspan",  "rules",      "scope",
    "shape",    "span",      "src",     "start",   "style",   "summary", "tabindex", "title",      "type",
    "valign",   "value",     "vspace",  "width"};

// Forbidden element names that diagnostics may quote (known HTML/SVG/MathML vocabulary, never
// narrative text). Sorted.
constexpr std::string_view kKnownForbiddenElements[] = {
    "applet",  "area",     "article", "aside",    "audio",    "base",     "basefont", "blink",  "body",    "button",
    "canvas",  "center",   "del",     "details",  "dialog",   "dir",      "embed",    "fieldset", "figure", "font",
    "footer",  "form",     "frame",   "frameset", "head",     "header",   "html",     "iframe", "input",   "ins",
    "isindex", "keygen",   "label",   "legend",   "link",     "main",     "map",      "marquee", "math",   "menu",
    "meta",    "nav",      "noembed", "noframes", "noscript", "object",   "optgroup", "option", "param",   "picture",
    "plaintext", "portal", "s",       "script",   "section",  "select",   "source",   "strike", "style",   "svg",
    "template", "textarea", "title",  "track",    "u",        "video"};

// Forbidden attribute names that diagnostics may quote. Sorted.
constexpr std::string_view kKnownForbiddenAttributes[] = {
    "action", "background", "data", "dynsrc", "formaction", "lowsrc", "poster", "srcdoc", "srcset", "usemap"};

// URL schemes allowed in links (href, cite, longdesc) and in image sources (plus data: images).
constexpr std::string_view kLinkSchemes[] = {"ftp", "http", "https", "mailto", "tel", "urn"};
constexpr std::string_view kImageSchemes[] = {"http", "https"};
constexpr std::string_view kDataImageTypes[] = {"image/gif", "image/jpeg", "image/png"};

template <size_t N>
constexpr bool sortedUnique(const std::string_view (&a)[N]) {
  for (size_t i = 1; i < N; ++i) {
    if (!(a[i - 1] < a[i])) return false;
  }
  return true;
}
static_assert(sortedUnique(kAllowedElements) && sortedUnique(kAllowedAttributes) &&
              sortedUnique(kKnownForbiddenElements) && sortedUnique(kKnownForbiddenAttributes) &&
              sortedUnique(kLinkSchemes) && sortedUnique(kImageSchemes));

template <size_t N>
bool contains(const std::string_view (&a)[N], std::string_view s) {
  return std::binary_search(a, a + N, s);
}

// --- small text helpers ---------------------------------------------------------------------------

inline std::string_view sv(const xmlChar* s) { return s ? std::string_view(reinterpret_cast<const char*>(s)) : std::string_view(); }

inline bool isXmlSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

inline char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

bool startsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (lower(s[i]) != prefix[i]) return false;
  }
  return true;
}

// An event-handler attribute name as HTML knows them (onclick, onmouseover...): quotable.
bool isLowercaseWord(std::string_view s) {
  if (s.empty() || s.size() > 32) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 'a' && c <= 'z'; });
}

// How a URL is seen by a browser: ASCII tab/CR/LF removed anywhere, leading and trailing C0
// controls and spaces trimmed (WHATWG URL parsing).
std::string browserUrl(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (char c : raw) {
    if (c != '\t' && c != '\n' && c != '\r') out += c;
  }
  size_t b = 0;
  size_t e = out.size();
  while (b < e && static_cast<unsigned char>(out[b]) <= 0x20) ++b;
  while (e > b && static_cast<unsigned char>(out[e - 1]) <= 0x20) --e;
  return out.substr(b, e - b);
}

// The lower-cased scheme of a URL, or empty for a relative reference (no scheme by WHATWG rules:
// an ASCII letter, then letters, digits, '+', '-', '.', then ':').
std::string schemeOf(std::string_view url) {
  if (url.empty() || !((url[0] >= 'a' && url[0] <= 'z') || (url[0] >= 'A' && url[0] <= 'Z'))) return {};
  for (size_t i = 1; i < url.size(); ++i) {
    const char c = url[i];
    if (c == ':') return lowered(url.substr(0, i));
    const bool schemeChar = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
                            c == '-' || c == '.';
    if (!schemeChar) return {};
  }
  return {};
}

// data:<raster image type>;base64,... (the official R4 narratives write "data: image/png;...").
bool isDataImage(std::string_view url) {
  size_t pos = 5;  // after "data:"
  while (pos < url.size() && isXmlSpace(url[pos])) ++pos;
  const std::string rest = lowered(url.substr(pos, 32));
  for (std::string_view type : kDataImageTypes) {
    if (rest.size() > type.size() && rest.compare(0, type.size(), type) == 0 &&
        std::string_view(rest).substr(type.size()).substr(0, 8) == ";base64,") {
      return true;
    }
  }
  return false;
}

enum class UrlUse { Link, Image };

// nullptr when the URL may appear in a narrative, else what is wrong (a phrase after "must").
const char* checkUrl(std::string_view raw, UrlUse use) {
  const std::string url = browserUrl(raw);
  const std::string scheme = schemeOf(url);
  if (scheme.empty()) return nullptr;
  if (scheme == "javascript" || scheme == "vbscript") return "must not use a script URL (javascript:, vbscript:)";
  if (scheme == "data") {
    if (use == UrlUse::Image && isDataImage(url)) return nullptr;
    return use == UrlUse::Image ? "must not use a data: URL other than a base64 PNG, GIF or JPEG image"
                                : "must not use a data: URL";
  }
  const bool allowed = use == UrlUse::Image ? contains(kImageSchemes, scheme) : contains(kLinkSchemes, scheme);
  if (allowed) return nullptr;
  return use == UrlUse::Image ? "must use an http(s), relative or data: image URL"
                              : "must use an http(s), ftp, mailto, tel, urn or relative URL";
}

// nullptr when a style attribute is acceptable, else what is wrong. Inline CSS is allowed
// (txt-1), but not the constructs that run code or fetch style sheets in some browser, nor the
// escapes and comments that could hide them; url() follows the image URL rules.
const char* checkStyle(std::string_view raw) {
  if (raw.find('\\') != std::string_view::npos) return "must not use CSS escapes";
  if (raw.find("/*") != std::string_view::npos) return "must not use CSS comments";
  std::string css;
  css.reserve(raw.size());
  for (char c : raw) {
    if (!isXmlSpace(c)) css += lower(c);
  }
  static constexpr std::string_view kForbidden[] = {"expression(", "javascript:", "vbscript:", "-moz-binding",
                                                    "behavior:", "behaviour:", "@import", "<"};
  for (std::string_view f : kForbidden) {
    if (css.find(f) != std::string::npos) return "must not use expression(), script URLs, @import or behaviors";
  }
  const std::string lowerRaw = lowered(raw);
  size_t at = 0;
  while ((at = lowerRaw.find("url(", at)) != std::string::npos) {
    at += 4;
    const size_t close = lowerRaw.find(')', at);
    if (close == std::string::npos) return "must close url()";
    std::string_view arg = raw.substr(at, close - at);
    while (!arg.empty() && isXmlSpace(arg.front())) arg.remove_prefix(1);
    while (!arg.empty() && isXmlSpace(arg.back())) arg.remove_suffix(1);
    if (arg.size() >= 2 && (arg.front() == '"' || arg.front() == '\'') && arg.back() == arg.front()) {
      arg = arg.substr(1, arg.size() - 2);
    }
    if (checkUrl(arg, UrlUse::Image) != nullptr) return "must use url() only with http(s), relative or data: image URLs";
    at = close + 1;
  }
  return nullptr;
}

// --- the SAX pass ----------------------------------------------------------------------------------

// State of one check; the parser's userData.
struct Scan {
  xmlParserCtxtPtr ctxt = nullptr;
  int depth = 0;
  bool sawRoot = false;
  bool hasContent = false;  // txt-2: non-whitespace text or an img with a src
  std::string problem;      // the first problem; the parse is stopped when it is set
  int line = 0;
  int column = 0;

  void fail(std::string message) {
    if (!problem.empty()) return;
    problem = std::move(message);
    line = xmlSAX2GetLineNumber(ctxt);
    column = xmlSAX2GetColumnNumber(ctxt);
    xmlStopParser(ctxt);
  }
};

inline Scan& scanOf(void* ctx) { return *static_cast<Scan*>(ctx); }

// "<script> elements" for a known HTML name, a neutral phrase otherwise.
std::string elementsLabel(std::string_view name) {
  if (contains(kKnownForbiddenElements, name) || contains(kAllowedElements, name)) {
    return "<" + std::string(name) + "> elements";
  }
  return "elements outside the HTML 4 formatting set";
}

void checkAttributes(Scan& scan, int count, const xmlChar** attributes) {
  // Five pointers per attribute: localname, prefix, URI, value begin, value end.
  for (int i = 0; i < count && scan.problem.empty(); ++i) {
    const std::string_view name = sv(attributes[5 * i]);
    const std::string_view uri = sv(attributes[5 * i + 2]);
    const auto* begin = reinterpret_cast<const char*>(attributes[5 * i + 3]);
    const auto* end = reinterpret_cast<const char*>(attributes[5 * i + 4]);
    const std::string_view value(begin, static_cast<size_t>(end - begin));

    if (!uri.empty()) {
      if (uri == kXmlNamespace && (name == "lang" || name == "space")) continue;
      scan.fail("must not contain namespaced attributes other than xml:lang and xml:space");
      return;
    }
    if (startsWithNoCase(name, "on")) {
      scan.fail(isLowercaseWord(name) ? "must not contain event-handler attributes ('" + std::string(name) + "')"
                                      : std::string("must not contain event-handler attributes (on...)"));
      return;
    }
    if (!contains(kAllowedAttributes, name)) {
      scan.fail(contains(kKnownForbiddenAttributes, name)
                    ? "must not contain the attribute '" + std::string(name) + "'"
                    : std::string("must not contain attributes outside the HTML 4 formatting set (txt-1)"));
      return;
    }
    const char* bad = nullptr;
    if (name == "href" || name == "cite" || name == "longdesc") {
      bad = checkUrl(value, UrlUse::Link);
    } else if (name == "src") {
      bad = checkUrl(value, UrlUse::Image);
    } else if (name == "style") {
      bad = checkStyle(value);
    }
    if (bad != nullptr) {
      scan.fail(std::string(bad) + " in '" + std::string(name) + "'");
      return;
    }
  }
}

void onStartElement(void* ctx, const xmlChar* localname, const xmlChar* prefix, const xmlChar* uri, int nsCount,
                    const xmlChar** namespaces, int attrCount, int /*defaulted*/, const xmlChar** attributes) {
  Scan& scan = scanOf(ctx);
  if (!scan.problem.empty()) return;
  const std::string_view name = sv(localname);
  if (!scan.sawRoot) {
    scan.sawRoot = true;
    if (name != "div" || prefix != nullptr) {
      const bool known = contains(kKnownForbiddenElements, name) || contains(kAllowedElements, name);
      scan.fail(known && prefix == nullptr ? "must be a <div> element, not <" + std::string(name) + ">"
                                           : std::string("must be a <div> element"));
      return;
    }
    if (sv(uri) != kXhtmlNamespace) {
      scan.fail("must declare the XHTML namespace: <div xmlns=\"http://www.w3.org/1999/xhtml\">");
      return;
    }
  }
  if (prefix != nullptr || sv(uri) != kXhtmlNamespace) {
    scan.fail("must contain only unprefixed XHTML elements (found an element in another namespace)");
    return;
  }
  if (!contains(kAllowedElements, name)) {
    scan.fail("must not contain " + elementsLabel(name) +
              " (txt-1 allows only the HTML 4 formatting elements, a and img)");
    return;
  }
  // Two pointers per declaration: prefix, URI. Only (re)declaring the default XHTML namespace.
  for (int i = 0; i < nsCount; ++i) {
    if (namespaces[2 * i] != nullptr || sv(namespaces[2 * i + 1]) != kXhtmlNamespace) {
      scan.fail("must not declare namespaces other than the default XHTML namespace");
      return;
    }
  }
  if (++scan.depth > kMaxNarrativeDepth) {
    scan.fail("nests elements deeper than " + std::to_string(kMaxNarrativeDepth) + " levels");
    return;
  }
  checkAttributes(scan, attrCount, attributes);
  if (!scan.hasContent && name == "img") {
    for (int i = 0; i < attrCount; ++i) {
      if (sv(attributes[5 * i]) == "src" && attributes[5 * i + 2] == nullptr) scan.hasContent = true;
    }
  }
}

void onEndElement(void* ctx, const xmlChar*, const xmlChar*, const xmlChar*) { --scanOf(ctx).depth; }

void onCharacters(void* ctx, const xmlChar* text, int len) {
  Scan& scan = scanOf(ctx);
  if (scan.hasContent) return;
  for (int i = 0; i < len; ++i) {
    if (!isXmlSpace(static_cast<char>(text[i]))) {
      scan.hasContent = true;
      return;
    }
  }
}

void onCdata(void* ctx, const xmlChar*, int) { scanOf(ctx).fail("must not contain CDATA sections"); }

void onComment(void* ctx, const xmlChar* value) {
  const std::string_view text = sv(value);
  if (text.find_first_of("<>") != std::string_view::npos) {
    scanOf(ctx).fail("must not contain comments with '<' or '>' (HTML viewers parse them differently)");
  }
}

void onProcessingInstruction(void* ctx, const xmlChar*, const xmlChar*) {
  scanOf(ctx).fail("must not contain processing instructions");
}

void onDoctype(void* ctx, const xmlChar*, const xmlChar*, const xmlChar*) {
  scanOf(ctx).fail("must not contain a DOCTYPE (no DTDs or entity declarations)");
}

void onEntityDecl(void* ctx, const xmlChar*, int, const xmlChar*, const xmlChar*, xmlChar*) {
  scanOf(ctx).fail("must not contain a DOCTYPE (no DTDs or entity declarations)");
}

void onUnparsedEntityDecl(void* ctx, const xmlChar*, const xmlChar*, const xmlChar*, const xmlChar*) {
  scanOf(ctx).fail("must not contain a DOCTYPE (no DTDs or entity declarations)");
}

constexpr const char* kEntityProblem =
    "must not use entity references other than &lt; &gt; &amp; &quot; &apos; (use numeric character references)";

// Called for every entity reference that is not one of the five predefined ones.
xmlEntityPtr onGetEntity(void* ctx, const xmlChar*) {
  scanOf(ctx).fail(kEntityProblem);
  return nullptr;
}

xmlEntityPtr onGetParameterEntity(void* ctx, const xmlChar*) {
  scanOf(ctx).fail(kEntityProblem);
  return nullptr;
}

void onReference(void* ctx, const xmlChar*) { scanOf(ctx).fail(kEntityProblem); }

// Never load anything.
xmlParserInputPtr onResolveEntity(void* ctx, const xmlChar*, const xmlChar*) {
  scanOf(ctx).fail("must not refer to external entities or DTDs");
  return nullptr;
}

const char* describeXmlError(int code) {
  switch (code) {
    case XML_ERR_DOCUMENT_EMPTY:
    case XML_ERR_DOCUMENT_START:
      return "must be an XHTML <div> element";
    case XML_ERR_DOCUMENT_END:
      return "must end with the closing </div> (content after it)";
    case XML_ERR_TAG_NAME_MISMATCH:
      return "is not well-formed XML: an end tag does not match its start tag";
    case XML_ERR_TAG_NOT_FINISHED:
      return "is not well-formed XML: an element is not closed";
    case XML_ERR_UNDECLARED_ENTITY:
    case XML_WAR_UNDECLARED_ENTITY:
      return kEntityProblem;
    case XML_ERR_ENTITYREF_SEMICOL_MISSING:
    case XML_ERR_NAME_REQUIRED:
      return "is not well-formed XML: a '&' must start a character reference or one of &lt; &gt; &amp; &quot; &apos; "
             "(write & as &amp;)";
    case XML_ERR_LT_IN_ATTRIBUTE:
      return "is not well-formed XML: '<' in an attribute value (write &lt;)";
    case XML_ERR_ATTRIBUTE_NOT_STARTED:
    case XML_ERR_ATTRIBUTE_WITHOUT_VALUE:
    case XML_ERR_ATTRIBUTE_NOT_FINISHED:
      return "is not well-formed XML: attribute values must be quoted";
    case XML_ERR_ATTRIBUTE_REDEFINED:
    case XML_NS_ERR_ATTRIBUTE_REDEFINED:
      return "is not well-formed XML: an attribute is repeated";
    case XML_ERR_INVALID_CHAR:
    case XML_ERR_INVALID_CHARREF:
    case XML_ERR_INVALID_DEC_CHARREF:
    case XML_ERR_INVALID_HEX_CHARREF:
      return "is not well-formed XML: an invalid character or character reference";
    case XML_NS_ERR_UNDEFINED_NAMESPACE:
      return "uses an undeclared namespace prefix";
    case XML_ERR_RESERVED_XML_NAME:
      return "must not contain an XML declaration or processing instruction";
    default:
      return "is not well-formed XML";
  }
}

// libxml2's own errors (well-formedness, limits). Warnings are ignored.
void onStructuredError(void* ctx, xmlErrorPtr error) {
  Scan& scan = scanOf(ctx);
  if (error == nullptr || error->level < XML_ERR_ERROR || !scan.problem.empty()) return;
  // The push parser reports a text that ends inside the root like content after it.
  const bool endsEarly = error->code == XML_ERR_DOCUMENT_END && scan.depth > 0;
  scan.problem = endsEarly ? "is not well-formed XML: an element is not closed" : describeXmlError(error->code);
  scan.line = error->line;
  scan.column = error->int2;
  xmlStopParser(scan.ctxt);
}

xmlSAXHandler makeHandler() {
  xmlSAXHandler h{};
  h.initialized = XML_SAX2_MAGIC;
  h.startElementNs = onStartElement;
  h.endElementNs = onEndElement;
  h.characters = onCharacters;
  h.ignorableWhitespace = onCharacters;
  h.cdataBlock = onCdata;
  h.comment = onComment;
  h.processingInstruction = onProcessingInstruction;
  h.internalSubset = onDoctype;
  h.externalSubset = onDoctype;
  h.entityDecl = onEntityDecl;
  h.unparsedEntityDecl = onUnparsedEntityDecl;
  h.getEntity = onGetEntity;
  h.getParameterEntity = onGetParameterEntity;
  h.reference = onReference;
  h.resolveEntity = onResolveEntity;
  h.serror = onStructuredError;
  return h;
}

const xmlSAXHandler kHandler = makeHandler();

std::once_flag libxmlInit;

}  // namespace

std::string checkNarrativeXhtml(std::string_view div) {
  if (div.size() > kMaxNarrativeBytes) return "must not exceed 2 MB";
  size_t first = 0;
  while (first < div.size() && isXmlSpace(div[first])) ++first;
  if (first == div.size()) return "must be an XHTML <div> element";
  if (div.substr(first, 5) == "<?xml") return "must not start with an XML declaration (the narrative is the <div>)";

  std::call_once(libxmlInit, [] { xmlInitParser(); });
  // The push parser, fed the whole text as one final chunk, is about three times faster here
  // than a memory-input context (which re-grows its input buffer while scanning). It copies the
  // handler table; kHandler itself is never written.
  Scan scan;
  xmlParserCtxtPtr ctxt = xmlCreatePushParserCtxt(const_cast<xmlSAXHandler*>(&kHandler), &scan, nullptr, 0, nullptr);
  if (ctxt == nullptr) return "could not be checked (out of memory)";
  scan.ctxt = ctxt;
  xmlCtxtUseOptions(ctxt, XML_PARSE_NONET | XML_PARSE_IGNORE_ENC);
  ctxt->replaceEntities = 0;
  ctxt->loadsubset = 0;
  ctxt->validate = 0;
  xmlParseChunk(ctxt, div.data(), static_cast<int>(div.size()), /*terminate=*/1);
  const bool wellFormed = ctxt->wellFormed != 0 && ctxt->nsWellFormed != 0;
  xmlFreeParserCtxt(ctxt);

  if (scan.problem.empty()) {
    if (!wellFormed) {
      scan.problem = "is not well-formed XML";
    } else if (!scan.sawRoot) {
      return "must be an XHTML <div> element";
    } else if (!scan.hasContent) {
      return "must have some non-whitespace text or an image (txt-2)";
    } else {
      return {};
    }
  }
  if (scan.line > 0) {
    scan.problem += " (line " + std::to_string(scan.line) + ", column " + std::to_string(scan.column) + ")";
  }
  return std::move(scan.problem);
}

}  // namespace hearth::fhir
