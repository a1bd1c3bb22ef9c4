# Unmodified C frontends on whichever core runs, moving real data through dom0's real backends.
kmod() { find /lib/modules -name "$1.ko" | head -n 1; }
wait_for() { # SECONDS TEST...
  local t=$(( $1 * 10 )); shift
  while [ $t -gt 0 ]; do "$@" && return 0; sleep 0.1; t=$((t - 1)); done
  return 1
}

# --- xen-blkfront: xvda is a raw disk, xvdb an ext4 disk dom0 wrote a file into.
if insmod "$(kmod xen-blkfront)"; then xbt_ok "frontend.blkfront.insmod"; else xbt_fail "frontend.blkfront.insmod" "insmod failed"; fi
xbt_check "frontend.blkfront.xvdb_appears" wait_for 20 test -b /dev/xvdb
xbt_eq "frontend.blkfront.vbd-51728.state" "$(cat /sys/bus/xen/devices/vbd-51728/state 2>&1)" "Connected"
xbt_eq "frontend.blkfront.backend_state" "$(xenstore-read "$(xenstore-read device/vbd/51728/backend)/state" 2>&1)" "4"
mkdir -p /mnt
if mount -t ext4 /dev/xvdb /mnt; then
  xbt_ok "frontend.blkfront.mount_ext4"
  xbt_eq "frontend.blkfront.read_dom0_file" "$(sha256sum /mnt/fromdom0.bin | cut -d' ' -f1)" \
    "$(xenstore-read data/xbt/expect/fromdom0-sha256)"
  head -c 65536 /dev/urandom > /mnt/fromdomu.bin
  sha=$(sha256sum /mnt/fromdomu.bin | cut -d' ' -f1)
  umount /mnt && sync
  # dom0 reads the file back from the image once this domain is gone (disk detached).
  echo "xbt-event: fromdomu sha256 $sha"
else
  xbt_fail "frontend.blkfront.mount_ext4" "mount /dev/xvdb failed"
fi
xbt_eq "frontend.blkfront.xvda_magic" "$(dd if=/dev/xvda bs=9 count=1 2>/dev/null)" "XBT-DISK-"

# --- runtime attach/detach of a third disk, 20 times: appears and disappears every time,
# xenstored holds as many watches for this domain afterwards as before (each device's backend
# watch is unregistered when it goes), and as many grant references are free as before.
# (dom0 requests run in this shell, never in $(...): their sequence numbers must advance here.)
xs_watches() { xenstore-read data/xbt/quota | tr '|' '\n' | awk '$1 == "watches" {print $3}'; }
same_watches() { dom0 quotaget && [ "$(xs_watches)" = "$1" ]; }
watches_before=
dom0 quotaget && watches_before=$(xs_watches)
# Where the time goes (uptime in centiseconds, no process): dom0's xl against the guest's side.
cs() { local u; read -r u _ < /proc/uptime; echo "${u%.*}${u#*.}"; }
grants_before=$(xbt_grants_available)
removed_msgs() { dmesg | grep -c 'vbd-51744: xenbus: device forcefully removed from xenstore$'; }
removed_before=$(removed_msgs)
ok=0 t_att=0 t_seen=0 t_det=0 t_gone=0
for i in $(seq 20); do
  t0=$(cs)
  dom0 blkattach xvdc || { echo "attach $i: agent failed"; break; }
  t1=$(cs)
  wait_for 20 test -b /dev/xvdc || { echo "attach $i: /dev/xvdc did not appear"; break; }
  t2=$(cs)
  dom0 blkdetach xvdc || { echo "detach $i: agent failed"; break; }
  t3=$(cs)
  wait_for 20 test ! -e /sys/bus/xen/devices/vbd-51744 || { echo "detach $i: vbd-51744 still there"; break; }
  wait_for 5 test ! -b /dev/xvdc || { echo "detach $i: /dev/xvdc still there"; break; }
  t4=$(cs)
  t_att=$((t_att + t1 - t0)) t_seen=$((t_seen + t2 - t1)) t_det=$((t_det + t3 - t2)) t_gone=$((t_gone + t4 - t3))
  ok=$((ok + 1))
done
xbt_diag "attach/detach x$ok (centiseconds): xl block-attach $t_att, then /dev/xvdc $t_seen; xl block-detach $t_det, then gone $t_gone"
xbt_eq "frontend.blkfront.attach_detach_20_cycles" "$ok" 20
xbt_eq "frontend.bus.no_leaked_devices" "$(ls /sys/bus/xen/devices | grep -c '^vbd-')" 2
# The kernel says so once per detach, with the C core's words.
xbt_eq "frontend.bus.detach_message_as_c" "$(($(removed_msgs) - removed_before))" "$ok"
# run.sh --break grant-leak: one grant reference taken and kept, which this check must see.
grep -q 'xbt.break=grant-leak' /proc/cmdline && echo 1 > /sys/kernel/debug/xbt_grants/leak
xbt_no_grant_leak "frontend.blkfront.no_leaked_grants" "$grants_before"
if [ -z "$watches_before" ]; then
  xbt_fail "frontend.bus.no_leaked_xenstore_watches" "could not read xenstored's watch count for this domain"
elif wait_for 5 same_watches "$watches_before"; then
  xbt_ok "frontend.bus.no_leaked_xenstore_watches"
else
  xbt_fail "frontend.bus.no_leaked_xenstore_watches" "xenstored holds $(xs_watches) watches for this domain, $watches_before before the 20 cycles"
fi

# --- xen-netfront: eth0 through netback to dom0's vif, which the harness gives 10.99.0.1.
if insmod "$(kmod xen-netfront)"; then xbt_ok "frontend.netfront.insmod"; else xbt_fail "frontend.netfront.insmod" "insmod failed"; fi
xbt_check "frontend.netfront.eth0_appears" wait_for 20 test -e /sys/class/net/eth0
xbt_eq "frontend.netfront.vif-0.state" "$(cat /sys/bus/xen/devices/vif-0/state 2>&1)" "Connected"
ip addr add 10.99.0.2/24 dev eth0 && ip link set eth0 up
xbt_check "frontend.netfront.ping_dom0" ping -c 3 -W 5 10.99.0.1
