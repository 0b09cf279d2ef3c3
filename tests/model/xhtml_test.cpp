// XhtmlTest: the narrative check (fhir/src/xhtml.h, R4 txt-1 / txt-2) directly and through
// ResourceValidator:
//  - every narrative Hearth ships or receives in its fixtures, and every narrative in the official
//    R4 definitions, is accepted (no false positives);
//  - script, event handlers, script URLs, frames, DTDs (billion laughs, XXE), foreign namespaces,
//    a non-div root, malformed XML and empty narratives are rejected with a diagnostic that names
//    the rule and never quotes the narrative's text;
//  - XXE and external DTDs load nothing: libxml2's entity loader is never called and a listening
//    socket named by the DTD URL receives no connection.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <netinet/in.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>

#include "model_test_support.h"
#include "xhtml.h"

using hearth::fhir::checkNarrativeXhtml;
using hearth::fhir::IssueType;
using hearth::test::readFile;
using hearth::test::validateJson;

namespace {

const std::string kOpen = R"~(<div xmlns="http://www.w3.org/1999/xhtml">)~";

std::string narrative(const std::string& inner) { return kOpen + inner + "</div>"; }

// A Patient whose text.div is `div` (escaped into a JSON string).
std::string patientWithDiv(const std::string& div) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.String(div.data(), static_cast<rapidjson::SizeType>(div.size()));
  return std::string(R"~({"resourceType":"Patient","text":{"status":"generated","div":)~") + buffer.GetString() + "}}";
}

std::vector<std::string> jsonFilesIn(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (!d) CPPUNIT_FAIL("cannot list " + dir);
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() > 5 && name.substr(name.size() - 5) == ".json") out.push_back(dir + "/" + name);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// Calls `visit` with every Narrative.div string (a "div" member of a "text" object) in `v`.
void forEachNarrative(const rapidjson::Value& v, const std::function<void(std::string_view)>& visit) {
  if (v.IsObject()) {
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
      if (std::string_view(it->name.GetString()) == "text" && it->value.IsObject()) {
        const auto div = it->value.FindMember("div");
        if (div != it->value.MemberEnd() && div->value.IsString()) {
          visit(std::string_view(div->value.GetString(), div->value.GetStringLength()));
        }
      }
      forEachNarrative(it->value, visit);
    }
  } else if (v.IsArray()) {
    for (const auto& item : v.GetArray()) forEachNarrative(item, visit);
  }
}

// Checks every narrative in the JSON files of `dir`; returns how many there were.
size_t checkAllNarrativesIn(const std::string& dir) {
  size_t count = 0;
  for (const std::string& file : jsonFilesIn(dir)) {
    rapidjson::Document doc;
    hearth::test::parseInto(doc, readFile(file));
    forEachNarrative(doc, [&](std::string_view div) {
      ++count;
      const std::string problem = checkNarrativeXhtml(div);
      CPPUNIT_ASSERT_MESSAGE(file + ": narrative #" + std::to_string(count) + " rejected: " + problem, problem.empty());
    });
  }
  return count;
}

#define ASSERT_REJECTED(div, fragment)                                                                        \
  do {                                                                                                        \
    const std::string problem_ = checkNarrativeXhtml(div);                                                    \
    CPPUNIT_ASSERT_MESSAGE("expected a problem containing \"" + std::string(fragment) + "\", got \"" +        \
                               problem_ + "\"",                                                               \
                           problem_.find(fragment) != std::string::npos);                                     \
  } while (0)

#define ASSERT_ACCEPTED(div)                                                                       \
  do {                                                                                             \
    const std::string problem_ = checkNarrativeXhtml(div);                                         \
    CPPUNIT_ASSERT_MESSAGE("expected the narrative to be accepted, got \"" + problem_ + "\"", problem_.empty()); \
  } while (0)

// Counts calls of libxml2's external entity loader while installed (the process-wide hook
// through which every DTD / external entity load would go).
int gLoaderCalls = 0;
xmlParserInputPtr countingLoader(const char*, const char*, xmlParserCtxtPtr) {
  ++gLoaderCalls;
  return nullptr;
}

