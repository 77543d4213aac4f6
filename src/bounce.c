/* bounce: a returned message parsed and classified per recipient (DSN, ARF, MTA text, auto-reply). */
#include "bounce.h"
#include "mime.h"
#include "util.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * The message is first copied with every line end as LF (and NUL as a
 * space), so that the rest reads lines one way. A small MIME walker then
 * keeps what the classification needs: the first text/plain part (the
 * report a human reads), the delivery-status or feedback-report part, the
 * returned message's header fields. RFC 2047 is not decoded: addresses
 * and codes are ASCII, and a reason is only shown.
 */

#define DEPTH_MAX	8	/* nested multiparts */
#define PARTS_MAX	200	/* body parts walked per message */
#define FIELDS_MAX	300	/* header fields kept per part */
#define VALUE_MAX	16384	/* octets of an unfolded header value */
#define TEXT_MAX	(256 * 1024)	/* octets of report text examined */
#define ADDR_MAX	254	/* MIME_ADDRESS_MAX */
#define ID_MAX		250	/* octets of a Message-ID we keep */
#define TOKEN_MAX	64	/* RFC 5321 4.5.3.1.1: a local part */

static const char *const kind_names[BOUNCE_NKINDS] = {
	"none", "hard", "soft", "policy", "complaint", "auto-reply",
};

const char *
bounce_kind_name(enum bounce_kind k)
{
	return (unsigned)k < BOUNCE_NKINDS ? kind_names[k] : "none";
}

int
bounce_kind_parse(const char *s, enum bounce_kind *k)
{
	for (int i = 0; i < BOUNCE_NKINDS; i++)
		if (s != NULL && strcmp(s, kind_names[i]) == 0) {
			*k = (enum bounce_kind)i;
			return 0;
		}
	return -1;
}

/* ---- small string helpers ---- */

static int
has_ci(const char *hay, const char *needle)
{
	return hay != NULL && strcasestr(hay, needle) != NULL;
}

static int
any_ci(const char *hay, const char *const *needles)
{
	for (; *needles != NULL; needles++)
		if (has_ci(hay, *needles))
			return 1;
	return 0;
}

static void
lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

static char *
trim_dup(const char *s, size_t n)
{
	while (n > 0 && isspace((unsigned char)*s))
		s++, n--;
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	return xstrndup(s, n);
}

/* ---- header fields ---- */

struct field {
	char	*name;
	char	*value;		/* unfolded, trimmed */
};

struct fields {
	struct field	*v;
	size_t		 n;
};

static void
fields_free(struct fields *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->v[i].name);
		free(f->v[i].value);
	}
	free(f->v);
	f->v = NULL;
	f->n = 0;
}

/* The first value of field `name`, or NULL. */
static const char *
field_get(const struct fields *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcasecmp(f->v[i].name, name) == 0)
			return f->v[i].value;
	return NULL;
}

/* Length of the field name at p (printable, no ':' or space), 0 if none. */
static size_t
field_name_len(const char *p, const char *eol)
{
	const char *q = p;

	while (q < eol && *q > ' ' && *q < 0x7f && *q != ':')
		q++;
	return q < eol && *q == ':' && q > p ? (size_t)(q - p) : 0;
}

/*
 * Header fields from p up to the first empty line (or end); folded lines
 * are joined with a space; a line that is neither a field nor a
 * continuation is skipped. Returns where the body starts.
 */
static const char *
fields_parse(const char *p, const char *end, struct fields *f)
{
	struct buf v = { 0 };
	char *name = NULL;

	for (;;) {
		const char *eol = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
		const char *le = eol ? eol : end;
		size_t nl;
		int cont = p < end && (*p == ' ' || *p == '\t');

		if (name != NULL && !cont) {
			if (f->n < FIELDS_MAX) {
				f->v = xrealloc(f->v, (f->n + 1) * sizeof(*f->v));
				f->v[f->n].name = name;
				f->v[f->n++].value = trim_dup(buf_cstr(&v), v.len);
			} else
				free(name);
			name = NULL;
			buf_reset(&v);
		}
		if (p >= end || le == p)
			break;
		if (cont && name != NULL) {
			if (v.len < VALUE_MAX) {
				buf_putc(&v, ' ');
				buf_append(&v, p, (size_t)(le - p));
			}
		} else if ((nl = field_name_len(p, le)) > 0) {
			name = xstrndup(p, nl);
			buf_append(&v, p + nl + 1, (size_t)(le - p - nl - 1));
		}
		p = eol ? eol + 1 : end;
	}
	buf_free(&v);
	if (p < end && *p == '\n')
		p++;
	return p;
}

/* ---- Content-Type ---- */

struct ctype {
	char	type[80];	/* "multipart/report", lower case */
	char	boundary[80];	/* RFC 2046 5.1.1: at most 70 */
	char	report[40];	/* report-type, lower case */
};

/*
 * A parameter's value from a Content-Type value: token or quoted string.
 * RFC 2231 continuations are not needed for the parameters we read.
 */
static void
param_get(const char *v, const char *name, char *out, size_t outsz)
{
	size_t nl = strlen(name);
	const char *p = v;

	out[0] = '\0';
	while ((p = strchr(p, ';')) != NULL) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, name, nl) != 0)
			continue;
		p += nl;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '=')
			continue;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		size_t n = 0;
		if (*p == '"') {
			for (p++; *p && *p != '"' && n + 1 < outsz; p++) {
				if (*p == '\\' && p[1] != '\0')
					p++;
				out[n++] = *p;
			}
		} else {
			for (; *p && *p != ';' && !isspace((unsigned char)*p) &&
			    n + 1 < outsz; p++)
				out[n++] = *p;
		}
		out[n] = '\0';
		return;
	}
}

static void
ctype_parse(const char *v, const char *deflt, struct ctype *ct)
{
	size_t n;

	memset(ct, 0, sizeof(*ct));
	if (v == NULL || (n = strcspn(v, "; \t")) == 0 ||
	    n >= sizeof(ct->type) || memchr(v, '/', n) == NULL) {
		snprintf(ct->type, sizeof(ct->type), "%s", deflt);
		return;
	}
	memcpy(ct->type, v, n);
	lower(ct->type);
	param_get(v, "boundary", ct->boundary, sizeof(ct->boundary));
	param_get(v, "report-type", ct->report, sizeof(ct->report));
	lower(ct->report);
}

