/* render: tick step 2: due jobs re-checked against the source, asked at the gate, composed, spooled and recorded. */
#include "render.h"
#include "clock.h"
#include "codes.h"
#include "compose.h"
#include "gate.h"
#include "log.h"
#include "mime.h"
#include "progress.h"
#include "rules.h"
#include "survey.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Planned jobs per page: rendered, spooled and recorded together. */
#define RENDER_BATCH		250
#define RENDER_FIRST_PAGE	125

struct render {
	const struct config	*cfg;
	struct compose		*compose;	/* what does it say? */
	struct gate		*gate;		/* may this job go now? */
};

struct render *
render_open(const struct config *cfg, int preview, struct buf *errs)
{
	struct render *rd = xcalloc(1, sizeof(*rd));
	size_t before = errs->len;

	rd->cfg = cfg;
	rd->gate = gate_new(cfg);
	rd->compose = compose_open(cfg, preview, errs);
	/*
	 * Zones and holiday files: reported here, so `check`, start-up and a
	 * reload see them. Rebuilt each time (kept with the config).
	 */
	rules_time_load(cfg, errs);
	if (errs->len != before) {
		render_close(rd);
		return NULL;
	}
	return rd;
}

void
render_close(struct render *rd)
{
	if (rd == NULL)
		return;
	compose_close(rd->compose);
	gate_free(rd->gate);
	free(rd);
}

static int
rule_index(const struct render *rd, const char *name)
{
	for (int i = 0; i < rd->cfg->nrules; i++)
		if (strcmp(rd->cfg->rules[i].name, name) == 0)
			return i;
	return -1;
}

/*
 * What render_job decided for one job. The decisions of a page of jobs are
 * written to state.db together, in one transaction, after the page's
 * messages are durably in the spool (spool_batch_commit): a job becomes
 * `queued` only once its message is on disk, and a crash in between leaves
 * planned jobs whose files in new/ are simply replaced when they are
 * rendered again.
 */
enum render_fate {
	FATE_NONE,		/* left planned (held, or the batch failed) */
	FATE_QUEUE,
	FATE_CANCEL,
	FATE_FAIL,
	FATE_POSTPONE,		/* left planned, due again at `until` */
};

struct render_out {
	const struct job *job;
	enum render_fate fate;
	const char	*reason;	/* static: cancel/fail reason */
	time_t		 until;		/* FATE_POSTPONE */
	char		*detail;	/* why, for the history */
	char		*email, *mid, *spool_name;
};

static void
render_out_clear(struct render_out *o)
{
	free(o->detail);
	free(o->email);
	free(o->mid);
	free(o->spool_name);
	memset(o, 0, sizeof(*o));
}

/*
 * An agent reminder's job: its snapshot (method, UID, SEQUENCE, agent,
 * times) from state.db, the ticket's current row for the rest of the
 * context (a minimal one when the source no longer has it).
 */
static int
reminder_context(struct render *rd, struct store *st, struct source *src,
    int ri, const struct job *job, struct value **row, char **err)
{
	struct reminder rm;
	char *method = NULL;
	int found, r;

	*row = NULL;
	if ((r = store_reminder_message_get(st, job->id, &rm, &method, &found,
	    err)) != FU_OK)
		return r;
	if (!found) {
		set_err(err, "no calendar item recorded for this reminder job");
		return FU_PERMFAIL;
	}
	if ((r = rules_fetch(rd->cfg, src, &rd->cfg->rules[ri], job->subject,
	    NULL, row, err)) == FU_OK) {
		if (*row == NULL) {
			*row = value_map();
			value_map_set(*row, "key", value_string(job->subject));
			value_map_set_path(*row, "ticket.id",
			    value_string(job->subject));
		}
		compose_calendar(rd->cfg, *row, &rm, method);
	}
	store_reminder_clear(&rm);
	free(method);
	return r;
}

/*
 * What is personal to this message besides the row: {{years}} of a yearly
 * note, and the rule's code, given once per job and stored with it (a
 * retry, a re-render or a preview shows the same code).
 */
