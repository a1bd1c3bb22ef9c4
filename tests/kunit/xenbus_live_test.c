// SPDX-License-Identifier: GPL-2.0
/*
 * Live tests of the in-kernel xenstore API (the C ABI that both the C and the Rust xenbus core
 * provide) against the real xenstored of the Xen host this guest runs on.
 *
 * Actions that need dom0's rights (writing a node inside our transaction window, writing
 * memory/target, ...) are requested from the harness's dom0 agent through data/xbt/req.
 * Without that agent (not running under the xenbus-rs harness) every case is skipped.
 */
#include <kunit/test.h>
#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/jiffies.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <xen/xen.h>
#include <xen/xenbus.h>

#define BASE "data/xbt/kernel"

static unsigned int dom0_seq;

static void require_harness(struct kunit *test)
{
	if (!xen_domain())
		kunit_skip(test, "not a Xen guest");
	if (!xenbus_exists(XBT_NIL, "data/xbt/expect", "domid"))
		kunit_skip(test, "no dom0 agent (not running under the xenbus-rs harness)");
}

/* Ask the dom0 agent to run "CMD ARGS" and wait for its successful acknowledgement. */
static __printf(2, 3) int dom0_do(struct kunit *test, const char *fmt, ...)
{
	unsigned long end = jiffies + 20 * HZ;
	char *cmd, *want;
	va_list ap;
	int err;

	va_start(ap, fmt);
	cmd = kvasprintf(GFP_KERNEL, fmt, ap);
	va_end(ap);
	KUNIT_ASSERT_NOT_NULL(test, cmd);
	dom0_seq++;
	err = xenbus_printf(XBT_NIL, "data/xbt", "req", "%u %s", 200000 + dom0_seq, cmd);
	kfree(cmd);
	if (err)
		return err;
	want = kasprintf(GFP_KERNEL, "%u 0", 200000 + dom0_seq);
	KUNIT_ASSERT_NOT_NULL(test, want);
	err = -ETIMEDOUT;
	while (time_before(jiffies, end)) {
		char *ack = xenbus_read(XBT_NIL, "data/xbt", "ack", NULL);

		if (!IS_ERR(ack)) {
			bool done = !strcmp(ack, want);

			kfree(ack);
			if (done) {
				err = 0;
				break;
			}
		}
		msleep(20);
	}
	kfree(want);
	return err;
}

static void xs_live_identity(struct kunit *test)
{
	unsigned int want;
	char *domid;

	require_harness(test);
	want = xenbus_read_unsigned("data/xbt/expect", "domid", 0);
	KUNIT_ASSERT_GT(test, want, 0U);
	KUNIT_EXPECT_EQ(test, xenbus_read_unsigned("domid", "", 0), want);
	domid = xenbus_read(XBT_NIL, "domid", "", NULL);
	KUNIT_ASSERT_FALSE_MSG(test, IS_ERR(domid), "read domid: %ld", PTR_ERR(domid));
	kfree(domid);
	KUNIT_EXPECT_TRUE(test, xenbus_exists(XBT_NIL, "name", ""));
}

static void xs_live_write_read(struct kunit *test)
{
	static const char value[] = "value with spaces / and = signs";
	unsigned int len = 0;
	char *got;

	require_harness(test);
	KUNIT_ASSERT_EQ(test, xenbus_write(XBT_NIL, BASE, "a", value), 0);
	got = xenbus_read(XBT_NIL, BASE, "a", &len);
	KUNIT_ASSERT_FALSE(test, IS_ERR(got));
	KUNIT_EXPECT_STREQ(test, got, value);
	KUNIT_EXPECT_EQ(test, len, (unsigned int)strlen(value));
	kfree(got);
	/* An empty value is a node that exists with zero length. */
	KUNIT_ASSERT_EQ(test, xenbus_write(XBT_NIL, BASE, "empty", ""), 0);
	got = xenbus_read(XBT_NIL, BASE, "empty", &len);
	KUNIT_ASSERT_FALSE(test, IS_ERR(got));
	KUNIT_EXPECT_EQ(test, len, 0U);
	kfree(got);
}

static void xs_live_large_value(struct kunit *test)
{
	unsigned int len = 0;
	char *big, *got;

	require_harness(test);
	/* xenstored's default node-size quota is 2048 bytes: stay just below it. */
	big = kunit_kzalloc(test, 2001, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, big);
	memset(big, 'L', 2000);
	KUNIT_ASSERT_EQ(test, xenbus_write(XBT_NIL, BASE, "big", big), 0);
	got = xenbus_read(XBT_NIL, BASE, "big", &len);
	KUNIT_ASSERT_FALSE(test, IS_ERR(got));
	KUNIT_EXPECT_EQ(test, len, 2000U);
	KUNIT_EXPECT_STREQ(test, got, big);
	kfree(got);
}

