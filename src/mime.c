/* mime: RFC 5322 / 2045 / 2047 messages built with GMime; header and address hygiene. */
#include "mime.h"
#include "log.h"

#include <gmime/gmime.h>

#include <string.h>
#include <strings.h>

/* RFC 2045 6.7 (5): encoded lines are at most 76 characters. */
#define QP_LINE_MAX		76
/* RFC 2047 2: an encoded word is at most 75 characters. */
#define EW_MAX			75
/*
 * "=?UTF-8?B?" + base64 + "?=" fits EW_MAX with 60 base64 characters,
 * i.e. 45 bytes of UTF-8 per encoded word.
 */
#define EW_RAW_MAX		45
/* GMime 3.2 encodes ASCII words from 78 characters on, in words over 75. */
#define WORD_PLAIN_MAX		72
/* RFC 5321 4.5.3.1.1 / 4.5.3.1.2: local part and domain lengths. */
#define LOCAL_PART_MAX		64
#define DOMAIN_MAX		253
#define LABEL_MAX		63
/* RFC 5322 2.1.1: lines SHOULD be no more than 78 characters. */
#define HEADER_FOLD_AT		78
/*
 * Our own limits for extra headers, chosen so "Name: value" stays under
 * MIME_LINE_MAX even when the value is one unbreakable word
 * (64 + 2 + 900 < 998).
 */
#define HEADER_NAME_MAX		64
#define HEADER_VALUE_MAX	900
/* An id-left "@" id-right (RFC 5322 3.6.4) plus "<>" in one short line. */
#define MESSAGE_ID_MAX		250
#define CAL_METHOD_MAX		32
/*
 * QP grows non-ASCII bytes threefold, base64 everything by 4/3: past ~17%
 * of 8-bit bytes base64 is the smaller (GMime's best filter uses the same).
 */
#define BASE64_8BIT_PERCENT	17

static const char utf8_replacement[] = "\xef\xbf\xbd";	/* U+FFFD */
static const char utf8_ellipsis[] = "\xe2\x80\xa6";	/* U+2026 … */

void
mime_init(void)
{
	static gsize done;

	if (g_once_init_enter(&done)) {
		g_mime_init();
		g_once_init_leave(&done, 1);
	}
}

/*
 * Decode one UTF-8 sequence from s[0..n), n > 0. Returns the code point,
 * or -1 for an invalid sequence, in which case *adv is the length of its
 * maximal subpart (Unicode 15, 3.9 "U+FFFD substitution"), at least 1.
 */
static long
utf8_decode(const unsigned char *s, size_t n, size_t *adv)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t need, k;
	long cp;

	if (c < 0x80) {
		*adv = 1;
		return c;
	} else if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		cp = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0;	/* overlong */
		else if (c == 0xed)
			hi = 0x9f;	/* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		cp = c & 0x07;
		if (c == 0xf0)
			lo = 0x90;	/* overlong */
		else if (c == 0xf4)
			hi = 0x8f;	/* > U+10FFFF */
	} else {
		*adv = 1;
		return -1;
	}
	for (k = 1; k <= need; k++) {
		if (k >= n || s[k] < lo || s[k] > hi) {
			*adv = k;
			return -1;
		}
		cp = (cp << 6) | (s[k] & 0x3f);
		lo = 0x80;
		hi = 0xbf;
	}
	*adv = need + 1;
	return cp;
}

static void
utf8_put(struct buf *b, long cp)
{
	char u[4];

	if (cp < 0x80) {
		u[0] = (char)cp;
		buf_append(b, u, 1);
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		buf_append(b, u, 2);
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		buf_append(b, u, 3);
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		buf_append(b, u, 4);
	}
}

/* Characters that could end or split a line somewhere down the road. */
static int
phrase_is_space(long cp)
{
	return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) ||
	    cp == 0x2028 || cp == 0x2029 || cp == ' ';
}

