#pragma once
// Availability: the slots a practitioner (or room, or service) offers, generated from working
// hours, and the pure checks booking relies on. The server turns the intervals into FHIR Slot
// resources of a Schedule ($generate-slots) and books Appointments against them; these functions
// hold the arithmetic, with no store or clock.
//
// Times are epoch microseconds UTC, intervals half-open [start, end). Working hours are written in
// the schedule's local wall-clock time with a fixed UTC offset (minutes east of UTC), e.g. +60
// for CET. A fixed offset does not follow daylight-saving changes: a schedule that spans a change
// is generated in two runs with the two offsets (documented for operators).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::workflows {

struct Interval {
  int64_t startUs = 0;
  int64_t endUs = 0;  // exclusive
  bool operator==(const Interval&) const = default;
};

// Half-open intervals overlap when each starts before the other ends (touching ends do not).
inline bool overlaps(const Interval& a, const Interval& b) { return a.startUs < b.endUs && b.startUs < a.endUs; }

struct WorkingHours {
  // Days of the week it applies to, bit 0 = Monday ... bit 6 = Sunday.
  unsigned daysMask = 0x1F;  // Monday to Friday
  int startMinute = 8 * 60;  // minutes after local midnight
  int endMinute = 17 * 60;   // exclusive; > startMinute, <= 24*60
  // Breaks inside the hours (lunch), local minutes after midnight, half-open.
  std::vector<std::pair<int, int>> breaks;
  int slotMinutes = 15;       // slot length, > 0
  int gapMinutes = 0;         // free time after each slot (cleaning a room), >= 0
  int utcOffsetMinutes = 0;   // local time = UTC + offset
};

// Parses "HH:MM" (00:00..24:00) into minutes after midnight; nullopt when malformed.
std::optional<int> parseClock(std::string_view hhmm);
// Parses a days list such as "mon,tue,wed" or "mon-fri" (FHIR daysOfWeek codes) into a mask.
std::optional<unsigned> parseDays(std::string_view days);

// Why a WorkingHours is unusable (empty when it is fine): end before start, a break outside the
// hours or overlapping another, slot length out of range (1..1440), offset beyond +-14 h.
std::string validate(const WorkingHours& hours);

// The slots of `hours` that lie entirely within [fromUs, toUs), in time order. Slots never cross
// a break or the end of the day; a slot that would not fit whole is left out. At most maxSlots
// (std::length_error beyond, so a hostile range cannot exhaust memory). Throws
// std::invalid_argument when validate(hours) is not empty.
std::vector<Interval> generateSlots(const WorkingHours& hours, int64_t fromUs, int64_t toUs, size_t maxSlots = 100000);

}  // namespace hearth::workflows
