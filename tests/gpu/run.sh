#!/bin/sh
# run.sh PROBE SCRIPT [ARGS...] - run one tests/gpu/ test on a real NVIDIA
# GPU, or skip it (exit 77, as meson counts a skip) saying why.
#
# The test runs only when all of these hold, each checked with
# LD_LIBRARY_PATH and LD_PRELOAD cleared, so that a build's simulated driver
# can never pass for a GPU:
#   1. /dev/nvidiactl exists (the NVIDIA kernel driver is loaded);
#   2. `nvidia-smi -L` succeeds and lists a GPU;
#   3. PROBE (gpu_probe.c) loads the real libcuda.so.1, not the simulator,
#      and cuInit finds a device.
# Then SCRIPT runs with the same cleared loader environment, VGPOOL_ROOT
# and VGPOOL_TEST_TMPDIR in a fresh temporary directory, and no simulator
# variables. A SCRIPT ending in .py runs in the Python test venv
# (tests/python/venv.sh, <build>/python-venv: pynvml, cuda-bindings); any
# other runs with sh.
#
# VGPOOL_GPU_TESTS_ON_SIM=1 is for working on these tests on a machine
# without a GPU: the checks above are skipped and SCRIPT runs against the
# build's simulated driver instead (one H100). It says so loudly; figures
# from such a run are not GPU figures.
set -u

probe=${1:?usage: run.sh PROBE SCRIPT [ARGS...]}
script=${2:?usage: run.sh PROBE SCRIPT [ARGS...]}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
build=${VGPOOL_BUILD_DIR:?run.sh: VGPOOL_BUILD_DIR must name the build directory}

skip() {
  echo "SKIP: $*"
  exit 77
}

unset LD_LIBRARY_PATH LD_PRELOAD VGPOOL_CONTAINER_DIR VGPOOL_LIB CUDA_VISIBLE_DEVICES
unset VGPOOL_SIM_DEVICES VGPOOL_SIM_CONFIG VGPOOL_SIM_STATE VGPOOL_SIM_NODE_ID
unset CUDA_DEVICE_MEMORY_LIMIT CUDA_DEVICE_SM_LIMIT CUDA_TASK_PRIORITY

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vgpool-gpu.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

if [ "${VGPOOL_GPU_TESTS_ON_SIM:-}" = 1 ]; then
  echo "NOTE: VGPOOL_GPU_TESTS_ON_SIM=1: running on the SIMULATED driver, not a GPU"
  export LD_LIBRARY_PATH="$build/src/sim"
  export VGPOOL_SIM_STATE="$tmp/node.state" VGPOOL_SIM_DEVICES=1xH100-80GB
else
  [ -e /dev/nvidiactl ] || skip "no GPU: /dev/nvidiactl does not exist (no NVIDIA kernel driver)"
  command -v nvidia-smi >/dev/null 2>&1 || skip "no GPU: nvidia-smi is not installed"
  if ! nvidia-smi -L > "$tmp/smi" 2>&1; then
    skip "no GPU: nvidia-smi -L failed: $(head -n 1 "$tmp/smi")"
  fi
  grep -q '^GPU ' "$tmp/smi" || skip "no GPU: nvidia-smi -L lists none"
  out=$("$probe") && rc=0 || rc=$?
  case $rc in
    0) ;;
    77) skip "$out" ;;
    *) echo "FAIL: $probe exited $rc: $out"; exit 1 ;;
  esac
  echo "$out"
  sed 's/^/  /' "$tmp/smi"
fi

export VGPOOL_TEST_TMPDIR="$tmp/work" VGPOOL_ROOT="$tmp/root"
export VGPOOL_LOG="${VGPOOL_LOG:-warn}" PYTHONDONTWRITEBYTECODE=1
mkdir -p "$VGPOOL_TEST_TMPDIR" "$VGPOOL_ROOT" || exit 1

case $script in
  *.py)
    venv="$build/python-venv"
    "$here/../python/venv.sh" "$venv" || exit 1
    "$venv/bin/python" "$script" "$@"
    ;;
  *)
    sh "$script" "$@"
    ;;
esac
