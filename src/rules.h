/* rules: what each rule kind asks of the source and when its message is due. */
#ifndef FOLLOWUPD_RULES_H
#define FOLLOWUPD_RULES_H

#include <time.h>

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

/* When a message for an event at `at` is due. */
time_t		 rules_due(const struct rule_config *, time_t at);

/*
 * Add history.* from the reference schema for the customer `customer_id`
 * (ticket_count, purchase_count, purchases: the 3 most recent, years,
 * has_purchases) to ctx. Missing tables are skipped. FU_TEMPFAIL when busy.
 */
int		 rules_history(struct source *, const char *customer_id,
		    time_t now, struct value *ctx, char **err);

const char	*rules_kind_name(enum rule_kind);

#endif
