/* deliver: tick step 3: queued messages over SMTP, outcomes and retries. */
#include "deliver.h"
#include "consent.h"
#include "gate.h"
#include "log.h"
#include "mime.h"
#include "progress.h"
#include "smtp.h"
#include "verp.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

long
deliver_backoff(int attempts, long min_backoff, long max_backoff,
    double jitter)
{
	long delay = min_backoff > 0 ? min_backoff : 1;

	for (int i = 1; i < attempts && delay < max_backoff; i++)
		delay *= 2;
	if (delay > max_backoff)
		delay = max_backoff;
	if (jitter < 0)
		jitter = 0;
	if (jitter > 1)
		jitter = 1;
	delay += (long)((double)delay * 0.2 * (jitter - 0.5));
	return delay > 0 ? delay : 1;
}

static double
random_unit(void)
{
	unsigned int r;

	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return 0.5;
	return (double)r / 4294967295.0;
}

/*
 * A permanent answer about the address itself: 550 mailbox unavailable,
 * 551 not local, 553 name not allowed, given to RCPT. Not a 5.7.x (policy:
 * relaying denied, authentication required: our problem, not theirs), nor
 * anything after DATA (554 content rejected says nothing of the address).
 */
static int
suppress_item(const struct smtp_item *it)
{
	if (it->stage != SMTP_STAGE_RCPT)
		return 0;
	if (it->code != 550 && it->code != 551 && it->code != 553)
		return 0;
	/* 5.7.x policy, as parsed or as written in the reply text. */
	if ((it->enh_class == 5 && it->enh_subject == 7) ||
	    (strlen(it->reply) > 8 && strncmp(it->reply + 3, " 5.7.", 5) == 0))
		return 0;
	return 1;
}

/* Decide whether a queued job may still be sent; load its message. */
static int
prepare_job(const struct config *cfg, struct store *st, struct spool *sp,
    const struct job *job, time_t now, struct buf *msg,
    struct deliver_stats *stats, int *ready, char **err)
{
	struct gate_result g;
	const char *why = NULL;
	char *e = NULL;
	int r;

	*ready = 0;
	if ((r = gate_deliver(cfg, st, job, &g, err)) != FU_OK)
		return r;
	if (g.verdict != GATE_GO) {
		/* The gate's reasons, checked again at the last moment. */
		if ((r = store_job_cancel(st, job->id, g.reason, g.detail, now,
		    err)) == FU_OK) {
			stats->cancelled++;
			spool_finish(sp, job->spool_name, SPOOL_FAILED, 0, NULL);
			log_info("deliver: job %lld (%s %s): cancelled for "
			    "@%s: %s", (long long)job->id, job->rule,
			    job->subject, mime_address_domain(job->recipient),
			    g.reason);
		}
		gate_result_clear(&g);
		return r;
	}
	r = spool_read_message(sp, job->spool_name, msg, &e);
	if (r == FU_OK && !mime_message_complete(msg->data, msg->len,
	    &why)) {
		/* Cut short: never send half a message. Keep it for a human. */
		r = FU_PERMFAIL;
		set_err(&e, "%s: %s", job->spool_name, why);
	}
	if (r == FU_PERMFAIL) {
		/* Whatever is there (a cut file, a link, a directory) goes to
		 * corrupt/, never deleted; nothing there is fine too. */
		if (spool_finish(sp, job->spool_name, SPOOL_CORRUPT, 0,
		    NULL) == FU_OK)
			log_warnx("deliver: job %lld: %s moved to corrupt/",
			    (long long)job->id, job->spool_name);
	}
	if (r == FU_TEMPFAIL) {
		log_warnx("deliver: job %lld: %s: will retry", (long long)job->id,
		    e);
		free(e);
		return FU_OK;	/* stays queued */
	}
	if (r != FU_OK) {
		log_warnx("deliver: job %lld: spool file unusable (%s): "
		    "rendering it again with the same Message-ID",
		    (long long)job->id, e);
		r = store_job_replan(st, job->id, e, now, err);
		if (r == FU_OK)
			stats->replanned++;
		free(e);
		return r;
	}
	*ready = 1;
	return FU_OK;
}

/*
 * The data went, no reply came: the relay may have the message. Counted
 * (status), then the configured policy: retry it (same Message-ID: at
 * worst a second copy with the same id) or hold it for an operator (at
 * worst it never arrives; *held is 1).
 */
