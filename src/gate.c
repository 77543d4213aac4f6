/* gate: may a job's message go out now, and if not, why: every such reason in one place. */
#include "gate.h"
#include "clock.h"
#include "mime.h"
#include "rules.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Marketing messages queued on the current page, not yet in state.db. */
struct pending {
	char				*email;
	const struct rule_config	*rule;
};

struct gate {
	const struct config	*cfg;
	struct pending		*pending;
	int			 npending, cap;
};

void
gate_result_clear(struct gate_result *g)
{
	free(g->detail);
	memset(g, 0, sizeof(*g));
}

static void
verdict(struct gate_result *g, enum gate_verdict v, const char *reason,
    char *detail)
{
	g->verdict = v;
	g->reason = reason;
	g->detail = detail;
}

struct gate *
gate_new(const struct config *cfg)
{
	struct gate *g = xcalloc(1, sizeof(*g));

	g->cfg = cfg;
	return g;
}

void
gate_page_begin(struct gate *g)
{
	for (int i = 0; i < g->npending; i++)
		free(g->pending[i].email);
	g->npending = 0;
}

void
gate_free(struct gate *g)
{
	if (g == NULL)
		return;
	gate_page_begin(g);
	free(g->pending);
	free(g);
}

void
gate_queued(struct gate *g, const char *email, const struct rule_config *rule)
{
	if (rule->cls != RULE_CLASS_MARKETING)
		return;
	if (g->npending == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 64;
		g->pending = xrealloc(g->pending, (size_t)g->cap *
		    sizeof(*g->pending));
	}
	g->pending[g->npending].email = xstrdup(email);
	g->pending[g->npending++].rule = rule;
}

void
gate_address(const struct value *row, struct gate_result *g)
{
	const char *email = value_path_string(row, "email"), *why = NULL;
	size_t elen = 0;
	struct buf b = { 0 };

	memset(g, 0, sizeof(*g));
	if (email == NULL || *email == '\0') {
		verdict(g, GATE_CANCEL, "no-address",
		    xstrdup("the recipient has no email address"));
		return;
	}
	/* A NUL inside the value would hide what follows it from
	 * mime_address_ok: "a@example.com\0b@evil.example". */
	(void)value_as_string(value_map_get(row, "email"), &elen);
	if (elen != strlen(email))
		why = "NUL byte in address";
	else if (mime_address_ok(email, &why))
		return;
	buf_puts(&b, "invalid address '");
	utf8_sanitize(email, strlen(email), 80, &b);
	buf_printf(&b, "': %s", why);
	verdict(g, GATE_CANCEL, "bad-address", buf_steal(&b));
}

/* Suppressed (every class) or opted out (the class, or all). */
static int
gate_consent(struct store *st, const char *email, const char *cls,
    int queued, struct gate_result *g, char **err)
{
	int yes, r;

	if ((r = store_suppressed(st, email, &yes, err)) != FU_OK)
		return r;
	if (yes) {
		verdict(g, GATE_CANCEL, "suppressed", xstrdup(queued ?
		    "the address was suppressed after a permanent failure "
		    "since the message was queued" : "the address is "
		    "suppressed after a permanent failure"));
		return FU_OK;
	}
	if ((r = store_opted_out(st, email, cls, &yes, err)) != FU_OK)
		return r;
	if (yes)
		verdict(g, GATE_CANCEL, "opted-out", queued ? xstrdup("the "
		    "recipient opted out since the message was queued") :
		    xasprintf("the recipient opted out of %s mail", cls));
	return FU_OK;
}

/*
 * Quiet hours (and a check-in's send window) hold at render time too: a job
 * whose moment falls in them waits for the next opening in the
 * recipient's zone. Never dropped.
 */
static void
gate_schedule(struct gate *g, const struct rule_config *rule,
    const struct value *row, time_t now, struct gate_result *out)
{
	const struct clock_zone *z = rules_zone(g->cfg, value_path_string(row, "tz"));
	struct clock_rule cr = *rules_clock(g->cfg, rule);
	const char *why;
	char lbuf[32];
	time_t t;

	if (rule->kind == RULE_AGENT_REMINDER)
		memset(&cr.window, 0, sizeof(cr.window));	/* DTSTART's, not the mail's */
	if ((t = clock_next_open(&cr, z, now, &why)) <= now)
		return;
	verdict(out, GATE_POSTPONE, strcmp(why, "quiet hours") == 0 ?
	    "quiet-hours" : "window", xasprintf("%s until %s (%s)", why,
	    clock_format_local(z, t, lbuf), clock_zone_name(z)));
	out->until = t;
}

/* How many of the page's messages count against cap c (0: all rules). */
static int
pending_count(const struct gate *g, const char *email,
    const struct rule_config *rule, int c)
{
	int n = 0;

	for (int i = 0; i < g->npending; i++)
		if (strcasecmp(g->pending[i].email, email) == 0 &&
		    (c == 0 || g->pending[i].rule == rule))
			n++;
	return n;
}

