#pragma once
// SQLite backend of ResourceStore (private; reached through openStore()).
#include <memory>
#include <string>

#include "hearth/fhir/store.h"

namespace hearth::fhir::storeimpl {

// Opens (creating if needed) the database file at path, switches it to WAL and applies pending
// migrations. Throws StoreUnavailable.
std::unique_ptr<ResourceStore> openSqliteStore(const std::string& path, const StoreOptions& options);

// Makes the WAL-buffering VFS (sqlite_wal_buffer.cpp) the process's default SQLite VFS. Once;
// connections opened before keep theirs.
void installWalWriteBuffer();

}  // namespace hearth::fhir::storeimpl
