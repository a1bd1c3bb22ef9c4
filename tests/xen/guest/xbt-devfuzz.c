// SPDX-License-Identifier: GPL-2.0
/*
 * xbt-devfuzz: malformed and abusive input through /dev/xen/xenbus, checking every answer.
 *
 * usage: xbt-devfuzz c|rust [SEED]
 *   c|rust: which xenstore core runs (the shell knows it from dmesg); the documented differences
 *   of the Rust device are checked only there, and the C behaviour only on the C core.
 *
 * Prints "PASS name" / "FAIL name: why" / "SKIP name: why" lines for the guest's TAP helper, and
 * "INFO ..." lines with counts. At least 10,000 bad messages go through the device; afterwards
 * the device must still work (a plain write/read round trip) and the kernel stay healthy (the
 * suite's health group runs after us).
 *
 * The dom0 agent (tests/xen/dom0/agent.sh) helps: "flood" writes many nodes as fast as xenstored
 * goes (watch storms), "quota"/"quotaget" raise and read xenstored's per-domain quotas. Those
 * per-domain counts of watches and transactions are the oracle for "closing a file releases
 * everything it had"; quotas are raised where the Rust device's own bounds are lower than
 * xenstored's defaults, or where a leak must be measured without starving the rest of the suite.
 *
 * Known C-core bug, reported as a skip there: dev.pipelined_requests_keep_payloads (the C device
 * sends a request's payload from the file's buffer after write() returned, and the next write()
 * can overwrite it; libxenstore never pipelines, so it goes unnoticed upstream).
 */
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "xbt-dev.h"

#define BASE "data/xbt/fuzz"
#define AGENT_SEQ 200000u

static bool rust;
static unsigned long nbad; /* malformed or refused messages sent */
static uint64_t rng_state;

