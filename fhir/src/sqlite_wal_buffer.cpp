// A SQLite VFS that gathers the appends of a WAL commit into few write() calls.
//
// SQLite writes a WAL frame as two writes, its 24-byte header and then the page, so a commit
// of N pages costs 2N pwrite() system calls (a 500-resource bundle: ~8,000; an HL7 message:
// ~17). On this project's virtual machines a system call costs several microseconds whatever
// it copies. This VFS passes everything through to the default one except the writes to WAL
// files, which it gathers while they append to the WAL, in a buffer per file handle, and
// writes out in one call:
//   - after the page of a commit frame (a frame header whose "database size" field is not zero):
//     SQLite publishes the commit to other connections (the wal-index) only after
//     sqlite3WalFrames returns, so every frame of it is in the file by then, and nothing of a
//     finished commit ever stays in the buffer (a kill -9 loses no more than without it);
//   - before any read, sync, truncate, size query or close of the file, and before any write
//     that is not the next append (SQLite rewrites headers and pages in place in some
//     transactions: those go straight to the file, after the buffer);
//   - when the buffer is full (kBufferBytes: about 30 frames per write() instead of one per
//     header and page).
// Only appends past the highest offset written since the WAL last started over are gathered;
// the WAL header (offset 0) starts it over. Files other than WALs get the default VFS's file
// object unchanged.
#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "store_sqlite.h"

namespace hearth::fhir::storeimpl {

namespace {

// The default (unix) VFS writes at most 0x1ffff bytes per call (it masks the length: it expects
// page-sized writes), so a flush stays below that: 124 KiB, 30 frames of 4 KiB pages.
constexpr int kBufferBytes = 0x1ffff & ~0xfff;
constexpr int kFrameHeaderBytes = 24;

sqlite3_vfs* realVfs = nullptr;
sqlite3_vfs bufferedVfs;
sqlite3_io_methods walMethods;

struct WalFile {
  sqlite3_file base;           // pMethods = &walMethods
  sqlite3_file* real;          // the default VFS's file object, right after this struct
  char* buffer;                // kBufferBytes, allocated on first use
  sqlite3_int64 start;         // file offset of buffer[0]
  int length;                  // bytes gathered
  sqlite3_int64 highWater;     // end of the highest write since the WAL header was written
  bool flushAfterNext;         // the last gathered write was a commit frame's header
};

WalFile* walOf(sqlite3_file* f) { return reinterpret_cast<WalFile*>(f); }

int flush(WalFile* w) {
  if (w->length == 0) return SQLITE_OK;
  const int n = w->length;
  w->length = 0;
  w->flushAfterNext = false;
  return w->real->pMethods->xWrite(w->real, w->buffer, n, w->start);
}

int walClose(sqlite3_file* f) {
  WalFile* w = walOf(f);
  const int rc = flush(w);
  const int closed = w->real->pMethods->xClose(w->real);
  std::free(w->buffer);
  w->buffer = nullptr;
  return rc != SQLITE_OK ? rc : closed;
}

int walRead(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
  WalFile* w = walOf(f);
  if (const int rc = flush(w); rc != SQLITE_OK) return rc;
  return w->real->pMethods->xRead(w->real, out, amount, offset);
}

int walWrite(sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
  WalFile* w = walOf(f);
  if (offset == 0) w->highWater = 0;  // the WAL header: the WAL starts over
  const bool append = w->length > 0 && offset == w->start + w->length;
  const bool fresh = w->length == 0 && offset > 0 && offset >= w->highWater;
  if ((!append && !fresh) || amount > kBufferBytes) {
    if (const int rc = flush(w); rc != SQLITE_OK) return rc;
    w->highWater = std::max(w->highWater, offset + amount);
    return w->real->pMethods->xWrite(w->real, data, amount, offset);
  }
  // Taken before a flush for room clears it: a commit frame's header can be the last thing that
  // fits, its page then starting the next buffer, which must still go out at once.
  const bool commitPage = w->flushAfterNext && amount != kFrameHeaderBytes;
  if (append && w->length + amount > kBufferBytes) {
    if (const int rc = flush(w); rc != SQLITE_OK) return rc;
  }
  if (!w->buffer) {
    w->buffer = static_cast<char*>(std::malloc(kBufferBytes));
    if (!w->buffer) return w->real->pMethods->xWrite(w->real, data, amount, offset);
  }
  if (w->length == 0) w->start = offset;
  std::memcpy(w->buffer + w->length, data, static_cast<size_t>(amount));
  w->length += amount;
  w->highWater = std::max(w->highWater, offset + amount);
  if (amount == kFrameHeaderBytes) {
    // Bytes 4..7 of a frame header: the database size in pages for a commit frame, else 0.
    const auto* h = static_cast<const unsigned char*>(data);
    w->flushAfterNext = (h[4] | h[5] | h[6] | h[7]) != 0;
    return SQLITE_OK;
  }
  return commitPage ? flush(w) : SQLITE_OK;
}

int walTruncate(sqlite3_file* f, sqlite3_int64 size) {
  WalFile* w = walOf(f);
  if (const int rc = flush(w); rc != SQLITE_OK) return rc;
  w->highWater = std::min(w->highWater, size);
  return w->real->pMethods->xTruncate(w->real, size);
}

int walSync(sqlite3_file* f, int flags) {
  WalFile* w = walOf(f);
  if (const int rc = flush(w); rc != SQLITE_OK) return rc;
  return w->real->pMethods->xSync(w->real, flags);
}

int walFileSize(sqlite3_file* f, sqlite3_int64* size) {
  WalFile* w = walOf(f);
  if (const int rc = flush(w); rc != SQLITE_OK) return rc;
  return w->real->pMethods->xFileSize(w->real, size);
}

// The rest pass through (SQLite takes no locks and maps no memory on a WAL file itself).
int walLock(sqlite3_file* f, int l) { return walOf(f)->real->pMethods->xLock(walOf(f)->real, l); }
int walUnlock(sqlite3_file* f, int l) { return walOf(f)->real->pMethods->xUnlock(walOf(f)->real, l); }
int walCheckReservedLock(sqlite3_file* f, int* out) {
  return walOf(f)->real->pMethods->xCheckReservedLock(walOf(f)->real, out);
}
int walFileControl(sqlite3_file* f, int op, void* arg) {
  WalFile* w = walOf(f);
  if (const int rc = flush(w); rc != SQLITE_OK) return rc;
  return w->real->pMethods->xFileControl(w->real, op, arg);
}
int walSectorSize(sqlite3_file* f) { return walOf(f)->real->pMethods->xSectorSize(walOf(f)->real); }
int walDeviceCharacteristics(sqlite3_file* f) {
  return walOf(f)->real->pMethods->xDeviceCharacteristics(walOf(f)->real);
}
int walShmMap(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
  return walOf(f)->real->pMethods->xShmMap(walOf(f)->real, page, size, extend, out);
}
int walShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return walOf(f)->real->pMethods->xShmLock(walOf(f)->real, offset, n, flags);
}
void walShmBarrier(sqlite3_file* f) { walOf(f)->real->pMethods->xShmBarrier(walOf(f)->real); }
int walShmUnmap(sqlite3_file* f, int deleteFlag) {
  return walOf(f)->real->pMethods->xShmUnmap(walOf(f)->real, deleteFlag);
}
int walFetch(sqlite3_file* f, sqlite3_int64 offset, int amount, void** out) {
  WalFile* w = walOf(f);
  if (const int rc = flush(w); rc != SQLITE_OK) return rc;
  return w->real->pMethods->xFetch(w->real, offset, amount, out);
}
int walUnfetch(sqlite3_file* f, sqlite3_int64 offset, void* p) {
  return walOf(f)->real->pMethods->xUnfetch(walOf(f)->real, offset, p);
}

// The default VFS's xOpen; a WAL file gets a WalFile around the default file object.
int bufferedOpen(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags, int* outFlags) {
  if ((flags & SQLITE_OPEN_WAL) == 0) return realVfs->xOpen(realVfs, name, file, flags, outFlags);
  WalFile* w = walOf(file);
  std::memset(w, 0, sizeof(WalFile));
  w->real = reinterpret_cast<sqlite3_file*>(w + 1);
  const int rc = realVfs->xOpen(realVfs, name, w->real, flags, outFlags);
  if (rc != SQLITE_OK) {
    // SQLite calls xClose only on a file whose pMethods is set; the default VFS leaves it null
    // on failure, and so does this one.
    w->base.pMethods = nullptr;
    return rc;
  }
  if (w->real->pMethods == nullptr) return SQLITE_CANTOPEN;
  w->base.pMethods = &walMethods;
  return SQLITE_OK;
}

}  // namespace