static int
render_personal(struct render *rd, struct store *st, int ri,
    const struct job *job, struct value *ctx, time_t now, char **err)
{
	const struct rule_config *rule = &rd->cfg->rules[ri];
	char *code = NULL;
	int r;

	if (rules_kind_yearly(rule->kind)) {
		int years = rules_occurrence_years(rule, rules_zone(rd->cfg,
		    value_path_string(ctx, "tz")), value_path_string(ctx, "at"),
		    job->occurrence);

		value_map_set(ctx, "years", years >= 0 ?
		    value_number(years) : value_null());
	}
	if (!compose_has_code(rd->compose, ri))
		return FU_OK;
	if ((r = codes_get(st, job->id, &code, err)) != FU_OK)
		return r;
	for (int tries = 0; code == NULL && tries < 8; tries++) {
		struct buf b = { 0 };
		char rnd[65];
		int clash;

		codes_random(rule->code_alphabet, rule->code_length, rnd);
		if ((r = compose_code(rd->compose, ri, ctx, rnd, &b, err)) ==
		    FU_OK && b.len > 0 &&
		    b.len <= CODES_MAX && strpbrk(b.data, "\r\n\t") == NULL &&
		    (r = codes_put(st, job->id, rule->name, job->subject, b.data,
		    now, &clash, err)) == FU_OK && !clash)
			code = buf_steal(&b);
		buf_free(&b);
		if (r != FU_OK)
			return r;
	}
	if (code == NULL) {
		/* This job can never get a code as the rule stands: fail it,
		 * do not stall the jobs behind it. */
		set_err(err, "rule %s: no unused code after 8 draws (a longer "
		    "code_length, or {{code.random}} in the code text)",
		    rule->name);
		return FU_PERMFAIL;
	}
	value_map_set(ctx, "code", value_string(code));
	free(code);
	return FU_OK;
}

/*
 * The job's current source row: an agent reminder's from its snapshot,
 * else the rule's row re-fetched (NULL: the source no longer has it). A
 * reminder without its snapshot is failed (out->fate).
 */
static int
render_row(struct render *rd, struct store *st, struct source *src, int ri,
    const struct job *job, struct render_out *out, struct value **row,
    char **err)
{
	const struct rule_config *rule = &rd->cfg->rules[ri];
	const char *occurrence = job->occurrence;
	char *e = NULL;
	int r;

	*row = NULL;
	if (rule->kind == RULE_AFTER_RESOLUTION &&
	    survey_owns(job->occurrence)) {
		/* A call-back or note whose spooled message was lost: it was
		 * built from a rating (survey.c), not from these templates. */
		out->fate = FATE_FAIL;
		out->reason = "render-error";
		out->detail = xstrdup("a rating's call-back or note lost its "
		    "spooled message; it is not built again");
		return FU_OK;
	}
	if (rule->kind != RULE_AGENT_REMINDER) {
		/* Yearly notes and milestones: the customer's row, whatever its
		 * date now (the job's occurrence is the year or milestone). */
		if (rules_kind_yearly(rule->kind) || rule->kind == RULE_LOYALTY)
			occurrence = NULL;
		return rules_fetch(rd->cfg, src, rule, job->subject, occurrence,
		    row, err);
	}
	/* plan decided what this message is; only send it or not. */
	if ((r = reminder_context(rd, st, src, ri, job, row, &e)) ==
	    FU_PERMFAIL) {
		out->fate = FATE_FAIL;
		out->reason = "render-error";
		out->detail = e;
		return FU_OK;
	}
	if (r != FU_OK) {
		set_err(err, "%s", e);
		free(e);
	}
	return r;
}

/*
 * A job the gate let through: its personal values, history and message,
 * staged in the page's spool batch under the name spool.c gives it.
 * Consumes row.
 */
