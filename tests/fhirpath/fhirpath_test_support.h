#pragma once
// Helpers shared by the fhirpath_tests suites: locating fixtures and the official definitions,
// reading and parsing JSON.
#include <cppunit/extensions/HelperMacros.h>
#include <dirent.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace hearth::test {

inline std::string sourceDir() {
  const char* env = std::getenv("HEARTH_SOURCE_DIR");
  return env && *env ? env : HEARTH_SOURCE_DIR_DEFAULT;
}

// The official R4 definitions (tests may read them; the product never does).
inline std::string fhirDefsDir() {
  const char* env = std::getenv("HEARTH_FHIR_DEFS");
  return env && *env ? env : sourceDir() + "/../shared/fhir-r4";
}

inline bool fileExists(const std::string& path) { return std::ifstream(path).good(); }

inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) CPPUNIT_FAIL("cannot read " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Parses like the REST layer does (iterative, UTF-8 validated); fails the test on malformed JSON.
inline void parseInto(rapidjson::Document& doc, const std::string& json, const std::string& what) {
  doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(json.data(), json.size());
  if (doc.HasParseError()) CPPUNIT_FAIL(what + " is not valid JSON");
}

inline std::vector<std::string> jsonFilesIn(const std::string& dir) {
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

}  // namespace hearth::test
