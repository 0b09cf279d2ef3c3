#pragma once
// PostgreSQL backend of ResourceStore (private; reached through openStore()).
#include <memory>
#include <string>

#include "hearth/fhir/store.h"

namespace hearth::fhir::storeimpl {

// Connects with the libpq keyword string (see postgresConnectionString) and applies pending
// migrations under a transaction-scoped advisory lock, so nodes starting together apply each step
// once. Throws StoreUnavailable.
std::unique_ptr<ResourceStore> openPostgresStore(const std::string& connectionString,
                                                 const StoreOptions& options);

}  // namespace hearth::fhir::storeimpl