static void xs_live_missing(struct kunit *test)
{
	char *got;

	require_harness(test);
	got = xenbus_read(XBT_NIL, BASE, "does-not-exist", NULL);
	KUNIT_EXPECT_EQ(test, PTR_ERR_OR_ZERO(got), -ENOENT);
	if (!IS_ERR(got))
		kfree(got);
	KUNIT_EXPECT_FALSE(test, xenbus_exists(XBT_NIL, BASE, "does-not-exist"));
	KUNIT_EXPECT_EQ(test, xenbus_read_unsigned(BASE, "does-not-exist", 4242), 4242U);
}

static void xs_live_directory_rm(struct kunit *test)
{
	unsigned int n = 0, i, seen = 0;
	char **dir;

	require_harness(test);
	for (i = 0; i < 6; i++) {
		char node[8];

		snprintf(node, sizeof(node), "c%u", i);
		KUNIT_ASSERT_EQ(test, xenbus_printf(XBT_NIL, BASE "/dir", node, "%u", i), 0);
	}
	dir = xenbus_directory(XBT_NIL, BASE, "dir", &n);
	KUNIT_ASSERT_FALSE(test, IS_ERR(dir));
	for (i = 0; i < n; i++)
		if (strlen(dir[i]) == 2 && dir[i][0] == 'c' && dir[i][1] >= '0' && dir[i][1] <= '5')
			seen |= 1U << (dir[i][1] - '0');
	kfree(dir);
	KUNIT_EXPECT_EQ(test, n, 6U);
	KUNIT_EXPECT_EQ(test, seen, 0x3fU);

	KUNIT_EXPECT_EQ(test, xenbus_rm(XBT_NIL, BASE, "dir"), 0);
	KUNIT_EXPECT_FALSE(test, xenbus_exists(XBT_NIL, BASE, "dir"));
	KUNIT_EXPECT_FALSE(test, xenbus_exists(XBT_NIL, BASE "/dir", "c0"));
	/* Removing a missing node under an existing parent is not an error; a missing parent is. */
	KUNIT_EXPECT_EQ(test, xenbus_rm(XBT_NIL, BASE, "never-was"), 0);
	KUNIT_EXPECT_EQ(test, xenbus_rm(XBT_NIL, BASE "/no-parent", "child"), -ENOENT);
	dir = xenbus_directory(XBT_NIL, BASE, "dir", &n);
	KUNIT_EXPECT_EQ(test, PTR_ERR_OR_ZERO(dir), -ENOENT);
	if (!IS_ERR(dir))
		kfree(dir);
}

static void xs_live_permissions(struct kunit *test)
{
	char *got;

	require_harness(test);
	got = xenbus_read(XBT_NIL, "/local/domain/0", "name", NULL);
	KUNIT_EXPECT_EQ(test, PTR_ERR_OR_ZERO(got), -EACCES);
	if (!IS_ERR(got))
		kfree(got);
	KUNIT_EXPECT_EQ(test, xenbus_write(XBT_NIL, "/local/domain/0/data", "intruder", "x"), -EACCES);
	/* Our own memory/target is dom0's to write, ours only to read. */
	KUNIT_EXPECT_EQ(test, xenbus_write(XBT_NIL, "memory", "target", "1"), -EACCES);
	KUNIT_EXPECT_GT(test, xenbus_read_unsigned("memory", "target", 0), 0U);
}

static void xs_live_printf_scanf_gather(struct kunit *test)
{
	unsigned int a = 0, b = 0;
	char *s = NULL;
	int n;

	require_harness(test);
	KUNIT_ASSERT_EQ(test, xenbus_printf(XBT_NIL, BASE, "num", "%d", -1234), 0);
	KUNIT_ASSERT_EQ(test, xenbus_printf(XBT_NIL, BASE, "pair", "%u:%u", 7, 9), 0);
	KUNIT_ASSERT_EQ(test, xenbus_scanf(XBT_NIL, BASE, "num", "%d", &n), 1);
	KUNIT_EXPECT_EQ(test, n, -1234);
	KUNIT_EXPECT_EQ(test, xenbus_scanf(XBT_NIL, BASE, "pair", "%u:%u", &a, &b), 2);
	KUNIT_EXPECT_EQ(test, a, 7U);
	KUNIT_EXPECT_EQ(test, b, 9U);
	KUNIT_EXPECT_EQ(test, xenbus_scanf(XBT_NIL, BASE, "pair", "x%u", &a), -ERANGE);
	KUNIT_EXPECT_EQ(test, xenbus_scanf(XBT_NIL, BASE, "nope", "%u", &a), -ENOENT);
	a = 0;
	KUNIT_EXPECT_EQ(test, xenbus_gather(XBT_NIL, BASE, "num", "%d", &n, "pair", NULL, &s, NULL), 0);
	KUNIT_EXPECT_EQ(test, n, -1234);
	KUNIT_EXPECT_STREQ(test, s ?: "(null)", "7:9");
	kfree(s);
	KUNIT_EXPECT_EQ(test, xenbus_gather(XBT_NIL, BASE, "num", "%d", &n, "nope", "%u", &a, NULL), -ENOENT);
}

