# Profile mode (scripts/profile.sh): the kernel samples its program counter on every tick
# (profile=2 on the command line); each load runs with fresh counters, which are then printed
# for the host to map onto System.map. Loads: the device answering locally, 16 device clients
# reading through xenstored, and the in-kernel benchmark (xenbus_read/xenbus_write threads).
# Counters for the profile's loads: context switches, store interrupts, busy CPU ticks.
xbt_counters() {
  awk '/^ctxt/ {c=$2} /^cpu / {b=$2+$3+$4+$7+$8; s=$9} END {printf "%d %d %d ", c, b, s}' /proc/stat
  awk '/xenbus/ {for (i=2; i<NF; i++) if ($i ~ /^[0-9]+$/) n+=$i} END {printf "%d ", n}' /proc/interrupts
  dom0 dom0stat && xenstore-read data/xbt/dom0stat
}
xbt_prof() { # LABEL COMMAND...
  local label=$1; shift
  local before after
  xbt-profdump -r || return
  # Not $(...): the agent's request counter must survive.
  xbt_counters > /tmp/before
  "$@"
  xbt_counters > /tmp/after
  before=$(cat /tmp/before) after=$(cat /tmp/after)
  xbt-profdump "$label"
  echo "PROFSTAT $label before $before after $after"
}
xbt_prof dev_local xbt-devbench 15 local
xbt_prof dev_read16 xbt-devbench 15 read16
m=$(find /lib/modules -name xenbus_bench.ko | head -n 1)
# A lone request at a time: its counters show the thread hand-offs of one round trip.
xbt_prof kernel_rt sh -c "insmod $m rounds=4000 round_trip_only=1 && dmesg -c | sed -n 's/.*\(BENCH .*\)/\1/p' && rmmod xenbus_bench"
xbt_prof kernel sh -c "insmod $m rounds=4000 && dmesg -c | sed -n 's/.*\(BENCH .*\)/\1/p' && rmmod xenbus_bench"
xenstore-write data/xbt/result profile
while :; do sleep 3600; done
