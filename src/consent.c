/* consent: opt-outs, signed unsubscribe tokens and frequency caps for marketing mail. */
#include "consent.h"
#include "log.h"
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_MIN	32	/* bytes of the secret's first line */
#define SECRET_MAX	4096
#define MAC_LEN		32	/* SHA-256 */
#define TOKEN_DOMAIN	"followupd-unsubscribe-v1"

struct consent {
	unsigned char	*key;
	size_t		 len;
};

int
consent_class_ok(const char *cls)
{
	return cls != NULL && (strcmp(cls, "marketing") == 0 ||
	    strcmp(cls, "transactional") == 0 || strcmp(cls, "all") == 0);
}

char *
consent_secret_path(const struct config *cfg)
{
	if (cfg->unsubscribe_secret_file != NULL)
		return xstrdup(cfg->unsubscribe_secret_file);
	return xasprintf("%s/unsubscribe.key", cfg->queue_dir);
}

/* 32 random bytes as hex, written durably and 0600 (never replaces a file). */
static int
secret_create(const char *path, char **err)
{
	unsigned char rnd[32];
	char hex[2 * sizeof(rnd) + 2];
	const char *what;
	int r, e;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		set_err(err, "%s: getrandom: %s", path, strerror(errno));
		return FU_TEMPFAIL;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	hex[2 * sizeof(rnd)] = '\n';
	hex[2 * sizeof(rnd) + 1] = '\0';
	explicit_bzero(rnd, sizeof(rnd));
	r = util_write_atomic(path, hex, strlen(hex), 0600, UTIL_NOREPLACE,
	    &what);
	e = errno;
	explicit_bzero(hex, sizeof(hex));
	if (r == -1 && e == EEXIST)
		return FU_OK;	/* made by another process meanwhile */
	if (r == -1) {
		/* Not made at all: a permission or a path to fix. Made, not
		 * written: the disk (full, I/O) may do better later. */
		int made = strcmp(what, "create") != 0 &&
		    strcmp(what, "open directory") != 0;

		set_err(err, "%s: cannot %s the unsubscribe secret: %s", path,
		    made ? "write" : "create", strerror(e));
		return made ? FU_TEMPFAIL : FU_PERMFAIL;
	}
	log_info("consent: created the unsubscribe secret %s", path);
	return FU_OK;
}

/*
 * The secret's first line, read through one descriptor that is checked
 * itself (no window between a check and the use): never through a
 * symlink, never blocking on a FIFO, a regular file of ours or root's
 * (read as root before the drop to [queue] user) that nobody else can
 * read. A root-owned secret is read again after the drop through the
 * descriptor kept from the start (util_secret_open).
 */
static int
secret_read(const char *path, struct buf *b, char **err)
{
	struct stat sb;
	char chunk[512];
	int fd, replaced, r = FU_PERMFAIL;
	ssize_t n;

	if ((fd = util_secret_open(path, UTIL_NOFOLLOW, &replaced)) == -1) {
		set_err(err, "%s: unsubscribe secret: %s%s", path,
		    errno == ELOOP ? "a symbolic link (refused: name the file "
		    "itself)" : strerror(errno), replaced ? "; the file was "
		    "replaced since start: restart followupd" : "");
		return FU_PERMFAIL;
	}
	if (fstat(fd, &sb) == -1) {
		set_err(err, "%s: unsubscribe secret: %s", path, strerror(errno));
		goto done;
	}
	if (!S_ISREG(sb.st_mode) || (sb.st_mode & 077) != 0) {
		set_err(err, "%s: the unsubscribe secret must be a regular file "
		    "readable by its owner only (chmod 600)", path);
		goto done;
	}
	if (sb.st_uid != geteuid() && sb.st_uid != 0) {
		set_err(err, "%s: the unsubscribe secret is owned by uid %u, "
		    "neither us (uid %u) nor root: chown it", path,
		    (unsigned)sb.st_uid, (unsigned)geteuid());
		goto done;
	}
	while (b->len <= SECRET_MAX && (n = read(fd, chunk, sizeof(chunk))) !=
	    0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			set_err(err, "%s: unsubscribe secret: read: %s", path,
			    strerror(errno));
			goto done;
		}
		buf_append(b, chunk, (size_t)n);
	}
	r = FU_OK;
done:
	explicit_bzero(chunk, sizeof(chunk));
	close(fd);
	return r;
}

