// hearth-hl7-load: MLLP load generator for the HL7 v2 bridge benchmark (bench/hl7_bench.py
// --client native).
//
//   hearth-hl7-load --port P [--kind adt|oru] [--connections C] [--seconds S] [--warmup W]
//
// Each connection sends one message, waits for its ACK, then sends the next (what an interface
// engine does), so one connection measures the round trip of store-before-ACK. Every message is
// distinct (new control id, new patient: MSH-10 and PID-3 from a random run prefix and a counter),
// so every one is mapped and committed. The messages are byte for byte those of hl7_bench.py's
// Python sender; this one exists because the Python sender spends 60-100 µs of CPU per message on
// the same two cores, which then shows up in the server's figures. Prints one JSON line:
// {"kind","connections","msgs","seconds","msgs_per_s","p50_ms","p99_ms","not_aa","client":"native"}.
// Loopback only: this project's rule is that load only ever goes to the local machine.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

std::string adt(const std::string& ctl) {
  return "MSH|^~\\&|REGSYS|NORTHVALE|HEARTH|HEARTH_FAC|20250314083015+0100||ADT^A01^ADT_A01|" + ctl +
         "|P|2.5.1\rEVN|A01|20250314083000+0100\rPID|1||" + ctl +
         "^^^NORTHVALE^MR||Bench^Patient^Q||19790522|F|||12 Harbour Rd^^Northvale^NY^10960\r"
         "PV1|1|I|3W^312^B^NORTHVALE||||||||||||||||V" + ctl + "^^^NORTHVALE^VN\r";
}

std::string oru(const std::string& ctl) {
  std::string m = "MSH|^~\\&|LABSYS|CENTRAL_LAB|HEARTH|NORTHVALE|20250314121530+0100||ORU^R01^ORU_R01|" + ctl +
                  "|P|2.5.1\rPID|1||" + ctl + "^^^NORTHVALE^MR||Bench^Patient||19790522|F\rOBR|1|P" + ctl +
                  "^NORTHVALE|F" + ctl +
                  "^CENTRAL_LAB|24323-8^Panel^LN|||20250314090000+0100|||||||||||||||20250314121500+0100|||F\r";
  char buf[160];
  for (int i = 1; i <= 20; ++i) {
    std::snprintf(buf, sizeof buf, "OBX|%d|NM|%d-%d^Analyte %d^LN||%d.%d|mg/dL^mg/dL^UCUM|1-99|N|||F\r", i, 1000 + i,
                  i % 10, i, 10 + i, i);
    m += buf;
  }
  return m;
}

struct Outcome {
  std::vector<double> latencies;  // seconds, measured messages only
  long notAa = 0;
  bool failed = false;
  std::string error;
};

void sender(int port, bool isAdt, Clock::time_point warmUntil, Clock::time_point deadline, const std::string& prefix,
            int idx, Outcome& out) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    out.failed = true;
    out.error = std::string("connect: ") + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::string frame, buf;
  char rd[65536];
  for (long n = 1;; ++n) {
    const auto start = Clock::now();
    if (start >= deadline) break;
    const std::string ctl = prefix + std::to_string(idx) + "-" + std::to_string(n);
    frame.assign(1, '\x0b');
    frame += isAdt ? adt(ctl) : oru(ctl);
    frame += "\x1c\x0d";
    for (size_t sent = 0; sent < frame.size();) {
      const ssize_t w = ::send(fd, frame.data() + sent, frame.size() - sent, MSG_NOSIGNAL);
      if (w <= 0) {
        out.failed = true;
        out.error = "send failed";
        ::close(fd);
        return;
      }
      sent += static_cast<size_t>(w);
    }
    size_t end;
    while ((end = buf.find("\x1c\x0d")) == std::string::npos) {
      const ssize_t r = ::recv(fd, rd, sizeof rd, 0);
      if (r <= 0) {
        out.failed = true;
        out.error = "connection closed before the ACK";
        ::close(fd);
        return;
      }
      buf.append(rd, static_cast<size_t>(r));
    }
    const auto done = Clock::now();
    const std::string ack = buf.substr(0, end);
    buf.erase(0, end + 2);
    if (ack.find("MSA|AA|") == std::string::npos) ++out.notAa;
    if (start >= warmUntil) out.latencies.push_back(std::chrono::duration<double>(done - start).count());
  }
  ::close(fd);
}

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: hearth-hl7-load --port P [--kind adt|oru] [--connections C] [--seconds S] [--warmup W]\n");
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0, connections = 1;
  double seconds = 10, warmup = 2;
  std::string kind = "adt";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage();
    const std::string v = argv[++i];
    if (a == "--port") port = std::atoi(v.c_str());
    else if (a == "--kind") kind = v;
    else if (a == "--connections") connections = std::atoi(v.c_str());
    else if (a == "--seconds") seconds = std::atof(v.c_str());
    else if (a == "--warmup") warmup = std::atof(v.c_str());
    else usage();
  }
  if (port <= 0 || connections < 1 || seconds <= 0 || warmup < 0 || (kind != "adt" && kind != "oru")) usage();

  std::random_device rd;
  char prefix[16];
  std::snprintf(prefix, sizeof prefix, "%08x", static_cast<unsigned>(rd()));
  const auto t0 = Clock::now();
  const auto warmUntil = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup));
  const auto deadline = warmUntil + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<Outcome> out(static_cast<size_t>(connections));
  std::vector<std::thread> threads;
  for (int i = 0; i < connections; ++i) {
    threads.emplace_back(sender, port, kind == "adt", warmUntil, deadline, std::string(prefix), i,
                         std::ref(out[static_cast<size_t>(i)]));
  }
  for (auto& t : threads) t.join();

  std::vector<double> lat;
  long notAa = 0;
  for (const Outcome& o : out) {
    if (o.failed) {
      std::fprintf(stderr, "hearth-hl7-load: %s\n", o.error.c_str());
      return 2;
    }
    lat.insert(lat.end(), o.latencies.begin(), o.latencies.end());
    notAa += o.notAa;
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {
    if (lat.empty()) return 0.0;
    return lat[std::min(lat.size() - 1, static_cast<size_t>(static_cast<double>(lat.size()) * p))] * 1000;
  };
  std::printf(
      "{\"kind\": \"%s\", \"connections\": %d, \"msgs\": %zu, \"seconds\": %g, \"msgs_per_s\": %.1f, "
      "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"not_aa\": %ld, \"client\": \"native\"}\n",
      kind.c_str(), connections, lat.size(), seconds, static_cast<double>(lat.size()) / seconds, pct(0.5), pct(0.99),
      notAa);
  return notAa == 0 ? 0 : 3;
}
