/* consent: opt-outs, signed unsubscribe tokens and frequency caps for marketing mail. */
#include "consent.h"
#include "clock.h"
#include "log.h"
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sysexits.h>
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
	int fd, ok;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		set_err(err, "%s: getrandom: %s", path, strerror(errno));
		return FU_TEMPFAIL;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	hex[2 * sizeof(rnd)] = '\n';
	hex[2 * sizeof(rnd) + 1] = '\0';
	explicit_bzero(rnd, sizeof(rnd));
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) ==
	    -1) {
		set_err(err, "%s: cannot create the unsubscribe secret: %s",
		    path, strerror(errno));
		return errno == EEXIST ? FU_OK : FU_PERMFAIL;
	}
	ok = write(fd, hex, strlen(hex)) == (ssize_t)strlen(hex) &&
	    fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	explicit_bzero(hex, sizeof(hex));
	if (!ok) {
		set_err(err, "%s: cannot write the unsubscribe secret: %s",
		    path, strerror(errno));
		unlink(path);
		return FU_TEMPFAIL;
	}
	log_info("consent: created the unsubscribe secret %s", path);
	return FU_OK;
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
	if (create && stat(path, &sb) == -1 && errno == ENOENT &&
	    (r = secret_create(path, err)) != FU_OK) {
		free(path);
		return r;
	}
	if (stat(path, &sb) == -1) {
		set_err(err, "%s: unsubscribe secret: %s", path, strerror(errno));
		free(path);
		return FU_PERMFAIL;
	}
	if (!S_ISREG(sb.st_mode) || (sb.st_mode & 077) != 0) {
		set_err(err, "%s: the unsubscribe secret must be a regular file "
		    "readable by its owner only (chmod 600)", path);
		free(path);
		return FU_PERMFAIL;
	}
	if ((r = read_file(path, &b, err)) != FU_OK) {
		free(path);
		buf_free(&b);
		return FU_PERMFAIL;
	}
	n = strcspn(buf_cstr(&b), "\r\n");
	if (n < SECRET_MIN || n > SECRET_MAX) {
		set_err(err, "%s: the unsubscribe secret's first line must be "
		    "%d to %d bytes", path, SECRET_MIN, SECRET_MAX);
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
	char nowtext[24];
	const char *p[] = { addr, cls, reason, nowtext, NULL };

	snprintf(nowtext, sizeof(nowtext), "%lld", (long long)now);
	return store_exec(st, "INSERT OR IGNORE INTO optouts (address, class, "
	    "reason, created_at) VALUES (?1, ?2, ?3, CAST(?4 AS INTEGER))", p,
	    added, err);
}

int
consent_optout_remove(struct store *st, const char *addr, const char *cls,
    int *removed, char **err)
{
	const char *p[] = { addr, cls, NULL };

	if (cls != NULL && strcmp(cls, "suppressed") == 0) {
		p[1] = NULL;
		return store_exec(st, "DELETE FROM suppressions WHERE address = "
		    "?1", p, removed, err);
	}
	return store_exec(st, "DELETE FROM optouts WHERE address = ?1 AND "
	    "(?2 IS NULL OR class = ?2)", p, removed, err);
}

const char *
consent_blocked(struct store *st, const char *addr, const char *cls,
    char **detail, int *tempfail, char **err)
{
	int yes;

	*tempfail = 0;
	if (store_suppressed(st, addr, &yes, err) != FU_OK) {
		*tempfail = 1;
		return NULL;
	}
	if (yes) {
		*detail = xstrdup("the address is suppressed after a permanent "
		    "failure");
		return "suppressed";
	}
	if (store_opted_out(st, addr, cls, &yes, err) != FU_OK) {
		*tempfail = 1;
		return NULL;
	}
	if (yes) {
		*detail = xasprintf("the recipient opted out of %s mail", cls);
		return "opted-out";
	}
	return NULL;
}

struct cap_arg {
	int	count;
	time_t	oldest;
};

static void
cap_row(int n, char *const *names, char *const *values, void *arg)
{
	struct cap_arg *ca = arg;

	(void)names;
	if (n >= 2) {
		ca->count = values[0] ? atoi(values[0]) : 0;
		ca->oldest = values[1] ? (time_t)strtoll(values[1], NULL, 10) : 0;
	}
}

int
consent_cap_count(struct store *st, const char *addr, const char *rule,
    long window, time_t now, int *count, time_t *oldest, char **err)
{
	struct cap_arg ca = { 0, 0 };
	char since[24];
	const char *p[] = { addr, since, rule, NULL };
	int r;

	snprintf(since, sizeof(since), "%lld", (long long)(now - window));
	r = store_query_params(st, "SELECT count(*), min(queued_at) FROM jobs "
	    "WHERE recipient = ?1 COLLATE NOCASE AND class = 'marketing' AND "
	    "state IN ('queued', 'sending', 'sent', 'deferred', 'held') AND "
	    "queued_at > CAST(?2 AS INTEGER) AND (?3 IS NULL OR rule = ?3)",
	    p, cap_row, &ca, err);
	*count = ca.count;
	*oldest = ca.oldest;
	return r;
}

