# A thin wrapper around meson for the README's two commands.
#
#   make demo   build, then show workloads sharing a simulated GPU
#   make test   build, then run the whole test suite
#
# BUILD selects the build directory (default: build).
BUILD ?= build
MESON_OPTS ?= -Dwerror=true

.PHONY: all build demo test bench clean deps

all: build

deps:
	@tools/deps.sh

$(BUILD)/build.ninja:
	@tools/deps.sh
	meson setup $(BUILD) $(MESON_OPTS)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

demo: build
	$(BUILD)/src/cli/vgpool demo

test: build
	meson test -C $(BUILD) --print-errorlogs --num-processes 2

bench: build
	meson test -C $(BUILD) --benchmark --verbose

clean:
	rm -rf $(BUILD)
