# Bus benchmarks. Sourcing this file measures the boot (it must come first, before anything
# else loads the system; bench.sh does so):
#   bus_boot_to_all_connected  guest uptime when every xen bus device is Connected, with the
#                              frontend modules loaded as the first thing init does
#   bus_connect_after_insmod   from insmod of xen-blkfront + xen-netfront to all Connected
# and defines bb_attach_detach_20, which measures
#   bus_attach_detach_20       20 runtime xl block-attach/-detach cycles, each waited for
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
bb_t0=$(bb_up)
if insmod "$(bb_kmod xen-blkfront)" && insmod "$(bb_kmod xen-netfront)" && bb_wait 60 bb_all_connected; then
  bb_t1=$(bb_up)
  echo "BENCH bus_boot_to_all_connected $bb_t1 s"
  echo "BENCH bus_connect_after_insmod $(awk -v a="$bb_t0" -v b="$bb_t1" 'BEGIN {print (b - a) * 1000}') ms"
else
  echo "BENCH-ERROR bus: frontends did not load or devices did not all connect: $(grep -H . /sys/bus/xen/devices/*/state | tr '\n' ' ')"
fi
bb_attach_detach_20() {
  local t0 ok=0 i
  t0=$(bb_up)
  for i in $(seq 20); do
    dom0 blkattach xvdc && bb_wait 20 test -b /dev/xvdc && dom0 blkdetach xvdc &&
      bb_wait 20 test ! -e /sys/bus/xen/devices/vbd-51744 || break
    ok=$((ok + 1))
  done
  if [ $ok = 20 ]; then echo "BENCH bus_attach_detach_20 $(awk -v a="$t0" -v b="$(bb_up)" 'BEGIN {print b - a}') s"
  else echo "BENCH-ERROR bus: attach/detach cycle $((ok + 1)) failed"; fi
}