/* ---- command line ---- */

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

static void
list_row(int n, char *const *names, char *const *values, void *arg)
{
	char when[24];
	long long t = n > 3 && values[3] ? strtoll(values[3], NULL, 10) : 0;

	(void)names;
	(void)arg;
	printf("%s\t%s\t%s UTC\t%s\n", values[0], values[1],
	    clock_format_sql((time_t)t, when), values[2] ? values[2] : "-");
}

static int
optout_usage(void)
{
	fputs("usage: followupd optout add EMAIL [--class marketing|"
	    "transactional|all] [--reason TEXT]\n"
	    "       followupd optout remove EMAIL [--class marketing|"
	    "transactional|all|suppressed]\n"
	    "       followupd optout list\n", stderr);
	return EX_USAGE;
}

int
consent_cmd_optout(const struct config *cfg, int argc, char **argv)
{
	const char *cls = NULL, *reason = NULL, *addr = NULL;
	struct store *st;
	char *err = NULL;
	int r, n = 0, add, list;

	if (argc < 1)
		return optout_usage();
	add = strcmp(argv[0], "add") == 0;
	list = strcmp(argv[0], "list") == 0;
	if (!add && !list && strcmp(argv[0], "remove") != 0)
		return optout_usage();
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--class") == 0 && i + 1 < argc && !list)
			cls = argv[++i];
		else if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc && add)
			reason = argv[++i];
		else if (argv[i][0] != '-' && addr == NULL && !list)
			addr = argv[i];
		else {
			fprintf(stderr, "followupd optout: unexpected argument "
			    "'%s'\n", argv[i]);
			return optout_usage();
		}
	}
	if (!list && addr == NULL)
		return optout_usage();
	if (cls != NULL && !consent_class_ok(cls) && !(!add &&
	    strcmp(cls, "suppressed") == 0)) {
		fprintf(stderr, "followupd optout: --class '%s': use marketing, "
		    "transactional or all%s\n", cls, add ? "" : " (or suppressed)");
		return EX_USAGE;
	}
	if (addr != NULL && (strchr(addr, '@') == NULL || strlen(addr) > 254)) {
		fprintf(stderr, "followupd optout: '%s' is not an address\n",
		    addr);
		return EX_DATAERR;
	}
	if ((r = consent_store_open(cfg, &st, &err)) != FU_OK) {
		fprintf(stderr, "followupd: %s\n", err);
		free(err);
		return r == FU_TEMPFAIL ? EX_TEMPFAIL : EX_CONFIG;
	}
	if (list) {
		printf("address\tclass\tsince\treason\n");
		r = store_query(st, "SELECT address, class, reason, created_at "
		    "FROM optouts UNION ALL SELECT address, 'suppressed', reason, "
		    "created_at FROM suppressions ORDER BY 1, 2", NULL, list_row,
		    NULL, &err);
	} else if (add) {
		if (cls == NULL)
			cls = "marketing";
		r = consent_optout_add(st, addr, cls, reason ? reason :
		    "added by an operator", clock_now(), &n, &err);
		if (r == FU_OK)
			printf("%s: %s for %s mail\n", addr, n ? "opted out" :
			    "already opted out", cls);
	} else {
		r = consent_optout_remove(st, addr, cls, &n, &err);
		if (r == FU_OK)
			printf("%s: %d %s removed\n", addr, n, cls != NULL &&
			    strcmp(cls, "suppressed") == 0 ? "suppression" :
			    n == 1 ? "opt-out" : "opt-outs");
	}
	if (r != FU_OK)
		fprintf(stderr, "followupd optout: %s\n", err);
	free(err);
	store_close(st);
	return r == FU_OK ? EX_OK : r == FU_TEMPFAIL ? EX_TEMPFAIL : EX_DATAERR;
}

/* ---- why ---- */

struct why {
	struct store	*st;
	int		 njobs;
	char		**addrs;	/* recipients met, for their opt-outs */
	int		 naddrs;
};

static void
event_row(int n, char *const *names, char *const *values, void *arg)
{
	char when[24];
	long long t = values[0] ? strtoll(values[0], NULL, 10) : 0;

	(void)names;
	(void)arg;
	printf("    %s UTC  %s%s%s\n", clock_format_sql((time_t)t, when),
	    values[1], n > 2 && values[2] ? ": " : "", n > 2 && values[2] ?
	    values[2] : "");
}

