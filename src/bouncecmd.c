/* bouncecmd: `followupd bounce`: one decision per returned message, recorded in state.db. */
#include "bouncecmd.h"
#include "consent.h"
#include "log.h"
#include "store.h"
#include "verp.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAILDIR_MAX	10000	/* messages looked at per run */

struct bouncecmd {
	const struct config	*cfg;
	struct store		*st;		/* NULL: explain without state.db */
	struct consent		*consent;	/* NULL: no secret, no VERP */
	char			 return_local[65];
	struct bounce_opts	 opts;
};

int
bouncecmd_open(const struct config *cfg, int explain, struct bouncecmd **out,
    char **err)
{
	struct bouncecmd *b = xcalloc(1, sizeof(*b));
	char *path = store_path(cfg->queue_dir), *cerr = NULL;
	const char *rp = cfg->bounces_return_path, *at;
	int r = FU_OK;

	*out = NULL;
	b->cfg = cfg;
	if (!explain || access(path, F_OK) == 0)
		r = explain ? store_open(path, cfg->busy_timeout_ms, &b->st, err) :
		    consent_store_open(cfg, &b->st, err);
	free(path);
	if (r != FU_OK) {
		free(b);
		return r;
	}
	/* Without the secret nothing verifies: Message-IDs still match. */
	if (consent_open(cfg, 0, &b->consent, &cerr) != FU_OK) {
		if (rp != NULL && !explain)
			log_warnx("bounce: %s: VERP tokens cannot be checked", cerr);
		free(cerr);
	}
	if (rp != NULL && (at = strrchr(rp, '@')) != NULL &&
	    (size_t)(at - rp) < sizeof(b->return_local)) {
		memcpy(b->return_local, rp, (size_t)(at - rp));
		b->opts.return_local = b->return_local;
	}
	b->opts.delimiter = cfg->bounces_delimiter ? cfg->bounces_delimiter[0] :
	    '+';
	*out = b;
	return FU_OK;
}

void
bouncecmd_close(struct bouncecmd *b)
{
	if (b == NULL)
		return;
	store_close(b->st);
	consent_free(b->consent);
	free(b);
}

void
bouncecmd_rows_free(struct bouncecmd_row *rows, int n)
{
	for (int i = 0; i < n; i++) {
		free(rows[i].source);
		free(rows[i].recipient);
		free(rows[i].reason);
	}
	free(rows);
}

/*
 * The job a report names: a VERP token that verifies, else a quoted
 * Message-ID we sent. *id 0 when none (or the job is gone).
 */
static int
match(struct bouncecmd *b, const struct bounce_report *r, struct job *j,
    int64_t *id, const char **by, char **err)
{
	int64_t cand;
	int rc;

	*id = 0;
	*by = NULL;
	if (b->st == NULL)
		return FU_OK;
	for (size_t i = 0; b->consent != NULL && i < r->ntokens; i++) {
		if (verp_check(b->consent, r->tokens[i], &cand) != FU_OK)
			continue;
		if ((rc = store_job_get(b->st, cand, j, err)) == FU_OK) {
			*id = cand;
			*by = "verp";
			return FU_OK;
		}
		if (rc == FU_TEMPFAIL)
			return rc;
		free(*err);
		*err = NULL;
	}
	for (size_t i = 0; i < r->nids; i++) {
		if ((rc = store_job_by_message_id(b->st, r->ids[i], &cand, err)) !=
		    FU_OK)
			return rc;
		if (cand == 0)
			continue;
		if ((rc = store_job_get(b->st, cand, j, err)) != FU_OK)
			return rc;
		*id = cand;
		*by = "message-id";
		return FU_OK;
	}
	return FU_OK;
}

static int
severity(enum bounce_kind k)
{
	static const int rank[BOUNCE_NKINDS] = { 0, 5, 4, 2, 3, 1 };

	return rank[k];
}

/*
 * The recipient a decision is about: the job's own address when the
 * report names it, else the most severe (an alias may have been expanded
 * on the way). NULL when the report names no one.
 */
static const struct bounce_rcpt *
acting(const struct bounce_report *r, const char *addr)
{
	const struct bounce_rcpt *best = NULL;

	for (size_t i = 0; addr != NULL && i < r->nrcpt; i++)
		if (r->rcpt[i].recipient != NULL &&
		    strcasecmp(r->rcpt[i].recipient, addr) == 0)
			return &r->rcpt[i];
	for (size_t i = 0; i < r->nrcpt; i++)
		if (best == NULL || severity(r->rcpt[i].kind) > severity(best->kind))
			best = &r->rcpt[i];
	return best;
}

