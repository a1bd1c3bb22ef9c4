#!/usr/bin/env python3
"""Print the rustc/clippy diagnostics of a kernel build log that point into this project's code.

usage: rust_warnings.py BUILD_LOG [PATTERN...]
A diagnostic starts with "warning: ..." or "error[...]: ..." and ends at a blank line; it is
ours when its "--> file:line" location matches one of the patterns.
"""
import re
import sys

START = re.compile(r"^(warning|error)(\[[^\]]*\])?: ")
LOC = re.compile(r"^\s*--> (\S+)")

def main():
    log, patterns = sys.argv[1], sys.argv[2:] or ["drivers/xen/xenbus-rs/", "rust/kernel/xen", "samples/rust/rust_xen"]
    block, ours = [], False
    def flush():
        if block and ours:
            print("\n".join(block) + "\n")
    for line in open(log, errors="replace"):
        line = line.rstrip("\n")
        if START.match(line):
            flush()
            block, ours = [line], False
        elif block:
            if not line.strip():
                flush()
                block, ours = [], False
                continue
            block.append(line)
            m = LOC.match(line)
            if m and any(p in m.group(1) for p in patterns):
                ours = True
    flush()

main()