char *
mime_clean_phrase(const char *in, size_t len, size_t max)
{
	const unsigned char *s = (const unsigned char *)in;
	struct buf b = { 0 };
	size_t i = 0, adv, nchars = 0, mark = 0;
	int space = 0, cut = 0;
	long cp;

	while (s != NULL && i < len) {
		cp = utf8_decode(s + i, len - i, &adv);
		i += adv;
		if (cp != -1 && phrase_is_space(cp)) {
			space = nchars > 0;	/* drops leading space */
			continue;
		}
		/* the pending space and this character must both fit */
		if (nchars + (size_t)space + 1 > max) {
			cut = 1;
			break;
		}
		if (space) {
			buf_putc(&b, ' ');
			if (++nchars + 1 == max)
				mark = b.len;
			space = 0;
		}
		if (cp == -1)
			buf_puts(&b, utf8_replacement);
		else
			utf8_put(&b, cp);
		if (++nchars + 1 == max)
			mark = b.len;
	}
	if (cut && max > 0) {
		/* keep max - 1 characters and the ellipsis */
		b.len = max > 1 ? mark : 0;
		while (b.len > 0 && b.data[b.len - 1] == ' ')
			b.len--;
		buf_puts(&b, utf8_ellipsis);
	}
	buf_reserve(&b, 0);
	b.data[b.len] = '\0';
	return buf_steal(&b);
}

/* RFC 5322 3.2.3 atext. */
static int
is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' &&
	    strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* A dot-atom-text (RFC 5322 3.2.3): atext runs separated by single dots. */
static int
dot_atom_ok(const char *s, size_t n, const char **why)
{
	if (n == 0) {
		*why = "empty";
		return 0;
	}
	if (s[0] == '.' || s[n - 1] == '.') {
		*why = "leading or trailing dot";
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.') {
				*why = "two dots in a row";
				return 0;
			}
		} else if (!is_atext((unsigned char)s[i])) {
			*why = "character not allowed";
			return 0;
		}
	}
	return 1;
}

static int
is_ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-';
}

int
mime_address_ok(const char *addr, const char **why)
{
	const char *dummy, *at = NULL, *dom, *label;
	size_t n, i;

	if (why == NULL)
		why = &dummy;
	*why = NULL;
	if (addr == NULL || *addr == '\0') {
		*why = "empty address";
		return 0;
	}
	n = strlen(addr);
	if (n > MIME_ADDRESS_MAX) {
		*why = "address longer than 254 characters";
		return 0;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)addr[i];

		if (c < 0x20 || c == 0x7f) {
			*why = "control character in address";
			return 0;
		}
		if (c >= 0x80) {
			*why = "non-ASCII address (SMTPUTF8 is not supported)";
			return 0;
		}
		if (c == '@') {
			if (at != NULL) {
				*why = "more than one '@'";
				return 0;
			}
			at = addr + i;
		}
	}
	if (at == NULL) {
		*why = "no '@'";
		return 0;
	}
	if (at == addr) {
		*why = "empty local part";
		return 0;
	}
	if ((size_t)(at - addr) > LOCAL_PART_MAX) {
		*why = "local part longer than 64 characters";
		return 0;
	}
	if (!dot_atom_ok(addr, (size_t)(at - addr), why)) {
		if (strcmp(*why, "character not allowed") == 0)
			*why = "character not allowed in local part";
		else if (strcmp(*why, "two dots in a row") == 0)
			*why = "two dots in a row in local part";
		else
			*why = "leading or trailing dot in local part";
		return 0;
	}
	dom = at + 1;
	if (*dom == '\0') {
		*why = "empty domain";
		return 0;
	}
	if (strlen(dom) > DOMAIN_MAX) {
		*why = "domain longer than 253 characters";
		return 0;
	}
	for (label = dom;; label++) {
		const char *end = strchr(label, '.');
		size_t ln = end ? (size_t)(end - label) : strlen(label);

		if (ln == 0) {
			*why = "empty domain label (stray dot)";
			return 0;
		}
		if (ln > LABEL_MAX) {
			*why = "domain label longer than 63 characters";
			return 0;
		}
		for (i = 0; i < ln; i++) {
			if (!is_ldh((unsigned char)label[i])) {
				*why = "character not allowed in domain";
				return 0;
			}
		}
		if (label[0] == '-' || label[ln - 1] == '-') {
			*why = "domain label starts or ends with '-'";
			return 0;
		}
		if (end == NULL)
			break;
		label = end;
	}
	if (strcasestr(dom, "xn--") != NULL) {
		/*
		 * GMime turns A-labels into Unicode and back when it writes To;
		 * an xn-- label that is not valid Punycode comes out as another
		 * address ("a@xn--a.example" as "a@.example"), 8-bit at that.
		 * Only what survives the round trip unchanged is accepted.
		 */
		InternetAddress *ia;
		int same;

		mime_init();
		ia = internet_address_mailbox_new(NULL, addr);
		same = strcmp(internet_address_mailbox_get_idn_addr(
		    INTERNET_ADDRESS_MAILBOX(ia)), addr) == 0;
		g_object_unref(ia);
		if (!same) {
			*why = "invalid IDN label (xn-- that is not valid "
			    "Punycode)";
			return 0;
		}
	}
	return 1;
}

