/* term: what followupd prints never carries a terminal control character. */
#include "term.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * One guarded descriptor. A CR or a 0xC2 (the first byte of a UTF-8 C1
 * control) at the end of a write waits for the next byte: "\r\n" passes,
 * "\r" alone does not, and 0xC2 0x9B (CSI) is a control, 0xC2 0xA9 (©) not.
 */
struct guard {
	int	fd;
	int	pending;	/* '\r', 0xc2, or -1 */
};

static struct guard out_guard = { 1, -1 }, err_guard = { 2, -1 };
static FILE *guarded_out, *guarded_err;

static int
emit(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static void
put_name(char *out, size_t *o, unsigned int c)
{
	char name[5];

	log_ctrl_name(c, name);
	memcpy(out + *o, name, strlen(name));
	*o += strlen(name);
}

static ssize_t
guard_write(void *cookie, const char *buf, size_t size)
{
	struct guard *g = cookie;
	char out[4096 + 16];
	size_t o = 0;

	for (size_t i = 0; i < size; i++) {
		unsigned int c = (unsigned char)buf[i];

		if (g->pending == '\r') {
			g->pending = -1;
			if (c == '\n') {
				out[o++] = '\r';
				out[o++] = '\n';
				goto next;
			}
			put_name(out, &o, '\r');
		} else if (g->pending == 0xc2) {
			g->pending = -1;
			if (c >= 0x80 && c <= 0x9f) {
				put_name(out, &o, c);
				goto next;
			}
			out[o++] = (char)0xc2;
		}
		if (c == '\r' || c == 0xc2)
			g->pending = (int)c;
		else if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
			put_name(out, &o, c);
		else
			out[o++] = (char)c;
next:
		if (o >= sizeof(out) - 16) {
			if (emit(g->fd, out, o) == -1)
				return -1;
			o = 0;
		}
	}
	if (o > 0 && emit(g->fd, out, o) == -1)
		return -1;
	return (ssize_t)size;
}

/* What waits at the very end goes out as it is judged alone. */
static void
guard_settle(struct guard *g)
{
	char out[8];
	size_t o = 0;

	if (g->pending == '\r')
		put_name(out, &o, '\r');
	else if (g->pending == 0xc2)
		out[o++] = (char)0xc2;
	g->pending = -1;
	if (o > 0)
		(void)emit(g->fd, out, o);
}

static void
at_exit(void)
{
	if (guarded_out != NULL)
		fflush(guarded_out);
	if (guarded_err != NULL)
		fflush(guarded_err);
	guard_settle(&out_guard);
	guard_settle(&err_guard);
}

void
term_guard_stdio(void)
{
	cookie_io_functions_t io = { .write = guard_write };
	FILE *o, *e;

	if (guarded_out != NULL)
		return;
	fflush(stdout);
	fflush(stderr);
	o = fopencookie(&out_guard, "w", io);
	e = fopencookie(&err_guard, "w", io);
	if (o == NULL || e == NULL) {
		if (o != NULL)
			fclose(o);
		if (e != NULL)
			fclose(e);
		return;		/* out of memory at start: unguarded */
	}
	/* As the standard streams would be: stderr unbuffered, stdout by
	 * lines on a terminal. */
	setvbuf(o, NULL, isatty(1) ? _IOLBF : _IOFBF, BUFSIZ);
	setvbuf(e, NULL, _IONBF, 0);
	guarded_out = stdout = o;
	guarded_err = stderr = e;
	atexit(at_exit);
}

void
term_control(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	if (guarded_err != NULL)
		fflush(guarded_err);
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		(void)emit(2, buf, (size_t)n < sizeof(buf) ? (size_t)n :
		    sizeof(buf) - 1);
}