static int
record_unknown(const struct config *cfg, struct store *st,
    const struct job *job, const struct smtp_item *it, time_t now,
    struct deliver_stats *stats, int *held, char **err)
{
	int hold = cfg->unknown_outcome == CONFIG_UNKNOWN_HOLD, r;
	char *d = xasprintf("%s (unknown_outcome = %s)", it->reply,
	    hold ? "hold" : "retry");

	*held = 0;
	r = store_event(st, job->id, now, "unknown-outcome", d, err);
	free(d);
	if (r != FU_OK)
		return r;
	log_warnx("deliver: job %lld (%s %s): outcome unknown for @%s "
	    "(the message went, no reply came): %s", (long long)job->id,
	    job->rule, job->subject, mime_address_domain(job->recipient), hold ?
	    "held (queue release JOB to send it again)" :
	    "it will be sent again with the same Message-ID");
	if (!hold)
		return FU_OK;
	if ((r = store_job_deferred(st, job->id, it->reply, now, now, err)) !=
	    FU_OK || (r = store_job_hold(st, job->id, now, err)) != FU_OK)
		return r;
	stats->deferred++;
	*held = 1;
	return FU_OK;
}

static int
record_outcome(const struct config *cfg, struct store *st,
    const struct job *job, const struct smtp_item *it, time_t now,
    struct deliver_stats *stats, char **err)
{
	const char *domain = mime_address_domain(job->recipient);
	int r, held;

	if (it->result == FU_OK) {
		if ((r = store_job_sent(st, job->id, it->reply, now, err)) ==
		    FU_OK) {
			stats->sent++;
			log_info("deliver: job %lld (%s %s): sent to @%s: %s",
			    (long long)job->id, job->rule, job->subject, domain,
			    it->reply);
		}
		return r;
	}
	if (it->result == FU_PERMFAIL) {
		if ((r = store_job_failed(st, job->id, "rejected", it->reply,
		    now, err)) != FU_OK)
			return r;
		if (suppress_item(it) && (r = store_suppress(st,
		    job->recipient, it->reply, now, err)) != FU_OK)
			return r;
		stats->failed++;
		log_warnx("deliver: job %lld (%s %s): failed for @%s: %s%s",
		    (long long)job->id, job->rule, job->subject, domain,
		    it->reply, suppress_item(it) ?
		    " (address suppressed)" : "");
		return FU_OK;
	}
	if (it->unknown && ((r = record_unknown(cfg, st, job, it, now, stats,
	    &held, err)) != FU_OK || held))
		return r;
	if (job->queued_at && now - job->queued_at >= cfg->queue_lifetime) {
		if ((r = store_job_failed(st, job->id, "expired", it->reply,
		    now, err)) == FU_OK) {
			stats->failed++;
			log_warnx("deliver: job %lld (%s %s): expired after "
			    "%ld s in the queue; last reply: %s",
			    (long long)job->id, job->rule, job->subject,
			    (long)(now - job->queued_at), it->reply);
		}
		return r;
	}
	{
		long wait = deliver_backoff(job->attempts + 1,
		    cfg->min_backoff, cfg->max_backoff, random_unit());

		if ((r = store_job_deferred(st, job->id, it->reply, now + wait,
		    now, err)) == FU_OK) {
			stats->deferred++;
			log_info("deliver: job %lld (%s %s): deferred for @%s, "
			    "retry in %ld s: %s", (long long)job->id, job->rule,
			    job->subject, domain, wait, it->reply);
		}
	}
	return r;
}

/*
 * Parallel delivery.
 *
 * cfg->connections worker threads each run one SMTP session at a time
 * (smtp_deliver: its own libesmtp session, its own socket) over a slice of
 * at most cfg->batch messages. Everything that touches state.db or the
 * spool stays in the calling thread: it picks due jobs, reads their
 * messages and marks them `sending` in one transaction, hands the slice to
 * the pool, and records the outcomes of every slice that came back in one
 * transaction. One writer means no lock contention and no busy retries in
 * SQLite (which allows a single writer anyway), and a transaction per
 * slice instead of one per message; the pool keeps up to two slices per
 * connection in hand so no session waits for the database.
 *
 * Crash safety is as before: a job is `sending` (committed) before its
 * slice is handed out, so a kill at any moment leaves it `sending`, and
 * start-up sends it again with the same Message-ID.
 *
 * `rate` (messages per second to the relay, all connections together) is
 * a shared schedule: each message takes the next free slot 1/rate apart,
 * and its session sleeps until then before sending its data.
 */

