#!/bin/sh
# Prints the compute-share accuracy table and writes the 10 + 90 plot.
# usage: bench/share/run.sh [builddir] [--quick]
set -eu
build=${1:-build}
shift || true
ninja -C "$build" src/cli/vgpool src/hook/libvgpool.so src/work/vgpool-burn bench/share/vgpool-bench-share >/dev/null
VGPOOL_BUILD_DIR=$(cd "$build" && pwd) exec "$build/bench/share/vgpool-bench-share" --plot "$build/share-10-90.svg" "$@"
