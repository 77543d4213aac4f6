/* plan: tick step 1: source rows that call for a message become planned jobs. */
#include "plan.h"
#include "clock.h"
#include "log.h"
#include "rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The query compares times as text, and a source may mix the two spellings
 * ("2026-11-03 09:00:00" and "2026-11-03T09:00:00Z") which sort differently
 * within a day; so the text window is a day wider on each side and the exact
 * window is applied here, after parsing.
 */
#define PLAN_TEXT_SLACK	(24 * 60 * 60)

struct plan_ctx {
	const struct rule_config *rule;
	struct store		*st;
	time_t			 now, from;
	struct plan_stats	*stats;
	char			**err;
};

static const char *
field(const struct value *row, const char *name, char *num, size_t numlen)
{
	const struct value *v = value_map_get(row, name);

	if (v == NULL || value_type(v) == VALUE_NULL)
		return NULL;
	if (value_type(v) == VALUE_NUMBER) {
		snprintf(num, numlen, "%.15g", value_as_number(v));
		return num;
	}
	return value_as_string(v, NULL);
}

static int
plan_row(struct value *row, void *arg)
{
	struct plan_ctx *pc = arg;
	char kbuf[32], abuf[32];
	const char *key = field(row, "key", kbuf, sizeof(kbuf));
	const char *at = field(row, "at", abuf, sizeof(abuf));
	time_t t;
	int64_t id;
	int created, r = FU_OK;

	pc->stats->seen++;
	if (key == NULL || at == NULL || clock_parse(at, &t) != FU_OK) {
		pc->stats->skipped++;
		log_warnx("plan: rule %s: row with key '%.40s' has an "
		    "unreadable time '%.40s': skipped", pc->rule->name,
		    key ? key : "(null)", at ? at : "(null)");
		goto done;
	}
	if (t > pc->now || t <= pc->from)
		goto done;
	r = store_job_plan(pc->st, pc->rule->name, key, at,
	    rules_due(pc->rule, t), pc->now, &created, &id, pc->err);
	if (r == FU_OK && created) {
		char due[20];

		pc->stats->planned++;
		log_info("plan: rule %s: %s %s (at %s) → job %lld due %s UTC",
		    pc->rule->name, rules_kind_name(pc->rule->kind), key, at,
		    (long long)id, clock_format_sql(rules_due(pc->rule, t),
		    due));
	}
done:
	value_free(row);
	return r;
}

int
plan_tick(const struct config *cfg, struct source *src, struct store *st,
    time_t now, struct plan_stats *stats, char **err)
{
	memset(stats, 0, sizeof(*stats));
	for (int i = 0; i < cfg->nrules; i++) {
		const struct rule_config *rule = &cfg->rules[i];
		struct plan_ctx pc = { rule, st, now, now - rule->lookback,
		    stats, err };
		char since[20], until[20], nowtext[20];
		struct source_params p = {
			.since = clock_format_sql(pc.from - PLAN_TEXT_SLACK,
			    since),
			.until = clock_format_sql(now + PLAN_TEXT_SLACK, until),
			.now = clock_format_sql(now, nowtext),
		};
		int r;

		if (!rule->enabled)
			continue;
		if ((r = store_begin(st, err)) != FU_OK)
			return r;
		r = source_select(src, rules_query(rule), &p, plan_row, &pc,
		    err);
		if (r != FU_OK) {
			store_rollback(st);
			return r;
		}
		if ((r = store_commit(st, err)) != FU_OK) {
			store_rollback(st);
			return r;
		}
	}
	return FU_OK;
}
