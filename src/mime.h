/* mime: RFC 5322 / 2045 / 2047 messages built with GMime; header and address hygiene. */
#ifndef FOLLOWUPD_MIME_H
#define FOLLOWUPD_MIME_H

#include <stddef.h>
#include <time.h>

#include "util.h"

/* RFC 5322 2.1.1: a line must be no more than 998 characters. */
#define MIME_LINE_MAX		998
/* Longest display name or subject we pass on (characters, not bytes). */
#define MIME_PHRASE_MAX		200
/* RFC 5321 4.5.3.1.3: a path is at most 256 octets. */
#define MIME_ADDRESS_MAX	254

void	mime_init(void);	/* g_mime_init once per process */

/*
 * Make an untrusted value (from the database or a rendered template) safe
 * for a header: invalid UTF-8 becomes U+FFFD, CR, LF, TAB and other control
 * characters (C0, DEL, C1) become a space, runs of white space fold to one,
 * leading/trailing space is trimmed, and the result is cut at `max`
 * characters on a character boundary (with "…" when cut). Returns an
 * allocated string.
 */
char	*mime_clean_phrase(const char *in, size_t len, size_t max);

/*
 * 1 when `addr` is a plain addr-spec we are willing to send to: one '@',
 * a dot-atom local part of RFC 5322 atext (no quotes, spaces, commas, angle
 * brackets, control characters), a domain of LDH labels (or UTF-8 labels),
 * total length <= MIME_ADDRESS_MAX. 0 otherwise; *why (static string) says
 * what is wrong.
 */
int	mime_address_ok(const char *addr, const char **why);

/* The domain part of an address ("" when none); points into addr. */
const char *mime_address_domain(const char *addr);

struct mime_part_calendar {
	const char *method;	/* "REQUEST" / "CANCEL" */
	const char *ics;	/* VCALENDAR text, CRLF or LF line ends */
};

struct mime_spec {
	const char *from;	/* "Name <addr>" or "addr" (from config) */
	const char *reply_to;	/* may be NULL */
	const char *to_name;	/* untrusted; cleaned; may be NULL */
	const char *to_addr;	/* must pass mime_address_ok */
	const char *subject;	/* untrusted; cleaned */
	const char *message_id;	/* "id@domain", without angle brackets */
	time_t date;
	const char *text;	/* UTF-8 body; required */
	const char *html;	/* UTF-8 body; NULL for text only */
	const struct mime_part_calendar *calendar;	/* NULL: none */
	/* extra header pairs (name, value), untrusted values cleaned; NULL-terminated */
	const char *const *extra_headers;
};

/*
 * Build the message: Date, Message-ID, From, To, Reply-To, Subject
 * (RFC 2047 encoded words for non-ASCII), MIME-Version,
 * Auto-Submitted: auto-generated, the extra headers; body text/plain, or
 * multipart/alternative (text + html), or with a calendar
 * multipart/mixed(alternative(text, html), text/calendar; method=...).
 * Bodies are UTF-8, quoted-printable or base64 so no line exceeds
 * MIME_LINE_MAX. Output uses CRLF line ends (what SMTP needs) and is
 * appended to out. FU_PERMFAIL with *err for invalid input (bad address,
 * invalid UTF-8 in a body).
 */
int	mime_build(const struct mime_spec *, struct buf *out, char **err);

#endif