/* ---- transfer encodings ---- */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Lenient quoted-printable (RFC 2045 6.7): what cannot be decoded is kept. */
static void
qp_decode(const char *p, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '=') {
			buf_putc(out, p[i]);
			continue;
		}
		if (i + 1 < n && p[i + 1] == '\n') {
			i++;		/* soft line break */
			continue;
		}
		size_t j = i + 1;	/* "=" and trailing blanks, then LF */
		while (j < n && (p[j] == ' ' || p[j] == '\t'))
			j++;
		if (j < n && p[j] == '\n' && j > i + 1) {
			i = j;
			continue;
		}
		if (i + 2 < n && hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0) {
			buf_putc(out, (char)(hexval(p[i + 1]) * 16 +
			    hexval(p[i + 2])));
			i += 2;
		} else
			buf_putc(out, '=');
	}
}

/* Lenient base64 (RFC 2045 6.8): characters outside the alphabet are skipped. */
static void
b64_decode(const char *p, size_t n, struct buf *out)
{
	unsigned v = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)p[i], d;

		if (c == '=')
			break;
		if (c >= 'A' && c <= 'Z')
			d = c - 'A';
		else if (c >= 'a' && c <= 'z')
			d = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			d = c - '0' + 52;
		else if (c == '+')
			d = 62;
		else if (c == '/')
			d = 63;
		else
			continue;
		v = (v << 6 | (unsigned)d) & 0xffffff;
		if ((bits += 6) >= 8) {
			bits -= 8;
			buf_putc(out, (char)(v >> bits & 0xff));
		}
	}
}

/* A part's body decoded by its Content-Transfer-Encoding, line ends LF. */
static void
body_decode(const struct fields *h, const char *p, size_t n, struct buf *out)
{
	const char *cte = field_get(h, "Content-Transfer-Encoding");
	struct buf raw = { 0 };

	if (n > TEXT_MAX)
		n = TEXT_MAX;
	if (cte != NULL && strncasecmp(cte, "quoted-printable", 16) == 0)
		qp_decode(p, n, &raw);
	else if (cte != NULL && strncasecmp(cte, "base64", 6) == 0)
		b64_decode(p, n, &raw);
	else
		buf_append(&raw, p, n);
	/* a decoded part may carry CR LF again, or NUL */
	for (size_t i = 0; i < raw.len; i++) {
		char c = raw.data[i];

		if (c == '\r') {
			if (i + 1 < raw.len && raw.data[i + 1] == '\n')
				continue;
			c = '\n';
		}
		buf_putc(out, c == '\0' ? ' ' : c);
	}
	buf_free(&raw);
}

/* ---- what the walk collects ---- */

struct walk {
	const struct bounce_opts *o;
	struct bounce_report *r;
	struct buf	 text;		/* first text/plain, decoded */
	int		 have_text;
	struct buf	 html;		/* first text/html, decoded */
	int		 have_html;
	struct buf	 status;	/* message/delivery-status, decoded */
	int		 have_status;
	struct buf	 feedback;	/* message/feedback-report, decoded */
	int		 have_feedback;
	struct fields	 returned;	/* the returned message's header */
	int		 have_returned;
	int		 parts;
};

static void
id_add(struct bounce_report *r, const char *s, size_t n)
{
	while (n > 0 && (*s == '<' || isspace((unsigned char)*s)))
		s++, n--;
	while (n > 0 && (s[n - 1] == '>' || isspace((unsigned char)s[n - 1])))
		n--;
	if (n == 0 || n > ID_MAX || memchr(s, '@', n) == NULL ||
	    r->nids >= BOUNCE_IDS_MAX)
		return;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == '<' || s[i] == '>' ||
		    (unsigned char)s[i] >= 0x7f)
			return;
	for (size_t i = 0; i < r->nids; i++)
		if (strlen(r->ids[i]) == n && memcmp(r->ids[i], s, n) == 0)
			return;
	r->ids = xrealloc(r->ids, (r->nids + 1) * sizeof(*r->ids));
	r->ids[r->nids++] = xstrndup(s, n);
}

/* Every <id> in a References or In-Reply-To value. */
static void
ids_from_value(struct bounce_report *r, const char *v)
{
	const char *p = v, *e;

	while (p != NULL && (p = strchr(p, '<')) != NULL &&
	    (e = strchr(p, '>')) != NULL) {
		id_add(r, p, (size_t)(e - p + 1));
		p = e + 1;
	}
}

/* A "Message-ID:" line anywhere in a text (a returned header, quoted). */
static void
ids_from_text(struct bounce_report *r, const char *t, size_t n)
{
	const char *p = t, *end = t + n;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p)), *q = p;
		const char *le = eol ? eol : end;

		while (q < le && (*q == ' ' || *q == '\t' || *q == '>'))
			q++;
		if ((size_t)(le - q) > 11 && strncasecmp(q, "Message-ID:", 11) == 0) {
			q += 11;
			/* the value may be folded onto the next line */
			if (memchr(q, '<', (size_t)(le - q)) == NULL && eol != NULL &&
			    eol + 1 < end && (eol[1] == ' ' || eol[1] == '\t')) {
				q = eol + 1;
				eol = memchr(q, '\n', (size_t)(end - q));
				le = eol ? eol : end;
			}
			id_add(r, q, (size_t)(le - q));
		}
		p = eol ? eol + 1 : end;
	}
}

static void walk_part(struct walk *, const char *, const char *, int,
	    const char *);

/* The parts of a multipart body between its delimiter lines (RFC 2046 5.1.1). */
static void
walk_multipart(struct walk *w, const char *p, const char *end,
    const char *boundary, int depth, const char *deflt)
{
	size_t bl = strlen(boundary);
	const char *start = NULL;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *le = eol ? eol : end;

		if ((size_t)(le - p) >= bl + 2 && p[0] == '-' && p[1] == '-' &&
		    memcmp(p + 2, boundary, bl) == 0) {
			const char *rest = p + 2 + bl;
			int closing = le - rest >= 2 && rest[0] == '-' &&
			    rest[1] == '-';

			/* only transport padding may follow (RFC 2046 5.1.1) */
			for (rest += closing ? 2 : 0; rest < le &&
			    (*rest == ' ' || *rest == '\t'); rest++)
				;
			if (rest < le) {
				p = eol ? eol + 1 : end;
				continue;
			}
			if (start != NULL)	/* the LF before is the delimiter's */
				walk_part(w, start, p > start ? p - 1 : p,
				    depth + 1, deflt);
			if (closing || w->parts >= PARTS_MAX)
				return;
			start = eol ? eol + 1 : end;
		}
		p = eol ? eol + 1 : end;
	}
	if (start != NULL && start < end)	/* no closing delimiter */
		walk_part(w, start, end, depth + 1, deflt);
}

