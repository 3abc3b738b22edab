"""test_clients_under_run.py - NVIDIA's Python bindings inside `vgpool run`
see the container's virtual GPU, not the board.

Usage:
    test_clients_under_run.py VGPOOL ALLOC [--real]

VGPOOL is the vgpool binary, ALLOC the vgpool-alloc workload. Without
--real (the python suite, under run.sh) it runs on a private simulated node
of its own making: device 1 is an H100 cut down to 6 GiB whose contexts take
288 MiB each, so every figure below is known to the byte. With --real
(tests/gpu/run.sh, on a machine with an NVIDIA GPU) the same checks run on
the real driver, on the device $VGPOOL_GPU_TEST_DEVICE (an NVML index,
default 0); figures that only the simulator fixes (the context's size, how
full the board is) are then taken from what the container reports.

One container, `vgpool run --memory 2GiB --devices <uuid>`, runs this script
again in its inside role, which only observes and reports (the checks are
all made here, outside): pynvml before CUDA is touched, then cuda-bindings
(cuCtxCreate, a 256 MiB allocation), then a second, NVML-only process of
the same container. Meanwhile a vgpool-alloc --hold outside the container
holds memory on the same device. Checked:

  - nvmlDeviceGetMemoryInfo v1 and v2 and cuMemGetInfo / cuDeviceTotalMem:
    total is the quota (2 GiB), used grows by exactly the context and the
    allocation, free = quota - context - allocated, in the CUDA process and
    in the NVML-only one alike;
  - nvmlDeviceGetComputeRunningProcesses (v3 and v2) inside shows the
    container's process and not the holder outside, while the same call
    outside the container shows both (so the holder really is there);
  - `vgpool top --json` charges the container what its client sees;
  - simulator only: when the board is fuller than the quota, free is the
    board's free memory, and an allocation it cannot hold fails;
  - exactly `free` bytes can be allocated (on a GPU: `free` rounded down to
    the 2 MiB the driver allocates in), then free is 0 (under 2 MiB) and
    one more block or byte, or any allocation past the quota, is
    CUDA_ERROR_OUT_OF_MEMORY, and a refusal charges nothing;
  - freeing and destroying the context give everything back.

The inside process and this one take turns through files in a temporary
directory (a checkpoint file written by the inside, a go file written
here), polled, never slept on blindly.
"""
import json
import os
import subprocess
import sys
import time

MiB = 1 << 20
GiB = 1 << 30
QUOTA = 2 * GiB
HELD = 256 * MiB
SIM_CONTEXT = 288 * MiB
SIM_BOARD = 6 * GiB
SIM_HOLDER = 1 * GiB          # the holder outside the container
SIM_SQUEEZE = 3584 * MiB      # the second holder that fills the board
NODE_CONF = """# written by test_clients_under_run.py
[device]
model = H100-80GB
[device]
model = H100-80GB
memory = 6GiB
context_memory = 288MiB
"""
TIMEOUT = 60
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