static uint32_t rnd(void)
{
	/* xorshift64*: reproducible from the printed seed */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

static void rnd_bytes(char *p, size_t n, bool nonzero)
{
	while (n--) {
		char b = (char)rnd();

		*p++ = nonzero && !b ? 'x' : b;
	}
}

/* A tx_id no file of ours owns (xenstored hands out small numbers). */
static uint32_t foreign_tx(void)
{
	return 0x40000000u | rnd();
}

/*
 * Kernel-local round trip: a READ in a transaction this file does not own must come back at once
 * as XS_ERROR "ENOENT" with our req_id and tx_id. Proves the device's framing is in sync (no
 * leftover partial message). Counts as a bad message.
 */
static bool probe(int fd, struct check *c, const char *ctx)
{
	static const char path[] = BASE "/present";
	uint32_t req = xbt_next_req++, tx = foreign_tx();
	struct xmsg m;
	int r;

	nbad++;
	r = send_msg(fd, XS_READ, req, tx, path, sizeof(path));
	if (r) {
		ck_fail(c, "%s: probe write failed: %s", ctx, strerror(-r));
		return false;
	}
	r = recv_msg(fd, &m, 5000);
	if (r) {
		ck_fail(c, "%s: probe reply: %s", ctx, strerror(-r));
		return false;
	}
	if (!is_error(&m, "ENOENT") || m.h.req_id != req || m.h.tx_id != tx) {
		ck_fail(c, "%s: probe got %s, want ENOENT req %u tx %u", ctx, describe(&m), req, tx);
		return false;
	}
	return true;
}

/* Writes len bytes in one write(); returns -errno or the count. */
static ssize_t wr(int fd, const void *buf, size_t len)
{
	ssize_t n = write(fd, buf, len);

	return n < 0 ? -errno : n;
}

static bool setup_nodes(void)
{
	int fd = dev_open(0);
	struct xmsg m;
	bool ok;

	if (fd < 0) {
		say_fail("dev.fuzz.open", "open /dev/xen/xenbus: %s", strerror(errno));
		return false;
	}
	ok = !xcall2(fd, XS_RM, 0, BASE, NULL, false, &m) &&
	     !xcall2(fd, XS_WRITE, 0, BASE "/present", "here", true, &m) && ok_reply(&m, XS_WRITE);
	close(fd);
	if (!ok)
		say_fail("dev.fuzz.setup", "cannot write " BASE "/present: %s", describe(&m));
	return ok;
}

/* --- framing ----------------------------------------------------------------------------- */

static void t_truncated_then_close(void)
{
	struct check c = { .name = "dev.fuzz.truncated_then_close" };
	char buf[HDR + 200];
	int i, fd;

	for (i = 0; c.fails < 20 && i < 300; i++) {
		uint32_t blen = 10 + rnd() % 100;
		size_t k;
		ssize_t n;

		build_msg(buf, XS_READ, xbt_next_req++, 0, NULL, 0);
		((struct xsd_sockmsg *)buf)->len = blen;
		rnd_bytes(buf + HDR, blen, true);
		/* Half of them stop inside the header, half inside the payload. */
		k = i % 2 ? 1 + rnd() % (HDR - 1) : HDR + rnd() % blen;
		fd = dev_open(0);
		if (fd < 0) {
			ck_fail(&c, "open: %s", strerror(errno));
			break;
		}
		n = wr(fd, buf, k);
		nbad++;
		if (n != (ssize_t)k)
			ck_fail(&c, "write of %zu bytes of a message returned %zd", k, n);
		else if (readable(fd, 0))
			ck_fail(&c, "a partial message (%zu bytes) produced something to read", k);
		else if (close(fd))
			ck_fail(&c, "close after %zu bytes: %s", k, strerror(errno));
		else
			ck_ok(&c);
	}
	fd = dev_open(0);
	if (fd >= 0) {
		if (probe(fd, &c, "fresh file after the loop"))
			ck_ok(&c);
		close(fd);
	}
	ck_done(&c, NULL);
}

/* Valid messages cut into random pieces (down to 1 byte) across write()s. */
static void t_split_writes(void)
{
	struct check c = { .name = "dev.split_writes" };
	char buf[HDR + 300], val[64], pl[200];
	int fd = dev_open(0), i;
	struct xmsg m;

	for (i = 0; c.fails < 20 && fd >= 0 && i < 200; i++) {
		uint32_t req = xbt_next_req++, len;
		size_t total, off = 0;
		bool bytewise = i % 20 == 0;

		snprintf(val, sizeof(val), "split-%d-%u", i, rnd());
		len = payload2(pl, BASE "/split", val, true);
		total = build_msg(buf, XS_WRITE, req, 0, pl, len);
		while (off < total) {
			size_t piece = bytewise ? 1 : 1 + rnd() % (total - off);
			ssize_t n = wr(fd, buf + off, piece);

			if (n != (ssize_t)piece) {
				ck_fail(&c, "piece of %zu at %zu: write returned %zd", piece, off, n);
				break;
			}
			/* Nothing may be answered before the message is complete. */
			if (off + piece < total && readable(fd, 0)) {
				ck_fail(&c, "a reply after only %zu of %zu bytes", off + piece, total);
				break;
			}
			off += piece;
		}
		if (off < total)
			break;
		if (recv_msg(fd, &m, 5000) || m.h.req_id != req || !ok_reply(&m, XS_WRITE) ||
		    strcmp(m.body, "OK")) {
			ck_fail(&c, "write %d: reply %s", i, describe(&m));
			break;
		}
		if (xcall2(fd, XS_READ, 0, BASE "/split", NULL, false, &m) || !ok_reply(&m, XS_READ) ||
		    m.h.len != strlen(val) || memcmp(m.body, val, m.h.len))
			ck_fail(&c, "read back after split write %d: %s, want '%s'", i, describe(&m), val);
		else
			ck_ok(&c);
	}
	if (fd < 0)
		ck_fail(&c, "open: %s", strerror(errno));
	else
		close(fd);
	ck_done(&c, NULL);
}

/* Header announcing more than the 4096-byte buffer holds: E2BIG, partial message dropped. */
static void t_oversized_e2big(void)
{
	static const uint32_t lens[] = { DEV_BUF - HDR + 1, DEV_BUF - HDR + 2, DEV_BUF, 8192, 65536,
					 0x7fffffff, 0x80000000u, 0xffffffffu };
	struct check c = { .name = "dev.fuzz.oversized_len_e2big" };
	char buf[HDR + 200];
	int fd = dev_open(0), i;

	for (i = 0; c.fails < 20 && fd >= 0 && i < 1500; i++) {
		uint32_t len = i % 3 == 2 ? DEV_BUF - HDR + 1 + rnd() % 1000000
					  : lens[rnd() % (sizeof(lens) / sizeof(lens[0]))];
		ssize_t n;

		build_msg(buf, rnd() % 30, xbt_next_req++, rnd() % 3 ? 0 : rnd(), NULL, 0);
		((struct xsd_sockmsg *)buf)->len = len;
		rnd_bytes(buf + HDR, 100, false);
		nbad++;
		switch (i % 3) {
		case 0: /* the header alone */
			n = wr(fd, buf, HDR);
			break;
		case 1: /* the header in two writes: the second completes it */
			n = wr(fd, buf, 8);
			if (n != 8) {
				ck_fail(&c, "first half of a header: write returned %zd", n);
				continue;
			}
			n = wr(fd, buf + 8, HDR - 8);
			break;
		default: /* header and some payload together */
			n = wr(fd, buf, HDR + 100);
			break;
		}
		if (n != -E2BIG) {
			ck_fail(&c, "len %u (variant %d): write returned %zd (%s), want E2BIG", len, i % 3,
				n, n < 0 ? strerror(-n) : "no error");
			continue;
		}
		if (probe(fd, &c, "after E2BIG"))
			ck_ok(&c);
	}
	if (fd < 0)
		ck_fail(&c, "open: %s", strerror(errno));
	else
		close(fd);
	ck_done(&c, NULL);
}

/* The exact limit: 16 + 4080 bytes is accepted and forwarded; xenstored rejects the path. */
static void t_boundary(void)
{
	struct check c = { .name = "dev.fuzz.boundary_4096_accepted" };
	static char buf[DEV_BUF];
	int fd = dev_open(0), i;
	uint32_t plen = DEV_BUF - HDR, req;
	struct xmsg m;

	for (i = 0; fd >= 0 && i < 2; i++) {
		req = xbt_next_req++;
		memset(buf, 'a', sizeof(buf));
		build_msg(buf, XS_READ, req, 0, NULL, 0);
		((struct xsd_sockmsg *)buf)->len = plen;
		buf[DEV_BUF - 1] = 0;
		/* Once in a single write, once split right before the last byte. */
		if (i == 0 ? wr(fd, buf, DEV_BUF) != DEV_BUF
			   : wr(fd, buf, DEV_BUF - 1) != DEV_BUF - 1 || wr(fd, buf + DEV_BUF - 1, 1) != 1) {
			ck_fail(&c, "a %u-byte message was not accepted: %s", DEV_BUF, strerror(errno));
			continue;
		}
		nbad++;
		if (recv_msg(fd, &m, 5000) || m.h.req_id != req || !is_some_error(&m))
			ck_fail(&c, "reply to a 4079-character path: %s", describe(&m));
		else
			ck_ok(&c);
	}
	if (fd >= 0)
		close(fd);
	ck_done(&c, NULL);
}

/* A write() that would overflow the buffer: EINVAL, and what was buffered is dropped. */
static void t_overflow_einval(void)
{
	struct check c = { .name = "dev.fuzz.overflow_einval" };
	static char big[2 * DEV_BUF + HDR];
	int fd = dev_open(0), i;

	for (i = 0; c.fails < 20 && fd >= 0 && i < 1500; i++) {
		size_t first = 0, second;
		ssize_t n;

		rnd_bytes(big, sizeof(big), false);
		switch (i % 3) {
		case 0: /* one write larger than the buffer (a valid small header in front) */
			build_msg(big, XS_READ, xbt_next_req++, 0, NULL, 0);
			((struct xsd_sockmsg *)big)->len = 10;
			second = DEV_BUF + 1 + rnd() % DEV_BUF;
			break;
		case 1: /* a header announcing 4000 bytes, then 4081 bytes at once */
			build_msg(big, XS_READ, xbt_next_req++, 0, NULL, 0);
			((struct xsd_sockmsg *)big)->len = 4000;
			first = HDR;
			second = DEV_BUF - HDR + 1;
			break;
		default: /* 16 + k bytes buffered, then one byte more than fits */
			build_msg(big, XS_READ, xbt_next_req++, 0, NULL, 0);
			((struct xsd_sockmsg *)big)->len = DEV_BUF - HDR;
			first = HDR + rnd() % 2000;
			second = DEV_BUF - first + 1;
			break;
		}
		nbad++;
		if (first && (n = wr(fd, big, first)) != (ssize_t)first) {
			ck_fail(&c, "buffering %zu bytes: write returned %zd", first, n);
			continue;
		}
		n = wr(fd, big + first, second);
		if (n != -EINVAL) {
			ck_fail(&c, "%zu + %zu bytes: write returned %zd (%s), want EINVAL", first, second, n,
				n < 0 ? strerror(-n) : "no error");
			/* Resynchronise: a bigger write always fails and empties the buffer. */
			wr(fd, big, sizeof(big));
			continue;
		}
		if (probe(fd, &c, "after EINVAL"))
			ck_ok(&c);
	}
	/* A zero-length write is a no-op. */
	if (fd >= 0 && wr(fd, big, 0) != 0)
		ck_fail(&c, "zero-length write did not return 0");
	if (fd >= 0)
		close(fd);
	ck_done(&c, NULL);
}

/* --- transactions -------------------------------------------------------------------------- */

static uint32_t tx_start(int fd, struct xmsg *m)
{
	char *end;
	unsigned long id;

	if (xcall(fd, XS_TRANSACTION_START, 0, "", 1, m, NULL) || !ok_reply(m, XS_TRANSACTION_START))
		return 0;
	id = strtoul(m->body, &end, 10);
	return end != m->body && !*end ? (uint32_t)id : 0;
}

static bool tx_end(int fd, uint32_t tx, bool commit, struct xmsg *m)
{
	return !xcall(fd, XS_TRANSACTION_END, tx, commit ? "T" : "F", 2, m, NULL) &&
	       ok_reply(m, XS_TRANSACTION_END) && !strcmp(m->body, "OK");
}

static void t_bad_txid(void)
{
	static const uint32_t types[] = { XS_READ, XS_WRITE, XS_DIRECTORY, XS_RM, XS_MKDIR, XS_GET_PERMS,
					  XS_SET_PERMS, XS_TRANSACTION_END, XS_GET_DOMAIN_PATH,
					  XS_DIRECTORY_PART, XS_WATCH_EVENT, XS_ERROR, 20, 999, 0xffff,
					  0x12345678 };
	struct check c = { .name = "dev.fuzz.bad_txid_enoent" };
	struct check own = { .name = "dev.fuzz.foreign_and_ended_txid_enoent" };
	int fd = dev_open(0), fd2 = dev_open(0), i, j;
	uint32_t reqs[8], txs[8], t;
	struct xmsg m;

	for (i = 0; c.fails < 20 && fd >= 0 && i < 250; i++) {
		/* Batches of 8 requests before reading the 8 replies. */
		for (j = 0; j < 8; j++) {
			uint32_t type = types[rnd() % (sizeof(types) / sizeof(types[0]))];
			char pl[64];
			uint32_t len = type == XS_TRANSACTION_END ? 2 : payload2(pl, BASE "/present", NULL, false);

			if (type == XS_TRANSACTION_END)
				memcpy(pl, rnd() % 2 ? "T" : "F", 2);
			reqs[j] = xbt_next_req++;
			txs[j] = foreign_tx();
			nbad++;
			if (send_msg(fd, type, reqs[j], txs[j], pl, len))
				ck_fail(&c, "type %u tx %#x: write failed: %s", type, txs[j], strerror(errno));
		}
		for (j = 0; j < 8; j++) {
			if (recv_msg(fd, &m, 5000))
				ck_fail(&c, "reply %d of a batch missing", j);
			else if (!is_error(&m, "ENOENT") || m.h.req_id != reqs[j] || m.h.tx_id != txs[j])
				ck_fail(&c, "tx %#x req %u: got %s, want ENOENT", txs[j], reqs[j], describe(&m));
			else
				ck_ok(&c);
		}
	}
	ck_done(&c, NULL);

	/* A transaction of another file, and one that has ended, are not ours either. */
	t = fd >= 0 && fd2 >= 0 ? tx_start(fd, &m) : 0;
	if (!t) {
		ck_fail(&own, "cannot start a transaction: %s", describe(&m));
	} else {
		static const char path[] = BASE "/present";

		nbad++;
		if (xcall(fd2, XS_READ, t, path, sizeof(path), &m, NULL) || !is_error(&m, "ENOENT") ||
		    m.h.tx_id != t)
			ck_fail(&own, "another file's tx %u: %s, want ENOENT", t, describe(&m));
		else
			ck_ok(&own);
		if (xcall(fd, XS_READ, t, path, sizeof(path), &m, NULL) || !ok_reply(&m, XS_READ) ||
		    strcmp(m.body, "here"))
			ck_fail(&own, "read in our own tx %u: %s", t, describe(&m));
		else
			ck_ok(&own);
		if (!tx_end(fd, t, false, &m))
			ck_fail(&own, "abort tx %u: %s", t, describe(&m));
		nbad++;
		if (xcall(fd, XS_READ, t, path, sizeof(path), &m, NULL) || !is_error(&m, "ENOENT"))
			ck_fail(&own, "ended tx %u: %s, want ENOENT", t, describe(&m));
		else
			ck_ok(&own);
	}
	ck_done(&own, NULL);
	if (fd >= 0)
		close(fd);
	if (fd2 >= 0)
		close(fd2);
}

static void t_bad_tx_end_body(void)
{
	static const struct {
		const char *b;
		uint32_t len;
	} fixed[] = { { "", 0 }, { "T", 1 }, { "F", 1 }, { "T\0", 3 }, { "F\0x", 3 }, { "t", 2 },
		      { "f", 2 }, { "", 1 }, { "TF", 3 }, { "TT", 2 }, { "1", 2 }, { "T\0F", 4 } };
	struct check c = { .name = "dev.fuzz.bad_transaction_end_body" };
	int fd = dev_open(0), i;
	uint32_t t;
	struct xmsg m;
	char body[16];

	t = fd >= 0 ? tx_start(fd, &m) : 0;
	if (!t) {
		say_fail(c.name, "cannot start a transaction: %s", describe(&m));
		if (fd >= 0)
			close(fd);
		return;
	}
	for (i = 0; c.fails < 20 && i < 1000; i++) {
		uint32_t len, tx = i % 10 == 9 ? 0 : t, req;

		if (i < (int)(sizeof(fixed) / sizeof(fixed[0]))) {
			len = fixed[i].len;
			memcpy(body, fixed[i].b, len);
		} else {
			len = rnd() % 9;
			rnd_bytes(body, len, false);
			if (len == 2 && !body[1] && (body[0] == 'T' || body[0] == 'F'))
				body[0] = 'X';
		}
		req = xbt_next_req++;
		nbad++;
		if (send_msg(fd, XS_TRANSACTION_END, req, tx, body, len) || recv_msg(fd, &m, 5000)) {
			ck_fail(&c, "END with a %u-byte body: no reply", len);
			continue;
		}
		if (!is_error(&m, "EINVAL") || m.h.req_id != req || m.h.tx_id != tx)
			ck_fail(&c, "END tx %u with a %u-byte body: %s, want EINVAL", tx, len, describe(&m));
		else
			ck_ok(&c);
		if (i % 100 == 0) { /* the transaction is still open and usable */
			static const char path[] = BASE "/present";

			if (xcall(fd, XS_READ, t, path, sizeof(path), &m, NULL) || !ok_reply(&m, XS_READ))
				ck_fail(&c, "tx %u after bad ENDs: read %s", t, describe(&m));
		}
	}
	if (!tx_end(fd, t, false, &m))
		ck_fail(&c, "a proper abort of tx %u after the bad ones: %s", t, describe(&m));
	else
		ck_ok(&c);
	close(fd);
	ck_done(&c, NULL);
}

/* --- strings ---------------------------------------------------------------------------------- */

static void t_watch_unterminated(void)
{
	struct check c = { .name = "dev.fuzz.watch_unterminated_einval" };
	int fd = dev_open(0), i;
	unsigned int events = 0;
	char pl[256];
	struct xmsg m;

	for (i = 0; c.fails < 20 && fd >= 0 && i < 1500; i++) {
		uint32_t type = i % 2 ? XS_UNWATCH : XS_WATCH, len, req = xbt_next_req++;

		switch (i % 6) {
		case 0:
			len = 0;
			break;
		case 1: /* the path without its NUL */
			len = strlen(BASE "/w");
			memcpy(pl, BASE "/w", len);
			break;
		case 2: /* the token without its NUL */
			len = payload2(pl, BASE "/w", "tok", true);
			break;
		case 3: /* a lone NUL */
			pl[0] = 0;
			len = 1;
			break;
		case 4: /* random bytes with one NUL somewhere before the end */
			len = 2 + rnd() % 200;
			rnd_bytes(pl, len, true);
			pl[rnd() % (len - 1)] = 0;
			break;
		default: /* random bytes without NUL */
			len = 1 + rnd() % 250;
			rnd_bytes(pl, len, true);
			break;
		}
		nbad++;
		if (send_msg(fd, type, req, 0, pl, len) || recv_msg(fd, &m, 5000)) {
			ck_fail(&c, "type %u len %u: no reply", type, len);
			continue;
		}
		if (m.h.type == XS_WATCH_EVENT) {
			events++;
			ck_fail(&c, "a watch event after a malformed WATCH: %s", describe(&m));
		} else if (!is_error(&m, "EINVAL") || m.h.req_id != req) {
			ck_fail(&c, "%s with a %u-byte payload (variant %d): %s, want EINVAL",
				type == XS_WATCH ? "WATCH" : "UNWATCH", len, i % 6, describe(&m));
		} else {
			ck_ok(&c);
		}
	}
	/* Nothing may have been registered: a write of the node must not fire anything here. */
	if (fd >= 0) {
		if (xcall2(fd, XS_WRITE, 0, BASE "/w", "x", true, &m) || !ok_reply(&m, XS_WRITE))
			ck_fail(&c, "write " BASE "/w: %s", describe(&m));
		if (readable(fd, 500) && !recv_msg(fd, &m, 100))
			ck_fail(&c, "after the malformed WATCHes a write fired %s", describe(&m));
		else
			ck_ok(&c);
		close(fd);
	}
	ck_done(&c, NULL);
}

static void t_read_unterminated(void)
{
	static const uint32_t types[] = { XS_READ, XS_DIRECTORY, XS_GET_PERMS };
	struct check c = { .name = "dev.fuzz.read_unterminated_error" };
	unsigned int nerr[3] = { 0 };
	int fd = dev_open(0), i;
	char pl[256];
	struct xmsg m;

	for (i = 0; c.fails < 20 && fd >= 0 && i < 400; i++) {
		uint32_t type = i < 300 ? XS_READ : types[rnd() % 3], len, req = xbt_next_req++;

		switch (i % 3) {
		case 0:
			len = strlen(BASE "/present");
			memcpy(pl, BASE "/present", len);
			break;
		case 1:
			len = 0;
			break;
		default:
			len = 1 + rnd() % 250;
			rnd_bytes(pl, len, true);
			break;
		}
		nbad++;
		if (send_msg(fd, type, req, 0, pl, len) || recv_msg(fd, &m, 5000)) {
			ck_fail(&c, "type %u len %u: no reply", type, len);
			continue;
		}
		/* xenstored decides (4.17 treats a missing final NUL leniently); we want its error. */
		if (!is_some_error(&m) || m.h.req_id != req || m.h.tx_id != 0) {
			ck_fail(&c, "type %u with an unterminated %u-byte path: %s, want an XS_ERROR", type,
				len, describe(&m));
		} else {
			ck_ok(&c);
			nerr[is_error(&m, "EINVAL") ? 0 : is_error(&m, "ENOENT") ? 1 : 2]++;
		}
	}
	if (fd >= 0)
		close(fd);
	ck_done(&c, "xenstored said EINVAL %u, ENOENT %u, other %u times", nerr[0], nerr[1], nerr[2]);
}

/*
 * Random headers: types xenstored does not know or refuses to an unprivileged guest must get an
 * XS_ERROR; read-only types with garbage payloads an XS_ERROR or a reply of their own type.
 * Excluded: types that change state (WRITE, MKDIR, RM, SET_PERMS, TRANSACTION_*, WATCH/UNWATCH)
 * and RESET_WATCHES, which the C device forwards (it would drop the kernel's own watches).
 */
static void t_garbage(void)
{
	static const uint32_t refused[] = { XS_CONTROL, XS_INTRODUCE, XS_RELEASE, XS_RESUME,
					    XS_SET_TARGET, XS_WATCH_EVENT, XS_ERROR, 20 };
	static const uint32_t readonly[] = { XS_DIRECTORY, XS_READ, XS_GET_PERMS, XS_GET_DOMAIN_PATH,
					     XS_IS_DOMAIN_INTRODUCED, XS_DIRECTORY_PART };
	struct check c = { .name = "dev.fuzz.garbage_headers" };
	int fd = dev_open(0), i;
	unsigned int nerr = 0, nsame = 0;
	char pl[300];
	struct xmsg m;

	for (i = 0; c.fails < 20 && fd >= 0 && i < 1000; i++) {
		bool ro = i % 4 == 3;
		uint32_t type, len = rnd() % 300, req = rnd();

		if (ro)
			type = readonly[rnd() % (sizeof(readonly) / sizeof(readonly[0]))];
		else if (i % 4 == 0)
			type = refused[rnd() % (sizeof(refused) / sizeof(refused[0]))];
		else
			type = XS_TYPE_COUNT + rnd() % (i % 2 ? 0xffffffffu - XS_TYPE_COUNT : 1000);
		rnd_bytes(pl, len, false);
		nbad++;
		if (send_msg(fd, type, req, 0, pl, len) || recv_msg(fd, &m, 5000)) {
			ck_fail(&c, "type %u len %u: no reply (%s)", type, len, strerror(errno));
			continue;
		}
		if (m.h.req_id != req || m.h.tx_id != 0)
			ck_fail(&c, "type %u: reply %s for req %u", type, describe(&m), req);
		else if (is_some_error(&m))
			nerr++, ck_ok(&c);
		else if (ro && m.h.type == type)
			nsame++, ck_ok(&c);
		else
			ck_fail(&c, "type %u with %u garbage bytes: %s", type, len, describe(&m));
	}
	if (fd >= 0)
		close(fd);
	ck_done(&c, "%u error replies, %u read-only replies", nerr, nsame);
}

/* --- reading ---------------------------------------------------------------------------------- */

/* A value close to xenstored's node-size quota (2048 by default). */
#define VLEN 1999
static void t_tiny_reads(void)
{
	struct check c = { .name = "dev.read_tiny_buffers" };
	static char val[VLEN + 1], pl[VLEN + 200];
	int fd = dev_open(0), i;
	struct xmsg m;
	uint32_t len;

	for (i = 0; i < VLEN; i++)
		val[i] = 'A' + (i * 7 + i / 26) % 26;
	len = payload2(pl, BASE "/big", val, true);
	if (fd < 0 || xcall(fd, XS_WRITE, 0, pl, len, &m, NULL) || !ok_reply(&m, XS_WRITE)) {
		say_fail(c.name, "cannot write " BASE "/big: %s", describe(&m));
		if (fd >= 0)
			close(fd);
		return;
	}
	for (i = 0; c.fails < 20 && i < 60; i++) {
		size_t chunk = i % 3 == 0 ? 1 : 1 + rnd() % 17;
		uint32_t req = xbt_next_req++;
		static const char path[] = BASE "/big";

		if (send_msg(fd, XS_READ, req, 0, path, sizeof(path)) ||
		    recv_msg_chunked(fd, &m, chunk, 5000)) {
			ck_fail(&c, "reading a reply %zu bytes at a time failed", chunk);
			continue;
		}
		if (m.h.type != XS_READ || m.h.req_id != req || m.h.len != VLEN || memcmp(m.body, val, VLEN))
			ck_fail(&c, "reassembled (chunks of %zu) %s", chunk, describe(&m));
		else
			ck_ok(&c);
	}
	/* Poll keeps reporting the rest of a partly read reply; read() spans queued messages. */
	{
		uint32_t r1, r2;
		static const char path[] = BASE "/present";
		char both[256];
		ssize_t n;

		if (send_msg(fd, XS_READ, (r1 = xbt_next_req++), 0, path, sizeof(path)) || !readable(fd, 5000) ||
		    read(fd, &m, 1) != 1 || !readable(fd, 0))
			ck_fail(&c, "poll after reading 1 byte of a reply does not report the rest");
		else if (read_exact(fd, (char *)&m + 1, HDR - 1 + 4, 0, 5000) || m.h.req_id != r1 || m.h.len != 4)
			ck_fail(&c, "rest of a partly read reply: %s", describe(&m));
		else
			ck_ok(&c);
		/* Two kernel-local replies queued, one read() with a big buffer gets both. */
		r1 = xbt_next_req++;
		r2 = xbt_next_req++;
		nbad += 2;
		send_msg(fd, XS_READ, r1, foreign_tx(), path, sizeof(path));
		send_msg(fd, XS_READ, r2, foreign_tx(), path, sizeof(path));
		n = read(fd, both, sizeof(both));
		if (n != 2 * (HDR + 7) || ((struct xsd_sockmsg *)both)->req_id != r1 ||
		    ((struct xsd_sockmsg *)(both + HDR + 7))->req_id != r2)
			ck_fail(&c, "one big read() of two queued 23-byte replies returned %zd", n);
		else
			ck_ok(&c);
	}
	/* A watch event read byte by byte (fired by a write from another file). */
	{
		char wpl[128];
		uint32_t wlen = payload2(wpl, BASE "/present", "tinytok", false);
		int fd2 = dev_open(0);

		if (fd2 < 0 || xcall(fd, XS_WATCH, 0, wpl, wlen, &m, NULL) || !ok_reply(&m, XS_WATCH)) {
			ck_fail(&c, "watch: %s", describe(&m));
		} else {
			while (readable(fd, 1000)) /* the registration event */
				recv_msg(fd, &m, 1000);
			if (xcall2(fd2, XS_WRITE, 0, BASE "/present", "here", true, &m) ||
			    recv_msg_chunked(fd, &m, 1, 5000))
				ck_fail(&c, "no event after a write");
			else if (m.h.type != XS_WATCH_EVENT || m.h.len != sizeof(BASE "/present") + 8 ||
				 strcmp(m.body, BASE "/present") ||
				 strcmp(m.body + sizeof(BASE "/present"), "tinytok"))
				ck_fail(&c, "event read byte by byte: %s", describe(&m));
			else
				ck_ok(&c);
			xcall(fd, XS_UNWATCH, 0, wpl, wlen, &m, NULL);
		}
		if (fd2 >= 0)
			close(fd2);
	}
	close(fd);
	ck_done(&c, NULL);
}

static volatile sig_atomic_t got_alarm;
static void on_alarm(int sig)
{
	(void)sig;
	got_alarm = 1;
}

static void t_nonblock_poll(void)
{
	struct check c = { .name = "dev.nonblock_poll_select" };
	static const char path[] = BASE "/present";
	int fd = dev_open(O_NONBLOCK), bfd = dev_open(0);
	struct timeval tv = { 0, 0 };
	struct sigaction sa;
	struct xmsg m;
	fd_set rs;
	char b[64];
	double t0;
	uint32_t req;
	ssize_t n;

	if (fd < 0 || bfd < 0) {
		say_fail(c.name, "open: %s", strerror(errno));
		return;
	}
	n = read(fd, b, sizeof(b));
	if (n != -1 || errno != EAGAIN)
		ck_fail(&c, "O_NONBLOCK read with nothing queued returned %zd (%s)", n, strerror(errno));
	else
		ck_ok(&c);
	FD_ZERO(&rs);
	FD_SET(fd, &rs);
	if (readable(fd, 0) || select(fd + 1, &rs, NULL, NULL, &tv) != 0)
		ck_fail(&c, "poll/select report an empty file readable");
	else
		ck_ok(&c);
	/* A real round trip: poll and select wake up when the reply comes. */
	req = xbt_next_req++;
	send_msg(fd, XS_READ, req, 0, path, sizeof(path));
	t0 = now();
	if (!readable(fd, 5000))
		ck_fail(&c, "poll: no reply within 5 s");
	else
		ck_ok(&c);
	FD_ZERO(&rs);
	FD_SET(fd, &rs);
	tv.tv_sec = 5;
	if (select(fd + 1, &rs, NULL, NULL, &tv) != 1 || !FD_ISSET(fd, &rs))
		ck_fail(&c, "select does not report a queued reply");
	else
		ck_ok(&c);
	if (recv_msg(fd, &m, 1000) || m.h.req_id != req || !ok_reply(&m, XS_READ) || strcmp(m.body, "here"))
		ck_fail(&c, "O_NONBLOCK reply: %s", describe(&m));
	else
		ck_ok(&c);
	n = read(fd, b, sizeof(b));
	if (n != -1 || errno != EAGAIN || readable(fd, 0))
		ck_fail(&c, "after reading everything: read %zd (%s), poll says readable %d", n,
			strerror(errno), readable(fd, 0));
	else
		ck_ok(&c);
	/* Blocking read: interrupted by a signal without SA_RESTART, it fails with EINTR. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	got_alarm = 0;
	alarm(1);
	t0 = now();
	n = read(bfd, b, sizeof(b));
	if (n != -1 || errno != EINTR || !got_alarm || now() - t0 < 0.5)
		ck_fail(&c, "blocking read on an empty file: %zd (%s) after %.2f s, want EINTR after 1 s", n,
			strerror(errno), now() - t0);
	else
		ck_ok(&c);
	alarm(0);
	signal(SIGALRM, SIG_DFL);
	/* And the file still works after the interrupted read. */
	if (xcall(bfd, XS_READ, 0, path, sizeof(path), &m, NULL) || strcmp(m.body, "here"))
		ck_fail(&c, "round trip after EINTR: %s", describe(&m));
	else
		ck_ok(&c);
	close(fd);
	close(bfd);
	ck_done(&c, NULL);
}

/*
 * Requests pipelined on one file (each in its own write(), replies read afterwards) must each be
 * sent with its own payload: every READ must come back with the value of the node it named.
 */
static void t_pipelined(void)
{
	struct check c = { .name = "dev.pipelined_requests_keep_payloads" };
	int fd, i, j;
	char p[64], v[32];
	struct xmsg m;

	if (!rust) {
		say_skip(c.name, "C core bug: xenbus_dev_request_and_reply() sends the payload from the "
		     "file's buffer after write() returned, so the next write() can overwrite it");
		return;
	}
	fd = dev_open(0);
	for (j = 0; fd >= 0 && j < 8; j++) {
		snprintf(p, sizeof(p), BASE "/pipe/k%d", j);
		snprintf(v, sizeof(v), "value-of-k%d", j);
		if (xcall2(fd, XS_WRITE, 0, p, v, true, &m) || !ok_reply(&m, XS_WRITE))
			ck_fail(&c, "write %s: %s", p, describe(&m));
	}
	for (i = 0; c.fails < 20 && fd >= 0 && i < 50; i++) {
		uint32_t req0 = xbt_next_req;

		for (j = 0; j < 8; j++) {
			snprintf(p, sizeof(p), BASE "/pipe/k%d", (i + j) % 8);
			send_msg(fd, XS_READ, req0 + j, 0, p, strlen(p) + 1);
		}
		xbt_next_req += 8;
		for (j = 0; j < 8; j++) {
			uint32_t k;

			if (recv_msg(fd, &m, 5000) || (k = m.h.req_id - req0) >= 8) {
				ck_fail(&c, "reply %d of 8: %s", j, describe(&m));
				break;
			}
			snprintf(v, sizeof(v), "value-of-k%u", (i + k) % 8);
			if (!ok_reply(&m, XS_READ) || strcmp(m.body, v))
				ck_fail(&c, "READ of k%u (pipelined, %u of 8) answered %s", (i + k) % 8, k + 1,
					describe(&m));
			else
				ck_ok(&c);
		}
	}
	if (fd >= 0)
		close(fd);
	ck_done(&c, NULL);
}

/* --- documented differences ---------------------------------------------------------------- */

/* Several complete messages in one write(): all answered (Rust), only the first (C). */
static void t_multi_message_write(void)
{
	struct check c = { .name = rust ? "dev.rust.multi_message_write_all_processed"
					: "dev.c.multi_message_write_first_only" };
	static const char path[] = BASE "/present";
	char buf[8 * (HDR + 64)];
	uint32_t reqs[5], tx[5];
	size_t off = 0;
	int fd = dev_open(0), i, nrep = 0, want = rust ? 5 : 1, iter;
	struct xmsg m;

	for (iter = 0; fd >= 0 && iter < 10; iter++) {
		off = 0;
		for (i = 0; i < 5; i++) {
			reqs[i] = xbt_next_req++;
			/* Mixed: kernel-local ENOENT replies and real reads. */
			tx[i] = i % 2 ? 0 : foreign_tx();
			off += build_msg(buf + off, XS_READ, reqs[i], tx[i], path, sizeof(path));
		}
		if (wr(fd, buf, off) != (ssize_t)off) {
			ck_fail(&c, "a write of 5 messages (%zu bytes) was not accepted whole", off);
			continue;
		}
		nbad += 3;
		for (nrep = 0; nrep < 5 && readable(fd, nrep < want ? 5000 : 300); nrep++) {
			if (recv_msg(fd, &m, 1000))
				break;
			/* Kernel-local replies come at once, xenstored's later: match by req_id. */
			for (i = 0; i < 5 && m.h.req_id != reqs[i]; i++)
				;
			if (i == 5 || m.h.tx_id != tx[i] ||
			    (tx[i] ? !is_error(&m, "ENOENT") : strcmp(m.body, "here"))) {
				ck_fail(&c, "unexpected reply %s", describe(&m));
			} else {
				reqs[i] = 0; /* each one once */
			}
		}
		if (nrep != want)
			ck_fail(&c, "%d replies to one write of 5 messages, want %d", nrep, want);
		else if (probe(fd, &c, "after a multi-message write"))
			ck_ok(&c);
	}
	if (fd >= 0)
		close(fd);
	ck_done(&c, NULL);
}

static void t_reset_watches(void)
{
	struct check c = { .name = "dev.rust.reset_watches_refused" };
	int fd, i;
	struct xmsg m;

	if (!rust) {
		say_skip(c.name, "the C device forwards RESET_WATCHES (it would drop the kernel's watches)");
		return;
	}
	fd = dev_open(0);
	for (i = 0; c.fails < 20 && fd >= 0 && i < 20; i++) {
		uint32_t req = xbt_next_req++;

		nbad++;
		if (send_msg(fd, XS_RESET_WATCHES, req, 0, "", i % 2) || recv_msg(fd, &m, 5000) ||
		    !is_error(&m, "EACCES") || m.h.req_id != req)
			ck_fail(&c, "RESET_WATCHES: %s, want EACCES", describe(&m));
		else
			ck_ok(&c);
	}
	if (fd >= 0)
		close(fd);
	ck_done(&c, NULL);
}

/* --- watch floods ------------------------------------------------------------------------------ */

/*
 * dom0 writes FLOOD/0 .. FLOOD/N-1 as fast as xenstored goes (the agent's pipelined flood) while
 * a file watches FLOOD. The nodes are distinct because xenstored merges an event with an identical
 * one still queued for the domain. Each event names its node, so we know exactly which arrived.
 */
#define FLOOD BASE "/flood"
#define FLOOD_N 1200

struct flood_count {
	unsigned int events, bad, replies, disorder;
	int last;
	unsigned char seen[FLOOD_N];
	char why[200];
};

static void flood_event(struct flood_count *fc, const struct xmsg *m)
{
	size_t pl = strlen(m->body), base = strlen(FLOOD "/");
	char *end;
	long j;

	if (pl >= m->h.len || strcmp(m->body + pl + 1, "flood") || strncmp(m->body, FLOOD "/", base))
		goto bad;
	j = strtol(m->body + base, &end, 10);
	if (*end || end == m->body + base || j < 0 || j >= FLOOD_N || fc->seen[j]++)
		goto bad;
	if (fc->events++ && j < fc->last)
		fc->disorder++;
	fc->last = j;
	return;
bad:
	if (!fc->bad++)
		snprintf(fc->why, sizeof(fc->why), "unexpected or repeated event %s", describe(m));
}

/* Everything queued on fd until quiet_ms of silence: events, and READ replies in [lo, hi). */
static void drain(int fd, struct flood_count *fc, int quiet_ms, uint32_t lo, uint32_t hi,
		  unsigned char *rseen)
{
	struct xmsg m;

	while (readable(fd, quiet_ms) && !recv_msg(fd, &m, 1000)) {
		if (m.h.type == XS_WATCH_EVENT && !strcmp(m.body, FLOOD))
			continue; /* the registration event */
		if (m.h.type == XS_WATCH_EVENT)
			flood_event(fc, &m);
		else if (m.h.req_id >= lo && m.h.req_id < hi && !rseen[m.h.req_id - lo]++ &&
			 ok_reply(&m, XS_READ) && !strcmp(m.body, "here"))
			fc->replies++;
		else if (!fc->bad++)
			snprintf(fc->why, sizeof(fc->why), "unexpected reply %s", describe(&m));
	}
}

/* The first n nodes, and only those, were reported. */
static bool first_n(const struct flood_count *fc, unsigned int n)
{
	unsigned int j;

	for (j = 0; j < FLOOD_N; j++)
		if (fc->seen[j] != (j < n))
			return false;
	return fc->events == n;
}

/* Wait until every event xenstored sent before now has been handed to the files. */
static bool sentinel(int sfd, int n)
{
	double end = now() + 30;
	unsigned int ev = 0;
	char v[32], pl[64];
	struct xmsg m;

	snprintf(v, sizeof(v), "%d", n);
	/* xenstored may queue the event before the reply: xcall counts it. */
	if (xcall(sfd, XS_WRITE, 0, pl, payload2(pl, BASE "/sentinel", v, true), &m, &ev))
		return false;
	if (ev)
		return true;
	while (now() < end)
		if (!recv_msg(sfd, &m, 1000) && m.h.type == XS_WATCH_EVENT)
			return true;
	return false;
}

/* Removes the flood's nodes (xenstored counts them against the guest's node quota). */
static void flood_cleanup(int fd)
{
	struct xmsg m;

	xcall2(fd, XS_RM, 0, FLOOD, NULL, false, &m);
	xcall2(fd, XS_WRITE, 0, FLOOD, "", true, &m);
}

struct slow_reader {
	int fd;
	volatile int stop;
	struct flood_count fc;
};

static void *slow_reader_main(void *arg)
{
	struct slow_reader *sr = arg;

	while (!sr->stop) {
		struct xmsg m;

		if (!readable(sr->fd, 100) || recv_msg(sr->fd, &m, 1000))
			continue;
		if (m.h.type == XS_WATCH_EVENT && !strcmp(m.body, FLOOD))
			continue;
		if (m.h.type != XS_WATCH_EVENT) {
			if (!sr->fc.bad++)
				snprintf(sr->fc.why, sizeof(sr->fc.why), "unexpected %s", describe(&m));
			continue;
		}
		flood_event(&sr->fc, &m);
		msleep(5); /* a slow reader */
	}
	return NULL;
}

static void t_watch_flood(void)
{
	const unsigned int NREQ = 40;
	struct check c = { .name = rust ? "dev.rust.watch_flood_capped_at_1000" : "dev.c.watch_flood_all_delivered" };
	struct check slow = { .name = "dev.watch_flood_slow_reader" };
	static const char path[] = BASE "/present";
	static struct flood_count fc;
	unsigned char rseen[64] = { 0 };
	int fd = dev_open(0), sfd = dev_open(0), i;
	char wpl[128], spl[128];
	uint32_t wlen, slen, req_lo;
	struct xmsg m;
	double t0;

	memset(&fc, 0, sizeof(fc));
	wlen = payload2(wpl, FLOOD, "flood", false);
	slen = payload2(spl, BASE "/sentinel", "sentinel", false);
	if (!dom0_cmd(AGENT_SEQ, 30, "quota nodes 20000")) {
		say_fail(c.name, "the dom0 agent could not raise xenstored's node quota");
		goto out;
	}
	if (fd < 0 || sfd < 0 || xcall2(fd, XS_WRITE, 0, FLOOD, "", true, &m) ||
	    xcall(fd, XS_WATCH, 0, wpl, wlen, &m, NULL) || !ok_reply(&m, XS_WATCH) ||
	    xcall(sfd, XS_WATCH, 0, spl, slen, &m, NULL) || !ok_reply(&m, XS_WATCH)) {
		say_fail(c.name, "setup: %s", describe(&m));
		goto out;
	}
	drain(fd, &fc, 1000, 0, 0, rseen); /* the registration event */
	while (readable(sfd, 500))
		recv_msg(sfd, &m, 500);
	memset(&fc, 0, sizeof(fc));

	info("watch flood: dom0 writes %u nodes below " FLOOD ", nobody reads", FLOOD_N);
	t0 = now();
	if (!dom0_cmd(AGENT_SEQ, 240, "flood " FLOOD " %u v", FLOOD_N)) {
		say_fail(c.name, "the dom0 agent did not complete the flood");
		goto out;
	}
	if (!sentinel(sfd, 1)) {
		say_fail(c.name, "the sentinel event did not come");
		goto out;
	}
	msleep(300);
	info("watch flood: dom0 wrote %u nodes in %.1f s", FLOOD_N, now() - t0);
	/* Requests on the flooded file are answered, and their replies never lost. */
	req_lo = xbt_next_req;
	for (i = 0; i < (int)NREQ; i++)
		if (send_msg(fd, XS_READ, xbt_next_req++, 0, path, sizeof(path)))
			ck_fail(&c, "request %d on the flooded file: %s", i, strerror(errno));
	drain(fd, &fc, 1500, req_lo, req_lo + NREQ, rseen);
	if (fc.bad)
		ck_fail(&c, "%s", fc.why);
	if (fc.replies != NREQ)
		ck_fail(&c, "%u of %u replies arrived on the flooded file", fc.replies, NREQ);
	else
		ck_ok(&c);
	/* Rust: the oldest 1000 wait, newer ones are dropped. C: no bound. */
	if (!first_n(&fc, rust ? 1000 : FLOOD_N))
		ck_fail(&c, "%u events queued for %u writes (%u out of order), want exactly nodes 0..%u",
			fc.events, FLOOD_N, fc.disorder, (rust ? 1000 : FLOOD_N) - 1);
	else
		ck_ok(&c);
	/* The file keeps working: one more write, exactly one more event. */
	memset(&fc, 0, sizeof(fc));
	if (xcall2(sfd, XS_WRITE, 0, FLOOD "/0", "after", true, &m))
		ck_fail(&c, "write after the flood failed");
	drain(fd, &fc, 1500, 0, 0, rseen);
	if (fc.events != 1 || !fc.seen[0] || fc.bad)
		ck_fail(&c, "after draining, one write gave %u events (%s)", fc.events, fc.why);
	else
		ck_ok(&c);
	ck_done(&c, NULL);

	/* Again with a slow reader running while dom0 writes. */
	flood_cleanup(sfd);
	while (readable(fd, 1000))
		recv_msg(fd, &m, 1000);
	{
		static struct slow_reader sr;
		pthread_t th;

		memset(&sr, 0, sizeof(sr));
		sr.fd = fd;
		if (pthread_create(&th, NULL, slow_reader_main, &sr)) {
			say_fail(slow.name, "pthread_create");
			goto out;
		}
		t0 = now();
		if (!dom0_cmd(AGENT_SEQ, 240, "flood " FLOOD " %u s", FLOOD_N))
			ck_fail(&slow, "the dom0 agent did not complete the flood");
		if (!sentinel(sfd, 2))
			ck_fail(&slow, "the sentinel event did not come");
		msleep(500);
		sr.stop = 1;
		pthread_join(th, NULL);
		drain(fd, &sr.fc, 1000, 0, 0, rseen);
		info("slow reader: %u of %u events in %.1f s", sr.fc.events, FLOOD_N, now() - t0);
		if (sr.fc.bad)
			ck_fail(&slow, "%s", sr.fc.why);
		/* C: everything arrives. Rust: at most 1000 wait, none invented, none repeated. */
		else if (rust ? sr.fc.events < 1000 || sr.fc.events > FLOOD_N : !first_n(&sr.fc, FLOOD_N))
			ck_fail(&slow, "%u events for %u writes", sr.fc.events, FLOOD_N);
		else if (sr.fc.disorder)
			ck_fail(&slow, "%u events out of order", sr.fc.disorder);
		else
			ck_ok(&slow);
		if (xcall(fd, XS_READ, 0, path, sizeof(path), &m, NULL) || strcmp(m.body, "here"))
			ck_fail(&slow, "round trip after the flood: %s", describe(&m));
		else
			ck_ok(&slow);
		ck_done(&slow, NULL);
	}
out:
	if (fd >= 0) {
		xcall(fd, XS_UNWATCH, 0, wpl, wlen, &m, NULL);
		flood_cleanup(fd);
		close(fd);
	}
	if (sfd >= 0)
		close(sfd);
	if (!dom0_cmd(AGENT_SEQ, 30, "quota nodes restore"))
		info("the dom0 agent could not restore xenstored's node quota");
}

/* --- bounds ------------------------------------------------------------------------------------ */

/*
 * Rust: at most 128 requests in flight + unread replies per file: the 129th O_NONBLOCK write is
 * EAGAIN, a blocking writer waits until the reader catches up, no reply is lost. C: no bound.
 */
static void t_outstanding_bound(void)
{
	struct check c = { .name = rust ? "dev.rust.outstanding_bound_128" : "dev.c.outstanding_unbounded" };
	static const char path[] = BASE "/present";
	int fd = dev_open(O_NONBLOCK), i, accepted = 0, pfd[2];
	uint32_t req0 = xbt_next_req, want = rust ? 128 : 200;
	unsigned char seen[200];
	struct xmsg m;

	for (i = 0; fd >= 0 && i < 200; i++) {
		int r = send_msg(fd, XS_READ, req0 + i, i % 2 ? 0 : foreign_tx(), path, sizeof(path));

		if (r == -EAGAIN)
			break;
		if (r) {
			ck_fail(&c, "O_NONBLOCK write %d: %s", i, strerror(-r));
			break;
		}
		accepted++;
	}
	xbt_next_req += 200;
	if ((uint32_t)accepted != want)
		ck_fail(&c, "%d O_NONBLOCK writes accepted before EAGAIN, want %u", accepted, want);
	else
		ck_ok(&c);
	/* Kernel-local replies come at once, xenstored's later: each req_id exactly once. */
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < accepted; i++) {
		if (recv_msg(fd, &m, 5000) || m.h.req_id - req0 >= (uint32_t)accepted || seen[m.h.req_id - req0]++) {
			ck_fail(&c, "reply %d of %d: %s", i, accepted, describe(&m));
			break;
		}
	}
	if (i == accepted)
		ck_ok(&c);
	if (fd >= 0)
		close(fd);

	/* A blocking writer of 130 requests; the reader starts late. */
	fd = dev_open(0);
	if (fd < 0 || pipe(pfd)) {
		ck_fail(&c, "open/pipe");
	} else {
		pid_t pid;
		char tick[200];
		ssize_t nt;
		int got = 0;

		req0 = xbt_next_req;
		xbt_next_req += 130;
		pid = fork();
		if (pid == 0) {
			close(pfd[0]);
			for (i = 0; i < 130; i++) {
				if (send_msg(fd, XS_READ, req0 + i, i % 2 ? 0 : foreign_tx(), path, sizeof(path)))
					_exit(1);
				if (write(pfd[1], "x", 1) != 1)
					_exit(2);
			}
			_exit(0);
		}
		close(pfd[1]);
		msleep(1500);
		fcntl(pfd[0], F_SETFL, O_NONBLOCK);
		nt = read(pfd[0], tick, sizeof(tick));
		if (nt < 0)
			nt = 0;
		if (nt != (rust ? 128 : 130))
			ck_fail(&c, "blocking writer got %zd requests out before anyone read, want %d", nt,
				rust ? 128 : 130);
		else
			ck_ok(&c);
		memset(seen, 0, sizeof(seen));
		for (i = 0; i < 130; i++) {
			if (recv_msg(fd, &m, 10000) || m.h.req_id - req0 >= 130 || seen[m.h.req_id - req0]++)
				break;
			got++;
		}
		if (got != 130)
			ck_fail(&c, "%d of 130 replies to the blocking writer (last %s)", got, describe(&m));
		else
			ck_ok(&c);
		{
			int st = -1;

			waitpid(pid, &st, 0);
			if (!WIFEXITED(st) || WEXITSTATUS(st))
				ck_fail(&c, "blocking writer exited with %#x", st);
		}
		close(pfd[0]);
		close(fd);
	}
	ck_done(&c, NULL);
}

