/* report: `followupd report`: rating requests, responses and the scale's figure, by rule, agent or week. */
#ifndef FOLLOWUPD_REPORT_H
#define FOLLOWUPD_REPORT_H

#include <stdio.h>
#include <time.h>

#include "config.h"
#include "store.h"

enum report_by {
	REPORT_BY_NONE,
	REPORT_BY_RULE,
	REPORT_BY_AGENT,
	REPORT_BY_WEEK,
};

enum report_format {
	REPORT_TEXT,
	REPORT_JSON,
	REPORT_CSV,
};

/*
 * Write the report of the rating requests made in [since, now] (rows as
 * store_ratings_since gives them) to f:
 *   requests       check-ins with rating links that were sent
 *   responses      those rated
 *   response_rate  responses / requests (0 when there were none)
 *   score          the [ratings] scale's figure over the responses of that
 *                  scale (rating.h), null when there are none
 *   by_agent       the same per ticket agent (the agent's email)
 *   groups         the same per `by` (rule, agent or ISO week)
 *   low            the ratings at or below [ratings] low, with comment
 * Text and CSV show the groups (CSV: one line each and a total); text and
 * JSON list the low ratings. Comments are the customers' own text: escaped
 * for JSON and CSV, control characters shown as '?' on a terminal.
 */
void	report_write(FILE *f, const struct config *, const struct store_rating *,
	    int n, time_t since, time_t now, enum report_by, enum report_format);

/*
 * `followupd report [--since DURATION] [--by rule|agent|week]
 * [--json|--csv] [--now TIME]`: default since 30d. An exit status from
 * <sysexits.h>.
 */
int	report_cmd(const struct config *, int argc, char **argv);

#endif
