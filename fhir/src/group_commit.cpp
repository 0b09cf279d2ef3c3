#include "hearth/fhir/group_commit.h"

#include <vector>

namespace hearth::fhir {

GroupCommitter::GroupCommitter(ResourceStore& store, int maxGroupSize)
    : store_(store), maxGroup_(static_cast<size_t>(maxGroupSize < 1 ? 1 : maxGroupSize)), writer_([this] { loop(); }) {}

GroupCommitter::~GroupCommitter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  writer_.join();
}

void GroupCommitter::run(const Unit& unit) {
  Item item{&unit, {}};
  std::future<void> done = item.done.get_future();
  {
    std::lock_guard lock(mu_);
    if (stop_) throw StoreUnavailable("group committer stopped");
    queue_.push_back(&item);
  }
  cv_.notify_one();
  done.get();  // rethrows the unit's or the group's exception
}

void GroupCommitter::loop() {
  std::vector<Item*> group;
  std::vector<std::exception_ptr> errors;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      while (!queue_.empty() && group.size() < maxGroup_) {
        group.push_back(queue_.front());
        queue_.pop_front();
      }
    }
    errors.assign(group.size(), nullptr);
    std::exception_ptr groupError;
    try {
      std::unique_ptr<StoreTransaction> tx = store_.begin();
      for (size_t i = 0; i < group.size(); ++i) {
        tx->savepoint();
        try {
          (*group[i]->unit)(*tx);
          tx->releaseSavepoint();
        } catch (...) {
          errors[i] = std::current_exception();
          tx->rollbackToSavepoint();  // if this throws, the whole group fails below
        }
      }
      tx->commit();
    } catch (...) {
      groupError = std::current_exception();
    }
    for (size_t i = 0; i < group.size(); ++i) {
      if (errors[i]) {
        group[i]->done.set_exception(errors[i]);
      } else if (groupError) {
        group[i]->done.set_exception(groupError);
      } else {
        group[i]->done.set_value();
      }
    }
    group.clear();
  }
}

}  // namespace hearth::fhir
