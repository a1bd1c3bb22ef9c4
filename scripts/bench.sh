#!/usr/bin/env bash
# make bench: the C core against the Rust core, same workload, one QEMU run, ratios.
# Builds the -perf profiles (no debug options), boots both guests in bench mode, collects
# "BENCH name value unit" lines and prints Rust/C. Also core size and unsafe-block counts.
source "$(dirname "$0")/lib/common.sh"
run_perf_guests bench
python3 - "$PERF_LOG" "$XBRS_CACHE/build" "$XBRS_TOP" <<'PY'
import re, subprocess, sys, glob, os
log, build, top = sys.argv[1:4]
vals = {}
warm_up = False
for line in open(log, errors="replace"):
    # dom0 runs one unmeasured repetition first (tests/xen/dom0/init).
    if "xbt-harness: warm-up begins" in line:
        warm_up = True
    if "xbt-harness: warm-up ends" in line:
        warm_up = False
    if warm_up:
        continue
    # The guest echoes every BENCH line itself; kernel console copies (with a printk
    # timestamp) would count the in-kernel numbers twice.
    m = re.search(r"\[(c|rust)-perf-pv\] BENCH (\S+) ([0-9.]+) (\S+)", line)
    if m:
        vals.setdefault(m.group(2), {}).setdefault(m.group(1), []).append((float(m.group(3)), m.group(4)))
if not vals:
    sys.exit(f"no BENCH lines in {log}")
def median(xs):
    xs = sorted(x for x, _ in xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
def spread(xs):
    lo, hi = min(x for x, _ in xs), max(x for x, _ in xs)
    return f"{lo:.0f}-{hi:.0f}" if lo >= 100 else f"{lo:.2f}-{hi:.2f}"
print("median of the repetitions (n), range in brackets; Rust/C is the ratio of the medians")
print(f"{'metric':36} {'C core':>24} {'Rust core':>24} {'Rust/C':>7}")
for name in sorted(vals):
    c, r = vals[name].get("c"), vals[name].get("rust")
    unit = (c or r)[0][1]
    ratio = f"{median(r) / median(c):.3f}" if c and r and median(c) else "n/a"
    fmt = lambda v: f"{median(v):.1f} [{spread(v)}] n={len(v)}" if v else "missing"
    print(f"{name + ' (' + unit + ')':36} {fmt(c):>24} {fmt(r):>24} {ratio:>7}")
def size(paths):
    out = subprocess.run(["llvm-size-19", *paths], capture_output=True, text=True).stdout.splitlines()[1:]
    return sum(int(l.split()[0]) + int(l.split()[1]) for l in out if l.split() and l.split()[0].isdigit())
c_objs = [p for p in glob.glob(f"{build}/out-c-perf/drivers/xen/xenbus/*.o") if not p.endswith(".mod.o")
          and os.path.basename(p) not in ("xenbus.o", "built-in.a")]
rs_obj = [p for p in glob.glob(f"{build}/out-rust-perf/drivers/xen/xenbus-rs/xenbus_rs_*.o") if not p.endswith(".mod.o")]
if c_objs and rs_obj:
    c, r = size(c_objs), size(rs_obj)
    print(f"core text+data: C {c} bytes ({len(c_objs)} objects), Rust {r} bytes ({len(rs_obj)} objects, KUnit cases included), Rust/C {r / c:.3f}")
src = glob.glob(f"{top}/rust/xenbus/*.rs")
blocks = sum(len(re.findall(r"\bunsafe\s*\{", open(p).read())) for p in src)
fns = sum(len(re.findall(r"\bunsafe (?:extern \"C\" )?fn\b", open(p).read())) for p in src)
print(f"unsafe in rust/xenbus: {blocks} unsafe blocks, {fns} unsafe fns; log: {log}")
PY
