// SearchEngine (search.h): parses a search (search_query.cpp), runs one SQL query per page
// (search_sql.cpp) through the store, and assembles the searchset Bundle from the stored bytes.
//
// Paging is keyset paging: the next link carries an opaque _cursor with the sort values, type and
// id of the page's last row, and the next page starts strictly after that position. A resource
// that existed when the walk began and whose sort values do not change is therefore seen exactly
// once, whatever is inserted, updated or deleted meanwhile. There is no `previous` link (a keyset
// cursor only walks forward); `first` restarts the walk.
//
// Bundle.total: given when the client asks (_total=accurate; _total=estimate is answered with the
// same exact count), with _summary=count and _count=0 (total only), and on a first page that holds
// every match (the count is then known for free). Otherwise (more pages, _total absent or none)
// it is left out rather than computed.
#include "hearth/fhir/search.h"

#include <algorithm>

#include "hearth/fhir/bundle.h"
#include "hearth/fhir/service.h"
#include "search_query.h"
#include "search_results.h"

namespace hearth::fhir {

namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string formDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      const int hi = i + 1 < s.size() ? hexValue(s[i + 1]) : -1;
      const int lo = i + 2 < s.size() ? hexValue(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        throw FhirError(400, IssueType::Invalid, "Malformed percent-encoding in the search parameters");
      }
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Runs a read query; store failures become 503 (details for the log only).
std::vector<SqlRow> runQuery(ResourceStore& store, StoreTransaction* tx, const SqlQuery& q) {
  try {
    return tx ? tx->query(q) : store.query(q);
  } catch (const StoreUnavailable& e) {
    throw FhirError(503, IssueType::Transient, "The database is unavailable; try again later")
        .withInternalDetail(std::string("search query failed: ") + e.what());
  }
}

std::string textColumn(const SqlValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  return {};
}

std::string linkUrl(const SearchRequest& req, const SearchParams& params, const std::string& cursor) {
  std::string url = req.baseUrl;
  if (!req.linkPath.empty()) {
    url += '/';
    url += req.linkPath;
  }
  std::string query;
  for (const auto& [k, v] : params) {
    if (!query.empty()) query += '&';
    query += searchq::encodeQueryComponent(k);
    query += '=';
    query += searchq::encodeQueryComponent(v);
  }
  if (!cursor.empty()) {
    if (!query.empty()) query += '&';
    query += "_cursor=" + cursor;
  }
  if (!query.empty()) url += "?" + query;
  return url;
}

}  // namespace

const std::vector<std::string>& patientCompartmentParams(std::string_view resourceType) {
  return searchimpl::compartmentParams("Patient", resourceType);
}

