// SPDX-License-Identifier: GPL-2.0
/*
 * xbt-dom0 SEQ TIMEOUT CMD [ARG...]: asks the dom0 agent (tests/xen/dom0/agent.sh) to run
 * "CMD ARGS" as request SEQ and waits up to TIMEOUT seconds for its acknowledgement, woken by a
 * watch rather than polling. Exits 0 when the agent acknowledged with 0, 1 otherwise.
 */
#include "xbt-dev.h"

int main(int argc, char **argv)
{
	struct xs_handle *xs;
	char req[1024];
	size_t len;
	int i, rc;

	if (argc < 4) {
		fprintf(stderr, "usage: %s SEQ TIMEOUT CMD [ARG...]\n", argv[0]);
		return 2;
	}
	len = snprintf(req, sizeof(req), "%s", argv[1]);
	for (i = 3; i < argc && len < sizeof(req); i++)
		len += snprintf(req + len, sizeof(req) - len, " %s", argv[i]);
	if (len >= sizeof(req)) {
		fprintf(stderr, "xbt-dom0: request too long\n");
		return 2;
	}
	xs = xs_open(0);
	if (!xs || !xs_write(xs, XBT_NULL, "data/xbt/req", req, len)) {
		perror("xbt-dom0: xenstore");
		return 1;
	}
	rc = dom0_wait_ack(xs, strtoul(argv[1], NULL, 10), atof(argv[2]));
	xs_close(xs);
	if (rc < 0)
		fprintf(stderr, "dom0 agent did not acknowledge request %s (%s)\n", argv[1], req);
	return rc == 0 ? 0 : 1;
}