static void
keep_decoded(const struct fields *h, const char *body, const char *end,
    struct buf *b, int *have)
{
	if (*have)
		return;
	*have = 1;
	body_decode(h, body, (size_t)(end - body), b);
}

/* One body part [p, end): what it is decides what is kept of it. */
static void
walk_part(struct walk *w, const char *p, const char *end, int depth,
    const char *deflt)
{
	struct fields h = { 0 };
	struct ctype ct;
	const char *body;

	if (++w->parts > PARTS_MAX || depth > DEPTH_MAX)
		return;
	body = fields_parse(p, end, &h);
	ctype_parse(field_get(&h, "Content-Type"), deflt, &ct);
	if (strncmp(ct.type, "multipart/", 10) == 0 && ct.boundary[0] != '\0') {
		walk_multipart(w, body, end, ct.boundary, depth,
		    strcmp(ct.type, "multipart/digest") == 0 ? "message/rfc822" :
		    "text/plain");
	} else if (strcmp(ct.type, "message/delivery-status") == 0 ||
	    strcmp(ct.type, "message/global-delivery-status") == 0) {
		keep_decoded(&h, body, end, &w->status, &w->have_status);
	} else if (strcmp(ct.type, "message/feedback-report") == 0) {
		keep_decoded(&h, body, end, &w->feedback, &w->have_feedback);
	} else if (strcmp(ct.type, "message/rfc822") == 0 ||
	    strcmp(ct.type, "message/global") == 0 ||
	    strcmp(ct.type, "text/rfc822-headers") == 0 ||
	    strcmp(ct.type, "message/global-headers") == 0 ||
	    strcmp(ct.type, "message/rfc822-headers") == 0) {
		struct buf d = { 0 };

		/* the returned message: its header, not its text */
		body_decode(&h, body, (size_t)(end - body), &d);
		ids_from_text(w->r, buf_cstr(&d), d.len);
		if (!w->have_returned) {
			w->have_returned = 1;
			fields_parse(buf_cstr(&d), buf_cstr(&d) + d.len,
			    &w->returned);
		}
		buf_free(&d);
	} else if (strcmp(ct.type, "text/plain") == 0) {
		keep_decoded(&h, body, end, &w->text, &w->have_text);
	} else if (strcmp(ct.type, "text/html") == 0) {
		keep_decoded(&h, body, end, &w->html, &w->have_html);
	}
	fields_free(&h);
}

/*
 * HTML as text, roughly: tags removed (a block tag ends a line), the few
 * entities a reason uses decoded. Only for a report without text/plain.
 */
static void
html_to_text(const char *s, size_t n, struct buf *out)
{
	static const struct { const char *ent; char c; } ents[] = {
		{ "&lt;", '<' }, { "&gt;", '>' }, { "&amp;", '&' },
		{ "&quot;", '"' }, { "&#39;", '\'' }, { "&nbsp;", ' ' },
	};

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '<') {
			const char *e = memchr(s + i, '>', n - i);
			size_t tl = e ? (size_t)(e - (s + i)) : n - i;

			if (tl > 2 && (strncasecmp(s + i + 1, "br", 2) == 0 ||
			    strncasecmp(s + i + 1, "p", 1) == 0 ||
			    strncasecmp(s + i + 1, "/p", 2) == 0 ||
			    strncasecmp(s + i + 1, "div", 3) == 0 ||
			    strncasecmp(s + i + 1, "/div", 4) == 0 ||
			    strncasecmp(s + i + 1, "tr", 2) == 0 ||
			    strncasecmp(s + i + 1, "li", 2) == 0))
				buf_putc(out, '\n');
			i += tl;
			continue;
		}
		if (s[i] == '&') {
			size_t k;

			for (k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
				size_t el = strlen(ents[k].ent);

				if (n - i >= el && strncasecmp(s + i, ents[k].ent,
				    el) == 0) {
					buf_putc(out, ents[k].c);
					i += el - 1;
					break;
				}
			}
			if (k < sizeof(ents) / sizeof(ents[0]))
				continue;
		}
		buf_putc(out, s[i] == '\n' ? ' ' : s[i]);
	}
}

/* ---- addresses ---- */

static int
local_char(int c)
{
	return isalnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL);
}

static int
domain_char(int c)
{
	return isalnum(c) || c == '-' || c == '.';
}

/*
 * The next addr-spec in s[*pos..n): a run of atext and dots, "@", a
 * domain with a dot or a letter. Lower-cased into out. 0 when none left.
 */
static int
addr_next(const char *s, size_t n, size_t *pos, char out[ADDR_MAX + 1])
{
	for (size_t i = *pos; i < n; i++) {
		size_t a, b;

		if (s[i] != '@')
			continue;
		for (a = i; a > 0 && local_char((unsigned char)s[a - 1]); a--)
			;
		for (b = i + 1; b < n && domain_char((unsigned char)s[b]); b++)
			;
		while (a < i && s[a] == '.')
			a++;
		while (b > i + 1 && (s[b - 1] == '.' || s[b - 1] == '-'))
			b--;
		*pos = b > i + 1 ? b : i + 1;
		if (a == i || b == i + 1 || b - a > ADDR_MAX)
			continue;
		memcpy(out, s + a, b - a);
		out[b - a] = '\0';
		lower(out);
		return 1;
	}
	*pos = n;
	return 0;
}

/* The one address of a value ("rfc822; <a@b>", "Name <a@b>"), or 0. */
static int
addr_of(const char *v, char out[ADDR_MAX + 1])
{
	size_t pos = 0;

	return v != NULL && addr_next(v, strlen(v), &pos, out);
}

