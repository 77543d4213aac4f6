/* log: OpenBSD-style logging to stderr (foreground) or syslog. */
#ifndef FOLLOWUPD_LOG_H
#define FOLLOWUPD_LOG_H

#include <stdarg.h>

/*
 * Messages are tagged by the caller ("spool: rename %s: ..."). Never log a
 * password, a token or a message body. log_warn appends strerror(errno).
 */
void	log_init(int foreground, int verbose);	/* verbose: 1 enables debug */
int	log_verbose_on(void);		/* 1 when debug lines are written */
int	log_to_stderr(void);		/* 1 in the foreground (not syslog) */
/*
 * Called before each line written to stderr, so a transient terminal line
 * (progress.c) can be wiped first; NULL removes it. Not called for syslog.
 */
void	log_set_stderr_hook(void (*)(void));
/*
 * cat -v's visible name of a control character c (C0 "^[", DEL "^?", or a
 * C1 code point U+0080–U+009F "M-^["), NUL-terminated. Every log line has
 * its control characters so replaced (CR and LF: a space), as has what a
 * command prints (term.h).
 */
void	log_ctrl_name(unsigned int c, char out[5]);
/* What every line above debug gets: "a@b.example" → "@b.example" (in place). */
void	log_scrub_addresses(char *);
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
