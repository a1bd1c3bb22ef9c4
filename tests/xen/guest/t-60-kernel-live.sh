# In-kernel xenstore API (the C ABI both cores provide) against the real xenstored, as KUnit.
m=$(find /lib/modules -name xenbus_live_test.ko | head -n 1)
if [ -z "$m" ]; then
  xbt_fail "kernel_live.module" "xenbus_live_test.ko is not in the image"
elif insmod "$m"; then
  xbt_kunit_results /sys/kernel/debug/kunit/xenbus_live*
  rmmod xenbus_live_test || xbt_fail "kernel_live.rmmod" "rmmod failed"
else
  xbt_fail "kernel_live.insmod" "insmod $m failed"
fi
