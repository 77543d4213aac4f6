/*
 * test_mime: mime.c tables and built messages, read back by a strict reader
 * of our own (independent of mime.c); --write DIR: e2e samples.
 */
#include "mime.h"
#include "tap.h"
#include "util.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SAMPLE_DATE	1764069720	/* Tue, 25 Nov 2025 11:22:00 +0000 */
#define ONE_MB		(1024 * 1024)

/* --- mime_clean_phrase ------------------------------------------------ */

struct phrase_case {
	const char	*name;
	const char	*in;
	size_t		 len;		/* 0: strlen(in) */
	size_t		 max;
	const char	*want;
};

static const struct phrase_case phrase_cases[] = {
	{ "plain", "hello world", 0, 200, "hello world" },
	{ "empty", "", 0, 200, "" },
	{ "only white space", " \r\n\t ", 0, 200, "" },
	{ "trim and fold", "  a \r\n b\t\tc  ", 0, 200, "a b c" },
	{ "CRLF header injection", "Re: x\r\nBcc: evil@example.com", 0, 200,
	    "Re: x Bcc: evil@example.com" },
	{ "bare CR", "a\rb", 0, 200, "a b" },
	{ "bare LF", "a\nb", 0, 200, "a b" },
	{ "NUL inside", "a\0b", 3, 200, "a b" },
	{ "tab", "a\tb", 0, 200, "a b" },
	{ "C0 and DEL", "a\x01\x1b\x7f" "b", 0, 200, "a b" },
	{ "C1 NEL", "a\xc2\x85" "b", 0, 200, "a b" },
	{ "C1 APC", "a\xc2\x9f" "b", 0, 200, "a b" },
	{ "U+2028 line separator", "a\xe2\x80\xa8" "b", 0, 200, "a b" },
	{ "U+2029 paragraph separator", "a\xe2\x80\xa9" "b", 0, 200, "a b" },
	{ "invalid byte", "a\xff" "b", 0, 200, "a\xef\xbf\xbd" "b" },
	{ "truncated sequence at end", "a\xe2\x82", 0, 200,
	    "a\xef\xbf\xbd" },
	{ "overlong slash", "\xc0\xaf", 0, 200,
	    "\xef\xbf\xbd\xef\xbf\xbd" },
	{ "surrogate", "\xed\xa0\x80", 0, 200,
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
	{ "above U+10FFFF", "\xf4\x90\x80\x80", 0, 200,
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
	{ "lone continuation", "\x80x", 0, 200, "\xef\xbf\xbdx" },
	{ "accents kept", "Zo\xc3\xab \xc3\xb1" "and\xc3\xba", 0, 200,
	    "Zo\xc3\xab \xc3\xb1" "and\xc3\xba" },
	{ "emoji kept", "party \xf0\x9f\x8e\x89", 0, 200,
	    "party \xf0\x9f\x8e\x89" },
	{ "Hebrew kept", "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d", 0, 200,
	    "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d" },
	{ "Arabic and RLM kept", "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7"
	    "\xe2\x80\x8f", 0, 200,
	    "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7\xe2\x80\x8f" },
	{ "exactly max", "abcd", 0, 4, "abcd" },
	{ "one over max", "abcde", 0, 4, "abc\xe2\x80\xa6" },
	{ "cut drops the space before the ellipsis", "ab cdef", 0, 4,
	    "ab\xe2\x80\xa6" },
	{ "trailing space does not count", "abcd   ", 0, 4, "abcd" },
	{ "cut on a UTF-8 boundary", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 0, 3,
	    "\xc3\xa9\xc3\xa9\xe2\x80\xa6" },
	{ "cut between emoji", "\xf0\x9f\x8e\x89\xf0\x9f\x8e\x89"
	    "\xf0\x9f\x8e\x89", 0, 2, "\xf0\x9f\x8e\x89\xe2\x80\xa6" },
	{ "max 1", "abc", 0, 1, "\xe2\x80\xa6" },
	{ "max 0", "abc", 0, 0, "" },
	{ "folding before cut", "a    b    c", 0, 5, "a b c" },
};

static void
test_clean_phrase(void)
{
	for (size_t i = 0; i < sizeof(phrase_cases) / sizeof(phrase_cases[0]);
	    i++) {
		const struct phrase_case *c = &phrase_cases[i];
		size_t len = c->len ? c->len : strlen(c->in);
		char *got = mime_clean_phrase(c->in, len, c->max);

		tap_str(got, c->want, "clean_phrase: %s", c->name);
		free(got);
	}

	char *got = mime_clean_phrase(NULL, 0, 10);
	tap_str(got, "", "clean_phrase: NULL input");
	free(got);

	/* 1 MB of two-byte characters: 199 of them and the ellipsis */
	size_t n = ONE_MB;
	char *big = xmalloc(n);
	for (size_t i = 0; i < n; i += 2)
		memcpy(big + i, "\xc3\xa4", 2);
	got = mime_clean_phrase(big, n, MIME_PHRASE_MAX);
	size_t chars = 0;
	for (const char *p = got; *p; p++)
		if (((unsigned char)*p & 0xc0) != 0x80)
			chars++;
	tap_ok(chars == MIME_PHRASE_MAX, "clean_phrase: 1 MB cut to %d "
	    "characters (got %zu)", MIME_PHRASE_MAX, chars);
	tap_ok(strlen(got) == 199 * 2 + 3 &&
	    strcmp(got + 199 * 2, "\xe2\x80\xa6") == 0,
	    "clean_phrase: 1 MB ends with the ellipsis");
	tap_ok(utf8_valid(got, strlen(got)), "clean_phrase: 1 MB output is UTF-8");
	free(got);
	free(big);
}

/* --- mime_address_ok -------------------------------------------------- */

struct addr_case {
	const char	*addr;
	int		 ok;
};

static const struct addr_case addr_cases[] = {
	{ "ana@example.com", 1 },
	{ "o'brien+tag@sub.example.co.uk", 1 },
	{ "a.b-c_d@xn--bcher-kva.example", 1 },
	{ "user@localhost", 1 },
	{ "x@a.b", 1 },
	{ "UPPER.Case@Example.COM", 1 },
	{ "1234@123.example", 1 },
	{ "!#$%&'*+-/=?^_`{|}~@example.com", 1 },
	{ "a@a-b.c-d.example", 1 },
	{ "", 0 },
	{ "plain", 0 },
	{ "a@b@example.com", 0 },
	{ "\"a\"@example.com", 0 },
	{ "a b@example.com", 0 },
	{ "a,b@example.com", 0 },
	{ "<a@example.com>", 0 },
	{ "a(b)@example.com", 0 },
	{ "a[b]@example.com", 0 },
	{ "a\\b@example.com", 0 },
	{ "a;b@example.com", 0 },
	{ "a:b@example.com", 0 },
	{ "a\r\nb@example.com", 0 },
	{ "a@example.com\n", 0 },
	{ "a\x01@example.com", 0 },
	{ "a\x7f@example.com", 0 },
	{ ".a@example.com", 0 },
	{ "a.@example.com", 0 },
	{ "a..b@example.com", 0 },
	{ "a@", 0 },
	{ "@example.com", 0 },
	{ "a@.example.com", 0 },
	{ "a@example.com.", 0 },
	{ "a@example..com", 0 },
	{ "a@-example.com", 0 },
	{ "a@example-.com", 0 },
	{ "a@exa_mple.com", 0 },
	{ "a@exa mple.com", 0 },
	{ "a@[192.0.2.1]", 0 },
	{ "jos\xc3\xa9@example.com", 0 },
	{ "a@ex\xc3\xa4mple.com", 0 },
	{ "a@example.com>", 0 },
	/* IDNs: A-labels only (RFC 3492 Punycode that round-trips) */
	{ "a@xn--mnchen-3ya.example", 1 },
	{ "a@xn--fiqs8s.example", 1 },
	{ "a@xn--p1ai.example", 1 },
	{ "a@xn--zca.example", 1 },
	{ "a@XN--bcher-kva.example", 1 },
	{ "a@xn--bcher-KVA.example", 1 },
	{ "a@xn--BCHER-kva.example", 0 },	/* upper case in a U-label */
	{ "a@xn--a.example", 0 },		/* U+0080, a C1 control */
	{ "a@sub.xn--a.example", 0 },
	{ "a@xn--abc.example", 0 },		/* C1 controls */
	{ "a@xn--6-b.example", 0 },		/* cut short */
	{ "a@xn--ls8h.example", 0 },		/* an emoji */
	{ "a@xn--0.example", 0 },		/* a digit that needs more */
	{ "a@xn--abc-.example", 0 },		/* trailing '-' */
	{ "a@xn--ab-cd.example", 0 },		/* cut short after "ab-" */
	{ "a@abcxn--d.example", 1 },		/* not a prefix */
};

static void
test_address_ok(void)
{
	char local64[65], local65[66], label64[64 + 1], addr[512];
	const char *why;
	int ok;

	for (size_t i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]);
	    i++) {
		const struct addr_case *c = &addr_cases[i];

		why = "unset";
		ok = mime_address_ok(c->addr, &why);
		tap_ok(ok == c->ok && (ok ? why == NULL : why != NULL),
		    "address_ok: %s (%zu) -> %d%s%s", c->ok ? "accepts" :
		    "rejects", i, ok, why ? ": " : "", why ? why : "");
	}
	tap_ok(!mime_address_ok(NULL, &why) && why != NULL,
	    "address_ok: rejects NULL");
	tap_ok(mime_address_ok("a@example.com", NULL),
	    "address_ok: why may be NULL");

	memset(local64, 'a', 64);
	local64[64] = '\0';
	memset(local65, 'a', 65);
	local65[65] = '\0';
	memset(label64, 'b', 64);
	label64[64] = '\0';
	snprintf(addr, sizeof(addr), "%s@example.com", local64);
	tap_ok(mime_address_ok(addr, &why), "address_ok: 64-octet local part");
	snprintf(addr, sizeof(addr), "%s@example.com", local65);
	tap_ok(!mime_address_ok(addr, &why), "address_ok: 65-octet local part");
	snprintf(addr, sizeof(addr), "a@%.63s.example", label64);
	tap_ok(mime_address_ok(addr, &why), "address_ok: 63-octet label");
	snprintf(addr, sizeof(addr), "a@%s.example", label64);
	tap_ok(!mime_address_ok(addr, &why), "address_ok: 64-octet label");

	/* a@ + labels up to exactly 254 octets, then one more */
	struct buf b = { 0 };
	buf_puts(&b, "a@");
	while (b.len + 50 < MIME_ADDRESS_MAX)
		buf_printf(&b, "%.49s.", label64);
	while (b.len < MIME_ADDRESS_MAX)
		buf_putc(&b, 'c');
	tap_ok(b.len == 254 && mime_address_ok(b.data, &why),
	    "address_ok: 254 octets");
	buf_putc(&b, 'c');
	tap_ok(!mime_address_ok(b.data, &why), "address_ok: 255 octets");
	buf_free(&b);

	tap_str(mime_address_domain("ana@example.com"), "example.com",
	    "address_domain: plain");
	tap_str(mime_address_domain("nodomain"), "", "address_domain: no @");
	tap_str(mime_address_domain("a@b@c.example"), "c.example",
	    "address_domain: last @");
	tap_str(mime_address_domain(NULL), "", "address_domain: NULL");
	const char *a = "x@y.example";
	tap_ok(mime_address_domain(a) == a + 2,
	    "address_domain: points into addr");
}

/* --- a strict reader for built messages ------------------------------- */

