# ctest entry "catch2 test count": every Catch2 test case must be exactly one ctest test.
#
# catch_discover_tests turns each line of `servesim_tests --list-test-names-only` into a ctest test; a name that
# CMake splits (';' is CMake's list separator) or mangles becomes tests that match no Catch2 case, and those would
# pass while the case never runs (every discovered test also runs with --warn NoTests, which fails an empty match).
# This check fails unless the ctest tests labelled catch2 and the Catch2 cases are the same names, one each.
#   cmake -DTEST_BINARY=<servesim_tests> -DCTEST=<ctest> -DBUILD_DIR=<build dir> -P check_test_count.cmake
foreach(var TEST_BINARY CTEST BUILD_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_test_count.cmake: -D${var}=... is required")
  endif()
endforeach()

execute_process(COMMAND "${TEST_BINARY}" --list-test-names-only
                OUTPUT_VARIABLE catch_out RESULT_VARIABLE catch_rc)
if(catch_rc LESS 0)
  message(FATAL_ERROR "${TEST_BINARY} --list-test-names-only failed: ${catch_rc}")
endif()
execute_process(COMMAND "${CTEST}" -N -L "^catch2$" WORKING_DIRECTORY "${BUILD_DIR}"
                OUTPUT_VARIABLE ctest_out RESULT_VARIABLE ctest_rc)
if(NOT ctest_rc EQUAL 0)
  message(FATAL_ERROR "ctest -N failed (${ctest_rc}): ${ctest_out}")
endif()

# Catch2 names, one per line; a ';' inside a name is kept (escaped) so that it counts as one name.
string(REPLACE ";" "<semicolon>" catch_out "${catch_out}")
string(REPLACE "\n" ";" catch_lines "${catch_out}")
set(catch_names)
foreach(line IN LISTS catch_lines)
  if(NOT line STREQUAL "")
    list(APPEND catch_names "${line}")
  endif()
endforeach()

string(REPLACE ";" "<semicolon>" ctest_out "${ctest_out}")
string(REPLACE "\n" ";" ctest_lines "${ctest_out}")
set(ctest_names)
foreach(line IN LISTS ctest_lines)
  if(line MATCHES "^ *Test +#[0-9]+: (.*)$")
    list(APPEND ctest_names "${CMAKE_MATCH_1}")
  endif()
endforeach()

# A name starting with '-' reaches Catch2 as a command-line option, not a test name.
foreach(name IN LISTS catch_names)
  if(name MATCHES "^-")
    message(FATAL_ERROR "Catch2 case '${name}' starts with '-': ctest would pass it to the test binary as an option")
  endif()
endforeach()

list(LENGTH catch_names n_catch)
list(LENGTH ctest_names n_ctest)
set(missing ${catch_names})
list(REMOVE_ITEM missing ${ctest_names})
set(extra ${ctest_names})
list(REMOVE_ITEM extra ${catch_names})
set(dups ${ctest_names})
list(REMOVE_DUPLICATES dups)
list(LENGTH dups n_unique)
if(NOT n_catch EQUAL n_ctest OR missing OR extra OR NOT n_unique EQUAL n_ctest)
  string(REPLACE ";" "\n  " missing "${missing}")
  string(REPLACE ";" "\n  " extra "${extra}")
  message(FATAL_ERROR "ctest runs ${n_ctest} Catch2 tests (${n_unique} distinct) but servesim_tests has ${n_catch} "
                      "cases (a test name containing ';' is split by CMake: rename it).\n"
                      "Cases no ctest test runs:\n  ${missing}\nctest tests that are no case:\n  ${extra}")
endif()
message(STATUS "ctest runs each of the ${n_catch} Catch2 cases exactly once")
