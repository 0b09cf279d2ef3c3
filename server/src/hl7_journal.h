#pragma once
// Hl7Journal: the HL7 bridge's write-ahead journal of inbound messages (original-mode ACKs).
//
// Why: an AA may leave only when the message is durable and processed. Committing every message's
// FHIR writes durably on their own costs one database commit with an fsync of every B-tree page
// the message touched (~100 WAL pages for an ADT A01 with SQLite): about 130 messages/s on one
// connection. With the journal the bridge instead
//   1. appends the raw message here (a sequential write; waitDurable() fdatasyncs, one sync
//      covering every record appended before it: the waiters sync as leader/follower, no thread
//      hand-off; the bridge runs it while the group writer applies the message),
//   2. processes it as an APPLIED unit of the group committer (GroupCommitter::runApplied: the
//      writes and the hl7_message row are applied in the open group transaction, which commits
//      within store.group-commit.linger-ms, or at once when an HTTP reader asks for it),
//   3. waits until its record is durable, and only then returns the AA.
// A crash (kill -9, power loss) may lose the open group, never the journal record: at the next
// start every record still in the journal is processed again unless its message is already in
// hl7_message (the duplicate rule makes replay idempotent). So an acknowledged message is never
// lost, and what a FHIR client sees after the AA is what is committed.
//
// Files: <directory>/seg-<first sequence, 20 digits>.log, written front to back; a segment is
// closed when the next record does not fit (segmentBytes, or one record's size if larger), and
// deleted once every record in it was released (its unit finished) AND the applied writes were
// committed (reclaim() calls the flush it is given first). One deleted segment is kept as a spare
// and reused by renaming (its blocks are allocated, so overwriting it needs no metadata sync).
// Record: magic "HLJ1" (u32 LE 0x314A4C48), payload length (u32 LE), sequence (u64 LE), CRC-32 of
// sequence bytes + payload (u32 LE), payload = peer length (u16 LE), peer, raw message bytes.
// Reading stops at the first record that is invalid (bad magic, length, CRC, or a sequence other
// than the next expected one: stale bytes of a reused spare never pass).
// Sequences continue across restarts (the next after the largest found, or the current time in
// microseconds for an empty journal).
//
// Thread-safety: all members may be called concurrently. I/O errors: append() and waitDurable()
// throw std::runtime_error (the caller answers AE 207: nothing acknowledged); after a failed sync
// the journal refuses further appends until restart. Texts never contain message content.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::server {

struct Hl7JournalOptions {
  std::string directory;
  size_t segmentBytes = 8u << 20;
};

class Hl7Journal {
 public:
  struct Record {
    uint64_t seq = 0;
    std::string peer;
    std::string raw;
  };
  struct Ticket {
    uint64_t seq = 0;
    uint64_t end = 0;      // journal position (bytes appended since open) after the record
    uint64_t segment = 0;  // first sequence of the record's segment
  };

  // Opens (creating) the directory, reads the records of existing segments (recovered()) and
  // starts a fresh segment. Throws std::runtime_error.
  explicit Hl7Journal(Hl7JournalOptions options);
  ~Hl7Journal();  // closes the files; they stay
  Hl7Journal(const Hl7Journal&) = delete;
  Hl7Journal& operator=(const Hl7Journal&) = delete;

  // Records found at open, in order. Each must be released (releaseRecovered) once handled.
  const std::vector<Record>& recovered() const { return recovered_; }
  void releaseRecovered(uint64_t seq);

  Ticket append(std::string_view peer, std::string_view raw);
  // Returns once t's record is durable, syncing the journal itself unless another waiter's sync
  // covers it. Throws std::runtime_error if a sync failed.
  void waitDurable(const Ticket& t);
  void release(const Ticket& t);

  // Deletes the closed segments whose records were all released, after `commitApplied` (which
  // must make every applied write durable; false = it could not) returned true. Cheap when there
  // is nothing to delete.
  void reclaim(const std::function<bool()>& commitApplied);

  // Shutdown, after the listener stopped: syncs and closes the current segment, so that reclaim()
  // can delete it once its records are committed. Appends fail afterwards.
  void closeCurrent();

 private:
  struct Segment {
    uint64_t first = 0;
    std::string path;
    int fd = -1;
    size_t size = 0;    // file size
    size_t used = 0;    // bytes of records
    int64_t outstanding = 0;  // appended (or recovered) records not yet released
    bool closed = false;
  };
  void openNewSegmentLocked(size_t minBytes);
  std::string segmentPath(uint64_t first) const;

  Hl7JournalOptions options_;
  std::vector<Record> recovered_;
  mutable std::mutex mu_;
  std::condition_variable durableCv_;  // waiters and rotation
  std::map<uint64_t, Segment> segments_;  // by first sequence; the last one is current
  uint64_t nextSeq_ = 1;
  uint64_t written_ = 0;  // journal position appended
  uint64_t durable_ = 0;  // journal position synced
  bool syncing_ = false;
  bool failed_ = false;
};

}  // namespace hearth::server
