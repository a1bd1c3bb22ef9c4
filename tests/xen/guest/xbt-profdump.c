// SPDX-License-Identifier: GPL-2.0
/*
 * xbt-profdump LABEL: prints the kernel's /proc/profile (profile=N on the command line) as
 * "PROF LABEL step BYTES" and one "PROF LABEL BUCKET COUNT" line per non-empty bucket, for
 * scripts/profile.sh to map onto System.map. "xbt-profdump -r" resets the counters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	unsigned int step, count;
	unsigned long bucket = 0;
	FILE *f;

	if (argc != 2) {
		fprintf(stderr, "usage: xbt-profdump LABEL | -r\n");
		return 2;
	}
	if (!strcmp(argv[1], "-r")) {
		f = fopen("/proc/profile", "w");
		if (!f || fputs("reset", f) < 0 || fclose(f)) {
			perror("/proc/profile");
			return 1;
		}
		return 0;
	}
	f = fopen("/proc/profile", "r");
	if (!f || fread(&step, sizeof(step), 1, f) != 1) {
		perror("/proc/profile");
		return 1;
	}
	printf("PROF %s step %u\n", argv[1], step);
	while (fread(&count, sizeof(count), 1, f) == 1) {
		if (count)
			printf("PROF %s %lu %u\n", argv[1], bucket, count);
		bucket++;
	}
	fclose(f);
	return 0;
}
