// SPDX-License-Identifier: GPL-2.0
/*
 * xbt-devstress: NPROC processes x NOPS mixed operations through /dev/xen/xenbus, each process on
 * its own subtree data/xbt/stress/pN with its own open file, checking every reply against a model
 * of its subtree; at the end the parent verifies every subtree from a fresh file.
 *
 * usage: xbt-devstress [NPROC [NOPS [serial]]]   (default 16 x 1000)
 *   serial: no pipelined batches (the C device sends a request's payload from the file's
 *   buffer after write() returned, so a following write() can overwrite it; xbt-devfuzz's
 *   dev.pipelined_requests_keep_payloads shows that on its own)
 *
 * Operations: write 15%, rm 5%, a transaction 15% (1-3 writes or removals and a read that must
 * see them, then commit or abort), directory 15%, read 30% and pipelined batches of 2-4 reads 20%
 * (plain reads in serial mode). While any transaction is open, xenstored rate-limits a guest's
 * writes outside transactions and its commits to ~200/s (WRL_RATE in xenstored_domain.c): their
 * number sets this test's duration, so they are kept to about a third of all operations. A commit that
 * xenstored answers EAGAIN is retried (and counted): the subtrees are disjoint, so it should not
 * happen, but it is xenstored's call, not the device's. Any other surprise is an error.
 * xenstored allows 10+1 open transactions per domain; the dom0 agent raises that for the run.
 */
#include <sys/wait.h>
#include "xbt-dev.h"

#define BASE "data/xbt/stress"
#define NKEYS 8
#define AGENT_SEQ 300000u

struct model {
	bool has[NKEYS];
	char val[NKEYS][48];
};

struct stats {
	unsigned long ops, msgs, errors, retries, tx_commit, tx_abort;
	char first[300];
};

static uint64_t rng;
static bool serial;
static uint32_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (uint32_t)((rng * 0x2545F4914F6CDD1DULL) >> 32);
}

static void err(struct stats *st, const char *fmt, ...)
{
	va_list ap;

	if (st->errors++)
		return;
	va_start(ap, fmt);
	vsnprintf(st->first, sizeof(st->first), fmt, ap);
	va_end(ap);
}

static void key_path(char *out, size_t n, int proc, int k)
{
	snprintf(out, n, BASE "/p%d/k%d", proc, k);
}

/* One request/reply, counted. */
static int call(struct stats *st, int fd, uint32_t type, uint32_t tx, const char *a, const char *b,
		bool raw, struct xmsg *m)
{
	int r = xcall2(fd, type, tx, a, b, raw, m);

	st->msgs++;
	if (r)
		err(st, "type %u %s: transport error %s", type, a, strerror(-r));
	return r;
}

static void check_read(struct stats *st, const struct xmsg *m, bool has, const char *want,
		       const char *path, const char *ctx)
{
	if (has ? !ok_reply(m, XS_READ) || m->h.len != strlen(want) || memcmp(m->body, want, m->h.len)
		: !is_error(m, "ENOENT"))
		err(st, "%s read %s: %s, want %s", ctx, path, describe(m), has ? want : "ENOENT");
}

static void check_dir(struct stats *st, const struct xmsg *m, const struct model *md, int proc)
{
	bool seen[NKEYS] = { false };
	uint32_t off = 0;
	int n = 0, want = 0, k;

	if (!ok_reply(m, XS_DIRECTORY)) {
		err(st, "directory of p%d: %s", proc, describe(m));
		return;
	}
	while (off < m->h.len) {
		const char *name = m->body + off;

		if (name[0] != 'k' || (k = atoi(name + 1)) < 0 || k >= NKEYS || seen[k] || !md->has[k]) {
			err(st, "directory of p%d lists '%s' (%s)", proc, name, describe(m));
			return;
		}
		seen[k] = true;
		n++;
		off += strlen(name) + 1;
	}
	for (k = 0; k < NKEYS; k++)
		want += md->has[k];
	if (n != want)
		err(st, "directory of p%d has %d entries, the model %d", proc, n, want);
}

static void op_write(struct stats *st, int fd, struct model *md, int proc, unsigned int i)
{
	int k = rnd() % NKEYS;
	char p[64], v[48];
	struct xmsg m;

	key_path(p, sizeof(p), proc, k);
	snprintf(v, sizeof(v), "p%d-op%u-%08x", proc, i, rnd());
	if (call(st, fd, XS_WRITE, 0, p, v, true, &m))
		return;
	if (!ok_reply(&m, XS_WRITE) || strcmp(m.body, "OK"))
		err(st, "write %s: %s", p, describe(&m));
	md->has[k] = true;
	strcpy(md->val[k], v);
}