/* The most messages held in memory per fetch (besides `batch`). */
#define DELIVER_FETCH_MAX	1000

struct pool;

struct slice {
	struct slice	*next;
	struct pool	*pool;
	struct job	*jobs;		/* owned */
	struct buf	*msgs;
	struct smtp_item *items;
	int		 n;
	int		 down;		/* no connection could be made */
	char		*err;		/* why, when down */
};

struct pool {
	const struct config *cfg;
	pthread_mutex_t	 mu;
	pthread_cond_t	 work_cv;	/* a slice to send, or quit */
	pthread_cond_t	 done_cv;	/* a slice came back */
	struct slice	*todo, **todo_tail;
	struct slice	*done;
	struct early	*early;		/* messages accepted, not yet recorded */
	struct timespec	 early_since;	/* when the first of them came */
	int		 idle;		/* the recorder waits for anything */
	int		 quit;
	pthread_t	*threads;
	int		 nthreads;
	/* rate */
	pthread_mutex_t	 rate_mu;
	struct timespec	 next_slot;
	long		 interval_ns;	/* 0: no limit */
};

/*
 * A message the relay accepted while its session goes on: the calling
 * thread records it at once (record_early), so that a crash later in the
 * session does not send it again. Only a crash between the relay's reply
 * and that commit (the end-of-data window) can make a duplicate.
 */
struct early {
	struct early	*next;
	struct slice	*sl;
	int		 i;
};

static void
slice_free(struct slice *sl)
{
	for (int i = 0; i < sl->n; i++)
		buf_free(&sl->msgs[i]);
	store_jobs_free(sl->jobs, sl->n);
	free(sl->msgs);
	free(sl->items);
	free(sl->err);
	free(sl);
}

/* The relay's rate: wait for this message's slot. */
static void
pool_pace(void *arg)
{
	struct pool *p = arg;
	struct timespec now, slot;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&p->rate_mu);
	if (p->next_slot.tv_sec < now.tv_sec || (p->next_slot.tv_sec ==
	    now.tv_sec && p->next_slot.tv_nsec < now.tv_nsec))
		p->next_slot = now;
	slot = p->next_slot;
	p->next_slot.tv_nsec += p->interval_ns;
	while (p->next_slot.tv_nsec >= 1000000000L) {
		p->next_slot.tv_nsec -= 1000000000L;
		p->next_slot.tv_sec++;
	}
	pthread_mutex_unlock(&p->rate_mu);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &slot, NULL) ==
	    EINTR)
		;
}

static void *
pool_worker(void *arg)
{
	struct pool *p = arg;
	struct slice *sl;

	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (p->todo == NULL && !p->quit)
			pthread_cond_wait(&p->work_cv, &p->mu);
		if ((sl = p->todo) == NULL) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		if ((p->todo = sl->next) == NULL)
			p->todo_tail = &p->todo;
		pthread_mutex_unlock(&p->mu);

		if (smtp_deliver_paced(&p->cfg->smtp, sl->items, (size_t)sl->n,
		    p->interval_ns ? pool_pace : NULL, p, &sl->err) != FU_OK)
			sl->down = 1;

		pthread_mutex_lock(&p->mu);
		sl->next = p->done;
		p->done = sl;
		pthread_cond_signal(&p->done_cv);
		pthread_mutex_unlock(&p->mu);
	}
}

static int
pool_start(struct pool *p, const struct config *cfg, char **err)
{
	int e;

	memset(p, 0, sizeof(*p));
	p->cfg = cfg;
	p->todo_tail = &p->todo;
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->rate_mu, NULL);
	pthread_cond_init(&p->work_cv, NULL);
	{
		/* pool_wait_grouped's deadline is on the monotonic clock. */
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&p->done_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (cfg->rate > 0)
		p->interval_ns = 1000000000L / cfg->rate;
	p->threads = xcalloc((size_t)cfg->connections, sizeof(*p->threads));
	for (int i = 0; i < cfg->connections; i++) {
		if ((e = pthread_create(&p->threads[i], NULL, pool_worker,
		    p)) != 0) {
			if (p->nthreads > 0)	/* fewer connections will do */
				break;
			set_err(err, "deliver: pthread_create: %s",
			    strerror(e));
			free(p->threads);
			pthread_cond_destroy(&p->work_cv);
			pthread_cond_destroy(&p->done_cv);
			pthread_mutex_destroy(&p->rate_mu);
			pthread_mutex_destroy(&p->mu);
			return FU_TEMPFAIL;
		}
		p->nthreads++;
	}
	return FU_OK;
}

