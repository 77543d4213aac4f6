/* plan: tick step 1: source rows that call for a message become planned jobs. */
#ifndef FOLLOWUPD_PLAN_H
#define FOLLOWUPD_PLAN_H

#include <time.h>

#include "config.h"
#include "source.h"
#include "store.h"

struct plan_stats {
	int	seen;		/* rows the rules' queries returned in the window */
	int	planned;	/* new jobs */
	int	skipped;	/* rows with an unreadable time or key */
};

/*
 * For each enabled rule, run its query over the planning window
 * (now - lookback, now] and insert a job per (rule, key, at) not yet known,
 * due at rules_due(). Planning twice inserts nothing twice. One transaction
 * per group of at most 1,000 rows of a rule. FU_TEMPFAIL when the source or
 * state is busy.
 */
int	plan_tick(const struct config *, struct source *, struct store *,
	    time_t now, struct plan_stats *, char **err);

#endif