const char *
mime_address_domain(const char *addr)
{
	const char *at;

	if (addr == NULL)
		return "";
	if ((at = strrchr(addr, '@')) == NULL)
		return addr + strlen(addr);
	return at + 1;
}

/*
 * A word GMime must not write as it is: 8-bit, an encoded-word look-alike,
 * or so long that GMime would turn it into over-long us-ascii words.
 */
static int
word_needs_encoding(const char *w, size_t n)
{
	if (n > WORD_PLAIN_MAX)
		return 1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)w[i] >= 0x80 ||
		    (w[i] == '=' && i + 1 < n && w[i + 1] == '?'))
			return 1;
	return 0;
}

/* s[0..n) as UTF-8 "B" encoded words of at most EW_MAX characters. */
static void
ew_encode(const char *s, size_t n, struct buf *out)
{
	while (n > 0) {
		size_t take = n < EW_RAW_MAX ? n : EW_RAW_MAX;
		gchar *b64;

		/* never split a UTF-8 sequence between two words */
		while (take < n && ((unsigned char)s[take] & 0xc0) == 0x80)
			take--;
		b64 = g_base64_encode((const guchar *)s, take);
		buf_printf(out, "=?UTF-8?B?%s?=%s", b64, take < n ? " " : "");
		g_free(b64);
		s += take;
		n -= take;
	}
}

/*
 * RFC 2047 for a cleaned value (single spaces, no controls), done here
 * rather than by GMime, which (3.2, measured) writes encoded words longer
 * than the 75 characters RFC 2047 2 allows (long runs of non-ASCII such
 * as CJK, long ASCII words) and passes words that look like encoded words
 * ("=?cs?q?..?=") through unchanged, so a reader would decode text we
 * never cleaned (CR, LF, addresses). Runs of words that need it become
 * "B" words (base64 letters are atext, safe in a phrase); the spaces
 * inside a run are encoded too, since readers drop white space between
 * encoded words (RFC 2047 6.2). Plain ASCII words are left for GMime to
 * fold. In a phrase (display name) GMime would put the whole name in one
 * quoted string as soon as a word has a special (",", "\"", "<"), and an
 * encoded word inside quotes is not decoded (RFC 2047 5 (3)):
 * so a phrase that needs any encoding is encoded whole.
 */
static char *
header_encode(const char *clean, int phrase)
{
	struct buf b = { 0 };
	const char *p = clean, *run = NULL, *run_end = NULL;

	if (!word_needs_encoding(clean, strlen(clean)))
		return xstrdup(clean);
	if (phrase) {
		ew_encode(clean, strlen(clean), &b);
		return buf_steal(&b);
	}
	for (;;) {
		const char *sp = strchr(p, ' ');
		size_t n = sp ? (size_t)(sp - p) : strlen(p);

		if (word_needs_encoding(p, n)) {
			if (run == NULL)
				run = p;
			run_end = p + n;
		} else {
			if (run != NULL) {
				ew_encode(run, (size_t)(run_end - run), &b);
				buf_putc(&b, ' ');
				run = NULL;
			}
			buf_append(&b, p, n);
			if (sp != NULL)
				buf_putc(&b, ' ');
		}
		if (sp == NULL)
			break;
		p = sp + 1;
	}
	if (run != NULL)
		ew_encode(run, (size_t)(run_end - run), &b);
	return buf_steal(&b);
}

/* Cleaned and encoded display name or subject; NULL when nothing is left. */
static char *
header_phrase(const char *in, size_t max, int phrase)
{
	char *clean, *out;

	if (in == NULL)
		return NULL;
	clean = mime_clean_phrase(in, strlen(in), max);
	if (*clean == '\0') {
		free(clean);
		return NULL;
	}
	out = header_encode(clean, phrase);
	free(clean);
	return out;
}

