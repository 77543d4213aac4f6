/* mime: RFC 5322 / 2045 / 2047 messages written directly; header and address hygiene. */
#include "mime.h"
#include "log.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* RFC 2045 6.7 (5): encoded lines are at most 76 characters. */
#define QP_LINE_MAX		76
/* RFC 2045 6.8: base64 lines of 76 characters carry 57 octets. */
#define B64_LINE_OCTETS		57
/* RFC 2047 2: an encoded word is at most 75 characters... */
#define EW_MAX			75
/* ...and a header line holding one is at most 76. */
#define EW_LINE_MAX		76
/* "=?UTF-8?B?" and "?=" around the base64 text of an encoded word. */
#define EW_OVERHEAD		12
/*
 * 45 octets of UTF-8 are 60 base64 characters: 72 with EW_OVERHEAD, the
 * largest multiple of 4 within EW_MAX.
 */
#define EW_RAW_MAX		45
/*
 * A longer ASCII word is sent as encoded words: those can be split over
 * lines, an atom cannot, and with its header name it would not fit the
 * 78 characters of RFC 5322 2.1.1 anyway.
 */
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
 * of 8-bit bytes base64 is the smaller.
 */
#define BASE64_8BIT_PERCENT	17
/* "=_" + 16 hex digits + "_" + a letter for the level (see boundary_make). */
#define BOUNDARY_LEN		20

static const char utf8_replacement[] = "\xef\xbf\xbd";	/* U+FFFD */
static const char utf8_ellipsis[] = "\xe2\x80\xa6";	/* U+2026 … */
static const char hexdigits[] = "0123456789ABCDEF";
static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/*
 * Eight octets at a time (bit tricks on a 64-bit word, as in "Bit
 * Twiddling Hacks"): each test is exact for "some octet is ...".
 */
#define SWAR_ONES	0x0101010101010101ULL
#define SWAR_HIGHS	0x8080808080808080ULL

static uint64_t
swar_load(const void *p)
{
	uint64_t w;

	memcpy(&w, p, sizeof(w));
	return w;
}

/* 1 when every octet of w is printable ASCII, space included (0x20-0x7e). */
static int
swar_printable(uint64_t w)
{
	return ((((w - SWAR_ONES * 0x20) & ~w) | ((w + SWAR_ONES) | w)) &
	    SWAR_HIGHS) == 0;
}

/* 1 when every octet of w is printable ASCII or space, but '=' (QP keeps those). */
static int
swar_qp_plain(uint64_t w)
{
	uint64_t eq = w ^ (SWAR_ONES * '=');

	return ((((w - SWAR_ONES * 0x20) & ~w) | ((w + SWAR_ONES) | w) |
	    ((eq - SWAR_ONES) & ~eq)) & SWAR_HIGHS) == 0;
}

/* ASCII-only case folding: the C library's follows the locale. */
static int
ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int
ascii_ncasecmp(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int d = ascii_lower((unsigned char)a[i]) -
		    ascii_lower((unsigned char)b[i]);

		if (d != 0 || a[i] == '\0')
			return d;
	}
	return 0;
}

static int
ascii_casecmp(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);

	return na != nb ? 1 : ascii_ncasecmp(a, b, na);
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

/* Characters that could end or split a line somewhere down the road. */
static int
phrase_is_space(long cp)
{
	return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) ||
	    cp == 0x2028 || cp == 0x2029 || cp == ' ';
}

/*
 * mime_clean_phrase appending to b. Written straight into reserved room:
 * a kept character is at most 4 octets (U+FFFD is 3 for one invalid
 * octet), there are at most min(len, max) of them, and a cut only
 * shortens before the 3 octets of the ellipsis.
 */
static void
clean_phrase(struct buf *b, const char *in, size_t len, size_t max)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, adv, nchars = 0;
	char *o, *start, *mark;
	int space = 0, cut = 0;
	long cp;

	buf_reserve(b, 4 * (len < max ? len : max) + sizeof(utf8_ellipsis));
	start = mark = o = b->data + b->len;
	while (s != NULL && i < len) {
		/* printable ASCII, no space pending, far from the limit */
		if (s[i] > 0x20 && s[i] < 0x7f && !space && nchars + 2 < max) {
			*o++ = (char)s[i++];
			nchars++;
			continue;
		}
		if (s[i] < 0x80) {
			cp = s[i];
			adv = 1;
		} else
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
			*o++ = ' ';
			if (++nchars + 1 == max)
				mark = o;
			space = 0;
		}
		if (cp == -1) {
			memcpy(o, utf8_replacement, 3);
			o += 3;
		} else if (adv == 1)
			*o++ = (char)cp;
		else {
			memcpy(o, s + i - adv, adv);	/* valid: as it was */
			o += adv;
		}
		if (++nchars + 1 == max)
			mark = o;
	}
	if (cut && max > 0) {
		/* keep max - 1 characters and the ellipsis */
		o = max > 1 ? mark : start;
		while (o > start && o[-1] == ' ')
			o--;
		memcpy(o, utf8_ellipsis, 3);
		o += 3;
	}
	b->len = (size_t)(o - b->data);
	b->data[b->len] = '\0';
}