/* xenstored's count once it stopped changing (closes elsewhere may still be cleaning up). */
static long settled_quota(const char *what)
{
	long prev = quota_value(AGENT_SEQ, what), v = prev;
	int i;

	for (i = 0; i < 20; i++) {
		msleep(300);
		v = quota_value(AGENT_SEQ, what);
		if (v == prev)
			break;
		prev = v;
	}
	return v;
}

/*
 * Rust: 64 transactions and 256 watches per file. xenstored's own per-domain quotas (10+1
 * transactions, 128 watches) are lower, so the agent raises them for this test. C: no bound.
 */
static void t_per_file_limits(void)
{
	struct check c = { .name = rust ? "dev.rust.per_file_limits" : "dev.c.no_per_file_limits" };
	int fd = -1, fd2 = -1, i, ntx = 0;
	uint32_t txs[70];
	struct xmsg m;
	long base_w, base_t, w;

	base_w = settled_quota("watches");
	base_t = settled_quota("transactions");
	if (base_w < 0 || base_t < 0 ||
	    !dom0_cmd(AGENT_SEQ, 30, "quota transactions 200") || !dom0_cmd(AGENT_SEQ, 30, "quota watches 1000")) {
		say_fail(c.name, "the dom0 agent could not read/raise xenstored's quotas");
		goto restore;
	}
	fd = dev_open(0);
	fd2 = dev_open(0);
	for (i = 0; c.fails < 20 && fd >= 0 && i < 65; i++) {
		uint32_t t = tx_start(fd, &m);

		if (t)
			txs[ntx++] = t;
		else if (!(rust && i == 64 && is_error(&m, "ENOSPC")))
			ck_fail(&c, "transaction %d: %s", i + 1, describe(&m));
	}
	if (ntx != (rust ? 64 : 65))
		ck_fail(&c, "%d transactions on one file, want %d", ntx, rust ? 64 : 65);
	else
		ck_ok(&c);
	/* The bound is per file: another file can still start one. */
	{
		uint32_t t = fd2 >= 0 ? tx_start(fd2, &m) : 0;

		if (!t || !tx_end(fd2, t, false, &m))
			ck_fail(&c, "a transaction on a second file: %s", describe(&m));
		else
			ck_ok(&c);
	}
	for (i = 0; i < ntx; i++)
		if (!tx_end(fd, txs[i], false, &m))
			ck_fail(&c, "ending transaction %u: %s", txs[i], describe(&m));

	for (i = 0; c.fails < 20 && fd >= 0 && i < 257; i++) {
		char pl[128], p[64], t[32];
		uint32_t len;
		unsigned int ev = 0;

		snprintf(p, sizeof(p), BASE "/wl/%d", i);
		snprintf(t, sizeof(t), "t%d", i);
		len = payload2(pl, p, t, false);
		if (xcall(fd, XS_WATCH, 0, pl, len, &m, &ev))
			ck_fail(&c, "watch %d: %s", i + 1, strerror(errno));
		else if (ok_reply(&m, XS_WATCH))
			ck_ok(&c);
		else if (!(rust && i == 256 && is_error(&m, "ENOSPC")))
			ck_fail(&c, "watch %d: %s", i + 1, describe(&m));
		else
			ck_ok(&c);
		if (i == 256 && rust && ok_reply(&m, XS_WATCH))
			ck_fail(&c, "the 257th watch on one file was accepted");
	}
	w = quota_value(AGENT_SEQ, "watches");
	if (w != base_w + (rust ? 256 : 257))
		ck_fail(&c, "xenstored counts %ld watches, want %ld + %d", w, base_w, rust ? 256 : 257);
	else
		ck_ok(&c);
	close(fd);
	fd = -1;
	/* Closing the file removes them all (maybe asynchronously). */
	for (i = 0; i < 30 && (w = quota_value(AGENT_SEQ, "watches")) != base_w; i++)
		msleep(500);
	if (w != base_w)
		ck_fail(&c, "after close xenstored still counts %ld watches, had %ld before", w, base_w);
	else
		ck_ok(&c);
restore:
	if (!dom0_cmd(AGENT_SEQ, 30, "quota transactions restore") ||
	    !dom0_cmd(AGENT_SEQ, 30, "quota watches restore"))
		ck_fail(&c, "the dom0 agent could not restore xenstored's quotas");
	if (fd >= 0)
		close(fd);
	if (fd2 >= 0)
		close(fd2);
	ck_done(&c, NULL);
}

