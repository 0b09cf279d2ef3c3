#include "hearth/fhir/service.h"

#include <array>
#include <chrono>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "hearth/fhir/json.h"

namespace hearth::fhir {

// Cache of the current version of recently used resources, so that a read by id is a hash lookup
// and the stored bytes go out without touching the database.
//
// Coherence: versions only grow, and a deletion is a version, so an entry is replaced only by a
// newer version. A reader that fetched from the store may insert its result only if no writer
// touched the shard since the reader looked (shard epoch), which closes the window where a slow
// reader would re-insert a version older than one a writer just committed and that was evicted
// in between. Writers update the cache after their commit. Eviction is FIFO per shard within a
// byte budget. Locking: one mutex per shard, held for map operations only.
class CurrentVersionCache {
 public:
  explicit CurrentVersionCache(size_t budgetBytes) : shardBudget_(budgetBytes / kShards + 1) {}

  std::shared_ptr<const StoredVersion> get(const std::string& key, uint64_t& epoch) {
    Shard& s = shard(key);
    std::lock_guard lock(s.mu);
    epoch = s.epoch;
    auto it = s.map.find(key);
    return it == s.map.end() ? nullptr : it->second;
  }

  void offer(const std::string& key, std::shared_ptr<const StoredVersion> v, uint64_t epochSeen) {
    Shard& s = shard(key);
    std::lock_guard lock(s.mu);
    if (s.epoch != epochSeen) return;
    insertLocked(s, key, std::move(v));
  }

  void put(const std::string& key, std::shared_ptr<const StoredVersion> v) {
    Shard& s = shard(key);
    std::lock_guard lock(s.mu);
    ++s.epoch;
    insertLocked(s, key, std::move(v));
  }

 private:
  static constexpr size_t kShards = 64;
  struct Shard {
    std::mutex mu;
    uint64_t epoch = 0;
    size_t bytes = 0;
    std::unordered_map<std::string, std::shared_ptr<const StoredVersion>> map;
    std::deque<std::string> order;
  };

  static size_t cost(const StoredVersion& v) { return v.json.size() + v.id.size() + 128; }

  Shard& shard(const std::string& key) { return shards_[std::hash<std::string>{}(key) % kShards]; }

  void insertLocked(Shard& s, const std::string& key, std::shared_ptr<const StoredVersion> v) {
    auto it = s.map.find(key);
    if (it != s.map.end()) {
      if (it->second->version >= v->version) return;
      s.bytes -= cost(*it->second);
      s.bytes += cost(*v);
      it->second = std::move(v);
    } else {
      s.bytes += cost(*v);
      s.map.emplace(key, std::move(v));
      s.order.push_back(key);
    }
    while (s.bytes > shardBudget_ && !s.order.empty()) {
      auto victim = s.map.find(s.order.front());
      if (victim != s.map.end()) {
        s.bytes -= cost(*victim->second);
        s.map.erase(victim);
      }
      s.order.pop_front();
    }
  }

  size_t shardBudget_;
  std::array<Shard, kShards> shards_;
};

namespace {

std::string cacheKey(std::string_view type, std::string_view id) {
  std::string k;
  k.reserve(type.size() + id.size() + 1);
  k.append(type).push_back('/');
  k.append(id);
  return k;
}

std::mt19937_64& rng() {
  thread_local std::mt19937_64 gen([] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(),
                      static_cast<unsigned>(std::hash<std::thread::id>{}(std::this_thread::get_id()))};
    return std::mt19937_64(seq);
  }());
  return gen;
}

// Returns the JSON string value of a top-level member, if present and a string.
const rapidjson::Value* member(const rapidjson::Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

}  // namespace

