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

static int recorded_watch_register(struct recorded_watch *w, const char *node)
{
	memset(w, 0, sizeof(*w));
	spin_lock_init(&w->lock);
	init_completion(&w->fired);
	w->watch.node = node;
	w->watch.callback = recorded_watch_cb;
	return register_xenbus_watch(&w->watch);
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
	KUNIT_ASSERT_EQ(test, recorded_watch_register(w, BASE "/w"), 0);
	KUNIT_EXPECT_TRUE_MSG(test, recorded_watch_wait(w, BASE "/w", 5000),
			      "no event on registration");
	KUNIT_EXPECT_GT(test, strlen(w->token), 0U);
	KUNIT_ASSERT_EQ(test, dom0_do(test, "write %s/w/child dom0", BASE), 0);
	KUNIT_EXPECT_TRUE_MSG(test, recorded_watch_wait(w, BASE "/w/child", 5000),
			      "no event for dom0's write of a child node");
	unregister_xenbus_watch(&w->watch);
}

static void xs_live_watch_memory_target(struct kunit *test)
{
	struct recorded_watch *w = kunit_kzalloc(test, sizeof(*w), GFP_KERNEL);
	unsigned int target;

	require_harness(test);
	KUNIT_ASSERT_NOT_NULL(test, w);
	target = xenbus_read_unsigned("memory", "target", 0);
	KUNIT_ASSERT_GT(test, target, 0U);
	KUNIT_ASSERT_EQ(test, recorded_watch_register(w, "memory/target"), 0);
	KUNIT_EXPECT_TRUE(test, recorded_watch_wait(w, "memory/target", 5000));
	reinit_completion(&w->fired);
	KUNIT_ASSERT_EQ(test, dom0_do(test, "write memory/target %u", target - 1024), 0);
	KUNIT_EXPECT_TRUE_MSG(test, recorded_watch_wait(w, "memory/target", 2000),
			      "dom0's write of memory/target not seen within 2 s");
	KUNIT_EXPECT_EQ(test, xenbus_read_unsigned("memory", "target", 0), target - 1024);
	KUNIT_EXPECT_GT(test, strlen(w->token), 0U);
	unregister_xenbus_watch(&w->watch);
	KUNIT_EXPECT_EQ(test, dom0_do(test, "write memory/target %u", target), 0);
}

static void xs_live_watch_callback_may_use_xenstore(struct kunit *test)
{
	struct recorded_watch *w = kunit_kzalloc(test, sizeof(*w), GFP_KERNEL);

	require_harness(test);
	KUNIT_ASSERT_NOT_NULL(test, w);
	KUNIT_ASSERT_EQ(test, xenbus_write(XBT_NIL, BASE, "cbread", "0"), 0);
	KUNIT_ASSERT_EQ(test, recorded_watch_register(w, BASE "/cbread"), 0);
	w->read_in_callback = true;
	KUNIT_EXPECT_TRUE(test, recorded_watch_wait(w, BASE "/cbread", 5000));
	KUNIT_ASSERT_EQ(test, xenbus_write(XBT_NIL, BASE, "cbread", "1"), 0);
	KUNIT_EXPECT_TRUE(test, recorded_watch_wait(w, BASE "/cbread", 5000));
	KUNIT_EXPECT_EQ(test, w->callback_read_err, 0);
	unregister_xenbus_watch(&w->watch);
}

static void xs_live_unwatch_stops_events(struct kunit *test)
{
	struct recorded_watch *w = kunit_kzalloc(test, sizeof(*w), GFP_KERNEL);
	unsigned int events;

	require_harness(test);
	KUNIT_ASSERT_NOT_NULL(test, w);
	KUNIT_ASSERT_EQ(test, xenbus_write(XBT_NIL, BASE, "unw", "0"), 0);
	KUNIT_ASSERT_EQ(test, recorded_watch_register(w, BASE "/unw"), 0);
	KUNIT_EXPECT_TRUE(test, recorded_watch_wait(w, BASE "/unw", 5000));
	unregister_xenbus_watch(&w->watch);
	events = w->events;
	KUNIT_ASSERT_EQ(test, dom0_do(test, "write %s/unw after", BASE), 0);
	msleep(500);
	KUNIT_EXPECT_EQ(test, w->events, events);
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
