#include "hearth/workflows/registration.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdio>
#include <set>
#include <vector>

#include "workflow_support.h"
#include "hearth/fhir/error.h"
#include "hearth/fhir/json.h"
#include "hearth/fhir/search_index.h"
#include "hearth/fhir/store.h"

namespace hearth::workflows {

namespace {

using namespace detail;

using fhir::FhirError;
using fhir::IssueType;
using fhir::SqlQuery;
using fhir::SqlRow;
using fhir::SqlValue;


// The fields matching looks at, normalised.
struct Demographics {
  std::set<std::pair<std::string, std::string>> identifiers;  // (system, value)
  std::set<std::string> families, givens, phones, emails;
  std::string birthDate, gender;
};

Demographics demographicsOf(const rapidjson::Value& p) {
  Demographics d;
  if (p.HasMember("identifier") && p["identifier"].IsArray()) {
    for (const auto& id : p["identifier"].GetArray()) {
      if (!str(id, "value").empty()) d.identifiers.emplace(std::string(str(id, "system")), std::string(str(id, "value")));
    }
  }
  if (p.HasMember("name") && p["name"].IsArray()) {
    for (const auto& n : p["name"].GetArray()) {
      if (!str(n, "family").empty()) d.families.insert(fhir::normalizeSearchString(str(n, "family")));
      if (n.IsObject() && n.HasMember("given") && n["given"].IsArray()) {
        for (const auto& g : n["given"].GetArray())
          if (g.IsString()) d.givens.insert(fhir::normalizeSearchString(g.GetString()));
      }
    }
  }
  if (p.HasMember("telecom") && p["telecom"].IsArray()) {
    for (const auto& t : p["telecom"].GetArray()) {
      std::string value(str(t, "value"));
      if (value.empty()) continue;
      if (str(t, "system") == "phone") {
        value.erase(std::remove_if(value.begin(), value.end(), [](char c) { return c == ' ' || c == '-' || c == '(' || c == ')'; }),
                    value.end());
        d.phones.insert(value);
      } else if (str(t, "system") == "email") {
        d.emails.insert(fhir::normalizeSearchString(value));
      }
    }
  }
  d.birthDate = std::string(str(p, "birthDate"));
  d.gender = std::string(str(p, "gender"));
  return d;
}

template <class T>
bool intersects(const std::set<T>& a, const std::set<T>& b) {
  for (const auto& x : a)
    if (b.count(x)) return true;
  return false;
}

double score(const Demographics& want, const Demographics& got) {
  if (intersects(want.identifiers, got.identifiers)) return 1.0;
  double s = 0;
  if (intersects(want.families, got.families)) {
    s += 0.3;
    if (intersects(want.givens, got.givens)) s += 0.2;
  }
  if (!want.birthDate.empty() && want.birthDate == got.birthDate) s += 0.3;
  if (intersects(want.phones, got.phones) || intersects(want.emails, got.emails)) s += 0.15;
  if (!want.gender.empty() && !got.gender.empty()) s += want.gender == got.gender ? 0.05 : -0.2;
  return std::min(s, 0.99);
}

const char* grade(double s) {
  if (s >= 1.0) return "certain";
  if (s >= 0.8) return "probable";
  if (s >= 0.5) return "possible";
  return nullptr;
}

// Ids of live Patients sharing an identifier, family name + birth date, phone or email with d.
// `tx` when given (inside a write), else the store.
std::set<std::string> candidates(fhir::ResourceService& service, fhir::StoreTransaction* tx, const Demographics& d) {
  auto run = [&](const SqlQuery& q) { return tx ? tx->query(q) : service.store().query(q); };
  std::set<std::string> ids;
  auto add = [&](const std::vector<SqlRow>& rows) {
    for (const SqlRow& r : rows)
      if (ids.size() < 200) ids.insert(text(r[0]));
  };
  for (const auto& [system, value] : d.identifiers) {
    add(run({"SELECT id FROM search_token WHERE type = 'Patient' AND param = 'identifier' AND code = ? AND system = ? LIMIT 50",
             {value, system}}));
  }
  int64_t lo = 0, hi = 0;
  if (!d.birthDate.empty() && fhir::fhirDateRange(d.birthDate, lo, hi)) {
    for (const std::string& family : d.families) {
      add(run({"SELECT s.id FROM search_string s JOIN search_date b ON b.type = s.type AND b.id = s.id "
               "AND b.param = 'birthdate' WHERE s.type = 'Patient' AND s.param = 'family' AND s.text = ? "
               "AND b.lo = ? AND b.hi = ? LIMIT 50",
               {family, lo, hi}}));
    }
  }
  for (const std::string& phone : d.phones) {
    add(run({"SELECT id FROM search_token WHERE type = 'Patient' AND param = 'phone' AND code = ? LIMIT 50", {phone}}));
  }
  for (const std::string& email : d.emails) {
    add(run({"SELECT id FROM search_token WHERE type = 'Patient' AND param = 'email' AND lower(code) = ? LIMIT 50",
             {email}}));
  }
  return ids;
}

std::vector<std::pair<std::string, std::string>> contentOf(fhir::ResourceService& service, fhir::StoreTransaction* tx,
                                                           const std::set<std::string>& ids) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& id : ids) {
    const SqlQuery q{"SELECT c.id, v.content FROM resource_current c JOIN resource_version v ON v.seq = c.seq "
                     "WHERE c.type = 'Patient' AND c.id = ? AND NOT c.deleted",
                     {id}};
    for (const SqlRow& r : tx ? tx->query(q) : service.store().query(q)) out.emplace_back(text(r[0]), text(r[1]));
  }
  return out;
}

}  // namespace