int
consent_open(const struct config *cfg, int create, struct consent **out,
    char **err)
{
	char *path = consent_secret_path(cfg);
	struct buf b = { 0 };
	struct stat sb;
	struct consent *c;
	size_t n;
	int r;

	*out = NULL;
	if (create && lstat(path, &sb) == -1 && errno == ENOENT &&
	    (r = secret_create(path, err)) != FU_OK) {
		free(path);
		return r;
	}
	if ((r = secret_read(path, &b, err)) != FU_OK) {
		if (b.data != NULL)
			explicit_bzero(b.data, b.len);
		buf_free(&b);
		free(path);
		return r;
	}
	n = strcspn(buf_cstr(&b), "\r\n");
	if (n < SECRET_MIN || n > SECRET_MAX) {
		set_err(err, "%s: the unsubscribe secret's first line must be "
		    "%d to %d bytes", path, SECRET_MIN, SECRET_MAX);
		if (b.data != NULL)
			explicit_bzero(b.data, b.len);
		buf_free(&b);
		free(path);
		return FU_PERMFAIL;
	}
	c = xcalloc(1, sizeof(*c));
	c->key = xmalloc(n);
	memcpy(c->key, b.data, n);
	c->len = n;
	explicit_bzero(b.data, b.len);
	buf_free(&b);
	free(path);
	*out = c;
	return FU_OK;
}

struct consent *
consent_ephemeral(void)
{
	struct consent *c = xcalloc(1, sizeof(*c));

	c->len = 32;
	c->key = xmalloc(c->len);
	if (getrandom(c->key, c->len, 0) != (ssize_t)c->len)
		fatal("consent: getrandom");
	return c;
}

const unsigned char *
consent_secret(const struct consent *c, size_t *len)
{
	*len = c->len;
	return c->key;
}

void
consent_free(struct consent *c)
{
	if (c == NULL)
		return;
	explicit_bzero(c->key, c->len);
	free(c->key);
	free(c);
}

/* ---- tokens ---- */

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void
b64url_encode(const unsigned char *p, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16;

		if (i + 1 < n)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		buf_putc(out, b64url[(v >> 18) & 63]);
		buf_putc(out, b64url[(v >> 12) & 63]);
		if (i + 1 < n)
			buf_putc(out, b64url[(v >> 6) & 63]);
		if (i + 2 < n)
			buf_putc(out, b64url[v & 63]);
	}
}

/* Unpadded base64url; -1 for anything else (a stray '=' or '+' too). */
static int
b64url_decode(const char *s, size_t n, struct buf *out)
{
	unsigned v = 0;
	int bits = 0;

	if (n % 4 == 1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *c = memchr(b64url, s[i], 64);

		if (c == NULL || s[i] == '\0')
			return -1;
		v = (v << 6) | (unsigned)(c - b64url);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf_putc(out, (char)((v >> bits) & 0xff));
		}
	}
	/* The unused low bits of the last character must be zero. */
	if (bits > 0 && (v & ((1u << bits) - 1)) != 0)
		return -1;
	return 0;
}

