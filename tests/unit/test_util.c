/* test_util: the growable buffer, UTF-8, HTML escaping, durable writes. */
#include "util.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
test_html(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "", "" },
		{ "plain text", "plain text" },
		{ "<b>&amp;\"x\"'", "&lt;b&gt;&amp;amp;&quot;x&quot;&#39;" },
		{ "a<", "a&lt;" },
		{ ">a", "&gt;a" },
		{ "caf\xc3\xa9 & co", "caf\xc3\xa9 &amp; co" },
	};
	struct buf b = { 0 };
	size_t n;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&b);
		util_html_escape(&b, cases[i].in);
		tap_str(buf_cstr(&b), cases[i].want, "html escape case %zu", i);
	}
	buf_reset(&b);
	util_html_escape(&b, NULL);
	tap_str(buf_cstr(&b), "", "html escape of NULL is empty");
	tap_ok(util_html_span("abc<d", 5) == 3 && util_html_span("abc", 3) == 3,
	    "html span stops at the first character to escape");
	tap_ok(util_html_entity('x', &n) == NULL && n == 0 &&
	    strcmp(util_html_entity('"', &n), "&quot;") == 0 && n == 6,
	    "html entity");
	buf_free(&b);
}

static char *
slurp(const char *path)
{
	struct buf b = { 0 };

	if (read_file(path, &b, NULL) != FU_OK)
		return NULL;
	return buf_steal(&b);
}

static void
test_durable(void)
{
	char dir[] = "/tmp/test_util.XXXXXX", path[300], tmp[300], link[300];
	const char *what = NULL;
	struct stat sb;
	char *v;
	int dfd;

	if (mkdtemp(dir) == NULL) {
		tap_ok(0, "mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/feed.ics", dir);
	snprintf(tmp, sizeof(tmp), "%s/.feed.ics.tmp", dir);
	tap_ok(util_write_atomic(path, "one\n", 4, 0640, 0, &what) == 0 &&
	    stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0640,
	    "atomic write: a new file with the caller's mode");
	v = slurp(path);
	tap_str(v, "one\n", "atomic write: its content");
	free(v);
	/* A crash's leftover temporary file does not block the next write. */
	dfd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
	close(dfd);
	tap_ok(util_write_atomic(path, "two\n", 4, 0640, 0, &what) == 0 &&
	    access(tmp, F_OK) == -1, "atomic write: replaces, no tmp left");
	v = slurp(path);
	tap_str(v, "two\n", "atomic write: the new content");
	free(v);
	tap_ok(util_write_atomic(path, "three\n", 6, 0600, UTIL_NOREPLACE,
	    &what) == -1 && errno == EEXIST && strcmp(what, "rename") == 0 &&
	    access(tmp, F_OK) == -1, "atomic write, no replace: EEXIST");
	v = slurp(path);
	tap_str(v, "two\n", "atomic write, no replace: the old file kept");
	free(v);
	snprintf(link, sizeof(link), "%s/nodir/x", dir);
	tap_ok(util_write_atomic(link, "x", 1, 0600, 0, &what) == -1 &&
	    errno == ENOENT && strcmp(what, "open directory") == 0,
	    "atomic write: a missing directory says so");

	/* util_write_new: O_EXCL and O_NOFOLLOW; an existing file is kept. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	tap_ok(util_write_new(dfd, "new", "abc", 3, 0600, 1, &what) == 0 &&
	    fstatat(dfd, "new", &sb, 0) == 0 && sb.st_size == 3 &&
	    (sb.st_mode & 0777) == 0600, "write new: created 0600");
	tap_ok(util_write_new(dfd, "new", "x", 1, 0600, 1, &what) == -1 &&
	    errno == EEXIST && strcmp(what, "create") == 0 &&
	    fstatat(dfd, "new", &sb, 0) == 0 && sb.st_size == 3,
	    "write new: an existing file is left alone");
	tap_ok(symlinkat("new", dfd, "sym") == 0 &&
	    util_write_new(dfd, "sym", "x", 1, 0600, 1, &what) == -1 &&
	    errno == EEXIST, "write new: never through a symlink");
	unlinkat(dfd, "sym", 0);
	unlinkat(dfd, "new", 0);
	close(dfd);
	unlink(path);
	rmdir(dir);
}

static void
test_json(void)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	util_json_str(f, "a\"b\\c\n\t\r\x01\x7f<x> \xc3\xa9");
	fputc(' ', f);
	util_json_str(f, "bad \xff");
	fputc(' ', f);
	util_json_str(f, NULL);
	fclose(f);
	tap_ok(strcmp(out, "\"a\\\"b\\\\c\\n\\t\\r\\u0001\\u007f\\u003cx> "
	    "\xc3\xa9\" \"bad \xef\xbf\xbd\" null") == 0,
	    "json: quotes, controls and '<' escaped, UTF-8 kept, bad bytes U+FFFD");
	free(out);
}

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
	test_html();
	test_durable();
	test_json();
	return tap_done();
}
