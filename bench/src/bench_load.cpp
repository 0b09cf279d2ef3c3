// hearth-bench-load: benchmark data tool.
//
//   hearth-bench-load generate --count N [--seed S] --out FILE
//       Writes N synthetic Patient resources (no id), one compact JSON per line (NDJSON).
//   hearth-bench-load load --url http://127.0.0.1:PORT/fhir --count N [--seed S]
//                          [--connections C] [--ids-out FILE] [--max-errors E] [--deadline SECONDS]
//       POSTs N synthetic Patients over C keep-alive connections (Prefer: return=minimal), takes each
//       server-assigned id from the Location header (body id as fallback), writes the ids one per
//       line in creation-index order, and prints one JSON summary line on stdout:
//       {"requested":..,"created":..,"failed":..,"seconds":..,"creates_per_sec":..,
//        "avg_body_bytes":..,"statuses":{"201":..}}
//       Exit status 0 when every create got 201, 2 when some failed, 1 on usage/setup errors.
//
// The loader refuses any host other than loopback: it is a load generator, and this project's rule is
// that load only ever goes to the local machine.
#include "synthetic_patient.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using hearth::bench::syntheticPatient;

struct Options {
  std::string command;
  std::string url;
  std::string out;
  std::string idsOut;
  std::uint64_t count = 0;
  std::uint64_t seed = 1;
  unsigned connections = 8;
  std::uint64_t maxErrors = 50;
  double deadlineSeconds = 900;
};

[[noreturn]] void usage(const std::string& message) {
  std::cerr << "hearth-bench-load: " << message << "\n"
            << "usage: hearth-bench-load generate --count N [--seed S] --out FILE\n"
            << "       hearth-bench-load load --url http://127.0.0.1:PORT/fhir --count N [--seed S]\n"
            << "                              [--connections C] [--ids-out FILE] [--max-errors E]\n"
            << "                              [--deadline SECONDS]\n";
  std::exit(1);
}

std::uint64_t parseCount(const std::string& flag, const std::string& value) {
  try {
    std::size_t used = 0;
    const unsigned long long v = std::stoull(value, &used);
    if (used == value.size()) return v;
  } catch (const std::exception&) {
  }
  usage("bad number for " + flag + ": " + value);
}

Options parseOptions(int argc, char** argv) {
  if (argc < 2) usage("missing command");
  Options o;
  o.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) usage("missing value for " + flag);
    const std::string value = argv[++i];
    if (flag == "--url") o.url = value;
    else if (flag == "--out") o.out = value;
    else if (flag == "--ids-out") o.idsOut = value;
    else if (flag == "--count") o.count = parseCount(flag, value);
    else if (flag == "--seed") o.seed = parseCount(flag, value);
    else if (flag == "--connections") o.connections = static_cast<unsigned>(parseCount(flag, value));
    else if (flag == "--max-errors") o.maxErrors = parseCount(flag, value);
    else if (flag == "--deadline") o.deadlineSeconds = static_cast<double>(parseCount(flag, value));
    else usage("unknown option " + flag);
  }
  if (o.command != "generate" && o.command != "load") usage("unknown command " + o.command);
  if (o.count == 0) usage("--count must be > 0");
  if (o.connections == 0 || o.connections > 256) usage("--connections must be 1..256");
  return o;
}

int generate(const Options& o) {
  if (o.out.empty()) usage("generate needs --out");
  std::ofstream out(o.out, std::ios::binary | std::ios::trunc);
  if (!out) {
    std::cerr << "hearth-bench-load: cannot write " << o.out << "\n";
    return 1;
  }
  for (std::uint64_t i = 0; i < o.count; ++i) out << syntheticPatient(o.seed, i) << '\n';
  out.close();
  return out ? 0 : 1;
}

