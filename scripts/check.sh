#!/usr/bin/env bash
# The whole suite: host cargo tests, kernel builds (warnings in our Rust are failures), then the
# Xen-in-QEMU run of every profile (boot-time KUnit, live in-kernel tests, userspace tests, dom0
# checks). Ends with one line: "N passed, N failed[, N skipped]".
# usage: check.sh [PROFILE...]   (default: c rust)
source "$(dirname "$0")/lib/common.sh"
profiles=("$@"); [ ${#profiles[@]} -gt 0 ] || profiles=(c rust)
t0=$SECONDS
"$XBRS_TOP/scripts/deps.sh"
"$XBRS_TOP/scripts/xen/image.sh"
R=$XBRS_CACHE/logs/check-$(date +%Y%m%d-%H%M%S); mkdir -p "$R"
: > "$R/results"
result() { printf '%s\t%s\t%s\n' "$1" "$2" "${3:-}" >> "$R/results"; }

log "host tests (cargo test)"
if (cd "$XBRS_TOP" && cargo test --workspace --color never -j2) > "$R/cargo-test.log" 2>&1; then
  status=ok; else status=fail; fi
# One result per host test case, from libtest's "test NAME ... ok|FAILED|ignored" lines.
n=$(grep -cE '^test .* \.\.\. (ok|FAILED|ignored)' "$R/cargo-test.log" || true)
grep -E '^test .* \.\.\. (ok|FAILED|ignored)' "$R/cargo-test.log" | while read -r _ name _ st rest; do
  case $st in ok) result ok "host.$name" ;; FAILED) result fail "host.$name" ;; *) result skip "host.$name" "ignored" ;; esac
done
[ "$status" = ok ] || { tail -n 30 "$R/cargo-test.log"; result fail host.cargo_test "cargo test failed (log: $R/cargo-test.log)"; }
[ "$n" -gt 0 ] || result fail host.cargo_test "no host tests ran"
if (cd "$XBRS_TOP" && cargo fmt --all --check) > "$R/cargo-fmt.log" 2>&1; then result ok host.rustfmt
else result fail host.rustfmt "cargo fmt --check: $(head -n 3 "$R/cargo-fmt.log" | tr '\n' ' ')"; fi
ksrc=$KSRC_PRISTINE
if rustfmt --edition 2021 --config-path "$ksrc/.rustfmt.toml" --check "$XBRS_TOP"/rust/xenbus/*.rs \
    $(find "$XBRS_TOP/rust/kernel" "$XBRS_TOP/samples" -name '*.rs' 2>/dev/null) > "$R/rustfmt-kernel.log" 2>&1; then
  result ok kernel.rustfmt
else
  result fail kernel.rustfmt "rustfmt --check on kernel Rust: $(grep -m1 '^Diff in' "$R/rustfmt-kernel.log")"
fi
if (cd "$XBRS_TOP" && cargo clippy --workspace --all-targets --color never -- -D warnings) > "$R/cargo-clippy.log" 2>&1; then
  result ok host.clippy; else result fail host.clippy "$(grep -m1 -E '^(error|warning)' "$R/cargo-clippy.log")"; fi

built=()
for p in "${profiles[@]}"; do
  if "$XBRS_TOP/scripts/kernel.sh" build "$p" 2> >(tee "$R/kernel-$p.log" >&2); then
    result ok "kernel.$p.build"; built+=("$p")
    w=$XBRS_CACHE/build/out-$p/rust-warnings.txt
    n=$(grep -cE '^(warning|error)' "$w" 2>/dev/null || true)
    if [ "${n:-0}" = 0 ]; then result ok "kernel.$p.rust_clippy_clean"
    else cp "$w" "$R/"; result fail "kernel.$p.rust_clippy_clean" "$n warnings: $(grep -m1 -E '^(warning|error)' "$w")"; fi
  else
    result fail "kernel.$p.build" "see $R/kernel-$p.log"
  fi
done

if [ ${#built[@]} -gt 0 ]; then
  IFS=,; list="${built[*]}"; unset IFS
  "$XBRS_TOP/scripts/xen/run.sh" --profiles "$list" --log "$R/xen.log" --results "$R/xen.results" || true
  if [ -s "$R/xen.results" ]; then cat "$R/xen.results" >> "$R/results"
  else result fail xen.run "the Xen run produced no results (log: $R/xen.log)"; fi
fi

pass=$(grep -c '^ok' "$R/results" || true)
fail=$(grep -c '^fail' "$R/results" || true)
skip=$(grep -c '^skip' "$R/results" || true)
echo
echo "results: $R/results (elapsed $((SECONDS - t0)) s)"
awk -F'\t' '$1 == "fail" {print "  FAIL " $2 ($3 != "" ? " -- " $3 : "")}' "$R/results" | head -n 60
awk -F'\t' '$1 == "skip" {print "  SKIP " $2 " -- " $3}' "$R/results"
line="$pass passed, $fail failed"
[ "$skip" -gt 0 ] && line="$line, $skip skipped"
echo "$line"
[ "$fail" = 0 ]
