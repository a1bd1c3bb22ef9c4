# make bench, second part: the boot, one repetition per boot (dom0 boots each guest three
# times, interleaving the two cores). The xenstore loads and the attach/detach cycles ran
# before, in windows (ab-windows.sh). Every line "BENCH name value unit" is collected by the
# host, which reports the median of the repetitions.
. /lib/xbt/bus-bench.sh
xenstore-write data/xbt/result bench
while :; do sleep 3600; done
