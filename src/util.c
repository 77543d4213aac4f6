/* util: result codes, a growable byte buffer, checked allocation. */
#include "util.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
