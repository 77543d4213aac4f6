/* render: tick step 2: due jobs re-checked against the source, then template → MIME → spool. */
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
 * Load and parse every rule's templates (templates/NAME/subject.mustache,
 * text.mustache, optional html.mustache) and the partials they use, once.
 * Every problem is appended to errs as "FILE:LINE: message\n"; NULL when
 * there was any. The config must outlive the render.
 */
struct render	*render_open(const struct config *, struct buf *errs);
void		 render_close(struct render *);

struct render_stats {
	int	queued;
	int	cancelled;
	int	failed;
	int	held;		/* left planned for the next tick (temporary problem) */
};

/*
 * Tick step 2: every planned job whose time has come is re-checked against
 * the source (reopened? no address? suppressed?) and either cancelled with a
 * reason or rendered, written durably to the spool and marked queued.
 * FU_TEMPFAIL stops the step early (source busy, disk full); nothing is lost:
 * unfinished jobs stay planned.
 */
int	render_tick(struct render *, struct store *, struct source *,
	    struct spool *, time_t now, struct render_stats *, char **err);

/*
 * preview: the complete message that would be sent for the rule's source
 * row with key `key`, as of `now`. Writes nothing. FU_PERMFAIL with *err
 * when there is no such row or it cannot be mailed (the reason).
 */
int	render_preview(struct render *, struct source *, const char *rule,
	    const char *key, time_t now, struct buf *out, char **err);

#endif
