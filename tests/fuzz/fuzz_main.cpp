// One libFuzzer harness: built once per target of tests/fuzz/fuzz_entry.h, with SERVESIM_FUZZ_ENTRY naming the
// entry function (CMakeLists.txt, option SERVESIM_FUZZ). An exception other than InputError escapes the entry
// function and aborts the process: libFuzzer saves the input as a crash.
#include <cstdlib>

#include "tests/fuzz/fuzz_entry.h"

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  // The catalogs (scenarios/hardware, scenarios/models, scenarios/topologies) of the source tree.
  ::setenv("SERVESIM_HOME", SERVESIM_SOURCE_DIR, 1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)servesim::fuzz::SERVESIM_FUZZ_ENTRY(data, size);
  return 0;
}
