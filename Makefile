# Convenience wrapper around CMake. `make` builds build/mixq; `make check`
# installs what is missing (Debian), builds the fast, scalar-only and
# sanitizer variants and runs the test suite on each.
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all deps check test demo clean format fuzz

all: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release

deps:
	@scripts/deps.sh

test: all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

check: deps
	scripts/check.sh

demo: deps all
	scripts/demo.sh

# libFuzzer targets (clang, in build-fuzz/), FUZZ_SECONDS each: tests/fuzz/run.sh
FUZZ_SECONDS ?= 60
fuzz: deps
	tests/fuzz/run.sh $(FUZZ_SECONDS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-scalar build-asan build-fuzz
