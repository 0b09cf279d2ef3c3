// FHIR -> HL7 v2 outbound mapping (adapters/fhir_to_v2.h): the produced messages are parsed with
// our own v2 parser and checked field by field the way a lab or billing system reads them; an ORM
// is also mapped back through the v2 -> FHIR adapter (identifiers and codes come back the same).
#include <cppunit/extensions/HelperMacros.h>
#include <rapidjson/document.h>
#include <rapidjson/pointer.h>

#include <map>
#include <string>

#include "hearth/adapters/fhir_to_v2.h"
#include "hearth/adapters/v2_to_fhir.h"
#include "hearth/hl7/message.h"

using namespace hearth;

namespace {

const char* kPatient = R"({"resourceType":"Patient","id":"p1",
 "identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]},
   "system":"urn:oid:2.16.840.1.113883.3.9001","value":"MRN-00042"},
   {"system":"urn:hearth:authority:STATEID","value":"S|7^7"}],
 "name":[{"use":"official","family":"O'Hara-Smith","given":["Maeve","Ann","Louise"]}],
 "gender":"female","birthDate":"1980-03-01",
 "address":[{"use":"home","line":["12 Elm St","Apt 3"],"city":"Springfield","state":"IL","postalCode":"62704","country":"USA"}],
 "telecom":[{"system":"phone","value":"555-0100","use":"home"},{"system":"phone","value":"555-0199","use":"work"}]})";

const char* kPractitioner = R"({"resourceType":"Practitioner","id":"dr1",
 "identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"1234567893"}],
 "name":[{"family":"Abernathy","given":["Ruth"]}]})";

const char* kServiceRequest = R"({"resourceType":"ServiceRequest","id":"sr1","status":"active","intent":"order",
 "identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"PLAC"}]},
   "system":"urn:oid:2.16.840.1.113883.3.9001.2","value":"ORD-1001"}],
 "category":[{"coding":[{"system":"http://snomed.info/sct","code":"108252007","display":"Laboratory procedure"}]}],
 "priority":"stat",
 "code":{"coding":[{"system":"http://loinc.org","code":"24323-8","display":"Comprehensive metabolic panel"}]},
 "subject":{"reference":"Patient/p1"},
 "occurrenceDateTime":"2026-12-06T09:00:00+01:00","authoredOn":"2026-12-06T08:45:00+01:00",
 "requester":{"reference":"Practitioner/dr1"},
 "reasonCode":[{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10","code":"E11.9"}]}],
 "note":[{"text":"Fasting | since 22:00 & no meds"}]})";

struct Fixture {
  std::map<std::string, std::string> resources;
  adapters::Resolver resolver() const {
    return [this](std::string_view type, std::string_view id) -> std::optional<std::string> {
      auto it = resources.find(std::string(type) + "/" + std::string(id));
      if (it == resources.end()) return std::nullopt;
      return it->second;
    };
  }
};

adapters::OutboundOptions options() {
  adapters::OutboundOptions o;
  o.sendingApplication = "HEARTH";
  o.sendingFacility = "NORTHVALE";
  o.receivingApplication = "LIS";
  o.receivingFacility = "CENTRAL_LAB";
  o.controlId = "CTRL-1";
  o.timestamp = "20261206100000+0000";
  return o;
}

std::string ptr(const rapidjson::Value& v, const char* p) {
  const rapidjson::Value* x = rapidjson::Pointer(p).Get(v);
  return x && x->IsString() ? x->GetString() : std::string();
}

}  // namespace

