/* survey: which check-ins ask for a rating (cool-down, sample), their rating.* context, and what a low rating sets off. */
#include "survey.h"
#include "clock.h"
#include "compose.h"
#include "ical.h"
#include "log.h"
#include "mime.h"
#include "mustache.h"
#include "rating.h"
#include "rules.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the check-in's rating block ---- */

static const char *
ctx_str(const struct value *ctx, const char *a, const char *b)
{
	const struct value *v = value_map_get(ctx, a);

	if (v != NULL && b != NULL)
		v = value_map_get(v, b);
	return v ? value_as_string(v, NULL) : NULL;
}

/* A string value made from an allocated string, which it frees. */
static struct value *
taken(char *s)
{
	struct value *v = value_string(s);

	free(s);
	return v;
}

static void
add_context(struct value *ctx, const struct config *cfg,
    const struct consent *c, int64_t job)
{
	enum rating_scale s = cfg->ratings_scale;
	size_t klen;
	const unsigned char *key = consent_secret(c, &klen);
	struct value *list = value_list();
	char *tok;

	for (int v = rating_min(s); v <= rating_max(s); v++) {
		struct value *o = value_map();

		tok = rating_token(key, klen, job, s, v);
		value_map_set(o, "score", value_number(v));
		value_map_set(o, "label", value_string(rating_label(s, v)));
		value_map_set(o, "url", taken(xasprintf("%s?t=%s",
		    cfg->ratings_url, tok)));
		free(tok);
		value_list_append(list, o);
	}
	tok = rating_token(key, klen, job, s, -1);
	value_map_set_path(ctx, "rating.url", taken(xasprintf(
	    "%s?t=%s", cfg->ratings_url, tok)));
	free(tok);
	value_map_set_path(ctx, "rating.options", list);
	value_map_set_path(ctx, "rating.question", value_string(
	    cfg->ratings_question ? cfg->ratings_question :
	    rating_default_question(s)));
	value_map_set_path(ctx, "rating.scale", value_string(
	    rating_scale_name(s)));
}

/* Whether to ask; *why says why not (for the job's history). */
static int
decide(struct store *st, const struct config *cfg, int64_t job,
    const char *to, time_t now, const char **why, char **err)
{
	int asked = 0, r;

	*why = NULL;
	if (!rating_sampled(job, cfg->ratings_sample)) {
		*why = "not in the sample ([ratings] sample)";
		return FU_OK;
	}
	if (cfg->ratings_cooldown > 0 && to != NULL &&
	    (r = store_rating_asked(st, to, now - cfg->ratings_cooldown, job,
	    &asked, err)) != FU_OK)
		return r;
	if (asked)
		*why = "asked within [ratings] cooldown";
	return FU_OK;
}

int
survey_checkin(struct store *st, const struct config *cfg,
    const struct rule_config *rule, const struct consent *c, int64_t job,
    struct value *ctx, time_t now, char **err)
{
	const char *to = ctx_str(ctx, "email", NULL), *why = NULL;
	struct store_rating_ask q;
	int r;

	if (!rule->ratings || cfg->ratings_url == NULL || c == NULL)
		return FU_OK;
	if (st == NULL) {		/* preview: show the block */
		add_context(ctx, cfg, c, job);
		return FU_OK;
	}
	if ((r = decide(st, cfg, job, to, now, &why, err)) != FU_OK)
		return r;
	if (why != NULL)
		return store_event(st, job, now, "rating-skipped", why, err);
	add_context(ctx, cfg, c, job);
	memset(&q, 0, sizeof(q));
	q.job = job;
	q.rule = rule->name;
	q.recipient = to ? to : "";
	q.scale = rating_scale_name(cfg->ratings_scale);
	q.agent = ctx_str(ctx, "agent", "email");
	q.agent_name = ctx_str(ctx, "agent", "name");
	q.agent_tz = ctx_str(ctx, "agent", "timezone");
	q.customer_name = ctx_str(ctx, "name", NULL);
	q.ticket_subject = ctx_str(ctx, "ticket", "subject");
	if ((r = store_rating_request(st, &q, now, err)) != FU_OK)
		return r;
	return store_event(st, job, now, "rating-asked", q.scale, err);
}

/* ---- low ratings: call-backs and notes ---- */