static void
pool_stop(struct pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->quit = 1;
	pthread_cond_broadcast(&p->work_cv);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	free(p->threads);
	pthread_cond_destroy(&p->work_cv);
	pthread_cond_destroy(&p->done_cv);
	pthread_mutex_destroy(&p->rate_mu);
	pthread_mutex_destroy(&p->mu);
}

/* smtp_item.done, in a worker: hand the accepted message to the recorder. */
static void
item_accepted(struct smtp_item *it, void *arg)
{
	struct slice *sl = arg;
	struct pool *p = sl->pool;
	struct early *e = xmalloc(sizeof(*e));

	e->sl = sl;
	e->i = (int)(it - sl->items);
	pthread_mutex_lock(&p->mu);
	if (p->early == NULL)
		clock_gettime(CLOCK_MONOTONIC, &p->early_since);
	e->next = p->early;
	p->early = e;
	/* Wake the recorder only when it waits for anything at all: while
	 * it gathers a group, a wake-up per message would only cost a
	 * context switch each. */
	if (p->idle)
		pthread_cond_signal(&p->done_cv);
	pthread_mutex_unlock(&p->mu);
}

static void
pool_push(struct pool *p, struct slice *sl)
{
	sl->pool = p;
	for (int i = 0; i < sl->n; i++) {
		sl->items[i].done = item_accepted;
		sl->items[i].done_arg = sl;
	}
	pthread_mutex_lock(&p->mu);
	sl->next = NULL;
	*p->todo_tail = sl;
	p->todo_tail = &sl->next;
	pthread_cond_signal(&p->work_cv);
	pthread_mutex_unlock(&p->mu);
}

/* Record messages the relay accepted, in one transaction; tidy the spool. */
static int
record_early(const struct config *cfg, struct store *st, struct spool *sp,
    struct early *list, time_t now, struct deliver_stats *stats, char **err)
{
	const char **names;
	enum spool_fate *fates;
	size_t n = 0, k = 0;
	int r;

	if (list == NULL)
		return FU_OK;
	util_crashpoint("reply");
	if ((r = store_begin(st, err)) != FU_OK)
		return r;
	for (struct early *e = list; e != NULL; e = e->next, n++)
		if ((r = record_outcome(cfg, st, &e->sl->jobs[e->i],
		    &e->sl->items[e->i], now, stats, err)) != FU_OK) {
			store_rollback(st);
			return r;
		}
	if ((r = store_commit(st, err)) != FU_OK) {
		store_rollback(st);
		return r;
	}
	util_crashpoint("recorded");
	names = xcalloc(n, sizeof(*names));
	fates = xcalloc(n, sizeof(*fates));
	for (struct early *e = list; e != NULL; e = e->next) {
		names[k] = e->sl->jobs[e->i].spool_name;
		fates[k++] = SPOOL_SENT;
	}
	/* Committed: the files move on in the background (a crash first
	 * leaves them in new/ for start-up's tidy-up). */
	spool_finish_async(sp, names, fates, k, cfg->sent_retention > 0);
	free(names);
	free(fates);
	return FU_OK;
}

/* Cut a slice into `parts` slices of nearly equal size (a list). */
static struct slice *
split_slice(struct slice *sl, int parts)
{
	struct slice *list = NULL;

	if (parts <= 1)
		return sl;
	for (int k = 0, at = 0; k < parts; k++) {
		int len = (sl->n - at) / (parts - k);
		struct slice *p = xcalloc(1, sizeof(*p));

		p->n = len;
		p->jobs = xcalloc((size_t)len, sizeof(*p->jobs));
		p->msgs = xcalloc((size_t)len, sizeof(*p->msgs));
		p->items = xcalloc((size_t)len, sizeof(*p->items));
		memcpy(p->jobs, sl->jobs + at, (size_t)len * sizeof(*p->jobs));
		memcpy(p->msgs, sl->msgs + at, (size_t)len * sizeof(*p->msgs));
		memcpy(p->items, sl->items + at,
		    (size_t)len * sizeof(*p->items));
		at += len;
		p->next = list;
		list = p;
	}
	/* The pieces own the jobs and messages now. */
	free(sl->jobs);
	free(sl->msgs);
	free(sl->items);
	free(sl->err);
	free(sl);
	return list;
}

