#include "hearth/workflows/registration.h"

#include <rapidjson/document.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdio>
#include <set>
#include <stdexcept>
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

// Copies a JSON resource through a Writer (numbers verbatim: the reader hands them over as raw
// text) and adds `element` (a JSON object) to its top-level "identifier" array, creating the array
// when there is none.
class IdentifierAppender {
 public:
  IdentifierAppender(rapidjson::Writer<rapidjson::StringBuffer>& w, std::string element) : w_(w), element_(std::move(element)) {}
  bool Null() { return w_.Null(); }
  bool Bool(bool b) { return w_.Bool(b); }
  bool Int(int i) { return w_.Int(i); }
  bool Uint(unsigned u) { return w_.Uint(u); }
  bool Int64(int64_t i) { return w_.Int64(i); }
  bool Uint64(uint64_t u) { return w_.Uint64(u); }
  bool Double(double d) { return w_.Double(d); }
  // Writer::RawNumber would quote the text: write it as a raw value instead.
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) { return w_.RawValue(s, n, rapidjson::kNumberType); }
  bool String(const char* s, rapidjson::SizeType n, bool copy) {
    nextIsIdentifier_ = false;
    return w_.String(s, n, copy);
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) {
    nextIsIdentifier_ = depth_ == 1 && std::string_view(s, n) == "identifier";
    return w_.Key(s, n, copy);
  }
  bool StartObject() {
    ++depth_;
    nextIsIdentifier_ = false;
    return w_.StartObject();
  }
  bool EndObject(rapidjson::SizeType n) {
    if (depth_-- == 1 && !done_) {  // the resource had no identifier array: add one
      done_ = true;
      w_.Key("identifier");
      w_.StartArray();
      w_.RawValue(element_.data(), element_.size(), rapidjson::kObjectType);
      w_.EndArray();
    }
    return w_.EndObject(n);
  }
  bool StartArray() {
    ++depth_;
    if (nextIsIdentifier_) identifierDepth_ = depth_;
    nextIsIdentifier_ = false;
    return w_.StartArray();
  }
  bool EndArray(rapidjson::SizeType n) {
    if (depth_-- == identifierDepth_ && !done_) {
      done_ = true;
      w_.RawValue(element_.data(), element_.size(), rapidjson::kObjectType);
    }
    return w_.EndArray(n);
  }

 private:
  rapidjson::Writer<rapidjson::StringBuffer>& w_;
  std::string element_;
  int depth_ = 0, identifierDepth_ = -1;
  bool nextIsIdentifier_ = false, done_ = false;
};

std::string withIdentifier(const std::string& body, const std::string& element) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  IdentifierAppender h(w, element);
  rapidjson::Reader reader;
  rapidjson::MemoryStream ms(body.data(), body.size());
  if (!reader.Parse<rapidjson::kParseNumbersAsStringsFlag>(ms, h)) {
    throw FhirError(400, IssueType::Structure, "Malformed JSON resource");
  }
  return std::string(buf.GetString(), buf.GetSize());
}

// Values of the identifiers of `system` (an identifier of that system without a value counts too:
// "" in the list).
std::vector<std::string> identifiersOf(const rapidjson::Value& p, const std::string& system) {
  std::vector<std::string> out;
  if (const rapidjson::Value* ids = member(p, "identifier"); ids && ids->IsArray()) {
    for (const auto& id : ids->GetArray())
      if (str(id, "system") == system) out.emplace_back(str(id, "value"));
  }
  return out;
}

// The MRN of the live Patient/id as stored, or "".
std::string storedMrn(fhir::StoreTransaction& tx, std::string_view id, const std::string& system) {
  const SqlQuery q{"SELECT v.content FROM resource_current c JOIN resource_version v ON v.seq = c.seq "
                   "WHERE c.type = 'Patient' AND c.id = ? AND NOT c.deleted",
                   {std::string(id)}};
  for (const SqlRow& r : tx.query(q)) {
    for (const std::string& v : identifiersOf(fhir::parseJson(text(r[0])), system))
      if (!v.empty()) return v;
  }
  return {};
}

// Another live Patient (not `selfId`) holding the identifier system|value, or "".
std::string holderOf(fhir::StoreTransaction& tx, const std::string& system, const std::string& value,
                     std::string_view selfId) {
  const SqlQuery q{"SELECT id FROM search_token WHERE type = 'Patient' AND param = 'identifier' AND code = ? "
                   "AND system = ? AND id <> ? LIMIT 1",
                   {value, system, std::string(selfId)}};
  for (const SqlRow& r : tx.query(q)) return text(r[0]);
  return {};
}