/*
 * Written from RFC 5322, 2045, 2046 and 2047, not from mime.c, and
 * stricter than a mail reader: it refuses what mime_build must never
 * write (a QP line over 76, trailing white space, a lower-case or stray
 * "=", base64 outside its alphabet, an encoded word over 75 characters or
 * splitting a UTF-8 sequence, a phrase that is neither atoms, one quoted
 * string nor encoded words).
 */

/* NULL when every line ends in CRLF and none is longer than 998 octets. */
static const char *
wire_problem(const char *p, size_t n)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r') {
			if (i + 1 >= n || p[i + 1] != '\n')
				return "bare CR";
			i++;
			col = 0;
		} else if (p[i] == '\n')
			return "bare LF";
		else if (p[i] == '\0')
			return "NUL";
		else if (++col > MIME_LINE_MAX)
			return "line over 998";
	}
	if (n < 2 || p[n - 2] != '\r' || p[n - 1] != '\n')
		return "no final CRLF";
	return NULL;
}

/* The header block (up to the empty line), unfolded, for line searches. */
static char *
header_block(const char *msg)
{
	const char *end = strstr(msg, "\r\n\r\n");
	struct buf b = { 0 };

	if (end == NULL)
		return xstrdup("");
	buf_append(&b, "\r\n", 2);
	for (const char *p = msg; p < end + 2; p++) {
		if (p[0] == '\r' && p[1] == '\n' && (p[2] == ' ' || p[2] == '\t')) {
			p++;
			continue;
		}
		buf_putc(&b, *p);
	}
	return buf_steal(&b);
}

/* A header line "\r\nName: value\r\n" present in the unfolded block. */
static int
has_line(const char *block, const char *line)
{
	char *needle = xasprintf("\r\n%s\r\n", line);
	int r = strstr(block, needle) != NULL;

	free(needle);
	return r;
}

/* How many header lines start with `name:` (case-insensitive)? */
static int
header_count(const char *block, const char *name)
{
	size_t n = strlen(name);
	int count = 0;

	for (const char *p = block; (p = strstr(p, "\r\n")) != NULL; p += 2)
		if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':')
			count++;
	return count;
}

static int
has_header(const char *block, const char *name)
{
	return header_count(block, name) > 0;
}

/* The value of the first `name` header of an unfolded block, or NULL. */
static char *
hval(const char *block, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = block; (p = strstr(p, "\r\n")) != NULL; p += 2)
		if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
			const char *v = p + 3 + n, *e;

			while (*v == ' ' || *v == '\t')
				v++;
			e = strstr(v, "\r\n");
			return xstrndup(v, (size_t)(e - v));
		}
	return NULL;
}

/* "type/subtype" of a Content-Type value, lower case. */
static char *
ct_type(const char *v)
{
	size_t n = v ? strcspn(v, "; \t") : 0;
	char *t = v ? xstrndup(v, n) : xstrdup("(none)");

	for (char *p = t; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return t;
}

/* A parameter of a Content-Type value (RFC 2045 5.1), unquoted; or NULL. */
static char *
ct_param(const char *v, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = v ? strchr(v, ';') : NULL; p != NULL;
	    p = strchr(p + 1, ';')) {
		const char *q = p + 1;

		while (*q == ' ' || *q == '\t')
			q++;
		if (strncasecmp(q, name, n) != 0 || q[n] != '=')
			continue;
		q += n + 1;
		if (*q == '"') {
			const char *e = strchr(q + 1, '"');

			return e ? xstrndup(q + 1, (size_t)(e - q - 1)) : NULL;
		}
		return xstrndup(q, strcspn(q, "; \t"));
	}
	return NULL;
}

static int
hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ?
	    c - 'A' + 10 : -1;	/* RFC 2045 6.7 (1): upper case only */
}

/* Strict quoted-printable decoding; hard breaks decode to CRLF. */
static int
qp_decode(const char *s, size_t n, struct buf *out, const char **why)
{
	const char *p = s, *end = s + n;

	while (p < end) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		size_t len, i;
		int soft = 0;

		if (eol == NULL) {
			*why = "QP: no CRLF at the end";
			return 0;
		}
		len = (size_t)(eol - p);
		if (len > 76) {
			*why = "QP: line over 76";
			return 0;
		}
		if (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
			*why = "QP: trailing white space";
			return 0;
		}
		for (i = 0; i < len; i++) {
			unsigned char c = (unsigned char)p[i];

			if (c == '=') {
				if (i + 1 == len) {
					soft = 1;
					break;
				}
				if (i + 3 > len || hexval(p[i + 1]) < 0 ||
				    hexval(p[i + 2]) < 0) {
					*why = "QP: bad =XX";
					return 0;
				}
				buf_putc(out, (char)(hexval(p[i + 1]) * 16 +
				    hexval(p[i + 2])));
				i += 2;
			} else if ((c >= 33 && c <= 126) || c == ' ' || c == '\t')
				buf_putc(out, (char)c);
			else {
				*why = "QP: octet that must be encoded";
				return 0;
			}
		}
		if (!soft)
			buf_append(out, "\r\n", 2);
		p = eol + 2;
	}
	return 1;
}

static int
b64val(char c)
{
	static const char a[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c ? strchr(a, c) : NULL;

	return p ? (int)(p - a) : -1;
}

/* Base64 of n octets (a multiple of 4, padding only at the very end). */
static int
b64_chunk(const char *s, size_t n, int last, struct buf *out)
{
	if (n % 4 != 0)
		return 0;
	for (size_t i = 0; i < n; i += 4) {
		int v[4], pad = 0;

		for (int k = 0; k < 4; k++) {
			if (s[i + k] == '=' && k >= 2 && last && i + 4 == n) {
				v[k] = 0;
				pad++;
			} else if (pad > 0 || (v[k] = b64val(s[i + k])) < 0)
				return 0;
		}
		buf_putc(out, (char)(v[0] << 2 | v[1] >> 4));
		if (pad < 2)
			buf_putc(out, (char)((v[1] & 15) << 4 | v[2] >> 2));
		if (pad < 1)
			buf_putc(out, (char)((v[2] & 3) << 6 | v[3]));
	}
	return 1;
}

/* Strict base64 body: lines of at most 76 characters ending in CRLF. */
static int
b64_decode(const char *s, size_t n, struct buf *out, const char **why)
{
	const char *p = s, *end = s + n;

	while (p < end) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);

		if (eol == NULL || eol - p > 76) {
			*why = "base64: line over 76 or no CRLF";
			return 0;
		}
		if (!b64_chunk(p, (size_t)(eol - p), eol + 2 == end, out)) {
			*why = "base64: bad characters or padding";
			return 0;
		}
		p = eol + 2;
	}
	return 1;
}

/*
 * RFC 2047 decoding of an unfolded value: UTF-8 "B" and "Q" words, the
 * white space between two adjacent ones dropped (6.2). *bad is set for
 * an encoded word over 75 characters or not valid UTF-8 on its own.
 */
static char *
ew_decode(const char *v, int *bad)
{
	struct buf out = { 0 }, ws = { 0 };
	const char *p = v;
	int prev_ew = 0;

	while (*p) {
		size_t wn = strspn(p, " \t"), tn;
		const char *t = p + wn;

		buf_reset(&ws);
		buf_append(&ws, p, wn);
		tn = strcspn(t, " \t");
		if (tn == 0) {
			buf_append(&out, ws.data, ws.len);	/* trailing */
			break;
		}
		if (tn > 12 && strncasecmp(t, "=?UTF-8?", 8) == 0 &&
		    (t[8] == 'B' || t[8] == 'b' || t[8] == 'Q' || t[8] == 'q') &&
		    t[9] == '?' && t[tn - 2] == '?' && t[tn - 1] == '=') {
			struct buf dec = { 0 };
			const char *txt = t + 10;
			size_t tl = tn - 12;
			int ok = 1;

			if (tn > 75)
				*bad = 1;
			if (t[8] == 'B' || t[8] == 'b')
				ok = b64_chunk(txt, tl, 1, &dec);
			else
				for (size_t i = 0; i < tl && ok; i++) {
					if (txt[i] == '_')
						buf_putc(&dec, ' ');
					else if (txt[i] == '=' && i + 2 < tl &&
					    hexval(txt[i + 1]) >= 0 &&
					    hexval(txt[i + 2]) >= 0) {
						buf_putc(&dec, (char)(hexval(txt[i + 1]) *
						    16 + hexval(txt[i + 2])));
						i += 2;
					} else if (txt[i] == '=' || txt[i] == '?')
						ok = 0;
					else
						buf_putc(&dec, txt[i]);
				}
			if (!ok || !utf8_valid(buf_cstr(&dec), dec.len))
				*bad = 1;
			if (!prev_ew)
				buf_append(&out, ws.data, ws.len);
			buf_append(&out, buf_cstr(&dec), dec.len);
			buf_free(&dec);
			prev_ew = 1;
		} else {
			buf_append(&out, ws.data, ws.len);
			buf_append(&out, t, tn);
			prev_ew = 0;
		}
		p = t + tn;
	}
	buf_free(&ws);
	buf_append(&out, "", 0);
	return buf_steal(&out);
}

/*
 * One mailbox (RFC 5322 3.4): "addr", or a display name (atoms and
 * encoded words, or one quoted string) and "<addr>". 0 when the value is
 * anything else: a group, a list (a comma outside quotes), junk around.
 */
