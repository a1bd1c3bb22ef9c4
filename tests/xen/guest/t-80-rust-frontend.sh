# The Rust xenbus frontend sample (samples/rust/rust_xen_vbd.rs, kernel::xen::xenbus) against the
# real blkback in dom0: it connects through a granted ring and an event channel, reads sector 0 of
# the guest's disk (dom0 wrote "XBT-DISK-<guest name>" there) and disconnects when unbound. Then 20 more
# insmod/rmmod rounds, each of which must connect, read the same bytes and leave the device Closed
# and unbound, with nothing left behind (interrupts, sysfs, grant references; kmemleak is checked
# by t-90).
# Both xenbus cores hold a reference to a frontend's module while it is bound to a device (as for
# xen-blkfront), so each round unbinds the devices through sysfs before rmmod. The sample binds
# every vbd of the guest (xvda and the ext4 disk xvdb); xvda is the one with the known sector 0.
vbd_node=device/vbd/51712 vbd_sys=/sys/bus/xen/devices/vbd-51712 vbd_mod=rust_xen_vbd
vbd_ok="vbd-51712: read sector 0 ok: "
vbd_unbind=/sys/bus/xen/drivers/$vbd_mod/unbind
vbd_ko=$(find /lib/modules -name $vbd_mod.ko | head -n 1)
vbd_want="XBT-DISK-$(xenstore-read data/xbt/expect/name)"
vbd_backend=$(xenstore-read $vbd_node/backend 2>/dev/null)
vbd_all=$(ls /sys/bus/xen/devices | grep '^vbd-' | tr '\n' ' ')
vbd_n=$(echo $vbd_all | wc -w)

vbd_reads() { dmesg | grep -c "$vbd_ok"; }
vbd_last() { dmesg | grep "$vbd_ok" | tail -n 1 | sed "s/.*$vbd_ok//"; }
vbd_irqs() { grep -c "$vbd_mod" /proc/interrupts; }
# What a round must leave behind: the device unbound, Closed on both ends, no interrupt, no module.
vbd_idle_state() {
  local d devs=
  [ -e $vbd_sys/driver ] && echo "driver=$(readlink $vbd_sys/driver)" || echo "driver="
  echo "states=$(xenstore-read $vbd_node/state $vbd_backend/state 2>&1 | tr '\n' ' ')"
  echo "irqs=$(vbd_irqs)"
  [ -d /sys/module/$vbd_mod ] && echo "module=loaded" || echo "module="
  for d in /sys/bus/xen/devices/*; do devs="$devs ${d##*/}"; done
  echo "devices=$devs"
}

vbd_unbind_all() { local d; for d in $vbd_all; do echo $d > $vbd_unbind || return 1; done; }
vbd_unload() { vbd_unbind_all; rmmod $vbd_mod; }

# vbd_connected: wait (at most 10 s) until the sample says Connected, which it does after its read.
vbd_connected() {
  local st= i=0
  while [ $i -lt 200 ]; do
    read -r st < $vbd_sys/state 2>/dev/null
    [ "$st" = Connected ] && return 0
    sleep 0.05; i=$((i + 1))
  done
  return 1
}