/* --- close with everything open ---------------------------------------------------------------- */

/*
 * Raises xenstored's transaction quota for a test that may leak transactions, so that a leak is
 * measured (xenstored's per-domain count) instead of starving the rest of the suite. The agent's
 * restore adds back whatever this domain still holds: leaked transactions stay counted against
 * the domain until it dies.
 */
static bool tx_quota_raise(void)
{
	return dom0_cmd(AGENT_SEQ, 30, "quota transactions 1000");
}

static void tx_quota_restore(void)
{
	if (!dom0_cmd(AGENT_SEQ, 30, "quota transactions restore"))
		info("the dom0 agent could not restore xenstored's transaction quota");
}

/* Waits until xenstored's counts are back to the baseline; returns false if they never are. */
static bool counts_settle(long base_w, long base_t, long *w, long *t)
{
	int i;

	for (i = 0; i < 12; i++) {
		*w = quota_value(AGENT_SEQ, "watches");
		*t = quota_value(AGENT_SEQ, "transactions");
		if (*w == base_w && *t == base_t)
			return true;
		msleep(500);
	}
	return false;
}

/* One file opened, loaded with state of the given kind, and closed. */
static void close_one(struct check *c, int i, int kind)
{
	static const char path[] = BASE "/present";
	char pl[160], tok[32], part[HDR];
	int fd = dev_open(0), k;
	uint32_t len, tx = 0;
	struct xmsg m;

	if (fd < 0) {
		ck_fail(c, "open %d: %s", i, strerror(errno));
		return;
	}
	switch (kind) {
	case 0: /* a TRANSACTION_START still in flight at close */
		send_msg(fd, XS_TRANSACTION_START, xbt_next_req++, 0, "", 1);
		break;
	case 1: /* open transaction with a write, two watches, unread replies, partial message */
	case 2:
		if (!(tx = tx_start(fd, &m))) {
			ck_fail(c, "iteration %d: transaction: %s", i, describe(&m));
			break;
		}
		len = payload2(pl, BASE "/close/tx", "must-not-appear", true);
		if (xcall(fd, XS_WRITE, tx, pl, len, &m, NULL) || !ok_reply(&m, XS_WRITE))
			ck_fail(c, "iteration %d: write in tx %u: %s", i, tx, describe(&m));
		for (k = 0; k < 2; k++) {
			snprintf(tok, sizeof(tok), "close%d.%d", i, k);
			len = payload2(pl, k ? path : BASE "/close", tok, false);
			if (xcall(fd, XS_WATCH, 0, pl, len, &m, NULL) || !ok_reply(&m, XS_WATCH))
				ck_fail(c, "iteration %d: watch: %s", i, describe(&m));
		}
		for (k = 0; k < 3; k++)
			send_msg(fd, XS_READ, xbt_next_req++, kind == 1 ? tx : 0, path, sizeof(path));
		build_msg(part, XS_WRITE, xbt_next_req++, 0, NULL, 0);
		((struct xsd_sockmsg *)part)->len = 100;
		if (wr(fd, part, 1 + i % (HDR - 1)) < 0)
			ck_fail(c, "partial write: %s", strerror(errno));
		break;
	default: /* watches with unread events and replies, nothing awaited */
		for (k = 0; k < 3; k++) {
			snprintf(tok, sizeof(tok), "c%d.%d", i, k);
			len = payload2(pl, path, tok, false);
			send_msg(fd, XS_WATCH, xbt_next_req++, 0, pl, len);
		}
		for (k = 0; k < 5; k++)
			send_msg(fd, XS_READ, xbt_next_req++, foreign_tx(), path, sizeof(path));
		break;
	}
	if (close(fd))
		ck_fail(c, "close %d: %s", i, strerror(errno));
	else
		ck_ok(c);
}

