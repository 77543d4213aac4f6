/* test_mime: mime.c tables and built messages; --write DIR: e2e samples. */
#include "mime.h"
#include "tap.h"
#include "util.h"

#include <gmime/gmime.h>

#include <errno.h>
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

/* --- helpers for built messages -------------------------------------- */

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

/* Does any header line start with `name:` (case-insensitive)? */
static int
has_header(const char *block, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = block; (p = strstr(p, "\r\n")) != NULL; p += 2)
		if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':')
			return 1;
	return 0;
}

static GMimeMessage *
reparse(const struct buf *raw)
{
	GMimeStream *st = g_mime_stream_mem_new_with_buffer(raw->data, raw->len);
	GMimeParser *parser = g_mime_parser_new_with_stream(st);
	GMimeMessage *m = g_mime_parser_construct_message(parser, NULL);

	g_object_unref(parser);
	g_object_unref(st);
	return m;
}

/* Decoded content of a leaf part, line breaks as LF; caller frees. */
static char *
part_text(GMimeObject *o)
{
	GMimeDataWrapper *w;
	GMimeStream *st;
	GByteArray *ba;
	struct buf b = { 0 };

	if (o == NULL || !GMIME_IS_PART(o))
		return xstrdup("(not a part)");
	w = g_mime_part_get_content(GMIME_PART(o));
	st = g_mime_stream_mem_new();
	g_mime_data_wrapper_write_to_stream(w, st);
	ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(st));
	for (guint i = 0; i < ba->len; i++)
		if (!(ba->data[i] == '\r' && i + 1 < ba->len &&
		    ba->data[i + 1] == '\n'))
			buf_putc(&b, (char)ba->data[i]);
	g_object_unref(st);
	return buf_steal(&b);
}

static char *
lf_only(const char *s)
{
	struct buf b = { 0 };

	for (; *s; s++)
		if (!(s[0] == '\r' && s[1] == '\n'))
			buf_putc(&b, *s);
	return buf_steal(&b);
}

static char *
mime_type_of(GMimeObject *o)
{
	if (o == NULL)
		return xstrdup("(none)");
	gchar *t = g_mime_content_type_get_mime_type(
	    g_mime_object_get_content_type(o));
	char *r = xstrdup(t);

	g_free(t);
	return r;
}