static void xs_live_transaction_commit_abort(struct kunit *test)
{
	struct xenbus_transaction t;
	char *got;

	require_harness(test);
	KUNIT_ASSERT_EQ(test, xenbus_write(XBT_NIL, BASE, "tx", "before"), 0);
	KUNIT_ASSERT_EQ(test, xenbus_transaction_start(&t), 0);
	KUNIT_EXPECT_NE(test, t.id, 0U);
	KUNIT_EXPECT_EQ(test, xenbus_write(t, BASE, "tx", "inside"), 0);
	KUNIT_EXPECT_EQ(test, xenbus_write(t, BASE, "tx-new", "created"), 0);
	got = xenbus_read(XBT_NIL, BASE, "tx", NULL);	/* not visible outside yet */
	KUNIT_EXPECT_STREQ(test, IS_ERR(got) ? "(err)" : got, "before");
	if (!IS_ERR(got))
		kfree(got);
	KUNIT_EXPECT_EQ(test, xenbus_transaction_end(t, false), 0);
	got = xenbus_read(XBT_NIL, BASE, "tx", NULL);
	KUNIT_EXPECT_STREQ(test, IS_ERR(got) ? "(err)" : got, "inside");
	if (!IS_ERR(got))
		kfree(got);
	KUNIT_EXPECT_TRUE(test, xenbus_exists(XBT_NIL, BASE, "tx-new"));

	KUNIT_ASSERT_EQ(test, xenbus_transaction_start(&t), 0);
	KUNIT_EXPECT_EQ(test, xenbus_write(t, BASE, "tx", "aborted"), 0);
	KUNIT_EXPECT_EQ(test, xenbus_rm(t, BASE, "tx-new"), 0);
	KUNIT_EXPECT_EQ(test, xenbus_transaction_end(t, true), 0);
	got = xenbus_read(XBT_NIL, BASE, "tx", NULL);
	KUNIT_EXPECT_STREQ(test, IS_ERR(got) ? "(err)" : got, "inside");
	if (!IS_ERR(got))
		kfree(got);
	KUNIT_EXPECT_TRUE(test, xenbus_exists(XBT_NIL, BASE, "tx-new"));
}

static void xs_live_transaction_conflict(struct kunit *test)
{
	struct xenbus_transaction t;
	char *got;

	require_harness(test);
	KUNIT_ASSERT_EQ(test, xenbus_write(XBT_NIL, BASE, "conflict", "v0"), 0);
	KUNIT_ASSERT_EQ(test, xenbus_transaction_start(&t), 0);
	got = xenbus_read(t, BASE, "conflict", NULL);
	KUNIT_ASSERT_FALSE(test, IS_ERR(got));
	kfree(got);
	KUNIT_ASSERT_EQ(test, dom0_do(test, "write %s/conflict from-dom0", BASE), 0);
	KUNIT_EXPECT_EQ(test, xenbus_write(t, BASE, "conflict", "mine"), 0);
	KUNIT_EXPECT_EQ(test, xenbus_transaction_end(t, false), -EAGAIN);
	got = xenbus_read(XBT_NIL, BASE, "conflict", NULL);
	KUNIT_EXPECT_STREQ(test, IS_ERR(got) ? "(err)" : got, "from-dom0");
	if (!IS_ERR(got))
		kfree(got);
}

/* A watch that records its events; callbacks run in the core's watch context. */
struct recorded_watch {
	struct xenbus_watch watch;
	spinlock_t lock;
	unsigned int events;
	char path[128];
	char token[64];
	struct completion fired;
	bool read_in_callback;	/* the callback itself calls into xenstore */
	int callback_read_err;
	bool registered;
};

static void recorded_watch_cb(struct xenbus_watch *watch, const char *path, const char *token)
{
	struct recorded_watch *w = container_of(watch, struct recorded_watch, watch);
	int err = 0;

	if (w->read_in_callback) {
		char *v = xenbus_read(XBT_NIL, "domid", "", NULL);

		err = PTR_ERR_OR_ZERO(v);
		if (!IS_ERR(v))
			kfree(v);
	}
	spin_lock(&w->lock);
	w->events++;
	strscpy(w->path, path, sizeof(w->path));
	strscpy(w->token, token ?: "", sizeof(w->token));
	w->callback_read_err = err;
	spin_unlock(&w->lock);
	complete(&w->fired);
}

