// SPDX-License-Identifier: MIT
//
// replay_main.c — runs a fuzz target over every file of a corpus
// directory, so `make test` (gcc, any sanitizer) re-checks every input the
// fuzzer ever found interesting. Prints "N passed, 0 failed" style totals;
// a crash is a failure by itself.

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int
run_file(const char *path)
{
	FILE    *f;
	uint8_t *buf;
	long     len;

	if ((f = fopen(path, "rb")) == NULL) {
		return (-1);
	}
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		return (-1);
	}
	if ((buf = malloc((size_t) len + 1)) == NULL) {
		fclose(f);
		return (-1);
	}
	if (len > 0 && fread(buf, 1, (size_t) len, f) != (size_t) len) {
		free(buf);
		fclose(f);
		return (-1);
	}
	fclose(f);
	(void) LLVMFuzzerTestOneInput(buf, (size_t) len);
	free(buf);
	return (0);
}

int
main(int argc, char **argv)
{
	DIR           *d;
	struct dirent *e;
	char           path[4096];
	int            n = 0, bad = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS-DIR\n", argv[0]);
		return (2);
	}
	if ((d = opendir(argv[1])) == NULL) {
		fprintf(
		    stderr, "%s: cannot open corpus %s\n", argv[0], argv[1]);
		return (1);
	}
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		if (e->d_name[0] == '.') {
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", argv[1], e->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
			continue;
		}
		if (run_file(path) != 0) {
			fprintf(stderr, "cannot read %s\n", path);
			bad++;
		}
		n++;
	}
	closedir(d);
	if (n == 0) {
		fprintf(stderr, "%s: corpus %s is empty\n", argv[0], argv[1]);
		return (1);
	}
	printf(
	    "corpus %s: %d inputs replayed, %d unreadable\n", argv[1], n, bad);
	return (bad == 0 ? 0 : 1);
}
