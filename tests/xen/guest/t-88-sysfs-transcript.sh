# sysfs and uevents of the xen bus, printed as a transcript that results.py compares between the
# C and the Rust guest: they must be identical (same devices, attributes, drivers, uevents).
# Values that depend on timing (event counters) are left out; their presence is recorded.
S=/tmp/sysfs.transcript
{
  echo "drivers: $(ls /sys/bus/xen/drivers 2>/dev/null | sort | tr '\n' ' ')"
  for d in $(ls /sys/bus/xen/devices | sort); do
    p=/sys/bus/xen/devices/$d
    echo "device $d"
    for a in nodename devtype modalias state; do echo "  $a=$(cat $p/$a 2>&1)"; done
    drv=$(readlink $p/driver 2>/dev/null); echo "  driver=${drv##*/}"
    echo "  uevent: $(sort $p/uevent | tr '\n' ' ')"
    echo "  xenbus/: $(ls $p/xenbus 2>/dev/null | sort | tr '\n' ' ')"
    echo "  attributes: $(ls $p | grep -v -e '^power$' -e '^subsystem$' -e '^driver$' | sort | tr '\n' ' ')"
  done
} > $S
n=$(grep -c '^device ' $S)
if [ "$n" -gt 0 ]; then xbt_ok "bus.sysfs_transcript_has_devices"; else xbt_fail "bus.sysfs_transcript_has_devices" "no device on the xen bus"; fi
echo "xbt-transcript[sysfs]: begin $(wc -l < $S) lines"
sed 's/^/xbt-transcript[sysfs]: |/' $S
echo "xbt-transcript[sysfs]: end $(md5sum < $S | cut -d' ' -f1)"