static int
mailbox(const char *v, char **name, char **addr, int *bad)
{
	const char *lt = NULL, *p, *gt;
	int quoted = 0;

	*name = *addr = NULL;
	if (v == NULL)
		return 0;
	for (p = v; *p; p++) {
		if (quoted && *p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (!quoted && (*p == ',' || *p == ';' || *p == ':'))
			return 0;
		else if (!quoted && *p == '<') {
			if (lt != NULL)
				return 0;
			lt = p;
		}
	}
	if (quoted)
		return 0;
	if (lt == NULL) {
		if (strpbrk(v, " \t\"<>()") != NULL)
			return 0;
		*name = xstrdup("");
		*addr = xstrdup(v);
		return 1;
	}
	if ((gt = strchr(lt, '>')) == NULL || gt[1] != '\0')
		return 0;
	*addr = xstrndup(lt + 1, (size_t)(gt - lt - 1));
	if (v[0] == '"') {
		struct buf b = { 0 };

		for (p = v + 1; *p != '"'; p++) {
			if (*p == '\\')
				p++;
			buf_putc(&b, *p);
		}
		if (strcmp(p + 1, " ") != 0 && p + 1 != lt - 1) {
			buf_free(&b);
			return 0;
		}
		buf_append(&b, "", 0);
		*name = buf_steal(&b);
		return 1;
	}
	char *disp = xstrndup(v, (size_t)(lt - v));
	size_t n = strlen(disp);

	if (n > 0 && disp[n - 1] == ' ')
		disp[--n] = '\0';
	for (p = disp; *p; p++)
		if (*p != ' ' && !strchr("!#$%&'*+-/=?^_`{|}~", *p) &&
		    !(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
		    !(*p >= '0' && *p <= '9')) {
			free(disp);
			return 0;	/* a special outside quotes */
		}
	*name = ew_decode(disp, bad);
	free(disp);
	return 1;
}

/* A message or a part: its unfolded header block and raw body. */
struct rpart {
	char		*head;
	const char	*body;
	size_t		 blen;
};

static int
rpart_split(const char *p, size_t n, struct rpart *rp)
{
	const char *sep = memmem(p, n, "\r\n\r\n", 4);
	char *copy;

	if (sep == NULL)
		return 0;
	copy = xstrndup(p, (size_t)(sep - p) + 4);
	rp->head = header_block(copy);
	free(copy);
	rp->body = sep + 4;
	rp->blen = n - (size_t)(sep + 4 - p);
	return 1;
}

/*
 * The parts of a multipart body (RFC 2046 5.1.1) as written: the first
 * delimiter line at the start, "CRLF--boundary" before each next part
 * and "CRLF--boundary--CRLF" at the very end; no other line may start
 * with "--boundary". Returns the count, -1 when malformed.
 */
static int
mp_split(const char *body, size_t n, const char *bd, const char **ps,
    size_t *pl, int max)
{
	size_t bl = strlen(bd);
	const char *p, *end = body + n;
	int count = 0;

	if (n < bl + 4 || strncmp(body, "--", 2) != 0 ||
	    strncmp(body + 2, bd, bl) != 0 || strncmp(body + 2 + bl, "\r\n",
	    2) != 0)
		return -1;
	p = body + bl + 4;
	for (;;) {
		const char *d = p;

		/* the next line that starts with the delimiter */
		for (;;) {
			d = memmem(d, (size_t)(end - d), bd, bl);
			if (d == NULL)
				return -1;
			if (d - p >= 4 && strncmp(d - 4, "\r\n--", 4) == 0)
				break;
			if (d - 2 >= body && strncmp(d - 2, "--", 2) == 0 &&
			    (d - 2 == p || (d - 4 >= body && d[-3] == '\n')))
				return -1;	/* a delimiter-like line */
			d += bl;
		}
		if (count == max)
			return -1;
		ps[count] = p;
		pl[count++] = (size_t)(d - 4 - p);
		d += bl;
		if (end - d == 4 && strncmp(d, "--\r\n", 4) == 0)
			return count;
		if (end - d < 2 || strncmp(d, "\r\n", 2) != 0)
			return -1;
		p = d + 2;
	}
}

/*
 * The part at path[0..depth) (indices into nested multiparts) of msg;
 * 0 when it is not there or the structure is malformed.
 */
static int
locate(const char *p, size_t n, const int *path, int depth,
    struct rpart *out)
{
	struct rpart rp;
	const char *ps[8];
	size_t pl[8];
	char *ct, *bd;
	int np;

	if (!rpart_split(p, n, &rp))
		return 0;
	if (depth == 0) {
		*out = rp;
		return 1;
	}
	ct = hval(rp.head, "Content-Type");
	bd = ct_param(ct, "boundary");
	np = bd ? mp_split(rp.body, rp.blen, bd, ps, pl, 8) : -1;
	free(ct);
	free(bd);
	free(rp.head);
	if (np <= path[0])
		return 0;
	return locate(ps[path[0]], pl[path[0]], path + 1, depth - 1, out);
}

/* "type/subtype" of the part at path, "(none)" when there is none. */
static char *
type_at(const struct buf *raw, const int *path, int depth)
{
	struct rpart rp;
	char *ct, *t;

	if (!locate(raw->data, raw->len, path, depth, &rp))
		return xstrdup("(none)");
	ct = hval(rp.head, "Content-Type");
	t = ct_type(ct);
	free(ct);
	free(rp.head);
	return t;
}

/* A Content-Type parameter of the part at path, or NULL. */
static char *
param_at(const struct buf *raw, const int *path, int depth, const char *name)
{
	struct rpart rp;
	char *ct, *v;

	if (!locate(raw->data, raw->len, path, depth, &rp))
		return NULL;
	ct = hval(rp.head, "Content-Type");
	v = ct_param(ct, name);
	free(ct);
	free(rp.head);
	return v;
}

/*
 * The decoded content of the leaf at path, exactly (CRLF line breaks);
 * "(error: ...)" when it is not there or breaks an encoding rule.
 */
static char *
text_at(const struct buf *raw, const int *path, int depth)
{
	struct rpart rp;
	struct buf b = { 0 };
	const char *why = "no such part";
	char *cte;
	int ok = 0;

	if (!locate(raw->data, raw->len, path, depth, &rp))
		return xasprintf("(error: %s)", why);
	cte = hval(rp.head, "Content-Transfer-Encoding");
	if (cte != NULL && strcasecmp(cte, "quoted-printable") == 0)
		ok = qp_decode(rp.body, rp.blen, &b, &why);
	else if (cte != NULL && strcasecmp(cte, "base64") == 0)
		ok = b64_decode(rp.body, rp.blen, &b, &why);
	else
		why = "no Content-Transfer-Encoding we write";
	free(cte);
	free(rp.head);
	if (!ok) {
		buf_free(&b);
		return xasprintf("(error: %s)", why);
	}
	buf_append(&b, "", 0);
	return buf_steal(&b);
}

/* The raw (encoded) body of the leaf at path. */
static char *
raw_at(const struct buf *raw, const int *path, int depth)
{
	struct rpart rp;

	if (!locate(raw->data, raw->len, path, depth, &rp))
		return xstrdup("");
	free(rp.head);
	return xstrndup(rp.body, rp.blen);
}

/* Every line break (CRLF, LF, lone CR) as CRLF: what a body decodes to. */
static char *
crlf(const char *s)
{
	struct buf b = { 0 };

	for (; *s; s++) {
		if (*s == '\r' || *s == '\n') {
			buf_append(&b, "\r\n", 2);
			if (s[0] == '\r' && s[1] == '\n')
				s++;
		} else
			buf_putc(&b, *s);
	}
	buf_append(&b, "", 0);
	return buf_steal(&b);
}

/* The decoded header `name` of the message (RFC 2047), NULL when absent. */
static char *
header_text(const struct buf *raw, const char *name, int *bad)
{
	char *hb = header_block(raw->data ? raw->data : ""), *v, *d;

	v = hval(hb, name);
	d = v ? ew_decode(v, bad) : NULL;
	free(v);
	free(hb);
	return d;
}

/* The To (or From, Reply-To) mailbox of the message; 0 when not one. */
static int
mailbox_of(const struct buf *raw, const char *field, char **name, char **addr)
{
	char *hb = header_block(raw->data ? raw->data : ""), *v;
	int bad = 0, ok;

	v = hval(hb, field);
	ok = header_count(hb, field) == 1 && mailbox(v, name, addr, &bad) &&
	    !bad;
	free(v);
	free(hb);
	return ok;
}

static const char *const base_extra[] = {
	"X-Campaign", "spring\r\nBcc: evil@example.com",
	"List-Unsubscribe", "<https://example.com/unsubscribe?token="
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	    "&list=followups>, <mailto:unsubscribe@example.com?subject=stop>",
	"X-Note", "caf\xc3\xa9 =?utf-8?q?x?=",
	NULL
};

static struct mime_spec
base_spec(void)
{
	struct mime_spec s = {
		.from = "Followup Team <noreply@example.com>",
		.to_name = "Ana Example",
		.to_addr = "ana@example.com",
		.subject = "Your follow-up",
		.message_id = "followupd.1.0123abcd@example.com",
		.date = SAMPLE_DATE,
		.text = "Hello Ana,\n\nThanks.\n",
	};
	return s;
}

/*
 * Build, check the wire format and the header rules every message must
 * follow, return the result code; raw gets the bytes. Reported only on
 * failure (every build in this file goes through here).
 */
static int
build(const struct mime_spec *s, struct buf *raw, char **err, const char *what)
{
	const char *bad;
	int r;

	buf_reset(raw);
	free(*err);
	*err = NULL;
	r = mime_build(s, raw, err);
	if (r != FU_OK)
		return r;
	bad = wire_problem(raw->data, raw->len);
	if (bad == NULL) {
		/* header section: 7-bit, folded lines <= 78, 76 with an EW */
		const char *p = raw->data, *hend = strstr(p, "\r\n\r\n");

		while (bad == NULL && p < hend) {
			const char *eol = strstr(p, "\r\n");
			size_t n = (size_t)(eol - p);
			char *line = xstrndup(p, n);

			for (size_t i = 0; i < n; i++)
				if ((unsigned char)p[i] >= 0x80)
					bad = "8-bit header";
			if (strstr(line, "=?") != NULL && n > 76 &&
			    strncmp(line, "X-", 2) != 0)
				bad = "a line with an encoded word over 76";
			free(line);
			p = eol + 2;
		}
	}
	if (bad != NULL)
		tap_ok(0, "build %s: wire format (%s)", what, bad);
	return r;
}

static void
test_build_text(void)
{
	struct mime_spec s = base_spec();
	struct buf raw = { 0 };
	char *err = NULL, *hb, *t;
	int r;

	r = build(&s, &raw, &err, "text");
	tap_ok(r == FU_OK, "build text: ok (%s)", err ? err : "");
	tap_ok(wire_problem(raw.data, raw.len) == NULL,
	    "build text: CRLF only, lines <= 998");
	hb = header_block(buf_cstr(&raw));
	tap_ok(has_line(hb, "Date: Tue, 25 Nov 2025 11:22:00 +0000"),
	    "build text: Date in RFC 5322 form, +0000");
	tap_ok(has_line(hb, "Message-ID: <followupd.1.0123abcd@example.com>"),
	    "build text: Message-ID exactly as given");
	tap_ok(has_line(hb, "From: Followup Team <noreply@example.com>"),
	    "build text: From");
	tap_ok(has_line(hb, "To: Ana Example <ana@example.com>"),
	    "build text: To");
	tap_ok(has_line(hb, "Subject: Your follow-up"), "build text: Subject");
	tap_ok(has_line(hb, "MIME-Version: 1.0"), "build text: MIME-Version");
	tap_ok(has_line(hb, "Auto-Submitted: auto-generated"),
	    "build text: Auto-Submitted");
	tap_ok(has_line(hb, "Content-Type: text/plain; charset=utf-8"),
	    "build text: text/plain; charset=utf-8");
	tap_ok(has_line(hb, "Content-Transfer-Encoding: quoted-printable"),
	    "build text: quoted-printable");
	tap_ok(!has_header(hb, "Reply-To"), "build text: no Reply-To when NULL");
	tap_ok(strstr(buf_cstr(&raw), "multipart") == NULL,
	    "build text: not multipart");
	tap_ok(strncmp(raw.data, "Date: ", 6) == 0 &&
	    strstr(raw.data, "\r\nMessage-ID: ") < strstr(raw.data, "\r\nFrom: ") &&
	    strstr(raw.data, "\r\nFrom: ") < strstr(raw.data, "\r\nTo: ") &&
	    strstr(raw.data, "\r\nTo: ") < strstr(raw.data, "\r\nSubject: ") &&
	    strstr(raw.data, "\r\nSubject: ") < strstr(raw.data,
	    "\r\nMIME-Version: "), "build text: headers in the documented order");
	free(hb);

	t = text_at(&raw, NULL, 0);
	tap_str(t, "Hello Ana,\r\n\r\nThanks.\r\n", "build text: body round trip");
	free(t);

	/* out is appended to, never reset */
	struct buf pre = { 0 };
	buf_puts(&pre, "PREFIX");
	r = mime_build(&s, &pre, &err);
	tap_ok(r == FU_OK && strncmp(buf_cstr(&pre), "PREFIX", 6) == 0 &&
	    pre.len == raw.len + 6 && memcmp(pre.data + 6, raw.data,
	    raw.len) == 0, "build text: appends to out");

	/* and left as it was on failure */
	s.to_addr = "not an address";
	r = mime_build(&s, &pre, &err);
	tap_ok(r == FU_PERMFAIL && pre.len == raw.len + 6 &&
	    pre.data[pre.len] == '\0', "build text: out untouched on failure");
	s.to_addr = "ana@example.com";
	buf_free(&pre);

	/* the same spec, the same bytes (boundaries included) */
	s.html = "<p>Hi</p>";
	struct buf again = { 0 };
	build(&s, &raw, &err, "deterministic");
	mime_build(&s, &again, &err);
	tap_ok(raw.len == again.len && memcmp(raw.data, again.data,
	    raw.len) == 0, "build: one spec, one output");
	buf_free(&again);
	s.html = NULL;

	s.reply_to = "Help Desk <help@example.com>";
	r = build(&s, &raw, &err, "reply-to");
	hb = header_block(buf_cstr(&raw));
	tap_ok(r == FU_OK && has_line(hb,
	    "Reply-To: Help Desk <help@example.com>"), "build: Reply-To");
	free(hb);

	s.subject = NULL;
	s.to_name = NULL;
	r = build(&s, &raw, &err, "no subject, no name");
	hb = header_block(buf_cstr(&raw));
	tap_ok(r == FU_OK && has_line(hb, "Subject: ") &&
	    has_line(hb, "To: ana@example.com"),
	    "build: empty Subject, To without a display name");
	free(hb);

	free(err);
	buf_free(&raw);
}

static void
test_build_hostile(void)
{
	struct mime_spec s = base_spec();
	struct buf raw = { 0 };
	char *err = NULL, *hb, *name, *addr, *t;
	int r, bad = 0;

	s.from = "Zo\xc3\xab Ops <ops@example.com>";
	s.to_name = "Smith, John \"JJ\" <evil@x>\r\nCc: victim@example.org";
	s.to_addr = "john@example.com";
	s.subject = "Zo\xc3\xab \xc3\xb1" "and\xc3\xba\r\nBcc: evil@example.com";
	s.extra_headers = base_extra;
	r = build(&s, &raw, &err, "hostile");
	tap_ok(r == FU_OK, "build hostile: ok (%s)", err ? err : "");
	hb = header_block(buf_cstr(&raw));
	tap_ok(!has_header(hb, "Bcc") && !has_header(hb, "Cc"),
	    "build hostile: CR/LF did not add a Bcc or Cc header");
	tap_ok(strcasestr(hb, "\r\nSubject: =?UTF-8?") != NULL,
	    "build hostile: Subject is an encoded word");
	tap_ok(strcasestr(hb, "\r\nFrom: =?UTF-8?") != NULL,
	    "build hostile: From name is an encoded word");
	tap_ok(has_line(hb, "X-Campaign: spring Bcc: evil@example.com"),
	    "build hostile: extra header value cleaned");
	char *lu = xasprintf("List-Unsubscribe: %s", base_extra[3]);
	tap_ok(has_line(hb, lu), "build hostile: List-Unsubscribe verbatim");
	free(lu);
	tap_ok(strstr(hb, "=?utf-8?q?x?=") == NULL,
	    "build hostile: encoded-word look-alike not passed through");
	free(hb);

	t = header_text(&raw, "Subject", &bad);
	tap_str(t, "Zo\xc3\xab \xc3\xb1" "and\xc3\xba Bcc: evil@example.com",
	    "build hostile: Subject decodes to the cleaned value");
	free(t);
	tap_ok(mailbox_of(&raw, "To", &name, &addr),
	    "build hostile: exactly one To mailbox");
	tap_str(addr, "john@example.com", "build hostile: To address");
	tap_str(name, "Smith, John \"JJ\" <evil@x> Cc: victim@example.org",
	    "build hostile: To name is one display name");
	free(name);
	free(addr);
	tap_ok(mailbox_of(&raw, "From", &name, &addr),
	    "build hostile: one From mailbox");
	tap_str(name, "Zo\xc3\xab Ops", "build hostile: From name decodes");
	free(name);
	free(addr);
	t = header_text(&raw, "X-Note", &bad);
	tap_str(t, "caf\xc3\xa9 =?utf-8?q?x?=",
	    "build hostile: non-ASCII extra header decodes literally");
	free(t);
	tap_ok(!bad, "build hostile: encoded words well-formed");

	/* non-ASCII and specials in one name: no encoded word in quotes */
	s.to_name = "Zo\xc3\xab \"JJ\", Smith <evil@x> (c) ;:";
	r = build(&s, &raw, &err, "mixed name");
	hb = header_block(buf_cstr(&raw));
	tap_ok(r == FU_OK && strstr(hb, "\"=?") == NULL,
	    "build mixed name: no encoded word inside a quoted string");
	free(hb);
	tap_ok(mailbox_of(&raw, "To", &name, &addr),
	    "build mixed name: one To mailbox");
	tap_str(name, "Zo\xc3\xab \"JJ\", Smith <evil@x> (c) ;:",
	    "build mixed name: decodes to the cleaned name");
	free(name);
	free(addr);

	/* a subject that is nothing but an encoded word carrying CR LF */
	s.subject = "=?utf-8?q?a=0D=0ABcc:_evil@example.com?=";
	r = build(&s, &raw, &err, "encoded-word look-alike");
	t = header_text(&raw, "Subject", &bad);
	tap_str(t, "=?utf-8?q?a=0D=0ABcc:_evil@example.com?=",
	    "build: encoded-word look-alike in Subject decodes to itself");
	free(t);
	s.subject = "ok";
	s.to_name = "=?utf-8?q?Evil=2C_x=40y?=";
	r = build(&s, &raw, &err, "encoded-word look-alike name");
	tap_ok(r == FU_OK && mailbox_of(&raw, "To", &name, &addr),
	    "build: look-alike name keeps one To mailbox");
	tap_str(name, "=?utf-8?q?Evil=2C_x=40y?=",
	    "build: look-alike name decodes to itself");
	free(name);
	free(addr);
	free(err);
	buf_free(&raw);
}

/*
 * CR, LF (and NUL, U+2028, U+0085) in every untrusted field: each value
 * stays in its own header, the message has exactly the headers we write.
 */
static void
test_build_injection(void)
{
	static const char *const evil[] = {
		"x\r\nBcc: evil@example.com",
		"x\nCc: evil@example.com",
		"x\rTo: evil@example.com",
		"x\r\n\r\n--=_0000000000000000_a\r\nContent-Type: text/html",
		"x\xe2\x80\xa8Sender: evil@example.com",
		"x\xc2\x85Received: from evil",
		"x\r\n Bcc: folded@example.com",
	};
	static const char *const ours[] = {
		"Date", "Message-ID", "From", "To", "Reply-To", "Subject",
		"MIME-Version", "Auto-Submitted", "X-Tag", "List-Unsubscribe",
		"Content-Type", "Content-Transfer-Encoding", NULL
	};
	int fine = 1, decoded = 1;

	for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
		const char *extra[] = { "X-Tag", evil[i], "List-Unsubscribe",
		    evil[i], NULL };
		char *from = xasprintf("%s <ops@example.com>", evil[i]);
		char *reply = xasprintf("\"%s\" <help@example.com>", evil[i]);
		struct mime_spec s = base_spec();
		struct buf raw = { 0 };
		char *err = NULL, *hb, *t, *name, *addr;
		int r, bad = 0, names = 0;

		s.from = from;
		s.reply_to = reply;
		s.to_name = evil[i];
		s.subject = evil[i];
		s.extra_headers = extra;
		r = build(&s, &raw, &err, "injection");
		hb = header_block(buf_cstr(&raw));
		for (size_t k = 0; ours[k] != NULL; k++)
			names += header_count(hb, ours[k]);
		/* every header line is one of ours, once */
		for (const char *p = hb; (p = strstr(p, "\r\n")) != NULL &&
		    p[2] != '\0'; p += 2)
			names--;
		if (r != FU_OK || names != 0 || has_header(hb, "Bcc") ||
		    has_header(hb, "Cc") || has_header(hb, "Sender") ||
		    has_header(hb, "Received"))
			fine = 0;
		for (size_t k = 0; ours[k] != NULL; k++)
			if (header_count(hb, ours[k]) > 1)
				fine = 0;
		t = header_text(&raw, "Subject", &bad);
		if (t == NULL || strchr(t, '\r') || strchr(t, '\n'))
			decoded = 0;
		free(t);
		for (int f = 0; f < 3; f++) {
			const char *field = f == 0 ? "To" : f == 1 ? "From" :
			    "Reply-To";

			if (!mailbox_of(&raw, field, &name, &addr) ||
			    strpbrk(name, "\r\n") != NULL)
				decoded = 0;
			free(name);
			free(addr);
		}
		free(hb);
		free(err);
		free(from);
		free(reply);
		buf_free(&raw);
	}
	tap_ok(fine, "injection: CR/LF/NUL/U+2028/U+0085 in names, subject, "
	    "extra values add no header and split none");
	tap_ok(decoded, "injection: each value decodes to one line, one "
	    "mailbox per address header");

	/* where a value cannot be cleaned, it is refused */
	static const char *const crlf_name[] = { "X-A\r\nBcc", "v", NULL };
	struct { const char *what; struct mime_spec s; } refused[5];
	struct mime_part_calendar cal = { "REQUEST\r\nBcc: x", "x" };

	for (int k = 0; k < 5; k++)
		refused[k].s = base_spec();
	refused[0].what = "recipient address";
	refused[0].s.to_addr = "a@example.com\r\nBcc: x@y.example";
	refused[1].what = "Message-ID";
	refused[1].s.message_id = "a@b\r\nBcc: x@y";
	refused[2].what = "extra header name";
	refused[2].s.extra_headers = crlf_name;
	refused[3].what = "calendar method";
	refused[3].s.calendar = &cal;
	refused[4].what = "From address";
	refused[4].s.from = "Team <a@example.com\r\nBcc: x@y.example>";
	for (int k = 0; k < 5; k++) {
		struct buf out = { 0 };
		char *err = NULL;

		tap_ok(mime_build(&refused[k].s, &out, &err) == FU_PERMFAIL &&
		    out.len == 0, "injection: CR/LF in the %s is refused",
		    refused[k].what);
		free(err);
		buf_free(&out);
	}
}

static void
test_build_encoded_word(void)
{
	struct mime_spec s = base_spec();
	struct buf raw = { 0 }, subj = { 0 };
	char *err = NULL, *hb, *t, *name, *addr;
	int bad = 0;

	s.subject = "Zo\xc3\xab \xc3\xb1" "and\xc3\xba";
	s.to_name = "Zo\xc3\xab \xc3\xb1" "and\xc3\xba";
	tap_ok(build(&s, &raw, &err, "Zoe") == FU_OK, "build Zoe: ok");
	hb = header_block(buf_cstr(&raw));
	t = strcasestr(hb, "\r\nSubject: ");
	tap_ok(t != NULL && strncasecmp(t + 11, "=?UTF-8?", 8) == 0,
	    "build Zoe: Subject is a UTF-8 encoded word");
	tap_ok(strcasestr(hb, "\r\nTo: =?UTF-8?") != NULL,
	    "build Zoe: To name is a UTF-8 encoded word");
	free(hb);
	t = header_text(&raw, "Subject", &bad);
	tap_str(t, "Zo\xc3\xab \xc3\xb1" "and\xc3\xba", "build Zoe: Subject decodes");
	free(t);

	/*
	 * Long subjects of 2-, 3- and 4-octet characters, alone and between
	 * ASCII words: several encoded words, none over 75 characters or
	 * splitting a character, lines with them <= 76 (build checks), and
	 * the whole decodes to the cleaned subject.
	 */
	static const char *const chars[] = {
		"\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x8e\x89", "a",
		"\xd7\xa9", " ", "\xe2\x80\x94", "=?", "b"
	};
	uint32_t seed = 12345;
	int all_ok = 1, folded = 0;

	for (int round = 0; round < 400; round++) {
		char *clean;
		size_t len = 1 + (size_t)round % 260;

		buf_reset(&subj);
		for (size_t k = 0; k < len; k++) {
			seed = seed * 1103515245 + 12345;
			buf_puts(&subj, chars[(seed >> 16) % (round % 3 == 0 ?
			    3 : sizeof(chars) / sizeof(chars[0]))]);
		}
		s.subject = subj.data;
		s.to_name = subj.data;
		bad = 0;
		if (build(&s, &raw, &err, "long subject") != FU_OK) {
			all_ok = 0;
			continue;
		}
		clean = mime_clean_phrase(subj.data, subj.len, MIME_PHRASE_MAX);
		t = header_text(&raw, "Subject", &bad);
		if (t == NULL || strcmp(t, clean) != 0 || bad)
			all_ok = 0;
		free(t);
		if (!mailbox_of(&raw, "To", &name, &addr) ||
		    (*clean != '\0' && strcmp(name, clean) != 0))
			all_ok = 0;
		free(name);
		free(addr);
		hb = strstr(raw.data, "\r\nSubject: ");
		if (hb != NULL && strstr(hb, "\r\n ") != NULL &&
		    strstr(hb, "\r\n ") < strstr(hb, "\r\nMIME-Version"))
			folded++;
		free(clean);
	}
	tap_ok(all_ok, "long subjects and names: encoded words of whole "
	    "characters, <= 75 each, decode to the cleaned text");
	tap_ok(folded > 100, "long subjects: folded over several lines (%d)",
	    folded);

	/* 200 CJK characters: 600 octets, no word split inside one */
	buf_reset(&subj);
	for (int k = 0; k < 250; k++)
		buf_puts(&subj, "\xe4\xb8\xad");
	s.subject = subj.data;
	build(&s, &raw, &err, "CJK subject");
	hb = header_block(buf_cstr(&raw));
	t = hval(hb, "Subject");
	int words = 0;
	for (const char *p = t; (p = strstr(p, "=?UTF-8?B?")) != NULL; p++)
		words++;
	tap_ok(words >= 14, "CJK subject: %d encoded words", words);
	free(t);
	free(hb);
	bad = 0;
	t = header_text(&raw, "Subject", &bad);
	tap_ok(!bad && t != NULL && strlen(t) == 199 * 3 + 3,
	    "CJK subject: 199 characters and the ellipsis, no split sequence");
	free(t);

	free(err);
	buf_free(&subj);
	buf_free(&raw);
}

struct name_case {
	const char	*name;
	const char	*line;		/* the To line, NULL: not checked */
	const char	*decoded;
};

/* Display names: atoms, one quoted string, or encoded words. */
static void
test_build_names(void)
{
	static const struct name_case cases[] = {
		{ "Ana Example", "To: Ana Example <ana@example.com>",
		    "Ana Example" },
		{ "O'Brien", "To: O'Brien <ana@example.com>", "O'Brien" },
		{ "John Q. Public", "To: \"John Q. Public\" <ana@example.com>",
		    "John Q. Public" },
		{ "Acme, Inc.", "To: \"Acme, Inc.\" <ana@example.com>",
		    "Acme, Inc." },
		{ "a\"b\\c", "To: \"a\\\"b\\\\c\" <ana@example.com>",
		    "a\"b\\c" },
		{ "(c) ;: <x@y> [z]", "To: \"(c) ;: <x@y> [z]\" <ana@example.com>",
		    "(c) ;: <x@y> [z]" },
		{ "  spaced\t\tout  ", "To: spaced out <ana@example.com>",
		    "spaced out" },
		{ "", "To: ana@example.com", "" },
		{ " \r\n ", "To: ana@example.com", "" },
		{ "Zo\xc3\xab", "To: =?UTF-8?B?Wm/Dqw==?= <ana@example.com>",
		    "Zo\xc3\xab" },
		{ "=?utf-8?q?x?=", NULL, "=?utf-8?q?x?=" },
		{ "Ana 01234567890123456789012345678901234567890123456789"
		    "0123456789012345678901234", NULL, "Ana 01234567890123456789"
		    "012345678901234567890123456789" "0123456789012345678901234" },
		{ "The Very Long Name Of Someone Who Has Many Given Names "
		    "And Several Family Names Too, Really", NULL,
		    "The Very Long Name Of Someone Who Has Many Given Names "
		    "And Several Family Names Too, Really" },
	};
	struct mime_spec s = base_spec();
	struct buf raw = { 0 };
	char *err = NULL, *hb, *name, *addr;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s.to_name = cases[i].name;
		tap_ok(build(&s, &raw, &err, "name") == FU_OK, "name %zu: built",
		    i);
		hb = header_block(buf_cstr(&raw));
		if (cases[i].line != NULL)
			tap_ok(has_line(hb, cases[i].line), "name %zu: %s", i,
			    cases[i].line);
		tap_ok(mailbox_of(&raw, "To", &name, &addr) &&
		    strcmp(addr, "ana@example.com") == 0,
		    "name %zu: one To mailbox", i);
		tap_str(name, cases[i].decoded, "name %zu: decodes", i);
		free(name);
		free(addr);
		free(hb);
	}

	/* From and Reply-To from the config: RFC 5322 mailboxes */
	static const struct name_case froms[] = {
		{ "Followup Team <noreply@example.com>",
		    "From: Followup Team <noreply@example.com>", "Followup Team" },
		{ "noreply@example.com", "From: noreply@example.com", "" },
		{ "  <noreply@example.com>  ", "From: noreply@example.com", "" },
		{ "\"Zo\xc3\xab \\\"Q\\\" Ops\" <noreply@example.com>", NULL,
		    "Zo\xc3\xab \"Q\" Ops" },
		{ "\"Acme, Inc.\" <noreply@example.com>",
		    "From: \"Acme, Inc.\" <noreply@example.com>", "Acme, Inc." },
		{ "Acme, Inc. <noreply@example.com>",
		    "From: \"Acme, Inc.\" <noreply@example.com>", "Acme, Inc." },
		{ "Acme (EU) <noreply@example.com>",
		    "From: \"Acme (EU)\" <noreply@example.com>", "Acme (EU)" },
		{ "John \"JJ\" Smith <noreply@example.com>",
		    "From: John JJ Smith <noreply@example.com>", "John JJ Smith" },
		{ "\"a\\\\b\" <noreply@example.com>",
		    "From: \"a\\\\b\" <noreply@example.com>", "a\\b" },
		{ "\"unterminated <noreply@example.com>",
		    "From: \"\\\"unterminated\" <noreply@example.com>",
		    "\"unterminated" },
		{ "Team\t<noreply@example.com>",
		    "From: Team <noreply@example.com>", "Team" },
	};
	for (size_t i = 0; i < sizeof(froms) / sizeof(froms[0]); i++) {
		s = base_spec();
		s.from = froms[i].name;
		s.reply_to = froms[i].name;
		tap_ok(build(&s, &raw, &err, "from") == FU_OK,
		    "from %zu: built (%s)", i, err ? err : "");
		hb = header_block(buf_cstr(&raw));
		if (froms[i].line != NULL)
			tap_ok(has_line(hb, froms[i].line), "from %zu: %s", i,
			    froms[i].line);
		tap_ok(mailbox_of(&raw, "From", &name, &addr) &&
		    strcmp(addr, "noreply@example.com") == 0,
		    "from %zu: one From mailbox", i);
		tap_str(name, froms[i].decoded, "from %zu: display name", i);
		free(name);
		free(addr);
		tap_ok(mailbox_of(&raw, "Reply-To", &name, &addr) &&
		    strcmp(name, froms[i].decoded) == 0,
		    "from %zu: Reply-To alike", i);
		free(name);
		free(addr);
		free(hb);
	}
	static const char *const bad_froms[] = {
		"Team <not an address>", "Team noreply@example.com>",
		"Team <noreply@example.com> x", "<>", "", "   ",
		"Team <a@b@example.com>", "Team <a@xn--a.example>",
	};
	for (size_t i = 0; i < sizeof(bad_froms) / sizeof(bad_froms[0]); i++) {
		struct buf out = { 0 };

		int r;

		s = base_spec();
		s.from = bad_froms[i];
		r = mime_build(&s, &out, &err);
		tap_ok(r == FU_PERMFAIL && out.len == 0 && err != NULL,
		    "from \"%s\" refused (%s)", bad_froms[i], err ? err : "");
		buf_free(&out);
	}
	free(err);
	buf_free(&raw);
}