/*
 * "Name <addr>", "\"Name\" <addr>" or "addr" from the config. The name is
 * cleaned like any other phrase; the address must pass mime_address_ok.
 */
static int
parse_mailbox(const char *what, const char *in, InternetAddress **ia,
    char **err)
{
	const char *s = in, *e, *lt, *why;
	char *addr = NULL, *name = NULL;
	struct buf raw = { 0 };

	*ia = NULL;
	if (in == NULL) {
		set_err(err, "mime: %s address missing", what);
		return FU_PERMFAIL;
	}
	e = s + strlen(s);
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (e > s && e[-1] == '>') {
		if ((lt = memrchr(s, '<', (size_t)(e - s))) == NULL) {
			set_err(err, "mime: %s: '>' without '<'", what);
			return FU_PERMFAIL;
		}
		addr = xstrndup(lt + 1, (size_t)(e - 1 - (lt + 1)));
		e = lt;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e - s >= 2 && *s == '"' && e[-1] == '"') {
			/* unquote: RFC 5322 3.2.4 quoted-pair */
			for (s++, e--; s < e; s++) {
				if (*s == '\\' && s + 1 < e)
					s++;
				buf_putc(&raw, *s);
			}
		} else
			buf_append(&raw, s, (size_t)(e - s));
		buf_putc(&raw, '\0');
		name = header_phrase(raw.data, MIME_PHRASE_MAX, 1);
		buf_free(&raw);
	} else
		addr = xstrndup(s, (size_t)(e - s));
	if (!mime_address_ok(addr, &why)) {
		set_err(err, "mime: %s address: %s", what, why);
		free(addr);
		free(name);
		return FU_PERMFAIL;
	}
	*ia = internet_address_mailbox_new(name, addr);
	internet_address_set_charset(*ia, "utf-8");
	free(addr);
	free(name);
	return FU_OK;
}

/* The list takes its own reference. */
static void
add_mailbox(GMimeMessage *msg, GMimeAddressType type, InternetAddress *ia)
{
	internet_address_list_add(g_mime_message_get_addresses(msg, type), ia);
	g_object_unref(ia);
}

/* RFC 5322 3.6.4 msg-id without the angle brackets: dot-atom "@" dot-atom. */
static int
message_id_ok(const char *id)
{
	const char *at, *why;
	size_t n;

	if (id == NULL || (n = strlen(id)) == 0 || n > MESSAGE_ID_MAX)
		return 0;
	if ((at = strchr(id, '@')) == NULL || strchr(at + 1, '@') != NULL)
		return 0;
	return dot_atom_ok(id, (size_t)(at - id), &why) &&
	    dot_atom_ok(at + 1, strlen(at + 1), &why);
}

