#include "access_control.h"

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <map>
#include <set>

#include "hearth/fhir/error.h"
#include "hearth/fhir/json.h"
#include "hearth/fhir/search.h"
#include "hearth/fhir/search_index.h"
#include "token_cache.h"

namespace hearth::server {

using auth::AccessContext;
using auth::Interaction;
using fhir::FhirError;
using fhir::IssueType;

namespace {

constexpr unsigned kWrites = auth::kCreate | auth::kUpdate | auth::kDelete;

// Splits a JSON document at depth 1: the raw text (compact, numbers verbatim) of each member of
// a top-level object or each element of a top-level array.
class DepthOneSplitter : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, DepthOneSplitter> {
 public:
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w{buf};
  int depth = 0;
  bool topObject = false;
  std::vector<std::pair<std::string, std::pair<size_t, size_t>>> parts;  // name, [begin, end)
  std::string pendingName;
  size_t start = 0;

  void begin() {
    if (depth == 1) {
      start = buf.GetSize();
      if (!topObject) parts.push_back({std::string(), {start, 0}});
    }
  }
  void end() {
    if (depth == 1) {
      if (topObject) parts.push_back({pendingName, {start, buf.GetSize()}});
      else parts.back().second.second = buf.GetSize();
    }
  }
  template <class F>
  bool scalar(F&& f) {
    begin();
    bool ok = f();
    end();
    return ok;
  }
  bool Null() { return scalar([&] { return w.Null(); }); }
  bool Bool(bool b) { return scalar([&] { return w.Bool(b); }); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    return scalar([&] { return w.RawValue(s, n, rapidjson::kNumberType); });
  }
  bool String(const char* s, rapidjson::SizeType n, bool) { return scalar([&] { return w.String(s, n); }); }
  bool StartObject() {
    if (depth == 0) topObject = true;
    begin();
    ++depth;
    return w.StartObject();
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    if (depth == 1) pendingName.assign(s, n);
    bool ok = w.Key(s, n);
    if (depth == 1) start = buf.GetSize();
    return ok;
  }
  bool EndObject(rapidjson::SizeType n) {
    --depth;
    bool ok = w.EndObject(n);
    end();
    return ok;
  }
  bool StartArray() {
    if (depth == 0) topObject = false;
    begin();
    ++depth;
    return w.StartArray();
  }
  bool EndArray(rapidjson::SizeType n) {
    --depth;
    bool ok = w.EndArray(n);
    end();
    return ok;
  }
};

bool split(std::string_view json, DepthOneSplitter& h) {
  rapidjson::Reader reader;
  rapidjson::MemoryStream ms(json.data(), json.size());
  constexpr unsigned kFlags = rapidjson::kParseValidateEncodingFlag | rapidjson::kParseNumbersAsStringsFlag |
                              rapidjson::kParseIterativeFlag;
  return static_cast<bool>(reader.Parse<kFlags>(ms, h));
}

std::string rawSlice(const DepthOneSplitter& h, std::pair<size_t, size_t> r) {
  std::string_view all(h.buf.GetString(), h.buf.GetSize());
  std::string_view s = all.substr(r.first, r.second - r.first);
  // The writer's separators: ',' before an array element, ':' before a member's value.
  if (!s.empty() && (s.front() == ',' || s.front() == ':')) s.remove_prefix(1);
  return std::string(s);
}

std::string objectFrom(const std::vector<std::pair<std::string, std::string>>& members) {
  std::string out = "{";
  for (const auto& [k, v] : members) {
    if (out.size() > 1) out += ',';
    out += '"';
    fhir::appendJsonEscaped(out, k);
    out += "\":";
    out += v;
  }
  out += '}';
  return out;
}

std::string stringMember(const rapidjson::Value& v, const char* name) {
  if (!v.IsObject()) return {};
  auto it = v.FindMember(name);
  return it != v.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString(), it->value.GetStringLength())
                                                     : std::string();
}

std::vector<std::string> splitCommas(const std::string& v) {
  std::vector<std::string> out;
  size_t b = 0;
  while (true) {
    size_t c = v.find(',', b);
    out.push_back(v.substr(b, c == std::string::npos ? std::string::npos : c - b));
    if (c == std::string::npos) break;
    b = c + 1;
  }
  return out;
}

bool rowMatches(const fhir::IndexRow& row, const std::string& value) {
  using fhir::IndexKind;
  switch (row.kind) {
    case IndexKind::Token: {
      const size_t bar = value.find('|');
      if (bar == std::string::npos) return row.code == value;
      const std::string sys = value.substr(0, bar), code = value.substr(bar + 1);
      if (code.empty()) return row.system == sys;
      return row.system == sys && row.code == code;
    }
    case IndexKind::Reference: {
      if (row.url == value) return true;
      const size_t slash = value.find('/');
      if (slash == std::string::npos) return row.refId == value;
      return row.refType == value.substr(0, slash) && row.refId == value.substr(slash + 1);
    }
    case IndexKind::String: return row.text.starts_with(fhir::normalizeSearchString(value));
    case IndexKind::Uri: return row.text == value;
    default: return false;
  }
}

}  // namespace

