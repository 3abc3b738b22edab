"""test_cuda_bindings.py - NVIDIA's CUDA Python bindings (cuda-bindings,
`cuda.bindings.driver`) against the simulated node.

Usage (run.sh provides the venv and the environment):
    test_cuda_bindings.py            the test
    test_cuda_bindings.py --ptds     its child that runs with
                                     CUDA_PYTHON_CUDA_PER_THREAD_DEFAULT_STREAM=1

cuda-bindings is code nobody here wrote. It loads libcuda.so.1 with dlopen,
takes cuGetProcAddress_v2 from it, and resolves every other entry point
through that with the CUDA version its wrapper was written for (cuCtxCreate
with 12050, so the CUDA 13 signature `cuCtxCreate_v4`; cuMemAlloc with
3020, so `cuMemAlloc_v2`; ...), exactly as it does on NVIDIA's driver. If
the simulated driver answers it the way NVIDIA's would (symbols, versioned
variants, struct layouts, error codes, real bytes and real kernel effects),
the driver side of the ABI is right.

Covered: cuInit and the version; enumeration, names, UUIDs and PCI bus ids
(cross-checked against NVIDIA's NVML bindings), attributes and total memory
of an H100 and a T4; regular (cuCtxCreate_v4) and primary contexts;
cuMemAlloc / HtoD / DtoH / DtoD round trips of real bytes, sync and async;
cuMemsetD32; the PTX of src/work/kernels.ptx loaded with cuModuleLoadData,
vgpool_fill_u32 and vgpool_sum_u32 launched with cuLaunchKernel and their
results checked word by word; stream ordering, cross-stream waits on events,
asynchronous launches (a query of a running kernel says NOT_READY), events
timing vgpool_spin kernels of known length (200 ms, 2 x 50 ms); the per-thread default stream
variants (_ptds/_ptsz) the bindings pick when asked to; cuMemGetInfo following every
allocation exactly; and the documented error codes for bad devices,
contexts, pointers, sizes, names and uninitialized use.
"""
import array
import ctypes
import importlib.metadata
import os
import subprocess
import sys
import time

from cuda.bindings import driver as cu

MiB = 1 << 20
SPEC = "2xH100-80GB,1xT4"
H100_TOTAL = 81559 * MiB
T4_TOTAL = 15360 * MiB
H100_CONTEXT = 512 * MiB  # the preset's per-context footprint (src/sim/config.c)
T4_CONTEXT = 320 * MiB
R = cu.CUresult
A = cu.CUdevice_attribute
u32 = ctypes.c_uint32
u64 = ctypes.c_uint64
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


def ok(result, what):
    """Unpacks a cuda-bindings result tuple (CUresult, values...): records a
    failure unless the call succeeded, and returns the values (one value
    bare, none as None)."""
    err, rest = result[0], result[1:]
    if err != R.CUDA_SUCCESS:
        check(False, "%s: %s" % (what, err.name))
    if len(rest) == 0:
        return None
    return rest[0] if len(rest) == 1 else rest


def err_of(result):
    return result[0]


def expect(result, code, what):
    check(err_of(result) == code, "%s: %s, expected %s" % (what, err_of(result).name, code.name))


def text(buf):
    return bytes(buf).split(b"\0", 1)[0].decode()


def words(buf):
    a = array.array("I")
    a.frombytes(bytes(buf))
    return a


def free_mem():
    return ok(cu.cuMemGetInfo(), "cuMemGetInfo")[0]


def main():
    os.environ["VGPOOL_SIM_DEVICES"] = SPEC
    if sys.argv[1:] == ["--ptds"]:
        ptds_child()
        return 1 if failures else 0
    source = os.environ.get("VGPOOL_SOURCE_DIR")
    if not source:
        print("VGPOOL_SOURCE_DIR must name the source tree (for src/work/kernels.ptx)")
        return 1
    with open(os.path.join(source, "src", "work", "kernels.ptx"), "rb") as f:
        ptx = f.read()
    run(ptx)
    if failures:
        print("%d failed" % len(failures))
        return 1
    print("cuda-bindings %s: all checks passed" % importlib.metadata.version("cuda-bindings"))
    return 0


