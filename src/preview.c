/* preview: the message a rule would send for one source row (or a sample of rows), nothing written. */
#include "preview.h"
#include "clock.h"
#include "codes.h"
#include "compose.h"
#include "gate.h"
#include "mime.h"
#include "rules.h"
#include "store.h"
#include "survey.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct preview {
	const struct config	*cfg;
	struct compose		*compose;
};

struct preview *
preview_open(const struct config *cfg, struct buf *errs)
{
	struct preview *pv = xcalloc(1, sizeof(*pv));
	size_t before = errs->len;

	pv->cfg = cfg;
	pv->compose = compose_open(cfg, 1, errs);
	rules_time_load(cfg, errs);	/* zones and holidays, reported */
	if (errs->len != before) {
		preview_close(pv);
		return NULL;
	}
	return pv;
}

void
preview_close(struct preview *pv)
{
	if (pv == NULL)
		return;
	compose_close(pv->compose);
	free(pv);
}

static int
rule_index(const struct preview *pv, const char *name)
{
	for (int i = 0; i < pv->cfg->nrules; i++)
		if (strcmp(pv->cfg->rules[i].name, name) == 0)
			return i;
	return -1;
}

/* A reminder: the first REQUEST plan would make for this row. */
static void
preview_calendar(struct preview *pv, int ri, struct value *row,
    const char *key)
{
	const struct rule_config *rule = &pv->cfg->rules[ri];
	const char *at = value_path_string(row, "at");
	const char *email = value_path_string(row, "email");
	const char *name = value_path_string(row, "name");
	const struct clock_zone *z = rules_zone(pv->cfg, value_path_string(row,
	    "tz"));
	struct reminder rm;
	time_t t = 0;

	memset(&rm, 0, sizeof(rm));
	if (at)
		clock_parse(at, &t);
	rm.uid = rules_reminder_uid(pv->cfg, rule->name, key);
	rm.agent = xstrdup(email ? email : "");
	rm.agent_name = name ? xstrdup(name) : NULL;
	rm.tz = xstrdup(clock_zone_name(z));
	rm.dtstart = rules_due(pv->cfg, rule, z, t);
	rm.dtend = rm.dtstart + rule->duration;
	compose_calendar(pv->cfg, row, &rm, "REQUEST");
	store_reminder_clear(&rm);
}

/*
 * {{years}} of the next occurrence, and the code the latest job of (rule,
 * key) was given (state.db, when there is one); a job not yet rendered
 * shows a sample code that is not kept.
 */
static void
preview_personal(struct preview *pv, int ri, struct value *row,
    const char *key, time_t now)
{
	const struct rule_config *rule = &pv->cfg->rules[ri];
	char *code = NULL;

	if (rules_kind_yearly(rule->kind)) {
		const struct clock_zone *z = rules_zone(pv->cfg,
		    value_path_string(row, "tz"));
		struct clock_local lt;
		char occ[16];
		int years;

		clock_to_local(z, now, &lt);
		snprintf(occ, sizeof(occ), "%d", lt.year);
		years = rules_occurrence_years(rule, z, value_path_string(row,
		    "at"), occ);
		value_map_set(row, "years", years >= 0 ? value_number(years) :
		    value_null());
	}
	if (!compose_has_code(pv->compose, ri))
		return;
	store_preview_code(pv->cfg->queue_dir, pv->cfg->busy_timeout_ms,
	    rule->name, key, &code);
	if (code == NULL) {
		struct buf b = { 0 };
		char rnd[65];

		codes_random(rule->code_alphabet, rule->code_length, rnd);
		if (compose_code(pv->compose, ri, row, rnd, &b, NULL) == FU_OK)
			code = buf_steal(&b);
		buf_free(&b);
	}
	value_map_set(row, "code", code ? value_string(code) : value_null());
	free(code);
}

/* "preview.RULE.KEY@DOMAIN": no printf per message. */
static char *
preview_message_id(const struct preview *pv, const char *rule,
    const char *key)
{
	const char *domain = mime_address_domain(pv->cfg->from_addr);
	struct buf mid = { 0 };

	buf_reserve(&mid, strlen(rule) + strlen(key) + strlen(domain) + 11);
	buf_append(&mid, "preview.", 8);
	buf_puts(&mid, rule);
	buf_putc(&mid, '.');
	buf_puts(&mid, key);
	buf_putc(&mid, '@');
	buf_puts(&mid, domain);
	return buf_steal(&mid);
}

/* A row preview_load fetched, to be built by preview_loaded_build. */
struct preview_loaded {
	int		 ri;
	char		*key;
	struct value	*row;	/* NULL once built */
	time_t		 now;
};

void
preview_loaded_free(struct preview_loaded *ld)
{
	if (ld == NULL)
		return;
	value_free(ld->row);
	free(ld->key);
	free(ld);
}

