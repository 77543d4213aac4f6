/* codes: personal codes (vouchers) given to messages, stored with their job. */
#ifndef FOLLOWUPD_CODES_H
#define FOLLOWUPD_CODES_H

#include <stdint.h>
#include <time.h>

#include "store.h"

#define CODES_MAX	200	/* longest code, bytes */

/*
 * `length` characters drawn uniformly (getrandom, rejection sampling) from
 * `alphabet` (2 to 64 distinct printable characters) into out[length + 1].
 */
void	codes_random(const char *alphabet, int length, char *out);

/* The code job_id was given, or *code NULL when none yet. Caller frees. */
int	codes_get(struct store *, int64_t job_id, char **code, char **err);
/*
 * Give job_id its code. *clash 1 (nothing stored) when another job of the
 * rule has that very code: draw another.
 */
int	codes_put(struct store *, int64_t job_id, const char *rule,
	    const char *subject, const char *code, time_t now, int *clash,
	    char **err);

#endif