std::string patientMatch(fhir::ResourceService& service, const std::string& parametersJson, const std::string& baseUrl) {
  const rapidjson::Document params = fhir::parseJson(parametersJson);
  if (str(params, "resourceType") != "Parameters") {
    throw FhirError(400, IssueType::Invalid, "$match takes a Parameters resource", "Parameters");
  }
  const rapidjson::Value* patient = nullptr;
  bool onlyCertain = false;
  int count = 10;
  if (params.HasMember("parameter") && params["parameter"].IsArray()) {
    for (const auto& p : params["parameter"].GetArray()) {
      const std::string_view name = str(p, "name");
      if (name == "resource" && p.HasMember("resource")) patient = &p["resource"];
      if (name == "onlyCertainMatches" && p.HasMember("valueBoolean") && p["valueBoolean"].IsBool()) {
        onlyCertain = p["valueBoolean"].GetBool();
      }
      if (name == "count" && p.HasMember("valueInteger") && p["valueInteger"].IsInt()) {
        count = std::clamp(p["valueInteger"].GetInt(), 1, 100);
      }
    }
  }
  if (!patient || str(*patient, "resourceType") != "Patient") {
    throw FhirError(400, IssueType::Required, "$match needs a Patient in the parameter 'resource'",
                    "Parameters.parameter");
  }
  const Demographics want = demographicsOf(*patient);
  std::vector<std::tuple<double, std::string, std::string>> scored;  // score, id, content
  for (const auto& [id, content] : contentOf(service, nullptr, candidates(service, nullptr, want))) {
    const rapidjson::Document doc = fhir::parseJson(content);
    const double s = score(want, demographicsOf(doc));
    if (!grade(s) || (onlyCertain && s < 1.0)) continue;
    scored.emplace_back(s, id, content);
  }
  std::sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) {
    return std::get<0>(a) != std::get<0>(b) ? std::get<0>(a) > std::get<0>(b) : std::get<1>(a) < std::get<1>(b);
  });
  if (scored.size() > static_cast<size_t>(count)) scored.resize(static_cast<size_t>(count));

  std::string out = R"({"resourceType":"Bundle","type":"searchset","total":)" + std::to_string(scored.size()) +
                    R"(,"entry":[)";
  for (size_t i = 0; i < scored.size(); ++i) {
    const auto& [s, id, content] = scored[i];
    char scoreText[16];
    std::snprintf(scoreText, sizeof scoreText, "%.2f", s);
    if (i) out += ',';
    out += R"({"fullUrl":")" + baseUrl + "/Patient/" + id + R"(","resource":)" + content +
           R"(,"search":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/match-grade","valueCode":")" +
           grade(s) + R"("}],"mode":"match","score":)" + scoreText + "}}";
  }
  out += "]}";
  if (scored.empty()) out.replace(out.rfind(R"(,"entry":[])"), 11, "");  // no empty arrays in FHIR JSON
  return out;
}

void installDuplicateCheck(fhir::ResourceService& service) {
  service.addWriteObserver([&service](fhir::StoreTransaction& tx, const fhir::StoredVersion& v) {
    if (v.type != "Patient" || v.deleted || v.version != 1) return;
    const rapidjson::Document doc = fhir::parseJson(v.json);
    const Demographics d = demographicsOf(doc);
    if (d.families.empty() || d.givens.empty() || d.birthDate.empty() || d.phones.empty()) return;
    // Registrations of the same person serialise, so two desks cannot both create them at once.
    tx.lockKey("registration:" + *d.families.begin() + "|" + d.birthDate);
    Demographics byName = d;
    byName.identifiers.clear();
    byName.emails.clear();
    for (const auto& [id, content] : contentOf(service, &tx, candidates(service, &tx, byName))) {
      if (id == v.id) continue;
      const Demographics other = demographicsOf(fhir::parseJson(content));
      if (intersects(d.families, other.families) && intersects(d.givens, other.givens) &&
          d.birthDate == other.birthDate && intersects(d.phones, other.phones)) {
        throw FhirError(409, IssueType::Duplicate,
                        "A patient with the same name, birth date and phone is already registered as Patient/" + id +
                            "; update that record, or use Patient/$match to review candidates",
                        "Patient");
      }
    }
  });
}

}  // namespace hearth::workflows