std::string newResourceId() {
  // RFC 9562 version 7 layout: 48-bit Unix milliseconds, version 7, 12 random bits, variant 10,
  // 62 random bits. Time-ordered, so that new resources land at the right edge of every (type, id)
  // B-tree (resource_current, resource_version and the seven index tables) instead of at a random
  // page each: an insert then touches pages already cached and dirtied. The creation time it
  // reveals is no secret (meta.lastUpdated of version 1 says the same); 74 random bits keep ids
  // unguessable and unique.
  const uint64_t ms = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  const uint64_t a = (ms << 16) | 0x7000u | (rng()() & 0x0FFFu);
  const uint64_t b = (rng()() & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
  static const char* const kHex = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (int i = 0; i < 16; ++i) {
    const uint64_t word = i < 8 ? a : b;
    const unsigned byte = static_cast<unsigned>((word >> ((7 - (i % 8)) * 8)) & 0xFF);
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(kHex[byte >> 4]);
    s.push_back(kHex[byte & 15]);
  }
  return s;
}

ResourceService::ResourceService(ResourceStore& store, const Model& model, ServiceOptions options)
    : store_(store), model_(model), validator_(model), indexer_(model), options_(options) {
  if (options_.readCacheBytes > 0) cache_ = std::make_unique<CurrentVersionCache>(options_.readCacheBytes);
  if (options_.groupCommitMax > 0)
    committer_ = std::make_unique<GroupCommitter>(store_, options_.groupCommitMax, options_.groupCommitLingerMs);
}

namespace {
thread_local bool t_appliedWrites = false;  // see ResourceService::AppliedWrites
}

ResourceService::AppliedWrites::AppliedWrites() : previous_(t_appliedWrites) { t_appliedWrites = true; }
ResourceService::AppliedWrites::~AppliedWrites() { t_appliedWrites = previous_; }

void ResourceService::enableAppliedWrites() {
  if (!committer_ && !appliedOnly_) {
    appliedOnly_ = std::make_unique<GroupCommitter>(store_, 64, options_.groupCommitLingerMs);
  }
}

void ResourceService::runUnit(const GroupCommitter::Unit& unit, bool alone) {
  if (committer_ && !alone) return t_appliedWrites ? committer_->runApplied(unit) : committer_->run(unit);
  if (appliedOnly_ && !alone && t_appliedWrites) return appliedOnly_->runApplied(unit);
  auto tx = store_.begin();
  unit(*tx);
  tx->commit();
}

ResourceService::~ResourceService() = default;

bool ResourceService::isValidId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    const bool ok =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

void ResourceService::checkId(std::string_view id) {
  if (!isValidId(id)) {
    throw FhirError(400, IssueType::Value,
                    "Invalid resource id: ids are 1-64 characters of A-Z, a-z, 0-9, '-' and '.'");
  }
}

void ResourceService::checkType(std::string_view type) const {
  if (!model_.isResourceType(type)) {
    throw FhirError(404, IssueType::NotSupported,
                    "Unknown resource type '" + std::string(type.substr(0, 64)) + "'");
  }
}

rapidjson::Document ResourceService::parseAndValidate(std::string_view type, std::string_view body,
                                                      std::string& bodyId, bool& hasId) {
  if (body.empty())
    throw FhirError(400, IssueType::Structure, "The request body is empty; a resource is required");
  rapidjson::Document doc = parseJson(body);
  if (!doc.IsObject())
    throw FhirError(400, IssueType::Structure, "The body must be a JSON object (a FHIR resource)");
  const rapidjson::Value* rt = member(doc, "resourceType");
  if (!rt || !rt->IsString()) {
    throw FhirError(400, IssueType::Structure, "Missing resourceType", "resourceType");
  }
  std::string_view bodyType(rt->GetString(), rt->GetStringLength());
  if (bodyType != type) {
    throw FhirError(400, IssueType::Invalid,
                    "resourceType '" + std::string(bodyType.substr(0, 64)) +
                        "' does not match the URL type '" + std::string(type) + "'",
                    "resourceType");
  }
  std::vector<Issue> issues = validator_.validate(doc);
  if (!issues.empty()) {
    const int status = hasStructuralIssue(issues) ? 400 : 422;
    throw FhirError(status, std::move(issues));
  }
  const rapidjson::Value* id = member(doc, "id");
  hasId = id && id->IsString();
  if (hasId) bodyId.assign(id->GetString(), id->GetStringLength());
  return doc;
}

template <class Fn>
auto ResourceService::withRetry(Fn&& fn) -> decltype(fn()) {
  for (int attempt = 1;; ++attempt) {
    try {
      return fn();
    } catch (const StoreConflict&) {
      if (attempt >= options_.maxWriteAttempts) {
        throw FhirError(409, IssueType::Conflict,
                        "The resource was modified concurrently; the write was not applied. Retry.");
      }
      // Jittered back-off so racing writers do not collide again in lock-step.
      std::uniform_int_distribution<int> jitter(0, 500 * attempt);
      std::this_thread::sleep_for(std::chrono::microseconds(200 * attempt + jitter(rng())));
    } catch (const StoreUnavailable& e) {
      throw FhirError(503, IssueType::Transient,
                      "The data store is unavailable; nothing was written. Retry later.").withInternalDetail(e.what());
    }
  }
}

void ResourceService::remember(const StoredVersion& v) {
  if (cache_) cache_->put(cacheKey(v.type, v.id), std::make_shared<const StoredVersion>(v));
}

WriteOutcome ResourceService::create(std::string_view type, std::string_view body) {
  checkType(type);
  std::string bodyId;
  bool hasId = false;
  const rapidjson::Document doc = parseAndValidate(type, body, bodyId, hasId);  // a client id is ignored (R4 3.1.0.3)
  const std::vector<IndexRow> index = indexer_.extract(type, doc);
  std::string id = newResourceId();
  const Instant now = nowInstant();
  StoredVersion v{std::string(type), id, 1, now.text, false, stampResource(body, type, id, 1, now.text), 0,
                  WriteOp::Create};
  bool transformed = false;  // v.json holds a transformed body (from an earlier attempt)
  std::vector<StoredVersion> followed;  // what the followers wrote
  withRetry([&] {
    runUnit([&](StoreTransaction& tx) {
      followed.clear();
      if (tx.current(type, v.id)) {  // a UUID collision: practically impossible, but never overwrite
        v.id = newResourceId();
        v.json = stampResource(body, type, v.id, 1, v.lastUpdated);
        transformed = false;
        throw StoreConflict();
      }
      std::vector<IndexRow> newIndex;
      const std::optional<std::string> newBody = transformWrite(tx, type, v.id, true, body, newIndex);
      if (newBody || transformed) v.json = stampResource(newBody ? *newBody : body, type, v.id, 1, v.lastUpdated);
      transformed = newBody.has_value();
      tx.put(v);
      tx.replaceIndex(type, v.id, newBody ? newIndex : index);
      notifyWrite(tx, v);
      runFollowers(tx, v, followed);
    });
    return 0;
  });
  remember(v);
  for (const StoredVersion& f : followed) remember(f);
  return WriteOutcome{std::move(v), true};
}

WriteOutcome ResourceService::update(std::string_view type, std::string_view id, std::string_view body,
                                     std::optional<int64_t> ifMatch) {
  checkType(type);
  checkId(id);
  std::string bodyId;
  bool hasId = false;
  const rapidjson::Document doc = parseAndValidate(type, body, bodyId, hasId);
  if (!hasId) throw FhirError(400, IssueType::Required, "The resource must carry an id for an update", "id");
  const std::vector<IndexRow> index = indexer_.extract(type, doc);
  if (bodyId != id) {
    throw FhirError(400, IssueType::Invalid, "The resource id does not match the id in the URL", "id");
  }
  // Stamp outside the write transaction with the version we expect to write, so the database
  // writer lock is held only for the writes themselves; re-stamp inside if the guess was wrong.
  int64_t guess = 1;
  try {
    if (auto cur = store_.read(type, id)) guess = cur->version + 1;
  } catch (const StoreUnavailable& e) {
    throw FhirError(503, IssueType::Transient,
                    "The data store is unavailable; nothing was written. Retry later.").withInternalDetail(e.what());
  }
  StoredVersion v;
  v.type = std::string(type);
  v.id = std::string(id);
  Instant now = nowInstant();
  v.version = guess;
  v.lastUpdated = now.text;
  v.json = stampResource(body, type, id, guess, now.text);
  v.op = WriteOp::Update;  // also when it creates: history shows PUT Type/id
  bool created = false;
  bool transformed = false;  // v.json holds a transformed body (from an earlier attempt)
  std::vector<StoredVersion> followed;  // what the followers wrote
  withRetry([&] {
    runUnit([&](StoreTransaction& tx) {
      followed.clear();
      auto cur = tx.current(type, id);
      if (ifMatch && (!cur || cur->deleted || cur->version != *ifMatch)) {
        throw FhirError(412, IssueType::Conflict,
                        cur ? "Version conflict: If-Match names version " + std::to_string(*ifMatch) +
                                  " but the current version is " + std::to_string(cur->version) +
                                  (cur->deleted ? " (deleted)" : "")
                            : "Precondition failed: the resource does not exist");
      }
      const int64_t next = cur ? cur->version + 1 : 1;
      created = !cur || cur->deleted;
      std::vector<IndexRow> newIndex;
      const std::optional<std::string> newBody = transformWrite(tx, type, id, created, body, newIndex);
      // Re-stamp when the guessed version was wrong, or when the current version carries a later
      // time than our stamp (lastUpdated must not go backwards along a resource's versions), or
      // when a transform changed the body (now or in an earlier attempt).
      bool restamp = newBody.has_value() || transformed;
      if (next != v.version || (cur && cur->lastUpdated > v.lastUpdated)) {
        now = nowInstant();
        v.version = next;
        v.lastUpdated = now.text;
        restamp = true;
      }
      if (restamp) v.json = stampResource(newBody ? *newBody : body, type, id, v.version, v.lastUpdated);
      transformed = newBody.has_value();
      tx.put(v);
      tx.replaceIndex(type, id, newBody ? newIndex : index);
      notifyWrite(tx, v);
      runFollowers(tx, v, followed);
    });
    return 0;
  });
  remember(v);
  for (const StoredVersion& f : followed) remember(f);
  return WriteOutcome{std::move(v), created};
}

WriteOutcome ResourceService::remove(std::string_view type, std::string_view id,
                                     std::optional<int64_t> ifMatch) {
  checkType(type);
  checkId(id);
  StoredVersion v;
  v.type = std::string(type);
  v.id = std::string(id);
  v.op = WriteOp::Delete;
  bool wrote = false;
  std::vector<StoredVersion> followed;  // what the followers wrote
  withRetry([&] {
    runUnit([&](StoreTransaction& tx) {
      followed.clear();
      auto cur = tx.current(type, id);
      if (ifMatch && (!cur || cur->version != *ifMatch)) {
        throw FhirError(412, IssueType::Conflict,
                        cur ? "Version conflict: If-Match names version " + std::to_string(*ifMatch) +
                                  " but the current version is " + std::to_string(cur->version)
                            : "Precondition failed: the resource does not exist");
      }
      if (!cur) {  // nothing to delete: success without a write (R4 http.html#delete)
        v.version = 0;
        wrote = false;
        return;
      }
      if (cur->deleted) {  // idempotent: report the existing deletion
        v.version = cur->version;
        v.lastUpdated = cur->lastUpdated;
        v.deleted = true;
        wrote = false;
        return;
      }
      const Instant now = nowInstant();
      v.version = cur->version + 1;
      v.lastUpdated = now.text;
      v.deleted = true;
      v.json.clear();
      tx.put(v);
      tx.replaceIndex(type, id, {});
      notifyWrite(tx, v);
      runFollowers(tx, v, followed);
      wrote = true;
    });
    return 0;
  });
  if (wrote) remember(v);
  for (const StoredVersion& f : followed) remember(f);
  return WriteOutcome{std::move(v), false};
}

std::shared_ptr<const StoredVersion> ResourceService::read(std::string_view type, std::string_view id) {
  checkType(type);
  checkId(id);
  std::shared_ptr<const StoredVersion> v;
  std::string key;
  uint64_t epoch = 0;
  if (cache_) {
    key = cacheKey(type, id);
    v = cache_->get(key, epoch);
  }
  if (!v) {
    std::optional<StoredVersion> got;
    try {
      got = store_.read(type, id);
    } catch (const StoreUnavailable& e) {
      throw FhirError(503, IssueType::Transient, "The data store is unavailable. Retry later.").withInternalDetail(e.what());
    }
    if (!got)
      throw FhirError(404, IssueType::NotFound,
                      "Resource " + std::string(type) + "/" + std::string(id) + " is not known");
    v = std::make_shared<const StoredVersion>(std::move(*got));
    if (cache_) cache_->offer(key, v, epoch);
  }
  if (v->deleted) {
    throw FhirError(410, IssueType::Deleted,
                    "Resource " + std::string(type) + "/" + std::string(id) + " was deleted (version " +
                        std::to_string(v->version) + ")");
  }
  return v;
}

StoredVersion ResourceService::vread(std::string_view type, std::string_view id, int64_t version) {
  checkType(type);
  checkId(id);
  std::optional<StoredVersion> got;
  try {
    got = store_.vread(type, id, version);
  } catch (const StoreUnavailable& e) {
    throw FhirError(503, IssueType::Transient, "The data store is unavailable. Retry later.").withInternalDetail(e.what());
  }
  if (!got) {
    throw FhirError(404, IssueType::NotFound,
                    "Version " + std::to_string(version) + " of " + std::string(type) + "/" +
                        std::string(id) + " is not known");
  }
  if (got->deleted) {
    throw FhirError(410, IssueType::Deleted,
                    "Version " + std::to_string(version) + " of " + std::string(type) + "/" +
                        std::string(id) + " is a deletion");
  }
  return std::move(*got);
}

HistoryPage ResourceService::history(const HistoryQuery& q) {
  if (!q.type.empty()) checkType(q.type);
  if (!q.id.empty()) checkId(q.id);
  try {
    HistoryPage page = store_.history(q);
    if (!q.id.empty() && page.entries.empty() && !q.beforeSeq && !store_.read(q.type, q.id)) {
      throw FhirError(404, IssueType::NotFound, "Resource " + q.type + "/" + q.id + " is not known");
    }
    return page;
  } catch (const StoreUnavailable& e) {
    throw FhirError(503, IssueType::Transient, "The data store is unavailable. Retry later.").withInternalDetail(e.what());
  }
}

// ---- atomic units (bundles, conditional interactions) ----

void ResourceService::runAtomic(const std::function<void(WriteContext&)>& fn) { runAtomicImpl(fn, false); }

void ResourceService::runAtomicAlone(const std::function<void(WriteContext&)>& fn) { runAtomicImpl(fn, true); }

void ResourceService::runAtomicImpl(const std::function<void(WriteContext&)>& fn, bool alone) {
  std::vector<StoredVersion> written;
  withRetry([&] {
    runUnit([&](StoreTransaction& tx) {
      WriteContext ctx(*this, tx);
      fn(ctx);
      written = std::move(ctx.written_);
    }, alone);
    return 0;
  });
  // Applied (not yet committed) versions go into the cache too: they are acknowledged, and their
  // input is durable in the caller's journal; a cache entry must never fall behind the store.
  for (const StoredVersion& v : written) remember(v);
}

void ResourceService::runFollowers(StoreTransaction& tx, const StoredVersion& v, std::vector<StoredVersion>& written) {
  if (followers_.empty()) return;
  WriteContext ctx(*this, tx);
  for (const WriteFollower& f : followers_) f(ctx, v);
  for (StoredVersion& w : ctx.written_) written.push_back(std::move(w));
}

std::optional<std::string> ResourceService::transformWrite(StoreTransaction& tx, std::string_view type,
                                                          std::string_view id, bool isNew, std::string_view body,
                                                          std::vector<IndexRow>& index) {
  if (transforms_.empty()) return std::nullopt;
  std::string b(body);
  bool changed = false;
  for (const WriteTransform& t : transforms_) changed = t(tx, type, id, isNew, b) || changed;
  if (!changed) return std::nullopt;
  std::string bodyId;
  bool hasId = false;
  const rapidjson::Document doc = parseAndValidate(type, b, bodyId, hasId);
  index = indexer_.extract(type, doc);
  return b;
}

PreparedResource ResourceService::prepare(std::string_view type, std::string_view body) {
  checkType(type);
  PreparedResource r;
  const rapidjson::Document doc = parseAndValidate(type, body, r.bodyId, r.hasId);
  r.type = std::string(type);
  r.body = std::string(body);
  r.index = indexer_.extract(type, doc);
  return r;
}

WriteOutcome WriteContext::create(std::string_view type, std::string_view body, std::string_view id) {
  return create(svc_.prepare(type, body), id);
}

WriteOutcome WriteContext::create(const PreparedResource& r, std::string_view id) {
  const std::string_view type = r.type;
  std::string newId = id.empty() ? newResourceId() : std::string(id);
  if (!id.empty()) {
    ResourceService::checkId(id);
    if (tx_.current(type, id)) {
      throw FhirError(409, IssueType::Duplicate,
                      "Resource " + std::string(type) + "/" + std::string(id) + " already exists");
    }
  } else if (tx_.current(type, newId)) {
    throw StoreConflict();  // a UUID collision: retry the unit with fresh ids
  }
  std::vector<IndexRow> newIndex;
  const std::optional<std::string> newBody = svc_.transformWrite(tx_, type, newId, true, r.body, newIndex);
  const Instant now = nowInstant();
  StoredVersion v{r.type, newId, 1, now.text, false, stampResource(newBody ? *newBody : r.body, type, newId, 1, now.text),
                  0, WriteOp::Create};
  tx_.put(v);
  tx_.replaceIndex(type, newId, newBody ? newIndex : r.index);
  svc_.notifyWrite(tx_, v);
  svc_.runFollowers(tx_, v, written_);
  written_.push_back(v);
  return WriteOutcome{std::move(v), true};
}

WriteOutcome WriteContext::update(std::string_view type, std::string_view id, std::string_view body,
                                  std::optional<int64_t> ifMatch) {
  svc_.checkType(type);
  ResourceService::checkId(id);
  return update(svc_.prepare(type, body), id, ifMatch);
}

WriteOutcome WriteContext::update(const PreparedResource& r, std::string_view id, std::optional<int64_t> ifMatch) {
  const std::string_view type = r.type;
  ResourceService::checkId(id);
  if (!r.hasId) throw FhirError(400, IssueType::Required, "The resource must carry an id for an update", "id");
  if (r.bodyId != id) throw FhirError(400, IssueType::Invalid, "The resource id does not match the id in the URL", "id");
  auto cur = tx_.current(type, id);
  if (ifMatch && (!cur || cur->deleted || cur->version != *ifMatch)) {
    throw FhirError(412, IssueType::Conflict,
                    cur ? "Version conflict: If-Match names version " + std::to_string(*ifMatch) +
                              " but the current version is " + std::to_string(cur->version)
                        : "Precondition failed: the resource does not exist");
  }
  const int64_t next = cur ? cur->version + 1 : 1;
  std::vector<IndexRow> newIndex;
  const std::optional<std::string> newBody =
      svc_.transformWrite(tx_, type, id, !cur || cur->deleted, r.body, newIndex);
  Instant now = nowInstant();
  StoredVersion v;
  v.type = r.type;
  v.id = std::string(id);
  v.version = next;
  v.lastUpdated = (cur && cur->lastUpdated > now.text) ? cur->lastUpdated : now.text;
  v.json = stampResource(newBody ? *newBody : r.body, type, id, next, v.lastUpdated);
  v.op = WriteOp::Update;
  tx_.put(v);
  tx_.replaceIndex(type, id, newBody ? newIndex : r.index);
  svc_.notifyWrite(tx_, v);
  svc_.runFollowers(tx_, v, written_);
  written_.push_back(v);
  return WriteOutcome{std::move(v), !cur || cur->deleted};
}

WriteOutcome WriteContext::remove(std::string_view type, std::string_view id, std::optional<int64_t> ifMatch) {
  svc_.checkType(type);
  ResourceService::checkId(id);
  StoredVersion v;
  v.type = std::string(type);
  v.id = std::string(id);
  v.op = WriteOp::Delete;
  auto cur = tx_.current(type, id);
  if (ifMatch && (!cur || cur->version != *ifMatch)) {
    throw FhirError(412, IssueType::Conflict,
                    cur ? "Version conflict: If-Match names version " + std::to_string(*ifMatch) +
                              " but the current version is " + std::to_string(cur->version)
                        : "Precondition failed: the resource does not exist");
  }
  if (!cur) return WriteOutcome{std::move(v), false};  // version 0: nothing to delete
  if (cur->deleted) {
    v.version = cur->version;
    v.lastUpdated = cur->lastUpdated;
    v.deleted = true;
    return WriteOutcome{std::move(v), false};
  }
  const Instant now = nowInstant();
  v.version = cur->version + 1;
  v.lastUpdated = now.text > cur->lastUpdated ? now.text : cur->lastUpdated;
  v.deleted = true;
  tx_.put(v);
  tx_.replaceIndex(type, id, {});
  svc_.notifyWrite(tx_, v);
  svc_.runFollowers(tx_, v, written_);
  written_.push_back(v);
  return WriteOutcome{std::move(v), false};
}

int64_t ResourceService::reindex(std::string_view type, int batch) {
  if (!type.empty()) checkType(type);
  if (batch < 1) batch = 1;
  int64_t total = 0;
  std::string lastType, lastId;
  try {
    for (;;) {
      // Keyset walk over the live resources in (type, id) order; each batch is one transaction.
      SqlQuery q;
      q.sql = "SELECT c.type, c.id, v.content FROM resource_current c JOIN resource_version v ON v.seq = c.seq "
              "WHERE NOT c.deleted";
      if (!type.empty()) {
        q.sql += " AND c.type = ?";
        q.params.emplace_back(std::string(type));
      }
      q.sql += " AND (c.type > ? OR (c.type = ? AND c.id > ?)) ORDER BY c.type, c.id LIMIT ?";
      q.params.emplace_back(lastType);
      q.params.emplace_back(lastType);
      q.params.emplace_back(lastId);
      q.params.emplace_back(static_cast<int64_t>(batch));
      std::vector<SqlRow> rows = store_.query(q);
      if (rows.empty()) break;
      std::vector<std::pair<std::pair<std::string, std::string>, std::vector<IndexRow>>> work;
      work.reserve(rows.size());
      for (SqlRow& row : rows) {
        std::string t = std::get<std::string>(row[0]);
        std::string i = std::get<std::string>(row[1]);
        const std::string& content = std::get<std::string>(row[2]);
        std::vector<IndexRow> idx;
        try {
          rapidjson::Document d = parseJson(content);
          idx = indexer_.extract(t, d);
        } catch (const FhirError&) {
          // Stored content always parses; keep going rather than stop a rebuild on one resource.
        }
        work.push_back({{std::move(t), std::move(i)}, std::move(idx)});
      }
      withRetry([&] {
        runUnit([&](StoreTransaction& tx) {
          for (const auto& [key, idx] : work) tx.replaceIndex(key.first, key.second, idx);
        });
        return 0;
      });
      total += static_cast<int64_t>(work.size());
      lastType = work.back().first.first;
      lastId = work.back().first.second;
      if (static_cast<int>(rows.size()) < batch) break;
    }
  } catch (const StoreUnavailable& e) {
    throw FhirError(503, IssueType::Transient, "The data store is unavailable. Retry later.").withInternalDetail(e.what());
  }
  return total;
}

}  // namespace hearth::fhir
