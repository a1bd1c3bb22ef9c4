# /dev/xen/xenbus under malformed input, abuse and load (xbt-devfuzz, xbt-devstress). The core
# decides which documented differences are checked (see rust/xenbus/dev.rs).
XBT_CORE=c
dmesg | grep -q 'xenbus_rs: Rust xenstore core' && XBT_CORE=rust

# xbt_run_logged OUT CMD...: run CMD with its output in OUT and a heartbeat on the console every
# 30 s (the harness takes a silent guest for a hung one); returns CMD's exit status.
xbt_run_logged() {
  local out=$1 pid n=0; shift
  "$@" > "$out" 2>&1 &
  pid=$!
  while kill -0 $pid 2>/dev/null; do
    sleep 1; n=$((n + 1))
    [ $((n % 30)) = 0 ] && xbt_diag "$1 still running ($n s)"
  done
  wait $pid
}

xbt_diag "xbt-devfuzz on the $XBT_CORE core"
xbt_run_logged /tmp/devfuzz.out /bin/xbt-devfuzz $XBT_CORE; rc=$?
xbt_import "" < /tmp/devfuzz.out
[ $rc = 0 ] || xbt_fail "dev.fuzz.exit" "xbt-devfuzz exited $rc"

# On the C core without pipelined batches: the C device reuses the file's buffer for a request
# still being sent (dev.pipelined_requests_keep_payloads above fails there on its own).
xbt_run_logged /tmp/devstress.out /bin/xbt-devstress 16 1000 $([ $XBT_CORE = c ] && echo serial); rc=$?
xbt_import "" < /tmp/devstress.out
[ $rc = 0 ] || xbt_fail "dev.stress.exit" "xbt-devstress exited $rc"
