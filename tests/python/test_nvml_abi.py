"""test_nvml_abi.py - vgpool's NVML declarations are NVIDIA's ABI.

Usage (run.sh provides the venv): test_nvml_abi.py DUMP LIB CC ABI_DIR DUMP_SRC

  DUMP      nvml_abi_dump built against abi/vgpool_nvml.h
  LIB       the simulated libnvidia-ml.so.1
  CC        the C compiler, to build DUMP_SRC against NVIDIA's nvml.h
  ABI_DIR   abi/ (for vgpool_nvml_procs.def)

Three independent references, none written here:
  1. NVIDIA's Python bindings (pynvml): every ctypes struct they define for
     the structs we declare must have our size and field offsets, and every
     constant they share with us our value.
  2. NVIDIA's nvml.h (package nvidia-nvml-dev): the same dump compiled
     against it must be identical, and every entry point in
     vgpool_nvml_procs.def must have NVIDIA's prototype (checked by the
     compiler, see nvml_abi_dump.c).
  3. The library: it exports exactly the entry points of the .def, without
     symbol versions (like NVIDIA's), under the soname libnvidia-ml.so.1.
"""
import ctypes
import importlib.metadata
import glob
import os
import re
import subprocess
import sys

import pynvml

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def parse_dump(text):
    facts = {}
    for line in text.splitlines():
        kind, name, value = line.split()
        facts[kind + " " + name] = int(value)
    return facts


def main():
    dump_exe, lib, cc, abi_dir, dump_src = sys.argv[1:6]
    ours = parse_dump(subprocess.run([dump_exe], check=True, capture_output=True,
                                     text=True).stdout)
    check(len(ours) > 150, "the dump of vgpool_nvml.h is suspiciously short")

    # 1. pynvml's ctypes definitions.
    structs = {
        "nvmlPciInfo_t": pynvml.nvmlPciInfo_t,
        "nvmlPciInfoExt_v1_t": pynvml.nvmlPciInfoExt_v1_t,
        "nvmlUtilization_t": pynvml.c_nvmlUtilization_t,
        "nvmlMemory_t": pynvml.c_nvmlMemory_t,
        "nvmlMemory_v2_t": pynvml.c_nvmlMemory_v2_t,
        "nvmlBAR1Memory_t": pynvml.c_nvmlBAR1Memory_t,
        "nvmlProcessInfo_v2_t": pynvml.c_nvmlProcessInfo_v2_t,
        "nvmlProcessInfo_t": pynvml.c_nvmlProcessInfo_t,
        "nvmlProcessUtilizationSample_t": pynvml.c_nvmlProcessUtilizationSample_t,
        "nvmlProcessUtilizationInfo_v1_t": pynvml.c_nvmlProcessUtilizationInfo_v1_t,
        "nvmlProcessesUtilizationInfo_v1_t": pynvml.c_nvmlProcessesUtilizationInfo_v1_t,
    }
    compared = 0
    for name, cls in structs.items():
        check(ours.get("size " + name) == ctypes.sizeof(cls),
              "sizeof(%s): ours %s, pynvml %d" % (name, ours.get("size " + name),
                                                  ctypes.sizeof(cls)))
        for field, _ in cls._fields_:
            key = "offset %s.%s" % (name, field)
            theirs = getattr(cls, field).offset
            check(ours.get(key) == theirs,
                  "%s: ours %s, pynvml %d" % (key, ours.get(key), theirs))
            compared += 1
    check(compared >= 50, "only %d struct fields compared with pynvml" % compared)

    aliases = {"nvmlProcessesUtilizationInfo_v1": "ProcessesUtilizationInfo_v1"}
    compared = 0
    for key, value in ours.items():
        if not key.startswith("const "):
            continue
        name = key[6:]
        theirs = getattr(pynvml, aliases.get(name, name), None)
        if isinstance(theirs, int):
            check(theirs == value, "%s: ours %d, pynvml %d" % (name, value, theirs))
            compared += 1
    check(compared >= 100, "only %d constants compared with pynvml" % compared)
    print("nvidia-ml-py %s: %d constants and the struct layouts agree" %
          (importlib.metadata.version("nvidia-ml-py"), compared))

    # 2. NVIDIA's nvml.h.
    headers = sorted(h for p in sys.path
                     for h in glob.glob(os.path.join(p, "nvidia", "*", "include", "nvml.h")))
    check(headers, "NVIDIA's nvml.h (package nvidia-nvml-dev) is not in the venv")
    if headers:
        tmp = os.environ.get("VGPOOL_TEST_TMPDIR", "/tmp")
        real_exe = os.path.join(tmp, "nvml_abi_dump_real")
        built = subprocess.run(
            [cc, "-std=gnu11", "-Wall", "-Werror", "-Wno-deprecated-declarations",
             "-DVGP_ABI_REAL", "-I", os.path.dirname(headers[-1]), "-I", abi_dir,
             dump_src, "-o", real_exe], capture_output=True, text=True)
        check(built.returncode == 0,
              "against NVIDIA's nvml.h (%s):\n%s" % (headers[-1], built.stderr))
        if built.returncode == 0:
            real = parse_dump(subprocess.run([real_exe], check=True,
                                             capture_output=True, text=True).stdout)
            for key in sorted(set(real) | set(ours)):
                check(real.get(key) == ours.get(key),
                      "%s: ours %s, nvml.h %s" % (key, ours.get(key), real.get(key)))
            print("nvml.h %s: %d facts identical, every prototype matches" %
                  (headers[-1], len(real)))

    # 3. The library's exports.
    with open(os.path.join(abi_dir, "vgpool_nvml_procs.def")) as f:
        listed = set()
        for line in f:
            m = (re.match(r"VGP_NVML_PROC\((\w+),", line) or
                 re.match(r"VGP_NVML_PROC_RET\([^,]+,\s*(\w+),", line))
            if m:
                listed.add(m.group(1))
    nm = subprocess.run(["nm", "-D", "--defined-only", lib], check=True,
                        capture_output=True, text=True).stdout
    exported = {line.split()[-1] for line in nm.splitlines() if line.strip()}
    check(len(listed) > 60, "only %d entry points parsed from the .def" % len(listed))
    check(exported == listed,
          "exports differ from vgpool_nvml_procs.def: extra %s, missing %s" %
          (sorted(exported - listed), sorted(listed - exported)))
    readelf = subprocess.run(["readelf", "-d", "-V", "-W", lib], check=True,
                             capture_output=True, text=True).stdout
    check("Library soname: [libnvidia-ml.so.1]" in readelf, "soname is not libnvidia-ml.so.1")
    check("Version definition section" not in readelf,
          "the library defines symbol versions; NVIDIA's does not")
    print("%s exports the %d listed entry points, unversioned" % (lib, len(exported)))

    if failures:
        print("%d failed" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
