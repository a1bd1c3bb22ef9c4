# The xen bus in sysfs against xenstore's device/ tree, and hot-plug through the device/ watch.
xbt_check "bus.sysfs_present" test -d /sys/bus/xen/devices
n=0
# Like the C core, only device/<type>/<id> entries with a state node are devices (the toolstack also
# keeps non-device nodes there, e.g. device/suspend/event-channel).
for type in $(xenstore-list device 2>/dev/null); do
  for id in $(xenstore-list device/$type); do
    xenstore-exists device/$type/$id/state || continue
    n=$((n + 1)); d=/sys/bus/xen/devices/$type-$id
    if [ ! -d "$d" ]; then xbt_fail "bus.device.$type-$id" "no $d"; continue; fi
    xbt_eq "bus.device.$type-$id.nodename" "$(cat $d/nodename)" "device/$type/$id"
    xbt_eq "bus.device.$type-$id.devtype" "$(cat $d/devtype)" "$type"
    xbt_eq "bus.device.$type-$id.modalias" "$(cat $d/modalias)" "xen:$type"
    xbt_check "bus.device.$type-$id.uevent" grep -qx "MODALIAS=xen:$type" $d/uevent
    xbt_check "bus.device.$type-$id.state" test -n "$(cat $d/state)"
  done
done
[ $n -gt 0 ] || xbt_fail "bus.devices" "xenstore lists no device/*/* for this domain"
# Hot-plug: dom0 creates a device node in Initialising state; the bus must notice, then removal.
dom0 mkdev xbtest 7
i=0; while [ ! -d /sys/bus/xen/devices/xbtest-7 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
xbt_check "bus.hotplug.add" test -d /sys/bus/xen/devices/xbtest-7
dom0 rmdev xbtest 7
i=0; while [ -d /sys/bus/xen/devices/xbtest-7 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
xbt_check "bus.hotplug.remove" test ! -d /sys/bus/xen/devices/xbtest-7
# A device whose state node alone is removed leaves the bus too (issue 5: "device removal when the
# node or its state disappears").
dom0 mkdev xbtest 8
i=0; while [ ! -d /sys/bus/xen/devices/xbtest-8 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
xbt_check "bus.hotplug.add_for_state_removal" test -d /sys/bus/xen/devices/xbtest-8
dom0 rm device/xbtest/8/state
i=0; while [ -d /sys/bus/xen/devices/xbtest-8 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
if dmesg | grep -q 'xenbus_rs: Rust xenstore core'; then
  xbt_check "bus.hotplug.remove_on_state_gone" test ! -d /sys/bus/xen/devices/xbtest-8
elif [ -d /sys/bus/xen/devices/xbtest-8 ]; then
  xbt_skip "bus.hotplug.remove_on_state_gone" "the C core keeps a device whose state node alone is removed (it looks only for devices at or below the removed node)"
else
  xbt_ok "bus.hotplug.remove_on_state_gone"
fi
dom0 rmdev xbtest 8
