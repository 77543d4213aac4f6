/* util: result codes, a growable byte buffer, checked allocation. */
#include "util.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		fatal("malloc");
	return p;
}

void *
xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);

	if (p == NULL)
		fatal("calloc");
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		fatal("realloc");
	return p;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	struct buf b = { 0 };
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	return buf_steal(&b);
}

void
set_err(char **err, const char *fmt, ...)
{
	struct buf b = { 0 };
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	free(*err);
	*err = buf_steal(&b);
}

void
buf_reserve(struct buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;

	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}

void
buf_append(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void
buf_putc(struct buf *b, char c)
{
	buf_append(b, &c, 1);
}

void
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list aq;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		fatalx("vsnprintf: bad format");
	buf_reserve(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *
buf_steal(struct buf *b)
{
	char *p = b->data ? b->data : xstrdup("");

	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

const char *
buf_cstr(struct buf *b)
{
	return b->data ? b->data : "";
}

int
read_file(const char *path, struct buf *out, char **err)
{
	char chunk[65536];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		set_err(err, "%s: %s", path, strerror(errno));
		return errno == ENOENT || errno == EACCES ? FU_PERMFAIL :
		    FU_TEMPFAIL;
	}
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			set_err(err, "%s: read: %s", path, strerror(errno));
			close(fd);
			return FU_TEMPFAIL;
		}
		if (n == 0)
			break;
		buf_append(out, chunk, (size_t)n);
	}
	close(fd);
	buf_reserve(out, 0);	/* NUL-terminated even when empty */
	out->data[out->len] = '\0';
	return FU_OK;
}

int
utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		unsigned int cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else
			return 0;
		if (i + n >= len)	/* truncated sequence */
			return 0;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t
utf8_seq(const char *s, size_t len)
{
	unsigned char c = (unsigned char)s[0];
	size_t n;

	if (c < 0x80)
		return 1;
	n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 :
	    c >= 0xf0 && c <= 0xf4 ? 4 : 0;
	if (n == 0 || n > len)
		return 0;
	return utf8_valid(s, n) ? n : 0;
}

void
utf8_sanitize(const char *s, size_t len, size_t max, struct buf *out)
{
	size_t i = 0, start = out->len;

	while (i < len) {
		size_t n = utf8_seq(s + i, len - i);
		unsigned char c = (unsigned char)s[i];

		if (out->len - start > max)
			break;		/* enough to know it will be cut */
		if (n == 0) {
			buf_puts(out, "\xef\xbf\xbd");	/* U+FFFD */
			i++;
		} else if (c == '\r') {
			buf_putc(out, '\n');
			i += (i + 1 < len && s[i + 1] == '\n') ? 2 : 1;
		} else if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) {
			i++;
		} else {
			buf_append(out, s + i, n);
			i += n;
		}
	}
	if (out->len - start > max) {
		/* Cut on a character boundary, leaving room for the ellipsis. */
		size_t cut = start + (max >= 3 ? max - 3 : 0);

		while (cut > start && (out->data[cut] & 0xc0) == 0x80)
			cut--;
		out->len = cut;
		buf_puts(out, "\xe2\x80\xa6");	/* … */
	}
}

void
util_crashpoint(const char *name)
{
	static long hits;
	const char *want = getenv("FOLLOWUPD_CRASHPOINT");
	size_t n = strlen(name);
	long at = 1;

	if (want == NULL || strncmp(want, name, n) != 0 ||
	    (want[n] != '\0' && want[n] != ':'))
		return;
	if (want[n] == ':')
		at = strtol(want + n + 1, NULL, 10);
	if (++hits >= at) {
		log_warnx("crashpoint %s: SIGKILL (FOLLOWUPD_CRASHPOINT)", name);
		raise(SIGKILL);
	}
}

/* ---- HTML escaping ---- */