struct LoaderSpy {
  LoaderSpy() : previous(xmlGetExternalEntityLoader()) {
    gLoaderCalls = 0;
    xmlSetExternalEntityLoader(countingLoader);
  }
  ~LoaderSpy() { xmlSetExternalEntityLoader(previous); }
  xmlExternalEntityLoader previous;
};

// A TCP listener on 127.0.0.1:<ephemeral> that is never served: connected() tells whether
// anyone connected.
struct Listener {
  Listener() {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    CPPUNIT_ASSERT(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CPPUNIT_ASSERT_EQUAL(0, bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr));
    CPPUNIT_ASSERT_EQUAL(0, listen(fd, 8));
    socklen_t len = sizeof addr;
    CPPUNIT_ASSERT_EQUAL(0, getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len));
    port = ntohs(addr.sin_port);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  ~Listener() { close(fd); }
  bool connected() const {
    const int c = accept(fd, nullptr, nullptr);
    if (c >= 0) {
      close(c);
      return true;
    }
    return errno != EAGAIN && errno != EWOULDBLOCK;
  }
  int fd = -1;
  int port = 0;
};

}  // namespace

class XhtmlTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(XhtmlTest);
  CPPUNIT_TEST(testFixtureNarrativesAreAccepted);
  CPPUNIT_TEST(testOfficialNarrativesAreAccepted);
  CPPUNIT_TEST(testFormattingIsAccepted);
  CPPUNIT_TEST(testScriptIsRejected);
  CPPUNIT_TEST(testEventHandlersAreRejected);
  CPPUNIT_TEST(testScriptUrlsAreRejected);
  CPPUNIT_TEST(testDataUrls);
  CPPUNIT_TEST(testFramesObjectsAndFormsAreRejected);
  CPPUNIT_TEST(testStyleAttribute);
  CPPUNIT_TEST(testBillionLaughsIsRejected);
  CPPUNIT_TEST(testExternalEntitiesAreNeverLoaded);
  CPPUNIT_TEST(testExternalDtdIsNeverFetched);
  CPPUNIT_TEST(testEntityReferences);
  CPPUNIT_TEST(testNamespaces);
  CPPUNIT_TEST(testRootMustBeDiv);
  CPPUNIT_TEST(testMalformedXml);
  CPPUNIT_TEST(testEmptyNarrative);
  CPPUNIT_TEST(testHtmlParserDifferentials);
  CPPUNIT_TEST(testLimits);
  CPPUNIT_TEST(testValidatorReportsNarrativeIssues);
  CPPUNIT_TEST(testDiagnosticsDoNotQuoteTheNarrative);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testFixtureNarrativesAreAccepted() {
    const std::string root = hearth::test::sourceDir() + "/tests";
    for (const std::string dir : {"/model/examples", "/model/examples/official"}) {
      CPPUNIT_ASSERT_MESSAGE("no narratives in " + dir, checkAllNarrativesIn(root + dir) > 0);
    }
    checkAllNarrativesIn(root + "/http/fixtures");  // none today; any added must pass
    // ...and the validator raises nothing about them.
    for (const std::string& file : jsonFilesIn(root + "/http/fixtures")) {
      for (const auto& issue : validateJson(readFile(file))) {
        const std::string& e = issue.expression;
        CPPUNIT_ASSERT_MESSAGE(file + ": " + e + ": " + issue.diagnostics,
                               e.size() < 8 || e.compare(e.size() - 8, 8, "text.div") != 0);
      }
    }
  }

  // The official R4 definitions carry thousands of generated narratives (tables, images as
  // data: URLs, styles with url(), anchors): all are valid narratives.
  void testOfficialNarrativesAreAccepted() {
    const size_t count = checkAllNarrativesIn(hearth::test::fhirDefsDir());
    CPPUNIT_ASSERT_MESSAGE("only " + std::to_string(count) + " narratives found", count > 2000);
  }

  void testFormattingIsAccepted() {
    ASSERT_ACCEPTED(narrative("<p>Potassium <b>4.2</b> mmol/L</p>"));
    ASSERT_ACCEPTED(narrative(
        R"~(<h2 id="h">Result</h2><table class="grid" border="1" cellpadding="2"><thead><tr><th scope="col">Code</th>)~"
        R"~(</tr></thead><tbody><tr><td colspan="2" style="color: gray; text-align: left">2823-3</td></tr></tbody></table>)~"
        R"~(<ul><li><i>a</i></li></ul><ol start="3"><li><code>x</code></li></ol><dl><dt>t</dt><dd>d</dd></dl>)~"
        R"~(<pre>  x  </pre><br/><hr/><blockquote cite="http://example.org/q">q</blockquote><sub>1</sub><sup>2</sup>)~"
        R"~(<a name="top">anchor</a> <a href="#top">back</a> <a href="https://example.org/p?a=1&amp;b=2">link</a> )~"
        R"~(<a href="mailto:ward7@example.org">mail</a> <a href="Patient/123">relative</a>)~"
        R"~(<img src="#photo" alt="photo"/><p xml:lang="de" lang="de" dir="ltr">Kalium</p><kbd>k</kbd>)~"
        R"~(<!-- generated by Hearth -->)~"));
    // Whitespace around the div, a BOM-less UTF-8 text with non-ASCII characters.
    ASSERT_ACCEPTED("\n  " + narrative("Müller, Zoë — 4.2 µmol/L") + "\n");
  }

  void testScriptIsRejected() {
    ASSERT_REJECTED(narrative("<script>alert(1)</script>"), "must not contain <script> elements");
    ASSERT_REJECTED(narrative("<p>x<script src=\"http://evil.example/x.js\"/></p>"), "<script> elements");
    ASSERT_REJECTED(narrative("<SCRIPT>alert(1)</SCRIPT>"), "must not contain elements outside the HTML 4");
    ASSERT_REJECTED(narrative("<style>p{color:red}</style>"), "<style> elements");
    ASSERT_REJECTED(narrative("<noscript>x</noscript>"), "<noscript> elements");
  }

  void testEventHandlersAreRejected() {
    ASSERT_REJECTED(narrative(R"~(<p onclick="alert(1)">x</p>)~"), "event-handler attributes ('onclick')");
    ASSERT_REJECTED(narrative(R"~(<img src="x.png" onerror="alert(1)"/>)~"), "event-handler attributes ('onerror')");
    ASSERT_REJECTED(narrative(R"~(<a href="#" onMouseOver="alert(1)">x</a>)~"), "event-handler attributes");
    ASSERT_REJECTED(narrative(R"~(<p formaction="x">x</p>)~"), "must not contain the attribute 'formaction'");
    ASSERT_REJECTED(narrative(R"~(<p data-x="1">x</p>)~"), "attributes outside the HTML 4 formatting set");
  }

  void testScriptUrlsAreRejected() {
    ASSERT_REJECTED(narrative(R"~(<a href="javascript:alert(1)">x</a>)~"), "must not use a script URL");
    ASSERT_REJECTED(narrative(R"~(<a href="JavaScript:alert(1)">x</a>)~"), "must not use a script URL");
    ASSERT_REJECTED(narrative(R"~(<a href="vbscript:msgbox(1)">x</a>)~"), "must not use a script URL");
    // What browsers still read as javascript: tab / newline inside, leading whitespace and
    // control characters, character references.
    ASSERT_REJECTED(narrative(R"~(<a href="  java&#x09;script:alert(1)">x</a>)~"), "must not use a script URL");
    ASSERT_REJECTED(narrative(R"~(<a href="java&#10;script&#58;alert(1)">x</a>)~"), "must not use a script URL");
    ASSERT_REJECTED(narrative(R"~(<a href="&#106;avascript:alert(1)">x</a>)~"), "must not use a script URL");
    ASSERT_REJECTED(narrative(R"~(<img src="javascript:alert(1)" alt="x"/>)~"), "must not use a script URL");
    ASSERT_REJECTED(narrative(R"~(<q cite="javascript:alert(1)">x</q>)~"), "must not use a script URL");
    ASSERT_REJECTED(narrative(R"~(<a href="file:///etc/passwd">x</a>)~"), "must use an http(s), ftp, mailto");
    // Not a scheme for a browser either: a relative reference.
    ASSERT_ACCEPTED(narrative(R"~(<a href="java script:alert(1)">x</a>)~"));
  }

  // data: URLs: only raster images in img src (the official R4 narratives use them); never in
  // links, never SVG or HTML.
  void testDataUrls() {
    ASSERT_ACCEPTED(narrative(R"~(<img src="data:image/png;base64,iVBORw0KGgo=" alt="x"/>)~"));
    ASSERT_ACCEPTED(narrative(R"~(<img src="data: image/gif;base64,R0lGODlh" alt="x"/>)~"));
    ASSERT_REJECTED(narrative(R"~(<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>)~"), "must not use a data: URL");
    ASSERT_REJECTED(narrative(R"~(<img src="data:image/svg+xml;base64,PHN2Zz4=" alt="x"/>)~"),
                    "data: URL other than a base64 PNG, GIF or JPEG image");
    ASSERT_REJECTED(narrative(R"~(<img src="data:text/html,&lt;script&gt;" alt="x"/>)~"), "data: URL other than");
  }

  void testFramesObjectsAndFormsAreRejected() {
    ASSERT_REJECTED(narrative(R"~(<iframe src="http://evil.example/"></iframe>)~"), "must not contain <iframe> elements");
    ASSERT_REJECTED(narrative(R"~(<frameset><frame src="x"/></frameset>)~"), "<frameset> elements");
    ASSERT_REJECTED(narrative(R"~(<object data="x.swf">x</object>)~"), "<object> elements");
    ASSERT_REJECTED(narrative(R"~(<embed src="x.swf"/>)~"), "<embed> elements");
    ASSERT_REJECTED(narrative(R"~(<applet code="x">x</applet>)~"), "<applet> elements");
    ASSERT_REJECTED(narrative(R"~(<form action="http://evil.example/"><input name="pw"/></form>)~"), "<form> elements");
    ASSERT_REJECTED(narrative(R"~(<button>x</button>)~"), "<button> elements");
    ASSERT_REJECTED(narrative(R"~(<base href="http://evil.example/"/>x)~"), "<base> elements");
    ASSERT_REJECTED(narrative(R"~(<link rel="stylesheet" href="http://evil.example/x.css"/>x)~"), "<link> elements");
    ASSERT_REJECTED(narrative(R"~(<meta http-equiv="refresh" content="0;url=http://evil.example/"/>x)~"), "<meta> elements");
    ASSERT_REJECTED(narrative("<body>x</body>"), "<body> elements");
    // Deprecated formatting and HTML 4 section 9.4 (ins/del) are not narrative elements either.
    ASSERT_REJECTED(narrative("<font color=\"red\">x</font>"), "<font> elements");
    ASSERT_REJECTED(narrative("<ins>x</ins>"), "<ins> elements");
  }

  void testStyleAttribute() {
    ASSERT_ACCEPTED(narrative(R"~(<span style="color: gray; background-image: url(data: image/png;base64,iVBO)">x</span>)~"));
    ASSERT_REJECTED(narrative(R"~(<p style="width: expression(alert(1))">x</p>)~"), "in 'style'");
    ASSERT_REJECTED(narrative(R"~(<p style="background: url(javascript:alert(1))">x</p>)~"), "in 'style'");
    ASSERT_REJECTED(narrative(R"~(<p style="background: url('data:text/html,x')">x</p>)~"), "must use url() only with");
    ASSERT_REJECTED(narrative(R"~(<p style="behavior: url(x.htc)">x</p>)~"), "in 'style'");
    ASSERT_REJECTED(narrative(R"~(<p style="-moz-binding: url(x.xml#x)">x</p>)~"), "in 'style'");
    ASSERT_REJECTED(narrative(R"~(<p style="x: e\78 pression(alert(1))">x</p>)~"), "must not use CSS escapes");
    ASSERT_REJECTED(narrative(R"~(<p style="x: expr/**/ession(alert(1))">x</p>)~"), "must not use CSS comments");
  }

  void testBillionLaughsIsRejected() {
    std::string dtd = "<!DOCTYPE div [<!ENTITY lol0 \"lol\">";
    for (int i = 1; i <= 9; ++i) {
      dtd += "<!ENTITY lol" + std::to_string(i) + " \"";
      for (int j = 0; j < 10; ++j) dtd += "&lol" + std::to_string(i - 1) + ";";
      dtd += "\">";
    }
    dtd += "]>";
    LoaderSpy spy;
    ASSERT_REJECTED(dtd + narrative("&lol9;"), "must not contain a DOCTYPE");
    CPPUNIT_ASSERT_EQUAL(0, gLoaderCalls);
  }

  void testExternalEntitiesAreNeverLoaded() {
    const std::string xxe =
        "<!DOCTYPE div [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>" + narrative("<p>&xxe;</p>");
    const std::string parameterXxe =
        "<!DOCTYPE div [<!ENTITY % p SYSTEM \"file:///etc/passwd\"> %p;]>" + narrative("x");
    const std::string externalDtd = "<!DOCTYPE div SYSTEM \"file:///etc/passwd\">" + narrative("x");
    {
      LoaderSpy spy;
      for (const std::string& div : {xxe, parameterXxe, externalDtd}) {
        const std::string problem = checkNarrativeXhtml(div);
        CPPUNIT_ASSERT_MESSAGE(problem, problem.find("must not contain a DOCTYPE") != std::string::npos);
        CPPUNIT_ASSERT_MESSAGE(problem, problem.find("root:") == std::string::npos);
      }
      CPPUNIT_ASSERT_EQUAL_MESSAGE("libxml2 tried to load an external entity", 0, gLoaderCalls);
    }
    // With libxml2's own loader in place as well: the same answers, nothing of the file in them.
    for (const std::string& div : {xxe, parameterXxe, externalDtd}) {
      const std::string problem = checkNarrativeXhtml(div);
      CPPUNIT_ASSERT_MESSAGE(problem, problem.find("must not contain a DOCTYPE") != std::string::npos);
      CPPUNIT_ASSERT_MESSAGE(problem, problem.find("root:") == std::string::npos);
    }
    // Without a DOCTYPE an entity reference is just undeclared.
    LoaderSpy spy;
    ASSERT_REJECTED(narrative("<p>&xxe;</p>"), "must not use entity references other than");
    CPPUNIT_ASSERT_EQUAL(0, gLoaderCalls);
  }

  void testExternalDtdIsNeverFetched() {
    Listener listener;
    const std::string url = "http://127.0.0.1:" + std::to_string(listener.port) + "/evil.dtd";
    ASSERT_REJECTED("<!DOCTYPE div SYSTEM \"" + url + "\">" + narrative("x"), "must not contain a DOCTYPE");
    ASSERT_REJECTED("<!DOCTYPE div [<!ENTITY e SYSTEM \"" + url + "\">]>" + narrative("&e;"), "must not contain a DOCTYPE");
    ASSERT_REJECTED("<!DOCTYPE div [<!ENTITY % p SYSTEM \"" + url + "\"> %p;]>" + narrative("x"),
                    "must not contain a DOCTYPE");
    CPPUNIT_ASSERT_MESSAGE("the checker connected to the DTD's URL", !listener.connected());
  }

  void testEntityReferences() {
    ASSERT_ACCEPTED(narrative("&lt;5 &amp; &gt;3 &quot;q&quot; &apos;a&apos; &#160;&#xA0;&#8364;"));
    ASSERT_REJECTED(narrative("&nbsp;x"), "must not use entity references other than");
    ASSERT_REJECTED(narrative(R"~(<a href="javascript&colon;alert(1)">x</a>)~"), "must not use entity references");
    ASSERT_REJECTED(narrative("a & b"), "is not well-formed XML");
    ASSERT_REJECTED(narrative("&#1;"), "is not well-formed XML");
  }

  void testNamespaces() {
    ASSERT_REJECTED("<div>x</div>", "must declare the XHTML namespace");
    ASSERT_REJECTED(R"~(<div xmlns="http://www.w3.org/1999/xhtml/">x</div>)~", "must declare the XHTML namespace");
    ASSERT_REJECTED(R"~(<div xmlns="http://hl7.org/fhir">x</div>)~", "must declare the XHTML namespace");
    ASSERT_REJECTED(R"~(<h:div xmlns:h="http://www.w3.org/1999/xhtml">x</h:div>)~", "must be a <div> element");
    ASSERT_REJECTED(narrative(R"~(<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>)~"),
                    "must contain only unprefixed XHTML elements");
    ASSERT_REJECTED(narrative(R"~(<m:math xmlns:m="http://www.w3.org/1998/Math/MathML">x</m:math>)~"),
                    "must contain only unprefixed XHTML elements");
    ASSERT_REJECTED(narrative(R"~(<a xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="javascript:x">x</a>)~"),
                    "must not declare namespaces other than");
    ASSERT_REJECTED(narrative(R"~(<p xml:base="http://evil.example/">x</p>)~"),
                    "must not contain namespaced attributes other than xml:lang and xml:space");
    ASSERT_REJECTED(narrative("<x:p>x</x:p>"), "undeclared namespace prefix");
    ASSERT_ACCEPTED(narrative(R"~(<p xmlns="http://www.w3.org/1999/xhtml">x</p>)~"));
  }

  void testRootMustBeDiv() {
    ASSERT_REJECTED(R"~(<p xmlns="http://www.w3.org/1999/xhtml">x</p>)~", "must be a <div> element, not <p>");
    ASSERT_REJECTED(R"~(<html xmlns="http://www.w3.org/1999/xhtml"><body>x</body></html>)~",
                    "must be a <div> element, not <html>");
    ASSERT_REJECTED(R"~(<span xmlns="http://www.w3.org/1999/xhtml">x</span>)~", "must be a <div> element");
    ASSERT_REJECTED("plain text", "must be an XHTML <div> element");
    ASSERT_REJECTED(narrative("x") + narrative("y"), "must end with the closing </div>");
    ASSERT_REJECTED(narrative("x") + "trailing", "must end with the closing </div>");
    ASSERT_REJECTED(R"~(<?xml version="1.0" encoding="UTF-8"?>)~" + narrative("x"), "must not start with an XML declaration");
  }

  void testMalformedXml() {
    ASSERT_REJECTED(narrative("<p>x</b>"), "an end tag does not match its start tag");
    ASSERT_REJECTED(kOpen + "<p>x</p>", "is not well-formed XML: an element is not closed");
    ASSERT_REJECTED(kOpen + "<p>x", "is not well-formed XML: an element is not closed");
    ASSERT_REJECTED(narrative("<p title=\"a<b\">x</p>"), "'<' in an attribute value");
    ASSERT_REJECTED(narrative("<p title=x>x</p>"), "attribute values must be quoted");
    ASSERT_REJECTED(narrative("<p class=\"a\" class=\"b\">x</p>"), "an attribute is repeated");
    ASSERT_REJECTED(narrative("<p>x</p"), "is not well-formed XML");
    ASSERT_REJECTED(narrative("<br>x"), "is not well-formed XML");
    // The line and column of the problem are given.
    ASSERT_REJECTED(kOpen + "\n<p>\n<b>x</p>\n</div>", "(line 3, column");
  }

  // txt-2: some non-whitespace text, or an image with a source.
  void testEmptyNarrative() {
    ASSERT_REJECTED(narrative(""), "must have some non-whitespace text or an image (txt-2)");
    ASSERT_REJECTED(R"~(<div xmlns="http://www.w3.org/1999/xhtml"/>)~", "(txt-2)");
    ASSERT_REJECTED(narrative(" \n\t <p>  </p><br/><table><tr><td> </td></tr></table>"), "(txt-2)");
    ASSERT_REJECTED(narrative(R"~(<p title="not content"><img alt="no source"/></p>)~"), "(txt-2)");
    ASSERT_REJECTED(narrative("<!-- a comment is not content -->"), "(txt-2)");
    ASSERT_ACCEPTED(narrative(R"~(<img src="#photo" alt=""/>)~"));
    ASSERT_ACCEPTED(narrative("<p>&#160;</p>"));  // XPath's normalize-space keeps a no-break space
  }

  // Constructs that an XML parser reads as inert but an HTML parser (what a viewer uses for
  // innerHTML) reads as markup.
  void testHtmlParserDifferentials() {
    ASSERT_REJECTED(narrative("<![CDATA[><img src=x onerror=alert(1)>]]>"), "must not contain CDATA sections");
    ASSERT_REJECTED(narrative("<!--><img src=x onerror=alert(1)>-->"), "must not contain comments with '<' or '>'");
    ASSERT_REJECTED(narrative("<!---><img src=x onerror=alert(1)>-->"), "must not contain comments with");
    ASSERT_REJECTED(narrative("<?x ><img src=x onerror=alert(1)>?>"), "must not contain processing instructions");
    ASSERT_REJECTED(narrative("<textarea>&lt;/textarea&gt;&lt;img src=x onerror=alert(1)&gt;</textarea>"),
                    "<textarea> elements");
    ASSERT_REJECTED(narrative("<title>x</title>"), "<title> elements");
  }

  void testLimits() {
    std::string deep;
    for (int i = 1; i < hearth::fhir::kMaxNarrativeDepth; ++i) deep += "<span>";
    deep += "x";
    for (int i = 1; i < hearth::fhir::kMaxNarrativeDepth; ++i) deep += "</span>";
    ASSERT_ACCEPTED(narrative(deep));
    ASSERT_REJECTED(narrative("<span>" + deep + "</span>"), "nests elements deeper than 64 levels");

    const std::string big(hearth::fhir::kMaxNarrativeBytes, 'x');
    ASSERT_REJECTED(narrative(big), "must not exceed 2 MB");
    ASSERT_ACCEPTED(narrative(big.substr(0, hearth::fhir::kMaxNarrativeBytes - 100)));
  }

  void testValidatorReportsNarrativeIssues() {
    ASSERT_VALID(validateJson(patientWithDiv(narrative("<p>Jane Doe</p>"))));
    auto issues = validateJson(patientWithDiv(narrative("<script>alert(1)</script>")));
    CPPUNIT_ASSERT_EQUAL(size_t(1), issues.size());
    ASSERT_ISSUE(issues, IssueType::Value, "Patient.text.div");
    CPPUNIT_ASSERT(!hearth::fhir::hasStructuralIssue(issues));  // answered 422
    CPPUNIT_ASSERT_EQUAL(std::string("Invalid narrative: the div must not contain <script> elements (txt-1 allows "
                                     "only the HTML 4 formatting elements, a and img) (line 1, column 50)"),
                         issues[0].diagnostics);

    ASSERT_ISSUE(validateJson(patientWithDiv(narrative(R"~(<a href="javascript:alert(1)">x</a>)~"))), IssueType::Value,
                 "Patient.text.div");
    ASSERT_ISSUE(validateJson(patientWithDiv(narrative(""))), IssueType::Value, "Patient.text.div");
    // Narratives of contained and bundled resources.
    ASSERT_ISSUE(validateJson(R"~({"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o",)~"
                              R"~("text":{"status":"generated","div":"<div>x</div>"},"name":"x"}]})~"),
                 IssueType::Value, "Patient.contained[0].ofType(Organization).text.div");
    ASSERT_ISSUE(validateJson(R"~({"resourceType":"Bundle","type":"collection","entry":[{"resource":)~"
                              R"~({"resourceType":"Basic","code":{"text":"x"},"text":{"status":"generated",)~"
                              R"~("div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><iframe/>x</div>"}}}]})~"),
                 IssueType::Value, "Bundle.entry[0].resource.ofType(Basic).text.div");
  }

  // Tag names, entity names and attribute values may be patient data: a diagnostic names the rule
  // and the position, and quotes only known HTML names.
  void testDiagnosticsDoNotQuoteTheNarrative() {
    const char* secrets[] = {
        "<p>Jane <Doe>HIV positive</p>",                                   // mismatched end tag
        "<Doe>HIV positive</Doe>",                                         // unknown element
        "<p>Jane &Doe; HIV positive</p>",                                  // undeclared entity
        R"~(<a href="Doe:HIV-positive">Jane</a>)~",                          // unknown URL scheme
        R"~(<p onDoeHIVpositive="x">Jane</p>)~",                             // event handler, odd name
        R"~(<p DoeHIVpositive="x">Jane</p>)~",                               // unknown attribute
        R"~(<p style="x: url(Doe:HIV-positive)">Jane</p>)~",                 // style
        R"~(<Doe:p xmlns:Doe="urn:HIV-positive">Jane</Doe:p>)~",             // foreign namespace
    };
    for (const char* inner : secrets) {
      const std::string div = narrative(inner);
      const std::string problem = checkNarrativeXhtml(div);
      CPPUNIT_ASSERT_MESSAGE(std::string("accepted: ") + inner, !problem.empty());
      for (const char* secret : {"Jane", "Doe", "HIV"}) {
        CPPUNIT_ASSERT_MESSAGE(std::string(inner) + " -> " + problem, problem.find(secret) == std::string::npos);
      }
    }
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(XhtmlTest);