static int
render_stage(struct render *rd, struct store *st, struct source *src,
    struct spool_batch *batch, int ri, const struct job *job,
    struct value *row, time_t now, struct render_out *out, char **err)
{
	struct buf msg = { 0 };
	char name[SPOOL_NAME_MAX], *e = NULL;
	int r;

	if ((r = render_personal(rd, st, ri, job, row, now, err)) != FU_OK) {
		value_free(row);
		if (r != FU_PERMFAIL)
			return r;
		out->fate = FATE_FAIL;
		out->reason = "render-error";
		out->detail = xstrdup(err && *err ? *err : "code");
		return FU_OK;
	}
	/* A check-in that may ask for a rating: cool-down, sample (survey.c). */
	if ((r = survey_checkin(st, rd->cfg, &rd->cfg->rules[ri],
	    compose_consent(rd->compose), job->id, row, now, err)) != FU_OK) {
		value_free(row);
		return r;
	}
	out->mid = job->message_id ? xstrdup(job->message_id) :
	    compose_message_id(job->id, rd->cfg->from_addr);
	out->email = xstrdup(value_path_string(row, "email"));
	if ((r = rules_add_history(src, &rd->cfg->rules[ri], row, now, &e)) ==
	    FU_OK)
		r = compose_message(rd->compose, ri, row, out->mid, now, &msg,
		    &e);
	value_free(row);
	if (r == FU_TEMPFAIL) {
		/* The source is busy: the job stays planned. */
		set_err(err, "%s", e);
		free(e);
		buf_free(&msg);
		return r;
	}
	if (r != FU_OK) {
		/* A template or data problem that `check` cannot see: this
		 * message can never be built as it stands. */
		out->fate = FATE_FAIL;
		out->reason = "render-error";
		out->detail = e;
		buf_free(&msg);
		return FU_OK;
	}
	spool_message_name(job->id, msg.len, name);
	out->spool_name = xstrdup(name);
	if ((r = spool_batch_add(batch, out->spool_name, msg.data, msg.len,
	    err)) == FU_OK) {
		out->fate = FATE_QUEUE;
		gate_queued(rd->gate, out->email, &rd->cfg->rules[ri]);
	}
	buf_free(&msg);
	return r;
}

/* Decide one planned job and, when it is to be sent, stage its message. */
static int
render_job(struct render *rd, struct store *st, struct source *src,
    struct spool_batch *batch, const struct job *job, time_t now,
    struct render_out *out, struct render_stats *stats, char **err)
{
	int ri = rule_index(rd, job->rule), r;
	struct gate_result g;
	struct value *row;

	out->job = job;
	out->fate = FATE_NONE;
	if (ri < 0) {
		stats->held++;
		log_warnx("render: job %lld: rule '%s' is no longer in the "
		    "configuration: left planned", (long long)job->id, job->rule);
		return FU_OK;
	}
	if ((r = render_row(rd, st, src, ri, job, out, &row, err)) != FU_OK ||
	    out->fate != FATE_NONE)
		return r;
	if ((r = gate_render(rd->gate, st, job, &rd->cfg->rules[ri], row, now,
	    &g, err)) != FU_OK) {
		value_free(row);
		gate_result_clear(&g);
		return r;
	}
	if (g.verdict != GATE_GO) {
		/* Recorded with the rest of the page (render_record). */
		out->fate = g.verdict == GATE_CANCEL ? FATE_CANCEL :
		    FATE_POSTPONE;
		out->reason = g.reason;
		out->detail = g.detail;
		out->until = g.until;
		value_free(row);
		return FU_OK;
	}
	return render_stage(rd, st, src, batch, ri, job, row, now, out, err);
}

/*
 * Write a page's decisions and commit the page's transaction (begun by
 * render_tick); log them once committed.
 */
static int
render_record(struct store *st, struct render_out *outs, int n, time_t now,
    struct render_stats *stats, char **err)
{
	int r = FU_OK;

