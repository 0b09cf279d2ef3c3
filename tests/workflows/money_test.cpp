// Decimal: the exact arithmetic invoices are computed with. What a billing clerk would check:
// amounts keep their cents, sums are exact where binary floating point is not, taxes round the
// way the rounding mode says, and nonsense text or values out of range are refused.
#include <cppunit/extensions/HelperMacros.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "hearth/workflows/money.h"

using hearth::workflows::Decimal;
using hearth::workflows::Rounding;

namespace {
Decimal d(const char* s) { return Decimal::parse(s); }
std::string str(const Decimal& v) { return v.toString(); }
}  // namespace

class MoneyTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(MoneyTest);
  CPPUNIT_TEST(testParseKeepsWrittenScale);
  CPPUNIT_TEST(testParseRefusesWhatFhirRefuses);
  CPPUNIT_TEST(testExactSums);
  CPPUNIT_TEST(testProducts);
  CPPUNIT_TEST(testRoundingModes);
  CPPUNIT_TEST(testDivide);
  CPPUNIT_TEST(testComparison);
  CPPUNIT_TEST(testRange);
  CPPUNIT_TEST(testInvoiceLikeTotals);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testParseKeepsWrittenScale() {
    CPPUNIT_ASSERT_EQUAL(std::string("10.50"), str(d("10.50")));
    CPPUNIT_ASSERT_EQUAL(std::string("0"), str(d("0")));
    CPPUNIT_ASSERT_EQUAL(std::string("-0.05"), str(d("-0.05")));
    CPPUNIT_ASSERT_EQUAL(std::string("1250"), str(d("1.25e3")));
    CPPUNIT_ASSERT_EQUAL(std::string("0.0125"), str(d("1.25E-2")));
    CPPUNIT_ASSERT_EQUAL(std::string("123456789012345678901234567890.12345678"),
                         str(d("123456789012345678901234567890.12345678")));
    CPPUNIT_ASSERT_EQUAL(2, d("3.00").scale());
  }

  void testParseRefusesWhatFhirRefuses() {
    for (const char* bad : {"", "-", "01", "1.", ".5", "1..2", "+1", "1e", "1e+", "abc", "1,5", " 1", "1 ", "0x10",
                            "NaN", "Infinity", "1.5.5", "--1", "1e-19", "0.0000000000000000001"}) {
      Decimal out;
      CPPUNIT_ASSERT_MESSAGE(bad, !Decimal::tryParse(bad, out));
      CPPUNIT_ASSERT_THROW_MESSAGE(bad, Decimal::parse(bad), std::invalid_argument);
    }
    // 39 significant digits do not fit; 38 do (leading zeros do not count).
    CPPUNIT_ASSERT_THROW(d("123456789012345678901234567890123456789"), std::invalid_argument);
    CPPUNIT_ASSERT_NO_THROW(d("12345678901234567890123456789012345678"));
    CPPUNIT_ASSERT_NO_THROW(d("0.000000000000000001"));
  }

  void testExactSums() {
    // The classic binary floating point failure: 0.1 + 0.2 != 0.3.
    CPPUNIT_ASSERT(d("0.1") + d("0.2") == d("0.3"));
    CPPUNIT_ASSERT_EQUAL(std::string("0.3"), str(d("0.1") + d("0.2")));
    Decimal total;
    for (int i = 0; i < 1000; ++i) total += d("0.01");
    CPPUNIT_ASSERT_EQUAL(std::string("10.00"), str(total));
    CPPUNIT_ASSERT_EQUAL(std::string("-0.99"), str(d("0.01") - d("1")));
    CPPUNIT_ASSERT_EQUAL(std::string("1.005"), str(d("1") + d("0.005")));  // the finer scale wins
  }

  void testProducts() {
    CPPUNIT_ASSERT_EQUAL(std::string("3.5970"), str(d("1.199") * d("3.0")));
    CPPUNIT_ASSERT_EQUAL(std::string("-2.50"), str(d("-0.5") * d("5.0")));
    // 19 % VAT of 19.99: 3.7981 exactly, 3.80 once rounded to cents.
    CPPUNIT_ASSERT_EQUAL(std::string("3.7981"), str(d("19.99") * d("0.19")));
    CPPUNIT_ASSERT_EQUAL(std::string("3.80"), str((d("19.99") * d("0.19")).round(2)));
    // Products beyond 18 decimals round (half-even) to 18.
    CPPUNIT_ASSERT_EQUAL(std::string("0.000000000000000000"), str(d("0.000000001") * d("0.0000000001")));
    CPPUNIT_ASSERT_EQUAL(std::string("0.000000000000000002"), str(d("0.0000000015") * d("0.000000001")));  // 1.5e-18: tie, to even
  }

  void testRoundingModes() {
    CPPUNIT_ASSERT_EQUAL(std::string("0.13"), str(d("0.125").round(2, Rounding::HalfUp)));
    CPPUNIT_ASSERT_EQUAL(std::string("-0.13"), str(d("-0.125").round(2, Rounding::HalfUp)));
    CPPUNIT_ASSERT_EQUAL(std::string("0.12"), str(d("0.125").round(2, Rounding::HalfEven)));
    CPPUNIT_ASSERT_EQUAL(std::string("0.14"), str(d("0.135").round(2, Rounding::HalfEven)));
    CPPUNIT_ASSERT_EQUAL(std::string("-0.12"), str(d("-0.125").round(2, Rounding::HalfEven)));
    CPPUNIT_ASSERT_EQUAL(std::string("0.12"), str(d("0.1299").round(2, Rounding::Down)));
    CPPUNIT_ASSERT_EQUAL(std::string("-0.12"), str(d("-0.1299").round(2, Rounding::Down)));
    CPPUNIT_ASSERT_EQUAL(std::string("0.13"), str(d("0.1251").round(2, Rounding::HalfEven)));  // not a tie
    CPPUNIT_ASSERT_EQUAL(std::string("3.00"), str(d("3").round(2)));
    CPPUNIT_ASSERT_EQUAL(std::string("1"), str(d("0.5").round(0)));
    CPPUNIT_ASSERT_EQUAL(std::string("0"), str(d("0.5").round(0, Rounding::HalfEven)));
    CPPUNIT_ASSERT_EQUAL(std::string("10"), str(d("9.995").round(0)));
    CPPUNIT_ASSERT_EQUAL(std::string("10.00"), str(d("9.995").round(2)));
    CPPUNIT_ASSERT_THROW(d("1").round(-1), std::invalid_argument);
    CPPUNIT_ASSERT_THROW(d("1").round(19), std::invalid_argument);
  }

  void testDivide() {
    CPPUNIT_ASSERT_EQUAL(std::string("33.33"), str(Decimal::divide(d("100"), d("3"), 2)));
    CPPUNIT_ASSERT_EQUAL(std::string("66.67"), str(Decimal::divide(d("200"), d("3"), 2)));
    CPPUNIT_ASSERT_EQUAL(std::string("-66.67"), str(Decimal::divide(d("-200"), d("3"), 2)));
    CPPUNIT_ASSERT_EQUAL(std::string("0.12"), str(Decimal::divide(d("0.25"), d("2"), 2, Rounding::HalfEven)));
    CPPUNIT_ASSERT_EQUAL(std::string("0.13"), str(Decimal::divide(d("0.25"), d("2"), 2, Rounding::HalfUp)));
    // Net from a gross price including 19 % tax.
    CPPUNIT_ASSERT_EQUAL(std::string("100.00"), str(Decimal::divide(d("119.00"), d("1.19"), 2)));
    CPPUNIT_ASSERT_EQUAL(std::string("2.5"), str(Decimal::divide(d("0.05"), d("0.02"), 1)));
    CPPUNIT_ASSERT_THROW(Decimal::divide(d("1"), d("0.00"), 2), std::domain_error);
  }

  void testComparison() {
    CPPUNIT_ASSERT(d("1.5") == d("1.50"));
    CPPUNIT_ASSERT(d("-1") < d("0"));
    CPPUNIT_ASSERT(d("0.001") > d("0"));
    CPPUNIT_ASSERT(d("-0.001") < d("-0.0001"));
    CPPUNIT_ASSERT(d("10000000000000000000000000000000000000") > d("0.000000000000000001"));
    CPPUNIT_ASSERT(d("-10000000000000000000000000000000000000") < d("-0.000000000000000001"));
    CPPUNIT_ASSERT(d("0") == Decimal());
  }

  void testRange() {
    const Decimal big = d("99999999999999999999999999999999999999");
    CPPUNIT_ASSERT_THROW(big + d("1"), std::overflow_error);
    CPPUNIT_ASSERT_THROW(big * d("10"), std::overflow_error);
    CPPUNIT_ASSERT_THROW(big.round(2), std::overflow_error);  // 40 digits at two decimals
    CPPUNIT_ASSERT_NO_THROW(big - d("1"));
  }

  // An invoice with awkward prices: 3 x 33.333 (rounded per line), 19 % tax on each line, a 10 %
  // discount on one; totals to the cent, and they agree however the lines are ordered.
  void testInvoiceLikeTotals() {
    struct Line {
      const char* unitPrice;
      const char* quantity;
      const char* discount;  // fraction
    };
    const std::vector<Line> lines = {{"33.333", "3", "0"}, {"0.015", "7", "0"}, {"12.345", "1", "0.10"}};
    Decimal net, tax;
    for (const Line& l : lines) {
      const Decimal base = (d(l.unitPrice) * d(l.quantity)).round(2);
      const Decimal discount = (base * d(l.discount)).round(2);
      const Decimal lineNet = base - discount;
      net += lineNet;
      tax += (lineNet * d("0.19")).round(2);
    }
    // 100.00 (99.999) + 0.11 (0.105) + 12.35 - 1.24 (1.235) = 111.22; tax 19.00 + 0.02 + 2.11 = 21.13.
    CPPUNIT_ASSERT_EQUAL(std::string("111.22"), str(net));
    CPPUNIT_ASSERT_EQUAL(std::string("21.13"), str(tax));
    CPPUNIT_ASSERT_EQUAL(std::string("132.35"), str(net + tax));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(MoneyTest);
