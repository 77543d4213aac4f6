/* fuzz: the entry point every harness defines (libFuzzer's), and a checked abort. */
#ifndef FOLLOWUPD_FUZZ_H
#define FOLLOWUPD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* A broken invariant is a crash: the fuzzer keeps the input that caused it. */
#define FUZZ_ASSERT(cond, what) do {					\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz: invariant broken: %s (%s:%d)\n",	\
		    (what), __FILE__, __LINE__);			\
		abort();						\
	}								\
} while (0)

#endif
