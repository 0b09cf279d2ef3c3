// openStore(): picks the backend from the URL scheme.
#include "hearth/fhir/store.h"
#include "store_common.h"
#include "store_postgres.h"
#include "store_sqlite.h"

namespace hearth::fhir {

std::unique_ptr<ResourceStore> openStore(const StoreOptions& options) {
  const std::string& url = options.url;
  if (url.rfind("sqlite:", 0) == 0) {
    return storeimpl::openSqliteStore(storeimpl::sqlitePathFromUrl(url), options);
  }
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
    return storeimpl::openPostgresStore(storeimpl::postgresConnectionString(url), options);
  }
  // The URL may carry a password: name only what was expected.
  throw StoreUnavailable("unsupported store URL (expected sqlite:PATH or postgresql://...)");
}

}  // namespace hearth::fhir
