# Bus benchmarks at boot. Sourcing this file measures the boot (it must come first, before
# anything else loads the system; bench.sh does so):
#   bus_boot_to_all_connected  guest uptime when every xen bus device is Connected, with the
#                              frontend modules loaded as the first thing init does
#   bus_connect_after_insmod   from insmod of xen-blkfront + xen-netfront to all Connected
# (Attach/detach cycles are measured in windows, ab-windows.sh.)
. /lib/xbt/bus-lib.sh
bb_t0=$(bb_up)
if insmod "$(bb_kmod xen-blkfront)" && insmod "$(bb_kmod xen-netfront)" && bb_wait 60 bb_all_connected; then
  bb_t1=$(bb_up)
  echo "BENCH bus_boot_to_all_connected $bb_t1 s"
  echo "BENCH bus_connect_after_insmod $(awk -v a="$bb_t0" -v b="$bb_t1" 'BEGIN {print (b - a) * 1000}') ms"
else
  echo "BENCH-ERROR bus: frontends did not load or devices did not all connect: $(grep -H . /sys/bus/xen/devices/*/state | tr '\n' ' ')"
fi
