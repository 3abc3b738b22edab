"""test_pynvml.py - NVIDIA's own NVML bindings (nvidia-ml-py) against the
simulated node.

Usage (run.sh provides the venv and the environment):
    test_pynvml.py HELPERS VGPOOL

HELPERS is tests/sim/test_nvml, whose helper processes act as CUDA
applications on the node ("hold": memory and a context; "duty": a steady
share of a device's engine); VGPOOL is the vgpool binary, whose
`sim --json` must agree with what pynvml reads.

pynvml is code nobody here wrote: if it reads the simulated library the way
it reads NVIDIA's (symbol names, struct layouts, size protocols, error
codes), the ABI is right.
"""
import ctypes
import importlib.metadata
import json
import os
import subprocess
import sys
import time

import pynvml as nv

MiB = 1 << 20
SPEC = "2xH100-80GB,1xT4"
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return True
    except nv.NVMLError as e:
        print("  %s raised %r" % (fn.__name__, e))
        return False
    return False


def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return True
        except nv.NVMLError:
            pass
        time.sleep(0.02)
    check(False, "timed out waiting for " + what)
    return False


def procs(handle):
    return {p.pid: p.usedGpuMemory for p in nv.nvmlDeviceGetComputeRunningProcesses(handle)}


def duty_sample(handle, pid):
    try:
        samples = nv.nvmlDeviceGetProcessUtilization(handle, 0)
    except nv.NVMLError_NotFound:
        return None
    mine = [s for s in samples if s.pid == pid]
    return mine[0] if len(mine) == 1 and len(samples) == 1 else None


def main():
    helpers, vgpool = sys.argv[1:3]
    os.environ["VGPOOL_SIM_DEVICES"] = SPEC
    children = []
    try:
        run(helpers, vgpool, children)
    finally:
        for child in children:
            child.kill()
            child.wait()
    if failures:
        print("%d failed" % len(failures))
        return 1
    print("nvidia-ml-py %s: all checks passed" % importlib.metadata.version("nvidia-ml-py"))
    return 0