static void op_rm(struct stats *st, int fd, struct model *md, int proc)
{
	int k = rnd() % NKEYS, j;
	char p[64];
	struct xmsg m;

	for (j = 0; j < NKEYS && !md->has[k]; j++)
		k = (k + 1) % NKEYS;
	if (!md->has[k])
		return;
	key_path(p, sizeof(p), proc, k);
	if (call(st, fd, XS_RM, 0, p, NULL, false, &m))
		return;
	if (!ok_reply(&m, XS_RM) || strcmp(m.body, "OK"))
		err(st, "rm %s: %s", p, describe(&m));
	md->has[k] = false;
}

/* Transaction: a few changes, a read inside that must see them, commit (retrying EAGAIN) or abort. */
static void op_tx(struct stats *st, int fd, struct model *md, int proc, unsigned int i)
{
	bool commit = rnd() % 5 != 0;
	int attempt;

	for (attempt = 0; attempt < 20; attempt++) {
		struct model tm = *md;
		int nch = 1 + rnd() % 3, c, k;
		char p[64], v[48], *end;
		struct xmsg m;
		uint32_t tx;

		if (call(st, fd, XS_TRANSACTION_START, 0, "", NULL, false, &m))
			return;
		tx = strtoul(m.body, &end, 10);
		if (!ok_reply(&m, XS_TRANSACTION_START) || !tx || *end) {
			err(st, "transaction start: %s", describe(&m));
			return;
		}
		for (c = 0; c < nch; c++) {
			k = rnd() % NKEYS;
			key_path(p, sizeof(p), proc, k);
			if (tm.has[k] && rnd() % 4 == 0) {
				if (call(st, fd, XS_RM, tx, p, NULL, false, &m))
					return;
				if (!ok_reply(&m, XS_RM))
					err(st, "rm %s in tx %u: %s", p, tx, describe(&m));
				tm.has[k] = false;
			} else {
				snprintf(v, sizeof(v), "p%d-tx%u.%d-%08x", proc, i, attempt, rnd());
				if (call(st, fd, XS_WRITE, tx, p, v, true, &m))
					return;
				if (!ok_reply(&m, XS_WRITE))
					err(st, "write %s in tx %u: %s", p, tx, describe(&m));
				tm.has[k] = true;
				strcpy(tm.val[k], v);
			}
		}
		k = rnd() % NKEYS;
		key_path(p, sizeof(p), proc, k);
		if (call(st, fd, XS_READ, tx, p, NULL, false, &m))
			return;
		check_read(st, &m, tm.has[k], tm.val[k], p, "in-transaction");
		if (call(st, fd, XS_TRANSACTION_END, tx, commit ? "T" : "F", NULL, false, &m))
			return;
		if (commit && is_error(&m, "EAGAIN")) {
			st->retries++;
			continue;
		}
		if (!ok_reply(&m, XS_TRANSACTION_END) || strcmp(m.body, "OK")) {
			err(st, "transaction end (%s) tx %u: %s", commit ? "commit" : "abort", tx, describe(&m));
			return;
		}
		if (commit) {
			*md = tm;
			st->tx_commit++;
		} else {
			st->tx_abort++;
		}
		return;
	}
	err(st, "a transaction got EAGAIN 20 times in a row");
}

/* 2-4 reads sent back to back, replies matched by req_id. */
static void op_batch(struct stats *st, int fd, struct model *md, int proc)
{
	int n = 2 + rnd() % 3, j, keys[4];
	uint32_t reqs[4];
	bool got[4] = { false };
	struct xmsg m;
	char p[64];

	for (j = 0; j < n; j++) {
		keys[j] = rnd() % NKEYS;
		key_path(p, sizeof(p), proc, keys[j]);
		reqs[j] = xbt_next_req++;
		st->msgs++;
		if (send_msg(fd, XS_READ, reqs[j], 0, p, strlen(p) + 1)) {
			err(st, "batch write: %s", strerror(errno));
			return;
		}
	}
	for (j = 0; j < n; j++) {
		int w;

		if (recv_msg(fd, &m, 10000)) {
			err(st, "batch: reply %d of %d missing", j, n);
			return;
		}
		for (w = 0; w < n && (got[w] || m.h.req_id != reqs[w]); w++)
			;
		if (w == n) {
			err(st, "batch: unexpected reply %s", describe(&m));
			continue;
		}
		got[w] = true;
		key_path(p, sizeof(p), proc, keys[w]);
		check_read(st, &m, md->has[keys[w]], md->val[keys[w]], p, "batched");
	}
}

