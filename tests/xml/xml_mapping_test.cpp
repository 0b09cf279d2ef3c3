// The FHIR XML <-> JSON mapping rule by rule, on exact texts: primitives and their `_name`
// forms, repeating primitives with nulls, id / url attributes, choice types, resources inside
// resources, narrative XHTML, decimals, element order, and errors with their FHIRPath location.
#include <cppunit/extensions/HelperMacros.h>

#include "hearth/fhir/xml.h"
#include "xml_test_support.h"

using namespace hearth::fhir;
using hearth::xmltest::assertSameJson;
using hearth::xmltest::expectFhirError;

namespace {

const std::string kDecl = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

// The body of a Patient in the FHIR namespace, as a document.
std::string patientXml(const std::string& body) {
  return "<Patient xmlns=\"http://hl7.org/fhir\">" + body + "</Patient>";
}

void expectXml400(const std::string& xml, const std::string& expression, const std::string& what) {
  expectFhirError([&] { xmlToJson(xml); }, 400, expression, what);
}
void expectJson400(const std::string& json, const std::string& expression, const std::string& what) {
  expectFhirError([&] { jsonToXml(json); }, 400, expression, what);
}

}  // namespace

class XmlMappingTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(XmlMappingTest);
  CPPUNIT_TEST(primitivesExtensionsAndAttributes);
  CPPUNIT_TEST(membersComeOutInDefinitionOrder);
  CPPUNIT_TEST(decimalsAndIntegersKeepTheirText);
  CPPUNIT_TEST(choiceTypes);
  CPPUNIT_TEST(resourcesInsideResources);
  CPPUNIT_TEST(cardinalityDecidesArrays);
  CPPUNIT_TEST(narrativeIsCanonicalXhtml);
  CPPUNIT_TEST(narrativeInCanonicalFormIsKeptByteForByte);
  CPPUNIT_TEST(commentsProcessingInstructionsAndSchemaLocationAreIgnored);
  CPPUNIT_TEST(lenientOrderOnInput);
  CPPUNIT_TEST(prettyOutput);
  CPPUNIT_TEST(xmlErrorsNameTheElement);
  CPPUNIT_TEST(jsonErrorsNameTheElement);
  CPPUNIT_TEST_SUITE_END();

 public:
  void primitivesExtensionsAndAttributes() {
    const std::string json =
        R"({"resourceType":"Patient","id":"p1","active":true,"name":[{"id":"n1","use":"official",)"
        R"("family":"O'Brien & <Sons> \"q\"\n\ttab","given":["Zoë",null,"Ann"],)"
        R"("_given":[null,{"id":"g2","extension":[{"url":"http://x/e","valueInteger":2}]},null]}],)"
        R"("gender":"female","birthDate":"1970-01-01","_birthDate":{"extension":[{"url":)"
        R"("http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueDateTime":"1970-01-01T06:30:00Z"}]},)"
        R"("multipleBirthInteger":2})";
    const std::string xml =
        kDecl +
        "<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"p1\"/><active value=\"true\"/>"
        "<name id=\"n1\"><use value=\"official\"/>"
        "<family value=\"O'Brien &amp; &lt;Sons&gt; &quot;q&quot;&#10;&#9;tab\"/>"
        "<given value=\"Zoë\"/><given id=\"g2\"><extension url=\"http://x/e\"><valueInteger "
        "value=\"2\"/></extension></given>"
        "<given value=\"Ann\"/></name><gender value=\"female\"/>"
        "<birthDate value=\"1970-01-01\"><extension "
        "url=\"http://hl7.org/fhir/StructureDefinition/patient-birthTime\">"
        "<valueDateTime value=\"1970-01-01T06:30:00Z\"/></extension></birthDate>"
        "<multipleBirthInteger value=\"2\"/></Patient>";
    CPPUNIT_ASSERT_EQUAL(xml, jsonToXml(json));
    // Back: the same JSON, byte for byte (it was written in definition order).
    CPPUNIT_ASSERT_EQUAL(json, xmlToJson(xml));
  }

  void membersComeOutInDefinitionOrder() {
    // JSON in reverse order; XML must follow the StructureDefinition (Extension: extension before
    // url/value; DomainResource: id, meta, text, contained, extension, modifierExtension first).
    const std::string json =
        R"({"gender":"male","modifierExtension":[{"valueBoolean":true,"url":"http://x/m"}],)"
        R"("extension":[{"valueString":"v","extension":[{"url":"http://x/in","valueCode":"c"}],"url":"http://x/e"}],)"
        R"("name":[{"given":["B"],"family":"F"}],"meta":{"versionId":"1"},"resourceType":"Patient","id":"x"})";
    const std::string xml =
        kDecl +
        "<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"x\"/><meta><versionId value=\"1\"/></meta>"
        "<extension url=\"http://x/e\"><extension url=\"http://x/in\"><valueCode value=\"c\"/></extension>"
        "<valueString value=\"v\"/></extension>"
        "<modifierExtension url=\"http://x/m\"><valueBoolean value=\"true\"/></modifierExtension>"
        "<name><family value=\"F\"/><given value=\"B\"/></name><gender value=\"male\"/></Patient>";
    CPPUNIT_ASSERT_EQUAL(xml, jsonToXml(json));
    assertSameJson(json, xmlToJson(xml), "reordered patient");
  }

  void decimalsAndIntegersKeepTheirText() {
    const std::string json =
        R"({"resourceType":"Observation","status":"final","code":{"text":"t"},)"
        R"("valueQuantity":{"value":1.50,"unit":"mg"},"referenceRange":[{"low":{"value":1E+3},)"
        R"("high":{"value":12345678901234567890.123456789000}}],"component":[{"code":{"text":"a"},)"
        R"("valueInteger":-0},{"code":{"text":"b"},"valueQuantity":{"value":0.000010}},{"code":{"text":"c"},)"
        R"("valueQuantity":{"value":100}}]})";
    const std::string xml = jsonToXml(json);
    CPPUNIT_ASSERT(xml.find("<value value=\"1.50\"/>") != std::string::npos);
    CPPUNIT_ASSERT(xml.find("<value value=\"1E+3\"/>") != std::string::npos);
    CPPUNIT_ASSERT(xml.find("<value value=\"12345678901234567890.123456789000\"/>") != std::string::npos);
    CPPUNIT_ASSERT(xml.find("<value value=\"0.000010\"/>") != std::string::npos);
    const std::string back = xmlToJson(xml);
    CPPUNIT_ASSERT(back.find("\"valueQuantity\":{\"value\":1.50,") != std::string::npos);
    CPPUNIT_ASSERT(back.find("\"valueQuantity\":{\"value\":100}") !=
                   std::string::npos);  // a number, not "100"
    CPPUNIT_ASSERT(back.find("\"valueInteger\":-0}") != std::string::npos);
    assertSameJson(json, back, "decimals");
    // Booleans and integers become JSON booleans and numbers by the model, strings stay strings
    // even when they look like numbers.
    const std::string p = xmlToJson(patientXml(
        "<active value=\"false\"/><name><text value=\"007\"/></name><multipleBirthInteger value=\"3\"/>"));
    CPPUNIT_ASSERT_EQUAL(
        std::string(
            R"({"resourceType":"Patient","active":false,"name":[{"text":"007"}],"multipleBirthInteger":3})"),
        p);
  }

  void choiceTypes() {
    const std::string xml =
        "<Observation xmlns=\"http://hl7.org/fhir\"><status value=\"final\"/><code><text value=\"c\"/></code>"
        "<effectivePeriod><start value=\"2020\"/></effectivePeriod><valueString value=\"5\"/>"
        "<component><code><text value=\"x\"/></code><valueBoolean value=\"true\"/></component></Observation>";
    const std::string json =
        R"({"resourceType":"Observation","status":"final","code":{"text":"c"},"effectivePeriod":{"start":"2020"},)"
        R"("valueString":"5","component":[{"code":{"text":"x"},"valueBoolean":true}]})";
    CPPUNIT_ASSERT_EQUAL(json, xmlToJson(xml));
    CPPUNIT_ASSERT_EQUAL(kDecl + xml, jsonToXml(json));
    // A primitive choice with extensions: _valueString.
    const std::string ext =
        R"({"resourceType":"Basic","code":{"text":"b"},"extension":[{"url":"http://x","_valueString":)"
        R"({"extension":[{"url":"http://y","valueCode":"z"}]}}]})";
    const std::string extXml = jsonToXml(ext);
    CPPUNIT_ASSERT(extXml.find("<extension url=\"http://x\"><valueString><extension url=\"http://y\">"
                               "<valueCode value=\"z\"/></extension></valueString></extension>") !=
                   std::string::npos);
    assertSameJson(ext, xmlToJson(extXml), "primitive choice with extension");
  }

  void resourcesInsideResources() {
    const std::string json =
        R"({"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:1","resource":)"
        R"({"resourceType":"Patient","id":"a","contained":[{"resourceType":"Organization","id":"o","name":"Org"}],)"
        R"("managingOrganization":{"reference":"#o"}}},{"resource":{"resourceType":"Parameters","parameter":)"
        R"([{"name":"r","resource":{"resourceType":"Patient","active":false}},{"name":"d","valueDecimal":0.10}]}},)"
        R"({"response":{"status":"201","outcome":{"resourceType":"OperationOutcome","issue":[{"severity":"information",)"
        R"("code":"informational"}]}}}]})";
    const std::string xml =
        kDecl +
        "<Bundle xmlns=\"http://hl7.org/fhir\"><type value=\"collection\"/><entry><fullUrl "
        "value=\"urn:uuid:1\"/>"
        "<resource><Patient><id value=\"a\"/><contained><Organization><id value=\"o\"/><name value=\"Org\"/>"
        "</Organization></contained><managingOrganization><reference value=\"#o\"/></managingOrganization>"
        "</Patient></resource></entry><entry><resource><Parameters><parameter><name value=\"r\"/><resource>"
        "<Patient><active value=\"false\"/></Patient></resource></parameter><parameter><name value=\"d\"/>"
        "<valueDecimal value=\"0.10\"/></parameter></Parameters></resource></entry><entry><response>"
        "<status value=\"201\"/><outcome><OperationOutcome><issue><severity value=\"information\"/>"
        "<code value=\"informational\"/></issue></OperationOutcome></outcome></response></entry></Bundle>";
    CPPUNIT_ASSERT_EQUAL(xml, jsonToXml(json));
    CPPUNIT_ASSERT_EQUAL(json, xmlToJson(xml));
  }

  void cardinalityDecidesArrays() {
    // One <name> and one <given> are still arrays; managingOrganization (0..1) is an object;
    // Questionnaire.item.item (a content reference) repeats like item.
    CPPUNIT_ASSERT_EQUAL(
        std::string(
            R"({"resourceType":"Patient","name":[{"given":["A"]}],"managingOrganization":{"display":"O"}})"),
        xmlToJson(patientXml("<name><given value=\"A\"/></name><managingOrganization><display value=\"O\"/>"
                             "</managingOrganization>")));
    CPPUNIT_ASSERT_EQUAL(
        std::string(
            R"({"resourceType":"Questionnaire","status":"draft","item":[{"linkId":"1","type":"group",)"
            R"("item":[{"linkId":"1.1","type":"string"}]}]})"),
        xmlToJson("<Questionnaire xmlns=\"http://hl7.org/fhir\"><status value=\"draft\"/><item><linkId "
                  "value=\"1\"/>"
                  "<type value=\"group\"/><item><linkId value=\"1.1\"/><type value=\"string\"/></item></item>"
                  "</Questionnaire>"));
    // Only extensions on every repeat: no `given` array at all, only `_given`.
    CPPUNIT_ASSERT_EQUAL(
        std::string(R"({"resourceType":"Patient","name":[{"_given":[{"id":"a"},{"id":"b"}]}]})"),
        xmlToJson(patientXml("<name><given id=\"a\"/><given id=\"b\"/></name>")));
  }

  void narrativeIsCanonicalXhtml() {
    // Prefixed XHTML, character references, CDATA, a comment and a PI inside the div.
    const std::string xml =
        "<Patient xmlns=\"http://hl7.org/fhir\" xmlns:h=\"http://www.w3.org/1999/xhtml\"><text>"
        "<status value=\"generated\"/><h:div><h:p class=\"a&amp;b\" xml:lang=\"en\">It&#39;s &lt;b&gt; &amp; "
        "<h:b>bold</h:b><!-- note --><?pi x?><h:br/><![CDATA[x<y]]>&#13;</h:p></h:div></text></Patient>";
    const std::string expectedDiv =
        "<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\"><p class=\\\"a&amp;b\\\" xml:lang=\\\"en\\\">It's "
        "&lt;b&gt; "
        "&amp; <b>bold</b><!-- note --><br/>x&lt;y&#13;</p></div>";
    CPPUNIT_ASSERT_EQUAL(std::string(R"({"resourceType":"Patient","text":{"status":"generated","div":")") +
                             expectedDiv + "\"}}",
                         xmlToJson(xml));
    // And JSON -> XML writes the same canonical form, whatever the JSON's own spelling.
    const std::string json =
        R"({"resourceType":"Patient","text":{"status":"generated","div":"<x:div )"
        R"(xmlns:x='http://www.w3.org/1999/xhtml'><x:p>&#x41;&quot;</x:p><x:p/><x:br></x:br>)"
        R"(<x:img src='x'/></x:div>"}})";
    CPPUNIT_ASSERT_EQUAL(
        kDecl +
            "<Patient xmlns=\"http://hl7.org/fhir\"><text><status value=\"generated\"/>"
            "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>A\"</p><p></p><br/><img src=\"x\"/></div></text>"
            "</Patient>",
        jsonToXml(json));
  }

  void narrativeInCanonicalFormIsKeptByteForByte() {
    const std::string div =
        "<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\">\\n\\t<p title=\\\"&quot;t&quot;&#10;\\\">Zoë &amp; "
        "&lt;x&gt;</p><br/><table><tr><td>1</td></tr></table>\\n</div>";
    const std::string json =
        R"({"resourceType":"Patient","text":{"status":"generated","div":")" + div + "\"}}";
    CPPUNIT_ASSERT_EQUAL(json, xmlToJson(jsonToXml(json)));
    CPPUNIT_ASSERT_EQUAL(json, xmlToJson(jsonToXml(json, true)));
  }

  void commentsProcessingInstructionsAndSchemaLocationAreIgnored() {
    const std::string xml =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- leading -->\n<?some-pi data?>\n"
        "<Patient xmlns=\"http://hl7.org/fhir\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
        "xsi:schemaLocation=\"http://hl7.org/fhir fhir-single.xsd\">\n  <!-- c --><?pi?>\n"
        "  <id value=\"x\"/>\n  <active value=\"true\"><!-- inside a primitive "
        "--></active>\n</Patient>\n<!-- trailing -->";
    CPPUNIT_ASSERT_EQUAL(std::string(R"({"resourceType":"Patient","id":"x","active":true})"), xmlToJson(xml));
    // A prefix for the FHIR namespace is fine too.
    CPPUNIT_ASSERT_EQUAL(
        std::string(R"({"resourceType":"Patient","id":"x"})"),
        xmlToJson("<f:Patient xmlns:f=\"http://hl7.org/fhir\"><f:id value=\"x\"/></f:Patient>"));
  }

  void lenientOrderOnInput() {
    // Published examples are not always in schema order (the official observation-example.xml
    // has status before extension): accepted, and repeats are gathered in document order.
    CPPUNIT_ASSERT_EQUAL(
        std::string(
            R"({"resourceType":"Patient","id":"x","name":[{"family":"F","given":["A","B"]}],"gender":"male"})"),
        xmlToJson(patientXml("<gender value=\"male\"/><name><given value=\"A\"/><family value=\"F\"/>"
                             "<given value=\"B\"/></name><id value=\"x\"/>")));
  }

  void prettyOutput() {
    const std::string json =
        R"({"resourceType":"Patient","id":"p","text":{"status":"generated","div":)"
        R"("<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Hi</p>\n</div>"},"name":[{"given":["A"]}],)"
        R"("contained":[{"resourceType":"Organization","name":"O"}]})";
    const std::string expected =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<Patient xmlns=\"http://hl7.org/fhir\">\n"
        "  <id value=\"p\"/>\n"
        "  <text>\n"
        "    <status value=\"generated\"/>\n"
        "    <div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Hi</p>\n</div>\n"
        "  </text>\n"
        "  <contained>\n"
        "    <Organization>\n"
        "      <name value=\"O\"/>\n"
        "    </Organization>\n"
        "  </contained>\n"
        "  <name>\n"
        "    <given value=\"A\"/>\n"
        "  </name>\n"
        "</Patient>\n";
    CPPUNIT_ASSERT_EQUAL(expected, jsonToXml(json, true));
    assertSameJson(json, xmlToJson(expected), "pretty");
  }

  void xmlErrorsNameTheElement() {
    expectXml400(patientXml("<name><foo value=\"x\"/></name>"), "Patient.name[0].foo", "unknown element");
    expectXml400(patientXml("<name/><name foo=\"x\"/>"), "Patient.name[1].foo", "unknown attribute");
    expectXml400(patientXml("<name value=\"x\"/>"), "Patient.name[0].value", "value on a complex element");
    expectXml400(patientXml("<name><id value=\"x\"/></name>"), "Patient.name[0].id", "id as an element");
    expectXml400("<Patient xmlns=\"http://hl7.org/fhir\" id=\"x\"/>", "Patient.id",
                 "id attribute on a resource");
    expectXml400(
        patientXml("<id value=\"x\"><extension url=\"u\"><valueString value=\"v\"/></extension></id>"),
        "Patient.id", "extension on Resource.id");
    expectXml400(patientXml("<extension><url value=\"x\"/></extension>"), "Patient.extension[0].url",
                 "url as an element");
    expectXml400(patientXml("<_birthDate/>"), "Patient._birthDate", "underscore element");
    expectXml400(patientXml("<name>Peter</name>"), "Patient.name[0]", "text content");
    expectXml400(patientXml("Peter"), "Patient", "text content in the resource");
    expectXml400(patientXml("<gender/>"), "Patient.gender", "neither value nor children");
    expectXml400(patientXml("<gender value=\"male\"/><gender value=\"female\"/>"), "Patient.gender",
                 "non-repeating element repeated");
    expectXml400(patientXml("<deceasedBoolean value=\"true\"/><deceasedDateTime value=\"2000\"/>"),
                 "Patient.deceased", "two choice types");
    expectXml400(patientXml("<active value=\"yes\"/>"), "Patient.active", "bad boolean");
    expectXml400(patientXml("<multipleBirthInteger value=\"+1\"/>"), "Patient.multipleBirth.ofType(integer)",
                 "bad integer");
    expectXml400(
        "<Observation xmlns=\"http://hl7.org/fhir\"><valueQuantity><value value=\"1,5\"/></valueQuantity>"
        "</Observation>",
        "Observation.value.ofType(Quantity).value", "bad decimal");
    expectXml400(
        "<Bundle xmlns=\"http://hl7.org/fhir\"><entry/><entry><resource><Patient><bogus/></Patient>"
        "</resource></entry></Bundle>",
        "Bundle.entry[1].resource.ofType(Patient).bogus", "unknown element in a bundled resource");
    expectXml400(patientXml("<contained><Organization/><Organization/></contained>"), "Patient.contained[0]",
                 "two resources in one container");
    expectXml400(patientXml("<contained><Foo/></contained>"), "Patient.contained[0].ofType(Foo)",
                 "unknown contained resource type");
    expectXml400("<Foo xmlns=\"http://hl7.org/fhir\"/>", "Foo", "unknown resource type");
    expectXml400("<DomainResource xmlns=\"http://hl7.org/fhir\"/>", "DomainResource",
                 "abstract resource type");
    // Names from the input are echoed cut short.
    const std::string longName(1000, 'q');
    const std::string diag = expectFhirError([&] { xmlToJson(patientXml("<" + longName + "/>")); }, 400,
                                             "Patient." + longName.substr(0, 64), "long element name");
    CPPUNIT_ASSERT_MESSAGE(diag, diag.size() < 100);
    expectXml400(patientXml("<text><status value=\"generated\"/><div><p>x</p></div></text>"),
                 "Patient.text.div", "div in the FHIR namespace");
    expectXml400(patientXml("<text><status value=\"generated\"/><div xmlns=\"http://www.w3.org/1999/xhtml\">"
                            "<svg xmlns=\"http://www.w3.org/2000/svg\"/></div></text>"),
                 "Patient.text.div", "foreign element in the narrative");
  }

  void jsonErrorsNameTheElement() {
    expectJson400(R"({"resourceType":"Patient","foo":1})", "Patient.foo", "unknown member");
    expectJson400(R"({"resourceType":"Patient","name":[{"family":"a\u0001b"}]})", "Patient.name[0].family",
                  "control character");
    expectJson400("{\"resourceType\":\"Patient\",\"name\":[{\"text\":\"\xEF\xBF\xBF\"}]}",
                  "Patient.name[0].text", "U+FFFF");
    expectJson400(R"({"resourceType":"Patient","active":"true"})", "Patient.active", "string for a boolean");
    expectJson400(R"({"resourceType":"Patient","birthDate":19700101})", "Patient.birthDate",
                  "number for a date");
    expectJson400(R"({"resourceType":"Observation","valueQuantity":{"value":"1.5"}})",
                  "Observation.value.ofType(Quantity).value", "string for a decimal");
    expectJson400(R"({"resourceType":"Patient","name":{"family":"x"}})", "Patient.name",
                  "object for an array");
    expectJson400(R"({"resourceType":"Patient","gender":null})", "Patient.gender", "null");
    expectJson400(R"({"resourceType":"Foo"})", "Foo", "unknown resource type");
    expectJson400(R"({"id":"x"})", "", "no resourceType");
    expectJson400(R"({"resourceType":"Patient","contained":[{"id":"x"}]})", "Patient.contained[0]",
                  "contained without resourceType");
    expectJson400("{\"resourceType\":\"Patient\",", "", "malformed JSON");
    expectJson400(R"({"resourceType":"Patient","text":{"status":"generated","div":"<div>x</div>"}})",
                  "Patient.text.div", "narrative outside the XHTML namespace");
    expectJson400(R"({"resourceType":"Patient","text":{"status":"generated","div":)"
                  R"("<p xmlns=\"http://www.w3.org/1999/xhtml\">x</p>"}})",
                  "Patient.text.div", "narrative root not a div");
    expectJson400(R"({"resourceType":"Patient","text":{"status":"generated","div":)"
                  R"("<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>x</div>"}})",
                  "Patient.text.div", "narrative not well-formed");
    expectJson400(R"({"resourceType":"Patient","text":{"status":"generated","div":)"
                  R"("<div xmlns=\"http://www.w3.org/1999/xhtml\">&nbsp;</div>"}})",
                  "Patient.text.div", "HTML entity in the narrative");
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(XmlMappingTest);