static const char *const html_ent[256] = {
	['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;", ['"'] = "&quot;",
	['\''] = "&#39;",
};
static const unsigned char html_len[256] = {
	['&'] = 5, ['<'] = 4, ['>'] = 4, ['"'] = 6, ['\''] = 5,
};

size_t
util_html_span(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (html_len[(unsigned char)s[i]] != 0)
			break;
	return i;
}

const char *
util_html_entity(unsigned char c, size_t *n)
{
	*n = html_len[c];
	return html_ent[c];
}

void
util_html_escape(struct buf *out, const char *s)
{
	size_t len = s ? strlen(s) : 0, run, n = 0;
	const char *ent;

	while (len > 0) {
		run = util_html_span(s, len);
		buf_append(out, s, run);
		if (run == len)
			break;
		ent = util_html_entity((unsigned char)s[run], &n);
		buf_append(out, ent, n);
		s += run + 1;
		len -= run + 1;
	}
}

/* ---- durable writes ---- */

int
util_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0) {	/* should not happen for a regular file */
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
util_write_new(int dirfd, const char *name, const void *data, size_t len,
    mode_t mode, int sync, const char **what)
{
	int fd, e;

	*what = "create";
	fd = openat(dirfd, name, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY |
	    O_CLOEXEC, mode);
	if (fd == -1)
		return -1;
	*what = "write";
	if (util_write_all(fd, data, len) == -1)
		goto fail;
	*what = "fsync";
	if (sync && fsync(fd) == -1)
		goto fail;
	*what = "close";	/* NFS reports deferred write errors here */
	e = close(fd);
	fd = -1;
	if (e == -1)
		goto fail;
	return 0;
fail:
	e = errno;
	if (fd != -1)
		close(fd);
	if (unlinkat(dirfd, name, 0) == -1)
		log_warn("util: unlink %s after a failed %s", name, *what);
	errno = e;
	return -1;
}

/* fsync a directory; a file system that cannot (EINVAL) is no failure. */
static int
fsync_dir(int dfd)
{
	return fsync(dfd) == -1 && errno != EINVAL ? -1 : 0;
}

/* tmp → name in dfd; with UTIL_NOREPLACE never over an existing name. */
static int
rename_into(int dfd, const char *tmp, const char *name, int flags)
{
	if (!(flags & UTIL_NOREPLACE))
		return renameat(dfd, tmp, dfd, name);
	if (renameat2(dfd, tmp, dfd, name, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL)
		return -1;
	/* A file system without RENAME_NOREPLACE: a link fails on EEXIST too. */
	if (linkat(dfd, tmp, dfd, name, 0) == -1)
		return -1;
	(void)unlinkat(dfd, tmp, 0);
	return 0;
}

int
util_write_atomic(const char *path, const void *data, size_t len,
    mode_t mode, int flags, const char **what)
{
	char *dcopy = xstrdup(path), *ncopy = xstrdup(path), *tmp = NULL;
	const char *name = basename(ncopy);
	int dfd, r = -1, e = 0;

	*what = "open directory";
	if ((dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1) {
		e = errno;
		goto done;
	}
	tmp = xasprintf(".%s.tmp", name);
	if ((r = util_write_new(dfd, tmp, data, len, mode, 1, what)) == -1 &&
	    errno == EEXIST && strcmp(*what, "create") == 0 &&
	    unlinkat(dfd, tmp, 0) == 0)	/* a crash's leftover */
		r = util_write_new(dfd, tmp, data, len, mode, 1, what);
	if (r == -1) {
		e = errno;
		goto done;
	}
	r = -1;
	*what = "rename";
	if (rename_into(dfd, tmp, name, flags) == -1) {
		e = errno;
		(void)unlinkat(dfd, tmp, 0);
		goto done;
	}
	*what = "fsync directory";
	if (fsync_dir(dfd) == -1) {
		e = errno;
		goto done;
	}
	r = 0;
done:
	if (dfd != -1)
		close(dfd);
	free(tmp);
	free(dcopy);
	free(ncopy);
	errno = e;
	return r;
}

/* Secret files kept open (util_secret_open): a few per process. */
#define KEPT_MAX	8
static struct {
	char	*path;
	int	 fd;
} kept[KEPT_MAX];

int
util_secret_open(const char *path, int flags, int *replaced)
{
	struct stat st, now;
	int fd, i, err;

	*replaced = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
	    (flags & UTIL_NOFOLLOW ? O_NOFOLLOW : 0));
	err = errno;
	for (i = 0; i < KEPT_MAX && kept[i].path != NULL; i++)
		if (strcmp(kept[i].path, path) == 0)
			break;
	if (fd != -1) {
		if (i < KEPT_MAX && kept[i].path == NULL &&
		    (kept[i].fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) != -1)
			kept[i].path = xstrdup(path);
		return fd;
	}
	if ((err != EACCES && err != EPERM) || i == KEPT_MAX ||
	    kept[i].path == NULL)
		goto fail;
	if (fstat(kept[i].fd, &st) == -1 || stat(path, &now) == -1 ||
	    now.st_dev != st.st_dev || now.st_ino != st.st_ino) {
		*replaced = 1;
		goto fail;
	}
	if ((fd = fcntl(kept[i].fd, F_DUPFD_CLOEXEC, 3)) != -1 &&
	    lseek(fd, 0, SEEK_SET) == 0)
		return fd;
	if (fd != -1)
		close(fd);
fail:
	errno = err;
	return -1;
}

/* See util.h. */
void
util_json_str(FILE *f, const char *s)
{
	struct buf clean = { 0 };

	if (s == NULL) {
		fputs("null", f);
		return;
	}
	if (!utf8_valid(s, strlen(s))) {	/* JSON is UTF-8: U+FFFD instead */
		utf8_sanitize(s, strlen(s), (size_t)1 << 30, &clean);
		s = buf_cstr(&clean);
	}
	putc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c == '\r')
			fputs("\\r", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else if (c == '<')
			fputs("\\u003c", f);	/* safe inside HTML too */
		else
			putc(c, f);
	}
	putc('"', f);
	buf_free(&clean);
}