/* A slice of n ready jobs and their messages (it takes both arrays). */
static struct slice *
slice_new(const struct config *cfg, struct job *ready, struct buf *msgs,
    int n)
{
	struct slice *sl = xcalloc(1, sizeof(*sl));

	sl->n = n;
	sl->jobs = ready;	/* msgs[0..n) match ready[0..n) */
	sl->msgs = msgs;
	sl->items = xcalloc((size_t)n, sizeof(*sl->items));
	for (int i = 0; i < n; i++) {
		sl->items[i].sender = cfg->from_addr;
		sl->items[i].rcpt = sl->jobs[i].recipient;
		sl->items[i].data = sl->msgs[i].data;
		sl->items[i].len = sl->msgs[i].len;
	}
	return sl;
}

/*
 * The envelope sender of each job: with [bounces] return_path its own
 * return path (verp.h), so a bounce names its job; else [smtp] from.
 */
static void
envelope_senders(const struct config *cfg, const struct consent *c,
    struct slice *sl)
{
	for (int i = 0; i < sl->n; i++) {
		struct job *j = &sl->jobs[i];

		if (c != NULL && j->envelope_from == NULL)
			j->envelope_from = verp_address(c, cfg->bounces_return_path,
			    cfg->bounces_delimiter[0], j->id);
		sl->items[i].sender = j->envelope_from ? j->envelope_from :
		    cfg->from_addr;
	}
}

/*
 * Fetch up to `limit` due jobs (queued first, then deferred), read their
 * messages and mark the readable ones `sending`, in one transaction, as
 * one slice (NULL when none is ready). *none is 1 when nothing more can be
 * done this tick.
 */
static int
load_slices(const struct config *cfg, struct store *st, struct spool *sp,
    time_t now, int limit, struct deliver_stats *stats,
    struct slice **out, int *none, char **err)
{
	struct job *q = NULL, *d = NULL, *ready;
	struct consent *verp = NULL;
	struct buf *msgs;
	int nq = 0, nd = 0, n = 0, r, changed;

	*out = NULL;
	*none = 0;
	/* The secret that signs return paths, before anything is marked. */
	if (cfg->bounces_return_path != NULL &&
	    (r = consent_open(cfg, 1, &verp, err)) != FU_OK)
		return r;
	if ((r = store_jobs_due(st, JOB_QUEUED, now, limit, &q, &nq, err)) !=
	    FU_OK) {
		consent_free(verp);
		return r;
	}
	if (nq < limit && (r = store_jobs_due(st, JOB_DEFERRED, now,
	    limit - nq, &d, &nd, err)) != FU_OK) {
		store_jobs_free(q, nq);
		consent_free(verp);
		return r;
	}
	if (nq + nd == 0) {
		*none = 1;
		consent_free(verp);
		return FU_OK;
	}
	ready = xcalloc((size_t)(nq + nd), sizeof(*ready));
	msgs = xcalloc((size_t)(nq + nd), sizeof(*msgs));

