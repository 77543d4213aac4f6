/*
 * fuzz_ratepage: what a stranger can send the rating page.
 *
 * The input is a form body (as a POST carries it) and, after a NUL, a
 * token. Invariants: a decoded field is valid UTF-8 without NUL; a kept
 * comment has no CR, no control character but TAB and LF, and at most
 * RATEPAGE_COMMENT_MAX characters; a token is accepted only when it is the
 * very token rating_token makes for what it names (nothing else passes the
 * MAC), and re-signing that is byte-identical.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ratepage.h"
#include "rating.h"
#include "util.h"

static const unsigned char key[] = "fuzz-key-fuzz-key-fuzz-key-fuzz-key!";

static void
check_comment(const char *v)
{
	struct buf b = { 0 };
	size_t chars = 0;

	if (ratepage_comment(v, &b) == 0) {
		for (size_t i = 0; i < b.len; i++) {
			unsigned char c = (unsigned char)b.data[i];

			FUZZ_ASSERT(c != '\r' && (c >= 0x20 || c == '\t' ||
			    c == '\n') && c != 0x7f, "comment control char");
			chars += (c & 0xc0) != 0x80;
		}
		FUZZ_ASSERT(chars <= RATEPAGE_COMMENT_MAX, "comment length");
		FUZZ_ASSERT(utf8_valid(buf_cstr(&b), b.len), "comment UTF-8");
	}
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = xstrndup((const char *)data, size);	/* body up to a NUL */
	size_t blen = strlen(in);
	const char *tok = blen < size ? (const char *)data + blen + 1 : NULL;
	char *token = tok ? xstrndup(tok, size - blen - 1) : NULL;
	static const char *const keys[] = { "score", "comment", "t" };
	enum rating_scale s;
	int64_t job;
	int score;

	for (size_t k = 0; k < 3; k++) {
		int bad = 0;
		char *v = ratepage_form_value(in, keys[k], &bad);

		FUZZ_ASSERT(v == NULL || !bad, "a value and bad");
		if (v != NULL) {
			FUZZ_ASSERT(utf8_valid(v, strlen(v)), "field UTF-8");
			check_comment(v);
		}
		free(v);
	}
	if (token != NULL && rating_token_check(key, sizeof(key) - 1, token,
	    &job, &s, &score) == 0) {
		char *again = rating_token(key, sizeof(key) - 1, job, s, score);

		FUZZ_ASSERT(strcmp(again, token) == 0, "token not canonical");
		free(again);
	}
	free(token);
	free(in);
	return 0;
}