static void recorded_watch_unregister(struct recorded_watch *w)
{
	if (w->registered) {
		w->registered = false;
		unregister_xenbus_watch(&w->watch);
	}
}

/* Runs when the test ends however it ends: a freed watch must never stay registered. */
static void recorded_watch_cleanup(void *data)
{
	recorded_watch_unregister(data);
}

static int recorded_watch_register(struct kunit *test, struct recorded_watch *w, const char *node)
{
	int err;

	memset(w, 0, sizeof(*w));
	spin_lock_init(&w->lock);
	init_completion(&w->fired);
	w->watch.node = node;
	w->watch.callback = recorded_watch_cb;
	err = register_xenbus_watch(&w->watch);
	if (err)
		return err;
	w->registered = true;
	return kunit_add_action_or_reset(test, recorded_watch_cleanup, w);
}

/* Wait until an event for exactly `path` arrived. */
static bool recorded_watch_wait(struct recorded_watch *w, const char *path, unsigned int ms)
{
	unsigned long end = jiffies + msecs_to_jiffies(ms);

	for (;;) {
		bool match;
		long left = (long)(end - jiffies);

		if (left <= 0 || !wait_for_completion_timeout(&w->fired, left))
			return false;
		spin_lock(&w->lock);
		match = !strcmp(w->path, path);
		spin_unlock(&w->lock);
		if (match)
			return true;
	}
}

static void xs_live_watch_register_and_dom0_write(struct kunit *test)
{
	struct recorded_watch *w = kunit_kzalloc(test, sizeof(*w), GFP_KERNEL);

	require_harness(test);
	KUNIT_ASSERT_NOT_NULL(test, w);
	KUNIT_ASSERT_EQ(test, xenbus_write(XBT_NIL, BASE, "w", "0"), 0);
	KUNIT_ASSERT_EQ(test, recorded_watch_register(test, w, BASE "/w"), 0);
	KUNIT_EXPECT_TRUE_MSG(test, recorded_watch_wait(w, BASE "/w", 5000),
			      "no event on registration");
	KUNIT_EXPECT_GT(test, strlen(w->token), 0U);
	KUNIT_ASSERT_EQ(test, dom0_do(test, "write %s/w/child dom0", BASE), 0);
	KUNIT_EXPECT_TRUE_MSG(test, recorded_watch_wait(w, BASE "/w/child", 5000),
			      "no event for dom0's write of a child node");
	recorded_watch_unregister(w);
}

static void xs_live_watch_memory_target(struct kunit *test)
{
	struct recorded_watch *w = kunit_kzalloc(test, sizeof(*w), GFP_KERNEL);
	unsigned int target;

	require_harness(test);
	KUNIT_ASSERT_NOT_NULL(test, w);
	target = xenbus_read_unsigned("memory", "target", 0);
	KUNIT_ASSERT_GT(test, target, 0U);
	KUNIT_ASSERT_EQ(test, recorded_watch_register(test, w, "memory/target"), 0);
	KUNIT_EXPECT_TRUE(test, recorded_watch_wait(w, "memory/target", 5000));
	reinit_completion(&w->fired);
	KUNIT_ASSERT_EQ(test, dom0_do(test, "write memory/target %u", target - 1024), 0);
	KUNIT_EXPECT_TRUE_MSG(test, recorded_watch_wait(w, "memory/target", 2000),
			      "dom0's write of memory/target not seen within 2 s");
	KUNIT_EXPECT_EQ(test, xenbus_read_unsigned("memory", "target", 0), target - 1024);
	KUNIT_EXPECT_GT(test, strlen(w->token), 0U);
	recorded_watch_unregister(w);
	KUNIT_EXPECT_EQ(test, dom0_do(test, "write memory/target %u", target), 0);
}

static void xs_live_watch_callback_may_use_xenstore(struct kunit *test)
{
	struct recorded_watch *w = kunit_kzalloc(test, sizeof(*w), GFP_KERNEL);

	require_harness(test);
	KUNIT_ASSERT_NOT_NULL(test, w);
	KUNIT_ASSERT_EQ(test, xenbus_write(XBT_NIL, BASE, "cbread", "0"), 0);
	KUNIT_ASSERT_EQ(test, recorded_watch_register(test, w, BASE "/cbread"), 0);
	w->read_in_callback = true;
	KUNIT_EXPECT_TRUE(test, recorded_watch_wait(w, BASE "/cbread", 5000));
	KUNIT_ASSERT_EQ(test, xenbus_write(XBT_NIL, BASE, "cbread", "1"), 0);
	KUNIT_EXPECT_TRUE(test, recorded_watch_wait(w, BASE "/cbread", 5000));
	KUNIT_EXPECT_EQ(test, w->callback_read_err, 0);
	recorded_watch_unregister(w);
}

