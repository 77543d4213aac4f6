/*
 * fuzz_mime: the header encoder and the address checker (mime_clean_phrase,
 * mime_address_ok, mime_build) with untrusted names, subjects, addresses
 * and bodies, as a database row would hand them over.
 *
 * Input: byte 0 picks the phrase limit; the rest is split at NUL bytes into
 * name, subject, address, text, html, an extra header value (missing fields
 * are NULL). Beyond "no crash", each output is checked: a cleaned phrase is
 * valid UTF-8 without control characters or line separators and within its
 * limit; an accepted address has one '@' and nothing that could end or
 * split a command line; a built message has CRLF lines of at most 998
 * octets, a 7-bit header section with exactly one From, To, Subject and
 * Message-ID, no Cc or Bcc, and no header line a value could have added;
 * it passes mime_message_complete, and with an HTML part (multipart) no
 * prefix of it does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "mime.h"
#include "util.h"

#define NFIELDS	6

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
	int in_head = 1, from = 0, to = 0, subject = 0, mid = 0;

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

	mime_init();
	{
		const char *extra[] = { "X-Ticket", f[5] ? f[5] : "1", NULL };
		struct mime_spec spec = {
			.from = "Acme Support <support@acme.example>",
			.reply_to = "help@acme.example",
			.to_name = f[0],
			.to_addr = f[2] ? f[2] : "",
			.subject = f[1] ? f[1] : "",
			.message_id = "followupd.1.00ff@acme.example",
			.date = 1793000000,
			.text = f[3] ? f[3] : "",
			.html = f[4],
			.extra_headers = extra,
		};
		struct buf out = { 0 };
		char *err = NULL;
		int r = mime_build(&spec, &out, &err);

		if (r == FU_OK) {
			FUZZ_ASSERT(mime_address_ok(spec.to_addr, NULL),
			    "built only for a valid address");
			check_message(&out);
			FUZZ_ASSERT(mime_message_complete(out.data, out.len,
			    NULL), "a built message is complete");
			/* Cut short anywhere, a multipart message is not. */
			if (spec.html != NULL)
				for (size_t cut = out.len; cut-- > 0;
				    cut = cut > 64 ? cut - cut / 8 - 1 : cut)
					FUZZ_ASSERT(!mime_message_complete(out.data,
					    cut, NULL), "a cut message is incomplete");
		} else
			FUZZ_ASSERT(err != NULL && out.len == 0,
			    "a refusal says why and writes nothing");
		free(err);
		buf_free(&out);
	}
	free(copy);
	return 0;
}
