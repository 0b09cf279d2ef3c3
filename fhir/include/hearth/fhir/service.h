#pragma once
// ResourceService: the FHIR RESTful interactions on resources (create, read, vread, update,
// delete, history) over plain values, independent of HTTP.
//
// Owns the backend-neutral rules: id assignment, version numbering, If-Match checks, validation
// before any write, retry of units of work that lost a race (StoreConflict), and the optional
// read cache of current versions. Thread-safe; one instance serves every request thread.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/fhir/error.h"
#include "hearth/fhir/group_commit.h"
#include "hearth/fhir/model.h"
#include "hearth/fhir/search_index.h"
#include "hearth/fhir/store.h"
#include "hearth/fhir/validator.h"

namespace hearth::fhir {

class CurrentVersionCache;

struct ServiceOptions {
  // Byte budget of the cache of current versions (0 disables it). Only safe when this process is
  // the store's only writer (the embedded SQLite deployment); multi-node deployments keep it 0.
  size_t readCacheBytes = 0;
  int maxWriteAttempts = 8;  // a unit of work that keeps losing races ends in 409
  // Group commit: up to this many concurrent writes share one database commit (0 = off, each
  // write commits alone). See GroupCommitter.
  int groupCommitMax = 0;
  // How long a group holding only applied units (ResourceService::AppliedWrites) may stay open.
  int groupCommitLingerMs = 100;
};

struct WriteOutcome {
  StoredVersion version;
  bool created = false;  // true for create and update-as-create
};

class ResourceService;

// A resource body parsed, validated and search-indexed ahead of an atomic unit
// (ResourceService::prepare), so that the unit, which holds the store's writer lock and may run
// more than once, only does the store writes. Made once, used by any number of attempts.
struct PreparedResource {
  std::string type;
  std::string body;  // the bytes to store (stamped with id, version and lastUpdated when written)
  bool hasId = false;
  std::string bodyId;  // the body's id, when hasId
  std::vector<IndexRow> index;
};

// The writes of one atomic unit (ResourceService::runAtomic): the same rules as the
// ResourceService methods of the same names (validation, ids, versions, If-Match, search index),
// applied inside the unit's transaction. FhirErrors propagate and roll back the whole unit.
class WriteContext {
 public:
  StoreTransaction& tx() { return tx_; }
  // `id` empty: a new server id; else that id (transaction entries get ids assigned up front),
  // which must be valid and not exist yet (409 if it does).
  WriteOutcome create(std::string_view type, std::string_view body, std::string_view id = {});
  WriteOutcome update(std::string_view type, std::string_view id, std::string_view body,
                      std::optional<int64_t> ifMatch);
  WriteOutcome remove(std::string_view type, std::string_view id, std::optional<int64_t> ifMatch);
  // The same as create/update above with a body prepared before the unit: the same checks, ids,
  // versions, errors and observers, without parsing, validating or indexing again.
  WriteOutcome create(const PreparedResource& r, std::string_view id = {});
  WriteOutcome update(const PreparedResource& r, std::string_view id, std::optional<int64_t> ifMatch);

 private:
  friend class ResourceService;
  WriteContext(ResourceService& svc, StoreTransaction& tx) : svc_(svc), tx_(tx) {}
  ResourceService& svc_;
  StoreTransaction& tx_;
  std::vector<StoredVersion> written_;
};

class ResourceService {
 public:
  ResourceService(ResourceStore& store, const Model& model, ServiceOptions options = {});
  ~ResourceService();

  // POST [type]: validates `body`, assigns a new id, stores version 1.
  WriteOutcome create(std::string_view type, std::string_view body);
  // PUT [type]/[id]: validates; body id must equal `id`; stores the next version, or version 1 with
  // the client's id if the resource does not exist (update-as-create). ifMatch: expected current
  // version (412 if different or absent).
  WriteOutcome update(std::string_view type, std::string_view id, std::string_view body,
                      std::optional<int64_t> ifMatch);
  // DELETE [type]/[id]: stores a deletion version. Returns it (created=false), or the existing
  // deletion marker if already deleted (idempotent), or version 0 if the id never existed
  // (nothing is written; R4 answers success for both).
  WriteOutcome remove(std::string_view type, std::string_view id, std::optional<int64_t> ifMatch);
  // GET [type]/[id]: the current version; 404 unknown, 410 deleted.
  std::shared_ptr<const StoredVersion> read(std::string_view type, std::string_view id);
  // GET [type]/[id]/_history/[vid]: 404 unknown, 410 when that version is a deletion.
  StoredVersion vread(std::string_view type, std::string_view id, int64_t version);
  HistoryPage history(const HistoryQuery& q);