static void
test_build_multipart(void)
{
	struct mime_spec s = base_spec();
	struct mime_part_calendar cal = {
		.method = "REQUEST",
		.ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\n"
		    "BEGIN:VEVENT\r\nSUMMARY:Zo\xc3\xab's visit\r\n"
		    "END:VEVENT\r\nEND:VCALENDAR\r\n",
	};
	struct buf raw = { 0 };
	char *err = NULL, *t, *mt, *want, *boundary;
	static const int p0[] = { 0 }, p1[] = { 1 }, p00[] = { 0, 0 },
	    p01[] = { 0, 1 };

	s.html = "<p>Hello &amp; <b>welcome</b></p>\n";
	tap_ok(build(&s, &raw, &err, "alternative") == FU_OK,
	    "build alternative: ok");
	mt = type_at(&raw, NULL, 0);
	tap_str(mt, "multipart/alternative", "build alternative: type");
	free(mt);
	boundary = param_at(&raw, NULL, 0, "boundary");
	tap_ok(boundary != NULL && *boundary, "build alternative: boundary");
	if (boundary != NULL) {
		want = xasprintf("\r\n--%s\r\n", boundary);
		tap_ok(strstr(raw.data, want) != NULL,
		    "build alternative: delimiter line present");
		free(want);
		want = xasprintf("\r\n--%s--\r\n", boundary);
		tap_ok(strstr(raw.data, want) != NULL &&
		    strcmp(raw.data + raw.len - strlen(want), want) == 0,
		    "build alternative: close delimiter ends the message");
		free(want);
	}
	free(boundary);
	mt = type_at(&raw, p0, 1);
	tap_str(mt, "text/plain", "build alternative: text first");
	free(mt);
	mt = type_at(&raw, p1, 1);
	tap_str(mt, "text/html", "build alternative: html second");
	free(mt);
	t = param_at(&raw, p1, 1, "charset");
	tap_str(t, "utf-8", "build alternative: html charset=utf-8");
	free(t);
	t = text_at(&raw, p1, 1);
	want = crlf(s.html);
	tap_str(t, want, "build alternative: html round trip");
	free(t);
	free(want);

	s.calendar = &cal;
	tap_ok(build(&s, &raw, &err, "calendar") == FU_OK,
	    "build calendar: ok");
	tap_ok(strstr(raw.data, "Content-Type: text/calendar; method=REQUEST; "
	    "charset=UTF-8\r\n") != NULL, "build calendar: calendar type line");
	mt = type_at(&raw, NULL, 0);
	tap_str(mt, "multipart/mixed", "build calendar: mixed");
	free(mt);
	mt = type_at(&raw, p0, 1);
	tap_str(mt, "multipart/alternative", "build calendar: alternative first");
	free(mt);
	mt = type_at(&raw, p00, 2);
	tap_str(mt, "text/plain", "build calendar: text in the alternative");
	free(mt);
	mt = type_at(&raw, p01, 2);
	tap_str(mt, "text/html", "build calendar: html in the alternative");
	free(mt);
	mt = type_at(&raw, p1, 1);
	tap_str(mt, "text/calendar", "build calendar: calendar second");
	free(mt);
	t = text_at(&raw, p1, 1);
	tap_str(t, cal.ics, "build calendar: ics round trip");
	free(t);
	t = text_at(&raw, p00, 2);
	want = crlf(s.text);
	tap_str(t, want, "build calendar: text round trip");
	free(t);
	free(want);

	s.html = NULL;
	cal.method = "CANCEL";
	tap_ok(build(&s, &raw, &err, "calendar text") == FU_OK,
	    "build calendar text: ok");
	mt = type_at(&raw, p0, 1);
	tap_str(mt, "text/plain", "build calendar text: text first");
	free(mt);
	t = param_at(&raw, p1, 1, "method");
	tap_str(t, "CANCEL", "build calendar text: method=CANCEL");
	free(t);

	free(err);
	buf_free(&raw);
}