/* Addresses that are never the failed recipient: the system's own. */
static int
addr_is_system(const char *a, const struct bounce_opts *o)
{
	static const char *const sys[] = { "mailer-daemon@", "postmaster@",
	    "mail-daemon@", "mailerdaemon@", "no-reply@", "noreply@", NULL };
	size_t rl;

	for (int i = 0; sys[i] != NULL; i++)
		if (strncmp(a, sys[i], strlen(sys[i])) == 0)
			return 1;
	if (o->return_local != NULL && (rl = strlen(o->return_local)) > 0 &&
	    strncasecmp(a, o->return_local, rl) == 0 &&
	    (a[rl] == '@' || a[rl] == o->delimiter))
		return 1;
	return 0;
}

/* ---- VERP tokens ---- */

static void
token_from_addr(struct bounce_report *r, const struct bounce_opts *o,
    const char *addr)
{
	size_t rl, tl;
	const char *t, *at;

	if (o->return_local == NULL || (rl = strlen(o->return_local)) == 0 ||
	    strncasecmp(addr, o->return_local, rl) != 0 ||
	    addr[rl] != o->delimiter || (at = strchr(addr, '@')) == NULL)
		return;
	t = addr + rl + 1;
	tl = (size_t)(at - t);
	if (tl == 0 || tl > TOKEN_MAX || r->ntokens >= BOUNCE_TOKENS_MAX)
		return;
	for (size_t i = 0; i < r->ntokens; i++)
		if (strlen(r->tokens[i]) == tl && memcmp(r->tokens[i], t, tl) == 0)
			return;
	r->tokens = xrealloc(r->tokens, (r->ntokens + 1) * sizeof(*r->tokens));
	r->tokens[r->ntokens++] = xstrndup(t, tl);
}

static void
tokens_from_value(struct bounce_report *r, const struct bounce_opts *o,
    const char *v)
{
	char a[ADDR_MAX + 1];
	size_t pos = 0, n;

	if (v == NULL)
		return;
	n = strlen(v);
	while (addr_next(v, n, &pos, a))
		token_from_addr(r, o, a);
}

static void
tokens_collect(struct walk *w, const struct fields *top,
    const struct fields *fb)
{
	static const char *const names[] = { "Delivered-To", "X-Original-To",
	    "To", "Envelope-To", "X-Envelope-To", NULL };

	if (w->o->return_local == NULL)
		return;
	for (int i = 0; names[i] != NULL; i++)
		for (size_t k = 0; k < top->n; k++)
			if (strcasecmp(top->v[k].name, names[i]) == 0)
				tokens_from_value(w->r, w->o, top->v[k].value);
	for (int i = 0; i < 2; i++)
		tokens_from_value(w->r, w->o, w->o->env[i]);
	tokens_from_value(w->r, w->o, field_get(fb, "Original-Mail-From"));
	tokens_from_value(w->r, w->o, field_get(&w->returned, "Return-Path"));
}

/* ---- classification ---- */

/*
 * Words in a diagnostic, checked in this order: what says the receiver
 * refused us (policy: never suppresses, so doubt goes here), then what
 * says "later" (soft), then what says the address is gone (hard).
 */
static const char *const policy_words[] = {
	"spam", "blocked", "blacklist", "blocklist", "block list",
	"black list", "spamhaus", "spamcop", "barracuda", "reputation",
	"not authorized", "unauthorized", "relay access denied",
	"relaying denied", "relay not permitted", "not permitted to relay",
	"relaying not allowed", "unable to relay", "policy", "dmarc", "spf",
	"dkim", "content rejected", "message content", "virus", "malware",
	"rbl", "is listed", "rate limit", "ratelimit", "too many", "bulk mail",
	"unsolicited", "authentication required", "sender address rejected",
	"sender denied", "sender rejected", "message rejected", "message too",
	"size limit", "exceeds", "too large", "too big", "poor", "abuse",
	"phish", "suspicious", "listed at", "listed in", "denied by", NULL,
};
static const char *const soft_words[] = {
	"mailbox full", "mailbox is full", "quota", "storage", "over limit",
	"temporar", "try again", "try later", "timed out", "timeout",
	"connection refused", "expired", "retry time", "deferred",
	"not yet been delivered", "too busy", "resources", "full mailbox",
	"mailbox has exceeded", "out of space", "disk full", NULL,
};
static const char *const hard_words[] = {
	"user unknown", "unknown user", "no such user", "no such mailbox",
	"no such recipient", "no such address", "unknown recipient",
	"recipient unknown", "invalid recipient", "invalid mailbox",
	"invalid address", "mailbox not found", "mailbox unavailable",
	"mailbox does not exist", "mailbox unknown", "does not exist",
	"doesn't exist", "not found", "no mailbox", "address rejected",
	"recipient rejected", "recipientnotfound", "recipnotfound",
	"unrouteable", "unroutable", "no such domain", "domain does not exist",
	"name or service not known", "null mx", "does not accept mail",
	"disabled", "deactivated", "inactive", "not a valid", "no longer",
	"bad destination", "doesn't have a", "does not have a",
	"couldn't be found", "could not be found", "unknown address",
	"illegal alias", "unknown local part", "user not found",
	"account closed", "account has been closed", "not our customer",
	"nxdomain", "unknown domain", "moved", NULL,
};

static enum bounce_kind
text_kind(const char *t)
{
	if (t == NULL || *t == '\0')
		return BOUNCE_NONE;
	if (any_ci(t, policy_words))
		return BOUNCE_POLICY;
	if (any_ci(t, soft_words))
		return BOUNCE_SOFT;
	if (any_ci(t, hard_words))
		return BOUNCE_HARD;
	return BOUNCE_NONE;
}

/* RFC 3463 subject.detail → what it says of the address (NONE: generic). */
static enum bounce_kind
code_kind(int subject, int detail)
{
	switch (subject) {
	case 1:		/* addressing */
		if (detail == 7 || detail == 8)
			return BOUNCE_POLICY;	/* our own sender address */
		return detail == 0 || detail == 5 ? BOUNCE_NONE : BOUNCE_HARD;
	case 2:		/* mailbox */
		return detail == 1 ? BOUNCE_HARD : detail == 3 ? BOUNCE_POLICY :
		    detail == 0 ? BOUNCE_NONE : BOUNCE_SOFT;
	case 3:		/* mail system */
		return detail == 0 ? BOUNCE_NONE : detail <= 2 ? BOUNCE_SOFT :
		    BOUNCE_POLICY;
	case 4:		/* network and routing */
		return detail == 4 ? BOUNCE_HARD : detail == 0 ? BOUNCE_NONE :
		    BOUNCE_SOFT;
	case 6:		/* content */
	case 7:		/* security or policy */
		return BOUNCE_POLICY;
	default:	/* 0 other, 5 protocol: the text says more */
		return BOUNCE_NONE;
	}
}

