// FEFO lot choice as a pharmacist would check it: the lot that expires first goes first, expired
// lots are never dispensed, a short stock takes nothing.
#include <cppunit/extensions/HelperMacros.h>

#include <stdexcept>

#include "hearth/workflows/stock.h"

using namespace hearth::workflows;

class StockTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(StockTest);
  CPPUNIT_TEST(testFirstExpiryFirstOut);
  CPPUNIT_TEST(testExpiredLotsNeverUsed);
  CPPUNIT_TEST(testShortStockTakesNothing);
  CPPUNIT_TEST(testBadInput);
  CPPUNIT_TEST(testDates);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testFirstExpiryFirstOut() {
    const std::vector<Lot> lots = {{"B-200", "2027-06-30", 10}, {"A-100", "2027-01-31", 4}, {"C-300", "2027-01-31", 5}};
    const Allocation a = allocateFefo(lots, "2026-12-06", 12);
    CPPUNIT_ASSERT(a.ok);
    // Same expiry: lot id order (A-100 before C-300), both emptied before B-200 is touched.
    const std::vector<LotTake> want = {{"A-100", 4}, {"C-300", 5}, {"B-200", 3}};
    CPPUNIT_ASSERT(a.takes == want);
    CPPUNIT_ASSERT_EQUAL(int64_t(19), a.usable);
  }

  void testExpiredLotsNeverUsed() {
    const std::vector<Lot> lots = {{"OLD", "2026-12-05", 100}, {"TODAY", "2026-12-06", 2}, {"NEW", "2027-03-01", 5}};
    const Allocation a = allocateFefo(lots, "2026-12-06", 3);
    CPPUNIT_ASSERT(a.ok);
    const std::vector<LotTake> want = {{"TODAY", 2}, {"NEW", 1}};  // usable through its expiry date
    CPPUNIT_ASSERT(a.takes == want);
    CPPUNIT_ASSERT_EQUAL(int64_t(100), a.expired);
    CPPUNIT_ASSERT_EQUAL(int64_t(7), a.usable);
  }

  void testShortStockTakesNothing() {
    const std::vector<Lot> lots = {{"OLD", "2020-01-01", 50}, {"L1", "2027-01-01", 3}, {"EMPTY", "2026-12-31", 0}};
    const Allocation a = allocateFefo(lots, "2026-12-06", 4);
    CPPUNIT_ASSERT(!a.ok);
    CPPUNIT_ASSERT(a.takes.empty());
    CPPUNIT_ASSERT_EQUAL(int64_t(3), a.usable);
    CPPUNIT_ASSERT_EQUAL(int64_t(50), a.expired);
    CPPUNIT_ASSERT(!allocateFefo({}, "2026-12-06", 1).ok);
  }

  void testBadInput() {
    const std::vector<Lot> lots = {{"L1", "2027-01-01", 3}};
    CPPUNIT_ASSERT_THROW(allocateFefo(lots, "2026-12-06", 0), std::invalid_argument);
    CPPUNIT_ASSERT_THROW(allocateFefo(lots, "2026-12-06", -5), std::invalid_argument);
    CPPUNIT_ASSERT_THROW(allocateFefo(lots, "06.12.2026", 1), std::invalid_argument);
    CPPUNIT_ASSERT_THROW(allocateFefo({{"X", "2027-02-30", 1}}, "2026-12-06", 1), std::invalid_argument);
  }

  void testDates() {
    CPPUNIT_ASSERT_EQUAL(std::string("2027-01-05"), addDays("2026-12-06", 30));
    CPPUNIT_ASSERT_EQUAL(std::string("2028-02-29"), addDays("2028-02-28", 1));
    CPPUNIT_ASSERT_EQUAL(std::string("2027-03-01"), addDays("2027-02-28", 1));
    CPPUNIT_ASSERT_EQUAL(std::string("2026-11-30"), addDays("2026-12-01", -1));
    CPPUNIT_ASSERT(isIsoDate("2000-02-29"));
    CPPUNIT_ASSERT(!isIsoDate("1900-02-29"));
    CPPUNIT_ASSERT(!isIsoDate("2026-13-01"));
    CPPUNIT_ASSERT(!isIsoDate("2026-1-01"));
    CPPUNIT_ASSERT_THROW(addDays("x", 1), std::invalid_argument);
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(StockTest);
