# make bench: numbers, not tests. Every line "BENCH name value unit" is collected by the host,
# which reports the median of the repetitions (single runs under TCG vary by up to 20%). One
# boot is one repetition: dom0 boots each guest three times, interleaving the two cores.
# bus-bench.sh comes first: it measures the boot itself.
. /lib/xbt/bus-bench.sh
m=$(find /lib/modules -name xenbus_bench.ko | head -n 1)
if [ -n "$m" ] && insmod "$m" rounds=2000; then
  dmesg | sed -n 's/.*\(BENCH .*\)/\1/p'
  rmmod xenbus_bench
else
  echo "BENCH-ERROR xenbus_bench.ko missing or failed"
fi
# The device benchmarks (bench-*.sh: /dev/xen/xenbus ops/s with 1 and 16 clients, watch
# events/s while dom0 writes).
for b in /lib/xbt/bench-*.sh; do . "$b"; done
bb_attach_detach_20
xenstore-write data/xbt/result bench
while :; do sleep 3600; done