/* "5.1.1" → class, subject, detail; 0 when not an RFC 3463 code. */
static int
status_split(const char *s, int *cls, int *subj, int *det)
{
	char *e;
	long a, b;

	if (s != NULL)
		*cls = s[0] - '0';
	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') ||
	    s[1] != '.' || !isdigit((unsigned char)s[2]))
		return 0;
	a = strtol(s + 2, &e, 10);
	if (*e != '.' || e - (s + 2) > 3 || !isdigit((unsigned char)e[1]))
		return 0;
	s = e + 1;
	b = strtol(s, &e, 10);
	if (*e != '\0' || e - s > 3)
		return 0;
	*subj = (int)a;
	*det = (int)b;
	return 1;
}

enum bounce_kind
bounce_classify(const char *action, const char *status, const char *text)
{
	enum bounce_kind tk = text_kind(text), ck;
	int cls, subj = 0, det = 0;

	if (action != NULL && strcmp(action, "failed") != 0)
		return BOUNCE_NONE;	/* delayed, delivered, relayed, expanded */
	if (status != NULL && status_split(status, &cls, &subj, &det)) {
		ck = code_kind(subj, det);
		if (cls == 2)
			return BOUNCE_NONE;
		if (tk == BOUNCE_POLICY || (ck == BOUNCE_POLICY && tk != BOUNCE_HARD))
			return BOUNCE_POLICY;
		if (cls == 4)
			return BOUNCE_SOFT;
		if (ck != BOUNCE_NONE && ck != BOUNCE_POLICY)
			return ck;
		/* a permanent failure for no stated reason: as a 5xx to RCPT */
		return tk != BOUNCE_NONE ? tk : BOUNCE_HARD;
	}
	if (tk != BOUNCE_NONE)
		return tk;
	return BOUNCE_SOFT;	/* a failure we cannot read: counted, no more */
}

/*
 * The first RFC 3463 code in a text ("550 5.1.1 <a@b>...", "(#5.1.1)",
 * "#550 5.1.10 ..."): a digit 2/4/5, '.', 1-3 digits, '.', 1-3 digits,
 * not part of a longer dotted number (an IP address).
 */
static int
status_find(const char *t, char out[12])
{
	for (const char *p = t; p != NULL && *p; p++) {
		const char *q = p;
		size_t n;

		if ((*p != '2' && *p != '4' && *p != '5') ||
		    (p > t && (isalnum((unsigned char)p[-1]) || p[-1] == '.')))
			continue;
		q = p + 1;
		if (*q++ != '.')
			continue;
		for (n = 0; isdigit((unsigned char)*q) && n < 4; q++, n++)
			;
		if (n == 0 || n > 3 || *q++ != '.')
			continue;
		for (n = 0; isdigit((unsigned char)*q) && n < 4; q++, n++)
			;
		if (n == 0 || n > 3 || *q == '.' || isalnum((unsigned char)*q))
			continue;
		if ((size_t)(q - p) >= 12)
			continue;
		memcpy(out, p, (size_t)(q - p));
		out[q - p] = '\0';
		return 1;
	}
	return 0;
}

/* The RFC 5321 reply code at the start of a quoted reply ("550 ...", "#550"). */
static int
reply_code_find(const char *t)
{
	for (const char *p = t; p != NULL && *p; p++) {
		if ((*p != '4' && *p != '5') || !isdigit((unsigned char)p[1]) ||
		    !isdigit((unsigned char)p[2]) ||
		    (p[3] != ' ' && p[3] != '-' && p[3] != ':'))
			continue;
		if (p > t && p[-1] != ' ' && p[-1] != '#' && p[-1] != '\'' &&
		    p[-1] != ':' && p[-1] != '(' && p[-1] != '"')
			continue;
		return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	}
	return 0;
}

/* ---- recipients ---- */

static struct bounce_rcpt *
rcpt_add(struct bounce_report *r, const char *addr)
{
	struct bounce_rcpt *x;

	if (r->nrcpt >= BOUNCE_RECIPIENTS_MAX)
		return NULL;
	r->rcpt = xrealloc(r->rcpt, (r->nrcpt + 1) * sizeof(*r->rcpt));
	x = &r->rcpt[r->nrcpt++];
	memset(x, 0, sizeof(*x));
	x->recipient = addr != NULL ? xstrdup(addr) : NULL;
	return x;
}

static struct bounce_rcpt *
rcpt_find(struct bounce_report *r, const char *addr)
{
	for (size_t i = 0; i < r->nrcpt; i++)
		if (r->rcpt[i].recipient != NULL &&
		    strcmp(r->rcpt[i].recipient, addr) == 0)
			return &r->rcpt[i];
	return NULL;
}

/* Fill in a recipient's status (from the text when none), kind, reason. */
static void
rcpt_finish(struct bounce_rcpt *x, const char *action, const char *text)
{
	char st[12];
	int code;

	if (x->action == NULL && action != NULL)
		x->action = xstrdup(action);
	if (x->status[0] == '\0' && text != NULL && status_find(text, st))
		snprintf(x->status, sizeof(x->status), "%s", st);
	free(x->reason);
	x->reason = mime_clean_phrase(text, text ? strlen(text) : 0,
	    BOUNCE_REASON_MAX);
	if (x->status[0] == '\0' && (code = reply_code_find(text)) != 0 &&
	    (x->action == NULL || strcmp(x->action, "failed") == 0)) {
		/* a basic reply code only: 4xx later, 552 full, else the text */
		enum bounce_kind tk = text_kind(text);

		x->kind = tk == BOUNCE_POLICY ? BOUNCE_POLICY : code / 100 == 4 ?
		    BOUNCE_SOFT : code == 552 ? BOUNCE_SOFT :
		    tk != BOUNCE_NONE ? tk : BOUNCE_HARD;
		return;
	}
	x->kind = bounce_classify(x->action, x->status, text);
}

