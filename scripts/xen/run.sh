#!/usr/bin/env bash
# Boot Xen 4.17 in QEMU (TCG) with a Debian dom0 and run one PV domU per kernel profile.
# usage: run.sh [--profiles c,rust] [--mode test|demo|bench|profile] [--interactive] [--hang PROFILE]
#               [--only GROUPS] [--break WHAT] [--idle S] [--timeout S] [--log FILE] [--results FILE]
source "$(dirname "$0")/../lib/common.sh"
PROFILES=c MODE=test INTERACTIVE=0 ONLY= HANG= BREAK= IDLE=90 TIMEOUT= LOG= RESULTS= GUEST_WAIT=1200
while [ $# -gt 0 ]; do
  case $1 in
    --profiles) PROFILES=$2; shift ;; --mode) MODE=$2; shift ;; --interactive) INTERACTIVE=1 ;;
    --hang) HANG=$2; shift ;; --only) ONLY=$2; shift ;; --break) BREAK=$2; shift ;; --idle) IDLE=$2; shift ;;
    --timeout) TIMEOUT=$2; shift ;; --log) LOG=$2; shift ;; --results) RESULTS=$2; shift ;;
    *) die "unknown option $1" ;;
  esac; shift
done
mkdir -p "$XBRS_CACHE/logs"
LOG=${LOG:-$XBRS_CACHE/logs/xen-$(date +%Y%m%d-%H%M%S).log}
RESULTS=${RESULTS:-${LOG%.log}.results}
[ -f "$XEN_DIR/xen.elf" ] || die "no Xen images; run scripts/xen/image.sh"