SearchParams parseSearchQuery(std::string_view query) {
  SearchParams out;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    std::string name = formDecode(part.substr(0, eq));
    std::string value = eq == std::string_view::npos ? std::string() : formDecode(part.substr(eq + 1));
    out.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

struct SearchEngine::Impl {
  explicit Impl(ResourceService& s) : service(s) {}
  ResourceService& service;
};

SearchEngine::SearchEngine(ResourceService& service) : impl_(std::make_unique<Impl>(service)) {}
SearchEngine::~SearchEngine() = default;

std::string SearchEngine::search(const SearchRequest& req) {
  ResourceService& service = impl_->service;
  const Model& model = service.model();
  ResourceStore& store = service.store();

  searchq::ParseOptions opt;
  if (!req.compartmentType.empty()) {
    service.checkType(req.compartmentType);
    ResourceService::checkId(req.compartmentId);
    if (req.type != "*") service.checkType(req.type);
    opt.types = {req.type};
    opt.compartmentType = req.compartmentType;
    opt.compartmentId = req.compartmentId;
  } else if (req.type.empty()) {
    opt.systemLevel = true;
  } else {
    service.checkType(req.type);
    opt.types = {req.type};
  }
  opt.strict = req.strict;
  opt.baseUrl = req.baseUrl;
  opt.defaultCount = std::max(1, req.defaultCount);
  opt.maxCount = std::max(1, req.maxCount);
  const searchq::ParsedSearch s = searchq::parseSearch(model, req.params, opt);

  const SqlDialect dialect = store.dialect();
  const bool countOnly = s.summary == "count" || s.count == 0;
  int64_t total = -1;
  if (countOnly || s.total == "accurate" || s.total == "estimate") {
    const auto rows = runQuery(store, nullptr, searchq::buildCountQuery(s, dialect));
    if (!rows.empty() && !rows[0].empty()) {
      if (const auto* n = std::get_if<int64_t>(&rows[0][0])) total = *n;
    }
  }

  BundleBuilder bundle("searchset");
  std::vector<searchimpl::FetchedResource> matches;
  std::string nextCursor;
  if (!countOnly) {
    std::vector<SqlRow> rows = runQuery(store, nullptr, searchq::buildPageQuery(s, dialect));
    const bool more = rows.size() > static_cast<size_t>(s.count);
    if (more) {
      rows.resize(static_cast<size_t>(s.count));
      const SqlRow& last = rows.back();
      searchq::Cursor c;
      c.type = textColumn(last.at(0));
      c.id = textColumn(last.at(1));
      for (size_t k = 0; k < s.sort.size(); ++k) c.keys.push_back(last.at(3 + k));
      nextCursor = searchq::encodeCursor(c, s.fingerprint);
    } else if (!s.cursor && total < 0 && s.total != "none") {
      total = static_cast<int64_t>(rows.size());  // the first page holds every match
    }
    matches.reserve(rows.size());
    for (SqlRow& row : rows) {
      matches.push_back(searchimpl::FetchedResource{textColumn(row.at(0)), textColumn(row.at(1)),
                                                    textColumn(row.at(2))});
    }
  }
  if (total >= 0) bundle.setTotal(total);

  std::string currentCursor;
  for (const auto& [k, v] : req.params)
    if (k == "_cursor") currentCursor = searchq::encodeQueryComponent(v);
  bundle.addLink("self", linkUrl(req, s.linkParams, currentCursor));
  if (!countOnly) {
    bundle.addLink("first", linkUrl(req, s.linkParams, ""));
    if (!nextCursor.empty()) bundle.addLink("next", linkUrl(req, s.linkParams, nextCursor));
  }

  const bool subset = (!s.summary.empty() && s.summary != "false") || !s.elements.empty();
  auto body = [&](const searchimpl::FetchedResource& r) {
    return subset ? searchimpl::applySummary(model, r.type, r.json, s.summary, s.elements) : r.json;
  };
  for (const auto& r : matches) {
    bundle.addSearchEntry(req.baseUrl + "/" + r.type + "/" + r.id, body(r), "match");
  }
  if (!matches.empty() && (!s.includes.empty() || !s.revincludes.empty())) {
    const size_t limit = static_cast<size_t>(std::max(opt.maxCount, 100));
    for (const auto& r :
         searchimpl::resolveIncludes(store, nullptr, model, matches, s.includes, s.revincludes, limit)) {
      bundle.addSearchEntry(req.baseUrl + "/" + r.type + "/" + r.id, body(r), "include");
    }
  }
  if (!s.warnings.empty()) bundle.addSearchEntry("", operationOutcomeJson(s.warnings), "outcome");
  return bundle.finish();
}

std::string SearchEngine::everything(std::string_view type, std::string_view id, const SearchParams& params,
                                     const std::string& baseUrl) {
  impl_->service.checkType(type);
  ResourceService::checkId(id);
  return searchimpl::everything(impl_->service.store(), impl_->service.model(), type, id, params, baseUrl, 50, 1000);
}

std::vector<std::string> SearchEngine::matchIds(std::string_view type, std::string_view criteria, StoreTransaction* tx,
                                                int limit) {
  ResourceService& service = impl_->service;
  service.checkType(type);
  const SearchParams params = parseSearchQuery(criteria);
  if (params.empty()) {
    throw FhirError(400, IssueType::Required, "Conditional operations need search criteria, e.g. identifier=system|value");
  }
  searchq::ParseOptions opt;
  opt.types = {std::string(type)};
  opt.strict = true;
  opt.criteriaOnly = true;
  const searchq::ParsedSearch s = searchq::parseSearch(service.model(), params, opt);
  ResourceStore& store = service.store();
  limit = std::max(1, limit);
  const int cap = limit + 16;
  if (const auto fast = searchq::buildMatchIdsFastQuery(s, store.dialect(), cap)) {
    const auto rows = runQuery(store, tx, *fast);
    if (rows.size() < static_cast<size_t>(cap)) {  // every matching index row seen
      std::vector<std::string> ids;
      ids.reserve(rows.size());
      for (const SqlRow& row : rows) ids.push_back(textColumn(row.at(0)));
      std::sort(ids.begin(), ids.end());
      ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
      if (ids.size() > static_cast<size_t>(limit)) ids.resize(static_cast<size_t>(limit));
      return ids;
    }
  }
  const auto rows = runQuery(store, tx, searchq::buildMatchIdsQuery(s, store.dialect(), limit));
  std::vector<std::string> ids;
  ids.reserve(rows.size());
  for (const SqlRow& row : rows) ids.push_back(textColumn(row.at(0)));
  return ids;
}

std::string SearchEngine::applySummary(std::string_view type, std::string_view resourceJson, std::string_view summary,
                                       std::string_view elements) const {
  if (summary.empty() && elements.empty()) return std::string(resourceJson);
  return searchimpl::applySummary(impl_->service.model(), type, resourceJson, summary, elements);
}

}  // namespace hearth::fhir