def fresh_python(code, **env):
    """Runs code in a new interpreter (a process whose driver state is
    untouched) and returns its stdout, stripped."""
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, **env),
                         capture_output=True, text=True)
    return out.returncode, out.stdout.strip(), out.stderr


def run(ptx):
    # Before cuInit, and with a malformed device spec, in fresh processes.
    rc, out, err = fresh_python(
        "from cuda.bindings import driver as cu\n"
        "print(cu.cuDeviceGetCount()[0].name, cu.cuMemAlloc(4096)[0].name)")
    check(rc == 0 and out == "CUDA_ERROR_NOT_INITIALIZED CUDA_ERROR_NOT_INITIALIZED",
          "calls before cuInit: %r %r" % (out, err[-300:]))
    rc, out, err = fresh_python(
        "from cuda.bindings import driver as cu\n"
        "print(cu.cuInit(0)[0].name, cu.cuDeviceGetCount()[0].name)",
        VGPOOL_SIM_DEVICES="2xH100-80G", VGPOOL_LOG="error")
    check(rc == 0 and out == "CUDA_ERROR_NO_DEVICE CUDA_ERROR_NOT_INITIALIZED",
          "cuInit with a malformed spec: %r" % out)
    check("H100-80G" in err, "the malformed spec's token is not named: %r" % err[-300:])

    ok(cu.cuInit(0), "cuInit")
    check(ok(cu.cuDriverGetVersion(), "cuDriverGetVersion") == 13000, "driver version")
    entry_points()
    count = ok(cu.cuDeviceGetCount(), "cuDeviceGetCount")
    check(count == 3, "device count %r" % count)
    check(text(ok(cu.cuGetErrorName(R.CUDA_ERROR_OUT_OF_MEMORY), "cuGetErrorName")) ==
          "CUDA_ERROR_OUT_OF_MEMORY", "error name")
    check(text(ok(cu.cuGetErrorString(R.CUDA_ERROR_INVALID_DEVICE), "cuGetErrorString")) ==
          "invalid device ordinal", "error string")

    devices = identity(count)
    h100, t4 = devices[0], devices[2]
    attributes(h100, t4)

    # A regular context, created with the CUDA 13 signature (cuCtxCreate_v4:
    # no creation parameters, flags, device).
    ctx = ok(cu.cuCtxCreate(None, 0, h100), "cuCtxCreate")
    check(int(ok(cu.cuCtxGetCurrent(), "cuCtxGetCurrent")) == int(ctx), "the new context is current")
    check(int(ok(cu.cuCtxGetDevice(), "cuCtxGetDevice")) == 0, "context device")
    free0, total = ok(cu.cuMemGetInfo(), "cuMemGetInfo")
    check((free0, total) == (H100_TOTAL - H100_CONTEXT, H100_TOTAL),
          "memory info with one context: %r" % ((free0, total),))

    memory(free0)
    module = ok(cu.cuModuleLoadData(ptx + b"\0"), "cuModuleLoadData(kernels.ptx)")
    kernels(module)
    timing(module)
    errors(module, ctx, h100)
    ok(cu.cuModuleUnload(module), "cuModuleUnload")

    other_devices(t4, ctx)
    child = subprocess.run([sys.executable, os.path.abspath(__file__), "--ptds"],
                           env=dict(os.environ, CUDA_PYTHON_CUDA_PER_THREAD_DEFAULT_STREAM="1"),
                           capture_output=True, text=True)
    sys.stdout.write(child.stdout)
    check(child.returncode == 0, "the per-thread default stream child failed: %s" % child.stderr[-500:])
    ok(cu.cuCtxDestroy(ctx), "cuCtxDestroy")
    expect(cu.cuCtxPushCurrent(ctx), R.CUDA_ERROR_INVALID_CONTEXT, "pushing a destroyed context")
    expect(cu.cuMemAlloc(4096), R.CUDA_ERROR_INVALID_CONTEXT, "allocating with no current context")


