/* log: OpenBSD-style logging to stderr (foreground) or syslog. */
#ifndef FOLLOWUPD_LOG_H
#define FOLLOWUPD_LOG_H

#include <stdarg.h>

/*
 * Messages are tagged by the caller ("spool: rename %s: ..."). Never log a
 * password, a token or a message body. log_warn appends strerror(errno).
 */
void	log_init(int foreground, int verbose);	/* verbose: 1 enables debug */
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
