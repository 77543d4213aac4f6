/* deliver: tick step 3: queued messages over SMTP, outcomes and retries. */
#include "deliver.h"
#include "log.h"
#include "mime.h"
#include "smtp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

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

/* 550 mailbox unavailable, 551 not local, 553 name not allowed: the address
 * itself is bad. Other 5xx (554 content rejected...) say nothing about it. */
static int
suppress_code(int code)
{
	return code == 550 || code == 551 || code == 553;
}

/* Decide whether a queued job may still be sent; load its message. */
static int
prepare_job(const struct config *cfg, struct store *st, struct spool *sp,
    const struct job *job, time_t now, struct buf *msg,
    struct deliver_stats *stats, int *ready, char **err)
{
	char *e = NULL;
	int yes, r;

	(void)cfg;
	*ready = 0;
	const char *reason = NULL;

	if ((r = store_suppressed(st, job->recipient, &yes, err)) != FU_OK)
		return r;
	if (yes)
		reason = "suppressed";
	else if ((r = store_opted_out(st, job->recipient, "transactional",
	    &yes, err)) != FU_OK)
		return r;
	else if (yes)
		reason = "opted-out";
	if (reason != NULL) {
		/* The same reasons render gives, checked again at the last moment. */
		if ((r = store_job_cancel(st, job->id, reason, strcmp(reason,
		    "suppressed") == 0 ? "the address was suppressed after a "
		    "permanent failure since the message was queued" :
		    "the recipient opted out since the message was queued",
		    now, err)) == FU_OK) {
			stats->cancelled++;
			spool_finish(sp, job->spool_name, SPOOL_FAILED, 0, NULL);
			log_info("deliver: job %lld: cancelled: %s",
			    (long long)job->id, reason);
		}
		return r;
	}
	r = spool_read(sp, job->spool_name, msg, &e);
	if (r == FU_OK && (msg->len == 0 ||
	    strstr(msg->data, "\r\n\r\n") == NULL)) {
		/* Truncated: never send half a message. Keep it for a human. */
		r = FU_PERMFAIL;
		set_err(&e, "%s: truncated message", job->spool_name);
		spool_finish(sp, job->spool_name, SPOOL_CORRUPT, 0, NULL);
	} else if (r == FU_PERMFAIL && spool_exists(sp, job->spool_name))
		spool_finish(sp, job->spool_name, SPOOL_CORRUPT, 0, NULL);
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

static int
record_outcome(const struct config *cfg, struct store *st,
    const struct job *job, const struct smtp_item *it, time_t now,
    struct deliver_stats *stats, char **err)
{
	const char *domain = mime_address_domain(job->recipient);
	int r;

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
		if (suppress_code(it->code) && (r = store_suppress(st,
		    job->recipient, it->reply, now, err)) != FU_OK)
			return r;
		stats->failed++;
		log_warnx("deliver: job %lld (%s %s): failed for @%s: %s%s",
		    (long long)job->id, job->rule, job->subject, domain,
		    it->reply, suppress_code(it->code) ?
		    " (address suppressed)" : "");
		return FU_OK;
	}
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

/* One SMTP session's worth. *more is 0 when nothing was due. */
static int
deliver_batch(const struct config *cfg, struct store *st, struct spool *sp,
    time_t now, struct deliver_stats *stats, int *more, int *down,
    char **err)
{
	struct job *q = NULL, *d = NULL, **jobs;
	struct smtp_item *items;
	struct buf *msgs;
	int nq = 0, nd = 0, n = 0, r, changed;
	char *e = NULL;

	*more = 0;
	if ((r = store_jobs_due(st, JOB_QUEUED, now, cfg->batch, &q, &nq,
	    err)) != FU_OK)
		return r;
	if (nq < cfg->batch && (r = store_jobs_due(st, JOB_DEFERRED, now,
	    cfg->batch - nq, &d, &nd, err)) != FU_OK) {
		store_jobs_free(q, nq);
		return r;
	}
	if (nq + nd == 0)
		return FU_OK;
	*more = 1;
	jobs = xcalloc((size_t)(nq + nd), sizeof(*jobs));
	items = xcalloc((size_t)(nq + nd), sizeof(*items));
	msgs = xcalloc((size_t)(nq + nd), sizeof(*msgs));

	/* Pick what can go and mark it sending, in one transaction. */
	changed = stats->cancelled + stats->replanned;
	if ((r = store_begin(st, err)) != FU_OK)
		goto out;
	for (int i = 0; i < nq + nd; i++) {
		struct job *j = i < nq ? &q[i] : &d[i - nq];
		int ready;

		if ((r = prepare_job(cfg, st, sp, j, now, &msgs[n], stats,
		    &ready, err)) != FU_OK)
			goto rollback;
		if (!ready)
			continue;
		if ((r = store_job_sending(st, j->id, now, err)) != FU_OK)
			goto rollback;
		jobs[n] = j;
		items[n].sender = cfg->from_addr;
		items[n].rcpt = j->recipient;
		items[n].data = msgs[n].data;
		items[n].len = msgs[n].len;
		n++;
	}
	if ((r = store_commit(st, err)) != FU_OK)
		goto rollback;
	/* Jobs that could not be read this time stay queued: do not loop on them. */
	if (n == 0 && changed == stats->cancelled + stats->replanned)
		*more = 0;

	if (n > 0 && smtp_deliver(&cfg->smtp, items, (size_t)n, &e) !=
	    FU_OK) {
		log_warnx("deliver: %s: %d message%s deferred", e, n,
		    n == 1 ? "" : "s");
		*down = 1;
	}
	free(e);

	/* Record every outcome in one transaction, then tidy the spool. */
	if ((r = store_begin(st, err)) != FU_OK)
		goto out;
	for (int i = 0; i < n; i++)
		if ((r = record_outcome(cfg, st, jobs[i], &items[i], now,
		    stats, err)) != FU_OK)
			goto rollback;
	if ((r = store_commit(st, err)) != FU_OK)
		goto rollback;
	for (int i = 0; i < n; i++) {
		if (items[i].result == FU_TEMPFAIL && !(jobs[i]->queued_at &&
		    now - jobs[i]->queued_at >= cfg->queue_lifetime))
			continue;
		spool_finish(sp, jobs[i]->spool_name, items[i].result == FU_OK ?
		    SPOOL_SENT : SPOOL_FAILED, cfg->sent_retention > 0, NULL);
	}
	goto out;
rollback:
	store_rollback(st);
out:
	for (int i = 0; i < nq + nd; i++)
		buf_free(&msgs[i]);
	free(msgs);
	free(items);
	free(jobs);
	store_jobs_free(q, nq);
	store_jobs_free(d, nd);
	return r;
}

int
deliver_tick(const struct config *cfg, struct store *st, struct spool *sp,
    time_t now, volatile int *stop, struct deliver_stats *stats, char **err)
{
	int more = 1, down = 0, r = FU_OK;

	memset(stats, 0, sizeof(*stats));
	while (more && !down && !(stop && *stop))
		if ((r = deliver_batch(cfg, st, sp, now, stats, &more, &down,
		    err)) != FU_OK)
			break;
	if (cfg->sent_retention > 0)
		spool_expire_sent(sp, cfg->sent_retention);
	return r;
}
