#pragma once
// TestWorld: a real ResourceStore (SQLite in a temporary directory, or PostgreSQL in a fresh
// schema of $HEARTH_TEST_PG_URL) into which tests write resources and their search_reference rows
// directly (without the indexer), for the white-box tests of includes and $everything. It counts
// the statements the code under test runs (ResourceStore::query and ::read calls).
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hearth/fhir/store.h"

namespace hearth::test {

struct RefRow {
  std::string param;
  std::string targetType;
  std::string targetId;
};

class TestWorld {
 public:
  virtual ~TestWorld() = default;
  // A fresh, empty store: "sqlite" or "postgres" (needs $HEARTH_TEST_PG_URL).
  static std::unique_ptr<TestWorld> create(const std::string& backend);
  // An existing store (benchmarks): a store URL as openStore takes it.
  static std::unique_ptr<TestWorld> open(const std::string& url);

  // Writes the next version of type/id (content {"resourceType","id","meta"} plus `extra` members
  // when given, e.g. ",\"status\":\"final\"") and replaces its index with reference rows.
  virtual void add(const std::string& type, const std::string& id, const std::string& lastUpdated,
                   const std::vector<RefRow>& refs, const std::string& extra = {}) = 0;
  // Writes a deletion version and removes the index rows.
  virtual void remove(const std::string& type, const std::string& id, const std::string& lastUpdated) = 0;
  // The store, counting statements (what the code under test uses).
  virtual fhir::ResourceStore& store() = 0;
  // The uncounted store, for writing in bulk.
  virtual fhir::ResourceStore& raw() = 0;
  // Statements run through store() so far.
  virtual long statements() const = 0;
};

// $HEARTH_TEST_PG_URL if set and non-empty.
std::optional<std::string> pgTestUrl();

}  // namespace hearth::test