int
survey_owns(const char *occurrence)
{
	return occurrence != NULL && (strncmp(occurrence, "seq ", 4) == 0 ||
	    strncmp(occurrence, "rating-note ", 12) == 0);
}

/* Everything one rating's messages need, cleaned for text. */
struct rated {
	const struct config		*cfg;
	const struct store_rating	*r;
	enum rating_scale		 scale;
	const char			*label;
	const char			*customer;	/* name, else address */
	char				*comment;	/* sanitized; NULL: none */
	char				*link;		/* the ticket's; NULL: none */
	time_t				 now;
};

/* Build, spool and mark queued the message of a job just planned. */
static int
queue_message(const struct rated *rt, struct store *st, struct spool *sp,
    int64_t job, const char *to, const char *to_name, const char *subject,
    const char *text, const struct mime_part_calendar *cal, char **err)
{
	struct mime_spec spec;
	struct buf msg = { 0 };
	char *mid = compose_message_id(job, rt->cfg->from_addr);
	char name[SPOOL_NAME_MAX];
	int r;

	memset(&spec, 0, sizeof(spec));
	spec.from = rt->cfg->from;
	spec.to_name = to_name;
	spec.to_addr = to;
	spec.subject = subject;
	spec.message_id = mid;
	spec.date = rt->now;
	spec.text = text;
	spec.calendar = cal;
	if ((r = mime_build(&spec, &msg, err)) == FU_OK) {
		spool_message_name(job, msg.len, name);
		if ((r = spool_write(sp, name, msg.data, msg.len, err)) == FU_OK)
			r = store_job_queued(st, job, to, mid, name, rt->now, err);
	}
	buf_free(&msg);
	free(mid);
	return r;
}

/* The working hours call-backs start in: the first agent_reminder rule's. */
static const struct rule_config *
hours_rule(const struct config *cfg)
{
	for (int i = 0; i < cfg->nrules; i++)
		if (cfg->rules[i].kind == RULE_AGENT_REMINDER &&
		    cfg->rules[i].enabled)
			return &cfg->rules[i];
	return NULL;
}

static void
rated_text(const struct rated *rt, struct buf *b)
{
	const struct store_rating *r = rt->r;

	buf_printf(b, "%s rated the help on ticket %s", rt->customer,
	    r->subject ? r->subject : "?");
	if (r->ticket_subject != NULL)
		buf_printf(b, " (%s)", r->ticket_subject);
	buf_printf(b, ": %d, %s (%s).\n\nComment: %s\n", r->score, rt->label,
	    rating_scale_name(rt->scale), rt->comment ? rt->comment :
	    "(none)");
	if (rt->link != NULL)
		buf_printf(b, "\nTicket: %s\n", rt->link);
}

/* An iTIP REQUEST or CANCEL of the call-back rm, planned and queued. */
static int
callback_message(const struct rated *rt, struct store *st, struct spool *sp,
    const struct reminder *rm, const char *method, char **err)
{
	const struct rule_config *hr = hours_rule(rt->cfg);
	struct ical_event ev;
	struct mime_part_calendar cal;
	struct buf ics = { 0 }, text = { 0 };
	char *summary = NULL, *subject = NULL;
	int64_t job;
	int r;

	if ((r = store_reminder_message(st, rm, method, rm->agent,
	    rm->agent_name, rt->now, rt->now, &job, err)) != FU_OK || job == 0)
		return r;
	summary = xasprintf("Call back %s: rated %s", rt->customer, rt->label);
	subject = xasprintf("%s%s", strcmp(method, "CANCEL") == 0 ?
	    "Cancelled: " : "", summary);
	rated_text(rt, &text);
	memset(&ev, 0, sizeof(ev));
	ev.method = method;
	ev.uid = rm->uid;
	ev.sequence = rm->sequence;
	ev.dtstamp = rt->now;
	ev.start = rm->dtstart;
	ev.end = rm->dtend;
	ev.zone = rules_zone(rt->cfg, rm->tz);
	ev.summary = summary;
	ev.description = text.data;
	ev.url = rt->link;
	ev.organizer_addr = rt->cfg->from_addr;
	ev.attendee_addr = rm->agent;
	ev.attendee_name = rm->agent_name;
	ev.alarm = hr ? hr->alarm : 600;
	if ((r = ical_build(&ev, &ics, err)) == FU_OK) {
		cal.method = method;
		cal.ics = ics.data;
		r = queue_message(rt, st, sp, job, rm->agent, rm->agent_name,
		    subject, text.data, &cal, err);
	}
	buf_free(&ics);
	buf_free(&text);
	free(summary);
	free(subject);
	return r;
}