std::vector<std::pair<std::string, std::string>> jsonMembers(std::string_view objectJson) {
  DepthOneSplitter h;
  if (!split(objectJson, h) || !h.topObject) return {};
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, range] : h.parts) out.emplace_back(name, rawSlice(h, range));
  return out;
}

std::vector<std::string> jsonElements(std::string_view arrayJson) {
  DepthOneSplitter h;
  if (!split(arrayJson, h) || h.topObject) return {};
  std::vector<std::string> out;
  for (const auto& part : h.parts) out.push_back(rawSlice(h, part.second));
  return out;
}

AccessControl::AccessControl(const auth::RoleCatalog* roles, const fhir::ResourceService& service, bool protectAudit)
    : roles_(roles), service_(service), protectAudit_(protectAudit) {}

std::optional<Grant> AccessControl::check(const AccessContext& who, std::string_view type, Interaction interaction,
                                          const auth::QueryParams& params, std::string* why, const Identity* memo) const {
  if (memo && params.empty()) {
    const std::pair<std::string, unsigned> key{std::string(type), static_cast<unsigned>(interaction)};
    {
      std::lock_guard lk(memo->mu);
      auto it = memo->decisions.find(key);
      if (it != memo->decisions.end()) {
        if (!it->second.grant) {
          if (why) *why = it->second.reason;
          return std::nullopt;
        }
        return *it->second.grant;
      }
    }
    std::string reason;
    auto g = check(who, type, interaction, params, &reason, nullptr);
    Identity::Memo m;
    if (g) m.grant = std::make_shared<const Grant>(*g);
    else m.reason = reason;
    {
      std::lock_guard lk(memo->mu);
      if (memo->decisions.size() < 1000) memo->decisions.emplace(key, std::move(m));
    }
    if (!g && why) *why = std::move(reason);
    return g;
  }
  auto deny = [&](std::string reason) -> std::optional<Grant> {
    if (why) *why = std::move(reason);
    return std::nullopt;
  };
  const unsigned bit = static_cast<unsigned>(interaction);
  // Immutable types (AuditEvent): with the audit trail on, nobody changes them through the API,
  // whatever the context (User/Backend: also refused by authorize() below).
  const bool immutable = roles_ ? roles_->immutableTypes().count(std::string(type)) > 0 : type == "AuditEvent";
  if (protectAudit_ && immutable && (bit & kWrites)) return deny(std::string(type) + " cannot be changed through the API");
  Grant g;
  if (who.kind == AccessContext::Kind::Open) {
    g.unrestricted = true;
    return g;
  }
  if (who.kind == AccessContext::Kind::Service) {
    if ((bit & kWrites) && !who.serviceWrite) return deny("This token may read but not write");
    g.unrestricted = true;
    return g;
  }
  if (!roles_) return deny("no role definitions are loaded");
  auth::Decision d = auth::authorize(*roles_, who.principal(), type, interaction, params);
  if (!d.allowed) return deny(d.reason);
  g.patient = std::move(d.compartmentPatient);
  g.filters = std::move(d.requiredFilters);
  g.unrestricted = !g.restricted();
  return g;
}

