/* util: result codes, a growable byte buffer, checked allocation. */
#ifndef FOLLOWUPD_UTIL_H
#define FOLLOWUPD_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Every call that can fail returns one of these. TEMPFAIL: try again later
 * (I/O error, SMTP 4xx, timeout, SQLite busy). PERMFAIL: retrying will not
 * help (SMTP 5xx, invalid data, a bad config line).
 */
enum fu_result {
	FU_OK = 0,
	FU_TEMPFAIL = 1,
	FU_PERMFAIL = 2,
};

/* Growable, always NUL-terminated byte buffer. Zero-initialise to use. */
struct buf {
	char	*data;
	size_t	 len;
	size_t	 cap;
};

void	 buf_reserve(struct buf *, size_t extra);
void	 buf_append(struct buf *, const void *, size_t);
void	 buf_puts(struct buf *, const char *);
void	 buf_putc(struct buf *, char);
void	 buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	 buf_vprintf(struct buf *, const char *, va_list)
	    __attribute__((format(printf, 2, 0)));
void	 buf_reset(struct buf *);		/* len = 0, keeps memory */
void	 buf_free(struct buf *);
char	*buf_steal(struct buf *);		/* caller frees; buf is reset */
const char *buf_cstr(struct buf *);		/* "" when empty */

/* Allocation failure is fatal: a mail daemon cannot run without memory. */
void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
char	*xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

/*
 * Error strings: functions that fail store an allocated message in *err
 * (when err is not NULL); the caller frees it. set_err replaces any
 * previous message.
 */
void	 set_err(char **err, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

/* Whole-file read into a NUL-terminated buffer. */
int	 read_file(const char *path, struct buf *out, char **err);

/* UTF-8 validation: 1 when s[0..len) is valid UTF-8 (no overlongs, no surrogates). */
int	 utf8_valid(const char *s, size_t len);

/*
 * Make untrusted text safe for a message body: invalid UTF-8 becomes
 * U+FFFD, CRLF and lone CR become LF, NUL and other C0 controls except TAB
 * and LF are dropped, and the text is cut at `max` bytes on a character
 * boundary (with "…"). Appends to out.
 */
void	 utf8_sanitize(const char *s, size_t len, size_t max, struct buf *out);

/*
 * HTML escaping, the one place it is decided: & < > " ' become entities
 * (what Mustache's {{x}} escapes). util_html_escape appends s escaped;
 * util_html_span gives the length of the longest prefix of s[0..len) that
 * needs none, util_html_entity the entity of a character that does (its
 * length in *n), for callers that copy runs themselves (mustache.c).
 */
void	 util_html_escape(struct buf *, const char *s);
size_t	 util_html_span(const char *s, size_t len);
const char *util_html_entity(unsigned char c, size_t *n);

/*
 * Durable writes (STYLE.md habit 3). All return 0, or -1 with errno set
 * and *what naming the step that failed ("create", "write", "fsync",
 * "close", "rename", "fsync directory").
 *
 * util_write_all: all of data to fd (EINTR and short writes retried).
 * util_write_new: create NAME in the directory dirfd (AT_FDCWD: the
 * current one) with O_CREAT|O_EXCL|O_NOFOLLOW and `mode`, write data,
 * fsync it when `sync`, close. A file it created is unlinked again on any
 * failure; an existing NAME is left alone (EEXIST, step "create").
 * util_write_atomic: the file at path replaced at once: data goes to
 * ".NAME.tmp" beside it (util_write_new, fsync'd; a leftover of a crash is
 * removed first, so one writer per path at a time), renamed over path and
 * the directory fsync'd. A reader sees the old file or the new one, never
 * a part. With UTIL_NOREPLACE an existing file at path is kept: EEXIST,
 * step "rename".
 */
#define UTIL_NOREPLACE	0x1

/*
 * Open a secret file read-only: never blocking on a FIFO (O_NONBLOCK; the
 * caller fstat()s the descriptor and refuses what is no regular file),
 * never through a symlink with UTIL_NOFOLLOW. The first descriptor opened
 * for a path is kept for the life of the process, so a secret read as root
 * at start is read again after the drop to [queue] user: when opening is
 * then refused (EACCES, EPERM), through a copy of the kept one, rewound.
 * Not when the path now names another file (*replaced = 1: a restart
 * reads it). -1 with errno when it cannot be opened.
 */
#define UTIL_NOFOLLOW	0x2
int	 util_secret_open(const char *path, int flags, int *replaced);
int	 util_write_all(int fd, const void *data, size_t len);
int	 util_write_new(int dirfd, const char *name, const void *data,
	    size_t len, mode_t mode, int sync, const char **what);
int	 util_write_atomic(const char *path, const void *data, size_t len,
	    mode_t mode, int flags, const char **what);

/*
 * Test hook for the crash test (tests/crash/run.py): when the environment
 * has FOLLOWUPD_CRASHPOINT=NAME or NAME:N, the Nth call (default the first)
 * of util_crashpoint(NAME) kills the process with SIGKILL, as a power cut
 * would at that instant. Unset (always, in production): a getenv per call.
 * Points: render (a message built, not yet in the spool), spool (messages
 * in new/, jobs still planned), sending (jobs marked sending, nothing sent),
 * reply (the relay's reply read, the outcome not yet recorded), recorded
 * (outcome committed, spool file not yet removed).
 */
void	 util_crashpoint(const char *name);

/*
 * Write s as a JSON string to f (NULL: null): quotes, backslash, control
 * characters and '<' escaped; invalid UTF-8 becomes U+FFFD.
 */
void	util_json_str(FILE *f, const char *s);

#endif