static void xs_live_unwatch_stops_events(struct kunit *test)
{
	struct recorded_watch *w = kunit_kzalloc(test, sizeof(*w), GFP_KERNEL);
	unsigned int events;

	require_harness(test);
	KUNIT_ASSERT_NOT_NULL(test, w);
	KUNIT_ASSERT_EQ(test, xenbus_write(XBT_NIL, BASE, "unw", "0"), 0);
	KUNIT_ASSERT_EQ(test, recorded_watch_register(test, w, BASE "/unw"), 0);
	KUNIT_EXPECT_TRUE(test, recorded_watch_wait(w, BASE "/unw", 5000));
	recorded_watch_unregister(w);
	events = w->events;
	KUNIT_ASSERT_EQ(test, dom0_do(test, "write %s/unw after", BASE), 0);
	msleep(500);
	KUNIT_EXPECT_EQ(test, w->events, events);
}

/*
 * Stress: 8 kernel threads x 2000 mixed operations (see stress_fn; transactions retried on
 * EAGAIN) on their own subtrees, while dom0 writes 300 nodes below a watched one, ~10 ms apart,
 * from one process. No operation may fail and every one of dom0's writes must produce a watch
 * event (300 is far below the per-watch cap; distinct nodes, because xenstored merges identical
 * events still queued for a domain).
 */
#define STRESS_THREADS 8
#define STRESS_OPS 2000
#define STRESS_DOM0_WRITES 300

struct stress_thread {
	struct completion done;
	unsigned int id;
	unsigned int errors;
	unsigned int eagain;
	int first_err;
	const char *first_op;
};

static void stress_fail(struct stress_thread *st, const char *op, int err)
{
	if (!st->errors++) {
		st->first_err = err;
		st->first_op = op;
	}
}

/* One transaction writing two nodes and reading one back inside, retried on EAGAIN. */
static int stress_transaction(struct stress_thread *st, const char *dir, unsigned int i)
{
	char node[16], val[32];
	unsigned int attempts;
	int err = 0;

	snprintf(val, sizeof(val), "%u-tx%u", st->id, i);
	for (attempts = 0; attempts < 100; attempts++) {
		struct xenbus_transaction t;
		char *got;

		err = xenbus_transaction_start(&t);
		if (err)
			return err;
		snprintf(node, sizeof(node), "t%u", i % 4);
		err = xenbus_write(t, dir, node, val);
		if (!err)
			err = xenbus_write(t, dir, "t-last", node);
		if (!err) {
			got = xenbus_read(t, dir, node, NULL);
			if (IS_ERR(got)) {
				err = PTR_ERR(got);
			} else {
				if (strcmp(got, val))
					err = -EIO;
				kfree(got);
			}
		}
		if (err) {
			xenbus_transaction_end(t, true);
			return err;
		}
		err = xenbus_transaction_end(t, false);
		if (err != -EAGAIN)
			return err;
		st->eagain++;
	}
	return err;
}

/*
 * A mix of ten: write and read back, read, directory, rm, transaction, scanf, exists, read,
 * directory, gather. While any transaction is open, xenstored rate-limits a guest's writes
 * outside transactions and its commits to ~200/s (WRL_RATE in xenstored_domain.c): their number
 * sets this test's duration, so they are three in ten.
 */
static int stress_fn(void *data)
{
	struct stress_thread *st = data;
	char dir[64], node[16], val[32], *got;
	unsigned int i, n, v;
	int err;

	snprintf(dir, sizeof(dir), BASE "/stress/t%u", st->id);
	snprintf(val, sizeof(val), "%u", st->id);
	err = xenbus_write(XBT_NIL, dir, "anchor", val);
	if (err)
		stress_fail(st, "anchor", err);
	for (i = 0; i < STRESS_OPS; i++) {
		snprintf(node, sizeof(node), "k%u", i % 16);
		switch (i % 10) {
		case 0:
			snprintf(val, sizeof(val), "%u-%u", st->id, i);
			err = xenbus_write(XBT_NIL, dir, node, val);
			if (err) {
				stress_fail(st, "write", err);
				break;
			}
			got = xenbus_read(XBT_NIL, dir, node, NULL);
			if (IS_ERR(got)) {
				stress_fail(st, "read back", PTR_ERR(got));
			} else {
				if (strcmp(got, val))
					stress_fail(st, "read back", -EIO);
				kfree(got);
			}
			break;
		case 1:
		case 7:
			got = xenbus_read(XBT_NIL, dir, "anchor", NULL);
			if (IS_ERR(got)) {
				stress_fail(st, "read", PTR_ERR(got));
			} else {
				if (kstrtouint(got, 10, &v) || v != st->id)
					stress_fail(st, "read", -EIO);
				kfree(got);
			}
			break;
		case 2:
		case 8: {
			char **d = xenbus_directory(XBT_NIL, dir, "", &n);

			if (IS_ERR(d))
				stress_fail(st, "directory", PTR_ERR(d));
			else if (!n)
				stress_fail(st, "directory", -ENOENT);
			if (!IS_ERR(d))
				kfree(d);
			break;
		}
		case 3:
			err = xenbus_rm(XBT_NIL, dir, node);
			if (err)
				stress_fail(st, "rm", err);
			break;
		case 4:
			err = stress_transaction(st, dir, i);
			if (err)
				stress_fail(st, "transaction", err);
			break;
		case 5:
			if (xenbus_scanf(XBT_NIL, dir, "anchor", "%u", &v) != 1 || v != st->id)
				stress_fail(st, "scanf", -EIO);
			break;
		case 6:
			if (!xenbus_exists(XBT_NIL, dir, "anchor"))
				stress_fail(st, "exists", -ENOENT);
			break;
		case 9:
			err = xenbus_gather(XBT_NIL, dir, "anchor", "%u", &v, NULL);
			if (err || v != st->id)
				stress_fail(st, "gather", err ?: -EIO);
			break;
		}
	}
	complete(&st->done);
	return 0;
}

