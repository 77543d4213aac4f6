/*
 * fuzz_mime: the header encoder and the address checker (mime_clean_phrase,
 * mime_address_ok, mime_build) with untrusted names, subjects, addresses
 * and bodies, as a database row would hand them over.
 *
 * Input: byte 0 picks the phrase limit; the rest is split at NUL bytes into
 * name, subject, address, text, html, an extra header value, a From
 * display name, a calendar (missing fields are NULL). Beyond "no crash",
 * each output is checked: a cleaned phrase is valid UTF-8 without control
 * characters or line separators and within its limit; an accepted address
 * has one '@' and nothing that could end or split a command line; a built
 * message has CRLF lines of at most 998 octets, a 7-bit header section
 * with exactly one From, To, Subject and Message-ID, no Cc or Bcc, no
 * header line a value could have added, and lines holding an encoded word
 * of at most 76; its MIME structure is exactly text, html, calendar as
 * given, no line but ours starts with a boundary delimiter, and every part
 * decodes (strict quoted-printable or base64) to its input with CRLF line
 * breaks; it passes mime_message_complete, and when multipart no prefix of
 * it does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "mime.h"
#include "util.h"

#define NFIELDS	8

static void
check_phrase(const char *in, size_t len, size_t max)
{
	char *out = mime_clean_phrase(in, len, max);
	size_t n = strlen(out), chars = 0;
	const unsigned char *p = (const unsigned char *)out;

	FUZZ_ASSERT(utf8_valid(out, n), "clean phrase is valid UTF-8");
	for (size_t i = 0; i < n; i++) {
		FUZZ_ASSERT(p[i] >= 0x20 && p[i] != 0x7f, "no C0 or DEL");
		if ((p[i] & 0xc0) != 0x80)
			chars++;
		if (p[i] == 0xc2 && i + 1 < n)
			FUZZ_ASSERT(p[i + 1] < 0x80 || p[i + 1] > 0x9f, "no C1");
		if (p[i] == 0xe2 && i + 2 < n && p[i + 1] == 0x80)
			FUZZ_ASSERT(p[i + 2] != 0xa8 && p[i + 2] != 0xa9,
			    "no U+2028/U+2029");
	}
	FUZZ_ASSERT(n == 0 || (out[0] != ' ' && out[n - 1] != ' '),
	    "trimmed");
	FUZZ_ASSERT(strstr(out, "  ") == NULL, "spaces folded");
	FUZZ_ASSERT(chars <= max || max == 0, "cut to max characters");
	free(out);
}

static void
check_address(const char *addr)
{
	const char *why = NULL, *at;

	if (!mime_address_ok(addr, &why)) {
		FUZZ_ASSERT(why != NULL, "a refusal says why");
		return;
	}
	at = strchr(addr, '@');
	FUZZ_ASSERT(at != NULL && strchr(at + 1, '@') == NULL, "one '@'");
	FUZZ_ASSERT(strlen(addr) <= MIME_ADDRESS_MAX, "bounded");
	FUZZ_ASSERT(strpbrk(addr, " \t\r\n\",<>()[]\\;:") == NULL,
	    "no specials in an accepted address");
	for (const unsigned char *p = (const unsigned char *)addr; *p; p++)
		FUZZ_ASSERT(*p > 0x20 && *p < 0x7f, "printable ASCII");
}

static int
header_is(const char *line, size_t n, const char *name)
{
	size_t k = strlen(name);

	return n > k && line[k] == ':' && strncasecmp(line, name, k) == 0;
}

static void
check_message(const struct buf *m)
{
	const char *p = m->data, *end = m->data + m->len, *eol;
	int in_head = 1, from = 0, to = 0, subject = 0, mid = 0, verbatim = 0;

	FUZZ_ASSERT(m->len >= 2 && p[m->len - 2] == '\r' &&
	    p[m->len - 1] == '\n', "ends with CRLF");
	for (; p < end; p = eol + 1) {
		size_t n;

		eol = memchr(p, '\n', (size_t)(end - p));
		FUZZ_ASSERT(eol != NULL && eol > p && eol[-1] == '\r',
		    "every line ends with CRLF");
		n = (size_t)(eol - 1 - p);
		FUZZ_ASSERT(n <= MIME_LINE_MAX, "lines of at most 998 octets");
		FUZZ_ASSERT(memchr(p, '\r', n) == NULL, "no bare CR");
		FUZZ_ASSERT(memchr(p, '\0', n) == NULL, "no NUL");
		if (!in_head)
			continue;
		if (n == 0) {
			in_head = 0;
			continue;
		}
		for (size_t i = 0; i < n; i++)
			FUZZ_ASSERT((unsigned char)p[i] < 0x80, "7-bit headers");
		if (p[0] != ' ' && p[0] != '\t')
			verbatim = header_is(p, n, "X-Ticket");
		/* an ASCII extra value goes verbatim, look-alikes too */
		FUZZ_ASSERT(verbatim || n <= 76 || memmem(p, n, "=?", 2) == NULL,
		    "a line with an encoded word has at most 76 octets");
		if (p[0] == ' ' || p[0] == '\t')
			continue;	/* a folded continuation */
		FUZZ_ASSERT(memchr(p, ':', n) != NULL, "a header line has a name");
		from += header_is(p, n, "From");
		to += header_is(p, n, "To");
		subject += header_is(p, n, "Subject");
		mid += header_is(p, n, "Message-ID");
		FUZZ_ASSERT(!header_is(p, n, "Cc") && !header_is(p, n, "Bcc") &&
		    !header_is(p, n, "Sender") && !header_is(p, n, "Received"),
		    "no header added by a value");
	}
	FUZZ_ASSERT(!in_head, "a header section and a body");
	FUZZ_ASSERT(from == 1 && to == 1 && subject == 1 && mid == 1,
	    "exactly one From, To, Subject, Message-ID");
}