/* Occurrences of needle in hay[0..n). */
static int
count_of(const char *hay, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	int c = 0;

	for (const char *p = hay; (p = memmem(p, n - (size_t)(p - hay), needle,
	    k)) != NULL; p += k)
		c++;
	return c;
}

/*
 * Boundaries: two levels, different, neither a prefix of the other,
 * each delimiter exactly where it belongs, even when the parts carry the
 * very boundary strings (which is why they are derived from the
 * Message-ID: the same id gives the same boundaries, so this test can
 * put them in the bodies).
 */
static void
test_build_boundary(void)
{
	struct mime_part_calendar cal = { "REQUEST", "BEGIN:VCALENDAR\r\n" };
	struct mime_spec s = base_spec();
	struct buf raw = { 0 }, text = { 0 }, html = { 0 }, ics = { 0 };
	char *err = NULL, *outer, *inner, *t, *want;
	static const int p1[] = { 1 }, p00[] = { 0, 0 }, p01[] = { 0, 1 };

	s.html = "<p>x</p>";
	s.calendar = &cal;
	build(&s, &raw, &err, "boundary");
	outer = param_at(&raw, NULL, 0, "boundary");
	inner = param_at(&raw, (const int[]){ 0 }, 1, "boundary");
	tap_ok(outer && inner && strcmp(outer, inner) != 0 &&
	    strlen(outer) == strlen(inner) && strncmp(outer, "=_", 2) == 0,
	    "boundary: two levels, same length, different, \"=_\" (%s, %s)",
	    outer ? outer : "-", inner ? inner : "-");
	if (outer == NULL || inner == NULL)
		goto out;

	/* bodies made of boundaries, delimiters and "=_" */
	for (int k = 0; k < 3; k++) {
		buf_printf(&text, "--%s\n--%s--\r\n=_%s =_ _=\n--%s\r\n", outer,
		    inner, outer, inner);
		buf_printf(&html, "<p>--%s--</p>\r\n--%s\r\n=__=\n", inner,
		    outer);
		buf_printf(&ics, "--%s\n--%s\n", outer, inner);
	}
	buf_puts(&html, "--");
	buf_puts(&html, outer);	/* no final line break */
	s.text = text.data;
	s.html = html.data;
	cal.ics = ics.data;
	tap_ok(build(&s, &raw, &err, "boundary in bodies") == FU_OK,
	    "boundary in bodies: ok");
	char *d = xasprintf("\r\n--%s", outer);
	tap_ok(count_of(raw.data, raw.len, d) == 3,
	    "boundary in bodies: outer delimiter three times (%d)",
	    count_of(raw.data, raw.len, d));
	free(d);
	d = xasprintf("\r\n--%s", inner);
	tap_ok(count_of(raw.data, raw.len, d) == 3,
	    "boundary in bodies: inner delimiter three times, with the first "
	    "(%d)", count_of(raw.data, raw.len, d));
	free(d);
	d = xasprintf("--%s", outer);
	tap_ok(count_of(raw.data, raw.len, d) == 3,
	    "boundary in bodies: the outer string nowhere else");
	free(d);
	t = text_at(&raw, p00, 2);
	want = crlf(text.data);
	tap_str(t, want, "boundary in bodies: text decodes to the input");
	free(t);
	free(want);
	t = text_at(&raw, p01, 2);
	want = crlf(html.data);
	tap_str(t, want, "boundary in bodies: html decodes to the input");
	free(t);
	free(want);
	t = text_at(&raw, p1, 1);
	want = crlf(ics.data);
	tap_str(t, want, "boundary in bodies: calendar decodes to the input");
	free(t);
	free(want);

	/* the same, base64 (mostly non-ASCII) */
	buf_reset(&text);
	for (int k = 0; k < 40; k++)
		buf_printf(&text, "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d --%s\n", outer);
	s.text = text.data;
	s.html = text.data;
	build(&s, &raw, &err, "boundary in base64");
	tap_ok(strstr(raw.data, "Content-Transfer-Encoding: base64") != NULL,
	    "boundary in base64: base64 parts");
	d = xasprintf("--%s", outer);
	tap_ok(count_of(raw.data, raw.len, d) == 3,
	    "boundary in base64: the outer string only as delimiters");
	free(d);
	t = text_at(&raw, p01, 2);
	want = crlf(text.data);
	tap_str(t, want, "boundary in base64: decodes to the input");
	free(t);
	free(want);

	/* another Message-ID, other boundaries */
	s.message_id = "followupd.2.0123abcd@example.com";
	build(&s, &raw, &err, "other id");
	t = param_at(&raw, NULL, 0, "boundary");
	tap_ok(t != NULL && strcmp(t, outer) != 0,
	    "boundary: another Message-ID, another boundary");
	free(t);
out:
	free(outer);
	free(inner);
	free(err);
	buf_free(&raw);
	buf_free(&text);
	buf_free(&html);
	buf_free(&ics);
}