/* A low rating: the call-back, unless this rating's is there already. */
static int
callback_request(const struct rated *rt, struct store *st, struct spool *sp,
    struct reminder *rm, int found, char **err)
{
	const struct store_rating *r = rt->r;
	const struct rule_config *hr = hours_rule(rt->cfg);
	const struct clock_zone *z = rules_zone(rt->cfg, r->agent_tz);
	struct clock_rule def;
	char *tag = xasprintf("rating %" PRId64, r->job);
	int ret;

	if (found && rm->active && rm->at && strcmp(rm->at, tag) == 0) {
		free(tag);
		return FU_OK;	/* a replaced low rating: one call-back */
	}
	memset(&def, 0, sizeof(def));
	def.window.days = 0x3e;		/* Monday to Friday */
	def.window.start = 9 * 60;
	def.window.end = 17 * 60;
	if (!found) {
		rm->rule = xstrdup(r->rule);
		rm->subject = xstrdup(r->subject);
		rm->uid = rules_reminder_uid(rt->cfg, r->rule, r->subject);
		rm->sequence = 0;
	} else
		rm->sequence++;
	free(rm->agent);
	free(rm->agent_name);
	free(rm->tz);
	free(rm->at);
	rm->agent = xstrdup(r->agent);
	rm->agent_name = r->agent_name ? xstrdup(r->agent_name) : NULL;
	rm->tz = xstrdup(clock_zone_name(z));
	rm->at = tag;
	rm->active = 1;
	rm->dtstart = clock_next_open(hr ? rules_clock(rt->cfg, hr) : &def, z,
	    rt->now, NULL);
	rm->dtend = rm->dtstart + (hr ? hr->duration : 15 * 60);
	if ((ret = store_reminder_put(st, rm, rt->now, err)) != FU_OK)
		return ret;
	return callback_message(rt, st, sp, rm, "REQUEST", err);
}

static int
note(const struct rated *rt, struct store *st, struct spool *sp, char **err)
{
	const struct store_rating *r = rt->r;
	struct buf text = { 0 };
	char occ[64], *subject;
	int64_t job;
	int created, ret;

	snprintf(occ, sizeof(occ), "rating-note %" PRId64 " %lld", r->job,
	    (long long)r->updated_at);
	if ((ret = store_job_plan(st, r->rule, r->subject, occ, rt->now,
	    rt->now, &created, &job, err)) != FU_OK || !created)
		return ret;
	subject = xasprintf("Low rating: %s rated %s (ticket %s)", rt->customer,
	    rt->label, r->subject ? r->subject : "?");
	rated_text(rt, &text);
	buf_printf(&text, "\nCustomer: %s\nAgent: %s%s%s%s\nCheck-in: job %"
	    PRId64 " (followupd queue show %" PRId64 ")\n", r->recipient ?
	    r->recipient : "?", r->agent_name ? r->agent_name : "",
	    r->agent_name ? " <" : "", r->agent ? r->agent : "(none)",
	    r->agent_name ? ">" : "", r->job, r->job);
	ret = queue_message(rt, st, sp, job, rt->cfg->ratings_notify, NULL,
	    subject, text.data, NULL, err);
	buf_free(&text);
	free(subject);
	return ret;
}