  // Runs `fn` as one atomic unit of work: everything it writes through the WriteContext commits
  // together or not at all. `fn` may run more than once (a unit that lost a race is retried), so
  // it must keep its state in locals it resets. A FhirError thrown by fn rolls back and
  // propagates; store failures become 503.
  void runAtomic(const std::function<void(WriteContext&)>& fn);
  // The same, for a large unit (a transaction Bundle of many entries): it runs in a transaction of
  // its own rather than through the group committer. Group commit pays off for small writes (one
  // sync for many); a large unit gains nothing from sharing its commit, and inside a group it runs
  // under a savepoint, whose sub-journal copies every page it touches (measured on SQLite: 500-entry
  // transaction Bundles imported at 1,078 resources/s grouped, 1,597/s alone).
  void runAtomicAlone(const std::function<void(WriteContext&)>& fn);

  // While an AppliedWrites object lives on a thread, the atomic units that thread runs through
  // the group committer return once APPLIED in the open group transaction, before its commit
  // (GroupCommitter::runApplied). Only for callers that hold the unit's input durably elsewhere
  // and replay it after a crash (the HL7 bridge's journal). Units that run alone, and every unit
  // when group commit is off, still commit before returning. Applied versions go into the read
  // cache like committed ones.
  class AppliedWrites {
   public:
    AppliedWrites();
    ~AppliedWrites();
    AppliedWrites(const AppliedWrites&) = delete;
    AppliedWrites& operator=(const AppliedWrites&) = delete;

   private:
    bool previous_;
  };
  // Makes every applied-but-uncommitted write visible (commits the open group); one atomic load
  // when there is none. Readers that must see all acknowledged writes call it first.
  // durable: also sync every earlier commit (GroupCommitter::flush).
  void flushApplied(bool durable = false) {
    if (GroupCommitter* c = appliedCommitter()) c->flush(durable);
  }
  // True when a group with applied units failed to commit since the start (see GroupCommitter).
  bool appliedLost() const {
    const GroupCommitter* c = committer_ ? committer_.get() : appliedOnly_.get();
    return c && c->appliedLost();
  }
  // Whether AppliedWrites takes effect: through the group committer, or, with group commit off
  // (PostgreSQL), through a committer of its own for applied units only (enableAppliedWrites).
  bool appliedWritesEnabled() const { return committer_ || appliedOnly_; }
  // With group commit off: starts the committer that runs AppliedWrites units (the HL7 journal
  // mode on PostgreSQL, whose own concurrency needs no group commit for plain writes). Call before
  // serving requests. No-op when group commit is on.
  void enableAppliedWrites();

  // Rebuilds the search index of every current resource (of `type` only, when given), in batches
  // of `batch` resources per transaction. Returns the number of resources indexed.
  int64_t reindex(std::string_view type = {}, int batch = 500);

  const SearchIndexer& indexer() const { return indexer_; }

  // Checks `type`, parses and validates `body` and extracts its search index, as create and update
  // do before writing; throws the same FhirErrors. For WriteContext::create/update(PreparedResource):
  // callers that build a unit from many resources (transaction Bundles) prepare them before
  // runAtomic, so the unit, which holds the store's writer lock, only writes.
  PreparedResource prepare(std::string_view type, std::string_view body);

  // Called for every version written (create, update, delete; plain interactions and atomic
  // units alike) inside the transaction that writes it, after put() and replaceIndex(): what an
  // observer writes with tx.execute() commits or rolls back with the version (the HL7 outbox,
  // subscriptions and audit build on this). A unit that is retried calls it again for the new
  // attempt. An exception from an observer rolls the write back and propagates (StoreUnavailable
  // as 503, like any store failure). Observers read and write through `tx` only: opening another
  // store connection while the write holds one can exhaust the pool under load (every in-flight
  // write waiting for a second connection). Register observers before the service handles requests.
  using WriteObserver = std::function<void(StoreTransaction& tx, const StoredVersion& v)>;
  void addWriteObserver(WriteObserver observer) { observers_.push_back(std::move(observer)); }