/* The quoted-printable lines of a text-only message's body. */
static char *
qp_of(const char *text, struct buf *raw)
{
	struct mime_spec s = base_spec();
	char *err = NULL;

	s.text = text;
	build(&s, raw, &err, "qp");
	free(err);
	return raw_at(raw, NULL, 0);
}

struct qp_case {
	const char	*name;
	const char	*in;
	const char	*want;		/* the encoded body */
};

static void
test_qp(void)
{
	static const struct qp_case cases[] = {
		{ "plain", "abc\n", "abc\r\n" },
		{ "'=' encoded", "a=b\n", "a=3Db\r\n" },
		{ "trailing space", "a \n", "a=20\r\n" },
		{ "trailing tab", "a\t\r\n", "a=09\r\n" },
		{ "trailing spaces", "a  \t \n", "a  \t=20\r\n" },
		{ "inner white space kept", "a \t b\n", "a \t b\r\n" },
		{ "white space at the end of the body", "a ", "a=20=\r\n" },
		{ "no final line break", "abc", "abc=\r\n" },
		{ "empty", "", "" },
		{ "only a line break", "\n", "\r\n" },
		{ "LF", "a\nb\n", "a\r\nb\r\n" },
		{ "lone CR", "a\rb\r", "a\r\nb\r\n" },
		{ "CRLF", "a\r\nb\r\n", "a\r\nb\r\n" },
		{ "CR CR LF LF", "a\r\r\n\nb", "a\r\n\r\n\r\nb=\r\n" },
		{ "LF CR", "a\n\rb\n", "a\r\n\r\nb\r\n" },
		{ "8-bit", "caf\xc3\xa9 au lait\n", "caf=C3=A9 au lait\r\n" },
		{ "controls", "a\x01\x1b\x7f" "b\n", "a=01=1B=7Fb\r\n" },
		{ "dot at line start", ".\n..\na.\n", "=2E\r\n=2E.\r\na.\r\n" },
		{ "From at line start", "From me\nFrom\nFrom:\n xFrom x\n",
		    "=46rom me\r\nFrom\r\nFrom:\r\n xFrom x\r\n" },
	};
	struct buf raw = { 0 }, in = { 0 };
	char *got, *want;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		got = qp_of(cases[i].in, &raw);
		tap_str(got, cases[i].want, "qp: %s", cases[i].name);
		free(got);
	}

	/* soft breaks: 75 characters and "=", exactly 76 */
	for (int k = 0; k < 200; k++)
		buf_putc(&in, (char)('a' + k % 26));
	buf_putc(&in, '\n');
	got = qp_of(in.data, &raw);
	int lines = 0, exact = 1;
	for (const char *p = got; *p; lines++) {
		const char *eol = strstr(p, "\r\n");

		if (eol[-1] == '=' && eol - p != 76)
			exact = 0;
		p = eol + 2;
	}
	tap_ok(lines == 3 && exact, "qp: 200 letters: two soft breaks at "
	    "exactly 76 characters (%d lines)", lines);
	free(got);
	want = text_at(&raw, NULL, 0);
	tap_ok(strncmp(want, in.data, 200) == 0, "qp: 200 letters decode");
	free(want);

	/* 76 characters then a hard break: one line; 77: a soft break */
	buf_reset(&in);
	for (int k = 0; k < 76; k++)
		buf_putc(&in, 'x');
	buf_puts(&in, "\n");
	got = qp_of(in.data, &raw);
	tap_ok(strlen(got) == 78 && strchr(got, '=') == NULL,
	    "qp: a line of 76 stays one line");
	free(got);
	buf_reset(&in);
	for (int k = 0; k < 77; k++)
		buf_putc(&in, 'x');
	buf_puts(&in, "\n");
	got = qp_of(in.data, &raw);
	tap_ok(strlen(got) == 76 + 2 + 2 + 2 && got[75] == '=',
	    "qp: a line of 77: 75, a soft break, 2");
	free(got);
	/* ...but a body without a final break keeps room for its "=" */
	in.data[--in.len] = '\0';
	in.data[--in.len] = '\0';
	got = qp_of(in.data, &raw);
	tap_ok(strlen(got) == 76 + 2 + 1 + 1 + 2 && got[75] == '=',
	    "qp: 76 without a final break: 75, a soft break, 1, a soft break");
	free(got);

	/* an encoded octet is never split; one at 74-76 before a break */
	buf_reset(&in);
	for (int k = 0; k < 73; k++)
		buf_putc(&in, 'x');
	buf_puts(&in, "=\n");
	got = qp_of(in.data, &raw);
	tap_ok(strlen(got) == 78 && strcmp(got + 73, "=3D\r\n") == 0,
	    "qp: '=' in columns 74-76 before a hard break");
	free(got);
	buf_reset(&in);
	for (int k = 0; k < 73; k++)
		buf_putc(&in, 'x');
	buf_puts(&in, "==\n");
	got = qp_of(in.data, &raw);
	tap_ok(strncmp(got + 73, "=\r\n=3D=3D\r\n", 11) == 0,
	    "qp: two '=' from column 74: a soft break first");
	free(got);
	buf_reset(&in);
	for (int k = 0; k < 75; k++)
		buf_putc(&in, 'x');
	buf_puts(&in, " \n");
	got = qp_of(in.data, &raw);
	tap_ok(strncmp(got + 75, "=\r\n=20\r\n", 8) == 0,
	    "qp: trailing space in column 76 goes to the next line, encoded");
	free(got);

	/* a soft break must not leave a "." or "From " at a line start */
	buf_reset(&in);
	for (int k = 0; k < 75; k++)
		buf_putc(&in, 'a');
	buf_puts(&in, ".b\n");
	for (int k = 0; k < 75; k++)
		buf_putc(&in, 'c');
	buf_puts(&in, "From d\n");
	got = qp_of(in.data, &raw);
	tap_ok(strstr(got, "\r\n.") == NULL && strstr(got, "\r\nFrom ") == NULL,
	    "qp: no '.' or 'From ' at a line start after a soft break");
	free(got);
	want = text_at(&raw, NULL, 0);
	got = crlf(in.data);
	tap_str(want, got, "qp: soft break: exact");
	free(got);
	free(want);

	buf_free(&in);
	buf_free(&raw);
}