def entry_points():
    """What cuda-bindings resolved through cuGetProcAddress_v2: every
    pointer must be the driver's export of exactly the versioned name the
    bindings asked for (their table names it: __cuCtxCreate_v4,
    __cuMemAlloc_v2, ...), and everything this test calls must be there."""
    from cuda.bindings._bindings import cydriver
    table = cydriver._inspect_function_pointers()
    lib = ctypes.CDLL("libcuda.so.1")
    resolved = {name[2:]: ptr for name, ptr in table.items() if ptr}
    wrong = []
    for name, ptr in sorted(resolved.items()):
        try:
            export = ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
        except AttributeError:
            export = None
        if export != ptr:
            wrong.append(name)
    check(not wrong, "cuGetProcAddress_v2 gave other functions than the exports for %s" % wrong)
    needed = {"cuCtxCreate_v4", "cuMemAlloc_v2", "cuMemFree_v2", "cuMemGetInfo_v2",
              "cuMemcpyHtoD_v2", "cuMemcpyDtoH_v2", "cuMemcpyDtoD_v2", "cuMemsetD32_v2",
              "cuModuleLoadData", "cuModuleGetFunction", "cuLaunchKernel",
              "cuEventElapsedTime_v2", "cuStreamWaitEvent", "cuDevicePrimaryCtxRelease_v2",
              "cuDeviceGetUuid_v2", "cuDeviceTotalMem_v2", "cuCtxDestroy_v2"}
    check(needed <= set(resolved), "not resolved: %s" % sorted(needed - set(resolved)))
    print("cuda-bindings resolved %d of the %d entry points it knows" % (len(resolved), len(table)))