char *
mime_clean_phrase(const char *in, size_t len, size_t max)
{
	struct buf b = { 0 };

	clean_phrase(&b, in, len, max);
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

/* --- Punycode (RFC 3492), to check xn-- labels ----------------------- */

#define PY_BASE		36
#define PY_TMIN		1
#define PY_TMAX		26
#define PY_SKEW		38
#define PY_DAMP		700
#define PY_BIAS		72
#define PY_N		128

/* RFC 3492 6.1 */
static uint32_t
py_adapt(uint32_t delta, uint32_t npoints, int first)
{
	uint32_t k = 0;

	delta = first ? delta / PY_DAMP : delta / 2;
	delta += delta / npoints;
	while (delta > ((PY_BASE - PY_TMIN) * PY_TMAX) / 2) {
		delta /= PY_BASE - PY_TMIN;
		k += PY_BASE;
	}
	return k + (PY_BASE - PY_TMIN + 1) * delta / (delta + PY_SKEW);
}

static uint32_t
py_threshold(uint32_t k, uint32_t bias)
{
	return k <= bias ? PY_TMIN : k >= bias + PY_TMAX ? PY_TMAX : k - bias;
}

/* A digit's value (either case), or -1. */
static int
py_digit(unsigned char c)
{
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= '0' && c <= '9')
		return c - '0' + 26;
	return -1;
}

/*
 * RFC 3492 6.2: s[0..n) to at most `max` code points in out; the count,
 * or -1 (bad digit, overflow, too long, a surrogate or > U+10FFFF).
 * *nbasic is the number of basic (ASCII) code points copied first.
 */
static int
py_decode(const char *s, size_t n, uint32_t *out, size_t max, size_t *nbasic)
{
	uint32_t cp = PY_N, i = 0, bias = PY_BIAS;
	size_t b = 0, in, len = 0;

	for (size_t j = 0; j < n; j++)
		if (s[j] == '-')
			b = j;
	if (b > max)
		return -1;
	for (len = 0; len < b; len++)
		out[len] = (unsigned char)s[len];
	*nbasic = b;
	for (in = b > 0 ? b + 1 : 0; in < n;) {
		uint32_t oldi = i, w = 1, t;

		for (uint32_t k = PY_BASE;; k += PY_BASE) {
			int d;

			if (in >= n || (d = py_digit((unsigned char)s[in++])) < 0)
				return -1;
			if ((uint32_t)d > (UINT32_MAX - i) / w)
				return -1;
			i += (uint32_t)d * w;
			t = py_threshold(k, bias);
			if ((uint32_t)d < t)
				break;
			if (w > UINT32_MAX / (PY_BASE - t))
				return -1;
			w *= PY_BASE - t;
		}
		bias = py_adapt(i - oldi, (uint32_t)len + 1, oldi == 0);
		if (i / (len + 1) > 0x10ffff - cp)
			return -1;
		cp += i / (uint32_t)(len + 1);
		i %= (uint32_t)(len + 1);
		if (cp >= 0xd800 && cp <= 0xdfff)
			return -1;
		if (len >= max)
			return -1;
		memmove(out + i + 1, out + i, (len - i) * sizeof(*out));
		out[i++] = cp;
		len++;
	}
	return (int)len;
}

static char
py_char(uint32_t d)
{
	return (char)(d < 26 ? 'a' + d : '0' + d - 26);
}

/* RFC 3492 6.3: in[0..len) to out (at most max octets); length or -1. */
static int
py_encode(const uint32_t *in, size_t len, char *out, size_t max)
{
	uint32_t n = PY_N, delta = 0, bias = PY_BIAS, h, b, m, q, t;
	size_t o = 0;

#define PY_PUT(c) do { if (o >= max) return -1; out[o++] = (c); } while (0)
	for (size_t j = 0; j < len; j++)
		if (in[j] < 0x80)
			PY_PUT((char)in[j]);
	h = b = (uint32_t)o;
	if (b > 0)
		PY_PUT('-');
	while (h < len) {
		m = UINT32_MAX;
		for (size_t j = 0; j < len; j++)
			if (in[j] >= n && in[j] < m)
				m = in[j];
		if (m - n > (UINT32_MAX - delta) / (h + 1))
			return -1;
		delta += (m - n) * (h + 1);
		n = m;
		for (size_t j = 0; j < len; j++) {
			if (in[j] < n && ++delta == 0)
				return -1;
			if (in[j] != n)
				continue;
			q = delta;
			for (uint32_t k = PY_BASE;; k += PY_BASE) {
				t = py_threshold(k, bias);
				if (q < t)
					break;
				PY_PUT(py_char(t + (q - t) % (PY_BASE - t)));
				q = (q - t) / (PY_BASE - t);
			}
			PY_PUT(py_char(q));
			bias = py_adapt(delta, h + 1, h == b);
			delta = 0;
			h++;
		}
		delta++;
		n++;
	}
#undef PY_PUT
	return (int)o;
}

/*
 * Code points RFC 5892 never lets into a U-label, without its tables (a
 * subset): C1 controls, Latin-1 symbols (U+00B7 is CONTEXTO) and upper
 * case, spaces, punctuation and format characters (ZWNJ and ZWJ are
 * CONTEXTJ), variation selectors, non-characters, private use, tags,
 * emoji and other pictographs.
 */
static int
u_label_cp_bad(uint32_t c)
{
	return (c >= 0x80 && c <= 0xbf && c != 0xb7) ||
	    (c >= 0xc0 && c <= 0xde) || c == 0xf7 ||
	    (c >= 0x2000 && c <= 0x206f && c != 0x200c && c != 0x200d) ||
	    c == 0x1680 || c == 0x3000 || c == 0xfeff ||
	    (c >= 0xfe00 && c <= 0xfe0f) || (c >= 0xfdd0 && c <= 0xfdef) ||
	    (c & 0xfffe) == 0xfffe || (c >= 0xfff0 && c <= 0xffff) ||
	    (c >= 0xe000 && c <= 0xf8ff) || (c >= 0x1f000 && c <= 0x1faff) ||
	    (c >= 0xe0000 && c <= 0xe0fff) || c >= 0xf0000;
}

