#!/bin/sh
# test_gpu_share.sh BENCH - compute shares on a real GPU (run by run.sh).
#
# Runs the compute-share benchmark (bench/share/bench_share.c) in its quick
# form on the GPU, with NVML's per-process utilization samples as the
# ground truth instead of the simulator's: one container at 10..90% with
# 50 us, 1 ms and 20 ms kernels, two containers 30 + 60 and 10 + 90, three
# 20 / 30 / 50, and an elastic container borrowing and giving back. It
# fails when a container misses its target by more than 8 points or never
# converges (the benchmark's goal is 2; the bound is loose so that the
# test does not flake). Record the table it prints in docs/gpu-results.md.
set -eu
bench=${1:?usage: test_gpu_share.sh BENCH}
echo "# compute shares on the GPU; ground truth: NVML process utilization"
"$bench" --nvml --quick --check 8