static int
header_name_ok(const char *name)
{
	static const char *const ours[] = {
		"Date", "From", "Sender", "Reply-To", "To", "Cc", "Bcc",
		"Message-ID", "Subject", "MIME-Version", "Auto-Submitted",
		"Return-Path", "Received", NULL
	};
	size_t n = strlen(name);

	if (n == 0 || n > HEADER_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= 'A' && name[i] <= 'Z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '-'))
			return 0;
	/* those we write, and those that change structure or routing */
	for (size_t i = 0; ours[i] != NULL; i++)
		if (strcasecmp(name, ours[i]) == 0)
			return 0;
	return strncasecmp(name, "Content-", 8) != 0 &&
	    strncasecmp(name, "Resent-", 7) != 0;
}

/*
 * Fold a cleaned value (words separated by single spaces) at its spaces
 * so lines stay within RFC 5322 2.1.1's 78 characters where a word
 * allows it; `col` is where the value starts. Returns a raw header value:
 * leading space, trailing LF (the whole message goes through unix2dos).
 */
static char *
header_fold(size_t col, const char *v)
{
	struct buf b = { 0 };
	const char *p = v;

	while (*p != '\0') {
		const char *sp = strchr(p, ' ');
		size_t n = sp ? (size_t)(sp - p) : strlen(p);

		if (b.len > 0 && col + 1 + n > HEADER_FOLD_AT) {
			buf_putc(&b, '\n');
			col = 0;
		}
		buf_putc(&b, ' ');
		buf_append(&b, p, n);
		col += 1 + n;
		p = sp ? sp + 1 : p + n;
	}
	buf_putc(&b, '\n');
	return buf_steal(&b);
}

/*
 * Extra headers are written raw, never through GMime's per-name
 * formatters (which would parse an address list or rewrite long words).
 * An ASCII value goes verbatim, so structured values such as
 * List-Unsubscribe URLs survive byte for byte; a longest word is
 * HEADER_VALUE_MAX octets, so a line stays under MIME_LINE_MAX. A
 * non-ASCII value is unstructured text in encoded words.
 */
static void
add_extra_header(GMimeMessage *msg, const char *name, const char *value)
{
	GMimeHeaderList *hl;
	GMimeHeader *h;
	char *clean, *enc = NULL, *raw;

	clean = mime_clean_phrase(value, strlen(value), HEADER_VALUE_MAX);
	for (const char *p = clean; *p; p++)
		if ((unsigned char)*p >= 0x80) {
			enc = header_encode(clean, 0);
			break;
		}
	raw = header_fold(strlen(name) + 1, enc ? enc : clean);
	g_mime_object_append_header(GMIME_OBJECT(msg), name, "", NULL);
	hl = g_mime_object_get_header_list(GMIME_OBJECT(msg));
	h = g_mime_header_list_get_header_at(hl,
	    g_mime_header_list_get_count(hl) - 1);
	g_mime_header_set_raw_value(h, raw);
	free(raw);
	free(enc);
	free(clean);
}

/* Every line break (CRLF, LF, lone CR) as CRLF: RFC 2046 4.1.1. */
static void
canon_crlf(const char *s, struct buf *out, size_t *n8bit)
{
	*n8bit = 0;
	for (; *s; s++) {
		if (*s == '\r') {
			if (s[1] == '\n')
				s++;
			buf_append(out, "\r\n", 2);
		} else if (*s == '\n')
			buf_append(out, "\r\n", 2);
		else {
			if ((unsigned char)*s >= 0x80)
				(*n8bit)++;
			buf_putc(out, *s);
		}
	}
}

/*
 * Quoted-printable (RFC 2045 6.7) of canonical CRLF text; hard breaks are
 * written as LF (the whole message goes through unix2dos). Ours rather
 * than GMime's because GMime's encoder ends a body that has no final line
 * break with a hard one (the decoded text gains a newline); we end it with
 * a soft break, so the decoded body is exactly the input.
 */
static void
qp_encode(const char *s, size_t n, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int eol, lit;
		size_t w;

		if (c == '\r' && i + 1 < n && s[i + 1] == '\n') {
			buf_putc(out, '\n');
			col = 0;
			i++;
			continue;
		}
		eol = i + 1 == n || s[i + 1] == '\r';
		lit = (c >= 33 && c <= 126 && c != '=') ||
		    ((c == ' ' || c == '\t') && !eol);
		w = lit ? 1 : 3;
		if (col + w > QP_LINE_MAX - 1) {	/* room for the '=' */
			buf_append(out, "=\n", 2);
			col = 0;
		}
		/*
		 * At the start of a line, "." (a transport that forgets dot
		 * stuffing) and "From " (mbox) are encoded to survive both.
		 */
		if (col == 0 && (c == '.' || (c == 'F' && n - i >= 5 &&
		    memcmp(s + i, "From ", 5) == 0))) {
			lit = 0;
			w = 3;
		}
		if (lit)
			buf_putc(out, (char)c);
		else {
			buf_putc(out, '=');
			buf_putc(out, hex[c >> 4]);
			buf_putc(out, hex[c & 0xf]);
		}
		col += w;
	}
	if (n > 0 && !(n >= 2 && s[n - 2] == '\r' && s[n - 1] == '\n'))
		buf_append(out, "=\n", 2);
}

