// Store micro-benchmark (not part of ctest): per-commit and per-read latency of a ResourceStore,
// and for comparison the same read through Poco::Data's statement API.
//
//   store_bench URL [SYNCHRONOUS=FULL] [WRITES=2000] [READS=200000] [WRITERS=1] [WAL_RESTART_KB]
//
// URL as for openStore (sqlite:/tmp/bench.db or postgresql://...). The database should be empty
// (ids bench-0..WRITES-1 are created). Resource size ~2 KB. With WRITERS > 1, that many threads
// submit the creates through a GroupCommitter (groups of up to 64, as the server does on SQLite)
// and each create's latency is the submitter's wait. READS=0 skips the read measurements.
// WAL_RESTART_KB sets StoreOptions::sqliteWalRestartKb (default: the store's default).
//
//   store_bench --index URL [SYNCHRONOUS=FULL] [RESOURCES=5000] [ROWS=15] [GROUP=64] [PHASES=cspud]
//
// Search index maintenance, RESOURCES writes per phase, GROUP writes per transaction (as
// GroupCommitter batches them), each write being current + put + replaceIndex with ROWS index rows
// of mixed kinds (ROWS=0: no replaceIndex call, the baseline). Phases, in this order:
//   c create; s update with the same rows (what a reindex does); p update changing 2 rows (a
//   typical PUT); u update changing every row; d delete.
// PHASES picks some (all but c need the resources to exist, from this run or an earlier one on the
// same database). Prints the time of replaceIndex per resource and of the whole write per
// resource including its share of the commit.
#include <Poco/Data/PostgreSQL/Connector.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <Poco/Data/Statement.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <time.h>

#include "hearth/fhir/group_commit.h"
#include "hearth/fhir/search_index.h"
#include "hearth/fhir/store.h"
#include "store_common.h"

using namespace hearth::fhir;
using Clock = std::chrono::steady_clock;

namespace {

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

// CPU time of the calling thread in microseconds: on a machine shared with other work it shows what
// an operation costs apart from the time the thread spent waiting for a core.
double threadCpuMicros() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

std::string resource(const std::string& id) {
  std::string json =
      R"({"resourceType":"Patient","id":")" + id +
      R"(","meta":{"versionId":"1","lastUpdated":"2024-01-01T00:00:00.000Z"},"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">)";
  while (json.size() < 1900) json += "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ";
  json += R"(</div>"},"name":[{"family":"Bench","given":["Mark"]}],"gender":"unknown"})";
  return json;
}

void report(const char* what, std::vector<double>& samples) {
  std::sort(samples.begin(), samples.end());
  double sum = 0;
  for (double s : samples) sum += s;
  std::printf("%-34s n=%-7zu mean=%9.1f us  p50=%9.1f us  p99=%9.1f us  p99.9=%9.1f us  max=%9.1f us\n",
              what, samples.size(), sum / samples.size(), samples[samples.size() / 2],
              samples[samples.size() * 99 / 100], samples[samples.size() * 999 / 1000], samples.back());
}

StoredVersion newPatient(int i) {
  StoredVersion v;
  v.type = "Patient";
  v.id = "bench-" + std::to_string(i);
  v.version = 1;
  v.lastUpdated = "2024-01-01T00:00:00.000Z";
  v.json = resource(v.id);
  return v;
}

// Size of the file at path in bytes, -1 if absent.
long long fileSize(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? static_cast<long long>(st.st_size) : -1;
}