def poll(cond, what, timeout=TIMEOUT, alive=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        if alive is not None and alive.poll() is not None:
            check(False, "%s: the process ended (status %s) first" % (what, alive.returncode))
            return None
        time.sleep(0.01)
    check(False, "timed out waiting for " + what)
    return None


# ------------------------------------------------------------------ inside


def nvml_view(nv, handle):
    m1 = nv.nvmlDeviceGetMemoryInfo(handle)
    m2 = nv.nvmlDeviceGetMemoryInfo(handle, version=nv.nvmlMemory_v2)
    return {
        "v1": [m1.total, m1.used, m1.free],
        "v2": [m2.total, m2.reserved, m2.used, m2.free],
        "procs": sorted([p.pid, p.usedGpuMemory]
                        for p in nv.nvmlDeviceGetComputeRunningProcesses(handle)),
        "procs_v2": sorted([p.pid, p.usedGpuMemory]
                           for p in nv.nvmlDeviceGetComputeRunningProcesses_v2(handle)),
    }


def inside_nvml(uuid):
    """The NVML-only process: it never initializes CUDA."""
    import pynvml as nv
    nv.nvmlInit()
    view = nvml_view(nv, nv.nvmlDeviceGetHandleByUUID(uuid))
    view["pid"] = os.getpid()
    nv.nvmlShutdown()
    print(json.dumps(view))
    return 0


def inside(sync, squeeze):
    """The container's CUDA process: observes, reports, allocates."""
    import pynvml as nv
    from cuda.bindings import driver as cu

    def call(result):
        err, rest = result[0], result[1:]
        if err != cu.CUresult.CUDA_SUCCESS:
            raise RuntimeError("%s" % err.name)
        return rest[0] if len(rest) == 1 else rest

    def checkpoint(name, data):
        tmp = os.path.join(sync, name + ".json.tmp")
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.rename(tmp, os.path.join(sync, name + ".json"))
        go = os.path.join(sync, name + ".go")
        deadline = time.monotonic() + TIMEOUT
        while not os.path.exists(go):
            if time.monotonic() > deadline:
                raise RuntimeError("no go for checkpoint " + name)
            time.sleep(0.01)

    def info():
        return list(call(cu.cuMemGetInfo()))

    rep = {"pid": os.getpid(), "cvd": os.environ.get("CUDA_VISIBLE_DEVICES", "")}
    uuid = rep["cvd"].split(",")[0]
    nv.nvmlInit()
    handle = nv.nvmlDeviceGetHandleByUUID(uuid)
    rep["before_cuda"] = nvml_view(nv, handle)

    call(cu.cuInit(0))
    rep["count"] = call(cu.cuDeviceGetCount())
    dev = call(cu.cuDeviceGet(0))
    x = bytes(call(cu.cuDeviceGetUuid(dev)).bytes).hex()
    rep["uuid"] = "GPU-%s-%s-%s-%s-%s" % (x[0:8], x[8:12], x[12:16], x[16:20], x[20:32])
    rep["device_total"] = call(cu.cuDeviceTotalMem(dev))
    ctx = call(cu.cuCtxCreate(None, 0, dev))
    rep["ctx"] = {"cu": info(), "nvml": nvml_view(nv, handle)}

    held = call(cu.cuMemAlloc(HELD))
    call(cu.cuMemsetD32(held, 0x600DF00D, HELD // 4))
    rep["held"] = {"cu": info(), "nvml": nvml_view(nv, handle)}
    child = subprocess.run([sys.executable, os.path.abspath(__file__), "--inside-nvml", uuid],
                           capture_output=True, text=True)
    rep["nvml_child"] = json.loads(child.stdout) if child.returncode == 0 else child.stderr[-500:]
    checkpoint("held", rep)

    if squeeze:
        # The board is now fuller than the quota: the outside has taken
        # most of what is left.
        sq = {"cu": info(), "nvml": nvml_view(nv, handle)}
        sq["alloc_512m"] = cu.cuMemAlloc(512 * MiB)[0].name
        sq["after"] = {"cu": info(), "nvml": nvml_view(nv, handle)}
        rep["squeezed"] = sq
        checkpoint("squeezed", sq)

    # Fill the quota: free rounded down to the 2 MiB a GPU allocates in
    # (on the simulator's figures that is all of it).
    fill = {}
    free = info()[0]
    fill["free"] = free
    fill["size"] = free - free % (2 * MiB)
    r = cu.cuMemAlloc(fill["size"])
    fill["alloc_free"] = r[0].name
    fill["full"] = {"cu": info(), "nvml": nvml_view(nv, handle)}
    fill["alloc_more"] = cu.cuMemAlloc(2 * MiB)[0].name
    fill["alloc_byte"] = cu.cuMemAlloc(1)[0].name
    fill["after_refusals"] = info()
    if r[0] == cu.CUresult.CUDA_SUCCESS:
        call(cu.cuMemFree(r[1]))
    fill["freed"] = info()
    fill["past_quota"] = cu.cuMemAlloc(QUOTA)[0].name
    fill["past_quota_left"] = cu.cuMemAlloc(free + 2 * MiB)[0].name
    fill["after_past"] = info()
    rep["fill"] = fill

    back = bytearray(16)
    call(cu.cuMemcpyDtoH(back, cu.CUdeviceptr(int(held) + HELD - 16), 16))
    rep["held_intact"] = back == (0x600DF00D).to_bytes(4, "little") * 4
    call(cu.cuMemFree(held))
    rep["released"] = {"cu": info(), "nvml": nvml_view(nv, handle)}
    call(cu.cuCtxDestroy(ctx))
    rep["destroyed"] = nvml_view(nv, handle)
    nv.nvmlShutdown()
    print(json.dumps(rep))
    return 0


# ----------------------------------------------------------------- outside


def in_pid_namespace():
    """True when this process has a pid of its own in a child PID namespace
    (then NVML names processes by their pids on the node, not ours)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return len(line.split()) > 2
    except OSError:
        pass
    return False


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--inside-nvml":
        return inside_nvml(sys.argv[2])
    if len(sys.argv) == 4 and sys.argv[1] == "--inside":
        return inside(sys.argv[2], sys.argv[3] == "squeeze")
    args = [a for a in sys.argv[1:] if a != "--real"]
    real = "--real" in sys.argv[1:]
    if len(args) != 2:
        print(__doc__)
        return 2
    vgpool, alloc = (os.path.abspath(a) for a in args)
    tmp = os.environ.get("VGPOOL_TEST_TMPDIR")
    if not tmp:
        print("VGPOOL_TEST_TMPDIR must name a private temporary directory (run.sh sets it)")
        return 2
    children = []
    try:
        outside(vgpool, alloc, tmp, real, children)
    finally:
        # SIGTERM first: vgpool run passes it on to the process inside.
        for child in children:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
            child.wait()
    if failures:
        print("%d failed" % len(failures))
        return 1
    print("all checks passed (%s)" % ("--real: the driver on the loader path" if real else "simulated node"))
    return 0


def outside(vgpool, alloc, tmp, real, children):
    if not real:
        conf = os.path.join(tmp, "node.conf")
        with open(conf, "w") as f:
            f.write(NODE_CONF)
        os.environ["VGPOOL_SIM_CONFIG"] = conf
        os.environ.pop("VGPOOL_SIM_DEVICES", None)
    os.environ["VGPOOL_ROOT"] = os.path.join(tmp, "root")
    os.makedirs(os.environ["VGPOOL_ROOT"], exist_ok=True)
    for var in ("LD_PRELOAD", "VGPOOL_CONTAINER_DIR", "CUDA_VISIBLE_DEVICES",
                "CUDA_DEVICE_MEMORY_LIMIT", "CUDA_DEVICE_SM_LIMIT"):
        os.environ.pop(var, None)

    import pynvml as nv
    nv.nvmlInit()
    index = int(os.environ.get("VGPOOL_GPU_TEST_DEVICE", "0")) if real else 1
    handle = nv.nvmlDeviceGetHandleByIndex(index)
    uuid = nv.nvmlDeviceGetUUID(handle)
    board = nv.nvmlDeviceGetMemoryInfo(handle)
    print("device %d: %s %s, %d MiB, %d MiB used" %
          (index, nv.nvmlDeviceGetName(handle), uuid, board.total // MiB, board.used // MiB))
    if not real:
        check(board.total == SIM_BOARD and board.used == 0, "the simulated board %r" % board)
    elif board.total - board.used < QUOTA + 2 * GiB:
        check(False, "device %d has %d MiB free; these checks need 4 GiB" %
              (index, (board.total - board.used) // MiB))
        return

    def procs():
        return {p.pid: p.usedGpuMemory for p in nv.nvmlDeviceGetComputeRunningProcesses(handle)}

    def hold(size, chunk):
        env = dict(os.environ, CUDA_VISIBLE_DEVICES=uuid)
        p = subprocess.Popen([alloc, "--device", "0", "--chunk", chunk, "--limit", size,
                              "--hold", "600"], env=env, stdout=subprocess.DEVNULL)
        children.append(p)
        return p

    # The neighbour outside the container, on the same device.
    before = set(procs())
    if real:
        holder = hold("256MiB", "256MiB")
        poll(lambda: len(set(procs()) - before) >= 1, "the holder outside the container",
             alive=holder)
    else:
        holder = hold("1GiB", "1GiB")
        poll(lambda: procs().get(holder.pid, 0) >= SIM_HOLDER + SIM_CONTEXT,
             "the holder outside the container", alive=holder)
    outside_pids = set(procs()) - before
    if not real:
        check(procs().get(holder.pid) == SIM_HOLDER + SIM_CONTEXT, "holder memory %r" % procs())

    sync = os.path.join(tmp, "sync")
    os.makedirs(sync, exist_ok=True)
    out_path = os.path.join(tmp, "inside.out")
    err_path = os.path.join(tmp, "inside.err")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        run = subprocess.Popen(
            [vgpool, "run", "--memory", "2GiB", "--devices", uuid, "--",
             sys.executable, os.path.abspath(__file__), "--inside", sync,
             "plain" if real else "squeeze"], stdout=out, stderr=err)
    children.append(run)

    def checkpoint(name):
        path = os.path.join(sync, name + ".json")
        if not poll(lambda: os.path.exists(path), "checkpoint " + name, alive=run):
            return None
        with open(path) as f:
            return json.load(f)

    def go(name):
        open(os.path.join(sync, name + ".go"), "w").close()

    seen = checkpoint("held")
    if seen is not None:
        check_held(seen, real, uuid, holder, outside_pids, procs, vgpool)
        if not real:
            squeezer = hold("%dMiB" % (SIM_SQUEEZE // MiB), "512MiB")
            poll(lambda: procs().get(squeezer.pid) == SIM_SQUEEZE + SIM_CONTEXT,
                 "the second holder", alive=squeezer)
        go("held")
        if not real:
            if checkpoint("squeezed") is not None:
                squeezer.kill()
                squeezer.wait()
                poll(lambda: squeezer.pid not in procs(), "the second holder to go")
            go("squeezed")

    try:
        status = run.wait(timeout=TIMEOUT * 2)
    except subprocess.TimeoutExpired:
        run.kill()
        status = run.wait()
    with open(out_path) as f:
        out = f.read()
    with open(err_path) as f:
        err = f.read()
    if not check(status == 0 and out.strip(), "vgpool run ... --inside: status %s, stderr %s" %
                 (status, err[-1500:])):
        return
    rep = json.loads(out.strip().splitlines()[-1])
    check_report(rep, real, uuid, seen)
    check(procs().get(holder.pid) is not None or real, "the holder is still there")
    nv.nvmlShutdown()


def check_held(seen, real, uuid, holder, outside_pids, procs, vgpool):
    """The container's view with the context and 256 MiB held, against the
    view from outside."""
    pid = seen["pid"]
    check(seen["cvd"] == uuid, "CUDA_VISIBLE_DEVICES inside %r" % seen["cvd"])
    check(seen["count"] == 1 and seen["uuid"] == uuid,
          "CUDA inside sees %r devices, the first %r" % (seen["count"], seen["uuid"]))
    check(seen["device_total"] == QUOTA, "cuDeviceTotalMem %r" % seen["device_total"])

    b = seen["before_cuda"]
    check(b["v1"] == [QUOTA, 0, QUOTA], "NVML v1 before CUDA %r" % b["v1"])
    check(b["v2"] == [QUOTA, 0, 0, QUOTA], "NVML v2 before CUDA %r" % b["v2"])
    check(b["procs"] == [] and b["procs_v2"] == [],
          "NVML process list inside before CUDA shows %r (the holder is outside)" % b["procs"])

    ctx = SIM_CONTEXT if not real else seen["ctx"]["nvml"]["v1"][1]
    check(ctx > 0, "the context is charged nothing")
    c = seen["ctx"]
    check(c["cu"] == [QUOTA - ctx, QUOTA], "cuMemGetInfo with a context %r, context %d" %
          (c["cu"], ctx))
    check(c["nvml"]["v1"] == [QUOTA, ctx, QUOTA - ctx], "NVML v1 with a context %r" % c["nvml"]["v1"])
    check(c["nvml"]["v2"] == [QUOTA, 0, ctx, QUOTA - ctx], "NVML v2 with a context %r" %
          c["nvml"]["v2"])

    used = ctx + HELD
    h = seen["held"]
    check(h["cu"] == [QUOTA - used, QUOTA], "cuMemGetInfo holding 256 MiB %r" % h["cu"])
    check(h["nvml"]["v1"] == [QUOTA, used, QUOTA - used], "NVML v1 holding 256 MiB %r" %
          h["nvml"]["v1"])
    check(h["nvml"]["v2"] == [QUOTA, 0, used, QUOTA - used], "NVML v2 holding 256 MiB %r" %
          h["nvml"]["v2"])
    own = [row[0] for row in h["nvml"]["procs"]]
    check(len(own) == 1, "NVML process list inside %r: one process expected" % h["nvml"]["procs"])
    check(not (set(own) & outside_pids), "the holder outside shows inside: %r" % own)
    check([row[0] for row in h["nvml"]["procs_v2"]] == own, "v2 process list %r" %
          h["nvml"]["procs_v2"])
    if not in_pid_namespace():
        check(own == [pid], "NVML process list inside %r, the process is %d" % (own, pid))
    if not real:
        check(h["nvml"]["procs"] == [[pid, used]], "process memory inside %r" % h["nvml"]["procs"])

    child = seen["nvml_child"]
    if check(isinstance(child, dict), "the NVML-only process failed: %r" % child):
        check(child["v1"] == h["nvml"]["v1"] and child["v2"] == h["nvml"]["v2"],
              "the NVML-only process sees %r / %r" % (child["v1"], child["v2"]))
        check(child["procs"] == h["nvml"]["procs"],
              "the NVML-only process lists %r" % child["procs"])

    # From outside: the board, both processes.
    outside_now = procs()
    if not in_pid_namespace():
        check(pid in outside_now and holder.pid in outside_now,
              "outside the container NVML lists %r; expected %d and the holder %d" %
              (sorted(outside_now), pid, holder.pid))
    else:
        check(len(outside_now) >= 2, "outside the container NVML lists %r" % sorted(outside_now))
    if not real:
        check(outside_now == {pid: used, holder.pid: SIM_HOLDER + SIM_CONTEXT},
              "outside the container NVML lists %r" % outside_now)

    # vgpool top charges the container what its client sees.
    top = subprocess.run([vgpool, "top", "--once", "--json"], capture_output=True, text=True)
    if check(top.returncode == 0, "vgpool top: %s" % top.stderr[-300:]):
        shown = json.loads(top.stdout.strip().splitlines()[-1])
        rows = [(d["memory_used"], d["memory_limit"])
                for c in shown["containers"] for d in c["devices"] if d["uuid"] == uuid]
        check(rows == [(used, QUOTA)], "vgpool top shows %r" % rows)


def check_report(rep, real, uuid, seen):
    ctx = SIM_CONTEXT if not real else rep["ctx"]["nvml"]["v1"][1]
    used = ctx + HELD
    oom = "CUDA_ERROR_OUT_OF_MEMORY"

    if not real:
        sq = rep.get("squeezed")
        if check(sq is not None, "no squeezed report"):
            board_free = SIM_BOARD - (SIM_HOLDER + SIM_CONTEXT) - (SIM_SQUEEZE + SIM_CONTEXT) - used
            check(sq["cu"] == [board_free, QUOTA], "cuMemGetInfo on a full board %r, expected "
                  "free %d MiB (the board's)" % (sq["cu"], board_free // MiB))
            check(sq["nvml"]["v1"] == [QUOTA, used, board_free], "NVML v1 on a full board %r" %
                  sq["nvml"]["v1"])
            check(sq["nvml"]["v2"] == [QUOTA, 0, used, board_free], "NVML v2 on a full board %r" %
                  sq["nvml"]["v2"])
            check(sq["alloc_512m"] == oom, "512 MiB on a board with %d MiB free: %s" %
                  (board_free // MiB, sq["alloc_512m"]))
            check(sq["after"]["cu"] == sq["cu"] and sq["after"]["nvml"]["v1"] == sq["nvml"]["v1"],
                  "the refused allocation left a charge: %r" % sq["after"])

    f = rep["fill"]
    left = QUOTA - used
    rest = left - f["size"]  # below 2 MiB; 0 on the simulator
    check(f["free"] == left, "free before the fill %d, expected %d" % (f["free"], left))
    check(real or f["size"] == left, "the fill is not all of the free memory")
    check(f["alloc_free"] == "CUDA_SUCCESS", "allocating the free %d bytes: %s" %
          (f["size"], f["alloc_free"]))
    check(f["full"]["cu"] == [rest, QUOTA], "cuMemGetInfo at the quota %r" % f["full"]["cu"])
    check(f["full"]["nvml"]["v1"] == [QUOTA, QUOTA - rest, rest], "NVML v1 at the quota %r" %
          f["full"]["nvml"]["v1"])
    check(f["full"]["nvml"]["v2"] == [QUOTA, 0, QUOTA - rest, rest], "NVML v2 at the quota %r" %
          f["full"]["nvml"]["v2"])
    check(f["alloc_more"] == oom and f["alloc_byte"] == oom,
          "allocations past a full quota: %s, %s" % (f["alloc_more"], f["alloc_byte"]))
    check(f["after_refusals"] == [rest, QUOTA], "refusals changed the charge %r" %
          f["after_refusals"])
    check(f["freed"] == [left, QUOTA], "after freeing the fill %r" % f["freed"])
    check(f["past_quota"] == oom and f["past_quota_left"] == oom,
          "single allocations past the quota: %s, %s" % (f["past_quota"], f["past_quota_left"]))
    check(f["after_past"] == [left, QUOTA], "refusals changed the charge %r" % f["after_past"])

    check(rep["held_intact"], "the 256 MiB block lost its contents")
    r = rep["released"]
    check(r["cu"] == [QUOTA - ctx, QUOTA] and r["nvml"]["v1"] == [QUOTA, ctx, QUOTA - ctx],
          "after freeing everything %r" % r)
    d = rep["destroyed"]
    check(d["v1"] == [QUOTA, 0, QUOTA], "after cuCtxDestroy: %r" % d["v1"])
    check(real or d["procs"] == [], "after cuCtxDestroy the process is listed: %r" % d["procs"])


if __name__ == "__main__":
    sys.exit(main())
