# Benchmarks (bench-*.sh): only with xbt.bench=1 on the guest kernel command line. They print
# "BENCH name value unit" lines and no test results: machine-dependent numbers are never a test.
case " $(cat /proc/cmdline) " in
  *" xbt.bench=1 "*) for b in /lib/xbt/bench-*.sh; do xbt_diag "benchmark ${b##*/}"; . "$b"; done ;;
esac