/* A text/SUBTYPE part, charset=utf-8 unless the caller sets parameters. */
static GMimePart *
text_part(const char *subtype, const char *body, const char *method)
{
	GMimeContentEncoding enc;
	GMimeDataWrapper *wrapper;
	GMimeContentType *ct;
	GMimeStream *stream;
	GMimePart *part;
	struct buf canon = { 0 }, qp = { 0 };
	size_t n8bit;

	canon_crlf(body, &canon, &n8bit);
	if (canon.len > 0 && n8bit * 100 > canon.len * BASE64_8BIT_PERCENT) {
		/* GMime's base64 encoder is exact: hand it the raw text */
		enc = GMIME_CONTENT_ENCODING_BASE64;
		stream = g_mime_stream_mem_new_with_buffer(buf_cstr(&canon),
		    canon.len);
		wrapper = g_mime_data_wrapper_new_with_stream(stream,
		    GMIME_CONTENT_ENCODING_DEFAULT);
	} else {
		/* already encoded: GMime copies it as it is */
		enc = GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE;
		qp_encode(buf_cstr(&canon), canon.len, &qp);
		stream = g_mime_stream_mem_new_with_buffer(buf_cstr(&qp),
		    qp.len);
		wrapper = g_mime_data_wrapper_new_with_stream(stream, enc);
	}
	g_object_unref(stream);
	buf_free(&canon);
	buf_free(&qp);

	part = g_mime_part_new_with_type("text", subtype);
	ct = g_mime_object_get_content_type(GMIME_OBJECT(part));
	if (method != NULL) {
		g_mime_content_type_set_parameter(ct, "method", method);
		g_mime_content_type_set_parameter(ct, "charset", "UTF-8");
	} else
		g_mime_content_type_set_parameter(ct, "charset", "utf-8");
	g_mime_part_set_content(part, wrapper);
	g_object_unref(wrapper);
	g_mime_part_set_content_encoding(part, enc);
	return part;
}

static int
method_ok(const char *m)
{
	size_t n;

	if (m == NULL || (n = strlen(m)) == 0 || n > CAL_METHOD_MAX)
		return 0;
	for (; *m; m++)
		if (!((*m >= 'A' && *m <= 'Z') || (*m >= 'a' && *m <= 'z') ||
		    *m == '-'))
			return 0;
	return 1;
}

/*
 * Last line of defence between GMime and the SMTP client: CRLF only, no
 * NUL, no line longer than MIME_LINE_MAX.
 */
static const char *
wire_check(const unsigned char *p, size_t n)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\0')
			return "NUL byte";
		if (p[i] == '\r') {
			if (i + 1 >= n || p[i + 1] != '\n')
				return "bare CR";
			i++;
			col = 0;
			continue;
		}
		if (p[i] == '\n')
			return "bare LF";
		if (++col > MIME_LINE_MAX)
			return "line longer than 998 octets";
	}
	return NULL;
}

static int
spec_check(const struct mime_spec *spec, char **err)
{
	const char *why;

	if (spec->text == NULL) {
		set_err(err, "mime: text body missing");
		return FU_PERMFAIL;
	}
	if (!utf8_valid(spec->text, strlen(spec->text))) {
		set_err(err, "mime: text body is not valid UTF-8");
		return FU_PERMFAIL;
	}
	if (spec->html != NULL && !utf8_valid(spec->html, strlen(spec->html))) {
		set_err(err, "mime: HTML body is not valid UTF-8");
		return FU_PERMFAIL;
	}
	if (spec->calendar != NULL) {
		if (spec->calendar->ics == NULL) {
			set_err(err, "mime: calendar part without text");
			return FU_PERMFAIL;
		}
		if (!utf8_valid(spec->calendar->ics,
		    strlen(spec->calendar->ics))) {
			set_err(err, "mime: calendar is not valid UTF-8");
			return FU_PERMFAIL;
		}
		if (!method_ok(spec->calendar->method)) {
			set_err(err, "mime: bad calendar method");
			return FU_PERMFAIL;
		}
	}
	if (!mime_address_ok(spec->to_addr, &why)) {
		set_err(err, "mime: recipient address: %s", why);
		return FU_PERMFAIL;
	}
	if (!message_id_ok(spec->message_id)) {
		set_err(err, "mime: bad Message-ID (want id@domain, "
		    "no brackets)");
		return FU_PERMFAIL;
	}
	for (const char *const *h = spec->extra_headers; h && h[0]; h += 2) {
		if (h[1] == NULL) {
			set_err(err, "mime: extra header %s without a value",
			    header_name_ok(h[0]) ? h[0] : "(invalid name)");
			return FU_PERMFAIL;
		}
		if (!header_name_ok(h[0])) {
			/* the name may be hostile: do not echo it */
			set_err(err, "mime: extra header name not allowed");
			return FU_PERMFAIL;
		}
	}
	return FU_OK;
}

