# make bench, first part: the xenstore loads in short windows, the two cores taking turns.
# dom0 (tests/xen/dom0/init, ab_windows) runs the C and the Rust guest at once; one measures
# while the other waits on a watch, and dom0 alternates them, A B then B A, window by window.
# Whatever drifts during a run (the host, dom0, xenstored) then weighs on both cores within
# seconds instead of across boots minutes apart, and each round gives one paired Rust/C ratio.
# A window is one load once; its lines come out as "BENCH@ROUND name value unit".
. /lib/xbt/bus-lib.sh
ab_bench_ko=$(bb_kmod xenbus_bench)
# For the attach/detach window: the guest has no disk of its own, dom0 attaches one at runtime.
insmod "$(bb_kmod xen-blkfront)" || echo "BENCH-ERROR insmod xen-blkfront failed"
ab_kernel_bench() { # MODULE-PARAMETERS...
  dmesg -c >/dev/null
  if [ -n "$ab_bench_ko" ] && insmod "$ab_bench_ko" "$@"; then
    dmesg -c | sed -n 's/.*\(BENCH .*\)/\1/p'
    rmmod xenbus_bench
  else
    echo "BENCH-ERROR xenbus_bench.ko missing or failed"
  fi
}
ab_load() { # LOAD ROUND
  case $1 in
    attach) bb_attach_detach 5 ;;
    # Read round trip, then ops/s with 1 and 8 threads, 2000 operations per thread: ~6 s.
    # With 500 the round trip took 0.3 s, short enough for one hiccup of the host to move a
    # window's mean by 20-60 % (seen for both cores).
    kernel) ab_kernel_bench rounds=2000 ;;
    # make bench-trace: the read round trip alone.
    roundtrip) ab_kernel_bench rounds=2000 round_trip_only=1 ;;
    *) /bin/xbt-devbench 2 "$1" "$2" ;;
  esac
}
xenstore-write data/xbt/ab/ready 1
echo "xbt-event: ready for benchmark windows"
ab_last=
# The watch fires once when it is registered: a window dom0 asked for before that still runs.
xenstore-watch data/xbt/ab/go | while read -r _; do
  ab_w=$(xenstore-read data/xbt/ab/go 2>/dev/null) || continue
  [ "$ab_w" = "$ab_last" ] && continue
  ab_last=$ab_w
  set -- $ab_w
  ab_load "$1" "$2" 2>&1 | sed "s/^BENCH /BENCH@$2 /"
  xenstore-write data/xbt/ab/done "$ab_w"
done
echo "BENCH-ERROR xenstore-watch on data/xbt/ab/go ended"
while :; do sleep 3600; done