/* One line that answers "why (not)": the job's decision in words. */
static void
decision(const char *state, const char *reason, const char *due,
    const char *updated, const char *reply, struct buf *out)
{
	char a[24], b[24];
	long long d = due ? strtoll(due, NULL, 10) : 0;
	long long u = updated ? strtoll(updated, NULL, 10) : 0;

	if (strcmp(state, "sent") == 0)
		buf_printf(out, "sent at %s UTC", clock_format_sql((time_t)u, a));
	else if (strcmp(state, "cancelled") == 0)
		buf_printf(out, "cancelled because %s", reason ? reason : "?");
	else if (strcmp(state, "failed") == 0)
		buf_printf(out, "failed: %s%s%s", reason ? reason : "?",
		    reply ? ": " : "", reply ? reply : "");
	else if (strcmp(state, "planned") == 0)
		buf_printf(out, "planned, due %s UTC", clock_format_sql((time_t)d,
		    b));
	else
		buf_printf(out, "%s%s%s", state, reply ? ": " : "", reply ? reply :
		    "");
}

static void
job_row(int n, char *const *names, char *const *values, void *arg)
{
	struct why *w = arg;
	struct buf d = { 0 };
	const char *p[] = { values[0], NULL };
	const char *addr = values[7];

	(void)names;
	(void)n;
	w->njobs++;
	decision(values[4], values[5], values[6], values[8], values[9], &d);
	printf("job %s  %s (%s)  %s %s  to %s: %s\n", values[0], values[1],
	    values[10] ? values[10] : "transactional", values[2], values[3],
	    addr ? addr : "-", buf_cstr(&d));
	buf_free(&d);
	store_query_params(w->st, "SELECT at, event, detail FROM events WHERE "
	    "job_id = CAST(?1 AS INTEGER) ORDER BY id", p, event_row, NULL, NULL);
	if (addr != NULL) {
		for (int i = 0; i < w->naddrs; i++)
			if (strcasecmp(w->addrs[i], addr) == 0)
				return;
		w->addrs = xrealloc(w->addrs, (size_t)(w->naddrs + 1) *
		    sizeof(*w->addrs));
		w->addrs[w->naddrs++] = xstrdup(addr);
	}
}

static void
consent_row(int n, char *const *names, char *const *values, void *arg)
{
	char when[24];
	long long t = values[2] ? strtoll(values[2], NULL, 10) : 0;

	(void)names;
	(void)n;
	(*(int *)arg)++;
	printf("  %s since %s UTC%s%s\n", values[0], clock_format_sql((time_t)t,
	    when), values[1] ? ": " : "", values[1] ? values[1] : "");
}

int
consent_cmd_why(const struct config *cfg, int argc, char **argv)
{
	struct why w = { 0 };
	char *err = NULL;
	const char *who;
	int r, byaddr;

	if (argc != 1 || argv[0][0] == '\0' || argv[0][0] == '-') {
		fputs("usage: followupd why EMAIL|CUSTOMER_ID\n", stderr);
		return EX_USAGE;
	}
	who = argv[0];
	byaddr = strchr(who, '@') != NULL;
	if ((r = consent_store_open(cfg, &w.st, &err)) != FU_OK) {
		fprintf(stderr, "followupd: %s\n", err);
		free(err);
		return r == FU_TEMPFAIL ? EX_TEMPFAIL : EX_CONFIG;
	}
	if (byaddr) {
		w.addrs = xcalloc(1, sizeof(*w.addrs));
		w.addrs[w.naddrs++] = xstrdup(who);
	}
	{
		/* Columns in the order job_row reads them. */
		const char *p[] = { who, NULL };

		r = store_query_params(w.st, byaddr ?
		    "SELECT id, rule, 'subject ' || subject, occurrence, state, "
		    "reason, due_at, coalesce(recipient, email), updated_at, "
		    "last_reply, class FROM jobs WHERE coalesce(recipient, email) "
		    "= ?1 COLLATE NOCASE ORDER BY id" :
		    "SELECT id, rule, 'subject ' || subject, occurrence, state, "
		    "reason, due_at, coalesce(recipient, email), updated_at, "
		    "last_reply, class FROM jobs WHERE customer = ?1 ORDER BY id",
		    p, job_row, &w, &err);
	}
	if (r == FU_OK) {
		if (w.njobs == 0)
			printf("no job for %s %s\n", byaddr ? "address" :
			    "customer", who);
		for (int i = 0; i < w.naddrs; i++) {
			const char *p[] = { w.addrs[i], NULL };
			int rows = 0;

			printf("consent of %s:\n", w.addrs[i]);
			store_query_params(w.st, "SELECT 'opted out of ' || class, "
			    "reason, created_at FROM optouts WHERE address = ?1 "
			    "UNION ALL SELECT 'suppressed (all mail)', reason, "
			    "created_at FROM suppressions WHERE address = ?1",
			    p, consent_row, &rows, NULL);
			if (rows == 0)
				printf("  no opt-out, not suppressed\n");
		}
	} else
		fprintf(stderr, "followupd why: %s\n", err);
	for (int i = 0; i < w.naddrs; i++)
		free(w.addrs[i]);
	free(w.addrs);
	free(err);
	store_close(w.st);
	return r == FU_OK ? (w.njobs ? EX_OK : EX_NOINPUT) :
	    r == FU_TEMPFAIL ? EX_TEMPFAIL : EX_DATAERR;
}