/* Over cap c (0 [defaults], 1 the rule's) with count messages: the verdict. */
static void
gate_over_cap(struct gate *g, const struct rule_config *rule,
    const struct value *row, int c, int count, time_t until,
    struct gate_result *out)
{
	const char *text = c == 0 ? g->cfg->max_marketing : rule->max_marketing;
	const struct clock_zone *z;
	char lbuf[32];

	if (rule->over_cap == RULE_OVER_CAP_DROP) {
		verdict(out, GATE_CANCEL, "over-cap", xasprintf("over cap: %d "
		    "marketing message%s to this recipient%s already in the "
		    "window of max_marketing = %s (%s)", count, count == 1 ?
		    "" : "s", c ? " from this rule" : "", text, c ?
		    "the rule's" : "[defaults]"));
		return;
	}
	/* The next opening after the cap allows it again. */
	z = rules_zone(g->cfg, value_path_string(row, "tz"));
	until = clock_next_open(rules_clock(g->cfg, rule), z, until, NULL);
	verdict(out, GATE_POSTPONE, "cap", xasprintf("over cap %s (%d marketing "
	    "message%s to this recipient%s) until %s (%s)", text, count,
	    count == 1 ? "" : "s", c ? " from this rule" : "",
	    clock_format_local(z, until, lbuf), clock_zone_name(z)));
	out->until = until;
}

/*
 * Frequency caps of marketing mail: [defaults] max_marketing over every
 * rule, the rule's own max_marketing over its messages, per recipient.
 * Messages queued earlier (state.db) and on this page count; over a cap
 * the job waits until the oldest counted message leaves the window.
 */
static int
gate_caps(struct gate *g, struct store *st, const struct rule_config *rule,
    const struct value *row, time_t now, struct gate_result *out, char **err)
{
	const struct config_cap *caps[2] = { &g->cfg->marketing_cap, &rule->cap };
	const char *email = value_path_string(row, "email");

	if (rule->cls != RULE_CLASS_MARKETING || email == NULL)
		return FU_OK;
	for (int c = 0; c < 2; c++) {
		time_t oldest;
		int count, page, r;

		if (caps[c]->n == 0)
			continue;
		if ((r = store_cap_count(st, email, c == 0 ? NULL : rule->name,
		    now - caps[c]->window, &count, &oldest, err)) != FU_OK)
			return r;
		if ((page = pending_count(g, email, rule, c)) > 0 && count == 0)
			oldest = now;
		count += page;
		if (count < caps[c]->n)
			continue;
		gate_over_cap(g, rule, row, c, count, (oldest ? oldest : now) +
		    caps[c]->window + 1, out);
		return FU_OK;
	}
	return FU_OK;
}

int
gate_render(struct gate *g, struct store *st, const struct job *job,
    const struct rule_config *rule, const struct value *row, time_t now,
    struct gate_result *out, char **err)
{
	memset(out, 0, sizeof(*out));
	if (row == NULL) {
		verdict(out, GATE_CANCEL, "reopened", xasprintf("%s %s is no "
		    "longer resolved at %s", job->rule, job->subject,
		    job->occurrence));
		return FU_OK;
	}
	gate_address(row, out);
	if (out->verdict != GATE_GO)
		return FU_OK;
	/* Any trouble reading consent is temporary here: the job waits. */
	if (gate_consent(st, value_path_string(row, "email"), rule->cls ==
	    RULE_CLASS_MARKETING ? "marketing" : "transactional", 0, out,
	    err) != FU_OK)
		return FU_TEMPFAIL;
	if (out->verdict != GATE_GO)
		return FU_OK;
	gate_schedule(g, rule, row, now, out);
	if (out->verdict != GATE_GO)
		return FU_OK;
	return gate_caps(g, st, rule, row, now, out, err);
}

/*
 * The job's consent class: the one it was planned with (a rule renamed or
 * re-classed since must not turn a marketing message into a transactional
 * one), else its rule's, else transactional for a rule now gone.
 */
static const char *
job_class(const struct config *cfg, const struct job *job)
{
	if (job->cls != NULL && *job->cls)
		return job->cls;
	for (int i = 0; i < cfg->nrules; i++)
		if (strcmp(cfg->rules[i].name, job->rule) == 0)
			return cfg->rules[i].cls == RULE_CLASS_MARKETING ?
			    "marketing" : "transactional";
	return "transactional";
}

int
gate_deliver(const struct config *cfg, struct store *st, const struct job *job,
    struct gate_result *out, char **err)
{
	memset(out, 0, sizeof(*out));
	return gate_consent(st, job->recipient, job_class(cfg, job), 1, out,
	    err);
}