	changed = stats->cancelled + stats->replanned;
	if ((r = store_begin(st, err)) != FU_OK)
		goto out;
	for (int i = 0; i < nq + nd; i++) {
		struct job *j = i < nq ? &q[i] : &d[i - nq];
		int ok;

		if ((r = prepare_job(cfg, st, sp, j, now, &msgs[n], stats,
		    &ok, err)) != FU_OK)
			goto rollback;
		if (!ok) {
			buf_reset(&msgs[n]);	/* a truncated read stays out */
			continue;
		}
		if ((r = store_job_sending(st, j->id, now, err)) != FU_OK)
			goto rollback;
		ready[n] = *j;		/* the slice takes the strings */
		memset(j, 0, sizeof(*j));
		n++;
	}
	if ((r = store_commit(st, err)) != FU_OK)
		goto rollback;
	if (n > 0)
		util_crashpoint("sending");
	/* Jobs that could not be read this time stay queued: do not loop on them. */
	if (n == 0 && changed == stats->cancelled + stats->replanned)
		*none = 1;
	if (n > 0) {
		/* Messages of jobs that were not ready were never kept. */
		for (int i = n; i < nq + nd; i++)
			buf_free(&msgs[i]);
		*out = slice_new(cfg, ready, msgs, n);
		envelope_senders(cfg, verp, *out);
		ready = NULL;
		msgs = NULL;
	}
	goto out;
rollback:
	store_rollback(st);
	for (int i = 0; i < n; i++)
		store_job_clear(&ready[i]);
out:
	for (int i = 0; msgs != NULL && i < nq + nd; i++)
		buf_free(&msgs[i]);
	free(msgs);
	free(ready);
	store_jobs_free(q, nq);
	store_jobs_free(d, nd);
	consent_free(verp);
	return r;
}

/*
 * Record the outcomes of the slices that came back, in one transaction,
 * then tidy the spool (one directory sync for them all).
 */
static int
record_slices(const struct config *cfg, struct store *st, struct spool *sp,
    struct slice *list, time_t now, struct deliver_stats *stats, char **err)
{
	const char **names;
	enum spool_fate *fates;
	size_t total = 0, k = 0;
	int r;

	for (struct slice *sl = list; sl != NULL; sl = sl->next) {
		total += (size_t)sl->n;
		if (sl->down)
			log_warnx("deliver: %s: %d message%s deferred",
			    sl->err ? sl->err : "no connection", sl->n,
			    sl->n == 1 ? "" : "s");
	}
	if ((r = store_begin(st, err)) != FU_OK)
		return r;
	for (struct slice *sl = list; sl != NULL; sl = sl->next)
		for (int i = 0; i < sl->n; i++)
			if (!sl->items[i].notified && (r = record_outcome(cfg,
			    st, &sl->jobs[i], &sl->items[i], now, stats,
			    err)) != FU_OK) {
				store_rollback(st);
				return r;
			}
	if ((r = store_commit(st, err)) != FU_OK) {
		store_rollback(st);
		return r;
	}
	names = xcalloc(total ? total : 1, sizeof(*names));
	fates = xcalloc(total ? total : 1, sizeof(*fates));
	for (struct slice *sl = list; sl != NULL; sl = sl->next)
		for (int i = 0; i < sl->n; i++) {
			const struct job *j = &sl->jobs[i];
			const struct smtp_item *it = &sl->items[i];

			if (it->notified || (it->result == FU_TEMPFAIL &&
			    !(j->queued_at && now - j->queued_at >=
			    cfg->queue_lifetime)))
				continue;
			names[k] = j->spool_name;
			fates[k++] = it->result == FU_OK ? SPOOL_SENT :
			    SPOOL_FAILED;
		}
	/* Committed: the files move on in the background (a crash first
	 * leaves them in new/ for start-up's tidy-up). */
	spool_finish_async(sp, names, fates, k, cfg->sent_retention > 0);
	free(names);
	free(fates);
	return FU_OK;
}

struct tidy {
	const struct config	*cfg;
	struct store		*st;
	struct spool		*sp;
	int			 moved;
};

static void
tidy_one(const char *name, void *arg)
{
	struct tidy *t = arg;
	char state[16];
	int fate;

	if (store_spool_owner_state(t->st, spool_message_job(name), name, state,
	    NULL) != FU_OK)
		return;
	if (state[0] == '\0') {
		log_warnx("deliver: %s in new/ belongs to no job: left alone",
		    name);
		return;
	}
	fate = strcmp(state, "sent") == 0 ? SPOOL_SENT :
	    strcmp(state, "failed") == 0 || strcmp(state, "cancelled") == 0 ?
	    SPOOL_FAILED : -1;
	if (fate != -1 && spool_finish(t->sp, name, (enum spool_fate)fate,
	    t->cfg->sent_retention > 0, NULL) == FU_OK)
		t->moved++;
}

void
deliver_tidy_spool(const struct config *cfg, struct store *st,
    struct spool *sp)
{
	struct tidy t = { cfg, st, sp, 0 };

