#include "hearth/workflows/stock.h"

#include <algorithm>
#include <stdexcept>

#include "hearth/fhir/search_index.h"
#include "workflow_support.h"

namespace hearth::workflows {

bool isIsoDate(const std::string& s) {
  int64_t lo = 0, hi = 0;
  return s.size() == 10 && fhir::fhirDateRange(s, lo, hi);
}

std::string addDays(const std::string& iso, int days) {
  int64_t lo = 0, hi = 0;
  if (iso.size() != 10 || !fhir::fhirDateRange(iso, lo, hi)) throw std::invalid_argument("not a date (YYYY-MM-DD)");
  // A date's range starts at its midnight, UTC.
  return detail::isoUtc(lo + int64_t{days} * 86400 * 1000000).substr(0, 10);
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
