// Availability: the slots a clinic's working hours produce, as a scheduler would check them on a
// calendar: the right days, no slot in the lunch break or past closing, local time honoured.
#include <cppunit/extensions/HelperMacros.h>

#include <ctime>
#include <stdexcept>

#include "hearth/workflows/availability.h"

using namespace hearth::workflows;

namespace {
// Epoch microseconds of a UTC wall-clock time.
int64_t utc(int y, int mo, int d, int h = 0, int mi = 0) {
  std::tm t{};
  t.tm_year = y - 1900;
  t.tm_mon = mo - 1;
  t.tm_mday = d;
  t.tm_hour = h;
  t.tm_min = mi;
  return static_cast<int64_t>(timegm(&t)) * 1000000;
}
constexpr int64_t kMin = 60LL * 1000000;
}  // namespace

class AvailabilityTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(AvailabilityTest);
  CPPUNIT_TEST(testWeekOfClinicHours);
  CPPUNIT_TEST(testLocalOffset);
  CPPUNIT_TEST(testGapsAndPartialSlots);
  CPPUNIT_TEST(testRangeClipsSlots);
  CPPUNIT_TEST(testParsing);
  CPPUNIT_TEST(testValidationAndLimits);
  CPPUNIT_TEST(testOverlap);
  CPPUNIT_TEST_SUITE_END();

 public:
  // Mon-Fri 08:00-12:00 and 13:00-17:00 (lunch break), 30-minute slots: 16 a day, 80 a week,
  // none on the weekend or in the break.
  void testWeekOfClinicHours() {
    WorkingHours h;
    h.startMinute = 8 * 60;
    h.endMinute = 17 * 60;
    h.breaks = {{12 * 60, 13 * 60}};
    h.slotMinutes = 30;
    // 2026-12-07 is a Monday; the range covers Monday to Sunday.
    const auto slots = generateSlots(h, utc(2026, 12, 7), utc(2026, 12, 14));
    CPPUNIT_ASSERT_EQUAL(size_t(80), slots.size());
    CPPUNIT_ASSERT(slots.front() == (Interval{utc(2026, 12, 7, 8), utc(2026, 12, 7, 8, 30)}));
    CPPUNIT_ASSERT(slots.back() == (Interval{utc(2026, 12, 11, 16, 30), utc(2026, 12, 11, 17)}));
    const Interval lunch{utc(2026, 12, 7, 12), utc(2026, 12, 7, 13)};
    for (size_t i = 0; i < slots.size(); ++i) {
      CPPUNIT_ASSERT(!overlaps(slots[i], lunch));
      CPPUNIT_ASSERT_EQUAL(30 * kMin, slots[i].endUs - slots[i].startUs);
      if (i > 0) CPPUNIT_ASSERT(slots[i - 1].endUs <= slots[i].startUs);
      CPPUNIT_ASSERT(slots[i].startUs < utc(2026, 12, 12));  // nothing on Saturday or Sunday
    }
  }

  // Working hours are local: 09:00 at UTC+01:00 is 08:00Z; at UTC-05:00 it is 14:00Z.
  void testLocalOffset() {
    WorkingHours h;
    h.daysMask = 1;  // Mondays
    h.startMinute = 9 * 60;
    h.endMinute = 10 * 60;
    h.slotMinutes = 60;
    h.utcOffsetMinutes = 60;
    auto slots = generateSlots(h, utc(2026, 12, 6), utc(2026, 12, 9));
    CPPUNIT_ASSERT_EQUAL(size_t(1), slots.size());
    CPPUNIT_ASSERT_EQUAL(utc(2026, 12, 7, 8), slots[0].startUs);
    h.utcOffsetMinutes = -300;
    slots = generateSlots(h, utc(2026, 12, 6), utc(2026, 12, 9));
    CPPUNIT_ASSERT_EQUAL(size_t(1), slots.size());
    CPPUNIT_ASSERT_EQUAL(utc(2026, 12, 7, 14), slots[0].startUs);
    // Late-evening hours at +10:00 fall on the previous UTC day: Monday 01:00 local = Sunday 15:00Z.
    h.utcOffsetMinutes = 600;
    h.startMinute = 60;
    h.endMinute = 120;
    slots = generateSlots(h, utc(2026, 12, 6), utc(2026, 12, 9));
    CPPUNIT_ASSERT_EQUAL(size_t(1), slots.size());
    CPPUNIT_ASSERT_EQUAL(utc(2026, 12, 6, 15), slots[0].startUs);
  }

  // 20-minute slots with 5 minutes to clean the room, 08:00-09:00: 08:00, 08:25 (the 08:50 slot
  // would end after 09:00 and is left out).
  void testGapsAndPartialSlots() {
    WorkingHours h;
    h.daysMask = 1;
    h.startMinute = 8 * 60;
    h.endMinute = 9 * 60;
    h.slotMinutes = 20;
    h.gapMinutes = 5;
    const auto slots = generateSlots(h, utc(2026, 12, 7), utc(2026, 12, 8));
    CPPUNIT_ASSERT_EQUAL(size_t(2), slots.size());
    CPPUNIT_ASSERT_EQUAL(utc(2026, 12, 7, 8, 25), slots[1].startUs);
    CPPUNIT_ASSERT_EQUAL(utc(2026, 12, 7, 8, 45), slots[1].endUs);
  }

  // Only slots wholly inside the requested range: a range starting 10:10 skips the 10:00 slot.
  void testRangeClipsSlots() {
    WorkingHours h;
    h.startMinute = 10 * 60;
    h.endMinute = 11 * 60;
    h.slotMinutes = 30;
    const auto slots = generateSlots(h, utc(2026, 12, 7, 10, 10), utc(2026, 12, 7, 11));
    CPPUNIT_ASSERT_EQUAL(size_t(1), slots.size());
    CPPUNIT_ASSERT_EQUAL(utc(2026, 12, 7, 10, 30), slots[0].startUs);
    CPPUNIT_ASSERT(generateSlots(h, utc(2026, 12, 8), utc(2026, 12, 7)).empty());  // reversed range
  }

  void testParsing() {
    CPPUNIT_ASSERT_EQUAL(8 * 60 + 30, parseClock("08:30").value());
    CPPUNIT_ASSERT_EQUAL(24 * 60, parseClock("24:00").value());
    for (const char* bad : {"8:30", "08:60", "24:01", "25:00", "0830", "", "ab:cd", "08:30:00"})
      CPPUNIT_ASSERT_MESSAGE(bad, !parseClock(bad));
    CPPUNIT_ASSERT_EQUAL(0x1Fu, parseDays("mon-fri").value());
    CPPUNIT_ASSERT_EQUAL(0x41u, parseDays("mon,sun").value());
    CPPUNIT_ASSERT_EQUAL(0x61u, parseDays("sat-mon").value());  // wraps over the weekend
    for (const char* bad : {"", "monday", "mon,", "mon-xyz", "MON"}) CPPUNIT_ASSERT_MESSAGE(bad, !parseDays(bad));
  }

  void testValidationAndLimits() {
    WorkingHours h;
    CPPUNIT_ASSERT(validate(h).empty());
    WorkingHours bad = h;
    bad.endMinute = bad.startMinute;
    CPPUNIT_ASSERT(!validate(bad).empty());
    bad = h;
    bad.breaks = {{7 * 60, 9 * 60}};  // starts before opening
    CPPUNIT_ASSERT(!validate(bad).empty());
    bad = h;
    bad.breaks = {{10 * 60, 11 * 60}, {10 * 60 + 30, 12 * 60}};
    CPPUNIT_ASSERT(!validate(bad).empty());
    bad = h;
    bad.slotMinutes = 0;
    CPPUNIT_ASSERT(!validate(bad).empty());
    CPPUNIT_ASSERT_THROW(generateSlots(bad, 0, kMin), std::invalid_argument);
    // A hostile range (every minute for a century) is refused, not generated.
    WorkingHours dense;
    dense.daysMask = 0x7F;
    dense.startMinute = 0;
    dense.endMinute = 24 * 60;
    dense.slotMinutes = 1;
    CPPUNIT_ASSERT_THROW(generateSlots(dense, utc(2000, 1, 1), utc(2100, 1, 1)), std::length_error);
  }

  void testOverlap() {
    CPPUNIT_ASSERT(overlaps({0, 10}, {5, 15}));
    CPPUNIT_ASSERT(overlaps({0, 10}, {2, 3}));
    CPPUNIT_ASSERT(!overlaps({0, 10}, {10, 20}));  // back to back is not a double booking
    CPPUNIT_ASSERT(!overlaps({10, 20}, {0, 10}));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(AvailabilityTest);
