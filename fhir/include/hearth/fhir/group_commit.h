#pragma once
// GroupCommitter: runs units of work submitted by many request threads in shared database
// transactions, so that one commit (one WAL fsync with SQLite) acknowledges a whole group.
//
// Each unit runs inside its own savepoint: a unit that throws (a FhirError such as 412, or a
// store error) is rolled back alone and its exception is rethrown in the submitting thread; the
// others commit. run() returns only after the group's COMMIT succeeded, so an acknowledged write is
// durable exactly as with one transaction per write. If BEGIN or COMMIT fails, every unit of the
// group fails with that error (nothing of the group is visible).
//
// Threading: one writer thread owns the transaction; submitters block in run(). Units must not
// block on other units (they run one after another on the writer thread).
#include <condition_variable>
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

  GroupCommitter(ResourceStore& store, int maxGroupSize);
  ~GroupCommitter();  // finishes queued units, then stops the writer thread
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // Runs `unit` in the next group; returns after that group committed, or rethrows the unit's
  // own exception or the group's BEGIN/COMMIT error.
  void run(const Unit& unit);

 private:
  struct Item {
    const Unit* unit;
    std::promise<void> done;
  };
  void loop();

  ResourceStore& store_;
  const size_t maxGroup_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item*> queue_;
  bool stop_ = false;
  std::thread writer_;
};

}  // namespace hearth::fhir
