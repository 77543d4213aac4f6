/* codes: personal codes (vouchers) given to messages, stored with their job. */
#include "codes.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

void
codes_random(const char *alphabet, int length, char *out)
{
	size_t n = strlen(alphabet);
	/* The largest multiple of n below 256: bytes above it are drawn again,
	 * so every character is equally likely. */
	unsigned limit = 256 - 256 % (unsigned)n;
	int i = 0;

	while (i < length) {
		unsigned char rnd[64];

		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			fatal("codes: getrandom");
		for (size_t k = 0; k < sizeof(rnd) && i < length; k++)
			if (rnd[k] < limit)
				out[i++] = alphabet[rnd[k] % n];
	}
	out[length] = '\0';
}

int
codes_get(struct store *st, int64_t job_id, char **code, char **err)
{
	return store_code_get(st, job_id, code, err);
}

int
codes_put(struct store *st, int64_t job_id, const char *rule,
    const char *subject, const char *code, time_t now, int *clash,
    char **err)
{
	int r;

	if ((r = store_code_taken(st, rule, code, clash, err)) != FU_OK ||
	    *clash)
		return r;
	return store_code_put(st, job_id, rule, subject, code, now, err);
}
