/* render: tick step 2: due jobs re-checked against the source, asked at the gate, composed, spooled and recorded. */
#ifndef FOLLOWUPD_RENDER_H
#define FOLLOWUPD_RENDER_H

#include <time.h>

#include "config.h"
#include "source.h"
#include "spool.h"
#include "store.h"
#include "util.h"
#include "value.h"

struct render;

/*
 * Load everything a message needs (compose_open: templates, partials,
 * codes, the unsubscribe secret) and the rules' zones and holidays
 * (rules_time_load), once. Every problem is appended to errs as
 * "FILE:LINE: message\n"; NULL when there was any. The config must
 * outlive the render. `preview`: nothing rendered will be sent (check),
 * so a missing unsubscribe secret may be stood in for.
 */
struct render	*render_open(const struct config *, int preview,
		    struct buf *errs);
void		 render_close(struct render *);

struct render_stats {
	int	queued;
	int	cancelled;
	int	failed;
	int	held;		/* left planned for the next tick (temporary problem) */
};

/*
 * Tick step 2: every planned job whose time has come is re-checked against
 * the source and asked at the gate (gate.h): cancelled with the gate's
 * reason, postponed to the gate's time, or composed (compose.h), written
 * durably to the spool and marked queued. Each page's outcomes are
 * recorded together, in one transaction, after its messages are durable.
 * FU_TEMPFAIL stops the step early (source busy, disk full); nothing is lost:
 * unfinished jobs stay planned.
 *
 * `page_done` (may be NULL) is called with `arg` after each page's
 * decisions are committed (its messages are in new/ and their jobs
 * `queued`): the daemon hands them to delivery while the next page renders.
 * `cut` (may be NULL) is asked after each job: 1 ends the page there (it
 * is committed and page_done called at once), so that delivery's outcomes
 * are recorded within milliseconds even while a page is being built.
 */
typedef void (*render_page_fn)(void *arg);
typedef int (*render_cut_fn)(void *arg);
int	render_tick(struct render *, struct store *, struct source *,
	    struct spool *, time_t now, render_page_fn page_done,
	    render_cut_fn cut, void *arg, struct render_stats *, char **err);

#endif