// The next number of counter `name` (1, 2, ...): one row per counter, incremented in `tx`, so a
// number is taken when tx commits and the row lock (PostgreSQL) or the writer lock (SQLite)
// orders concurrent takers.
int64_t nextCounterValue(fhir::StoreTransaction& tx, const std::string& name) {
  const SqlQuery bump{"UPDATE registration_counter SET last_value = last_value + 1 WHERE name = ?", {name}};
  if (tx.execute(bump) == 0) {
    tx.execute({"INSERT INTO registration_counter (name, last_value) VALUES (?, 0) ON CONFLICT (name) DO NOTHING",
                {name}});
    tx.execute(bump);
  }
  for (const SqlRow& r : tx.query({"SELECT last_value FROM registration_counter WHERE name = ?", {name}})) {
    return integer(r[0]);
  }
  throw fhir::StoreUnavailable("registration counter row missing");
}

std::string mrnElement(const MrnOptions& o, const std::string& value) {
  return R"({"use":"usual","type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}],"text":"Medical record number"},"system":)" +
         jsonString(o.system) + R"(,"value":)" + jsonString(value) + "}";
}

bool assignMrn(fhir::StoreTransaction& tx, const MrnOptions& o, std::string_view id, bool isNew, std::string& body) {
  const rapidjson::Document doc = fhir::parseJson(body);
  const std::vector<std::string> sent = identifiersOf(doc, o.system);
  const std::string stored = isNew ? std::string() : storedMrn(tx, id, o.system);
  if (!sent.empty()) {
    if (!stored.empty()) {
      if (sent.size() == 1 && sent[0] == stored) return false;
      throw FhirError(422, IssueType::BusinessRule,
                      "Patient/" + std::string(id) + " has the medical record number " + stored +
                          " (system " + o.system + "), which the server assigned and which cannot be changed",
                      "Patient.identifier");
    }
    if (!o.acceptClientMrn) {
      throw FhirError(422, IssueType::BusinessRule,
                      "Identifiers of the system " + o.system +
                          " (the hospital medical record number) are assigned by the server; leave them out",
                      "Patient.identifier");
    }
    if (sent.size() != 1 || sent[0].empty()) {
      throw FhirError(422, IssueType::BusinessRule, "A Patient has exactly one medical record number (system " + o.system + ")",
                      "Patient.identifier");
    }
    tx.lockKey("mrn:" + o.system + "|" + sent[0]);
    if (const std::string other = holderOf(tx, o.system, sent[0], id); !other.empty()) {
      throw FhirError(409, IssueType::Duplicate,
                      "The medical record number " + sent[0] + " belongs to Patient/" + other, "Patient.identifier");
    }
    return false;
  }
  std::string mrn = stored;
  if (mrn.empty()) {
    // A number some Patient already holds (one accepted from a legacy register) is skipped.
    do {
      mrn = formatMrn(o.format, nextCounterValue(tx, "mrn|" + o.system));
    } while (!holderOf(tx, o.system, mrn, id).empty());
  }
  body = withIdentifier(body, mrnElement(o, mrn));
  return true;
}

// Offset and width of the {0...0} placeholder; throws std::invalid_argument.
std::pair<size_t, size_t> placeholder(const std::string& format) {
  const size_t open = format.find('{');
  const size_t close = open == std::string::npos ? open : format.find('}', open);
  if (close == std::string::npos || format.find('{', open + 1) != std::string::npos ||
      format.find('}', close + 1) != std::string::npos) {
    throw std::invalid_argument("the MRN format needs exactly one {000000} placeholder");
  }
  const size_t width = close - open - 1;
  if (width < 1 || width > 18 || format.find_first_not_of('0', open + 1) != close) {
    throw std::invalid_argument("the MRN placeholder is 1 to 18 zeros, e.g. {000000}");
  }
  return {open, width};
}

}  // namespace

void checkMrnFormat(const std::string& format) { placeholder(format); }

std::string formatMrn(const std::string& format, int64_t number) {
  const auto [open, width] = placeholder(format);
  std::string digits = std::to_string(number);
  if (digits.size() < width) digits.insert(0, width - digits.size(), '0');
  return format.substr(0, open) + digits + format.substr(open + width + 2);
}

void installMrnAssignment(fhir::ResourceService& service, MrnOptions options) {
  checkMrnFormat(options.format);
  service.addWriteTransform([options](fhir::StoreTransaction& tx, std::string_view type, std::string_view id, bool isNew,
                                      std::string& body) {
    return type == "Patient" && assignMrn(tx, options, id, isNew, body);
  });
}

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