static int child(int proc, unsigned int nops)
{
	struct stats st = { 0 };
	struct model md = { 0 };
	char path[64], file[64];
	unsigned int i;
	struct xmsg m;
	FILE *f;
	int fd = dev_open(0), k;

	rng = 0x9e3779b97f4a7c15ULL * (proc + 1);
	xbt_next_req = 0x10000 * (proc + 1);
	if (fd < 0) {
		err(&st, "open: %s", strerror(errno));
		nops = 0;
	}
	for (i = 0; i < nops; i++) {
		unsigned int r = rnd() % 100;

		st.ops++;
		if (r < 15) {
			op_write(&st, fd, &md, proc, i);
		} else if (r < 20) {
			op_rm(&st, fd, &md, proc);
		} else if (r < 35) {
			op_tx(&st, fd, &md, proc, i);
		} else if (r < 50) {
			snprintf(path, sizeof(path), BASE "/p%d", proc);
			if (!call(&st, fd, XS_DIRECTORY, 0, path, NULL, false, &m))
				check_dir(&st, &m, &md, proc);
		} else if (r < 80 || serial) {
			k = rnd() % NKEYS;
			key_path(path, sizeof(path), proc, k);
			if (!call(&st, fd, XS_READ, 0, path, NULL, false, &m))
				check_read(&st, &m, md.has[k], md.val[k], path, "plain");
		} else {
			op_batch(&st, fd, &md, proc);
		}
		if (st.errors > 20)
			break;
	}
	if (fd >= 0)
		close(fd);
	snprintf(file, sizeof(file), "/tmp/xbt-stress-%d", proc);
	f = fopen(file, "w");
	if (!f)
		return 3;
	fprintf(f, "%lu %lu %lu %lu %lu %lu\n%s\n", st.ops, st.msgs, st.errors, st.retries, st.tx_commit,
		st.tx_abort, st.first);
	for (k = 0; k < NKEYS; k++)
		if (md.has[k])
			fprintf(f, "k%d %s\n", k, md.val[k]);
	fclose(f);
	return st.errors ? 1 : 0;
}

/* The parent's check of one subtree against what its process says it left there. */
static bool verify(int fd, int proc, char *why, size_t whylen)
{
	char file[64], line[400], key[16], val[64], p[64];
	struct model md = { 0 };
	struct stats st = { 0 };
	struct xmsg m;
	FILE *f;
	int k;

	snprintf(file, sizeof(file), "/tmp/xbt-stress-%d", proc);
	f = fopen(file, "r");
	if (!f || !fgets(line, sizeof(line), f) || !fgets(line, sizeof(line), f)) {
		snprintf(why, whylen, "p%d left no model", proc);
		if (f)
			fclose(f);
		return false;
	}
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%15s %63s", key, val) == 2 && (k = atoi(key + 1)) >= 0 && k < NKEYS) {
			md.has[k] = true;
			strcpy(md.val[k], val);
		}
	fclose(f);
	snprintf(p, sizeof(p), BASE "/p%d", proc);
	if (!call(&st, fd, XS_DIRECTORY, 0, p, NULL, false, &m))
		check_dir(&st, &m, &md, proc);
	for (k = 0; k < NKEYS; k++) {
		key_path(p, sizeof(p), proc, k);
		if (!call(&st, fd, XS_READ, 0, p, NULL, false, &m))
			check_read(&st, &m, md.has[k], md.val[k], p, "final");
	}
	if (st.errors)
		snprintf(why, whylen, "%s", st.first);
	return !st.errors;
}