static void xs_live_stress_8x2000_with_dom0(struct kunit *test)
{
	struct stress_thread *threads = kunit_kcalloc(test, STRESS_THREADS, sizeof(*threads), GFP_KERNEL);
	struct recorded_watch *w = kunit_kzalloc(test, sizeof(*w), GFP_KERNEL);
	unsigned int i, errors = 0, eagain = 0, events;
	unsigned long end, start, threads_done, dom0_done;

	require_harness(test);
	KUNIT_ASSERT_NOT_NULL(test, threads);
	KUNIT_ASSERT_NOT_NULL(test, w);
	xenbus_rm(XBT_NIL, BASE, "stress");
	KUNIT_ASSERT_EQ(test, xenbus_write(XBT_NIL, BASE "/stress", "dom0", "start"), 0);
	KUNIT_ASSERT_EQ(test, recorded_watch_register(test, w, BASE "/stress/dom0"), 0);
	KUNIT_ASSERT_TRUE(test, recorded_watch_wait(w, BASE "/stress/dom0", 5000));
	spin_lock(&w->lock);
	w->events = 0;
	spin_unlock(&w->lock);
	KUNIT_ASSERT_EQ(test, dom0_do(test, "bgwrite %s/stress/dom0 %u %s/stress/dom0-done", BASE,
				       STRESS_DOM0_WRITES, BASE), 0);
	start = jiffies;
	for (i = 0; i < STRESS_THREADS; i++) {
		struct task_struct *task;

		threads[i].id = i;
		init_completion(&threads[i].done);
		task = kthread_run(stress_fn, &threads[i], "xs-stress-%u", i);
		KUNIT_ASSERT_FALSE(test, IS_ERR(task));
	}
	for (i = 0; i < STRESS_THREADS; i++) {
		wait_for_completion(&threads[i].done);
		errors += threads[i].errors;
		eagain += threads[i].eagain;
		if (threads[i].errors)
			kunit_info(test, "thread %u: %u errors, first %s: %d\n", i,
				   threads[i].errors, threads[i].first_op, threads[i].first_err);
	}
	threads_done = jiffies;
	KUNIT_EXPECT_EQ(test, errors, 0U);
	/* dom0's writes: wait for its done marker, then for the last events to be delivered. */
	end = jiffies + 120 * HZ;
	while (!xenbus_exists(XBT_NIL, BASE "/stress", "dom0-done") && time_before(jiffies, end))
		msleep(100);
	KUNIT_ASSERT_TRUE_MSG(test, xenbus_exists(XBT_NIL, BASE "/stress", "dom0-done"),
			      "dom0 did not finish its writes");
	dom0_done = jiffies;
	KUNIT_EXPECT_EQ(test, xenbus_read_unsigned(BASE "/stress", "dom0-done", 0), STRESS_DOM0_WRITES);
	end = jiffies + 30 * HZ;
	do {
		spin_lock(&w->lock);
		events = w->events;
		spin_unlock(&w->lock);
		if (events >= STRESS_DOM0_WRITES)
			break;
		msleep(50);
	} while (time_before(jiffies, end));
	recorded_watch_unregister(w);
	kunit_info(test, "%u ops by %u threads in %u ms, %u EAGAIN retries, %u watch events for %u dom0 writes (done after %u ms)\n",
		   STRESS_THREADS * STRESS_OPS, STRESS_THREADS, jiffies_to_msecs(threads_done - start),
		   eagain, events, STRESS_DOM0_WRITES, jiffies_to_msecs(dom0_done - start));
	KUNIT_EXPECT_EQ(test, events, STRESS_DOM0_WRITES);
	xenbus_rm(XBT_NIL, BASE, "stress");
}

