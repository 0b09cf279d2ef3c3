// Latency of Patient/$everything and _revinclude straight on a store (no HTTP); not a test.
//
//   results_bench URL seed PATIENTS PER_PATIENT
//       Fills the store with PATIENTS patients of PER_PATIENT resources each (Observations,
//       Encounters, DiagnosticReports, MedicationRequests, Conditions referencing the patient and
//       200 shared practitioners / organizations); patient "p42" gets 500. Rows are written
//       directly (no indexer): the search_reference rows the indexer would make.
//   results_bench URL run PATIENT_ID [RUNS] [COUNT]
//       Times $everything (page size COUNT, default 1000) and _revinclude=Observation:subject.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "hearth/fhir/model.h"
#include "hearth/fhir/search_index.h"
#include "results_test_store.h"
#include "search_results.h"

using namespace hearth::fhir;

namespace {

IndexRow ref(const std::string& param, const std::string& type, const std::string& id) {
  IndexRow r;
  r.kind = IndexKind::Reference;
  r.param = param;
  r.refType = type;
  r.refId = id;
  r.url = type + "/" + id;
  return r;
}

void seed(ResourceStore& store, int patients, int perPatient) {
  const std::string when = "2024-01-01T00:00:00.000Z";
  const std::string filler(300, 'x');
  auto tx = store.begin();
  long n = 0;
  auto put = [&](const std::string& type, const std::string& id, std::vector<IndexRow> rows) {
    StoredVersion v;
    v.type = type;
    v.id = id;
    v.version = 1;
    v.lastUpdated = when;
    v.op = WriteOp::Create;
    v.json = "{\"resourceType\":\"" + type + "\",\"id\":\"" + id + "\",\"meta\":{\"versionId\":\"1\",\"lastUpdated\":\"" +
             when + "\"},\"text\":{\"status\":\"generated\",\"div\":\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\">" +
             filler + "</div>\"}}";
    tx->put(v);
    tx->replaceIndex(type, id, rows);
    if (++n % 2000 == 0) {
      tx->commit();
      tx = store.begin();
      if (n % 100000 == 0) std::fprintf(stderr, "%ld resources\n", n);
    }
  };
  for (int k = 0; k < 200; ++k) {
    put("Practitioner", "pr" + std::to_string(k), {});
    put("Organization", "org" + std::to_string(k), {});
  }
  static const char* kTypes[] = {"Observation", "Encounter", "DiagnosticReport", "MedicationRequest", "Condition"};
  unsigned rnd = 1;
  auto next = [&] { return (rnd = rnd * 1103515245u + 12345u) >> 8; };
  for (int p = 0; p < patients; ++p) {
    const std::string pid = "p" + std::to_string(p);
    put("Patient", pid, {ref("general-practitioner", "Practitioner", "pr" + std::to_string(p % 200))});
    const int count = p == 42 ? 500 : perPatient;
    for (int j = 0; j < count; ++j) {
      const std::string type = kTypes[j % 5];
      std::vector<IndexRow> rows = {ref("subject", "Patient", pid), ref("patient", "Patient", pid)};
      if (type == "Observation") {
        rows.push_back(ref("performer", "Practitioner", "pr" + std::to_string(next() % 200)));
        rows.push_back(ref("encounter", "Encounter", pid + "-" + std::to_string((j / 5) * 5 + 1)));
      } else if (type == "Encounter") {
        rows.push_back(ref("service-provider", "Organization", "org" + std::to_string(next() % 200)));
      } else if (type != "Condition") {
        rows.push_back(ref(type == "DiagnosticReport" ? "performer" : "requester", "Practitioner",
                           "pr" + std::to_string(next() % 200)));
      }
      put(type, pid + "-" + std::to_string(j), rows);
    }
  }
  tx->commit();
  std::fprintf(stderr, "seeded %ld resources\n", n);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s URL seed PATIENTS PER_PATIENT | %s URL run PATIENT_ID [RUNS] [COUNT]\n", argv[0],
                 argv[0]);
    return 2;
  }
  auto world = hearth::test::TestWorld::open(argv[1]);
  const std::string mode = argv[2];
  if (mode == "seed") {
    if (argc < 5) return 2;
    seed(world->raw(), std::stoi(argv[3]), std::stoi(argv[4]));
    return 0;
  }
  const std::string patient = argv[3];
  const int runs = argc > 4 ? std::stoi(argv[4]) : 200;
  const std::string count = argc > 5 ? argv[5] : "1000";
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
    std::printf("%-32s p50 %.2f ms  p99 %.2f ms  (%zu bytes)\n", what, ms[ms.size() / 2],
                ms[std::min(ms.size() - 1, ms.size() * 99 / 100)], bytes);
  };
  time("$everything", [&] {
    return searchimpl::everything(world->store(), model, "Patient", patient, {{"_count", count}}, "http://h/fhir", 20,
                                  1000)
        .size();
  });
  const auto rev = searchimpl::parseIncludeSpec(model, "Observation:subject");
  time("_revinclude Observation:subject", [&] {
    size_t n = 0;
    for (const auto& r :
         searchimpl::resolveIncludes(world->store(), nullptr, model, {{"Patient", patient, ""}}, {}, {rev}, 1000))
      n += r.json.size();
    return n;
  });
  return 0;
}
