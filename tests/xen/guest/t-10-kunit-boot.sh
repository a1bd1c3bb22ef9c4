# KUnit suites built into the kernel ran during boot (Rust doctests, #[kunit_tests], core unit tests).
xbt_kunit_results /sys/kernel/debug/kunit/*