/*
 * Opens and closes files with state: kinds 1-3 (transactions, watches, unread replies, partial
 * messages) 150 times, kind 0 (a TRANSACTION_START in flight at close) 50 times. Afterwards
 * xenstored must count exactly the watches and transactions it counted before.
 */
static void t_close_everything(void)
{
	struct check c = { .name = "dev.close_with_everything_open" };
	struct check s = { .name = "dev.close_with_transaction_start_in_flight" };
	long base_w = settled_quota("watches"), base_t = settled_quota("transactions");
	long w = -1, t = -1;
	struct xmsg m;
	double t0 = now();
	int i;

	if (base_w < 0 || base_t < 0 || !tx_quota_raise()) {
		say_fail(c.name, "the dom0 agent could not report xenstored's counts or raise its quota");
		return;
	}
	for (i = 0; c.fails < 20 && i < 150; i++)
		close_one(&c, i, 1 + i % 3);
	info("close loop: 150 opens in %.1f s", now() - t0);
	if (!counts_settle(base_w, base_t, &w, &t)) {
		ck_fail(&c, "xenstored still counts %ld watches and %ld transactions, had %ld and %ld", w, t,
			base_w, base_t);
		base_w = w; /* measure the next scenario on its own */
		base_t = t;
	} else {
		ck_ok(&c);
	}
	{
		int fd = dev_open(0);

		if (fd < 0 || xcall2(fd, XS_READ, 0, BASE "/close/tx", NULL, false, &m) || !is_error(&m, "ENOENT"))
			ck_fail(&c, "a write inside a transaction closed with its file: %s", describe(&m));
		else
			ck_ok(&c);
		if (fd >= 0)
			close(fd);
	}
	ck_done(&c, "baseline %ld watches, %ld transactions", base_w, base_t);

	for (i = 0; s.fails < 20 && i < 50; i++)
		close_one(&s, i, 0);
	if (!counts_settle(base_w, base_t, &w, &t)) {
		ck_fail(&s, "50 files closed with a TRANSACTION_START in flight: xenstored counts %ld open "
			    "transactions, had %ld (the transactions leaked)", t, base_t);
	} else {
		ck_ok(&s);
	}
	ck_done(&s, NULL);
	tx_quota_restore();
}