/*
 * An "xn--" label (LDH already checked) is a real A-label (RFC 5890
 * 2.3.2.1): valid Punycode (RFC 3492), decoding to at least one
 * non-ASCII code point, to no upper-case ASCII letter and nothing
 * u_label_cp_bad refuses, and encoding back to the same label (the
 * digits' case aside). GMime used to turn such a label (a@xn--a.example:
 * U+0080) into another, 8-bit address; we write addresses as they are,
 * but a domain that cannot exist is better refused here than bounced.
 */
static int
a_label_ok(const char *label, size_t n)
{
	uint32_t u[LABEL_MAX];
	char back[LABEL_MAX + 1];
	size_t nbasic;
	int len, blen;

	if (n <= 4 || (len = py_decode(label + 4, n - 4, u, LABEL_MAX,
	    &nbasic)) < 0 || (size_t)len == nbasic)
		return 0;
	for (size_t j = 0; j < (size_t)len; j++)
		if ((u[j] >= 'A' && u[j] <= 'Z') || u_label_cp_bad(u[j]))
			return 0;
	blen = py_encode(u, (size_t)len, back, sizeof(back));
	return blen >= 0 && (size_t)blen == n - 4 &&
	    ascii_ncasecmp(back, label + 4, n - 4) == 0;
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
		if (ln >= 4 && ascii_ncasecmp(label, "xn--", 4) == 0 &&
		    !a_label_ok(label, ln)) {
			*why = "invalid IDN label (xn-- that is not valid "
			    "Punycode)";
			return 0;
		}
		if (end == NULL)
			break;
		label = end;
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

/* --- header writer --------------------------------------------------- */

/*
 * One header field being written into the message: "Name:" then tokens,
 * each after a space, or after CRLF and a space (a fold, RFC 5322 2.2.3)
 * when it would run past HEADER_FOLD_AT, or EW_LINE_MAX on a line that
 * holds an encoded word. A token longer than a line gets one of its own;
 * no token is longer than HEADER_VALUE_MAX, so no line passes
 * MIME_LINE_MAX. Values are cleaned before (no CR, LF or control
 * character can reach a token).
 */
struct hdr {
	struct buf	*b;
	size_t		 col;	/* octets on the current line */
	int		 ew;	/* the current line holds an encoded word */
	int		 first;	/* nothing written after "Name:" yet */
};

static void
hdr_begin(struct hdr *h, struct buf *b, const char *name)
{
	size_t n = strlen(name);

	h->b = b;
	buf_reserve(b, n + 1);
	memcpy(b->data + b->len, name, n);
	b->data[b->len + n] = ':';
	b->len += n + 1;
	b->data[b->len] = '\0';
	h->col = n + 1;
	h->ew = 0;
	h->first = 1;
}

/* The white space before a token of n octets, folding when it must. */
static void
hdr_space(struct hdr *h, size_t n, size_t lim)
{
	if (!h->first && h->col + 1 + n > lim) {
		buf_append(h->b, "\r\n ", 3);
		h->col = 1;
		h->ew = 0;
	} else {
		buf_append(h->b, " ", 1);
		h->col++;
	}
	h->first = 0;
}

static void
hdr_word(struct hdr *h, const char *s, size_t n)
{
	hdr_space(h, n, h->ew ? EW_LINE_MAX : HEADER_FOLD_AT);
	buf_append(h->b, s, n);
	h->col += n;
}

static void
hdr_end(struct hdr *h)
{
	buf_append(h->b, "\r\n", 2);
}

/* Base64 (RFC 4648 4) of in[0..n) at out; returns the length written. */
static size_t
b64_encode(const unsigned char *in, size_t n, char *out)
{
	char *o = out;

	for (; n >= 3; in += 3, n -= 3) {
		*o++ = b64chars[in[0] >> 2];
		*o++ = b64chars[((in[0] & 3) << 4) | (in[1] >> 4)];
		*o++ = b64chars[((in[1] & 15) << 2) | (in[2] >> 6)];
		*o++ = b64chars[in[2] & 63];
	}
	if (n > 0) {
		*o++ = b64chars[in[0] >> 2];
		if (n == 1) {
			*o++ = b64chars[(in[0] & 3) << 4];
			*o++ = '=';
		} else {
			*o++ = b64chars[((in[0] & 3) << 4) | (in[1] >> 4)];
			*o++ = b64chars[(in[1] & 15) << 2];
		}
		*o++ = '=';
	}
	return (size_t)(o - out);
}

/* Octets in the UTF-8 sequence that starts with c (valid input). */
static size_t
utf8_len(unsigned char c)
{
	return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/*
 * s[0..n) (n > 0, valid UTF-8) as UTF-8 "B" encoded words (RFC 2047 4.1;
 * B is safe in a phrase too, 5 (3)). Each word is at most EW_MAX
 * characters, holds whole characters only (RFC 2047 5: never a split
 * sequence) and fills the room left on its line; the spaces of s are
 * encoded, since readers drop the white space between two encoded words
 * (RFC 2047 6.2).
 */
static void
hdr_encoded(struct hdr *h, const char *s, size_t n)
{
	while (n > 0) {
		size_t one = utf8_len((unsigned char)s[0]), room, take;
		struct buf *b = h->b;

		/* fold first when not even one character fits here */
		hdr_space(h, EW_OVERHEAD + (one + 2) / 3 * 4, EW_LINE_MAX);
		room = h->col < EW_LINE_MAX ? EW_LINE_MAX - h->col : 0;
		take = room > EW_OVERHEAD ? (room - EW_OVERHEAD) / 4 * 3 : 0;
		if (take > EW_RAW_MAX)
			take = EW_RAW_MAX;
		if (take >= n)
			take = n;
		else
			while (take > 0 && ((unsigned char)s[take] & 0xc0) == 0x80)
				take--;
		if (take == 0)
			take = one;	/* after a long name: the line runs over */
		buf_reserve(b, EW_OVERHEAD + (take + 2) / 3 * 4);
		memcpy(b->data + b->len, "=?UTF-8?B?", 10);
		b->len += 10;
		b->len += b64_encode((const unsigned char *)s, take,
		    b->data + b->len);
		memcpy(b->data + b->len, "?=", 3);	/* and the NUL */
		b->len += 2;
		h->col += EW_OVERHEAD + (take + 2) / 3 * 4;
		h->ew = 1;
		s += take;
		n -= take;
	}
}

/*
 * A word that cannot go out as it is: 8-bit, an encoded-word look-alike
 * (a reader would decode text we never cleaned: CR, LF, addresses), or
 * too long to fold.
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

/* The length of the word at p (up to the next space or end). */
static size_t
word_len(const char *p, const char *end)
{
	const char *sp = memchr(p, ' ', (size_t)(end - p));

	return sp ? (size_t)(sp - p) : (size_t)(end - p);
}

/* Past the word of n octets at p and the space after it, if any. */
static const char *
word_next(const char *p, size_t n, const char *end)
{
	return p + n < end ? p + n + 1 : end;
}

/*
 * Unstructured text (RFC 5322 3.2.5; Subject, an 8-bit extra header),
 * cleaned (single spaces, no controls): runs of words that need it become
 * encoded words (the spaces inside a run with them), other words go as
 * they are.
 */
static void
hdr_text(struct hdr *h, const char *v, size_t len)
{
	const char *p = v, *end = v + len, *run = NULL, *run_end = NULL;

	while (p < end) {
		size_t n = word_len(p, end);

		if (word_needs_encoding(p, n)) {
			if (run == NULL)
				run = p;
			run_end = p + n;
		} else {
			if (run != NULL) {
				hdr_encoded(h, run, (size_t)(run_end - run));
				run = NULL;
			}
			hdr_word(h, p, n);
		}
		p = word_next(p, n, end);
	}
	if (run != NULL)
		hdr_encoded(h, run, (size_t)(run_end - run));
}

/*
 * A cleaned display name (RFC 5322 3.2.5 phrase): atoms when it is all
 * atext, else one quoted string (3.2.4; '"' and '\' as quoted-pairs),
 * else, when a word needs encoding, encoded words for the whole name: an
 * encoded word inside a quoted string is not decoded (RFC 2047 5 (3)),
 * and one name mixing the two is more than readers agree on.
 */
static void
hdr_phrase(struct hdr *h, const char *v, size_t len)
{
	const char *p, *end = v + len;
	int atoms = 1;

	for (p = v; p < end;) {
		size_t n = word_len(p, end);

		if (word_needs_encoding(p, n)) {
			hdr_encoded(h, v, len);
			return;
		}
		for (size_t i = 0; i < n && atoms; i++)
			atoms = is_atext((unsigned char)p[i]);
		p = word_next(p, n, end);
	}
	for (p = v; p < end;) {
		size_t n = word_len(p, end), q = 0, k;
		char *o;

		if (atoms) {
			hdr_word(h, p, n);
			p = word_next(p, n, end);
			continue;
		}
		/* quoted: the spaces inside are folding white space (3.2.4) */
		for (k = 0; k < n; k++)
			q += p[k] == '"' || p[k] == '\\';
		q += n + (p == v) + (p + n == end);
		hdr_space(h, q, h->ew ? EW_LINE_MAX : HEADER_FOLD_AT);
		buf_reserve(h->b, q);
		o = h->b->data + h->b->len;
		if (p == v)
			*o++ = '"';
		for (k = 0; k < n; k++) {
			if (p[k] == '"' || p[k] == '\\')
				*o++ = '\\';
			*o++ = p[k];
		}
		if (p + n == end)
			*o++ = '"';
		h->b->len += q;
		h->b->data[h->b->len] = '\0';
		h->col += q;
		p = word_next(p, n, end);
	}
}

/* "Name: display name <addr>" or "Name: addr"; name = clean[0..nlen). */
static void
hdr_mailbox(struct buf *out, const char *field, const char *name,
    size_t nlen, const char *addr)
{
	char angle[MIME_ADDRESS_MAX + 3];
	size_t n = strlen(addr);
	struct hdr h;

	hdr_begin(&h, out, field);
	if (nlen == 0)
		hdr_word(&h, addr, n);
	else {
		hdr_phrase(&h, name, nlen);
		angle[0] = '<';
		memcpy(angle + 1, addr, n);
		angle[n + 1] = '>';
		hdr_word(&h, angle, n + 2);
	}
	hdr_end(&h);
}

/* --- input checks ---------------------------------------------------- */

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
		if (ascii_casecmp(name, ours[i]) == 0)
			return 0;
	return ascii_ncasecmp(name, "Content-", 8) != 0 &&
	    ascii_ncasecmp(name, "Resent-", 7) != 0;
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
 * 1 when the display part of a config mailbox, s[0..n), is an RFC 5322
 * phrase (3.2.5, with obs-phrase's "."): atoms (UTF-8 allowed, RFC 6532
 * 3.2) and well-formed quoted strings. Its text is then written to out
 * without the quotes and with quoted-pairs undone.
 */
static int
phrase_unquote(const char *s, size_t n, struct buf *out)
{
	size_t i, start = out->len;
	int quoted = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (quoted) {
			if (c == '"')
				quoted = 0;
			else {
				if (c == '\\' && ++i == n)
					break;
				buf_putc(out, s[i]);
			}
		} else if (c == '"')
			quoted = 1;
		else if (is_atext(c) || c == '.' || c == ' ' || c == '\t' ||
		    c >= 0x80)
			buf_putc(out, (char)c);
		else
			break;
	}
	if (i < n || quoted) {
		if (out->data != NULL) {
			out->len = start;
			out->data[start] = '\0';
		}
		return 0;
	}
	return 1;
}

/*
 * "Name <addr>", "\"Name\" <addr>" or "addr" from the config (config.c
 * has checked its shape). The address is copied to addr (checked with
 * mime_address_ok); the display name, unquoted when it is a phrase and
 * taken as it is otherwise (config.c lets "Acme, Inc. <a@b>" through),
 * is cleaned like any other phrase and appended to name.
 */
static int
parse_mailbox(const char *what, const char *in, struct buf *name,
    char addr[MIME_ADDRESS_MAX + 1], char **err)
{
	const char *s = in, *e, *lt, *a, *why;
	struct buf raw = { 0 };
	size_t alen;

	if (in == NULL) {
		set_err(err, "mime: %s address missing", what);
		return FU_PERMFAIL;
	}
	e = s + strlen(s);
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	a = s;
	alen = (size_t)(e - s);
	if (e > s && e[-1] == '>') {
		if ((lt = memrchr(s, '<', (size_t)(e - s))) == NULL) {
			set_err(err, "mime: %s: '>' without '<'", what);
			return FU_PERMFAIL;
		}
		a = lt + 1;
		alen = (size_t)(e - 1 - a);
		e = lt;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (!phrase_unquote(s, (size_t)(e - s), &raw))
			buf_append(&raw, s, (size_t)(e - s));
		clean_phrase(name, raw.data, raw.len, MIME_PHRASE_MAX);
		buf_free(&raw);
	}
	if (alen > MIME_ADDRESS_MAX) {
		set_err(err, "mime: %s address: address longer than 254 "
		    "characters", what);
		return FU_PERMFAIL;
	}
	memcpy(addr, a, alen);
	addr[alen] = '\0';
	if (!mime_address_ok(addr, &why)) {
		set_err(err, "mime: %s address: %s", what, why);
		return FU_PERMFAIL;
	}
	return FU_OK;
}

/*
 * One pass over a body: its length, whether it is UTF-8 (0 when not),
 * its 8-bit octets. ASCII goes eight octets at a time.
 */
static int
body_scan(const char *body, size_t *len, size_t *n8bit)
{
	const unsigned char *s = (const unsigned char *)body;
	size_t n = strlen(body), i = 0, adv, eight = 0;

	while (i < n) {
		if (n - i >= 32 && ((swar_load(s + i) | swar_load(s + i + 8) |
		    swar_load(s + i + 16) | swar_load(s + i + 24)) &
		    SWAR_HIGHS) == 0) {
			i += 32;
			continue;
		}
		if (n - i >= 8 && (swar_load(s + i) & SWAR_HIGHS) == 0) {
			i += 8;
			continue;
		}
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if (utf8_decode(s + i, n - i, &adv) == -1)
			return 0;
		i += adv;
		eight += adv;
	}
	*len = n;
	*n8bit = eight;
	return 1;
}

/* Octets once every line break (CRLF, LF, lone CR) is CRLF. */
static size_t
canon_len(const char *s, size_t n)
{
	size_t c = n;

	for (size_t i = 0; i < n; i++)
		if ((s[i] == '\r' && (i + 1 == n || s[i + 1] != '\n')) ||
		    (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')))
			c++;
	return c;
}

/* --- body encoders --------------------------------------------------- */

/* Printable ASCII but '=': what quoted-printable keeps (RFC 2045 6.7 (2)). */
#define QP_PLAIN(c)	((c) >= 33 && (c) <= 126 && (c) != '=')
#define QP_WS(c)	((c) == ' ' || (c) == '\t')
#define IS_EOL(c)	((c) == '\r' || (c) == '\n')

/*
 * Worst case of qp_encode: 3 characters per octet, and a soft break at
 * most every 73 characters, so every 25 octets (3/25 < 1/8).
 */
static size_t
qp_bound(size_t n)
{
	return 3 * n + n / 8 + 8;
}

/*
 * Quoted-printable (RFC 2045 6.7) of UTF-8 text, every line break (CRLF,
 * LF, lone CR: RFC 2046 4.1.1) written as CRLF; out has qp_bound(n)
 * octets of room. Runs of plain octets are copied whole. A line is at
 * most QP_LINE_MAX characters: 75 and a soft break "=", or 76 when the
 * 76th is the last before a hard break. White space before a line break
 * or at the very end is encoded (rule 3), so is "=" and every octet
 * outside 33..126. At the start of a line "." (a transport that forgets
 * dot stuffing) and the "F" of "From " (mbox) are encoded to survive
 * both. A body that does not end with a line break ends with a soft one:
 * the part still ends with CRLF and decodes to the input exactly (GMime
 * added a line break there).
 */
static size_t
qp_encode(const char *in, size_t n, char *out)
{
	const unsigned char *p = (const unsigned char *)in, *end = p + n;
	char *o = out;
	size_t col = 0;

	while (p < end) {
		unsigned char c = *p;
		/* the last octet before a hard break may take column 76 */
		int last = p + 1 < end && IS_EOL(p[1]);

		if (IS_EOL(c)) {
			*o++ = '\r';
			*o++ = '\n';
			col = 0;
			p += c == '\r' && p + 1 < end && p[1] == '\n' ? 2 : 1;
			continue;
		}
		if (col >= QP_LINE_MAX - 1) {
			if (last && QP_PLAIN(c)) {
				*o++ = (char)c;
				p++;
				col++;
				continue;
			}
			memcpy(o, "=\r\n", 3);
			o += 3;
			col = 0;
		}
		if ((QP_PLAIN(c) || QP_WS(c)) && !(col == 0 && (c == '.' ||
		    (c == 'F' && end - p >= 5 && memcmp(p, "From ", 5) == 0)))) {
			const unsigned char *q = p + 1, *lim;
			size_t k;

			lim = (size_t)(end - p) > QP_LINE_MAX - 1 - col ?
			    p + (QP_LINE_MAX - 1 - col) : end;
			while (lim - q >= 8 && swar_qp_plain(swar_load(q)))
				q += 8;
			while (q < lim && (QP_PLAIN(*q) || QP_WS(*q)))
				q++;
			/* white space before a line break or the end */
			if ((q == end || IS_EOL(*q)) && QP_WS(q[-1]))
				q--;
			if ((k = (size_t)(q - p)) > 0) {
				memcpy(o, p, k);
				o += k;
				col += k;
				p = q;
				continue;
			}
		}
		if (col + 3 > QP_LINE_MAX - 1 && !(last && col + 3 <= QP_LINE_MAX)) {
			memcpy(o, "=\r\n", 3);
			o += 3;
			col = 0;
		}
		*o++ = '=';
		*o++ = hexdigits[c >> 4];
		*o++ = hexdigits[c & 15];
		col += 3;
		p++;
	}
	if (n > 0 && !IS_EOL(end[-1])) {
		memcpy(o, "=\r\n", 3);
		o += 3;
	}
	return (size_t)(o - out);
}

/*
 * Base64 (RFC 2045 6.8) of the text with CRLF line breaks, in lines of
 * 76 characters, each ending with CRLF.
 */
static void
b64_body(const char *s, size_t n, struct buf *out)
{
	struct buf canon = { 0 };
	const unsigned char *p;
	char *o;

	if (canon_len(s, n) != n) {
		buf_reserve(&canon, 2 * n);
		for (size_t i = 0; i < n; i++) {
			if (s[i] == '\r' || s[i] == '\n') {
				canon.data[canon.len++] = '\r';
				canon.data[canon.len++] = '\n';
				if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
					i++;
			} else
				canon.data[canon.len++] = s[i];
		}
		s = canon.data;
		n = canon.len;
	}
	/* 4 characters per 3 octets and CRLF, per line */
	buf_reserve(out, (n / B64_LINE_OCTETS + 1) * (B64_LINE_OCTETS / 3 * 4 +
	    2));
	o = out->data + out->len;
	for (p = (const unsigned char *)s; n > 0;) {
		size_t k = n < B64_LINE_OCTETS ? n : B64_LINE_OCTETS;

		o += b64_encode(p, k, o);
		*o++ = '\r';
		*o++ = '\n';
		p += k;
		n -= k;
	}
	out->len = (size_t)(o - out->data);
	out->data[out->len] = '\0';
	buf_free(&canon);
}

struct body {
	const char	*s;
	size_t		 len;
	size_t		 n8bit;
};

static int
body_base64(const struct body *b)
{
	/* canon_len only when the cheaper bound does not decide */
	return b->n8bit * 100 > b->len * BASE64_8BIT_PERCENT &&
	    b->n8bit * 100 > canon_len(b->s, b->len) * BASE64_8BIT_PERCENT;
}

/*
 * A text part's Content-Type and Content-Transfer-Encoding lines, the
 * empty line, and the encoded body (the top level of a text-only message
 * writes the same lines among its headers).
 */
static void
text_part(struct buf *out, const char *subtype, const struct body *b,
    const char *method)
{
	int b64 = body_base64(b);

	if (method != NULL) {
		buf_append(out, "Content-Type: text/calendar; method=", 36);
		buf_puts(out, method);
		buf_append(out, "; charset=UTF-8\r\n", 17);
	} else {
		buf_append(out, "Content-Type: text/", 19);
		buf_puts(out, subtype);
		buf_append(out, "; charset=utf-8\r\n", 17);
	}
	if (b64) {
		buf_puts(out, "Content-Transfer-Encoding: base64\r\n\r\n");
		b64_body(b->s, b->len, out);
	} else {
		buf_puts(out, "Content-Transfer-Encoding: quoted-printable\r\n"
		    "\r\n");
		buf_reserve(out, qp_bound(b->len));
		out->len += qp_encode(b->s, b->len, out->data + out->len);
		out->data[out->len] = '\0';
	}
}

/*
 * The boundary of a multipart level ('a' alternative, 'm' mixed): "=_",
 * 16 hex digits of a hash of the Message-ID, "_", the level. It can never
 * occur in a part: every part is quoted-printable, where "=" is followed
 * by a hex digit or a line break only, or base64, which has no "_"; our
 * part headers have no "=_" either. The two levels' boundaries have the
 * same length, so neither delimiter line starts with the other. Derived,
 * not random, so one spec always gives the same bytes.
 */
static void
boundary_make(const char *message_id, char level, char out[BOUNDARY_LEN + 1])
{
	uint64_t h = 0xcbf29ce484222325ULL;	/* FNV-1a 64 */

	for (const unsigned char *p = (const unsigned char *)message_id; *p;
	    p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	/* and a SplitMix64 finaliser, so similar ids look unrelated */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	out[0] = '=';
	out[1] = '_';
	for (int i = 0; i < 16; i++)
		out[2 + i] = "0123456789abcdef"[(h >> (60 - 4 * i)) & 15];
	out[18] = '_';
	out[19] = level;
	out[20] = '\0';
}

static void
multipart_begin(struct buf *out, const char *subtype, const char *boundary)
{
	buf_append(out, "Content-Type: multipart/", 24);
	buf_puts(out, subtype);
	buf_append(out, "; boundary=\"", 12);
	buf_append(out, boundary, BOUNDARY_LEN);
	buf_append(out, "\"\r\n\r\n--", 7);
	buf_append(out, boundary, BOUNDARY_LEN);
	buf_append(out, "\r\n", 2);
}

/* The CRLF before a delimiter belongs to it (RFC 2046 5.1.1). */
static void
multipart_next(struct buf *out, const char *boundary, int close)
{
	buf_append(out, "\r\n--", 4);
	buf_append(out, boundary, BOUNDARY_LEN);
	buf_append(out, close ? "--\r\n" : "\r\n", close ? 4 : 2);
}

/* RFC 5322 3.3 date-time in UTC; 0 when the year is not 1900-9999. */
static int
date_format(time_t t, char out[32])
{
	static const char days[] = "SunMonTueWedThuFriSat";
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	struct tm tm;
	int y;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year < 0 ||
	    tm.tm_year > 9999 - 1900)
		return 0;
	y = tm.tm_year + 1900;
	memcpy(out, days + 3 * tm.tm_wday, 3);
	out[3] = ',';
	out[4] = ' ';
	out[5] = (char)('0' + tm.tm_mday / 10);
	out[6] = (char)('0' + tm.tm_mday % 10);
	out[7] = ' ';
	memcpy(out + 8, months + 3 * tm.tm_mon, 3);
	out[11] = ' ';
	out[12] = (char)('0' + y / 1000);
	out[13] = (char)('0' + y / 100 % 10);
	out[14] = (char)('0' + y / 10 % 10);
	out[15] = (char)('0' + y % 10);
	out[16] = ' ';
	out[17] = (char)('0' + tm.tm_hour / 10);
	out[18] = (char)('0' + tm.tm_hour % 10);
	out[19] = ':';
	out[20] = (char)('0' + tm.tm_min / 10);
	out[21] = (char)('0' + tm.tm_min % 10);
	out[22] = ':';
	/* a leap second (60) is what gmtime says it is */
	out[23] = (char)('0' + tm.tm_sec / 10);
	out[24] = (char)('0' + tm.tm_sec % 10);
	memcpy(out + 25, " +0000", 7);
	return 1;
}

/*
 * Last line of defence for the header section, the one part built from
 * untrusted values: 7-bit, CRLF only, no NUL, no line longer than
 * MIME_LINE_MAX. Bodies need no such pass: the encoders above cannot
 * write anything else.
 */
static const char *
header_check(const unsigned char *p, size_t n)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		if (n - i >= 8 && swar_printable(swar_load(p + i))) {
			if ((col += 8) > MIME_LINE_MAX)
				return "line longer than 998 octets";
			i += 7;
			continue;
		}
		if (p[i] == '\r') {
			if (i + 1 >= n || p[i + 1] != '\n')
				return "bare CR";
			i++;
			col = 0;
			continue;
		}
		if (p[i] == '\n')
			return "bare LF";
		if (p[i] == '\0')
			return "NUL byte";
		if (p[i] >= 0x80)
			return "8-bit header";
		if (++col > MIME_LINE_MAX)
			return "line longer than 998 octets";
	}
	return NULL;
}

static int
spec_check(const struct mime_spec *spec, struct body *text,
    struct body *html, struct body *ics, char **err)
{
	const char *why;

	if (spec->text == NULL) {
		set_err(err, "mime: text body missing");
		return FU_PERMFAIL;
	}
	text->s = spec->text;
	if (!body_scan(spec->text, &text->len, &text->n8bit)) {
		set_err(err, "mime: text body is not valid UTF-8");
		return FU_PERMFAIL;
	}
	html->s = spec->html;
	if (spec->html != NULL && !body_scan(spec->html, &html->len,
	    &html->n8bit)) {
		set_err(err, "mime: HTML body is not valid UTF-8");
		return FU_PERMFAIL;
	}
	if (spec->calendar != NULL) {
		if (spec->calendar->ics == NULL) {
			set_err(err, "mime: calendar part without text");
			return FU_PERMFAIL;
		}
		ics->s = spec->calendar->ics;
		if (!body_scan(spec->calendar->ics, &ics->len, &ics->n8bit)) {
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

/*
 * Extra headers: an ASCII value goes verbatim (cleaned), folded at its
 * spaces, so structured values such as List-Unsubscribe URLs survive
 * byte for byte; its longest word is HEADER_VALUE_MAX octets, so a line
 * stays under MIME_LINE_MAX. A non-ASCII value is unstructured text in
 * encoded words.
 */
static void
extra_header(struct buf *out, struct buf *sc, const char *name,
    const char *value)
{
	const char *p, *end;
	struct hdr h;
	int ascii = 1;

	buf_reset(sc);
	clean_phrase(sc, value, strlen(value), HEADER_VALUE_MAX);
	end = sc->data + sc->len;
	for (p = sc->data; p < end && ascii; p++)
		ascii = (unsigned char)*p < 0x80;
	hdr_begin(&h, out, name);
	if (!ascii)
		hdr_text(&h, sc->data, sc->len);
	else
		for (p = sc->data; p < end;) {
			size_t n = word_len(p, end);

			hdr_word(&h, p, n);
			p = word_next(p, n, end);
		}
	hdr_end(&h);
}

int
mime_build(const struct mime_spec *spec, struct buf *out, char **err)
{
	struct body text = { 0 }, html = { 0 }, ics = { 0 };
	struct buf names = { 0 }, sc = { 0 };
	char from_addr[MIME_ADDRESS_MAX + 1], reply_addr[MIME_ADDRESS_MAX + 1];
	char date[32], alt[BOUNDARY_LEN + 1], mixed[BOUNDARY_LEN + 1];
	size_t start, from_nlen, reply_nlen = 0;
	const char *bad;
	struct hdr h;
	int rc;

	if (spec == NULL || out == NULL) {
		set_err(err, "mime: no message");
		return FU_PERMFAIL;
	}
	/* everything that can fail, before a byte is written */
	if ((rc = spec_check(spec, &text, &html, &ics, err)) != FU_OK)
		return rc;
	if (!date_format(spec->date, date)) {
		set_err(err, "mime: date out of range");
		return FU_PERMFAIL;
	}
	if ((rc = parse_mailbox("From", spec->from, &names, from_addr,
	    err)) != FU_OK)
		goto done;
	from_nlen = names.len;
	if (spec->reply_to != NULL) {
		if ((rc = parse_mailbox("Reply-To", spec->reply_to, &names,
		    reply_addr, err)) != FU_OK)
			goto done;
		reply_nlen = names.len - from_nlen;
	}

	start = out->len;
	buf_reserve(out, 1024);
	buf_append(out, "Date: ", 6);
	buf_append(out, date, 31);
	buf_append(out, "\r\nMessage-ID: <", 15);
	buf_puts(out, spec->message_id);
	buf_append(out, ">\r\n", 3);
	hdr_mailbox(out, "From", names.data, from_nlen, from_addr);
	if (spec->to_name != NULL)
		clean_phrase(&sc, spec->to_name, strlen(spec->to_name),
		    MIME_PHRASE_MAX);
	hdr_mailbox(out, "To", sc.data, sc.len, spec->to_addr);
	if (spec->reply_to != NULL)
		hdr_mailbox(out, "Reply-To", names.data + from_nlen,
		    reply_nlen, reply_addr);
	buf_reset(&sc);
	if (spec->subject != NULL)
		clean_phrase(&sc, spec->subject, strlen(spec->subject),
		    MIME_PHRASE_MAX);
	hdr_begin(&h, out, "Subject");
	if (sc.len > 0)
		hdr_text(&h, sc.data, sc.len);
	else
		buf_append(out, " ", 1);
	hdr_end(&h);
	/* RFC 3834 5: keeps vacation responders from answering */
	buf_append(out, "MIME-Version: 1.0\r\n"
	    "Auto-Submitted: auto-generated\r\n", 51);
	for (const char *const *x = spec->extra_headers; x && x[0]; x += 2)
		extra_header(out, &sc, x[0], x[1]);
	if ((bad = header_check((const unsigned char *)out->data + start,
	    out->len - start)) != NULL) {
		log_warnx("mime: generated message rejected: %s", bad);
		set_err(err, "mime: generated message has a %s", bad);
		out->len = start;
		out->data[start] = '\0';
		rc = FU_PERMFAIL;
		goto done;
	}

	/* one reservation for the usual case; text_part tops it up */
	buf_reserve(out, qp_bound(text.len) + (html.s ? qp_bound(html.len) :
	    0) + (ics.s ? qp_bound(ics.len) : 0) + 1024);
	if (html.s == NULL && ics.s == NULL) {
		text_part(out, "plain", &text, NULL);
		goto done;
	}
	if (ics.s != NULL) {
		boundary_make(spec->message_id, 'm', mixed);
		multipart_begin(out, "mixed", mixed);
	}
	if (html.s != NULL) {
		boundary_make(spec->message_id, 'a', alt);
		multipart_begin(out, "alternative", alt);
		text_part(out, "plain", &text, NULL);
		multipart_next(out, alt, 0);
		text_part(out, "html", &html, NULL);
		multipart_next(out, alt, 1);
	} else
		text_part(out, "plain", &text, NULL);
	if (ics.s != NULL) {
		multipart_next(out, mixed, 0);
		text_part(out, "calendar", &ics, spec->calendar->method);
		multipart_next(out, mixed, 1);
	}
done:
	buf_free(&names);
	buf_free(&sc);
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
		    ascii_ncasecmp(p, "Content-Type:", 13) == 0) {
			/* the header and its continuation lines */
			while (eol + 2 < end && (eol[2] == ' ' || eol[2] == '\t')) {
				const char *next = memmem(eol + 2,
				    (size_t)(end - eol - 2), "\r\n", 2);

				eol = next ? next : end;
			}
			for (v = p + 13; v < eol && (*v == ' ' || *v == '\t'); v++)
				;
			if ((size_t)(eol - v) < 10 ||
			    ascii_ncasecmp(v, "multipart/", 10) != 0)
				return 0;
			for (b = v; b + 9 <= eol; b++)
				if (ascii_ncasecmp(b, "boundary=", 9) == 0)
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