class FhirToV2Test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(FhirToV2Test);
  CPPUNIT_TEST(testOrmLabOrder);
  CPPUNIT_TEST(testOmlUsesTq1);
  CPPUNIT_TEST(testOrderControlFromStatusAndVersion);
  CPPUNIT_TEST(testOrmRoundTripThroughInboundAdapter);
  CPPUNIT_TEST(testMissingPatientIsAnError);
  CPPUNIT_TEST(testChargeItemDft);
  CPPUNIT_TEST(testInvoiceDftAmountsToTheCentWithCoverage);
  CPPUNIT_TEST(testDates);
  CPPUNIT_TEST_SUITE_END();

 public:
  Fixture f;
  void setUp() override {
    f.resources = {{"Patient/p1", kPatient}, {"Practitioner/dr1", kPractitioner}, {"ServiceRequest/sr1", kServiceRequest}};
  }

  void testOrmLabOrder() {
    const std::string bytes = adapters::serviceRequestToV2(kServiceRequest, adapters::OrderMessage::ORM_O01,
                                                           adapters::OrderControl::NW, f.resolver(), options());
    hl7::Message m = hl7::Message::parse(bytes);
    CPPUNIT_ASSERT_EQUAL(std::string("ORM"), m.messageType());
    CPPUNIT_ASSERT_EQUAL(std::string("O01"), m.triggerEvent());
    CPPUNIT_ASSERT_EQUAL(std::string("2.5.1"), m.version());
    CPPUNIT_ASSERT_EQUAL(std::string("CTRL-1"), m.controlId());
    CPPUNIT_ASSERT_EQUAL(std::string("HEARTH"), m.get("MSH-3"));
    CPPUNIT_ASSERT_EQUAL(std::string("CENTRAL_LAB"), m.get("MSH-6"));
    // PID-3: both identifiers with their authorities; delimiters in a value are escaped.
    CPPUNIT_ASSERT_EQUAL(std::string("MRN-00042"), m.get("PID-3(1).1"));
    CPPUNIT_ASSERT_EQUAL(std::string("2.16.840.1.113883.3.9001"), m.get("PID-3(1).4.2"));
    CPPUNIT_ASSERT_EQUAL(std::string("ISO"), m.get("PID-3(1).4.3"));
    CPPUNIT_ASSERT_EQUAL(std::string("MR"), m.get("PID-3(1).5"));
    CPPUNIT_ASSERT_EQUAL(std::string("S|7^7"), m.get("PID-3(2).1"));
    CPPUNIT_ASSERT_EQUAL(std::string("STATEID"), m.get("PID-3(2).4"));
    CPPUNIT_ASSERT_EQUAL(std::string("O'Hara-Smith"), m.get("PID-5.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("Maeve"), m.get("PID-5.2"));
    CPPUNIT_ASSERT_EQUAL(std::string("Ann Louise"), m.get("PID-5.3"));
    CPPUNIT_ASSERT_EQUAL(std::string("L"), m.get("PID-5.7"));
    CPPUNIT_ASSERT_EQUAL(std::string("19800301"), m.get("PID-7"));
    CPPUNIT_ASSERT_EQUAL(std::string("F"), m.get("PID-8"));
    CPPUNIT_ASSERT_EQUAL(std::string("Springfield"), m.get("PID-11.3"));
    CPPUNIT_ASSERT_EQUAL(std::string("62704"), m.get("PID-11.5"));
    CPPUNIT_ASSERT_EQUAL(std::string("555-0100"), m.get("PID-13.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("555-0199"), m.get("PID-14.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("U"), m.get("PV1-2"));  // no encounter
    CPPUNIT_ASSERT_EQUAL(std::string("NW"), m.get("ORC-1"));
    CPPUNIT_ASSERT_EQUAL(std::string("ORD-1001"), m.get("ORC-2.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("2.16.840.1.113883.3.9001.2"), m.get("ORC-2.3"));
    CPPUNIT_ASSERT_EQUAL(std::string("20261206084500+0100"), m.get("ORC-9"));
    CPPUNIT_ASSERT_EQUAL(std::string("1234567893"), m.get("ORC-12.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("NPI"), m.get("ORC-12.9"));
    CPPUNIT_ASSERT_EQUAL(std::string("Abernathy"), m.get("ORC-12.2"));
    CPPUNIT_ASSERT_EQUAL(std::string("ORD-1001"), m.get("OBR-2.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("24323-8"), m.get("OBR-4.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("Comprehensive metabolic panel"), m.get("OBR-4.2"));
    CPPUNIT_ASSERT_EQUAL(std::string("LN"), m.get("OBR-4.3"));
    CPPUNIT_ASSERT_EQUAL(std::string("20261206090000+0100"), m.get("OBR-6"));
    CPPUNIT_ASSERT_EQUAL(std::string("S"), m.get("OBR-27.6"));
    CPPUNIT_ASSERT_EQUAL(std::string("Abernathy"), m.get("OBR-16.2"));
    CPPUNIT_ASSERT_EQUAL(std::string("Fasting | since 22:00 & no meds"), m.get("NTE-3"));
    CPPUNIT_ASSERT_EQUAL(std::string("E11.9"), m.get("DG1-3.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("I10"), m.get("DG1-3.3"));
    // Round trip of our own encoding: the bytes parse and re-encode identically.
    CPPUNIT_ASSERT_EQUAL(bytes, m.encode());
  }

  void testOmlUsesTq1() {
    hl7::Message m = hl7::Message::parse(adapters::serviceRequestToV2(
        kServiceRequest, adapters::OrderMessage::OML_O21, adapters::OrderControl::NW, f.resolver(), options()));
    CPPUNIT_ASSERT_EQUAL(std::string("OML_O21"), m.messageStructure());
    CPPUNIT_ASSERT_EQUAL(std::string("20261206090000+0100"), m.get("TQ1-7"));
    CPPUNIT_ASSERT_EQUAL(std::string("S"), m.get("TQ1-9"));
    CPPUNIT_ASSERT_EQUAL(std::string(""), m.get("ORC-7.6"));
  }

  void testOrderControlFromStatusAndVersion() {
    using adapters::OrderControl;
    CPPUNIT_ASSERT(adapters::orderControlFor("active", 1, false) == OrderControl::NW);
    CPPUNIT_ASSERT(adapters::orderControlFor("active", 3, false) == OrderControl::XO);
    CPPUNIT_ASSERT(adapters::orderControlFor("revoked", 2, false) == OrderControl::CA);
    CPPUNIT_ASSERT(adapters::orderControlFor("active", 2, true) == OrderControl::CA);
    CPPUNIT_ASSERT(adapters::orderControlFor("draft", 1, false) == OrderControl::None);
    CPPUNIT_ASSERT(adapters::orderControlFor("completed", 4, false) == OrderControl::None);
    hl7::Message ca = hl7::Message::parse(adapters::serviceRequestToV2(
        kServiceRequest, adapters::OrderMessage::ORM_O01, OrderControl::CA, f.resolver(), options()));
    CPPUNIT_ASSERT_EQUAL(std::string("CA"), ca.get("ORC-1"));
    CPPUNIT_ASSERT_EQUAL(std::string("CA"), ca.get("ORC-5"));
    CPPUNIT_ASSERT_EQUAL(std::string("ORD-1001"), ca.get("ORC-2.1"));  // names the same order
  }

  void testOrmRoundTripThroughInboundAdapter() {
    hl7::Message m = hl7::Message::parse(adapters::serviceRequestToV2(
        kServiceRequest, adapters::OrderMessage::ORM_O01, adapters::OrderControl::NW, f.resolver(), options()));
    adapters::MappingResult r = adapters::mapToFhir(m);
    CPPUNIT_ASSERT_MESSAGE(r.errors.empty() ? "" : r.errors[0].userMessage, r.ok());
    rapidjson::Document b;
    b.Parse(r.bundle.c_str());
    const rapidjson::Value* sr = nullptr;
    const rapidjson::Value* pat = nullptr;
    for (const auto& e : b["entry"].GetArray()) {
      const std::string t = ptr(e, "/resource/resourceType");
      if (t == "ServiceRequest") sr = &e["resource"];
      if (t == "Patient") pat = &e["resource"];
    }
    CPPUNIT_ASSERT(sr && pat);
    CPPUNIT_ASSERT_EQUAL(std::string("urn:oid:2.16.840.1.113883.3.9001"), ptr(*pat, "/identifier/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("MRN-00042"), ptr(*pat, "/identifier/0/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("urn:hearth:authority:STATEID"), ptr(*pat, "/identifier/1/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("S|7^7"), ptr(*pat, "/identifier/1/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("urn:oid:2.16.840.1.113883.3.9001.2"), ptr(*sr, "/identifier/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("ORD-1001"), ptr(*sr, "/identifier/0/value"));
    CPPUNIT_ASSERT_EQUAL(std::string("http://loinc.org"), ptr(*sr, "/code/coding/0/system"));
    CPPUNIT_ASSERT_EQUAL(std::string("24323-8"), ptr(*sr, "/code/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("active"), ptr(*sr, "/status"));
    CPPUNIT_ASSERT_EQUAL(std::string("stat"), ptr(*sr, "/priority"));
    CPPUNIT_ASSERT_EQUAL(std::string("E11.9"), ptr(*sr, "/reasonCode/0/coding/0/code"));
    CPPUNIT_ASSERT_EQUAL(std::string("Fasting | since 22:00 & no meds"), ptr(*sr, "/note/0/text"));
  }

  void testMissingPatientIsAnError() {
    f.resources.erase("Patient/p1");
    CPPUNIT_ASSERT_THROW(adapters::serviceRequestToV2(kServiceRequest, adapters::OrderMessage::ORM_O01,
                                                      adapters::OrderControl::NW, f.resolver(), options()),
                         adapters::OutboundError);
    adapters::OutboundOptions o = options();
    o.controlId.clear();
    f.resources["Patient/p1"] = kPatient;
    CPPUNIT_ASSERT_THROW(adapters::serviceRequestToV2(kServiceRequest, adapters::OrderMessage::ORM_O01,
                                                      adapters::OrderControl::NW, f.resolver(), o),
                         adapters::OutboundError);
  }

  void testChargeItemDft() {
    const char* ci = R"({"resourceType":"ChargeItem","id":"c1","status":"billable",
      "identifier":[{"system":"urn:hearth:transaction:NORTHVALE","value":"TX-9"}],
      "code":{"coding":[{"system":"http://www.ama-assn.org/go/cpt","code":"80053","display":"CMP"}]},
      "subject":{"reference":"Patient/p1"},"occurrenceDateTime":"2026-12-05",
      "quantity":{"value":2},"priceOverride":{"value":1234567.10,"currency":"USD"}})";
    hl7::Message m = hl7::Message::parse(adapters::financialToDft("ChargeItem", ci, f.resolver(), options()));
    CPPUNIT_ASSERT_EQUAL(std::string("DFT"), m.messageType());
    CPPUNIT_ASSERT_EQUAL(std::string("P03"), m.get("EVN-1"));
    CPPUNIT_ASSERT_EQUAL(std::string("MRN-00042"), m.get("PID-3.1"));
    CPPUNIT_ASSERT_EQUAL(1, m.count("FT1"));
    CPPUNIT_ASSERT_EQUAL(std::string("TX-9"), m.get("FT1-2"));
    CPPUNIT_ASSERT_EQUAL(std::string("20261205"), m.get("FT1-4"));
    CPPUNIT_ASSERT_EQUAL(std::string("CG"), m.get("FT1-6"));
    CPPUNIT_ASSERT_EQUAL(std::string("80053"), m.get("FT1-7.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("C4"), m.get("FT1-7.3"));
    CPPUNIT_ASSERT_EQUAL(std::string("2"), m.get("FT1-10"));
    CPPUNIT_ASSERT_EQUAL(std::string("1234567.10"), m.get("FT1-11.1.1"));  // not 1234567.1 nor 1.2345671e6
    CPPUNIT_ASSERT_EQUAL(std::string("USD"), m.get("FT1-11.1.2"));
    CPPUNIT_ASSERT_EQUAL(0, m.count("IN1"));  // no coverage known
  }

  void testInvoiceDftAmountsToTheCentWithCoverage() {
    f.resources["Organization/payer"] = R"({"resourceType":"Organization","id":"payer","name":"Acme Health & Life",
      "identifier":[{"system":"urn:oid:2.16.840.1.113883.3.9001.9","value":"ACME-01"}]})";
    f.resources["Coverage/cov1"] = R"({"resourceType":"Coverage","id":"cov1","status":"active",
      "subscriberId":"POL-778","beneficiary":{"reference":"Patient/p1"},"payor":[{"reference":"Organization/payer"}],
      "relationship":{"coding":[{"code":"self"}]},
      "class":[{"type":{"coding":[{"code":"group"}]},"value":"GRP-5"}]})";
    f.resources["Account/a1"] = R"({"resourceType":"Account","id":"a1","status":"active",
      "identifier":[{"value":"ACC-3001"}],"coverage":[{"coverage":{"reference":"Coverage/cov1"}}]})";
    f.resources["ChargeItem/c1"] = R"({"resourceType":"ChargeItem","id":"c1","status":"billable",
      "identifier":[{"value":"TX-1"}],"code":{"coding":[{"system":"http://www.ama-assn.org/go/cpt","code":"80053"}]},
      "subject":{"reference":"Patient/p1"},"occurrenceDateTime":"2026-12-01"})";
    const char* inv = R"({"resourceType":"Invoice","id":"i1","status":"issued","date":"2026-12-06",
      "subject":{"reference":"Patient/p1"},"account":{"reference":"Account/a1"},
      "lineItem":[
        {"chargeItemReference":{"reference":"ChargeItem/c1"},
         "priceComponent":[{"type":"base","amount":{"value":0.10,"currency":"USD"}},
                           {"type":"surcharge","amount":{"value":0.20,"currency":"USD"}}]},
        {"chargeItemCodeableConcept":{"coding":[{"system":"http://www.ama-assn.org/go/cpt","code":"36415"}]},
         "priceComponent":[{"type":"base","amount":{"value":100.05,"currency":"USD"}},
                           {"type":"discount","amount":{"value":0.05,"currency":"USD"}},
                           {"type":"informational","amount":{"value":999,"currency":"USD"}}]}],
      "totalNet":{"value":100.30,"currency":"USD"},"totalGross":{"value":100.30,"currency":"USD"}})";
    hl7::Message m = hl7::Message::parse(adapters::financialToDft("Invoice", inv, f.resolver(), options()));
    CPPUNIT_ASSERT_EQUAL(2, m.count("FT1"));
    CPPUNIT_ASSERT_EQUAL(std::string("ACC-3001"), m.get("PID-18"));
    CPPUNIT_ASSERT_EQUAL(std::string("TX-1"), m.get("FT1(1)-2"));
    CPPUNIT_ASSERT_EQUAL(std::string("80053"), m.get("FT1(1)-7.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("20261201"), m.get("FT1(1)-4"));
    CPPUNIT_ASSERT_EQUAL(std::string("0.30"), m.get("FT1(1)-11.1.1"));  // 0.1 + 0.2 exactly
    CPPUNIT_ASSERT_EQUAL(std::string("0.10"), m.get("FT1(1)-12.1.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("36415"), m.get("FT1(2)-7.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("20261206"), m.get("FT1(2)-4"));  // the invoice date
    CPPUNIT_ASSERT_EQUAL(std::string("100.00"), m.get("FT1(2)-11.1.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("USD"), m.get("FT1(2)-11.1.2"));
    CPPUNIT_ASSERT_EQUAL(1, m.count("IN1"));
    CPPUNIT_ASSERT_EQUAL(std::string("ACME-01"), m.get("IN1-3.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("2.16.840.1.113883.3.9001.9"), m.get("IN1-3.4.2"));
    CPPUNIT_ASSERT_EQUAL(std::string("Acme Health & Life"), m.get("IN1-4.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("GRP-5"), m.get("IN1-8"));
    CPPUNIT_ASSERT_EQUAL(std::string("SEL"), m.get("IN1-17.1"));
    CPPUNIT_ASSERT_EQUAL(std::string("POL-778"), m.get("IN1-36"));
  }

  void testDates() {
    CPPUNIT_ASSERT_EQUAL(std::string("19800301"), adapters::fhirDateToV2("1980-03-01"));
    CPPUNIT_ASSERT_EQUAL(std::string("198003"), adapters::fhirDateToV2("1980-03"));
    CPPUNIT_ASSERT_EQUAL(std::string("20261206103000.1234+0000"), adapters::fhirDateToV2("2026-12-06T10:30:00.123456Z"));
    CPPUNIT_ASSERT_EQUAL(std::string("202612061030-0500"), adapters::fhirDateToV2("2026-12-06T10:30-05:00"));
    CPPUNIT_ASSERT_EQUAL(std::string(""), adapters::fhirDateToV2("yesterday"));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(FhirToV2Test);