static GMimeObject *
body_build(const struct mime_spec *spec)
{
	GMimeMultipart *alt, *mixed;
	GMimeObject *body;
	GMimePart *part;

	body = GMIME_OBJECT(text_part("plain", spec->text, NULL));
	if (spec->html != NULL) {
		alt = g_mime_multipart_new_with_subtype("alternative");
		g_mime_multipart_add(alt, body);
		g_object_unref(body);
		part = text_part("html", spec->html, NULL);
		g_mime_multipart_add(alt, GMIME_OBJECT(part));
		g_object_unref(part);
		body = GMIME_OBJECT(alt);
	}
	if (spec->calendar != NULL) {
		mixed = g_mime_multipart_new_with_subtype("mixed");
		g_mime_multipart_add(mixed, body);
		g_object_unref(body);
		part = text_part("calendar", spec->calendar->ics,
		    spec->calendar->method);
		g_mime_multipart_add(mixed, GMIME_OBJECT(part));
		g_object_unref(part);
		body = GMIME_OBJECT(mixed);
	}
	return body;
}

int
mime_build(const struct mime_spec *spec, struct buf *out, char **err)
{
	GMimeMessage *msg = NULL;
	GMimeStream *mem = NULL, *filtered = NULL;
	GMimeFilter *unix2dos;
	GMimeObject *body;
	InternetAddress *ia;
	GByteArray *bytes;
	GDateTime *date;
	char *s, *id;
	const char *bad;
	int rc;

	if (spec == NULL || out == NULL) {
		set_err(err, "mime: no message");
		return FU_PERMFAIL;
	}
	if ((rc = spec_check(spec, err)) != FU_OK)
		return rc;
	mime_init();

	/* headers in the order they are written (no pretty_headers slots) */
	msg = g_mime_message_new(FALSE);
	if ((date = g_date_time_new_from_unix_utc(spec->date)) == NULL) {
		set_err(err, "mime: date out of range");
		rc = FU_PERMFAIL;
		goto done;
	}
	g_mime_message_set_date(msg, date);
	g_date_time_unref(date);
	id = xasprintf("<%s>", spec->message_id);
	g_mime_object_append_header(GMIME_OBJECT(msg), "Message-ID", id, NULL);
	free(id);

	if ((rc = parse_mailbox("From", spec->from, &ia, err)) != FU_OK)
		goto done;
	add_mailbox(msg, GMIME_ADDRESS_TYPE_FROM, ia);

	/* GMime quotes an ASCII name; header_encode did any RFC 2047 work */
	s = header_phrase(spec->to_name, MIME_PHRASE_MAX, 1);
	ia = internet_address_mailbox_new(s, spec->to_addr);
	internet_address_set_charset(ia, "utf-8");
	free(s);
	add_mailbox(msg, GMIME_ADDRESS_TYPE_TO, ia);

	if (spec->reply_to != NULL) {
		if ((rc = parse_mailbox("Reply-To", spec->reply_to, &ia,
		    err)) != FU_OK)
			goto done;
		add_mailbox(msg, GMIME_ADDRESS_TYPE_REPLY_TO, ia);
	}

	s = header_phrase(spec->subject, MIME_PHRASE_MAX, 0);
	g_mime_message_set_subject(msg, s ? s : "", "utf-8");
	free(s);
	g_mime_object_append_header(GMIME_OBJECT(msg), "MIME-Version", "1.0",
	    NULL);
	/* RFC 3834 5: keeps vacation responders from answering */
	g_mime_object_append_header(GMIME_OBJECT(msg), "Auto-Submitted",
	    "auto-generated", NULL);
	for (const char *const *h = spec->extra_headers; h && h[0]; h += 2)
		add_extra_header(msg, h[0], h[1]);

	body = body_build(spec);
	g_mime_message_set_mime_part(msg, body);
	g_object_unref(body);

	/* GMime writes LF; SMTP wants CRLF (RFC 5321 2.3.8) */
	mem = g_mime_stream_mem_new();
	filtered = g_mime_stream_filter_new(mem);
	unix2dos = g_mime_filter_unix2dos_new(FALSE);
	g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), unix2dos);
	g_object_unref(unix2dos);
	if (g_mime_object_write_to_stream(GMIME_OBJECT(msg), NULL,
	    filtered) == -1 || g_mime_stream_flush(filtered) == -1) {
		set_err(err, "mime: writing the message failed");
		rc = FU_TEMPFAIL;
		goto done;
	}
	bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	/* SMTP DATA ends with CRLF . CRLF: the message itself ends a line */
	if (bytes->len < 2 || bytes->data[bytes->len - 1] != '\n')
		g_byte_array_append(bytes, (const guint8 *)"\r\n", 2);
	if ((bad = wire_check(bytes->data, bytes->len)) != NULL) {
		log_warnx("mime: generated message rejected: %s", bad);
		set_err(err, "mime: generated message has a %s", bad);
		rc = FU_PERMFAIL;
		goto done;
	}
	buf_append(out, bytes->data, bytes->len);
	rc = FU_OK;