/*
 * Rust only (several messages per write()): a TRANSACTION_END with tx_id 0 answered while a
 * TRANSACTION_START of the same file is in flight must not cost the file its new transaction.
 */
static void t_rust_end0_then_start(void)
{
	struct check c = { .name = "dev.rust.tx_end0_then_start_tracked" };
	static const char path[] = BASE "/present";
	long base_t, w, t;
	int fd, i;
	struct xmsg m;

	if (!rust) {
		say_skip(c.name, "needs several messages per write(), a Rust-device feature");
		return;
	}
	base_t = settled_quota("transactions");
	if (base_t < 0 || !tx_quota_raise()) {
		say_fail(c.name, "the dom0 agent could not report xenstored's counts or raise its quota");
		return;
	}
	fd = dev_open(0);
	for (i = 0; fd >= 0 && i < 3; i++) {
		char buf[2 * HDR + 8];
		uint32_t r1 = xbt_next_req++, r2 = xbt_next_req++, t = 0;
		size_t off = build_msg(buf, XS_TRANSACTION_END, r1, 0, "F", 2);
		struct xmsg a, b;

		off += build_msg(buf + off, XS_TRANSACTION_START, r2, 0, "", 1);
		nbad++;
		if (wr(fd, buf, off) != (ssize_t)off || recv_msg(fd, &a, 5000) || recv_msg(fd, &b, 5000)) {
			ck_fail(&c, "no replies to END(tx 0)+START in one write");
			break;
		}
		if (a.h.req_id == r2) { /* any order */
			m = a;
			a = b;
			b = m;
		}
		if (a.h.req_id != r1 || !is_some_error(&a) || b.h.req_id != r2 ||
		    !ok_reply(&b, XS_TRANSACTION_START) || !(t = strtoul(b.body, NULL, 10))) {
			ck_fail(&c, "replies %s and %s", describe(&a), describe(&b));
			continue;
		}
		if (xcall(fd, XS_READ, t, path, sizeof(path), &m, NULL) || !ok_reply(&m, XS_READ))
			ck_fail(&c, "the file lost its transaction %u: a read in it got %s", t, describe(&m));
		else
			ck_ok(&c);
		if (!tx_end(fd, t, false, &m))
			ck_fail(&c, "ending transaction %u: %s", t, describe(&m));
	}
	if (fd >= 0)
		close(fd);
	/* A lost transaction is never ended: xenstored keeps counting it. */
	if (counts_settle(quota_value(AGENT_SEQ, "watches"), base_t, &w, &t)) {
		ck_ok(&c);
	} else {
		ck_fail(&c, "xenstored counts %ld open transactions, had %ld before", t, base_t);
	}
	tx_quota_restore();
	ck_done(&c, NULL);
}

