/*
 * fuzz_bounce: bounce_parse on any bytes, as a returned message arrives
 * from anyone. Byte 0 picks the options (VERP on or off, the delimiter,
 * environment values); the rest is the message. Beyond "no crash", each
 * report is checked: a refusal says why and returns nothing; otherwise the
 * format is one of ours, every list is within its bound, a recipient is
 * NULL or a lower-cased address without space or control characters, a
 * status is an RFC 3463 code or empty, a reason is valid UTF-8 without
 * control characters and at most BOUNCE_REASON_MAX characters, a token is
 * short and has no '@', a Message-ID has no space or angle bracket, the
 * message's kind is its most severe recipient's; and the same message with
 * every line end as CRLF gives the same report.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "fuzz.h"
#include "util.h"

static int
severity(enum bounce_kind k)
{
	static const int rank[BOUNCE_NKINDS] = { 0, 5, 4, 2, 3, 1 };

	return rank[k];
}

static void
check_text(const char *s, size_t max_chars)
{
	size_t chars = 0;

	FUZZ_ASSERT(s != NULL, "a reason is never NULL");
	FUZZ_ASSERT(utf8_valid(s, strlen(s)), "a reason is UTF-8");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		FUZZ_ASSERT(*p >= 0x20 && *p != 0x7f, "no control characters");
		chars += (*p & 0xc0) != 0x80;
	}
	FUZZ_ASSERT(chars <= max_chars, "a reason is bounded");
}

static void
check_status(const char *s)
{
	int dots = 0;

	if (s[0] == '\0')
		return;
	FUZZ_ASSERT(s[0] == '2' || s[0] == '4' || s[0] == '5', "status class");
	for (const char *p = s + 1; *p; p++) {
		FUZZ_ASSERT((*p >= '0' && *p <= '9') || *p == '.', "status chars");
		dots += *p == '.';
	}
	FUZZ_ASSERT(dots == 2 && strlen(s) <= 9, "status shape");
}

static void
check_report(const struct bounce_report *r)
{
	static const char *const formats[] = { "dsn", "arf", "text",
	    "auto-reply", "none" };
	enum bounce_kind worst = BOUNCE_NONE;
	size_t i;

	for (i = 0; i < 5 && strcmp(formats[i], r->format) != 0; i++)
		;
	FUZZ_ASSERT(i < 5, "a known format");
	FUZZ_ASSERT(r->nrcpt <= BOUNCE_RECIPIENTS_MAX, "recipients bounded");
	FUZZ_ASSERT(r->ntokens <= BOUNCE_TOKENS_MAX, "tokens bounded");
	FUZZ_ASSERT(r->nids <= BOUNCE_IDS_MAX, "ids bounded");
	for (i = 0; i < r->nrcpt; i++) {
		const struct bounce_rcpt *x = &r->rcpt[i];

		FUZZ_ASSERT((unsigned)x->kind < BOUNCE_NKINDS, "a known kind");
		if (severity(x->kind) > severity(worst))
			worst = x->kind;
		check_status(x->status);
		check_text(x->reason, BOUNCE_REASON_MAX);
		if (x->recipient == NULL)
			continue;
		FUZZ_ASSERT(strchr(x->recipient, '@') != NULL &&
		    strlen(x->recipient) <= 254, "an address");
		for (const unsigned char *p = (const unsigned char *)x->recipient;
		    *p; p++)
			FUZZ_ASSERT(*p > ' ' && *p < 0x7f && !(*p >= 'A' &&
			    *p <= 'Z') && *p != '<' && *p != '>',
			    "a lower-case address without specials");
	}
	FUZZ_ASSERT(worst == r->kind || r->nrcpt == 0, "the message's kind");
	for (i = 0; i < r->ntokens; i++)
		FUZZ_ASSERT(r->tokens[i][0] != '\0' && strlen(r->tokens[i]) <= 64 &&
		    strchr(r->tokens[i], '@') == NULL, "a token");
	for (i = 0; i < r->nids; i++)
		FUZZ_ASSERT(strpbrk(r->ids[i], " \t\r\n<>") == NULL &&
		    strchr(r->ids[i], '@') != NULL, "a Message-ID");
	FUZZ_ASSERT(r->message_id == NULL || (strpbrk(r->message_id,
	    " \t\r\n<>") == NULL && strchr(r->message_id, '@') != NULL),
	    "its own Message-ID");
}

static char *
describe(const struct bounce_report *r)
{
	struct buf b = { 0 };

	buf_printf(&b, "%s %d\n", r->format, (int)r->kind);
	for (size_t i = 0; i < r->nrcpt; i++)
		buf_printf(&b, "%s %s %s %d %s\n", r->rcpt[i].recipient ?
		    r->rcpt[i].recipient : "-", r->rcpt[i].status,
		    r->rcpt[i].action ? r->rcpt[i].action : "-",
		    (int)r->rcpt[i].kind, r->rcpt[i].reason);
	for (size_t i = 0; i < r->ntokens; i++)
		buf_printf(&b, "t %s\n", r->tokens[i]);
	for (size_t i = 0; i < r->nids; i++)
		buf_printf(&b, "i %s\n", r->ids[i]);
	buf_printf(&b, "m %s\n", r->message_id ? r->message_id : "-");
	return buf_steal(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char delims[] = "+-=_";
	struct bounce_opts o = { 0 };
	struct bounce_report *r = NULL, *r2 = NULL;
	const char *msg = (const char *)data + 1;
	struct buf crlf = { 0 };
	char *err = NULL;
	int rc;

	if (size < 1)
		return 0;
	o.return_local = (data[0] & 1) ? "bounces" : NULL;
	o.delimiter = delims[(data[0] >> 1) & 3];
	if (data[0] & 8)
		o.env[0] = "bounces+1.0123456789abcdef01234567@desk.example";
	if (data[0] & 16)
		o.env[1] = "Bounces+2.x@desk.example";
	rc = bounce_parse(msg, size - 1, &o, &r, &err);
	if (rc != FU_OK) {
		FUZZ_ASSERT(rc == FU_PERMFAIL && err != NULL && r == NULL,
		    "a refusal says why and returns nothing");
		free(err);
		return 0;
	}
	FUZZ_ASSERT(r != NULL, "a report");
	check_report(r);
	for (size_t i = 0; i < size - 1; i++) {
		if (msg[i] == '\r' || msg[i] == '\n') {
			buf_append(&crlf, "\r\n", 2);
			if (msg[i] == '\r' && i + 2 < size && msg[i + 1] == '\n')
				i++;
		} else
			buf_putc(&crlf, msg[i]);
	}
	if (crlf.len <= BOUNCE_MESSAGE_MAX &&
	    bounce_parse(buf_cstr(&crlf), crlf.len, &o, &r2, NULL) == FU_OK) {
		char *a = describe(r), *b = describe(r2);

		FUZZ_ASSERT(strcmp(a, b) == 0, "line ends do not matter");
		free(a);
		free(b);
	} else
		FUZZ_ASSERT(crlf.len > BOUNCE_MESSAGE_MAX, "CRLF parses too");
	bounce_report_free(r);
	bounce_report_free(r2);
	buf_free(&crlf);
	return 0;
}
