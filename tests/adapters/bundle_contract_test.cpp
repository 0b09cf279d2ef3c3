// The transaction contract every mapped message keeps, checked over both corpora:
//  - every entry is conditional on a business identifier the resource itself carries
//    (PUT Type?identifier=s|v, or POST with ifNoneExist identifier=s|v), no plain create;
//  - fullUrls are urn:uuid:, unique, and every urn:uuid: reference resolves inside the Bundle;
//  - the same message (even with a new control id) gives the same bytes;
//  - every resource is valid R4 for Hearth's validator and for the official JSON schema (node +
//    ajv through tests/schema/validate.mjs).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "adapters_test_support.h"
#include "hearth/fhir/validator.h"

using namespace adaptertest;

namespace {

std::string percentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// "identifier=<system>|<value>" (percent-encoded, FHIR-escaped) -> {system, value}.
std::pair<std::string, std::string> parseCriteria(const std::string& criteria) {
  const std::string prefix = "identifier=";
  if (criteria.compare(0, prefix.size(), prefix) != 0) CPPUNIT_FAIL("criteria not on identifier: " + criteria);
  const std::string decoded = percentDecode(criteria.substr(prefix.size()));
  std::string system, value;
  bool inValue = false;
  for (size_t i = 0; i < decoded.size(); ++i) {
    char c = decoded[i];
    if (c == '\\' && i + 1 < decoded.size()) {
      (inValue ? value : system).push_back(decoded[++i]);
    } else if (c == '|' && !inValue) {
      inValue = true;
    } else {
      CPPUNIT_ASSERT_MESSAGE("unescaped search delimiter in " + criteria, c != ',' && c != '$' && c != '|');
      (inValue ? value : system).push_back(c);
    }
  }
  CPPUNIT_ASSERT_MESSAGE("no system|value in " + criteria, inValue);
  return {system, value};
}

void collectReferences(const Value& v, std::vector<std::string>& out) {
  if (v.IsObject()) {
    for (const auto& m : v.GetObject()) {
      if (std::string(m.name.GetString()) == "reference" && m.value.IsString()) out.push_back(m.value.GetString());
      collectReferences(m.value, out);
    }
  } else if (v.IsArray()) {
    for (const auto& item : v.GetArray()) collectReferences(item, out);
  }
}

bool isUuidUrl(const std::string& s) {
  if (s.size() != 45 || s.compare(0, 9, "urn:uuid:") != 0) return false;
  for (size_t i = 9; i < s.size(); ++i) {
    const size_t k = i - 9;
    const bool dash = k == 8 || k == 13 || k == 18 || k == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i])) || std::isupper(static_cast<unsigned char>(s[i])))
      return false;
  }
  return true;
}

std::pair<int, std::string> runCommand(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return {-1, "popen failed"};
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string sourceDir() {
  const char* dir = std::getenv("HEARTH_SOURCE_DIR");
  return dir ? dir : ADAPTERS_SOURCE_DIR;
}

std::string baseName(const std::string& path) { return std::filesystem::path(path).filename().string(); }

}  // namespace

class BundleContractTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(BundleContractTest);
  CPPUNIT_TEST(testEveryEntryIsConditionalOnItsOwnIdentifier);
  CPPUNIT_TEST(testReferencesResolveInsideTheBundle);
  CPPUNIT_TEST(testResentMessageGivesTheSameTransaction);
  CPPUNIT_TEST(testEveryResourcePassesHearthValidator);
  CPPUNIT_TEST(testEveryResourceMatchesTheOfficialSchema);
  CPPUNIT_TEST(testIdentifierValuesAreEscapedInUrls);
  CPPUNIT_TEST(testCustomDelimitersInAnAdt);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testEveryEntryIsConditionalOnItsOwnIdentifier() {
    int entries = 0;
    for (const std::string& file : allMessageFiles()) {
      Mapped m = mapFile(baseName(file));
      CPPUNIT_ASSERT_EQUAL(std::string("Bundle"), str(m.doc, "/resourceType"));
      CPPUNIT_ASSERT_EQUAL(std::string("transaction"), str(m.doc, "/type"));
      std::set<std::string> conditions;
      for (const Value& e : m.entries().GetArray()) {
        ++entries;
        const std::string type = str(e, "/resource/resourceType");
        const std::string method = str(e, "/request/method");
        const std::string url = str(e, "/request/url");
        std::string criteria;
        if (method == "PUT") {
          CPPUNIT_ASSERT_MESSAGE(file + ": PUT url " + url, url.compare(0, type.size() + 1, type + "?") == 0);
          CPPUNIT_ASSERT(at(e, "/request/ifNoneExist") == nullptr);
          criteria = url.substr(type.size() + 1);
        } else {
          CPPUNIT_ASSERT_EQUAL_MESSAGE(file + ": a plain create would duplicate on resend", std::string("POST"), method);
          CPPUNIT_ASSERT_EQUAL(type, url);
          criteria = str(e, "/request/ifNoneExist");
        }
        auto [system, value] = parseCriteria(criteria);
        bool carried = false;
        for (const Value& id : e["resource"]["identifier"].GetArray()) {
          carried = carried || (str(id, "/system") == system && str(id, "/value") == value);
        }
        CPPUNIT_ASSERT_MESSAGE(file + ": " + type + " does not carry the identifier it is matched on: " + criteria, carried);
        CPPUNIT_ASSERT_MESSAGE(file + ": two entries on " + type + "?" + criteria,
                               conditions.insert(type + "?" + criteria).second);
        CPPUNIT_ASSERT_EQUAL_MESSAGE(file, m.result.counts.count(type) ? 1 : 0, 1);
      }
    }
    CPPUNIT_ASSERT(entries > 100);
  }

  void testReferencesResolveInsideTheBundle() {
    for (const std::string& file : allMessageFiles()) {
      Mapped m = mapFile(baseName(file));
      std::set<std::string> fullUrls;
      for (const Value& e : m.entries().GetArray()) {
        const std::string url = str(e, "/fullUrl");
        CPPUNIT_ASSERT_MESSAGE(file + ": fullUrl " + url, isUuidUrl(url));
        CPPUNIT_ASSERT_MESSAGE(file + ": duplicate fullUrl", fullUrls.insert(url).second);
      }
      std::vector<std::string> refs;
      collectReferences(m.entries(), refs);
      for (const std::string& r : refs) {
        CPPUNIT_ASSERT_MESSAGE(file + ": dangling reference " + r, fullUrls.count(r) == 1);
      }
    }
  }

  void testResentMessageGivesTheSameTransaction() {
    for (const std::string& file : allMessageFiles()) {
      const std::string text = readFile(file);
      const std::string first = mapText(text).result.bundle;
      CPPUNIT_ASSERT_EQUAL_MESSAGE(file, first, mapText(text).result.bundle);
      // A sender that resends with a new control id still produces the same transaction.
      std::string resent = withField(text, "MSH", 1, 10, "RESEND-0001");
      CPPUNIT_ASSERT_EQUAL_MESSAGE(file, first, mapText(resent).result.bundle);
    }
    // A different patient gives different fullUrls.
    std::string other = withField(message("adt_a04_v23.hl7"), "PID", 1, 3, "5544332^^^RIVERBEND^MR");
    CPPUNIT_ASSERT(str(mapText(other).oneEntry("Patient"), "/fullUrl") !=
                   str(mapFile("adt_a04_v23.hl7").oneEntry("Patient"), "/fullUrl"));
  }

  void testEveryResourcePassesHearthValidator() {
    hearth::fhir::ResourceValidator validator;
    int checked = 0;
    for (const std::string& file : allMessageFiles()) {
      Mapped m = mapFile(baseName(file));
      for (const Value& e : m.entries().GetArray()) {
        auto issues = validator.validate(e["resource"]);
        std::string text;
        for (const auto& i : issues) text += "\n  " + i.expression + ": " + i.diagnostics;
        CPPUNIT_ASSERT_MESSAGE(file + " " + str(e, "/resource/resourceType") + text, issues.empty());
        ++checked;
      }
      // The Bundle as a whole too (entry.resource is validated as its own type).
      auto issues = validator.validate(m.doc);
      CPPUNIT_ASSERT_MESSAGE(file + ": Bundle", issues.empty());
    }
    CPPUNIT_ASSERT(checked > 100);
  }

  void testEveryResourceMatchesTheOfficialSchema() {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("hearth-adapters-schema-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    int written = 0;
    for (const std::string& file : allMessageFiles()) {
      Mapped m = mapFile(baseName(file));
      const std::string stem = fs::path(file).stem().string();
      std::ofstream(dir / (stem + "-bundle.json")) << m.result.bundle;
      int i = 0;
      for (const Value& e : m.entries().GetArray()) {
        rapidjson::StringBuffer buf;
        rapidjson::Writer<rapidjson::StringBuffer> w(buf);
        e["resource"].Accept(w);
        std::ofstream(dir / (stem + "-" + std::to_string(++i) + "-" + str(e, "/resource/resourceType") + ".json"))
            << buf.GetString();
        ++written;
      }
    }
    // Control: the validator must catch an invalid resource (else it would pass anything).
    std::ofstream(dir / "zz-control-invalid.json") << R"({"resourceType":"Observation","status":"final","valueQuantity":{"value":"7"}})";

    const std::string schemaDir = sourceDir() + "/tests/schema";
    if (!fs::exists(schemaDir + "/node_modules/ajv/package.json")) {
      auto [rc, out] = runCommand("cd '" + schemaDir + "' && npm ci --no-audit --no-fund");
      if (rc != 0) CPPUNIT_FAIL("schema check impossible: npm ci in tests/schema failed:\n" + out);
    }
    auto [rc, out] = runCommand("cd '" + schemaDir + "' && node validate.mjs '" + dir.string() + "'");
    CPPUNIT_ASSERT_MESSAGE("node validate.mjs could not run:\n" + out, rc == 0 || rc == 1);
    const std::string expected = "schema check: " + std::to_string(written + static_cast<int>(allMessageFiles().size())) +
                                 " valid, 1 invalid";
    CPPUNIT_ASSERT_MESSAGE("expected '" + expected + "', got:\n" + out.substr(0, 8000), out.find(expected) != std::string::npos);
    CPPUNIT_ASSERT_MESSAGE("the control file must be the invalid one:\n" + out, out.find("zz-control-invalid.json") != std::string::npos);
    fs::remove_all(dir);
  }

  void testIdentifierValuesAreEscapedInUrls() {
    // An identifier with search delimiters and URL-special characters round-trips through the URL.
    std::string msg = withField(message("adt_a04_v23.hl7"), "PID", 1, 3, "44\\F\\33,22$1+#x\\E\\y^^^RIVERBEND^MR");
    Mapped m = mapText(msg);
    CPPUNIT_ASSERT_MESSAGE(m.errorsText(), m.result.ok());
    const std::string id = "44|33,22$1+#x\\y";
    CPPUNIT_ASSERT_EQUAL(id, str(m.one("Patient"), "/identifier/0/value"));
    const std::string url = str(m.oneEntry("Patient"), "/request/url");
    CPPUNIT_ASSERT_EQUAL(std::string("Patient?identifier=urn:hearth:authority:RIVERBEND|44%5C%7C33%5C%2C22%5C%241%2B%23x%5C%5Cy"), url);
    auto [system, value] = parseCriteria(url.substr(std::string("Patient?").size()));
    CPPUNIT_ASSERT_EQUAL(std::string("urn:hearth:authority:RIVERBEND"), system);
    CPPUNIT_ASSERT_EQUAL(id, value);
  }

  void testCustomDelimitersInAnAdt() {
    // MSH|~`!@ : component ~, repetition `, escape !, sub-component @.
    Mapped m = mapFile("custom_delims_a_v25.hl7");
    const Value& p = m.one("Patient");
    CPPUNIT_ASSERT_EQUAL(std::string("urn:oid:1.2.3.4"), str(p, "/identifier/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("EG-55120"), str(p, "/identifier/0/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("EG-55120B"), str(p, "/identifier/1/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("PI"), str(p, "/identifier/1/type/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("Mbeki-Hart"), str(p, "/name/0/family"));
    CPPUNIT_ASSERT_EQUAL(std::string("Dr"), str(p, "/name/0/prefix/0"));
    CPPUNIT_ASSERT_EQUAL(std::string("1|2 Mill Row"), str(p, "/address/0/line/0"));
    CPPUNIT_ASSERT_EQUAL(std::string("+1 (206) 5550123"), str(p, "/telecom/0/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("1970-12-31"), str(p, "/birthDate"));
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(BundleContractTest);
