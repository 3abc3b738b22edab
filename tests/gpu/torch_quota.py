"""torch_quota.py 4GiB - PyTorch inside a vgpool container with that memory
quota (run by test_gpu_torch.sh under `vgpool run --memory 4GiB`).

Checks, on the one device the container sees:
  - torch.cuda.mem_get_info() reports the quota as the total, and less free
    than that once CUDA is initialized (the context is charged);
  - a workload inside the quota runs and gives correct results: matrix
    products in float64 and float32 (TF32 off) against the CPU, and a
    1 GiB tensor filled and reduced on the device;
  - one allocation past the quota raises torch.cuda.OutOfMemoryError (or a
    RuntimeError that says out of memory); so does filling the quota in
    256 MiB steps, which must still get most of the quota (at least half)
    and never more than all of it (torch.cuda.memory_reserved);
  - after the refusals, with the cache emptied, the free memory comes back
    and the workload runs again.
Prints one line per check; exits 1 if any failed.
"""
import sys

import torch

MiB = 1 << 20
GiB = 1 << 30
failures = []


def check(cond, what):
    print("%s: %s" % ("PASS" if cond else "FAIL", what))
    if not cond:
        failures.append(what)
    return cond


def is_oom(exc):
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def workload(dev):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    g = torch.Generator().manual_seed(1234)
    a = torch.randn(1024, 768, dtype=torch.float64, generator=g)
    b = torch.randn(768, 512, dtype=torch.float64, generator=g)
    ok64 = torch.allclose((a.to(dev) @ b.to(dev)).cpu(), a @ b, rtol=1e-12, atol=1e-9)
    a32, b32 = a.float(), b.float()
    ok32 = torch.allclose((a32.to(dev) @ b32.to(dev)).cpu(), a32 @ b32, rtol=1e-4, atol=1e-3)
    n = GiB // 4
    x = torch.full((n,), 3, dtype=torch.int32, device=dev)
    total = int(x.sum(dtype=torch.int64).item())
    del x
    return ok64, ok32, total == 3 * n


def main():
    quota = int(float(sys.argv[1].replace("GiB", "")) * GiB) if len(sys.argv) > 1 else 4 * GiB
    if not check(torch.cuda.is_available(), "torch.cuda.is_available() inside the container"):
        return 1
    check(torch.cuda.device_count() == 1, "one visible device (%d)" % torch.cuda.device_count())
    dev = torch.device("cuda", 0)
    torch.cuda.init()
    free, total = torch.cuda.mem_get_info(dev)
    print("mem_get_info: free %d MiB, total %d MiB (%s)" %
          (free // MiB, total // MiB, torch.cuda.get_device_name(dev)))
    check(total == quota, "mem_get_info total %d == the quota %d" % (total, quota))
    check(0 < free < total, "mem_get_info free %d is below the total (the context is charged)" % free)

    ok64, ok32, ok_sum = workload(dev)
    check(ok64, "float64 matmul matches the CPU")
    check(ok32, "float32 matmul (no TF32) matches the CPU")
    check(ok_sum, "a 1 GiB tensor filled and summed on the device")

    try:
        big = torch.empty(quota + 256 * MiB, dtype=torch.uint8, device=dev)
        check(False, "a %d MiB tensor under a %d MiB quota was allocated" %
              (big.numel() // MiB, quota // MiB))
        del big
    except Exception as e:  # noqa: BLE001 - the type is what is checked
        check(is_oom(e), "one allocation past the quota raises out-of-memory (%s)" % type(e).__name__)

    chunks, err = [], None
    try:
        for _ in range(4 * quota // (256 * MiB)):
            chunks.append(torch.empty(256 * MiB, dtype=torch.uint8, device=dev))
    except Exception as e:  # noqa: BLE001
        err = e
    got = len(chunks) * 256 * MiB
    reserved = torch.cuda.memory_reserved(dev)
    check(err is not None and is_oom(err),
          "filling in 256 MiB steps ends in out-of-memory (%s)" % type(err).__name__)
    check(quota // 2 <= got < quota, "the fill obtained %d MiB of the %d MiB quota" %
          (got // MiB, quota // MiB))
    check(reserved <= quota, "torch reserved %d MiB, within the quota" % (reserved // MiB))
    del chunks
    torch.cuda.empty_cache()

    free_after, total_after = torch.cuda.mem_get_info(dev)
    check(total_after == quota and free_after >= free - 256 * MiB,
          "after emptying the cache: free %d MiB (was %d MiB)" % (free_after // MiB, free // MiB))
    ok64, ok32, ok_sum = workload(dev)
    check(ok64 and ok32 and ok_sum, "the workload runs again after the refusals")
    torch.cuda.synchronize(dev)
    if failures:
        print("%d failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