Grant AccessControl::require(const AccessContext& who, std::string_view type, Interaction interaction,
                             const auth::QueryParams& params, const Identity* memo) const {
  std::string why;
  auto g = check(who, type, interaction, params, &why, memo);
  if (!g) throw FhirError(403, IssueType::Forbidden, "Access denied: " + why);
  return *g;
}

bool AccessControl::sharedType(std::string_view type) {
  // Directory, catalogue and definition resources: no patient data, needed to display a record.
  static const std::set<std::string, std::less<>> kShared = {
      "Practitioner", "PractitionerRole", "Organization", "OrganizationAffiliation", "Location",
      "HealthcareService", "Endpoint", "Medication", "MedicationKnowledge", "Substance",
      "ValueSet", "CodeSystem", "ConceptMap", "NamingSystem", "StructureDefinition", "SearchParameter",
      "OperationDefinition", "CapabilityStatement", "Questionnaire", "PlanDefinition", "ActivityDefinition",
      "Library", "ObservationDefinition", "SpecimenDefinition", "ChargeItemDefinition"};
  return kShared.count(type) > 0;
}

bool AccessControl::confinable(std::string_view type) {
  return type == "Patient" || sharedType(type) || !fhir::patientCompartmentParams(type).empty();
}

std::vector<std::string> AccessControl::compartmentPatients(std::string_view type, const rapidjson::Value& resource) const {
  std::vector<std::string> out;
  if (type == "Patient") {
    std::string id = stringMember(resource, "id");
    if (!id.empty()) out.push_back(std::move(id));
    return out;
  }
  const auto& params = fhir::patientCompartmentParams(type);
  if (params.empty() || !resource.IsObject()) return out;
  for (const fhir::IndexRow& row : service_.indexer().extract(type, resource)) {
    if (row.kind != fhir::IndexKind::Reference || row.refType != "Patient" || row.refId.empty()) continue;
    if (std::find(params.begin(), params.end(), row.param) == params.end()) continue;
    if (std::find(out.begin(), out.end(), row.refId) == out.end()) out.push_back(row.refId);
  }
  return out;
}

bool AccessControl::inPatientCompartment(std::string_view type, const rapidjson::Value& resource,
                                         std::string_view patientId) const {
  if (patientId.empty() || !resource.IsObject()) return false;
  if (type == "Patient" && stringMember(resource, "id") == patientId) return true;
  const auto ids = compartmentPatients(type, resource);
  return std::find(ids.begin(), ids.end(), patientId) != ids.end();
}

bool AccessControl::matchesFilter(std::string_view type, const rapidjson::Value& resource,
                                  const auth::QueryParams& filter) const {
  if (!resource.IsObject()) return false;
  const auto rows = service_.indexer().extract(type, resource);
  for (const auto& [name, value] : filter) {
    const auto values = splitCommas(value);
    bool any = false;
    for (const fhir::IndexRow& row : rows) {
      if (!fhir::rowOfParam(type, name, row.param, row.refType)) continue;
      for (const auto& v : values)
        if (rowMatches(row, v)) any = true;
      if (any) break;
    }
    if (!any) return false;
  }
  return true;
}

bool AccessControl::satisfies(const Grant& g, std::string_view type, const rapidjson::Value& resource) const {
  if (g.patient && !sharedType(type) && !inPatientCompartment(type, resource, *g.patient)) return false;
  if (!g.filters.empty()) {
    return std::any_of(g.filters.begin(), g.filters.end(),
                       [&](const auth::QueryParams& f) { return matchesFilter(type, resource, f); });
  }
  return true;
}

