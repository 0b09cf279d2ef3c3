#pragma once
// Shared helpers of the HL7 tests: the message corpus under tests/hl7/messages.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace hl7test {

inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Corpus file by name, e.g. corpus("adt_a01_v251.hl7").
inline std::string corpus(const std::string& name) { return readFile(std::string(HL7_CORPUS_DIR) + "/" + name); }

inline std::vector<std::string> corpusNames() {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(HL7_CORPUS_DIR))
    if (entry.path().extension() == ".hl7") names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// The input with every "\r\n" and "\n" written as "\r" (what encode() must give back).
inline std::string withCrTerminators(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\r' && i + 1 < in.size() && in[i + 1] == '\n') continue;
    out.push_back(in[i] == '\n' ? '\r' : in[i]);
  }
  return out;
}

}  // namespace hl7test