static void
lower_addr(const char *addr, struct buf *out)
{
	for (const char *p = addr; *p; p++)
		buf_putc(out, (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') :
		    *p);
}

static void
token_mac(const struct consent *c, const char *addr, size_t alen,
    const char *cls, unsigned char mac[MAC_LEN])
{
	struct buf msg = { 0 };
	unsigned int mlen = MAC_LEN;

	buf_append(&msg, TOKEN_DOMAIN, sizeof(TOKEN_DOMAIN));	/* with NUL */
	buf_append(&msg, addr, alen);
	buf_putc(&msg, '\0');
	buf_puts(&msg, cls);
	if (HMAC(EVP_sha256(), c->key, (int)c->len,
	    (const unsigned char *)msg.data, msg.len, mac, &mlen) == NULL ||
	    mlen != MAC_LEN)
		fatalx("consent: HMAC-SHA-256 failed");
	buf_free(&msg);
}

void
consent_mac(const struct consent *c, const char *purpose, const void *data,
    size_t len, unsigned char mac[CONSENT_MAC_LEN])
{
	struct buf msg = { 0 };
	unsigned int mlen = CONSENT_MAC_LEN;

	buf_append(&msg, purpose, strlen(purpose) + 1);	/* with NUL */
	buf_append(&msg, data, len);
	if (HMAC(EVP_sha256(), c->key, (int)c->len,
	    (const unsigned char *)msg.data, msg.len, mac, &mlen) == NULL ||
	    mlen != CONSENT_MAC_LEN)
		fatalx("consent: HMAC-SHA-256 failed");
	buf_free(&msg);
}

char *
consent_token(const struct consent *c, const char *addr, const char *cls)
{
	struct buf a = { 0 }, t = { 0 };
	unsigned char mac[MAC_LEN];

	lower_addr(addr, &a);
	token_mac(c, a.data ? a.data : "", a.len, cls, mac);
	b64url_encode((const unsigned char *)buf_cstr(&a), a.len, &t);
	buf_printf(&t, ".%s.", cls);
	b64url_encode(mac, sizeof(mac), &t);
	buf_free(&a);
	return buf_steal(&t);
}

int
consent_token_check(const struct consent *c, const char *token, char **addr,
    char **cls)
{
	const char *d1, *d2;
	struct buf a = { 0 }, m = { 0 };
	unsigned char want[MAC_LEN];
	char clsbuf[16];
	size_t n;
	int ok = 0;

	*addr = *cls = NULL;
	if (token == NULL || (n = strlen(token)) == 0 || n > CONSENT_TOKEN_MAX ||
	    (d1 = strchr(token, '.')) == NULL ||
	    (d2 = strchr(d1 + 1, '.')) == NULL ||
	    (size_t)(d2 - d1 - 1) >= sizeof(clsbuf))
		return FU_PERMFAIL;
	memcpy(clsbuf, d1 + 1, (size_t)(d2 - d1 - 1));
	clsbuf[d2 - d1 - 1] = '\0';
	if (!consent_class_ok(clsbuf) ||
	    b64url_decode(token, (size_t)(d1 - token), &a) == -1 ||
	    b64url_decode(d2 + 1, strlen(d2 + 1), &m) == -1 ||
	    m.len != MAC_LEN || a.len == 0 || a.len > 254 ||
	    memchr(a.data, '\0', a.len) != NULL || strchr(a.data, '@') == NULL)
		goto done;
	token_mac(c, a.data, a.len, clsbuf, want);
	if (CRYPTO_memcmp(want, m.data, MAC_LEN) != 0)
		goto done;
	/* The token signs the lower-cased address only: no other spelling. */
	for (size_t i = 0; i < a.len; i++)
		if (a.data[i] >= 'A' && a.data[i] <= 'Z')
			goto done;
	ok = 1;
	*addr = buf_steal(&a);
	*cls = xstrdup(clsbuf);
done:
	buf_free(&a);
	buf_free(&m);
	return ok ? FU_OK : FU_PERMFAIL;
}

char *
consent_unsubscribe_url(const struct config *cfg, const struct consent *c,
    const char *addr, const char *cls)
{
	char *tok = consent_token(c, addr, cls);
	char *url = xasprintf("%s?t=%s", cfg->unsubscribe_url ?
	    cfg->unsubscribe_url : "https://unsubscribe.invalid/", tok);

	free(tok);
	return url;
}

char *
consent_mailto(const struct config *cfg, const char *addr, const char *cls)
{
	(void)addr;
	/* The desk reads these; the sender's address says who. */
	return xasprintf("mailto:%s?subject=unsubscribe%%20%s",
	    cfg->unsubscribe_mailto ? cfg->unsubscribe_mailto : cfg->from_addr,
	    cls);
}

/* ---- the opt-out list ---- */

int
consent_optout_add(struct store *st, const char *addr, const char *cls,
    const char *reason, time_t now, int *added, char **err)
{
	return store_optout_add(st, addr, cls, reason, now, added, err);
}

int
consent_optout_remove(struct store *st, const char *addr, const char *cls,
    int *removed, char **err)
{
	if (cls != NULL && strcmp(cls, "suppressed") == 0)
		return store_suppression_remove(st, addr, removed, err);
	return store_optout_remove(st, addr, cls, removed, err);
}

/* ---- the queue's state database ---- */

int
consent_store_open(const struct config *cfg, struct store **st, char **err)
{
	char *path = store_path(cfg->queue_dir);
	struct spool *sp;
	int r;

	/* The queue directory may not exist yet on a fresh install. */
	if ((r = spool_open(cfg->queue_dir, &sp, err)) == FU_OK) {
		spool_close(sp);
		r = store_open(path, cfg->busy_timeout_ms, st, err);
	}
	free(path);
	return r;
}
