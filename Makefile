# spooky: the two commands a new machine needs are `make demo` and `make test`.
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 10
JOBS       ?= $(shell nproc)
PYTEST     := /usr/bin/python3 -m pytest

.PHONY: all setup build build-asan unit integration fuzz test demo bench format check-format clean

all: build

setup:
	bash scripts/setup.sh

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-asan:
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DSPOOKY_SANITIZE=ON >/dev/null
	cmake --build $(BUILD_ASAN) -j $(JOBS)

# Unit tests (cmocka via CTest) and integration tests (pytest, real peers), all under
# AddressSanitizer + UndefinedBehaviorSanitizer.
unit: build-asan
	cd $(BUILD_ASAN) && ctest --output-on-failure

integration: build-asan
	SPOOKY_BIN=$(CURDIR)/$(BUILD_ASAN)/spooky SPOOKY_TESTD=$(CURDIR)/$(BUILD_ASAN)/spooky-testd \
	SPOOKY_TESTC=$(CURDIR)/$(BUILD_ASAN)/spooky-testc SPOOKY_BENCH=$(CURDIR)/$(BUILD_ASAN)/spooky-bench \
	SPOOKY_H3LOAD=$(CURDIR)/$(BUILD_ASAN)/spooky-h3load \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	$(PYTEST) -q tests/integration

# Each libFuzzer target runs FUZZ_SECONDS from the checked-in seed corpus (new inputs it finds
# stay in $(BUILD_FUZZ)/corpus-NAME).
fuzz:
	CC=clang cmake -S . -B $(BUILD_FUZZ) -DSPOOKY_FUZZ=ON -DSPOOKY_SANITIZE=ON >/dev/null
	cmake --build $(BUILD_FUZZ) -j $(JOBS) --target fuzz_router fuzz_headers fuzz_config fuzz_h1_response \
	    fuzz_request
	for t in router headers config h1_response request; do \
	    mkdir -p $(BUILD_FUZZ)/corpus-$$t && \
	    { $(BUILD_FUZZ)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
	        $(BUILD_FUZZ)/corpus-$$t tests/fuzz/corpus/$$t > $(BUILD_FUZZ)/fuzz-$$t.log 2>&1 || \
	      { tail -n 60 $(BUILD_FUZZ)/fuzz-$$t.log; echo "fuzz_$$t FAILED"; exit 1; }; } && \
	    echo "fuzz_$$t: $$(grep -a DONE $(BUILD_FUZZ)/fuzz-$$t.log | tail -n 1)"; \
	done

check-format:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

# The optimised build runs too: gcc -O2 finds warnings (maybe-uninitialized) that -O0 does not.
test: setup
	$(MAKE) check-format
	$(MAKE) build
	$(MAKE) unit
	$(MAKE) integration
	$(MAKE) fuzz

# Side-by-side benchmark (prints a table, writes bench/RESULTS.md); never fails on speed.
bench: setup build
	/usr/bin/python3 bench/run.py --bin-dir $(BUILD)

demo: setup build
	bash scripts/demo.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
