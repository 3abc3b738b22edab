#!/bin/sh
# bench/hook/run.sh - what libvgpool.so adds to the calls it wraps.
#
# Usage: bench/hook/run.sh [BUILD_DIR]     (default: build)
#
# Runs <build>/bench/hook/vgpool-bench-hook (bench_hook.c) twice per
# measurement, with the same arguments against the same driver: bare, and
# with <build>/src/hook/libvgpool.so preloaded in a container that
# `vgpool run --keep` created with an 8 GiB memory quota and no compute
# share (so the library is active and launches take the unthrottled path).
# The difference is the library's overhead. Per operation (a cuMemAlloc_v2 +
# cuMemFree_v2 pair of 1 MiB, a cuLaunchKernel enqueue, a cuMemGetInfo_v2)
# it prints:
#
#   instructions per op on the calling thread under callgrind
#     (--collect-atstart=no --toggle-collect=vgp_bench_<op>), bare and
#     preloaded; the instructions the library adds; and how many of those
#     execute in libvgpool.so itself (the rest are the libc and driver
#     calls it makes). "Added" is the difference of the two runs leaving
#     out the wrapped driver calls themselves (their inclusive cost, from
#     callgrind's call graph): those do the same work in both runs, but the
#     simulated driver's cost varies by a few percent from run to run with
#     the interleaving of its threads, which would swamp a launch's figure;
#     what remains is exact and repeatable;
#   system calls per op on the calling thread under strace -f, counted
#     between the getppid() brackets around each measured batch, and (with
#     strace -k, where strace can unwind stacks) how many of them
#     libvgpool.so made itself (its code is the innermost caller outside
#     libc; a driver call made from a wrapper is the driver's);
#   wall-clock ns per op from native runs (median of VGPOOL_BENCH_REPEAT
#     alternating runs each), and the ratio preloaded / bare;
#   the calls that leave libvgpool.so per op (from callgrind's call graph):
#     for a launch, the driver's cuLaunchKernel and nothing else means no
#     lock, no system call and no allocation on that path.
#
# The driver is the build's simulated one on a private node (one H100), or
# the system's libcuda.so.1 with VGPOOL_BENCH_DRIVER=system (on a GPU
# machine). Without valgrind or strace those columns read n/a. Environment:
# VGPOOL_BENCH_ITERS (native iterations, 20000), VGPOOL_BENCH_CG_ITERS
# (callgrind and strace iterations, 2000), VGPOOL_BENCH_REPEAT (5).
set -eu

build=${1:-build}
build=$(cd "$build" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
exe=$build/bench/hook/vgpool-bench-hook
lib=$build/src/hook/libvgpool.so
vgpool=$build/src/cli/vgpool
for f in "$exe" "$lib" "$vgpool"; do
    if [ ! -e "$f" ]; then
        echo "run.sh: $f is not built (ninja -C $build)" >&2
        exit 2
    fi
done
py=$(command -v python3 || true)
if [ -z "$py" ]; then
    echo "run.sh: python3 is needed to read the traces" >&2
    exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vgpool-bench-hook.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

unset LD_PRELOAD VGPOOL_CONTAINER_DIR VGPOOL_LIB CUDA_VISIBLE_DEVICES 2>/dev/null || true
unset CUDA_DEVICE_MEMORY_LIMIT CUDA_DEVICE_SM_LIMIT CUDA_TASK_PRIORITY 2>/dev/null || true
if [ "${VGPOOL_BENCH_DRIVER:-sim}" = system ]; then
    driver="the system's libcuda.so.1"
    unset LD_LIBRARY_PATH VGPOOL_SIM_CONFIG VGPOOL_SIM_STATE VGPOOL_SIM_DEVICES 2>/dev/null || true
else
    driver="the simulated driver, 1xH100-80GB"
    LD_LIBRARY_PATH=$build/src/sim
    VGPOOL_SIM_STATE=$tmp/sim.state
    VGPOOL_SIM_DEVICES=1xH100-80GB
    export LD_LIBRARY_PATH VGPOOL_SIM_STATE VGPOOL_SIM_DEVICES
    unset VGPOOL_SIM_CONFIG 2>/dev/null || true
fi
VGPOOL_ROOT=$tmp/root
VGPOOL_LOG=${VGPOOL_LOG:-error}
export VGPOOL_ROOT VGPOOL_LOG
mkdir -p "$VGPOOL_ROOT"

quota=8589934592
# The container: device 0 (NVML's numbering), 8 GiB. CMD prints the
# CUDA_VISIBLE_DEVICES vgpool gives it (the device's UUID), which both runs
# then use, so that they measure the same device whatever CUDA's ordering.
"$vgpool" run --keep --name bench --memory 8GiB --devices 0 -- \
    sh -c 'echo "$CUDA_VISIBLE_DEVICES"' > "$tmp/cvd" 2> "$tmp/run.err" || {
    echo "run.sh: vgpool run could not create the container:" >&2
    cat "$tmp/run.err" >&2
    exit 1
}
container=$VGPOOL_ROOT/containers/bench
CUDA_VISIBLE_DEVICES=$(cat "$tmp/cvd")
export CUDA_VISIBLE_DEVICES

native_iters=${VGPOOL_BENCH_ITERS:-20000}
cg_iters=${VGPOOL_BENCH_CG_ITERS:-2000}
repeat=${VGPOOL_BENCH_REPEAT:-5}
ops="allocfree launch meminfo"

# bench MODE ARGS...: runs the benchmark bare or preloaded.
bench() {
    mode=$1
    shift
    if [ "$mode" = preload ]; then
        LD_PRELOAD=$lib VGPOOL_CONTAINER_DIR=$container "$@"
    else
        "$@"
    fi
}

# 1. Native runs, alternating, for wall-clock time; the first line of each
# says what total the process saw, which shows whether the library was on.
i=0
while [ $i -lt "$repeat" ]; do
    for mode in bare preload; do
        bench $mode "$exe" --op all --iters "$native_iters" > "$tmp/native.$mode.$i"
    done
    i=$((i + 1))
done
total_of() {
    sed -n 's/^# vgpool-bench-hook:.*memory total \([0-9]*\).*/\1/p' "$tmp/native.$1.0"
}
if [ "$(total_of preload)" != "$quota" ] || [ "$(total_of bare)" = "$quota" ]; then
    echo "run.sh: the library is not active: cuMemGetInfo total $(total_of preload) preloaded," \
        "$(total_of bare) bare; expected the quota $quota preloaded" >&2
    exit 1
fi

# ns_of MODE OP: the median ns/op over the native runs.
ns_of() {
    cat "$tmp"/native."$1".* | sed -n "s/^op=$2 .*ns_per_op=\([0-9.]*\).*/\1/p" | sort -n |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else printf "%.0f", v[int((NR + 1) / 2)] }'
}

