/* test_log: log lines (stderr and syslog) carry no control character. */
#include "log.h"
#include "tap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

/*
 * The syslog path is checked by taking syslog(3)'s place: the executable's
 * definitions come before libc's, so log.c's calls land here.
 */
static char last_syslog[8192];

void
openlog(const char *ident, int option, int facility)
{
	(void)ident;
	(void)option;
	(void)facility;
}

void
syslog(int pri, const char *fmt, ...)
{
	va_list ap;

	(void)pri;
	va_start(ap, fmt);
	vsnprintf(last_syslog, sizeof(last_syslog), fmt, ap);
	va_end(ap);
}

/*
 * With _FORTIFY_SOURCE (the Debian package's hardening flags), glibc's
 * header turns syslog() into __syslog_chk(): take that place too.
 */
void	__syslog_chk(int, int, const char *, ...);

void
__syslog_chk(int pri, int flag, const char *fmt, ...)
{
	va_list ap;

	(void)pri;
	(void)flag;
	va_start(ap, fmt);
	vsnprintf(last_syslog, sizeof(last_syslog), fmt, ap);
	va_end(ap);
}

static const struct {
	const char *in, *want;
} cases[] = {
	{ "plain text", "plain text" },
	{ "clear\x1b[2Jscreen", "clear^[[2Jscreen" },
	{ "title\x1b]0;owned\x07", "title^[]0;owned^G" },
	{ "two\r\nlines", "two  lines" },
	{ "tab\tstays", "tab\tstays" },
	{ "del\x7f", "del^?" },
	{ "csi\xc2\x9b" "2J", "csiM-^[2J" },	/* U+009B, the C1 CSI */
	{ "\xc2\xa9 2026 caf\xc3\xa9", "\xc2\xa9 2026 caf\xc3\xa9" },
	{ "nul-free \x01\x1f", "nul-free ^A^_" },
};

static char *
stderr_of(const char *value)
{
	char path[] = "/tmp/followupd-test_log.XXXXXX", *out;
	int fd = mkstemp(path), saved = dup(2);
	long n;
	FILE *f;

	unlink(path);
	fflush(stderr);
	dup2(fd, 2);
	log_warnx("v=%s", value);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	f = fdopen(fd, "r");
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	out = calloc(1, (size_t)n + 1);
	if (fread(out, 1, (size_t)n, f) != (size_t)n)
		out[0] = '\0';
	fclose(f);
	return out;
}

int
main(void)
{
	char want[512];

	log_init(1, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = stderr_of(cases[i].in);

		snprintf(want, sizeof(want), "followupd: v=%s\n", cases[i].want);
		tap_str(got, want, "stderr: case %zu", i);
		free(got);
	}
	log_init(0, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		last_syslog[0] = '\0';
		log_info("v=%s", cases[i].in);
		snprintf(want, sizeof(want), "v=%s", cases[i].want);
		tap_str(last_syslog, want, "syslog: case %zu", i);
	}
	return tap_done();
}