	spool_list_new(sp, tidy_one, &t);
	if (t.moved > 0)
		log_info("deliver: %d message%s of finished jobs left in new/ by "
		    "an interruption: tidied", t.moved, t.moved == 1 ? "" : "s");
}

/*
 * A delivery step that can run alongside rendering: deliver_begin, then
 * deliver_pump after each rendered page (hand out what is due, record what
 * came back, never wait), then deliver_end (send the rest, wait for every
 * session). Everything stays in the calling thread but the SMTP sessions.
 */
struct deliver {
	const struct config	*cfg;
	struct store		*st;
	struct spool		*sp;
	time_t			 now;
	volatile int		*stop;
	struct deliver_stats	 stats;
	struct pool		 pool;
	int			 conns, batch;
	int			 started, inflight, none, down;
	int			 ending;	/* in deliver_end: progress shown */
	int			 r;		/* the first failure */
	char			*err;
	struct timespec		 last_record;
};

/* Outcomes are committed at most this often while sessions run. */
#define DELIVER_GROUP_NS	2000000L

static void
keep_err(struct deliver *d, int r, char *e)
{
	if (r != FU_OK && d->r == FU_OK) {
		d->r = r;
		free(d->err);
		d->err = e;
		return;
	}
	free(e);
}

/* Keep every connection busy and one slice each waiting. */
static void
fill(struct deliver *d)
{
	while (d->r == FU_OK && !d->none && !d->down && !(d->stop &&
	    *d->stop) && d->inflight < 2 * d->conns) {
		int idle = d->conns - d->inflight, limit, parts, r;
		struct slice *got, *next;
		char *e = NULL;

		/* Idle connections share what is due: a burst of 40 goes out
		 * as 4 sessions of 10, not one of 40. */
		limit = idle > 0 ? idle * d->batch : d->batch;
		if (limit > DELIVER_FETCH_MAX && limit > d->batch)
			limit = DELIVER_FETCH_MAX > d->batch ?
			    DELIVER_FETCH_MAX : d->batch;
		if ((r = load_slices(d->cfg, d->st, d->sp, d->now, limit,
		    &d->stats, &got, &d->none, &e)) != FU_OK) {
			keep_err(d, r, e);
			break;
		}
		free(e);
		if (got == NULL)	/* only cancellations: go on */
			continue;
		/* Split after loading: how many came is known now. */
		parts = (got->n + d->batch - 1) / d->batch;
		if (idle > parts)
			parts = idle < got->n ? idle : got->n;
		if (!d->started) {
			if ((r = pool_start(&d->pool, d->cfg, &e)) != FU_OK) {
				keep_err(d, r, e);
				slice_free(got);
				break;
			}
			d->started = 1;
		}
		for (struct slice *sl = split_slice(got, parts); sl;
		    sl = next) {
			next = sl->next;
			pool_push(&d->pool, sl);
			d->inflight++;
		}
	}
}

/* Record what the sessions handed back: accepted messages, ended slices. */
static void
record(struct deliver *d, struct early *early, struct slice *back)
{
	struct early *enext;
	struct slice *next;
	char *e = NULL;
	int r, before = d->stats.sent + d->stats.deferred + d->stats.failed;

	r = record_early(d->cfg, d->st, d->sp, early, d->now, &d->stats, &e);
	keep_err(d, r, e);
	for (; early != NULL; early = enext) {
		enext = early->next;
		free(early);
	}
	for (struct slice *sl = back; sl; sl = sl->next) {
		d->inflight--;
		if (sl->down)
			d->down = 1;
	}
	/*
	 * A failure to record leaves the jobs `sending`: the next start-up
	 * (or tick) sends them again (same Message-ID). Stop fetching, but
	 * let the sessions in flight end.
	 */
	e = NULL;
	if (back != NULL) {
		r = record_slices(d->cfg, d->st, d->sp, back, d->now,
		    &d->stats, &e);
		keep_err(d, r, e);
	}
	for (struct slice *sl = back; sl; sl = next) {
		next = sl->next;
		slice_free(sl);
	}
	clock_gettime(CLOCK_MONOTONIC, &d->last_record);
	/* While rendering runs, its own progress line is shown. */
	if (d->ending)
		progress_step(d->stats.sent + d->stats.deferred +
		    d->stats.failed - before);
}

