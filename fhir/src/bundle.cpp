#include "hearth/fhir/bundle.h"

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

std::string capabilityStatementJson(std::string_view softwareVersion, std::string_view baseUrl) {
  std::string out;
  out += "{\"resourceType\":\"CapabilityStatement\",\"id\":\"hearth\",\"status\":\"active\",";
  appendString(out, "date", nowInstant().text.substr(0, 10));
  out += ",\"publisher\":\"Hearth\",\"kind\":\"instance\",\"software\":{\"name\":\"Hearth\",";
  appendString(out, "version", softwareVersion);
  out += "},\"implementation\":{\"description\":\"Hearth FHIR R4 server\",";
  appendString(out, "url", baseUrl);
  out += "},\"fhirVersion\":\"4.0.1\",\"format\":[\"application/fhir+json\",\"json\",\"application/fhir+xml\",\"xml\"],"
         "\"rest\":[{\"mode\":\"server\",\"resource\":[";
  bool first = true;
  for (const std::string& type : Model::r4().resourceTypes()) {
    if (!first) out += ',';
    first = false;
    out += '{';
    appendString(out, "type", type);
    appendString(out += ',', "profile", "http://hl7.org/fhir/StructureDefinition/" + type);
    out += ",\"interaction\":["
           "{\"code\":\"read\"},{\"code\":\"vread\"},{\"code\":\"update\"},{\"code\":\"delete\"},"
           "{\"code\":\"history-instance\"},{\"code\":\"history-type\"},{\"code\":\"create\"}],"
           "\"versioning\":\"versioned-update\",\"readHistory\":true,\"updateCreate\":true,"
           "\"conditionalCreate\":false,\"conditionalRead\":\"not-supported\","
           "\"conditionalUpdate\":false,\"conditionalDelete\":\"not-supported\"}";
  }
  out += "],\"interaction\":[{\"code\":\"history-system\"}]}]}";
  return out;
}

}  // namespace hearth::fhir