static char *
ticket_link(const struct config *cfg, const struct store_rating *r)
{
	struct mustache_cache *mc;
	const struct mustache_template *t;
	struct value *ctx;
	struct buf b = { 0 };
	char *e = NULL;

	if (cfg->calendar_link == NULL || r->subject == NULL)
		return NULL;
	mc = mustache_cache_new(NULL, NULL);
	ctx = value_map();
	value_map_set(ctx, "key", value_string(r->subject));
	value_map_set_path(ctx, "ticket.id", value_string(r->subject));
	if ((t = mustache_parse(mc, "[calendar] link", cfg->calendar_link,
	    &e)) != NULL)
		mustache_render(mc, t, ctx, MUSTACHE_ESCAPE_NONE, &b, NULL,
		    NULL, NULL);
	free(e);
	value_free(ctx);
	mustache_cache_free(mc);
	if (b.len == 0 || strpbrk(b.data, " \t\r\n<>\"") != NULL) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

/* One rating, in one transaction: act on it and mark it handled. */
static int
handle(const struct config *cfg, struct store *st, struct spool *sp,
    const struct store_rating *r, time_t now, struct survey_stats *stats,
    char **err)
{
	struct rated rt;
	struct reminder rm;
	struct buf cb = { 0 };
	char *tag = xasprintf("rating %" PRId64, r->job);
	int low, found = 0, ret;

	memset(&rt, 0, sizeof(rt));
	memset(&rm, 0, sizeof(rm));
	rt.cfg = cfg;
	rt.r = r;
	rt.now = now;
	if (r->scale == NULL || rating_scale_parse(r->scale, &rt.scale) == -1)
		rt.scale = cfg->ratings_scale;
	rt.label = rating_label(rt.scale, r->score);
	rt.customer = r->customer_name ? r->customer_name : r->recipient ?
	    r->recipient : "a customer";
	if (r->comment != NULL) {
		utf8_sanitize(r->comment, strlen(r->comment), 4000, &cb);
		rt.comment = buf_steal(&cb);
	}
	rt.link = ticket_link(cfg, r);
	low = (int)rt.scale == cfg->ratings_scale && r->score <= cfg->ratings_low;
	if ((ret = store_begin(st, err)) != FU_OK)
		goto out;
	if ((ret = store_reminder_get(st, r->rule, r->subject, &rm, &found,
	    err)) != FU_OK)
		goto fail;
	if (low && r->agent != NULL && mime_address_ok(r->agent, NULL)) {
		int before = rm.sequence, was = found && rm.active;

		if ((ret = callback_request(&rt, st, sp, &rm, found, err)) !=
		    FU_OK)
			goto fail;
		stats->callbacks += !was || rm.sequence != before;
	} else if (!low && found && rm.active && rm.at != NULL &&
	    strcmp(rm.at, tag) == 0) {
		/* A better rating replaced the low one: take the call back. */
		rm.sequence++;
		rm.active = 0;
		if ((ret = store_reminder_put(st, &rm, now, err)) != FU_OK ||
		    (ret = callback_message(&rt, st, sp, &rm, "CANCEL", err)) !=
		    FU_OK)
			goto fail;
		stats->cancels++;
	}
	if (low && cfg->ratings_notify != NULL) {
		if ((ret = note(&rt, st, sp, err)) != FU_OK)
			goto fail;
		stats->notes++;
	}
	if ((ret = store_rating_handled(st, r->job, r->updated_at, now,
	    err)) != FU_OK || (ret = store_commit(st, err)) != FU_OK)
		goto fail;
	log_info("survey: job %" PRId64 " rated %s %d: %s", r->job,
	    rating_scale_name(rt.scale), r->score, low ? "low" : "not low");
	goto out;
fail:
	store_rollback(st);
out:
	store_reminder_clear(&rm);
	free(rt.comment);
	free(rt.link);
	free(tag);
	return ret;
}

int
survey_tick(const struct config *cfg, struct store *st, struct spool *sp,
    time_t now, struct survey_stats *stats, char **err)
{
	struct store_rating *rows;
	int n, r = FU_OK;

	memset(stats, 0, sizeof(*stats));
	if (cfg->ratings_url == NULL)
		return FU_OK;
	if ((r = store_ratings_unhandled(st, &rows, &n, err)) != FU_OK)
		return r;
	for (int i = 0; i < n && r == FU_OK; i++) {
		r = handle(cfg, st, sp, &rows[i], now, stats, err);
		if (r == FU_PERMFAIL) {
			/* This rating can never be acted on (a bad address):
			 * say so once and go on. */
			log_warnx("survey: job %" PRId64 ": %s", rows[i].job,
			    err && *err ? *err : "?");
			if (store_rating_handled(st, rows[i].job,
			    rows[i].updated_at, now, err) == FU_OK)
				r = FU_OK;
		}
	}
	store_ratings_free(rows, n);
	return r;
}
