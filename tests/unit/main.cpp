// Test runner: points servesim at the source tree's catalogs, so that scenarios written to temporary
// directories find scenarios/hardware and scenarios/models.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdlib>

int main(int argc, char* argv[]) {
  ::setenv("SERVESIM_HOME", SERVESIM_SOURCE_DIR, 1);
  return Catch::Session().run(argc, argv);
}
