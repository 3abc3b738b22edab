#!/bin/sh
# test_gpu_workloads.sh BURN ALLOC VGPOOL - the workloads on a real GPU,
# bare and under `vgpool run` (run by tests/gpu/run.sh, which skips it
# where there is no GPU and clears the loader environment).
#
#   1. vgpool-burn --selftest: all five PTX kernels of src/work/kernels.ptx,
#      JIT-compiled by the driver, give the right results.
#   2. Bare, vgpool-alloc fills 2 GiB (--limit) and stops there: the board
#      has room, so a stop below that in step 3 is the quota, not the board.
#   3. Under `vgpool run --memory 1GiB`, a fill through each allocation API
#      (cuMemAlloc, pitch, async pools, VMM) stops with out-of-memory (exit
#      3) having obtained what the container's cuMemGetInfo said was free,
#      to within one chunk, never more; the container's total is 1 GiB.
#   4. vgpool-burn under the quota runs (kernels and a 256 MiB buffer) and
#      asking it for 2 GiB is refused with exit 3.
# The device is $VGPOOL_GPU_TEST_DEVICE (NVML index, default 0), selected by
# UUID for both the bare tools and the container.
set -u

burn=${1:?usage: test_gpu_workloads.sh BURN ALLOC VGPOOL}
alloc=${2:?usage: test_gpu_workloads.sh BURN ALLOC VGPOOL}
vgpool=${3:?usage: test_gpu_workloads.sh BURN ALLOC VGPOOL}
tmp=${VGPOOL_TEST_TMPDIR:?run this through tests/gpu/run.sh}
MiB=1048576
GiB=1073741824
failed=0

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

# The number after "key": in a one-line JSON report (or empty).
field() {
  sed -n "s/.*\"$2\":\([-0-9.]*\).*/\1/p" "$1" | head -n 1
}
sfield() {
  sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p" "$1" | head -n 1
}

index=${VGPOOL_GPU_TEST_DEVICE:-0}
uuid=$("$vgpool" top --once --json | tr '}' '\n' |
  sed -n "s/.*{\"index\": *$index, *\"name\": *\"[^\"]*\", *\"uuid\": *\"\([^\"]*\)\".*/\1/p" |
  head -n 1)
if [ -z "$uuid" ]; then
  echo "FAIL: cannot find device $index with vgpool top --once --json:"
  "$vgpool" top --once --json
  exit 1
fi
echo "device $index: $uuid"
export CUDA_VISIBLE_DEVICES="$uuid"

# 1. Self-test of the kernels.
if "$burn" --selftest > "$tmp/selftest.out" 2>&1; then
  pass "vgpool-burn --selftest: $(tail -n 1 "$tmp/selftest.out")"
else
  fail "vgpool-burn --selftest exited $?:"
  sed 's/^/  /' "$tmp/selftest.out"
fi

# 2. The board itself has room for 2 GiB.
"$alloc" --chunk 64MiB --limit 2GiB --json > "$tmp/bare.json" 2> "$tmp/bare.err"
rc=$?
got=$(field "$tmp/bare.json" obtained_bytes)
if [ $rc -eq 0 ] && [ "${got:-0}" -ge $((2 * GiB)) ]; then
  pass "bare vgpool-alloc obtained 2 GiB"
else
  fail "bare vgpool-alloc --limit 2GiB: exit $rc, obtained ${got:-?}; the board must have 3 GiB free for these tests"
  cat "$tmp/bare.err"
fi

# 3. Fills under a 1 GiB quota, one allocation API at a time.
for api in malloc pitch async vmm; do
  out="$tmp/fill-$api.json"
  "$vgpool" run --memory 1GiB --devices "$uuid" -- \
    "$alloc" --api "$api" --chunk 64MiB --json > "$out" 2> "$tmp/fill-$api.err"
  rc=$?
  total=$(field "$out" total_bytes)
  before=$(field "$out" free_bytes_before)
  got=$(field "$out" obtained_bytes)
  why=$(sfield "$out" stopped_by)
  what="api $api under --memory 1GiB: exit $rc, total ${total:-?}, free before ${before:-?}, obtained ${got:-?}, stopped by ${why:-?}"
  if [ $rc -eq 3 ] && [ "$why" = oom ] && [ "${total:-0}" -eq $GiB ] &&
     [ "${before:-0}" -gt 0 ] && [ "$before" -lt $GiB ] &&
     [ "${got:-0}" -le "$before" ] && [ "$got" -gt $((before - 2 * 64 * MiB)) ]; then
    pass "$what"
  else
    fail "$what"
    sed 's/^/  /' "$tmp/fill-$api.err"
  fi
done

# 4. A burn inside the quota runs; one asking for more than the quota is refused.
if "$vgpool" run --memory 1GiB --devices "$uuid" -- \
    "$burn" --memory 256MiB --kernel-us 1000 --saturate --duration 1 --json \
    > "$tmp/burn.json" 2> "$tmp/burn.err"; then
  k=$(field "$tmp/burn.json" kernels)
  if [ "${k:-0}" -gt 0 ]; then
    pass "vgpool-burn under --memory 1GiB: $k kernels, $(field "$tmp/burn.json" kernels_per_s)/s"
  else
    fail "vgpool-burn under --memory 1GiB ran no kernels"
  fi
else
  fail "vgpool-burn --memory 256MiB under --memory 1GiB exited $?:"
  sed 's/^/  /' "$tmp/burn.err"
fi
"$vgpool" run --memory 1GiB --devices "$uuid" -- \
  "$burn" --memory 2GiB --kernel-us 1000 --duration 1 > /dev/null 2> "$tmp/burn-big.err"
rc=$?
if [ $rc -eq 3 ]; then
  pass "vgpool-burn --memory 2GiB under --memory 1GiB: out of memory (exit 3)"
else
  fail "vgpool-burn --memory 2GiB under --memory 1GiB: exit $rc, expected 3"
  sed 's/^/  /' "$tmp/burn-big.err"
fi

if [ $failed -ne 0 ]; then
  echo "$failed failed"
  exit 1
fi
echo "all checks passed"