/* What an RFC 3463 code means, for a recipient without Diagnostic-Code. */
static const char *
status_words(const char *status)
{
	static const struct { int s, d; const char *what; } t[] = {
		{ 1, 1, "bad destination mailbox address" },
		{ 1, 2, "bad destination system address" },
		{ 1, 3, "bad destination mailbox address syntax" },
		{ 1, 6, "destination mailbox has moved" },
		{ 1, 10, "recipient address has null MX" },
		{ 2, 1, "mailbox disabled, not accepting messages" },
		{ 2, 2, "mailbox full" },
		{ 2, 3, "message length exceeds administrative limit" },
		{ 3, 1, "mail system full" },
		{ 4, 4, "unable to route" },
		{ 4, 7, "delivery time expired" },
		{ 7, 1, "delivery not authorized, message refused" },
	};
	int cls, s, d;

	if (status_split(status, &cls, &s, &d))
		for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
			if (t[i].s == s && t[i].d == d)
				return t[i].what;
	return "";
}

/* ---- RFC 3464 ---- */

/* A lower-case token of [a-z-] (an Action value), or NULL. */
static char *
action_of(const char *v)
{
	char a[16];
	size_t n = 0;

	if (v == NULL)
		return NULL;
	for (; *v && n + 1 < sizeof(a); v++) {
		int c = tolower((unsigned char)*v);

		if (!(c >= 'a' && c <= 'z') && c != '-')
			break;
		a[n++] = (char)c;
	}
	a[n] = '\0';
	return n > 0 ? xstrdup(a) : NULL;
}

static void
dsn_recipient(struct bounce_report *r, const struct fields *f)
{
	const char *st = field_get(f, "Status"), *diag;
	char a[ADDR_MAX + 1], code[12] = "";
	int have, cls, s, d;
	char *action = action_of(field_get(f, "Action"));
	struct bounce_rcpt *x;

	have = addr_of(field_get(f, "Original-Recipient"), a) ||
	    addr_of(field_get(f, "Final-Recipient"), a) ||
	    addr_of(field_get(f, "X-Actual-Recipient"), a);
	if (st != NULL) {
		size_t n = strcspn(st, " \t(;");

		if (n < sizeof(code)) {
			memcpy(code, st, n);
			code[n] = '\0';
		}
		if (!status_split(code, &cls, &s, &d))
			code[0] = '\0';
	}
	if (!have && action == NULL && code[0] == '\0')
		return;
	if (action == NULL && code[0] != '\0')	/* RFC 3464 requires it */
		action = xstrdup(code[0] == '5' ? "failed" : code[0] == '4' ?
		    "delayed" : "delivered");
	if ((x = rcpt_add(r, have ? a : NULL)) == NULL) {
		free(action);
		return;
	}
	snprintf(x->status, sizeof(x->status), "%s", code);
	x->action = action;
	if ((diag = field_get(f, "Diagnostic-Code")) != NULL &&
	    strchr(diag, ';') != NULL && strcspn(diag, ";") < 20)
		diag = strchr(diag, ';') + 1;	/* "smtp; 550 ..." */
	while (diag != NULL && isspace((unsigned char)*diag))
		diag++;
	rcpt_finish(x, NULL, diag != NULL && *diag ? diag : status_words(code));
}

/* The per-recipient blocks after the per-message one (RFC 3464 2.1). */
static void
dsn_parse(struct bounce_report *r, const struct buf *b)
{
	const char *p = b->data ? b->data : "", *end = p + b->len;
	int first = 1;

	while (p < end) {
		struct fields f = { 0 };

		p = fields_parse(p, end, &f);
		if (f.n == 0)
			continue;
		if (first && field_get(&f, "Final-Recipient") == NULL &&
		    field_get(&f, "Original-Recipient") == NULL) {
			first = 0;	/* Reporting-MTA, Arrival-Date, ... */
			fields_free(&f);
			continue;
		}
		first = 0;
		dsn_recipient(r, &f);
		fields_free(&f);
	}
}

/* ---- RFC 5965 ---- */

static void
arf_parse(struct walk *w, const struct fields *fb)
{
	const char *type = field_get(fb, "Feedback-Type");
	char t[32], a[ADDR_MAX + 1], *why;
	enum bounce_kind k;
	size_t before = w->r->nrcpt;

	snprintf(t, sizeof(t), "%s", type ? type : "abuse");
	t[strcspn(t, " \t;")] = '\0';
	lower(t);
	k = strcmp(t, "not-spam") == 0 ? BOUNCE_NONE : BOUNCE_COMPLAINT;
	why = xasprintf("complaint (ARF feedback-type %s)", t);
	for (size_t i = 0; i < fb->n; i++)
		if (strcasecmp(fb->v[i].name, "Original-Rcpt-To") == 0 &&
		    addr_of(fb->v[i].value, a) && rcpt_find(w->r, a) == NULL)
			rcpt_add(w->r, a);
	if (w->r->nrcpt == before)
		rcpt_add(w->r, addr_of(field_get(&w->returned, "To"), a) ? a :
		    NULL);
	for (size_t i = before; i < w->r->nrcpt; i++) {
		w->r->rcpt[i].kind = k;
		w->r->rcpt[i].reason = mime_clean_phrase(why, strlen(why),
		    BOUNCE_REASON_MAX);
	}
	free(why);
}

/* ---- an MTA's own words ---- */

static const char *const bounce_subjects[] = {
	"undeliver", "delivery status notification", "delivery failure",
	"failure notice", "mail delivery failed", "returned mail",
	"delivery has failed", "could not be delivered", "non-delivery",
	"nondeliverable", "mail delivery system", "delivery notification",
	"delivery problem", "warning: message", "warning: could not send",
	"mail system error", "unzustellbar", "non remis", NULL,
};
static const char *const bounce_senders[] = {
	"mailer-daemon@", "postmaster@", "mail-daemon@", "mailerdaemon@",
	"mail delivery", NULL,
};
static const char *const delay_words[] = {
	"not yet been delivered", "will continue to try", "will keep trying",
	"warning message only", "has been delayed", "delivery is delayed",
	"still trying", "delivery delayed", "(delay)", "is delayed", NULL,
};
/* Where the returned copy starts: nothing after it is the report. */
static const char *const copy_marks[] = {
	"copy of the message", "original message follows",
	"unsent message below", "message headers follow", "returned message",
	"original message headers", "below this line", NULL,
};

static int
is_text_bounce(const struct fields *top)
{
	return any_ci(field_get(top, "From"), bounce_senders) ||
	    any_ci(field_get(top, "Subject"), bounce_subjects);
}

