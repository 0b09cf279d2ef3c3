#include "hearth/adapters/v2_to_fhir.h"

#include <set>

#include "context.h"
#include "mappers.h"

namespace hearth::adapters {

namespace {

const std::set<std::pair<std::string_view, std::string_view>>& supportedEvents() {
  static const std::set<std::pair<std::string_view, std::string_view>> k{
      {"ADT", "A01"}, {"ADT", "A03"}, {"ADT", "A04"}, {"ADT", "A08"}, {"ADT", "A28"}, {"ADT", "A31"},
      {"ADT", "A40"}, {"SIU", "S12"}, {"SIU", "S13"}, {"SIU", "S14"}, {"SIU", "S15"}, {"SIU", "S26"},
      {"ORU", "R01"}, {"ORM", "O01"}, {"OML", "O21"}, {"RDE", "O11"}, {"DFT", "P03"},
  };
  return k;
}

bool supportedType(std::string_view type) {
  for (const auto& [t, e] : supportedEvents()) {
    if (t == type) return true;
  }
  return false;
}

}  // namespace

bool MappingResult::unsupported() const {
  for (const hl7::AckError& e : errors) {
    if (e.hl7Code == 200 || e.hl7Code == 201) return true;
  }
  return false;
}

bool supports(std::string_view type, std::string_view trigger) {
  return supportedEvents().count({type, trigger}) > 0;
}

MappingResult mapToFhir(const hl7::Message& msg, const MappingOptions& opts) {
  Ctx c(msg, opts);
  const std::string type = msg.messageType();
  const std::string trigger = msg.triggerEvent();
  if (!supportedType(type)) {
    c.error(200, Loc{"MSH", 1, 9, 0, 1}, "message type " + shortCode(type) + " is not mapped to FHIR");
    return c.finish();
  }
  if (!supports(type, trigger)) {
    c.error(201, Loc{"MSH", 1, 9, 0, 2}, "event " + shortCode(type) + "^" + shortCode(trigger) + " is not mapped to FHIR");
    return c.finish();
  }
  try {
    if (type == "ADT") mapAdt(c, trigger);
    if (type == "SIU") mapSiu(c, trigger);
    if (type == "ORU") mapOru(c);
    if (type == "ORM" || type == "OML") mapServiceOrders(c);
    if (type == "RDE") mapRde(c);
    if (type == "DFT") mapDft(c);
  } catch (const std::exception& e) {
    // The HL7 library's messages name positions only, never values.
    c.error(207, Loc{}, std::string("mapping failed: ") + e.what());
  }
  return c.finish();
}

}  // namespace hearth::adapters
