#include "hl7_journal.h"

#include <Poco/Checksum.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace hearth::server {

namespace {

constexpr uint32_t kMagic = 0x314A4C48u;  // "HLJ1" little endian
constexpr size_t kHeader = 20;            // magic, length, sequence, crc

void put32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
uint64_t get(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

uint32_t crcOf(const char* seqBytes, std::string_view payload) {
  Poco::Checksum c(Poco::Checksum::TYPE_CRC32);
  c.update(seqBytes, 8);
  c.update(payload.data(), static_cast<unsigned>(payload.size()));
  return c.checksum();
}

[[noreturn]] void ioError(const std::string& what, const std::string& path) {
  throw std::runtime_error("hl7 journal: " + what + " " + path + ": " + std::strerror(errno));
}

void writeAll(int fd, const char* data, size_t n, off_t at, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, data, n, at);
    if (w < 0) {
      if (errno == EINTR) continue;
      ioError("cannot write", path);
    }
    data += w;
    n -= static_cast<size_t>(w);
    at += w;
  }
}

void syncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Parses the valid prefix of one segment file (see the header for the format).
void readSegment(const std::string& path, uint64_t first, std::vector<Hl7Journal::Record>& out, uint64_t& nextSeq) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) ioError("cannot open", path);
  struct stat st {};
  ::fstat(fd, &st);
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < data.size()) {
    const ssize_t r = ::pread(fd, data.data() + got, data.size() - got, static_cast<off_t>(got));
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  ::close(fd);
  data.resize(got);
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t off = 0;
  uint64_t expect = first;
  while (off + kHeader <= data.size()) {
    if (get(p + off, 4) != kMagic) break;
    const size_t len = static_cast<size_t>(get(p + off + 4, 4));
    const uint64_t seq = get(p + off + 8, 8);
    const uint32_t crc = static_cast<uint32_t>(get(p + off + 16, 4));
    if (seq != expect || len < 2 || off + kHeader + len > data.size()) break;
    const std::string_view payload(data.data() + off + kHeader, len);
    if (crcOf(data.data() + off + 8, payload) != crc) break;
    const size_t peerLen = static_cast<size_t>(get(p + off + kHeader, 2));
    if (peerLen + 2 > len) break;
    Hl7Journal::Record rec;
    rec.seq = seq;
    rec.peer = std::string(payload.substr(2, peerLen));
    rec.raw = std::string(payload.substr(2 + peerLen));
    out.push_back(std::move(rec));
    off += kHeader + len;
    ++expect;
  }
  nextSeq = std::max(nextSeq, expect);
}

}  // namespace

std::string Hl7Journal::segmentPath(uint64_t first) const {
  char name[40];
  std::snprintf(name, sizeof name, "seg-%020llu.log", static_cast<unsigned long long>(first));
  return options_.directory + "/" + name;
}

Hl7Journal::Hl7Journal(Hl7JournalOptions options) : options_(std::move(options)) {
  if (options_.segmentBytes < (64u << 10)) options_.segmentBytes = 64u << 10;
  if (::mkdir(options_.directory.c_str(), 0700) != 0 && errno != EEXIST) ioError("cannot create", options_.directory);
  std::vector<uint64_t> firsts;
  if (DIR* d = ::opendir(options_.directory.c_str())) {
    while (dirent* e = ::readdir(d)) {
      unsigned long long first = 0;
      char tail[8] = {0};
      if (std::sscanf(e->d_name, "seg-%20llu.%3s", &first, tail) == 2 && std::strcmp(tail, "log") == 0) {
        firsts.push_back(first);
      }
    }
    ::closedir(d);
  } else {
    ioError("cannot list", options_.directory);
  }
  std::sort(firsts.begin(), firsts.end());
  nextSeq_ = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  uint64_t found = 0;
  for (uint64_t first : firsts) {
    const size_t before = recovered_.size();
    readSegment(segmentPath(first), first, recovered_, found);
    Segment s;
    s.first = first;
    s.path = segmentPath(first);
    s.closed = true;
    s.outstanding = static_cast<int64_t>(recovered_.size() - before);
    segments_[first] = s;
    found = std::max(found, first + 1);
  }
  nextSeq_ = std::max(nextSeq_, found);
  std::lock_guard lock(mu_);
  openNewSegmentLocked(0);
}

Hl7Journal::~Hl7Journal() {
  std::lock_guard lock(mu_);
  for (auto& [first, s] : segments_) {
    if (s.fd >= 0) ::close(s.fd);
  }
}

// Starts the segment that the next record (nextSeq_) goes to: the spare renamed, or a new file
// filled with zeros and synced, so that appends overwrite allocated blocks.
void Hl7Journal::openNewSegmentLocked(size_t minBytes) {
  const size_t size = std::max(options_.segmentBytes, minBytes);
  const std::string path = segmentPath(nextSeq_);
  const std::string spare = options_.directory + "/spare.log";
  struct stat st {};
  if (::stat(spare.c_str(), &st) == 0 && static_cast<size_t>(st.st_size) >= size) {
    if (::rename(spare.c_str(), path.c_str()) != 0) ioError("cannot reuse", spare);
  } else {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) ioError("cannot create", path);
    const std::string zeros(1u << 20, '\0');
    for (size_t at = 0; at < size; at += zeros.size()) {
      writeAll(fd, zeros.data(), std::min(zeros.size(), size - at), static_cast<off_t>(at), path);
    }
    if (::fdatasync(fd) != 0) ioError("cannot sync", path);
    ::close(fd);
  }
  syncDir(options_.directory);
  Segment s;
  s.first = nextSeq_;
  s.path = path;
  s.fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (s.fd < 0) ioError("cannot open", path);
  ::fstat(s.fd, &st);
  s.size = static_cast<size_t>(st.st_size);
  segments_[s.first] = s;
}

