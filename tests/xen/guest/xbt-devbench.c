// SPDX-License-Identifier: GPL-2.0
/*
 * xbt-devbench: throughput through /dev/xen/xenbus, printed as "BENCH name value unit" lines.
 *
 * usage: xbt-devbench [SECONDS [LOAD [WINDOW]]]   (per measurement, default 5 s; with a LOAD
 *        (local, read1, read16, write1, watch), only that measurement; WINDOW numbers the
 *        process's requests to dom0's agent, which must differ from the last window's)
 *
 *   dev.local_roundtrip.1      requests the device answers itself (a READ in a transaction the
 *                              file does not own -> ENOENT): the device's own overhead
 *   dev.read.{1,16}            READ of an existing node, 1 and 16 clients (one process and one
 *                              open file each), through xenstored
 *   dev.write.1                WRITE of a node, one client
 *   dev.read_latency.1.{p50,p99}  per-request latency of the single-client READs
 *   *.switches_per_op          the guest's context switches per request in that measurement
 *   *.guest_cpu_per_op         the guest's busy CPU time (both vCPUs) per request, microseconds
 *   *.store_irqs_per_op        store event channel interrupts in the guest per request
 *   dev.watch_events           events per second delivered to a user watcher while dom0 writes
 *                              1000 nodes per second of SECONDS below the watched one, as fast
 *                              as xenstored goes (the agent's pipelined flood; distinct nodes,
 *                              or xenstored merges events); also how many were delivered
 *
 * Run only by make bench (tests/xen/guest/ab-windows.sh) and make profile (profile.sh): the
 * numbers depend on the machine, so this is never a timed test.
 */
#include <pthread.h>
#include <sys/wait.h>
#include "xbt-dev.h"

#define BASE "data/xbt/bench"
#define AGENT_SEQ 400000u

static double secs = 5;

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

enum op { OP_LOCAL, OP_READ, OP_WRITE };

/*
 * One client: as many requests as fit in secs. Returns the count (-1 on any error); fills
 * lat[0..*nlat) with per-request latencies in seconds when lat is given.
 */
static long client(enum op op, double *lat, size_t maxlat, size_t *nlat)
{
	static const char path[] = BASE "/k";
	int fd = dev_open(0);
	char pl[64];
	uint32_t plen = payload2(pl, path, "benchmark-value", true);
	double end = now() + secs;
	long n = 0;
	struct xmsg m;

	if (fd < 0)
		return -1;
	while (now() < end) {
		double t0 = now();
		int r;

		switch (op) {
		case OP_LOCAL:
			r = xcall(fd, XS_READ, 0x40000000u | (uint32_t)n, path, sizeof(path), &m, NULL);
			r = r ? r : !is_error(&m, "ENOENT");
			break;
		case OP_READ:
			r = xcall(fd, XS_READ, 0, path, sizeof(path), &m, NULL);
			r = r ? r : !ok_reply(&m, XS_READ);
			break;
		default:
			r = xcall(fd, XS_WRITE, 0, pl, plen, &m, NULL);
			r = r ? r : !ok_reply(&m, XS_WRITE);
			break;
		}
		if (r) {
			close(fd);
			return -1;
		}
		if (lat && *nlat < maxlat)
			lat[(*nlat)++] = now() - t0;
		n++;
	}
	close(fd);
	return n;
}

/* nclients processes at once; total requests per second, or -1. */
/* Guest-wide counters around a measurement, for what a request costs the guest. */
struct counters {
	unsigned long long switches;	/* "ctxt" of /proc/stat */
	unsigned long long busy_ticks;	/* user+nice+system+irq+softirq of /proc/stat, USER_HZ */
	unsigned long long store_irqs;	/* the "xenbus" line of /proc/interrupts, all CPUs */
};

