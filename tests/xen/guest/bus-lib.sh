# Helpers of the bus benchmarks (bus-bench.sh at boot, ab-windows.sh in windows).
bb_kmod() { find /lib/modules -name "$1.ko" | head -n 1; }
bb_up() { cut -d' ' -f1 /proc/uptime; }
bb_all_connected() {
  local d n=0
  for d in /sys/bus/xen/devices/*; do
    [ "$(cat "$d/state" 2>/dev/null)" = Connected ] || return 1
    n=$((n + 1))
  done
  [ $n -gt 0 ]
}
bb_wait() { # SECONDS TEST...: polls every 10 ms
  local t=$(( $1 * 100 )); shift
  while [ $t -gt 0 ]; do "$@" && return 0; usleep 10000; t=$((t - 1)); done
  return 1
}
# bb_attach_detach N: N runtime xl block-attach/-detach cycles of the hot-plug disk, each
# waited for (the disk appears, then its device is gone); prints the mean time per cycle and
# its two halves: attach (xl block-attach until /dev/xvdc exists) and detach (xl block-detach,
# which waits for the frontend to close, until the device has left the bus).
bb_attach_detach() {
  local t0 marks= ok=0 i
  t0=$(bb_up)
  for i in $(seq "$1"); do
    marks="$marks $(bb_up)"
    dom0 blkattach xvdc && bb_wait 20 test -b /dev/xvdc || break
    marks="$marks $(bb_up)"
    dom0 blkdetach xvdc && bb_wait 20 test ! -e /sys/bus/xen/devices/vbd-51744 || break
    ok=$((ok + 1))
  done
  if [ "$ok" = "$1" ]; then
    echo "$t0$marks $(bb_up)" | awk -v n="$1" '{
      for (i = 2; i < NF; i += 2) { a += $(i + 1) - $i; d += $(i + 2) - $(i + 1) }
      printf "BENCH bus.attach_detach_cycle %g ms\n", ($NF - $1) * 1000 / n
      printf "BENCH bus.attach_half %g ms\n", a * 1000 / n
      printf "BENCH bus.detach_half %g ms\n", d * 1000 / n
    }'
  else
    echo "BENCH-ERROR bus: attach/detach cycle $((ok + 1)) failed"
  fi
}