/*
 * Random bodies from an alphabet of what encoders trip on, through text,
 * html and calendar parts: each decodes to the input (line breaks as
 * CRLF) under the strict reader, quoted-printable or base64.
 */
static void
test_round_trip(void)
{
	static const char *const pieces[] = {
		"a", "Z", " ", "\t", "=", ".", "From ", "\r", "\n", "\r\n",
		"\xc3\xa9", "\xe2\x80\x94", "\xf0\x9f\x8e\x89", "\xd7\xa9",
		"-", "--", "=_", "?", "_", "\x01", "\x7f", "~", "0123456789",
		"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
		"==========", "          ",
	};
	struct mime_part_calendar cal = { "PUBLISH", NULL };
	struct mime_spec s = base_spec();
	struct buf raw = { 0 }, a = { 0 }, b = { 0 };
	char *err = NULL, *t, *w;
	uint32_t seed = 99;
	int ok = 1, b64 = 0, qp = 0, n = 0;
	static const int p00[] = { 0, 0 }, p01[] = { 0, 1 }, p1[] = { 1 };

	for (int round = 0; round < 1500; round++) {
		size_t len = (size_t)(round % 7 == 0 ? 400 : round % 60);

		buf_reset(&a);
		buf_reset(&b);
		buf_append(&a, "", 0);
		buf_append(&b, "", 0);
		for (size_t k = 0; k < len; k++) {
			seed = seed * 1103515245 + 12345;
			/* every third body mostly 8-bit (base64) */
			unsigned pick = (seed >> 16) % (round % 3 == 0 ? 4 :
			    sizeof(pieces) / sizeof(pieces[0]));
			buf_puts(&a, pieces[round % 3 == 0 ? 10 + pick : pick]);
			buf_puts(&b, pieces[(seed >> 8) % (sizeof(pieces) /
			    sizeof(pieces[0]))]);
		}
		s.text = a.data;
		s.html = b.data;
		cal.ics = a.data;
		s.calendar = round % 2 ? &cal : NULL;
		if (build(&s, &raw, &err, "round trip") != FU_OK) {
			ok = 0;
			continue;
		}
		n++;
		b64 += count_of(raw.data, raw.len, "Encoding: base64");
		qp += count_of(raw.data, raw.len, "Encoding: quoted-printable");
		t = text_at(&raw, p00, round % 2 ? 2 : 1);
		w = crlf(a.data);
		if (strcmp(t, w) != 0) {
			ok = 0;
			tap_diag("text %d: %s", round, t);
		}
		free(t);
		free(w);
		t = text_at(&raw, round % 2 ? p01 : p1, round % 2 ? 2 : 1);
		w = crlf(b.data);
		if (strcmp(t, w) != 0) {
			ok = 0;
			tap_diag("html %d: %s", round, t);
		}
		free(t);
		free(w);
		if (round % 2) {
			t = text_at(&raw, p1, 1);
			w = crlf(a.data);
			if (strcmp(t, w) != 0)
				ok = 0;
			free(t);
			free(w);
		}
		if (!mime_message_complete(raw.data, raw.len, NULL))
			ok = 0;
	}
	tap_ok(ok, "round trip: %d random messages decode to their bodies "
	    "(%d base64 and %d quoted-printable parts), complete", n, b64, qp);
	tap_ok(b64 > 300 && qp > 1500, "round trip: both encodings exercised");
	free(err);
	buf_free(&raw);
	buf_free(&a);
	buf_free(&b);
}

static void
test_build_bodies(void)
{
	struct mime_spec s = base_spec();
	struct buf raw = { 0 }, big = { 0 };
	char *err = NULL, *t, *w;
	static const int p1[] = { 1 };

	/* 200 KB on one line */
	while (big.len < 200 * 1024)
		buf_puts(&big, "0123456789 <p>&amp; caf\xc3\xa9 = ");
	s.html = big.data;
	tap_ok(build(&s, &raw, &err, "200 KB line") == FU_OK,
	    "build 200 KB line: ok");
	t = text_at(&raw, p1, 1);
	tap_ok(strcmp(t, big.data) == 0,
	    "build 200 KB line: wrapped and decodes to the input");
	free(t);
	s.html = NULL;

	/* no final line break: QP must not add one */
	s.text = "no newline at end  ";
	tap_ok(build(&s, &raw, &err, "no final newline") == FU_OK,
	    "build no final newline: ok");
	t = text_at(&raw, NULL, 0);
	tap_str(t, "no newline at end  ", "build no final newline: exact");
	free(t);

	/* line starts that transports and mbox files mangle */
	s.text = "From the team\n.\nFrom\n..x\n";
	tap_ok(build(&s, &raw, &err, "From and dot") == FU_OK,
	    "build From and dot: ok");
	tap_ok(strstr(raw.data, "\r\n=46rom the team\r\n=2E\r\nFrom\r\n=2E.x\r\n")
	    != NULL, "build From and dot: encoded at line start");
	t = text_at(&raw, NULL, 0);
	w = crlf(s.text);
	tap_str(t, w, "build From and dot: exact");
	free(t);
	free(w);

	/* mixed line ends all become CRLF on the wire */
	s.text = "a\rb\nc\r\nd";
	tap_ok(build(&s, &raw, &err, "mixed line ends") == FU_OK,
	    "build mixed line ends: ok");
	t = text_at(&raw, NULL, 0);
	tap_str(t, "a\r\nb\r\nc\r\nd", "build mixed line ends: all line breaks");
	free(t);

	/* mostly non-ASCII: base64 */
	s.text = "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xd7\xa2\xd7\x95\xd7\x9c"
	    "\xd7\x9d\n\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7\n";
	tap_ok(build(&s, &raw, &err, "RTL") == FU_OK, "build RTL: ok");
	tap_ok(strstr(raw.data, "Content-Transfer-Encoding: base64\r\n") != NULL,
	    "build RTL: base64 for mostly non-ASCII text");
	t = text_at(&raw, NULL, 0);
	w = crlf(s.text);
	tap_str(t, w, "build RTL: exact");
	free(t);
	free(w);
	/* a little non-ASCII: quoted-printable */
	s.text = "Hello Zo\xc3\xab, thanks for your order.\n";
	build(&s, &raw, &err, "some 8-bit");
	tap_ok(strstr(raw.data, "quoted-printable") != NULL,
	    "build: a little 8-bit text stays quoted-printable");

	s.text = "";
	tap_ok(build(&s, &raw, &err, "empty body") == FU_OK,
	    "build empty body: ok");
	t = text_at(&raw, NULL, 0);
	tap_str(t, "", "build empty body: decodes to nothing");
	free(t);

	free(err);
	buf_free(&raw);
	buf_free(&big);
}

/* Header folding: at spaces, lines <= 78 (76 with an encoded word). */
static void
test_build_folding(void)
{
	static const char *const extra[] = {
		"X-Long", "aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj "
		    "kkkk llll mmmm nnnn oooo pppp qqqq",
		"X-Word", "0123456789012345678901234567890123456789012345678901234"
		    "567890123456789012345678901234567890123456789",
		NULL
	};
	struct mime_spec s = base_spec();
	struct buf raw = { 0 };
	char *err = NULL, *hb, *t;
	int bad = 0;

	s.subject = "A very long subject line that goes on and on and on and "
	    "on and beyond the fold column of seventy eight characters";
	s.extra_headers = extra;
	build(&s, &raw, &err, "folding");
	tap_ok(strstr(raw.data, "\r\nSubject: A very long subject line that "
	    "goes on and on and on and on and beyond\r\n the fold column") !=
	    NULL, "folding: Subject folded at the last space before 78");
	tap_ok(strstr(raw.data, "\r\nX-Long: aaaa bbbb cccc dddd eeee ffff gggg "
	    "hhhh iiii jjjj kkkk llll mmmm nnnn\r\n oooo pppp qqqq\r\n") != NULL,
	    "folding: an ASCII extra header folded at its spaces");
	tap_ok(strstr(raw.data, "\r\nX-Word: 0123456789012345678901234567890"
	    "123456789012345678901234567890123456789012345678901234567890123456"
	    "789\r\n") != NULL, "folding: one long word stays whole");
	t = header_text(&raw, "Subject", &bad);
	tap_str(t, s.subject, "folding: Subject unfolds to itself");
	free(t);
	hb = header_block(buf_cstr(&raw));
	t = hval(hb, "X-Long");
	tap_str(t, extra[1], "folding: X-Long unfolds to itself");
	free(t);
	free(hb);

	/* a long header name leaves little room: still one line of its own */
	static const char *const longname[] = {
		"X-0123456789012345678901234567890123456789012345678901234567890",
		"\xc3\xa9t\xc3\xa9 \xc3\xa9t\xc3\xa9", NULL
	};
	s.extra_headers = longname;
	buf_reset(&raw);
	tap_ok(mime_build(&s, &raw, &err) == FU_OK &&
	    wire_problem(raw.data, raw.len) == NULL,
	    "folding: a 64-character header name with an encoded value");
	t = header_text(&raw, longname[0], &bad);
	tap_str(t, longname[1], "folding: ... decodes");
	free(t);
	free(err);
	buf_free(&raw);
}

struct date_case {
	time_t		 t;
	const char	*want;		/* NULL: refused */
};

static void
test_build_date(void)
{
	static const struct date_case cases[] = {
		{ 0, "Date: Thu, 01 Jan 1970 00:00:00 +0000" },
		{ 951782400, "Date: Tue, 29 Feb 2000 00:00:00 +0000" },
		{ 1793872800, "Date: Thu, 05 Nov 2026 10:00:00 +0000" },
		{ (time_t)2147483648LL, "Date: Tue, 19 Jan 2038 03:14:08 +0000" },
		{ (time_t)4102444799LL, "Date: Thu, 31 Dec 2099 23:59:59 +0000" },
		{ (time_t)253402300799LL, "Date: Fri, 31 Dec 9999 23:59:59 +0000" },
		{ (time_t)-2208988800LL, "Date: Mon, 01 Jan 1900 00:00:00 +0000" },
		{ (time_t)253402300800LL, NULL },
		{ (time_t)-2208988801LL, NULL },
	};
	struct mime_spec s = base_spec();
	struct buf raw = { 0 };
	char *err = NULL, *hb;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r;

		s.date = cases[i].t;
		buf_reset(&raw);
		r = mime_build(&s, &raw, &err);
		if (cases[i].want == NULL) {
			tap_ok(r == FU_PERMFAIL && raw.len == 0,
			    "date %lld refused (%s)", (long long)cases[i].t,
			    err ? err : "");
			continue;
		}
		hb = header_block(buf_cstr(&raw));
		tap_ok(r == FU_OK && has_line(hb, cases[i].want), "%s",
		    cases[i].want);
		free(hb);
	}
	free(err);
	buf_free(&raw);
}

struct bad_case {
	const char	*name;
	struct mime_spec spec;
};

