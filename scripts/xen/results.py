#!/usr/bin/env python3
"""Turn the serial log of a harness run into test results.

Guest lines reach the serial console through dom0 prefixed with "[GUEST] "; dom0's own verdicts
name the guest in the test name. Every guest must report a plan ("xbt: 1..N") that matches the
results it printed, and dom0 must report that it finished: anything missing is a failure, so a
guest or hypervisor that hangs or dies can never look like a pass.
"""
import argparse
import difflib
import hashlib
import re
import sys

TS = re.compile(r"^\s*\d+\.\d+ ")
# Names never contain "[": a kernel message printed into the middle of a line starts there.
RESULT = re.compile(r"xbt: (ok|not ok)(?: \d+)? - ([^\s\[]+)(?:\s*# (SKIP)?\s*(.*))?")
PLAN = re.compile(r"xbt: 1\.\.(\d+)")
# "xbt-transcript: ..." is the tools transcript; "xbt-transcript[NAME]: ..." another one.
TRANSCRIPT = re.compile(r"xbt-transcript(?:\[([a-z]+)\])?: (begin|end|\|)(.*)$")
# Transcripts every test-mode guest prints: xenstore-* tools (t-75), sysfs and uevents (t-88).
TRANSCRIPT_NAMES = ("tools", "sysfs")
# The guests whose xenstore-* tool transcripts must be identical (t-75-tools-transcript.sh).
TRANSCRIPT_PAIR = ("c-pv", "rust-pv")


def compare_transcripts(guests, all_transcripts, results):
    for tname in TRANSCRIPT_NAMES:
        compare_transcript(tname, guests, {g: t for (g, n), t in all_transcripts.items() if n == tname}, results)


def compare_transcript(tname, guests, transcripts, results):
    """One result: the transcript of the C guest equals the Rust guest's, line for line."""
    name = f"{tname}_transcript.identical_c_vs_rust"
    ran = [g for g in TRANSCRIPT_PAIR if g in guests]
    if len(ran) < 2:
        results.append(("skip", name, f"needs both {' and '.join(TRANSCRIPT_PAIR)}; this run had "
                        + (", ".join(ran) or "neither")))
        return
    texts = {}
    for g in TRANSCRIPT_PAIR:
        t = transcripts.get(g)
        if not t or t["md5"] is None:
            results.append(("fail", name, f"{g} printed no complete transcript"))
            return
        body = "".join(line + "\n" for line in t["lines"])
        if hashlib.md5(body.encode()).hexdigest() != t["md5"]:
            results.append(("fail", name, f"the transcript of {g} was garbled on the console "
                            f"({len(t['lines'])} lines, md5 mismatch)"))
            return
        texts[g] = t["lines"]
    a, b = (texts[g] for g in TRANSCRIPT_PAIR)
    if a == b:
        results.append(("ok", name, ""))
        return
    diff = list(difflib.unified_diff(a, b, *TRANSCRIPT_PAIR, n=2, lineterm=""))
    changed = [l for l in diff if l[:1] in "+-" and l[:3] not in ("+++", "---")]
    results.append(("fail", name, f"{len(changed)} lines differ; first: {changed[0] if changed else '?'}"))
    print(f"--- {tname} transcript diff ({TRANSCRIPT_PAIR[0]} vs {TRANSCRIPT_PAIR[1]}):")
    print("\n".join("    " + l for l in diff[:200]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--guests", required=True)
    ap.add_argument("--qemu-status", type=int, default=0)
    ap.add_argument("--results", required=True)
    ap.add_argument("--mode", default="test")
    args = ap.parse_args()
    guests = [g for g in args.guests.split(",") if g]
    with open(args.log, errors="replace") as f:
        lines = [TS.sub("", l.rstrip("\n")) for l in f]

    results = []  # (status, name, reason) with status in ok / fail / skip
    guest_counts = {g: 0 for g in guests}
    plans = {}
    tails = {g: [] for g in guests}
    dom0_finished = False
    transcripts = {}  # guest -> {"lines": [...], "md5": str or None}
    for line in lines:
        owner = None
        m = re.match(r"^\[([^\]]+)\] (.*)$", line)
        if m and m.group(1) in guests:
            owner, line = m.group(1), m.group(2)
        elif m and m.group(1).endswith(" tail") and m.group(1)[:-5] in guests:
            tails[m.group(1)[:-5]].append(m.group(2))
            continue
        if "xbt-harness: dom0 finished" in line:
            dom0_finished = True
        tm = TRANSCRIPT.search(line) if owner else None
        if tm:
            tname, kind, rest = tm.groups()
            key = (owner, tname or "tools")
            if kind == "begin":
                transcripts[key] = {"lines": [], "md5": None, "open": True}
            elif key in transcripts and transcripts[key]["open"]:
                if kind == "|":
                    transcripts[key]["lines"].append(rest)
                else:
                    transcripts[key]["md5"] = rest.strip()
                    transcripts[key]["open"] = False
            continue
        pm = PLAN.search(line)
        if pm and owner:
            plans[owner] = int(pm.group(1))
            continue
        rm = RESULT.search(line)
        if not rm:
            continue
        ok, name, skip, reason = rm.group(1) == "ok", rm.group(2), rm.group(3), rm.group(4) or ""
        if owner:
            guest_counts[owner] += 1
            name = f"{owner}.{name}"
        status = "skip" if (ok and skip) else ("ok" if ok else "fail")
        results.append((status, name, reason))

    if args.mode == "test":
        compare_transcripts(guests, transcripts, results)
    names = {r[1] for r in results}
    for g in guests:
        if f"{g}.guest_completed" not in names:
            results.append(("fail", f"{g}.guest_completed", "no verdict from dom0 (harness died?)"))
        if args.mode != "test":
            continue
        if g not in plans:
            results.append(("fail", f"{g}.plan", "the guest never printed its plan (it did not finish)"))
        elif plans[g] != guest_counts[g]:
            results.append(("fail", f"{g}.plan", f"planned {plans[g]} results, saw {guest_counts[g]}"))
    if args.qemu_status == 124 or args.qemu_status == 137:
        results.append(("fail", "harness.qemu_finished", "QEMU killed by the harness timeout"))
    elif not dom0_finished:
        results.append(("fail", "harness.dom0_finished", f"QEMU exited ({args.qemu_status}) before dom0 finished"))
    else:
        results.append(("ok", "harness.dom0_finished", ""))

    failed = [r for r in results if r[0] == "fail"]
    for status, name, reason in results:
        if status != "ok":
            print(f"{'FAIL' if status == 'fail' else 'SKIP'}: {name}{' -- ' + reason if reason else ''}")
    for g in guests:
        if tails[g] and any(r[1].startswith(g + ".guest_completed") for r in failed):
            print(f"--- last console lines of {g}:")
            print("\n".join("    " + t for t in tails[g][-40:]))
    if any(r[1].startswith("harness.") for r in failed):
        print(f"--- last lines of the serial log ({args.log}):")
        print("\n".join("    " + l for l in lines[-40:]))
    with open(args.results, "w") as f:
        for status, name, reason in results:
            f.write(f"{status}\t{name}\t{reason}\n")
    n_ok = sum(r[0] == "ok" for r in results)
    n_skip = sum(r[0] == "skip" for r in results)
    print(f"xen suite: {n_ok} passed, {len(failed)} failed" + (f", {n_skip} skipped" if n_skip else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
