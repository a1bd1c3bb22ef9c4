# The kernel must not have complained about anything while the suite ran.
if [ -w /sys/kernel/debug/kmemleak ]; then
  echo scan > /sys/kernel/debug/kmemleak; sleep 1; echo scan > /sys/kernel/debug/kmemleak
  leaks=$(grep -c '^unreferenced object' /sys/kernel/debug/kmemleak)
  if [ "$leaks" = 0 ]; then xbt_ok "health.kmemleak"; else
    head -n 30 /sys/kernel/debug/kmemleak; xbt_fail "health.kmemleak" "$leaks unreferenced objects"; fi
else
  xbt_skip "health.kmemleak" "kernel built without CONFIG_DEBUG_KMEMLEAK"
fi
splat=$(dmesg | grep -E 'BUG:|WARNING:|Oops|KASAN|UBSAN|possible circular|possible recursive|inconsistent lock|INFO: task .* blocked|general protection|Call Trace' | head -n 5)
if [ -z "$splat" ]; then xbt_ok "health.no_kernel_splat"; else
  dmesg | tail -n 60; xbt_fail "health.no_kernel_splat" "$(echo "$splat" | head -n 1)"; fi
