// Helper of the durability test: opens the store at argv[1], commits versions 1..N of
// Patient/argv[2] one transaction each, reports "committed <n>" on stdout after each commit and
// then sleeps until it is killed. The test kills it with SIGKILL and checks every reported commit
// survived.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "hearth/fhir/store.h"

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s URL ID COUNT SYNCHRONOUS\n", argv[0]);
    return 2;
  }
  hearth::fhir::StoreOptions options;
  options.url = argv[1];
  options.sqliteSynchronous = argv[4];
  options.poolMin = 1;
  options.poolMax = 2;
  try {
    auto store = hearth::fhir::openStore(options);
    const int count = std::atoi(argv[3]);
    for (int n = 1; n <= count; ++n) {
      auto tx = store->begin();
      hearth::fhir::StoredVersion v;
      v.type = "Patient";
      v.id = argv[2];
      v.version = n;
      v.lastUpdated = "2024-03-01T10:00:00.000Z";
      v.json = R"({"resourceType":"Patient","id":")" + v.id + R"(","meta":{"versionId":")" +
               std::to_string(n) + R"("}})";
      tx->put(v);
      tx->commit();
      std::printf("committed %d\n", n);
      std::fflush(stdout);
    }
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "store_crash_child: %s\n", e.what());
    return 1;
  }
}
