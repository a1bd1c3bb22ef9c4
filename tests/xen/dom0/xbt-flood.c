// SPDX-License-Identifier: GPL-2.0
/*
 * xbt-flood PATH N: write PATH N times, each write its own request (no transaction), so that
 * xenstored fires one watch event per write. The dom0 agent uses it for watch floods.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xenstore.h>

int main(int argc, char **argv)
{
	struct xs_handle *xs;
	unsigned long i, n;
	char val[32];

	if (argc != 3) {
		fprintf(stderr, "usage: %s PATH N\n", argv[0]);
		return 2;
	}
	n = strtoul(argv[2], NULL, 10);
	xs = xs_open(0);
	if (!xs) {
		perror("xs_open");
		return 1;
	}
	for (i = 0; i < n; i++) {
		snprintf(val, sizeof(val), "flood-%lu", i);
		if (!xs_write(xs, XBT_NULL, argv[1], val, strlen(val))) {
			perror("xs_write");
			return 1;
		}
	}
	xs_close(xs);
	return 0;
}