# 2. callgrind: instructions per op, bare and preloaded.
have_valgrind=0
command -v valgrind > /dev/null 2>&1 && have_valgrind=1
entry_of() {
    case $1 in
        allocfree) echo cuMemAlloc_v2,cuMemFree_v2 ;;
        launch) echo cuLaunchKernel ;;
        meminfo) echo cuMemGetInfo_v2 ;;
    esac
}
cg() { # cg MODE OP: leaves key=value lines in $tmp/cg.MODE.OP.txt
    out=$tmp/cg.$1.$2
    if [ $have_valgrind -eq 1 ] &&
        bench "$1" valgrind --tool=callgrind --collect-atstart=no \
            --toggle-collect="vgp_bench_$2" --callgrind-out-file="$out" \
            "$exe" --op "$2" --iters "$cg_iters" > "$out.log" 2>&1; then
        "$py" "$here/traces.py" callgrind "$out" libvgpool.so "$(entry_of "$2")" > "$out.txt"
    else
        : > "$out.txt"
    fi
}
# 3. strace: system calls on the calling thread per op.
# With -k (when this strace can unwind stacks) each call's stack shows
# whether libvgpool.so made it itself.
have_strace=0
stack=
if command -v strace > /dev/null 2>&1; then
    have_strace=1
    strace -f -k -o /dev/null true > /dev/null 2>&1 && stack=-k
fi
st() { # st MODE OP: leaves key=value lines in $tmp/st.MODE.OP.txt
    out=$tmp/st.$1.$2
    if [ $have_strace -eq 1 ] &&
        bench "$1" strace -f $stack -o "$out" "$exe" --op "$2" --iters "$cg_iters" \
            > "$out.log" 2>&1; then
        "$py" "$here/traces.py" strace "$out" libvgpool.so > "$out.txt"
    else
        : > "$out.txt"
    fi
}
for op in $ops; do
    for mode in bare preload; do
        cg $mode $op
        st $mode $op
    done
done

# value FILE KEY: a key=value line's value, or empty.
value() {
    sed -n "s/^$2=//p" "$1" | head -n 1
}
per_op() { # per_op COUNT: COUNT / cg_iters with DIGITS decimals, or n/a
    if [ -z "$1" ]; then echo n/a; else awk -v c="$1" -v n="$cg_iters" -v d="$2" \
        'BEGIN { printf "%.*f", d, c / n }'; fi
}
diff_of() {
    case "$1$2" in
        *n/a*) echo n/a ;;
        *) awk -v a="$1" -v b="$2" -v d="$3" 'BEGIN { printf "%+.*f", d, b - a }' ;;
    esac
}
ratio_of() {
    case "$1$2" in
        *n/a*) echo n/a ;;
        *) awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b / a }' ;;
    esac
}