def ptds_child():
    """With CUDA_PYTHON_CUDA_PER_THREAD_DEFAULT_STREAM set, the bindings ask
    cuGetProcAddress_v2 for the per-thread default stream flavour: every
    stream-ordered call must come back as its _ptds (synchronous) or _ptsz
    (asynchronous) export, and work on the per-thread default stream."""
    from cuda.bindings._bindings import cydriver
    ok(cu.cuInit(0), "cuInit")
    lib = ctypes.CDLL("libcuda.so.1")

    def export(name):
        try:
            return ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
        except AttributeError:
            return None
    table = {name[2:]: ptr for name, ptr in cydriver._inspect_function_pointers().items() if ptr}
    for name, suffix in (("cuMemcpyHtoD_v2", "_ptds"), ("cuMemcpyDtoH_v2", "_ptds"),
                         ("cuMemsetD32_v2", "_ptds"), ("cuLaunchKernel", "_ptsz"),
                         ("cuStreamSynchronize", "_ptsz"), ("cuMemcpyHtoDAsync_v2", "_ptsz"),
                         ("cuEventRecord", "_ptsz")):
        check(table.get(name) is not None and table.get(name) == export(name + suffix),
              "%s resolved to something other than %s%s" % (name, name, suffix))
    check(table.get("cuMemAlloc_v2") == export("cuMemAlloc_v2"), "cuMemAlloc_v2 is not stream-ordered")

    ctx = ok(cu.cuCtxCreate(None, 0, ok(cu.cuDeviceGet(1), "cuDeviceGet")), "cuCtxCreate")
    with open(os.path.join(os.environ["VGPOOL_SOURCE_DIR"], "src", "work", "kernels.ptx"), "rb") as f:
        module = ok(cu.cuModuleLoadData(f.read() + b"\0"), "cuModuleLoadData")
    fill = ok(cu.cuModuleGetFunction(module, b"vgpool_fill_u32"), "cuModuleGetFunction")
    n = 4096
    p = ok(cu.cuMemAlloc(4 * n), "cuMemAlloc")
    ok(cu.cuMemsetD32(p, 1, n), "cuMemsetD32_v2_ptds")
    launch(fill, 4, 128, cu.CU_STREAM_PER_THREAD, (p, 9, n // 2), (None, u32, u64))
    ok(cu.cuStreamSynchronize(cu.CU_STREAM_PER_THREAD), "cuStreamSynchronize_ptsz")
    back = bytearray(4 * n)
    ok(cu.cuMemcpyDtoH(back, p, 4 * n), "cuMemcpyDtoH_v2_ptds")
    w = words(back)
    check(w[:n // 2] == array.array("I", [9]) * (n // 2) and
          w[n // 2:] == array.array("I", [1]) * (n // 2), "fill on the per-thread stream")
    ok(cu.cuMemFree(p), "cuMemFree")
    ok(cu.cuCtxDestroy(ctx), "cuCtxDestroy")
    print("per-thread default stream: %d entry points resolved, %d of them _ptds/_ptsz" %
          (len(table), sum(1 for name, ptr in table.items()
                           if ptr in (export(name + "_ptds"), export(name + "_ptsz")))))


def identity(count):
    """Names, UUIDs and PCI bus ids of every device, checked against what
    NVIDIA's NVML bindings read from the simulated NVML."""
    import pynvml as nv
    nv.nvmlInit()
    devices = []
    for i in range(count):
        dev = ok(cu.cuDeviceGet(i), "cuDeviceGet(%d)" % i)
        devices.append(dev)
        h = nv.nvmlDeviceGetHandleByIndex(i)
        name = text(ok(cu.cuDeviceGetName(256, dev), "cuDeviceGetName"))
        check(name == nv.nvmlDeviceGetName(h), "name of %d: %r" % (i, name))
        raw = bytes(ok(cu.cuDeviceGetUuid(dev), "cuDeviceGetUuid").bytes)
        x = raw.hex()
        uuid = "GPU-%s-%s-%s-%s-%s" % (x[0:8], x[8:12], x[12:16], x[16:20], x[20:32])
        check(uuid == nv.nvmlDeviceGetUUID(h), "UUID of %d: %s" % (i, uuid))
        bus = text(ok(cu.cuDeviceGetPCIBusId(64, dev), "cuDeviceGetPCIBusId"))
        nv_bus = nv.nvmlDeviceGetPciInfo(h).busIdLegacy
        check(bus.lower() == nv_bus.lower(), "PCI bus id of %d: %r vs NVML %r" % (i, bus, nv_bus))
        back = ok(cu.cuDeviceGetByPCIBusId(bus.encode()), "cuDeviceGetByPCIBusId")
        check(int(back) == i, "device by PCI bus id %r: %r" % (bus, back))
    nv.nvmlShutdown()
    names = [text(ok(cu.cuDeviceGetName(256, d), "name")) for d in devices]
    check(names == ["NVIDIA H100 80GB HBM3"] * 2 + ["Tesla T4"], "names %r" % names)
    check(len({bytes(ok(cu.cuDeviceGetUuid(d), "uuid").bytes) for d in devices}) == 3,
          "UUIDs are not distinct")
    return devices


def attributes(h100, t4):
    def attr(a, dev):
        return ok(cu.cuDeviceGetAttribute(a, dev), "cuDeviceGetAttribute(%s)" % a.name)
    for dev, sms, cc, total in ((h100, 132, (9, 0), H100_TOTAL), (t4, 40, (7, 5), T4_TOTAL)):
        got = (attr(A.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev),
               (attr(A.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev),
                attr(A.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev)),
               ok(cu.cuDeviceTotalMem(dev), "cuDeviceTotalMem"))
        check(got == (sms, cc, total), "SMs, compute capability, memory of %r: %r" % (dev, got))
        check(attr(A.CU_DEVICE_ATTRIBUTE_WARP_SIZE, dev) == 32, "warp size")
        check(attr(A.CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, dev) == 1024, "threads per block")
        check(attr(A.CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING, dev) == 1, "unified addressing")
        check(attr(A.CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS, dev) in (0, 1), "managed access")
    check(attr(A.CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, h100) == 0x17, "H100 PCI bus")
    check(attr(A.CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR, h100) == 2048,
          "H100 threads per SM")
    check(attr(A.CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR, t4) == 1024, "T4 threads per SM")


def memory(free0):
    """Allocation, real bytes through every copy direction, memset, and
    cuMemGetInfo following each allocation to the byte."""
    n = 1 * MiB
    a = ok(cu.cuMemAlloc(n), "cuMemAlloc(1 MiB)")
    b = ok(cu.cuMemAlloc(n), "cuMemAlloc(1 MiB)")
    check(free_mem() == free0 - 2 * n, "free after two 1 MiB allocations: %d" % (free0 - free_mem()))
    base, size = ok(cu.cuMemGetAddressRange(a), "cuMemGetAddressRange")
    check((int(base), size) == (int(a), n), "address range %r" % ((int(base), size),))
    check(ok(cu.cuPointerGetAttribute(cu.CUpointer_attribute.CU_POINTER_ATTRIBUTE_MEMORY_TYPE, a),
             "cuPointerGetAttribute") == cu.CUmemorytype.CU_MEMORYTYPE_DEVICE, "memory type")

    pattern = bytes((i * 7 + (i >> 8)) & 0xFF for i in range(n))
    ok(cu.cuMemcpyHtoD(a, pattern, n), "cuMemcpyHtoD")
    ok(cu.cuMemcpyDtoD(b, a, n), "cuMemcpyDtoD")
    back = bytearray(n)
    ok(cu.cuMemcpyDtoH(back, b, n), "cuMemcpyDtoH")
    check(back == pattern, "HtoD -> DtoD -> DtoH round trip changed the bytes")

    # memset of the middle half, then the whole buffer read back.
    ok(cu.cuMemsetD32(cu.CUdeviceptr(int(a) + n // 4), 0xDEADBEEF, n // 8), "cuMemsetD32")
    ok(cu.cuMemcpyDtoH(back, a, n), "cuMemcpyDtoH")
    w, orig = words(back), words(pattern)
    q = n // 16
    check(w[q:3 * q] == array.array("I", [0xDEADBEEF]) * (2 * q), "memset words")
    check(w[:q] == orig[:q] and w[3 * q:] == orig[3 * q:], "memset wrote outside its range")

    # Asynchronous copies on a stream, ordered with a memset.
    s = ok(cu.cuStreamCreate(0), "cuStreamCreate")
    ok(cu.cuMemsetD8Async(b, 0x5A, n, s), "cuMemsetD8Async")
    ok(cu.cuMemcpyHtoDAsync(b, pattern[:4096], 4096, s), "cuMemcpyHtoDAsync")
    out = bytearray(n)
    ok(cu.cuMemcpyDtoHAsync(out, b, n, s), "cuMemcpyDtoHAsync")
    ok(cu.cuStreamSynchronize(s), "cuStreamSynchronize")
    check(out[:4096] == pattern[:4096] and out[4096:] == b"\x5a" * (n - 4096),
          "async memset + copies out of order")
    ok(cu.cuStreamDestroy(s), "cuStreamDestroy")

    # A device's worth is refused; nothing is charged for the refusal.
    expect(cu.cuMemAlloc(H100_TOTAL), R.CUDA_ERROR_OUT_OF_MEMORY, "allocating the whole board")
    check(free_mem() == free0 - 2 * n, "a refused allocation changed free memory")
    ok(cu.cuMemFree(a), "cuMemFree")
    ok(cu.cuMemFree(b), "cuMemFree")
    check(free_mem() == free0, "free after freeing everything: off by %d" % (free0 - free_mem()))


def launch(fn, grid, block, stream, values, types):
    ok(cu.cuLaunchKernel(fn, grid, 1, 1, block, 1, 1, 0, stream, (tuple(values), tuple(types)), 0),
       "cuLaunchKernel")


def kernels(module):
    """vgpool_fill_u32 and vgpool_sum_u32 from kernels.ptx: real effects,
    stream order, and a wait on an event of another stream."""
    fill = ok(cu.cuModuleGetFunction(module, b"vgpool_fill_u32"), "cuModuleGetFunction(fill)")
    total = ok(cu.cuModuleGetFunction(module, b"vgpool_sum_u32"), "cuModuleGetFunction(sum)")
    expect(cu.cuModuleGetFunction(module, b"vgpool_nope"), R.CUDA_ERROR_NOT_FOUND,
           "a kernel the PTX does not define")

    n = 1 << 20  # words
    buf = ok(cu.cuMemAlloc(4 * n), "cuMemAlloc(4 MiB)")
    acc = ok(cu.cuMemAlloc(8), "cuMemAlloc(8)")
    s1 = ok(cu.cuStreamCreate(cu.CUstream_flags.CU_STREAM_NON_BLOCKING), "cuStreamCreate")
    s2 = ok(cu.cuStreamCreate(cu.CUstream_flags.CU_STREAM_NON_BLOCKING), "cuStreamCreate")

    # Fill all, then overwrite the first quarter; sum on the same stream
    # without synchronizing in between.
    ok(cu.cuMemsetD32Async(acc, 0, 2, s1), "cuMemsetD32Async")
    launch(fill, 64, 256, s1, (buf, 0x01020304, n), (None, u32, u64))
    launch(fill, 7, 128, s1, (buf, 3, n // 4), (None, u32, u64))
    launch(total, 64, 256, s1, (buf, n, acc), (None, u64, None))
    got = bytearray(8)
    ok(cu.cuMemcpyDtoHAsync(got, acc, 8, s1), "cuMemcpyDtoHAsync")
    ok(cu.cuStreamSynchronize(s1), "cuStreamSynchronize")
    want = 3 * (n // 4) + 0x01020304 * (n - n // 4)
    check(int.from_bytes(got, "little") == want,
          "sum on the device %d, expected %d" % (int.from_bytes(got, "little"), want))
    host = bytearray(4 * n)
    ok(cu.cuMemcpyDtoH(host, buf, 4 * n), "cuMemcpyDtoH")
    w = words(host)
    check(w[:n // 4] == array.array("I", [3]) * (n // 4) and
          w[n // 4:] == array.array("I", [0x01020304]) * (n - n // 4), "filled words")

    # Stream 2 waits for an event recorded on stream 1 after a long spin
    # and a fill; its sum must see the fill.
    spin = ok(cu.cuModuleGetFunction(module, b"vgpool_spin"), "cuModuleGetFunction(spin)")
    ev = ok(cu.cuEventCreate(cu.CUevent_flags.CU_EVENT_DISABLE_TIMING), "cuEventCreate")
    ok(cu.cuMemsetD32(acc, 0, 2), "cuMemsetD32")
    launch(spin, 132, 128, s1, (50_000_000,), (u64,))
    launch(fill, 32, 256, s1, (buf, 5, n), (None, u32, u64))
    ok(cu.cuEventRecord(ev, s1), "cuEventRecord")
    ok(cu.cuStreamWaitEvent(s2, ev, 0), "cuStreamWaitEvent")
    launch(total, 32, 256, s2, (buf, n, acc), (None, u64, None))
    ok(cu.cuStreamSynchronize(s2), "cuStreamSynchronize")
    ok(cu.cuMemcpyDtoH(got, acc, 8), "cuMemcpyDtoH")
    check(int.from_bytes(got, "little") == 5 * n,
          "sum after a cross-stream wait %d, expected %d" % (int.from_bytes(got, "little"), 5 * n))

    for s in (s1, s2):
        ok(cu.cuStreamDestroy(s), "cuStreamDestroy")
    ok(cu.cuEventDestroy(ev), "cuEventDestroy")
    ok(cu.cuMemFree(buf), "cuMemFree")
    ok(cu.cuMemFree(acc), "cuMemFree")


def timing(module):
    """Launches are asynchronous, and events time vgpool_spin kernels of
    known length. One block per SM is one wave, so a kernel takes its ns
    argument (at least that on a GPU, which spins on its clock); the upper
    bounds are loose for a loaded machine."""
    spin = ok(cu.cuModuleGetFunction(module, b"vgpool_spin"), "cuModuleGetFunction(spin)")
    s = ok(cu.cuStreamCreate(0), "cuStreamCreate")

    # Right after the launch returns, a 400 ms kernel is still running. A
    # query that says it is done is only allowed once 400 ms have passed
    # (this process was descheduled for that long); then try again.
    for attempt in range(3):
        t0 = time.monotonic()
        launch(spin, 132, 128, s, (400_000_000,), (u64,))
        state = err_of(cu.cuStreamQuery(s))
        waited = time.monotonic() - t0
        ok(cu.cuStreamSynchronize(s), "cuStreamSynchronize")
        if state == R.CUDA_ERROR_NOT_READY:
            break
        if not check(state == R.CUDA_SUCCESS and waited >= 0.4,
                     "query of a stream running a 400 ms kernel after %.3f s: %s" %
                     (waited, state.name)):
            break
    else:
        check(False, "three 400 ms kernels were each done when the launch returned")
    ok(cu.cuStreamQuery(s), "cuStreamQuery after synchronize")

    e0, e1, e2 = (ok(cu.cuEventCreate(cu.CUevent_flags.CU_EVENT_DEFAULT), "cuEventCreate")
                  for _ in range(3))
    ok(cu.cuEventRecord(e0, s), "cuEventRecord")
    launch(spin, 132, 128, s, (200_000_000,), (u64,))
    ok(cu.cuEventRecord(e1, s), "cuEventRecord")
    for _ in range(2):
        launch(spin, 132, 128, s, (50_000_000,), (u64,))
    ok(cu.cuEventRecord(e2, s), "cuEventRecord")
    ok(cu.cuEventSynchronize(e2), "cuEventSynchronize")
    ok(cu.cuEventQuery(e1), "cuEventQuery after synchronize")
    one = ok(cu.cuEventElapsedTime(e0, e1), "cuEventElapsedTime")
    two = ok(cu.cuEventElapsedTime(e1, e2), "cuEventElapsedTime")
    check(one is not None and 200 * 0.999 <= one <= 200 * 3 + 100, "a 200 ms spin took %r ms" % one)
    check(two is not None and 100 * 0.999 <= two <= 100 * 3 + 100,
          "two 50 ms spins took %r ms" % two)
    print("event timing: 200 ms spin %.3f ms, 2 x 50 ms spins %.3f ms" % (one or -1, two or -1))
    for e in (e0, e1, e2):
        ok(cu.cuEventDestroy(e), "cuEventDestroy")
    ok(cu.cuStreamDestroy(s), "cuStreamDestroy")


def errors(module, ctx, h100):
    """The documented error codes for bad input."""
    expect(cu.cuDeviceGet(3), R.CUDA_ERROR_INVALID_DEVICE, "cuDeviceGet(3) with 3 devices")
    expect(cu.cuDeviceGet(-1), R.CUDA_ERROR_INVALID_DEVICE, "cuDeviceGet(-1)")
    expect(cu.cuDeviceGetAttribute(A.CU_DEVICE_ATTRIBUTE_WARP_SIZE, 99),
           R.CUDA_ERROR_INVALID_DEVICE, "attribute of device 99")
    expect(cu.cuDeviceTotalMem(7), R.CUDA_ERROR_INVALID_DEVICE, "total memory of device 7")
    expect(cu.cuCtxCreate(None, 0, 5), R.CUDA_ERROR_INVALID_DEVICE, "context on device 5")
    expect(cu.cuMemAlloc(0), R.CUDA_ERROR_INVALID_VALUE, "cuMemAlloc(0)")
    expect(cu.cuMemFree(cu.CUdeviceptr(0x1234)), R.CUDA_ERROR_INVALID_VALUE, "freeing a bogus pointer")
    p = ok(cu.cuMemAlloc(4096), "cuMemAlloc")
    ok(cu.cuMemFree(p), "cuMemFree")
    expect(cu.cuMemFree(p), R.CUDA_ERROR_INVALID_VALUE, "freeing twice")
    expect(cu.cuModuleGetFunction(module, b""), R.CUDA_ERROR_NOT_FOUND, "an empty kernel name")
    e_a = ok(cu.cuEventCreate(0), "cuEventCreate")
    e_b = ok(cu.cuEventCreate(0), "cuEventCreate")
    expect(cu.cuEventElapsedTime(e_a, e_b), R.CUDA_ERROR_INVALID_HANDLE,
           "elapsed time between events never recorded")
    ok(cu.cuEventDestroy(e_a), "cuEventDestroy")
    ok(cu.cuEventDestroy(e_b), "cuEventDestroy")
    # No current context: pop ours, and the context-bound calls refuse.
    popped = ok(cu.cuCtxPopCurrent(), "cuCtxPopCurrent")
    check(int(popped) == int(ctx), "popped another context")
    check(int(ok(cu.cuCtxGetCurrent(), "cuCtxGetCurrent")) == 0, "a context is still current")
    expect(cu.cuMemAlloc(4096), R.CUDA_ERROR_INVALID_CONTEXT, "cuMemAlloc with no context")
    expect(cu.cuMemGetInfo(), R.CUDA_ERROR_INVALID_CONTEXT, "cuMemGetInfo with no context")
    expect(cu.cuStreamCreate(0), R.CUDA_ERROR_INVALID_CONTEXT, "cuStreamCreate with no context")
    ok(cu.cuCtxPushCurrent(ctx), "cuCtxPushCurrent")


def other_devices(t4, ctx):
    """The primary context of the T4: memory figures of that board, and the
    fill kernel working there too (a module is per context)."""
    primary = ok(cu.cuDevicePrimaryCtxRetain(t4), "cuDevicePrimaryCtxRetain")
    flags, active = ok(cu.cuDevicePrimaryCtxGetState(t4), "cuDevicePrimaryCtxGetState")
    check(active == 1, "primary context of the T4 not active after retain")
    ok(cu.cuCtxPushCurrent(primary), "cuCtxPushCurrent(primary)")
    check(int(ok(cu.cuCtxGetDevice(), "cuCtxGetDevice")) == 2, "primary context device")
    free, total = ok(cu.cuMemGetInfo(), "cuMemGetInfo")
    check((free, total) == (T4_TOTAL - T4_CONTEXT, T4_TOTAL), "T4 memory %r" % ((free, total),))
    p = ok(cu.cuMemAlloc(64 * MiB), "cuMemAlloc on the T4")
    check(free_mem() == T4_TOTAL - T4_CONTEXT - 64 * MiB, "T4 free after 64 MiB")
    ok(cu.cuMemsetD32(p, 0xA5A5A5A5, 16 * MiB), "cuMemsetD32 on the T4")
    tail = bytearray(16)
    ok(cu.cuMemcpyDtoH(tail, cu.CUdeviceptr(int(p) + 64 * MiB - 16), 16), "cuMemcpyDtoH on the T4")
    check(tail == b"\xa5" * 16, "T4 memset %r" % bytes(tail))
    ok(cu.cuMemFree(p), "cuMemFree")
    check(int(ok(cu.cuCtxPopCurrent(), "cuCtxPopCurrent")) == int(primary), "popped the primary")
    ok(cu.cuDevicePrimaryCtxRelease(t4), "cuDevicePrimaryCtxRelease")
    check(ok(cu.cuDevicePrimaryCtxGetState(t4), "cuDevicePrimaryCtxGetState")[1] == 0,
          "primary context still active after its last release")
    check(int(ok(cu.cuCtxGetCurrent(), "cuCtxGetCurrent")) == int(ctx), "the H100 context is current again")


if __name__ == "__main__":
    sys.exit(main())
