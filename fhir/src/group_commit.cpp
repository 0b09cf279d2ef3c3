#include "hearth/fhir/group_commit.h"

#include <functional>
#include <vector>

namespace hearth::fhir {

GroupCommitter::GroupCommitter(ResourceStore& store, int maxGroupSize, int lingerMs)
    : store_(store),
      maxGroup_(static_cast<size_t>(maxGroupSize < 1 ? 1 : maxGroupSize)),
      linger_(lingerMs < 0 ? 0 : lingerMs),
      writer_([this] { loop(); }) {}

GroupCommitter::~GroupCommitter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  writer_.join();
}

namespace {
// The work of this thread's live WhileWaiting, if any (cleared once run).
thread_local std::function<void()> whileWaiting;
}  // namespace

GroupCommitter::WhileWaiting::WhileWaiting(std::function<void()> work) { whileWaiting = std::move(work); }

GroupCommitter::WhileWaiting::~WhileWaiting() { whileWaiting = nullptr; }

void GroupCommitter::submit(Item& item) {
  std::future<void> done = item.done.get_future();
  {
    std::lock_guard lock(mu_);
    if (stop_) throw StoreUnavailable("group committer stopped");
    queue_.push_back(&item);
  }
  cv_.notify_one();
  if (whileWaiting) {
    const std::function<void()> work = std::move(whileWaiting);
    whileWaiting = nullptr;
    try {
      work();
    } catch (...) {
      // The owner of the work looks at its outcome itself (WhileWaiting's contract).
    }
  }
  done.get();  // rethrows the unit's or the group's exception
}

void GroupCommitter::run(const Unit& unit) {
  Item item{&unit, false, {}};
  submit(item);
}

void GroupCommitter::runApplied(const Unit& unit) {
  Item item{&unit, true, {}};
  submit(item);
}

void GroupCommitter::flush(bool durable) {
  if (!durable && !pending_.load(std::memory_order_acquire)) return;
  std::unique_lock lock(mu_);
  const uint64_t mine = ++flushRequests_;
  if (durable) durableWanted_ = true;
  cv_.notify_one();
  flushed_.wait(lock, [&] { return flushesServed_ >= mine; });
}