void installWalWriteBuffer() {
  static std::once_flag once;
  std::call_once(once, [] {
    realVfs = sqlite3_vfs_find(nullptr);
    if (!realVfs) return;
    bufferedVfs = *realVfs;
    bufferedVfs.zName = "hearth-walbuf";
    bufferedVfs.szOsFile = static_cast<int>(sizeof(WalFile)) + realVfs->szOsFile;
    bufferedVfs.xOpen = &bufferedOpen;
    bufferedVfs.pNext = nullptr;
    walMethods = sqlite3_io_methods{};
    walMethods.iVersion = 3;
    walMethods.xClose = walClose;
    walMethods.xRead = walRead;
    walMethods.xWrite = walWrite;
    walMethods.xTruncate = walTruncate;
    walMethods.xSync = walSync;
    walMethods.xFileSize = walFileSize;
    walMethods.xLock = walLock;
    walMethods.xUnlock = walUnlock;
    walMethods.xCheckReservedLock = walCheckReservedLock;
    walMethods.xFileControl = walFileControl;
    walMethods.xSectorSize = walSectorSize;
    walMethods.xDeviceCharacteristics = walDeviceCharacteristics;
    walMethods.xShmMap = walShmMap;
    walMethods.xShmLock = walShmLock;
    walMethods.xShmBarrier = walShmBarrier;
    walMethods.xShmUnmap = walShmUnmap;
    walMethods.xFetch = walFetch;
    walMethods.xUnfetch = walUnfetch;
    sqlite3_vfs_register(&bufferedVfs, 1);
  });
}

}  // namespace hearth::fhir::storeimpl