struct found {
	char		 addr[ADDR_MAX + 1];
	struct buf	 coded;		/* lines with an SMTP code */
	struct buf	 other;		/* the rest of its paragraph */
};

/*
 * The address alone on a line: "user@example.com", "<user@example.com>",
 * "<user@example.com>:" (qmail, Yahoo), "rfc822; user@example.com".
 */
static int
addr_line(const char *p, size_t n, char out[ADDR_MAX + 1])
{
	size_t pos = 0;

	while (n > 0 && (isspace((unsigned char)*p) || *p == '<'))
		p++, n--;
	if (n > 7 && strncasecmp(p, "rfc822;", 7) == 0)
		p += 7, n -= 7;
	while (n > 0 && (isspace((unsigned char)*p) || *p == '<'))
		p++, n--;
	while (n > 0 && (isspace((unsigned char)p[n - 1]) || p[n - 1] == ':' ||
	    p[n - 1] == '>' || p[n - 1] == ','))
		n--;
	if (n == 0 || !addr_next(p, n, &pos, out))
		return 0;
	return pos == n && strlen(out) == n;
}

static int
line_coded(const char *s)
{
	char st[12];

	return status_find(s, st) || reply_code_find(s) != 0;
}

/*
 * Append the lines from line `i` up to an empty line to f, CONTEXT_MAX
 * octets in all (an address repeated on every line costs nothing more).
 */
#define CONTEXT_MAX	2000
static void
found_context(struct found *f, char **lines, size_t nl, size_t i)
{
	for (size_t k = i; k < nl && lines[k][0] != '\0' &&
	    f->coded.len + f->other.len < CONTEXT_MAX; k++) {
		struct buf *b = line_coded(lines[k]) ? &f->coded : &f->other;

		if (b->len > 0)
			buf_putc(b, ' ');
		buf_puts(b, lines[k]);
	}
}

static struct found *
found_get(struct found **v, size_t *n, const char *addr)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i].addr, addr) == 0)
			return &(*v)[i];
	if (*n >= BOUNCE_RECIPIENTS_MAX)
		return NULL;
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	memset(&(*v)[*n], 0, sizeof(**v));
	snprintf((*v)[*n].addr, sizeof((*v)[*n].addr), "%s", addr);
	return &(*v)[(*n)++];
}

/* The report's lines (trimmed, the returned copy cut off); caller frees. */
static char **
report_lines(const char *t, size_t *nl)
{
	char **lines = NULL;
	size_t n = 0;

	for (const char *p = t; *p && n < 4000;) {
		size_t l = strcspn(p, "\n");
		char *s = trim_dup(p, l);

		if (any_ci(s, copy_marks) && n > 0) {
			free(s);
			break;
		}
		lines = xrealloc(lines, (n + 1) * sizeof(*lines));
		lines[n++] = s;
		p += l + (p[l] == '\n');
	}
	*nl = n;
	return lines;
}

/*
 * Recipients of a bounce written for people: an address alone on a line
 * with the lines under it (qmail, Yahoo, Exim, Sendmail, old Exchange,
 * old Gmail), else an address in a sentence about the delivery ("Your
 * message to X couldn't be delivered"). A recipient whose paragraph
 * quotes no SMTP reply gets the report's first one.
 */
static void
text_parse(struct walk *w, const char *text, const struct fields *top)
{
	static const char *const sentence[] = { "deliver", "recipient",
	    "fail", "reject", "address", NULL };
	size_t nl, nf = 0;
	char **lines = report_lines(text, &nl), a[ADDR_MAX + 1];
	struct found *f = NULL, *x;
	const char *first_coded = NULL, *action;

	action = any_ci(field_get(top, "Subject"), (const char *const[]){
	    "delay", "warning", NULL }) || any_ci(text, delay_words) ?
	    "delayed" : "failed";
	for (size_t i = 0; i < nl; i++) {
		if (first_coded == NULL && line_coded(lines[i]))
			first_coded = lines[i];
		if (addr_line(lines[i], strlen(lines[i]), a) &&
		    !addr_is_system(a, w->o) &&
		    (x = found_get(&f, &nf, a)) != NULL)
			found_context(x, lines, nl, i + 1);
	}
	for (size_t i = 0; nf == 0 && i < nl; i++) {
		size_t pos = 0, len = strlen(lines[i]);

		if (!any_ci(lines[i], sentence))
			continue;
		while (addr_next(lines[i], len, &pos, a))
			if (!addr_is_system(a, w->o) &&
			    (x = found_get(&f, &nf, a)) != NULL)
				found_context(x, lines, nl, i);
	}
	if (nf == 0) {		/* a bounce that names no one we can read */
		struct bounce_rcpt *r = rcpt_add(w->r, NULL);

		if (r != NULL)
			rcpt_finish(r, action, first_coded);
	}
	for (size_t i = 0; i < nf; i++) {
		struct bounce_rcpt *r = rcpt_add(w->r, f[i].addr);

		/* one recipient: the report's SMTP reply is about it */
		if (f[i].coded.len == 0 && first_coded != NULL && nf == 1)
			buf_puts(&f[i].coded, first_coded);
		if (f[i].coded.len > 0 && f[i].other.len > 0)
			buf_putc(&f[i].coded, ' ');
		buf_append(&f[i].coded, buf_cstr(&f[i].other), f[i].other.len);
		if (r != NULL)
			rcpt_finish(r, action, buf_cstr(&f[i].coded));
		buf_free(&f[i].coded);
		buf_free(&f[i].other);
	}
	free(f);
	for (size_t i = 0; i < nl; i++)
		free(lines[i]);
	free(lines);
}

/* ---- RFC 3834 and its informal cousins ---- */

static const char *const auto_subjects[] = {
	"out of office", "out of the office", "out-of-office",
	"automatic reply", "auto-reply", "autoreply", "auto reply",
	"auto-response", "autoresponse", "automatic response", "auto:",
	"vacation", "away from", "on leave", "abwesen", "absence",
	"réponse automatique", "respuesta automática", "risposta automatica",
	"automatisch antwoord", "automatische antwort",
	/* challenge-response: the sender is asked to prove it is human */
	"please confirm your message", "confirm your email",
	"verify your email", "awaiting verification", "sender verification",
	"verification required", "challenge", "[tmda]", "boxtrapper", NULL,
};

