/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xbt-dev.h: raw /dev/xen/xenbus helpers shared by the xbt-dev* programs (header only; each
 * program is built on its own by scripts/xen/guest-image.sh).
 *
 * The device speaks the xenstore wire protocol: struct xsd_sockmsg {type, req_id, tx_id, len}
 * followed by len payload bytes, in both directions. Replies carry the caller's req_id; watch
 * events (XS_WATCH_EVENT, req_id 0) may arrive between replies.
 */
#ifndef XBT_DEV_H
#define XBT_DEV_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xenstore.h>
#include <xen/io/xs_wire.h>

#define XBT_UNUSED __attribute__((unused))
#define HDR ((uint32_t)sizeof(struct xsd_sockmsg))
/* The device buffers one message of at most this many bytes, header included. */
#define DEV_BUF XENSTORE_PAYLOAD_MAX

struct xmsg {
	struct xsd_sockmsg h;
	char body[XENSTORE_PAYLOAD_MAX + 1]; /* always NUL-terminated after recv_msg */
};

XBT_UNUSED static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

XBT_UNUSED static void msleep(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

XBT_UNUSED static int dev_open(int extra_flags)
{
	int fd = open("/dev/xen/xenbus", O_RDWR | O_CLOEXEC | extra_flags);

	if (fd < 0)
		fd = open("/proc/xen/xenbus", O_RDWR | O_CLOEXEC | extra_flags);
	return fd;
}

/* Lays out header + body in buf (room for HDR + len bytes); returns the total length. */
XBT_UNUSED static size_t build_msg(void *buf, uint32_t type, uint32_t req, uint32_t tx,
				   const void *body, uint32_t len)
{
	struct xsd_sockmsg h = { .type = type, .req_id = req, .tx_id = tx, .len = len };

	memcpy(buf, &h, HDR);
	if (len)
		memcpy((char *)buf + HDR, body, len);
	return HDR + len;
}

/* One write() of the whole message. 0, or -errno; a short write is -EIO. */
XBT_UNUSED static int send_msg(int fd, uint32_t type, uint32_t req, uint32_t tx, const void *body,
			       uint32_t len)
{
	char stackbuf[HDR + 512], *buf = len <= 512 ? stackbuf : malloc(HDR + len);
	size_t total;
	ssize_t n;
	int ret;

	if (!buf)
		return -ENOMEM;
	total = build_msg(buf, type, req, tx, body, len);
	n = write(fd, buf, total);
	ret = n < 0 ? -errno : (size_t)n == total ? 0 : -EIO;
	if (buf != stackbuf)
		free(buf);
	return ret;
}

/* Payload "a\0" or "a\0b\0" (b may be NULL); with value_raw, b is not NUL-terminated (XS_WRITE). */
XBT_UNUSED static uint32_t payload2(char *out, const char *a, const char *b, bool value_raw)
{
	uint32_t n = strlen(a) + 1;

	memcpy(out, a, n);
	if (b) {
		uint32_t m = strlen(b) + (value_raw ? 0 : 1);

		memcpy(out + n, b, m);
		n += m;
	}
	return n;
}

/*
 * Reads exactly n bytes, at most chunk bytes per read() (0: no limit), waiting (poll) at most
 * timeout_ms for each read. 0, -ETIMEDOUT, or -errno.
 */
XBT_UNUSED static int read_exact(int fd, void *buf, size_t n, size_t chunk, int timeout_ms)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		size_t want = n - got;
		ssize_t k;
		int r = poll(&p, 1, timeout_ms);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		if (chunk && want > chunk)
			want = chunk;
		k = read(fd, (char *)buf + got, want);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return -EPIPE;
		got += k;
	}
	return 0;
}

/* One whole message (header, then body). 0, -EMSGSIZE for an impossible length, or -errno. */
XBT_UNUSED static int recv_msg_chunked(int fd, struct xmsg *m, size_t chunk, int timeout_ms)
{
	int r = read_exact(fd, &m->h, HDR, chunk, timeout_ms);

	if (r)
		return r;
	if (m->h.len > XENSTORE_PAYLOAD_MAX)
		return -EMSGSIZE;
	r = read_exact(fd, m->body, m->h.len, chunk, timeout_ms);
	if (r)
		return r;
	m->body[m->h.len] = 0;
	return 0;
}

