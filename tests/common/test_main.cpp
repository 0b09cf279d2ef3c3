// Shared CppUnit runner: runs every registered suite; exit code 0 only if all passed.
// An optional first argument selects one test by name (e.g. "StoreTest::testCreate").
#include <cppunit/BriefTestProgressListener.h>
#include <cppunit/CompilerOutputter.h>
#include <cppunit/TestResult.h>
#include <cppunit/TestResultCollector.h>
#include <cppunit/TestRunner.h>
#include <cppunit/extensions/TestFactoryRegistry.h>

#include <iostream>

int main(int argc, char** argv) {
  CppUnit::TestResult controller;
  CppUnit::TestResultCollector result;
  controller.addListener(&result);
  CppUnit::BriefTestProgressListener progress;
  controller.addListener(&progress);
  CppUnit::TestRunner runner;
  runner.addTest(CppUnit::TestFactoryRegistry::getRegistry().makeTest());
  try {
    runner.run(controller, argc > 1 ? argv[1] : "");
  } catch (const std::exception& e) {
    std::cerr << "test selection failed: " << e.what() << "\n";
    return 2;
  }
  CppUnit::CompilerOutputter out(&result, std::cerr);
  out.write();
  return result.wasSuccessful() ? 0 : 1;
}