  // Called for every create and update (plain interactions and atomic units alike, never for a
  // delete) inside the writing transaction, before the version is stamped and stored and before
  // the write observers run, with the body that is about to be stored, which the transform may
  // rewrite: it returns true when it changed `body` (the service then parses the new body and
  // extracts its search index again; the body must stay a valid resource of `type` with the same
  // id), false to keep it. `isNew`: no live current version (create, update-as-create, update of
  // a deleted resource). This is how the server assigns values that must be taken in the same
  // transaction as the write (a hospital MRN from a counter row: a second transaction on the
  // side would wait for the writer lock this one holds on SQLite). A FhirError rolls the write
  // back and propagates; a retried unit calls the transforms again with the original body. The
  // same rules as observers apply: read and write through `tx` only; register before serving.
  using WriteTransform =
      std::function<bool(StoreTransaction& tx, std::string_view type, std::string_view id, bool isNew, std::string& body)>;
  void addWriteTransform(WriteTransform transform) { transforms_.push_back(std::move(transform)); }

  // Called for every version written, after the write observers, with a WriteContext on the same
  // transaction, for writes that follow from this one (an Appointment taking or freeing its Slot):
  // they go through the usual rules, transforms, observers and followers, are cached after the
  // commit like the version itself, and commit or roll back with it. A follower must not write
  // the resource it was called for (no loops). Register before the service handles requests.
  using WriteFollower = std::function<void(WriteContext& ctx, const StoredVersion& v)>;
  void addWriteFollower(WriteFollower follower) { followers_.push_back(std::move(follower)); }

  // 404 unless `type` is a concrete R4 resource type; 400 unless `id` is a valid FHIR id.
  void checkType(std::string_view type) const;
  static void checkId(std::string_view id);
  static bool isValidId(std::string_view id);

  ResourceStore& store() { return store_; }
  const Model& model() const { return model_; }

 private:
  // Parses and validates a body for `type`; returns the error or nothing. Sets bodyId.
  rapidjson::Document parseAndValidate(std::string_view type, std::string_view body, std::string& bodyId,
                                       bool& hasId);
  friend class WriteContext;
  template <class Fn>
  auto withRetry(Fn&& fn) -> decltype(fn());
  // Runs one unit of work atomically: through the group committer, or in its own transaction.
  void runUnit(const GroupCommitter::Unit& unit, bool alone = false);
  void runAtomicImpl(const std::function<void(WriteContext&)>& fn, bool alone);
  void remember(const StoredVersion& v);
  void notifyWrite(StoreTransaction& tx, const StoredVersion& v) const {
    for (const WriteObserver& o : observers_) o(tx, v);
  }
  // Runs the followers of `v` and appends what they wrote to `written`.
  void runFollowers(StoreTransaction& tx, const StoredVersion& v, std::vector<StoredVersion>& written);
  // Runs the write transforms on a copy of `body`; when one changed it, returns the new body and
  // sets `index` to the new body's search index (after validating it again).
  std::optional<std::string> transformWrite(StoreTransaction& tx, std::string_view type, std::string_view id, bool isNew,
                                            std::string_view body, std::vector<IndexRow>& index);

  ResourceStore& store_;
  const Model& model_;
  ResourceValidator validator_;
  SearchIndexer indexer_;
  ServiceOptions options_;
  std::unique_ptr<CurrentVersionCache> cache_;
  std::vector<WriteObserver> observers_;
  std::vector<WriteTransform> transforms_;
  std::vector<WriteFollower> followers_;
  GroupCommitter* appliedCommitter() const { return committer_ ? committer_.get() : appliedOnly_.get(); }
  std::unique_ptr<GroupCommitter> appliedOnly_;  // applied units when committer_ is off
  std::unique_ptr<GroupCommitter> committer_;  // declared last: stopped first
};

// Generates a new server-assigned resource id: UUID form (36 chars), RFC 9562 version 7 (time-ordered
// then random), so that inserts keyed by id stay local in the stores' B-trees.
std::string newResourceId();

}  // namespace hearth::fhir
