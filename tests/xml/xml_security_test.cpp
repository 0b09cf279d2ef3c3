// Hostile and broken XML: every case is a 400 (413 when oversized), never a file read, a
// network connection, an entity expansion or a crash. "No file read" is observed with inotify on
// the target file; "no connection" with a listening socket that must stay without clients.
#include <arpa/inet.h>
#include <cppunit/extensions/HelperMacros.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <random>

#include "hearth/fhir/xml.h"
#include "xml_test_support.h"

using namespace hearth::fhir;
using hearth::xmltest::expectFhirError;

namespace {

const std::string kPatientOpen = "<Patient xmlns=\"http://hl7.org/fhir\">";

std::string expectXml400(const std::string& xml, const std::string& what) {
  return expectFhirError([&] { xmlToJson(xml); }, 400, "*", what);
}

// A temporary file holding a unique marker, watched for any open or read.
class WatchedFile {
 public:
  WatchedFile() {
    std::random_device rd;
    marker_ = "HEARTH-XXE-MARKER-" + std::to_string(rd()) + std::to_string(rd());
    char tmpl[] = "/tmp/hearth-xxe-XXXXXX";
    const int fd = mkstemp(tmpl);
    CPPUNIT_ASSERT(fd >= 0);
    path_ = tmpl;
    CPPUNIT_ASSERT(write(fd, marker_.data(), marker_.size()) == static_cast<ssize_t>(marker_.size()));
    close(fd);
    inotify_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    CPPUNIT_ASSERT(inotify_ >= 0);
    CPPUNIT_ASSERT(inotify_add_watch(inotify_, path_.c_str(), IN_OPEN | IN_ACCESS) >= 0);
  }
  ~WatchedFile() {
    close(inotify_);
    unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }
  const std::string& marker() const { return marker_; }
  // True if the file was opened or read since the last call.
  bool touched() {
    char buf[4096];
    bool any = false;
    while (read(inotify_, buf, sizeof buf) > 0) any = true;
    return any;
  }

