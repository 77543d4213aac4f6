/* consent: opt-outs, signed unsubscribe tokens and frequency caps for marketing mail. */
#ifndef FOLLOWUPD_CONSENT_H
#define FOLLOWUPD_CONSENT_H

#include <stdio.h>
#include <time.h>

#include "config.h"
#include "store.h"
#include "util.h"

/*
 * Classes. A rule is "transactional" or "marketing" (config.h); an opt-out
 * names one of those or "all". A suppression (a hard bounce) blocks every
 * class until it is removed.
 */
int	consent_class_ok(const char *cls);	/* marketing, transactional, all */

/*
 * The secret tokens are signed with: the first line of [unsubscribe]
 * secret_file (default QUEUE/unsubscribe.key), at least 32 bytes. The
 * file must be a regular file not readable or writable by group or others
 * (0600), like OpenSMTPD's and msmtp's secrets. With `create`, a missing
 * file is made (O_EXCL, 0600) with 32 random bytes as 64 hex digits.
 * FU_PERMFAIL with *err (the path and why) otherwise.
 */
struct consent;
int	consent_open(const struct config *, int create, struct consent **,
	    char **err);
void	consent_free(struct consent *);
/* A random in-memory secret (preview before the queue exists: never sent). */
struct consent *consent_ephemeral(void);
char	*consent_secret_path(const struct config *);	/* caller frees */
/* The secret's bytes, for other tokens signed with it (rating.h); c owns them. */
const unsigned char *consent_secret(const struct consent *c, size_t *len);

/*
 * Tokens: "ADDR.CLASS.MAC", ADDR the lower-cased address in base64url,
 * MAC = HMAC-SHA-256(secret, "followupd-unsubscribe-v1\0" ADDR "\0" CLASS)
 * in base64url. Not guessable without the secret; checked in constant time.
 * consent_token_check gives the address and class (caller frees) or
 * FU_PERMFAIL for anything malformed or forged.
 */
#define CONSENT_TOKEN_MAX	512
char	*consent_token(const struct consent *, const char *addr,
	    const char *cls);
int	consent_token_check(const struct consent *, const char *token,
	    char **addr, char **cls);

/*
 * HMAC-SHA-256 with the same secret over PURPOSE "\0" data[0..len), for
 * other signed values (verp.c's return paths); a distinct purpose keeps
 * one kind of token from passing for another.
 */
#define CONSENT_MAC_LEN		32
void	consent_mac(const struct consent *, const char *purpose,
	    const void *data, size_t len, unsigned char mac[CONSENT_MAC_LEN]);

/*
 * The List-Unsubscribe URLs of a message to addr of class cls (RFC 2369,
 * RFC 8058): "[unsubscribe] url?t=TOKEN" and "mailto:ADDR?subject=..."
 * (ADDR: [unsubscribe] mailto, else [smtp] from's address). Caller frees.
 */
char	*consent_unsubscribe_url(const struct config *, const struct consent *,
	    const char *addr, const char *cls);
char	*consent_mailto(const struct config *, const char *addr,
	    const char *cls);

/*
 * The opt-out list (state.db optouts). add: *added 0 when it was there
 * already. remove: cls NULL removes every class; "suppressed" lifts a
 * hard-bounce suppression instead. The address is compared without case.
 */
int	consent_optout_add(struct store *, const char *addr, const char *cls,
	    const char *reason, time_t now, int *added, char **err);
int	consent_optout_remove(struct store *, const char *addr,
	    const char *cls, int *removed, char **err);

/* Open (creating the queue directory) the state database of cfg. */
int	consent_store_open(const struct config *, struct store **, char **err);

#endif