def run(helpers, vgpool, children):
    # Bad input is refused with the documented error, in a fresh process.
    bad = subprocess.run(
        [sys.executable, "-c", "import pynvml; pynvml.nvmlInit()"],
        env=dict(os.environ, VGPOOL_SIM_DEVICES="2xH100-80G"),
        capture_output=True, text=True)
    check(bad.returncode != 0 and "NVMLError_DriverNotLoaded" in bad.stderr,
          "nvmlInit with a malformed spec: %r" % bad.stderr[-300:])

    check(raises(nv.NVMLError_Uninitialized, nv.nvmlDeviceGetCount), "count before init")
    nv.nvmlInit()
    check(nv.nvmlSystemGetDriverVersion() == "580.65.06", "driver version")
    check(nv.nvmlSystemGetNVMLVersion() == "13.580.65.06", "NVML version")
    check(nv.nvmlSystemGetCudaDriverVersion() == 13000, "CUDA version")
    check(nv.nvmlSystemGetCudaDriverVersion_v2() == 13000, "CUDA version v2")
    count = nv.nvmlDeviceGetCount()
    check(count == 3, "device count %d" % count)

    handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
    names = [nv.nvmlDeviceGetName(h) for h in handles]
    check(names == ["NVIDIA H100 80GB HBM3"] * 2 + ["Tesla T4"], "names %r" % names)
    uuids = [nv.nvmlDeviceGetUUID(h) for h in handles]
    check(len(set(uuids)) == 3 and all(u.startswith("GPU-") and len(u) == 40 for u in uuids),
          "uuids %r" % uuids)
    for i, h in enumerate(handles):
        check(nv.nvmlDeviceGetIndex(h) == i, "index of %d" % i)
        check(nv.nvmlDeviceGetMinorNumber(h) == i, "minor number of %d" % i)
        by_uuid = nv.nvmlDeviceGetHandleByUUID(uuids[i])
        check(nv.nvmlDeviceGetIndex(by_uuid) == i, "handle by UUID %d" % i)
        pci = nv.nvmlDeviceGetPciInfo(h)
        by_bus = nv.nvmlDeviceGetHandleByPciBusId(pci.busId)
        check(nv.nvmlDeviceGetIndex(by_bus) == i, "handle by PCI bus id %r" % pci.busId)
    check(raises(nv.NVMLError_InvalidArgument, nv.nvmlDeviceGetHandleByIndex, 3), "index 3")
    check(raises(nv.NVMLError_NotFound, nv.nvmlDeviceGetHandleByUUID,
                 "GPU-00000000-0000-4000-8000-000000000000"), "unknown UUID")

    h0, h1, t4 = handles
    pci = nv.nvmlDeviceGetPciInfo(h0)
    check(pci.busId == "00000000:17:00.0" and pci.busIdLegacy == "0000:17:00.0",
          "bus ids %r %r" % (pci.busId, pci.busIdLegacy))
    check((pci.domain, pci.bus, pci.device) == (0, 0x17, 0), "pci location")
    check(pci.pciDeviceId == 0x233010DE, "pci device id %#x" % pci.pciDeviceId)
    ext = nv.nvmlPciInfoExt_v1_t()
    ext.version = nv.nvmlPciInfoExt_v1
    nv.nvmlDeviceGetPciInfoExt(t4, ctypes.byref(ext))  # it passes the argument as given
    check(ext.busId in (b"00000000:3B:00.0", "00000000:3B:00.0") and ext.pciDeviceId == 0x1EB810DE,
          "PciInfoExt %r" % ext.busId)
    check(nv.nvmlDeviceGetCudaComputeCapability(h0) == (9, 0), "compute capability")
    check(nv.nvmlDeviceGetPowerManagementLimit(h0) == 700000, "power limit")
    check(nv.nvmlDeviceGetMaxClockInfo(h0, nv.NVML_CLOCK_SM) == 1980, "max SM clock")
    check(nv.nvmlDeviceGetComputeMode(h0) == nv.NVML_COMPUTEMODE_DEFAULT, "compute mode")
    check(raises(nv.NVMLError_NotSupported, nv.nvmlDeviceGetTemperature, h0,
                 nv.NVML_TEMPERATURE_GPU), "temperature is not modelled")
    check(raises(nv.NVMLError_NotSupported, nv.nvmlDeviceGetPowerUsage, h0),
          "power draw is not modelled")

    # Memory, v1 and v2, idle and with a process holding some.
    total = 81559 * MiB
    m = nv.nvmlDeviceGetMemoryInfo(h0)
    check((m.total, m.used, m.free) == (total, 0, total), "idle memory %r" % m)
    hold = subprocess.Popen([helpers, "--helper", "hold", "0:1024:1", "2:0:1"])
    children.append(hold)
    wait_until(lambda: hold.pid in procs(h0) and hold.pid in procs(t4), 20, "the holder")
    m = nv.nvmlDeviceGetMemoryInfo(h0)
    check((m.total, m.used, m.free) == (total, 1024 * MiB, total - 1024 * MiB), "memory v1 %r" % m)
    m2 = nv.nvmlDeviceGetMemoryInfo(h0, version=nv.nvmlMemory_v2)
    check((m2.version, m2.total, m2.reserved, m2.used, m2.free) ==
          (nv.nvmlMemory_v2, total, 0, 1024 * MiB, total - 1024 * MiB), "memory v2 %r" % m2)
    check(raises(nv.NVMLError_ArgumentVersionMismatch, nv.nvmlDeviceGetMemoryInfo, h0, 0x01000028),
          "memory v2 with a wrong version")

    # Process lists: pynvml's default (v3) and v2, with the size protocol.
    check(procs(h0) == {hold.pid: 1024 * MiB}, "processes on 0: %r" % procs(h0))
    v2 = nv.nvmlDeviceGetComputeRunningProcesses_v2(h0)
    check([(p.pid, p.usedGpuMemory) for p in v2] == [(hold.pid, 1024 * MiB)], "v2 list")
    check(procs(t4) == {hold.pid: 0}, "processes on the T4: %r" % procs(t4))
    check(procs(h1) == {}, "processes on 1: %r" % procs(h1))
    check(nv.nvmlDeviceGetGraphicsRunningProcesses(h0) == [], "graphics processes")
    check(nv.nvmlSystemGetProcessName(hold.pid) == "test_nvml", "process name")

    # Utilization: a process keeping 30% of device 1's engine and 5% of its
    # copy engine busy.
    check(nv.nvmlDeviceGetUtilizationRates(h1).gpu == 0, "idle utilization")
    check(raises(nv.NVMLError_NotFound, nv.nvmlDeviceGetProcessUtilization, h1, 0),
          "no samples before anything ran")
    duty = subprocess.Popen([helpers, "--helper", "duty", "1", "3000", "500"])
    children.append(duty)

    def steady():
        u = nv.nvmlDeviceGetUtilizationRates(h1)
        s = duty_sample(h1, duty.pid)
        return (u.gpu == 30 and u.memory == 5 and s is not None and
                28 <= s.smUtil <= 32 and 3 <= s.memUtil <= 7)
    wait_until(steady, 30, "30%% utilization of device 1 by pid %d" % duty.pid)
    s = duty_sample(h1, duty.pid)
    if s is not None:
        now_us = time.time() * 1e6
        check(now_us - 2.5e6 < s.timeStamp <= now_us + 2e3, "sample timestamp %d" % s.timeStamp)
        later = []
        try:
            later = nv.nvmlDeviceGetProcessUtilization(h1, s.timeStamp)
        except nv.NVMLError_NotFound:
            pass
        check(all(x.timeStamp > s.timeStamp for x in later), "lastSeenTimeStamp honoured")
    info = nv.nvmlDeviceGetProcessesUtilizationInfo(h1, 0)
    check(len(info) == 1 and info[0].pid == duty.pid and 28 <= info[0].smUtil <= 32,
          "processes utilization info %r" % [(x.pid, x.smUtil) for x in info])
    check(nv.nvmlDeviceGetUtilizationRates(h0).gpu == 0, "device 0 stays idle")

    # vgpool sim --json reads the node as NVML does.
    shown = json.loads(subprocess.run([vgpool, "sim", "--json"], check=True,
                                      capture_output=True, text=True).stdout)
    check([d["uuid"] for d in shown["devices"]] == uuids, "vgpool sim uuids")
    check(shown["devices"][0]["memory_used"] == nv.nvmlDeviceGetMemoryInfo(h0).used,
          "vgpool sim memory")
    check({(p["device"], p["pid"]) for p in shown["processes"]} ==
          {(0, hold.pid), (2, hold.pid), (1, duty.pid)}, "vgpool sim processes")

    # Topology and NVLink: two H100 SXM boards joined by 18 links, a T4 on
    # PCIe, all on NUMA node 0.
    check(nv.nvmlDeviceGetTopologyCommonAncestor(h0, h1) == nv.NVML_TOPOLOGY_NODE, "ancestor")
    check(nv.nvmlDeviceGetP2PStatus(h0, h1, nv.NVML_P2P_CAPS_INDEX_NVLINK) == nv.NVML_P2P_STATUS_OK,
          "NVLink P2P between the H100s")
    check(nv.nvmlDeviceGetP2PStatus(h0, t4, nv.NVML_P2P_CAPS_INDEX_NVLINK) ==
          nv.NVML_P2P_STATUS_NOT_SUPPORTED, "no NVLink to the T4")
    # (pynvml defines NVML_P2P_CAPS_INDEX_READ as a tuple by mistake; WRITE
    # is an int.)
    check(nv.nvmlDeviceGetP2PStatus(h0, t4, nv.NVML_P2P_CAPS_INDEX_WRITE) == nv.NVML_P2P_STATUS_OK,
          "PCIe peer writes to the T4")
    peer_bus = nv.nvmlDeviceGetPciInfo(h1).busId
    for link in range(18):
        check(nv.nvmlDeviceGetNvLinkState(h0, link) == nv.NVML_FEATURE_ENABLED, "link %d" % link)
        check(nv.nvmlDeviceGetNvLinkRemotePciInfo(h0, link).busId == peer_bus, "link %d peer" % link)
    check(raises(nv.NVMLError_InvalidArgument, nv.nvmlDeviceGetNvLinkState, h0, 18), "link 18")
    check(raises(nv.NVMLError_NotSupported, nv.nvmlDeviceGetNvLinkState, t4, 0), "T4 NVLink")
    near = nv.nvmlDeviceGetTopologyNearestGpus(h0, nv.NVML_TOPOLOGY_NODE)
    check(sorted(nv.nvmlDeviceGetIndex(d) for d in near) == [1, 2], "nearest GPUs")
    cpus = nv.nvmlDeviceGetCpuAffinity(h0, 4)
    check(any(cpus), "CPU affinity is empty")
    check(nv.nvmlDeviceGetMemoryAffinity(h0, 1, nv.NVML_AFFINITY_SCOPE_NODE)[0] == 1,
          "memory affinity")

    # A killed process is gone, with its memory.
    hold.kill()
    hold.wait()
    check(procs(h0) == {} and nv.nvmlDeviceGetMemoryInfo(h0).used == 0,
          "the killed holder's memory is released")

    nv.nvmlShutdown()
    check(raises(nv.NVMLError_Uninitialized, nv.nvmlDeviceGetCount), "count after shutdown")


if __name__ == "__main__":
    sys.exit(main())
