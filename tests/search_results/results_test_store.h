#pragma once
// TestWorld: a ResourceStore holding resources and their search_reference rows, written directly
// (without the indexer), for the white-box tests of includes and $everything. It also counts the
// statements the code under test runs (ResourceStore::query and ::read calls).
#include <memory>
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
  // A fresh, empty world.
  static std::unique_ptr<TestWorld> create();
  // An existing SQLite file that already holds the schema (benchmarks).
  static std::unique_ptr<TestWorld> openSqliteFile(const std::string& path);

  // Writes the next version of type/id (content {"resourceType","id","meta"}) and replaces its
  // reference rows.
  virtual void add(const std::string& type, const std::string& id, const std::string& lastUpdated,
                   const std::vector<RefRow>& refs) = 0;
  // Writes a deletion version and removes the reference rows.
  virtual void remove(const std::string& type, const std::string& id, const std::string& lastUpdated) = 0;
  virtual fhir::ResourceStore& store() = 0;
  // Statements run through store() so far.
  virtual long statements() const = 0;
};

}  // namespace hearth::test