void GroupCommitter::loop() {
  using Clock = std::chrono::steady_clock;
  std::unique_ptr<StoreTransaction> tx;  // the open group
  Clock::time_point openedAt;
  std::vector<Item*> waiting;  // plain units of the open group: answered at its commit
  size_t units = 0;            // units run in the open group
  bool hasApplied = false;     // the open group holds applied (already answered) units

  // Ends the open group: commit (or, with `abortError`, roll back), answer its plain units and
  // every flush() waiting so far.
  bool durableNow = false;  // this group's commit must be synced (a flush(true) asked)
  auto finish = [&](std::exception_ptr abortError) {
    std::exception_ptr err = abortError;
    if (!err) {
      try {
        // Plain units are acknowledged by this commit: it must be durable. A group of applied
        // units only has its input durable elsewhere: visible is enough.
        if (!waiting.empty() || durableNow) {
          tx->commit();
        } else {
          tx->commitUnsynced();
        }
      } catch (...) {
        err = std::current_exception();
      }
    }
    tx.reset();  // rolls back when not committed
    if (err && hasApplied) appliedLost_.store(true, std::memory_order_release);
    for (Item* it : waiting) {
      if (err) {
        it->done.set_exception(err);
      } else {
        it->done.set_value();
      }
    }
    const bool synced = durableNow && !err;
    waiting.clear();
    units = 0;
    hasApplied = false;
    durableNow = false;
    pending_.store(false, std::memory_order_release);
    {
      // No unit can be applied while this thread commits, so every flush requested until now
      // asked for writes that this commit (or an earlier one) made visible; but a durable flush
      // asked for while an unsynced commit ran waits for the next (synced) round.
      std::lock_guard lock(mu_);
      if (synced || !durableWanted_) flushesServed_ = flushRequests_;
    }
    flushed_.notify_all();
  };

  for (;;) {
    std::vector<Item*> batch;
    bool stopping = false, flushWanted = false;
    {
      std::unique_lock lock(mu_);
      auto ready = [this] { return stop_ || !queue_.empty() || flushRequests_ > flushesServed_; };
      if (tx) {
        cv_.wait_until(lock, openedAt + linger_, ready);
      } else {
        cv_.wait(lock, ready);
      }
      stopping = stop_;
      // A group of applied units only may grow to 4x the size: nobody waits for its commit.
      const size_t cap = (tx && hasApplied && waiting.empty()) ? 4 * maxGroup_ : maxGroup_;
      while (!queue_.empty() && units + batch.size() < cap) {
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
      flushWanted = flushRequests_ > flushesServed_;
      if (durableWanted_) {
        durableNow = true;
        durableWanted_ = false;
      }
      if (!tx && batch.empty() && !durableNow) {
        if (stopping && queue_.empty()) return;
        flushesServed_ = flushRequests_;  // nothing open: every earlier write is committed
        lock.unlock();
        flushed_.notify_all();
        continue;
      }
    }
    if (!tx) {  // units to run, or a durable flush with nothing open (an empty synced commit)
      try {
        tx = store_.begin();
        openedAt = Clock::now();
      } catch (...) {
        const std::exception_ptr e = std::current_exception();
        for (Item* it : batch) it->done.set_exception(e);
        if (durableNow) {
          durableNow = false;
          std::lock_guard lock(mu_);
          flushesServed_ = flushRequests_;
        }
        flushed_.notify_all();
        continue;
      }
    }
    bool mustCommit = false;
    std::exception_ptr broken;  // a savepoint could not be rolled back: the group is unusable
    // Units that failed hear it only after the group ended: a unit retried at once (e.g. one that
    // needs fresh content) must find the writes of the units before it committed, or it would
    // read the same stale state again.
    std::vector<std::pair<Item*, std::exception_ptr>> failed;
    for (size_t i = 0; i < batch.size(); ++i) {
      Item* it = batch[i];
      if (broken) {
        failed.emplace_back(it, broken);
        continue;
      }
      // The first unit of a fresh transaction needs no savepoint: if it fails, rolling the whole
      // transaction back undoes exactly its writes. That spares a lone unit (a bulk bundle, the
      // first message of an HL7 group) its sub-journal, a copy of every page it touches.
      const bool alone = units == 0 && waiting.empty() && !hasApplied;
      try {
        if (!alone) tx->savepoint();
        (*it->unit)(*tx);
        if (!alone) tx->releaseSavepoint();
        ++units;
        if (it->applied) {
          hasApplied = true;
          pending_.store(true, std::memory_order_release);
          it->done.set_value();
        } else {
          waiting.push_back(it);
          mustCommit = true;
        }
      } catch (...) {
        const std::exception_ptr e = std::current_exception();
        try {
          if (alone) {
            // Nothing else is in the transaction: roll it back and open a fresh one for the rest
            // of the batch.
            tx.reset();
            tx = store_.begin();
            openedAt = Clock::now();
          } else {
            tx->rollbackToSavepoint();
          }
          failed.emplace_back(it, e);
        } catch (...) {
          broken = std::current_exception();
          failed.emplace_back(it, broken);
        }
      }
    }
    if (broken) {
      finish(broken);
      for (auto& [it, e] : failed) it->done.set_exception(e);
      continue;
    }
    if (!failed.empty()) {
      finish(nullptr);
      for (auto& [it, e] : failed) it->done.set_exception(e);
      continue;
    }
    if (mustCommit || stopping || flushWanted || durableNow || !hasApplied || units >= 4 * maxGroup_ ||
        Clock::now() >= openedAt + linger_) {
      finish(nullptr);
    }
  }
}

}  // namespace hearth::fhir