XBT_UNUSED static int recv_msg(int fd, struct xmsg *m, int timeout_ms)
{
	return recv_msg_chunked(fd, m, 0, timeout_ms);
}

/* Whether fd has something to read within timeout_ms. */
XBT_UNUSED static bool readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r > 0 && (p.revents & POLLIN);
}

XBT_UNUSED static bool is_error(const struct xmsg *m, const char *name)
{
	return m->h.type == XS_ERROR && m->h.len == strlen(name) + 1 &&
	       !memcmp(m->body, name, m->h.len);
}

/* An XS_ERROR reply whose body is a plausible errno name ("E" + capitals/digits + NUL). */
XBT_UNUSED static bool is_some_error(const struct xmsg *m)
{
	uint32_t i;

	if (m->h.type != XS_ERROR || m->h.len < 3 || m->body[0] != 'E' || m->body[m->h.len - 1])
		return false;
	for (i = 1; i + 1 < m->h.len; i++)
		if (!((m->body[i] >= 'A' && m->body[i] <= 'Z') || (m->body[i] >= '0' && m->body[i] <= '9')))
			return false;
	return true;
}

/* A short printable summary (rotating buffers: up to 4 may be used in one printf). */
XBT_UNUSED static const char *describe(const struct xmsg *m)
{
	static char bufs[4][160];
	static unsigned int next;
	char *s = bufs[next++ % 4], body[48];
	uint32_t i, n = m->h.len < sizeof(body) - 1 ? m->h.len : sizeof(body) - 1;

	for (i = 0; i < n; i++)
		body[i] = m->body[i] >= 32 && m->body[i] < 127 ? m->body[i] : '.';
	body[n] = 0;
	snprintf(s, sizeof(bufs[0]), "{type %u req %u tx %u len %u '%s'}", m->h.type, m->h.req_id, m->h.tx_id,
		 m->h.len, body);
	return s;
}

/*
 * Sends one request and waits for the message with its req_id; watch events met on the way are
 * counted in *events (may be NULL) and dropped. 0, or -errno; -EBADMSG if another reply came.
 */
static uint32_t xbt_next_req = 0x1000;
XBT_UNUSED static int xcall(int fd, uint32_t type, uint32_t tx, const void *body, uint32_t len,
			    struct xmsg *reply, unsigned int *events)
{
	uint32_t req = xbt_next_req++;
	int r = send_msg(fd, type, req, tx, body, len);

	if (r)
		return r;
	for (;;) {
		r = recv_msg(fd, reply, 10000);
		if (r)
			return r;
		if (reply->h.type == XS_WATCH_EVENT) {
			if (events)
				++*events;
			continue;
		}
		return reply->h.req_id == req ? 0 : -EBADMSG;
	}
}

/* xcall with a "path\0" or "path\0second" payload (second NUL-terminated unless raw). */
XBT_UNUSED static int xcall2(int fd, uint32_t type, uint32_t tx, const char *a, const char *b,
			     bool raw, struct xmsg *reply)
{
	char buf[XENSTORE_PAYLOAD_MAX];

	if (strlen(a) + (b ? strlen(b) : 0) + 2 > sizeof(buf))
		return -E2BIG;
	return xcall(fd, type, tx, buf, payload2(buf, a, b, raw), reply, NULL);
}

/* Reply was the expected type (and not an error). */
XBT_UNUSED static bool ok_reply(const struct xmsg *m, uint32_t type)
{
	return m->h.type == type;
}

/* --- results ----------------------------------------------------------------------------- */

/* One named check that may be evaluated many times: PASS once, or FAIL with the first reason. */
struct check {
	const char *name;
	unsigned long n, fails;
	char why[400];
};

XBT_UNUSED static void ck_fail(struct check *c, const char *fmt, ...)
{
	va_list ap;

	c->n++;
	if (c->fails++)
		return;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
}

XBT_UNUSED static void ck_ok(struct check *c)
{
	c->n++;
}

/* When the previous verdict was printed: each INFO line says where a suite's time went. */
static double ck_last;
__attribute__((constructor)) static void ck_clock_start(void)
{
	ck_last = now();
}