int
preview_load(struct preview *pv, struct source *src, const char *rule,
    const char *key, time_t now, struct preview_loaded **out, char **err)
{
	int ri = rule_index(pv, rule), r;
	struct gate_result g;
	struct value *row;

	*out = NULL;
	if (ri < 0) {
		set_err(err, "no rule '%s' in the configuration", rule);
		return FU_PERMFAIL;
	}
	if ((r = rules_fetch(pv->cfg, src, &pv->cfg->rules[ri], key, NULL, &row,
	    err)) != FU_OK)
		return r;
	if (row == NULL) {
		set_err(err, "rule '%s' has no source row with key '%s' (for "
		    "a check-in: is ticket %s resolved?)", rule, key, key);
		return FU_PERMFAIL;
	}
	gate_address(row, &g);
	if (g.verdict != GATE_GO) {
		set_err(err, "%s %s would not be sent: %s (%s)", rule, key,
		    g.reason, g.detail);
		gate_result_clear(&g);
		value_free(row);
		return FU_PERMFAIL;
	}
	if (pv->cfg->rules[ri].kind == RULE_AGENT_REMINDER)
		preview_calendar(pv, ri, row, key);
	preview_personal(pv, ri, row, key, now);
	if ((r = rules_add_history(src, &pv->cfg->rules[ri], row, now,
	    err)) != FU_OK) {
		value_free(row);
		return r;
	}
	*out = xcalloc(1, sizeof(**out));
	(*out)->ri = ri;
	(*out)->key = xstrdup(key);
	(*out)->row = row;
	(*out)->now = now;
	return FU_OK;
}

int
preview_loaded_build(struct preview *pv, struct preview_loaded *ld,
    struct buf *out, char **err)
{
	char *mid;
	int r;

	if (ld->row == NULL) {
		set_err(err, "render: this row was built already");
		return FU_PERMFAIL;
	}
	mid = preview_message_id(pv, pv->cfg->rules[ld->ri].name, ld->key);
	/* The rating block as a check-in would show it (job 0, nothing kept). */
	survey_checkin(NULL, pv->cfg, &pv->cfg->rules[ld->ri],
	    compose_consent(pv->compose), 0, ld->row, ld->now, NULL);
	r = compose_message(pv->compose, ld->ri, ld->row, mid, ld->now, out,
	    err);
	value_free(ld->row);
	ld->row = NULL;
	free(mid);
	return r;
}

int
preview_message(struct preview *pv, struct source *src, const char *rule,
    const char *key, time_t now, struct buf *out, char **err)
{
	struct preview_loaded *ld;
	int r;

	if ((r = preview_load(pv, src, rule, key, now, &ld, err)) != FU_OK)
		return r;
	r = preview_loaded_build(pv, ld, out, err);
	preview_loaded_free(ld);
	return r;
}

void
preview_parts_clear(struct preview_parts *p)
{
	free(p->subject);
	free(p->text);
	free(p->html);
	free(p->to_addr);
	free(p->to_name);
	free(p->from);
	free(p->message_id);
	buf_free(&p->missing);
	buf_free(&p->message);
	memset(p, 0, sizeof(*p));
}

/* Note a variable that rendered as nothing, once: "NAME\tWHY\tPART". */
static void
note_missing(const char *name, const struct value *ctx, const char *part,
    void *arg)
{
	struct preview_parts *pp = arg;
	const struct value *v = ctx;
	char line[300], *seg, *save = NULL, copy[256];
	const char *p;
	size_t n;

	/* rating.* is ours, set only when a check-in asks (survey.c). */
	if (strcmp(name, ".") == 0 || strncmp(name, "rating.", 7) == 0)
		return;
	snprintf(copy, sizeof(copy), "%s", name);
	for (seg = strtok_r(copy, ".", &save); seg && v; seg = strtok_r(NULL,
	    ".", &save))
		v = value_map_get(v, seg);
	snprintf(line, sizeof(line), "%s\t%s\t", name, v ? "empty" :
	    "missing");
	/* Once per variable: a line starting "NAME\t" means it is known. */
	n = strlen(name) + 1;
	for (p = buf_cstr(&pp->missing); *p; p = strchr(p, '\n') + 1)
		if (strncmp(p, line, n) == 0)
			return;
	buf_printf(&pp->missing, "%s%s\n", line, part);
}

