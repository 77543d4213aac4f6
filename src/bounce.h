/* bounce: a returned message parsed and classified per recipient (DSN, ARF, MTA text, auto-reply). */
#ifndef FOLLOWUPD_BOUNCE_H
#define FOLLOWUPD_BOUNCE_H

#include <stddef.h>

/*
 * Limits. Nothing in a returned message is trusted: a longer message is
 * parsed up to BOUNCE_MESSAGE_MAX bytes (a bounce's report comes first, the
 * returned copy after it), and every list is bounded.
 */
#define BOUNCE_MESSAGE_MAX	(4 * 1024 * 1024)
#define BOUNCE_REASON_MAX	300	/* characters of a cleaned reason */
#define BOUNCE_RECIPIENTS_MAX	100	/* recipients reported per message */
#define BOUNCE_IDS_MAX		16	/* Message-IDs kept per message */
#define BOUNCE_TOKENS_MAX	8	/* VERP tokens kept per message */

/*
 * What a recipient's report means for the address. HARD: it does not
 * exist or will never accept mail (unknown user or domain, moved, null MX,
 * disabled). SOFT: mailbox full, temporarily unavailable, delivery
 * expired. POLICY: the receiver refused us (spam, reputation, content,
 * blocks, relaying): says nothing about the address. COMPLAINT: an RFC 5965
 * abuse report. AUTO_REPLY: RFC 3834 or a vacation, out-of-office or
 * challenge-response message. NONE: anything else (a delay notice, a
 * success report, a human's reply).
 */
enum bounce_kind {
	BOUNCE_NONE,
	BOUNCE_HARD,
	BOUNCE_SOFT,
	BOUNCE_POLICY,
	BOUNCE_COMPLAINT,
	BOUNCE_AUTO_REPLY,
	BOUNCE_NKINDS
};

/* "none", "hard", "soft", "policy", "complaint", "auto-reply". */
const char	*bounce_kind_name(enum bounce_kind);
int		 bounce_kind_parse(const char *, enum bounce_kind *);

struct bounce_rcpt {
	char		*recipient;	/* lower-cased addr-spec; NULL: none found */
	char		 status[12];	/* RFC 3463 "5.1.1"; "" when none */
	char		*action;	/* "failed", "delayed", ...; NULL: none */
	enum bounce_kind kind;
	char		*reason;	/* cleaned (mime_clean_phrase), bounded;
					   never NULL */
};

/*
 * What the caller knows. return_local: the local part of [bounces]
 * return_path ("bounces"), NULL when VERP is off (no token is looked
 * for); delimiter: [bounces] delimiter. env: the values of Postfix's
 * ORIGINAL_RECIPIENT and RECIPIENT for a pipe (NULL entries when unset).
 */
struct bounce_opts {
	const char	*return_local;
	char		 delimiter;
	const char	*env[2];
};

/*
 * The result. format: "dsn" (RFC 3464), "arf" (RFC 5965), "text" (an
 * MTA's own words), "auto-reply" or "none" (static strings). kind: the
 * message's kind, the most severe of its recipients' (hard > soft >
 * complaint > policy > auto-reply > none), or the message's own when it
 * names no recipient. tokens: the TOKEN of every return_local
 * DELIMITER TOKEN @ domain address found in Delivered-To, X-Original-To,
 * To, the env values, an ARF report's Original-Mail-From and the returned
 * message's Return-Path, unverified (verp.h checks them). ids:
 * Message-IDs (without <>) quoted from the returned message (a Message-ID
 * field anywhere in the body) and the message's In-Reply-To and
 * References; never its own Message-ID (message_id: the same message
 * handled twice is known by it).
 */
struct bounce_report {
	const char		*format;
	enum bounce_kind	 kind;
	struct bounce_rcpt	*rcpt;
	size_t			 nrcpt;
	char			**tokens;
	size_t			 ntokens;
	char			**ids;
	size_t			 nids;
	char			*message_id;	/* its own, without <>; may be NULL */
};

/*
 * Parse msg[0..len) (LF, CRLF or CR line ends, an mbox "From " line
 * allowed; bytes past BOUNCE_MESSAGE_MAX are ignored). FU_OK with *out
 * (free with bounce_report_free) for every mail message, whatever it says;
 * FU_PERMFAIL with *err only when the input is not a mail message at all
 * (empty, or no header field before the first line of text). No I/O.
 */
int	bounce_parse(const char *msg, size_t len, const struct bounce_opts *,
	    struct bounce_report **out, char **err);
void	bounce_report_free(struct bounce_report *);

/*
 * Classify one recipient's report (what bounce_parse does for each):
 * action ("failed", "delayed", ...; NULL: unknown), an RFC 3463 status
 * ("" or NULL: none) and the diagnostic text (may be NULL). Exposed for
 * the tests.
 */
enum bounce_kind bounce_classify(const char *action, const char *status,
	    const char *text);

#endif