int main(int argc, char **argv)
{
	int nproc = argc > 1 ? atoi(argv[1]) : 16, i, fd, done = 0, bad_exit = 0;
	unsigned int nops = argc > 2 ? atoi(argv[2]) : 1000;
	unsigned long ops = 0, msgs = 0, errors = 0, retries = 0, commits = 0, aborts = 0;
	char name[64], first[500] = "", why[400];
	pid_t pids[64];
	struct xmsg m;
	double t0, last;
	bool quota_raised;

	serial = argc > 3 && !strcmp(argv[3], "serial");
	if (nproc < 1 || nproc > 64 || !nops || (argc > 3 && !serial)) {
		fprintf(stderr, "usage: %s [NPROC(1-64) [NOPS [serial]]]\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(name, sizeof(name), "dev.stress.%dx%u_no_errors", nproc, nops);
	fd = dev_open(0);
	if (fd < 0) {
		say_fail(name, "open: %s", strerror(errno));
		return 1;
	}
	xcall2(fd, XS_RM, 0, BASE, NULL, false, &m);
	for (i = 0; i < nproc; i++) {
		char p[64];

		snprintf(p, sizeof(p), BASE "/p%d", i);
		if (xcall2(fd, XS_MKDIR, 0, p, NULL, false, &m) || !ok_reply(&m, XS_MKDIR)) {
			say_fail(name, "mkdir %s: %s", p, describe(&m));
			return 1;
		}
	}
	quota_raised = dom0_cmd(AGENT_SEQ, 30, "quota transactions %d", 4 * nproc + 16);
	if (!quota_raised)
		info("could not raise xenstored's transaction quota; ENOSPC may follow");
	t0 = last = now();
	for (i = 0; i < nproc; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			close(fd);
			_exit(child(i, nops));
		}
		if (pids[i] < 0) {
			say_fail(name, "fork: %s", strerror(errno));
			return 1;
		}
	}
	while (done < nproc) {
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG);

		if (p > 0) {
			done++;
			if (!WIFEXITED(st) || WEXITSTATUS(st) > 1)
				bad_exit++;
			continue;
		}
		msleep(200);
		if (now() - last > 30) { /* keep the console alive for the harness */
			last = now();
			info("stress: %d of %d processes done after %.0f s", done, nproc, now() - t0);
		}
	}
	if (quota_raised && !dom0_cmd(AGENT_SEQ, 30, "quota transactions restore"))
		info("could not restore xenstored's transaction quota");
	for (i = 0; i < nproc; i++) {
		char file[64], line[400];
		unsigned long a[6];
		FILE *f;

		snprintf(file, sizeof(file), "/tmp/xbt-stress-%d", i);
		f = fopen(file, "r");
		if (!f || !fgets(line, sizeof(line), f) ||
		    sscanf(line, "%lu %lu %lu %lu %lu %lu", &a[0], &a[1], &a[2], &a[3], &a[4], &a[5]) != 6) {
			errors++;
			if (!first[0])
				snprintf(first, sizeof(first), "p%d reported nothing", i);
		} else {
			ops += a[0], msgs += a[1], errors += a[2], retries += a[3], commits += a[4], aborts += a[5];
			if (a[2] && !first[0] && fgets(line, sizeof(line), f)) {
				line[strcspn(line, "\n")] = 0;
				snprintf(first, sizeof(first), "p%d: %.400s", i, line);
			}
		}
		if (f)
			fclose(f);
	}
	info("stress%s: %lu operations, %lu messages in %.1f s (%.0f msg/s); %lu commits, %lu aborts, %lu EAGAIN retries",
	     serial ? " (serial)" : "", ops, msgs, now() - t0, msgs / (now() - t0), commits, aborts, retries);
	if (errors || bad_exit || ops != (unsigned long)nproc * nops)
		say_fail(name, "%lu errors, %d bad exits, %lu of %lu operations; first: %s", errors, bad_exit,
			 ops, (unsigned long)nproc * nops, first);
	else
		say_pass(name);
	/* Disjoint subtrees: conflicts would mean xenstored saw the transactions overlap. */
	if (retries > (commits + aborts) / 20)
		say_fail("dev.stress.few_transaction_retries", "%lu EAGAIN retries for %lu transactions", retries,
			 commits + aborts);
	else
		say_pass("dev.stress.few_transaction_retries");
	for (i = 0, errors = 0; i < nproc; i++)
		if (!verify(fd, i, why, sizeof(why)) && !errors++)
			snprintf(first, sizeof(first), "%s", why);
	if (errors)
		say_fail("dev.stress.final_values", "%lu of %d subtrees differ from their model; first: %s", errors,
			 nproc, first);
	else
		say_pass("dev.stress.final_values");
	xcall2(fd, XS_RM, 0, BASE, NULL, false, &m);
	close(fd);
	return 0;
}