# added_of OP: instructions per op the library adds, without the wrapped
# driver calls.
added_of() {
    tb=$(value "$tmp/cg.bare.$1.txt" total)
    db=$(value "$tmp/cg.bare.$1.txt" driver_incl)
    tp=$(value "$tmp/cg.preload.$1.txt" total)
    dp=$(value "$tmp/cg.preload.$1.txt" driver_incl)
    if [ -z "$tb" ] || [ -z "$db" ] || [ -z "$tp" ] || [ -z "$dp" ]; then
        echo n/a
    else
        awk -v a="$((tb - db))" -v b="$((tp - dp))" -v n="$cg_iters" \
            'BEGIN { printf "%+.0f", (b - a) / n }'
    fi
}

head -n 1 "$tmp/native.bare.0"
echo "# driver: $driver; libvgpool.so active: cuMemGetInfo total $(total_of preload) preloaded" \
    "(the container's 8 GiB quota, no compute share), $(total_of bare) bare"
echo "# $(uname -m), $(nproc 2>/dev/null || echo '?') CPUs, $(date -u +%Y-%m-%dT%H:%MZ);" \
    "callgrind and strace $cg_iters ops, native $native_iters ops x $repeat runs (median)"
printf '%-30s %28s %29s %24s\n' "" "instructions/op (callgrind)" "syscalls/op (strace)" \
    "ns/op (wall, median)"
printf '%-30s %6s %7s %6s %6s %6s %7s %6s %6s %7s %7s %6s\n' "op" "bare" "preload" "added" \
    "in lib" "bare" "preload" "added" "by lib" "bare" "preload" "ratio"
for op in $ops; do
    case $op in
        allocfree) what="cuMemAlloc+cuMemFree (1 MiB)" ;;
        launch) what="cuLaunchKernel (enqueue)" ;;
        meminfo) what="cuMemGetInfo_v2" ;;
    esac
    ib=$(per_op "$(value "$tmp/cg.bare.$op.txt" total)" 0)
    ip=$(per_op "$(value "$tmp/cg.preload.$op.txt" total)" 0)
    ia=$(added_of $op)
    il=$(per_op "$(value "$tmp/cg.preload.$op.txt" lib_self)" 0)
    sb=$(per_op "$(value "$tmp/st.bare.$op.txt" syscalls)" 3)
    sp=$(per_op "$(value "$tmp/st.preload.$op.txt" syscalls)" 3)
    sl=n/a
    [ -n "$stack" ] && sl=$(per_op "$(value "$tmp/st.preload.$op.txt" lib_syscalls)" 3)
    nb=$(ns_of bare $op)
    np=$(ns_of preload $op)
    printf '%-30s %6s %7s %6s %6s %6s %7s %6s %6s %7s %7s %6s\n' "$what" "$ib" "$ip" \
        "$ia" "$il" "$sb" "$sp" "$(diff_of "$sb" "$sp" 3)" "$sl" "$nb" "$np" \
        "$(ratio_of "$nb" "$np")"
done
echo "# calls leaving libvgpool.so, per op (callgrind call graph, preloaded):"
for op in $ops; do
    printf '#   %-10s %s\n' "$op" "$(value "$tmp/cg.preload.$op.txt" lib_calls)"
done
echo "# system calls in $cg_iters ops (strace, calling thread; \"by lib\": made by libvgpool.so itself):"
for op in $ops; do
    printf '#   %-10s bare: %s | preloaded: %s | by lib: %s\n' "$op" \
        "$(value "$tmp/st.bare.$op.txt" syscall_names)" \
        "$(value "$tmp/st.preload.$op.txt" syscall_names)" \
        "$(if [ -n "$stack" ]; then value "$tmp/st.preload.$op.txt" lib_syscall_names; else echo n/a; fi)"
done
calls=$(value "$tmp/cg.preload.launch.txt" lib_calls)
added=$(added_of launch)
lsys=$(value "$tmp/st.preload.launch.txt" lib_syscalls)
case $calls in
    "libcuda.so.1:cuLaunchKernel:1.00") path="the driver's cuLaunchKernel only: no lock, no syscall, no allocation" ;;
    "") path="n/a (no valgrind)" ;;
    *) path="ALSO CALLS OTHER FUNCTIONS: $calls" ;;
esac
echo "# launch fast path: $added instructions (goal <= 150); leaves the library for $path;" \
    "system calls made by libvgpool.so: ${lsys:-n/a}"
