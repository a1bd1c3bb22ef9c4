# The bus against a backend that misbehaves, scripted by dom0 (xenstore nodes only, no backend
# driver), with the xbtest frontend (tests/kunit/xenbus_test_frontend.c) bound: every case must
# end in a defined state with a clear message, and the device must stay manageable.
fe() { xenstore-read device/xbtest/$1/state 2>/dev/null; }
until_eq() { # SECONDS WANT CMD...: wait until CMD prints WANT; prints the last value
  local t=$(( $1 * 10 )) want=$2 v; shift 2
  while :; do v=$("$@"); [ "$v" = "$want" ] && break; t=$((t - 1)); [ $t -le 0 ] && break; sleep 0.1; done
  echo "$v"
}
sys_state() { cat /sys/bus/xen/devices/xbtest-$1/state 2>/dev/null; }
m=$(find /lib/modules -name xenbus_test_frontend.ko | head -n 1)
if ! insmod "$m"; then xbt_fail "backend_edges.insmod" "insmod $m failed"; else
  # Closing before Connected: the frontend closes.
  dom0 mkbe xbtest 10 1 && dom0 mkdev xbtest 10
  xbt_eq "backend_edges.probe_initialised" "$(until_eq 10 3 fe 10)" 3
  dom0 bestate xbtest 10 5
  xbt_eq "backend_edges.early_closing.frontend_closed" "$(until_eq 10 6 fe 10)" 6
  xbt_eq "backend_edges.early_closing.sysfs_state" "$(until_eq 5 Closed sys_state 10)" "Closed"

  # The backend disappears while connected: the frontend sees Unknown and closes.
  dom0 mkbe xbtest 11 1 && dom0 mkdev xbtest 11
  until_eq 10 3 fe 11 >/dev/null
  dom0 bestate xbtest 11 4
  xbt_eq "backend_edges.vanish.connected_first" "$(until_eq 10 4 fe 11)" 4
  dom0 rmbe xbtest 11
  xbt_eq "backend_edges.vanish.frontend_closed" "$(until_eq 10 6 fe 11)" 6

  # A bogus backend-id: probing fails with a message in error/, the device stays unbound.
  dom0 mkbe xbtest 12 1 && dom0 mkdev xbtest 12 not-a-number
  err=$(until_eq 10 ok sh -c 'xenstore-read error/device/xbtest/12/error >/dev/null 2>&1 && echo ok')
  xbt_eq "backend_edges.bogus_backend_id.error_node" "$err" ok
  xbt_check "backend_edges.bogus_backend_id.message" sh -c \
    "xenstore-read error/device/xbtest/12/error | grep -q 'reading other end details'"
  xbt_check "backend_edges.bogus_backend_id.unbound" test ! -e /sys/bus/xen/devices/xbtest-12/driver
  xbt_eq "backend_edges.bogus_backend_id.frontend_closing" "$(until_eq 10 5 fe 12)" 5

  # An out-of-range state: passed on, ignored by the driver, reported in the kernel log.
  dom0 mkbe xbtest 13 1 && dom0 mkdev xbtest 13
  until_eq 10 3 fe 13 >/dev/null
  dom0 bestate xbtest 13 99
  sleep 1
  xbt_eq "backend_edges.invalid_state.frontend_unchanged" "$(fe 13)" 3
  xbt_check "backend_edges.invalid_state.still_bound" test -e /sys/bus/xen/devices/xbtest-13/driver
  # The C core reports it only with dev_dbg (dynamic debug is off here); ours warns, bounded.
  if dmesg | grep -q 'xenbus_rs: Rust xenstore core'; then
    xbt_check "backend_edges.invalid_state.reported" \
      sh -c 'dmesg | grep -q "xbtest-13: backend .*/xbtest/.*/13 reports invalid state 99 (passed on)"'
  else
    xbt_skip "backend_edges.invalid_state.reported" "the C core logs invalid backend states only with dev_dbg"
  fi

  # The toolstack resets a device's state to Initialising (a new instance of it, as after a
  # backend domain crashed): the bus drops the device and probes it again, so the frontend
  # writes Initialised once more.
  dom0 mkbe xbtest 14 1 && dom0 mkdev xbtest 14
  until_eq 10 3 fe 14 >/dev/null
  dom0 write device/xbtest/14/state 1
  xbt_eq "backend_edges.state_reset.probed_again" "$(until_eq 10 3 fe 14)" 3
  xbt_check "backend_edges.state_reset.message" sh -c \
    'dmesg | grep -q "xbtest-14: xenbus: state reset occurred (xenstore state 1, local state 3, xenstore backend 0, local backend 0), reconnecting"'

  # Everything can be removed again.
  for i in 10 11 12 13 14; do dom0 rmdev xbtest $i; dom0 rmbe xbtest $i; done
  left=$(until_eq 15 0 sh -c 'ls /sys/bus/xen/devices | grep -c "^xbtest-1[0-4]$"')
  xbt_eq "backend_edges.all_removed" "$left" 0
  rmmod xenbus_test_frontend || xbt_fail "backend_edges.rmmod" "rmmod failed"
fi