/* Every line break (CRLF, LF, lone CR) as CRLF: what a part decodes to. */
static void
crlf(const char *s, struct buf *out)
{
	for (; *s; s++) {
		if (*s == '\r' || *s == '\n') {
			buf_append(out, "\r\n", 2);
			if (s[0] == '\r' && s[1] == '\n')
				s++;
		} else
			buf_putc(out, *s);
	}
}

static int
hex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ?
	    c - 'A' + 10 : -1;
}

static int
b64(char c)
{
	static const char a[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c ? strchr(a, c) : NULL;

	return p ? (int)(p - a) : -1;
}

/*
 * Decode a part's body strictly (RFC 2045 6.7 and 6.8 as mime_build
 * writes them: lines of at most 76, no trailing white space in QP, "=" only
 * before two upper-case hex digits or a line end, base64 in whole quanta
 * with padding only at the very end).
 */
static void
decode(int qp, const char *s, size_t n, struct buf *out)
{
	const char *p = s, *end = s + n;

	while (p < end) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		size_t len, i;
		int soft = 0;

		FUZZ_ASSERT(eol != NULL, "an encoded line ends with CRLF");
		len = (size_t)(eol - p);
		FUZZ_ASSERT(len <= 76, "encoded lines of at most 76");
		if (qp) {
			FUZZ_ASSERT(len == 0 || (p[len - 1] != ' ' &&
			    p[len - 1] != '\t'), "no trailing white space");
			for (i = 0; i < len; i++) {
				unsigned char c = (unsigned char)p[i];

				if (c == '=' && i + 1 == len) {
					soft = 1;
					break;
				}
				if (c == '=') {
					FUZZ_ASSERT(i + 3 <= len && hex(p[i + 1]) >= 0 &&
					    hex(p[i + 2]) >= 0, "=XX");
					buf_putc(out, (char)(hex(p[i + 1]) * 16 +
					    hex(p[i + 2])));
					i += 2;
				} else {
					FUZZ_ASSERT((c >= 33 && c <= 126) || c == ' ' ||
					    c == '\t', "QP octets");
					buf_putc(out, (char)c);
				}
			}
			if (!soft)
				buf_append(out, "\r\n", 2);
		} else {
			FUZZ_ASSERT(len % 4 == 0, "base64 quanta");
			for (i = 0; i < len; i += 4) {
				int v[4], pad = 0;

				for (int k = 0; k < 4; k++) {
					if (p[i + k] == '=' && k >= 2 &&
					    eol + 2 == end && i + 4 == len) {
						v[k] = 0;
						pad++;
					} else {
						FUZZ_ASSERT(pad == 0 &&
						    (v[k] = b64(p[i + k])) >= 0,
						    "base64 alphabet");
					}
				}
				buf_putc(out, (char)(v[0] << 2 | v[1] >> 4));
				if (pad < 2)
					buf_putc(out, (char)((v[1] & 15) << 4 |
					    v[2] >> 2));
				if (pad < 1)
					buf_putc(out, (char)((v[2] & 3) << 6 | v[3]));
			}
		}
		p = eol + 2;
	}
}

