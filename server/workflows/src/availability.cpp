#include "hearth/workflows/availability.h"

#include <algorithm>
#include <stdexcept>

namespace hearth::workflows {

namespace {
constexpr int64_t kMinuteUs = 60LL * 1000 * 1000;
constexpr int64_t kDayUs = 24 * 60 * kMinuteUs;

int64_t floorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

const char* const kDays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

int dayIndex(std::string_view d) {
  for (int i = 0; i < 7; ++i)
    if (d == kDays[i]) return i;
  return -1;
}
}  // namespace

std::optional<int> parseClock(std::string_view s) {
  if (s.size() != 5 || s[2] != ':') return std::nullopt;
  for (size_t i : {0u, 1u, 3u, 4u})
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
  const int h = (s[0] - '0') * 10 + (s[1] - '0');
  const int m = (s[3] - '0') * 10 + (s[4] - '0');
  if (m > 59 || h > 24 || (h == 24 && m != 0)) return std::nullopt;
  return h * 60 + m;
}

std::optional<unsigned> parseDays(std::string_view s) {
  unsigned mask = 0;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    if (comma == std::string_view::npos) comma = s.size();
    const std::string_view item = s.substr(pos, comma - pos);
    const size_t dash = item.find('-');
    if (dash == std::string_view::npos) {
      const int d = dayIndex(item);
      if (d < 0) return std::nullopt;
      mask |= 1u << d;
    } else {
      const int a = dayIndex(item.substr(0, dash)), b = dayIndex(item.substr(dash + 1));
      if (a < 0 || b < 0) return std::nullopt;
      for (int d = a;; d = (d + 1) % 7) {  // "sat-mon" wraps over the week end
        mask |= 1u << d;
        if (d == b) break;
      }
    }
    pos = comma + 1;
  }
  return mask == 0 ? std::nullopt : std::optional<unsigned>(mask);
}

std::string validate(const WorkingHours& h) {
  if (h.daysMask == 0 || h.daysMask > 0x7F) return "no valid day of the week";
  if (h.startMinute < 0 || h.endMinute > 24 * 60 || h.startMinute >= h.endMinute) return "the hours end before they start";
  if (h.slotMinutes < 1 || h.slotMinutes > 24 * 60) return "the slot length must be 1 to 1440 minutes";
  if (h.gapMinutes < 0 || h.gapMinutes > 24 * 60) return "the gap between slots must be 0 to 1440 minutes";
  if (h.utcOffsetMinutes < -14 * 60 || h.utcOffsetMinutes > 14 * 60) return "the UTC offset must be within 14 hours";
  std::vector<std::pair<int, int>> breaks = h.breaks;
  std::sort(breaks.begin(), breaks.end());
  for (size_t i = 0; i < breaks.size(); ++i) {
    const auto [bs, be] = breaks[i];
    if (bs >= be) return "a break ends before it starts";
    if (bs < h.startMinute || be > h.endMinute) return "a break lies outside the working hours";
    if (i > 0 && bs < breaks[i - 1].second) return "two breaks overlap";
  }
  return {};
}

std::vector<Interval> generateSlots(const WorkingHours& h, int64_t fromUs, int64_t toUs, size_t maxSlots) {
  if (const std::string why = validate(h); !why.empty()) throw std::invalid_argument(why);
  std::vector<Interval> out;
  if (fromUs >= toUs) return out;
  std::vector<std::pair<int, int>> breaks = h.breaks;
  std::sort(breaks.begin(), breaks.end());
  // The working periods of one day: the hours minus the breaks, in local minutes.
  std::vector<std::pair<int, int>> periods;
  int cursor = h.startMinute;
  for (const auto& [bs, be] : breaks) {
    if (bs > cursor) periods.emplace_back(cursor, bs);
    cursor = std::max(cursor, be);
  }
  if (cursor < h.endMinute) periods.emplace_back(cursor, h.endMinute);

  const int64_t offsetUs = h.utcOffsetMinutes * kMinuteUs;
  // Local days that can hold a slot inside [from, to); one day of margin each side for offsets.
  const int64_t firstDay = floorDiv(fromUs + offsetUs, kDayUs) - 1;
  const int64_t lastDay = floorDiv(toUs + offsetUs, kDayUs) + 1;
  for (int64_t day = firstDay; day <= lastDay; ++day) {
    // 1970-01-01 was a Thursday (index 3 with Monday = 0).
    const int weekday = static_cast<int>(((day % 7) + 7 + 3) % 7);
    if (!(h.daysMask & (1u << weekday))) continue;
    const int64_t localMidnightUtc = day * kDayUs - offsetUs;
    for (const auto& [ps, pe] : periods) {
      for (int m = ps; m + h.slotMinutes <= pe; m += h.slotMinutes + h.gapMinutes) {
        const Interval slot{localMidnightUtc + m * kMinuteUs, localMidnightUtc + (m + h.slotMinutes) * kMinuteUs};
        if (slot.startUs < fromUs || slot.endUs > toUs) continue;
        if (out.size() >= maxSlots) throw std::length_error("too many slots for one request; shorten the period");
        out.push_back(slot);
      }
    }
  }
  return out;
}

}  // namespace hearth::workflows