with_heavy_lock
W=$(mktemp -d "$XBRS_CACHE/tmp.run.XXXX"); trap 'rm -rf "$W"' EXIT
P=$W/stage1/payload
mkdir -p "$P/harness" "$W/stage1"
cp -a "$XEN_DIR/dom0-stage1/." "$W/stage1/"
cp "$XBRS_TOP/tests/xen/dom0/stage1-init" "$W/stage1/init"
cp "$XBRS_TOP"/tests/xen/dom0/{init,agent.sh,block-xbt,vif-xbt,xs-writes,xentrace-summary} "$P/harness/"
# dom0 helper programs: built here against the same libxenstore as dom0's (checked by guest-image.sh).
for src in "$XBRS_TOP"/tests/xen/dom0/*.c; do
  [ -e "$src" ] || continue
  gcc -O2 -Wall -Wextra -Werror -o "$P/harness/$(basename "$src" .c)" "$src" -lxenstore || die "cannot build $src"
done
guests=()
for p in ${PROFILES//,/ }; do
  g=$p-pv; guests+=("$g")
  kout=$XBRS_CACHE/build/out-$p
  [ -f "$kout/arch/x86/boot/bzImage" ] || die "no kernel for profile $p; run 'make kernel PROFILE=$p'"
  mkdir -p "$P/guests/$g"
  cp "$kout/arch/x86/boot/bzImage" "$P/guests/$g/bzImage"
  "$XBRS_TOP/scripts/xen/guest-image.sh" "$p" "$P/guests/$g/initrd.gz"
  cmdline="loglevel=7"; [ "$HANG" = "$p" ] && cmdline="$cmdline xbt.hang=1"
  [ -n "$ONLY" ] && cmdline="$cmdline xbt.only=$ONLY"
  [ -n "$BREAK" ] && cmdline="$cmdline xbt.break=$BREAK"
  # Benchmarks compare the cores, not the boot-time KUnit suites (the Rust kernel has more).
  [ "$MODE" = bench ] && cmdline="$cmdline kunit.enable=0"
  [ "$MODE" = profile ] && cmdline="$cmdline kunit.enable=0 profile=2"
  echo "$cmdline" > "$P/guests/$g/cmdline"
  # KASAN and kmemleak kernels need more memory than the plain ones.
  grep -qE '^CONFIG_(KASAN|DEBUG_KMEMLEAK)=y' "$kout/.config" && echo 384 > "$P/guests/$g/memory"
done
(cd "$W/stage1" && find . | cpio -o -H newc --quiet | gzip -1) > "$W/dom0-initrd.gz"

# A test guest on the Rust core ran its suite in ~11.5 min on a machine where the C guest took
# ~7.5 min (and on another in ~3.5 min): the wait is for slow machines, hangs are caught by the
# idle limit. Bench mode runs both guests at once for the windows of loads (~8.5 min), then
# boots every guest nine times (a warm-up round and eight measured ones, ~9-15 s per boot): ten
# boots per guest is the budget.
boots=1; [ "$MODE" = bench ] && boots=10 GUEST_WAIT=600
IFS=, ; guest_list="${guests[*]}"; unset IFS
dom0_cmdline="console=hvc0 earlyprintk=xen rdinit=/init xbt.guests=$guest_list xbt.mode=$MODE"
dom0_cmdline+=" xbt.interactive=$INTERACTIVE xbt.idle=$IDLE xbt.wait=$GUEST_WAIT${BREAK:+ xbt.break=$BREAK}"
[ "${XBT_XS_REQUESTS:-0}" = 1 ] && dom0_cmdline+=" xbt.xs_requests=1"
[ "${XBT_XENTRACE:-0}" = 1 ] && dom0_cmdline+=" xbt.xentrace=1"
# make bench with some loads only, e.g. XBT_BENCH_LOADS=attach XBT_BENCH_ROUNDS=16 (no boots).
[ -n "${XBT_BENCH_LOADS:-}" ] && dom0_cmdline+=" xbt.ab_loads=${XBT_BENCH_LOADS// /,}"
[ -n "${XBT_BENCH_ROUNDS:-}" ] && dom0_cmdline+=" xbt.ab_rounds=$XBT_BENCH_ROUNDS"
# Every guest boot gets at most GUEST_WAIT s plus boot and shutdown; dom0 itself boots in
# ~15-30 s.
TIMEOUT=${TIMEOUT:-$(( 120 + boots * ${#guests[@]} * (GUEST_WAIT + 120) ))}
[ "$INTERACTIVE" = 1 ] && TIMEOUT=0
# spec-ctrl=eager-fpu: Xen's lazy FPU switching corrupts guest FPU state under TCG with -cpu max.
xen_cmdline="console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M loglvl=all"
# Tests: dom0 and the guest get two vCPUs each, spread by Xen's scheduler over QEMU's two CPUs
# (concurrency in the guest is part of what is tested). Measurements: one CPU each, pinned (the
# guest's side is set in tests/xen/dom0/init), so that neither waits for the other's vCPU to be
# descheduled: with 2+2 vCPUs on 2 CPUs one kernel's repetitions differed by up to 40%.
case $MODE in
  bench|profile) xen_cmdline+=" dom0_max_vcpus=1 dom0_vcpus_pin" ;;
  *) xen_cmdline+=" dom0_max_vcpus=2" ;;
esac
xen_cmdline+=" guest_loglvl=all noreboot spec-ctrl=eager-fpu"
qemu=(qemu-system-x86_64 -accel tcg -machine q35 -cpu max -smp 2 -m 2048 -nographic -no-reboot
  -drive "file=$XEN_DIR/rootfs.ext4,if=virtio,format=raw,snapshot=on"
  -kernel "$XEN_DIR/xen.elf" -append "$xen_cmdline"
  -initrd "$XEN_DIR/dom0/vmlinuz ${dom0_cmdline//,/,,},$W/dom0-initrd.gz")
[ -n "${QEMU_EXTRA:-}" ] && qemu+=($QEMU_EXTRA)

log "booting Xen + dom0 + guests ${guest_list} (timeout ${TIMEOUT}s, log $LOG)"
t0=$SECONDS
if [ "$INTERACTIVE" = 1 ]; then
  echo "=== Ctrl-] leaves the guest console (then everything shuts down); Ctrl-a x kills QEMU at once."
  "${qemu[@]}" 2>&1 | tee "$LOG"
  exit 0
fi
set +e
timeout --kill-after=10 "$TIMEOUT" "${qemu[@]}" < /dev/null 2>&1 |
  perl -MTime::HiRes=time -ne 'BEGIN{$|=1;$t0=time} s/\e\[[0-9;?]*[a-zA-Z]//g; s/\r//g; printf "%7.2f %s", time-$t0, $_' > "$LOG" &
qpid=$!
# Progress on our stdout: harness events and test results only; the full console is in $LOG.
show='xbt: (not ok|ok|1\.\.)|xbt-event:|=== \[dom0|xbt-harness'
[ "$MODE" = bench ] || [ "$MODE" = profile ] && show='BENCH|=== \[dom0|xbt-harness'
[ "$MODE" = demo ] && show='^ *[0-9.]+ \[[a-z]+-pv\] [^[]|=== \[dom0|xbt-harness'
tail -n +1 -F --pid=$qpid "$LOG" 2>/dev/null | grep --line-buffered -E "$show" &
tpid=$!
wait $qpid; rc=$?
sleep 0.5; kill $tpid 2>/dev/null; wait $tpid 2>/dev/null
set -e
log "QEMU exited after $((SECONDS - t0)) s (status $rc)"
python3 "$XBRS_TOP/scripts/xen/results.py" --log "$LOG" --guests "$guest_list" --qemu-status "$rc" --mode "$MODE" \
  --results "$RESULTS"
