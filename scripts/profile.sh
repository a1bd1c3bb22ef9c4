#!/usr/bin/env bash
# make profile: where the guest kernel spends its time under the benchmark loads, C core and
# Rust core side by side. Boots the -perf kernels with profile=2 (the kernel's tick sampler,
# /proc/profile: no PMU needed, which Xen PV under TCG lacks) and prints the top functions of
# each load. A diagnostic for the benchmark, not a measurement of it.
source "$(dirname "$0")/lib/common.sh"
run_perf_guests profile
python3 - "$PERF_LOG" "$XBRS_CACHE/build" "${TOP:-25}" <<'PY'
import bisect, collections, re, sys
log, build, top = sys.argv[1], sys.argv[2], int(sys.argv[3])
samples = collections.defaultdict(collections.Counter)  # (core, label) -> bucket -> count
step, bench = {}, []
for line in open(log, errors="replace"):
    m = re.search(r"\[(c|rust)-perf-pv\] PROF (\S+) (\S+) (\d+)", line)
    if m:
        core, label, a, b = m.groups()
        if a == "step":
            step[core] = int(b)
        else:
            samples[(core, label)][int(a)] += int(b)
        continue
    m = re.search(r"\[(c|rust)-perf-pv\] (BENCH \S+ \S+ \S+)", line)
    if m:
        bench.append(f"{m.group(1):4} {m.group(2)}")
if not samples:
    sys.exit(f"no PROF lines in {log}")
def symbols(core):
    syms = []
    for l in open(f"{build}/out-{core}-perf/System.map"):
        a, t, name = l.split()[:3]
        if t in "tTwW":
            syms.append((int(a, 16), name))
    syms.sort()
    stext = next(a for a, n in syms if n == "_stext")
    etext = next(a for a, n in syms if n == "_etext")
    return stext, etext, [a for a, _ in syms], [n for _, n in syms]
maps = {core: symbols(core) for core in ("c", "rust") if core in step}
# A vCPU blocked in Xen is sampled on the hypercall when its timer wakes it; the loads'
# clock_gettime (no vDSO clock under Xen PV) lands in pvclock.
BLOCKED = ("xen_hypercall_pv", "pvclock_clocksource_read")
C_CORE = re.compile(r"^(xenbus_|xs_|xb_|process_msg$|process_writes$|register_xenbus_watch|"
                    r"unregister_xenbus_watch|xenwatch_|xenstored_)")
def in_core(name):
    # Rust in these guests is the xenstore core only (Rust symbols and the kernel crate's C
    # helpers it calls); C core functions by name.
    return name.startswith(("_R", "rust_helper_")) or bool(C_CORE.match(name))
print("\n".join(bench))
for label in sorted({l for _, l in samples}):
    for core in ("c", "rust"):
        hist = samples.get((core, label))
        if not hist:
            continue
        stext, etext, addrs, names = maps[core]
        # Program counters past the kernel image (modules) all land in the last bucket.
        last = (etext - stext) // step[core] - 1
        funcs = collections.Counter()
        for b, n in hist.items():
            if b >= last:
                funcs["(modules / outside the kernel image)"] += n
                continue
            i = bisect.bisect_right(addrs, stext + b * step[core]) - 1
            funcs[names[i] if i >= 0 else "?"] += n
        total = sum(funcs.values())
        blocked = sum(funcs[f] for f in BLOCKED)
        core_code = sum(n for f, n in funcs.items() if in_core(f))
        print(f"\n== {label}, {core} core: {total} samples, {blocked} while blocked or reading"
              f" the clock, {total - blocked} elsewhere; {core_code} in xenstore core code")
        for name, n in funcs.most_common(top):
            print(f"  {100 * n / total:5.1f}%  {n:6}  {name}")
PY
echo "log: $PERF_LOG"
