#pragma once
// GroupCommitter: runs units of work submitted by many request threads in shared database
// transactions, so that one commit (one WAL fsync with SQLite) acknowledges a whole group.
//
// Each unit runs inside its own savepoint (the first unit of a transaction needs none: its failure
// rolls back the whole, still otherwise empty, transaction): a unit that throws (a FhirError such as 412, or a
// store error) is rolled back alone and its exception is rethrown in the submitting thread; the
// others commit. run() returns only after the group's COMMIT succeeded, so an acknowledged write is
// durable exactly as with one transaction per write. If BEGIN or COMMIT fails, every unit of the
// group fails with that error (nothing of the group is visible).
//
// Applied units (runApplied): for a caller that keeps the unit's INPUT durably elsewhere and can
// replay it after a crash (the HL7 bridge's journal, server/src/hl7_journal.h). runApplied()
// returns as soon as the unit's savepoint was released: its writes are applied inside the open
// group transaction but not yet committed. A group holding only applied units stays open for up
// to `lingerMs` so that the units of one sender arriving one after another share a commit (each
// B-tree page they touch is written to the WAL once per group instead of once per unit), and such
// a group may hold up to 4 x maxGroupSize units. A group commits at once when it holds any plain
// unit, when it is full, when its linger time is over, or when someone calls flush(); a group of
// applied units only commits unsynced (StoreTransaction::commitUnsynced). Other connections see applied writes only after that commit:
// readers that must see everything acknowledged so far (the HTTP front, before each request)
// call flush(), which is a single atomic load when nothing is pending.
// If the COMMIT of a group with applied units fails, those units are lost from the database
// although their callers were told they succeeded: appliedLost() turns true (for good), so the
// owner of the durable input keeps it for replay at the next start.
//
// Threading: one writer thread owns the transaction; submitters block in run()/runApplied()/
// flush(). Units must not block on other units (they run one after another on the writer thread).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "hearth/fhir/store.h"

namespace hearth::fhir {

class GroupCommitter {
 public:
  using Unit = std::function<void(StoreTransaction&)>;

  GroupCommitter(ResourceStore& store, int maxGroupSize, int lingerMs = 100);
  ~GroupCommitter();  // finishes queued units and commits the open group, then stops
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // Runs `unit` in the next group; returns after that group committed, or rethrows the unit's
  // own exception or the group's BEGIN/COMMIT error.
  void run(const Unit& unit);
  // Runs `unit` in the open (or next) group; returns once its savepoint was released (applied,
  // not yet committed: see the class comment), or rethrows the unit's exception or a BEGIN error.
  void runApplied(const Unit& unit);
  // Commits the open group if it holds applied units; returns after that commit (or at once when
  // nothing is pending). Does not throw: a failed commit shows in appliedLost(). Groups of applied
  // units only commit unsynced (commitUnsynced: their input is durable elsewhere); durable=true
  // also makes every earlier commit durable (a synced commit, of an empty transaction if need
  // be), e.g. before the journal drops records.
  void flush(bool durable = false);
  bool hasPending() const { return pending_.load(std::memory_order_acquire); }
  bool appliedLost() const { return appliedLost_.load(std::memory_order_acquire); }

  // While alive, the next unit this thread submits (run/runApplied) runs `work` on this thread
  // after handing the unit over and before waiting for it: work that must finish before the unit's
  // result is used but may overlap its execution (the HL7 bridge syncs its journal record while
  // the writer applies the message). Runs at most once; its exception is swallowed (the owner
  // checks the outcome itself afterwards). Not nested.
  class WhileWaiting {
   public:
    explicit WhileWaiting(std::function<void()> work);
    ~WhileWaiting();
    WhileWaiting(const WhileWaiting&) = delete;
    WhileWaiting& operator=(const WhileWaiting&) = delete;
  };

 private:
  struct Item {
    const Unit* unit;
    bool applied;
    std::promise<void> done;
  };
  void loop();
  void submit(Item& item);

  ResourceStore& store_;
  const size_t maxGroup_;
  const std::chrono::milliseconds linger_;
  std::mutex mu_;
  std::condition_variable cv_;       // the writer waits for work
  std::condition_variable flushed_;  // flush() waits for commits
  std::deque<Item*> queue_;
  bool stop_ = false;
  uint64_t flushRequests_ = 0;  // flush() calls so far (guarded by mu_)
  uint64_t flushesServed_ = 0;  // requests covered by a finished commit (guarded by mu_)
  bool durableWanted_ = false;  // a flush(true) is waiting (guarded by mu_)
  std::atomic<bool> pending_{false};  // an open group holds applied units
  std::atomic<bool> appliedLost_{false};
  std::thread writer_;
};

}  // namespace hearth::fhir
