# The two commands of the README. Both install missing Debian packages first, then configure and build.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release -DSERVESIM_WERROR=ON

.PHONY: demo test build deps test-sanitize fuzz sanitize-configure

deps:
	@./.ci/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) --log-level=WARNING
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	./$(BUILD)/servesim run scenarios/quickstart.toml --out $(BUILD)/quickstart

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The test suite under AddressSanitizer + UndefinedBehaviorSanitizer (any finding fails the run); .ci/run runs it
# after `make test`; it leaves out the tests labelled external (the report's browser check and the notebooks,
# which exercise no code of their own under the sanitizers and run once, under `make test`). The build (clang, own
# build dir) also holds the libFuzzer harnesses of `make fuzz`, which run FUZZ_SECONDS each; any finding fails
# (tests/fuzz/README.md).
ASAN_BUILD ?= build-asan
SANITIZE_CXX ?= clang++-14
# -O1 and line tables only (enough for the sanitizers' stack traces): a lighter compile than RelWithDebInfo's -O2 -g.
SANITIZE_OPT ?= -O1 -gline-tables-only -DNDEBUG
SANITIZE_ENV = ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= scenario trace measured nccl model_config profile

sanitize-configure:
	@./.ci/install-deps.sh fuzz
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_CXX_COMPILER=$(SANITIZE_CXX) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		"-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$(SANITIZE_OPT)" -DSERVESIM_WERROR=ON -DSERVESIM_FUZZ=ON \
		-DSERVESIM_NO_CUDA=ON --log-level=WARNING

test-sanitize: sanitize-configure
	@cmake --build $(ASAN_BUILD) -j $(JOBS) --target servesim servesim_tests
	cd $(ASAN_BUILD) && $(SANITIZE_ENV) ctest --output-on-failure -j $(JOBS) -LE external

fuzz: sanitize-configure
	@cmake --build $(ASAN_BUILD) -j $(JOBS) --target fuzz_harnesses
	./tests/fuzz/run.sh $(ASAN_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)
