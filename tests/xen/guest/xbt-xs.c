// SPDX-License-Identifier: GPL-2.0
/*
 * xbt-xs: libxenstore (through /dev/xen/xenbus) against the real xenstored, printing
 * "PASS name" / "FAIL name: why" / "SKIP name: why" lines for the guest's TAP helper.
 *
 * Covers the seed scenario: open, read domid, xs_get_domain_path, transactions, xs_watch on
 * memory/target, select() on xs_fileno(), xs_read_watch, with dom0 writing memory/target.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>
#include <xenstore.h>

#include "xbt-dev.h"

static struct xs_handle *xs;
/* Stay clear of the shell helper's sequence numbers: it counts from 1. */
#define DOM0_SEQ_BASE 100000
static const char *base = "data/xbt/xs";

static char *rd(xs_transaction_t t, const char *path)
{
	unsigned int len;

	return xs_read(xs, t, path, &len);
}

static bool wr(xs_transaction_t t, const char *path, const char *val)
{
	return xs_write(xs, t, path, val, strlen(val));
}

static void test_identity(void)
{
	char *domid = rd(XBT_NULL, "domid"), *want = rd(XBT_NULL, "data/xbt/expect/domid");
	char *path, expect[64];

	if (domid && want && !strcmp(domid, want))
		say_pass("xs.read_domid");
	else
		say_fail("xs.read_domid", "domid '%s' expected '%s' (errno %d)", domid, want, errno);
	path = domid ? xs_get_domain_path(xs, atoi(domid)) : NULL;
	snprintf(expect, sizeof(expect), "/local/domain/%s", want ? want : "?");
	if (path && !strcmp(path, expect))
		say_pass("xs.get_domain_path");
	else
		say_fail("xs.get_domain_path", "got '%s' want '%s'", path, expect);
	free(path);
	free(domid);
	free(want);
}

