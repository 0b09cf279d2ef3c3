#include "hearth/workflows/stock.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace hearth::workflows {

namespace {
bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
int daysIn(int y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : kDays[m - 1];
}

// Days since 1970-01-01 of a civil date and back (proleptic Gregorian).
int64_t toDays(int y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}
void fromDays(int64_t z, int& y, int& m, int& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  y = static_cast<int>(yoe + era * 400 + (m <= 2));
}

bool parseDate(const std::string& s, int& y, int& m, int& d) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  for (size_t i : {0u, 1u, 2u, 3u, 5u, 6u, 8u, 9u})
    if (s[i] < '0' || s[i] > '9') return false;
  y = std::stoi(s.substr(0, 4));
  m = std::stoi(s.substr(5, 2));
  d = std::stoi(s.substr(8, 2));
  return m >= 1 && m <= 12 && d >= 1 && d <= daysIn(y, m);
}
}  // namespace

bool isIsoDate(const std::string& s) {
  int y, m, d;
  return parseDate(s, y, m, d);
}

std::string addDays(const std::string& iso, int days) {
  int y, m, d;
  if (!parseDate(iso, y, m, d)) throw std::invalid_argument("not a date (YYYY-MM-DD)");
  fromDays(toDays(y, m, d) + days, y, m, d);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
  return buf;
}

Allocation allocateFefo(const std::vector<Lot>& lots, const std::string& today, int64_t quantity) {
  if (quantity <= 0) throw std::invalid_argument("the quantity to dispense must be positive");
  if (!isIsoDate(today)) throw std::invalid_argument("not a date (YYYY-MM-DD)");
  std::vector<const Lot*> usable;
  Allocation a;
  for (const Lot& l : lots) {
    if (l.quantity <= 0) continue;
    if (!isIsoDate(l.expiry)) throw std::invalid_argument("lot " + l.id + " has no valid expiry date");
    // ISO dates compare as text in date order.
    if (l.expiry < today) {
      a.expired += l.quantity;
    } else {
      a.usable += l.quantity;
      usable.push_back(&l);
    }
  }
  if (a.usable < quantity) return a;
  std::sort(usable.begin(), usable.end(), [](const Lot* x, const Lot* y) {
    return x->expiry != y->expiry ? x->expiry < y->expiry : x->id < y->id;
  });
  int64_t left = quantity;
  for (const Lot* l : usable) {
    if (left == 0) break;
    const int64_t take = std::min(left, l->quantity);
    a.takes.push_back({l->id, take});
    left -= take;
  }
  a.ok = true;
  return a;
}

}  // namespace hearth::workflows