	for (int i = 0; i < n; i++) {
		struct render_out *o = &outs[i];
		const struct job *job = o->job;

		switch (o->fate) {
		case FATE_QUEUE:
			r = store_job_queued(st, job->id, o->email, o->mid,
			    o->spool_name, now, err);
			break;
		case FATE_CANCEL:
			r = store_job_cancel(st, job->id, o->reason, o->detail,
			    now, err);
			break;
		case FATE_FAIL:
			r = store_job_failed(st, job->id, o->reason, o->detail,
			    now, err);
			break;
		case FATE_POSTPONE:
			r = store_job_postpone(st, job->id, o->until, o->detail,
			    now, err);
			break;
		case FATE_NONE:
			break;
		}
		if (r != FU_OK) {
			store_rollback(st);
			return r;
		}
	}
	if ((r = store_commit(st, err)) != FU_OK) {
		store_rollback(st);
		return r;
	}
	for (int i = 0; i < n; i++) {
		struct render_out *o = &outs[i];
		const struct job *job = o->job;

		switch (o->fate) {
		case FATE_QUEUE:
			stats->queued++;
			log_info("render: job %lld (%s %s): queued for @%s, "
			    "Message-ID <%s>", (long long)job->id, job->rule,
			    job->subject, mime_address_domain(o->email), o->mid);
			break;
		case FATE_CANCEL:
			stats->cancelled++;
			log_info("render: job %lld (%s %s): cancelled: %s (%s)",
			    (long long)job->id, job->rule, job->subject,
			    o->reason, o->detail);
			break;
		case FATE_FAIL:
			stats->failed++;
			log_warnx("render: job %lld (%s %s): failed: %s",
			    (long long)job->id, job->rule, job->subject,
			    o->detail);
			break;
		case FATE_POSTPONE:
			log_info("render: job %lld (%s %s): postponed: %s",
			    (long long)job->id, job->rule, job->subject,
			    o->detail);
			break;
		case FATE_NONE:
			break;
		}
	}
	return FU_OK;
}

/* One page of due jobs as render_tick walks them. */
struct render_page {
	struct job		*jobs;
	int			 n;
	int			 done;		/* jobs looked at */
	int			 cut_short;	/* `cut` ended the page */
	int			 stop;		/* no more pages this tick */
	struct render_out	*outs;		/* one per job looked at */
	struct spool_batch	*batch;
};

/* Decide every job of the page (until a temporary failure or a cut). */
static int
render_decide(struct render *rd, struct store *st, struct source *src,
    struct render_page *pg, time_t now, render_cut_fn cut, void *arg,
    struct render_stats *stats, char **err)
{
	int r = FU_OK;

	for (; pg->done < pg->n; pg->done++) {
		const struct job *job = &pg->jobs[pg->done];
		struct render_out *out = &pg->outs[pg->done];

		if ((r = render_job(rd, st, src, pg->batch, job, now, out,
		    stats, err)) == FU_TEMPFAIL) {
			/* Source busy or disk full: the rest next tick. */
			render_out_clear(out);
			pg->stop = 1;
			return r;
		}
		if (out->fate == FATE_QUEUE)
			util_crashpoint("render");
		if (r != FU_OK) {
			/* This job only: the others may be fine. */
			log_warnx("render: job %lld: %s", (long long)job->id,
			    err && *err ? *err : "error");
			render_out_clear(out);
			stats->held++;
			r = FU_OK;
		}
		progress_step(1);
		/* Delivery has outcomes waiting to be recorded: end the
		 * page here (the rest comes in the next one). */
		if (cut != NULL && pg->done + 1 < pg->n && cut(arg)) {
			pg->done++;
			pg->cut_short = 1;
			break;
		}
	}
	return r;
}

/*
 * Make the page's messages durable in new/. On failure nothing of the
 * page reached new/: its jobs stay planned; decisions without a message
 * (cancellations, postponements) are still recorded.
 */
