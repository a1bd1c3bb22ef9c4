# TAP helpers for the domU test image (busybox ash). Every result line starts with "xbt: " so the
# host can find it in the mixed Xen/dom0/domU console stream; the host counts them, not us.

XBT_N=0 XBT_PASS=0 XBT_FAIL=0 XBT_SKIP=0 XBT_SEQ=0

xbt_ok()   { XBT_N=$((XBT_N + 1)); XBT_PASS=$((XBT_PASS + 1)); echo "xbt: ok $XBT_N - $1"; }
xbt_fail() { XBT_N=$((XBT_N + 1)); XBT_FAIL=$((XBT_FAIL + 1)); echo "xbt: not ok $XBT_N - $1${2:+ # $2}"; }
xbt_skip() { XBT_N=$((XBT_N + 1)); XBT_SKIP=$((XBT_SKIP + 1)); echo "xbt: ok $XBT_N - $1 # SKIP $2"; }
xbt_diag() { echo "xbt: # $*"; }

# xbt_check NAME CMD...: passes when CMD exits 0; the command's output is shown on failure.
xbt_check() {
  local name=$1 out rc; shift
  out=$("$@" 2>&1); rc=$?
  if [ $rc = 0 ]; then xbt_ok "$name"; else xbt_fail "$name" "exit $rc: $(echo "$out" | tail -n 3 | tr '\n' ' ')"; fi
}
# xbt_eq NAME GOT WANT
xbt_eq() {
  if [ "$2" = "$3" ]; then xbt_ok "$1"; else xbt_fail "$1" "got '$2', want '$3'"; fi
}

# Grant references this domain can still allocate (tests/kunit/xbt_grants.c); empty if unknown.
xbt_grants_available() {
  [ -e /sys/kernel/debug/xbt_grants/available ] ||
    insmod "$(find /lib/modules -name xbt_grants.ko | head -n 1)" 2>/dev/null
  cat /sys/kernel/debug/xbt_grants/available 2>/dev/null
}
# xbt_no_grant_leak NAME BEFORE: passes once as many grants are available as BEFORE. Grants a
# backend still maps when the frontend ends its access are freed later by the grant table's
# deferred work (retried every second), so this waits up to 15 s.
xbt_no_grant_leak() {
  local name=$1 before=$2 now i=0
  if [ -z "$before" ]; then xbt_fail "$name" "no grant count (xbt_grants.ko)"; return; fi
  while :; do
    now=$(xbt_grants_available)
    [ "$now" = "$before" ] && { xbt_ok "$name"; return; }
    [ $i -ge 30 ] && break
    sleep 0.5; i=$((i + 1))
  done
  xbt_fail "$name" "$before grant references available before, ${now:-?} after"
}

# Results of programs that print "PASS name", "FAIL name: why", "SKIP name: why" lines.
xbt_import() {
  local prefix=$1 line
  while IFS= read -r line; do
    case $line in
      "PASS "*) xbt_ok "$prefix${line#PASS }" ;;
      "FAIL "*) line=${line#FAIL }; xbt_fail "$prefix${line%%: *}" "${line#*: }" ;;
      "SKIP "*) line=${line#SKIP }; xbt_skip "$prefix${line%%: *}" "${line#*: }" ;;
      *) echo "  $line" ;;
    esac
  done
}

# KUnit results from debugfs (KTAP). Test cases sit at exactly one indent level; deeper lines are
# parameters of a case, unindented lines the suite summary. Every planned case must have a result.
xbt_kunit_results() { # SUITE_DIR...
  local d
  for d in "$@"; do
    [ -f "$d/results" ] || continue
    awk -v suite="${d##*/}" '
      /^    1\.\.[0-9]+$/ { plan = substr($1, 4) + 0 }
      /^    (not )?ok [0-9]+ / {
        line = $0; sub(/^    /, "", line); pass = (line ~ /^ok /); sub(/^(not )?ok [0-9]+ /, "", line)
        skip = ""; if (match(line, / # SKIP/)) { skip = substr(line, RSTART + 7); line = substr(line, 1, RSTART - 1) }
        n++
        if (skip != "") print "SKIP kunit." suite "." line ": " skip
        else if (pass) print "PASS kunit." suite "." line
        else print "FAIL kunit." suite "." line ": KTAP says not ok (details in the console log)"
      }
      /^(not )?ok 1 / { summary = $0 }
      END {
        if (n == 0 && summary ~ / # SKIP/) { sub(/.* # SKIP ?/, "", summary); print "SKIP kunit." suite ": " summary }
        else if (n < plan) print "FAIL kunit." suite ".complete: " n " of " plan " cases reported"
      }' "$d/results"
  done > /tmp/kunit.results
  # Not a pipe: the importer must run in this shell so that the counters survive.
  xbt_import "" < /tmp/kunit.results
}

# Ask the dom0 agent to act (write/rm/chmod ... on our behalf) and wait for its acknowledgement.
dom0() { dom0_wait 20 "$@"; }
dom0_wait() { # SECONDS REQUEST...
  local secs=$1; shift
  XBT_SEQ=$((XBT_SEQ + 1))
  xbt-dom0 "$XBT_SEQ" "$secs" "$@"
}