static int
parse(struct bouncecmd *b, const char *source, const char *msg, size_t len,
    struct bounce_report **r, char **err)
{
	struct bounce_opts o = b->opts;
	char *perr = NULL;

	if (strcmp(source, "stdin") == 0) {
		o.env[0] = getenv("ORIGINAL_RECIPIENT");
		o.env[1] = getenv("RECIPIENT");
	}
	if (bounce_parse(msg, len, &o, r, &perr) != FU_OK) {
		set_err(err, "%s: %s", source, perr);
		free(perr);
		return FU_PERMFAIL;
	}
	return FU_OK;
}

int
bouncecmd_explain(struct bouncecmd *b, const char *source, const char *msg,
    size_t len, struct bouncecmd_row **rows, int *n, char **err)
{
	struct bounce_report *r;
	struct job j = { 0 };
	const char *by;
	int64_t id;
	int rc;

	if ((rc = parse(b, source, msg, len, &r, err)) != FU_OK)
		return rc;
	if ((rc = match(b, r, &j, &id, &by, err)) != FU_OK) {
		bounce_report_free(r);
		return rc;
	}
	for (size_t i = 0; i < (r->nrcpt ? r->nrcpt : 1); i++) {
		struct bouncecmd_row *x;

		*rows = xrealloc(*rows, (size_t)(*n + 1) * sizeof(**rows));
		x = &(*rows)[(*n)++];
		memset(x, 0, sizeof(*x));
		x->source = xstrdup(source);
		x->job = id;
		x->matched_by = by;
		if (r->nrcpt == 0) {
			x->kind = r->kind;
			x->reason = xstrdup("");
			continue;
		}
		x->recipient = r->rcpt[i].recipient ?
		    xstrdup(r->rcpt[i].recipient) : NULL;
		memcpy(x->status, r->rcpt[i].status, sizeof(x->status));
		x->kind = r->rcpt[i].kind;
		x->reason = xstrdup(r->rcpt[i].reason);
	}
	store_job_clear(&j);
	bounce_report_free(r);
	return FU_OK;
}

/* What one matched report does to its job and address, in the transaction. */
struct act {
	struct bouncecmd	*b;
	const struct job	*job;
	const char		*addr;
	const struct bounce_rcpt *rc;
	enum bounce_kind	 kind;
	int64_t			 bounce_id;
	time_t			 now;
};

static int
act_hard(struct act *a, const char **decision, char **err)
{
	const char *st = a->rc && a->rc->status[0] ? a->rc->status : "";
	const char *why = a->rc ? a->rc->reason : "";
	char *reason = xasprintf("hard bounce%s%s", *st ? " " : "", st);
	char *sup = xasprintf("%s (job %lld, bounce %lld)%s%s", reason,
	    (long long)a->job->id, (long long)a->bounce_id, *why ? ": " : "",
	    why);
	int r = FU_OK;

	*decision = "suppressed";
	if (a->job->state == JOB_SENT) {
		r = store_job_bounced(a->b->st, a->job->id, reason, *why ? why :
		    NULL, a->now, err);
		*decision = "bounced";
	}
	if (r == FU_OK)
		r = store_suppress(a->b->st, a->addr, sup, a->now, err);
	free(reason);
	free(sup);
	return r;
}

static int
act_soft(struct act *a, const char **decision, char **err)
{
	const struct config *cfg = a->b->cfg;
	char *sup;
	int n, r;

	*decision = "soft";
	if ((r = store_bounce_soft_count(a->b->st, a->addr, a->now -
	    cfg->bounces_soft_window, &n, err)) != FU_OK ||
	    n < cfg->bounces_soft_limit)
		return r;
	sup = xasprintf("%d soft bounces in %ld days (job %lld, bounce %lld): "
	    "%s", n, cfg->bounces_soft_window / 86400, (long long)a->job->id,
	    (long long)a->bounce_id, a->rc ? a->rc->reason : "");
	r = store_suppress(a->b->st, a->addr, sup, a->now, err);
	free(sup);
	*decision = "suppressed";
	return r;
}

