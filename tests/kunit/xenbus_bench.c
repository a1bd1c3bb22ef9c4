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
#include <linux/sort.h>
#include <xen/xen.h>
#include <xen/interface/xen.h>
#include <xen/interface/vcpu.h>
#include <xen/xen-ops.h>
#include <xen/xenbus.h>
#include <asm/xen/hypercall.h>

static unsigned int rounds = 2000;
module_param(rounds, uint, 0444);
MODULE_PARM_DESC(rounds, "operations per measurement and thread");
static bool round_trip_only;
module_param(round_trip_only, bool, 0444);
MODULE_PARM_DESC(round_trip_only, "measure only the read round trip (for make profile's counters)");

#define BENCH_DIR "data/xbt/bench"

/*
 * The time the guest's vCPUs ran, as Xen counts it (RUNSTATE_running, ns): a PV guest's idle
 * loop blocks in Xen at once, so this is its busy time, without the tick sampling of
 * /proc/stat (which for these loads moved by a factor of ten between windows). Most of a
 * round trip is spent in dom0's xenstored, the same for both cores; this is the share the
 * guest's core pays.
 */
static u64 guest_busy_ns(void)
{
	struct vcpu_runstate_info info;
	u64 busy = 0;
	int cpu;

	for_each_online_cpu(cpu)
		if (!HYPERVISOR_vcpu_op(VCPUOP_get_runstate_info, xen_vcpu_nr(cpu), &info))
			busy += info.time[RUNSTATE_running];
	return busy;
}

static void print_cpu_per_op(const char *name, u64 busy_ns, u64 ops)
{
	u64 ns = div64_u64(busy_ns, ops ?: 1);

	pr_info("BENCH %s.guest_cpu_per_op %llu.%03llu us\n", name, div64_u64(ns, 1000), ns % 1000);
}

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
	char name[32];
	ktime_t t0;
	u64 ns, busy;

	if (!threads)
		return;
	busy = guest_busy_ns();
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
	busy = guest_busy_ns() - busy;
	pr_info("BENCH kernel.ops_per_s_%u_threads %llu ops/s (%u errors)\n", nthreads,
		div64_u64((u64)rounds * nthreads * NSEC_PER_SEC, ns ?: 1), errors);
	snprintf(name, sizeof(name), "kernel.ops_%u_threads", nthreads);
	print_cpu_per_op(name, busy, (u64)rounds * nthreads);
	kfree(threads);
}

static int cmp_u32(const void *a, const void *b)
{
	u32 x = *(const u32 *)a, y = *(const u32 *)b;

	return x < y ? -1 : x > y;
}

static void print_us(const char *name, u64 ns)
{
	u32 frac = do_div(ns, 1000);

	pr_info("BENCH %s %llu.%03u us\n", name, ns, frac);
}

/*
 * The mean is what a caller sees over many reads. The percentiles and the count of round
 * trips over 1 ms tell a difference in every round trip from one in a few slow ones: until
 * dom0 ran xenstored SCHED_FIFO in bench mode, 2-5 % of round trips took 1-4.5 ms on both
 * cores, the guest idle while xenstored waited for dom0's CPU, and how many a window had
 * decided its mean (make profile: 221 against 517 ms of them in 4000 round trips, C and Rust).
 */
static void read_round_trip(void)
{
	u32 *lat = kvmalloc_array(rounds, sizeof(*lat), GFP_KERNEL);
	unsigned int i, errors = 0, slow = 0;
	u64 ns, busy = guest_busy_ns();
	ktime_t t0 = ktime_get(), t = t0;

	for (i = 0; i < rounds; i++) {
		char *v = xenbus_read(XBT_NIL, "domid", "", NULL);
		ktime_t now;

		if (IS_ERR(v))
			errors++;
		else
			kfree(v);
		if (lat) {
			now = ktime_get();
			lat[i] = min_t(u64, ktime_to_ns(ktime_sub(now, t)), U32_MAX);
			t = now;
		}
	}
	ns = ktime_to_ns(ktime_sub(ktime_get(), t0));
	busy = guest_busy_ns() - busy;
	pr_info("BENCH kernel.read_round_trip_us %llu.%03llu us (%u errors)\n",
		div64_u64(ns, (u64)rounds * 1000), div64_u64(ns, rounds) % 1000, errors);
	print_cpu_per_op("kernel.read_round_trip", busy, rounds);
	if (lat && rounds) {
		sort(lat, rounds, sizeof(*lat), cmp_u32, NULL);
		print_us("kernel.read_round_trip_p50_us", lat[rounds / 2]);
		print_us("kernel.read_round_trip_p90_us", lat[(u64)rounds * 9 / 10]);
		print_us("kernel.read_round_trip_p99_us", lat[(u64)rounds * 99 / 100]);
		while (slow < rounds && lat[rounds - 1 - slow] > NSEC_PER_MSEC)
			slow++;
		pr_info("BENCH kernel.read_round_trips_over_1ms %u ops\n", slow);
	}
	kvfree(lat);
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