/* --- after the storm -------------------------------------------------------------------------- */

/* --- a reader stuck in copy_to_user ---------------------------------------------------------- */

struct stalled_read {
	int fd;
	void *buf;
	ssize_t got;
	int err;
};

static void *stalled_read_main(void *arg)
{
	struct stalled_read *r = arg;

	r->got = read(r->fd, r->buf, 4096);
	r->err = r->got < 0 ? errno : 0;
	return NULL;
}

/* A userfaultfd'd page that nobody has touched: copying into it waits until we say so. */
static int uffd_page(void **page)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	int uffd = syscall(SYS_userfaultfd, O_CLOEXEC);

	if (uffd < 0)
		return -1;
	*page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	reg.range.start = (unsigned long)*page;
	reg.range.len = 4096;
	if (*page == MAP_FAILED || ioctl(uffd, UFFDIO_API, &api) || ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		close(uffd);
		return -1;
	}
	return uffd;
}

/*
 * A reader whose buffer faults on slow memory (here userfaultfd; FUSE mappings do the same) sits
 * in copy_to_user for as long as the memory's owner likes. Meanwhile the ring thread must go on
 * queueing replies and watch events for that very file, and every other xenstore user must be
 * served. Rust only: the C device holds reply_mutex across the copy, and its xenbus thread
 * (replies) and xenwatch thread (watch events) take that mutex to queue for the file, so all of
 * xenstore would wait for the reader.
 */
