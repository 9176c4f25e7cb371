# spooky: the two commands a new machine needs are `make demo` and `make test`.
BUILD      ?= build
BUILD_ASAN ?= build-asan
JOBS       ?= $(shell nproc)
PYTEST     := /usr/bin/python3 -m pytest

.PHONY: all setup build build-asan unit integration test demo format check-format clean

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
	SPOOKY_TESTC=$(CURDIR)/$(BUILD_ASAN)/spooky-testc \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	$(PYTEST) -q tests/integration

check-format:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

test: setup
	$(MAKE) check-format
	$(MAKE) unit
	$(MAKE) integration

demo: setup build
	bash scripts/demo.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