static struct counters counters_now(void)
{
	struct counters c = { 0, 0, 0 };
	unsigned long long v[7];
	char line[512];
	FILE *f = fopen("/proc/stat", "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "cpu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
			   &v[4], &v[5], &v[6]) == 7)
			c.busy_ticks = v[0] + v[1] + v[2] + v[5] + v[6];
		sscanf(line, "ctxt %llu", &c.switches);
	}
	if (f)
		fclose(f);
	f = fopen("/proc/interrupts", "r");
	while (f && fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ':');
		unsigned long long n;
		int used;

		if (!p || !strstr(line, " xenbus"))
			continue;
		for (p++; sscanf(p, "%llu%n", &n, &used) == 1; p += used)
			c.store_irqs += n;
	}
	if (f)
		fclose(f);
	return c;
}

/* Per request in the last run_clients(): context switches (thread hand-offs), guest CPU time
 * in microseconds (both vCPUs, user and kernel), store event channel interrupts. */
static double switches_per_op = -1, cpu_us_per_op = -1, irqs_per_op = -1;

static double run_clients(enum op op, int nclients)
{
	int pfd[2], i, failed = 0;
	long total = 0;
	struct counters c0 = counters_now(), c1;
	double t0;

	if (pipe(pfd))
		return -1;
	t0 = now();
	for (i = 0; i < nclients; i++) {
		if (fork() == 0) {
			long n = client(op, NULL, 0, NULL);

			_exit(write(pfd[1], &n, sizeof(n)) == sizeof(n) ? 0 : 1);
		}
	}
	close(pfd[1]);
	for (i = 0; i < nclients; i++) {
		long n;

		if (read(pfd[0], &n, sizeof(n)) != sizeof(n) || n < 0)
			failed++;
		else
			total += n;
	}
	close(pfd[0]);
	while (wait(NULL) > 0)
		;
	c1 = counters_now();
	switches_per_op = total > 0 ? (double)(c1.switches - c0.switches) / total : -1;
	cpu_us_per_op = total > 0 ? (c1.busy_ticks - c0.busy_ticks) * 1e6 / sysconf(_SC_CLK_TCK) / total : -1;
	irqs_per_op = total > 0 ? (double)(c1.store_irqs - c0.store_irqs) / total : -1;
	return failed ? -1 : total / (now() - t0);
}

static void bench(const char *name, double v, const char *unit)
{
	if (v < 0)
		printf("BENCH-ERROR %s\n", name);
	else
		printf("BENCH %s %.*f %s\n", name, v < 100 ? 2 : 1, v, unit);
	fflush(stdout);
}

struct watcher {
	int fd;
	volatile int stop;
	long events;
	double first, last;
};

static void *watcher_main(void *arg)
{
	struct watcher *w = arg;
	struct xmsg m;

	while (!w->stop) {
		if (!readable(w->fd, 100) || recv_msg(w->fd, &m, 1000))
			continue;
		if (m.h.type != XS_WATCH_EVENT || strncmp(m.body, BASE "/w/", sizeof(BASE "/w/") - 1))
			continue;
		w->last = now();
		if (!w->events++)
			w->first = w->last;
	}
	return NULL;
}

static void bench_watch_events(int n_events, unsigned int seq_base)
{
	struct watcher w = { .fd = dev_open(0) };
	char pl[64];
	uint32_t len = payload2(pl, BASE "/w", "bench", false);
	struct xmsg m;
	pthread_t th;

	if (!dom0_cmd(seq_base, 30, "quota nodes %d", 4 * n_events)) {
		bench("dev.watch_events", -1, "");
		return;
	}
	if (w.fd < 0 || xcall2(w.fd, XS_WRITE, 0, BASE "/w", "", true, &m) ||
	    xcall(w.fd, XS_WATCH, 0, pl, len, &m, NULL) || !ok_reply(&m, XS_WATCH)) {
		bench("dev.watch_events", -1, "");
		return;
	}
	while (readable(w.fd, 500)) /* the registration event */
		recv_msg(w.fd, &m, 500);
	if (pthread_create(&th, NULL, watcher_main, &w)) {
		bench("dev.watch_events", -1, "");
		return;
	}
	if (!dom0_cmd(seq_base, 300, "flood " BASE "/w %d v", n_events))
		w.events = -1;
	msleep(1000);
	w.stop = 1;
	pthread_join(th, NULL);
	xcall2(w.fd, XS_RM, 0, BASE "/w", NULL, false, &m);
	close(w.fd);
	dom0_cmd(seq_base, 30, "quota nodes restore");
	bench("dev.watch_events", w.events > 1 ? (w.events - 1) / (w.last - w.first) : -1, "events/s");
	printf("BENCH dev.watch_events.delivered %ld events\n", w.events);
	printf("BENCH dev.watch_events.sent %d events\n", n_events);
	fflush(stdout);
}

