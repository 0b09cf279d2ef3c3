#include "hearth/fhir/bundle.h"

#include <map>
#include <vector>

#include "hearth/fhir/json.h"
#include "hearth/fhir/model.h"
#include "hearth/fhir/service.h"

namespace hearth::fhir {

namespace {
void appendString(std::string& out, std::string_view key, std::string_view value) {
  out += '"';
  out += key;
  out += "\":\"";
  appendJsonEscaped(out, value);
  out += '"';
}
}  // namespace

BundleBuilder::BundleBuilder(std::string_view bundleType) : type_(bundleType) {}

void BundleBuilder::addLink(std::string_view relation, std::string_view url) {
  if (!links_.empty()) links_ += ',';
  links_ += '{';
  appendString(links_, "relation", relation);
  links_ += ',';
  appendString(links_, "url", url);
  links_ += '}';
}

void BundleBuilder::addHistoryEntry(const StoredVersion& v, std::string_view base) {
  if (!entries_.empty()) entries_ += ',';
  entries_ += '{';
  std::string fullUrl(base);
  fullUrl += '/';
  fullUrl += v.type;
  fullUrl += '/';
  fullUrl += v.id;
  appendString(entries_, "fullUrl", fullUrl);
  if (!v.deleted) {
    entries_ += ",\"resource\":";
    entries_ += v.json;
  }
  // The interaction that made the version, as the server answered it: a create is POST Type,
  // 201; an update is PUT Type/id, 201 when it created version 1 (update-as-create), else 200 (a
  // PUT after a deletion answered 201 too, but the entry alone cannot tell); a delete is
  // DELETE Type/id, 200 as our DELETE answers.
  const char* method = "PUT";
  const char* status = v.version == 1 ? "201 Created" : "200 OK";
  if (v.op == WriteOp::Create) {
    method = "POST";
    status = "201 Created";
  } else if (v.op == WriteOp::Delete) {
    method = "DELETE";
    status = "200 OK";
  }
  entries_ += ",\"request\":{";
  appendString(entries_, "method", method);
  entries_ += ',';
  appendString(entries_, "url", v.op == WriteOp::Create ? v.type : v.type + "/" + v.id);
  entries_ += "},\"response\":{";
  appendString(entries_, "status", status);
  entries_ += ',';
  appendString(entries_, "etag", "W/\"" + std::to_string(v.version) + "\"");
  entries_ += ',';
  appendString(entries_, "lastModified", v.lastUpdated);
  entries_ += "}}";
}

void BundleBuilder::addSearchEntry(std::string_view fullUrl, std::string_view resourceJson,
                                   std::string_view mode) {
  if (!entries_.empty()) entries_ += ',';
  entries_ += '{';
  if (!fullUrl.empty()) {
    appendString(entries_, "fullUrl", fullUrl);
    entries_ += ',';
  }
  entries_ += "\"resource\":";
  entries_ += resourceJson;
  entries_ += ",\"search\":{";
  appendString(entries_, "mode", mode);
  entries_ += "}}";
}

std::string BundleBuilder::finish() {
  std::string out;
  out.reserve(entries_.size() + links_.size() + 256);
  out += "{\"resourceType\":\"Bundle\",";
  appendString(out, "id", newResourceId());
  out += ",\"meta\":{";
  appendString(out, "lastUpdated", nowInstant().text);
  out += "},";
  appendString(out, "type", type_);
  if (total_ >= 0) {
    out += ",\"total\":";
    out += std::to_string(total_);
  }
  if (!links_.empty()) {
    out += ",\"link\":[";
    out += links_;
    out += ']';
  }
  if (!entries_.empty()) {
    out += ",\"entry\":[";
    out += entries_;
    out += ']';
  }
  out += '}';
  return out;
}

namespace {

// Search parameters the engine answers: every indexed kind, plus _id and _lastUpdated; composite
// and special parameters, and the common ones nobody indexes (_text, _content, _query), are not
// listed (search.cpp ignores them with a warning, or refuses them under strict handling).
bool searchable(const SearchParamDef& p) {
  if (p.code == "_id" || p.code == "_lastUpdated") return true;
  if (p.code == "_text" || p.code == "_content" || p.code == "_query" || p.expression.empty()) return false;
  return p.type == "string" || p.type == "token" || p.type == "date" || p.type == "number" || p.type == "quantity" ||
         p.type == "reference" || p.type == "uri";
}

void appendStringArray(std::string& out, std::string_view key, const std::vector<std::string>& values) {
  if (values.empty()) return;
  out += ",\"";
  out += key;
  out += "\":[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += '"';
    appendJsonEscaped(out, values[i]);
    out += '"';
  }
  out += ']';
}

// rest.resource[], the same for every request: built once from the model.
const std::string& capabilityResources() {
  static const std::string resources = [] {
    const Model& model = Model::r4();
    // Who can point at each type: "Source:param" for _revinclude.
    std::map<std::string, std::vector<std::string>> revIncludes;
    for (const std::string& source : model.resourceTypes()) {
      for (const SearchParamDef& p : model.searchParams(source)) {
        if (p.type != "reference" || !searchable(p)) continue;
        for (const std::string& target : p.targets) revIncludes[target].push_back(source + ":" + p.code);
      }
    }
    std::string out;
    bool first = true;
    for (const std::string& type : model.resourceTypes()) {
      if (!first) out += ',';
      first = false;
      out += '{';
      appendString(out, "type", type);
      appendString(out += ',', "profile", "http://hl7.org/fhir/StructureDefinition/" + type);
      out += ",\"interaction\":["
             "{\"code\":\"read\"},{\"code\":\"vread\"},{\"code\":\"update\"},{\"code\":\"patch\"},"
             "{\"code\":\"delete\"},{\"code\":\"history-instance\"},{\"code\":\"history-type\"},"
             "{\"code\":\"create\"},{\"code\":\"search-type\"}],"
             "\"versioning\":\"versioned-update\",\"readHistory\":true,\"updateCreate\":true,"
             "\"conditionalCreate\":true,\"conditionalRead\":\"full-support\","
             "\"conditionalUpdate\":true,\"conditionalDelete\":\"single\"";
      std::vector<std::string> includes;
      std::string params;
      for (const SearchParamDef& p : model.searchParams(type)) {
        if (!searchable(p)) continue;
        if (p.type == "reference") includes.push_back(type + ":" + p.code);
        if (!params.empty()) params += ',';
        params += '{';
        appendString(params, "name", p.code);
        if (!p.url.empty()) appendString(params += ',', "definition", p.url);
        appendString(params += ',', "type", p.type);
        params += '}';
      }
      if (!includes.empty()) includes.push_back("*");
      appendStringArray(out, "searchInclude", includes);
      appendStringArray(out, "searchRevInclude", revIncludes[type]);
      if (!params.empty()) out += ",\"searchParam\":[" + params + "]";
      out += '}';
    }
    return out;
  }();
  return resources;
}

}  // namespace