// ROWS index rows of a Patient-like resource, mixing the kinds roughly as real resources do
// (strings and tokens most). `tag` varies the values between versions.
std::vector<IndexRow> indexRows(int i, int rows, const std::string& tag) {
  std::vector<IndexRow> out;
  const std::string n = std::to_string(i);
  for (int k = 0; static_cast<int>(out.size()) < rows; ++k) {
    IndexRow r;
    switch (k % 15) {
      case 0: case 1: case 2: case 3:
        r.kind = IndexKind::String;
        r.param = k % 15 == 0 ? "family" : k % 15 == 1 ? "given" : "address-city";
        r.text = "name" + tag + n + "x" + std::to_string(k);
        r.exact = "Name" + tag + n + "X" + std::to_string(k);
        break;
      case 4: case 5: case 6: case 7: case 8:
        r.kind = IndexKind::Token;
        r.param = k % 15 == 4 ? "identifier" : k % 15 == 5 ? "gender" : "telecom";
        r.system = "urn:oid:1.2.36.146.595.217.0.1";
        r.code = tag + n + "-" + std::to_string(k);
        break;
      case 9: case 10:
        r.kind = IndexKind::Date;
        r.param = "birthdate";
        r.lo = 1704067200000000 + i * 1000000LL;
        r.hi = r.lo + 86399999999;
        break;
      case 11:
        r.kind = IndexKind::Number;
        r.param = "probability";
        r.value = i * 0.5;
        break;
      case 12:
        r.kind = IndexKind::Quantity;
        r.param = "value-quantity";
        r.system = "http://unitsofmeasure.org";
        r.code = r.unit = "mg/dL";
        r.value = i * 0.25;
        break;
      case 13:
        r.kind = IndexKind::Reference;
        r.param = "general-practitioner";
        r.refType = "Practitioner";
        r.refId = "dr-" + tag + std::to_string(i % 100);
        r.url = "Practitioner/" + r.refId;
        break;
      default:
        r.kind = IndexKind::Uri;
        r.param = "url";
        r.text = "http://example.org/fhir/" + tag + n;
        break;
    }
    out.push_back(std::move(r));
  }
  return out;
}

