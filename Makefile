# The two commands of the README. Both install missing Debian packages first, then configure and build.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release -DSERVESIM_WERROR=ON

.PHONY: demo test build deps test-sanitize

deps:
	@./.ci/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) --log-level=WARNING
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	./$(BUILD)/servesim run scenarios/quickstart.toml --out $(BUILD)/quickstart

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The test suite under AddressSanitizer + UndefinedBehaviorSanitizer (own build dir; any finding fails the run).
# Not part of .ci/run: a cold sanitizer build alone takes well over 10 minutes on the 2-core build machine; run it
# as its own CI job (or locally before a release).
ASAN_BUILD ?= build-asan
SANITIZE_ENV = ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

test-sanitize: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSERVESIM_WERROR=ON -DSERVESIM_SANITIZE=ON \
		-DSERVESIM_NO_CUDA=ON --log-level=WARNING
	@cmake --build $(ASAN_BUILD) -j $(JOBS) --target servesim servesim_tests
	cd $(ASAN_BUILD) && $(SANITIZE_ENV) ctest --output-on-failure -j $(JOBS)
