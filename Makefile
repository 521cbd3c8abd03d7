# The two commands of the README. Both install missing Debian packages first, then configure and build.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release -DSERVESIM_WERROR=ON

.PHONY: demo test build deps

deps:
	@./.ci/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) --log-level=WARNING
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	./$(BUILD)/servesim run scenarios/quickstart.toml --out $(BUILD)/quickstart

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
