# make bench, second part: the bus, one repetition per boot (dom0 boots each guest three times,
# interleaving the two cores). The xenstore loads ran before, in windows (ab-windows.sh). Every
# line "BENCH name value unit" is collected by the host, which reports the median of the
# repetitions. bus-bench.sh comes first: it measures the boot itself.
. /lib/xbt/bus-bench.sh
bb_attach_detach_20
xenstore-write data/xbt/result bench
while :; do sleep 3600; done
