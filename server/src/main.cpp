// hearth: the Hearth server executable.
#include "hearth/server/app.h"

int main(int argc, char** argv) {
  hearth::server::HearthApp app;
  return app.run(argc, argv);
}
