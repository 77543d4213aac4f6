/* verp: per-message return paths (VERP) that name their job and cannot be forged. */
#ifndef FOLLOWUPD_VERP_H
#define FOLLOWUPD_VERP_H

#include <stdint.h>

#include "consent.h"

/*
 * A job's token: "ID.MAC", ID the job id in decimal, MAC the first
 * VERP_MAC_BYTES of HMAC-SHA-256 with the unsubscribe secret over
 * "followupd-verp-v1" NUL ID (consent_mac), as lower-case hex: 80 bits
 * that nobody without the secret can make, in characters every MTA keeps
 * in a local part (case-insensitive, no delimiter a relay splits at).
 */
#define VERP_MAC_BYTES	10
#define VERP_TOKEN_MAX	(20 + 1 + 2 * VERP_MAC_BYTES)

/* The token of job id (id >= 1). Caller frees. */
char	*verp_token(const struct consent *, int64_t id);

/*
 * The envelope sender of job id: LOCAL DELIM TOKEN @ DOMAIN for
 * return_path LOCAL@DOMAIN ([bounces] return_path, [bounces] delimiter).
 * NULL when return_path is not one plain address or the result is not one
 * (RFC 5321: a local part of at most 64 octets). Caller frees.
 */
char	*verp_address(const struct consent *, const char *return_path,
	    char delim, int64_t id);

/*
 * FU_OK and *id when token (in any case, as MTAs may change it) is one
 * verp_token made with this secret; FU_PERMFAIL for anything malformed or
 * forged. The MAC is compared in constant time.
 */
int	verp_check(const struct consent *, const char *token, int64_t *id);

#endif
