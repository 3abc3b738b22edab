#!/bin/sh
# test_gpu_torch.sh VGPOOL - PyTorch under `vgpool run --memory 4GiB` on a
# real GPU (run by tests/gpu/run.sh, which skips it where there is no GPU).
#
# PyTorch is what most tenants of a shared GPU run, and it reaches the driver
# only through the CUDA runtime's cuGetProcAddress, so this is the entry path
# that matters most. The interpreter is $VGPOOL_TORCH_PYTHON, else python3
# from PATH. The test is skipped (77, saying why) when that interpreter
# cannot import torch, or when torch cannot use the GPU even outside vgpool
# (a torch built for a newer CUDA than the driver, or a CPU-only build).
# If torch sees the GPU outside the container but not inside, that is a
# failure: the library broke it. torch_quota.py holds the checks.
set -u

vgpool=${1:?usage: test_gpu_torch.sh VGPOOL}
here=$(cd "$(dirname "$0")" && pwd)
tmp=${VGPOOL_TEST_TMPDIR:?run this through tests/gpu/run.sh}
py=${VGPOOL_TORCH_PYTHON:-python3}

if ! "$py" -c 'import torch' > "$tmp/import.err" 2>&1; then
  echo "SKIP: '$py' cannot import torch (set VGPOOL_TORCH_PYTHON to an interpreter that can): $(tail -n 1 "$tmp/import.err")"
  exit 77
fi
if ! "$py" -c '
import sys, torch
print("torch %s (CUDA %s): cuda available %s" % (torch.__version__, torch.version.cuda, torch.cuda.is_available()))
sys.exit(0 if torch.cuda.is_available() else 1)' > "$tmp/avail" 2>&1; then
  echo "SKIP: torch cannot use the GPU even outside vgpool: $(tail -n 1 "$tmp/avail")"
  exit 77
fi
cat "$tmp/avail"

index=${VGPOOL_GPU_TEST_DEVICE:-0}
uuid=$("$vgpool" top --once --json | tr '}' '\n' |
  sed -n "s/.*{\"index\": *$index, *\"name\": *\"[^\"]*\", *\"uuid\": *\"\([^\"]*\)\".*/\1/p" |
  head -n 1)
if [ -z "$uuid" ]; then
  echo "FAIL: cannot find device $index with vgpool top --once --json"
  exit 1
fi
echo "device $index: $uuid"

"$vgpool" run --memory 4GiB --devices "$uuid" -- "$py" "$here/torch_quota.py" 4GiB
