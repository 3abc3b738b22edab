"""traces.py - reads the traces bench/hook/run.sh takes and prints the
figures it tabulates, as `key=value` lines that run.sh picks up.

    traces.py callgrind FILE LIB PER
                                     a callgrind output file: total
                                     instructions; instructions executed in
                                     the object whose name ends in LIB
                                     (libvgpool.so); and every function
                                     outside LIB that code in LIB called,
                                     with its calls per call of the first
                                     driver function in PER (a comma list
                                     of the entry points the op wraps); and
                                     the inclusive instructions of the
                                     calls into the driver's functions in
                                     PER from outside the driver (the
                                     wrapped calls themselves)
    traces.py strace FILE LIB        an `strace -f [-k]` log: the system
                                     calls the main thread made between the
                                     getppid() brackets bench_hook.c puts
                                     around each measured batch (the
                                     brackets excluded), and, from the
                                     stacks `strace -k` prints, those LIB
                                     made itself (its code is the innermost
                                     caller outside libc)

Callgrind's format (valgrind's docs, "Callgrind Format Specification"):
`ob=`/`fl=`/`fn=` set the current object, file and function; names may be
compressed as `(id) name`, later `(id)`; a line of numbers is a cost line,
`position cost...`; `cob=`/`cfi=`/`cfn=` name the target of the next
`calls=COUNT TARGET` line, whose following cost line is the call's
inclusive cost, not the caller's own. A missing `cob=` means the caller's
object. Costs are only collected inside the toggled function, but callgrind
counts calls everywhere (the warm-up too), so call counts are given as
ratios to the calls of the wrapped entry point, which the warm-up makes in
the same proportion.
"""
import collections
import re
import sys


def callgrind(path, lib, per):
    names = {"ob": {}, "fl": {}, "fn": {}}
    kind_of = {"ob": "ob", "cob": "ob", "fl": "fl", "fi": "fl", "fe": "fl", "cfi": "fl",
               "cfl": "fl", "fn": "fn", "cfn": "fn"}
    total = None
    ob = fn = None
    cob = cfn = None
    in_call = False
    self_by_obj = collections.Counter()
    calls_out = collections.Counter()
    wrapped = per.split(",")
    driver_incl = 0
    call_target = None

    def name(kind, value):
        m = re.match(r"\((\d+)\)(?: (.*))?$", value)
        if not m:
            return value
        table = names[kind_of[kind]]
        if m.group(2) is not None:
            table[m.group(1)] = m.group(2)
        return table.get(m.group(1), value)

    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            if line[0].isdigit() or line[0] in "+-*":
                tokens = line.split()
                cost = int(tokens[1]) if len(tokens) > 1 else 0
                if in_call:
                    in_call = False
                    if call_target is not None:
                        driver_incl += cost
                else:
                    self_by_obj[ob] += cost
                continue
            key, _, value = line.partition("=")
            if key in ("ob", "fn", "fl", "fi", "fe"):
                v = name(key, value)
                if key == "ob":
                    ob = v
                elif key == "fn":
                    fn = v
                    cob = cfn = None
            elif key == "cob":
                cob = name(key, value)
            elif key == "cfn":
                cfn = name(key, value)
            elif key in ("cfi", "cfl"):
                name(key, value)
            elif key == "calls":
                count = int(value.split()[0])
                target_ob = cob if cob is not None else ob
                if ob is not None and ob.endswith(lib) and not (target_ob or "").endswith(lib):
                    calls_out["%s:%s" % (target_ob.rsplit("/", 1)[-1], cfn)] += count
                # A wrapped entry point of the driver, called from outside it.
                call_target = None
                if (target_ob or "").endswith("libcuda.so.1") and cfn in wrapped and \
                        not (ob or "").endswith("libcuda.so.1"):
                    call_target = cfn
                cob = None
                in_call = True
            elif key in ("summary", "totals"):
                total = int(value.split()[0])
    lib_self = sum(c for o, c in self_by_obj.items() if o is not None and o.endswith(lib))
    print("total=%d" % (total if total is not None else sum(self_by_obj.values())))
    print("lib_self=%d" % lib_self)
    print("driver_incl=%d" % driver_incl)
    base = sum(v for k, v in calls_out.items() if k.split(":", 1)[1] == wrapped[0])
    print("lib_calls=%s" % " ".join("%s:%.2f" % (k, v / base if base else float("nan"))
                                    for k, v in sorted(calls_out.items())))


def strace(path, lib):
    main_tid = None
    inside = False
    counts = collections.Counter()
    by_lib = collections.Counter()
    last = None  # the last counted call, for the stack lines (strace -k) after it
    with open(path) as f:
        for line in f:
            if line.startswith(" > "):
                # The innermost frame outside libc says whose call it is:
                # a system call the driver makes while the library's
                # wrapper is further up the stack is the driver's.
                if last is not None and not re.search(r"/(libc\.so|libpthread\.so|ld-linux)[^/]*\(|\[vdso\]",
                                                      line):
                    if lib in line:
                        by_lib[last] += 1
                    last = None
                continue
            last = None
            m = re.match(r"(\d+)\s+(.*)$", line)
            if not m:
                continue
            tid, rest = m.group(1), m.group(2)
            if main_tid is None:
                main_tid = tid
            if tid != main_tid or rest.startswith("<...") or rest.startswith("+++") or \
                    rest.startswith("---"):
                continue
            call = re.match(r"(\w+)\(", rest)
            if not call:
                continue
            if call.group(1) == "getppid":
                inside = not inside
                continue
            if inside:
                counts[call.group(1)] += 1
                last = call.group(1)
    print("syscalls=%d" % sum(counts.values()))
    print("syscall_names=%s" % " ".join("%s:%d" % (k, v) for k, v in sorted(counts.items())))
    print("lib_syscalls=%d" % sum(by_lib.values()))
    print("lib_syscall_names=%s" % " ".join("%s:%d" % (k, v) for k, v in sorted(by_lib.items())))


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "callgrind":
        callgrind(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) == 4 and sys.argv[1] == "strace":
        strace(sys.argv[2], sys.argv[3])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
