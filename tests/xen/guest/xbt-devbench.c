// SPDX-License-Identifier: GPL-2.0
/*
 * xbt-devbench: throughput through /dev/xen/xenbus, printed as "BENCH name value unit" lines.
 *
 * usage: xbt-devbench [SECONDS]   (per measurement, default 5)
 *
 *   dev.local_roundtrip.1      requests the device answers itself (a READ in a transaction the
 *                              file does not own -> ENOENT): the device's own overhead
 *   dev.read.{1,16}            READ of an existing node, 1 and 16 clients (one process and one
 *                              open file each), through xenstored
 *   dev.write.1                WRITE of a node, one client
 *   dev.read_latency.1.{p50,p99}  per-request latency of the single-client READs
 *   *.switches_per_op          the guest's context switches per request in that measurement
 *   dev.watch_events           events per second delivered to a user watcher while dom0 writes
 *                              5000 nodes below the watched one as fast as xenstored goes (the
 *                              agent's pipelined flood; distinct nodes, or xenstored merges
 *                              events); also how many of them were delivered
 *
 * Run only on request (xbt.bench=1 on the guest kernel command line, see t-85-bench.sh): the
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
/* The kernel's context switches so far (the "ctxt" line of /proc/stat), 0 if unreadable. */
static unsigned long long context_switches(void)
{
	FILE *f = fopen("/proc/stat", "r");
	unsigned long long n = 0;
	char line[256];

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "ctxt %llu", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

/* Context switches per request in the last run_clients(): how many thread hand-offs a request costs. */
static double switches_per_op = -1;

static double run_clients(enum op op, int nclients)
{
	int pfd[2], i, failed = 0;
	long total = 0;
	unsigned long long c0 = context_switches();
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
	switches_per_op = total > 0 ? (double)(context_switches() - c0) / total : -1;
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

static void bench_watch_events(void)
{
	const int N = 5000;
	struct watcher w = { .fd = dev_open(0) };
	char pl[64];
	uint32_t len = payload2(pl, BASE "/w", "bench", false);
	struct xmsg m;
	pthread_t th;

	if (!dom0_cmd(AGENT_SEQ, 30, "quota nodes %d", 4 * N)) {
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
	if (!dom0_cmd(AGENT_SEQ, 300, "flood " BASE "/w %d v", N))
		w.events = -1;
	msleep(1000);
	w.stop = 1;
	pthread_join(th, NULL);
	xcall2(w.fd, XS_RM, 0, BASE "/w", NULL, false, &m);
	close(w.fd);
	dom0_cmd(AGENT_SEQ, 30, "quota nodes restore");
	bench("dev.watch_events", w.events > 1 ? (w.events - 1) / (w.last - w.first) : -1, "events/s");
	printf("BENCH dev.watch_events.delivered %ld events\n", w.events);
	printf("BENCH dev.watch_events.sent %d events\n", N);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static double lat[1000000];
	size_t nlat = 0;
	long n;
	struct xmsg m;
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
	bench("dev.local_roundtrip.1", run_clients(OP_LOCAL, 1), "ops/s");
	bench("dev.local_roundtrip.1.switches_per_op", switches_per_op, "switches");
	n = client(OP_READ, lat, sizeof(lat) / sizeof(lat[0]), &nlat);
	bench("dev.read.1", n < 0 ? -1 : n / secs, "ops/s");
	if (nlat) {
		qsort(lat, nlat, sizeof(lat[0]), cmp_double);
		bench("dev.read_latency.1.p50", lat[nlat / 2] * 1e6, "us");
		bench("dev.read_latency.1.p99", lat[nlat * 99 / 100] * 1e6, "us");
	}
	bench("dev.read.16", run_clients(OP_READ, 16), "ops/s");
	bench("dev.read.16.switches_per_op", switches_per_op, "switches");
	bench("dev.write.1", run_clients(OP_WRITE, 1), "ops/s");
	bench("dev.write.1.switches_per_op", switches_per_op, "switches");
	bench_watch_events();
	xcall2(fd, XS_RM, 0, BASE, NULL, false, &m);
	close(fd);
	return 0;
}
