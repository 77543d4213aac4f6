/* log: OpenBSD-style logging to stderr (foreground) or syslog. */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

static int log_foreground = 1;
static int log_verbose;
static void (*log_stderr_hook)(void);

void
log_init(int foreground, int verbose)
{
	log_foreground = foreground;
	log_verbose = verbose;
	if (!foreground)
		openlog("followupd", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

int
log_verbose_on(void)
{
	return log_verbose;
}

int
log_to_stderr(void)
{
	return log_foreground;
}

void
log_set_stderr_hook(void (*hook)(void))
{
	log_stderr_hook = hook;
}

static int
is_atext(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c && strchr(".!#$%&'*+/=?^_`{|}~-", c));
}

static int
is_domain_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '-';
}

/*
 * Above debug level a line never names a mailbox: "ana@example.com" (in a
 * server's reply, an error, anywhere) becomes "@example.com". Our own
 * Message-IDs ("followupd.…@", "preview.…@") are kept: they identify a
 * message, not a person. In place; the result is never longer.
 */
void
log_scrub_addresses(char *msg)
{
	char *w = msg;

	for (char *p = msg; *p; ) {
		if (*p == '@' && p > msg && is_atext((unsigned char)p[-1]) &&
		    is_domain_char((unsigned char)p[1])) {
			char *start = w;

			/* w mirrors p: the local part was just copied. */
			while (start > msg && is_atext((unsigned char)start[-1]))
				start--;
			if (strncmp(start, "followupd.", 10) != 0 &&
			    strncmp(start, "preview.", 8) != 0)
				w = start;
		}
		*w++ = *p++;
	}
	*w = '\0';
}

void
log_ctrl_name(unsigned int c, char out[5])
{
	if (c >= 0x80)		/* C1 (U+0080–U+009F): cat -v's "M-^X" */
		snprintf(out, 5, "M-^%c", (char)((c - 0x80) ^ 0x40));
	else
		snprintf(out, 5, "^%c", (char)(c ^ 0x40));	/* ^[ ^? */
}

/*
 * A log line is one line, and reaches a terminal or a syslog reader: no
 * control character (CR, LF, ESC, C1 …) gets through as itself. TAB stays.
 */
static void
clean_line(const char *in, char *out, size_t outsz)
{
	size_t o = 0;
	char name[5];

	for (const unsigned char *p = (const unsigned char *)in; *p &&
	    o + 5 < outsz; p++) {
		unsigned int c = *p;

		if (c == '\n' || c == '\r') {
			out[o++] = ' ';
			continue;
		}
		if (c == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			c = *++p;
		else if ((c >= 0x20 && c != 0x7f) || c == '\t') {
			out[o++] = (char)c;
			continue;
		}
		log_ctrl_name(c, name);
		for (char *n = name; *n; n++)
			out[o++] = *n;
	}
	out[o] = '\0';
}

static void
vlog(int pri, const char *fmt, va_list ap, int with_errno)
{
	char raw[4096], msg[4096 + 64];
	int saved = errno;

	vsnprintf(raw, sizeof(raw), fmt, ap);
	if (with_errno) {
		size_t n = strlen(raw);
		snprintf(raw + n, sizeof(raw) - n, ": %s", strerror(saved));
	}
	clean_line(raw, msg, sizeof(msg));
	if (pri != LOG_DEBUG)
		log_scrub_addresses(msg);
	if (log_foreground) {
		if (log_stderr_hook != NULL)
			log_stderr_hook();
		fprintf(stderr, "followupd: %s\n", msg);
		fflush(stderr);
	} else
		syslog(pri, "%s", msg);
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, fmt, ap, 1);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, fmt, ap, 0);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_INFO, fmt, ap, 0);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, fmt, ap, 0);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap, 1);
	va_end(ap);
	exit(70);	/* EX_SOFTWARE */
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap, 0);
	va_end(ap);
	exit(70);	/* EX_SOFTWARE */
}