// The id from `.../Patient/{id}/_history/{vid}` or `.../Patient/{id}`; empty if absent.
std::string idFromLocation(const std::string& location) {
  static const std::string marker = "/Patient/";
  const auto at = location.rfind(marker);
  if (at == std::string::npos) return {};
  const auto start = at + marker.size();
  const auto end = location.find_first_of("/?", start);
  return location.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// Fallback when a server sends no Location: the first top-level "id" in a compact or pretty body.
std::string idFromBody(const std::string& body) {
  const auto key = body.find("\"id\"");
  if (key == std::string::npos) return {};
  const auto open = body.find('"', body.find(':', key));
  if (open == std::string::npos) return {};
  const auto close = body.find('"', open + 1);
  if (close == std::string::npos) return {};
  return body.substr(open + 1, close - open - 1);
}

// Shared state of one load. Work is handed out by `next`; each index is created by exactly one
// thread, which alone writes ids[index], so the id vector needs no lock. Counters merge under `mu`.
struct LoadState {
  std::atomic<std::uint64_t> next{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> bodyBytes{0};
  std::atomic<bool> stop{false};
  std::vector<std::string> ids;
  std::mutex mu;
  std::map<std::string, std::uint64_t> statuses;  // "201", or "exception" for transport failures
  unsigned reportedFailures = 0;
};

void reportFailure(LoadState& st, const Options& o, std::uint64_t index, const std::string& what) {
  const auto failed = ++st.failed;
  std::lock_guard<std::mutex> lock(st.mu);
  if (st.reportedFailures < 5) {
    ++st.reportedFailures;
    std::cerr << "hearth-bench-load: create #" << index << " failed: " << what << "\n";
  }
  if (failed >= o.maxErrors && !st.stop.exchange(true))
    std::cerr << "hearth-bench-load: " << failed << " failures, giving up\n";
}

void loadWorker(LoadState& st, const Options& o, const Poco::URI& base,
                std::chrono::steady_clock::time_point deadline) {
  Poco::Net::HTTPClientSession session(base.getHost(), base.getPort());
  session.setKeepAlive(true);
  session.setTimeout(Poco::Timespan(30, 0));
  const std::string path = base.getPath() + "/Patient";
  std::map<std::string, std::uint64_t> statuses;
  while (!st.stop.load(std::memory_order_relaxed)) {
    const std::uint64_t index = st.next.fetch_add(1);
    if (index >= o.count) break;
    if (std::chrono::steady_clock::now() > deadline) {
      if (!st.stop.exchange(true)) std::cerr << "hearth-bench-load: deadline reached, stopping\n";
      break;
    }
    const std::string body = syntheticPatient(o.seed, index);
    st.bodyBytes += body.size();
    try {
      Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_POST, path,
                                     Poco::Net::HTTPMessage::HTTP_1_1);
      request.setKeepAlive(true);
      request.setContentType("application/fhir+json");
      request.set("Accept", "application/fhir+json");
      request.set("Prefer", "return=minimal");
      request.setContentLength(static_cast<std::streamsize>(body.size()));
      session.sendRequest(request) << body;
      Poco::Net::HTTPResponse response;
      std::istream& in = session.receiveResponse(response);
      std::string responseBody;
      Poco::StreamCopier::copyToString(in, responseBody);
      const int status = static_cast<int>(response.getStatus());
      ++statuses[std::to_string(status)];
      if (status != 201) {
        reportFailure(st, o, index,
                      "HTTP " + std::to_string(status) + " " + responseBody.substr(0, 400));
        continue;
      }
      std::string id = idFromLocation(response.get("Location", ""));
      if (id.empty()) id = idFromBody(responseBody);
      if (id.empty()) {
        reportFailure(st, o, index, "201 without Location header or body id");
        continue;
      }
      st.ids[index] = std::move(id);
    } catch (const Poco::Exception& e) {
      ++statuses["exception"];
      reportFailure(st, o, index, e.displayText());
      session.reset();  // reconnect on the next request; the create is not retried (not idempotent)
    }
  }
  std::lock_guard<std::mutex> lock(st.mu);
  for (const auto& [k, v] : statuses) st.statuses[k] += v;
}

int load(const Options& o) {
  if (o.url.empty()) usage("load needs --url");
  Poco::URI base;
  try {
    base = Poco::URI(o.url);
  } catch (const Poco::Exception& e) {
    usage("bad --url: " + e.displayText());
  }
  const std::string host = base.getHost();
  if (base.getScheme() != "http" ||
      !(host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0))
    usage("--url must be http:// on loopback (127.0.0.0/8, localhost, ::1)");
  std::string path = base.getPath();
  while (!path.empty() && path.back() == '/') path.pop_back();
  base.setPath(path);

  LoadState st;
  st.ids.resize(o.count);
  const auto start = std::chrono::steady_clock::now();
  const auto deadline =
      start + std::chrono::milliseconds(static_cast<long long>(o.deadlineSeconds * 1000));
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < o.connections; ++i)
    threads.emplace_back(loadWorker, std::ref(st), std::cref(o), std::cref(base), deadline);
  for (auto& t : threads) t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::uint64_t created = 0;
  std::ofstream idsOut;
  if (!o.idsOut.empty()) {
    idsOut.open(o.idsOut, std::ios::trunc);
    if (!idsOut) {
      std::cerr << "hearth-bench-load: cannot write " << o.idsOut << "\n";
      return 1;
    }
  }
  for (const auto& id : st.ids) {
    if (id.empty()) continue;
    ++created;
    if (idsOut.is_open()) idsOut << id << '\n';
  }
  if (idsOut.is_open()) idsOut.close();

  const std::uint64_t attempted = std::min<std::uint64_t>(st.next.load(), o.count);
  std::string statuses;
  for (const auto& [k, v] : st.statuses) {
    if (!statuses.empty()) statuses += ',';
    statuses += '"';
    statuses += k;
    statuses += "\":";
    statuses += std::to_string(v);
  }
  std::printf(
      "{\"requested\":%llu,\"attempted\":%llu,\"created\":%llu,\"failed\":%llu,\"seconds\":%.3f,"
      "\"creates_per_sec\":%.1f,\"avg_body_bytes\":%.0f,\"connections\":%u,\"statuses\":{%s}}\n",
      static_cast<unsigned long long>(o.count), static_cast<unsigned long long>(attempted),
      static_cast<unsigned long long>(created), static_cast<unsigned long long>(st.failed.load()),
      seconds, seconds > 0 ? static_cast<double>(created) / seconds : 0.0,
      attempted ? static_cast<double>(st.bodyBytes.load()) / static_cast<double>(attempted) : 0.0,
      o.connections, statuses.c_str());
  return created == o.count ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parseOptions(argc, argv);
  try {
    return o.command == "generate" ? generate(o) : load(o);
  } catch (const std::exception& e) {
    std::cerr << "hearth-bench-load: " << e.what() << "\n";
    return 1;
  }
}
