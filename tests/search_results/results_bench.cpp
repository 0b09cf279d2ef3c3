// Latency of Patient/$everything and _revinclude over an existing SQLite database with the search
// schema (not a test):  results_bench DB PATIENT_ID [RUNS] [COUNT]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "hearth/fhir/model.h"
#include "results_test_store.h"
#include "search_results.h"

using namespace hearth::fhir;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s DB PATIENT_ID [RUNS] [COUNT]\n", argv[0]);
    return 2;
  }
  const int runs = argc > 3 ? std::stoi(argv[3]) : 200;
  const std::string count = argc > 4 ? argv[4] : "1000";
  auto world = hearth::test::TestWorld::openSqliteFile(argv[1]);
  const Model& model = Model::r4();
  auto time = [&](const char* what, auto&& fn) {
    std::vector<double> ms;
    size_t bytes = 0;
    for (int i = 0; i < runs; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      bytes = fn();
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    std::printf("%-28s p50 %.2f ms  p99 %.2f ms  (%zu bytes)\n", what, ms[ms.size() / 2],
                ms[std::min(ms.size() - 1, ms.size() * 99 / 100)], bytes);
  };
  model.resourceTypes();
  time("$everything", [&] {
    return searchimpl::everything(world->store(), model, "Patient", argv[2], {{"_count", count}}, "http://h/fhir", 20,
                                  1000)
        .size();
  });
  const auto rev = searchimpl::parseIncludeSpec(model, "Observation:subject");
  time("_revinclude Observation:subject", [&] {
    size_t n = 0;
    for (const auto& r : searchimpl::resolveIncludes(world->store(), nullptr, model, {{"Patient", argv[2], ""}}, {},
                                                     {rev}, 1000))
      n += r.json.size();
    return n;
  });
  return 0;
}
