/* test_ratepage: the rating form's strict decoding and the comment's limits. */
#include "ratepage.h"
#include "tap.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
test_form(void)
{
	static const struct {
		const char	*body, *key;
		const char	*want;	/* NULL: absent or bad */
		int		 bad;
	} cases[] = {
		{ "score=4&comment=hi", "score", "4", 0 },
		{ "score=4&comment=hi", "comment", "hi", 0 },
		{ "comment=a+b%2Bc%26d%3D", "comment", "a b+c&d=", 0 },
		{ "comment=%C3%A9t%C3%A9", "comment", "\xc3\xa9t\xc3\xa9", 0 },
		{ "comment=", "comment", "", 0 },
		{ "xcomment=1&comment=2", "comment", "2", 0 },
		{ "commentary=1", "comment", NULL, 0 },
		{ "score=4", "comment", NULL, 0 },
		{ "", "comment", NULL, 0 },
		{ "comment", "comment", NULL, 0 },
		{ "comment=%ZZ", "comment", NULL, 1 },
		{ "comment=%4", "comment", NULL, 1 },
		{ "comment=%", "comment", NULL, 1 },
		{ "comment=%4&x=1", "comment", NULL, 1 },
		{ "comment=a%00b", "comment", NULL, 1 },
		{ "comment=%FF", "comment", NULL, 1 },
		{ "comment=%C3", "comment", NULL, 1 },
		{ "comment=%ED%A0%80", "comment", NULL, 1 },	/* a surrogate */
		{ "comment=%C0%AF", "comment", NULL, 1 },	/* overlong */
		{ "score=%ZZ&comment=ok", "comment", "ok", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int bad = -1;
		char *v = ratepage_form_value(cases[i].body, cases[i].key, &bad);

		if (cases[i].want != NULL)
			tap_ok(v != NULL && strcmp(v, cases[i].want) == 0 &&
			    bad == 0, "form '%s' %s: '%s'", cases[i].body,
			    cases[i].key, cases[i].want);
		else
			tap_ok(v == NULL && bad == cases[i].bad, "form '%s' %s: "
			    "%s", cases[i].body, cases[i].key, cases[i].bad ?
			    "malformed" : "absent");
		free(v);
	}
}

static void
test_comment(void)
{
	struct buf b = { 0 }, s = { 0 };

	tap_ok(ratepage_comment("a\r\nb\rc\nd\te <script>", &b) == 0 &&
	    strcmp(buf_cstr(&b), "a\nb\nc\nd\te <script>") == 0,
	    "CRLF and CR become LF; TAB and markup kept as typed");
	buf_reset(&b);
	for (int i = 0; i < RATEPAGE_COMMENT_MAX; i++)
		buf_puts(&s, "\xe2\x82\xac");		/* € */
	tap_ok(ratepage_comment(s.data, &b) == 0 && b.len == s.len,
	    "2,000 three-byte characters are kept");
	buf_reset(&b);
	buf_putc(&s, 'x');
	buf_puts(&b, "keep");
	tap_ok(ratepage_comment(s.data, &b) == -1 &&
	    strcmp(buf_cstr(&b), "keep") == 0,
	    "2,001 characters are refused, nothing appended");
	buf_reset(&b);
	buf_reset(&s);
	for (int i = 0; i < RATEPAGE_COMMENT_MAX; i++)
		buf_puts(&s, "\r\n");
	tap_ok(ratepage_comment(s.data, &b) == 0 && b.len ==
	    RATEPAGE_COMMENT_MAX, "CRLF counts as one character");
	buf_reset(&b);
	tap_ok(ratepage_comment("a\x1b[31mred", &b) == -1 && b.len == 0,
	    "an escape character is refused");
	tap_ok(ratepage_comment("a\x7f", &b) == -1, "DEL is refused");
	tap_ok(ratepage_comment("", &b) == 0 && b.len == 0, "empty is fine");
	buf_free(&b);
	buf_free(&s);
}

int
main(void)
{
	test_form();
	test_comment();
	return tap_done();
}
