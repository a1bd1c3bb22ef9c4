# /dev/xen/xenbus throughput: ops/s with 1 and 16 clients, watch events/s while dom0 writes.
/bin/xbt-devbench 5