done:
	if (filtered != NULL)
		g_object_unref(filtered);
	if (mem != NULL)
		g_object_unref(mem);
	g_object_unref(msg);
	return rc;
}

/* The top-level Content-Type boundary parameter, unfolded; 0 when none. */
static int
top_boundary(const char *msg, size_t hlen, char *out, size_t outsz)
{
	const char *p = msg, *end = msg + hlen;

	while (p < end) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		const char *v, *b;
		size_t n = 0;

		if (eol == NULL)
			eol = end;
		if ((size_t)(eol - p) > 13 &&
		    g_ascii_strncasecmp(p, "Content-Type:", 13) == 0) {
			/* the header and its continuation lines */
			while (eol + 2 < end && (eol[2] == ' ' || eol[2] == '\t')) {
				const char *next = memmem(eol + 2,
				    (size_t)(end - eol - 2), "\r\n", 2);

				eol = next ? next : end;
			}
			for (v = p + 13; v < eol && (*v == ' ' || *v == '\t'); v++)
				;
			if ((size_t)(eol - v) < 10 ||
			    g_ascii_strncasecmp(v, "multipart/", 10) != 0)
				return 0;
			for (b = v; b + 9 <= eol; b++)
				if (g_ascii_strncasecmp(b, "boundary=", 9) == 0)
					break;
			if (b + 9 > eol)
				return -1;	/* multipart without a boundary */
			b += 9;
			if (*b == '"')
				for (b++; b < eol && *b != '"' && n + 1 < outsz; b++)
					out[n++] = *b;
			else
				for (; b < eol && *b != ';' && *b != ' ' &&
				    *b != '\r' && n + 1 < outsz; b++)
					out[n++] = *b;
			out[n] = '\0';
			return n > 0 ? 1 : -1;
		}
		p = eol + 2;
	}
	return 0;
}

int
mime_message_complete(const char *msg, size_t len, const char **why)
{
	const char *dummy, *sep;
	char boundary[80], delim[96];
	size_t hlen;
	int r;

	if (why == NULL)
		why = &dummy;
	*why = NULL;
	if (msg == NULL || len == 0) {
		*why = "empty";
		return 0;
	}
	if (memchr(msg, '\0', len) != NULL) {
		*why = "NUL byte in the message";
		return 0;
	}
	if (len < 2 || msg[len - 2] != '\r' || msg[len - 1] != '\n') {
		*why = "does not end with CRLF: cut short";
		return 0;
	}
	if ((sep = memmem(msg, len, "\r\n\r\n", 4)) == NULL) {
		*why = "no end of the header section: cut short or not a message";
		return 0;
	}
	hlen = (size_t)(sep - msg) + 2;
	if ((r = top_boundary(msg, hlen, boundary, sizeof(boundary))) < 0) {
		*why = "multipart without a boundary";
		return 0;
	}
	if (r > 0) {
		int n = snprintf(delim, sizeof(delim), "\r\n--%s--", boundary);

		if (memmem(sep, len - (size_t)(sep - msg), delim, (size_t)n) ==
		    NULL) {
			*why = "no closing MIME boundary: cut short";
			return 0;
		}
	}
	return 1;
}
