// SPDX-License-Identifier: GPL-2.0
/*
 * In-kernel xenstore benchmark through the C ABI (the same code for the C and the Rust core).
 * Loaded by the guest's bench mode; prints "BENCH <name> <value> <unit>" lines. Not a test:
 * numbers only, compared by scripts/bench.sh.
 */
#include <linux/completion.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <xen/xen.h>
#include <xen/xenbus.h>

static unsigned int rounds = 2000;
module_param(rounds, uint, 0444);
MODULE_PARM_DESC(rounds, "operations per measurement and thread");
static bool round_trip_only;
module_param(round_trip_only, bool, 0444);
MODULE_PARM_DESC(round_trip_only, "measure only the read round trip (for make profile's counters)");

#define BENCH_DIR "data/xbt/bench"

struct bench_thread {
	struct completion done;
	unsigned int id;
	unsigned int errors;
};

/* Half writes, half reads of the thread's own node. */
static int mixed_ops(void *data)
{
	struct bench_thread *bt = data;
	char node[16], val[16];
	unsigned int i;

	snprintf(node, sizeof(node), "t%u", bt->id);
	for (i = 0; i < rounds; i++) {
		if (i & 1) {
			char *v = xenbus_read(XBT_NIL, BENCH_DIR, node, NULL);

			if (IS_ERR(v))
				bt->errors++;
			else
				kfree(v);
		} else {
			snprintf(val, sizeof(val), "%u", i);
			if (xenbus_write(XBT_NIL, BENCH_DIR, node, val))
				bt->errors++;
		}
	}
	complete(&bt->done);
	return 0;
}

static void ops_per_second(unsigned int nthreads)
{
	struct bench_thread *threads = kcalloc(nthreads, sizeof(*threads), GFP_KERNEL);
	unsigned int i, errors = 0;
	ktime_t t0;
	u64 ns;

	if (!threads)
		return;
	t0 = ktime_get();
	for (i = 0; i < nthreads; i++) {
		threads[i].id = i;
		init_completion(&threads[i].done);
		if (IS_ERR(kthread_run(mixed_ops, &threads[i], "xs-bench-%u", i)))
			complete(&threads[i].done);
	}
	for (i = 0; i < nthreads; i++) {
		wait_for_completion(&threads[i].done);
		errors += threads[i].errors;
	}
	ns = ktime_to_ns(ktime_sub(ktime_get(), t0));
	pr_info("BENCH kernel.ops_per_s_%u_threads %llu ops/s (%u errors)\n", nthreads,
		div64_u64((u64)rounds * nthreads * NSEC_PER_SEC, ns ?: 1), errors);
	kfree(threads);
}

static void read_round_trip(void)
{
	unsigned int i, errors = 0;
	ktime_t t0 = ktime_get();
	u64 ns;

	for (i = 0; i < rounds; i++) {
		char *v = xenbus_read(XBT_NIL, "domid", "", NULL);

		if (IS_ERR(v))
			errors++;
		else
			kfree(v);
	}
	ns = ktime_to_ns(ktime_sub(ktime_get(), t0));
	pr_info("BENCH kernel.read_round_trip_us %llu.%03llu us (%u errors)\n",
		div64_u64(ns, (u64)rounds * 1000), div64_u64(ns, rounds) % 1000, errors);
}

static int __init xenbus_bench_init(void)
{
	if (!xen_domain())
		return -ENODEV;
	read_round_trip();
	if (!round_trip_only) {
		ops_per_second(1);
		ops_per_second(8);
	}
	xenbus_rm(XBT_NIL, BENCH_DIR, "");
	return 0;
}
module_init(xenbus_bench_init);

static void __exit xenbus_bench_exit(void)
{
}
module_exit(xenbus_bench_exit);

MODULE_DESCRIPTION("xenstore benchmark through the in-kernel C API");
MODULE_LICENSE("GPL");
