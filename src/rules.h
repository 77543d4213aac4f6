/* rules: what each rule kind asks of the source and when its message is due. */
#ifndef FOLLOWUPD_RULES_H
#define FOLLOWUPD_RULES_H

#include <stddef.h>
#include <time.h>

#include "clock.h"
#include "config.h"
#include "source.h"
#include "value.h"

/*
 * Every rule query (the kind's default or the rule's own `query`) returns
 * one row per message, with these columns:
 *   key      the subject (ticket id): one job per (rule, key, at)
 *   at       the event instant as the source stores it (e.g. resolved_at)
 *   email    the recipient's address (NULL: skipped with 'no-address')
 *   name     the recipient's display name (may be NULL)
 *   tz       optional: the recipient's IANA time zone (NULL, missing or
 *            unknown: [defaults] timezone, else UTC)
 *   needed   optional, agent_reminder only: 0 when the ticket no longer
 *            needs a reminder (closed, resolved); default 1
 * and any others, which become template variables ("customer.first_name"
 * becomes {{customer.first_name}}). It may use :since and :until (UTC
 * "YYYY-MM-DD HH:MM:SS") to limit `at` to the planning window.
 */
extern const char *const rules_required_columns[];

/* The SQL a rule runs: its own query, or its kind's default. */
const char	*rules_query(const struct rule_config *);

/*
 * The same query narrowed to one subject (:key) for the re-check at due
 * time and for preview; the caller frees it and binds :since and :until to
 * the widest window (RULES_TIME_MIN, RULES_TIME_MAX).
 */
#define RULES_TIME_MIN	"0000-01-01 00:00:00"
#define RULES_TIME_MAX	"9999-12-31 23:59:59"
char		*rules_recheck_query(const struct rule_config *);
/*
 * The rule's row for one subject, fetched again (the query above, built
 * once per config): the first whose `at` is `occurrence` (NULL: any), or
 * *row NULL when the source no longer has it, and on failure. The
 * caller frees *row.
 */
int		 rules_fetch(const struct config *, struct source *,
		    const struct rule_config *, const char *key,
		    const char *occurrence, struct value **row, char **err);

/*
 * Time. rules_time_load resolves [defaults] timezone and parses every
 * rule's holidays file (libical) into what the config keeps (freed by
 * config_free: no process-wide state), built again on each call; problems
 * are appended to errs as "FILE:LINE: message\n" (render_open calls it,
 * so `check` and start-up report them). The others build it on first
 * use, logging problems.
 */
int		 rules_time_load(const struct config *, struct buf *errs);
/* The rule's schedule: delay, business days, window, quiet hours, holidays. */
const struct clock_rule *rules_clock(const struct config *,
		    const struct rule_config *);
/* A recipient's zone: NAME, else [defaults] timezone, else UTC (warned once). */
const struct clock_zone *rules_zone(const struct config *, const char *name);

/* When a message for an event at `at` is due, in the recipient's zone. */
time_t		 rules_due(const struct config *, const struct rule_config *,
		    const struct clock_zone *, time_t at);

/*
 * For `check`: every distinct `tz` the rules' queries return that is not a
 * known zone, once each, appended to warnings as "[rule R] unknown time
 * zone 'X' for N row(s): using Y\n". FU_TEMPFAIL when the source is busy.
 */
int		 rules_check_zones(const struct config *, struct source *,
		    struct buf *warnings, char **err);

/* The stable iCalendar UID of (rule, subject): "followupd-RULE-KEY@domain". */
char		*rules_reminder_uid(const struct config *, const char *rule,
		    const char *subject);

/*
 * Add history.* from the reference schema for the customer `customer_id`
 * (ticket_count, purchase_count, purchases: the 3 most recent, years,
 * has_purchases) to ctx. Missing tables are skipped. FU_TEMPFAIL when busy.
 */
/* For `check`: the history queries prepare against the source's tables. */
int		 rules_check_history(struct source *, char **err);
/* The i-th history query and its table (explain.c); NULL past the last. */
const char	*rules_history_query(size_t i, const char **table);
int		 rules_history(struct source *, const char *customer_id,
		    time_t now, struct value *ctx, char **err);
/*
 * rules_history for a message of rule r, when the rule wants it and the
 * row names a customer: the last thing a message needs from the source.
 * FU_TEMPFAIL when busy; without the tables the message goes out without
 * it (logged; `check` says so).
 */
int		 rules_add_history(struct source *, const struct rule_config *,
		    struct value *ctx, time_t now, char **err);

const char	*rules_kind_name(enum rule_kind);

/* ---- birthday, anniversary, loyalty ---- */

/* Yearly kinds plan their occurrence this long before it is due. */
#define RULES_PLAN_AHEAD	(24 * 60 * 60)

/* 1 for birthday and anniversary: one job per customer and year. */
int		 rules_kind_yearly(enum rule_kind);

struct rules_occurrence {
	char		 occurrence[16];	/* the job's occurrence: the year "2027" */
	int		 year;
	int		 years;		/* age or years as a customer; -1 unknown */
	time_t		 event;		/* send_at on the day, in the zone */
	time_t		 due;		/* event moved out of quiet hours/window */
};
/*
 * The year's occurrence of a yearly rule for a row whose `at` is the
 * birthday ('YYYY-MM-DD' or '--MM-DD') or customer_since (a UTC time; its
 * date in zone z): send_at on that day in z; 29 February in a common year
 * is 28 February or 1 March (feb29). Only an occurrence in (now - lookback,
 * now + RULES_PLAN_AHEAD] counts, and for anniversaries only a milestone of
 * `years`. 1 with *o, 0 when none is due around now, -1 when `at` is not a
 * date.
 */
int		 rules_occurrence(const struct config *,
		    const struct rule_config *, const struct clock_zone *,
		    const char *at, time_t now, struct rules_occurrence *o);
/* The local instant of send_at on (year, mon, day), feb29 applied. */
time_t		 rules_yearly_instant(const struct rule_config *,
		    const struct clock_zone *, int year, int mon, int day);
/* {{years}} of a yearly job: its year minus the event's; -1 when unknown. */
int		 rules_occurrence_years(const struct rule_config *,
		    const struct clock_zone *, const char *at,
		    const char *occurrence);
/* A loyalty rule's milestone in words ("5 purchases, 50000 EUR"). */
void		 rules_milestone(const struct rule_config *, char *out,
		    size_t size);

#endif
