// Timing of the HL7 library over typical messages (not a test). Prints microseconds per
// message for parse, encode, parse+encode, groups and ACK construction.
//   hl7_bench [iterations]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "hearth/hl7/ack.h"
#include "hearth/hl7/groups.h"
#include "hearth/hl7/types.h"

using namespace hearth::hl7;
using Clock = std::chrono::steady_clock;

namespace {

std::string read(const std::string& name) {
  std::ifstream in(std::string(HL7_CORPUS_DIR) + "/" + name, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

template <class F>
double usPer(int n, F&& f) {
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) f();
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / n;
}

volatile size_t sink;

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 20000;
  std::printf("%-22s %6s %8s %8s %8s %8s %8s %10s\n", "message", "bytes", "parse", "encode", "p+e", "groups", "ack",
              "msg/s p+e");
  for (const char* name : {"adt_a01_v251.hl7", "adt_a04_v23.hl7", "adt_a08_latin1_v24.hl7", "oru_r01_lab_v251.hl7",
                           "siu_s12_v251.hl7", "rde_o11_v25.hl7"}) {
    const std::string in = read(name);
    const Message m = Message::parse(in);
    for (int i = 0; i < n / 10; ++i) sink = Message::parse(in).encode().size();  // warm up
    const double parse = usPer(n, [&] { sink = Message::parse(in).segmentCount(); });
    const double encode = usPer(n, [&] { sink = m.encode().size(); });
    const double both = usPer(n, [&] { sink = Message::parse(in).encode().size(); });
    const double groups = usPer(n, [&] { sink = GroupTree::build(m).root().items().size(); });
    const double ack = usPer(n, [&] { sink = buildAck(m, AckCode::AA).encode().size(); });
    std::printf("%-22s %6zu %8.2f %8.2f %8.2f %8.2f %8.2f %10.0f\n", name, in.size(), parse, encode, both, groups, ack,
                1e6 / both);
  }
  // What the bridge does per inbound ADT besides I/O and the FHIR mapping: parse, group, read the
  // patient with typed readers, build and encode the ACK.
  const std::string adt = read("adt_a01_v251.hl7");
  const double pipeline = usPer(n, [&] {
    const Message m = Message::parse(adt);
    const GroupTree t = GroupTree::build(m);
    const Segment* pid = t.root().segment("PID");
    size_t s = CX::from(pid->field(3)).id.size() + XPN::from(pid->field(5)).family.size() +
               DateTime::from(pid->field(7))->toFhirDate().size() + XAD::from(pid->field(11)).city.size();
    s += buildAck(m, AckCode::AA).encode().size();
    sink = s;
  });
  std::printf("ADT pipeline (parse+groups+readers+ACK): %.2f us/msg = %.0f msg/s on one core\n", pipeline, 1e6 / pipeline);
  return 0;
}
