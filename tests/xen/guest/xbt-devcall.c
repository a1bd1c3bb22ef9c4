// SPDX-License-Identifier: GPL-2.0
/*
 * xbt-devcall: one raw request through /dev/xen/xenbus, for the shell tests.
 *
 *   xbt-devcall TYPE TX [ARG...]   TYPE is a number or a name (READ, TRANSACTION_START, ...);
 *                                  the payload is the ARGs, each NUL-terminated.
 *
 * Prints the reply as "TYPE BODY" (ERROR ENOENT, TRANSACTION_START 12, ...) and exits 0 when a
 * reply came, whatever it says; 1 when the device failed.
 */
#include "xbt-dev.h"

static const char *const names[] = {
	[XS_CONTROL] = "CONTROL", [XS_DIRECTORY] = "DIRECTORY", [XS_READ] = "READ",
	[XS_GET_PERMS] = "GET_PERMS", [XS_WATCH] = "WATCH", [XS_UNWATCH] = "UNWATCH",
	[XS_TRANSACTION_START] = "TRANSACTION_START", [XS_TRANSACTION_END] = "TRANSACTION_END",
	[XS_INTRODUCE] = "INTRODUCE", [XS_RELEASE] = "RELEASE", [XS_GET_DOMAIN_PATH] = "GET_DOMAIN_PATH",
	[XS_WRITE] = "WRITE", [XS_MKDIR] = "MKDIR", [XS_RM] = "RM", [XS_SET_PERMS] = "SET_PERMS",
	[XS_WATCH_EVENT] = "WATCH_EVENT", [XS_ERROR] = "ERROR",
};

int main(int argc, char **argv)
{
	char body[XENSTORE_PAYLOAD_MAX];
	struct xmsg m;
	uint32_t type = XS_TYPE_COUNT, len = 0, i;
	char *end;
	int fd, r;

	if (argc < 3) {
		fprintf(stderr, "usage: %s TYPE TX [ARG...]\n", argv[0]);
		return 2;
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i] && !strcmp(argv[1], names[i]))
			type = i;
	if (type == XS_TYPE_COUNT) {
		type = strtoul(argv[1], &end, 0);
		if (*end || !*argv[1]) {
			fprintf(stderr, "unknown message type '%s'\n", argv[1]);
			return 2;
		}
	}
	for (i = 3; i < (uint32_t)argc; i++) {
		size_t n = strlen(argv[i]) + 1;

		if (len + n > sizeof(body)) {
			fprintf(stderr, "payload too long\n");
			return 2;
		}
		memcpy(body + len, argv[i], n);
		len += n;
	}
	fd = dev_open(0);
	if (fd < 0) {
		perror("/dev/xen/xenbus");
		return 1;
	}
	r = xcall(fd, type, strtoul(argv[2], NULL, 0), body, len, &m, NULL);
	if (r) {
		fprintf(stderr, "xbt-devcall: %s\n", strerror(-r));
		return 1;
	}
	for (i = 0; i < m.h.len; i++)
		if (!m.body[i])
			m.body[i] = ' ';
	while (i > 0 && m.body[i - 1] == ' ')
		m.body[--i] = '\0';
	printf("%s %s\n", m.h.type < sizeof(names) / sizeof(names[0]) && names[m.h.type] ?
	       names[m.h.type] : "?", m.body);
	close(fd);
	return 0;
}