/*
 * Conflicts: 8 threads increment one counter in transactions until at least 1000 commits
 * failed with EAGAIN. Every EAGAIN is retried (bounded) or reported; at the end the counter
 * must equal the number of successful commits.
 */
#define CONFLICTS_WANTED 1000

struct conflict_ctx {
	atomic_t conflicts;
	atomic_t commits;
	atomic_t errors;
	atomic_t given_up;
	unsigned long deadline;
};

struct conflict_thread {
	struct conflict_ctx *ctx;
	struct completion done;
};

static int conflict_fn(void *data)
{
	struct conflict_thread *ct = data;
	struct conflict_ctx *ctx = ct->ctx;

	while (atomic_read(&ctx->conflicts) < CONFLICTS_WANTED && time_before(jiffies, ctx->deadline)) {
		unsigned int attempts;
		int err = -EAGAIN;

		for (attempts = 0; attempts < 1000 && err == -EAGAIN; attempts++) {
			struct xenbus_transaction t;
			unsigned int v;

			err = xenbus_transaction_start(&t);
			if (err)
				break;
			err = xenbus_scanf(t, BASE, "counter", "%u", &v);
			if (err != 1) {
				xenbus_transaction_end(t, true);
				err = err < 0 ? err : -EIO;
				break;
			}
			err = xenbus_printf(t, BASE, "counter", "%u", v + 1);
			if (err) {
				xenbus_transaction_end(t, true);
				break;
			}
			err = xenbus_transaction_end(t, false);
			if (err == -EAGAIN)
				atomic_inc(&ctx->conflicts);
		}
		if (!err)
			atomic_inc(&ctx->commits);
		else if (err == -EAGAIN)
			atomic_inc(&ctx->given_up);
		else
			atomic_inc(&ctx->errors);
	}
	complete(&ct->done);
	return 0;
}

static void xs_live_transaction_1000_conflicts(struct kunit *test)
{
	struct conflict_thread *threads = kunit_kcalloc(test, STRESS_THREADS, sizeof(*threads), GFP_KERNEL);
	struct conflict_ctx *ctx = kunit_kzalloc(test, sizeof(*ctx), GFP_KERNEL);
	unsigned int i;

	require_harness(test);
	KUNIT_ASSERT_NOT_NULL(test, threads);
	KUNIT_ASSERT_NOT_NULL(test, ctx);
	KUNIT_ASSERT_EQ(test, xenbus_write(XBT_NIL, BASE, "counter", "0"), 0);
	ctx->deadline = jiffies + 240 * HZ;
	for (i = 0; i < STRESS_THREADS; i++) {
		struct task_struct *task;

		threads[i].ctx = ctx;
		init_completion(&threads[i].done);
		task = kthread_run(conflict_fn, &threads[i], "xs-conflict-%u", i);
		KUNIT_ASSERT_FALSE(test, IS_ERR(task));
	}
	for (i = 0; i < STRESS_THREADS; i++)
		wait_for_completion(&threads[i].done);
	kunit_info(test, "%d commits, %d EAGAIN conflicts retried, %d increments given up, %d errors\n",
		   atomic_read(&ctx->commits), atomic_read(&ctx->conflicts),
		   atomic_read(&ctx->given_up), atomic_read(&ctx->errors));
	KUNIT_EXPECT_GE(test, atomic_read(&ctx->conflicts), CONFLICTS_WANTED);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->errors), 0);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->given_up), 0);
	KUNIT_EXPECT_EQ(test, xenbus_read_unsigned(BASE, "counter", 0),
			(unsigned int)atomic_read(&ctx->commits));
}

/*
 * Rust core only: one watch's callback is stuck while dom0 floods its node. The flood is capped
 * per watch (XSA-349: at most 1000 pending events, the rest dropped), and another watch's
 * event is still delivered (a rescue dispatcher steps in after 2 s). The C core runs every
 * callback on one thread and queues without bound, so neither holds there.
 */
#define FLOOD_WRITES 1200
#define PENDING_CAP 1000

struct stuck_watch {
	struct xenbus_watch watch;
	struct completion entered;
	struct completion release;
	atomic_t calls;
	bool registered;
};

/* Let a blocked callback go, then unregister: also when the test ends early. */
static void stuck_watch_cleanup(void *data)
{
	struct stuck_watch *s = data;

	complete_all(&s->release);
	if (s->registered) {
		s->registered = false;
		unregister_xenbus_watch(&s->watch);
	}
}

static void stuck_cb(struct xenbus_watch *watch, const char *path, const char *token)
{
	struct stuck_watch *s = container_of(watch, struct stuck_watch, watch);

	if (atomic_inc_return(&s->calls) == 1) {
		complete(&s->entered);
		wait_for_completion(&s->release);
	}
}

