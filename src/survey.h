/* survey: which check-ins ask for a rating (cool-down, sample), their rating.* context, and what a low rating sets off. */
#ifndef FOLLOWUPD_SURVEY_H
#define FOLLOWUPD_SURVEY_H

#include <time.h>

#include "config.h"
#include "consent.h"
#include "spool.h"
#include "store.h"
#include "value.h"

/*
 * A check-in of a rule with `ratings = yes` about to be rendered (job, the
 * row ctx as the template will see it): decide whether it asks, and if so
 * add to ctx
 *   rating.question  [ratings] question or the scale's
 *   rating.options   a list of {score, label, url}, lowest score first
 *   rating.url       the page with every option, none chosen
 *   rating.scale     csat, good-bad or nps
 * and record the rating request (store_rating_request) and an event. It
 * does not ask (ctx unchanged, an event says why) when the recipient was
 * asked within [ratings] cooldown, or the job falls outside [ratings]
 * sample. With st NULL (preview) it always asks and records nothing.
 * FU_TEMPFAIL when state.db is busy.
 */
int	survey_checkin(struct store *st, const struct config *,
	    const struct rule_config *, const struct consent *, int64_t job,
	    struct value *ctx, time_t now, char **err);

/*
 * Act on every rating not acted on yet (ratings the server recorded):
 *   - at or below [ratings] low: a call-back in the calendar of the
 *     ticket's agent, an iTIP REQUEST (the reminders table, as agent
 *     reminders) at the next opening of the agent's working hours (the
 *     send window of the first agent_reminder rule, else Mon-Fri
 *     09:00-17:00, in the agent's zone), SUMMARY naming the customer and
 *     the rating, DESCRIPTION the comment and the ticket's link; and with
 *     [ratings] notify, a short note to that address;
 *   - above it, when its call-back is still in the calendar: a CANCEL.
 * The messages are built here and queued at once (jobs of the check-in's
 * rule, for the ticket), all in one transaction per rating. FU_TEMPFAIL
 * when state.db is busy or the spool cannot be written (the ratings are
 * acted on next time).
 */
/*
 * 1 when job is a call-back or note survey_tick made (a job of the
 * check-in's rule, built and queued at once): never rendered from the
 * check-in's templates.
 */
int	survey_owns(const char *occurrence);

struct survey_stats {
	int	callbacks, cancels, notes;
};
int	survey_tick(const struct config *, struct store *, struct spool *,
	    time_t now, struct survey_stats *, char **err);

#endif