int indexBench(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s --index URL [SYNCHRONOUS] [RESOURCES] [ROWS] [GROUP]\n", argv[0]);
    return 2;
  }
  StoreOptions options;
  options.url = argv[2];
  options.sqliteSynchronous = argc > 3 ? argv[3] : "FULL";
  const int resources = argc > 4 ? std::max(1, std::atoi(argv[4])) : 5000;
  const int rowsPer = argc > 5 ? std::max(0, std::atoi(argv[5])) : 15;
  const int group = argc > 6 ? std::max(1, std::atoi(argv[6])) : 64;
  const std::string phases = argc > 7 ? argv[7] : "cspud";
  options.poolMin = 2;
  options.poolMax = 8;
  try {
    auto store = openStore(options);
    std::printf("backend=%s synchronous=%s resources=%d rows=%d group=%d\n", store->backendName().c_str(),
                options.sqliteSynchronous.c_str(), resources, rowsPer, group);
    const std::string json = resource("bench");
    for (const char* phase : {"create", "same rows", "partial update", "update", "delete"}) {
      const char letter = std::string(phase) == "same rows" ? 's' : phase[0];
      if (phases.find(letter) == std::string::npos) continue;
      const bool deleting = letter == 'd';
      // Rows: the create's everywhere but in the last two of a partial update, all new in an update.
      std::vector<std::vector<IndexRow>> rows(static_cast<size_t>(resources));
      for (int i = 0; i < resources && !deleting; ++i) {
        auto& r = rows[static_cast<size_t>(i)];
        r = indexRows(i, rowsPer, letter == 'u' ? "u" : "c");
        if (letter == 'p') {
          for (size_t k = r.size() >= 2 ? r.size() - 2 : 0; k < r.size(); ++k) r[k] = indexRows(i, rowsPer, "p")[k];
        }
      }
      std::vector<double> indexUs, putUs;
      double indexCpuUs = 0;
      auto p0 = Clock::now();
      for (int start = 0; start < resources; start += group) {
        auto tx = store->begin();
        for (int i = start; i < std::min(resources, start + group); ++i) {
          StoredVersion v;
          v.type = "Patient";
          v.id = "idx-" + std::to_string(i);
          v.lastUpdated = "2024-01-01T00:00:00.000Z";
          v.deleted = deleting;
          if (!deleting) v.json = json;
          auto t0 = Clock::now();
          auto cur = tx->current(v.type, v.id);
          v.version = cur ? cur->version + 1 : 1;
          v.op = deleting ? WriteOp::Delete : v.version == 1 ? WriteOp::Create : WriteOp::Update;
          tx->put(v);
          auto t1 = Clock::now();
          const double c1 = threadCpuMicros();
          if (rowsPer > 0) tx->replaceIndex(v.type, v.id, rows[static_cast<size_t>(i)]);
          indexCpuUs += threadCpuMicros() - c1;
          auto t2 = Clock::now();
          putUs.push_back(micros(t1 - t0));
          indexUs.push_back(micros(t2 - t1));
        }
        tx->commit();
      }
      const double totalUs = micros(Clock::now() - p0);
      std::printf("%s:\n", phase);
      report("  current+put", putUs);
      if (rowsPer > 0) {
        report("  replaceIndex", indexUs);
        std::printf("  replaceIndex thread CPU time: mean %.1f us\n", indexCpuUs / resources);
      }
      std::printf("  whole write incl. commit share: %.1f us/resource (%.0f resources/s)\n", totalUs / resources,
                  resources / (totalUs / 1e6));
    }
    if (options.url.rfind("sqlite:", 0) == 0) {
      const std::string path = storeimpl::sqlitePathFromUrl(options.url);
      std::printf("database %.1f MB, WAL %.1f MB\n", fileSize(path) / 1e6, fileSize(path + "-wal") / 1e6);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "store_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--index") return indexBench(argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s URL [SYNCHRONOUS] [WRITES] [READS]\n", argv[0]);
    return 2;
  }
  StoreOptions options;
  options.url = argv[1];
  options.sqliteSynchronous = argc > 2 ? argv[2] : "FULL";
  const int writes = argc > 3 ? std::atoi(argv[3]) : 2000;
  const int reads = argc > 4 ? std::atoi(argv[4]) : 200000;
  const int writers = argc > 5 ? std::max(1, std::atoi(argv[5])) : 1;
  if (argc > 6) options.sqliteWalRestartKb = std::atoi(argv[6]);
  options.poolMin = 2;
  options.poolMax = 8;
  try {
    auto store = openStore(options);
    std::printf("backend=%s synchronous=%s\n", store->backendName().c_str(),
                options.sqliteSynchronous.c_str());

    std::vector<double> commit;
    auto w0 = Clock::now();
    if (writers == 1) {
      for (int i = 0; i < writes; ++i) {
        auto t0 = Clock::now();
        auto tx = store->begin();
        StoredVersion v = newPatient(i);
        auto cur = tx->current(v.type, v.id);
        v.version = cur ? cur->version + 1 : 1;
        tx->put(v);
        tx->commit();
        commit.push_back(micros(Clock::now() - t0));
      }
      report("create (begin+current+put+commit)", commit);
    } else {
      GroupCommitter committer(*store, 64);
      std::atomic<int> next{0};
      std::vector<std::vector<double>> perThread(writers);
      std::vector<std::thread> threads;
      for (int t = 0; t < writers; ++t) {
        threads.emplace_back([&, t] {
          for (int i; (i = next++) < writes;) {
            StoredVersion v = newPatient(i);
            auto t0 = Clock::now();
            committer.run([&](StoreTransaction& tx) {
              auto cur = tx.current(v.type, v.id);
              v.version = cur ? cur->version + 1 : 1;
              tx.put(v);
            });
            perThread[t].push_back(micros(Clock::now() - t0));
          }
        });
      }
      for (auto& th : threads) th.join();
      for (auto& p : perThread) commit.insert(commit.end(), p.begin(), p.end());
      std::printf("%d writers through GroupCommitter(64)\n", writers);
      report("create (group commit)", commit);
    }
    std::printf("  %.0f creates/s", writes / (micros(Clock::now() - w0) / 1e6));
    if (options.url.rfind("sqlite:", 0) == 0) {
      const std::string path = storeimpl::sqlitePathFromUrl(options.url);
      std::printf("; database %.1f MB, WAL %.1f MB", fileSize(path) / 1e6, fileSize(path + "-wal") / 1e6);
    }
    std::printf("\n");
    if (reads <= 0) return 0;

    std::mt19937 rng(7);
    std::vector<std::string> ids;
    for (int i = 0; i < reads; ++i) ids.push_back("bench-" + std::to_string(rng() % writes));
    std::vector<double> readUs;
    size_t bytes = 0;
    auto t0 = Clock::now();
    for (const auto& id : ids) {
      auto r0 = Clock::now();
      auto v = store->read("Patient", id);
      readUs.push_back(micros(Clock::now() - r0));
      bytes += v->json.size();
    }
    auto total = Clock::now() - t0;
    report("read()", readUs);
    std::printf("  avg resource %zu bytes; %.0f reads/s single thread\n", bytes / ids.size(),
                ids.size() / (micros(total) / 1e6));

    std::vector<double> vreadUs;
    for (size_t i = 0; i < ids.size() / 4; ++i) {
      auto r0 = Clock::now();
      auto v = store->vread("Patient", ids[i], 1);
      vreadUs.push_back(micros(Clock::now() - r0));
    }
    report("vread()", vreadUs);

    std::vector<double> histUs;
    for (int i = 0; i < 200; ++i) {
      HistoryQuery q;
      q.count = 50;
      auto r0 = Clock::now();
      auto page = store->history(q);
      histUs.push_back(micros(Clock::now() - r0));
    }
    report("history(system, 50)", histUs);

    // Throughput with two reader threads (the machine's core count).
    {
      std::atomic<size_t> next{0};
      auto worker = [&] {
        for (size_t i; (i = next++) < ids.size();) store->read("Patient", ids[i]);
      };
      auto p0 = Clock::now();
      std::thread a(worker), b(worker);
      a.join();
      b.join();
      std::printf("read() x2 threads: %.0f reads/s\n", ids.size() / (micros(Clock::now() - p0) / 1e6));
    }

    // Baseline: the same read through Poco::Data's statement API on a session of its own.
    {
      Poco::Data::SQLite::Connector::registerConnector();
      Poco::Data::PostgreSQL::Connector::registerConnector();
      const bool sqlite = options.url.rfind("sqlite:", 0) == 0;
      Poco::Data::Session session =
          sqlite ? Poco::Data::Session("sqlite", storeimpl::sqlitePathFromUrl(options.url))
                 : Poco::Data::Session("postgresql", storeimpl::postgresConnectionString(options.url));
      const std::string sql =
          sqlite ? "SELECT v.version, v.last_updated, v.deleted, v.seq, v.content FROM resource_current c "
                   "JOIN resource_version v ON v.seq = c.seq WHERE c.type = ? AND c.id = ?"
                 : "SELECT v.version, v.last_updated, v.deleted::int, v.seq, encode(v.content, 'escape') "
                   "FROM resource_current c JOIN resource_version v ON v.seq = c.seq WHERE c.type = $1 AND "
                   "c.id = $2";
      std::vector<double> pocoUs;
      const size_t n = sqlite ? ids.size() / 4 : std::min<size_t>(ids.size(), 5000);
      for (size_t i = 0; i < n; ++i) {
        std::string type = "Patient", id = ids[i], lastUpdated, json;
        Poco::Int64 version = 0, seq = 0;
        int deleted = 0;
        auto r0 = Clock::now();
        session << sql, Poco::Data::Keywords::use(type), Poco::Data::Keywords::use(id),
            Poco::Data::Keywords::into(version), Poco::Data::Keywords::into(lastUpdated),
            Poco::Data::Keywords::into(deleted), Poco::Data::Keywords::into(seq),
            Poco::Data::Keywords::into(json), Poco::Data::Keywords::now;
        pocoUs.push_back(micros(Clock::now() - r0));
      }
      report("same read via Poco::Data Statement", pocoUs);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "store_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