static void
test_build_errors(void)
{
	static const char *const bad_name[] = { "X Bad", "v", NULL };
	static const char *const colon_name[] = { "X-Foo:", "v", NULL };
	static const char *const to_name[] = { "To", "x@example.com", NULL };
	static const char *const ct_name[] = { "content-type", "text/html", NULL };
	static const char *const crlf_name[] = { "X-A\r\nBcc", "v", NULL };
	static const char *const no_value[] = { "X-A", NULL };
	static const char *const long_name[] = {
		"X-012345678901234567890123456789012345678901234567890123456789012",
		"v", NULL };
	static const char *const resent[] = { "Resent-To", "v", NULL };
	static const struct mime_part_calendar bad_method = { "REQ;UEST", "x" };
	static const struct mime_part_calendar no_ics = { "REQUEST", NULL };
	struct mime_spec b = base_spec();
	struct bad_case cases[26];
	size_t n = 0;

#define BAD(label, field, value) do {				\
		cases[n].name = (label);			\
		cases[n].spec = b;				\
		cases[n].spec.field = (value);			\
		n++;						\
	} while (0)
	BAD("invalid UTF-8 text", text, "caf\xe9\n");
	BAD("invalid UTF-8 html", html, "<p>\xc3</p>");
	BAD("surrogate in text", text, "\xed\xa0\x80");
	BAD("overlong in html", html, "\xc0\xaf");
	BAD("no text", text, NULL);
	BAD("bad recipient", to_addr, "a b@example.com");
	BAD("recipient with CRLF", to_addr, "a@example.com\r\nBcc: x@y.example");
	BAD("no recipient", to_addr, NULL);
	BAD("non-ASCII recipient", to_addr, "jos\xc3\xa9@example.com");
	BAD("Message-ID with brackets", message_id, "<a@example.com>");
	BAD("Message-ID without @", message_id, "abc");
	BAD("Message-ID with CRLF", message_id, "a@b\r\nBcc: x@y");
	BAD("no Message-ID", message_id, NULL);
	BAD("bad From", from, "Team <not an address>");
	BAD("no From", from, NULL);
	BAD("bad Reply-To", reply_to, "help@@example.com");
	BAD("header name with space", extra_headers, bad_name);
	BAD("header name with colon", extra_headers, colon_name);
	BAD("header name To", extra_headers, to_name);
	BAD("header name Content-Type", extra_headers, ct_name);
	BAD("header name Resent-To", extra_headers, resent);
	BAD("header name over 64", extra_headers, long_name);
	BAD("header name with CRLF", extra_headers, crlf_name);
	BAD("header without value", extra_headers, no_value);
	BAD("bad calendar method", calendar, &bad_method);
	BAD("calendar without text", calendar, &no_ics);
#undef BAD

	for (size_t i = 0; i < n; i++) {
		struct buf out = { 0 };
		char *err = NULL;
		int r = mime_build(&cases[i].spec, &out, &err);

		tap_ok(r == FU_PERMFAIL && err != NULL && out.len == 0,
		    "build rejects %s (%s)", cases[i].name, err ? err : "-");
		free(err);
		buf_free(&out);
	}
	struct mime_spec s = base_spec();
	struct buf out = { 0 };
	char *err = NULL;
	static const struct mime_part_calendar bad_ics = { "REQUEST", "\xff" };
	s.calendar = &bad_ics;
	int r = mime_build(&s, &out, &err);
	tap_ok(r == FU_PERMFAIL && err != NULL,
	    "build rejects invalid UTF-8 calendar (%s)", err ? err : "-");
	free(err);
	err = NULL;
	tap_ok(mime_build(NULL, &out, &err) == FU_PERMFAIL,
	    "build rejects a NULL spec");
	free(err);
	buf_free(&out);
}

/* --- samples for tests/e2e/test_mime_parse.py ------------------------- */

/*
 * Each sample is written as NAME.eml, plus the raw body inputs as
 * NAME.text, NAME.html, NAME.ics so the Python side can compare the
 * decoded parts byte for byte. Header expectations live in the Python
 * test, written independently of this code.
 */
static int
write_file(const char *dir, const char *name, const char *ext,
    const char *data, size_t len)
{
	char *path = xasprintf("%s/%s.%s", dir, name, ext);
	FILE *f = fopen(path, "wb");
	int ok = f != NULL && fwrite(data, 1, len, f) == len;

	if (f != NULL && fclose(f) != 0)
		ok = 0;
	if (!ok)
		fprintf(stderr, "test_mime: %s: %s\n", path, strerror(errno));
	free(path);
	return ok;
}

static int
write_sample(const char *dir, const char *name, const struct mime_spec *s)
{
	struct buf raw = { 0 };
	char *err = NULL;
	int ok;

	if (mime_build(s, &raw, &err) != FU_OK) {
		fprintf(stderr, "test_mime: sample %s: %s\n", name, err);
		free(err);
		return 0;
	}
	ok = write_file(dir, name, "eml", raw.data, raw.len) &&
	    write_file(dir, name, "text", s->text, strlen(s->text)) &&
	    (s->html == NULL ||
	    write_file(dir, name, "html", s->html, strlen(s->html))) &&
	    (s->calendar == NULL || write_file(dir, name, "ics",
	    s->calendar->ics, strlen(s->calendar->ics)));
	buf_free(&raw);
	return ok;
}

static int
write_samples(const char *dir)
{
	static const char *const hostile_extra[] = {
		"X-Campaign", "spring\r\nBcc: evil@example.com",
		"List-Unsubscribe", "<https://example.com/u?t=abc&x=1>",
		"X-Note", "caf\xc3\xa9 =?utf-8?q?x?= \xf0\x9f\x8e\x89\r\nTo: x@y",
		NULL
	};
	static const struct mime_part_calendar request = {
		.method = "REQUEST",
		.ics = "BEGIN:VCALENDAR\r\n"
		    "VERSION:2.0\r\n"
		    "PRODID:-//followupd//test//EN\r\n"
		    "METHOD:REQUEST\r\n"
		    "BEGIN:VEVENT\r\n"
		    "UID:visit-42@example.com\r\n"
		    "DTSTAMP:20251125T112200Z\r\n"
		    "DTSTART:20251201T090000Z\r\n"
		    "SUMMARY:Zo\xc3\xab's follow-up visit \xf0\x9f\x8e\x89\r\n"
		    "DESCRIPTION:A long description that is folded as RFC 5545"
		    " asks\\, with\r\n  a continuation line.\r\n"
		    "END:VEVENT\r\n"
		    "END:VCALENDAR\r\n",
	};
	static const struct mime_part_calendar cancel = {
		.method = "CANCEL",
		.ics = "BEGIN:VCALENDAR\n"
		    "VERSION:2.0\n"
		    "METHOD:CANCEL\n"
		    "BEGIN:VEVENT\n"
		    "UID:visit-42@example.com\n"
		    "STATUS:CANCELLED\n"
		    "END:VEVENT\n"
		    "END:VCALENDAR\n",
	};
	struct mime_spec s;
	struct buf name = { 0 }, subject = { 0 }, html = { 0 };
	int ok = 1;

	/* plain: text only, ASCII */
	s = base_spec();
	s.message_id = "plain.1@followupd.example";
	s.text = "Hello Ana,\n\nThanks for visiting us.\n-- \nFollowup Team\n";
	ok &= write_sample(dir, "plain", &s);

	/* hostile: text + html, injection attempts, emoji, RTL */
	s = base_spec();
	s.message_id = "hostile.2@followupd.example";
	s.from = "Zo\xc3\xab Ops <ops@example.com>";
	s.reply_to = "Help Desk <help@example.com>";
	s.to_name = "Smith, John \"JJ\" <evil@x>\r\nCc: victim@example.org";
	s.to_addr = "john@example.com";
	s.subject = "Zo\xc3\xab \xc3\xb1" "and\xc3\xba \xf0\x9f\x8e\x89 "
	    "<script>alert(1)</script> & \r\nBcc: evil@example.com\r\n"
	    " =?utf-8?q?a=0D=0AX:_y?=";
	s.text = "Hi <script>alert(1)</script> & friends \xf0\x9f\x8e\x89\r\n"
	    "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xd9\x85\xd8\xb1\xd8\xad\xd8\xa8"
	    "\xd8\xa7\r\n"
	    "=?utf-8?q?not_a_header?= From here.\r\n"
	    "From the team\r\n"
	    ".\r\n"
	    "trailing space   \r\n"
	    "no final newline";
	s.html = "<p>Hello &amp; <b>\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d</b> "
	    "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xf0\x9f\x8e\x89</p>"
	    "<script>alert('x')</script>\n";
	s.extra_headers = hostile_extra;
	ok &= write_sample(dir, "hostile", &s);

	/* bigname: 1 MB display name and subject, 1 MB single-line html */
	s = base_spec();
	s.message_id = "bigname.3@followupd.example";
	while (name.len < ONE_MB)
		buf_puts(&name, "\xc3\xa4");
	buf_puts(&subject, "Long ");
	while (subject.len < ONE_MB)
		buf_puts(&subject, "\xc3\xa9");
	while (html.len < ONE_MB)
		buf_puts(&html, "<td>0123456789 &amp; caf\xc3\xa9 = x</td>");
	s.to_name = name.data;
	s.subject = subject.data;
	s.text = "short\n";
	s.html = html.data;
	ok &= write_sample(dir, "bigname", &s);

	/* calendar: text + html + invitation */
	s = base_spec();
	s.message_id = "calendar.4@followupd.example";
	s.subject = "Invitation: follow-up visit";
	s.text = "You are invited.\n";
	s.html = "<p>You are invited.</p>\n";
	s.calendar = &request;
	ok &= write_sample(dir, "calendar", &s);

	/* cancel: text + cancellation, LF line ends in the ics */
	s = base_spec();
	s.message_id = "cancel.5@followupd.example";
	s.from = "\"Zo\xc3\xab \\\"Q\\\" Ops\" <ops@example.com>";
	s.subject = "Cancelled: follow-up visit";
	s.text = "The visit is cancelled.\n";
	s.calendar = &cancel;
	ok &= write_sample(dir, "cancel", &s);

	/* rtl: mostly non-ASCII text (base64) and an RTL subject */
	s = base_spec();
	s.message_id = "rtl.6@followupd.example";
	s.to_name = "\xd7\x93\xd7\xa0\xd7\x94 \"DK\" \xd7\x9b\xd7\x94\xd7\x9f, "
	    "<evil@example.org>";
	s.subject = "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xd7\xa2\xd7\x95\xd7\x9c"
	    "\xd7\x9d";
	s.text = "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xd7\xa2\xd7\x95\xd7\x9c\xd7"
	    "\x9d\n\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xd8\xa8\xd8\xa7"
	    "\xd9\x84\xd8\xb9\xd8\xa7\xd9\x84\xd9\x85\n";
	ok &= write_sample(dir, "rtl", &s);

	buf_free(&name);
	buf_free(&subject);
	buf_free(&html);
	return ok;
}

int
main(int argc, char *argv[])
{
	if (argc == 3 && strcmp(argv[1], "--write") == 0)
		return write_samples(argv[2]) ? 0 : 1;
	if (argc != 1) {
		fprintf(stderr, "usage: test_mime [--write DIR]\n");
		return 2;
	}
	test_clean_phrase();
	test_address_ok();
	test_build_text();
	test_build_encoded_word();
	test_build_names();
	test_build_hostile();
	test_build_injection();
	test_build_multipart();
	test_build_boundary();
	test_qp();
	test_round_trip();
	test_build_bodies();
	test_build_folding();
	test_build_date();
	test_build_errors();
	return tap_done();
}