# vbd_round N: insmod, check the read and the connection, rmmod, check the device is closed.
# VBD_READS counts the reads logged so far.
vbd_round() {
  local log got
  insmod "$vbd_ko" || { echo "round $1: insmod failed"; return 1; }
  vbd_connected || { echo "round $1: not Connected within 10 s"; vbd_unload; return 1; }
  log=$(dmesg | grep "$vbd_ok")
  got=$(echo "$log" | grep -c .)
  [ "$got" -gt "$VBD_READS" ] || { echo "round $1: no read logged"; vbd_unload; return 1; }
  VBD_READS=$got got=${log##*"$vbd_ok"}
  [ "$got" = "$vbd_want" ] || { echo "round $1: read '$got', want '$vbd_want'"; vbd_unload; return 1; }
  [ "$(xenstore-read $vbd_node/state)" = 4 ] || { echo "round $1: frontend not Connected in xenstore"; vbd_unload; return 1; }
  [ "$(vbd_irqs)" = $vbd_n ] || { echo "round $1: $(vbd_irqs) event channel interrupts, want $vbd_n"; vbd_unload; return 1; }
  vbd_unbind_all || { echo "round $1: unbind failed"; return 1; }
  rmmod $vbd_mod || { echo "round $1: rmmod failed"; return 1; }
  [ "$(vbd_idle_state)" = "$vbd_idle" ] || { echo "round $1: left '$(vbd_idle_state | tr '\n' ' ')'"; return 1; }
}

if [ -z "$vbd_ko" ]; then
  xbt_fail "rust_frontend.module" "$vbd_mod.ko is not in the image"
elif [ ! -d "$vbd_sys" ] || [ -z "$vbd_backend" ]; then
  xbt_fail "rust_frontend.device" "no vbd-51712 device (sysfs $vbd_sys, backend '$vbd_backend')"
elif [ -e "$vbd_sys/driver" ]; then
  xbt_fail "rust_frontend.device" "vbd-51712 is already bound to $(readlink $vbd_sys/driver)"
else
  xbt_eq "rust_frontend.backend_initwait" "$(xenstore-read $vbd_backend/state)" 2
  grants_before=$(xbt_grants_available)
  before=$(vbd_reads)
  if insmod "$vbd_ko"; then
    xbt_ok "rust_frontend.insmod"
    i=0; while [ "$(vbd_reads)" -le "$before" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    xbt_eq "rust_frontend.read_sector0" "$(vbd_last)" "$vbd_want"
    xbt_eq "rust_frontend.frontend_connected" "$(xenstore-read $vbd_node/state)" 4
    xbt_eq "rust_frontend.backend_connected" "$(xenstore-read $vbd_backend/state)" 4
    xbt_check "rust_frontend.sysfs_bound" test "$(basename "$(readlink $vbd_sys/driver)")" = $vbd_mod
    xbt_check "rust_frontend.ring_published" test -n "$(xenstore-read $vbd_node/ring-ref)"
    xbt_eq "rust_frontend.evtchn_irq_per_vbd" "$(vbd_irqs)" $vbd_n
    xbt_check "rust_frontend.modalias" grep -qx "alias xen:vbd $vbd_mod" /lib/modules/$(uname -r)/modules.alias
    xbt_check "rust_frontend.unbind" vbd_unbind_all
    xbt_eq "rust_frontend.frontend_closed" "$(xenstore-read $vbd_node/state)" 6
    xbt_eq "rust_frontend.backend_closed" "$(xenstore-read $vbd_backend/state)" 6
    xbt_check "rust_frontend.sysfs_unbound" test ! -e $vbd_sys/driver
    xbt_check "rust_frontend.disconnect_logged" sh -c "dmesg | grep -q 'vbd-51712: disconnected, backend Closed'"
    if rmmod $vbd_mod; then xbt_ok "rust_frontend.rmmod"; else xbt_fail "rust_frontend.rmmod" "rmmod failed"; fi
    vbd_idle=$(vbd_idle_state)
    echo "$vbd_idle" | sed 's/^/  idle: /'
    xbt_eq "rust_frontend.no_irq_left" "$(vbd_irqs)" 0
    n=0 err= VBD_READS=$(vbd_reads)
    while [ $n -lt 20 ]; do
      n=$((n + 1))
      # Not in $(...): VBD_READS must advance in this shell.
      vbd_round $n > /tmp/vbd-round.out 2>&1 || { err=$(cat /tmp/vbd-round.out); [ -n "$err" ] || err="round $n failed"; break; }
    done
    if [ -z "$err" ]; then xbt_ok "rust_frontend.rebind_20_rounds"; else
      dmesg | grep -E "$vbd_mod|vbd-51712" | tail -n 20
      xbt_fail "rust_frontend.rebind_20_rounds" "$(echo "$err" | tail -n 1)"
    fi
    xbt_eq "rust_frontend.reads_logged" "$(vbd_reads)" "$((before + 21))"
    xbt_no_grant_leak "rust_frontend.no_leaked_grants" "$grants_before"
  else
    xbt_fail "rust_frontend.insmod" "insmod $vbd_ko failed"
  fi
fi

# Hand the disks over to xen-blkfront (t-85). A frontend that unbinds leaves its device Closed,
# and C frontends expect the toolstack's Initialising when they probe; blkback answers a frontend
# going back to Initialising by preparing for a reconnect (InitWait).
ho_ok=0
for d in $vbd_all; do
  n=device/vbd/${d#vbd-}
  xenstore-write $n/state 1
  b=$(xenstore-read $n/backend)
  i=0; while [ "$(xenstore-read $b/state)" != 2 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  [ "$(xenstore-read $b/state)" = 2 ] && ho_ok=$((ho_ok + 1))
done
xbt_eq "rust_frontend.handover_backends_initwait" "$ho_ok" "$vbd_n"
