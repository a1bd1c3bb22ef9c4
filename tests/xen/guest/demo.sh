# make run: show a newcomer the guest working through its xenstore core, then offer a shell.
domid=$(xenstore-read domid)
echo
echo "================ xenbus-rs demo: a Xen PV domU on kernel $(uname -r) ================"
echo "xenbus core:      $(grep -q '^CONFIG_XEN_XENBUS_CORE_RUST=y' /proc/config 2>/dev/null && echo Rust || cat /sys/module/xenbus_rs/parameters/core 2>/dev/null || echo "see kernel log")"
echo "domid:            $domid"
echo "name:             $(xenstore-read name)"
echo "domain path:      $(xenstore-read /local/domain/$domid/domid >/dev/null && echo /local/domain/$domid)"
echo "memory/target:    $(xenstore-read memory/target) KiB"
echo "vm:               $(xenstore-read vm)"
echo "hypervisor:       $(cat /sys/hypervisor/type) $(cat /sys/hypervisor/version/major).$(cat /sys/hypervisor/version/minor)$(cat /sys/hypervisor/version/extra)"
echo "devices on the xen bus (/sys/bus/xen/devices):"
for d in /sys/bus/xen/devices/*; do
  [ -e "$d" ] || continue
  echo "  ${d##*/}: nodename=$(cat $d/nodename) devtype=$(cat $d/devtype) state=$(cat $d/state) modalias=$(cat $d/modalias)"
done
echo "xenstore-ls of this domain (first lines):"
xenstore-ls /local/domain/$domid 2>&1 | head -n 20 | sed 's/^/  /'
echo "========================================================================================"
xenstore-write data/xbt/result demo
# On a terminal dom0 attaches `xl console` here; otherwise it shuts the domain down now.
while :; do setsid cttyhack sh -l; done