static int
act_complaint(struct act *a, const char **decision, char **err)
{
	const char *cls = a->b->cfg->bounces_complaint == CONFIG_COMPLAINT_ALL ?
	    "all" : "marketing";
	int added;

	*decision = "opted-out";
	return consent_optout_add(a->b->st, a->addr, cls, "complaint (ARF)",
	    a->now, &added, err);
}

static const char *
unmatched_decision(enum bounce_kind k)
{
	return k == BOUNCE_AUTO_REPLY ? "auto-reply" : k == BOUNCE_NONE ?
	    "ignored" : "unmatched";
}

/* Record the message, act on its job, log the decision: one transaction. */
static int
decide(struct bouncecmd *b, const char *source, const struct bounce_report *r,
    time_t now, const char **decision, char **err)
{
	struct job j = { 0 };
	struct act a = { b, &j, NULL, NULL, r->kind, 0, now };
	struct store_bounce row = { 0 };
	const char *by;
	int64_t id;
	int rc, seen = 0;

	if ((rc = store_begin(b->st, err)) != FU_OK)
		return rc;
	/* Handled before (a Maildir run cut short before the move): once. */
	if (r->message_id != NULL && (rc = store_bounce_seen(b->st,
	    r->message_id, &seen, err)) != FU_OK)
		goto fail;
	if (seen) {
		store_rollback(b->st);
		*decision = "duplicate";
		log_info("bounce: %s: handled before (Message-ID <%s>): nothing "
		    "more to do", source, r->message_id);
		return FU_OK;
	}
	if ((rc = match(b, r, &j, &id, &by, err)) != FU_OK)
		goto fail;
	a.addr = id != 0 ? j.recipient : NULL;
	if ((a.rc = acting(r, a.addr)) != NULL)
		a.kind = a.rc->kind;
	if (a.addr == NULL && a.rc != NULL)
		a.addr = a.rc->recipient;
	*decision = unmatched_decision(a.kind);
	if (id != 0 && j.recipient != NULL && (a.kind == BOUNCE_POLICY ||
	    a.kind == BOUNCE_AUTO_REPLY || a.kind == BOUNCE_NONE))
		*decision = a.kind == BOUNCE_POLICY ? "policy" : *decision;
	row = (struct store_bounce){ id, a.addr, bounce_kind_name(a.kind),
	    a.rc && a.rc->status[0] ? a.rc->status : NULL, a.rc ? a.rc->reason :
	    NULL, by, *decision, source, r->message_id };
	if ((rc = store_bounce_add(b->st, &row, now, &a.bounce_id, err)) != FU_OK)
		goto fail;
	if (id != 0 && j.recipient != NULL) {
		if (a.kind == BOUNCE_HARD)
			rc = act_hard(&a, decision, err);
		else if (a.kind == BOUNCE_SOFT)
			rc = act_soft(&a, decision, err);
		else if (a.kind == BOUNCE_COMPLAINT)
			rc = act_complaint(&a, decision, err);
		if (rc == FU_OK && strcmp(*decision, row.decision) != 0)
			rc = store_bounce_decision(b->st, a.bounce_id, *decision,
			    err);
		if (rc == FU_OK) {
			char *ev = xasprintf("%s%s%s, %s (matched by %s, bounce "
			    "%lld): %s", bounce_kind_name(a.kind), row.status ? " " :
			    "", row.status ? row.status : "", *decision, by,
			    (long long)a.bounce_id, row.reason ? row.reason : "");

			rc = store_event(b->st, id, now, "bounce", ev, err);
			free(ev);
		}
		if (rc != FU_OK)
			goto fail;
	}
	if ((rc = store_commit(b->st, err)) != FU_OK)
		goto fail;
	if (a.kind == BOUNCE_POLICY)
		log_warnx("bounce: %s: the receiver refused our mail (policy%s%s): "
		    "%s; job %lld: %s", source, row.status ? " " : "",
		    row.status ? row.status : "", row.reason ? row.reason : "",
		    (long long)id, *decision);
	else
		log_info("bounce: %s: %s%s%s, job %lld%s%s%s: %s", source,
		    row.kind, row.status ? " " : "", row.status ? row.status : "",
		    (long long)id, by ? " (" : "", by ? by : "", by ? ")" : "",
		    *decision);
	store_job_clear(&j);
	return FU_OK;
fail:
	store_rollback(b->st);
	store_job_clear(&j);
	return rc;
}