/*
 * The quoted boundary parameter of a part's Content-Type (a line of its
 * own: a Subject may say "boundary=" too), or NULL when not multipart.
 */
static char *
boundary_of(const char *head, size_t n)
{
	static const char ct[] = "Content-Type: multipart/";
	const char *p = head, *end = head + n, *eol, *b, *e;

	for (; p < end; p = eol + 2) {
		eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (eol == NULL)
			eol = end;
		if ((size_t)(eol - p) < sizeof(ct) - 1 ||
		    memcmp(p, ct, sizeof(ct) - 1) != 0)
			continue;
		b = memmem(p, (size_t)(eol - p), "; boundary=\"", 12);
		FUZZ_ASSERT(b != NULL, "a multipart has a boundary");
		b += 12;
		e = memchr(b, '"', (size_t)(eol - b));
		FUZZ_ASSERT(e != NULL && e > b, "a quoted boundary");
		return xstrndup(b, (size_t)(e - b));
	}
	return NULL;
}

/*
 * Walk the part p[0..n): a multipart one (its boundary in p's headers)
 * into its parts, a leaf decoded into leaves[*nleaves].
 */
static void
walk(const char *p, size_t n, struct buf *leaves, int *nleaves, int depth)
{
	const char *sep = memmem(p, n, "\r\n\r\n", 4), *body, *end = p + n;
	char *bd;
	int qp;

	FUZZ_ASSERT(sep != NULL && depth < 3, "a part has headers, little "
	    "nesting");
	body = sep + 4;
	if ((bd = boundary_of(p, (size_t)(sep - p))) != NULL) {
		size_t bl = strlen(bd);
		const char *q = body;

		FUZZ_ASSERT((size_t)(end - q) > bl + 2 && memcmp(q, "--", 2) == 0 &&
		    memcmp(q + 2, bd, bl) == 0 && memcmp(q + 2 + bl, "\r\n", 2) == 0,
		    "the body starts with the first delimiter");
		q += bl + 4;
		for (;;) {
			const char *d = q, *next;

			/* the delimiter: the boundary after CRLF "--" */
			for (;;) {
				d = memmem(d, (size_t)(end - d), bd, bl);
				FUZZ_ASSERT(d != NULL, "a closing delimiter");
				if (d - q >= 4 && memcmp(d - 4, "\r\n--", 4) == 0)
					break;
				FUZZ_ASSERT(!(d - q >= 2 && memcmp(d - 2, "--", 2) == 0 &&
				    (d - 2 == q || d[-3] == '\n')),
				    "no line but ours starts with a delimiter");
				d += bl;
			}
			walk(q, (size_t)(d - 4 - q), leaves, nleaves, depth + 1);
			next = d + bl;
			if (end - next == 4 && memcmp(next, "--\r\n", 4) == 0)
				break;
			FUZZ_ASSERT(end - next >= 2 && memcmp(next, "\r\n", 2) == 0,
			    "a delimiter line");
			q = next + 2;
		}
		free(bd);
		return;
	}
	FUZZ_ASSERT(*nleaves < 3, "at most three leaves");
	/* the header section plus its CRLF: each line ends in CRLF */
	qp = memmem(p, (size_t)(sep + 2 - p), "\r\nContent-Transfer-Encoding: "
	    "quoted-printable\r\n", 47) != NULL;
	FUZZ_ASSERT(qp || memmem(p, (size_t)(sep + 2 - p),
	    "\r\nContent-Transfer-Encoding: base64\r\n", 37) != NULL,
	    "a leaf is quoted-printable or base64");
	decode(qp, body, (size_t)(end - body), &leaves[(*nleaves)++]);
}

