// White-box cases of the store plumbing that need no database: store URLs and FHIR instants.
#include <cppunit/extensions/HelperMacros.h>

#include "hearth/fhir/store.h"
#include "store_common.h"

using namespace hearth::fhir;
using hearth::fhir::storeimpl::parseInstantMicros;
using hearth::fhir::storeimpl::postgresConnectionString;
using hearth::fhir::storeimpl::sqlitePathFromUrl;

class StoreUrlTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(StoreUrlTest);
  CPPUNIT_TEST(testPostgresBasic);
  CPPUNIT_TEST(testPostgresEscapesAndParams);
  CPPUNIT_TEST(testPostgresHosts);
  CPPUNIT_TEST(testPostgresRejectsWhitespace);
  CPPUNIT_TEST(testSqlitePaths);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testPostgresBasic() {
    CPPUNIT_ASSERT_EQUAL(std::string("user=postgres host=127.0.0.1 port=5432 dbname=hearth_test "
                                     "application_name=hearth client_encoding=UTF8 connect_timeout=10"),
                         postgresConnectionString("postgresql://postgres@127.0.0.1:5432/hearth_test"));
    CPPUNIT_ASSERT_EQUAL(std::string("host=localhost dbname=db application_name=hearth client_encoding=UTF8 "
                                     "connect_timeout=10"),
                         postgresConnectionString("postgres://localhost/db"));
  }

  void testPostgresEscapesAndParams() {
    // Percent-escapes decoded; quote and backslash escaped for libpq; query parameters passed on
    // and allowed to override the defaults.
    CPPUNIT_ASSERT_EQUAL(
        std::string(
            "user=u@x password=p\\'w\\\\d:1 host=db.example port=6543 dbname=my-db sslmode=require "
            "application_name=node1 options=--search_path=s1 client_encoding=UTF8 connect_timeout=10"),
        postgresConnectionString("postgres://u%40x:p%27w%5Cd:1@db.example:6543/my%2Ddb?sslmode=require&"
                                 "application_name=node1&options=--search_path%3Ds1"));
  }

  void testPostgresHosts() {
    CPPUNIT_ASSERT_EQUAL(
        std::string("host=::1 port=5433 dbname=db application_name=hearth client_encoding=UTF8 "
                    "connect_timeout=10"),
        postgresConnectionString("postgresql://[::1]:5433/db"));
    CPPUNIT_ASSERT_EQUAL(
        std::string("host=a,b port=5432, dbname=db application_name=hearth client_encoding=UTF8 "
                    "connect_timeout=10"),
        postgresConnectionString("postgresql://a:5432,b/db"));
  }

  void testPostgresRejectsWhitespace() {
    CPPUNIT_ASSERT_THROW(postgresConnectionString("postgresql://u:p%20w@h/db"), StoreUnavailable);
    CPPUNIT_ASSERT_THROW(postgresConnectionString("postgresql://h/db?options=-c%20x%3Dy"), StoreUnavailable);
    CPPUNIT_ASSERT_THROW(postgresConnectionString("postgresql://h/db?bad%20key=1"), StoreUnavailable);
    CPPUNIT_ASSERT_THROW(postgresConnectionString("postgresql://h/db%zz"), StoreUnavailable);
    CPPUNIT_ASSERT_THROW(postgresConnectionString("mysql://h/db"), StoreUnavailable);
  }

  void testSqlitePaths() {
    CPPUNIT_ASSERT_EQUAL(std::string("/var/lib/hearth/hearth.db"),
                         sqlitePathFromUrl("sqlite:/var/lib/hearth/hearth.db"));
    CPPUNIT_ASSERT_EQUAL(std::string("data/hearth.db"), sqlitePathFromUrl("sqlite:data/hearth.db"));
    CPPUNIT_ASSERT_EQUAL(std::string("/abs/hearth.db"), sqlitePathFromUrl("sqlite:///abs/hearth.db"));
    CPPUNIT_ASSERT_THROW(sqlitePathFromUrl("sqlite:"), StoreUnavailable);
    CPPUNIT_ASSERT_THROW(sqlitePathFromUrl("sqlite::memory:"), StoreUnavailable);
    CPPUNIT_ASSERT_THROW(sqlitePathFromUrl("sqlite3:x.db"), StoreUnavailable);
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(StoreUrlTest);

class InstantTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(InstantTest);
  CPPUNIT_TEST(testValidInstants);
  CPPUNIT_TEST(testInvalidInstants);
  CPPUNIT_TEST(testDateForms);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testValidInstants() {
    CPPUNIT_ASSERT_EQUAL(int64_t(0), *instantToEpochMicros("1970-01-01T00:00:00Z"));
    CPPUNIT_ASSERT_EQUAL(int64_t(1500000), *instantToEpochMicros("1970-01-01T00:00:01.5Z"));
    CPPUNIT_ASSERT_EQUAL(int64_t(-1), *instantToEpochMicros("1969-12-31T23:59:59.999999Z"));
    CPPUNIT_ASSERT_EQUAL(int64_t(1704067200000000), *instantToEpochMicros("2024-01-01T00:00:00.000Z"));
    CPPUNIT_ASSERT_EQUAL(*instantToEpochMicros("2024-01-01T00:00:00Z"),
                         *instantToEpochMicros("2024-01-01T01:00:00+01:00"));
    CPPUNIT_ASSERT_EQUAL(*instantToEpochMicros("2024-01-01T00:00:00Z"),
                         *instantToEpochMicros("2023-12-31T19:30:00-04:30"));
    CPPUNIT_ASSERT_EQUAL(int64_t(123456),
                         *instantToEpochMicros("1970-01-01T00:00:00.1234567Z"));  // truncated to us
    CPPUNIT_ASSERT(instantToEpochMicros("2024-02-29T12:00:00Z"));                 // leap year
    CPPUNIT_ASSERT(instantToEpochMicros("2000-02-29T12:00:00Z"));
    CPPUNIT_ASSERT_EQUAL(int64_t(951782400000000), *instantToEpochMicros("2000-02-29T00:00:00Z"));
  }

  void testInvalidInstants() {
    for (const char* bad :
         {"", "2024", "2024-01-01", "2024-01-01T00:00:00", "2024-01-01T00:00Z", "2024-01-01 00:00:00Z",
          "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2024-00-10T00:00:00Z",
          "2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z", "2024-01-01T00:00:00.Z",
          "2024-01-01T00:00:00+15:00", "2024-01-01T00:00:00+0100", "2024-01-01T00:00:00Zjunk",
          "24-01-01T00:00:00Z", "abcd-01-01T00:00:00Z"}) {
      CPPUNIT_ASSERT_MESSAGE(bad, !instantToEpochMicros(bad));
    }
  }

  void testDateForms() {
    CPPUNIT_ASSERT_EQUAL(int64_t(1704067200000000), *parseInstantMicros("2024", true));
    CPPUNIT_ASSERT_EQUAL(int64_t(1706745600000000), *parseInstantMicros("2024-02", true));
    CPPUNIT_ASSERT_EQUAL(int64_t(1709164800000000), *parseInstantMicros("2024-02-29", true));
    CPPUNIT_ASSERT(!parseInstantMicros("2024-02-30", true));
    CPPUNIT_ASSERT(!parseInstantMicros("2024-2", true));
  }
};
CPPUNIT_TEST_SUITE_REGISTRATION(InstantTest);
