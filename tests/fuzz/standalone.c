/*
 * standalone: run a fuzz harness over its seed corpus and regression inputs
 * without libFuzzer, as a TAP test in `make check` (gcc, ASan under
 * SANITIZE=1, valgrind in the memory pass). Every file of
 * tests/fuzz/corpus/NAME/ and tests/fuzz/regress/NAME/ (a crash the fuzzer
 * once found) is one test: it passes when the harness returns (a crash or a
 * broken invariant aborts the program, which run.sh counts as a failure).
 * Extra arguments: more files or directories to run.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#ifndef FUZZ_NAME
#error "FUZZ_NAME must be defined"
#endif

static int n_tests;

static void
run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char *data = NULL;
	size_t len = 0, cap = 0, got;

	if (f == NULL) {
		printf("not ok %d - %s: cannot open\n", ++n_tests, path);
		return;
	}
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 65536;
			if ((data = realloc(data, cap)) == NULL)
				abort();
		}
		if ((got = fread(data + len, 1, cap - len, f)) == 0)
			break;
		len += got;
	}
	fclose(f);
	fflush(stdout);
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	printf("ok %d - %s (%zu bytes)\n", ++n_tests, path, len);
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
run_path(const char *path)
{
	struct stat st;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;
	DIR *d;

	if (stat(path, &st) == -1)
		return;		/* an absent regression dir: nothing found yet */
	if (!S_ISDIR(st.st_mode)) {
		run_file(path);
		return;
	}
	if ((d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((names = realloc(names, (n + 1) * sizeof(*names))) == NULL)
			abort();
		if ((names[n] = malloc(strlen(path) + strlen(de->d_name) + 2)) ==
		    NULL)
			abort();
		sprintf(names[n++], "%s/%s", path, de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), by_name);
	for (size_t i = 0; i < n; i++) {
		run_file(names[i]);
		free(names[i]);
	}
	free(names);
}

int
main(int argc, char **argv)
{
	run_path("tests/fuzz/corpus/" FUZZ_NAME);
	run_path("tests/fuzz/regress/" FUZZ_NAME);
	for (int i = 1; i < argc; i++)
		run_path(argv[i]);
	if (n_tests == 0)
		printf("not ok 1 - no inputs for %s (run from the source tree)\n",
		    FUZZ_NAME), n_tests = 1;
	printf("1..%d\n", n_tests);
	return 0;
}
