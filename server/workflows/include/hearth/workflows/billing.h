#pragma once
// Invoice/$generate (issue 6 item 4): bill the billable ChargeItems of an encounter (or of a
// patient over a period) as one Invoice, computed exactly (Decimal, never floating point), in one
// atomic unit with the ChargeItems moving to status billed, so two concurrent $generate calls
// cannot bill an item twice.
//
// Input: a Parameters resource with
//   encounter  valueReference Encounter/<id>          (the ChargeItems whose context is it), or
//   patient    valueReference Patient/<id> plus optional periodStart / periodEnd (valueDate or
//              valueDateTime: ChargeItems whose occurrence falls in it)
//   taxRate    valueDecimal (e.g. 0.19), optional: applied to lines whose definition has no tax
// Pricing of a ChargeItem (status billable; others are ignored):
//   unit price = priceOverride, else the base priceComponent of the ChargeItemDefinition named by
//   definitionCanonical (url[|version]); quantity = quantity.value (1 if absent);
//   factorOverride multiplies. base = unit price x quantity x factor, rounded to cents.
//   The definition's other priceComponents of its first propertyGroup apply to the base:
//   surcharge and discount (amount x quantity, or factor x base), then tax (factor x (base +
//   surcharge - discount)); each rounded to cents, half-up.
//   totalNet = sum of (base + surcharge - discount); totalGross = totalNet + sum of tax.
// Output: the created Invoice (status issued, subject, date, one lineItem per ChargeItem with its
// price components, totalNet, totalGross). 422 when nothing is billable, when prices are missing
// or currencies mixed; 400 for malformed parameters.
#include <string>

#include "hearth/fhir/search.h"
#include "hearth/fhir/service.h"

namespace hearth::workflows {

// Returns the created Invoice's version (created = true).
fhir::WriteOutcome generateInvoice(fhir::ResourceService& service, fhir::SearchEngine& search,
                                 const std::string& parametersJson);

// Payments against an issued Invoice:
//   POST Invoice/<id>/$pay with Parameters amount (valueMoney, > 0, the Invoice's currency) and
//   optionally method (valueString): records a PaymentReconciliation (detail.request = the
//   Invoice) and the payment, in one unit serialised per Invoice; the Invoice turns balanced when
//   nothing is outstanding. More than the outstanding balance -> 422; a balanced, draft or
//   cancelled Invoice -> 422.
//   GET Invoice/<id>/$balance: the same figures without paying.
// Both answer Parameters: totalGross, paid, outstanding (valueMoney) and status (valueCode).
std::string payInvoice(fhir::ResourceService& service, const std::string& invoiceId, const std::string& parametersJson);
std::string invoiceBalance(fhir::ResourceService& service, const std::string& invoiceId);

// POST Invoice/<id>/$claim, optional Parameters coverage (valueReference Coverage/<id>) and
// provider (valueReference Organization|Practitioner|PractitionerRole/<id>): creates the Claim
// for the Invoice to the patient's insurer, in one unit serialised per Invoice:
//   - the Invoice must be issued or balanced, its subject a Patient;
//   - the Coverage: the one named, else the patient's (beneficiary) active Coverages whose period
//     (if any) includes today, lowest `order` first; its payor must include an Organization (the
//     insurer): self-pay Coverages (payor Patient/RelatedPerson) are not claimable (422);
//   - Claim: status active, use claim, type institutional, priority normal, created now, patient,
//     insurer (the payor Organization), provider (the parameter, else the Invoice's issuer; 422
//     without either), insurance [{sequence 1, focal true, coverage}], one item per Invoice line
//     (sequence, productOrService = the ChargeItem's code, net = the line's base + surcharge -
//     discount + tax, exact decimals as on the Invoice) and total = the Invoice's totalGross (the
//     items add up to it exactly), identifier urn:hearth:invoice-claim|<invoice id>;
//   - one live Claim per Invoice: a second $claim while one exists that is not cancelled or
//     entered-in-error -> 409 naming it.
// Returns the created Claim's version.
fhir::WriteOutcome claimInvoice(fhir::ResourceService& service, const std::string& invoiceId,
                                const std::string& parametersJson);

}  // namespace hearth::workflows
