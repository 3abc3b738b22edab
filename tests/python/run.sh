#!/bin/sh
# run.sh SCRIPT [ARGS...] - run a Python test against the simulated GPU node.
#
# Makes sure the test virtualenv exists (venv.sh, in <build>/python-venv),
# puts the build's simulated driver (libcuda.so.1, libnvidia-ml.so.1 in
# <build>/src/sim) first on LD_LIBRARY_PATH, gives the test a node state file
# of its own in a fresh temporary directory (VGPOOL_SIM_STATE; the directory
# is VGPOOL_TEST_TMPDIR), runs SCRIPT with the venv's Python and exits with
# its status (77 = skipped, as meson counts it).
set -u

here=$(cd "$(dirname "$0")" && pwd)
build=${VGPOOL_BUILD_DIR:?run.sh: VGPOOL_BUILD_DIR must name the build directory}
venv="$build/python-venv"

"$here/venv.sh" "$venv" || exit 1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vgpool-py.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
export VGPOOL_TEST_TMPDIR="$tmp"
export VGPOOL_SIM_STATE="$tmp/node.state"
export LD_LIBRARY_PATH="$build/src/sim${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export VGPOOL_LOG="${VGPOOL_LOG:-off}"
export PYTHONDONTWRITEBYTECODE=1

"$venv/bin/python" "$@"