static int
render_spool(struct render_page *pg, struct render_stats *stats, char **err)
{
	char *e = NULL;

	if (spool_batch_count(pg->batch) == 0)
		return FU_OK;
	if (spool_batch_commit(pg->batch, &e) == FU_OK) {
		util_crashpoint("spool");
		return FU_OK;
	}
	for (int i = 0; i < pg->done; i++)
		if (pg->outs[i].fate == FATE_QUEUE) {
			pg->outs[i].fate = FATE_NONE;
			stats->held++;
		}
	set_err(err, "%s", e);
	free(e);
	pg->stop = 1;
	return FU_TEMPFAIL;
}

/*
 * One page: one transaction on state.db from the first look-up to the
 * last decision (the suppression and opt-out checks then read without
 * taking a lock each, and the decisions commit at once), and one read
 * transaction on the source.
 */
static int
render_page(struct render *rd, struct store *st, struct source *src,
    struct spool *sp, time_t now, struct render_page *pg,
    render_page_fn page_done, render_cut_fn cut, void *arg,
    struct render_stats *stats, char **err)
{
	char *e = NULL;
	int r, rr;

	pg->stop = 1;	/* unless the page gets going */
	if ((r = store_begin(st, err)) != FU_OK)
		return r;
	if ((r = source_read_begin(src, err)) != FU_OK) {
		store_rollback(st);
		return r;
	}
	pg->stop = 0;
	pg->batch = spool_batch_new(sp);
	gate_page_begin(rd->gate);	/* caps: this page's messages so far */
	pg->outs = xcalloc((size_t)pg->n, sizeof(*pg->outs));
	r = render_decide(rd, st, src, pg, now, cut, arg, stats, err);
	source_read_end(src);
	if ((rr = render_spool(pg, stats, err)) != FU_OK)
		r = rr;
	if ((rr = render_record(st, pg->outs, pg->done, now, stats, &e)) !=
	    FU_OK) {
		if (r == FU_OK) {
			set_err(err, "%s", e);
			r = rr;
		}
		pg->stop = 1;
	} else if (page_done != NULL)
		page_done(arg);
	free(e);
	for (int i = 0; i < pg->n; i++)
		render_out_clear(&pg->outs[i]);
	free(pg->outs);
	spool_batch_free(pg->batch);
	return r;
}

/*
 * Pages of up to RENDER_BATCH due jobs, each: decide and render every job,
 * write the messages to the spool (unsynced), make them durable and move
 * them to new/ in one go, then record every decision, all in one
 * transaction. The first page holds RENDER_FIRST_PAGE jobs and each next
 * one twice as many: delivery (page_done) starts after a few milliseconds
 * instead of after a whole page. `cut` ends a page early (delivery has
 * accepted messages to record: their commit must not wait for a page).
 * The cursor (due_at, id) walks past jobs left planned, so the whole
 * backlog is done in one tick and a held job is looked at once per tick.
 */
int
render_tick(struct render *rd, struct store *st, struct source *src,
    struct spool *sp, time_t now, render_page_fn page_done,
    render_cut_fn cut, void *arg, struct render_stats *stats, char **err)
{
	time_t after_due = (time_t)LLONG_MIN;
	int64_t after_id = 0;
	int r = FU_OK, size = RENDER_FIRST_PAGE;

	memset(stats, 0, sizeof(*stats));
	for (;;) {
		struct render_page pg = { 0 };

		if ((r = store_jobs_due_after(st, now, after_due, after_id,
		    size, &pg.jobs, &pg.n, err)) != FU_OK || pg.n == 0)
			break;
		r = render_page(rd, st, src, sp, now, &pg, page_done, cut, arg,
		    stats, err);
		/* The cursor: past the last job looked at. */
		if (pg.done > 0) {
			after_due = pg.jobs[pg.done - 1].due_at;
			after_id = pg.jobs[pg.done - 1].id;
		}
		store_jobs_free(pg.jobs, pg.n);
		if (pg.stop || (pg.n < size && !pg.cut_short))
			break;
		if (size < RENDER_BATCH)
			size = size * 2 < RENDER_BATCH ? size * 2 : RENDER_BATCH;
	}
	return r;
}
