// json_patch_tests: applyJsonPatch (RFC 6902 over RFC 6901 pointers) in-process: every operation,
// pointer escapes, array indexes and "-", test-op equality, atomicity, and the error statuses
// (400 malformed patch or missing path, 422 failed test). The HTTP PATCH interaction itself is in
// interactions_tests.cpp.
#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "hearth/fhir/error.h"
#include "hearth/fhir/interactions.h"

using hearth::fhir::applyJsonPatch;
using hearth::fhir::FhirError;

namespace {

// The status applyJsonPatch fails with, 0 if it succeeds.
int statusOf(const std::string& doc, const std::string& patch) {
  try {
    applyJsonPatch(doc, patch);
    return 0;
  } catch (const FhirError& e) {
    return e.status();
  }
}

}  // namespace

class JsonPatchTest : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(JsonPatchTest);
  CPPUNIT_TEST(testAdd);
  CPPUNIT_TEST(testRemoveReplace);
  CPPUNIT_TEST(testMoveCopy);
  CPPUNIT_TEST(testTest);
  CPPUNIT_TEST(testPointerEscapes);
  CPPUNIT_TEST(testNumbersVerbatim);
  CPPUNIT_TEST(testErrors);
  CPPUNIT_TEST(testHostile);
  CPPUNIT_TEST_SUITE_END();

 public:
  void testAdd() {
    // RFC 6902 A.1, A.2, A.3 (add to object, insert into array, add a nested member).
    CPPUNIT_ASSERT_EQUAL(std::string(R"({"foo":"bar","baz":"qux"})"),
                         applyJsonPatch(R"({"foo":"bar"})", R"([{"op":"add","path":"/baz","value":"qux"}])"));
    CPPUNIT_ASSERT_EQUAL(std::string(R"({"foo":["bar","qux","baz"]})"),
                         applyJsonPatch(R"({"foo":["bar","baz"]})", R"([{"op":"add","path":"/foo/1","value":"qux"}])"));
    CPPUNIT_ASSERT_EQUAL(std::string(R"({"foo":["bar","baz","qux"]})"),
                         applyJsonPatch(R"({"foo":["bar","baz"]})", R"([{"op":"add","path":"/foo/-","value":"qux"}])"));
    CPPUNIT_ASSERT_EQUAL(std::string(R"({"foo":["bar","baz","qux"]})"),
                         applyJsonPatch(R"({"foo":["bar","baz"]})", R"([{"op":"add","path":"/foo/2","value":"qux"}])"));
    // Add to an existing member replaces it; add at "" replaces the whole document.
    CPPUNIT_ASSERT_EQUAL(std::string(R"({"foo":{"x":1}})"),
                         applyJsonPatch(R"({"foo":"bar"})", R"([{"op":"add","path":"/foo","value":{"x":1}}])"));
    CPPUNIT_ASSERT_EQUAL(std::string(R"([1,2])"), applyJsonPatch(R"({"foo":"bar"})", R"([{"op":"add","path":"","value":[1,2]}])"));
    // RFC 6902 A.10: values may be any JSON.
    CPPUNIT_ASSERT_EQUAL(std::string(R"({"foo":"bar","child":{"grandchild":{}}})"),
                         applyJsonPatch(R"({"foo":"bar"})", R"([{"op":"add","path":"/child","value":{"grandchild":{}}}])"));
  }

  void testRemoveReplace() {
    CPPUNIT_ASSERT_EQUAL(std::string(R"({"foo":"bar"})"),
                         applyJsonPatch(R"({"baz":"qux","foo":"bar"})", R"([{"op":"remove","path":"/baz"}])"));
    CPPUNIT_ASSERT_EQUAL(std::string(R"({"foo":["bar","baz"]})"),
                         applyJsonPatch(R"({"foo":["bar","qux","baz"]})", R"([{"op":"remove","path":"/foo/1"}])"));
    CPPUNIT_ASSERT_EQUAL(std::string(R"({"baz":"boo","foo":"bar"})"),
                         applyJsonPatch(R"({"baz":"qux","foo":"bar"})", R"([{"op":"replace","path":"/baz","value":"boo"}])"));
    // Operations apply in sequence, each on the result of the previous one.
    CPPUNIT_ASSERT_EQUAL(std::string(R"({"a":[2]})"),
                         applyJsonPatch(R"({"a":[0,1]})", R"([{"op":"remove","path":"/a/0"},{"op":"replace","path":"/a/0","value":2}])"));
  }

  void testMoveCopy() {
    // RFC 6902 A.6, A.7.
    CPPUNIT_ASSERT_EQUAL(std::string(R"({"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}})"),
                         applyJsonPatch(R"({"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}})",
                                        R"([{"op":"move","from":"/foo/waldo","path":"/qux/thud"}])"));
    CPPUNIT_ASSERT_EQUAL(std::string(R"({"foo":["all","cows","eat","grass"]})"),
                         applyJsonPatch(R"({"foo":["all","grass","cows","eat"]})", R"([{"op":"move","from":"/foo/1","path":"/foo/3"}])"));
    CPPUNIT_ASSERT_EQUAL(std::string(R"({"a":{"b":1},"c":{"b":1}})"),
                         applyJsonPatch(R"({"a":{"b":1}})", R"([{"op":"copy","from":"/a","path":"/c"}])"));
    // A location cannot be moved into one of its children (RFC 6902 4.4).
    CPPUNIT_ASSERT_EQUAL(400, statusOf(R"({"a":{"b":1}})", R"([{"op":"move","from":"/a","path":"/a/b/c"}])"));
    // Moving to the same place changes nothing.
    CPPUNIT_ASSERT_EQUAL(std::string(R"({"a":1})"), applyJsonPatch(R"({"a":1})", R"([{"op":"move","from":"/a","path":"/a"}])"));
  }

  void testTest() {
    const std::string doc = R"({"baz":"qux","foo":["a",2,"c"],"n":1.0,"o":{"x":1,"y":[true,null]}})";
    CPPUNIT_ASSERT_EQUAL(0, statusOf(doc, R"([{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}])"));
    // Numbers compare by value; objects regardless of member order.
    CPPUNIT_ASSERT_EQUAL(0, statusOf(doc, R"([{"op":"test","path":"/n","value":1}])"));
    CPPUNIT_ASSERT_EQUAL(0, statusOf(doc, R"([{"op":"test","path":"/o","value":{"y":[true,null],"x":1}}])"));
    // RFC 6902 A.9 and type mismatches: 422.
    CPPUNIT_ASSERT_EQUAL(422, statusOf(doc, R"([{"op":"test","path":"/baz","value":"bar"}])"));
    CPPUNIT_ASSERT_EQUAL(422, statusOf(doc, R"([{"op":"test","path":"/foo/1","value":"2"}])"));
    CPPUNIT_ASSERT_EQUAL(422, statusOf(doc, R"([{"op":"test","path":"/o","value":{"x":1}}])"));
    CPPUNIT_ASSERT_EQUAL(422, statusOf(doc, R"([{"op":"test","path":"/missing","value":1}])"));
    // A failing test after a successful op fails the whole patch (nothing applied is returned).
    CPPUNIT_ASSERT_EQUAL(422, statusOf(doc, R"([{"op":"add","path":"/z","value":1},{"op":"test","path":"/z","value":2}])"));
  }

  void testPointerEscapes() {
    // RFC 6901 section 5: ~1 is '/', ~0 is '~'.
    const std::string doc = R"({"a/b":1,"m~n":2,"":3," ":4})";
    CPPUNIT_ASSERT_EQUAL(0, statusOf(doc, R"([{"op":"test","path":"/a~1b","value":1},{"op":"test","path":"/m~0n","value":2},)"
                                          R"({"op":"test","path":"/","value":3},{"op":"test","path":"/ ","value":4}])"));
    CPPUNIT_ASSERT_EQUAL(std::string(R"({"a/b":1,"m~n":2,"":3," ":4,"~1":5})"),
                         applyJsonPatch(doc, R"([{"op":"add","path":"/~01","value":5}])"));
    CPPUNIT_ASSERT_EQUAL(400, statusOf(doc, R"([{"op":"add","path":"/~2","value":5}])"));
    CPPUNIT_ASSERT_EQUAL(400, statusOf(doc, R"([{"op":"add","path":"a","value":5}])"));
  }

  void testNumbersVerbatim() {
    // FHIR decimals keep their text (1.50 stays 1.50, 1e2 stays 1e2).
    CPPUNIT_ASSERT_EQUAL(std::string(R"({"v":1.50,"w":[1e2,0.000],"x":-0.10})"),
                         applyJsonPatch(R"({"v":1.50,"w":[1e2]})",
                                        R"([{"op":"add","path":"/w/-","value":0.000},{"op":"add","path":"/x","value":-0.10}])"));
  }

  void testErrors() {
    const std::string doc = R"({"a":[1,2],"s":"x"})";
    CPPUNIT_ASSERT_EQUAL(400, statusOf(doc, R"({"op":"add"})"));                               // not an array
    CPPUNIT_ASSERT_EQUAL(400, statusOf(doc, R"([{"op":"add","path":"/b"}])"));                 // no value
    CPPUNIT_ASSERT_EQUAL(400, statusOf(doc, R"([{"path":"/b","value":1}])"));                  // no op
    CPPUNIT_ASSERT_EQUAL(400, statusOf(doc, R"([{"op":"frob","path":"/b","value":1}])"));      // unknown op
    CPPUNIT_ASSERT_EQUAL(400, statusOf(doc, R"([{"op":"add","path":5,"value":1}])"));          // path not a string
    CPPUNIT_ASSERT_EQUAL(400, statusOf(doc, R"([{"op":"remove","path":"/nope"}])"));           // missing target
    CPPUNIT_ASSERT_EQUAL(400, statusOf(doc, R"([{"op":"replace","path":"/nope","value":1}])"));
    CPPUNIT_ASSERT_EQUAL(400, statusOf(doc, R"([{"op":"add","path":"/nope/x","value":1}])"));  // missing parent
    CPPUNIT_ASSERT_EQUAL(400, statusOf(doc, R"([{"op":"add","path":"/a/3","value":1}])"));     // index past the end
    CPPUNIT_ASSERT_EQUAL(400, statusOf(doc, R"([{"op":"add","path":"/a/01","value":1}])"));    // leading zero
    CPPUNIT_ASSERT_EQUAL(400, statusOf(doc, R"([{"op":"remove","path":"/a/-"}])"));            // "-" names no element
    CPPUNIT_ASSERT_EQUAL(400, statusOf(doc, R"([{"op":"add","path":"/s/x","value":1}])"));     // parent is a string
    CPPUNIT_ASSERT_EQUAL(400, statusOf(doc, R"([{"op":"copy","from":"/nope","path":"/b"}])"));
    CPPUNIT_ASSERT_EQUAL(400, statusOf(doc, R"([{"op":"move","path":"/b"}])"));                // no from
    CPPUNIT_ASSERT_EQUAL(400, statusOf(doc, R"([{"op":"remove","path":""}])"));
    CPPUNIT_ASSERT_EQUAL(400, statusOf(doc, "[{\"op\":"));                                    // malformed JSON
    CPPUNIT_ASSERT_EQUAL(400, statusOf(doc, "[1]"));                                          // op not an object
    // Unknown members of an operation are ignored (RFC 6902 section 4).
    CPPUNIT_ASSERT_EQUAL(0, statusOf(doc, R"([{"op":"remove","path":"/s","extra":true}])"));
  }

  void testHostile() {
    // Self-copies double the document per operation: refused before memory runs out.
    std::string patch = "[";
    for (int i = 0; i < 40; ++i) patch += std::string(i ? "," : "") + R"({"op":"copy","from":"","path":"/x/-"})";
    patch += "]";
    CPPUNIT_ASSERT_EQUAL(400, statusOf(R"({"a":[1,2,3,4,5,6,7,8],"x":[]})", patch));
    // Deep nesting in the patch value: refused, not a stack overflow.
    std::string deep = R"([{"op":"add","path":"/d","value":)" + std::string(100000, '[') + std::string(100000, ']') + "}]";
    CPPUNIT_ASSERT_EQUAL(400, statusOf(R"({})", deep));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(JsonPatchTest);
