/* gate: may a job's message go out now, and if not, why: every such reason in one place. */
#ifndef FOLLOWUPD_GATE_H
#define FOLLOWUPD_GATE_H

#include <time.h>

#include "config.h"
#include "store.h"
#include "value.h"

enum gate_verdict {
	GATE_GO,
	GATE_CANCEL,	/* never: the job is cancelled with reason */
	GATE_POSTPONE,	/* not now: due again at `until` */
};

/*
 * A verdict as data; the caller records it. Reasons (static strings):
 * cancel: "reopened", "no-address", "bad-address", "suppressed",
 * "opted-out", "over-cap"; postpone: "quiet-hours", "window", "cap".
 * detail (allocated, NULL for GATE_GO) is the history's wording.
 */
struct gate_result {
	enum gate_verdict verdict;
	const char	*reason;
	char		*detail;
	time_t		 until;		/* GATE_POSTPONE */
};
void	gate_result_clear(struct gate_result *);

/*
 * At due time (render), for one job of `rule` whose current source row is
 * `row` (NULL: the source no longer has it). In this order: reopened, no
 * or bad address, suppressed, opted out of the rule's class, quiet hours
 * and send window in the recipient's zone (an agent reminder's window is
 * its appointment's, not the mail's), frequency caps of marketing mail
 * (over_cap = drop cancels, postpone waits for the cap, then the next
 * opening). Messages noted with gate_queued since gate_page_begin count
 * against the caps like those in state.db. Reads state.db only.
 * FU_TEMPFAIL (with *err) when it is busy; the result is then GATE_GO and
 * means nothing.
 */
struct gate;
struct gate	*gate_new(const struct config *);	/* the config outlives it */
void		 gate_free(struct gate *);
int	gate_render(struct gate *, struct store *, const struct job *,
	    const struct rule_config *, const struct value *row, time_t now,
	    struct gate_result *, char **err);
void	gate_page_begin(struct gate *);
void	gate_queued(struct gate *, const char *email,
	    const struct rule_config *);

/*
 * Again before sending a queued job (deliver): suppressed or opted out of
 * the job's class since it was queued. GATE_GO or GATE_CANCEL.
 */
int	gate_deliver(const struct config *, struct store *, const struct job *,
	    struct gate_result *, char **err);

/* The address alone (preview, sample): no-address, bad-address, or GO. */
void	gate_address(const struct value *row, struct gate_result *);

#endif