static GMimeObject *
sub(GMimeObject *o, int i)
{
	if (o == NULL || !GMIME_IS_MULTIPART(o) ||
	    i >= g_mime_multipart_get_count(GMIME_MULTIPART(o)))
		return NULL;
	return g_mime_multipart_get_part(GMIME_MULTIPART(o), i);
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

/* Build, check the wire format, return the result code; raw gets the bytes. */
static int
build(const struct mime_spec *s, struct buf *raw, char **err, const char *what)
{
	int r;

	buf_reset(raw);
	free(*err);
	*err = NULL;
	r = mime_build(s, raw, err);
	if (r == FU_OK) {
		const char *bad = wire_problem(raw->data, raw->len);

		tap_ok(bad == NULL, "build %s: CRLF only, lines <= 998 (%s)",
		    what, bad ? bad : "fine");
	}
	return r;
}

static void
test_build_text(void)
{
	struct mime_spec s = base_spec();
	struct buf raw = { 0 };
	char *err = NULL, *hb, *t;
	GMimeMessage *m;
	int r;

	r = build(&s, &raw, &err, "text");
	tap_ok(r == FU_OK, "build text: ok (%s)", err ? err : "");
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
	free(hb);

	m = reparse(&raw);
	tap_ok(m != NULL, "build text: GMime parses it back");
	if (m != NULL) {
		t = part_text(g_mime_message_get_mime_part(m));
		tap_str(t, "Hello Ana,\n\nThanks.\n", "build text: body round trip");
		free(t);
		g_object_unref(m);
	}

	/* out is appended to, never reset */
	struct buf pre = { 0 };
	buf_puts(&pre, "PREFIX");
	r = mime_build(&s, &pre, &err);
	tap_ok(r == FU_OK && strncmp(buf_cstr(&pre), "PREFIX", 6) == 0 &&
	    strncmp(buf_cstr(&pre) + 6, raw.data, raw.len) == 0,
	    "build text: appends to out");
	buf_free(&pre);

	s.reply_to = "Help Desk <help@example.com>";
	r = build(&s, &raw, &err, "reply-to");
	hb = header_block(buf_cstr(&raw));
	tap_ok(r == FU_OK && has_line(hb,
	    "Reply-To: Help Desk <help@example.com>"), "build: Reply-To");
	free(hb);

	free(err);
	buf_free(&raw);
}

static void
test_build_hostile(void)
{
	struct mime_spec s = base_spec();
	struct buf raw = { 0 };
	char *err = NULL, *hb;
	GMimeMessage *m;
	InternetAddressList *to;
	int r;

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

	m = reparse(&raw);
	tap_ok(m != NULL, "build hostile: GMime parses it back");
	if (m == NULL)
		goto out;
	tap_str(g_mime_message_get_subject(m),
	    "Zo\xc3\xab \xc3\xb1" "and\xc3\xba Bcc: evil@example.com",
	    "build hostile: Subject decodes to the cleaned value");
	to = g_mime_message_get_to(m);
	tap_ok(internet_address_list_length(to) == 1,
	    "build hostile: exactly one To address (got %d)",
	    internet_address_list_length(to));
	if (internet_address_list_length(to) >= 1) {
		InternetAddress *ia = internet_address_list_get_address(to, 0);

		tap_str(INTERNET_ADDRESS_IS_MAILBOX(ia) ?
		    internet_address_mailbox_get_addr(
		    INTERNET_ADDRESS_MAILBOX(ia)) : "(group)",
		    "john@example.com", "build hostile: To address");
		tap_str(internet_address_get_name(ia),
		    "Smith, John \"JJ\" <evil@x> Cc: victim@example.org",
		    "build hostile: To name is one display name");
	}
	tap_ok(internet_address_list_length(g_mime_message_get_cc(m)) == 0 &&
	    internet_address_list_length(g_mime_message_get_bcc(m)) == 0,
	    "build hostile: no Cc or Bcc recipients");
	tap_str(g_mime_object_get_header(GMIME_OBJECT(m), "X-Note"),
	    "caf\xc3\xa9 =?utf-8?q?x?=",
	    "build hostile: non-ASCII extra header decodes literally");
	g_object_unref(m);

	/* non-ASCII and specials in one name: no encoded word in quotes */
	s.to_name = "Zo\xc3\xab \"JJ\", Smith <evil@x> (c) ;:";
	r = build(&s, &raw, &err, "mixed name");
	hb = header_block(buf_cstr(&raw));
	tap_ok(r == FU_OK && strstr(hb, "\"=?") == NULL,
	    "build mixed name: no encoded word inside a quoted string");
	free(hb);
	m = r == FU_OK ? reparse(&raw) : NULL;
	to = m ? g_mime_message_get_to(m) : NULL;
	tap_ok(to != NULL && internet_address_list_length(to) == 1,
	    "build mixed name: one To address");
	tap_str(to && internet_address_list_length(to) == 1 ?
	    internet_address_get_name(internet_address_list_get_address(to, 0)) :
	    NULL, "Zo\xc3\xab \"JJ\", Smith <evil@x> (c) ;:",
	    "build mixed name: decodes to the cleaned name");
	if (m)
		g_object_unref(m);

	/* a subject that is nothing but an encoded word carrying CR LF */
	s.subject = "=?utf-8?q?a=0D=0ABcc:_evil@example.com?=";
	r = build(&s, &raw, &err, "encoded-word look-alike");
	m = r == FU_OK ? reparse(&raw) : NULL;
	tap_str(m ? g_mime_message_get_subject(m) : NULL,
	    "=?utf-8?q?a=0D=0ABcc:_evil@example.com?=",
	    "build: encoded-word look-alike in Subject decodes to itself");
	if (m)
		g_object_unref(m);
	s.subject = "ok";
	s.to_name = "=?utf-8?q?Evil=2C_x=40y?=";
	r = build(&s, &raw, &err, "encoded-word look-alike name");
	m = r == FU_OK ? reparse(&raw) : NULL;
	to = m ? g_mime_message_get_to(m) : NULL;
	tap_ok(to != NULL && internet_address_list_length(to) == 1,
	    "build: look-alike name keeps one To address");
	tap_str(to && internet_address_list_length(to) == 1 ?
	    internet_address_get_name(internet_address_list_get_address(to, 0)) :
	    NULL, "=?utf-8?q?Evil=2C_x=40y?=",
	    "build: look-alike name decodes to itself");
	if (m)
		g_object_unref(m);
out:
	free(err);
	buf_free(&raw);
}

static void
test_build_encoded_word(void)
{
	struct mime_spec s = base_spec();
	struct buf raw = { 0 };
	char *err = NULL, *hb, *subj;
	GMimeMessage *m;

	s.subject = "Zo\xc3\xab \xc3\xb1" "and\xc3\xba";
	s.to_name = "Zo\xc3\xab \xc3\xb1" "and\xc3\xba";
	tap_ok(build(&s, &raw, &err, "Zoe") == FU_OK, "build Zoe: ok");
	hb = header_block(buf_cstr(&raw));
	subj = strcasestr(hb, "\r\nSubject: ");
	tap_ok(subj != NULL && strncasecmp(subj + 11, "=?UTF-8?", 8) == 0,
	    "build Zoe: Subject is a UTF-8 encoded word");
	tap_ok(strcasestr(hb, "\r\nTo: =?UTF-8?") != NULL,
	    "build Zoe: To name is a UTF-8 encoded word");
	/* headers are 7-bit */
	int eight = 0;
	for (const char *p = hb; *p; p++)
		if ((unsigned char)*p >= 0x80)
			eight = 1;
	tap_ok(!eight, "build Zoe: header block is 7-bit");
	free(hb);
	m = reparse(&raw);
	tap_str(m ? g_mime_message_get_subject(m) : NULL,
	    "Zo\xc3\xab \xc3\xb1" "and\xc3\xba", "build Zoe: Subject decodes");
	if (m)
		g_object_unref(m);
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
	char *err = NULL, *t, *mt, *want;
	GMimeMessage *m;
	GMimeObject *top;
	const char *boundary;

	s.html = "<p>Hello &amp; <b>welcome</b></p>\n";
	tap_ok(build(&s, &raw, &err, "alternative") == FU_OK,
	    "build alternative: ok");
	m = reparse(&raw);
	top = m ? g_mime_message_get_mime_part(m) : NULL;
	mt = mime_type_of(top);
	tap_str(mt, "multipart/alternative", "build alternative: type");
	free(mt);
	boundary = top && GMIME_IS_MULTIPART(top) ?
	    g_mime_multipart_get_boundary(GMIME_MULTIPART(top)) : NULL;
	tap_ok(boundary != NULL && *boundary, "build alternative: boundary");
	if (boundary != NULL) {
		want = xasprintf("\r\n--%s\r\n", boundary);
		tap_ok(strstr(raw.data, want) != NULL,
		    "build alternative: delimiter line present");
		free(want);
		want = xasprintf("\r\n--%s--\r\n", boundary);
		tap_ok(strstr(raw.data, want) != NULL,
		    "build alternative: close delimiter present");
		free(want);
	}
	mt = mime_type_of(sub(top, 0));
	tap_str(mt, "text/plain", "build alternative: text first");
	free(mt);
	mt = mime_type_of(sub(top, 1));
	tap_str(mt, "text/html", "build alternative: html second");
	free(mt);
	tap_str(sub(top, 1) ? g_mime_object_get_content_type_parameter(
	    sub(top, 1), "charset") : NULL, "utf-8",
	    "build alternative: html charset=utf-8");
	t = part_text(sub(top, 1));
	tap_str(t, s.html, "build alternative: html round trip");
	free(t);
	if (m)
		g_object_unref(m);

	s.calendar = &cal;
	tap_ok(build(&s, &raw, &err, "calendar") == FU_OK,
	    "build calendar: ok");
	tap_ok(strstr(raw.data, "Content-Type: text/calendar; method=REQUEST; "
	    "charset=UTF-8\r\n") != NULL, "build calendar: calendar type line");
	m = reparse(&raw);
	top = m ? g_mime_message_get_mime_part(m) : NULL;
	mt = mime_type_of(top);
	tap_str(mt, "multipart/mixed", "build calendar: mixed");
	free(mt);
	mt = mime_type_of(sub(top, 0));
	tap_str(mt, "multipart/alternative", "build calendar: alternative first");
	free(mt);
	mt = mime_type_of(sub(top, 1));
	tap_str(mt, "text/calendar", "build calendar: calendar second");
	free(mt);
	t = part_text(sub(top, 1));
	want = lf_only(cal.ics);
	tap_str(t, want, "build calendar: ics round trip");
	free(t);
	free(want);
	if (m)
		g_object_unref(m);

	s.html = NULL;
	cal.method = "CANCEL";
	tap_ok(build(&s, &raw, &err, "calendar text") == FU_OK,
	    "build calendar text: ok");
	m = reparse(&raw);
	top = m ? g_mime_message_get_mime_part(m) : NULL;
	mt = mime_type_of(sub(top, 0));
	tap_str(mt, "text/plain", "build calendar text: text first");
	free(mt);
	tap_str(sub(top, 1) ? g_mime_object_get_content_type_parameter(
	    sub(top, 1), "method") : NULL, "CANCEL",
	    "build calendar text: method=CANCEL");
	if (m)
		g_object_unref(m);

	free(err);
	buf_free(&raw);
}

static void
test_build_bodies(void)
{
	struct mime_spec s = base_spec();
	struct buf raw = { 0 }, big = { 0 };
	char *err = NULL, *t;
	GMimeMessage *m;

	/* 200 KB on one line */
	while (big.len < 200 * 1024)
		buf_puts(&big, "0123456789 <p>&amp; caf\xc3\xa9 = ");
	s.html = big.data;
	tap_ok(build(&s, &raw, &err, "200 KB line") == FU_OK,
	    "build 200 KB line: ok");
	m = reparse(&raw);
	t = part_text(m ? sub(g_mime_message_get_mime_part(m), 1) : NULL);
	tap_ok(strcmp(t, big.data) == 0,
	    "build 200 KB line: wrapped and decodes to the input");
	free(t);
	if (m)
		g_object_unref(m);
	s.html = NULL;

	/* no final line break: QP must not add one */
	s.text = "no newline at end  ";
	tap_ok(build(&s, &raw, &err, "no final newline") == FU_OK,
	    "build no final newline: ok");
	m = reparse(&raw);
	t = part_text(m ? g_mime_message_get_mime_part(m) : NULL);
	tap_str(t, "no newline at end  ", "build no final newline: exact");
	free(t);
	if (m)
		g_object_unref(m);

	/* line starts that transports and mbox files mangle */
	s.text = "From the team\n.\nFrom\n..x\n";
	tap_ok(build(&s, &raw, &err, "From and dot") == FU_OK,
	    "build From and dot: ok");
	tap_ok(strstr(raw.data, "\r\n=46rom the team\r\n=2E\r\nFrom\r\n=2E.x\r\n")
	    != NULL, "build From and dot: encoded at line start");
	m = reparse(&raw);
	t = part_text(m ? g_mime_message_get_mime_part(m) : NULL);
	tap_str(t, s.text, "build From and dot: exact");
	free(t);
	if (m)
		g_object_unref(m);

	/* a soft break must not leave a "." at the start of a line either */
	struct buf dots = { 0 };
	/* 75 octets fill an encoded line: what follows starts the next one */
	for (int k = 0; k < 75; k++)
		buf_putc(&dots, 'a');
	buf_puts(&dots, ".b\n");
	for (int k = 0; k < 75; k++)
		buf_putc(&dots, 'c');
	buf_puts(&dots, "From d\n");
	s.text = dots.data;
	tap_ok(build(&s, &raw, &err, "soft break") == FU_OK, "build soft break: ok");
	tap_ok(strstr(raw.data, "\r\n.") == NULL &&
	    strstr(raw.data, "\r\nFrom ") == NULL,
	    "build soft break: no '.' or 'From ' at a line start");
	m = reparse(&raw);
	t = part_text(m ? g_mime_message_get_mime_part(m) : NULL);
	tap_str(t, dots.data, "build soft break: exact");
	free(t);
	if (m)
		g_object_unref(m);
	buf_free(&dots);

	/* mixed line ends all become CRLF on the wire */
	s.text = "a\rb\nc\r\nd";
	tap_ok(build(&s, &raw, &err, "mixed line ends") == FU_OK,
	    "build mixed line ends: ok");
	m = reparse(&raw);
	t = part_text(m ? g_mime_message_get_mime_part(m) : NULL);
	tap_str(t, "a\nb\nc\nd", "build mixed line ends: all line breaks");
	free(t);
	if (m)
		g_object_unref(m);

	/* mostly non-ASCII: base64 */
	s.text = "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xd7\xa2\xd7\x95\xd7\x9c"
	    "\xd7\x9d\n\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7\n";
	tap_ok(build(&s, &raw, &err, "RTL") == FU_OK, "build RTL: ok");
	tap_ok(strstr(raw.data, "Content-Transfer-Encoding: base64\r\n") != NULL,
	    "build RTL: base64 for mostly non-ASCII text");
	m = reparse(&raw);
	t = part_text(m ? g_mime_message_get_mime_part(m) : NULL);
	tap_str(t, s.text, "build RTL: exact");
	free(t);
	if (m)
		g_object_unref(m);

	s.text = "";
	tap_ok(build(&s, &raw, &err, "empty body") == FU_OK,
	    "build empty body: ok");

	free(err);
	buf_free(&raw);
	buf_free(&big);
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
	static const struct mime_part_calendar bad_method = { "REQ;UEST", "x" };
	static const struct mime_part_calendar bad_ics = { "REQUEST", "\xff" };
	struct mime_spec b = base_spec();
	struct bad_case cases[20];
	size_t n = 0;

#define BAD(label, field, value) do {				\
		cases[n].name = (label);			\
		cases[n].spec = b;				\
		cases[n].spec.field = (value);			\
		n++;						\
	} while (0)
	BAD("invalid UTF-8 text", text, "caf\xe9\n");
	BAD("invalid UTF-8 html", html, "<p>\xc3</p>");
	BAD("no text", text, NULL);
	BAD("bad recipient", to_addr, "a b@example.com");
	BAD("recipient with CRLF", to_addr, "a@example.com\r\nBcc: x@y.example");
	BAD("no recipient", to_addr, NULL);
	BAD("non-ASCII recipient", to_addr, "jos\xc3\xa9@example.com");
	BAD("Message-ID with brackets", message_id, "<a@example.com>");
	BAD("Message-ID without @", message_id, "abc");
	BAD("Message-ID with CRLF", message_id, "a@b\r\nBcc: x@y");
	BAD("bad From", from, "Team <not an address>");
	BAD("no From", from, NULL);
	BAD("bad Reply-To", reply_to, "help@@example.com");
	BAD("header name with space", extra_headers, bad_name);
	BAD("header name with colon", extra_headers, colon_name);
	BAD("header name To", extra_headers, to_name);
	BAD("header name Content-Type", extra_headers, ct_name);
	BAD("header name with CRLF", extra_headers, crlf_name);
	BAD("header without value", extra_headers, no_value);
	BAD("bad calendar method", calendar, &bad_method);
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
	mime_init();
	mime_init();	/* idempotent */
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
	test_build_hostile();
	test_build_multipart();
	test_build_bodies();
	test_build_errors();
	return tap_done();
}
