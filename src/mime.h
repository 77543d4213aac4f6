/* mime: RFC 5322 / 2045 / 2047 messages, written directly; header and address hygiene. */
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

/*
 * Make an untrusted value (from the database or a rendered template) safe
 * for a header: invalid UTF-8 becomes U+FFFD (one per maximal invalid
 * subpart), CR, LF, TAB and other control characters (C0, DEL, C1) and the
 * line/paragraph separators U+2028/U+2029 become a space, runs of spaces
 * fold to one, leading/trailing space is trimmed, and the result is cut to
 * at most `max` characters (code points) on a character boundary: when
 * cut, max - 1 characters then "…" (the ellipsis counts). NUL bytes inside
 * in[0..len) are controls too; in may be NULL when len is 0. Other text,
 * RTL and emoji included, is kept. Returns an allocated string.
 */
char	*mime_clean_phrase(const char *in, size_t len, size_t max);

/*
 * 1 when `addr` is a plain addr-spec we are willing to send to: one '@',
 * a dot-atom local part of RFC 5322 atext of at most 64 octets (no quotes,
 * spaces, commas, angle brackets, ()[]\;:, control characters; no leading,
 * trailing or double dot), a domain of LDH labels (1-63 octets, no
 * leading/trailing '-'; IDNs as xn-- A-labels: RFC 3492 Punycode that
 * encodes back to the label and decodes to no ASCII upper case, control,
 * space, punctuation, emoji or private-use character), total length <=
 * MIME_ADDRESS_MAX. Non-ASCII addresses are rejected: we do not negotiate
 * SMTPUTF8 (RFC 6531). No domain literals. 0 otherwise; *why (static
 * string; why may be NULL) says what is wrong.
 */
int	mime_address_ok(const char *addr, const char **why);

/* The domain part (after the last '@'; "" when none); points into addr. */
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
 * Display names and the subject are cleaned with mime_clean_phrase(...,
 * MIME_PHRASE_MAX); extra header values likewise (up to 900 characters;
 * an ASCII value is written verbatim, folded at its spaces). A display
 * name goes as atoms, one quoted string, or, when a word is 8-bit, looks
 * like an encoded word or is too long to fold, UTF-8 "B" encoded words
 * for the whole name; from and reply_to may quote theirs (an RFC 5322
 * phrase is unquoted first, other text taken as it is). Header lines fold
 * at spaces to stay within 78 characters where the words allow, 76 on a
 * line with an encoded word. Extra header names must be [A-Za-z0-9-], at
 * most 64, and not one we write or one that changes structure or routing
 * (From, To, Cc, Bcc, Content-*, Resent-*, ...). Bodies are UTF-8, every
 * line break (CRLF, LF, lone CR) becomes CRLF, quoted-printable or base64
 * (mostly non-ASCII text) so no line exceeds MIME_LINE_MAX; they decode to
 * the input exactly otherwise. Boundaries derive from message_id: one
 * spec always gives the same bytes. Output uses CRLF line ends (what SMTP
 * needs), ends with CRLF, and is appended to out (untouched on failure).
 * FU_PERMFAIL with *err for invalid input (bad address in to_addr, from or
 * reply_to, bad message_id, bad extra header name, bad calendar method,
 * invalid UTF-8 in a body, a date outside the years 1900-9999).
 */
int	mime_build(const struct mime_spec *, struct buf *out, char **err);

/*
 * 1 when msg[0..len) can be a whole message as mime_build writes it: no NUL
 * byte, CRLF at the end, a header section and a body, and for a multipart
 * message the closing delimiter of its top-level boundary. A spool file cut
 * short (a full disk, a bad block, a human) fails this before it can be
 * sent half. A single-part message cut at a line end cannot be told from a
 * whole one (it carries no length); every message with an HTML part is
 * multipart. 0 otherwise, with *why (static; may be NULL).
 */
int	mime_message_complete(const char *msg, size_t len, const char **why);

#endif