Hl7Journal::Ticket Hl7Journal::append(std::string_view peer, std::string_view raw) {
  if (peer.size() > 1024) peer = peer.substr(0, 1024);
  std::string rec;
  rec.reserve(kHeader + 2 + peer.size() + raw.size());
  std::unique_lock lock(mu_);
  if (failed_) throw std::runtime_error("hl7 journal: an earlier write or sync failed; restart needed");
  const uint64_t seq = nextSeq_;
  put32(rec, kMagic);
  put32(rec, static_cast<uint32_t>(2 + peer.size() + raw.size()));
  put64(rec, seq);
  put32(rec, 0);  // crc, below
  rec.push_back(static_cast<char>(peer.size() & 0xFF));
  rec.push_back(static_cast<char>((peer.size() >> 8) & 0xFF));
  rec.append(peer);
  rec.append(raw);
  const uint32_t crc = crcOf(rec.data() + 8, std::string_view(rec).substr(kHeader));
  for (int i = 0; i < 4; ++i) rec[16 + i] = static_cast<char>((crc >> (8 * i)) & 0xFF);

  Segment* cur = &segments_.rbegin()->second;
  if (cur->used + rec.size() > cur->size) {
    // Close the current segment: wait for a sync under way, then sync it fully here, so every
    // record in it is durable before appends move on.
    durableCv_.wait(lock, [&] { return !syncing_; });
    if (::fdatasync(cur->fd) != 0) {
      failed_ = true;
      ioError("cannot sync", cur->path);
    }
    durable_ = written_;
    durableCv_.notify_all();
    ::close(cur->fd);
    cur->fd = -1;
    cur->closed = true;
    try {
      openNewSegmentLocked(rec.size());
    } catch (...) {
      failed_ = true;
      throw;
    }
    cur = &segments_.rbegin()->second;
  }
  try {
    writeAll(cur->fd, rec.data(), rec.size(), static_cast<off_t>(cur->used), cur->path);
  } catch (...) {
    failed_ = true;
    throw;
  }
  cur->used += rec.size();
  ++cur->outstanding;
  ++nextSeq_;
  written_ += rec.size();
  Ticket t{seq, written_, cur->first};
  return t;
}

// Group commit by the waiters themselves (leader/follower): a waiter whose record is not durable
// yet either syncs the current segment (covering every record appended so far, its own included)
// or, while another waiter's sync is under way, waits for it and looks again. No thread hand-off:
// the lone sender's connection thread syncs its own record, typically while the group writer
// applies its message (GroupCommitter::WhileWaiting), and with many senders one sync still serves
// all the records appended before it started.
void Hl7Journal::waitDurable(const Ticket& t) {
  std::unique_lock lock(mu_);
  for (;;) {
    if (durable_ >= t.end) return;
    if (failed_) throw std::runtime_error("hl7 journal: sync failed; the message is not durable");
    if (syncing_) {
      durableCv_.wait(lock, [&] { return !syncing_ || durable_ >= t.end || failed_; });
      continue;
    }
    // Records of closed segments were synced when their segment closed: t is in the current one.
    const uint64_t target = written_;
    const int fd = segments_.rbegin()->second.fd;
    syncing_ = true;
    lock.unlock();
    const int rc = ::fdatasync(fd);
    lock.lock();
    syncing_ = false;
    if (rc != 0) {
      failed_ = true;
    } else {
      durable_ = std::max(durable_, target);
    }
    durableCv_.notify_all();
  }
}

void Hl7Journal::release(const Ticket& t) {
  std::lock_guard lock(mu_);
  auto it = segments_.find(t.segment);
  if (it != segments_.end()) --it->second.outstanding;
}

void Hl7Journal::releaseRecovered(uint64_t seq) {
  std::lock_guard lock(mu_);
  // The segment holding seq: the last one whose first sequence is <= seq.
  auto it = segments_.upper_bound(seq);
  if (it != segments_.begin()) --std::prev(it)->second.outstanding;
}

void Hl7Journal::reclaim(const std::function<bool()>& commitApplied) {
  std::vector<uint64_t> done;
  {
    std::lock_guard lock(mu_);
    for (const auto& [first, s] : segments_) {
      if (s.closed && s.outstanding <= 0) done.push_back(first);
    }
  }
  if (done.empty()) return;
  // Every record of these segments was released, i.e. its writes were applied; commit them
  // before the records go.
  if (!commitApplied()) return;
  std::lock_guard lock(mu_);
  const std::string spare = options_.directory + "/spare.log";
  for (uint64_t first : done) {
    auto it = segments_.find(first);
    if (it == segments_.end()) continue;
    struct stat st {};
    if (::stat(spare.c_str(), &st) != 0) {
      if (::rename(it->second.path.c_str(), spare.c_str()) != 0) ::unlink(it->second.path.c_str());
    } else {
      ::unlink(it->second.path.c_str());
    }
    segments_.erase(it);
  }
  syncDir(options_.directory);
}

void Hl7Journal::closeCurrent() {
  std::unique_lock lock(mu_);
  durableCv_.wait(lock, [&] { return !syncing_; });
  Segment& cur = segments_.rbegin()->second;
  if (cur.closed) return;
  if (::fdatasync(cur.fd) == 0) durable_ = written_;
  ::close(cur.fd);
  cur.fd = -1;
  cur.closed = true;
  failed_ = true;  // no more appends
  durableCv_.notify_all();
}

}  // namespace hearth::server
