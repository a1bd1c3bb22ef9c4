# Suspend and resume in place (`xl save -c`: xs_suspend, then xs_suspend_cancel), before and after
# a failed TRANSACTION_START from userspace. The suspend gate must count what userspace does
# exactly: a request whose reply is an error still leaves the gate balanced.
XBT_CORE=c
dmesg | grep -q 'xenbus_rs: Rust xenstore core' && XBT_CORE=rust
checkpoint_case() { # NAME
  local t0=$(cut -d. -f1 /proc/uptime)
  if dom0_wait 150 checkpoint; then
    xbt_ok "$1.checkpoint"
    xbt_diag "$1: suspended and resumed in $(( $(cut -d. -f1 /proc/uptime) - t0 )) s (guest clock)"
  else
    xbt_fail "$1.checkpoint" "xl save -c failed or timed out (dom0 log above)"
  fi
  # The store works afterwards, watches included.
  xenstore-write data/xbt/ck "$1" && xbt_eq "$1.store_after" "$(xenstore-read data/xbt/ck)" "$1"
}

rm -f /tmp/ckw.out
xenstore-watch -n 2 data/xbt/ckw > /tmp/ckw.out 2>&1 &
ckw=$!
sleep 1
checkpoint_case suspend.clean
dom0 write data/xbt/ckw after
i=0; while [ $i -lt 50 ] && kill -0 $ckw 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
# One event on registration, one for dom0's write after the resume; then xenstore-watch exits.
if kill $ckw 2>/dev/null; then
  xbt_fail "suspend.clean.user_watch_survives" "no event after the resume: $(tr '\n' ' ' < /tmp/ckw.out)"
else
  xbt_eq "suspend.clean.user_watch_survives" "$(grep -c 'data/xbt/ckw' /tmp/ckw.out)" 2
fi

# A TRANSACTION_START in a transaction that does not exist: xenstored answers ENOENT.
out=$(xbt-devcall TRANSACTION_START 0xdeadbeef "" 2>&1)
xbt_eq "suspend.failed_tx_start.refused" "$out" "ERROR ENOENT"
if [ "$XBT_CORE" = c ]; then
  # xs_request_exit() (drivers/xen/xenbus/xenbus_xs.c) takes a second user off the suspend gate
  # for a failed TRANSACTION_START even when it came from userspace and never added one:
  # xs_state_users wraps to UINT_MAX and the next xs_suspend waits forever (the xenwatch thread
  # hangs in do_suspend, xl save times out). Demonstrated by scripts/xen/run.sh --break c-suspend-gate.
  if grep -q 'xbt.break=c-suspend-gate' /proc/cmdline; then
    checkpoint_case suspend.after_failed_tx_start
  else
    xbt_skip "suspend.after_failed_tx_start.checkpoint" "C core bug: a failed userspace TRANSACTION_START underflows xs_state_users, suspend then hangs (run.sh --break c-suspend-gate shows it)"
  fi
else
  checkpoint_case suspend.after_failed_tx_start
fi
