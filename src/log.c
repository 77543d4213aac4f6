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

static void
vlog(int pri, const char *fmt, va_list ap, int with_errno)
{
	char msg[4096];
	int saved = errno;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (with_errno) {
		size_t n = strlen(msg);
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(saved));
	}
	/* A log line is one line: never let a value split it. */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
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