static void t_stalled_reader(void)
{
	struct check c = { .name = "dev.rust.stalled_reader_stalls_nobody_else" };
	struct stalled_read r = { .fd = -1 };
	struct uffdio_zeropage zero = { .range.len = 4096 };
	struct uffd_msg fault;
	struct pollfd pf;
	pthread_t t;
	bool started = false;
	int uffd, fd = -1, i;
	struct xmsg m;
	char wbuf[64];

	if (!rust) {
		say_skip(c.name, "the C device holds reply_mutex across copy_to_user, which its xenbus "
				 "and xenwatch threads need to queue for the file");
		return;
	}
	uffd = uffd_page(&r.buf);
	if (uffd < 0) {
		say_fail(c.name, "userfaultfd: %s", strerror(errno));
		return;
	}
	r.fd = dev_open(0);
	fd = dev_open(0);
	if (r.fd < 0 || fd < 0) {
		ck_fail(&c, "open: %s", strerror(errno));
		goto out;
	}
	/* The stalled file watches a node: its reply (and the first event) wait to be read. */
	if (send_msg(r.fd, XS_WATCH, xbt_next_req++, 0, BASE "/stall\0stall", sizeof(BASE "/stall\0stall")) ||
	    !readable(r.fd, 5000)) {
		ck_fail(&c, "no reply to WATCH");
		goto out;
	}
	if (pthread_create(&t, NULL, stalled_read_main, &r)) {
		ck_fail(&c, "pthread_create failed");
		goto out;
	}
	started = true;
	pf = (struct pollfd){ .fd = uffd, .events = POLLIN };
	if (poll(&pf, 1, 5000) != 1 || read(uffd, &fault, sizeof(fault)) != sizeof(fault) ||
	    fault.event != UFFD_EVENT_PAGEFAULT) {
		ck_fail(&c, "the reader did not fault on its buffer");
		goto out;
	}
	/* Now: events for the stalled file, and plenty of other traffic, all answered in time. */
	for (i = 0; i < 40 && c.fails == 0; i++) {
		snprintf(wbuf, sizeof(wbuf), "%d", i);
		if (xcall2(fd, XS_WRITE, 0, BASE "/stall", wbuf, true, &m) || !ok_reply(&m, XS_WRITE) ||
		    xcall2(fd, XS_READ, 0, BASE "/stall", NULL, false, &m) || !ok_reply(&m, XS_READ) ||
		    strcmp(m.body, wbuf))
			ck_fail(&c, "request %d while a reader is stalled: %s", i, describe(&m));
		else
			ck_ok(&c);
	}
	if (r.got != 0 || r.err != 0)
		ck_fail(&c, "the stalled read returned early (%zd, %s)", r.got, strerror(r.err));
out:
	if (started) {
		zero.range.start = (unsigned long)r.buf;
		if (ioctl(uffd, UFFDIO_ZEROPAGE, &zero))
			ck_fail(&c, "UFFDIO_ZEROPAGE: %s", strerror(errno));
		pthread_join(t, NULL);
		if (r.got < HDR)
			ck_fail(&c, "the stalled read ended with %zd (%s)", r.got, strerror(r.err));
	}
	if (r.fd >= 0)
		close(r.fd);
	if (fd >= 0) {
		xcall2(fd, XS_RM, 0, BASE "/stall", NULL, false, &m);
		close(fd);
	}
	close(uffd);
	munmap(r.buf, 4096);
	ck_done(&c, NULL);
}

static void t_after(void)
{
	int fd = dev_open(0);
	struct xmsg m;
	bool ok = fd >= 0 && !xcall2(fd, XS_WRITE, 0, BASE "/final", "still-works", true, &m) &&
		  ok_reply(&m, XS_WRITE) && !xcall2(fd, XS_READ, 0, BASE "/final", NULL, false, &m) &&
		  ok_reply(&m, XS_READ) && !strcmp(m.body, "still-works");

	if (ok)
		say_pass("dev.fuzz.device_works_after_storm");
	else
		say_fail("dev.fuzz.device_works_after_storm", "%s", describe(&m));
	if (fd >= 0) {
		xcall2(fd, XS_RM, 0, BASE, NULL, false, &m);
		close(fd);
	}
	if (nbad >= 10000)
		say_pass("dev.fuzz.at_least_10000_bad_messages");
	else
		say_fail("dev.fuzz.at_least_10000_bad_messages", "only %lu", nbad);
	info("%lu bad messages sent", nbad);
}

int main(int argc, char **argv)
{
	uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 0) : 0x5eed2026;

	if (argc < 2 || (strcmp(argv[1], "c") && strcmp(argv[1], "rust"))) {
		fprintf(stderr, "usage: %s c|rust [SEED]\n", argv[0]);
		return 2;
	}
	rust = !strcmp(argv[1], "rust");
	rng_state = seed ? seed : 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	info("xbt-devfuzz: %s core, seed %#llx", rust ? "Rust" : "C", (unsigned long long)seed);
	if (!setup_nodes())
		return 1;
	t_truncated_then_close();
	t_split_writes();
	t_oversized_e2big();
	t_boundary();
	t_overflow_einval();
	t_bad_txid();
	t_bad_tx_end_body();
	t_watch_unterminated();
	t_read_unterminated();
	t_garbage();
	t_tiny_reads();
	t_nonblock_poll();
	t_pipelined();
	t_multi_message_write();
	t_reset_watches();
	t_outstanding_bound();
	t_watch_flood();
	t_per_file_limits();
	t_close_everything();
	t_rust_end0_then_start();
	t_stalled_reader();
	t_after();
	return 0;
}
