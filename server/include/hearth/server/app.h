#pragma once
// HearthApp: the hearth executable's lifecycle (POCO ServerApplication): options and layered
// configuration, store, FHIR service, HTTP front; graceful shutdown on SIGTERM/SIGINT.
#include <Poco/Util/ServerApplication.h>

namespace hearth::server {

class HearthApp : public Poco::Util::ServerApplication {
 public:
  HearthApp();

 protected:
  void defineOptions(Poco::Util::OptionSet& options) override;
  void initialize(Poco::Util::Application& self) override;
  int main(const std::vector<std::string>& args) override;

 private:
  void handleOption(const std::string& name, const std::string& value);
  bool helpRequested_ = false;
  bool reindexOnly_ = false;  // --reindex: rebuild the search index, then exit
  std::string configFile_;
};

}  // namespace hearth::server