static void test_nodes(void)
{
	char p[128], *v, **dir;
	unsigned int n, i, seen = 0;
	char big[2000];

	snprintf(p, sizeof(p), "%s/dir", base);
	if (xs_mkdir(xs, XBT_NULL, p) && (v = rd(XBT_NULL, p)) && v[0] == 0) {
		say_pass("xs.mkdir");
		free(v);
	} else {
		say_fail("xs.mkdir", "errno %d", errno);
	}
	for (i = 0; i < 5; i++) {
		snprintf(p, sizeof(p), "%s/dir/c%u", base, i);
		wr(XBT_NULL, p, "x");
	}
	snprintf(p, sizeof(p), "%s/dir", base);
	dir = xs_directory(xs, XBT_NULL, p, &n);
	for (i = 0; dir && i < n; i++)
		if (strlen(dir[i]) == 2 && dir[i][0] == 'c' && dir[i][1] >= '0' && dir[i][1] <= '4')
			seen |= 1u << (dir[i][1] - '0');
	if (dir && n == 5 && seen == 0x1f)
		say_pass("xs.directory");
	else
		say_fail("xs.directory", "n=%u seen=%#x errno %d", dir ? n : 0, seen, errno);
	free(dir);

	memset(big, 'B', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	snprintf(p, sizeof(p), "%s/big", base);
	v = wr(XBT_NULL, p, big) ? rd(XBT_NULL, p) : NULL;
	if (v && !strcmp(v, big))
		say_pass("xs.write_read_1999_bytes");
	else
		say_fail("xs.write_read_1999_bytes", "errno %d", errno);
	free(v);

	snprintf(p, sizeof(p), "%s/dir", base);
	if (xs_rm(xs, XBT_NULL, p) && !rd(XBT_NULL, p) && errno == ENOENT)
		say_pass("xs.rm_subtree");
	else
		say_fail("xs.rm_subtree", "errno %d", errno);
	v = rd(XBT_NULL, "/local/domain/0/name");
	if (!v && errno == EACCES)
		say_pass("xs.read_dom0_node_eacces");
	else
		say_fail("xs.read_dom0_node_eacces", "value '%s' errno %d", v, errno);
	free(v);
	if (!wr(XBT_NULL, "memory/target", "1") && errno == EACCES)
		say_pass("xs.write_readonly_node_eacces");
	else
		say_fail("xs.write_readonly_node_eacces", "errno %d", errno);
}

static void test_transactions(void)
{
	char p[128], q[128], *v;
	xs_transaction_t t;
	bool ok;

	snprintf(p, sizeof(p), "%s/tx", base);
	snprintf(q, sizeof(q), "%s/tx2", base);
	wr(XBT_NULL, p, "before");
	t = xs_transaction_start(xs);
	ok = t != XBT_NULL && wr(t, p, "committed") && wr(t, q, "also");
	v = rd(XBT_NULL, p);
	ok = ok && v && !strcmp(v, "before"); /* invisible outside until commit */
	free(v);
	ok = ok && xs_transaction_end(xs, t, false);
	v = rd(XBT_NULL, p);
	if (ok && v && !strcmp(v, "committed"))
		say_pass("xs.transaction_commit");
	else
		say_fail("xs.transaction_commit", "value '%s' errno %d", v, errno);
	free(v);

	t = xs_transaction_start(xs);
	ok = t != XBT_NULL && wr(t, p, "aborted") && xs_transaction_end(xs, t, true);
	v = rd(XBT_NULL, p);
	if (ok && v && !strcmp(v, "committed"))
		say_pass("xs.transaction_abort");
	else
		say_fail("xs.transaction_abort", "value '%s' errno %d", v, errno);
	free(v);

	/* dom0 writes the node inside our transaction window: commit must fail with EAGAIN. */
	t = xs_transaction_start(xs);
	v = t != XBT_NULL ? rd(t, p) : NULL;
	ok = v != NULL;
	free(v);
	ok = ok && dom0_cmd(DOM0_SEQ_BASE, 20, "write %s from-dom0", p) && wr(t, p, "mine");
	errno = 0;
	if (ok && !xs_transaction_end(xs, t, false) && errno == EAGAIN) {
		v = rd(XBT_NULL, p);
		if (v && !strcmp(v, "from-dom0"))
			say_pass("xs.transaction_conflict_eagain");
		else
			say_fail("xs.transaction_conflict_eagain", "after EAGAIN the node is '%s'", v);
		free(v);
	} else {
		say_fail("xs.transaction_conflict_eagain", "setup ok=%d, end errno %d", ok, errno);
	}
}

/* Wait (select on xs_fileno) for an event on path with token; returns seconds taken or -1. */
static double wait_watch(const char *path, const char *token, double timeout)
{
	double t0 = now(), end = t0 + timeout;
	int fd = xs_fileno(xs);

	while (now() < end) {
		struct timeval tv = { .tv_sec = 0, .tv_usec = 100000 };
		fd_set rfds;

		FD_ZERO(&rfds);
		FD_SET(fd, &rfds);
		if (select(fd + 1, &rfds, NULL, NULL, &tv) > 0 && FD_ISSET(fd, &rfds)) {
			unsigned int num;
			char **ev = xs_read_watch(xs, &num);
			bool match = ev && num >= 2 && !strcmp(ev[XS_WATCH_PATH], path) &&
				     !strcmp(ev[XS_WATCH_TOKEN], token);

			free(ev);
			if (match)
				return now() - t0;
		}
	}
	return -1;
}

static void test_seed_memory_target_watch(void)
{
	char *target = rd(XBT_NULL, "memory/target"), newval[32];
	double dt;

	if (!target) {
		say_fail("xs.seed.read_memory_target", "errno %d", errno);
		return;
	}
	say_pass("xs.seed.read_memory_target");
	if (!xs_watch(xs, "memory/target", "seed-token")) {
		say_fail("xs.seed.watch", "errno %d", errno);
		free(target);
		return;
	}
	dt = wait_watch("memory/target", "seed-token", 5);
	if (dt >= 0)
		say_pass("xs.seed.watch_fires_on_register");
	else
		say_fail("xs.seed.watch_fires_on_register", "no event within 5 s");
	snprintf(newval, sizeof(newval), "%ld", atol(target) - 1024);
	if (!dom0_cmd(DOM0_SEQ_BASE, 20, "write memory/target %s", newval)) {
		say_fail("xs.seed.dom0_write", "agent failed");
	} else {
		dt = wait_watch("memory/target", "seed-token", 2);
		if (dt >= 0)
			say_pass("xs.seed.event_within_2s_of_dom0_write");
		else
			say_fail("xs.seed.event_within_2s_of_dom0_write", "no event with path and token within 2 s");
		dom0_cmd(DOM0_SEQ_BASE, 20, "write memory/target %s", target);
	}
	if (xs_unwatch(xs, "memory/target", "seed-token"))
		say_pass("xs.seed.unwatch");
	else
		say_fail("xs.seed.unwatch", "errno %d", errno);
	free(target);
}

int main(void)
{
	xs = xs_open(0);
	if (!xs) {
		say_fail("xs.open", "xs_open: %s", strerror(errno));
		return 1;
	}
	say_pass("xs.open");
	test_identity();
	test_nodes();
	test_transactions();
	test_seed_memory_target_watch();
	xs_rm(xs, XBT_NULL, base);
	xs_close(xs);
	return 0;
}
