#!/usr/bin/env bash
# make bench: the C core against the Rust core, same workload, one QEMU run, ratios.
# Builds the -perf profiles (no debug options) and boots both guests in bench mode:
#  1. the xenstore loads (in-kernel API, /dev/xen/xenbus, watch events) and block attach/detach
#     cycles, in short windows with both guests up and taking turns (tests/xen/guest/
#     ab-windows.sh): every round gives a paired Rust/C ratio, reported as their geometric mean
#     with a 95% confidence interval;
#  2. the boot (to all devices Connected), one repetition per boot, in rounds the same way
#     (C R, then R C, ...), so that it gets paired ratios and an interval too.
# Collects the "BENCH" lines and prints Rust/C. Also core size and unsafe-block counts.
# With XBT_XS_REQUESTS=1 (make bench-requests) it counts work instead of timing it: xenstored
# traces every message, dom0 counts each window's requests (the guest's, everyone else's), two
# rounds, no boots, and only those counts are reported. With XBT_XENTRACE=1 (make bench-trace)
# dom0 traces Xen's scheduler during the in-kernel read round trips and the attach/detach cycles
# (tests/xen/dom0/xentrace-summary): per round trip or cycle, the time each domain's vCPUs ran.
source "$(dirname "$0")/lib/common.sh"
run_perf_guests bench
python3 - "$PERF_LOG" "$XBRS_CACHE/build" "$XBRS_TOP" <<'PY'
import math, re, subprocess, sys, glob, os
log, build, top = sys.argv[1:4]
# phase -> name -> core -> round -> (value, unit); the phase is set by dom0's markers.
rounds = {"windows": {}, "boots": {}}
only = ("xs.requests.",) if os.environ.get("XBT_XS_REQUESTS") == "1" else \
    ("xen.", "kernel.read_round_trip", "bus.attach") if os.environ.get("XBT_XENTRACE") == "1" else None
phase = None
errors = []
for line in open(log, errors="replace"):
    if "xbt-harness: benchmark windows begin" in line:
        phase = "windows"
    if "xbt-harness: benchmark boots begin" in line:
        phase = "boots"
    m = re.search(r"\[(c|rust)-perf-pv\] (BENCH-ERROR.*|xbt: not ok.*)", line) or \
        re.search(r"(xbt: not ok.*)", line)
    if m:
        errors.append(line.strip())
        continue
    # The guest echoes every BENCH line itself; kernel console copies (with a printk
    # timestamp) would count the in-kernel numbers twice.
    m = re.search(r"\[(c|rust)-perf-pv\] BENCH@(\d+) (\S+) ([0-9.]+) (\S+)(.*)", line)
    if m and phase:
        core, rnd, name, value, unit, rest = m.groups()
        # Counting requests slows xenstored and tracing adds to Xen's work: such a run reports
        # only what it is for.
        if only and not name.startswith(only):
            continue
        e = re.search(r"\((\d+) errors\)", rest)
        if e and int(e.group(1)):
            errors.append(line.strip())
        if int(rnd) > 0:  # round 0 is the warm-up
            rounds[phase].setdefault(name, {}).setdefault(core, {})[int(rnd)] = (float(value), unit)
if not any(rounds.values()):
    sys.exit(f"no BENCH lines in {log}")

def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
def spread(xs):
    lo, hi = min(xs), max(xs)
    return f"{lo:.0f}-{hi:.0f}" if lo >= 100 else f"{lo:.2f}-{hi:.2f}"
def fmt(xs):
    m = median(xs) if xs else 0
    return (f"{m:.0f}" if min(xs) >= 100 else f"{m:.2f}") + f" [{spread(xs)}]" if xs else "missing"
# Which way is better, by unit; counts (delivered/sent events) have no direction.
HIGHER = {"ops/s", "events/s"}
LOWER = {"us", "ms", "s", "switches", "irqs"}
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131}

def table(metrics):
    print(f"{'metric (unit)':44} {'C median [range]':>22} {'Rust median [range]':>22} {'Rust/C':>7} {'95% CI':>13}  verdict")
    for name in sorted(metrics):
        c, r = metrics[name].get("c", {}), metrics[name].get("rust", {})
        unit = next(iter((c or r).values()))[1]
        cv, rv = [v for v, _ in c.values()], [v for v, _ in r.values()]
        pairs = [r[k][0] / c[k][0] for k in sorted(set(c) & set(r)) if c[k][0] > 0 and r[k][0] > 0]
        ratio = ci = verdict = ""
        if len(pairs) >= 2:
            logs = [math.log(p) for p in pairs]
            n = len(logs)
            mean = sum(logs) / n
            sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / (n - 1))
            half = T975.get(n - 1, 2.0) * sd / math.sqrt(n)
            lo, hi = math.exp(mean - half), math.exp(mean + half)
            ratio, ci = f"{math.exp(mean):.3f}", f"{lo:.3f}-{hi:.3f}"
            if unit in HIGHER or unit in LOWER:
                if lo > 1 or hi < 1:
                    better = (lo > 1) == (unit in HIGHER)
                    verdict = f"{'Rust' if better else 'C'} better"
                else:
                    verdict = "not resolved"
        elif c and r and unit in HIGHER | LOWER:
            verdict = "n/a (zero values)"
        print(f"{name + ' (' + unit + ')':44} {fmt(cv):>22} {fmt(rv):>22} {ratio:>7} {ci:>13}  {verdict}")
    print()

def measured(metrics):
    return max(k for v in metrics.values() for c in v.values() for k in c)
print("Rust/C: geometric mean of the per-round paired ratios with its 95% confidence interval; a")
print("verdict only when the interval excludes 1.0, else the difference is below what the run resolves.")
print()
if rounds["windows"]:
    print("xenstore loads and attach/detach, in windows: C and Rust guests up together, taking turns;")
    print(f"{measured(rounds['windows'])} measured rounds per load")
    table(rounds["windows"])
if rounds["boots"]:
    print(f"the boot, one repetition per boot, the cores alternating; {measured(rounds['boots'])} measured rounds")
    table(rounds["boots"])

def size(paths):
    out = subprocess.run(["llvm-size-19", *paths], capture_output=True, text=True).stdout.splitlines()[1:]
    return sum(int(l.split()[0]) + int(l.split()[1]) for l in out if l.split() and l.split()[0].isdigit())
c_objs = [p for p in glob.glob(f"{build}/out-c-perf/drivers/xen/xenbus/*.o") if not p.endswith(".mod.o")
          and os.path.basename(p) not in ("xenbus.o", "built-in.a")]
rs_obj = [p for p in glob.glob(f"{build}/out-rust-perf/drivers/xen/xenbus-rs/xenbus_rs_*.o") if not p.endswith(".mod.o")]
if c_objs and rs_obj:
    c, r = size(c_objs), size(rs_obj)
    print(f"core text+data: C {c} bytes ({len(c_objs)} objects), Rust {r} bytes ({len(rs_obj)} objects), Rust/C {r / c:.3f}")
src = glob.glob(f"{top}/rust/xenbus/*.rs")
blocks = sum(len(re.findall(r"\bunsafe\s*\{", open(p).read())) for p in src)
fns = sum(len(re.findall(r"\bunsafe (?:extern \"C\" )?fn\b", open(p).read())) for p in src)
print(f"unsafe in rust/xenbus: {blocks} unsafe blocks, {fns} unsafe fns; log: {log}")
if errors:
    print(f"{len(errors)} errors during the run (numbers next to them may be missing or wrong):")
    print("\n".join("  " + e for e in errors[:20]))
    sys.exit(1)
PY
