#pragma once
// Pharmacy stock arithmetic: which lots a dispense takes (FEFO: first expiry, first out), and the
// stock report figures. The server applies the allocation to the stock rows in the transaction
// of the dispense (so concurrent dispenses serialise and stock never goes negative); this file
// only decides, with no store or clock.
//
// Quantities are whole dispensing units (tablets, vials, ml as the Medication's unit says).
// Expiry dates are ISO dates (YYYY-MM-DD); a lot may be used up to and including its expiry date.
#include <cstdint>
#include <string>
#include <vector>

namespace hearth::workflows {

struct Lot {
  std::string id;      // lot (batch) number
  std::string expiry;  // YYYY-MM-DD
  int64_t quantity = 0;
};

struct LotTake {
  std::string lotId;
  int64_t quantity = 0;
  bool operator==(const LotTake&) const = default;
};

struct Allocation {
  bool ok = false;
  std::vector<LotTake> takes;  // when ok: the lots to decrement, earliest expiry first
  int64_t usable = 0;          // units in lots that have not expired (what could be dispensed)
  int64_t expired = 0;         // units on hand in expired lots (never dispensed)
};

// FEFO allocation of `quantity` (> 0) units on `today` (YYYY-MM-DD): unexpired lots by expiry
// date, then lot id (a stable order), each emptied before the next is touched. Not ok when the
// unexpired stock is short (nothing is taken). Lots with zero or negative quantity are skipped.
// Throws std::invalid_argument for quantity <= 0 or a malformed date.
Allocation allocateFefo(const std::vector<Lot>& lots, const std::string& today, int64_t quantity);

// The date `days` days after an ISO date (YYYY-MM-DD); throws std::invalid_argument if malformed.
std::string addDays(const std::string& isoDate, int days);
// True when the text is a real calendar date in YYYY-MM-DD form.
bool isIsoDate(const std::string& s);

}  // namespace hearth::workflows