/* Take whatever came back, without waiting. */
static int
pool_take(struct pool *p, struct early **early, struct slice **back)
{
	pthread_mutex_lock(&p->mu);
	*back = p->done;
	p->done = NULL;
	*early = p->early;
	p->early = NULL;
	pthread_mutex_unlock(&p->mu);
	return *back != NULL || *early != NULL;
}

/*
 * Wait for something to come back. A lone accepted message waits up to
 * DELIVER_GROUP_NS after the previous record for others to join it: one
 * commit (an fsync) per group instead of one per message. A slice that
 * ended is recorded at once (its connection waits for work).
 */
static void
pool_wait_grouped(struct pool *p, const struct timespec *last,
    struct early **early, struct slice **back)
{
	struct timespec until = *last;

	until.tv_nsec += DELIVER_GROUP_NS;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_nsec -= 1000000000L;
		until.tv_sec++;
	}
	pthread_mutex_lock(&p->mu);
	p->idle = 1;
	while (p->done == NULL && p->early == NULL)
		pthread_cond_wait(&p->done_cv, &p->mu);
	p->idle = 0;
	while (p->done == NULL) {
		struct timespec now;

		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > until.tv_sec || (now.tv_sec == until.tv_sec &&
		    now.tv_nsec >= until.tv_nsec))
			break;
		if (pthread_cond_timedwait(&p->done_cv, &p->mu, &until) != 0)
			break;
	}
	*back = p->done;
	p->done = NULL;
	*early = p->early;
	p->early = NULL;
	pthread_mutex_unlock(&p->mu);
}

void
deliver_begin(const struct config *cfg, struct store *st, struct spool *sp,
    time_t now, volatile int *stop, struct deliver **out)
{
	struct deliver *d = xcalloc(1, sizeof(*d));

	d->cfg = cfg;
	d->st = st;
	d->sp = sp;
	d->now = now;
	d->stop = stop;
	d->conns = cfg->connections > 0 ? cfg->connections : 1;
	d->batch = cfg->batch > 0 ? cfg->batch : 1;
	d->r = FU_OK;
	clock_gettime(CLOCK_MONOTONIC, &d->last_record);
	*out = d;
}

void
deliver_pump(struct deliver *d)
{
	struct early *early;
	struct slice *back;

	/* Something new may be queued since the last look. */
	d->none = 0;
	if (d->started && pool_take(&d->pool, &early, &back))
		record(d, early, back);
	fill(d);
	/*
	 * Back-pressure: return to rendering only once everything queued is
	 * in the sessions' hands (at most two slices per connection). Pages
	 * then go out as fast as the relay takes them, and a sent message's
	 * spool file is recycled for the next page instead of a new one
	 * being created while thousands wait on disk.
	 */
	while (!d->none && d->r == FU_OK && !d->down && !(d->stop &&
	    *d->stop) && d->inflight > 0) {
		pool_wait_grouped(&d->pool, &d->last_record, &early, &back);
		record(d, early, back);
		fill(d);
	}
}

long
deliver_done(const struct deliver *d)
{
	return d->stats.sent + d->stats.deferred + d->stats.failed;
}

int
deliver_outcomes_waiting(struct deliver *d)
{
	struct timespec now, since;
	int waiting;

	if (!d->started)
		return 0;
	pthread_mutex_lock(&d->pool.mu);
	waiting = d->pool.early != NULL;
	since = d->pool.early_since;
	pthread_mutex_unlock(&d->pool.mu);
	if (!waiting)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - since.tv_sec) * 1000000000L + (now.tv_nsec -
	    since.tv_nsec) >= DELIVER_RECORD_WAIT_MS * 1000000L;
}

int
deliver_end(struct deliver *d, struct deliver_stats *stats, char **err)
{
	int r;

	d->none = 0;
	d->ending = 1;
	for (;;) {
		struct early *early;
		struct slice *back;

		fill(d);
		if (d->inflight == 0)
			break;
		pool_wait_grouped(&d->pool, &d->last_record, &early, &back);
		record(d, early, back);
	}
	if (d->started)
		pool_stop(&d->pool);
	spool_flush(d->sp);
	if (d->cfg->sent_retention > 0)
		spool_expire_sent(d->sp, d->cfg->sent_retention);
	*stats = d->stats;
	if ((r = d->r) != FU_OK)
		set_err(err, "%s", d->err ? d->err : "error");
	free(d->err);
	free(d);
	return r;
}