static void xs_live_rust_watch_cap_and_stall_rescue(struct kunit *test)
{
	struct stuck_watch *s = kunit_kzalloc(test, sizeof(*s), GFP_KERNEL);
	struct recorded_watch *other = kunit_kzalloc(test, sizeof(*other), GFP_KERNEL);
	unsigned long end;
	int calls;

	if (!IS_ENABLED(CONFIG_XEN_XENBUS_CORE_RUST))
		kunit_skip(test, "C core: one callback thread and no per-watch cap by design");
	require_harness(test);
	KUNIT_ASSERT_NOT_NULL(test, s);
	KUNIT_ASSERT_NOT_NULL(test, other);
	init_completion(&s->entered);
	init_completion(&s->release);
	KUNIT_ASSERT_EQ(test, xenbus_write(XBT_NIL, BASE "/flood", "node", "0"), 0);
	KUNIT_ASSERT_EQ(test, xenbus_write(XBT_NIL, BASE "/flood", "other", "0"), 0);
	s->watch.node = BASE "/flood/node";
	s->watch.callback = stuck_cb;
	KUNIT_ASSERT_EQ(test, register_xenbus_watch(&s->watch), 0);
	s->registered = true;
	KUNIT_ASSERT_EQ(test, kunit_add_action_or_reset(test, stuck_watch_cleanup, s), 0);
	/* The registration event enters the callback, which now blocks. */
	KUNIT_ASSERT_TRUE(test, wait_for_completion_timeout(&s->entered, 10 * HZ));
	/* Distinct nodes below the watched one: xenstored merges identical queued events. */
	KUNIT_ASSERT_EQ(test, dom0_do(test, "flood %s/flood/node %u x", BASE, FLOOD_WRITES), 0);
	/* Another watch is served although the dispatcher is stuck. */
	KUNIT_ASSERT_EQ(test, recorded_watch_register(test, other, BASE "/flood/other"), 0);
	KUNIT_EXPECT_TRUE_MSG(test, recorded_watch_wait(other, BASE "/flood/other", 10000),
			      "no event for another watch while one callback is stuck");
	recorded_watch_unregister(other);
	complete_all(&s->release);
	/* All pending events of the flood are delivered, but no more than the cap. */
	end = jiffies + 60 * HZ;
	while (atomic_read(&s->calls) < 1 + PENDING_CAP && time_before(jiffies, end))
		msleep(50);
	msleep(1000);
	calls = atomic_read(&s->calls);
	stuck_watch_cleanup(s);
	kunit_info(test, "%d callbacks for 1 registration + %u writes (cap %u)\n", calls,
		   FLOOD_WRITES, PENDING_CAP);
	KUNIT_EXPECT_EQ(test, calls, 1 + PENDING_CAP);
	xenbus_rm(XBT_NIL, BASE, "flood");
}

static void xs_live_cleanup(struct kunit *test)
{
	require_harness(test);
	KUNIT_EXPECT_EQ(test, xenbus_rm(XBT_NIL, BASE, ""), 0);
	KUNIT_EXPECT_FALSE(test, xenbus_exists(XBT_NIL, BASE, ""));
}

static struct kunit_case xenbus_live_cases[] = {
	KUNIT_CASE(xs_live_identity),
	KUNIT_CASE(xs_live_write_read),
	KUNIT_CASE(xs_live_large_value),
	KUNIT_CASE(xs_live_missing),
	KUNIT_CASE(xs_live_directory_rm),
	KUNIT_CASE(xs_live_permissions),
	KUNIT_CASE(xs_live_printf_scanf_gather),
	KUNIT_CASE(xs_live_transaction_commit_abort),
	KUNIT_CASE(xs_live_transaction_conflict),
	KUNIT_CASE(xs_live_watch_register_and_dom0_write),
	KUNIT_CASE(xs_live_watch_memory_target),
	KUNIT_CASE(xs_live_watch_callback_may_use_xenstore),
	KUNIT_CASE(xs_live_unwatch_stops_events),
	KUNIT_CASE_SLOW(xs_live_stress_8x2000_with_dom0),
	KUNIT_CASE_SLOW(xs_live_transaction_1000_conflicts),
	KUNIT_CASE_SLOW(xs_live_rust_watch_cap_and_stall_rescue),
	KUNIT_CASE(xs_live_cleanup),
	{}
};

static struct kunit_suite xenbus_live_suite = {
	.name = "xenbus_live",
	.test_cases = xenbus_live_cases,
};
kunit_test_suite(xenbus_live_suite);

MODULE_DESCRIPTION("Live tests of the in-kernel xenstore API against a real xenstored");
MODULE_LICENSE("GPL");