/* Compose a loaded row keeping its parts; consumes row. */
static int
preview_compose_parts(struct preview *pv, int ri, struct value *row,
    const char *mid, time_t now, struct preview_parts *pp, char **err)
{
	struct compose_parts cp;
	const char *to_name;
	int r;

	survey_checkin(NULL, pv->cfg, &pv->cfg->rules[ri],
	    compose_consent(pv->compose), 0, row, now, NULL);
	if ((r = compose_parts(pv->compose, ri, row, mid, now, note_missing, pp,
	    err)) == FU_OK) {
		compose_parts_get(pv->compose, &cp);
		to_name = value_path_string(row, "name");
		pp->subject = xstrdup(cp.subject);
		pp->text = xstrdup(cp.text);
		pp->html = cp.html ? xstrdup(cp.html) : NULL;
		pp->to_addr = xstrdup(value_path_string(row, "email") ?
		    value_path_string(row, "email") : "");
		pp->to_name = to_name ? xstrdup(to_name) : NULL;
		pp->from = xstrdup(pv->cfg->from);
		pp->message_id = xstrdup(mid);
		pp->date = now;
		r = compose_mime(pv->compose, ri, row, mid, now, &pp->message,
		    err);
	}
	value_free(row);
	return r;
}

int
preview_parts(struct preview *pv, struct source *src, const char *rule,
    const char *key, time_t now, struct preview_parts *parts, char **err)
{
	struct preview_loaded *ld;
	char *mid;
	int r;

	memset(parts, 0, sizeof(*parts));
	if ((r = preview_load(pv, src, rule, key, now, &ld, err)) != FU_OK)
		return r;
	mid = preview_message_id(pv, rule, key);
	r = preview_compose_parts(pv, ld->ri, ld->row, mid, now, parts, err);
	ld->row = NULL;
	preview_loaded_free(ld);
	free(mid);
	return r;
}

struct sample {
	int		 want;
	struct value	**rows;
	int		 n;
};

static int
sample_cb(struct value *row, void *arg)
{
	struct sample *sm = arg;

	if (sm->n >= sm->want) {
		value_free(row);
		return FU_PERMFAIL;	/* enough: stops the query */
	}
	sm->rows[sm->n++] = row;
	return FU_OK;
}

/* The row's key as text (numbers as the source gave them). */
static char *
row_key(const struct value *row)
{
	const struct value *v = value_map_get(row, "key");

	if (v != NULL && value_type(v) == VALUE_NUMBER)
		return xasprintf("%.15g", value_as_number(v));
	if (v != NULL && value_as_string(v, NULL) != NULL)
		return xstrdup(value_as_string(v, NULL));
	return xstrdup("?");
}

/* One sampled row to cb; FU_TEMPFAIL (the source busy) stops the sample. */
static int
sample_one(struct preview *pv, struct source *src, int ri, struct value *row,
    time_t now, preview_sample_cb cb, void *arg, char **err)
{
	struct preview_parts parts = { 0 };
	char *key = row_key(row), *mid, *e = NULL;
	struct gate_result g;
	int r;

	gate_address(row, &g);
	if (g.verdict != GATE_GO) {
		char *why = xasprintf("would not be sent: %s (%s)", g.reason,
		    g.detail);

		cb(key, FU_PERMFAIL, NULL, why, arg);
		free(why);
		gate_result_clear(&g);
		value_free(row);
		free(key);
		return FU_OK;
	}
	mid = xasprintf("preview.%s.%s@%s", pv->cfg->rules[ri].name, key,
	    mime_address_domain(pv->cfg->from_addr));
	preview_personal(pv, ri, row, key, now);
	if ((r = rules_add_history(src, &pv->cfg->rules[ri], row, now,
	    &e)) == FU_OK)
		r = preview_compose_parts(pv, ri, row, mid, now, &parts, &e);
	else
		value_free(row);
	if (r == FU_TEMPFAIL)
		set_err(err, "%s", e ? e : "the source is busy");
	else {
		cb(key, r, r == FU_OK ? &parts : NULL, e, arg);
		r = FU_OK;
	}
	preview_parts_clear(&parts);
	free(mid);
	free(key);
	free(e);
	return r;
}

int
preview_samples(struct preview *pv, struct source *src, const char *rule,
    int n, time_t now, preview_sample_cb cb, void *arg, char **err)
{
	int ri = rule_index(pv, rule), r;
	struct source_params p = { .since = RULES_TIME_MIN,
	    .until = RULES_TIME_MAX };
	struct sample sm = { .want = n };
	char nowtext[20];

	if (ri < 0) {
		set_err(err, "no rule '%s' in the configuration", rule);
		return FU_PERMFAIL;
	}
	p.now = clock_format_sql(now, nowtext);
	sm.rows = xcalloc((size_t)(n > 0 ? n : 1), sizeof(*sm.rows));
	r = source_select(src, rules_query(&pv->cfg->rules[ri]), &p, sample_cb,
	    &sm, err);
	if (r == FU_PERMFAIL && sm.n == sm.want) {	/* stopped on purpose */
		free(*err);
		*err = NULL;
		r = FU_OK;
	}
	for (int i = 0; i < sm.n; i++) {
		if (r != FU_OK) {
			value_free(sm.rows[i]);
			continue;
		}
		r = sample_one(pv, src, ri, sm.rows[i], now, cb, arg, err);
	}
	free(sm.rows);
	return r;
}