static int
is_auto_reply(const struct fields *top)
{
	static const char *const flags[] = { "X-Autoreply", "X-Autorespond",
	    "X-Autoresponder", "X-Auto-Reply", "X-Challenge",
	    "X-Boxtrapper", NULL };
	const char *v;

	if ((v = field_get(top, "Auto-Submitted")) != NULL &&
	    strncasecmp(v, "auto-replied", 12) == 0)
		return 1;
	for (int i = 0; flags[i] != NULL; i++)
		if ((v = field_get(top, flags[i])) != NULL &&
		    strncasecmp(v, "no", 2) != 0)
			return 1;
	if (((v = field_get(top, "Precedence")) != NULL &&
	    strncasecmp(v, "auto_reply", 10) == 0) ||
	    ((v = field_get(top, "X-Autogenerated")) != NULL &&
	    strncasecmp(v, "reply", 5) == 0) ||
	    has_ci(field_get(top, "X-POST-MessageClass"), "autoresponder"))
		return 1;
	return any_ci(field_get(top, "Subject"), auto_subjects);
}

static void
auto_reply(struct walk *w, const struct fields *top)
{
	const char *subj = field_get(top, "Subject");
	char a[ADDR_MAX + 1];
	struct bounce_rcpt *x;

	x = rcpt_add(w->r, addr_of(field_get(top, "From"), a) &&
	    !addr_is_system(a, w->o) ? a : NULL);
	x->kind = BOUNCE_AUTO_REPLY;
	x->reason = mime_clean_phrase(subj ? subj : "auto-reply",
	    strlen(subj ? subj : "auto-reply"), BOUNCE_REASON_MAX);
}

/* ---- the whole message ---- */

/* LF line ends, no NUL, at most BOUNCE_MESSAGE_MAX; an mbox line skipped. */
static void
normalise(const char *msg, size_t len, struct buf *m)
{
	if (len > BOUNCE_MESSAGE_MAX)
		len = BOUNCE_MESSAGE_MAX;
	if (len >= 5 && memcmp(msg, "From ", 5) == 0) {
		const char *nl = memchr(msg, '\n', len), *cr = memchr(msg, '\r', len);
		const char *e = nl && (!cr || nl < cr) ? nl : cr;

		len = e ? len - (size_t)(e + 1 - msg) : 0;
		msg = e ? e + 1 : msg;
		if (e != NULL && *e == '\r' && len > 0 && *msg == '\n')
			msg++, len--;
	}
	buf_reserve(m, len + 1);
	for (size_t i = 0; i < len; i++) {
		char c = msg[i];

		if (c == '\r') {
			if (i + 1 < len && msg[i + 1] == '\n')
				continue;
			c = '\n';
		}
		buf_putc(m, c == '\0' ? ' ' : c);
	}
}

static int
severity(enum bounce_kind k)
{
	static const int rank[BOUNCE_NKINDS] = { 0, 5, 4, 2, 3, 1 };

	return rank[k];
}

static void
walk_free(struct walk *w)
{
	buf_free(&w->text);
	buf_free(&w->html);
	buf_free(&w->status);
	buf_free(&w->feedback);
	fields_free(&w->returned);
}

int
bounce_parse(const char *msg, size_t len, const struct bounce_opts *o,
    struct bounce_report **out, char **err)
{
	struct buf m = { 0 };
	struct fields top = { 0 }, fb = { 0 };
	struct walk w;
	struct bounce_report *r;
	const char *p, *end, *eol;

	*out = NULL;
	normalise(msg, len, &m);
	p = buf_cstr(&m);
	end = p + m.len;
	eol = memchr(p, '\n', m.len);
	if (m.len == 0 || field_name_len(p, eol ? eol : end) == 0) {
		set_err(err, "not a mail message: %s", m.len == 0 ? "empty input" :
		    "no header field before the first line of text");
		buf_free(&m);
		return FU_PERMFAIL;
	}
	r = xcalloc(1, sizeof(*r));
	memset(&w, 0, sizeof(w));
	w.o = o;
	w.r = r;
	fields_parse(p, end, &top);
	walk_part(&w, p, end, 0, "text/plain");
	if (!w.have_text && w.have_html) {
		html_to_text(buf_cstr(&w.html), w.html.len, &w.text);
		w.have_text = 1;
	}
	{
		struct bounce_report own = { 0 };

		ids_from_value(&own, field_get(&top, "Message-ID"));
		if (own.nids > 0) {
			r->message_id = own.ids[0];
			for (size_t i = 1; i < own.nids; i++)
				free(own.ids[i]);
		}
		free(own.ids);
	}
	ids_from_value(r, field_get(&top, "In-Reply-To"));
	ids_from_value(r, field_get(&top, "References"));
	ids_from_text(r, buf_cstr(&w.text), w.text.len);
	fields_parse(buf_cstr(&w.feedback), buf_cstr(&w.feedback) +
	    w.feedback.len, &fb);

	if (w.have_status && (dsn_parse(r, &w.status), r->nrcpt > 0))
		r->format = "dsn";
	else if (w.have_feedback) {
		r->format = "arf";
		arf_parse(&w, &fb);
	} else if (w.have_status || is_text_bounce(&top)) {
		r->format = "text";
		text_parse(&w, buf_cstr(&w.text), &top);
	} else if (is_auto_reply(&top)) {
		r->format = "auto-reply";
		auto_reply(&w, &top);
	} else
		r->format = "none";
	tokens_collect(&w, &top, &fb);
	for (size_t i = 0; i < r->nrcpt; i++)
		if (severity(r->rcpt[i].kind) > severity(r->kind))
			r->kind = r->rcpt[i].kind;
	fields_free(&top);
	fields_free(&fb);
	walk_free(&w);
	buf_free(&m);
	*out = r;
	return FU_OK;
}

void
bounce_report_free(struct bounce_report *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nrcpt; i++) {
		free(r->rcpt[i].recipient);
		free(r->rcpt[i].action);
		free(r->rcpt[i].reason);
	}
	for (size_t i = 0; i < r->ntokens; i++)
		free(r->tokens[i]);
	for (size_t i = 0; i < r->nids; i++)
		free(r->ids[i]);
	free(r->rcpt);
	free(r->tokens);
	free(r->ids);
	free(r->message_id);
	free(r);
}