bool AccessControl::satisfies(const Grant& g, std::string_view type, std::string_view resourceJson) const {
  if (!g.restricted()) return true;
  try {
    rapidjson::Document doc = fhir::parseJson(resourceJson);
    return satisfies(g, type, doc);
  } catch (const std::exception&) {
    return false;
  }
}

bool AccessControl::visible(const AccessContext& who, std::string_view type, const rapidjson::Value& resource,
                            Interaction interaction) const {
  if (who.unrestricted()) return true;
  auto g = check(who, type, interaction);
  return g && satisfies(*g, type, resource);
}

std::string AccessControl::filterBundle(const AccessContext& who, std::string_view bundleJson, bool* removed,
                                       Interaction entryInteraction) const {
  if (removed) *removed = false;
  if (who.unrestricted()) return std::string(bundleJson);
  return filterBundleImpl(who, bundleJson, removed, entryInteraction, 0);
}

std::string AccessControl::filterBundleImpl(const AccessContext& who, std::string_view bundleJson, bool* removed,
                                            Interaction entryInteraction, int depth) const {
  auto members = jsonMembers(bundleJson);
  if (members.empty()) return std::string(bundleJson);
  std::string bundleType;
  for (const auto& [k, v] : members)
    if (k == "type" && v.size() >= 2) bundleType = v.substr(1, v.size() - 2);
  const bool responseBundle = bundleType == "batch-response" || bundleType == "transaction-response";
  const Interaction interaction = responseBundle ? auth::kRead : entryInteraction;
  bool removedMatch = false;
  std::map<std::string, std::optional<Grant>, std::less<>> grants;  // per type, for this bundle
  for (auto& [k, v] : members) {
    if (k != "entry") continue;
    std::string out = "[";
    for (const std::string& entry : jsonElements(v)) {
      auto em = jsonMembers(entry);
      auto res = std::find_if(em.begin(), em.end(), [](const auto& m) { return m.first == "resource"; });
      bool keep = true;
      if (res != em.end()) {
        rapidjson::Document doc;
        try {
          doc = fhir::parseJson(res->second);
        } catch (const std::exception&) {
          keep = false;
        }
        const std::string type = keep ? stringMember(doc, "resourceType") : std::string();
        if (keep && responseBundle && type == "Bundle" && depth < 2) {
          // A search or history answered inside a batch: filter it as such.
          res->second = filterBundleImpl(who, res->second, nullptr, auth::kSearch, depth + 1);
        } else if (keep) {
          auto it = grants.find(type);
          if (it == grants.end()) it = grants.emplace(type, check(who, type, interaction)).first;
          keep = it->second && satisfies(*it->second, type, doc);
        }
      }
      if (!keep) {
        if (responseBundle) {
          // One answer per request entry: this one becomes a refusal.
          std::string oo = fhir::operationOutcomeJson(fhir::Severity::Error, IssueType::Forbidden,
                                                      "Access denied: outside what this token may see");
          std::string repl = "{\"response\":{\"status\":\"403 Forbidden\",\"outcome\":" + oo + "}}";
          if (out.size() > 1) out += ',';
          out += repl;
        }
        std::string mode;
        for (const auto& [ek, ev] : em)
          if (ek == "search") mode = ev;
        if (mode.find("\"include\"") == std::string::npos) removedMatch = true;
        if (removed) *removed = true;
        continue;
      }
      if (out.size() > 1) out += ',';
      out += objectFrom(em);
    }
    out += ']';
    v = std::move(out);
  }
  if (removedMatch) {
    members.erase(std::remove_if(members.begin(), members.end(), [](const auto& m) { return m.first == "total"; }),
                  members.end());
  }
  return objectFrom(members);
}

}  // namespace hearth::server
