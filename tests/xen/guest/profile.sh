# Profile mode (scripts/profile.sh): the kernel samples its program counter on every tick
# (profile=2 on the command line); each load runs with fresh counters, which are then printed
# for the host to map onto System.map. Loads: the device answering locally, 16 device clients
# reading through xenstored, and the in-kernel benchmark (xenbus_read/xenbus_write threads).
xbt_prof() { # LABEL COMMAND...
  local label=$1; shift
  xbt-profdump -r || return
  "$@"
  xbt-profdump "$label"
}
xbt_prof dev_local xbt-devbench 15 local
xbt_prof dev_read16 xbt-devbench 15 read16
m=$(find /lib/modules -name xenbus_bench.ko | head -n 1)
xbt_prof kernel sh -c "insmod $m rounds=4000 && dmesg | sed -n 's/.*\(BENCH .*\)/\1/p' && rmmod xenbus_bench"
xenstore-write data/xbt/result profile
while :; do sleep 3600; done
