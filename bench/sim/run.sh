#!/bin/sh
# bench/sim/run.sh - print the cost of a simulated launch and of a memcpy.
#
# Usage: bench/sim/run.sh [BUILD_DIR]     (default: build)
#
# Runs <build>/bench/sim/vgpool-bench-sim against the simulated driver of the
# same build, on a private simulated node, and prints one table:
#
#   instructions per call on the calling thread, counted by callgrind
#     (--collect-atstart=no --toggle-collect=vgp_bench_<op>, so only the
#     measured loop counts; repeatable from run to run), when valgrind is
#     installed, and
#   wall-clock nanoseconds per call from a native run.
#
# Instruction counts include the measured loop's own few instructions per
# iteration (a compare and a branch), nothing else.
set -eu

build=${1:-build}
exe=$build/bench/sim/vgpool-bench-sim
if [ ! -x "$exe" ]; then
    echo "run.sh: $exe is not built (ninja -C $build bench/sim/vgpool-bench-sim)" >&2
    exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vgpool-bench-sim.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

LD_LIBRARY_PATH=$build/src/sim
VGPOOL_SIM_STATE=$tmp/sim.state
VGPOOL_SIM_DEVICES=${VGPOOL_SIM_DEVICES:-1xH100-80GB}
export LD_LIBRARY_PATH VGPOOL_SIM_STATE VGPOOL_SIM_DEVICES
unset LD_PRELOAD VGPOOL_SIM_CONFIG 2>/dev/null || true

native_iters=${VGPOOL_BENCH_ITERS:-20000}
cg_iters=${VGPOOL_BENCH_CG_ITERS:-2000}

"$exe" --op all --iters "$native_iters" > "$tmp/native.txt"

# ns_per_op of one op from the native run.
ns_of() {
    sed -n "s/^op=$1 .*ns_per_op=\([0-9.]*\).*/\1/p" "$tmp/native.txt"
}

# Instructions per call of one op under callgrind, or "n/a".
ir_of() {
    if ! command -v valgrind >/dev/null 2>&1; then
        echo "n/a"
        return
    fi
    out=$tmp/callgrind.$1
    if ! valgrind --tool=callgrind --collect-atstart=no \
            --toggle-collect="vgp_bench_$1" --callgrind-out-file="$out" \
            "$exe" --op "$1" --iters "$cg_iters" > "$tmp/cg.$1.log" 2>&1; then
        echo "failed"
        return
    fi
    total=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$out" | head -n 1)
    if [ -z "$total" ]; then
        total=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$out" | head -n 1)
    fi
    if [ -z "$total" ]; then
        echo "n/a"
        return
    fi
    awk -v t="$total" -v n="$cg_iters" 'BEGIN { printf "%.0f", t / n }'
}

head -n 1 "$tmp/native.txt"
printf '# %s, %s\n' "$(uname -m)" "$(date -u +%Y-%m-%dT%H:%MZ)"
printf '%-32s %14s %14s\n' "call" "instr/call" "ns/call"
for op in launch htod4k htod1m; do
    case $op in
        launch) what="cuLaunchKernel (enqueue)" ;;
        htod4k) what="cuMemcpyHtoD_v2 4 KiB (sync)" ;;
        htod1m) what="cuMemcpyHtoD_v2 1 MiB (sync)" ;;
    esac
    printf '%-32s %14s %14s\n' "$what" "$(ir_of $op)" "$(ns_of $op)"
done