/* The parts are text, html, calendar as given, each decoding to its input. */
static void
check_structure(const struct buf *m, const struct mime_spec *spec)
{
	struct buf leaves[3] = { { 0 }, { 0 }, { 0 } }, want = { 0 };
	const char *in[3];
	int n = 0, k = 0;

	walk(m->data, m->len, leaves, &n, 0);
	in[k++] = spec->text;
	if (spec->html != NULL)
		in[k++] = spec->html;
	if (spec->calendar != NULL)
		in[k++] = spec->calendar->ics;
	FUZZ_ASSERT(n == k, "one part per body");
	for (int i = 0; i < n; i++) {
		buf_reset(&want);
		crlf(in[i], &want);
		FUZZ_ASSERT(leaves[i].len == want.len && (want.len == 0 ||
		    memcmp(leaves[i].data, want.data, want.len) == 0),
		    "a part decodes to its input exactly");
		buf_free(&leaves[i]);
	}
	buf_free(&want);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *f[NFIELDS] = { 0 };
	size_t flen[NFIELDS] = { 0 };
	char *copy, *p, *end;
	size_t max;
	int nf = 0;

	if (size < 1)
		return 0;
	max = data[0] % 250;
	copy = xmalloc(size);
	memcpy(copy, data + 1, size - 1);
	copy[size - 1] = '\0';
	for (p = copy, end = copy + size - 1; nf < NFIELDS && p <= end; nf++) {
		char *z = memchr(p, '\0', (size_t)(end - p) + 1);

		f[nf] = p;
		flen[nf] = (size_t)(z - p);
		p = z + 1;
	}

	/* The raw bytes, NULs included, as one phrase. */
	check_phrase((const char *)data + 1, size - 1, max);
	for (int i = 0; i < nf; i++) {
		check_phrase(f[i], flen[i], MIME_PHRASE_MAX);
		check_address(f[i]);
	}

	{
		const char *extra[] = { "X-Ticket", f[5] ? f[5] : "1", NULL };
		struct mime_part_calendar cal = { "REQUEST", f[7] };
		char *from = f[6] ? xasprintf("%s <support@acme.example>", f[6]) :
		    NULL;
		struct mime_spec spec = {
			.from = from ? from : "Acme Support <support@acme.example>",
			.reply_to = "help@acme.example",
			.to_name = f[0],
			.to_addr = f[2] ? f[2] : "",
			.subject = f[1] ? f[1] : "",
			.message_id = "followupd.1.00ff@acme.example",
			.date = 1793000000,
			.text = f[3] ? f[3] : "",
			.html = f[4],
			.calendar = f[7] ? &cal : NULL,
			.extra_headers = extra,
		};
		struct buf out = { 0 };
		char *err = NULL;
		int r = mime_build(&spec, &out, &err);

		if (r == FU_OK) {
			FUZZ_ASSERT(mime_address_ok(spec.to_addr, NULL),
			    "built only for a valid address");
			check_message(&out);
			check_structure(&out, &spec);
			FUZZ_ASSERT(mime_message_complete(out.data, out.len,
			    NULL), "a built message is complete");
			/* Cut short anywhere, a multipart message is not. */
			if (spec.html != NULL || spec.calendar != NULL)
				for (size_t cut = out.len; cut-- > 0;
				    cut = cut > 64 ? cut - cut / 8 - 1 : cut)
					FUZZ_ASSERT(!mime_message_complete(out.data,
					    cut, NULL), "a cut message is incomplete");
		} else
			FUZZ_ASSERT(err != NULL && out.len == 0,
			    "a refusal says why and writes nothing");
		free(err);
		free(from);
		buf_free(&out);
	}
	free(copy);
	return 0;
}