/* Prints the verdict; info (may be NULL) goes on an INFO line. Returns whether it passed. */
XBT_UNUSED static bool ck_done(struct check *c, const char *fmt, ...)
{
	double t = now(), took = t - ck_last;
	char info[300] = "";
	va_list ap;

	ck_last = t;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(info, sizeof(info), fmt, ap);
		va_end(ap);
	}
	if (c->fails)
		printf("FAIL %s: %lu of %lu checks failed; first: %s%s%s\n", c->name, c->fails, c->n,
		       c->why, info[0] ? "; " : "", info);
	else if (!c->n)
		printf("FAIL %s: no checks ran\n", c->name);
	else
		printf("INFO %s: %lu checks in %.1f s%s%s\nPASS %s\n", c->name, c->n, took,
		       info[0] ? "; " : "", info, c->name);
	fflush(stdout);
	return c->n && !c->fails;
}

XBT_UNUSED static void say_pass(const char *name)
{
	printf("PASS %s\n", name);
	fflush(stdout);
}

XBT_UNUSED static void say_skip(const char *name, const char *why)
{
	printf("SKIP %s: %s\n", name, why);
	fflush(stdout);
}

XBT_UNUSED static void say_fail(const char *name, const char *fmt, ...)
{
	va_list ap;

	printf("FAIL %s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

XBT_UNUSED static void info(const char *fmt, ...)
{
	va_list ap;

	printf("INFO ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* --- the dom0 agent (see tests/xen/dom0/agent.sh), through libxenstore ---------------------- */

/*
 * Waits (timeout_s) until data/xbt/ack reads "SEQ RC" for this seq; returns RC, or -1 on a
 * timeout. A watch wakes us on every change (and once when set), so the ack is seen as soon
 * as the agent writes it, not at the next poll.
 */
XBT_UNUSED static int dom0_wait_ack(struct xs_handle *xs, unsigned int seq, double timeout_s)
{
	static const char token[] = "xbt-ack";
	char want[32];
	double end = now() + timeout_s;
	int rc = -1;

	snprintf(want, sizeof(want), "%u ", seq);
	if (!xs_watch(xs, "data/xbt/ack", token))
		return -1;
	while (rc < 0) {
		unsigned int len, n;
		char *ack = xs_read(xs, XBT_NULL, "data/xbt/ack", &len), **ev;
		double left = end - now();
		struct pollfd pfd = { .fd = xs_fileno(xs), .events = POLLIN };

		if (ack && !strncmp(ack, want, strlen(want)))
			rc = atoi(ack + strlen(want));
		free(ack);
		if (rc >= 0 || left <= 0 || poll(&pfd, 1, (int)(left * 1000) + 1) <= 0)
			break;
		ev = xs_read_watch(xs, &n);
		free(ev);
	}
	xs_unwatch(xs, "data/xbt/ack", token);
	return rc;
}

/*
 * Runs "CMD ARGS" in dom0 and waits (timeout_s) for its acknowledgement; true on success.
 * seq_base keeps each program's sequence numbers apart from the other users of the agent.
 */
XBT_UNUSED static bool dom0_cmd(unsigned int seq_base, double timeout_s, const char *fmt, ...)
{
	static unsigned int seq;
	struct xs_handle *xs = xs_open(0);
	char cmd[512], req[600];
	bool done = false;
	va_list ap;

	if (!xs)
		return false;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	seq++;
	snprintf(req, sizeof(req), "%u %s", seq_base + seq, cmd);
	if (xs_write(xs, XBT_NULL, "data/xbt/req", req, strlen(req)))
		done = dom0_wait_ack(xs, seq_base + seq, timeout_s) == 0;
	xs_close(xs);
	return done;
}

/* A number from `xenstore-control quota DOMID` output that the agent stores in data/xbt/quota. */
XBT_UNUSED static long quota_value(unsigned int seq_base, const char *what)
{
	struct xs_handle *xs;
	char *txt, *p, key[64];
	unsigned int len;
	long v = -1;

	if (!dom0_cmd(seq_base, 30, "quotaget"))
		return -1;
	xs = xs_open(0);
	txt = xs ? xs_read(xs, XBT_NULL, "data/xbt/quota", &len) : NULL;
	snprintf(key, sizeof(key), "%s ", what);
	/* Lines look like "watches          :        5 ..." (joined with '|' by the agent). */
	for (p = txt; p && *p; p++) {
		if ((p == txt || p[-1] == '|') && !strncmp(p, key, strlen(key))) {
			char *colon = strchr(p, ':');

			if (colon)
				v = strtol(colon + 1, NULL, 10);
			break;
		}
	}
	free(txt);
	if (xs)
		xs_close(xs);
	return v;
}

#endif