int
bouncecmd_handle(struct bouncecmd *b, const char *source, const char *msg,
    size_t len, time_t now, const char **decision, char **err)
{
	struct bounce_report *r;
	int rc;

	*decision = "not-a-message";
	if ((rc = parse(b, source, msg, len, &r, err)) != FU_OK) {
		struct store_bounce row = { 0, NULL, "none", NULL, *err, NULL,
		    "not-a-message", source, NULL };
		char *e2 = NULL;

		log_warnx("bounce: %s", *err);
		if (store_bounce_add(b->st, &row, now, NULL, &e2) != FU_OK) {
			log_warnx("bounce: %s", e2);
			free(e2);
		}
		return FU_PERMFAIL;
	}
	rc = decide(b, source, r, now, decision, err);
	bounce_report_free(r);
	return rc;
}

int
bouncecmd_read_fd(int fd, struct buf *out, char **err)
{
	char chunk[65536];
	ssize_t n;

	for (;;) {
		if ((n = read(fd, chunk, sizeof(chunk))) == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			set_err(err, "read: %s", strerror(errno));
			return FU_TEMPFAIL;
		}
		if (n == 0)
			break;
		if (out->len < BOUNCE_MESSAGE_MAX)
			buf_append(out, chunk, (size_t)n);
	}
	buf_reserve(out, 0);
	out->data[out->len] = '\0';
	return FU_OK;
}

/* "NAME" or "NAME:2,FLAGS" → "NAME:2,S" plus the flags it had (sorted). */
static char *
seen_name(const char *name)
{
	const char *info = strstr(name, ":2,");
	size_t base = info ? (size_t)(info - name) : strlen(name);
	struct buf b = { 0 };
	int s = 0;

	buf_append(&b, name, base);
	buf_puts(&b, ":2,");
	for (const char *f = info ? info + 3 : ""; *f; f++) {
		if (*f > 'S' && !s) {
			buf_putc(&b, 'S');
			s = 1;
		}
		if (*f == 'S')
			s = 1;
		buf_putc(&b, *f);
	}
	if (!s)
		buf_putc(&b, 'S');
	return buf_steal(&b);
}

static int
by_name(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* One file of dir/new: handled, then moved to dir/cur. */
static int
maildir_one(struct bouncecmd *b, const char *dir, const char *name,
    time_t now, char **err)
{
	char *from = xasprintf("%s/new/%s", dir, name), *seen = seen_name(name);
	char *to = xasprintf("%s/cur/%s", dir, seen), *src;
	const char *decision;
	struct buf m = { 0 };
	int fd, r;

	if ((fd = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		set_err(err, "%s: %s", from, strerror(errno));
		r = errno == ENOENT ? FU_OK : FU_TEMPFAIL;	/* gone: fine */
		goto out;
	}
	r = bouncecmd_read_fd(fd, &m, err);
	close(fd);
	if (r != FU_OK)
		goto out;
	src = xasprintf("new/%s", name);
	r = bouncecmd_handle(b, src, m.data, m.len, now, &decision, err);
	free(src);
	if (r == FU_TEMPFAIL)
		goto out;
	if (r == FU_PERMFAIL) {		/* kept as not-a-message: move on */
		free(*err);
		*err = NULL;
	}
	if (rename(from, to) == -1) {
		set_err(err, "rename %s to %s: %s", from, to, strerror(errno));
		r = FU_TEMPFAIL;
	} else
		r = FU_OK;
out:
	buf_free(&m);
	free(from);
	free(to);
	free(seen);
	return r;
}

int
bouncecmd_maildir(struct bouncecmd *b, const char *dir, time_t now,
    int *handled, char **err)
{
	char *newdir = xasprintf("%s/new", dir), **names = NULL;
	struct dirent *de;
	size_t n = 0;
	DIR *d;
	int r = FU_OK;

	*handled = 0;
	if ((d = opendir(newdir)) == NULL) {
		set_err(err, "%s: %s (a Maildir has new/, cur/ and tmp/)", newdir,
		    strerror(errno));
		free(newdir);
		return errno == ENOENT || errno == ENOTDIR ? FU_PERMFAIL :
		    FU_TEMPFAIL;
	}
	while ((de = readdir(d)) != NULL && n < MAILDIR_MAX) {
		if (de->d_name[0] == '.')
			continue;
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), by_name);
	for (size_t i = 0; i < n; i++) {
		if (r == FU_OK && (r = maildir_one(b, dir, names[i], now, err)) ==
		    FU_OK)
			(*handled)++;
		free(names[i]);
	}
	free(names);
	free(newdir);
	return r;
}