static void bench_counters(const char *load)
{
	char name[64];

	snprintf(name, sizeof(name), "%s.switches_per_op", load);
	bench(name, switches_per_op, "switches");
	snprintf(name, sizeof(name), "%s.guest_cpu_per_op", load);
	bench(name, cpu_us_per_op, "us");
	snprintf(name, sizeof(name), "%s.store_irqs_per_op", load);
	bench(name, irqs_per_op, "irqs");
}

static void bench_read_1(void)
{
	static double lat[1000000];
	size_t nlat = 0;
	long n = client(OP_READ, lat, sizeof(lat) / sizeof(lat[0]), &nlat);

	bench("dev.read.1", n < 0 ? -1 : n / secs, "ops/s");
	if (nlat) {
		qsort(lat, nlat, sizeof(lat[0]), cmp_double);
		bench("dev.read_latency.1.p50", lat[nlat / 2] * 1e6, "us");
		bench("dev.read_latency.1.p99", lat[nlat * 99 / 100] * 1e6, "us");
	}
}

/* One load of a make bench window (or of make profile); false for an unknown name. */
static bool run_load(const char *load, unsigned int seq_base)
{
	if (!strcmp(load, "local")) {
		bench("dev.local_roundtrip.1", run_clients(OP_LOCAL, 1), "ops/s");
		bench_counters("dev.local_roundtrip.1");
	} else if (!strcmp(load, "read1")) {
		bench_read_1();
	} else if (!strcmp(load, "read16")) {
		bench("dev.read.16", run_clients(OP_READ, 16), "ops/s");
		bench_counters("dev.read.16");
	} else if (!strcmp(load, "write1")) {
		bench("dev.write.1", run_clients(OP_WRITE, 1), "ops/s");
		bench_counters("dev.write.1");
	} else if (!strcmp(load, "watch")) {
		/* 5000 at the default 5 s, as before windows existed. */
		bench_watch_events((int)(secs * 1000), seq_base);
	} else {
		return false;
	}
	return true;
}

int main(int argc, char **argv)
{
	static const char *const all[] = { "local", "read1", "read16", "write1", "watch" };
	/* The agent ignores a request whose sequence number repeats its last one: every window
	 * (a new process) gets its own range. */
	unsigned int seq_base = AGENT_SEQ + 100 * (argc > 3 ? (unsigned int)atoi(argv[3]) : 0);
	struct xmsg m;
	size_t i;
	int fd;

	if (argc > 1)
		secs = atof(argv[1]);
	if (secs <= 0)
		secs = 5;
	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = dev_open(0);
	if (fd < 0 || xcall2(fd, XS_WRITE, 0, BASE "/k", "benchmark-value", true, &m)) {
		printf("BENCH-ERROR setup\n");
		return 1;
	}
	if (argc > 2) {
		if (!run_load(argv[2], seq_base)) {
			printf("BENCH-ERROR unknown load %s\n", argv[2]);
			return 1;
		}
	} else {
		for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
			run_load(all[i], seq_base + 10 * i);
	}
	xcall2(fd, XS_RM, 0, BASE, NULL, false, &m);
	close(fd);
	return 0;
}