std::string capabilityStatementJson(std::string_view softwareVersion, std::string_view baseUrl,
                                    std::string_view securityJson) {
  const std::string& resources = capabilityResources();
  std::string out;
  out.reserve(resources.size() + 1024);
  out += "{\"resourceType\":\"CapabilityStatement\",\"id\":\"hearth\",\"status\":\"active\",";
  appendString(out, "date", nowInstant().text.substr(0, 10));
  out += ",\"publisher\":\"Hearth\",\"kind\":\"instance\",\"software\":{\"name\":\"Hearth\",";
  appendString(out, "version", softwareVersion);
  out += "},\"implementation\":{\"description\":\"Hearth FHIR R4 server\",";
  appendString(out, "url", baseUrl);
  out += "},\"fhirVersion\":\"4.0.1\",\"format\":[\"application/fhir+json\",\"json\",\"application/fhir+xml\",\"xml\"],"
         "\"patchFormat\":[\"application/json-patch+json\"],"
         "\"rest\":[{\"mode\":\"server\",";
  if (!securityJson.empty()) {
    out += "\"security\":";
    out += securityJson;
    out += ',';
  }
  out += "\"resource\":[";
  out += resources;
  out += "],\"interaction\":[{\"code\":\"transaction\"},{\"code\":\"batch\"},{\"code\":\"search-system\"},"
         "{\"code\":\"history-system\"}],"
         "\"searchParam\":[{\"name\":\"_id\",\"definition\":\"http://hl7.org/fhir/SearchParameter/Resource-id\","
         "\"type\":\"token\"},{\"name\":\"_lastUpdated\","
         "\"definition\":\"http://hl7.org/fhir/SearchParameter/Resource-lastUpdated\",\"type\":\"date\"}]}]}";
  return out;
}

}  // namespace hearth::fhir