 private:
  std::string path_, marker_;
  int inotify_ = -1;
};

// A TCP listener on 127.0.0.1 that records whether anyone connected.
class Listener {
 public:
  Listener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CPPUNIT_ASSERT(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CPPUNIT_ASSERT(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    CPPUNIT_ASSERT(listen(fd_, 8) == 0);
    socklen_t len = sizeof addr;
    CPPUNIT_ASSERT(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
  }
  ~Listener() { close(fd_); }
  int port() const { return port_; }
  bool connected() {
    const int c = accept(fd_, nullptr, nullptr);
    if (c < 0) return false;
    close(c);
    return true;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace

class XmlSecurityTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(XmlSecurityTest);
  CPPUNIT_TEST(externalFileEntityIsNeverRead);
  CPPUNIT_TEST(externalDtdAndParameterEntitiesAreNeverRead);
  CPPUNIT_TEST(narrativeEntitiesInJsonAreNeverRead);
  CPPUNIT_TEST(httpEntityMakesNoConnection);
  CPPUNIT_TEST(billionLaughsIsRefusedQuickly);
  CPPUNIT_TEST(anyDoctypeIsRefused);
  CPPUNIT_TEST(deepNestingIsRefused);
  CPPUNIT_TEST(deepJsonIsRefused);
  CPPUNIT_TEST(malformedXml);
  CPPUNIT_TEST(wrongNamespaces);
  CPPUNIT_TEST(onlyUtf8);
  CPPUNIT_TEST(oversizedInputIs413);
  CPPUNIT_TEST_SUITE_END();

 public:
  void externalFileEntityIsNeverRead() {
    WatchedFile f;
    const std::string xml = "<?xml version=\"1.0\"?><!DOCTYPE Patient [<!ENTITY xxe SYSTEM \"file://" +
                            f.path() + "\">]>" + kPatientOpen +
                            "<name><family value=\"&xxe;\"/></name><text><status value=\"generated\"/>"
                            "<div xmlns=\"http://www.w3.org/1999/xhtml\">&xxe;</div></text></Patient>";
    const std::string diag = expectXml400(xml, "XXE file entity");
    CPPUNIT_ASSERT(diag.find(f.marker()) == std::string::npos);
    CPPUNIT_ASSERT(diag.find("DOCTYPE") != std::string::npos);
    CPPUNIT_ASSERT_MESSAGE("the entity's file was opened", !f.touched());
    // Relative and plain-path system ids too.
    expectXml400("<!DOCTYPE Patient [<!ENTITY xxe SYSTEM \"" + f.path() + "\">]>" + kPatientOpen +
                     "<id value=\"&xxe;\"/></Patient>",
                 "XXE path entity");
    CPPUNIT_ASSERT(!f.touched());
    // The watch itself works: reading the file is seen.
    CPPUNIT_ASSERT_EQUAL(f.marker(), hearth::xmltest::readFile(f.path()));
    CPPUNIT_ASSERT(f.touched());
  }

  void externalDtdAndParameterEntitiesAreNeverRead() {
    WatchedFile f;
    expectXml400("<?xml version=\"1.0\"?><!DOCTYPE Patient SYSTEM \"file://" + f.path() + "\">" +
                     kPatientOpen + "</Patient>",
                 "external DTD");
    expectXml400(
        "<!DOCTYPE Patient PUBLIC \"-//X//Y//EN\" \"" + f.path() + "\">" + kPatientOpen + "</Patient>",
        "external DTD with public id");
    expectXml400("<!DOCTYPE Patient [<!ENTITY % p SYSTEM \"file://" + f.path() + "\"> %p;]>" + kPatientOpen +
                     "</Patient>",
                 "parameter entity");
    CPPUNIT_ASSERT_MESSAGE("the DTD file was opened", !f.touched());
  }

  void narrativeEntitiesInJsonAreNeverRead() {
    // The JSON side re-parses the narrative: the same rules hold there.
    WatchedFile f;
    const std::string json =
        R"({"resourceType":"Patient","text":{"status":"generated","div":"<!DOCTYPE div [<!ENTITY x SYSTEM \"file://)" +
        f.path() + R"(\">]><div xmlns=\"http://www.w3.org/1999/xhtml\">&x;</div>"}})";
    const std::string diag =
        expectFhirError([&] { jsonToXml(json); }, 400, "Patient.text.div", "XXE in narrative");
    CPPUNIT_ASSERT(diag.find(f.marker()) == std::string::npos);
    CPPUNIT_ASSERT(!f.touched());
  }

  void httpEntityMakesNoConnection() {
    Listener l;
    const std::string url = "http://127.0.0.1:" + std::to_string(l.port()) + "/x";
    expectXml400("<!DOCTYPE Patient [<!ENTITY xxe SYSTEM \"" + url + "\">]>" + kPatientOpen +
                     "<id value=\"&xxe;\"/></Patient>",
                 "XXE http entity");
    expectXml400("<!DOCTYPE Patient SYSTEM \"" + url + "\">" + kPatientOpen + "</Patient>", "http DTD");
    CPPUNIT_ASSERT_MESSAGE("the parser connected to the entity's URL", !l.connected());
    // The listener does see connections (so the check above can fail).
    const int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(l.port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CPPUNIT_ASSERT(connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    bool seen = false;
    for (int i = 0; i < 100 && !seen; ++i) {
      seen = l.connected();
      if (!seen) usleep(10000);
    }
    close(s);
    CPPUNIT_ASSERT(seen);
  }

  void billionLaughsIsRefusedQuickly() {
    std::string dtd = "<!DOCTYPE Patient [<!ENTITY lol0 \"lol\">";
    for (int i = 1; i < 10; ++i) {
      dtd += "<!ENTITY lol" + std::to_string(i) + " \"";
      for (int k = 0; k < 10; ++k) dtd += "&lol" + std::to_string(i - 1) + ";";
      dtd += "\">";
    }
    dtd += "]>";
    const auto start = std::chrono::steady_clock::now();
    expectXml400(
        dtd + kPatientOpen + "<name><family value=\"&lol9;\"/><text value=\"&lol9;\"/></name></Patient>",
        "billion laughs");
    expectXml400(dtd + kPatientOpen +
                     "<text><status value=\"generated\"/><div xmlns=\"http://www.w3.org/1999/xhtml\">"
                     "&lol9;</div></text></Patient>",
                 "billion laughs in the narrative");
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)
            .count();
    CPPUNIT_ASSERT_MESSAGE("took " + std::to_string(ms) + " ms", ms < 1000);
  }

  void anyDoctypeIsRefused() {
    CPPUNIT_ASSERT(
        expectXml400("<!DOCTYPE Patient>" + kPatientOpen + "</Patient>", "bare DOCTYPE").find("DOCTYPE") !=
        std::string::npos);
    expectXml400("<?xml version=\"1.0\"?>\n<!DOCTYPE Patient [\n]>\n" + kPatientOpen + "</Patient>",
                 "empty internal subset");
    expectXml400("<!DOCTYPE Patient [<!ATTLIST Patient a CDATA \"x\">]>" + kPatientOpen + "</Patient>",
                 "attribute defaults");
  }

  void deepNestingIsRefused() {
    auto nested = [](int levels) {
      std::string s = kPatientOpen;
      for (int i = 0; i < levels; ++i) s += "<extension url=\"u\">";
      s += "<valueString value=\"v\"/>";
      for (int i = 0; i < levels; ++i) s += "</extension>";
      return s + "</Patient>";
    };
    expectXml400(nested(10000), "10,000 levels (libxml2's own limit)");
    CPPUNIT_ASSERT(expectXml400(nested(kMaxXmlDepth + 5), "beyond Hearth's limit").find("deeper") !=
                   std::string::npos);
    const std::string ok = xmlToJson(nested(kMaxXmlDepth - 5));
    CPPUNIT_ASSERT(ok.find("\"valueString\":\"v\"") != std::string::npos);
    // Deep narrative likewise.
    std::string div = "<div xmlns=\"http://www.w3.org/1999/xhtml\">";
    for (int i = 0; i < 200; ++i) div += "<span>";
    for (int i = 0; i < 200; ++i) div += "</span>";
    expectXml400(kPatientOpen + "<text><status value=\"generated\"/>" + div + "</div></text></Patient>",
                 "deep narrative");
  }

  void deepJsonIsRefused() {
    std::string json = R"({"resourceType":"Patient")";
    for (int i = 0; i < 10000; ++i) json += R"(,"extension":[{"url":"u")";
    for (int i = 0; i < 10000; ++i) json += "}]";
    json += "}";
    const std::string diag = expectFhirError([&] { jsonToXml(json); }, 400, "*", "deep JSON");
    CPPUNIT_ASSERT(diag.find("deeper") != std::string::npos);
  }

  void malformedXml() {
    const char* cases[] = {
        "",
        "   ",
        "not xml",
        "<Patient xmlns=\"http://hl7.org/fhir\">",
        "<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"x\"></Patient>",
        "<Patient xmlns=\"http://hl7.org/fhir\"/><Patient xmlns=\"http://hl7.org/fhir\"/>",
        "<Patient xmlns=\"http://hl7.org/fhir\"><id value=x/></Patient>",
        "<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"&undefined;\"/></Patient>",
        "<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"a\" value=\"b\"/></Patient>",
        "<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"<\"/></Patient>",
        "<f:Patient xmlns=\"http://hl7.org/fhir\"/>",
        "  <?xml version=\"1.0\"?><Patient xmlns=\"http://hl7.org/fhir\"/>",
    };
    for (const char* c : cases) expectXml400(c, std::string("malformed: ") + c);
  }

  void wrongNamespaces() {
    expectXml400("<Patient/>", "no namespace");
    expectXml400("<Patient xmlns=\"http://hl7.org/fhir/\"/>", "trailing slash namespace");
    expectXml400("<Patient xmlns=\"urn:other\"><id value=\"x\"/></Patient>", "other namespace");
    expectFhirError([] { xmlToJson(kPatientOpen + "<x:id xmlns:x=\"urn:other\" value=\"1\"/></Patient>"); },
                    400, "Patient.id", "child in another namespace");
    expectFhirError([] { xmlToJson(kPatientOpen + "<id xmlns=\"\" value=\"1\"/></Patient>"); }, 400,
                    "Patient.id", "child in no namespace");
    expectFhirError(
        [] { xmlToJson(kPatientOpen + "<gender value=\"male\" x:y=\"2\" xmlns:x=\"urn:x\"/></Patient>"); },
        400, "Patient.gender.y", "attribute in another namespace");
  }

  void onlyUtf8() {
    expectXml400(kPatientOpen + "<id value=\"\xC3\x28\"/></Patient>", "invalid UTF-8 sequence");
    expectXml400(kPatientOpen + "<id value=\"\xC0\xAF\"/></Patient>", "overlong UTF-8");
    expectXml400(kPatientOpen + "<id value=\"\xED\xA0\x80\"/></Patient>", "UTF-8 surrogate");
    expectXml400(kPatientOpen + "<id value=\"x\"/></Patient>\xE2\x82", "truncated UTF-8");
    expectXml400("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>" + kPatientOpen + "</Patient>",
                 "declared Latin-1");
    expectXml400("<?xml version=\"1.0\" encoding='UTF-16'?>" + kPatientOpen + "</Patient>",
                 "declared UTF-16");
    std::string utf16 = "\xFF\xFE";
    for (char c : kPatientOpen + "</Patient>") {
      utf16 += c;
      utf16 += '\0';
    }
    expectXml400(utf16, "UTF-16 with BOM");
    expectXml400(kPatientOpen + "<id value=\"a" + std::string(1, '\0') + "b\"/></Patient>", "NUL byte");
    // UTF-8 with a BOM and a declaration in any case is fine.
    CPPUNIT_ASSERT_EQUAL(std::string(R"({"resourceType":"Patient","id":"ü"})"),
                         xmlToJson("\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\"?>" + kPatientOpen +
                                   "<id value=\"ü\"/></Patient>"));
  }

  void oversizedInputIs413() {
    std::string big = kPatientOpen + "<!--";
    big.resize(kMaxXmlBytes + 1 - 13, 'x');
    big += "--></Patient>";
    expectFhirError([&] { xmlToJson(big); }, 413, "*", "oversized XML");
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(XmlSecurityTest);
